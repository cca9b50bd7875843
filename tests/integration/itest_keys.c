/*
 * itest_keys.c - managed API keys: create, read, validation, effective limits.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "itest_fixture.h"
#include "itest_suites.h"

static void owner_id(char *buf, size_t n, const char *tag)
{
	snprintf(buf, n, "acct_it%s_%s", itest_suffix(), tag);
}

/* `key` is <prefix>_<base62 secret of at least 128 bits>. */
static int key_shaped(const char *key, const char *prefix)
{
	size_t pl = strlen(prefix), i, n;

	if (!key || strncmp(key, prefix, pl) != 0 || key[pl] != '_')
		return 0;
	n = strlen(key + pl + 1);
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)key[pl + 1 + i]))
			return 0;
	return n >= 22;
}

static void expect_limit(const struct itest_resp *r, const char *name, int64_t window,
			 int64_t limit)
{
	json_object *l = itest_find_named(r->json, "limits", name);
	int64_t w = -1, v = -1;

	EXPECT(l && itest_int(l, "window_s", &w) && itest_int(l, "limit", &v) && w == window &&
	       v == limit, "%s: limit %s want %lld/%lld: %s", r->what, name, (long long)window,
	       (long long)limit, r->body);
}

static void test_key_create_and_get(void)
{
	struct itest_key k, k2;
	struct itest_resp r, g;
	char owner[128], path[256], start[32];
	json_object *want;

	owner_id(owner, sizeof owner, "create");
	if (itest_key_create(&k, owner, "pro", "\"meta\":{\"team\":\"a\",\"n\":1}", &r) != 0) {
		itest_resp_fini(&r);
		return;
	}
	EXPECT(key_shaped(k.key, "tg"), "key %s is not tg_<base62>", k.key);
	snprintf(start, sizeof start, "%.7s", k.key);
	EXPECT_STR(&r, r.json, "start", start);
	EXPECT_STR(&r, r.json, "prefix", "tg");
	EXPECT_STR(&r, r.json, "owner_id", owner);
	EXPECT_STR(&r, r.json, "tier", "pro");
	EXPECT_STR(&r, r.json, "status", "active");
	EXPECT_STR(&r, r.json, "expires_at", NULL);
	EXPECT_STR(&r, r.json, "remaining", NULL);
	EXPECT_STR(&r, r.json, "last_used_at", NULL);
	EXPECT(itest_str(r.json, "name") && strncmp(itest_str(r.json, "name"), "itest key", 9) == 0,
	       "name: %s", r.body);
	EXPECT(itest_is_time(itest_str(r.json, "created_at")) &&
	       itest_is_time(itest_str(r.json, "updated_at")), "times: %s", r.body);
	want = json_tokener_parse("{\"team\":\"a\",\"n\":1}");
	EXPECT(json_object_equal(want, itest_get(r.json, "meta")), "meta: %s", r.body);
	json_object_put(want);
	itest_expect_tier_limits(&r, "pro", 0);

	/* GET shows the same object without the plaintext. */
	snprintf(path, sizeof path, "/v1/keys/%s", k.id);
	itest_call(&g, "GET", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&g, 200);
	EXPECT(!itest_secret_member(g.json), "GET key carries %s", itest_secret_member(g.json));
	EXPECT(strstr(g.body, k.key + 3) == NULL, "GET key shows the secret");
	if (json_object_is_type(r.json, json_type_object))
		json_object_object_del(r.json, "key");
	EXPECT(r.json && json_object_equal(r.json, g.json), "GET %s differs from create %s", g.body,
	       r.body);
	itest_resp_fini(&g);
	itest_resp_fini(&r);

	/* Another prefix; keys never repeat. */
	if (itest_key_create(&k2, owner, "pro", "\"prefix\":\"acme42\"", &r) == 0) {
		EXPECT(key_shaped(k2.key, "acme42"), "key %s is not acme42_<base62>", k2.key);
		snprintf(start, sizeof start, "%.11s", k2.key);
		EXPECT_STR(&r, r.json, "start", start);
		EXPECT_STR(&r, r.json, "prefix", "acme42");
		EXPECT(strcmp(k.id, k2.id) != 0 && strcmp(k.key + 3, k2.key + 7) != 0,
		       "two keys share an id or a secret");
	}
	itest_resp_fini(&r);

	/* Without a name or meta: defaults. */
	{
		char body[512];

		snprintf(body, sizeof body, "{\"owner_id\":%s,\"tier\":\"free\"}", itest_q(owner));
		itest_call(&r, "POST", "/v1/keys", itest_admin_token(), body);
		EXPECT_STATUS(&r, 201);
		EXPECT(key_shaped(itest_str(r.json, "key"), "tg"), "minimal key: %s", r.body);
		EXPECT_STR(&r, r.json, "tier", "free");
		EXPECT(json_object_is_type(itest_get(r.json, "meta"), json_type_object) &&
		       itest_nmembers(itest_get(r.json, "meta")) == 0,
		       "default meta is not {}: %s", r.body);
		itest_resp_fini(&r);
	}
}

static void test_key_not_found(void)
{
	struct itest_key k;
	struct itest_resp r;
	char owner[128], path[256], unknown[160];
	static const char *const methods[] = { "GET", "PATCH", "DELETE" };
	size_t i;

	owner_id(owner, sizeof owner, "nf");
	if (itest_key_create(&k, owner, "free", NULL, NULL) != 0)
		return;
	itest_unknown_id(k.id, unknown, sizeof unknown);
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "/v1/keys/%s", unknown);
		itest_call(&r, methods[i], path, itest_admin_token(),
			   i == 1 ? "{\"name\":\"x\"}" : NULL);
		EXPECT_ERROR(&r, 404, "not_found", NULL);
		itest_resp_fini(&r);
	}
	snprintf(path, sizeof path, "/v1/keys/%s/rotate", unknown);
	itest_call(&r, "POST", path, itest_admin_token(), "{\"grace_seconds\":0}");
	EXPECT_ERROR(&r, 404, "not_found", NULL);
	itest_resp_fini(&r);
	itest_call(&r, "GET", "/v1/keys/nonexistent", itest_admin_token(), NULL);
	EXPECT_ERROR(&r, 404, "not_found", NULL);
	itest_resp_fini(&r);
}

static void test_key_create_invalid(void)
{
	static char long_owner[160], long_name[260], past[32], body[1024];
	struct {
		const char *body, *code, *field;
	} cases[] = {
		{ "\"tier\":\"it-no-such-tier\"", "invalid_argument", "tier" },
		{ "\"tier\":\"free\",\"expires_at\":\"2001-01-01T00:00:00.000Z\"", "invalid_argument",
		  "expires_at" },
		{ past, "invalid_argument", "expires_at" },
		{ "\"tier\":\"free\",\"expires_at\":\"tomorrow\"", "invalid_argument", "expires_at" },
		{ "\"tier\":\"free\",\"prefix\":\"Tg\"", "invalid_argument", "prefix" },
		{ "\"tier\":\"free\",\"prefix\":\"abcdefghijklmnopq\"", "invalid_argument", "prefix" },
		{ "\"tier\":\"free\",\"prefix\":\"\"", "invalid_argument", "prefix" },
		{ "\"tier\":\"free\",\"prefix\":\"a_b\"", "invalid_argument", "prefix" },
		{ "\"tier\":\"free\",\"remaining\":-1", "invalid_argument", "remaining" },
		{ "\"tier\":\"free\",\"meta\":\"x\"", "invalid_argument", "meta" },
		{ "\"tier\":\"free\",\"limits\":[{\"name\":\"x\",\"window_s\":0,\"limit\":1}]",
		  "invalid_argument", "limits[0].window_s" },
		{ "\"tier\":\"free\",\"status\":\"active\",\"id\":\"x\"", "unknown_field", NULL },
		{ long_name, "invalid_argument", "name" },
		{ "\"tier\":\"free\",\"refill\":{\"amount\":1,\"interval\":\"week\"}",
		  "invalid_argument", "refill.interval" },
		{ "\"tier\":\"free\",\"refill\":{\"amount\":-1,\"interval\":\"day\"}",
		  "invalid_argument", "refill.amount" },
		{ "\"tier\":\"free\",\"refill\":{\"amount\":1,\"interval\":\"month\","
		  "\"day_of_month\":29}", "invalid_argument", "refill.day_of_month" },
		{ "\"tier\":\"free\",\"refill\":{\"amount\":1,\"interval\":\"day\","
		  "\"day_of_month\":2}", "invalid_argument", "refill.day_of_month" },
		{ "\"tier\":\"free\",\"refill\":{\"amount\":1}", "missing_field",
		  "refill.interval" },
		{ "\"tier\":\"free\",\"refill\":{\"amount\":1,\"interval\":\"day\",\"x\":1}",
		  "unknown_field", "refill.x" },
		{ "\"tier\":\"free\",\"refill\":{\"amount\":1,\"interval\":\"day\"},"
		  "\"remaining\":null", "invalid_argument", "remaining" },
	};
	char owner[128], esc[512], path[1024];
	struct itest_resp r;
	json_object *all = NULL;
	size_t i;

	owner_id(owner, sizeof owner, "invalid");
	itest_time(past, sizeof past, -60000);
	snprintf(body, sizeof body, "\"tier\":\"free\",\"expires_at\":\"%s\"", past);
	cases[2].body = body;
	memset(long_name, 0, sizeof long_name);
	strcpy(long_name, "\"tier\":\"free\",\"name\":\"");
	memset(long_name + strlen(long_name), 'n', 201);
	strcat(long_name, "\"");

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char full[2048];

		snprintf(full, sizeof full, "{\"owner_id\":%s,%s}", itest_q(owner), cases[i].body);
		itest_call(&r, "POST", "/v1/keys", itest_admin_token(), full);
		EXPECT_ERROR(&r, 400, cases[i].code, cases[i].field);
		itest_resp_fini(&r);
	}

	/* owner_id itself. */
	memset(long_owner, 'o', 129);
	long_owner[129] = '\0';
	{
		const char *bad[] = { "\"owner_id\":\"\"", "\"owner_id\":\"line\\nbreak\"",
				      "\"owner_id\":\"tab\\there\"", "\"owner_id\":42", NULL };
		char full[512];

		for (i = 0; bad[i]; i++) {
			snprintf(full, sizeof full, "{%s,\"tier\":\"free\"}", bad[i]);
			itest_call(&r, "POST", "/v1/keys", itest_admin_token(), full);
			EXPECT_ERROR(&r, 400, "invalid_argument", "owner_id");
			itest_resp_fini(&r);
		}
		snprintf(full, sizeof full, "{\"owner_id\":\"%s\",\"tier\":\"free\"}", long_owner);
		itest_call(&r, "POST", "/v1/keys", itest_admin_token(), full);
		EXPECT_ERROR(&r, 400, "invalid_argument", "owner_id");
		itest_resp_fini(&r);
		itest_call(&r, "POST", "/v1/keys", itest_admin_token(), "{\"tier\":\"free\"}");
		EXPECT_ERROR(&r, 400, "missing_field", "owner_id");
		itest_resp_fini(&r);
	}

	/* Nothing was created for the owner. */
	snprintf(path, sizeof path, "/v1/keys?owner_id=%s", itest_escape(owner, esc, sizeof esc));
	if (itest_list_all(path, itest_admin_token(), 100, 5, &all) >= 0)
		EXPECT(itest_len(all) == 0, "refused creates left %zu keys",
		       itest_len(all));
	json_object_put(all);
}

/* A refill round-trips in its canonical form; without remaining the
 * balance starts at the amount; PATCH replaces or removes it (removing
 * keeps the credits left); remaining null removes the refill too. */
static void test_key_refill(void)
{
	char owner[128], path[256];
	struct itest_key k;
	struct itest_resp r;
	int64_t rem = -1, amount = -1, dom = -1;

	owner_id(owner, sizeof owner, "refill");
	if (itest_key_create(&k, owner, "free", "\"refill\":{\"interval\":\"month\","
			     "\"amount\":40}", &r) != 0)
		return;
	EXPECT(itest_int(r.json, "remaining", &rem) && rem == 40, "remaining %lld, want 40",
	       (long long)rem);
	EXPECT(itest_int(r.json, "refill.amount", &amount) && amount == 40 &&
	       itest_int(r.json, "refill.day_of_month", &dom) && dom == 1,
	       "refill as created: %s", r.body);
	EXPECT_STR(&r, r.json, "refill.interval", "month");
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/keys/%s", k.id);
	itest_call(&r, "PATCH", path, itest_admin_token(),
		   "{\"refill\":{\"amount\":7,\"interval\":\"day\"}}");
	EXPECT_STATUS(&r, 200);
	EXPECT(itest_int(r.json, "remaining", &rem) && rem == 7, "after a new refill: remaining %lld",
	       (long long)rem);
	EXPECT(!itest_has(r.json, "refill.day_of_month"), "a daily refill shows day_of_month: %s",
	       r.body);
	itest_resp_fini(&r);
	itest_call(&r, "PATCH", path, itest_admin_token(),
		   "{\"refill\":{\"amount\":7,\"interval\":\"month\",\"day_of_month\":3}}");
	EXPECT_STATUS(&r, 200);
	EXPECT(itest_int(r.json, "refill.day_of_month", &dom) && dom == 3, "day_of_month: %s",
	       r.body);
	itest_resp_fini(&r);
	itest_call(&r, "PATCH", path, itest_admin_token(), "{\"refill\":null}");
	EXPECT_STATUS(&r, 200);
	EXPECT(itest_is_null(r.json, "refill"), "refill after null: %s", r.body);
	EXPECT(itest_int(r.json, "remaining", &rem) && rem == 7, "refill null kept %lld, want 7",
	       (long long)rem);
	itest_resp_fini(&r);
	itest_call(&r, "PATCH", path, itest_admin_token(),
		   "{\"refill\":{\"amount\":2,\"interval\":\"day\"}}");
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	itest_call(&r, "PATCH", path, itest_admin_token(), "{\"remaining\":null}");
	EXPECT_STATUS(&r, 200);
	EXPECT(itest_is_null(r.json, "refill") && itest_is_null(r.json, "remaining"),
	       "remaining null leaves %s", r.body);
	itest_resp_fini(&r);
}

/* Longest accepted owner ids and names, counted in characters, not bytes. */
static void test_key_length_bounds(void)
{
	struct itest_key k;
	struct itest_resp r, g;
	char owner[1024], name[1024], extra[1200], path[256];
	size_t i, o;

	/* 128 characters: a unique ASCII head, then 3-byte CJK characters. */
	o = (size_t)snprintf(owner, sizeof owner, "it%s_", itest_suffix());
	for (i = o; i < 128; i++) {
		memcpy(owner + o, "\xE5\xAD\x97", 3);
		o += 3;
	}
	owner[o] = '\0';
	for (o = 0, i = 0; i < 200; i++, o += 4)
		memcpy(name + o, "\xF0\x9F\x94\x91", 4);
	name[o] = '\0';
	snprintf(extra, sizeof extra, "\"name\":%s", itest_q(name));
	/* itest_key_create sets its own name first; a second "name" would be a
	 * duplicate member, so send this body directly. */
	{
		char body[4096];

		snprintf(body, sizeof body, "{\"owner_id\":%s,%s,\"tier\":\"free\"}", itest_q(owner),
			 extra);
		itest_call(&r, "POST", "/v1/keys", itest_admin_token(), body);
	}
	EXPECT_STATUS(&r, 201);
	EXPECT_STR(&r, r.json, "owner_id", owner);
	EXPECT_STR(&r, r.json, "name", name);
	snprintf(k.id, sizeof k.id, "%s", itest_str(r.json, "id") ? itest_str(r.json, "id") : "x");
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/keys/%s", k.id);
	itest_call(&g, "GET", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&g, 200);
	EXPECT_STR(&g, g.json, "owner_id", owner);
	EXPECT_STR(&g, g.json, "name", name);
	itest_resp_fini(&g);

	/* One character more is refused. */
	memcpy(owner + strlen(owner), "\xE5\xAD\x97", 4);
	{
		char body[4096];

		snprintf(body, sizeof body, "{\"owner_id\":%s,\"tier\":\"free\"}", itest_q(owner));
		itest_call(&r, "POST", "/v1/keys", itest_admin_token(), body);
		EXPECT_ERROR(&r, 400, "invalid_argument", "owner_id");
		itest_resp_fini(&r);
		memcpy(name + strlen(name), "\xF0\x9F\x94\x91", 5);
		snprintf(body, sizeof body, "{\"owner_id\":\"x\",\"name\":%s,\"tier\":\"free\"}",
			 itest_q(name));
		itest_call(&r, "POST", "/v1/keys", itest_admin_token(), body);
		EXPECT_ERROR(&r, 400, "invalid_argument", "name");
		itest_resp_fini(&r);
	}
}

/* Effective limits = the tier's merged by name with the key's overrides. */
static void test_key_limits_merge(void)
{
	struct itest_key k;
	struct itest_resp r;
	char tier[64], tier2[64], body[512], owner[128], path[256];

	snprintf(tier, sizeof tier, "it%s-merge", itest_suffix());
	snprintf(tier2, sizeof tier2, "it%s-merge2", itest_suffix());
	snprintf(body, sizeof body, "{\"name\":\"%s\",\"limits\":["
		 "{\"name\":\"per_second\",\"window_s\":1,\"limit\":10},"
		 "{\"name\":\"per_minute\",\"window_s\":60,\"limit\":100}]}", tier);
	itest_call(&r, "POST", "/v1/tiers", itest_admin_token(), body);
	EXPECT_STATUS(&r, 201);
	itest_resp_fini(&r);
	snprintf(body, sizeof body, "{\"name\":\"%s\",\"limits\":["
		 "{\"name\":\"per_hour\",\"window_s\":3600,\"limit\":7}]}", tier2);
	itest_call(&r, "POST", "/v1/tiers", itest_admin_token(), body);
	EXPECT_STATUS(&r, 201);
	itest_resp_fini(&r);

	owner_id(owner, sizeof owner, "merge");
	if (itest_key_create(&k, owner, tier,
			     "\"limits\":[{\"name\":\"per_minute\",\"window_s\":60,\"limit\":500},"
			     "{\"name\":\"per_day\",\"window_s\":86400,\"limit\":9999}]", &r) != 0) {
		itest_resp_fini(&r);
		return;
	}
	EXPECT(itest_len(itest_get(r.json, "limits")) == 3, "want 3 limits: %s",
	       r.body);
	expect_limit(&r, "per_second", 1, 10);
	expect_limit(&r, "per_minute", 60, 500);
	expect_limit(&r, "per_day", 86400, 9999);
	itest_resp_fini(&r);

	/* A tier change shows in the key's effective limits. */
	snprintf(path, sizeof path, "/v1/tiers/%s", tier);
	itest_call(&r, "PATCH", path, itest_admin_token(),
		   "{\"limits\":[{\"name\":\"per_second\",\"window_s\":1,\"limit\":20},"
		   "{\"name\":\"per_minute\",\"window_s\":60,\"limit\":100}]}");
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/keys/%s", k.id);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT(itest_len(itest_get(r.json, "limits")) == 3, "want 3 limits: %s",
	       r.body);
	expect_limit(&r, "per_second", 1, 20);
	expect_limit(&r, "per_minute", 60, 500);
	itest_resp_fini(&r);

	/* Moving to another tier keeps the key's own overrides. */
	snprintf(body, sizeof body, "{\"tier\":\"%s\"}", tier2);
	itest_call(&r, "PATCH", path, itest_admin_token(), body);
	EXPECT_STATUS(&r, 200);
	EXPECT_STR(&r, r.json, "tier", tier2);
	EXPECT(itest_len(itest_get(r.json, "limits")) == 3, "want 3 limits: %s",
	       r.body);
	expect_limit(&r, "per_hour", 3600, 7);
	expect_limit(&r, "per_minute", 60, 500);
	expect_limit(&r, "per_day", 86400, 9999);
	itest_resp_fini(&r);

	/* PATCH limits replaces the override list. */
	itest_call(&r, "PATCH", path, itest_admin_token(), "{\"limits\":[]}");
	EXPECT_STATUS(&r, 200);
	itest_expect_tier_limits(&r, tier2, 0);
	itest_resp_fini(&r);
	itest_call(&r, "PATCH", path, itest_admin_token(),
		   "{\"limits\":[{\"name\":\"per_hour\",\"window_s\":3600,\"limit\":70}]}");
	EXPECT_STATUS(&r, 200);
	EXPECT(itest_len(itest_get(r.json, "limits")) == 1, "want 1 limit: %s",
	       r.body);
	expect_limit(&r, "per_hour", 3600, 70);
	itest_resp_fini(&r);
}

int itest_register_keys(void)
{
	CU_pSuite s = CU_add_suite("keys: create and read", NULL, NULL);

	if (!s ||
	    !CU_add_test(s, "create and read back", test_key_create_and_get) ||
	    !CU_add_test(s, "unknown key id is 404", test_key_not_found) ||
	    !CU_add_test(s, "create validation", test_key_create_invalid) ||
	    !CU_add_test(s, "owner id and name length bounds", test_key_length_bounds) ||
	    !CU_add_test(s, "limits merge with the tier", test_key_limits_merge) ||
	    !CU_add_test(s, "credit refill: set, show, replace, remove", test_key_refill))
		return -1;
	return 0;
}
