/* alerteval: evaluates the alert rules against one usage batch as billingd
 * receives it, before and apart from the aggregation window that writes
 * usage, so that an alert fires within a second or two of the checks that
 * caused it.  The check path pays nothing: the responders already publish
 * every decision.
 *
 * The rules are evaluated in PostgreSQL by tg_alert_eval
 * (sql/011_alerts.sql, 012_alert_near.sql, 018_alert_eval_cost.sql), in
 * one transaction that also writes the events
 * (the outbox) and the cooldown state: competing billingd consumers cannot
 * fire a rule twice for one key and cooldown, and a batch redelivered after
 * a crash is evaluated once (its id is recorded). */
#ifndef TOLLGATE_ALERTEVAL_H
#define TOLLGATE_ALERTEVAL_H

#include <stdbool.h>

#include "pg.h"
#include "strbuf.h"
#include "usagemsg.h"
#include "util.h"

/* The JSON documents tg_alert_eval reads from m (each reset first), with
 * the times of the triggering checks as the buckets' marks give them (0:
 * unknown, a message from a responder that predates them):
 *   denials [{"k":key,"t":minute_s,"c":rate_limited,"f":deny_first_ms,
 *             "l":deny_last_ms}] for the buckets with denials;
 *   peaks   [{"k":key,"p":peak_pct,"ts":peak_ms}] for those with a peak.
 * quota is alerteval_after_ingest's scratch: quota_used_pct is evaluated
 * once per window, after the usage is committed, not per batch
 * (sql/018_alert_eval_cost.sql says why).  Returns true when either
 * document is not empty. */
struct alerteval_docs {
    struct strbuf denials, peaks, quota;
};
bool alerteval_json(const struct usage_msg *m, struct alerteval_docs *d);
void alerteval_docs_fini(struct alerteval_docs *d);

/* Evaluates the rules against m over conn (idle; left so), in its own
 * transaction.  *fired receives the number of events written.  Returns 0,
 * or -1 with e filled (nothing written).  d is scratch. */
int alerteval_run(struct pg_conn *conn, const struct usage_msg *m, struct alerteval_docs *d,
                  int *fired, struct api_error *e) TG_WUR;

/* The quota part of alerteval_json over the buckets of msgs[0..n), into b
 * (reset first); "ts" is the latest check of the bucket.  Returns true when
 * not empty. */
bool alerteval_quota_json(const struct usage_msg *msgs, size_t n, struct strbuf *b);

/* After the usage of msgs[0..n) was committed: evaluates quota_used_pct
 * for their keys against the use PostgreSQL now holds (use spread over
 * batches that each stayed below the threshold is seen here).  Same
 * contract as alerteval_run; b is scratch. */
int alerteval_after_ingest(struct pg_conn *conn, const struct usage_msg *msgs, size_t n,
                           struct strbuf *b, int *fired, struct api_error *e) TG_WUR;

#endif
