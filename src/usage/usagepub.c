#include "usagepub.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amqpx.h"
#include "log.h"
#include "metrics.h"

#define MAX_ADOPTED 16
#define BATCH_RECORDS 20000   /* records read into one message at most */
#define BATCHES_PER_ROUND 16  /* so that events are not starved by a backlog */
#define PUBLISH_TIMEOUT_MS 5000
#define CONNECT_TIMEOUT_MS 2000
#define ADOPT_EVERY_MS 1000
#define STOP_FLUSH_MS 3000
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000
#define NEAR_FULL_PERCENT 80
#define NEAR_FULL_LOG_EVERY_MS 60000

/* A POST /v1/usage/events batch waiting for the thread. */
struct ev_req {
    const struct usage_event *events;
    size_t n;
    int64_t deadline_ms; /* monotonic */
    bool done;
    int rc;
    struct api_error err;
    struct ev_req *next;
};

struct usagepub {
    const struct config *cfg;
    struct metrics *metrics;
    struct journal *own;
    struct journal *adopted[MAX_ADOPTED];
    size_t nadopted;
    struct amqpx *amqp;
    struct usage_agg *agg;
    struct usage_agg *credits; /* (key, "", remaining version): usage_msg_build */
    int64_t retry_at_ms, backoff_ms, next_adopt_ms, next_full_log_ms;
    uint64_t dropped_reported;
    bool broker_down; /* logged once per outage */
    bool up;          /* read by other threads (usagepub_connected): atomics */

    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t wake;  /* the thread: stop, or events to send */
    pthread_cond_t reply; /* the event senders */
    bool stopping;
    struct ev_req *queue;
};

/* ---- the broker connection ---- */

static void broker_failed(struct usagepub *p, const struct api_error *err)
{
    amqpx_close(p->amqp);
    p->amqp = NULL;
    __atomic_store_n(&p->up, false, __ATOMIC_RELAXED);
    metrics_usage_broker(p->metrics, false);
    p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (p->backoff_ms > BACKOFF_MAX_MS)
        p->backoff_ms = BACKOFF_MAX_MS;
    p->retry_at_ms = mono_ms() + p->backoff_ms;
    if (!p->broker_down)
        log_warn("usage: broker unavailable (%s); counts stay in the journal until it returns",
                 err->message);
    p->broker_down = true;
}

static bool connected(struct usagepub *p)
{
    if (p->amqp)
        return true;
    if (mono_ms() < p->retry_at_ms)
        return false;
    struct api_error err;
    p->amqp = amqpx_connect(p->cfg, CONNECT_TIMEOUT_MS, &err);
    if (p->amqp && amqpx_confirm_select(p->amqp, &err) == 0) {
        if (p->broker_down)
            log_info("usage: broker available again; publishing the journal");
        p->broker_down = false;
        p->backoff_ms = 0;
        __atomic_store_n(&p->up, true, __ATOMIC_RELAXED);
        metrics_usage_broker(p->metrics, true);
        return true;
    }
    broker_failed(p, &err);
    return false;
}

static int publish(struct usagepub *p, const char *id, const char *body, size_t len)
{
    struct api_error err;
    if (amqpx_publish(p->amqp, id, body, len, PUBLISH_TIMEOUT_MS, &err) == 0)
        return 0;
    broker_failed(p, &err);
    return -1;
}

/* ---- journals ---- */

struct scan {
    struct usage_agg *agg, *credits;
    size_t records;
};

static void add_record(const struct journal_rec *rec, void *arg)
{
    struct scan *sc = arg;
    usage_agg_add_check(sc->agg, rec);
    usage_agg_add_credit(sc->credits, rec);
    sc->records++;
}

/* Publishes the next batch of j.  The range is made pending before the
 * message leaves, so that a crash before the confirm replays exactly this
 * range under the same id.  Returns 1 when a full batch (or a replayed one)
 * was confirmed and more is waiting, 0 when j is caught up (what arrives
 * meanwhile waits for the next round: one message per flush_ms under normal
 * load, since every message costs the broker a write of its own), -1 when
 * the broker failed. */
static int flush_one(struct usagepub *p, struct journal *j)
{
    uint64_t head = journal_head(j), pending = journal_pending(j);
    bool replay = pending > head;
    usage_agg_clear(p->agg);
    usage_agg_clear(p->credits);
    struct scan sc = {p->agg, p->credits, 0};
    uint64_t end = journal_scan(j, head, replay ? pending : 0, BATCH_RECORDS, add_record, &sc);
    if (replay && end != pending) {
        /* Committed records do not change; only an adopted journal skips
         * slots, and it skips the same ones every time. */
        log_error("usage: journal %s: pending range %llu-%llu read only to %llu", journal_id(j),
                  (unsigned long long)head, (unsigned long long)pending, (unsigned long long)end);
        end = pending;
    }
    if (end == head)
        return 0;
    if (usage_agg_count(p->agg) == 0) { /* only skipped slots */
        journal_advance(j, end);
        return 1;
    }
    if (!connected(p))
        return -1;
    if (!replay)
        journal_set_pending(j, end);
    char id[USAGE_BATCH_ID_MAX + 1];
    snprintf(id, sizeof id, "%s:%llu-%llu", journal_id(j), (unsigned long long)head,
             (unsigned long long)end);
    size_t len;
    char *body = usage_msg_build(id, p->agg, NULL, 0, p->credits, &len);
    int rc = publish(p, id, body, len);
    free(body);
    if (rc != 0)
        return -1;
    journal_advance(j, end);
    metrics_usage_batch(p->metrics, usage_agg_count(p->agg));
    return replay || sc.records >= BATCH_RECORDS ? 1 : 0;
}

/* Publishes up to max batches of j; -1 when the broker failed. */
static int flush_journal(struct usagepub *p, struct journal *j, int max)
{
    for (int i = 0; i < max; i++) {
        int rc = flush_one(p, j);
        if (rc <= 0)
            return rc;
    }
    return 0;
}

static bool drained(struct journal *j)
{
    return journal_head(j) >= journal_reserved(j);
}

/* Takes over journals whose process died (their lock is free), and closes
 * the adopted ones that are drained. */
static void adopt_orphans(struct usagepub *p)
{
    for (size_t i = 0; i < p->nadopted;) {
        if (drained(p->adopted[i])) {
            log_info("usage: adopted journal %s replayed", journal_id(p->adopted[i]));
            journal_close(p->adopted[i], true);
            p->adopted[i] = p->adopted[--p->nadopted];
        } else {
            i++;
        }
    }
    while (p->nadopted < MAX_ADOPTED) {
        struct journal *skip[MAX_ADOPTED + 1];
        skip[0] = p->own;
        memcpy(skip + 1, p->adopted, p->nadopted * sizeof skip[0]);
        struct api_error err;
        struct journal *j = journal_adopt(p->cfg->journal_dir, skip, p->nadopted + 1, &err);
        if (!j) {
            if (err.message[0])
                log_warn("usage: %s", err.message);
            break;
        }
        log_info("usage: adopted journal %s of a process that stopped (%llu records to replay)",
                 journal_id(j), (unsigned long long)(journal_reserved(j) - journal_head(j)));
        p->adopted[p->nadopted++] = j;
    }
}

static void report_fill(struct usagepub *p)
{
    uint64_t used = journal_reserved(p->own) - journal_head(p->own);
    uint64_t cap = journal_capacity(p->own);
    uint64_t dropped = journal_dropped(p->own);
    metrics_usage_journal(p->metrics, used, cap, dropped - p->dropped_reported);
    if (dropped > p->dropped_reported)
        log_error("usage: journal %s full: %llu checks not counted so far", journal_id(p->own),
                  (unsigned long long)dropped);
    p->dropped_reported = dropped;
    int64_t now = mono_ms();
    if (used * 100 >= cap * NEAR_FULL_PERCENT && now >= p->next_full_log_ms) {
        log_warn("usage: journal %s is %llu%% full (%llu of %llu slots); when full, checks "
                 "are answered but not counted",
                 journal_id(p->own), (unsigned long long)(used * 100 / cap),
                 (unsigned long long)used, (unsigned long long)cap);
        p->next_full_log_ms = now + NEAR_FULL_LOG_EVERY_MS;
    }
}

/* ---- events ---- */

static void send_events(struct usagepub *p, struct ev_req *q)
{
    if (mono_ms() >= q->deadline_ms) {
        api_error_set(&q->err, ERR_UNAVAILABLE, NULL, "timed out before publishing");
        q->rc = -1;
        return;
    }
    if (!connected(p)) {
        api_error_set(&q->err, ERR_UNAVAILABLE, NULL, "the broker is unavailable");
        q->rc = -1;
        return;
    }
    char id[USAGE_BATCH_ID_MAX + 1] = "ev:";
    random_base62(id + 3, 22);
    usage_agg_clear(p->agg);
    size_t len;
    char *body = usage_msg_build(id, p->agg, q->events, q->n, NULL, &len);
    q->rc = publish(p, id, body, len);
    if (q->rc != 0)
        api_error_set(&q->err, ERR_UNAVAILABLE, NULL, "the broker did not confirm the events");
    free(body);
}

static void serve_events(struct usagepub *p)
{
    pthread_mutex_lock(&p->mu);
    struct ev_req *list = p->queue;
    p->queue = NULL;
    pthread_mutex_unlock(&p->mu);
    if (!list)
        return;
    for (struct ev_req *q = list; q; q = q->next)
        send_events(p, q);
    pthread_mutex_lock(&p->mu);
    for (struct ev_req *q = list, *next; q; q = next) {
        next = q->next; /* q belongs to its sender once done is set */
        q->done = true;
    }
    pthread_cond_broadcast(&p->reply);
    pthread_mutex_unlock(&p->mu);
}

/* ---- the thread ---- */

static void round_trip(struct usagepub *p)
{
    /* Connected ahead of need, so that an outage shows in the log and the
     * metrics before counts pile up; an idle connection answers heartbeats. */
    struct api_error err;
    if (connected(p) && amqpx_pump(p->amqp, &err) != 0)
        broker_failed(p, &err);
    serve_events(p);
    if (mono_ms() >= p->next_adopt_ms) {
        adopt_orphans(p);
        p->next_adopt_ms = mono_ms() + ADOPT_EVERY_MS;
    }
    for (size_t i = 0; i < p->nadopted; i++)
        if (flush_journal(p, p->adopted[i], BATCHES_PER_ROUND) < 0)
            break;
    (void)flush_journal(p, p->own, BATCHES_PER_ROUND);
    report_fill(p);
    metrics_process(p->metrics, mono_ms()); /* at most once a second */
}

static void *pub_main(void *arg)
{
    struct usagepub *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stopping) {
        if (!p->queue) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t ns = ts.tv_nsec + p->cfg->flush_ms * 1000000;
            ts.tv_sec += ns / 1000000000;
            ts.tv_nsec = ns % 1000000000;
            pthread_cond_timedwait(&p->wake, &p->mu, &ts);
        }
        pthread_mutex_unlock(&p->mu);
        round_trip(p);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);

    /* Graceful stop: the workers are gone, so the journal no longer grows;
     * publish what is left while the broker answers, for a bounded time.
     * What remains is replayed by the next process. */
    int64_t deadline = mono_ms() + STOP_FLUSH_MS;
    p->retry_at_ms = 0;
    while (mono_ms() < deadline && !drained(p->own)) {
        int rc = flush_journal(p, p->own, BATCHES_PER_ROUND);
        if (rc < 0 && !p->amqp && p->retry_at_ms > deadline)
            break;
        if (rc < 0 || !drained(p->own)) {
            struct timespec pause = {0, 50 * 1000000};
            nanosleep(&pause, NULL);
        }
    }
    serve_events(p); /* answers late senders (with an error if down) */
    return NULL;
}

static void condattr_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

struct usagepub *usagepub_start(const struct config *cfg, struct metrics *m, struct api_error *err)
{
    struct journal *own = journal_create(cfg->journal_dir, cfg->journal_mb, err);
    if (!own)
        return NULL;
    struct usagepub *p = xcalloc(1, sizeof *p);
    p->cfg = cfg;
    p->metrics = m;
    p->own = own;
    p->agg = usage_agg_new();
    p->credits = usage_agg_new();
    pthread_mutex_init(&p->mu, NULL);
    condattr_monotonic(&p->wake);
    condattr_monotonic(&p->reply);
    if (pthread_create(&p->tid, NULL, pub_main, p) != 0) {
        api_error_set(err, ERR_UNAVAILABLE, NULL, "usage: cannot start the publisher thread");
        usage_agg_free(p->agg);
        usage_agg_free(p->credits);
        journal_close(own, true);
        free(p);
        return NULL;
    }
    log_info("usage: journal %s (%llu slots) in %s", journal_id(own),
             (unsigned long long)journal_capacity(own), cfg->journal_dir);
    return p;
}

void usagepub_stop(struct usagepub *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->tid, NULL);
    for (size_t i = 0; i < p->nadopted; i++)
        journal_close(p->adopted[i], drained(p->adopted[i]));
    bool empty = drained(p->own);
    if (!empty)
        log_warn("usage: stopping with %llu records unpublished in journal %s; the next "
                 "process replays them",
                 (unsigned long long)(journal_reserved(p->own) - journal_head(p->own)),
                 journal_id(p->own));
    journal_close(p->own, empty);
    amqpx_close(p->amqp);
    usage_agg_free(p->agg);
    usage_agg_free(p->credits);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->reply);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

struct journal *usagepub_journal(struct usagepub *p)
{
    return p->own;
}

bool usagepub_connected(const struct usagepub *p)
{
    return __atomic_load_n(&p->up, __ATOMIC_RELAXED);
}

int usagepub_send_events(struct usagepub *p, const struct usage_event *events, size_t n,
                         int timeout_ms, struct api_error *err)
{
    struct ev_req *q = xcalloc(1, sizeof *q);
    q->events = events;
    q->n = n;
    q->deadline_ms = mono_ms() + timeout_ms;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        free(q);
        api_error_set(err, ERR_UNAVAILABLE, NULL, "the process is stopping");
        return -1;
    }
    q->next = p->queue;
    p->queue = q;
    pthread_cond_signal(&p->wake);
    /* The thread answers every queued request, even when stopping, and a
     * publish is bounded by PUBLISH_TIMEOUT_MS: this wait ends. */
    while (!q->done)
        pthread_cond_wait(&p->reply, &p->mu);
    pthread_mutex_unlock(&p->mu);
    int rc = q->rc;
    if (rc != 0)
        *err = q->err;
    free(q);
    return rc;
}
