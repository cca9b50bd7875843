/* Unit tests of limits: validation of a list at its boundaries, the merge of
 * overrides into a tier's list, and endpoint patterns. */
#include <stdio.h>
#include <string.h>

#include "limits.h"
#include "unit.h"

static json_object *doc(const char *text)
{
    json_object *o = json_tokener_parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    return o;
}

/* Validates text as the value of field; fills e. */
static int validate(const char *text, const char *field, struct api_error *e)
{
    json_object *o = doc(text);
    memset(e, 0, sizeof *e);
    int rc = limits_validate(o, field, e);
    json_object_put(o);
    return rc;
}

/* Validates a one-limit list whose members are given as JSON text. */
static int one(const char *members, struct api_error *e)
{
    char text[1024];
    snprintf(text, sizeof text, "[{%s}]", members);
    return validate(text, "limits", e);
}

static void expect_field(const struct api_error *e, const char *code, const char *field)
{
    CU_ASSERT_EQUAL(err_http_status(e->code), 400);
    CU_ASSERT_NOT_EQUAL_FATAL(e->code, ERR_NONE);
    CU_ASSERT_STRING_EQUAL(err_name(e->code), code);
    CU_ASSERT_STRING_EQUAL(e->field, field);
}

static void test_valid_lists(void)
{
    struct api_error e;
    CU_ASSERT_EQUAL(validate("[]", "limits", &e), 0);
    CU_ASSERT_EQUAL(validate("[{\"name\":\"per_second\",\"window_s\":1,\"limit\":10},"
                             "{\"name\":\"per_day\",\"window_s\":86400,\"limit\":100000,"
                             "\"precision\":60,\"endpoint\":\"GET /v1/search\"},"
                             "{\"name\":\"writes\",\"window_s\":60,\"limit\":5,"
                             "\"endpoint\":\"POST /v1/*\"},"
                             "{\"name\":\"all\",\"window_s\":60,\"limit\":5,\"endpoint\":\"*\"}]",
                             "limits", &e),
                    0);
}

static void test_not_array(void)
{
    struct api_error e;
    CU_ASSERT_EQUAL(validate("{}", "limits", &e), -1);
    expect_field(&e, "invalid_argument", "limits");
    CU_ASSERT_EQUAL(validate("\"x\"", "overrides", &e), -1);
    expect_field(&e, "invalid_argument", "overrides");
    memset(&e, 0, sizeof e);
    CU_ASSERT_EQUAL(limits_validate(NULL, "limits", &e), -1);
    expect_field(&e, "invalid_argument", "limits");
    CU_ASSERT_EQUAL(validate("[1]", "limits", &e), -1);
    expect_field(&e, "invalid_argument", "limits[0]");
    CU_ASSERT_EQUAL(validate("[{\"name\":\"a\",\"window_s\":1,\"limit\":1},[]]", "limits", &e),
                    -1);
    expect_field(&e, "invalid_argument", "limits[1]");
}

static void test_window_bounds(void)
{
    struct api_error e;
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":1,\"limit\":1", &e), 0);
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":2678400,\"limit\":1", &e), 0);
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":0,\"limit\":1", &e), -1);
    expect_field(&e, "invalid_argument", "limits[0].window_s");
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":2678401,\"limit\":1", &e), -1);
    expect_field(&e, "invalid_argument", "limits[0].window_s");
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":-1,\"limit\":1", &e), -1);
    expect_field(&e, "invalid_argument", "limits[0].window_s");
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":60.0,\"limit\":1", &e), -1);
    expect_field(&e, "invalid_argument", "limits[0].window_s");
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":\"60\",\"limit\":1", &e), -1);
    expect_field(&e, "invalid_argument", "limits[0].window_s");
}

static void test_limit_bounds(void)
{
    struct api_error e;
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":1,\"limit\":1", &e), 0);
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":1,\"limit\":1000000000", &e), 0);
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":1,\"limit\":0", &e), -1);
    expect_field(&e, "invalid_argument", "limits[0].limit");
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":1,\"limit\":1000000001", &e), -1);
    expect_field(&e, "invalid_argument", "limits[0].limit");
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":1,\"limit\":99999999999999999999", &e), -1);
    expect_field(&e, "invalid_argument", "limits[0].limit");
}

static void test_precision_bounds(void)
{
    struct api_error e;
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":60,\"limit\":1,\"precision\":1", &e), 0);
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":60,\"limit\":1,\"precision\":60", &e), 0);
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":60,\"limit\":1,\"precision\":0", &e), -1);
    expect_field(&e, "invalid_argument", "limits[0].precision");
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":60,\"limit\":1,\"precision\":61", &e), -1);
    expect_field(&e, "invalid_argument", "limits[0].precision");
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":60,\"limit\":1,\"precision\":null", &e), -1);
    expect_field(&e, "invalid_argument", "limits[0].precision");
}

static void test_names(void)
{
    struct api_error e;
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":1,\"limit\":1", &e), 0);
    CU_ASSERT_EQUAL(one("\"name\":\"per_min_9\",\"window_s\":1,\"limit\":1", &e), 0);
    CU_ASSERT_EQUAL(one("\"name\":\"abcdefghijklmnopqrstuvwxyz012345\",\"window_s\":1,\"limit\":1",
                        &e),
                    0); /* 32 */
    CU_ASSERT_EQUAL(one("\"name\":\"abcdefghijklmnopqrstuvwxyz0123456\",\"window_s\":1,\"limit\":1",
                        &e),
                    -1); /* 33 */
    expect_field(&e, "invalid_argument", "limits[0].name");
    static const char *const bad[] = {"", "Per_min", "per-min", "per min", "caf\xC3\xA9"};
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        char members[256];
        snprintf(members, sizeof members, "\"name\":\"%s\",\"window_s\":1,\"limit\":1", bad[i]);
        CU_ASSERT_EQUAL(one(members, &e), -1);
        expect_field(&e, "invalid_argument", "limits[0].name");
    }
    CU_ASSERT_EQUAL(one("\"name\":7,\"window_s\":1,\"limit\":1", &e), -1);
    expect_field(&e, "invalid_argument", "limits[0].name");
}

static void test_count(void)
{
    struct api_error e;
    char text[4096] = "[";
    for (int i = 0; i < LIMITS_MAX + 1; i++) {
        char item[96];
        snprintf(item, sizeof item, "%s{\"name\":\"l%d\",\"window_s\":60,\"limit\":%d}",
                 i ? "," : "", i, i + 1);
        strcat(text, item);
        if (i == LIMITS_MAX - 1) {
            char sixteen[4096];
            snprintf(sixteen, sizeof sixteen, "%s]", text);
            CU_ASSERT_EQUAL(validate(sixteen, "limits", &e), 0);
        }
    }
    strcat(text, "]");
    CU_ASSERT_EQUAL(validate(text, "limits", &e), -1); /* 17 */
    expect_field(&e, "invalid_argument", "limits");
}

static void test_duplicates(void)
{
    struct api_error e;
    CU_ASSERT_EQUAL(validate("[{\"name\":\"a\",\"window_s\":1,\"limit\":1},"
                             "{\"name\":\"b\",\"window_s\":1,\"limit\":1},"
                             "{\"name\":\"a\",\"window_s\":60,\"limit\":9}]",
                             "limits", &e),
                    -1);
    expect_field(&e, "invalid_argument", "limits[2].name");
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "'a'"));
}

static void test_fields_and_paths(void)
{
    struct api_error e;
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"limit\":1", &e), -1);
    expect_field(&e, "missing_field", "limits[0].window_s");
    CU_ASSERT_EQUAL(one("\"window_s\":1,\"limit\":1", &e), -1);
    expect_field(&e, "missing_field", "limits[0].name");
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":1,\"limit\":1,\"burst\":2", &e), -1);
    expect_field(&e, "unknown_field", "limits[0].burst");
    /* The index and the field name of the caller appear in the path. */
    CU_ASSERT_EQUAL(validate("[{\"name\":\"a\",\"window_s\":1,\"limit\":1},"
                             "{\"name\":\"b\",\"window_s\":1,\"limit\":1},"
                             "{\"name\":\"c\",\"window_s\":1,\"limit\":0}]",
                             "overrides", &e),
                    -1);
    expect_field(&e, "invalid_argument", "overrides[2].limit");
}

static void test_endpoint_field(void)
{
    struct api_error e;
    static const char *const good[] = {"*", "GET /v1/search", "POST /v1/*", "DELETE /",
                                       "GET /.well*", "GET /caf%C3%A9"};
    for (size_t i = 0; i < TG_ARRAY_LEN(good); i++) {
        char members[512];
        snprintf(members, sizeof members,
                 "\"name\":\"a\",\"window_s\":1,\"limit\":1,\"endpoint\":\"%s\"", good[i]);
        CU_ASSERT_EQUAL(one(members, &e), 0);
    }
    static const char *const bad[] = {"",          "get /v1",  "GET v1",  "GET /a b",
                                      "GET /a*b",  "GET  /a",  "/v1",     "GET",
                                      "GET /**",   "G3T /a",   "GET\\t/a", "**",
                                      /* not in normal form */
                                      "GET /v1//search", "GET /a/../b", "GET /%7Ea", "GET /caf%c3%a9",
                                      "GET /v1/keys/{id}", "GET /a/./*", "GET /%2F*"};
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        char members[512];
        snprintf(members, sizeof members,
                 "\"name\":\"a\",\"window_s\":1,\"limit\":1,\"endpoint\":\"%s\"", bad[i]);
        CU_ASSERT_EQUAL(one(members, &e), -1);
        expect_field(&e, "invalid_argument", "limits[0].endpoint");
    }
}

/* The names and limits of arr as "name=limit,..." */
static void summary(json_object *arr, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *l = json_object_array_get_idx(arr, i);
        char item[64];
        snprintf(item, sizeof item, "%s%s=%lld", i ? "," : "",
                 json_object_get_string(jsonx_get(l, "name")),
                 (long long)json_object_get_int64(jsonx_get(l, "limit")));
        strncat(out, item, size - strlen(out) - 1);
    }
}

/* per: "key" or "owner", nothing else. */
static void test_per_field(void)
{
    struct api_error e;
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":60,\"limit\":10,\"per\":\"owner\"", &e), 0);
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":60,\"limit\":10,\"per\":\"key\"", &e), 0);
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":60,\"limit\":10,\"per\":\"tier\"", &e), -1);
    expect_field(&e, "invalid_argument", "limits[0].per");
    CU_ASSERT_EQUAL(one("\"name\":\"a\",\"window_s\":60,\"limit\":10,\"per\":1", &e), -1);
    expect_field(&e, "invalid_argument", "limits[0].per");
}

static void test_merge(void)
{
    json_object *base = doc("[{\"name\":\"a\",\"window_s\":1,\"limit\":10},"
                            "{\"name\":\"b\",\"window_s\":60,\"limit\":20,\"precision\":5},"
                            "{\"name\":\"c\",\"window_s\":3600,\"limit\":30}]");
    json_object *over = doc("[{\"name\":\"z\",\"window_s\":1,\"limit\":1},"
                            "{\"name\":\"b\",\"window_s\":60,\"limit\":99},"
                            "{\"name\":\"y\",\"window_s\":1,\"limit\":2}]");
    json_object *m = limits_merge(base, over);
    char s[256];
    summary(m, s, sizeof s);
    /* Base order with b replaced in place, then the new ones in their order. */
    CU_ASSERT_STRING_EQUAL(s, "a=10,b=99,c=30,z=1,y=2");
    /* Replacement is of the whole limit: b's precision does not survive. */
    json_object *b = json_object_array_get_idx(m, 1);
    CU_ASSERT_FALSE(jsonx_has(b, "precision"));
    /* The result is a copy: changing it leaves the inputs alone. */
    json_object_object_add(b, "limit", json_object_new_int(7));
    summary(over, s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, "z=1,b=99,y=2");
    json_object_object_add(json_object_array_get_idx(m, 0), "limit", json_object_new_int(8));
    summary(base, s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, "a=10,b=20,c=30");
    json_object_put(m);
    json_object_put(base);
    json_object_put(over);
}

static void test_merge_null_and_empty(void)
{
    json_object *base = doc("[{\"name\":\"a\",\"window_s\":1,\"limit\":10}]");
    json_object *empty = doc("[]");
    char s[128];
    json_object *m = limits_merge(NULL, NULL);
    CU_ASSERT(json_object_is_type(m, json_type_array));
    CU_ASSERT_EQUAL(json_object_array_length(m), 0);
    json_object_put(m);
    m = limits_merge(base, NULL);
    summary(m, s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, "a=10");
    CU_ASSERT_PTR_NOT_EQUAL(json_object_array_get_idx(m, 0), json_object_array_get_idx(base, 0));
    json_object_put(m);
    m = limits_merge(NULL, base);
    summary(m, s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, "a=10");
    json_object_put(m);
    m = limits_merge(empty, base);
    summary(m, s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, "a=10");
    json_object_put(m);
    m = limits_merge(base, empty);
    summary(m, s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, "a=10");
    json_object_put(m);
    json_object_put(base);
    json_object_put(empty);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_valid_lists),
        UNIT_TEST(test_per_field),
        UNIT_TEST(test_not_array),
        UNIT_TEST(test_window_bounds),
        UNIT_TEST(test_limit_bounds),
        UNIT_TEST(test_precision_bounds),
        UNIT_TEST(test_names),
        UNIT_TEST(test_count),
        UNIT_TEST(test_duplicates),
        UNIT_TEST(test_fields_and_paths),
        UNIT_TEST(test_endpoint_field),
        UNIT_TEST(test_merge),
        UNIT_TEST(test_merge_null_and_empty),
    };
    return unit_run("limits", tests, TG_ARRAY_LEN(tests));
}
