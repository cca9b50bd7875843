/* Unit tests of auth's pure parts: role bits, the Bearer credential, the
 * owner scope, token lifetimes, and the refusals that happen before any
 * store is consulted. */
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
    CU_ASSERT_EQUAL(auth_role_bit("owner"), ROLE_OWNER);
    /* Distinct single bits that together make ROLES_ANY. */
    unsigned all = 0;
    static const char *const names[] = {"admin", "operator", "billing", "viewer", "service",
                                        "owner"};
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
    CU_ASSERT_EQUAL(auth_role_bit("Owner"), 0);
    CU_ASSERT_EQUAL(auth_role_bit("owners"), 0);
}

static struct principal principal(const char *role, const char *owner)
{
    struct principal p;
    memset(&p, 0, sizeof p);
    strlcpy_tg(p.role, role, sizeof p.role);
    p.role_bit = auth_role_bit(role);
    strlcpy_tg(p.owner_id, owner, sizeof p.owner_id);
    return p;
}

static void test_owner_scope(void)
{
    struct principal own = principal("owner", "acct_42");
    CU_ASSERT_STRING_EQUAL(auth_owner_scope(&own), "acct_42");
    CU_ASSERT(auth_sees_owner(&own, "acct_42"));
    CU_ASSERT(!auth_sees_owner(&own, "acct_43"));
    CU_ASSERT(!auth_sees_owner(&own, "acct_4"));
    CU_ASSERT(!auth_sees_owner(&own, "acct_42 "));
    CU_ASSERT(!auth_sees_owner(&own, ""));
    CU_ASSERT(!auth_sees_owner(&own, NULL));
    /* Every other role is unscoped, whatever its owner_id field holds. */
    static const char *const others[] = {"admin", "operator", "billing", "viewer", "service"};
    for (size_t i = 0; i < TG_ARRAY_LEN(others); i++) {
        struct principal p = principal(others[i], "acct_42");
        CU_ASSERT_PTR_NULL(auth_owner_scope(&p));
        CU_ASSERT(auth_sees_owner(&p, "acct_43"));
        CU_ASSERT(auth_sees_owner(&p, NULL));
    }
}

static void test_expired(void)
{
    struct principal p = principal("viewer", "");
    CU_ASSERT(!auth_expired(&p, 0));
    CU_ASSERT(!auth_expired(&p, INT64_MAX));
    p.has_expires = true;
    p.expires_ms = 1800000000000;
    CU_ASSERT(!auth_expired(&p, 1799999999999));
    /* Refused from the instant itself on. */
    CU_ASSERT(auth_expired(&p, 1800000000000));
    CU_ASSERT(auth_expired(&p, 1800000000001));
}

static void test_token_binding(void)
{
    struct api_error e;
    CU_ASSERT_EQUAL(auth_token_binding("owner", true, true, &e), 0);
    CU_ASSERT_EQUAL(auth_token_binding("owner", false, true, &e), -1);
    CU_ASSERT_EQUAL(e.code, ERR_MISSING_FIELD);
    CU_ASSERT_STRING_EQUAL(e.field, "owner_id");
    CU_ASSERT_EQUAL(auth_token_binding("owner", true, false, &e), -1);
    CU_ASSERT_EQUAL(e.code, ERR_MISSING_FIELD);
    CU_ASSERT_STRING_EQUAL(e.field, "tier");
    CU_ASSERT_EQUAL(auth_token_binding("owner", false, false, &e), -1);
    CU_ASSERT_STRING_EQUAL(e.field, "owner_id");
    static const char *const others[] = {"admin", "operator", "billing", "viewer", "service"};
    for (size_t i = 0; i < TG_ARRAY_LEN(others); i++) {
        CU_ASSERT_EQUAL(auth_token_binding(others[i], false, false, &e), 0);
        CU_ASSERT_EQUAL(auth_token_binding(others[i], true, false, &e), -1);
        CU_ASSERT_EQUAL(e.code, ERR_INVALID_ARGUMENT);
        CU_ASSERT_STRING_EQUAL(e.field, "owner_id");
        CU_ASSERT_EQUAL(auth_token_binding(others[i], false, true, &e), -1);
        CU_ASSERT_EQUAL(e.code, ERR_INVALID_ARGUMENT);
        CU_ASSERT_STRING_EQUAL(e.field, "tier");
    }
}

static void test_token_expiry(void)
{
    const int64_t now = 1796083200000; /* 2026-12-01T00:00:00Z */
    struct api_error e;
    int64_t ms = -1;
    CU_ASSERT_EQUAL(auth_token_expiry("2027-01-01T00:00:00Z", now, &ms, &e), 0);
    CU_ASSERT_EQUAL(ms, 1798761600000);
    CU_ASSERT_EQUAL(auth_token_expiry("2026-12-01T00:00:00.001Z", now, &ms, &e), 0);
    CU_ASSERT_EQUAL(ms, now + 1);
    CU_ASSERT_EQUAL(auth_token_expiry("2026-12-01T01:00:00+01:00", now, &ms, &e), -1);
    CU_ASSERT_STRING_EQUAL(e.message, "expires_at is in the past.");
    /* Now itself, the past, too far ahead, and what is not a time. */
    static const char *const bad[] = {
        "2026-12-01T00:00:00.000Z", "2026-11-30T23:59:59Z", "1970-01-01T00:00:00Z",
        "2031-12-31T00:00:00Z",     "2027-01-01",           "tomorrow",
        "",                         "2027-13-01T00:00:00Z", "2027-01-01T00:00:00",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        ms = -1;
        memset(&e, 0, sizeof e);
        CU_ASSERT_EQUAL(auth_token_expiry(bad[i], now, &ms, &e), -1);
        CU_ASSERT_EQUAL(ms, -1);
        CU_ASSERT_EQUAL(e.code, ERR_INVALID_ARGUMENT);
        CU_ASSERT_STRING_EQUAL(e.field, "expires_at");
    }
    CU_ASSERT_EQUAL(auth_token_expiry(NULL, now, &ms, &e), -1);
    /* The bound is inclusive. */
    char at[TG_TIME_LEN];
    format_time_ms(now + AUTH_TOKEN_LIFE_MAX_MS, at);
    CU_ASSERT_EQUAL(auth_token_expiry(at, now, &ms, &e), 0);
    format_time_ms(now + AUTH_TOKEN_LIFE_MAX_MS + 1, at);
    CU_ASSERT_EQUAL(auth_token_expiry(at, now, &ms, &e), -1);
}

static void test_duration(void)
{
    int64_t ms = -1;
    CU_ASSERT_EQUAL(auth_duration_ms("30d", &ms), 0);
    CU_ASSERT_EQUAL(ms, 30LL * 86400000);
    CU_ASSERT_EQUAL(auth_duration_ms("12h", &ms), 0);
    CU_ASSERT_EQUAL(ms, 12LL * 3600000);
    CU_ASSERT_EQUAL(auth_duration_ms("90m", &ms), 0);
    CU_ASSERT_EQUAL(ms, 90LL * 60000);
    CU_ASSERT_EQUAL(auth_duration_ms("1s", &ms), 0);
    CU_ASSERT_EQUAL(ms, 1000);
    static const char *const bad[] = {
        "", "d", "30", "0d", "-1d", "+1d", "1.5h", "30 d", " 30d", "30D", "30w", "1d1h",
        "99999999999999999d", "0x10s",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        ms = -1;
        CU_ASSERT_EQUAL(auth_duration_ms(bad[i], &ms), -1);
        CU_ASSERT_EQUAL(ms, -1);
    }
    CU_ASSERT_EQUAL(auth_duration_ms(NULL, &ms), -1);
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
        UNIT_TEST(test_owner_scope),
        UNIT_TEST(test_expired),
        UNIT_TEST(test_token_binding),
        UNIT_TEST(test_token_expiry),
        UNIT_TEST(test_duration),
        UNIT_TEST(test_bearer_ok),
        UNIT_TEST(test_bearer_rejects),
        UNIT_TEST(test_bearer_size),
        UNIT_TEST(test_authenticate_refuses_early),
    };
    return unit_run("auth", tests, TG_ARRAY_LEN(tests));
}
