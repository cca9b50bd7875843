/* ratelimit: the decision of one check against every window that applies,
 * the period quota and the key's remaining credits, taken atomically by one
 * Lua script in Redis (one EVALSHA; Redis TIME is the only clock).
 *
 * Sliding windows with sub-buckets: a window of W ms and precision N counts
 * in buckets of b = ceil(W / N) ms and sums the current bucket and the N
 * before it, which span at least W: no interval of length W ever holds more
 * admitted cost than the limit.  Denied checks change nothing. */
#ifndef TOLLGATE_RATELIMIT_H
#define TOLLGATE_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rlconst.h"
#include "util.h"

#define RATELIMIT_MAX_WINDOWS RL_WINDOWS_MAX

struct redis_conn;

struct rl_window {
    char name[33];
    int64_t window_s;
    int64_t limit;
    int64_t precision;
    bool per_owner;    /* counted in the owner's windows (owner_tag) */
    /* results */
    int64_t used;      /* after this check */
    int64_t remaining; /* limit - used, at least 0 */
    int64_t reset_ms;  /* until the oldest non-empty bucket leaves; 0 when empty */
};

enum rl_denied { RL_ALLOWED = 0, RL_WINDOW, RL_QUOTA, RL_REMAINING };

struct rl_request {
    const char *key_id;
    /* NULL, or the owner's tag (keys_owner_tag) when any of the key's
     * limits is per owner: every key of the check then lives in the
     * owner's hash tag, tg:{o:<tag>}:k:<key id>:c and :s beside the owner's
     * windows tg:{o:<tag>}:c, one slot for a cluster. */
    const char *owner_tag;
    const char *key_owner_tag; /* the owner's tag whether or not it is used */
    int64_t version;           /* the record's version (stale detection) */
    int64_t cost;
    bool has_quota;
    int64_t quota_included;
    bool quota_blocks;         /* overage: block */
    bool has_remaining;
    int64_t remaining;         /* as last set through the API */
    int64_t remaining_version; /* bumps when the API sets remaining */
    /* The balance's refill (refill.h): amount, day of month (0 daily) and
     * the start of the interval in which the API set remaining. */
    bool has_refill;
    int64_t refill_amount;
    int64_t refill_day;
    int64_t refill_base;
    /* The key's durable use, for a state that Redis lacks (keyuse.h); set
     * only after a reply said missing, so the common call carries none. */
    bool has_seed;
    int64_t seed_month;      /* YYYYMM (UTC) of seed_quota_used */
    int64_t seed_quota_used; /* allowed cost in that month */
    int64_t seed_remaining;  /* credits left of remaining_version */
    int64_t seed_refill;     /* the refill interval they are left in (0: none) */
    size_t nwindows;
    struct rl_window windows[RATELIMIT_MAX_WINDOWS];
};

struct rl_result {
    bool stale;               /* the record is older than Redis knows: reload it */
    bool missing;             /* Redis has no state for the key's quota or credits:
                                 call again with the seed (keyuse.h) */
    enum rl_denied denied;
    int denied_window;        /* index into windows when denied == RL_WINDOW */
    bool has_retry;
    int64_t retry_after_ms;
    int64_t now_ms;           /* Redis time of the decision */
    int64_t quota_used;       /* in the current period, after this check */
    int64_t period_end_ms;
    int64_t remaining;        /* credits left after this check (if has_remaining) */
};

/* The script's keys and arguments for req at cost (0 peeks): what an
 * asynchronous caller sends with EVALSHA of ratelimit_script().  Points into
 * call only, so req may change or go once it is built.  The request is
 * validated here (key id, cost, counts, every window's name and bounds):
 * the script trusts its arguments, and a call built from an invalid request
 * makes it answer an error reply. */
#define RL_OWNER_TAG_LEN 32
#define RL_STATE_KEY_MAX (RL_KEY_ID_MAX + RL_OWNER_TAG_LEN + 16)
struct rl_call {
    const char *keys[3];
    int nkeys;
    const char *args[14 + 4 * RL_WINDOWS_MAX];
    int nargs;
    char key[3][RL_STATE_KEY_MAX];
    char owners[RL_WINDOWS_MAX + 1];
    char num[13 + 3 * RL_WINDOWS_MAX][24];
    char id[RL_WINDOWS_MAX][RL_NAME_MAX + 24];
};
struct redis_script;
struct redisReply;
const struct redis_script *ratelimit_script(void);
void ratelimit_call_init(const struct rl_request *req, int64_t cost, struct rl_call *call);
/* Reads the script's reply r into res and the windows of req.  Returns 0,
 * or -1 with err filled for an error reply or a malformed one. */
int ratelimit_read_reply(const struct redisReply *r, struct rl_request *req,
                         struct rl_result *res, struct api_error *err) TG_WUR;

/* Runs the decision.  Fills res and req->windows[i] results.  Returns 0, or
 * -1 with err filled when Redis failed (unreachable, timeout, error reply). */
int ratelimit_check(struct redis_conn *redis, struct rl_request *req, struct rl_result *res,
                    struct api_error *err) TG_WUR;

/* Reads the windows, quota use and credits as a check of cost 0 would see
 * them, changing nothing (req->cost is ignored). */
int ratelimit_peek(struct redis_conn *redis, struct rl_request *req, struct rl_result *res,
                   struct api_error *err) TG_WUR;

/* Marks the key's state in Redis with version so that checks holding an
 * older record answer stale (called after a committed change), in both
 * places it may live: under the key's tag and, when owner_tag is not NULL,
 * under its owner's (whether the key has per-owner limits depends on its
 * tier, which changes apart from the key). */
int ratelimit_publish_version(struct redis_conn *redis, const char *key_id,
                              const char *owner_tag, int64_t version,
                              struct api_error *err) TG_WUR;

/* After the key's erasure: deletes its windows and state (counters, quota
 * use, credits) and leaves in their place only the version, version, for
 * ttl_ms, so that a check holding an older record, in any process, answers
 * stale and reloads it (and finds the key gone).  With owner_tag (the
 * owner's keys_owner_tag, NULL when unknown) the same at the owner's place
 * (per-owner limits), with the owner's shared windows.  Returns 0, or -1
 * with err filled. */
int ratelimit_erase(struct redis_conn *redis, const char *key_id, const char *owner_tag,
                    int64_t version, int64_t ttl_ms, struct api_error *err) TG_WUR;

/* The name of key_id's state hash (v, q:YYYYMM, rv, r, ri, s: ratelimit.lua)
 * into out: under owner_tag when not NULL (see rl_request).  Returns 0, or
 * -1 for a key id or tag the script would not take. */
int ratelimit_state_key(const char *key_id, const char *owner_tag, char *out,
                        size_t size) TG_WUR;

/* Empties the key's state hash at the place its checks do not use now
 * (the key's tag when req->owner_tag is set, else the owner's), all but its
 * version: after a tier changes "per" back, a state left there would be
 * stale.  Called on the cold path only, when the state in use is missing.
 * Returns 0, or -1 with err filled. */
int ratelimit_clear_other(struct redis_conn *redis, const struct rl_request *req,
                          struct api_error *err) TG_WUR;

/* Index of the tightest window (least remaining, then soonest reset), or -1
 * when there are none. */
int ratelimit_tightest(const struct rl_request *req);

/* The response headers of a check answer (RateLimit-Policy, RateLimit,
 * X-RateLimit-*, Retry-After), each line ending in CRLF, into buf. */
void ratelimit_headers(const struct rl_request *req, const struct rl_result *res, char *buf,
                       size_t size);

#endif
