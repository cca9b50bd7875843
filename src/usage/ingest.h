/* ingest: applies parsed batch messages to PostgreSQL, all in one
 * transaction, exactly once per batch id and per usage event id.
 *
 * In that transaction: the batch ids are recorded in usage_batches and only
 * the messages whose id is new are applied (a batch repeated inside the set
 * counts once); their event ids likewise in usage_event_ids; what is new is
 * merged per (key, minute, endpoint), copied into a temporary table and
 * upserted into usage_minute in key order; keys.last_used_at moves forward
 * to the latest minute with checks; the keys' durable use (ledger.h) grows
 * by the same checks.  The monthly partitions needed are
 * created beforehand, in their own short transactions.  A transaction that
 * loses a deadlock or a serialization conflict is retried, 3 attempts in
 * all.  On failure nothing at all is applied. */
#ifndef TOLLGATE_INGEST_H
#define TOLLGATE_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "pg.h"
#include "usagemsg.h"
#include "util.h"

#define INGEST_ATTEMPTS 3

struct ingest;

/* What one successful ingest_apply did. */
struct ingest_stats {
    uint64_t messages;   /* given */
    uint64_t applied;    /* batches applied (new ids) */
    uint64_t duplicates; /* batches skipped: applied before, or repeated in the set */
    uint64_t events;     /* usage events counted */
    uint64_t events_dup; /* usage events skipped as already counted */
    uint64_t buckets;    /* usage_minute rows upserted */
};

/* An ingester keeps, between calls, its merge table, the months whose
 * partition it has ensured and whether the connection it last used has the
 * temporary table.  One per thread. */
struct ingest *ingest_new(void);
void ingest_free(struct ingest *g);

/* Applies msgs[0..n) over conn (idle, outside a transaction; it is left
 * so).  Returns 0 with *st filled, or -1 with err filled when nothing was
 * applied (the caller must not acknowledge the messages).  The messages are
 * only read. */
int ingest_apply(struct ingest *g, struct pg_conn *conn, const struct usage_msg *msgs, size_t n,
                 struct ingest_stats *st, struct api_error *err) TG_WUR;

/* Forgets what is cached about the database (partitions, temporary table):
 * to call after the connection was replaced or partitions were dropped. */
void ingest_reset(struct ingest *g);

#endif
