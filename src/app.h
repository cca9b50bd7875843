/* app: the one per-process context (configuration snapshot, pools, caches,
 * routes) and the per-thread worker context.  Nothing else is global but the
 * logger. */
#ifndef TOLLGATE_APP_H
#define TOLLGATE_APP_H

#include "config.h"
#include "util.h"

struct pg_pool;
struct cache;
struct keystore;
struct router;
struct redis_conn;
struct rtls;
struct metrics;
struct localrl;
struct usagepub;
struct evloop;

struct app {
    struct config cfg;
    struct evloop *loop;      /* the process's event loop (run by the main program) */
    struct pg_pool *pg;
    struct cache *tokens;  /* admin token hash -> principal */
    struct keystore *keys; /* key records and tiers for the check path */
    struct cache *denials; /* recent 429s by key, endpoint and cost */
    struct localrl *local; /* windows while Redis is down, in local mode */
    struct router *router;
    struct metrics *metrics;
    struct rtls *rtls;        /* Redis over TLS: the process's one context, or NULL */
    struct redis_conn *redis; /* shared by the workers (pipelined) */
    struct usagepub *pub;     /* usage journal and publisher; NULL when usage is off */
};

/* A worker thread's context. */
struct worker {
    struct app *app;
    struct redis_conn *redis; /* borrowed from app */
    int index;
};

/* Loads and validates the configuration at path, opens the log, creates the
 * event loop (not yet running) and the pools (connections open lazily; the
 * Redis ones are driven by the loop, so it must run while anything uses
 * Redis).  Returns 0 or -1 with err filled; on
 * failure nothing needs releasing. */
int app_init(struct app *app, const char *path, char *const *envp, struct api_error *err) TG_WUR;
void app_fini(struct app *app);

/* The configuration path: explicit if given, else $TOLLGATE_CONFIG, else the
 * installed default. */
const char *app_config_path(const char *explicit_path);

void worker_init(struct worker *w, struct app *app, int index);
void worker_fini(struct worker *w);

#endif
