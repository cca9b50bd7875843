/* Unit tests of http's pure parts: request ids, percent-decoding, the query
 * string, CGI parameters from a FastCGI request that never touches a socket,
 * the JSON body checks, and replies recorded without a connection. */
#include <string.h>

#include "http.h"
#include "log.h"
#include "unit.h"

/* ---- request ids ---- */

static void test_request_id_valid(void)
{
    CU_ASSERT_TRUE(http_request_id_valid("a"));
    CU_ASSERT_TRUE(http_request_id_valid("Az09._:-"));
    CU_ASSERT_TRUE(http_request_id_valid("3f2a9c1e-7b4d-4e8f-9a6b-1c2d3e4f5a6b"));
    char id[HTTP_REQUEST_ID_MAX + 2];
    memset(id, 'r', HTTP_REQUEST_ID_MAX);
    id[HTTP_REQUEST_ID_MAX] = '\0';
    CU_ASSERT_TRUE(http_request_id_valid(id)); /* 128 */
    id[HTTP_REQUEST_ID_MAX] = 'r';
    id[HTTP_REQUEST_ID_MAX + 1] = '\0';
    CU_ASSERT_FALSE(http_request_id_valid(id)); /* 129 */
    CU_ASSERT_FALSE(http_request_id_valid(""));
    CU_ASSERT_FALSE(http_request_id_valid("a b"));
    CU_ASSERT_FALSE(http_request_id_valid("a/b"));
    CU_ASSERT_FALSE(http_request_id_valid("a\nb"));
    CU_ASSERT_FALSE(http_request_id_valid("a\"b"));
    CU_ASSERT_FALSE(http_request_id_valid("caf\xC3\xA9"));
}

static void test_request_id_new(void)
{
    char a[HTTP_REQUEST_ID_MAX + 1], b[HTTP_REQUEST_ID_MAX + 1];
    http_request_id_new(a);
    http_request_id_new(b);
    CU_ASSERT_EQUAL(strlen(a), 22);
    CU_ASSERT_EQUAL(strspn(a, BASE62), 22);
    CU_ASSERT_TRUE(http_request_id_valid(a));
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
}

/* ---- percent-decoding ---- */

/* Decodes the literal src into a 64-byte buffer. */
static long dec(const char *src, bool plus, char out[64])
{
    return http_decode(src, strlen(src), plus, out, 64);
}

static void test_decode(void)
{
    char out[64];
    CU_ASSERT_EQUAL(dec("plain", false, out), 5);
    CU_ASSERT_STRING_EQUAL(out, "plain");
    CU_ASSERT_EQUAL(dec("a%20b", false, out), 3);
    CU_ASSERT_STRING_EQUAL(out, "a b");
    CU_ASSERT_EQUAL(dec("%41%62%2f%2F", false, out), 4);
    CU_ASSERT_STRING_EQUAL(out, "Ab//");
    CU_ASSERT_EQUAL(dec("%e2%82%AC", false, out), 3);
    CU_ASSERT_STRING_EQUAL(out, "\xE2\x82\xAC");
    CU_ASSERT_EQUAL(dec("a+b", true, out), 3);
    CU_ASSERT_STRING_EQUAL(out, "a b");
    CU_ASSERT_EQUAL(dec("a+b", false, out), 3);
    CU_ASSERT_STRING_EQUAL(out, "a+b");
    CU_ASSERT_EQUAL(dec("%2B", true, out), 1); /* an encoded plus stays a plus */
    CU_ASSERT_STRING_EQUAL(out, "+");
    CU_ASSERT_EQUAL(dec("", false, out), 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    /* Only len bytes are read. */
    CU_ASSERT_EQUAL(http_decode("abc%41", 3, false, out, sizeof out), 3);
    CU_ASSERT_STRING_EQUAL(out, "abc");
}

static void test_decode_bad(void)
{
    char out[64];
    CU_ASSERT_EQUAL(dec("%", false, out), -1);
    CU_ASSERT_EQUAL(dec("%4", false, out), -1);
    CU_ASSERT_EQUAL(dec("abc%4", false, out), -1);
    CU_ASSERT_EQUAL(dec("%zz", false, out), -1);
    CU_ASSERT_EQUAL(dec("%g1", false, out), -1);
    CU_ASSERT_EQUAL(dec("%1g", false, out), -1);
    CU_ASSERT_EQUAL(dec("%%41", false, out), -1);
    CU_ASSERT_EQUAL(dec("a%00b", false, out), -1);  /* NUL */
    CU_ASSERT_EQUAL(http_decode("a\0b", 3, false, out, sizeof out), -1);
    /* The escape must lie inside len. */
    CU_ASSERT_EQUAL(http_decode("%41", 2, false, out, sizeof out), -1);
}

static void test_decode_overflow(void)
{
    char out[4];
    CU_ASSERT_EQUAL(http_decode("abc", 3, false, out, sizeof out), 3); /* fits with NUL */
    CU_ASSERT_STRING_EQUAL(out, "abc");
    CU_ASSERT_EQUAL(http_decode("abcd", 4, false, out, sizeof out), -1);
    CU_ASSERT_EQUAL(http_decode("%41%42%43", 9, false, out, sizeof out), 3);
    CU_ASSERT_STRING_EQUAL(out, "ABC");
    CU_ASSERT_EQUAL(http_decode("%41%42%43%44", 12, false, out, sizeof out), -1);
    /* A buffer of size 1 holds only the terminator. */
    CU_ASSERT_EQUAL(http_decode("", 0, false, out, 1), 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_EQUAL(http_decode("a", 1, false, out, 1), -1);
}

/* dst holds dstsize bytes: with none, nothing may be written. */
static void test_decode_zero_size(void)
{
    char out[2] = {'x', 'y'};
    long rc = http_decode("", 0, false, out, 0);
    CU_ASSERT_EQUAL(out[0], 'x');
    CU_ASSERT_EQUAL(rc, -1); /* not even the terminator fits */
    out[0] = 'x';
    CU_ASSERT_EQUAL(http_decode("a", 1, false, out, 0), -1);
    CU_ASSERT_EQUAL(out[0], 'x');
}

/* ---- query strings ---- */

static void test_query_parse(void)
{
    struct http_req r;
    struct api_error e;
    memset(&r, 0, sizeof r);
    CU_ASSERT_EQUAL_FATAL(http_query_parse(&r, "limit=10&cursor=a%2Bb&q=hello+world&flag", &e), 0);
    CU_ASSERT_EQUAL(r.nquery, 4);
    CU_ASSERT_STRING_EQUAL(http_query(&r, "limit"), "10");
    CU_ASSERT_STRING_EQUAL(http_query(&r, "cursor"), "a+b");
    CU_ASSERT_STRING_EQUAL(http_query(&r, "q"), "hello world");
    CU_ASSERT_STRING_EQUAL(http_query(&r, "flag"), "");
    CU_ASSERT_PTR_NULL(http_query(&r, "absent"));
    CU_ASSERT_PTR_NULL(http_query(&r, "Limit"));
    http_req_fini(&r);
    CU_ASSERT_EQUAL(r.nquery, 0);
}

static void test_query_details(void)
{
    struct http_req r;
    struct api_error e;
    memset(&r, 0, sizeof r);
    /* Empty pieces are skipped; the last of a repeated name wins. */
    CU_ASSERT_EQUAL_FATAL(http_query_parse(&r, "&&x=1&&x=2&", &e), 0);
    CU_ASSERT_EQUAL(r.nquery, 2);
    CU_ASSERT_STRING_EQUAL(http_query(&r, "x"), "2");
    http_req_fini(&r);
    /* Names are decoded too; '=' after the first belongs to the value. */
    CU_ASSERT_EQUAL_FATAL(http_query_parse(&r, "my%20name=a=b&caf%C3%A9=%C3%A9", &e), 0);
    CU_ASSERT_STRING_EQUAL(http_query(&r, "my name"), "a=b");
    CU_ASSERT_STRING_EQUAL(http_query(&r, "caf\xC3\xA9"), "\xC3\xA9");
    http_req_fini(&r);
    /* No query at all. */
    CU_ASSERT_EQUAL(http_query_parse(&r, NULL, &e), 0);
    CU_ASSERT_EQUAL(http_query_parse(&r, "", &e), 0);
    CU_ASSERT_EQUAL(r.nquery, 0);
    CU_ASSERT_PTR_NULL(http_query(&r, "x"));
}

static void test_query_malformed(void)
{
    static const char *const bad[] = {
        "a=%zz", "a=%4", "a=1&b=%", "%zz=1", "a=%00", "a%00=1", "a=%C0%80", "a=%ED%A0%80",
        "a=%FF",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        struct http_req r;
        struct api_error e;
        memset(&r, 0, sizeof r);
        memset(&e, 0, sizeof e);
        CU_ASSERT_EQUAL(http_query_parse(&r, bad[i], &e), -1);
        CU_ASSERT_EQUAL(err_http_status(e.code), 400);
        CU_ASSERT_STRING_EQUAL(err_name(e.code), "invalid_argument");
        http_req_fini(&r);
    }
}

/* Names are echoed in errors ("field"), so they must be text like values. */
static void test_query_name_not_text(void)
{
    static const char *const bad[] = {"%FF=1", "%C0%80=1", "a%ED%A0%80b=1"};
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        struct http_req r;
        struct api_error e;
        memset(&r, 0, sizeof r);
        memset(&e, 0, sizeof e);
        CU_ASSERT_EQUAL(http_query_parse(&r, bad[i], &e), -1);
        CU_ASSERT_EQUAL(err_http_status(e.code), 400);
        http_req_fini(&r);
    }
}

static void test_query_count(void)
{
    char qs[HTTP_MAX_QUERY * 8 + 16] = "";
    for (int i = 0; i < HTTP_MAX_QUERY; i++) {
        char p[16];
        snprintf(p, sizeof p, "%sp%d=%d", i ? "&" : "", i, i);
        strcat(qs, p);
    }
    struct http_req r;
    struct api_error e;
    memset(&r, 0, sizeof r);
    CU_ASSERT_EQUAL(http_query_parse(&r, qs, &e), 0); /* 32 */
    CU_ASSERT_EQUAL(r.nquery, HTTP_MAX_QUERY);
    CU_ASSERT_STRING_EQUAL(http_query(&r, "p31"), "31");
    http_req_fini(&r);
    strcat(qs, "&one=more");
    memset(&e, 0, sizeof e);
    CU_ASSERT_EQUAL(http_query_parse(&r, qs, &e), -1); /* 33 */
    CU_ASSERT_EQUAL(err_http_status(e.code), 400);
    CU_ASSERT_STRING_EQUAL(err_name(e.code), "invalid_argument");
    CU_ASSERT(r.nquery <= HTTP_MAX_QUERY);
    http_req_fini(&r);
}

static void test_query_allow(void)
{
    static const char *const allowed[] = {"limit", "cursor", NULL};
    static const char *const none[] = {NULL};
    struct http_req r;
    struct api_error e;
    memset(&r, 0, sizeof r);
    CU_ASSERT_EQUAL(http_query_allow(&r, none, &e), 0);
    CU_ASSERT_EQUAL_FATAL(http_query_parse(&r, "limit=5&cursor=x&limit=6", &e), 0);
    CU_ASSERT_EQUAL(http_query_allow(&r, allowed, &e), 0);
    http_req_fini(&r);
    CU_ASSERT_EQUAL_FATAL(http_query_parse(&r, "limit=5&sort=asc&foo=1", &e), 0);
    memset(&e, 0, sizeof e);
    CU_ASSERT_EQUAL(http_query_allow(&r, allowed, &e), -1);
    CU_ASSERT_EQUAL(err_http_status(e.code), 400);
    CU_ASSERT_STRING_EQUAL(err_name(e.code), "invalid_argument");
    CU_ASSERT_STRING_EQUAL(e.field, "sort"); /* the first one not allowed */
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "sort"));
    CU_ASSERT_EQUAL(http_query_allow(&r, none, &e), -1);
    CU_ASSERT_STRING_EQUAL(e.field, "limit");
    http_req_fini(&r);
}

/* ---- FastCGI parameters without a connection ---- */


static void test_read_params(void)
{
    char *envp[] = {"REQUEST_METHOD=POST",
                    "REQUEST_URI=/v1/keys/a%20b?limit=5&q=x+y",
                    "CONTENT_TYPE=application/json",
                    "REMOTE_ADDR=192.0.2.7",
                    "HTTP_X_REQUEST_ID=req-42.a:b_c",
                    "HTTP_AUTHORIZATION=Bearer t",
                    NULL};
    struct http_req r;
    struct api_error e;
    memset(&r, 0, sizeof r);
    CU_ASSERT_EQUAL_FATAL(http_read(&r, envp, NULL, 0, false, NULL, &e), 0);
    CU_ASSERT_STRING_EQUAL(r.method, "POST");
    CU_ASSERT_STRING_EQUAL(r.path, "/v1/keys/a%20b"); /* raw, without the query */
    CU_ASSERT_EQUAL(r.nquery, 2);
    CU_ASSERT_STRING_EQUAL(http_query(&r, "limit"), "5");
    CU_ASSERT_STRING_EQUAL(http_query(&r, "q"), "x y");
    CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
    CU_ASSERT_STRING_EQUAL(r.remote_addr, "192.0.2.7");
    CU_ASSERT_STRING_EQUAL(r.request_id, "req-42.a:b_c");
    CU_ASSERT_STRING_EQUAL(log_request_id(), "req-42.a:b_c");
    CU_ASSERT_STRING_EQUAL(http_param(&r, "HTTP_AUTHORIZATION"), "Bearer t");
    CU_ASSERT_PTR_NULL(http_param(&r, "HTTP_COOKIE"));
    http_req_fini(&r);
    CU_ASSERT_PTR_NULL(r.path);
    CU_ASSERT_EQUAL(r.nquery, 0);
    CU_ASSERT_STRING_EQUAL(log_request_id(), "");
    http_req_fini(&r); /* twice is harmless */
}

static void test_read_defaults(void)
{
    char *envp[] = {"HTTP_X_REQUEST_ID=bad id with spaces", NULL};
    struct http_req r;
    struct api_error e;
    memset(&r, 0, sizeof r);
    CU_ASSERT_EQUAL_FATAL(http_read(&r, envp, NULL, 0, false, NULL, &e), 0);
    CU_ASSERT_STRING_EQUAL(r.method, "GET");
    CU_ASSERT_STRING_EQUAL(r.path, "/");
    CU_ASSERT_EQUAL(r.nquery, 0);
    CU_ASSERT_PTR_NULL(r.content_type);
    /* An unusable client id is replaced by a fresh one. */
    CU_ASSERT_EQUAL(strlen(r.request_id), 22);
    CU_ASSERT_TRUE(http_request_id_valid(r.request_id));
    http_req_fini(&r);

    char *envp2[] = {"REQUEST_URI=/x?a=%zz", NULL};
    memset(&r, 0, sizeof r);
    memset(&e, 0, sizeof e);
    CU_ASSERT_EQUAL(http_read(&r, envp2, NULL, 0, false, NULL, &e), -1);
    CU_ASSERT_EQUAL(err_http_status(e.code), 400);
    CU_ASSERT_STRING_EQUAL(r.path, "/x");
    http_req_fini(&r);
}

static void test_param_without_fcgx(void)
{
    struct http_req r;
    memset(&r, 0, sizeof r);
    CU_ASSERT_PTR_NULL(http_param(&r, "REQUEST_METHOD"));
}

/* A request of envp with body (len bytes; too_large as the server says). */
static void body_request(struct http_req *r, char **envp, const char *body, size_t len,
                         bool too_large)
{
    struct api_error e;
    memset(r, 0, sizeof *r);
    CU_ASSERT_EQUAL_FATAL(http_read(r, envp, body, len, too_large, NULL, &e), 0);
}

static void test_read_body_limits(void)
{
    struct http_req r;
    struct api_error e;
    char *big[] = {"CONTENT_LENGTH=65537", NULL};
    body_request(&r, big, NULL, 0, false);
    memset(&e, 0, sizeof e);
    CU_ASSERT_EQUAL(http_read_body(&r, 65536, &e), -1);
    CU_ASSERT_EQUAL(err_http_status(e.code), 413);
    CU_ASSERT_STRING_EQUAL(err_name(e.code), "payload_too_large");
    http_req_fini(&r);

    static const char *const invalid[] = {"CONTENT_LENGTH=abc", "CONTENT_LENGTH=-1",
                                          "CONTENT_LENGTH=+5", "CONTENT_LENGTH=99999999999999999999"};
    for (size_t i = 0; i < TG_ARRAY_LEN(invalid); i++) {
        char *envp[] = {(char *)invalid[i], NULL};
        body_request(&r, envp, NULL, 0, false);
        memset(&e, 0, sizeof e);
        CU_ASSERT_EQUAL(http_read_body(&r, 65536, &e), -1);
        CU_ASSERT_EQUAL(err_http_status(e.code), 400);
        http_req_fini(&r);
    }

    /* No body at all: an empty one. */
    char *zero[] = {"CONTENT_LENGTH=0", NULL};
    body_request(&r, zero, NULL, 0, false);
    CU_ASSERT_EQUAL(http_read_body(&r, 65536, &e), 0);
    CU_ASSERT_EQUAL(r.body_len, 0);
    CU_ASSERT_STRING_EQUAL(r.body, "");
    http_req_fini(&r);
    CU_ASSERT_PTR_NULL(r.body);

    /* The declared length governs: fewer bytes is a truncated body, more
     * are not part of it, and a body the server cut is too large. */
    char *five[] = {"CONTENT_LENGTH=5", NULL};
    body_request(&r, five, "abc", 3, false);
    CU_ASSERT_EQUAL(http_read_body(&r, 65536, &e), -1);
    CU_ASSERT_EQUAL(err_http_status(e.code), 400);
    http_req_fini(&r);
    body_request(&r, five, "abcdefg", 7, false);
    CU_ASSERT_EQUAL(http_read_body(&r, 65536, &e), 0);
    CU_ASSERT_EQUAL(r.body_len, 5);
    CU_ASSERT_EQUAL(memcmp(r.body, "abcde", 5), 0);
    http_req_fini(&r);
    body_request(&r, five, "abc", 3, true);
    CU_ASSERT_EQUAL(http_read_body(&r, 65536, &e), -1);
    CU_ASSERT_EQUAL(err_http_status(e.code), 413);
    http_req_fini(&r);

    /* No length (a chunked body passed on): all that arrived, within the
     * route's limit. */
    char *none[] = {"REQUEST_METHOD=POST", NULL};
    body_request(&r, none, "{\"a\":1}", 7, false);
    CU_ASSERT_EQUAL(http_read_body(&r, 65536, &e), 0);
    CU_ASSERT_EQUAL(r.body_len, 7);
    http_req_fini(&r);
    body_request(&r, none, "0123456789", 10, false);
    CU_ASSERT_EQUAL(http_read_body(&r, 8, &e), -1);
    CU_ASSERT_EQUAL(err_http_status(e.code), 413);
    http_req_fini(&r);
    body_request(&r, none, "0123", 4, true);
    CU_ASSERT_EQUAL(http_read_body(&r, 65536, &e), -1);
    CU_ASSERT_EQUAL(err_http_status(e.code), 413);
    http_req_fini(&r);
}

/* ---- Answers ---- */

static void test_reply_writes_cgi_answer(void)
{
    struct strbuf out = {0};
    char *envp[] = {"HTTP_X_REQUEST_ID=rid-1", NULL};
    struct http_req r;
    struct api_error e;
    memset(&r, 0, sizeof r);
    CU_ASSERT_EQUAL_FATAL(http_read(&r, envp, NULL, 0, false, &out, &e), 0);
    json_object *body = json_object_new_object();
    json_object_object_add(body, "a", json_object_new_string("x/y"));
    http_reply(&r, 429, body, "Retry-After: 2\r\n");
    CU_ASSERT_EQUAL(r.status, 429);
    CU_ASSERT_STRING_EQUAL(out.p, "Status: 429 Too Many Requests\r\n"
                                  "X-Request-Id: rid-1\r\n"
                                  "Cache-Control: no-store\r\n"
                                  "Retry-After: 2\r\n"
                                  "Content-Type: application/json; charset=utf-8\r\n"
                                  "Content-Length: 12\r\n\r\n"
                                  "{\"a\":\"x/y\"}\n");
    strbuf_reset(&out);
    http_reply(&r, 204, NULL, NULL);
    CU_ASSERT_STRING_EQUAL(out.p, "Status: 204 No Content\r\nX-Request-Id: rid-1\r\n"
                                  "Cache-Control: no-store\r\n\r\n");
    strbuf_reset(&out);
    http_reply_text(&r, 200, "text/plain", "ok", 2);
    CU_ASSERT_STRING_EQUAL(out.p, "Status: 200 OK\r\nX-Request-Id: rid-1\r\n"
                                  "Cache-Control: no-store\r\nContent-Type: text/plain\r\n"
                                  "Content-Length: 2\r\n\r\nok");
    /* Without an output buffer the answer is only recorded. */
    r.out = NULL;
    http_reply(&r, 503, json_object_new_object(), NULL);
    CU_ASSERT_EQUAL(r.status, 503);
    http_req_fini(&r);
    strbuf_fini(&out);
}

/* A streamed answer starts with the headers alone, without Content-Length. */
static void test_stream_head(void)
{
    struct strbuf out = {0};
    char *envp[] = {"HTTP_X_REQUEST_ID=rid-2", NULL};
    struct http_req r;
    struct api_error e;
    memset(&r, 0, sizeof r);
    CU_ASSERT_EQUAL_FATAL(http_read(&r, envp, NULL, 0, false, &out, &e), 0);
    http_stream_head(&r, 200);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(out.p, "Status: 200 OK\r\nX-Request-Id: rid-2\r\n"
                                  "Cache-Control: no-store\r\n"
                                  "Content-Type: application/json; charset=utf-8\r\n\r\n");
    strbuf_reset(&out);
    http_stream_head_type(&r, 200, "text/csv; charset=utf-8",
                          "Content-Disposition: attachment; filename=\"x.csv\"\r\n");
    CU_ASSERT_STRING_EQUAL(out.p, "Status: 200 OK\r\nX-Request-Id: rid-2\r\n"
                                  "Cache-Control: no-store\r\n"
                                  "Content-Disposition: attachment; filename=\"x.csv\"\r\n"
                                  "Content-Type: text/csv; charset=utf-8\r\n\r\n");
    r.out = NULL;
    http_stream_head(&r, 200);
    CU_ASSERT_EQUAL(r.status, 200);
    http_stream_head_type(&r, 206, "text/csv", NULL);
    CU_ASSERT_EQUAL(r.status, 206);
    http_req_fini(&r);
    strbuf_fini(&out);
}

/* ---- JSON bodies ---- */

static json_object *json_body(const char *ctype, const char *body, struct api_error *e)
{
    struct http_req r;
    memset(&r, 0, sizeof r);
    memset(e, 0, sizeof *e);
    r.content_type = ctype;
    r.body = (char *)body;
    r.body_len = body ? strlen(body) : 0;
    return http_json_body(&r, e);
}

static void test_json_body(void)
{
    struct api_error e;
    static const char *const ok[] = {"application/json", "application/json; charset=utf-8",
                                     "Application/JSON", "application/json;charset=UTF-8"};
    for (size_t i = 0; i < TG_ARRAY_LEN(ok); i++) {
        json_object *o = json_body(ok[i], "{\"a\":1}", &e);
        CU_ASSERT_PTR_NOT_NULL(o);
        json_object_put(o);
    }
    static const char *const bad[] = {NULL, "", "text/plain", "application/jsonp",
                                      "application/x-www-form-urlencoded", "json"};
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        CU_ASSERT_PTR_NULL(json_body(bad[i], "{\"a\":1}", &e));
        CU_ASSERT_EQUAL(err_http_status(e.code), 415);
        CU_ASSERT_STRING_EQUAL(err_name(e.code), "unsupported_media_type");
    }
    CU_ASSERT_PTR_NULL(json_body("application/json", "{\"a\":", &e));
    CU_ASSERT_EQUAL(err_http_status(e.code), 400);
    CU_ASSERT_STRING_EQUAL(err_name(e.code), "invalid_json");
    CU_ASSERT_PTR_NULL(json_body("application/json", NULL, &e));
    CU_ASSERT_EQUAL(err_http_status(e.code), 400);
    CU_ASSERT_STRING_EQUAL(err_name(e.code), "invalid_json");
}

/* ---- replies without a connection ---- */

static void test_reply_records_status(void)
{
    struct http_req r;
    memset(&r, 0, sizeof r);
    json_object *body = json_object_new_object();
    json_object_object_add(body, "ok", json_object_new_boolean(1));
    http_reply(&r, 201, body, "Location: /v1/keys/x\r\n"); /* takes the body */
    CU_ASSERT_EQUAL(r.status, 201);
    http_reply(&r, 204, NULL, NULL);
    CU_ASSERT_EQUAL(r.status, 204);
    struct api_error e;
    api_error_set(&e, ERR_RATE_LIMITED, NULL, "Slow down.");
    http_reply_error(&r, &e);
    CU_ASSERT_EQUAL(r.status, 429);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_request_id_valid),
        UNIT_TEST(test_request_id_new),
        UNIT_TEST(test_decode),
        UNIT_TEST(test_decode_bad),
        UNIT_TEST(test_decode_overflow),
        UNIT_TEST(test_decode_zero_size),
        UNIT_TEST(test_query_parse),
        UNIT_TEST(test_query_details),
        UNIT_TEST(test_query_malformed),
        UNIT_TEST(test_query_name_not_text),
        UNIT_TEST(test_query_count),
        UNIT_TEST(test_query_allow),
        UNIT_TEST(test_read_params),
        UNIT_TEST(test_read_defaults),
        UNIT_TEST(test_param_without_fcgx),
        UNIT_TEST(test_reply_writes_cgi_answer),
        UNIT_TEST(test_stream_head),
        UNIT_TEST(test_read_body_limits),
        UNIT_TEST(test_json_body),
        UNIT_TEST(test_reply_records_status),
    };
    return unit_run("http", tests, TG_ARRAY_LEN(tests));
}
