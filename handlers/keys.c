/* Keys: create, read, list, patch, rotate, revoke.  Every change bumps the
 * key's version and is published to the record caches after commit.  An
 * owner token sees its owner's keys only: each statement takes its owner
 * as a parameter (NULL for the other roles), so another owner's key is
 * simply not found. */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "common.h"
#include "handlers.h"
#include "keys.h"
#include "keystore.h"
#include "keyuse.h"
#include "limits.h"
#include "refill.h"

#define REMAINING_MAX 1000000000000000LL
#define GRACE_MAX (30 * 86400)

/* What only the operators of the service decide: an owner's token may
 * neither choose its keys' tier nor raise their limits or credits (a
 * refill sets credits too). */
static const char *const owner_denied[] = {"tier", "limits", "remaining", "refill", NULL};

/* Replaces the view's tier_limits and override list by the effective list. */
static void render_key(json_object *k)
{
    json_object *merged = limits_merge(jsonx_get(k, "tier_limits"), jsonx_get(k, "limits"));
    json_object_object_del(k, "tier_limits");
    json_object_object_add(k, "limits", merged);
}

static int check_text(json_object *body, const char *name, size_t min, size_t max,
                      struct api_error *e)
{
    json_object *v = jsonx_get(body, name);
    return v ? jsonx_string_len(v, name, min, max, true, e) : 0;
}

/* Validates the members shared by create and patch; expires_at is rewritten
 * to epoch milliseconds (the form the SQL takes). */
static int validate_common(json_object *body, bool creating, struct api_error *e)
{
    json_object *v;
    if (check_text(body, "owner_id", 1, 128, e) || check_text(body, "name", 0, 200, e))
        return -1;
    if ((v = jsonx_get(body, "tier")) &&
        !name_ok(json_object_get_string(v), (size_t)json_object_get_string_len(v), 32, "_-")) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "tier", "tier names no existing tier.");
        return -1;
    }
    if ((v = jsonx_get(body, "limits")) && limits_validate(v, "limits", e) != 0)
        return -1;
    if ((v = jsonx_get(body, "remaining")) &&
        jsonx_int_range(v, "remaining", 0, REMAINING_MAX, e) != 0)
        return -1;
    if (jsonx_has(body, "refill")) {
        struct key_refill rf;
        if (refill_parse(jsonx_get(body, "refill"), &rf, e) != 0)
            return -1;
        if (rf.on && jsonx_has(body, "remaining") && !jsonx_get(body, "remaining")) {
            api_error_set(e, ERR_INVALID_ARGUMENT, "remaining",
                          "A refill needs a credit balance: give remaining or leave it out.");
            return -1;
        }
        /* Stored and shown in one canonical form (refill.h). */
        json_object_object_add(body, "refill", refill_to_json(&rf));
    }
    if ((v = jsonx_get(body, "expires_at"))) {
        int64_t ms;
        if (parse_time_ms(json_object_get_string(v), &ms) != 0) {
            api_error_set(e, ERR_INVALID_ARGUMENT, "expires_at",
                          "expires_at must be an RFC 3339 time such as 2026-11-22T10:00:00.000Z.");
            return -1;
        }
        if (creating && ms <= now_ms()) {
            api_error_set(e, ERR_INVALID_ARGUMENT, "expires_at", "expires_at is in the past.");
            return -1;
        }
        json_object_object_add(body, "expires_at", json_object_new_int64(ms));
    }
    return 0;
}

/* Ends a key transaction whose last statement returned (view, changes):
 * audit, commit, publish to the caches, reply with the rendered key plus
 * extra members (e.g. the plaintext key). */
static void finish(struct http_req *r, struct pg_conn *c, struct pg_res *res, int status,
                   const char *action, const char *id, const char *plaintext)
{
    struct api_error e;
    if (audit_or_fail(r, c, action, "key", id, pg_val(res, 0, 1), &e) != 0 ||
        pg_commit(c, &e) != 0) {
        pg_rollback(c);
        db_release(r, c);
        http_reply_error(r, &e);
        return;
    }
    (void)keystore_publish(r->app->keys, r->worker->redis, c, id);
    db_release(r, c);
    json_object *k = json_from_db(pg_val(res, 0, 0));
    render_key(k);
    if (plaintext)
        json_object_object_add(k, "key", json_object_new_string(plaintext));
    http_reply(r, status, k, NULL);
}

static const char *str_param(json_object *body, const char *name)
{
    json_object *v = jsonx_get(body, name);
    return v ? json_object_get_string(v) : NULL;
}

static void key_create(struct http_req *r)
{
    static const struct jx_field fields[] = {
        {"owner_id", JX_STRING, false, false},  {"name", JX_STRING, false, true},
        {"tier", JX_STRING, false, false},      {"prefix", JX_STRING, false, false},
        {"limits", JX_ARRAY, false, true},      {"expires_at", JX_STRING, false, true},
        {"remaining", JX_INT, false, true},     {"meta", JX_OBJECT, false, true},
        {"refill", JX_OBJECT, false, true},
    };
    struct api_error e;
    json_object *body = body_or_reply(r, fields, TG_ARRAY_LEN(fields));
    if (!body)
        return;
    const char *prefix = str_param(body, "prefix");
    if (!prefix)
        prefix = r->app->cfg.key_prefix;
    /* An owner token's keys are its owner's, on its tier. */
    const char *scope = auth_owner_scope(&r->who);
    const char *owner = str_param(body, "owner_id") ? str_param(body, "owner_id") : scope;
    int rc = owner_body_or_fail(r, body, owner_denied, &e);
    if (rc == 0 && !owner) {
        api_error_set(&e, ERR_MISSING_FIELD, "owner_id", "Missing required field 'owner_id'.");
        rc = -1;
    }
    if (rc != 0 || validate_common(body, true, &e) != 0) {
        http_reply_error(r, &e);
        json_object_put(body);
        return;
    }
    if (!keys_prefix_valid(prefix)) {
        api_error_set(&e, ERR_INVALID_ARGUMENT, "prefix", "prefix must match [a-z0-9]{1,16}.");
        http_reply_error(r, &e);
        json_object_put(body);
        return;
    }
    char key[KEYS_MAX_LEN], hash[KEYS_HASH_HEX_LEN], start[KEYS_PREFIX_MAX + 6], id[KEYS_ID_MAX];
    keys_generate(r->app->cfg.hmac_secret, prefix, key);
    keys_hash_hex(r->app->cfg.hmac_secret, key, strlen(key), hash);
    keys_start(key, start);
    keys_new_id("key", id);
    const char *tier = scope ? r->who.tier : str_param(body, "tier") ? str_param(body, "tier")
                                                                     : "free";
    const char *p[] = {id,
                       owner,
                       str_param(body, "name"),
                       prefix,
                       start,
                       tier,
                       json_member_text(body, "limits"),
                       json_member_text(body, "expires_at"),
                       json_member_text(body, "remaining"),
                       json_member_text(body, "meta"),
                       hash,
                       r->app->cfg.hmac_secret_id,
                       json_member_text(body, "refill")};
    struct pg_conn *c = db_or_reply(r);
    struct pg_res *res = NULL;
    if (!c)
        goto out;
    if (pg_begin(c, &e) != 0 || tier_exists(c, tier, &e) != 0 ||
        !(res = pg_query(c,
                         "WITH k AS (INSERT INTO keys (id, owner_id, name, prefix, start, tier,"
                         "   limits, expires_at, remaining, meta, refill, remaining_at)"
                         "  VALUES ($1, $2, $3, $4, $5, $6, coalesce($7::jsonb, '[]'),"
                         "   'epoch'::timestamptz + $8::bigint * interval '1 millisecond',"
                         "   coalesce($9::bigint, ($13::jsonb->>'amount')::bigint),"
                         "   coalesce($10::jsonb, '{}'), $13::jsonb, clock_timestamp())"
                         "  RETURNING id, tg_key_view(keys) AS v, tg_key_json(keys) AS j),"
                         " s AS (INSERT INTO key_secrets (hash, key_id, secret_id)"
                         "  SELECT $11, id, $12 FROM k)"
                         " SELECT v::text, tg_changes(NULL, j)::text FROM k",
                         13, p, &e))) {
        pg_rollback(c);
        db_release(r, c);
        http_reply_error(r, &e);
        goto out;
    }
    finish(r, c, res, 201, "key.create", id, key);
out:
    pg_res_free(res);
    json_object_put(body);
}

/* Locks the key for a change: 404 when unknown or not owner's (NULL: any
 * owner's), 409 when revoked. */
static int lock_key(struct pg_conn *c, const char *id, const char *owner, struct api_error *e)
{
    const char *p[] = {id, owner};
    struct pg_res *res = pg_query(c,
                                  "SELECT status FROM keys WHERE id = $1"
                                  " AND ($2::text IS NULL OR owner_id = $2) FOR UPDATE",
                                  2, p, e);
    if (!res)
        return -1;
    int rc = 0;
    if (pg_nrows(res) == 0) {
        api_error_set(e, ERR_NOT_FOUND, NULL, "Key not found.");
        rc = -1;
    } else if (strcmp(pg_val(res, 0, 0), "revoked") == 0) {
        api_error_set(e, ERR_CONFLICT, NULL, "The key is revoked; revocation is permanent.");
        rc = -1;
    }
    pg_res_free(res);
    return rc;
}

static void key_patch(struct http_req *r)
{
    static const struct jx_field fields[] = {
        {"name", JX_STRING, false, true},   {"tier", JX_STRING, false, false},
        {"limits", JX_ARRAY, false, true},  {"status", JX_STRING, false, false},
        {"expires_at", JX_STRING, false, true}, {"remaining", JX_INT, false, true},
        {"meta", JX_OBJECT, false, true},   {"refill", JX_OBJECT, false, true},
    };
    struct api_error e;
    json_object *body = body_or_reply(r, fields, TG_ARRAY_LEN(fields));
    if (!body)
        return;
    const char *status = str_param(body, "status");
    struct pg_conn *c = NULL;
    struct pg_res *res = NULL;
    if (owner_body_or_fail(r, body, owner_denied, &e) != 0 ||
        validate_common(body, false, &e) != 0)
        goto fail;
    if (status && strcmp(status, "active") != 0 && strcmp(status, "suspended") != 0) {
        api_error_set(&e, ERR_INVALID_ARGUMENT, "status",
                      "status must be \"active\" or \"suspended\" (DELETE revokes).");
        goto fail;
    }
    if (!(c = db_or_reply(r)))
        goto out;
    const char *tier = str_param(body, "tier");
    const char *p[] = {r->params[0], json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN)};
    if (pg_begin(c, &e) != 0 || lock_key(c, r->params[0], auth_owner_scope(&r->who), &e) != 0 ||
        (tier && tier_exists(c, tier, &e) != 0) ||
        !(res = pg_query(c,
                         "WITH old AS (SELECT tg_key_json(k) AS j, k.refill AS rf FROM keys k"
                         "  WHERE id = $1),"
                         /* A new balance (version) when remaining is set or
                          * the refill changes; a refill set without
                          * remaining starts full, a removed one leaves the
                          * credits left. */
                         " chg AS (SELECT $2::jsonb ? 'remaining' AS rem,"
                         "  $2::jsonb ? 'refill' AND nullif($2::jsonb->'refill', 'null')"
                         "   IS DISTINCT FROM old.rf AS rf FROM old),"
                         " upd AS (UPDATE keys SET"
                         "  name = CASE WHEN $2::jsonb ? 'name' THEN $2::jsonb->>'name' ELSE name END,"
                         "  tier = coalesce($2::jsonb->>'tier', tier),"
                         "  limits = CASE WHEN $2::jsonb ? 'limits'"
                         "   THEN coalesce(nullif($2::jsonb->'limits', 'null'), '[]') ELSE limits END,"
                         "  status = coalesce($2::jsonb->>'status', status),"
                         "  expires_at = CASE WHEN $2::jsonb ? 'expires_at' THEN 'epoch'::timestamptz"
                         "   + ($2::jsonb->>'expires_at')::bigint * interval '1 millisecond'"
                         "   ELSE expires_at END,"
                         "  remaining = CASE WHEN chg.rem THEN ($2::jsonb->>'remaining')::bigint"
                         "   WHEN chg.rf AND $2::jsonb->'refill' <> 'null'"
                         "   THEN ($2::jsonb->'refill'->>'amount')::bigint"
                         "   WHEN chg.rf THEN tg_key_remaining(keys) ELSE remaining END,"
                         "  refill = CASE WHEN chg.rem AND $2::jsonb->'remaining' = 'null' THEN NULL"
                         "   WHEN $2::jsonb ? 'refill' THEN nullif($2::jsonb->'refill', 'null')"
                         "   ELSE refill END,"
                         "  remaining_at = CASE WHEN chg.rem OR chg.rf THEN clock_timestamp()"
                         "   ELSE remaining_at END,"
                         "  remaining_version = remaining_version"
                         "   + CASE WHEN chg.rem OR chg.rf THEN 1 ELSE 0 END,"
                         "  meta = CASE WHEN $2::jsonb ? 'meta'"
                         "   THEN coalesce(nullif($2::jsonb->'meta', 'null'), '{}') ELSE meta END,"
                         "  updated_at = clock_timestamp(), version = version + 1"
                         "  FROM chg WHERE id = $1"
                         "  RETURNING tg_key_view(keys) AS v, tg_key_json(keys) AS j)"
                         " SELECT upd.v::text, tg_changes(old.j, upd.j)::text FROM old, upd",
                         2, p, &e)))
        goto fail;
    finish(r, c, res, 200, "key.update", r->params[0], NULL);
    goto out;
fail:
    if (c) {
        pg_rollback(c);
        db_release(r, c);
    }
    http_reply_error(r, &e);
out:
    pg_res_free(res);
    json_object_put(body);
}

static void key_rotate(struct http_req *r)
{
    static const struct jx_field fields[] = {{"grace_seconds", JX_INT, false, false}};
    struct api_error e;
    json_object *body = NULL;
    if (r->body_len > 0 && !(body = body_or_reply(r, fields, TG_ARRAY_LEN(fields))))
        return;
    json_object *g = body ? jsonx_get(body, "grace_seconds") : NULL;
    if (g && jsonx_int_range(g, "grace_seconds", 0, GRACE_MAX, &e) != 0) {
        http_reply_error(r, &e);
        json_object_put(body);
        return;
    }
    char grace[24], key[KEYS_MAX_LEN], hash[KEYS_HASH_HEX_LEN], start[KEYS_PREFIX_MAX + 6];
    snprintf(grace, sizeof grace, "%lld", g ? (long long)json_object_get_int64(g) : 0LL);
    json_object_put(body);
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    struct pg_res *res = NULL, *pre = NULL;
    const char *id = r->params[0];
    const char *p1[] = {id};
    if (pg_begin(c, &e) != 0 || lock_key(c, id, auth_owner_scope(&r->who), &e) != 0 ||
        !(pre = pg_query(c, "SELECT prefix FROM keys WHERE id = $1", 1, p1, &e)))
        goto fail;
    keys_generate(r->app->cfg.hmac_secret, pg_val(pre, 0, 0), key);
    keys_hash_hex(r->app->cfg.hmac_secret, key, strlen(key), hash);
    keys_start(key, start);
    const char *p[] = {id, grace, hash, start, r->app->cfg.hmac_secret_id};
    if (!(res = pg_query(c,
                         "WITH old AS (SELECT tg_key_json(k) AS j FROM keys k WHERE id = $1),"
                         " expire AS (UPDATE key_secrets SET expires_at = least(coalesce(expires_at,"
                         "   'infinity'), clock_timestamp() + $2::bigint * interval '1 second')"
                         "  WHERE key_id = $1),"
                         " add AS (INSERT INTO key_secrets (hash, key_id, secret_id)"
                         "  VALUES ($3, $1, $5)),"
                         " upd AS (UPDATE keys SET start = $4, updated_at = clock_timestamp(),"
                         "   version = version + 1 WHERE id = $1"
                         "  RETURNING tg_key_view(keys) AS v, tg_key_json(keys) AS j)"
                         " SELECT upd.v::text, tg_changes(old.j, upd.j)::text FROM old, upd",
                         5, p, &e)))
        goto fail;
    finish(r, c, res, 200, "key.rotate", id, key);
    goto out;
fail:
    pg_rollback(c);
    db_release(r, c);
    http_reply_error(r, &e);
out:
    pg_res_free(pre);
    pg_res_free(res);
}

static void key_revoke(struct http_req *r)
{
    struct api_error e;
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    const char *p[] = {r->params[0]};
    struct pg_res *res = NULL;
    if (pg_begin(c, &e) != 0 || lock_key(c, r->params[0], auth_owner_scope(&r->who), &e) != 0) {
        pg_rollback(c);
        if (e.code != ERR_CONFLICT)
            goto fail;
        /* Already revoked: answer the key as it is, change nothing. */
        json_object *k = pg_query_json(c, "SELECT tg_key_view(k)::text FROM keys k WHERE id = $1",
                                       1, p, "Key", &e);
        if (!k)
            goto fail;
        db_release(r, c);
        render_key(k);
        http_reply(r, 200, k, NULL);
        return;
    }
    if (!(res = pg_query(c,
                         "WITH old AS (SELECT tg_key_json(k) AS j FROM keys k WHERE id = $1),"
                         " upd AS (UPDATE keys SET status = 'revoked', revoked_at = clock_timestamp(),"
                         "   updated_at = clock_timestamp(), version = version + 1 WHERE id = $1"
                         "  RETURNING tg_key_view(keys) AS v, tg_key_json(keys) AS j)"
                         " SELECT upd.v::text, tg_changes(old.j, upd.j)::text FROM old, upd",
                         1, p, &e)))
        goto fail;
    finish(r, c, res, 200, "key.revoke", r->params[0], NULL);
    pg_res_free(res);
    return;
fail:
    pg_rollback(c);
    db_release(r, c);
    http_reply_error(r, &e);
}

/* A key's view with the version of its credit balance in "_rv" and its
 * current refill interval in "_ri", for live_remaining. */
#define KEY_VIEW_RV                                                                        \
    "(tg_key_view(k) || jsonb_build_object('_rv', k.remaining_version,"                   \
    " '_ri', tg_refill_start(k.refill, now())))::text"

/* The credits left as the checks see them: Redis's count when it holds the
 * key's current balance (PostgreSQL's, in the view, trails it by the usage
 * pipeline), else the view's; "_rv" is removed.  A Redis failure leaves the
 * view's, and *redis_ok false so that a list stops asking. */
static void live_remaining(struct http_req *r, json_object *k, bool *redis_ok)
{
    struct api_error e;
    int64_t left;
    json_object *rv = jsonx_get(k, "_rv"), *ri = jsonx_get(k, "_ri"),
                *v = jsonx_get(k, "remaining"), *id = jsonx_get(k, "id");
    int64_t version = rv ? json_object_get_int64(rv) : -1;
    int64_t interval = ri ? json_object_get_int64(ri) : 0;
    json_object_object_del(k, "_rv");
    json_object_object_del(k, "_ri");
    if (!*redis_ok || !v || !json_object_is_type(v, json_type_int) || !id)
        return;
    /* The state lives under the owner's tag when a limit is per owner
     * (the effective limits: render_key has merged them). */
    char tag[KEYS_OWNER_TAG_LEN];
    const char *owner = NULL;
    json_object *lim = jsonx_get(k, "limits"), *own = jsonx_get(k, "owner_id");
    for (size_t i = 0; own && lim && i < json_object_array_length(lim); i++) {
        const char *per = json_object_get_string(jsonx_get(json_object_array_get_idx(lim, i), "per"));
        if (per && strcmp(per, "owner") == 0) {
            keys_owner_tag(json_object_get_string(own), tag);
            owner = tag;
            break;
        }
    }
    int rc = keyuse_live_remaining(r->worker->redis, json_object_get_string(id), owner, version,
                                   interval, &left, &e);
    if (rc == 1)
        json_object_object_add(k, "remaining", json_object_new_int64(left));
    *redis_ok = rc >= 0;
}

static void key_get(struct http_req *r)
{
    struct api_error e;
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    const char *p[] = {r->params[0], auth_owner_scope(&r->who)};
    json_object *k = pg_query_json(c,
                                   "SELECT " KEY_VIEW_RV " FROM keys k WHERE id = $1"
                                   " AND ($2::text IS NULL OR owner_id = $2)",
                                   2, p, "Key", &e);
    db_release(r, c);
    if (!k) {
        http_reply_error(r, &e);
        return;
    }
    bool redis_ok = true;
    render_key(k);
    live_remaining(r, k, &redis_ok);
    http_reply(r, 200, k, NULL);
}

static void render_listed(struct http_req *r, json_object *k, void *redis_ok)
{
    render_key(k);
    live_remaining(r, k, redis_ok);
}

static void key_list(struct http_req *r)
{
    static const char *const allowed[] = {"owner_id", "status", "tier", NULL};
    const char *status = http_query(r, "status");
    if (status && strcmp(status, "active") && strcmp(status, "suspended") &&
        strcmp(status, "revoked")) {
        struct api_error e;
        api_error_set(&e, ERR_INVALID_ARGUMENT, "status",
                      "status must be active, suspended or revoked.");
        http_reply_error(r, &e);
        return;
    }
    const char *owner;
    if (owner_filter_or_reply(r, &owner) != 0)
        return;
    const char *filters[] = {owner, status, http_query(r, "tier")};
    /* Each key with credits on the page costs one HMGET (none after a
     * failure): the list shows what the checks see, like GET of one key. */
    bool redis_ok = true;
    reply_paged(r, allowed,
                "SELECT " KEY_VIEW_RV ", tg_cursor(created_at, id) FROM keys k"
                " WHERE ($1::text IS NULL OR owner_id = $1)"
                "  AND ($2::text IS NULL OR status = $2)"
                "  AND ($3::text IS NULL OR tier = $3)"
                "  AND ($4::bigint IS NULL"
                "   OR (created_at, id) > (tg_from_us($4::bigint), $5))"
                " ORDER BY created_at, id LIMIT $6::bigint",
                3, filters, render_listed, &redis_ok);
}

#define READ (ROLE_ADMIN | ROLE_OPERATOR | ROLE_VIEWER | ROLE_OWNER)
#define WRITE (ROLE_ADMIN | ROLE_OPERATOR | ROLE_OWNER)

const struct route keys_routes[] = {
    {"GET", "/v1/keys", READ, key_list, 0, NULL},
    {"POST", "/v1/keys", WRITE, key_create, 0, NULL},
    {"GET", "/v1/keys/{id}", READ, key_get, 0, NULL},
    {"PATCH", "/v1/keys/{id}", WRITE, key_patch, 0, NULL},
    {"DELETE", "/v1/keys/{id}", WRITE, key_revoke, 0, NULL},
    {"POST", "/v1/keys/{id}/rotate", WRITE, key_rotate, 0, NULL},
};
const size_t keys_routes_len = TG_ARRAY_LEN(keys_routes);
