/* ctl_http: tollgatectl's client of the management API (libcurl).  One
 * handle per run; every request carries the admin token as a bearer
 * token, never follows a redirect (the token must not travel elsewhere)
 * and is bounded in time. */
#ifndef TOLLGATE_CTL_HTTP_H
#define TOLLGATE_CTL_HTTP_H

#include <stddef.h>

#include "strbuf.h"

struct ctl_http;

/* An answer: the status and the body as received. */
struct ctl_reply {
    long status;
    struct strbuf body;
};

/* A client of the API at base_url ("https://api.example.com", without
 * the /v1) with token (copied); ca_file ("" or NULL: the system's CAs)
 * verifies the server.  Returns NULL with a sentence in msg when base_url
 * is not http:// or https://. */
struct ctl_http *ctl_http_new(const char *base_url, const char *token, const char *ca_file,
                              char *msg, size_t msglen);
/* Wipes the token and frees; NULL is a no-op. */
void ctl_http_free(struct ctl_http *h);

/* method path (starting with "/", query included) with body (JSON, or
 * NULL for none).  Returns 0 when the server answered (whatever the
 * status: r holds it), -1 with a sentence in msg when it could not be
 * reached.  The caller releases r with ctl_reply_fini. */
int ctl_http_call(struct ctl_http *h, const char *method, const char *path, const char *body,
                  struct ctl_reply *r, char *msg, size_t msglen);
void ctl_reply_fini(struct ctl_reply *r);

/* Appends s percent-encoded (everything but RFC 3986 unreserved
 * characters), for a path segment or a query value. */
void ctl_http_escape(struct strbuf *b, const char *s);
/* Appends "?name=value" (or "&name=value" when path already has a query)
 * when value is not NULL; nothing otherwise. */
void ctl_http_query(struct strbuf *path, const char *name, const char *value);

/* The sentence for an error answer: "CODE: MESSAGE (field F)" from the
 * API's error body, or "HTTP STATUS" and the start of the body when it is
 * not one.  Control characters are replaced by '?'. */
void ctl_http_error_text(long status, const char *body, char *out, size_t outlen);

#endif
