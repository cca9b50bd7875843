/* The check: may this API key make this request now?
 *
 * 1. Format and checksum (no I/O).
 * 2. The record by the key's HMAC: process cache, Redis, PostgreSQL.
 * 3. The state of the secret and of the key; when several states apply the
 *    most permanent wins: invalid (unknown or past grace), revoked, expired,
 *    suspended.
 * 4. For an active key, one EVALSHA decides every applicable window, the
 *    period quota and the remaining credits atomically; it also says when
 *    the record is older than the last published change, and then the
 *    record is reloaded from PostgreSQL and the check runs again. */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "common.h"
#include "handlers.h"
#include "keys.h"
#include "keystore.h"
#include "limits.h"
#include "log.h"
#include "ratelimit.h"

#define COST_MAX 1000

struct decision {
    int status;         /* 200, 401, 403, 429, 503 */
    const char *reason; /* NULL when allowed */
    const char *message;
};

static const struct decision ALLOWED = {200, NULL, NULL};
static const struct decision INVALID = {401, "invalid_key", "The API key is not valid."};

static struct decision decide_state(const struct key_record *rec, int64_t now)
{
    if (!rec->found || (rec->has_secret_expires && rec->secret_expires_ms <= now))
        return INVALID;
    if (strcmp(rec->status, "revoked") == 0)
        return (struct decision){403, "revoked", "The API key has been revoked."};
    if (rec->has_expires && rec->expires_ms <= now)
        return (struct decision){401, "expired", "The API key has expired."};
    if (strcmp(rec->status, "suspended") == 0)
        return (struct decision){403, "suspended", "The API key is suspended."};
    return ALLOWED;
}

/* Copies the windows that apply to endpoint into req; a check without an
 * endpoint is subject only to unscoped limits. */
static void applicable_windows(json_object *limits, const char *endpoint, struct rl_request *req)
{
    size_t n = limits ? json_object_array_length(limits) : 0;
    req->nwindows = 0;
    for (size_t i = 0; i < n && req->nwindows < RATELIMIT_MAX_WINDOWS; i++) {
        json_object *l = json_object_array_get_idx(limits, i);
        json_object *ep = jsonx_get(l, "endpoint"), *prec = jsonx_get(l, "precision");
        if (ep && (strcmp(endpoint, "*") == 0 ||
                   !limits_endpoint_match(json_object_get_string(ep), endpoint)))
            continue;
        struct rl_window *w = &req->windows[req->nwindows++];
        memset(w, 0, sizeof *w);
        strlcpy_tg(w->name, json_object_get_string(jsonx_get(l, "name")), sizeof w->name);
        w->window_s = json_object_get_int64(jsonx_get(l, "window_s"));
        w->limit = json_object_get_int64(jsonx_get(l, "limit"));
        w->precision = prec ? json_object_get_int64(prec) : LIMITS_PRECISION_DEFAULT;
    }
}

static void prepare(const struct key_record *rec, const char *endpoint, int64_t cost,
                    struct rl_request *req)
{
    memset(req, 0, sizeof *req);
    req->key_id = rec->id;
    req->version = rec->version;
    req->cost = cost;
    req->has_quota = rec->has_quota;
    req->quota_included = rec->quota_included;
    req->quota_blocks = rec->quota_blocks;
    req->has_remaining = rec->has_remaining;
    req->remaining = rec->remaining;
    req->remaining_version = rec->remaining_version;
    applicable_windows(rec->limits, endpoint, req);
}

static struct decision decide_limits(const struct rl_request *req, const struct rl_result *res)
{
    switch (res->denied) {
    case RL_WINDOW:
        return (struct decision){429, "rate_limited", "A rate limit of this key is reached."};
    case RL_QUOTA:
        return (struct decision){429, "quota_exceeded", "The key's period quota is used up."};
    case RL_REMAINING:
        return (struct decision){429, "quota_exceeded", "The key has no remaining credits."};
    case RL_ALLOWED:
        break;
    }
    (void)req;
    return ALLOWED;
}

static json_object *windows_json(const struct rl_request *req, bool counted)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < req->nwindows; i++) {
        const struct rl_window *w = &req->windows[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(w->name));
        json_object_object_add(o, "limit", json_object_new_int64(w->limit));
        if (counted) {
            json_object_object_add(o, "remaining", json_object_new_int64(w->remaining));
            json_object_object_add(o, "reset_ms", json_object_new_int64(w->reset_ms));
        }
        json_object_array_add(arr, o);
    }
    return arr;
}

/* The answer.  rec is NULL for a key that names nothing; res is NULL when no
 * counting happened (state denials, store failures). */
static void reply_check(struct http_req *r, const struct key_record *rec,
                        const struct rl_request *req, const struct rl_result *res,
                        struct decision d)
{
    json_object *o = json_object_new_object();
    /* Every state but an invalid key names the key it found. */
    bool known = rec && req && rec->found && d.reason != INVALID.reason;
    json_object_object_add(o, "allowed", json_object_new_boolean(d.status == 200));
    json_object_object_add(o, "reason", jsonx_str_or_null(d.reason));
    json_object_object_add(o, "key_id", known ? json_object_new_string(rec->id) : NULL);
    json_object_object_add(o, "owner_id", known ? json_object_new_string(rec->owner_id) : NULL);
    json_object_object_add(o, "tier", known ? json_object_new_string(rec->tier) : NULL);
    json_object_object_add(o, "limits", known ? windows_json(req, res != NULL)
                                              : json_object_new_array());
    json_object *remaining = NULL;
    if (known && rec->has_remaining)
        remaining = json_object_new_int64(res ? res->remaining : rec->remaining);
    json_object_object_add(o, "remaining", remaining);
    char headers[2048] = "";
    if (res && d.status == 429) {
        const char *limit = res->denied == RL_WINDOW  ? req->windows[res->denied_window].name
                            : res->denied == RL_QUOTA ? "quota"
                                                      : "remaining";
        json_object_object_add(o, "limit", json_object_new_string(limit));
        if (res->has_retry)
            json_object_object_add(o, "retry_after_ms", json_object_new_int64(res->retry_after_ms));
    }
    if (res && (d.status == 200 || d.status == 429))
        ratelimit_headers(req, res, headers, sizeof headers);
    if (d.reason) {
        json_object *err = json_object_new_object();
        json_object_object_add(err, "code", json_object_new_string(d.reason));
        json_object_object_add(err, "message", json_object_new_string(d.message));
        json_object_object_add(o, "error", err);
    }
    http_reply(r, d.status, o, headers);
}

/* Reads the request: 0, or -1 after replying 400. */
static int parse_request(struct http_req *r, json_object *body, const char **key, size_t *keylen,
                         const char **endpoint, int64_t *cost)
{
    struct api_error e;
    json_object *jkey = jsonx_get(body, "key"), *jep = jsonx_get(body, "endpoint");
    json_object *jcost = jsonx_get(body, "cost");
    *endpoint = jep ? json_object_get_string(jep) : "*";
    *cost = jcost ? json_object_get_int64(jcost) : 1;
    *key = json_object_get_string(jkey);
    *keylen = (size_t)json_object_get_string_len(jkey);
    if (jcost && jsonx_int_range(jcost, "cost", 1, COST_MAX, &e) != 0) {
        http_reply_error(r, &e);
        return -1;
    }
    if (!limits_endpoint_valid(*endpoint, false)) {
        api_error_set(&e, 400, "invalid_argument", "endpoint",
                      "endpoint must be \"METHOD /path\" (e.g. \"GET /v1/search\") or \"*\".");
        http_reply_error(r, &e);
        return -1;
    }
    return 0;
}

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
    const char *key, *endpoint;
    size_t keylen;
    int64_t cost;
    struct key_record rec = {0};
    struct rl_request req;
    struct rl_result res;
    struct api_error e;
    struct tg_err err;
    char hash[KEYS_HASH_HEX_LEN];
    if (parse_request(r, body, &key, &keylen, &endpoint, &cost) != 0)
        goto out;
    if (!keys_parse(key, keylen, NULL)) {
        reply_check(r, NULL, NULL, NULL, INVALID);
        goto out;
    }
    keys_hash_hex(r->app->cfg.hmac_secret, key, keylen, hash);
    enum keystore_source src = KS_ANY;
    for (int attempt = 0; attempt < 3; attempt++) {
        key_record_fini(&rec);
        if (keystore_lookup(r->app->keys, r->worker->redis, hash, src, &rec, &e) != 0) {
            reply_check(r, NULL, NULL, NULL, (struct decision){e.status, e.code, e.message});
            goto out;
        }
        prepare(&rec, endpoint, cost, &req);
        struct decision d = decide_state(&rec, now_ms());
        if (d.status != 200) {
            /* A long-cached active record was never checked against Redis
             * for this answer: confirm it there before refusing. */
            if (rec.from_local && strcmp(rec.status, "active") == 0) {
                src = KS_SKIP_LOCAL;
                continue;
            }
            reply_check(r, &rec, &req, NULL, d);
            goto out;
        }
        if (ratelimit_check(r->worker->redis, &req, &res, &err) != 0) {
            /* Without Redis nothing vouches for a cached record: decide on
             * PostgreSQL's before applying the failure mode. */
            if (rec.from_local) {
                src = KS_FRESH;
                continue;
            }
            log_warn("rate-limit store error (%s mode): %s", r->app->cfg.on_store_error, err.msg);
            if (strcmp(r->app->cfg.on_store_error, "open") == 0)
                reply_check(r, &rec, &req, NULL, ALLOWED);
            else
                reply_check(r, &rec, &req, NULL,
                            (struct decision){503, "unavailable",
                                              "The rate-limit store is unavailable."});
            goto out;
        }
        if (!res.stale) {
            reply_check(r, &rec, &req, &res, decide_limits(&req, &res));
            goto out;
        }
        src = KS_FRESH;
    }
    log_error("key record still stale after reloads");
    reply_check(r, NULL, NULL, NULL,
                (struct decision){503, "unavailable", "The key store is inconsistent; retry."});
out:
    key_record_fini(&rec);
    json_object_put(body);
}

const struct route check_routes[] = {
    {"POST", "/v1/check", ROLE_SERVICE | ROLE_OPERATOR | ROLE_ADMIN, check, 0},
};
const size_t check_routes_len = TG_ARRAY_LEN(check_routes);
