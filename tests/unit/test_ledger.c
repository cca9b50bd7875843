/* Unit tests of ledger: the rows it sends PostgreSQL for a set of
 * messages (ledger_record's statements run in the usage suites). */
#include <string.h>

#include "ledger.h"
#include "unit.h"

static void test_quota_json(void)
{
    struct usage_agg *a = usage_agg_new();
    struct strbuf b = {0};
    ledger_quota_json(a, &b);
    CU_ASSERT_STRING_EQUAL(b.p, "[]");
    struct usage_counts n = {.allowed = 2, .allowed_cost = 5};
    struct usage_counts denied = {.rate_limited = 4};
    usage_agg_add(a, "key_a", "*", 1798761540, &n);     /* 2026-12-31T23:59Z */
    usage_agg_add(a, "key_a", "*", 1798761600, &n);     /* 2027-01-01T00:00Z */
    usage_agg_add(a, "key_b", "GET /x", 60, &denied);   /* no allowed cost */
    ledger_quota_json(a, &b);
    CU_ASSERT_STRING_EQUAL(b.p, "[{\"k\":\"key_a\",\"m\":202612,\"c\":5},"
                                "{\"k\":\"key_a\",\"m\":202701,\"c\":5}]");
    strbuf_fini(&b);
    usage_agg_free(a);
}

static void test_credits_json(void)
{
    /* A day from a current publisher; -1 from an older one. */
    struct usage_credit c1[] = {{"key_a", 3, 2, 20000}, {"key_\"q", 0, 1, -1}};
    struct usage_credit c2[] = {{"key_b", 1, 9, 20000}};
    struct usage_credit c3[] = {{"key_c", 1, 0, 20000}};
    struct usage_msg msgs[3];
    memset(msgs, 0, sizeof msgs);
    msgs[0].credits = c1;
    msgs[0].ncredits = 2;
    msgs[1].credits = c2;
    msgs[1].ncredits = 1;
    msgs[2].credits = c3;
    msgs[2].ncredits = 1;
    bool apply[3] = {true, false, true}; /* the second was applied before */
    struct strbuf b = {0};
    ledger_credits_json(msgs, 3, apply, &b);
    CU_ASSERT_STRING_EQUAL(b.p, "[{\"k\":\"key_a\",\"r\":3,\"c\":2,\"d\":20000},"
                                "{\"k\":\"key_\\\"q\",\"r\":0,\"c\":1}]");
    apply[0] = false;
    ledger_credits_json(msgs, 3, apply, &b);
    CU_ASSERT_STRING_EQUAL(b.p, "[]");
    strbuf_fini(&b);
}

/* Nothing to record: no statement at all (the connection is not used). */
static void test_record_nothing(void)
{
    struct usage_agg *a = usage_agg_new();
    struct strbuf b1 = {0}, b2 = {0};
    struct api_error e;
    bool apply[1] = {true};
    struct usage_msg m;
    memset(&m, 0, sizeof m);
    CU_ASSERT_EQUAL(ledger_record(NULL, a, &m, 1, apply, &b1, &b2, &e), 0);
    strbuf_fini(&b1);
    strbuf_fini(&b2);
    usage_agg_free(a);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_quota_json),
        UNIT_TEST(test_credits_json),
        UNIT_TEST(test_record_nothing),
    };
    return unit_run("ledger", tests, TG_ARRAY_LEN(tests));
}
