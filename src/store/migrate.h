/* migrate: applies the numbered migrations of sql/ (embedded at build time)
 * exactly once each, recording them in schema_migrations. */
#ifndef TOLLGATE_MIGRATE_H
#define TOLLGATE_MIGRATE_H

#include "pg.h"

struct migration {
    const char *name; /* "001_init" */
    const char *sql;
};

/* The table, ending with a {NULL, NULL} entry (src/migrations.c). */
extern const struct migration migrations[];

/* Applies, each in its own transaction and under an advisory lock (so two
 * concurrent runs cannot both apply one), every migration not yet recorded.
 * *applied receives how many ran.  Returns 0 or -1 with e filled. */
int migrate_run(struct pg_conn *conn, int *applied, struct api_error *e) TG_WUR;

/* The role that app_conninfo logs in as gets exactly the grants the
 * daemons need (sql/010_roles.sql, tg_grant_app), from conn's role, which
 * owns the schema.  *role receives that role's name (caller frees), or NULL
 * when app_conninfo names no user or the same role as conn: then nothing is
 * granted, and the daemons run with the owner's rights.  Returns 0 or -1
 * with e filled. */
int migrate_grant(struct pg_conn *conn, const char *app_conninfo, char **role,
                  struct api_error *e) TG_WUR;

#endif
