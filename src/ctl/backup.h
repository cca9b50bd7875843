/* backup: tollgatectl's backup and restore of the PostgreSQL database
 * (docs/backup.md).  Redis is not backed up: its state is rebuilt from
 * PostgreSQL (keyuse.h) once Tollgate's Redis keys are gone.
 *
 * backup [--dir DIR] [--keep N]: in one REPEATABLE READ transaction,
 * exports its snapshot, reads the manifest's figures (manifest.h) and runs
 * pg_dump --snapshot on it as the schema's owner ([postgres]
 * migrate_conninfo, else conninfo); writes DIR/tollgate-<UTC time>.dump and
 * .json, each atomically and 0600; then keeps the newest N backups.
 *
 * The way back is restore.h. */
#ifndef TOLLGATE_BACKUP_H
#define TOLLGATE_BACKUP_H

#include "config.h"

#define BACKUP_DEFAULT_DIR LOCALSTATEDIR "/backups/tollgate"
#define BACKUP_KEEP_MAX 100000

struct backup_opts {
    const char *dir;
    int keep; /* 0: keep every backup */
};

/* Parses backup's arguments (after the command word) into o.  Returns 0,
 * or 2 (usage) after a message on stderr. */
int backup_parse_args(int argc, char **argv, struct backup_opts *o);

/* The paths of a backup's two files from the path of either (path of the
 * .dump, or of its .json).  Returns 0, or -1 when path names neither. */
int backup_paths(const char *path, char *dump, char *manifest, size_t size);

/* tollgatectl backup ...: returns the exit status (0 done, 1 failed, 2
 * usage), after printing what it did. */
int backup_main(const struct config *cfg, int argc, char **argv);

#endif
