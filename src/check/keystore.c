#include "keystore.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "keys.h"
#include "limits.h"
#include "log.h"
#include "metrics.h"
#include "pg.h"
#include "ratelimit.h"
#include "redis.h"

/* Redis keeps a record this long after it was last written or read (a read
 * renews it: keys in use never fall through to PostgreSQL, and the process
 * caches' own lifetimes end before it); a missing key is remembered briefly
 * so a flood of unknown keys does not reach PostgreSQL. */
#define RECORD_TTL_MS "900000"
#define MISSING_TTL_MS "60000"
#define MISSING_RECORD "{\"v\":0,\"missing\":true}"
#define CACHE_ENTRIES 100000
/* An active record is re-validated by the check script's version test on
 * every use, so keeping it long costs no freshness.  Each entry gets a
 * lifetime drawn from [3/4, 1] of this, so the records that one burst of
 * traffic loaded do not all expire, and reload, in the same second. */
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

/* A tier as the check path uses it. */
struct tier_snap {
    char name[40];
    bool has_quota;
    int64_t quota_included;
    bool quota_blocks;
    size_t nlimits;
    struct key_limit limits[LIMITS_MAX];
};

struct keystore {
    struct pg_pool *pg;
    struct metrics *metrics;
    struct cache *records;
    struct redis_script put;
    int64_t ttl_ms;
    pthread_mutex_t tiers_lock;
    struct tier_snap *tiers; /* the snapshot, ntiers of them; NULL until loaded */
    size_t ntiers;
    int64_t tiers_loaded_ms;
    bool tiers_loading;
    bool tiers_claimed; /* a request went to a worker to have them reloaded */
    char tiers_stamp[48]; /* "count:sum of xmins" of the snapshot's table */
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
    free(ks->tiers);
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

const char *key_status_name(enum key_status st)
{
    switch (st) {
    case KEY_ACTIVE: return "active";
    case KEY_SUSPENDED: return "suspended";
    case KEY_REVOKED: return "revoked";
    }
    return "active";
}

static int status_parse(const char *s, enum key_status *out)
{
    static const enum key_status all[] = {KEY_ACTIVE, KEY_SUSPENDED, KEY_REVOKED};
    for (size_t i = 0; i < TG_ARRAY_LEN(all); i++) {
        if (strcmp(s, key_status_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return -1;
}

int key_limits_parse(json_object *arr, struct key_limit *out, size_t max)
{
    if (!arr)
        return 0;
    if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) > max)
        return -1;
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        json_object *l = json_object_array_get_idx(arr, i);
        json_object *name = jsonx_get(l, "name"), *ep = jsonx_get(l, "endpoint");
        struct key_limit *k = &out[i];
        memset(k, 0, sizeof *k);
        if (!name || json_object_get_string_len(name) >= (int)sizeof k->name ||
            (ep && json_object_get_string_len(ep) >= (int)sizeof k->endpoint) ||
            !get_int(l, "window_s", &k->window_s) || !get_int(l, "limit", &k->limit))
            return -1;
        if (!get_int(l, "precision", &k->precision))
            k->precision = LIMITS_PRECISION_DEFAULT;
        strlcpy_tg(k->name, json_object_get_string(name), sizeof k->name);
        if (ep)
            strlcpy_tg(k->endpoint, json_object_get_string(ep), sizeof k->endpoint);
        json_object *per = jsonx_get(l, "per");
        k->per_owner = per && strcmp(json_object_get_string(per), "owner") == 0;
    }
    return (int)n;
}

static const struct key_limit *limit_named(const struct key_limit *l, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0)
            return &l[i];
    return NULL;
}

size_t key_limits_merge(const struct key_limit *base, size_t nb, const struct key_limit *over,
                        size_t no, struct key_limit *out)
{
    size_t n = 0;
    for (size_t i = 0; i < nb && n < KEY_LIMITS_MAX; i++) {
        const struct key_limit *o = limit_named(over, no, base[i].name);
        out[n++] = o ? *o : base[i];
    }
    for (size_t i = 0; i < no && n < KEY_LIMITS_MAX; i++)
        if (!limit_named(base, nb, over[i].name))
            out[n++] = over[i];
    return n;
}

size_t key_record_size(const struct key_record *rec)
{
    return offsetof(struct key_record, limits) + rec->nlimits * sizeof rec->limits[0];
}

int key_record_parse(const char *json, struct key_record *rec)
{
    memset(rec, 0, offsetof(struct key_record, limits));
    json_object *o = json_tokener_parse(json);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return -1;
    }
    int rc = 0;
    if (!jsonx_has(o, "missing")) {
        rec->found = true;
        copy_str(o, "id", rec->id, sizeof rec->id);
        copy_str(o, "owner_id", rec->owner_id, sizeof rec->owner_id);
        keys_owner_tag(rec->owner_id, rec->owner_tag);
        copy_str(o, "tier", rec->tier, sizeof rec->tier);
        json_object *st = jsonx_get(o, "status");
        if (st && status_parse(json_object_get_string(st), &rec->status) != 0)
            rc = -1;
        rec->has_expires = get_int(o, "expires_ms", &rec->expires_ms);
        rec->has_secret_expires = get_int(o, "secret_expires_ms", &rec->secret_expires_ms);
        rec->has_remaining = get_int(o, "remaining", &rec->remaining);
        get_int(o, "v", &rec->version);
        get_int(o, "rv", &rec->remaining_version);
        get_int(o, "rat", &rec->remaining_set_ms);
        if (refill_from_stored(jsonx_get(o, "refill"), &rec->refill) != 0)
            rc = -1;
        int n = key_limits_parse(jsonx_get(o, "limits"), rec->limits, LIMITS_MAX);
        if (n < 0)
            rc = -1;
        else
            rec->nlimits = (size_t)n;
    }
    json_object_put(o);
    return rc;
}

void key_record_fini(struct key_record *rec)
{
    (void)rec;
}

static int64_t local_ttl_ms(void)
{
    uint32_t r;
    random_bytes(&r, sizeof r);
    return ACTIVE_LOCAL_TTL_MS * 3 / 4 + (int64_t)(r % (ACTIVE_LOCAL_TTL_MS / 4));
}

void keystore_redis_key(const char *hash, char out[80])
{
    snprintf(out, 80, "tg:kr:%s", hash);
}

static int redis_put(struct keystore *ks, struct redis_conn *redis, const char *hash,
                     const char *version, const char *json, const char *ttl)
{
    char rk[80];
    keystore_redis_key(hash, rk);
    const char *keys[] = {rk};
    const char *args[] = {version, json, ttl};
    struct api_error err;
    redisReply *r = redis_eval(redis, &ks->put, 1, keys, 3, args, &err);
    int rc = 0;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        log_warn("record cache write failed: %s", r ? r->str : err.message);
        metrics_redis_error(ks->metrics, REDIS_ERR_RECORD_WRITE);
        rc = -1;
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

/* The record text from Redis, or NULL (absent or unreachable). */
static char *redis_get(struct keystore *ks, struct redis_conn *redis, const char *hash)
{
    char rk[80];
    keystore_redis_key(hash, rk);
    const char *argv[] = {"GETEX", rk, "PX", RECORD_TTL_MS};
    struct api_error err;
    redisReply *r = redis_command(redis, 4, argv, NULL, &err);
    char *out = NULL;
    if (!r) {
        log_warn("record cache read failed: %s", err.message);
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

static bool merge_tier(struct keystore *ks, struct key_record *rec);
static void refresh_tiers(struct keystore *ks, bool force);

/* Replaces the key's own limits by the effective list and fills the quota.
 * Without the tier no decision can be taken: 503, never "no limits". */
static int apply_tier(struct keystore *ks, struct key_record *rec, struct api_error *e)
{
    if (!rec->found)
        return 0;
    refresh_tiers(ks, false);
    if (merge_tier(ks, rec))
        return 0;
    refresh_tiers(ks, true); /* a tier the snapshot does not know yet */
    if (merge_tier(ks, rec))
        return 0;
    api_error_set(e, ERR_UNAVAILABLE, NULL, "The tiers cannot be read; retry.");
    return -1;
}

/* The record of hash from the process cache (its own limits); false when
 * absent or expired. */
static bool cached_record(struct keystore *ks, const char *hash, struct key_record *rec)
{
    char *blob = NULL;
    size_t len = 0;
    if (!cache_get(ks->records, hash, now_ms(), &blob, &len))
        return false;
    bool ok = len >= offsetof(struct key_record, limits) && len <= sizeof *rec;
    if (ok) {
        memcpy(rec, blob, len);
        ok = key_record_size(rec) == len;
    }
    free(blob);
    return ok;
}

int keystore_lookup(struct keystore *ks, struct redis_conn *redis, const char *hash,
                    enum keystore_source src, struct key_record *rec, struct api_error *e)
{
    char *json = NULL;
    bool cached = src == KS_ANY && cached_record(ks, hash, rec);
    if (src == KS_ANY)
        metrics_cache(ks->metrics, cached);
    if (!cached) {
        json = src == KS_FRESH ? NULL : redis_get(ks, redis, hash);
        if (json)
            metrics_record_load(ks->metrics, false);
        if (!json) {
            json = pg_get(ks, hash, e);
            if (!json)
                return -1;
            metrics_record_load(ks->metrics, true);
            char version[24];
            version_of(json, version);
            bool missing = strcmp(json, MISSING_RECORD) == 0;
            redis_put(ks, redis, hash, version, json, missing ? MISSING_TTL_MS : RECORD_TTL_MS);
        }
    }
    int rc = cached ? 0 : key_record_parse(json, rec);
    if (rc == 0 && !cached) {
        /* Every check of an active key runs the version-checking script, so
         * such a record may stay longer than one whose answer needs none. */
        bool vouched = rec->found && rec->status == KEY_ACTIVE;
        cache_put_ttl(ks->records, hash, rec, key_record_size(rec), now_ms(),
                      vouched ? local_ttl_ms() : ks->ttl_ms);
        uint64_t hits, misses, evictions;
        cache_stats(ks->records, &hits, &misses, &evictions);
        metrics_cache_evictions(ks->metrics, evictions);
    }
    free(json);
    if (rc != 0) {
        api_error_set(e, ERR_INTERNAL, NULL, "An internal error occurred.");
        return -1;
    }
    rec->from_local = cached;
    if (apply_tier(ks, rec, e) != 0) {
        key_record_fini(rec);
        return -1;
    }
    return 0;
}

/* Whether the event loop may use the tiers snapshot: while it is younger
 * than the TTL; past that, one caller is told no (it goes to a worker,
 * whose lookup reloads the tiers) and the others go on with the snapshot
 * until the reload lands -- but never with one older than
 * TIERS_STALE_MAX_MS past the TTL. */
#define TIERS_STALE_MAX_MS 1000
static bool tiers_usable(struct keystore *ks)
{
    pthread_mutex_lock(&ks->tiers_lock);
    int64_t age = now_ms() - ks->tiers_loaded_ms;
    bool ok;
    if (!ks->tiers || age >= ks->ttl_ms + TIERS_STALE_MAX_MS)
        ok = false;
    else if (age < ks->ttl_ms || ks->tiers_loading || ks->tiers_claimed)
        ok = true;
    else {
        ks->tiers_claimed = true;
        ok = false;
    }
    pthread_mutex_unlock(&ks->tiers_lock);
    return ok;
}

int keystore_lookup_local(struct keystore *ks, const char *hash, struct key_record *rec,
                          struct api_error *e)
{
    (void)e;
    if (!tiers_usable(ks) || !cached_record(ks, hash, rec))
        return 1;
    metrics_cache(ks->metrics, true);
    rec->from_local = true;
    if (rec->found && !merge_tier(ks, rec))
        return 1; /* a tier the snapshot does not know yet */
    return 0;
}

void keystore_forget(struct keystore *ks, const char *hash)
{
    cache_remove(ks->records, hash);
}

size_t keystore_cached(struct keystore *ks)
{
    return cache_count(ks->records);
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
            api_error_set(e, ERR_INTERNAL, NULL, "An internal error occurred.");
        else if (apply_tier(ks, rec, e) != 0) {
            key_record_fini(rec);
            rc = -1;
        }
    }
    pg_res_free(r);
    return rc;
}

int keystore_publish(struct keystore *ks, struct redis_conn *redis, struct pg_conn *conn,
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
        return -1;
    }
    int64_t newest = 0;
    int rc = 0;
    char owner[KEYS_OWNER_TAG_LEN] = "";
    for (int i = 0; i < pg_nrows(r); i++) {
        const char *hash = pg_val(r, i, 0), *json = pg_val(r, i, 1);
        struct key_record rec;
        if (!owner[0] && key_record_parse(json, &rec) == 0 && rec.found)
            strlcpy_tg(owner, rec.owner_tag, sizeof owner);
        char version[24];
        version_of(json, version);
        if (redis_put(ks, redis, hash, version, json, RECORD_TTL_MS) != 0)
            rc = -1;
        cache_remove(ks->records, hash);
        int64_t v;
        if (parse_int64(version, 0, INT64_MAX, &v) == 0 && v > newest)
            newest = v;
    }
    pg_res_free(r);
    struct api_error err;
    if (ratelimit_publish_version(redis, key_id, owner[0] ? owner : NULL, newest, &err) != 0) {
        metrics_redis_error(ks->metrics, REDIS_ERR_PUBLISH);
        log_warn("could not publish version %lld of key %s (the change feed retries): %s",
                 (long long)newest, key_id, err.message);
        rc = -1;
    }
    return rc;
}

/* The typed snapshot of the tiers JSON map {name: {limits, quota}}; NULL
 * when malformed. */
static struct tier_snap *tiers_parse(json_object *map, size_t *count)
{
    size_t n = (size_t)json_object_object_length(map), i = 0;
    struct tier_snap *t = xcalloc(n ? n : 1, sizeof *t);
    json_object_object_foreach(map, name, v)
    {
        struct tier_snap *x = &t[i++];
        strlcpy_tg(x->name, name, sizeof x->name);
        int nl = key_limits_parse(jsonx_get(v, "limits"), x->limits, LIMITS_MAX);
        if (nl < 0) {
            free(t);
            return NULL;
        }
        x->nlimits = (size_t)nl;
        json_object *q = jsonx_get(v, "quota");
        json_object *inc = q ? jsonx_get(q, "included") : NULL;
        json_object *ov = q ? jsonx_get(q, "overage") : NULL;
        x->has_quota = inc != NULL;
        x->quota_included = inc ? json_object_get_int64(inc) : 0;
        x->quota_blocks = ov && strcmp(json_object_get_string(ov), "block") == 0;
    }
    *count = n;
    return t;
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
    bool unchanged = false;
    char stamp[sizeof ks->tiers_stamp];
    stamp[0] = '\0';
    struct pg_conn *c = pg_acquire(ks->pg, &e);
    if (c) {
        /* The whole table only when a row was added or changed: every write
         * gives its row a new xmin, so the count and the sum of xmins move. */
        struct pg_res *r = pg_query(c,
                                    "SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0)"
                                    " FROM tiers",
                                    0, NULL, &e);
        if (r) {
            strlcpy_tg(stamp, pg_val(r, 0, 0), sizeof stamp);
            pg_res_free(r);
        }
        pthread_mutex_lock(&ks->tiers_lock);
        unchanged = ks->tiers && stamp[0] && strcmp(stamp, ks->tiers_stamp) == 0;
        pthread_mutex_unlock(&ks->tiers_lock);
        if (!unchanged)
            map = pg_query_json(c,
                                "SELECT coalesce(jsonb_object_agg(name, jsonb_build_object("
                                " 'limits', limits, 'quota', quota)), '{}') FROM tiers",
                                0, NULL, "tiers", &e);
        pg_release(ks->pg, c);
    }
    if (unchanged) {
        pthread_mutex_lock(&ks->tiers_lock);
        ks->tiers_loaded_ms = now_ms();
        ks->tiers_loading = false;
        ks->tiers_claimed = false;
        pthread_mutex_unlock(&ks->tiers_lock);
        return;
    }
    size_t count = 0;
    struct tier_snap *snap = map ? tiers_parse(map, &count) : NULL;
    if (!snap)
        log_warn("tiers reload failed (%s); keeping the previous snapshot",
                 map ? "a tier is malformed" : e.message);
    json_object_put(map);
    pthread_mutex_lock(&ks->tiers_lock);
    if (snap) {
        free(ks->tiers);
        ks->tiers = snap;
        ks->ntiers = count;
        /* Taken before the table was read: a change in between only
         * causes one more reload. */
        memcpy(ks->tiers_stamp, stamp, sizeof ks->tiers_stamp);
    }
    ks->tiers_loaded_ms = now_ms(); /* after a failure too: retry after a TTL */
    ks->tiers_loading = false;
    ks->tiers_claimed = false;
    pthread_mutex_unlock(&ks->tiers_lock);
}

/* Merges the tier's limits under rec's own and fills the quota; false when
 * the snapshot does not hold the tier. */
static bool merge_tier(struct keystore *ks, struct key_record *rec)
{
    struct key_limit own[LIMITS_MAX];
    size_t nown = rec->nlimits < LIMITS_MAX ? rec->nlimits : LIMITS_MAX;
    memcpy(own, rec->limits, nown * sizeof own[0]);
    pthread_mutex_lock(&ks->tiers_lock);
    const struct tier_snap *t = NULL;
    for (size_t i = 0; i < ks->ntiers && !t; i++)
        if (strcmp(ks->tiers[i].name, rec->tier) == 0)
            t = &ks->tiers[i];
    if (t) {
        rec->has_quota = t->has_quota;
        rec->quota_included = t->quota_included;
        rec->quota_blocks = t->quota_blocks;
        rec->nlimits = key_limits_merge(t->limits, t->nlimits, own, nown, rec->limits);
    }
    pthread_mutex_unlock(&ks->tiers_lock);
    return t != NULL;
}
