/* Unit tests of redis_forget that need no server: the distinct primaries of
 * a slot table, the connection options taken from [redis], and an
 * unreachable Redis failing quickly with a message (the drill of
 * contrib/stack.d/restore_drill.sh runs it against a real one). */
#include <string.h>

#include "redis.h"
#include "redis_forget.h"
#include "unit.h"

static struct rcluster_range range(int first, int last, const char *host, int port)
{
    struct rcluster_range r = {.first = first, .last = last};
    strlcpy_tg(r.primary.host, host, sizeof r.primary.host);
    r.primary.port = port;
    return r;
}

static void test_primaries(void)
{
    /* Three primaries, one of them serving two ranges, one a port apart. */
    const struct rcluster_range ranges[] = {
        range(0, 5000, "127.0.0.1", 7000),
        range(5001, 10000, "127.0.0.1", 7001),
        range(10001, 12000, "127.0.0.1", 7000),
        range(12001, 16383, "127.0.0.2", 7001),
    };
    size_t idx[4];
    CU_ASSERT_EQUAL_FATAL(redis_forget_primaries(ranges, 4, idx), 3);
    CU_ASSERT_EQUAL(idx[0], 0);
    CU_ASSERT_EQUAL(idx[1], 1);
    CU_ASSERT_EQUAL(idx[2], 3);
    CU_ASSERT_EQUAL(redis_forget_primaries(ranges, 0, idx), 0);
}

static const char CONF[] = "[security]\n"
                           "hmac_secret = 0123456789abcdef0123456789abcdef\n"
                           "[postgres]\n"
                           "conninfo = dbname=x\n"
                           "[redis]\n"
                           "host = 127.0.0.1\n"
                           "port = 1\n"
                           "timeout_ms = 200\n"
                           "user = tg\n"
                           "password = pw-not-logged\n";

static void test_opts_and_unreachable(void)
{
    static char *const no_env[] = {NULL};
    struct config cfg;
    struct api_error e;
    memset(&e, 0, sizeof e);
    CU_ASSERT_EQUAL_FATAL(config_load_string(&cfg, "t.conf", CONF, no_env, &e), 0);
    struct rnode_opts o;
    redis_opts_from_config(&cfg, NULL, &o);
    CU_ASSERT_EQUAL(o.timeout_ms, 200);
    CU_ASSERT_STRING_EQUAL(o.user, "tg");
    CU_ASSERT_STRING_EQUAL(o.password, "pw-not-logged");
    CU_ASSERT_PTR_NULL(o.tls);
    int64_t t0 = mono_ns();
    CU_ASSERT_EQUAL(redis_forget(&cfg, &e), -1);
    CU_ASSERT_EQUAL(err_http_status(e.code), 503);
    CU_ASSERT_PTR_NULL(strstr(e.message, "pw-not-logged"));
    CU_ASSERT((mono_ns() - t0) / 1000000 < 2000);
    config_fini(&cfg);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_primaries),
        UNIT_TEST(test_opts_and_unreachable),
    };
    return unit_run("redis_forget", tests, TG_ARRAY_LEN(tests));
}
