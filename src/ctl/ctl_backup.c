/* ctl_backup: the backup and restore commands (backup.h, restore.h), local
 * ones: they run pg_dump and pg_restore with the configuration's
 * connection strings. */
#include <stddef.h>

#include "backup.h"
#include "ctl.h"
#include "restore.h"

/* The options ctl_args accepted, handed on as backup's own arguments:
 * backup_parse_args checks their values (a directory, a count in range). */
static int cmd_backup(struct ctl *ctl, const struct ctl_args *a)
{
    char *argv[4];
    int argc = 0;
    static const char *const names[] = {"dir", "keep"};
    static char dir_flag[] = "--dir", keep_flag[] = "--keep";
    char *flags[] = {dir_flag, keep_flag};
    for (size_t i = 0; i < 2; i++) {
        const char *v = ctl_args_get(a, names[i]);
        if (v) {
            argv[argc++] = flags[i];
            argv[argc++] = (char *)v;
        }
    }
    return backup_main(&ctl->cfg, argc, argv);
}

static int cmd_restore(struct ctl *ctl, const struct ctl_args *a)
{
    char *argv[] = {(char *)a->pos[0]};
    return restore_main(&ctl->cfg, 1, argv);
}

static const struct ctl_opt backup_opts[] = {
    {"dir", "DIR", "where to write it (default " BACKUP_DEFAULT_DIR ")"},
    {"keep", "N", "then keep only the newest N backups there"},
    {NULL, NULL, NULL},
};
static const struct ctl_opt no_opts[] = {{NULL, NULL, NULL}};
static const struct ctl_cmd backup_cmd[] = {
    {NULL, "", "dump the database and its manifest (docs/backup.md)",
     "pg_dump in custom format of one snapshot, and a manifest of the same snapshot: time,\n"
     "migration, audit chain head, billing totals. Both files 0600, named by UTC time.",
     backup_opts, 0, 0, CTL_LOCAL, cmd_backup},
};
static const struct ctl_cmd restore_cmd[] = {
    {NULL, "FILE", "restore a backup into an empty database, then verify it",
     "FILE is the backup's .dump or .json. Refused when the database already has tables.\n"
     "Checks the migration, the audit chain and billing totals against the manifest.",
     no_opts, 1, 1, CTL_LOCAL, cmd_restore},
};
const struct ctl_group ctl_backup_group = {"backup", "dump the database and its manifest",
                                           backup_cmd, 1};
const struct ctl_group ctl_restore_group = {"restore", "restore a backup into an empty database",
                                            restore_cmd, 1};
