#include "app.h"

#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "evloop.h"
#include "keystore.h"
#include "localrl.h"
#include "log.h"
#include "metrics.h"
#include "pg.h"
#include "redis.h"
#include "router.h"
#include "rtls.h"
#include "usagepub.h"

#define TOKEN_CACHE_ENTRIES 1024
#define DENIAL_CACHE_ENTRIES 10000
#define LOCAL_WINDOWS 100000

const char *app_config_path(const char *explicit_path)
{
    if (explicit_path && *explicit_path)
        return explicit_path;
    const char *env = getenv("TOLLGATE_CONFIG");
    return env && *env ? env : CONFIG_DEFAULT_PATH;
}

int app_init(struct app *app, const char *path, char *const *envp, struct api_error *err)
{
    memset(app, 0, sizeof *app);
    if (config_load(&app->cfg, path, envp, err) != 0)
        return -1;
    if (log_open(app->cfg.log_file, (enum log_level)log_level_parse(app->cfg.log_level)) != 0) {
        api_error_set(err, ERR_INTERNAL, NULL, "%s: cannot open log file %s", path, app->cfg.log_file);
        config_fini(&app->cfg);
        return -1;
    }
    app->metrics = metrics_open(app->cfg.metrics_dir, err);
    if (!app->metrics) {
        log_close();
        config_fini(&app->cfg);
        return -1;
    }
    /* Built now, so that a certificate that will not load stops the start. */
    app->rtls = rtls_from_config(&app->cfg, err);
    if (app->cfg.redis_tls && !app->rtls) {
        metrics_close(app->metrics);
        log_close();
        config_fini(&app->cfg);
        return -1;
    }
    app->pg = pg_pool_new(app->cfg.pg_conninfo, (int)app->cfg.pg_pool_size, app->cfg.pg_prepare != 0);
    app->loop = evloop_new();
    app->redis = redis_conn_from_config(app->loop, &app->cfg, app->rtls, err);
    if (!app->redis) { /* config_load validated the list: not expected */
        rtls_free(app->rtls);
        evloop_free(app->loop);
        pg_pool_free(app->pg);
        metrics_close(app->metrics);
        log_close();
        config_fini(&app->cfg);
        return -1;
    }
    app->tokens = cache_new(TOKEN_CACHE_ENTRIES, app->cfg.cache_ttl_ms);
    app->keys = keystore_new(app->pg, app->metrics, app->cfg.cache_ttl_ms);
    app->denials = cache_new(DENIAL_CACHE_ENTRIES, app->cfg.cache_ttl_ms);
    app->local = localrl_new(LOCAL_WINDOWS);
    app->router = router_new(); /* the main program adds the routes */
    if (app->cfg.usage_enabled) {
        app->pub = usagepub_start(&app->cfg, app->metrics, err);
        if (!app->pub) {
            app_fini(app);
            return -1;
        }
    }
    return 0;
}

void app_fini(struct app *app)
{
    usagepub_stop(app->pub); /* first: publishes what the workers journalled */
    router_free(app->router);
    keystore_free(app->keys);
    cache_free(app->denials);
    localrl_free(app->local);
    cache_free(app->tokens);
    pg_pool_free(app->pg);
    redis_conn_free(app->redis);
    rtls_free(app->rtls); /* after every connection that used it */
    evloop_free(app->loop);
    metrics_close(app->metrics);
    config_fini(&app->cfg);
    log_close();
    memset(app, 0, sizeof *app);
}

void worker_init(struct worker *w, struct app *app, int index)
{
    w->app = app;
    w->index = index;
    w->redis = app->redis;
}

void worker_fini(struct worker *w)
{
    w->redis = NULL;
}
