/*
 * itest_owner.c - owner tokens: what a token bound to one owner_id may do,
 * route by route, with its own objects and with another owner's (404, never
 * 403), the lists filtered to it, the owner_id of bodies and queries, the
 * members it may not set, and the routes it may not use at all.
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "itest_fixture.h"
#include "itest_suites.h"

#define WEBHOOK "http://127.0.0.1:9/owner"
#define SECRET "whsec_owner_0123456789abcdef"

/* Two owners, A (the token's) and B (another), each with keys and alerts made
 * by the admin token, plus A's token and B's token. */
struct side {
	char owner[128];
	struct itest_token tok;
	struct itest_key key;		/* read, patched, watched by an alert */
	struct itest_key spare;		/* rotated, suspended */
	struct itest_key doomed;	/* revoked */
	char alert_owner[128];		/* a rule on the owner */
	char alert_key[128];		/* a rule on the key */
	char alert_doomed[128];		/* deleted */
};

static struct side a, b;

/* POST /v1/admin/tokens of an owner token; 0 when it was made. */
static int owner_token(struct itest_token *t, const char *owner, const char *tier,
		       const char *extra)
{
	struct itest_resp r;
	char body[1024];
	int rc = -1;

	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "itest-owner-%s", itest_suffix());
	snprintf(body, sizeof body, "{\"role\":\"owner\",\"owner_id\":%s,\"tier\":%s,\"name\":%s%s%s}",
		 itest_q(owner), itest_q(tier), itest_q(t->name), extra ? "," : "",
		 extra ? extra : "");
	itest_call(&r, "POST", "/v1/admin/tokens", itest_admin_token(), body);
	if (EXPECT_STATUS(&r, 201) && itest_str(r.json, "id") && itest_str(r.json, "token")) {
		snprintf(t->id, sizeof t->id, "%s", itest_str(r.json, "id"));
		snprintf(t->token, sizeof t->token, "%s", itest_str(r.json, "token"));
		snprintf(t->role, sizeof t->role, "owner");
		rc = 0;
	}
	itest_resp_fini(&r);
	return rc;
}

/* A rule made with token; its id into id (empty on failure). */
static void alert_create(char *id, size_t n, const char *token, const char *scope_member,
			 const char *scope_value, long *status)
{
	struct itest_resp r;
	char body[1024];

	snprintf(body, sizeof body, "{\"%s\":%s,\"metric\":\"rate_limited\",\"threshold\":1000000,"
		 "\"webhook_url\":\"" WEBHOOK "\",\"secret\":\"" SECRET "\"}", scope_member,
		 itest_q(scope_value));
	itest_call(&r, "POST", "/v1/alerts", token, body);
	snprintf(id, n, "%s", r.status == 201 && itest_str(r.json, "id") ? itest_str(r.json, "id") : "");
	if (status)
		*status = r.status;
	else
		EXPECT_STATUS(&r, 201);
	itest_resp_fini(&r);
}

static int side_init(struct side *s, const char *which)
{
	snprintf(s->owner, sizeof s->owner, "acct_it%s_own%s", itest_suffix(), which);
	if (owner_token(&s->tok, s->owner, "pro", NULL) != 0 ||
	    itest_key_create(&s->key, s->owner, itest_big_tier(), NULL, NULL) != 0 ||
	    itest_key_create(&s->spare, s->owner, itest_big_tier(), NULL, NULL) != 0 ||
	    itest_key_create(&s->doomed, s->owner, itest_big_tier(), NULL, NULL) != 0)
		return -1;
	alert_create(s->alert_owner, sizeof s->alert_owner, itest_admin_token(), "owner_id",
		     s->owner, NULL);
	alert_create(s->alert_key, sizeof s->alert_key, itest_admin_token(), "key_id", s->key.id,
		     NULL);
	alert_create(s->alert_doomed, sizeof s->alert_doomed, itest_admin_token(), "owner_id",
		     s->owner, NULL);
	return s->alert_owner[0] && s->alert_key[0] && s->alert_doomed[0] ? 0 : -1;
}

static int suite_init(void)
{
	itest_record_secret(SECRET);
	if (!itest_big_tier() || side_init(&a, "A") != 0 || side_init(&b, "B") != 0)
		return -1;
	return 0;
}

static int suite_clean(void)
{
	if (a.tok.id[0])
		itest_token_revoke(&a.tok);
	if (b.tok.id[0])
		itest_token_revoke(&b.tok);
	return 0;
}

/* ---- the matrix: every route taking an id, own object and another's ---- */

struct id_route {
	const char *method;
	const char *path;	/* "%s": the id */
	const char *body;
	long ok_status;
	/* which object of a side: 'k' key, 's' spare key, 'd' doomed key, 'o' owner,
	 * 'a' owner alert, 'A' key alert, 'D' doomed alert */
	char object;
};

static const char *object_id(const struct side *s, char object)
{
	switch (object) {
	case 'k': return s->key.id;
	case 's': return s->spare.id;
	case 'd': return s->doomed.id;
	case 'o': return s->owner;
	case 'a': return s->alert_owner;
	case 'A': return s->alert_key;
	default: return s->alert_doomed;
	}
}

static const struct id_route id_routes[] = {
	{ "GET", "/v1/keys/%s", NULL, 200, 'k' },
	{ "PATCH", "/v1/keys/%s", "{\"name\":\"renamed by its owner\"}", 200, 'k' },
	{ "PATCH", "/v1/keys/%s", "{\"meta\":{\"plan\":\"self\"}}", 200, 'k' },
	{ "PATCH", "/v1/keys/%s", "{\"status\":\"suspended\"}", 200, 's' },
	{ "PATCH", "/v1/keys/%s", "{\"status\":\"active\"}", 200, 's' },
	{ "POST", "/v1/keys/%s/rotate", "{\"grace_seconds\":60}", 200, 's' },
	{ "DELETE", "/v1/keys/%s", NULL, 200, 'd' },
	{ "GET", "/v1/keys/%s/usage", NULL, 200, 'k' },
	{ "GET", "/v1/keys/%s/usage?granularity=hour&group_by=endpoint", NULL, 200, 'k' },
	{ "GET", "/v1/keys/%s/usage/live", NULL, 200, 'k' },
	{ "GET", "/v1/owners/%s/usage", NULL, 200, 'o' },
	{ "GET", "/v1/owners/%s/usage?granularity=day", NULL, 200, 'o' },
	{ "GET", "/v1/alerts/%s", NULL, 200, 'a' },
	{ "GET", "/v1/alerts/%s", NULL, 200, 'A' },
	{ "GET", "/v1/alerts/%s/deliveries", NULL, 200, 'a' },
	{ "GET", "/v1/alerts/%s/deliveries", NULL, 200, 'A' },
	{ "DELETE", "/v1/alerts/%s", NULL, 204, 'D' },
};
#define NID_ROUTES (sizeof id_routes / sizeof id_routes[0])

static void id_request(struct itest_resp *r, const struct id_route *rt, const char *token,
		       const char *id)
{
	char path[1024], esc[512];

	snprintf(path, sizeof path, rt->path, itest_escape(id, esc, sizeof esc));
	itest_call(r, rt->method, path, token, rt->body);
}

/* A's token on B's objects first (nothing may change), then on its own. */
static void test_matrix(void)
{
	struct itest_resp r;
	size_t i;

	for (i = 0; i < NID_ROUTES; i++) {
		id_request(&r, &id_routes[i], a.tok.token, object_id(&b, id_routes[i].object));
		EXPECT_ERROR_CASE(&r, 404, "not_found", NULL, "another owner's object");
		itest_resp_fini(&r);
	}
	for (i = 0; i < NID_ROUTES; i++) {
		id_request(&r, &id_routes[i], a.tok.token, object_id(&a, id_routes[i].object));
		EXPECT(r.status == id_routes[i].ok_status, "owner token on its own %s: %ld, want "
		       "%ld; body %.300s", r.what, r.status, id_routes[i].ok_status, r.body);
		itest_resp_fini(&r);
	}
	/* B's token sees B's objects, which A's token left as they were. */
	for (i = 0; i < NID_ROUTES; i++) {
		if (strcmp(id_routes[i].method, "GET") != 0)
			continue;
		id_request(&r, &id_routes[i], b.tok.token, object_id(&b, id_routes[i].object));
		EXPECT_STATUS(&r, 200);
		itest_resp_fini(&r);
	}
}

/* After test_matrix: the other owner's objects did not change. */
static void test_others_unchanged(void)
{
	struct itest_resp r;
	char path[512];

	snprintf(path, sizeof path, "/v1/keys/%s", b.key.id);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	EXPECT(!strstr(r.body, "renamed by its owner") && !strstr(r.body, "\"plan\""),
	       "another owner's key was changed: %.300s", r.body);
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/keys/%s", b.doomed.id);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_STR(&r, r.json, "status", "active");
	itest_resp_fini(&r);
	/* The spare's old secret still checks: it was not rotated. */
	itest_check(&r, itest_admin_token(), b.spare.key);
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/alerts/%s", b.alert_doomed);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	/* ... and A's own changes took effect. */
	snprintf(path, sizeof path, "/v1/keys/%s", a.key.id);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_STR(&r, r.json, "name", "renamed by its owner");
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/keys/%s", a.doomed.id);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_STR(&r, r.json, "status", "revoked");
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/alerts/%s", a.alert_doomed);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_ERROR(&r, 404, "not_found", NULL);
	itest_resp_fini(&r);
}

/* Unknown ids answer exactly as another owner's do. */
static void test_unknown_ids(void)
{
	static const char *const paths[] = { "/v1/keys/%s", "/v1/keys/%s/usage",
					     "/v1/keys/%s/usage/live", "/v1/alerts/%s",
					     "/v1/alerts/%s/deliveries" };
	struct itest_resp r1, r2;
	char unknown[160], p1[512], p2[512];
	size_t i;

	for (i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		const char *real = strstr(paths[i], "alerts") ? b.alert_owner : b.key.id;

		itest_unknown_id(real, unknown, sizeof unknown);
		snprintf(p1, sizeof p1, paths[i], real);
		snprintf(p2, sizeof p2, paths[i], unknown);
		itest_call(&r1, "GET", p1, a.tok.token, NULL);
		itest_call(&r2, "GET", p2, a.tok.token, NULL);
		EXPECT_ERROR(&r1, 404, "not_found", NULL);
		EXPECT(r1.status == r2.status && strcmp(r1.body, r2.body) == 0,
		       "%s answers %ld %.200s, an unknown id %ld %.200s", r1.what, r1.status,
		       r1.body, r2.status, r2.body);
		itest_resp_fini(&r1);
		itest_resp_fini(&r2);
	}
	/* An owner id in the path: another owner's is no different from none. */
	snprintf(p1, sizeof p1, "/v1/owners/%s/usage", itest_escape(b.owner, unknown, sizeof unknown));
	snprintf(p2, sizeof p2, "/v1/owners/acct_it%s_nobody/usage", itest_suffix());
	itest_call(&r1, "GET", p1, a.tok.token, NULL);
	itest_call(&r2, "GET", p2, a.tok.token, NULL);
	EXPECT_ERROR(&r1, 404, "not_found", NULL);
	EXPECT(r1.status == r2.status && strcmp(r1.body, r2.body) == 0,
	       "%s answers %ld %.200s, an unknown owner %ld %.200s", r1.what, r1.status, r1.body,
	       r2.status, r2.body);
	itest_resp_fini(&r1);
	itest_resp_fini(&r2);
}

/* ---- lists ---- */

/* Every entry of the list at path (read with token) has owner_id equal to
 * owner or, for key_field entries, a key of keys; the ids in want appear,
 * those in unwanted do not. */
static void expect_list(const char *path, const char *token, const char *owner,
			const char *const *want, const char *const *unwanted)
{
	json_object *all = NULL;
	size_t i, n;

	if (itest_list_all(path, token, 2, 200, &all) < 0)
		return;
	n = itest_len(all);
	for (i = 0; i < n; i++) {
		json_object *o = itest_idx(all, i);
		const char *own = itest_str(o, "owner_id"), *key = itest_str(o, "key_id");

		EXPECT((own && strcmp(own, owner) == 0) ||
		       (!own && key && (strcmp(key, a.key.id) == 0 || strcmp(key, a.spare.id) == 0 ||
					strcmp(key, a.doomed.id) == 0)),
		       "%s lists another owner's entry: %s", path, json_object_to_json_string(o));
	}
	for (; want && *want; want++) {
		int found = 0;

		for (i = 0; i < n; i++)
			found |= itest_str(itest_idx(all, i), "id") &&
				 strcmp(itest_str(itest_idx(all, i), "id"), *want) == 0;
		EXPECT(found, "%s does not list %s", path, *want);
	}
	for (; unwanted && *unwanted; unwanted++)
		for (i = 0; i < n; i++)
			EXPECT(!itest_str(itest_idx(all, i), "id") ||
			       strcmp(itest_str(itest_idx(all, i), "id"), *unwanted) != 0,
			       "%s lists %s", path, *unwanted);
	json_object_put(all);
}

static void test_lists(void)
{
	const char *keys_a[] = { a.key.id, a.spare.id, NULL }, *keys_b[] = { b.key.id, NULL };
	const char *alerts_a[] = { a.alert_owner, a.alert_key, NULL };
	const char *alerts_b[] = { b.alert_owner, b.alert_key, NULL };
	char path[1024], esc[512];
	struct itest_resp r;

	expect_list("/v1/keys", a.tok.token, a.owner, keys_a, keys_b);
	snprintf(path, sizeof path, "/v1/keys?owner_id=%s", itest_escape(a.owner, esc, sizeof esc));
	expect_list(path, a.tok.token, a.owner, keys_a, keys_b);
	expect_list("/v1/keys?status=active", a.tok.token, a.owner, keys_a, keys_b);
	expect_list("/v1/alerts", a.tok.token, a.owner, alerts_a, alerts_b);
	snprintf(path, sizeof path, "/v1/alerts?key_id=%s", b.key.id);
	expect_list(path, a.tok.token, a.owner, NULL, alerts_b);
	snprintf(path, sizeof path, "/v1/alerts?owner_id=%s", itest_escape(a.owner, esc, sizeof esc));
	expect_list(path, a.tok.token, a.owner, NULL, alerts_b);
	expect_list("/v1/billing/records", a.tok.token, a.owner, NULL, NULL);
	/* B's list is B's: the same filter, not a fixed one. */
	expect_list("/v1/keys", b.tok.token, b.owner, keys_b, keys_a);

	/* A's billing record is there, with A's key in its lines. */
	itest_call(&r, "GET", "/v1/billing/records", a.tok.token, NULL);
	EXPECT_STATUS(&r, 200);
	EXPECT(strstr(r.body, a.key.id) && !strstr(r.body, b.key.id),
	       "billing records of owner A: %.300s", r.body);
	itest_resp_fini(&r);

	/* A query naming another owner is refused, not silently narrowed. */
	{
		static const char *const lists[] = { "/v1/keys?owner_id=%s", "/v1/alerts?owner_id=%s",
						     "/v1/billing/records?owner_id=%s" };
		size_t i;

		for (i = 0; i < sizeof lists / sizeof lists[0]; i++) {
			snprintf(path, sizeof path, lists[i], itest_escape(b.owner, esc, sizeof esc));
			itest_call(&r, "GET", path, a.tok.token, NULL);
			EXPECT_ERROR(&r, 403, "forbidden", "owner_id");
			itest_resp_fini(&r);
		}
	}
}

/* ---- bodies ---- */

static void test_key_create(void)
{
	struct itest_resp r;
	char body[1024], path[256];
	static const char *const denied[][2] = {
		{ "tier", "\"tier\":\"free\"" },
		{ "tier", "\"tier\":\"pro\"" },
		{ "limits", "\"limits\":[{\"name\":\"per_second\",\"window_s\":1,\"limit\":100000}]" },
		{ "limits", "\"limits\":null" },
		{ "remaining", "\"remaining\":1000000" },
		{ "remaining", "\"remaining\":null" },
		{ "refill", "\"refill\":{\"amount\":1000,\"interval\":\"day\"}" },
		{ "refill", "\"refill\":null" },
	};
	size_t i;

	/* Without owner_id: the token's owner, the token's tier. */
	itest_call(&r, "POST", "/v1/keys", a.tok.token, "{\"name\":\"self-made\"}");
	EXPECT_STATUS(&r, 201);
	EXPECT_STR(&r, r.json, "owner_id", a.owner);
	EXPECT_STR(&r, r.json, "tier", "pro");
	EXPECT(itest_str(r.json, "key") != NULL, "no plaintext key: %.200s", r.body);
	if (itest_str(r.json, "key")) {
		struct itest_resp c;

		itest_check(&c, itest_admin_token(), itest_str(r.json, "key"));
		EXPECT_STATUS(&c, 200);
		itest_resp_fini(&c);
	}
	itest_resp_fini(&r);
	/* Naming its own owner is the same. */
	snprintf(body, sizeof body, "{\"owner_id\":%s,\"prefix\":\"own\"}", itest_q(a.owner));
	itest_call(&r, "POST", "/v1/keys", a.tok.token, body);
	EXPECT_STATUS(&r, 201);
	EXPECT_STR(&r, r.json, "owner_id", a.owner);
	EXPECT_STR(&r, r.json, "tier", "pro");
	itest_resp_fini(&r);
	/* Another owner: 403. */
	snprintf(body, sizeof body, "{\"owner_id\":%s}", itest_q(b.owner));
	itest_call(&r, "POST", "/v1/keys", a.tok.token, body);
	EXPECT_ERROR(&r, 403, "forbidden", "owner_id");
	itest_resp_fini(&r);
	/* The members only operators set: 403 naming the member. */
	for (i = 0; i < sizeof denied / sizeof denied[0]; i++) {
		snprintf(body, sizeof body, "{%s}", denied[i][1]);
		itest_call(&r, "POST", "/v1/keys", a.tok.token, body);
		EXPECT_ERROR_CASE(&r, 403, "forbidden", denied[i][0], denied[i][1]);
		itest_resp_fini(&r);
		snprintf(path, sizeof path, "/v1/keys/%s", a.key.id);
		itest_call(&r, "PATCH", path, a.tok.token, body);
		EXPECT_ERROR_CASE(&r, 403, "forbidden", denied[i][0], denied[i][1]);
		itest_resp_fini(&r);
	}
	/* ... and the key kept its tier. */
	snprintf(path, sizeof path, "/v1/keys/%s", a.key.id);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_STR(&r, r.json, "tier", itest_big_tier());
	EXPECT_STR(&r, r.json, "remaining", NULL);
	itest_resp_fini(&r);
	/* Every other role still has to name the owner. */
	itest_call(&r, "POST", "/v1/keys", itest_admin_token(), "{\"name\":\"x\"}");
	EXPECT_ERROR(&r, 400, "missing_field", "owner_id");
	itest_resp_fini(&r);
}

static void test_alert_create(void)
{
	struct itest_resp r;
	char id[128], unknown[160], body[1024];
	long status = 0;

	alert_create(id, sizeof id, a.tok.token, "owner_id", a.owner, &status);
	EXPECT(status == 201, "owner token: alert on its owner: %ld", status);
	alert_create(id, sizeof id, a.tok.token, "key_id", a.key.id, &status);
	EXPECT(status == 201, "owner token: alert on its key: %ld", status);
	alert_create(id, sizeof id, a.tok.token, "owner_id", b.owner, &status);
	EXPECT(status == 403 && !id[0], "owner token: alert on another owner: %ld", status);

	/* Another owner's key is answered as an unknown key. */
	snprintf(body, sizeof body, "{\"key_id\":%s,\"metric\":\"rate_limited\",\"threshold\":5,"
		 "\"webhook_url\":\"" WEBHOOK "\",\"secret\":\"" SECRET "\"}", itest_q(b.key.id));
	itest_call(&r, "POST", "/v1/alerts", a.tok.token, body);
	EXPECT_ERROR(&r, 400, "invalid_argument", "key_id");
	{
		struct itest_resp u;

		itest_unknown_id(b.key.id, unknown, sizeof unknown);
		snprintf(body, sizeof body, "{\"key_id\":%s,\"metric\":\"rate_limited\","
			 "\"threshold\":5,\"webhook_url\":\"" WEBHOOK "\",\"secret\":\"" SECRET "\"}",
			 itest_q(unknown));
		itest_call(&u, "POST", "/v1/alerts", a.tok.token, body);
		EXPECT(u.status == r.status && strcmp(u.body, r.body) == 0,
		       "another owner's key_id %.200s, an unknown one %.200s", r.body, u.body);
		itest_resp_fini(&u);
	}
	itest_resp_fini(&r);
}

/* ---- routes an owner token never uses ---- */

static void test_forbidden_routes(void)
{
	static const struct {
		const char *method, *path, *body;
	} routes[] = {
		{ "GET", "/v1/tiers", NULL },
		{ "GET", "/v1/tiers/pro", NULL },
		{ "POST", "/v1/tiers", "{\"name\":\"owner_made\",\"limits\":[]}" },
		{ "PATCH", "/v1/tiers/pro", "{\"quota\":null}" },
		{ "GET", "/v1/admin/tokens", NULL },
		{ "POST", "/v1/admin/tokens", "{\"role\":\"admin\"}" },
		{ "DELETE", "/v1/admin/tokens/%s", NULL },
		{ "GET", "/v1/audit", NULL },
		{ "GET", "/v1/audit/verify", NULL },
		{ "POST", "/v1/billing/periods/2026-01/close", "{}" },
		{ "POST", "/v1/check", "{\"key\":\"tg_x\"}" },
		{ "POST", "/v1/usage/events", "{\"events\":[]}" },
	};
	struct itest_resp r;
	char path[256];
	size_t i;

	for (i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		snprintf(path, sizeof path, routes[i].path, itest_admin_id());
		itest_call(&r, routes[i].method, path, a.tok.token, routes[i].body);
		EXPECT_ERROR(&r, 403, "forbidden", NULL);
		itest_resp_fini(&r);
	}
	/* The admin token is still there. */
	itest_call(&r, "GET", "/v1/admin/whoami", itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
}

static void test_whoami(void)
{
	struct itest_resp r;

	itest_call(&r, "GET", "/v1/admin/whoami", a.tok.token, NULL);
	EXPECT_STATUS(&r, 200);
	EXPECT_STR(&r, r.json, "id", a.tok.id);
	EXPECT_STR(&r, r.json, "role", "owner");
	EXPECT_STR(&r, r.json, "owner_id", a.owner);
	EXPECT_STR(&r, r.json, "tier", "pro");
	EXPECT_STR(&r, r.json, "expires_at", NULL);
	itest_resp_fini(&r);
	/* Other roles carry no binding. */
	itest_call(&r, "GET", "/v1/admin/whoami", itest_admin_token(), NULL);
	EXPECT(!itest_has(r.json, "owner_id") && !itest_has(r.json, "tier"),
	       "admin whoami carries a binding: %s", r.body);
	itest_resp_fini(&r);
}

int itest_register_owner(void)
{
	CU_pSuite s = CU_add_suite("owner tokens", suite_init, suite_clean);

	if (!s ||
	    !CU_add_test(s, "whoami names the owner and tier", test_whoami) ||
	    !CU_add_test(s, "own objects answer, another owner's are 404", test_matrix) ||
	    !CU_add_test(s, "another owner's objects unchanged", test_others_unchanged) ||
	    !CU_add_test(s, "another owner's ids answer as unknown ones", test_unknown_ids) ||
	    !CU_add_test(s, "lists filtered to the owner", test_lists) ||
	    !CU_add_test(s, "key create: own owner and tier, no tier/limits/remaining/refill",
			 test_key_create) ||
	    !CU_add_test(s, "alert create: own owner and keys only", test_alert_create) ||
	    !CU_add_test(s, "tiers, tokens, audit, closes, checks, events: 403",
			 test_forbidden_routes))
		return -1;
	return 0;
}
