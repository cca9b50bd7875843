/* Gate mode: the FastCGI Authorizer role.  The web server asks before it
 * serves anything it guards; the key comes from "Authorization: Bearer",
 * "X-API-Key" or the configured query parameter, the endpoint is the guarded
 * request's "METHOD /path".  Allowed: 200 with Variable-TOLLGATE_* for the
 * guarded content; refused: the status, headers and JSON body of a check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "checker.h"
#include "common.h"
#include "endpoint.h"
#include "gate.h"
#include "metrics.h"

/* The presented key, or NULL (then the answer is invalid_key). */
static const char *find_key(struct http_req *r, char *buf, size_t size)
{
    if (auth_bearer(http_param(r, "HTTP_AUTHORIZATION"), buf, size) == 0)
        return buf;
    const char *k = http_param(r, "HTTP_X_API_KEY");
    if (k && *k)
        return k;
    const char *qp = r->app->cfg.gate_query_param;
    return qp && *qp ? http_query(r, qp) : NULL;
}

/* Variable-* values go into the guarded request's environment: keep them on
 * one header line whatever an owner id holds. */
static void append_variable(char *buf, size_t size, const char *name, const char *value)
{
    size_t n = strlen(buf);
    int w = snprintf(buf + n, size - n, "Variable-%s: ", name);
    if (w < 0 || (size_t)w >= size - n)
        return;
    n += (size_t)w;
    for (const char *p = value; *p && n + 3 < size; p++)
        buf[n++] = (*p == '\r' || *p == '\n') ? ' ' : *p;
    memcpy(buf + n, "\r\n", 3);
}

/* The endpoint checked: the guarded request's "METHOD /path" in normal
 * form.  One that has none is refused with 400: widening it to "*" would
 * skip every limit scoped to an endpoint. */
static bool gate_endpoint(struct http_req *r, char out[ENDPOINT_MAX + 1])
{
    enum endpoint_status st = endpoint_from_request(r->method, r->path, out);
    if (st == ENDPOINT_OK)
        return true;
    struct api_error e;
    api_error_set(&e, ERR_INVALID_ARGUMENT, NULL,
                  "The request path cannot be checked: %s.", endpoint_status_text(st));
    http_reply_error(r, &e);
    return false;
}

static void answer(struct http_req *r, const struct check_outcome *o, int64_t t0)
{
    char headers[4096];
    check_outcome_headers(o, headers, sizeof headers);
    if (o->status == 200) {
        append_variable(headers, sizeof headers, "TOLLGATE_KEY_ID", o->rec.id);
        append_variable(headers, sizeof headers, "TOLLGATE_OWNER_ID", o->rec.owner_id);
        append_variable(headers, sizeof headers, "TOLLGATE_TIER", o->rec.tier);
        http_reply(r, 200, NULL, headers);
    } else {
        /* RFC 9110: a 401 names the scheme that would be accepted. */
        if (o->status == 401)
            strlcpy_tg(headers + strlen(headers), "WWW-Authenticate: Bearer realm=\"tollgate\"\r\n",
                       sizeof headers - strlen(headers));
        struct strbuf body = {0};
        check_outcome_write_json(o, &body);
        http_reply_json_text(r, o->status, headers, body.p, body.len);
        strbuf_fini(&body);
    }
    metrics_check(r->app->metrics, o->reason, mono_ns() - t0);
}

void gate_request(struct http_req *r)
{
    int64_t t0 = mono_ns();
    char keybuf[256], endpoint[ENDPOINT_MAX + 1];
    if (!gate_endpoint(r, endpoint))
        return;
    const char *key = find_key(r, keybuf, sizeof keybuf);
    struct check_outcome o;
    check_run(r->worker, key ? key : "", key ? strlen(key) : 0, endpoint, 1, &o);
    answer(r, &o, t0);
    check_outcome_fini(&o);
}

enum route_fast gate_fast(struct http_req *r)
{
    char keybuf[256], endpoint[ENDPOINT_MAX + 1];
    if (!gate_endpoint(r, endpoint))
        return FAST_ANSWERED;
    const char *key = find_key(r, keybuf, sizeof keybuf);
    return check_in_loop(r, key ? key : "", key ? strlen(key) : 0, endpoint, 1, answer);
}
