/*
 * itest_usage.c - usage history (GET /v1/keys/{id}/usage, GET
 * /v1/owners/{owner_id}/usage) and usage events (POST /v1/usage/events).
 *
 * Validation is checked case by case. The end-to-end tests go through the
 * whole pipeline (journal, publisher, broker, tollgate-billingd, PostgreSQL):
 * checks and events made here must appear in the history, and the time they
 * take to appear is measured and printed. Every run uses fresh owners, keys
 * and event ids, since the suite runs several times against one database.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>

#include "itest_fixture.h"
#include "itest_suites.h"

#define APPEAR_POLL_MS 100
#define APPEAR_BOUND_MS 15000
#define APPEAR_MAX_MS 5000
#define MINUTE_MS INT64_C(60000)
#define HOUR_MS (60 * MINUTE_MS)
#define DAY_MS (24 * HOUR_MS)

static struct itest_token service, viewer, billing, operator_tok;
static struct itest_key key_a; /* a key for validation cases */

static void owner_id(char *buf, size_t n, const char *tag)
{
	snprintf(buf, n, "acct_it%s_usage_%s", itest_suffix(), tag);
}

static int suite_init(void)
{
	char owner[128];

	if (!itest_big_tier())
		return -1;
	if (itest_token_create(&service, "service") != 0 ||
	    itest_token_create(&viewer, "viewer") != 0 ||
	    itest_token_create(&billing, "billing") != 0 ||
	    itest_token_create(&operator_tok, "operator") != 0)
		return -1;
	owner_id(owner, sizeof owner, "a");
	return itest_key_create(&key_a, owner, itest_big_tier(), NULL, NULL);
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

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RFC 3339 UTC with milliseconds. */
static void fmt_ms(char *buf, size_t n, int64_t ms)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static void post_events(struct itest_resp *r, const char *token, const char *body)
{
	itest_call(r, "POST", "/v1/usage/events", token, body);
}

/* ---- events: validation ---- */

struct event_case {
	const char *event; /* members of one event; %s is replaced by the key id */
	const char *code;
	const char *field;
};

/* The event members that make event i valid except for what the case adds. */
static void event_text(char *buf, size_t n, const char *members, const char *key_id)
{
	char tmp[2048];

	snprintf(tmp, sizeof tmp, members, itest_q(key_id));
	snprintf(buf, n, "{%s}", tmp);
}

#define VALID "\"id\":\"v\",\"key_id\":%s,\"status\":200,\"response_ms\":1"
/* The same, as a format of its own (the key's %s escaped). */
#define VALID_FMT "\"id\":\"v\",\"key_id\":%%s,\"status\":200,\"response_ms\":1"

static void test_events_invalid_fields(void)
{
	static const struct event_case cases[] = {
		{ "\"key_id\":%s,\"status\":200,\"response_ms\":1", "missing_field", "events[1].id" },
		{ "\"id\":\"x\",\"status\":200,\"response_ms\":1", "missing_field", "events[1].key_id" },
		{ "\"id\":\"x\",\"key_id\":%s,\"response_ms\":1", "missing_field", "events[1].status" },
		{ "\"id\":\"x\",\"key_id\":%s,\"status\":200", "missing_field", "events[1].response_ms" },
		{ VALID ",\"extra\":1", "unknown_field", "events[1].extra" },
		{ VALID ",\"Status\":1", "unknown_field", "events[1].Status" },
		{ "\"id\":\"\",\"key_id\":%s,\"status\":200,\"response_ms\":1", "invalid_argument", "events[1].id" },
		{ "\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
		  "\"key_id\":%s,\"status\":200,\"response_ms\":1", "invalid_argument", "events[1].id" },
		{ "\"id\":\"a\\u0001b\",\"key_id\":%s,\"status\":200,\"response_ms\":1", "invalid_argument", "events[1].id" },
		{ "\"id\":\"a\\nb\",\"key_id\":%s,\"status\":200,\"response_ms\":1", "invalid_argument", "events[1].id" },
		{ "\"id\":7,\"key_id\":%s,\"status\":200,\"response_ms\":1", "invalid_argument", "events[1].id" },
		{ "\"id\":null,\"key_id\":%s,\"status\":200,\"response_ms\":1", "invalid_argument", "events[1].id" },
		{ "\"id\":\"x\",\"key_id\":\"key_nosuchkeyatall000\",\"status\":200,\"response_ms\":1", "invalid_argument", "events[1].key_id" },
		{ "\"id\":\"x\",\"key_id\":\"\",\"status\":200,\"response_ms\":1", "invalid_argument", "events[1].key_id" },
		{ "\"id\":\"x\",\"key_id\":5,\"status\":200,\"response_ms\":1", "invalid_argument", "events[1].key_id" },
		{ VALID ",\"endpoint\":\"get /x\"", "invalid_argument", "events[1].endpoint" },
		{ VALID ",\"endpoint\":\"GET x\"", "invalid_argument", "events[1].endpoint" },
		{ VALID ",\"endpoint\":\"GET /a%%2Fb\"", "invalid_argument", "events[1].endpoint" },
		{ VALID ",\"endpoint\":\"GET /%%zz\"", "invalid_argument", "events[1].endpoint" },
		{ VALID ",\"endpoint\":\"\"", "invalid_argument", "events[1].endpoint" },
		{ VALID ",\"endpoint\":null", "invalid_argument", "events[1].endpoint" },
		{ "\"id\":\"x\",\"key_id\":%s,\"status\":99,\"response_ms\":1", "invalid_argument", "events[1].status" },
		{ "\"id\":\"x\",\"key_id\":%s,\"status\":600,\"response_ms\":1", "invalid_argument", "events[1].status" },
		{ "\"id\":\"x\",\"key_id\":%s,\"status\":200.5,\"response_ms\":1", "invalid_argument", "events[1].status" },
		{ "\"id\":\"x\",\"key_id\":%s,\"status\":\"200\",\"response_ms\":1", "invalid_argument", "events[1].status" },
		{ "\"id\":\"x\",\"key_id\":%s,\"status\":200,\"response_ms\":-1", "invalid_argument", "events[1].response_ms" },
		{ "\"id\":\"x\",\"key_id\":%s,\"status\":200,\"response_ms\":-0.001", "invalid_argument", "events[1].response_ms" },
		{ "\"id\":\"x\",\"key_id\":%s,\"status\":200,\"response_ms\":3600000.001", "invalid_argument", "events[1].response_ms" },
		{ "\"id\":\"x\",\"key_id\":%s,\"status\":200,\"response_ms\":3600001", "invalid_argument", "events[1].response_ms" },
		{ "\"id\":\"x\",\"key_id\":%s,\"status\":200,\"response_ms\":1e400", "invalid_argument", "events[1].response_ms" },
		{ "\"id\":\"x\",\"key_id\":%s,\"status\":200,\"response_ms\":\"1\"", "invalid_argument", "events[1].response_ms" },
		{ VALID ",\"ts\":\"yesterday\"", "invalid_argument", "events[1].ts" },
		{ VALID ",\"ts\":\"2026-13-01T00:00:00Z\"", "invalid_argument", "events[1].ts" },
		{ VALID ",\"ts\":1700000000", "invalid_argument", "events[1].ts" },
		{ VALID ",\"ts\":\"2000-01-01T00:00:00.000Z\"", "invalid_argument", "events[1].ts" },
	};
	char ev[2300], body[6000];
	struct itest_resp r;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		/* Event 0 is valid: the error must name event 1. */
		event_text(ev, sizeof ev, cases[i].event, key_a.id);
		snprintf(body, sizeof body, "{\"events\":[{\"id\":\"ok\",\"key_id\":%s,"
			 "\"status\":200,\"response_ms\":1},%s]}", itest_q(key_a.id), ev);
		post_events(&r, service.token, body);
		EXPECT_ERROR_CASE(&r, 400, cases[i].code, cases[i].field, cases[i].event);
		itest_resp_fini(&r);
	}
}

/* Values on the bounds are accepted: event 0 carries the bound, event 1 an
 * error, and the error names event 1 (so event 0 passed).  This does not
 * need the pipeline. */
static void test_events_bounds_accepted(void)
{
	char past[40], ahead[40], ev[2300], body[6000], id128[129];
	const char *cases[16];
	struct itest_resp r;
	size_t i, n = 0;

	memset(id128, 'a', 128);
	id128[128] = '\0';
	fmt_ms(past, sizeof past, wall_ms() - 34 * DAY_MS);
	fmt_ms(ahead, sizeof ahead, wall_ms() + 4 * MINUTE_MS);
	char c_past[200], c_ahead[200], c_id[400], c_offset[200], offset[48];
	snprintf(c_past, sizeof c_past, VALID_FMT ",\"ts\":\"%s\"", past);
	snprintf(c_ahead, sizeof c_ahead, VALID_FMT ",\"ts\":\"%s\"", ahead);
	snprintf(c_id, sizeof c_id, "\"id\":\"%s\",\"key_id\":%%s,\"status\":200,\"response_ms\":1",
		 id128);
	cases[n++] = c_past;
	cases[n++] = c_ahead;
	cases[n++] = c_id;
	cases[n++] = "\"id\":\"\xc3\xa9\",\"key_id\":%s,\"status\":100,\"response_ms\":0";
	cases[n++] = "\"id\":\"x\",\"key_id\":%s,\"status\":599,\"response_ms\":3600000";
	cases[n++] = "\"id\":\"x\",\"key_id\":%s,\"status\":200,\"response_ms\":0.0004";
	cases[n++] = "\"id\":\"x\",\"key_id\":%s,\"status\":200,\"response_ms\":3.6e6";
	cases[n++] = VALID ",\"endpoint\":\"*\"";
	cases[n++] = VALID ",\"endpoint\":\"DELETE /v1/things/42?x=1\"";
	cases[n++] = VALID ",\"endpoint\":\"GET /a b/../c\""; /* stored as GET /c */
	/* A numeric offset names the same instant. */
	fmt_ms(offset, sizeof offset, wall_ms() - 10 * MINUTE_MS);
	strcpy(offset + strlen(offset) - 1, "+00:00");
	snprintf(c_offset, sizeof c_offset, VALID_FMT ",\"ts\":\"%s\"", offset);
	cases[n++] = c_offset;
	for (i = 0; i < n; i++) {
		event_text(ev, sizeof ev, cases[i], key_a.id);
		snprintf(body, sizeof body, "{\"events\":[%s,{\"id\":\"x\",\"key_id\":%s,"
			 "\"status\":99,\"response_ms\":1}]}", ev, itest_q(key_a.id));
		post_events(&r, service.token, body);
		EXPECT_ERROR_CASE(&r, 400, "invalid_argument", "events[1].status", cases[i]);
		itest_resp_fini(&r);
	}
}

/* The first invalid event names the error, whatever makes it invalid. */
static void test_events_first_invalid_wins(void)
{
	char body[2048];
	struct itest_resp r;

	snprintf(body, sizeof body, "{\"events\":[{\"id\":\"a\",\"key_id\":\"key_unknown0000000000\","
		 "\"status\":200,\"response_ms\":1},{\"id\":\"b\",\"key_id\":%s,\"status\":1,"
		 "\"response_ms\":1}]}", itest_q(key_a.id));
	post_events(&r, service.token, body);
	EXPECT_ERROR_CASE(&r, 400, "invalid_argument", "events[0].key_id", "unknown key first");
	itest_resp_fini(&r);

	snprintf(body, sizeof body, "{\"events\":[{\"id\":\"a\",\"key_id\":%s,\"status\":200,"
		 "\"response_ms\":1},{\"id\":\"b\",\"key_id\":%s,\"status\":1,\"response_ms\":1},"
		 "{\"id\":\"c\",\"key_id\":\"key_unknown0000000000\",\"status\":200,"
		 "\"response_ms\":1}]}", itest_q(key_a.id), itest_q(key_a.id));
	post_events(&r, service.token, body);
	EXPECT_ERROR_CASE(&r, 400, "invalid_argument", "events[1].status", "bad status first");
	itest_resp_fini(&r);

	snprintf(body, sizeof body, "{\"events\":[{\"id\":\"a\",\"key_id\":%s,\"status\":200,"
		 "\"response_ms\":1},{\"id\":\"c\",\"key_id\":\"key_unknown0000000000\","
		 "\"status\":200,\"response_ms\":1}]}", itest_q(key_a.id));
	post_events(&r, service.token, body);
	EXPECT_ERROR_CASE(&r, 400, "invalid_argument", "events[1].key_id", "second key unknown");
	itest_resp_fini(&r);
}

static void test_events_batch_shape(void)
{
	static const struct {
		const char *body;
		const char *code;
		const char *field;
	} cases[] = {
		{ "{\"events\":[]}", "invalid_argument", "events" },
		{ "{}", "missing_field", "events" },
		{ "{\"events\":null}", "invalid_argument", "events" },
		{ "{\"events\":{}}", "invalid_argument", "events" },
		{ "{\"events\":[1]}", "invalid_argument", "events[0]" },
		{ "{\"events\":[[]]}", "invalid_argument", "events[0]" },
		{ "{\"events\":[],\"batch\":1}", "unknown_field", "batch" },
		{ "[]", "invalid_argument", NULL },
		{ "{\"events\":[", "invalid_json", NULL },
	};
	struct itest_resp r;
	size_t i, len, one;
	char *big, ev[512];

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		post_events(&r, service.token, cases[i].body);
		EXPECT_ERROR_CASE(&r, 400, cases[i].code, cases[i].field, cases[i].body);
		itest_resp_fini(&r);
	}

	/* 1001 valid events: too many.  1000 of them would be accepted. */
	one = (size_t)snprintf(ev, sizeof ev, "{\"id\":\"x\",\"key_id\":%s,\"status\":200,"
			       "\"response_ms\":1},", itest_q(key_a.id));
	big = malloc(1001 * one + 64);
	if (!big)
		abort();
	len = (size_t)sprintf(big, "{\"events\":[");
	for (i = 0; i < 1001; i++)
		len += (size_t)sprintf(big + len, "%s", ev);
	sprintf(big + len - 1, "]}");
	post_events(&r, service.token, big);
	EXPECT_ERROR_CASE(&r, 400, "invalid_argument", "events", "1001 events");
	itest_resp_fini(&r);
	/* 1000 events plus one bad one at index 999: the count is fine, the
	 * error names the event. */
	len = (size_t)sprintf(big, "{\"events\":[");
	for (i = 0; i < 999; i++)
		len += (size_t)sprintf(big + len, "%s", ev);
	len += (size_t)sprintf(big + len, "{\"id\":\"x\",\"key_id\":%s,\"status\":200,"
			       "\"response_ms\":-5}]}", itest_q(key_a.id));
	post_events(&r, service.token, big);
	EXPECT_ERROR_CASE(&r, 400, "invalid_argument", "events[999].response_ms", "1000 events");
	itest_resp_fini(&r);
	free(big);

	/* A body over 1 MiB: 413 from the application. */
	len = 1024 * 1024 + 1;
	big = malloc(len + 1);
	if (!big)
		abort();
	memset(big, ' ', len);
	memcpy(big, "{\"events\":[]", 12);
	big[len - 1] = '}';
	big[len] = '\0';
	post_events(&r, service.token, big);
	EXPECT_ERROR(&r, 413, "payload_too_large", NULL);
	itest_resp_fini(&r);
	/* Just under 1 MiB is read and parsed (then refused for being empty). */
	len = 1024 * 1024 - 16;
	memset(big, ' ', len);
	memcpy(big, "{\"events\":[]", 12);
	big[len - 1] = '}';
	big[len] = '\0';
	post_events(&r, service.token, big);
	EXPECT_ERROR_CASE(&r, 400, "invalid_argument", "events", "body just under 1 MiB");
	itest_resp_fini(&r);
	free(big);
}

static void test_usage_roles(void)
{
	const struct itest_token *readers[] = { &viewer, &billing, &operator_tok };
	char body[512], path[512], owner_path[512], owner[128];
	struct itest_resp r;
	size_t i;

	snprintf(body, sizeof body, "{\"events\":[{\"id\":\"x\",\"key_id\":%s,\"status\":200,"
		 "\"response_ms\":1}]}", itest_q(key_a.id));
	for (i = 0; i < sizeof readers / sizeof readers[0]; i++) {
		post_events(&r, readers[i]->token, body);
		EXPECT_ERROR_CASE(&r, 403, "forbidden", NULL, readers[i]->role);
		itest_resp_fini(&r);
	}
	post_events(&r, NULL, body);
	EXPECT_ERROR(&r, 401, "unauthenticated", NULL);
	itest_resp_fini(&r);

	owner_id(owner, sizeof owner, "a");
	snprintf(path, sizeof path, "/v1/keys/%s/usage", key_a.id);
	snprintf(owner_path, sizeof owner_path, "/v1/owners/%s/usage", owner);
	itest_call(&r, "GET", path, service.token, NULL);
	EXPECT_ERROR_CASE(&r, 403, "forbidden", NULL, "service reads key usage");
	itest_resp_fini(&r);
	itest_call(&r, "GET", owner_path, service.token, NULL);
	EXPECT_ERROR_CASE(&r, 403, "forbidden", NULL, "service reads owner usage");
	itest_resp_fini(&r);
	for (i = 0; i < sizeof readers / sizeof readers[0]; i++) {
		itest_call(&r, "GET", path, readers[i]->token, NULL);
		EXPECT_STATUS(&r, 200);
		itest_resp_fini(&r);
		itest_call(&r, "GET", owner_path, readers[i]->token, NULL);
		EXPECT_STATUS(&r, 200);
		itest_resp_fini(&r);
	}
}

/* ---- history: parameters ---- */

static void test_usage_params(void)
{
	static const struct {
		const char *query;
		const char *field;
	} cases[] = {
		{ "?foo=1", "foo" },
		{ "?limit=10", "limit" },
		{ "?granularity=week", "granularity" },
		{ "?granularity=", "granularity" },
		{ "?granularity=Hour", "granularity" },
		{ "?group_by=key", "group_by" },
		{ "?group_by=", "group_by" },
		{ "?from=yesterday", "from" },
		{ "?from=2026-11-22", "from" },
		{ "?to=2026-11-22T10:00:00", "to" },
		{ "?from=2026-11-22T10:00:00Z&to=2026-11-22T10:00:00Z", "to" },
		{ "?from=2026-11-22T11:00:00Z&to=2026-11-22T10:00:00Z", "to" },
		/* 10,001 minutes; 10,001 hours; 10,001 days. */
		{ "?from=2026-01-01T00:00:00Z&to=2026-01-07T22:41:00Z", "from" },
		{ "?granularity=hour&from=2025-01-01T00:00:00Z&to=2026-02-21T17:00:00Z", "from" },
		{ "?granularity=day&from=2000-01-01T00:00:00Z&to=2027-05-20T00:00:00Z", "from" },
		/* A default to with a from far back. */
		{ "?from=2020-01-01T00:00:00Z", "from" },
	};
	static const char *const ok[] = {
		"?from=2026-01-01T00:00:00Z&to=2026-01-07T22:40:00Z", /* exactly 10,000 */
		"?granularity=hour&group_by=endpoint",
		"?granularity=day&from=2026-01-01T00:00:00.000Z",
		"?granularity=minute&to=2026-11-22T10:00:00%2B02:00",
		"?from=2026-11-22T10:00:30.5Z&to=2026-11-22T10:01:00Z",
	};
	char path[1024], owner[128];
	struct itest_resp r;
	size_t i, j;

	owner_id(owner, sizeof owner, "a");
	for (j = 0; j < 2; j++) {
		for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			snprintf(path, sizeof path, j ? "/v1/owners/%s/usage%s" : "/v1/keys/%s/usage%s",
				 j ? owner : key_a.id, cases[i].query);
			itest_call(&r, "GET", path, viewer.token, NULL);
			EXPECT_ERROR_CASE(&r, 400, "invalid_argument", cases[i].field, cases[i].query);
			itest_resp_fini(&r);
		}
		for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
			snprintf(path, sizeof path, j ? "/v1/owners/%s/usage%s" : "/v1/keys/%s/usage%s",
				 j ? owner : key_a.id, ok[i]);
			itest_call(&r, "GET", path, viewer.token, NULL);
			EXPECT(r.status == 200 && itest_len(itest_get(r.json, "data")) == 0 &&
			       itest_nmembers(r.json) == 1,
			       "%s: want 200 {\"data\":[]}, got %ld %.300s", path, r.status, r.body);
			itest_resp_fini(&r);
		}
	}
}

static void test_usage_not_found(void)
{
	char path[512], unknown[160], owner[128];
	struct itest_resp r;

	itest_unknown_id(key_a.id, unknown, sizeof unknown);
	snprintf(path, sizeof path, "/v1/keys/%s/usage", unknown);
	itest_call(&r, "GET", path, viewer.token, NULL);
	EXPECT_ERROR(&r, 404, "not_found", NULL);
	itest_resp_fini(&r);

	/* An owner without keys has no usage: an empty list, not an error. */
	owner_id(owner, sizeof owner, "nobody");
	snprintf(path, sizeof path, "/v1/owners/%s/usage?granularity=day", owner);
	itest_call(&r, "GET", path, viewer.token, NULL);
	EXPECT(r.status == 200 && json_object_is_type(itest_get(r.json, "data"), json_type_array) &&
	       itest_len(itest_get(r.json, "data")) == 0,
	       "%s: want 200 {\"data\":[]}, got %ld %.300s", path, r.status, r.body);
	itest_resp_fini(&r);
}

/* ---- end to end ---- */

struct totals {
	int64_t requests, allowed, denied, reported, errors;
	size_t rows;
};

/* Sums the rows of a usage answer; 0 when the answer is a well-formed list
 * whose rows all satisfy requests = allowed + denied. */
static int sum_rows(const struct itest_resp *r, struct totals *t)
{
	json_object *data = itest_get(r->json, "data");
	size_t i;

	memset(t, 0, sizeof *t);
	if (r->status != 200 || !json_object_is_type(data, json_type_array))
		return -1;
	t->rows = itest_len(data);
	for (i = 0; i < t->rows; i++) {
		json_object *row = itest_idx(data, i);
		int64_t q, a, d, rep, e;

		if (!itest_int(row, "requests", &q) || !itest_int(row, "allowed", &a) ||
		    !itest_int(row, "denied", &d) || !itest_int(row, "reported", &rep) ||
		    !itest_int(row, "errors", &e) || q != a + d || !itest_is_time(itest_str(row, "ts")))
			return -1;
		t->requests += q;
		t->allowed += a;
		t->denied += d;
		t->reported += rep;
		t->errors += e;
	}
	return 0;
}

/* Polls path every 100 ms (at most 15 s) until done(totals) holds. Returns
 * the milliseconds it took, or -1; r keeps the last answer. */
static int64_t wait_for(struct itest_resp *r, const char *path,
			int (*done)(const struct totals *t, const void *arg), const void *arg)
{
	int64_t t0 = itest_now_ms();
	struct totals t;

	for (;;) {
		itest_call(r, "GET", path, viewer.token, NULL);
		if (sum_rows(r, &t) == 0 && done(&t, arg))
			return itest_now_ms() - t0;
		if (itest_now_ms() - t0 > APPEAR_BOUND_MS)
			return -1;
		itest_resp_fini(r);
		itest_sleep_ms(APPEAR_POLL_MS);
	}
}

static int counts_are(const struct totals *t, const void *arg)
{
	const int64_t *want = arg; /* allowed, denied */

	return t->allowed >= want[0] && t->denied >= want[1];
}

static int reported_is(const struct totals *t, const void *arg)
{
	return t->reported >= *(const int64_t *)arg;
}

static void check_on(struct itest_resp *r, const char *key, const char *endpoint)
{
	char body[1024];

	snprintf(body, sizeof body, "{\"key\":%s,\"endpoint\":%s}", itest_q(key),
		 itest_q(endpoint));
	itest_call(r, "POST", "/v1/check", service.token, body);
}

/* A row of data whose ts and (when not NULL) endpoint match, or NULL. */
static json_object *find_row(json_object *data, const char *ts, const char *endpoint)
{
	size_t i;

	for (i = 0; i < itest_len(data); i++) {
		json_object *row = itest_idx(data, i);
		const char *t = itest_str(row, "ts"), *e = itest_str(row, "endpoint");

		if (t && strcmp(t, ts) == 0 &&
		    (!endpoint || (e && strcmp(e, endpoint) == 0)))
			return row;
	}
	return NULL;
}

static void expect_row(const struct itest_resp *r, json_object *row, const char *what,
		       int64_t allowed, int64_t denied, int64_t reported, int64_t errors)
{
	int64_t a = -1, d = -1, rep = -1, e = -1, q = -1;

	if (!EXPECT(row != NULL, "%s: no row in %.500s", what, r->body))
		return;
	itest_int(row, "allowed", &a);
	itest_int(row, "denied", &d);
	itest_int(row, "reported", &rep);
	itest_int(row, "errors", &e);
	itest_int(row, "requests", &q);
	EXPECT(a == allowed && d == denied && q == allowed + denied && rep == reported &&
	       e == errors,
	       "%s: want allowed %" PRId64 " denied %" PRId64 " reported %" PRId64
	       " errors %" PRId64 ", got %s", what, allowed, denied, reported, errors,
	       json_object_to_json_string(row));
}

/* Checks through POST /v1/check appear in the key's usage with exact counts,
 * within 5 s; by endpoint; at hour and day granularity; summed per owner. */
static void test_usage_checks_end_to_end(void)
{
	struct itest_key k, k2;
	struct itest_resp r;
	char owner[128], path[512], extra[512];
	static const int64_t want[2] = { 5, 3 }, want_owner[2] = { 7, 3 };
	struct totals t;
	int64_t ms;
	int i;

	owner_id(owner, sizeof owner, "e2e");
	/* At most 5 checks a minute: 3 on GET /a and 2 of 5 on POST /b pass.
	 * Usage is counted per limit pattern: give each endpoint one. */
	snprintf(extra, sizeof extra,
		 "\"limits\":[{\"name\":\"per_minute\",\"window_s\":60,\"limit\":5},"
		 "{\"name\":\"a\",\"window_s\":60,\"limit\":1000,\"endpoint\":\"GET /a\"},"
		 "{\"name\":\"b\",\"window_s\":60,\"limit\":1000,\"endpoint\":\"POST /b*\"}]");
	if (itest_key_create(&k, owner, itest_big_tier(), extra, NULL) != 0 ||
	    itest_key_create(&k2, owner, itest_big_tier(), NULL, NULL) != 0)
		return;
	for (i = 0; i < 3; i++) {
		check_on(&r, k.key, "GET /a");
		EXPECT_STATUS(&r, 200);
		itest_resp_fini(&r);
	}
	for (i = 0; i < 5; i++) {
		check_on(&r, k.key, "POST /b");
		EXPECT_STATUS(&r, i < 2 ? 200 : 429);
		itest_resp_fini(&r);
	}
	for (i = 0; i < 2; i++) {
		check_on(&r, k2.key, "GET /a");
		EXPECT_STATUS(&r, 200);
		itest_resp_fini(&r);
	}

	snprintf(path, sizeof path, "/v1/keys/%s/usage", k.id);
	ms = wait_for(&r, path, counts_are, want);
	printf("\n    usage: checks appeared in the key's usage after %" PRId64 " ms\n", ms);
	EXPECT(ms >= 0 && ms < APPEAR_MAX_MS,
	       "checks took %" PRId64 " ms to appear (want < %d ms; -1: not within 15 s): %.400s",
	       ms, APPEAR_MAX_MS, r.body);
	EXPECT(sum_rows(&r, &t) == 0 && t.allowed == 5 && t.denied == 3 && t.requests == 8 &&
	       t.reported == 0 && t.errors == 0,
	       "key usage: want allowed 5, denied 3: %.500s", r.body);
	/* No events were reported: response_ms is null on every row. */
	for (size_t j = 0; j < itest_len(itest_get(r.json, "data")); j++)
		EXPECT(itest_is_null(itest_idx(itest_get(r.json, "data"), j), "response_ms") &&
		       !itest_has(itest_idx(itest_get(r.json, "data"), j), "endpoint"),
		       "row without events: response_ms must be null, no endpoint: %.400s", r.body);
	itest_resp_fini(&r);

	/* By endpoint (the checks may straddle a minute: sum per endpoint). */
	snprintf(path, sizeof path, "/v1/keys/%s/usage?group_by=endpoint&granularity=day", k.id);
	itest_call(&r, "GET", path, viewer.token, NULL);
	if (EXPECT_STATUS(&r, 200)) {
		json_object *data = itest_get(r.json, "data");
		int64_t a_ok = 0, b_ok = 0, b_no = 0, v;
		size_t j;

		for (j = 0; j < itest_len(data); j++) {
			json_object *row = itest_idx(data, j);
			const char *ep = itest_str(row, "endpoint");

			EXPECT(ep && (strcmp(ep, "GET /a") == 0 || strcmp(ep, "POST /b*") == 0),
			       "unexpected endpoint in %.400s", r.body);
			if (ep && strcmp(ep, "GET /a") == 0 && itest_int(row, "allowed", &v))
				a_ok += v;
			if (ep && strcmp(ep, "POST /b*") == 0 && itest_int(row, "allowed", &v))
				b_ok += v;
			if (ep && strcmp(ep, "POST /b*") == 0 && itest_int(row, "denied", &v))
				b_no += v;
		}
		EXPECT(a_ok == 3 && b_ok == 2 && b_no == 3,
		       "by endpoint: want GET /a 3/0, POST /b* 2/3: %.500s", r.body);
	}
	itest_resp_fini(&r);

	/* Hour and day granularity hold the same sums. */
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof path, "/v1/keys/%s/usage?granularity=%s", k.id,
			 i ? "day" : "hour");
		itest_call(&r, "GET", path, viewer.token, NULL);
		EXPECT(sum_rows(&r, &t) == 0 && t.allowed == 5 && t.denied == 3 && t.rows >= 1 &&
		       t.rows <= 2, "%s: want allowed 5 denied 3 in 1-2 rows: %.400s", path, r.body);
		itest_resp_fini(&r);
	}

	/* The owner sums both keys. */
	snprintf(path, sizeof path, "/v1/owners/%s/usage", owner);
	ms = wait_for(&r, path, counts_are, want_owner);
	EXPECT(ms >= 0 && sum_rows(&r, &t) == 0 && t.allowed == 7 && t.denied == 3,
	       "owner usage: want allowed 7, denied 3: %.500s", r.body);
	itest_resp_fini(&r);
}

/* Sends events as one batch; returns the HTTP status. */
static long send_batch(const char *events_json)
{
	struct itest_resp r;
	size_t len = strlen(events_json) + 32;
	char *body = malloc(len);
	long status;
	int64_t n;

	if (!body)
		abort();
	snprintf(body, len, "{\"events\":[%s]}", events_json);
	post_events(&r, service.token, body);
	status = r.status;
	EXPECT(r.status == 202 && itest_int(r.json, "accepted", &n) && itest_nmembers(r.json) == 1,
	       "events: want 202 {\"accepted\":n}, got %ld %.300s", r.status, r.body);
	itest_resp_fini(&r);
	free(body);
	return status;
}

#define NEV 200

/* A batch of known response times: avg exact to the microsecond, max
 * exact, p95 within the histogram's 6.25 %; errors = status >= 500; a
 * replayed batch counts once. */
static void test_events_end_to_end(void)
{
	struct itest_key k;
	struct itest_resp r;
	char owner[128], path[512], ts[40], from[40], to[40], one[512];
	int64_t us[NEV], sorted[NEV], sum = 0, max = 0, bucket, want, ms;
	size_t cap = NEV * 400 + 1024, len = 0;
	char *events = malloc(cap);
	json_object *row;
	int i, errors = 0;

	if (!events)
		abort();
	owner_id(owner, sizeof owner, "events");
	if (itest_key_create(&k, owner, itest_big_tier(), NULL, NULL) != 0) {
		free(events);
		return;
	}
	/* One minute two hours back, the events inside it. */
	bucket = (wall_ms() - 2 * HOUR_MS) / MINUTE_MS * MINUTE_MS;
	fmt_ms(from, sizeof from, bucket);
	fmt_ms(to, sizeof to, bucket + MINUTE_MS);
	for (i = 0; i < NEV; i++) {
		/* Spread over three orders of magnitude, with microsecond parts. */
		us[i] = 250 + (int64_t)i * i * 7919 % 400000 + (i % 7) * 1001;
		sum += us[i];
		if (us[i] > max)
			max = us[i];
		if (i % 10 == 3)
			errors++;
		fmt_ms(ts, sizeof ts, bucket + (i * 250) % MINUTE_MS);
		len += (size_t)snprintf(events + len, cap - len,
					"%s{\"id\":\"it%s-%s-%d\",\"key_id\":%s,\"endpoint\":\"GET /e\","
					"\"status\":%d,\"response_ms\":%" PRId64 ".%03" PRId64 ",\"ts\":\"%s\"}",
					i ? "," : "", itest_suffix(), k.id, i, itest_q(k.id),
					i % 10 == 3 ? 503 : 200, us[i] / 1000, us[i] % 1000, ts);
	}
	if (send_batch(events) != 202)
		goto out;
	snprintf(path, sizeof path, "/v1/keys/%s/usage?from=%s&to=%s", k.id, from, to);
	want = NEV;
	ms = wait_for(&r, path, reported_is, &want);
	printf("\n    usage: %d events appeared after %" PRId64 " ms\n", NEV, ms);
	EXPECT(ms >= 0 && ms < APPEAR_MAX_MS, "events took %" PRId64 " ms to appear: %.300s", ms,
	       r.body);
	row = itest_idx(itest_get(r.json, "data"), 0);
	expect_row(&r, row, "events minute", 0, 0, NEV, errors);
	EXPECT(itest_len(itest_get(r.json, "data")) == 1, "one bucket: %.300s", r.body);
	if (row) {
		double avg = json_object_get_double(itest_get(row, "response_ms.avg"));
		double mx = json_object_get_double(itest_get(row, "response_ms.max"));
		double p95 = json_object_get_double(itest_get(row, "response_ms.p95"));
		double want_avg = (double)((sum + NEV / 2) / NEV) / 1000.0;
		double true_p95;
		int rank;

		memcpy(sorted, us, sizeof us);
		qsort(sorted, NEV, sizeof sorted[0], itest_cmp_i64);
		rank = (95 * NEV + 99) / 100; /* nearest rank: ceil(0.95 n) */
		true_p95 = (double)sorted[rank - 1] / 1000.0;
		EXPECT(avg > want_avg - 0.0005 && avg < want_avg + 0.0005,
		       "avg %.4f ms, want %.3f ms exactly", avg, want_avg);
		EXPECT(mx > (double)max / 1000.0 - 0.0005 && mx < (double)max / 1000.0 + 0.0005,
		       "max %.4f ms, want %.3f ms exactly", mx, (double)max / 1000.0);
		EXPECT(p95 >= true_p95 * 0.9375 && p95 <= true_p95 * 1.0625,
		       "p95 %.3f ms, true p95 %.3f ms: more than 6.25 %% off", p95, true_p95);
		printf("    usage: avg %.3f ms (exact %.3f), p95 %.3f ms (true %.3f), max %.3f ms\n",
		       avg, want_avg, p95, true_p95, mx);
	}
	itest_resp_fini(&r);

	/* The same batch again plus one new event, in one message: when the new
	 * one is counted, the replayed ones have been seen and must not count. */
	fmt_ms(ts, sizeof ts, bucket + 59000);
	snprintf(one, sizeof one, ",{\"id\":\"it%s-%s-new\",\"key_id\":%s,\"status\":200,"
		 "\"response_ms\":1,\"ts\":\"%s\",\"endpoint\":\"GET /e\"}",
		 itest_suffix(), k.id, itest_q(k.id), ts);
	if (len + strlen(one) + 1 < cap)
		strcat(events, one);
	if (send_batch(events) != 202)
		goto out;
	want = NEV + 1;
	ms = wait_for(&r, path, reported_is, &want);
	EXPECT(ms >= 0, "the replay batch's new event did not appear: %.300s", r.body);
	row = itest_idx(itest_get(r.json, "data"), 0);
	expect_row(&r, row, "after replay", 0, 0, NEV + 1, errors);
	itest_resp_fini(&r);
out:
	free(events);
}

/* Events placed in known minutes, hours and days: the buckets and their
 * sums at each granularity, group_by=endpoint, from inclusive and to
 * exclusive. */
static void test_events_granularity(void)
{
	struct itest_key k;
	struct itest_resp r;
	char owner[128], path[768], ev[8192], ts[40], from[40], to[40], b[40];
	/* Offsets from a day start two days back, minutes apart. */
	static const struct {
		int64_t at;
		const char *endpoint;
		int status;
	} evs[] = {
		{ 10 * HOUR_MS, "GET /a", 200 },
		{ 10 * HOUR_MS + 30000, "GET /a", 500 },
		{ 10 * HOUR_MS + MINUTE_MS, "POST /b", 200 },
		{ 10 * HOUR_MS + 59 * MINUTE_MS, "GET /a", 404 },
		{ 11 * HOUR_MS, "GET /a", 200 },
		{ DAY_MS + 10 * HOUR_MS, "POST /b", 599 },
	};
	int64_t day0 = (wall_ms() - 2 * DAY_MS) / DAY_MS * DAY_MS, want = 6, ms;
	size_t i, len = 0, n = sizeof evs / sizeof evs[0];

	owner_id(owner, sizeof owner, "gran");
	if (itest_key_create(&k, owner, itest_big_tier(), NULL, NULL) != 0)
		return;
	for (i = 0; i < n; i++) {
		fmt_ms(ts, sizeof ts, day0 + evs[i].at);
		len += (size_t)snprintf(ev + len, sizeof ev - len,
					"%s{\"id\":\"it%s-%s-g%zu\",\"key_id\":%s,\"endpoint\":%s,"
					"\"status\":%d,\"response_ms\":%zu,\"ts\":\"%s\"}",
					i ? "," : "", itest_suffix(), k.id, i, itest_q(k.id),
					itest_q(evs[i].endpoint), evs[i].status, i + 1, ts);
	}
	if (send_batch(ev) != 202)
		return;
	fmt_ms(from, sizeof from, day0);
	fmt_ms(to, sizeof to, day0 + 2 * DAY_MS);
	snprintf(path, sizeof path, "/v1/keys/%s/usage?granularity=day&from=%s&to=%s", k.id,
		 from, to);
	ms = wait_for(&r, path, reported_is, &want);
	EXPECT(ms >= 0, "events did not appear: %.300s", r.body);
	EXPECT(itest_len(itest_get(r.json, "data")) == 2, "two days: %.400s", r.body);
	fmt_ms(b, sizeof b, day0);
	expect_row(&r, itest_idx(itest_get(r.json, "data"), 0), "day 1", 0, 0, 5, 1);
	EXPECT_STR(&r, itest_idx(itest_get(r.json, "data"), 0), "ts", b);
	fmt_ms(b, sizeof b, day0 + DAY_MS);
	expect_row(&r, itest_idx(itest_get(r.json, "data"), 1), "day 2", 0, 0, 1, 1);
	EXPECT_STR(&r, itest_idx(itest_get(r.json, "data"), 1), "ts", b);
	itest_resp_fini(&r);

	/* Hours: 10:00 holds 4 (one error), 11:00 one, the next day's 10:00 one. */
	snprintf(path, sizeof path, "/v1/keys/%s/usage?granularity=hour&from=%s&to=%s", k.id,
		 from, to);
	itest_call(&r, "GET", path, viewer.token, NULL);
	EXPECT(itest_len(itest_get(r.json, "data")) == 3, "three hours: %.600s", r.body);
	fmt_ms(b, sizeof b, day0 + 10 * HOUR_MS);
	expect_row(&r, find_row(itest_get(r.json, "data"), b, NULL), "hour 10", 0, 0, 4, 1);
	fmt_ms(b, sizeof b, day0 + 11 * HOUR_MS);
	expect_row(&r, find_row(itest_get(r.json, "data"), b, NULL), "hour 11", 0, 0, 1, 0);
	itest_resp_fini(&r);

	/* Minutes of hour 10, by endpoint, in ts then endpoint order; to is
	 * exclusive (11:00 is left out), from inclusive. */
	fmt_ms(from, sizeof from, day0 + 10 * HOUR_MS);
	fmt_ms(to, sizeof to, day0 + 11 * HOUR_MS);
	snprintf(path, sizeof path, "/v1/keys/%s/usage?group_by=endpoint&from=%s&to=%s", k.id,
		 from, to);
	itest_call(&r, "GET", path, viewer.token, NULL);
	if (EXPECT_STATUS(&r, 200)) {
		json_object *data = itest_get(r.json, "data");
		json_object *row0 = itest_idx(data, 0);
		int64_t avg_us;

		EXPECT(itest_len(data) == 3, "three minute rows: %.600s", r.body);
		EXPECT_STR(&r, row0, "ts", from);
		EXPECT_STR(&r, row0, "endpoint", "GET /a");
		expect_row(&r, row0, "10:00 GET /a", 0, 0, 2, 1);
		/* 1 ms and 2 ms: avg 1.5, max 2. */
		avg_us = (int64_t)(json_object_get_double(itest_get(row0, "response_ms.avg")) * 1000 + 0.5);
		EXPECT(avg_us == 1500, "avg of 1 and 2 ms: %.300s", r.body);
		fmt_ms(b, sizeof b, day0 + 10 * HOUR_MS + MINUTE_MS);
		expect_row(&r, find_row(data, b, "POST /b"), "10:01 POST /b", 0, 0, 1, 0);
		fmt_ms(b, sizeof b, day0 + 10 * HOUR_MS + 59 * MINUTE_MS);
		expect_row(&r, find_row(data, b, "GET /a"), "10:59 GET /a", 0, 0, 1, 0);
	}
	itest_resp_fini(&r);
}

/* ---- the hourly rollup: hours and days are sums of minutes ---- */

#define ROLL_ROWS 64

/* A bucket of a usage answer: (ts, endpoint) and its figures. */
struct roll_row {
	int64_t ts, allowed, denied, reported, errors, max_us;
	char endpoint[64];
};

struct roll {
	struct roll_row row[ROLL_ROWS];
	size_t n;
};

/* An event of the rollup test, placed at an offset from a day start. */
struct roll_event {
	int64_t at;
	const char *endpoint;
	int status;
	int64_t us;
};

static const struct roll_event roll_events[] = {
	{ 22 * HOUR_MS + 10000, "GET /r", 200, 1500 },
	{ 22 * HOUR_MS + 40000, "POST /w", 500, 250000 },
	{ 22 * HOUR_MS + MINUTE_MS, "GET /r", 200, 12000 },
	{ 22 * HOUR_MS + 30 * MINUTE_MS, "GET /r", 503, 800 },
	{ 22 * HOUR_MS + 59 * MINUTE_MS, "POST /w", 200, 45000 },
	{ 23 * HOUR_MS, "GET /r", 200, 3000 },
	{ 23 * HOUR_MS + 17 * MINUTE_MS, "GET /r", 200, 99000 },
	{ 23 * HOUR_MS + 59 * MINUTE_MS + 59000, "POST /w", 200, 7000 },
	{ 24 * HOUR_MS, "GET /r", 200, 2200 },
	{ 24 * HOUR_MS + 5 * MINUTE_MS, "POST /w", 502, 61000 },
	{ 25 * HOUR_MS + 10 * MINUTE_MS, "GET /r", 200, 1000 },
	{ 25 * HOUR_MS + 10 * MINUTE_MS + 30000, "GET /r", 200, 123456 },
};
#define ROLL_NEV (sizeof roll_events / sizeof roll_events[0])

static int64_t parse_ts(const char *s)
{
	struct tm tm;
	int ms = 0;

	memset(&tm, 0, sizeof tm);
	if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

/* Adds the rows of a usage answer into buckets of unit_ms (UTC hours and
 * days have a fixed length).  Returns -1 when a row is malformed. */
static int roll_fold(struct roll *g, const struct itest_resp *r, int64_t unit_ms)
{
	json_object *data = itest_get(r->json, "data");
	size_t i, j;

	for (i = 0; i < itest_len(data); i++) {
		json_object *o = itest_idx(data, i);
		const char *ep = itest_str(o, "endpoint");
		int64_t ts = parse_ts(itest_str(o, "ts")), a = -1, d = -1, rep = -1, e = -1, mx = -1;
		struct roll_row *w;

		if (ts < 0 || !itest_int(o, "allowed", &a) || !itest_int(o, "denied", &d) ||
		    !itest_int(o, "reported", &rep) || !itest_int(o, "errors", &e))
			return -1;
		if (!itest_is_null(o, "response_ms"))
			mx = (int64_t)(json_object_get_double(itest_get(o, "response_ms.max")) * 1000 + 0.5);
		ts = ts / unit_ms * unit_ms;
		for (j = 0; j < g->n; j++)
			if (g->row[j].ts == ts && strcmp(g->row[j].endpoint, ep ? ep : "") == 0)
				break;
		if (j == g->n) {
			if (g->n == ROLL_ROWS)
				return -1;
			w = &g->row[g->n++];
			memset(w, 0, sizeof *w);
			w->ts = ts;
			w->max_us = -1;
			snprintf(w->endpoint, sizeof w->endpoint, "%s", ep ? ep : "");
		}
		w = &g->row[j];
		w->allowed += a;
		w->denied += d;
		w->reported += rep;
		w->errors += e;
		if (mx > w->max_us)
			w->max_us = mx;
	}
	return 0;
}

/* The p95 (nearest rank, in us) of the test's events in [lo, hi) on endpoint
 * (NULL: any); -1 when none. */
static int64_t roll_p95(int64_t day0, int64_t lo, int64_t hi, const char *endpoint)
{
	int64_t v[ROLL_NEV];
	size_t i, n = 0;

	for (i = 0; i < ROLL_NEV; i++) {
		int64_t minute = (day0 + roll_events[i].at) / MINUTE_MS * MINUTE_MS;

		if (minute >= lo && minute < hi &&
		    (!endpoint || !*endpoint || strcmp(endpoint, roll_events[i].endpoint) == 0))
			v[n++] = roll_events[i].us;
	}
	if (n == 0)
		return -1;
	qsort(v, n, sizeof v[0], itest_cmp_i64);
	return v[(95 * n + 99) / 100 - 1];
}

/* GET .../usage over [from, to) at unit (and by endpoint when asked) must
 * give exactly the minute buckets summed, and a p95 within 6.25 % of the
 * true one.  Returns the total reported. */
static int64_t roll_compare(const char *key, int64_t day0, int64_t from, int64_t to,
			    const char *unit, int64_t unit_ms, int by_endpoint)
{
	struct itest_resp r;
	struct roll *want = calloc(2, sizeof *want), *got;
	char path[512], f[40], t[40];
	int64_t total = 0;
	size_t i, j;
	int ok;

	if (!want)
		abort();
	got = want + 1;
	fmt_ms(f, sizeof f, from);
	fmt_ms(t, sizeof t, to);
	snprintf(path, sizeof path, "/v1/keys/%s/usage?granularity=minute&from=%s&to=%s%s", key,
		 f, t, by_endpoint ? "&group_by=endpoint" : "");
	itest_call(&r, "GET", path, viewer.token, NULL);
	ok = r.status == 200 && roll_fold(want, &r, unit_ms) == 0;
	EXPECT(ok, "%s: %.300s", path, r.body);
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/keys/%s/usage?granularity=%s&from=%s&to=%s%s", key, unit,
		 f, t, by_endpoint ? "&group_by=endpoint" : "");
	itest_call(&r, "GET", path, viewer.token, NULL);
	ok = r.status == 200 && roll_fold(got, &r, unit_ms) == 0;
	EXPECT(ok && got->n == want->n, "%s: %zu buckets, want %zu: %.600s", path, got->n,
	       want->n, r.body);
	for (i = 0; i < want->n; i++) {
		const struct roll_row *w = &want->row[i], *g;
		json_object *row;
		int64_t p95 = -1, truth;

		total += w->reported;
		for (j = 0; j < got->n; j++)
			if (got->row[j].ts == w->ts && strcmp(got->row[j].endpoint, w->endpoint) == 0)
				break;
		g = j < got->n ? &got->row[j] : NULL;
		if (!EXPECT(g && g->allowed == w->allowed && g->denied == w->denied &&
			    g->reported == w->reported && g->errors == w->errors &&
			    g->max_us == w->max_us,
			    "%s: bucket %zu (%s) differs from its minutes: %.600s", path, i,
			    w->endpoint, r.body))
			continue;
		/* got's rows are the answer's rows, in order (one per bucket). */
		row = itest_idx(itest_get(r.json, "data"), j);
		truth = roll_p95(day0, w->ts > from ? w->ts : from,
				 w->ts + unit_ms < to ? w->ts + unit_ms : to, w->endpoint);
		if (!itest_is_null(row, "response_ms.p95"))
			p95 = (int64_t)(json_object_get_double(itest_get(row, "response_ms.p95")) * 1000 + 0.5);
		EXPECT(truth < 0 || (p95 * 16 >= truth * 15 && p95 * 16 <= truth * 17),
		       "%s: bucket %zu p95 %" PRId64 " us, true %" PRId64 " us", path, i, p95, truth);
	}
	itest_resp_fini(&r);
	free(want);
	return total;
}

/* Hour and day buckets (read from the hourly rollup for whole hours, from
 * the minutes at unaligned edges) are exactly the sums of the minute
 * buckets, by endpoint too; checks counted now included. */
static void test_usage_rollup(void)
{
	struct itest_key k;
	struct itest_resp r;
	char owner[128], path[512], ev[8192], ts[40], from[40], to[40];
	int64_t day0 = (wall_ms() - 2 * DAY_MS) / DAY_MS * DAY_MS, hour = wall_ms() / HOUR_MS * HOUR_MS;
	int64_t want = (int64_t)ROLL_NEV, checks[2] = { 3, 0 }, ms;
	/* Offsets from day0 of [from, to): aligned, unaligned at both ends
	 * (22:00 out, 25:10 in), inside one hour; and how many events each holds. */
	static const struct { int64_t from, to, events; } win[] = {
		{ 22 * HOUR_MS, 26 * HOUR_MS, 12 },
		{ 22 * HOUR_MS + 30000, 25 * HOUR_MS + 10 * MINUTE_MS + 1, 10 },
		{ 22 * HOUR_MS + MINUTE_MS, 22 * HOUR_MS + 59 * MINUTE_MS, 2 },
	};
	size_t i, len = 0;
	int by;

	owner_id(owner, sizeof owner, "rollup");
	if (itest_key_create(&k, owner, itest_big_tier(), NULL, NULL) != 0)
		return;
	for (i = 0; i < ROLL_NEV; i++) {
		fmt_ms(ts, sizeof ts, day0 + roll_events[i].at);
		len += (size_t)snprintf(ev + len, sizeof ev - len,
					"%s{\"id\":\"it%s-%s-r%zu\",\"key_id\":%s,\"endpoint\":%s,"
					"\"status\":%d,\"response_ms\":%" PRId64 ".%03" PRId64 ",\"ts\":\"%s\"}",
					i ? "," : "", itest_suffix(), k.id, i, itest_q(k.id),
					itest_q(roll_events[i].endpoint), roll_events[i].status,
					roll_events[i].us / 1000, roll_events[i].us % 1000, ts);
	}
	if (send_batch(ev) != 202)
		return;
	for (i = 0; i < 3; i++) {
		check_on(&r, k.key, "GET /r");
		EXPECT_STATUS(&r, 200);
		itest_resp_fini(&r);
	}
	fmt_ms(from, sizeof from, day0);
	fmt_ms(to, sizeof to, day0 + 2 * DAY_MS);
	snprintf(path, sizeof path, "/v1/keys/%s/usage?granularity=day&from=%s&to=%s", k.id, from, to);
	ms = wait_for(&r, path, reported_is, &want);
	EXPECT(ms >= 0, "events did not appear: %.300s", r.body);
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/keys/%s/usage?granularity=hour", k.id);
	EXPECT(wait_for(&r, path, counts_are, checks) >= 0, "checks did not appear: %.300s", r.body);
	itest_resp_fini(&r);

	for (i = 0; i < sizeof win / sizeof win[0]; i++)
		for (by = 0; by <= 1; by++) {
			int64_t from_ms = day0 + win[i].from, to_ms = day0 + win[i].to;

			EXPECT(roll_compare(k.id, day0, from_ms, to_ms, "hour", HOUR_MS, by) == win[i].events,
			       "window %zu: hours hold the wrong events", i);
			EXPECT(roll_compare(k.id, day0, from_ms, to_ms, "day", DAY_MS, by) == win[i].events,
			       "window %zu: days hold the wrong events", i);
		}
	/* The checks made now: the current hour whole (from the rollup), and
	 * from an unaligned start an hour back. */
	roll_compare(k.id, day0, hour - HOUR_MS, hour + HOUR_MS, "hour", HOUR_MS, 1);
	roll_compare(k.id, day0, hour - HOUR_MS + 1234, hour + HOUR_MS, "day", DAY_MS, 0);
}

int itest_register_usage(void)
{
	CU_pSuite s = CU_add_suite("usage", suite_init, suite_clean);

	if (!s)
		return -1;
	if (!CU_add_test(s, "events: each invalid field", test_events_invalid_fields) ||
	    !CU_add_test(s, "events: bounds accepted", test_events_bounds_accepted) ||
	    !CU_add_test(s, "events: the first invalid event wins", test_events_first_invalid_wins) ||
	    !CU_add_test(s, "events: batch shape, size, 413", test_events_batch_shape) ||
	    !CU_add_test(s, "usage: roles", test_usage_roles) ||
	    !CU_add_test(s, "usage: query parameters", test_usage_params) ||
	    !CU_add_test(s, "usage: unknown key, owner without keys", test_usage_not_found) ||
	    !CU_add_test(s, "usage: checks end to end", test_usage_checks_end_to_end) ||
	    !CU_add_test(s, "usage: events end to end, replay", test_events_end_to_end) ||
	    !CU_add_test(s, "usage: events by minute, hour, day", test_events_granularity) ||
	    !CU_add_test(s, "usage: hours and days are sums of minutes", test_usage_rollup))
		return -1;
	return 0;
}
