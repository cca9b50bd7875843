/* placeholder: being written */
#include <CUnit/CUnit.h>

#include "itest_suites.h"

int itest_register_billing(void)
{
    return CU_add_suite("billing", NULL, NULL) ? 0 : -1;
}
