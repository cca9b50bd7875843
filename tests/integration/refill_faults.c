/*
 * refill_faults.c - see refill_faults.h.
 *
 * The clock: a daily refill happens at UTC midnight, which a test cannot
 * wait for. Instead the test moves the key's state back one day where it is
 * stored -- the refill interval of the balance in Redis (field ri of the
 * state hash) and in PostgreSQL (key_credit_use.ri, and keys.remaining_at,
 * when the balance was set) -- which is exactly what the stores hold when
 * the last check was yesterday. The next check then runs the same script,
 * with the same Redis time, as the first check after a real midnight.
 */
#include "refill_faults.h"

#include <curl/curl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "itest_fixture.h"
#include "itest_http.h"

#define DAY_MS INT64_C(86400000)

static int (*cli)(const char *args);

/* The wall clock (the refill intervals are UTC days). */
static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- PostgreSQL, as the stack's owner ---- */

static PGconn *pg_open(void)
{
	const char *ci = getenv("TOLLGATE_PG_CONNINFO");
	if (!EXPECT(ci && *ci, "TOLLGATE_PG_CONNINFO is not set"))
		return NULL;
	PGconn *pg = PQconnectdb(ci);
	if (!EXPECT(PQstatus(pg) == CONNECTION_OK, "cannot connect to PostgreSQL: %s",
		    PQerrorMessage(pg))) {
		PQfinish(pg);
		return NULL;
	}
	return pg;
}

/* Runs sql with $1 = key id; returns the first value as an integer (-1 when
 * there is no row or it failed, reported). */
static int64_t pg_int(PGconn *pg, const char *sql, const char *id)
{
	const char *p[] = {id};
	PGresult *r = PQexecParams(pg, sql, 1, NULL, p, NULL, NULL, 0);
	int64_t v = -1;
	int st = PQresultStatus(r);
	if (EXPECT(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK, "%s: %s", sql,
		   PQresultErrorMessage(r)) &&
	    st == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

/* ---- the key and its checks ---- */

static int make_refill_key(struct itest_key *k, const char *tag, const char *refill)
{
	char owner[64], extra[256];
	snprintf(owner, sizeof owner, "refill-%s-%s", tag, itest_suffix());
	snprintf(extra, sizeof extra, "\"refill\":%s", refill);
	return itest_key_create(k, owner, itest_big_tier(), extra, NULL);
}

/* One check: status, remaining credits (-1 when absent) and the denial's
 * limit and retry time (-1 when absent). */
static long check(const struct itest_key *k, int64_t *remaining, char *limit, int64_t *retry)
{
	struct itest_resp r;
	itest_check(&r, itest_admin_token(), k->key);
	long st = r.status;
	const char *l = itest_str(r.json, "limit");
	if (!itest_int(r.json, "remaining", remaining))
		*remaining = -1;
	if (limit)
		snprintf(limit, 32, "%s", l ? l : "");
	if (retry && !itest_int(r.json, "retry_after_ms", retry))
		*retry = -1;
	itest_resp_fini(&r);
	return st;
}

static int64_t shown_remaining(const struct itest_key *k)
{
	char path[256];
	struct itest_resp r;
	int64_t v = -1;
	snprintf(path, sizeof path, "/v1/keys/%s", k->id);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	if (!itest_int(r.json, "remaining", &v))
		v = -1;
	itest_resp_fini(&r);
	return v;
}

/* Waits, at most 20 s, until PostgreSQL has recorded `want` credits of the
 * key's current balance in today's refill interval (billingd, through the
 * usage pipeline). */
static int credits_recorded(PGconn *pg, const struct itest_key *k, int64_t want)
{
	char sql[512];
	int64_t seen = -1;
	snprintf(sql, sizeof sql,
		 "SELECT coalesce(sum(c.used), 0) FROM key_credit_use c"
		 " JOIN keys k ON k.id = c.key_id AND c.rv = k.remaining_version"
		 " WHERE c.key_id = $1 AND c.ri = tg_refill_start(k.refill, now())");
	for (int64_t t0 = itest_now_ms(); itest_now_ms() - t0 < 20000; itest_sleep_ms(200)) {
		seen = pg_int(pg, sql, k->id);
		if (seen == want)
			return 1;
	}
	return EXPECT(0, "key_credit_use of %s holds %lld for today after 20 s, want %lld", k->id,
		      (long long)seen, (long long)want);
}

/* Moves the key's stored balance back one day: in Redis the interval of
 * its live balance, in PostgreSQL the interval of the recorded use and the
 * time the balance was set. */
static int back_one_day(PGconn *pg, const struct itest_key *k, int redis_too)
{
	int64_t today = wall_ms() / DAY_MS * DAY_MS;
	char args[256];
	if (redis_too) {
		snprintf(args, sizeof args, "HSET tg:{%s}:s ri %lld", k->id,
			 (long long)(today - DAY_MS));
		if (!EXPECT(cli(args) == 0, "redis-cli %s failed", args))
			return 0;
	}
	return pg_int(pg, "UPDATE key_credit_use SET ri = ri - 86400000 WHERE key_id = $1", k->id) ==
		       -1 &&
	       pg_int(pg, "UPDATE keys SET remaining_at = remaining_at - interval '1 day'"
			  " WHERE id = $1", k->id) == -1;
}

/* ---- many clients at the boundary ---- */

enum { CLIENTS = 16, PER_CLIENT = 6 };

struct client {
	const char *key;
	pthread_t thread;
	int started;
	long allowed, refused, other;
	char first_bad[256];
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int go;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
	char *buf = ud;
	size_t len = strlen(buf), k = size * n, room = 1023 - len;
	memcpy(buf + len, p, k < room ? k : room);
	buf[len + (k < room ? k : room)] = '\0';
	return size * n;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	char url[512], auth[512], body[512], out[1024];
	struct curl_slist *hdr = NULL;
	CURL *h = curl_easy_init();
	snprintf(url, sizeof url, "%s/v1/check", getenv("TOLLGATE_URL"));
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", itest_admin_token());
	snprintf(body, sizeof body, "{\"key\":\"%s\"}", c->key);
	hdr = curl_slist_append(hdr, auth);
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	itest_tls(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
	pthread_mutex_lock(&gate.mu);
	while (!gate.go)
		pthread_cond_wait(&gate.cv, &gate.mu);
	pthread_mutex_unlock(&gate.mu);
	for (int i = 0; i < PER_CLIENT; i++) {
		long status = 0;
		out[0] = '\0';
		if (curl_easy_perform(h) == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		if (status == 200) {
			c->allowed++;
		} else if (status == 429 && strstr(out, "\"limit\":\"remaining\"")) {
			c->refused++;
		} else {
			c->other++;
			if (!c->first_bad[0])
				snprintf(c->first_bad, sizeof c->first_bad, "%ld %.200s", status, out);
		}
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return NULL;
}

/* CLIENTS clients check k PER_CLIENT times each, all released together;
 * returns the number allowed. */
static long hammer(const struct itest_key *k, long *refused)
{
	struct client c[CLIENTS];
	memset(c, 0, sizeof c);
	gate.go = 0;
	for (int i = 0; i < CLIENTS; i++) {
		c[i].key = k->key;
		c[i].started = pthread_create(&c[i].thread, NULL, client_main, &c[i]) == 0;
		EXPECT(c[i].started, "cannot start client %d", i);
	}
	pthread_mutex_lock(&gate.mu);
	gate.go = 1;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.mu);
	long allowed = 0;
	*refused = 0;
	for (int i = 0; i < CLIENTS; i++) {
		if (!c[i].started)
			continue;
		pthread_join(c[i].thread, NULL);
		allowed += c[i].allowed;
		*refused += c[i].refused;
		EXPECT(c[i].other == 0, "client %d: %ld answers neither 200 nor 429 remaining: %s", i,
		       c[i].other, c[i].first_bad);
	}
	return allowed;
}

/* ---- the tests ---- */

/* 3 credits refilled to 3 every day: refused after 3 checks (retry at the
 * next UTC midnight); at the boundary, 96 concurrent checks are allowed 3
 * times exactly; PostgreSQL records them against the new interval. */
static void test_refill_boundary(void)
{
	struct itest_key k;
	int64_t rem = -1, retry = -1;
	char limit[32];
	PGconn *pg = pg_open();
	if (!pg || make_refill_key(&k, "boundary", "{\"amount\":3,\"interval\":\"day\"}") != 0)
		goto out;
	for (int i = 0; i < 3; i++) {
		long st = check(&k, &rem, NULL, NULL);
		EXPECT(st == 200 && rem == 2 - i, "check %d: want 200 remaining %d, got %ld %lld", i + 1,
		       2 - i, st, (long long)rem);
	}
	long st = check(&k, &rem, limit, &retry);
	int64_t to_midnight = DAY_MS - wall_ms() % DAY_MS;
	EXPECT(st == 429 && strcmp(limit, "remaining") == 0,
	       "4th check of 3 credits: want 429 remaining, got %ld %s", st, limit);
	EXPECT(retry > to_midnight - 5000 && retry <= to_midnight + 1000,
	       "retry_after_ms %lld, want about %lld (the next UTC midnight)", (long long)retry,
	       (long long)to_midnight);
	if (!credits_recorded(pg, &k, 3) || !back_one_day(pg, &k, 1))
		goto out;
	/* A refused check may be remembered by its process until its cache
	 * TTL (at most 1 s): let that pass, so every check below asks Redis. */
	itest_sleep_ms(1100);
	long refused = 0, allowed = hammer(&k, &refused);
	EXPECT(allowed == 3, "at the boundary %ld of %d concurrent checks were allowed, want 3",
	       allowed, CLIENTS * PER_CLIENT);
	EXPECT(allowed + refused == CLIENTS * PER_CLIENT, "%ld allowed + %ld refused of %d", allowed,
	       refused, CLIENTS * PER_CLIENT);
	/* billingd keeps the new interval's use only. */
	if (credits_recorded(pg, &k, 3)) {
		int64_t ri = pg_int(pg, "SELECT ri FROM key_credit_use WHERE key_id = $1", k.id);
		int64_t today = wall_ms() / DAY_MS * DAY_MS;
		EXPECT(ri == today, "key_credit_use.ri is %lld, want today's start %lld",
		       (long long)ri, (long long)today);
	}
	EXPECT(shown_remaining(&k) == 0, "GET shows remaining %lld, want 0",
	       (long long)shown_remaining(&k));
out:
	PQfinish(pg);
}

/* 5 credits a day: 2 used, then FLUSHALL mid-interval -- the rebuilt
 * balance is 5 - 2; the same use recorded for yesterday, FLUSHALL again --
 * today's balance is the full amount. */
static void test_refill_flush(void)
{
	struct itest_key k;
	int64_t rem = -1;
	PGconn *pg = pg_open();
	if (!pg || make_refill_key(&k, "flush", "{\"amount\":5,\"interval\":\"day\"}") != 0)
		goto out;
	for (int i = 0; i < 2; i++)
		EXPECT(check(&k, &rem, NULL, NULL) == 200, "check %d of 5 credits refused", i + 1);
	if (!credits_recorded(pg, &k, 2))
		goto out;
	EXPECT(cli("FLUSHALL") == 0, "FLUSHALL failed");
	EXPECT(shown_remaining(&k) == 3, "GET after FLUSHALL shows %lld, want 3",
	       (long long)shown_remaining(&k));
	long st = check(&k, &rem, NULL, NULL);
	EXPECT(st == 200 && rem == 2, "after FLUSHALL: want 200 remaining 2, got %ld %lld", st,
	       (long long)rem);
	if (!credits_recorded(pg, &k, 3) || !back_one_day(pg, &k, 0))
		goto out;
	EXPECT(cli("FLUSHALL") == 0, "FLUSHALL failed");
	EXPECT(shown_remaining(&k) == 5, "GET after a day and FLUSHALL shows %lld, want 5",
	       (long long)shown_remaining(&k));
	st = check(&k, &rem, NULL, NULL);
	EXPECT(st == 200 && rem == 4, "the next day after FLUSHALL: want 200 remaining 4, got %ld %lld",
	       st, (long long)rem);
out:
	PQfinish(pg);
}

/* PATCH remaining on a refilling key: a new balance for the rest of the
 * interval; PATCH refill null: the credits left stay, no more refills. */
static void test_refill_patch(void)
{
	struct itest_key k;
	int64_t rem = -1;
	char limit[32];
	PGconn *pg = pg_open();
	if (!pg || make_refill_key(&k, "patch", "{\"amount\":4,\"interval\":\"month\","
					       "\"day_of_month\":28}") != 0)
		goto out;
	EXPECT(check(&k, &rem, NULL, NULL) == 200 && rem == 3, "first check: remaining %lld",
	       (long long)rem);
	if (itest_key_patch(k.id, "{\"remaining\":1}") != 0)
		goto out;
	EXPECT(check(&k, &rem, NULL, NULL) == 200 && rem == 0, "after PATCH 1: remaining %lld",
	       (long long)rem);
	long st = check(&k, &rem, limit, NULL);
	EXPECT(st == 429 && strcmp(limit, "remaining") == 0, "after 1 credit: %ld %s", st, limit);
	if (!credits_recorded(pg, &k, 1))
		goto out;
	if (itest_key_patch(k.id, "{\"refill\":null}") != 0)
		goto out;
	EXPECT(shown_remaining(&k) == 0, "after refill null: remaining %lld, want 0",
	       (long long)shown_remaining(&k));
	EXPECT(pg_int(pg, "SELECT count(*) FROM keys WHERE id = $1 AND refill IS NULL", k.id) == 1,
	       "refill still stored after PATCH null");
out:
	PQfinish(pg);
}

/* Sets the one window of tier to per key or per owner. */
static int tier_per(const char *tier, const char *per)
{
	char path[128], body[256];
	struct itest_resp r;
	snprintf(path, sizeof path, "/v1/tiers/%s", tier);
	snprintf(body, sizeof body, "{\"limits\":[{\"name\":\"per_minute\",\"window_s\":60,"
		 "\"limit\":100000,\"per\":\"%s\"}]}", per);
	itest_call(&r, "PATCH", path, itest_admin_token(), body);
	int ok = EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	/* Every responder has read the tier again after at most 1 s. */
	itest_sleep_ms(1100);
	return ok;
}

/* A tier switching its window to per owner and back moves the keys' state
 * between the key's hash tag and the owner's: credits carry over each way
 * (rebuilt from PostgreSQL, the state left behind emptied). */
static void test_per_switch(void)
{
	struct itest_key k;
	struct itest_resp r;
	char tier[64], owner[64], body[256];
	int64_t rem = -1;
	PGconn *pg = pg_open();
	snprintf(tier, sizeof tier, "fl%s-per", itest_suffix());
	snprintf(body, sizeof body, "{\"name\":\"%s\",\"limits\":[{\"name\":\"per_minute\","
		 "\"window_s\":60,\"limit\":100000}]}", tier);
	itest_call(&r, "POST", "/v1/tiers", itest_admin_token(), body);
	int made = EXPECT_STATUS(&r, 201);
	itest_resp_fini(&r);
	snprintf(owner, sizeof owner, "refill-per-%s", itest_suffix());
	if (!pg || !made || itest_key_create(&k, owner, tier, "\"remaining\":10", NULL) != 0)
		goto out;
	for (int i = 0; i < 3; i++)
		EXPECT(check(&k, &rem, NULL, NULL) == 200, "check %d refused", i + 1);
	EXPECT(rem == 7, "per key: remaining %lld after 3, want 7", (long long)rem);
	if (!credits_recorded(pg, &k, 3) || !tier_per(tier, "owner"))
		goto out;
	long st = check(&k, &rem, NULL, NULL);
	EXPECT(st == 200 && rem == 6, "per owner: want 200 remaining 6, got %ld %lld", st,
	       (long long)rem);
	EXPECT(shown_remaining(&k) == 6, "GET per owner shows %lld, want 6",
	       (long long)shown_remaining(&k));
	if (!credits_recorded(pg, &k, 4) || !tier_per(tier, "key"))
		goto out;
	st = check(&k, &rem, NULL, NULL);
	EXPECT(st == 200 && rem == 5, "per key again: want 200 remaining 5, got %ld %lld", st,
	       (long long)rem);
out:
	PQfinish(pg);
}

void refill_faults_register(CU_pSuite s, int (*redis_cli)(const char *args))
{
	cli = redis_cli;
	CU_add_test(s, "a daily refill at the boundary, concurrent checks", test_refill_boundary);
	CU_add_test(s, "a refilled balance after FLUSHALL", test_refill_flush);
	CU_add_test(s, "PATCH remaining and refill null on a refilling key", test_refill_patch);
	CU_add_test(s, "credits carry over when a tier switches per owner and back",
		    test_per_switch);
}
