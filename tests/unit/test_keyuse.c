/* Unit tests of keyuse: the seed made from a key's durable use, and the
 * paths to the stores against a scripted Redis and an unreachable
 * PostgreSQL.  keyuse_load's query runs against the real database in the
 * fault suite (FLUSHALL and restart tests, tests/integration/faults.c). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "keyuse.h"
#include "log.h"
#include "pg.h"
#include "redis.h"
#include "unit.h"

#define PG_UNREACHABLE "host=127.0.0.1 port=1 connect_timeout=1 dbname=tollgate user=tollgate"

static struct rl_request request(void)
{
    struct rl_request req;
    memset(&req, 0, sizeof req);
    req.key_id = "key_1";
    req.version = 3;
    req.cost = 1;
    req.has_quota = true;
    req.quota_included = 10;
    req.quota_blocks = true;
    req.has_remaining = true;
    req.remaining = 5;
    req.remaining_version = 2;
    return req;
}

static void test_seed(void)
{
    struct rl_request req = request();
    struct keyuse u = {true, true, 5, 2, 3, 7};
    CU_ASSERT_TRUE(keyuse_seed(&req, &u, 202612, 0));
    CU_ASSERT_TRUE(req.has_seed);
    CU_ASSERT_EQUAL(req.seed_month, 202612);
    CU_ASSERT_EQUAL(req.seed_quota_used, 7);
    CU_ASSERT_EQUAL(req.seed_remaining, 2);
    /* More consumed than set (checks allowed while Redis was away): none left. */
    req = request();
    u.credits_used = 9;
    CU_ASSERT_TRUE(keyuse_seed(&req, &u, 202612, 0));
    CU_ASSERT_EQUAL(req.seed_remaining, 0);
    /* Another balance, a key without credits, an unknown key: stale. */
    req = request();
    u.remaining_version = 3;
    CU_ASSERT_FALSE(keyuse_seed(&req, &u, 202612, 0));
    CU_ASSERT_FALSE(req.has_seed);
    u.remaining_version = 2;
    u.has_remaining = false;
    CU_ASSERT_FALSE(keyuse_seed(&req, &u, 202612, 0));
    u.has_remaining = true;
    u.found = false;
    CU_ASSERT_FALSE(keyuse_seed(&req, &u, 202612, 0));
    /* A key with a quota only seeds no credits. */
    req = request();
    req.has_remaining = false;
    struct keyuse q = {true, false, 0, 0, 0, 4};
    CU_ASSERT_TRUE(keyuse_seed(&req, &q, 202601, 0));
    CU_ASSERT_EQUAL(req.seed_quota_used, 4);
    CU_ASSERT_EQUAL(req.seed_remaining, 0);
}

/* A balance with a daily refill of 10, set at 5 on day 20000: within that
 * day it is 5 minus the day's use, in any later day the amount minus that
 * day's use; the seed names the interval. */
static void test_seed_refill(void)
{
    const int64_t day = 86400000, set = 20000 * day;
    struct rl_request req = request();
    req.has_refill = true;
    req.refill_amount = 10;
    req.refill_day = 0;
    req.refill_base = set;
    CU_ASSERT_EQUAL(keyuse_refill_start(&req, set + 5000), set);
    CU_ASSERT_EQUAL(keyuse_refill_start(&req, set + day + 5000), set + day);
    struct keyuse u = {true, true, 5, 2, 3, 0};
    CU_ASSERT_TRUE(keyuse_seed(&req, &u, 202410, set));
    CU_ASSERT_EQUAL(req.seed_remaining, 2);
    CU_ASSERT_EQUAL(req.seed_refill, set);
    req = request();
    req.has_refill = true;
    req.refill_amount = 10;
    req.refill_base = set;
    CU_ASSERT_TRUE(keyuse_seed(&req, &u, 202410, set + day));
    CU_ASSERT_EQUAL(req.seed_remaining, 7);
    CU_ASSERT_EQUAL(req.seed_refill, set + day);
    /* Without a refill the interval is always 0. */
    req = request();
    CU_ASSERT_EQUAL(keyuse_refill_start(&req, set + day), 0);
    req.has_refill = true;
    req.has_remaining = false;
    CU_ASSERT_EQUAL(keyuse_refill_start(&req, set + day), 0);
}

/* A Redis that answers each command it receives with the next reply. */
struct fake {
    int lfd;
    const char *const *replies;
    size_t n;
};

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    int c = accept(f->lfd, NULL, NULL);
    char buf[4096];
    for (size_t i = 0; c >= 0 && i < f->n; i++) {
        if (read(c, buf, sizeof buf) <= 0)
            break;
        if (write(c, f->replies[i], strlen(f->replies[i])) < 0)
            break;
    }
    if (c >= 0) {
        while (read(c, buf, sizeof buf) > 0) {
        }
        close(c);
    }
    return NULL;
}

static int listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

static struct redis_conn *fake_start(struct fake *f, pthread_t *t, const char *const *replies,
                                     size_t n)
{
    int port = 0;
    f->lfd = listener(&port);
    f->replies = replies;
    f->n = n;
    if (f->lfd < 0 || pthread_create(t, NULL, fake_main, f) != 0)
        return NULL;
    return redis_conn_new(NULL, "127.0.0.1", port, &(struct rnode_opts){.timeout_ms = 1000});
}

static void fake_stop(struct fake *f, pthread_t t, struct redis_conn *rc)
{
    redis_conn_free(rc);
    pthread_join(t, NULL);
    close(f->lfd);
}

/* Missing state: the durable use is read from PostgreSQL before any
 * decision; PostgreSQL unreachable fails the check rather than deciding on
 * an empty state. */
static void test_decide_missing(void)
{
    static const char *const replies[] = {"*2\r\n:3\r\n:1798761599999\r\n"};
    struct fake f;
    pthread_t t;
    struct redis_conn *rc = fake_start(&f, &t, replies, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rc);
    struct pg_pool *pg = pg_pool_new(PG_UNREACHABLE, 1, true);
    struct rl_request req = request();
    struct rl_result res;
    struct api_error err;
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(keyuse_decide(rc, pg, &req, false, &res, &err), -1);
    CU_ASSERT_EQUAL(err.code, ERR_UNAVAILABLE);
    CU_ASSERT_FALSE(req.has_seed);
    pg_pool_free(pg);
    fake_stop(&f, t, rc);
}

/* Present state: one call, PostgreSQL never asked (the pool is unreachable). */
static void test_decide_present(void)
{
    static const char *const replies[] = {
        "*8\r\n:1\r\n:1000\r\n:0\r\n:0\r\n:-1\r\n:4\r\n:2000\r\n:1\r\n"};
    struct fake f;
    pthread_t t;
    struct redis_conn *rc = fake_start(&f, &t, replies, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rc);
    struct pg_pool *pg = pg_pool_new(PG_UNREACHABLE, 1, true);
    struct rl_request req = request();
    struct rl_result res;
    struct api_error err;
    CU_ASSERT_EQUAL(keyuse_decide(rc, pg, &req, false, &res, &err), 0);
    CU_ASSERT_FALSE(res.missing);
    CU_ASSERT_EQUAL(res.quota_used, 4);
    CU_ASSERT_EQUAL(res.remaining, 1);
    pg_pool_free(pg);
    fake_stop(&f, t, rc);
}

static void test_live_remaining(void)
{
    static const char *const replies[] = {
        "*3\r\n$1\r\n2\r\n$1\r\n7\r\n$-1\r\n", /* balance 2, 7 left */
        "*3\r\n$1\r\n2\r\n$1\r\n7\r\n$-1\r\n", /* asked about balance 3 */
        "*3\r\n$-1\r\n$-1\r\n$-1\r\n",       /* no state */
        "*3\r\n$1\r\n2\r\n$1\r\n4\r\n$3\r\n500\r\n", /* interval 500 */
        "*3\r\n$1\r\n2\r\n$1\r\n4\r\n$3\r\n500\r\n", /* refill due: 600 */
        "-ERR wrong\r\n",
    };
    struct fake f;
    pthread_t t;
    struct redis_conn *rc = fake_start(&f, &t, replies, 6);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rc);
    struct api_error err;
    int64_t left = -1;
    CU_ASSERT_EQUAL(keyuse_live_remaining(rc, "key_1", NULL, 2, 0, &left, &err), 1);
    CU_ASSERT_EQUAL(left, 7);
    left = -1;
    CU_ASSERT_EQUAL(keyuse_live_remaining(rc, "key_1", NULL, 3, 0, &left, &err), 0);
    CU_ASSERT_EQUAL(left, -1);
    CU_ASSERT_EQUAL(keyuse_live_remaining(rc, "key_1", NULL, 2, 0, &left, &err), 0);
    CU_ASSERT_EQUAL(keyuse_live_remaining(rc, "key_1", NULL, 2, 500, &left, &err), 1);
    CU_ASSERT_EQUAL(left, 4);
    left = -1;
    CU_ASSERT_EQUAL(keyuse_live_remaining(rc, "key_1", NULL, 2, 600, &left, &err), 0);
    CU_ASSERT_EQUAL(left, -1);
    CU_ASSERT_EQUAL(keyuse_live_remaining(rc, "key_1", NULL, 2, 0, &left, &err), -1);
    CU_ASSERT_EQUAL(keyuse_live_remaining(rc, "key_{x}", NULL, 2, 0, &left, &err), -1);
    fake_stop(&f, t, rc);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_seed),
        UNIT_TEST(test_seed_refill),
        UNIT_TEST(test_decide_missing),
        UNIT_TEST(test_decide_present),
        UNIT_TEST(test_live_remaining),
    };
    return unit_run("keyuse", tests, TG_ARRAY_LEN(tests));
}
