#include "rnode.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <unistd.h>

/* While a server is down, a new connection is tried at most this often. */
#define RECONNECT_INTERVAL_MS 100

/* Sent just before a command redirected by ASK, in the same write. */
static const char ASKING_CMD[] = "*1\r\n$6\r\nASKING\r\n";

/* One command on its way: lives on the calling worker's stack. */
struct pending {
    struct pending *next;
    const char *cmd; /* borrowed from the caller */
    int len;
    int skip; /* replies to discard before this command's own (ASKING's) */
    int64_t deadline_ns;
    redisReply *reply;
    char error[128];
    sem_t done;
};

/* One server: a connection owned by an I/O thread that pipelines the
 * commands of every worker. */
struct rnode {
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
    /* Constant. */
    char *host;
    char *password;
    int port;
    int timeout_ms;
};

/* A bounded message; a cut one is still informative. */
void rnode_msgf(char *out, size_t size, const char *fmt, ...)
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
static void drop(struct rnode *n, const char *why)
{
    char msg[128];
    rnode_msgf(msg, sizeof msg, "redis %s:%d: %s", n->host, n->port, why);
    if (n->ctx)
        redisFree(n->ctx);
    n->ctx = NULL;
    fail_list(n->sent, msg);
    n->sent = n->sent_tail = NULL;
}

static int auth(struct rnode *n)
{
    if (!n->password[0])
        return 0;
    redisReply *r = redisCommand(n->ctx, "AUTH %s", n->password);
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

/* Opens the connection if needed; 0, or -1 with msg filled. */
static int ensure_connected(struct rnode *n, char *msg, size_t size)
{
    if (n->ctx)
        return 0;
    int64_t now = now_ms();
    if (now < n->next_attempt_ms) {
        rnode_msgf(msg, size, "redis %s:%d unreachable (retrying shortly)", n->host, n->port);
        return -1;
    }
    struct timeval tv = {n->timeout_ms / 1000, (n->timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(n->host, n->port, tv);
    if (!c || c->err) {
        /* Only a failed connect holds the next attempt back: after a lost
         * connection the next command tries at once. */
        n->next_attempt_ms = now + RECONNECT_INTERVAL_MS;
        rnode_msgf(msg, size, "redis connect %s:%d: %s", n->host, n->port,
             c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return -1;
    }
    redisSetTimeout(c, tv);
    n->ctx = c;
    if (auth(n) != 0) {
        rnode_msgf(msg, size, "redis %s:%d: AUTH failed", n->host, n->port);
        redisFree(n->ctx);
        n->ctx = NULL;
        return -1;
    }
    return 0;
}

/* Writes every queued command in one go and moves them to sent. */
static void send_batch(struct rnode *n, struct pending *batch)
{
    char msg[128];
    if (ensure_connected(n, msg, sizeof msg) != 0) {
        fail_list(batch, msg);
        return;
    }
    for (struct pending *p = batch; p; p = p->next)
        redisAppendFormattedCommand(n->ctx, p->cmd, (size_t)p->len);
    if (n->sent_tail)
        n->sent_tail->next = batch;
    else
        n->sent = batch;
    while (batch && batch->next)
        batch = batch->next;
    n->sent_tail = batch;
    int done = 0;
    while (!done) {
        if (redisBufferWrite(n->ctx, &done) != REDIS_OK) {
            drop(n, n->ctx->errstr[0] ? n->ctx->errstr : "write failed");
            return;
        }
    }
}

/* Reads what the socket holds and answers the waiting workers in order. */
static void receive(struct rnode *n)
{
    if (redisBufferRead(n->ctx) != REDIS_OK) {
        drop(n, n->ctx->errstr[0] ? n->ctx->errstr : "read failed");
        return;
    }
    for (;;) {
        void *reply = NULL;
        if (redisGetReplyFromReader(n->ctx, &reply) != REDIS_OK) {
            drop(n, "protocol error");
            return;
        }
        if (!reply)
            return;
        struct pending *p = n->sent;
        if (!p) { /* a reply nobody asked for: the stream is out of step */
            freeReplyObject(reply);
            drop(n, "unexpected reply");
            return;
        }
        if (p->skip > 0) { /* ASKING's reply: the command's own follows */
            p->skip--;
            freeReplyObject(reply);
            continue;
        }
        n->sent = p->next;
        if (!n->sent)
            n->sent_tail = NULL;
        complete(p, reply, NULL);
    }
}

static void *io_main(void *arg)
{
    struct rnode *n = arg;
    for (;;) {
        struct pollfd fds[2] = {{n->wake_fd, POLLIN, 0}, {-1, POLLIN, 0}};
        int timeout = -1;
        if (n->ctx && n->sent) {
            fds[1].fd = n->ctx->fd;
            int64_t left = (n->sent->deadline_ns - mono_ns()) / 1000000;
            timeout = left > 0 ? (int)left + 1 : 0;
        }
        int got = poll(fds, 2, timeout);
        if (got < 0 && errno != EINTR)
            abort(); /* only a programming error makes poll fail */
        if (n->sent && mono_ns() >= n->sent->deadline_ns && !(fds[1].revents & POLLIN))
            drop(n, "timeout");
        if (fds[1].revents & (POLLIN | POLLERR | POLLHUP))
            receive(n);
        if (fds[0].revents & POLLIN) {
            uint64_t count;
            ssize_t r = read(n->wake_fd, &count, sizeof count);
            (void)r;
            pthread_mutex_lock(&n->lock);
            struct pending *batch = n->queue;
            bool stopping = n->stopping;
            n->queue = n->queue_tail = NULL;
            pthread_mutex_unlock(&n->lock);
            if (stopping) {
                fail_list(batch, "redis client stopping");
                drop(n, "stopping");
                return NULL;
            }
            if (batch)
                send_batch(n, batch);
        }
    }
}

static void wake(struct rnode *n)
{
    uint64_t one = 1;
    ssize_t r = write(n->wake_fd, &one, sizeof one);
    (void)r;
}

/* Starts the I/O thread of host:port; it connects on first use. */
struct rnode *rnode_new(const char *host, int port, int timeout_ms, const char *password)
{
    struct rnode *n = xcalloc(1, sizeof *n);
    pthread_mutex_init(&n->lock, NULL);
    n->host = xstrdup(host);
    n->password = xstrdup(password ? password : "");
    n->port = port;
    n->timeout_ms = timeout_ms;
    n->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    /* Signals are for the main thread: the I/O thread blocks them all. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc_create = n->wake_fd < 0 ? -1 : pthread_create(&n->thread, NULL, io_main, n);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc_create != 0) {
        fprintf(stderr, "tollgate: cannot start the Redis I/O thread: %s\n", strerror(errno));
        abort();
    }
    return n;
}

void rnode_free(struct rnode *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->lock);
    n->stopping = true;
    pthread_mutex_unlock(&n->lock);
    wake(n);
    pthread_join(n->thread, NULL);
    close(n->wake_fd);
    pthread_mutex_destroy(&n->lock);
    free(n->host);
    free(n->password);
    free(n);
}

/* Runs one formatted command on n and waits for its reply; with asking, an
 * ASKING goes just before it in the same write, so nothing can come between
 * them.  Returns the reply or NULL with err filled. */
redisReply *rnode_call(struct rnode *n, const char *cmd, int len, bool asking,
                             struct tg_err *err)
{
    struct pending p;
    memset(&p, 0, sizeof p);
    char *joined = NULL;
    if (asking) {
        size_t alen = sizeof ASKING_CMD - 1;
        joined = xmalloc(alen + (size_t)len);
        memcpy(joined, ASKING_CMD, alen);
        memcpy(joined + alen, cmd, (size_t)len);
        cmd = joined;
        len += (int)alen;
        p.skip = 1;
    }
    p.cmd = cmd;
    p.len = len;
    p.deadline_ns = mono_ns() + (int64_t)n->timeout_ms * 1000000;
    sem_init(&p.done, 0, 0);
    pthread_mutex_lock(&n->lock);
    bool stopping = n->stopping, was_empty = n->queue == NULL;
    if (!stopping) {
        /* p lives on this stack until the I/O thread has completed it: we
         * wait for that below, and a stopping node fails all it holds. */
        if (n->queue_tail)
            n->queue_tail->next = &p;
        else
            n->queue = &p; /* cppcheck-suppress autoVariables */
        n->queue_tail = &p; /* cppcheck-suppress autoVariables */
    }
    pthread_mutex_unlock(&n->lock);
    if (stopping) {
        strlcpy_tg(p.error, "redis client stopping", sizeof p.error);
    } else {
        /* A non-empty queue means a wake-up is already on its way. */
        if (was_empty)
            wake(n);
        while (sem_wait(&p.done) != 0 && errno == EINTR)
            ;
    }
    sem_destroy(&p.done);
    free(joined);
    if (!p.reply)
        tg_err_set(err, "%s", p.error[0] ? p.error : "redis: no reply");
    return p.reply;
}

const char *rnode_host(const struct rnode *n)
{
    return n->host;
}

int rnode_port(const struct rnode *n)
{
    return n->port;
}
