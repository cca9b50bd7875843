/* ctl_config: tollgatectl config check -- the configuration validated as
 * the daemons validate it at start, then each store it names connected
 * to, with how long it took to answer. */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "amqpx.h"
#include "ctl.h"
#include "ctl_table.h"
#include "pg.h"
#include "redis.h"
#include "rtls.h"

/* One store's line: what answered (or why not) and how fast. */
struct probe {
    const char *store;
    char target[160];
    char state[256];
    double ms;
    bool ok;
};

/* host:port/dbname of a conninfo, never its password. */
static void pg_target(const char *conninfo, char *out, size_t outlen)
{
    const char *host = "(default)", *port = "5432", *db = "(default)";
    PQconninfoOption *o = PQconninfoParse(conninfo, NULL);
    for (PQconninfoOption *it = o; it && it->keyword; it++) {
        if (!it->val || !*it->val)
            continue;
        if (strcmp(it->keyword, "host") == 0)
            host = it->val;
        else if (strcmp(it->keyword, "port") == 0)
            port = it->val;
        else if (strcmp(it->keyword, "dbname") == 0)
            db = it->val;
    }
    snprintf(out, outlen, "%s:%s/%s", host, port, db);
    PQconninfoFree(o);
}

static void probe_pg(const struct config *cfg, struct probe *p)
{
    struct api_error e = {0};
    const char *sql = "SELECT current_user,"
                      " CASE WHEN to_regclass('public.schema_migrations') IS NULL"
                      "  THEN ', schema not migrated' ELSE '' END";
    p->store = "postgresql";
    pg_target(cfg->pg_conninfo, p->target, sizeof p->target);
    int64_t t0 = mono_ns();
    struct pg_conn *c = pg_connect(cfg->pg_conninfo, &e);
    struct pg_res *r = c ? pg_query(c, sql, 0, NULL, &e) : NULL;
    p->ms = (double)(mono_ns() - t0) / 1e6;
    p->ok = r != NULL;
    if (r)
        snprintf(p->state, sizeof p->state, "answers as %s%s", pg_val(r, 0, 0), pg_val(r, 0, 1));
    else
        snprintf(p->state, sizeof p->state, "%s", c ? e.message : "cannot connect (see above)");
    pg_res_free(r);
    pg_disconnect(c);
}

static void probe_redis(const struct config *cfg, struct rtls *tls, struct probe *p)
{
    struct api_error e = {0};
    p->store = "redis";
    if (*cfg->redis_nodes)
        snprintf(p->target, sizeof p->target, "cluster %s%s", cfg->redis_nodes,
                 cfg->redis_tls ? " (TLS)" : "");
    else
        snprintf(p->target, sizeof p->target, "%s:%lld%s", cfg->redis_host,
                 (long long)cfg->redis_port, cfg->redis_tls ? " (TLS)" : "");
    int64_t t0 = mono_ns();
    struct redis_conn *rc = redis_conn_from_config(NULL, cfg, tls, &e);
    p->ok = rc && redis_ping(rc, &e) == 0;
    if (p->ok && *cfg->redis_nodes) {
        /* A cluster answering PING may still refuse commands: ask its state. */
        const char *argv[] = {"CLUSTER", "INFO"};
        redisReply *r = redis_command(rc, 2, argv, NULL, &e);
        p->ok = r && r->type == REDIS_REPLY_STRING && strstr(r->str, "cluster_state:ok");
        snprintf(p->state, sizeof p->state, "%s",
                 !r ? e.message : p->ok ? "answers, cluster_state:ok" : "cluster state is not ok");
        if (r)
            freeReplyObject(r);
    } else {
        snprintf(p->state, sizeof p->state, "%s", p->ok ? "answers PING" : e.message);
    }
    p->ms = (double)(mono_ns() - t0) / 1e6;
    redis_conn_free(rc);
}

static void probe_amqp(const struct config *cfg, struct probe *p)
{
    struct api_error e = {0};
    p->store = "rabbitmq";
    snprintf(p->target, sizeof p->target, "%s:%lld%s", cfg->amqp_host, (long long)cfg->amqp_port,
             cfg->amqp_tls ? " (TLS)" : "");
    int64_t t0 = mono_ns();
    struct amqpx *c = amqpx_connect(cfg, 5000, &e);
    p->ms = (double)(mono_ns() - t0) / 1e6;
    p->ok = c != NULL;
    snprintf(p->state, sizeof p->state, "%s", c ? "answers, logged in" : e.message);
    amqpx_close(c);
}

static const struct ctl_opt check_opts[] = {
    {"offline", NULL, "validate the file only; connect to nothing"},
    {"json", NULL, "print the stores' states as JSON"},
    {NULL, NULL, NULL},
};

static int config_check(struct ctl *ctl, const struct ctl_args *a)
{
    /* Loading validated the values; the Redis TLS context is built as the
     * responders build it at start, which reads the certificates. */
    struct api_error e;
    struct rtls *tls = rtls_from_config(&ctl->cfg, &e);
    if (ctl->cfg.redis_tls && !tls) {
        fprintf(stderr, "tollgatectl: %s\n", e.message);
        return CTL_FAIL;
    }
    if (ctl_args_has(a, "offline")) {
        rtls_free(tls);
        printf("configuration OK\n");
        return CTL_OK;
    }
    struct probe p[3];
    memset(p, 0, sizeof p);
    probe_pg(&ctl->cfg, &p[0]);
    probe_redis(&ctl->cfg, tls, &p[1]);
    probe_amqp(&ctl->cfg, &p[2]);
    rtls_free(tls);
    json_object *rows = json_object_new_array();
    bool all = true;
    for (size_t i = 0; i < 3; i++) {
        json_object *row = json_object_new_object();
        json_object_object_add(row, "store", json_object_new_string(p[i].store));
        json_object_object_add(row, "target", json_object_new_string(p[i].target));
        json_object_object_add(row, "ok", json_object_new_boolean(p[i].ok));
        json_object_object_add(row, "state", json_object_new_string(p[i].state));
        char ms[32];
        snprintf(ms, sizeof ms, "%.1f", p[i].ms);
        json_object_object_add(row, "ms", json_object_new_double_s(p[i].ms, ms));
        json_object_array_add(rows, row);
        all &= p[i].ok;
    }
    if (ctl_args_has(a, "json")) {
        json_object *doc = json_object_new_object();
        json_object_object_add(doc, "configuration", json_object_new_string("ok"));
        json_object_object_add(doc, "stores", json_object_get(rows));
        printf("%s\n", json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(doc);
    } else {
        static const struct ctl_col cols[] = {
            {"STORE", "store"}, {"TARGET", "target"}, {"OK", "ok"}, {"MS", "ms"}, {"STATE", "state"}};
        printf("configuration OK\n\n");
        ctl_table_print(stdout, cols, 5, rows);
    }
    json_object_put(rows);
    if (!all)
        fprintf(stderr, "tollgatectl: a store does not answer\n");
    return all ? CTL_OK : CTL_FAIL;
}

static const struct ctl_cmd cmds[] = {
    {"check", "", "validate the configuration, then connect to each store",
     "Exit 1 when the configuration is invalid or a store does not answer; --offline checks\n"
     "the file and the certificates it names without connecting.",
     check_opts, 0, 0, CTL_LOCAL, config_check},
};

const struct ctl_group ctl_config_group = {"config", "the configuration file", cmds,
                                           sizeof cmds / sizeof cmds[0]};
