/*
 * itest_token_life.c - creating owner tokens (binding validation, the list,
 * the audit entry) and token lifetimes: a token with expires_at works until
 * then and is refused from then on, by every responder.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>

#include "itest_fixture.h"
#include "itest_suites.h"

/* Wall-clock milliseconds: expires_at is compared with the server's clock,
 * which is this machine's. */
static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_create_invalid(void)
{
	static char long_owner[300];
	char past[128], far[128];
	const struct {
		const char *body, *code, *field;
	} cases[] = {
		{ "{\"role\":\"owner\",\"tier\":\"pro\"}", "missing_field", "owner_id" },
		{ "{\"role\":\"owner\",\"owner_id\":\"acct_x\"}", "missing_field", "tier" },
		{ "{\"role\":\"owner\",\"owner_id\":\"acct_x\",\"tier\":\"no_such_tier\"}",
		  "invalid_argument", "tier" },
		{ "{\"role\":\"owner\",\"owner_id\":\"acct_x\",\"tier\":\"Pro!\"}", "invalid_argument",
		  "tier" },
		{ "{\"role\":\"owner\",\"owner_id\":\"\",\"tier\":\"pro\"}", "invalid_argument",
		  "owner_id" },
		{ "{\"role\":\"owner\",\"owner_id\":\"a\\u0001b\",\"tier\":\"pro\"}",
		  "invalid_argument", "owner_id" },
		{ "{\"role\":\"owner\",\"owner_id\":7,\"tier\":\"pro\"}", "invalid_argument",
		  "owner_id" },
		{ long_owner, "invalid_argument", "owner_id" },
		{ "{\"role\":\"viewer\",\"owner_id\":\"acct_x\"}", "invalid_argument", "owner_id" },
		{ "{\"role\":\"admin\",\"tier\":\"pro\"}", "invalid_argument", "tier" },
		{ "{\"role\":\"service\",\"owner_id\":\"acct_x\",\"tier\":\"pro\"}", "invalid_argument",
		  "owner_id" },
		{ "{\"role\":\"viewer\",\"expires_at\":\"tomorrow\"}", "invalid_argument", "expires_at" },
		{ "{\"role\":\"viewer\",\"expires_at\":7}", "invalid_argument", "expires_at" },
		{ past, "invalid_argument", "expires_at" },
		{ far, "invalid_argument", "expires_at" },
		{ "{\"role\":\"owner\",\"owner_id\":\"acct_x\",\"tier\":\"pro\",\"expires_at\":"
		  "\"2001-01-01T00:00:00Z\"}", "invalid_argument", "expires_at" },
	};
	char t[64];
	size_t i;

	/* 129 characters: one more than an owner_id may have. */
	strcpy(long_owner, "{\"role\":\"owner\",\"tier\":\"pro\",\"owner_id\":\"");
	i = strlen(long_owner);
	memset(long_owner + i, 'o', 129);
	strcpy(long_owner + i + 129, "\"}");
	itest_time(t, sizeof t, -1000);
	snprintf(past, sizeof past, "{\"role\":\"viewer\",\"expires_at\":\"%s\"}", t);
	itest_time(t, sizeof t, 6LL * 366 * 86400 * 1000);
	snprintf(far, sizeof far, "{\"role\":\"viewer\",\"expires_at\":\"%s\"}", t);

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct itest_resp r;

		itest_call(&r, "POST", "/v1/admin/tokens", itest_admin_token(), cases[i].body);
		EXPECT_ERROR_CASE(&r, 400, cases[i].code, cases[i].field, cases[i].body);
		EXPECT(!itest_get(r.json, "token"), "a refused create returned a token");
		itest_resp_fini(&r);
	}
}

/* The token's JSON, the list and the audit entry carry the binding and the
 * lifetime, never the secret. */
static void test_create_listed_audited(void)
{
	struct itest_resp r;
	char owner[128], expires[64], body[512], id[160] = "", tok[256] = "", path[512];
	json_object *all = NULL, *e = NULL;
	size_t i, n;

	snprintf(owner, sizeof owner, "acct_it%s_life \xE2\x9C\x93", itest_suffix());
	itest_time(expires, sizeof expires, 86400000);
	snprintf(body, sizeof body, "{\"role\":\"owner\",\"owner_id\":%s,\"tier\":\"pro\","
		 "\"name\":\"self-service\",\"expires_at\":\"%s\"}", itest_q(owner), expires);
	itest_call(&r, "POST", "/v1/admin/tokens", itest_admin_token(), body);
	EXPECT_STATUS(&r, 201);
	EXPECT_STR(&r, r.json, "role", "owner");
	EXPECT_STR(&r, r.json, "owner_id", owner);
	EXPECT_STR(&r, r.json, "tier", "pro");
	EXPECT_STR(&r, r.json, "expires_at", expires);
	snprintf(id, sizeof id, "%s", itest_str(r.json, "id") ? itest_str(r.json, "id") : "");
	snprintf(tok, sizeof tok, "%s", itest_str(r.json, "token") ? itest_str(r.json, "token") : "");
	itest_resp_fini(&r);
	if (!id[0] || !tok[0])
		return;

	itest_call(&r, "GET", "/v1/admin/whoami", tok, NULL);
	EXPECT_STR(&r, r.json, "owner_id", owner);
	EXPECT_STR(&r, r.json, "expires_at", expires);
	itest_resp_fini(&r);

	if (itest_list_all("/v1/admin/tokens", itest_admin_token(), 1000, 50, &all) >= 0) {
		n = itest_len(all);
		for (i = 0; i < n && !e; i++)
			if (itest_str(itest_idx(all, i), "id") &&
			    strcmp(itest_str(itest_idx(all, i), "id"), id) == 0)
				e = itest_idx(all, i);
		EXPECT(e != NULL, "owner token %s not listed", id);
		if (e) {
			EXPECT_STR(NULL, e, "owner_id", owner);
			EXPECT_STR(NULL, e, "tier", "pro");
			EXPECT_STR(NULL, e, "expires_at", expires);
			EXPECT(!itest_secret_member(e), "listed with %s", itest_secret_member(e));
		}
		json_object_put(all);
	}

	snprintf(path, sizeof path, "/v1/audit?resource_id=%s", id);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	e = itest_idx(itest_get(r.json, "data"), 0);
	EXPECT(itest_len(itest_get(r.json, "data")) == 1, "audit of %s: %.300s", id, r.body);
	EXPECT_STR(&r, e, "action", "token.create");
	EXPECT_STR(&r, e, "changes.role.to", "owner");
	EXPECT_STR(&r, e, "changes.owner_id.to", owner);
	EXPECT_STR(&r, e, "changes.tier.to", "pro");
	EXPECT_STR(&r, e, "changes.expires_at.to", expires);
	EXPECT(!strstr(r.body, tok + 6), "the audit entry holds the token");
	itest_resp_fini(&r);

	snprintf(path, sizeof path, "/v1/admin/tokens/%s", id);
	itest_call(&r, "DELETE", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 204);
	itest_resp_fini(&r);
}

/* A token of each kind expiring LIFE_MS after creation works until then (in
 * every responder's cache) and is refused from then on. */
#define LIFE_MS 4000

static void test_expiry(void)
{
	static const char *const bodies[] = {
		"{\"role\":\"viewer\",\"name\":\"short-lived\",\"expires_at\":\"%s\"}",
		"{\"role\":\"owner\",\"owner_id\":\"acct_short\",\"tier\":\"free\","
		"\"expires_at\":\"%s\"}",
	};
	char tok[2][256] = { "", "" }, id[2][160] = { "", "" }, expires[64], body[512];
	int64_t deadline;
	int i, k, ok = 0, refused = 0;

	itest_time(expires, sizeof expires, LIFE_MS);
	deadline = wall_ms() + LIFE_MS - 1000;
	for (k = 0; k < 2; k++) {
		struct itest_resp r;

		snprintf(body, sizeof body, bodies[k], expires);
		itest_call(&r, "POST", "/v1/admin/tokens", itest_admin_token(), body);
		EXPECT_STATUS(&r, 201);
		EXPECT_STR(&r, r.json, "expires_at", expires);
		if (itest_str(r.json, "token") && itest_str(r.json, "id")) {
			snprintf(tok[k], sizeof tok[k], "%s", itest_str(r.json, "token"));
			snprintf(id[k], sizeof id[k], "%s", itest_str(r.json, "id"));
		}
		itest_resp_fini(&r);
	}
	if (!tok[0][0] || !tok[1][0])
		return;
	/* Accepted while alive, up to a second before the end (the requests
	 * then fill every responder's cache). */
	for (i = 0; i < 24 && wall_ms() < deadline; i++) {
		struct itest_resp r;

		itest_call(&r, "GET", i % 2 ? "/v1/keys?limit=1" : "/v1/admin/whoami", tok[i % 2 ? 1 : 0],
			   NULL);
		ok += r.status == 200;
		if (r.status != 200)
			EXPECT_STATUS(&r, 200);
		itest_resp_fini(&r);
	}
	EXPECT(ok == i && i >= 8, "a live token was accepted %d of %d times", ok, i);

	/* From the instant of expiry on (a few milliseconds later, for clock
	 * granularity): refused, whatever the caches hold. */
	{
		int64_t end = deadline + 1000 + 20, now = wall_ms();

		if (now < end)
			itest_sleep_ms(end - now);
	}
	for (i = 0; i < 40; i++) {
		struct itest_resp r;

		itest_call(&r, "GET", i % 2 ? "/v1/keys?limit=1" : "/v1/admin/whoami", tok[i % 2],
			   NULL);
		refused += r.status == 401;
		if (r.status != 401 || i < 2)
			EXPECT_ERROR(&r, 401, "unauthenticated", NULL);
		itest_resp_fini(&r);
	}
	EXPECT(refused == 40, "expired tokens refused %d of 40 times", refused);

	/* Expired is not revoked: the list shows it as it is, and it can still
	 * be revoked. */
	for (k = 0; k < 2; k++) {
		struct itest_resp r;
		char path[512];

		snprintf(path, sizeof path, "/v1/admin/tokens/%s", id[k]);
		itest_call(&r, "DELETE", path, itest_admin_token(), NULL);
		EXPECT_STATUS(&r, 204);
		itest_resp_fini(&r);
	}
}

int itest_register_token_life(void)
{
	CU_pSuite s = CU_add_suite("owner token creation and token lifetimes", NULL, NULL);

	if (!s ||
	    !CU_add_test(s, "owner binding and expires_at validation", test_create_invalid) ||
	    !CU_add_test(s, "binding and lifetime listed and audited, never the token",
			 test_create_listed_audited) ||
	    !CU_add_test(s, "a token is refused from its expires_at on", test_expiry))
		return -1;
	return 0;
}
