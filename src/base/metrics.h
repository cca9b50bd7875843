/* metrics: Prometheus counters and gauges shared by the processes of a pool.
 *
 * Each process owns one slot file in metrics_dir, found by taking the first
 * slot whose flock is free, and holds that lock for its life.  Counters and
 * gauges are updated with relaxed atomics in the mapped file: no system call
 * per request.  GET /metrics sums every slot's counters, those of processes
 * that ended included (the file keeps them, and a process that takes a free
 * slot continues its counts, so totals never go down), and the gauges of the
 * slots whose lock is held, that is of the processes that run.  With no
 * directory configured the figures are the process's own. */
#ifndef TOLLGATE_METRICS_H
#define TOLLGATE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum metric_redis_error {
    REDIS_ERR_RECORD_READ,
    REDIS_ERR_RECORD_WRITE,
    REDIS_ERR_RATELIMIT,
    REDIS_ERR_PUBLISH,
    REDIS_ERR_KINDS
};

struct metrics;

/* Opens (creating) a slot in dir, or process-local counters when dir is NULL
 * or empty.  Returns NULL with err filled when the directory is unusable or
 * every slot is taken. */
struct metrics *metrics_open(const char *dir, struct api_error *err);
void metrics_close(struct metrics *m);

/* route: index in the route table (-1: no route); status: HTTP status. */
void metrics_request(struct metrics *m, int route, int status);
/* One check decision: reason ERR_NONE when allowed; ns: time spent deciding and
 * answering, measured in the responder. */
void metrics_check(struct metrics *m, enum err_code reason, int64_t ns);
void metrics_redis_error(struct metrics *m, enum metric_redis_error kind);
void metrics_cache(struct metrics *m, bool hit);
/* A key record read from Redis or, when from_pg, from PostgreSQL. */
void metrics_record_load(struct metrics *m, bool from_pg);
/* The key record cache's evictions so far (it counts them itself). */
void metrics_cache_evictions(struct metrics *m, uint64_t total);
/* The usage publisher: its journal's backlog and capacity in slots, and the
 * appends refused since the last call. */
void metrics_usage_journal(struct metrics *m, uint64_t backlog, uint64_t capacity,
                           uint64_t dropped_more);
void metrics_usage_broker(struct metrics *m, bool connected);
/* One batch confirmed, holding buckets buckets. */
void metrics_usage_batch(struct metrics *m, size_t buckets);

/* billingd's own figures: metrics_billing.h. */

/* Refreshes this process's figures from /proc when a second has passed since
 * the last time (mono_now: monotonic, as mono_ms).  Called by the process's
 * periodic work and by metrics_render: each process reports its own, whatever
 * account the others run under.  In the exposition process_cpu_seconds_total
 * is the sum over every process that had a slot (a counter),
 * process_resident_memory_bytes and process_open_fds the sums over the
 * running ones, and process_start_time_seconds the start of the newest
 * running one (it changes whenever a process of the pool starts). */
void metrics_process(struct metrics *m, int64_t mono_now);

/* The Prometheus text exposition of all slots; route_names[i] labels route
 * i.  Caller frees. */
char *metrics_render(struct metrics *m, const char *const *route_names, size_t nroutes);

#endif
