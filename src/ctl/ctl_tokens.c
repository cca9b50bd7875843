/* ctl_tokens: tollgatectl tokens -- admin tokens through the API
 * (/v1/admin/tokens, role admin), audited under the caller's token. */
#include <stdio.h>

#include "ctl_api.h"

static const struct ctl_col token_cols[] = {
    {"ID", "id"},           {"ROLE", "role"},          {"NAME", "name"},
    {"OWNER", "owner_id"},  {"TIER", "tier"},          {"EXPIRES", "expires_at"},
    {"REVOKED", "revoked_at"}, {"CREATED", "created_at"},
};

static const struct ctl_opt list_opts[] = {CTL_OPTS_PAGE, {NULL, NULL, NULL}};

static int tokens_list(struct ctl *ctl, const struct ctl_args *a)
{
    struct strbuf path = {0};
    strbuf_printf(&path, "/v1/admin/tokens");
    ctl_api_query(&path, a, (const char *const[]){"limit", "limit", "cursor", "cursor", NULL});
    json_object *j = NULL;
    int rc = ctl_api_call(ctl, "GET", path.p, NULL, ctl_args_has(a, "json"), &j);
    if (rc == CTL_OK && j && !ctl_args_has(a, "json"))
        ctl_api_print_list(j, token_cols, sizeof token_cols / sizeof token_cols[0]);
    json_object_put(j);
    strbuf_fini(&path);
    return rc;
}

static const struct ctl_opt create_opts[] = {
    {"role", "ROLE", "admin, operator, billing, viewer, service or owner"},
    {"name", "NAME", "a name for people"},
    {"owner-id", "OWNER", "role owner: the owner the token acts for"},
    {"tier", "TIER", "role owner: the tier of the keys it creates"},
    {"expires-at", "TIME", "refused from this RFC 3339 time on"},
    CTL_OPT_JSON,
    {NULL, NULL, NULL},
};

static int tokens_create(struct ctl *ctl, const struct ctl_args *a)
{
    static const struct {
        const char *opt, *member;
    } map[] = {{"role", "role"}, {"name", "name"}, {"owner-id", "owner_id"}, {"tier", "tier"},
               {"expires-at", "expires_at"}};
    json_object *body = json_object_new_object(), *j = NULL, *tok = NULL, *id = NULL;
    char msg[256];
    int rc = CTL_OK;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (ctl_api_body_add(body, map[i].member, map[i].opt, ctl_args_get(a, map[i].opt),
                             CTL_V_STRING, msg, sizeof msg) != 0)
            rc = CTL_USAGE; /* strings cannot fail */
    if (rc == CTL_OK)
        rc = ctl_api_call(ctl, "POST", "/v1/admin/tokens", json_object_to_json_string(body),
                          ctl_args_has(a, "json"), &j);
    if (rc == CTL_OK && j && !ctl_args_has(a, "json") &&
        json_object_object_get_ex(j, "token", &tok)) {
        json_object_object_get_ex(j, "id", &id);
        fprintf(stderr, "created token %s; it is shown once:\n",
                id ? json_object_get_string(id) : "?");
        printf("%s\n", json_object_get_string(tok));
    }
    json_object_put(j);
    json_object_put(body);
    return rc;
}

static const struct ctl_opt no_opts[] = {{NULL, NULL, NULL}};

static int tokens_revoke(struct ctl *ctl, const struct ctl_args *a)
{
    struct strbuf path = {0};
    ctl_api_path(&path, "/v1/admin/tokens/", a->pos[0], "");
    json_object *j = NULL;
    int rc = ctl_api_call(ctl, "DELETE", path.p, NULL, false, &j);
    if (rc == CTL_OK)
        printf("revoked\n");
    json_object_put(j);
    strbuf_fini(&path);
    return rc;
}

static const struct ctl_cmd cmds[] = {
    {"list", "", "list admin tokens", NULL, list_opts, 0, 0, CTL_API, tokens_list},
    {"create", "--role ROLE", "create an admin token; printed once on stdout", NULL, create_opts,
     0, 0, CTL_API, tokens_create},
    {"revoke", "ID", "revoke an admin token (refused within a second)", NULL, no_opts, 1, 1,
     CTL_API, tokens_revoke},
};

const struct ctl_group ctl_tokens_group = {"tokens", "admin tokens (through the API)", cmds,
                                           sizeof cmds / sizeof cmds[0]};
