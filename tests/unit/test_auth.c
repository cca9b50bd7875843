/* Unit tests of auth's pure parts: role bits, the Bearer credential, and the
 * refusals that happen before any store is consulted. */
#include <string.h>

#include "app.h"
#include "auth.h"
#include "unit.h"

static void test_role_bits(void)
{
    CU_ASSERT_EQUAL(auth_role_bit("admin"), ROLE_ADMIN);
    CU_ASSERT_EQUAL(auth_role_bit("operator"), ROLE_OPERATOR);
    CU_ASSERT_EQUAL(auth_role_bit("billing"), ROLE_BILLING);
    CU_ASSERT_EQUAL(auth_role_bit("viewer"), ROLE_VIEWER);
    CU_ASSERT_EQUAL(auth_role_bit("service"), ROLE_SERVICE);
    /* Distinct single bits that together make ROLES_ANY. */
    unsigned all = 0;
    static const char *const names[] = {"admin", "operator", "billing", "viewer", "service"};
    for (size_t i = 0; i < TG_ARRAY_LEN(names); i++) {
        unsigned b = auth_role_bit(names[i]);
        CU_ASSERT(b != 0 && (b & (b - 1)) == 0);
        CU_ASSERT_EQUAL(all & b, 0);
        all |= b;
    }
    CU_ASSERT_EQUAL(all, ROLES_ANY);
}

static void test_role_unknown(void)
{
    CU_ASSERT_EQUAL(auth_role_bit(""), 0);
    CU_ASSERT_EQUAL(auth_role_bit("Admin"), 0);
    CU_ASSERT_EQUAL(auth_role_bit("root"), 0);
    CU_ASSERT_EQUAL(auth_role_bit("admin "), 0);
    CU_ASSERT_EQUAL(auth_role_bit("adm"), 0);
}

static void test_bearer_ok(void)
{
    char out[64];
    CU_ASSERT_EQUAL(auth_bearer("Bearer tgadm_abc", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "tgadm_abc");
    CU_ASSERT_EQUAL(auth_bearer("bearer tok", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "tok");
    CU_ASSERT_EQUAL(auth_bearer("BEARER tok", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "tok");
    CU_ASSERT_EQUAL(auth_bearer("Bearer    tok   ", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "tok");
}

static void test_bearer_rejects(void)
{
    static const char *const bad[] = {
        "", "Bearer", "Bearer ", "Bearer     ", "Bearertok", "Basic dXNlcjpwYXNz",
        "Token tok", " Bearer tok", "Bear tok",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        char out[64] = "unchanged";
        CU_ASSERT_EQUAL(auth_bearer(bad[i], out, sizeof out), -1);
        CU_ASSERT_STRING_EQUAL(out, "unchanged");
    }
    char out[8];
    CU_ASSERT_EQUAL(auth_bearer(NULL, out, sizeof out), -1);
}

static void test_bearer_size(void)
{
    char out[11];
    CU_ASSERT_EQUAL(auth_bearer("Bearer 0123456789", out, sizeof out), 0); /* 10 + NUL */
    CU_ASSERT_STRING_EQUAL(out, "0123456789");
    CU_ASSERT_EQUAL(auth_bearer("Bearer 0123456789a", out, sizeof out), -1); /* 11: too long */
    CU_ASSERT_EQUAL(auth_bearer("Bearer x", out, 1), -1);
}

/* Runs auth_authenticate on a request carrying only envp. */
static int authenticate(char **envp, struct api_error *e)
{
    static struct app app;
    app.cfg.secrets.n = 1;
    app.cfg.secrets.id[0] = (char *)"1";
    app.cfg.secrets.secret[0] = (char *)"unit-secret";
    struct http_req r;
    memset(&r, 0, sizeof r);
    r.app = &app;
    r.env = envp;
    memset(e, 0, sizeof *e);
    return auth_authenticate(&r, e);
}

static void test_authenticate_refuses_early(void)
{
    struct api_error e;
    /* Refusals that need no store: no header, another scheme, a malformed
     * token, a key of another prefix. */
    CU_ASSERT_EQUAL(authenticate(NULL, &e), -1);
    CU_ASSERT_EQUAL(err_http_status(e.code), 401);
    CU_ASSERT_STRING_EQUAL(err_name(e.code), "unauthenticated");
    static const char *const headers[] = {
        "HTTP_AUTHORIZATION=Basic dXNlcjpwYXNz",
        "HTTP_AUTHORIZATION=Bearer not-a-token",
        "HTTP_AUTHORIZATION=Bearer tgadm_abcdefghijklmnopqrstuvxrrU8X", /* bad checksum */
        "HTTP_AUTHORIZATION=Bearer tg_000000000000000000000021qLQd",    /* a key, not a token */
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(headers); i++) {
        char *envp[] = {(char *)headers[i], NULL};
        CU_ASSERT_EQUAL(authenticate(envp, &e), -1);
        CU_ASSERT_EQUAL(err_http_status(e.code), 401);
        CU_ASSERT_STRING_EQUAL(err_name(e.code), "unauthenticated");
    }
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_role_bits),
        UNIT_TEST(test_role_unknown),
        UNIT_TEST(test_bearer_ok),
        UNIT_TEST(test_bearer_rejects),
        UNIT_TEST(test_bearer_size),
        UNIT_TEST(test_authenticate_refuses_early),
    };
    return unit_run("auth", tests, TG_ARRAY_LEN(tests));
}
