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
#include "metrics_slot.h"
#include "procstat.h"
#include "strbuf.h"

#define MAX_SLOTS 256
#define MAX_ROUTES METRICS_ROUTES
#define PROCESS_SAMPLE_MS 1000 /* /proc is read at most this often */

static const int statuses[] = {200, 201, 202, 204, 400, 401, 403, 404,
                               405, 409, 413, 415, 429, 500, 503};
#define NSTATUS METRICS_STATUSES
_Static_assert(TG_ARRAY_LEN(statuses) + 1 == NSTATUS, "the listed statuses and other");

/* Check latency buckets, upper bounds in microseconds. */
static const int64_t buckets_us[] = {50, 100, 200, 300, 500, 750, 1000, 2000, 5000, 10000, 50000};
#define NBUCKETS METRICS_CHECK_BUCKETS
_Static_assert(TG_ARRAY_LEN(buckets_us) == NBUCKETS, "one bound per bucket");

static const char *const outcomes[] = {"allowed",   "invalid_key",  "expired",
                                       "suspended", "revoked",      "rate_limited",
                                       "quota_exceeded", "unavailable", "other"};
#define NOUTCOMES METRICS_OUTCOMES
_Static_assert(TG_ARRAY_LEN(outcomes) == NOUTCOMES, "one name per outcome");

static const char *const redis_kinds[] = {"record_read", "record_write", "ratelimit", "publish"};


/* Maps slot file path when its flock can be taken: the lock, held for the
 * process's life and dropped by the kernel however it ends, is what tells a
 * live slot from a dead one. */
static struct metrics_slot *map_slot(const char *path, int *fd_out)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return NULL;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 || ftruncate(fd, sizeof(struct metrics_slot)) != 0) {
        close(fd);
        return NULL;
    }
    struct metrics_slot *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
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
    m->mine->alert_known = m->mine->alert_pending = m->mine->alert_oldest_ms = 0;
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
    metrics_add(&m->mine->requests[r][status_index(status)], 1);
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
    metrics_add(&m->mine->outcomes[o], 1);
    size_t b = 0;
    while (b < NBUCKETS && ns > buckets_us[b] * 1000)
        b++;
    metrics_add(&m->mine->check_buckets[b], 1);
    metrics_add(&m->mine->check_count, 1);
    metrics_add(&m->mine->check_sum_ns, ns > 0 ? (uint64_t)ns : 0);
}

void metrics_redis_error(struct metrics *m, enum metric_redis_error kind)
{
    metrics_add(&m->mine->redis_errors[kind], 1);
}

void metrics_record_load(struct metrics *m, bool from_pg)
{
    metrics_add(from_pg ? &m->mine->loads_pg : &m->mine->loads_redis, 1);
}

void metrics_cache(struct metrics *m, bool hit)
{
    metrics_add(hit ? &m->mine->cache_hits : &m->mine->cache_misses, 1);
}

void metrics_cache_evictions(struct metrics *m, uint64_t total)
{
    metrics_store(&m->mine->cache_evictions, m->evictions_base + total);
}


void metrics_usage_journal(struct metrics *m, uint64_t backlog, uint64_t capacity,
                           uint64_t dropped_more)
{
    metrics_store(&m->mine->g.usage_backlog, backlog);
    metrics_store(&m->mine->g.usage_capacity, capacity);
    metrics_add(&m->mine->usage_dropped, dropped_more);
}

void metrics_usage_broker(struct metrics *m, bool connected)
{
    metrics_store(&m->mine->g.usage_connected, connected ? 1 : 0);
}

void metrics_usage_batch(struct metrics *m, size_t buckets)
{
    metrics_add(&m->mine->usage_batches, 1);
    metrics_add(&m->mine->usage_buckets, buckets);
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
    metrics_store(&m->mine->cpu_ms, m->cpu_base + (uint64_t)ps.cpu_ms);
    metrics_store(&m->mine->g.rss_bytes, ps.rss_bytes);
    metrics_store(&m->mine->g.open_fds, ps.open_fds);
    metrics_store(&m->mine->start_ms, (uint64_t)ps.start_ms);
}

/* Adds s's counters into the totals, and its gauges when its process runs. */
static void accumulate(struct metrics_slot *t, const struct metrics_slot *s, bool live)
{
    const uint64_t *a = (const uint64_t *)&s->requests;
    uint64_t *b = (uint64_t *)&t->requests;
    size_t end = live ? offsetof(struct metrics_slot, g) + sizeof s->g : offsetof(struct metrics_slot, g);
    size_t n = (end - offsetof(struct metrics_slot, requests)) / sizeof(uint64_t);
    for (size_t i = 0; i < n; i++)
        b[i] += metrics_load(&a[i]);
    uint64_t start = metrics_load(&s->start_ms);
    if (live && start > t->start_ms)
        t->start_ms = start;
    metrics_billing_accumulate(t, s, live);
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
static void accumulate_file(struct metrics_slot *t, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size == (off_t)sizeof(struct metrics_slot)) {
        struct metrics_slot *s = mmap(NULL, sizeof *s, PROT_READ, MAP_SHARED, fd, 0);
        if (s != MAP_FAILED) {
            if (s->magic == METRICS_MAGIC)
                accumulate(t, s, slot_alive(fd));
            munmap(s, sizeof *s);
        }
    }
    close(fd);
}

/* Build information and the process figures (see metrics.h for how they
 * add up over the pool). */
static void render_process(struct strbuf *b, const struct metrics_slot *t)
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
    struct metrics_slot *t = xcalloc(1, sizeof *t);
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
    metrics_billing_render(&b, t, now_ms());
    render_process(&b, t);
    free(t);
    return b.p;
}
