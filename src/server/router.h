/* router: a table of routes, each a method, a path pattern with {parameters},
 * the roles allowed (0: no authentication) and a handler.  Matching is pure:
 * no I/O, so it is tested directly. */
#ifndef TOLLGATE_ROUTER_H
#define TOLLGATE_ROUTER_H

#include <stddef.h>

#include "http.h"

typedef void (*route_fn)(struct http_req *r);

/* A route's answer from the event loop, which must never block (see
 * dispatch.h): */
enum route_fast {
    FAST_ANSWERED, /* the answer is in r->out */
    FAST_PENDING,  /* dispatch_finish(r) or dispatch_defer(r) will follow */
    FAST_DEFER,    /* not answered, nothing written: run fn on a worker */
};
typedef enum route_fast (*route_fast_fn)(struct http_req *r);

struct route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/v1/keys/{id}/rotate" */
    unsigned roles;      /* bit set of auth roles; 0 means public */
    route_fn fn;
    size_t max_body;     /* 0: the default of 64 KiB */
    route_fast_fn fast;  /* NULL: always fn, on a worker */
};

enum router_result { ROUTER_OK = 0, ROUTER_NOT_FOUND, ROUTER_METHOD_NOT_ALLOWED };

struct router;

struct router *router_new(void);
void router_free(struct router *rt);
/* Adds n routes; the table is borrowed and must outlive the router. */
void router_add(struct router *rt, const struct route *routes, size_t n);

/* Number of routes, and route i (0 <= i < count). */
size_t router_count(const struct router *rt);
const struct route *router_get(const struct router *rt, size_t i);
/* Index of route in the table, -1 when absent. */
int router_index(const struct router *rt, const struct route *route);

/* Finds the route for method and path.  On ROUTER_OK *out is the route and
 * params/nparams hold the decoded path parameters.  On
 * ROUTER_METHOD_NOT_ALLOWED, allow receives the methods the path accepts,
 * comma separated. */
enum router_result router_match(const struct router *rt, const char *method, const char *path,
                                const struct route **out,
                                char params[HTTP_MAX_PARAMS][HTTP_PARAM_MAX], int *nparams,
                                char *allow, size_t allow_size);

#endif
