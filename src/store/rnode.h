/* rnode: one Redis server over one non-blocking connection, driven by an
 * event loop (src/evloop.h).  Commands from every thread share the
 * connection: those queued while the loop was busy go out in one write when
 * it next idles, and replies complete them in order (auto-pipelining).
 * Commands from the loop thread itself complete through a callback; other
 * threads may wait for a reply (rnode_call).  Timeouts drop the connection
 * (a late reply must never answer the next command); a failed connect holds
 * new attempts back 100 ms, during which commands fail at once.  The
 * connection's bytes are the module's own (socket, write buffer, hiredis's
 * reply reader only), so TLS (src/store/rtls.h) can carry them: after the
 * TCP connect, a handshake driven by the loop, bounded by the same timeout;
 * a failed handshake holds new attempts back as a failed connect does.  Internal to the redis
 * module, which routes commands to nodes. */
#ifndef TOLLGATE_RNODE_H
#define TOLLGATE_RNODE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct evloop;
struct rnode;
struct rtls;

/* How a node connects; the strings are copied, tls is borrowed and must
 * outlive the node. */
struct rnode_opts {
    int timeout_ms;          /* bounds a connect (TLS handshake included),
                              * then each command's reply */
    const char *user;        /* NULL or "": AUTH password (the default user) */
    const char *password;    /* NULL or "": no AUTH */
    struct rtls *tls;        /* NULL: plain TCP */
    const char *server_name; /* TLS: the name checked in the server's
                              * certificate; NULL or "": the host */
};

/* A command on its way; owned by the caller until done runs. */
struct rnode_op {
    const char *cmd; /* formatted RESP, borrowed until done */
    int len;
    bool asking; /* preceded by ASKING in the same write */
    /* In the loop thread: exactly one of reply (caller frees) and error is
     * set. */
    void (*done)(struct rnode_op *op, redisReply *reply, const char *error);
    void *arg;
    /* The module's. */
    struct rnode_op *next;
    int skip;
    int64_t deadline_ns;
};

/* Serves host:port from loop; connects on first use.  Never fails. */
struct rnode *rnode_new(struct evloop *loop, const char *host, int port,
                        const struct rnode_opts *o);
/* From the loop thread, or after it stopped: fails what is queued or
 * waiting and closes the connection.  NULL is a no-op. */
void rnode_free(struct rnode *n);

/* Queues op from any thread; op->done runs in the loop thread. */
void rnode_send(struct rnode *n, struct rnode_op *op);

/* From any thread but the loop's: sends cmd (len bytes) and waits for its
 * reply (caller frees), or NULL with err filled on a connection failure or
 * timeout. */
redisReply *rnode_call(struct rnode *n, const char *cmd, int len, bool asking,
                       struct api_error *err);

const char *rnode_host(const struct rnode *n);
int rnode_port(const struct rnode *n);

/* A bounded message; a cut one is still informative. */
void rnode_msgf(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
