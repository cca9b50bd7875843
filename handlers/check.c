/* POST /v1/check: the JSON face of the checker (src/check/checker.c), answered
 * from the event loop when the key is in memory (check_fast), else on a
 * worker (check). */

#include <string.h>

#include "auth.h"
#include "checker.h"
#include "common.h"
#include "endpoint.h"
#include "handlers.h"
#include "metrics.h"

#define COST_MAX 1000

struct check_args {
    json_object *body; /* holds key and endpoint; caller puts */
    const char *key;
    size_t keylen;
    char endpoint[ENDPOINT_MAX + 1]; /* normal form, or "*" */
    int64_t cost;
};

/* Parses and validates the body; false when r holds the error answer. */
static bool read_args(struct http_req *r, struct check_args *a)
{
    static const struct jx_field fields[] = {
        {"key", JX_STRING, true, false},
        {"endpoint", JX_STRING, false, false},
        {"cost", JX_ANY, false, false},
    };
    a->body = body_or_reply(r, fields, TG_ARRAY_LEN(fields));
    if (!a->body)
        return false;
    struct api_error e;
    json_object *jkey = jsonx_get(a->body, "key"), *jep = jsonx_get(a->body, "endpoint");
    json_object *jcost = jsonx_get(a->body, "cost");
    const char *ep = jep ? json_object_get_string(jep) : "*";
    enum endpoint_status st = ENDPOINT_OK;
    if (strcmp(ep, "*") == 0)
        memcpy(a->endpoint, "*", 2);
    else
        st = endpoint_normalize(ep, a->endpoint);
    a->key = json_object_get_string(jkey);
    a->keylen = (size_t)json_object_get_string_len(jkey);
    a->cost = jcost ? json_object_get_int64(jcost) : 1;
    if (jcost && jsonx_int_range(jcost, "cost", 1, COST_MAX, &e) != 0) {
        http_reply_error(r, &e);
    } else if (st != ENDPOINT_OK) {
        api_error_set(&e, ERR_INVALID_ARGUMENT, "endpoint",
                      "endpoint must be \"METHOD /path\" (e.g. \"GET /v1/search\"), at most %d "
                      "bytes once normalised, or \"*\": %s.",
                      ENDPOINT_MAX, endpoint_status_text(st));
        http_reply_error(r, &e);
    } else {
        return true;
    }
    json_object_put(a->body);
    return false;
}

static void answer(struct http_req *r, const struct check_outcome *o, int64_t t0)
{
    char headers[2048];
    check_outcome_headers(o, headers, sizeof headers);
    struct strbuf body = {0};
    check_outcome_write_json(o, &body);
    http_reply_json_text(r, o->status, headers, body.p, body.len);
    strbuf_fini(&body);
    metrics_check(r->app->metrics, o->reason, mono_ns() - t0);
}

static void check(struct http_req *r)
{
    struct check_args a;
    if (!read_args(r, &a))
        return;
    struct check_outcome o;
    int64_t t0 = mono_ns();
    check_run(r->worker, a.key, a.keylen, a.endpoint, a.cost, &o);
    answer(r, &o, t0);
    check_outcome_fini(&o);
    json_object_put(a.body);
}

static enum route_fast check_fast(struct http_req *r)
{
    struct check_args a;
    if (!read_args(r, &a))
        return FAST_ANSWERED;
    enum route_fast f = check_in_loop(r, a.key, a.keylen, a.endpoint, a.cost, answer);
    json_object_put(a.body);
    return f;
}

const struct route check_routes[] = {
    {"POST", "/v1/check", ROLE_SERVICE | ROLE_OPERATOR | ROLE_ADMIN, check, 0, check_fast},
};
const size_t check_routes_len = TG_ARRAY_LEN(check_routes);
