/* Unit tests of metrics_billing: billingd's and its alert deliverer's
 * figures in a slot of the shared directory, as the responders render them. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics_billing.h"
#include "unit.h"

static char dir[128];

static void make_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/tollgate-mbill-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
}

static void remove_dir(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CU_ASSERT(system(cmd) == 0);
}

static const char *const names[] = {"GET /a", "POST /v1/check"};

static double value(const char *text, const char *name)
{
    const char *p = strstr(text, name);
    return p ? strtod(p + strlen(name), NULL) : -1;
}

/* billingd's slot: counters summed, its last success kept after it ends,
 * the unacknowledged age only while it runs. */
static void test_billing_metrics(void)
{
    make_dir();
    struct api_error err;
    struct metrics *pool = metrics_open(dir, &err), *bd = metrics_open(dir, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bd);
    char *t = metrics_render(pool, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_billingd_running 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_billingd_oldest_unacked_age_seconds 0.000\n"));
    free(t);
    int64_t now = (int64_t)time(NULL) * 1000;
    metrics_billing_state(bd, now - 5000); /* a message waits since 5 s */
    metrics_billing_message(bd);
    metrics_billing_message(bd);
    metrics_billing_message(bd);
    metrics_billing_applied(bd, 2, 1, 40, 3, now - 60000);
    metrics_billing_error(bd, BILLING_ERR_POSTGRES);
    metrics_billing_error(bd, BILLING_ERR_REJECTED);
    t = metrics_render(pool, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_billingd_running 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_billingd_messages_total 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_billingd_batches_total{result=\"applied\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_billingd_batches_total{result=\"duplicate\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_billingd_rows_upserted_total 40\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_billingd_events_total 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_billingd_errors_total{kind=\"postgres\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_billingd_errors_total{kind=\"amqp\"} 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_billingd_errors_total{kind=\"rejected\"} 1\n"));
    double age = value(t, "\ntollgate_billingd_oldest_unacked_age_seconds ");
    CU_ASSERT(age >= 4 && age < 10);
    CU_ASSERT_DOUBLE_EQUAL(value(t, "\ntollgate_billingd_last_success_timestamp_seconds "),
                           (double)(now - 60000) / 1e3, 0.01);
    free(t);
    metrics_billing_state(bd, 0); /* committed: nothing waits */
    t = metrics_render(pool, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_billingd_oldest_unacked_age_seconds 0.000\n"));
    free(t);
    metrics_billing_state(bd, now - 5000);
    metrics_close(bd); /* ended: no longer running, no age, counters and last success kept */
    t = metrics_render(pool, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_billingd_running 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_billingd_oldest_unacked_age_seconds 0.000\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_billingd_messages_total 3\n"));
    CU_ASSERT_DOUBLE_EQUAL(value(t, "\ntollgate_billingd_last_success_timestamp_seconds "),
                           (double)(now - 60000) / 1e3, 0.01);
    free(t);
    metrics_close(pool);
    remove_dir();
}

/* Each attempt counted by outcome, and its latency in the histogram: the
 * histogram's count is the attempts' sum, whichever process renders. */
static void test_alert_attempts(void)
{
    make_dir();
    struct api_error err;
    struct metrics *pool = metrics_open(dir, &err), *bd = metrics_open(dir, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bd);
    char *t = metrics_render(pool, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_delivery_attempts_total{result=\"delivered\"} 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "# TYPE tollgate_alert_delivery_duration_seconds histogram\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_delivery_duration_seconds_count 0\n"));
    free(t);
    metrics_alert_attempt(bd, ALERT_ATTEMPT_DELIVERED, 3000);     /* 3 ms */
    metrics_alert_attempt(bd, ALERT_ATTEMPT_DELIVERED, 40000);    /* 40 ms */
    metrics_alert_attempt(bd, ALERT_ATTEMPT_RETRY, 5000000);      /* 5 s: on the bound */
    metrics_alert_attempt(bd, ALERT_ATTEMPT_FAILED, 60000000);    /* 60 s: +Inf */
    metrics_alert_attempt(bd, ALERT_ATTEMPT_FAILED, -5);          /* counts as 0 */
    metrics_alert_attempt(bd, ALERT_ATTEMPT_RESULTS, 1000);       /* not a result: ignored */
    metrics_alert_attempt(NULL, ALERT_ATTEMPT_DELIVERED, 1000);   /* no metrics: harmless */
    t = metrics_render(pool, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_delivery_attempts_total{result=\"delivered\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_delivery_attempts_total{result=\"retry\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_delivery_attempts_total{result=\"failed\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_delivery_duration_seconds_bucket{le=\"0.005\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_delivery_duration_seconds_bucket{le=\"0.025\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_delivery_duration_seconds_bucket{le=\"0.05\"} 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_delivery_duration_seconds_bucket{le=\"5\"} 4\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_delivery_duration_seconds_bucket{le=\"10\"} 4\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_delivery_duration_seconds_bucket{le=\"+Inf\"} 5\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_delivery_duration_seconds_count 5\n"));
    CU_ASSERT_DOUBLE_EQUAL(value(t, "\ntollgate_alert_delivery_duration_seconds_sum "), 65.043, 1e-6);
    free(t);
    /* billingd ends: counters stay, and the next process of its slot goes on. */
    metrics_close(bd);
    bd = metrics_open(dir, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bd);
    metrics_alert_attempt(bd, ALERT_ATTEMPT_DELIVERED, 1000);
    t = metrics_render(pool, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_delivery_attempts_total{result=\"delivered\"} 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_delivery_duration_seconds_count 6\n"));
    free(t);
    metrics_close(bd);
    metrics_close(pool);
    remove_dir();
}

/* The outbox gauges: unknown until read, of running billingd only, the
 * largest count and the oldest event when two billingd share the outbox. */
static void test_alert_outbox(void)
{
    make_dir();
    struct api_error err;
    struct metrics *pool = metrics_open(dir, &err), *a = metrics_open(dir, &err),
                   *b = metrics_open(dir, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    char *t = metrics_render(pool, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_events_pending 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_oldest_pending_age_seconds 0.000\n"));
    free(t);
    int64_t now = (int64_t)time(NULL) * 1000;
    metrics_alert_outbox(a, 3, now - 400000);
    metrics_alert_outbox(b, 4, now - 300000); /* read a moment later: one more */
    metrics_alert_outbox(NULL, 9, now);       /* no metrics: harmless */
    t = metrics_render(pool, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_events_pending 4\n"));
    double age = value(t, "\ntollgate_alert_oldest_pending_age_seconds ");
    CU_ASSERT(age >= 399 && age < 410);
    free(t);
    metrics_close(a); /* what a dead billingd saw leaves the gauges */
    t = metrics_render(pool, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_events_pending 4\n"));
    age = value(t, "\ntollgate_alert_oldest_pending_age_seconds ");
    CU_ASSERT(age >= 299 && age < 310);
    free(t);
    metrics_alert_outbox(b, 0, 0); /* all delivered */
    t = metrics_render(pool, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_events_pending 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_oldest_pending_age_seconds 0.000\n"));
    free(t);
    metrics_alert_outbox(b, 2, now - 1000);
    metrics_close(b);
    /* The next process of the slot starts with nothing known. */
    b = metrics_open(dir, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    t = metrics_render(pool, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_events_pending 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_oldest_pending_age_seconds 0.000\n"));
    free(t);
    metrics_close(b);
    metrics_close(pool);
    remove_dir();
}

/* Process-local figures (no directory) show them too. */
static void test_local(void)
{
    struct api_error err;
    struct metrics *m = metrics_open(NULL, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    metrics_alert_attempt(m, ALERT_ATTEMPT_RETRY, 100);
    metrics_alert_outbox(m, 1, (int64_t)time(NULL) * 1000 - 2000);
    char *t = metrics_render(m, names, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_delivery_attempts_total{result=\"retry\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "tollgate_alert_events_pending 1\n"));
    CU_ASSERT(value(t, "\ntollgate_alert_oldest_pending_age_seconds ") >= 1);
    free(t);
    metrics_close(m);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_billing_metrics),
        UNIT_TEST(test_alert_attempts),
        UNIT_TEST(test_alert_outbox),
        UNIT_TEST(test_local),
    };
    return unit_run("metrics_billing", tests, TG_ARRAY_LEN(tests));
}
