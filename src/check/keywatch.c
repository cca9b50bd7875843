#include "keywatch.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "keystore.h"
#include "log.h"
#include "pg.h"
#include "privacy.h"
#include "redis.h"
#include "util.h"

/* The feed re-reads this far behind its position: a transaction can commit
 * a little after the time it stamped on the row ... */
#define FEED_SLACK_US 5000000
/* ... and remembers what it published for longer than that. */
#define FEED_SEEN_MS 60000
#define FEED_SEEN_MAX 100000
#define FEED_PAGE 500 /* rows per query; the SQL says the same */

struct keywatch {
    struct keystore *ks;
    struct pg_pool *pg;
    struct redis_conn *redis;
    int64_t since_us;   /* changes up to here are published; 0: not started */
    int64_t erased_us;  /* erasures up to here are forgotten */
    struct cache *seen; /* key id -> the version this feed last published */
    int interval_ms;
    pthread_t tid;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
};

/* The database's clock in microseconds: the feed's positions are its. */
static int db_now_us(struct pg_conn *c, int64_t *us, struct api_error *e)
{
    struct pg_res *r = pg_query(c, "SELECT (extract(epoch FROM clock_timestamp()) * 1e6)::bigint",
                                0, NULL, e);
    if (!r)
        return -1;
    *us = pg_int(r, 0, 0);
    pg_res_free(r);
    return 0;
}

/* Publishes key_id at version unless this feed already did; false when the
 * publication failed. */
static bool feed_publish(struct keywatch *w, struct pg_conn *c, const char *key_id,
                         int64_t version)
{
    char *blob = NULL;
    size_t len = 0;
    int64_t seen = -1;
    if (cache_get(w->seen, key_id, now_ms(), &blob, &len) && len == sizeof seen)
        memcpy(&seen, blob, sizeof seen);
    free(blob);
    /* A new key (version 1) was never cached anywhere in an older form. */
    if (seen >= version || version <= 1)
        return true;
    if (keystore_publish(w->ks, w->redis, c, key_id) != 0)
        return false;
    cache_put(w->seen, key_id, &version, sizeof version, now_ms());
    return true;
}

/* Forgets the erased key of row i (key_id, version, hashes joined by ',')
 * unless this feed already did; false when Redis did not take it. */
static bool feed_forget(struct keywatch *w, const struct pg_res *r, int i)
{
    char seen_key[80];
    snprintf(seen_key, sizeof seen_key, "erased:%s", pg_val(r, i, 0));
    char *blob = NULL;
    size_t len = 0;
    bool seen = cache_get(w->seen, seen_key, now_ms(), &blob, &len);
    free(blob);
    if (seen)
        return true;
    char *list = xstrdup(pg_val(r, i, 2)), *save = NULL;
    size_t n = 0, cap = 4;
    const char **hashes = xmalloc(cap * sizeof *hashes);
    for (char *h = strtok_r(list, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
        if (n == cap)
            hashes = xrealloc(hashes, (cap *= 2) * sizeof *hashes);
        hashes[n++] = h;
    }
    struct api_error e;
    bool ok = privacy_forget_key(w->ks, w->redis, pg_val(r, i, 0), NULL, pg_int(r, i, 1), hashes,
                                 n, &e) == 0;
    if (ok)
        cache_put(w->seen, seen_key, "", 0, now_ms());
    else
        log_warn("could not forget erased key %s (retrying): %s", pg_val(r, i, 0), e.message);
    free(hashes);
    free(list);
    return ok;
}

/* The keys erased since the last pass (erased_keys, read like the changes
 * below): each process forgets them again, so that an erasure whose own
 * Redis writes failed still reaches every cache.  Returns 0, or -1 with e
 * filled; an erasure that could not be forgotten is taken again. */
static int follow_erasures(struct keywatch *w, struct pg_conn *c, struct api_error *e)
{
    char from_us[24], after_id[sizeof ((struct key_record *)0)->id] = "";
    int64_t newest = w->erased_us;
    bool all = true;
    snprintf(from_us, sizeof from_us, "%lld", (long long)(w->erased_us - FEED_SLACK_US));
    for (;;) {
        const char *p[] = {from_us, after_id};
        struct pg_res *r = pg_query(
            c,
            "SELECT key_id, version, array_to_string(hashes, ','),"
            " (extract(epoch FROM erased_at) * 1e6)::bigint FROM erased_keys"
            " WHERE (erased_at, key_id) > (to_timestamp(0) + $1::bigint * interval '1 microsecond', $2)"
            " ORDER BY erased_at, key_id LIMIT 500",
            2, p, e);
        if (!r)
            return -1;
        int n = pg_nrows(r);
        for (int i = 0; i < n; i++) {
            if (!feed_forget(w, r, i))
                all = false;
            if (pg_int(r, i, 3) > newest)
                newest = pg_int(r, i, 3);
        }
        if (n > 0) {
            snprintf(from_us, sizeof from_us, "%lld", (long long)pg_int(r, n - 1, 3));
            strlcpy_tg(after_id, pg_val(r, n - 1, 0), sizeof after_id);
        }
        pg_res_free(r);
        if (n < FEED_PAGE)
            break;
    }
    if (all)
        w->erased_us = newest;
    return 0;
}

/* One pass: every key changed since the last pass (by updated_at, re-read
 * FEED_SLACK_US behind for transactions that commit late) is published
 * again unless this feed already published that version; the first pass
 * only takes the database's time as the start.  Returns 0, or -1 with e
 * filled; a change whose publication failed is taken again next pass. */
static int follow_changes(struct keywatch *w, struct api_error *e)
{
    struct pg_conn *c = pg_acquire(w->pg, e);
    if (!c)
        return -1;
    int rc = 0;
    if (w->since_us == 0) {
        /* the process cache starts empty: only later changes matter */
        rc = db_now_us(c, &w->since_us, e);
        w->erased_us = w->since_us;
        pg_release(w->pg, c);
        return rc;
    }
    char from_us[24], after_id[sizeof ((struct key_record *)0)->id] = "";
    int64_t newest = w->since_us;
    bool all_published = true;
    snprintf(from_us, sizeof from_us, "%lld", (long long)(w->since_us - FEED_SLACK_US));
    for (;;) {
        const char *p[] = {from_us, after_id};
        struct pg_res *r = pg_query(
            c,
            "SELECT id, version, (extract(epoch FROM updated_at) * 1e6)::bigint FROM keys"
            " WHERE (updated_at, id) > (to_timestamp(0) + $1::bigint * interval '1 microsecond', $2)"
            " ORDER BY updated_at, id LIMIT 500",
            2, p, e);
        if (!r) {
            rc = -1;
            break;
        }
        int n = pg_nrows(r);
        for (int i = 0; i < n; i++) {
            if (!feed_publish(w, c, pg_val(r, i, 0), pg_int(r, i, 1)))
                all_published = false;
            if (pg_int(r, i, 2) > newest)
                newest = pg_int(r, i, 2);
        }
        if (n > 0) {
            snprintf(from_us, sizeof from_us, "%lld", (long long)pg_int(r, n - 1, 2));
            strlcpy_tg(after_id, pg_val(r, n - 1, 0), sizeof after_id);
        }
        pg_res_free(r);
        if (n < FEED_PAGE)
            break;
    }
    if (rc == 0)
        rc = follow_erasures(w, c, e);
    pg_release(w->pg, c);
    /* Not past a change that could not be published: it is taken again. */
    if (rc == 0 && all_published)
        w->since_us = newest;
    return rc;
}

static void *watch_main(void *arg)
{
    struct keywatch *w = arg;
    bool failing = false;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        pthread_mutex_unlock(&w->lock);
        struct api_error e;
        int rc = follow_changes(w, &e);
        /* one line when the feed stops and one when it resumes, not one a second */
        if (rc != 0 && !failing)
            log_warn("key change feed: %s; retrying every %d ms", e.message, w->interval_ms);
        else if (rc == 0 && failing)
            log_info("key change feed: running again");
        failing = rc != 0;
        pthread_mutex_lock(&w->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)(w->interval_ms % 1000) * 1000000L;
        until.tv_sec += w->interval_ms / 1000 + until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        while (!w->stop && pthread_cond_timedwait(&w->wake, &w->lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

struct keywatch *keywatch_start(struct keystore *ks, struct pg_pool *pg, const struct config *cfg,
                                struct rtls *tls, int interval_ms, struct api_error *err)
{
    struct keywatch *w = xcalloc(1, sizeof *w);
    w->ks = ks;
    w->pg = pg;
    w->interval_ms = interval_ms;
    w->redis = redis_conn_from_config(NULL, cfg, tls, err);
    if (!w->redis) {
        free(w);
        return NULL;
    }
    w->seen = cache_new(FEED_SEEN_MAX, FEED_SEEN_MS);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    if (pthread_create(&w->tid, NULL, watch_main, w) != 0) {
        api_error_set(err, ERR_INTERNAL, NULL, "cannot start the key change feed thread");
        redis_conn_free(w->redis);
        cache_free(w->seen);
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
    }
    return w;
}

void keywatch_stop(struct keywatch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->tid, NULL);
    redis_conn_free(w->redis);
    cache_free(w->seen);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
