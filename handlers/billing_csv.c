/* billing_csv: see billing_csv.h.  The rows come from tg_billing_csv_rows
 * (sql/021_billing_events.sql), the records of the JSON form reduced to
 * their figures, through a cursor: memory stays bounded by one fetch and
 * one part of the answer whatever the number of records. */
#include <stdio.h>
#include <string.h>

#include "billing_csv.h"
#include "common.h"
#include "csv.h"
#include "dispatch.h"
#include "log.h"

/* Rows fetched per round trip, and the answer sent in parts of about this. */
#define CSV_FETCH "500"
#define CSV_PART (64 * 1024)

/* The columns, in the order of the header and of the query. */
#define CSV_COLUMNS                                                                             \
    "period,owner_id,currency,amount_minor,minor_exponent,amount_micros,requests,"             \
    "overage_units,base_micros,overage_micros,lines,status,idempotency_key"

static const char DECLARE[] =
    "DECLARE tg_csv NO SCROLL CURSOR FOR SELECT period, owner_id, currency, amount_minor,"
    " minor_exponent, amount_micros, requests, overage_units, base_micros, overage_micros,"
    " lines, status, idempotency_key FROM tg_billing_csv_rows($1, $2)";

/* Which columns are text (the others are integers). */
static const bool TEXT_COL[] = {true,  true,  true,  false, false, false, false,
                                false, false, false, false, true,  true};

static void put_rows(struct strbuf *o, const struct pg_res *res)
{
    for (int i = 0; i < pg_nrows(res); i++) {
        for (int col = 0; col < (int)TG_ARRAY_LEN(TEXT_COL); col++) {
            if (TEXT_COL[col]) {
                const char *v = pg_val(res, i, col);
                csv_text(o, v, strlen(v), col == 0);
            } else {
                csv_int(o, pg_int(res, i, col), col == 0);
            }
        }
        csv_end_row(o);
    }
}

static struct pg_res *fetch(struct pg_conn *c, struct api_error *e)
{
    return pg_query(c, "FETCH " CSV_FETCH " FROM tg_csv", 0, NULL, e);
}

/* Streams the rows after the first page (res, taken).  Returns 0, -1 on a
 * database error (e filled), -2 when the web server went away. */
static int stream_rest(struct http_req *r, struct pg_conn *c, struct pg_res *res,
                       struct api_error *e)
{
    for (;;) {
        int n = pg_nrows(res);
        put_rows(r->out, res);
        pg_res_free(res);
        if (r->out->len >= CSV_PART && dispatch_flush(r) != 0)
            return -2;
        if (n == 0)
            return 0;
        if (!(res = fetch(c, e)))
            return -1;
    }
}

void billing_csv_export(struct http_req *r, const char *owner, const char *period)
{
    struct api_error e;
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    const char *p[] = {owner, period};
    struct pg_res *res = NULL;
    /* One snapshot for every page: the export is consistent. */
    if (!(res = pg_query(c, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL, &e)))
        goto fail;
    pg_res_free(res);
    if (!(res = pg_query(c, DECLARE, 2, p, &e)))
        goto fail;
    pg_res_free(res);
    /* The first page before the status: most failures still get JSON. */
    if (!(res = fetch(c, &e)))
        goto fail;
    char disposition[96];
    snprintf(disposition, sizeof disposition,
             "Content-Disposition: attachment; filename=\"tollgate-billing-%s.csv\"\r\n",
             period ? period : "all");
    http_stream_head_type(r, 200, "text/csv; charset=utf-8", disposition);
    strbuf_put(r->out, CSV_COLUMNS "\r\n", strlen(CSV_COLUMNS "\r\n"));
    int rc = stream_rest(r, c, res, &e);
    pg_rollback(c);
    db_release(r, c);
    if (rc != 0) {
        /* The status is sent: the client learns of the failure from a body
         * cut short (docs/billing.md). */
        strbuf_reset(r->out);
        if (rc == -1)
            log_error("CSV export of billing records failed: %s", e.message);
    }
    return;
fail:
    pg_rollback(c);
    db_release(r, c);
    http_reply_error(r, &e);
}
