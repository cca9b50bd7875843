/* ctl_token: tollgatectl token -- admin tokens written straight into
 * PostgreSQL, for the first token of an installation (nothing can call the
 * API before one exists) and for recovery.  Audited as the actor
 * "tollgatectl".  With a token at hand, `tollgatectl tokens` does the same
 * through the API. */
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "ctl.h"
#include "ctl_table.h"
#include "keys.h"
#include "pg.h"

/* The lifetime options of token create: --expires TIME or --expires-in
 * DURATION (at most one), as epoch milliseconds into out ("" for none).
 * Returns 0 or 2 (usage) after a message. */
static int token_expiry(const struct ctl_args *a, char out[24])
{
    const char *at = ctl_args_get(a, "expires"), *in = ctl_args_get(a, "expires-in");
    char when[TG_TIME_LEN];
    int64_t ms, now = now_ms();
    struct api_error e;
    out[0] = '\0';
    if (at && in) {
        fprintf(stderr, "tollgatectl: give --expires or --expires-in, not both\n");
        return CTL_USAGE;
    }
    if (in) {
        if (auth_duration_ms(in, &ms) != 0 || ms > AUTH_TOKEN_LIFE_MAX_MS) {
            fprintf(stderr, "tollgatectl: --expires-in takes a number and a unit s, m, h or d"
                            " (e.g. 30d), at most %lld days\n",
                    (long long)(AUTH_TOKEN_LIFE_MAX_MS / 86400000));
            return CTL_USAGE;
        }
        format_time_ms(now + ms, when);
        at = when;
    }
    if (!at)
        return CTL_OK;
    if (auth_token_expiry(at, now, &ms, &e) != 0) {
        fprintf(stderr, "tollgatectl: --expires: %s\n", e.message);
        return CTL_USAGE;
    }
    snprintf(out, 24, "%lld", (long long)ms);
    return CTL_OK;
}

/* What create checks before it touches the database. */
static int create_args_ok(const struct ctl_args *a)
{
    const char *role = ctl_args_get(a, "role"), *owner = ctl_args_get(a, "owner-id");
    struct api_error e;
    if (!role || !auth_role_bit(role)) {
        fprintf(stderr, "tollgatectl: --role must be admin, operator, billing, viewer, service"
                        " or owner\n");
        return CTL_USAGE;
    }
    if (auth_token_binding(role, owner != NULL, ctl_args_has(a, "tier"), &e) != 0) {
        fprintf(stderr, "tollgatectl: --role %s: --owner-id and --tier are %s\n", role,
                e.code == ERR_MISSING_FIELD ? "required" : "refused");
        return CTL_USAGE;
    }
    if (owner && (!*owner || !utf8_valid(owner, strlen(owner)) ||
                  utf8_len(owner, strlen(owner)) > 128 || has_control_chars(owner, strlen(owner)))) {
        fprintf(stderr, "tollgatectl: --owner-id must be 1 to 128 characters without control"
                        " characters\n");
        return CTL_USAGE;
    }
    return CTL_OK;
}

static int token_create(struct ctl *ctl, const struct ctl_args *a)
{
    const char *role = ctl_args_get(a, "role"), *name = ctl_args_get(a, "name");
    const char *owner = ctl_args_get(a, "owner-id"), *tier = ctl_args_get(a, "tier");
    char expires[24];
    struct api_error e;
    int rc = create_args_ok(a);
    if (rc == CTL_OK)
        rc = token_expiry(a, expires);
    if (rc != CTL_OK)
        return rc;
    if (ctl_db(ctl, false) != 0)
        return CTL_FAIL;
    char token[KEYS_MAX_LEN], hash[KEYS_HASH_HEX_LEN], id[KEYS_ID_MAX];
    keys_generate(ctl->cfg.hmac_secret, KEYS_TOKEN_PREFIX, token);
    keys_hash_hex(ctl->cfg.hmac_secret, token, strlen(token), hash);
    keys_new_id("tok", id);
    const char *p[] = {id, hash, role, name, ctl->cfg.hmac_secret_id, owner, tier,
                       expires[0] ? expires : NULL};
    const char *tp[] = {tier};
    struct pg_res *r = NULL, *t = NULL;
    if (pg_begin(ctl->pg, &e) != 0 ||
        (tier && !(t = pg_query(ctl->pg, "SELECT 1 FROM tiers WHERE name = $1", 1, tp, &e))))
        goto fail;
    if (t && pg_nrows(t) == 0) {
        fprintf(stderr, "tollgatectl: --tier: there is no tier named '%s'\n", tier);
        pg_res_free(t);
        pg_rollback(ctl->pg);
        return CTL_USAGE;
    }
    if (!(r = pg_query(ctl->pg,
                       "INSERT INTO admin_tokens (id, hash, role, name, secret_id, owner_id,"
                       "  tier, expires_at)"
                       " VALUES ($1, $2, $3, $4, $5, $6, $7,"
                       "  'epoch'::timestamptz + $8::bigint * interval '1 millisecond')"
                       " RETURNING tg_changes(NULL, tg_token_json(admin_tokens))::text,"
                       "  coalesce(tg_ts(expires_at), 'never')",
                       8, p, &e)))
        goto fail;
    struct audit_entry au = {.actor = "tollgatectl", .role = "admin", .action = "token.create",
                             .resource_type = "token", .resource_id = id,
                             .changes = pg_val(r, 0, 0)};
    if (audit_append(ctl->pg, &ctl->cfg, &au, &e) != 0 || pg_commit(ctl->pg, &e) != 0)
        goto fail;
    fprintf(stderr, "created token %s (role %s%s%s, expires %s); it is shown once:\n", id, role,
            owner ? ", owner " : "", owner ? owner : "", pg_val(r, 0, 1));
    pg_res_free(t);
    pg_res_free(r);
    printf("%s\n", token);
    return CTL_OK;
fail:
    pg_res_free(t);
    pg_res_free(r);
    pg_rollback(ctl->pg);
    fprintf(stderr, "tollgatectl: token create failed: %s\n", e.message);
    return CTL_FAIL;
}

static int token_list(struct ctl *ctl, const struct ctl_args *a)
{
    struct api_error e;
    if (ctl_db(ctl, false) != 0)
        return CTL_FAIL;
    /* One JSON array, so that the table and --json come from one answer. */
    json_object *j = pg_query_json(
        ctl->pg,
        "SELECT coalesce(json_agg(json_build_object('id', id, 'role', role, 'name', name,"
        "  'owner_id', owner_id, 'tier', tier, 'expires_at', tg_ts(expires_at),"
        "  'revoked_at', tg_ts(revoked_at), 'created_at', tg_ts(created_at),"
        "  'state', CASE WHEN revoked_at IS NOT NULL THEN 'revoked'"
        "   WHEN expires_at <= now() THEN 'expired' ELSE 'active' END)"
        "  ORDER BY created_at, id), '[]')::text FROM admin_tokens",
        0, NULL, "tokens", &e);
    if (!j) {
        fprintf(stderr, "tollgatectl: %s\n", e.message);
        return CTL_FAIL;
    }
    if (ctl_args_has(a, "json")) {
        printf("{\"data\":%s}\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
    } else {
        static const struct ctl_col cols[] = {
            {"ID", "id"},          {"ROLE", "role"},         {"NAME", "name"},
            {"STATE", "state"},    {"OWNER", "owner_id"},    {"TIER", "tier"},
            {"EXPIRES", "expires_at"}, {"REVOKED", "revoked_at"}, {"CREATED", "created_at"},
        };
        ctl_table_print(stdout, cols, sizeof cols / sizeof cols[0], j);
    }
    json_object_put(j);
    return CTL_OK;
}

static int token_revoke(struct ctl *ctl, const struct ctl_args *a)
{
    if (ctl_db(ctl, false) != 0)
        return CTL_FAIL;
    struct api_error e;
    const char *p[] = {a->pos[0]};
    struct pg_res *r = NULL;
    if (pg_begin(ctl->pg, &e) != 0 ||
        !(r = pg_query(ctl->pg,
                       "UPDATE admin_tokens SET revoked_at = clock_timestamp()"
                       " WHERE id = $1 AND revoked_at IS NULL RETURNING id",
                       1, p, &e)))
        goto fail;
    if (pg_nrows(r) == 1) {
        struct audit_entry au = {.actor = "tollgatectl", .role = "admin",
                                 .action = "token.revoke", .resource_type = "token",
                                 .resource_id = a->pos[0],
                                 .changes = "{\"revoked\":{\"from\":false,\"to\":true}}"};
        if (audit_append(ctl->pg, &ctl->cfg, &au, &e) != 0)
            goto fail;
    }
    if (pg_commit(ctl->pg, &e) != 0)
        goto fail;
    printf("%s\n", pg_nrows(r) == 1 ? "revoked" : "not found or already revoked");
    pg_res_free(r);
    return CTL_OK;
fail:
    pg_res_free(r);
    pg_rollback(ctl->pg);
    fprintf(stderr, "tollgatectl: token revoke failed: %s\n", e.message);
    return CTL_FAIL;
}

static const struct ctl_opt create_opts[] = {
    {"role", "ROLE", "admin, operator, billing, viewer, service or owner"},
    {"name", "NAME", "a name for people"},
    {"owner-id", "OWNER", "role owner: the owner the token acts for"},
    {"tier", "TIER", "role owner: the tier of the keys it creates"},
    {"expires", "TIME", "refused from this RFC 3339 time on"},
    {"expires-in", "DURATION", "refused after this long: a number and s, m, h or d (30d)"},
    {NULL, NULL, NULL},
};
static const struct ctl_opt list_opts[] = {
    {"json", NULL, "print {\"data\":[tokens]} as JSON instead of a table"},
    {NULL, NULL, NULL},
};
static const struct ctl_opt no_opts[] = {{NULL, NULL, NULL}};

static const struct ctl_cmd cmds[] = {
    {"create", "--role ROLE", "create an admin token in the database; printed once on stdout",
     "For the first token of an installation: nothing can call the API before one exists.",
     create_opts, 0, 0, CTL_LOCAL, token_create},
    {"list", "", "list admin tokens from the database", NULL, list_opts, 0, 0, CTL_LOCAL,
     token_list},
    {"revoke", "ID", "revoke an admin token in the database", NULL, no_opts, 1, 1, CTL_LOCAL,
     token_revoke},
};

const struct ctl_group ctl_token_group = {
    "token", "admin tokens, straight in the database (first token, recovery)", cmds,
    sizeof cmds / sizeof cmds[0]};
