/*
 * itest_http.h - HTTP client and JSON helpers for the integration suite.
 *
 * The suite talks to a running Tollgate stack over HTTP, exactly as a client
 * would. Configuration comes from the environment:
 *   TOLLGATE_URL          base URL, e.g. http://127.0.0.1:58080
 *   TOLLGATE_ADMIN_TOKEN  an admin-role token
 *   TOLLGATE_RUN_DIR      directory where itest-secrets.txt is appended to
 *
 * Every plaintext secret a response carries (`key`, `token`) is appended to
 * $TOLLGATE_RUN_DIR/itest-secrets.txt, one per line, so that the caller can
 * check that none of them leaks into logs or database dumps.
 *
 * One request is in flight at a time; the helpers are not thread-safe.
 */
#ifndef TOLLGATE_ITEST_HTTP_H
#define TOLLGATE_ITEST_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* The answer to one request. Owned by the caller; release with itest_resp_fini. */
struct itest_resp {
	long status;		/* HTTP status, 0 when the transfer failed */
	json_object *json;	/* parsed body, NULL unless the body is JSON */
	char *body;		/* raw body, NUL-terminated, never NULL after a request */
	size_t body_len;
	char *headers;		/* header lines of the final response */
	char what[192];		/* "METHOD path" for failure messages */
};

/* A request. Only method and path are required. */
struct itest_req {
	const char *method;
	const char *path;		/* starts with '/', appended to TOLLGATE_URL */
	const char *token;		/* sent as "Authorization: Bearer <token>" */
	const char *body;		/* NULL: no body */
	size_t body_len;		/* 0: strlen(body) */
	const char *content_type;	/* NULL: application/json; "": no header */
	const char *const *headers;	/* extra header lines, NULL-terminated */
};

/* Reads the environment and prepares the client. 0 on success, -1 (with a
 * message on stderr) when a variable is missing or libcurl fails. */
int itest_init(void);
void itest_fini(void);

const char *itest_admin_token(void);
/* A short lowercase hex string unique to this run, for names and owner ids. */
const char *itest_suffix(void);
/* Appends a secret to itest-secrets.txt. */
void itest_record_secret(const char *secret);

/* The stack's CA (TOLLGATE_CA_FILE) for a libcurl handle of the suite: every
 * server of the stack speaks TLS with a certificate it signed. */
void itest_tls(void *curl);
/* GET of TOLLGATE_METRICS_URL, the listener /metrics is served on. */
void itest_metrics(struct itest_resp *r);

/* Sends a request and fills r (which needs no initialisation); a path that
 * is a whole http(s) URL is used as it is. */
void itest_send(struct itest_resp *r, const struct itest_req *q);
/* Shorthand: body (if any) is sent as application/json. */
void itest_call(struct itest_resp *r, const char *method, const char *path,
		const char *token, const char *body);
/* Frees what r owns; r may then be reused. Harmless on a zeroed resp. */
void itest_resp_fini(struct itest_resp *r);

/* Copies the value of response header `name` (case-insensitive) into buf.
 * Returns buf, or NULL when the header is absent. */
const char *itest_header(const struct itest_resp *r, const char *name,
			 char *buf, size_t n);

/* ---- JSON helpers (all borrow; nothing to free) ---- */

/* Member lookup by dotted path ("error.code"); NULL when absent. */
json_object *itest_get(json_object *o, const char *path);
/* 1 when the member exists (even as JSON null). */
int itest_has(json_object *o, const char *path);
/* String member, NULL when absent or not a string. */
const char *itest_str(json_object *o, const char *path);
/* 1 when the member exists and is JSON null. */
int itest_is_null(json_object *o, const char *path);
/* 1 when the member exists and is an integer; its value goes to *out. */
int itest_int(json_object *o, const char *path, int64_t *out);
/* Length of an array, 0 for anything else (including NULL). */
size_t itest_len(json_object *a);
/* Element i of an array, NULL for anything else or out of range. */
json_object *itest_idx(json_object *a, size_t i);
/* Number of members of an object, 0 for anything else. */
size_t itest_nmembers(json_object *o);
/* Element of array member `path` whose "name" equals `name`, or NULL. */
json_object *itest_find_named(json_object *o, const char *path, const char *name);
/* Element of array member "data" whose "id" equals `id`, or NULL. */
json_object *itest_find_id(json_object *o, const char *id);

/* Name of the first member of object o that could hold a secret ("key",
 * "token", or a name containing "hash" or "secret"), or NULL when none. */
const char *itest_secret_member(json_object *o);

/* Quotes s as a JSON string literal. The result lives in one of 16 rotating
 * static buffers: use it before 16 more calls. */
const char *itest_q(const char *s);
/* Percent-encodes s for a query string into buf; returns buf. */
const char *itest_escape(const char *s, char *buf, size_t n);

/* 1 when s is an RFC 3339 UTC time with milliseconds (…T10:00:00.000Z). */
int itest_is_time(const char *s);
/* Formats now + offset_ms as an RFC 3339 UTC time with milliseconds. */
void itest_time(char *buf, size_t n, int64_t offset_ms);
/* Monotonic milliseconds. */
int64_t itest_now_ms(void);
void itest_sleep_ms(int64_t ms);

/* Writes into out an id shaped like `real` (same length and character
 * classes) that names nothing: its last alphanumerics are changed. */
void itest_unknown_id(const char *real, char *out, size_t n);

#endif
