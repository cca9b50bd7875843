/* Liveness and readiness: no authentication.
 *
 * /healthz only says the process serves.  /readyz says whether it can answer
 * checks correctly: 503 only when it cannot (PostgreSQL unreachable while no
 * key record is cached, or Redis unreachable when on_store_error = closed).
 * A store whose loss checks survive is "degraded" with a 200; RabbitMQ is
 * read from the publisher's own connection state (usage waits in the journal
 * meanwhile), so no probe opens a broker connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore.h"
#include "metrics.h"
#include "router.h"
#include "common.h"
#include "handlers.h"
#include "redis.h"
#include "usagepub.h"

static void healthz(struct http_req *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string("ok"));
    http_reply(r, 200, o, NULL);
}

/* Through the pool: a probe reuses a pooled connection. */
static bool probe_pg(struct http_req *r)
{
    struct api_error e;
    struct pg_conn *c = pg_acquire(r->app->pg, &e);
    if (!c)
        return false;
    struct pg_res *res = pg_query(c, "SELECT 1", 0, NULL, &e);
    pg_release(r->app->pg, c);
    pg_res_free(res);
    return res != NULL;
}

/* On the worker's shared connection (pipelined with the checks). */
static bool probe_redis(struct http_req *r)
{
    struct api_error err;
    return redis_ping(r->worker->redis, &err) == 0;
}

enum dep_state { DEP_OK, DEP_DEGRADED, DEP_FAILED, DEP_OFF };
static const char *const dep_names[] = {"ok", "degraded", "failed", "off"};

static void readyz(struct http_req *r)
{
    const struct app *app = r->app;
    enum dep_state pg = DEP_OK, redis = DEP_OK, amqp = DEP_OFF;
    if (!probe_pg(r))
        pg = keystore_cached(app->keys) > 0 ? DEP_DEGRADED : DEP_FAILED;
    if (!probe_redis(r))
        redis = app->cfg.store_error == STORE_ERROR_CLOSED ? DEP_FAILED : DEP_DEGRADED;
    if (app->pub)
        amqp = usagepub_connected(app->pub) ? DEP_OK : DEP_DEGRADED;
    json_object *checks = json_object_new_object();
    json_object_object_add(checks, "postgres", json_object_new_string(dep_names[pg]));
    json_object_object_add(checks, "redis", json_object_new_string(dep_names[redis]));
    json_object_object_add(checks, "rabbitmq", json_object_new_string(dep_names[amqp]));
    bool ready = pg != DEP_FAILED && redis != DEP_FAILED;
    bool degraded = pg == DEP_DEGRADED || redis == DEP_DEGRADED || amqp == DEP_DEGRADED;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string(!ready     ? "unavailable"
                                                               : degraded ? "degraded"
                                                                          : "ready"));
    json_object_object_add(o, "checks", checks);
    if (!ready) {
        json_object *err_obj = json_object_new_object();
        json_object_object_add(err_obj, "code", json_object_new_string("unavailable"));
        json_object_object_add(err_obj, "message",
                               json_object_new_string(pg == DEP_FAILED
                                                          ? "PostgreSQL does not answer and no key is cached."
                                                          : "Redis does not answer and on_store_error is closed."));
        json_object_object_add(o, "error", err_obj);
    }
    http_reply(r, ready ? 200 : 503, o, NULL);
}

/* Prometheus text, summed over the pool's processes (see metrics.h). */
static void metrics_route(struct http_req *r)
{
    const struct router *rt = r->app->router;
    size_t n = router_count(rt);
    char **names = xcalloc(n ? n : 1, sizeof *names);
    for (size_t i = 0; i < n; i++) {
        const struct route *x = router_get(rt, i);
        size_t len = strlen(x->method) + strlen(x->pattern) + 2;
        names[i] = xmalloc(len);
        snprintf(names[i], len, "%s %s", x->method, x->pattern);
    }
    char *text = metrics_render(r->app->metrics, (const char *const *)names, n);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    http_reply_text(r, 200, "text/plain; version=0.0.4", text, strlen(text));
    free(text);
}

const struct route health_routes[] = {
    {"GET", "/healthz", 0, healthz, 0, NULL},
    {"GET", "/readyz", 0, readyz, 0, NULL},
    {"GET", "/metrics", 0, metrics_route, 0, NULL},
};
const size_t health_routes_len = TG_ARRAY_LEN(health_routes);
