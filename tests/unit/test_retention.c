/* Unit tests of retention that need no server: the report starts empty
 * and is released whole.  retention_run itself is exercised against the
 * stack's PostgreSQL by tests/integration/itest_retention.c. */
#include <string.h>

#include "retention.h"
#include "unit.h"

static void test_report_fini(void)
{
    struct retention_report rep = {0};
    strbuf_printf(&rep.dropped, "usage_minute_%d", 197803);
    rep.partitions = 1;
    rep.batch_ids = 2;
    rep.alert_state = 3;
    retention_report_fini(&rep);
    CU_ASSERT_PTR_NULL(rep.dropped.p);
    CU_ASSERT_EQUAL(rep.partitions, 0);
    CU_ASSERT_EQUAL(rep.batch_ids, 0);
    CU_ASSERT_EQUAL(rep.alert_state, 0);
    retention_report_fini(&rep); /* twice is harmless */
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_report_fini),
    };
    return unit_run("retention", tests, TG_ARRAY_LEN(tests));
}
