#include "checker.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "cache.h"
#include "jsonx.h"
#include "keys.h"
#include "keyuse.h"
#include "limits.h"
#include "localrl.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "strbuf.h"
#include "usagepub.h"

/* Empties o; the limits past rec.nlimits are never read, so they are left. */
static void reset(struct check_outcome *o)
{
    memset(o, 0, offsetof(struct check_outcome, rec) + offsetof(struct key_record, limits));
}

static void set(struct check_outcome *o, enum err_code reason, const char *message)
{
    o->status = reason == ERR_NONE ? 200 : err_http_status(reason);
    o->reason = reason;
    o->message = message;
}

static void set_invalid(struct check_outcome *o)
{
    set(o, ERR_INVALID_KEY, "The API key is not valid.");
    o->known = false;
}

/* The state of the record; false when it refuses the check. */
static bool state_allows(struct check_outcome *o, int64_t now)
{
    const struct key_record *rec = &o->rec;
    o->known = true;
    if (!rec->found || (rec->has_secret_expires && rec->secret_expires_ms <= now))
        set_invalid(o);
    else if (rec->status == KEY_REVOKED)
        set(o, ERR_REVOKED, "The API key has been revoked.");
    else if (rec->has_expires && rec->expires_ms <= now)
        set(o, ERR_EXPIRED, "The API key has expired.");
    else if (rec->status == KEY_SUSPENDED)
        set(o, ERR_SUSPENDED, "The API key is suspended.");
    else
        set(o, ERR_NONE, NULL);
    return o->status == 200;
}

/* Copies the windows that apply to endpoint; a check without an endpoint is
 * subject only to unscoped limits. */
static bool applicable_windows(const struct key_record *rec, const char *endpoint,
                               struct rl_request *req)
{
    req->nwindows = 0;
    for (size_t i = 0; i < rec->nlimits; i++) {
        const struct key_limit *l = &rec->limits[i];
        if (endpoint && l->endpoint[0] &&
            (strcmp(endpoint, "*") == 0 || !endpoint_match(l->endpoint, endpoint)))
            continue;
        if (req->nwindows == RATELIMIT_MAX_WINDOWS)
            return false;
        struct rl_window *w = &req->windows[req->nwindows++];
        memset(w, 0, sizeof *w);
        strlcpy_tg(w->name, l->name, sizeof w->name);
        w->window_s = l->window_s;
        w->limit = l->limit;
        w->precision = l->precision;
        w->per_owner = l->per_owner;
    }
    return true;
}

bool check_prepare(const struct key_record *rec, const char *endpoint, int64_t cost,
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
    req->has_refill = rec->refill.on;
    req->refill_amount = rec->refill.amount;
    req->refill_day = rec->refill.day_of_month;
    req->refill_base = refill_start(&rec->refill, rec->remaining_set_ms);
    /* Where the key's state lives depends on all of its limits, not on the
     * ones this endpoint uses. */
    req->key_owner_tag = rec->owner_tag[0] ? rec->owner_tag : NULL;
    for (size_t i = 0; i < rec->nlimits && !req->owner_tag; i++)
        if (rec->limits[i].per_owner)
            req->owner_tag = rec->owner_tag;
    return applicable_windows(rec, endpoint, req);
}

/* Usage rows per key stay bounded by the key's own limits, whatever paths
 * its holder invents. */
static void set_usage_endpoint(struct check_outcome *o, const char *endpoint)
{
    const char *best = "*";
    size_t best_len = 0;
    for (size_t i = 0; strcmp(endpoint, "*") != 0 && i < o->rec.nlimits; i++) {
        const char *p = o->rec.limits[i].endpoint;
        size_t n = strlen(p);
        if (n > best_len && endpoint_match(p, endpoint)) {
            best = p;
            best_len = n;
        }
    }
    strlcpy_tg(o->usage_endpoint, best, sizeof o->usage_endpoint);
}

/* check_prepare for o's record, and what usage counts the check under;
 * false with o refused when the windows do not fit one check. */
static bool prepare(struct check_outcome *o, const char *endpoint, int64_t cost)
{
    set_usage_endpoint(o, endpoint);
    if (check_prepare(&o->rec, endpoint, cost, &o->req))
        return true;
    log_error("key %s: more than %d windows apply to one check", o->rec.id, RATELIMIT_MAX_WINDOWS);
    set(o, ERR_INTERNAL, "The key's limits exceed what one check enforces.");
    o->known = true;
    return false;
}

static void set_from_limits(struct check_outcome *o)
{
    o->counted = true;
    switch (o->res.denied) {
    case RL_WINDOW:
        set(o, ERR_RATE_LIMITED, "A rate limit of this key is reached.");
        break;
    case RL_QUOTA:
        set(o, ERR_QUOTA_EXCEEDED, "The key's period quota is used up.");
        break;
    case RL_REMAINING:
        set(o, ERR_QUOTA_EXCEEDED, "The key has no remaining credits.");
        break;
    case RL_ALLOWED:
        set(o, ERR_NONE, NULL);
        break;
    }
}

/* "Denied until": a key refused for its limits is refused again, without
 * a Redis call, until its retry time -- but never longer than the cache TTL,
 * so that a raised limit takes effect as fast as any other change.  Only a
 * refusal is replayed: nothing extra can ever be admitted this way. */
static void denial_key(const char *hash, const char *endpoint, int64_t cost, char *out,
                       size_t size)
{
    snprintf(out, size, "%s|%lld|%s", hash, (long long)cost, endpoint);
}

/* What a remembered denial keeps: the outcome without the record's limits
 * (the windows of the decision are in req). */
#define DENIAL_SIZE (offsetof(struct check_outcome, rec) + offsetof(struct key_record, limits))

static bool replay_denial(const struct check_env *env, const char *dkey, struct check_outcome *o)
{
    char *blob = NULL;
    size_t len = 0;
    int64_t now = env->now_ms(env->ctx);
    if (!env->denials || !cache_get(env->denials, dkey, now, &blob, &len))
        return false;
    bool ok = len == DENIAL_SIZE;
    if (ok) {
        memcpy(o, blob, DENIAL_SIZE);
        o->rec.nlimits = 0;
        int64_t elapsed = now - o->res.now_ms;
        o->req.key_id = o->rec.id;
        o->res.now_ms = now;
        o->res.retry_after_ms = o->res.retry_after_ms > elapsed ? o->res.retry_after_ms - elapsed : 1;
        for (size_t i = 0; i < o->req.nwindows; i++) {
            int64_t *reset = &o->req.windows[i].reset_ms;
            *reset = *reset > elapsed ? *reset - elapsed : 0;
        }
    }
    free(blob);
    return ok;
}

static void remember_denial(const struct check_env *env, const char *dkey,
                            const struct check_outcome *o)
{
    if (!env->denials || o->status != 429 || !o->counted || !o->res.has_retry)
        return;
    char copy[DENIAL_SIZE];
    memcpy(copy, o, DENIAL_SIZE);
    /* The decision time in this process's clock, for the replay's arithmetic. */
    int64_t now = env->now_ms(env->ctx);
    memcpy(copy + offsetof(struct check_outcome, res) + offsetof(struct rl_result, now_ms), &now,
           sizeof now);
    int64_t ttl = o->res.retry_after_ms < env->denial_ttl_ms ? o->res.retry_after_ms
                                                             : env->denial_ttl_ms;
    if (ttl > 0)
        cache_put_ttl(env->denials, dkey, copy, sizeof copy, now, ttl);
}

void check_decide(const struct check_env *env, const char *key, size_t keylen,
                  const char *endpoint, int64_t cost, struct check_outcome *o)
{
    reset(o);
    int which = keys_verify(env->secrets, key, keylen, NULL);
    if (which < 0) {
        set_invalid(o);
        return;
    }
    char hash[KEYS_HASH_HEX_LEN], dkey[CHECK_DENIAL_KEY_MAX];
    keys_hash_hex(env->secrets->secret[which], key, keylen, hash);
    denial_key(hash, endpoint, cost, dkey, sizeof dkey);
    if (replay_denial(env, dkey, o))
        return;
    enum keystore_source src = KS_ANY;
    for (int attempt = 0; attempt < 3; attempt++) {
        struct api_error e;
        struct api_error err;
        if (env->lookup(env->ctx, hash, src, &o->rec, &e) != 0) {
            set(o, e.code == ERR_INTERNAL ? ERR_INTERNAL : ERR_UNAVAILABLE, "The key store is unavailable.");
            o->known = false;
            return;
        }
        if (!prepare(o, endpoint, cost))
            return;
        if (!state_allows(o, env->now_ms(env->ctx))) {
            /* A long-cached active record was never compared with Redis for
             * this answer: confirm it there before refusing. */
            if (!o->rec.from_local || o->rec.status != KEY_ACTIVE)
                return;
            src = KS_SKIP_LOCAL;
            continue;
        }
        if (env->decide(env->ctx, &o->req, &o->res, &err) != 0) {
            /* Without Redis nothing vouches for a cached record: decide on
             * PostgreSQL's before applying the failure mode. */
            if (o->rec.from_local) {
                src = KS_FRESH;
                continue;
            }
            if (env->metrics)
                metrics_redis_error(env->metrics, REDIS_ERR_RATELIMIT);
            log_warn("rate-limit store error (%s mode): %s", store_error_name(env->on_store_error),
                     err.message);
            switch (env->on_store_error) {
            case STORE_ERROR_OPEN:
                set(o, ERR_NONE, NULL);
                break;
            case STORE_ERROR_LOCAL:
                localrl_check(env->local, &o->req, env->local_processes, env->now_ms(env->ctx),
                              &o->res);
                set_from_limits(o);
                break;
            case STORE_ERROR_CLOSED:
                set(o, ERR_UNAVAILABLE, "The rate-limit store is unavailable.");
                break;
            }
            return;
        }
        if (!o->res.stale) {
            set_from_limits(o);
            remember_denial(env, dkey, o);
            return;
        }
        src = KS_FRESH;
    }
    log_error("key record still stale after reloads");
    set(o, ERR_UNAVAILABLE, "The key store is inconsistent; retry.");
    o->known = false;
}

/* ---- The stores of a running process ---- */

static int worker_lookup(void *ctx, const char *hash, enum keystore_source src,
                         struct key_record *rec, struct api_error *e)
{
    struct worker *w = ctx;
    return keystore_lookup(w->app->keys, w->redis, hash, src, rec, e);
}

static int worker_decide(void *ctx, struct rl_request *req, struct rl_result *res,
                         struct api_error *err)
{
    struct worker *w = ctx;
    /* A state lost from Redis is seeded from PostgreSQL here, before the
     * decision (keyuse.h); the common path is the one EVALSHA. */
    return keyuse_decide(w->redis, w->app->pg, req, false, res, err);
}

static int64_t wall_ms(void *ctx)
{
    (void)ctx;
    return now_ms();
}

/* The environment of a process's checks; w may be NULL when only the
 * clock and the remembered refusals are used (the event loop). */
static void process_env(struct app *app, struct worker *w, struct check_env *env)
{
    memset(env, 0, sizeof *env);
    env->lookup = worker_lookup;
    env->decide = worker_decide;
    env->now_ms = wall_ms;
    env->ctx = w;
    env->secrets = &app->cfg.secrets;
    env->on_store_error = app->cfg.store_error;
    env->denials = app->denials;
    env->denial_ttl_ms = app->cfg.cache_ttl_ms;
    env->local = app->local;
    env->local_processes = app->cfg.local_processes;
    env->metrics = app->metrics;
}

static enum usage_outcome usage_outcome_of(const struct check_outcome *o)
{
    if (o->status == 200)
        return USAGE_ALLOWED;
    if (o->reason == ERR_RATE_LIMITED)
        return USAGE_RATE_LIMITED;
    if (o->reason == ERR_QUOTA_EXCEEDED)
        return USAGE_QUOTA_EXCEEDED;
    return USAGE_DENIED_OTHER;
}

int check_peak_pct(const struct check_outcome *o)
{
    if (!o->counted)
        return 0;
    /* A denied check changes no window, so its used is what was there
     * before it: the window it hit is full from its holder's view. */
    if (o->res.denied == RL_WINDOW)
        return 100;
    int64_t peak = 0;
    for (size_t i = 0; i < o->req.nwindows && i < RATELIMIT_MAX_WINDOWS; i++) {
        const struct rl_window *w = &o->req.windows[i];
        if (w->limit <= 0 || w->used <= 0)
            continue;
        int64_t pct = w->used >= w->limit ? 100 : w->used * 100 / w->limit;
        if (pct > peak)
            peak = pct;
    }
    return (int)peak;
}

/* Every answered check of a known key is counted: a few stores into the
 * mapped journal, no system call.  An unknown key has no one to bill. */
static void record_usage(struct app *app, int64_t cost, const struct check_outcome *o)
{
    if (!app->pub || !o->known)
        return;
    struct journal_rec rec = {
        .ts_ms = o->counted ? o->res.now_ms : now_ms(),
        .outcome = usage_outcome_of(o),
        .cost = (int)cost,
        .key_id = o->rec.id,
        .key_len = strlen(o->rec.id),
        .endpoint = o->usage_endpoint,
        .endpoint_len = strlen(o->usage_endpoint),
        /* Which balance an allowed check drew on: billingd charges only
         * the current one (docs/usage.md). */
        .has_credits = o->rec.has_remaining,
        .credit_version = o->rec.remaining_version,
        .peak_pct = (uint8_t)check_peak_pct(o),
    };
    (void)journal_append(usagepub_journal(app->pub), &rec);
}

void check_run(struct worker *w, const char *key, size_t keylen, const char *endpoint,
               int64_t cost, struct check_outcome *o)
{
    struct check_env env;
    process_env(w->app, w, &env);
    check_decide(&env, key, keylen, endpoint, cost, o);
    record_usage(w->app, cost, o);
}

/* ---- From the event loop ---- */

static enum check_step finish_async(struct check_async *c)
{
    record_usage(c->app, c->cost, &c->o);
    return CHECK_DONE;
}

static void on_reply(struct redis_async *ra, redisReply *reply, const char *error)
{
    struct check_async *c = ra->arg;
    struct check_outcome *o = &c->o;
    struct api_error err;
    enum check_step step = CHECK_BLOCKING;
    (void)error;
    /* Anything but a plain decision -- a failure, a redirection, a missing
     * script, a stale record, a state to seed from PostgreSQL -- is the
     * synchronous path's to handle, exactly as if it had run from the start. */
    if (reply && !redis_reply_wants_sync(reply) &&
        ratelimit_read_reply(reply, &o->req, &o->res, &err) == 0) {
        if (o->res.stale) {
            keystore_forget(c->app->keys, c->hash);
        } else if (!o->res.missing) {
            struct check_env env;
            process_env(c->app, NULL, &env);
            set_from_limits(o);
            remember_denial(&env, c->dkey, o);
            step = finish_async(c);
        }
    }
    if (reply)
        freeReplyObject(reply);
    if (step == CHECK_BLOCKING) {
        key_record_fini(&o->rec);
        reset(o);
    }
    c->done(c, step);
}

enum check_step check_start(struct app *app, struct check_async *c, const char *key,
                            size_t keylen, const char *endpoint, int64_t cost)
{
    struct check_outcome *o = &c->o;
    reset(o);
    c->app = app;
    c->cost = cost;
    strlcpy_tg(c->endpoint, endpoint, sizeof c->endpoint);
    int which = keys_verify(&app->cfg.secrets, key, keylen, NULL);
    if (which < 0) {
        set_invalid(o);
        return finish_async(c);
    }
    keys_hash_hex(app->cfg.secrets.secret[which], key, keylen, c->hash);
    denial_key(c->hash, c->endpoint, cost, c->dkey, sizeof c->dkey);
    struct check_env env;
    process_env(app, NULL, &env);
    if (replay_denial(&env, c->dkey, o))
        return finish_async(c);
    struct api_error e;
    int found = keystore_lookup_local(app->keys, c->hash, &o->rec, &e);
    if (found != 0) {
        reset(o);
        return CHECK_BLOCKING; /* not in memory; or an error the slow path reports */
    }
    if (!prepare(o, c->endpoint, cost))
        return finish_async(c);
    if (!state_allows(o, now_ms())) {
        if (o->rec.status != KEY_ACTIVE)
            return finish_async(c);
        key_record_fini(&o->rec);
        reset(o);
        return CHECK_BLOCKING; /* confirm a long-cached record before refusing */
    }
    struct rl_call call;
    ratelimit_call_init(&o->req, cost, &call);
    c->ra.done = on_reply;
    c->ra.arg = c;
    if (redis_eval_async(app->redis, ratelimit_script(), call.nkeys, call.keys, call.nargs,
                         call.args, &c->ra) != 0) {
        key_record_fini(&o->rec);
        reset(o);
        return CHECK_BLOCKING;
    }
    return CHECK_SENT;
}

void check_outcome_fini(struct check_outcome *o)
{
    key_record_fini(&o->rec);
}

/* Writes ,"name": */
static void put_key(struct strbuf *b, const char *name)
{
    strbuf_putc(b, ',');
    strbuf_json_str(b, name);
    strbuf_putc(b, ':');
}

static void put_str_or_null(struct strbuf *b, const char *name, const char *v)
{
    put_key(b, name);
    if (v)
        strbuf_json_str(b, v);
    else
        strbuf_put(b, "null", 4);
}

static void put_int(struct strbuf *b, const char *name, int64_t v)
{
    put_key(b, name);
    strbuf_int(b, v);
}

void check_outcome_write_json(const struct check_outcome *o, struct strbuf *b)
{
    const struct key_record *rec = &o->rec;
    strbuf_put(b, o->status == 200 ? "{\"allowed\":true" : "{\"allowed\":false", o->status == 200 ? 15 : 16);
    put_str_or_null(b, "reason", o->reason == ERR_NONE ? NULL : err_name(o->reason));
    put_str_or_null(b, "key_id", o->known ? rec->id : NULL);
    put_str_or_null(b, "owner_id", o->known ? rec->owner_id : NULL);
    put_str_or_null(b, "tier", o->known ? rec->tier : NULL);
    put_key(b, "limits");
    strbuf_putc(b, '[');
    for (size_t i = 0; o->known && i < o->req.nwindows; i++) {
        const struct rl_window *w = &o->req.windows[i];
        strbuf_put(b, i ? ",{\"name\":" : "{\"name\":", i ? 9 : 8);
        strbuf_json_str(b, w->name);
        put_int(b, "limit", w->limit);
        if (o->counted) {
            put_int(b, "remaining", w->remaining);
            put_int(b, "reset_ms", w->reset_ms);
        }
        strbuf_putc(b, '}');
    }
    strbuf_putc(b, ']');
    if (o->known && rec->has_remaining)
        put_int(b, "remaining", o->counted ? o->res.remaining : rec->remaining);
    else
        put_str_or_null(b, "remaining", NULL);
    if (o->counted && o->status == 429) {
        const char *limit = o->res.denied == RL_WINDOW  ? o->req.windows[o->res.denied_window].name
                            : o->res.denied == RL_QUOTA ? "quota"
                                                        : "remaining";
        put_str_or_null(b, "limit", limit);
        if (o->res.has_retry)
            put_int(b, "retry_after_ms", o->res.retry_after_ms);
    }
    if (o->reason != ERR_NONE) {
        put_key(b, "error");
        strbuf_put(b, "{\"code\":", 8);
        strbuf_json_str(b, err_name(o->reason));
        put_str_or_null(b, "message", o->message);
        strbuf_putc(b, '}');
    }
    strbuf_putc(b, '}');
}

void check_outcome_headers(const struct check_outcome *o, char *buf, size_t size)
{
    if (size)
        buf[0] = '\0';
    if (o->counted && (o->status == 200 || o->status == 429))
        ratelimit_headers(&o->req, &o->res, buf, size);
}
