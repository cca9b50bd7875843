/* bkfile: the files of a backup directory.  A backup is two files named by
 * the UTC time it was taken, tollgate-YYYYMMDDTHHMMSSZ.dump (pg_dump's
 * custom format) and .json (its manifest), so that names sort in time
 * order.  Each is written under a temporary name (a leading dot, ".tmp" at
 * the end), synced, then renamed: a crash leaves either the whole file or
 * no file of that name.  Every file is created with mode 0600. */
#ifndef TOLLGATE_BKFILE_H
#define TOLLGATE_BKFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "error.h"
#include "util.h"

/* "tollgate-YYYYMMDDTHHMMSSZ" and its NUL. */
#define BKFILE_STEM_LEN 26
#define BKFILE_PATH_MAX 4096

/* The stem of a backup taken at t (UTC) into out. */
void bkfile_stem(time_t t, char out[BKFILE_STEM_LEN]);

/* Whether name is STEM + ext (ext ".dump" or ".json") for a well-formed
 * stem. */
bool bkfile_is_name(const char *name, const char *ext);

/* Creates dir/.name.tmp (which must not exist) with mode 0600 for writing;
 * its path into tmp.  Returns the descriptor (close-on-exec), or -1 with e
 * filled. */
int bkfile_create_temp(const char *dir, const char *name, char tmp[BKFILE_PATH_MAX],
                       struct api_error *e) TG_WUR;

/* Syncs and closes fd (the temporary file tmp of bkfile_create_temp), then
 * renames it to dir/name, which must not exist yet, and syncs dir.  On
 * failure tmp is removed.  Returns 0, or -1 with e filled. */
int bkfile_commit(int fd, const char *tmp, const char *dir, const char *name,
                  struct api_error *e) TG_WUR;

/* Writes data[0..len) to dir/name atomically (the two calls above). */
int bkfile_write(const char *dir, const char *name, const char *data, size_t len,
                 struct api_error *e) TG_WUR;

/* The hex SHA-256 of the file at path into out.  Returns its size in
 * bytes, or -1 with e filled. */
long long bkfile_sha256(const char *path, char out[65], struct api_error *e) TG_WUR;

/* Keeps the newest keep backups of dir (counted by stem, whichever of the
 * two files exists) and removes the files of older ones, and temporary
 * files that an interrupted run left (the caller holds the directory's
 * lock).  *removed receives the number of backups removed.  Returns 0, or
 * -1 with e filled. */
int bkfile_prune(const char *dir, int keep, int *removed, struct api_error *e) TG_WUR;

/* Takes an exclusive lock on dir/.lock without waiting (created 0600).
 * Returns the descriptor to close when done, or -1 with e filled (another
 * backup runs: conflict). */
int bkfile_lock(const char *dir, struct api_error *e) TG_WUR;

#endif
