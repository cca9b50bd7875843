/*
 * itest_billing.c - billing records and period close, with exact amounts.
 *
 * The current month is billed from real checks (POST /v1/check), which reach
 * PostgreSQL through the usage pipeline within seconds: the tests poll the
 * records until the expected requests appear. Past months cannot have real
 * checks, so the closing tests seed them with libpq (TOLLGATE_PG_CONNINFO):
 * keys made through the API get a created_at and revoked_at in a month of
 * 1990-2020 that no run has closed yet, and usage_minute rows. The suite runs
 * several times against one database; names and owners are unique per run.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <CUnit/CUnit.h>
#include <libpq-fe.h>

#include "itest_fixture.h"
#include "itest_suites.h"

#define POLL_MS 15000

static struct itest_token viewer, operator_tok, billing_tok;
static PGconn *pg;

static int suite_init(void)
{
	const char *ci = getenv("TOLLGATE_PG_CONNINFO");

	if (!ci || !*ci) {
		fprintf(stderr, "itest billing: TOLLGATE_PG_CONNINFO is not set\n");
		return -1;
	}
	pg = PQconnectdb(ci);
	if (PQstatus(pg) != CONNECTION_OK) {
		fprintf(stderr, "itest billing: cannot connect to PostgreSQL: %s", PQerrorMessage(pg));
		return -1;
	}
	if (itest_token_create(&viewer, "viewer") != 0 ||
	    itest_token_create(&operator_tok, "operator") != 0 ||
	    itest_token_create(&billing_tok, "billing") != 0)
		return -1;
	return 0;
}

static int suite_clean(void)
{
	struct itest_token *t[] = { &viewer, &operator_tok, &billing_tok };
	size_t i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++)
		if (t[i]->id[0])
			itest_token_revoke(t[i]);
	PQfinish(pg);
	pg = NULL;
	return 0;
}

/* ---- database helpers (seeding only; every assertion goes over HTTP) ---- */

/* Runs q; returns the result (caller clears) or NULL after a failed assertion. */
static PGresult *sql(const char *q, int n, const char *const *params)
{
	PGresult *res = PQexecParams(pg, q, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (EXPECT(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "SQL failed: %s: %s", q,
		   PQresultErrorMessage(res)))
		return res;
	PQclear(res);
	return NULL;
}

static int sql_do(const char *q, int n, const char *const *params)
{
	PGresult *res = sql(q, n, params);

	PQclear(res);
	return res ? 0 : -1;
}

/* Copies the one value q returns into buf ("" when no row). Returns 0 or -1. */
static int sql_value(char *buf, size_t len, const char *q, int n, const char *const *params)
{
	PGresult *res = sql(q, n, params);

	if (!res)
		return -1;
	snprintf(buf, len, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return 0;
}

/* ---- API helpers ---- */

static void tier_name(char *buf, size_t n, const char *tag)
{
	snprintf(buf, n, "it%s-b%s", itest_suffix(), tag);
}

static void owner_name(char *buf, size_t n, const char *tag)
{
	snprintf(buf, n, "itb-%s-%s", itest_suffix(), tag);
}

/* Creates tier name with quota and price (JSON text or "null") and a window
 * far above anything sent. */
static int tier_create(const char *name, const char *quota, const char *price)
{
	struct itest_resp r;
	char body[1024];
	int ok;

	snprintf(body, sizeof body,
		 "{\"name\":%s,\"limits\":[{\"name\":\"per_second\",\"window_s\":1,"
		 "\"limit\":1000000}],\"quota\":%s,\"price\":%s}", itest_q(name), quota, price);
	itest_call(&r, "POST", "/v1/tiers", itest_admin_token(), body);
	ok = EXPECT_STATUS(&r, 201);
	itest_resp_fini(&r);
	return ok ? 0 : -1;
}

static int tier_price(const char *name, const char *price)
{
	struct itest_resp r;
	char path[128], body[512];
	int ok;

	snprintf(path, sizeof path, "/v1/tiers/%s", name);
	snprintf(body, sizeof body, "{\"price\":%s}", price);
	itest_call(&r, "PATCH", path, itest_admin_token(), body);
	ok = EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	return ok ? 0 : -1;
}

/* GET /v1/billing/records for owner (may be NULL) and period (may be NULL). */
static void records_get(struct itest_resp *r, const char *token, const char *owner,
			const char *period)
{
	char path[1024], esc[600];

	snprintf(path, sizeof path, "/v1/billing/records?limit=1000%s%s%s%s",
		 owner ? "&owner_id=" : "", owner ? itest_escape(owner, esc, sizeof esc) : "",
		 period ? "&period=" : "", period ? period : "");
	itest_call(r, "GET", path, token, NULL);
}

static void close_period(struct itest_resp *r, const char *token, const char *period)
{
	char path[256];

	snprintf(path, sizeof path, "/v1/billing/periods/%s/close", period);
	itest_call(r, "POST", path, token, "");	/* Content-Length: 0 */
}

/* The current UTC month "YYYY-MM". */
static void current_period(char *buf, size_t n)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(buf, n, "%Y-%m", &tm);
}

/* ---- expected records ---- */

struct line {
	const char *key_id, *tier;
	int64_t requests, included, overage_units, base, overage, amount;
};

static json_object *jint(int64_t v)
{
	return json_object_new_int64(v);
}

static int line_cmp(const void *a, const void *b)
{
	return strcmp(((const struct line *)a)->key_id, ((const struct line *)b)->key_id);
}

/* The record the contract defines for these lines (sorted here by key_id);
 * status NULL: either. */
static json_object *record(const char *owner, const char *period, const char *currency,
			   const char *status, struct line *l, size_t n)
{
	json_object *o = json_object_new_object(), *lines = json_object_new_array();
	int64_t req = 0, units = 0, base = 0, over = 0, amount = 0;
	size_t i;

	qsort(l, n, sizeof *l, line_cmp);
	for (i = 0; i < n; i++) {
		json_object *x = json_object_new_object();

		json_object_object_add(x, "key_id", json_object_new_string(l[i].key_id));
		json_object_object_add(x, "tier", json_object_new_string(l[i].tier));
		json_object_object_add(x, "requests", jint(l[i].requests));
		json_object_object_add(x, "included", jint(l[i].included));
		json_object_object_add(x, "overage_units", jint(l[i].overage_units));
		json_object_object_add(x, "base_micros", jint(l[i].base));
		json_object_object_add(x, "overage_micros", jint(l[i].overage));
		json_object_object_add(x, "amount_micros", jint(l[i].amount));
		json_object_array_add(lines, x);
		req += l[i].requests;
		units += l[i].overage_units;
		base += l[i].base;
		over += l[i].overage;
		amount += l[i].amount;
	}
	json_object_object_add(o, "owner_id", json_object_new_string(owner));
	json_object_object_add(o, "period", json_object_new_string(period));
	json_object_object_add(o, "currency", json_object_new_string(currency));
	json_object_object_add(o, "requests", jint(req));
	json_object_object_add(o, "overage_units", jint(units));
	json_object_object_add(o, "base_micros", jint(base));
	json_object_object_add(o, "overage_micros", jint(over));
	json_object_object_add(o, "amount_micros", jint(amount));
	json_object_object_add(o, "status", json_object_new_string(status ? status : "*"));
	json_object_object_add(o, "lines", lines);
	return o;
}

/* got equals want, where want's status "*" accepts open or closed. */
static int record_equal(json_object *got, json_object *want)
{
	const char *ws = itest_str(want, "status"), *gs = itest_str(got, "status");
	json_object *w;
	int eq;

	if (!ws || strcmp(ws, "*") != 0)
		return json_object_equal(got, want);
	if (!gs || (strcmp(gs, "open") != 0 && strcmp(gs, "closed") != 0))
		return 0;
	w = json_object_get(want);
	json_object_object_add(w, "status", json_object_new_string(gs));
	eq = json_object_equal(got, w);
	json_object_object_add(w, "status", json_object_new_string("*"));
	json_object_put(w);
	return eq;
}

/* The array data equals want (an array of records, in order); takes want. */
static int expect_records(const char *what, json_object *data, json_object *want)
{
	size_t i, n = itest_len(want);
	int ok = json_object_is_type(data, json_type_array) && itest_len(data) == n;

	for (i = 0; ok && i < n; i++)
		ok = record_equal(itest_idx(data, i), itest_idx(want, i));
	EXPECT(ok, "%s:\n  got  %s\n  want %s", what,
	       data ? json_object_to_json_string(data) : "(none)", json_object_to_json_string(want));
	json_object_put(want);
	return ok;
}

/* An array of the n records r (taken). */
static json_object *records_of(json_object *const *r, size_t n)
{
	json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_object_array_add(a, r[i]);
	return a;
}

/* ---- tollgatectl ---- */

/* Runs `tollgatectl ARGS` (TOLLGATE_CTL, default build/tollgatectl from the
 * checkout the stack runs the suite in) on the stack's configuration
 * (TOLLGATE_CONFIG), stdout into out. Returns the exit status, -1 when it
 * could not run. The client variables that name configuration keys are
 * removed, as contrib/stack does for tollgatectl. */
static int ctl_run(const char *args, char *out, size_t n)
{
	const char *bin = getenv("TOLLGATE_CTL");
	char cmd[1024];
	size_t len = 0, got;
	FILE *f;
	int st;

	snprintf(cmd, sizeof cmd,
		 "env -u TOLLGATE_REDIS_HOST -u TOLLGATE_REDIS_PORT -u TOLLGATE_AMQP_PORT %s %s"
		 " 2>/dev/null", bin && *bin ? bin : "build/tollgatectl", args);
	out[0] = '\0';
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (len + 1 < n && (got = fread(out + len, 1, n - 1 - len, f)) > 0)
		len += got;
	out[len] = '\0';
	st = pclose(f);
	return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- closing seeded past months ---- */

/* What the seeded tests share: the month M, its neighbours, owners, tiers
 * and keys. */
static struct {
	int ready;
	char m[8], m_prev2[8], m_prev[8], m_next[8];
	char owner[64], owner2[64];
	char t1[40], t2[40], t3[40], t4[40];
	struct itest_key k[9];	/* k[1]..k[8] */
} seed;

#define T1_PRICE(base) \
	"{\"currency\":\"USD\",\"base_micros\":" base ",\"overage_per_1000_micros\":333}"

static int make_seed_tiers(void)
{
	tier_name(seed.t1, sizeof seed.t1, "s1");
	tier_name(seed.t2, sizeof seed.t2, "s2");
	tier_name(seed.t3, sizeof seed.t3, "s3");
	tier_name(seed.t4, sizeof seed.t4, "s4");
	return tier_create(seed.t1, "{\"period\":\"month\",\"included\":100,\"overage\":\"bill\"}",
			   T1_PRICE("1000000")) ||
	       tier_create(seed.t2, "null",
			   "{\"currency\":\"EUR\",\"base_micros\":0,\"overage_per_1000_micros\":1000}") ||
	       tier_create(seed.t3, "null", "null") ||
	       tier_create(seed.t4, "null",
			   "{\"currency\":\"USD\",\"base_micros\":7000,\"overage_per_1000_micros\":0}");
}

/* Picks M: a month of 1990-2020 that, with its two predecessors and its
 * successor, no run has closed, and in which no key is billable; randomly
 * among the latest twelve such, so that runs use the range up slowly
 * (tollgate-billingd closes every month from the oldest key's on). */
static int pick_month(void)
{
	char row[64];

	if (sql_value(row, sizeof row,
		      "SELECT to_char(m, 'YYYY-MM') || ' ' || to_char(m - interval '2 month', 'YYYY-MM')"
		      " || ' ' || to_char(m - interval '1 month', 'YYYY-MM')"
		      " || ' ' || to_char(m + interval '1 month', 'YYYY-MM') FROM ("
		      "  SELECT m FROM generate_series(timestamp '1990-03-01', timestamp '2020-11-01',"
		      "   interval '1 month') m"
		      "  WHERE NOT EXISTS (SELECT 1 FROM billing_periods b WHERE b.period IN"
		      "    (to_char(m - interval '2 month', 'YYYY-MM'), to_char(m - interval '1 month',"
		      "     'YYYY-MM'), to_char(m, 'YYYY-MM'), to_char(m + interval '1 month', 'YYYY-MM')))"
		      "   AND NOT EXISTS (SELECT 1 FROM keys k"
		      "    WHERE k.created_at < (m + interval '1 month') AT TIME ZONE 'UTC'"
		      "     AND (k.revoked_at IS NULL OR k.revoked_at > m AT TIME ZONE 'UTC'))"
		      "  ORDER BY m DESC LIMIT 12) c ORDER BY random() LIMIT 1", 0, NULL) != 0)
		return -1;
	if (!EXPECT(sscanf(row, "%7s %7s %7s %7s", seed.m, seed.m_prev2, seed.m_prev,
			   seed.m_next) == 4,
		    "no month of 1990-2020 is free for the billing tests (got '%s'): the test"
		    " database has been used up; recreate it", row))
		return -1;
	return 0;
}

/* Sets a key's life, as offsets from the start of M (revoked always). */
static int seed_key(const struct itest_key *k, const char *created, const char *revoked)
{
	const char *p[] = { k->id, seed.m, created, revoked };

	return sql_do("UPDATE keys SET created_at = tg_billing_start($2) + $3::interval,"
		      " revoked_at = tg_billing_start($2) + $4::interval, status = 'revoked'"
		      " WHERE id = $1", 4, p);
}

/* One minute bucket of key k at an offset from the start of M. */
static int seed_usage(const struct itest_key *k, const char *at, const char *endpoint,
		      const char *allowed, const char *cost, const char *rate_limited)
{
	const char *p[] = { k->id, seed.m, at, endpoint, allowed, cost, rate_limited };

	return sql_do("INSERT INTO usage_minute (key_id, ts, endpoint, allowed, allowed_cost,"
		      " rate_limited) VALUES ($1, tg_billing_start($2) + $3::interval, $4,"
		      " $5::bigint, $6::bigint, $7::bigint)", 7, p);
}

/* The seeded keys, all revoked by the end of the month after M:
 *   k1 t1 [M start, M end]         102 units in M (60 + 42), 1000 at M end
 *   k2 t1 revoked during M          5 units
 *   k3 t4 in M-2 and M-1 only       (revoked before M: not billed in M)
 *   k4 t2 (EUR, no quota)           3000 units
 *   k5 t3 (no price, no quota)      7 units
 *   k6 t4 created at M end          (billed in M+1 only)
 *   k7 t4 revoked at M start        (billed in M-1 only)
 *   k8 t1, second owner             no usage */
static int seed_month(void)
{
	static const char *const tiers_of[] = { NULL, "1", "1", "4", "2", "3", "4", "4", "1" };
	const char *p[] = { seed.m };
	size_t i;
	int rc = -1;

	owner_name(seed.owner, sizeof seed.owner, "a");
	owner_name(seed.owner2, sizeof seed.owner2, "b");
	for (i = 1; i <= 8; i++) {
		const char *t = tiers_of[i][0] == '1' ? seed.t1 : tiers_of[i][0] == '2' ? seed.t2 :
				tiers_of[i][0] == '3' ? seed.t3 : seed.t4;

		if (itest_key_create(&seed.k[i], i == 8 ? seed.owner2 : seed.owner, t, NULL,
				     NULL) != 0)
			return -1;
	}
	if (pick_month() != 0 || sql_do("BEGIN", 0, NULL) != 0)
		return -1;
	/* Holds M's close lock (the key tg_billing_close takes) for the session,
	 * so that tollgate-billingd, which skips a locked month, neither closes M
	 * half-seeded nor before the open-period tests; test_close releases it. */
	if (sql_do("SELECT pg_advisory_lock(hashtext('tg_billing_close'), hashtext($1))", 1, p) ||
	    sql_do("SELECT tg_usage_partition(tg_billing_start($1) + n * interval '1 month')"
		   " FROM generate_series(-2, 1) n", 1, p) ||
	    seed_key(&seed.k[1], "0", "1 mon") ||
	    seed_key(&seed.k[2], "5 days", "10 days") ||
	    seed_key(&seed.k[3], "-2 mons 3 days", "-1 mons 5 days") ||
	    seed_key(&seed.k[4], "1 day", "1 mon") ||
	    seed_key(&seed.k[5], "0", "20 days") ||
	    seed_key(&seed.k[6], "1 mon", "1 mon 1 day") ||
	    seed_key(&seed.k[7], "-1 mons 1 day", "0") ||
	    seed_key(&seed.k[8], "15 days", "1 mon") ||
	    seed_usage(&seed.k[1], "0", "GET /a", "60", "60", "0") ||
	    seed_usage(&seed.k[1], "2 days 03:04", "POST /b", "21", "42", "0") ||
	    seed_usage(&seed.k[1], "3 days", "GET /a", "0", "0", "500") ||
	    seed_usage(&seed.k[1], "1 mon", "GET /a", "1000", "1000", "0") ||
	    seed_usage(&seed.k[2], "6 days", "GET /a", "5", "5", "9") ||
	    seed_usage(&seed.k[4], "1 day 01:00", "GET /e", "3000", "3000", "0") ||
	    seed_usage(&seed.k[5], "1 day", "GET /x", "7", "7", "0") ||
	    sql_do("COMMIT", 0, NULL))
		goto out;
	rc = 0;
out:
	if (rc != 0)
		PQclear(PQexec(pg, "ROLLBACK"));
	return rc;
}

#define LINE(k, t, req, inc, units, base, over) \
	{ (k).id, (t), (req), (inc), (units), (base), (over), (base) + (over) }

/* The records of M (owner, then owner2) with t1's base price. */
static json_object *month_records(int64_t b, const char *status, int both_owners)
{
	struct line eur[] = { LINE(seed.k[4], seed.t2, 3000, 0, 3000, 0, 3000) };
	struct line usd[] = {
		LINE(seed.k[1], seed.t1, 102, 100, 2, b, 1),	/* ceil(2 * 333 / 1000) */
		LINE(seed.k[2], seed.t1, 5, 100, 0, b, 0),
		LINE(seed.k[5], seed.t3, 7, 0, 7, 0, 0),
	};
	struct line usd2[] = { LINE(seed.k[8], seed.t1, 0, 100, 0, b, 0) };

	json_object *r[] = {
		record(seed.owner, seed.m, "EUR", status, eur, 1),
		record(seed.owner, seed.m, "USD", status, usd, 3),
		both_owners ? record(seed.owner2, seed.m, "USD", status, usd2, 1) : NULL,
	};

	return records_of(r, both_owners ? 3 : 2);
}

static void test_seed(void)
{
	seed.ready = make_seed_tiers() == 0 && seed_month() == 0;
	EXPECT(seed.ready, "seeding a past month failed");
}

/* An ended month that is not closed is open and computed on read, priced by
 * the tiers as they are now. */
static void test_open_past_month(void)
{
	struct itest_resp r;

	if (!seed.ready)
		return;
	records_get(&r, itest_admin_token(), seed.owner, seed.m);
	if (EXPECT_STATUS(&r, 200))
		expect_records("open month, owner a", itest_get(r.json, "data"),
			       month_records(1000000, "open", 0));
	itest_resp_fini(&r);
	/* A price change shows at once in an open period. */
	tier_price(seed.t1, T1_PRICE("1500000"));
	records_get(&r, billing_tok.token, seed.owner, seed.m);
	if (EXPECT_STATUS(&r, 200))
		expect_records("open month after a price change", itest_get(r.json, "data"),
			       month_records(1500000, "open", 0));
	itest_resp_fini(&r);
}

static int audit_count(const char *period)
{
	char path[256];
	json_object *all = NULL;
	int n = -1;

	snprintf(path, sizeof path, "/v1/audit?action=billing.close&resource_id=%s", period);
	if (itest_list_all(path, itest_admin_token(), 1000, 10, &all) >= 0)
		n = (int)itest_len(all);
	json_object_put(all);
	return n;
}

static void test_close(void)
{
	struct itest_resp r, again;
	char out[65536];
	json_object *ctl;
	int rc;

	if (!seed.ready)
		return;
	{
		const char *p[] = { seed.m };

		sql_do("SELECT pg_advisory_unlock(hashtext('tg_billing_close'), hashtext($1))", 1, p);
	}
	close_period(&r, itest_admin_token(), seed.m);
	if (EXPECT_STATUS(&r, 200))
		expect_records("close", itest_get(r.json, "data"), month_records(1500000, "closed", 1));
	EXPECT(audit_count(seed.m) == 1, "close of %s: want one billing.close audit entry, got %d",
	       seed.m, audit_count(seed.m));
	/* Closing again answers the same records and writes nothing. */
	close_period(&again, billing_tok.token, seed.m);
	EXPECT(again.status == 200 && strcmp(again.body, r.body) == 0,
	       "second close differs:\n  first  %.600s\n  second %.600s", r.body, again.body);
	itest_resp_fini(&again);
	/* A later price change does not alter the closed records. */
	tier_price(seed.t1, T1_PRICE("2000000"));
	close_period(&again, itest_admin_token(), seed.m);
	EXPECT(again.status == 200 && strcmp(again.body, r.body) == 0,
	       "close after a price change differs:\n  first  %.600s\n  later  %.600s", r.body,
	       again.body);
	itest_resp_fini(&again);
	/* tollgatectl runs the same close. */
	{
		char args[64];

		snprintf(args, sizeof args, "billing close %s", seed.m);
		rc = ctl_run(args, out, sizeof out);
	}
	ctl = json_tokener_parse(out);
	EXPECT(rc == 0 && ctl && json_object_equal(ctl, r.json),
	       "tollgatectl billing close %s: exit %d, printed %.600s; want %.600s", seed.m, rc, out,
	       r.body);
	json_object_put(ctl);
	EXPECT(audit_count(seed.m) == 1, "closes of a closed period wrote audit entries (%d)",
	       audit_count(seed.m));
	itest_resp_fini(&r);
}

/* Closed records are frozen: neither prices nor late usage change them. */
static void test_closed_is_frozen(void)
{
	struct itest_resp r;

	if (!seed.ready)
		return;
	if (seed_usage(&seed.k[1], "4 days", "GET /late", "50", "50", "0") != 0)
		return;
	records_get(&r, operator_tok.token, seed.owner, seed.m);
	if (EXPECT_STATUS(&r, 200))
		expect_records("closed month after late usage", itest_get(r.json, "data"),
			       month_records(1500000, "closed", 0));
	itest_resp_fini(&r);
	records_get(&r, itest_admin_token(), seed.owner2, seed.m);
	if (EXPECT_STATUS(&r, 200)) {
		json_object *all = month_records(1500000, "closed", 1);

		expect_records("closed month, owner b", itest_get(r.json, "data"),
			       records_of((json_object *[]){ json_object_get(itest_idx(all, 2)) }, 1));
		json_object_put(all);
	}
	itest_resp_fini(&r);
}

/* Without a period filter: every month of the owner, closed or open, in
 * period order; the same through pages of one. */
static void test_list_months(void)
{
	struct line prev2[] = { LINE(seed.k[3], seed.t4, 0, 0, 0, 7000, 0) };
	struct line prev[] = { LINE(seed.k[3], seed.t4, 0, 0, 0, 7000, 0),
			       LINE(seed.k[7], seed.t4, 0, 0, 0, 7000, 0) };
	struct line next[] = { LINE(seed.k[6], seed.t4, 0, 0, 0, 7000, 0) };
	struct itest_resp r;
	json_object *month, *want, *paged = NULL;
	char path[512], esc[256];

	if (!seed.ready)
		return;
	month = month_records(1500000, "closed", 0);
	/* The neighbours may be open, or closed by tollgate-billingd meanwhile. */
	want = records_of((json_object *[]){
		record(seed.owner, seed.m_prev2, "USD", NULL, prev2, 1),
		record(seed.owner, seed.m_prev, "USD", NULL, prev, 2),
		json_object_get(itest_idx(month, 0)), json_object_get(itest_idx(month, 1)),
		record(seed.owner, seed.m_next, "USD", NULL, next, 1) }, 5);
	json_object_put(month);
	records_get(&r, itest_admin_token(), seed.owner, NULL);
	if (EXPECT_STATUS(&r, 200))
		expect_records("all months of owner a", itest_get(r.json, "data"),
			       json_object_get(want));
	EXPECT(itest_is_null(r.json, "next_cursor"), "next_cursor: %.300s", r.body);
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/billing/records?owner_id=%s",
		 itest_escape(seed.owner, esc, sizeof esc));
	EXPECT(itest_list_all(path, billing_tok.token, 1, 10, &paged) == 5,
	       "want 5 pages of one record");
	if (paged)
		expect_records("all months of owner a, paged", paged, json_object_get(want));
	json_object_put(paged);
	json_object_put(want);
}

/* An empty ended month closes to no records, and is then closed: a key
 * added to it later is not billed there. */
static void test_close_empty(void)
{
	const char *p[] = { seed.m_prev2, seed.m_next };
	struct itest_resp r;
	struct itest_key late;
	char e[8] = "", owner[64], closed[8];

	if (!seed.ready)
		return;
	if (sql_value(e, sizeof e,
		      "SELECT p FROM (SELECT to_char(m, 'YYYY-MM') AS p, m"
		      "  FROM generate_series(timestamp '1990-01-01', timestamp '2020-12-01',"
		      "   interval '1 month') m"
		      "  WHERE to_char(m, 'YYYY-MM') NOT BETWEEN $1 AND $2"
		      "   AND NOT EXISTS (SELECT 1 FROM billing_periods b"
		      "    WHERE b.period = to_char(m, 'YYYY-MM'))"
		      "   AND NOT EXISTS (SELECT 1 FROM keys k"
		      "    WHERE k.created_at < (m + interval '1 month') AT TIME ZONE 'UTC'"
		      "     AND (k.revoked_at IS NULL OR k.revoked_at > m AT TIME ZONE 'UTC'))"
		      "  ORDER BY m DESC LIMIT 12) c ORDER BY random() LIMIT 1", 2, p) != 0 ||
	    !EXPECT(e[0], "no empty month of 1990-2020 is left to close"))
		return;
	records_get(&r, itest_admin_token(), NULL, e);
	EXPECT(r.status == 200 && itest_len(itest_get(r.json, "data")) == 0,
	       "empty open month %s: %.300s", e, r.body);
	itest_resp_fini(&r);
	close_period(&r, billing_tok.token, e);
	EXPECT(r.status == 200 && strcmp(r.body, "{\"data\":[]}") == 0,
	       "close of empty month %s: %ld %.300s", e, r.status, r.body);
	itest_resp_fini(&r);
	{
		const char *q[] = { e };

		EXPECT(sql_value(closed, sizeof closed,
				 "SELECT period FROM billing_periods WHERE period = $1", 1, q) == 0 &&
		       strcmp(closed, e) == 0, "month %s is not recorded as closed", e);
	}
	owner_name(owner, sizeof owner, "late");
	if (itest_key_create(&late, owner, seed.t4, NULL, NULL) == 0) {
		const char *q[] = { late.id, e };

		sql_do("UPDATE keys SET created_at = tg_billing_start($2) + interval '2 days',"
		       " revoked_at = tg_billing_start($2) + interval '3 days', status = 'revoked'"
		       " WHERE id = $1", 2, q);
		records_get(&r, itest_admin_token(), NULL, e);
		EXPECT(r.status == 200 && itest_len(itest_get(r.json, "data")) == 0,
		       "closed empty month %s shows a key added later: %.300s", e, r.body);
		itest_resp_fini(&r);
	}
}

static void test_close_refused(void)
{
	static const char *const bad[] = {
		"2026-13", "2026-00", "2026-1", "202611", "2026_11", "abcd-ef", "1969-12",
		"2026-11-01", "%2B2026-11", "2026-1%20", "0000-01", "%C3%A9", "2026-11x",
	};
	struct itest_resp r;
	char now[8], path[128], out[256];
	size_t i;

	current_period(now, sizeof now);
	close_period(&r, itest_admin_token(), now);
	EXPECT_ERROR(&r, 409, "conflict", NULL);
	itest_resp_fini(&r);
	close_period(&r, itest_admin_token(), "9999-12");
	EXPECT_ERROR(&r, 409, "conflict", NULL);
	itest_resp_fini(&r);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		close_period(&r, itest_admin_token(), bad[i]);
		EXPECT_ERROR_CASE(&r, 400, "invalid_argument", "period", bad[i]);
		itest_resp_fini(&r);
		snprintf(path, sizeof path, "/v1/billing/records?period=%s", bad[i]);
		itest_call(&r, "GET", path, itest_admin_token(), NULL);
		EXPECT_ERROR_CASE(&r, 400, "invalid_argument", "period", bad[i]);
		itest_resp_fini(&r);
	}
	close_period(&r, itest_admin_token(), "");
	EXPECT(r.status == 404 || r.status == 400, "close of an empty period: %ld", r.status);
	itest_resp_fini(&r);
	/* The route takes no body but {}. */
	itest_call(&r, "POST", "/v1/billing/periods/2001-01/close", itest_admin_token(),
		   "{\"period\":\"2001-01\"}");
	EXPECT_ERROR(&r, 400, "unknown_field", "period");
	itest_resp_fini(&r);
	{
		char args[64];

		snprintf(args, sizeof args, "billing close %s", now);
		EXPECT(ctl_run(args, out, sizeof out) == 1 && !out[0],
		       "tollgatectl billing close %s (not ended): want exit 1, no output", now);
		EXPECT(ctl_run("billing close 2026-13", out, sizeof out) == 1 && !out[0],
		       "tollgatectl billing close 2026-13: want exit 1, no output");
	}
}

static void test_records_query(void)
{
	static const char *const bad[][2] = {
		{ "limit=0", "limit" }, { "limit=1001", "limit" }, { "limit=x", "limit" },
		{ "cursor=abc", "cursor" }, { "cursor=2026-11.usd.x", "cursor" },
		{ "cursor=2026-13.USD.x", "cursor" }, { "cursor=2026-11.USD.", "cursor" },
		{ "owner_id=", "owner_id" }, { "status=open", "status" },
	};
	struct itest_resp r;
	char path[256];
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(path, sizeof path, "/v1/billing/records?%s", bad[i][0]);
		itest_call(&r, "GET", path, itest_admin_token(), NULL);
		EXPECT_ERROR_CASE(&r, 400, "invalid_argument", bad[i][1], bad[i][0]);
		itest_resp_fini(&r);
	}
	/* An owner without keys has no records. */
	records_get(&r, billing_tok.token, "itb-nobody", NULL);
	EXPECT(r.status == 200 && itest_len(itest_get(r.json, "data")) == 0 &&
	       itest_is_null(r.json, "next_cursor"), "owner without keys: %.300s", r.body);
	itest_resp_fini(&r);
}

static void test_roles(void)
{
	struct itest_resp r;

	records_get(&r, viewer.token, NULL, "2001-01");
	EXPECT_ERROR(&r, 403, "forbidden", NULL);
	itest_resp_fini(&r);
	close_period(&r, viewer.token, "2001-01");
	EXPECT_ERROR(&r, 403, "forbidden", NULL);
	itest_resp_fini(&r);
	close_period(&r, operator_tok.token, "2001-01");
	EXPECT_ERROR(&r, 403, "forbidden", NULL);
	itest_resp_fini(&r);
	records_get(&r, operator_tok.token, NULL, "2001-01");
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	close_period(&r, NULL, "2001-01");
	EXPECT_ERROR(&r, 401, "unauthenticated", NULL);
	itest_resp_fini(&r);
}

/* ---- the current month, from real checks ---- */

static struct {
	char la[40], lb[40], lc[40], lp[40];
	char owner[64], period[8];
	struct itest_key a1, a2, b1, c1, c2, p1;
	int ready;
} live;

/* n checks of key k with cost, each answering want (200 or 429 reason). */
static int check_n(const struct itest_key *k, int n, int cost, long want, const char *reason)
{
	char body[512];
	int i, ok = 1;

	snprintf(body, sizeof body, "{\"key\":%s,\"endpoint\":\"GET /bill\",\"cost\":%d}",
		 itest_q(k->key), cost);
	for (i = 0; i < n && ok; i++) {
		struct itest_resp r;

		itest_call(&r, "POST", "/v1/check", itest_admin_token(), body);
		ok = want == 200 ? EXPECT_STATUS(&r, 200)
				 : EXPECT_ERROR_CASE(&r, want, reason, NULL, "check past the quota");
		itest_resp_fini(&r);
	}
	return ok ? 0 : -1;
}

/* Usage events reported for key k: not billable, and idempotent by id. */
static int post_events(const struct itest_key *k)
{
	struct itest_resp r;
	char body[1024], ts[40];
	int ok;

	itest_time(ts, sizeof ts, 0);
	snprintf(body, sizeof body,
		 "{\"events\":[{\"id\":\"itb-%s-1\",\"key_id\":%s,\"endpoint\":\"GET /bill\","
		 "\"status\":200,\"response_ms\":12.5,\"ts\":%s},"
		 "{\"id\":\"itb-%s-2\",\"key_id\":%s,\"endpoint\":\"GET /bill\","
		 "\"status\":503,\"response_ms\":40,\"ts\":%s}]}",
		 itest_suffix(), itest_q(k->id), itest_q(ts), itest_suffix(), itest_q(k->id),
		 itest_q(ts));
	itest_call(&r, "POST", "/v1/usage/events", itest_admin_token(), body);
	ok = EXPECT_STATUS(&r, 202);
	itest_resp_fini(&r);
	return ok ? 0 : -1;
}

#define LIVE_REQUESTS 22

/* The live owner's record for the current month with lp's price. */
static json_object *live_record(int64_t p_base, int64_t p_over)
{
	struct line l[] = {
		LINE(live.a1, live.la, 3, 5, 0, 2000000, 0),		/* under the quota */
		LINE(live.a2, live.la, 7, 5, 2, 2000000, 1),		/* ceil(2 * 333 / 1000) */
		LINE(live.b1, live.lb, 4, 4, 0, 1000000, 0),		/* blocked past 4 */
		LINE(live.c1, live.lc, 2, 0, 2, 0, 1),			/* 2 * 500 / 1000, exact */
		LINE(live.c2, live.lc, 3, 0, 3, 0, 2),			/* ceil(1.5) */
		LINE(live.p1, live.lp, 3, 0, 3, p_base, p_over),
	};

	return record(live.owner, live.period, "USD", "open", l, sizeof l / sizeof l[0]);
}

static void test_live_setup(void)
{
	tier_name(live.la, sizeof live.la, "la");
	tier_name(live.lb, sizeof live.lb, "lb");
	tier_name(live.lc, sizeof live.lc, "lc");
	tier_name(live.lp, sizeof live.lp, "lp");
	owner_name(live.owner, sizeof live.owner, "live");
	current_period(live.period, sizeof live.period);
	if (tier_create(live.la, "{\"period\":\"month\",\"included\":5,\"overage\":\"bill\"}",
			"{\"currency\":\"USD\",\"base_micros\":2000000,"
			"\"overage_per_1000_micros\":333}") ||
	    tier_create(live.lb, "{\"period\":\"month\",\"included\":4,\"overage\":\"block\"}",
			"{\"currency\":\"USD\",\"base_micros\":1000000,"
			"\"overage_per_1000_micros\":1000000}") ||
	    tier_create(live.lc, "null", "{\"currency\":\"USD\",\"overage_per_1000_micros\":500}") ||
	    tier_create(live.lp, "null", "{\"currency\":\"USD\",\"base_micros\":100,"
			"\"overage_per_1000_micros\":1000}") ||
	    itest_key_create(&live.a1, live.owner, live.la, NULL, NULL) ||
	    itest_key_create(&live.a2, live.owner, live.la, NULL, NULL) ||
	    itest_key_create(&live.b1, live.owner, live.lb, NULL, NULL) ||
	    itest_key_create(&live.c1, live.owner, live.lc, NULL, NULL) ||
	    itest_key_create(&live.c2, live.owner, live.lc, NULL, NULL) ||
	    itest_key_create(&live.p1, live.owner, live.lp, NULL, NULL))
		return;
	/* The same usage events twice: reported, never billed, counted once. */
	if (post_events(&live.a1) || post_events(&live.a1))
		return;
	live.ready = !check_n(&live.a1, 3, 1, 200, NULL) && !check_n(&live.a2, 7, 1, 200, NULL) &&
		     !check_n(&live.b1, 4, 1, 200, NULL) &&
		     !check_n(&live.b1, 2, 1, 429, "quota_exceeded") &&
		     !check_n(&live.c1, 1, 2, 200, NULL) && !check_n(&live.c2, 3, 1, 200, NULL) &&
		     !check_n(&live.p1, 3, 1, 200, NULL);
	EXPECT(live.ready, "live billing set-up failed");
}

/* Polls the live owner's records until its requests reach want. Returns the
 * last answer's data (caller puts) or NULL. */
static json_object *live_poll(int64_t want)
{
	int64_t deadline = itest_now_ms() + POLL_MS, got = -1;
	json_object *data = NULL;

	for (;;) {
		struct itest_resp r;

		records_get(&r, billing_tok.token, live.owner, live.period);
		json_object_put(data);
		data = r.status == 200 ? json_object_get(itest_get(r.json, "data")) : NULL;
		got = -1;
		if (itest_len(data) == 1)
			itest_int(itest_idx(data, 0), "requests", &got);
		itest_resp_fini(&r);
		if (got >= want || itest_now_ms() > deadline)
			break;
		itest_sleep_ms(250);
	}
	EXPECT(got == want, "current month: %lld billable requests after %d ms, want %lld",
	       (long long)got, POLL_MS, (long long)want);
	return data;
}

static void test_live_open_month(void)
{
	json_object *data;

	if (!live.ready)
		return;
	data = live_poll(LIVE_REQUESTS);
	expect_records("current month from real checks", data,
		       records_of((json_object *[]){ live_record(100, 3) }, 1));
	json_object_put(data);
	/* Nothing more arrives: the replayed events and the denied checks. */
	itest_sleep_ms(2000);
	data = live_poll(LIVE_REQUESTS);
	expect_records("current month, settled", data,
		       records_of((json_object *[]){ live_record(100, 3) }, 1));
	json_object_put(data);
	/* The open period is priced by the tier as it is now. */
	if (tier_price(live.lp, "{\"currency\":\"USD\",\"base_micros\":200,"
			       "\"overage_per_1000_micros\":2000}") == 0) {
		struct itest_resp r;

		records_get(&r, itest_admin_token(), live.owner, live.period);
		expect_records("current month after a price change", itest_get(r.json, "data"),
			       records_of((json_object *[]){ live_record(200, 6) }, 1));
		itest_resp_fini(&r);
	}
}

int itest_register_billing(void)
{
	CU_pSuite s = CU_add_suite("billing", suite_init, suite_clean);

	if (!s ||
	    !CU_add_test(s, "records query validation", test_records_query) ||
	    !CU_add_test(s, "roles", test_roles) ||
	    !CU_add_test(s, "close refused: current, future, malformed", test_close_refused) ||
	    !CU_add_test(s, "seed a past month", test_seed) ||
	    !CU_add_test(s, "an ended month is open until closed", test_open_past_month) ||
	    !CU_add_test(s, "close: exact, idempotent, tollgatectl", test_close) ||
	    !CU_add_test(s, "closed records are frozen", test_closed_is_frozen) ||
	    !CU_add_test(s, "every month of an owner, paged", test_list_months) ||
	    !CU_add_test(s, "close an empty month", test_close_empty) ||
	    !CU_add_test(s, "current month: checks, quota, overage", test_live_setup) ||
	    !CU_add_test(s, "current month: exact open record", test_live_open_month))
		return -1;
	return 0;
}
