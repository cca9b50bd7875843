/* metrics_billing: see metrics_billing.h. */
#include "metrics_billing.h"

#include "metrics_slot.h"

static const char *const billing_kinds[] = {"postgres", "amqp", "rejected"};
_Static_assert(TG_ARRAY_LEN(billing_kinds) == BILLING_ERR_KINDS, "one name per kind");

static const char *const alert_results[] = {"delivered", "retry", "failed"};
_Static_assert(TG_ARRAY_LEN(alert_results) == ALERT_ATTEMPT_RESULTS, "one name per result");

/* Delivery latency buckets, upper bounds in milliseconds: from a receiver on
 * the same network to one that runs into [alerts] timeout_ms. */
static const int64_t alert_buckets_ms[] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
_Static_assert(TG_ARRAY_LEN(alert_buckets_ms) == METRICS_ALERT_BUCKETS, "one bound per bucket");

void metrics_billing_message(struct metrics *m)
{
    metrics_add(&m->mine->bill_messages, 1);
}

void metrics_billing_applied(struct metrics *m, uint64_t batches, uint64_t duplicates,
                             uint64_t rows, uint64_t events, int64_t wall_ms)
{
    metrics_add(&m->mine->bill_batches, batches);
    metrics_add(&m->mine->bill_duplicates, duplicates);
    metrics_add(&m->mine->bill_rows, rows);
    metrics_add(&m->mine->bill_events, events);
    metrics_store(&m->mine->bill_last_ok_ms, wall_ms > 0 ? (uint64_t)wall_ms : 0);
}

void metrics_billing_error(struct metrics *m, enum metric_billing_error kind)
{
    metrics_add(&m->mine->bill_errors[kind], 1);
}

void metrics_billing_state(struct metrics *m, int64_t oldest_unacked_ms)
{
    metrics_store(&m->mine->g.billingd, 1);
    metrics_store(&m->mine->bill_unacked_ms, oldest_unacked_ms > 0 ? (uint64_t)oldest_unacked_ms : 0);
}

void metrics_alert_attempt(struct metrics *m, enum metric_alert_result result,
                           int64_t latency_us)
{
    if (!m || (unsigned)result >= ALERT_ATTEMPT_RESULTS)
        return;
    uint64_t us = latency_us > 0 ? (uint64_t)latency_us : 0;
    size_t b = 0;
    while (b < METRICS_ALERT_BUCKETS && us > (uint64_t)alert_buckets_ms[b] * 1000)
        b++;
    /* The histogram first: a scrape in between sees count ahead of the
     * results for a moment, never a result without its latency. */
    metrics_add(&m->mine->alert_buckets[b], 1);
    metrics_add(&m->mine->alert_sum_us, us);
    metrics_add(&m->mine->alert_attempts[result], 1);
}

void metrics_alert_outbox(struct metrics *m, uint64_t pending, int64_t oldest_created_ms)
{
    if (!m)
        return;
    metrics_store(&m->mine->alert_pending, pending);
    metrics_store(&m->mine->alert_oldest_ms,
                  pending && oldest_created_ms > 0 ? (uint64_t)oldest_created_ms : 0);
    metrics_store(&m->mine->alert_known, 1);
}

void metrics_billing_accumulate(struct metrics_slot *t, const struct metrics_slot *s, bool live)
{
    uint64_t ok = metrics_load(&s->bill_last_ok_ms);
    if (ok > t->bill_last_ok_ms)
        t->bill_last_ok_ms = ok;
    if (!live)
        return; /* what a dead billingd saw of the queue or the outbox is stale */
    uint64_t unacked = metrics_load(&s->bill_unacked_ms);
    if (unacked && (!t->bill_unacked_ms || unacked < t->bill_unacked_ms))
        t->bill_unacked_ms = unacked;
    if (!metrics_load(&s->alert_known))
        return;
    uint64_t pending = metrics_load(&s->alert_pending), oldest = metrics_load(&s->alert_oldest_ms);
    t->alert_known = 1;
    if (pending > t->alert_pending)
        t->alert_pending = pending;
    if (oldest && (!t->alert_oldest_ms || oldest < t->alert_oldest_ms))
        t->alert_oldest_ms = oldest;
}

/* Seconds from since_ms to wall_ms, 0 when since_ms is 0 or ahead. */
static double age_s(uint64_t since_ms, int64_t wall_ms)
{
    return since_ms && wall_ms > (int64_t)since_ms ? (double)(wall_ms - (int64_t)since_ms) / 1e3 : 0;
}

static void render_alerts(struct strbuf *b, const struct metrics_slot *t, int64_t wall_ms)
{
    strbuf_printf(b, "# HELP tollgate_alert_delivery_attempts_total Webhook delivery attempts "
            "by outcome (failed: the event was given up).\n"
            "# TYPE tollgate_alert_delivery_attempts_total counter\n");
    for (size_t i = 0; i < ALERT_ATTEMPT_RESULTS; i++)
        strbuf_printf(b, "tollgate_alert_delivery_attempts_total{result=\"%s\"} %llu\n",
            alert_results[i], (unsigned long long)t->alert_attempts[i]);
    strbuf_printf(b, "# HELP tollgate_alert_delivery_duration_seconds Time a webhook delivery "
            "attempt took, connection included.\n"
            "# TYPE tollgate_alert_delivery_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i <= METRICS_ALERT_BUCKETS; i++) {
        cum += t->alert_buckets[i];
        if (i < METRICS_ALERT_BUCKETS)
            strbuf_printf(b, "tollgate_alert_delivery_duration_seconds_bucket{le=\"%g\"} %llu\n",
                (double)alert_buckets_ms[i] / 1e3, (unsigned long long)cum);
        else
            strbuf_printf(b, "tollgate_alert_delivery_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)cum);
    }
    strbuf_printf(b, "tollgate_alert_delivery_duration_seconds_sum %.6f\n"
            "tollgate_alert_delivery_duration_seconds_count %llu\n",
        (double)t->alert_sum_us / 1e6, (unsigned long long)cum);
    strbuf_printf(b, "# HELP tollgate_alert_events_pending Alert events waiting for delivery, as "
            "a running billingd last read the outbox (0: none runs).\n"
            "# TYPE tollgate_alert_events_pending gauge\ntollgate_alert_events_pending %llu\n"
            "# HELP tollgate_alert_oldest_pending_age_seconds Time since the oldest pending "
            "alert event fired (0: none pending, or no billingd runs).\n"
            "# TYPE tollgate_alert_oldest_pending_age_seconds gauge\n"
            "tollgate_alert_oldest_pending_age_seconds %.3f\n",
        (unsigned long long)(t->alert_known ? t->alert_pending : 0),
        t->alert_known ? age_s(t->alert_oldest_ms, wall_ms) : 0.0);
}

void metrics_billing_render(struct strbuf *b, const struct metrics_slot *t, int64_t wall_ms)
{
    strbuf_printf(b, "# HELP tollgate_billingd_running billingd processes running.\n"
            "# TYPE tollgate_billingd_running gauge\ntollgate_billingd_running %llu\n"
            "# HELP tollgate_billingd_messages_total Usage messages taken from the queue.\n"
            "# TYPE tollgate_billingd_messages_total counter\n"
            "tollgate_billingd_messages_total %llu\n"
            "# HELP tollgate_billingd_batches_total Usage batches committed to PostgreSQL, or "
            "skipped as already applied.\n# TYPE tollgate_billingd_batches_total counter\n"
            "tollgate_billingd_batches_total{result=\"applied\"} %llu\n"
            "tollgate_billingd_batches_total{result=\"duplicate\"} %llu\n"
            "# HELP tollgate_billingd_rows_upserted_total usage_minute rows upserted.\n"
            "# TYPE tollgate_billingd_rows_upserted_total counter\n"
            "tollgate_billingd_rows_upserted_total %llu\n"
            "# HELP tollgate_billingd_events_total Usage events counted.\n"
            "# TYPE tollgate_billingd_events_total counter\ntollgate_billingd_events_total %llu\n",
        (unsigned long long)t->g.billingd, (unsigned long long)t->bill_messages,
        (unsigned long long)t->bill_batches, (unsigned long long)t->bill_duplicates,
        (unsigned long long)t->bill_rows, (unsigned long long)t->bill_events);
    strbuf_printf(b, "# HELP tollgate_billingd_errors_total billingd failures by kind.\n"
            "# TYPE tollgate_billingd_errors_total counter\n");
    for (size_t i = 0; i < BILLING_ERR_KINDS; i++)
        strbuf_printf(b, "tollgate_billingd_errors_total{kind=\"%s\"} %llu\n", billing_kinds[i],
            (unsigned long long)t->bill_errors[i]);
    strbuf_printf(b, "# HELP tollgate_billingd_last_success_timestamp_seconds When billingd "
            "last committed a window, since the epoch (0: never).\n"
            "# TYPE tollgate_billingd_last_success_timestamp_seconds gauge\n"
            "tollgate_billingd_last_success_timestamp_seconds %.3f\n"
            "# HELP tollgate_billingd_oldest_unacked_age_seconds Age of the oldest message a "
            "running billingd holds unacknowledged (0: none).\n"
            "# TYPE tollgate_billingd_oldest_unacked_age_seconds gauge\n"
            "tollgate_billingd_oldest_unacked_age_seconds %.3f\n",
        (double)t->bill_last_ok_ms / 1e3, age_s(t->bill_unacked_ms, wall_ms));
    render_alerts(b, t, wall_ms);
}
