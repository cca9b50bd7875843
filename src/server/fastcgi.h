/* fastcgi: the FastCGI 1.0 protocol on the application side, with no I/O.
 *
 * A connection object takes the bytes the web server sent (in any
 * fragmentation), assembles requests from BEGIN_REQUEST, PARAMS and STDIN
 * records, answers the management records itself (GET_VALUES,
 * UNKNOWN_TYPE) and hands out each request once it is complete: a
 * Responder when its STDIN has ended, an Authorizer when its PARAMS have
 * (an Authorizer gets no body; STDIN records sent for it anyway are read
 * and dropped).  Several requests may be in flight on one connection, up to
 * FASTCGI_MAX_REQS; answers may come in any order.  An answer is written as
 * STDOUT records, an empty STDOUT and END_REQUEST into the connection's
 * output buffer, which the caller sends.  A connection whose requests all
 * asked not to keep it (no FCGI_KEEP_CONN) wants closing once its answers
 * are out.
 *
 * Everything the peer controls is bounded: the parameters of a request
 * (FASTCGI_MAX_PARAMS_BYTES and FASTCGI_MAX_PARAMS pairs) and the body kept
 * (the max_body given at creation; beyond it the rest is read and dropped
 * and the request is marked body_too_large, so the application can answer
 * 413 itself).  A malformed record stream is a protocol error: the caller
 * closes the connection.  The caller runs a connection from one thread; a
 * complete request's fields are immutable, so another thread may build its
 * answer while the connection goes on reading (but for `aborted`, which
 * only the connection's thread touches).  Parameter names holding '=' or
 * NUL, and values holding NUL, are refused as malformed. */
#ifndef TOLLGATE_FASTCGI_H
#define TOLLGATE_FASTCGI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"
#include "util.h"

#define FASTCGI_VERSION 1
#define FASTCGI_HEADER_LEN 8
#define FASTCGI_MAX_CONTENT 65535
#define FASTCGI_MAX_REQS 64 /* also in GET_VALUES answers (fastcgi.c) */
#define FASTCGI_MAX_PARAMS 256
#define FASTCGI_MAX_PARAMS_BYTES (64 * 1024)

enum fastcgi_type {
    FCGI_BEGIN_REQUEST = 1,
    FCGI_ABORT_REQUEST = 2,
    FCGI_END_REQUEST = 3,
    FCGI_PARAMS = 4,
    FCGI_STDIN = 5,
    FCGI_STDOUT = 6,
    FCGI_STDERR = 7,
    FCGI_DATA = 8,
    FCGI_GET_VALUES = 9,
    FCGI_GET_VALUES_RESULT = 10,
    FCGI_UNKNOWN_TYPE = 11,
};

enum fastcgi_role { FCGI_RESPONDER = 1, FCGI_AUTHORIZER = 2, FCGI_FILTER = 3 };

enum fastcgi_protocol_status {
    FCGI_REQUEST_COMPLETE = 0,
    FCGI_CANT_MPX_CONN = 1,
    FCGI_OVERLOADED = 2,
    FCGI_UNKNOWN_ROLE = 3,
};

#define FCGI_KEEP_CONN 1

struct fastcgi_header {
    uint8_t version;
    uint8_t type;
    uint16_t id;
    uint16_t content_len;
    uint8_t padding_len;
};

/* Decodes the 8 bytes at b. */
void fastcgi_header_decode(const uint8_t *b, struct fastcgi_header *h);
/* Appends a record header for content_len bytes and padding_len. */
void fastcgi_header_put(struct strbuf *out, uint8_t type, uint16_t id, uint16_t content_len,
                        uint8_t padding_len);

/* One name-value pair, pointing into the buffer it was read from. */
struct fastcgi_pair {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Reads the pair at *pos of buf (len bytes) and advances *pos.  Returns 1
 * for a pair, 0 at the end of buf, -1 when the pair runs past the end. */
int fastcgi_pair_next(const uint8_t *buf, size_t len, size_t *pos, struct fastcgi_pair *pair);
/* Appends one encoded pair (lengths below 128 in one byte, else four). */
void fastcgi_pair_put(struct strbuf *out, const char *name, size_t name_len, const char *value,
                      size_t value_len);

/* Appends a stream (STDOUT, STDERR, PARAMS, STDIN...) of len bytes as
 * records of at most FASTCGI_MAX_CONTENT bytes; len 0 appends nothing (the
 * empty record that ends a stream is fastcgi_stream_end). */
void fastcgi_stream_put(struct strbuf *out, uint8_t type, uint16_t id, const void *data,
                        size_t len);
void fastcgi_stream_end(struct strbuf *out, uint8_t type, uint16_t id);
/* Appends END_REQUEST. */
void fastcgi_end_put(struct strbuf *out, uint16_t id, uint32_t app_status,
                     enum fastcgi_protocol_status status);
/* Appends BEGIN_REQUEST (for clients and tests). */
void fastcgi_begin_put(struct strbuf *out, uint16_t id, enum fastcgi_role role, uint8_t flags);

/* A request being assembled, then served. */
struct fastcgi_request {
    uint16_t id;
    enum fastcgi_role role;
    bool keep_conn;
    bool params_done;
    bool stdin_done;
    bool queued;         /* complete, waiting to be handed out */
    bool complete;       /* handed out by fastcgi_conn_next */
    bool aborted;        /* the web server gave up on it: its answer is END_REQUEST
                          * alone (the connection's thread sets and reads it) */
    bool body_too_large; /* more STDIN arrived than max_body */
    /* The parameters as "NAME=VALUE" strings, NULL-terminated, in arrival
     * order (a repeated name: the first wins in fastcgi_param). */
    char **env;
    size_t nenv;
    struct strbuf raw_params; /* PARAMS content until the stream ends */
    struct strbuf body;       /* STDIN content, NUL-terminated (p NULL: empty) */
    struct fastcgi_conn *conn;
    void *user; /* the caller's */
    struct fastcgi_request *next_ready;
};

/* The value of parameter name, or NULL. */
const char *fastcgi_param(const struct fastcgi_request *req, const char *name);

struct fastcgi_conn {
    struct strbuf in;       /* bytes not yet consumed */
    size_t in_pos;
    struct strbuf out;      /* records for the web server, not yet sent */
    size_t max_body;
    struct fastcgi_request *reqs[FASTCGI_MAX_REQS]; /* by slot; id lookup is linear */
    size_t nreqs;
    struct fastcgi_request *ready, *ready_tail;
    bool close_after;       /* a request without KEEP_CONN was answered */
    bool failed;            /* protocol error: close now */
    char error[96];
};

/* max_body: STDIN bytes kept per request. */
void fastcgi_conn_init(struct fastcgi_conn *c, size_t max_body);
/* Frees every request still held (answered or not) and the buffers. */
void fastcgi_conn_fini(struct fastcgi_conn *c);

/* Takes len bytes from the web server and processes every complete record.
 * Returns 0, or -1 on a protocol error (c->error says what; close the
 * connection).  Management answers go to c->out. */
int fastcgi_conn_input(struct fastcgi_conn *c, const void *data, size_t len) TG_WUR;

/* The next complete request not yet handed out, or NULL.  It stays owned by
 * the connection until fastcgi_conn_answer. */
struct fastcgi_request *fastcgi_conn_next(struct fastcgi_conn *c);

/* Writes the answer of req (CGI headers and body, len bytes; nothing for an
 * aborted request) and END_REQUEST into c->out, then frees req. */
void fastcgi_conn_answer(struct fastcgi_conn *c, struct fastcgi_request *req, const void *data,
                         size_t len);

/* True when the connection should close once c->out is sent: a request
 * without KEEP_CONN was answered and none is in progress. */
bool fastcgi_conn_done(const struct fastcgi_conn *c);

#endif
