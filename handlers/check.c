/* The check: is this API key allowed to make this request now?
 *
 * Order of the decision: format and checksum (no I/O), then the record by
 * the key's HMAC (process cache, Redis, PostgreSQL), then the state of the
 * secret and of the key.  When several states apply, the most permanent
 * wins: revoked, then expired, then suspended. */
#include <string.h>

#include "auth.h"
#include "common.h"
#include "handlers.h"
#include "keys.h"
#include "keystore.h"
#include "limits.h"

#define COST_MAX 1000

struct decision {
    int status;         /* 200, 401, 403, 503 */
    const char *reason; /* NULL when allowed */
    const char *message;
};

static void decide(const struct key_record *rec, int64_t now, struct decision *d)
{
    d->status = 200;
    d->reason = NULL;
    d->message = NULL;
    if (!rec->found || (rec->has_secret_expires && rec->secret_expires_ms <= now)) {
        *d = (struct decision){401, "invalid_key", "The API key is not valid."};
    } else if (strcmp(rec->status, "revoked") == 0) {
        *d = (struct decision){403, "revoked", "The API key has been revoked."};
    } else if (rec->has_expires && rec->expires_ms <= now) {
        *d = (struct decision){401, "expired", "The API key has expired."};
    } else if (strcmp(rec->status, "suspended") == 0) {
        *d = (struct decision){403, "suspended", "The API key is suspended."};
    }
}

/* The windows that apply to endpoint, in the key's order. */
static json_object *applicable_limits(json_object *limits, const char *endpoint)
{
    json_object *out = json_object_new_array();
    size_t n = limits ? json_object_array_length(limits) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *l = json_object_array_get_idx(limits, i);
        json_object *ep = jsonx_get(l, "endpoint");
        /* A check without an endpoint is subject only to unscoped limits. */
        if (ep && (strcmp(endpoint, "*") == 0 ||
                   !limits_endpoint_match(json_object_get_string(ep), endpoint)))
            continue;
        json_object *w = json_object_new_object();
        json_object_object_add(w, "name", json_object_get(jsonx_get(l, "name")));
        json_object_object_add(w, "window_s", json_object_get(jsonx_get(l, "window_s")));
        json_object_object_add(w, "limit", json_object_get(jsonx_get(l, "limit")));
        json_object_array_add(out, w);
    }
    return out;
}

static void reply_decision(struct http_req *r, const struct key_record *rec,
                           const struct decision *d, const char *endpoint)
{
    json_object *o = json_object_new_object();
    bool known = rec && rec->found && d->status != 401;
    json_object_object_add(o, "allowed", json_object_new_boolean(d->status == 200));
    json_object_object_add(o, "reason", jsonx_str_or_null(d->reason));
    json_object_object_add(o, "key_id", known ? json_object_new_string(rec->id) : NULL);
    json_object_object_add(o, "owner_id", known ? json_object_new_string(rec->owner_id) : NULL);
    json_object_object_add(o, "tier", known ? json_object_new_string(rec->tier) : NULL);
    json_object_object_add(o, "limits", known ? applicable_limits(rec->limits, endpoint)
                                              : json_object_new_array());
    json_object_object_add(o, "remaining", known && rec->has_remaining
                                               ? json_object_new_int64(rec->remaining)
                                               : NULL);
    if (d->reason) {
        struct api_error e;
        api_error_set(&e, d->status, d->reason, NULL, "%s", d->message);
        json_object *env = jsonx_error_body(&e);
        json_object_object_add(o, "error", json_object_get(jsonx_get(env, "error")));
        json_object_put(env);
    }
    http_reply(r, d->status, o, NULL);
}

static void check(struct http_req *r)
{
    static const struct jx_field fields[] = {
        {"key", JX_STRING, true, false},
        {"endpoint", JX_STRING, false, false},
        {"cost", JX_ANY, false, false},
    };
    struct api_error e;
    json_object *body = body_or_reply(r, fields, TG_ARRAY_LEN(fields));
    if (!body)
        return;
    json_object *jkey = jsonx_get(body, "key"), *jep = jsonx_get(body, "endpoint");
    json_object *jcost = jsonx_get(body, "cost");
    const char *endpoint = jep ? json_object_get_string(jep) : "*";
    struct key_record rec = {0};
    struct decision d;
    if (jcost && jsonx_int_range(jcost, "cost", 1, COST_MAX, &e) != 0) {
        http_reply_error(r, &e);
        goto out;
    }
    if (!limits_endpoint_valid(endpoint, false)) {
        api_error_set(&e, 400, "invalid_argument", "endpoint",
                      "endpoint must be \"METHOD /path\" (e.g. \"GET /v1/search\") or \"*\".");
        http_reply_error(r, &e);
        goto out;
    }
    const char *key = json_object_get_string(jkey);
    size_t keylen = (size_t)json_object_get_string_len(jkey);
    if (!keys_parse(key, keylen, NULL)) {
        d = (struct decision){401, "invalid_key", "The API key is not valid."};
        reply_decision(r, NULL, &d, endpoint);
        goto out;
    }
    char hash[KEYS_HASH_HEX_LEN];
    keys_hash_hex(r->app->cfg.hmac_secret, key, keylen, hash);
    if (keystore_lookup(r->app->keys, r->worker->redis, hash, &rec, &e) != 0) {
        d = (struct decision){e.status, e.code, e.message};
        reply_decision(r, NULL, &d, endpoint);
        goto out;
    }
    decide(&rec, now_ms(), &d);
    reply_decision(r, &rec, &d, endpoint);
out:
    key_record_fini(&rec);
    json_object_put(body);
}

const struct route check_routes[] = {
    {"POST", "/v1/check", ROLE_SERVICE | ROLE_OPERATOR | ROLE_ADMIN, check, 0},
};
const size_t check_routes_len = TG_ARRAY_LEN(check_routes);
