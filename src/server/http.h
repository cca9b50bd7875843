/* http: one API request as the FastCGI server assembled it.  Reads the CGI
 * parameters, the query string and the body (bounded by the server and per
 * route); answers JSON with the headers every response carries
 * (X-Request-Id, Content-Type, Cache-Control) into an output buffer that
 * the server sends.  Nothing here does I/O. */
#ifndef TOLLGATE_HTTP_H
#define TOLLGATE_HTTP_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jsonx.h"
#include "strbuf.h"

#define HTTP_MAX_QUERY 32
#define HTTP_MAX_PARAMS 4
#define HTTP_PARAM_MAX 512
#define HTTP_REQUEST_ID_MAX 128

struct app;
struct worker;
struct route;
struct server_req;

/* The authenticated caller of a management route.  An owner token (role
 * "owner") is bound to owner_id and tier; other roles leave both empty. */
struct principal {
    char id[64];
    char role[16];
    char name[801];
    unsigned role_bit;
    char owner_id[520]; /* 128 UTF-8 characters */
    char tier[40];
    bool has_expires;
    int64_t expires_ms;
};

struct query_param {
    char *name;
    char *value;
};

struct http_req {
    struct app *app;
    struct worker *worker;
    char *const *env;          /* CGI parameters "NAME=VALUE", NULL-terminated (borrowed) */
    const char *in;            /* the body as received (borrowed), in_len bytes */
    size_t in_len;
    bool in_too_large;         /* the server kept only part of it */
    struct strbuf *out;        /* the answer (borrowed; NULL: discarded) */
    const char *method;
    char *path;                /* raw (still percent-encoded), without the query */
    struct query_param query[HTTP_MAX_QUERY];
    int nquery;
    const char *body;          /* after http_read_body: in, NUL-terminated */
    size_t body_len;
    const char *content_type;
    const char *remote_addr;
    char request_id[HTTP_REQUEST_ID_MAX + 1];
    char params[HTTP_MAX_PARAMS][HTTP_PARAM_MAX]; /* decoded path parameters */
    int nparams;
    struct principal who;
    int status;                /* set when the answer is sent */
    /* The dispatcher's. */
    bool authorizer;           /* FastCGI Authorizer role: gate mode */
    struct server_req *sr;
    const struct route *route;
    int64_t t0_ns;
};

/* True for 1-128 characters of [A-Za-z0-9._:-]. */
bool http_request_id_valid(const char *id);
/* A fresh random id of 22 base62 characters. */
void http_request_id_new(char out[HTTP_REQUEST_ID_MAX + 1]);

/* Percent-decodes src (and '+' as space when plus_space) into dst of size
 * dstsize.  Returns decoded length, or -1 on a bad escape, a NUL byte, or an
 * overflow. */
long http_decode(const char *src, size_t len, bool plus_space, char *dst, size_t dstsize);

/* Splits a query string into r->query (decoded).  Returns 0, or -1 with e
 * filled on a malformed or oversized query. */
int http_query_parse(struct http_req *r, const char *qs, struct api_error *e) TG_WUR;
/* Value of a query parameter (the last one given) or NULL. */
const char *http_query(const struct http_req *r, const char *name);
/* 400 invalid_argument naming the first parameter not in allowed (NULL
 * terminated). */
int http_query_allow(const struct http_req *r, const char *const *allowed,
                     struct api_error *e) TG_WUR;

/* Fills r from the request's parameters (env), body (in, in_len; NUL
 * terminated, too_large when the server cut it) and answer buffer (out):
 * method, path, query, request id.  r must be zeroed.  Returns 0 or -1 with
 * e filled. */
int http_read(struct http_req *r, char *const *env, const char *in, size_t in_len,
              bool too_large, struct strbuf *out, struct api_error *e) TG_WUR;
/* Accepts a body of at most max_body bytes (413 payload_too_large beyond;
 * 400 when it disagrees with CONTENT_LENGTH). */
int http_read_body(struct http_req *r, size_t max_body, struct api_error *e) TG_WUR;
/* Releases what http_read and http_query_parse allocated. */
void http_req_fini(struct http_req *r);

/* Parses the body as a JSON document; 415 unless the content type is
 * application/json. Caller puts the result. */
json_object *http_json_body(struct http_req *r, struct api_error *e);

/* A CGI parameter (e.g. "HTTP_AUTHORIZATION") or NULL. */
const char *http_param(const struct http_req *r, const char *name);

/* Writes a complete CGI answer (status line, the common headers, extra
 * headers, content type and body) from text; for non-JSON routes. */
void http_reply_text(struct http_req *r, int status, const char *content_type, const char *text,
                     size_t len);
/* The same with a JSON body already serialised (len bytes). */
void http_reply_json_text(struct http_req *r, int status, const char *extra_headers,
                          const char *json, size_t len);
/* Sends status, the common headers, extra_headers (each line ending in
 * "\r\n", may be NULL) and body serialised (NULL: no body).  Takes ownership
 * of body. */
void http_reply(struct http_req *r, int status, json_object *body, const char *extra_headers);
/* Starts a streamed JSON answer: status and headers, no Content-Length
 * (the web server frames the body); the body follows in r->out, sent in
 * parts by dispatch_flush. */
void http_stream_head(struct http_req *r, int status);
/* The same for a body of content_type, with extra_headers (each line
 * ending in "\r\n", may be NULL) after the common headers. */
void http_stream_head_type(struct http_req *r, int status, const char *content_type,
                           const char *extra_headers);
/* Sends the error envelope of e. */
void http_reply_error(struct http_req *r, const struct api_error *e);

#endif
