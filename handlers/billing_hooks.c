/* Billing webhooks: subscriptions to the billing events (create, read,
 * list, delete) and their delivery attempts; docs/billing.md, "Billing
 * events".  The event rows are written by the transaction that closes a
 * period (sql/021_billing_events.sql) into the alerts' outbox, and
 * billingd's deliverer (alertsend.h) posts them.  The signing secret is
 * generated here, shown once in the 201 answer, and stored sealed
 * (sealbox.h): no other answer, audit entry or log line holds it. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "common.h"
#include "handlers.h"
#include "keys.h"
#include "netguard.h"
#include "sealbox.h"
#include "strbuf.h"

#define SECRET_PREFIX "whsec_"
#define SECRET_RANDOM 32 /* base62 characters: about 190 bits */

static void hook_create(struct http_req *r)
{
    static const struct jx_field fields[] = {
        {"webhook_url", JX_STRING, true, false},
    };
    struct api_error e;
    json_object *body = body_or_reply(r, fields, TG_ARRAY_LEN(fields));
    if (!body)
        return;
    const char *url = json_object_get_string(jsonx_get(body, "webhook_url"));
    struct netguard g;
    if (netguard_parse(&g, r->app->cfg.alerts_allow_private, &e) != 0) {
        api_error_set(&e, ERR_INTERNAL, NULL, "The webhook configuration is not usable.");
        goto reply_error;
    }
    if (netguard_check_url(&g, url, &e) != 0)
        goto reply_error;
    char secret[sizeof SECRET_PREFIX + SECRET_RANDOM];
    memcpy(secret, SECRET_PREFIX, sizeof SECRET_PREFIX - 1);
    random_base62(secret + sizeof SECRET_PREFIX - 1, SECRET_RANDOM);
    struct strbuf sealed = {0};
    sealbox_seal(&r->app->cfg.secrets, secret, strlen(secret), &sealed);
    char id[KEYS_ID_MAX];
    keys_new_id("bwh", id);
    const char *p[] = {id, url, sealed.p};
    struct pg_res *res = NULL;
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        goto out;
    if (pg_begin(c, &e) != 0 ||
        !(res = pg_query(c,
                         "INSERT INTO billing_webhooks (id, webhook_url, secret_enc)"
                         " VALUES ($1, $2, $3)"
                         " RETURNING tg_billing_webhook_json(billing_webhooks)::text,"
                         "  tg_changes(NULL, tg_billing_webhook_json(billing_webhooks))::text",
                         3, p, &e)) ||
        audit_or_fail(r, c, "billing_webhook.create", "billing_webhook", id, pg_val(res, 0, 1),
                      &e) != 0 ||
        pg_commit(c, &e) != 0) {
        pg_rollback(c);
        db_release(r, c);
        http_reply_error(r, &e);
        goto out;
    }
    db_release(r, c);
    json_object *o = json_from_db(pg_val(res, 0, 0));
    json_object_object_add(o, "secret", json_object_new_string(secret));
    http_reply(r, 201, o, NULL);
out:
    OPENSSL_cleanse(secret, sizeof secret);
    pg_res_free(res);
    strbuf_fini(&sealed);
    json_object_put(body);
    return;
reply_error:
    http_reply_error(r, &e);
    json_object_put(body);
}

static void hook_get(struct http_req *r)
{
    struct api_error e;
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    const char *p[] = {r->params[0]};
    json_object *o = pg_query_json(c,
                                   "SELECT tg_billing_webhook_json(w)::text FROM billing_webhooks w"
                                   " WHERE id = $1 AND deleted_at IS NULL",
                                   1, p, "Billing webhook", &e);
    db_release(r, c);
    if (o)
        http_reply(r, 200, o, NULL);
    else
        http_reply_error(r, &e);
}

static void hook_list(struct http_req *r)
{
    reply_paged(r, NULL,
                "SELECT tg_billing_webhook_json(w)::text, tg_cursor(created_at, id)"
                " FROM billing_webhooks w WHERE deleted_at IS NULL"
                "  AND ($1::bigint IS NULL OR (created_at, id) > (tg_from_us($1::bigint), $2))"
                " ORDER BY created_at, id LIMIT $3::bigint",
                0, NULL, NULL, NULL);
}

/* Deletes the subscription (kept, marked deleted, so that its deliveries
 * stay explained) and cancels its events not yet delivered. */
static void hook_delete(struct http_req *r)
{
    const char *p[] = {r->params[0]};
    reply_deleted(r,
                  "WITH d AS (UPDATE billing_webhooks w SET deleted_at = clock_timestamp()"
                  "  WHERE id = $1 AND deleted_at IS NULL"
                  "  RETURNING tg_billing_webhook_json(w) AS j),"
                  " x AS (UPDATE alert_events SET state = 'cancelled',"
                  "  done_at = clock_timestamp()"
                  "  WHERE rule_id = $1 AND state = 'pending' AND EXISTS (SELECT 1 FROM d))"
                  " SELECT tg_changes(j, '{}'::jsonb)::text FROM d",
                  1, p, "Billing webhook not found.", "billing_webhook.delete", "billing_webhook");
}

/* Every attempt of the subscription's events, oldest first: the shape of
 * GET /v1/alerts/{id}/deliveries, plus the event's period and type. */
static void hook_deliveries(struct http_req *r)
{
    const char *p[] = {r->params[0]};
    reply_deliveries(r, "SELECT 1 FROM billing_webhooks WHERE id = $1 AND deleted_at IS NULL", 1,
                     p, "Billing webhook not found.",
                     DELIVERIES_SQL("'type', 'billing.period_closed', 'period', e.key_id,"));
}

/* Subscriptions are billing configuration: admin and billing manage them;
 * operator, who reads billing, reads them too.  Owner tokens never see
 * them (the events are about every owner). */
#define READ (ROLE_ADMIN | ROLE_BILLING | ROLE_OPERATOR)
#define WRITE (ROLE_ADMIN | ROLE_BILLING)

const struct route billing_hooks_routes[] = {
    {"GET", "/v1/billing/webhooks", READ, hook_list, 0, NULL},
    {"POST", "/v1/billing/webhooks", WRITE, hook_create, 0, NULL},
    {"GET", "/v1/billing/webhooks/{id}", READ, hook_get, 0, NULL},
    {"DELETE", "/v1/billing/webhooks/{id}", WRITE, hook_delete, 0, NULL},
    {"GET", "/v1/billing/webhooks/{id}/deliveries", READ, hook_deliveries, 0, NULL},
};
const size_t billing_hooks_routes_len = TG_ARRAY_LEN(billing_hooks_routes);
