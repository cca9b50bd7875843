/*
 * faults.c - tollgate-faults: the check path while Redis misbehaves, against
 * the real stack. It stops and starts the stack's Redis and restarts the
 * responder pool in each failure mode through contrib/stack, so it runs on
 * its own (contrib/stack test runs it after the other suites).
 *
 * Environment: as tollgate-itest, plus TOLLGATE_REDIS_PORT and TOLLGATE_STACK
 * (the path of contrib/stack).
 */
#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "itest_fixture.h"
#include "itest_http.h"

static const char *stack_cmd(void)
{
	const char *s = getenv("TOLLGATE_STACK");
	return s && *s ? s : "contrib/stack";
}

/* Runs "<env> contrib/stack <args>"; returns its exit status. */
static int stack(const char *env, const char *args)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "%s %s %s >/dev/null", env, stack_cmd(), args);
	int rc = system(cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static int redis_cli(const char *args)
{
	char cmd[512];
	const char *port = getenv("TOLLGATE_REDIS_PORT");
	snprintf(cmd, sizeof cmd, "redis-cli -h 127.0.0.1 -p %s %s >/dev/null 2>&1",
		 port ? port : "56379", args);
	int rc = system(cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* A key whose limits are never reached by these tests. */
static int make_key(struct itest_key *k)
{
	char owner[64];
	snprintf(owner, sizeof owner, "faults-%s", itest_suffix());
	return itest_key_create(k, owner, itest_big_tier(), NULL, NULL);
}

/* ---- SCRIPT FLUSH during a hammer ---- */

struct hammer {
	const char *key;
	int64_t until_ms;
	long ok, failed, last_failed_status;
};

static size_t discard(char *p, size_t s, size_t n, void *u)
{
	(void)p;
	(void)u;
	return s * n;
}

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	CURL *c = curl_easy_init();
	char url[512], auth[512], body[512];
	struct curl_slist *hdr = NULL;
	snprintf(url, sizeof url, "%s/v1/check", getenv("TOLLGATE_URL"));
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", itest_admin_token());
	snprintf(body, sizeof body, "{\"key\":\"%s\"}", h->key);
	hdr = curl_slist_append(hdr, auth);
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	while (itest_now_ms() < h->until_ms) {
		long status = 0;
		if (curl_easy_perform(c) == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (status == 200) {
			h->ok++;
		} else {
			h->failed++;
			h->last_failed_status = status;
		}
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	return NULL;
}

static void test_script_flush(void)
{
	enum { THREADS = 8 };
	struct itest_key k;
	if (make_key(&k) != 0)
		return;
	struct hammer h[THREADS];
	pthread_t t[THREADS];
	int64_t until = itest_now_ms() + 5000;
	for (int i = 0; i < THREADS; i++) {
		memset(&h[i], 0, sizeof h[i]);
		h[i].key = k.key;
		h[i].until_ms = until;
		pthread_create(&t[i], NULL, hammer_main, &h[i]);
	}
	int flushes = 0;
	while (itest_now_ms() < until - 200) {
		flushes += redis_cli("SCRIPT FLUSH") == 0;
		itest_sleep_ms(250);
	}
	long ok = 0, failed = 0, last = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		ok += h[i].ok;
		failed += h[i].failed;
		if (h[i].failed)
			last = h[i].last_failed_status;
	}
	EXPECT(flushes >= 10, "SCRIPT FLUSH ran only %d times", flushes);
	EXPECT(ok > 100, "only %ld checks succeeded", ok);
	EXPECT(failed == 0, "%ld checks failed during SCRIPT FLUSH (last status %ld)", failed, last);
}

/* ---- Redis stopped, in each failure mode ---- */

/* Checks once; returns the status and the time it took. */
static long timed_check(const char *key, int64_t *ms, struct itest_resp *r)
{
	int64_t t0 = itest_now_ms();
	itest_check(r, itest_admin_token(), key);
	*ms = itest_now_ms() - t0;
	return r->status;
}

/* Redis stops: every check gets `want` (503 or 200) quickly; Redis returns:
 * checks are counted again within 2 s, without restarting the pool. */
static void store_down(long want)
{
	struct itest_key k;
	struct itest_resp r;
	int64_t ms;
	if (make_key(&k) != 0)
		return;
	timed_check(k.key, &ms, &r);
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	EXPECT(stack("", "redis-stop") == 0, "contrib/stack redis-stop failed");
	int64_t worst = 0;
	int right = 0;
	for (int i = 0; i < 20; i++) {
		long st = timed_check(k.key, &ms, &r);
		if (ms > worst)
			worst = ms;
		if (st == want && (want != 503 || EXPECT_ERROR(&r, 503, "unavailable", NULL)))
			right++;
		if (want == 200)
			EXPECT(!itest_has(itest_idx(itest_get(r.json, "limits"), 0), "remaining"),
			       "an uncounted check shows no remaining");
		itest_resp_fini(&r);
	}
	EXPECT(right == 20, "%d of 20 checks answered %ld while Redis was down", right, want);
	/* Redis timeout 50 ms, plus the PostgreSQL re-read of the key. */
	EXPECT(worst < 500, "a check took %lld ms while Redis was down", (long long)worst);
	EXPECT(stack("", "redis-start") == 0, "contrib/stack redis-start failed");
	int64_t t0 = itest_now_ms(), back = -1;
	while (itest_now_ms() - t0 < 5000) {
		timed_check(k.key, &ms, &r);
		int counted = r.status == 200 &&
			      itest_has(itest_idx(itest_get(r.json, "limits"), 0), "remaining");
		itest_resp_fini(&r);
		if (counted) {
			back = itest_now_ms() - t0;
			break;
		}
		itest_sleep_ms(50);
	}
	EXPECT(back >= 0 && back < 2000, "checks were counted again after %lld ms", (long long)back);
}

static void test_down_closed(void)
{
	store_down(503);
}

static void test_down_open(void)
{
	EXPECT(stack("TOLLGATE_RATELIMIT_ON_STORE_ERROR=open", "restart-pool build") == 0,
	       "pool restart in open mode failed");
	store_down(200);
	struct itest_resp r;
	itest_call(&r, "GET", "/metrics", NULL, NULL);
	EXPECT(r.body && strstr(r.body, "tollgate_redis_errors_total{kind=\"ratelimit\"} 0") == NULL,
	       "the failures are counted in /metrics");
	itest_resp_fini(&r);
	EXPECT(stack("", "restart-pool build") == 0, "pool restart failed");
}

int main(void)
{
	if (itest_init() != 0)
		return 2;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	CU_pSuite s = CU_add_suite("faults", NULL, NULL);
	CU_add_test(s, "SCRIPT FLUSH during a hammer", test_script_flush);
	CU_add_test(s, "Redis down, closed mode", test_down_closed);
	CU_add_test(s, "Redis down, open mode", test_down_open);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	int rc = CU_get_number_of_failures() == 0 && CU_get_number_of_tests_failed() == 0 ? 0 : 1;
	CU_cleanup_registry();
	itest_fini();
	return rc;
}
