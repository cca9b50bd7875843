/* Tests of the FastCGI protocol module (src/server/fastcgi.h): the record and
 * name-value encodings, a connection assembling Responder and Authorizer
 * requests from any fragmentation, the management records, the limits and
 * the protocol errors, and conformance both ways with libfcgi, the
 * reference implementation.  Output is checked record by record: type, id
 * and exact content (padding is the writer's choice, so it is skipped). */
#include <fcgiapp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fastcgi.h"
#include "strbuf.h"
#include "unit.h"

/* ---- Reading what a connection wrote ---- */

struct rec {
    uint8_t type;
    uint16_t id;
    const uint8_t *content;
    size_t len;
};

#define MAX_RECS 128

struct recs {
    struct rec r[MAX_RECS];
    size_t n;
};

/* Splits len bytes into records; false when they are not a whole number of
 * version-1 records (or more than MAX_RECS). */
static bool recs_parse(const void *buf, size_t len, struct recs *rs)
{
    const uint8_t *p = buf;
    size_t pos = 0;
    rs->n = 0;
    while (pos < len) {
        if (len - pos < FASTCGI_HEADER_LEN || rs->n == MAX_RECS)
            return false;
        struct fastcgi_header h;
        fastcgi_header_decode(p + pos, &h);
        size_t total = FASTCGI_HEADER_LEN + (size_t)h.content_len + h.padding_len;
        if (h.version != FASTCGI_VERSION || len - pos < total)
            return false;
        rs->r[rs->n++] = (struct rec){h.type, h.id, p + pos + FASTCGI_HEADER_LEN, h.content_len};
        pos += total;
    }
    return true;
}

/* True when record i is exactly (type, id, content). */
static bool rec_is(const struct recs *rs, size_t i, uint8_t type, uint16_t id,
                   const void *content, size_t len)
{
    if (i >= rs->n)
        return false;
    const struct rec *r = &rs->r[i];
    return r->type == type && r->id == id && r->len == len &&
           (len == 0 || memcmp(r->content, content, len) == 0);
}

/* True when record i is END_REQUEST for id with app status 0 and status. */
static bool rec_is_end(const struct recs *rs, size_t i, uint16_t id,
                       enum fastcgi_protocol_status status)
{
    const uint8_t body[8] = {0, 0, 0, 0, (uint8_t)status, 0, 0, 0};
    return rec_is(rs, i, FCGI_END_REQUEST, id, body, sizeof body);
}

/* Appends the content of every record of type and id to out; returns how
 * many records there were.  Each must respect FASTCGI_MAX_CONTENT. */
static size_t recs_join(const struct recs *rs, uint8_t type, uint16_t id, struct strbuf *out)
{
    size_t n = 0;
    for (size_t i = 0; i < rs->n; i++) {
        if (rs->r[i].type != type || rs->r[i].id != id)
            continue;
        CU_ASSERT(rs->r[i].len <= FASTCGI_MAX_CONTENT);
        strbuf_put(out, (const char *)rs->r[i].content, rs->r[i].len);
        n++;
    }
    return n;
}

/* c->out must be exactly an answer of content for id: STDOUT records, an
 * empty STDOUT, END_REQUEST.  Empties c->out, as sending it would. */
static void check_answer(struct fastcgi_conn *c, uint16_t id, const void *content, size_t len)
{
    struct recs rs;
    CU_ASSERT_FATAL(recs_parse(c->out.p, c->out.len, &rs));
    CU_ASSERT_FATAL(rs.n >= 2);
    struct strbuf got = {0};
    size_t n = recs_join(&rs, FCGI_STDOUT, id, &got);
    CU_ASSERT_EQUAL(n, rs.n - 1); /* nothing but STDOUT before END_REQUEST */
    CU_ASSERT_EQUAL(got.len, len);
    CU_ASSERT(got.len == len && (len == 0 || memcmp(got.p, content, len) == 0));
    CU_ASSERT(rec_is(&rs, rs.n - 2, FCGI_STDOUT, id, NULL, 0));
    CU_ASSERT(rec_is_end(&rs, rs.n - 1, id, FCGI_REQUEST_COMPLETE));
    strbuf_fini(&got);
    strbuf_reset(&c->out);
}

/* ---- Writing what a web server sends ---- */

struct param {
    const char *name, *value;
};

/* Appends a whole request: BEGIN, the parameters and the end of PARAMS,
 * then (for a Responder) the body and the end of STDIN. */
static void put_request(struct strbuf *b, uint16_t id, enum fastcgi_role role, uint8_t flags,
                        const struct param *ps, size_t nps, const char *body, size_t body_len)
{
    struct strbuf pairs = {0};
    for (size_t i = 0; i < nps; i++)
        fastcgi_pair_put(&pairs, ps[i].name, strlen(ps[i].name), ps[i].value,
                         strlen(ps[i].value));
    fastcgi_begin_put(b, id, role, flags);
    fastcgi_stream_put(b, FCGI_PARAMS, id, pairs.p, pairs.len);
    fastcgi_stream_end(b, FCGI_PARAMS, id);
    if (role == FCGI_RESPONDER) {
        fastcgi_stream_put(b, FCGI_STDIN, id, body, body_len);
        fastcgi_stream_end(b, FCGI_STDIN, id);
    }
    strbuf_fini(&pairs);
}

/* Appends one record with content and padding bytes of value 0xEE. */
static void put_record(struct strbuf *b, uint8_t type, uint16_t id, const void *content,
                       size_t len, uint8_t padding)
{
    fastcgi_header_put(b, type, id, (uint16_t)len, padding);
    if (len > 0)
        strbuf_put(b, content, len);
    for (uint8_t i = 0; i < padding; i++)
        strbuf_putc(b, (char)0xEE);
}

/* Feeds len bytes in pieces of chunk bytes; -1 at the first failure. */
static int feed(struct fastcgi_conn *c, const void *data, size_t len, size_t chunk)
{
    const char *p = data;
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        if (fastcgi_conn_input(c, p + off, n) != 0)
            return -1;
    }
    return 0;
}

/* True when parameter name of r is want. */
static bool param_is(const struct fastcgi_request *r, const char *name, const char *want)
{
    const char *v = fastcgi_param(r, name);
    return v && strcmp(v, want) == 0;
}

/* ---- Encodings ---- */

static void test_header_encode_decode(void)
{
    struct strbuf b = {0};
    fastcgi_header_put(&b, FCGI_STDOUT, 0x1234, 0xABCD, 7);
    const uint8_t want[8] = {1, 6, 0x12, 0x34, 0xAB, 0xCD, 7, 0};
    CU_ASSERT_EQUAL_FATAL(b.len, 8);
    CU_ASSERT_EQUAL(memcmp(b.p, want, 8), 0);

    struct fastcgi_header h;
    fastcgi_header_decode((const uint8_t *)b.p, &h);
    CU_ASSERT_EQUAL(h.version, 1);
    CU_ASSERT_EQUAL(h.type, FCGI_STDOUT);
    CU_ASSERT_EQUAL(h.id, 0x1234);
    CU_ASSERT_EQUAL(h.content_len, 0xABCD);
    CU_ASSERT_EQUAL(h.padding_len, 7);

    const uint8_t max[8] = {2, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    fastcgi_header_decode(max, &h);
    CU_ASSERT_EQUAL(h.version, 2);
    CU_ASSERT_EQUAL(h.type, 0xFF);
    CU_ASSERT_EQUAL(h.id, 0xFFFF);
    CU_ASSERT_EQUAL(h.content_len, 0xFFFF);
    CU_ASSERT_EQUAL(h.padding_len, 0xFF);
    strbuf_fini(&b);
}

static void test_begin_and_end_records(void)
{
    struct strbuf b = {0};
    fastcgi_begin_put(&b, 0x0102, FCGI_AUTHORIZER, FCGI_KEEP_CONN);
    const uint8_t begin[16] = {1, 1, 1, 2, 0, 8, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0};
    CU_ASSERT_EQUAL_FATAL(b.len, 16);
    CU_ASSERT_EQUAL(memcmp(b.p, begin, 16), 0);

    strbuf_reset(&b);
    fastcgi_end_put(&b, 3, 0x01020304, FCGI_UNKNOWN_ROLE);
    const uint8_t end[16] = {1, 3, 0, 3, 0, 8, 0, 0, 1, 2, 3, 4, 3, 0, 0, 0};
    CU_ASSERT_EQUAL_FATAL(b.len, 16);
    CU_ASSERT_EQUAL(memcmp(b.p, end, 16), 0);

    strbuf_reset(&b);
    fastcgi_stream_end(&b, FCGI_STDIN, 0x0203);
    const uint8_t eos[8] = {1, 5, 2, 3, 0, 0, 0, 0};
    CU_ASSERT_EQUAL_FATAL(b.len, 8);
    CU_ASSERT_EQUAL(memcmp(b.p, eos, 8), 0);
    strbuf_fini(&b);
}

static void test_stream_put_splits(void)
{
    struct strbuf b = {0};
    fastcgi_stream_put(&b, FCGI_STDOUT, 1, "x", 0);
    CU_ASSERT_EQUAL(b.len, 0);

    static char data[150000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)(i * 7 % 251);
    struct recs rs;
    const size_t sizes[] = {1, FASTCGI_MAX_CONTENT, FASTCGI_MAX_CONTENT + 1, sizeof data};
    const size_t nrecs[] = {1, 1, 2, 3};
    for (size_t t = 0; t < TG_ARRAY_LEN(sizes); t++) {
        strbuf_reset(&b);
        fastcgi_stream_put(&b, FCGI_STDOUT, 9, data, sizes[t]);
        CU_ASSERT_FATAL(recs_parse(b.p, b.len, &rs));
        CU_ASSERT_EQUAL(rs.n, nrecs[t]);
        struct strbuf got = {0};
        CU_ASSERT_EQUAL(recs_join(&rs, FCGI_STDOUT, 9, &got), rs.n);
        CU_ASSERT(got.len == sizes[t] && memcmp(got.p, data, sizes[t]) == 0);
        strbuf_fini(&got);
    }
    strbuf_fini(&b);
}

static void test_pair_lengths(void)
{
    char name128[128], value127[127];
    memset(name128, 'N', sizeof name128);
    memset(value127, 'v', sizeof value127);
    static char value70000[70000];
    memset(value70000, 'w', sizeof value70000);

    struct strbuf b = {0};
    fastcgi_pair_put(&b, "A", 1, value127, sizeof value127);
    CU_ASSERT_EQUAL_FATAL(b.len, 1 + 1 + 1 + 127);
    CU_ASSERT_EQUAL((uint8_t)b.p[0], 1);
    CU_ASSERT_EQUAL((uint8_t)b.p[1], 127);
    CU_ASSERT_EQUAL(b.p[2], 'A');
    size_t at = b.len;
    fastcgi_pair_put(&b, name128, sizeof name128, value70000, sizeof value70000);
    const uint8_t lens[8] = {0x80, 0, 0, 128, 0x80, 0x01, 0x11, 0x70}; /* 70000 = 0x11170 */
    CU_ASSERT_EQUAL_FATAL(b.len, at + 8 + 128 + 70000);
    CU_ASSERT_EQUAL(memcmp(b.p + at, lens, 8), 0);
    fastcgi_pair_put(&b, "", 0, "", 0);
    /* A four-byte length below 128 is legal too. */
    const uint8_t small4[] = {0x80, 0, 0, 2, 1, 'N', 'M', 'V'};
    strbuf_put(&b, (const char *)small4, sizeof small4);

    const uint8_t *buf = (const uint8_t *)b.p;
    size_t pos = 0;
    struct fastcgi_pair p;
    CU_ASSERT_EQUAL_FATAL(fastcgi_pair_next(buf, b.len, &pos, &p), 1);
    CU_ASSERT(p.name_len == 1 && p.name[0] == 'A');
    CU_ASSERT(p.value_len == 127 && memcmp(p.value, value127, 127) == 0);
    CU_ASSERT_EQUAL(pos, at);
    CU_ASSERT_EQUAL_FATAL(fastcgi_pair_next(buf, b.len, &pos, &p), 1);
    CU_ASSERT(p.name_len == 128 && memcmp(p.name, name128, 128) == 0);
    CU_ASSERT(p.value_len == 70000 && memcmp(p.value, value70000, 70000) == 0);
    CU_ASSERT_EQUAL_FATAL(fastcgi_pair_next(buf, b.len, &pos, &p), 1);
    CU_ASSERT(p.name_len == 0 && p.value_len == 0);
    CU_ASSERT_EQUAL_FATAL(fastcgi_pair_next(buf, b.len, &pos, &p), 1);
    CU_ASSERT(p.name_len == 2 && memcmp(p.name, "NM", 2) == 0);
    CU_ASSERT(p.value_len == 1 && p.value[0] == 'V');
    CU_ASSERT_EQUAL(pos, b.len);
    CU_ASSERT_EQUAL(fastcgi_pair_next(buf, b.len, &pos, &p), 0);
    CU_ASSERT_EQUAL(pos, b.len);
    strbuf_fini(&b);
}

static void test_pair_truncated(void)
{
    struct strbuf b = {0};
    char name[200];
    memset(name, 'n', sizeof name);
    fastcgi_pair_put(&b, name, sizeof name, "value", 5);
    const uint8_t *buf = (const uint8_t *)b.p;
    struct fastcgi_pair p;
    /* Every proper prefix of a pair runs past its end. */
    size_t bad = 0;
    for (size_t len = 1; len < b.len; len++) {
        size_t pos = 0;
        bad += fastcgi_pair_next(buf, len, &pos, &p) == -1;
    }
    CU_ASSERT_EQUAL(bad, b.len - 1);
    size_t pos = 0;
    CU_ASSERT_EQUAL(fastcgi_pair_next(buf, b.len, &pos, &p), 1);

    /* Lengths that claim more than there is, up to 2^31 - 1. */
    const uint8_t huge[] = {0xFF, 0xFF, 0xFF, 0xFF, 0, 'x'};
    const uint8_t huge_value[] = {1, 0xFF, 0xFF, 0xFF, 0xFF, 'x'};
    const uint8_t value_over[] = {1, 3, 'x', 'a', 'b'};
    pos = 0;
    CU_ASSERT_EQUAL(fastcgi_pair_next(huge, sizeof huge, &pos, &p), -1);
    pos = 0;
    CU_ASSERT_EQUAL(fastcgi_pair_next(huge_value, sizeof huge_value, &pos, &p), -1);
    pos = 0;
    CU_ASSERT_EQUAL(fastcgi_pair_next(value_over, sizeof value_over, &pos, &p), -1);
    pos = sizeof value_over;
    CU_ASSERT_EQUAL(fastcgi_pair_next(value_over, sizeof value_over, &pos, &p), 0);
    strbuf_fini(&b);
}

/* ---- Responder and Authorizer ---- */

static const struct param RESPONDER_PARAMS[] = {
    {"REQUEST_METHOD", "POST"},
    {"SCRIPT_NAME", "/v1/keys"},
    {"HTTP_X_EMPTY", ""},
    {"CONTENT_LENGTH", "11"},
};

static void check_responder(struct fastcgi_conn *c, struct fastcgi_request *r)
{
    CU_ASSERT_EQUAL(r->id, 0x0101);
    CU_ASSERT_EQUAL(r->role, FCGI_RESPONDER);
    CU_ASSERT(r->keep_conn);
    CU_ASSERT(r->params_done && r->stdin_done && r->complete);
    CU_ASSERT(!r->aborted && !r->body_too_large);
    CU_ASSERT_PTR_EQUAL(r->conn, c);
    CU_ASSERT_EQUAL_FATAL(r->nenv, 4);
    CU_ASSERT_STRING_EQUAL(r->env[0], "REQUEST_METHOD=POST");
    CU_ASSERT_STRING_EQUAL(r->env[2], "HTTP_X_EMPTY=");
    CU_ASSERT_STRING_EQUAL(r->env[3], "CONTENT_LENGTH=11");
    CU_ASSERT_PTR_NULL(r->env[4]);
    CU_ASSERT(param_is(r, "SCRIPT_NAME", "/v1/keys"));
    CU_ASSERT(param_is(r, "HTTP_X_EMPTY", ""));
    CU_ASSERT_PTR_NULL(fastcgi_param(r, "SCRIPT"));       /* a prefix is not a name */
    CU_ASSERT_PTR_NULL(fastcgi_param(r, "SCRIPT_NAMEX")); /* nor is a longer one */
    CU_ASSERT_PTR_NULL(fastcgi_param(r, "MISSING"));
    CU_ASSERT_EQUAL(r->body.len, 11);
    CU_ASSERT(r->body.p && memcmp(r->body.p, "hello world", 12) == 0); /* with its NUL */
}

/* One Responder fed in pieces of chunk bytes: nothing is handed out before
 * the last byte, then exactly the request; its answer is exact. */
static void responder_in_pieces(size_t chunk)
{
    struct strbuf in = {0};
    put_request(&in, 0x0101, FCGI_RESPONDER, FCGI_KEEP_CONN, RESPONDER_PARAMS,
                TG_ARRAY_LEN(RESPONDER_PARAMS), "hello world", 11);
    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 1024);
    size_t early = 0, failed = 0;
    for (size_t off = 0; off + 1 < in.len; off += chunk) {
        size_t n = in.len - 1 - off < chunk ? in.len - 1 - off : chunk;
        failed += fastcgi_conn_input(&c, in.p + off, n) != 0;
        early += fastcgi_conn_next(&c) != NULL;
    }
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT_EQUAL(early, 0);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p + in.len - 1, 1), 0);
    struct fastcgi_request *r = fastcgi_conn_next(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_PTR_NULL(fastcgi_conn_next(&c));
    check_responder(&c, r);
    CU_ASSERT_EQUAL(c.out.len, 0);

    const char answer[] = "Status: 201\r\nContent-Type: text/plain\r\n\r\nmade";
    fastcgi_conn_answer(&c, r, answer, sizeof answer - 1);
    struct recs rs;
    CU_ASSERT_FATAL(recs_parse(c.out.p, c.out.len, &rs));
    CU_ASSERT_EQUAL(rs.n, 3);
    CU_ASSERT(rec_is(&rs, 0, FCGI_STDOUT, 0x0101, answer, sizeof answer - 1));
    CU_ASSERT(rec_is(&rs, 1, FCGI_STDOUT, 0x0101, NULL, 0));
    CU_ASSERT(rec_is_end(&rs, 2, 0x0101, FCGI_REQUEST_COMPLETE));
    CU_ASSERT_EQUAL(c.nreqs, 0);
    CU_ASSERT(!fastcgi_conn_done(&c)); /* KEEP_CONN */
    fastcgi_conn_fini(&c);
    strbuf_fini(&in);
}

static void test_responder_byte_by_byte(void)
{
    responder_in_pieces(1);
}

static void test_responder_in_pieces_of_seven(void)
{
    responder_in_pieces(7);
}

static void test_responder_in_one_go(void)
{
    struct strbuf in = {0};
    put_request(&in, 0x0101, FCGI_RESPONDER, FCGI_KEEP_CONN, RESPONDER_PARAMS,
                TG_ARRAY_LEN(RESPONDER_PARAMS), "hello world", 11);
    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 1024);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    struct fastcgi_request *r = fastcgi_conn_next(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    check_responder(&c, r);
    CU_ASSERT_PTR_NULL(fastcgi_conn_next(&c));
    fastcgi_conn_answer(&c, r, "x", 1);
    check_answer(&c, 0x0101, "x", 1);
    fastcgi_conn_fini(&c);
    strbuf_fini(&in);
}

static void test_param_first_wins(void)
{
    const struct param ps[] = {
        {"HTTP_A", "first"}, {"HTTP_B", "b"}, {"HTTP_A", "second"}, {"HTTP_A_B", "ab"}};
    struct strbuf in = {0};
    put_request(&in, 1, FCGI_RESPONDER, 0, ps, TG_ARRAY_LEN(ps), NULL, 0);
    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 16);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    struct fastcgi_request *r = fastcgi_conn_next(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL_FATAL(r->nenv, 4); /* both HTTP_A kept, in arrival order */
    CU_ASSERT_STRING_EQUAL(r->env[0], "HTTP_A=first");
    CU_ASSERT_STRING_EQUAL(r->env[2], "HTTP_A=second");
    CU_ASSERT(param_is(r, "HTTP_A", "first"));
    CU_ASSERT(param_is(r, "HTTP_A_B", "ab"));
    CU_ASSERT(!r->keep_conn);
    CU_ASSERT_EQUAL(r->body.len, 0);
    fastcgi_conn_answer(&c, r, NULL, 0);
    check_answer(&c, 1, NULL, 0);
    fastcgi_conn_fini(&c);
    strbuf_fini(&in);
}

static void test_authorizer_completes_at_params_end(void)
{
    const struct param ps[] = {{"HTTP_AUTHORIZATION", "Bearer tg_x"}};
    struct strbuf in = {0};
    put_request(&in, 5, FCGI_AUTHORIZER, FCGI_KEEP_CONN, ps, 1, NULL, 0);
    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 1024);
    CU_ASSERT_EQUAL(feed(&c, in.p, in.len, 3), 0);
    struct fastcgi_request *r = fastcgi_conn_next(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->id, 5);
    CU_ASSERT_EQUAL(r->role, FCGI_AUTHORIZER);
    CU_ASSERT(r->params_done && r->complete && r->keep_conn);
    CU_ASSERT(param_is(r, "HTTP_AUTHORIZATION", "Bearer tg_x"));

    /* STDIN sent for it anyway is read and dropped. */
    strbuf_reset(&in);
    fastcgi_stream_put(&in, FCGI_STDIN, 5, "unwanted body", 13);
    fastcgi_stream_end(&in, FCGI_STDIN, 5);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    CU_ASSERT_EQUAL(r->body.len, 0);
    CU_ASSERT_PTR_NULL(fastcgi_conn_next(&c));
    CU_ASSERT_EQUAL(c.out.len, 0);

    fastcgi_conn_answer(&c, r, "Status: 200\r\n\r\n", 15);
    check_answer(&c, 5, "Status: 200\r\n\r\n", 15);
    /* After END_REQUEST the id is inactive: its records are ignored... */
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    CU_ASSERT_EQUAL(c.out.len, 0);
    /* ...and it may begin a new request. */
    strbuf_reset(&in);
    put_request(&in, 5, FCGI_RESPONDER, FCGI_KEEP_CONN, ps, 1, "b", 1);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    r = fastcgi_conn_next(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT(r->role == FCGI_RESPONDER && r->body.len == 1);
    fastcgi_conn_fini(&c); /* frees the unanswered request */
    strbuf_fini(&in);
}

/* ---- Several requests on one connection ---- */

static void put_pairs_record(struct strbuf *b, uint16_t id, const char *name, const char *value)
{
    struct strbuf pairs = {0};
    fastcgi_pair_put(&pairs, name, strlen(name), value, strlen(value));
    fastcgi_stream_put(b, FCGI_PARAMS, id, pairs.p, pairs.len);
    strbuf_fini(&pairs);
}

static void test_interleaved_answered_out_of_order(void)
{
    struct strbuf in = {0};
    fastcgi_begin_put(&in, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
    fastcgi_begin_put(&in, 2, FCGI_RESPONDER, FCGI_KEEP_CONN);
    fastcgi_begin_put(&in, 300, FCGI_AUTHORIZER, FCGI_KEEP_CONN);
    put_pairs_record(&in, 2, "REQ", "two");
    put_pairs_record(&in, 1, "REQ", "one");
    put_pairs_record(&in, 300, "REQ", "three hundred");
    fastcgi_stream_end(&in, FCGI_PARAMS, 1);
    fastcgi_stream_put(&in, FCGI_STDIN, 1, "body1", 5);
    fastcgi_stream_end(&in, FCGI_PARAMS, 300); /* 300 is complete */
    fastcgi_stream_end(&in, FCGI_PARAMS, 2);
    fastcgi_stream_put(&in, FCGI_STDIN, 2, "body2", 5);
    fastcgi_stream_end(&in, FCGI_STDIN, 2); /* then 2 */
    fastcgi_begin_put(&in, 4, FCGI_RESPONDER, FCGI_KEEP_CONN);
    put_pairs_record(&in, 4, "REQ", "never finished");
    fastcgi_stream_put(&in, FCGI_STDIN, 1, "+more", 5);
    fastcgi_stream_end(&in, FCGI_STDIN, 1); /* then 1 */

    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 1024);
    CU_ASSERT_EQUAL(feed(&c, in.p, in.len, 5), 0);
    struct fastcgi_request *r300 = fastcgi_conn_next(&c);
    struct fastcgi_request *r2 = fastcgi_conn_next(&c);
    struct fastcgi_request *r1 = fastcgi_conn_next(&c);
    CU_ASSERT_PTR_NULL(fastcgi_conn_next(&c));
    CU_ASSERT_FATAL(r1 && r2 && r300);
    CU_ASSERT_EQUAL(r300->id, 300);
    CU_ASSERT_EQUAL(r2->id, 2);
    CU_ASSERT_EQUAL(r1->id, 1);
    CU_ASSERT(param_is(r1, "REQ", "one"));
    CU_ASSERT(param_is(r2, "REQ", "two"));
    CU_ASSERT(param_is(r300, "REQ", "three hundred"));
    CU_ASSERT_STRING_EQUAL(r1->body.p, "body1+more");
    CU_ASSERT_STRING_EQUAL(r2->body.p, "body2");
    CU_ASSERT_EQUAL(c.nreqs, 4);
    CU_ASSERT_EQUAL(c.out.len, 0);

    fastcgi_conn_answer(&c, r1, "A1", 2);
    fastcgi_conn_answer(&c, r300, "A300", 4);
    fastcgi_conn_answer(&c, r2, "A2", 2);
    struct recs rs;
    CU_ASSERT_FATAL(recs_parse(c.out.p, c.out.len, &rs));
    CU_ASSERT_EQUAL_FATAL(rs.n, 9);
    CU_ASSERT(rec_is(&rs, 0, FCGI_STDOUT, 1, "A1", 2));
    CU_ASSERT(rec_is(&rs, 1, FCGI_STDOUT, 1, NULL, 0));
    CU_ASSERT(rec_is_end(&rs, 2, 1, FCGI_REQUEST_COMPLETE));
    CU_ASSERT(rec_is(&rs, 3, FCGI_STDOUT, 300, "A300", 4));
    CU_ASSERT(rec_is(&rs, 4, FCGI_STDOUT, 300, NULL, 0));
    CU_ASSERT(rec_is_end(&rs, 5, 300, FCGI_REQUEST_COMPLETE));
    CU_ASSERT(rec_is(&rs, 6, FCGI_STDOUT, 2, "A2", 2));
    CU_ASSERT(rec_is(&rs, 7, FCGI_STDOUT, 2, NULL, 0));
    CU_ASSERT(rec_is_end(&rs, 8, 2, FCGI_REQUEST_COMPLETE));
    CU_ASSERT_EQUAL(c.nreqs, 1); /* request 4, still reading its parameters */
    CU_ASSERT(!fastcgi_conn_done(&c));
    fastcgi_conn_fini(&c); /* frees request 4 */
    strbuf_fini(&in);
}

/* Beyond FASTCGI_MAX_REQS in flight, a request is refused with
 * FCGI_OVERLOADED (the header says only "up to"; this is fastcgi.c's). */
static void test_overloaded_beyond_max_reqs(void)
{
    struct strbuf in = {0};
    for (uint16_t id = 1; id <= FASTCGI_MAX_REQS + 1; id++)
        fastcgi_begin_put(&in, id, FCGI_RESPONDER, FCGI_KEEP_CONN);
    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 16);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    CU_ASSERT_EQUAL(c.nreqs, FASTCGI_MAX_REQS);
    struct recs rs;
    CU_ASSERT_FATAL(recs_parse(c.out.p, c.out.len, &rs));
    CU_ASSERT_EQUAL(rs.n, 1);
    CU_ASSERT(rec_is_end(&rs, 0, FASTCGI_MAX_REQS + 1, FCGI_OVERLOADED));
    fastcgi_conn_fini(&c);
    strbuf_fini(&in);
}

/* ---- ABORT_REQUEST ---- */

static void test_abort_before_complete(void)
{
    struct strbuf in = {0};
    fastcgi_begin_put(&in, 9, FCGI_RESPONDER, 0);
    put_pairs_record(&in, 9, "REQ", "half");
    fastcgi_header_put(&in, FCGI_ABORT_REQUEST, 9, 0, 0);
    fastcgi_header_put(&in, FCGI_ABORT_REQUEST, 77, 0, 0); /* no such request */
    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 16);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    CU_ASSERT_PTR_NULL(fastcgi_conn_next(&c));
    CU_ASSERT_EQUAL(c.nreqs, 0);
    /* The connection answers it at once, with no output. */
    struct recs rs;
    CU_ASSERT_FATAL(recs_parse(c.out.p, c.out.len, &rs));
    CU_ASSERT_EQUAL(rs.n, 1);
    CU_ASSERT(rec_is_end(&rs, 0, 9, FCGI_REQUEST_COMPLETE));
    CU_ASSERT(fastcgi_conn_done(&c)); /* it had no KEEP_CONN */
    strbuf_reset(&c.out);

    /* The rest of its records, now for an inactive id, are ignored. */
    strbuf_reset(&in);
    fastcgi_stream_end(&in, FCGI_PARAMS, 9);
    fastcgi_stream_put(&in, FCGI_STDIN, 9, "late", 4);
    fastcgi_stream_end(&in, FCGI_STDIN, 9);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    CU_ASSERT_PTR_NULL(fastcgi_conn_next(&c));
    CU_ASSERT_EQUAL(c.out.len, 0);
    fastcgi_conn_fini(&c);
    strbuf_fini(&in);
}

static void test_abort_after_complete(void)
{
    struct strbuf in = {0};
    put_request(&in, 1, FCGI_RESPONDER, FCGI_KEEP_CONN, NULL, 0, "a", 1);
    put_request(&in, 2, FCGI_RESPONDER, FCGI_KEEP_CONN, NULL, 0, "b", 1);
    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 16);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    struct fastcgi_request *r1 = fastcgi_conn_next(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r1);
    CU_ASSERT(!r1->aborted);

    /* 1 has been handed out, 2 is complete but not yet handed out. */
    strbuf_reset(&in);
    fastcgi_header_put(&in, FCGI_ABORT_REQUEST, 1, 0, 0);
    fastcgi_header_put(&in, FCGI_ABORT_REQUEST, 2, 0, 0);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    CU_ASSERT(r1->aborted);
    /* 2 was never handed out: the connection answered it (END_REQUEST
     * alone) and it is gone. */
    CU_ASSERT_PTR_NULL(fastcgi_conn_next(&c));
    struct recs rs;
    CU_ASSERT_FATAL(recs_parse(c.out.p, c.out.len, &rs));
    CU_ASSERT_EQUAL(rs.n, 1);
    CU_ASSERT(rec_is_end(&rs, 0, 2, FCGI_REQUEST_COMPLETE));
    strbuf_reset(&c.out);

    /* An aborted request's answer is END_REQUEST alone, whatever is given. */
    fastcgi_conn_answer(&c, r1, "ignored", 7);
    CU_ASSERT_FATAL(recs_parse(c.out.p, c.out.len, &rs));
    CU_ASSERT_EQUAL(rs.n, 1);
    CU_ASSERT(rec_is_end(&rs, 0, 1, FCGI_REQUEST_COMPLETE));
    CU_ASSERT_EQUAL(c.nreqs, 0);
    fastcgi_conn_fini(&c);
    strbuf_fini(&in);
}

/* ---- Management records and roles ---- */

static void test_get_values(void)
{
    const char *names[] = {"FCGI_MAX_CONNS", "FOO_UNKNOWN", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"};
    struct strbuf pairs = {0}, in = {0};
    for (size_t i = 0; i < TG_ARRAY_LEN(names); i++)
        fastcgi_pair_put(&pairs, names[i], strlen(names[i]), "", 0);
    put_record(&in, FCGI_GET_VALUES, 0, pairs.p, pairs.len, 3);
    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 16);
    CU_ASSERT_EQUAL(feed(&c, in.p, in.len, 2), 0);
    CU_ASSERT_PTR_NULL(fastcgi_conn_next(&c));
    CU_ASSERT_EQUAL(c.nreqs, 0);

    struct recs rs;
    CU_ASSERT_FATAL(recs_parse(c.out.p, c.out.len, &rs));
    CU_ASSERT_EQUAL_FATAL(rs.n, 1);
    CU_ASSERT_EQUAL(rs.r[0].type, FCGI_GET_VALUES_RESULT);
    CU_ASSERT_EQUAL(rs.r[0].id, 0);
    /* The known names, in the order asked; the unknown one left out. */
    const uint8_t *b = rs.r[0].content;
    size_t pos = 0;
    struct fastcgi_pair p;
    CU_ASSERT_EQUAL_FATAL(fastcgi_pair_next(b, rs.r[0].len, &pos, &p), 1);
    CU_ASSERT(p.name_len == 14 && memcmp(p.name, "FCGI_MAX_CONNS", 14) == 0);
    char conns[16] = "";
    memcpy(conns, p.value, p.value_len < 15 ? p.value_len : 15);
    int64_t n = 0;
    CU_ASSERT(parse_int64(conns, 1, 1000000, &n) == 0);
    CU_ASSERT_EQUAL_FATAL(fastcgi_pair_next(b, rs.r[0].len, &pos, &p), 1);
    CU_ASSERT(p.name_len == 13 && memcmp(p.name, "FCGI_MAX_REQS", 13) == 0);
    CU_ASSERT(p.value_len == 2 && memcmp(p.value, "64", 2) == 0); /* FASTCGI_MAX_REQS */
    CU_ASSERT_EQUAL_FATAL(fastcgi_pair_next(b, rs.r[0].len, &pos, &p), 1);
    CU_ASSERT(p.name_len == 15 && memcmp(p.name, "FCGI_MPXS_CONNS", 15) == 0);
    CU_ASSERT(p.value_len == 1 && p.value[0] == '1');
    CU_ASSERT_EQUAL(fastcgi_pair_next(b, rs.r[0].len, &pos, &p), 0);
    fastcgi_conn_fini(&c);
    strbuf_fini(&pairs);
    strbuf_fini(&in);
}

/* A GET_VALUES of 65520 bytes asking one name 4095 times: whatever the
 * answer, it must still be well-formed records (a record holds at most
 * 65535 bytes of content). */
static void test_get_values_result_fits_records(void)
{
    struct strbuf pairs = {0}, in = {0};
    while (pairs.len + 16 <= FASTCGI_MAX_CONTENT)
        fastcgi_pair_put(&pairs, "FCGI_MAX_CONNS", 14, "", 0);
    put_record(&in, FCGI_GET_VALUES, 0, pairs.p, pairs.len, 0);
    fastcgi_header_put(&in, 42, 0, 0, 0); /* then an unknown type */
    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 16);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    struct recs rs;
    bool whole = recs_parse(c.out.p, c.out.len, &rs);
    CU_ASSERT(whole);
    CU_ASSERT(whole && rs.n >= 2 && rs.r[0].type == FCGI_GET_VALUES_RESULT);
    CU_ASSERT(whole && rs.n >= 2 && rs.r[rs.n - 1].type == FCGI_UNKNOWN_TYPE);
    fastcgi_conn_fini(&c);
    strbuf_fini(&pairs);
    strbuf_fini(&in);
}

static void test_unknown_management_type(void)
{
    struct strbuf in = {0};
    fastcgi_header_put(&in, 42, 0, 0, 0);
    put_record(&in, 200, 0, "abc", 3, 5);
    fastcgi_stream_put(&in, FCGI_STDIN, 0, "x", 1); /* a stream type, but id 0 */
    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 16);
    CU_ASSERT_EQUAL(feed(&c, in.p, in.len, 1), 0);
    struct recs rs;
    CU_ASSERT_FATAL(recs_parse(c.out.p, c.out.len, &rs));
    CU_ASSERT_EQUAL_FATAL(rs.n, 3);
    const uint8_t t42[8] = {42}, t200[8] = {200}, t5[8] = {FCGI_STDIN};
    CU_ASSERT(rec_is(&rs, 0, FCGI_UNKNOWN_TYPE, 0, t42, 8));
    CU_ASSERT(rec_is(&rs, 1, FCGI_UNKNOWN_TYPE, 0, t200, 8));
    CU_ASSERT(rec_is(&rs, 2, FCGI_UNKNOWN_TYPE, 0, t5, 8));
    CU_ASSERT_PTR_NULL(fastcgi_conn_next(&c));
    fastcgi_conn_fini(&c);
    strbuf_fini(&in);
}

static void test_unknown_role(void)
{
    struct strbuf in = {0};
    fastcgi_begin_put(&in, 4, FCGI_FILTER, FCGI_KEEP_CONN);
    /* 0x0101: the low byte alone would read as a Responder. */
    fastcgi_begin_put(&in, 6, (enum fastcgi_role)0x0101, FCGI_KEEP_CONN);
    put_pairs_record(&in, 4, "REQ", "filter");
    fastcgi_stream_end(&in, FCGI_PARAMS, 4);
    fastcgi_stream_put(&in, FCGI_STDIN, 4, "in", 2);
    fastcgi_stream_end(&in, FCGI_STDIN, 4);
    fastcgi_stream_put(&in, FCGI_DATA, 4, "data", 4);
    fastcgi_stream_end(&in, FCGI_PARAMS, 6);
    fastcgi_stream_end(&in, FCGI_STDIN, 6);
    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 16);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    CU_ASSERT_PTR_NULL(fastcgi_conn_next(&c));
    CU_ASSERT_EQUAL(c.nreqs, 0);
    struct recs rs;
    CU_ASSERT_FATAL(recs_parse(c.out.p, c.out.len, &rs));
    CU_ASSERT_EQUAL(rs.n, 2);
    CU_ASSERT(rec_is_end(&rs, 0, 4, FCGI_UNKNOWN_ROLE));
    CU_ASSERT(rec_is_end(&rs, 1, 6, FCGI_UNKNOWN_ROLE));
    CU_ASSERT(!fastcgi_conn_done(&c));
    fastcgi_conn_fini(&c);
    strbuf_fini(&in);
}

/* ---- Limits ---- */

static void test_body_too_large(void)
{
    const char body[] = "0123456789abcdefghijklmno"; /* 25 bytes */
    struct strbuf in = {0};
    fastcgi_begin_put(&in, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
    fastcgi_stream_end(&in, FCGI_PARAMS, 1);
    fastcgi_stream_put(&in, FCGI_STDIN, 1, body, 8);
    fastcgi_stream_put(&in, FCGI_STDIN, 1, body + 8, 8);
    fastcgi_stream_put(&in, FCGI_STDIN, 1, body + 16, 9);
    fastcgi_stream_end(&in, FCGI_STDIN, 1);
    put_request(&in, 2, FCGI_RESPONDER, FCGI_KEEP_CONN, NULL, 0, body, 10);
    put_request(&in, 3, FCGI_RESPONDER, FCGI_KEEP_CONN, NULL, 0, body, 11);
    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 10);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    struct fastcgi_request *r1 = fastcgi_conn_next(&c);
    struct fastcgi_request *r2 = fastcgi_conn_next(&c);
    struct fastcgi_request *r3 = fastcgi_conn_next(&c);
    CU_ASSERT_FATAL(r1 && r2 && r3);
    CU_ASSERT(r1->body_too_large);
    CU_ASSERT_EQUAL(r1->body.len, 10);
    CU_ASSERT_STRING_EQUAL(r1->body.p, "0123456789");
    CU_ASSERT_EQUAL(r1->nenv, 0);
    CU_ASSERT_PTR_NOT_NULL(r1->env);
    CU_ASSERT(r1->env == NULL || r1->env[0] == NULL);
    CU_ASSERT(!r2->body_too_large); /* exactly max_body */
    CU_ASSERT_EQUAL(r2->body.len, 10);
    CU_ASSERT_STRING_EQUAL(r2->body.p, "0123456789");
    CU_ASSERT(r3->body_too_large); /* one byte over, in one record */
    CU_ASSERT_EQUAL(r3->body.len, 10);
    fastcgi_conn_fini(&c);
    strbuf_fini(&in);
}

/* An Authorizer whose PARAMS stream is one pair of size bytes:
 * 1 + 4 length bytes, the name "BIG", size - 8 bytes of value. */
static void put_big_params(struct strbuf *in, size_t size)
{
    size_t vlen = size - 8;
    char *value = xmalloc(vlen);
    memset(value, 'v', vlen);
    struct strbuf pairs = {0};
    fastcgi_pair_put(&pairs, "BIG", 3, value, vlen);
    CU_ASSERT_EQUAL(pairs.len, size);
    fastcgi_begin_put(in, 1, FCGI_AUTHORIZER, 0);
    fastcgi_stream_put(in, FCGI_PARAMS, 1, pairs.p, pairs.len);
    fastcgi_stream_end(in, FCGI_PARAMS, 1);
    strbuf_fini(&pairs);
    free(value);
}

static void test_params_bytes_limit(void)
{
    struct strbuf in = {0};
    struct fastcgi_conn c;
    put_big_params(&in, FASTCGI_MAX_PARAMS_BYTES);
    fastcgi_conn_init(&c, 16);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    struct fastcgi_request *r = fastcgi_conn_next(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    const char *v = fastcgi_param(r, "BIG");
    CU_ASSERT(v && strlen(v) == FASTCGI_MAX_PARAMS_BYTES - 8);
    CU_ASSERT(v && v[0] == 'v');
    fastcgi_conn_fini(&c);

    strbuf_reset(&in);
    put_big_params(&in, FASTCGI_MAX_PARAMS_BYTES + 1); /* one byte too many */
    fastcgi_conn_init(&c, 16);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), -1);
    CU_ASSERT(c.failed);
    CU_ASSERT(c.error[0] != '\0');
    CU_ASSERT_PTR_NULL(fastcgi_conn_next(&c));
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, "", 0), -1); /* stays failed */
    fastcgi_conn_fini(&c);
    strbuf_fini(&in);
}

static int params_count_run(size_t npairs)
{
    struct strbuf in = {0}, pairs = {0};
    for (size_t i = 0; i < npairs; i++) {
        char name[16];
        int n = snprintf(name, sizeof name, "P%zu", i);
        fastcgi_pair_put(&pairs, name, (size_t)n, "v", 1);
    }
    fastcgi_begin_put(&in, 1, FCGI_AUTHORIZER, 0);
    fastcgi_stream_put(&in, FCGI_PARAMS, 1, pairs.p, pairs.len);
    fastcgi_stream_end(&in, FCGI_PARAMS, 1);
    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 16);
    int rc = fastcgi_conn_input(&c, in.p, in.len);
    struct fastcgi_request *r = fastcgi_conn_next(&c);
    if (rc == 0) {
        CU_ASSERT(r && r->nenv == npairs && r->env[npairs] == NULL);
        CU_ASSERT(r && fastcgi_param(r, "P0") && fastcgi_param(r, "P255"));
    } else {
        CU_ASSERT(c.failed && c.error[0] && !r);
    }
    fastcgi_conn_fini(&c);
    strbuf_fini(&pairs);
    strbuf_fini(&in);
    return rc;
}

static void test_params_count_limit(void)
{
    CU_ASSERT_EQUAL(params_count_run(FASTCGI_MAX_PARAMS), 0);
    CU_ASSERT_EQUAL(params_count_run(FASTCGI_MAX_PARAMS + 1), -1);
}

/* ---- Protocol errors and records for unknown ids ---- */

/* Feeds a BEGIN for id 1 (role) and then bad, byte by byte; returns the
 * first failure of fastcgi_conn_input (0 if none). */
static int after_begin(enum fastcgi_role role, const struct strbuf *bad)
{
    struct strbuf in = {0};
    fastcgi_begin_put(&in, 1, role, FCGI_KEEP_CONN);
    strbuf_put(&in, bad->p, bad->len);
    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 16);
    int rc = feed(&c, in.p, in.len, 1);
    CU_ASSERT_EQUAL(c.failed, rc != 0);
    CU_ASSERT(rc == 0 || c.error[0] != '\0');
    CU_ASSERT_PTR_NULL(fastcgi_conn_next(&c));
    fastcgi_conn_fini(&c);
    strbuf_fini(&in);
    return rc;
}

static void test_protocol_errors(void)
{
    struct strbuf b = {0};
    const uint8_t version2[8] = {2, FCGI_STDIN, 0, 1, 0, 0, 0, 0};
    strbuf_put(&b, (const char *)version2, 8);
    CU_ASSERT_EQUAL(after_begin(FCGI_RESPONDER, &b), -1);

    strbuf_reset(&b); /* a second BEGIN for a live id */
    fastcgi_begin_put(&b, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
    CU_ASSERT_EQUAL(after_begin(FCGI_RESPONDER, &b), -1);

    strbuf_reset(&b); /* a BEGIN body of 4 bytes */
    put_record(&b, FCGI_BEGIN_REQUEST, 2, "\0\1\0\0", 4, 4);
    CU_ASSERT_EQUAL(after_begin(FCGI_RESPONDER, &b), -1);

    strbuf_reset(&b); /* STDIN before the parameters ended */
    fastcgi_stream_put(&b, FCGI_STDIN, 1, "x", 1);
    CU_ASSERT_EQUAL(after_begin(FCGI_RESPONDER, &b), -1);

    strbuf_reset(&b); /* PARAMS after they ended */
    fastcgi_stream_end(&b, FCGI_PARAMS, 1);
    put_pairs_record(&b, 1, "A", "b");
    CU_ASSERT_EQUAL(after_begin(FCGI_RESPONDER, &b), -1);

    strbuf_reset(&b); /* a pair running past the end of the stream */
    fastcgi_stream_put(&b, FCGI_PARAMS, 1, "\3\1ABCx\5", 7);
    fastcgi_stream_end(&b, FCGI_PARAMS, 1);
    CU_ASSERT_EQUAL(after_begin(FCGI_AUTHORIZER, &b), -1);

    strbuf_reset(&b); /* a type only an application sends */
    fastcgi_stream_put(&b, FCGI_STDOUT, 1, "x", 1);
    CU_ASSERT_EQUAL(after_begin(FCGI_RESPONDER, &b), -1);
    strbuf_fini(&b);
}

/* Records for an id with no request are ignored (spec 3.3), except a type
 * no web server sends, which fastcgi.c takes for a protocol error. */
static void test_records_for_unknown_ids(void)
{
    struct strbuf b = {0};
    put_pairs_record(&b, 99, "A", "b");
    fastcgi_stream_end(&b, FCGI_PARAMS, 99);
    fastcgi_stream_put(&b, FCGI_STDIN, 99, "x", 1);
    fastcgi_stream_end(&b, FCGI_STDIN, 99);
    fastcgi_stream_put(&b, FCGI_DATA, 99, "x", 1);
    fastcgi_header_put(&b, FCGI_ABORT_REQUEST, 99, 0, 0);
    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 16);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, b.p, b.len), 0);
    CU_ASSERT_EQUAL(c.out.len, 0);
    CU_ASSERT_PTR_NULL(fastcgi_conn_next(&c));
    CU_ASSERT_EQUAL(c.nreqs, 0);
    CU_ASSERT(!c.failed);

    strbuf_reset(&b);
    fastcgi_end_put(&b, 99, 0, FCGI_REQUEST_COMPLETE);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, b.p, b.len), -1);
    fastcgi_conn_fini(&c);
    strbuf_fini(&b);
}

/* ---- Answers ---- */

static void test_large_answer_split(void)
{
    static char data[150000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)(i * 13 % 253);
    struct strbuf in = {0};
    put_request(&in, 3, FCGI_RESPONDER, FCGI_KEEP_CONN, NULL, 0, NULL, 0);
    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 16);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    struct fastcgi_request *r = fastcgi_conn_next(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    fastcgi_conn_answer(&c, r, data, sizeof data);
    struct recs rs;
    CU_ASSERT_FATAL(recs_parse(c.out.p, c.out.len, &rs));
    CU_ASSERT(rs.n >= 5); /* 3 STDOUT or more, the empty one, END_REQUEST */
    check_answer(&c, 3, data, sizeof data);
    fastcgi_conn_fini(&c);
    strbuf_fini(&in);
}

static void test_conn_done(void)
{
    struct strbuf in = {0};
    put_request(&in, 1, FCGI_RESPONDER, 0, NULL, 0, "x", 1);
    put_request(&in, 2, FCGI_RESPONDER, FCGI_KEEP_CONN, NULL, 0, "y", 1);
    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 16);
    CU_ASSERT(!fastcgi_conn_done(&c));
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    struct fastcgi_request *r1 = fastcgi_conn_next(&c);
    struct fastcgi_request *r2 = fastcgi_conn_next(&c);
    CU_ASSERT_FATAL(r1 && r2);
    CU_ASSERT(!r1->keep_conn && r2->keep_conn);
    CU_ASSERT(!fastcgi_conn_done(&c)); /* nothing answered yet */
    fastcgi_conn_answer(&c, r1, "1", 1);
    CU_ASSERT(!fastcgi_conn_done(&c)); /* request 2 is in progress */
    fastcgi_conn_answer(&c, r2, "2", 1);
    CU_ASSERT(fastcgi_conn_done(&c));
    fastcgi_conn_fini(&c);

    /* Only KEEP_CONN requests: the connection stays. */
    strbuf_reset(&in);
    put_request(&in, 1, FCGI_AUTHORIZER, FCGI_KEEP_CONN, NULL, 0, NULL, 0);
    fastcgi_conn_init(&c, 16);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    r1 = fastcgi_conn_next(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r1);
    fastcgi_conn_answer(&c, r1, "", 0);
    CU_ASSERT(!fastcgi_conn_done(&c));
    fastcgi_conn_fini(&c);
    CU_ASSERT_PTR_NULL(c.out.p);
    CU_ASSERT_EQUAL(c.nreqs, 0);
    strbuf_fini(&in);
}

/* ---- Conformance with libfcgi ---- */

#define LF_MAX_NAMES 8

/* One request served by libfcgi in a thread: it accepts on listen_fd, copies
 * the parameters named in names and the whole body, then writes answer. */
struct lf_app {
    int listen_fd;
    const char *names[LF_MAX_NAMES];
    size_t nnames;
    const char *answer;
    size_t answer_len;
    int accept_rc;              /* filled by the thread from here on */
    char *values[LF_MAX_NAMES]; /* NULL when absent */
    char *role;
    struct strbuf body;
};

static void *lf_app_run(void *arg)
{
    struct lf_app *a = arg;
    FCGX_Request req;
    FCGX_InitRequest(&req, a->listen_fd, 0);
    a->accept_rc = FCGX_Accept_r(&req);
    if (a->accept_rc != 0)
        return NULL;
    for (size_t i = 0; i < a->nnames; i++) {
        const char *v = FCGX_GetParam(a->names[i], req.envp);
        a->values[i] = v ? xstrdup(v) : NULL;
    }
    const char *role = FCGX_GetParam("FCGI_ROLE", req.envp);
    a->role = role ? xstrdup(role) : NULL;
    char buf[4096];
    int n;
    while ((n = FCGX_GetStr(buf, sizeof buf, req.in)) > 0)
        strbuf_put(&a->body, buf, (size_t)n);
    FCGX_PutStr(a->answer, (int)a->answer_len, req.out);
    FCGX_Finish_r(&req);
    return NULL;
}

static void lf_app_fini(struct lf_app *a)
{
    for (size_t i = 0; i < a->nnames; i++)
        free(a->values[i]);
    free(a->role);
    strbuf_fini(&a->body);
}

/* Sends request to libfcgi serving a over a Unix socket and collects all it
 * writes until it closes the connection.  Returns 0 or -1.  alarm() ends a
 * test that would otherwise hang. */
static int lf_session(struct lf_app *a, const struct strbuf *request, struct strbuf *reply)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int n = snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "tollgate-test-fastcgi-%d",
                     (int)getpid()); /* the abstract namespace: no file to remove */
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0), fd = -1, rc = -1;
    pthread_t t;
    bool started = false;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, salen) != 0 || listen(lfd, 1) != 0)
        goto done;
    a->listen_fd = lfd;
    if (pthread_create(&t, NULL, lf_app_run, a) != 0)
        goto done;
    started = true;
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, salen) != 0)
        goto done;
    for (size_t off = 0; off < request->len;) {
        ssize_t w = send(fd, request->p + off, request->len - off, MSG_NOSIGNAL);
        if (w <= 0)
            goto done;
        off += (size_t)w;
    }
    char buf[8192];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        strbuf_put(reply, buf, (size_t)r);
    rc = r == 0 ? 0 : -1;
done:
    if (fd >= 0)
        close(fd);
    if (started)
        pthread_join(t, NULL);
    if (lfd >= 0)
        close(lfd);
    return rc;
}

/* (a) A request written with fastcgi.c's writers reads the same in libfcgi
 * as in fastcgi_conn: long names and values (four-byte lengths), a body in
 * two STDIN records. */
static void test_libfcgi_reads_our_request(void)
{
    static char long_value[1000], long_name[200], body[70000];
    memset(long_value, 'v', sizeof long_value - 1);
    memset(long_name, 'N', sizeof long_name - 1);
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)('a' + i % 26);
    const struct param ps[] = {
        {"REQUEST_METHOD", "PUT"},
        {"REQUEST_URI", "/v1/keys/tg_abc?x=1"},
        {"HTTP_X_LONG", long_value},
        {long_name, "short"},
        {"HTTP_X_EMPTY", ""},
    };
    struct strbuf in = {0}, reply = {0};
    put_request(&in, 1, FCGI_RESPONDER, 0, ps, TG_ARRAY_LEN(ps), body, sizeof body);
    struct lf_app a = {.nnames = TG_ARRAY_LEN(ps), .answer = "Status: 204\r\n\r\n",
                       .answer_len = 15};
    for (size_t i = 0; i < a.nnames; i++)
        a.names[i] = ps[i].name;
    alarm(10);
    CU_ASSERT_EQUAL(lf_session(&a, &in, &reply), 0);
    alarm(0);
    CU_ASSERT_EQUAL_FATAL(a.accept_rc, 0);
    CU_ASSERT(a.role && strcmp(a.role, "RESPONDER") == 0);
    for (size_t i = 0; i < a.nnames; i++)
        CU_ASSERT(a.values[i] && strcmp(a.values[i], ps[i].value) == 0);
    CU_ASSERT(a.body.len == sizeof body && memcmp(a.body.p, body, sizeof body) == 0);

    /* fastcgi_conn reads the same bytes the same way. */
    struct fastcgi_conn c;
    fastcgi_conn_init(&c, sizeof body);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    struct fastcgi_request *r = fastcgi_conn_next(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    for (size_t i = 0; i < a.nnames; i++) {
        const char *v = fastcgi_param(r, ps[i].name);
        CU_ASSERT(v && a.values[i] && strcmp(v, a.values[i]) == 0);
    }
    CU_ASSERT(r->body.len == a.body.len && memcmp(r->body.p, a.body.p, a.body.len) == 0);
    fastcgi_conn_fini(&c);
    lf_app_fini(&a);
    strbuf_fini(&reply);
    strbuf_fini(&in);
}

/* (b) libfcgi's answer and fastcgi_conn_answer's carry the same stream and
 * the same END_REQUEST; record boundaries and padding may differ. */
static void test_libfcgi_answer_matches_ours(void)
{
    static char answer[100 * 1000];
    int h = snprintf(answer, sizeof answer, "Status: 200\r\nContent-Type: text/plain\r\n\r\n");
    for (size_t i = (size_t)h; i < sizeof answer; i++)
        answer[i] = (char)('0' + i % 10);
    struct strbuf in = {0}, theirs = {0};
    put_request(&in, 1, FCGI_RESPONDER, 0, NULL, 0, NULL, 0);
    struct lf_app a = {.answer = answer, .answer_len = sizeof answer};
    alarm(10);
    CU_ASSERT_EQUAL(lf_session(&a, &in, &theirs), 0);
    alarm(0);
    CU_ASSERT_EQUAL_FATAL(a.accept_rc, 0);

    struct fastcgi_conn c;
    fastcgi_conn_init(&c, 16);
    CU_ASSERT_EQUAL(fastcgi_conn_input(&c, in.p, in.len), 0);
    struct fastcgi_request *r = fastcgi_conn_next(&c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    fastcgi_conn_answer(&c, r, answer, sizeof answer);

    struct recs lf, ours;
    CU_ASSERT_FATAL(recs_parse(theirs.p, theirs.len, &lf)); /* padding and all */
    CU_ASSERT_FATAL(recs_parse(c.out.p, c.out.len, &ours));
    CU_ASSERT_FATAL(lf.n >= 3 && ours.n >= 3);
    struct strbuf lf_out = {0}, our_out = {0};
    CU_ASSERT_EQUAL(recs_join(&lf, FCGI_STDOUT, 1, &lf_out), lf.n - 1);
    CU_ASSERT_EQUAL(recs_join(&ours, FCGI_STDOUT, 1, &our_out), ours.n - 1);
    CU_ASSERT(lf_out.len == sizeof answer && memcmp(lf_out.p, answer, sizeof answer) == 0);
    CU_ASSERT(our_out.len == lf_out.len && memcmp(our_out.p, lf_out.p, lf_out.len) == 0);
    const struct rec *lf_eos = &lf.r[lf.n - 2], *lf_end = &lf.r[lf.n - 1];
    CU_ASSERT(rec_is(&ours, ours.n - 2, lf_eos->type, lf_eos->id, lf_eos->content, lf_eos->len));
    CU_ASSERT(rec_is(&ours, ours.n - 1, lf_end->type, lf_end->id, lf_end->content, lf_end->len));
    CU_ASSERT(rec_is_end(&lf, lf.n - 1, 1, FCGI_REQUEST_COMPLETE));
    fastcgi_conn_fini(&c);
    lf_app_fini(&a);
    strbuf_fini(&lf_out);
    strbuf_fini(&our_out);
    strbuf_fini(&theirs);
    strbuf_fini(&in);
}

/* (c) Records as libfcgi-based clients write them: content padded to a
 * multiple of 8 (padding bytes are not zero here: they are to be ignored),
 * a name with a four-byte length, a four-byte length below 128, a pair
 * split across two PARAMS records. */
static void test_libfcgi_shaped_records(void)
{
    char name[131];
    memset(name, 'H', 130);
    name[130] = '\0';
    struct strbuf pairs = {0}, in = {0};
    fastcgi_pair_put(&pairs, name, 130, "v1", 2);
    const uint8_t short4[] = {5, 0x80, 0, 0, 3, 'S', 'H', 'O', 'R', 'T', 'a', 'b', 'c'};
    strbuf_put(&pairs, (const char *)short4, sizeof short4);
    CU_ASSERT_EQUAL((uint8_t)pairs.p[0], 0x80); /* the name's four-byte length */

    const uint8_t begin[8] = {0, FCGI_RESPONDER, FCGI_KEEP_CONN};
    put_record(&in, FCGI_BEGIN_REQUEST, 1, begin, 8, 0);
    size_t split = pairs.len - sizeof short4 + 3;
    put_record(&in, FCGI_PARAMS, 1, pairs.p, split, (uint8_t)(-split & 7));
    put_record(&in, FCGI_PARAMS, 1, pairs.p + split, pairs.len - split,
               (uint8_t)(-(pairs.len - split) & 7));
    put_record(&in, FCGI_PARAMS, 1, NULL, 0, 0);
    put_record(&in, FCGI_STDIN, 1, "hello", 5, 3);
    put_record(&in, FCGI_STDIN, 1, " world", 6, 2);
    put_record(&in, FCGI_STDIN, 1, NULL, 0, 8);

    const size_t chunks[] = {1, 3, in.len};
    for (size_t i = 0; i < TG_ARRAY_LEN(chunks); i++) {
        struct fastcgi_conn c;
        fastcgi_conn_init(&c, 64);
        CU_ASSERT_EQUAL(feed(&c, in.p, in.len, chunks[i]), 0);
        struct fastcgi_request *r = fastcgi_conn_next(&c);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT(r->keep_conn && r->role == FCGI_RESPONDER);
        CU_ASSERT_EQUAL(r->nenv, 2);
        CU_ASSERT(param_is(r, name, "v1"));
        CU_ASSERT(param_is(r, "SHORT", "abc"));
        CU_ASSERT_STRING_EQUAL(r->body.p, "hello world");
        CU_ASSERT_EQUAL(c.out.len, 0);
        fastcgi_conn_fini(&c);
    }
    strbuf_fini(&pairs);
    strbuf_fini(&in);
}

int main(void)
{
    if (FCGX_Init() != 0) {
        fprintf(stderr, "fastcgi: FCGX_Init failed\n");
        return 1;
    }
    static const struct unit_test tests[] = {
        UNIT_TEST(test_header_encode_decode),
        UNIT_TEST(test_begin_and_end_records),
        UNIT_TEST(test_stream_put_splits),
        UNIT_TEST(test_pair_lengths),
        UNIT_TEST(test_pair_truncated),
        UNIT_TEST(test_responder_byte_by_byte),
        UNIT_TEST(test_responder_in_pieces_of_seven),
        UNIT_TEST(test_responder_in_one_go),
        UNIT_TEST(test_param_first_wins),
        UNIT_TEST(test_authorizer_completes_at_params_end),
        UNIT_TEST(test_interleaved_answered_out_of_order),
        UNIT_TEST(test_overloaded_beyond_max_reqs),
        UNIT_TEST(test_abort_before_complete),
        UNIT_TEST(test_abort_after_complete),
        UNIT_TEST(test_get_values),
        UNIT_TEST(test_get_values_result_fits_records),
        UNIT_TEST(test_unknown_management_type),
        UNIT_TEST(test_unknown_role),
        UNIT_TEST(test_body_too_large),
        UNIT_TEST(test_params_bytes_limit),
        UNIT_TEST(test_params_count_limit),
        UNIT_TEST(test_protocol_errors),
        UNIT_TEST(test_records_for_unknown_ids),
        UNIT_TEST(test_large_answer_split),
        UNIT_TEST(test_conn_done),
        UNIT_TEST(test_libfcgi_reads_our_request),
        UNIT_TEST(test_libfcgi_answer_matches_ours),
        UNIT_TEST(test_libfcgi_shaped_records),
    };
    return unit_run("fastcgi", tests, TG_ARRAY_LEN(tests));
}
