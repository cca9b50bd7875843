/* metrics_slot: the layout of a metrics slot file, shared by metrics.c and
 * metrics_billing.c (internal to those two; see metrics.h for what the
 * figures mean and how they add up). */
#ifndef TOLLGATE_METRICS_SLOT_H
#define TOLLGATE_METRICS_SLOT_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"
#include "metrics_billing.h"
#include "strbuf.h"

#define METRICS_MAGIC 0x74676d35u /* "tgm5": a new layout resets old slots */
#define METRICS_ROUTES 64
#define METRICS_STATUSES 16     /* the listed statuses + other */
#define METRICS_CHECK_BUCKETS 11 /* check latency bounds (+Inf apart) */
#define METRICS_OUTCOMES 9
#define METRICS_ALERT_BUCKETS 11 /* delivery latency bounds (+Inf apart) */

/* Every counter lies between requests and g; the gauges are in g.  A slot
 * outlives its process: the counters stay in the file, summed by every
 * render and continued by the next process that takes the slot, so a total
 * never goes down; the gauges are the process's present state and count only
 * while it runs. */
struct metrics_gauges {
    uint64_t usage_backlog, usage_capacity, usage_connected;
    uint64_t processes; /* 1: summed, the number of live processes */
    uint64_t rss_bytes, open_fds;
    uint64_t billingd; /* 1 in a running billingd's slot */
};

struct metrics_slot {
    uint32_t magic;
    uint32_t nroutes;
    uint64_t requests[METRICS_ROUTES + 1][METRICS_STATUSES]; /* last row: no route */
    uint64_t check_buckets[METRICS_CHECK_BUCKETS + 1];       /* last: +Inf */
    uint64_t check_count;
    uint64_t check_sum_ns;
    uint64_t outcomes[METRICS_OUTCOMES];
    uint64_t redis_errors[REDIS_ERR_KINDS];
    uint64_t cache_hits, cache_misses;
    uint64_t loads_redis, loads_pg; /* key records read from the stores */
    uint64_t cache_evictions;        /* evictions_base + the cache's own count */
    uint64_t usage_dropped, usage_batches, usage_buckets;
    uint64_t cpu_ms; /* cpu_base + this process's own */
    uint64_t bill_messages, bill_batches, bill_duplicates, bill_rows, bill_events;
    uint64_t bill_errors[BILLING_ERR_KINDS];
    uint64_t alert_attempts[ALERT_ATTEMPT_RESULTS];
    uint64_t alert_buckets[METRICS_ALERT_BUCKETS + 1]; /* last: +Inf */
    uint64_t alert_sum_us;
    struct metrics_gauges g;
    /* Not summed: the newest start of a live process, the latest success of
     * any billingd, the oldest unacknowledged message of a live one. */
    uint64_t start_ms, bill_last_ok_ms, bill_unacked_ms;
    /* Not summed either, of live billingd only: every billingd sees the same
     * outbox, so the pending count is the largest one seen (the freshest,
     * give or take a few seconds), and the oldest event the oldest seen.
     * alert_known: 1 once the outbox was read. */
    uint64_t alert_known, alert_pending, alert_oldest_ms;
};

static inline void metrics_add(uint64_t *c, uint64_t n)
{
    __atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static inline void metrics_store(uint64_t *c, uint64_t v)
{
    __atomic_store_n(c, v, __ATOMIC_RELAXED);
}

static inline uint64_t metrics_load(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

struct metrics {
    struct metrics_slot *mine;
    int fd;
    char *dir;
    uint64_t evictions_base; /* the slot's count when this process took it */
    uint64_t cpu_base;       /* likewise */
    int64_t next_sample_ms;  /* metrics_process: monotonic; atomics (two threads) */
};

/* Adds the billingd fields of a slot that are not plain counters or gauges
 * into the totals t (live: its process runs). */
void metrics_billing_accumulate(struct metrics_slot *t, const struct metrics_slot *s, bool live);
/* billingd's and the alert deliverer's figures; wall_ms: now. */
void metrics_billing_render(struct strbuf *b, const struct metrics_slot *t, int64_t wall_ms);

#endif
