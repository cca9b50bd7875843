/* tollgate-billingd: consumes the usage batches and writes them to
 * PostgreSQL; keeps the usage partitions, closes the billing periods that
 * are due and applies [retention] (retention.h, logprune.h).
 *
 * SIGUSR1 runs the housekeeping at once (it otherwise runs every minute).
 *
 * Messages are collected into a window (at most aggregate_ms after its
 * first one, prefetch messages or WINDOW_BUCKETS buckets), applied in one
 * transaction by ingest, then acknowledged together.  Nothing is acked
 * before its transaction committed, so a crash or a database failure only
 * means redelivery, which the batch ids make harmless.  Several daemons may
 * consume the same queue.  SIGTERM/SIGINT: the window in flight is applied
 * and acknowledged, then the daemon exits; SIGHUP reopens the log file
 * (logrotate).  Its figures go into a slot of the
 * responders' metrics_dir, so their GET /metrics shows them. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "alerteval.h"
#include "alertsend.h"
#include "amqpx.h"
#include "app.h"
#include "audit.h"
#include "buildinfo.h"
#include "config.h"
#include "ingest.h"
#include "log.h"
#include "logprune.h"
#include "metrics_billing.h"
#include "pg.h"
#include "retention.h"
#include "usagemsg.h"

extern char **environ;

#define WINDOW_BUCKETS 100000
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 5000
#define POLL_MS 200 /* longest wait before looking at the stop flag */
#define HOUSEKEEPING_MS 60000

static volatile sig_atomic_t stopping;
static volatile sig_atomic_t housekeeping_asked; /* SIGUSR1: housekeeping now */

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
}

static void on_usr1(int sig)
{
    (void)sig;
    housekeeping_asked = 1;
}

/* Async-signal-safe: only a flag; periodic() reopens. */
static void on_hup(int sig)
{
    (void)sig;
    log_reopen_request();
}

struct totals {
    uint64_t messages, rejected, applied, duplicates, buckets, events;
};

struct daemon {
    struct config cfg;
    struct pg_pool *pg;
    struct ingest *ing;
    struct pg_pool *alerts_pg;   /* the deliverer's own connection */
    struct alertsend *deliverer;
    struct alerteval_docs eval;
    bool eval_down;              /* for one log line per change */
    struct amqpx *amqp;
    struct metrics *metrics;
    int amqp_backoff_ms, db_backoff_ms;
    bool amqp_down, db_down, housekeeping_down; /* for one log line per change */
    bool retention_down, logs_down;
    bool amqp_ever;                             /* consumed once at least */
    struct totals tot;
    int64_t next_housekeeping_ms, next_stats_ms;
    /* The window being collected. */
    struct usage_msg *msgs;
    size_t nmsgs, nbuckets;
    uint64_t last_tag;       /* 0: nothing to acknowledge */
    /* Wall time the oldest message not yet committed came, 0: none.  Kept
     * across a failed window (its messages come again), cleared by a commit
     * or by a poll that finds the queue empty. */
    int64_t first_taken_ms;
};

/* Sleeps ms, waking early when asked to stop. */
static void nap(int ms)
{
    while (ms > 0 && !stopping) {
        int step = ms < POLL_MS ? ms : POLL_MS;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

static int next_backoff(int ms)
{
    return ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms * 2;
}

static void window_clear(struct daemon *d)
{
    for (size_t i = 0; i < d->nmsgs; i++)
        usage_msg_fini(&d->msgs[i]);
    d->nmsgs = d->nbuckets = 0;
    d->last_tag = 0;
    d->first_taken_ms = 0; /* the broker redelivers them: none is held here */
}

static void amqp_drop(struct daemon *d)
{
    amqpx_close(d->amqp);
    d->amqp = NULL;
}

/* Connects and starts consuming; logs only when the state changes. */
static int amqp_up(struct daemon *d)
{
    struct api_error err = {0};
    d->amqp = amqpx_connect(&d->cfg, CONNECT_TIMEOUT_MS, &err);
    if (d->amqp && amqpx_consume(d->amqp, (int)d->cfg.prefetch, &err) == 0) {
        /* Not after a reconnection of our own making (database failure). */
        if (d->amqp_down || !d->amqp_ever)
            log_info("amqp: consuming %s on %s:%lld (prefetch %lld)%s", USAGE_QUEUE, d->cfg.amqp_host,
                 (long long)d->cfg.amqp_port, (long long)d->cfg.prefetch,
                 d->amqp_down ? ", broker back" : "");
        d->amqp_down = false;
        d->amqp_ever = true;
        d->amqp_backoff_ms = BACKOFF_MIN_MS;
        return 0;
    }
    amqp_drop(d);
    metrics_billing_error(d->metrics, BILLING_ERR_AMQP);
    if (!d->amqp_down)
        log_warn("amqp: cannot consume: %s; retrying every %d-%d ms", err.message, BACKOFF_MIN_MS,
                 BACKOFF_MAX_MS);
    d->amqp_down = true;
    return -1;
}

/* Evaluates the alert rules against a batch as soon as it arrives, not
 * when its window is applied (up to aggregate_ms later).  A failure only
 * costs this batch's alerts (logged): usage must not wait on alerts. */
static void evaluate(struct daemon *d, const struct usage_msg *m)
{
    struct api_error e = {0};
    int fired = 0;
    struct pg_conn *conn = pg_acquire(d->pg, &e);
    int rc = conn ? alerteval_run(conn, m, &d->eval, &fired, &e) : -1;
    if (conn)
        pg_release(d->pg, conn);
    if (rc != 0 && !d->eval_down)
        log_error("alerts: batch %s not evaluated: %s", m->batch, e.message);
    else if (rc == 0 && d->eval_down)
        log_info("alerts: evaluating again");
    d->eval_down = rc != 0;
    if (fired > 0)
        log_info("alerts: batch %s fired %d alert(s)", m->batch, fired);
}

/* Takes one delivery into the window, or dead-letters it. */
static int take(struct daemon *d, struct amqpx_delivery *dv)
{
    struct api_error err = {0};
    d->tot.messages++;
    metrics_billing_message(d->metrics);
    if (!d->first_taken_ms)
        d->first_taken_ms = now_ms();
    struct usage_msg *m = &d->msgs[d->nmsgs];
    if (usage_msg_parse(dv->body, dv->len, m, &err) != 0) {
        d->tot.rejected++;
        metrics_billing_error(d->metrics, BILLING_ERR_REJECTED);
        log_error("usage message %llu (%zu bytes) rejected to %s: %s",
                  (unsigned long long)dv->tag, dv->len, USAGE_DEAD_QUEUE, err.message);
        free(dv->body);
        return amqpx_reject(d->amqp, dv->tag, &err);
    }
    free(dv->body);
    evaluate(d, m);
    d->nmsgs++;
    d->nbuckets += m->nbuckets + m->nevents;
    d->last_tag = dv->tag;
    return 0;
}

/* Collects a window: 0 (possibly empty), -1 when the connection failed
 * (the window is then dropped: its messages will be redelivered). */
static int collect(struct daemon *d)
{
    struct amqpx_delivery dv;
    struct api_error err = {0};
    int rc = amqpx_next(d->amqp, POLL_MS, &dv, &err);
    int64_t deadline = mono_ms() + d->cfg.aggregate_ms;
    while (rc == 1) {
        if (take(d, &dv) != 0) {
            rc = -1;
            break;
        }
        int64_t left = deadline - mono_ms();
        if (left <= 0 || stopping || d->nmsgs >= (size_t)d->cfg.prefetch ||
            d->nbuckets >= WINDOW_BUCKETS)
            return 0;
        rc = amqpx_next(d->amqp, left < POLL_MS ? (int)left : POLL_MS, &dv, &err);
        while (rc == 0 && !stopping && (left = deadline - mono_ms()) > 0)
            rc = amqpx_next(d->amqp, left < POLL_MS ? (int)left : POLL_MS, &dv, &err);
    }
    if (rc < 0) {
        metrics_billing_error(d->metrics, BILLING_ERR_AMQP);
        log_warn("amqp: %s; reconnecting", err.message[0] ? err.message : "connection lost");
        window_clear(d);
        amqp_drop(d);
        d->amqp_down = true;
        return -1;
    }
    return 0;
}

/* Applies the window and acknowledges it.  On a database failure, closes
 * the AMQP connection so that the broker hands the messages out again. */
static int apply(struct daemon *d)
{
    struct api_error e = {0};
    struct api_error err = {0};
    struct ingest_stats st;
    int64_t t0 = mono_ns();
    struct pg_conn *conn = pg_acquire(d->pg, &e);
    int rc = -1;
    if (!conn) {
        api_error_set(&err, ERR_INTERNAL, NULL, "%s", e.message);
    } else {
        rc = ingest_apply(d->ing, conn, d->msgs, d->nmsgs, &st, &err);
        int fired = 0;
        struct api_error ae = {0};
        if (rc == 0 &&
            alerteval_after_ingest(conn, d->msgs, d->nmsgs, &d->eval.quota, &fired, &ae) != 0)
            log_warn("alerts: quota after the window not evaluated: %s", ae.message);
        if (fired > 0)
            log_info("alerts: the window's recorded use fired %d alert(s)", fired);
        pg_release(d->pg, conn);
    }
    if (rc != 0) {
        metrics_billing_error(d->metrics, BILLING_ERR_POSTGRES);
        if (!d->db_down)
            log_error("postgres: %zu messages not applied: %s; they will be redelivered", d->nmsgs,
                      err.message);
        d->db_down = true;
        window_clear(d);
        amqp_drop(d);
        return -1;
    }
    if (d->db_down)
        log_info("postgres: applying again");
    d->db_down = false;
    d->db_backoff_ms = BACKOFF_MIN_MS;
    d->tot.applied += st.applied;
    d->tot.duplicates += st.duplicates;
    d->tot.buckets += st.buckets;
    d->tot.events += st.events;
    metrics_billing_applied(d->metrics, st.applied, st.duplicates, st.buckets, st.events, now_ms());
    d->first_taken_ms = 0;
    log_debug("window: %zu messages, %llu applied, %llu duplicates, %llu rows in %lld ms",
              d->nmsgs, (unsigned long long)st.applied, (unsigned long long)st.duplicates,
              (unsigned long long)st.buckets, (long long)((mono_ns() - t0) / 1000000));
    if (amqpx_ack(d->amqp, d->last_tag, true, &err) != 0) {
        /* Applied but not acked: the redelivery will be skipped as duplicate. */
        metrics_billing_error(d->metrics, BILLING_ERR_AMQP);
        log_warn("amqp: %s; reconnecting", err.message);
        amqp_drop(d);
        d->amqp_down = true;
    }
    window_clear(d);
    return 0;
}

/* ---- housekeeping ---- */

/* Retention (docs/retention.md): logged with what it removed.  Its failure
 * is logged but does not fail the housekeeping: closing the periods that
 * are due must not wait on a partition drop that timed out on a lock. */
static void retain(struct daemon *d, struct pg_conn *conn)
{
    struct api_error e = {0};
    struct retention_report rep = {0};
    if (retention_run(conn, &d->cfg, &rep, &e) != 0) {
        if (!d->retention_down)
            log_warn("retention: %s (SQLSTATE %s); next attempt in %d s", e.message,
                     e.sqlstate[0] ? e.sqlstate : "none", HOUSEKEEPING_MS / 1000);
    } else if (d->retention_down) {
        log_info("retention: done again");
    }
    d->retention_down = e.message[0] != '\0';
    if (rep.partitions)
        log_info("retention: dropped %llu usage partition(s) past retention (minute %lld days, "
                 "hour %lld days, months closed for billing): %s",
                 (unsigned long long)rep.partitions, (long long)d->cfg.retention_minute_days,
                 (long long)d->cfg.retention_hour_days, rep.dropped.p);
    if (rep.batch_ids || rep.event_ids)
        log_info("retention: purged %llu batch ids and %llu event ids older than %lld days",
                 (unsigned long long)rep.batch_ids, (unsigned long long)rep.event_ids,
                 (long long)d->cfg.retention_dedupe_days);
    if (rep.alert_events || rep.alert_attempts)
        log_info("retention: purged %llu finished alert events and %llu delivery attempts older "
                 "than %lld days", (unsigned long long)rep.alert_events,
                 (unsigned long long)rep.alert_attempts, (long long)d->cfg.retention_alerts_days);
    if (rep.alert_state)
        log_info("retention: purged %llu rows of alert evaluation state",
                 (unsigned long long)rep.alert_state);
    retention_report_fini(&rep);
    struct api_error le = {0};
    bool logs_failed = logprune_run(d->cfg.log_file, d->cfg.retention_logs_days, time(NULL),
                                    &le) < 0;
    if (logs_failed && !d->logs_down)
        log_warn("retention: %s", le.message);
    d->logs_down = logs_failed;
}

static void housekeeping(struct daemon *d)
{
    struct api_error e = {0};
    struct pg_conn *conn = pg_acquire(d->pg, &e);
    int rc = conn ? 0 : -1;
    struct pg_res *r = NULL;
    if (rc == 0) {
        r = pg_query(conn,
                     "SELECT tg_usage_partition(now() + make_interval(months => n)) "
                     "FROM generate_series(-1, 2) n",
                     0, NULL, &e);
        rc = r ? 0 : -1;
        pg_res_free(r);
    }
    if (rc == 0) {
        char grace[24];
        snprintf(grace, sizeof grace, "%lld", (long long)d->cfg.close_grace_min);
        const char *p[] = {grace};
        /* The closes and their audit entries in one transaction. */
        rc = pg_begin(conn, &e);
        if (rc == 0) {
            r = pg_query(conn, "SELECT tg_billing_close_due(make_interval(mins => $1::int))", 1, p,
                         &e);
            rc = r ? 0 : -1;
        }
        for (int i = 0; rc == 0 && i < pg_nrows(r); i++) {
            struct audit_entry a = {.actor = "tollgate-billingd", .role = "billing",
                                    .action = "billing.close", .resource_type = "billing_period",
                                    .resource_id = pg_val(r, i, 0),
                                    .changes = "{\"status\":{\"from\":\"open\",\"to\":\"closed\"}}"};
            rc = audit_append(conn, &d->cfg, &a, &e);
        }
        if (rc == 0)
            rc = pg_commit(conn, &e);
        if (rc != 0)
            pg_rollback(conn);
        for (int i = 0; rc == 0 && i < pg_nrows(r); i++)
            log_info("billing: period %s closed", pg_val(r, i, 0));
        pg_res_free(r);
    }
    /* After the closes: a month closed just now may go in the same run. */
    if (conn) {
        retain(d, conn);
        pg_release(d->pg, conn);
    }
    if (rc != 0) {
        if (!d->housekeeping_down)
            log_warn("housekeeping failed: %s; next attempt in %d s", e.message,
                     HOUSEKEEPING_MS / 1000);
        d->housekeeping_down = true;
        return;
    }
    if (d->housekeeping_down)
        log_info("housekeeping: done again");
    d->housekeeping_down = false;
}

static void log_totals(const struct daemon *d)
{
    log_info("billingd totals: %llu messages, %llu batches applied, %llu duplicates skipped, "
             "%llu buckets upserted, %llu events, %llu rejected",
             (unsigned long long)d->tot.messages, (unsigned long long)d->tot.applied,
             (unsigned long long)d->tot.duplicates, (unsigned long long)d->tot.buckets,
             (unsigned long long)d->tot.events, (unsigned long long)d->tot.rejected);
}

static void periodic(struct daemon *d)
{
    if (log_reopen_pending()) {
        if (log_reopen() < 0)
            log_error("SIGHUP: cannot reopen the log file: %s; writing to the old one",
                      strerror(errno));
        else
            log_info("SIGHUP: log file reopened");
    }
    int64_t now = mono_ms();
    metrics_billing_state(d->metrics, d->first_taken_ms);
    metrics_process(d->metrics, now); /* at most once a second */
    if (now >= d->next_housekeeping_ms || housekeeping_asked) {
        housekeeping_asked = 0;
        housekeeping(d);
        d->next_housekeeping_ms = now + HOUSEKEEPING_MS;
    }
    if (now >= d->next_stats_ms) {
        if (d->next_stats_ms)
            log_totals(d);
        d->next_stats_ms = now + 60000;
    }
}

/* The main loop; returns the exit status. */
static int run(struct daemon *d)
{
    int status = 0;
    while (!stopping) {
        periodic(d);
        if (!d->amqp && amqp_up(d) != 0) {
            nap(d->amqp_backoff_ms);
            d->amqp_backoff_ms = next_backoff(d->amqp_backoff_ms);
            continue;
        }
        int rc = collect(d);
        if (rc == 0 && d->last_tag == 0)
            d->first_taken_ms = 0; /* nothing waits for this daemon */
        metrics_billing_state(d->metrics, d->first_taken_ms);
        if (rc != 0 || d->last_tag == 0)
            continue;
        if (apply(d) != 0) {
            if (stopping) {
                status = 1; /* the window will be redelivered to another daemon */
                break;
            }
            nap(d->db_backoff_ms);
            d->db_backoff_ms = next_backoff(d->db_backoff_ms);
        }
    }
    return status;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tollgate-billingd [-c CONFIG]\n"
            "Tollgate's billing daemon: applies the usage batches from RabbitMQ to PostgreSQL,\n"
            "keeps the usage partitions and closes the billing periods that are due.\n"
            "  -c, --config FILE  configuration (default: $TOLLGATE_CONFIG, else %s)\n"
            "  -h, --help         this text\n"
            "  -V, --version      version and commit\n"
            "SIGTERM, SIGINT: stop after the window in flight; SIGHUP: reopen the log file.\n"
            "See tollgate-billingd(8).\n",
            CONFIG_DEFAULT_PATH);
}

int main(int argc, char **argv)
{
    if (no_core_dumps() != 0)
        fprintf(stderr, "tollgate-billingd: cannot turn core dumps off: %s\n", strerror(errno));
    const char *cfg_path = NULL;
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
        if (opt == 'c') {
            cfg_path = optarg;
        } else if (opt == 'V') {
            buildinfo_print(stdout, "tollgate-billingd");
            return 0;
        } else {
            usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    static struct daemon d;
    struct api_error err;
    const char *path = app_config_path(cfg_path);
    if (config_load(&d.cfg, path, environ, &err) != 0) {
        fprintf(stderr, "tollgate-billingd: %s\n", err.message);
        return 1;
    }
    if (log_open(d.cfg.log_file, (enum log_level)log_level_parse(d.cfg.log_level)) != 0) {
        fprintf(stderr, "tollgate-billingd: %s: cannot open log file %s\n", path,
                d.cfg.log_file);
        config_fini(&d.cfg);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    d.metrics = metrics_open(d.cfg.metrics_dir, &err);
    if (!d.metrics) {
        log_warn("%s; billingd's figures stay its own", err.message);
        d.metrics = metrics_open(NULL, &err);
    }
    metrics_billing_state(d.metrics, 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    d.pg = pg_pool_new(d.cfg.pg_conninfo, 1, d.cfg.pg_prepare != 0);
    d.alerts_pg = pg_pool_new(d.cfg.pg_conninfo, 1, d.cfg.pg_prepare != 0);
    d.deliverer = alertsend_new(&d.cfg, d.alerts_pg, d.metrics, &err);
    if (!d.deliverer || alertsend_start(d.deliverer, &err) != 0) {
        log_error("alerts: %s", err.message);
        alertsend_free(d.deliverer);
        pg_pool_free(d.alerts_pg);
        pg_pool_free(d.pg);
        log_close();
        config_fini(&d.cfg);
        return 1;
    }
    d.ing = ingest_new();
    d.msgs = xcalloc((size_t)d.cfg.prefetch, sizeof *d.msgs);
    d.amqp_backoff_ms = d.db_backoff_ms = BACKOFF_MIN_MS;
    log_info("tollgate-billingd %d: started (prefetch %lld, aggregate_ms %lld)", (int)getpid(),
             (long long)d.cfg.prefetch, (long long)d.cfg.aggregate_ms);

    int status = run(&d);

    window_clear(&d);
    amqp_drop(&d);
    log_totals(&d);
    log_info("tollgate-billingd %d: stopped", (int)getpid());
    alertsend_free(d.deliverer);
    pg_pool_free(d.alerts_pg);
    alerteval_docs_fini(&d.eval);
    curl_global_cleanup();
    free(d.msgs);
    ingest_free(d.ing);
    pg_pool_free(d.pg);
    metrics_close(d.metrics);
    log_close();
    config_fini(&d.cfg);
    return status;
}
