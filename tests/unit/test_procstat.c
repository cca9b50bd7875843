/* Unit tests of procstat: the stat line's fields (a command name with spaces
 * and parentheses included), the boot time, and this process's figures. */
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "procstat.h"
#include "unit.h"

static void test_parse(void)
{
    /* Fields 1..24 of a real line, the name holding ") (" to mislead. */
    static const char line[] =
        "4242 (tollgate) (x y)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 150 0 0 20 0 3 0 "
        "5000 123456789 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
    struct procstat ps;
    memset(&ps, 0, sizeof ps);
    CU_ASSERT_EQUAL_FATAL(procstat_parse(line, 100, 4096, 1000000, &ps), 0);
    CU_ASSERT_EQUAL(ps.cpu_ms, 4000);              /* (250 + 150) ticks at 100 Hz */
    CU_ASSERT_EQUAL(ps.start_ms, 1000000 + 50000); /* 5000 ticks after boot */
    CU_ASSERT_EQUAL(ps.rss_bytes, 300u * 4096u);
    CU_ASSERT_EQUAL(procstat_parse("no parenthesis here", 100, 4096, 0, &ps), -1);
    CU_ASSERT_EQUAL(procstat_parse("1 (short) S 1 2", 100, 4096, 0, &ps), -1);
    CU_ASSERT_EQUAL(procstat_parse(line, 0, 4096, 0, &ps), -1);
}

static void test_boot(void)
{
    CU_ASSERT_EQUAL(procstat_boot_ms("cpu 1 2 3\nintr 5 6\nbtime 1700000000\nprocesses 9\n"),
                    INT64_C(1700000000000));
    CU_ASSERT_EQUAL(procstat_boot_ms("cpu 1 2 3\n"), -1);
    CU_ASSERT_EQUAL(procstat_boot_ms("\nbtime 0\n"), -1);
}

static void test_self(void)
{
    struct procstat a, b;
    CU_ASSERT_EQUAL_FATAL(procstat_self(&a), 0);
    int64_t now_ms = (int64_t)time(NULL) * 1000;
    CU_ASSERT(a.start_ms > now_ms - 3600 * 1000 && a.start_ms <= now_ms + 1000);
    CU_ASSERT(a.rss_bytes > 0);
    CU_ASSERT(a.open_fds >= 3); /* stdin, stdout, stderr */
    int fd = open("/dev/null", O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL_FATAL(procstat_self(&b), 0);
    CU_ASSERT_EQUAL(b.open_fds, a.open_fds + 1);
    CU_ASSERT(b.cpu_ms >= a.cpu_ms);
    close(fd);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_parse),
        UNIT_TEST(test_boot),
        UNIT_TEST(test_self),
    };
    return unit_run("procstat", tests, TG_ARRAY_LEN(tests));
}
