/* ctl_tiers: tollgatectl tiers -- the tiers keys subscribe to, through the
 * API (GET/POST/PATCH /v1/tiers...). */
#include <stdio.h>

#include "ctl_api.h"

static const struct ctl_col tier_cols[] = {
    {"NAME", "name"},
    {"QUOTA", "quota.included"},
    {"OVERAGE", "quota.overage"},
    {"CURRENCY", "price.currency"},
    {"BASE_MICROS", "price.base_micros"},
    {"PER_1000_MICROS", "price.overage_per_1000_micros"},
    {"LIMITS", "limits_text"},
};

/* A tier's limits in one cell: "name=limit/window_s ..." (show has them
 * in full). */
static void add_limits_text(json_object *tiers)
{
    size_t n = tiers && json_object_is_type(tiers, json_type_array)
                   ? json_object_array_length(tiers)
                   : 0;
    struct strbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(tiers, i), *limits = NULL, *v;
        strbuf_reset(&b);
        strbuf_put(&b, "", 0);
        json_object_object_get_ex(t, "limits", &limits);
        size_t m = limits && json_object_is_type(limits, json_type_array)
                       ? json_object_array_length(limits)
                       : 0;
        for (size_t k = 0; k < m; k++) {
            json_object *l = json_object_array_get_idx(limits, k);
            strbuf_printf(&b, "%s%s=", k ? " " : "",
                          json_object_object_get_ex(l, "name", &v) ? json_object_get_string(v) : "?");
            strbuf_printf(&b, "%s/",
                          json_object_object_get_ex(l, "limit", &v) ? json_object_get_string(v) : "?");
            strbuf_printf(&b, "%ss", json_object_object_get_ex(l, "window_s", &v)
                                         ? json_object_get_string(v)
                                         : "?");
        }
        json_object_object_add(t, "limits_text", json_object_new_string(b.p));
    }
    strbuf_fini(&b);
}

static const struct ctl_col limit_cols[] = {
    {"LIMIT", "name"},       {"WINDOW_S", "window_s"}, {"MAX", "limit"},
    {"ENDPOINT", "endpoint"}, {"PER", "per"},           {"PRECISION", "precision"},
};

/* One tier: its fields, then its limits as a table of their own. */
static void print_tier(json_object *t)
{
    json_object *limits = NULL;
    json_object_object_get_ex(t, "limits", &limits);
    json_object *rest = json_object_new_object();
    json_object_object_foreach(t, k, v) {
        if (v != limits)
            json_object_object_add(rest, k, json_object_get(v));
    }
    ctl_table_print_object(stdout, rest);
    json_object_put(rest);
    printf("\n");
    ctl_table_print(stdout, limit_cols, sizeof limit_cols / sizeof limit_cols[0], limits);
}

static const struct ctl_opt list_opts[] = {CTL_OPTS_PAGE, {NULL, NULL, NULL}};

static int tiers_list(struct ctl *ctl, const struct ctl_args *a)
{
    struct strbuf path = {0};
    strbuf_printf(&path, "/v1/tiers");
    ctl_api_query(&path, a, (const char *const[]){"limit", "limit", "cursor", "cursor", NULL});
    json_object *j = NULL;
    int rc = ctl_api_call(ctl, "GET", path.p, NULL, ctl_args_has(a, "json"), &j);
    if (rc == CTL_OK && j && !ctl_args_has(a, "json")) {
        json_object *data = NULL;
        json_object_object_get_ex(j, "data", &data);
        add_limits_text(data);
        ctl_api_print_list(j, tier_cols, sizeof tier_cols / sizeof tier_cols[0]);
    }
    json_object_put(j);
    strbuf_fini(&path);
    return rc;
}

static int send_tier(struct ctl *ctl, const struct ctl_args *a, const char *method,
                     bool by_name, const char *body)
{
    struct strbuf path = {0};
    json_object *j = NULL;
    if (by_name)
        ctl_api_path(&path, "/v1/tiers/", a->pos[0], "");
    else
        strbuf_printf(&path, "/v1/tiers");
    int rc = ctl_api_call(ctl, method, path.p, body, ctl_args_has(a, "json"), &j);
    if (rc == CTL_OK && j && !ctl_args_has(a, "json"))
        print_tier(j);
    json_object_put(j);
    strbuf_fini(&path);
    return rc;
}

static const struct ctl_opt json_opts[] = {CTL_OPT_JSON, {NULL, NULL, NULL}};

static int tiers_show(struct ctl *ctl, const struct ctl_args *a)
{
    return send_tier(ctl, a, "GET", true, NULL);
}

static const struct ctl_opt write_opts[] = {
    {"limits", "JSON", "the limits, a JSON array of {name, window_s, limit, ...}"},
    {"quota", "JSON", "{\"period\":\"month\",\"included\":N,\"overage\":\"block\"|\"bill\"} or null"},
    {"price", "JSON", "{\"currency\":\"USD\",\"base_micros\":N,\"overage_per_1000_micros\":N} or null"},
    CTL_OPT_JSON,
    {NULL, NULL, NULL},
};

/* The body of create (with the name) and update, from the options. */
static int tier_write(struct ctl *ctl, const struct ctl_args *a, bool create)
{
    static const char *const members[] = {"limits", "quota", "price"};
    json_object *body = json_object_new_object();
    char msg[256];
    int rc = CTL_OK;
    if (create)
        json_object_object_add(body, "name", json_object_new_string(a->pos[0]));
    for (size_t i = 0; rc == CTL_OK && i < 3; i++) {
        if (ctl_api_body_add(body, members[i], members[i], ctl_args_get(a, members[i]),
                             CTL_V_JSON, msg, sizeof msg) != 0) {
            fprintf(stderr, "tollgatectl: %s\n", msg);
            rc = CTL_USAGE;
        }
    }
    if (rc == CTL_OK)
        rc = send_tier(ctl, a, create ? "POST" : "PATCH", !create,
                       json_object_to_json_string(body));
    json_object_put(body);
    return rc;
}

static int tiers_create(struct ctl *ctl, const struct ctl_args *a)
{
    return tier_write(ctl, a, true);
}

static int tiers_update(struct ctl *ctl, const struct ctl_args *a)
{
    return tier_write(ctl, a, false);
}

static const struct ctl_cmd cmds[] = {
    {"list", "", "list tiers", NULL, list_opts, 0, 0, CTL_API, tiers_list},
    {"show", "NAME", "one tier and its limits", NULL, json_opts, 1, 1, CTL_API, tiers_show},
    {"create", "NAME", "create a tier", NULL, write_opts, 1, 1, CTL_API, tiers_create},
    {"update", "NAME", "change a tier's limits, quota or price (the name stays)", NULL,
     write_opts, 1, 1, CTL_API, tiers_update},
};

const struct ctl_group ctl_tiers_group = {"tiers", "tiers: limits, quota, price (through the API)",
                                          cmds, sizeof cmds / sizeof cmds[0]};
