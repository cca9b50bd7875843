/* Liveness and readiness: no authentication. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "metrics.h"
#include "router.h"
#include "common.h"
#include "handlers.h"
#include "redis.h"

/* Readiness probes wait at most this long for each store. */
#define PROBE_TIMEOUT_MS 1000

static void healthz(struct http_req *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string("ok"));
    http_reply(r, 200, o, NULL);
}

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

static bool probe_redis(struct http_req *r)
{
    struct api_error err;
    return redis_ping(r->worker->redis, &err) == 0;
}

static void readyz(struct http_req *r)
{
    struct api_error err;
    bool pg = probe_pg(r), redis = probe_redis(r);
    bool amqp = broker_ping(&r->app->cfg, PROBE_TIMEOUT_MS, &err) == 0;
    json_object *checks = json_object_new_object();
    json_object_object_add(checks, "postgres", json_object_new_string(pg ? "ok" : "failed"));
    json_object_object_add(checks, "redis", json_object_new_string(redis ? "ok" : "failed"));
    json_object_object_add(checks, "rabbitmq", json_object_new_string(amqp ? "ok" : "failed"));
    bool ready = pg && redis && amqp;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string(ready ? "ready" : "unavailable"));
    json_object_object_add(o, "checks", checks);
    if (!ready) {
        json_object *err_obj = json_object_new_object();
        json_object_object_add(err_obj, "code", json_object_new_string("unavailable"));
        json_object_object_add(err_obj, "message",
                               json_object_new_string(!pg      ? "PostgreSQL does not answer."
                                                      : !redis ? "Redis does not answer."
                                                               : "RabbitMQ does not answer."));
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
