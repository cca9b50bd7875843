/* Unit tests of the checker's pure parts: which windows a check of an
 * endpoint is subject to, and the answer body written without a JSON tree. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "checker.h"
#include "strbuf.h"
#include "unit.h"

static struct key_limit lim(const char *name, int64_t window_s, int64_t limit, const char *ep)
{
    struct key_limit l;
    memset(&l, 0, sizeof l);
    snprintf(l.name, sizeof l.name, "%s", name);
    snprintf(l.endpoint, sizeof l.endpoint, "%s", ep);
    l.window_s = window_s;
    l.limit = limit;
    l.precision = 10;
    return l;
}

static void record(struct key_record *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->found = true;
    snprintf(rec->id, sizeof rec->id, "key_1");
    snprintf(rec->owner_id, sizeof rec->owner_id, "acct \"q\"\n");
    snprintf(rec->tier, sizeof rec->tier, "pro");
    rec->limits[0] = lim("per_second", 1, 5, "");
    rec->limits[1] = lim("search", 60, 100, "GET /v1/search*");
    rec->limits[2] = lim("upload", 60, 10, "POST /v1/upload");
    rec->nlimits = 3;
}

static void test_prepare_selects_windows(void)
{
    struct key_record rec;
    record(&rec);
    struct rl_request req;
    check_prepare(&rec, "GET /v1/search/x", 2, &req);
    CU_ASSERT_EQUAL_FATAL(req.nwindows, 2);
    CU_ASSERT_STRING_EQUAL(req.windows[0].name, "per_second");
    CU_ASSERT_STRING_EQUAL(req.windows[1].name, "search");
    CU_ASSERT_EQUAL(req.cost, 2);
    CU_ASSERT_STRING_EQUAL(req.key_id, "key_1");
    /* "*": only the unscoped limits; NULL (reading state): every window. */
    check_prepare(&rec, "*", 1, &req);
    CU_ASSERT_EQUAL(req.nwindows, 1);
    check_prepare(&rec, NULL, 1, &req);
    CU_ASSERT_EQUAL(req.nwindows, 3);
    check_prepare(&rec, "POST /v1/upload", 1, &req);
    CU_ASSERT_EQUAL(req.nwindows, 2);
    CU_ASSERT_STRING_EQUAL(req.windows[1].name, "upload");
}

/* The body must be valid JSON that json-c reads back, and exactly this. */
static void expect_body(const struct check_outcome *o, const char *want)
{
    struct strbuf b = {0};
    check_outcome_write_json(o, &b);
    CU_ASSERT_STRING_EQUAL(b.p, want);
    json_object *j = json_tokener_parse(b.p);
    CU_ASSERT_PTR_NOT_NULL(j);
    json_object_put(j);
    strbuf_fini(&b);
}

static void test_body_invalid_key(void)
{
    struct check_outcome o;
    memset(&o, 0, sizeof o);
    o.status = 401;
    o.reason = "invalid_key";
    o.message = "The API key is not valid.";
    expect_body(&o, "{\"allowed\":false,\"reason\":\"invalid_key\",\"key_id\":null,"
                    "\"owner_id\":null,\"tier\":null,\"limits\":[],\"remaining\":null,"
                    "\"error\":{\"code\":\"invalid_key\",\"message\":\"The API key is not valid.\"}}");
}

static void test_body_allowed_and_limited(void)
{
    struct check_outcome o;
    memset(&o, 0, sizeof o);
    record(&o.rec);
    check_prepare(&o.rec, "GET /v1/search", 1, &o.req);
    o.known = true;
    o.counted = true;
    o.status = 200;
    o.req.windows[0].remaining = 4;
    o.req.windows[0].reset_ms = 900;
    o.req.windows[1].remaining = 99;
    o.req.windows[1].reset_ms = 59000;
    o.rec.has_remaining = true;
    o.res.remaining = 41;
    expect_body(&o, "{\"allowed\":true,\"reason\":null,\"key_id\":\"key_1\","
                    "\"owner_id\":\"acct \\\"q\\\"\\n\",\"tier\":\"pro\",\"limits\":["
                    "{\"name\":\"per_second\",\"limit\":5,\"remaining\":4,\"reset_ms\":900},"
                    "{\"name\":\"search\",\"limit\":100,\"remaining\":99,\"reset_ms\":59000}],"
                    "\"remaining\":41}");
    o.status = 429;
    o.reason = "rate_limited";
    o.message = "A rate limit of this key is reached.";
    o.res.denied = RL_WINDOW;
    o.res.denied_window = 1;
    o.res.has_retry = true;
    o.res.retry_after_ms = 1234;
    o.rec.has_remaining = false;
    expect_body(&o, "{\"allowed\":false,\"reason\":\"rate_limited\",\"key_id\":\"key_1\","
                    "\"owner_id\":\"acct \\\"q\\\"\\n\",\"tier\":\"pro\",\"limits\":["
                    "{\"name\":\"per_second\",\"limit\":5,\"remaining\":4,\"reset_ms\":900},"
                    "{\"name\":\"search\",\"limit\":100,\"remaining\":99,\"reset_ms\":59000}],"
                    "\"remaining\":null,\"limit\":\"search\",\"retry_after_ms\":1234,"
                    "\"error\":{\"code\":\"rate_limited\","
                    "\"message\":\"A rate limit of this key is reached.\"}}");
    /* Not counted (e.g. suspended): limits without live state. */
    o.counted = false;
    o.status = 403;
    o.reason = "suspended";
    o.message = "The API key is suspended.";
    expect_body(&o, "{\"allowed\":false,\"reason\":\"suspended\",\"key_id\":\"key_1\","
                    "\"owner_id\":\"acct \\\"q\\\"\\n\",\"tier\":\"pro\",\"limits\":["
                    "{\"name\":\"per_second\",\"limit\":5},{\"name\":\"search\",\"limit\":100}],"
                    "\"remaining\":null,\"error\":{\"code\":\"suspended\","
                    "\"message\":\"The API key is suspended.\"}}");
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_prepare_selects_windows),
        UNIT_TEST(test_body_invalid_key),
        UNIT_TEST(test_body_allowed_and_limited),
    };
    return unit_run("checker", tests, TG_ARRAY_LEN(tests));
}
