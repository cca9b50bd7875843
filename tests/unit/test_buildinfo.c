/* Unit tests of buildinfo: the --version line. */
#include "buildinfo.h"
#include "unit.h"
#include "util.h"

static void test_version_line(void)
{
    char buf[256] = "";
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    buildinfo_print(f, "tollgate-x");
    rewind(f);
    CU_ASSERT_PTR_NOT_NULL(fgets(buf, sizeof buf, f));
    fclose(f);
    char want[256];
    snprintf(want, sizeof want, "tollgate-x %s (commit %s)\n", PACKAGE_VERSION, buildinfo_commit);
    CU_ASSERT_STRING_EQUAL(buf, want);
    /* A checkout's abbreviated commit, or "unknown" from a tarball. */
    CU_ASSERT_TRUE(strlen(buildinfo_commit) > 0);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_version_line),
    };
    return unit_run("buildinfo", tests, TG_ARRAY_LEN(tests));
}
