/* Billing: records per owner, currency and month, and closing a month.
 * The figures come from SQL (sql/003_billing.sql): open months are computed
 * on read from keys, tiers and usage; tg_billing_close freezes a month once,
 * and this handler adds the audit entry in the same transaction. */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "billing_csv.h"
#include "common.h"
#include "handlers.h"

#define PERIOD_LEN 7    /* "YYYY-MM" */
#define OWNER_MAX 128   /* characters */

/* True for a period "YYYY-MM" from 1970-01 to 9999-12 (what SQL accepts). */
static bool period_ok(const char *s)
{
    if (strlen(s) != PERIOD_LEN || s[4] != '-')
        return false;
    for (int i = 0; i < PERIOD_LEN; i++)
        if (i != 4 && (s[i] < '0' || s[i] > '9'))
            return false;
    int year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int month = (s[5] - '0') * 10 + (s[6] - '0');
    return year >= 1970 && month >= 1 && month <= 12;
}

static void period_error(struct api_error *e)
{
    api_error_set(e, ERR_INVALID_ARGUMENT, "period",
                  "period must be a month \"YYYY-MM\" from 1970-01 to 9999-12.");
}

static int period_or_fail(const char *s, struct api_error *e)
{
    if (period_ok(s))
        return 0;
    period_error(e);
    return -1;
}

/* The keyset position of a records page: "<period>.<currency>.<owner_id>",
 * as tg_billing_records issues it.  s is borrowed; the parts point into buf. */
struct records_cursor {
    char buf[HTTP_PARAM_MAX * 2];
    const char *period, *currency, *owner;
};

static int cursor_parse(const char *s, struct records_cursor *c, struct api_error *e)
{
    size_t n = strlen(s);
    if (n >= sizeof c->buf || n < PERIOD_LEN + 6 || s[PERIOD_LEN] != '.' ||
        s[PERIOD_LEN + 4] != '.')
        goto bad;
    memcpy(c->buf, s, n + 1);
    c->buf[PERIOD_LEN] = c->buf[PERIOD_LEN + 4] = '\0';
    c->period = c->buf;
    c->currency = c->buf + PERIOD_LEN + 1;
    c->owner = c->buf + PERIOD_LEN + 5;
    for (int i = 0; i < 3; i++)
        if (c->currency[i] < 'A' || c->currency[i] > 'Z')
            goto bad;
    if (period_ok(c->period))
        return 0;
bad:
    api_error_set(e, ERR_INVALID_ARGUMENT, "cursor", "cursor is not one this API issued.");
    return -1;
}

/* Validates the query of GET /v1/billing/records into p and c. */
static int records_query(struct http_req *r, struct page *p, struct records_cursor *c,
                         bool *csv, struct api_error *e)
{
    static const char *const allowed[] = {"owner_id", "period", "limit", "cursor", "format",
                                          NULL};
    const char *owner = http_query(r, "owner_id"), *period = http_query(r, "period");
    const char *limit = http_query(r, "limit"), *cursor = http_query(r, "cursor");
    const char *format = http_query(r, "format");
    memset(p, 0, sizeof *p);
    memset(c, 0, sizeof *c);
    p->limit = 100;
    if (http_query_allow(r, allowed, e) != 0)
        return -1;
    if (format && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "format", "format must be \"json\" or \"csv\".");
        return -1;
    }
    *csv = format && strcmp(format, "csv") == 0;
    /* The CSV form is the whole selection, streamed: no page to name. */
    if (*csv && (limit || cursor)) {
        api_error_set(e, ERR_INVALID_ARGUMENT, limit ? "limit" : "cursor",
                      "%s does not apply to format=csv, which exports every matching record.",
                      limit ? "limit" : "cursor");
        return -1;
    }
    if (owner && (!*owner || utf8_len(owner, strlen(owner)) > OWNER_MAX)) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "owner_id",
                      "owner_id must be 1 to %d characters.", OWNER_MAX);
        return -1;
    }
    if (owner_named_or_fail(r, owner, e) != 0)
        return -1;
    if (period && period_or_fail(period, e) != 0)
        return -1;
    if (limit && parse_int64(limit, 1, 1000, &p->limit) != 0) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "limit",
                      "limit must be an integer from 1 to 1000.");
        return -1;
    }
    if (cursor && cursor_parse(cursor, c, e) != 0)
        return -1;
    snprintf(p->limit_plus_one, sizeof p->limit_plus_one, "%lld", (long long)p->limit + 1);
    return 0;
}

static void records_list(struct http_req *r)
{
    struct api_error e;
    struct page pg;
    struct records_cursor cur;
    bool csv = false;
    if (records_query(r, &pg, &cur, &csv, &e) != 0) {
        http_reply_error(r, &e);
        return;
    }
    /* An owner token's records are its owner's: the filter is in the SQL. */
    const char *owner = auth_owner_scope(&r->who) ? auth_owner_scope(&r->who)
                                                  : http_query(r, "owner_id");
    if (csv) {
        billing_csv_export(r, owner, http_query(r, "period"));
        return;
    }
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    const char *p[] = {owner, http_query(r, "period"), cur.period, cur.owner, cur.currency,
                       pg.limit_plus_one};
    struct pg_res *res = pg_query(c,
                                  "SELECT item::text, item_cursor"
                                  " FROM tg_billing_records($1, $2, $3, $4, $5, $6::bigint)",
                                  6, p, &e);
    db_release(r, c);
    if (!res) {
        http_reply_error(r, &e);
        return;
    }
    reply_list(r, res, &pg, NULL, NULL);
    pg_res_free(res);
}

static void period_close(struct http_req *r)
{
    struct api_error e;
    const char *period = r->params[0];
    if (period_or_fail(period, &e) != 0) {
        http_reply_error(r, &e);
        return;
    }
    /* No body, or an empty object: the route takes no arguments. */
    if (r->body_len > 0) {
        json_object *body = body_or_reply(r, NULL, 0);
        if (!body)
            return;
        json_object_put(body);
    }
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    const char *p[] = {period};
    struct pg_res *res = NULL;
    if (pg_begin(c, &e) != 0 ||
        !(res = pg_query(c, "SELECT outcome, records::text FROM tg_billing_close($1)", 1, p, &e)))
        goto fail;
    const char *outcome = pg_val(res, 0, 0);
    if (strcmp(outcome, "not_ended") == 0) {
        api_error_set(&e, ERR_CONFLICT, "period",
                      "Period %s has not ended yet; only an ended period can be closed.", period);
        goto fail;
    }
    if (strcmp(outcome, "invalid") == 0) {
        period_error(&e);
        goto fail;
    }
    if (strcmp(outcome, "closed") == 0 &&
        audit_or_fail(r, c, "billing.close", "billing_period", period,
                      "{\"status\":{\"from\":\"open\",\"to\":\"closed\"}}", &e) != 0)
        goto fail;
    if (pg_commit(c, &e) != 0)
        goto fail;
    db_release(r, c);
    json_object *body = json_object_new_object();
    json_object_object_add(body, "data", json_from_db(pg_val(res, 0, 1)));
    pg_res_free(res);
    http_reply(r, 200, body, NULL);
    return;
fail:
    pg_res_free(res);
    pg_rollback(c);
    db_release(r, c);
    http_reply_error(r, &e);
}

const struct route billing_routes[] = {
    {"GET", "/v1/billing/records", ROLE_ADMIN | ROLE_OPERATOR | ROLE_BILLING | ROLE_OWNER,
     records_list, 0, NULL},
    {"POST", "/v1/billing/periods/{period}/close", ROLE_BILLING | ROLE_ADMIN, period_close, 0, NULL},
};
const size_t billing_routes_len = TG_ARRAY_LEN(billing_routes);
