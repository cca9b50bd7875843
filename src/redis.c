#include "redis.h"

#include <errno.h>
#include <openssl/sha.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <unistd.h>

/* While the server is down, a new connection is tried at most this often. */
#define RECONNECT_INTERVAL_MS 100

/* One command on its way: lives on the calling worker's stack. */
struct pending {
    struct pending *next;
    char *cmd;
    int len;
    int64_t deadline_ns;
    redisReply *reply;
    char error[128];
    sem_t done;
};

struct redis_conn {
    /* Shared with the workers, under lock. */
    pthread_mutex_t lock;
    struct pending *queue, *queue_tail;
    bool stopping;
    int wake_fd; /* eventfd: the queue became non-empty, or stop */
    pthread_t thread;
    /* The I/O thread's own. */
    redisContext *ctx;
    struct pending *sent, *sent_tail; /* written, awaiting replies, in order */
    int64_t next_attempt_ms;
    char *host;
    char *password;
    int port;
    int timeout_ms;
};

/* A bounded message; a cut one is still informative. */
static void msgf(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void msgf(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, size, fmt, ap);
    va_end(ap);
}

static void complete(struct pending *p, redisReply *reply, const char *error)
{
    p->reply = reply;
    if (error)
        strlcpy_tg(p->error, error, sizeof p->error);
    sem_post(&p->done);
}

static void fail_list(struct pending *p, const char *error)
{
    while (p) {
        struct pending *next = p->next;
        complete(p, NULL, error);
        p = next;
    }
}

/* Drops the connection and fails what awaits a reply on it. */
static void drop(struct redis_conn *rc, const char *why)
{
    char msg[128];
    msgf(msg, sizeof msg, "redis %s:%d: %s", rc->host, rc->port, why);
    if (rc->ctx)
        redisFree(rc->ctx);
    rc->ctx = NULL;
    fail_list(rc->sent, msg);
    rc->sent = rc->sent_tail = NULL;
}

static int auth(struct redis_conn *rc)
{
    if (!rc->password[0])
        return 0;
    redisReply *r = redisCommand(rc->ctx, "AUTH %s", rc->password);
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

/* Opens the connection if needed; 0, or -1 with msg filled. */
static int ensure_connected(struct redis_conn *rc, char *msg, size_t size)
{
    if (rc->ctx)
        return 0;
    int64_t now = now_ms();
    if (now < rc->next_attempt_ms) {
        msgf(msg, size, "redis %s:%d unreachable (retrying shortly)", rc->host, rc->port);
        return -1;
    }
    struct timeval tv = {rc->timeout_ms / 1000, (rc->timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(rc->host, rc->port, tv);
    if (!c || c->err) {
        /* Only a failed connect holds the next attempt back: after a lost
         * connection the next command tries at once. */
        rc->next_attempt_ms = now + RECONNECT_INTERVAL_MS;
        msgf(msg, size, "redis connect %s:%d: %s", rc->host, rc->port,
                 c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return -1;
    }
    redisSetTimeout(c, tv);
    rc->ctx = c;
    if (auth(rc) != 0) {
        msgf(msg, size, "redis %s:%d: AUTH failed", rc->host, rc->port);
        redisFree(rc->ctx);
        rc->ctx = NULL;
        return -1;
    }
    return 0;
}

/* Writes every queued command in one go and moves them to sent. */
static void send_batch(struct redis_conn *rc, struct pending *batch)
{
    char msg[128];
    if (ensure_connected(rc, msg, sizeof msg) != 0) {
        fail_list(batch, msg);
        return;
    }
    for (struct pending *p = batch; p; p = p->next)
        redisAppendFormattedCommand(rc->ctx, p->cmd, (size_t)p->len);
    if (rc->sent_tail)
        rc->sent_tail->next = batch;
    else
        rc->sent = batch;
    while (batch && batch->next)
        batch = batch->next;
    rc->sent_tail = batch;
    int done = 0;
    while (!done) {
        if (redisBufferWrite(rc->ctx, &done) != REDIS_OK) {
            drop(rc, rc->ctx->errstr[0] ? rc->ctx->errstr : "write failed");
            return;
        }
    }
}

/* Reads what the socket holds and answers the waiting workers in order. */
static void receive(struct redis_conn *rc)
{
    if (redisBufferRead(rc->ctx) != REDIS_OK) {
        drop(rc, rc->ctx->errstr[0] ? rc->ctx->errstr : "read failed");
        return;
    }
    for (;;) {
        void *reply = NULL;
        if (redisGetReplyFromReader(rc->ctx, &reply) != REDIS_OK) {
            drop(rc, "protocol error");
            return;
        }
        if (!reply)
            return;
        struct pending *p = rc->sent;
        if (!p) { /* a reply nobody asked for: the stream is out of step */
            freeReplyObject(reply);
            drop(rc, "unexpected reply");
            return;
        }
        rc->sent = p->next;
        if (!rc->sent)
            rc->sent_tail = NULL;
        complete(p, reply, NULL);
    }
}

static void *io_main(void *arg)
{
    struct redis_conn *rc = arg;
    for (;;) {
        struct pollfd fds[2] = {{rc->wake_fd, POLLIN, 0}, {-1, POLLIN, 0}};
        int timeout = -1;
        if (rc->ctx && rc->sent) {
            fds[1].fd = rc->ctx->fd;
            int64_t left = (rc->sent->deadline_ns - mono_ns()) / 1000000;
            timeout = left > 0 ? (int)left + 1 : 0;
        }
        int n = poll(fds, 2, timeout);
        if (n < 0 && errno != EINTR)
            abort(); /* only a programming error makes poll fail */
        if (rc->sent && mono_ns() >= rc->sent->deadline_ns && !(fds[1].revents & POLLIN))
            drop(rc, "timeout");
        if (fds[1].revents & (POLLIN | POLLERR | POLLHUP))
            receive(rc);
        if (fds[0].revents & POLLIN) {
            uint64_t count;
            ssize_t r = read(rc->wake_fd, &count, sizeof count);
            (void)r;
            pthread_mutex_lock(&rc->lock);
            struct pending *batch = rc->queue;
            bool stopping = rc->stopping;
            rc->queue = rc->queue_tail = NULL;
            pthread_mutex_unlock(&rc->lock);
            if (stopping) {
                fail_list(batch, "redis client stopping");
                drop(rc, "stopping");
                return NULL;
            }
            if (batch)
                send_batch(rc, batch);
        }
    }
}

static void wake(struct redis_conn *rc)
{
    uint64_t one = 1;
    ssize_t r = write(rc->wake_fd, &one, sizeof one);
    (void)r;
}

struct redis_conn *redis_conn_new(const char *host, int port, int timeout_ms, const char *password)
{
    struct redis_conn *rc = xcalloc(1, sizeof *rc);
    pthread_mutex_init(&rc->lock, NULL);
    rc->host = xstrdup(host);
    rc->password = xstrdup(password ? password : "");
    rc->port = port;
    rc->timeout_ms = timeout_ms;
    rc->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    /* Signals are for the main thread: the I/O thread blocks them all. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc_create = rc->wake_fd < 0 ? -1 : pthread_create(&rc->thread, NULL, io_main, rc);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc_create != 0) {
        fprintf(stderr, "tollgate: cannot start the Redis I/O thread: %s\n", strerror(errno));
        abort();
    }
    return rc;
}

void redis_conn_free(struct redis_conn *rc)
{
    if (!rc)
        return;
    pthread_mutex_lock(&rc->lock);
    rc->stopping = true;
    pthread_mutex_unlock(&rc->lock);
    wake(rc);
    pthread_join(rc->thread, NULL);
    close(rc->wake_fd);
    pthread_mutex_destroy(&rc->lock);
    free(rc->host);
    free(rc->password);
    free(rc);
}

redisReply *redis_command(struct redis_conn *rc, int argc, const char **argv,
                          const size_t *argvlen, struct tg_err *err)
{
    struct pending p;
    memset(&p, 0, sizeof p);
    p.len = redisFormatCommandArgv(&p.cmd, argc, argv, argvlen);
    if (p.len < 0) {
        tg_err_set(err, "redis: cannot format the command");
        return NULL;
    }
    p.deadline_ns = mono_ns() + (int64_t)rc->timeout_ms * 1000000;
    sem_init(&p.done, 0, 0);
    pthread_mutex_lock(&rc->lock);
    bool stopping = rc->stopping, was_empty = rc->queue == NULL;
    if (!stopping) {
        if (rc->queue_tail)
            rc->queue_tail->next = &p;
        else
            rc->queue = &p;
        rc->queue_tail = &p;
    }
    pthread_mutex_unlock(&rc->lock);
    if (stopping) {
        strlcpy_tg(p.error, "redis client stopping", sizeof p.error);
    } else {
        /* A non-empty queue means a wake-up is already on its way. */
        if (was_empty)
            wake(rc);
        while (sem_wait(&p.done) != 0 && errno == EINTR)
            ;
    }
    sem_destroy(&p.done);
    redisFreeCommand(p.cmd);
    if (!p.reply)
        tg_err_set(err, "%s", p.error[0] ? p.error : "redis: no reply");
    return p.reply;
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
