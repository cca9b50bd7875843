/* Tiers: named sets of limits, an optional period quota and a price. */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "common.h"
#include "handlers.h"
#include "limits.h"

#define MONEY_MAX 1000000000000000LL /* 10^15 micro-units */

static const struct jx_field quota_fields[] = {
    {"period", JX_STRING, true, false},
    {"included", JX_INT, true, false},
    {"overage", JX_STRING, true, false},
};

static const struct jx_field price_fields[] = {
    {"currency", JX_STRING, true, false},
    {"base_micros", JX_INT, false, false},
    {"overage_per_1000_micros", JX_INT, false, false},
};

static int validate_quota(json_object *q, struct api_error *e)
{
    if (jsonx_check(q, quota_fields, TG_ARRAY_LEN(quota_fields), "quota", e) != 0)
        return -1;
    if (strcmp(json_object_get_string(jsonx_get(q, "period")), "month") != 0) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "quota.period", "quota.period must be \"month\".");
        return -1;
    }
    const char *ov = json_object_get_string(jsonx_get(q, "overage"));
    if (strcmp(ov, "block") != 0 && strcmp(ov, "bill") != 0) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "quota.overage",
                      "quota.overage must be \"block\" or \"bill\".");
        return -1;
    }
    return jsonx_int_range(jsonx_get(q, "included"), "quota.included", 0, MONEY_MAX, e);
}

/* Validates and completes a price (missing amounts are zero). */
static int validate_price(json_object *p, struct api_error *e)
{
    if (jsonx_check(p, price_fields, TG_ARRAY_LEN(price_fields), "price", e) != 0)
        return -1;
    json_object *cur = jsonx_get(p, "currency");
    const char *c = json_object_get_string(cur);
    if (json_object_get_string_len(cur) != 3 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' ||
        c[1] > 'Z' || c[2] < 'A' || c[2] > 'Z') {
        api_error_set(e, ERR_INVALID_ARGUMENT, "price.currency",
                      "price.currency must be an ISO 4217 code such as \"USD\".");
        return -1;
    }
    static const char *const amounts[] = {"base_micros", "overage_per_1000_micros"};
    for (size_t i = 0; i < TG_ARRAY_LEN(amounts); i++) {
        char field[64];
        snprintf(field, sizeof field, "price.%s", amounts[i]);
        json_object *v = jsonx_get(p, amounts[i]);
        if (!v)
            json_object_object_add(p, amounts[i], json_object_new_int64(0));
        else if (jsonx_int_range(v, field, 0, MONEY_MAX, e) != 0)
            return -1;
    }
    return 0;
}

/* Checks the members a create or a patch may carry. */
static int validate_tier(json_object *body, struct api_error *e)
{
    json_object *v;
    if ((v = jsonx_get(body, "limits")) && limits_validate(v, "limits", e) != 0)
        return -1;
    if ((v = jsonx_get(body, "quota")) && validate_quota(v, e) != 0)
        return -1;
    if ((v = jsonx_get(body, "price")) && validate_price(v, e) != 0)
        return -1;
    return 0;
}

/* Runs one statement returning (tier JSON, changes) with its audit entry in
 * one transaction, and replies. */
static void mutate(struct http_req *r, int status, const char *sql, int n, const char **params,
                   const char *action, const char *name)
{
    struct api_error e;
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    struct pg_res *res = NULL;
    if (pg_begin(c, &e) != 0 || !(res = pg_query(c, sql, n, params, &e)))
        goto fail;
    if (pg_nrows(res) == 0) {
        api_error_set(&e, ERR_NOT_FOUND, NULL, "Tier not found.");
        goto fail;
    }
    if (audit_or_fail(r, c, action, "tier", name, pg_val(res, 0, 1), &e) != 0 ||
        pg_commit(c, &e) != 0)
        goto fail;
    http_reply(r, status, json_from_db(pg_val(res, 0, 0)), NULL);
    pg_res_free(res);
    db_release(r, c);
    return;
fail:
    if (e.code == ERR_CONFLICT)
        api_error_set(&e, ERR_CONFLICT, "name", "A tier with this name already exists.");
    pg_res_free(res);
    pg_rollback(c);
    db_release(r, c);
    http_reply_error(r, &e);
}

static void tier_create(struct http_req *r)
{
    static const struct jx_field fields[] = {
        {"name", JX_STRING, true, false},  {"limits", JX_ARRAY, false, false},
        {"quota", JX_OBJECT, false, true}, {"price", JX_OBJECT, false, true},
    };
    struct api_error e;
    json_object *body = body_or_reply(r, fields, TG_ARRAY_LEN(fields));
    if (!body)
        return;
    json_object *name = jsonx_get(body, "name");
    if (!name_ok(json_object_get_string(name), (size_t)json_object_get_string_len(name), 32,
                       "_-")) {
        api_error_set(&e, ERR_INVALID_ARGUMENT, "name", "name must match [a-z0-9_-]{1,32}.");
        http_reply_error(r, &e);
    } else if (validate_tier(body, &e) != 0) {
        http_reply_error(r, &e);
    } else {
        const char *limits = json_member_text(body, "limits");
        const char *p[] = {json_object_get_string(name), limits ? limits : "[]",
                           json_member_text(body, "quota"), json_member_text(body, "price")};
        mutate(r, 201,
               "INSERT INTO tiers (name, limits, quota, price)"
               " VALUES ($1, $2::jsonb, $3::jsonb, $4::jsonb)"
               " RETURNING tg_tier_json(tiers)::text, tg_changes(NULL, tg_tier_json(tiers))::text",
               4, p, "tier.create", json_object_get_string(name));
    }
    json_object_put(body);
}

static void tier_patch(struct http_req *r)
{
    static const struct jx_field fields[] = {
        {"limits", JX_ARRAY, false, false},
        {"quota", JX_OBJECT, false, true},
        {"price", JX_OBJECT, false, true},
    };
    struct api_error e;
    json_object *body = body_or_reply(r, fields, TG_ARRAY_LEN(fields));
    if (!body)
        return;
    if (validate_tier(body, &e) != 0) {
        http_reply_error(r, &e);
    } else {
        const char *p[] = {r->params[0], json_member_text(body, "limits") ? json_member_text(body, "limits") : NULL,
                           jsonx_has(body, "quota") ? "t" : "f", json_member_text(body, "quota"),
                           jsonx_has(body, "price") ? "t" : "f", json_member_text(body, "price")};
        mutate(r, 200,
               "WITH old AS (SELECT tg_tier_json(t) AS j FROM tiers t WHERE name = $1 FOR UPDATE),"
               " upd AS (UPDATE tiers SET limits = coalesce($2::jsonb, limits),"
               "   quota = CASE WHEN $3::boolean THEN $4::jsonb ELSE quota END,"
               "   price = CASE WHEN $5::boolean THEN $6::jsonb ELSE price END,"
               "   updated_at = clock_timestamp()"
               "  WHERE name = $1 RETURNING tg_tier_json(tiers) AS j)"
               " SELECT upd.j::text, tg_changes(old.j, upd.j)::text FROM old, upd",
               6, p, "tier.update", r->params[0]);
    }
    json_object_put(body);
}

static void tier_get(struct http_req *r)
{
    struct api_error e;
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    const char *p[] = {r->params[0]};
    json_object *t = pg_query_json(c, "SELECT tg_tier_json(t)::text FROM tiers t WHERE name = $1",
                                   1, p, "Tier", &e);
    db_release(r, c);
    if (t)
        http_reply(r, 200, t, NULL);
    else
        http_reply_error(r, &e);
}

static void tier_list(struct http_req *r)
{
    reply_paged(r, NULL,
                "SELECT tg_tier_json(t)::text, tg_cursor(created_at, name)"
                " FROM tiers t WHERE $1::bigint IS NULL"
                "  OR (created_at, name) > (tg_from_us($1::bigint), $2)"
                " ORDER BY created_at, name LIMIT $3::bigint",
                0, NULL, NULL, NULL);
}

#define READ (ROLE_ADMIN | ROLE_OPERATOR | ROLE_VIEWER)
#define WRITE (ROLE_ADMIN | ROLE_OPERATOR)

const struct route tiers_routes[] = {
    {"GET", "/v1/tiers", READ, tier_list, 0, NULL},
    {"POST", "/v1/tiers", WRITE, tier_create, 0, NULL},
    {"GET", "/v1/tiers/{name}", READ, tier_get, 0, NULL},
    {"PATCH", "/v1/tiers/{name}", WRITE, tier_patch, 0, NULL},
};
const size_t tiers_routes_len = TG_ARRAY_LEN(tiers_routes);
