#include "ratelimit.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "redis.h"

/* The script, src/ratelimit.lua with the constants of rlconst.h, embedded at
 * build time (build-aux/embed-lua.sh). */
extern const char ratelimit_lua[];

static struct redis_script script;
static pthread_once_t script_once = PTHREAD_ONCE_INIT;

static void script_init(void)
{
    redis_script_init(&script, ratelimit_lua);
}

const struct redis_script *ratelimit_script(void)
{
    pthread_once(&script_once, script_init);
    return &script;
}

/* tg:{<key id>}:<suffix>, or with per-owner limits
 * tg:{o:<owner tag>}:k:<key id>:<suffix>: every key of a check in one slot. */
static void tag_key(const char *key_id, const char *owner_tag, const char *suffix, char *out,
                    size_t size)
{
    if (owner_tag)
        snprintf(out, size, "tg:{o:%s}:k:%s:%s", owner_tag, key_id, suffix);
    else
        snprintf(out, size, "tg:{%s}:%s", key_id, suffix);
}

static bool tag_ok(const char *tag)
{
    return !tag || (strlen(tag) == RL_OWNER_TAG_LEN &&
                    strspn(tag, "0123456789abcdef") == RL_OWNER_TAG_LEN);
}

static int64_t elem_int(const redisReply *r, size_t i)
{
    return i < r->elements && r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer
                                                                           : 0;
}

static bool in_range(int64_t v, int64_t lo, int64_t hi)
{
    return v >= lo && v <= hi;
}

/* What the script trusts, checked once here rather than on every call in
 * Redis.  The bounds are those of rlconst.h, which the API enforces when
 * tiers and keys are written; this guards against anything else. */
static int request_check(const struct rl_request *req, int64_t cost, struct api_error *err)
{
    size_t idlen = req->key_id ? strlen(req->key_id) : 0;
    if (idlen == 0 || idlen > RL_KEY_ID_MAX || strpbrk(req->key_id, "{}") ||
        !tag_ok(req->owner_tag)) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "ratelimit: invalid key id");
        return -1;
    }
    if (!in_range(cost, 0, RL_COST_MAX) || !in_range(req->version, 0, RL_COUNT_MAX) ||
        (req->has_quota && !in_range(req->quota_included, 0, RL_COUNT_MAX)) ||
        (req->has_remaining && !in_range(req->remaining, 0, RL_COUNT_MAX)) ||
        !in_range(req->remaining_version, 0, RL_COUNT_MAX) || req->nwindows > RL_WINDOWS_MAX ||
        (req->has_refill &&
         (!in_range(req->refill_amount, 0, RL_COUNT_MAX) || !in_range(req->refill_day, 0, 28) ||
          !in_range(req->refill_base, 0, RL_COUNT_MAX))) ||
        (req->has_seed &&
         (!in_range(req->seed_month, 197001, 999912) ||
          !in_range(req->seed_quota_used, 0, RL_COUNT_MAX) ||
          !in_range(req->seed_remaining, 0, RL_COUNT_MAX) ||
          !in_range(req->seed_refill, 0, RL_COUNT_MAX)))) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "ratelimit: request of key %s out of range", req->key_id);
        return -1;
    }
    for (size_t w = 0; w < req->nwindows; w++) {
        const struct rl_window *x = &req->windows[w];
        size_t n = strnlen(x->name, sizeof x->name);
        bool ok = n > 0 && n <= RL_NAME_MAX && strspn(x->name, "abcdefghijklmnopqrstuvwxyz"
                                                               "0123456789_") == n;
        if (!ok || !in_range(x->window_s, 1, RL_WINDOW_S_MAX) ||
            !in_range(x->limit, 1, RL_LIMIT_MAX) || !in_range(x->precision, 1, RL_PRECISION_MAX)) {
            api_error_set(err, ERR_UNAVAILABLE, NULL, "ratelimit: window %zu of key %s is invalid", w, req->key_id);
            return -1;
        }
    }
    return 0;
}

/* Writes v (at least 0) in decimal at out, room for 21 bytes, and returns
 * the end. */
static char *put_dec(char *out, int64_t v)
{
    char tmp[20];
    size_t n = 0;
    uint64_t u = (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n)
        *out++ = tmp[--n];
    *out = '\0';
    return out;
}

/* The next argument: v (at least 0) in hexadecimal, which the script reads
 * with tonumber(s, 16), a cheaper conversion than a decimal one. */
static void add_hex(struct rl_call *call, int *nn, int64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[16], *out = call->num[*nn];
    size_t n = 0;
    uint64_t u = (uint64_t)v;
    do {
        tmp[n++] = digits[u & 15];
        u >>= 4;
    } while (u);
    while (n)
        *out++ = tmp[--n];
    *out = '\0';
    call->args[call->nargs++] = call->num[(*nn)++];
}

/* The next argument: none (a quota or credits that do not apply). */
static void add_none(struct rl_call *call)
{
    call->args[call->nargs++] = "";
}

void ratelimit_call_init(const struct rl_request *req, int64_t cost, struct rl_call *call)
{
    struct api_error err;
    bool valid = request_check(req, cost, &err) == 0;
    const char *key_id = valid ? req->key_id : "invalid";
    const char *owner = valid ? req->owner_tag : NULL;
    tag_key(key_id, owner, "c", call->key[0], sizeof call->key[0]);
    tag_key(key_id, owner, "s", call->key[1], sizeof call->key[1]);
    call->keys[0] = call->key[0];
    call->keys[1] = call->key[1];
    call->nkeys = 2;
    if (owner) {
        snprintf(call->key[2], sizeof call->key[2], "tg:{o:%s}:c", owner);
        call->keys[2] = call->key[2];
        call->nkeys = 3;
    }
    call->nargs = 0;
    int nn = 0;
    if (!valid) {
        /* The script answers an error reply to a call without a cost. */
        for (int i = 0; i < 9; i++)
            add_none(call);
        return;
    }
    add_hex(call, &nn, cost);
    add_hex(call, &nn, req->version);
    if (req->has_quota)
        add_hex(call, &nn, req->quota_included);
    else
        add_none(call);
    add_hex(call, &nn, req->quota_blocks ? 1 : 0);
    if (req->has_remaining)
        add_hex(call, &nn, req->remaining);
    else
        add_none(call);
    add_hex(call, &nn, req->remaining_version);
    if (req->has_seed) {
        add_hex(call, &nn, req->seed_month);
        add_hex(call, &nn, req->seed_quota_used);
        if (req->has_remaining)
            add_hex(call, &nn, req->seed_remaining);
        else
            add_none(call);
    } else {
        for (int i = 0; i < 3; i++)
            add_none(call);
    }
    if (req->has_remaining && req->has_refill) {
        add_hex(call, &nn, req->refill_amount);
        add_hex(call, &nn, req->refill_day);
        add_hex(call, &nn, req->refill_base);
    } else {
        add_none(call);
        add_hex(call, &nn, 0);
        add_hex(call, &nn, 0);
    }
    add_hex(call, &nn, req->has_seed ? req->seed_refill : 0);
    /* Which windows count in the owner's record set: a '1' per such window
     * ('' when none is, the common case). */
    size_t nown = 0;
    for (size_t w = 0; owner && w < req->nwindows; w++) {
        call->owners[w] = req->windows[w].per_owner ? '1' : '0';
        nown += req->windows[w].per_owner;
    }
    call->owners[nown ? req->nwindows : 0] = '\0';
    call->args[call->nargs++] = call->owners;
    for (size_t w = 0; w < req->nwindows; w++) {
        const struct rl_window *x = &req->windows[w];
        /* The window's identity: its counts are kept under this name, so a
         * changed length or precision starts afresh. */
        char *p = call->id[w];
        size_t n = strlen(x->name);
        memcpy(p, x->name, n);
        p[n] = ':';
        p = put_dec(p + n + 1, x->window_s);
        *p++ = ':';
        put_dec(p, x->precision);
        call->args[call->nargs++] = call->id[w];
        add_hex(call, &nn, x->limit);
        add_hex(call, &nn, (x->window_s * 1000 + x->precision - 1) / x->precision);
        add_hex(call, &nn, x->precision);
    }
}

int ratelimit_read_reply(const redisReply *r, struct rl_request *req, struct rl_result *res,
                         struct api_error *err)
{
    memset(res, 0, sizeof *res);
    if (r->type == REDIS_REPLY_ERROR) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "ratelimit script: %s", r->str);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "ratelimit script: unexpected reply");
        return -1;
    }
    if (elem_int(r, 0) == 2 || elem_int(r, 0) == 3) {
        res->stale = elem_int(r, 0) == 2;
        res->missing = elem_int(r, 0) == 3;
        res->now_ms = elem_int(r, 1);
        return 0;
    }
    if (r->elements != 8 + 2 * req->nwindows) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "ratelimit script: unexpected reply length");
        return -1;
    }
    res->now_ms = elem_int(r, 1);
    res->denied = (enum rl_denied)elem_int(r, 2);
    res->denied_window = (int)elem_int(r, 3) - 1;
    res->retry_after_ms = elem_int(r, 4);
    res->has_retry = res->retry_after_ms >= 0 && res->denied != RL_ALLOWED;
    res->quota_used = elem_int(r, 5);
    res->period_end_ms = elem_int(r, 6);
    res->remaining = elem_int(r, 7);
    for (size_t w = 0; w < req->nwindows; w++) {
        struct rl_window *x = &req->windows[w];
        x->used = elem_int(r, 8 + 2 * w);
        x->reset_ms = elem_int(r, 9 + 2 * w);
        x->remaining = x->limit > x->used ? x->limit - x->used : 0;
    }
    return 0;
}

/* Runs the script with this cost argument (0 peeks). */
static int run_script(struct redis_conn *redis, struct rl_request *req, int64_t cost,
                      struct rl_result *res, struct api_error *err)
{
    memset(res, 0, sizeof *res);
    if (request_check(req, cost, err) != 0)
        return -1;
    struct rl_call call;
    ratelimit_call_init(req, cost, &call);
    redisReply *r = redis_eval(redis, ratelimit_script(), call.nkeys, call.keys, call.nargs,
                               call.args, err);
    if (!r)
        return -1;
    int rc = ratelimit_read_reply(r, req, res, err);
    freeReplyObject(r);
    return rc;
}

int ratelimit_check(struct redis_conn *redis, struct rl_request *req, struct rl_result *res,
                    struct api_error *err)
{
    /* A cost below 1 would be a peek, or with another script a refund. */
    if (req->cost < 1 || req->cost > RL_COST_MAX) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "ratelimit: cost %lld out of range", (long long)req->cost);
        return -1;
    }
    return run_script(redis, req, req->cost, res, err);
}

int ratelimit_peek(struct redis_conn *redis, struct rl_request *req, struct rl_result *res,
                   struct api_error *err)
{
    return run_script(redis, req, 0, res, err);
}

static int publish_one(struct redis_conn *redis, const char *sk, const char *v,
                       struct api_error *err)
{
    /* Only ever raise the version: a slow publisher must not lower it. */
    static const char *const argv0[] = {"EVAL",
                                        "local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')\n"
                                        "if tonumber(ARGV[1]) > v then redis.call('HSET', KEYS[1], 'v', ARGV[1]) end\n"
                                        "return 1",
                                        "1"};
    const char *argv[] = {argv0[0], argv0[1], argv0[2], sk, v};
    redisReply *r = redis_command(redis, 5, argv, NULL, err);
    if (!r)
        return -1;
    int rc = r->type == REDIS_REPLY_ERROR ? -1 : 0;
    if (rc)
        api_error_set(err, ERR_UNAVAILABLE, NULL, "version publish: %s", r->str);
    freeReplyObject(r);
    return rc;
}

/* One place of an erased key's state (the key's tag, or the owner's):
 * windows and state deleted, the version alone left for ttl_ms; at the
 * owner's place, the owner's shared windows too (the erasure takes every
 * key of the owner).  One slot, one atomic script. */
static int erase_at(struct redis_conn *redis, const char *key_id, const char *owner_tag,
                    const char *v, const char *ttl, struct api_error *err)
{
    char wk[RL_STATE_KEY_MAX], sk[RL_STATE_KEY_MAX], ow[RL_STATE_KEY_MAX];
    tag_key(key_id, owner_tag, "c", wk, sizeof wk);
    tag_key(key_id, owner_tag, "s", sk, sizeof sk);
    if (owner_tag)
        snprintf(ow, sizeof ow, "tg:{o:%s}:c", owner_tag);
    else
        snprintf(ow, sizeof ow, "%s", wk);
    const char *argv[] = {"EVAL",
                          "redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])\n"
                          "redis.call('HSET', KEYS[2], 'v', ARGV[1])\n"
                          "redis.call('PEXPIRE', KEYS[2], ARGV[2])\n"
                          "return 1",
                          "3", wk, sk, ow, v, ttl};
    redisReply *r = redis_command(redis, 8, argv, NULL, err);
    if (!r)
        return -1;
    int rc = r->type == REDIS_REPLY_ERROR ? -1 : 0;
    if (rc)
        api_error_set(err, ERR_UNAVAILABLE, NULL, "erase: %s", r->str);
    freeReplyObject(r);
    return rc;
}

int ratelimit_erase(struct redis_conn *redis, const char *key_id, const char *owner_tag,
                    int64_t version, int64_t ttl_ms, struct api_error *err)
{
    char sk[RL_STATE_KEY_MAX], v[24], ttl[24];
    if (ratelimit_state_key(key_id, owner_tag, sk, sizeof sk) != 0) {
        api_error_set(err, ERR_INVALID_ARGUMENT, NULL, "erase: invalid key id");
        return -1;
    }
    snprintf(v, sizeof v, "%lld", (long long)version);
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
    if (erase_at(redis, key_id, NULL, v, ttl, err) != 0)
        return -1;
    return owner_tag ? erase_at(redis, key_id, owner_tag, v, ttl, err) : 0;
}

int ratelimit_publish_version(struct redis_conn *redis, const char *key_id,
                              const char *owner_tag, int64_t version, struct api_error *err)
{
    char sk[RL_STATE_KEY_MAX], v[24];
    if (ratelimit_state_key(key_id, NULL, sk, sizeof sk) != 0 || !tag_ok(owner_tag)) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "version publish: invalid key id");
        return -1;
    }
    snprintf(v, sizeof v, "%lld", (long long)version);
    if (publish_one(redis, sk, v, err) != 0)
        return -1;
    if (!owner_tag)
        return 0;
    tag_key(key_id, owner_tag, "s", sk, sizeof sk);
    return publish_one(redis, sk, v, err);
}

int ratelimit_clear_other(struct redis_conn *redis, const struct rl_request *req,
                          struct api_error *err)
{
    const char *other = req->owner_tag ? NULL : req->key_owner_tag;
    char sk[RL_STATE_KEY_MAX];
    if (!req->owner_tag && !other)
        return 0;
    if (ratelimit_state_key(req->key_id, other, sk, sizeof sk) != 0) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "state clear: invalid key id");
        return -1;
    }
    static const char *const argv0[] = {"EVAL",
                                        "local f = redis.call('HKEYS', KEYS[1])\n"
                                        "for i = 1, #f do\n"
                                        "  if f[i] ~= 'v' then redis.call('HDEL', KEYS[1], f[i]) end\n"
                                        "end\n"
                                        "return 1",
                                        "1"};
    const char *argv[] = {argv0[0], argv0[1], argv0[2], sk};
    redisReply *r = redis_command(redis, 4, argv, NULL, err);
    if (!r)
        return -1;
    int rc = r->type == REDIS_REPLY_ERROR ? -1 : 0;
    if (rc)
        api_error_set(err, ERR_UNAVAILABLE, NULL, "state clear: %s", r->str);
    freeReplyObject(r);
    return rc;
}

int ratelimit_state_key(const char *key_id, const char *owner_tag, char *out, size_t size)
{
    size_t n = key_id ? strlen(key_id) : 0;
    if (n == 0 || n > RL_KEY_ID_MAX || strpbrk(key_id, "{}") || !tag_ok(owner_tag) ||
        size < RL_STATE_KEY_MAX)
        return -1;
    tag_key(key_id, owner_tag, "s", out, size);
    return 0;
}

int ratelimit_tightest(const struct rl_request *req)
{
    int best = -1;
    for (size_t i = 0; i < req->nwindows; i++) {
        const struct rl_window *x = &req->windows[i];
        if (best < 0 || x->remaining < req->windows[best].remaining ||
            (x->remaining == req->windows[best].remaining &&
             x->reset_ms < req->windows[best].reset_ms))
            best = (int)i;
    }
    return best;
}

static int64_t ceil_s(int64_t ms)
{
    return ms <= 0 ? 0 : (ms + 999) / 1000;
}

void ratelimit_headers(const struct rl_request *req, const struct rl_result *res, char *buf,
                       size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
#define APPEND(...)                                                         \
    do {                                                                    \
        if (n < size) {                                                     \
            int w_ = snprintf(buf + n, size - n, __VA_ARGS__);              \
            n += w_ > 0 ? (size_t)w_ : 0;                                   \
        }                                                                   \
    } while (0)
    if (req->nwindows > 0) {
        APPEND("RateLimit-Policy: ");
        for (size_t i = 0; i < req->nwindows; i++)
            APPEND("%s\"%s\";q=%lld;w=%lld", i ? ", " : "", req->windows[i].name,
                   (long long)req->windows[i].limit, (long long)req->windows[i].window_s);
        APPEND("\r\n");
        const struct rl_window *t = &req->windows[ratelimit_tightest(req)];
        APPEND("RateLimit: \"%s\";r=%lld;t=%lld\r\n", t->name, (long long)t->remaining,
               (long long)ceil_s(t->reset_ms));
        APPEND("X-RateLimit-Limit: %lld\r\nX-RateLimit-Remaining: %lld\r\n"
               "X-RateLimit-Reset: %lld\r\n",
               (long long)t->limit, (long long)t->remaining, (long long)ceil_s(t->reset_ms));
    }
    if (res->denied != RL_ALLOWED && res->has_retry)
        APPEND("Retry-After: %lld\r\n", (long long)ceil_s(res->retry_after_ms));
#undef APPEND
    if (n >= size && size > 0)
        buf[0] = '\0';
}
