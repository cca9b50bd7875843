/* POST /v1/check: the JSON face of the checker (src/checker.c). */
#include "auth.h"
#include "checker.h"
#include "common.h"
#include "handlers.h"
#include "limits.h"
#include "metrics.h"

#define COST_MAX 1000

static void check(struct http_req *r)
{
    static const struct jx_field fields[] = {
        {"key", JX_STRING, true, false},
        {"endpoint", JX_STRING, false, false},
        {"cost", JX_ANY, false, false},
    };
    json_object *body = body_or_reply(r, fields, TG_ARRAY_LEN(fields));
    if (!body)
        return;
    struct api_error e;
    json_object *jkey = jsonx_get(body, "key"), *jep = jsonx_get(body, "endpoint");
    json_object *jcost = jsonx_get(body, "cost");
    const char *endpoint = jep ? json_object_get_string(jep) : "*";
    if (jcost && jsonx_int_range(jcost, "cost", 1, COST_MAX, &e) != 0) {
        http_reply_error(r, &e);
    } else if (!limits_endpoint_valid(endpoint, false)) {
        api_error_set(&e, 400, "invalid_argument", "endpoint",
                      "endpoint must be \"METHOD /path\" (e.g. \"GET /v1/search\") or \"*\".");
        http_reply_error(r, &e);
    } else {
        struct check_outcome o;
        char headers[2048];
        int64_t t0 = mono_ns();
        check_run(r->worker, json_object_get_string(jkey),
                  (size_t)json_object_get_string_len(jkey), endpoint,
                  jcost ? json_object_get_int64(jcost) : 1, &o);
        check_outcome_headers(&o, headers, sizeof headers);
        http_reply(r, o.status, check_outcome_json(&o), headers);
        metrics_check(r->app->metrics, o.reason, mono_ns() - t0);
        check_outcome_fini(&o);
    }
    json_object_put(body);
}

const struct route check_routes[] = {
    {"POST", "/v1/check", ROLE_SERVICE | ROLE_OPERATOR | ROLE_ADMIN, check, 0},
};
const size_t check_routes_len = TG_ARRAY_LEN(check_routes);
