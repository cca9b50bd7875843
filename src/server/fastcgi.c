#include "fastcgi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fastcgi_header_decode(const uint8_t *b, struct fastcgi_header *h)
{
    h->version = b[0];
    h->type = b[1];
    h->id = (uint16_t)(b[2] << 8 | b[3]);
    h->content_len = (uint16_t)(b[4] << 8 | b[5]);
    h->padding_len = b[6];
}

void fastcgi_header_put(struct strbuf *out, uint8_t type, uint16_t id, uint16_t content_len,
                        uint8_t padding_len)
{
    char h[FASTCGI_HEADER_LEN] = {FASTCGI_VERSION,
                                  (char)type,
                                  (char)(id >> 8),
                                  (char)(id & 0xff),
                                  (char)(content_len >> 8),
                                  (char)(content_len & 0xff),
                                  (char)padding_len,
                                  0};
    strbuf_put(out, h, sizeof h);
}

static int read_len(const uint8_t *buf, size_t len, size_t *pos, size_t *out)
{
    if (*pos >= len)
        return -1;
    if (!(buf[*pos] & 0x80)) {
        *out = buf[(*pos)++];
        return 0;
    }
    if (len - *pos < 4)
        return -1;
    const uint8_t *b = buf + *pos;
    *out = (size_t)(b[0] & 0x7f) << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | b[3];
    *pos += 4;
    return 0;
}

int fastcgi_pair_next(const uint8_t *buf, size_t len, size_t *pos, struct fastcgi_pair *pair)
{
    if (*pos >= len)
        return 0;
    size_t nl, vl;
    if (read_len(buf, len, pos, &nl) != 0 || read_len(buf, len, pos, &vl) != 0)
        return -1;
    if (nl > len - *pos || vl > len - *pos - nl)
        return -1;
    pair->name = (const char *)buf + *pos;
    pair->name_len = nl;
    pair->value = pair->name + nl;
    pair->value_len = vl;
    *pos += nl + vl;
    return 1;
}

static void put_len(struct strbuf *out, size_t n)
{
    if (n < 128) {
        strbuf_putc(out, (char)n);
        return;
    }
    char b[4] = {(char)(0x80 | (n >> 24 & 0x7f)), (char)(n >> 16 & 0xff), (char)(n >> 8 & 0xff),
                 (char)(n & 0xff)};
    strbuf_put(out, b, 4);
}

void fastcgi_pair_put(struct strbuf *out, const char *name, size_t name_len, const char *value,
                      size_t value_len)
{
    put_len(out, name_len);
    put_len(out, value_len);
    strbuf_put(out, name, name_len);
    strbuf_put(out, value, value_len);
}

void fastcgi_stream_put(struct strbuf *out, uint8_t type, uint16_t id, const void *data,
                        size_t len)
{
    const char *p = data;
    while (len > 0) {
        size_t n = len < FASTCGI_MAX_CONTENT ? len : FASTCGI_MAX_CONTENT;
        fastcgi_header_put(out, type, id, (uint16_t)n, 0);
        strbuf_put(out, p, n);
        p += n;
        len -= n;
    }
}

void fastcgi_stream_end(struct strbuf *out, uint8_t type, uint16_t id)
{
    fastcgi_header_put(out, type, id, 0, 0);
}

void fastcgi_end_put(struct strbuf *out, uint16_t id, uint32_t app_status,
                     enum fastcgi_protocol_status status)
{
    fastcgi_header_put(out, FCGI_END_REQUEST, id, 8, 0);
    char b[8] = {(char)(app_status >> 24), (char)(app_status >> 16 & 0xff),
                 (char)(app_status >> 8 & 0xff), (char)(app_status & 0xff), (char)status, 0, 0, 0};
    strbuf_put(out, b, sizeof b);
}

void fastcgi_begin_put(struct strbuf *out, uint16_t id, enum fastcgi_role role, uint8_t flags)
{
    fastcgi_header_put(out, FCGI_BEGIN_REQUEST, id, 8, 0);
    char b[8] = {(char)(role >> 8), (char)(role & 0xff), (char)flags, 0, 0, 0, 0, 0};
    strbuf_put(out, b, sizeof b);
}

const char *fastcgi_param(const struct fastcgi_request *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nenv; i++) {
        const char *e = req->env[i];
        if (strncmp(e, name, n) == 0 && e[n] == '=')
            return e + n + 1;
    }
    return NULL;
}

/* ---- The connection ---- */

void fastcgi_conn_init(struct fastcgi_conn *c, size_t max_body)
{
    memset(c, 0, sizeof *c);
    c->max_body = max_body;
}

static void request_free(struct fastcgi_request *r)
{
    if (!r)
        return;
    free(r->env); /* the strings live in the same block */
    strbuf_fini(&r->raw_params);
    strbuf_fini(&r->body);
    free(r);
}

void fastcgi_conn_fini(struct fastcgi_conn *c)
{
    for (size_t i = 0; i < FASTCGI_MAX_REQS; i++)
        request_free(c->reqs[i]);
    strbuf_fini(&c->in);
    strbuf_fini(&c->out);
    memset(c, 0, sizeof *c);
}

static int fail(struct fastcgi_conn *c, const char *fmt, unsigned v)
{
    snprintf(c->error, sizeof c->error, fmt, v);
    c->failed = true;
    return -1;
}

static int find_slot(const struct fastcgi_conn *c, uint16_t id)
{
    for (int i = 0; i < FASTCGI_MAX_REQS; i++)
        if (c->reqs[i] && c->reqs[i]->id == id)
            return i;
    return -1;
}

static void make_ready(struct fastcgi_conn *c, struct fastcgi_request *r)
{
    r->queued = true;
    if (c->ready_tail)
        c->ready_tail->next_ready = r;
    else
        c->ready = r;
    c->ready_tail = r;
}

/* Removes r from the ready list (an aborted request not yet handed out). */
static void unready(struct fastcgi_conn *c, struct fastcgi_request *r)
{
    struct fastcgi_request **pp = &c->ready, *prev = NULL;
    while (*pp && *pp != r) {
        prev = *pp;
        pp = &(*pp)->next_ready;
    }
    if (!*pp)
        return;
    *pp = r->next_ready;
    if (c->ready_tail == r)
        c->ready_tail = prev;
    r->next_ready = NULL;
}

static void release(struct fastcgi_conn *c, struct fastcgi_request *r)
{
    int slot = find_slot(c, r->id);
    if (slot >= 0 && c->reqs[slot] == r) {
        c->reqs[slot] = NULL;
        c->nreqs--;
    }
    if (!r->keep_conn)
        c->close_after = true;
    request_free(r);
}

static void begin(struct fastcgi_conn *c, uint16_t id, const uint8_t *b)
{
    unsigned role = (unsigned)(b[0] << 8 | b[1]);
    bool keep = b[2] & FCGI_KEEP_CONN;
    if (role != FCGI_RESPONDER && role != FCGI_AUTHORIZER) {
        fastcgi_end_put(&c->out, id, 0, FCGI_UNKNOWN_ROLE);
        if (!keep)
            c->close_after = true;
        return;
    }
    int slot = -1;
    for (int i = 0; i < FASTCGI_MAX_REQS && slot < 0; i++)
        if (!c->reqs[i])
            slot = i;
    if (slot < 0) {
        fastcgi_end_put(&c->out, id, 0, FCGI_OVERLOADED);
        if (!keep)
            c->close_after = true;
        return;
    }
    struct fastcgi_request *r = xcalloc(1, sizeof *r);
    r->id = id;
    r->role = (enum fastcgi_role)role;
    r->keep_conn = keep;
    r->conn = c;
    c->reqs[slot] = r;
    c->nreqs++;
}

/* Turns the PARAMS stream into env strings, all in one block after the
 * pointer array; -1 when malformed. */
static int parse_params(struct fastcgi_request *r)
{
    const uint8_t *buf = (const uint8_t *)r->raw_params.p;
    size_t len = r->raw_params.len, pos = 0, count = 0, bytes = 0;
    struct fastcgi_pair p;
    int got;
    while ((got = fastcgi_pair_next(buf, len, &pos, &p)) == 1) {
        /* "NAME=VALUE" must split back the same way, and be one C string. */
        if (memchr(p.name, '=', p.name_len) || memchr(p.name, '\0', p.name_len) ||
            memchr(p.value, '\0', p.value_len))
            return -1;
        count++;
        bytes += p.name_len + p.value_len + 2;
    }
    if (got < 0 || count > FASTCGI_MAX_PARAMS)
        return -1;
    size_t table = (count + 1) * sizeof *r->env;
    r->env = xmalloc(table + bytes);
    char *text = (char *)r->env + table;
    pos = 0;
    while (fastcgi_pair_next(buf, len, &pos, &p) == 1) {
        r->env[r->nenv++] = text;
        memcpy(text, p.name, p.name_len);
        text[p.name_len] = '=';
        memcpy(text + p.name_len + 1, p.value, p.value_len);
        text[p.name_len + 1 + p.value_len] = '\0';
        text += p.name_len + p.value_len + 2;
    }
    r->env[r->nenv] = NULL;
    strbuf_fini(&r->raw_params);
    return 0;
}

static int params(struct fastcgi_conn *c, struct fastcgi_request *r, const uint8_t *b,
                  size_t len)
{
    if (r->params_done)
        return fail(c, "PARAMS after the end of request %u's parameters", r->id);
    if (len == 0) {
        if (parse_params(r) != 0)
            return fail(c, "malformed or too many parameters in request %u", r->id);
        r->params_done = true;
        if (r->role == FCGI_AUTHORIZER && !r->aborted)
            make_ready(c, r);
        return 0;
    }
    if (r->raw_params.len + len > FASTCGI_MAX_PARAMS_BYTES)
        return fail(c, "parameters of request %u too large", r->id);
    strbuf_put(&r->raw_params, (const char *)b, len);
    return 0;
}

static int stdin_record(struct fastcgi_conn *c, struct fastcgi_request *r, const uint8_t *b,
                        size_t len)
{
    if (r->role == FCGI_AUTHORIZER || r->stdin_done)
        return 0; /* nothing to read for an Authorizer; late input dropped */
    if (!r->params_done)
        return fail(c, "STDIN before the end of request %u's parameters", r->id);
    if (len == 0) {
        r->stdin_done = true;
        if (!r->aborted)
            make_ready(c, r);
        return 0;
    }
    size_t room = r->body.len < c->max_body ? c->max_body - r->body.len : 0;
    if (len > room)
        r->body_too_large = true;
    strbuf_put(&r->body, (const char *)b, len < room ? len : room);
    return 0;
}

static void get_values(struct fastcgi_conn *c, const uint8_t *b, size_t len)
{
    static const struct {
        const char *name;
        const char *value;
    } known[] = {
        {"FCGI_MAX_CONNS", "1000"},
        {"FCGI_MAX_REQS", "64"}, /* FASTCGI_MAX_REQS */
        {"FCGI_MPXS_CONNS", "1"},
    };
    bool given[TG_ARRAY_LEN(known)] = {false};
    struct strbuf body = {0};
    size_t pos = 0;
    struct fastcgi_pair p;
    /* Each variable answered once: the answer can never outgrow a record. */
    while (fastcgi_pair_next(b, len, &pos, &p) == 1) {
        for (size_t i = 0; i < TG_ARRAY_LEN(known); i++) {
            if (!given[i] && p.name_len == strlen(known[i].name) &&
                memcmp(p.name, known[i].name, p.name_len) == 0) {
                fastcgi_pair_put(&body, p.name, p.name_len, known[i].value,
                                 strlen(known[i].value));
                given[i] = true;
            }
        }
    }
    fastcgi_header_put(&c->out, FCGI_GET_VALUES_RESULT, 0, (uint16_t)body.len, 0);
    strbuf_put(&c->out, body.p ? body.p : "", body.len);
    strbuf_fini(&body);
}

static void unknown_type(struct fastcgi_conn *c, uint8_t type)
{
    fastcgi_header_put(&c->out, FCGI_UNKNOWN_TYPE, 0, 8, 0);
    char b[8] = {(char)type, 0, 0, 0, 0, 0, 0, 0};
    strbuf_put(&c->out, b, sizeof b);
}

static int record(struct fastcgi_conn *c, const struct fastcgi_header *h, const uint8_t *b)
{
    size_t len = h->content_len;
    if (h->id == 0) {
        if (h->type == FCGI_GET_VALUES)
            get_values(c, b, len);
        else
            unknown_type(c, h->type);
        return 0;
    }
    int slot = find_slot(c, h->id);
    struct fastcgi_request *r = slot >= 0 ? c->reqs[slot] : NULL;
    switch (h->type) {
    case FCGI_BEGIN_REQUEST:
        if (r)
            return fail(c, "BEGIN_REQUEST for request %u already in progress", h->id);
        if (len < 8)
            return fail(c, "short BEGIN_REQUEST (%u bytes)", (unsigned)len);
        begin(c, h->id, b);
        return 0;
    case FCGI_ABORT_REQUEST:
        if (!r)
            return 0;
        if (!r->complete) {
            /* Not handed out yet: answer now, with nothing. */
            unready(c, r);
            fastcgi_end_put(&c->out, r->id, 0, FCGI_REQUEST_COMPLETE);
            release(c, r);
        } else {
            r->aborted = true;
        }
        return 0;
    case FCGI_PARAMS:
        return r ? params(c, r, b, len) : 0;
    case FCGI_STDIN:
        return r ? stdin_record(c, r, b, len) : 0;
    case FCGI_DATA:
        return 0; /* Filter input: no Filter is ever accepted */
    default:
        return fail(c, "unexpected record type %u", h->type);
    }
}

int fastcgi_conn_input(struct fastcgi_conn *c, const void *data, size_t len)
{
    if (c->failed)
        return -1;
    if (len > 0)
        strbuf_put(&c->in, data, len);
    for (;;) {
        size_t avail = c->in.len - c->in_pos;
        const uint8_t *p = (const uint8_t *)c->in.p + c->in_pos;
        if (avail < FASTCGI_HEADER_LEN)
            break;
        struct fastcgi_header h;
        fastcgi_header_decode(p, &h);
        if (h.version != FASTCGI_VERSION)
            return fail(c, "unsupported FastCGI version %u", h.version);
        size_t total = FASTCGI_HEADER_LEN + (size_t)h.content_len + h.padding_len;
        if (avail < total)
            break;
        if (record(c, &h, p + FASTCGI_HEADER_LEN) != 0)
            return -1;
        c->in_pos += total;
    }
    /* Keep the buffer small: move a partial record to the front. */
    if (c->in_pos == c->in.len) {
        strbuf_reset(&c->in);
        c->in_pos = 0;
    } else if (c->in_pos > 0) {
        memmove(c->in.p, c->in.p + c->in_pos, c->in.len - c->in_pos);
        c->in.len -= c->in_pos;
        c->in.p[c->in.len] = '\0';
        c->in_pos = 0;
    }
    return 0;
}

struct fastcgi_request *fastcgi_conn_next(struct fastcgi_conn *c)
{
    struct fastcgi_request *r = c->ready;
    if (!r)
        return NULL;
    c->ready = r->next_ready;
    if (!c->ready)
        c->ready_tail = NULL;
    r->next_ready = NULL;
    r->complete = true;
    return r;
}

void fastcgi_conn_answer(struct fastcgi_conn *c, struct fastcgi_request *r, const void *data,
                         size_t len)
{
    unready(c, r);
    if (!r->aborted) {
        fastcgi_stream_put(&c->out, FCGI_STDOUT, r->id, data, len);
        fastcgi_stream_end(&c->out, FCGI_STDOUT, r->id);
    }
    fastcgi_end_put(&c->out, r->id, 0, FCGI_REQUEST_COMPLETE);
    release(c, r);
}

bool fastcgi_conn_done(const struct fastcgi_conn *c)
{
    return c->close_after && c->nreqs == 0;
}
