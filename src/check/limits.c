#include "limits.h"

#include <stdio.h>
#include <string.h>

#include "endpoint.h"

static const struct jx_field limit_fields[] = {
    {"name", JX_STRING, true, false},    {"window_s", JX_INT, true, false},
    {"limit", JX_INT, true, false},      {"precision", JX_INT, false, false},
    {"endpoint", JX_STRING, false, false}, {"per", JX_STRING, false, false},
};

static int validate_one(json_object *l, const char *path, struct api_error *e)
{
    char f[160];
    if (jsonx_check(l, limit_fields, TG_ARRAY_LEN(limit_fields), path, e) != 0)
        return -1;
    json_object *name = jsonx_get(l, "name");
    if (!name_ok(json_object_get_string(name), (size_t)json_object_get_string_len(name),
                       RL_NAME_MAX, "_")) {
        jsonx_path(f, sizeof f, path, ".name");
        api_error_set(e, ERR_INVALID_ARGUMENT, f, "%s must match [a-z0-9_]{1,32}.", f);
        return -1;
    }
    jsonx_path(f, sizeof f, path, ".window_s");
    if (jsonx_int_range(jsonx_get(l, "window_s"), f, 1, LIMITS_WINDOW_MAX, e) != 0)
        return -1;
    jsonx_path(f, sizeof f, path, ".limit");
    if (jsonx_int_range(jsonx_get(l, "limit"), f, 1, LIMITS_LIMIT_MAX, e) != 0)
        return -1;
    json_object *prec = jsonx_get(l, "precision");
    jsonx_path(f, sizeof f, path, ".precision");
    if (prec && jsonx_int_range(prec, f, 1, LIMITS_PRECISION_MAX, e) != 0)
        return -1;
    json_object *per = jsonx_get(l, "per");
    if (per && strcmp(json_object_get_string(per), "key") != 0 &&
        strcmp(json_object_get_string(per), "owner") != 0) {
        jsonx_path(f, sizeof f, path, ".per");
        api_error_set(e, ERR_INVALID_ARGUMENT, f, "%s must be \"key\" or \"owner\".", f);
        return -1;
    }
    json_object *ep = jsonx_get(l, "endpoint");
    enum endpoint_status st = ep ? endpoint_pattern_check(json_object_get_string(ep)) : ENDPOINT_OK;
    if (st != ENDPOINT_OK) {
        jsonx_path(f, sizeof f, path, ".endpoint");
        api_error_set(e, ERR_INVALID_ARGUMENT, f,
                      "%s must be \"METHOD /path\" in normal form (RFC 3986 section 6), at most "
                      "%d bytes, optionally ending in '*': %s.",
                      f, ENDPOINT_PATTERN_MAX, endpoint_status_text(st));
        return -1;
    }
    return 0;
}

int limits_validate(json_object *arr, const char *field, struct api_error *e)
{
    if (!json_object_is_type(arr, json_type_array)) {
        api_error_set(e, ERR_INVALID_ARGUMENT, field, "%s must be an array.", field);
        return -1;
    }
    size_t n = json_object_array_length(arr);
    if (n > LIMITS_MAX) {
        api_error_set(e, ERR_INVALID_ARGUMENT, field, "%s holds at most %d limits.", field,
                      LIMITS_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char path[160];
        snprintf(path, sizeof path, "%s[%zu]", field, i);
        json_object *l = json_object_array_get_idx(arr, i);
        if (validate_one(l, path, e) != 0)
            return -1;
        const char *name = json_object_get_string(jsonx_get(l, "name"));
        for (size_t k = 0; k < i; k++) {
            json_object *prev = json_object_array_get_idx(arr, k);
            if (strcmp(name, json_object_get_string(jsonx_get(prev, "name"))) == 0) {
                snprintf(path, sizeof path, "%s[%zu].name", field, i);
                api_error_set(e, ERR_INVALID_ARGUMENT, path,
                              "Limit names must be unique; '%s' appears twice.", name);
                return -1;
            }
        }
    }
    return 0;
}

static json_object *find_by_name(json_object *arr, const char *name)
{
    size_t n = arr ? json_object_array_length(arr) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *l = json_object_array_get_idx(arr, i);
        json_object *nm = jsonx_get(l, "name");
        if (nm && strcmp(json_object_get_string(nm), name) == 0)
            return l;
    }
    return NULL;
}

json_object *limits_merge(json_object *base, json_object *over)
{
    json_object *out = json_object_new_array();
    size_t nb = base ? json_object_array_length(base) : 0;
    size_t no = over ? json_object_array_length(over) : 0;
    for (size_t i = 0; i < nb; i++) {
        json_object *l = json_object_array_get_idx(base, i);
        json_object *o = find_by_name(over, json_object_get_string(jsonx_get(l, "name")));
        json_object *copy = NULL;
        json_object_deep_copy(o ? o : l, &copy, NULL);
        json_object_array_add(out, copy);
    }
    for (size_t i = 0; i < no; i++) {
        json_object *o = json_object_array_get_idx(over, i);
        if (!find_by_name(base, json_object_get_string(jsonx_get(o, "name")))) {
            json_object *copy = NULL;
            json_object_deep_copy(o, &copy, NULL);
            json_object_array_add(out, copy);
        }
    }
    return out;
}
