#include <string.h>

#include <json-c/json.h>

#include "alerteval.h"
#include "unit.h"

static void test_json(void)
{
    struct usage_bucket b[3] = {
        {.key_id = "key_a", .endpoint = "GET /x", .minute_s = 1764720000,
         .n = {.allowed = 3, .allowed_cost = 5, .rate_limited = 7},
         .m = {.peak_pct = 100, .peak_ms = 1764720001000, .deny_first_ms = 1764720001000,
               .deny_last_ms = 1764720059000, .last_ms = 1764720059500}},
        {.key_id = "key_\"b", .endpoint = "GET /y", .minute_s = 1764720060,
         .n = {.rate_limited = 2}},
        {.key_id = "key_c", .endpoint = "GET /z", .minute_s = 1764720060,
         .n = {.quota_exceeded = 4}, .m = {.peak_pct = 80, .peak_ms = 1764720070123}},
    };
    struct usage_msg m = {.batch = "b1", .buckets = b, .nbuckets = 3};
    struct alerteval_docs doc = {0};
    const struct strbuf *d = &doc.denials, *p = &doc.peaks;
    CU_ASSERT_TRUE(alerteval_json(&m, &doc));
    /* 1764720000 is 2025-12-03T00:00:00Z.  Unknown times (a message from
     * an older responder) are 0. */
    CU_ASSERT_STRING_EQUAL(d->p, "[{\"k\":\"key_a\",\"t\":1764720000,\"c\":7,"
                                 "\"f\":1764720001000,\"l\":1764720059000},"
                                 "{\"k\":\"key_\\\"b\",\"t\":1764720060,\"c\":2,\"f\":0,\"l\":0}]");
    /* Quota is evaluated after each window, from the recorded use. */
    CU_ASSERT_PTR_NULL(doc.quota.p);
    CU_ASSERT_STRING_EQUAL(p->p, "[{\"k\":\"key_a\",\"p\":100,\"ts\":1764720001000},"
                                 "{\"k\":\"key_c\",\"p\":80,\"ts\":1764720070123}]");
    json_object *o = json_tokener_parse(d->p);
    CU_ASSERT_PTR_NOT_NULL(o);
    CU_ASSERT_STRING_EQUAL(json_object_get_string(json_object_object_get(
                               json_object_array_get_idx(o, 1), "k")),
                           "key_\"b");
    json_object_put(o);
    /* A peak alone is enough to evaluate. */
    m.buckets = &b[2];
    m.nbuckets = 1;
    CU_ASSERT_TRUE(alerteval_json(&m, &doc));
    CU_ASSERT_STRING_EQUAL(d->p, "[]");
    m.nbuckets = 0;
    CU_ASSERT_FALSE(alerteval_json(&m, &doc));
    CU_ASSERT_STRING_EQUAL(d->p, "[]");
    CU_ASSERT_STRING_EQUAL(p->p, "[]");
    /* A cost alone is not evaluated per batch. */
    struct usage_bucket cost = {.key_id = "key_d", .endpoint = "e", .minute_s = 60,
                                .n = {.allowed = 1, .allowed_cost = 1}};
    m.buckets = &cost;
    m.nbuckets = 1;
    CU_ASSERT_FALSE(alerteval_json(&m, &doc));
    alerteval_docs_fini(&doc);
}

static void test_quota_json(void)
{
    struct usage_bucket b1[2] = {
        {.key_id = "key_a", .endpoint = "e", .minute_s = 1764720000, .n = {.allowed_cost = 2}},
        {.key_id = "key_b", .endpoint = "e", .minute_s = 1764720000, .n = {.rate_limited = 2}},
    };
    struct usage_bucket b2 = {.key_id = "key_c", .endpoint = "e", .minute_s = 1767225600,
                              .n = {.allowed_cost = 1}};
    struct usage_msg m[2] = {{.batch = "1", .buckets = b1, .nbuckets = 2},
                             {.batch = "2", .buckets = &b2, .nbuckets = 1}};
    struct strbuf b = {0};
    CU_ASSERT_TRUE(alerteval_quota_json(m, 2, &b));
    /* 1767225600 is 2026-01-01T00:00:00Z. */
    CU_ASSERT_STRING_EQUAL(b.p, "[{\"k\":\"key_a\",\"m\":202512,\"c\":2,\"ts\":0},"
                                "{\"k\":\"key_c\",\"m\":202601,\"c\":1,\"ts\":0}]");
    /* Nothing to evaluate: alerteval_after_ingest returns before its query. */
    CU_ASSERT_FALSE(alerteval_quota_json(m, 0, &b));
    CU_ASSERT_STRING_EQUAL(b.p, "[]");
    strbuf_fini(&b);
}

/* A batch that cannot fire anything costs no database round trip:
 * alerteval_run returns before its query when alerteval_json finds
 * nothing.  (Its query is exercised by the alerts integration suite.) */
static void test_run_nothing(void)
{
    struct usage_bucket b = {.key_id = "k", .endpoint = "e", .minute_s = 60,
                             .n = {.quota_exceeded = 1}};
    struct usage_msg m = {.batch = "b", .buckets = &b, .nbuckets = 1};
    struct alerteval_docs d = {0};
    CU_ASSERT_FALSE(alerteval_json(&m, &d));
    alerteval_docs_fini(&d);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_json),
        UNIT_TEST(test_run_nothing),
        UNIT_TEST(test_quota_json),
    };
    return unit_run("alerteval", tests, sizeof tests / sizeof tests[0]);
}
