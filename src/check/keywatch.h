/* keywatch: a process's key change feed.  A thread reads, once a second,
 * the keys PostgreSQL says changed lately and publishes each again
 * (keystore_publish: Redis records and version, this process's cache), so
 * that a change reaches every process even when its own publication failed
 * (Redis down at that moment) or its process died before publishing.  The
 * keys erased lately (erased_keys) are forgotten the same way
 * (privacy_forget_key), in every process.  It
 * has a Redis connection of its own, so it never waits on the event loop. */
#ifndef TOLLGATE_KEYWATCH_H
#define TOLLGATE_KEYWATCH_H

#include "config.h"
#include "error.h"

struct keystore;
struct keywatch;
struct pg_pool;
struct rtls;

/* Starts following the changes in pg every interval_ms, publishing through
 * ks and Redis as cfg names it, over tls (the process's context, NULL when
 * [redis] tls = 0; it must outlive w).  NULL with err filled when the
 * thread cannot start. */
struct keywatch *keywatch_start(struct keystore *ks, struct pg_pool *pg, const struct config *cfg,
                                struct rtls *tls, int interval_ms, struct api_error *err);
/* Stops after the pass in progress (each is bounded by the stores'
 * timeouts) and frees w; NULL is harmless. */
void keywatch_stop(struct keywatch *w);

#endif
