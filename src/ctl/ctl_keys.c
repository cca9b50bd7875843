/* ctl_keys: tollgatectl keys -- the managed API keys, through the API
 * (POST/GET/PATCH/DELETE /v1/keys...), so that the handlers stay the only
 * writers and the audit log names the operator's token. */
#include <stdio.h>
#include <string.h>

#include "ctl_api.h"

static const struct ctl_col key_cols[] = {
    {"ID", "id"},         {"OWNER", "owner_id"}, {"NAME", "name"},         {"TIER", "tier"},
    {"STATUS", "status"}, {"START", "start"},    {"EXPIRES", "expires_at"}, {"CREATED", "created_at"},
};

/* Prints a key answer: the object as a FIELD/VALUE table, or, when it
 * carries a new secret, the note on stderr and the secret alone on stdout,
 * so that KEY=$(tollgatectl keys create ...) keeps only the key. */
static int print_key(json_object *key, const char *what)
{
    json_object *secret = NULL, *id = NULL;
    if (json_object_object_get_ex(key, "key", &secret) && secret) {
        json_object_object_get_ex(key, "id", &id);
        fprintf(stderr, "%s key %s; its secret is shown once:\n", what,
                id ? json_object_get_string(id) : "?");
        printf("%s\n", json_object_get_string(secret));
    } else {
        ctl_table_print_object(stdout, key);
    }
    return CTL_OK;
}

static int send_key(struct ctl *ctl, const struct ctl_args *a, const char *method,
                    const char *suffix, const char *body, const char *what)
{
    struct strbuf path = {0};
    json_object *j = NULL;
    if (a->npos > 0)
        ctl_api_path(&path, "/v1/keys/", a->pos[0], suffix);
    else
        strbuf_printf(&path, "/v1/keys");
    int rc = ctl_api_call(ctl, method, path.p, body, ctl_args_has(a, "json"), &j);
    if (rc == CTL_OK && j && !ctl_args_has(a, "json"))
        rc = print_key(j, what);
    json_object_put(j);
    strbuf_fini(&path);
    return rc;
}

static const struct ctl_opt create_opts[] = {
    {"owner-id", "OWNER", "the owner (1-128 characters)"},
    {"name", "NAME", "a name for people (at most 200 characters)"},
    {"tier", "TIER", "the tier (default free)"},
    {"prefix", "PREFIX", "the key's prefix ([a-z0-9]{1,16})"},
    {"limits", "JSON", "limits overriding the tier's, as a JSON array"},
    {"expires-at", "TIME", "RFC 3339 time after which checks answer expired"},
    {"remaining", "N", "credits; checks stop at 0"},
    {"refill", "JSON", "credit refill, e.g. {\"amount\":100,\"interval\":\"day\"}"},
    {"meta", "JSON", "any JSON object kept with the key"},
    CTL_OPT_JSON,
    {NULL, NULL, NULL},
};

/* The body members of create and update, from their options. */
static int key_body(const struct ctl_args *a, json_object *body)
{
    static const struct {
        const char *opt, *member;
        enum ctl_value kind;
    } map[] = {
        {"owner-id", "owner_id", CTL_V_STRING}, {"name", "name", CTL_V_STRING},
        {"tier", "tier", CTL_V_STRING},         {"prefix", "prefix", CTL_V_STRING},
        {"limits", "limits", CTL_V_JSON},       {"expires-at", "expires_at", CTL_V_STRING},
        {"remaining", "remaining", CTL_V_INT},  {"refill", "refill", CTL_V_JSON},
        {"meta", "meta", CTL_V_JSON},
    };
    char msg[256];
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const char *v = ctl_args_get(a, map[i].opt);
        enum ctl_value kind = map[i].kind;
        /* "null" clears expires_at. */
        if (kind == CTL_V_STRING && v && strcmp(map[i].member, "expires_at") == 0 &&
            strcmp(v, "null") == 0)
            kind = CTL_V_JSON;
        if (ctl_api_body_add(body, map[i].member, map[i].opt, v, kind, msg, sizeof msg) != 0) {
            fprintf(stderr, "tollgatectl: %s\n", msg);
            return CTL_USAGE;
        }
    }
    return CTL_OK;
}

static int keys_create(struct ctl *ctl, const struct ctl_args *a)
{
    json_object *body = json_object_new_object();
    int rc = key_body(a, body);
    if (rc == CTL_OK)
        rc = send_key(ctl, a, "POST", "", json_object_to_json_string(body), "created");
    json_object_put(body);
    return rc;
}

static const struct ctl_opt list_opts[] = {
    {"owner-id", "OWNER", "only this owner's keys"},
    {"status", "STATUS", "only keys in this status (active, suspended, revoked)"},
    {"tier", "TIER", "only keys of this tier"},
    CTL_OPTS_PAGE,
    {NULL, NULL, NULL},
};

static int keys_list(struct ctl *ctl, const struct ctl_args *a)
{
    struct strbuf path = {0};
    strbuf_printf(&path, "/v1/keys");
    ctl_api_query(&path, a, (const char *const[]){"owner-id", "owner_id", "status",
                                                         "status", "tier", "tier", "limit",
                                                         "limit", "cursor", "cursor", NULL});
    json_object *j = NULL;
    int rc = ctl_api_call(ctl, "GET", path.p, NULL, ctl_args_has(a, "json"), &j);
    if (rc == CTL_OK && j && !ctl_args_has(a, "json"))
        ctl_api_print_list(j, key_cols, sizeof key_cols / sizeof key_cols[0]);
    json_object_put(j);
    strbuf_fini(&path);
    return rc;
}

static const struct ctl_opt json_opts[] = {CTL_OPT_JSON, {NULL, NULL, NULL}};

static int keys_show(struct ctl *ctl, const struct ctl_args *a)
{
    return send_key(ctl, a, "GET", "", NULL, "");
}

static int keys_suspend(struct ctl *ctl, const struct ctl_args *a)
{
    return send_key(ctl, a, "PATCH", "", "{\"status\":\"suspended\"}", "");
}

static int keys_resume(struct ctl *ctl, const struct ctl_args *a)
{
    return send_key(ctl, a, "PATCH", "", "{\"status\":\"active\"}", "");
}

static const struct ctl_opt update_opts[] = {
    {"name", "NAME", "a new name (null: none)"},
    {"tier", "TIER", "a new tier"},
    {"limits", "JSON", "the key's own limits, replacing the previous ones (null: none)"},
    {"expires-at", "TIME", "a new expiry (null: none; a past time expires the key now)"},
    {"remaining", "N", "a new credit balance (null: no credits)"},
    {"refill", "JSON", "a new credit refill (null: none)"},
    {"meta", "JSON", "new meta, replacing the previous"},
    CTL_OPT_JSON,
    {NULL, NULL, NULL},
};

static int keys_update(struct ctl *ctl, const struct ctl_args *a)
{
    json_object *body = json_object_new_object();
    int rc = key_body(a, body);
    if (rc == CTL_OK)
        rc = send_key(ctl, a, "PATCH", "", json_object_to_json_string(body), "");
    json_object_put(body);
    return rc;
}

static const struct ctl_opt rotate_opts[] = {
    {"grace-seconds", "N", "how long the old secret keeps working (0-2592000, default 0)"},
    CTL_OPT_JSON,
    {NULL, NULL, NULL},
};

static int keys_rotate(struct ctl *ctl, const struct ctl_args *a)
{
    json_object *body = json_object_new_object();
    char msg[256];
    int rc = CTL_OK;
    if (ctl_api_body_add(body, "grace_seconds", "grace-seconds", ctl_args_get(a, "grace-seconds"),
                         CTL_V_INT, msg, sizeof msg) != 0) {
        fprintf(stderr, "tollgatectl: %s\n", msg);
        rc = CTL_USAGE;
    }
    if (rc == CTL_OK)
        rc = send_key(ctl, a, "POST", "/rotate", json_object_to_json_string(body), "rotated");
    json_object_put(body);
    return rc;
}

static int keys_revoke(struct ctl *ctl, const struct ctl_args *a)
{
    return send_key(ctl, a, "DELETE", "", NULL, "");
}

static const struct ctl_cmd cmds[] = {
    {"create", "--owner-id OWNER", "create a key; its secret is printed once on stdout",
     "The secret is the only line on standard output (with --json: the API's answer, which\n"
     "holds it as \"key\"); keep it, it cannot be shown again.",
     create_opts, 0, 0, CTL_API, keys_create},
    {"list", "", "list keys (filters, pages)", NULL, list_opts, 0, 0, CTL_API, keys_list},
    {"show", "ID", "one key", NULL, json_opts, 1, 1, CTL_API, keys_show},
    {"update", "ID", "change a key's name, tier, limits, expiry, credits or meta", NULL,
     update_opts, 1, 1, CTL_API, keys_update},
    {"suspend", "ID", "suspend a key: checks answer suspended", NULL, json_opts, 1, 1, CTL_API,
     keys_suspend},
    {"resume", "ID", "make a suspended key active again", NULL, json_opts, 1, 1, CTL_API,
     keys_resume},
    {"rotate", "ID", "new secret for a key, printed once on stdout", NULL, rotate_opts, 1, 1,
     CTL_API, keys_rotate},
    {"revoke", "ID", "revoke a key for good (its usage history stays)", NULL, json_opts, 1, 1,
     CTL_API, keys_revoke},
};

const struct ctl_group ctl_keys_group = {"keys", "managed API keys (through the API)", cmds,
                                         sizeof cmds / sizeof cmds[0]};
