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
    api_error_set(e, 401, "unauthenticated", NULL,
                  "A valid admin token is required (Authorization: Bearer <token>).");
}

/* Cached value: "<revoked 0|1>\t<id>\t<role>\t<name>". */
static int lookup(struct app *app, const char *hash, bool may_block, char **value,
                  struct api_error *e)
{
    if (cache_get(app->tokens, hash, now_ms(), value, NULL))
        return 0;
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
    if (pg_nrows(res) == 0) {
        /* Not cached: a token created a moment ago by another process must
         * work at once; malformed ones never get this far. */
        pg_res_free(res);
        unauthenticated(e);
        return -1;
    }
    size_t len = 4 + strlen(pg_val(res, 0, 1)) + strlen(pg_val(res, 0, 2)) +
                 strlen(pg_val(res, 0, 3)) + 1;
    *value = xmalloc(len);
    snprintf(*value, len, "%c\t%s\t%s\t%s", pg_val(res, 0, 0)[0] == 't' ? '1' : '0',
             pg_val(res, 0, 1), pg_val(res, 0, 2), pg_val(res, 0, 3));
    pg_res_free(res);
    cache_put(app->tokens, hash, *value, strlen(*value), now_ms());
    return 0;
}

static int authenticate(struct http_req *r, bool may_block, struct api_error *e)
{
    char token[KEYS_MAX_LEN + 8], prefix[KEYS_PREFIX_MAX + 1];
    if (auth_bearer(http_param(r, "HTTP_AUTHORIZATION"), token, sizeof token) != 0 ||
        !keys_parse(token, strlen(token), prefix) || strcmp(prefix, KEYS_TOKEN_PREFIX) != 0) {
        unauthenticated(e);
        return -1;
    }
    char hash[KEYS_HASH_HEX_LEN];
    keys_hash_hex(r->app->cfg.hmac_secret, token, strlen(token), hash);
    char *v = NULL;
    int found = lookup(r->app, hash, may_block, &v, e);
    if (found != 0)
        return found;
    char *save = NULL;
    char *revoked = strtok_r(v, "\t", &save);
    char *id = strtok_r(NULL, "\t", &save);
    char *role = strtok_r(NULL, "\t", &save);
    char *name = strtok_r(NULL, "", &save);
    int rc = -1;
    if (revoked && id && role && revoked[0] == '0') {
        strlcpy_tg(r->who.id, id, sizeof r->who.id);
        strlcpy_tg(r->who.role, role, sizeof r->who.role);
        strlcpy_tg(r->who.name, name ? name : "", sizeof r->who.name);
        r->who.role_bit = auth_role_bit(role);
        rc = 0;
    } else {
        unauthenticated(e);
    }
    free(v);
    return rc;
}

int auth_authenticate(struct http_req *r, struct api_error *e)
{
    return authenticate(r, true, e);
}

int auth_authenticate_cached(struct http_req *r, struct api_error *e)
{
    return authenticate(r, false, e);
}
