#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#define READ_CHUNK 16384
/* Reads per readiness event, so one busy connection cannot starve others. */
#define READS_PER_EVENT 8
#define ACCEPTS_PER_EVENT 64
/* How long a TCP connection waits for the peer's close after our answer. */
#define LINGER_MS 2000

struct conn {
    struct evloop_watch watch;
    struct fastcgi_conn fc;
    struct server *srv;
    size_t out_pos;
    size_t inflight;
    bool busy;      /* inside on_conn: finishing is left to its end */
    bool closed;    /* descriptor gone; freed when nothing is in flight */
    bool lingering; /* answered, write side shut, waiting for the peer's EOF */
    bool want_out;  /* EPOLLOUT armed: the socket was full */
    int64_t linger_deadline_ns;
    struct server_req *part_waiters; /* streamed parts waiting for the backlog to drain */
    struct conn *prev, *next;
};

enum part_state { PART_NONE, PART_POSTED, PART_DONE, PART_FAILED };

struct server {
    struct evloop *loop;
    struct evloop_watch listen;
    struct evloop_hook hook;
    struct server_ops ops;
    size_t max_body;
    bool listen_unix;
    struct conn *conns;
    size_t inflight;
    size_t lingering;
    bool draining;
    int64_t drain_deadline_ns;
    /* The pool. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct server_req *jobs, *jobs_tail;
    bool stopping;
    pthread_t *threads;
    int nworkers;
    /* Streamed answers: the state of every part in flight. */
    pthread_mutex_t part_lock;
    pthread_cond_t part_cond;
    bool parts_stopped;
};

struct worker_arg {
    struct server *srv;
    int index;
};

static void conn_free(struct conn *c)
{
    struct server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    fastcgi_conn_fini(&c->fc);
    free(c);
}

static void part_set(struct server_req *req, enum part_state state)
{
    struct server *s = req->srv;
    pthread_mutex_lock(&s->part_lock);
    req->part_state = state;
    pthread_cond_broadcast(&s->part_cond);
    pthread_mutex_unlock(&s->part_lock);
}

/* Releases the workers whose parts waited for c's backlog to drain. */
static void part_wake(struct conn *c, enum part_state state)
{
    while (c->part_waiters) {
        struct server_req *req = c->part_waiters;
        c->part_waiters = req->part_next;
        part_set(req, state);
    }
}

static void conn_close(struct conn *c)
{
    part_wake(c, PART_FAILED);
    if (!c->closed) {
        close(c->watch.fd); /* leaves the epoll set with it: no descriptor is shared */
        c->closed = true;
        if (c->lingering) {
            c->lingering = false;
            c->srv->lingering--;
        }
    }
    if (c->inflight == 0 && !c->busy)
        conn_free(c);
}

/* Writes what is pending; closes a finished connection.  c may be freed. */
static void conn_flush(struct conn *c)
{
    if (c->busy)
        return;
    if (c->closed) {
        conn_close(c);
        return;
    }
    struct strbuf *out = &c->fc.out;
    while (c->out_pos < out->len) {
        ssize_t w = send(c->watch.fd, out->p + c->out_pos, out->len - c->out_pos, MSG_NOSIGNAL);
        if (w > 0) {
            c->out_pos += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && errno == EAGAIN) {
            if (!c->want_out)
                (void)evloop_watch_mod(c->srv->loop, &c->watch, EPOLLIN | EPOLLOUT);
            c->want_out = true;
            if (out->len - c->out_pos <= SERVER_STREAM_HIGH / 2)
                part_wake(c, PART_DONE);
            return;
        } else {
            conn_close(c); /* the web server went away */
            return;
        }
    }
    if (out->len) {
        strbuf_reset(out);
        c->out_pos = 0;
    }
    part_wake(c, PART_DONE);
    if (c->want_out) {
        (void)evloop_watch_mod(c->srv->loop, &c->watch, EPOLLIN);
        c->want_out = false;
    }
    if (!fastcgi_conn_done(&c->fc) || c->lingering)
        return;
    if (c->srv->listen_unix) {
        conn_close(c);
        return;
    }
    /* TCP: closing with unread input would reset the connection and could
     * destroy the answer on its way; let the peer close first. */
    (void)shutdown(c->watch.fd, SHUT_WR);
    c->lingering = true;
    c->srv->lingering++;
    c->linger_deadline_ns = mono_ns() + (int64_t)LINGER_MS * 1000000;
}

static struct conn *conn_of(const struct server_req *req)
{
    return req->freq->conn ? (struct conn *)((char *)req->freq->conn - offsetof(struct conn, fc))
                           : NULL;
}

static void finish(struct server_req *req)
{
    struct server *s = req->srv;
    struct conn *c = conn_of(req);
    fastcgi_conn_answer(req->freq->conn, req->freq, req->out.p ? req->out.p : "", req->out.len);
    strbuf_fini(&req->out);
    free(req);
    s->inflight--;
    if (c) {
        c->inflight--;
        conn_flush(c);
    }
}

static void finish_task(struct evloop_task *t)
{
    finish(t->arg);
}

void server_reply(struct server_req *req)
{
    if (evloop_in_loop(req->srv->loop)) {
        finish(req);
        return;
    }
    req->task.fn = finish_task;
    req->task.arg = req;
    evloop_post(req->srv->loop, &req->task);
}

/* In the loop: queues a part as STDOUT records, sends what it can, and
 * holds the worker while the backlog is above SERVER_STREAM_HIGH. */
static void part_task(struct evloop_task *t)
{
    struct server_req *req = t->arg;
    struct conn *c = conn_of(req);
    if (!c || c->closed || req->freq->aborted) {
        part_set(req, PART_FAILED);
        return;
    }
    fastcgi_stream_put(&c->fc.out, FCGI_STDOUT, req->freq->id, req->part, req->part_len);
    req->part_next = c->part_waiters;
    c->part_waiters = req;
    if (c->fc.out.len - c->out_pos <= SERVER_STREAM_HIGH)
        part_wake(c, PART_DONE);
    conn_flush(c); /* may close c, which fails the waiters */
}

int server_reply_part(struct server_req *req, const void *data, size_t len)
{
    struct server *s = req->srv;
    pthread_mutex_lock(&s->part_lock);
    bool failed = req->part_state == PART_FAILED || s->parts_stopped;
    if (!failed && len > 0)
        req->part_state = PART_POSTED;
    pthread_mutex_unlock(&s->part_lock);
    if (failed)
        return -1;
    if (len == 0)
        return 0;
    req->part = data;
    req->part_len = len;
    req->task.fn = part_task;
    req->task.arg = req;
    evloop_post(s->loop, &req->task);
    pthread_mutex_lock(&s->part_lock);
    while (req->part_state == PART_POSTED && !s->parts_stopped)
        pthread_cond_wait(&s->part_cond, &s->part_lock);
    int rc = req->part_state == PART_DONE && !s->parts_stopped ? 0 : -1;
    pthread_mutex_unlock(&s->part_lock);
    return rc;
}

void server_defer(struct server_req *req)
{
    struct server *s = req->srv;
    req->next = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->jobs_tail)
        s->jobs_tail->next = req;
    else
        s->jobs = req;
    s->jobs_tail = req;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void serve_ready(struct conn *c)
{
    struct server *s = c->srv;
    struct fastcgi_request *freq;
    while ((freq = fastcgi_conn_next(&c->fc)) != NULL) {
        if (freq->aborted) {
            fastcgi_conn_answer(&c->fc, freq, NULL, 0);
            continue;
        }
        struct server_req *req = xcalloc(1, sizeof *req);
        req->fcgi = freq;
        req->freq = freq;
        req->srv = s;
        c->inflight++;
        s->inflight++;
        s->ops.serve(s->ops.ctx, req);
    }
}

static void on_conn(struct evloop_watch *w, uint32_t events)
{
    struct conn *c = w->arg;
    char buf[READ_CHUNK];
    if (c->lingering) {
        ssize_t r;
        while ((r = read(w->fd, buf, sizeof buf)) > 0)
            ;
        if (r == 0 || errno != EAGAIN)
            conn_close(c);
        return;
    }
    c->busy = true;
    bool gone = false;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (int i = 0; i < READS_PER_EVENT; i++) {
            ssize_t r = read(w->fd, buf, sizeof buf);
            if (r > 0) {
                if (fastcgi_conn_input(&c->fc, buf, (size_t)r) != 0) {
                    log_warn("FastCGI protocol error: %s", c->fc.error);
                    gone = true;
                    break;
                }
                if ((size_t)r < sizeof buf)
                    break;
            } else if (r < 0 && errno == EINTR) {
                continue;
            } else if (r < 0 && errno == EAGAIN) {
                break;
            } else {
                gone = true; /* the web server closed, or the socket failed */
                break;
            }
        }
    }
    if (!gone)
        serve_ready(c);
    c->busy = false;
    if (gone)
        conn_close(c);
    else
        conn_flush(c);
}

static void on_accept(struct evloop_watch *w, uint32_t events)
{
    (void)events;
    struct server *s = w->arg;
    for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_warn("accept: %s", strerror(errno));
            return;
        }
        struct conn *c = xcalloc(1, sizeof *c);
        c->srv = s;
        c->watch.fd = fd;
        c->watch.fn = on_conn;
        c->watch.arg = c;
        fastcgi_conn_init(&c->fc, s->max_body);
        if (evloop_watch_add(s->loop, &c->watch, EPOLLIN) != 0) {
            log_warn("epoll: %s", strerror(errno));
            close(fd);
            fastcgi_conn_fini(&c->fc);
            free(c);
            continue;
        }
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
    }
}

static bool output_pending(const struct server *s)
{
    for (const struct conn *c = s->conns; c; c = c->next)
        if (!c->closed && c->fc.out.len > c->out_pos)
            return true;
    return false;
}

static int on_idle(struct evloop_hook *h, int64_t now)
{
    struct server *s = h->arg;
    if (s->lingering) {
        struct conn *c = s->conns;
        while (c) {
            struct conn *next = c->next;
            if (c->lingering && now >= c->linger_deadline_ns)
                conn_close(c);
            c = next;
        }
    }
    if (s->draining) {
        if ((s->inflight == 0 && !output_pending(s)) || now >= s->drain_deadline_ns) {
            if (s->inflight)
                log_warn("stopping with %zu requests unanswered", s->inflight);
            evloop_stop(s->loop);
            return -1;
        }
        return 50;
    }
    return s->lingering ? 100 : -1;
}

static void *worker_main(void *arg)
{
    struct worker_arg *wa = arg;
    struct server *s = wa->srv;
    int index = wa->index;
    free(wa);
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (!s->jobs && !s->stopping)
            pthread_cond_wait(&s->cond, &s->lock);
        struct server_req *req = s->jobs;
        if (req) {
            s->jobs = req->next;
            if (!s->jobs)
                s->jobs_tail = NULL;
        }
        pthread_mutex_unlock(&s->lock);
        if (!req)
            return NULL;
        s->ops.serve_blocking(s->ops.ctx, index, req);
    }
}

struct server *server_new(struct evloop *loop, int listen_fd, int workers, size_t max_body,
                          const struct server_ops *ops)
{
    struct server *s = xcalloc(1, sizeof *s);
    s->loop = loop;
    s->ops = *ops;
    s->max_body = max_body;
    s->listen.fd = listen_fd;
    s->listen.fn = on_accept;
    s->listen.arg = s;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    s->listen_unix = getsockname(listen_fd, (struct sockaddr *)&ss, &len) == 0 &&
                     ss.ss_family == AF_UNIX;
    s->hook.fn = on_idle;
    s->hook.arg = s;
    evloop_hook_add(loop, &s->hook);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    pthread_mutex_init(&s->part_lock, NULL);
    pthread_cond_init(&s->part_cond, NULL);
    s->nworkers = workers > 0 ? workers : 1;
    s->threads = xcalloc((size_t)s->nworkers, sizeof *s->threads);
    /* Signals are for the loop thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < s->nworkers; i++) {
        struct worker_arg *wa = xcalloc(1, sizeof *wa);
        wa->srv = s;
        wa->index = i;
        if (pthread_create(&s->threads[i], NULL, worker_main, wa) != 0) {
            fprintf(stderr, "tollgate: cannot start worker %d\n", i);
            abort();
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return s;
}

int server_start(struct server *s)
{
    int fl = fcntl(s->listen.fd, F_GETFL);
    if (fl < 0 || fcntl(s->listen.fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return -1;
    return evloop_watch_add(s->loop, &s->listen, EPOLLIN);
}

void server_drain(struct server *s, int grace_ms)
{
    if (!s->draining)
        evloop_watch_del(s->loop, &s->listen);
    s->draining = true;
    s->drain_deadline_ns = mono_ns() + (int64_t)grace_ms * 1000000;
}

size_t server_inflight(const struct server *s)
{
    return s->inflight;
}

void server_free(struct server *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    /* The loop has stopped: a worker streaming an answer must not wait for it. */
    pthread_mutex_lock(&s->part_lock);
    s->parts_stopped = true;
    pthread_cond_broadcast(&s->part_cond);
    pthread_mutex_unlock(&s->part_lock);
    for (int i = 0; i < s->nworkers; i++)
        pthread_join(s->threads[i], NULL);
    free(s->threads);
    /* Requests never served (a forced stop) */
    for (struct server_req *r = s->jobs, *next; r; r = next) {
        next = r->next;
        strbuf_fini(&r->out);
        free(r);
    }
    while (s->conns) {
        struct conn *c = s->conns;
        if (!c->closed)
            close(c->watch.fd);
        conn_free(c);
    }
    evloop_hook_del(s->loop, &s->hook);
    pthread_cond_destroy(&s->part_cond);
    pthread_mutex_destroy(&s->part_lock);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
