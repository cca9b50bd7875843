/* Usage: the live state of a key's windows, read from the rate-limit store
 * (no pipeline lag). */
#include <string.h>

#include "auth.h"
#include "checker.h"
#include "common.h"
#include "handlers.h"
#include "keystore.h"
#include "ratelimit.h"

static json_object *window_json(const struct rl_window *w, json_object *limit)
{
    json_object *o = json_object_new_object();
    json_object *ep = jsonx_get(limit, "endpoint");
    json_object_object_add(o, "name", json_object_new_string(w->name));
    json_object_object_add(o, "window_s", json_object_new_int64(w->window_s));
    json_object_object_add(o, "limit", json_object_new_int64(w->limit));
    json_object_object_add(o, "used", json_object_new_int64(w->used));
    json_object_object_add(o, "remaining", json_object_new_int64(w->remaining));
    json_object_object_add(o, "reset_ms", json_object_new_int64(w->reset_ms));
    if (ep)
        json_object_object_add(o, "endpoint", json_object_get(ep));
    return o;
}

static void usage_live(struct http_req *r)
{
    struct api_error e;
    struct key_record rec;
    if (keystore_by_id(r->app->keys, r->params[0], &rec, &e) != 0) {
        http_reply_error(r, &e);
        return;
    }
    if (!rec.found) {
        api_error_set(&e, 404, "not_found", NULL, "Key not found.");
        http_reply_error(r, &e);
        key_record_fini(&rec);
        return;
    }
    struct rl_request req;
    struct rl_result res;
    struct tg_err err;
    check_prepare(&rec, NULL, 1, &req);
    if (ratelimit_peek(r->worker->redis, &req, &res, &err) != 0) {
        api_error_set(&e, 503, "unavailable", NULL, "The rate-limit store is unavailable.");
        http_reply_error(r, &e);
        key_record_fini(&rec);
        return;
    }
    json_object *data = json_object_new_array();
    for (size_t i = 0; i < req.nwindows; i++)
        json_object_array_add(data, window_json(&req.windows[i],
                                                json_object_array_get_idx(rec.limits, i)));
    json_object *body = json_object_new_object();
    json_object_object_add(body, "data", data);
    json_object *quota = NULL;
    if (rec.has_quota) {
        quota = json_object_new_object();
        json_object_object_add(quota, "used", json_object_new_int64(res.quota_used));
        json_object_object_add(quota, "included", json_object_new_int64(rec.quota_included));
    }
    json_object_object_add(body, "quota", quota);
    json_object_object_add(body, "remaining",
                           rec.has_remaining ? json_object_new_int64(res.remaining) : NULL);
    http_reply(r, 200, body, NULL);
    key_record_fini(&rec);
}

const struct route usage_routes[] = {
    {"GET", "/v1/keys/{id}/usage/live", ROLE_ADMIN | ROLE_OPERATOR | ROLE_BILLING | ROLE_VIEWER,
     usage_live, 0},
};
const size_t usage_routes_len = TG_ARRAY_LEN(usage_routes);
