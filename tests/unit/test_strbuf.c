#include <stdint.h>

#include <json-c/json.h>

#include "strbuf.h"
#include "util.h"
#include "unit.h"

static void test_put_and_grow(void)
{
    struct strbuf b = {0};
    strbuf_putc(&b, '[');
    for (int i = 0; i < 2000; i++)
        strbuf_put(&b, "abc", 3);
    strbuf_putc(&b, ']');
    CU_ASSERT_EQUAL(b.len, 6002);
    CU_ASSERT_EQUAL(strlen(b.p), b.len); /* NUL-terminated */
    CU_ASSERT(b.cap > b.len);
    CU_ASSERT_EQUAL(b.p[0], '[');
    CU_ASSERT_EQUAL(memcmp(b.p + 5998, "abc]", 4), 0);
    strbuf_fini(&b);
    CU_ASSERT_PTR_NULL(b.p);
    CU_ASSERT_EQUAL(b.len, 0);
}

static void test_int_and_printf(void)
{
    struct strbuf b = {0};
    strbuf_int(&b, INT64_MIN);
    strbuf_putc(&b, ' ');
    strbuf_int(&b, INT64_MAX);
    strbuf_putc(&b, ' ');
    strbuf_int(&b, 0);
    CU_ASSERT_STRING_EQUAL(b.p, "-9223372036854775808 9223372036854775807 0");
    strbuf_reset(&b);
    CU_ASSERT_EQUAL(b.len, 0);
    CU_ASSERT_STRING_EQUAL(b.p, "");
    strbuf_printf(&b, "%s=%d;", "x", 42);
    strbuf_printf(&b, "%s", ""); /* nothing added */
    char big[10000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    strbuf_printf(&b, "%s", big);
    CU_ASSERT_EQUAL(b.len, 5 + sizeof big - 1);
    CU_ASSERT_EQUAL(strncmp(b.p, "x=42;zzz", 8), 0);
    CU_ASSERT_EQUAL(strlen(b.p), b.len);
    strbuf_fini(&b);
}

static void test_reserve_and_empty(void)
{
    struct strbuf b = {0};
    strbuf_reset(&b); /* on an empty buffer: nothing to do */
    CU_ASSERT_PTR_NULL(b.p);
    strbuf_reserve(&b, 100);
    CU_ASSERT(b.cap >= 101);
    CU_ASSERT_STRING_EQUAL(b.p, "");
    size_t cap = b.cap;
    strbuf_reserve(&b, 10); /* already room: no change */
    CU_ASSERT_EQUAL(b.cap, cap);
    strbuf_fini(&b);
}

/* The same text as json-c's plain serialisation, for every kind of byte. */
static void test_json_str_matches_json_c(void)
{
    static const char *const cases[] = {
        "", "plain", "q\"uote", "back\\slash", "a/b", "tab\there", "nl\ncr\r",
        "\b\f\x01\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "</script>",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        struct strbuf b = {0};
        strbuf_json_str(&b, cases[i]);
        json_object *j = json_object_new_string(cases[i]);
        const char *want = json_object_to_json_string_ext(
            j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        CU_ASSERT_STRING_EQUAL(b.p, want);
        json_object_put(j);
        strbuf_fini(&b);
    }
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_put_and_grow),
        UNIT_TEST(test_int_and_printf),
        UNIT_TEST(test_json_str_matches_json_c),
        UNIT_TEST(test_reserve_and_empty),
    };
    return unit_run("strbuf", tests, sizeof tests / sizeof tests[0]);
}
