/* Unit tests of pgtool: a conninfo split into what goes on the command
 * line and the password, and children run without a shell with the
 * password in their environment only. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgtool.h"
#include "unit.h"

static void test_conninfo_keywords(void)
{
    struct strbuf b = {0};
    char *pw = NULL;
    struct api_error e;
    CU_ASSERT_EQUAL(pgtool_conninfo("host=127.0.0.1 port=5432 dbname=tollgate user=owner"
                                    " password=s3cr3t",
                                    &b, &pw, &e),
                    0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pw);
    CU_ASSERT_STRING_EQUAL(pw, "s3cr3t");
    CU_ASSERT_PTR_NULL(strstr(b.p, "s3cr3t"));
    CU_ASSERT_PTR_NULL(strstr(b.p, "password"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "host='127.0.0.1'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "dbname='tollgate'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "user='owner'"));
    free(pw);
    strbuf_fini(&b);
}

/* A URI gives the same keywords; quotes and backslashes in a value are
 * escaped so that libpq reads the value back unchanged. */
static void test_conninfo_uri_and_quoting(void)
{
    struct strbuf b = {0};
    char *pw = NULL;
    struct api_error e;
    CU_ASSERT_EQUAL(pgtool_conninfo("postgresql://app:pa%20ss@db.example:6543/tg", &b, &pw, &e), 0);
    CU_ASSERT_STRING_EQUAL(pw, "pa ss");
    CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "port='6543'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "user='app'"));
    free(pw);
    CU_ASSERT_EQUAL(pgtool_conninfo("dbname='it\\'s' application_name='a\\\\b'", &b, &pw, &e), 0);
    CU_ASSERT_PTR_NULL(pw);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "dbname='it\\'s'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "application_name='a\\\\b'"));
    CU_ASSERT_EQUAL(pgtool_conninfo("", &b, &pw, &e), 0);
    CU_ASSERT_STRING_EQUAL(b.p, "");
    strbuf_fini(&b);
}

static void test_conninfo_invalid(void)
{
    struct strbuf b = {0};
    char *pw = (char *)"x";
    struct api_error e;
    CU_ASSERT_EQUAL(pgtool_conninfo("host=h password=hunter2 nonsense", &b, &pw, &e), -1);
    CU_ASSERT_PTR_NULL(pw);
    CU_ASSERT_EQUAL(e.code, ERR_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NULL(strstr(e.message, "hunter2"));
    strbuf_fini(&b);
}

/* The child's output: its PGPASSWORD, into a file. */
static char *child_password(const char *password)
{
    char path[256];
    if (unit_tmpfile(path, sizeof path) != 0)
        return NULL;
    int fd = open(path, O_WRONLY | O_TRUNC);
    char *argv[] = {"sh", "-c", "printf '%s' \"${PGPASSWORD-unset}\"", NULL};
    struct api_error e;
    int rc = pgtool_run(argv, password, fd, &e);
    close(fd);
    char *out = rc == 0 ? unit_slurp(path, NULL) : NULL;
    unlink(path);
    return out;
}

static void test_run_password_in_environment(void)
{
    setenv("PGPASSWORD", "from-parent", 1);
    char *out = child_password("p@ss word");
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_STRING_EQUAL(out, "p@ss word");
    free(out);
    CU_ASSERT_STRING_EQUAL(getenv("PGPASSWORD"), "from-parent");
    /* Without one in the conninfo, the child has the environment's. */
    out = child_password(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_STRING_EQUAL(out, "from-parent");
    free(out);
    unsetenv("PGPASSWORD");
    out = child_password(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_STRING_EQUAL(out, "unset");
    free(out);
}

static void test_run_failures(void)
{
    struct api_error e;
    char *fails[] = {"false", NULL};
    CU_ASSERT_EQUAL(pgtool_run(fails, NULL, -1, &e), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "exit status 1"));
    char *missing[] = {"tollgate-no-such-program", NULL};
    CU_ASSERT_EQUAL(pgtool_run(missing, NULL, -1, &e), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "not found"));
    /* No shell: a metacharacter is an argument like any other. */
    char *literal[] = {"test", "a;b", "=", "a;b", NULL};
    CU_ASSERT_EQUAL(pgtool_run(literal, NULL, -1, &e), 0);
    char *killed[] = {"sh", "-c", "kill -9 $$", NULL};
    CU_ASSERT_EQUAL(pgtool_run(killed, NULL, -1, &e), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "signal 9"));
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_conninfo_keywords),
        UNIT_TEST(test_conninfo_uri_and_quoting),
        UNIT_TEST(test_conninfo_invalid),
        UNIT_TEST(test_run_password_in_environment),
        UNIT_TEST(test_run_failures),
    };
    return unit_run("pgtool", tests, TG_ARRAY_LEN(tests));
}
