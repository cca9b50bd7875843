/* pg: a small per-process PostgreSQL connection pool and query wrappers.
 * Every query is parameterised; errors become API errors (unique violation,
 * deadlock or serialization failure: conflict; a rule of the schema
 * (SQLSTATE TGxxx): invalid_argument with its column and message;
 * connection trouble: unavailable; anything else: internal) carrying the SQLSTATE, and are
 * logged with it, never with parameters. */
#ifndef TOLLGATE_PG_H
#define TOLLGATE_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jsonx.h"

struct pg_pool;
struct pg_conn;
struct pg_res;

/* Connections are opened lazily, at most size of them.  With prepare, each
 * connection prepares a statement the first time it runs its SQL text and
 * then only executes it; without (behind a pooler in transaction mode,
 * where the next statement may meet another server session), every query
 * is parsed and planned anew. */
struct pg_pool *pg_pool_new(const char *conninfo, int size, bool prepare);
void pg_pool_free(struct pg_pool *pool);

/* Borrows a connection, waiting up to 2 s for one; NULL with 503 in e when
 * none can be had or the server is unreachable.  Give it back with
 * pg_release. */
struct pg_conn *pg_acquire(struct pg_pool *pool, struct api_error *e);
void pg_release(struct pg_pool *pool, struct pg_conn *conn);

/* Opens one connection outside any pool (for tollgatectl). */
struct pg_conn *pg_connect(const char *conninfo, struct api_error *e);
void pg_disconnect(struct pg_conn *conn);

/* Runs sql with n text parameters (NULL entries are SQL NULL).  Returns the
 * result (caller frees with pg_res_free) or NULL with e filled. */
struct pg_res *pg_query(struct pg_conn *conn, const char *sql, int n, const char *const *params,
                        struct api_error *e);
/* Runs a script of several statements without parameters. */
int pg_script(struct pg_conn *conn, const char *sql, struct api_error *e) TG_WUR;

int pg_begin(struct pg_conn *conn, struct api_error *e) TG_WUR;
int pg_commit(struct pg_conn *conn, struct api_error *e) TG_WUR;
/* Rolls back; harmless outside a transaction. */
void pg_rollback(struct pg_conn *conn);

int pg_nrows(const struct pg_res *r);
/* Borrowed from r: valid until pg_res_free. */
const char *pg_val(const struct pg_res *r, int row, int col);
bool pg_isnull(const struct pg_res *r, int row, int col);
int64_t pg_int(const struct pg_res *r, int row, int col);
void pg_res_free(struct pg_res *r);

/* Runs sql expected to return one row whose first column is JSON text and
 * parses it; NULL with 404 not_found in e when no row. */
json_object *pg_query_json(struct pg_conn *conn, const char *sql, int n,
                           const char *const *params, const char *what, struct api_error *e);

/* ---- for tollgate-billingd: bulk loads ---- */

/* Runs sql (a COPY ... FROM STDIN) and sends data[0..len) in text format.
 * Returns 0, or -1 with e (and its SQLSTATE) filled (the copy is then aborted). */
int pg_copy_in(struct pg_conn *conn, const char *sql, const char *data, size_t len,
               struct api_error *e) TG_WUR;
/* The server process id of the connection, which changes when it is
 * re-established (session state such as temporary tables is then gone);
 * 0 when not connected. */
int pg_backend_pid(const struct pg_conn *conn);

#endif
