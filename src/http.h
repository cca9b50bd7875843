/* http: one API request over FastCGI.  Reads the CGI parameters, the query
 * string and a bounded body; answers JSON with the headers every response
 * carries (X-Request-Id, Content-Type, Cache-Control).  The pure parts
 * (query parsing, percent-decoding, request ids) need no FastCGI. */
#ifndef TOLLGATE_HTTP_H
#define TOLLGATE_HTTP_H

#include <fcgiapp.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "jsonx.h"

#define HTTP_MAX_QUERY 32
#define HTTP_MAX_PARAMS 4
#define HTTP_PARAM_MAX 512
#define HTTP_REQUEST_ID_MAX 128

struct app;
struct worker;

/* The authenticated caller of a management route. */
struct principal {
    char id[64];
    char role[16];
    char name[801];
    unsigned role_bit;
};

struct query_param {
    char *name;
    char *value;
};

struct http_req {
    struct app *app;
    struct worker *worker;
    FCGX_Request *fcgx;
    const char *method;
    char *path;                /* raw (still percent-encoded), without the query */
    struct query_param query[HTTP_MAX_QUERY];
    int nquery;
    char *body;
    size_t body_len;
    const char *content_type;
    const char *remote_addr;
    char request_id[HTTP_REQUEST_ID_MAX + 1];
    char params[HTTP_MAX_PARAMS][HTTP_PARAM_MAX]; /* decoded path parameters */
    int nparams;
    struct principal who;
    int status;                /* set when the answer is sent */
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

/* Fills r from a FastCGI request's parameters: method, path, query, request
 * id.  r must be zeroed.  Returns 0 or -1 with e filled. */
int http_read(struct http_req *r, FCGX_Request *f, struct api_error *e) TG_WUR;
/* Reads a body of at most max_body bytes (413 payload_too_large beyond). */
int http_read_body(struct http_req *r, size_t max_body, struct api_error *e) TG_WUR;
/* Releases what http_read and http_query_parse allocated. */
void http_req_fini(struct http_req *r);

/* Parses the body as a JSON document; 415 unless the content type is
 * application/json. Caller puts the result. */
json_object *http_json_body(struct http_req *r, struct api_error *e);

/* A CGI parameter (e.g. "HTTP_AUTHORIZATION") or NULL. */
const char *http_param(const struct http_req *r, const char *name);

/* Sends status, the common headers, extra_headers (each line ending in
 * "\r\n", may be NULL) and body serialised (NULL: no body).  Takes ownership
 * of body. */
void http_reply(struct http_req *r, int status, json_object *body, const char *extra_headers);
/* Sends the error envelope of e. */
void http_reply_error(struct http_req *r, const struct api_error *e);

#endif
