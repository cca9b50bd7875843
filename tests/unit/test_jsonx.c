/* Unit tests of jsonx: strict parsing with bounded depth and string checks,
 * field tables, member validators, paths and the error envelope. */
#include <string.h>

#include "jsonx.h"
#include "unit.h"

/* Parses a literal (without its terminator) through jsonx_parse. */
#define PARSE(lit, e) jsonx_parse(lit, sizeof(lit) - 1, e)

/* A parsed document from trusted test text (never NULL). */
static json_object *doc(const char *text)
{
    json_object *o = json_tokener_parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    return o;
}

/* Asserts e holds status, code and field. */
static void expect_error(const struct api_error *e, int status, const char *code,
                         const char *field)
{
    CU_ASSERT_EQUAL(err_http_status(e->code), status);
    CU_ASSERT_NOT_EQUAL_FATAL(e->code, ERR_NONE);
    CU_ASSERT_STRING_EQUAL(err_name(e->code), code);
    CU_ASSERT_STRING_EQUAL(e->field, field);
    CU_ASSERT(e->message[0] != '\0');
}

static void test_api_error_set(void)
{
    struct api_error e;
    memset(&e, 0, sizeof e);
    api_error_set(&e, ERR_CONFLICT, "name", "Name %s is taken (%d).", "x", 2);
    CU_ASSERT_EQUAL(err_http_status(e.code), 409);
    CU_ASSERT_STRING_EQUAL(err_name(e.code), "conflict");
    CU_ASSERT_STRING_EQUAL(e.field, "name");
    CU_ASSERT_STRING_EQUAL(e.message, "Name x is taken (2).");
    api_error_set(&e, ERR_INTERNAL, NULL, "x");
    CU_ASSERT_STRING_EQUAL(e.field, "");
    char longfield[300];
    memset(longfield, 'f', sizeof longfield - 1);
    longfield[sizeof longfield - 1] = '\0';
    api_error_set(&e, ERR_INVALID_ARGUMENT, longfield, "%s", longfield);
    CU_ASSERT_EQUAL(strlen(e.field), sizeof e.field - 1);
    CU_ASSERT_EQUAL(strlen(e.message), sizeof e.message - 1);
    api_error_set(NULL, ERR_INTERNAL, NULL, "no detail wanted");
}

/* Every code has its own contract name and the status that answers it. */
static void test_err_table(void)
{
    CU_ASSERT_EQUAL(err_http_status(ERR_INVALID_ARGUMENT), 400);
    CU_ASSERT_EQUAL(err_http_status(ERR_UNAUTHENTICATED), 401);
    CU_ASSERT_EQUAL(err_http_status(ERR_REVOKED), 403);
    CU_ASSERT_EQUAL(err_http_status(ERR_QUOTA_EXCEEDED), 429);
    CU_ASSERT_EQUAL(err_http_status(ERR_UNAVAILABLE), 503);
    CU_ASSERT_STRING_EQUAL(err_name(ERR_UNSUPPORTED_MEDIA_TYPE), "unsupported_media_type");
    CU_ASSERT_STRING_EQUAL(err_name(ERR_INVALID_KEY), "invalid_key");
    CU_ASSERT_STRING_EQUAL(err_name((enum err_code)999), "internal");
    CU_ASSERT_EQUAL(err_http_status((enum err_code)999), 500);
    for (int a = ERR_NONE + 1; a < ERR_COUNT; a++) {
        CU_ASSERT(err_http_status((enum err_code)a) >= 400);
        for (int b = a + 1; b < ERR_COUNT; b++)
            CU_ASSERT(strcmp(err_name((enum err_code)a), err_name((enum err_code)b)) != 0);
    }
}

/* ---- jsonx_parse ---- */

static void test_parse_valid(void)
{
    struct api_error e;
    json_object *o = PARSE("{\"name\":\"caf\xC3\xA9\",\"n\":[1,2,{\"k\":true}],\"z\":null}", &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT(json_object_is_type(o, json_type_object));
    CU_ASSERT_STRING_EQUAL(json_object_get_string(jsonx_get(o, "name")), "caf\xC3\xA9");
    json_object_put(o);
    /* Any document, surrounded by whitespace. */
    o = PARSE(" \r\n\t[1, 2] \n", &e);
    CU_ASSERT_PTR_NOT_NULL(o);
    json_object_put(o);
    o = PARSE("\"text\"", &e);
    CU_ASSERT_PTR_NOT_NULL(o);
    json_object_put(o);
    /* Exactly len bytes are parsed: what follows does not count. */
    o = jsonx_parse("{}garbage", 2, &e);
    CU_ASSERT_PTR_NOT_NULL(o);
    json_object_put(o);
}

static void test_parse_empty(void)
{
    struct api_error e;
    memset(&e, 0, sizeof e);
    CU_ASSERT_PTR_NULL(jsonx_parse("", 0, &e));
    expect_error(&e, 400, "invalid_json", "");
    CU_ASSERT_PTR_NULL(jsonx_parse("{}", 0, &e));
    expect_error(&e, 400, "invalid_json", "");
    CU_ASSERT_PTR_NULL(PARSE("   \n", &e));
    expect_error(&e, 400, "invalid_json", "");
}

static void test_parse_malformed(void)
{
    static const char *const bad[] = {
        "{\"a\":1} x",   /* trailing garbage */
        "{\"a\":1}}",
        "{}{}",          /* two documents */
        "{} []",
        "{\"a\":",       /* truncated */
        "{\"a\":1",
        "[1,2",
        "\"open",
        "{\"a\":'x'}",  /* not JSON */
        "['x']",
        "{a:1}",
        "[1,]",          /* trailing comma */
        "{\"a\":1,}",
        "tru",
        "nul",
        "01",
        "{\"a\":1}\x01",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        struct api_error e;
        memset(&e, 0, sizeof e);
        json_object *o = jsonx_parse(bad[i], strlen(bad[i]), &e);
        CU_ASSERT_PTR_NULL(o);
        if (o) {
            fprintf(stderr, "jsonx_parse accepted '%s'\n", bad[i]);
            json_object_put(o);
            continue;
        }
        expect_error(&e, 400, "invalid_json", "");
    }
}

static void test_parse_single_quoted_name(void)
{
    struct api_error e;
    memset(&e, 0, sizeof e);
    json_object *o = PARSE("{'a':1}", &e); /* JSON strings take double quotes only */
    CU_ASSERT_PTR_NULL(o);
    if (o)
        json_object_put(o);
    else
        CU_ASSERT_STRING_EQUAL(err_name(e.code), "invalid_json");
}

/* n nested arrays around 1: "[[[1]]]" for n = 3. */
static char *nested(int n)
{
    char *s = xmalloc((size_t)(2 * n + 2));
    memset(s, '[', (size_t)n);
    s[n] = '1';
    memset(s + n + 1, ']', (size_t)n);
    s[2 * n + 1] = '\0';
    return s;
}

static void test_parse_depth(void)
{
    struct api_error e;
    char *ok = nested(JSONX_MAX_DEPTH);
    json_object *o = jsonx_parse(ok, strlen(ok), &e);
    CU_ASSERT_PTR_NOT_NULL(o); /* exactly the maximum nesting is accepted */
    json_object_put(o);
    free(ok);
}

static void test_parse_depth_over(void)
{
    struct api_error e;
    json_object *o;
    char *deep = nested(JSONX_MAX_DEPTH + 1);
    memset(&e, 0, sizeof e);
    o = jsonx_parse(deep, strlen(deep), &e);
    CU_ASSERT_PTR_NULL(o);
    json_object_put(o);
    expect_error(&e, 400, "invalid_json", "");
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "nested too deeply"));
    free(deep);

    /* Objects count as well as arrays. */
    char objs[512] = "";
    for (int i = 0; i <= JSONX_MAX_DEPTH; i++)
        strcat(objs, "{\"a\":");
    strcat(objs, "1");
    for (int i = 0; i <= JSONX_MAX_DEPTH; i++)
        strcat(objs, "}");
    o = jsonx_parse(objs, strlen(objs), &e);
    CU_ASSERT_PTR_NULL(o);
    json_object_put(o);
    CU_ASSERT_STRING_EQUAL(err_name(e.code), "invalid_json");
}

static void test_parse_nul_in_string(void)
{
    struct api_error e;
    memset(&e, 0, sizeof e);
    CU_ASSERT_PTR_NULL(PARSE("{\"name\":\"a\\u0000b\"}", &e));
    expect_error(&e, 400, "invalid_argument", "name");
    CU_ASSERT_PTR_NULL(PARSE("{\"a\":{\"b\":[\"x\",\"\\u0000\"]}}", &e));
    expect_error(&e, 400, "invalid_argument", "a.b[1]");
    CU_ASSERT_PTR_NULL(PARSE("[{\"k\":\"\\u0000\"}]", &e));
    expect_error(&e, 400, "invalid_argument", "[0].k");
    CU_ASSERT_PTR_NULL(PARSE("\"\\u0000\"", &e));
    expect_error(&e, 400, "invalid_argument", "");
}

static void test_parse_nul_in_member_name(void)
{
    struct api_error e;
    memset(&e, 0, sizeof e);
    json_object *o = PARSE("{\"ab\\u0000c\":1}", &e);
    CU_ASSERT_PTR_NULL(o); /* "a NUL character anywhere" */
    if (o)
        json_object_put(o);
    else
        CU_ASSERT_STRING_EQUAL(err_name(e.code), "invalid_argument");
}

static void test_parse_invalid_utf8(void)
{
    struct api_error e;
    memset(&e, 0, sizeof e);
    json_object *o = PARSE("{\"name\":\"\xC0\x80\"}", &e); /* overlong */
    CU_ASSERT_PTR_NULL(o);
    json_object_put(o);
    expect_error(&e, 400, "invalid_argument", "name");
    o = PARSE("{\"x\":[\"ok\",\"\xED\xA0\x80\"]}", &e); /* surrogate */
    CU_ASSERT_PTR_NULL(o);
    json_object_put(o);
    expect_error(&e, 400, "invalid_argument", "x[1]");
    o = PARSE("{\"x\":\"\xFF\"}", &e);
    CU_ASSERT_PTR_NULL(o);
    json_object_put(o);
    expect_error(&e, 400, "invalid_argument", "x");
    o = PARSE("{\"\xC3\":1}", &e); /* in a member name */
    CU_ASSERT_PTR_NULL(o);
    json_object_put(o);
    CU_ASSERT_STRING_EQUAL(err_name(e.code), "invalid_argument");
    /* Escaped code points are fine. */
    o = PARSE("{\"x\":\"\\u00e9\\ud83d\\ude00\"}", &e);
    CU_ASSERT_PTR_NOT_NULL(o);
    if (o)
        CU_ASSERT_STRING_EQUAL(json_object_get_string(jsonx_get(o, "x")),
                               "\xC3\xA9\xF0\x9F\x98\x80");
    json_object_put(o);
}

static void test_parse_lone_surrogate(void)
{
    static const char *const bad[] = {
        "\"\\ud800\"",                  /* high alone */
        "\"\\udfff\"",                  /* low alone */
        "{\"a\":\"x\\ud83dy\"}",        /* high followed by text */
        "{\"a\":\"\\ud83d\\u0041\"}",   /* high followed by a non-surrogate */
        "{\"a\":\"\\ude00\\ud83d\"}",   /* the pair in the wrong order */
        "{\"\\udc00\":1}",              /* in a member name */
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        struct api_error e;
        memset(&e, 0, sizeof e);
        json_object *o = jsonx_parse(bad[i], strlen(bad[i]), &e);
        CU_ASSERT_PTR_NULL(o);
        if (o) {
            fprintf(stderr, "jsonx_parse accepted '%s'\n", bad[i]);
            json_object_put(o);
            continue;
        }
        CU_ASSERT_EQUAL(err_http_status(e.code), 400);
        CU_ASSERT_STRING_EQUAL(err_name(e.code), "invalid_argument");
    }
    static const char *const good[] = {
        "\"\\ud83d\\ude00\"",           /* a proper pair */
        "\"\\udbff\\udfff\"",           /* U+10FFFF */
        "\"\\\\ud800\"",                /* an escaped backslash, then text */
        "\"\\ud7ff\\ue000\"",           /* neighbours of the surrogate range */
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(good); i++) {
        struct api_error e;
        json_object *o = jsonx_parse(good[i], strlen(good[i]), &e);
        CU_ASSERT_PTR_NOT_NULL(o);
        if (!o)
            fprintf(stderr, "jsonx_parse refused '%s': %s\n", good[i], e.message);
        json_object_put(o);
    }
}

/* ---- jsonx_check ---- */

static const struct jx_field FIELDS[] = {
    {"name", JX_STRING, true, false},  {"count", JX_INT, false, false},
    {"flag", JX_BOOL, false, true},    {"meta", JX_OBJECT, false, false},
    {"tags", JX_ARRAY, false, false},  {"score", JX_NUMBER, false, false},
    {"any", JX_ANY, false, false},
};

/* Runs jsonx_check of text against FIELDS under prefix. */
static int check(const char *text, const char *prefix, struct api_error *e)
{
    json_object *o = doc(text);
    memset(e, 0, sizeof *e);
    int rc = jsonx_check(o, FIELDS, TG_ARRAY_LEN(FIELDS), prefix, e);
    json_object_put(o);
    return rc;
}

static void test_check_ok(void)
{
    struct api_error e;
    CU_ASSERT_EQUAL(check("{\"name\":\"x\"}", "", &e), 0);
    CU_ASSERT_EQUAL(check("{\"name\":\"x\",\"count\":-3,\"flag\":false,\"meta\":{},"
                          "\"tags\":[],\"score\":1.5,\"any\":[1]}",
                          "", &e),
                    0);
    CU_ASSERT_EQUAL(check("{\"name\":\"x\",\"score\":2}", "", &e), 0);   /* int is a number */
    CU_ASSERT_EQUAL(check("{\"name\":\"x\",\"flag\":null}", "", &e), 0); /* nullable */
    CU_ASSERT_EQUAL(check("{\"name\":\"x\",\"any\":\"s\"}", "", &e), 0);
}

static void test_check_unknown(void)
{
    struct api_error e;
    CU_ASSERT_EQUAL(check("{\"name\":\"x\",\"extra\":1}", "", &e), -1);
    expect_error(&e, 400, "unknown_field", "extra");
    CU_ASSERT_EQUAL(check("{\"name\":\"x\",\"Name\":1}", "limits[0]", &e), -1);
    expect_error(&e, 400, "unknown_field", "limits[0].Name");
}

static void test_check_missing(void)
{
    struct api_error e;
    CU_ASSERT_EQUAL(check("{}", "", &e), -1);
    expect_error(&e, 400, "missing_field", "name");
    CU_ASSERT_EQUAL(check("{\"count\":1}", "limits[0]", &e), -1);
    expect_error(&e, 400, "missing_field", "limits[0].name");

    static const struct jx_field limit[] = {
        {"name", JX_STRING, true, false},
        {"window_s", JX_INT, true, false},
    };
    json_object *o = doc("{\"name\":\"per_min\"}");
    CU_ASSERT_EQUAL(jsonx_check(o, limit, 2, "limits[0]", &e), -1);
    expect_error(&e, 400, "missing_field", "limits[0].window_s");
    json_object_put(o);
}

static void test_check_types(void)
{
    struct api_error e;
    CU_ASSERT_EQUAL(check("{\"name\":1}", "", &e), -1);
    expect_error(&e, 400, "invalid_argument", "name");
    CU_ASSERT_EQUAL(check("{\"name\":\"x\",\"count\":\"1\"}", "", &e), -1);
    expect_error(&e, 400, "invalid_argument", "count");
    CU_ASSERT_EQUAL(check("{\"name\":\"x\",\"count\":1.5}", "", &e), -1);
    expect_error(&e, 400, "invalid_argument", "count");
    CU_ASSERT_EQUAL(check("{\"name\":\"x\",\"flag\":1}", "", &e), -1);
    expect_error(&e, 400, "invalid_argument", "flag");
    CU_ASSERT_EQUAL(check("{\"name\":\"x\",\"meta\":[]}", "", &e), -1);
    expect_error(&e, 400, "invalid_argument", "meta");
    CU_ASSERT_EQUAL(check("{\"name\":\"x\",\"tags\":{}}", "t", &e), -1);
    expect_error(&e, 400, "invalid_argument", "t.tags");
    CU_ASSERT_EQUAL(check("{\"name\":\"x\",\"score\":\"1\"}", "", &e), -1);
    expect_error(&e, 400, "invalid_argument", "score");
}

static void test_check_null(void)
{
    struct api_error e;
    CU_ASSERT_EQUAL(check("{\"name\":null}", "", &e), -1); /* required, not nullable */
    expect_error(&e, 400, "invalid_argument", "name");
    CU_ASSERT_EQUAL(check("{\"name\":\"x\",\"count\":null}", "p", &e), -1);
    expect_error(&e, 400, "invalid_argument", "p.count");
}

static void test_check_not_object(void)
{
    struct api_error e;
    CU_ASSERT_EQUAL(check("[]", "", &e), -1);
    expect_error(&e, 400, "invalid_argument", "");
    CU_ASSERT_EQUAL(check("\"s\"", "limits[3]", &e), -1);
    expect_error(&e, 400, "invalid_argument", "limits[3]");
    memset(&e, 0, sizeof e);
    CU_ASSERT_EQUAL(jsonx_check(NULL, FIELDS, TG_ARRAY_LEN(FIELDS), "", &e), -1); /* JSON null */
    CU_ASSERT_EQUAL(err_http_status(e.code), 400);
}

/* ---- member access and validators ---- */

static void test_get_has(void)
{
    json_object *o = doc("{\"a\":1,\"n\":null}");
    CU_ASSERT_PTR_NOT_NULL(jsonx_get(o, "a"));
    CU_ASSERT_EQUAL(json_object_get_int(jsonx_get(o, "a")), 1);
    CU_ASSERT_TRUE(jsonx_has(o, "a"));
    CU_ASSERT_PTR_NULL(jsonx_get(o, "n"));
    CU_ASSERT_TRUE(jsonx_has(o, "n"));
    CU_ASSERT_PTR_NULL(jsonx_get(o, "missing"));
    CU_ASSERT_FALSE(jsonx_has(o, "missing"));
    json_object_put(o);
}

static void test_string_len(void)
{
    struct api_error e;
    json_object *s = json_object_new_string("h\xC3\xA9llo"); /* 5 characters, 6 bytes */
    CU_ASSERT_EQUAL(jsonx_string_len(s, "name", 5, 5, true, &e), 0);
    CU_ASSERT_EQUAL(jsonx_string_len(s, "name", 1, 200, true, &e), 0);
    memset(&e, 0, sizeof e);
    CU_ASSERT_EQUAL(jsonx_string_len(s, "name", 1, 4, true, &e), -1); /* max + 1 */
    expect_error(&e, 400, "invalid_argument", "name");
    CU_ASSERT_EQUAL(jsonx_string_len(s, "x.name", 6, 10, true, &e), -1); /* min - 1 */
    expect_error(&e, 400, "invalid_argument", "x.name");
    json_object_put(s);

    s = json_object_new_string("");
    CU_ASSERT_EQUAL(jsonx_string_len(s, "name", 0, 3, true, &e), 0);
    CU_ASSERT_EQUAL(jsonx_string_len(s, "name", 1, 3, true, &e), -1);
    json_object_put(s);

    s = json_object_new_string("tab\there");
    CU_ASSERT_EQUAL(jsonx_string_len(s, "desc", 0, 100, false, &e), 0);
    memset(&e, 0, sizeof e);
    CU_ASSERT_EQUAL(jsonx_string_len(s, "desc", 0, 100, true, &e), -1);
    expect_error(&e, 400, "invalid_argument", "desc");
    json_object_put(s);
}

static void test_int_range(void)
{
    struct api_error e;
    json_object *v = json_object_new_int64(10);
    CU_ASSERT_EQUAL(jsonx_int_range(v, "n", 10, 10, &e), 0);
    CU_ASSERT_EQUAL(jsonx_int_range(v, "n", 11, 20, &e), -1);
    expect_error(&e, 400, "invalid_argument", "n");
    CU_ASSERT_EQUAL(jsonx_int_range(v, "n", 0, 9, &e), -1);
    json_object_put(v);

    v = json_object_new_double(2.0);
    CU_ASSERT_EQUAL(jsonx_int_range(v, "n", 0, 10, &e), -1);
    json_object_put(v);
    v = json_object_new_string("5");
    CU_ASSERT_EQUAL(jsonx_int_range(v, "n", 0, 10, &e), -1);
    json_object_put(v);
    v = json_object_new_int64(INT64_MIN);
    CU_ASSERT_EQUAL(jsonx_int_range(v, "n", INT64_MIN, INT64_MAX, &e), 0);
    json_object_put(v);
    CU_ASSERT_EQUAL(jsonx_int_range(NULL, "n", 0, 10, &e), -1); /* JSON null */
}

static void test_name_ok(void)
{
    CU_ASSERT_TRUE(name_ok("abc", 3, 32, ""));
    CU_ASSERT_TRUE(name_ok("a9", 2, 2, ""));          /* max */
    CU_ASSERT_FALSE(name_ok("a9x", 3, 2, ""));        /* max + 1 */
    CU_ASSERT_FALSE(name_ok("", 0, 32, ""));
    CU_ASSERT_FALSE(name_ok("Abc", 3, 32, ""));
    CU_ASSERT_FALSE(name_ok("a_b", 3, 32, ""));
    CU_ASSERT_TRUE(name_ok("a_b", 3, 32, "_"));
    CU_ASSERT_TRUE(name_ok("a-b.c", 5, 32, "-."));
    CU_ASSERT_FALSE(name_ok("a-b", 3, 32, "_"));
    CU_ASSERT_FALSE(name_ok("a b", 3, 32, "_"));
    CU_ASSERT_FALSE(name_ok("a\0b", 3, 32, "_"));
    CU_ASSERT_FALSE(name_ok("caf\xC3\xA9", 5, 32, "_"));
}

static void test_path(void)
{
    char out[160];
    jsonx_path(out, sizeof out, "limits[0]", ".window_s");
    CU_ASSERT_STRING_EQUAL(out, "limits[0].window_s");
    jsonx_path(out, sizeof out, "", "name");
    CU_ASSERT_STRING_EQUAL(out, "name");
    char small[8];
    jsonx_path(small, sizeof small, "limits[12]", ".name");
    CU_ASSERT_STRING_EQUAL(small, "limits[");
}

/* ---- output helpers ---- */

static const char *plain(json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
}

static void test_error_body(void)
{
    struct api_error e;
    api_error_set(&e, ERR_INVALID_ARGUMENT, "limits[0].limit", "Too big.");
    json_object *b = jsonx_error_body(&e);
    CU_ASSERT_STRING_EQUAL(
        plain(b),
        "{\"error\":{\"code\":\"invalid_argument\",\"message\":\"Too big.\",\"field\":\"limits[0].limit\"}}");
    json_object_put(b);
    api_error_set(&e, ERR_NOT_FOUND, NULL, "Key not found.");
    b = jsonx_error_body(&e);
    CU_ASSERT_STRING_EQUAL(plain(b),
                           "{\"error\":{\"code\":\"not_found\",\"message\":\"Key not found.\"}}");
    json_object_put(b);
}

static void test_str_time_or_null(void)
{
    CU_ASSERT_PTR_NULL(jsonx_str_or_null(NULL));
    json_object *s = jsonx_str_or_null("v");
    CU_ASSERT(json_object_is_type(s, json_type_string));
    CU_ASSERT_STRING_EQUAL(json_object_get_string(s), "v");
    json_object_put(s);

    CU_ASSERT_PTR_NULL(jsonx_time_or_null(false, 1700000000123));
    json_object *t = jsonx_time_or_null(true, 1700000000123);
    CU_ASSERT(json_object_is_type(t, json_type_string));
    CU_ASSERT_STRING_EQUAL(json_object_get_string(t), "2023-11-14T22:13:20.123Z");
    json_object_put(t);
    t = jsonx_time_or_null(true, 0);
    CU_ASSERT_STRING_EQUAL(json_object_get_string(t), "1970-01-01T00:00:00.000Z");
    json_object_put(t);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_api_error_set),
        UNIT_TEST(test_err_table),
        UNIT_TEST(test_parse_valid),
        UNIT_TEST(test_parse_empty),
        UNIT_TEST(test_parse_malformed),
        UNIT_TEST(test_parse_single_quoted_name),
        UNIT_TEST(test_parse_depth),
        UNIT_TEST(test_parse_depth_over),
        UNIT_TEST(test_parse_nul_in_string),
        UNIT_TEST(test_parse_nul_in_member_name),
        UNIT_TEST(test_parse_invalid_utf8),
        UNIT_TEST(test_parse_lone_surrogate),
        UNIT_TEST(test_check_ok),
        UNIT_TEST(test_check_unknown),
        UNIT_TEST(test_check_missing),
        UNIT_TEST(test_check_types),
        UNIT_TEST(test_check_null),
        UNIT_TEST(test_check_not_object),
        UNIT_TEST(test_get_has),
        UNIT_TEST(test_string_len),
        UNIT_TEST(test_int_range),
        UNIT_TEST(test_name_ok),
        UNIT_TEST(test_path),
        UNIT_TEST(test_error_body),
        UNIT_TEST(test_str_time_or_null),
    };
    return unit_run("jsonx", tests, TG_ARRAY_LEN(tests));
}
