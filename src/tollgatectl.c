/* tollgatectl: operations from the shell — schema migrations, the first
 * admin tokens, configuration checks, closing a billing period. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "auth.h"
#include "backup.h"
#include "buildinfo.h"
#include "config.h"
#include "keys.h"
#include "migrate.h"
#include "pg.h"
#include "restore.h"
#include "rtls.h"

extern char **environ;

struct ctl {
    struct config cfg;
    struct pg_conn *pg;
};

typedef int (*command_fn)(struct ctl *ctl, int argc, char **argv);

static int connect_as(struct ctl *ctl, const char *conninfo)
{
    struct api_error e;
    ctl->pg = pg_connect(conninfo, &e);
    if (!ctl->pg) {
        fprintf(stderr, "tollgatectl: cannot connect to PostgreSQL (see the log line above)\n");
        return -1;
    }
    return 0;
}

static int connect_db(struct ctl *ctl) { return connect_as(ctl, ctl->cfg.pg_conninfo); }

static int cmd_migrate(struct ctl *ctl, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct api_error e;
    int applied = 0;
    const char *owner = *ctl->cfg.pg_migrate_conninfo ? ctl->cfg.pg_migrate_conninfo
                                                      : ctl->cfg.pg_conninfo;
    if (connect_as(ctl, owner) != 0)
        return 1;
    if (migrate_run(ctl->pg, &applied, &e) != 0) {
        fprintf(stderr, "tollgatectl: migration failed: %s\n", e.message);
        return 1;
    }
    printf("migrations applied: %d\n", applied);
    char *role = NULL;
    if (migrate_grant(ctl->pg, ctl->cfg.pg_conninfo, &role, &e) != 0) {
        fprintf(stderr, "tollgatectl: granting the application's rights failed: %s\n", e.message);
        return 1;
    }
    if (role)
        printf("application role %s: granted what the daemons need, nothing more\n", role);
    else
        printf("warning: the daemons connect as the schema's owner; give [postgres] conninfo "
               "another role to keep them from rewriting the audit log\n");
    free(role);
    return 0;
}

static const char *opt_value(int argc, char **argv, const char *name)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

/* The lifetime options of token create: --expires TIME or --expires-in
 * DURATION (at most one), as epoch milliseconds into out ("" for none).
 * Returns 0 or 2 (usage) after a message. */
static int token_expiry(int argc, char **argv, char out[24])
{
    const char *at = opt_value(argc, argv, "--expires"), *in = opt_value(argc, argv, "--expires-in");
    char when[TG_TIME_LEN];
    int64_t ms, now = now_ms();
    struct api_error e;
    out[0] = '\0';
    if (at && in) {
        fprintf(stderr, "tollgatectl: give --expires or --expires-in, not both\n");
        return 2;
    }
    if (in) {
        if (auth_duration_ms(in, &ms) != 0 || ms > AUTH_TOKEN_LIFE_MAX_MS) {
            fprintf(stderr, "tollgatectl: --expires-in takes a number and a unit s, m, h or d"
                            " (e.g. 30d), at most %lld days\n",
                    (long long)(AUTH_TOKEN_LIFE_MAX_MS / 86400000));
            return 2;
        }
        format_time_ms(now + ms, when);
        at = when;
    }
    if (!at)
        return 0;
    if (auth_token_expiry(at, now, &ms, &e) != 0) {
        fprintf(stderr, "tollgatectl: --expires: %s\n", e.message);
        return 2;
    }
    snprintf(out, 24, "%lld", (long long)ms);
    return 0;
}

/* Every option of token create takes a value; anything else is a mistake
 * to report rather than to ignore. */
static int token_options_ok(int argc, char **argv)
{
    static const char *const known[] = {"--role", "--name", "--owner-id", "--tier", "--expires",
                                        "--expires-in"};
    for (int i = 0; i < argc; i += 2) {
        size_t k = 0;
        while (k < TG_ARRAY_LEN(known) && strcmp(argv[i], known[k]) != 0)
            k++;
        if (k == TG_ARRAY_LEN(known) || i + 1 >= argc) {
            fprintf(stderr, "tollgatectl: token create: %s %s\n", argv[i],
                    k == TG_ARRAY_LEN(known) ? "is not an option" : "needs a value");
            return -1;
        }
    }
    return 0;
}

static int token_create(struct ctl *ctl, int argc, char **argv)
{
    const char *role = opt_value(argc, argv, "--role");
    const char *name = opt_value(argc, argv, "--name");
    const char *owner = opt_value(argc, argv, "--owner-id");
    const char *tier = opt_value(argc, argv, "--tier");
    char expires[24];
    struct api_error e;
    if (token_options_ok(argc, argv) != 0)
        return 2;
    if (!role || !auth_role_bit(role)) {
        fprintf(stderr, "tollgatectl: --role must be admin, operator, billing, viewer, service"
                        " or owner\n");
        return 2;
    }
    if (auth_token_binding(role, owner != NULL, tier != NULL, &e) != 0) {
        fprintf(stderr, "tollgatectl: --role %s: --owner-id and --tier are %s\n", role,
                e.code == ERR_MISSING_FIELD ? "required" : "refused");
        return 2;
    }
    if (owner && (!*owner || !utf8_valid(owner, strlen(owner)) ||
                  utf8_len(owner, strlen(owner)) > 128 || has_control_chars(owner, strlen(owner)))) {
        fprintf(stderr, "tollgatectl: --owner-id must be 1 to 128 characters without control"
                        " characters\n");
        return 2;
    }
    int rc = token_expiry(argc, argv, expires);
    if (rc != 0)
        return rc;
    if (connect_db(ctl) != 0)
        return 1;
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
        return 2;
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
    struct audit_entry a = {.actor = "tollgatectl", .role = "admin", .action = "token.create",
                            .resource_type = "token", .resource_id = id,
                            .changes = pg_val(r, 0, 0)};
    if (audit_append(ctl->pg, &ctl->cfg, &a, &e) != 0 || pg_commit(ctl->pg, &e) != 0)
        goto fail;
    fprintf(stderr, "created token %s (role %s%s%s, expires %s); it is shown once:\n", id, role,
            owner ? ", owner " : "", owner ? owner : "", pg_val(r, 0, 1));
    pg_res_free(t);
    pg_res_free(r);
    printf("%s\n", token);
    return 0;
fail:
    pg_res_free(t);
    pg_res_free(r);
    pg_rollback(ctl->pg);
    fprintf(stderr, "tollgatectl: token create failed: %s\n", e.message);
    return 1;
}

static int token_list(struct ctl *ctl, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct api_error e;
    if (connect_db(ctl) != 0)
        return 1;
    struct pg_res *r = pg_query(ctl->pg,
                                "SELECT id, role, coalesce(name, ''),"
                                " coalesce(tg_ts(revoked_at), CASE WHEN expires_at <= now()"
                                "  THEN 'expired' ELSE 'active' END),"
                                " coalesce(owner_id, '-'), coalesce(tier, '-'),"
                                " coalesce(tg_ts(expires_at), 'never')"
                                " FROM admin_tokens ORDER BY created_at, id",
                                0, NULL, &e);
    if (!r) {
        fprintf(stderr, "tollgatectl: %s\n", e.message);
        return 1;
    }
    for (int i = 0; i < pg_nrows(r); i++)
        printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\n", pg_val(r, i, 0), pg_val(r, i, 1),
               pg_val(r, i, 2), pg_val(r, i, 3), pg_val(r, i, 4), pg_val(r, i, 5),
               pg_val(r, i, 6));
    pg_res_free(r);
    return 0;
}

static int token_revoke(struct ctl *ctl, int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "usage: tollgatectl token revoke ID\n");
        return 2;
    }
    if (connect_db(ctl) != 0)
        return 1;
    struct api_error e;
    const char *p[] = {argv[0]};
    struct pg_res *r = NULL;
    if (pg_begin(ctl->pg, &e) != 0 ||
        !(r = pg_query(ctl->pg,
                       "UPDATE admin_tokens SET revoked_at = clock_timestamp()"
                       " WHERE id = $1 AND revoked_at IS NULL RETURNING id",
                       1, p, &e)))
        goto fail;
    if (pg_nrows(r) == 1) {
        struct audit_entry a = {.actor = "tollgatectl", .role = "admin", .action = "token.revoke",
                                .resource_type = "token", .resource_id = argv[0],
                                .changes = "{\"revoked\":{\"from\":false,\"to\":true}}"};
        if (audit_append(ctl->pg, &ctl->cfg, &a, &e) != 0)
            goto fail;
    }
    if (pg_commit(ctl->pg, &e) != 0)
        goto fail;
    printf("%s\n", pg_nrows(r) == 1 ? "revoked" : "not found or already revoked");
    pg_res_free(r);
    return 0;
fail:
    pg_res_free(r);
    pg_rollback(ctl->pg);
    fprintf(stderr, "tollgatectl: token revoke failed: %s\n", e.message);
    return 1;
}

static int cmd_token(struct ctl *ctl, int argc, char **argv)
{
    static const struct {
        const char *word;
        command_fn fn;
    } sub[] = {{"create", token_create}, {"list", token_list}, {"revoke", token_revoke}};
    for (size_t i = 0; argc > 0 && i < TG_ARRAY_LEN(sub); i++)
        if (strcmp(argv[0], sub[i].word) == 0)
            return sub[i].fn(ctl, argc - 1, argv + 1);
    fprintf(stderr, "usage: tollgatectl token create --role ROLE [--name NAME]"
                    " [--owner-id OWNER --tier TIER] [--expires TIME | --expires-in DURATION]\n"
                    "       tollgatectl token list | revoke ID\n");
    return 2;
}

static int cmd_config(struct ctl *ctl, int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "check") != 0) {
        fprintf(stderr, "usage: tollgatectl config check\n");
        return 2;
    }
    /* Loading validated the values; the Redis TLS context is built as the
     * responders build it at start, which reads the certificates. */
    struct api_error e;
    struct rtls *tls = rtls_from_config(&ctl->cfg, &e);
    if (ctl->cfg.redis_tls && !tls) {
        fprintf(stderr, "tollgatectl: %s\n", e.message);
        return 1;
    }
    rtls_free(tls);
    printf("configuration OK\n");
    return 0;
}

/* billing close PERIOD: what POST /v1/billing/periods/{period}/close does
 * (sql/003_billing.sql), audited as tollgatectl; prints {"data":[records]}. */
static int billing_close(struct ctl *ctl, const char *period)
{
    if (connect_db(ctl) != 0)
        return 1;
    struct api_error e;
    const char *p[] = {period};
    struct pg_res *r = NULL;
    if (pg_begin(ctl->pg, &e) != 0 ||
        !(r = pg_query(ctl->pg, "SELECT outcome, records::text FROM tg_billing_close($1)", 1, p,
                       &e)))
        goto fail;
    const char *outcome = pg_val(r, 0, 0);
    if (strcmp(outcome, "invalid") == 0 || strcmp(outcome, "not_ended") == 0) {
        fprintf(stderr, "tollgatectl: %s: %s\n", period,
                outcome[0] == 'i' ? "not a period (YYYY-MM from 1970-01 to 9999-12)"
                                  : "the period has not ended; only an ended period can be closed");
        pg_res_free(r);
        pg_rollback(ctl->pg);
        return 1;
    }
    struct audit_entry a = {.actor = "tollgatectl", .role = "admin", .action = "billing.close",
                            .resource_type = "billing_period", .resource_id = period,
                            .changes = "{\"status\":{\"from\":\"open\",\"to\":\"closed\"}}"};
    if ((strcmp(outcome, "closed") == 0 && audit_append(ctl->pg, &ctl->cfg, &a, &e) != 0) ||
        pg_commit(ctl->pg, &e) != 0)
        goto fail;
    printf("{\"data\":%s}\n", pg_val(r, 0, 1));
    pg_res_free(r);
    return 0;
fail:
    pg_res_free(r);
    pg_rollback(ctl->pg);
    fprintf(stderr, "tollgatectl: billing close failed: %s\n", e.message);
    return 1;
}

static int cmd_billing(struct ctl *ctl, int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[0], "close") != 0) {
        fprintf(stderr, "usage: tollgatectl billing close PERIOD\n");
        return 2;
    }
    return billing_close(ctl, argv[1]);
}

/* secrets: for each configured key-hashing secret (current first), how many
 * key secrets still in use and unrevoked admin tokens it made -- an old
 * secret may be removed from hmac_previous once both are 0 -- plus those
 * made before secrets had ids. */
static int cmd_secrets(struct ctl *ctl, int argc, char **argv)
{
    (void)argv;
    if (argc != 0) {
        fprintf(stderr, "usage: tollgatectl secrets\n");
        return 2;
    }
    if (connect_db(ctl) != 0)
        return 1;
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
        return 1;
    }
    printf("%-18s %-9s %10s %10s\n", "secret id", "state", "keys", "tokens");
    for (size_t i = 0; i < ctl->cfg.secrets.n; i++) {
        long long keys = 0, tokens = 0;
        for (int row = 0; row < pg_nrows(r); row++) {
            if (strcmp(pg_val(r, row, 0), ctl->cfg.secrets.id[i]) == 0) {
                keys = pg_int(r, row, 1);
                tokens = pg_int(r, row, 2);
            }
        }
        printf("%-18s %-9s %10lld %10lld\n", ctl->cfg.secrets.id[i], i == 0 ? "current" : "previous",
               keys, tokens);
    }
    for (int row = 0; row < pg_nrows(r); row++) {
        const char *id = pg_val(r, row, 0);
        bool known = false;
        for (size_t i = 0; i < ctl->cfg.secrets.n; i++)
            known |= strcmp(id, ctl->cfg.secrets.id[i]) == 0;
        if (!known)
            printf("%-18s %-9s %10lld %10lld\n", *id ? id : "(no id)",
                   *id ? "removed" : "unknown", (long long)pg_int(r, row, 1),
                   (long long)pg_int(r, row, 2));
    }
    pg_res_free(r);
    return 0;
}

static int cmd_backup(struct ctl *ctl, int argc, char **argv)
{
    return backup_main(&ctl->cfg, argc, argv);
}

static int cmd_restore(struct ctl *ctl, int argc, char **argv)
{
    return restore_main(&ctl->cfg, argc, argv);
}

static const struct {
    const char *word;
    command_fn fn;
} commands[] = {
    {"secrets", cmd_secrets},
    {"migrate", cmd_migrate},
    {"token", cmd_token},
    {"config", cmd_config},
    {"billing", cmd_billing},
    {"backup", cmd_backup},
    {"restore", cmd_restore},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: tollgatectl [-c CONFIG] COMMAND\n"
                    "  -c, --config FILE  configuration (default: $TOLLGATE_CONFIG, else\n"
                    "                     " CONFIG_DEFAULT_PATH ")\n"
                    "  -h, --help         this text;  -V, --version  version and commit\n"
                    "  migrate                              apply database migrations\n"
                    "  token create --role ROLE [--name N]  create an admin token (printed once);\n"
                    "      [--owner-id O --tier T]          role owner: bound to owner O, tier T\n"
                    "      [--expires 2027-01-01T00:00:00Z | --expires-in 30d]\n"
                    "                                       refused from then on (s, m, h, d)\n"
                    "  token list                           list admin tokens\n"
                    "  token revoke ID                      revoke an admin token\n"
                    "  config check                         validate the configuration\n"
                    "  secrets                              keys and tokens per key-hashing secret\n"
                    "  billing close PERIOD                 close an ended month YYYY-MM\n"
                    "  backup [--dir DIR] [--keep N]        dump the database and its manifest\n"
                    "                                       (" BACKUP_DEFAULT_DIR ")\n"
                    "  restore FILE                         restore a backup into an empty database\n"
                    "Exit status: 0 done, 1 failed, 2 usage error.  See tollgatectl(1).\n");
}

int main(int argc, char **argv)
{
    if (no_core_dumps() != 0)
        fprintf(stderr, "tollgatectl: cannot turn core dumps off: %s\n", strerror(errno));
    const char *cfg_path = NULL;
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
        if (opt == 'c') {
            cfg_path = optarg;
        } else if (opt == 'V') {
            buildinfo_print(stdout, "tollgatectl");
            return 0;
        } else {
            usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    if (!cfg_path)
        cfg_path = getenv("TOLLGATE_CONFIG");
    if (!cfg_path || !*cfg_path)
        cfg_path = CONFIG_DEFAULT_PATH;
    struct ctl ctl = {0};
    struct api_error err;
    if (config_load(&ctl.cfg, cfg_path, environ, &err) != 0) {
        fprintf(stderr, "tollgatectl: %s\n", err.message);
        return 1;
    }
    int rc = 2;
    size_t i;
    for (i = 0; i < TG_ARRAY_LEN(commands); i++)
        if (strcmp(argv[optind], commands[i].word) == 0)
            break;
    if (i < TG_ARRAY_LEN(commands))
        rc = commands[i].fn(&ctl, argc - optind - 1, argv + optind + 1);
    else
        usage(stderr);
    pg_disconnect(ctl.pg);
    config_fini(&ctl.cfg);
    return rc;
}
