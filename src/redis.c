#include "redis.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "log.h"

struct redis_conn {
    redisContext *ctx;
    char *host;
    char *password;
    int port;
    int timeout_ms;
    int64_t next_attempt_ms; /* no reconnect storm while the server is down */
};

/* While the server is down, each thread tries again at most this often, so a
 * failing store costs a request nothing but a clock read. */
#define RECONNECT_INTERVAL_MS 100

struct redis_conn *redis_conn_new(const char *host, int port, int timeout_ms, const char *password)
{
    struct redis_conn *rc = xcalloc(1, sizeof *rc);
    rc->host = xstrdup(host);
    rc->password = xstrdup(password ? password : "");
    rc->port = port;
    rc->timeout_ms = timeout_ms;
    return rc;
}

void redis_conn_free(struct redis_conn *rc)
{
    if (!rc)
        return;
    if (rc->ctx)
        redisFree(rc->ctx);
    free(rc->host);
    free(rc->password);
    free(rc);
}

static void drop(struct redis_conn *rc)
{
    if (rc->ctx)
        redisFree(rc->ctx);
    rc->ctx = NULL;
}

static int ensure_connected(struct redis_conn *rc, struct tg_err *err)
{
    if (rc->ctx)
        return 0;
    int64_t now = now_ms();
    if (now < rc->next_attempt_ms) {
        tg_err_set(err, "redis %s:%d unreachable (retrying shortly)", rc->host, rc->port);
        return -1;
    }
    rc->next_attempt_ms = now + RECONNECT_INTERVAL_MS;
    struct timeval tv = {rc->timeout_ms / 1000, (rc->timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(rc->host, rc->port, tv);
    if (!c || c->err) {
        tg_err_set(err, "redis connect %s:%d: %s", rc->host, rc->port, c ? c->errstr : "oom");
        if (c)
            redisFree(c);
        return -1;
    }
    redisSetTimeout(c, tv);
    rc->ctx = c;
    if (rc->password[0]) {
        redisReply *r = redisCommand(c, "AUTH %s", rc->password);
        bool ok = r && r->type != REDIS_REPLY_ERROR;
        if (r)
            freeReplyObject(r);
        if (!ok) {
            tg_err_set(err, "redis AUTH failed");
            drop(rc);
            return -1;
        }
    }
    return 0;
}

redisReply *redis_command(struct redis_conn *rc, int argc, const char **argv,
                          const size_t *argvlen, struct tg_err *err)
{
    if (ensure_connected(rc, err) != 0)
        return NULL;
    redisReply *r = redisCommandArgv(rc->ctx, argc, argv, argvlen);
    if (!r) {
        tg_err_set(err, "redis %s:%d: %s", rc->host, rc->port,
                   rc->ctx->errstr[0] ? rc->ctx->errstr : "no reply");
        /* A timed-out connection may deliver the late reply to the next
         * command: never reuse it. */
        drop(rc);
        return NULL;
    }
    return r;
}

void redis_script_init(struct redis_script *s, const char *source)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)source, strlen(source), md);
    s->source = source;
    hex_encode(md, SHA_DIGEST_LENGTH, s->sha);
}

static redisReply *eval_with(struct redis_conn *rc, const char *verb, const char *body,
                             int nkeys, const char *const *keys, int nargs,
                             const char *const *args, struct tg_err *err)
{
    int argc = 3 + nkeys + nargs;
    const char **argv = xcalloc((size_t)argc, sizeof *argv);
    char nk[16];
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = verb;
    argv[1] = body;
    argv[2] = nk;
    for (int i = 0; i < nkeys; i++)
        argv[3 + i] = keys[i];
    for (int i = 0; i < nargs; i++)
        argv[3 + nkeys + i] = args[i];
    redisReply *r = redis_command(rc, argc, argv, NULL, err);
    free(argv);
    return r;
}

redisReply *redis_eval(struct redis_conn *rc, const struct redis_script *s, int nkeys,
                       const char *const *keys, int nargs, const char *const *args,
                       struct tg_err *err)
{
    redisReply *r = eval_with(rc, "EVALSHA", s->sha, nkeys, keys, nargs, args, err);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        /* After a flush, restart or failover: EVAL loads and runs it. */
        freeReplyObject(r);
        r = eval_with(rc, "EVAL", s->source, nkeys, keys, nargs, args, err);
    }
    return r;
}
