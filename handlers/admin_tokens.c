/* Admin tokens: the credentials of the management API, one role each. */
#include <string.h>

#include "auth.h"
#include "cache.h"
#include "common.h"
#include "handlers.h"
#include "keys.h"

static void token_create(struct http_req *r)
{
    static const struct jx_field fields[] = {
        {"role", JX_STRING, true, false},
        {"name", JX_STRING, false, true},
    };
    struct api_error e;
    json_object *body = body_or_reply(r, fields, TG_ARRAY_LEN(fields));
    if (!body)
        return;
    const char *role = json_object_get_string(jsonx_get(body, "role"));
    json_object *name = jsonx_get(body, "name");
    struct pg_conn *c = NULL;
    struct pg_res *res = NULL;
    if (!auth_role_bit(role)) {
        api_error_set(&e, ERR_INVALID_ARGUMENT, "role",
                      "role must be admin, operator, billing, viewer or service.");
        goto fail;
    }
    if (name && jsonx_string_len(name, "name", 0, 200, true, &e) != 0)
        goto fail;
    if (!(c = db_or_reply(r)))
        goto out;
    char token[KEYS_MAX_LEN], hash[KEYS_HASH_HEX_LEN], id[KEYS_ID_MAX];
    keys_generate(r->app->cfg.hmac_secret, KEYS_TOKEN_PREFIX, token);
    keys_hash_hex(r->app->cfg.hmac_secret, token, strlen(token), hash);
    keys_new_id("tok", id);
    const char *p[] = {id, hash, role, name ? json_object_get_string(name) : NULL,
                       r->app->cfg.hmac_secret_id};
    if (pg_begin(c, &e) != 0 ||
        !(res = pg_query(c,
                         "INSERT INTO admin_tokens (id, hash, role, name, secret_id)"
                         " VALUES ($1, $2, $3, $4, $5)"
                         " RETURNING tg_token_json(admin_tokens)::text,"
                         "  tg_changes(NULL, tg_token_json(admin_tokens))::text",
                         5, p, &e)) ||
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
    http_reply(r, 200, o, NULL);
}

const struct route admin_tokens_routes[] = {
    {"GET", "/v1/admin/tokens", ROLE_ADMIN, token_list, 0, NULL},
    {"POST", "/v1/admin/tokens", ROLE_ADMIN, token_create, 0, NULL},
    {"DELETE", "/v1/admin/tokens/{id}", ROLE_ADMIN, token_revoke, 0, NULL},
    {"GET", "/v1/admin/whoami", ROLES_ANY, whoami, 0, NULL},
};
const size_t admin_tokens_routes_len = TG_ARRAY_LEN(admin_tokens_routes);
