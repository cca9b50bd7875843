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

#include <libpq-fe.h>

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

/* GET of path (as written, not normalised by the client) with key as Bearer. */
static void gate_get_path(struct itest_resp *r, const char *path, const char *key)
{
	struct itest_req q = { .method = "GET", .path = path, .token = key };

	itest_send(r, &q);
}

/* dir, then '/' and len more bytes of path in segments of 50. */
static void long_path(char *out, size_t size, const char *dir, size_t len)
{
	size_t n = (size_t)snprintf(out, size, "%s", dir), i;

	for (i = 0; i < len && n + 1 < size; i++)
		out[n++] = i % 50 == 0 ? '/' : 'a';
	out[n] = '\0';
}

/* A limit scoped to the guarded directory holds whatever the spelling of the
 * path: percent-encoded letters, dot segments, repeated slashes and long
 * paths all count against it; a path with no single meaning is refused. */
static void test_gate_path_spellings(void)
{
	struct itest_key k;
	struct itest_resp r;
	char owner[128], extra[768], dir[512], spell[8][1200], what[1400];
	const char *file = strrchr(gate.path, '/');
	size_t dlen = (size_t)(file - gate.path), i, n = 0;
	static char longp[1400];

	if (!EXPECT(dlen > 1 && dlen < 200, "the guarded file %s is not in a directory", gate.path))
		return;
	snprintf(dir, sizeof dir, "%.*s", (int)dlen, gate.path);
	owner_id(owner, sizeof owner, "spell");
	snprintf(extra, sizeof extra,
		 "\"limits\":[{\"name\":\"dir_min\",\"window_s\":60,\"limit\":2,"
		 "\"endpoint\":\"GET %s/*\"}]", dir);
	if (itest_key_create(&k, owner, itest_big_tier(), extra, NULL) != 0)
		return;
	for (i = 0; i < 2; i++) {
		gate_get_path(&r, gate.path, k.key);
		expect_allowed(&r, VIA_BEARER);
		itest_resp_fini(&r);
	}
	/* dir[1] is a letter or digit: its escape is an unreserved character */
	snprintf(spell[n++], sizeof spell[0], "/%%%02X%s%s", (unsigned char)dir[1], dir + 2, file);
	snprintf(spell[n++], sizeof spell[0], "/%s%s", dir, file);
	snprintf(spell[n++], sizeof spell[0], "/.%s%s", dir, file);
	snprintf(spell[n++], sizeof spell[0], "/x/..%s%s", dir, file);
	snprintf(spell[n++], sizeof spell[0], "%s/%s", dir, file);
	snprintf(spell[n++], sizeof spell[0], "%s/.%s", dir, file);
	snprintf(spell[n++], sizeof spell[0], "/%%2e%s/%%2E%s", dir, file);
	/* longer than the 256 bytes that used to widen the endpoint to "*" (in
	 * segments a file system takes: Apache maps the path before it asks) */
	long_path(spell[n++], sizeof spell[0], dir, 400);
	for (i = 0; i < n; i++) {
		gate_get_path(&r, spell[i], k.key);
		snprintf(what, sizeof what, "GET %.300s after the window is used up", spell[i]);
		if (expect_denied(&r, 429, "rate_limited", &k, what))
			EXPECT_STR(&r, r.json, "limit", "dir_min");
		itest_resp_fini(&r);
	}
	/* Past the bound of a normal endpoint: refused, never widened to "*". */
	long_path(longp, sizeof longp, dir, 1100);
	gate_get_path(&r, longp, k.key);
	if (EXPECT(r.status == 400, "a path of 1,100 bytes: %ld %.200s", r.status, r.body))
		EXPECT_ERROR_CASE(&r, 400, "invalid_argument", NULL, "a path of 1,100 bytes");
	itest_resp_fini(&r);
	/* An escaped '/' has no single meaning: refused by the gate (400) or by
	 * the server before it asks (Apache's AllowEncodedSlashes Off: 403 or
	 * 404), never served. */
	snprintf(longp, sizeof longp, "%s%%2F%s", dir, file + 1);
	gate_get_path(&r, longp, k.key);
	EXPECT(r.status == 400 || r.status == 403 || r.status == 404, "GET %s: %ld %.200s", longp,
	       r.status, r.body);
	itest_resp_fini(&r);
}

/* A key in the query string of any URL -- the guarded directory without
 * its slash (a redirect), a missing file, the guarded file -- is answered
 * without a server error; that it reaches no log is checked by the secrets
 * step of contrib/stack test, which greps every log for every key made. */
static void test_gate_query_key_not_logged(void)
{
	struct itest_key k;
	struct itest_resp r;
	char owner[128], esc[256], path[1400];
	const char *file = strrchr(gate.path, '/');
	int dlen = (int)(file - gate.path);
	size_t i;

	owner_id(owner, sizeof owner, "query");
	if (itest_key_create(&k, owner, itest_big_tier(), NULL, NULL) != 0)
		return;
	itest_escape(k.key, esc, sizeof esc);
	for (i = 0; i < 3; i++) {
		if (i == 0)
			snprintf(path, sizeof path, "%.*s?api_key=%s", dlen, gate.path, esc);
		else if (i == 1)
			snprintf(path, sizeof path, "%.*s/no-such-file?api_key=%s", dlen, gate.path, esc);
		else
			snprintf(path, sizeof path, "/no-such-dir/?api_key=%s", esc);
		gate_get_path(&r, path, NULL);
		EXPECT(r.status > 0 && r.status < 500, "GET %s: %ld", path, r.status);
		itest_resp_fini(&r);
	}
}

/* What /metrics says about key lookups, summed over the processes, and
 * PostgreSQL's count of index scans of key_secrets (every key record read
 * from the database is one). */
struct lookups {
	long long hits, misses, loads_redis, loads_pg, evictions, pg_scans;
};

static long long key_secrets_scans(void)
{
	const char *ci = getenv("TOLLGATE_PG_CONNINFO");
	long long n = -1;
	PGconn *pg;
	PGresult *res;

	if (!ci || !*ci)
		return -1;
	pg = PQconnectdb(ci);
	if (PQstatus(pg) == CONNECTION_OK) {
		res = PQexec(pg, "SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_indexes "
			     "WHERE relname = 'key_secrets'");
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
			n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	PQfinish(pg);
	return n;
}

static long long sample(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

static int read_lookups(struct lookups *l, int with_pg)
{
	struct itest_resp r;
	int ok;

	itest_metrics(&r);
	ok = EXPECT(r.status == 200 && r.body, "GET /metrics: %ld", r.status);
	if (ok) {
		l->hits = sample(r.body, "tollgate_key_cache_lookups_total{result=\"hit\"}");
		l->misses = sample(r.body, "tollgate_key_cache_lookups_total{result=\"miss\"}");
		l->loads_redis = sample(r.body, "tollgate_key_record_loads_total{store=\"redis\"}");
		l->loads_pg = sample(r.body, "tollgate_key_record_loads_total{store=\"postgres\"}");
		l->evictions = sample(r.body, "tollgate_key_cache_evictions_total");
		ok = EXPECT(l->hits >= 0 && l->misses >= 0 && l->loads_redis >= 0 && l->loads_pg >= 0,
			    "/metrics lacks the key lookup series");
	}
	itest_resp_fini(&r);
	l->pg_scans = 0;
	if (!with_pg)
		return ok;
	/* the server's statistics are flushed at most once a second */
	itest_sleep_ms(1500);
	l->pg_scans = key_secrets_scans();
	ok &= EXPECT(l->pg_scans >= 0, "cannot read pg_stat_user_indexes (TOLLGATE_PG_CONNINFO)");
	return ok;
}

#define FORGED 10000
#define LEGIT_KEYS 20
/* Store reads the real keys may cause during the flood (see below): the
 * pool's 4 processes times LEGIT_KEYS, and some room. */
#define REAL_MISSES_MAX 100

/* What a forger computes: an unkeyed checksum (CRC-32 in base62) over
 * prefix and secret, the format's check before it was keyed. */
static void crc_check(const char *body, size_t n, char out[6])
{
	static const char b62[] =
		"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	unsigned long crc = 0xFFFFFFFFul;
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		crc ^= (unsigned char)body[i];
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320ul & (0ul - (crc & 1ul)));
	}
	crc = ~crc & 0xFFFFFFFFul;
	for (k = 5; k >= 0; k--) {
		out[k] = b62[crc % 62];
		crc /= 62;
	}
}

/* Keys in the right format with a checksum anyone can compute cost no store:
 * 10,000 of them through the gate read no key record from Redis or
 * PostgreSQL (so none is written either), and the real keys checked among
 * them keep hitting the process cache. */
static void test_gate_forged_keys(void)
{
	static const char b62[] =
		"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	struct itest_key k[LEGIT_KEYS];
	struct itest_resp r;
	struct lookups a, b;
	char owner[128], forged[64], first[300] = "";
	int i, j, not401 = 0, legit_bad = 0;
	unsigned seed = (unsigned)itest_now_ms();
	double rate;

	owner_id(owner, sizeof owner, "forged");
	for (i = 0; i < LEGIT_KEYS; i++)
		if (itest_key_create(&k[i], owner, itest_big_tier(), NULL, NULL) != 0)
			return;
	/* Every process of the pool has seen every real key: rounds until one
	 * adds no cache miss (a process the web server had not sent a key to
	 * yet would miss it once, later, during the flood). */
	if (!read_lookups(&a, 0))
		return;
	for (j = 0; j < 60; j++) {
		for (i = 0; i < LEGIT_KEYS; i++) {
			gate_get(&r, VIA_HEADER, k[i].key);
			legit_bad += r.status != 200;
			itest_resp_fini(&r);
		}
		if (j % 4 != 3)
			continue;
		if (!read_lookups(&b, 0))
			return;
		if (b.misses == a.misses && j > 4)
			break;
		a = b;
	}
	EXPECT(j < 60, "the real keys still missed the process caches after %d rounds", j);
	if (!read_lookups(&a, 1))
		return;
	for (i = 0; i < FORGED; i++) {
		memcpy(forged, "tg_", 3);
		for (j = 3; j < 3 + 22; j++)
			forged[j] = b62[rand_r(&seed) % 62];
		crc_check(forged, 25, forged + 25);
		forged[31] = '\0';
		gate_get(&r, VIA_HEADER, forged);
		if (r.status != 401 && !not401++)
			snprintf(first, sizeof first, "%s: %ld %.200s", forged, r.status, r.body);
		itest_resp_fini(&r);
		if (i % 5 == 0) {
			gate_get(&r, VIA_HEADER, k[(i / 5) % LEGIT_KEYS].key);
			legit_bad += r.status != 200;
			itest_resp_fini(&r);
		}
	}
	if (!read_lookups(&b, 1))
		return;
	EXPECT(not401 == 0, "%d of %d forged keys were not refused with 401; first: %s", not401,
	       FORGED, first);
	EXPECT(legit_bad == 0, "%d checks of real keys were not allowed", legit_bad);
	/* Every key record read from PostgreSQL is an index scan of key_secrets;
	 * only the real keys, cached by now, could cause any.  A forged key that
	 * got past the checksum would cost one each: FORGED in all.  A real
	 * key costs one read in each process that had not been sent it during
	 * the warm-up (which stops at the first quiet round, and the web server
	 * chooses the process): at most the pool's processes (4) times
	 * LEGIT_KEYS, far below FORGED. */
	EXPECT(b.pg_scans - a.pg_scans <= REAL_MISSES_MAX,
	       "%d forged keys: %lld index scans of key_secrets (the 2,000 checks of real keys "
	       "allow %d)", FORGED, b.pg_scans - a.pg_scans, REAL_MISSES_MAX);
	printf("\n    forged keys: %d refused; %lld index scans of key_secrets", FORGED - not401,
	       b.pg_scans - a.pg_scans);
	if (b.hits - a.hits + b.misses - a.misses == 0) {
		/* a web server whose /metrics does not cover the gate's processes
		 * (they report in another metrics_dir) */
		printf("; the gate's processes are not in this /metrics\n");
		return;
	}
	/* A record is read from a store only after a miss of the process cache,
	 * and only the real keys can miss (the first time the web server sends
	 * one to a process, or again once its cached copy aged out; then from
	 * Redis, or from PostgreSQL when Redis no longer holds it): a forged
	 * key that got past the checksum would add a miss and a load each, and
	 * evict nothing only while the cache has room. */
	EXPECT(b.evictions == a.evictions, "%d forged keys evicted %lld cached records", FORGED,
	       b.evictions - a.evictions);
	EXPECT(b.misses - a.misses <= REAL_MISSES_MAX &&
		       (b.loads_redis - a.loads_redis) + (b.loads_pg - a.loads_pg) <=
			       REAL_MISSES_MAX,
	       "%d forged keys: %lld cache misses, %lld key records read from Redis and %lld from "
	       "PostgreSQL (the 2,000 checks of real keys allow %d of each)",
	       FORGED, b.misses - a.misses, b.loads_redis - a.loads_redis,
	       b.loads_pg - a.loads_pg, REAL_MISSES_MAX);
	rate = (double)(b.hits - a.hits) / (double)(b.hits - a.hits + b.misses - a.misses);
	printf("; real keys' cache hit rate %.4f (%lld hits, %lld misses)\n", rate,
	       b.hits - a.hits, b.misses - a.misses);
	EXPECT(rate > 0.95, "the real keys' cache hit rate fell to %.4f during the flood", rate);
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
	    !CU_add_test(s, "rate limited", test_gate_rate_limited) ||
	    !CU_add_test(s, "endpoint limits hold for every spelling of the path",
			 test_gate_path_spellings) ||
	    !CU_add_test(s, "10,000 forged keys cost no store lookup", test_gate_forged_keys) ||
	    !CU_add_test(s, "a key in a query string is served, never logged",
			 test_gate_query_key_not_logged))
		return -1;
	return 0;
}
