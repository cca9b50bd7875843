#include "jsonx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void path_join(char *out, size_t size, const char *prefix, const char *name)
{
    if (!prefix || !*prefix)
        snprintf(out, size, "%s", name);
    else
        snprintf(out, size, "%s.%s", prefix, name);
}

/* Every string, including member names, must be valid UTF-8 without NUL:
 * PostgreSQL text refuses both and a key name must round-trip exactly. */
static int check_strings(json_object *o, const char *path, int depth, struct api_error *e)
{
    char sub[160];
    switch (json_object_get_type(o)) {
    case json_type_string: {
        const char *s = json_object_get_string(o);
        size_t len = (size_t)json_object_get_string_len(o);
        if (memchr(s, '\0', len) || !utf8_valid(s, len)) {
            api_error_set(e, ERR_INVALID_ARGUMENT, path,
                          "%s must be valid UTF-8 text without NUL characters",
                          *path ? path : "the body");
            return -1;
        }
        return 0;
    }
    case json_type_object: {
        json_object_object_foreach(o, k, v) {
            size_t klen = strlen(k);
            if (!utf8_valid(k, klen)) {
                api_error_set(e, ERR_INVALID_ARGUMENT, path,
                              "member names must be valid UTF-8");
                return -1;
            }
            path_join(sub, sizeof sub, path, k);
            if (check_strings(v, sub, depth + 1, e))
                return -1;
        }
        return 0;
    }
    case json_type_array: {
        size_t n = json_object_array_length(o);
        for (size_t i = 0; i < n; i++) {
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            if (check_strings(json_object_array_get_idx(o, i), sub, depth + 1, e))
                return -1;
        }
        return 0;
    }
    default:
        return 0;
    }
}

static int hex4(const char *p, size_t avail)
{
    int v = 0;
    if (avail < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Length of a JSON number at t (RFC 8259 grammar), 0 if there is none. */
static size_t number_len(const char *t, size_t len)
{
    size_t i = 0;
    if (i < len && t[i] == '-')
        i++;
    if (i < len && t[i] == '0') {
        i++;
    } else if (i < len && t[i] >= '1' && t[i] <= '9') {
        while (i < len && t[i] >= '0' && t[i] <= '9')
            i++;
    } else {
        return 0;
    }
    if (i < len && t[i] == '.') {
        size_t d = ++i;
        while (i < len && t[i] >= '0' && t[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    if (i < len && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (i < len && (t[i] == '+' || t[i] == '-'))
            i++;
        size_t d = i;
        while (i < len && t[i] >= '0' && t[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    return i;
}

/* One string starting after its opening quote: raw control characters and
 * unknown escapes are refused; an escaped NUL or an unpaired surrogate (which
 * json-c would turn into U+FFFD, storing what the client never sent, or cut a
 * member name at) sets *bad_text.  Returns the
 * length up to and including the closing quote, or 0. */
static size_t string_len(const char *t, size_t len, bool *bad_text)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '"')
            return i + 1;
        if (c < 0x20)
            return 0;
        if (c != '\\')
            continue;
        if (++i >= len)
            return 0;
        if (strchr("\"\\/bfnrt", t[i]))
            continue;
        if (t[i] != 'u')
            return 0;
        int cp = hex4(t + i + 1, len - i - 1);
        if (cp < 0)
            return 0;
        i += 4;
        if (cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) {
            *bad_text = true;
        } else if (cp >= 0xD800 && cp <= 0xDBFF) {
            int lo = i + 2 < len && t[i + 1] == '\\' && t[i + 2] == 'u'
                         ? hex4(t + i + 3, len - i - 3)
                         : -1;
            if (lo < 0xDC00 || lo > 0xDFFF)
                *bad_text = true;
            else
                i += 6;
        }
    }
    return 0;
}

/* json-c accepts more than RFC 8259 even in strict mode (NaN, "1.", raw
 * control characters in strings): the tokens are checked here first; json-c
 * then checks the structure. */
static int lexically_strict(const char *t, size_t len, bool *bad_text)
{
    static const char *const literals[] = {"true", "false", "null"};
    size_t i = 0;
    while (i < len) {
        char c = t[i];
        if (strchr(" \t\r\n{}[]:,", c)) {
            i++;
        } else if (c == '"') {
            size_t n = string_len(t + i + 1, len - i - 1, bad_text);
            if (n == 0)
                return -1;
            i += 1 + n;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t n = number_len(t + i, len - i);
            if (n == 0)
                return -1;
            i += n;
        } else {
            size_t k;
            for (k = 0; k < TG_ARRAY_LEN(literals); k++) {
                size_t n = strlen(literals[k]);
                if (len - i >= n && memcmp(t + i, literals[k], n) == 0) {
                    i += n;
                    break;
                }
            }
            if (k == TG_ARRAY_LEN(literals))
                return -1;
        }
    }
    return 0;
}

json_object *jsonx_parse(const char *text, size_t len, struct api_error *e)
{
    if (len == 0) {
        api_error_set(e, ERR_INVALID_JSON, NULL, "The request body is empty; a JSON object is expected.");
        return NULL;
    }
    bool bad_text = false;
    if (lexically_strict(text, len, &bad_text) != 0) {
        api_error_set(e, ERR_INVALID_JSON, NULL,
                      "The request body is not valid JSON (bad token).");
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(JSONX_MAX_DEPTH + 1);
    if (!tok)
        abort();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (jerr == json_tokener_continue) {
        /* A document that is a bare number ends only at the end of input. */
        o = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        if (jerr == json_tokener_continue)
            jerr = json_tokener_error_parse_eof;
    } else if (jerr == json_tokener_success) {
        /* Only whitespace may follow the document. */
        size_t end = json_tokener_get_parse_end(tok);
        while (end < len && strchr(" \t\r\n", text[end]))
            end++;
        if (end != len)
            jerr = json_tokener_error_parse_unexpected;
    }
    json_tokener_free(tok);
    if (jerr != json_tokener_success) {
        json_object_put(o);
        api_error_set(e, ERR_INVALID_JSON, NULL, "The request body is not valid JSON (%s).",
                      jerr == json_tokener_error_depth ? "nested too deeply"
                                                       : json_tokener_error_desc(jerr));
        return NULL;
    }
    if (!o) {
        api_error_set(e, ERR_INVALID_ARGUMENT, NULL, "The request body must be a JSON object.");
        return NULL;
    }
    /* Values first: their errors can name the field. */
    if (check_strings(o, "", 0, e)) {
        json_object_put(o);
        return NULL;
    }
    if (bad_text) {
        json_object_put(o);
        api_error_set(e, ERR_INVALID_ARGUMENT, NULL,
                      "Strings must be valid Unicode text without NUL characters.");
        return NULL;
    }
    return o;
}

static bool type_matches(json_object *v, enum jx_type t)
{
    switch (t) {
    case JX_STRING:
        return json_object_is_type(v, json_type_string);
    case JX_INT:
        return json_object_is_type(v, json_type_int);
    case JX_BOOL:
        return json_object_is_type(v, json_type_boolean);
    case JX_OBJECT:
        return json_object_is_type(v, json_type_object);
    case JX_ARRAY:
        return json_object_is_type(v, json_type_array);
    case JX_NUMBER:
        return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
    case JX_ANY:
        return true;
    }
    return false;
}

static const char *type_name(enum jx_type t)
{
    static const char *const names[] = {"a string", "an integer", "a boolean", "an object",
                                        "an array", "a number", "any value"};
    return names[t];
}

int jsonx_check(json_object *obj, const struct jx_field *fields, size_t nfields,
                const char *prefix, struct api_error *e)
{
    char path[160];
    if (!json_object_is_type(obj, json_type_object)) {
        api_error_set(e, ERR_INVALID_ARGUMENT, prefix, "%s must be a JSON object.",
                      *prefix ? prefix : "The request body");
        return -1;
    }
    json_object_object_foreach(obj, k, v) {
        size_t i;
        for (i = 0; i < nfields; i++)
            if (strcmp(fields[i].name, k) == 0)
                break;
        path_join(path, sizeof path, prefix, k);
        if (i == nfields) {
            api_error_set(e, ERR_UNKNOWN_FIELD, path, "Unknown field '%s'.", path);
            return -1;
        }
        if (v == NULL) {
            if (!fields[i].nullable) {
                api_error_set(e, ERR_INVALID_ARGUMENT, path, "%s must not be null.", path);
                return -1;
            }
            continue;
        }
        if (!type_matches(v, fields[i].type)) {
            api_error_set(e, ERR_INVALID_ARGUMENT, path, "%s must be %s.", path,
                          type_name(fields[i].type));
            return -1;
        }
    }
    for (size_t i = 0; i < nfields; i++) {
        if (fields[i].required && !jsonx_has(obj, fields[i].name)) {
            path_join(path, sizeof path, prefix, fields[i].name);
            api_error_set(e, ERR_MISSING_FIELD, path, "Missing required field '%s'.", path);
            return -1;
        }
    }
    return 0;
}

json_object *jsonx_get(json_object *obj, const char *name)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, name, &v))
        return NULL;
    return v;
}

bool jsonx_has(json_object *obj, const char *name)
{
    return json_object_object_get_ex(obj, name, NULL);
}

int jsonx_string_len(json_object *str, const char *field, size_t min, size_t max, bool no_ctl,
                     struct api_error *e)
{
    const char *s = json_object_get_string(str);
    size_t len = (size_t)json_object_get_string_len(str);
    size_t chars = utf8_len(s, len);
    if (chars < min || chars > max) {
        api_error_set(e, ERR_INVALID_ARGUMENT, field,
                      "%s must be %zu to %zu characters long.", field, min, max);
        return -1;
    }
    if (no_ctl && has_control_chars(s, len)) {
        api_error_set(e, ERR_INVALID_ARGUMENT, field,
                      "%s must not contain control characters.", field);
        return -1;
    }
    return 0;
}

int jsonx_int_range(json_object *v, const char *field, int64_t min, int64_t max,
                    struct api_error *e)
{
    int64_t n = json_object_get_int64(v);
    if (!json_object_is_type(v, json_type_int) || n < min || n > max) {
        api_error_set(e, ERR_INVALID_ARGUMENT, field, "%s must be an integer from %lld to %lld.",
                      field, (long long)min, (long long)max);
        return -1;
    }
    return 0;
}

void jsonx_path(char *out, size_t size, const char *prefix, const char *name)
{
    int n = snprintf(out, size, "%s%s", prefix, name);
    if (n < 0)
        out[0] = '\0';
}

json_object *jsonx_error_body(const struct api_error *e)
{
    json_object *err = json_object_new_object();
    json_object_object_add(err, "code", json_object_new_string(err_name(e->code)));
    json_object_object_add(err, "message", json_object_new_string(e->message));
    if (e->field[0])
        json_object_object_add(err, "field", json_object_new_string(e->field));
    json_object *body = json_object_new_object();
    json_object_object_add(body, "error", err);
    return body;
}

json_object *jsonx_str_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

json_object *jsonx_time_or_null(bool has, int64_t ms)
{
    if (!has)
        return NULL;
    char buf[TG_TIME_LEN];
    format_time_ms(ms, buf);
    return json_object_new_string(buf);
}
