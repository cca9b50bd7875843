/*
 * itest_analytics.c - usage analytics (GET /v1/analytics/top-keys,
 * /v1/analytics/top-owners, /v1/analytics/tiers).
 *
 * The end-to-end test makes checks through POST /v1/check on keys of two
 * tiers created for this run, waits (bounded) until tollgate-billingd has
 * recorded them, then reads rankings and tier totals filtered to those
 * tiers, so that usage of other suites in the same hours cannot interfere.
 * Validation, roles and empty ranges are checked case by case.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>

#include "itest_fixture.h"
#include "itest_suites.h"

#define HOUR_MS INT64_C(3600000)
#define DAY_MS (24 * HOUR_MS)
#define APPEAR_POLL_MS 100
#define APPEAR_BOUND_MS 15000

static struct itest_token service, viewer, billing, operator_tok;
static char tier1[40], tier2[40];

static int tier_create(char *name, size_t n, const char *tag)
{
	struct itest_resp r;
	char body[512];
	int ok;

	snprintf(name, n, "it%s-an%s", itest_suffix(), tag);
	snprintf(body, sizeof body,
		 "{\"name\":%s,\"limits\":[{\"name\":\"per_second\",\"window_s\":1,"
		 "\"limit\":1000000000}]}", itest_q(name));
	itest_call(&r, "POST", "/v1/tiers", itest_admin_token(), body);
	ok = EXPECT_STATUS(&r, 201);
	itest_resp_fini(&r);
	return ok ? 0 : -1;
}

static int suite_init(void)
{
	if (itest_token_create(&service, "service") != 0 ||
	    itest_token_create(&viewer, "viewer") != 0 ||
	    itest_token_create(&billing, "billing") != 0 ||
	    itest_token_create(&operator_tok, "operator") != 0)
		return -1;
	return tier_create(tier1, sizeof tier1, "1") || tier_create(tier2, sizeof tier2, "2");
}

static int suite_clean(void)
{
	struct itest_token *t[] = { &service, &viewer, &billing, &operator_tok };
	size_t i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++)
		if (t[i]->id[0])
			itest_token_revoke(t[i]);
	return 0;
}

/* The wall clock (itest_now_ms is monotonic: for durations only). */
static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RFC 3339 UTC of ms (whole seconds). */
static void fmt_ms(char *buf, size_t n, int64_t ms)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* "from=...&to=..." for [from, to). */
static void range(char *buf, size_t n, int64_t from, int64_t to)
{
	char f[40], t[40];

	fmt_ms(f, sizeof f, from);
	fmt_ms(t, sizeof t, to);
	snprintf(buf, n, "from=%s&to=%s", f, t);
}

/* ---- validation, roles, empty ranges ---- */

static void test_params(void)
{
	static const struct {
		const char *path;
		const char *code;
		const char *field;
	} cases[] = {
		{ "/v1/analytics/top-keys?to=2026-11-02T00:00:00Z", "missing_field", "from" },
		{ "/v1/analytics/top-keys?from=2026-11-01T00:00:00Z", "missing_field", "to" },
		{ "/v1/analytics/top-keys?from=2026-11-01&to=2026-11-02T00:00:00Z", "invalid_argument", "from" },
		{ "/v1/analytics/top-keys?from=2026-11-01T00:00:00Z&to=tomorrow", "invalid_argument", "to" },
		{ "/v1/analytics/top-keys?from=2026-11-01T00:30:00Z&to=2026-11-02T00:00:00Z", "invalid_argument", "from" },
		{ "/v1/analytics/top-keys?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:01Z", "invalid_argument", "to" },
		{ "/v1/analytics/top-keys?from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z", "invalid_argument", "to" },
		{ "/v1/analytics/top-keys?from=2026-11-01T00:00:00Z&to=2026-11-01T00:00:00Z", "invalid_argument", "to" },
		{ "/v1/analytics/top-keys?from=2025-01-01T00:00:00Z&to=2026-01-03T00:00:00Z", "invalid_argument", "to" },
		{ "/v1/analytics/top-keys?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&by=cost", "invalid_argument", "by" },
		{ "/v1/analytics/top-keys?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&by=", "invalid_argument", "by" },
		{ "/v1/analytics/top-keys?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&limit=0", "invalid_argument", "limit" },
		{ "/v1/analytics/top-keys?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&limit=1001", "invalid_argument", "limit" },
		{ "/v1/analytics/top-keys?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&limit=ten", "invalid_argument", "limit" },
		{ "/v1/analytics/top-keys?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&tier=Pro", "invalid_argument", "tier" },
		{ "/v1/analytics/top-keys?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&cursor=x", "invalid_argument", "cursor" },
		{ "/v1/analytics/top-owners?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&granularity=day", "invalid_argument", "granularity" },
		{ "/v1/analytics/top-owners?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&by=errors", "invalid_argument", "by" },
		{ "/v1/analytics/top-owners?to=2026-11-02T00:00:00Z", "missing_field", "from" },
		{ "/v1/analytics/tiers?from=2026-11-01T00:00:00Z", "missing_field", "to" },
		{ "/v1/analytics/tiers?from=2026-11-01T01:00:00Z&to=2026-11-02T00:00:00Z", "invalid_argument", "from" },
		{ "/v1/analytics/tiers?from=2026-11-01T00:00:00Z&to=2026-11-02T12:00:00Z", "invalid_argument", "to" },
		{ "/v1/analytics/tiers?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&by=requests", "invalid_argument", "by" },
		{ "/v1/analytics/tiers?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&tier=free", "invalid_argument", "tier" },
		{ "/v1/analytics/tiers?from=2020-01-01T00:00:00Z&to=2021-01-02T00:00:00Z", "invalid_argument", "to" },
	};
	struct itest_resp r;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		itest_call(&r, "GET", cases[i].path, billing.token, NULL);
		EXPECT_ERROR_CASE(&r, 400, cases[i].code, cases[i].field, cases[i].path);
		itest_resp_fini(&r);
	}
	/* A time with an offset, on the hour in UTC; 366 days is the bound. */
	itest_call(&r, "GET", "/v1/analytics/top-keys?from=2026-11-01T01:00:00%2B01:00"
		   "&to=2027-11-02T00:00:00Z&limit=1000", billing.token, NULL);
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
}

static void test_roles(void)
{
	static const char *const paths[] = {
		"/v1/analytics/top-keys?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z",
		"/v1/analytics/top-owners?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z",
		"/v1/analytics/tiers?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z",
	};
	const struct itest_token *allowed[] = { &billing, &operator_tok };
	const struct itest_token *refused[] = { &viewer, &service };
	struct itest_resp r;
	size_t i, j;

	for (i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		for (j = 0; j < sizeof allowed / sizeof allowed[0]; j++) {
			itest_call(&r, "GET", paths[i], allowed[j]->token, NULL);
			EXPECT(r.status == 200, "%s as %s: want 200, got %ld %.300s", paths[i],
			       allowed[j]->role, r.status, r.body);
			itest_resp_fini(&r);
		}
		itest_call(&r, "GET", paths[i], itest_admin_token(), NULL);
		EXPECT_STATUS(&r, 200);
		itest_resp_fini(&r);
		for (j = 0; j < sizeof refused / sizeof refused[0]; j++) {
			itest_call(&r, "GET", paths[i], refused[j]->token, NULL);
			EXPECT_ERROR_CASE(&r, 403, "forbidden", NULL, refused[j]->role);
			itest_resp_fini(&r);
		}
		itest_call(&r, "GET", paths[i], NULL, NULL);
		EXPECT_ERROR(&r, 401, "unauthenticated", NULL);
		itest_resp_fini(&r);
		itest_call(&r, "POST", paths[i], itest_admin_token(), "{}");
		EXPECT_ERROR(&r, 405, "method_not_allowed", NULL);
		itest_resp_fini(&r);
	}
}

/* 200 {"data":[]} for path. */
static void expect_empty(const char *path)
{
	struct itest_resp r;
	json_object *data;

	itest_call(&r, "GET", path, billing.token, NULL);
	data = itest_get(r.json, "data");
	EXPECT(r.status == 200 && json_object_is_type(data, json_type_array) &&
	       itest_len(data) == 0, "%s: want 200 {\"data\":[]}, got %ld %.300s", path,
	       r.status, r.body);
	itest_resp_fini(&r);
}

static void test_empty_ranges(void)
{
	char path[512], q[128];
	int64_t hour = wall_ms() / HOUR_MS * HOUR_MS;

	/* Far in the future: nothing, for every tier (no partition either). */
	expect_empty("/v1/analytics/top-keys?from=2090-01-01T00:00:00Z&to=2090-02-01T00:00:00Z");
	expect_empty("/v1/analytics/top-owners?from=2090-01-01T00:00:00Z&to=2090-01-01T01:00:00Z");
	expect_empty("/v1/analytics/tiers?from=2090-01-01T00:00:00Z&to=2090-12-31T00:00:00Z");
	/* This run's tier has no key yet in the last day. */
	range(q, sizeof q, hour - DAY_MS, hour + HOUR_MS);
	snprintf(path, sizeof path, "/v1/analytics/top-keys?%s&tier=%s", q, tier1);
	expect_empty(path);
	snprintf(path, sizeof path, "/v1/analytics/top-owners?%s&tier=%s&by=billable", q, tier1);
	expect_empty(path);
}

/* ---- end to end ---- */

struct figures {
	int64_t requests, allowed, denied, rate_limited, quota_exceeded, other, billable;
};

/* The figures of row; 0 when complete and consistent (requests = allowed +
 * denied, denied = the sum of its kinds). */
static int row_figures(json_object *row, struct figures *f)
{
	memset(f, 0, sizeof *f);
	if (!itest_int(row, "requests", &f->requests) || !itest_int(row, "allowed", &f->allowed) ||
	    !itest_int(row, "denied", &f->denied) ||
	    !itest_int(row, "denied_by.rate_limited", &f->rate_limited) ||
	    !itest_int(row, "denied_by.quota_exceeded", &f->quota_exceeded) ||
	    !itest_int(row, "denied_by.other", &f->other) ||
	    !itest_int(row, "billable_units", &f->billable))
		return -1;
	return f->requests == f->allowed + f->denied &&
	       f->denied == f->rate_limited + f->quota_exceeded + f->other ? 0 : -1;
}

/* Polls path (as billing) until its rows' requests sum to want, at most
 * 15 s; returns 0, or -1 with r holding the last answer. */
static int wait_requests(struct itest_resp *r, const char *path, int64_t want)
{
	int64_t t0 = itest_now_ms(), sum;
	json_object *data;
	struct figures f;
	size_t i;

	for (;;) {
		itest_call(r, "GET", path, billing.token, NULL);
		data = itest_get(r->json, "data");
		sum = 0;
		for (i = 0; r->status == 200 && i < itest_len(data); i++)
			if (row_figures(itest_idx(data, i), &f) == 0)
				sum += f.requests;
		if (sum == want)
			return 0;
		if (itest_now_ms() - t0 > APPEAR_BOUND_MS)
			return -1;
		itest_resp_fini(r);
		itest_sleep_ms(APPEAR_POLL_MS);
	}
}

/* Row i of r's data has this id (member idm) and figures. */
static void expect_rank(const struct itest_resp *r, size_t i, const char *idm, const char *id,
			int64_t requests, int64_t allowed, int64_t rate_limited, int64_t billable)
{
	json_object *row = itest_idx(itest_get(r->json, "data"), i);
	const char *got = itest_str(row, idm);
	struct figures f;

	EXPECT(row && got && strcmp(got, id) == 0 && row_figures(row, &f) == 0 &&
	       f.requests == requests && f.allowed == allowed && f.rate_limited == rate_limited &&
	       f.quota_exceeded == 0 && f.other == 0 && f.billable == billable,
	       "%s: row %zu: want %s requests %" PRId64 " allowed %" PRId64 " rate_limited %"
	       PRId64 " billable %" PRId64 ", got %.900s", r->what, i, id, requests, allowed,
	       rate_limited, billable, r->body);
}

static void expect_rows(const struct itest_resp *r, size_t n)
{
	size_t got = itest_len(itest_get(r->json, "data"));

	EXPECT(r->status == 200 && got == n, "%s: want 200 and %zu rows, got %ld with %zu: %.900s",
	       r->what, n, r->status, got, r->body);
}

static void checks(const char *key, int n, int cost)
{
	struct itest_resp r;
	char body[512];
	int i;

	snprintf(body, sizeof body, "{\"key\":%s,\"cost\":%d}", itest_q(key), cost);
	for (i = 0; i < n; i++) {
		itest_call(&r, "POST", "/v1/check", service.token, body);
		EXPECT(r.status == 200 || r.status == 429, "check: got %ld %.300s", r.status, r.body);
		itest_resp_fini(&r);
	}
}

static void test_end_to_end(void)
{
	struct itest_key a, b, c, d;
	struct itest_resp r;
	char o1[128], o2[128], o3[128], q[128], days[128], path[512];
	int64_t t0 = wall_ms(), hour = t0 / HOUR_MS * HOUR_MS, day = t0 / DAY_MS * DAY_MS;
	size_t i;
	int recorded;

	snprintf(o1, sizeof o1, "acct_it%s_an_1", itest_suffix());
	snprintf(o2, sizeof o2, "acct_it%s_an_2", itest_suffix());
	snprintf(o3, sizeof o3, "acct_it%s_an_3", itest_suffix());
	/* c admits 2 checks a minute: of its 4 checks, 2 are rate limited. */
	if (itest_key_create(&a, o1, tier1, NULL, NULL) != 0 ||
	    itest_key_create(&b, o1, tier1, NULL, NULL) != 0 ||
	    itest_key_create(&c, o2, tier1,
			     "\"limits\":[{\"name\":\"per_minute\",\"window_s\":60,\"limit\":2}]",
			     NULL) != 0 ||
	    itest_key_create(&d, o3, tier2, NULL, NULL) != 0)
		return;
	checks(a.key, 3, 4); /* requests 3, billable 12 */
	checks(b.key, 5, 1); /* requests 5, billable 5 */
	checks(c.key, 4, 1); /* requests 4: 2 allowed, 2 rate limited */
	checks(d.key, 1, 1);

	/* Whole hours around now (the checks may straddle an hour). */
	range(q, sizeof q, hour - HOUR_MS, hour + 2 * HOUR_MS);
	snprintf(path, sizeof path, "/v1/analytics/top-keys?%s&tier=%s", q, tier1);
	/* (The wait runs before EXPECT formats r, which it fills.) */
	recorded = wait_requests(&r, path, 12) == 0;
	if (!EXPECT(recorded, "billingd did not record the 12 checks within %d ms: %ld %.900s",
		    APPEAR_BOUND_MS, r.status, r.body)) {
		itest_resp_fini(&r);
		return;
	}
	expect_rows(&r, 3);
	expect_rank(&r, 0, "key_id", b.id, 5, 5, 0, 5);
	expect_rank(&r, 1, "key_id", c.id, 4, 2, 2, 2);
	expect_rank(&r, 2, "key_id", a.id, 3, 3, 0, 12);
	EXPECT_STR(&r, itest_idx(itest_get(r.json, "data"), 0), "owner_id", o1);
	EXPECT_STR(&r, itest_idx(itest_get(r.json, "data"), 0), "tier", tier1);
	itest_resp_fini(&r);
	/* The other tier's key arrives through the same pipeline. */
	snprintf(path, sizeof path, "/v1/analytics/top-keys?%s&tier=%s", q, tier2);
	recorded = wait_requests(&r, path, 1) == 0;
	EXPECT(recorded, "tier2: %ld %.600s", r.status, r.body);
	expect_rows(&r, 1);
	expect_rank(&r, 0, "key_id", d.id, 1, 1, 0, 1);
	itest_resp_fini(&r);

	snprintf(path, sizeof path, "/v1/analytics/top-keys?%s&tier=%s&by=billable", q, tier1);
	itest_call(&r, "GET", path, operator_tok.token, NULL);
	expect_rows(&r, 3);
	expect_rank(&r, 0, "key_id", a.id, 3, 3, 0, 12);
	expect_rank(&r, 1, "key_id", b.id, 5, 5, 0, 5);
	expect_rank(&r, 2, "key_id", c.id, 4, 2, 2, 2);
	itest_resp_fini(&r);

	/* By denials, limit 2: c, then the tie of a and b (0) by key id. */
	snprintf(path, sizeof path, "/v1/analytics/top-keys?%s&tier=%s&by=denials&limit=2", q,
		 tier1);
	itest_call(&r, "GET", path, billing.token, NULL);
	expect_rows(&r, 2);
	expect_rank(&r, 0, "key_id", c.id, 4, 2, 2, 2);
	if (strcmp(a.id, b.id) < 0)
		expect_rank(&r, 1, "key_id", a.id, 3, 3, 0, 12);
	else
		expect_rank(&r, 1, "key_id", b.id, 5, 5, 0, 5);
	itest_resp_fini(&r);

	snprintf(path, sizeof path, "/v1/analytics/top-owners?%s&tier=%s", q, tier1);
	itest_call(&r, "GET", path, billing.token, NULL);
	expect_rows(&r, 2);
	expect_rank(&r, 0, "owner_id", o1, 8, 8, 0, 17);
	expect_rank(&r, 1, "owner_id", o2, 4, 2, 2, 2);
	{
		int64_t keys = -1;

		itest_int(itest_idx(itest_get(r.json, "data"), 0), "keys", &keys);
		EXPECT(keys == 2, "top-owners: owner 1 has 2 keys with usage, got %.600s", r.body);
	}
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/analytics/top-owners?%s&tier=%s&by=denials&limit=1", q,
		 tier1);
	itest_call(&r, "GET", path, billing.token, NULL);
	expect_rows(&r, 1);
	expect_rank(&r, 0, "owner_id", o2, 4, 2, 2, 2);
	itest_resp_fini(&r);

	/* Per tier and day: this run's tiers only hold these checks (the
	 * day may have turned since the first check). */
	range(days, sizeof days, day, day + 2 * DAY_MS);
	snprintf(path, sizeof path, "/v1/analytics/tiers?%s", days);
	itest_call(&r, "GET", path, billing.token, NULL);
	{
		json_object *data = itest_get(r.json, "data");
		struct figures f, t1 = { 0 }, t2 = { 0 };
		const char *prev = "";

		EXPECT(r.status == 200, "%s: %ld %.300s", path, r.status, r.body);
		for (i = 0; i < itest_len(data); i++) {
			json_object *row = itest_idx(data, i);
			const char *tier = itest_str(row, "tier"), *ts = itest_str(row, "ts");
			struct figures *sum = NULL;

			EXPECT(tier && ts && row_figures(row, &f) == 0 && strcmp(prev, ts) <= 0,
			       "tiers: row %zu malformed or out of ts order: %.300s", i,
			       json_object_to_json_string(row));
			prev = ts ? ts : prev;
			if (tier && strcmp(tier, tier1) == 0)
				sum = &t1;
			else if (tier && strcmp(tier, tier2) == 0)
				sum = &t2;
			if (sum) {
				sum->requests += f.requests;
				sum->allowed += f.allowed;
				sum->rate_limited += f.rate_limited;
				sum->billable += f.billable;
			}
		}
		EXPECT(t1.requests == 12 && t1.allowed == 10 && t1.rate_limited == 2 &&
		       t1.billable == 19 && t2.requests == 1 && t2.billable == 1,
		       "tiers: want %s 12/10/2/19 and %s 1/1/0/1, got %.900s", tier1, tier2,
		       r.body);
	}
	itest_resp_fini(&r);
}

/* The first instant of ms's UTC month. */
static int64_t month_start(int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	return (int64_t)timegm(&tm) * 1000;
}

static int64_t month_next(int64_t ms)
{
	return month_start(month_start(ms) + 32 * DAY_MS);
}

/* A whole UTC day and a whole UTC month are read from one rollup row per
 * key, with the owner and tier stored on it (not from the hours as above):
 * the same figures.  A key moved to another tier counts under the tier it
 * had when its usage of that day or month was last recorded; per-tier totals
 * split the day exactly. */
static void test_whole_day_and_month(void)
{
	struct itest_key a, b, c;
	struct itest_resp r;
	char o1[128], o2[128], qd[128], qm[128], path[512], t3[40], t4[40], body[128];
	int64_t t0 = wall_ms(), day = t0 / DAY_MS * DAY_MS, month = month_start(t0);
	int recorded;

	if (tier_create(t3, sizeof t3, "3") != 0 || tier_create(t4, sizeof t4, "4") != 0)
		return;
	snprintf(o1, sizeof o1, "acct_it%s_an_w1", itest_suffix());
	snprintf(o2, sizeof o2, "acct_it%s_an_w2", itest_suffix());
	if (itest_key_create(&a, o1, t3, NULL, NULL) != 0 ||
	    itest_key_create(&b, o1, t3, NULL, NULL) != 0 ||
	    itest_key_create(&c, o2, t3, NULL, NULL) != 0)
		return;
	checks(a.key, 2, 3); /* requests 2, billable 6 */
	checks(b.key, 4, 1);
	checks(c.key, 3, 1);
	range(qd, sizeof qd, day, day + DAY_MS);
	range(qm, sizeof qm, month, month_next(t0));
	snprintf(path, sizeof path, "/v1/analytics/top-keys?%s&tier=%s", qd, t3);
	recorded = wait_requests(&r, path, 9) == 0;
	if (!EXPECT(recorded, "billingd did not record the 9 checks within %d ms: %ld %.900s",
		    APPEAR_BOUND_MS, r.status, r.body)) {
		itest_resp_fini(&r);
		return;
	}
	if (wall_ms() / DAY_MS != t0 / DAY_MS) {
		fprintf(stderr, "analytics: the UTC day turned during the test: whole-day checks skipped\n");
		itest_resp_fini(&r);
		return;
	}
	expect_rows(&r, 3);
	expect_rank(&r, 0, "key_id", b.id, 4, 4, 0, 4);
	expect_rank(&r, 1, "key_id", c.id, 3, 3, 0, 3);
	expect_rank(&r, 2, "key_id", a.id, 2, 2, 0, 6);
	EXPECT_STR(&r, itest_idx(itest_get(r.json, "data"), 2), "owner_id", o1);
	EXPECT_STR(&r, itest_idx(itest_get(r.json, "data"), 2), "tier", t3);
	itest_resp_fini(&r);
	/* The month: the same rows (the keys are new), by billable, limit 1. */
	snprintf(path, sizeof path, "/v1/analytics/top-keys?%s&tier=%s&by=billable&limit=1", qm, t3);
	itest_call(&r, "GET", path, billing.token, NULL);
	expect_rows(&r, 1);
	expect_rank(&r, 0, "key_id", a.id, 2, 2, 0, 6);
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/analytics/top-owners?%s&tier=%s", qm, t3);
	itest_call(&r, "GET", path, billing.token, NULL);
	expect_rows(&r, 2);
	expect_rank(&r, 0, "owner_id", o1, 6, 6, 0, 10);
	expect_rank(&r, 1, "owner_id", o2, 3, 3, 0, 3);
	{
		int64_t keys = -1;

		itest_int(itest_idx(itest_get(r.json, "data"), 0), "keys", &keys);
		EXPECT(keys == 2, "top-owners, month: owner 1 has 2 keys with usage, got %.600s", r.body);
	}
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/analytics/top-owners?%s&tier=%s", qd, t3);
	itest_call(&r, "GET", path, billing.token, NULL);
	expect_rows(&r, 2);
	expect_rank(&r, 0, "owner_id", o1, 6, 6, 0, 10);
	itest_resp_fini(&r);

	/* Key a moves to t4 and is checked once more: its day and month rows
	 * now count under t4, all of them; the per-tier totals split it. */
	snprintf(body, sizeof body, "{\"tier\":%s}", itest_q(t4));
	if (itest_key_patch(a.id, body) != 0)
		return;
	checks(a.key, 1, 1);
	snprintf(path, sizeof path, "/v1/analytics/top-keys?%s&tier=%s", qd, t4);
	recorded = wait_requests(&r, path, 3) == 0;
	EXPECT(recorded, "the check after the tier change was not recorded under %s within %d ms:"
	       " %ld %.600s", t4, APPEAR_BOUND_MS, r.status, r.body);
	expect_rows(&r, 1);
	expect_rank(&r, 0, "key_id", a.id, 3, 3, 0, 7);
	EXPECT_STR(&r, itest_idx(itest_get(r.json, "data"), 0), "tier", t4);
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/analytics/top-owners?%s&tier=%s", qm, t3);
	itest_call(&r, "GET", path, billing.token, NULL);
	expect_rows(&r, 2);
	expect_rank(&r, 0, "owner_id", o1, 4, 4, 0, 4);
	expect_rank(&r, 1, "owner_id", o2, 3, 3, 0, 3);
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/analytics/tiers?%s", qd);
	itest_call(&r, "GET", path, billing.token, NULL);
	{
		json_object *data = itest_get(r.json, "data");
		int64_t n3 = 0, n4 = 0;
		struct figures f;
		size_t i;

		for (i = 0; r.status == 200 && i < itest_len(data); i++) {
			json_object *row = itest_idx(data, i);
			const char *tier = itest_str(row, "tier");

			if (!tier || row_figures(row, &f) != 0)
				continue;
			if (strcmp(tier, t3) == 0)
				n3 += f.requests;
			else if (strcmp(tier, t4) == 0)
				n4 += f.requests;
		}
		EXPECT(n3 == 9 && n4 == 1, "tiers: want %s 9 and %s 1, got %.900s", t3, t4, r.body);
	}
	itest_resp_fini(&r);
}

int itest_register_analytics(void)
{
	CU_pSuite s = CU_add_suite("analytics", suite_init, suite_clean);

	if (!s)
		return -1;
	if (!CU_add_test(s, "analytics: query parameters", test_params) ||
	    !CU_add_test(s, "analytics: roles", test_roles) ||
	    !CU_add_test(s, "analytics: empty ranges", test_empty_ranges) ||
	    !CU_add_test(s, "analytics: rankings and tiers end to end", test_end_to_end) ||
	    !CU_add_test(s, "analytics: a whole day and month, and a tier change",
			 test_whole_day_and_month))
		return -1;
	return 0;
}
