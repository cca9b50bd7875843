#include <string.h>

#include "alertsend.h"
#include "unit.h"

static void test_sign(void)
{
    char sig[ALERTSEND_SIG_LEN];
    const char *msg = "The quick brown fox jumps over the lazy dog";
    alertsend_sign("key", msg, strlen(msg), sig);
    CU_ASSERT_STRING_EQUAL(
        sig, "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
}

static void test_backoff(void)
{
    CU_ASSERT_EQUAL(alertsend_backoff_ms(2, 0), 1000);
    CU_ASSERT_EQUAL(alertsend_backoff_ms(3, 0), 2000);
    CU_ASSERT_EQUAL(alertsend_backoff_ms(4, 0), 4000);
    CU_ASSERT_EQUAL(alertsend_backoff_ms(40, 0), 3600000); /* capped */
    CU_ASSERT_EQUAL(alertsend_backoff_ms(1000000, 0), 3600000);
    /* Jitter takes off at most half. */
    for (uint32_t r = 0; r < 5000; r += 7) {
        int64_t d = alertsend_backoff_ms(3, r);
        CU_ASSERT(d >= 1000 && d <= 2000);
    }
    CU_ASSERT_EQUAL(alertsend_backoff_ms(3, 1000), 1000);
}

static void test_retryable(void)
{
    CU_ASSERT_TRUE(alertsend_retryable(0, false));
    CU_ASSERT_TRUE(alertsend_retryable(500, false));
    CU_ASSERT_TRUE(alertsend_retryable(503, false));
    CU_ASSERT_TRUE(alertsend_retryable(429, false));
    CU_ASSERT_TRUE(alertsend_retryable(408, false));
    CU_ASSERT_FALSE(alertsend_retryable(400, false));
    CU_ASSERT_FALSE(alertsend_retryable(404, false));
    CU_ASSERT_FALSE(alertsend_retryable(301, false));
    CU_ASSERT_FALSE(alertsend_retryable(0, true));
}

/* The thread starts and stops even when the database is out of reach. */
static void test_lifecycle(void)
{
    struct config cfg = {0};
    struct api_error e;
    cfg.alerts_allow_private = "not a range";
    CU_ASSERT_PTR_NULL(alertsend_new(&cfg, NULL, NULL, &e));
    cfg.alerts_allow_private = "127.0.0.1";
    cfg.alerts_timeout_ms = 1000;
    cfg.alerts_retry_for_s = 60;
    cfg.alerts_in_flight = 4;
    struct pg_pool *pool = pg_pool_new("host=/nonexistent connect_timeout=1", 1, true);
    struct alertsend *s = alertsend_new(&cfg, pool, NULL, &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(alertsend_start(s, &e), 0);
    usleep(200000);
    alertsend_free(s);
    alertsend_free(NULL);
    pg_pool_free(pool);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_sign),
        UNIT_TEST(test_backoff),
        UNIT_TEST(test_retryable),
        UNIT_TEST(test_lifecycle),
    };
    return unit_run("alertsend", tests, sizeof tests / sizeof tests[0]);
}
