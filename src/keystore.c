#include "keystore.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "limits.h"
#include "log.h"
#include "metrics.h"
#include "pg.h"
#include "ratelimit.h"
#include "redis.h"

/* Redis keeps a record this long after it was last written; a missing key is
 * remembered briefly so a flood of unknown keys does not reach PostgreSQL. */
#define RECORD_TTL_MS "300000"
#define MISSING_TTL_MS "60000"
#define MISSING_RECORD "{\"v\":0,\"missing\":true}"
#define CACHE_ENTRIES 100000
/* An active record is re-validated by the check script's version test on
 * every use, so keeping it long costs no freshness. */
#define ACTIVE_LOCAL_TTL_MS 600000

/* Writes ARGV[1]|ARGV[2] unless the stored record has a higher version: a
 * slow reader can never put back a record older than a published change. */
static const char PUT_SCRIPT[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur then\n"
    "  local v = tonumber(string.match(cur, '^(%d+)|'))\n"
    "  if v and v > tonumber(ARGV[1]) then return 0 end\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])\n"
    "return 1\n";

struct keystore {
    struct pg_pool *pg;
    struct metrics *metrics;
    struct cache *records;
    struct redis_script put;
    int64_t ttl_ms;
    pthread_mutex_t tiers_lock;
    json_object *tiers; /* name -> limits array */
    int64_t tiers_loaded_ms;
    bool tiers_loading;
};

struct keystore *keystore_new(struct pg_pool *pg, struct metrics *metrics, int64_t ttl_ms)
{
    struct keystore *ks = xcalloc(1, sizeof *ks);
    ks->pg = pg;
    ks->metrics = metrics;
    ks->ttl_ms = ttl_ms;
    ks->records = cache_new(CACHE_ENTRIES, ttl_ms);
    redis_script_init(&ks->put, PUT_SCRIPT);
    pthread_mutex_init(&ks->tiers_lock, NULL);
    return ks;
}

void keystore_free(struct keystore *ks)
{
    if (!ks)
        return;
    cache_free(ks->records);
    json_object_put(ks->tiers);
    pthread_mutex_destroy(&ks->tiers_lock);
    free(ks);
}

static void copy_str(json_object *o, const char *name, char *dst, size_t size)
{
    json_object *v = jsonx_get(o, name);
    strlcpy_tg(dst, v ? json_object_get_string(v) : "", size);
}

static bool get_int(json_object *o, const char *name, int64_t *out)
{
    json_object *v = jsonx_get(o, name);
    if (!v)
        return false;
    *out = json_object_get_int64(v);
    return true;
}

int key_record_parse(const char *json, struct key_record *rec)
{
    memset(rec, 0, sizeof *rec);
    json_object *o = json_tokener_parse(json);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return -1;
    }
    if (!jsonx_has(o, "missing")) {
        rec->found = true;
        copy_str(o, "id", rec->id, sizeof rec->id);
        copy_str(o, "owner_id", rec->owner_id, sizeof rec->owner_id);
        copy_str(o, "tier", rec->tier, sizeof rec->tier);
        copy_str(o, "status", rec->status, sizeof rec->status);
        rec->has_expires = get_int(o, "expires_ms", &rec->expires_ms);
        rec->has_secret_expires = get_int(o, "secret_expires_ms", &rec->secret_expires_ms);
        rec->has_remaining = get_int(o, "remaining", &rec->remaining);
        get_int(o, "v", &rec->version);
        get_int(o, "rv", &rec->remaining_version);
        json_object *l = jsonx_get(o, "limits");
        if (l)
            json_object_deep_copy(l, &rec->limits, NULL);
    }
    json_object_put(o);
    return 0;
}

void key_record_fini(struct key_record *rec)
{
    json_object_put(rec->limits);
    rec->limits = NULL;
}

static void redis_key(const char *hash, char out[80])
{
    snprintf(out, 80, "tg:kr:%s", hash);
}

static void redis_put(struct keystore *ks, struct redis_conn *redis, const char *hash,
                      const char *version, const char *json, const char *ttl)
{
    char rk[80];
    redis_key(hash, rk);
    const char *keys[] = {rk};
    const char *args[] = {version, json, ttl};
    struct tg_err err;
    redisReply *r = redis_eval(redis, &ks->put, 1, keys, 3, args, &err);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        log_warn("record cache write failed: %s", r ? r->str : err.msg);
        metrics_redis_error(ks->metrics, REDIS_ERR_RECORD_WRITE);
    }
    if (r)
        freeReplyObject(r);
}

/* The record text from Redis, or NULL (absent or unreachable). */
static char *redis_get(struct keystore *ks, struct redis_conn *redis, const char *hash)
{
    char rk[80];
    redis_key(hash, rk);
    const char *argv[] = {"GET", rk};
    struct tg_err err;
    redisReply *r = redis_command(redis, 2, argv, NULL, &err);
    char *out = NULL;
    if (!r) {
        log_warn("record cache read failed: %s", err.msg);
        metrics_redis_error(ks->metrics, REDIS_ERR_RECORD_READ);
    } else if (r->type == REDIS_REPLY_STRING) {
        const char *bar = memchr(r->str, '|', r->len);
        if (bar)
            out = xstrndup(bar + 1, r->len - (size_t)(bar + 1 - r->str));
    }
    if (r)
        freeReplyObject(r);
    return out;
}

/* The record text from PostgreSQL (MISSING_RECORD for an unknown secret). */
static char *pg_get(struct keystore *ks, const char *hash, struct api_error *e)
{
    struct pg_conn *c = pg_acquire(ks->pg, e);
    if (!c)
        return NULL;
    const char *p[] = {hash};
    struct pg_res *r = pg_query(c, "SELECT tg_key_record($1)", 1, p, e);
    pg_release(ks->pg, c);
    if (!r)
        return NULL;
    char *out = xstrdup(pg_isnull(r, 0, 0) ? MISSING_RECORD : pg_val(r, 0, 0));
    pg_res_free(r);
    return out;
}

static void version_of(const char *json, char out[24])
{
    json_object *o = json_tokener_parse(json);
    json_object *v = o ? jsonx_get(o, "v") : NULL;
    snprintf(out, 24, "%lld", v ? (long long)json_object_get_int64(v) : 0LL);
    json_object_put(o);
}

static bool copy_tier(struct keystore *ks, const char *tier, json_object **out,
                      struct key_record *rec);

/* Replaces the key's own limits by the effective list and fills the quota.
 * Without the tier no decision can be taken: 503, never "no limits". */
static int apply_tier(struct keystore *ks, struct key_record *rec, struct api_error *e)
{
    if (!rec->found)
        return 0;
    json_object *tier = keystore_tier_limits(ks, rec->tier, rec);
    if (!tier) {
        api_error_set(e, 503, "unavailable", NULL, "The tiers cannot be read; retry.");
        return -1;
    }
    json_object *merged = limits_merge(tier, rec->limits);
    json_object_put(tier);
    json_object_put(rec->limits);
    rec->limits = merged;
    return 0;
}

int keystore_lookup(struct keystore *ks, struct redis_conn *redis, const char *hash,
                    enum keystore_source src, struct key_record *rec, struct api_error *e)
{
    char *json = NULL;
    bool cached = src == KS_ANY && cache_get(ks->records, hash, now_ms(), &json, NULL);
    if (src == KS_ANY)
        metrics_cache(ks->metrics, cached);
    if (!cached) {
        json = src == KS_FRESH ? NULL : redis_get(ks, redis, hash);
        if (!json) {
            json = pg_get(ks, hash, e);
            if (!json)
                return -1;
            char version[24];
            version_of(json, version);
            bool missing = strcmp(json, MISSING_RECORD) == 0;
            redis_put(ks, redis, hash, version, json, missing ? MISSING_TTL_MS : RECORD_TTL_MS);
        }
    }
    int rc = key_record_parse(json, rec);
    if (rc == 0 && !cached) {
        /* Every check of an active key runs the version-checking script, so
         * such a record may stay longer than one whose answer needs none. */
        bool vouched = rec->found && strcmp(rec->status, "active") == 0;
        cache_put_ttl(ks->records, hash, json, strlen(json), now_ms(),
                      vouched ? ACTIVE_LOCAL_TTL_MS : ks->ttl_ms);
    }
    free(json);
    if (rc != 0) {
        api_error_set(e, 500, "internal", NULL, "An internal error occurred.");
        return -1;
    }
    rec->from_local = cached;
    if (apply_tier(ks, rec, e) != 0) {
        key_record_fini(rec);
        return -1;
    }
    return 0;
}

/* True when the tiers snapshot is younger than the TTL. */
static bool tiers_fresh(struct keystore *ks)
{
    pthread_mutex_lock(&ks->tiers_lock);
    bool fresh = ks->tiers && !ks->tiers_loading && now_ms() - ks->tiers_loaded_ms < ks->ttl_ms;
    pthread_mutex_unlock(&ks->tiers_lock);
    return fresh;
}

int keystore_lookup_local(struct keystore *ks, const char *hash, struct key_record *rec,
                          struct api_error *e)
{
    memset(rec, 0, sizeof *rec);
    if (!tiers_fresh(ks))
        return 1;
    char *json = NULL;
    if (!cache_get(ks->records, hash, now_ms(), &json, NULL))
        return 1;
    metrics_cache(ks->metrics, true);
    int rc = key_record_parse(json, rec);
    free(json);
    if (rc != 0) {
        api_error_set(e, 500, "internal", NULL, "An internal error occurred.");
        return -1;
    }
    rec->from_local = true;
    json_object *tier = NULL;
    if (rec->found && !copy_tier(ks, rec->tier, &tier, rec)) {
        key_record_fini(rec);
        return 1; /* a tier the snapshot does not know yet */
    }
    if (tier) {
        json_object *merged = limits_merge(tier, rec->limits);
        json_object_put(tier);
        json_object_put(rec->limits);
        rec->limits = merged;
    }
    return 0;
}

void keystore_forget(struct keystore *ks, const char *hash)
{
    cache_remove(ks->records, hash);
}

int keystore_by_id(struct keystore *ks, const char *key_id, struct key_record *rec,
                   struct api_error *e)
{
    memset(rec, 0, sizeof *rec);
    struct pg_conn *c = pg_acquire(ks->pg, e);
    if (!c)
        return -1;
    const char *p[] = {key_id};
    struct pg_res *r = pg_query(c,
                                "SELECT tg_key_record(hash) FROM key_secrets WHERE key_id = $1"
                                " ORDER BY expires_at IS NOT NULL, created_at DESC LIMIT 1",
                                1, p, e);
    pg_release(ks->pg, c);
    if (!r)
        return -1;
    int rc = 0;
    if (pg_nrows(r) == 1 && !pg_isnull(r, 0, 0)) {
        rc = key_record_parse(pg_val(r, 0, 0), rec);
        if (rc != 0)
            api_error_set(e, 500, "internal", NULL, "An internal error occurred.");
        else if (apply_tier(ks, rec, e) != 0) {
            key_record_fini(rec);
            rc = -1;
        }
    }
    pg_res_free(r);
    return rc;
}

void keystore_publish(struct keystore *ks, struct redis_conn *redis, struct pg_conn *conn,
                      const char *key_id)
{
    struct api_error e;
    const char *p[] = {key_id};
    struct pg_res *r = pg_query(conn,
                                "SELECT hash, tg_key_record(hash) FROM key_secrets"
                                " WHERE key_id = $1",
                                1, p, &e);
    if (!r) {
        log_error("could not publish the change of key %s: %s", key_id, e.message);
        return;
    }
    int64_t newest = 0;
    for (int i = 0; i < pg_nrows(r); i++) {
        const char *hash = pg_val(r, i, 0), *json = pg_val(r, i, 1);
        char version[24];
        version_of(json, version);
        redis_put(ks, redis, hash, version, json, RECORD_TTL_MS);
        cache_remove(ks->records, hash);
        int64_t v;
        if (parse_int64(version, 0, INT64_MAX, &v) == 0 && v > newest)
            newest = v;
    }
    pg_res_free(r);
    struct tg_err err;
    if (ratelimit_publish_version(redis, key_id, newest, &err) != 0) {
        metrics_redis_error(ks->metrics, REDIS_ERR_PUBLISH);
        log_error("could not publish version %lld of key %s: %s", (long long)newest, key_id,
                  err.msg);
    }
}

/* Reloads the tiers when the snapshot is older than the TTL (one thread
 * reloads while the others keep using the snapshot), or at once when force:
 * a tier the snapshot does not know yet was just created. */
static void refresh_tiers(struct keystore *ks, bool force)
{
    pthread_mutex_lock(&ks->tiers_lock);
    bool go = force || (!ks->tiers_loading && now_ms() - ks->tiers_loaded_ms >= ks->ttl_ms);
    if (go)
        ks->tiers_loading = true;
    pthread_mutex_unlock(&ks->tiers_lock);
    if (!go)
        return;
    struct api_error e;
    json_object *map = NULL;
    struct pg_conn *c = pg_acquire(ks->pg, &e);
    if (c) {
        map = pg_query_json(c,
                            "SELECT coalesce(jsonb_object_agg(name, jsonb_build_object("
                            " 'limits', limits, 'quota', quota)), '{}') FROM tiers",
                            0, NULL, "tiers", &e);
        pg_release(ks->pg, c);
    }
    if (!map)
        log_warn("tiers reload failed (%s); keeping the previous snapshot", e.message);
    pthread_mutex_lock(&ks->tiers_lock);
    if (map) {
        json_object_put(ks->tiers);
        ks->tiers = map;
    }
    ks->tiers_loaded_ms = now_ms(); /* after a failure too: retry after a TTL */
    ks->tiers_loading = false;
    pthread_mutex_unlock(&ks->tiers_lock);
}

/* Copies the tier's limits (and quota into rec); false when the snapshot
 * does not hold the tier. */
static bool copy_tier(struct keystore *ks, const char *tier, json_object **out,
                      struct key_record *rec)
{
    pthread_mutex_lock(&ks->tiers_lock);
    json_object *t = ks->tiers ? jsonx_get(ks->tiers, tier) : NULL;
    if (t) {
        json_object *l = jsonx_get(t, "limits"), *q = jsonx_get(t, "quota");
        *out = NULL;
        if (l)
            json_object_deep_copy(l, out, NULL);
        if (rec) {
            json_object *inc = q ? jsonx_get(q, "included") : NULL;
            json_object *ov = q ? jsonx_get(q, "overage") : NULL;
            rec->has_quota = inc != NULL;
            rec->quota_included = inc ? json_object_get_int64(inc) : 0;
            rec->quota_blocks = ov && strcmp(json_object_get_string(ov), "block") == 0;
        }
    }
    pthread_mutex_unlock(&ks->tiers_lock);
    if (t && !*out)
        *out = json_object_new_array();
    return t != NULL;
}

json_object *keystore_tier_limits(struct keystore *ks, const char *tier, struct key_record *rec)
{
    json_object *out = NULL;
    refresh_tiers(ks, false);
    if (copy_tier(ks, tier, &out, rec))
        return out;
    refresh_tiers(ks, true);
    if (copy_tier(ks, tier, &out, rec))
        return out;
    return NULL;
}
