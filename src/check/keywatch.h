/* keywatch: the thread that runs a process's key change feed
 * (keystore_follow_changes) once a second, with a Redis connection of its own
 * so that it never waits on the event loop. */
#ifndef TOLLGATE_KEYWATCH_H
#define TOLLGATE_KEYWATCH_H

#include "config.h"
#include "error.h"

struct keystore;
struct keywatch;

/* Starts following ks's changes every interval_ms, publishing through Redis
 * as cfg names it.  NULL with err filled when the thread cannot start. */
struct keywatch *keywatch_start(struct keystore *ks, const struct config *cfg, int interval_ms,
                                struct api_error *err);
/* Stops after the pass in progress (each is bounded by the stores'
 * timeouts) and frees w; NULL is harmless. */
void keywatch_stop(struct keywatch *w);

#endif
