/* Unit tests of util: allocation, bounded copies, number and time parsing,
 * UTF-8 validation, randomness, hex and constant-time comparison. */
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include "unit.h"
#include "util.h"

/* ---- errors and allocation ---- */

static void test_err_set_formats(void)
{
    struct api_error err = {0};
    api_error_set(&err, ERR_INTERNAL, NULL, "%s:%d: %s", "file", 7, "broken");
    CU_ASSERT_STRING_EQUAL(err.message, "file:7: broken");
    api_error_set(NULL, ERR_INTERNAL, NULL, "ignored %d", 1); /* a NULL error is allowed */
}

static void test_err_set_truncates(void)
{
    struct api_error err;
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    api_error_set(&err, ERR_INTERNAL, NULL, "%s", big);
    CU_ASSERT_EQUAL(strlen(err.message), sizeof err.message - 1);
}

static void test_xalloc(void)
{
    char *p = xmalloc(0);
    CU_ASSERT_PTR_NOT_NULL(p);
    free(p);

    unsigned char *z = xcalloc(16, 4);
    int zero = 1;
    for (int i = 0; i < 64; i++)
        zero &= z[i] == 0;
    CU_ASSERT(zero);
    z = xrealloc(z, 4096);
    CU_ASSERT_EQUAL(z[63], 0);
    free(z);

    char *d = xstrdup("hello");
    CU_ASSERT_STRING_EQUAL(d, "hello");
    free(d);
    d = xstrndup("hello", 3);
    CU_ASSERT_STRING_EQUAL(d, "hel");
    free(d);
    d = xstrndup("", 0);
    CU_ASSERT_STRING_EQUAL(d, "");
    free(d);
}

static void test_strlcpy(void)
{
    char buf[6];
    CU_ASSERT_EQUAL(strlcpy_tg(buf, "abc", sizeof buf), 3);
    CU_ASSERT_STRING_EQUAL(buf, "abc");
    CU_ASSERT_EQUAL(strlcpy_tg(buf, "abcde", sizeof buf), 5); /* exactly fits */
    CU_ASSERT_STRING_EQUAL(buf, "abcde");
    CU_ASSERT_EQUAL(strlcpy_tg(buf, "abcdef", sizeof buf), 6); /* truncated: >= size */
    CU_ASSERT_STRING_EQUAL(buf, "abcde");
    CU_ASSERT_EQUAL(strlcpy_tg(buf, "xyz", 1), 3);
    CU_ASSERT_STRING_EQUAL(buf, "");
    buf[0] = 'Q';
    CU_ASSERT_EQUAL(strlcpy_tg(buf, "xyz", 0), 3); /* size 0 writes nothing */
    CU_ASSERT_EQUAL(buf[0], 'Q');
}

/* ---- parse_int64 ---- */

static void test_parse_int64_accepts(void)
{
    int64_t v = -7;
    CU_ASSERT_EQUAL(parse_int64("0", 0, 10, &v), 0);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_EQUAL(parse_int64("42", 0, 100, &v), 0);
    CU_ASSERT_EQUAL(v, 42);
    CU_ASSERT_EQUAL(parse_int64("-42", -100, 100, &v), 0);
    CU_ASSERT_EQUAL(v, -42);
    CU_ASSERT_EQUAL(parse_int64("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
    CU_ASSERT_EQUAL(v, INT64_MAX);
    CU_ASSERT_EQUAL(parse_int64("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
    CU_ASSERT_EQUAL(v, INT64_MIN);
}

static void test_parse_int64_bounds(void)
{
    int64_t v = 0;
    CU_ASSERT_EQUAL(parse_int64("0", 1, 256, &v), -1);   /* min - 1 */
    CU_ASSERT_EQUAL(parse_int64("1", 1, 256, &v), 0);    /* min */
    CU_ASSERT_EQUAL(v, 1);
    CU_ASSERT_EQUAL(parse_int64("256", 1, 256, &v), 0);  /* max */
    CU_ASSERT_EQUAL(v, 256);
    CU_ASSERT_EQUAL(parse_int64("257", 1, 256, &v), -1); /* max + 1 */
    CU_ASSERT_EQUAL(v, 256);                             /* untouched on failure */
    CU_ASSERT_EQUAL(parse_int64("-1", 0, 10, &v), -1);
}

static void test_parse_int64_rejects(void)
{
    static const char *const bad[] = {
        "", "+1", " 1", "1 ", "1x", "x", "-", "--1", "- 1", "0x10", "1.0", "1e3", "\t1",
        "9223372036854775808", "-9223372036854775809", "99999999999999999999",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        int64_t v = 123;
        int rc = parse_int64(bad[i], INT64_MIN, INT64_MAX, &v);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_EQUAL(v, 123);
        if (rc != -1)
            fprintf(stderr, "parse_int64 accepted \"%s\"\n", bad[i]);
    }
    int64_t v = 0;
    CU_ASSERT_EQUAL(parse_int64(NULL, 0, 10, &v), -1);
}

/* ---- clocks ---- */

static void test_clocks(void)
{
    int64_t wall = now_ms();
    int64_t t = (int64_t)time(NULL) * 1000;
    CU_ASSERT(wall > INT64_C(1577836800000)); /* after 2020-01-01 */
    CU_ASSERT(wall - t > -2000 && wall - t < 2000);
    int64_t a = mono_ns(), b = mono_ns();
    CU_ASSERT(a > 0);
    CU_ASSERT(b >= a);
    int64_t ms = mono_ms(), ns = mono_ns();
    CU_ASSERT(ms <= ns / 1000000);
    CU_ASSERT(ns / 1000000 - ms < 1000);
}

/* The quota month, at both edges of a month and across a leap day. */
static void test_utc_month(void)
{
    CU_ASSERT_EQUAL(utc_month(0), 197001);
    CU_ASSERT_EQUAL(utc_month(INT64_C(1798761599999)), 202612); /* 2026-12-31T23:59:59.999Z */
    CU_ASSERT_EQUAL(utc_month(INT64_C(1798761600000)), 202701); /* 2027-01-01T00:00:00.000Z */
    CU_ASSERT_EQUAL(utc_month(INT64_C(1709164800000)), 202402); /* 2024-02-29T00:00:00Z */
    CU_ASSERT_EQUAL(utc_month(INT64_C(1709251200000)), 202403); /* 2024-03-01T00:00:00Z */
    CU_ASSERT_EQUAL(utc_month(-1), 196912);
}

/* ---- time formatting and parsing ---- */

static void test_format_time(void)
{
    char buf[TG_TIME_LEN];
    format_time_ms(0, buf);
    CU_ASSERT_STRING_EQUAL(buf, "1970-01-01T00:00:00.000Z");
    format_time_ms(INT64_C(1700000000123), buf);
    CU_ASSERT_STRING_EQUAL(buf, "2023-11-14T22:13:20.123Z");
    format_time_ms(INT64_C(1709210096789), buf);
    CU_ASSERT_STRING_EQUAL(buf, "2024-02-29T12:34:56.789Z");
    format_time_ms(INT64_C(253402300799999), buf);
    CU_ASSERT_STRING_EQUAL(buf, "9999-12-31T23:59:59.999Z");
    format_time_ms(-1, buf);
    CU_ASSERT_STRING_EQUAL(buf, "1969-12-31T23:59:59.999Z");
    format_time_ms(5, buf);
    CU_ASSERT_STRING_EQUAL(buf, "1970-01-01T00:00:00.005Z");
}

static void test_parse_time_zones(void)
{
    int64_t v = 0;
    CU_ASSERT_EQUAL(parse_time_ms("1970-01-01T00:00:00Z", &v), 0);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_EQUAL(parse_time_ms("2023-11-14T22:13:20.123Z", &v), 0);
    CU_ASSERT_EQUAL(v, INT64_C(1700000000123));
    CU_ASSERT_EQUAL(parse_time_ms("2023-11-14t22:13:20.123z", &v), 0);
    CU_ASSERT_EQUAL(v, INT64_C(1700000000123));
    CU_ASSERT_EQUAL(parse_time_ms("2023-11-15T00:13:20.123+02:00", &v), 0);
    CU_ASSERT_EQUAL(v, INT64_C(1700000000123));
    CU_ASSERT_EQUAL(parse_time_ms("2023-11-14T16:43:20.123-05:30", &v), 0);
    CU_ASSERT_EQUAL(v, INT64_C(1700000000123));
    CU_ASSERT_EQUAL(parse_time_ms("2023-11-14T22:13:20.123+00:00", &v), 0);
    CU_ASSERT_EQUAL(v, INT64_C(1700000000123));
    CU_ASSERT_EQUAL(parse_time_ms("2023-11-14T22:13:20.123-00:00", &v), 0);
    CU_ASSERT_EQUAL(v, INT64_C(1700000000123));
    CU_ASSERT_EQUAL(parse_time_ms("9999-12-31T23:59:59.999Z", &v), 0);
    CU_ASSERT_EQUAL(v, INT64_C(253402300799999));
}

static void test_parse_time_fractions(void)
{
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {
        {"2000-01-01T00:00:00Z", 946684800000},
        {"2000-01-01T00:00:00.5Z", 946684800500},
        {"2000-01-01T00:00:00.05Z", 946684800050},
        {"2000-01-01T00:00:00.123Z", 946684800123},
        {"2000-01-01T00:00:00.1239Z", 946684800123}, /* truncated, not rounded */
        {"2000-01-01T00:00:00.999999999Z", 946684800999},
        {"2000-01-01T00:00:00.000000001+00:00", 946684800000},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(ok); i++) {
        int64_t v = -1;
        CU_ASSERT_EQUAL(parse_time_ms(ok[i].s, &v), 0);
        CU_ASSERT_EQUAL(v, ok[i].ms);
    }
    int64_t v;
    CU_ASSERT_EQUAL(parse_time_ms("2000-01-01T00:00:00.Z", &v), -1);           /* 0 digits */
    CU_ASSERT_EQUAL(parse_time_ms("2000-01-01T00:00:00.1234567890Z", &v), -1); /* 10 digits */
}

static void test_parse_time_calendar(void)
{
    int64_t v;
    CU_ASSERT_EQUAL(parse_time_ms("2024-02-29T00:00:00Z", &v), 0); /* leap year */
    CU_ASSERT_EQUAL(parse_time_ms("2000-02-29T00:00:00Z", &v), 0); /* divisible by 400 */
    CU_ASSERT_EQUAL(v, INT64_C(951782400000));
    CU_ASSERT_EQUAL(parse_time_ms("2023-02-29T00:00:00Z", &v), -1);
    CU_ASSERT_EQUAL(parse_time_ms("2100-02-29T00:00:00Z", &v), -1); /* divisible by 100 */
    CU_ASSERT_EQUAL(parse_time_ms("2024-02-30T00:00:00Z", &v), -1);
    CU_ASSERT_EQUAL(parse_time_ms("2024-04-31T00:00:00Z", &v), -1);
    CU_ASSERT_EQUAL(parse_time_ms("2024-04-30T00:00:00Z", &v), 0);
    CU_ASSERT_EQUAL(parse_time_ms("2024-12-31T23:59:59Z", &v), 0);
    CU_ASSERT_EQUAL(parse_time_ms("2024-13-01T00:00:00Z", &v), -1);
    CU_ASSERT_EQUAL(parse_time_ms("2024-00-01T00:00:00Z", &v), -1);
    CU_ASSERT_EQUAL(parse_time_ms("2024-01-00T00:00:00Z", &v), -1);
    CU_ASSERT_EQUAL(parse_time_ms("2024-01-32T00:00:00Z", &v), -1);
    CU_ASSERT_EQUAL(parse_time_ms("2024-01-01T24:00:00Z", &v), -1);
    CU_ASSERT_EQUAL(parse_time_ms("2024-01-01T23:60:00Z", &v), -1);
    CU_ASSERT_EQUAL(parse_time_ms("2024-01-01T23:59:60Z", &v), -1);
}

static void test_parse_time_malformed(void)
{
    static const char *const bad[] = {
        "",
        "2024-01-01",
        "2024-01-01T00:00:00",        /* missing zone */
        "2024-01-01T00:00:00.123",    /* missing zone after a fraction */
        "2024-01-01 00:00:00Z",
        "2024/01/01T00:00:00Z",
        "24-01-01T00:00:00Z",
        "2024-1-01T00:00:00Z",
        "2024-01-01T0:00:00Z",
        "2024-01-01T00:00:00ZZ",      /* trailing bytes */
        "2024-01-01T00:00:00Z ",
        "2024-01-01T00:00:00+0100",   /* offset without colon */
        "2024-01-01T00:00:00+1:00",
        "2024-01-01T00:00:00+01:00x",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01T00:00:00+01:60",
        "2024-01-01T00:00:00UTC",
        "2024-0a-01T00:00:00Z",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        int64_t v = 77;
        int rc = parse_time_ms(bad[i], &v);
        CU_ASSERT_EQUAL(rc, -1);
        if (rc != -1)
            fprintf(stderr, "parse_time_ms accepted \"%s\"\n", bad[i]);
    }
}

static void test_time_round_trip(void)
{
    static const int64_t values[] = {
        0, 1, 999, 1000, INT64_C(951782400000), INT64_C(1700000000123),
        INT64_C(1709210096789), INT64_C(4102444799999), INT64_C(253402300799999),
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(values); i++) {
        char buf[TG_TIME_LEN];
        int64_t back = -1;
        format_time_ms(values[i], buf);
        CU_ASSERT_EQUAL(parse_time_ms(buf, &back), 0);
        CU_ASSERT_EQUAL(back, values[i]);
    }
    /* And from text: a normalised string comes back identical. */
    int64_t v = 0;
    char buf[TG_TIME_LEN];
    CU_ASSERT_EQUAL(parse_time_ms("2026-11-22T11:30:00.250+01:30", &v), 0);
    format_time_ms(v, buf);
    CU_ASSERT_STRING_EQUAL(buf, "2026-11-22T10:00:00.250Z");
}

/* ---- UTF-8 ---- */

#define VALID(lit) utf8_valid(lit, sizeof(lit) - 1)

static void test_utf8_valid_accepts(void)
{
    CU_ASSERT(utf8_valid("", 0));
    CU_ASSERT(VALID("plain ascii"));
    CU_ASSERT(VALID("\xC2\x80"));             /* U+0080, smallest 2-byte */
    CU_ASSERT(VALID("caf\xC3\xA9"));          /* é */
    CU_ASSERT(VALID("\xDF\xBF"));             /* U+07FF */
    CU_ASSERT(VALID("\xE0\xA0\x80"));         /* U+0800, smallest 3-byte */
    CU_ASSERT(VALID("\xE2\x82\xAC"));         /* € */
    CU_ASSERT(VALID("\xED\x9F\xBF"));         /* U+D7FF, just below surrogates */
    CU_ASSERT(VALID("\xEE\x80\x80"));         /* U+E000, just above */
    CU_ASSERT(VALID("\xEF\xBF\xBF"));         /* U+FFFF */
    CU_ASSERT(VALID("\xF0\x90\x80\x80"));     /* U+10000, smallest 4-byte */
    CU_ASSERT(VALID("\xF0\x9F\x98\x80"));     /* emoji */
    CU_ASSERT(VALID("\xF4\x8F\xBF\xBF"));     /* U+10FFFF */
    CU_ASSERT(utf8_valid("a\0b", 3));         /* NUL is a valid code point */
}

static void test_utf8_valid_rejects(void)
{
    CU_ASSERT_FALSE(VALID("\xC0\x80"));          /* overlong NUL */
    CU_ASSERT_FALSE(VALID("\xC1\xBF"));          /* overlong U+007F */
    CU_ASSERT_FALSE(VALID("\xE0\x80\x80"));      /* overlong 3-byte */
    CU_ASSERT_FALSE(VALID("\xE0\x9F\xBF"));      /* overlong U+07FF */
    CU_ASSERT_FALSE(VALID("\xF0\x80\x80\x80"));  /* overlong 4-byte */
    CU_ASSERT_FALSE(VALID("\xF0\x8F\xBF\xBF"));  /* overlong U+FFFF */
    CU_ASSERT_FALSE(VALID("\xED\xA0\x80"));      /* U+D800 surrogate */
    CU_ASSERT_FALSE(VALID("\xED\xBF\xBF"));      /* U+DFFF surrogate */
    CU_ASSERT_FALSE(VALID("\xF4\x90\x80\x80"));  /* U+110000 */
    CU_ASSERT_FALSE(VALID("\xF7\xBF\xBF\xBF"));
    CU_ASSERT_FALSE(VALID("\xF8\x88\x80\x80\x80")); /* 5-byte form */
    CU_ASSERT_FALSE(VALID("\xFE"));
    CU_ASSERT_FALSE(VALID("\xFF"));
    CU_ASSERT_FALSE(VALID("\x80"));              /* lone continuation */
    CU_ASSERT_FALSE(VALID("a\xBF" "b"));
    CU_ASSERT_FALSE(VALID("\xC3" "a"));          /* continuation missing */
    CU_ASSERT_FALSE(VALID("\xE2\x82" "a"));
}

static void test_utf8_valid_truncated(void)
{
    CU_ASSERT_FALSE(VALID("\xC3"));
    CU_ASSERT_FALSE(VALID("\xE2\x82"));
    CU_ASSERT_FALSE(VALID("\xF0\x9F\x98"));
    CU_ASSERT_FALSE(VALID("ok\xF0"));
    /* The length bounds the check, not the terminator. */
    CU_ASSERT_FALSE(utf8_valid("\xC3\xA9", 1));
    CU_ASSERT_FALSE(utf8_valid("\xE2\x82\xAC", 2));
    CU_ASSERT_FALSE(utf8_valid("\xF0\x9F\x98\x80", 3));
    CU_ASSERT(utf8_valid("ab\xC3\xA9", 2));
}

static void test_utf8_len(void)
{
    CU_ASSERT_EQUAL(utf8_len("", 0), 0);
    CU_ASSERT_EQUAL(utf8_len("abc", 3), 3);
    static const char mixed[] = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"; /* a é € 😀 */
    CU_ASSERT_EQUAL(utf8_len(mixed, sizeof mixed - 1), 4);
    CU_ASSERT_EQUAL(utf8_len(mixed, 3), 2);
}

static void test_control_chars(void)
{
    CU_ASSERT_FALSE(has_control_chars("", 0));
    CU_ASSERT_FALSE(has_control_chars("Hello, world ~", 14));
    CU_ASSERT_FALSE(has_control_chars("caf\xC3\xA9", 5));
    CU_ASSERT(has_control_chars("a\tb", 3));
    CU_ASSERT(has_control_chars("a\nb", 3));
    CU_ASSERT(has_control_chars("\x1F", 1));
    CU_ASSERT(has_control_chars("\x7F", 1));
    CU_ASSERT(has_control_chars("a\0b", 3));
    CU_ASSERT_FALSE(has_control_chars(" ", 1)); /* 0x20 is printable */
    CU_ASSERT_FALSE(has_control_chars("a\nb", 1)); /* length bounds the scan */
}

/* ---- randomness, base62, hex, comparison ---- */

static void test_random_bytes(void)
{
    unsigned char a[64] = {0}, b[64] = {0}, zero[64] = {0};
    random_bytes(a, sizeof a);
    random_bytes(b, sizeof b);
    CU_ASSERT(memcmp(a, b, sizeof a) != 0);
    CU_ASSERT(memcmp(a, zero, sizeof a) != 0);
    random_bytes(a, 0);
}

static void test_random_base62(void)
{
    CU_ASSERT_EQUAL(strlen(BASE62), 62);
    char a[23], b[23];
    random_base62(a, 22);
    random_base62(b, 22);
    CU_ASSERT_EQUAL(strlen(a), 22);
    CU_ASSERT_EQUAL(strspn(a, BASE62), 22);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    char empty[1] = {'x'};
    random_base62(empty, 0);
    CU_ASSERT_EQUAL(empty[0], '\0');

    /* Every symbol turns up in a long draw (missing one has odds ~e^-1000). */
    enum { N = 62 * 1000 };
    char *big = xmalloc(N + 1);
    random_base62(big, N);
    CU_ASSERT_EQUAL(strlen(big), N);
    size_t seen[256] = {0};
    for (size_t i = 0; i < N; i++)
        seen[(unsigned char)big[i]]++;
    size_t kinds = 0, outside = 0;
    for (int c = 0; c < 256; c++) {
        if (!seen[c])
            continue;
        if (strchr(BASE62, c))
            kinds++;
        else
            outside++;
    }
    CU_ASSERT_EQUAL(kinds, 62);
    CU_ASSERT_EQUAL(outside, 0);
    free(big);
}

static void test_hex_encode(void)
{
    static const unsigned char in[] = {0x00, 0x01, 0x7f, 0xab, 0xff};
    char out[2 * sizeof in + 1];
    hex_encode(in, sizeof in, out);
    CU_ASSERT_STRING_EQUAL(out, "00017fabff");
    hex_encode(in, 0, out);
    CU_ASSERT_STRING_EQUAL(out, "");
}

static void test_ct_equal(void)
{
    CU_ASSERT(ct_equal("abcdef", "abcdef", 6));
    CU_ASSERT_FALSE(ct_equal("abcdef", "Abcdef", 6));
    CU_ASSERT_FALSE(ct_equal("abcdef", "abcdeF", 6));
    CU_ASSERT(ct_equal("abcdef", "abcdeF", 5));
    CU_ASSERT(ct_equal("x", "y", 0));
}

/* In a child, so that this test program itself keeps its settings. */
static void test_no_core_dumps(void)
{
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        struct rlimit rl;
        int ok = no_core_dumps() == 0 && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0 &&
                 getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur == 0 && rl.rlim_max == 0;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_err_set_formats),
        UNIT_TEST(test_err_set_truncates),
        UNIT_TEST(test_xalloc),
        UNIT_TEST(test_strlcpy),
        UNIT_TEST(test_parse_int64_accepts),
        UNIT_TEST(test_parse_int64_bounds),
        UNIT_TEST(test_parse_int64_rejects),
        UNIT_TEST(test_clocks),
        UNIT_TEST(test_utc_month),
        UNIT_TEST(test_format_time),
        UNIT_TEST(test_parse_time_zones),
        UNIT_TEST(test_parse_time_fractions),
        UNIT_TEST(test_parse_time_calendar),
        UNIT_TEST(test_parse_time_malformed),
        UNIT_TEST(test_time_round_trip),
        UNIT_TEST(test_utf8_valid_accepts),
        UNIT_TEST(test_utf8_valid_rejects),
        UNIT_TEST(test_utf8_valid_truncated),
        UNIT_TEST(test_utf8_len),
        UNIT_TEST(test_control_chars),
        UNIT_TEST(test_random_bytes),
        UNIT_TEST(test_random_base62),
        UNIT_TEST(test_hex_encode),
        UNIT_TEST(test_ct_equal),
        UNIT_TEST(test_no_core_dumps),
    };
    return unit_run("util", tests, TG_ARRAY_LEN(tests));
}
