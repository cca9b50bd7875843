/* placeholder: being written */
#include <CUnit/CUnit.h>

#include "itest_suites.h"

int itest_register_usage(void)
{
    return CU_add_suite("usage", NULL, NULL) ? 0 : -1;
}
