/* Admin tokens: the credentials of the management API, one role each. */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "cache.h"
#include "common.h"
#include "handlers.h"
#include "keys.h"

/* Checks the body of a new token; *expires receives expires_at as epoch
 * milliseconds ("" when absent), the form the SQL takes. */
static int validate_token(json_object *body, char expires[24], struct api_error *e)
{
    const char *role = json_object_get_string(jsonx_get(body, "role"));
    json_object *name = jsonx_get(body, "name"), *owner = jsonx_get(body, "owner_id");
    json_object *tier = jsonx_get(body, "tier"), *exp = jsonx_get(body, "expires_at");
    expires[0] = '\0';
    if (!auth_role_bit(role)) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "role",
                      "role must be admin, operator, billing, viewer, service or owner.");
        return -1;
    }
    if ((name && jsonx_string_len(name, "name", 0, 200, true, e) != 0) ||
        auth_token_binding(role, owner != NULL, tier != NULL, e) != 0 ||
        (owner && jsonx_string_len(owner, "owner_id", 1, 128, true, e) != 0))
        return -1;
    if (tier && !name_ok(json_object_get_string(tier), (size_t)json_object_get_string_len(tier),
                         32, "_-")) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "tier", "tier names no existing tier.");
        return -1;
    }
    int64_t ms;
    if (exp) {
        if (auth_token_expiry(json_object_get_string(exp), now_ms(), &ms, e) != 0)
            return -1;
        snprintf(expires, 24, "%lld", (long long)ms);
    }
    return 0;
}

static const char *str_or_null(json_object *body, const char *name)
{
    json_object *v = jsonx_get(body, name);
    return v ? json_object_get_string(v) : NULL;
}

static void token_create(struct http_req *r)
{
    static const struct jx_field fields[] = {
        {"role", JX_STRING, true, false},     {"name", JX_STRING, false, true},
        {"owner_id", JX_STRING, false, false}, {"tier", JX_STRING, false, false},
        {"expires_at", JX_STRING, false, true},
    };
    struct api_error e;
    json_object *body = body_or_reply(r, fields, TG_ARRAY_LEN(fields));
    if (!body)
        return;
    struct pg_conn *c = NULL;
    struct pg_res *res = NULL;
    char expires[24];
    if (validate_token(body, expires, &e) != 0)
        goto fail;
    if (!(c = db_or_reply(r)))
        goto out;
    char token[KEYS_MAX_LEN], hash[KEYS_HASH_HEX_LEN], id[KEYS_ID_MAX];
    keys_generate(r->app->cfg.hmac_secret, KEYS_TOKEN_PREFIX, token);
    keys_hash_hex(r->app->cfg.hmac_secret, token, strlen(token), hash);
    keys_new_id("tok", id);
    const char *tier = str_or_null(body, "tier");
    const char *p[] = {id, hash, str_or_null(body, "role"), str_or_null(body, "name"),
                       r->app->cfg.hmac_secret_id, str_or_null(body, "owner_id"), tier,
                       expires[0] ? expires : NULL};
    if (pg_begin(c, &e) != 0 || (tier && tier_exists(c, tier, &e) != 0) ||
        !(res = pg_query(c,
                         "INSERT INTO admin_tokens (id, hash, role, name, secret_id, owner_id,"
                         "  tier, expires_at)"
                         " VALUES ($1, $2, $3, $4, $5, $6, $7,"
                         "  'epoch'::timestamptz + $8::bigint * interval '1 millisecond')"
                         " RETURNING tg_token_json(admin_tokens)::text,"
                         "  tg_changes(NULL, tg_token_json(admin_tokens))::text",
                         8, p, &e)) ||
        audit_or_fail(r, c, "token.create", "token", id, pg_val(res, 0, 1), &e) != 0 ||
        pg_commit(c, &e) != 0)
        goto fail;
    db_release(r, c);
    json_object *t = json_from_db(pg_val(res, 0, 0));
    json_object_object_add(t, "token", json_object_new_string(token));
    http_reply(r, 201, t, NULL);
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

static void token_revoke(struct http_req *r)
{
    struct api_error e;
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    const char *p[] = {r->params[0]};
    struct pg_res *res = NULL;
    if (pg_begin(c, &e) != 0 ||
        !(res = pg_query(c,
                         "WITH old AS (SELECT tg_token_json(t) AS j FROM admin_tokens t"
                         "  WHERE id = $1 FOR UPDATE),"
                         " upd AS (UPDATE admin_tokens SET revoked_at = clock_timestamp()"
                         "  WHERE id = $1 AND revoked_at IS NULL"
                         "  RETURNING hash, tg_token_json(admin_tokens) AS j)"
                         " SELECT (SELECT count(*) FROM old), upd.hash,"
                         "  tg_changes(old.j, upd.j)::text FROM old LEFT JOIN upd ON true",
                         1, p, &e)))
        goto fail;
    if (pg_nrows(res) == 0) {
        api_error_set(&e, ERR_NOT_FOUND, NULL, "Token not found.");
        goto fail;
    }
    if (!pg_isnull(res, 0, 1)) {
        if (audit_or_fail(r, c, "token.revoke", "token", r->params[0], pg_val(res, 0, 2), &e) != 0)
            goto fail;
    }
    if (pg_commit(c, &e) != 0)
        goto fail;
    /* This process forgets at once; the others within the cache TTL. */
    if (!pg_isnull(res, 0, 1))
        cache_remove(r->app->tokens, pg_val(res, 0, 1));
    pg_res_free(res);
    db_release(r, c);
    http_reply(r, 204, NULL, NULL);
    return;
fail:
    pg_res_free(res);
    pg_rollback(c);
    db_release(r, c);
    http_reply_error(r, &e);
}

static void token_list(struct http_req *r)
{
    reply_paged(r, NULL,
                "SELECT tg_token_json(t)::text, tg_cursor(created_at, id)"
                " FROM admin_tokens t WHERE $1::bigint IS NULL"
                "  OR (created_at, id) > (tg_from_us($1::bigint), $2)"
                " ORDER BY created_at, id LIMIT $3::bigint",
                0, NULL, NULL, NULL);
}

static void whoami(struct http_req *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(r->who.id));
    json_object_object_add(o, "role", json_object_new_string(r->who.role));
    json_object_object_add(o, "name", r->who.name[0] ? json_object_new_string(r->who.name) : NULL);
    if (auth_owner_scope(&r->who)) {
        json_object_object_add(o, "owner_id", json_object_new_string(r->who.owner_id));
        json_object_object_add(o, "tier", json_object_new_string(r->who.tier));
    }
    json_object_object_add(o, "expires_at", jsonx_time_or_null(r->who.has_expires,
                                                                r->who.expires_ms));
    http_reply(r, 200, o, NULL);
}

const struct route admin_tokens_routes[] = {
    {"GET", "/v1/admin/tokens", ROLE_ADMIN, token_list, 0, NULL},
    {"POST", "/v1/admin/tokens", ROLE_ADMIN, token_create, 0, NULL},
    {"DELETE", "/v1/admin/tokens/{id}", ROLE_ADMIN, token_revoke, 0, NULL},
    {"GET", "/v1/admin/whoami", ROLES_ANY, whoami, 0, NULL},
};
const size_t admin_tokens_routes_len = TG_ARRAY_LEN(admin_tokens_routes);
