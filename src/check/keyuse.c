/* keyuse: see keyuse.h. */
#include "keyuse.h"

#include <hiredis/hiredis.h>
#include <string.h>

#include "pg.h"
#include "redis.h"

int keyuse_load(struct pg_conn *conn, const char *key_id, int64_t month, struct keyuse *u,
                struct api_error *e)
{
    memset(u, 0, sizeof *u);
    char m[24];
    snprintf(m, sizeof m, "%lld", (long long)month);
    const char *p[] = {key_id, m};
    /* Both tables by their primary key; keys by its own. */
    struct pg_res *r = pg_query(
        conn,
        "SELECT k.remaining, k.remaining_version,"
        " coalesce((SELECT c.used FROM key_credit_use c"
        "           WHERE c.key_id = k.id AND c.rv = k.remaining_version), 0),"
        " coalesce((SELECT q.used FROM key_quota_use q"
        "           WHERE q.key_id = k.id AND q.month = $2::integer), 0)"
        " FROM keys k WHERE k.id = $1",
        2, p, e);
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

bool keyuse_seed(struct rl_request *req, const struct keyuse *u, int64_t month)
{
    if (!u->found || u->has_remaining != req->has_remaining ||
        (u->has_remaining && u->remaining_version != req->remaining_version))
        return false;
    req->has_seed = true;
    req->seed_month = month;
    req->seed_quota_used = clamp(u->quota_used);
    req->seed_remaining = u->has_remaining ? clamp(u->remaining - u->credits_used) : 0;
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
    struct keyuse u;
    struct pg_conn *conn = pg_acquire(pg, err);
    if (!conn)
        return -1;
    int rc = keyuse_load(conn, req->key_id, month, &u, err);
    pg_release(pg, conn);
    if (rc != 0)
        return -1;
    if (!keyuse_seed(req, &u, month)) {
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

int keyuse_live_remaining(struct redis_conn *redis, const char *key_id,
                          int64_t remaining_version, int64_t *out, struct api_error *e)
{
    char sk[RL_KEY_ID_MAX + 8];
    if (ratelimit_state_key(key_id, sk, sizeof sk) != 0) {
        api_error_set(e, ERR_UNAVAILABLE, NULL, "keyuse: invalid key id");
        return -1;
    }
    const char *argv[] = {"HMGET", sk, "rv", "r"};
    redisReply *r = redis_command(redis, 4, argv, NULL, e);
    if (!r)
        return -1;
    int rc = 0;
    int64_t rv = -1, left = -1;
    if (r->type == REDIS_REPLY_ERROR) {
        api_error_set(e, ERR_UNAVAILABLE, NULL, "keyuse: %s", r->str);
        rc = -1;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               r->element[0]->type == REDIS_REPLY_STRING &&
               r->element[1]->type == REDIS_REPLY_STRING &&
               parse_int64(r->element[0]->str, 0, RL_COUNT_MAX, &rv) == 0 &&
               parse_int64(r->element[1]->str, 0, RL_COUNT_MAX, &left) == 0 &&
               rv == remaining_version) {
        *out = left;
        rc = 1;
    }
    freeReplyObject(r);
    return rc;
}
