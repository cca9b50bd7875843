/* Unit tests of metrics: slots shared through a directory, counters, and the
 * Prometheus text. */
#include <sys/stat.h>
#include <time.h>

#include "metrics.h"
#include "unit.h"

static char dir[128];

static void make_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/tollgate-metrics-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
}

static void remove_dir(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CU_ASSERT(system(cmd) == 0);
}

static const char *const names[] = {"GET /a", "POST /v1/check"};

static void test_local_counters(void)
{
    struct api_error err;
    struct metrics *m = metrics_open(NULL, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    metrics_request(m, 1, 200);
    metrics_request(m, 1, 200);
    metrics_request(m, 0, 418); /* not a listed status: "other" */
    metrics_request(m, -1, 404);
    metrics_check(m, ERR_NONE, 80 * 1000);      /* 80 us */
    metrics_check(m, ERR_RATE_LIMITED, 3000000); /* 3 ms */
    metrics_check(m, ERR_CONFLICT, 10); /* not a check outcome: "other" */
    metrics_redis_error(m, REDIS_ERR_RATELIMIT);
    metrics_cache(m, true);
    metrics_cache(m, false);
    metrics_cache(m, false);
    metrics_record_load(m, false);
    metrics_record_load(m, true);
    metrics_cache_evictions(m, 7);
    metrics_cache_evictions(m, 9); /* a total, not an increment */
    metrics_record_load(m, true);
    char *t = metrics_render(m, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_requests_total{route=\"POST /v1/check\",status=\"200\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_key_record_loads_total{store=\"redis\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_key_record_loads_total{store=\"postgres\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_key_cache_evictions_total 9\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_requests_total{route=\"GET /a\",status=\"other\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_requests_total{route=\"none\",status=\"404\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_check_duration_seconds_bucket{le=\"5e-05\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_check_duration_seconds_bucket{le=\"0.0001\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_check_duration_seconds_bucket{le=\"0.002\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_check_duration_seconds_bucket{le=\"0.005\"} 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_check_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_check_duration_seconds_count 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_checks_total{outcome=\"allowed\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_checks_total{outcome=\"rate_limited\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_checks_total{outcome=\"other\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_redis_errors_total{kind=\"ratelimit\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_key_cache_lookups_total{result=\"miss\"} 2\n"));
    free(t);
    metrics_close(m);
}

static void test_slots_sum_and_survive(void)
{
    make_dir();
    struct api_error err;
    struct metrics *a = metrics_open(dir, &err), *b = metrics_open(dir, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    metrics_request(a, 0, 200);
    metrics_request(b, 0, 200);
    metrics_request(b, 0, 200);
    char *t = metrics_render(a, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "{route=\"GET /a\",status=\"200\"} 3\n"));
    free(t);
    /* A process that goes away leaves its slot (and counts) to the next. */
    metrics_close(b);
    struct metrics *c = metrics_open(dir, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    metrics_request(c, 0, 200);
    t = metrics_render(c, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "{route=\"GET /a\",status=\"200\"} 4\n"));
    free(t);
    char path[256];
    snprintf(path, sizeof path, "%s/slot-002", dir);
    CU_ASSERT(access(path, F_OK) != 0); /* the freed slot was reused */
    metrics_close(a);
    metrics_close(c);
    remove_dir();
}

/* Gauges are the latest value per process and summed over processes;
 * counters add up. */
static void test_usage_metrics(void)
{
    make_dir();
    struct api_error err;
    struct metrics *a = metrics_open(dir, &err), *b = metrics_open(dir, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    metrics_usage_journal(a, 100, 1000, 2);
    metrics_usage_journal(a, 40, 1000, 1); /* backlog replaced, drops added */
    metrics_usage_journal(b, 5, 500, 0);
    metrics_usage_broker(a, true);
    metrics_usage_broker(b, true);
    metrics_usage_broker(b, false);
    metrics_usage_batch(a, 7);
    metrics_usage_batch(b, 3);
    char *t = metrics_render(a, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_usage_journal_backlog 45\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_usage_journal_capacity 1500\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_usage_dropped_total 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_usage_publishers_connected 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_usage_batches_total 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_usage_buckets_total 10\n"));
    free(t);
    metrics_close(a);
    metrics_close(b);
    remove_dir();
}

/* A process that ended: its gauges leave the totals, its counters stay, and
 * the process that takes its slot continues them. */
static void test_dead_slot(void)
{
    make_dir();
    struct api_error err;
    struct metrics *a = metrics_open(dir, &err), *b = metrics_open(dir, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    metrics_usage_journal(a, 1, 100, 0);
    metrics_usage_journal(b, 5, 500, 4);
    metrics_usage_broker(a, true);
    metrics_usage_broker(b, true);
    metrics_request(b, 1, 200);
    metrics_cache_evictions(b, 6);
    char *t = metrics_render(a, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_usage_publishers_connected 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_usage_journal_backlog 6\n"));
    free(t);
    metrics_close(b); /* its lock is released as by any exit, SIGKILL included */
    t = metrics_render(a, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_usage_publishers_connected 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_usage_journal_backlog 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_usage_journal_capacity 100\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_usage_dropped_total 4\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "{route=\"POST /v1/check\",status=\"200\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_key_cache_evictions_total 6\n"));
    free(t);
    /* The next process takes the dead slot: a fresh cache's own count of
     * evictions adds to what the slot held. */
    struct metrics *c = metrics_open(dir, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    metrics_cache_evictions(c, 2);
    metrics_request(c, 1, 200);
    t = metrics_render(c, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_key_cache_evictions_total 8\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "{route=\"POST /v1/check\",status=\"200\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_usage_publishers_connected 1\n"));
    free(t);
    metrics_close(a);
    metrics_close(c);
    remove_dir();
}

static double value(const char *text, const char *name)
{
    const char *p = strstr(text, name);
    return p ? strtod(p + strlen(name), NULL) : -1;
}

/* Build information, and process figures summed over the running processes
 * (CPU over every process that had a slot). */
static void test_process_metrics(void)
{
    make_dir();
    struct api_error err;
    struct metrics *a = metrics_open(dir, &err), *b = metrics_open(dir, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    char *t = metrics_render(a, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_build_info{version=\"" PACKAGE_VERSION "\",commit=\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "# TYPE process_cpu_seconds_total counter\n"));
    CU_ASSERT_EQUAL(value(t, "\ntollgate_processes "), 2);
    double fds2 = value(t, "\nprocess_open_fds "), rss2 = value(t, "\nprocess_resident_memory_bytes ");
    double start = value(t, "\nprocess_start_time_seconds ");
    CU_ASSERT(fds2 >= 6); /* the same process twice: 3 or more each */
    CU_ASSERT(rss2 > 0);
    CU_ASSERT(start > (double)time(NULL) - 3600 && start <= (double)time(NULL) + 1);
    free(t);
    /* Burn some CPU, then let b end: its figures leave the gauges. */
    volatile uint64_t x = 0;
    for (uint64_t i = 0; i < 200000000u; i++)
        x += i;
    metrics_process(b, INT64_MAX); /* past any rate limit */
    metrics_close(b);
    t = metrics_render(a, names, 2);
    CU_ASSERT_EQUAL(value(t, "\ntollgate_processes "), 1);
    CU_ASSERT(value(t, "\nprocess_open_fds ") < fds2);
    CU_ASSERT(value(t, "\nprocess_resident_memory_bytes ") < rss2);
    double cpu = value(t, "\nprocess_cpu_seconds_total ");
    CU_ASSERT(cpu >= 0.01); /* b's share is kept */
    free(t);
    /* A process that takes b's slot continues from b's CPU time. */
    struct metrics *c = metrics_open(dir, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    t = metrics_render(c, names, 2);
    CU_ASSERT(value(t, "\nprocess_cpu_seconds_total ") >= cpu);
    free(t);
    metrics_close(a);
    metrics_close(c);
    remove_dir();
}

static void test_bad_dir(void)
{
    struct api_error err;
    memset(&err, 0, sizeof err);
    CU_ASSERT_PTR_NULL(metrics_open("/proc/no/such/dir", &err));
    CU_ASSERT(strstr(err.message, "metrics_dir") != NULL);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_local_counters),
        UNIT_TEST(test_slots_sum_and_survive),
        UNIT_TEST(test_usage_metrics),
        UNIT_TEST(test_dead_slot),
        UNIT_TEST(test_process_metrics),
        UNIT_TEST(test_bad_dir),
    };
    return unit_run("metrics", tests, TG_ARRAY_LEN(tests));
}
