/* common: what every management handler does the same way — borrow a
 * database connection, read a strictly checked JSON body, page a list,
 * write an audit entry.  Helpers named *_or_reply answer the error
 * themselves, so the handler just returns. */
#ifndef TOLLGATE_HANDLERS_COMMON_H
#define TOLLGATE_HANDLERS_COMMON_H

#include <json-c/json.h>
#include <stdint.h>

#include "app.h"
#include "http.h"
#include "jsonx.h"
#include "pg.h"
#include "router.h"

/* A pooled connection, or NULL after replying 503. */
struct pg_conn *db_or_reply(struct http_req *r);
void db_release(struct http_req *r, struct pg_conn *c);

/* The body as an object checked against fields, or NULL after replying. */
json_object *body_or_reply(struct http_req *r, const struct jx_field *fields, size_t n);

/* Keyset pagination of a list: limit (1-1000, default 100) and the cursor
 * "<created_us>.<id>" as two SQL parameters (NULL when absent). */
struct page {
    int64_t limit;
    char limit_plus_one[24];
    char cursor_us[24];
    char cursor_id[HTTP_PARAM_MAX];
    bool has_cursor;
};
/* Returns 0, or -1 after replying 400. */
int page_or_reply(struct http_req *r, struct page *p) TG_WUR;

/* Replies {"data":[...],"next_cursor":...} from rows whose column 0 is an
 * item's JSON and column 1 its cursor; the query asked for limit + 1 rows so
 * that a next page is known to exist.  render (may be NULL) adjusts each
 * item in place, given r and arg. */
void reply_list(struct http_req *r, struct pg_res *res, const struct page *p,
                void (*render)(struct http_req *r, json_object *item, void *arg), void *arg);

/* A whole keyset-paged list: checks the query parameters against allowed
 * (NULL terminated; "limit" and "cursor" are always allowed), runs sql with
 * the nfilters filter parameters followed by the cursor's time (or NULL),
 * the cursor's id and limit + 1, and replies (or replies the error). */
void reply_paged(struct http_req *r, const char *const *allowed, const char *sql, int nfilters,
                 const char *const *filters,
                 void (*render)(struct http_req *r, json_object *item, void *arg), void *arg);

/* The delivery attempts of an outbox subscription (an alert rule or a
 * billing webhook: both deliver through alert_events and alert_attempts),
 * oldest first, as a paged list.  extra: more jsonb_build_object members
 * for each attempt, ending with a comma ("" for none). */
#define DELIVERIES_SQL(extra)                                                               \
    "SELECT jsonb_strip_nulls(jsonb_build_object(" extra "'event_id', t.event_id,"          \
    "   'at', tg_ts(t.at), 'status', t.status, 'latency_ms', t.latency_ms,"                 \
    "   'error', t.error, 'event_state', e.state, 'attempt', (SELECT count(*)"              \
    "    FROM alert_attempts t2 WHERE t2.event_id = t.event_id AND t2.id <= t.id)))::text," \
    "  tg_cursor(t.at, lpad(t.id::text, 20, '0'))"                                          \
    " FROM alert_attempts t JOIN alert_events e ON e.id = t.event_id"                        \
    " WHERE t.rule_id = $1 AND ($2::bigint IS NULL"                                         \
    "  OR (t.at, lpad(t.id::text, 20, '0')) > (tg_from_us($2::bigint), $3))"                \
    " ORDER BY t.at, lpad(t.id::text, 20, '0') LIMIT $4::bigint"

/* Replies the deliveries (list_sql, a DELIVERIES_SQL) of the subscription
 * r->params[0], once exists_sql (n parameters p) finds it; else 404 with
 * the sentence missing. */
void reply_deliveries(struct http_req *r, const char *exists_sql, int n, const char *const *p,
                      const char *missing, const char *list_sql);

/* Deletes r->params[0] in one transaction: sql (n parameters p) returns
 * one row, the audit entry's changes, when it deleted something; then the
 * audit entry (action on type) and 204, or 404 with the sentence missing. */
void reply_deleted(struct http_req *r, const char *sql, int n, const char *const *p,
                   const char *missing, const char *action, const char *type);

/* 0 when the caller may name owner_id in a body or query (NULL: none
 * named), else -1 with 403 forbidden on "owner_id" in e: an owner token
 * names only its own owner. */
int owner_named_or_fail(const struct http_req *r, const char *owner_id,
                        struct api_error *e) TG_WUR;
/* What an owner token may not put in a body: an owner_id other than its
 * own, or any of the members of denied (NULL terminated, may be NULL), even
 * as null.  403 forbidden naming the member; nothing for the roles that
 * are not scoped to an owner.  Returns 0 or -1 with e filled. */
int owner_body_or_fail(const struct http_req *r, json_object *body, const char *const *denied,
                       struct api_error *e) TG_WUR;
/* The owner a list is filtered to, into *owner: an owner token's own (its
 * query may name it, any other is 403 forbidden), else the query's
 * owner_id or NULL.  Returns 0, or -1 after replying. */
int owner_filter_or_reply(struct http_req *r, const char **owner) TG_WUR;

/* 0 when tier names an existing tier, else -1 with 400 invalid_argument
 * naming "tier" (or the database's error) in e. */
int tier_exists(struct pg_conn *c, const char *tier, struct api_error *e) TG_WUR;

/* A member as JSON text, NULL when absent or null (borrowed from body). */
const char *json_member_text(json_object *body, const char *name);

/* Audit entry for the caller of r, in c's transaction. */
int audit_or_fail(struct http_req *r, struct pg_conn *c, const char *action, const char *type,
                  const char *id, const char *changes, struct api_error *e) TG_WUR;

/* Parses JSON text produced by the database (which is always valid). */
json_object *json_from_db(const char *text);

struct check_outcome;
/* Writes the answer of a check outcome to r; t0 is when the check began. */
typedef void (*check_answer_fn)(struct http_req *r, const struct check_outcome *o, int64_t t0);
/* A check from the event loop (check_start) whose outcome answer writes:
 * FAST_ANSWERED, FAST_PENDING (answered or deferred later from the loop), or
 * FAST_DEFER (nothing written: run the route on a worker). */
enum route_fast check_in_loop(struct http_req *r, const char *key, size_t keylen,
                              const char *endpoint, int64_t cost, check_answer_fn answer);

#endif
