/* Unit tests of redis that need no server: script digests, and failures
 * against a port where nothing listens, which must be reported and fast. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "redis.h"
#include "unit.h"

static void test_script_sha(void)
{
    struct redis_script s;
    redis_script_init(&s, "return 1");
    CU_ASSERT_STRING_EQUAL(s.sha, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    CU_ASSERT_STRING_EQUAL(s.source, "return 1");
    redis_script_init(&s, "");
    CU_ASSERT_STRING_EQUAL(s.sha, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    redis_script_init(&s, "The quick brown fox jumps over the lazy dog");
    CU_ASSERT_STRING_EQUAL(s.sha, "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
    CU_ASSERT_EQUAL(strlen(s.sha), 40);
}

static void test_command_unreachable(void)
{
    struct redis_conn *rc = redis_conn_new("127.0.0.1", 1, 200, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rc); /* never fails: connects on first use */
    const char *argv[] = {"PING"};
    struct tg_err err;
    memset(&err, 0, sizeof err);
    redisReply *r = redis_command(rc, 1, argv, NULL, &err);
    CU_ASSERT_PTR_NULL(r);
    if (r)
        freeReplyObject(r);
    CU_ASSERT(err.msg[0] != '\0');
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "127.0.0.1"));
    redis_conn_free(rc);
}

static void test_command_fails_fast(void)
{
    struct redis_conn *rc = redis_conn_new("127.0.0.1", 1, 1000, "secret-password");
    const char *argv[] = {"GET", "tg:kr:x"};
    size_t lens[] = {3, 7};
    int64_t start = mono_ns();
    int failures = 0;
    for (int i = 0; i < 1000; i++) {
        struct tg_err err;
        memset(&err, 0, sizeof err);
        redisReply *r = redis_command(rc, 2, argv, lens, &err);
        if (r)
            freeReplyObject(r);
        failures += r == NULL && err.msg[0] != '\0' && !strstr(err.msg, "secret-password");
    }
    int64_t elapsed_ms = (mono_ns() - start) / 1000000;
    CU_ASSERT_EQUAL(failures, 1000);
    /* A down store costs a request little more than a clock read. */
    CU_ASSERT(elapsed_ms < 1000);
    /* err may be NULL. */
    CU_ASSERT_PTR_NULL(redis_command(rc, 2, argv, lens, NULL));
    redis_conn_free(rc);
}

/* A listening socket that never answers: the kernel completes connections
 * into its backlog, so counting them tells how often the client connected.
 * Returns the descriptor and the port, or -1. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Accepts and closes every pending connection; returns how many there were. */
static int drain(int fd)
{
    int n = 0, c;
    while ((c = accept(fd, NULL, NULL)) >= 0) {
        close(c);
        n++;
    }
    return n;
}

static void test_reconnect_interval(void)
{
    int port = 0;
    int lfd = silent_listener(&port);
    CU_ASSERT_FATAL(lfd >= 0);
    struct redis_conn *rc = redis_conn_new("127.0.0.1", port, 30, NULL);
    const char *argv[] = {"PING"};
    struct tg_err err;
    /* The first command connects, then times out waiting for the reply. */
    memset(&err, 0, sizeof err);
    CU_ASSERT_PTR_NULL(redis_command(rc, 1, argv, NULL, &err));
    CU_ASSERT(strstr(err.msg, "timeout") != NULL);
    CU_ASSERT_EQUAL(drain(lfd), 1);
    /* A lost connection is replaced at once by the next command: a late
     * reply on the old one can never answer it. */
    memset(&err, 0, sizeof err);
    CU_ASSERT_PTR_NULL(redis_command(rc, 1, argv, NULL, &err));
    CU_ASSERT_EQUAL(drain(lfd), 1);
    redis_conn_free(rc);
    close(lfd);

    /* A refused connect holds the next attempt back for 100 ms. */
    rc = redis_conn_new("127.0.0.1", 1, 30, NULL);
    memset(&err, 0, sizeof err);
    CU_ASSERT_PTR_NULL(redis_command(rc, 1, argv, NULL, &err));
    CU_ASSERT(strstr(err.msg, "connect") != NULL);
    memset(&err, 0, sizeof err);
    CU_ASSERT_PTR_NULL(redis_command(rc, 1, argv, NULL, &err));
    CU_ASSERT(strstr(err.msg, "retrying shortly") != NULL);
    struct timespec pause = {0, 150 * 1000000L};
    nanosleep(&pause, NULL);
    memset(&err, 0, sizeof err);
    CU_ASSERT_PTR_NULL(redis_command(rc, 1, argv, NULL, &err));
    CU_ASSERT(strstr(err.msg, "connect") != NULL);
    redis_conn_free(rc);
}

static void test_eval_unreachable(void)
{
    struct redis_conn *rc = redis_conn_new("127.0.0.1", 1, 200, "");
    struct redis_script s;
    redis_script_init(&s, "return redis.call('GET', KEYS[1])");
    const char *keys[] = {"k"};
    const char *args[] = {"1", "2"};
    struct tg_err err;
    memset(&err, 0, sizeof err);
    redisReply *r = redis_eval(rc, &s, 1, keys, 2, args, &err);
    CU_ASSERT_PTR_NULL(r);
    if (r)
        freeReplyObject(r);
    CU_ASSERT(err.msg[0] != '\0');
    redis_conn_free(rc);
    redis_conn_free(NULL);
}

int main(void)
{
    log_open("/dev/null", LOG_ERROR);
    static const struct unit_test tests[] = {
        UNIT_TEST(test_script_sha),
        UNIT_TEST(test_command_unreachable),
        UNIT_TEST(test_command_fails_fast),
        UNIT_TEST(test_reconnect_interval),
        UNIT_TEST(test_eval_unreachable),
    };
    int rc = unit_run("redis", tests, TG_ARRAY_LEN(tests));
    log_close();
    return rc;
}
