/* keyuse: a key's durable use read back from PostgreSQL (ledger.h writes
 * it), for the two places that need more than Redis holds:
 *  - a decision whose Redis state is missing (never written, or lost to a
 *    restart, a flush, a failover or an eviction): the script answers
 *    "missing" instead of deciding, the state is seeded from here and the
 *    decision taken again (ratelimit.h, has_seed);
 *  - the remaining credits the API shows: Redis's when it holds the current
 *    balance, else PostgreSQL's.
 * The common check (state present) never comes here. */
#ifndef TOLLGATE_KEYUSE_H
#define TOLLGATE_KEYUSE_H

#include <stdbool.h>
#include <stdint.h>

#include "ratelimit.h"
#include "util.h"

struct pg_conn;
struct pg_pool;
struct redis_conn;

struct keyuse {
    bool found;                /* the key exists */
    bool has_remaining;        /* it has a credit balance */
    int64_t remaining;         /* as last set through the API */
    int64_t remaining_version; /* of that balance */
    int64_t credits_used;      /* recorded against that balance */
    int64_t quota_used;        /* allowed cost recorded in the month asked for */
};

/* One indexed read of key_id's use in month (YYYYMM, utc_month) into u
 * (u->found false for an unknown key); credits_used is the use recorded in
 * the refill interval starting at refill (0: a balance without refill).
 * Returns 0, or -1 with e filled. */
int keyuse_load(struct pg_conn *conn, const char *key_id, int64_t month, int64_t refill,
                struct keyuse *u, struct api_error *e) TG_WUR;

/* The refill interval of req's balance at now_ms: its start, or 0 when the
 * balance has no refill (refill.h). */
int64_t keyuse_refill_start(const struct rl_request *req, int64_t now_ms);

/* Sets req's seed from u for month and the refill interval starting at
 * refill (keyuse_refill_start): credits left = the interval's balance (the
 * refill amount, or remaining when the API set it within the interval)
 * minus its use (at least 0), the month's quota use.  False, req unchanged,
 * when u is not the durable state of req's record (unknown key, or another
 * credit balance): the record is stale. */
bool keyuse_seed(struct rl_request *req, const struct keyuse *u, int64_t month, int64_t refill);

/* ratelimit_check (or with peek, ratelimit_peek) for req; when the script
 * says the state is missing, loads the durable use over a connection of pg
 * and calls once more with it as the seed.  Returns as ratelimit_check;
 * res->stale when the record does not match PostgreSQL's (reload it).
 * req's seed is cleared before returning. */
int keyuse_decide(struct redis_conn *redis, struct pg_pool *pg, struct rl_request *req, bool peek,
                  struct rl_result *res, struct api_error *err) TG_WUR;

/* The credits left of key_id's balance remaining_version in the refill
 * interval starting at refill (0: no refill) as Redis holds them in the
 * state under owner_tag (NULL: the key's own; ratelimit.h) (ahead of
 * PostgreSQL by the checks still in the usage pipeline).  Returns 1 with
 * *out set, 0 when Redis holds no state for that balance and interval (use
 * PostgreSQL's, tg_key_remaining), -1 with e filled when Redis failed. */
int keyuse_live_remaining(struct redis_conn *redis, const char *key_id, const char *owner_tag,
                          int64_t remaining_version, int64_t refill, int64_t *out,
                          struct api_error *e) TG_WUR;

#endif
