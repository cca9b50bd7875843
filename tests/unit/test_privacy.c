/* Unit tests of privacy: the pseudonym against a value computed
 * independently (Python's hmac), and what forgetting an erased key sends to
 * a scripted Redis.  The whole erasure runs against the real stack in the
 * integration suite (itest privacy). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "keystore.h"
#include "log.h"
#include "pg.h"
#include "privacy.h"
#include "ratelimit.h"
#include "redis.h"
#include "unit.h"

static void test_pseudonym(void)
{
    char a[PRIVACY_PSEUDONYM_MAX], b[PRIVACY_PSEUDONYM_MAX];
    privacy_pseudonym("unit-secret", "acct_42", a);
    CU_ASSERT_STRING_EQUAL(a, "erased_0a5bd9ac0474c9a90a2ec3a4e2e914c4");
    privacy_pseudonym("unit-secret", "acct_42", b);
    CU_ASSERT_STRING_EQUAL(a, b);
    privacy_pseudonym("unit-secret", "acct_43", b);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    privacy_pseudonym("other-secret", "acct_42", b);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    /* Any owner id, the longest included, gives the same length. */
    char owner[513];
    memset(owner, 'x', 512);
    owner[512] = '\0';
    privacy_pseudonym("unit-secret", owner, b);
    CU_ASSERT_EQUAL(strlen(b), strlen(a));
}

/* A Redis that answers each command with +OK and keeps what it received. */
struct fake {
    int lfd;
    size_t n;
    char seen[8192];
    size_t seen_len;
};

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    int c = accept(f->lfd, NULL, NULL);
    char buf[4096];
    for (size_t i = 0; c >= 0 && i < f->n; i++) {
        ssize_t r = read(c, buf, sizeof buf);
        if (r <= 0)
            break;
        if (f->seen_len + (size_t)r < sizeof f->seen) {
            memcpy(f->seen + f->seen_len, buf, (size_t)r);
            f->seen_len += (size_t)r;
        }
        if (write(c, "+OK\r\n", 5) < 0)
            break;
    }
    if (c >= 0) {
        while (read(c, buf, sizeof buf) > 0) {
        }
        close(c);
    }
    return NULL;
}

static struct redis_conn *fake_start(struct fake *f, pthread_t *t, size_t n)
{
    memset(f, 0, sizeof *f);
    f->n = n;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(f->lfd, 4) != 0 || getsockname(f->lfd, (struct sockaddr *)&a, &len) != 0 ||
        pthread_create(t, NULL, fake_main, f) != 0)
        return NULL;
    return redis_conn_new(NULL, "127.0.0.1", ntohs(a.sin_port),
                          &(struct rnode_opts){.timeout_ms = 1000});
}

/* The version first (both keys of the key's slot, version + 1), then each
 * secret's record marked missing at that version. */
static void test_forget_key(void)
{
    struct fake f;
    pthread_t t;
    struct redis_conn *rc = fake_start(&f, &t, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rc);
    struct pg_pool *pg = pg_pool_new("host=127.0.0.1 port=1 dbname=x", 1, true);
    struct keystore *ks = keystore_new(pg, NULL, 1000);
    const char *hashes[] = {"aa11", "bb22"};
    struct api_error err;
    CU_ASSERT_EQUAL(privacy_forget_key(ks, rc, "key_u1", NULL, 6, hashes, 2, &err), 0);
    redis_conn_free(rc);
    pthread_join(t, NULL);
    close(f.lfd);
    f.seen[f.seen_len] = '\0';
    const char *eval = strstr(f.seen, "EVAL");
    const char *set1 = strstr(f.seen, "tg:kr:aa11"), *set2 = strstr(f.seen, "tg:kr:bb22");
    CU_ASSERT_PTR_NOT_NULL(eval);
    CU_ASSERT_PTR_NOT_NULL(strstr(f.seen, "tg:{key_u1}:c"));
    CU_ASSERT_PTR_NOT_NULL(strstr(f.seen, "tg:{key_u1}:s"));
    CU_ASSERT_PTR_NOT_NULL(strstr(f.seen, "$6\r\n900000\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(f.seen, "7|{\"v\":7,\"missing\":true}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(f.seen, "$5\r\n60000\r\n"));
    CU_ASSERT(eval && set1 && set2 && eval < set1 && set1 < set2);
    keystore_free(ks);
    pg_pool_free(pg);
}

/* Redis unreachable: -1 with a message; an invalid key id: -1 before I/O. */
static void test_forget_key_fails(void)
{
    struct redis_conn *rc =
        redis_conn_new(NULL, "127.0.0.1", 1, &(struct rnode_opts){.timeout_ms = 200});
    struct pg_pool *pg = pg_pool_new("host=127.0.0.1 port=1 dbname=x", 1, true);
    struct keystore *ks = keystore_new(pg, NULL, 1000);
    const char *hashes[] = {"aa11"};
    struct api_error err;
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(privacy_forget_key(ks, rc, "key_u1", NULL, 1, hashes, 1, &err), -1);
    CU_ASSERT(err.message[0] != '\0');
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(ratelimit_erase(rc, "key_{x}", NULL, 2, 1000, &err), -1);
    CU_ASSERT(err.message[0] != '\0');
    keystore_free(ks);
    pg_pool_free(pg);
    redis_conn_free(rc);
}

int main(void)
{
    log_open("/dev/null", LOG_ERROR);
    static const struct unit_test tests[] = {
        UNIT_TEST(test_pseudonym),
        UNIT_TEST(test_forget_key),
        UNIT_TEST(test_forget_key_fails),
    };
    int rc = unit_run("privacy", tests, TG_ARRAY_LEN(tests));
    log_close();
    return rc;
}
