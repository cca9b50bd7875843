#include "keywatch.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "keystore.h"
#include "log.h"
#include "redis.h"
#include "util.h"

struct keywatch {
    struct keystore *ks;
    struct redis_conn *redis;
    int interval_ms;
    pthread_t tid;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
};

static void *watch_main(void *arg)
{
    struct keywatch *w = arg;
    bool failing = false;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        pthread_mutex_unlock(&w->lock);
        struct api_error e;
        int rc = keystore_follow_changes(w->ks, w->redis, &e);
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

struct keywatch *keywatch_start(struct keystore *ks, const struct config *cfg, int interval_ms,
                                struct api_error *err)
{
    struct keywatch *w = xcalloc(1, sizeof *w);
    w->ks = ks;
    w->interval_ms = interval_ms;
    if (cfg->redis_nodes[0])
        w->redis = redis_conn_new_cluster(NULL, cfg->redis_nodes, (int)cfg->redis_timeout_ms,
                                          cfg->redis_password, err);
    else
        w->redis = redis_conn_new(NULL, cfg->redis_host, (int)cfg->redis_port,
                                  (int)cfg->redis_timeout_ms, cfg->redis_password);
    if (!w->redis) {
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    if (pthread_create(&w->tid, NULL, watch_main, w) != 0) {
        api_error_set(err, ERR_INTERNAL, NULL, "cannot start the key change feed thread");
        redis_conn_free(w->redis);
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
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
