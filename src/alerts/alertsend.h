/* alertsend: delivers the alert events of the outbox (alert_events, see
 * sql/011_alerts.sql) to their webhooks, from a thread of billingd; the
 * billing events (sql/021_billing_events.sql) share the outbox and go to
 * their billing webhooks the same way.
 *
 * The thread claims due events (FOR UPDATE SKIP LOCKED, so several
 * billingd share the work) for the length of one attempt plus a margin,
 * posts each body signed with its rule's secret through one libcurl multi
 * handle (at most [alerts] in_flight at once, each bounded by
 * [alerts] timeout_ms: a slow or dead receiver holds one slot, never the
 * others), and records every attempt.  2xx: delivered.  A timeout, a
 * connection error, 408, 429 or 5xx: tried again after an exponential
 * backoff with jitter until [alerts] retry_for_s after the event fired,
 * then given up ("failed").  Anything else is given up at once.  Redirects
 * are never followed, and every connection's address passes netguard.h.
 *
 * A deliverer killed mid-delivery leaves its claim behind: the event is
 * claimed again when the claim expires, with the same event_id and body
 * (at least once; receivers deduplicate on event_id). */
#ifndef TOLLGATE_ALERTSEND_H
#define TOLLGATE_ALERTSEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "metrics.h"
#include "pg.h"
#include "util.h"

/* How often the outbox's pending events are counted (one index scan). */
#define ALERTSEND_OUTBOX_MS 5000

/* "sha256=" and 64 hex digits, NUL-terminated. */
#define ALERTSEND_SIG_LEN (7 + 64 + 1)

/* The X-Tollgate-Signature value of body: hex HMAC-SHA-256 with secret. */
void alertsend_sign(const char *secret, const char *body, size_t len,
                    char out[ALERTSEND_SIG_LEN]);

/* Delay before attempt number next (2 for the first retry): 1 s doubled
 * per attempt, at most 1 h, then a random part (rnd) taking off up to half
 * (so that receivers coming back are not hit by every deliverer at once). */
int64_t alertsend_backoff_ms(int next, uint32_t rnd);

/* Whether an attempt that ended with HTTP status (0: no answer) is worth
 * repeating; refused (the address was not allowed) never is. */
bool alertsend_retryable(long status, bool refused);

struct alertsend;

/* A deliverer over pool, reading cfg and counting into metrics (all
 * borrowed; they must outlive it; metrics may be NULL).  Each attempt's
 * outcome and latency are counted as it is recorded, and the outbox's
 * pending events (how many, since when) are read at most every
 * ALERTSEND_OUTBOX_MS (metrics_billing.h).  Returns NULL with e filled when
 * [alerts] allow_private is invalid. */
struct alertsend *alertsend_new(const struct config *cfg, struct pg_pool *pool,
                                struct metrics *metrics, struct api_error *e);
/* Starts the thread.  Returns 0 or -1 with e filled. */
int alertsend_start(struct alertsend *s, struct api_error *e) TG_WUR;
/* Stops the thread (transfers in flight are abandoned: their claims expire
 * and they are delivered again) and frees s.  NULL is harmless. */
void alertsend_free(struct alertsend *s);

#endif
