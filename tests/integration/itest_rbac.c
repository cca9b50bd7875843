/*
 * itest_rbac.c - the role table of the management API, route by route.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <CUnit/CUnit.h>

#include "itest_fixture.h"
#include "itest_suites.h"

enum { ADMIN, OPERATOR, BILLING, VIEWER, SERVICE, NROLES };

static const char *const role_names[NROLES] = { "admin", "operator", "billing", "viewer",
						 "service" };
static struct itest_token tok[NROLES];
static struct itest_key key;	/* a key of the RBAC owner, for PATCH and check */
static char owner[128];

static int suite_init(void)
{
	int i;

	if (!itest_big_tier())
		return -1;
	for (i = 0; i < NROLES; i++)
		if (itest_token_create(&tok[i], role_names[i]) != 0)
			return -1;
	snprintf(owner, sizeof owner, "acct_it%s_rbac", itest_suffix());
	return itest_key_create(&key, owner, itest_big_tier(), NULL, NULL);
}

static int suite_clean(void)
{
	int i;

	for (i = 0; i < NROLES; i++)
		if (tok[i].id[0])
			itest_token_revoke(&tok[i]);
	return 0;
}

/* One route and the roles allowed on it (bit i = role i). */
struct route {
	const char *method;
	const char *path;	/* "%s" is replaced by the key id or owner id */
	const char *body;	/* "%s" is replaced by a unique name / the key */
	unsigned allowed;
	long ok_status;
};

#define R(x) (1u << (x))

static void route_request(struct itest_resp *r, const struct route *rt, const char *token,
			  int role, int attempt)
{
	char path[512], body[1024], name[64];

	if (strstr(rt->path, "owner_id")) {
		char esc[256];

		snprintf(path, sizeof path, rt->path, itest_escape(owner, esc, sizeof esc));
	} else
		snprintf(path, sizeof path, rt->path, key.id);
	snprintf(name, sizeof name, "it%s-rb%d%d", itest_suffix(), role, attempt);
	if (rt->body && strstr(rt->body, "\"key\""))
		snprintf(body, sizeof body, rt->body, itest_q(key.key));
	else if (rt->body)
		snprintf(body, sizeof body, rt->body, name);
	itest_call(r, rt->method, path, token, rt->body ? body : NULL);
}

static const struct route routes[] = {
	{ "GET", "/v1/admin/tokens", NULL, R(ADMIN), 200 },
	{ "POST", "/v1/admin/tokens", "{\"role\":\"viewer\",\"name\":\"%s\"}", R(ADMIN), 201 },
	{ "GET", "/v1/admin/whoami", NULL,
	  R(ADMIN) | R(OPERATOR) | R(BILLING) | R(VIEWER) | R(SERVICE), 200 },
	{ "GET", "/v1/tiers", NULL, R(ADMIN) | R(OPERATOR) | R(VIEWER), 200 },
	{ "GET", "/v1/tiers/free", NULL, R(ADMIN) | R(OPERATOR) | R(VIEWER), 200 },
	{ "POST", "/v1/tiers",
	  "{\"name\":\"%s\",\"limits\":[{\"name\":\"per_second\",\"window_s\":1,\"limit\":5}]}",
	  R(ADMIN) | R(OPERATOR), 201 },
	{ "GET", "/v1/keys?owner_id=%s", NULL, R(ADMIN) | R(OPERATOR) | R(VIEWER), 200 },
	{ "GET", "/v1/keys/%s", NULL, R(ADMIN) | R(OPERATOR) | R(VIEWER), 200 },
	{ "POST", "/v1/keys", "{\"owner_id\":\"%s\",\"tier\":\"free\"}", R(ADMIN) | R(OPERATOR), 201 },
	{ "PATCH", "/v1/keys/%s", "{\"name\":\"%s\"}", R(ADMIN) | R(OPERATOR), 200 },
	{ "POST", "/v1/check", "{\"key\":%s,\"endpoint\":\"GET /x\"}",
	  R(ADMIN) | R(OPERATOR) | R(SERVICE), 200 },
	{ "GET", "/v1/audit?limit=5", NULL, R(ADMIN) | R(OPERATOR), 200 },
	{ "GET", "/v1/audit/verify", NULL, R(ADMIN), 200 },
	{ "GET", "/v1/analytics/top-keys?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z", NULL,
	  R(ADMIN) | R(OPERATOR) | R(BILLING), 200 },
	{ "GET", "/v1/analytics/tiers?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z", NULL,
	  R(ADMIN) | R(OPERATOR) | R(BILLING), 200 },
};
#define NROUTES (sizeof routes / sizeof routes[0])

static void test_role_matrix(void)
{
	size_t i;
	int role;

	for (i = 0; i < NROUTES; i++) {
		for (role = 0; role < NROLES; role++) {
			struct itest_resp r;
			int allowed = (routes[i].allowed & R(role)) != 0;

			route_request(&r, &routes[i], tok[role].token, role, 0);
			if (allowed)
				EXPECT(r.status == routes[i].ok_status,
				       "role %s on %s: %ld, want %ld; body %.300s", role_names[role],
				       r.what, r.status, routes[i].ok_status, r.body);
			else
				EXPECT_ERROR_CASE(&r, 403, "forbidden", NULL, role_names[role]);
			itest_resp_fini(&r);
		}
	}
}

/* Forbidden writes change nothing. */
static void test_forbidden_changes_nothing(void)
{
	struct itest_resp r;
	char path[512], esc[256], name[64];
	json_object *before = NULL, *after = NULL;
	int role;

	snprintf(path, sizeof path, "/v1/keys?owner_id=%s", itest_escape(owner, esc, sizeof esc));
	if (itest_list_all(path, itest_admin_token(), 1000, 5, &before) < 0)
		return;
	for (role = BILLING; role < NROLES; role++) {
		char body[512];

		snprintf(body, sizeof body, "{\"owner_id\":%s,\"tier\":\"free\"}", itest_q(owner));
		itest_call(&r, "POST", "/v1/keys", tok[role].token, body);
		EXPECT_ERROR(&r, 403, "forbidden", NULL);
		itest_resp_fini(&r);

		snprintf(name, sizeof name, "it%s-fb%d", itest_suffix(), role);
		snprintf(body, sizeof body, "{\"name\":\"%s\",\"limits\":[{\"name\":\"a\","
			 "\"window_s\":1,\"limit\":1}]}", name);
		itest_call(&r, "POST", "/v1/tiers", tok[role].token, body);
		EXPECT_ERROR(&r, 403, "forbidden", NULL);
		itest_resp_fini(&r);
		snprintf(body, sizeof body, "/v1/tiers/%s", name);
		itest_call(&r, "GET", body, itest_admin_token(), NULL);
		EXPECT_ERROR(&r, 404, "not_found", NULL);
		itest_resp_fini(&r);
	}
	snprintf(path, sizeof path, "/v1/keys/%s", key.id);
	itest_call(&r, "PATCH", path, tok[OPERATOR].token, "{\"status\":\"suspended\"}");
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	itest_call(&r, "PATCH", path, tok[OPERATOR].token, "{\"status\":\"active\"}");
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	for (role = BILLING; role < NROLES; role++) {
		itest_call(&r, "PATCH", path, tok[role].token, "{\"status\":\"suspended\"}");
		EXPECT_ERROR(&r, 403, "forbidden", NULL);
		itest_resp_fini(&r);
		itest_call(&r, "DELETE", path, tok[role].token, NULL);
		EXPECT_ERROR(&r, 403, "forbidden", NULL);
		itest_resp_fini(&r);
	}
	snprintf(path, sizeof path, "/v1/keys?owner_id=%s", itest_escape(owner, esc, sizeof esc));
	if (itest_list_all(path, itest_admin_token(), 1000, 5, &after) >= 0)
		EXPECT(itest_len(after) == itest_len(before),
		       "forbidden creates changed the key count from %zu to %zu",
		       itest_len(before), itest_len(after));
	snprintf(path, sizeof path, "/v1/keys/%s", key.id);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_STR(&r, r.json, "status", "active");
	itest_resp_fini(&r);
	json_object_put(before);
	json_object_put(after);

	/* Non-admins cannot revoke tokens. */
	for (role = OPERATOR; role < NROLES; role++) {
		snprintf(path, sizeof path, "/v1/admin/tokens/%s", tok[ADMIN].id);
		itest_call(&r, "DELETE", path, tok[role].token, NULL);
		EXPECT_ERROR(&r, 403, "forbidden", NULL);
		itest_resp_fini(&r);
	}
	itest_call(&r, "GET", "/v1/admin/whoami", tok[ADMIN].token, NULL);
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
}

/* HTTP requires a 401 to name the scheme it wants: WWW-Authenticate: Bearer. */
static void expect_challenge(const struct itest_resp *r)
{
	char v[256];
	const char *h = itest_header(r, "WWW-Authenticate", v, sizeof v);

	EXPECT(h && strncasecmp(h, "Bearer", 6) == 0, "%s: 401 with WWW-Authenticate \"%s\"",
	       r->what, h ? h : "(none)");
}

/* Missing, unknown, malformed and revoked credentials: 401 everywhere. */
static void test_unauthenticated(void)
{
	static const char *const paths[] = { "/v1/admin/whoami", "/v1/tiers", "/v1/keys?limit=1",
					     "/v1/audit?limit=1" };
	struct itest_token revoked;
	char bogus[300];
	const char *auth[] = { NULL, "Authorization: Bearer garbage",
			       "Authorization: Basic YWRtaW46YWRtaW4=", "Authorization: Bearer",
			       "Authorization: bearer", bogus, NULL };
	size_t i, j;

	snprintf(bogus, sizeof bogus, "Authorization: Bearer tgadm_%s0000000000000000000000",
		 itest_suffix());
	for (i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		for (j = 0; j < 6; j++) {
			struct itest_resp r;
			const char *hdr[2] = { auth[j], NULL };
			struct itest_req q = { .method = "GET", .path = paths[i], .headers = hdr };

			itest_send(&r, &q);
			EXPECT_ERROR(&r, 401, "unauthenticated", NULL);
			if (j == 0)
				expect_challenge(&r);
			itest_resp_fini(&r);
		}
	}
	{
		struct itest_resp r;
		char body[512];

		snprintf(body, sizeof body, "{\"key\":%s}", itest_q(key.key));
		itest_call(&r, "POST", "/v1/check", NULL, body);
		EXPECT_ERROR(&r, 401, "unauthenticated", NULL);
		itest_resp_fini(&r);
		itest_call(&r, "POST", "/v1/check", "garbage", body);
		EXPECT_ERROR(&r, 401, "unauthenticated", NULL);
		itest_resp_fini(&r);
	}

	if (itest_token_create(&revoked, "admin") != 0)
		return;
	itest_token_revoke(&revoked);
	itest_sleep_ms(1100);
	for (i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		struct itest_resp r;

		itest_call(&r, "GET", paths[i], revoked.token, NULL);
		EXPECT_ERROR(&r, 401, "unauthenticated", NULL);
		itest_resp_fini(&r);
	}
}

int itest_register_rbac(void)
{
	CU_pSuite s = CU_add_suite("rbac", suite_init, suite_clean);

	if (!s ||
	    !CU_add_test(s, "role x route matrix", test_role_matrix) ||
	    !CU_add_test(s, "forbidden calls change nothing", test_forbidden_changes_nothing) ||
	    !CU_add_test(s, "missing, bad and revoked tokens are 401", test_unauthenticated))
		return -1;
	return 0;
}
