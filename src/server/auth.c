#include "auth.h"

#include <stdbool.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "cache.h"
#include "keys.h"
#include "pg.h"

static const struct {
    const char *name;
    unsigned bit;
} roles[] = {
    {"admin", ROLE_ADMIN},     {"operator", ROLE_OPERATOR}, {"billing", ROLE_BILLING},
    {"viewer", ROLE_VIEWER},   {"service", ROLE_SERVICE},   {"owner", ROLE_OWNER},
};

unsigned auth_role_bit(const char *role)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(roles); i++)
        if (strcmp(roles[i].name, role) == 0)
            return roles[i].bit;
    return 0;
}

const char *auth_owner_scope(const struct principal *who)
{
    return who->role_bit == ROLE_OWNER ? who->owner_id : NULL;
}

bool auth_sees_owner(const struct principal *who, const char *owner_id)
{
    const char *scope = auth_owner_scope(who);
    return !scope || (owner_id && strcmp(scope, owner_id) == 0);
}

bool auth_expired(const struct principal *who, int64_t now)
{
    return who->has_expires && now >= who->expires_ms;
}

int auth_token_binding(const char *role, bool has_owner_id, bool has_tier, struct api_error *e)
{
    bool owner = auth_role_bit(role) == ROLE_OWNER;
    if (owner && (!has_owner_id || !has_tier)) {
        const char *f = has_owner_id ? "tier" : "owner_id";
        api_error_set(e, ERR_MISSING_FIELD, f, "A token of role owner needs %s.", f);
        return -1;
    }
    if (!owner && (has_owner_id || has_tier)) {
        const char *f = has_owner_id ? "owner_id" : "tier";
        api_error_set(e, ERR_INVALID_ARGUMENT, f, "Only a token of role owner takes %s.", f);
        return -1;
    }
    return 0;
}

int auth_token_expiry(const char *text, int64_t now, int64_t *out, struct api_error *e)
{
    int64_t ms;
    if (!text || parse_time_ms(text, &ms) != 0) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "expires_at",
                      "expires_at must be an RFC 3339 time such as 2027-01-01T00:00:00.000Z.");
        return -1;
    }
    if (ms <= now) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "expires_at", "expires_at is in the past.");
        return -1;
    }
    if (ms - now > AUTH_TOKEN_LIFE_MAX_MS) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "expires_at",
                      "expires_at may lie at most %lld days ahead.",
                      (long long)(AUTH_TOKEN_LIFE_MAX_MS / 86400000));
        return -1;
    }
    *out = ms;
    return 0;
}

int auth_duration_ms(const char *text, int64_t *out)
{
    static const struct {
        char unit;
        int64_t ms;
    } units[] = {{'s', 1000}, {'m', 60000}, {'h', 3600000}, {'d', 86400000}};
    size_t n = text ? strlen(text) : 0;
    char digits[16];
    int64_t v;
    if (n < 2 || n - 1 >= sizeof digits)
        return -1;
    memcpy(digits, text, n - 1);
    digits[n - 1] = '\0';
    for (size_t i = 0; i < TG_ARRAY_LEN(units); i++) {
        if (text[n - 1] != units[i].unit)
            continue;
        /* Bounded so that the product cannot overflow; the lifetime bound
         * itself is auth_token_expiry's. */
        if (parse_int64(digits, 1, INT64_MAX / 86400000, &v) != 0)
            return -1;
        *out = v * units[i].ms;
        return 0;
    }
    return -1;
}

int auth_bearer(const char *header, char *out, size_t size)
{
    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return -1;
    const char *t = header + 7;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n > 0 && t[n - 1] == ' ')
        n--;
    if (n == 0 || n >= size)
        return -1;
    memcpy(out, t, n);
    out[n] = '\0';
    return 0;
}

static void unauthenticated(struct api_error *e)
{
    api_error_set(e, ERR_UNAUTHENTICATED, NULL,
                  "A valid admin token is required (Authorization: Bearer <token>).");
}

/* What the cache keeps per token hash: the principal, typed, or the mark of
 * a revoked token. */
struct token_entry {
    bool revoked;
    bool unknown; /* no such token: remembered like any other answer */
    struct principal who;
};

/* The entry of hash from the process cache or, when may_block, from
 * PostgreSQL: 0, 1 (not cached and !may_block), or -1 with e filled. */
static int lookup(struct app *app, const char *hash, bool may_block, struct token_entry *out,
                  struct api_error *e)
{
    char *blob = NULL;
    size_t len = 0;
    if (cache_get(app->tokens, hash, now_ms(), &blob, &len)) {
        bool ok = len == sizeof *out;
        if (ok)
            memcpy(out, blob, sizeof *out);
        free(blob);
        if (ok)
            return 0;
    }
    if (!may_block)
        return 1;
    struct pg_conn *c = pg_acquire(app->pg, e);
    if (!c)
        return -1;
    const char *p[] = {hash};
    struct pg_res *res = pg_query(c,
                                  "SELECT revoked_at IS NOT NULL, id, role, coalesce(name, ''),"
                                  " coalesce(owner_id, ''), coalesce(tier, ''), tg_ms(expires_at)"
                                  " FROM admin_tokens WHERE hash = $1",
                                  1, p, e);
    pg_release(app->pg, c);
    if (!res)
        return -1;
    memset(out, 0, sizeof *out);
    if (pg_nrows(res) == 0) {
        /* Remembered, so that repeating an unknown token costs no query.
         * A token made later by another process is never in here: its
         * secret is new, and the checksum keeps guessed ones out. */
        pg_res_free(res);
        out->unknown = true;
        cache_put(app->tokens, hash, out, sizeof *out, now_ms());
        return 0;
    }
    out->revoked = pg_val(res, 0, 0)[0] == 't';
    strlcpy_tg(out->who.id, pg_val(res, 0, 1), sizeof out->who.id);
    strlcpy_tg(out->who.role, pg_val(res, 0, 2), sizeof out->who.role);
    strlcpy_tg(out->who.name, pg_val(res, 0, 3), sizeof out->who.name);
    out->who.role_bit = auth_role_bit(out->who.role);
    strlcpy_tg(out->who.owner_id, pg_val(res, 0, 4), sizeof out->who.owner_id);
    strlcpy_tg(out->who.tier, pg_val(res, 0, 5), sizeof out->who.tier);
    out->who.has_expires = !pg_isnull(res, 0, 6);
    out->who.expires_ms = out->who.has_expires ? pg_int(res, 0, 6) : 0;
    pg_res_free(res);
    cache_put(app->tokens, hash, out, sizeof *out, now_ms());
    return 0;
}

static int authenticate(struct http_req *r, bool may_block, struct api_error *e)
{
    char token[KEYS_MAX_LEN + 8], prefix[KEYS_PREFIX_MAX + 1];
    int which = -1;
    if (auth_bearer(http_param(r, "HTTP_AUTHORIZATION"), token, sizeof token) != 0 ||
        (which = keys_verify(&r->app->cfg.secrets, token, strlen(token), prefix)) < 0 ||
        strcmp(prefix, KEYS_TOKEN_PREFIX) != 0) {
        unauthenticated(e);
        return -1;
    }
    char hash[KEYS_HASH_HEX_LEN];
    keys_hash_hex(r->app->cfg.secrets.secret[which], token, strlen(token), hash);
    struct token_entry t;
    int found = lookup(r->app, hash, may_block, &t, e);
    if (found != 0)
        return found;
    if (t.revoked || t.unknown) {
        unauthenticated(e);
        return -1;
    }
    /* Here, not in lookup: a cached entry knows the expiry, never whether
     * it has passed. */
    if (auth_expired(&t.who, now_ms())) {
        api_error_set(e, ERR_UNAUTHENTICATED, NULL, "The admin token has expired.");
        return -1;
    }
    r->who = t.who;
    return 0;
}

int auth_authenticate(struct http_req *r, struct api_error *e)
{
    return authenticate(r, true, e);
}

int auth_authenticate_cached(struct http_req *r, struct api_error *e)
{
    return authenticate(r, false, e);
}
