/* libFuzzer harness for src/base/jsonx.c: the strict JSON input layer.
 * Any bytes are parsed; an accepted document is checked against a field
 * table, and every refusal names an error.  Built and run by
 * tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct jx_field fields[] = {
        {"key", JX_STRING, true, false},   {"endpoint", JX_STRING, false, false},
        {"cost", JX_INT, false, true},     {"limits", JX_ARRAY, false, true},
        {"meta", JX_OBJECT, false, true},  {"flag", JX_BOOL, false, false},
        {"n", JX_NUMBER, false, false},    {"any", JX_ANY, false, true},
    };
    struct api_error e;
    memset(&e, 0, sizeof e);
    json_object *o = jsonx_parse((const char *)data, size, &e);
    if (!o) {
        if (e.code == ERR_NONE || !e.message[0])
            abort();
        return 0;
    }
    memset(&e, 0, sizeof e);
    if (jsonx_check(o, fields, sizeof fields / sizeof fields[0], "", &e) != 0 &&
        (e.code == ERR_NONE || !e.message[0]))
        abort();
    json_object *k = jsonx_get(o, "key");
    if (k && json_object_is_type(k, json_type_string))
        (void)jsonx_string_len(k, "key", 1, 64, true, &e);
    json_object *c = jsonx_get(o, "cost");
    if (c)
        (void)jsonx_int_range(c, "cost", 1, 1000, &e);
    json_object *body = jsonx_error_body(&e);
    json_object_put(body);
    json_object_put(o);
    return 0;
}
