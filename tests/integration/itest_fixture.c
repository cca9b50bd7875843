/*
 * itest_fixture.c - assertions and API fixtures for the integration suite.
 */
#define _POSIX_C_SOURCE 200809L

#include "itest_fixture.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <CUnit/TestRun.h>

/* What the fixtures made once per run. */
static struct {
	char admin_id[160];
	char big_tier[40];
	int big_tier_tried;
} fixture;

/* ---- assertions ---- */

int itest_assert(int ok, const char *file, int line, const char *fmt, ...)
{
	char msg[1200], *p;
	va_list ap;

	if (ok) {
		if (CU_get_current_test())
			CU_assertImplementation(CU_TRUE, (unsigned)line, "", file, "", CU_FALSE);
		return 1;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	for (p = msg; *p; p++)	/* one readable line whatever the quoted bytes */
		if ((unsigned char)*p < 0x20)
			*p = '?';
	if (CU_get_current_test())
		CU_assertImplementation(CU_FALSE, (unsigned)line, msg, file, "", CU_FALSE);
	else	/* suite set-up or tear-down: CUnit records only its return value */
		fprintf(stderr, "%s:%d: %s\n", file, line, msg);
	return 0;
}

int itest_assert_status(const struct itest_resp *r, long want, const char *file, int line)
{
	int ok = r->status == want;

	itest_assert(ok, file, line, "%s: status %ld, want %ld; body: %.400s", r->what,
		     r->status, want, r->body ? r->body : "");
	return ok;
}

int itest_assert_error(const struct itest_resp *r, long want, const char *code,
		       const char *field, const char *what, const char *file, int line)
{
	const char *got = itest_str(r->json, "error.code");
	const char *msg = itest_str(r->json, "error.message");
	const char *gf = itest_str(r->json, "error.field");
	int ok = r->status == want && got && strcmp(got, code) == 0 && msg && *msg &&
		 (!field || (gf && strcmp(gf, field) == 0));

	itest_assert(ok, file, line,
		     "%s: want %ld %s%s%s; got %ld; body: %.400s%s%.200s", r->what, want, code,
		     field ? " field " : "", field ? field : "", r->status,
		     r->body ? r->body : "", what ? "; case: " : "", what ? what : "");
	return ok;
}

int itest_assert_str(const struct itest_resp *r, json_object *o, const char *path,
		     const char *want, const char *file, int line)
{
	const char *got = itest_str(o, path);
	int ok = want ? got && strcmp(got, want) == 0 : itest_is_null(o, path);

	itest_assert(ok, file, line, "%s: %s is %s%s%s, want %s%s%s; body: %.300s",
		     r ? r->what : "json", path, got ? "\"" : "", got ? got : "(not a string)",
		     got ? "\"" : "", want ? "\"" : "", want ? want : "null", want ? "\"" : "",
		     r && r->body ? r->body : "");
	return ok;
}

/* Each limit of the tier appears in the key's effective limits unchanged. */
void itest_expect_tier_limits(const struct itest_resp *r, const char *tier, size_t extra)
{
	struct itest_resp t;
	json_object *tl, *kl = itest_get(r->json, "limits");
	char path[128];

	snprintf(path, sizeof path, "/v1/tiers/%s", tier);
	itest_call(&t, "GET", path, itest_admin_token(), NULL);
	tl = itest_get(t.json, "limits");
	EXPECT(json_object_is_type(tl, json_type_array) && json_object_is_type(kl, json_type_array),
	       "%s: limits of key or tier %s missing", r->what, tier);
	if (tl && kl) {
		size_t i, n = itest_len(tl);

		EXPECT(itest_len(kl) == n + extra,
		       "%s: %zu effective limits, want %zu: %s", r->what,
		       itest_len(kl), n + extra, r->body);
		for (i = 0; i < n; i++) {
			json_object *l = itest_idx(tl, i);
			const char *name = itest_str(l, "name");
			json_object *k = name ? itest_find_named(r->json, "limits", name) : NULL;

			EXPECT(k && json_object_equal(itest_get(k, "window_s"), itest_get(l, "window_s")) &&
			       json_object_equal(itest_get(k, "limit"), itest_get(l, "limit")),
			       "%s: tier limit %s not in key limits %s", r->what,
			       json_object_to_json_string(l), r->body);
		}
	}
	itest_resp_fini(&t);
}

/* ---- fixtures ---- */

static int copy_str(char *dst, size_t n, const char *src)
{
	if (!src || strlen(src) >= n)
		return -1;
	strcpy(dst, src);
	return 0;
}

int itest_token_create(struct itest_token *t, const char *role)
{
	static unsigned seq;
	struct itest_resp r;
	char body[256];
	int rc = -1;

	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "itest-%s-%s-%u", role, itest_suffix(), seq++);
	snprintf(body, sizeof body, "{\"role\":%s,\"name\":%s}", itest_q(role),
		 itest_q(t->name));
	itest_call(&r, "POST", "/v1/admin/tokens", itest_admin_token(), body);
	if (EXPECT_STATUS(&r, 201) &&
	    copy_str(t->id, sizeof t->id, itest_str(r.json, "id")) == 0 &&
	    copy_str(t->token, sizeof t->token, itest_str(r.json, "token")) == 0 &&
	    copy_str(t->role, sizeof t->role, role) == 0)
		rc = 0;
	EXPECT(rc == 0, "token create (%s): no id/token in %.300s", role, r.body);
	itest_resp_fini(&r);
	return rc;
}

void itest_token_revoke(const struct itest_token *t)
{
	struct itest_resp r;
	char path[256];

	snprintf(path, sizeof path, "/v1/admin/tokens/%s", t->id);
	itest_call(&r, "DELETE", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 204);
	itest_resp_fini(&r);
}

int itest_key_create(struct itest_key *k, const char *owner, const char *tier,
		     const char *extra, struct itest_resp *resp)
{
	static unsigned seq;
	struct itest_resp local = {0}, *r = resp ? resp : &local;
	char body[16384], name[64];
	int rc = -1;

	memset(k, 0, sizeof *k);
	snprintf(k->owner, sizeof k->owner, "%s", owner);
	snprintf(name, sizeof name, "itest key %u", seq++);
	snprintf(body, sizeof body, "{\"owner_id\":%s,\"name\":%s%s%s%s%s}", itest_q(owner),
		 itest_q(name), tier ? ",\"tier\":" : "", tier ? itest_q(tier) : "",
		 extra ? "," : "", extra ? extra : "");
	itest_call(r, "POST", "/v1/keys", itest_admin_token(), body);
	if (EXPECT_STATUS(r, 201) &&
	    copy_str(k->id, sizeof k->id, itest_str(r->json, "id")) == 0 &&
	    copy_str(k->key, sizeof k->key, itest_str(r->json, "key")) == 0)
		rc = 0;
	EXPECT(rc == 0, "key create: no id/key in %.300s", r->body);
	if (!resp)
		itest_resp_fini(&local);
	return rc;
}

int itest_key_patch(const char *id, const char *body)
{
	struct itest_resp r;
	char path[256];
	int ok;

	snprintf(path, sizeof path, "/v1/keys/%s", id);
	itest_call(&r, "PATCH", path, itest_admin_token(), body);
	ok = EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	return ok ? 0 : -1;
}

void itest_check(struct itest_resp *r, const char *token, const char *key)
{
	char body[1024];

	snprintf(body, sizeof body, "{\"key\":%s,\"endpoint\":\"GET /x\",\"cost\":1}",
		 itest_q(key));
	itest_call(r, "POST", "/v1/check", token, body);
}

int itest_list_all(const char *path, const char *token, int limit, int max_pages,
		   json_object **out)
{
	json_object *all = json_object_new_array();
	char url[4096], cursor[1024] = "", esc[3072];
	int pages = 0;

	*out = NULL;
	while (pages < max_pages) {
		struct itest_resp r;
		json_object *data, *next;
		size_t i, n;
		int ok;

		snprintf(url, sizeof url, "%s%slimit=%d%s%s", path, strchr(path, '?') ? "&" : "?",
			 limit, cursor[0] ? "&cursor=" : "",
			 cursor[0] ? itest_escape(cursor, esc, sizeof esc) : "");
		itest_call(&r, "GET", url, token, NULL);
		data = itest_get(r.json, "data");
		next = itest_get(r.json, "next_cursor");
		ok = EXPECT_STATUS(&r, 200) &&
		     json_object_is_type(data, json_type_array) &&
		     json_object_array_length(data) <= (size_t)limit &&
		     itest_has(r.json, "next_cursor") &&
		     (!next || (json_object_is_type(next, json_type_string) &&
				json_object_get_string_len(next) > 0 &&
				(size_t)json_object_get_string_len(next) < sizeof cursor));
		EXPECT(ok, "%s: not a list page of at most %d: %.300s", r.what, limit, r.body);
		if (!ok) {
			itest_resp_fini(&r);
			json_object_put(all);
			return -1;
		}
		n = json_object_array_length(data);
		for (i = 0; i < n; i++)
			json_object_array_add(all, json_object_get(json_object_array_get_idx(data, i)));
		pages++;
		if (!next) {
			itest_resp_fini(&r);
			*out = all;
			return pages;
		}
		snprintf(cursor, sizeof cursor, "%s", json_object_get_string(next));
		itest_resp_fini(&r);
	}
	EXPECT(0, "%s: still a next_cursor after %d pages", path, max_pages);
	json_object_put(all);
	return -1;
}

const char *itest_big_tier(void)
{
	struct itest_resp r;
	char name[40], body[512];

	if (fixture.big_tier_tried)
		return fixture.big_tier[0] ? fixture.big_tier : NULL;
	fixture.big_tier_tried = 1;
	snprintf(name, sizeof name, "it%s-big", itest_suffix());
	snprintf(body, sizeof body,
		 "{\"name\":%s,\"limits\":[{\"name\":\"per_second\",\"window_s\":1,"
		 "\"limit\":1000000000}]}", itest_q(name));
	itest_call(&r, "POST", "/v1/tiers", itest_admin_token(), body);
	if (EXPECT_STATUS(&r, 201))
		snprintf(fixture.big_tier, sizeof fixture.big_tier, "%s", name);
	itest_resp_fini(&r);
	return fixture.big_tier[0] ? fixture.big_tier : NULL;
}

const char *itest_admin_id(void)
{
	struct itest_resp r;

	if (fixture.admin_id[0])
		return fixture.admin_id;
	itest_call(&r, "GET", "/v1/admin/whoami", itest_admin_token(), NULL);
	if (r.status == 200 && itest_str(r.json, "id"))
		snprintf(fixture.admin_id, sizeof fixture.admin_id, "%s", itest_str(r.json, "id"));
	itest_resp_fini(&r);
	return fixture.admin_id;
}

int itest_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}
