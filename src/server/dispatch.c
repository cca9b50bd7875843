#include "dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "log.h"
#include "metrics.h"

#define DEFAULT_MAX_BODY (64 * 1024)

struct dispatch {
    struct app *app;
    struct dispatch_gate gate;
    struct worker loop_worker;
    struct worker *workers;
    int nworkers;
};

struct dispatch *dispatch_new(struct app *app, int workers, const struct dispatch_gate *gate)
{
    struct dispatch *d = xcalloc(1, sizeof *d);
    d->app = app;
    d->gate = *gate;
    d->nworkers = workers;
    d->workers = xcalloc((size_t)workers, sizeof *d->workers);
    for (int i = 0; i < workers; i++)
        worker_init(&d->workers[i], app, i);
    worker_init(&d->loop_worker, app, -1);
    return d;
}

void dispatch_free(struct dispatch *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->nworkers; i++)
        worker_fini(&d->workers[i]);
    worker_fini(&d->loop_worker);
    free(d->workers);
    free(d);
}

static void forbidden(struct http_req *r)
{
    struct api_error e;
    api_error_set(&e, ERR_FORBIDDEN, NULL, "The role '%s' may not use this route.",
                  r->who.role);
    http_reply_error(r, &e);
}

static void log_done(struct http_req *r)
{
    struct app *app = r->app;
    metrics_request(app->metrics, r->route ? router_index(app->router, r->route) : -1, r->status);
    if (r->status >= 500)
        log_warn("%s %s -> %d", r->method ? r->method : "-",
                 r->route ? r->route->pattern : "-", r->status);
    else
        log_debug("%s %s -> %d in %lld us", r->method ? r->method : "-",
                  r->route ? r->route->pattern : "-", r->status,
                  (long long)((mono_ns() - r->t0_ns) / 1000));
}

static bool is_authorizer(const struct http_req *r)
{
    return r->authorizer;
}

/* Reads the request and settles what needs no handler: routing errors,
 * authentication, roles, the body.  Returns true when r->route's handler
 * is to run; false when r holds the answer -- or, with may_block false,
 * when only a worker can authenticate (*defer set, nothing written). */
static bool prepare(struct http_req *r, const struct server_req *sr, bool may_block, bool *defer)
{
    struct api_error e;
    char allow[64], hdr[96];
    *defer = false;
    r->t0_ns = mono_ns();
    const struct fastcgi_request *f = sr->fcgi;
    r->authorizer = f->role == FCGI_AUTHORIZER;
    if (http_read(r, f->env, f->body.p, f->body.len, f->body_too_large,
                  (struct strbuf *)&sr->out, &e) != 0) {
        http_reply_error(r, &e);
        return false;
    }
    if (is_authorizer(r))
        return true;
    switch (router_match(r->app->router, r->method, r->path, &r->route, r->params, &r->nparams,
                         allow, sizeof allow)) {
    case ROUTER_NOT_FOUND:
        api_error_set(&e, ERR_NOT_FOUND, NULL, "No route for %s.", "this path");
        http_reply_error(r, &e);
        return false;
    case ROUTER_METHOD_NOT_ALLOWED:
        api_error_set(&e, ERR_METHOD_NOT_ALLOWED, NULL, "This path accepts only: %s.", allow);
        snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
        http_reply(r, 405, jsonx_error_body(&e), hdr);
        return false;
    case ROUTER_OK:
        break;
    }
    if (!may_block && !r->route->fast) {
        *defer = true;
        return false;
    }
    if (r->route->roles) {
        int rc = may_block ? auth_authenticate(r, &e) : auth_authenticate_cached(r, &e);
        if (rc > 0) {
            *defer = true;
            return false;
        }
        if (rc != 0) {
            /* RFC 9110: a 401 names the scheme it wants. */
            http_reply(r, err_http_status(e.code), jsonx_error_body(&e),
                       e.code == ERR_UNAUTHENTICATED ? "WWW-Authenticate: Bearer realm=\"tollgate\"\r\n" : NULL);
            return false;
        }
        if (!(r->route->roles & r->who.role_bit)) {
            forbidden(r);
            return false;
        }
    }
    size_t max = r->route->max_body ? r->route->max_body : DEFAULT_MAX_BODY;
    if (http_read_body(r, max, &e) != 0) {
        http_reply_error(r, &e);
        return false;
    }
    return true;
}

void dispatch_serve_blocking(void *ctx, int worker, struct server_req *sr)
{
    struct dispatch *d = ctx;
    struct http_req r;
    memset(&r, 0, sizeof r);
    r.app = d->app;
    r.worker = &d->workers[worker];
    r.sr = sr;
    strbuf_reset(&sr->out);
    bool defer;
    if (prepare(&r, sr, true, &defer)) {
        if (is_authorizer(&r))
            d->gate.fn(&r);
        else
            r.route->fn(&r);
    }
    log_done(&r);
    http_req_fini(&r);
    server_reply(sr);
}

int dispatch_flush(struct http_req *r)
{
    if (!r->out || !r->sr || r->out->len == 0)
        return 0;
    int rc = server_reply_part(r->sr, r->out->p, r->out->len);
    strbuf_reset(r->out);
    return rc;
}

void dispatch_finish(struct http_req *r)
{
    struct server_req *sr = r->sr;
    log_done(r);
    http_req_fini(r);
    free(r);
    server_reply(sr);
}

void dispatch_defer(struct http_req *r)
{
    struct server_req *sr = r->sr;
    http_req_fini(r);
    free(r);
    strbuf_reset(&sr->out);
    server_defer(sr);
}

void dispatch_serve(void *ctx, struct server_req *sr)
{
    struct dispatch *d = ctx;
    struct http_req *r = xcalloc(1, sizeof *r);
    r->app = d->app;
    r->worker = &d->loop_worker;
    r->sr = sr;
    bool defer;
    enum route_fast result = FAST_ANSWERED;
    if (prepare(r, sr, false, &defer)) {
        route_fast_fn fast = is_authorizer(r) ? d->gate.fast : r->route->fast;
        result = fast ? fast(r) : FAST_DEFER;
    } else if (defer) {
        result = FAST_DEFER;
    }
    if (result == FAST_ANSWERED)
        dispatch_finish(r);
    else if (result == FAST_DEFER)
        dispatch_defer(r);
}
