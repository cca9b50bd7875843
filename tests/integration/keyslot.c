/* keyslot: checks rcluster_slot against a live Redis Cluster node.
 *
 *   TOLLGATE_CONFIG=run/tollgate.conf TOLLGATE_CLUSTER_NODE=127.0.0.1:47001 \
 *       tests/integration/keyslot
 *
 * Draws 10,000 random keys (plain, hash-tagged, empty and nested tags,
 * arbitrary bytes, the shapes Tollgate itself uses), asks the node for
 * CLUSTER KEYSLOT of each, and compares.  It connects as the responders do,
 * with the transport and login of the configuration's [redis] section
 * (TLS, user, password).  Prints "N passed,
 * N failed" and exits 1 on any mismatch, 2 when it cannot run.  The draw
 * is reproducible: TOLLGATE_KEYSLOT_SEED=<number> repeats one. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "rcluster.h"
#include "redis.h"
#include "rtls.h"
#include "util.h"

#define KEYS 10000
#define BATCH 500
#define KEY_MAX 96
#define SHOW_MAX 10

struct key {
    char bytes[KEY_MAX];
    size_t len;
};

/* xorshift64*: a small generator whose sequence a seed repeats. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ULL;
}

static unsigned below(uint64_t *st, unsigned n)
{
    return (unsigned)(next_random(st) % n);
}

static void put(struct key *k, char c)
{
    if (k->len < KEY_MAX)
        k->bytes[k->len++] = c;
}

/* n characters of alphabet. */
static void put_from(struct key *k, uint64_t *st, const char *alphabet, unsigned n)
{
    size_t size = strlen(alphabet);
    for (unsigned i = 0; i < n; i++)
        put(k, alphabet[below(st, (unsigned)size)]);
}

static const char PRINTABLE[] =
    " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz|~";
static const char BRACEY[] = "{}{}{}ab:";
static const char HEX[] = "0123456789abcdef";

static void draw(struct key *k, uint64_t *st)
{
    k->len = 0;
    switch (below(st, 7)) {
    case 0: /* plain, no braces */
        put_from(k, st, PRINTABLE, below(st, 40));
        break;
    case 1: /* prefix{tag}suffix */
        put_from(k, st, PRINTABLE, below(st, 12));
        put(k, '{');
        put_from(k, st, PRINTABLE, 1 + below(st, 16));
        put(k, '}');
        put_from(k, st, PRINTABLE, below(st, 12));
        break;
    case 2: /* an empty tag first, maybe a real one after */
        put_from(k, st, PRINTABLE, below(st, 8));
        put(k, '{');
        put(k, '}');
        if (below(st, 2)) {
            put(k, '{');
            put_from(k, st, PRINTABLE, 1 + below(st, 8));
            put(k, '}');
        }
        put_from(k, st, PRINTABLE, below(st, 8));
        break;
    case 3: /* braces everywhere: nested, unclosed, doubled */
        put_from(k, st, BRACEY, 1 + below(st, 24));
        break;
    case 4: /* any byte at all, NUL included */
        for (unsigned i = 0, n = below(st, 33); i < n; i++)
            put(k, (char)below(st, 256));
        break;
    case 5: /* the rate-limit keys of a key id */
        memcpy(k->bytes, "tg:{", 4);
        k->len = 4;
        put_from(k, st, BASE62, 8 + below(st, 16));
        put(k, '}');
        put(k, ':');
        put(k, below(st, 2) ? 'w' : 's');
        break;
    default: /* a record-cache key */
        memcpy(k->bytes, "tg:kr:", 6);
        k->len = 6;
        put_from(k, st, HEX, 64);
        break;
    }
}

static void show(const struct key *k, int ours, long long theirs)
{
    fprintf(stderr, "mismatch: key ");
    for (size_t i = 0; i < k->len; i++)
        fprintf(stderr, "%02x", (unsigned char)k->bytes[i]);
    fprintf(stderr, " (%zu bytes): rcluster_slot %d, CLUSTER KEYSLOT %lld\n", k->len, ours, theirs);
}

int main(void)
{
    const char *node = getenv("TOLLGATE_CLUSTER_NODE");
    struct rcluster_addr *addr = NULL;
    struct api_error err;
    if (!node || rcluster_parse_seeds(node, &addr, &err) != 1) {
        fprintf(stderr, "keyslot: set TOLLGATE_CLUSTER_NODE=host:port (one cluster node)\n");
        free(addr);
        return 2;
    }
    uint64_t seed;
    const char *seed_env = getenv("TOLLGATE_KEYSLOT_SEED");
    int64_t given;
    if (seed_env && parse_int64(seed_env, 1, INT64_MAX, &given) == 0)
        seed = (uint64_t)given;
    else
        do
            random_bytes(&seed, sizeof seed);
        while (seed == 0 || seed > INT64_MAX);
    printf("keyslot: node %s:%d, seed %" PRIu64 "\n", addr->host, addr->port, seed);

    extern char **environ;
    const char *path = getenv("TOLLGATE_CONFIG");
    struct config cfg;
    if (!path || !*path || config_load(&cfg, path, environ, &err) != 0) {
        fprintf(stderr, "keyslot: %s\n", path && *path ? err.message : "set TOLLGATE_CONFIG");
        free(addr);
        return 2;
    }
    struct rtls *tls = rtls_from_config(&cfg, &err);
    if (cfg.redis_tls && !tls) {
        fprintf(stderr, "keyslot: %s\n", err.message);
        config_fini(&cfg);
        free(addr);
        return 2;
    }
    struct rnode_opts o = {.timeout_ms = 2000, .user = cfg.redis_user,
                           .password = cfg.redis_password, .tls = tls,
                           .server_name = cfg.redis_tls_server_name};
    struct redis_conn *c = redis_conn_new(NULL, addr->host, addr->port, &o);
    free(addr);

    static struct key keys[BATCH];
    uint64_t state = seed;
    int passed = 0, failed = 0, status = 0;
    for (int done = 0; done < KEYS && status == 0; done += BATCH) {
        for (int i = 0; i < BATCH; i++) {
            draw(&keys[i], &state);
            const char *argv[] = {"CLUSTER", "KEYSLOT", keys[i].bytes};
            size_t lens[] = {7, 7, keys[i].len};
            redisReply *r = redis_command(c, 3, argv, lens, &err);
            if (!r || r->type != REDIS_REPLY_INTEGER) {
                fprintf(stderr, "keyslot: CLUSTER KEYSLOT: %s\n",
                        !r ? err.message : r->type == REDIS_REPLY_ERROR ? r->str : "not a number");
                if (r)
                    freeReplyObject(r);
                status = 2;
                break;
            }
            int ours = rcluster_slot(keys[i].bytes, keys[i].len);
            if (ours == r->integer) {
                passed++;
            } else {
                if (failed++ < SHOW_MAX)
                    show(&keys[i], ours, r->integer);
            }
            freeReplyObject(r);
        }
    }
    redis_conn_free(c);
    rtls_free(tls);
    config_fini(&cfg);
    printf("%d passed, %d failed\n", passed, failed);
    if (status)
        return status;
    return failed ? 1 : 0;
}
