/* rnode: one Redis server behind an I/O thread.  Worker threads queue their
 * commands; the I/O thread writes every command pending at that moment in
 * one go and hands each reply back to its worker in order (auto-pipelining).
 * Timeouts drop the connection (a late reply must never answer the next
 * command); a failed connect holds new attempts back 100 ms.  Internal to
 * the redis module, which routes commands to nodes. */
#ifndef TOLLGATE_RNODE_H
#define TOLLGATE_RNODE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>

#include "util.h"

struct rnode;

/* Starts the I/O thread; connects on first use.  Never fails. */
struct rnode *rnode_new(const char *host, int port, int timeout_ms, const char *password);
/* Stops the thread, failing what is queued; NULL is a no-op. */
void rnode_free(struct rnode *n);

/* Sends the formatted command cmd (len bytes, RESP), preceded by ASKING in
 * the same write when asking, and waits for its reply (caller frees), or
 * NULL with err filled on a connection failure or timeout. */
redisReply *rnode_call(struct rnode *n, const char *cmd, int len, bool asking,
                       struct tg_err *err);

const char *rnode_host(const struct rnode *n);
int rnode_port(const struct rnode *n);

/* A bounded message; a cut one is still informative. */
void rnode_msgf(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
