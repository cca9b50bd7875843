/* retention: what billingd's housekeeping removes from PostgreSQL
 * (docs/retention.md).  Usage goes a whole monthly partition at a time,
 * through tg_retention_usage (sql/015_retention.sql), which runs as the
 * schema owner and keeps every month billing still needs; the small tables
 * (deduplication ids, alert state, finished alert events and attempts) are
 * purged in bounded batches. */
#ifndef TOLLGATE_RETENTION_H
#define TOLLGATE_RETENTION_H

#include <stdint.h>

#include "config.h"
#include "pg.h"
#include "strbuf.h"

#define RETENTION_PURGE_ROWS 5000 /* per DELETE */
#define RETENTION_PURGE_ROUNDS 20 /* DELETEs per table per run */

struct retention_report {
    struct strbuf dropped; /* partitions dropped, blank-separated */
    uint64_t partitions;
    uint64_t batch_ids, event_ids;
    uint64_t alert_events, alert_attempts;
    uint64_t alert_state; /* evaluation state: batch ids and denial minutes */
};

/* Applies cfg's [retention] to the database over conn (autocommit; each
 * step is its own statement).  The steps are independent: one that fails
 * does not keep the others from running.  Returns 0, or -1 with the first
 * failure in e; rep holds what was removed either way (reset first; release
 * it with retention_report_fini). */
int retention_run(struct pg_conn *conn, const struct config *cfg, struct retention_report *rep,
                  struct api_error *e) TG_WUR;

void retention_report_fini(struct retention_report *rep);

#endif
