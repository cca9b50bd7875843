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
    {"viewer", ROLE_VIEWER},   {"service", ROLE_SERVICE},
};

unsigned auth_role_bit(const char *role)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(roles); i++)
        if (strcmp(roles[i].name, role) == 0)
            return roles[i].bit;
    return 0;
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
                                  "SELECT revoked_at IS NOT NULL, id, role, coalesce(name, '')"
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
