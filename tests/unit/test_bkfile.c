/* Unit tests of bkfile: names, atomic 0600 files that never replace a
 * backup, the checksum, retention and the directory's lock. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bkfile.h"
#include "unit.h"

static char dir[256];

static void make_dir(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/tollgate-bkfile-XXXXXX", t && *t ? t : "/tmp");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[600];
    while (d && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            unlink(path);
        }
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static bool exists(const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void put(const char *name, const char *text)
{
    struct api_error e;
    CU_ASSERT_EQUAL(bkfile_write(dir, name, text, strlen(text), &e), 0);
}

static void test_names(void)
{
    char stem[BKFILE_STEM_LEN];
    bkfile_stem(1796362408, stem); /* 2026-12-04T05:33:28Z */
    CU_ASSERT_STRING_EQUAL(stem, "tollgate-20261204T053328Z");
    CU_ASSERT_TRUE(bkfile_is_name("tollgate-20261204T053328Z.dump", ".dump"));
    CU_ASSERT_TRUE(bkfile_is_name("tollgate-20261204T053328Z.json", ".json"));
    CU_ASSERT_FALSE(bkfile_is_name("tollgate-20261204T053328Z.json", ".dump"));
    CU_ASSERT_FALSE(bkfile_is_name("tollgate-20261204T053328Z.dump.tmp", ".dump"));
    CU_ASSERT_FALSE(bkfile_is_name("tollgate-2026120xT053328Z.dump", ".dump"));
    CU_ASSERT_FALSE(bkfile_is_name("tollgate-20261204T053328.dump", ".dump"));
    CU_ASSERT_FALSE(bkfile_is_name("other-20261204T053328Z.dump", ".dump"));
    CU_ASSERT_FALSE(bkfile_is_name("", ".dump"));
}

static void test_write_atomic_0600(void)
{
    make_dir();
    mode_t old = umask(0);
    put("tollgate-20261204T053328Z.json", "{\"a\":1}");
    umask(old);
    char path[600];
    snprintf(path, sizeof path, "%s/tollgate-20261204T053328Z.json", dir);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    char *text = unit_slurp(path, NULL);
    CU_ASSERT_STRING_EQUAL(text, "{\"a\":1}");
    free(text);
    CU_ASSERT_FALSE(exists(".tollgate-20261204T053328Z.json.tmp"));
    /* A second backup of the same name is refused; the first stays. */
    struct api_error e;
    CU_ASSERT_EQUAL(bkfile_write(dir, "tollgate-20261204T053328Z.json", "x", 1, &e), -1);
    CU_ASSERT_EQUAL(e.code, ERR_CONFLICT);
    text = unit_slurp(path, NULL);
    CU_ASSERT_STRING_EQUAL(text, "{\"a\":1}");
    free(text);
    CU_ASSERT_FALSE(exists(".tollgate-20261204T053328Z.json.tmp"));
    remove_dir();
}

static void test_sha256(void)
{
    make_dir();
    put("tollgate-20261204T053328Z.dump", "abc");
    char path[600], hex[65];
    snprintf(path, sizeof path, "%s/tollgate-20261204T053328Z.dump", dir);
    struct api_error e;
    CU_ASSERT_EQUAL(bkfile_sha256(path, hex, &e), 3);
    CU_ASSERT_STRING_EQUAL(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    snprintf(path, sizeof path, "%s/missing", dir);
    CU_ASSERT_EQUAL(bkfile_sha256(path, hex, &e), -1);
    remove_dir();
}

/* Four backups (one without its manifest), a left-over temporary file and
 * a file of someone else's: keeping 2 removes the two oldest and the
 * temporary file, nothing else. */
static void test_prune(void)
{
    make_dir();
    put("tollgate-20261201T000000Z.dump", "1");
    put("tollgate-20261201T000000Z.json", "1");
    put("tollgate-20261202T000000Z.dump", "2");
    put("tollgate-20261203T000000Z.dump", "3");
    put("tollgate-20261203T000000Z.json", "3");
    put("tollgate-20261204T000000Z.dump", "4");
    put("tollgate-20261204T000000Z.json", "4");
    put("notes.txt", "keep me");
    char tmp[BKFILE_PATH_MAX];
    struct api_error e;
    int fd = bkfile_create_temp(dir, "tollgate-20261130T000000Z.dump", tmp, &e);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    close(fd);
    int removed = -1;
    CU_ASSERT_EQUAL(bkfile_prune(dir, 2, &removed, &e), 0);
    CU_ASSERT_EQUAL(removed, 2);
    CU_ASSERT_FALSE(exists("tollgate-20261201T000000Z.dump"));
    CU_ASSERT_FALSE(exists("tollgate-20261201T000000Z.json"));
    CU_ASSERT_FALSE(exists("tollgate-20261202T000000Z.dump"));
    CU_ASSERT_TRUE(exists("tollgate-20261203T000000Z.dump"));
    CU_ASSERT_TRUE(exists("tollgate-20261203T000000Z.json"));
    CU_ASSERT_TRUE(exists("tollgate-20261204T000000Z.dump"));
    CU_ASSERT_TRUE(exists("notes.txt"));
    CU_ASSERT_FALSE(exists(".tollgate-20261130T000000Z.dump.tmp"));
    CU_ASSERT_EQUAL(bkfile_prune(dir, 5, &removed, &e), 0);
    CU_ASSERT_EQUAL(removed, 0);
    remove_dir();
    CU_ASSERT_EQUAL(bkfile_prune(dir, 1, &removed, &e), -1);
}

static void test_lock(void)
{
    make_dir();
    struct api_error e;
    int a = bkfile_lock(dir, &e);
    CU_ASSERT_TRUE_FATAL(a >= 0);
    CU_ASSERT_EQUAL(bkfile_lock(dir, &e), -1);
    CU_ASSERT_EQUAL(e.code, ERR_CONFLICT);
    close(a);
    int b = bkfile_lock(dir, &e);
    CU_ASSERT_TRUE(b >= 0);
    if (b >= 0)
        close(b);
    remove_dir();
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_names),  UNIT_TEST(test_write_atomic_0600), UNIT_TEST(test_sha256),
        UNIT_TEST(test_prune),  UNIT_TEST(test_lock),
    };
    return unit_run("bkfile", tests, TG_ARRAY_LEN(tests));
}
