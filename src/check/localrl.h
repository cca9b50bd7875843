/* localrl: the sliding windows of a check kept in this process only, for
 * ratelimit.on_store_error = local.  While Redis cannot decide, each process
 * enforces every window at limit / processes (at least 1), so the pool as a
 * whole stays within the limit.  The quota and remaining credits need the
 * shared count and are not enforced here.  Same sub-bucket arithmetic as
 * the Redis script; the caller passes the clock. */
#ifndef TOLLGATE_LOCALRL_H
#define TOLLGATE_LOCALRL_H

#include <stdint.h>

#include "ratelimit.h"

struct localrl;

/* capacity: windows remembered at most (all are forgotten when full). */
struct localrl *localrl_new(size_t capacity);
void localrl_free(struct localrl *l);

/* Decides req (windows only) at now_ms with each limit divided by
 * processes; fills res and req->windows[] like ratelimit_check. */
void localrl_check(struct localrl *l, struct rl_request *req, int64_t processes, int64_t now_ms,
                   struct rl_result *res);

#endif
