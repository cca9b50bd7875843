/* ctl_usage: tollgatectl usage -- a key's or an owner's usage history and a
 * key's live counters, through the API. */
#include <stdio.h>

#include "ctl_api.h"

static const struct ctl_col history_cols[] = {
    {"TS", "ts"},         {"ENDPOINT", "endpoint"}, {"REQUESTS", "requests"},
    {"ALLOWED", "allowed"}, {"DENIED", "denied"},   {"REPORTED", "reported"},
    {"ERRORS", "errors"}, {"AVG_MS", "response_ms.avg"}, {"P95_MS", "response_ms.p95"},
    {"MAX_MS", "response_ms.max"},
};

static const struct ctl_col live_cols[] = {
    {"WINDOW", "name"}, {"WINDOW_S", "window_s"}, {"LIMIT", "limit"}, {"USED", "used"},
    {"REMAINING", "remaining"}, {"RESET_MS", "reset_ms"}, {"ENDPOINT", "endpoint"},
};

static const struct ctl_opt history_opts[] = {
    {"from", "TIME", "first bucket (RFC 3339, inclusive; default: 60 buckets back)"},
    {"to", "TIME", "end (exclusive; default: the end of the current bucket)"},
    {"granularity", "G", "minute (default), hour or day"},
    {"group-by", "endpoint", "one row per bucket and endpoint"},
    CTL_OPT_JSON,
    {NULL, NULL, NULL},
};

static int history(struct ctl *ctl, const struct ctl_args *a, const char *prefix)
{
    struct strbuf path = {0};
    ctl_api_path(&path, prefix, a->pos[0], "/usage");
    ctl_api_query(&path, a, (const char *const[]){"from", "from", "to", "to", "granularity",
                                                   "granularity", "group-by", "group_by", NULL});
    json_object *j = NULL;
    int rc = ctl_api_call(ctl, "GET", path.p, NULL, ctl_args_has(a, "json"), &j);
    if (rc == CTL_OK && j && !ctl_args_has(a, "json"))
        ctl_api_print_list(j, history_cols, sizeof history_cols / sizeof history_cols[0]);
    json_object_put(j);
    strbuf_fini(&path);
    return rc;
}

static int usage_key(struct ctl *ctl, const struct ctl_args *a)
{
    return history(ctl, a, "/v1/keys/");
}

static int usage_owner(struct ctl *ctl, const struct ctl_args *a)
{
    return history(ctl, a, "/v1/owners/");
}

static const struct ctl_opt json_opts[] = {CTL_OPT_JSON, {NULL, NULL, NULL}};

/* The windows as a table, then the quota and credits on a line each. */
static int usage_live(struct ctl *ctl, const struct ctl_args *a)
{
    struct strbuf path = {0};
    ctl_api_path(&path, "/v1/keys/", a->pos[0], "/usage/live");
    json_object *j = NULL;
    int rc = ctl_api_call(ctl, "GET", path.p, NULL, ctl_args_has(a, "json"), &j);
    if (rc == CTL_OK && j && !ctl_args_has(a, "json")) {
        ctl_api_print_list(j, live_cols, sizeof live_cols / sizeof live_cols[0]);
        static const struct ctl_col rest[] = {{"QUOTA_USED", "quota.used"},
                                              {"QUOTA_INCLUDED", "quota.included"},
                                              {"REMAINING", "remaining"}};
        json_object *row = json_object_new_array();
        json_object_array_add(row, json_object_get(j));
        printf("\n");
        ctl_table_print(stdout, rest, 3, row);
        json_object_put(row);
    }
    json_object_put(j);
    strbuf_fini(&path);
    return rc;
}

static const struct ctl_cmd cmds[] = {
    {"key", "ID", "a key's usage history (checks, reported events, response times)", NULL,
     history_opts, 1, 1, CTL_API, usage_key},
    {"owner", "OWNER", "the same, summed over an owner's keys", NULL, history_opts, 1, 1,
     CTL_API, usage_owner},
    {"live", "ID", "a key's live counters: every window, the quota, the credits", NULL,
     json_opts, 1, 1, CTL_API, usage_live},
};

const struct ctl_group ctl_usage_group = {"usage", "usage history and live counters (through "
                                                   "the API)",
                                          cmds, sizeof cmds / sizeof cmds[0]};
