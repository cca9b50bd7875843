/* ingest: one transaction per set of messages; see ingest.h.
 *
 * Deduplication is done by PostgreSQL (INSERT ... ON CONFLICT DO NOTHING
 * RETURNING id) inside the transaction that applies the counts, so two
 * daemons that received the same redelivered batch cannot both count it: the
 * second one's insert waits for the first one's commit, then returns nothing.
 * Rows are upserted and keys locked in one global order (usage_minute by
 * key, minute, endpoint, then usage_hour by key, hour, endpoint, then
 * usage_owner_hour by owner, hour, endpoint, then the analytics rollups
 * (rollup.h), then keys, then the ledger's key_quota_use
 * and key_credit_use by key)
 * so that concurrent daemons seldom deadlock; when they do, the loser
 * retries.  The hourly rollup is written in the same transaction as the
 * minutes it sums, so the two tables never disagree. */
#include "ingest.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hist.h"
#include "ledger.h"
#include "rollup.h"
#include "log.h"
#include "strbuf.h"

#define TEMP_TABLE "tg_ingest_rows"

struct ingest {
    struct usage_agg *agg;
    int64_t *months; /* month starts (Unix s) whose partition exists */
    size_t nmonths, capmonths;
    int temp_pid; /* backend that has the temporary table; 0: none known */
    int64_t hot_lo, hot_hi; /* the month last ensured: [lo, hi) */
};

struct ingest *ingest_new(void)
{
    struct ingest *g = xcalloc(1, sizeof *g);
    g->agg = usage_agg_new();
    return g;
}

void ingest_free(struct ingest *g)
{
    if (!g)
        return;
    usage_agg_free(g->agg);
    free(g->months);
    free(g);
}

void ingest_reset(struct ingest *g)
{
    g->nmonths = 0;
    g->temp_pid = 0;
    g->hot_lo = g->hot_hi = 0;
}

/* ---- a string -> index map, sized once (no growth) ---- */

struct smap {
    const char **k; /* borrowed */
    size_t *v;
    size_t mask;
};

static void smap_init(struct smap *m, size_t expect)
{
    size_t cap = 16;
    while (cap < expect * 2 + 16)
        cap *= 2;
    m->k = xcalloc(cap, sizeof *m->k);
    m->v = xcalloc(cap, sizeof *m->v);
    m->mask = cap - 1;
}

static void smap_fini(struct smap *m)
{
    free(m->k);
    free(m->v);
    memset(m, 0, sizeof *m);
}

static size_t smap_slot(const struct smap *m, const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    size_t j = (size_t)(h ^ (h >> 29)) & m->mask;
    while (m->k[j] && strcmp(m->k[j], s) != 0)
        j = (j + 1) & m->mask;
    return j;
}

/* Adds s -> v unless s is present; returns the value s maps to. */
static size_t smap_put(struct smap *m, const char *s, size_t v)
{
    size_t j = smap_slot(m, s);
    if (!m->k[j]) {
        m->k[j] = s;
        m->v[j] = v;
    }
    return m->v[j];
}

static bool smap_get(const struct smap *m, const char *s, size_t *v)
{
    size_t j = smap_slot(m, s);
    if (m->k[j] && v)
        *v = m->v[j];
    return m->k[j] != NULL;
}

/* ---- text builders: array literals and COPY rows ---- */

/* Array literals: array_start, elements, array_end. */
static void array_start(struct strbuf *b)
{
    strbuf_reset(b);
}

/* One element of a text[] literal: quoted, with " and \ escaped. */
static void array_str(struct strbuf *b, const char *s)
{
    strbuf_reserve(b, strlen(s) * 2 + 3);
    char sep = b->len ? ',' : '{';
    b->p[b->len++] = sep;
    b->p[b->len++] = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            b->p[b->len++] = '\\';
        b->p[b->len++] = *s;
    }
    b->p[b->len++] = '"';
    b->p[b->len] = '\0';
}

static void array_int(struct strbuf *b, int64_t v)
{
    strbuf_putc(b, b->len ? ',' : '{');
    strbuf_int(b, v);
}

static void array_end(struct strbuf *b)
{
    if (b->len == 0)
        strbuf_putc(b, '{');
    strbuf_putc(b, '}');
}

/* A COPY text field: backslash, tab, newline and carriage return escaped. */
static void copy_str(struct strbuf *b, const char *s)
{
    strbuf_reserve(b, strlen(s) * 2);
    for (; *s; s++) {
        char c = *s;
        if (c == '\\' || c == '\t' || c == '\n' || c == '\r') {
            b->p[b->len++] = '\\';
            c = c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : '\\';
        }
        b->p[b->len++] = c;
    }
    b->p[b->len] = '\0';
}

static void copy_row(const struct usage_bucket *k, void *arg)
{
    struct strbuf *b = arg;
    copy_str(b, k->key_id);
    strbuf_putc(b, '\t');
    strbuf_int(b, k->minute_s);
    strbuf_putc(b, '\t');
    copy_str(b, k->endpoint);
    const int64_t v[] = {k->n.allowed,    k->n.allowed_cost, k->n.rate_limited,
                         k->n.quota_exceeded, k->n.denied_other, k->rt.reported,
                         k->rt.errors,    k->rt.rt_sum_us,   k->rt.rt_max_us};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        strbuf_putc(b, '\t');
        strbuf_int(b, v[i]);
    }
    strbuf_putc(b, '\t');
    int n = HIST_BUCKETS;
    while (k->rt.hist && n > 0 && k->rt.hist[n - 1] == 0)
        n--;
    if (!k->rt.hist || n == 0) {
        strbuf_putc(b, '\\');
        strbuf_putc(b, 'N');
    } else {
        for (int i = 0; i < n; i++) {
            strbuf_putc(b, i ? ',' : '{');
            strbuf_int(b, k->rt.hist[i]);
        }
        strbuf_putc(b, '}');
    }
    strbuf_putc(b, '\n');
}

/* ---- one attempt ---- */

/* What an attempt reports besides its result. */
struct attempt {
    struct api_error e; /* with the SQLSTATE of a failed statement */
    const char *step;
};

static int64_t month_start(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    return (int64_t)timegm(&tm);
}

static bool month_known(const struct ingest *g, int64_t m)
{
    for (size_t i = 0; i < g->nmonths; i++)
        if (g->months[i] == m)
            return true;
    return false;
}

/* Creates the partitions of the months in msgs not yet known to exist,
 * each in its own short transaction: the function's advisory lock is then
 * held for milliseconds, and a partition never vanishes with a rollback. */
static int ensure_month(struct ingest *g, struct pg_conn *conn, int64_t t, struct attempt *at)
{
    if (t >= g->hot_lo && t < g->hot_hi)
        return 0; /* the common case: same month as the previous bucket */
    int64_t m = month_start(t);
    g->hot_lo = g->hot_hi = 0;
    if (month_known(g, m)) {
        g->hot_lo = m;
        g->hot_hi = month_start(m + 32 * 86400);
        return 0;
    }
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", (long long)m);
    const char *p[] = {ts};
    struct pg_res *r = pg_query(conn, "SELECT tg_usage_partition(to_timestamp($1))", 1, p, &at->e);
    if (!r) {
        at->step = "partition";
        return -1;
    }
    pg_res_free(r);
    if (g->nmonths == g->capmonths) {
        g->capmonths = g->capmonths ? g->capmonths * 2 : 8;
        g->months = xrealloc(g->months, g->capmonths * sizeof *g->months);
    }
    g->months[g->nmonths++] = m;
    return 0;
}

static int ensure_partitions(struct ingest *g, struct pg_conn *conn, const struct usage_msg *msgs,
                             size_t n, struct attempt *at)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < msgs[i].nbuckets; k++)
            if (ensure_month(g, conn, msgs[i].buckets[k].minute_s, at) != 0)
                return -1;
        for (size_t k = 0; k < msgs[i].nevents; k++)
            if (ensure_month(g, conn, msgs[i].events[k].ts_ms / 1000, at) != 0)
                return -1;
    }
    return 0;
}

static int ensure_temp_table(struct ingest *g, struct pg_conn *conn, struct attempt *at)
{
    int pid = pg_backend_pid(conn);
    if (pid != 0 && pid == g->temp_pid)
        return 0;
    struct pg_res *r = pg_query(
        conn,
        "CREATE TEMP TABLE IF NOT EXISTS " TEMP_TABLE " (key_id text, minute_s bigint, "
        "endpoint text, allowed bigint, allowed_cost bigint, rate_limited bigint, "
        "quota_exceeded bigint, denied_other bigint, reported bigint, errors bigint, "
        "rt_sum_us bigint, rt_max_us bigint, rt_hist bigint[]) ON COMMIT DELETE ROWS",
        0, NULL, &at->e);
    if (!r) {
        at->step = "temporary table";
        return -1;
    }
    pg_res_free(r);
    g->temp_pid = pid;
    return 0;
}

/* Runs sql with params; the result is freed unless out takes it. */
static int run(struct pg_conn *conn, const char *step, const char *sql, int n,
               const char *const *params, struct pg_res **out, struct attempt *at)
{
    struct pg_res *r = pg_query(conn, sql, n, params, &at->e);
    if (!r) {
        at->step = step;
        return -1;
    }
    if (out)
        *out = r;
    else
        pg_res_free(r);
    return 0;
}

/* The state of one set of messages while it is applied. */
struct work {
    const struct usage_msg *msgs;
    size_t n;
    bool *apply;        /* msgs[i] is applied */
    struct ingest_stats st;
    struct strbuf b1, b2; /* parameter texts */
};

/* (a) records the batch ids; marks the messages to apply. */
static int claim_batches(struct pg_conn *conn, struct work *w, struct attempt *at)
{
    struct smap first;
    smap_init(&first, w->n);
    array_start(&w->b1);
    for (size_t i = 0; i < w->n; i++)
        if (smap_put(&first, w->msgs[i].batch, i) == i)
            array_str(&w->b1, w->msgs[i].batch);
    array_end(&w->b1);
    const char *p[] = {w->b1.p};
    struct pg_res *r = NULL;
    int rc = run(conn, "batch ids",
                 "INSERT INTO usage_batches (id) SELECT unnest($1::text[]) "
                 "ON CONFLICT DO NOTHING RETURNING id",
                 1, p, &r, at);
    if (rc == 0) {
        memset(w->apply, 0, w->n * sizeof *w->apply);
        for (int row = 0; row < pg_nrows(r); row++) {
            size_t i;
            if (smap_get(&first, pg_val(r, row, 0), &i))
                w->apply[i] = true;
        }
        pg_res_free(r);
    }
    smap_fini(&first);
    return rc;
}

/* (b) and (c): records the event ids of the applied messages and merges
 * what is new into agg. */
static int merge_new(struct pg_conn *conn, struct usage_agg *agg, struct work *w,
                     struct attempt *at)
{
    size_t nev = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (!w->apply[i])
            continue;
        w->st.applied++;
        nev += w->msgs[i].nevents;
        for (size_t k = 0; k < w->msgs[i].nbuckets; k++)
            usage_agg_merge(agg, &w->msgs[i].buckets[k]);
    }
    w->st.duplicates = w->n - w->st.applied;
    if (nev == 0)
        return 0;
    /* Event ids: first occurrence in the set, then new to the database. */
    const struct usage_event **evs = xmalloc(nev * sizeof *evs);
    struct smap first, fresh;
    smap_init(&first, nev);
    size_t m = 0;
    for (size_t i = 0; i < w->n; i++)
        for (size_t k = 0; w->apply[i] && k < w->msgs[i].nevents; k++)
            if (smap_put(&first, w->msgs[i].events[k].id, m) == m)
                evs[m++] = &w->msgs[i].events[k];
    array_start(&w->b1);
    array_start(&w->b2);
    for (size_t k = 0; k < m; k++) {
        array_str(&w->b1, evs[k]->id);
        array_str(&w->b2, evs[k]->key_id);
    }
    array_end(&w->b1);
    array_end(&w->b2);
    const char *p[] = {w->b1.p, w->b2.p};
    struct pg_res *r = NULL;
    int rc = run(conn, "event ids",
                 "INSERT INTO usage_event_ids (id, key_id) "
                 "SELECT v.id, v.key_id FROM unnest($1::text[], $2::text[]) AS v(id, key_id) "
                 "WHERE NOT EXISTS (SELECT 1 FROM erased_keys e WHERE e.key_id = v.key_id) "
                 "ON CONFLICT DO NOTHING RETURNING id",
                 2, p, &r, at);
    if (rc == 0) {
        smap_init(&fresh, (size_t)pg_nrows(r));
        for (int row = 0; row < pg_nrows(r); row++)
            smap_put(&fresh, pg_val(r, row, 0), 0);
        for (size_t k = 0; k < m; k++) {
            if (smap_get(&fresh, evs[k]->id, NULL)) {
                usage_agg_add_event(agg, evs[k]);
                w->st.events++;
            }
        }
        w->st.events_dup = nev - w->st.events;
        smap_fini(&fresh);
        pg_res_free(r);
    }
    smap_fini(&first);
    free(evs);
    return rc;
}

/* The merged histogram of an upsert: most rows have none, and skipping the
 * function call for them makes the upsert cheaper. */
#define HIST_ADD                                                                            \
    "CASE WHEN EXCLUDED.rt_hist IS NULL THEN u.rt_hist "                                    \
    "ELSE tg_hist_add(u.rt_hist, EXCLUDED.rt_hist) END"

/* The usage tables add a new row's figures to an existing one. */
#define ADD_EXCLUDED_TO(conflict)                                                           \
    "ON CONFLICT " conflict " DO UPDATE SET "                                               \
    "allowed = u.allowed + EXCLUDED.allowed, "                                              \
    "allowed_cost = u.allowed_cost + EXCLUDED.allowed_cost, "                               \
    "rate_limited = u.rate_limited + EXCLUDED.rate_limited, "                               \
    "quota_exceeded = u.quota_exceeded + EXCLUDED.quota_exceeded, "                         \
    "denied_other = u.denied_other + EXCLUDED.denied_other, "                               \
    "reported = u.reported + EXCLUDED.reported, errors = u.errors + EXCLUDED.errors, "      \
    "rt_sum_us = u.rt_sum_us + EXCLUDED.rt_sum_us, "                                        \
    "rt_max_us = greatest(u.rt_max_us, EXCLUDED.rt_max_us), "                               \
    "rt_hist = " HIST_ADD
#define ADD_EXCLUDED ADD_EXCLUDED_TO("(key_id, ts, endpoint)")

static const char UPSERT[] =
    "INSERT INTO usage_minute AS u (key_id, ts, endpoint, allowed, allowed_cost, rate_limited, "
    "quota_exceeded, denied_other, reported, errors, rt_sum_us, rt_max_us, rt_hist) "
    "SELECT key_id, to_timestamp(minute_s), endpoint, allowed, allowed_cost, rate_limited, "
    "quota_exceeded, denied_other, reported, errors, rt_sum_us, rt_max_us, rt_hist "
    "FROM " TEMP_TABLE " ORDER BY key_id, minute_s, endpoint "
    ADD_EXCLUDED;

/* The same rows summed by hour into the rollup, locked in the same order
 * (key, hour, endpoint) after the minute rows. */
static const char UPSERT_HOUR[] =
    "INSERT INTO usage_hour AS u (key_id, ts, endpoint, allowed, allowed_cost, rate_limited, "
    "quota_exceeded, denied_other, reported, errors, rt_sum_us, rt_max_us, rt_hist) "
    "SELECT key_id, to_timestamp(minute_s - minute_s % 3600) AS hour, endpoint, sum(allowed), "
    "sum(allowed_cost), sum(rate_limited), sum(quota_exceeded), sum(denied_other), "
    "sum(reported), sum(errors), sum(rt_sum_us), max(rt_max_us), "
    "tg_hist_sum(rt_hist) FILTER (WHERE rt_hist IS NOT NULL) "
    "FROM " TEMP_TABLE " GROUP BY key_id, hour, endpoint ORDER BY key_id, hour, endpoint "
    ADD_EXCLUDED;

/* The same summed over each owner's keys (the owner's usage history reads
 * it), locked in (owner, hour, endpoint) order after the hours.  A key
 * erased meanwhile has no owner: its rows are left out. */
static const char UPSERT_OWNER_HOUR[] =
    "INSERT INTO usage_owner_hour AS u (owner_id, ts, endpoint, allowed, allowed_cost, "
    "rate_limited, quota_exceeded, denied_other, reported, errors, rt_sum_us, rt_max_us, "
    "rt_hist) "
    "SELECT k.owner_id, to_timestamp(s.minute_s - s.minute_s % 3600) AS hour, s.endpoint, "
    "sum(s.allowed), sum(s.allowed_cost), sum(s.rate_limited), sum(s.quota_exceeded), "
    "sum(s.denied_other), sum(s.reported), sum(s.errors), sum(s.rt_sum_us), max(s.rt_max_us), "
    "tg_hist_sum(s.rt_hist) FILTER (WHERE s.rt_hist IS NOT NULL) "
    "FROM " TEMP_TABLE " s JOIN keys k ON k.id = s.key_id "
    "GROUP BY k.owner_id, hour, s.endpoint ORDER BY k.owner_id, hour, s.endpoint "
    ADD_EXCLUDED_TO("(owner_id, ts, endpoint)");

/* (e) the rows, through COPY into the temporary table, then into the minute
 * buckets, their hourly rollup and the analytics rollups. */
static int upsert_rows(struct pg_conn *conn, const struct usage_agg *agg, struct work *w,
                       struct attempt *at)
{
    strbuf_reset(&w->b1);
    usage_agg_each(agg, copy_row, &w->b1);
    if (pg_copy_in(conn, "COPY " TEMP_TABLE " FROM STDIN", w->b1.p, w->b1.len,
                   &at->e) != 0) {
        at->step = "copy";
        return -1;
    }
    w->st.buckets = usage_agg_count(agg);
    /* Usage of an erased key still in flight must not bring its rows back. */
    if (run(conn, "erased", "DELETE FROM " TEMP_TABLE " t USING erased_keys e"
            " WHERE e.key_id = t.key_id", 0, NULL, NULL, at) != 0 ||
        run(conn, "upsert", UPSERT, 0, NULL, NULL, at) != 0 ||
        run(conn, "upsert hour", UPSERT_HOUR, 0, NULL, NULL, at) != 0 ||
        run(conn, "upsert owner hour", UPSERT_OWNER_HOUR, 0, NULL, NULL, at) != 0 ||
        run(conn, "upsert day", ROLLUP_UPSERT_DAY(TEMP_TABLE), 0, NULL, NULL, at) != 0 ||
        run(conn, "upsert month", ROLLUP_UPSERT_MONTH(TEMP_TABLE), 0, NULL, NULL, at) != 0)
        return -1;
    return run(conn, "upsert tier day", ROLLUP_UPSERT_TIER_DAY(TEMP_TABLE), 0, NULL, NULL, at);
}

struct last_used {
    const char *key;
    int64_t minute_s;
};

static int cmp_last_used(const void *a, const void *b)
{
    return strcmp(((const struct last_used *)a)->key, ((const struct last_used *)b)->key);
}

struct collect {
    struct smap seen;
    struct last_used *v;
    size_t n;
};

static void collect_key(const struct usage_bucket *b, void *arg)
{
    struct collect *c = arg;
    if (b->n.allowed + b->n.rate_limited + b->n.quota_exceeded + b->n.denied_other == 0)
        return;
    size_t i = smap_put(&c->seen, b->key_id, c->n);
    if (i == c->n)
        c->v[c->n++] = (struct last_used){b->key_id, b->minute_s};
    else if (b->minute_s > c->v[i].minute_s)
        c->v[i].minute_s = b->minute_s;
}

/* (f) keys.last_used_at, locking the keys in id order. */
static int touch_keys(struct pg_conn *conn, const struct usage_agg *agg, struct work *w,
                      struct attempt *at)
{
    struct collect c = {.v = xmalloc((usage_agg_count(agg) + 1) * sizeof *c.v)};
    smap_init(&c.seen, usage_agg_count(agg));
    usage_agg_each(agg, collect_key, &c);
    int rc = 0;
    if (c.n > 0) {
        qsort(c.v, c.n, sizeof *c.v, cmp_last_used);
        array_start(&w->b1);
        array_start(&w->b2);
        for (size_t i = 0; i < c.n; i++) {
            array_str(&w->b1, c.v[i].key);
            array_int(&w->b2, c.v[i].minute_s);
        }
        array_end(&w->b1);
        array_end(&w->b2);
        const char *p[] = {w->b1.p, w->b2.p};
        rc = run(conn, "last used",
                 "UPDATE keys k SET last_used_at = to_timestamp(l.t) FROM "
                 "(SELECT k2.id, v.t FROM keys k2 JOIN unnest($1::text[], $2::bigint[]) AS v(id, t) "
                 "ON k2.id = v.id WHERE k2.last_used_at IS NULL OR k2.last_used_at < to_timestamp(v.t) "
                 "ORDER BY k2.id FOR UPDATE OF k2) l "
                 "WHERE k.id = l.id AND (k.last_used_at IS NULL OR k.last_used_at < to_timestamp(l.t))",
                 2, p, NULL, at);
    }
    smap_fini(&c.seen);
    free(c.v);
    return rc;
}

static int attempt(struct ingest *g, struct pg_conn *conn, struct work *w, struct attempt *at)
{
    memset(&w->st, 0, sizeof w->st);
    w->st.messages = w->n;
    usage_agg_clear(g->agg);
    if (ensure_partitions(g, conn, w->msgs, w->n, at) != 0 ||
        ensure_temp_table(g, conn, at) != 0)
        return -1;
    if (run(conn, "begin", "BEGIN", 0, NULL, NULL, at) != 0)
        return -1;
    int rc = -1;
    /* Shared with other ingests, exclusive with an erasure (sql/019): this
     * transaction then sees every key erased before it, and an erasure
     * every row it wrote. */
    if (run(conn, "erase lock", "SELECT pg_advisory_xact_lock_shared(tg_erase_lock_id())", 0,
            NULL, NULL, at) != 0)
        goto done;
    if (claim_batches(conn, w, at) != 0 || merge_new(conn, g->agg, w, at) != 0)
        goto done;
    if (usage_agg_count(g->agg) > 0 &&
        (upsert_rows(conn, g->agg, w, at) != 0 || touch_keys(conn, g->agg, w, at) != 0))
        goto done;
    if (ledger_record(conn, g->agg, w->msgs, w->n, w->apply, &w->b1, &w->b2, &at->e) != 0) {
        at->step = "ledger";
        goto done;
    }
    rc = run(conn, "commit", "COMMIT", 0, NULL, NULL, at);
done:
    if (rc != 0)
        pg_rollback(conn);
    usage_agg_clear(g->agg);
    return rc;
}

int ingest_apply(struct ingest *g, struct pg_conn *conn, const struct usage_msg *msgs, size_t n,
                 struct ingest_stats *st, struct api_error *err)
{
    struct work w = {.msgs = msgs, .n = n, .apply = xcalloc(n + 1, sizeof(bool))};
    struct attempt at;
    int rc = -1;
    for (int i = 1; i <= INGEST_ATTEMPTS; i++) {
        memset(&at, 0, sizeof at);
        at.step = "?";
        rc = attempt(g, conn, &w, &at);
        if (rc == 0)
            break;
        bool again = strcmp(at.e.sqlstate, "40P01") == 0 || strcmp(at.e.sqlstate, "40001") == 0;
        if (strcmp(at.e.sqlstate, "23514") == 0 || strcmp(at.e.sqlstate, "42P01") == 0) {
            /* A partition dropped by retention, or a connection re-established
             * behind our back: forget the cache, try again. */
            ingest_reset(g);
            again = true;
        }
        if (!again || i == INGEST_ATTEMPTS)
            break;
        log_warn("ingest: %s failed (SQLSTATE %s), attempt %d of %d", at.step, at.e.sqlstate, i + 1,
                 INGEST_ATTEMPTS);
    }
    if (rc == 0) {
        *st = w.st;
    } else {
        if (!pg_backend_pid(conn))
            ingest_reset(g);
        api_error_set(err, ERR_INTERNAL, NULL, "%s: %s (SQLSTATE %s)", at.step, at.e.message,
                   at.e.sqlstate[0] ? at.e.sqlstate : "none");
    }
    strbuf_fini(&w.b1);
    strbuf_fini(&w.b2);
    free(w.apply);
    return rc;
}
