/*
 * itest_limits.c - rate limiting over HTTP: sliding-window accuracy under
 * concurrency, several windows, cost, retry and reset times, the RateLimit
 * headers (parsed as structured fields), endpoint-scoped limits, the period
 * quota, remaining credits, and how fast a change of limits is applied.
 *
 * Every test has its own tier, holding exactly the windows it needs, and its
 * own keys, so no counter carries over between tests or runs. The concurrent
 * tests run client threads, each with its own libcurl handle (the shared
 * client of itest_http.c serves one request at a time).
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>
#include <curl/curl.h>

#include "itest_fixture.h"
#include "itest_suites.h"

static struct itest_token service;

/* One window of a tier, as the test defines it. */
struct win {
	const char *name;
	int64_t window_s;
	int64_t limit;
	int precision;		/* 0: the server's default */
	const char *endpoint;	/* NULL: unscoped */
};

#define ACC_LIMIT 20

/* The windows of each test's tier. */
static const struct win w_acc[] = { { "per_second", 1, ACC_LIMIT, 0, NULL } };
static const struct win w_exact[] = { { "per_minute", 60, 100, 0, NULL } };
static const struct win w_two[] = {
	{ "per_second", 1, 10, 0, NULL }, { "per_minute", 60, 15, 0, NULL },
};
static const struct win w_cost[] = { { "per_minute", 60, 10, 0, NULL } };
static const struct win w_edge[] = { { "burst", 1, 5, 10, NULL } };
/* Listed loosest first, so that order says nothing about tightness. */
static const struct win w_hdr[] = {
	{ "minute", 60, 50, 0, NULL }, { "hourly", 3600, 6, 0, NULL }, { "burst", 1, 4, 10, NULL },
};
static const struct win w_tie[] = { { "slow", 60, 3, 0, NULL }, { "fast", 1, 3, 0, NULL } };
static const struct win w_scoped[] = {
	{ "per_second", 1, 100, 0, NULL }, { "search", 60, 3, 0, "POST /v1/search*" },
};
static const struct win w_big[] = { { "big", 60, 1000, 0, NULL } };
static const struct win w_change[] = { { "per_min", 60, 1000, 0, NULL } };
static const struct win w_live[] = {
	{ "minute", 60, 50, 0, NULL }, { "hour", 3600, 100, 0, NULL },
	{ "search", 60, 5, 0, "POST /v1/search*" },
};
static const struct win w_new[] = { { "per_minute", 60, 10, 0, NULL } };

enum {
	T_ACC, T_EXACT, T_TWO, T_COST, T_EDGE, T_HDR, T_TIE, T_SCOPED, T_QBLOCK, T_QBILL,
	T_CREDITS, T_CHANGE, T_LIVE, T_PROBE, NTIERS
};

#define TIER(tag, w, quota) { tag, w, sizeof w / sizeof w[0], quota }
static const struct {
	const char *tag;
	const struct win *w;
	size_t nw;
	const char *quota;	/* JSON object or NULL */
} specs[NTIERS] = {
	[T_ACC] = TIER("acc", w_acc, NULL),
	[T_EXACT] = TIER("exact", w_exact, NULL),
	[T_TWO] = TIER("two", w_two, NULL),
	[T_COST] = TIER("cost", w_cost, NULL),
	[T_EDGE] = TIER("edge", w_edge, NULL),
	[T_HDR] = TIER("hdr", w_hdr, NULL),
	[T_TIE] = TIER("tie", w_tie, NULL),
	[T_SCOPED] = TIER("scoped", w_scoped, NULL),
	[T_QBLOCK] = TIER("qblock", w_big,
			  "{\"period\":\"month\",\"included\":3,\"overage\":\"block\"}"),
	[T_QBILL] = TIER("qbill", w_big,
			 "{\"period\":\"month\",\"included\":3,\"overage\":\"bill\"}"),
	[T_CREDITS] = TIER("credits", w_big, NULL),
	[T_CHANGE] = TIER("change", w_change, NULL),
	[T_LIVE] = TIER("live", w_live,
			"{\"period\":\"month\",\"included\":1000,\"overage\":\"bill\"}"),
	[T_PROBE] = TIER("probe", w_big, NULL),
};
#undef TIER

/* The tiers' names, made in the suite set-up ("" when that failed). */
static char tiers[NTIERS][40];

static int64_t ceil_s(int64_t ms)
{
	return ms <= 0 ? 0 : (ms + 999) / 1000;
}

static int64_t realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- fixtures ---- */

/* Creates tier "it<suffix>-<tag>" with exactly the windows w and, when quota
 * is not NULL, that quota object (JSON text). Returns 0 on success. */
static int make_tier(char *name, size_t size, const char *tag, const struct win *w, size_t nw,
		     const char *quota)
{
	struct itest_resp r;
	char body[4096];
	size_t i, o;
	int ok;

	snprintf(name, size, "it%s-%s", itest_suffix(), tag);
	o = (size_t)snprintf(body, sizeof body, "{\"name\":%s,\"limits\":[", itest_q(name));
	for (i = 0; i < nw && o < sizeof body; i++) {
		o += (size_t)snprintf(body + o, sizeof body - o,
				      "%s{\"name\":%s,\"window_s\":%lld,\"limit\":%lld", i ? "," : "",
				      itest_q(w[i].name), (long long)w[i].window_s,
				      (long long)w[i].limit);
		if (w[i].precision && o < sizeof body)
			o += (size_t)snprintf(body + o, sizeof body - o, ",\"precision\":%d",
					      w[i].precision);
		if (w[i].endpoint && o < sizeof body)
			o += (size_t)snprintf(body + o, sizeof body - o, ",\"endpoint\":%s",
					      itest_q(w[i].endpoint));
		if (o < sizeof body)
			o += (size_t)snprintf(body + o, sizeof body - o, "}");
	}
	if (o < sizeof body)
		snprintf(body + o, sizeof body - o, "]%s%s}", quota ? ",\"quota\":" : "",
			 quota ? quota : "");
	itest_call(&r, "POST", "/v1/tiers", itest_admin_token(), body);
	ok = EXPECT_STATUS(&r, 201);
	itest_resp_fini(&r);
	return ok ? 0 : -1;
}

static int tier_ready(int t)
{
	return EXPECT(tiers[t][0], "tier %s was not made in the set-up", specs[t].tag);
}

static int make_key(struct itest_key *k, const char *tier, const char *tag, const char *extra)
{
	char owner[128];

	snprintf(owner, sizeof owner, "acct_it%s_limits_%s", itest_suffix(), tag);
	return itest_key_create(k, owner, tier, extra, NULL);
}

/* POST /v1/check with the service token. endpoint NULL: no endpoint member;
 * cost is JSON text (NULL: no cost member). */
static void check(struct itest_resp *r, const struct itest_key *k, const char *endpoint,
		  const char *cost)
{
	char body[1024];

	snprintf(body, sizeof body, "{\"key\":%s%s%s%s%s}", itest_q(k->key),
		 endpoint ? ",\"endpoint\":" : "", endpoint ? itest_q(endpoint) : "",
		 cost ? ",\"cost\":" : "", cost ? cost : "");
	itest_call(r, "POST", "/v1/check", service.token, body);
}

/* Integer member of the answer's window `name`; -1 when absent. */
static int64_t win_int(const struct itest_resp *r, const char *name, const char *member)
{
	json_object *w = itest_find_named(r->json, "limits", name);
	int64_t v;

	return w && itest_int(w, member, &v) ? v : -1;
}

static int is_allowed(const struct itest_resp *r)
{
	json_object *a = itest_get(r->json, "allowed");

	return r->status == 200 && json_object_is_type(a, json_type_boolean) &&
	       json_object_get_boolean(a);
}

static int expect_allowed(const struct itest_resp *r, const char *what)
{
	return EXPECT(is_allowed(r), "%s: %s: want 200 allowed, got %ld: %.400s", what, r->what,
		      r->status, r->body);
}

/* A 429 with this reason (also the error code) naming `limit`; retry: 1 when
 * retry_after_ms must be there (then > 0), 0 when it must be absent. */
static int expect_limited(const struct itest_resp *r, const char *reason, const char *limit,
			  int retry, const char *what)
{
	int64_t ms = 0;
	int has = itest_has(r->json, "retry_after_ms");
	int ok = EXPECT_ERROR_CASE(r, 429, reason, NULL, what);
	json_object *a = itest_get(r->json, "allowed");

	ok &= EXPECT(json_object_is_type(a, json_type_boolean) && !json_object_get_boolean(a),
		     "%s: allowed is not false: %.400s", what, r->body);
	ok &= EXPECT_STR(r, r->json, "reason", reason);
	ok &= EXPECT_STR(r, r->json, "limit", limit);
	if (retry)
		ok &= EXPECT(itest_int(r->json, "retry_after_ms", &ms) && ms > 0,
			     "%s: want retry_after_ms > 0: %.400s", what, r->body);
	else
		ok &= EXPECT(!has, "%s: want no retry_after_ms: %.400s", what, r->body);
	return ok;
}

/* ---- headers ---- */

/* An integer header value (digits only); 0 when absent or not one. */
static int header_int(const struct itest_resp *r, const char *name, int64_t *out)
{
	char buf[64], *end;
	long long v;

	if (!itest_header(r, name, buf, sizeof buf) || buf[0] < '0' || buf[0] > '9')
		return 0;
	v = strtoll(buf, &end, 10);
	if (*end)
		return 0;
	*out = v;
	return 1;
}

#define SF_MAX_ITEMS 20
#define SF_MAX_PARAMS 8

/* One item of a structured-field list (RFC 8941) whose bare item is a
 * string and whose parameters have integer (or no) values. */
struct sf_item {
	char name[64];
	size_t np;
	struct {
		char key[32];
		int64_t val;
		int is_int;
	} p[SF_MAX_PARAMS];
};

static const char *sf_ows(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* Parses an sf-string at *s into out; 0 on success. */
static int sf_string(const char **s, char *out, size_t size)
{
	const char *p = *s;
	size_t n = 0;

	if (*p++ != '"')
		return -1;
	for (;; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '"')
			break;
		if (c == '\\') {
			c = (unsigned char)*++p;
			if (c != '"' && c != '\\')
				return -1;
		} else if (c < 0x20 || c > 0x7e) {
			return -1;	/* also the end of the string */
		}
		if (n + 1 >= size)
			return -1;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	*s = p + 1;
	return 0;
}

/* Parses ";key[=integer]" parameters into it; 0 on success. */
static int sf_params(const char **s, struct sf_item *it)
{
	const char *p = *s;

	while (*p == ';') {
		size_t n = 0;

		p++;
		while (*p == ' ')
			p++;
		if (!((*p >= 'a' && *p <= 'z') || *p == '*') || it->np >= SF_MAX_PARAMS)
			return -1;
		while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		       *p == '-' || *p == '.' || *p == '*') {
			if (n + 1 >= sizeof it->p[0].key)
				return -1;
			it->p[it->np].key[n++] = *p++;
		}
		it->p[it->np].key[n] = '\0';
		it->p[it->np].is_int = 0;
		if (*p == '=') {
			int neg = *++p == '-', digits = 0;
			int64_t v = 0;

			p += neg;
			while (*p >= '0' && *p <= '9' && digits < 15) {
				v = v * 10 + (*p++ - '0');
				digits++;
			}
			if (!digits || (*p >= '0' && *p <= '9') || *p == '.')
				return -1;	/* only integers of at most 15 digits here */
			it->p[it->np].val = neg ? -v : v;
			it->p[it->np].is_int = 1;
		}
		it->np++;
	}
	*s = p;
	return 0;
}

/* Parses a structured-field list of string items with parameters. Returns
 * the number of items, or -1 when s is not such a list. */
static int sf_list(const char *s, struct sf_item *items, size_t max)
{
	size_t n = 0;

	s = sf_ows(s);
	if (!*s)
		return -1;
	for (;;) {
		if (n >= max)
			return -1;
		memset(&items[n], 0, sizeof items[n]);
		if (sf_string(&s, items[n].name, sizeof items[n].name) != 0 ||
		    sf_params(&s, &items[n]) != 0)
			return -1;
		n++;
		s = sf_ows(s);
		if (!*s)
			return (int)n;
		if (*s++ != ',')
			return -1;
		s = sf_ows(s);
		if (!*s)
			return -1;	/* trailing comma */
	}
}

/* Integer parameter `key` of an item (the last one wins, as in RFC 8941). */
static int sf_param(const struct sf_item *it, const char *key, int64_t *out)
{
	size_t i;
	int found = 0;

	for (i = 0; i < it->np; i++) {
		if (strcmp(it->p[i].key, key) == 0) {
			found = it->p[i].is_int;
			*out = it->p[i].val;
		}
	}
	return found;
}

static const struct win *find_win(const struct win *w, size_t nw, const char *name)
{
	size_t i;

	for (i = 0; name && i < nw; i++)
		if (strcmp(w[i].name, name) == 0)
			return &w[i];
	return NULL;
}

/* A window as a check answer reports it. */
struct seen {
	const char *name;
	int64_t limit, remaining, reset_ms;
};

/* Checks the rate-limit headers of a 200 or 429 check answer against its body
 * and the tier's windows w: RateLimit-Policy lists exactly the windows of
 * `limits`, each with q = limit and w = window_s; RateLimit is one item, the
 * tightest window (least remaining, then soonest reset), with r = remaining
 * and t = ceil(reset_ms / 1000); X-RateLimit-* agree with it; Retry-After is
 * there exactly when retry_after_ms is, rounded up to seconds. Returns the
 * name of the window RateLimit names (borrowed from w), or NULL. */
static const char *expect_headers(const struct itest_resp *r, const struct win *w, size_t nw)
{
	struct sf_item items[SF_MAX_ITEMS];
	struct seen seen[SF_MAX_ITEMS];
	json_object *limits = itest_get(r->json, "limits");
	size_t i, j, n = itest_len(limits);
	const struct win *named = NULL;
	char hv[1024] = "";
	int64_t v, retry;
	int ni, best = -1, ok = 1;

	if (!EXPECT(n > 0 && n <= SF_MAX_ITEMS, "%s: no windows in %.400s", r->what, r->body))
		return NULL;
	for (i = 0; i < n; i++) {
		json_object *l = itest_idx(limits, i);
		const struct win *d;

		seen[i].name = itest_str(l, "name");
		d = find_win(w, nw, seen[i].name);
		ok &= EXPECT(d && itest_int(l, "limit", &seen[i].limit) &&
			     seen[i].limit == d->limit && itest_int(l, "remaining", &seen[i].remaining) &&
			     itest_int(l, "reset_ms", &seen[i].reset_ms),
			     "%s: window %zu is not one of the tier's with its limit, remaining and "
			     "reset_ms: %.400s", r->what, i, r->body);
		if (!ok)
			return NULL;
		if (best < 0 || seen[i].remaining < seen[best].remaining ||
		    (seen[i].remaining == seen[best].remaining &&
		     seen[i].reset_ms < seen[best].reset_ms))
			best = (int)i;
	}

	/* RateLimit-Policy: every applicable window, nothing else. */
	ni = itest_header(r, "RateLimit-Policy", hv, sizeof hv) ?
		     sf_list(hv, items, SF_MAX_ITEMS) : -1;
	ok &= EXPECT(ni == (int)n, "%s: RateLimit-Policy \"%s\" is not a list of the %zu "
		     "windows of %.300s", r->what, hv, n, r->body);
	for (i = 0; ok && i < n; i++) {
		const struct win *d = find_win(w, nw, items[i].name);
		int64_t q = -1, ws = -1;
		int dup = 0, listed = 0;

		for (j = 0; j < n; j++) {
			dup |= j < i && strcmp(items[j].name, items[i].name) == 0;
			listed |= strcmp(seen[j].name, items[i].name) == 0;
		}
		ok &= EXPECT(d && listed && !dup && sf_param(&items[i], "q", &q) &&
			     sf_param(&items[i], "w", &ws) && q == d->limit && ws == d->window_s,
			     "%s: RateLimit-Policy item \"%s\" (q=%lld w=%lld) does not match a "
			     "window of the answer: policy %s, body %.300s", r->what, items[i].name,
			     (long long)q, (long long)ws, hv, r->body);
	}

	/* RateLimit: one item, the tightest window. Two windows with the same
	 * remaining and reset are equally tight. */
	hv[0] = '\0';
	ni = itest_header(r, "RateLimit", hv, sizeof hv) ? sf_list(hv, items, SF_MAX_ITEMS) : -1;
	if (EXPECT(ni == 1, "%s: RateLimit \"%s\" is not one item", r->what, hv)) {
		int64_t rr = -1, t = -1;

		for (i = 0; i < n && !named; i++)
			if (strcmp(seen[i].name, items[0].name) == 0 &&
			    seen[i].remaining == seen[best].remaining &&
			    seen[i].reset_ms == seen[best].reset_ms)
				named = find_win(w, nw, seen[i].name);
		ok &= EXPECT(named && sf_param(&items[0], "r", &rr) && sf_param(&items[0], "t", &t) &&
			     rr == seen[best].remaining && t == ceil_s(seen[best].reset_ms),
			     "%s: RateLimit \"%s\", want \"%s\";r=%lld;t=%lld (tightest) from %.400s",
			     r->what, hv, seen[best].name, (long long)seen[best].remaining,
			     (long long)ceil_s(seen[best].reset_ms), r->body);
	} else {
		ok = 0;
	}

	ok &= EXPECT(header_int(r, "X-RateLimit-Limit", &v) && v == seen[best].limit,
		     "%s: X-RateLimit-Limit is not %lld", r->what, (long long)seen[best].limit);
	ok &= EXPECT(header_int(r, "X-RateLimit-Remaining", &v) && v == seen[best].remaining,
		     "%s: X-RateLimit-Remaining is not %lld", r->what,
		     (long long)seen[best].remaining);
	ok &= EXPECT(header_int(r, "X-RateLimit-Reset", &v) && v == ceil_s(seen[best].reset_ms),
		     "%s: X-RateLimit-Reset is not %lld", r->what,
		     (long long)ceil_s(seen[best].reset_ms));

	if (r->status == 429 && itest_int(r->json, "retry_after_ms", &retry))
		ok &= EXPECT(header_int(r, "Retry-After", &v) && v == ceil_s(retry),
			     "%s: Retry-After is not ceil(%lld / 1000): %.300s", r->what,
			     (long long)retry, r->headers);
	else
		ok &= EXPECT(!itest_header(r, "Retry-After", hv, sizeof hv),
			     "%s: Retry-After \"%s\" without retry_after_ms: %.300s", r->what, hv,
			     r->body);
	return ok && named ? named->name : NULL;
}

/* ---- concurrent clients ---- */

/* One client thread sending the same check body over its own connection. */
struct hammer {
	pthread_t thread;
	int started;
	char url[600];
	char auth[600];
	const char *body;
	const char *limit;	/* the `limit` a 429 must name */
	int max_requests;
	int64_t deadline;	/* monotonic ms; 0: none */
	/* results */
	int sent, allowed, limited, other;
	char first_bad[400];
	int64_t *admitted_at;	/* CLOCK_REALTIME ms when each 200 arrived */
	int nadmitted, cap;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int go;
} start_line = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };

struct sink {
	char p[4096];
	size_t len;
};

static size_t sink_write(char *p, size_t size, size_t nmemb, void *ud)
{
	struct sink *s = ud;
	size_t n = size * nmemb, room = sizeof s->p - 1 - s->len;

	memcpy(s->p + s->len, p, n < room ? n : room);
	s->len += n < room ? n : room;
	s->p[s->len] = '\0';
	return n;
}

/* 1 when a 429 body is rate_limited naming h->limit. */
static int good_429(const struct hammer *h, const char *body)
{
	json_object *o = json_tokener_parse(body);
	const char *reason = itest_str(o, "reason"), *code = itest_str(o, "error.code");
	const char *limit = itest_str(o, "limit");
	int ok = reason && code && limit && strcmp(reason, "rate_limited") == 0 &&
		 strcmp(code, "rate_limited") == 0 && strcmp(limit, h->limit) == 0;

	json_object_put(o);
	return ok;
}

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	CURL *c = curl_easy_init();
	struct curl_slist *hl = NULL;
	struct sink sink;
	int i;

	pthread_mutex_lock(&start_line.mu);
	while (!start_line.go)
		pthread_cond_wait(&start_line.cv, &start_line.mu);
	pthread_mutex_unlock(&start_line.mu);
	if (!c) {
		snprintf(h->first_bad, sizeof h->first_bad, "curl_easy_init failed");
		h->other = 1;
		return NULL;
	}
	hl = curl_slist_append(hl, "Content-Type: application/json");
	hl = curl_slist_append(hl, "Expect:");
	hl = curl_slist_append(hl, h->auth);
	itest_tls(c);
	curl_easy_setopt(c, CURLOPT_URL, h->url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, h->body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	for (i = 0; i < h->max_requests && (!h->deadline || itest_now_ms() < h->deadline); i++) {
		long status = 0;
		CURLcode rc;
		int64_t at;

		sink.len = 0;
		sink.p[0] = '\0';
		rc = curl_easy_perform(c);
		at = realtime_ms();
		if (rc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		h->sent++;
		if (status == 200) {
			h->allowed++;
			if (h->nadmitted < h->cap)
				h->admitted_at[h->nadmitted++] = at;
		} else if (status == 429 && good_429(h, sink.p)) {
			h->limited++;
		} else {
			h->other++;
			if (!h->first_bad[0])
				snprintf(h->first_bad, sizeof h->first_bad, "status %ld (%s): %.300s",
					 status, curl_easy_strerror(rc), sink.p);
		}
	}
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return NULL;
}

/* Prepares n clients that each send `body` to /v1/check up to max_requests
 * times, for at most run_ms (0: no time bound) once started. */
static void hammer_setup(struct hammer *h, int n, const char *body, const char *limit,
			 int max_requests, int64_t run_ms)
{
	const char *base = getenv("TOLLGATE_URL");
	size_t len = strlen(base);
	int i;

	while (len > 0 && base[len - 1] == '/')
		len--;
	memset(h, 0, sizeof *h * (size_t)n);
	for (i = 0; i < n; i++) {
		snprintf(h[i].url, sizeof h[i].url, "%.*s/v1/check", (int)len, base);
		snprintf(h[i].auth, sizeof h[i].auth, "Authorization: Bearer %s", service.token);
		h[i].body = body;
		h[i].limit = limit;
		h[i].max_requests = max_requests;
		h[i].cap = max_requests < 4096 ? max_requests : 4096;
		h[i].admitted_at = calloc((size_t)h[i].cap, sizeof *h[i].admitted_at);
		if (!h[i].admitted_at)
			h[i].cap = 0;
		h[i].deadline = run_ms;	/* made absolute at the start */
	}
}

/* Starts the n clients together and waits for all of them. */
static void hammer_run_all(struct hammer *h, int n)
{
	int64_t t0 = itest_now_ms();
	int i;

	start_line.go = 0;
	for (i = 0; i < n; i++) {
		if (h[i].deadline)
			h[i].deadline += t0;
		h[i].started = pthread_create(&h[i].thread, NULL, hammer_run, &h[i]) == 0;
		EXPECT(h[i].started, "cannot start client thread %d", i);
	}
	pthread_mutex_lock(&start_line.mu);
	start_line.go = 1;
	pthread_cond_broadcast(&start_line.cv);
	pthread_mutex_unlock(&start_line.mu);
	for (i = 0; i < n; i++)
		if (h[i].started)
			pthread_join(h[i].thread, NULL);
}

static void hammer_free(struct hammer *h, int n)
{
	int i;

	for (i = 0; i < n; i++)
		free(h[i].admitted_at);
}

/* ---- set-up ---- */

/* Every tier a test uses is made here, and every responder process has read
 * them before the first test: the tests below are about the windows, not
 * about how soon a new tier is known (test_new_tier is). */
static int suite_init(void)
{
	struct hammer h[16];
	struct itest_key probe;
	char body[1024];
	int t, i, allowed = 0;

	if (itest_token_create(&service, "service") != 0)
		return -1;
	for (t = 0; t < NTIERS; t++)
		if (make_tier(tiers[t], sizeof tiers[t], specs[t].tag, specs[t].w, specs[t].nw,
			      specs[t].quota) != 0) {
			tiers[t][0] = '\0';
			return -1;
		}
	if (make_key(&probe, tiers[T_PROBE], "probe", NULL) != 0)
		return -1;
	/* Past the responders' tier snapshot lifetime (at most 1 s), then
	 * checks on every process so that each one reloads. */
	itest_sleep_ms(1100);
	snprintf(body, sizeof body, "{\"key\":%s}", itest_q(probe.key));
	hammer_setup(h, 16, body, "big", 10, 20000);
	hammer_run_all(h, 16);
	for (i = 0; i < 16; i++)
		allowed += h[i].allowed;
	hammer_free(h, 16);
	itest_sleep_ms(50);
	return allowed == 160 ? 0 : -1;
}

static int suite_clean(void)
{
	if (service.id[0])
		itest_token_revoke(&service);
	return 0;
}

/* ---- tests ---- */

/* A key on a tier made a moment ago is held to that tier's windows from its
 * first check, while the responders are busy (so they have read their tiers
 * a moment before this one was made); and a tier made more than 1 s ago holds
 * under concurrent checks. Every admitted check must list the key's window. */
static void test_new_tier(void)
{
	struct hammer h[16];
	struct itest_key k1, k2;
	struct itest_resp r;
	char t1[40], t2[40], body[1024], first[512] = "";
	int i, allowed = 0, limited = 0, other = 0, wrong = 0;
	const char *bad = "";

	if (make_tier(t1, sizeof t1, "new1", w_new, 1, NULL) != 0 ||
	    make_tier(t2, sizeof t2, "new2", w_new, 1, NULL) != 0 ||
	    make_key(&k1, t1, "new1", NULL) != 0)
		return;
	for (i = 0; i < 12; i++) {
		const char *limit;

		check(&r, &k1, "GET /x", NULL);
		limit = itest_str(r.json, "limit");
		if (i < 10 ? !is_allowed(&r) || win_int(&r, "per_minute", "remaining") != 9 - i
			   : r.status != 429 || !limit || strcmp(limit, "per_minute") != 0) {
			if (!wrong++)
				snprintf(first, sizeof first, "check %d: %.400s", i + 1, r.body);
		}
		itest_resp_fini(&r);
	}
	EXPECT(wrong == 0, "tier made a moment ago, 12 sequential checks against 10 per 60 s: "
	       "%d answers are not 10 x 200 (remaining 9..0) then 429 per_minute; first: %s",
	       wrong, first);

	if (make_key(&k2, t2, "new2", NULL) != 0)
		return;
	itest_sleep_ms(1100);
	snprintf(body, sizeof body, "{\"key\":%s,\"endpoint\":\"GET /x\"}", itest_q(k2.key));
	hammer_setup(h, 16, body, "per_minute", 5, 20000);
	hammer_run_all(h, 16);
	for (i = 0; i < 16; i++) {
		allowed += h[i].allowed;
		limited += h[i].limited;
		other += h[i].other;
		if (h[i].first_bad[0] && !bad[0])
			bad = h[i].first_bad;
	}
	EXPECT(allowed == 10 && limited == 70,
	       "tier made 1.1 s ago, 16 x 5 concurrent checks against 10 per 60 s: %d admitted, "
	       "%d denied per_minute, %d other (first: %s)", allowed, limited, other, bad);
	hammer_free(h, 16);
}

/* A window per owner: the keys of one owner, checked concurrently, are
 * admitted 10 times in all; a key of another owner has its own 10. */
static void test_per_owner(void)
{
	struct hammer h[16];
	struct itest_key k1, k2, k3;
	struct itest_resp r;
	char tier[64], body[512], b1[1024], b2[1024];
	int i, allowed = 0, limited = 0, other = 0, ok3 = 0;
	const char *bad = "";

	snprintf(tier, sizeof tier, "it%s-pown", itest_suffix());
	snprintf(body, sizeof body,
		 "{\"name\":\"%s\",\"limits\":[{\"name\":\"per_minute\",\"window_s\":60,"
		 "\"limit\":10,\"per\":\"owner\"},{\"name\":\"per_second\",\"window_s\":1,"
		 "\"limit\":1000}]}", tier);
	itest_call(&r, "POST", "/v1/tiers", itest_admin_token(), body);
	int made = EXPECT_STATUS(&r, 201);
	EXPECT_STR(&r, itest_idx(itest_get(r.json, "limits"), 0), "per", "owner");
	itest_resp_fini(&r);
	if (!made || make_key(&k1, tier, "pown", NULL) != 0 || make_key(&k2, tier, "pown", NULL) != 0 ||
	    make_key(&k3, tier, "pother", NULL) != 0)
		return;
	itest_sleep_ms(1100);
	snprintf(b1, sizeof b1, "{\"key\":%s,\"endpoint\":\"GET /x\"}", itest_q(k1.key));
	snprintf(b2, sizeof b2, "{\"key\":%s,\"endpoint\":\"GET /x\"}", itest_q(k2.key));
	hammer_setup(h, 16, b1, "per_minute", 5, 20000);
	for (i = 0; i < 16; i += 2)
		h[i].body = b2;
	hammer_run_all(h, 16);
	for (i = 0; i < 16; i++) {
		allowed += h[i].allowed;
		limited += h[i].limited;
		other += h[i].other;
		if (h[i].first_bad[0] && !bad[0])
			bad = h[i].first_bad;
	}
	EXPECT(allowed == 10 && limited == 70,
	       "two keys of one owner, 16 x 5 concurrent checks against 10 per 60 s per owner: "
	       "%d admitted, %d denied per_minute, %d other (first: %s)", allowed, limited, other, bad);
	hammer_free(h, 16);
	for (i = 0; i < 11; i++) {
		check(&r, &k3, "GET /x", NULL);
		ok3 += is_allowed(&r);
		itest_resp_fini(&r);
	}
	EXPECT(ok3 == 10, "a key of another owner: %d of 11 checks admitted, want 10", ok3);
}

#define ACC_THREADS 16
#define ACC_RUN_MS 5000
/* The guarantee is in Redis server time; the test sees the client's receive
 * time, which lags the decision by the response path (script reply, FastCGI,
 * lighttpd, the client), by a different amount for each response. Admissions
 * whose receive times lie within 950 ms were decided within 1000 ms provided
 * no two of those lags differ by 50 ms or more. */
#define ACC_TOLERANCE_MS 50

/* 16 clients for 5 s against 20 per 1 s: no interval of the window's length
 * ever holds more than 20 admitted checks. */
static void test_accuracy(void)
{
	struct hammer h[ACC_THREADS];
	struct itest_key k;
	char body[1024];
	int64_t *all;
	int i, j, n = 0, total = 0, other = 0, limited = 0, most = 0, at = 0;
	const char *bad = "";

	if (!tier_ready(T_ACC) || make_key(&k, tiers[T_ACC], "acc", NULL) != 0)
		return;
	snprintf(body, sizeof body, "{\"key\":%s,\"endpoint\":\"GET /x\"}", itest_q(k.key));
	hammer_setup(h, ACC_THREADS, body, "per_second", 20000, ACC_RUN_MS);
	hammer_run_all(h, ACC_THREADS);

	all = calloc(ACC_THREADS * 4096, sizeof *all);
	if (!all) {
		EXPECT(0, "out of memory");
		hammer_free(h, ACC_THREADS);
		return;
	}
	for (i = 0; i < ACC_THREADS; i++) {
		total += h[i].allowed;
		limited += h[i].limited;
		other += h[i].other;
		if (h[i].first_bad[0] && !bad[0])
			bad = h[i].first_bad;
		for (j = 0; j < h[i].nadmitted; j++)
			all[n++] = h[i].admitted_at[j];
	}
	qsort(all, (size_t)n, sizeof *all, itest_cmp_i64);
	/* The most admissions in any interval of 1000 - tolerance ms. */
	for (i = 0, j = 0; i < n; i++) {
		while (all[i] - all[j] >= 1000 - ACC_TOLERANCE_MS)
			j++;
		if (i - j + 1 > most) {
			most = i - j + 1;
			at = j;
		}
	}
	EXPECT(other == 0, "accuracy: %d answers neither 200 nor 429 rate_limited per_second; "
	       "first: %s", other, bad);
	EXPECT(n == total, "accuracy: %d admissions recorded of %d", n, total);
	EXPECT(most <= ACC_LIMIT, "accuracy: %d checks admitted within %d ms (from client time "
	       "%lld), limit %d per 1 s", most, 1000 - ACC_TOLERANCE_MS,
	       n ? (long long)all[at] : 0LL, ACC_LIMIT);
	EXPECT(total >= 80, "accuracy: only %d admitted in %d ms (%d denied)", total, ACC_RUN_MS,
	       limited);
	free(all);
	hammer_free(h, ACC_THREADS);
}

/* 16 x 50 concurrent checks against 100 per 60 s: exactly 100 admitted. */
static void test_concurrent_exact(void)
{
	struct hammer h[16];
	struct itest_key k;
	char body[1024];
	int i, allowed = 0, limited = 0, other = 0, sent = 0;
	const char *bad = "";

	if (!tier_ready(T_EXACT) || make_key(&k, tiers[T_EXACT], "exact", NULL) != 0)
		return;
	snprintf(body, sizeof body, "{\"key\":%s,\"endpoint\":\"GET /x\"}", itest_q(k.key));
	hammer_setup(h, 16, body, "per_minute", 50, 20000);
	hammer_run_all(h, 16);
	for (i = 0; i < 16; i++) {
		sent += h[i].sent;
		allowed += h[i].allowed;
		limited += h[i].limited;
		other += h[i].other;
		if (h[i].first_bad[0] && !bad[0])
			bad = h[i].first_bad;
	}
	EXPECT(sent == 800, "exact: %d checks sent, want 800", sent);
	EXPECT(allowed == 100, "exact: %d of 800 admitted against 100 per 60 s", allowed);
	EXPECT(limited == 700, "exact: %d answers 429 rate_limited per_minute, want 700; other: "
	       "%d, first: %s", limited, other, bad);
	hammer_free(h, 16);
}

/* 10 per 1 s and 15 per 60 s: each window denies in its turn. */
static void test_two_windows(void)
{
	const struct win *w = w_two;
	struct itest_key k;
	struct itest_resp r;
	int64_t t0, elapsed;
	int i, allowed = 0;

	if (!tier_ready(T_TWO) || make_key(&k, tiers[T_TWO], "two", NULL) != 0)
		return;
	t0 = itest_now_ms();
	for (i = 0; i < 10; i++) {
		check(&r, &k, "GET /x", NULL);
		allowed += is_allowed(&r);
		if (!is_allowed(&r))
			expect_allowed(&r, "two windows, first second");
		itest_resp_fini(&r);
	}
	check(&r, &k, "GET /x", NULL);
	elapsed = itest_now_ms() - t0;
	EXPECT(allowed == 10, "two windows: %d of the first 10 admitted", allowed);
	expect_limited(&r, "rate_limited", "per_second", 1, "11th check in the first second");
	EXPECT(win_int(&r, "per_minute", "remaining") == 5, "per_minute remaining is not 5: %.400s",
	       r.body);
	expect_headers(&r, w, 2);
	itest_resp_fini(&r);
	EXPECT(elapsed < 900, "two windows: 11 sequential checks took %lld ms, the test assumes "
	       "they fit in the first second", (long long)elapsed);

	/* Every bucket of the 1 s window (1.1 s with its sub-buckets) has left. */
	itest_sleep_ms(1200);
	for (i = 0, allowed = 0; i < 5; i++) {
		check(&r, &k, "GET /x", NULL);
		allowed += is_allowed(&r);
		if (!is_allowed(&r))
			expect_allowed(&r, "two windows, after the 1 s window freed");
		itest_resp_fini(&r);
	}
	EXPECT(allowed == 5, "two windows: %d of 5 admitted after the 1 s window freed", allowed);
	check(&r, &k, "GET /x", NULL);
	if (expect_limited(&r, "rate_limited", "per_minute", 1, "16th check")) {
		int64_t ms = 0;

		itest_int(r.json, "retry_after_ms", &ms);
		EXPECT(ms > 1000 && ms <= 66000, "per_minute retry_after_ms %lld", (long long)ms);
	}
	EXPECT(win_int(&r, "per_second", "remaining") == 5,
	       "per_second remaining is not 5: %.400s", r.body);
	expect_headers(&r, w, 2);
	itest_resp_fini(&r);
}

/* Remaining of the single window `name` after a check of cost 1. */
static int64_t remaining_after_check(const struct itest_key *k, const char *name)
{
	struct itest_resp r;
	int64_t rem;

	check(&r, k, "GET /x", NULL);
	expect_allowed(&r, "cost: probe check");
	rem = win_int(&r, name, "remaining");
	itest_resp_fini(&r);
	return rem;
}

static void test_cost(void)
{
	const struct win *w = w_cost;
	static const char *const bad[] = { "0", "-1", "1001", "2.5", "\"3\"" };
	struct itest_key k;
	struct itest_resp r;
	char hv[64];
	int64_t v, rem;
	size_t i;

	if (!tier_ready(T_COST) || make_key(&k, tiers[T_COST], "cost", NULL) != 0)
		return;
	rem = remaining_after_check(&k, "per_minute");
	EXPECT(rem == 9, "first check: remaining %lld", (long long)rem);

	check(&r, &k, "GET /x", "3");
	expect_allowed(&r, "cost 3");
	EXPECT(win_int(&r, "per_minute", "remaining") == 6, "cost 3 after 9 left: %.400s", r.body);
	EXPECT(header_int(&r, "X-RateLimit-Remaining", &v) && v == 6,
	       "cost 3: X-RateLimit-Remaining is not 6");
	expect_headers(&r, w, 1);
	itest_resp_fini(&r);

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		check(&r, &k, "GET /x", bad[i]);
		EXPECT_ERROR_CASE(&r, 400, "invalid_argument", "cost", bad[i]);
		itest_resp_fini(&r);
	}
	rem = remaining_after_check(&k, "per_minute");
	EXPECT(rem == 5, "refused costs consumed something: remaining %lld, want 5",
	       (long long)rem);

	/* More than what is left: denied whole, nothing consumed. */
	check(&r, &k, "GET /x", "6");
	expect_limited(&r, "rate_limited", "per_minute", 1, "cost 6 with 5 left");
	EXPECT(win_int(&r, "per_minute", "remaining") == 5, "cost 6 denied: %.400s", r.body);
	expect_headers(&r, w, 1);
	itest_resp_fini(&r);
	rem = remaining_after_check(&k, "per_minute");
	EXPECT(rem == 4, "a denied cost 6 consumed something: remaining %lld, want 4",
	       (long long)rem);

	/* More than the limit: can never fit, so no retry time. */
	check(&r, &k, "GET /x", "11");
	expect_limited(&r, "rate_limited", "per_minute", 0, "cost 11 over a limit of 10");
	EXPECT(!itest_header(&r, "Retry-After", hv, sizeof hv),
	       "cost over the limit has Retry-After \"%s\"", hv);
	expect_headers(&r, w, 1);
	itest_resp_fini(&r);
	rem = remaining_after_check(&k, "per_minute");
	EXPECT(rem == 3, "a denied cost 11 consumed something: remaining %lld, want 3",
	       (long long)rem);
}

/* 5 per 1 s, precision 10: retry and reset times around the boundary. */
static void test_boundary(void)
{
	const struct win *w = w_edge;
	struct itest_key k;
	struct itest_resp r;
	int64_t retry = 0, v, reset;
	int i;

	if (!tier_ready(T_EDGE) || make_key(&k, tiers[T_EDGE], "edge", NULL) != 0)
		return;
	/* A cost that can never fit is denied and consumes nothing: the window
	 * it reports is still empty. */
	check(&r, &k, "GET /x", "6");
	expect_limited(&r, "rate_limited", "burst", 0, "cost 6 on a fresh key");
	EXPECT(win_int(&r, "burst", "reset_ms") == 0 && win_int(&r, "burst", "remaining") == 5,
	       "empty window: want reset_ms 0, remaining 5: %.400s", r.body);
	expect_headers(&r, w, 1);
	itest_resp_fini(&r);

	for (i = 0; i < 5; i++) {
		check(&r, &k, "GET /x", NULL);
		expect_allowed(&r, "boundary: one of the first 5");
		if (i == 0) {
			reset = win_int(&r, "burst", "reset_ms");
			EXPECT(reset > 1000 && reset <= 1100,
			       "reset_ms after one check is %lld, want (1000, 1100]", (long long)reset);
		}
		itest_resp_fini(&r);
	}
	check(&r, &k, "GET /x", NULL);
	if (expect_limited(&r, "rate_limited", "burst", 1, "6th check")) {
		itest_int(r.json, "retry_after_ms", &retry);
		EXPECT(retry > 0 && retry <= 1100, "retry_after_ms %lld, want (0, 1100]",
		       (long long)retry);
		EXPECT(header_int(&r, "Retry-After", &v) && v == ceil_s(retry),
		       "Retry-After is not ceil(%lld / 1000)", (long long)retry);
	}
	expect_headers(&r, w, 1);
	itest_resp_fini(&r);
	if (retry <= 0 || retry > 1100)
		return;
	itest_sleep_ms(retry + 20);
	check(&r, &k, "GET /x", NULL);
	expect_allowed(&r, "check after retry_after_ms");
	itest_resp_fini(&r);
}

/* The headers follow the tightest window as it changes. */
static void test_headers(void)
{
	const struct win *w = w_hdr, *tie = w_tie;
	static const char *const want[] = { "burst", "burst", "burst", "burst", "burst",
					    "hourly", "hourly", "hourly" };
	struct itest_key k, k2;
	struct itest_resp r;
	const char *got;
	int i;

	if (!tier_ready(T_HDR) || !tier_ready(T_TIE) ||
	    make_key(&k, tiers[T_HDR], "hdr", NULL) != 0 ||
	    make_key(&k2, tiers[T_TIE], "hdrtie", NULL) != 0)
		return;
	/* Checks 1-4 are admitted (burst is the tightest), the 5th is denied by
	 * burst; 1.2 s later burst has room again and hourly (6 per hour) is
	 * the tightest: checks 6 and 7 are admitted, the 8th is denied by it. */
	for (i = 0; i < 8; i++) {
		if (i == 5)
			itest_sleep_ms(1200);
		check(&r, &k, "GET /x", NULL);
		if (i == 4)
			expect_limited(&r, "rate_limited", "burst", 1, "5th check");
		else if (i == 7)
			expect_limited(&r, "rate_limited", "hourly", 1, "8th check");
		else
			expect_allowed(&r, "headers");
		got = expect_headers(&r, w, 3);
		EXPECT(got && strcmp(got, want[i]) == 0,
		       "check %d: RateLimit names %s, want %s: %.400s", i + 1, got ? got : "(none)",
		       want[i], r.body);
		itest_resp_fini(&r);
	}
	/* Equal remaining: the soonest reset wins, whatever the order. */
	check(&r, &k2, "GET /x", NULL);
	expect_allowed(&r, "tie");
	got = expect_headers(&r, tie, 2);
	EXPECT(got && strcmp(got, "fast") == 0, "tie: RateLimit names %s, want fast: %.400s",
	       got ? got : "(none)", r.body);
	itest_resp_fini(&r);
}

/* The names of the answer's windows, as "a,b" in listed order. */
static const char *window_names(const struct itest_resp *r, char *buf, size_t size)
{
	json_object *l = itest_get(r->json, "limits");
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < itest_len(l) && o < size; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? "," : "",
				      itest_str(itest_idx(l, i), "name") ?
					      itest_str(itest_idx(l, i), "name") : "?");
	return buf;
}

/* k's search window (POST /v1/search*) is full: every spelling of a search
 * endpoint is that endpoint, and one with no single meaning is refused. */
static void scoped_spellings(const struct itest_key *k)
{
	static const char *const spellings[] = {
		"POST /v1//search/x", "POST /v1/x/../search/x", "POST /%761/search",
		"POST /v1/./search", "POST /v1/%73earch?q=1", "POST //v1/search/%2e/x",
	};
	static char body[3000], ep[1200];
	struct itest_resp r;
	size_t i;

	for (i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
		check(&r, k, spellings[i], NULL);
		expect_limited(&r, "rate_limited", "search", 1, spellings[i]);
		itest_resp_fini(&r);
	}
	check(&r, k, "POST /v1%2Fsearch", NULL);
	EXPECT_ERROR_CASE(&r, 400, "invalid_argument", "endpoint", "an escaped slash");
	itest_resp_fini(&r);
	check(&r, k, "POST /v1/%zz", NULL);
	EXPECT_ERROR_CASE(&r, 400, "invalid_argument", "endpoint", "a broken escape");
	itest_resp_fini(&r);
	/* longer than a normal endpoint may be: refused, never cut or widened */
	memcpy(ep, "POST /v1/search/", 16);
	memset(ep + 16, 'a', 1100);
	ep[1116] = '\0';
	snprintf(body, sizeof body, "{\"key\":%s,\"endpoint\":%s}", itest_q(k->key), itest_q(ep));
	itest_call(&r, "POST", "/v1/check", service.token, body);
	EXPECT_ERROR_CASE(&r, 400, "invalid_argument", "endpoint", "an endpoint of 1,116 bytes");
	itest_resp_fini(&r);
}

static void test_scoped(void)
{
	const struct win *w = w_scoped;
	struct itest_key k;
	struct itest_resp r;
	char names[256];
	int i;

	if (!tier_ready(T_SCOPED) || make_key(&k, tiers[T_SCOPED], "scoped", NULL) != 0)
		return;
	/* Other endpoints, and no endpoint: only the unscoped window, and
	 * nothing counted against search. */
	for (i = 0; i < 4; i++) {
		check(&r, &k, i % 2 ? NULL : "GET /v1/other", NULL);
		expect_allowed(&r, i % 2 ? "no endpoint" : "GET /v1/other");
		EXPECT(strcmp(window_names(&r, names, sizeof names), "per_second") == 0,
		       "%s: windows %s, want per_second only", i % 2 ? "no endpoint" : "GET /v1/other",
		       names);
		expect_headers(&r, w, 2);
		itest_resp_fini(&r);
	}
	for (i = 0; i < 4; i++) {
		check(&r, &k, "POST /v1/search/x", NULL);
		if (i < 3) {
			expect_allowed(&r, "POST /v1/search/x");
			EXPECT(win_int(&r, "search", "remaining") == 2 - i,
			       "search check %d: want search remaining %d: %.400s", i + 1, 2 - i, r.body);
		} else {
			expect_limited(&r, "rate_limited", "search", 1, "4th search check");
		}
		EXPECT(itest_len(itest_get(r.json, "limits")) == 2 &&
		       itest_find_named(r.json, "limits", "search") &&
		       itest_find_named(r.json, "limits", "per_second"),
		       "search check: want both windows: %.400s", r.body);
		expect_headers(&r, w, 2);
		itest_resp_fini(&r);
	}
	/* search is full; the other endpoints still pass. */
	check(&r, &k, "GET /v1/other", NULL);
	expect_allowed(&r, "GET /v1/other with search full");
	itest_resp_fini(&r);
	check(&r, &k, NULL, NULL);
	expect_allowed(&r, "no endpoint with search full");
	itest_resp_fini(&r);
	scoped_spellings(&k);
}

/* "name":..., "window_s":60, "limit":lim objects named prefix0.. into out. */
static void limit_list(char *out, size_t size, const char *prefix, int from, int n, int lim)
{
	size_t o = 0;
	int i;

	out[0] = '\0';
	for (i = from; i < from + n && o < size; i++)
		o += (size_t)snprintf(out + o, size - o,
				      "%s{\"name\":\"%s%d\",\"window_s\":60,\"limit\":%d}",
				      i > from ? "," : "", prefix, i, lim);
}

/* A key's tier limits merged with its overrides are at most 16 windows,
 * refused (400 naming limits) by every write that would exceed them -- key
 * create and patch, tier patch -- and every one of the 16 is enforced. */
static void test_window_bound(void)
{
	struct itest_key k, k2;
	struct itest_resp r;
	char tier[40], body[4096], list[3000], extra[3200], path[256];

	limit_list(list, sizeof list, "t", 0, 10, 1000);
	snprintf(tier, sizeof tier, "it%s-bound", itest_suffix());
	snprintf(body, sizeof body, "{\"name\":%s,\"limits\":[%s]}", itest_q(tier), list);
	itest_call(&r, "POST", "/v1/tiers", itest_admin_token(), body);
	if (!EXPECT_STATUS(&r, 201)) {
		itest_resp_fini(&r);
		return;
	}
	itest_resp_fini(&r);

	/* 10 + 6 = 16: accepted, and the 16th (k5, 1 per minute) holds. */
	limit_list(list, sizeof list, "k", 0, 5, 1000);
	snprintf(extra, sizeof extra, "\"limits\":[%s,{\"name\":\"k5\",\"window_s\":60,"
		 "\"limit\":1}]", list);
	if (make_key(&k, tier, "bound", extra) != 0)
		return;
	check(&r, &k, NULL, NULL);
	expect_allowed(&r, "first check of a key with 16 windows");
	EXPECT(itest_len(itest_get(r.json, "limits")) == 16, "want 16 windows: %.300s", r.body);
	itest_resp_fini(&r);
	check(&r, &k, NULL, NULL);
	expect_limited(&r, "rate_limited", "k5", 1, "second check against the 16th window");
	itest_resp_fini(&r);

	/* 10 + 7 = 17: refused at create. */
	limit_list(list, sizeof list, "k", 0, 7, 1000);
	snprintf(body, sizeof body, "{\"owner_id\":\"acct_it%s_limits_bound2\",\"tier\":%s,"
		 "\"limits\":[%s]}", itest_suffix(), itest_q(tier), list);
	itest_call(&r, "POST", "/v1/keys", itest_admin_token(), body);
	EXPECT_ERROR_CASE(&r, 400, "invalid_argument", "limits", "17 merged windows at create");
	itest_resp_fini(&r);
	/* Overrides of the tier's own names do not add windows: 10 + 6 again. */
	limit_list(list, sizeof list, "t", 0, 4, 5);
	snprintf(extra, sizeof extra, "\"limits\":[%s,", list);
	limit_list(list, sizeof list, "k", 0, 6, 1000);
	snprintf(extra + strlen(extra), sizeof extra - strlen(extra), "%s]", list);
	if (make_key(&k2, tier, "bound3", extra) != 0)
		return;
	/* ... and refused at patch. */
	limit_list(list, sizeof list, "k", 0, 7, 1000);
	snprintf(body, sizeof body, "{\"limits\":[%s]}", list);
	snprintf(path, sizeof path, "/v1/keys/%s", k.id);
	itest_call(&r, "PATCH", path, itest_admin_token(), body);
	EXPECT_ERROR_CASE(&r, 400, "invalid_argument", "limits", "17 merged windows at patch");
	itest_resp_fini(&r);
	/* A tier change that would give a key 17 windows is refused, and the tier
	 * keeps its 10. */
	limit_list(list, sizeof list, "t", 0, 11, 1000);
	snprintf(body, sizeof body, "{\"limits\":[%s]}", list);
	snprintf(path, sizeof path, "/v1/tiers/%s", tier);
	itest_call(&r, "PATCH", path, itest_admin_token(), body);
	EXPECT_ERROR_CASE(&r, 400, "invalid_argument", "limits", "a tier change to 17 merged windows");
	itest_resp_fini(&r);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT(r.status == 200 && itest_len(itest_get(r.json, "limits")) == 10,
	       "the refused change altered the tier: %.300s", r.body);
	itest_resp_fini(&r);
}

/* Milliseconds from `now` (Unix ms) to the start of the next UTC month. */
static int64_t ms_to_month_end(int64_t now)
{
	time_t sec = (time_t)(now / 1000);
	struct tm tm;
	int64_t y, m, era, yoe, doy, doe, days;

	gmtime_r(&sec, &tm);
	y = tm.tm_year + 1900;
	m = tm.tm_mon + 2;	/* next month, 1-based */
	if (m > 12) {
		m = 1;
		y++;
	}
	/* Days from the civil date y-m-01 to 1970-01-01. */
	if (m <= 2)
		y--;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	days = era * 146097 + doe - 719468;
	return days * 86400000 - now;
}

static void test_quota(void)
{
	const struct win *w = w_big;
	struct itest_key kb, kk;
	struct itest_resp r;
	char hv[512] = "";
	int64_t retry = 0, want, v;
	int i;

	if (!tier_ready(T_QBLOCK) || !tier_ready(T_QBILL) ||
	    make_key(&kb, tiers[T_QBLOCK], "qblock", NULL) != 0 ||
	    make_key(&kk, tiers[T_QBILL], "qbill", NULL) != 0)
		return;
	for (i = 0; i < 3; i++) {
		check(&r, &kb, "GET /x", NULL);
		expect_allowed(&r, "quota block, within the quota");
		expect_headers(&r, w, 1);
		itest_resp_fini(&r);
	}
	check(&r, &kb, "GET /x", NULL);
	want = ms_to_month_end(realtime_ms());
	if (expect_limited(&r, "quota_exceeded", "quota", 1, "4th check, quota 3, block")) {
		itest_int(r.json, "retry_after_ms", &retry);
		EXPECT(retry >= want - 5000 && retry <= want + 5000,
		       "quota retry_after_ms %lld, want the end of the UTC month in %lld ms (+-5 s)",
		       (long long)retry, (long long)want);
		EXPECT(header_int(&r, "Retry-After", &v) && v == ceil_s(retry),
		       "quota: Retry-After is not ceil(%lld / 1000)", (long long)retry);
	}
	/* The quota is no RateLimit-Policy item: the policy holds "big" only. */
	EXPECT(itest_header(&r, "RateLimit-Policy", hv, sizeof hv) && !strstr(hv, "quota"),
	       "quota in RateLimit-Policy: %s", hv);
	expect_headers(&r, w, 1);
	itest_resp_fini(&r);

	for (i = 0; i < 5; i++) {
		check(&r, &kk, "GET /x", NULL);
		expect_allowed(&r, i < 3 ? "quota bill, within the quota" : "quota bill, overage");
		itest_resp_fini(&r);
	}
}

static void test_remaining(void)
{
	const struct win *w = w_big;
	struct itest_key k;
	struct itest_resp r;
	char hv[64];
	int64_t rem;
	int i;

	if (!tier_ready(T_CREDITS) ||
	    make_key(&k, tiers[T_CREDITS], "credits", "\"remaining\":2") != 0)
		return;
	for (i = 0; i < 2; i++) {
		check(&r, &k, "GET /x", NULL);
		expect_allowed(&r, "remaining credits");
		EXPECT(itest_int(r.json, "remaining", &rem) && rem == 1 - i,
		       "check %d: want remaining %d: %.400s", i + 1, 1 - i, r.body);
		itest_resp_fini(&r);
	}
	check(&r, &k, "GET /x", NULL);
	expect_limited(&r, "quota_exceeded", "remaining", 0, "no credits left");
	EXPECT(!itest_header(&r, "Retry-After", hv, sizeof hv),
	       "no credits left: Retry-After \"%s\"", hv);
	EXPECT(itest_int(r.json, "remaining", &rem) && rem == 0, "no credits left: %.400s", r.body);
	expect_headers(&r, w, 1);
	itest_resp_fini(&r);

	if (itest_key_patch(k.id, "{\"remaining\":5}") != 0)
		return;
	check(&r, &k, "GET /x", NULL);
	expect_allowed(&r, "after PATCH remaining 5");
	EXPECT(itest_int(r.json, "remaining", &rem) && rem == 4,
	       "after PATCH remaining 5: want remaining 4: %.400s", r.body);
	itest_resp_fini(&r);
}

/* A smaller limit reaches every responder within 1 s, and the window keeps
 * its count (same name and window_s). */
static void test_change(void)
{
	struct itest_key k;
	struct itest_resp r;
	int64_t t0, lim, rem, elapsed;
	int i, old = 0, fresh = 0;

	if (!tier_ready(T_CHANGE) || make_key(&k, tiers[T_CHANGE], "change", NULL) != 0)
		return;
	/* Warm the record caches of every responder process. */
	for (i = 0; i < 20; i++) {
		check(&r, &k, "GET /x", NULL);
		old += is_allowed(&r) && win_int(&r, "per_min", "limit") == 1000;
		itest_resp_fini(&r);
	}
	EXPECT(old == 20, "change: %d of 20 warm-up checks saw limit 1000", old);
	if (itest_key_patch(k.id, "{\"limits\":[{\"name\":\"per_min\",\"window_s\":60,"
			    "\"limit\":50}]}") != 0)
		return;
	t0 = itest_now_ms();
	for (i = 0; i < 20 && itest_now_ms() - t0 < 1000; i++) {
		check(&r, &k, "GET /x", NULL);
		lim = win_int(&r, "per_min", "limit");
		rem = win_int(&r, "per_min", "remaining");
		if (is_allowed(&r) && lim == 50 && rem == 50 - 21 - i)
			fresh++;
		else
			EXPECT(0, "change: check %d after the PATCH: want limit 50 remaining %d: "
			       "%.400s", i + 1, 50 - 21 - i, r.body);
		itest_resp_fini(&r);
	}
	elapsed = itest_now_ms() - t0;
	EXPECT(fresh == 20, "change: %d checks within %lld ms of the PATCH saw the new limit, "
	       "want 20", fresh, (long long)elapsed);
}

/* GET /v1/keys/{id}/usage/live agrees with the last check. */
static void test_live(void)
{
	const struct win *w = w_live;
	struct itest_key k;
	struct itest_resp r, last;
	char path[256];
	json_object *data;
	int64_t t_last, v;
	size_t i;
	int j;

	if (!tier_ready(T_LIVE) || make_key(&k, tiers[T_LIVE], "live", "\"remaining\":10") != 0)
		return;
	snprintf(path, sizeof path, "/v1/keys/%s", k.id);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	EXPECT_STATUS(&r, 200);
	itest_resp_fini(&r);
	snprintf(path, sizeof path, "/v1/keys/%s/usage/live", k.id);
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	if (r.status == 404 && itest_str(r.json, "error.code") &&
	    strcmp(itest_str(r.json, "error.code"), "not_found") == 0) {
		/* The key exists (above): the 404 is for the route. */
		printf("\n    (usage/live is not served yet: skipped) ");
		CU_PASS("GET /v1/keys/{id}/usage/live is not served yet; skipped");
		itest_resp_fini(&r);
		return;
	}
	itest_resp_fini(&r);

	for (j = 0; j < 3; j++) {
		check(&last, &k, "POST /v1/search/q", NULL);
		expect_allowed(&last, "live: check");
		if (j < 2)
			itest_resp_fini(&last);
	}
	t_last = itest_now_ms();
	itest_call(&r, "GET", path, itest_admin_token(), NULL);
	data = itest_get(r.json, "data");
	if (EXPECT_STATUS(&r, 200) &&
	    EXPECT(itest_len(data) == 3, "live: want 3 windows: %.400s", r.body)) {
		int64_t slack = itest_now_ms() - t_last + 20;

		for (i = 0; i < 3; i++) {
			json_object *x = itest_find_named(r.json, "data", w[i].name);
			int64_t used = -1, rem = -1, reset = -1, ws = -1, lim = -1;
			int64_t crem = win_int(&last, w[i].name, "remaining");
			int64_t creset = win_int(&last, w[i].name, "reset_ms");

			EXPECT(x && itest_int(x, "used", &used) && itest_int(x, "remaining", &rem) &&
			       itest_int(x, "reset_ms", &reset) && itest_int(x, "window_s", &ws) &&
			       itest_int(x, "limit", &lim) && ws == w[i].window_s &&
			       lim == w[i].limit && used == w[i].limit - crem && rem == crem &&
			       reset <= creset && reset >= creset - slack &&
			       (w[i].endpoint ? itest_str(x, "endpoint") &&
				strcmp(itest_str(x, "endpoint"), w[i].endpoint) == 0
					      : !itest_str(x, "endpoint")),
			       "live: window %s does not match the last check %.300s: %.400s",
			       w[i].name, last.body, r.body);
		}
		EXPECT(itest_int(r.json, "quota.used", &v) && v == 3 &&
		       itest_int(r.json, "quota.included", &v) && v == 1000,
		       "live: want quota {used 3, included 1000}: %.400s", r.body);
		EXPECT(itest_int(r.json, "remaining", &v) && v == 7, "live: want remaining 7: %.400s",
		       r.body);
	}
	itest_resp_fini(&r);
	itest_resp_fini(&last);
}

int itest_register_limits(void)
{
	CU_pSuite s = CU_add_suite("limits", suite_init, suite_clean);

	if (!s ||
	    !CU_add_test(s, "a new tier limits from the first check", test_new_tier) ||
	    !CU_add_test(s, "sliding window holds under 16 clients", test_accuracy) ||
	    !CU_add_test(s, "16 x 50 concurrent checks admit exactly 100", test_concurrent_exact) ||
	    !CU_add_test(s, "two windows deny in turn", test_two_windows) ||
	    !CU_add_test(s, "cost: consumption and validation", test_cost) ||
	    !CU_add_test(s, "retry and reset at the boundary", test_boundary) ||
	    !CU_add_test(s, "RateLimit headers name the tightest window", test_headers) ||
	    !CU_add_test(s, "endpoint-scoped limits", test_scoped) ||
	    !CU_add_test(s, "at most 16 windows, every one enforced", test_window_bound) ||
	    !CU_add_test(s, "period quota, block and bill", test_quota) ||
	    !CU_add_test(s, "remaining credits", test_remaining) ||
	    !CU_add_test(s, "a limit change applies within 1 s", test_change) ||
	    !CU_add_test(s, "usage/live agrees with the check", test_live) ||
	    !CU_add_test(s, "a window shared by an owner's keys", test_per_owner))
		return -1;
	return 0;
}
