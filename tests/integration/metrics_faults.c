/*
 * metrics_faults.c - /metrics across process deaths, part of
 * tollgate-usage-faults (it drives pool-kill-one and restart-pool, so it runs
 * with the suites that restart the stack's processes).
 *
 * A responder killed with SIGKILL leaves its slot file behind: its gauges
 * (publishers connected, journal backlog and capacity) must leave the totals
 * at once, its counters must stay (no total goes down).  billingd writes its
 * own slot in the same directory: its figures follow the checks made, and
 * leave or stay the same way when it is killed.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "itest_fixture.h"
#include "itest_http.h"
#include "metrics_faults.h"

/* Runs "contrib/stack <args>"; its first line of output goes to out. */
static int stack_line(const char *args, char *out, size_t n)
{
	const char *s = getenv("TOLLGATE_STACK");
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "%s %s 2>&1", s && *s ? s : "contrib/stack", args);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	out[0] = '\0';
	if (fgets(out, (int)n, p))
		out[strcspn(out, "\n")] = '\0';
	char rest[512];
	while (fread(rest, 1, sizeof rest, p) > 0)
		;
	int rc = pclose(p);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* The value of the series that starts a line with prefix (name, or name{
 * labels}); -1 when absent.  With sum, the sum of every line it starts. */
static double series(const char *text, const char *prefix, int sum)
{
	double total = -1;
	size_t len = strlen(prefix);
	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (strncmp(l, prefix, len) != 0)
			continue;
		/* The value follows the line's last space (labels may hold spaces). */
		const char *end = strchr(l, '\n'), *v = end ? end : l + strlen(l);
		while (v > l && v[-1] != ' ')
			v--;
		double x = strtod(v, NULL);
		total = total < 0 ? x : total + x;
		if (!sum)
			break;
	}
	return total;
}

struct snapshot {
	double connected, capacity, requests;
	double bd_running, bd_messages, bd_applied, bd_rows, bd_last_ok, bd_unacked_age;
};

static int scrape(struct snapshot *s)
{
	struct itest_resp r;
	itest_metrics(&r);
	int ok = r.status == 200 && r.body;
	if (ok) {
		s->connected = series(r.body, "tollgate_usage_publishers_connected ", 0);
		s->capacity = series(r.body, "tollgate_usage_journal_capacity ", 0);
		s->requests = series(r.body, "tollgate_requests_total{", 1);
		s->bd_running = series(r.body, "tollgate_billingd_running ", 0);
		s->bd_messages = series(r.body, "tollgate_billingd_messages_total ", 0);
		s->bd_applied = series(r.body, "tollgate_billingd_batches_total{result=\"applied\"} ", 0);
		s->bd_rows = series(r.body, "tollgate_billingd_rows_upserted_total ", 0);
		s->bd_last_ok = series(r.body, "tollgate_billingd_last_success_timestamp_seconds ", 0);
		s->bd_unacked_age = series(r.body, "tollgate_billingd_oldest_unacked_age_seconds ", 0);
	} else {
		printf("\n    (%s: %ld) ", r.what, r.status);
	}
	itest_resp_fini(&r);
	return ok ? 0 : -1;
}

static void test_stale_gauges(void)
{
	struct snapshot before = {0}, after = {0}, again = {0};
	char pid[64];
	/* Every process connected (after the suite's broker faults, a publisher
	 * may still be waiting out its backoff): the same figure twice, 1 s apart. */
	double last = -1;
	for (int64_t t0 = itest_now_ms(); itest_now_ms() - t0 < 30000; itest_sleep_ms(1000)) {
		if (scrape(&before) != 0)
			continue;
		if (before.connected >= 2 && before.connected == last)
			break;
		last = before.connected;
	}
	if (!EXPECT(before.connected >= 2 && before.connected == last,
		    "publishers connected: %.0f, then %.0f", last, before.connected))
		return;
	double per_process = before.capacity / before.connected;
	int rc = stack_line("pool-kill-one", pid, sizeof pid);
	if (!EXPECT(rc == 0, "contrib/stack pool-kill-one failed: %s", pid))
		return;
	/* The lock of the dead process is gone with it: the next scrape shows it. */
	int right = 0;
	for (int64_t t0 = itest_now_ms(); !right && itest_now_ms() - t0 < 5000; itest_sleep_ms(100))
		right = scrape(&after) == 0 && after.connected == before.connected - 1 &&
			after.capacity == before.capacity - per_process;
	printf("\n    (responder %s killed: publishers %.0f -> %.0f, capacity %.0f -> %.0f, "
	       "requests %.0f -> %.0f) ",
	       pid, before.connected, after.connected, before.capacity, after.capacity,
	       before.requests, after.requests);
	EXPECT(right, "the killed process's gauges are still counted");
	EXPECT(after.requests >= before.requests, "tollgate_requests_total went down");
	EXPECT(stack_line("restart-pool", pid, sizeof pid) == 0, "contrib/stack restart-pool failed");
	right = 0;
	for (int64_t t0 = itest_now_ms(); !right && itest_now_ms() - t0 < 15000; itest_sleep_ms(200))
		right = scrape(&again) == 0 && again.connected == before.connected &&
			again.requests >= after.requests;
	EXPECT(right, "after restart-pool: publishers %.0f (want %.0f), requests %.0f (were %.0f)",
	       again.connected, before.connected, again.requests, after.requests);
}

/* Checks made now reach billingd within seconds: its counters grow and its
 * last success is recent.  Killed, it leaves tollgate_billingd_running; its
 * counters stay. */
static void test_billingd_figures(void)
{
	struct snapshot s0 = {0}, s1 = {0}, s2 = {0};
	struct itest_key k;
	struct itest_resp r;
	char owner[64], out[256];
	if (!EXPECT(scrape(&s0) == 0, "GET /metrics failed"))
		return;
	EXPECT(s0.bd_running == 1, "tollgate_billingd_running %.0f, want 1", s0.bd_running);
	snprintf(owner, sizeof owner, "metrics-%s", itest_suffix());
	if (itest_key_create(&k, owner, itest_big_tier(), NULL, NULL) != 0)
		return;
	double t_start = (double)time(NULL);
	for (int i = 0; i < 5; i++) {
		itest_check(&r, itest_admin_token(), k.key);
		EXPECT_STATUS(&r, 200);
		itest_resp_fini(&r);
	}
	int right = 0;
	for (int64_t t0 = itest_now_ms(); !right && itest_now_ms() - t0 < 20000; itest_sleep_ms(250))
		right = scrape(&s1) == 0 && s1.bd_messages > s0.bd_messages &&
			s1.bd_applied > s0.bd_applied && s1.bd_rows > s0.bd_rows &&
			s1.bd_last_ok >= t_start - 1;
	printf("\n    (billingd: messages %.0f -> %.0f, batches %.0f -> %.0f, rows %.0f -> %.0f, "
	       "last success %.0f s after the checks, oldest unacked %.1f s) ",
	       s0.bd_messages, s1.bd_messages, s0.bd_applied, s1.bd_applied, s0.bd_rows, s1.bd_rows,
	       s1.bd_last_ok - t_start, s1.bd_unacked_age);
	EXPECT(right, "billingd's counters did not follow the checks within 20 s");
	EXPECT(s1.bd_unacked_age >= 0 && s1.bd_unacked_age < 30, "oldest unacked age %.1f s",
	       s1.bd_unacked_age);
	if (!EXPECT(stack_line("billingd-kill", out, sizeof out) == 0, "billingd-kill failed: %s", out))
		return;
	right = 0;
	for (int64_t t0 = itest_now_ms(); !right && itest_now_ms() - t0 < 5000; itest_sleep_ms(100))
		right = scrape(&s2) == 0 && s2.bd_running == 0;
	EXPECT(right, "tollgate_billingd_running %.0f after billingd was killed", s2.bd_running);
	EXPECT(s2.bd_messages >= s1.bd_messages && s2.bd_rows >= s1.bd_rows &&
		       s2.bd_last_ok >= s1.bd_last_ok,
	       "billingd's counters went down when it was killed");
	EXPECT(stack_line("billingd-start", out, sizeof out) == 0, "billingd-start failed: %s", out);
	right = 0;
	for (int64_t t0 = itest_now_ms(); !right && itest_now_ms() - t0 < 15000; itest_sleep_ms(200))
		right = scrape(&s2) == 0 && s2.bd_running == 1;
	EXPECT(right, "tollgate_billingd_running %.0f after billingd-start", s2.bd_running);
}

void metrics_faults_add(CU_pSuite s)
{
	CU_add_test(s, "billingd's figures in /metrics", test_billingd_figures);
	CU_add_test(s, "a killed responder's gauges leave /metrics, its counters stay",
		    test_stale_gauges);
}
