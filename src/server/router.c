#include "router.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct router {
    const struct route **routes;
    size_t n, cap;
};

struct router *router_new(void)
{
    return xcalloc(1, sizeof(struct router));
}

void router_free(struct router *rt)
{
    if (!rt)
        return;
    free(rt->routes);
    free(rt);
}

void router_add(struct router *rt, const struct route *routes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (rt->n == rt->cap) {
            rt->cap = rt->cap ? rt->cap * 2 : 32;
            rt->routes = xrealloc(rt->routes, rt->cap * sizeof *rt->routes);
        }
        rt->routes[rt->n++] = &routes[i];
    }
}

size_t router_count(const struct router *rt)
{
    return rt->n;
}

const struct route *router_get(const struct router *rt, size_t i)
{
    return i < rt->n ? rt->routes[i] : NULL;
}

int router_index(const struct router *rt, const struct route *route)
{
    for (size_t i = 0; i < rt->n; i++)
        if (rt->routes[i] == route)
            return (int)i;
    return -1;
}

/* Matches path against pattern segment by segment, decoding parameters. */
static bool path_matches(const char *pattern, const char *path,
                         char params[HTTP_MAX_PARAMS][HTTP_PARAM_MAX], int *nparams)
{
    int np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return false;
        p++;
        s++;
        const char *pe = strchrnul(p, '/'), *se = strchrnul(s, '/');
        size_t plen = (size_t)(pe - p), slen = (size_t)(se - s);
        if (plen > 1 && p[0] == '{' && p[plen - 1] == '}') {
            /* A parameter that is not UTF-8 text names nothing the
             * database could hold: no route, rather than a query that fails. */
            long n;
            if (slen == 0 || np == HTTP_MAX_PARAMS ||
                (n = http_decode(s, slen, false, params[np], HTTP_PARAM_MAX)) < 0 ||
                !utf8_valid(params[np], (size_t)n))
                return false;
            np++;
        } else if (plen != slen || memcmp(p, s, plen) != 0) {
            return false;
        }
        p = pe;
        s = se;
    }
    if (*p || *s)
        return false;
    *nparams = np;
    return true;
}

enum router_result router_match(const struct router *rt, const char *method, const char *path,
                                const struct route **out,
                                char params[HTTP_MAX_PARAMS][HTTP_PARAM_MAX], int *nparams,
                                char *allow, size_t allow_size)
{
    bool path_known = false;
    if (allow_size)
        allow[0] = '\0';
    for (size_t i = 0; i < rt->n; i++) {
        const struct route *r = rt->routes[i];
        if (!path_matches(r->pattern, path, params, nparams))
            continue;
        if (strcmp(r->method, method) == 0) {
            *out = r;
            return ROUTER_OK;
        }
        if (allow_size && strlen(allow) + strlen(r->method) + 3 < allow_size &&
            !strstr(allow, r->method)) {
            if (path_known)
                strcat(allow, ", ");
            strcat(allow, r->method);
        }
        path_known = true;
    }
    return path_known ? ROUTER_METHOD_NOT_ALLOWED : ROUTER_NOT_FOUND;
}
