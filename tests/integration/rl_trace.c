/* rl_trace: runs the Redis decision script and the local fallback limiter
 * (src/check/localrl.c) on one trace and compares every decision.
 *
 *   TOLLGATE_CONFIG=run/tollgate.conf tests/integration/rl_trace
 *
 * It connects to Redis as the configuration's [redis] section says (TLS,
 * user and password included), with the TOLLGATE_REDIS_* environment
 * overrides the responders also honour: TOLLGATE_REDIS_NODES (a cluster's
 * seed nodes) replaces host and port.
 *
 * The trace is a pseudo-random sequence of checks (and a few peeks) with
 * costs and real pauses, spread over keys whose windows differ in number,
 * length, limit and precision.  Each check goes through ratelimit_check, so
 * it is the script as the responders send it; localrl then decides the same
 * request at the Redis time the script answered with, the pool size set to 1
 * so that it enforces the whole limit.  Everything localrl decides must
 * match: refusal, refusing window, retry time, and each window's use and
 * reset.  (localrl keeps no quota or credits, so the trace has none.)  At
 * the end the admitted checks of each key are checked against the promise
 * itself: no interval of a window's length holds more admitted cost than
 * its limit.
 *
 * Then the refill intervals: for a daily refill and a monthly one on each
 * day 1-28, the interval the script refills in and the next one it names
 * as retry time must be those of src/check/refill.c at the script's time.
 *
 * Prints "N checks, N mismatches" and exits 1 on any mismatch or broken
 * promise, 2 when it cannot run.  It takes about 10 s and stops early
 * past 15 s.  TOLLGATE_RL_TRACE_SEED=<number> repeats a trace. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "localrl.h"
#include "log.h"
#include "ratelimit.h"
#include "redis.h"
#include "refill.h"
#include "rtls.h"
#include "util.h"

#define KEYS 6
#define STEPS 1500
#define DEADLINE_MS 15000
#define SHOW_MAX 10

struct admitted {
    int64_t at_ms, cost;
};

struct trace_key {
    char id[48];
    struct rl_request shape; /* key id and windows; no quota, no credits */
    struct admitted *log;
    size_t nlog;
};

/* xorshift64*: a small generator whose sequence a seed repeats. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ULL;
}

static int64_t between(uint64_t *st, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(next_random(st) % (uint64_t)(hi - lo + 1));
}

/* Windows of 1 to 3 s, so that the trace sees them slide, with the
 * precisions that matter: 1 (two buckets), odd divisions and 10 and 60. */
static void draw_key(struct trace_key *k, uint64_t *st, uint64_t seed, int index)
{
    static const int64_t precisions[] = {1, 2, 3, 7, 10, 10, 10, 60};
    memset(k, 0, sizeof *k);
    snprintf(k->id, sizeof k->id, "rltrace_%016" PRIx64 "_%d", seed, index);
    k->shape.key_id = k->id;
    k->shape.version = 1;
    k->shape.nwindows = (size_t)between(st, 1, 4);
    if (index == 0)
        k->shape.nwindows = 2; /* the common case: two windows at precision 10 */
    for (size_t w = 0; w < k->shape.nwindows; w++) {
        struct rl_window *x = &k->shape.windows[w];
        snprintf(x->name, sizeof x->name, "w%zu", w);
        x->window_s = between(st, 1, 3);
        x->limit = between(st, 10, 150);
        x->precision = index == 0 ? 10 : precisions[between(st, 0, 7)];
    }
    k->log = xcalloc(STEPS, sizeof *k->log);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool same_decision(const struct rl_request *a, const struct rl_result *ra,
                          const struct rl_request *b, const struct rl_result *rb)
{
    if (ra->denied != rb->denied || ra->has_retry != rb->has_retry)
        return false;
    if (ra->denied == RL_WINDOW && ra->denied_window != rb->denied_window)
        return false;
    if (ra->has_retry && ra->retry_after_ms != rb->retry_after_ms)
        return false;
    for (size_t w = 0; w < a->nwindows; w++) {
        const struct rl_window *x = &a->windows[w], *y = &b->windows[w];
        if (x->used != y->used || x->remaining != y->remaining || x->reset_ms != y->reset_ms)
            return false;
    }
    return true;
}

static void show_one(const char *who, const struct rl_request *q, const struct rl_result *r)
{
    fprintf(stderr, "  %-6s denied %d window %d retry %s%lld;", who, (int)r->denied,
            r->denied_window, r->has_retry ? "" : "none ", (long long)r->retry_after_ms);
    for (size_t w = 0; w < q->nwindows; w++)
        fprintf(stderr, " [%s used %lld rem %lld reset %lld]", q->windows[w].name,
                (long long)q->windows[w].used, (long long)q->windows[w].remaining,
                (long long)q->windows[w].reset_ms);
    fprintf(stderr, "\n");
}

static void show_mismatch(int step, const struct trace_key *k, int64_t cost, int64_t now,
                          const struct rl_request *q, const struct rl_result *r,
                          const struct rl_request *lq, const struct rl_result *lr)
{
    fprintf(stderr, "mismatch at step %d, key %s, cost %lld, now %lld; windows:", step, k->id,
            (long long)cost, (long long)now);
    for (size_t w = 0; w < k->shape.nwindows; w++)
        fprintf(stderr, " %s %llds/%lld/p%lld", k->shape.windows[w].name,
                (long long)k->shape.windows[w].window_s, (long long)k->shape.windows[w].limit,
                (long long)k->shape.windows[w].precision);
    fprintf(stderr, "\n");
    show_one("script", q, r);
    show_one("localrl", lq, lr);
}

/* The promise on the admitted checks of k: any interval of a window's
 * length that holds admitted cost starts at an admitted check, so checking
 * those intervals suffices.  Returns the number of broken windows. */
static int broken_windows(const struct trace_key *k)
{
    int broken = 0;
    for (size_t w = 0; w < k->shape.nwindows; w++) {
        const struct rl_window *x = &k->shape.windows[w];
        for (size_t i = 0; i < k->nlog; i++) {
            int64_t sum = 0;
            for (size_t j = i; j < k->nlog && k->log[j].at_ms < k->log[i].at_ms + x->window_s * 1000;
                 j++)
                sum += k->log[j].cost;
            if (sum > x->limit) {
                fprintf(stderr, "promise broken: key %s window %s: %lld admitted in %lld s from %lld\n",
                        k->id, x->name, (long long)sum, (long long)x->window_s,
                        (long long)k->log[i].at_ms);
                broken++;
                break;
            }
        }
    }
    return broken;
}

/* The client the configuration describes (TOLLGATE_CONFIG, then the
 * TOLLGATE_REDIS_* overrides), TLS and login included, or NULL. */
static struct redis_conn *connect_redis(struct config *cfg, struct rtls **tls)
{
    extern char **environ;
    const char *path = getenv("TOLLGATE_CONFIG");
    struct api_error err;
    if (!path || !*path) {
        fprintf(stderr, "rl_trace: TOLLGATE_CONFIG names no configuration\n");
        return NULL;
    }
    if (config_load(cfg, path, environ, &err) != 0) {
        fprintf(stderr, "rl_trace: %s\n", err.message);
        return NULL;
    }
    cfg->redis_timeout_ms = 2000;
    *tls = rtls_from_config(cfg, &err);
    struct redis_conn *rc = NULL;
    if (!cfg->redis_tls || *tls)
        rc = redis_conn_from_config(NULL, cfg, *tls, &err);
    if (!rc) {
        fprintf(stderr, "rl_trace: %s\n", err.message);
        return NULL;
    }
    if (cfg->redis_nodes[0])
        printf("rl_trace: cluster %s%s\n", cfg->redis_nodes, cfg->redis_tls ? " (TLS)" : "");
    else
        printf("rl_trace: redis %s:%lld%s\n", cfg->redis_host, (long long)cfg->redis_port,
               cfg->redis_tls ? " (TLS)" : "");
    return rc;
}

static uint64_t trace_seed(void)
{
    uint64_t seed;
    const char *env = getenv("TOLLGATE_RL_TRACE_SEED");
    int64_t given;
    if (env && parse_int64(env, 1, INT64_MAX, &given) == 0)
        return (uint64_t)given;
    do
        random_bytes(&seed, sizeof seed);
    while (seed == 0 || seed > INT64_MAX);
    return seed;
}

static void delete_keys(struct redis_conn *rc, const struct trace_key *k)
{
    char b[96], s[96];
    snprintf(b, sizeof b, "tg:{%.*s}:c", (int)sizeof k->id, k->id);
    snprintf(s, sizeof s, "tg:{%.*s}:s", (int)sizeof k->id, k->id);
    const char *argv[] = {"DEL", b, s};
    struct api_error err;
    redisReply *r = redis_command(rc, 3, argv, NULL, &err);
    if (r)
        freeReplyObject(r);
}

/* The refill field ri of a state hash, or -1. */
static int64_t stored_interval(struct redis_conn *rc, const char *key_id)
{
    char sk[RL_STATE_KEY_MAX];
    int64_t v = -1;
    if (ratelimit_state_key(key_id, NULL, sk, sizeof sk) != 0)
        return -1;
    const char *argv[] = {"HGET", sk, "ri"};
    struct api_error err;
    redisReply *r = redis_command(rc, 3, argv, NULL, &err);
    if (r && r->type == REDIS_REPLY_STRING && parse_int64(r->str, 0, INT64_MAX, &v) != 0)
        v = -1;
    if (r)
        freeReplyObject(r);
    return v;
}

/* Day 0: daily; 1-28: monthly on that day.  Returns the mismatches. */
static int refill_schedule(struct redis_conn *rc, uint64_t seed, int day)
{
    struct trace_key k;
    memset(&k, 0, sizeof k);
    snprintf(k.id, sizeof k.id, "rltrace-rf-%" PRIu64 "-%d", seed % 1000000, day);
    struct key_refill rf = {true, 5, day};
    struct rl_request q;
    struct rl_result res;
    struct api_error err;
    int bad = 0;
    memset(&q, 0, sizeof q);
    q.key_id = k.id;
    q.cost = 1;
    q.has_remaining = true;
    q.remaining_version = 1;
    q.has_refill = true;
    q.refill_amount = rf.amount;
    q.refill_day = day;
    /* A state seeded with an empty balance of an old interval: the script
     * refills it in the current one. */
    q.has_seed = true;
    q.seed_month = utc_month(now_ms());
    if (ratelimit_check(rc, &q, &res, &err) != 0 || res.denied != RL_ALLOWED || res.remaining != 4 ||
        stored_interval(rc, k.id) != refill_start(&rf, res.now_ms)) {
        fprintf(stderr, "refill day %d: refill at %lld: denied %d remaining %lld interval %lld, want %lld\n",
                day, (long long)res.now_ms, (int)res.denied, (long long)res.remaining,
                (long long)stored_interval(rc, k.id), (long long)refill_start(&rf, res.now_ms));
        bad++;
    }
    /* An empty balance set in this interval: refused until the next one. */
    q.has_seed = false;
    q.remaining_version = 2;
    q.refill_base = refill_start(&rf, res.now_ms);
    if (ratelimit_check(rc, &q, &res, &err) != 0 || res.denied != RL_REMAINING || !res.has_retry ||
        res.now_ms + res.retry_after_ms != refill_next(&rf, refill_start(&rf, res.now_ms))) {
        fprintf(stderr, "refill day %d: at %lld: denied %d retry %lld, next interval %lld\n", day,
                (long long)res.now_ms, (int)res.denied, (long long)res.retry_after_ms,
                (long long)refill_next(&rf, refill_start(&rf, res.now_ms)));
        bad++;
    }
    delete_keys(rc, &k);
    return bad;
}

int main(void)
{
    log_open(NULL, LOG_ERROR);
    struct config cfg;
    struct rtls *tls = NULL;
    struct redis_conn *rc = connect_redis(&cfg, &tls);
    if (!rc) {
        rtls_free(tls);
        config_fini(&cfg);
        return 2;
    }
    uint64_t seed = trace_seed(), st = seed;
    printf("rl_trace: seed %" PRIu64 "\n", seed);
    static struct trace_key keys[KEYS];
    for (int i = 0; i < KEYS; i++)
        draw_key(&keys[i], &st, seed, i);
    struct localrl *local = localrl_new(1024);

    int checks = 0, peeks = 0, retry = 0, never = 0, mismatches = 0, status = 0, step;
    int64_t start = mono_ms(), last_now = 0;
    for (step = 0; step < STEPS && mono_ms() - start < DEADLINE_MS; step++) {
        struct trace_key *k = &keys[between(&st, 0, KEYS - 1)];
        int64_t r = between(&st, 0, 99);
        int64_t cost = r < 85 ? between(&st, 1, 3) : r < 97 ? between(&st, 4, 10) : between(&st, 11, 60);
        bool peek = between(&st, 0, 19) == 0;
        struct rl_request q = k->shape, lq;
        struct rl_result res, lres;
        struct api_error err;
        q.cost = cost;
        int rcode = peek ? ratelimit_peek(rc, &q, &res, &err) : ratelimit_check(rc, &q, &res, &err);
        if (rcode != 0) {
            fprintf(stderr, "rl_trace: step %d: %s\n", step, err.message);
            status = 2;
            break;
        }
        if (res.stale || res.now_ms < last_now) {
            fprintf(stderr, "rl_trace: step %d: %s\n", step,
                    res.stale ? "unexpected stale answer" : "Redis time went back");
            status = 2;
            break;
        }
        last_now = res.now_ms;
        lq = k->shape;
        lq.cost = peek ? 0 : cost;
        localrl_check(local, &lq, 1, res.now_ms, &lres);
        checks++;
        if (!same_decision(&q, &res, &lq, &lres)) {
            if (mismatches++ < SHOW_MAX)
                show_mismatch(step, k, peek ? 0 : cost, res.now_ms, &q, &res, &lq, &lres);
        }
        if (peek)
            peeks++;
        else if (res.denied == RL_ALLOWED)
            k->log[k->nlog++] = (struct admitted){res.now_ms, cost};
        else if (res.has_retry)
            retry++;
        else
            never++;
        /* Mostly bursts; now and then a pause of up to 20 or 120 ms. */
        int64_t pause = between(&st, 0, 99);
        if (pause >= 70)
            sleep_ms(pause < 92 ? between(&st, 1, 20) : between(&st, 21, 120));
    }
    int refill_bad = 0;
    for (int day = 0; status == 0 && day <= REFILL_DAY_MAX; day++)
        refill_bad += refill_schedule(rc, seed, day);
    printf("rl_trace: refill intervals of %d schedules, %d mismatches\n", REFILL_DAY_MAX + 1,
           refill_bad);
    mismatches += refill_bad;
    int broken = 0, admitted = 0;
    for (int i = 0; i < KEYS; i++) {
        broken += broken_windows(&keys[i]);
        admitted += (int)keys[i].nlog;
        delete_keys(rc, &keys[i]);
        free(keys[i].log);
    }
    localrl_free(local);
    redis_conn_free(rc);
    rtls_free(tls);
    config_fini(&cfg);
    printf("rl_trace: %d admitted, %d denied with a retry time, %d without, %d peeks\n", admitted,
           retry, never, peeks);
    printf("%d checks in %lld ms, %d mismatches, %d broken windows\n", checks,
           (long long)(mono_ms() - start), mismatches, broken);
    log_close();
    if (status)
        return status;
    return mismatches || broken ? 1 : 0;
}
