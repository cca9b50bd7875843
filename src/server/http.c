#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

bool http_request_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > HTTP_REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

void http_request_id_new(char out[HTTP_REQUEST_ID_MAX + 1])
{
    /* Unique, not secret: a per-thread generator seeded once from the
     * kernel saves a system call per request. */
    static _Thread_local uint64_t s[2];
    if (!s[0] && !s[1])
        random_bytes(s, sizeof s);
    for (int i = 0; i < 22; i++) {
        uint64_t x = s[0], y = s[1];
        s[0] = y;
        x ^= x << 23;
        s[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
        out[i] = BASE62[(s[1] + y) % 62];
    }
    out[22] = '\0';
}

long http_decode(const char *src, size_t len, bool plus_space, char *dst, size_t dstsize)
{
    size_t o = 0;
    if (dstsize == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = hex_digit(src[i + 1]), lo = hex_digit(src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c == '\0' || o + 1 >= dstsize)
            return -1;
        dst[o++] = c;
    }
    dst[o] = '\0';
    return (long)o;
}

int http_query_parse(struct http_req *r, const char *qs, struct api_error *e)
{
    if (!qs)
        return 0;
    const char *p = qs;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > 0) {
            if (r->nquery == HTTP_MAX_QUERY) {
                api_error_set(e, ERR_INVALID_ARGUMENT, NULL, "Too many query parameters.");
                return -1;
            }
            const char *eq = memchr(p, '=', len);
            size_t nlen = eq ? (size_t)(eq - p) : len;
            size_t vlen = eq ? len - nlen - 1 : 0;
            char *name = xmalloc(nlen + 1), *value = xmalloc(vlen + 1);
            if (http_decode(p, nlen, true, name, nlen + 1) < 0 ||
                http_decode(eq ? eq + 1 : "", vlen, true, value, vlen + 1) < 0 ||
                !utf8_valid(name, strlen(name)) || !utf8_valid(value, strlen(value))) {
                free(name);
                free(value);
                api_error_set(e, ERR_INVALID_ARGUMENT, NULL, "Malformed query string.");
                return -1;
            }
            r->query[r->nquery].name = name;
            r->query[r->nquery].value = value;
            r->nquery++;
        }
        p += len + (amp ? 1 : 0);
    }
    return 0;
}

const char *http_query(const struct http_req *r, const char *name)
{
    for (int i = r->nquery - 1; i >= 0; i--)
        if (strcmp(r->query[i].name, name) == 0)
            return r->query[i].value;
    return NULL;
}

int http_query_allow(const struct http_req *r, const char *const *allowed, struct api_error *e)
{
    for (int i = 0; i < r->nquery; i++) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, r->query[i].name) == 0;
        if (!ok) {
            char field[64];
            strlcpy_tg(field, r->query[i].name, sizeof field);
            api_error_set(e, ERR_INVALID_ARGUMENT, field, "Unknown query parameter '%s'.",
                          field);
            return -1;
        }
    }
    return 0;
}

const char *http_param(const struct http_req *r, const char *name)
{
    if (!r->env)
        return NULL;
    size_t n = strlen(name);
    for (char *const *e = r->env; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

int http_read_body(struct http_req *r, size_t max_body, struct api_error *e)
{
    const char *cl = http_param(r, "CONTENT_LENGTH");
    int64_t len = 0;
    if (cl && *cl && parse_int64(cl, 0, INT64_MAX, &len) != 0) {
        api_error_set(e, ERR_INVALID_ARGUMENT, NULL, "Invalid Content-Length.");
        return -1;
    }
    /* Without a length (a chunked body passed on as it came) the body is
     * what the server received, up to its end. */
    bool declared = cl && *cl;
    if (!declared)
        len = (int64_t)r->in_len;
    if ((uint64_t)len > max_body || (!declared && r->in_too_large)) {
        api_error_set(e, ERR_PAYLOAD_TOO_LARGE, NULL,
                      "The request body exceeds %zu bytes.", max_body);
        return -1;
    }
    /* A declared length governs, as it would on the wire: bytes past it
     * are not the body. */
    if (r->in_len < (size_t)len && !r->in_too_large) {
        api_error_set(e, ERR_INVALID_ARGUMENT, NULL, "The request body was truncated.");
        return -1;
    }
    if (r->in_too_large && r->in_len < (size_t)len) {
        api_error_set(e, ERR_PAYLOAD_TOO_LARGE, NULL,
                      "The request body exceeds %zu bytes.", max_body);
        return -1;
    }
    r->body = r->in ? r->in : "";
    r->body_len = (size_t)len;
    return 0;
}

int http_read(struct http_req *r, char *const *env, const char *in, size_t in_len,
              bool too_large, struct strbuf *out, struct api_error *e)
{
    r->env = env;
    r->in = in;
    r->in_len = in_len;
    r->in_too_large = too_large;
    r->out = out;
    r->method = http_param(r, "REQUEST_METHOD");
    if (!r->method)
        r->method = "GET";
    r->content_type = http_param(r, "CONTENT_TYPE");
    r->remote_addr = http_param(r, "REMOTE_ADDR");
    const char *rid = http_param(r, "HTTP_X_REQUEST_ID");
    if (rid && http_request_id_valid(rid))
        strlcpy_tg(r->request_id, rid, sizeof r->request_id);
    else
        http_request_id_new(r->request_id);
    log_set_request_id(r->request_id);

    const char *uri = http_param(r, "REQUEST_URI");
    if (!uri || !*uri)
        uri = "/";
    const char *q = strchr(uri, '?');
    r->path = q ? xstrndup(uri, (size_t)(q - uri)) : xstrdup(uri);
    return http_query_parse(r, q ? q + 1 : NULL, e);
}

void http_req_fini(struct http_req *r)
{
    for (int i = 0; i < r->nquery; i++) {
        free(r->query[i].name);
        free(r->query[i].value);
    }
    r->nquery = 0;
    free(r->path);
    r->path = NULL;
    r->body = NULL;
    log_set_request_id(NULL);
}

json_object *http_json_body(struct http_req *r, struct api_error *e)
{
    const char *ct = r->content_type ? r->content_type : "";
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n) != 0 || (ct[n] && ct[n] != ';' && ct[n] != ' ')) {
        api_error_set(e, ERR_UNSUPPORTED_MEDIA_TYPE, NULL,
                      "Send the body as Content-Type: application/json.");
        return NULL;
    }
    return jsonx_parse(r->body ? r->body : "", r->body_len, e);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    default: return status >= 500 ? "Internal Server Error" : "Error";
    }
}

/* A string literal, its length known at compile time. */
#define PUT_LIT(b, lit) strbuf_put((b), (lit), sizeof(lit) - 1)

static void put_head(struct http_req *r, int status, const char *extra_headers)
{
    struct strbuf *o = r->out;
    PUT_LIT(o, "Status: ");
    strbuf_int(o, status);
    strbuf_putc(o, ' ');
    const char *phrase = reason_phrase(status);
    strbuf_put(o, phrase, strlen(phrase));
    PUT_LIT(o, "\r\nX-Request-Id: ");
    strbuf_put(o, r->request_id, strlen(r->request_id));
    PUT_LIT(o, "\r\nCache-Control: no-store\r\n");
    if (extra_headers)
        strbuf_put(o, extra_headers, strlen(extra_headers));
}

static void put_body(struct strbuf *o, const char *content_type, const char *text, size_t len,
                     bool newline)
{
    PUT_LIT(o, "Content-Type: ");
    strbuf_put(o, content_type, strlen(content_type));
    PUT_LIT(o, "\r\nContent-Length: ");
    strbuf_int(o, (int64_t)(len + (newline ? 1 : 0)));
    PUT_LIT(o, "\r\n\r\n");
    strbuf_put(o, text, len);
    if (newline)
        strbuf_putc(o, '\n');
}

void http_reply_text(struct http_req *r, int status, const char *content_type, const char *text,
                     size_t len)
{
    r->status = status;
    if (!r->out)
        return;
    put_head(r, status, NULL);
    put_body(r->out, content_type, text, len, false);
}

void http_reply_json_text(struct http_req *r, int status, const char *extra_headers,
                          const char *json, size_t len)
{
    r->status = status;
    if (!r->out)
        return;
    put_head(r, status, extra_headers);
    put_body(r->out, "application/json; charset=utf-8", json, len, true);
}

void http_reply(struct http_req *r, int status, json_object *body, const char *extra_headers)
{
    r->status = status;
    if (!r->out) {
        json_object_put(body);
        return;
    }
    put_head(r, status, extra_headers);
    if (body) {
        size_t len = 0;
        const char *s = json_object_to_json_string_length(
            body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        put_body(r->out, "application/json; charset=utf-8", s, len, true);
    } else {
        strbuf_put(r->out, "\r\n", 2);
    }
    json_object_put(body);
}

void http_stream_head(struct http_req *r, int status)
{
    http_stream_head_type(r, status, "application/json; charset=utf-8", NULL);
}

void http_stream_head_type(struct http_req *r, int status, const char *content_type,
                           const char *extra_headers)
{
    r->status = status;
    if (!r->out)
        return;
    put_head(r, status, extra_headers);
    PUT_LIT(r->out, "Content-Type: ");
    strbuf_put(r->out, content_type, strlen(content_type));
    PUT_LIT(r->out, "\r\n\r\n");
}

void http_reply_error(struct http_req *r, const struct api_error *e)
{
    http_reply(r, err_http_status(e->code), jsonx_error_body(e), NULL);
}
