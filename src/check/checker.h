/* checker: the decision of one check, shared by the JSON route (POST
 * /v1/check) and gate mode (FastCGI Authorizer).
 *
 * 1. Format and checksum (no I/O).
 * 2. The record by the key's HMAC: process cache, Redis, PostgreSQL.
 * 3. The state of the secret and of the key; when several states apply the
 *    most permanent wins: invalid (unknown or past grace), revoked, expired,
 *    suspended.
 * 4. For an active key, one EVALSHA decides every applicable window, the
 *    period quota and the remaining credits atomically; it also says when
 *    the record is older than the last published change, and then the
 *    record is reloaded from PostgreSQL and the decision taken again; or
 *    that the key's state is missing in Redis, and then it is seeded from
 *    the key's durable use in PostgreSQL and the decision taken. */
#ifndef TOLLGATE_CHECKER_H
#define TOLLGATE_CHECKER_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "endpoint.h"
#include "keys.h"
#include "keystore.h"
#include "redis.h"
#include "ratelimit.h"

struct worker;

/* A remembered denial's name: hash|cost|endpoint, whole. */
#define CHECK_DENIAL_KEY_MAX (KEYS_HASH_HEX_LEN + 24 + ENDPOINT_MAX + 1)

struct check_outcome {
    int status;          /* 200, 401, 403, 429, 503 */
    enum err_code reason; /* ERR_NONE when allowed */
    const char *message;
    bool known;          /* the key was identified (key_id etc. are shown) */
    bool counted;        /* the rate-limit decision ran: res is valid */
    struct rl_request req;
    struct rl_result res;
    /* What the check is counted under in usage: the longest of the key's
     * limit patterns that matches, else "*" (set with req). */
    char usage_endpoint[ENDPOINT_PATTERN_MAX + 1];
    struct key_record rec; /* last: its limits are the bulk, and often unused */
};

/* What the decision needs from outside: the record lookup, the rate-limit
 * decision and the clock, so that the order of the steps can be tested
 * without stores; check_run supplies the process's own. */
struct cache;
struct localrl;
struct metrics;
struct check_env {
    /* keystore_lookup's contract */
    int (*lookup)(void *ctx, const char *hash, enum keystore_source src, struct key_record *rec,
                  struct api_error *e);
    /* ratelimit_check's contract (a process seeds a missing state first:
     * keyuse_decide) */
    int (*decide)(void *ctx, struct rl_request *req, struct rl_result *res,
                  struct api_error *err);
    int64_t (*now_ms)(void *ctx);
    void *ctx;
    const struct config_secrets *secrets; /* keys verify and hash under these */
    enum store_error_mode on_store_error;
    struct cache *denials; /* refusals replayed until their retry time; NULL: none */
    int64_t denial_ttl_ms; /* ... but never longer than this */
    struct localrl *local; /* STORE_ERROR_LOCAL's windows */
    int64_t local_processes;
    struct metrics *metrics; /* may be NULL */
};

/* The decision of steps 1-4 for key, endpoint and cost; always fills out
 * (no usage is recorded: check_run does that). */
void check_decide(const struct check_env *env, const char *key, size_t keylen,
                  const char *endpoint, int64_t cost, struct check_outcome *out);

/* Fills req from rec for a check of endpoint and cost; endpoint NULL takes
 * every window of the key (for reading its state).  False when more windows
 * apply than one check carries (RATELIMIT_MAX_WINDOWS): the schema bounds a
 * key's limits, so only a record from outside it can do that, and such a
 * check is refused rather than decided on some of its windows. */
bool check_prepare(const struct key_record *rec, const char *endpoint, int64_t cost,
                   struct rl_request *req) TG_WUR;

/* Decides for key (keylen bytes), endpoint ("METHOD /path" or "*") and cost
 * (1-1000, validated by the caller).  Always fills out; release it with
 * check_outcome_fini. */
void check_run(struct worker *w, const char *key, size_t keylen, const char *endpoint,
               int64_t cost, struct check_outcome *out);
void check_outcome_fini(struct check_outcome *out);

/* The same decision from the event loop, which must never block: what the
 * process holds in memory answers, the script goes to Redis without
 * waiting, and anything else -- a key not cached, a store failure, a
 * redirection, a stale record -- is left to check_run on a worker thread,
 * from the start. */
enum check_step {
    CHECK_DONE,     /* c->o holds the outcome (usage recorded) */
    CHECK_SENT,     /* c->done will be called from the loop */
    CHECK_BLOCKING, /* run check_run instead; c->o is empty */
};
struct check_async {
    /* The caller's: called once, in the loop thread, with CHECK_DONE or
     * CHECK_BLOCKING. */
    void (*done)(struct check_async *c, enum check_step step);
    void *arg;
    struct check_outcome o;
    /* The checker's. */
    struct app *app;
    int64_t cost;
    char endpoint[ENDPOINT_MAX + 1];
    char hash[KEYS_HASH_HEX_LEN];
    char dkey[CHECK_DENIAL_KEY_MAX];
    struct redis_async ra;
};
/* endpoint: "*" or a normal endpoint (endpoint.h), as the caller made it. */
enum check_step check_start(struct app *app, struct check_async *c, const char *key,
                            size_t keylen, const char *endpoint, int64_t cost);

/* The highest use of out's windows after the check, in integer percent of
 * each window's limit (0-100), for the limit_near alerts: 100 when a window
 * denied the check; 0 when no window was decided (out->counted false) or
 * none applies.  At most RATELIMIT_MAX_WINDOWS divisions, no allocation. */
int check_peak_pct(const struct check_outcome *out);

struct strbuf;
/* Appends the answer body of API.md to b: decision fields, plus the error
 * envelope when refused (written directly: the hot path builds no JSON
 * tree). */
void check_outcome_write_json(const struct check_outcome *out, struct strbuf *b);

/* The rate-limit headers of a 200 or 429 answer (empty otherwise). */
void check_outcome_headers(const struct check_outcome *out, char *buf, size_t size);

#endif
