/*
 * itest_alerts.c - alert rules firing and their delivery to a receiver of
 * the suite's own (itest_hook.h): signature, cooldown, retries, the time from the
 * triggering check to the webhook's arrival, and the delivery figures of
 * GET /metrics (billingd's slot, shared with the responders).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "itest_fixture.h"
#include "itest_hook.h"
#include "itest_suites.h"

#define LATENCY_ALERTS 100
/* Rounding of the times compared with a webhook's ts (ms precision on both
 * sides, Redis and the suite on one clock). */
#define NEAR_SLACK_MS 5

static int port;
static char owner[128];
static struct itest_key key;	/* per_second 1: the second check in a second is denied */
static char secret[64];
static const char *const ONE_PER_SECOND =
	"\"limits\":[{\"name\":\"per_second\",\"window_s\":1,\"limit\":1}]";

/* The delivery figures of GET /metrics. */
struct deliveries {
	double delivered, retry, failed, count, running, messages, pending, oldest_age;
};

/* The value of the series named exactly by series (name and labels); -1
 * when absent. */
static double series(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (strncmp(l, series, n) == 0 && l[n] == ' ')
			return strtod(l + n + 1, NULL);
	return -1;
}

/* 1 when GET /metrics answered with every series of d (no assertion: the
 * suite's set-up takes one too). */
static int scrape(struct deliveries *d)
{
	struct itest_resp r;
	itest_metrics(&r);
	int ok = r.status == 200 && r.body;
	if (ok) {
		d->delivered = series(r.body, "tollgate_alert_delivery_attempts_total{result=\"delivered\"}");
		d->retry = series(r.body, "tollgate_alert_delivery_attempts_total{result=\"retry\"}");
		d->failed = series(r.body, "tollgate_alert_delivery_attempts_total{result=\"failed\"}");
		d->count = series(r.body, "tollgate_alert_delivery_duration_seconds_count");
		d->running = series(r.body, "tollgate_billingd_running");
		d->messages = series(r.body, "tollgate_billingd_messages_total");
		d->pending = series(r.body, "tollgate_alert_events_pending");
		d->oldest_age = series(r.body, "tollgate_alert_oldest_pending_age_seconds");
		ok = d->delivered >= 0 && d->retry >= 0 && d->failed >= 0 && d->count >= 0 &&
		     d->running >= 0 && d->messages >= 0 && d->pending >= 0 && d->oldest_age >= 0;
	}
	itest_resp_fini(&r);
	return ok;
}

static struct deliveries before;
static int have_before;

static int suite_init(void)
{
	have_before = scrape(&before);
	if (!itest_big_tier() || (port = hook_start()) < 0)
		return -1;
	snprintf(owner, sizeof owner, "acct_it%s_alerts", itest_suffix());
	snprintf(secret, sizeof secret, "whsec_%s_0123456789abcdef", itest_suffix());
	itest_record_secret(secret);
	return itest_key_create(&key, owner, itest_big_tier(), ONE_PER_SECOND, NULL);
}

static int suite_clean(void)
{
	hook_stop();
	return 0;
}

/* POST /v1/alerts of a rule scoped by scope ("\"key_id\":\"...\""). */
static void create_rule(struct itest_resp *r, const char *token, const char *scope,
			const char *metric, long threshold, const char *url, const char *extra)
{
	hook_rule_create(r, token, scope, metric, threshold, url, secret, extra);
}

static void hook_url(char *out, size_t n, const char *path)
{
	snprintf(out, n, "http://127.0.0.1:%d%s", port, path);
}

/* The wall clock in ms: what a webhook's ts is compared with. */
static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An API time ("2026-12-04T01:02:03.456Z") in Unix ms, -1 if malformed. */
static int64_t time_ms(const char *s)
{
	struct tm tm;
	int ms = 0;

	memset(&tm, 0, sizeof tm);
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

/* Checks key until at least `denials` were denied; returns the time of the
 * first denial (itest_now_ms), -1 on failure.  sent and answered (NULL or
 * both given) receive the wall times at which each of the first `denials`
 * denied checks was sent and answered. */
static int64_t deny_at(const struct itest_key *k, int denials, int64_t *sent, int64_t *answered)
{
	int64_t first = -1;
	for (int i = 0, d = 0; i < 10 * denials + 10 && d < denials; i++) {
		struct itest_resp r;
		int64_t at = wall_ms();
		itest_check(&r, itest_admin_token(), k->key);
		if (r.status == 429) {
			if (first < 0)
				first = itest_now_ms();
			if (sent) {
				sent[d] = at;
				answered[d] = wall_ms();
			}
			d++;
		}
		itest_resp_fini(&r);
	}
	return first;
}

static int64_t deny(const struct itest_key *k, int denials)
{
	return deny_at(k, denials, NULL, NULL);
}

static int verify_signature(const struct hook_hit *h)
{
	unsigned char mac[32];
	unsigned int n = sizeof mac;
	char hex[80] = "sha256=";
	HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)h->body,
	     strlen(h->body), mac, &n);
	for (unsigned i = 0; i < n; i++)
		snprintf(hex + 7 + 2 * i, 3, "%02x", mac[i]);
	return strcmp(hex, h->signature) == 0;
}

static void test_rate_limited_once(void)
{
	struct itest_resp r;
	char scope[256], url[256], path[64], id[128];
	snprintf(path, sizeof path, "/rl-%s", itest_suffix());
	snprintf(scope, sizeof scope, "\"key_id\":%s", itest_q(key.id));
	hook_url(url, sizeof url, path);
	create_rule(&r, itest_admin_token(), scope, "rate_limited", 3, url, NULL);
	if (!EXPECT_STATUS(&r, 201)) {
		itest_resp_fini(&r);
		return;
	}
	snprintf(id, sizeof id, "%s", itest_str(r.json, "id"));
	itest_resp_fini(&r);
	int64_t sent[4] = { 0 }, answered[4] = { 0 };
	EXPECT(deny_at(&key, 4, sent, answered) >= 0, "denials");
	EXPECT(hook_wait(path, 1, 15000) == 1, "one webhook within 15 s");
	/* More denials in the cooldown: no second delivery. */
	deny(&key, 4);
	itest_sleep_ms(3000);
	struct hook_hit h[4];
	size_t n = hook_hits(path, h, 4);
	EXPECT(n == 1, "exactly one delivery per cooldown, got %zu", n);
	if (n >= 1) {
		EXPECT(verify_signature(&h[0]), "valid signature %s", h[0].signature);
		json_object *b = json_tokener_parse(h[0].body);
		int64_t v = 0, t = 0;
		EXPECT(b && strcmp(itest_str(b, "alert_id"), id) == 0, "alert_id: %s", h[0].body);
		EXPECT(b && strcmp(itest_str(b, "metric"), "rate_limited") == 0, "metric");
		EXPECT(b && strcmp(itest_str(b, "key_id"), key.id) == 0, "key_id");
		EXPECT(b && strcmp(itest_str(b, "owner_id"), owner) == 0, "owner_id");
		EXPECT(b && itest_int(b, "value", &v) && v >= 3, "value >= 3");
		EXPECT(b && itest_int(b, "threshold", &t) && t == 3, "threshold");
		EXPECT(b && itest_str(b, "event_id") && itest_is_time(itest_str(b, "ts")),
		       "event_id and ts");
		/* ts: the third denial's, the one that reached the threshold (its
		 * minute may hold a denial from before: then an earlier one). */
		int64_t ts = b ? time_ms(itest_str(b, "ts")) : -1;
		EXPECT(ts >= sent[0] - 1000 && ts <= sent[2] + 1000,
		       "ts %lld within 1 s of the triggering denial sent at %lld (first at %lld)",
		       (long long)ts, (long long)sent[2], (long long)sent[0]);
		/* A check's own time, not billingd's: Redis on this machine timed
		 * the denials before their answers came back; the 3rd one's time
		 * may be interpolated up to the batch's last denial (NEAR_SLACK_MS
		 * for rounding). */
		EXPECT(ts >= sent[0] - NEAR_SLACK_MS && ts <= answered[3] + NEAR_SLACK_MS,
		       "ts %lld between the first denial sent (%lld) and the last answered (%lld)",
		       (long long)ts, (long long)sent[0], (long long)answered[3]);
		printf("\n    rate_limited ts - 3rd denial sent: %lld ms\n",
		       (long long)(ts - sent[2]));
		json_object_put(b);
	}
	hook_hits_free(h, n);
}

/* limit_near at 80 % of a window of 10 per minute: the 8th check fires it,
 * once per cooldown, with the 8th check's time as ts. */
static void test_limit_near(void)
{
	struct itest_resp r;
	struct itest_key k;
	char scope[256], url[256], path[64], id[128];
	if (itest_key_create(&k, owner, itest_big_tier(),
			     "\"limits\":[{\"name\":\"per_minute\",\"window_s\":60,\"limit\":10}]",
			     NULL) != 0)
		return;
	snprintf(path, sizeof path, "/near-%s", itest_suffix());
	snprintf(scope, sizeof scope, "\"key_id\":%s", itest_q(k.id));
	hook_url(url, sizeof url, path);
	create_rule(&r, itest_admin_token(), scope, "limit_near", 80, url, NULL);
	int ok = EXPECT_STATUS(&r, 201);
	snprintf(id, sizeof id, "%s", ok ? itest_str(r.json, "id") : "");
	itest_resp_fini(&r);
	if (!ok)
		return;
	for (int i = 0; i < 7; i++) {
		itest_check(&r, itest_admin_token(), k.key);
		EXPECT_STATUS(&r, 200);
		itest_resp_fini(&r);
	}
	EXPECT(hook_wait(path, 1, 3000) == 0, "no webhook at 70 %% within 3 s");
	int64_t sent = wall_ms();
	itest_check(&r, itest_admin_token(), k.key);
	int64_t answered = wall_ms();
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	EXPECT(hook_wait(path, 1, 15000) == 1, "one webhook at 80 %% within 15 s");
	/* More use in the cooldown (90 %, 100 %, then denied): nothing more. */
	for (int i = 0; i < 3; i++) {
		itest_check(&r, itest_admin_token(), k.key);
		itest_resp_fini(&r);
	}
	itest_sleep_ms(2000);
	struct hook_hit h[4];
	size_t n = hook_hits(path, h, 4);
	EXPECT(n == 1, "exactly one limit_near event per cooldown, got %zu", n);
	if (n >= 1) {
		json_object *b = json_tokener_parse(h[0].body);
		int64_t v = 0, t = 0;
		EXPECT(verify_signature(&h[0]), "valid signature %s", h[0].signature);
		EXPECT(b && strcmp(itest_str(b, "alert_id"), id) == 0, "alert_id: %s", h[0].body);
		EXPECT(b && strcmp(itest_str(b, "metric"), "limit_near") == 0, "metric");
		EXPECT(b && strcmp(itest_str(b, "key_id"), k.id) == 0, "key_id");
		EXPECT(b && itest_int(b, "value", &v) && v >= 80 && v <= 100, "value %lld %%",
		       (long long)v);
		EXPECT(b && itest_int(b, "threshold", &t) && t == 80, "threshold");
		int64_t ts = b ? time_ms(itest_str(b, "ts")) : -1;
		EXPECT(ts >= sent - 1000 && ts <= sent + 1000,
		       "ts %lld within 1 s of the 8th check sent at %lld", (long long)ts,
		       (long long)sent);
		EXPECT(ts >= sent - NEAR_SLACK_MS && ts <= answered + NEAR_SLACK_MS,
		       "ts %lld is the 8th check's own (sent %lld, answered %lld)", (long long)ts,
		       (long long)sent, (long long)answered);
		printf("\n    limit_near ts - 8th check sent: %lld ms (answered after %lld ms)\n",
		       (long long)(ts - sent), (long long)(answered - sent));
		json_object_put(b);
	}
	hook_hits_free(h, n);
}

static void test_retries(void)
{
	struct itest_resp r;
	struct itest_key k;
	char scope[256], url[256], path[64], id[128], dpath[256];
	if (itest_key_create(&k, owner, itest_big_tier(), ONE_PER_SECOND, NULL) != 0)
		return;
	snprintf(path, sizeof path, "/fail2-%s", itest_suffix());
	snprintf(scope, sizeof scope, "\"key_id\":%s", itest_q(k.id));
	hook_url(url, sizeof url, path);
	create_rule(&r, itest_admin_token(), scope, "rate_limited", 1, url, NULL);
	if (!EXPECT_STATUS(&r, 201)) {
		itest_resp_fini(&r);
		return;
	}
	snprintf(id, sizeof id, "%s", itest_str(r.json, "id"));
	itest_resp_fini(&r);
	EXPECT(deny(&k, 1) >= 0, "a denial");
	EXPECT(hook_wait(path, 3, 20000) == 3, "three attempts within 20 s");
	itest_sleep_ms(300); /* the third attempt's record */
	struct hook_hit h[4];
	size_t n = hook_hits(path, h, 4);
	for (size_t i = 1; i < n; i++) {
		json_object *a = json_tokener_parse(h[0].body), *b = json_tokener_parse(h[i].body);
		EXPECT(a && b && strcmp(itest_str(a, "event_id"), itest_str(b, "event_id")) == 0,
		       "same event_id on every attempt");
		EXPECT(strcmp(h[0].body, h[i].body) == 0, "same body on every attempt");
		EXPECT(h[i].at_ms - h[i - 1].at_ms >= 400, "backoff between attempts: %lld ms",
		       (long long)(h[i].at_ms - h[i - 1].at_ms));
		json_object_put(a);
		json_object_put(b);
	}
	hook_hits_free(h, n);
	snprintf(dpath, sizeof dpath, "/v1/alerts/%s/deliveries", id);
	itest_call(&r, "GET", dpath, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	json_object *d = itest_get(r.json, "data");
	EXPECT(itest_len(d) == 3, "3 attempts recorded: %s", r.body);
	static const int64_t want[] = { 500, 500, 200 };
	for (size_t i = 0; i < itest_len(d) && i < 3; i++) {
		json_object *a = itest_idx(d, i);
		int64_t st = 0, lat = -1;
		EXPECT(itest_int(a, "status", &st) && st == want[i], "attempt %zu status %lld", i,
		       (long long)st);
		EXPECT(itest_int(a, "latency_ms", &lat) && lat >= 0, "latency_ms");
		EXPECT(itest_is_time(itest_str(a, "at")), "at");
		EXPECT(strcmp(itest_str(a, "event_id"), itest_str(itest_idx(d, 0), "event_id")) == 0,
		       "one event_id");
		EXPECT(strcmp(itest_str(a, "event_state"), "delivered") == 0, "delivered");
	}
	itest_resp_fini(&r);
}

/* quota_used_pct: a tier with a quota of 10; 6 allowed checks cross 50 %
 * once, and more use in the same month fires nothing more. */
static void test_quota_used(void)
{
	struct itest_resp r;
	struct itest_key k;
	char tier[64], body[512], scope[256], url[256], path[64];
	snprintf(tier, sizeof tier, "alq%s", itest_suffix());
	snprintf(body, sizeof body,
		 "{\"name\":%s,\"limits\":[{\"name\":\"per_second\",\"window_s\":1,"
		 "\"limit\":1000}],\"quota\":{\"period\":\"month\",\"included\":10,"
		 "\"overage\":\"bill\"}}", itest_q(tier));
	itest_call(&r, "POST", "/v1/tiers", itest_admin_token(), body);
	int ok = EXPECT_STATUS(&r, 201);
	itest_resp_fini(&r);
	if (!ok || itest_key_create(&k, owner, tier, NULL, NULL) != 0)
		return;
	snprintf(path, sizeof path, "/quota-%s", itest_suffix());
	snprintf(scope, sizeof scope, "\"key_id\":%s", itest_q(k.id));
	hook_url(url, sizeof url, path);
	create_rule(&r, itest_admin_token(), scope, "quota_used_pct", 50, url, NULL);
	ok = EXPECT_STATUS(&r, 201);
	itest_resp_fini(&r);
	if (!ok)
		return;
	int64_t sent[6], answered[6];
	for (int i = 0; i < 6; i++) {
		sent[i] = wall_ms();
		itest_check(&r, itest_admin_token(), k.key);
		answered[i] = wall_ms();
		EXPECT_STATUS(&r, 200);
		itest_resp_fini(&r);
	}
	EXPECT(hook_wait(path, 1, 15000) == 1, "one quota alert within 15 s");
	for (int i = 0; i < 3; i++) {
		itest_check(&r, itest_admin_token(), k.key);
		itest_resp_fini(&r);
	}
	itest_sleep_ms(2000);
	struct hook_hit h[4];
	size_t n = hook_hits(path, h, 4);
	EXPECT(n == 1, "one quota alert per month, got %zu", n);
	if (n >= 1) {
		json_object *b = json_tokener_parse(h[0].body);
		int64_t v = 0;
		EXPECT(verify_signature(&h[0]), "valid signature");
		EXPECT(b && itest_int(b, "value", &v) && v >= 50 && v <= 100, "value %lld %%",
		       (long long)v);
		EXPECT(b && strcmp(itest_str(b, "metric"), "quota_used_pct") == 0, "metric");
		/* ts: the latest check of the batches that crossed 50 %: from the
		 * 5th (the crossing one) to the 6th. */
		int64_t ts = b ? time_ms(itest_str(b, "ts")) : -1;
		EXPECT(ts >= sent[4] - NEAR_SLACK_MS && ts <= answered[5] + NEAR_SLACK_MS,
		       "ts %lld between the 5th check sent (%lld) and the 6th answered (%lld)",
		       (long long)ts, (long long)sent[4], (long long)answered[5]);
		json_object_put(b);
	}
	hook_hits_free(h, n);
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* An owner-wide rule over LATENCY_ALERTS keys: each key's first denial
 * fires one alert; the time from that check to the webhook's arrival. */
static void test_latency(void)
{
	static struct itest_key keys[LATENCY_ALERTS];
	static int64_t denied_at[LATENCY_ALERTS], lat[LATENCY_ALERTS];
	char lowner[160], scope[256], url[256], path[64];
	struct itest_resp r;
	snprintf(lowner, sizeof lowner, "%s_lat", owner);
	for (int i = 0; i < LATENCY_ALERTS; i++)
		if (itest_key_create(&keys[i], lowner, itest_big_tier(), ONE_PER_SECOND, NULL) != 0)
			return;
	snprintf(path, sizeof path, "/lat-%s", itest_suffix());
	snprintf(scope, sizeof scope, "\"owner_id\":%s", itest_q(lowner));
	hook_url(url, sizeof url, path);
	create_rule(&r, itest_admin_token(), scope, "rate_limited", 1, url, NULL);
	int ok = EXPECT_STATUS(&r, 201);
	itest_resp_fini(&r);
	if (!ok)
		return;
	for (int i = 0; i < LATENCY_ALERTS; i++)
		denied_at[i] = deny(&keys[i], 1);
	size_t got = hook_wait(path, LATENCY_ALERTS, 40000);
	EXPECT(got == LATENCY_ALERTS, "%d alerts arrived, got %zu", LATENCY_ALERTS, got);
	static struct hook_hit h[LATENCY_ALERTS + 8];
	size_t n = hook_hits(path, h, LATENCY_ALERTS + 8), m = 0;
	for (int i = 0; i < LATENCY_ALERTS; i++) {
		for (size_t j = 0; j < n; j++) {
			json_object *b = json_tokener_parse(h[j].body);
			int match = b && strcmp(itest_str(b, "key_id"), keys[i].id) == 0;
			json_object_put(b);
			if (match && denied_at[i] >= 0) {
				lat[m++] = h[j].at_ms - denied_at[i];
				break;
			}
		}
	}
	hook_hits_free(h, n);
	EXPECT(n == LATENCY_ALERTS, "one alert per key: %zu", n);
	if (m == 0)
		return;
	qsort(lat, m, sizeof lat[0], cmp64);
	int64_t p50 = lat[m / 2], p99 = lat[(m * 99 + 99) / 100 - 1], max = lat[m - 1];
	printf("\n    alert latency over %zu alerts (check to webhook): p50 %lld ms, p99 %lld ms, "
	       "max %lld ms\n", m, (long long)p50, (long long)p99, (long long)max);
	EXPECT(p99 < 5000, "p99 %lld ms < 5 s", (long long)p99);
	EXPECT(max < 30000, "max %lld ms < 30 s", (long long)max);
}

/* After the deliveries above, GET /metrics (answered by a responder, which
 * reads billingd's slot in the shared metrics_dir, under every web server of
 * the suite) shows billingd running and the attempts: at least the latency
 * test's deliveries and the retry test's two retries, each with its latency
 * in the histogram. */
static void test_delivery_metrics(void)
{
	struct deliveries d = {0};
	int right = 0;
	if (!EXPECT(have_before, "GET /metrics before the suite lacked the delivery series"))
		return;
	/* The deliverer counts an attempt as it records it: poll until the last
	 * ones are in and the histogram agrees with the outcomes. */
	for (int64_t t0 = itest_now_ms(); !right && itest_now_ms() - t0 < 10000; itest_sleep_ms(200))
		right = scrape(&d) && d.delivered - before.delivered >= LATENCY_ALERTS + 1 &&
			d.retry - before.retry >= 2 && d.count == d.delivered + d.retry + d.failed &&
			d.messages > before.messages;
	EXPECT(right || scrape(&d), "GET /metrics lacks the delivery series");
	printf("\n    deliveries in /metrics: %.0f delivered, %.0f retry, %.0f failed (+%.0f, +%.0f, "
	       "+%.0f in this suite), histogram count %.0f, %.0f pending ",
	       d.delivered, d.retry, d.failed, d.delivered - before.delivered, d.retry - before.retry,
	       d.failed - before.failed, d.count, d.pending);
	EXPECT(d.running == 1, "tollgate_billingd_running %.0f, want 1", d.running);
	EXPECT(d.messages > before.messages, "tollgate_billingd_messages_total %.0f, was %.0f "
	       "before the suite's checks", d.messages, before.messages);
	EXPECT(d.delivered > 0 && d.delivered - before.delivered >= LATENCY_ALERTS + 1,
	       "delivered %.0f, was %.0f before the suite (want %d more at least)", d.delivered,
	       before.delivered, LATENCY_ALERTS + 1);
	EXPECT(d.retry - before.retry >= 2, "retry %.0f, was %.0f (the 500s of the retry test)",
	       d.retry, before.retry);
	EXPECT(d.count == d.delivered + d.retry + d.failed,
	       "histogram count %.0f, attempts %.0f + %.0f + %.0f", d.count, d.delivered, d.retry,
	       d.failed);
}

int itest_register_alerts(void)
{
	CU_pSuite s = CU_add_suite("alerts", suite_init, suite_clean);

	if (!s ||
	    !CU_add_test(s, "rate_limited: once per cooldown, signed", test_rate_limited_once) ||
	    !CU_add_test(s, "retries: 500, 500, 200 with one event_id", test_retries) ||
	    !CU_add_test(s, "quota_used_pct: once per month", test_quota_used) ||
	    !CU_add_test(s, "limit_near: the 8th of 10 fires once, ts of that check",
			 test_limit_near) ||
	    !CU_add_test(s, "latency of 100 alerts", test_latency) ||
	    !CU_add_test(s, "delivery figures in GET /metrics", test_delivery_metrics))
		return -1;
	return 0;
}
