/* ingest-bench: measures tollgate-billingd's ingest rate.
 *
 *   ingest-bench [-c CONFIG] [-k KEYS] [-b BUCKETS_PER_MESSAGE] [-r REPEAT] [-u RUN]
 *
 * Publishes batch messages (confirmed) covering KEYS distinct keys
 * "bench_<run>_<n>", one check each, all in the current minute on endpoint
 * "GET /bench", BUCKETS_PER_MESSAGE per message; with -r each message is
 * published REPEAT times under the same batch id (a redelivery, which must
 * count once); with -u the keys of an earlier run (in the same minute) are
 * counted again under new batch ids, so that every row is an update.  Then
 * polls PostgreSQL until every batch id is recorded in usage_batches, checks
 * that the usage rows gained exactly one allowed check per key, and prints
 * the figures.  A billingd must be running.  Exit
 * status 1 when the counts are not exact or the wait times out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "amqpx.h"
#include "app.h"
#include "config.h"
#include "pg.h"
#include "usagemsg.h"
#include "util.h"

extern char **environ;

#define WAIT_S 120
#define PUBLISH_TIMEOUT_MS 30000

static int publish_all(const struct config *cfg, const char *run, long keys, long per_msg,
                       long repeat, int64_t minute_s, char **ids, long nmsgs)
{
    struct api_error err = {0};
    struct amqpx *c = amqpx_connect(cfg, 10000, &err);
    if (!c || amqpx_confirm_select(c, &err) != 0) {
        fprintf(stderr, "ingest-bench: amqp: %s\n", err.message);
        amqpx_close(c);
        return -1;
    }
    struct usage_agg *a = usage_agg_new();
    struct usage_counts one = {1, 1, 0, 0, 0};
    char key[64];
    int rc = 0;
    for (long m = 0; m < nmsgs && rc == 0; m++) {
        usage_agg_clear(a);
        for (long k = m * per_msg; k < (m + 1) * per_msg && k < keys; k++) {
            snprintf(key, sizeof key, "bench_%s_%ld", run, k);
            usage_agg_add(a, key, "GET /bench", minute_s, &one);
        }
        size_t len;
        char *body = usage_msg_build(ids[m], a, NULL, 0, &len);
        for (long r = 0; r < repeat && rc == 0; r++)
            rc = amqpx_publish(c, ids[m], body, len, PUBLISH_TIMEOUT_MS, &err);
        free(body);
    }
    if (rc != 0)
        fprintf(stderr, "ingest-bench: publish: %s\n", err.message);
    usage_agg_free(a);
    amqpx_close(c);
    return rc;
}

/* The text[] literal of the batch ids (they need no quoting). */
static char *id_array(char **ids, long n)
{
    size_t cap = 16;
    for (long i = 0; i < n; i++)
        cap += strlen(ids[i]) + 1;
    char *s = xmalloc(cap);
    size_t len = 0;
    s[len++] = '{';
    for (long i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? "," : "", ids[i]);
    snprintf(s + len, cap - len, "}");
    return s;
}

static int64_t query_int(struct pg_conn *db, const char *sql, int n, const char *const *p)
{
    struct api_error e;
    struct pg_res *r = pg_query(db, sql, n, p, &e);
    if (!r)
        return -1;
    int64_t v = pg_isnull(r, 0, 0) ? 0 : pg_int(r, 0, 0);
    pg_res_free(r);
    return v;
}

int main(int argc, char **argv)
{
    const char *cfg_path = NULL;
    long keys = 100000, per_msg = 1000, repeat = 1;
    int opt;
    const char *reuse = NULL;
    while ((opt = getopt(argc, argv, "c:k:b:r:u:h")) != -1) {
        if (opt == 'c') {
            cfg_path = optarg;
        } else if (opt == 'u') {
            reuse = optarg;
        } else if (opt == 'k' || opt == 'b' || opt == 'r') {
            long v = strtol(optarg, NULL, 10);
            if (v < 1 || v > 10000000) {
                fprintf(stderr, "ingest-bench: -%c: 1..10000000\n", opt);
                return 2;
            }
            *(opt == 'k' ? &keys : opt == 'b' ? &per_msg : &repeat) = v;
        } else {
            fprintf(stderr, "usage: ingest-bench [-c CONFIG] [-k KEYS] [-b BUCKETS_PER_MESSAGE] "
                            "[-r REPEAT] [-u RUN]\n");
            return opt == 'h' ? 0 : 2;
        }
    }
    struct config cfg;
    struct api_error err;
    if (config_load(&cfg, app_config_path(cfg_path), environ, &err) != 0) {
        fprintf(stderr, "ingest-bench: %s\n", err.message);
        return 2;
    }
    struct api_error e;
    struct pg_conn *db = pg_connect(cfg.pg_conninfo, &e);
    if (!db) {
        fprintf(stderr, "ingest-bench: postgres: %s\n", e.message);
        config_fini(&cfg);
        return 2;
    }
    char run[9], batch_run[9];
    random_base62(batch_run, 8);
    strlcpy_tg(run, reuse && strlen(reuse) == 8 ? reuse : batch_run, sizeof run);
    int64_t minute_s = now_ms() / 60000 * 60;
    if (reuse) { /* the minute of the earlier run */
        char like0[32];
        snprintf(like0, sizeof like0, "bench\\_%s\\_%%", run);
        const char *p0[] = {like0};
        minute_s = query_int(db,
                             "SELECT extract(epoch FROM max(ts))::bigint FROM usage_minute "
                             "WHERE key_id LIKE $1",
                             1, p0);
    }
    long nmsgs = (keys + per_msg - 1) / per_msg;
    char **ids = xcalloc((size_t)nmsgs, sizeof *ids);
    for (long m = 0; m < nmsgs; m++) {
        ids[m] = xmalloc(48);
        snprintf(ids[m], 48, "bench-%s-%ld", batch_run, m);
    }
    char *arr = id_array(ids, nmsgs);

    char like[32], ts[24];
    snprintf(like, sizeof like, "bench\\_%s\\_%%", run);
    snprintf(ts, sizeof ts, "%lld", (long long)minute_s);
    const char *q[] = {like, ts};
    static const char rows_sql[] = "SELECT count(*) FROM usage_minute WHERE key_id LIKE $1 "
                                   "AND ts = to_timestamp($2) AND endpoint = 'GET /bench'";
    static const char allowed_sql[] = "SELECT sum(allowed) FROM usage_minute WHERE key_id LIKE $1 "
                                      "AND ts = to_timestamp($2) AND endpoint = 'GET /bench'";
    int64_t allowed_before = reuse ? query_int(db, allowed_sql, 2, q) : 0;

    printf("run %s: publishing %ld messages\n", run, nmsgs);
    fflush(stdout);
    int status = 1;
    int64_t t0 = mono_ns();
    if (publish_all(&cfg, run, keys, per_msg, repeat, minute_s, ids, nmsgs) != 0)
        goto done;
    double publish_s = (double)(mono_ns() - t0) / 1e9;
    const char *p[] = {arr};
    int64_t seen = 0;
    while ((seen = query_int(db, "SELECT count(*) FROM usage_batches WHERE id = ANY($1::text[])",
                             1, p)) < nmsgs) {
        if (mono_ns() - t0 > (int64_t)WAIT_S * 1000000000) {
            fprintf(stderr,
                    "ingest-bench: not all %ld batches applied after %d s: is tollgate-billingd "
                    "running?\n",
                    nmsgs, WAIT_S);
            goto done;
        }
        if (seen < 0) { /* the database restarted: wait for it */
            pg_disconnect(db);
            while (!(db = pg_connect(cfg.pg_conninfo, &e)) &&
                   mono_ns() - t0 < (int64_t)WAIT_S * 1000000000)
                usleep(200000);
            if (!db)
                goto done;
        }
        usleep(20000);
    }
    double total_s = (double)(mono_ns() - t0) / 1e9;

    int64_t rows = query_int(db, rows_sql, 2, q);
    int64_t allowed = query_int(db, allowed_sql, 2, q) - allowed_before;
    bool exact = rows == keys && allowed == keys;
    printf("run %s: %ld buckets in %ld messages of %ld (each published %ld time%s)\n", run, keys,
           nmsgs, per_msg, repeat, repeat > 1 ? "s" : "");
    printf("publish %.3f s, total %.3f s, %.0f buckets/s\n", publish_s, total_s,
           (double)keys / total_s);
    printf("rows %lld, allowed added %lld: %s\n", (long long)rows, (long long)allowed,
           exact ? "exact" : "NOT EXACT");
    status = exact ? 0 : 1;
done:
    for (long m = 0; m < nmsgs; m++)
        free(ids[m]);
    free(ids);
    free(arr);
    pg_disconnect(db);
    config_fini(&cfg);
    return status;
}
