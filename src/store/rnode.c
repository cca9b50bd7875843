#include "rnode.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "evloop.h"
#include "rtls.h"
#include "strbuf.h"

/* While a server is down, a new connection is tried at most this often. */
#define RECONNECT_INTERVAL_MS 100
/* Bytes read per read(2). */
#define READ_CHUNK 16384

/* Sent just before a command redirected by ASK, in the same write. */
static const char ASKING_CMD[] = "*1\r\n$6\r\nASKING\r\n";

/* HANDSHAKE: TLS only, between the TCP connect and the first command. */
enum state { DOWN, CONNECTING, HANDSHAKE, UP };

struct rnode {
    struct evloop *loop;
    /* Shared with other threads, under lock. */
    pthread_mutex_t lock;
    struct rnode_op *queue, *queue_tail;
    /* The loop thread's own. */
    struct evloop_watch watch;
    struct evloop_hook hook;
    uint32_t watching;
    enum state state;
    redisReader *reader;
    struct rtls_conn *sess; /* TLS: the session on watch.fd */
    bool read_wants_write;  /* TLS: a read waits for the socket to be writable */
    bool write_wants_read;  /* ... and a write for it to be readable */
    struct strbuf out;
    size_t out_pos;
    struct rnode_op *sent, *sent_tail; /* written or buffered, awaiting replies, in order */
    struct rnode_op auth;
    char *auth_cmd;
    int auth_len;
    bool auth_failed;
    int64_t next_attempt_ms;
    /* Constant. */
    char *host;
    char *server_name; /* TLS: checked in the server's certificate */
    struct rtls *tls;  /* NULL: plain TCP */
    int port;
    int timeout_ms;
};

void rnode_msgf(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, size, fmt, ap);
    va_end(ap);
}

static void fail_list(struct rnode_op *op, const char *error)
{
    while (op) {
        struct rnode_op *next = op->next;
        op->next = NULL;
        op->done(op, NULL, error);
        op = next;
    }
}

static void set_events(struct rnode *n, uint32_t events)
{
    if (n->watching == events)
        return;
    if (evloop_watch_mod(n->loop, &n->watch, events) == 0)
        n->watching = events;
}

/* Closes the connection and fails what awaits a reply on it. */
static void drop(struct rnode *n, const char *why)
{
    char msg[160];
    rnode_msgf(msg, sizeof msg, "redis %s:%d: %s", n->host, n->port, why);
    if (n->state != DOWN) {
        evloop_watch_del(n->loop, &n->watch);
        rtls_conn_free(n->sess);
        n->sess = NULL;
        n->read_wants_write = n->write_wants_read = false;
        close(n->watch.fd);
        n->watch.fd = -1;
        n->watching = 0;
    }
    n->state = DOWN;
    if (n->reader)
        redisReaderFree(n->reader);
    n->reader = NULL;
    strbuf_reset(&n->out);
    n->out_pos = 0;
    struct rnode_op *sent = n->sent;
    n->sent = n->sent_tail = NULL;
    fail_list(sent, msg);
}

static void auth_done(struct rnode_op *op, redisReply *reply, const char *error)
{
    struct rnode *n = op->arg;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        n->auth_failed = true;
    (void)error; /* a failed connection fails the commands behind AUTH too */
    if (reply)
        freeReplyObject(reply);
}

static void append(struct rnode *n, struct rnode_op *op)
{
    op->next = NULL;
    op->skip = 0;
    if (op->asking) {
        strbuf_put(&n->out, ASKING_CMD, sizeof ASKING_CMD - 1);
        op->skip = 1;
    }
    strbuf_put(&n->out, op->cmd, (size_t)op->len);
    if (n->sent_tail)
        n->sent_tail->next = op;
    else
        n->sent = op;
    n->sent_tail = op;
}

/* Starts a non-blocking connect.  0, or -1 with msg filled. */
static int start_connect(struct rnode *n, char *msg, size_t size)
{
    int64_t now = now_ms();
    if (now < n->next_attempt_ms) {
        rnode_msgf(msg, size, "redis %s:%d unreachable (retrying shortly)", n->host, n->port);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", n->port);
    int gai = getaddrinfo(n->host, port, &hints, &ai);
    int fd = -1, rc = -1;
    if (gai != 0) {
        rnode_msgf(msg, size, "redis %s:%d: %s", n->host, n->port, gai_strerror(gai));
    } else {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
            int one = 1;
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        }
        if (fd < 0 || (rc != 0 && errno != EINPROGRESS))
            rnode_msgf(msg, size, "redis connect %s:%d: %s", n->host, n->port, strerror(errno));
        else
            rc = 0;
    }
    if (ai)
        freeaddrinfo(ai);
    if (rc != 0) {
        if (fd >= 0)
            close(fd);
        /* Only a failed connect holds the next attempt back. */
        n->next_attempt_ms = now + RECONNECT_INTERVAL_MS;
        return -1;
    }
    n->watch.fd = fd;
    n->watching = EPOLLOUT;
    if (evloop_watch_add(n->loop, &n->watch, EPOLLOUT) != 0) {
        close(fd);
        rnode_msgf(msg, size, "redis %s:%d: epoll: %s", n->host, n->port, strerror(errno));
        return -1;
    }
    n->state = CONNECTING;
    n->reader = redisReaderCreate();
    n->auth_failed = false;
    if (n->auth_cmd) {
        n->auth.deadline_ns = mono_ns() + (int64_t)n->timeout_ms * 1000000;
        append(n, &n->auth);
    }
    return 0;
}

/* One write or read of the transport: RTLS_OK with *done bytes, a
 * RTLS_WANT_*, or RTLS_CLOSED/RTLS_ERROR with why filled. */
static enum rtls_status xwrite(struct rnode *n, const char *buf, size_t len, size_t *done,
                               char *why, size_t size)
{
    if (n->sess)
        return rtls_write(n->sess, buf, len, done, why, size);
    for (;;) {
        ssize_t w = write(n->watch.fd, buf, len);
        if (w > 0) {
            *done = (size_t)w;
            return RTLS_OK;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return RTLS_WANT_WRITE;
        rnode_msgf(why, size, "%s", w < 0 ? strerror(errno) : "write failed");
        return RTLS_ERROR;
    }
}

static enum rtls_status xread(struct rnode *n, char *buf, size_t len, size_t *done, char *why,
                              size_t size)
{
    if (n->sess)
        return rtls_read(n->sess, buf, len, done, why, size);
    for (;;) {
        ssize_t r = read(n->watch.fd, buf, len);
        if (r > 0) {
            *done = (size_t)r;
            return RTLS_OK;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return RTLS_WANT_READ;
        rnode_msgf(why, size, "%s", r == 0 ? "connection closed by the server" : strerror(errno));
        return r == 0 ? RTLS_CLOSED : RTLS_ERROR;
    }
}

static void flush(struct rnode *n)
{
    n->write_wants_read = false;
    while (n->out_pos < n->out.len) {
        char why[256];
        size_t w = 0;
        enum rtls_status s = xwrite(n, n->out.p + n->out_pos, n->out.len - n->out_pos, &w, why,
                                    sizeof why);
        if (s == RTLS_OK) {
            n->out_pos += w;
        } else if (s == RTLS_WANT_WRITE) {
            set_events(n, EPOLLIN | EPOLLOUT);
            return;
        } else if (s == RTLS_WANT_READ) {
            n->write_wants_read = true;
            set_events(n, EPOLLIN);
            return;
        } else {
            drop(n, why);
            return;
        }
    }
    strbuf_reset(&n->out);
    n->out_pos = 0;
    set_events(n, n->read_wants_write ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

/* The connection is up: what waited for it goes out, each command with a
 * whole timeout for its reply.  Until now the oldest one's deadline bounded
 * the connect and the handshake; charging their time to the reply as well
 * would fail the first commands of every new TLS connection on a busy
 * machine. */
static void connected(struct rnode *n)
{
    int64_t deadline = mono_ns() + (int64_t)n->timeout_ms * 1000000;
    for (struct rnode_op *op = n->sent; op; op = op->next)
        op->deadline_ns = deadline;
    n->state = UP;
    flush(n);
}

/* Advances the TLS handshake; once done, what waited for it goes out.  A
 * failure (not a timeout) holds new attempts back as a failed connect does:
 * a server that refuses us now will refuse the next attempt too. */
static void handshake(struct rnode *n)
{
    char why[256];
    enum rtls_status s = rtls_handshake(n->sess, why, sizeof why);
    if (s == RTLS_OK) {
        connected(n);
    } else if (s == RTLS_WANT_READ) {
        set_events(n, EPOLLIN);
    } else if (s == RTLS_WANT_WRITE) {
        set_events(n, EPOLLOUT);
    } else {
        n->next_attempt_ms = now_ms() + RECONNECT_INTERVAL_MS;
        drop(n, why);
    }
}

/* Answers the waiting commands with what the reader holds, in order. */
static void complete_replies(struct rnode *n)
{
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(n->reader, &reply) != REDIS_OK) {
            drop(n, "protocol error");
            return;
        }
        if (!reply)
            return;
        struct rnode_op *op = n->sent;
        if (!op) { /* a reply nobody asked for: the stream is out of step */
            freeReplyObject(reply);
            drop(n, "unexpected reply");
            return;
        }
        if (op->skip > 0) { /* ASKING's reply: the command's own follows */
            op->skip--;
            freeReplyObject(reply);
            continue;
        }
        n->sent = op->next;
        if (!n->sent)
            n->sent_tail = NULL;
        op->next = NULL;
        op->done(op, reply, NULL);
        if (n->auth_failed) {
            drop(n, "AUTH failed");
            return;
        }
    }
}

static void on_io(struct evloop_watch *w, uint32_t events)
{
    struct rnode *n = w->arg;
    if (n->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            char why[96];
            rnode_msgf(why, sizeof why, "connect: %s", strerror(err));
            n->next_attempt_ms = now_ms() + RECONNECT_INTERVAL_MS;
            drop(n, why);
            return;
        }
        if (n->tls) {
            n->sess = rtls_conn_new(n->tls, w->fd, n->server_name);
            n->state = HANDSHAKE;
            handshake(n);
            return;
        }
        connected(n);
        return;
    }
    if (n->state == HANDSHAKE) {
        handshake(n);
        return;
    }
    if ((events & EPOLLOUT) || n->write_wants_read)
        flush(n);
    if (n->state != UP || !((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) || n->read_wants_write))
        return;
    n->read_wants_write = false;
    char buf[READ_CHUNK];
    for (;;) {
        char why[256];
        size_t r = 0;
        enum rtls_status s = xread(n, buf, sizeof buf, &r, why, sizeof why);
        if (s == RTLS_OK) {
            if (redisReaderFeed(n->reader, buf, r) != REDIS_OK) {
                drop(n, "protocol error");
                return;
            }
            /* A short read emptied the socket, but a TLS session may hold
             * bytes the socket will not announce again. */
            if (r < sizeof buf && !(n->sess && rtls_pending(n->sess)))
                break;
        } else if (s == RTLS_WANT_READ) {
            break;
        } else if (s == RTLS_WANT_WRITE) {
            n->read_wants_write = true;
            set_events(n, EPOLLIN | EPOLLOUT);
            break;
        } else {
            drop(n, why);
            return;
        }
    }
    if (!n->read_wants_write && n->out_pos >= n->out.len)
        set_events(n, EPOLLIN);
    complete_replies(n);
}

/* Before the loop sleeps: sends what was queued, enforces the deadline of
 * the oldest command in flight. */
static int on_idle(struct evloop_hook *h, int64_t now_ns)
{
    struct rnode *n = h->arg;
    pthread_mutex_lock(&n->lock);
    struct rnode_op *batch = n->queue;
    n->queue = n->queue_tail = NULL;
    pthread_mutex_unlock(&n->lock);
    if (batch) {
        char msg[160];
        if (n->state == DOWN && start_connect(n, msg, sizeof msg) != 0) {
            fail_list(batch, msg);
        } else {
            int64_t deadline = now_ns + (int64_t)n->timeout_ms * 1000000;
            while (batch) {
                struct rnode_op *next = batch->next;
                batch->deadline_ns = deadline;
                append(n, batch);
                batch = next;
            }
            if (n->state == UP)
                flush(n);
        }
    }
    if (!n->sent)
        return -1;
    if (now_ns >= n->sent->deadline_ns) {
        /* As after a connect timeout, the next command tries again at
         * once: a slow handshake is most often a busy machine, and holding
         * back would fail every check for 100 ms more. */
        drop(n, n->state == CONNECTING  ? "connect timeout"
                : n->state == HANDSHAKE ? "TLS handshake timeout"
                                        : "timeout");
        return -1;
    }
    return (int)((n->sent->deadline_ns - now_ns) / 1000000) + 1;
}

struct rnode *rnode_new(struct evloop *loop, const char *host, int port,
                        const struct rnode_opts *o)
{
    struct rnode *n = xcalloc(1, sizeof *n);
    pthread_mutex_init(&n->lock, NULL);
    n->loop = loop;
    n->host = xstrdup(host);
    n->server_name = xstrdup(o->server_name && *o->server_name ? o->server_name : host);
    n->tls = o->tls;
    n->port = port;
    n->timeout_ms = o->timeout_ms;
    n->watch.fd = -1;
    n->watch.fn = on_io;
    n->watch.arg = n;
    n->hook.fn = on_idle;
    n->hook.arg = n;
    if (o->password && *o->password) {
        /* AUTH user password logs in as an ACL user, AUTH password as the
         * default user. */
        bool user = o->user && *o->user;
        const char *argv[] = {"AUTH", user ? o->user : o->password, o->password};
        n->auth_len = redisFormatCommandArgv(&n->auth_cmd, user ? 3 : 2, argv, NULL);
        n->auth.cmd = n->auth_cmd;
        n->auth.len = n->auth_len;
        n->auth.done = auth_done;
        n->auth.arg = n;
    }
    evloop_hook_add(loop, &n->hook);
    return n;
}

void rnode_free(struct rnode *n)
{
    if (!n)
        return;
    evloop_hook_del(n->loop, &n->hook);
    pthread_mutex_lock(&n->lock);
    struct rnode_op *queued = n->queue;
    n->queue = n->queue_tail = NULL;
    pthread_mutex_unlock(&n->lock);
    fail_list(queued, "redis client stopping");
    drop(n, "stopping");
    strbuf_fini(&n->out);
    if (n->auth_cmd)
        redisFreeCommand(n->auth_cmd);
    pthread_mutex_destroy(&n->lock);
    free(n->host);
    free(n->server_name);
    free(n);
}

void rnode_send(struct rnode *n, struct rnode_op *op)
{
    op->next = NULL;
    pthread_mutex_lock(&n->lock);
    if (n->queue_tail)
        n->queue_tail->next = op;
    else
        n->queue = op;
    n->queue_tail = op;
    pthread_mutex_unlock(&n->lock);
    if (!evloop_in_loop(n->loop))
        evloop_wake(n->loop);
}

/* A waiting caller's command. */
struct waiter {
    struct rnode_op op;
    redisReply *reply;
    char error[160];
    sem_t done;
};

static void waiter_done(struct rnode_op *op, redisReply *reply, const char *error)
{
    struct waiter *w = op->arg;
    w->reply = reply;
    if (error)
        strlcpy_tg(w->error, error, sizeof w->error);
    sem_post(&w->done);
}

redisReply *rnode_call(struct rnode *n, const char *cmd, int len, bool asking,
                       struct api_error *err)
{
    if (evloop_in_loop(n->loop))
        abort(); /* would wait for itself: a programming error */
    struct waiter w;
    memset(&w, 0, sizeof w);
    w.op.cmd = cmd;
    w.op.len = len;
    w.op.asking = asking;
    w.op.done = waiter_done;
    w.op.arg = &w;
    sem_init(&w.done, 0, 0);
    /* w lives on this stack until the loop has completed it: we wait for
     * that, and a freed node fails all it holds. */
    rnode_send(n, &w.op);
    while (sem_wait(&w.done) != 0 && errno == EINTR)
        ;
    sem_destroy(&w.done);
    if (!w.reply)
        api_error_set(err, ERR_UNAVAILABLE, NULL, "%s", w.error[0] ? w.error : "redis: no reply");
    return w.reply;
}

const char *rnode_host(const struct rnode *n)
{
    return n->host;
}

int rnode_port(const struct rnode *n)
{
    return n->port;
}
