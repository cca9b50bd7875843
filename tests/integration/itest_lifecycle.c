/*
 * itest_lifecycle.c - managed API keys after creation: list, patch, rotate, revoke.
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "itest_fixture.h"
#include "itest_suites.h"

static void owner_id(char *buf, size_t n, const char *tag)
{
	snprintf(buf, n, "acct_it%s_life_%s", itest_suffix(), tag);
}

/* Five keys for owner: three on free, then two on pro. */
static int make_five(const char *owner, struct itest_key k[5])
{
	int i;

	for (i = 0; i < 5; i++)
		if (itest_key_create(&k[i], owner, i < 3 ? "free" : "pro", NULL, NULL) != 0)
			return -1;
	return 0;
}

static void test_key_list(void)
{
	struct itest_key k[5];
	char owner[128], esc[512], path[1024], other[160];
	json_object *all = NULL;
	int pages;

	owner_id(owner, sizeof owner, "list");
	if (make_five(owner, k) != 0)
		return;
	/* A neighbour whose id starts like ours must never show up. */
	snprintf(other, sizeof other, "%sx", owner);
	{
		struct itest_key o;

		(void)itest_key_create(&o, other, "pro", NULL, NULL);
	}
	itest_escape(owner, esc, sizeof esc);

	snprintf(path, sizeof path, "/v1/keys?owner_id=%s", esc);
	pages = itest_list_all(path, itest_admin_token(), 2, 10, &all);
	EXPECT(pages == 3, "5 keys with limit=2 took %d pages", pages);
	if (all) {
		size_t i, j, n = itest_len(all);
		int seen[5] = {0};

		EXPECT(n == 5, "listed %zu keys, want 5", n);
		for (i = 0; i < n; i++) {
			json_object *e = itest_idx(all, i);
			const char *id = itest_str(e, "id");

			EXPECT(!itest_secret_member(e), "list entry carries %s", itest_secret_member(e));
			EXPECT_STR(NULL, e, "owner_id", owner);
			for (j = 0; j < 5; j++)
				if (id && strcmp(id, k[j].id) == 0)
					seen[j]++;
			if (i > 0) {
				const char *a = itest_str(itest_idx(all, i - 1), "created_at");
				const char *b = itest_str(e, "created_at");

				EXPECT(a && b && strcmp(a, b) <= 0, "list not in creation order: %s then %s",
				       a ? a : "?", b ? b : "?");
			}
		}
		for (j = 0; j < 5; j++)
			EXPECT(seen[j] == 1, "key %zu listed %d times", j, seen[j]);
	}
	json_object_put(all);
}

/* Filters combine with owner_id. */
static void test_key_list_filters(void)
{
	struct itest_key k[5];
	struct itest_resp r;
	char owner[128], esc[512], path[1024];

	owner_id(owner, sizeof owner, "filter");
	if (make_five(owner, k) != 0)
		return;
	itest_escape(owner, esc, sizeof esc);

	/* tier= filter. */
	snprintf(path, sizeof path, "/v1/keys?owner_id=%s&tier=pro&limit=100", esc);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	EXPECT(itest_len(itest_get(r.json, "data")) == 2 && itest_find_id(r.json, k[3].id) &&
	       itest_find_id(r.json, k[4].id), "tier=pro: %s", r.body);
	EXPECT_STR(&r, r.json, "next_cursor", NULL);
	itest_resp_fini(&r);

	/* status= filter. */
	itest_key_patch(k[1].id, "{\"status\":\"suspended\"}");
	snprintf(path, sizeof path, "/v1/keys?owner_id=%s&status=suspended", esc);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	EXPECT(itest_len(itest_get(r.json, "data")) == 1 && itest_find_id(r.json, k[1].id),
	       "status=suspended: %s", r.body);
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/keys?owner_id=%s&status=active&tier=free", esc);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	EXPECT(itest_len(itest_get(r.json, "data")) == 2 && itest_find_id(r.json, k[0].id) &&
	       itest_find_id(r.json, k[2].id), "status=active&tier=free: %s", r.body);
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/keys?owner_id=%s&status=sleeping", esc);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_ERROR(&r, 400, "invalid_argument", "status");
	itest_resp_fini(&r);

	/* An owner with no keys: an empty page. */
	snprintf(path, sizeof path, "/v1/keys?owner_id=%s_nobody", esc);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	EXPECT(json_object_is_type(itest_get(r.json, "data"), json_type_array) &&
	       itest_len(itest_get(r.json, "data")) == 0, "empty owner: %s", r.body);
	EXPECT_STR(&r, r.json, "next_cursor", NULL);
	itest_resp_fini(&r);
}

static void test_key_patch(void)
{
	struct itest_key k;
	struct itest_resp r, g;
	char owner[128], path[256], future[32], body[256], updated[32] = "";
	json_object *before, *want;

	owner_id(owner, sizeof owner, "patch");
	if (itest_key_create(&k, owner, "free", NULL, &r) != 0) {
		itest_resp_fini(&r);
		return;
	}
	snprintf(updated, sizeof updated, "%s", itest_str(r.json, "updated_at") ? itest_str(r.json, "updated_at") : "");
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/keys/%s", k.id);
	itest_sleep_ms(20);

	itest_call(&r, "PATCH", path, itest_admin_token(), "{\"name\":\"renamed\"}");
	EXPECT_STATUS(&r, 200);
	EXPECT_STR(&r, r.json, "name", "renamed");
	EXPECT_STR(&r, r.json, "tier", "free");
	EXPECT(!itest_secret_member(r.json), "PATCH answer carries %s", itest_secret_member(r.json));
	EXPECT(itest_str(r.json, "updated_at") && strcmp(itest_str(r.json, "updated_at"), updated) > 0,
	       "updated_at did not advance from %s: %s", updated, r.body);
	itest_resp_fini(&r);

	itest_call(&r, "PATCH", path, itest_admin_token(), "{\"tier\":\"enterprise\"}");
	EXPECT_STATUS(&r, 200);
	EXPECT_STR(&r, r.json, "tier", "enterprise");
	itest_expect_tier_limits(&r, "enterprise", 0);
	itest_resp_fini(&r);

	itest_call(&r, "PATCH", path, itest_admin_token(), "{\"status\":\"suspended\"}");
	EXPECT_STATUS(&r, 200);
	EXPECT_STR(&r, r.json, "status", "suspended");
	itest_resp_fini(&r);
	itest_call(&r, "PATCH", path, itest_admin_token(), "{\"status\":\"active\"}");
	EXPECT_STATUS(&r, 200);
	EXPECT_STR(&r, r.json, "status", "active");
	itest_resp_fini(&r);

	itest_time(future, sizeof future, 30LL * 24 * 3600 * 1000);
	snprintf(body, sizeof body, "{\"expires_at\":\"%s\",\"remaining\":100}", future);
	itest_call(&r, "PATCH", path, itest_admin_token(), body);
	EXPECT_STATUS(&r, 200);
	EXPECT_STR(&r, r.json, "expires_at", future);
	EXPECT(json_object_get_int64(itest_get(r.json, "remaining")) == 100 &&
	       json_object_is_type(itest_get(r.json, "remaining"), json_type_int), "remaining: %s", r.body);
	itest_resp_fini(&r);
	/* An offset is accepted and answered in UTC. */
	itest_call(&r, "PATCH", path, itest_admin_token(),
		   "{\"expires_at\":\"2099-01-01T12:00:00+02:00\"}");
	EXPECT_STATUS(&r, 200);
	EXPECT_STR(&r, r.json, "expires_at", "2099-01-01T10:00:00.000Z");
	itest_resp_fini(&r);
	itest_call(&r, "PATCH", path, itest_admin_token(), "{\"expires_at\":null,\"remaining\":null}");
	EXPECT_STATUS(&r, 200);
	EXPECT_STR(&r, r.json, "expires_at", NULL);
	EXPECT_STR(&r, r.json, "remaining", NULL);
	itest_resp_fini(&r);

	itest_call(&r, "PATCH", path, itest_admin_token(),
		   "{\"meta\":{\"plan\":\"x\",\"nested\":{\"a\":[1,2]}}}");
	EXPECT_STATUS(&r, 200);
	want = json_tokener_parse("{\"plan\":\"x\",\"nested\":{\"a\":[1,2]}}");
	EXPECT(json_object_equal(want, itest_get(r.json, "meta")), "meta: %s", r.body);
	json_object_put(want);
	EXPECT_STR(&r, r.json, "name", "renamed");
	before = json_object_get(r.json);
	itest_resp_fini(&r);

	itest_call(&g, "GET", path, itest_admin_token(), NULL);
	EXPECT(json_object_equal(before, g.json), "GET %s differs from PATCH answer",
	       g.body);
	itest_resp_fini(&g);
	json_object_put(before);
}

/* Refused PATCHes change nothing. */
static void test_key_patch_refused(void)
{
	static const struct {
		const char *body, *code, *field;
	} bad[] = {
		{ "{\"colour\":\"red\"}", "unknown_field", "colour" },
		{ "{\"name\":\"x\",\"nmae\":\"y\"}", "unknown_field", "nmae" },
		{ "{\"status\":\"revoked\"}", "invalid_argument", "status" },
		{ "{\"status\":\"paused\"}", "invalid_argument", "status" },
		{ "{\"tier\":\"it-no-such-tier\"}", "invalid_argument", "tier" },
		{ "{\"remaining\":\"10\"}", "invalid_argument", "remaining" },
		{ "{\"meta\":[1]}", "invalid_argument", "meta" },
		{ "{\"expires_at\":\"2026-13-01T00:00:00.000Z\"}", "invalid_argument", "expires_at" },
		{ "{\"limits\":[{\"name\":\"x\",\"window_s\":1,\"limit\":0}]}", "invalid_argument",
		  "limits[0].limit" },
	};
	struct itest_key k;
	struct itest_resp r, g;
	char owner[128], path[256];
	json_object *before;
	size_t i;

	owner_id(owner, sizeof owner, "patchbad");
	if (itest_key_create(&k, owner, "free", "\"meta\":{\"keep\":true}", NULL) != 0)
		return;
	snprintf(path, sizeof path, "/v1/keys/%s", k.id);
	itest_call(&g, "GET", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&g, 200);
	before = json_object_get(g.json);
	itest_resp_fini(&g);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		itest_call(&r, "PATCH", path, itest_admin_token(), bad[i].body);
		EXPECT_ERROR(&r, 400, bad[i].code, bad[i].field);
		itest_resp_fini(&r);
	}
	itest_call(&g, "GET", path, itest_admin_token(), NULL);
	EXPECT(before && json_object_equal(before, g.json), "refused PATCH changed the key: %s",
	       g.body);
	itest_resp_fini(&g);
	json_object_put(before);
}

/* Rotates k with this grace; the answer is the same key with a new secret,
 * which goes into out. `before` is the key object before any rotation. */
static void rotate(const struct itest_key *k, int grace, json_object *before, char *out,
		   size_t n)
{
	struct itest_resp r;
	char path[256], body[64], start[32];

	snprintf(path, sizeof path, "/v1/keys/%s/rotate", k->id);
	snprintf(body, sizeof body, "{\"grace_seconds\":%d}", grace);
	itest_call(&r, "POST", path, itest_admin_token(), body);
	EXPECT_STATUS(&r, 200);
	EXPECT_STR(&r, r.json, "id", k->id);
	EXPECT_STR(&r, r.json, "owner_id", k->owner);
	EXPECT_STR(&r, r.json, "tier", itest_big_tier());
	EXPECT_STR(&r, r.json, "status", "active");
	EXPECT(before && json_object_equal(itest_get(before, "limits"), itest_get(r.json, "limits")),
	       "rotation changed limits: %s", r.body);
	snprintf(out, n, "%s", itest_str(r.json, "key") ? itest_str(r.json, "key") : "");
	EXPECT(strncmp(out, "tg_", 3) == 0 && strcmp(out, k->key) != 0, "rotate: new key %s", out);
	snprintf(start, sizeof start, "%.7s", out);
	EXPECT_STR(&r, r.json, "start", start);
	itest_resp_fini(&r);
}

/* Each of the keys is allowed `times` times in a row. */
static void expect_keys_work(const char *const *keys, size_t nkeys, int times)
{
	int i;
	size_t j;

	for (i = 0; i < times; i++) {
		for (j = 0; j < nkeys; j++) {
			struct itest_resp r;

			itest_check(&r, itest_admin_token(), keys[j]);
			EXPECT(r.status == 200, "secret %zu refused: %ld %s", j, r.status, r.body);
			itest_resp_fini(&r);
		}
	}
}

/* The old secret lives out its grace, then answers invalid_key; rotating
 * again never stretches an earlier secret's grace. */
static void test_key_rotate(void)
{
	struct itest_key k;
	struct itest_resp r;
	char owner[128], path[256], second[256] = "", third[256] = "";
	const char *keys[3];
	int64_t t0, first401 = -1;
	json_object *before;
	int i;

	owner_id(owner, sizeof owner, "rotate");
	if (!itest_big_tier() || itest_key_create(&k, owner, itest_big_tier(), NULL, NULL) != 0)
		return;
	snprintf(path, sizeof path, "/v1/keys/%s", k.id);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	before = json_object_get(r.json);
	itest_resp_fini(&r);
	keys[0] = k.key;
	expect_keys_work(keys, 1, 8);

	snprintf(path, sizeof path, "/v1/keys/%s/rotate", k.id);
	itest_call(&r, "POST", path, itest_admin_token(), "{\"grace_seconds\":-1}");
	EXPECT_ERROR(&r, 400, "invalid_argument", "grace_seconds");
	itest_resp_fini(&r);

	t0 = itest_now_ms();
	rotate(&k, 2, before, second, sizeof second);
	rotate(&k, 60, before, third, sizeof third);
	json_object_put(before);
	if (!second[0] || !third[0])
		return;
	keys[1] = second;
	keys[2] = third;
	expect_keys_work(keys, 3, 1);

	/* The first secret dies when its 2 s grace ends, within the cache bound. */
	for (i = 0; i < 200 && itest_now_ms() - t0 < 5000; i++) {
		itest_check(&r, itest_admin_token(), k.key);
		if (r.status != 200) {
			first401 = itest_now_ms() - t0;
			EXPECT_ERROR(&r, 401, "invalid_key", NULL);
			EXPECT(json_object_get_boolean(itest_get(r.json, "allowed")) == 0 &&
			       itest_is_null(r.json, "key_id"), "rotated-out key: %s", r.body);
			itest_resp_fini(&r);
			break;
		}
		itest_resp_fini(&r);
		itest_sleep_ms(100);
	}
	EXPECT(first401 >= 0, "old key still accepted 5 s after a 2 s grace");
	EXPECT(first401 < 0 || first401 >= 1500, "old key refused after %lld ms of a 2 s grace",
	       (long long)first401);
	for (i = 0; i < 12; i++) {
		itest_check(&r, itest_admin_token(), k.key);
		EXPECT_ERROR(&r, 401, "invalid_key", NULL);
		itest_resp_fini(&r);
	}
	/* The second secret is in its 60 s grace; the third is current. */
	expect_keys_work(keys + 1, 2, 6);
}

static void test_key_revoke(void)
{
	struct itest_key k;
	struct itest_resp r;
	char owner[128], path[256];

	owner_id(owner, sizeof owner, "revoke");
	if (itest_key_create(&k, owner, "free", NULL, NULL) != 0)
		return;
	snprintf(path, sizeof path, "/v1/keys/%s", k.id);
	itest_call(&r, "DELETE", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	EXPECT_STR(&r, r.json, "id", k.id);
	EXPECT_STR(&r, r.json, "status", "revoked");
	EXPECT_STR(&r, r.json, "owner_id", owner);
	EXPECT(!itest_secret_member(r.json), "revoke answer carries %s", itest_secret_member(r.json));
	itest_resp_fini(&r);

	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	EXPECT_STR(&r, r.json, "status", "revoked");
	itest_resp_fini(&r);

	itest_call(&r, "PATCH", path, itest_admin_token(), "{\"status\":\"active\"}");
	EXPECT_ERROR(&r, 409, "conflict", NULL);
	itest_resp_fini(&r);
	{
		char esc[256], list[512];

		snprintf(list, sizeof list, "/v1/keys?owner_id=%s&status=revoked",
			 itest_escape(owner, esc, sizeof esc));
		itest_call(&r, "GET", list, itest_admin_token(), NULL);
		EXPECT_STATUS(&r, 200);
		EXPECT(itest_len(itest_get(r.json, "data")) == 1 && itest_find_id(r.json, k.id),
		       "status=revoked: %s", r.body);
		itest_resp_fini(&r);
	}
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_STR(&r, r.json, "status", "revoked");
	itest_resp_fini(&r);
}

int itest_register_lifecycle(void)
{
	CU_pSuite s = CU_add_suite("keys: list, patch, rotate, revoke", NULL, NULL);

	if (!s ||
	    !CU_add_test(s, "list pagination", test_key_list) ||
	    !CU_add_test(s, "list filters", test_key_list_filters) ||
	    !CU_add_test(s, "patch each field", test_key_patch) ||
	    !CU_add_test(s, "refused patches change nothing", test_key_patch_refused) ||
	    !CU_add_test(s, "rotate with grace", test_key_rotate) ||
	    !CU_add_test(s, "revoke is permanent", test_key_revoke))
		return -1;
	return 0;
}
