#include "dispatch.h"

#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "gate.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "router.h"

#define DEFAULT_MAX_BODY (64 * 1024)

static void forbidden(struct http_req *r)
{
    struct api_error e;
    api_error_set(&e, 403, "forbidden", NULL, "The role '%s' may not use this route.",
                  r->who.role);
    http_reply_error(r, &e);
}

void dispatch_request(struct worker *w, FCGX_Request *f)
{
    struct http_req r;
    memset(&r, 0, sizeof r);
    r.app = w->app;
    r.worker = w;
    struct api_error e;
    const struct route *route = NULL;
    char allow[64], hdr[96];
    int64_t t0 = mono_ns();

    if (http_read(&r, f, &e) != 0) {
        http_reply_error(&r, &e);
        goto done;
    }
    const char *role = http_param(&r, "FCGI_ROLE");
    if (role && strcmp(role, "AUTHORIZER") == 0) {
        gate_request(&r);
        goto done;
    }
    switch (router_match(w->app->router, r.method, r.path, &route, r.params, &r.nparams, allow,
                         sizeof allow)) {
    case ROUTER_NOT_FOUND:
        api_error_set(&e, 404, "not_found", NULL, "No route for %s.", "this path");
        http_reply_error(&r, &e);
        goto done;
    case ROUTER_METHOD_NOT_ALLOWED:
        api_error_set(&e, 405, "method_not_allowed", NULL,
                      "This path accepts only: %s.", allow);
        snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
        http_reply(&r, 405, jsonx_error_body(&e), hdr);
        goto done;
    case ROUTER_OK:
        break;
    }
    if (route->roles) {
        if (auth_authenticate(&r, &e) != 0) {
            /* RFC 9110: a 401 names the scheme it wants. */
            http_reply(&r, e.status, jsonx_error_body(&e),
                       e.status == 401 ? "WWW-Authenticate: Bearer realm=\"tollgate\"\r\n" : NULL);
            goto done;
        }
        if (!(route->roles & r.who.role_bit)) {
            forbidden(&r);
            goto done;
        }
    }
    if (http_read_body(&r, route->max_body ? route->max_body : DEFAULT_MAX_BODY, &e) != 0) {
        http_reply_error(&r, &e);
        goto done;
    }
    route->fn(&r);
done:
    metrics_request(w->app->metrics, route ? router_index(w->app->router, route) : -1, r.status);
    if (r.status >= 500)
        log_warn("%s %s -> %d", r.method ? r.method : "-", route ? route->pattern : "-",
                 r.status);
    else
        log_debug("%s %s -> %d in %lld us", r.method ? r.method : "-",
                  route ? route->pattern : "-", r.status,
                  (long long)((mono_ns() - t0) / 1000));
    http_req_fini(&r);
}
