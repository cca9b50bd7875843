/* Unit tests of the checker's pure parts: which windows a check of an
 * endpoint is subject to, and the answer body written without a JSON tree. */
#include <json-c/json.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cache.h"
#include "checker.h"
#include "localrl.h"
#include "log.h"
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
    CU_ASSERT_TRUE(check_prepare(&rec, "GET /v1/search/x", 2, &req));
    CU_ASSERT_EQUAL_FATAL(req.nwindows, 2);
    CU_ASSERT_STRING_EQUAL(req.windows[0].name, "per_second");
    CU_ASSERT_STRING_EQUAL(req.windows[1].name, "search");
    CU_ASSERT_EQUAL(req.cost, 2);
    CU_ASSERT_STRING_EQUAL(req.key_id, "key_1");
    /* "*": only the unscoped limits; NULL (reading state): every window. */
    CU_ASSERT_TRUE(check_prepare(&rec, "*", 1, &req));
    CU_ASSERT_EQUAL(req.nwindows, 1);
    CU_ASSERT_TRUE(check_prepare(&rec, NULL, 1, &req));
    CU_ASSERT_EQUAL(req.nwindows, 3);
    CU_ASSERT_TRUE(check_prepare(&rec, "POST /v1/upload", 1, &req));
    CU_ASSERT_EQUAL(req.nwindows, 2);
    CU_ASSERT_STRING_EQUAL(req.windows[1].name, "upload");
    /* A refill travels with the balance, with the start of the interval in
     * which the balance was set (2026-12-15, a month starting on the 10th). */
    rec.has_remaining = true;
    rec.refill = (struct key_refill){true, 9, 10};
    rec.remaining_set_ms = INT64_C(1797292800000) + 5;
    CU_ASSERT_TRUE(check_prepare(&rec, NULL, 1, &req));
    CU_ASSERT_TRUE(req.has_refill);
    CU_ASSERT_EQUAL(req.refill_amount, 9);
    CU_ASSERT_EQUAL(req.refill_day, 10);
    CU_ASSERT_EQUAL(req.refill_base, INT64_C(1796860800000)); /* 2026-12-10 */
    CU_ASSERT_PTR_NULL(req.owner_tag);
    /* One limit per owner moves the whole state under the owner's tag,
     * also for an endpoint whose windows are all the key's. */
    strlcpy_tg(rec.owner_tag, "00112233445566778899aabbccddeeff", sizeof rec.owner_tag);
    rec.limits[2].per_owner = true;
    CU_ASSERT_TRUE(check_prepare(&rec, "*", 1, &req));
    CU_ASSERT_STRING_EQUAL(req.owner_tag, rec.owner_tag);
    CU_ASSERT_EQUAL(req.nwindows, 1);
    CU_ASSERT_FALSE(req.windows[0].per_owner);
    CU_ASSERT_TRUE(check_prepare(&rec, NULL, 1, &req));
    CU_ASSERT_TRUE(req.windows[2].per_owner);
}

/* The peak percent journalled for limit_near: the highest window use after
 * the check, floored; 100 for a window's denial; 0 when nothing was decided. */
static void test_peak_pct(void)
{
    struct check_outcome o;
    memset(&o, 0, offsetof(struct check_outcome, rec));
    CU_ASSERT_EQUAL(check_peak_pct(&o), 0); /* not counted */
    o.counted = true;
    CU_ASSERT_EQUAL(check_peak_pct(&o), 0); /* no window */
    o.req.nwindows = 3;
    o.req.windows[0] = (struct rl_window){.limit = 10, .used = 7};
    o.req.windows[1] = (struct rl_window){.limit = 1000, .used = 799};
    o.req.windows[2] = (struct rl_window){.limit = 3, .used = 0};
    CU_ASSERT_EQUAL(check_peak_pct(&o), 79);
    o.req.windows[0].used = 8;
    CU_ASSERT_EQUAL(check_peak_pct(&o), 80);
    o.req.windows[2].used = 3;
    CU_ASSERT_EQUAL(check_peak_pct(&o), 100);
    o.req.windows[2].used = 5; /* over the limit (lowered since): still 100 */
    CU_ASSERT_EQUAL(check_peak_pct(&o), 100);
    o.req.windows[2] = (struct rl_window){.limit = 0, .used = 5}; /* never divides by 0 */
    CU_ASSERT_EQUAL(check_peak_pct(&o), 80);
    /* The largest limit cannot overflow the arithmetic. */
    o.req.nwindows = 1;
    o.req.windows[0] = (struct rl_window){.limit = 1000000000, .used = 999999999};
    CU_ASSERT_EQUAL(check_peak_pct(&o), 99);
    /* A window's denial changes no window: counted as full. */
    o.req.windows[0].used = 1;
    o.res.denied = RL_WINDOW;
    CU_ASSERT_EQUAL(check_peak_pct(&o), 100);
    /* A quota denial: the windows as they are. */
    o.res.denied = RL_QUOTA;
    CU_ASSERT_EQUAL(check_peak_pct(&o), 0);
}

/* More windows than one check carries: refused, never cut to the first 16. */
static void test_prepare_too_many_windows(void)
{
    struct key_record rec;
    record(&rec);
    rec.nlimits = RATELIMIT_MAX_WINDOWS + 1;
    for (size_t i = 0; i < rec.nlimits; i++) {
        memset(&rec.limits[i], 0, sizeof rec.limits[i]);
        snprintf(rec.limits[i].name, sizeof rec.limits[i].name, "w%zu", i);
        rec.limits[i].window_s = 60;
        rec.limits[i].limit = 10;
        rec.limits[i].precision = 10;
    }
    struct rl_request req;
    CU_ASSERT_FALSE(check_prepare(&rec, "GET /x", 1, &req));
    /* scoped away, the extra one no longer applies */
    strlcpy_tg(rec.limits[RATELIMIT_MAX_WINDOWS].endpoint, "POST /y", sizeof rec.limits[0].endpoint);
    CU_ASSERT_TRUE(check_prepare(&rec, "GET /x", 1, &req));
    CU_ASSERT_EQUAL(req.nwindows, RATELIMIT_MAX_WINDOWS);
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
    o.reason = ERR_INVALID_KEY;
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
    CU_ASSERT_TRUE(check_prepare(&o.rec, "GET /v1/search", 1, &o.req));
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
    o.reason = ERR_RATE_LIMITED;
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
    o.reason = ERR_SUSPENDED;
    o.message = "The API key is suspended.";
    expect_body(&o, "{\"allowed\":false,\"reason\":\"suspended\",\"key_id\":\"key_1\","
                    "\"owner_id\":\"acct \\\"q\\\"\\n\",\"tier\":\"pro\",\"limits\":["
                    "{\"name\":\"per_second\",\"limit\":5},{\"name\":\"search\",\"limit\":100}],"
                    "\"remaining\":null,\"error\":{\"code\":\"suspended\","
                    "\"message\":\"The API key is suspended.\"}}");
}

/* ---- The decision's order, with scripted stores and clock ---- */

/* A scripted world: the record each layer holds, what the rate-limit
 * decision answers, and a clock. */
struct world {
    struct key_record local, fresh;   /* KS_ANY answers local when has_local */
    bool has_local;
    int lookups[3];                   /* by source */
    bool lookup_fails;
    int decides;
    int stale_left;                   /* answers stale this many times */
    int store_errors_left;            /* fails this many times */
    enum rl_denied deny;
    int64_t retry_ms;
    int64_t now;
};

static int w_lookup(void *ctx, const char *hash, enum keystore_source src, struct key_record *rec,
                    struct api_error *e)
{
    struct world *w = ctx;
    CU_ASSERT_EQUAL(strlen(hash), KEYS_HASH_HEX_LEN - 1);
    w->lookups[src]++;
    if (w->lookup_fails) {
        api_error_set(e, ERR_UNAVAILABLE, NULL, "down");
        return -1;
    }
    *rec = src == KS_ANY && w->has_local ? w->local : w->fresh;
    rec->from_local = src == KS_ANY && w->has_local;
    return 0;
}

static int w_decide(void *ctx, struct rl_request *req, struct rl_result *res, struct api_error *err)
{
    struct world *w = ctx;
    w->decides++;
    memset(res, 0, sizeof *res);
    if (w->store_errors_left > 0) {
        w->store_errors_left--;
        api_error_set(err, ERR_INTERNAL, NULL, "scripted store error");
        return -1;
    }
    if (w->stale_left > 0) {
        w->stale_left--;
        res->stale = true;
        return 0;
    }
    res->denied = w->deny;
    res->now_ms = w->now;
    if (w->deny != RL_ALLOWED) {
        res->has_retry = true;
        res->retry_after_ms = w->retry_ms;
    }
    for (size_t i = 0; i < req->nwindows; i++)
        req->windows[i].remaining = w->deny == RL_ALLOWED ? 1 : 0;
    return 0;
}

static int64_t w_now(void *ctx)
{
    return ((struct world *)ctx)->now;
}

static void world_init(struct world *w, struct check_env *env)
{
    memset(w, 0, sizeof *w);
    record(&w->fresh);
    w->local = w->fresh;
    w->now = 1800000000000;
    memset(env, 0, sizeof *env);
    env->lookup = w_lookup;
    env->decide = w_decide;
    env->now_ms = w_now;
    env->ctx = w;
    static struct config_secrets secrets = {1, {(char *)"1"}, {(char *)"unit-secret"}};
    env->secrets = &secrets;
    env->on_store_error = STORE_ERROR_CLOSED;
    env->denial_ttl_ms = 500;
}

static char key[KEYS_MAX_LEN];

static void decide(const struct check_env *env, struct check_outcome *o)
{
    check_decide(env, key, strlen(key), "GET /v1/search", 1, o);
}

/* Usage is counted under the longest matching limit pattern, else "*":
 * invented paths add no usage rows. */
static void test_decide_usage_endpoint(void)
{
    struct world w;
    struct check_env env;
    struct check_outcome o;
    world_init(&w, &env);
    w.fresh.limits[3] = lim("search_one", 60, 100, "GET /v1/search/one");
    w.fresh.nlimits = 4;
    w.local = w.fresh;
    static const struct {
        const char *endpoint, *counted;
    } cases[] = {
        {"GET /v1/search", "GET /v1/search*"},
        {"GET /v1/search/one", "GET /v1/search/one"},
        {"GET /v1/search/two", "GET /v1/search*"},
        {"POST /v1/upload", "POST /v1/upload"},
        {"GET /anything/else", "*"},
        {"*", "*"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        check_decide(&env, key, strlen(key), cases[i].endpoint, 1, &o);
        CU_ASSERT_EQUAL(o.status, 200);
        CU_ASSERT_STRING_EQUAL(o.usage_endpoint, cases[i].counted);
        check_outcome_fini(&o);
    }
}

static void test_decide_malformed_key_costs_nothing(void)
{
    struct world w;
    struct check_env env;
    world_init(&w, &env);
    struct check_outcome o;
    check_decide(&env, "tg_nope", 7, "*", 1, &o);
    CU_ASSERT_EQUAL(o.status, 401);
    CU_ASSERT_EQUAL(o.reason, ERR_INVALID_KEY);
    CU_ASSERT_EQUAL(w.lookups[KS_ANY] + w.lookups[KS_FRESH] + w.lookups[KS_SKIP_LOCAL], 0);
}

static void test_decide_state_precedence(void)
{
    struct world w;
    struct check_env env;
    struct check_outcome o;
    world_init(&w, &env);
    /* Revoked and expired: revoked, the more permanent. */
    w.fresh.status = KEY_REVOKED;
    w.fresh.has_expires = true;
    w.fresh.expires_ms = w.now - 1;
    decide(&env, &o);
    CU_ASSERT_EQUAL(o.status, 403);
    CU_ASSERT_EQUAL(o.reason, ERR_REVOKED);
    CU_ASSERT_EQUAL(w.decides, 0);
    /* Suspended and expired: expired. */
    w.fresh.status = KEY_SUSPENDED;
    decide(&env, &o);
    CU_ASSERT_EQUAL(o.status, 401);
    CU_ASSERT_EQUAL(o.reason, ERR_EXPIRED);
    /* A rotated secret past its grace: invalid, whatever else holds. */
    w.fresh.has_secret_expires = true;
    w.fresh.secret_expires_ms = w.now;
    decide(&env, &o);
    CU_ASSERT_EQUAL(o.reason, ERR_INVALID_KEY);
    CU_ASSERT_FALSE(o.known);
    /* Unknown. */
    w.fresh.found = false;
    decide(&env, &o);
    CU_ASSERT_EQUAL(o.reason, ERR_INVALID_KEY);
    CU_ASSERT_EQUAL(w.decides, 0);
}

static void test_decide_confirms_cached_refusal(void)
{
    struct world w;
    struct check_env env;
    struct check_outcome o;
    world_init(&w, &env);
    /* The cached active record says expired; the store's has been extended. */
    w.has_local = true;
    w.local.has_expires = true;
    w.local.expires_ms = w.now - 1;
    decide(&env, &o);
    CU_ASSERT_EQUAL(w.lookups[KS_ANY], 1);
    CU_ASSERT_EQUAL(w.lookups[KS_SKIP_LOCAL], 1);
    CU_ASSERT_EQUAL(o.status, 200);
    CU_ASSERT_EQUAL(w.decides, 1);
}

static void test_decide_stale_record_reloaded(void)
{
    struct world w;
    struct check_env env;
    struct check_outcome o;
    world_init(&w, &env);
    w.has_local = true;
    w.stale_left = 1;
    decide(&env, &o);
    CU_ASSERT_EQUAL(o.status, 200);
    CU_ASSERT_EQUAL(w.lookups[KS_FRESH], 1);
    CU_ASSERT_EQUAL(w.decides, 2);
    /* Stale again and again: refused, never decided on an old record. */
    w.stale_left = 3;
    w.decides = 0;
    decide(&env, &o);
    CU_ASSERT_EQUAL(o.status, 503);
    CU_ASSERT_EQUAL(w.decides, 3);
}

static void test_decide_store_failure_modes(void)
{
    struct world w;
    struct check_env env;
    struct check_outcome o;
    static const struct {
        enum store_error_mode mode;
        int status;
    } modes[] = {{STORE_ERROR_CLOSED, 503}, {STORE_ERROR_OPEN, 200}, {STORE_ERROR_LOCAL, 200}};
    for (size_t i = 0; i < TG_ARRAY_LEN(modes); i++) {
        world_init(&w, &env);
        struct localrl *l = localrl_new(16);
        env.local = l;
        env.local_processes = 1;
        env.on_store_error = modes[i].mode;
        /* A cached record is first re-read from PostgreSQL; the mode
         * applies when the store still fails. */
        w.has_local = true;
        w.store_errors_left = 2;
        decide(&env, &o);
        CU_ASSERT_EQUAL(w.lookups[KS_FRESH], 1);
        CU_ASSERT_EQUAL(w.decides, 2);
        CU_ASSERT_EQUAL(o.status, modes[i].status);
        if (modes[i].mode == STORE_ERROR_LOCAL) {
            /* Local windows of limit 5 (per_second) hold the line. */
            int admitted = 1;
            for (int k = 0; k < 10; k++) {
                w.store_errors_left = 1;
                w.has_local = false;
                decide(&env, &o);
                admitted += o.status == 200;
            }
            CU_ASSERT_EQUAL(admitted, 5);
        }
        localrl_free(l);
    }
}

static void test_decide_lookup_failure(void)
{
    struct world w;
    struct check_env env;
    struct check_outcome o;
    world_init(&w, &env);
    w.lookup_fails = true;
    decide(&env, &o);
    CU_ASSERT_EQUAL(o.status, 503);
    CU_ASSERT_FALSE(o.known);
    CU_ASSERT_EQUAL(w.decides, 0);
}

static void test_decide_denial_replayed(void)
{
    struct world w;
    struct check_env env;
    struct check_outcome o;
    world_init(&w, &env);
    env.denials = cache_new(64, 500);
    w.deny = RL_WINDOW;
    w.retry_ms = 300;
    decide(&env, &o);
    CU_ASSERT_EQUAL(o.status, 429);
    CU_ASSERT_EQUAL(o.reason, ERR_RATE_LIMITED);
    CU_ASSERT_EQUAL(w.decides, 1);
    /* Within the retry time: refused again without asking the store, with
     * the retry counted down. */
    w.now += 100;
    decide(&env, &o);
    CU_ASSERT_EQUAL(o.status, 429);
    CU_ASSERT_EQUAL(w.decides, 1);
    CU_ASSERT_EQUAL(o.res.retry_after_ms, 200);
    CU_ASSERT_STRING_EQUAL(o.rec.id, "key_1");
    /* After it: asked again (and now allowed). */
    w.now += 250;
    w.deny = RL_ALLOWED;
    decide(&env, &o);
    CU_ASSERT_EQUAL(o.status, 200);
    CU_ASSERT_EQUAL(w.decides, 2);
    cache_free(env.denials);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_prepare_selects_windows),
        UNIT_TEST(test_prepare_too_many_windows),
        UNIT_TEST(test_peak_pct),
        UNIT_TEST(test_body_invalid_key),
        UNIT_TEST(test_body_allowed_and_limited),
        UNIT_TEST(test_decide_usage_endpoint),
        UNIT_TEST(test_decide_malformed_key_costs_nothing),
        UNIT_TEST(test_decide_state_precedence),
        UNIT_TEST(test_decide_confirms_cached_refusal),
        UNIT_TEST(test_decide_stale_record_reloaded),
        UNIT_TEST(test_decide_store_failure_modes),
        UNIT_TEST(test_decide_lookup_failure),
        UNIT_TEST(test_decide_denial_replayed),
    };
    keys_generate("unit-secret", "tg", key);
    log_open("/dev/null", LOG_ERROR);
    int rc = unit_run("checker", tests, TG_ARRAY_LEN(tests));
    log_close();
    return rc;
}
