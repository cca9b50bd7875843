#include <string.h>

#include "csv.h"
#include "util.h"
#include "unit.h"

/* The field csv_text writes for s (as the first of its row). */
static void expect_field(const char *s, const char *want)
{
    struct strbuf b = {0};
    csv_text(&b, s, strlen(s), true);
    CU_ASSERT_STRING_EQUAL(b.p ? b.p : "", want);
    strbuf_fini(&b);
}

static void test_plain_fields_bare(void)
{
    expect_field("acct_42", "acct_42");
    expect_field("", "");
    expect_field("caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac");
    expect_field(" spaced ", " spaced ");
    expect_field("a=b", "a=b"); /* a formula character past the start is text */
    expect_field("x'y", "x'y");
}

static void test_quoting(void)
{
    expect_field("a,b", "\"a,b\"");
    expect_field("say \"hi\"", "\"say \"\"hi\"\"\"");
    expect_field("\"", "\"\"\"\"");
    expect_field("two\nlines", "\"two\nlines\"");
    expect_field("cr\rhere", "\"cr\rhere\"");
    expect_field("\"\",\"", "\"\"\"\"\",\"\"\"");
}

static void test_formula_neutralised(void)
{
    expect_field("=1+2", "\"'=1+2\"");
    expect_field("+33 1", "\"'+33 1\"");
    expect_field("-5", "\"'-5\"");
    expect_field("@SUM(A1)", "\"'@SUM(A1)\"");
    expect_field("\tx", "\"'\tx\"");
    expect_field("\rx", "\"'\rx\"");
    expect_field("=HYPERLINK(\"http://x\",\"a,b\")",
                 "\"'=HYPERLINK(\"\"http://x\"\",\"\"a,b\"\")\"");
    CU_ASSERT_TRUE(csv_formula_start('='));
    CU_ASSERT_TRUE(csv_formula_start('@'));
    CU_ASSERT_FALSE(csv_formula_start('a'));
    CU_ASSERT_FALSE(csv_formula_start('\''));
    CU_ASSERT_FALSE(csv_formula_start('\0'));
}

static void test_row(void)
{
    struct strbuf b = {0};
    csv_text(&b, "2026-10", 7, true);
    csv_text(&b, "a,\"b\"", 5, false);
    csv_int(&b, -7, false); /* numbers are never altered */
    csv_int(&b, INT64_MAX, false);
    csv_text(&b, "", 0, false);
    csv_end_row(&b);
    csv_int(&b, 0, true);
    csv_end_row(&b);
    CU_ASSERT_STRING_EQUAL(b.p, "2026-10,\"a,\"\"b\"\"\",-7,9223372036854775807,\r\n0\r\n");
    strbuf_fini(&b);
}

/* Bytes are written as they are: a field holding a NUL keeps its length. */
static void test_length_not_nul(void)
{
    struct strbuf b = {0};
    csv_text(&b, "ab,cd", 2, true);
    CU_ASSERT_EQUAL(b.len, 2);
    CU_ASSERT_STRING_EQUAL(b.p, "ab");
    strbuf_fini(&b);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_plain_fields_bare),
        UNIT_TEST(test_quoting),
        UNIT_TEST(test_formula_neutralised),
        UNIT_TEST(test_row),
        UNIT_TEST(test_length_not_nul),
    };
    return unit_run("csv", tests, sizeof tests / sizeof tests[0]);
}
