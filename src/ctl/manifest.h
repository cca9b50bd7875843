/* manifest: what a backup holds, written beside its dump and checked again
 * after a restore.  Its figures are read in the transaction whose snapshot
 * pg_dump uses (pg_export_snapshot, pg_dump --snapshot), so they describe
 * exactly the data of the dump, however busy the database was:
 *  - migration: the last applied migration's name and how many there are;
 *  - audit: the chain's head (last seq and its hash);
 *  - billing: per period, status (closed, or open as computed at the
 *    backup's time) and currency, the number of lines and the sum of their
 *    amount_micros (as text: a sum may pass 2^63);
 *  - counts: keys, key secrets, admin tokens, audit entries, and the
 *    allowed checks recorded in usage_minute;
 *  - private_functions: the functions PUBLIC may not execute, so that a
 *    restore without the dump's privileges can take that right away again.
 * The JSON (format 1):
 *   {"format":1,"created_at":"...Z","as_of":"...Z","tollgate_version":"...",
 *    "dump":{"file":"tollgate-...Z.dump","bytes":N,"sha256":"...","seconds":F},
 *    "figures":{"migration":{...},"audit":{...},"billing":[...],"counts":{...},
 *               "private_functions":[...]}} */
#ifndef TOLLGATE_MANIFEST_H
#define TOLLGATE_MANIFEST_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "util.h"

struct pg_conn;

#define MANIFEST_FORMAT 1

/* The sections of "figures", in the order a restore checks them. */
extern const char *const manifest_sections[];
extern const size_t manifest_nsections;

/* A parsed manifest.  The strings are borrowed from root. */
struct manifest {
    json_object *root;
    const char *created_at;
    const char *as_of; /* the snapshot's time: open periods are computed for it */
    const char *version;
    const char *dump_file;
    const char *dump_sha256;
    long long dump_bytes;
    double dump_seconds;
    json_object *figures;
};

/* Reads the figures over conn as of as_of (a timestamp PostgreSQL parses,
 * the snapshot's now()), in the caller's transaction.  Returns a new object
 * (caller puts it), or NULL with e filled. */
json_object *manifest_figures(struct pg_conn *conn, const char *as_of, struct api_error *e);

/* The manifest's JSON text (caller frees) from m's scalar fields and
 * figures (borrowed; m->root is not used). */
char *manifest_format(const struct manifest *m, json_object *figures);

/* Parses and validates text into m (manifest_fini frees).  Returns 0, or
 * -1 with e filled: not JSON, another format, or a member missing or of
 * the wrong type. */
int manifest_parse(const char *text, size_t len, struct manifest *m, struct api_error *e) TG_WUR;
void manifest_fini(struct manifest *m);

/* Compares section of the figures want (the manifest's) and got (the
 * database's).  True when they are equal; either way a line for the
 * operator into out (size bytes): the figures, or what differs. */
bool manifest_check(json_object *want, json_object *got, const char *section, char *out,
                    size_t size);

#endif
