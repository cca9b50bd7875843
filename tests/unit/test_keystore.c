/* Unit tests of keystore's record parsing: the JSON a key record is stored
 * as, the "missing" marker and malformed records. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "keystore.h"
#include "limits.h"
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
    CU_ASSERT_EQUAL(rec.status, KEY_ACTIVE);
    CU_ASSERT_TRUE(rec.has_expires);
    CU_ASSERT_EQUAL(rec.expires_ms, INT64_C(1900000000000));
    CU_ASSERT_TRUE(rec.has_secret_expires);
    CU_ASSERT_EQUAL(rec.secret_expires_ms, INT64_C(1800000000000));
    CU_ASSERT_TRUE(rec.has_remaining);
    CU_ASSERT_EQUAL(rec.remaining, 17);
    CU_ASSERT_EQUAL(rec.version, 3);
    CU_ASSERT_EQUAL(rec.remaining_version, 4);
    CU_ASSERT_FALSE(rec.from_local);
    CU_ASSERT_EQUAL_FATAL(rec.nlimits, 1);
    CU_ASSERT_STRING_EQUAL(rec.limits[0].name, "per_min");
    CU_ASSERT_EQUAL(rec.limits[0].window_s, 60);
    CU_ASSERT_EQUAL(rec.limits[0].limit, 5);
    CU_ASSERT_EQUAL(rec.limits[0].precision, LIMITS_PRECISION_DEFAULT);
    CU_ASSERT_STRING_EQUAL(rec.limits[0].endpoint, "");
    CU_ASSERT_EQUAL(key_record_size(&rec),
                    offsetof(struct key_record, limits) + sizeof(struct key_limit));
    key_record_fini(&rec);
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
    CU_ASSERT_EQUAL(rec.nlimits, 0);
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
    CU_ASSERT_EQUAL(rec.nlimits, 0);
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

/* A refill and when the balance was set; a malformed refill is refused. */
static void test_parse_refill(void)
{
    struct key_record rec;
    CU_ASSERT_EQUAL_FATAL(
        key_record_parse("{\"id\":\"k\",\"remaining\":3,\"rat\":1796342400123,"
                         "\"refill\":{\"amount\":3,\"interval\":\"month\",\"day_of_month\":5}}",
                         &rec),
        0);
    CU_ASSERT_TRUE(rec.refill.on);
    CU_ASSERT_EQUAL(rec.refill.amount, 3);
    CU_ASSERT_EQUAL(rec.refill.day_of_month, 5);
    CU_ASSERT_EQUAL(rec.remaining_set_ms, 1796342400123);
    CU_ASSERT_EQUAL_FATAL(key_record_parse("{\"id\":\"k\",\"refill\":null}", &rec), 0);
    CU_ASSERT_FALSE(rec.refill.on);
    CU_ASSERT_EQUAL(rec.remaining_set_ms, 0);
    CU_ASSERT_EQUAL(key_record_parse("{\"id\":\"k\",\"refill\":{\"amount\":3}}", &rec), -1);
}

/* per: owner marks a window shared by the owner's keys; the record carries
 * the owner's tag. */
static void test_parse_per_owner(void)
{
    struct key_record rec;
    CU_ASSERT_EQUAL_FATAL(
        key_record_parse("{\"id\":\"k\",\"owner_id\":\"abc\",\"limits\":["
                         "{\"name\":\"a\",\"window_s\":60,\"limit\":10,\"per\":\"owner\"},"
                         "{\"name\":\"b\",\"window_s\":1,\"limit\":5,\"per\":\"key\"},"
                         "{\"name\":\"c\",\"window_s\":1,\"limit\":5}]}",
                         &rec),
        0);
    CU_ASSERT_EQUAL_FATAL(rec.nlimits, 3);
    CU_ASSERT_TRUE(rec.limits[0].per_owner);
    CU_ASSERT_FALSE(rec.limits[1].per_owner);
    CU_ASSERT_FALSE(rec.limits[2].per_owner);
    CU_ASSERT_STRING_EQUAL(rec.owner_tag, "ba7816bf8f01cfea414140de5dae2223");
}

static void test_parse_missing(void)
{
    struct key_record rec;
    CU_ASSERT_EQUAL_FATAL(key_record_parse("{\"v\":0,\"missing\":true}", &rec), 0);
    CU_ASSERT_FALSE(rec.found);
    CU_ASSERT_STRING_EQUAL(rec.id, "");
    CU_ASSERT_EQUAL(rec.nlimits, 0);
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
    static const char *const bad[] = {
        "", "not json", "[]", "[{\"id\":\"k\"}]", "\"s\"", "42", "null", "{\"id\":",
        "{\"id\":\"k\",\"status\":\"sleeping\"}",
        "{\"id\":\"k\",\"limits\":[{\"window_s\":1,\"limit\":1}]}",
        "{\"id\":\"k\",\"limits\":{\"name\":\"a\"}}",
        "{\"id\":\"k\",\"limits\":[{\"name\":\"a\",\"limit\":1}]}"};
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        struct key_record rec;
        int rc = key_record_parse(bad[i], &rec);
        CU_ASSERT_EQUAL(rc, -1);
        if (rc == 0)
            key_record_fini(&rec);
    }
}

static void test_status_names(void)
{
    struct key_record rec;
    static const enum key_status all[] = {KEY_ACTIVE, KEY_SUSPENDED, KEY_REVOKED};
    for (size_t i = 0; i < TG_ARRAY_LEN(all); i++) {
        char json[80];
        snprintf(json, sizeof json, "{\"id\":\"k\",\"status\":\"%s\"}",
                 key_status_name(all[i]));
        CU_ASSERT_EQUAL_FATAL(key_record_parse(json, &rec), 0);
        CU_ASSERT_EQUAL(rec.status, all[i]);
    }
    CU_ASSERT_STRING_EQUAL(key_status_name(KEY_SUSPENDED), "suspended");
}

static void test_limits_parse(void)
{
    struct key_limit l[LIMITS_MAX];
    json_object *arr = json_tokener_parse(
        "[{\"name\":\"a\",\"window_s\":1,\"limit\":5,\"precision\":4},"
        "{\"name\":\"b\",\"window_s\":60,\"limit\":9,\"endpoint\":\"GET /x/*\"}]");
    CU_ASSERT_EQUAL_FATAL(key_limits_parse(arr, l, LIMITS_MAX), 2);
    CU_ASSERT_EQUAL(l[0].precision, 4);
    CU_ASSERT_STRING_EQUAL(l[0].endpoint, "");
    CU_ASSERT_EQUAL(l[1].precision, LIMITS_PRECISION_DEFAULT);
    CU_ASSERT_STRING_EQUAL(l[1].endpoint, "GET /x/*");
    CU_ASSERT_EQUAL(key_limits_parse(arr, l, 1), -1); /* does not fit */
    CU_ASSERT_EQUAL(key_limits_parse(NULL, l, 1), 0);
    json_object_put(arr);
}

static struct key_limit lim(const char *name, int64_t limit)
{
    struct key_limit l;
    memset(&l, 0, sizeof l);
    snprintf(l.name, sizeof l.name, "%s", name);
    l.window_s = 1;
    l.limit = limit;
    l.precision = LIMITS_PRECISION_DEFAULT;
    return l;
}

static void test_limits_merge(void)
{
    struct key_limit base[] = {lim("a", 1), lim("b", 2), lim("c", 3)};
    struct key_limit over[] = {lim("z", 26), lim("b", 20)};
    struct key_limit out[KEY_LIMITS_MAX];
    /* The base's order, overridden by name, then the new names. */
    CU_ASSERT_EQUAL_FATAL(key_limits_merge(base, 3, over, 2, out), 4);
    CU_ASSERT_STRING_EQUAL(out[0].name, "a");
    CU_ASSERT_EQUAL(out[1].limit, 20);
    CU_ASSERT_STRING_EQUAL(out[2].name, "c");
    CU_ASSERT_STRING_EQUAL(out[3].name, "z");
    CU_ASSERT_EQUAL(key_limits_merge(NULL, 0, over, 2, out), 2);
    CU_ASSERT_EQUAL(key_limits_merge(base, 3, NULL, 0, out), 3);
    /* 16 and 16 distinct: all 32 kept, none dropped. */
    struct key_limit many1[LIMITS_MAX], many2[LIMITS_MAX];
    for (int i = 0; i < LIMITS_MAX; i++) {
        char n[8];
        snprintf(n, sizeof n, "t%d", i);
        many1[i] = lim(n, i + 1);
        snprintf(n, sizeof n, "k%d", i);
        many2[i] = lim(n, i + 1);
    }
    CU_ASSERT_EQUAL(key_limits_merge(many1, LIMITS_MAX, many2, LIMITS_MAX, out), KEY_LIMITS_MAX);
}

static void test_cold_cache(void)
{
    struct keystore *ks = keystore_new(NULL, NULL, 1000);
    CU_ASSERT_EQUAL(keystore_cached(ks), 0);
    keystore_forget(ks, "nothing"); /* harmless on a cold cache */
    CU_ASSERT_EQUAL(keystore_cached(ks), 0);
    keystore_free(ks);
    keystore_free(NULL);
}

/* The Redis record of a secret's hash: the name every process shares. */
static void test_redis_key(void)
{
    char rk[80];
    keystore_redis_key("00ff", rk);
    CU_ASSERT_STRING_EQUAL(rk, "tg:kr:00ff");
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_parse_full),
        UNIT_TEST(test_redis_key),
        UNIT_TEST(test_parse_nulls_and_absent),
        UNIT_TEST(test_parse_zero_remaining),
        UNIT_TEST(test_parse_refill),
        UNIT_TEST(test_parse_per_owner),
        UNIT_TEST(test_parse_missing),
        UNIT_TEST(test_parse_long_fields_cut),
        UNIT_TEST(test_parse_invalid),
        UNIT_TEST(test_status_names),
        UNIT_TEST(test_limits_parse),
        UNIT_TEST(test_limits_merge),
        UNIT_TEST(test_cold_cache),
    };
    return unit_run("keystore", tests, TG_ARRAY_LEN(tests));
}
