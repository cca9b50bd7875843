/* ctl: what the modules of tollgatectl share -- the run's context, the
 * shape of a command and of a command group.  Every group exports one
 * struct ctl_group; ctl_main.c lists them, and help at every level (the
 * program, a group, a command) is generated from these tables, so a
 * command cannot exist without its help text. */
#ifndef TOLLGATE_CTL_H
#define TOLLGATE_CTL_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "ctl_args.h"

/* Exit statuses (tollgatectl(1), EXIT STATUS). */
enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2 };

struct ctl_http;
struct pg_conn;

/* One run of the program.  The configuration is loaded before a command
 * runs when the command needs it (CTL_NEEDS_CONFIG), or when one was named
 * (-c, TOLLGATE_CONFIG) or the default file is readable. */
struct ctl {
    const char *config_path; /* NULL: none named */
    bool config_loaded;
    struct config cfg;
    struct pg_conn *pg;      /* local commands: opened on demand */
    struct ctl_http *http;   /* API commands: opened on demand */
    const char *url;         /* --url; NULL: TOLLGATE_URL, then [ctl] url */
    const char *token_file;  /* --token-file; NULL: TOLLGATE_TOKEN, then [ctl] token_file */
    const char *ca_file;     /* --ca-file; NULL: [ctl] ca_file */
};

/* Where a command's data comes from: the API (an admin token needed) or
 * the stores named in the configuration. */
enum ctl_kind { CTL_API, CTL_LOCAL };

struct ctl_cmd {
    const char *word;      /* "create"; NULL: the group's only command */
    const char *synopsis;  /* positional arguments, e.g. "ID" ("" for none) */
    const char *summary;   /* one line for the group's help */
    const char *details;   /* more lines for the command's own help, or NULL */
    const struct ctl_opt *opts; /* ends with {NULL} */
    int min_args, max_args;
    enum ctl_kind kind;
    int (*run)(struct ctl *ctl, const struct ctl_args *a);
};

/* A group of one command whose word is NULL is itself the command
 * (tollgatectl migrate). */
struct ctl_group {
    const char *word;     /* "keys" */
    const char *summary;
    const struct ctl_cmd *cmds;
    size_t ncmds;
};

extern const struct ctl_group ctl_keys_group, ctl_tiers_group, ctl_tokens_group,
    ctl_usage_group, ctl_billing_group, ctl_audit_group, ctl_token_group, ctl_config_group,
    ctl_migrate_group, ctl_secrets_group, ctl_backup_group, ctl_restore_group;

/* Opens the HTTP client for an API command (URL, token and CA as
 * ctl(1) describes); 0, or 1 after a message on stderr. */
int ctl_api(struct ctl *ctl);
/* Opens the PostgreSQL connection of a local command (conninfo: the
 * configuration's [postgres] conninfo, or migrate_conninfo when owner is
 * true and it is set); 0, or 1 after a message. */
int ctl_db(struct ctl *ctl, bool owner);

#endif
