/* Audit: reading and verifying the append-only, hash-chained log. */
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "common.h"
#include "handlers.h"

/* Cursors of the audit list are sequence numbers. */
static int seq_cursor(struct http_req *r, char out[24], struct api_error *e)
{
    const char *c = http_query(r, "cursor");
    int64_t seq;
    out[0] = '\0';
    if (!c)
        return 0;
    if (parse_int64(c, 0, INT64_MAX, &seq) != 0) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "cursor", "cursor is not one this API issued.");
        return -1;
    }
    snprintf(out, 24, "%lld", (long long)seq);
    return 0;
}

static int time_param(struct http_req *r, const char *name, char out[24], struct api_error *e)
{
    const char *v = http_query(r, name);
    int64_t ms;
    out[0] = '\0';
    if (!v)
        return 0;
    if (parse_time_ms(v, &ms) != 0) {
        api_error_set(e, ERR_INVALID_ARGUMENT, name, "%s must be an RFC 3339 time.", name);
        return -1;
    }
    snprintf(out, 24, "%lld", (long long)ms);
    return 0;
}

static void audit_list(struct http_req *r)
{
    static const char *const allowed[] = {"limit", "cursor", "resource_id", "actor", "action",
                                          "from", "to", NULL};
    struct api_error e;
    int64_t limit = 100;
    char cursor[24], from[24], to[24], lim[24];
    const char *l = http_query(r, "limit");
    if (http_query_allow(r, allowed, &e) != 0 || seq_cursor(r, cursor, &e) != 0 ||
        time_param(r, "from", from, &e) != 0 || time_param(r, "to", to, &e) != 0) {
        http_reply_error(r, &e);
        return;
    }
    if (l && parse_int64(l, 1, 1000, &limit) != 0) {
        api_error_set(&e, ERR_INVALID_ARGUMENT, "limit", "limit must be an integer from 1 to 1000.");
        http_reply_error(r, &e);
        return;
    }
    snprintf(lim, sizeof lim, "%lld", (long long)limit + 1);
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    const char *p[] = {http_query(r, "resource_id"), http_query(r, "actor"),
                       http_query(r, "action"), from[0] ? from : NULL, to[0] ? to : NULL,
                       cursor[0] ? cursor : NULL, lim};
    struct pg_res *res = pg_query(c,
                                  "SELECT tg_audit_json(a)::text, seq::text FROM audit_log a"
                                  " WHERE ($1::text IS NULL OR resource_id = $1)"
                                  "  AND ($2::text IS NULL OR actor = $2)"
                                  "  AND ($3::text IS NULL OR action = $3)"
                                  "  AND ($4::bigint IS NULL OR ts >= 'epoch'::timestamptz"
                                  "       + $4::bigint * interval '1 millisecond')"
                                  "  AND ($5::bigint IS NULL OR ts < 'epoch'::timestamptz"
                                  "       + $5::bigint * interval '1 millisecond')"
                                  "  AND ($6::bigint IS NULL OR seq > $6::bigint)"
                                  " ORDER BY seq LIMIT $7::bigint",
                                  7, p, &e);
    db_release(r, c);
    if (!res) {
        http_reply_error(r, &e);
        return;
    }
    struct page pg = {.limit = limit};
    reply_list(r, res, &pg, NULL, NULL);
    pg_res_free(res);
}

static void audit_verify_route(struct http_req *r)
{
    struct api_error e;
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    bool ok;
    int64_t entries, bad;
    int rc = audit_verify(c, &r->app->cfg, &ok, &entries, &bad, &e);
    db_release(r, c);
    if (rc != 0) {
        http_reply_error(r, &e);
        return;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(ok));
    json_object_object_add(o, "entries", json_object_new_int64(entries));
    if (!ok)
        json_object_object_add(o, "first_bad_seq", json_object_new_int64(bad));
    http_reply(r, 200, o, NULL);
}

const struct route audit_routes[] = {
    {"GET", "/v1/audit", ROLE_ADMIN | ROLE_OPERATOR, audit_list, 0, NULL},
    {"GET", "/v1/audit/verify", ROLE_ADMIN, audit_verify_route, 0, NULL},
};
const size_t audit_routes_len = TG_ARRAY_LEN(audit_routes);
