/* ctl_local: the commands that work on the database itself -- schema
 * migrations and the inventory of key-hashing secrets -- and the
 * connection they share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_table.h"
#include "migrate.h"
#include "pg.h"

int ctl_db(struct ctl *ctl, bool owner)
{
    if (ctl->pg)
        return 0;
    struct api_error e;
    const char *conninfo = owner && *ctl->cfg.pg_migrate_conninfo ? ctl->cfg.pg_migrate_conninfo
                                                                   : ctl->cfg.pg_conninfo;
    ctl->pg = pg_connect(conninfo, &e);
    if (!ctl->pg) {
        fprintf(stderr, "tollgatectl: cannot connect to PostgreSQL: %s\n", e.message);
        return -1;
    }
    return 0;
}

static int cmd_migrate(struct ctl *ctl, const struct ctl_args *a)
{
    (void)a;
    struct api_error e;
    int applied = 0;
    if (ctl_db(ctl, true) != 0)
        return CTL_FAIL;
    if (migrate_run(ctl->pg, &applied, &e) != 0) {
        fprintf(stderr, "tollgatectl: migration failed: %s\n", e.message);
        return CTL_FAIL;
    }
    printf("migrations applied: %d\n", applied);
    char *role = NULL;
    if (migrate_grant(ctl->pg, ctl->cfg.pg_conninfo, &role, &e) != 0) {
        fprintf(stderr, "tollgatectl: granting the application's rights failed: %s\n", e.message);
        return CTL_FAIL;
    }
    if (role)
        printf("application role %s: granted what the daemons need, nothing more\n", role);
    else
        printf("warning: the daemons connect as the schema's owner; give [postgres] conninfo "
               "another role to keep them from rewriting the audit log\n");
    free(role);
    return CTL_OK;
}

static void secret_row(json_object *rows, const char *id, const char *state, long long keys,
                       long long tokens)
{
    json_object *row = json_object_new_object();
    json_object_object_add(row, "secret_id", json_object_new_string(id));
    json_object_object_add(row, "state", json_object_new_string(state));
    json_object_object_add(row, "keys", json_object_new_int64(keys));
    json_object_object_add(row, "tokens", json_object_new_int64(tokens));
    json_object_array_add(rows, row);
}

/* For each configured key-hashing secret (current first), how many key
 * secrets still in use and unrevoked admin tokens it made -- an old secret
 * may be removed from hmac_previous once both are 0 -- plus those made
 * before secrets had ids. */
static int cmd_secrets(struct ctl *ctl, const struct ctl_args *a)
{
    if (ctl_db(ctl, false) != 0)
        return CTL_FAIL;
    struct api_error e;
    struct pg_res *r = pg_query(
        ctl->pg,
        "SELECT coalesce(secret_id, ''), sum(keys)::bigint, sum(tokens)::bigint FROM ("
        " SELECT s.secret_id, count(*) AS keys, 0 AS tokens FROM key_secrets s"
        "  JOIN keys k ON k.id = s.key_id"
        "  WHERE k.status <> 'revoked' AND (s.expires_at IS NULL OR s.expires_at > now())"
        "  GROUP BY s.secret_id"
        " UNION ALL SELECT secret_id, 0, count(*) FROM admin_tokens WHERE revoked_at IS NULL"
        "  GROUP BY secret_id) c GROUP BY 1",
        0, NULL, &e);
    if (!r) {
        fprintf(stderr, "tollgatectl: secrets: %s\n", e.message);
        return CTL_FAIL;
    }
    json_object *rows = json_object_new_array();
    for (size_t i = 0; i < ctl->cfg.secrets.n; i++) {
        long long keys = 0, tokens = 0;
        for (int row = 0; row < pg_nrows(r); row++) {
            if (strcmp(pg_val(r, row, 0), ctl->cfg.secrets.id[i]) == 0) {
                keys = pg_int(r, row, 1);
                tokens = pg_int(r, row, 2);
            }
        }
        secret_row(rows, ctl->cfg.secrets.id[i], i == 0 ? "current" : "previous", keys, tokens);
    }
    for (int row = 0; row < pg_nrows(r); row++) {
        const char *id = pg_val(r, row, 0);
        bool known = false;
        for (size_t i = 0; i < ctl->cfg.secrets.n; i++)
            known |= strcmp(id, ctl->cfg.secrets.id[i]) == 0;
        if (!known)
            secret_row(rows, *id ? id : "(no id)", *id ? "removed" : "unknown",
                       (long long)pg_int(r, row, 1), (long long)pg_int(r, row, 2));
    }
    pg_res_free(r);
    if (ctl_args_has(a, "json")) {
        printf("{\"data\":%s}\n", json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN));
    } else {
        static const struct ctl_col cols[] = {
            {"SECRET_ID", "secret_id"}, {"STATE", "state"}, {"KEYS", "keys"}, {"TOKENS", "tokens"}};
        ctl_table_print(stdout, cols, 4, rows);
    }
    json_object_put(rows);
    return CTL_OK;
}

static const struct ctl_opt no_opts[] = {{NULL, NULL, NULL}};
static const struct ctl_opt json_opts[] = {
    {"json", NULL, "print {\"data\":[rows]} as JSON instead of a table"},
    {NULL, NULL, NULL},
};

static const struct ctl_cmd migrate_cmd[] = {
    {NULL, "", "apply database migrations and grant the daemons' role its rights",
     "Connects as [postgres] migrate_conninfo (the schema's owner) when it is set.", no_opts, 0,
     0, CTL_LOCAL, cmd_migrate},
};
static const struct ctl_cmd secrets_cmd[] = {
    {NULL, "", "keys and tokens per key-hashing secret (may an old one go?)", NULL, json_opts, 0,
     0, CTL_LOCAL, cmd_secrets},
};

const struct ctl_group ctl_migrate_group = {"migrate", "apply database migrations", migrate_cmd, 1};
const struct ctl_group ctl_secrets_group = {"secrets", "keys and tokens per key-hashing secret",
                                            secrets_cmd, 1};
