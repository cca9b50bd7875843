#include "migrate.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* An arbitrary constant naming Tollgate's migration lock. */
#define MIGRATE_LOCK "7411"

static int apply_one(struct pg_conn *conn, const struct migration *m, int *applied,
                     struct api_error *e)
{
    const char *p[] = {m->name};
    if (pg_begin(conn, e) != 0)
        return -1;
    struct pg_res *r = pg_query(conn, "SELECT 1 FROM schema_migrations WHERE name = $1", 1, p, e);
    if (!r)
        goto fail;
    int done = pg_nrows(r);
    pg_res_free(r);
    if (!done) {
        if (pg_script(conn, m->sql, e) != 0)
            goto fail;
        r = pg_query(conn, "INSERT INTO schema_migrations (name) VALUES ($1)", 1, p, e);
        if (!r)
            goto fail;
        pg_res_free(r);
        (*applied)++;
        log_info("applied migration %s", m->name);
    }
    return pg_commit(conn, e);
fail:
    pg_rollback(conn);
    return -1;
}

int migrate_run(struct pg_conn *conn, int *applied, struct api_error *e)
{
    *applied = 0;
    if (pg_script(conn,
                  "CREATE TABLE IF NOT EXISTS schema_migrations ("
                  " name text PRIMARY KEY,"
                  " applied_at timestamptz NOT NULL DEFAULT now())",
                  e) != 0)
        return -1;
    if (pg_script(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK ")", e) != 0)
        return -1;
    int rc = 0;
    for (const struct migration *m = migrations; m->name && rc == 0; m++)
        rc = apply_one(conn, m, applied, e);
    struct api_error ignore;
    if (pg_script(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK ")", &ignore) != 0)
        log_warn("could not release the migration lock (released at disconnect)");
    return rc;
}

/* The user a conninfo names, or NULL (malloc'd). */
static char *conninfo_user(const char *conninfo, struct api_error *e)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
    if (!opts) {
        api_error_set(e, ERR_INTERNAL, NULL, "[postgres] conninfo: %s", msg ? msg : "out of memory");
        PQfreemem(msg);
        return NULL;
    }
    char *user = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "user") == 0 && o->val && *o->val)
            user = xstrdup(o->val);
    PQconninfoFree(opts);
    return user;
}

int migrate_grant(struct pg_conn *conn, const char *app_conninfo, char **role,
                  struct api_error *e)
{
    *role = NULL;
    api_error_set(e, ERR_NONE, NULL, "%s", "");
    char *user = conninfo_user(app_conninfo, e);
    if (!user)
        return e->code == ERR_NONE ? 0 : -1;
    const char *p[] = {user};
    struct pg_res *r = pg_query(conn, "SELECT $1 <> current_user", 1, p, e);
    if (!r) {
        free(user);
        return -1;
    }
    bool other = strcmp(pg_val(r, 0, 0), "t") == 0;
    pg_res_free(r);
    if (!other) {
        free(user);
        return 0;
    }
    r = pg_query(conn, "SELECT tg_grant_app($1)", 1, p, e);
    if (!r) {
        free(user);
        return -1;
    }
    pg_res_free(r);
    *role = user;
    return 0;
}
