#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buildinfo.h"
#include "procstat.h"
#include "strbuf.h"

#define METRICS_MAGIC 0x74676d34u /* "tgm4": a new layout resets old slots */
#define MAX_SLOTS 256
#define MAX_ROUTES 64
#define PROCESS_SAMPLE_MS 1000 /* /proc is read at most this often */

static const int statuses[] = {200, 201, 202, 204, 400, 401, 403, 404,
                               405, 409, 413, 415, 429, 500, 503};
#define NSTATUS (TG_ARRAY_LEN(statuses) + 1) /* + other */

/* Check latency buckets, upper bounds in microseconds. */
static const int64_t buckets_us[] = {50, 100, 200, 300, 500, 750, 1000, 2000, 5000, 10000, 50000};
#define NBUCKETS TG_ARRAY_LEN(buckets_us)

static const char *const outcomes[] = {"allowed",   "invalid_key",  "expired",
                                       "suspended", "revoked",      "rate_limited",
                                       "quota_exceeded", "unavailable", "other"};
#define NOUTCOMES TG_ARRAY_LEN(outcomes)

static const char *const redis_kinds[] = {"record_read", "record_write", "ratelimit", "publish"};

/* Every counter lies between requests and g; the gauges are in g.  A slot
 * outlives its process: the counters stay in the file, summed by every
 * render and continued by the next process that takes the slot, so a total
 * never goes down; the gauges are the process's present state and count only
 * while it runs. */
struct gauges {
    uint64_t usage_backlog, usage_capacity, usage_connected;
    uint64_t processes; /* 1: summed, the number of live processes */
    uint64_t rss_bytes, open_fds;
    uint64_t billingd; /* 1 in a running billingd's slot */
};

struct slot {
    uint32_t magic;
    uint32_t nroutes;
    uint64_t requests[MAX_ROUTES + 1][NSTATUS]; /* last row: no route */
    uint64_t check_buckets[NBUCKETS + 1];       /* last: +Inf */
    uint64_t check_count;
    uint64_t check_sum_ns;
    uint64_t outcomes[NOUTCOMES];
    uint64_t redis_errors[REDIS_ERR_KINDS];
    uint64_t cache_hits, cache_misses;
    uint64_t loads_redis, loads_pg; /* key records read from the stores */
    uint64_t cache_evictions;        /* evictions_base + the cache's own count */
    uint64_t usage_dropped, usage_batches, usage_buckets;
    uint64_t cpu_ms; /* cpu_base + this process's own */
    uint64_t bill_messages, bill_batches, bill_duplicates, bill_rows, bill_events;
    uint64_t bill_errors[BILLING_ERR_KINDS];
    struct gauges g;
    /* Not summed: the newest start of a live process, the latest success of
     * any billingd, the oldest unacknowledged message of a live one. */
    uint64_t start_ms, bill_last_ok_ms, bill_unacked_ms;
};

struct metrics {
    struct slot *mine;
    int fd;
    char *dir;
    uint64_t evictions_base; /* the slot's count when this process took it */
    uint64_t cpu_base;       /* likewise */
    int64_t next_sample_ms;  /* metrics_process: monotonic; atomics (two threads) */
};

static void add(uint64_t *c, uint64_t n)
{
    __atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static uint64_t load(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* Maps slot file path when its flock can be taken: the lock, held for the
 * process's life and dropped by the kernel however it ends, is what tells a
 * live slot from a dead one. */
static struct slot *map_slot(const char *path, int *fd_out)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return NULL;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 || ftruncate(fd, sizeof(struct slot)) != 0) {
        close(fd);
        return NULL;
    }
    struct slot *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (s == MAP_FAILED) {
        close(fd);
        return NULL;
    }
    if (s->magic != METRICS_MAGIC) {
        memset(s, 0, sizeof *s);
        s->magic = METRICS_MAGIC;
    }
    *fd_out = fd;
    return s;
}

struct metrics *metrics_open(const char *dir, struct api_error *err)
{
    struct metrics *m = xcalloc(1, sizeof *m);
    m->fd = -1;
    if (!dir || !*dir) {
        m->mine = xcalloc(1, sizeof *m->mine);
        m->mine->g.processes = 1;
        metrics_process(m, mono_ms());
        return m;
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        api_error_set(err, ERR_INTERNAL, NULL, "metrics_dir %s: %s", dir, strerror(errno));
        free(m);
        return NULL;
    }
    m->dir = xstrdup(dir);
    for (int i = 0; i < MAX_SLOTS && !m->mine; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/slot-%03d", dir, i);
        m->mine = map_slot(path, &m->fd);
    }
    if (!m->mine) {
        api_error_set(err, ERR_INTERNAL, NULL, "metrics_dir %s: no free slot of %d", dir, MAX_SLOTS);
        free(m->dir);
        free(m);
        return NULL;
    }
    m->evictions_base = m->mine->cache_evictions;
    m->cpu_base = m->mine->cpu_ms;
    memset(&m->mine->g, 0, sizeof m->mine->g); /* the last owner's state, not ours */
    m->mine->bill_unacked_ms = 0;
    m->mine->g.processes = 1;
    metrics_process(m, mono_ms());
    return m;
}

void metrics_close(struct metrics *m)
{
    if (!m)
        return;
    if (m->fd >= 0) {
        munmap(m->mine, sizeof *m->mine);
        close(m->fd); /* releases the slot's lock */
    } else {
        free(m->mine);
    }
    free(m->dir);
    free(m);
}

static size_t status_index(int status)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(statuses); i++)
        if (statuses[i] == status)
            return i;
    return NSTATUS - 1;
}

void metrics_request(struct metrics *m, int route, int status)
{
    size_t r = route >= 0 && route < MAX_ROUTES ? (size_t)route : MAX_ROUTES;
    add(&m->mine->requests[r][status_index(status)], 1);
}

/* The slot of outcomes[] that counts reason. */
static size_t outcome_index(enum err_code reason)
{
    switch (reason) {
    case ERR_NONE: return 0;
    case ERR_INVALID_KEY: return 1;
    case ERR_EXPIRED: return 2;
    case ERR_SUSPENDED: return 3;
    case ERR_REVOKED: return 4;
    case ERR_RATE_LIMITED: return 5;
    case ERR_QUOTA_EXCEEDED: return 6;
    case ERR_UNAVAILABLE: return 7;
    default: return NOUTCOMES - 1;
    }
}

void metrics_check(struct metrics *m, enum err_code reason, int64_t ns)
{
    size_t o = outcome_index(reason);
    add(&m->mine->outcomes[o], 1);
    size_t b = 0;
    while (b < NBUCKETS && ns > buckets_us[b] * 1000)
        b++;
    add(&m->mine->check_buckets[b], 1);
    add(&m->mine->check_count, 1);
    add(&m->mine->check_sum_ns, ns > 0 ? (uint64_t)ns : 0);
}

void metrics_redis_error(struct metrics *m, enum metric_redis_error kind)
{
    add(&m->mine->redis_errors[kind], 1);
}

void metrics_record_load(struct metrics *m, bool from_pg)
{
    add(from_pg ? &m->mine->loads_pg : &m->mine->loads_redis, 1);
}

void metrics_cache(struct metrics *m, bool hit)
{
    add(hit ? &m->mine->cache_hits : &m->mine->cache_misses, 1);
}

static void store(uint64_t *c, uint64_t v)
{
    __atomic_store_n(c, v, __ATOMIC_RELAXED);
}

void metrics_cache_evictions(struct metrics *m, uint64_t total)
{
    store(&m->mine->cache_evictions, m->evictions_base + total);
}


void metrics_usage_journal(struct metrics *m, uint64_t backlog, uint64_t capacity,
                           uint64_t dropped_more)
{
    store(&m->mine->g.usage_backlog, backlog);
    store(&m->mine->g.usage_capacity, capacity);
    add(&m->mine->usage_dropped, dropped_more);
}

void metrics_usage_broker(struct metrics *m, bool connected)
{
    store(&m->mine->g.usage_connected, connected ? 1 : 0);
}

void metrics_usage_batch(struct metrics *m, size_t buckets)
{
    add(&m->mine->usage_batches, 1);
    add(&m->mine->usage_buckets, buckets);
}

void metrics_process(struct metrics *m, int64_t mono_now)
{
    /* Called from the publisher's thread and from a worker answering
     * /metrics: the one that moves the due time samples. */
    int64_t due = __atomic_load_n(&m->next_sample_ms, __ATOMIC_RELAXED);
    if (mono_now < due ||
        !__atomic_compare_exchange_n(&m->next_sample_ms, &due, mono_now + PROCESS_SAMPLE_MS, false,
                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return;
    struct procstat ps;
    if (procstat_self(&ps) != 0)
        return; /* no /proc: the figures stay as they were */
    store(&m->mine->cpu_ms, m->cpu_base + (uint64_t)ps.cpu_ms);
    store(&m->mine->g.rss_bytes, ps.rss_bytes);
    store(&m->mine->g.open_fds, ps.open_fds);
    store(&m->mine->start_ms, (uint64_t)ps.start_ms);
}

/* Adds s's counters into the totals, and its gauges when its process runs. */
static void accumulate(struct slot *t, const struct slot *s, bool live)
{
    const uint64_t *a = (const uint64_t *)&s->requests;
    uint64_t *b = (uint64_t *)&t->requests;
    size_t end = live ? offsetof(struct slot, g) + sizeof s->g : offsetof(struct slot, g);
    size_t n = (end - offsetof(struct slot, requests)) / sizeof(uint64_t);
    for (size_t i = 0; i < n; i++)
        b[i] += load(&a[i]);
    uint64_t start = load(&s->start_ms), ok = load(&s->bill_last_ok_ms);
    uint64_t unacked = load(&s->bill_unacked_ms);
    if (live && start > t->start_ms)
        t->start_ms = start;
    if (ok > t->bill_last_ok_ms)
        t->bill_last_ok_ms = ok;
    if (live && unacked && (!t->bill_unacked_ms || unacked < t->bill_unacked_ms))
        t->bill_unacked_ms = unacked;
}

/* Whether the process that owns the slot open on fd still runs: it holds an
 * exclusive flock.  Taking a shared one briefly makes a process starting at
 * that moment pass this slot by and take another, which is harmless. */
static bool slot_alive(int fd)
{
    if (flock(fd, LOCK_SH | LOCK_NB) != 0)
        return errno == EWOULDBLOCK;
    flock(fd, LOCK_UN);
    return false;
}

/* Adds the slot file at path (if it is one of this layout) into t. */
static void accumulate_file(struct slot *t, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size == (off_t)sizeof(struct slot)) {
        struct slot *s = mmap(NULL, sizeof *s, PROT_READ, MAP_SHARED, fd, 0);
        if (s != MAP_FAILED) {
            if (s->magic == METRICS_MAGIC)
                accumulate(t, s, slot_alive(fd));
            munmap(s, sizeof *s);
        }
    }
    close(fd);
}

void metrics_billing_message(struct metrics *m)
{
    add(&m->mine->bill_messages, 1);
}

void metrics_billing_applied(struct metrics *m, uint64_t batches, uint64_t duplicates,
                             uint64_t rows, uint64_t events, int64_t wall_ms)
{
    add(&m->mine->bill_batches, batches);
    add(&m->mine->bill_duplicates, duplicates);
    add(&m->mine->bill_rows, rows);
    add(&m->mine->bill_events, events);
    store(&m->mine->bill_last_ok_ms, wall_ms > 0 ? (uint64_t)wall_ms : 0);
}

void metrics_billing_error(struct metrics *m, enum metric_billing_error kind)
{
    add(&m->mine->bill_errors[kind], 1);
}

void metrics_billing_state(struct metrics *m, int64_t oldest_unacked_ms)
{
    store(&m->mine->g.billingd, 1);
    store(&m->mine->bill_unacked_ms, oldest_unacked_ms > 0 ? (uint64_t)oldest_unacked_ms : 0);
}

static const char *const billing_kinds[] = {"postgres", "amqp", "rejected"};

/* billingd's figures; wall_ms: now. */
static void render_billing(struct strbuf *b, const struct slot *t, int64_t wall_ms)
{
    double age = t->bill_unacked_ms && wall_ms > (int64_t)t->bill_unacked_ms
                     ? (double)(wall_ms - (int64_t)t->bill_unacked_ms) / 1e3 : 0;
    strbuf_printf(b, "# HELP tollgate_billingd_running billingd processes running.\n"
            "# TYPE tollgate_billingd_running gauge\ntollgate_billingd_running %llu\n"
            "# HELP tollgate_billingd_messages_total Usage messages taken from the queue.\n"
            "# TYPE tollgate_billingd_messages_total counter\n"
            "tollgate_billingd_messages_total %llu\n"
            "# HELP tollgate_billingd_batches_total Usage batches committed to PostgreSQL, or "
            "skipped as already applied.\n# TYPE tollgate_billingd_batches_total counter\n"
            "tollgate_billingd_batches_total{result=\"applied\"} %llu\n"
            "tollgate_billingd_batches_total{result=\"duplicate\"} %llu\n"
            "# HELP tollgate_billingd_rows_upserted_total usage_minute rows upserted.\n"
            "# TYPE tollgate_billingd_rows_upserted_total counter\n"
            "tollgate_billingd_rows_upserted_total %llu\n"
            "# HELP tollgate_billingd_events_total Usage events counted.\n"
            "# TYPE tollgate_billingd_events_total counter\ntollgate_billingd_events_total %llu\n",
        (unsigned long long)t->g.billingd, (unsigned long long)t->bill_messages,
        (unsigned long long)t->bill_batches, (unsigned long long)t->bill_duplicates,
        (unsigned long long)t->bill_rows, (unsigned long long)t->bill_events);
    strbuf_printf(b, "# HELP tollgate_billingd_errors_total billingd failures by kind.\n"
            "# TYPE tollgate_billingd_errors_total counter\n");
    for (size_t i = 0; i < BILLING_ERR_KINDS; i++)
        strbuf_printf(b, "tollgate_billingd_errors_total{kind=\"%s\"} %llu\n", billing_kinds[i],
            (unsigned long long)t->bill_errors[i]);
    strbuf_printf(b, "# HELP tollgate_billingd_last_success_timestamp_seconds When billingd "
            "last committed a window, since the epoch (0: never).\n"
            "# TYPE tollgate_billingd_last_success_timestamp_seconds gauge\n"
            "tollgate_billingd_last_success_timestamp_seconds %.3f\n"
            "# HELP tollgate_billingd_oldest_unacked_age_seconds Age of the oldest message a "
            "running billingd holds unacknowledged (0: none).\n"
            "# TYPE tollgate_billingd_oldest_unacked_age_seconds gauge\n"
            "tollgate_billingd_oldest_unacked_age_seconds %.3f\n",
        (double)t->bill_last_ok_ms / 1e3, age);
}

/* Build information and the process figures (see metrics.h for how they
 * add up over the pool). */
static void render_process(struct strbuf *b, const struct slot *t)
{
    strbuf_printf(b, "# HELP tollgate_build_info The version and commit built; always 1.\n"
            "# TYPE tollgate_build_info gauge\n"
            "tollgate_build_info{version=\"%s\",commit=\"%s\"} 1\n", PACKAGE_VERSION,
        buildinfo_commit);
    strbuf_printf(b, "# HELP tollgate_processes Processes running with a metrics slot.\n"
            "# TYPE tollgate_processes gauge\ntollgate_processes %llu\n"
            "# HELP process_start_time_seconds Start time of the newest running process, "
            "since the epoch.\n# TYPE process_start_time_seconds gauge\n"
            "process_start_time_seconds %.3f\n"
            "# HELP process_cpu_seconds_total User and system CPU time of the processes, "
            "those that ended included.\n# TYPE process_cpu_seconds_total counter\n"
            "process_cpu_seconds_total %.3f\n"
            "# HELP process_resident_memory_bytes Resident memory of the running processes.\n"
            "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n"
            "# HELP process_open_fds Open file descriptors of the running processes.\n"
            "# TYPE process_open_fds gauge\nprocess_open_fds %llu\n",
        (unsigned long long)t->g.processes, (double)t->start_ms / 1e3, (double)t->cpu_ms / 1e3,
        (unsigned long long)t->g.rss_bytes, (unsigned long long)t->g.open_fds);
}

char *metrics_render(struct metrics *m, const char *const *route_names, size_t nroutes)
{
    metrics_process(m, mono_ms());
    struct slot *t = xcalloc(1, sizeof *t);
    if (m->dir) {
        for (int i = 0; i < MAX_SLOTS; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/slot-%03d", m->dir, i);
            accumulate_file(t, path);
        }
    } else {
        accumulate(t, m->mine, true);
    }
    struct strbuf b = {0};
    strbuf_reserve(&b, 8192);
    strbuf_printf(&b, "# HELP tollgate_requests_total HTTP requests answered, by route and status.\n"
            "# TYPE tollgate_requests_total counter\n");
    for (size_t r = 0; r <= MAX_ROUTES; r++) {
        for (size_t s = 0; s < NSTATUS; s++) {
            if (!t->requests[r][s])
                continue;
            const char *name = r < nroutes ? route_names[r] : "none";
            if (s < TG_ARRAY_LEN(statuses))
                strbuf_printf(&b, "tollgate_requests_total{route=\"%s\",status=\"%d\"} %llu\n", name,
                    statuses[s], (unsigned long long)t->requests[r][s]);
            else
                strbuf_printf(&b, "tollgate_requests_total{route=\"%s\",status=\"other\"} %llu\n", name,
                    (unsigned long long)t->requests[r][s]);
        }
    }
    strbuf_printf(&b, "# HELP tollgate_check_duration_seconds Time to decide and answer a check, in the "
            "responder.\n# TYPE tollgate_check_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i <= NBUCKETS; i++) {
        cum += t->check_buckets[i];
        if (i < NBUCKETS)
            strbuf_printf(&b, "tollgate_check_duration_seconds_bucket{le=\"%g\"} %llu\n",
                (double)buckets_us[i] / 1e6, (unsigned long long)cum);
        else
            strbuf_printf(&b, "tollgate_check_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)cum);
    }
    strbuf_printf(&b, "tollgate_check_duration_seconds_sum %.6f\ntollgate_check_duration_seconds_count %llu\n",
        (double)t->check_sum_ns / 1e9, (unsigned long long)t->check_count);
    strbuf_printf(&b, "# HELP tollgate_checks_total Check decisions by outcome.\n"
            "# TYPE tollgate_checks_total counter\n");
    for (size_t i = 0; i < NOUTCOMES; i++)
        strbuf_printf(&b, "tollgate_checks_total{outcome=\"%s\"} %llu\n", outcomes[i],
            (unsigned long long)t->outcomes[i]);
    strbuf_printf(&b, "# HELP tollgate_redis_errors_total Redis failures by kind.\n"
            "# TYPE tollgate_redis_errors_total counter\n");
    for (size_t i = 0; i < REDIS_ERR_KINDS; i++)
        strbuf_printf(&b, "tollgate_redis_errors_total{kind=\"%s\"} %llu\n", redis_kinds[i],
            (unsigned long long)t->redis_errors[i]);
    strbuf_printf(&b, "# HELP tollgate_key_cache_lookups_total Key record lookups in the process cache.\n"
            "# TYPE tollgate_key_cache_lookups_total counter\n"
            "tollgate_key_cache_lookups_total{result=\"hit\"} %llu\n"
            "tollgate_key_cache_lookups_total{result=\"miss\"} %llu\n",
        (unsigned long long)t->cache_hits, (unsigned long long)t->cache_misses);
    strbuf_printf(&b, "# HELP tollgate_key_record_loads_total Key records read from a store after "
            "a process cache miss.\n# TYPE tollgate_key_record_loads_total counter\n"
            "tollgate_key_record_loads_total{store=\"redis\"} %llu\n"
            "tollgate_key_record_loads_total{store=\"postgres\"} %llu\n"
            "# HELP tollgate_key_cache_evictions_total Key records evicted from a full process "
            "cache to make room.\n# TYPE tollgate_key_cache_evictions_total counter\n"
            "tollgate_key_cache_evictions_total %llu\n",
        (unsigned long long)t->loads_redis, (unsigned long long)t->loads_pg,
        (unsigned long long)t->cache_evictions);
    strbuf_printf(&b, "# HELP tollgate_usage_journal_backlog Check records journalled and not yet confirmed "
            "by the broker (the publish backlog).\n# TYPE tollgate_usage_journal_backlog gauge\n"
            "tollgate_usage_journal_backlog %llu\n"
            "# HELP tollgate_usage_journal_capacity Slots of the journals (the spool size).\n"
            "# TYPE tollgate_usage_journal_capacity gauge\ntollgate_usage_journal_capacity %llu\n"
            "# HELP tollgate_usage_dropped_total Checks not counted because a journal was full.\n"
            "# TYPE tollgate_usage_dropped_total counter\ntollgate_usage_dropped_total %llu\n"
            "# HELP tollgate_usage_publishers_connected Processes connected to the broker.\n"
            "# TYPE tollgate_usage_publishers_connected gauge\n"
            "tollgate_usage_publishers_connected %llu\n"
            "# HELP tollgate_usage_batches_total Usage batches confirmed by the broker.\n"
            "# TYPE tollgate_usage_batches_total counter\ntollgate_usage_batches_total %llu\n"
            "# HELP tollgate_usage_buckets_total Usage buckets in confirmed batches.\n"
            "# TYPE tollgate_usage_buckets_total counter\ntollgate_usage_buckets_total %llu\n",
        (unsigned long long)t->g.usage_backlog, (unsigned long long)t->g.usage_capacity,
        (unsigned long long)t->usage_dropped, (unsigned long long)t->g.usage_connected,
        (unsigned long long)t->usage_batches, (unsigned long long)t->usage_buckets);
    render_billing(&b, t, now_ms());
    render_process(&b, t);
    free(t);
    return b.p;
}
