/*
 * metrics_faults.c - /metrics across process deaths, part of
 * tollgate-usage-faults (it drives pool-kill-one and restart-pool, so it runs
 * with the suites that restart the stack's processes).
 *
 * A responder killed with SIGKILL leaves its slot file behind: its gauges
 * (publishers connected, journal backlog and capacity) must leave the totals
 * at once, its counters must stay (no total goes down).
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

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

void metrics_faults_add(CU_pSuite s)
{
	CU_add_test(s, "a killed responder's gauges leave /metrics, its counters stay",
		    test_stale_gauges);
}
