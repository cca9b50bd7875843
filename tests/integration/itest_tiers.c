/*
 * itest_tiers.c - tiers: defaults, create, patch, validation.
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "itest_fixture.h"
#include "itest_suites.h"

#define LIMIT_1S "{\"name\":\"per_second\",\"window_s\":1,\"limit\":10}"

/* Checks the members every tier object has. */
static void expect_tier_shape(const struct itest_resp *r, json_object *t)
{
	json_object *q = itest_get(t, "quota"), *p = itest_get(t, "price");

	EXPECT(itest_str(t, "name") != NULL, "%s: tier without name", r->what);
	EXPECT(json_object_is_type(itest_get(t, "limits"), json_type_array),
	       "%s: limits not an array", r->what);
	EXPECT(itest_is_null(t, "quota") || json_object_is_type(q, json_type_object),
	       "%s: quota neither null nor object", r->what);
	EXPECT(itest_is_null(t, "price") || json_object_is_type(p, json_type_object),
	       "%s: price neither null nor object", r->what);
	EXPECT(itest_is_time(itest_str(t, "created_at")) && itest_is_time(itest_str(t, "updated_at")),
	       "%s: created_at/updated_at: %s", r->what, json_object_to_json_string(t));
}

static void tier_name(char *buf, size_t n, const char *tag)
{
	snprintf(buf, n, "it%s-%s", itest_suffix(), tag);
}

static void expect_tier_absent(const char *name)
{
	struct itest_resp r;
	char path[256];

	snprintf(path, sizeof path, "/v1/tiers/%s", name);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_ERROR(&r, 404, "not_found", NULL);
	itest_resp_fini(&r);
}

static void test_default_tiers(void)
{
	static const char *const names[] = { "free", "pro", "enterprise" };
	json_object *all = NULL;
	size_t i, j, n;

	if (itest_list_all("/v1/tiers", itest_admin_token(), 1000, 20, &all) < 0)
		return;
	n = itest_len(all);
	for (i = 0; i < 3; i++) {
		json_object *listed = NULL;
		struct itest_resp r;
		char path[64];

		for (j = 0; j < n && !listed; j++) {
			const char *s = itest_str(itest_idx(all, j), "name");

			if (s && strcmp(s, names[i]) == 0)
				listed = itest_idx(all, j);
		}
		EXPECT(listed != NULL, "tier %s not listed", names[i]);
		snprintf(path, sizeof path, "/v1/tiers/%s", names[i]);
		itest_call(&r, "GET", path, itest_admin_token(), NULL);
		EXPECT_STATUS(&r, 200);
		EXPECT_STR(&r, r.json, "name", names[i]);
		expect_tier_shape(&r, r.json);
		EXPECT(itest_len(itest_get(r.json, "limits")) > 0,
		       "tier %s has no limits", names[i]);
		EXPECT(!listed || json_object_equal(listed, r.json), "tier %s: list %s vs get %s",
		       names[i], json_object_to_json_string(listed), r.body);
		itest_resp_fini(&r);
	}
	json_object_put(all);
}

static void test_tier_unknown(void)
{
	struct itest_resp r;
	char name[64], path[128];

	tier_name(name, sizeof name, "nosuch");
	expect_tier_absent(name);
	snprintf(path, sizeof path, "/v1/tiers/%s", name);
	itest_call(&r, "PATCH", path, itest_admin_token(), "{\"price\":null}");
	EXPECT_ERROR(&r, 404, "not_found", NULL);
	itest_resp_fini(&r);
}

/* Compares what the server answers for a created tier with what was sent. */
static void expect_limit(const struct itest_resp *r, const char *name, int64_t window,
			 int64_t limit, int64_t precision, const char *endpoint)
{
	json_object *l = itest_find_named(r->json, "limits", name);
	int64_t w = -1, v = -1, p = -1;

	EXPECT(l != NULL, "%s: limit %s missing: %.300s", r->what, name, r->body);
	if (!l)
		return;
	EXPECT(itest_int(l, "window_s", &w) && w == window, "%s: %s.window_s %lld", r->what,
	       name, (long long)w);
	EXPECT(itest_int(l, "limit", &v) && v == limit, "%s: %s.limit %lld", r->what, name,
	       (long long)v);
	if (precision > 0)
		EXPECT(itest_int(l, "precision", &p) && p == precision, "%s: %s.precision %lld",
		       r->what, name, (long long)p);
	else
		EXPECT(!itest_get(l, "precision") || (itest_int(l, "precision", &p) && p == 10),
		       "%s: %s: default precision is not 10", r->what, name);
	if (endpoint)
		EXPECT_STR(r, l, "endpoint", endpoint);
	else
		EXPECT(!itest_str(l, "endpoint"), "%s: %s has an endpoint", r->what, name);
}

static void test_tier_create(void)
{
	struct itest_resp r, g;
	char name[64], body[2048], path[128];
	json_object *want;

	tier_name(name, sizeof name, "full");
	snprintf(body, sizeof body,
		 "{\"name\":\"%s\",\"limits\":["
		 "{\"name\":\"per_second\",\"window_s\":1,\"limit\":50},"
		 "{\"name\":\"per_minute\",\"window_s\":60,\"limit\":2000,\"precision\":60},"
		 "{\"name\":\"per_month\",\"window_s\":2678400,\"limit\":1000000000,\"precision\":1},"
		 "{\"name\":\"search\",\"window_s\":1,\"limit\":1,\"endpoint\":\"POST /v1/search*\"}],"
		 "\"quota\":{\"period\":\"month\",\"included\":1000000,\"overage\":\"bill\"},"
		 "\"price\":{\"currency\":\"USD\",\"base_micros\":49000000,"
		 "\"overage_per_1000_micros\":500000}}", name);
	itest_call(&r, "POST", "/v1/tiers", itest_admin_token(), body);
	EXPECT_STATUS(&r, 201);
	EXPECT_STR(&r, r.json, "name", name);
	expect_tier_shape(&r, r.json);
	EXPECT(itest_len(itest_get(r.json, "limits")) == 4, "want 4 limits: %s",
	       r.body);
	expect_limit(&r, "per_second", 1, 50, 0, NULL);
	expect_limit(&r, "per_minute", 60, 2000, 60, NULL);
	expect_limit(&r, "per_month", 2678400, 1000000000, 1, NULL);
	expect_limit(&r, "search", 1, 1, 0, "POST /v1/search*");
	want = json_tokener_parse("{\"period\":\"month\",\"included\":1000000,\"overage\":\"bill\"}");
	EXPECT(json_object_equal(want, itest_get(r.json, "quota")), "quota: %s", r.body);
	json_object_put(want);
	want = json_tokener_parse("{\"currency\":\"USD\",\"base_micros\":49000000,"
				  "\"overage_per_1000_micros\":500000}");
	EXPECT(json_object_equal(want, itest_get(r.json, "price")), "price: %s", r.body);
	json_object_put(want);

	snprintf(path, sizeof path, "/v1/tiers/%s", name);
	itest_call(&g, "GET", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&g, 200);
	EXPECT(r.json && json_object_equal(r.json, g.json), "GET differs from create: %s vs %s",
	       g.body, r.body);
	itest_resp_fini(&g);
	itest_resp_fini(&r);

	/* Same name again: conflict, and the first tier is unchanged. */
	snprintf(body, sizeof body, "{\"name\":\"%s\",\"limits\":[" LIMIT_1S "]}", name);
	itest_call(&r, "POST", "/v1/tiers", itest_admin_token(), body);
	EXPECT_ERROR(&r, 409, "conflict", NULL);
	itest_resp_fini(&r);
	itest_call(&g, "GET", path, itest_admin_token(), NULL);
	EXPECT(itest_len(itest_get(g.json, "limits")) == 4,
	       "duplicate create changed the tier: %s", g.body);
	itest_resp_fini(&g);

	/* Without quota and price. */
	tier_name(name, sizeof name, "bare");
	snprintf(body, sizeof body, "{\"name\":\"%s\",\"limits\":[" LIMIT_1S "]}", name);
	itest_call(&r, "POST", "/v1/tiers", itest_admin_token(), body);
	EXPECT_STATUS(&r, 201);
	expect_tier_shape(&r, r.json);
	EXPECT_STR(&r, r.json, "quota", NULL);
	EXPECT(itest_is_null(r.json, "price") || json_object_is_type(itest_get(r.json, "price"), json_type_object),
	       "price: %s", r.body);
	expect_limit(&r, "per_second", 1, 10, 0, NULL);
	itest_resp_fini(&r);
}

/* 16 limits is the most a tier may carry. */
static void test_tier_sixteen_limits(void)
{
	struct itest_resp r;
	char name[64], body[4096];
	size_t o;
	int i;

	tier_name(name, sizeof name, "sixteen");
	o = (size_t)snprintf(body, sizeof body, "{\"name\":\"%s\",\"limits\":[", name);
	for (i = 0; i < 16; i++)
		o += (size_t)snprintf(body + o, sizeof body - o,
				      "%s{\"name\":\"l%d\",\"window_s\":%d,\"limit\":%d}",
				      i ? "," : "", i, i + 1, 100 + i);
	snprintf(body + o, sizeof body - o, "]}");
	itest_call(&r, "POST", "/v1/tiers", itest_admin_token(), body);
	EXPECT_STATUS(&r, 201);
	EXPECT(itest_len(itest_get(r.json, "limits")) == 16, "want 16 limits: %.300s",
	       r.body);
	expect_limit(&r, "l15", 16, 115, 0, NULL);
	itest_resp_fini(&r);
}

static void test_tier_patch(void)
{
	struct itest_resp r, g;
	char name[64], body[1024], path[128], created[32] = "", updated[32] = "";
	json_object *before, *want;

	tier_name(name, sizeof name, "patch");
	snprintf(body, sizeof body,
		 "{\"name\":\"%s\",\"limits\":[" LIMIT_1S "],"
		 "\"quota\":{\"period\":\"month\",\"included\":10,\"overage\":\"block\"}}", name);
	itest_call(&r, "POST", "/v1/tiers", itest_admin_token(), body);
	EXPECT_STATUS(&r, 201);
	snprintf(created, sizeof created, "%s", itest_str(r.json, "created_at") ? itest_str(r.json, "created_at") : "");
	snprintf(updated, sizeof updated, "%s", itest_str(r.json, "updated_at") ? itest_str(r.json, "updated_at") : "");
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/tiers/%s", name);
	itest_sleep_ms(20);

	itest_call(&r, "PATCH", path, itest_admin_token(),
		   "{\"limits\":[{\"name\":\"per_minute\",\"window_s\":60,\"limit\":600}],"
		   "\"quota\":{\"period\":\"month\",\"included\":5000,\"overage\":\"bill\"},"
		   "\"price\":{\"currency\":\"EUR\",\"base_micros\":1000000,"
		   "\"overage_per_1000_micros\":25}}");
	EXPECT_STATUS(&r, 200);
	EXPECT_STR(&r, r.json, "name", name);
	expect_tier_shape(&r, r.json);
	EXPECT(itest_len(itest_get(r.json, "limits")) == 1, "limits not replaced: %s",
	       r.body);
	expect_limit(&r, "per_minute", 60, 600, 0, NULL);
	want = json_tokener_parse("{\"period\":\"month\",\"included\":5000,\"overage\":\"bill\"}");
	EXPECT(json_object_equal(want, itest_get(r.json, "quota")), "quota: %s", r.body);
	json_object_put(want);
	want = json_tokener_parse("{\"currency\":\"EUR\",\"base_micros\":1000000,"
				  "\"overage_per_1000_micros\":25}");
	EXPECT(json_object_equal(want, itest_get(r.json, "price")), "price: %s", r.body);
	json_object_put(want);
	EXPECT_STR(&r, r.json, "created_at", created);
	EXPECT(itest_str(r.json, "updated_at") && strcmp(itest_str(r.json, "updated_at"), updated) > 0,
	       "updated_at did not advance from %s: %s", updated, r.body);

	itest_call(&g, "GET", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&g, 200);
	EXPECT(r.json && json_object_equal(r.json, g.json), "GET %s differs from PATCH %s", g.body,
	       r.body);
	itest_resp_fini(&g);
	itest_resp_fini(&r);

	/* Only the members sent change. */
	itest_call(&r, "PATCH", path, itest_admin_token(), "{\"quota\":null}");
	EXPECT_STATUS(&r, 200);
	EXPECT_STR(&r, r.json, "quota", NULL);
	expect_limit(&r, "per_minute", 60, 600, 0, NULL);
	EXPECT(itest_get(r.json, "price.base_micros") != NULL, "price lost: %s", r.body);
	before = json_object_get(r.json);
	itest_resp_fini(&r);

	/* A refused PATCH changes nothing. */
	itest_call(&r, "PATCH", path, itest_admin_token(),
		   "{\"limits\":[{\"name\":\"per_minute\",\"window_s\":0,\"limit\":600}]}");
	EXPECT_ERROR(&r, 400, "invalid_argument", "limits[0].window_s");
	itest_resp_fini(&r);
	itest_call(&r, "PATCH", path, itest_admin_token(), "{\"limitz\":[]}");
	EXPECT_ERROR(&r, 400, "unknown_field", "limitz");
	itest_resp_fini(&r);
	itest_call(&r, "PATCH", path, itest_admin_token(), "{\"price\":{\"currency\":\"USD\","
		   "\"base_micros\":-1,\"overage_per_1000_micros\":0}}");
	EXPECT_ERROR(&r, 400, "invalid_argument", "price.base_micros");
	itest_resp_fini(&r);
	itest_call(&g, "GET", path, itest_admin_token(), NULL);
	EXPECT(json_object_equal(before, g.json), "refused PATCH changed the tier: %s", g.body);
	itest_resp_fini(&g);
	json_object_put(before);
}

struct bad_tier {
	const char *name;	/* NULL: a fresh valid name */
	const char *rest;	/* members after the name */
	const char *code, *field;
};

static void test_tier_validation(void)
{
	static char long_name[40], long_limit[128], seventeen[2048];
	static const struct bad_tier cases[] = {
		{ NULL, "\"limits\":[{\"name\":\"a\",\"window_s\":0,\"limit\":1}]",
		  "invalid_argument", "limits[0].window_s" },
		{ NULL, "\"limits\":[{\"name\":\"a\",\"window_s\":2678401,\"limit\":1}]",
		  "invalid_argument", "limits[0].window_s" },
		{ NULL, "\"limits\":[{\"name\":\"a\",\"window_s\":\"1\",\"limit\":1}]",
		  "invalid_argument", "limits[0].window_s" },
		{ NULL, "\"limits\":[{\"name\":\"a\",\"window_s\":1.5,\"limit\":1}]",
		  "invalid_argument", "limits[0].window_s" },
		{ NULL, "\"limits\":[{\"name\":\"a\",\"window_s\":1,\"limit\":0}]",
		  "invalid_argument", "limits[0].limit" },
		{ NULL, "\"limits\":[{\"name\":\"a\",\"window_s\":1,\"limit\":1000000001}]",
		  "invalid_argument", "limits[0].limit" },
		{ NULL, "\"limits\":[{\"name\":\"a\",\"window_s\":1,\"limit\":-3}]",
		  "invalid_argument", "limits[0].limit" },
		{ NULL, "\"limits\":[" LIMIT_1S ",{\"name\":\"per_second\",\"window_s\":60,\"limit\":5}]",
		  "invalid_argument", "limits[1].name" },
		{ NULL, "\"limits\":[{\"name\":\"Per Second\",\"window_s\":1,\"limit\":1}]",
		  "invalid_argument", "limits[0].name" },
		{ NULL, long_limit, "invalid_argument", "limits[0].name" },
		{ NULL, "\"limits\":[{\"name\":\"a\",\"window_s\":1,\"limit\":1,\"precision\":0}]",
		  "invalid_argument", "limits[0].precision" },
		{ NULL, "\"limits\":[{\"name\":\"a\",\"window_s\":1,\"limit\":1,\"precision\":61}]",
		  "invalid_argument", "limits[0].precision" },
		{ NULL, "\"limits\":[{\"name\":\"a\",\"limit\":1}]", "missing_field",
		  "limits[0].window_s" },
		{ NULL, "\"limits\":[{\"name\":\"a\",\"window_s\":1,\"limit\":1,\"burst\":2}]",
		  "unknown_field", "limits[0].burst" },
		{ NULL, seventeen, "invalid_argument", "limits" },
		{ NULL, "\"limits\":\"per_second\"", "invalid_argument", "limits" },
		{ NULL, "\"limits\":[" LIMIT_1S "],\"quota\":{\"period\":\"month\",\"included\":10,"
		  "\"overage\":\"maybe\"}", "invalid_argument", "quota.overage" },
		{ NULL, "\"limits\":[" LIMIT_1S "],\"quota\":{\"period\":\"month\",\"included\":-1,"
		  "\"overage\":\"bill\"}", "invalid_argument", "quota.included" },
		{ NULL, "\"limits\":[" LIMIT_1S "],\"price\":{\"currency\":\"USD\",\"base_micros\":-1,"
		  "\"overage_per_1000_micros\":0}", "invalid_argument", "price.base_micros" },
		{ NULL, "\"limits\":[" LIMIT_1S "],\"price\":{\"currency\":\"USD\",\"base_micros\":0,"
		  "\"overage_per_1000_micros\":-1}", "invalid_argument",
		  "price.overage_per_1000_micros" },
		{ NULL, "\"limits\":[" LIMIT_1S "],\"price\":{\"currency\":\"USD\",\"base_micros\":0.5,"
		  "\"overage_per_1000_micros\":0}", "invalid_argument", "price.base_micros" },
		{ NULL, "\"limits\":[" LIMIT_1S "],\"colour\":\"red\"", "unknown_field", "colour" },
		{ "Bad Name", "\"limits\":[" LIMIT_1S "]", "invalid_argument", "name" },
		{ long_name, "\"limits\":[" LIMIT_1S "]", "invalid_argument", "name" },
		{ "", "\"limits\":[" LIMIT_1S "]", "invalid_argument", "name" },
		{ "caf\xC3\xA9", "\"limits\":[" LIMIT_1S "]", "invalid_argument", "name" },
	};
	size_t i, o;

	memset(long_name, 'a', 33);
	long_name[33] = '\0';
	snprintf(long_limit, sizeof long_limit,
		 "\"limits\":[{\"name\":\"%.33s\",\"window_s\":1,\"limit\":1}]",
		 "abcdefghijklmnopqrstuvwxyz0123456789");
	o = (size_t)snprintf(seventeen, sizeof seventeen, "\"limits\":[");
	for (i = 0; i < 17; i++)
		o += (size_t)snprintf(seventeen + o, sizeof seventeen - o,
				      "%s{\"name\":\"l%zu\",\"window_s\":%zu,\"limit\":10}",
				      i ? "," : "", i, i + 1);
	snprintf(seventeen + o, sizeof seventeen - o, "]");

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct itest_resp r;
		char name[64], tag[16], body[4096];

		snprintf(tag, sizeof tag, "bad%zu", i);
		tier_name(name, sizeof name, tag);
		snprintf(body, sizeof body, "{\"name\":%s,%s}",
			 itest_q(cases[i].name ? cases[i].name : name), cases[i].rest);
		itest_call(&r, "POST", "/v1/tiers", itest_admin_token(), body);
		EXPECT_ERROR(&r, 400, cases[i].code, cases[i].field);
		itest_resp_fini(&r);
		if (!cases[i].name)
			expect_tier_absent(name);
	}

	/* A missing name. */
	{
		struct itest_resp r;

		itest_call(&r, "POST", "/v1/tiers", itest_admin_token(),
			   "{\"limits\":[" LIMIT_1S "]}");
		EXPECT_ERROR(&r, 400, "missing_field", "name");
		itest_resp_fini(&r);
	}
}

int itest_register_tiers(void)
{
	CU_pSuite s = CU_add_suite("tiers", NULL, NULL);

	if (!s ||
	    !CU_add_test(s, "free, pro and enterprise exist", test_default_tiers) ||
	    !CU_add_test(s, "unknown tier is 404", test_tier_unknown) ||
	    !CU_add_test(s, "create, read back, duplicate", test_tier_create) ||
	    !CU_add_test(s, "sixteen limits accepted", test_tier_sixteen_limits) ||
	    !CU_add_test(s, "patch limits, quota, price", test_tier_patch) ||
	    !CU_add_test(s, "create validation", test_tier_validation))
		return -1;
	return 0;
}
