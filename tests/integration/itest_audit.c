/*
 * itest_audit.c - the audit trail: one entry per change, attributed,
 * correlated by request id, filterable, secret-free and verifiable.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <libpq-fe.h>

#include "itest_fixture.h"
#include "itest_suites.h"

static struct itest_token operator_tok;
static char operator_id[160];
static long entries_seen;

/* The key lifecycle of test_audit_key, reused by the filter test. */
static struct {
	char id[160];
	char owner[128];
	char key[256];
	char newkey[256];
	char rq[5][64];
	char ts[4][32];
} life;

static int suite_init(void)
{
	struct itest_resp r;

	if (itest_token_create(&operator_tok, "operator") != 0)
		return -1;
	itest_call(&r, "GET", "/v1/admin/whoami", operator_tok.token, NULL);
	snprintf(operator_id, sizeof operator_id, "%s",
		 itest_str(r.json, "id") ? itest_str(r.json, "id") : "");
	itest_resp_fini(&r);
	return operator_id[0] && itest_admin_id()[0] ? 0 : -1;
}

static int suite_clean(void)
{
	if (operator_tok.id[0])
		itest_token_revoke(&operator_tok);
	return 0;
}

static void rid(char *buf, size_t n, const char *tag)
{
	snprintf(buf, n, "it-%s-%s", itest_suffix(), tag);
}

/* A call carrying X-Request-Id: rq. */
static void call_rid(struct itest_resp *r, const char *method, const char *path,
		     const char *token, const char *body, const char *rq)
{
	char hdr[256];
	const char *h[2] = { hdr, NULL };
	struct itest_req q = { .method = method, .path = path, .token = token, .body = body,
			       .headers = h };

	snprintf(hdr, sizeof hdr, "X-Request-Id: %s", rq);
	itest_send(r, &q);
}

/* All entries for a query (resource_id etc. already in `query`). New array. */
static json_object *audit_list(const char *query)
{
	json_object *all = NULL;
	char path[1200];

	snprintf(path, sizeof path, "/v1/audit?%s", query);
	if (itest_list_all(path, itest_admin_token(), 1000, 10, &all) < 0)
		return NULL;
	return all;
}

static json_object *audit_for(const char *resource_id)
{
	char q[512], esc[400];

	snprintf(q, sizeof q, "resource_id=%s", itest_escape(resource_id, esc, sizeof esc));
	return audit_list(q);
}

static int is_hex64(const char *s)
{
	size_t i;

	if (!s || strlen(s) != 64)
		return 0;
	for (i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* Checks the members of one entry against what the call that made it did. */
static void expect_entry(json_object *e, const char *action, const char *type,
			 const char *resource_id, const char *actor, const char *role,
			 const char *request_id)
{
	json_object *changes = itest_get(e, "changes");
	const char *hash = itest_str(e, "hash");
	int64_t seq = 0;

	EXPECT(e != NULL, "no audit entry for %s", action);
	if (!e)
		return;
	EXPECT_STR(NULL, e, "action", action);
	EXPECT_STR(NULL, e, "resource_type", type);
	EXPECT_STR(NULL, e, "resource_id", resource_id);
	EXPECT_STR(NULL, e, "actor", actor);
	EXPECT_STR(NULL, e, "role", role);
	EXPECT_STR(NULL, e, "request_id", request_id);
	EXPECT(itest_str(e, "id") && *itest_str(e, "id"), "%s: entry without id", action);
	EXPECT(itest_int(e, "seq", &seq) && seq > 0, "%s: seq: %s", action,
	       json_object_to_json_string(e));
	EXPECT(is_hex64(hash), "%s: hash is not 64 hex characters: %s", action, hash ? hash : "?");
	EXPECT(itest_is_time(itest_str(e, "ts")), "%s: ts: %s", action, json_object_to_json_string(e));
	EXPECT(itest_str(e, "ip") && *itest_str(e, "ip"), "%s: ip: %s", action,
	       json_object_to_json_string(e));
	/* The suite talks to a loopback stack: the client address is known. */
	if (strstr(getenv("TOLLGATE_URL"), "://127.0.0.1:"))
		EXPECT_STR(NULL, e, "ip", "127.0.0.1");
	EXPECT(json_object_is_type(changes, json_type_object), "%s: changes is not an object: %s",
	       action, json_object_to_json_string(e));
	EXPECT(!itest_secret_member(changes), "%s: changes has member %s", action,
	       itest_secret_member(changes) ? itest_secret_member(changes) : "");
}

/* Every change of a create has "to" and no "from". */
static void expect_create_changes(json_object *e)
{
	json_object *changes = itest_get(e, "changes");

	if (!changes || !json_object_is_type(changes, json_type_object))
		return;
	EXPECT(itest_nmembers(changes) > 0, "create with no changes");
	json_object_object_foreach(changes, field, c) {
		EXPECT(json_object_is_type(c, json_type_object) && !itest_get(c, "from") &&
		       json_object_object_get_ex(c, "to", NULL),
		       "create change %s is not {\"to\":…}: %s", field, json_object_to_json_string(c));
	}
}

/* changes.<field> is {"from": from, "to": to} (strings). */
static void expect_change(json_object *e, const char *field, const char *from, const char *to)
{
	char fp[96], tp[96];

	snprintf(fp, sizeof fp, "changes.%s.from", field);
	snprintf(tp, sizeof tp, "changes.%s.to", field);
	EXPECT_STR(NULL, e, fp, from);
	EXPECT_STR(NULL, e, tp, to);
}

static void expect_seq_increasing(json_object *all)
{
	size_t i, n = itest_len(all);
	int64_t prev = 0, seq;

	for (i = 0; i < n; i++) {
		json_object *e = itest_idx(all, i);

		seq = -1;
		EXPECT(itest_int(e, "seq", &seq) && seq > prev, "seq %lld after %lld",
		       (long long)seq, (long long)prev);
		prev = seq;
	}
}

/* Creates, renames, fails to patch, rotates and revokes one key, each call
 * with its own request id; what the checks need goes into `life`. */
static int key_lifecycle(void)
{
	static const char *const tags[5] = { "kc", "ku", "kf", "kr", "kd" };
	struct itest_resp r;
	char path[256], body[512];
	size_t i;

	for (i = 0; i < 5; i++)
		rid(life.rq[i], sizeof life.rq[i], tags[i]);
	snprintf(life.owner, sizeof life.owner, "acct_it%s_audit", itest_suffix());
	snprintf(body, sizeof body, "{\"owner_id\":%s,\"tier\":\"free\",\"name\":\"before\"}",
		 itest_q(life.owner));
	call_rid(&r, "POST", "/v1/keys", itest_admin_token(), body, life.rq[0]);
	EXPECT_STATUS(&r, 201);
	snprintf(life.id, sizeof life.id, "%s", itest_str(r.json, "id") ? itest_str(r.json, "id") : "");
	snprintf(life.key, sizeof life.key, "%s", itest_str(r.json, "key") ? itest_str(r.json, "key") : "");
	itest_resp_fini(&r);
	if (!life.id[0] || !life.key[0])
		return -1;
	snprintf(path, sizeof path, "/v1/keys/%s", life.id);

	itest_sleep_ms(15);
	call_rid(&r, "PATCH", path, itest_admin_token(), "{\"name\":\"audited\"}", life.rq[1]);
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	call_rid(&r, "PATCH", path, itest_admin_token(), "{\"remaining\":\"x\"}", life.rq[2]);
	EXPECT_STATUS(&r, 400);
	itest_resp_fini(&r);
	itest_sleep_ms(15);
	snprintf(body, sizeof body, "%s/rotate", path);
	call_rid(&r, "POST", body, itest_admin_token(), "{\"grace_seconds\":0}", life.rq[3]);
	EXPECT_STATUS(&r, 200);
	snprintf(life.newkey, sizeof life.newkey, "%s",
		 itest_str(r.json, "key") ? itest_str(r.json, "key") : "");
	itest_resp_fini(&r);
	itest_sleep_ms(15);
	call_rid(&r, "DELETE", path, itest_admin_token(), NULL, life.rq[4]);
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	return 0;
}

/* No entry shows a plaintext key or the refused call; remembers the times. */
static void expect_clean_entries(json_object *all)
{
	size_t i;

	for (i = 0; i < itest_len(all); i++) {
		const char *text = json_object_to_json_string(itest_idx(all, i));
		const char *ts = itest_str(itest_idx(all, i), "ts");

		EXPECT(!strstr(text, life.key) && !strstr(text, life.key + 3) &&
		       (!life.newkey[0] ||
			(!strstr(text, life.newkey) && !strstr(text, life.newkey + 3))),
		       "audit entry %zu holds a plaintext key", i);
		EXPECT(!strstr(text, life.rq[2]), "the refused PATCH wrote an entry: %s", text);
		if (i < 4 && ts)
			snprintf(life.ts[i], sizeof life.ts[i], "%s", ts);
	}
}

static void test_audit_key(void)
{
	const char *admin = itest_admin_id();
	json_object *all, *e;

	if (key_lifecycle() != 0)
		return;
	all = audit_for(life.id);
	if (!all)
		return;
	EXPECT(itest_len(all) == 4,
	       "want 4 audit entries (create, update, rotate, revoke), got %zu: %s",
	       itest_len(all), json_object_to_json_string(all));
	entries_seen += (long)itest_len(all);
	expect_seq_increasing(all);
	expect_clean_entries(all);

	e = itest_idx(all, 0);
	expect_entry(e, "key.create", "key", life.id, admin, "admin", life.rq[0]);
	expect_create_changes(e);
	EXPECT_STR(NULL, e, "changes.owner_id.to", life.owner);
	EXPECT_STR(NULL, e, "changes.name.to", "before");

	e = itest_idx(all, 1);
	expect_entry(e, "key.update", "key", life.id, admin, "admin", life.rq[1]);
	expect_change(e, "name", "before", "audited");
	EXPECT(!itest_get(e, "changes.status") && !itest_get(e, "changes.tier"),
	       "update lists unchanged fields: %s", json_object_to_json_string(e));

	e = itest_idx(all, 2);
	expect_entry(e, "key.rotate", "key", life.id, admin, "admin", life.rq[3]);

	e = itest_idx(all, 3);
	expect_entry(e, "key.revoke", "key", life.id, admin, "admin", life.rq[4]);
	expect_change(e, "status", "active", "revoked");
	json_object_put(all);
}

static void test_audit_tier(void)
{
	struct itest_resp r;
	char name[64], rq[3][64], body[512], path[128];
	json_object *all, *e;

	snprintf(name, sizeof name, "it%s-audit", itest_suffix());
	rid(rq[0], sizeof rq[0], "tc");
	rid(rq[1], sizeof rq[1], "tu");
	rid(rq[2], sizeof rq[2], "tf");
	snprintf(body, sizeof body, "{\"name\":\"%s\",\"limits\":[{\"name\":\"per_second\","
		 "\"window_s\":1,\"limit\":5}]}", name);
	call_rid(&r, "POST", "/v1/tiers", operator_tok.token, body, rq[0]);
	EXPECT_STATUS(&r, 201);
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/tiers/%s", name);
	call_rid(&r, "PATCH", path, itest_admin_token(),
		 "{\"price\":{\"currency\":\"USD\",\"base_micros\":7,\"overage_per_1000_micros\":1}}",
		 rq[1]);
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	call_rid(&r, "PATCH", path, itest_admin_token(),
		 "{\"limits\":[{\"name\":\"per_second\",\"window_s\":0,\"limit\":5}]}", rq[2]);
	EXPECT_STATUS(&r, 400);
	itest_resp_fini(&r);

	all = audit_for(name);
	if (!all)
		return;
	EXPECT(itest_len(all) == 2, "want 2 tier entries, got %s",
	       json_object_to_json_string(all));
	entries_seen += (long)itest_len(all);
	expect_seq_increasing(all);
	e = itest_idx(all, 0);
	expect_entry(e, "tier.create", "tier", name, operator_id, "operator", rq[0]);
	expect_create_changes(e);
	e = itest_idx(all, 1);
	expect_entry(e, "tier.update", "tier", name, itest_admin_id(), "admin", rq[1]);
	EXPECT(itest_get(e, "changes.price") &&
	       json_object_get_int64(itest_get(e, "changes.price.to.base_micros")) == 7,
	       "tier.update changes: %s", json_object_to_json_string(e));
	EXPECT(!itest_get(e, "changes.limits"), "tier.update lists unchanged limits: %s",
	       json_object_to_json_string(e));
	json_object_put(all);
}

static void test_audit_token(void)
{
	struct itest_resp r;
	char rq[2][64], body[256], path[256], id[160] = "", tok[256] = "";
	json_object *all, *e;
	size_t i;

	rid(rq[0], sizeof rq[0], "oc");
	rid(rq[1], sizeof rq[1], "od");
	snprintf(body, sizeof body, "{\"role\":\"billing\",\"name\":\"it-audit-%s\"}", itest_suffix());
	call_rid(&r, "POST", "/v1/admin/tokens", itest_admin_token(), body, rq[0]);
	EXPECT_STATUS(&r, 201);
	snprintf(id, sizeof id, "%s", itest_str(r.json, "id") ? itest_str(r.json, "id") : "");
	snprintf(tok, sizeof tok, "%s", itest_str(r.json, "token") ? itest_str(r.json, "token") : "");
	itest_resp_fini(&r);
	if (!id[0] || !tok[0])
		return;
	snprintf(path, sizeof path, "/v1/admin/tokens/%s", id);
	call_rid(&r, "DELETE", path, itest_admin_token(), NULL, rq[1]);
	EXPECT_STATUS(&r, 204);
	itest_resp_fini(&r);

	all = audit_for(id);
	if (!all)
		return;
	EXPECT(itest_len(all) == 2, "want 2 token entries, got %s",
	       json_object_to_json_string(all));
	entries_seen += (long)itest_len(all);
	expect_seq_increasing(all);
	for (i = 0; i < itest_len(all); i++)
		EXPECT(!strstr(json_object_to_json_string(itest_idx(all, i)), tok + 6),
		       "token audit entry holds the plaintext token");
	e = itest_idx(all, 0);
	expect_entry(e, "token.create", "token", id, itest_admin_id(), "admin", rq[0]);
	expect_create_changes(e);
	EXPECT_STR(NULL, e, "changes.role.to", "billing");
	e = itest_idx(all, 1);
	expect_entry(e, "token.revoke", "token", id, itest_admin_id(), "admin", rq[1]);
	json_object_put(all);
}

static const char *ts_of(json_object *e)
{
	const char *s = itest_str(e, "ts");

	return s ? s : "";
}

static const char *action_of(json_object *e)
{
	const char *s = itest_str(e, "action");

	return s ? s : "";
}

/* 1 when some entry of the list has this ts. */
static int has_ts(json_object *all, const char *ts)
{
	size_t j;

	for (j = 0; j < itest_len(all); j++)
		if (strcmp(ts_of(itest_idx(all, j)), ts) == 0)
			return 1;
	return 0;
}

/* actor= and action= narrow the list. */
static void test_audit_filter_actor(void)
{
	char owner[128], q[1024], esc[256], rq[64], key_id[160];
	struct itest_resp r;
	json_object *all, *mine = NULL;
	size_t i, n;

	/* An entry by the operator. */
	snprintf(owner, sizeof owner, "acct_it%s_audit_op", itest_suffix());
	rid(rq, sizeof rq, "opc");
	snprintf(q, sizeof q, "{\"owner_id\":%s,\"tier\":\"free\"}", itest_q(owner));
	call_rid(&r, "POST", "/v1/keys", operator_tok.token, q, rq);
	EXPECT_STATUS(&r, 201);
	snprintf(key_id, sizeof key_id, "%s", itest_str(r.json, "id") ? itest_str(r.json, "id") : "");
	itest_resp_fini(&r);

	snprintf(q, sizeof q, "actor=%s", itest_escape(operator_id, esc, sizeof esc));
	all = audit_list(q);
	n = itest_len(all);
	EXPECT(n >= 2, "operator made at least 2 entries, actor= lists %zu", n);
	for (i = 0; i < n; i++) {
		json_object *e = itest_idx(all, i);
		const char *res = itest_str(e, "resource_id");

		EXPECT_STR(NULL, e, "actor", operator_id);
		if (res && strcmp(res, key_id) == 0)
			mine = e;
	}
	EXPECT(mine != NULL, "operator's key.create not under actor=");
	if (mine)
		expect_entry(mine, "key.create", "key", key_id, operator_id, "operator", rq);
	json_object_put(all);

	snprintf(q, sizeof q, "action=key.create&actor=%s", itest_escape(operator_id, esc, sizeof esc));
	all = audit_list(q);
	n = itest_len(all);
	EXPECT(n >= 1, "action=key.create&actor=: empty");
	for (i = 0; i < n; i++) {
		EXPECT_STR(NULL, itest_idx(all, i), "action", "key.create");
		EXPECT_STR(NULL, itest_idx(all, i), "actor", operator_id);
	}
	json_object_put(all);

	if (!life.id[0])
		return;
	snprintf(q, sizeof q, "resource_id=%s&action=key.rotate", life.id);
	all = audit_list(q);
	EXPECT(itest_len(all) == 1 && strcmp(action_of(itest_idx(all, 0)), "key.rotate") == 0,
	       "action=key.rotate: %s", all ? json_object_to_json_string(all) : "(failed)");
	json_object_put(all);
	/* The refused PATCH of the lifecycle left no key.update of its own. */
	snprintf(q, sizeof q, "resource_id=%s&action=key.update", life.id);
	all = audit_list(q);
	EXPECT(itest_len(all) == 1, "key.update entries: %s",
	       all ? json_object_to_json_string(all) : "(list failed)");
	json_object_put(all);
}

/* from= (inclusive) and to= over the 4 entries of the key lifecycle. */
static void test_audit_filter_time(void)
{
	struct itest_resp r;
	json_object *all;
	char q[1024];
	size_t i;

	if (!life.id[0] || !life.ts[3][0])
		return;
	snprintf(q, sizeof q, "resource_id=%s&from=%s", life.id, life.ts[1]);
	all = audit_list(q);
	EXPECT(all != NULL, "from= list failed");
	for (i = 0; all && i < 4; i++) {
		int want = strcmp(life.ts[i], life.ts[1]) >= 0;

		EXPECT(has_ts(all, life.ts[i]) == want, "from=%s: entry at %s %s", life.ts[1],
		       life.ts[i], want ? "missing" : "present");
	}
	json_object_put(all);

	snprintf(q, sizeof q, "resource_id=%s&to=%s", life.id, life.ts[2]);
	all = audit_list(q);
	EXPECT(all != NULL, "to= list failed");
	for (i = 0; all && i < 4; i++) {
		int cmp = strcmp(life.ts[i], life.ts[2]);

		/* Whether `to` itself is included is left open. */
		if (cmp != 0)
			EXPECT(has_ts(all, life.ts[i]) == (cmp < 0), "to=%s: entry at %s %s",
			       life.ts[2], life.ts[i], cmp < 0 ? "missing" : "present");
	}
	json_object_put(all);

	itest_call(&r, "GET", "/v1/audit?from=yesterday", itest_admin_token(), NULL);
	EXPECT_ERROR(&r, 400, "invalid_argument", "from");
	itest_resp_fini(&r);
}

static void test_audit_verify(void)
{
	struct itest_resp r;
	json_object *ok;
	int64_t n = -1;

	itest_call(&r, "GET", "/v1/audit/verify", itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	ok = itest_get(r.json, "ok");
	EXPECT(json_object_is_type(ok, json_type_boolean) && json_object_get_boolean(ok),
	       "audit chain does not verify: %s", r.body);
	EXPECT(itest_int(r.json, "entries", &n) && n >= entries_seen && n > 0,
	       "verify counted %lld entries, the suite saw %ld", (long long)n, entries_seen);
	itest_resp_fini(&r);
}

/* Runs sql on pg; 0 when it succeeded. */
static int pg_ok(PGconn *pg, const char *sql)
{
	PGresult *res = PQexec(pg, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok)
		fprintf(stderr, "itest audit: %s: %s", sql, PQerrorMessage(pg));
	PQclear(res);
	return ok ? 0 : -1;
}

/* What verify answers: 1 ok, 0 not ok (with *bad), -1 no answer. */
static int verify(int64_t *bad)
{
	struct itest_resp r;
	json_object *ok;
	int rc = -1;

	itest_call(&r, "GET", "/v1/audit/verify", itest_admin_token(), NULL);
	ok = itest_get(r.json, "ok");
	if (r.status == 200 && json_object_is_type(ok, json_type_boolean)) {
		rc = json_object_get_boolean(ok) ? 1 : 0;
		if (!rc && !itest_int(r.json, "first_bad_seq", bad))
			rc = -1;
	}
	itest_resp_fini(&r);
	return rc;
}

/* The daemons' own role (TOLLGATE_PG_APP_CONNINFO: what [postgres] conninfo
 * logs in as) reads the audit log but can change nothing in it, nor its
 * head, nor the schema: every attempt is refused for lack of privilege
 * (SQLSTATE 42501).  The suite's other tests append through the API, which
 * runs as this role: appending works through the two functions it may call. */
static void test_audit_app_role(void)
{
	static const char *const refused[] = {
		"UPDATE audit_log SET changes = '{}' WHERE seq = 1",
		"DELETE FROM audit_log WHERE seq = 1",
		"TRUNCATE audit_log",
		"INSERT INTO audit_log SELECT * FROM audit_log WHERE seq = 1",
		"UPDATE audit_head SET seq = 0",
		"DELETE FROM audit_personal",
		"UPDATE audit_personal SET ip = NULL",
		"INSERT INTO audit_personal (seq, nonce) VALUES (1, 'x')",
		"ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change",
		"DROP TRIGGER audit_log_no_change ON audit_log",
		"CREATE TABLE audit_shadow (seq bigint)",
		"CREATE OR REPLACE FUNCTION tg_audit_immutable() RETURNS trigger "
		"LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
	};
	const char *ci = getenv("TOLLGATE_PG_APP_CONNINFO");
	PGconn *pg;

	if (!EXPECT(ci && *ci, "TOLLGATE_PG_APP_CONNINFO is not set"))
		return;
	pg = PQconnectdb(ci);
	if (!EXPECT(PQstatus(pg) == CONNECTION_OK, "cannot connect: %s", PQerrorMessage(pg))) {
		PQfinish(pg);
		return;
	}
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		PGresult *res = PQexec(pg, refused[i]);
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		EXPECT(state && strcmp(state, "42501") == 0,
		       "the application's role ran \"%s\": %s", refused[i],
		       state ? PQresultErrorMessage(res) : "it succeeded");
		PQclear(res);
	}
	EXPECT(pg_ok(pg, "SELECT count(*) FROM audit_log") == 0,
	       "the application's role cannot read the audit log");
	PQfinish(pg);
}

/* Whoever owns the tables (the schema's owner, which runs the migrations) turns the
 * append-only trigger off, changes an entry and recomputes every link after
 * it the only way it can, without the key: verify names that entry.  The entries are restored
 * afterwards, and the chain verifies again. */
static void test_audit_tamper(void)
{
	const char *ci = getenv("TOLLGATE_PG_CONNINFO");
	PGconn *pg;
	PGresult *res;
	int64_t target, bad = -1;
	int rc;

	if (!EXPECT(ci && *ci, "TOLLGATE_PG_CONNINFO is not set"))
		return;
	pg = PQconnectdb(ci);
	if (!EXPECT(PQstatus(pg) == CONNECTION_OK, "cannot connect: %s", PQerrorMessage(pg))) {
		PQfinish(pg);
		return;
	}
	res = PQexec(pg, "SELECT seq - 2 FROM audit_head");
	target = PQresultStatus(res) == PGRES_TUPLES_OK ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	PQclear(res);
	if (!EXPECT(target >= 1, "the audit log holds too few entries to tamper with")) {
		PQfinish(pg);
		return;
	}
	char sql[2048];
	/* saved as they are, then rewritten as an attacker without the key can */
	snprintf(sql, sizeof sql,
		 "CREATE TEMP TABLE saved AS SELECT seq, changes, prev_hash, hash FROM audit_log "
		 "WHERE seq >= %lld; CREATE TEMP TABLE saved_head AS SELECT hash FROM audit_head",
		 (long long)target);
	rc = pg_ok(pg, sql);
	snprintf(sql, sizeof sql,
		 "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change; "
		 "DO $$ DECLARE a audit_log; prev text; h text; BEGIN "
		 "UPDATE audit_log SET changes = '{\"tampered\":true}' WHERE seq = %lld; "
		 "SELECT hash INTO prev FROM audit_log WHERE seq = %lld; "
		 "FOR a IN SELECT * FROM audit_log WHERE seq >= %lld ORDER BY seq LOOP "
		 "  h := encode(sha256(convert_to(prev || tg_audit_canonical(a), 'UTF8')), 'hex'); "
		 "  UPDATE audit_log SET prev_hash = prev, hash = h WHERE seq = a.seq; prev := h; "
		 "END LOOP; UPDATE audit_head SET hash = prev; END $$; "
		 "ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change",
		 (long long)target, (long long)target - 1, (long long)target);
	if (rc == 0)
		rc = pg_ok(pg, sql);
	if (rc == 0) {
		int v = verify(&bad);
		EXPECT(v == 0 && bad == target,
		       "after entry %lld was rewritten in SQL, verify answered %s (first bad %lld)",
		       (long long)target, v == 1 ? "ok" : v == 0 ? "not ok" : "nothing",
		       (long long)bad);
	}
	EXPECT(pg_ok(pg, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change; "
			 "UPDATE audit_log a SET changes = s.changes, prev_hash = s.prev_hash, "
			 "hash = s.hash FROM saved s WHERE a.seq = s.seq; "
			 "UPDATE audit_head SET hash = (SELECT hash FROM saved_head); "
			 "ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change") == 0,
	       "could not restore the audit log");
	EXPECT(verify(&bad) == 1, "the restored chain does not verify (first bad %lld)",
	       (long long)bad);
	PQfinish(pg);
}

int itest_register_audit(void)
{
	CU_pSuite s = CU_add_suite("audit", suite_init, suite_clean);

	if (!s ||
	    !CU_add_test(s, "key lifecycle entries", test_audit_key) ||
	    !CU_add_test(s, "tier entries", test_audit_tier) ||
	    !CU_add_test(s, "token entries", test_audit_token) ||
	    !CU_add_test(s, "actor and action filters", test_audit_filter_actor) ||
	    !CU_add_test(s, "from and to filters", test_audit_filter_time) ||
	    !CU_add_test(s, "verify the chain", test_audit_verify) ||
	    !CU_add_test(s, "an entry rewritten in SQL is found", test_audit_tamper) ||
	    !CU_add_test(s, "the daemons' role cannot change it", test_audit_app_role))
		return -1;
	return 0;
}
