/* Unit tests of keystore's record parsing: the JSON a key record is stored
 * as, the "missing" marker and malformed records. */
#include <string.h>

#include "keystore.h"
#include "unit.h"

static const char FULL[] =
    "{\"v\":3,\"id\":\"key_AbCdEfGhIjKlMnOpQrSt\",\"owner_id\":\"acct_42\",\"tier\":\"pro\","
    "\"status\":\"active\",\"expires_ms\":1900000000000,\"secret_expires_ms\":1800000000000,"
    "\"remaining\":17,\"rv\":4,\"limits\":[{\"name\":\"per_min\",\"window_s\":60,\"limit\":5}]}";

static void test_parse_full(void)
{
    struct key_record rec;
    CU_ASSERT_EQUAL_FATAL(key_record_parse(FULL, &rec), 0);
    CU_ASSERT_TRUE(rec.found);
    CU_ASSERT_STRING_EQUAL(rec.id, "key_AbCdEfGhIjKlMnOpQrSt");
    CU_ASSERT_STRING_EQUAL(rec.owner_id, "acct_42");
    CU_ASSERT_STRING_EQUAL(rec.tier, "pro");
    CU_ASSERT_STRING_EQUAL(rec.status, "active");
    CU_ASSERT_TRUE(rec.has_expires);
    CU_ASSERT_EQUAL(rec.expires_ms, INT64_C(1900000000000));
    CU_ASSERT_TRUE(rec.has_secret_expires);
    CU_ASSERT_EQUAL(rec.secret_expires_ms, INT64_C(1800000000000));
    CU_ASSERT_TRUE(rec.has_remaining);
    CU_ASSERT_EQUAL(rec.remaining, 17);
    CU_ASSERT_EQUAL(rec.version, 3);
    CU_ASSERT_EQUAL(rec.remaining_version, 4);
    CU_ASSERT_FALSE(rec.from_local);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rec.limits);
    CU_ASSERT(json_object_is_type(rec.limits, json_type_array));
    CU_ASSERT_EQUAL(json_object_array_length(rec.limits), 1);
    json_object *l = json_object_array_get_idx(rec.limits, 0);
    CU_ASSERT_STRING_EQUAL(json_object_get_string(jsonx_get(l, "name")), "per_min");
    key_record_fini(&rec);
    CU_ASSERT_PTR_NULL(rec.limits);
    key_record_fini(&rec); /* twice is harmless */
}

static void test_parse_nulls_and_absent(void)
{
    struct key_record rec;
    CU_ASSERT_EQUAL_FATAL(key_record_parse("{\"v\":1,\"id\":\"key_x\",\"owner_id\":\"o\","
                                           "\"tier\":\"free\",\"status\":\"active\","
                                           "\"expires_ms\":null,\"secret_expires_ms\":null,"
                                           "\"remaining\":null,\"limits\":null}",
                                           &rec),
                          0);
    CU_ASSERT_TRUE(rec.found);
    CU_ASSERT_FALSE(rec.has_expires);
    CU_ASSERT_FALSE(rec.has_secret_expires);
    CU_ASSERT_FALSE(rec.has_remaining);
    CU_ASSERT_PTR_NULL(rec.limits);
    key_record_fini(&rec);

    CU_ASSERT_EQUAL_FATAL(key_record_parse("{\"id\":\"key_y\"}", &rec), 0);
    CU_ASSERT_TRUE(rec.found);
    CU_ASSERT_STRING_EQUAL(rec.id, "key_y");
    CU_ASSERT_STRING_EQUAL(rec.owner_id, "");
    CU_ASSERT_STRING_EQUAL(rec.tier, "");
    CU_ASSERT_FALSE(rec.has_expires);
    CU_ASSERT_FALSE(rec.has_remaining);
    CU_ASSERT_EQUAL(rec.version, 0);
    CU_ASSERT_EQUAL(rec.remaining_version, 0);
    CU_ASSERT_PTR_NULL(rec.limits);
    key_record_fini(&rec);
}

static void test_parse_zero_remaining(void)
{
    struct key_record rec;
    CU_ASSERT_EQUAL_FATAL(key_record_parse("{\"id\":\"k\",\"remaining\":0,\"expires_ms\":0}", &rec),
                          0);
    CU_ASSERT_TRUE(rec.has_remaining); /* zero is a value, not an absence */
    CU_ASSERT_EQUAL(rec.remaining, 0);
    CU_ASSERT_TRUE(rec.has_expires);
    CU_ASSERT_EQUAL(rec.expires_ms, 0);
    key_record_fini(&rec);
}

static void test_parse_missing(void)
{
    struct key_record rec;
    CU_ASSERT_EQUAL_FATAL(key_record_parse("{\"v\":0,\"missing\":true}", &rec), 0);
    CU_ASSERT_FALSE(rec.found);
    CU_ASSERT_STRING_EQUAL(rec.id, "");
    CU_ASSERT_PTR_NULL(rec.limits);
    key_record_fini(&rec);
}

static void test_parse_long_fields_cut(void)
{
    char owner[700];
    memset(owner, 'o', sizeof owner - 1);
    owner[sizeof owner - 1] = '\0';
    char json[900];
    snprintf(json, sizeof json, "{\"id\":\"k\",\"owner_id\":\"%s\"}", owner);
    struct key_record rec;
    CU_ASSERT_EQUAL_FATAL(key_record_parse(json, &rec), 0);
    CU_ASSERT_EQUAL(strlen(rec.owner_id), sizeof rec.owner_id - 1);
    CU_ASSERT_EQUAL(strncmp(rec.owner_id, owner, sizeof rec.owner_id - 1), 0);
    key_record_fini(&rec);
}

static void test_parse_invalid(void)
{
    static const char *const bad[] = {"", "not json", "[]", "[{\"id\":\"k\"}]", "\"s\"", "42",
                                      "null", "{\"id\":"};
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        struct key_record rec;
        int rc = key_record_parse(bad[i], &rec);
        CU_ASSERT_EQUAL(rc, -1);
        if (rc == 0)
            key_record_fini(&rec);
    }
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_parse_full),
        UNIT_TEST(test_parse_nulls_and_absent),
        UNIT_TEST(test_parse_zero_remaining),
        UNIT_TEST(test_parse_missing),
        UNIT_TEST(test_parse_long_fields_cut),
        UNIT_TEST(test_parse_invalid),
    };
    return unit_run("keystore", tests, TG_ARRAY_LEN(tests));
}
