/* placeholder: being written */
#include "unit.h"

static void placeholder(void)
{
    CU_ASSERT(1);
}

int main(void)
{
    static const struct unit_test tests[] = {UNIT_TEST(placeholder)};
    return unit_run("journal", tests, sizeof tests / sizeof tests[0]);
}
