/* Unit tests of keys: the key format, its checksum, the displayable start,
 * the keyed hash and opaque ids. */
#include <string.h>

#include "keys.h"
#include "unit.h"

/* Keys computed independently: prefix, '_', the 22-character secret and the
 * first 8 bytes of HMAC-SHA-256(SECRET, "\0check\0" || both) written as 6
 * base62 digits, most significant first. */
#define SECRET "unit-secret"
#define KNOWN_TG "tg_000000000000000000000021qLQd"
#define KNOWN_ADM "tgadm_abcdefghijklmnopqrstuvxrrU8T"

static const char *const PREFIXES[] = {"tg", "tgadm", "a", "9", "acme2", "0123456789abcdef"};

/* 32 hex characters, a function of the owner id alone. */
static void test_owner_tag(void)
{
    char a[KEYS_OWNER_TAG_LEN], b[KEYS_OWNER_TAG_LEN];
    keys_owner_tag("acct_42", a);
    keys_owner_tag("acct_42", b);
    CU_ASSERT_STRING_EQUAL(a, b);
    CU_ASSERT_EQUAL(strlen(a), 32);
    CU_ASSERT_EQUAL(strspn(a, "0123456789abcdef"), 32);
    /* SHA-256("abc") begins ba7816bf8f01cfea414140de5dae2223 */
    keys_owner_tag("abc", a);
    CU_ASSERT_STRING_EQUAL(a, "ba7816bf8f01cfea414140de5dae2223");
    keys_owner_tag("acct_{}", b);
    CU_ASSERT_PTR_NULL(strpbrk(b, "{}"));
}

static void test_prefix_valid(void)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(PREFIXES); i++)
        CU_ASSERT_TRUE(keys_prefix_valid(PREFIXES[i]));
    CU_ASSERT_FALSE(keys_prefix_valid(""));
    CU_ASSERT_FALSE(keys_prefix_valid("0123456789abcdefg")); /* 17 */
    CU_ASSERT_FALSE(keys_prefix_valid("TG"));
    CU_ASSERT_FALSE(keys_prefix_valid("t_g"));
    CU_ASSERT_FALSE(keys_prefix_valid("t-g"));
    CU_ASSERT_FALSE(keys_prefix_valid("t g"));
    CU_ASSERT_FALSE(keys_prefix_valid("caf\xC3\xA9"));
}

static void test_known_keys(void)
{
    char prefix[KEYS_PREFIX_MAX + 1];
    CU_ASSERT_TRUE(keys_parse(SECRET, KNOWN_TG, strlen(KNOWN_TG), prefix));
    CU_ASSERT_STRING_EQUAL(prefix, "tg");
    CU_ASSERT_TRUE(keys_parse(SECRET, KNOWN_ADM, strlen(KNOWN_ADM), prefix));
    CU_ASSERT_STRING_EQUAL(prefix, KEYS_TOKEN_PREFIX);
    CU_ASSERT_TRUE(keys_parse(SECRET, KNOWN_TG, strlen(KNOWN_TG), NULL));
}

static void test_generate_parse_round_trip(void)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(PREFIXES); i++) {
        for (int round = 0; round < 50; round++) {
            char key[KEYS_MAX_LEN];
            char prefix[KEYS_PREFIX_MAX + 1] = "";
            size_t p = strlen(PREFIXES[i]);
            keys_generate(SECRET, PREFIXES[i], key);
            CU_ASSERT_EQUAL(strlen(key), p + 1 + KEYS_SECRET_LEN + KEYS_CHECKSUM_LEN);
            CU_ASSERT_EQUAL(strncmp(key, PREFIXES[i], p), 0);
            CU_ASSERT_EQUAL(key[p], '_');
            CU_ASSERT_EQUAL(strspn(key + p + 1, BASE62), KEYS_SECRET_LEN + KEYS_CHECKSUM_LEN);
            CU_ASSERT_TRUE(keys_parse(SECRET, key, strlen(key), prefix));
            CU_ASSERT_STRING_EQUAL(prefix, PREFIXES[i]);
        }
    }
    /* The longest key fills KEYS_MAX_LEN exactly. */
    char key[KEYS_MAX_LEN];
    keys_generate(SECRET, "0123456789abcdef", key);
    CU_ASSERT_EQUAL(strlen(key) + 1, KEYS_MAX_LEN);
}

/* The check is keyed: the same key under another secret is no key, and a
 * checksum-valid key cannot be made without the secret. */
static void test_checksum_keyed(void)
{
    CU_ASSERT_FALSE(keys_parse("other-secret", KNOWN_TG, strlen(KNOWN_TG), NULL));
    char key[KEYS_MAX_LEN];
    keys_generate("other-secret", "tg", key);
    CU_ASSERT_TRUE(keys_parse("other-secret", key, strlen(key), NULL));
    CU_ASSERT_FALSE(keys_parse(SECRET, key, strlen(key), NULL));
    /* 10,000 random bodies with random check characters: none passes */
    int passed = 0;
    for (int i = 0; i < 10000; i++) {
        memcpy(key, "tg_", 3);
        random_base62(key + 3, KEYS_SECRET_LEN + KEYS_CHECKSUM_LEN);
        key[3 + KEYS_SECRET_LEN + KEYS_CHECKSUM_LEN] = '\0';
        passed += keys_parse(SECRET, key, strlen(key), NULL);
    }
    CU_ASSERT_EQUAL(passed, 0);
}

/* Each secret of a set verifies the keys made under it, and says which. */
static void test_verify_secret_set(void)
{
    struct config_secrets set = {3,
                                 {(char *)"new", (char *)"old", (char *)"older"},
                                 {(char *)"new-secret", (char *)SECRET, (char *)"older-secret"}};
    char key[KEYS_MAX_LEN], prefix[KEYS_PREFIX_MAX + 1];
    CU_ASSERT_EQUAL(keys_verify(&set, KNOWN_TG, strlen(KNOWN_TG), prefix), 1);
    CU_ASSERT_STRING_EQUAL(prefix, "tg");
    keys_generate("new-secret", "tg", key);
    CU_ASSERT_EQUAL(keys_verify(&set, key, strlen(key), NULL), 0);
    keys_generate("older-secret", "tgadm", key);
    CU_ASSERT_EQUAL(keys_verify(&set, key, strlen(key), NULL), 2);
    keys_generate("retired-secret", "tg", key);
    CU_ASSERT_EQUAL(keys_verify(&set, key, strlen(key), NULL), -1);
    set.n = 1; /* "old" retired: its keys are no keys */
    CU_ASSERT_EQUAL(keys_verify(&set, KNOWN_TG, strlen(KNOWN_TG), NULL), -1);
}

static void test_generate_unique(void)
{
    char a[KEYS_MAX_LEN], b[KEYS_MAX_LEN];
    keys_generate(SECRET, "tg", a);
    keys_generate(SECRET, "tg", b);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
}

/* A base62 character different from c. */
static char other(char c)
{
    return c == 'x' ? 'y' : 'x';
}

static void test_flipped_character(void)
{
    static const char *const keys[] = {KNOWN_TG, KNOWN_ADM};
    for (size_t k = 0; k < TG_ARRAY_LEN(keys); k++) {
        size_t len = strlen(keys[k]);
        for (size_t i = 0; i < len; i++) {
            if (keys[k][i] == '_')
                continue;
            char copy[KEYS_MAX_LEN];
            memcpy(copy, keys[k], len + 1);
            copy[i] = other(copy[i]); /* still a valid prefix or base62 character */
            CU_ASSERT_FALSE(keys_parse(SECRET, copy, len, NULL));
        }
    }
    /* Case matters: base62 is case-sensitive. */
    char copy[] = KNOWN_TG;
    copy[30] = 'D'; /* 'd' -> 'D' */
    CU_ASSERT_FALSE(keys_parse(SECRET, copy, strlen(copy), NULL));
    /* Two swapped characters of the secret. */
    char swapped[] = KNOWN_ADM;
    swapped[6] = 'b';
    swapped[7] = 'a';
    CU_ASSERT_FALSE(keys_parse(SECRET, swapped, strlen(swapped), NULL));
}

static void test_wrong_length(void)
{
    char key[KEYS_MAX_LEN + 2];
    strcpy(key, KNOWN_TG);
    size_t len = strlen(key);
    CU_ASSERT_FALSE(keys_parse(SECRET, key, len - 1, NULL));
    strcat(key, "A");
    CU_ASSERT_FALSE(keys_parse(SECRET, key, len + 1, NULL));
    CU_ASSERT_FALSE(keys_parse(SECRET, "", 0, NULL));
    CU_ASSERT_FALSE(keys_parse(SECRET, "tg_", 3, NULL));
}

/* Keys whose checksum is right but whose prefix is not: only the format
 * check can refuse them. */
static void test_bad_prefix_good_checksum(void)
{
    static const char *const keys[] = {
        "_0000000000000000000000dEPQyN",                  /* empty prefix */
        "abcdefghijklmnopq_00000000000000000000008n9JmR", /* 17 characters */
        "TG_0000000000000000000000l25lot",                /* upper case */
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(keys); i++)
        CU_ASSERT_FALSE(keys_parse(SECRET, keys[i], strlen(keys[i]), NULL));
}

/* KNOWN_TG with character i replaced by c, in out. */
static size_t known_with(size_t i, char c, char out[KEYS_MAX_LEN])
{
    strcpy(out, KNOWN_TG);
    out[i] = c;
    return strlen(KNOWN_TG);
}

static void test_malformed(void)
{
    char prefix[KEYS_PREFIX_MAX + 1] = "unchanged";
    char k[KEYS_MAX_LEN];
    CU_ASSERT_EQUAL(strlen(KNOWN_TG), 2 + 1 + KEYS_SECRET_LEN + KEYS_CHECKSUM_LEN);
    size_t len = known_with(2, '0', k); /* no underscore */
    CU_ASSERT_FALSE(keys_parse(SECRET, k, len, prefix));
    len = known_with(0, '_', k); /* "__": empty prefix */
    CU_ASSERT_FALSE(keys_parse(SECRET, k + 1, len - 1, prefix));
    len = known_with(0, 'T', k); /* upper-case prefix */
    CU_ASSERT_FALSE(keys_parse(SECRET, k, len, prefix));
    len = known_with(10, '-', k); /* not base62 */
    CU_ASSERT_FALSE(keys_parse(SECRET, k, len, prefix));
    len = known_with(10, '_', k); /* a second underscore */
    CU_ASSERT_FALSE(keys_parse(SECRET, k, len, prefix));
    len = known_with(10, '\0', k); /* NUL inside the given length */
    CU_ASSERT_FALSE(keys_parse(SECRET, k, len, prefix));
    len = known_with(28, '+', k);
    CU_ASSERT_FALSE(keys_parse(SECRET, k, len, prefix));
    CU_ASSERT_STRING_EQUAL(prefix, "unchanged"); /* untouched on failure */
}

static void test_start(void)
{
    char out[KEYS_PREFIX_MAX + 6];
    keys_start(KNOWN_TG, out);
    CU_ASSERT_STRING_EQUAL(out, "tg_0000");
    keys_start(KNOWN_ADM, out);
    CU_ASSERT_STRING_EQUAL(out, "tgadm_abcd");
    char key[KEYS_MAX_LEN];
    keys_generate(SECRET, "0123456789abcdef", key);
    keys_start(key, out);
    CU_ASSERT_EQUAL(strlen(out), 16 + 1 + 4);
    CU_ASSERT_EQUAL(strncmp(out, key, 21), 0);
    keys_start("tg_ab", out); /* short input: what there is */
    CU_ASSERT_STRING_EQUAL(out, "tg_ab");
    keys_start("nounderscore", out);
    CU_ASSERT_STRING_EQUAL(out, "");
}

static void test_hash_known_vectors(void)
{
    char out[KEYS_HASH_HEX_LEN];
    /* RFC 4231 test case 2. */
    static const char data2[] = "what do ya want for nothing?";
    keys_hash_hex("Jefe", data2, sizeof data2 - 1, out);
    CU_ASSERT_STRING_EQUAL(out,
                           "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* RFC 4231 test case 1: a key of 20 bytes 0x0b. */
    char key1[21];
    memset(key1, 0x0b, 20);
    key1[20] = '\0';
    keys_hash_hex(key1, "Hi There", 8, out);
    CU_ASSERT_STRING_EQUAL(out,
                           "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    CU_ASSERT_EQUAL(strlen(out) + 1, KEYS_HASH_HEX_LEN);
}

static void test_hash_properties(void)
{
    char a[KEYS_HASH_HEX_LEN], b[KEYS_HASH_HEX_LEN];
    keys_hash_hex("secret-one", KNOWN_TG, strlen(KNOWN_TG), a);
    keys_hash_hex("secret-one", KNOWN_TG, strlen(KNOWN_TG), b);
    CU_ASSERT_STRING_EQUAL(a, b); /* deterministic */
    CU_ASSERT_EQUAL(strspn(a, "0123456789abcdef"), 64);
    keys_hash_hex("secret-two", KNOWN_TG, strlen(KNOWN_TG), b);
    CU_ASSERT_STRING_NOT_EQUAL(a, b); /* keyed */
    keys_hash_hex("secret-one", KNOWN_ADM, strlen(KNOWN_ADM), b);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    /* keylen bounds the input. */
    keys_hash_hex("k", "abcdef", 3, a);
    keys_hash_hex("k", "abc", 3, b);
    CU_ASSERT_STRING_EQUAL(a, b);
}

static void test_new_id(void)
{
    char a[KEYS_ID_MAX], b[KEYS_ID_MAX];
    keys_new_id("key", a);
    keys_new_id("key", b);
    CU_ASSERT_EQUAL(strlen(a), 4 + 20);
    CU_ASSERT_EQUAL(strncmp(a, "key_", 4), 0);
    CU_ASSERT_EQUAL(strspn(a + 4, BASE62), 20);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    keys_new_id("tier", a);
    CU_ASSERT_EQUAL(strncmp(a, "tier_", 5), 0);
    CU_ASSERT_EQUAL(strlen(a), 5 + 20);
    /* A tag too long for the buffer is cut, never overflowed. */
    char tag[60];
    memset(tag, 't', sizeof tag - 1);
    tag[sizeof tag - 1] = '\0';
    keys_new_id(tag, a);
    CU_ASSERT_EQUAL(strlen(a), KEYS_ID_MAX - 1);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_prefix_valid),
        UNIT_TEST(test_owner_tag),
        UNIT_TEST(test_known_keys),
        UNIT_TEST(test_generate_parse_round_trip),
        UNIT_TEST(test_checksum_keyed),
        UNIT_TEST(test_verify_secret_set),
        UNIT_TEST(test_generate_unique),
        UNIT_TEST(test_flipped_character),
        UNIT_TEST(test_wrong_length),
        UNIT_TEST(test_bad_prefix_good_checksum),
        UNIT_TEST(test_malformed),
        UNIT_TEST(test_start),
        UNIT_TEST(test_hash_known_vectors),
        UNIT_TEST(test_hash_properties),
        UNIT_TEST(test_new_id),
    };
    return unit_run("keys", tests, TG_ARRAY_LEN(tests));
}
