#include "retention.h"

#include <stdio.h>
#include <string.h>

#define STR2(x) #x
#define STR(x) STR2(x)

/* One bounded batch per statement: "$1" is the retention in days.  Each
 * DELETE finds its rows through the table's time index, so that a run
 * never holds many row locks nor scans a big table. */
#define PURGE_BY(table, key, cols, cond)                                                     \
    "WITH d AS (DELETE FROM " table " WHERE " key " IN (SELECT " cols " FROM " table        \
    " WHERE " cond " LIMIT " STR(RETENTION_PURGE_ROWS) ") RETURNING 1) SELECT count(*) FROM d"
#define PURGE(table, key, cond) PURGE_BY(table, key, key, cond)

static const char purge_batches[] =
    PURGE("usage_batches", "id", "applied_at < now() - make_interval(days => $1::int)");
static const char purge_event_ids[] =
    PURGE("usage_event_ids", "id", "received_at < now() - make_interval(days => $1::int)");
/* Pending events are the outbox: never removed whatever their age. */
static const char purge_alert_events[] =
    PURGE("alert_events", "id",
          "state <> 'pending' AND done_at < now() - make_interval(days => $1::int)");
static const char purge_alert_attempts[] =
    PURGE("alert_attempts", "id", "at < now() - make_interval(days => $1::int)");
/* Evaluation state is only needed for the current minute and for
 * redeliveries of a batch being evaluated: fixed, not configured. */
static const char purge_alert_batches[] =
    PURGE("alert_batches", "id", "seen_at < now() - interval '1 day'");
static const char purge_alert_minute[] =
    PURGE_BY("alert_minute", "(key_id, minute)", "key_id, minute", "minute < now() - interval '1 hour'");

static int purge(struct pg_conn *conn, const char *sql, int64_t days, uint64_t *deleted,
                 struct api_error *e)
{
    char d[24];
    snprintf(d, sizeof d, "%lld", (long long)days);
    const char *p[] = {d};
    for (int i = 0; i < RETENTION_PURGE_ROUNDS; i++) {
        struct pg_res *r = pg_query(conn, sql, strstr(sql, "$1") ? 1 : 0, p, e);
        if (!r)
            return -1;
        int64_t n = pg_int(r, 0, 0);
        pg_res_free(r);
        *deleted += (uint64_t)n;
        if (n < RETENTION_PURGE_ROWS)
            break;
    }
    return 0;
}

static int drop_usage(struct pg_conn *conn, const struct config *cfg, struct retention_report *rep,
                      struct api_error *e)
{
    char m[24], h[24];
    snprintf(m, sizeof m, "%lld", (long long)cfg->retention_minute_days);
    snprintf(h, sizeof h, "%lld", (long long)cfg->retention_hour_days);
    const char *p[] = {m, h};
    struct pg_res *r = pg_query(conn,
                                "SELECT tg_retention_usage(make_interval(days => $1::int), "
                                "make_interval(days => $2::int))",
                                2, p, e);
    if (!r)
        return -1;
    for (int i = 0; i < pg_nrows(r); i++) {
        if (rep->partitions++)
            strbuf_putc(&rep->dropped, ' ');
        strbuf_put(&rep->dropped, pg_val(r, i, 0), strlen(pg_val(r, i, 0)));
    }
    pg_res_free(r);
    return 0;
}

/* Keeps the first failure in e, the later ones only in the log. */
static void step(int rc, struct api_error *tmp, int *first, struct api_error *e)
{
    if (rc == 0)
        return;
    if (*first == 0)
        *e = *tmp;
    *first = -1;
}

int retention_run(struct pg_conn *conn, const struct config *cfg, struct retention_report *rep,
                  struct api_error *e)
{
    struct api_error t = {0};
    int rc = 0;
    retention_report_fini(rep);
    step(drop_usage(conn, cfg, rep, &t), &t, &rc, e);
    int64_t ids = cfg->retention_dedupe_days, alerts = cfg->retention_alerts_days;
    step(purge(conn, purge_batches, ids, &rep->batch_ids, &t), &t, &rc, e);
    step(purge(conn, purge_event_ids, ids, &rep->event_ids, &t), &t, &rc, e);
    step(purge(conn, purge_alert_events, alerts, &rep->alert_events, &t), &t, &rc, e);
    step(purge(conn, purge_alert_attempts, alerts, &rep->alert_attempts, &t), &t, &rc, e);
    step(purge(conn, purge_alert_batches, 0, &rep->alert_state, &t), &t, &rc, e);
    step(purge(conn, purge_alert_minute, 0, &rep->alert_state, &t), &t, &rc, e);
    return rc;
}

void retention_report_fini(struct retention_report *rep)
{
    strbuf_fini(&rep->dropped);
    memset(rep, 0, sizeof *rep);
}
