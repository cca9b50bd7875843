/* ctl_api: see ctl_api.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_api.h"
#include "ctl_http.h"

int ctl_api_call(struct ctl *ctl, const char *method, const char *path, const char *body,
                 bool json, json_object **out)
{
    *out = NULL;
    if (ctl_api(ctl) != 0)
        return CTL_FAIL;
    struct ctl_reply r;
    char msg[512];
    if (ctl_http_call(ctl->http, method, path, body, &r, msg, sizeof msg) != 0) {
        fprintf(stderr, "tollgatectl: %s\n", msg);
        ctl_reply_fini(&r);
        return CTL_FAIL;
    }
    if (r.status < 200 || r.status > 299) {
        ctl_http_error_text(r.status, r.body.p, msg, sizeof msg);
        fprintf(stderr, "tollgatectl: %s\n", msg);
        ctl_reply_fini(&r);
        return CTL_FAIL;
    }
    int rc = CTL_OK;
    if (json && r.body.len > 0)
        printf("%s%s", r.body.p, r.body.p[r.body.len - 1] == '\n' ? "" : "\n");
    if (r.body.len > 0) {
        *out = json_tokener_parse(r.body.p);
        if (!*out) {
            fprintf(stderr, "tollgatectl: the API answered HTTP %ld with a body that is not "
                            "JSON\n", r.status);
            rc = CTL_FAIL;
        }
    }
    ctl_reply_fini(&r);
    return rc;
}

void ctl_api_print_list(json_object *answer, const struct ctl_col *cols, size_t ncols)
{
    json_object *data = NULL, *next = NULL;
    json_object_object_get_ex(answer, "data", &data);
    ctl_table_print(stdout, cols, ncols, data);
    if (json_object_object_get_ex(answer, "next_cursor", &next) && next &&
        json_object_is_type(next, json_type_string))
        fprintf(stderr, "next page: --cursor %s\n", json_object_get_string(next));
}

void ctl_api_path(struct strbuf *b, const char *prefix, const char *id, const char *suffix)
{
    strbuf_reset(b);
    strbuf_printf(b, "%s", prefix);
    ctl_http_escape(b, id);
    strbuf_printf(b, "%s", suffix);
}

int ctl_api_body_add(json_object *body, const char *member, const char *option,
                     const char *text, enum ctl_value kind, char *msg, size_t msglen)
{
    if (!text)
        return 0;
    json_object *v = NULL;
    if (kind == CTL_V_STRING) {
        v = json_object_new_string(text);
    } else if (strcmp(text, "null") == 0) {
        v = NULL; /* a JSON null member */
    } else if (kind == CTL_V_INT) {
        char *end;
        errno = 0;
        long long n = strtoll(text, &end, 10);
        if (errno != 0 || end == text || *end != '\0') {
            snprintf(msg, msglen, "--%s takes an integer or null (got '%s')", option, text);
            return -1;
        }
        v = json_object_new_int64(n);
    } else {
        enum json_tokener_error je;
        v = json_tokener_parse_verbose(text, &je);
        if (!v) {
            snprintf(msg, msglen, "--%s: not JSON (%s)", option, json_tokener_error_desc(je));
            return -1;
        }
    }
    json_object_object_add(body, member, v);
    return 0;
}

void ctl_api_query(struct strbuf *path, const struct ctl_args *a, const char *const *pairs)
{
    for (size_t i = 0; pairs[i] && pairs[i + 1]; i += 2)
        ctl_http_query(path, pairs[i + 1], ctl_args_get(a, pairs[i]));
}
