/* redis_forget: removes Tollgate's state from Redis after a restore
 * (docs/backup.md, "Redis after a restore").  What Redis holds -- cached
 * key records, rate-limit windows, quota and credit counters -- describes a
 * database that is gone; once it is removed, each key's state is rebuilt
 * from PostgreSQL on its first check. */
#ifndef TOLLGATE_REDIS_FORGET_H
#define TOLLGATE_REDIS_FORGET_H

#include <stddef.h>

#include "config.h"
#include "rcluster.h"
#include "util.h"

/* Tollgate's keys, and nothing else of a Redis it may share. */
#define REDIS_FORGET_PATTERN "tg:*"

/* Deletes every key matching REDIS_FORGET_PATTERN from the Redis of cfg:
 * the one server, or every primary of the cluster (SCAN is per node).
 * Returns the number of keys deleted, or -1 with e filled (some may have
 * been deleted). */
long redis_forget(const struct config *cfg, struct api_error *e);

/* The distinct primaries among n slot ranges of CLUSTER SLOTS: fills
 * out[0..) with indexes into ranges, one per primary, and returns how
 * many. */
size_t redis_forget_primaries(const struct rcluster_range *ranges, size_t n, size_t *out);

#endif
