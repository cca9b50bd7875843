/*
 * itest_input.c - hostile and malformed input: every refusal is the JSON
 * error envelope with the right status, and changes nothing.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "itest_fixture.h"
#include "itest_suites.h"

static void owner_id(char *buf, size_t n, const char *tag)
{
	snprintf(buf, n, "acct_it%s_in_%s", itest_suffix(), tag);
}

/* Number of keys the owner has (-1 when the list fails). */
static long owner_key_count(const char *owner)
{
	char path[2048], esc[1536];
	json_object *all = NULL;
	long n = -1;

	snprintf(path, sizeof path, "/v1/keys?owner_id=%s", itest_escape(owner, esc, sizeof esc));
	if (itest_list_all(path, itest_admin_token(), 1000, 5, &all) >= 0)
		n = (long)itest_len(all);
	json_object_put(all);
	return n;
}

static void post_keys_expect(const char *body, size_t len, long status, const char *code,
			     const char *field, const char *what)
{
	struct itest_resp r;
	struct itest_req q = { .method = "POST", .path = "/v1/keys",
			       .token = itest_admin_token(), .body = body, .body_len = len };

	itest_send(&r, &q);
	EXPECT_ERROR_CASE(&r, status, code, field, what);
	itest_resp_fini(&r);
}

static void test_malformed_json(void)
{
	static const char *const syntax[] = {
		"{\"owner_id\":\"%s\",",
		"{\"owner_id\":\"%s\"",
		"{owner_id:\"%s\",\"tier\":\"free\"}",
		"{\"owner_id\":'%s',\"tier\":\"free\"}",
		"{\"owner_id\":\"%s\",\"tier\":\"free\",}",
		"{\"owner_id\":\"%s\",\"tier\":\"free\"} x",
		"{\"owner_id\":\"%s\",\"tier\":\"free\"}{}",
		"/* hi */{\"owner_id\":\"%s\",\"tier\":\"free\"}",
		"{\"owner_id\":\"%s\",\"tier\":\"free\",\"remaining\":NaN}",
		"{\"owner_id\":\"%s\",\"tier\":\"free\",\"remaining\":01}",
		"{\"owner_id\":\"%s\",\"tier\":\"free\",\"remaining\":1.}",
		"{\"owner_id\":\"%s\",\"tier\":\"free\",\"name\":\"a\001b\"}",
		"{\"owner_id\":\"%s\",\"tier\":\"free\",\"name\":\"\\x41\"}",
		"{\"owner_id\":\"%s\",\"tier\":\"free\",\"name\":\"\\u12\"}",
		"{\"owner_id\":\"%s\",\"tier\":\"free\",\"meta\":{\"a\" 1}}",
		"{\"owner_id\":\"%s\",\"tier\":\"free\",\"remaining\":tru}",
		"%.0s ",
	};
	static const char *const shape[] = { "[{\"owner_id\":\"%s\"}]", "42%.0s", "\"%s\"",
					     "null%.0s", "true%.0s", "[]%.0s" };
	char owner[128], body[1024];
	size_t i;

	owner_id(owner, sizeof owner, "json");
	for (i = 0; i < sizeof syntax / sizeof syntax[0]; i++) {
		snprintf(body, sizeof body, syntax[i], owner);
		post_keys_expect(body, 0, 400, "invalid_json", NULL, body);
	}
	/* Zero-length bodies need an explicit length. */
	post_keys_expect("", 0, 400, "invalid_json", NULL, "empty body");
	for (i = 0; i < sizeof shape / sizeof shape[0]; i++) {
		snprintf(body, sizeof body, shape[i], owner);
		post_keys_expect(body, 0, 400, "invalid_argument", NULL, body);
	}
	EXPECT(owner_key_count(owner) == 0, "malformed bodies created keys for %s", owner);
}

static void test_unknown_and_wrong_types(void)
{
	static const struct {
		const char *rest, *code, *field;
	} cases[] = {
		{ "\"tier\":\"free\",\"nmae\":\"x\"", "unknown_field", "nmae" },
		{ "\"tier\":\"free\",\"limits\":[{\"name\":\"a\",\"window_s\":1,\"limit\":1,"
		  "\"burst\":1}]", "unknown_field", "limits[0].burst" },
		{ "\"tier\":\"free\",\"name\":true", "invalid_argument", "name" },
		{ "\"tier\":5", "invalid_argument", "tier" },
		{ "\"tier\":\"free\",\"meta\":\"x\"", "invalid_argument", "meta" },
		{ "\"tier\":\"free\",\"limits\":{}", "invalid_argument", "limits" },
		{ "\"tier\":\"free\",\"limits\":[5]", "invalid_argument", "limits[0]" },
		{ "\"tier\":\"free\",\"remaining\":\"5\"", "invalid_argument", "remaining" },
		{ "\"tier\":\"free\",\"remaining\":2.5", "invalid_argument", "remaining" },
		{ "\"tier\":\"free\",\"expires_at\":5", "invalid_argument", "expires_at" },
		{ "\"tier\":\"free\",\"expires_at\":\"2030-01-01\"", "invalid_argument", "expires_at" },
		{ "\"tier\":\"free\",\"prefix\":1", "invalid_argument", "prefix" },
	};
	char owner[128], body[1024];
	size_t i;

	owner_id(owner, sizeof owner, "types");
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(body, sizeof body, "{\"owner_id\":%s,%s}", itest_q(owner), cases[i].rest);
		post_keys_expect(body, 0, 400, cases[i].code, cases[i].field, body);
	}
	EXPECT(owner_key_count(owner) == 0, "refused bodies created keys for %s", owner);
}

/* Builds {"owner_id":"<owner>","tier":"free"<spaces>} of exactly `size` bytes. */
static char *padded_body(const char *owner, size_t size)
{
	char head[512];
	size_t hl;
	char *b;

	hl = (size_t)snprintf(head, sizeof head, "{\"owner_id\":%s,\"tier\":\"free\"", itest_q(owner));
	b = malloc(size + 1);
	if (!b || size < hl + 1) {
		free(b);
		return NULL;
	}
	memcpy(b, head, hl);
	memset(b + hl, ' ', size - hl - 1);
	b[size - 1] = '}';
	b[size] = '\0';
	return b;
}

static void test_body_size(void)
{
	static const size_t sizes[] = { 65536, 65537, 1024 * 1024 + 1 };
	char owner[128];
	size_t i;

	owner_id(owner, sizeof owner, "size");
	for (i = 0; i < 3; i++) {
		struct itest_resp r;
		char *b = padded_body(owner, sizes[i]);
		struct itest_req q = { .method = "POST", .path = "/v1/keys",
				       .token = itest_admin_token(), .body = b, .body_len = sizes[i] };

		if (!b)
			continue;
		itest_send(&r, &q);
		if (i == 0)
			EXPECT(r.status == 201, "a body of exactly 64 KiB: %ld %.300s", r.status, r.body);
		else
			EXPECT_ERROR(&r, 413, "payload_too_large", NULL);
		itest_resp_fini(&r);
		free(b);
	}
	EXPECT(owner_key_count(owner) == 1, "want exactly the one 64 KiB key for %s", owner);
}

static void test_content_type(void)
{
	static const char *const refused[] = { "", "text/plain", "application/x-www-form-urlencoded",
					       "application/jsonx", "text/json" };
	char owner[128], body[512], path[256];
	struct itest_key k;
	size_t i;

	owner_id(owner, sizeof owner, "ctype");
	snprintf(body, sizeof body, "{\"owner_id\":%s,\"tier\":\"free\"}", itest_q(owner));
	for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		struct itest_resp r;
		struct itest_req q = { .method = "POST", .path = "/v1/keys",
				       .token = itest_admin_token(), .body = body,
				       .content_type = refused[i] };

		itest_send(&r, &q);
		EXPECT_ERROR_CASE(&r, 415, "unsupported_media_type", NULL, refused[i]);
		itest_resp_fini(&r);
	}
	{
		struct itest_resp r;
		struct itest_req q = { .method = "POST", .path = "/v1/keys",
				       .token = itest_admin_token(), .body = body,
				       .content_type = "application/json; charset=utf-8" };

		itest_send(&r, &q);
		EXPECT_STATUS(&r, 201);
		itest_resp_fini(&r);
	}
	EXPECT(owner_key_count(owner) == 1, "want exactly one key for %s", owner);

	if (itest_key_create(&k, owner, "free", NULL, NULL) != 0)
		return;
	snprintf(path, sizeof path, "/v1/keys/%s", k.id);
	{
		struct itest_resp r;
		struct itest_req q = { .method = "PATCH", .path = path, .token = itest_admin_token(),
				       .body = "{\"name\":\"ct\"}", .content_type = "text/plain" };

		itest_send(&r, &q);
		EXPECT_ERROR(&r, 415, "unsupported_media_type", NULL);
		itest_resp_fini(&r);
		itest_call(&r, "GET", path, itest_admin_token(), NULL);
		EXPECT(itest_str(r.json, "name") && strcmp(itest_str(r.json, "name"), "ct") != 0,
		       "a 415 PATCH renamed the key");
		itest_resp_fini(&r);
	}
	{
		struct itest_resp r;
		char cbody[512];
		struct itest_req q = { .method = "POST", .path = "/v1/check",
				       .token = itest_admin_token(), .body = cbody,
				       .content_type = "text/plain" };

		snprintf(cbody, sizeof cbody, "{\"key\":%s}", itest_q(k.key));
		itest_send(&r, &q);
		EXPECT_ERROR(&r, 415, "unsupported_media_type", NULL);
		itest_resp_fini(&r);
	}
}

static void test_routes(void)
{
	static const struct {
		const char *method, *path;
		long status;
		const char *code;
	} cases[] = {
		{ "GET", "/v1/nope", 404, "not_found" },
		{ "GET", "/v1/keys/abc/def/ghi", 404, "not_found" },
		{ "POST", "/v1/nope", 404, "not_found" },
		{ "PUT", "/v1/keys", 405, "method_not_allowed" },
		{ "DELETE", "/v1/tiers", 405, "method_not_allowed" },
		{ "DELETE", "/v1/tiers/free", 405, "method_not_allowed" },
		{ "GET", "/v1/check", 405, "method_not_allowed" },
		{ "PATCH", "/v1/admin/whoami", 405, "method_not_allowed" },
		{ "POST", "/v1/audit", 405, "method_not_allowed" },
		{ "PUT", "/v1/admin/tokens", 405, "method_not_allowed" },
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct itest_resp r;
		int has_body = strcmp(cases[i].method, "GET") != 0 && strcmp(cases[i].method, "DELETE") != 0;

		itest_call(&r, cases[i].method, cases[i].path, itest_admin_token(), has_body ? "{}" : NULL);
		EXPECT_ERROR(&r, cases[i].status, cases[i].code, NULL);
		if (cases[i].status == 405) {
			char allow[256];
			const char *a = itest_header(&r, "Allow", allow, sizeof allow);

			/* HTTP requires Allow on 405, listing what the path takes. */
			EXPECT(a && *a && !strstr(a, cases[i].method), "%s: Allow is \"%s\"", r.what,
			       a ? a : "(none)");
		}
		itest_resp_fini(&r);
	}
	/* The free tier survived the DELETE. */
	{
		struct itest_resp r;

		itest_call(&r, "GET", "/v1/tiers/free", itest_admin_token(), NULL);
		EXPECT_STATUS(&r, 200);
		itest_resp_fini(&r);
	}
}

static void test_list_limits(void)
{
	static const char *const lists[] = { "/v1/keys", "/v1/tiers", "/v1/admin/tokens", "/v1/audit" };
	static const char *const bad[] = { "0", "1001", "-1", "abc", "", "10x", "1e2" };
	size_t i, j;

	for (i = 0; i < sizeof lists / sizeof lists[0]; i++) {
		struct itest_resp r;
		char path[128];

		for (j = 0; j < sizeof bad / sizeof bad[0]; j++) {
			snprintf(path, sizeof path, "%s?limit=%s", lists[i], bad[j]);
			itest_call(&r, "GET", path, itest_admin_token(), NULL);
			EXPECT_ERROR(&r, 400, "invalid_argument", "limit");
			itest_resp_fini(&r);
		}
		snprintf(path, sizeof path, "%s?limit=1", lists[i]);
		itest_call(&r, "GET", path, itest_admin_token(), NULL);
		EXPECT_STATUS(&r, 200);
		EXPECT(itest_len(itest_get(r.json, "data")) <= 1, "limit=1: %s", r.body);
		itest_resp_fini(&r);
		snprintf(path, sizeof path, "%s?limit=1000", lists[i]);
		itest_call(&r, "GET", path, itest_admin_token(), NULL);
		EXPECT_STATUS(&r, 200);
		itest_resp_fini(&r);
		snprintf(path, sizeof path, "%s?cursor=%%21%%21notacursor", lists[i]);
		itest_call(&r, "GET", path, itest_admin_token(), NULL);
		EXPECT_ERROR(&r, 400, "invalid_argument", "cursor");
		itest_resp_fini(&r);
	}
}

static void test_bad_strings(void)
{
	static const char *const bad[] = {
		"\xff", "a\xc0\xafz", "\xed\xa0\x80", "ab\xe5\xad", "\xf4\x90\x80\x80", "\x80",
	};
	static const char *const where[] = { "name", "owner_id", "meta" };
	char owner[128], body[1024];
	size_t i, j;

	owner_id(owner, sizeof owner, "utf8");
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		for (j = 0; j < 3; j++) {
			if (j == 0)
				snprintf(body, sizeof body, "{\"owner_id\":%s,\"tier\":\"free\",\"name\":\"%s\"}",
					 itest_q(owner), bad[i]);
			else if (j == 1)
				snprintf(body, sizeof body, "{\"owner_id\":\"%s%s\",\"tier\":\"free\"}",
					 owner, bad[i]);
			else
				snprintf(body, sizeof body,
					 "{\"owner_id\":%s,\"tier\":\"free\",\"meta\":{\"v\":\"%s\"}}",
					 itest_q(owner), bad[i]);
			post_keys_expect(body, 0, 400, "invalid_argument", NULL, where[j]);
		}
	}
	/* NUL, escaped, in each kind of string. */
	snprintf(body, sizeof body, "{\"owner_id\":%s,\"tier\":\"free\",\"name\":\"a\\u0000b\"}",
		 itest_q(owner));
	post_keys_expect(body, 0, 400, "invalid_argument", NULL, "NUL in name");
	snprintf(body, sizeof body, "{\"owner_id\":\"%s\\u0000\",\"tier\":\"free\"}", owner);
	post_keys_expect(body, 0, 400, "invalid_argument", NULL, "NUL in owner_id");
	snprintf(body, sizeof body, "{\"owner_id\":%s,\"tier\":\"free\",\"meta\":{\"v\":\"\\u0000\"}}",
		 itest_q(owner));
	post_keys_expect(body, 0, 400, "invalid_argument", NULL, "NUL in meta");
	/* A lone surrogate escape is not a character. */
	snprintf(body, sizeof body, "{\"owner_id\":%s,\"tier\":\"free\",\"name\":\"\\ud800\"}",
		 itest_q(owner));
	{
		struct itest_resp r;

		itest_call(&r, "POST", "/v1/keys", itest_admin_token(), body);
		EXPECT(r.status == 400 && (itest_str(r.json, "error.code") &&
		       (strcmp(itest_str(r.json, "error.code"), "invalid_argument") == 0 ||
			strcmp(itest_str(r.json, "error.code"), "invalid_json") == 0)),
		       "lone surrogate: %ld %s", r.status, r.body);
		itest_resp_fini(&r);
	}
	EXPECT(owner_key_count(owner) == 0, "bad strings created keys for %s", owner);
}

static void test_deep_nesting(void)
{
	char owner[128], *body;
	size_t i, o, depth = 1000;

	owner_id(owner, sizeof owner, "deep");
	body = malloc(depth * 8 + 256);
	if (!body)
		return;
	/* Arrays in meta. */
	o = (size_t)sprintf(body, "{\"owner_id\":%s,\"tier\":\"free\",\"meta\":{\"a\":", itest_q(owner));
	for (i = 0; i < depth; i++)
		body[o++] = '[';
	for (i = 0; i < depth; i++)
		body[o++] = ']';
	strcpy(body + o, "}}");
	post_keys_expect(body, 0, 400, "invalid_json", NULL, "1000 nested arrays");
	/* Objects in meta. */
	o = (size_t)sprintf(body, "{\"owner_id\":%s,\"tier\":\"free\",\"meta\":", itest_q(owner));
	for (i = 0; i < depth; i++)
		o += (size_t)sprintf(body + o, "{\"a\":");
	body[o++] = '1';
	for (i = 0; i < depth; i++)
		body[o++] = '}';
	strcpy(body + o, "}");
	post_keys_expect(body, 0, 400, "invalid_json", NULL, "1000 nested objects");
	/* At the top level. */
	for (o = 0; o < depth; o++)
		body[o] = '[';
	for (i = 0; i < depth; i++)
		body[o++] = ']';
	body[o] = '\0';
	post_keys_expect(body, 0, 400, "invalid_json", NULL, "1000 nested top-level arrays");
	free(body);

	/* Shallow nesting is fine. */
	{
		struct itest_key k;

		(void)itest_key_create(&k, owner, "free", "\"meta\":{\"a\":{\"b\":[1,[2,{\"c\":null}]]}}",
				       NULL);
	}
	EXPECT(owner_key_count(owner) == 1, "want exactly the shallow key for %s", owner);
}

/* Strings that break naive SQL, LIKE patterns, format strings or encoders. */
static const char *const nasty[] = {
	"'; DROP TABLE keys; --", "\" OR 1=1", "\\", "\\\\'", "%_", "$1", "%s%n%x",
	"\xF0\x9F\x98\x80\xF0\x9F\x94\x91", "\xE6\xBC\xA2\xE5\xAD\x97\xE3\x83\x86\xE3\x82\xB9\xE3\x83\x88",
	"caf\xC3\xA9 na\xC3\xAFve", "<script>alert(1)</script>", "\xE2\x80\xAErtl",
};

static void test_roundtrip(void)
{
	char decoy[256];
	struct itest_key d;
	size_t i;

	/* "ab" matches the LIKE pattern "%_": an owner filter must not. */
	snprintf(decoy, sizeof decoy, "itq%s-ab", itest_suffix());
	(void)itest_key_create(&d, decoy, "free", NULL, NULL);

	for (i = 0; i < sizeof nasty / sizeof nasty[0]; i++) {
		struct itest_resp r;
		struct itest_key k;
		char owner[256], extra[2048], path[512], esc[1024];
		json_object *want;
		snprintf(owner, sizeof owner, "itq%s-%s", itest_suffix(), nasty[i]);
		snprintf(extra, sizeof extra, "\"meta\":{\"v\":%s,%s:\"k\"},\"prefix\":\"q\"",
			 itest_q(nasty[i]), itest_q(nasty[i]));
		if (itest_key_create(&k, owner, "free", extra, &r) != 0) {
			itest_resp_fini(&r);
			continue;
		}
		itest_resp_fini(&r);
		/* Rename to the string itself (the create helper picks its own name). */
		snprintf(path, sizeof path, "/v1/keys/%s", k.id);
		snprintf(extra, sizeof extra, "{\"name\":%s}", itest_q(nasty[i]));
		itest_call(&r, "PATCH", path, itest_admin_token(), extra);
		EXPECT_STATUS(&r, 200);
		EXPECT_STR(&r, r.json, "name", nasty[i]);
		itest_resp_fini(&r);

		itest_call(&r, "GET", path, itest_admin_token(), NULL);
		EXPECT_STATUS(&r, 200);
		EXPECT_STR(&r, r.json, "owner_id", owner);
		EXPECT_STR(&r, r.json, "name", nasty[i]);
		want = json_object_new_object();
		json_object_object_add(want, "v", json_object_new_string(nasty[i]));
		json_object_object_add(want, nasty[i], json_object_new_string("k"));
		EXPECT(json_object_equal(want, itest_get(r.json, "meta")), "meta for \"%s\": %s",
		       nasty[i], r.body);
		json_object_put(want);
		itest_resp_fini(&r);

		snprintf(path, sizeof path, "/v1/keys?owner_id=%s", itest_escape(owner, esc, sizeof esc));
		itest_call(&r, "GET", path, itest_admin_token(), NULL);
		EXPECT_STATUS(&r, 200);
		EXPECT(itest_len(itest_get(r.json, "data")) == 1 &&
		       itest_find_id(r.json, k.id), "owner filter \"%s\": %s", owner, r.body);
		itest_resp_fini(&r);
	}
	/* The decoy and the tables are still there. */
	{
		struct itest_resp r;
		char path[256];

		snprintf(path, sizeof path, "/v1/keys/%s", d.id);
		itest_call(&r, "GET", path, itest_admin_token(), NULL);
		EXPECT_STATUS(&r, 200);
		EXPECT_STR(&r, r.json, "owner_id", decoy);
		itest_resp_fini(&r);
	}
}

/* 1-128 characters of [A-Za-z0-9._:-]. */
static int request_id_valid(const char *s)
{
	size_t n = strlen(s), i;

	if (n < 1 || n > 128)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._:-", s[i]))
			return 0;
	return 1;
}

static void test_request_id(void)
{
	static const struct {
		const char *method, *path;
		int auth;
	} targets[] = {
		{ "GET", "/healthz", 0 },   { "GET", "/v1/admin/whoami", 1 },
		{ "GET", "/v1/admin/whoami", 0 }, { "GET", "/v1/nope", 1 },
		{ "PUT", "/v1/keys", 1 },   { "POST", "/v1/keys", 1 },
	};
	char long_ok[129], too_long[130], very_long[201], got[512], hdr[512], first[512] = "";
	const char *valid[] = { "it.req_1:2-3", long_ok, "A", NULL };
	const char *invalid[] = { too_long, very_long, "has space", "semi;colon", "slash/x",
				  "caf\xC3\xA9", NULL };
	size_t t, i;

	memset(long_ok, 'r', 128);
	long_ok[128] = '\0';
	memset(too_long, 'r', 129);
	too_long[129] = '\0';
	memset(very_long, 'v', 200);
	very_long[200] = '\0';

	for (t = 0; t < sizeof targets / sizeof targets[0]; t++) {
		const char *body = strcmp(targets[t].method, "POST") == 0 ? "{\"bad\":" : NULL;

		for (i = 0; valid[i]; i++) {
			struct itest_resp r;
			const char *h[2] = { hdr, NULL };
			struct itest_req q = { .method = targets[t].method, .path = targets[t].path,
					       .token = targets[t].auth ? itest_admin_token() : NULL,
					       .body = body, .headers = h };

			snprintf(hdr, sizeof hdr, "X-Request-Id: %s", valid[i]);
			itest_send(&r, &q);
			EXPECT(itest_header(&r, "X-Request-Id", got, sizeof got) &&
			       strcmp(got, valid[i]) == 0, "%s (%ld): X-Request-Id %s not echoed",
			       r.what, r.status, valid[i]);
			itest_resp_fini(&r);
		}
		for (i = 0; invalid[i]; i++) {
			struct itest_resp r;
			const char *h[2] = { hdr, NULL };
			struct itest_req q = { .method = targets[t].method, .path = targets[t].path,
					       .token = targets[t].auth ? itest_admin_token() : NULL,
					       .body = body, .headers = h };
			int ok;

			snprintf(hdr, sizeof hdr, "X-Request-Id: %s", invalid[i]);
			itest_send(&r, &q);
			ok = itest_header(&r, "X-Request-Id", got, sizeof got) != NULL;
			EXPECT(ok && strcmp(got, invalid[i]) != 0 && request_id_valid(got),
			       "%s: invalid X-Request-Id \"%.40s\" answered with \"%s\"", r.what,
			       invalid[i], ok ? got : "(none)");
			itest_resp_fini(&r);
		}
		/* Without one, a fresh id is generated each time. */
		for (i = 0; i < 2; i++) {
			struct itest_resp r;
			struct itest_req q = { .method = targets[t].method, .path = targets[t].path,
					       .token = targets[t].auth ? itest_admin_token() : NULL,
					       .body = body };
			int ok;

			itest_send(&r, &q);
			ok = itest_header(&r, "X-Request-Id", got, sizeof got) != NULL;
			EXPECT(ok && request_id_valid(got), "%s (%ld): X-Request-Id \"%s\"", r.what,
			       r.status, ok ? got : "(none)");
			if (ok && i == 0)
				snprintf(first, sizeof first, "%s", got);
			else if (ok)
				EXPECT(strcmp(first, got) != 0, "%s: two requests got X-Request-Id %s",
				       r.what, got);
			itest_resp_fini(&r);
		}
	}
}

int itest_register_input(void)
{
	CU_pSuite s = CU_add_suite("bad input", NULL, NULL);

	if (!s ||
	    !CU_add_test(s, "malformed JSON and wrong shapes", test_malformed_json) ||
	    !CU_add_test(s, "unknown fields and wrong types", test_unknown_and_wrong_types) ||
	    !CU_add_test(s, "64 KiB body limit", test_body_size) ||
	    !CU_add_test(s, "Content-Type must be JSON", test_content_type) ||
	    !CU_add_test(s, "unknown routes and methods", test_routes) ||
	    !CU_add_test(s, "list limit bounds", test_list_limits) ||
	    !CU_add_test(s, "invalid UTF-8 and NUL", test_bad_strings) ||
	    !CU_add_test(s, "deeply nested JSON", test_deep_nesting) ||
	    !CU_add_test(s, "hostile strings round-trip", test_roundtrip) ||
	    !CU_add_test(s, "X-Request-Id echo and generation", test_request_id))
		return -1;
	return 0;
}
