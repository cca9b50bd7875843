/* restore: tollgatectl restore FILE, the way back from a backup
 * (backup.h): into an empty database only, then checked against the
 * manifest. */
#ifndef TOLLGATE_RESTORE_H
#define TOLLGATE_RESTORE_H

#include <stdint.h>

#include "config.h"
#include "error.h"
#include "util.h"

struct pg_conn;

/* The number of tables (ordinary and partitioned) in conn's current schema
 * into *n.  Returns 0, or -1 with e filled. */
int restore_count_tables(struct pg_conn *conn, int64_t *n, struct api_error *e) TG_WUR;

/* tollgatectl restore FILE (the .dump or its .json): returns the exit
 * status (0 restored and every check passed, 1 refused or failed, 2
 * usage), after printing each check. */
int restore_main(const struct config *cfg, int argc, char **argv);

#endif
