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
 * run.
 *
 * Every connection, to a seed or to a node a redirection names, is made with
 * the same options (struct rnode_opts): TLS when a context is given, and
 * AUTH as the configured user. */
#ifndef TOLLGATE_REDIS_H
#define TOLLGATE_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#include "rnode.h"

#include "util.h"

struct redis_conn;

struct config;
struct evloop;

/* The connections are driven by loop (the caller runs it, and stops it only
 * after the last command of any thread), or, with loop NULL, by a thread of
 * the client's own.  The connection is opened on first use.  Never fails
 * (out of memory or thread exhaustion abort). */
struct redis_conn *redis_conn_new(struct evloop *loop, const char *host, int port,
                                  const struct rnode_opts *o);
/* Cluster mode: nodes is "host:port[,host:port...]", seed nodes of which
 * any one suffices to load the slot map (on first use: nothing connects
 * here).  Returns NULL with err filled only when the list is malformed. */
struct redis_conn *redis_conn_new_cluster(struct evloop *loop, const char *nodes,
                                          const struct rnode_opts *o,
                                          struct api_error *err) TG_WUR;
/* The connection options [redis] of cfg gives (timeout, ACL user and
 * password, tls and the name its certificate must carry). */
void redis_opts_from_config(const struct config *cfg, struct rtls *tls, struct rnode_opts *o);
/* The client [redis] of cfg describes (one server, or a cluster when nodes
 * is set), over tls (the context rtls_from_config built; NULL when tls =
 * 0), which must outlive it.  NULL with err filled as
 * redis_conn_new_cluster. */
struct redis_conn *redis_conn_from_config(struct evloop *loop, const struct config *cfg,
                                          struct rtls *tls, struct api_error *err) TG_WUR;
/* Fails what is still queued and closes; with an external loop, call it
 * after the loop stopped.  NULL is a no-op. */
void redis_conn_free(struct redis_conn *rc);

/* Runs one command given as an argument vector (argvlen NULL: strlen), from
 * any thread but the loop's.  Returns the reply (caller frees with freeReplyObject) or NULL
 * with err filled when the server is unreachable or timed out; an error
 * reply is returned as a reply (in a cluster, after the redirections and
 * retries above). */
redisReply *redis_command(struct redis_conn *rc, int argc, const char **argv,
                          const size_t *argvlen, struct api_error *err);

/* PING (in a cluster, any one node): 0 when the server answered PONG, else
 * -1 with err filled. */
int redis_ping(struct redis_conn *rc, struct api_error *err) TG_WUR;

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
                       struct api_error *err);

/* An EVALSHA sent from the loop thread without waiting.  done runs in the
 * loop thread with the reply (caller frees) or an error message; a is the
 * caller's until then. */
struct redis_async {
    void (*done)(struct redis_async *a, redisReply *reply, const char *error);
    void *arg;
    /* The module's. */
    struct redis_conn *rc;
    struct rnode_op op;
    char *cmd;
};

/* Largest number of keys plus arguments redis_eval_async takes. */
#define RATELIMIT_ARGS_MAX 80

/* Sends EVALSHA of s to the node of keys[0] (cluster: by the slot map as it
 * stands).  Returns 0 (done will run), or -1 when it cannot be sent without
 * blocking (the slot map is not loaded or wants reloading): the caller takes
 * the synchronous path.  Nothing is followed or retried: NOSCRIPT, MOVED,
 * ASK, TRYAGAIN and CLUSTERDOWN reach done as error replies, for which
 * redis_reply_wants_sync is true (the command did not run; the synchronous
 * path handles them). */
int redis_eval_async(struct redis_conn *rc, const struct redis_script *s, int nkeys,
                     const char *const *keys, int nargs, const char *const *args,
                     struct redis_async *a) TG_WUR;
bool redis_reply_wants_sync(const redisReply *r);

#endif
