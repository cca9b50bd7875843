/*
 * itest_check.c - POST /v1/check: decisions, key states, precedence, input.
 *
 * Rate-limit numbers are not asserted here; every key lives on a tier whose
 * only window is far above what the suite sends.
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "itest_fixture.h"
#include "itest_suites.h"

static struct itest_token service, operator_tok;

static int suite_init(void)
{
	if (!itest_big_tier())
		return -1;
	if (itest_token_create(&service, "service") != 0 ||
	    itest_token_create(&operator_tok, "operator") != 0)
		return -1;
	return 0;
}

static int suite_clean(void)
{
	if (service.id[0])
		itest_token_revoke(&service);
	if (operator_tok.id[0])
		itest_token_revoke(&operator_tok);
	return 0;
}

static void owner_id(char *buf, size_t n, const char *tag)
{
	snprintf(buf, n, "acct_it%s_check_%s", itest_suffix(), tag);
}

/* An allowed answer for key k. */
static void expect_allowed(const struct itest_resp *r, const struct itest_key *k)
{
	json_object *allowed = itest_get(r->json, "allowed");

	if (!EXPECT_STATUS(r, 200))
		return;
	EXPECT(json_object_is_type(allowed, json_type_boolean) && json_object_get_boolean(allowed),
	       "allowed is not true: %s", r->body);
	EXPECT_STR(r, r->json, "reason", NULL);
	EXPECT_STR(r, r->json, "key_id", k->id);
	EXPECT_STR(r, r->json, "owner_id", k->owner);
	EXPECT_STR(r, r->json, "tier", itest_big_tier());
	EXPECT(json_object_is_type(itest_get(r->json, "limits"), json_type_array),
	       "limits is not an array: %s", r->body);
	EXPECT_STR(r, r->json, "remaining", NULL);
	EXPECT(!itest_get(r->json, "error"), "allowed answer has an error: %s", r->body);
}

/* A denied answer: decision fields plus the error envelope, code = reason.
 * k NULL: the key is unknown, so the key fields are null and limits []. */
static int expect_denied(const struct itest_resp *r, long status, const char *reason,
			 const struct itest_key *k)
{
	json_object *allowed = itest_get(r->json, "allowed"), *limits = itest_get(r->json, "limits");
	int ok = EXPECT_ERROR(r, status, reason, NULL);

	ok &= EXPECT(json_object_is_type(allowed, json_type_boolean) &&
		     !json_object_get_boolean(allowed), "allowed is not false: %s", r->body);
	ok &= EXPECT_STR(r, r->json, "reason", reason);
	ok &= EXPECT(json_object_is_type(limits, json_type_array) &&
		     (k || itest_len(limits) == 0), "limits: %s", r->body);
	ok &= EXPECT(!itest_get(r->json, "limit") && !itest_get(r->json, "retry_after_ms"),
		     "a %ld carries limit/retry_after_ms: %s", status, r->body);
	if (k) {
		ok &= EXPECT_STR(r, r->json, "key_id", k->id);
		ok &= EXPECT_STR(r, r->json, "owner_id", k->owner);
		ok &= EXPECT_STR(r, r->json, "tier", itest_big_tier());
	} else {
		ok &= EXPECT_STR(r, r->json, "key_id", NULL);
		ok &= EXPECT_STR(r, r->json, "owner_id", NULL);
		ok &= EXPECT_STR(r, r->json, "tier", NULL);
	}
	return ok;
}

static void test_check_allowed(void)
{
	static const char *const bodies[] = {
		"{\"key\":%s,\"endpoint\":\"GET /x\",\"cost\":1}",
		"{\"key\":%s}",
		"{\"key\":%s,\"endpoint\":\"POST /v1/search/deep\"}",
		"{\"key\":%s,\"cost\":1000}",
	};
	const char *tokens[3] = { service.token, operator_tok.token, itest_admin_token() };
	struct itest_key k;
	struct itest_resp r;
	char owner[128], body[1024], ct[128];
	size_t i;

	owner_id(owner, sizeof owner, "ok");
	if (itest_key_create(&k, owner, itest_big_tier(), NULL, NULL) != 0)
		return;
	for (i = 0; i < 3; i++) {
		itest_check(&r, tokens[i], k.key);
		expect_allowed(&r, &k);
		EXPECT(itest_header(&r, "Content-Type", ct, sizeof ct) &&
		       strncmp(ct, "application/json", 16) == 0, "check Content-Type");
		itest_resp_fini(&r);
	}
	for (i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		snprintf(body, sizeof body, bodies[i], itest_q(k.key));
		itest_call(&r, "POST", "/v1/check", service.token, body);
		expect_allowed(&r, &k);
		itest_resp_fini(&r);
	}
}

static void test_check_invalid_key(void)
{
	struct itest_key k;
	struct itest_resp r;
	char owner[128], flipped[256], other[300], path[256];
	const char *bad[6];
	int64_t t0;
	size_t i, n;
	char *last;
	int gone = 0;

	owner_id(owner, sizeof owner, "invalid");
	if (itest_key_create(&k, owner, itest_big_tier(), NULL, NULL) != 0)
		return;
	snprintf(flipped, sizeof flipped, "%s", k.key);
	last = &flipped[strlen(flipped) - 1];
	*last = *last == 'a' ? 'b' : 'a';
	/* A real secret and checksum under another prefix: well formed, and
	 * unknown whether or not the checksum covers the prefix. The old secret
	 * of a rotation (below) is the well-formed unknown key with a valid
	 * checksum. */
	snprintf(other, sizeof other, "zz%s", k.key);
	bad[0] = "tg_short";
	bad[1] = "nonsense";
	bad[2] = flipped;
	bad[3] = other;
	bad[4] = "";
	bad[5] = "tg_00000000000000000000000000000000";
	n = 6;
	for (i = 0; i < n; i++) {
		itest_check(&r, service.token, bad[i]);
		EXPECT(expect_denied(&r, 401, "invalid_key", NULL), "key \"%s\" was not invalid_key",
		       bad[i]);
		itest_resp_fini(&r);
	}
	/* The real key still works: none of the above touched it. */
	itest_check(&r, service.token, k.key);
	expect_allowed(&r, &k);
	itest_resp_fini(&r);

	/* Rotated without grace: the old secret is an unknown key within 1 s. */
	snprintf(path, sizeof path, "/v1/keys/%s/rotate", k.id);
	t0 = itest_now_ms();
	itest_call(&r, "POST", path, itest_admin_token(), "{\"grace_seconds\":0}");
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	for (i = 0; i < 100 && itest_now_ms() - t0 < 1500; i++) {
		itest_check(&r, service.token, k.key);
		if (r.status != 200) {
			gone = 1;
			expect_denied(&r, 401, "invalid_key", NULL);
			itest_resp_fini(&r);
			break;
		}
		itest_resp_fini(&r);
		itest_sleep_ms(50);
	}
	EXPECT(gone, "old key accepted 1.5 s after a rotation without grace");
}

/* Checks `count` times and expects the same denial each time. */
static void expect_denied_n(const struct itest_key *k, int count, long status,
			    const char *reason, const char *what)
{
	int i, ok = 0;

	for (i = 0; i < count; i++) {
		struct itest_resp r;

		itest_check(&r, service.token, k->key);
		if (r.status == status)
			ok++;
		if (i == 0 || r.status != status)
			expect_denied(&r, status, reason, k);
		itest_resp_fini(&r);
	}
	EXPECT(ok == count, "%s: %d of %d checks answered %ld %s", what, ok, count, status, reason);
}

static void expect_allowed_n(const struct itest_key *k, int count, const char *what)
{
	int i, ok = 0;

	for (i = 0; i < count; i++) {
		struct itest_resp r;

		itest_check(&r, service.token, k->key);
		if (r.status == 200)
			ok++;
		if (i == 0 || r.status != 200)
			expect_allowed(&r, k);
		itest_resp_fini(&r);
	}
	EXPECT(ok == count, "%s: %d of %d checks allowed", what, ok, count);
}

enum { SUSP, REV, EXP, SUSP_EXP, SUSP_REV, ALL3, NSTATE };

/* Key states take effect within 1 s on every responder, and the most
 * permanent reason wins: revoked > expired > suspended. */
static void test_check_states(void)
{
	static const char *const tags[NSTATE] = { "susp", "rev", "exp", "susp_exp", "susp_rev", "all" };
	struct itest_key k[NSTATE];
	char owner[128], past[32], body[128], path[256];
	int64_t t_last;
	int i;

	for (i = 0; i < NSTATE; i++) {
		owner_id(owner, sizeof owner, tags[i]);
		if (itest_key_create(&k[i], owner, itest_big_tier(), NULL, NULL) != 0)
			return;
	}
	/* Warm every responder's cache with the active keys. */
	expect_allowed_n(&k[SUSP], 40, "before suspension");
	for (i = 1; i < NSTATE; i++)
		expect_allowed_n(&k[i], 8, tags[i]);

	itest_time(past, sizeof past, -60000);
	snprintf(body, sizeof body, "{\"expires_at\":\"%s\"}", past);
	for (i = 0; i < NSTATE; i++) {
		if (i == SUSP || i == SUSP_EXP || i == SUSP_REV || i == ALL3)
			itest_key_patch(k[i].id, "{\"status\":\"suspended\"}");
		if (i == EXP || i == SUSP_EXP || i == ALL3)
			itest_key_patch(k[i].id, body);
		if (i == REV || i == SUSP_REV || i == ALL3) {
			struct itest_resp r;

			snprintf(path, sizeof path, "/v1/keys/%.159s", k[i].id);
			itest_call(&r, "DELETE", path, itest_admin_token(), NULL);
			EXPECT_STATUS(&r, 200);
			itest_resp_fini(&r);
		}
	}
	t_last = itest_now_ms();
	itest_sleep_ms(1100);
	EXPECT(itest_now_ms() - t_last >= 1100, "slept too little");

	expect_denied_n(&k[SUSP], 40, 403, "suspended", "suspended");
	expect_denied_n(&k[REV], 12, 403, "revoked", "revoked");
	expect_denied_n(&k[EXP], 12, 401, "expired", "expired");
	expect_denied_n(&k[SUSP_EXP], 12, 401, "expired", "suspended and expired");
	expect_denied_n(&k[SUSP_REV], 12, 403, "revoked", "suspended and revoked");
	expect_denied_n(&k[ALL3], 12, 403, "revoked", "suspended, expired and revoked");

	/* Reactivation also reaches every responder within 1 s. */
	itest_key_patch(k[SUSP].id, "{\"status\":\"active\"}");
	itest_key_patch(k[SUSP_EXP].id, "{\"status\":\"active\"}");
	itest_sleep_ms(1100);
	expect_allowed_n(&k[SUSP], 40, "reactivated");
	expect_denied_n(&k[SUSP_EXP], 8, 401, "expired", "reactivated but expired");
}

/* GET /v1/keys/{id} and the list show the credits the checks see, at once:
 * not the balance last set, nor PostgreSQL's count that trails the usage
 * pipeline. */
static void test_check_remaining_shown(void)
{
	struct itest_key k;
	struct itest_resp r;
	char owner[64], path[256];
	int64_t seen = -1, shown = -1;
	int i;

	snprintf(owner, sizeof owner, "acct_it%s_check_rem", itest_suffix());
	if (itest_key_create(&k, owner, itest_big_tier(), "\"remaining\":5", NULL) != 0)
		return;
	snprintf(path, sizeof path, "/v1/keys/%s", k.id);
	for (i = 0; i < 6; i++) {
		itest_check(&r, itest_admin_token(), k.key);
		EXPECT(r.status == (i < 5 ? 200 : 429), "check %d answered %ld: %.300s", i + 1,
		       r.status, r.body ? r.body : "");
		EXPECT(itest_int(r.json, "remaining", &seen) && seen == (i < 5 ? 4 - i : 0),
		       "check %d: want remaining %d: %.300s", i + 1, i < 5 ? 4 - i : 0,
		       r.body ? r.body : "");
		itest_resp_fini(&r);
		itest_call(&r, "GET", path, itest_admin_token(), NULL);
		EXPECT(itest_int(r.json, "remaining", &shown) && shown == seen,
		       "after check %d the check said remaining %lld, GET says: %.300s", i + 1,
		       (long long)seen, r.body ? r.body : "");
		itest_resp_fini(&r);
	}
	/* The list shows the same. */
	snprintf(path, sizeof path, "/v1/keys?owner_id=%s", owner);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT(itest_int(itest_idx(itest_get(r.json, "data"), 0), "remaining", &shown) && shown == 0,
	       "the list shows: %.300s", r.body ? r.body : "");
	EXPECT(!itest_has(itest_idx(itest_get(r.json, "data"), 0), "_rv"),
	       "the list shows an internal member: %.300s", r.body ? r.body : "");
	itest_resp_fini(&r);
}

static void test_check_bad_input(void)
{
	static const struct {
		const char *fmt, *code, *field;
	} cases[] = {
		{ "{\"key\":%s,\"cost\":0}", "invalid_argument", "cost" },
		{ "{\"key\":%s,\"cost\":-1}", "invalid_argument", "cost" },
		{ "{\"key\":%s,\"cost\":1001}", "invalid_argument", "cost" },
		{ "{\"key\":%s,\"cost\":\"x\"}", "invalid_argument", "cost" },
		{ "{\"key\":%s,\"cost\":1.5}", "invalid_argument", "cost" },
		{ "{\"key\":%s,\"cost\":99999999999999999999}", "invalid_argument", "cost" },
		{ "{\"key\":%s,\"endpoint\":5}", "invalid_argument", "endpoint" },
		{ "{\"key\":%s,\"endpoint\":\"nonsense\"}", "invalid_argument", "endpoint" },
		{ "{\"key\":%s,\"colour\":1}", "unknown_field", "colour" },
		{ "{\"endpoint\":\"GET /x\",\"cost\":1%.0s}", "missing_field", "key" },
		{ "{\"key\":42%.0s}", "invalid_argument", "key" },
	};
	struct itest_key k;
	char owner[128], body[1024];
	size_t i;

	owner_id(owner, sizeof owner, "input");
	if (itest_key_create(&k, owner, itest_big_tier(), NULL, NULL) != 0)
		return;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct itest_resp r;

		snprintf(body, sizeof body, cases[i].fmt, itest_q(k.key));
		itest_call(&r, "POST", "/v1/check", service.token, body);
		EXPECT_ERROR(&r, 400, cases[i].code, cases[i].field);
		itest_resp_fini(&r);
	}
}

int itest_register_check(void)
{
	CU_pSuite s = CU_add_suite("check", suite_init, suite_clean);

	if (!s ||
	    !CU_add_test(s, "valid key is allowed", test_check_allowed) ||
	    !CU_add_test(s, "malformed and unknown keys", test_check_invalid_key) ||
	    !CU_add_test(s, "suspended, revoked, expired and precedence", test_check_states) ||
	    !CU_add_test(s, "cost and body validation", test_check_bad_input) ||
	    !CU_add_test(s, "GET shows the remaining the check sees", test_check_remaining_shown))
		return -1;
	return 0;
}
