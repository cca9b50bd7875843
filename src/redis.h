/* redis: one Redis connection with connect/read timeouts, automatic
 * reconnection and scripts run by SHA with a transparent reload after
 * NOSCRIPT.  A connection belongs to one thread at a time. */
#ifndef TOLLGATE_REDIS_H
#define TOLLGATE_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "util.h"

struct redis_conn;

/* Never fails: the connection is opened on first use. */
struct redis_conn *redis_conn_new(const char *host, int port, int timeout_ms,
                                  const char *password);
void redis_conn_free(struct redis_conn *rc);

/* Runs one command given as an argument vector.  Returns the reply (caller
 * frees with freeReplyObject) or NULL with err filled when the server is
 * unreachable or timed out; an error reply is returned as a reply. */
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
