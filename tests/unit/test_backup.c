/* Unit tests of backup's and restore's arguments: what is refused before
 * anything is connected to.  Backing up and restoring run against the
 * stack in the restore drill (contrib/stack.d/restore_drill.sh). */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sys/stat.h>

#include "backup.h"
#include "bkfile.h"
#include "manifest.h"
#include "restore.h"
#include "unit.h"

static int parse(struct backup_opts *o, int argc, const char **argv)
{
    return backup_parse_args(argc, (char **)argv, o);
}

static void test_parse_args(void)
{
    struct backup_opts o;
    CU_ASSERT_EQUAL(parse(&o, 0, NULL), 0);
    CU_ASSERT_STRING_EQUAL(o.dir, BACKUP_DEFAULT_DIR);
    CU_ASSERT_EQUAL(o.keep, 0);
    const char *both[] = {"--keep", "24", "--dir", "/srv/b"};
    CU_ASSERT_EQUAL(parse(&o, 4, both), 0);
    CU_ASSERT_STRING_EQUAL(o.dir, "/srv/b");
    CU_ASSERT_EQUAL(o.keep, 24);
    const char *bad[][2] = {{"--keep", "0"},  {"--keep", "-1"}, {"--keep", "x"},
                            {"--keep", "1e3"}, {"--keep", "100001"}, {"--dir", ""},
                            {"--dirs", "/x"}, {"backup", "now"}};
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++)
        CU_ASSERT_EQUAL(parse(&o, 2, bad[i]), 2);
    const char *lone[] = {"--keep"};
    CU_ASSERT_EQUAL(parse(&o, 1, lone), 2);
}

static void test_paths(void)
{
    char dump[256], json[256];
    CU_ASSERT_EQUAL(backup_paths("/b/tollgate-20261204T053328Z.dump", dump, json, sizeof dump), 0);
    CU_ASSERT_STRING_EQUAL(dump, "/b/tollgate-20261204T053328Z.dump");
    CU_ASSERT_STRING_EQUAL(json, "/b/tollgate-20261204T053328Z.json");
    CU_ASSERT_EQUAL(backup_paths("tollgate-20261204T053328Z.json", dump, json, sizeof dump), 0);
    CU_ASSERT_STRING_EQUAL(dump, "tollgate-20261204T053328Z.dump");
    CU_ASSERT_EQUAL(backup_paths("/b/tollgate-20261204T053328Z.sql", dump, json, sizeof dump), -1);
    CU_ASSERT_EQUAL(backup_paths("/b/", dump, json, sizeof dump), -1);
    CU_ASSERT_EQUAL(backup_paths("/b/tollgate-20261204T053328Z.dump", dump, json, 20), -1);
}

/* Usage errors and a missing manifest end before any connection (the
 * configuration's conninfo points nowhere). */
static void test_main_refusals(void)
{
    struct config cfg = {0};
    cfg.pg_conninfo = (char *)"host=127.0.0.1 port=1 connect_timeout=1";
    cfg.pg_migrate_conninfo = (char *)"";
    const char *unknown[] = {"--now"};
    CU_ASSERT_EQUAL(backup_main(&cfg, 1, (char **)unknown), 2);
    CU_ASSERT_EQUAL(restore_main(&cfg, 0, NULL), 2);
    const char *two[] = {"a", "b"};
    CU_ASSERT_EQUAL(restore_main(&cfg, 2, (char **)two), 2);
    const char *odd[] = {"/tmp/backup.sql"};
    CU_ASSERT_EQUAL(restore_main(&cfg, 1, (char **)odd), 2);
    const char *missing[] = {"/nonexistent/tollgate-20261204T053328Z.dump"};
    CU_ASSERT_EQUAL(restore_main(&cfg, 1, (char **)missing), 1);
    /* A directory that cannot be made fails before connecting. */
    const char *nodir[] = {"--dir", "/nonexistent/deeper/backups"};
    CU_ASSERT_EQUAL(backup_main(&cfg, 2, (char **)nodir), 1);
}

/* A manifest that is not one, a dump missing or not the manifest's: each
 * refused before a connection is tried. */
static void test_restore_refuses_bad_backup(void)
{
    struct config cfg = {0};
    cfg.pg_conninfo = (char *)"host=127.0.0.1 port=1 connect_timeout=1";
    cfg.pg_migrate_conninfo = (char *)"";
    const char *t = getenv("TMPDIR");
    char dir[256], dump[400], *argv[] = {dump};
    snprintf(dir, sizeof dir, "%s/tollgate-restore-XXXXXX", t && *t ? t : "/tmp");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(dump, sizeof dump, "%s/tollgate-20261204T053328Z.dump", dir);
    struct api_error e;
    CU_ASSERT_EQUAL(bkfile_write(dir, "tollgate-20261204T053328Z.json", "{}", 2, &e), 0);
    CU_ASSERT_EQUAL(restore_main(&cfg, 1, argv), 1);
    char json[400];
    snprintf(json, sizeof json, "%s/tollgate-20261204T053328Z.json", dir);
    remove(json);
    json_object *f = json_tokener_parse("{\"migration\":{},\"audit\":{},\"billing\":[],"
                                        "\"counts\":{},\"private_functions\":[]}");
    /* The manifest of a dump "abc" (its SHA-256). */
    struct manifest m = {
        .created_at = "2026-12-04T05:33:28.000Z", .as_of = "2026-12-04T05:33:28Z", .version = "0",
        .dump_file = "tollgate-20261204T053328Z.dump", .dump_bytes = 3,
        .dump_sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"};
    char *text = manifest_format(&m, f);
    CU_ASSERT_EQUAL(bkfile_write(dir, "tollgate-20261204T053328Z.json", text, strlen(text), &e), 0);
    CU_ASSERT_EQUAL(restore_main(&cfg, 1, argv), 1); /* no dump */
    CU_ASSERT_EQUAL(bkfile_write(dir, "tollgate-20261204T053328Z.dump", "abd", 3, &e), 0);
    CU_ASSERT_EQUAL(restore_main(&cfg, 1, argv), 1); /* another SHA-256 */
    free(text);
    json_object_put(f);
    remove(dump);
    remove(json);
    rmdir(dir);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_parse_args),
        UNIT_TEST(test_paths),
        UNIT_TEST(test_main_refusals),
        UNIT_TEST(test_restore_refuses_bad_backup),
    };
    return unit_run("backup", tests, TG_ARRAY_LEN(tests));
}
