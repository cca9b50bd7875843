/* dispatch: one request from the server to its answer -- routing, 404/405,
 * authentication and role check, body limits, then the route's handler.
 *
 * In the event loop (dispatch_serve) a request is answered there when that
 * needs no blocking call: routing errors, and the routes with a fast
 * function (the check) once the caller's token is in the process cache.
 * Everything else runs on a worker thread (dispatch_serve_blocking) with
 * the ordinary synchronous handlers.  Gate mode (the FastCGI Authorizer
 * role) takes the same two paths. */
#ifndef TOLLGATE_DISPATCH_H
#define TOLLGATE_DISPATCH_H

#include "app.h"
#include "http.h"
#include "router.h"
#include "server.h"

struct dispatch;

/* Gate mode's two faces: the fast one may return FAST_DEFER. */
struct dispatch_gate {
    route_fast_fn fast;
    route_fn fn;
};

/* One worker context per pool thread (workers of them) and one for the
 * loop. */
struct dispatch *dispatch_new(struct app *app, int workers, const struct dispatch_gate *gate);
void dispatch_free(struct dispatch *d);

/* The server's callbacks (ctx is the dispatch). */
void dispatch_serve(void *ctx, struct server_req *sr);
void dispatch_serve_blocking(void *ctx, int worker, struct server_req *sr);

/* From a handler on a worker, streaming its answer: sends what r->out
 * holds now as the next part (server_reply_part) and empties it.  Returns
 * 0, or -1 when the web server no longer wants the answer (stop writing). */
int dispatch_flush(struct http_req *r) TG_WUR;

/* For fast functions that answered later (FAST_PENDING), from the loop
 * thread: sends the answer written in r->out. */
void dispatch_finish(struct http_req *r);
/* ... or gives the request, untouched, to a worker after all. */
void dispatch_defer(struct http_req *r);

#endif
