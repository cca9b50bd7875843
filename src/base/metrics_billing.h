/* metrics_billing: billingd's figures and those of its alert deliverer, in
 * billingd's slot of the responders' metrics_dir (so that their GET /metrics
 * shows them; metrics.h says how slots add up).  Every function is a few
 * relaxed atomic operations on the slot: the main loop and the deliverer's
 * thread call them without a lock. */
#ifndef TOLLGATE_METRICS_BILLING_H
#define TOLLGATE_METRICS_BILLING_H

#include <stdint.h>

#include "metrics.h"

/* billingd's failures: a window PostgreSQL did not commit, a broker
 * connection lost or refused, a message dead-lettered as malformed. */
enum metric_billing_error {
    BILLING_ERR_POSTGRES,
    BILLING_ERR_AMQP,
    BILLING_ERR_REJECTED,
    BILLING_ERR_KINDS
};

/* What became of one webhook delivery attempt: delivered (2xx), to be tried
 * again, or given up (the event is failed). */
enum metric_alert_result {
    ALERT_ATTEMPT_DELIVERED,
    ALERT_ATTEMPT_RETRY,
    ALERT_ATTEMPT_FAILED,
    ALERT_ATTEMPT_RESULTS
};

/* One message taken from the queue. */
void metrics_billing_message(struct metrics *m);
/* A window committed at wall time wall_ms (ms since the epoch): batches
 * applied and skipped as duplicates, usage_minute rows upserted, events. */
void metrics_billing_applied(struct metrics *m, uint64_t batches, uint64_t duplicates,
                             uint64_t rows, uint64_t events, int64_t wall_ms);
void metrics_billing_error(struct metrics *m, enum metric_billing_error kind);
/* Each round of billingd's loop: the wall time (ms) at which the oldest
 * message it holds unacknowledged arrived, 0 when it holds none.  Messages
 * still in the queue are the broker's to count. */
void metrics_billing_state(struct metrics *m, int64_t oldest_unacked_ms);

/* One delivery attempt ended with result after latency_us microseconds
 * (negative counts as 0).  m may be NULL: nothing is counted. */
void metrics_alert_attempt(struct metrics *m, enum metric_alert_result result,
                           int64_t latency_us);
/* The outbox as last read: pending events, and the wall time (ms) at which
 * the oldest of them fired (0: none pending).  m may be NULL. */
void metrics_alert_outbox(struct metrics *m, uint64_t pending, int64_t oldest_created_ms);

#endif
