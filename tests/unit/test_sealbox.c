#include <string.h>

#include "sealbox.h"
#include "unit.h"

static struct config_secrets two(void)
{
    struct config_secrets s = {.n = 2};
    s.id[0] = "2";
    s.secret[0] = "current-secret-of-at-least-32-bytes!!";
    s.id[1] = "1";
    s.secret[1] = "previous-secret-of-at-least-32-bytes!";
    return s;
}

static void test_round_trip(void)
{
    struct config_secrets s = two();
    struct strbuf sealed = {0}, plain = {0};
    struct api_error e;
    sealbox_seal(&s, "whsec_0123456789abcdef", 22, &sealed);
    CU_ASSERT_EQUAL(strncmp(sealed.p, "2:", 2), 0);
    CU_ASSERT_PTR_NULL(strstr(sealed.p, "whsec")); /* not in clear */
    CU_ASSERT_EQUAL_FATAL(sealbox_open(&s, sealed.p, &plain, &e), 0);
    CU_ASSERT_STRING_EQUAL(plain.p, "whsec_0123456789abcdef");
    /* Sealed twice: different nonces, different texts. */
    struct strbuf again = {0};
    sealbox_seal(&s, "whsec_0123456789abcdef", 22, &again);
    CU_ASSERT_STRING_NOT_EQUAL(again.p, sealed.p);
    strbuf_fini(&again);
    strbuf_fini(&sealed);
    strbuf_fini(&plain);
}

static void test_rotation(void)
{
    struct config_secrets old = {.n = 1}, s = two();
    old.id[0] = "1";
    old.secret[0] = s.secret[1];
    struct strbuf sealed = {0}, plain = {0};
    struct api_error e;
    sealbox_seal(&old, "s3cret-s3cret-s3cret", 20, &sealed);
    CU_ASSERT_EQUAL(sealbox_open(&s, sealed.p, &plain, &e), 0); /* via hmac_previous */
    CU_ASSERT_STRING_EQUAL(plain.p, "s3cret-s3cret-s3cret");
    struct config_secrets other = {.n = 1};
    other.id[0] = "9";
    other.secret[0] = s.secret[0];
    CU_ASSERT_NOT_EQUAL(sealbox_open(&other, sealed.p, &plain, &e), 0); /* unknown id */
    strbuf_fini(&sealed);
    strbuf_fini(&plain);
}

static void test_tampered(void)
{
    struct config_secrets s = two();
    struct strbuf sealed = {0}, plain = {0};
    struct api_error e;
    sealbox_seal(&s, "abcdefghijklmnop", 16, &sealed);
    char *t = xstrdup(sealed.p);
    size_t n = strlen(t);
    t[n - 40] = t[n - 40] == '0' ? '1' : '0';
    CU_ASSERT_NOT_EQUAL(sealbox_open(&s, t, &plain, &e), 0);
    CU_ASSERT_NOT_EQUAL(sealbox_open(&s, "2:zz", &plain, &e), 0);
    CU_ASSERT_NOT_EQUAL(sealbox_open(&s, "no colon", &plain, &e), 0);
    CU_ASSERT_NOT_EQUAL(sealbox_open(&s, "2:0123", &plain, &e), 0);
    free(t);
    strbuf_fini(&sealed);
    strbuf_fini(&plain);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_round_trip),
        UNIT_TEST(test_rotation),
        UNIT_TEST(test_tampered),
    };
    return unit_run("sealbox", tests, sizeof tests / sizeof tests[0]);
}
