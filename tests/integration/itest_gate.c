/*
 * itest_gate.c - gate mode: the web server asks Tollgate, in the FastCGI
 * Authorizer role, before it serves a guarded file.
 *
 * TOLLGATE_GATE_URL names a guarded file on the server of TOLLGATE_URL
 * (contrib/stack: $TOLLGATE_URL/protected/hello.txt); what an allowed request
 * must receive is that file as it lies under $TOLLGATE_RUN_DIR/www. The key
 * is presented as "Authorization: Bearer", "X-API-Key" or the query parameter
 * api_key (the stack's [server] gate_query_param). Without TOLLGATE_GATE_URL
 * the suite is not registered, and says so.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <CUnit/CUnit.h>

#include "itest_fixture.h"
#include "itest_suites.h"

#define GATE_QUERY_PARAM "api_key"

enum via { VIA_NONE, VIA_BEARER, VIA_HEADER, VIA_QUERY };

static const char *const via_names[] = { "no key", "Authorization: Bearer", "X-API-Key",
					 "?" GATE_QUERY_PARAM "=" };

static struct {
	char path[1024];	/* the guarded file's path on the server */
	char *content;		/* what an allowed request gets */
	size_t content_len;
} gate;

/* The path of TOLLGATE_GATE_URL relative to TOLLGATE_URL, or -1. */
static int gate_path(const char *gate_url, char *out, size_t n)
{
	const char *base = getenv("TOLLGATE_URL");
	size_t blen;

	if (!base)
		return -1;
	blen = strlen(base);
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	if (strncmp(gate_url, base, blen) != 0 || gate_url[blen] != '/' ||
	    strchr(gate_url + blen, '?') || strlen(gate_url + blen) >= n)
		return -1;
	snprintf(out, n, "%s", gate_url + blen);
	return 0;
}

static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0, got;

	if (!f)
		return -1;
	do {
		if (n + 4096 > cap) {
			char *p = realloc(buf, cap + 8192);

			if (!p) {
				free(buf);
				fclose(f);
				return -1;
			}
			buf = p;
			cap += 8192;
		}
		got = fread(buf + n, 1, 4096, f);
		n += got;
	} while (got > 0 && n < 1024 * 1024);
	fclose(f);
	*out = buf;
	*len = n;
	return 0;
}

static int suite_init(void)
{
	const char *url = getenv("TOLLGATE_GATE_URL"), *run = getenv("TOLLGATE_RUN_DIR");
	char file[2048];

	if (gate_path(url, gate.path, sizeof gate.path) != 0) {
		fprintf(stderr, "itest: gate: TOLLGATE_GATE_URL=%s is not a path on TOLLGATE_URL "
			"without a query string\n", url);
		return -1;
	}
	snprintf(file, sizeof file, "%s/www%s", run, gate.path);
	if (read_file(file, &gate.content, &gate.content_len) != 0) {
		fprintf(stderr, "itest: gate: cannot read %s, the file behind TOLLGATE_GATE_URL\n",
			file);
		return -1;
	}
	return itest_big_tier() ? 0 : -1;
}

static int suite_clean(void)
{
	free(gate.content);
	gate.content = NULL;
	return 0;
}

static void owner_id(char *buf, size_t n, const char *tag)
{
	snprintf(buf, n, "acct_it%s_gate_%s", itest_suffix(), tag);
}

/* GET of the guarded file, presenting key the way `via` says. */
static void gate_get(struct itest_resp *r, enum via via, const char *key)
{
	char path[2048], esc[1024], header[600];
	const char *headers[2] = { NULL, NULL };
	struct itest_req q = { .method = "GET", .path = path };

	snprintf(path, sizeof path, "%s", gate.path);
	switch (via) {
	case VIA_BEARER:
		q.token = key;
		break;
	case VIA_HEADER:
		snprintf(header, sizeof header, "X-API-Key: %s", key);
		headers[0] = header;
		q.headers = headers;
		break;
	case VIA_QUERY:
		snprintf(path, sizeof path, "%s?%s=%s", gate.path, GATE_QUERY_PARAM,
			 itest_escape(key, esc, sizeof esc));
		break;
	case VIA_NONE:
		break;
	}
	itest_send(r, &q);
}

/* No Variable-* header reaches the client: they are for the web server. */
static int no_variables(const struct itest_resp *r)
{
	const char *line = r->headers;

	while (line && *line) {
		if (strncasecmp(line, "Variable-", 9) == 0)
			return 0;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return 1;
}

static void expect_allowed(const struct itest_resp *r, enum via via)
{
	char buf[64];
	const char *cl = itest_header(r, "Content-Length", buf, sizeof buf);
	size_t n = gate.content_len;

	if (!EXPECT(r->status == 200, "gate with %s: status %ld, body %.300s", via_names[via],
		    r->status, r->body))
		return;
	/* The client trims line ends off a body; Content-Length counts every byte. */
	while (n > 0 && (gate.content[n - 1] == '\n' || gate.content[n - 1] == '\r'))
		n--;
	EXPECT(cl && strtoull(cl, NULL, 10) == gate.content_len && r->body_len == n &&
	       memcmp(r->body, gate.content, n) == 0,
	       "gate with %s: the answer (Content-Length %s) is not the guarded file (%zu bytes): "
	       "%.200s", via_names[via], cl ? cl : "(none)", gate.content_len, r->body);
	EXPECT(no_variables(r), "gate with %s: a Variable-* header reached the client:\n%s",
	       via_names[via], r->headers);
}

/* A refusal: the check's status, JSON body (decision fields and error
 * envelope) and X-Request-Id. k NULL: an unknown key, so the key fields are
 * null and limits []. */
static int expect_denied(const struct itest_resp *r, long status, const char *reason,
			 const struct itest_key *k, const char *what)
{
	json_object *allowed = itest_get(r->json, "allowed"), *limits = itest_get(r->json, "limits");
	char buf[256];
	const char *h = itest_header(r, "Content-Type", buf, sizeof buf);
	int ok = EXPECT_ERROR_CASE(r, status, reason, NULL, what);

	ok &= EXPECT(h && strncmp(h, "application/json", 16) == 0, "%s: Content-Type %s", what,
		     h ? h : "(none)");
	ok &= EXPECT(itest_header(r, "X-Request-Id", buf, sizeof buf) != NULL, "%s: no X-Request-Id",
		     what);
	ok &= EXPECT(json_object_is_type(allowed, json_type_boolean) &&
		     !json_object_get_boolean(allowed), "%s: allowed is not false: %s", what,
		     r->body);
	ok &= EXPECT_STR(r, r->json, "reason", reason);
	ok &= EXPECT(json_object_is_type(limits, json_type_array) && (k || itest_len(limits) == 0),
		     "%s: limits: %s", what, r->body);
	if (status != 429)
		ok &= EXPECT(!itest_has(r->json, "limit") && !itest_has(r->json, "retry_after_ms"),
			     "%s: a %ld carries limit/retry_after_ms: %s", what, status, r->body);
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

static void test_gate_allowed(void)
{
	static const enum via vias[] = { VIA_BEARER, VIA_HEADER, VIA_QUERY };
	struct itest_key k;
	struct itest_resp r;
	char owner[128];
	size_t i;

	owner_id(owner, sizeof owner, "ok");
	if (itest_key_create(&k, owner, itest_big_tier(), NULL, NULL) != 0)
		return;
	for (i = 0; i < sizeof vias / sizeof vias[0]; i++) {
		gate_get(&r, vias[i], k.key);
		expect_allowed(&r, vias[i]);
		itest_resp_fini(&r);
	}
}

static void test_gate_invalid_key(void)
{
	struct itest_key k;
	struct itest_resp r;
	char owner[128], flipped[256], other[300], what[128];
	const char *const basic = "Authorization: Basic dXNlcjpwYXNz";
	const char *headers[2] = { basic, NULL };
	struct itest_req q = { .method = "GET", .path = gate.path, .headers = headers };
	char *last;

	/* No key at all. */
	gate_get(&r, VIA_NONE, NULL);
	expect_denied(&r, 401, "invalid_key", NULL, "no key");
	itest_resp_fini(&r);
	/* Credentials of another scheme are no key either. */
	itest_send(&r, &q);
	expect_denied(&r, 401, "invalid_key", NULL, "Authorization: Basic");
	itest_resp_fini(&r);

	owner_id(owner, sizeof owner, "invalid");
	if (itest_key_create(&k, owner, itest_big_tier(), NULL, NULL) != 0)
		return;
	/* A mistyped key (its checksum fails) and a well-formed unknown one. */
	snprintf(flipped, sizeof flipped, "%s", k.key);
	last = &flipped[strlen(flipped) - 1];
	*last = *last == 'a' ? 'b' : 'a';
	snprintf(other, sizeof other, "zz%s", k.key);

	gate_get(&r, VIA_BEARER, flipped);
	expect_denied(&r, 401, "invalid_key", NULL, "mistyped key, Bearer");
	itest_resp_fini(&r);
	gate_get(&r, VIA_HEADER, other);
	expect_denied(&r, 401, "invalid_key", NULL, "unknown key, X-API-Key");
	itest_resp_fini(&r);
	gate_get(&r, VIA_QUERY, "tg_nonsense");
	snprintf(what, sizeof what, "malformed key, ?%s=", GATE_QUERY_PARAM);
	expect_denied(&r, 401, "invalid_key", NULL, what);
	itest_resp_fini(&r);

	/* None of that touched the real key. */
	gate_get(&r, VIA_HEADER, k.key);
	expect_allowed(&r, VIA_HEADER);
	itest_resp_fini(&r);
}

enum { SUSP, REV, EXP, NSTATE };

static void test_gate_key_states(void)
{
	static const char *const tags[NSTATE] = { "susp", "rev", "exp" };
	static const enum via vias[] = { VIA_BEARER, VIA_HEADER, VIA_QUERY };
	struct itest_key k[NSTATE];
	struct itest_resp r;
	char owner[128], past[32], body[128], path[256], what[96];
	size_t i, j;

	for (i = 0; i < NSTATE; i++) {
		owner_id(owner, sizeof owner, tags[i]);
		if (itest_key_create(&k[i], owner, itest_big_tier(), NULL, NULL) != 0)
			return;
	}
	itest_key_patch(k[SUSP].id, "{\"status\":\"suspended\"}");
	itest_time(past, sizeof past, -60000);
	snprintf(body, sizeof body, "{\"expires_at\":\"%s\"}", past);
	itest_key_patch(k[EXP].id, body);
	snprintf(path, sizeof path, "/v1/keys/%.159s", k[REV].id);
	itest_call(&r, "DELETE", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	/* Changes reach every responder within 1 s. */
	itest_sleep_ms(1100);

	for (j = 0; j < sizeof vias / sizeof vias[0]; j++) {
		snprintf(what, sizeof what, "suspended key, %s", via_names[vias[j]]);
		gate_get(&r, vias[j], k[SUSP].key);
		expect_denied(&r, 403, "suspended", &k[SUSP], what);
		itest_resp_fini(&r);

		snprintf(what, sizeof what, "revoked key, %s", via_names[vias[j]]);
		gate_get(&r, vias[j], k[REV].key);
		expect_denied(&r, 403, "revoked", &k[REV], what);
		itest_resp_fini(&r);

		snprintf(what, sizeof what, "expired key, %s", via_names[vias[j]]);
		gate_get(&r, vias[j], k[EXP].key);
		expect_denied(&r, 401, "expired", &k[EXP], what);
		itest_resp_fini(&r);
	}
}

/* Value of the parameter `name` ("r", "q", ...) of a structured-field item
 * such as "gate_min";r=0;t=60, or -1. */
static long sf_param(const char *item, const char *name)
{
	size_t n = strlen(name);
	const char *p = item;

	while ((p = strchr(p, ';')) != NULL) {
		p++;
		while (*p == ' ')
			p++;
		if (strncmp(p, name, n) == 0 && p[n] == '=')
			return strtol(p + n + 1, NULL, 10);
	}
	return -1;
}

static void test_gate_rate_limited(void)
{
	static const enum via vias[] = { VIA_BEARER, VIA_HEADER, VIA_QUERY };
	struct itest_key k;
	struct itest_resp r;
	char owner[128], buf[512];
	const char *h;
	json_object *w;
	int64_t retry_ms = -1, v;
	size_t i;

	owner_id(owner, sizeof owner, "limited");
	if (itest_key_create(&k, owner, itest_big_tier(),
			     "\"limits\":[{\"name\":\"gate_min\",\"window_s\":60,\"limit\":2}]",
			     NULL) != 0)
		return;
	/* Two requests fit the window, whichever way the key comes. */
	for (i = 0; i < 2; i++) {
		gate_get(&r, vias[i], k.key);
		expect_allowed(&r, vias[i]);
		itest_resp_fini(&r);
	}
	gate_get(&r, vias[2], k.key);
	if (!expect_denied(&r, 429, "rate_limited", &k, "third request in a 2-per-60 s window")) {
		itest_resp_fini(&r);
		return;
	}
	EXPECT_STR(&r, r.json, "limit", "gate_min");
	/* At most the window plus one of its 10 sub-buckets (the default precision). */
	EXPECT(itest_int(r.json, "retry_after_ms", &retry_ms) && retry_ms > 0 &&
	       retry_ms <= 66000, "retry_after_ms: %s", r.body);
	w = itest_find_named(r.json, "limits", "gate_min");
	EXPECT(w && itest_int(w, "remaining", &v) && v == 0, "limits has no exhausted gate_min: %s",
	       r.body);

	h = itest_header(&r, "Retry-After", buf, sizeof buf);
	EXPECT(h && retry_ms > 0 && strtol(h, NULL, 10) == (long)((retry_ms + 999) / 1000),
	       "Retry-After %s for retry_after_ms %lld", h ? h : "(none)", (long long)retry_ms);
	h = itest_header(&r, "RateLimit", buf, sizeof buf);
	EXPECT(h && strncmp(h, "\"gate_min\";", 11) == 0 && !strchr(h, ',') &&
	       sf_param(h, "r") == 0 && sf_param(h, "t") >= 1 && sf_param(h, "t") <= 66,
	       "RateLimit is not the exhausted gate_min window: %s", h ? h : "(none)");
	h = itest_header(&r, "RateLimit-Policy", buf, sizeof buf);
	EXPECT(h && strstr(h, "\"gate_min\";q=2;w=60") && strstr(h, "\"per_second\";"),
	       "RateLimit-Policy does not list both windows: %s", h ? h : "(none)");
	h = itest_header(&r, "X-RateLimit-Limit", buf, sizeof buf);
	EXPECT(h && strcmp(h, "2") == 0, "X-RateLimit-Limit: %s", h ? h : "(none)");
	h = itest_header(&r, "X-RateLimit-Remaining", buf, sizeof buf);
	EXPECT(h && strcmp(h, "0") == 0, "X-RateLimit-Remaining: %s", h ? h : "(none)");
	h = itest_header(&r, "X-RateLimit-Reset", buf, sizeof buf);
	EXPECT(h && strtol(h, NULL, 10) >= 1 && strtol(h, NULL, 10) <= 66,
	       "X-RateLimit-Reset: %s", h ? h : "(none)");
	itest_resp_fini(&r);

	/* The refusal consumed nothing, and it stays refused through every source. */
	for (i = 0; i < 2; i++) {
		gate_get(&r, vias[i], k.key);
		expect_denied(&r, 429, "rate_limited", &k, via_names[vias[i]]);
		itest_resp_fini(&r);
	}
}

int itest_register_gate(void)
{
	const char *url = getenv("TOLLGATE_GATE_URL");
	CU_pSuite s;

	if (!url || !*url) {
		fputs("itest: TOLLGATE_GATE_URL is not set: the gate suite is skipped\n", stderr);
		return 0;
	}
	s = CU_add_suite("gate", suite_init, suite_clean);
	if (!s ||
	    !CU_add_test(s, "allowed through each key source", test_gate_allowed) ||
	    !CU_add_test(s, "missing, malformed and unknown keys", test_gate_invalid_key) ||
	    !CU_add_test(s, "suspended, revoked and expired keys", test_gate_key_states) ||
	    !CU_add_test(s, "rate limited", test_gate_rate_limited))
		return -1;
	return 0;
}
