/* Unit tests of usagemsg: the aggregation table, building and strictly
 * parsing batch messages, and their round trip. */
#include <stdint.h>
#include <time.h>

#include "hist.h"
#include "unit.h"
#include "usagemsg.h"

static struct journal_rec rec(const char *key, const char *ep, int64_t ts_ms,
                              enum usage_outcome o, int cost)
{
    struct journal_rec r = {ts_ms, o, cost, key, strlen(key), ep, strlen(ep), false, 0, 0};
    return r;
}

struct found {
    const char *key, *ep;
    int64_t minute;
    const struct usage_bucket *b;
    size_t visited;
};

static void find_fn(const struct usage_bucket *b, void *arg)
{
    struct found *f = arg;
    f->visited++;
    if (strcmp(b->key_id, f->key) == 0 && strcmp(b->endpoint, f->ep) == 0 &&
        b->minute_s == f->minute)
        f->b = b;
}

static const struct usage_bucket *find(const struct usage_agg *a, const char *key, const char *ep,
                                       int64_t minute)
{
    struct found f = {key, ep, minute, NULL, 0};
    usage_agg_each(a, find_fn, &f);
    CU_ASSERT_EQUAL(f.visited, usage_agg_count(a));
    return f.b;
}

static void test_agg_new_free_clear(void)
{
    usage_agg_free(NULL);
    struct usage_agg *a = usage_agg_new();
    CU_ASSERT_EQUAL(usage_agg_count(a), 0);
    usage_agg_clear(a); /* empty: harmless */
    struct journal_rec r = rec("key_a", "GET /x", 120000, USAGE_ALLOWED, 1);
    usage_agg_add_check(a, &r);
    CU_ASSERT_EQUAL(usage_agg_count(a), 1);
    usage_agg_clear(a);
    CU_ASSERT_EQUAL(usage_agg_count(a), 0);
    CU_ASSERT_PTR_NULL(find(a, "key_a", "GET /x", 120));
    usage_agg_add_check(a, &r);
    CU_ASSERT_EQUAL(usage_agg_count(a), 1);
    usage_agg_free(a);
}

static void test_agg_add_check_outcomes_and_minutes(void)
{
    struct usage_agg *a = usage_agg_new();
    struct journal_rec rs[] = {
        rec("key_a", "GET /x", 1700000000123, USAGE_ALLOWED, 3),
        rec("key_a", "GET /x", 1700000000999, USAGE_ALLOWED, 2),
        rec("key_a", "GET /x", 1700000010000, USAGE_RATE_LIMITED, 5),
        rec("key_a", "GET /x", 1700000039999, USAGE_QUOTA_EXCEEDED, 1),
        rec("key_a", "GET /x", 1700000000000, USAGE_DENIED_OTHER, 1),
        rec("key_a", "GET /x", 1700000040000, USAGE_ALLOWED, 1), /* next minute */
        rec("key_a", "GET /y", 1700000000000, USAGE_ALLOWED, 1),
        rec("key_b", "GET /x", 1700000000000, USAGE_ALLOWED, 1),
        rec("key_b", "GET /x", -1, USAGE_ALLOWED, 1), /* floors to -60 */
    };
    for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++)
        usage_agg_add_check(a, &rs[i]);
    CU_ASSERT_EQUAL(usage_agg_count(a), 5);
    /* 1700000000 s is 28333333 min + 20 s. */
    const struct usage_bucket *b = find(a, "key_a", "GET /x", 1699999980);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(b->n.allowed, 2);
    CU_ASSERT_EQUAL(b->n.allowed_cost, 5);
    CU_ASSERT_EQUAL(b->n.rate_limited, 1);
    CU_ASSERT_EQUAL(b->n.quota_exceeded, 1);
    CU_ASSERT_EQUAL(b->n.denied_other, 1);
    CU_ASSERT_EQUAL(b->rt.reported, 0);
    CU_ASSERT_PTR_NULL(b->rt.hist);
    b = find(a, "key_a", "GET /x", 1700000040);
    CU_ASSERT(b && b->n.allowed == 1 && b->n.allowed_cost == 1);
    CU_ASSERT_PTR_NOT_NULL(find(a, "key_a", "GET /y", 1699999980));
    CU_ASSERT_PTR_NOT_NULL(find(a, "key_b", "GET /x", 1699999980));
    CU_ASSERT_PTR_NOT_NULL(find(a, "key_b", "GET /x", -60));
    usage_agg_free(a);
}

/* Key and endpoint are kept apart: ("ab", "c") is not ("a", "bc"). */
static void test_agg_add_distinct_strings(void)
{
    struct usage_agg *a = usage_agg_new();
    struct usage_counts one = {1, 2, 3, 4, 5};
    usage_agg_add(a, "ab", "c", 60, &one);
    usage_agg_add(a, "a", "bc", 60, &one);
    usage_agg_add(a, "ab", "c", 120, &one);
    usage_agg_add(a, "ab", "c", 60, &one);
    CU_ASSERT_EQUAL(usage_agg_count(a), 3);
    const struct usage_bucket *b = find(a, "ab", "c", 60);
    CU_ASSERT(b && b->n.allowed == 2 && b->n.allowed_cost == 4 && b->n.rate_limited == 6 &&
              b->n.quota_exceeded == 8 && b->n.denied_other == 10);
    b = find(a, "a", "bc", 60);
    CU_ASSERT(b && b->n.allowed == 1);
    usage_agg_free(a);
}

static void test_agg_events_and_merge(void)
{
    struct usage_agg *a = usage_agg_new();
    struct usage_event evs[] = {
        {"e1", "key_a", "GET /x", 200, 1000, 60500},
        {"e2", "key_a", "GET /x", 503, 3000, 119999},
        {"e3", "key_a", "GET /x", 500, 5, 61000},
        {"e4", "key_a", "GET /x", 404, 7, 120000}, /* the next minute */
    };
    for (size_t i = 0; i < 4; i++)
        usage_agg_add_event(a, &evs[i]);
    CU_ASSERT_EQUAL(usage_agg_count(a), 2);
    const struct usage_bucket *b = find(a, "key_a", "GET /x", 60);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(b->rt.reported, 3);
    CU_ASSERT_EQUAL(b->rt.errors, 2);
    CU_ASSERT_EQUAL(b->rt.rt_sum_us, 4005);
    CU_ASSERT_EQUAL(b->rt.rt_max_us, 3000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b->rt.hist);
    CU_ASSERT_EQUAL(b->rt.hist[hist_bucket(1000)], 1);
    CU_ASSERT_EQUAL(b->rt.hist[hist_bucket(3000)], 1);
    CU_ASSERT_EQUAL(b->rt.hist[5], 1);
    CU_ASSERT_EQUAL(b->n.allowed, 0);

    /* Merging into another table adds everything, histogram included. */
    struct usage_agg *m = usage_agg_new();
    usage_agg_merge(m, b);
    usage_agg_merge(m, b);
    struct usage_bucket plain = {"key_a", "GET /x", 60, {1, 1, 0, 0, 0}, {0, 0, 0, 0, NULL}, {0}};
    usage_agg_merge(m, &plain);
    const struct usage_bucket *c = find(m, "key_a", "GET /x", 60);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->rt.reported, 6);
    CU_ASSERT_EQUAL(c->rt.errors, 4);
    CU_ASSERT_EQUAL(c->rt.rt_sum_us, 8010);
    CU_ASSERT_EQUAL(c->rt.rt_max_us, 3000);
    CU_ASSERT_EQUAL(c->rt.hist[hist_bucket(3000)], 2);
    CU_ASSERT_EQUAL(c->n.allowed, 1);
    /* A bucket without events merged into an empty one keeps hist NULL. */
    usage_agg_merge(m, &(struct usage_bucket){"key_z", "GET /x", 60, {1, 1, 0, 0, 0}, {0}, {0}});
    CU_ASSERT_PTR_NULL(find(m, "key_z", "GET /x", 60)->rt.hist);
    usage_agg_free(m);
    usage_agg_free(a);
}

struct order {
    size_t n;
    int ok;
};

static void order_fn(const struct usage_bucket *b, void *arg)
{
    struct order *o = arg;
    char want[32];
    snprintf(want, sizeof want, "key_%zu", o->n++);
    o->ok &= strcmp(b->key_id, want) == 0;
}

/* Growth keeps every bucket findable and the insertion order. */
static void test_agg_many_buckets(void)
{
    struct usage_agg *a = usage_agg_new();
    struct usage_counts one = {1, 1, 0, 0, 0};
    char key[32];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 100000; i++) {
            snprintf(key, sizeof key, "key_%d", i);
            usage_agg_add(a, key, "GET /bench", 600, &one);
        }
    }
    CU_ASSERT_EQUAL(usage_agg_count(a), 100000);
    struct order o = {0, 1};
    usage_agg_each(a, order_fn, &o);
    CU_ASSERT(o.ok);
    CU_ASSERT_EQUAL(o.n, 100000);
    const struct usage_bucket *b = find(a, "key_99999", "GET /bench", 600);
    CU_ASSERT(b && b->n.allowed == 2);
    usage_agg_clear(a);
    usage_agg_add(a, "key_1", "GET /bench", 600, &one);
    CU_ASSERT_EQUAL(usage_agg_count(a), 1);
    usage_agg_free(a);
}

static void test_build_parse_round_trip(void)
{
    struct usage_agg *a = usage_agg_new();
    struct usage_counts n1 = {10, 25, 3, 2, 1}, n2 = {0, 0, 0, 0, 7};
    usage_agg_add(a, "key_a", "GET /x", 1700000040, &n1);
    /* Quotes, backslashes, a control character and UTF-8 survive. */
    usage_agg_add(a, "key_b", "POST /a\"b\\c\td/\xc3\xa9t\xc3\xa9", 1700000100, &n2);
    struct usage_event evs[] = {
        {"ev-1", "key_a", "GET /x", 200, 12500, 1700000041234},
        {"ev-\"2\"", "key_b", "GET /\xe2\x82\xac", 599, 3600000000, 0},
    };
    size_t len = 0;
    char *body = usage_msg_build("jrnl:0-10", a, evs, 2, NULL, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    CU_ASSERT_EQUAL(strlen(body), len);
    struct usage_msg m;
    struct api_error err = {0};
    CU_ASSERT_EQUAL_FATAL(usage_msg_parse(body, len, &m, &err), 0);
    CU_ASSERT_STRING_EQUAL(m.batch, "jrnl:0-10");
    CU_ASSERT_EQUAL_FATAL(m.nbuckets, 2);
    CU_ASSERT_STRING_EQUAL(m.buckets[0].key_id, "key_a");
    CU_ASSERT_STRING_EQUAL(m.buckets[0].endpoint, "GET /x");
    CU_ASSERT_EQUAL(m.buckets[0].minute_s, 1700000040);
    CU_ASSERT(memcmp(&m.buckets[0].n, &n1, sizeof n1) == 0);
    CU_ASSERT_STRING_EQUAL(m.buckets[1].endpoint, "POST /a\"b\\c\td/\xc3\xa9t\xc3\xa9");
    CU_ASSERT(memcmp(&m.buckets[1].n, &n2, sizeof n2) == 0);
    CU_ASSERT_EQUAL(m.buckets[1].rt.reported, 0);
    CU_ASSERT_EQUAL_FATAL(m.nevents, 2);
    CU_ASSERT_STRING_EQUAL(m.events[0].id, "ev-1");
    CU_ASSERT_STRING_EQUAL(m.events[0].key_id, "key_a");
    CU_ASSERT_EQUAL(m.events[0].status, 200);
    CU_ASSERT_EQUAL(m.events[0].response_us, 12500);
    CU_ASSERT_EQUAL(m.events[0].ts_ms, 1700000041234);
    CU_ASSERT_STRING_EQUAL(m.events[1].id, "ev-\"2\"");
    CU_ASSERT_STRING_EQUAL(m.events[1].endpoint, "GET /\xe2\x82\xac");
    CU_ASSERT_EQUAL(m.events[1].status, 599);
    CU_ASSERT_EQUAL(m.events[1].response_us, 3600000000);
    usage_msg_fini(&m);
    CU_ASSERT_PTR_NULL(m.buckets);
    usage_msg_fini(&m); /* twice: harmless */
    usage_msg_fini(NULL);
    free(body);
    usage_agg_free(a);
}

/* The marks of the alerts: the highest peak at its earliest check, the span
 * of the denials, the latest check; through aggregation, merge, the message
 * and back.  A bucket without marks is sent as the older 8-member row. */
static void test_marks_build_parse(void)
{
    struct usage_agg *a = usage_agg_new();
    struct journal_rec rs[] = {
        rec("key_a", "GET /x", 1700000001000, USAGE_ALLOWED, 1),
        rec("key_a", "GET /x", 1700000005000, USAGE_ALLOWED, 1),
        rec("key_a", "GET /x", 1700000003000, USAGE_ALLOWED, 1),
        rec("key_a", "GET /x", 1700000004000, USAGE_RATE_LIMITED, 1),
        rec("key_a", "GET /x", 1700000002000, USAGE_RATE_LIMITED, 1),
        rec("key_a", "GET /x", 1700000006000, USAGE_ALLOWED, 1),
    };
    uint8_t peaks[] = {50, 90, 90, 100, 100, 0};
    for (size_t i = 0; i < TG_ARRAY_LEN(rs); i++) {
        rs[i].peak_pct = peaks[i];
        usage_agg_add_check(a, &rs[i]);
    }
    const struct usage_bucket *b = find(a, "key_a", "GET /x", 1699999980);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(b->m.peak_pct, 100);
    CU_ASSERT_EQUAL(b->m.peak_ms, 1700000002000); /* the earlier of the two at 100 */
    CU_ASSERT_EQUAL(b->m.deny_first_ms, 1700000002000);
    CU_ASSERT_EQUAL(b->m.deny_last_ms, 1700000004000);
    CU_ASSERT_EQUAL(b->m.last_ms, 1700000006000);
    struct usage_counts one = {1, 1, 0, 0, 0};
    usage_agg_add(a, "key_b", "*", 1700000040, &one);
    size_t len = 0;
    char *body = usage_msg_build("b", a, NULL, 0, NULL, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "[\"key_a\",\"GET /x\",1699999980,4,4,2,0,0,100,"
                                        "1700000002000,1700000002000,1700000004000,1700000006000]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "[\"key_b\",\"*\",1700000040,1,1,0,0,0]"));
    struct usage_msg m;
    struct api_error err = {0};
    CU_ASSERT_EQUAL_FATAL(usage_msg_parse(body, len, &m, &err), 0);
    CU_ASSERT_EQUAL_FATAL(m.nbuckets, 2);
    CU_ASSERT(memcmp(&m.buckets[0].m, &b->m, sizeof b->m) == 0);
    CU_ASSERT_EQUAL(m.buckets[1].m.peak_pct, 0);
    CU_ASSERT_EQUAL(m.buckets[1].m.last_ms, 0);
    /* Merged (billingd's window): a higher peak wins, a tie keeps the earlier. */
    struct usage_agg *w = usage_agg_new();
    usage_agg_merge(w, &m.buckets[0]);
    struct usage_bucket later = m.buckets[0];
    later.m = (struct usage_marks){100, 1700000001500, 1700000001500, 1700000009000,
                                   1700000009000};
    usage_agg_merge(w, &later);
    const struct usage_bucket *mb = find(w, "key_a", "GET /x", 1699999980);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
    CU_ASSERT_EQUAL(mb->m.peak_ms, 1700000001500);
    CU_ASSERT_EQUAL(mb->m.deny_first_ms, 1700000001500);
    CU_ASSERT_EQUAL(mb->m.deny_last_ms, 1700000009000);
    CU_ASSERT_EQUAL(mb->m.last_ms, 1700000009000);
    CU_ASSERT_EQUAL(mb->n.rate_limited, 4);
    usage_agg_free(w);
    usage_msg_fini(&m);
    free(body);
    usage_agg_free(a);
}

/* Credits: summed per key and remaining version from allowed checks of keys
 * with a balance; carried by the message only when there are some. */
static void test_credits_build_parse(void)
{
    struct usage_agg *c = usage_agg_new();
    struct journal_rec r = rec("key_a", "GET /x", 120000, USAGE_ALLOWED, 3);
    usage_agg_add_credit(c, &r); /* no balance: nothing */
    CU_ASSERT_EQUAL(usage_agg_count(c), 0);
    r.has_credits = true;
    r.credit_version = 4;
    usage_agg_add_credit(c, &r);
    usage_agg_add_credit(c, &r);
    r.credit_version = 5;
    usage_agg_add_credit(c, &r);
    r.ts_ms = 2 * 86400000 + 5; /* another UTC day: another refill interval, maybe */
    usage_agg_add_credit(c, &r);
    r.outcome = USAGE_QUOTA_EXCEEDED; /* denied: consumes nothing */
    usage_agg_add_credit(c, &r);
    CU_ASSERT_EQUAL(usage_agg_count(c), 3);
    size_t len = 0;
    char *body = usage_msg_build("b", NULL, NULL, 0, c, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    CU_ASSERT_STRING_EQUAL(body, "{\"v\":1,\"batch\":\"b\",\"checks\":[],\"events\":[],"
                                 "\"credits\":[[\"key_a\",4,6,0],[\"key_a\",5,3,0],"
                                 "[\"key_a\",5,3,2]]}");
    struct usage_msg m;
    struct api_error err = {0};
    CU_ASSERT_EQUAL_FATAL(usage_msg_parse(body, len, &m, &err), 0);
    CU_ASSERT_EQUAL_FATAL(m.ncredits, 3);
    CU_ASSERT_STRING_EQUAL(m.credits[0].key_id, "key_a");
    CU_ASSERT_EQUAL(m.credits[0].version, 4);
    CU_ASSERT_EQUAL(m.credits[0].cost, 6);
    CU_ASSERT_EQUAL(m.credits[0].day, 0);
    CU_ASSERT_EQUAL(m.credits[1].version, 5);
    CU_ASSERT_EQUAL(m.credits[2].day, 2);
    usage_msg_fini(&m);
    free(body);
    /* A message of an older publisher has no day: still valid. */
    static const char old[] = "{\"v\":1,\"batch\":\"b\",\"credits\":[[\"k\",1,2]]}";
    CU_ASSERT_EQUAL_FATAL(usage_msg_parse(old, strlen(old), &m, &err), 0);
    CU_ASSERT_EQUAL(m.ncredits, 1);
    CU_ASSERT_EQUAL(m.credits[0].day, -1);
    usage_msg_fini(&m);
    /* None: the member is left out, as an older billingd expects. */
    usage_agg_clear(c);
    body = usage_msg_build("b", NULL, NULL, 0, c, &len);
    CU_ASSERT_PTR_NULL(strstr(body, "credits"));
    free(body);
    /* Malformed credits are refused. */
    static const char *const bad[] = {
        "{\"v\":1,\"batch\":\"b\",\"credits\":[[\"k\",1]]}",
        "{\"v\":1,\"batch\":\"b\",\"credits\":[[\"k\",-1,1]]}",
        "{\"v\":1,\"batch\":\"b\",\"credits\":[[\"\",1,1]]}",
        "{\"v\":1,\"batch\":\"b\",\"credits\":[[\"k\",1,\"1\"]]}",
        "{\"v\":1,\"batch\":\"b\",\"credits\":{}}",
        "{\"v\":1,\"batch\":\"b\",\"credits\":[[\"k\",1,1,-1]]}",
        "{\"v\":1,\"batch\":\"b\",\"credits\":[[\"k\",1,1,1,1]]}",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        CU_ASSERT_EQUAL(usage_msg_parse(bad[i], strlen(bad[i]), &m, &err), -1);
        CU_ASSERT_EQUAL(m.ncredits, 0);
    }
    usage_agg_free(c);
}

static void test_build_empty_and_bad_utf8(void)
{
    size_t len;
    char *body = usage_msg_build("b", NULL, NULL, 0, NULL, &len);
    CU_ASSERT_STRING_EQUAL(body, "{\"v\":1,\"batch\":\"b\",\"checks\":[],\"events\":[]}");
    struct usage_msg m;
    struct api_error err;
    CU_ASSERT_EQUAL(usage_msg_parse(body, len, &m, &err), 0);
    CU_ASSERT_EQUAL(m.nbuckets + m.nevents, 0);
    usage_msg_fini(&m);
    free(body);

    /* A stray byte becomes '?', of the same length; valid text is kept. */
    struct usage_agg *a = usage_agg_new();
    struct usage_counts one = {1, 1, 0, 0, 0};
    usage_agg_add(a, "key_a", "GET /\xff\xc3\xa9\xe2\x82", 60, &one);
    body = usage_msg_build("b", a, NULL, 0, NULL, &len);
    CU_ASSERT_EQUAL_FATAL(usage_msg_parse(body, len, &m, &err), 0);
    CU_ASSERT_STRING_EQUAL(m.buckets[0].endpoint, "GET /?\xc3\xa9??");
    usage_msg_fini(&m);
    free(body);
    usage_agg_free(a);
}

static int parses(const char *body)
{
    struct usage_msg m;
    struct api_error err = {0};
    int rc = usage_msg_parse(body, strlen(body), &m, &err);
    if (rc == 0) {
        usage_msg_fini(&m);
    } else {
        CU_ASSERT(err.message[0] != '\0');
        CU_ASSERT_PTR_NULL(m.buckets);
        CU_ASSERT_PTR_NULL(m.strings);
    }
    return rc == 0;
}

#define C(x) "{\"v\":1,\"batch\":\"b\",\"checks\":[" x "]}"
#define E(x) "{\"v\":1,\"batch\":\"b\",\"events\":[" x "]}"

static void test_parse_accepts(void)
{
    CU_ASSERT(parses("{\"v\":1,\"batch\":\"b\"}"));
    CU_ASSERT(parses(" {\"batch\":\"b\",\"v\":1,\"checks\":[],\"events\":[]}\n"));
    CU_ASSERT(parses(C("[\"k\",\"e\",0,0,0,0,0,0]")));
    CU_ASSERT(parses(C("[\"k\",\"e\",60,1000000000000,0,0,0,0]")));
    CU_ASSERT(parses(C("[\"k\",\"\\u00e9\",60,1,1,0,0,0],[\"k\",\"e\",60,1,1,0,0,0]")));
    CU_ASSERT(parses(E("[\"i\",\"k\",\"e\",100,0,0]")));
    /* The marks: optional, each time 0 or within the row's minute. */
    CU_ASSERT(parses(C("[\"k\",\"e\",60,1,1,2,0,0,80,60500,61000,62000,119999]")));
    CU_ASSERT(parses(C("[\"k\",\"e\",60,1,1,0,0,0,0,0,0,0,0]")));
    CU_ASSERT(parses(C("[\"k\",\"e\",60,0,0,1,0,0,100,60000,60000,60000,60000]")));
    CU_ASSERT(parses(E("[\"i\",\"k\",\"e\",599,3600000000,253402300799999]")));
}

static void test_parse_rejects(void)
{
    static const char *bad[] = {
        "",
        "[]",
        "null",
        "{\"v\":1,\"batch\":\"b\"",
        "{\"v\":1,\"batch\":\"b\"} x",
        "{\"v\":1,\"batch\":\"b\"}{}",
        "{\"v\":1,\"batch\":\"b\",}",
        "{'v':1,\"batch\":\"b\"}",
        "{\"v\":2,\"batch\":\"b\"}",
        "{\"v\":\"1\",\"batch\":\"b\"}",
        "{\"v\":1.0,\"batch\":\"b\"}",
        "{\"batch\":\"b\"}",
        "{\"v\":1}",
        "{\"v\":1,\"batch\":\"\"}",
        "{\"v\":1,\"batch\":7}",
        "{\"v\":1,\"batch\":\"b\",\"extra\":1}",
        "{\"v\":1,\"batch\":\"b\",\"checks\":null}",
        "{\"v\":1,\"batch\":\"b\",\"checks\":{}}",
        "{\"v\":1,\"batch\":\"b\",\"events\":\"x\"}",
        C("[\"k\",\"e\",60,1,1,0,0]"),              /* 7 items */
        C("[\"k\",\"e\",60,1,1,0,0,0,0]"),          /* 9 items */
        C("{\"k\":1}"),
        C("[\"\",\"e\",60,1,1,0,0,0]"),              /* empty key */
        C("[\"k\",\"\",60,1,1,0,0,0]"),              /* empty endpoint */
        C("[1,\"e\",60,1,1,0,0,0]"),
        C("[\"k\",null,60,1,1,0,0,0]"),
        C("[\"k\",\"e\",61,1,1,0,0,0]"),             /* not a minute */
        C("[\"k\",\"e\",-60,1,1,0,0,0]"),
        C("[\"k\",\"e\",60.0,1,1,0,0,0]"),
        C("[\"k\",\"e\",\"60\",1,1,0,0,0]"),
        C("[\"k\",\"e\",60,-1,1,0,0,0]"),            /* negative count */
        C("[\"k\",\"e\",60,1,1,0,0,-1]"),
        C("[\"k\",\"e\",60,1,1e3,0,0,0]"),
        C("[\"k\",\"e\",60,1,true,0,0,0]"),
        C("[\"k\",\"e\",60,1000000000001,0,0,0,0]"), /* over USAGE_COUNT_MAX */
        C("[\"k\",\"e\",60,99999999999999999999,0,0,0,0]"),
        C("[\"k\",\"e\",60,1,1,0,0,0,[]]"),
        C("[\"k\",\"e\",60,1,1,0,0,0,0,0,0,0]"),                 /* 12 items */
        C("[\"k\",\"e\",60,1,1,0,0,0,0,0,0,0,0,0]"),             /* 14 items */
        C("[\"k\",\"e\",60,1,1,0,0,0,101,60000,0,0,60000]"),      /* peak over 100 */
        C("[\"k\",\"e\",60,1,1,0,0,0,-1,0,0,0,60000]"),
        C("[\"k\",\"e\",60,1,1,0,0,0,80,59999,0,0,60000]"),       /* peak before the minute */
        C("[\"k\",\"e\",60,1,1,0,0,0,80,120000,0,0,60000]"),      /* ... after it */
        C("[\"k\",\"e\",60,1,1,0,0,0,80,0,0,0,60000]"),           /* a peak without time */
        C("[\"k\",\"e\",60,1,1,0,0,0,0,60000,0,0,60000]"),        /* a time without peak */
        C("[\"k\",\"e\",60,1,1,0,0,0,0,0,60000,60000,60000]"),    /* denial times, no denial */
        C("[\"k\",\"e\",60,1,1,2,0,0,0,0,0,0,60000]"),            /* denials without times */
        C("[\"k\",\"e\",60,1,1,2,0,0,0,0,62000,61000,62000]"),    /* first after last */
        C("[\"k\",\"e\",60,1,1,2,0,0,0,0,61000,120000,62000]"),   /* last out of the minute */
        C("[\"k\",\"e\",60,1,1,0,0,0,0,0,0,0,120000]"),           /* last check out of it */
        C("[\"k\",\"e\",60,1,1,0,0,0,0,0,0,0,60000.0]"),
        C("[\"k\",\"e\",60,1,1,0,0,0,\"80\",60000,0,0,60000]"),
        C("[\"k\\u0000\",\"e\",60,1,1,0,0,0]"),      /* NUL */
        C("[\"k\",\"\xff\",60,1,1,0,0,0]"),          /* invalid UTF-8 */
        C("[\"k\",\"e\",60,1,1,0,0,0],"),            /* trailing comma */
        C("[[\"k\"],\"e\",60,1,1,0,0,0]"),           /* too deep */
        E("[\"i\",\"k\",\"e\",200,0]"),
        E("[\"\",\"k\",\"e\",200,0,0]"),
        E("[\"i\",\"k\",\"e\",99,0,0]"),
        E("[\"i\",\"k\",\"e\",600,0,0]"),
        E("[\"i\",\"k\",\"e\",200,-1,0]"),
        E("[\"i\",\"k\",\"e\",200,3600000001,0]"),
        E("[\"i\",\"k\",\"e\",200,0,-1]"),
        E("[\"i\",\"k\",\"e\",200,0,253402300800000]"),
        E("[\"i\",\"k\",\"e\",200.5,0,0]"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int ok = parses(bad[i]);
        CU_ASSERT_FALSE(ok);
        if (ok)
            printf("accepted: %s\n", bad[i]);
    }
}

/* Every string bound, at the limit and one past it. */
static void test_parse_string_limits(void)
{
    char key[JOURNAL_KEY_MAX + 2], ep[JOURNAL_ENDPOINT_MAX + 2], id[USAGE_EVENT_ID_MAX_BYTES + 2],
        batch[USAGE_BATCH_ID_MAX + 2], body[4096];
    memset(key, 'k', sizeof key);
    memset(ep, 'e', sizeof ep);
    memset(id, 'i', sizeof id);
    memset(batch, 'b', sizeof batch);
    for (int over = 0; over < 2; over++) {
        key[JOURNAL_KEY_MAX + over] = ep[JOURNAL_ENDPOINT_MAX + over] = '\0';
        id[USAGE_EVENT_ID_MAX_BYTES + over] = batch[USAGE_BATCH_ID_MAX + over] = '\0';
        snprintf(body, sizeof body, C("[\"%s\",\"e\",60,1,1,0,0,0]"), key);
        CU_ASSERT_EQUAL(parses(body), !over);
        snprintf(body, sizeof body, C("[\"k\",\"%s\",60,1,1,0,0,0]"), ep);
        CU_ASSERT_EQUAL(parses(body), !over);
        snprintf(body, sizeof body, E("[\"%s\",\"k\",\"e\",200,0,0]"), id);
        CU_ASSERT_EQUAL(parses(body), !over);
        snprintf(body, sizeof body, E("[\"i\",\"%s\",\"e\",200,0,0]"), key);
        CU_ASSERT_EQUAL(parses(body), !over);
        snprintf(body, sizeof body, E("[\"i\",\"k\",\"%s\",200,0,0]"), ep);
        CU_ASSERT_EQUAL(parses(body), !over);
        snprintf(body, sizeof body, "{\"v\":1,\"batch\":\"%s\"}", batch);
        CU_ASSERT_EQUAL(parses(body), !over);
        memset(key, 'k', sizeof key);
        memset(ep, 'e', sizeof ep);
        memset(id, 'i', sizeof id);
        memset(batch, 'b', sizeof batch);
    }
    /* The length given is what is parsed: a body cut short is refused. */
    struct usage_msg m;
    struct api_error err;
    const char *ok = "{\"v\":1,\"batch\":\"b\"}";
    CU_ASSERT_NOT_EQUAL(usage_msg_parse(ok, strlen(ok) - 1, &m, &err), 0);
    CU_ASSERT_NOT_EQUAL(usage_msg_parse(ok, USAGE_MSG_MAX_LEN + 1, &m, &err), 0);
}

/* 100 messages of 1000 buckets, built and parsed: the rate billingd's
 * parsing allows (printed, not asserted: sanitizer builds are slower). */
static void test_parse_speed(void)
{
    struct usage_agg *a = usage_agg_new();
    struct usage_counts one = {1, 1, 0, 0, 0};
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "bench_1_%d", i);
        usage_agg_add(a, key, "GET /bench", 1700000040, &one);
    }
    size_t len;
    char *body = usage_msg_build("bench", a, NULL, 0, NULL, &len);
    int64_t t0 = mono_ns();
    size_t total = 0;
    for (int i = 0; i < 100; i++) {
        struct usage_msg m;
        struct api_error err;
        CU_ASSERT_EQUAL_FATAL(usage_msg_parse(body, len, &m, &err), 0);
        total += m.nbuckets;
        usage_msg_fini(&m);
    }
    double s = (double)(mono_ns() - t0) / 1e9;
    printf("(%zu buckets parsed in %.3f s: %.0f/s) ", total, s, (double)total / s);
    CU_ASSERT_EQUAL(total, 100000);
    free(body);
    usage_agg_free(a);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_agg_new_free_clear),
        UNIT_TEST(test_agg_add_check_outcomes_and_minutes),
        UNIT_TEST(test_agg_add_distinct_strings),
        UNIT_TEST(test_agg_events_and_merge),
        UNIT_TEST(test_agg_many_buckets),
        UNIT_TEST(test_build_parse_round_trip),
        UNIT_TEST(test_build_empty_and_bad_utf8),
        UNIT_TEST(test_credits_build_parse),
        UNIT_TEST(test_marks_build_parse),
        UNIT_TEST(test_parse_accepts),
        UNIT_TEST(test_parse_rejects),
        UNIT_TEST(test_parse_string_limits),
        UNIT_TEST(test_parse_speed),
    };
    return unit_run("usagemsg", tests, sizeof tests / sizeof tests[0]);
}
