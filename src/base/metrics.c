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

#include "strbuf.h"

#define METRICS_MAGIC 0x74676d32u /* "tgm2": a new layout resets old slots */
#define MAX_SLOTS 256
#define MAX_ROUTES 64

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
    uint64_t cache_evictions;        /* stored: the cache counts them itself */
    /* Usage publisher: gauges (stored) and counters (added). */
    uint64_t usage_backlog, usage_capacity, usage_connected;
    uint64_t usage_dropped, usage_batches, usage_buckets;
};

struct metrics {
    struct slot *mine;
    int fd;
    char *dir;
};

static void add(uint64_t *c, uint64_t n)
{
    __atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static uint64_t load(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* Maps slot file path; with lock, only when its flock can be taken. */
static struct slot *map_slot(const char *path, bool lock, int *fd_out)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return NULL;
    if ((lock && flock(fd, LOCK_EX | LOCK_NB) != 0) || ftruncate(fd, sizeof(struct slot)) != 0) {
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
        m->mine = map_slot(path, true, &m->fd);
    }
    if (!m->mine) {
        api_error_set(err, ERR_INTERNAL, NULL, "metrics_dir %s: no free slot of %d", dir, MAX_SLOTS);
        free(m->dir);
        free(m);
        return NULL;
    }
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
    store(&m->mine->cache_evictions, total);
}


void metrics_usage_journal(struct metrics *m, uint64_t backlog, uint64_t capacity,
                           uint64_t dropped_more)
{
    store(&m->mine->usage_backlog, backlog);
    store(&m->mine->usage_capacity, capacity);
    add(&m->mine->usage_dropped, dropped_more);
}

void metrics_usage_broker(struct metrics *m, bool connected)
{
    store(&m->mine->usage_connected, connected ? 1 : 0);
}

void metrics_usage_batch(struct metrics *m, size_t buckets)
{
    add(&m->mine->usage_batches, 1);
    add(&m->mine->usage_buckets, buckets);
}

/* Adds src into the totals. */
static void accumulate(struct slot *t, const struct slot *s)
{
    const uint64_t *a = (const uint64_t *)&s->requests;
    uint64_t *b = (uint64_t *)&t->requests;
    size_t n = (sizeof *s - offsetof(struct slot, requests)) / sizeof(uint64_t);
    for (size_t i = 0; i < n; i++)
        b[i] += load(&a[i]);
}

char *metrics_render(struct metrics *m, const char *const *route_names, size_t nroutes)
{
    struct slot *t = xcalloc(1, sizeof *t);
    if (m->dir) {
        for (int i = 0; i < MAX_SLOTS; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/slot-%03d", m->dir, i);
            if (access(path, F_OK) != 0)
                continue;
            int fd;
            struct slot *s = map_slot(path, false, &fd);
            if (s) {
                accumulate(t, s);
                munmap(s, sizeof *s);
                close(fd);
            }
        }
    } else {
        accumulate(t, m->mine);
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
        (unsigned long long)t->usage_backlog, (unsigned long long)t->usage_capacity,
        (unsigned long long)t->usage_dropped, (unsigned long long)t->usage_connected,
        (unsigned long long)t->usage_batches, (unsigned long long)t->usage_buckets);
    free(t);
    return b.p;
}
