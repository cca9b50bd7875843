/* Alerts: rules (create, read, list, delete) and their delivery attempts.
 * The rules are evaluated by billingd (alerteval.h) and delivered by its
 * deliverer (alertsend.h); see docs/alerts.md.  The secret is write-only:
 * it is sealed before it reaches the database (sealbox.h) and appears in
 * no answer, audit entry or log line.  An owner token sees the rules of
 * its owner and of its owner's keys only (ALERT_OWNED). */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "common.h"
#include "handlers.h"
#include "keys.h"
#include "netguard.h"
#include "sealbox.h"
#include "strbuf.h"

#define COOLDOWN_DEFAULT 900
#define COOLDOWN_MIN 60
#define COOLDOWN_MAX (30 * 86400)
#define SECRET_MIN 16
#define SECRET_MAX 256

/* True for rule a when $n is NULL (a role not scoped to an owner) or when
 * the rule watches owner $n or one of its keys. */
#define ALERT_OWNED(n)                                                                \
    "(" n "::text IS NULL OR a.owner_id = " n " OR EXISTS (SELECT 1 FROM keys k"      \
    " WHERE k.id = a.key_id AND k.owner_id = " n "))"

/* The metrics and the thresholds each accepts. */
static const struct {
    const char *name;
    int64_t min, max;
    const char *unit;
} metrics[] = {
    {"quota_used_pct", 1, 1000, "a percentage of the quota from 1 to 1000"},
    {"rate_limited", 1, 1000000, "a number of denials per minute from 1 to 1000000"},
    {"limit_near", 1, 100, "a percentage of a window's limit from 1 to 100"},
};

static int validate_metric(json_object *body, struct api_error *e)
{
    const char *m = json_object_get_string(jsonx_get(body, "metric"));
    for (size_t i = 0; i < TG_ARRAY_LEN(metrics); i++) {
        if (strcmp(m, metrics[i].name) != 0)
            continue;
        json_object *t = jsonx_get(body, "threshold");
        if (jsonx_int_range(t, "threshold", metrics[i].min, metrics[i].max, e) != 0) {
            api_error_set(e, ERR_INVALID_ARGUMENT, "threshold", "threshold for %s must be %s.",
                          metrics[i].name, metrics[i].unit);
            return -1;
        }
        return 0;
    }
    api_error_set(e, ERR_INVALID_ARGUMENT, "metric",
                  "metric must be \"quota_used_pct\", \"rate_limited\" or \"limit_near\".");
    return -1;
}

static int validate_rule(struct http_req *r, json_object *body, struct api_error *e)
{
    json_object *key = jsonx_get(body, "key_id"), *owner = jsonx_get(body, "owner_id"), *v;
    if ((key != NULL) == (owner != NULL)) {
        api_error_set(e, ERR_INVALID_ARGUMENT, key ? "owner_id" : "key_id",
                      "Give exactly one of key_id and owner_id.");
        return -1;
    }
    if ((key && jsonx_string_len(key, "key_id", 1, KEYS_ID_MAX - 1, true, e) != 0) ||
        (owner && jsonx_string_len(owner, "owner_id", 1, 128, true, e) != 0) ||
        validate_metric(body, e) != 0 ||
        jsonx_string_len(jsonx_get(body, "secret"), "secret", SECRET_MIN, SECRET_MAX, true, e) != 0)
        return -1;
    if ((v = jsonx_get(body, "cooldown_s")) &&
        jsonx_int_range(v, "cooldown_s", COOLDOWN_MIN, COOLDOWN_MAX, e) != 0)
        return -1;
    struct netguard g;
    if (netguard_parse(&g, r->app->cfg.alerts_allow_private, e) != 0) {
        api_error_set(e, ERR_INTERNAL, NULL, "The alert configuration is not usable.");
        return -1;
    }
    return netguard_check_url(&g, json_object_get_string(jsonx_get(body, "webhook_url")), e);
}

static const char *str_or_null(json_object *body, const char *name)
{
    json_object *v = jsonx_get(body, name);
    return v ? json_object_get_string(v) : NULL;
}

static void alert_create(struct http_req *r)
{
    static const struct jx_field fields[] = {
        {"key_id", JX_STRING, false, false},     {"owner_id", JX_STRING, false, false},
        {"metric", JX_STRING, true, false},      {"threshold", JX_INT, true, false},
        {"webhook_url", JX_STRING, true, false}, {"secret", JX_STRING, true, false},
        {"cooldown_s", JX_INT, false, false},
    };
    struct api_error e;
    json_object *body = body_or_reply(r, fields, TG_ARRAY_LEN(fields));
    if (!body)
        return;
    if (owner_body_or_fail(r, body, NULL, &e) != 0 || validate_rule(r, body, &e) != 0) {
        http_reply_error(r, &e);
        json_object_put(body);
        return;
    }
    json_object *secret = jsonx_get(body, "secret");
    struct strbuf sealed = {0};
    sealbox_seal(&r->app->cfg.secrets, json_object_get_string(secret),
                 (size_t)json_object_get_string_len(secret), &sealed);
    char id[KEYS_ID_MAX], threshold[24], cooldown[24];
    keys_new_id("alr", id);
    json_object *cd = jsonx_get(body, "cooldown_s");
    snprintf(threshold, sizeof threshold, "%lld",
             (long long)json_object_get_int64(jsonx_get(body, "threshold")));
    snprintf(cooldown, sizeof cooldown, "%lld",
             cd ? (long long)json_object_get_int64(cd) : (long long)COOLDOWN_DEFAULT);
    const char *key_id = str_or_null(body, "key_id");
    const char *p[] = {id,        key_id,   str_or_null(body, "owner_id"),
                       str_or_null(body, "metric"), threshold, str_or_null(body, "webhook_url"),
                       sealed.p,  cooldown};
    struct pg_res *res = NULL, *k = NULL;
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        goto out;
    /* Another owner's key is answered as an unknown one. */
    const char *kp[] = {key_id, auth_owner_scope(&r->who)};
    if (pg_begin(c, &e) != 0 ||
        (key_id && !(k = pg_query(c,
                                  "SELECT 1 FROM keys WHERE id = $1"
                                  " AND ($2::text IS NULL OR owner_id = $2)",
                                  2, kp, &e))))
        goto fail;
    if (k && pg_nrows(k) == 0) {
        api_error_set(&e, ERR_INVALID_ARGUMENT, "key_id", "key_id names no key.");
        goto fail;
    }
    if (!(res = pg_query(c,
                         "INSERT INTO alert_rules (id, key_id, owner_id, metric, threshold,"
                         "  webhook_url, secret_enc, cooldown_s)"
                         " VALUES ($1, $2, $3, $4, $5::bigint, $6, $7, $8::integer)"
                         " RETURNING tg_alert_json(alert_rules)::text,"
                         "  tg_changes(NULL, tg_alert_json(alert_rules))::text",
                         8, p, &e)) ||
        audit_or_fail(r, c, "alert.create", "alert", id, pg_val(res, 0, 1), &e) != 0 ||
        pg_commit(c, &e) != 0)
        goto fail;
    db_release(r, c);
    http_reply(r, 201, json_from_db(pg_val(res, 0, 0)), NULL);
    goto out;
fail:
    pg_rollback(c);
    db_release(r, c);
    http_reply_error(r, &e);
out:
    pg_res_free(k);
    pg_res_free(res);
    strbuf_fini(&sealed);
    json_object_put(body);
}

static void alert_get(struct http_req *r)
{
    struct api_error e;
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    const char *p[] = {r->params[0], auth_owner_scope(&r->who)};
    json_object *a = pg_query_json(c,
                                   "SELECT tg_alert_json(a)::text FROM alert_rules a"
                                   " WHERE id = $1 AND deleted_at IS NULL AND " ALERT_OWNED("$2"),
                                   2, p, "Alert", &e);
    db_release(r, c);
    if (a)
        http_reply(r, 200, a, NULL);
    else
        http_reply_error(r, &e);
}

static void alert_list(struct http_req *r)
{
    static const char *const allowed[] = {"key_id", "owner_id", "metric", NULL};
    /* Not owner_filter_or_reply: the owner's rules include those of its
     * keys, which carry no owner_id. */
    struct api_error e;
    const char *q = http_query(r, "owner_id");
    if (owner_named_or_fail(r, q, &e) != 0) {
        http_reply_error(r, &e);
        return;
    }
    const char *filters[] = {http_query(r, "key_id"), q, http_query(r, "metric"),
                             auth_owner_scope(&r->who)};
    reply_paged(r, allowed,
                "SELECT tg_alert_json(a)::text, tg_cursor(created_at, id) FROM alert_rules a"
                " WHERE deleted_at IS NULL AND ($1::text IS NULL OR key_id = $1)"
                "  AND ($2::text IS NULL OR owner_id = $2) AND ($3::text IS NULL OR metric = $3)"
                "  AND " ALERT_OWNED("$4")
                "  AND ($5::bigint IS NULL OR (created_at, id) > (tg_from_us($5::bigint), $6))"
                " ORDER BY created_at, id LIMIT $7::bigint",
                4, filters, NULL, NULL);
}

/* Deletes the rule (kept, marked deleted, so that its deliveries stay
 * explained) and cancels its events not yet delivered. */
static void alert_delete(struct http_req *r)
{
    const char *p[] = {r->params[0], auth_owner_scope(&r->who)};
    reply_deleted(r,
                  "WITH d AS (UPDATE alert_rules a SET deleted_at = clock_timestamp()"
                  "  WHERE id = $1 AND deleted_at IS NULL AND " ALERT_OWNED("$2")
                  "  RETURNING tg_alert_json(a) AS j),"
                  " x AS (UPDATE alert_events SET state = 'cancelled', done_at = clock_timestamp()"
                  "  WHERE rule_id = $1 AND state = 'pending' AND EXISTS (SELECT 1 FROM d))"
                  " SELECT tg_changes(j, '{}'::jsonb)::text FROM d",
                  2, p, "Alert not found.", "alert.delete", "alert");
}

/* Every attempt of the rule's events, oldest first. */
static void alert_deliveries(struct http_req *r)
{
    const char *p[] = {r->params[0], auth_owner_scope(&r->who)};
    reply_deliveries(r,
                     "SELECT 1 FROM alert_rules a WHERE id = $1 AND deleted_at IS NULL"
                     " AND " ALERT_OWNED("$2"),
                     2, p, "Alert not found.", DELIVERIES_SQL(""));
}

/* The contract gives alerts to admin and operator (roles are sets: viewer
 * reads keys, tiers and usage, not alerts, whose webhooks are configuration),
 * and to an owner for its own. */
#define ROLES (ROLE_ADMIN | ROLE_OPERATOR | ROLE_OWNER)

const struct route alerts_routes[] = {
    {"GET", "/v1/alerts", ROLES, alert_list, 0, NULL},
    {"POST", "/v1/alerts", ROLES, alert_create, 0, NULL},
    {"GET", "/v1/alerts/{id}", ROLES, alert_get, 0, NULL},
    {"DELETE", "/v1/alerts/{id}", ROLES, alert_delete, 0, NULL},
    {"GET", "/v1/alerts/{id}/deliveries", ROLES, alert_deliveries, 0, NULL},
};
const size_t alerts_routes_len = TG_ARRAY_LEN(alerts_routes);
