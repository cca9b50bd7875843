/* server: the FastCGI side of a responder process, on an event loop.
 *
 * The loop thread accepts on the listening socket (descriptor 0 from
 * spawn-fcgi, mod_fcgid or systemd), reads and writes every connection, and
 * hands each complete request to ops->serve, still in the loop thread.
 * serve either answers at once, answers later from the loop (after
 * asynchronous I/O), or defers the request to the pool of worker threads,
 * where ops->serve_blocking may block (PostgreSQL, a synchronous Redis
 * call).  Either way exactly one server_reply per request sends its answer.
 *
 * Connections without FCGI_KEEP_CONN close once their answer is out (a TCP
 * one after the peer has read it: write side shut, input drained); a
 * connection the web server closed is dropped once its requests in flight
 * come back.  server_drain stops accepting and stops the loop once nothing
 * is in flight (or when the grace period ends). */
#ifndef TOLLGATE_SERVER_H
#define TOLLGATE_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "evloop.h"
#include "fastcgi.h"
#include "strbuf.h"
#include "util.h"

struct server;

/* One request being served. */
struct server_req {
    const struct fastcgi_request *fcgi; /* parameters, body, role */
    struct strbuf out;                  /* the answer: CGI headers and body */
    void *user;                         /* the application's */
    /* The server's. */
    struct server *srv;
    struct fastcgi_request *freq;
    struct server_req *next;
    struct evloop_task task;
    /* A part of a streamed answer (server_reply_part) on its way. */
    const void *part;
    size_t part_len;
    int part_state;
    struct server_req *part_next; /* waiting for its connection to drain */
};

struct server_ops {
    void (*serve)(void *ctx, struct server_req *req);
    void (*serve_blocking)(void *ctx, int worker, struct server_req *req);
    void *ctx;
};

/* Serves listen_fd (non-blocking is set here) from loop with a pool of
 * workers threads (at least 1); max_body bytes of a body are kept (more
 * marks the request body_too_large).  Never fails but for thread creation
 * (abort). */
struct server *server_new(struct evloop *loop, int listen_fd, int workers, size_t max_body,
                          const struct server_ops *ops);
/* After the loop stopped: joins the pool and closes every connection.
 * NULL is a no-op. */
void server_free(struct server *s);

/* Starts watching the listening socket.  0 or -1 with errno. */
int server_start(struct server *s) TG_WUR;

/* From the loop thread (e.g. from serve): runs serve_blocking on a worker. */
void server_defer(struct server_req *req);
/* From any thread: sends req->out as the answer and releases req. */
void server_reply(struct server_req *req);

/* Streaming: a worker holds a part of an answer until the connection has
 * at most this many bytes not yet written to the web server. */
#define SERVER_STREAM_HIGH (256 * 1024)

/* From the worker serving req, before its server_reply: sends the len bytes
 * at data (CGI headers first, then body) now, as the next part of the
 * answer, so that a large answer never needs more memory than a part and
 * SERVER_STREAM_HIGH.  Blocks until the loop has queued the part and the
 * connection's backlog is at most SERVER_STREAM_HIGH.  data is only read
 * during the call.  Returns 0, or -1 once the web server has closed the
 * connection or given up on the request, or the server is stopping: stop
 * producing (server_reply still ends the request). */
int server_reply_part(struct server_req *req, const void *data, size_t len) TG_WUR;

/* From the loop thread: stops accepting; the loop stops once no request is
 * in flight and every answer is written, or after grace_ms. */
void server_drain(struct server *s, int grace_ms);

/* Requests in flight (handed to serve, not yet answered). */
size_t server_inflight(const struct server *s);

#endif
