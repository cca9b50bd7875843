#include "restore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "backup.h"
#include "bkfile.h"
#include "jsonx.h"
#include "manifest.h"
#include "migrate.h"
#include "pg.h"
#include "pgtool.h"
#include "redis_forget.h"
#include "strbuf.h"

#define MANIFEST_MAX (16 * 1024 * 1024)

/* The number of tables (ordinary and partitioned) in conn's current schema
 * into *n; 0 or -1 with e. */
static int count_tables(struct pg_conn *conn, int64_t *n, struct api_error *e)
{
    struct pg_res *r = pg_query(conn,
                                "SELECT count(*) FROM pg_class"
                                " WHERE relnamespace = current_schema()::regnamespace"
                                " AND relkind IN ('r', 'p')",
                                0, NULL, e);
    if (!r)
        return -1;
    *n = pg_int(r, 0, 0);
    pg_res_free(r);
    return 0;
}

/* Reads and parses the manifest at path into m; 0 or -1 after a message. */
static int read_manifest(const char *path, struct manifest *m)
{
    struct api_error e;
    FILE *f = fopen(path, "rbe");
    if (!f) {
        fprintf(stderr, "tollgatectl: restore: cannot read the manifest %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    struct strbuf b = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0 && b.len <= MANIFEST_MAX)
        strbuf_put(&b, buf, n);
    bool bad = ferror(f) || b.len > MANIFEST_MAX || !b.p;
    fclose(f);
    int rc = bad ? -1 : manifest_parse(b.p, b.len, m, &e);
    if (rc != 0)
        fprintf(stderr, "tollgatectl: restore: %s: %s\n", path,
                bad ? "cannot read it, or it is empty or too large" : e.message);
    strbuf_fini(&b);
    return rc;
}

static int run_pg_restore(const char *conninfo, const char *dump, struct api_error *e)
{
    struct strbuf ci = {0}, db = {0};
    char *password = NULL;
    int rc = pgtool_conninfo(conninfo, &ci, &password, e);
    if (rc == 0) {
        strbuf_printf(&db, "--dbname=%s", ci.p);
        /* The objects become the restoring role's (the schema's owner) and
         * privileges are given afterwards (restore_privileges), for the
         * roles of this server, which need not be the dump's. */
        char *argv[] = {"pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
                        "--single-transaction", "--no-password", db.p, (char *)dump, NULL};
        rc = pgtool_run(argv, password, -1, e);
    }
    if (password)
        memset(password, 0, strlen(password));
    free(password);
    strbuf_fini(&ci);
    strbuf_fini(&db);
    return rc;
}

/* What --no-privileges left out: PUBLIC's right to execute the functions
 * the manifest names private (a new function's default), then the daemons'
 * grants (tg_grant_app, through migrate_grant). */
static int restore_privileges(struct pg_conn *conn, const struct config *cfg,
                              json_object *private_fns, struct api_error *e)
{
    if (pg_begin(conn, e) != 0)
        return -1;
    size_t n = json_object_array_length(private_fns);
    for (size_t i = 0; i < n; i++) {
        const char *p[] = {json_object_get_string(json_object_array_get_idx(private_fns, i))};
        /* The cast checks the name; its text is PostgreSQL's own quoting. */
        struct pg_res *r = pg_query(conn, "SELECT $1::regprocedure::text", 1, p, e);
        if (!r)
            goto fail;
        struct strbuf sql = {0};
        strbuf_printf(&sql, "REVOKE ALL ON FUNCTION %s FROM PUBLIC", pg_val(r, 0, 0));
        pg_res_free(r);
        int rc = pg_script(conn, sql.p, e);
        strbuf_fini(&sql);
        if (rc != 0)
            goto fail;
    }
    char *role = NULL;
    if (migrate_grant(conn, cfg->pg_conninfo, &role, e) != 0 || pg_commit(conn, e) != 0) {
        free(role);
        goto fail;
    }
    printf("privileges: EXECUTE taken from PUBLIC on %zu functions; %s%s\n", n,
           role ? "tg_grant_app granted the daemons' role " : "the daemons connect as the owner",
           role ? role : "");
    free(role);
    return 0;
fail:
    pg_rollback(conn);
    return -1;
}

/* The checks after the restore; returns how many failed (-1: could not run). */
static int verify(struct pg_conn *conn, const struct config *cfg, const struct manifest *m)
{
    struct api_error e;
    json_object *got = manifest_figures(conn, m->as_of, &e);
    if (!got) {
        fprintf(stderr, "tollgatectl: restore: reading the figures: %s\n", e.message);
        return -1;
    }
    int failed = 0;
    char line[2048];
    for (size_t i = 0; i < manifest_nsections; i++) {
        bool ok = manifest_check(m->figures, got, manifest_sections[i], line, sizeof line);
        printf("check %s: %s (%s)\n", manifest_sections[i], ok ? "ok" : "MISMATCH", line);
        failed += !ok;
    }
    json_object_put(got);
    bool chain_ok;
    int64_t entries, bad_seq;
    if (audit_verify(conn, cfg, &chain_ok, &entries, &bad_seq, &e) != 0) {
        fprintf(stderr, "tollgatectl: restore: audit verify: %s\n", e.message);
        return -1;
    }
    int64_t head = json_object_get_int64(jsonx_get(jsonx_get(m->figures, "audit"), "seq"));
    if (chain_ok && entries == head)
        printf("check audit chain: ok (%lld entries verify up to the manifest's head)\n",
               (long long)entries);
    else if (chain_ok)
        printf("check audit chain: MISMATCH (%lld entries verify, the manifest's head is %lld)\n",
               (long long)entries, (long long)head);
    else
        printf("check audit chain: MISMATCH (entry %lld does not verify; are the audit and"
               " key-hashing secrets of the configuration the backup's?)\n",
               (long long)bad_seq);
    return failed + !(chain_ok && entries == head);
}

/* Everything after the manifest was read. */
static int restore(const struct config *cfg, const char *dump, const struct manifest *m)
{
    const char *owner = *cfg->pg_migrate_conninfo ? cfg->pg_migrate_conninfo : cfg->pg_conninfo;
    struct api_error e;
    char sha[65];
    int64_t t0 = mono_ns(), tables;
    long long bytes = bkfile_sha256(dump, sha, &e);
    if (bytes < 0) {
        fprintf(stderr, "tollgatectl: restore: %s\n", e.message);
        return 1;
    }
    if (bytes != m->dump_bytes || strcmp(sha, m->dump_sha256) != 0) {
        fprintf(stderr, "tollgatectl: restore: %s is not the dump its manifest describes"
                        " (%lld bytes, the manifest says %lld, or another SHA-256)\n",
                dump, bytes, m->dump_bytes);
        return 1;
    }
    printf("check dump: ok (%lld bytes, SHA-256 as in the manifest)\n", bytes);
    struct pg_conn *conn = pg_connect(owner, &e);
    if (!conn) {
        fprintf(stderr, "tollgatectl: restore: cannot connect to PostgreSQL: %s\n", e.message);
        return 1;
    }
    int rc = 1;
    if (count_tables(conn, &tables, &e) != 0) {
        fprintf(stderr, "tollgatectl: restore: %s\n", e.message);
        goto done;
    }
    if (tables > 0) {
        fprintf(stderr, "tollgatectl: restore: refused: the database already has %lld tables in"
                        " its schema; restore only into an empty database (drop it and create"
                        " it again, empty)\n", (long long)tables);
        goto done;
    }
    if (run_pg_restore(owner, dump, &e) != 0 ||
        restore_privileges(conn, cfg, jsonx_get(m->figures, "private_functions"), &e) != 0) {
        fprintf(stderr, "tollgatectl: restore failed: %s\n", e.message);
        goto done;
    }
    printf("restored: %s (taken %s, Tollgate %s) in %.2f s\n", dump, m->created_at, m->version,
           (double)(mono_ns() - t0) / 1e9);
    /* Redis describes the database that was replaced: its records and
     * counters go, and each key's state is rebuilt from the restored one. */
    long forgotten = redis_forget(cfg, &e);
    if (forgotten < 0) {
        fprintf(stderr, "tollgatectl: restore: Tollgate's keys could not be removed from Redis"
                        " (%s): remove every " REDIS_FORGET_PATTERN " key before the daemons"
                        " start (docs/backup.md)\n", e.message);
        goto done;
    }
    printf("redis: removed %ld keys of Tollgate (" REDIS_FORGET_PATTERN ")\n", forgotten);
    int failed = verify(conn, cfg, m);
    if (failed == 0) {
        printf("restore: done in %.2f s, every check passed\n", (double)(mono_ns() - t0) / 1e9);
        rc = 0;
    } else if (failed > 0) {
        fprintf(stderr, "tollgatectl: restore: %d checks FAILED (above)\n", failed);
    }
done:
    pg_disconnect(conn);
    return rc;
}

int restore_main(const struct config *cfg, int argc, char **argv)
{
    /* Progress and refusals in the order they happen, also into a pipe or the journal. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    char dump[BKFILE_PATH_MAX], json[BKFILE_PATH_MAX];
    if (argc != 1) {
        fprintf(stderr, "usage: tollgatectl restore FILE\n");
        return 2;
    }
    if (backup_paths(argv[0], dump, json, sizeof dump) != 0) {
        fprintf(stderr, "tollgatectl: restore: %s is not a backup's .dump or .json"
                        " (tollgate-YYYYMMDDTHHMMSSZ.dump)\n", argv[0]);
        return 2;
    }
    struct manifest m;
    if (read_manifest(json, &m) != 0)
        return 1;
    int rc = restore(cfg, dump, &m);
    manifest_fini(&m);
    return rc;
}
