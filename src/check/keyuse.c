/* keyuse: see keyuse.h. */
#include "keyuse.h"

#include <hiredis/hiredis.h>
#include <string.h>

#include "pg.h"
#include "redis.h"
#include "refill.h"

int keyuse_load(struct pg_conn *conn, const char *key_id, int64_t month, int64_t refill,
                struct keyuse *u, struct api_error *e)
{
    memset(u, 0, sizeof *u);
    char m[24], ri[24];
    snprintf(m, sizeof m, "%lld", (long long)month);
    snprintf(ri, sizeof ri, "%lld", (long long)refill);
    const char *p[] = {key_id, m, ri};
    /* Both tables by their primary key; keys by its own. */
    struct pg_res *r = pg_query(
        conn,
        "SELECT k.remaining, k.remaining_version,"
        " coalesce((SELECT c.used FROM key_credit_use c"
        "           WHERE c.key_id = k.id AND c.rv = k.remaining_version"
        "             AND c.ri = $3::bigint), 0),"
        " coalesce((SELECT q.used FROM key_quota_use q"
        "           WHERE q.key_id = k.id AND q.month = $2::integer), 0)"
        " FROM keys k WHERE k.id = $1",
        3, p, e);
    if (!r)
        return -1;
    if (pg_nrows(r) == 1) {
        u->found = true;
        u->has_remaining = !pg_isnull(r, 0, 0);
        u->remaining = u->has_remaining ? pg_int(r, 0, 0) : 0;
        u->remaining_version = pg_int(r, 0, 1);
        u->credits_used = pg_int(r, 0, 2);
        u->quota_used = pg_int(r, 0, 3);
    }
    pg_res_free(r);
    return 0;
}

static int64_t clamp(int64_t v)
{
    return v < 0 ? 0 : v > RL_COUNT_MAX ? RL_COUNT_MAX : v;
}

int64_t keyuse_refill_start(const struct rl_request *req, int64_t now_ms)
{
    if (!req->has_remaining || !req->has_refill)
        return 0;
    struct key_refill r = {true, req->refill_amount, (int)req->refill_day};
    return refill_start(&r, now_ms);
}

bool keyuse_seed(struct rl_request *req, const struct keyuse *u, int64_t month, int64_t refill)
{
    if (!u->found || u->has_remaining != req->has_remaining ||
        (u->has_remaining && u->remaining_version != req->remaining_version))
        return false;
    /* The same rule as the script's: a balance set in an earlier interval
     * has been refilled since. */
    int64_t balance = req->has_refill && refill > req->refill_base ? req->refill_amount
                                                                    : u->remaining;
    req->has_seed = true;
    req->seed_month = month;
    req->seed_quota_used = clamp(u->quota_used);
    req->seed_remaining = u->has_remaining ? clamp(balance - u->credits_used) : 0;
    req->seed_refill = refill;
    return true;
}

static int run(struct redis_conn *redis, struct rl_request *req, bool peek, struct rl_result *res,
               struct api_error *err)
{
    return peek ? ratelimit_peek(redis, req, res, err) : ratelimit_check(redis, req, res, err);
}

int keyuse_decide(struct redis_conn *redis, struct pg_pool *pg, struct rl_request *req, bool peek,
                  struct rl_result *res, struct api_error *err)
{
    req->has_seed = false;
    if (run(redis, req, peek, res, err) != 0)
        return -1;
    if (!res->missing)
        return 0;
    /* The cold path: once per key after its state went, and each process
     * that races here reads the same rows; the script keeps the first seed. */
    int64_t month = utc_month(res->now_ms), now = res->now_ms;
    int64_t refill = keyuse_refill_start(req, now);
    /* A state at the other place (before a tier changed "per") would be
     * stale if the key moved back there: it goes before this one is seeded. */
    if (ratelimit_clear_other(redis, req, err) != 0)
        return -1;
    struct keyuse u;
    struct pg_conn *conn = pg_acquire(pg, err);
    if (!conn)
        return -1;
    int rc = keyuse_load(conn, req->key_id, month, refill, &u, err);
    pg_release(pg, conn);
    if (rc != 0)
        return -1;
    if (!keyuse_seed(req, &u, month, refill)) {
        memset(res, 0, sizeof *res);
        res->stale = true;
        res->now_ms = now;
        return 0;
    }
    rc = run(redis, req, peek, res, err);
    req->has_seed = false;
    if (rc == 0 && res->missing) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "ratelimit: the state of key %s was not seeded",
                      req->key_id);
        return -1;
    }
    return rc;
}

int keyuse_live_remaining(struct redis_conn *redis, const char *key_id, const char *owner_tag,
                          int64_t remaining_version, int64_t refill, int64_t *out,
                          struct api_error *e)
{
    char sk[RL_STATE_KEY_MAX];
    if (ratelimit_state_key(key_id, owner_tag, sk, sizeof sk) != 0) {
        api_error_set(e, ERR_UNAVAILABLE, NULL, "keyuse: invalid key id");
        return -1;
    }
    const char *argv[] = {"HMGET", sk, "rv", "r", "ri"};
    redisReply *r = redis_command(redis, 5, argv, NULL, e);
    if (!r)
        return -1;
    int rc = 0;
    int64_t rv = -1, left = -1, ri = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        api_error_set(e, ERR_UNAVAILABLE, NULL, "keyuse: %s", r->str);
        rc = -1;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
               r->element[0]->type == REDIS_REPLY_STRING &&
               r->element[1]->type == REDIS_REPLY_STRING &&
               parse_int64(r->element[0]->str, 0, RL_COUNT_MAX, &rv) == 0 &&
               parse_int64(r->element[1]->str, 0, RL_COUNT_MAX, &left) == 0 &&
               (r->element[2]->type != REDIS_REPLY_STRING ||
                parse_int64(r->element[2]->str, 0, RL_COUNT_MAX, &ri) == 0) &&
               rv == remaining_version && ri == refill) {
        *out = left;
        rc = 1;
    }
    freeReplyObject(r);
    return rc;
}
