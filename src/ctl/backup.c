#include "backup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bkfile.h"
#include "jsonx.h"
#include "manifest.h"
#include "pg.h"
#include "pgtool.h"
#include "strbuf.h"

int backup_parse_args(int argc, char **argv, struct backup_opts *o)
{
    o->dir = BACKUP_DEFAULT_DIR;
    o->keep = 0;
    for (int i = 0; i < argc; i += 2) {
        bool dir = strcmp(argv[i], "--dir") == 0, keep = strcmp(argv[i], "--keep") == 0;
        if (!dir && !keep) {
            fprintf(stderr, "tollgatectl: backup: %s is not an option\n"
                            "usage: tollgatectl backup [--dir DIR] [--keep N]\n", argv[i]);
            return 2;
        }
        if (i + 1 >= argc || !*argv[i + 1]) {
            fprintf(stderr, "tollgatectl: backup: %s needs a value\n", argv[i]);
            return 2;
        }
        int64_t n;
        if (dir) {
            o->dir = argv[i + 1];
        } else if (parse_int64(argv[i + 1], 1, BACKUP_KEEP_MAX, &n) != 0) {
            fprintf(stderr, "tollgatectl: backup: --keep takes a number from 1 to %d\n",
                    BACKUP_KEEP_MAX);
            return 2;
        } else {
            o->keep = (int)n;
        }
    }
    return 0;
}

int backup_paths(const char *path, char *dump, char *manifest, size_t size)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(path), ext = bkfile_is_name(base, ".dump")   ? 5
                                 : bkfile_is_name(base, ".json") ? 5
                                                                 : 0;
    if (!ext || n + 1 > size)
        return -1;
    snprintf(dump, size, "%.*s.dump", (int)(n - ext), path);
    snprintf(manifest, size, "%.*s.json", (int)(n - ext), path);
    return 0;
}

/* The backup directory, made (0700) when it does not exist yet. */
static int ensure_dir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (mkdir(dir, 0700) == 0)
        return 0;
    fprintf(stderr, "tollgatectl: backup: cannot create the directory %s: %s\n", dir,
            strerror(errno));
    return -1;
}

static double seconds_since(int64_t start_ns) { return (double)(mono_ns() - start_ns) / 1e9; }

/* pg_dump --snapshot=snapshot of the database that conninfo names into the
 * new file dir/stem.dump.  Returns 0, or -1 with e filled. */
static int dump(const char *conninfo, const char *snapshot, const char *dir, const char *name,
                struct api_error *e)
{
    struct strbuf ci = {0}, snap = {0}, db = {0};
    char *password = NULL, tmp[BKFILE_PATH_MAX];
    int rc = -1;
    if (pgtool_conninfo(conninfo, &ci, &password, e) != 0)
        goto done;
    int fd = bkfile_create_temp(dir, name, tmp, e);
    if (fd < 0)
        goto done;
    strbuf_printf(&snap, "--snapshot=%s", snapshot);
    strbuf_printf(&db, "--dbname=%s", ci.p);
    char *argv[] = {"pg_dump", "--format=custom", "--no-password", snap.p, db.p, NULL};
    if (pgtool_run(argv, password, fd, e) != 0) {
        close(fd);
        unlink(tmp);
        goto done;
    }
    rc = bkfile_commit(fd, tmp, dir, name, e);
done:
    if (password)
        memset(password, 0, strlen(password));
    free(password);
    strbuf_fini(&ci);
    strbuf_fini(&snap);
    strbuf_fini(&db);
    return rc;
}

/* The snapshot transaction: its exported id and now() as UTC text. */
static int snapshot_begin(struct pg_conn *conn, char id[64], char as_of[40], struct api_error *e)
{
    if (pg_script(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", e) != 0)
        return -1;
    struct pg_res *r = pg_query(conn,
                                "SELECT pg_export_snapshot(), to_char(now() AT TIME ZONE 'UTC',"
                                " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
                                0, NULL, e);
    if (!r)
        return -1;
    snprintf(id, 64, "%s", pg_val(r, 0, 0));
    snprintf(as_of, 40, "%s", pg_val(r, 0, 1));
    pg_res_free(r);
    return 0;
}

/* Everything after the lock; the figures and the dump share a snapshot. */
static int take(const struct config *cfg, const struct backup_opts *o)
{
    const char *owner = *cfg->pg_migrate_conninfo ? cfg->pg_migrate_conninfo : cfg->pg_conninfo;
    struct api_error e;
    char snapshot[64], as_of[40], stem[BKFILE_STEM_LEN], dump_name[BKFILE_STEM_LEN + 8],
        json_name[BKFILE_STEM_LEN + 8], path[BKFILE_PATH_MAX], sha[65], created[TG_TIME_LEN];
    json_object *figures = NULL;
    char *text = NULL;
    int rc = 1;
    struct pg_conn *conn = pg_connect(owner, &e);
    if (!conn || snapshot_begin(conn, snapshot, as_of, &e) != 0 ||
        !(figures = manifest_figures(conn, as_of, &e)))
        goto done;
    time_t now = time(NULL);
    bkfile_stem(now, stem);
    format_time_ms((int64_t)now * 1000, created);
    snprintf(dump_name, sizeof dump_name, "%s.dump", stem);
    snprintf(json_name, sizeof json_name, "%s.json", stem);
    int64_t t0 = mono_ns();
    if (dump(owner, snapshot, o->dir, dump_name, &e) != 0)
        goto done;
    double secs = seconds_since(t0);
    pg_rollback(conn); /* the snapshot is no longer needed */
    pg_disconnect(conn);
    conn = NULL;
    snprintf(path, sizeof path, "%s/%s", o->dir, dump_name);
    long long bytes = bkfile_sha256(path, sha, &e);
    if (bytes < 0) {
        unlink(path);
        goto done;
    }
    struct manifest m = {.created_at = created, .as_of = as_of, .version = PACKAGE_VERSION,
                         .dump_file = dump_name, .dump_sha256 = sha, .dump_bytes = bytes,
                         .dump_seconds = secs};
    text = manifest_format(&m, figures);
    if (bkfile_write(o->dir, json_name, text, strlen(text), &e) != 0) {
        unlink(path); /* a dump without its manifest is not a backup */
        goto done;
    }
    json_object *audit = jsonx_get(figures, "audit"), *mig = jsonx_get(figures, "migration");
    printf("backup: %s/%s, %lld bytes, pg_dump %.2f s, snapshot of %s\n", o->dir, dump_name,
           bytes, secs, as_of);
    printf("manifest: %s/%s (migration %s, audit head seq %lld)\n", o->dir, json_name,
           json_object_get_string(jsonx_get(mig, "last")),
           (long long)json_object_get_int64(jsonx_get(audit, "seq")));
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "tollgatectl: backup failed: %s\n", e.message);
    free(text);
    json_object_put(figures);
    pg_disconnect(conn); /* ends the transaction */
    return rc;
}

int backup_main(const struct config *cfg, int argc, char **argv)
{
    /* Progress and refusals in the order they happen, also into a pipe or the journal. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct backup_opts o;
    int rc = backup_parse_args(argc, argv, &o);
    if (rc != 0)
        return rc;
    if (ensure_dir(o.dir) != 0)
        return 1;
    struct api_error e;
    int lock = bkfile_lock(o.dir, &e);
    if (lock < 0) {
        fprintf(stderr, "tollgatectl: backup: %s\n", e.message);
        return 1;
    }
    rc = take(cfg, &o);
    int removed = 0;
    if (rc == 0 && o.keep > 0) {
        if (bkfile_prune(o.dir, o.keep, &removed, &e) != 0) {
            fprintf(stderr, "tollgatectl: backup: keeping %d: %s\n", o.keep, e.message);
            rc = 1;
        } else {
            printf("kept the newest %d backups, removed %d\n", o.keep, removed);
        }
    }
    close(lock);
    return rc;
}
