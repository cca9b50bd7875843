/* redis: a Redis client shared by the worker threads of a process.
 *
 * Workers hand their commands to one I/O thread, which owns the connection:
 * it appends every command pending at that moment to the socket in one
 * write and, as replies arrive, hands each back to its worker in order
 * (auto-pipelining).  So concurrent requests share round trips and system
 * calls instead of each paying its own.  Connect and read timeouts apply to
 * every command; after a failure the connection is dropped (a late reply
 * must never answer the next command) and reopened at most every 100 ms, so
 * a dead server costs a request only a queue hop.  Scripts run by SHA with a
 * transparent reload after NOSCRIPT.
 *
 * In cluster mode the client keeps one such connection per primary and
 * sends each command to the node of its key's slot (see rcluster.h for the
 * key rules: every key of one command must share a slot, which hash tags
 * ensure).  The slot map comes from CLUSTER SLOTS at first use and again
 * after a MOVED or a failed command; MOVED and ASK are followed, TRYAGAIN
 * and CLUSTERDOWN retried within 250 ms (as are redirections that go round
 * while a slot changes hands), all invisibly to the caller.  The
 * timeout applies to each round trip, so a redirected command may take a
 * few.  A command that failed on the wire is never resent: it may have
 * run. */
#ifndef TOLLGATE_REDIS_H
#define TOLLGATE_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "util.h"

struct redis_conn;

/* Starts the I/O thread; the connection is opened on first use.  Never
 * fails (out of memory or thread exhaustion abort). */
struct redis_conn *redis_conn_new(const char *host, int port, int timeout_ms,
                                  const char *password);
/* Cluster mode: nodes is "host:port[,host:port...]", seed nodes of which
 * any one suffices to load the slot map (on first use: nothing connects
 * here).  Returns NULL with err filled only when the list is malformed. */
struct redis_conn *redis_conn_new_cluster(const char *nodes, int timeout_ms,
                                          const char *password, struct tg_err *err) TG_WUR;
/* Stops the I/O threads, failing what is still queued; NULL is a no-op. */
void redis_conn_free(struct redis_conn *rc);

/* Runs one command given as an argument vector (argvlen NULL: strlen), from
 * any thread.  Returns the reply (caller frees with freeReplyObject) or NULL
 * with err filled when the server is unreachable or timed out; an error
 * reply is returned as a reply (in a cluster, after the redirections and
 * retries above). */
redisReply *redis_command(struct redis_conn *rc, int argc, const char **argv,
                          const size_t *argvlen, struct tg_err *err);

/* A Lua script identified by its SHA-1, computed once. */
struct redis_script {
    const char *source;
    char sha[41];
};
void redis_script_init(struct redis_script *s, const char *source);

/* EVALSHA of the script with nkeys keys followed by args (all strings);
 * loads the script and retries once after NOSCRIPT. */
redisReply *redis_eval(struct redis_conn *rc, const struct redis_script *s, int nkeys,
                       const char *const *keys, int nargs, const char *const *args,
                       struct tg_err *err);

#endif
