#include "pg.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pgstmt.h"

struct pg_conn {
    PGconn *pq;
    bool busy;
    bool prepare;              /* prepare each statement once (pool option) */
    struct pgstmt_cache stmts; /* what this server session has prepared */
};

struct pg_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    char *conninfo;
    int size;
    struct pg_conn *conns;
};

struct pg_pool *pg_pool_new(const char *conninfo, int size, bool prepare)
{
    struct pg_pool *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    p->conninfo = xstrdup(conninfo);
    p->size = size;
    p->conns = xcalloc((size_t)size, sizeof *p->conns);
    for (int i = 0; i < size; i++)
        p->conns[i].prepare = prepare;
    return p;
}

void pg_pool_free(struct pg_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->size; i++) {
        if (p->conns[i].pq)
            PQfinish(p->conns[i].pq);
        pgstmt_clear(&p->conns[i].stmts);
    }
    free(p->conns);
    free(p->conninfo);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static void unavailable(struct api_error *e, const char *why)
{
    api_error_set(e, ERR_UNAVAILABLE, NULL, "The database is unavailable; try again shortly.");
    log_error("postgres unavailable: %s", why);
}

/* An idle connection has nothing to read: when it has, the server closed
 * it (a restart sends a FATAL message, then EOF) and libpq learns so here,
 * before a statement is sent down a dead line -- which, once sent, could
 * not be told apart from one the server ran before it went away. */
static void notice_closed(struct pg_conn *c)
{
    struct pollfd pfd = {.fd = PQsocket(c->pq), .events = POLLIN};
    if (pfd.fd < 0 || poll(&pfd, 1, 0) <= 0)
        return;
    if (PQconsumeInput(c->pq) == 1) {
        PGnotify *n;
        while ((n = PQnotifies(c->pq)) != NULL)
            PQfreemem(n);
    }
}

/* Makes sure c->pq is a healthy connection; reconnects a broken one. */
static int ensure_connected(struct pg_conn *c, const char *conninfo, struct api_error *e)
{
    if (c->pq && PQstatus(c->pq) == CONNECTION_OK)
        notice_closed(c);
    if (c->pq && PQstatus(c->pq) == CONNECTION_OK)
        return 0;
    pgstmt_clear(&c->stmts); /* a new server session has none of them */
    if (c->pq) {
        PQreset(c->pq);
    } else {
        c->pq = PQconnectdb(conninfo);
    }
    if (!c->pq || PQstatus(c->pq) != CONNECTION_OK) {
        /* PQerrorMessage never contains the password. */
        char why[256];
        strlcpy_tg(why, c->pq ? PQerrorMessage(c->pq) : "out of memory", sizeof why);
        if (c->pq)
            PQfinish(c->pq);
        c->pq = NULL;
        unavailable(e, why);
        return -1;
    }
    return 0;
}

struct pg_conn *pg_acquire(struct pg_pool *p, struct api_error *e)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 2;
    struct pg_conn *c = NULL;
    pthread_mutex_lock(&p->lock);
    while (!c) {
        for (int i = 0; i < p->size && !c; i++)
            if (!p->conns[i].busy)
                c = &p->conns[i];
        if (!c && pthread_cond_timedwait(&p->freed, &p->lock, &deadline) == ETIMEDOUT)
            break;
    }
    if (c)
        c->busy = true;
    pthread_mutex_unlock(&p->lock);
    if (!c) {
        unavailable(e, "pool exhausted for 2 s");
        return NULL;
    }
    if (ensure_connected(c, p->conninfo, e) != 0) {
        pg_release(p, c);
        return NULL;
    }
    return c;
}

void pg_release(struct pg_pool *p, struct pg_conn *c)
{
    if (!c)
        return;
    /* A connection left inside a transaction by an early return must not
     * leak that transaction to the next borrower. */
    if (c->pq && PQtransactionStatus(c->pq) != PQTRANS_IDLE)
        pg_rollback(c);
    pthread_mutex_lock(&p->lock);
    c->busy = false;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

struct pg_conn *pg_connect(const char *conninfo, struct api_error *e)
{
    struct pg_conn *c = xcalloc(1, sizeof *c);
    if (ensure_connected(c, conninfo, e) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

void pg_disconnect(struct pg_conn *c)
{
    if (!c)
        return;
    if (c->pq)
        PQfinish(c->pq);
    pgstmt_clear(&c->stmts);
    free(c);
}

/* A deadlock or serialization failure: the transaction may simply be run
 * again. */
static bool retryable(const char *state)
{
    return strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0;
}

static struct pg_res *check_result(struct pg_conn *c, PGresult *r, struct api_error *e)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return (struct pg_res *)r;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (PQstatus(c->pq) != CONNECTION_OK) {
        unavailable(e, PQerrorMessage(c->pq));
    } else if (state && strncmp(state, "TG", 2) == 0) {
        /* a rule of our own schema (sql/005_limits_bound.sql): its message
         * is written for the client and names no secret */
        const char *col = PQresultErrorField(r, PG_DIAG_COLUMN_NAME);
        api_error_set(e, ERR_INVALID_ARGUMENT, col, "%s", msg ? msg : "Invalid value.");
    } else if (state && strcmp(state, "23505") == 0) {
        api_error_set(e, ERR_CONFLICT, NULL, "A resource with this name already exists.");
    } else if (state && retryable(state)) {
        /* billingd retries these; an API caller is told to */
        log_warn("postgres %s: %s", state, msg ? msg : "conflict");
        api_error_set(e, ERR_CONFLICT, NULL, "A concurrent change conflicted; retry.");
    } else {
        log_error("postgres error %s: %s", state ? state : "?", msg ? msg : PQerrorMessage(c->pq));
        api_error_set(e, ERR_INTERNAL, NULL, "An internal error occurred.");
    }
    strlcpy_tg(e->sqlstate, state ? state : "", sizeof e->sqlstate);
    PQclear(r);
    return NULL;
}

/* Runs sql as the statement this connection prepared for it, preparing it
 * first when it has not. */
static PGresult *exec_prepared(struct pg_conn *c, const char *sql, int n,
                               const char *const *params)
{
    const char *name = pgstmt_find(&c->stmts, sql);
    if (!name) {
        name = pgstmt_add(&c->stmts, sql);
        if (!name) /* the cache is full */
            return PQexecParams(c->pq, sql, n, NULL, params, NULL, NULL, 0);
        PGresult *p = PQprepare(c->pq, name, sql, n, NULL);
        if (!p || PQresultStatus(p) != PGRES_COMMAND_OK) {
            pgstmt_forget(&c->stmts, name);
            return p;
        }
        PQclear(p);
    }
    return PQexecPrepared(c->pq, name, n, params, NULL, NULL, 0);
}

/* A prepared statement the server refused without running it: its plan
 * went stale when a migration changed what it returns (0A000), or the
 * session lost it (26000).  Outside a transaction it is simply prepared
 * again. */
static bool stale_statement(PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return state && (strcmp(state, "0A000") == 0 || strcmp(state, "26000") == 0);
}

struct pg_res *pg_query(struct pg_conn *c, const char *sql, int n, const char *const *params,
                        struct api_error *e)
{
    if (!c->prepare)
        return check_result(c, PQexecParams(c->pq, sql, n, NULL, params, NULL, NULL, 0), e);
    bool idle = PQtransactionStatus(c->pq) == PQTRANS_IDLE;
    PGresult *r = exec_prepared(c, sql, n, params);
    if (stale_statement(r)) {
        const char *name = pgstmt_find(&c->stmts, sql);
        if (name) {
            char deallocate[PGSTMT_NAME + 16];
            snprintf(deallocate, sizeof deallocate, "DEALLOCATE %s", name);
            pgstmt_forget(&c->stmts, name);
            if (idle)
                PQclear(PQexec(c->pq, deallocate));
        }
        if (idle) {
            PQclear(r);
            r = exec_prepared(c, sql, n, params);
        }
    }
    return check_result(c, r, e);
}

int pg_script(struct pg_conn *c, const char *sql, struct api_error *e)
{
    struct pg_res *r = check_result(c, PQexec(c->pq, sql), e);
    if (!r)
        return -1;
    pg_res_free(r);
    return 0;
}

int pg_begin(struct pg_conn *c, struct api_error *e)
{
    return pg_script(c, "BEGIN", e);
}

int pg_commit(struct pg_conn *c, struct api_error *e)
{
    return pg_script(c, "COMMIT", e);
}

void pg_rollback(struct pg_conn *c)
{
    PQclear(PQexec(c->pq, "ROLLBACK"));
}

int pg_nrows(const struct pg_res *r)
{
    return PQntuples((const PGresult *)r);
}

const char *pg_val(const struct pg_res *r, int row, int col)
{
    return PQgetvalue((const PGresult *)r, row, col);
}

bool pg_isnull(const struct pg_res *r, int row, int col)
{
    return PQgetisnull((const PGresult *)r, row, col);
}

int64_t pg_int(const struct pg_res *r, int row, int col)
{
    return strtoll(PQgetvalue((const PGresult *)r, row, col), NULL, 10);
}

void pg_res_free(struct pg_res *r)
{
    PQclear((PGresult *)r);
}

json_object *pg_query_json(struct pg_conn *c, const char *sql, int n, const char *const *params,
                           const char *what, struct api_error *e)
{
    struct pg_res *r = pg_query(c, sql, n, params, e);
    if (!r)
        return NULL;
    json_object *o = NULL;
    if (pg_nrows(r) == 0 || pg_isnull(r, 0, 0)) {
        api_error_set(e, ERR_NOT_FOUND, NULL, "%s not found.", what);
    } else {
        o = json_tokener_parse(pg_val(r, 0, 0));
        if (!o)
            api_error_set(e, ERR_INTERNAL, NULL, "An internal error occurred.");
    }
    pg_res_free(r);
    return o;
}

/* ---- for tollgate-billingd: retries and bulk loads ---- */

int pg_copy_in(struct pg_conn *c, const char *sql, const char *data, size_t len,
               struct api_error *e)
{
    e->sqlstate[0] = '\0';
    PGresult *r = PQexec(c->pq, sql);
    if (!r || PQresultStatus(r) != PGRES_COPY_IN) {
        struct pg_res *ok = check_result(c, r, e);
        if (ok) { /* not a COPY at all: a programmer error */
            pg_res_free(ok);
            api_error_set(e, ERR_INTERNAL, NULL, "An internal error occurred.");
        }
        return -1;
    }
    PQclear(r);
    const size_t chunk = 1 << 20;
    int ok = 1;
    for (size_t off = 0; ok == 1 && off < len; off += chunk)
        ok = PQputCopyData(c->pq, data + off, (int)(len - off < chunk ? len - off : chunk));
    if (PQputCopyEnd(c->pq, ok == 1 ? NULL : "client failed to send") != 1)
        ok = 0;
    /* Read every result so that the connection is ready again. */
    int rc = ok == 1 ? 0 : -1;
    while ((r = PQgetResult(c->pq)) != NULL) {
        if (PQresultStatus(r) == PGRES_COPY_IN) { /* the end could not be sent */
            PQclear(r);
            rc = -1;
            break;
        }
        struct pg_res *res = check_result(c, r, e);
        if (res)
            pg_res_free(res);
        else
            rc = -1;
    }
    if (rc != 0 && !e->sqlstate[0] && ok != 1)
        unavailable(e, PQerrorMessage(c->pq));
    return rc;
}

int pg_backend_pid(const struct pg_conn *c)
{
    return c && c->pq && PQstatus(c->pq) == CONNECTION_OK ? PQbackendPID(c->pq) : 0;
}
