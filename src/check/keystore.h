/* keystore: what the check path knows about a key, found by the HMAC of its
 * secret through three layers — the process's cache (TTL at most 1 s), the
 * Redis record cache, PostgreSQL — plus the tiers' limits, reloaded from
 * PostgreSQL when older than the same TTL.  Records carry the key's version
 * so that a cache is never overwritten by an older record. */
#ifndef TOLLGATE_KEYSTORE_H
#define TOLLGATE_KEYSTORE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "jsonx.h"
#include "refill.h"

struct pg_pool;
struct pg_conn;
struct redis_conn;
struct keystore;

/* A tier's limits merged with a key's own: at most 16 of each. */
#define KEY_LIMITS_MAX 32

/* One rate-limit window, typed once when the record is read. */
struct key_limit {
    int64_t window_s;
    int64_t limit;
    int64_t precision;
    char name[33];
    char endpoint[257]; /* pattern "METHOD /path[*]"; "" applies everywhere */
    bool per_owner;     /* "per":"owner": the owner's keys share the window */
};

enum key_status { KEY_ACTIVE, KEY_SUSPENDED, KEY_REVOKED };

/* The name of a status ("active", ...). */
const char *key_status_name(enum key_status s);

/* Everything the check path needs of a key, parsed once: the process cache
 * keeps it in this form (the limits last, only as many as there are). */
struct key_record {
    bool found;
    bool from_local;
    char id[48];
    char owner_id[520];
    char owner_tag[33]; /* keys_owner_tag of owner_id */
    char tier[40];
    enum key_status status;
    bool has_expires;
    int64_t expires_ms;
    bool has_secret_expires; /* a rotated secret in its grace period */
    int64_t secret_expires_ms;
    bool has_remaining;
    int64_t remaining;
    int64_t version;           /* bumped by every change of the key */
    int64_t remaining_version; /* bumped when the API sets remaining */
    struct key_refill refill;  /* of the credit balance (refill.h) */
    int64_t remaining_set_ms;  /* when the API last set the balance (0: unknown) */
    /* The tier's period quota. */
    bool has_quota;
    int64_t quota_included;
    bool quota_blocks;
    /* After a lookup, the effective limits: the tier's merged with the
     * key's own (key_record_parse: the key's own only). */
    size_t nlimits;
    struct key_limit limits[KEY_LIMITS_MAX];
};

/* The bytes of rec that hold information: the limits in use, not the
 * array's spare room. */
size_t key_record_size(const struct key_record *rec);

struct metrics;

/* Counts cache hits and Redis errors into metrics (borrowed). */
struct keystore *keystore_new(struct pg_pool *pg, struct metrics *metrics, int64_t ttl_ms);
void keystore_free(struct keystore *ks);

/* Fills rec for the secret whose hex HMAC is hash; rec->found is false for an
 * unknown secret.  src says which layers may answer: KS_FRESH after the
 * rate-limit script said the record is stale or while Redis cannot vouch
 * for it.  rec->from_local tells whether the process cache answered.  Returns 0, or -1
 * with 503 unavailable in e when neither cache nor PostgreSQL can answer.
 * Release rec with key_record_fini.
 *
 * An active record stays in the process cache for ten minutes: every check of
 * it runs the rate-limit script, which compares its version with the one
 * published in Redis.  Any other record (unknown, suspended, revoked,
 * expired) is kept only the configured TTL. */
enum keystore_source {
    KS_ANY,        /* process cache, then Redis, then PostgreSQL */
    KS_SKIP_LOCAL, /* Redis, then PostgreSQL */
    KS_FRESH,      /* PostgreSQL only */
};
int keystore_lookup(struct keystore *ks, struct redis_conn *redis, const char *hash,
                    enum keystore_source src, struct key_record *rec,
                    struct api_error *e) TG_WUR;
/* Nothing to release any more; kept so callers need not know. */
void key_record_fini(struct key_record *rec);

/* The same from this process's memory only, never blocking (for the event
 * loop): 0 with rec filled, 1 when only keystore_lookup can answer (not
 * cached, or the tiers are due a reload), -1 with e filled. */
int keystore_lookup_local(struct keystore *ks, const char *hash, struct key_record *rec,
                          struct api_error *e) TG_WUR;
/* The name of the Redis record of hash (its cache across processes). */
void keystore_redis_key(const char *hash, char out[80]);
/* Drops hash's record from this process's cache (it proved stale). */
void keystore_forget(struct keystore *ks, const char *hash);
/* Key records held in this process's cache: with none, a check of any key
 * needs a store (readiness tells a cold process from a warm one). */
size_t keystore_cached(struct keystore *ks);

/* The record of key_id straight from PostgreSQL (for management reads);
 * rec->found is false for an unknown id. */
int keystore_by_id(struct keystore *ks, const char *key_id, struct key_record *rec,
                   struct api_error *e) TG_WUR;

/* After a committed change of key_id: writes its fresh records to Redis,
 * publishes its version to the rate-limit state (checks holding an older
 * record reload it) and drops them from this process's cache.  Returns 0,
 * or -1 (logged) when Redis did not take all of it: the change feed of
 * every process (keywatch.h) publishes it again. */
int keystore_publish(struct keystore *ks, struct redis_conn *redis, struct pg_conn *conn,
                     const char *key_id);


/* Parses a record as stored ("{...}" JSON of tg_key_record) into rec
 * (limits are the key's own overrides).  Returns 0, or -1 when malformed
 * (limits included: more than 16, or a field out of its range). */
int key_record_parse(const char *json, struct key_record *rec) TG_WUR;

/* Reads a validated limits array (see limits.h) into out (room for max);
 * returns the count, or -1 when it does not fit or is malformed. */
int key_limits_parse(json_object *arr, struct key_limit *out, size_t max);

/* out = base's limits in order, each replaced by the override of the same
 * name, then the overrides whose names base lacks.  Returns the count (at
 * most nb + no; out has room for KEY_LIMITS_MAX). */
size_t key_limits_merge(const struct key_limit *base, size_t nb, const struct key_limit *over,
                        size_t no, struct key_limit *out);

#endif
