/* ctl_audit: tollgatectl audit -- the audit log and its hash chain,
 * through the API. */
#include <stdio.h>

#include "ctl_api.h"

static const struct ctl_col audit_cols[] = {
    {"SEQ", "seq"},          {"TS", "ts"},
    {"ACTOR", "actor"},      {"ROLE", "role"},
    {"ACTION", "action"},    {"RESOURCE_TYPE", "resource_type"},
    {"RESOURCE_ID", "resource_id"}, {"REQUEST_ID", "request_id"},
};

static const struct ctl_opt list_opts[] = {
    {"resource-id", "ID", "entries about this resource"},
    {"actor", "TOKEN_ID", "entries written by this token (tollgatectl: the shell tool)"},
    {"action", "ACTION", "entries of this action, e.g. key.create"},
    {"from", "TIME", "entries at or after this time"},
    {"to", "TIME", "entries before this time"},
    CTL_OPTS_PAGE,
    {NULL, NULL, NULL},
};

static int audit_list(struct ctl *ctl, const struct ctl_args *a)
{
    struct strbuf path = {0};
    strbuf_printf(&path, "/v1/audit");
    ctl_api_query(&path, a,
                  (const char *const[]){"resource-id", "resource_id", "actor", "actor", "action",
                                        "action", "from", "from", "to", "to", "limit", "limit",
                                        "cursor", "cursor", NULL});
    json_object *j = NULL;
    int rc = ctl_api_call(ctl, "GET", path.p, NULL, ctl_args_has(a, "json"), &j);
    if (rc == CTL_OK && j && !ctl_args_has(a, "json"))
        ctl_api_print_list(j, audit_cols, sizeof audit_cols / sizeof audit_cols[0]);
    json_object_put(j);
    strbuf_fini(&path);
    return rc;
}

static const struct ctl_opt json_opts[] = {CTL_OPT_JSON, {NULL, NULL, NULL}};

/* Exit 1 when the chain is broken, so that a cron job notices. */
static int audit_verify(struct ctl *ctl, const struct ctl_args *a)
{
    json_object *j = NULL, *ok = NULL;
    bool json = ctl_args_has(a, "json");
    int rc = ctl_api_call(ctl, "GET", "/v1/audit/verify", NULL, json, &j);
    if (rc != CTL_OK || !j)
        return rc == CTL_OK ? CTL_FAIL : rc;
    bool good = json_object_object_get_ex(j, "ok", &ok) && json_object_get_boolean(ok);
    if (!json) {
        static const struct ctl_col cols[] = {
            {"OK", "ok"}, {"ENTRIES", "entries"}, {"FIRST_BAD_SEQ", "first_bad_seq"}};
        json_object *rows = json_object_new_array();
        json_object_array_add(rows, json_object_get(j));
        ctl_table_print(stdout, cols, 3, rows);
        json_object_put(rows);
    }
    if (!good)
        fprintf(stderr, "tollgatectl: the audit chain does not verify\n");
    json_object_put(j);
    return good ? CTL_OK : CTL_FAIL;
}

static const struct ctl_cmd cmds[] = {
    {"list", "", "audit entries, oldest first (filters, pages)", NULL, list_opts, 0, 0, CTL_API,
     audit_list},
    {"verify", "", "recompute the hash chain; exit 1 when an entry does not match", NULL,
     json_opts, 0, 0, CTL_API, audit_verify},
};

const struct ctl_group ctl_audit_group = {"audit", "the audit log (through the API)", cmds,
                                          sizeof cmds / sizeof cmds[0]};
