/* Unit tests of logprune: which names are rotated copies, and that a run
 * removes exactly the old rotated copies of its directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "logprune.h"
#include "unit.h"

static void test_is_rotated(void)
{
    static const char *const yes[] = {
        "billingd.log.1", "tollgate-fcgi.log.2.gz", "billingd.log-20261201",
        "a.log.x", "x.log.log.1", "billingd.log-20261201.gz",
    };
    static const char *const no[] = {
        "billingd.log", "tollgate-fcgi.log", ".log.1", "billingd.log.", "billingd.log-",
        "billingd.1", "notes.txt", "billingd.logs.1", "log.1", "", "billingd.log_1",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(yes); i++)
        CU_ASSERT_TRUE(logprune_is_rotated(yes[i]));
    for (size_t i = 0; i < TG_ARRAY_LEN(no); i++)
        CU_ASSERT_FALSE(logprune_is_rotated(no[i]));
}

/* Creates dir/name, last modified age_days ago. */
static void make_file(const char *dir, const char *name, int age_days)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("x\n", f);
    fclose(f);
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= (time_t)age_days * 86400;
    tv[1] = tv[0];
    CU_ASSERT_EQUAL(utimes(path, tv), 0);
}

static bool exists(const char *dir, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return lstat(path, &st) == 0;
}

static void test_run(void)
{
    const char *tmp = getenv("TMPDIR");
    char dir[256], log[300], path[512];
    snprintf(dir, sizeof dir, "%s/tollgate-logprune-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(log, sizeof log, "%s/billingd.log", dir);
    make_file(dir, "billingd.log", 90);          /* live: kept however old */
    make_file(dir, "billingd.log.1", 31);        /* removed */
    make_file(dir, "tollgate-fcgi.log.3.gz", 60); /* removed */
    make_file(dir, "billingd.log-20261101", 45); /* removed */
    make_file(dir, "billingd.log.2", 29);        /* too recent */
    make_file(dir, "notes.txt", 90);             /* not a rotated log */
    snprintf(path, sizeof path, "%s/old.log.1", dir);
    CU_ASSERT_EQUAL(mkdir(path, 0700), 0);       /* not a regular file */
    snprintf(path, sizeof path, "%s/billingd.log", dir);
    char link[512];
    snprintf(link, sizeof link, "%s/link.log.1", dir);
    CU_ASSERT_EQUAL(symlink(path, link), 0);     /* a symbolic link: kept */

    struct api_error e = {0};
    /* Turned off, or no log file: nothing happens. */
    CU_ASSERT_EQUAL(logprune_run(log, 0, time(NULL), &e), 0);
    CU_ASSERT_EQUAL(logprune_run("", 30, time(NULL), &e), 0);
    CU_ASSERT_TRUE(exists(dir, "billingd.log.1"));

    CU_ASSERT_EQUAL(logprune_run(log, 30, time(NULL), &e), 3);
    CU_ASSERT_TRUE(exists(dir, "billingd.log"));
    CU_ASSERT_FALSE(exists(dir, "billingd.log.1"));
    CU_ASSERT_FALSE(exists(dir, "tollgate-fcgi.log.3.gz"));
    CU_ASSERT_FALSE(exists(dir, "billingd.log-20261101"));
    CU_ASSERT_TRUE(exists(dir, "billingd.log.2"));
    CU_ASSERT_TRUE(exists(dir, "notes.txt"));
    CU_ASSERT_TRUE(exists(dir, "old.log.1"));
    CU_ASSERT_TRUE(exists(dir, "link.log.1"));
    /* A second run finds nothing more; a later clock takes the rest. */
    CU_ASSERT_EQUAL(logprune_run(log, 30, time(NULL), &e), 0);
    CU_ASSERT_EQUAL(logprune_run(log, 30, time(NULL) + 2 * 86400, &e), 1);
    CU_ASSERT_FALSE(exists(dir, "billingd.log.2"));

    /* A directory that cannot be read is an error that names it. */
    CU_ASSERT_EQUAL(logprune_run("/nonexistent-tollgate-dir/billingd.log", 30, time(NULL), &e),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "/nonexistent-tollgate-dir"));

    static const char *const left[] = {"billingd.log", "notes.txt", "link.log.1"};
    for (size_t i = 0; i < TG_ARRAY_LEN(left); i++) {
        snprintf(path, sizeof path, "%s/%s", dir, left[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/old.log.1", dir);
    rmdir(path);
    CU_ASSERT_EQUAL(rmdir(dir), 0);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_is_rotated),
        UNIT_TEST(test_run),
    };
    return unit_run("logprune", tests, TG_ARRAY_LEN(tests));
}
