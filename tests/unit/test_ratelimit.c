/* Unit tests of ratelimit's parts that need no Redis: the choice of the
 * tightest window, the response headers, and failures against a port where
 * nothing listens. */
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

static void test_check_unreachable(void)
{
    struct redis_conn *rc = redis_conn_new(NULL, "127.0.0.1", 1, 200, NULL);
    struct rl_request req;
    struct rl_result res;
    memset(&req, 0, sizeof req);
    req.key_id = "key_unit";
    req.version = 1;
    req.cost = 1;
    add_window(&req, "per_sec", 1, 10, 10, 0);
    struct tg_err err;
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(ratelimit_check(rc, &req, &res, &err), -1);
    CU_ASSERT(err.msg[0] != '\0');
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(ratelimit_publish_version(rc, "key_unit", 2, &err), -1);
    CU_ASSERT(err.msg[0] != '\0');
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
    };
    int rc = unit_run("ratelimit", tests, TG_ARRAY_LEN(tests));
    log_close();
    return rc;
}
