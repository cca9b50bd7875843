/*
 * itest_billing_events.c - the billing.period_closed webhook and the CSV
 * export of the billing records.
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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "itest_fixture.h"
#include "itest_hook.h"
#include "itest_suites.h"

#define DELIVERY_MS 30000
#define QUIET_MS 3000

static struct itest_token viewer, operator_tok, billing_tok, owner_tok;
static PGconn *pg;
static int port;

static struct {
	int ready;
	char m[8];
	char owner_a[64], owner_j[64], hostile[128];
	char t_usd[40], t_jpy[40];
	struct itest_key ka1, ka2, kh, kj;
	char hook_id[160], secret[128], path[128];
} s;

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
	if (itest_token_create(&viewer, "viewer") != 0 ||
	    itest_token_create(&operator_tok, "operator") != 0 ||
	    itest_token_create(&billing_tok, "billing") != 0)
		return -1;
	return 0;
}

static int suite_clean(void)
{
	struct itest_token *t[] = { &viewer, &operator_tok, &billing_tok, &owner_tok };
	size_t i;

	if (s.hook_id[0]) {
		struct itest_resp r;
		char path[256];

		snprintf(path, sizeof path, "/v1/billing/webhooks/%s", s.hook_id);
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

/* Moves key k's life to the whole of M (revoked at its end). */
static int seed_key(const struct itest_key *k)
{
	const char *p[] = { k->id, s.m };

	return sql_do("UPDATE keys SET created_at = tg_billing_start($2),"
		      " revoked_at = tg_billing_end($2), status = 'revoked' WHERE id = $1", 2, p);
}

static int seed_usage(const struct itest_key *k, const char *units)
{
	const char *p[] = { k->id, s.m, units };

	return sql_do("INSERT INTO usage_minute (key_id, ts, endpoint, allowed, allowed_cost,"
		      " rate_limited) VALUES ($1, tg_billing_start($2) + interval '2 days',"
		      " 'GET /a', $3::bigint, $3::bigint, 0)", 3, p);
}

/* The seeded month:
 *   owner_a  USD  ka1 102 units (2 over 100 at 333/1000: 1 micro), ka2 none
 *            -> 2,000,001 micros = 200 cents
 *   hostile  USD  kh 5 units -> 1,000,000 micros = 100 cents
 *   owner_j  JPY  kj -> 1,500,000 micros = 1.5 yen, 2 yen rounded half up */
static int seed(void)
{
	snprintf(s.t_usd, sizeof s.t_usd, "it%s-beu", itest_suffix());
	snprintf(s.t_jpy, sizeof s.t_jpy, "it%s-bej", itest_suffix());
	snprintf(s.owner_a, sizeof s.owner_a, "itbe-%s-a", itest_suffix());
	snprintf(s.owner_j, sizeof s.owner_j, "itbe-%s-j", itest_suffix());
	snprintf(s.hostile, sizeof s.hostile, "=HYPERLINK(\"http://x\"),\"a\" %s", itest_suffix());
	if (tier_create(s.t_usd, "{\"period\":\"month\",\"included\":100,\"overage\":\"bill\"}",
			"{\"currency\":\"USD\",\"base_micros\":1000000,"
			"\"overage_per_1000_micros\":333}") ||
	    tier_create(s.t_jpy, "null",
			"{\"currency\":\"JPY\",\"base_micros\":1500000,\"overage_per_1000_micros\":0}") ||
	    itest_key_create(&s.ka1, s.owner_a, s.t_usd, NULL, NULL) ||
	    itest_key_create(&s.ka2, s.owner_a, s.t_usd, NULL, NULL) ||
	    itest_key_create(&s.kh, s.hostile, s.t_usd, NULL, NULL) ||
	    itest_key_create(&s.kj, s.owner_j, s.t_jpy, NULL, NULL))
		return -1;
	if (sql_value(s.m, sizeof s.m,
		      "SELECT to_char(m, 'YYYY-MM') FROM ("
		      "  SELECT m FROM generate_series(timestamp '1990-01-01', timestamp '2020-12-01',"
		      "   interval '1 month') m"
		      "  WHERE NOT EXISTS (SELECT 1 FROM billing_periods b"
		      "    WHERE b.period = to_char(m, 'YYYY-MM'))"
		      "   AND NOT EXISTS (SELECT 1 FROM keys k"
		      "    WHERE k.created_at < (m + interval '1 month') AT TIME ZONE 'UTC'"
		      "     AND (k.revoked_at IS NULL OR k.revoked_at > m AT TIME ZONE 'UTC'))"
		      "  ORDER BY m DESC LIMIT 12) c ORDER BY random() LIMIT 1", 0, NULL) != 0 ||
	    !EXPECT(s.m[0], "no month of 1990-2020 is free for the billing event tests"))
		return -1;
	{
		const char *p[] = { s.m };

		if (sql_do("SELECT tg_usage_partition(tg_billing_start($1))", 1, p))
			return -1;
	}
	return seed_key(&s.ka1) || seed_key(&s.ka2) || seed_key(&s.kh) || seed_key(&s.kj) ||
	       seed_usage(&s.ka1, "102") || seed_usage(&s.kh, "5") ? -1 : 0;
}

/* ---- HTTP helpers ---- */

static void records_get(struct itest_resp *r, const char *token, const char *query)
{
	char path[512];

	snprintf(path, sizeof path, "/v1/billing/records?period=%s%s", s.m, query);
	itest_call(r, "GET", path, token, NULL);
}

static void close_period(struct itest_resp *r, const char *token)
{
	char path[128];

	snprintf(path, sizeof path, "/v1/billing/periods/%s/close", s.m);
	itest_call(r, "POST", path, token, "");
}

static int verify_signature(const struct hook_hit *h)
{
	unsigned char mac[32];
	unsigned int n = sizeof mac;
	char hex[80] = "sha256=";

	HMAC(EVP_sha256(), s.secret, (int)strlen(s.secret), (const unsigned char *)h->body,
	     strlen(h->body), mac, &n);
	for (unsigned i = 0; i < n; i++)
		snprintf(hex + 7 + 2 * i, 3, "%02x", mac[i]);
	return strcmp(hex, h->signature) == 0;
}

/* The hits of the suite's path that carry an event of M. */
static size_t month_hits(struct hook_hit *h, size_t max)
{
	struct hook_hit all[64];
	size_t n = hook_hits(s.path, all, 64), k = 0;

	for (size_t i = 0; i < n; i++) {
		json_object *o = json_tokener_parse(all[i].body);
		const char *p = itest_str(o, "period");

		if (p && strcmp(p, s.m) == 0 && k < max) {
			h[k] = all[i];
			all[i].body = NULL;
			k++;
		}
		json_object_put(o);
	}
	hook_hits_free(all, n);
	return k;
}

/* ---- a small RFC 4180 reader: rows of fields as a JSON array of arrays;
 * *crlf is 0 when a row ends in a bare CR or LF ---- */

static json_object *csv_parse(const char *p, int *crlf)
{
	json_object *rows = json_object_new_array(), *row = json_object_new_array();
	char field[1024];
	size_t n = 0;

	*crlf = 1;
	while (*p) {
		if (*p == '"') {
			for (p++; *p && !(*p == '"' && p[1] != '"'); p++) {
				if (*p == '"')
					p++;
				if (n + 1 < sizeof field)
					field[n++] = *p;
			}
			if (*p)
				p++;
			continue;
		}
		if (*p == ',' || *p == '\r' || *p == '\n') {
			field[n] = '\0';
			json_object_array_add(row, json_object_new_string(field));
			n = 0;
			if (*p != ',') {
				if (*p == '\n' || p[1] != '\n')
					*crlf = 0;
				p += *p == '\r' && p[1] == '\n' ? 2 : 1;
				json_object_array_add(rows, row);
				row = json_object_new_array();
				continue;
			}
			p++;
			continue;
		}
		if (n + 1 < sizeof field)
			field[n++] = *p;
		p++;
	}
	/* The client trims the body's last line end: the last row may lack it. */
	if (n || itest_len(row)) {
		field[n] = '\0';
		json_object_array_add(row, json_object_new_string(field));
		json_object_array_add(rows, row);
	} else {
		json_object_put(row);
	}
	return rows;
}

static const char *const COLUMNS[] = {
	"period", "owner_id", "currency", "amount_minor", "minor_exponent", "amount_micros",
	"requests", "overage_units", "base_micros", "overage_micros", "lines", "status",
	"idempotency_key",
};
#define NCOL (sizeof COLUMNS / sizeof COLUMNS[0])
#define HEADER "period,owner_id,currency,amount_minor,minor_exponent,amount_micros,requests," \
	"overage_units,base_micros,overage_micros,lines,status,idempotency_key\r\n"

static const char *col(json_object *row, const char *name)
{
	for (size_t i = 0; i < NCOL; i++)
		if (strcmp(COLUMNS[i], name) == 0)
			return json_object_get_string(itest_idx(row, i));
	return NULL;
}

/* The row of owner (as written, apostrophe included) and currency, or NULL. */
static json_object *row_of(json_object *rows, const char *owner, const char *currency)
{
	for (size_t i = 1; i < itest_len(rows); i++) {
		json_object *row = itest_idx(rows, i);

		if (strcmp(col(row, "owner_id"), owner) == 0 &&
		    strcmp(col(row, "currency"), currency) == 0)
			return row;
	}
	return NULL;
}

static void idem_key(const char *owner, const char *currency, char out[65])
{
	char text[256];
	unsigned char md[SHA256_DIGEST_LENGTH];

	snprintf(text, sizeof text, "%s\n%s\n%s", s.m, currency, owner);
	SHA256((const unsigned char *)text, strlen(text), md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- tests ---- */

static void test_seed(void)
{
	s.ready = seed() == 0;
	EXPECT(s.ready, "seeding a past month failed");
}

static void test_webhook_api(void)
{
	struct itest_resp r;
	char body[512], path[256];

	snprintf(s.path, sizeof s.path, "/fail1-billing-%s", itest_suffix());
	/* Roles: operator and viewer may not create; viewer may not read. */
	snprintf(body, sizeof body, "{\"webhook_url\":\"http://127.0.0.1:%d%s\"}", port, s.path);
	itest_call(&r, "POST", "/v1/billing/webhooks", operator_tok.token, body);
	EXPECT_ERROR(&r, 403, "forbidden", NULL);
	itest_resp_fini(&r);
	itest_call(&r, "GET", "/v1/billing/webhooks", viewer.token, NULL);
	EXPECT_ERROR(&r, 403, "forbidden", NULL);
	itest_resp_fini(&r);
	/* The SSRF rules of the alerts: cloud metadata is refused. */
	itest_call(&r, "POST", "/v1/billing/webhooks", billing_tok.token,
		   "{\"webhook_url\":\"http://169.254.169.254/latest\"}");
	EXPECT_ERROR(&r, 400, "invalid_argument", "webhook_url");
	itest_resp_fini(&r);
	itest_call(&r, "POST", "/v1/billing/webhooks", billing_tok.token,
		   "{\"webhook_url\":\"ftp://example.com/\"}");
	EXPECT_ERROR(&r, 400, "invalid_argument", "webhook_url");
	itest_resp_fini(&r);
	itest_call(&r, "POST", "/v1/billing/webhooks", billing_tok.token,
		   "{\"webhook_url\":\"http://example.com/\",\"secret\":\"mine-mine-mine-mine\"}");
	EXPECT_ERROR(&r, 400, "unknown_field", "secret");
	itest_resp_fini(&r);

	itest_call(&r, "POST", "/v1/billing/webhooks", billing_tok.token, body);
	if (EXPECT_STATUS(&r, 201)) {
		const char *id = itest_str(r.json, "id"), *sec = itest_str(r.json, "secret");

		EXPECT(id && strncmp(id, "bwh_", 4) == 0, "id: %s", r.body);
		EXPECT(sec && strncmp(sec, "whsec_", 6) == 0 && strlen(sec) == 38,
		       "a generated secret: %s", r.body);
		EXPECT(itest_len(itest_get(r.json, "events")) == 1, "events: %s", r.body);
		snprintf(s.hook_id, sizeof s.hook_id, "%s", id ? id : "");
		snprintf(s.secret, sizeof s.secret, "%s", sec ? sec : "");
		itest_record_secret(s.secret);
	}
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/billing/webhooks/%s", s.hook_id);
	itest_call(&r, "GET", path, operator_tok.token, NULL);
	if (EXPECT_STATUS(&r, 200))
		EXPECT(!itest_has(r.json, "secret") && !strstr(r.body, s.secret),
		       "the secret is shown once: %s", r.body);
	itest_resp_fini(&r);
	itest_call(&r, "GET", "/v1/billing/webhooks?limit=1000", billing_tok.token, NULL);
	if (EXPECT_STATUS(&r, 200))
		EXPECT(itest_find_id(r.json, s.hook_id) && !strstr(r.body, s.secret),
		       "listed without its secret: %.300s", r.body);
	itest_resp_fini(&r);
	{
		const char *p[] = { s.hook_id };
		char enc[512] = "";

		sql_value(enc, sizeof enc, "SELECT secret_enc FROM billing_webhooks WHERE id = $1",
			  1, p);
		EXPECT(enc[0] && !strstr(enc, s.secret + 6), "the secret is stored sealed");
	}
}

/* Before the close: the CSV shows M open; bad requests are refused. */
static void test_csv_open_and_refusals(void)
{
	struct itest_resp r;
	json_object *rows;
	int crlf;

	if (!s.ready)
		return;
	records_get(&r, itest_admin_token(), "&format=csv");
	EXPECT_STATUS(&r, 200);
	rows = csv_parse(r.body, &crlf);
	EXPECT(itest_len(rows) == 4 && strcmp(col(itest_idx(rows, 1), "status"), "open") == 0,
	       "3 open rows: %.600s", r.body);
	json_object_put(rows);
	itest_resp_fini(&r);

	records_get(&r, itest_admin_token(), "&format=xml");
	EXPECT_ERROR(&r, 400, "invalid_argument", "format");
	itest_resp_fini(&r);
	records_get(&r, itest_admin_token(), "&format=csv&limit=10");
	EXPECT_ERROR(&r, 400, "invalid_argument", "limit");
	itest_resp_fini(&r);
	records_get(&r, viewer.token, "&format=csv");
	EXPECT_ERROR(&r, 403, "forbidden", NULL);
	itest_resp_fini(&r);
	records_get(&r, itest_admin_token(), "&format=csv&owner_id=");
	EXPECT_ERROR(&r, 400, "invalid_argument", "owner_id");
	itest_resp_fini(&r);
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

	if (!s.ready || !s.hook_id[0])
		return;
	close_period(&r, billing_tok.token);
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
	if (!EXPECT(n == 2, "two attempts of the event of %s (a 500, then 200): got %zu", s.m, n))
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
	snprintf(path, sizeof path, "/v1/billing/records?period=%s", s.m);
	EXPECT_STR(NULL, ev, "records_url", path);
	snprintf(path, sizeof path, "/v1/billing/records?period=%s&format=csv", s.m);
	EXPECT_STR(NULL, ev, "csv_url", path);

	/* The totals are those of the records, per currency. */
	totals = itest_get(ev, "totals");
	records_get(&rec, itest_admin_token(), "&limit=1000");
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
		const char *p[] = { s.hook_id, s.m };

		sql_value(cnt, sizeof cnt, "SELECT count(*) FROM alert_events"
			  " WHERE rule_id = $1 AND key_id = $2", 2, p);
		EXPECT(strcmp(cnt, "1") == 0, "one event of %s in the outbox: %s", s.m, cnt);
	}

	/* The attempts, as GET /v1/alerts/{id}/deliveries shows an alert's. */
	snprintf(path, sizeof path, "/v1/billing/webhooks/%s/deliveries?limit=1000", s.hook_id);
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
			EXPECT_STR(&r, itest_idx(d, 1), "period", s.m);
			EXPECT_STR(&r, itest_idx(d, 1), "event_id", itest_str(ev, "event_id"));
		}
	}
	itest_resp_fini(&r);
out:
	json_object_put(ev);
	hook_hits_free(h, n);
}

/* The CSV of the closed month: its header, RFC 4180 quoting of the hostile
 * owner id, the JSON amounts, stable idempotency keys. */
static void test_csv_closed(void)
{
	struct itest_resp r, j;
	char hdr[256], want[512], key[65], buf[256];
	json_object *rows = NULL;
	int crlf;

	if (!s.ready)
		return;
	records_get(&r, billing_tok.token, "&format=csv");
	if (!EXPECT_STATUS(&r, 200))
		goto out;
	EXPECT(itest_header(&r, "Content-Type", hdr, sizeof hdr) &&
	       strcmp(hdr, "text/csv; charset=utf-8") == 0, "Content-Type: %s", hdr);
	snprintf(want, sizeof want, "attachment; filename=\"tollgate-billing-%s.csv\"", s.m);
	EXPECT(itest_header(&r, "Content-Disposition", hdr, sizeof hdr) && strcmp(hdr, want) == 0,
	       "Content-Disposition: %s", hdr);
	EXPECT(strncmp(r.body, HEADER, strlen(HEADER)) == 0, "header row: %.200s", r.body);
	/* The hostile id, quoted, its quotes doubled, behind an apostrophe. */
	snprintf(want, sizeof want, "\"'=HYPERLINK(\"\"http://x\"\"),\"\"a\"\" %s\"", itest_suffix());
	EXPECT(strstr(r.body, want), "hostile owner id written as %s: %.600s", want, r.body);
	rows = csv_parse(r.body, &crlf);
	EXPECT(crlf, "rows end in CRLF: %.600s", r.body);
	if (!EXPECT(itest_len(rows) == 4, "header and 3 rows: %.600s", r.body))
		goto out;
	for (size_t i = 0; i < itest_len(rows); i++)
		EXPECT(itest_len(itest_idx(rows, i)) == NCOL, "row %zu has %zu fields", i,
		       itest_len(itest_idx(rows, i)));
	records_get(&j, billing_tok.token, "&limit=1000");
	if (EXPECT_STATUS(&j, 200)) {
		json_object *data = itest_get(j.json, "data");

		for (size_t i = 0; i < itest_len(data); i++) {
			json_object *d = itest_idx(data, i), *row;
			const char *owner = itest_str(d, "owner_id"), *cur = itest_str(d, "currency");
			int64_t v;

			snprintf(buf, sizeof buf, "%s%s", strcmp(owner, s.hostile) == 0 ? "'" : "",
				 owner);
			row = row_of(rows, buf, cur);
			if (!EXPECT(row, "a CSV row for %s %s", owner, cur))
				continue;
			itest_int(d, "amount_micros", &v);
			EXPECT(strtoll(col(row, "amount_micros"), NULL, 10) == v, "amount of %s",
			       owner);
			itest_int(d, "requests", &v);
			EXPECT(strtoll(col(row, "requests"), NULL, 10) == v, "requests of %s", owner);
			EXPECT(strtoll(col(row, "lines"), NULL, 10) ==
			       (long long)itest_len(itest_get(d, "lines")), "lines of %s", owner);
			EXPECT(strcmp(col(row, "status"), "closed") == 0 &&
			       strcmp(col(row, "period"), s.m) == 0, "closed row of %s", owner);
			idem_key(owner, cur, key);
			EXPECT(strcmp(col(row, "idempotency_key"), key) == 0, "idempotency key of %s",
			       owner);
		}
	}
	itest_resp_fini(&j);
	snprintf(buf, sizeof buf, "'%s", s.hostile);
	EXPECT(row_of(rows, s.owner_a, "USD") &&
	       strcmp(col(row_of(rows, s.owner_a, "USD"), "amount_minor"), "200") == 0 &&
	       row_of(rows, buf, "USD") &&
	       strcmp(col(row_of(rows, buf, "USD"), "amount_minor"), "100") == 0 &&
	       row_of(rows, s.owner_j, "JPY") &&
	       strcmp(col(row_of(rows, s.owner_j, "JPY"), "amount_minor"), "2") == 0,
	       "minor units 200 cents, 100 cents, 2 yen: %.600s", r.body);
out:
	json_object_put(rows);
	itest_resp_fini(&r);
}

/* An owner token exports its own records only. */
static void test_csv_owner_token(void)
{
	struct itest_resp r;
	char body[512], q[256], esc[256];
	json_object *rows;
	int crlf;

	if (!s.ready)
		return;
	memset(&owner_tok, 0, sizeof owner_tok);
	snprintf(body, sizeof body,
		 "{\"role\":\"owner\",\"owner_id\":%s,\"tier\":%s,\"name\":\"itbe-owner\"}",
		 itest_q(s.owner_a), itest_q(s.t_usd));
	itest_call(&r, "POST", "/v1/admin/tokens", itest_admin_token(), body);
	if (EXPECT_STATUS(&r, 201)) {
		snprintf(owner_tok.id, sizeof owner_tok.id, "%s", itest_str(r.json, "id"));
		snprintf(owner_tok.token, sizeof owner_tok.token, "%s", itest_str(r.json, "token"));
	}
	itest_resp_fini(&r);
	if (!owner_tok.token[0])
		return;
	records_get(&r, owner_tok.token, "&format=csv");
	EXPECT_STATUS(&r, 200);
	rows = csv_parse(r.body, &crlf);
	EXPECT(itest_len(rows) == 2 && strcmp(col(itest_idx(rows, 1), "owner_id"), s.owner_a) == 0,
	       "only the owner's row: %.600s", r.body);
	json_object_put(rows);
	itest_resp_fini(&r);
	snprintf(q, sizeof q, "&format=csv&owner_id=%s", itest_escape(s.owner_j, esc, sizeof esc));
	records_get(&r, owner_tok.token, q);
	EXPECT_ERROR(&r, 403, "forbidden", "owner_id");
	itest_resp_fini(&r);
}

static void test_webhook_delete(void)
{
	struct itest_resp r;
	char path[256];

	if (!s.hook_id[0])
		return;
	snprintf(path, sizeof path, "/v1/billing/webhooks/%s", s.hook_id);
	itest_call(&r, "DELETE", path, operator_tok.token, NULL);
	EXPECT_ERROR(&r, 403, "forbidden", NULL);
	itest_resp_fini(&r);
	itest_call(&r, "DELETE", path, billing_tok.token, NULL);
	EXPECT_STATUS(&r, 204);
	itest_resp_fini(&r);
	itest_call(&r, "GET", path, billing_tok.token, NULL);
	EXPECT_ERROR(&r, 404, "not_found", NULL);
	itest_resp_fini(&r);
	s.hook_id[0] = '\0';
}

int itest_register_billing_events(void)
{
	CU_pSuite su = CU_add_suite("billing_events", suite_init, suite_clean);

	if (!su ||
	    !CU_add_test(su, "seed a past month", test_seed) ||
	    !CU_add_test(su, "billing webhooks: roles, SSRF, secret once", test_webhook_api) ||
	    !CU_add_test(su, "CSV: open month, refusals", test_csv_open_and_refusals) ||
	    !CU_add_test(su, "close emits one signed event, retried", test_close_emits_once) ||
	    !CU_add_test(su, "CSV: quoting, amounts, idempotency keys", test_csv_closed) ||
	    !CU_add_test(su, "CSV: owner token", test_csv_owner_token) ||
	    !CU_add_test(su, "billing webhooks: delete", test_webhook_delete))
		return -1;
	return 0;
}
