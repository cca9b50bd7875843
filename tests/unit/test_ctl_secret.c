/* Unit tests of ctl_secret: reading the admin token from a file. */
#include <sys/stat.h>

#include "ctl_secret.h"
#include "unit.h"

static int write_file(char *path, size_t size, const char *text, mode_t mode)
{
    if (unit_tmpfile(path, size) != 0)
        return -1;
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    return chmod(path, mode);
}

static void test_first_line_trimmed(void)
{
    char path[128], out[64], msg[256];
    CU_ASSERT_FATAL(write_file(path, sizeof path, "  tgadm_secret \r\nsecond line\n", 0600) == 0);
    CU_ASSERT_EQUAL(ctl_secret_read(path, out, sizeof out, msg, sizeof msg), 0);
    CU_ASSERT_STRING_EQUAL(out, "tgadm_secret");
    unlink(path);
    /* No line end at all. */
    CU_ASSERT_FATAL(write_file(path, sizeof path, "abc", 0400) == 0);
    CU_ASSERT_EQUAL(ctl_secret_read(path, out, sizeof out, msg, sizeof msg), 0);
    CU_ASSERT_STRING_EQUAL(out, "abc");
    unlink(path);
}

static void test_refusals(void)
{
    char path[128], out[16], msg[256];
    CU_ASSERT_EQUAL(ctl_secret_read("/nonexistent/tok", out, sizeof out, msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "/nonexistent/tok"));
    /* Readable by everyone: refused before it is read. */
    CU_ASSERT_FATAL(write_file(path, sizeof path, "abc\n", 0644) == 0);
    CU_ASSERT_EQUAL(ctl_secret_read(path, out, sizeof out, msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "other users"));
    CU_ASSERT_STRING_EQUAL(out, "");
    unlink(path);
    CU_ASSERT_FATAL(write_file(path, sizeof path, "\nabc\n", 0600) == 0);
    CU_ASSERT_EQUAL(ctl_secret_read(path, out, sizeof out, msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "empty"));
    unlink(path);
    CU_ASSERT_FATAL(write_file(path, sizeof path, "", 0600) == 0);
    CU_ASSERT_EQUAL(ctl_secret_read(path, out, sizeof out, msg, sizeof msg), -1);
    unlink(path);
    CU_ASSERT_FATAL(write_file(path, sizeof path, "two words\n", 0600) == 0);
    CU_ASSERT_EQUAL(ctl_secret_read(path, out, sizeof out, msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "white space"));
    CU_ASSERT_STRING_EQUAL(out, ""); /* wiped */
    unlink(path);
    /* Longer than the buffer: refused, never cut. */
    CU_ASSERT_FATAL(write_file(path, sizeof path, "0123456789abcdefghij\n", 0600) == 0);
    CU_ASSERT_EQUAL(ctl_secret_read(path, out, sizeof out, msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "too long"));
    unlink(path);
}

static void test_from_stdin(void)
{
    char path[128], out[64], msg[256];
    CU_ASSERT_FATAL(write_file(path, sizeof path, "from-stdin\n", 0644) == 0);
    int saved = dup(0);
    FILE *f = fopen(path, "r");
    CU_ASSERT_FATAL(f != NULL);
    dup2(fileno(f), 0);
    fclose(f);
    clearerr(stdin);
    /* The mode rule is for files named on the command line, not a pipe. */
    CU_ASSERT_EQUAL(ctl_secret_read("-", out, sizeof out, msg, sizeof msg), 0);
    CU_ASSERT_STRING_EQUAL(out, "from-stdin");
    dup2(saved, 0);
    close(saved);
    unlink(path);
}

static void test_ok(void)
{
    CU_ASSERT(ctl_secret_ok("tgadm_x"));
    CU_ASSERT_FALSE(ctl_secret_ok(""));
    CU_ASSERT_FALSE(ctl_secret_ok("a b"));
    CU_ASSERT_FALSE(ctl_secret_ok("a\tb"));
    CU_ASSERT_FALSE(ctl_secret_ok("a\x7f"));
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_first_line_trimmed),
        UNIT_TEST(test_refusals),
        UNIT_TEST(test_from_stdin),
        UNIT_TEST(test_ok),
    };
    return unit_run("ctl_secret", tests, sizeof tests / sizeof tests[0]);
}
