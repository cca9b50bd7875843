/*
 * itest_privacy.c - GDPR export and erasure of an owner: the export holds
 * the owner's keys, usage, billing, alerts and audit entries (never a
 * secret, never another owner's data); the erasure removes them from every
 * store and cache, keeps the billing records under a pseudonym with the
 * same totals, and leaves an audit chain that verifies and no personal
 * field of the owner in the audit tables.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <libpq-fe.h>

#include "itest_fixture.h"
#include "itest_hook.h"
#include "itest_suites.h"

/* Checks per key and round: the pool has 4 processes by default and lighttpd
 * spreads connections over them, so 40 reach each one many times. */
#define CHECKS_PER_ROUND 40
#define ERASE_DEADLINE_MS 20000

static struct itest_token operator_tok;
static int hook_port = -1;

/* What the export test made, used by the erasure test. */
static struct {
	char a[64], b[64];	/* owner ids */
	char name[64], email[96], hook_path[64];
	struct itest_key a1, a2, b1;
	char rule[160];
	int made;
} fx;

static int suite_init(void)
{
	if (itest_token_create(&operator_tok, "operator") != 0)
		return -1;
	hook_port = hook_start();
	return hook_port > 0 && itest_big_tier() ? 0 : -1;
}

static int suite_clean(void)
{
	if (operator_tok.id[0])
		itest_token_revoke(&operator_tok);
	if (hook_port > 0)
		hook_stop();
	return 0;
}

/* n checks of key; returns how many answered status want (and, for a
 * denial, reason want_reason); *last gets the last other answer seen. */
static int checks(const char *key, int n, long want, const char *want_reason,
		  char *last, size_t last_n)
{
	int good = 0;

	for (int i = 0; i < n; i++) {
		struct itest_resp r;

		itest_check(&r, itest_admin_token(), key);
		const char *reason = itest_str(r.json, "reason");
		if (r.status == want && (!want_reason || (reason && !strcmp(reason, want_reason))))
			good++;
		else if (last)
			snprintf(last, last_n, "%ld %.200s", r.status, r.body);
		itest_resp_fini(&r);
	}
	return good;
}

/* The owner's usage history: total requests, or -1. */
static int64_t owner_requests(const char *owner)
{
	struct itest_resp r;
	char path[256], esc[160];
	int64_t total = 0;

	snprintf(path, sizeof path, "/v1/owners/%s/usage?granularity=day",
		 itest_escape(owner, esc, sizeof esc));
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	if (r.status != 200) {
		itest_resp_fini(&r);
		return -1;
	}
	json_object *data = itest_get(r.json, "data");
	for (size_t i = 0; i < itest_len(data); i++) {
		int64_t n = 0;
		if (itest_int(itest_idx(data, i), "requests", &n))
			total += n;
	}
	itest_resp_fini(&r);
	return total;
}

/* Polls until the owner's history counts want requests (bounded). */
static int wait_requests(const char *owner, int64_t want)
{
	int64_t got = -1, t0 = itest_now_ms();

	while (itest_now_ms() - t0 < 20000) {
		if ((got = owner_requests(owner)) >= want)
			return 1;
		itest_sleep_ms(200);
	}
	return EXPECT(0, "owner %s: %lld requests in the history after 20 s, want %lld", owner,
		      (long long)got, (long long)want);
}

/* Sum of requests and amount_micros over the billing records of owner. */
static void billing_totals(const char *owner, int64_t *requests, int64_t *amount, int *records)
{
	struct itest_resp r;
	char path[256], esc[160];

	*requests = *amount = 0;
	*records = 0;
	snprintf(path, sizeof path, "/v1/billing/records?owner_id=%s",
		 itest_escape(owner, esc, sizeof esc));
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	json_object *data = itest_get(r.json, "data");
	for (size_t i = 0; i < itest_len(data); i++) {
		int64_t n = 0, a = 0;
		json_object *rec = itest_idx(data, i);
		EXPECT_STR(&r, rec, "owner_id", owner);
		if (itest_int(rec, "requests", &n) && itest_int(rec, "amount_micros", &a)) {
			*requests += n;
			*amount += a;
		}
		(*records)++;
	}
	itest_resp_fini(&r);
}

static int64_t billed_requests, billed_amount;
static int billed_records;

static void make_fixture(void)
{
	struct itest_resp r;
	char body[1024], extra[512];

	snprintf(fx.a, sizeof fx.a, "gdpr-a-%s", itest_suffix());
	snprintf(fx.b, sizeof fx.b, "gdpr-b-%s", itest_suffix());
	snprintf(fx.name, sizeof fx.name, "gdpr-name-%s", itest_suffix());
	snprintf(fx.email, sizeof fx.email, "gdpr-%s@example.com", itest_suffix());
	snprintf(fx.hook_path, sizeof fx.hook_path, "/gdpr-%s", itest_suffix());
	snprintf(extra, sizeof extra, "\"name\":%s,\"meta\":{\"email\":%s}", itest_q(fx.name),
		 itest_q(fx.email));
	if (itest_key_create(&fx.a1, fx.a, "pro", extra, NULL) != 0 ||
	    itest_key_create(&fx.a2, fx.a, "free", NULL, NULL) != 0 ||
	    itest_key_create(&fx.b1, fx.b, itest_big_tier(), NULL, NULL) != 0)
		return;
	snprintf(body, sizeof body,
		 "{\"owner_id\":%s,\"metric\":\"rate_limited\",\"threshold\":1,"
		 "\"webhook_url\":\"http://127.0.0.1:%d%s\",\"secret\":\"gdpr-secret-0123456789\"}",
		 itest_q(fx.a), hook_port, fx.hook_path);
	itest_call(&r, "POST", "/v1/alerts", itest_admin_token(), body);
	EXPECT_STATUS(&r, 201);
	snprintf(fx.rule, sizeof fx.rule, "%s", itest_str(r.json, "id") ? itest_str(r.json, "id") : "");
	itest_resp_fini(&r);
	/* a1 allowed, a2 past its 5 per second (an alert fires), b1 allowed */
	checks(fx.a1.key, 5, 200, NULL, NULL, 0);
	checks(fx.a2.key, 8, 0, NULL, NULL, 0);
	checks(fx.b1.key, 3, 200, NULL, NULL, 0);
	fx.made = fx.rule[0] && hook_wait(fx.hook_path, 1, 30000) >= 1 &&
		  wait_requests(fx.a, 13) && wait_requests(fx.b, 3);
	EXPECT(fx.made, "the alert of %s was not delivered within 30 s", fx.a);
}

/* 1 when no element of arr names another key than a1 or a2 in key_id. */
static int only_own_keys(json_object *arr)
{
	for (size_t i = 0; i < itest_len(arr); i++) {
		const char *k = itest_str(itest_idx(arr, i), "key_id");
		if (!k || (strcmp(k, fx.a1.id) && strcmp(k, fx.a2.id)))
			return 0;
	}
	return 1;
}

static void test_export(void)
{
	struct itest_resp r;
	char path[256];

	make_fixture();
	if (!fx.made)
		return;
	snprintf(path, sizeof path, "/v1/owners/%s/export", fx.a);
	itest_call(&r, "GET", path, operator_tok.token, NULL);
	EXPECT_ERROR(&r, 403, "forbidden", NULL);
	itest_resp_fini(&r);
	itest_call(&r, "GET", "/v1/owners/gdpr-nobody-x/export", itest_admin_token(), NULL);
	EXPECT_ERROR(&r, 404, "not_found", NULL);
	itest_resp_fini(&r);
	char longid[160];
	memset(longid, 'x', 129);
	longid[129] = '\0';
	snprintf(path, sizeof path, "/v1/owners/%s/export", longid);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_ERROR(&r, 400, "invalid_argument", "owner_id");
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/owners/%s/export", fx.a);

	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	if (!EXPECT_STATUS(&r, 200) || !EXPECT(r.json, "export is not JSON: %.300s", r.body)) {
		itest_resp_fini(&r);
		return;
	}
	EXPECT_STR(&r, r.json, "owner_id", fx.a);
	EXPECT(itest_is_time(itest_str(r.json, "exported_at")), "exported_at: %.100s", r.body);
	json_object *keys = itest_get(r.json, "keys");
	EXPECT(itest_len(keys) == 2, "export has %zu keys, want 2", itest_len(keys));
	for (size_t i = 0; i < itest_len(keys); i++) {
		json_object *k = itest_idx(keys, i);
		EXPECT_STR(&r, k, "owner_id", fx.a);
		EXPECT(!itest_secret_member(k), "an exported key has member %s",
		       itest_secret_member(k) ? itest_secret_member(k) : "");
	}
	EXPECT(strstr(r.body, fx.email) && strstr(r.body, fx.name),
	       "the key's name and meta are not in the export");
	json_object *minutes = itest_get(r.json, "usage_minutes"),
		    *hours = itest_get(r.json, "usage_hours");
	EXPECT(itest_len(minutes) > 0 && itest_len(hours) > 0, "export without usage rows");
	EXPECT(only_own_keys(minutes) && only_own_keys(hours), "usage rows of other keys exported");
	json_object *billing = itest_get(r.json, "billing_records");
	EXPECT(itest_len(billing) > 0, "export without billing records");
	for (size_t i = 0; i < itest_len(billing); i++)
		EXPECT_STR(&r, itest_idx(billing, i), "owner_id", fx.a);
	json_object *rules = itest_get(r.json, "alert_rules");
	EXPECT(itest_len(rules) == 1, "export has %zu alert rules, want 1", itest_len(rules));
	EXPECT(!itest_secret_member(itest_idx(rules, 0)), "the exported rule has a secret member");
	json_object *deliveries = itest_get(r.json, "alert_deliveries");
	EXPECT(itest_len(deliveries) >= 1, "export without the alert's delivery");
	EXPECT(itest_len(itest_get(itest_idx(deliveries, 0), "attempts")) >= 1 ||
	       itest_len(deliveries) == 0, "the delivery has no attempt");
	json_object *audit = itest_get(r.json, "audit");
	int creates = 0;
	for (size_t i = 0; i < itest_len(audit); i++) {
		const char *res = itest_str(itest_idx(audit, i), "resource_id");
		EXPECT(res && (!strcmp(res, fx.a1.id) || !strcmp(res, fx.a2.id) ||
			       !strcmp(res, fx.rule)),
		       "audit entry about %s exported", res ? res : "?");
		const char *action = itest_str(itest_idx(audit, i), "action");
		creates += action && (!strcmp(action, "key.create") || !strcmp(action, "alert.create"));
	}
	EXPECT(creates == 3, "export holds %d create entries of the owner, want 3", creates);
	/* nothing of the other owner, no plaintext key, no sealed secret */
	EXPECT(!strstr(r.body, fx.b) && !strstr(r.body, fx.b1.id), "the other owner is in the export");
	EXPECT(!strstr(r.body, fx.a1.key) && !strstr(r.body, fx.a2.key), "a plaintext key is exported");
	EXPECT(!strstr(r.body, "gdpr-secret-0123456789") && !strstr(r.body, "secret_enc"),
	       "the webhook secret is exported");
	itest_resp_fini(&r);
}

/* 1 when every check of key over a round answers 401 invalid_key. */
static int refused_everywhere(const char *key, char *last, size_t n)
{
	return checks(key, CHECKS_PER_ROUND, 401, "invalid_key", last, n) == CHECKS_PER_ROUND;
}

static long status_of(const char *method, const char *path)
{
	struct itest_resp r;
	itest_call(&r, method, path, itest_admin_token(), NULL);
	long s = r.status;
	itest_resp_fini(&r);
	return s;
}

/* Runs sql (one count) as the schema's owner; -1 when it failed. */
static long long pg_count(PGconn *pg, const char *sql, const char *p1, const char *p2)
{
	const char *p[] = { p1, p2 };
	int n = p2 ? 2 : p1 ? 1 : 0;
	PGresult *res = PQexecParams(pg, sql, n, NULL, p, NULL, NULL, 0);
	long long v = PQresultStatus(res) == PGRES_TUPLES_OK ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
							       : -1;
	if (v < 0)
		fprintf(stderr, "itest privacy: %s: %s", sql, PQerrorMessage(pg));
	PQclear(res);
	return v;
}

/* What the database holds after the erasure, read as the schema's owner,
 * which sees every row and is not limited by the application's grants. */
static void expect_database_clean(const char *pseudonym)
{
	static const char *const markers[] = { "owner", "name", "email", "hook" };
	const char *values[] = { fx.a, fx.name, fx.email, fx.hook_path };
	const char *ci = getenv("TOLLGATE_PG_CONNINFO");
	PGconn *pg;

	if (!EXPECT(ci && *ci, "TOLLGATE_PG_CONNINFO is not set"))
		return;
	pg = PQconnectdb(ci);
	if (!EXPECT(PQstatus(pg) == CONNECTION_OK, "cannot connect: %s", PQerrorMessage(pg))) {
		PQfinish(pg);
		return;
	}
	for (size_t i = 0; i < 4; i++) {
		EXPECT(pg_count(pg, "SELECT count(*) FROM audit_log a WHERE strpos(a::text, $1) > 0",
				values[i], NULL) == 0, "the owner's %s is in audit_log", markers[i]);
		EXPECT(pg_count(pg, "SELECT count(*) FROM audit_personal p"
				" WHERE strpos(p::text, $1) > 0", values[i], NULL) == 0,
		       "the owner's %s is in audit_personal", markers[i]);
		EXPECT(pg_count(pg, "SELECT count(*) FROM billing_lines b WHERE strpos(b::text, $1) > 0",
				values[i], NULL) == 0, "the owner's %s is in billing_lines", markers[i]);
	}
	static const char *const by_key[] = {
		"SELECT count(*) FROM keys WHERE id IN ($1, $2)",
		"SELECT count(*) FROM key_secrets WHERE key_id IN ($1, $2)",
		"SELECT count(*) FROM usage_minute WHERE key_id IN ($1, $2)",
		"SELECT count(*) FROM usage_hour WHERE key_id IN ($1, $2)",
		"SELECT count(*) FROM usage_day WHERE key_id IN ($1, $2)",
		"SELECT count(*) FROM usage_month WHERE key_id IN ($1, $2)",
		"SELECT count(*) FROM key_quota_use WHERE key_id IN ($1, $2)",
		"SELECT count(*) FROM alert_events WHERE key_id IN ($1, $2)",
		"SELECT count(*) FROM alert_minute WHERE key_id IN ($1, $2)",
	};
	for (size_t i = 0; i < sizeof by_key / sizeof by_key[0]; i++)
		EXPECT(pg_count(pg, by_key[i], fx.a1.id, fx.a2.id) == 0, "after the erasure: %s > 0",
		       by_key[i]);
	EXPECT(pg_count(pg, "SELECT count(*) FROM erased_keys WHERE key_id IN ($1, $2)", fx.a1.id,
			fx.a2.id) == 2, "the erased keys are not recorded");
	EXPECT(pg_count(pg, "SELECT count(*) FROM alert_rules WHERE id = $1", fx.rule, NULL) == 0 &&
	       pg_count(pg, "SELECT count(*) FROM alert_attempts WHERE rule_id = $1", fx.rule,
			NULL) == 0, "the owner's alert rule or its attempts remain");
	EXPECT(pg_count(pg, "SELECT count(*) FROM billing_lines WHERE owner_id = $1", pseudonym,
			NULL) >= 2, "the billing lines are not kept under the pseudonym");
	PQfinish(pg);
}

static void test_erase(void)
{
	struct itest_resp r;
	char path[256], last[256] = "", pseudonym[80] = "";
	int64_t requests, amount, n = 0;
	int records;

	if (!fx.made)
		return;
	snprintf(path, sizeof path, "/v1/owners/%s", fx.a);
	itest_call(&r, "DELETE", path, operator_tok.token, NULL);
	EXPECT_ERROR(&r, 403, "forbidden", NULL);
	itest_resp_fini(&r);
	/* Every process caches the keys' records (a key with checks stays cached
	 * ten minutes), and the history settles before the billing is read. */
	EXPECT(checks(fx.a1.key, CHECKS_PER_ROUND, 200, NULL, last, sizeof last) == CHECKS_PER_ROUND,
	       "warming the caches: %s", last);
	itest_sleep_ms(1100); /* a2's windows empty again: its checks are allowed */
	checks(fx.a2.key, 4, 200, NULL, NULL, 0);
	if (!wait_requests(fx.a, 13 + CHECKS_PER_ROUND + 4))
		return;
	billing_totals(fx.a, &billed_requests, &billed_amount, &billed_records);
	EXPECT(billed_records >= 1 && billed_requests >= CHECKS_PER_ROUND + 9,
	       "billing before the erasure: %d records, %lld requests", billed_records,
	       (long long)billed_requests);

	/* A self-service token of the owner: revoked by the erasure. */
	char body[512], owner_token[256] = "";
	snprintf(body, sizeof body, "{\"role\":\"owner\",\"owner_id\":%s,\"tier\":%s,"
		 "\"name\":\"erased with its owner\"}", itest_q(fx.a), itest_q(itest_big_tier()));
	itest_call(&r, "POST", "/v1/admin/tokens", itest_admin_token(), body);
	if (EXPECT_STATUS(&r, 201) && itest_str(r.json, "token"))
		snprintf(owner_token, sizeof owner_token, "%s", itest_str(r.json, "token"));
	itest_resp_fini(&r);
	itest_record_secret(owner_token);

	int64_t t0 = itest_now_ms();
	itest_call(&r, "DELETE", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 202);
	snprintf(pseudonym, sizeof pseudonym, "%s",
		 itest_str(r.json, "pseudonym") ? itest_str(r.json, "pseudonym") : "");
	EXPECT(!strncmp(pseudonym, "erased_", 7) && !strstr(r.body, fx.a),
	       "erasure answer: %.300s", r.body);
	EXPECT(itest_int(r.json, "erased.keys", &n) && n == 2, "erased keys: %.300s", r.body);
	itest_resp_fini(&r);

	/* Gone within a bounded poll, in every process of the pool. */
	char kpath[2][256];
	snprintf(kpath[0], sizeof kpath[0], "/v1/keys/%s", fx.a1.id);
	snprintf(kpath[1], sizeof kpath[1], "/v1/keys/%s", fx.a2.id);
	int gone = 0;
	while (!gone && itest_now_ms() - t0 < ERASE_DEADLINE_MS) {
		gone = status_of("GET", kpath[0]) == 404 && status_of("GET", kpath[1]) == 404 &&
		       refused_everywhere(fx.a1.key, last, sizeof last) &&
		       refused_everywhere(fx.a2.key, last, sizeof last);
		if (!gone)
			itest_sleep_ms(200);
	}
	EXPECT(gone, "%d s after the erasure the keys still answer (last: %s)",
	       ERASE_DEADLINE_MS / 1000, last);
	printf("\n    (erased keys refused by every check %lld ms after the erasure) ",
	       (long long)(itest_now_ms() - t0));

	long whoami = 0;
	while (*owner_token && itest_now_ms() - t0 < ERASE_DEADLINE_MS) {
		itest_call(&r, "GET", "/v1/admin/whoami", owner_token, NULL);
		whoami = r.status;
		itest_resp_fini(&r);
		if (whoami == 401)
			break;
		itest_sleep_ms(200);
	}
	EXPECT(*owner_token && whoami == 401, "the owner's token after the erasure: %ld", whoami);

	EXPECT(owner_requests(fx.a) == 0, "the owner's usage history is not empty");
	snprintf(path, sizeof path, "/v1/keys/%s/usage", fx.a1.id);
	EXPECT(status_of("GET", path) == 404, "a1's usage is still readable");
	snprintf(path, sizeof path, "/v1/alerts/%s", fx.rule);
	EXPECT(status_of("GET", path) == 404, "the owner's alert rule remains");

	/* Billing kept under the pseudonym, totals unchanged; none under the id. */
	billing_totals(fx.a, &requests, &amount, &records);
	EXPECT(records == 0, "%d billing records still name the owner", records);
	billing_totals(pseudonym, &requests, &amount, &records);
	EXPECT(records == billed_records && requests == billed_requests && amount == billed_amount,
	       "billing under the pseudonym: %d records, %lld requests, %lld micros; before: %d, "
	       "%lld, %lld", records, (long long)requests, (long long)amount, billed_records,
	       (long long)billed_requests, (long long)billed_amount);

	/* The other owner is untouched. */
	snprintf(path, sizeof path, "/v1/keys/%s", fx.b1.id);
	EXPECT(status_of("GET", path) == 200, "the other owner's key is gone");
	EXPECT(checks(fx.b1.key, 3, 200, NULL, last, sizeof last) == 3,
	       "the other owner's key no longer checks: %s", last);

	/* The chain verifies; the erasure is recorded without personal data;
	 * entries about the erased keys show their personal fields erased. */
	itest_call(&r, "GET", "/v1/audit/verify", itest_admin_token(), NULL);
	EXPECT(r.status == 200 && json_object_get_boolean(itest_get(r.json, "ok")),
	       "audit chain after the erasure: %.300s", r.body);
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/audit?action=owner.erase&resource_id=%s", pseudonym);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT(itest_len(itest_get(r.json, "data")) == 1 && !strstr(r.body, fx.a),
	       "owner.erase entries: %.300s", r.body);
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/audit?resource_id=%s", fx.a1.id);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	json_object *e = itest_idx(itest_get(r.json, "data"), 0);
	EXPECT(e && !strcmp(itest_str(e, "personal") ? itest_str(e, "personal") : "", "erased") &&
	       itest_is_null(e, "ip") && !itest_get(e, "changes.owner_id") &&
	       itest_get(e, "changes.tier") && !strstr(r.body, fx.name),
	       "a1's create entry after the erasure: %.400s", r.body);
	itest_resp_fini(&r);
	expect_database_clean(pseudonym);

	/* Nothing left: erasing again or exporting is 404. */
	snprintf(path, sizeof path, "/v1/owners/%s", fx.a);
	itest_call(&r, "DELETE", path, itest_admin_token(), NULL);
	EXPECT_ERROR(&r, 404, "not_found", NULL);
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/owners/%s/export", fx.a);
	EXPECT(status_of("GET", path) == 404, "export after the erasure is not 404");
}

/* The schema's owner rewrites the client address kept apart for the other
 * owner's key.create entry (the trigger that forbids it turned off): the
 * entry's commitment no longer matches and verify names it; restored, the
 * chain verifies again. */
static void test_personal_tamper(void)
{
	const char *ci = getenv("TOLLGATE_PG_CONNINFO");
	char seq[32] = "";
	PGconn *pg;

	if (!fx.made || !EXPECT(ci && *ci, "TOLLGATE_PG_CONNINFO is not set"))
		return;
	pg = PQconnectdb(ci);
	if (!EXPECT(PQstatus(pg) == CONNECTION_OK, "cannot connect: %s", PQerrorMessage(pg))) {
		PQfinish(pg);
		return;
	}
	const char *p[] = { fx.b1.id };
	PGresult *res = PQexecParams(pg, "SELECT seq FROM audit_log WHERE resource_id = $1"
				     " AND action = 'key.create'", 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		snprintf(seq, sizeof seq, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (!EXPECT(seq[0], "no key.create entry for %s", fx.b1.id)) {
		PQfinish(pg);
		return;
	}
	char sql[512];
	snprintf(sql, sizeof sql,
		 "ALTER TABLE audit_personal DISABLE TRIGGER audit_personal_no_change; "
		 "UPDATE audit_personal SET ip = '192.0.2.1' WHERE seq = %s; "
		 "ALTER TABLE audit_personal ENABLE TRIGGER audit_personal_no_change", seq);
	res = PQexec(pg, sql);
	int changed = EXPECT(PQresultStatus(res) == PGRES_COMMAND_OK, "tampering: %s",
			     PQerrorMessage(pg));
	PQclear(res);
	struct itest_resp r;
	itest_call(&r, "GET", "/v1/audit/verify", itest_admin_token(), NULL);
	int64_t bad = -1;
	EXPECT(!changed || (r.status == 200 && !json_object_get_boolean(itest_get(r.json, "ok")) &&
			    itest_int(r.json, "first_bad_seq", &bad) && bad == atoll(seq)),
	       "after entry %s's personal fields were rewritten, verify answered %.200s", seq,
	       r.body);
	itest_resp_fini(&r);
	snprintf(sql, sizeof sql,
		 "ALTER TABLE audit_personal DISABLE TRIGGER audit_personal_no_change; "
		 "UPDATE audit_personal SET ip = '127.0.0.1' WHERE seq = %s; "
		 "ALTER TABLE audit_personal ENABLE TRIGGER audit_personal_no_change", seq);
	res = PQexec(pg, sql);
	EXPECT(PQresultStatus(res) == PGRES_COMMAND_OK, "restoring: %s", PQerrorMessage(pg));
	PQclear(res);
	PQfinish(pg);
	itest_call(&r, "GET", "/v1/audit/verify", itest_admin_token(), NULL);
	EXPECT(r.status == 200 && json_object_get_boolean(itest_get(r.json, "ok")),
	       "the restored chain does not verify: %.200s", r.body);
	itest_resp_fini(&r);
}

int itest_register_privacy(void)
{
	CU_pSuite s = CU_add_suite("privacy", suite_init, suite_clean);

	if (!s)
		return -1;
	if (!CU_add_test(s, "export of an owner", test_export) ||
	    !CU_add_test(s, "erasure of an owner", test_erase) ||
	    !CU_add_test(s, "a personal field rewritten in SQL is found", test_personal_tamper))
		return -1;
	return 0;
}
