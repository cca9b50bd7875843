/*
 * itest_http.c - HTTP client and JSON helpers for the integration suite.
 */
#define _POSIX_C_SOURCE 200809L

#include "itest_http.h"
#include "itest_record.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

/* Every answer the suite expects is small; a runaway body is cut here. */
#define ITEST_MAX_BODY (4u * 1024u * 1024u)

/* The client's state for the whole run. */
static struct {
	CURL *curl;
	char url[512];
	char admin_token[512];
	char secrets_path[1024];
	char suffix[16];
} itest;

struct buf {
	char *p;
	size_t len;
	size_t cap;
};

static void buf_append(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p) {
			fputs("itest: out of memory\n", stderr);
			abort();
		}
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

int itest_init(void)
{
	const char *url = getenv("TOLLGATE_URL");
	const char *tok = getenv("TOLLGATE_ADMIN_TOKEN");
	const char *run = getenv("TOLLGATE_RUN_DIR");
	struct timespec ts;
	size_t n;

	if (!url || !*url || !tok || !*tok || !run || !*run) {
		fputs("itest: TOLLGATE_URL, TOLLGATE_ADMIN_TOKEN and TOLLGATE_RUN_DIR "
		      "must be set\n", stderr);
		return -1;
	}
	if (strlen(url) >= sizeof itest.url || strlen(tok) >= sizeof itest.admin_token ||
	    strlen(run) + 32 >= sizeof itest.secrets_path) {
		fputs("itest: an environment value is too long\n", stderr);
		return -1;
	}
	strcpy(itest.url, url);
	n = strlen(itest.url);
	while (n > 0 && itest.url[n - 1] == '/')
		itest.url[--n] = '\0';
	strcpy(itest.admin_token, tok);
	snprintf(itest.secrets_path, sizeof itest.secrets_path, "%s/itest-secrets.txt", run);

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(itest.suffix, sizeof itest.suffix, "%08lx%04x",
		 (unsigned long)ts.tv_sec & 0xffffffffUL,
		 (unsigned)((ts.tv_nsec / 1000) ^ getpid()) & 0xffffu);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	itest.curl = curl_easy_init();
	if (!itest.curl) {
		curl_global_cleanup();
		return -1;
	}
	itest_record_secret(itest.admin_token);
	return 0;
}

void itest_fini(void)
{
	if (itest.curl) {
		curl_easy_cleanup(itest.curl);
		itest.curl = NULL;
		curl_global_cleanup();
	}
}

const char *itest_admin_token(void)
{
	return itest.admin_token;
}

const char *itest_suffix(void)
{
	return itest.suffix;
}

void itest_record_secret(const char *secret)
{
	FILE *f;

	if (!secret || !*secret)
		return;
	f = fopen(itest.secrets_path, "a");
	if (!f) {
		fprintf(stderr, "itest: cannot append to %s: %s\n", itest.secrets_path,
			strerror(errno));
		return;
	}
	fprintf(f, "%s\n", secret);
	fclose(f);
}

void itest_tls(void *curl)
{
	const char *ca = getenv("TOLLGATE_CA_FILE");

	if (ca && *ca)
		curl_easy_setopt((CURL *)curl, CURLOPT_CAINFO, ca);
}

void itest_metrics(struct itest_resp *r)
{
	const char *url = getenv("TOLLGATE_METRICS_URL");

	if (!url || !*url) {
		memset(r, 0, sizeof *r);
		snprintf(r->what, sizeof r->what, "GET /metrics: TOLLGATE_METRICS_URL is not set");
		return;
	}
	itest_call(r, "GET", url, NULL, NULL);
}

/* ---- transfer ---- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;
	size_t n = size * nmemb;

	if (b->len + n > ITEST_MAX_BODY)
		return 0;
	buf_append(b, p, n);
	return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;
	size_t n = size * nmemb;

	/* A status line starts a new response (e.g. after 100 Continue). */
	if (n >= 5 && memcmp(p, "HTTP/", 5) == 0)
		b->len = 0;
	buf_append(b, p, n);
	return n;
}

/* Records the plaintext secrets an answer carries. */
static void record_secrets(const struct itest_resp *r)
{
	const char *s;

	if (r->status < 200 || r->status > 299 || !r->json)
		return;
	s = itest_str(r->json, "key");
	if (s)
		itest_record_secret(s);
	s = itest_str(r->json, "token");
	if (s)
		itest_record_secret(s);
}

static void parse_body(struct itest_resp *r)
{
	json_tokener *tok;
	json_object *o;

	if (r->body_len == 0)
		return;
	tok = json_tokener_new_ex(64);
	if (!tok)
		return;
	o = json_tokener_parse_ex(tok, r->body, (int)r->body_len);
	if (o && json_tokener_get_error(tok) == json_tokener_success &&
	    json_tokener_get_parse_end(tok) == r->body_len)
		r->json = o;
	else
		json_object_put(o);
	json_tokener_free(tok);
}

void itest_send(struct itest_resp *r, const struct itest_req *q)
{
	struct curl_slist *hl = NULL;
	struct buf body = {0}, head = {0};
	char line[1024], url[4096];
	CURL *c = itest.curl;
	CURLcode rc;
	size_t i;

	memset(r, 0, sizeof *r);
	snprintf(r->what, sizeof r->what, "%s %s", q->method, q->path);
	if (strncmp(q->path, "https://", 8) == 0 || strncmp(q->path, "http://", 7) == 0)
		snprintf(url, sizeof url, "%s", q->path);
	else
		snprintf(url, sizeof url, "%s%s", itest.url, q->path);

	curl_easy_reset(c);
	itest_tls(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	/* paths go out exactly as written: tests send unusual spellings on purpose */
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &head);

	if (q->body) {
		size_t len = q->body_len ? q->body_len : strlen(q->body);

		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
		if (!q->content_type)
			hl = curl_slist_append(hl, "Content-Type: application/json");
		else if (!*q->content_type)
			hl = curl_slist_append(hl, "Content-Type:");
		else {
			snprintf(line, sizeof line, "Content-Type: %s", q->content_type);
			hl = curl_slist_append(hl, line);
		}
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
	hl = curl_slist_append(hl, "Expect:");
	hl = curl_slist_append(hl, "Accept: application/json");
	if (q->token) {
		snprintf(line, sizeof line, "Authorization: Bearer %s", q->token);
		hl = curl_slist_append(hl, line);
	}
	for (i = 0; q->headers && q->headers[i] && i < 32; i++)
		hl = curl_slist_append(hl, q->headers[i]);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);

	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	else
		fprintf(stderr, "itest: %s: %s\n", r->what, curl_easy_strerror(rc));
	curl_slist_free_all(hl);

	if (!body.p)
		buf_append(&body, "", 0);
	if (!head.p)
		buf_append(&head, "", 0);
	r->body = body.p;
	r->body_len = body.len;
	r->headers = head.p;
	parse_body(r);
	/* Failure messages quote the body on one line. */
	while (r->body_len > 0 &&
	       (r->body[r->body_len - 1] == '\n' || r->body[r->body_len - 1] == '\r'))
		r->body[--r->body_len] = '\0';
	record_secrets(r);
	if (!itest_header(r, "Content-Type", line, sizeof line))
		line[0] = '\0';
	itest_record_answer(itest.url, q->method, q->path, r->status, line, r->body,
			    r->body_len);
}

void itest_call(struct itest_resp *r, const char *method, const char *path,
		const char *token, const char *body)
{
	struct itest_req q = {
		.method = method, .path = path, .token = token, .body = body,
	};

	itest_send(r, &q);
}

void itest_resp_fini(struct itest_resp *r)
{
	json_object_put(r->json);
	free(r->body);
	free(r->headers);
	memset(r, 0, sizeof *r);
}

const char *itest_header(const struct itest_resp *r, const char *name, char *buf,
			 size_t n)
{
	size_t nl = strlen(name);
	const char *p = r->headers;

	while (p && *p) {
		const char *eol = strchr(p, '\n');
		const char *end = eol ? eol : p + strlen(p);

		if ((size_t)(end - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			size_t len;

			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			len = (size_t)(end - v);
			while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == ' '))
				len--;
			if (len >= n)
				len = n - 1;
			memcpy(buf, v, len);
			buf[len] = '\0';
			return buf;
		}
		p = eol ? eol + 1 : end;
	}
	return NULL;
}

/* ---- JSON helpers ---- */

json_object *itest_get(json_object *o, const char *path)
{
	char part[128];

	while (o && path && *path) {
		const char *dot = strchr(path, '.');
		size_t len = dot ? (size_t)(dot - path) : strlen(path);

		if (len >= sizeof part || !json_object_is_type(o, json_type_object))
			return NULL;
		memcpy(part, path, len);
		part[len] = '\0';
		if (!json_object_object_get_ex(o, part, &o))
			return NULL;
		path = dot ? dot + 1 : NULL;
	}
	return o;
}

int itest_has(json_object *o, const char *path)
{
	const char *dot = strrchr(path, '.');
	json_object *parent = o;

	if (dot) {
		char head[256];
		size_t len = (size_t)(dot - path);

		if (len >= sizeof head)
			return 0;
		memcpy(head, path, len);
		head[len] = '\0';
		parent = itest_get(o, head);
		path = dot + 1;
	}
	return parent && json_object_is_type(parent, json_type_object) &&
	       json_object_object_get_ex(parent, path, NULL);
}

const char *itest_str(json_object *o, const char *path)
{
	json_object *v = itest_get(o, path);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
							      : NULL;
}

int itest_is_null(json_object *o, const char *path)
{
	return o && itest_has(o, path) && itest_get(o, path) == NULL;
}

int itest_int(json_object *o, const char *path, int64_t *out)
{
	json_object *v = itest_get(o, path);

	if (!v || !json_object_is_type(v, json_type_int))
		return 0;
	*out = json_object_get_int64(v);
	return 1;
}

size_t itest_len(json_object *a)
{
	return json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

json_object *itest_idx(json_object *a, size_t i)
{
	return i < itest_len(a) ? json_object_array_get_idx(a, i) : NULL;
}

size_t itest_nmembers(json_object *o)
{
	return json_object_is_type(o, json_type_object) ? (size_t)json_object_object_length(o) : 0;
}

json_object *itest_find_named(json_object *o, const char *path, const char *name)
{
	json_object *a = itest_get(o, path);
	size_t i, n;

	if (!a || !json_object_is_type(a, json_type_array))
		return NULL;
	n = json_object_array_length(a);
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(a, i);
		const char *s = itest_str(e, "name");

		if (s && strcmp(s, name) == 0)
			return e;
	}
	return NULL;
}

json_object *itest_find_id(json_object *o, const char *id)
{
	json_object *a = itest_get(o, "data");
	size_t i, n;

	if (!a || !json_object_is_type(a, json_type_array))
		return NULL;
	n = json_object_array_length(a);
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(a, i);
		const char *s = itest_str(e, "id");

		if (s && strcmp(s, id) == 0)
			return e;
	}
	return NULL;
}

const char *itest_secret_member(json_object *o)
{
	if (!o || !json_object_is_type(o, json_type_object))
		return NULL;
	json_object_object_foreach(o, name, val) {
		(void)val;
		if (strcmp(name, "key") == 0 || strcmp(name, "token") == 0 ||
		    strstr(name, "hash") || strstr(name, "secret"))
			return name;
	}
	return NULL;
}

const char *itest_q(const char *s)
{
	static char ring[16][4096];
	static unsigned next;
	char *out = ring[next++ % 16];
	size_t o = 0;
	const unsigned char *p;

	out[o++] = '"';
	for (p = (const unsigned char *)s; *p && o < sizeof ring[0] - 8; p++) {
		if (*p == '"' || *p == '\\') {
			out[o++] = '\\';
			out[o++] = (char)*p;
		} else if (*p < 0x20) {
			o += (size_t)snprintf(out + o, 7, "\\u%04x", *p);
		} else {
			out[o++] = (char)*p;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

const char *itest_escape(const char *s, char *buf, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	size_t o = 0;

	for (p = (const unsigned char *)s; *p && o + 4 < n; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			buf[o++] = (char)*p;
		} else {
			buf[o++] = '%';
			buf[o++] = hex[*p >> 4];
			buf[o++] = hex[*p & 15];
		}
	}
	buf[o] = '\0';
	return buf;
}

int itest_is_time(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	size_t i;

	if (!s || strlen(s) != sizeof shape - 1)
		return 0;
	for (i = 0; shape[i]; i++) {
		if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
			return 0;
	}
	return 1;
}

void itest_time(char *buf, size_t n, int64_t offset_ms)
{
	struct timespec ts;
	struct tm tm;
	int64_t ms;
	time_t sec;
	char day[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + offset_ms;
	sec = (time_t)(ms / 1000);
	gmtime_r(&sec, &tm);
	strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, n, "%s.%03dZ", day, (int)(ms % 1000));
}

int64_t itest_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void itest_sleep_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	int i;

	/* Resume after signals, a bounded number of times. */
	for (i = 0; i < 100 && nanosleep(&ts, &ts) != 0 && errno == EINTR; i++)
		;
}

void itest_unknown_id(const char *real, char *out, size_t n)
{
	size_t len, i;
	int changed = 0;

	snprintf(out, n, "%s", real);
	len = strlen(out);
	for (i = len; i > 0 && changed < 6; i--) {
		char *c = &out[i - 1];

		if (isdigit((unsigned char)*c))
			*c = *c == '7' ? '3' : '7';
		else if (islower((unsigned char)*c))
			*c = *c == 'a' ? 'b' : 'a';
		else if (isupper((unsigned char)*c))
			*c = *c == 'Q' ? 'R' : 'Q';
		else
			continue;
		changed++;
	}
}
