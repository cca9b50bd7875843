/*
 * itest_tokens.c - health endpoints, admin tokens and whoami.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "itest_fixture.h"
#include "itest_suites.h"

static const char *const roles[] = { "admin", "operator", "billing", "viewer", "service" };
#define NROLES (sizeof roles / sizeof roles[0])

static void test_health(void)
{
	static const char *const paths[] = { "/healthz", "/readyz" };
	char rid[256];
	size_t i;

	for (i = 0; i < 2; i++) {
		struct itest_resp r;

		itest_call(&r, "GET", paths[i], NULL, NULL);
		EXPECT_STATUS(&r, 200);
		EXPECT(itest_header(&r, "X-Request-Id", rid, sizeof rid) && rid[0],
		       "%s: no X-Request-Id", r.what);
		itest_resp_fini(&r);
	}
}

/* /metrics is answered on the listener named for it and nowhere else: not on
 * the public one, with or without a token, nor under another spelling; and
 * the metrics listener serves nothing but /metrics. Every URL is https: a
 * plain-HTTP request to the public port gets no answer. */
static void test_metrics_listener(void)
{
	static const char *const public_paths[] = { "/metrics", "/metrics/", "//metrics",
						     "/./metrics", "/%6detrics" };
	const char *murl = getenv("TOLLGATE_METRICS_URL"), *url = getenv("TOLLGATE_URL");
	char other[600], plain[600];
	struct itest_resp r;
	size_t i;

	EXPECT(url && strncmp(url, "https://", 8) == 0, "TOLLGATE_URL is not https: %s",
	       url ? url : "(unset)");
	EXPECT(murl && strncmp(murl, "https://", 8) == 0, "TOLLGATE_METRICS_URL is not https: %s",
	       murl ? murl : "(unset)");
	itest_metrics(&r);
	EXPECT_STATUS(&r, 200);
	EXPECT(r.body && strstr(r.body, "tollgate_requests_total"), "%s: no counters: %.200s",
	       r.what, r.body ? r.body : "");
	itest_resp_fini(&r);
	for (i = 0; i < sizeof public_paths / sizeof public_paths[0]; i++) {
		itest_call(&r, "GET", public_paths[i], itest_admin_token(), NULL);
		/* 404 from lighttpd, 403 from Apache's default-deny root */
		EXPECT(r.status == 404 || r.status == 403 || r.status == 400,
		       "%s on the public listener answered %ld: %.200s", r.what, r.status,
		       r.body ? r.body : "");
		EXPECT(!r.body || !strstr(r.body, "tollgate_requests_total"),
		       "%s on the public listener shows the counters", r.what);
		itest_resp_fini(&r);
	}
	if (!murl || strlen(murl) < 8 || strlen(murl) > 500)
		return;
	/* the metrics listener: /v1/... and the guarded files are not there */
	snprintf(other, sizeof other, "%.*s/v1/admin/whoami", (int)(strlen(murl) - 8), murl);
	itest_call(&r, "GET", other, itest_admin_token(), NULL);
	EXPECT(r.status == 404 || r.status == 403, "%s answered %ld", r.what, r.status);
	itest_resp_fini(&r);
	snprintf(other, sizeof other, "%.*s/protected/hello.txt", (int)(strlen(murl) - 8), murl);
	itest_call(&r, "GET", other, itest_admin_token(), NULL);
	EXPECT(r.status == 404 || r.status == 403, "%s answered %ld", r.what, r.status);
	itest_resp_fini(&r);
	/* no plain HTTP on the public port */
	if (url && strncmp(url, "https://", 8) == 0 && strlen(url) < 500) {
		snprintf(plain, sizeof plain, "http://%s/healthz", url + 8);
		itest_call(&r, "GET", plain, NULL, NULL);
		EXPECT(r.status == 0 || r.status == 400 || r.status == 497,
		       "plain HTTP %s answered %ld: %.100s", plain, r.status,
		       r.body ? r.body : "");
		EXPECT(!r.body || !strstr(r.body, "\"ok\""), "plain HTTP answered the probe");
		itest_resp_fini(&r);
	}
}

/* whoami of the admin token of the environment. */
static void test_whoami_admin(void)
{
	struct itest_resp r;
	const char *id, *name;
	char ct[256];

	itest_call(&r, "GET", "/v1/admin/whoami", itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	id = itest_str(r.json, "id");
	name = itest_str(r.json, "name");
	EXPECT(id && *id, "whoami: no id: %s", r.body);
	EXPECT(name != NULL, "whoami: no name string: %s", r.body);
	EXPECT_STR(&r, r.json, "role", "admin");
	EXPECT(!itest_secret_member(r.json), "whoami carries %s", itest_secret_member(r.json));
	EXPECT(itest_header(&r, "Content-Type", ct, sizeof ct) &&
	       strncmp(ct, "application/json", 16) == 0, "whoami: Content-Type %s",
	       itest_header(&r, "Content-Type", ct, sizeof ct) ? ct : "(none)");
	EXPECT(strcmp(itest_admin_id(), id ? id : "") == 0, "admin id unstable");
	itest_resp_fini(&r);
}

/* A token of each role is created once, shown once, and identifies itself. */
static void test_token_create_each_role(void)
{
	struct itest_token t[NROLES];
	size_t i, j;

	for (i = 0; i < NROLES; i++) {
		struct itest_resp r;
		char body[256], name[64];
		const char *tok;

		snprintf(name, sizeof name, "itest-create-%s-%s", roles[i], itest_suffix());
		snprintf(body, sizeof body, "{\"role\":\"%s\",\"name\":\"%s\"}", roles[i], name);
		itest_call(&r, "POST", "/v1/admin/tokens", itest_admin_token(), body);
		memset(&t[i], 0, sizeof t[i]);
		EXPECT_STATUS(&r, 201);
		EXPECT_STR(&r, r.json, "role", roles[i]);
		EXPECT_STR(&r, r.json, "name", name);
		EXPECT(itest_is_time(itest_str(r.json, "created_at")), "created_at: %s", r.body);
		tok = itest_str(r.json, "token");
		EXPECT(tok && strncmp(tok, "tgadm_", 6) == 0 && strlen(tok) >= 6 + 22,
		       "token %s does not look like tgadm_<secret>", tok ? tok : "(none)");
		EXPECT(itest_str(r.json, "id") && *itest_str(r.json, "id"), "no id: %s", r.body);
		snprintf(t[i].id, sizeof t[i].id, "%s", itest_str(r.json, "id") ? itest_str(r.json, "id") : "");
		snprintf(t[i].token, sizeof t[i].token, "%s", tok ? tok : "");
		itest_resp_fini(&r);
		if (!t[i].token[0])
			continue;

		itest_call(&r, "GET", "/v1/admin/whoami", t[i].token, NULL);
		EXPECT_STATUS(&r, 200);
		EXPECT_STR(&r, r.json, "id", t[i].id);
		EXPECT_STR(&r, r.json, "role", roles[i]);
		EXPECT_STR(&r, r.json, "name", name);
		itest_resp_fini(&r);
	}
	for (i = 0; i < NROLES; i++)
		for (j = i + 1; j < NROLES; j++)
			EXPECT(strcmp(t[i].id, t[j].id) != 0 && strcmp(t[i].token, t[j].token) != 0,
			       "tokens %zu and %zu share an id or a secret", i, j);
	for (i = 0; i < NROLES; i++)
		if (t[i].id[0])
			itest_token_revoke(&t[i]);
}

static void test_token_create_invalid(void)
{
	static char long_name[256];
	static const struct {
		const char *body, *code, *field;
	} cases[] = {
		{ "{\"role\":\"root\",\"name\":\"x\"}", "invalid_argument", "role" },
		{ "{\"role\":\"ADMIN\",\"name\":\"x\"}", "invalid_argument", "role" },
		{ "{\"role\":7,\"name\":\"x\"}", "invalid_argument", "role" },
		{ "{\"name\":\"x\"}", "missing_field", "role" },
		{ "{\"role\":\"viewer\",\"name\":\"x\",\"colour\":1}", "unknown_field", "colour" },
		{ "{\"role\":\"viewer\",\"name\":42}", "invalid_argument", "name" },
		{ long_name, "invalid_argument", "name" },
	};
	size_t i;

	/* 201 characters: one more than a name may have. */
	strcpy(long_name, "{\"role\":\"viewer\",\"name\":\"");
	i = strlen(long_name);
	memset(long_name + i, 'n', 201);
	strcpy(long_name + i + 201, "\"}");

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct itest_resp r;

		itest_call(&r, "POST", "/v1/admin/tokens", itest_admin_token(), cases[i].body);
		EXPECT_ERROR(&r, 400, cases[i].code, cases[i].field);
		EXPECT(!itest_get(r.json, "token"), "a refused create returned a token");
		itest_resp_fini(&r);
	}
}

/* The list shows tokens without secrets; a revoked one stays with revoked_at. */
static void test_token_list(void)
{
	struct itest_token t;
	json_object *all = NULL, *e;
	size_t i, n;

	if (itest_token_create(&t, "viewer") != 0)
		return;
	if (itest_list_all("/v1/admin/tokens", itest_admin_token(), 1000, 50, &all) < 0)
		goto out;
	EXPECT(!strstr(json_object_to_json_string(all), t.token + 6),
	       "the token list holds a plaintext token");
	e = NULL;
	n = itest_len(all);
	for (i = 0; i < n; i++) {
		json_object *o = itest_idx(all, i);
		const char *bad = itest_secret_member(o);
		const char *id = itest_str(o, "id");

		EXPECT(!bad, "token list entry %zu has member %s", i, bad ? bad : "");
		EXPECT(id && itest_str(o, "role") && itest_is_time(itest_str(o, "created_at")),
		       "token list entry %zu lacks id/role/created_at: %s", i,
		       json_object_to_json_string(o));
		if (id && strcmp(id, t.id) == 0)
			e = o;
	}
	EXPECT(e != NULL, "new token %s not listed", t.id);
	if (e) {
		EXPECT_STR(NULL, e, "role", "viewer");
		EXPECT_STR(NULL, e, "name", t.name);
		EXPECT_STR(NULL, e, "revoked_at", NULL);
	}
out:
	json_object_put(all);
	itest_token_revoke(&t);
}

/* Revocation: refused within 1 s everywhere, idempotent, listed with revoked_at. */
static void test_token_revoke(void)
{
	struct itest_token t;
	struct itest_resp r;
	char path[256], unknown[160];
	json_object *all = NULL, *e = NULL;
	int64_t t0, waited = -1;
	int i, refused = 0;
	size_t k, n;

	if (itest_token_create(&t, "operator") != 0)
		return;
	/* Let every responder see the token as valid first. */
	for (i = 0; i < 12; i++) {
		itest_call(&r, "GET", "/v1/admin/whoami", t.token, NULL);
		EXPECT_STATUS(&r, 200);
		itest_resp_fini(&r);
	}
	snprintf(path, sizeof path, "/v1/admin/tokens/%s", t.id);
	t0 = itest_now_ms();
	itest_call(&r, "DELETE", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 204);
	EXPECT(r.body_len == 0, "204 with a body: %s", r.body);
	itest_resp_fini(&r);

	for (i = 0; i < 200 && itest_now_ms() - t0 <= 1500; i++) {
		itest_call(&r, "GET", "/v1/admin/whoami", t.token, NULL);
		if (r.status == 401) {
			waited = itest_now_ms() - t0;
			EXPECT_ERROR(&r, 401, "unauthenticated", NULL);
			itest_resp_fini(&r);
			break;
		}
		EXPECT_STATUS(&r, 200);
		itest_resp_fini(&r);
		itest_sleep_ms(50);
	}
	EXPECT(waited >= 0, "revoked token still accepted 1.5 s after revocation");

	/* After 1 s no responder may accept it any more. */
	if (itest_now_ms() - t0 < 1100)
		itest_sleep_ms(1100 - (itest_now_ms() - t0));
	for (i = 0; i < 40; i++) {
		itest_call(&r, "GET", i % 2 ? "/v1/keys?limit=1" : "/v1/admin/whoami", t.token, NULL);
		refused += r.status == 401;
		if (r.status != 401)
			EXPECT_ERROR(&r, 401, "unauthenticated", NULL);
		itest_resp_fini(&r);
	}
	EXPECT(refused == 40, "revoked token refused %d of 40 times after 1.1 s", refused);

	itest_call(&r, "DELETE", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 204);
	itest_resp_fini(&r);

	itest_unknown_id(t.id, unknown, sizeof unknown);
	snprintf(path, sizeof path, "/v1/admin/tokens/%s", unknown);
	itest_call(&r, "DELETE", path, itest_admin_token(), NULL);
	EXPECT_ERROR(&r, 404, "not_found", NULL);
	itest_resp_fini(&r);
	itest_call(&r, "DELETE", "/v1/admin/tokens/no-such-token", itest_admin_token(), NULL);
	EXPECT_ERROR(&r, 404, "not_found", NULL);
	itest_resp_fini(&r);

	if (itest_list_all("/v1/admin/tokens", itest_admin_token(), 1000, 50, &all) < 0)
		return;
	n = itest_len(all);
	for (k = 0; k < n && !e; k++) {
		const char *id = itest_str(itest_idx(all, k), "id");

		if (id && strcmp(id, t.id) == 0)
			e = itest_idx(all, k);
	}
	EXPECT(e != NULL, "revoked token %s no longer listed", t.id);
	if (e)
		EXPECT(itest_is_time(itest_str(e, "revoked_at")), "revoked_at: %s",
		       json_object_to_json_string(e));
	json_object_put(all);
}

/* Token names are stored strings: they round-trip exactly. */
static void test_token_name_roundtrip(void)
{
	static const char *const names[] = {
		"'; DROP TABLE admin_tokens; --", "\" OR 1=1", "back\\slash", "%_", "$1",
		"\xF0\x9F\x94\x91 \xE9\x8D\xB5\xE7\xAE\xA1\xE7\x90\x86",
	};
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		struct itest_resp r;
		char body[512], tok[256] = "", id[160] = "", path[256];

		snprintf(body, sizeof body, "{\"role\":\"viewer\",\"name\":%s}", itest_q(names[i]));
		itest_call(&r, "POST", "/v1/admin/tokens", itest_admin_token(), body);
		EXPECT_STATUS(&r, 201);
		EXPECT_STR(&r, r.json, "name", names[i]);
		snprintf(tok, sizeof tok, "%s", itest_str(r.json, "token") ? itest_str(r.json, "token") : "");
		snprintf(id, sizeof id, "%s", itest_str(r.json, "id") ? itest_str(r.json, "id") : "");
		itest_resp_fini(&r);
		if (!tok[0])
			continue;
		itest_call(&r, "GET", "/v1/admin/whoami", tok, NULL);
		EXPECT_STATUS(&r, 200);
		EXPECT_STR(&r, r.json, "name", names[i]);
		itest_resp_fini(&r);
		snprintf(path, sizeof path, "/v1/admin/tokens/%s", id);
		itest_call(&r, "DELETE", path, itest_admin_token(), NULL);
		EXPECT_STATUS(&r, 204);
		itest_resp_fini(&r);
	}
}

int itest_register_tokens(void)
{
	CU_pSuite s = CU_add_suite("tokens and whoami", NULL, NULL);

	if (!s ||
	    !CU_add_test(s, "healthz and readyz answer without auth", test_health) ||
	    !CU_add_test(s, "metrics on their own listener, all over TLS", test_metrics_listener) ||
	    !CU_add_test(s, "whoami of the admin token", test_whoami_admin) ||
	    !CU_add_test(s, "create a token of each role", test_token_create_each_role) ||
	    !CU_add_test(s, "token create validation", test_token_create_invalid) ||
	    !CU_add_test(s, "token list never shows secrets", test_token_list) ||
	    !CU_add_test(s, "revoked token refused within 1 s", test_token_revoke) ||
	    !CU_add_test(s, "token names round-trip", test_token_name_roundtrip))
		return -1;
	return 0;
}
