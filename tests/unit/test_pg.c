/* Unit tests of pg that need no server: an unreachable database becomes
 * 503 unavailable, quickly, without keeping the pool's connection busy and
 * without logging the password. */
#include <string.h>

#include "log.h"
#include "pg.h"
#include "unit.h"

#define UNREACHABLE \
    "host=127.0.0.1 port=1 connect_timeout=1 dbname=tollgate user=tollgate password=hunter2pw"

static char LOG_PATH[256];

static void test_acquire_unreachable(void)
{
    struct pg_pool *pool = pg_pool_new(UNREACHABLE, 1, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    struct api_error e;
    memset(&e, 0, sizeof e);
    int64_t start = mono_ns();
    CU_ASSERT_PTR_NULL(pg_acquire(pool, &e));
    CU_ASSERT_EQUAL(err_http_status(e.code), 503);
    CU_ASSERT_NOT_EQUAL_FATAL(e.code, ERR_NONE);
    CU_ASSERT_STRING_EQUAL(err_name(e.code), "unavailable");
    CU_ASSERT_STRING_EQUAL(e.field, "");
    /* The failed connection went back to the pool: a second try fails the
     * same way at once instead of waiting 2 s for a free slot. */
    memset(&e, 0, sizeof e);
    CU_ASSERT_PTR_NULL(pg_acquire(pool, &e));
    CU_ASSERT_EQUAL(err_http_status(e.code), 503);
    CU_ASSERT_STRING_EQUAL(err_name(e.code), "unavailable");
    int64_t elapsed_ms = (mono_ns() - start) / 1000000;
    CU_ASSERT(elapsed_ms < 1500);
    pg_pool_free(pool);
}

static void test_connect_unreachable(void)
{
    struct api_error e;
    memset(&e, 0, sizeof e);
    CU_ASSERT_PTR_NULL(pg_connect(UNREACHABLE, &e));
    CU_ASSERT_EQUAL(err_http_status(e.code), 503);
    CU_ASSERT_NOT_EQUAL_FATAL(e.code, ERR_NONE);
    CU_ASSERT_STRING_EQUAL(err_name(e.code), "unavailable");
}

static void test_failure_logged_without_password(void)
{
    char *s = unit_slurp(LOG_PATH, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "postgres unavailable"));
    CU_ASSERT_PTR_NULL(strstr(s, "hunter2pw"));
    free(s);
}

static void test_null_harmless(void)
{
    struct pg_pool *pool = pg_pool_new(UNREACHABLE, 2, true);
    pg_release(pool, NULL);
    pg_pool_free(pool);
    pg_pool_free(NULL);
    pg_disconnect(NULL);
}

int main(void)
{
    if (unit_tmpfile(LOG_PATH, sizeof LOG_PATH) != 0 || log_open(LOG_PATH, LOG_ERROR) != 0)
        return 1;
    static const struct unit_test tests[] = {
        UNIT_TEST(test_acquire_unreachable),
        UNIT_TEST(test_connect_unreachable),
        UNIT_TEST(test_failure_logged_without_password),
        UNIT_TEST(test_null_harmless),
    };
    int rc = unit_run("pg", tests, TG_ARRAY_LEN(tests));
    log_close();
    unlink(LOG_PATH);
    return rc;
}
