/*
 * itest_billing_events.c - the billing.period_closed webhook and its
 * subscriptions; the suite also runs the CSV tests (itest_billing_csv.c).
 *
 * A past month M (1990-2020, not closed, no billable key) is seeded with
 * libpq as the billing suite does: keys made through the API get their life
 * moved into M, and usage_minute rows. For the suite's length its session
 * holds the lock tollgate-billingd's automatic close takes
 * (tg_billing_close_due skips its run while another holds it), so that the
 * only closes are the suite's own and the receiver sees only the events it
 * asks for. The webhook goes to the suite's receiver (itest_hook.h) on
 * 127.0.0.1, whose "/fail1-" path answers 500 once.
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <CUnit/CUnit.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "itest_billing_events.h"
#include "itest_fixture.h"
#include "itest_hook.h"
#include "itest_suites.h"

#define DELIVERY_MS 30000
#define QUIET_MS 3000

struct itest_token bev_viewer, bev_billing, bev_owner;
static struct itest_token operator_tok;
static PGconn *pg;
static int port;

struct bev_seed bev;

/* ---- database helpers (seeding only; every assertion goes over HTTP) ---- */

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

static int sql_value(char *buf, size_t len, const char *q, int n, const char *const *params)
{
	PGresult *res = sql(q, n, params);

	if (!res)
		return -1;
	snprintf(buf, len, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return 0;
}

static int suite_init(void)
{
	const char *ci = getenv("TOLLGATE_PG_CONNINFO");
	PGresult *res;

	if (!ci || !*ci) {
		fprintf(stderr, "itest billing_events: TOLLGATE_PG_CONNINFO is not set\n");
		return -1;
	}
	pg = PQconnectdb(ci);
	if (PQstatus(pg) != CONNECTION_OK) {
		fprintf(stderr, "itest billing_events: cannot connect to PostgreSQL: %s",
			PQerrorMessage(pg));
		return -1;
	}
	/* Pauses tollgate-billingd's automatic close (see the top). */
	res = PQexec(pg, "SELECT pg_advisory_lock(hashtext('tg_billing_close_due'))");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "itest billing_events: %s", PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	PQclear(res);
	if ((port = hook_start()) < 0)
		return -1;
	if (itest_token_create(&bev_viewer, "viewer") != 0 ||
	    itest_token_create(&operator_tok, "operator") != 0 ||
	    itest_token_create(&bev_billing, "billing") != 0)
		return -1;
	return 0;
}

static int suite_clean(void)
{
	struct itest_token *t[] = { &bev_viewer, &operator_tok, &bev_billing, &bev_owner };
	size_t i;

	if (bev.hook_id[0]) {
		struct itest_resp r;
		char path[256];

		snprintf(path, sizeof path, "/v1/billing/webhooks/%s", bev.hook_id);
		itest_call(&r, "DELETE", path, itest_admin_token(), NULL);
		itest_resp_fini(&r);
	}
	for (i = 0; i < sizeof t / sizeof t[0]; i++)
		if (t[i]->id[0])
			itest_token_revoke(t[i]);
	hook_stop();
	PQfinish(pg);	/* releases the lock */
	pg = NULL;
	return 0;
}

/* ---- seeding ---- */

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

/* Moves key k's life to the whole of month m (revoked at its end). */
static int seed_key_in(const struct itest_key *k, const char *m)
{
	const char *p[] = { k->id, m };

	return sql_do("UPDATE keys SET created_at = tg_billing_start($2),"
		      " revoked_at = tg_billing_end($2), status = 'revoked' WHERE id = $1", 2, p);
}

static int seed_key(const struct itest_key *k)
{
	return seed_key_in(k, bev.m);
}

static int seed_usage(const struct itest_key *k, const char *units)
{
	const char *p[] = { k->id, bev.m, units };

	return sql_do("INSERT INTO usage_minute (key_id, ts, endpoint, allowed, allowed_cost,"
		      " rate_limited) VALUES ($1, tg_billing_start($2) + interval '2 days',"
		      " 'GET /a', $3::bigint, $3::bigint, 0)", 3, p);
}

/* A month of 1990-2020 that is not closed and has no billable key, into m;
 * randomly among the latest twelve such, so that runs use the range up
 * slowly.  Its usage partition is made. */
static int pick_month(char m[8])
{
	const char *p[1];

	if (sql_value(m, 8,
		      "SELECT to_char(m, 'YYYY-MM') FROM ("
		      "  SELECT m FROM generate_series(timestamp '1990-01-01', timestamp '2020-12-01',"
		      "   interval '1 month') m"
		      "  WHERE NOT EXISTS (SELECT 1 FROM billing_periods b"
		      "    WHERE b.period = to_char(m, 'YYYY-MM'))"
		      "   AND NOT EXISTS (SELECT 1 FROM keys k"
		      "    WHERE k.created_at < (m + interval '1 month') AT TIME ZONE 'UTC'"
		      "     AND (k.revoked_at IS NULL OR k.revoked_at > m AT TIME ZONE 'UTC'))"
		      "  ORDER BY m DESC LIMIT 12) c ORDER BY random() LIMIT 1", 0, NULL) != 0 ||
	    !EXPECT(m[0], "no month of 1990-2020 is free for the billing event tests"))
		return -1;
	p[0] = m;
	return sql_do("SELECT tg_usage_partition(tg_billing_start($1))", 1, p);
}

/* Another month, m, billing one key k of a new owner (tag) on the USD tier. */
static int seed_other_month(char m[8], struct itest_key *k, const char *tag)
{
	char owner[64];

	snprintf(owner, sizeof owner, "itbe-%s-%s", itest_suffix(), tag);
	return itest_key_create(k, owner, bev.t_usd, NULL, NULL) || pick_month(m) ||
	       seed_key_in(k, m) ? -1 : 0;
}

/* The seeded month:
 *   owner_a  USD  ka1 102 units (2 over 100 at 333/1000: 1 micro), ka2 none
 *            -> 2,000,001 micros = 200 cents
 *   hostile  USD  kh 5 units -> 1,000,000 micros = 100 cents
 *   owner_j  JPY  kj -> 1,500,000 micros = 1.5 yen, 2 yen rounded half up */
static int seed(void)
{
	snprintf(bev.t_usd, sizeof bev.t_usd, "it%s-beu", itest_suffix());
	snprintf(bev.t_jpy, sizeof bev.t_jpy, "it%s-bej", itest_suffix());
	snprintf(bev.owner_a, sizeof bev.owner_a, "itbe-%s-a", itest_suffix());
	snprintf(bev.owner_j, sizeof bev.owner_j, "itbe-%s-j", itest_suffix());
	snprintf(bev.hostile, sizeof bev.hostile, "=HYPERLINK(\"http://x\"),\"a\" %s", itest_suffix());
	if (tier_create(bev.t_usd, "{\"period\":\"month\",\"included\":100,\"overage\":\"bill\"}",
			"{\"currency\":\"USD\",\"base_micros\":1000000,"
			"\"overage_per_1000_micros\":333}") ||
	    tier_create(bev.t_jpy, "null",
			"{\"currency\":\"JPY\",\"base_micros\":1500000,\"overage_per_1000_micros\":0}") ||
	    itest_key_create(&bev.ka1, bev.owner_a, bev.t_usd, NULL, NULL) ||
	    itest_key_create(&bev.ka2, bev.owner_a, bev.t_usd, NULL, NULL) ||
	    itest_key_create(&bev.kh, bev.hostile, bev.t_usd, NULL, NULL) ||
	    itest_key_create(&bev.kj, bev.owner_j, bev.t_jpy, NULL, NULL))
		return -1;
	if (pick_month(bev.m) != 0)
		return -1;
	return seed_key(&bev.ka1) || seed_key(&bev.ka2) || seed_key(&bev.kh) || seed_key(&bev.kj) ||
	       seed_usage(&bev.ka1, "102") || seed_usage(&bev.kh, "5") ? -1 : 0;
}

/* ---- HTTP helpers ---- */

void bev_records_get(struct itest_resp *r, const char *token, const char *query)
{
	char path[512];

	snprintf(path, sizeof path, "/v1/billing/records?period=%s%s", bev.m, query);
	itest_call(r, "GET", path, token, NULL);
}

static void close_period(struct itest_resp *r, const char *token)
{
	char path[128];

	snprintf(path, sizeof path, "/v1/billing/periods/%s/close", bev.m);
	itest_call(r, "POST", path, token, "");
}

static int verify_signature(const struct hook_hit *h)
{
	unsigned char mac[32];
	unsigned int n = sizeof mac;
	char hex[80] = "sha256=";

	HMAC(EVP_sha256(), bev.secret, (int)strlen(bev.secret), (const unsigned char *)h->body,
	     strlen(h->body), mac, &n);
	for (unsigned i = 0; i < n; i++)
		snprintf(hex + 7 + 2 * i, 3, "%02x", mac[i]);
	return strcmp(hex, h->signature) == 0;
}

/* The hits of the suite's path that carry an event of M. */
static size_t period_hits(const char *period, struct hook_hit *h, size_t max)
{
	struct hook_hit *all = calloc(HOOK_MAX, sizeof *all);
	size_t n = all ? hook_hits(bev.path, all, HOOK_MAX) : 0, k = 0;

	for (size_t i = 0; i < n; i++) {
		json_object *o = json_tokener_parse(all[i].body);
		const char *p = itest_str(o, "period");

		if (p && strcmp(p, period) == 0 && k < max) {
			h[k] = all[i];
			all[i].body = NULL;
			k++;
		}
		json_object_put(o);
	}
	hook_hits_free(all, n);
	free(all);
	return k;
}

/* The hits of the suite's path that carry an event of M. */
static size_t month_hits(struct hook_hit *h, size_t max)
{
	return period_hits(bev.m, h, max);
}

/* Waits up to DELIVERY_MS until period has n delivered (200) hits; returns
 * the number of hits of period then. */
static size_t wait_delivered(const char *period, size_t n)
{
	struct hook_hit h[8];
	size_t got = 0, ok;

	for (int64_t end = itest_now_ms() + DELIVERY_MS;;) {
		got = period_hits(period, h, 8);
		ok = 0;
		for (size_t i = 0; i < got; i++)
			ok += h[i].status == 200;
		hook_hits_free(h, got);
		if (ok >= n || itest_now_ms() > end)
			return got;
		itest_sleep_ms(100);
	}
}

/* How many events of period the outbox holds for the suite's webhook. */
static int outbox_events(const char *period)
{
	const char *p[] = { bev.hook_id, period };
	char cnt[16] = "";

	sql_value(cnt, sizeof cnt, "SELECT count(*) FROM alert_events WHERE rule_id = $1"
		  " AND key_id = $2", 2, p);
	return cnt[0] ? atoi(cnt) : -1;
}

/* ---- tests ---- */

static void test_seed(void)
{
	bev.ready = seed() == 0;
	EXPECT(bev.ready, "seeding a past month failed");
}

static void test_webhook_api(void)
{
	struct itest_resp r;
	char body[512], path[256];

	snprintf(bev.path, sizeof bev.path, "/fail1-billing-%s", itest_suffix());
	/* Roles: operator and viewer may not create; viewer may not read. */
	snprintf(body, sizeof body, "{\"webhook_url\":\"http://127.0.0.1:%d%s\"}", port, bev.path);
	itest_call(&r, "POST", "/v1/billing/webhooks", operator_tok.token, body);
	EXPECT_ERROR(&r, 403, "forbidden", NULL);
	itest_resp_fini(&r);
	itest_call(&r, "GET", "/v1/billing/webhooks", bev_viewer.token, NULL);
	EXPECT_ERROR(&r, 403, "forbidden", NULL);
	itest_resp_fini(&r);
	/* The SSRF rules of the alerts: cloud metadata is refused. */
	itest_call(&r, "POST", "/v1/billing/webhooks", bev_billing.token,
		   "{\"webhook_url\":\"http://169.254.169.254/latest\"}");
	EXPECT_ERROR(&r, 400, "invalid_argument", "webhook_url");
	itest_resp_fini(&r);
	itest_call(&r, "POST", "/v1/billing/webhooks", bev_billing.token,
		   "{\"webhook_url\":\"ftp://example.com/\"}");
	EXPECT_ERROR(&r, 400, "invalid_argument", "webhook_url");
	itest_resp_fini(&r);
	itest_call(&r, "POST", "/v1/billing/webhooks", bev_billing.token,
		   "{\"webhook_url\":\"http://example.com/\",\"secret\":\"mine-mine-mine-mine\"}");
	EXPECT_ERROR(&r, 400, "unknown_field", "secret");
	itest_resp_fini(&r);

	itest_call(&r, "POST", "/v1/billing/webhooks", bev_billing.token, body);
	if (EXPECT_STATUS(&r, 201)) {
		const char *id = itest_str(r.json, "id"), *sec = itest_str(r.json, "secret");

		EXPECT(id && strncmp(id, "bwh_", 4) == 0, "id: %s", r.body);
		EXPECT(sec && strncmp(sec, "whsec_", 6) == 0 && strlen(sec) == 38,
		       "a generated secret: %s", r.body);
		EXPECT(itest_len(itest_get(r.json, "events")) == 1, "events: %s", r.body);
		snprintf(bev.hook_id, sizeof bev.hook_id, "%s", id ? id : "");
		snprintf(bev.secret, sizeof bev.secret, "%s", sec ? sec : "");
		itest_record_secret(bev.secret);
	}
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/billing/webhooks/%s", bev.hook_id);
	itest_call(&r, "GET", path, operator_tok.token, NULL);
	if (EXPECT_STATUS(&r, 200))
		EXPECT(!itest_has(r.json, "secret") && !strstr(r.body, bev.secret),
		       "the secret is shown once: %s", r.body);
	itest_resp_fini(&r);
	itest_call(&r, "GET", "/v1/billing/webhooks?limit=1000", bev_billing.token, NULL);
	if (EXPECT_STATUS(&r, 200))
		EXPECT(itest_find_id(r.json, bev.hook_id) && !strstr(r.body, bev.secret),
		       "listed without its secret: %.300s", r.body);
	itest_resp_fini(&r);
	{
		const char *p[] = { bev.hook_id };
		char enc[512] = "";

		sql_value(enc, sizeof enc, "SELECT secret_enc FROM billing_webhooks WHERE id = $1",
			  1, p);
		EXPECT(enc[0] && !strstr(enc, bev.secret + 6), "the secret is stored sealed");
	}
}

/* Closing emits one event, signed, retried after the receiver's 500, whose
 * totals are those of the records; a second close emits none. */
static void test_close_emits_once(void)
{
	struct itest_resp r, rec;
	struct hook_hit h[8];
	size_t n;
	char path[256], cnt[16] = "";
	json_object *ev = NULL, *totals;

	if (!bev.ready || !bev.hook_id[0])
		return;
	close_period(&r, bev_billing.token);
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	for (int64_t end = itest_now_ms() + DELIVERY_MS;;) {
		n = month_hits(h, 8);
		hook_hits_free(h, n);
		if (n >= 2 || itest_now_ms() > end)
			break;
		itest_sleep_ms(100);
	}
	n = month_hits(h, 8);
	if (!EXPECT(n == 2, "two attempts of the event of %s (a 500, then 200): got %zu", bev.m, n))
		goto out;
	EXPECT(h[0].status == 500 && h[1].status == 200, "statuses %d, %d", h[0].status,
	       h[1].status);
	EXPECT(strcmp(h[0].body, h[1].body) == 0, "the retry sends the same bytes");
	EXPECT(verify_signature(&h[0]) && verify_signature(&h[1]), "signed: %s", h[1].signature);
	ev = json_tokener_parse(h[1].body);
	EXPECT_STR(NULL, ev, "type", "billing.period_closed");
	EXPECT(itest_str(ev, "event_id") && strncmp(itest_str(ev, "event_id"), "evt_", 4) == 0,
	       "event_id: %s", h[1].body);
	EXPECT(itest_is_time(itest_str(ev, "closed_at")), "closed_at: %s", h[1].body);
	snprintf(path, sizeof path, "/v1/billing/records?period=%s", bev.m);
	EXPECT_STR(NULL, ev, "records_url", path);
	snprintf(path, sizeof path, "/v1/billing/records?period=%s&format=csv", bev.m);
	EXPECT_STR(NULL, ev, "csv_url", path);

	/* The totals are those of the records, per currency. */
	totals = itest_get(ev, "totals");
	bev_records_get(&rec, itest_admin_token(), "&limit=1000");
	if (EXPECT(itest_len(totals) == 2, "two currencies: %s", h[1].body) &&
	    EXPECT_STATUS(&rec, 200)) {
		static const char *const cur[] = { "JPY", "USD" };
		static const int64_t minor[] = { 2, 300 }, exp[] = { 0, 2 };

		for (size_t c = 0; c < 2; c++) {
			json_object *t = itest_idx(totals, c), *data = itest_get(rec.json, "data");
			int64_t amount = 0, lines = 0, records = 0, v;

			for (size_t i = 0; i < itest_len(data); i++) {
				json_object *d = itest_idx(data, i);

				if (strcmp(itest_str(d, "currency"), cur[c]) != 0)
					continue;
				itest_int(d, "amount_micros", &v);
				amount += v;
				lines += (int64_t)itest_len(itest_get(d, "lines"));
				records++;
			}
			EXPECT_STR(NULL, t, "currency", cur[c]);
			EXPECT(itest_int(t, "amount_micros", &v) && v == amount, "%s amount %lld",
			       cur[c], (long long)amount);
			EXPECT(itest_int(t, "records", &v) && v == records, "%s records", cur[c]);
			EXPECT(itest_int(t, "lines", &v) && v == lines, "%s lines", cur[c]);
			EXPECT(itest_int(t, "amount_minor", &v) && v == minor[c], "%s minor %lld",
			       cur[c], (long long)v);
			EXPECT(itest_int(t, "minor_exponent", &v) && v == exp[c], "%s exponent",
			       cur[c]);
		}
		EXPECT(itest_len(itest_get(rec.json, "data")) == 3, "3 records: %.300s", rec.body);
	}
	itest_resp_fini(&rec);

	/* A second close (and tollgatectl's answer) emits nothing more. */
	close_period(&r, itest_admin_token());
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	itest_sleep_ms(QUIET_MS);
	{
		struct hook_hit h2[8];
		size_t n2 = month_hits(h2, 8);

		EXPECT(n2 == 2, "no event after the second close: %zu hits", n2);
		hook_hits_free(h2, n2);
	}
	{
		const char *p[] = { bev.hook_id, bev.m };

		sql_value(cnt, sizeof cnt, "SELECT count(*) FROM alert_events"
			  " WHERE rule_id = $1 AND key_id = $2", 2, p);
		EXPECT(strcmp(cnt, "1") == 0, "one event of %s in the outbox: %s", bev.m, cnt);
	}

	/* The attempts, as GET /v1/alerts/{id}/deliveries shows an alert'bev. */
	snprintf(path, sizeof path, "/v1/billing/webhooks/%s/deliveries?limit=1000", bev.hook_id);
	itest_call(&r, "GET", path, operator_tok.token, NULL);
	if (EXPECT_STATUS(&r, 200)) {
		json_object *d = itest_get(r.json, "data");
		int64_t st0 = 0, st1 = 0, a1 = 0;

		if (EXPECT(itest_len(d) == 2, "2 attempts: %.500s", r.body)) {
			itest_int(itest_idx(d, 0), "status", &st0);
			itest_int(itest_idx(d, 1), "status", &st1);
			itest_int(itest_idx(d, 1), "attempt", &a1);
			EXPECT(st0 == 500 && st1 == 200 && a1 == 2, "attempts: %.500s", r.body);
			EXPECT_STR(&r, itest_idx(d, 1), "event_state", "delivered");
			EXPECT_STR(&r, itest_idx(d, 1), "period", bev.m);
			EXPECT_STR(&r, itest_idx(d, 1), "event_id", itest_str(ev, "event_id"));
		}
	}
	itest_resp_fini(&r);
out:
	json_object_put(ev);
	hook_hits_free(h, n);
}


/* Runs `tollgatectl billing close m` (TOLLGATE_CTL, default build/tollgatectl,
 * on TOLLGATE_CONFIG, as the billing suite does); returns its exit status. */
static int ctl_close(const char *m)
{
	const char *bin = getenv("TOLLGATE_CTL");
	char cmd[1024];
	int st;

	snprintf(cmd, sizeof cmd,
		 "env -u TOLLGATE_REDIS_HOST -u TOLLGATE_REDIS_PORT -u TOLLGATE_AMQP_PORT %s"
		 " billing close %s >/dev/null 2>&1", bin && *bin ? bin : "build/tollgatectl", m);
	st = system(cmd);
	return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Once delivered, no other event of period arrives within QUIET_MS and the
 * outbox holds one. */
static void expect_one_event(const char *period, const char *how)
{
	struct hook_hit h[8];
	size_t n = wait_delivered(period, 1);

	EXPECT(n == 1, "%s of %s: one delivery, got %zu", how, period, n);
	itest_sleep_ms(QUIET_MS);
	n = period_hits(period, h, 8);
	EXPECT(n == 1 && verify_signature(&h[0]), "%s of %s: still one signed delivery, got %zu",
	       how, period, n);
	hook_hits_free(h, n);
	EXPECT(outbox_events(period) == 1, "%s of %s: one event in the outbox, got %d", how,
	       period, outbox_events(period));
}

/* tollgatectl closes through the same step: one event, and none for a
 * second close. */
static void test_ctl_close(void)
{
	char m[8] = "";
	struct itest_key k;

	if (!bev.ready || !bev.hook_id[0] || seed_other_month(m, &k, "ctl") != 0)
		return;
	EXPECT(ctl_close(m) == 0, "tollgatectl billing close %s", m);
	EXPECT(ctl_close(m) == 0, "tollgatectl billing close %s, again", m);
	expect_one_event(m, "tollgatectl close");
}

/* tollgate-billingd's automatic close emits the event too: the suite lets
 * it run (releasing its lock) and wakes its housekeeping (SIGUSR1; the
 * stack runs the suite as root, as the retention suite does). */
static void test_auto_close(void)
{
	char m[8] = "", path[512];
	struct itest_key k;
	long pid = 0;
	FILE *f;

	if (!bev.ready || !bev.hook_id[0] || seed_other_month(m, &k, "auto") != 0)
		return;
	snprintf(path, sizeof path, "%s/billingd.pid", getenv("TOLLGATE_RUN_DIR"));
	if ((f = fopen(path, "r"))) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	if (!EXPECT(pid > 0, "no billingd pid in %s", path) ||
	    sql_do("SELECT pg_advisory_unlock(hashtext('tg_billing_close_due'))", 0, NULL) != 0)
		return;
	EXPECT(kill((pid_t)pid, SIGUSR1) == 0, "SIGUSR1 to billingd %ld", pid);
	expect_one_event(m, "automatic close");
	/* Another run finds the month closed. */
	kill((pid_t)pid, SIGUSR1);
	itest_sleep_ms(QUIET_MS);
	EXPECT(outbox_events(m) == 1, "a second automatic run wrote another event of %s", m);
}

static void test_webhook_delete(void)
{
	struct itest_resp r;
	char path[256];

	if (!bev.hook_id[0])
		return;
	snprintf(path, sizeof path, "/v1/billing/webhooks/%s", bev.hook_id);
	itest_call(&r, "DELETE", path, operator_tok.token, NULL);
	EXPECT_ERROR(&r, 403, "forbidden", NULL);
	itest_resp_fini(&r);
	itest_call(&r, "DELETE", path, bev_billing.token, NULL);
	EXPECT_STATUS(&r, 204);
	itest_resp_fini(&r);
	itest_call(&r, "GET", path, bev_billing.token, NULL);
	EXPECT_ERROR(&r, 404, "not_found", NULL);
	itest_resp_fini(&r);
	bev.hook_id[0] = '\0';
}

int itest_register_billing_events(void)
{
	CU_pSuite su = CU_add_suite("billing_events", suite_init, suite_clean);

	if (!su ||
	    !CU_add_test(su, "seed a past month", test_seed) ||
	    !CU_add_test(su, "billing webhooks: roles, SSRF, secret once", test_webhook_api) ||
	    !CU_add_test(su, "CSV: open month, refusals", bev_test_csv_open) ||
	    !CU_add_test(su, "close emits one signed event, retried", test_close_emits_once) ||
	    !CU_add_test(su, "CSV: quoting, amounts, idempotency keys", bev_test_csv_closed) ||
	    !CU_add_test(su, "CSV: owner token", bev_test_csv_owner_token) ||
	    !CU_add_test(su, "tollgatectl close emits one event", test_ctl_close) ||
	    !CU_add_test(su, "billingd's automatic close emits one event", test_auto_close) ||
	    !CU_add_test(su, "billing webhooks: delete", test_webhook_delete))
		return -1;
	return 0;
}
