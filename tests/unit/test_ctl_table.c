/* Unit tests of ctl_table: tollgatectl's tables. */
#include <json-c/json.h>

#include "ctl_table.h"
#include "unit.h"

/* What f printed into a memory stream. */
static char *printed(void (*f)(FILE *, json_object *, const struct ctl_col *, size_t),
                     json_object *j, const struct ctl_col *cols, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    f(out, j, cols, n);
    fclose(out);
    return buf;
}

static void print_table(FILE *out, json_object *j, const struct ctl_col *cols, size_t n)
{
    ctl_table_print(out, cols, n, j);
}

static void print_object(FILE *out, json_object *j, const struct ctl_col *cols, size_t n)
{
    (void)cols;
    (void)n;
    ctl_table_print_object(out, j);
}

static void test_cells(void)
{
    json_object *row = json_tokener_parse(
        "{\"s\":\"a\\u001b[31mb\",\"n\":42,\"b\":true,\"z\":null,\"o\":{\"x\":{\"y\":\"deep\"}},"
        "\"a\":[1,\"x/y\"]}");
    struct strbuf b = {0};
    static const char *const paths[] = {"s", "n", "b", "z", "missing", "o.x.y", "o.x", "a", "s.t"};
    static const char *const want[] = {"a?[31mb", "42", "true", "-", "-", "deep",
                                       "{\"y\":\"deep\"}", "[1,\"x/y\"]", "-"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        strbuf_reset(&b);
        strbuf_put(&b, "", 0);
        ctl_table_cell(&b, row, paths[i]);
        CU_ASSERT_STRING_EQUAL(b.p, want[i]);
    }
    strbuf_fini(&b);
    json_object_put(row);
}

static void test_table_alignment(void)
{
    static const struct ctl_col cols[] = {{"ID", "id"}, {"NAME", "name"}, {"N", "n"}};
    json_object *rows = json_tokener_parse(
        "[{\"id\":\"k1\",\"name\":\"Zoë\",\"n\":1},{\"id\":\"key_22\",\"name\":null,\"n\":100}]");
    char *s = printed(print_table, rows, cols, 3);
    /* Widths count characters: "Zoë" is three wide, like "N/A". */
    CU_ASSERT_STRING_EQUAL(s, "ID      NAME  N\n"
                              "k1      Zoë   1\n"
                              "key_22  -     100\n");
    free(s);
    json_object_put(rows);
    /* No rows, or not an array: the header alone. */
    s = printed(print_table, NULL, cols, 3);
    CU_ASSERT_STRING_EQUAL(s, "ID  NAME  N\n");
    free(s);
}

static void test_object(void)
{
    json_object *o = json_tokener_parse("{\"id\":\"k1\",\"limits\":[],\"expires_at\":null}");
    char *s = printed(print_object, o, NULL, 0);
    CU_ASSERT_STRING_EQUAL(s, "FIELD       VALUE\n"
                              "id          k1\n"
                              "limits      []\n"
                              "expires_at  -\n");
    free(s);
    json_object_put(o);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_cells),
        UNIT_TEST(test_table_alignment),
        UNIT_TEST(test_object),
    };
    return unit_run("ctl_table", tests, sizeof tests / sizeof tests[0]);
}
