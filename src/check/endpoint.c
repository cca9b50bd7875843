#include "endpoint.h"

#include <string.h>

#include "util.h"

/* A normal path before dot segments are removed may be longer than the
 * result ("/a/../b"); this bounds the work for one request. */
#define SPELLED_MAX (3 * ENDPOINT_MAX)

static bool is_alnum(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_unreserved(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* What a path may hold unescaped: pchar and the segment separator. */
static bool is_path_char(unsigned char c)
{
    return is_unreserved(c) || (c && strchr("!$&'()*+,;=:@/", c));
}

static const char HEX[] = "0123456789ABCDEF";

/* Pass 1: every byte in its one spelling (decoded if unreserved, else a
 * path character or an upper-case escape). */
static enum endpoint_status spell(const char *p, const char *end, char *buf, size_t *len)
{
    size_t n = 0;
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '%') {
            int hi = end - p > 2 ? hex_digit((unsigned char)p[1]) : -1;
            int lo = hi < 0 ? -1 : hex_digit((unsigned char)p[2]);
            if (hi < 0 || lo < 0)
                return ENDPOINT_BAD_ESCAPE;
            c = (unsigned char)(hi * 16 + lo);
            p += 2;
            if (c == '/' || c == '\\' || c == 0)
                return ENDPOINT_AMBIGUOUS;
            if (!is_unreserved(c))
                goto escape;
        } else if (c == '\\') {
            return ENDPOINT_AMBIGUOUS; /* a separator to some servers, as escaped */
        } else if (!is_path_char(c)) {
            goto escape;
        }
        if (n + 1 > SPELLED_MAX)
            return ENDPOINT_TOO_LONG;
        buf[n++] = (char)c;
        continue;
    escape:
        if (n + 3 > SPELLED_MAX)
            return ENDPOINT_TOO_LONG;
        buf[n++] = '%';
        buf[n++] = HEX[c >> 4];
        buf[n++] = HEX[c & 15];
    }
    *len = n;
    return ENDPOINT_OK;
}

/* Pass 2: the segments of path (starting with '/') without empty, "." and
 * ".." segments (RFC 3986 section 5.2.4), appended to out at *n.  A final
 * empty, "." or ".." segment leaves a trailing slash, as in the RFC. */
static enum endpoint_status resolve(const char *path, size_t len, char *out, size_t *n, size_t max)
{
    size_t root = *n; /* out[root] is the path's leading '/' */
    if (*n + 1 > max)
        return ENDPOINT_TOO_LONG;
    out[(*n)++] = '/';
    size_t i = 1;
    while (i <= len) {
        size_t end = i;
        while (end < len && path[end] != '/')
            end++;
        size_t seg = end - i;
        bool last = end >= len;
        if (seg == 2 && path[i] == '.' && path[i + 1] == '.') {
            /* out ends with '/': drop the segment before it, if any */
            if (*n - 1 > root) {
                size_t k = *n - 1;
                while (k > root && out[k - 1] != '/')
                    k--;
                *n = k;
            }
        } else if (seg > 0 && !(seg == 1 && path[i] == '.')) {
            if (*n + seg + !last > max)
                return ENDPOINT_TOO_LONG;
            memcpy(out + *n, path + i, seg);
            *n += seg;
            if (!last)
                out[(*n)++] = '/';
        }
        i = end + 1;
    }
    return ENDPOINT_OK;
}

/* Copies "METHOD " into out; *n is its length. */
static enum endpoint_status put_method(const char *m, size_t mlen, char *out, size_t *n)
{
    if (mlen == 0 || mlen > ENDPOINT_METHOD_MAX)
        return ENDPOINT_BAD_METHOD;
    for (size_t i = 0; i < mlen; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return ENDPOINT_BAD_METHOD;
    memcpy(out, m, mlen);
    out[mlen] = ' ';
    *n = mlen + 1;
    return ENDPOINT_OK;
}

static enum endpoint_status build(const char *method, size_t mlen, const char *path,
                                  char out[ENDPOINT_MAX + 1])
{
    size_t n = 0, len = 0;
    enum endpoint_status st = put_method(method, mlen, out, &n);
    if (st == ENDPOINT_OK && path[0] != '/')
        st = ENDPOINT_BAD_FORM;
    /* what follows '?' or '#' is not part of the path */
    const char *end = path + strcspn(path, "?#");
    char spelled[SPELLED_MAX];
    if (st == ENDPOINT_OK)
        st = spell(path, end, spelled, &len);
    if (st == ENDPOINT_OK)
        st = resolve(spelled, len, out, &n, ENDPOINT_MAX);
    if (st != ENDPOINT_OK) {
        out[0] = '\0';
        return st;
    }
    out[n] = '\0';
    return ENDPOINT_OK;
}

enum endpoint_status endpoint_from_request(const char *method, const char *path,
                                           char out[ENDPOINT_MAX + 1])
{
    return build(method ? method : "", method ? strlen(method) : 0, path ? path : "", out);
}

enum endpoint_status endpoint_normalize(const char *text, char out[ENDPOINT_MAX + 1])
{
    const char *sp = strchr(text, ' ');
    if (!sp) {
        out[0] = '\0';
        return ENDPOINT_BAD_FORM;
    }
    return build(text, (size_t)(sp - text), sp + 1, out);
}

enum endpoint_status endpoint_pattern_check(const char *pattern)
{
    if (strcmp(pattern, "*") == 0) /* every endpoint, but not an unscoped check */
        return ENDPOINT_OK;
    size_t len = strlen(pattern);
    if (len > ENDPOINT_PATTERN_MAX)
        return ENDPOINT_TOO_LONG;
    bool wildcard = len > 0 && pattern[len - 1] == '*';
    size_t plen = len - wildcard;
    if (memchr(pattern, '*', plen))
        return ENDPOINT_NOT_NORMAL;
    /* A prefix need not be a normal path itself ("GET /.well" is the prefix
     * of "GET /.well-known"): it must stay a prefix of its own continuation,
     * normalised. */
    char text[ENDPOINT_PATTERN_MAX + 2], normal[ENDPOINT_MAX + 1];
    memcpy(text, pattern, plen);
    if (wildcard)
        text[plen++] = 'x';
    text[plen] = '\0';
    enum endpoint_status st = endpoint_normalize(text, normal);
    if (st != ENDPOINT_OK)
        return st;
    return strcmp(normal, text) == 0 ? ENDPOINT_OK : ENDPOINT_NOT_NORMAL;
}

bool endpoint_match(const char *pattern, const char *endpoint)
{
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*')
        return strncmp(pattern, endpoint, n - 1) == 0;
    return strcmp(pattern, endpoint) == 0;
}

const char *endpoint_status_text(enum endpoint_status st)
{
    switch (st) {
    case ENDPOINT_OK: return "valid";
    case ENDPOINT_BAD_METHOD: return "the method must be 1-20 letters A-Z";
    case ENDPOINT_BAD_FORM: return "it must be \"METHOD /path\"";
    case ENDPOINT_BAD_ESCAPE: return "a '%' is not followed by two hex digits";
    case ENDPOINT_AMBIGUOUS: return "a '\\' or an escaped '/', '\\' or NUL has no single meaning";
    case ENDPOINT_TOO_LONG: return "it is too long";
    case ENDPOINT_NOT_NORMAL: return "it is not in normal form";
    }
    return "invalid";
}
