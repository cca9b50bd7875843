/* Unit tests of audit's chain links, against values computed independently
 * (Python's hashlib and hmac).  Appending and verifying run against
 * PostgreSQL in the integration suite (itest audit). */
#include "audit.h"
#include "unit.h"

#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

static void test_unkeyed_link(void)
{
    char out[65];
    audit_link(NULL, ZEROS, "[1,\"aud_1\"]", out);
    CU_ASSERT_STRING_EQUAL(out, "bb5b3e3b0b9ea27087151db718242e372c51375d4cc9c190cfdb37c1833526f0");
}

/* HMAC-SHA-256 under HMAC-SHA-256(secret, "\0audit\0") in hex. */
static void test_keyed_link(void)
{
    char out[65], other[65];
    audit_link("unit-secret", ZEROS, "[1,\"aud_1\"]", out);
    CU_ASSERT_STRING_EQUAL(out, "a187c6f6cfe0a96d0f22e2f15578fba9d41e9d7c1da159a874217775698e42ee");
    audit_link("other-secret", ZEROS, "[1,\"aud_1\"]", other);
    CU_ASSERT_STRING_NOT_EQUAL(out, other);
    audit_link("unit-secret", ZEROS, "[1,\"aud_2\"]", other);
    CU_ASSERT_STRING_NOT_EQUAL(out, other);
}

/* HMAC-SHA-256 under HMAC-SHA-256(secret, "\0audit-personal\0"), over the
 * nonce then the personal text: never the link of the same text. */
static void test_personal_mac(void)
{
    char out[65], other[65], link[65];
    const char *nonce = "00112233445566778899aabbccddeeff";
    const char *text = "[\"acct_1\", \"10.0.0.1\", null]";
    audit_personal_mac("unit-secret", nonce, text, out);
    CU_ASSERT_STRING_EQUAL(out, "38f358e81fcba5fa203133be9159bbf527d82dc23e5aadb59ac8055b851c8825");
    audit_personal_mac("unit-secret", "ffeeddccbbaa99887766554433221100", text, other);
    CU_ASSERT_STRING_NOT_EQUAL(out, other);
    audit_personal_mac("other-secret", nonce, text, other);
    CU_ASSERT_STRING_NOT_EQUAL(out, other);
    audit_link("unit-secret", nonce, text, link);
    CU_ASSERT_STRING_NOT_EQUAL(out, link);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_unkeyed_link),
        UNIT_TEST(test_keyed_link),
        UNIT_TEST(test_personal_mac),
    };
    return unit_run("audit", tests, TG_ARRAY_LEN(tests));
}
