/* jsonx: strict JSON input for the API.  Parsing with bounded depth, field
 * tables that reject unknown and missing fields, and the error every handler
 * answers with.  Output is plain json-c. */
#ifndef TOLLGATE_JSONX_H
#define TOLLGATE_JSONX_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "util.h"


/* Maximum nesting accepted in request bodies. */
#define JSONX_MAX_DEPTH 32

/* Parses exactly len bytes as one JSON document.  Returns the object (caller
 * puts it) or NULL with invalid_json in e.  Strings are then checked:
 * invalid UTF-8 or a NUL character anywhere is invalid_argument naming the
 * field. */
json_object *jsonx_parse(const char *text, size_t len, struct api_error *e);

enum jx_type { JX_STRING, JX_INT, JX_BOOL, JX_OBJECT, JX_ARRAY, JX_NUMBER, JX_ANY };

struct jx_field {
    const char *name;
    enum jx_type type;
    bool required;
    bool nullable;
};

/* Checks that obj is an object whose members are all in fields (else
 * unknown_field), that required members are present (missing_field) and that
 * types match (invalid_argument).  prefix is the JSON path of obj ("" at the
 * top).  Returns 0 or -1 with e filled. */
int jsonx_check(json_object *obj, const struct jx_field *fields, size_t nfields,
                const char *prefix, struct api_error *e) TG_WUR;

/* Member value or NULL when absent (a JSON null is also NULL: use
 * jsonx_has to tell them apart). */
json_object *jsonx_get(json_object *obj, const char *name);
bool jsonx_has(json_object *obj, const char *name);

/* Validates a string member: between min and max UTF-8 characters, and free
 * of control characters when no_ctl.  Returns 0 or -1 with e filled. */
int jsonx_string_len(json_object *str, const char *field, size_t min, size_t max, bool no_ctl,
                     struct api_error *e) TG_WUR;

/* Validates an integer member in [min, max]. */
int jsonx_int_range(json_object *v, const char *field, int64_t min, int64_t max,
                    struct api_error *e) TG_WUR;

/* Writes "<prefix><name>" into out, cutting a path too long for size (field
 * paths are bounded by the depth limit; a cut one is still informative). */
void jsonx_path(char *out, size_t size, const char *prefix, const char *name);

/* {"error":{"code","message","field"?}} for e; caller puts it. */
json_object *jsonx_error_body(const struct api_error *e);

/* New json string, or null when s is NULL. */
json_object *jsonx_str_or_null(const char *s);
/* RFC 3339 string of ms, or null when has is false. */
json_object *jsonx_time_or_null(bool has, int64_t ms);

#endif
