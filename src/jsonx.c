#include "jsonx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_error_set(struct api_error *e, int status, const char *code, const char *field,
                   const char *fmt, ...)
{
    e->status = status;
    e->code = code;
    strlcpy_tg(e->field, field ? field : "", sizeof e->field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

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
            api_error_set(e, 400, "invalid_argument", path,
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
                api_error_set(e, 400, "invalid_argument", path,
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

/* json-c turns an unpaired surrogate escape into U+FFFD, which would store
 * something the client never sent: find them in the raw text first. */
static bool has_lone_surrogate(const char *t, size_t len)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (!in_string) {
            in_string = t[i] == '"';
            continue;
        }
        if (t[i] == '"') {
            in_string = false;
        } else if (t[i] == '\\' && i + 1 < len) {
            i++;
            if (t[i] != 'u')
                continue;
            int cp = hex4(t + i + 1, len - i - 1);
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return true;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                int lo = i + 6 < len && t[i + 5] == '\\' && t[i + 6] == 'u'
                             ? hex4(t + i + 7, len - i - 7)
                             : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return true;
                i += 6;
            }
            i += 4;
        }
    }
    return false;
}

json_object *jsonx_parse(const char *text, size_t len, struct api_error *e)
{
    if (len == 0) {
        api_error_set(e, 400, "invalid_json", NULL, "The request body is empty; a JSON object is expected.");
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(JSONX_MAX_DEPTH);
    if (!tok)
        abort();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_success) {
        /* Only whitespace may follow the document. */
        while (end < len && strchr(" \t\r\n", text[end]))
            end++;
        if (end != len) {
            json_object_put(o);
            o = NULL;
            jerr = json_tokener_error_parse_unexpected;
        }
    } else if (jerr == json_tokener_continue) {
        jerr = json_tokener_error_parse_eof;
    }
    json_tokener_free(tok);
    if (!o || jerr != json_tokener_success) {
        json_object_put(o);
        api_error_set(e, 400, "invalid_json", NULL, "The request body is not valid JSON (%s).",
                      jerr == json_tokener_error_depth ? "nested too deeply"
                                                       : json_tokener_error_desc(jerr));
        return NULL;
    }
    if (has_lone_surrogate(text, len)) {
        json_object_put(o);
        api_error_set(e, 400, "invalid_argument", NULL,
                      "The body contains an unpaired UTF-16 surrogate escape.");
        return NULL;
    }
    if (check_strings(o, "", 0, e)) {
        json_object_put(o);
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
        api_error_set(e, 400, "invalid_argument", prefix, "%s must be a JSON object.",
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
            api_error_set(e, 400, "unknown_field", path, "Unknown field '%s'.", path);
            return -1;
        }
        if (v == NULL) {
            if (!fields[i].nullable) {
                api_error_set(e, 400, "invalid_argument", path, "%s must not be null.", path);
                return -1;
            }
            continue;
        }
        if (!type_matches(v, fields[i].type)) {
            api_error_set(e, 400, "invalid_argument", path, "%s must be %s.", path,
                          type_name(fields[i].type));
            return -1;
        }
    }
    for (size_t i = 0; i < nfields; i++) {
        if (fields[i].required && !jsonx_has(obj, fields[i].name)) {
            path_join(path, sizeof path, prefix, fields[i].name);
            api_error_set(e, 400, "missing_field", path, "Missing required field '%s'.", path);
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
        api_error_set(e, 400, "invalid_argument", field,
                      "%s must be %zu to %zu characters long.", field, min, max);
        return -1;
    }
    if (no_ctl && has_control_chars(s, len)) {
        api_error_set(e, 400, "invalid_argument", field,
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
        api_error_set(e, 400, "invalid_argument", field, "%s must be an integer from %lld to %lld.",
                      field, (long long)min, (long long)max);
        return -1;
    }
    return 0;
}

bool jsonx_name_ok(const char *s, size_t len, size_t max, const char *extra)
{
    if (len < 1 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c && strchr(extra, c))))
            return false;
    }
    return true;
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
    json_object_object_add(err, "code", json_object_new_string(e->code));
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
