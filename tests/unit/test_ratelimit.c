/* Unit tests of ratelimit's parts that need no Redis: the script's call
 * (arguments, validation), the reading of its replies, the choice of the
 * tightest window, the response headers, and failures against a port where
 * nothing listens.  tests/integration/rl_trace runs the script itself. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ratelimit.h"
#include "redis.h"
#include "unit.h"

static void add_window(struct rl_request *req, const char *name, int64_t window_s, int64_t limit,
                       int64_t remaining, int64_t reset_ms)
{
    struct rl_window *w = &req->windows[req->nwindows++];
    memset(w, 0, sizeof *w);
    strlcpy_tg(w->name, name, sizeof w->name);
    w->window_s = window_s;
    w->limit = limit;
    w->precision = 10;
    w->used = limit - remaining;
    w->remaining = remaining;
    w->reset_ms = reset_ms;
}

static void test_tightest(void)
{
    struct rl_request req;
    memset(&req, 0, sizeof req);
    CU_ASSERT_EQUAL(ratelimit_tightest(&req), -1);
    add_window(&req, "a", 60, 100, 50, 1000);
    CU_ASSERT_EQUAL(ratelimit_tightest(&req), 0);
    add_window(&req, "b", 1, 10, 5, 900); /* least remaining */
    CU_ASSERT_EQUAL(ratelimit_tightest(&req), 1);
    add_window(&req, "c", 3600, 1000, 5, 800); /* same remaining, sooner reset */
    CU_ASSERT_EQUAL(ratelimit_tightest(&req), 2);
    add_window(&req, "d", 3600, 1000, 5, 800); /* a full tie keeps the first */
    CU_ASSERT_EQUAL(ratelimit_tightest(&req), 2);
    add_window(&req, "e", 86400, 10000, 0, 99999999);
    CU_ASSERT_EQUAL(ratelimit_tightest(&req), 4);
}

static void test_headers_none(void)
{
    struct rl_request req;
    struct rl_result res;
    memset(&req, 0, sizeof req);
    memset(&res, 0, sizeof res);
    char buf[256] = "junk";
    ratelimit_headers(&req, &res, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "");
    /* A quota denial without windows still says when to retry. */
    res.denied = RL_QUOTA;
    res.has_retry = true;
    res.retry_after_ms = 86400000;
    ratelimit_headers(&req, &res, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "Retry-After: 86400\r\n");
}

static void test_headers_windows(void)
{
    struct rl_request req;
    struct rl_result res;
    memset(&req, 0, sizeof req);
    memset(&res, 0, sizeof res);
    add_window(&req, "per_sec", 1, 10, 3, 400);
    add_window(&req, "per_min", 60, 100, 3, 30000);
    char buf[1024];
    ratelimit_headers(&req, &res, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf,
                           "RateLimit-Policy: \"per_sec\";q=10;w=1, \"per_min\";q=100;w=60\r\n"
                           "RateLimit: \"per_sec\";r=3;t=1\r\n"
                           "X-RateLimit-Limit: 10\r\n"
                           "X-RateLimit-Remaining: 3\r\n"
                           "X-RateLimit-Reset: 1\r\n");
}

static void test_headers_rounding(void)
{
    struct rl_request req;
    struct rl_result res;
    char buf[1024];
    static const struct {
        int64_t reset_ms;
        const char *t;
    } cases[] = {{0, "t=0"}, {1, "t=1"}, {999, "t=1"}, {1000, "t=1"}, {1001, "t=2"}};
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        memset(&req, 0, sizeof req);
        memset(&res, 0, sizeof res);
        add_window(&req, "w", 60, 5, 1, cases[i].reset_ms);
        ratelimit_headers(&req, &res, buf, sizeof buf);
        char want[64];
        snprintf(want, sizeof want, "RateLimit: \"w\";r=1;%s\r\n", cases[i].t);
        CU_ASSERT_PTR_NOT_NULL(strstr(buf, want));
    }
}

static void test_headers_retry(void)
{
    struct rl_request req;
    struct rl_result res;
    char buf[1024];
    memset(&req, 0, sizeof req);
    memset(&res, 0, sizeof res);
    add_window(&req, "per_sec", 1, 10, 0, 1500);
    res.denied = RL_WINDOW;
    res.denied_window = 0;
    res.has_retry = true;
    res.retry_after_ms = 1500;
    ratelimit_headers(&req, &res, buf, sizeof buf);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "X-RateLimit-Remaining: 0\r\n"));
    size_t n = strlen(buf);
    static const char tail[] = "Retry-After: 2\r\n";
    CU_ASSERT(n >= sizeof tail - 1 && strcmp(buf + n - (sizeof tail - 1), tail) == 0);
    /* No Retry-After when allowed, or when denied without a retry time. */
    res.denied = RL_ALLOWED;
    ratelimit_headers(&req, &res, buf, sizeof buf);
    CU_ASSERT_PTR_NULL(strstr(buf, "Retry-After"));
    res.denied = RL_REMAINING;
    res.has_retry = false;
    ratelimit_headers(&req, &res, buf, sizeof buf);
    CU_ASSERT_PTR_NULL(strstr(buf, "Retry-After"));
}

static void test_headers_bounded(void)
{
    struct rl_request req;
    struct rl_result res;
    memset(&req, 0, sizeof req);
    memset(&res, 0, sizeof res);
    for (int i = 0; i < RATELIMIT_MAX_WINDOWS; i++) {
        char name[33];
        snprintf(name, sizeof name, "window_with_a_long_name_%02d", i);
        add_window(&req, name, 2678400, 1000000000, 1000000000, 2678400000);
    }
    res.denied = RL_WINDOW;
    res.has_retry = true;
    res.retry_after_ms = 1000;
    char buf[64 + 8];
    memset(buf, 'C', sizeof buf);
    ratelimit_headers(&req, &res, buf, 64);
    CU_ASSERT(memchr(buf, '\0', 64) != NULL); /* terminated inside its size */
    CU_ASSERT_EQUAL(memcmp(buf + 64, "CCCCCCCC", 8), 0); /* and nothing past it */
    /* Every line written is a whole line. */
    size_t n = strlen(buf);
    CU_ASSERT(n == 0 || (n >= 2 && buf[n - 2] == '\r' && buf[n - 1] == '\n'));
}

/* A request of two windows, valid as the API would store it. */
static void call_request(struct rl_request *req)
{
    memset(req, 0, sizeof *req);
    req->key_id = "key_0123456789abcdefghij";
    req->version = 7;
    req->cost = 1;
    add_window(req, "per_second", 1, 50, 50, 0);
    add_window(req, "per_minute", 60, 2000, 2000, 0);
    req->windows[1].precision = 7;
}

static void test_call_arguments(void)
{
    struct rl_request req;
    struct rl_call call;
    call_request(&req);
    ratelimit_call_init(&req, 3, &call);
    CU_ASSERT_EQUAL(call.nkeys, 2);
    CU_ASSERT_STRING_EQUAL(call.keys[0], "tg:{key_0123456789abcdefghij}:c");
    CU_ASSERT_STRING_EQUAL(call.keys[1], "tg:{key_0123456789abcdefghij}:s");
    /* cost, version, no quota, quota blocks, no credits, credit version,
     * no seed (month, quota use, credits), no refill (amount, day, base),
     * seed interval; then id, limit, bucket ms (rounded up) and precision
     * of each window; numbers in hexadecimal. */
    static const char *const want[] = {
        "3", "7", "", "0", "", "0", "", "", "", "", "0", "0", "0", "",
        "per_second:1:10", "32", "64", "a",
        "per_minute:60:7", "7d0", "217c", "7",
    };
    CU_ASSERT_EQUAL(call.nargs, (int)TG_ARRAY_LEN(want));
    for (int i = 0; i < call.nargs && i < (int)TG_ARRAY_LEN(want); i++)
        CU_ASSERT_STRING_EQUAL(call.args[i], want[i]);
    /* The call owns its text: the request may go. */
    memset(&req, 0, sizeof req);
    CU_ASSERT_STRING_EQUAL(call.args[14], "per_second:1:10");
}

static void test_call_quota_and_credits(void)
{
    struct rl_request req;
    struct rl_call call;
    call_request(&req);
    req.nwindows = 0;
    req.has_quota = true;
    req.quota_included = 1000000;
    req.quota_blocks = true;
    req.has_remaining = true;
    req.remaining = 0;
    req.remaining_version = 12;
    ratelimit_call_init(&req, 0, &call);
    static const char *const want[] = {"0", "7", "f4240", "1", "0", "c", "", "",
                                       "",  "",  "0",     "0", "0", ""};
    CU_ASSERT_EQUAL(call.nargs, 14);
    for (int i = 0; i < call.nargs && i < 14; i++)
        CU_ASSERT_STRING_EQUAL(call.args[i], want[i]);
    /* With a seed: its month, the month's quota use and the credits left. */
    req.has_seed = true;
    req.seed_month = 202612;
    req.seed_quota_used = 255;
    req.seed_remaining = 3;
    ratelimit_call_init(&req, 1, &call);
    static const char *const seeded[] = {"1", "7", "f4240", "1", "0", "c", "31774",
                                         "ff", "3", "", "0", "0", "0", ""};
    CU_ASSERT_EQUAL(call.nargs, 14);
    for (int i = 0; i < call.nargs && i < 14; i++)
        CU_ASSERT_STRING_EQUAL(call.args[i], seeded[i]);
    /* A monthly refill on the 15th of 100 credits, the balance set in the
     * interval starting at 1000 ms; the seed's credits are of interval 2000. */
    req.has_refill = true;
    req.refill_amount = 100;
    req.refill_day = 15;
    req.refill_base = 1000;
    req.seed_refill = 2000;
    ratelimit_call_init(&req, 1, &call);
    static const char *const refill[] = {"64", "f", "3e8", "7d0"};
    CU_ASSERT_EQUAL(call.nargs, 14);
    for (int i = 9; i < call.nargs && i < 13; i++)
        CU_ASSERT_STRING_EQUAL(call.args[i], refill[i - 9]);
    /* A key without credits seeds none. */
    req.has_remaining = false;
    ratelimit_call_init(&req, 1, &call);
    CU_ASSERT_STRING_EQUAL(call.args[8], "");
    CU_ASSERT_STRING_EQUAL(call.args[7], "ff");
}

static void test_call_bounds(void)
{
    struct rl_request req;
    struct rl_call call;
    call_request(&req);
    req.windows[0].window_s = RL_WINDOW_S_MAX;
    req.windows[0].limit = RL_LIMIT_MAX;
    req.windows[0].precision = RL_PRECISION_MAX;
    req.version = RL_COUNT_MAX;
    memset(req.windows[1].name, 'z', RL_NAME_MAX);
    req.windows[1].name[RL_NAME_MAX] = '\0';
    ratelimit_call_init(&req, RL_COST_MAX, &call);
    CU_ASSERT_STRING_EQUAL(call.args[0], "3e8");
    CU_ASSERT_STRING_EQUAL(call.args[1], "38d7ea4c68000");
    CU_ASSERT_STRING_EQUAL(call.args[14], "per_second:2678400:60");
    CU_ASSERT_STRING_EQUAL(call.args[15], "3b9aca00");
    CU_ASSERT_STRING_EQUAL(call.args[16], "2a92700");
    CU_ASSERT_STRING_EQUAL(call.args[17], "3c");
    CU_ASSERT_EQUAL(strlen(call.args[18]), RL_NAME_MAX + 5);
}

/* Each way a request can be wrong makes a call the script refuses. */
static void test_call_invalid(void)
{
    enum { CASES = 22 };
    for (int c = 0; c < CASES; c++) {
        struct rl_request req;
        struct rl_call call;
        int64_t cost = 1;
        char long_id[RL_KEY_ID_MAX + 2];
        call_request(&req);
        switch (c) {
        case 0: cost = -1; break;
        case 1: cost = RL_COST_MAX + 1; break;
        case 2: req.key_id = "key_{x}"; break;
        case 3:
            memset(long_id, 'k', sizeof long_id - 1);
            long_id[sizeof long_id - 1] = '\0';
            req.key_id = long_id;
            break;
        case 4: req.key_id = ""; break;
        case 5: req.version = -1; break;
        case 6: req.windows[1].precision = 0; break;
        case 7: req.windows[1].precision = RL_PRECISION_MAX + 1; break;
        case 8: req.windows[0].window_s = 0; break;
        case 9: req.windows[0].window_s = RL_WINDOW_S_MAX + 1; break;
        case 10: req.windows[0].limit = 0; break;
        case 11: strcpy(req.windows[0].name, "Per_Second"); break;
        case 12: memset(req.windows[0].name, 'a', sizeof req.windows[0].name); break;
        case 13: req.nwindows = RL_WINDOWS_MAX + 1; break;
        case 14: req.has_quota = true; req.quota_included = -5; break;
        case 15: req.has_seed = true; req.seed_month = 197000; break;
        case 16: req.has_seed = true; req.seed_month = 202601; req.seed_quota_used = -1; break;
        case 17:
            req.has_seed = true;
            req.seed_month = 202601;
            req.seed_remaining = RL_COUNT_MAX + 1;
            break;
        case 18: req.has_refill = true; req.refill_day = 29; break;
        case 19: req.has_refill = true; req.refill_amount = -1; break;
        case 20: req.has_seed = true; req.seed_month = 202601; req.seed_refill = -1; break;
        default: req.has_remaining = true; req.remaining = RL_COUNT_MAX + 1; break;
        }
        ratelimit_call_init(&req, cost, &call);
        CU_ASSERT_STRING_EQUAL(call.args[0], "");
        CU_ASSERT_EQUAL(call.nargs, 9);
        CU_ASSERT_EQUAL(call.nkeys, 2);
        CU_ASSERT_STRING_EQUAL(call.keys[0], "tg:{invalid}:c");
    }
}

/* A reply as hiredis would build it: an array of integers. */
static redisReply *int_array(const long long *v, size_t n)
{
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof *r->element);
    for (size_t i = 0; i < n; i++) {
        r->element[i] = calloc(1, sizeof *r->element[i]);
        r->element[i]->type = REDIS_REPLY_INTEGER;
        r->element[i]->integer = v[i];
    }
    return r;
}

static void test_read_reply(void)
{
    struct rl_request req;
    struct rl_result res;
    struct api_error err;
    call_request(&req);
    /* Refused by the second window, with a retry time; credits left. */
    static const long long denied[] = {1, 1700000000123, 1, 2, 950, 0, 0, 4, 3, 120, 2000, 950};
    redisReply *r = int_array(denied, TG_ARRAY_LEN(denied));
    CU_ASSERT_EQUAL(ratelimit_read_reply(r, &req, &res, &err), 0);
    CU_ASSERT_FALSE(res.stale);
    CU_ASSERT_EQUAL(res.now_ms, 1700000000123);
    CU_ASSERT_EQUAL(res.denied, RL_WINDOW);
    CU_ASSERT_EQUAL(res.denied_window, 1);
    CU_ASSERT(res.has_retry);
    CU_ASSERT_EQUAL(res.retry_after_ms, 950);
    CU_ASSERT_EQUAL(res.remaining, 4);
    CU_ASSERT_EQUAL(req.windows[0].used, 3);
    CU_ASSERT_EQUAL(req.windows[0].remaining, 47);
    CU_ASSERT_EQUAL(req.windows[0].reset_ms, 120);
    CU_ASSERT_EQUAL(req.windows[1].remaining, 0);
    freeReplyObject(r);
    /* Allowed: no retry, whatever the field says. */
    static const long long allowed[] = {1, 5, 0, 0, -1, 9, 86400000, -1, 1, 100, 1, 60000};
    r = int_array(allowed, TG_ARRAY_LEN(allowed));
    CU_ASSERT_EQUAL(ratelimit_read_reply(r, &req, &res, &err), 0);
    CU_ASSERT_EQUAL(res.denied, RL_ALLOWED);
    CU_ASSERT_FALSE(res.has_retry);
    CU_ASSERT_EQUAL(res.quota_used, 9);
    CU_ASSERT_EQUAL(res.period_end_ms, 86400000);
    freeReplyObject(r);
    /* Credits refused: denied without a retry time. */
    static const long long credits[] = {1, 5, 3, 0, -1, 0, 0, 0, 1, 100, 1, 60000};
    r = int_array(credits, TG_ARRAY_LEN(credits));
    CU_ASSERT_EQUAL(ratelimit_read_reply(r, &req, &res, &err), 0);
    CU_ASSERT_EQUAL(res.denied, RL_REMAINING);
    CU_ASSERT_FALSE(res.has_retry);
    freeReplyObject(r);
    /* A stale record: only the time comes back. */
    static const long long stale[] = {2, 42};
    r = int_array(stale, TG_ARRAY_LEN(stale));
    CU_ASSERT_EQUAL(ratelimit_read_reply(r, &req, &res, &err), 0);
    CU_ASSERT(res.stale);
    CU_ASSERT_FALSE(res.missing);
    CU_ASSERT_EQUAL(res.now_ms, 42);
    freeReplyObject(r);
    /* A missing state: only the time, and no decision. */
    static const long long missing[] = {3, 43};
    r = int_array(missing, TG_ARRAY_LEN(missing));
    CU_ASSERT_EQUAL(ratelimit_read_reply(r, &req, &res, &err), 0);
    CU_ASSERT(res.missing);
    CU_ASSERT_FALSE(res.stale);
    CU_ASSERT_EQUAL(res.denied, RL_ALLOWED);
    CU_ASSERT_EQUAL(res.now_ms, 43);
    freeReplyObject(r);
}

/* The state hash shares the check's hash tag; ids the script refuses have none. */
static void test_state_key(void)
{
    char out[RL_STATE_KEY_MAX];
    static const char tag[] = "0123456789abcdef0123456789abcdef";
    CU_ASSERT_EQUAL(ratelimit_state_key("key_abc", NULL, out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "tg:{key_abc}:s");
    CU_ASSERT_EQUAL(ratelimit_state_key("key_abc", tag, out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "tg:{o:0123456789abcdef0123456789abcdef}:k:key_abc:s");
    CU_ASSERT_EQUAL(ratelimit_state_key("key_{x}", NULL, out, sizeof out), -1);
    CU_ASSERT_EQUAL(ratelimit_state_key("", NULL, out, sizeof out), -1);
    CU_ASSERT_EQUAL(ratelimit_state_key(NULL, NULL, out, sizeof out), -1);
    CU_ASSERT_EQUAL(ratelimit_state_key("key_abc", NULL, out, 8), -1);
    CU_ASSERT_EQUAL(ratelimit_state_key("key_abc", "0123}", out, sizeof out), -1);
    CU_ASSERT_EQUAL(ratelimit_state_key("key_abc", "0123456789ABCDEF0123456789abcdef", out,
                                        sizeof out), -1);
}

/* A key with a per-owner window: its keys and the owner's windows in the
 * owner's hash tag (one cluster slot), and the mask of owner windows. */
static void test_call_owner(void)
{
    struct rl_request req;
    struct rl_call call;
    call_request(&req);
    req.owner_tag = "00112233445566778899aabbccddeeff";
    req.windows[1].per_owner = true;
    ratelimit_call_init(&req, 1, &call);
    CU_ASSERT_EQUAL(call.nkeys, 3);
    CU_ASSERT_STRING_EQUAL(call.keys[0],
                           "tg:{o:00112233445566778899aabbccddeeff}:k:key_0123456789abcdefghij:c");
    CU_ASSERT_STRING_EQUAL(call.keys[1],
                           "tg:{o:00112233445566778899aabbccddeeff}:k:key_0123456789abcdefghij:s");
    CU_ASSERT_STRING_EQUAL(call.keys[2], "tg:{o:00112233445566778899aabbccddeeff}:c");
    CU_ASSERT_STRING_EQUAL(call.args[13], "01");
    CU_ASSERT_STRING_EQUAL(call.args[14], "per_second:1:10");
    /* The tag alone (the window of this endpoint is the key's): no mask. */
    req.windows[1].per_owner = false;
    ratelimit_call_init(&req, 1, &call);
    CU_ASSERT_EQUAL(call.nkeys, 3);
    CU_ASSERT_STRING_EQUAL(call.args[13], "");
    /* A malformed tag makes an invalid call. */
    req.owner_tag = "00112233";
    ratelimit_call_init(&req, 1, &call);
    CU_ASSERT_STRING_EQUAL(call.args[0], "");
}

static void test_read_reply_malformed(void)
{
    struct rl_request req;
    struct rl_result res;
    struct api_error err;
    call_request(&req);
    /* One window too few for the request. */
    static const long long short_reply[] = {1, 5, 0, 0, -1, 0, 0, -1, 1, 100};
    redisReply *r = int_array(short_reply, TG_ARRAY_LEN(short_reply));
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(ratelimit_read_reply(r, &req, &res, &err), -1);
    CU_ASSERT(err.message[0] != '\0');
    freeReplyObject(r);
    r = int_array(NULL, 0);
    CU_ASSERT_EQUAL(ratelimit_read_reply(r, &req, &res, &err), -1);
    freeReplyObject(r);
    /* An error reply, such as the script's answer to an invalid call. */
    r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_ERROR;
    r->str = strdup("ERR tollgate: invalid rate-limit call");
    r->len = strlen(r->str);
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(ratelimit_read_reply(r, &req, &res, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "invalid rate-limit call"));
    freeReplyObject(r);
}

/* An invalid request fails before any I/O, with its own message. */
static void test_check_invalid(void)
{
    struct redis_conn *rc = redis_conn_new(NULL, "127.0.0.1", 1, &(struct rnode_opts){.timeout_ms = 200});
    struct rl_request req;
    struct rl_result res;
    struct api_error err;
    call_request(&req);
    req.windows[0].precision = 0;
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(ratelimit_check(rc, &req, &res, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "window 0"));
    call_request(&req);
    req.key_id = NULL;
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(ratelimit_peek(rc, &req, &res, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "key id"));
    redis_conn_free(rc);
}

static void test_check_unreachable(void)
{
    struct redis_conn *rc = redis_conn_new(NULL, "127.0.0.1", 1, &(struct rnode_opts){.timeout_ms = 200});
    struct rl_request req;
    struct rl_result res;
    memset(&req, 0, sizeof req);
    req.key_id = "key_unit";
    req.version = 1;
    req.cost = 1;
    add_window(&req, "per_sec", 1, 10, 10, 0);
    struct api_error err;
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(ratelimit_check(rc, &req, &res, &err), -1);
    CU_ASSERT(err.message[0] != '\0');
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(ratelimit_publish_version(rc, "key_unit", NULL, 2, &err), -1);
    CU_ASSERT_EQUAL(ratelimit_publish_version(rc, "key_unit", "bad}", 2, &err), -1);
    /* Nothing elsewhere to clear without an owner; Redis asked otherwise. */
    CU_ASSERT_EQUAL(ratelimit_clear_other(rc, &req, &err), 0);
    req.key_owner_tag = "00112233445566778899aabbccddeeff";
    CU_ASSERT_EQUAL(ratelimit_clear_other(rc, &req, &err), -1);
    req.owner_tag = req.key_owner_tag;
    req.key_id = "key_{x}";
    CU_ASSERT_EQUAL(ratelimit_clear_other(rc, &req, &err), -1);
    CU_ASSERT(err.message[0] != '\0');
    redis_conn_free(rc);
}

int main(void)
{
    log_open("/dev/null", LOG_ERROR);
    static const struct unit_test tests[] = {
        UNIT_TEST(test_tightest),
        UNIT_TEST(test_headers_none),
        UNIT_TEST(test_headers_windows),
        UNIT_TEST(test_headers_rounding),
        UNIT_TEST(test_headers_retry),
        UNIT_TEST(test_headers_bounded),
        UNIT_TEST(test_check_unreachable),
        UNIT_TEST(test_call_arguments),
        UNIT_TEST(test_call_quota_and_credits),
        UNIT_TEST(test_call_bounds),
        UNIT_TEST(test_call_invalid),
        UNIT_TEST(test_read_reply),
        UNIT_TEST(test_read_reply_malformed),
        UNIT_TEST(test_state_key),
        UNIT_TEST(test_call_owner),
        UNIT_TEST(test_check_invalid),
    };
    int rc = unit_run("ratelimit", tests, TG_ARRAY_LEN(tests));
    log_close();
    return rc;
}
