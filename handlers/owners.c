/* Owners (GDPR, docs/privacy.md): the export of everything stored about an
 * owner, streamed from server-side cursors so that memory stays bounded
 * whatever the owner's history, and the erasure of the owner. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "common.h"
#include "dispatch.h"
#include "handlers.h"
#include "keys.h"
#include "keystore.h"
#include "log.h"
#include "privacy.h"

/* Rows fetched per round trip, and the answer sent in parts of about this. */
#define EXPORT_FETCH "500"
#define EXPORT_PART (64 * 1024)

/* 400 unless the owner id is one the API could have stored. */
static int owner_id_check(const char *id, struct api_error *e)
{
    size_t len = strlen(id);
    if (!utf8_valid(id, len) || utf8_len(id, len) > 128 || has_control_chars(id, len)) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "owner_id",
                      "owner_id must be 1 to 128 characters without control characters.");
        return -1;
    }
    return 0;
}

/* The owner's keys (revoked ones too) and alert rules, for the sections. */
#define OWNER_KEYS "(SELECT id FROM keys WHERE owner_id = $1)"
#define OWNER_RULES \
    "(SELECT id FROM alert_rules WHERE owner_id = $1 OR key_id IN " OWNER_KEYS ")"
#define USAGE_ROW(table)                                                                       \
    "SELECT jsonb_build_object('key_id', key_id, 'ts', tg_ts(ts), 'endpoint', endpoint,"      \
    " 'allowed', allowed, 'allowed_cost', allowed_cost, 'rate_limited', rate_limited,"        \
    " 'quota_exceeded', quota_exceeded, 'denied_other', denied_other, 'reported', reported,"  \
    " 'errors', errors, 'rt_sum_us', rt_sum_us, 'rt_max_us', rt_max_us,"                      \
    " 'rt_hist', to_jsonb(rt_hist))::text FROM " table " WHERE key_id IN " OWNER_KEYS          \
    " ORDER BY key_id, ts, endpoint"

/* The sections of an export, in order: each a query of one JSON text
 * column whose only parameter is the owner id.  Never a secret, a sealed
 * secret or a hash: keys as tg_key_json, rules as tg_alert_json. */
static const struct {
    const char *name;
    const char *sql;
} SECTIONS[] = {
    {"keys", "SELECT tg_key_json(k)::text FROM keys k WHERE owner_id = $1"
             " ORDER BY created_at, id"},
    {"usage_minutes", USAGE_ROW("usage_minute")},
    {"usage_hours", USAGE_ROW("usage_hour")},
    {"billing_records", "SELECT item::text FROM tg_billing_records($1, NULL, NULL, NULL, NULL,"
                        " NULL)"},
    {"alert_rules", "SELECT (tg_alert_json(a) || jsonb_build_object('deleted_at',"
                    " tg_ts(a.deleted_at)))::text FROM alert_rules a WHERE a.id IN " OWNER_RULES
                    " ORDER BY a.created_at, a.id"},
    {"alert_deliveries",
     "SELECT jsonb_build_object('event_id', e.id, 'alert_id', e.rule_id, 'key_id', e.key_id,"
     " 'state', e.state, 'created_at', tg_ts(e.created_at), 'done_at', tg_ts(e.done_at),"
     " 'body', e.body::jsonb, 'attempts', (SELECT coalesce(jsonb_agg(jsonb_build_object("
     "  'at', tg_ts(t.at), 'status', t.status, 'latency_ms', t.latency_ms, 'error', t.error)"
     "  ORDER BY t.id), '[]') FROM alert_attempts t WHERE t.event_id = e.id))::text"
     " FROM alert_events e WHERE e.rule_id IN " OWNER_RULES " ORDER BY e.created_at, e.id"},
    /* Entries about the owner (their personal fields name it), about their
     * keys or rules, and those written before personal fields were kept
     * apart that name it in changes. */
    {"audit", "SELECT tg_audit_json(a)::text FROM audit_log a"
              " WHERE a.seq IN (SELECT seq FROM audit_personal WHERE owner_id = $1)"
              "  OR a.resource_id IN " OWNER_KEYS " OR a.resource_id IN " OWNER_RULES
              "  OR a.changes -> 'owner_id' ->> 'to' = $1"
              "  OR a.changes -> 'owner_id' ->> 'from' = $1"
              " ORDER BY a.seq"},
};

/* Streams one section as `"name":[rows]` through a cursor.  Returns 0, -1
 * on a database error (e filled), -2 when the web server went away. */
static int export_section(struct http_req *r, struct pg_conn *c, const char *name,
                          const char *sql, struct api_error *e)
{
    struct strbuf *o = r->out;
    strbuf_printf(o, ",\"%s\":[", name);
    struct strbuf declare = {0};
    strbuf_printf(&declare, "DECLARE tg_export NO SCROLL CURSOR FOR %s", sql);
    const char *p[] = {r->params[0]};
    struct pg_res *res = pg_query(c, declare.p, 1, p, e);
    strbuf_fini(&declare);
    if (!res)
        return -1;
    pg_res_free(res);
    bool first = true;
    int rc = 0;
    for (;;) {
        if (!(res = pg_query(c, "FETCH " EXPORT_FETCH " FROM tg_export", 0, NULL, e))) {
            rc = -1;
            break;
        }
        int n = pg_nrows(res);
        for (int i = 0; i < n; i++) {
            if (!first)
                strbuf_putc(o, ',');
            first = false;
            const char *row = pg_val(res, i, 0);
            strbuf_put(o, row, strlen(row));
        }
        pg_res_free(res);
        if (o->len >= EXPORT_PART && dispatch_flush(r) != 0) {
            rc = -2;
            break;
        }
        if (n == 0)
            break;
    }
    if (rc == 0 && !(res = pg_query(c, "CLOSE tg_export", 0, NULL, e)))
        rc = -1;
    pg_res_free(res);
    strbuf_putc(o, ']');
    return rc;
}

/* 404 unless something is stored about the owner; 0 when there is. */
static int owner_known(struct pg_conn *c, const char *owner, struct api_error *e)
{
    const char *p[] = {owner};
    struct pg_res *res = pg_query(c, "SELECT tg_owner_known($1)", 1, p, e);
    if (!res)
        return -1;
    bool known = strcmp(pg_val(res, 0, 0), "t") == 0;
    pg_res_free(res);
    if (!known) {
        api_error_set(e, ERR_NOT_FOUND, NULL, "Nothing is stored about this owner.");
        return -1;
    }
    return 0;
}

/* The owner.export entry: the pseudonym, never the owner id. */
static int audit_export(struct http_req *r, struct pg_conn *c, const char *pseudonym,
                        struct api_error *e)
{
    if (pg_begin(c, e) != 0 || audit_or_fail(r, c, "owner.export", "owner", pseudonym, NULL, e) != 0 ||
        pg_commit(c, e) != 0) {
        pg_rollback(c);
        return -1;
    }
    return 0;
}

static void owner_export(struct http_req *r)
{
    struct api_error e;
    const char *owner = r->params[0];
    char pseudonym[PRIVACY_PSEUDONYM_MAX];
    if (owner_id_check(owner, &e) != 0) {
        http_reply_error(r, &e);
        return;
    }
    privacy_pseudonym(r->app->cfg.hmac_secret, owner, pseudonym);
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    struct pg_res *res = NULL;
    /* One snapshot for every section: the document is consistent. */
    if (owner_known(c, owner, &e) != 0 || audit_export(r, c, pseudonym, &e) != 0 ||
        !(res = pg_query(c, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL, &e))) {
        db_release(r, c);
        http_reply_error(r, &e);
        return;
    }
    pg_res_free(res);
    http_stream_head(r, 200);
    strbuf_put(r->out, "{\"owner_id\":", 12);
    strbuf_json_str(r->out, owner);
    strbuf_put(r->out, ",\"exported_at\":", 15);
    char ts[TG_TIME_LEN];
    format_time_ms(now_ms(), ts);
    strbuf_json_str(r->out, ts);
    int rc = 0;
    for (size_t i = 0; i < TG_ARRAY_LEN(SECTIONS) && rc == 0; i++)
        rc = export_section(r, c, SECTIONS[i].name, SECTIONS[i].sql, &e);
    pg_rollback(c);
    db_release(r, c);
    if (rc == 0) {
        strbuf_put(r->out, "}\n", 2);
    } else {
        /* The status is sent: a body that is not a whole JSON document is
         * how the client learns that the export failed. */
        strbuf_reset(r->out);
        if (rc == -1)
            log_error("export of an owner failed: %s", e.message);
    }
}

/* Forgets the erased keys ([[id, version, [hashes]], ...]) of owner in
 * Redis (at the owner's place as well: per-owner limits) and in this
 * process; the change feed of every process does it too. */
static void forget_keys(struct http_req *r, const char *owner, const char *erased)
{
    char tag[KEYS_OWNER_TAG_LEN];
    keys_owner_tag(owner, tag);
    json_object *arr = json_from_db(erased);
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *k = json_object_array_get_idx(arr, i);
        json_object *hl = json_object_array_get_idx(k, 2);
        size_t n = json_object_array_length(hl);
        const char **hashes = xcalloc(n ? n : 1, sizeof *hashes);
        for (size_t h = 0; h < n; h++)
            hashes[h] = json_object_get_string(json_object_array_get_idx(hl, h));
        const char *id = json_object_get_string(json_object_array_get_idx(k, 0));
        struct api_error e;
        if (privacy_forget_key(r->app->keys, r->worker->redis, id, tag,
                               json_object_get_int64(json_object_array_get_idx(k, 1)), hashes, n,
                               &e) != 0)
            log_warn("erased key %s: caches not yet cleared (the change feed retries): %s", id,
                     e.message);
        free(hashes);
    }
    json_object_put(arr);
}

static void owner_erase(struct http_req *r)
{
    struct api_error e;
    const char *owner = r->params[0];
    char pseudonym[PRIVACY_PSEUDONYM_MAX];
    if (owner_id_check(owner, &e) != 0) {
        http_reply_error(r, &e);
        return;
    }
    privacy_pseudonym(r->app->cfg.hmac_secret, owner, pseudonym);
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    const char *p[] = {owner, pseudonym};
    struct pg_res *res = NULL, *au = NULL;
    json_object *counts = NULL;
    if (pg_begin(c, &e) != 0 ||
        !(res = pg_query(c, "SELECT counts::text, erased::text FROM tg_owner_erase($1, $2)", 2, p,
                         &e)))
        goto fail;
    counts = json_from_db(pg_val(res, 0, 0));
    if (!json_object_get_boolean(jsonx_get(counts, "found"))) {
        api_error_set(&e, ERR_NOT_FOUND, NULL, "Nothing is stored about this owner.");
        goto fail;
    }
    if (!(au = pg_query(c, "SELECT tg_audit_erase($1)", 1, p, &e)))
        goto fail;
    json_object_object_del(counts, "found");
    json_object_object_add(counts, "audit_entries", json_object_new_int64(pg_int(au, 0, 0)));
    /* The entry records the erasure by its pseudonym and counts alone. */
    json_object *changes = json_object_new_object();
    json_object_object_foreach(counts, field, v)
    {
        json_object *ch = json_object_new_object();
        json_object_object_add(ch, "from", json_object_get(v));
        json_object_object_add(ch, "to", json_object_new_int(0));
        json_object_object_add(changes, field, ch);
    }
    int arc = audit_or_fail(r, c, "owner.erase", "owner", pseudonym,
                            json_object_to_json_string_ext(changes, JSON_C_TO_STRING_PLAIN), &e);
    json_object_put(changes);
    if (arc != 0 || pg_commit(c, &e) != 0)
        goto fail;
    db_release(r, c);
    forget_keys(r, owner, pg_val(res, 0, 1));
    json_object *body = json_object_new_object();
    json_object_object_add(body, "status", json_object_new_string("erased"));
    json_object_object_add(body, "pseudonym", json_object_new_string(pseudonym));
    json_object_object_add(body, "erased", counts);
    http_reply(r, 202, body, NULL);
    pg_res_free(au);
    pg_res_free(res);
    return;
fail:
    pg_rollback(c);
    db_release(r, c);
    http_reply_error(r, &e);
    json_object_put(counts);
    pg_res_free(au);
    pg_res_free(res);
}

const struct route owners_routes[] = {
    {"GET", "/v1/owners/{owner_id}/export", ROLE_ADMIN, owner_export, 0, NULL},
    {"DELETE", "/v1/owners/{owner_id}", ROLE_ADMIN, owner_erase, 0, NULL},
};
const size_t owners_routes_len = TG_ARRAY_LEN(owners_routes);
