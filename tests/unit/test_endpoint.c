/* Unit tests of endpoint: one normal form per resource (RFC 3986 section 6),
 * refusals instead of guesses, and pattern matching. */
#include "endpoint.h"
#include "unit.h"
#include "util.h"

static void expect_request(const char *method, const char *path, const char *want)
{
    char out[ENDPOINT_MAX + 1];
    enum endpoint_status st = endpoint_from_request(method, path, out);
    CU_ASSERT_EQUAL(st, ENDPOINT_OK);
    CU_ASSERT_STRING_EQUAL(out, want);
    if (st != ENDPOINT_OK || strcmp(out, want) != 0)
        fprintf(stderr, "\n  %s %s -> %d \"%s\", want \"%s\"\n", method, path, st, out, want);
}

static void expect_refused(const char *method, const char *path, enum endpoint_status want)
{
    char out[ENDPOINT_MAX + 1];
    enum endpoint_status st = endpoint_from_request(method, path, out);
    CU_ASSERT_EQUAL(st, want);
    CU_ASSERT_STRING_EQUAL(out, "");
    if (st != want)
        fprintf(stderr, "\n  %s %s -> %d, want %d\n", method, path, st, want);
}

/* Every spelling of /protected/x that a client can send is that endpoint. */
static void test_spellings_of_one_path(void)
{
    static const char *const spellings[] = {
        "/protected/x",     "/%70rotected/x",     "//protected/x",    "/./protected/x",
        "/x/../protected/x", "/protected//x",     "/protected/./x",   "/%2e/protected/x",
        "/a/b/%2E%2E/../protected/x", "/../protected/x", "/%70%72%6F%74%65%63%74%65%64/x",
        "/protected/x?q=1",  "/protected/x#frag", "///protected///x",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(spellings); i++)
        expect_request("GET", spellings[i], "GET /protected/x");
}

static void test_normal_form_rules(void)
{
    expect_request("GET", "/", "GET /");
    expect_request("GET", "/a/", "GET /a/");                 /* a trailing slash stays */
    expect_request("GET", "/a/.", "GET /a/");                /* as RFC 3986 5.2.4 */
    expect_request("GET", "/a/b/..", "GET /a/");
    expect_request("GET", "/..", "GET /");
    expect_request("GET", "/a/..b/.c", "GET /a/..b/.c");     /* not dot segments */
    expect_request("GET", "/caf%c3%a9", "GET /caf%C3%A9");   /* upper-case hex */
    expect_request("GET", "/caf\xC3\xA9", "GET /caf%C3%A9"); /* raw bytes escaped */
    expect_request("GET", "/a%20b", "GET /a%20b");
    expect_request("GET", "/a b", "GET /a%20b");
    expect_request("GET", "/%41%7e%2D%5f", "GET /A~-_");     /* unreserved decoded */
    expect_request("GET", "/a%3Bb;c=d@e:f", "GET /a%3Bb;c=d@e:f"); /* reserved kept as sent */
    expect_request("GET", "/{id}", "GET /%7Bid%7D");
    expect_request("DELETE", "/v1/keys/k*", "DELETE /v1/keys/k*");
}

static void test_refusals(void)
{
    expect_refused("GET", "/a%2Fb", ENDPOINT_AMBIGUOUS);
    expect_refused("GET", "/a%2fb", ENDPOINT_AMBIGUOUS);
    expect_refused("GET", "/a%5Cb", ENDPOINT_AMBIGUOUS);
    expect_refused("GET", "/a%00", ENDPOINT_AMBIGUOUS);
    expect_refused("GET", "/a\\b", ENDPOINT_AMBIGUOUS);
    expect_refused("GET", "/a%", ENDPOINT_BAD_ESCAPE);
    expect_refused("GET", "/a%4", ENDPOINT_BAD_ESCAPE);
    expect_refused("GET", "/a%zz", ENDPOINT_BAD_ESCAPE);
    expect_refused("GET", "a/b", ENDPOINT_BAD_FORM);
    expect_refused("GET", "", ENDPOINT_BAD_FORM);
    expect_refused("get", "/a", ENDPOINT_BAD_METHOD);
    expect_refused("", "/a", ENDPOINT_BAD_METHOD);
    expect_refused("ABCDEFGHIJKLMNOPQRSTU", "/a", ENDPOINT_BAD_METHOD);
    expect_refused(NULL, "/a", ENDPOINT_BAD_METHOD);
}

/* Long paths: up to the bound once normal, refused beyond it, never cut. */
static void test_length(void)
{
    static char path[4 * ENDPOINT_MAX], want[ENDPOINT_MAX + 8];
    size_t n = ENDPOINT_MAX - 4; /* "GET " + path */
    path[0] = '/';
    memset(path + 1, 'a', n - 1);
    path[n] = '\0';
    snprintf(want, sizeof want, "GET %s", path);
    expect_request("GET", path, want);
    path[n] = 'a';
    path[n + 1] = '\0';
    expect_refused("GET", path, ENDPOINT_TOO_LONG);
    /* escapes count once written: 400 raw bytes are 1,200 normal ones */
    memset(path + 1, 0xFF, 400);
    path[401] = '\0';
    expect_refused("GET", path, ENDPOINT_TOO_LONG);
    /* a long spelling of a short path is fine while it fits the work bound */
    size_t k = 1;
    for (int i = 0; i < 300; i++, k += 5)
        memcpy(path + k, "x/../", 5);
    memcpy(path + k, "ok", 3);
    expect_request("GET", path, "GET /ok");
    /* beyond it: refused, however short the result */
    k = 1;
    for (int i = 0; i < 3 * ENDPOINT_MAX / 5 + 1; i++, k += 5)
        memcpy(path + k, "x/../", 5);
    path[k] = '\0';
    expect_refused("GET", path, ENDPOINT_TOO_LONG);
}

static void test_normalize_text(void)
{
    char out[ENDPOINT_MAX + 1];
    CU_ASSERT_EQUAL(endpoint_normalize("GET /x/../%70rotected", out), ENDPOINT_OK);
    CU_ASSERT_STRING_EQUAL(out, "GET /protected");
    CU_ASSERT_EQUAL(endpoint_normalize("GET /v1/search?q=1", out), ENDPOINT_OK);
    CU_ASSERT_STRING_EQUAL(out, "GET /v1/search");
    CU_ASSERT_EQUAL(endpoint_normalize("GET", out), ENDPOINT_BAD_FORM);
    CU_ASSERT_EQUAL(endpoint_normalize("GET  /a", out), ENDPOINT_BAD_FORM);
    CU_ASSERT_EQUAL(endpoint_normalize(" /a", out), ENDPOINT_BAD_METHOD);
    CU_ASSERT_EQUAL(endpoint_normalize("*", out), ENDPOINT_BAD_FORM); /* callers handle "*" */
}

static void test_pattern_check(void)
{
    static const char *const good[] = {"*", "GET /", "GET /v1/*", "GET /v1*", "GET /.well*",
                                       "GET /a/..b*", "POST /caf%C3%A9", "GET /a/"};
    for (size_t i = 0; i < TG_ARRAY_LEN(good); i++)
        CU_ASSERT_EQUAL(endpoint_pattern_check(good[i]), ENDPOINT_OK);
    static const struct {
        const char *pattern;
        enum endpoint_status st;
    } bad[] = {
        {"GET /a//b", ENDPOINT_NOT_NORMAL},  {"GET /a/./*", ENDPOINT_NOT_NORMAL},
        {"GET /%7e*", ENDPOINT_NOT_NORMAL},  {"GET /%c3%a9", ENDPOINT_NOT_NORMAL},
        {"GET /*/x", ENDPOINT_NOT_NORMAL},   {"GET /**", ENDPOINT_NOT_NORMAL},
        {"GET /%2F*", ENDPOINT_AMBIGUOUS},   {"GET /%*", ENDPOINT_BAD_ESCAPE},
        {"get /a", ENDPOINT_BAD_METHOD},     {"GET a", ENDPOINT_BAD_FORM},
        {"", ENDPOINT_BAD_FORM},             {"GET /a?b", ENDPOINT_NOT_NORMAL},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        CU_ASSERT_EQUAL(endpoint_pattern_check(bad[i].pattern), bad[i].st);
        if (endpoint_pattern_check(bad[i].pattern) != bad[i].st)
            fprintf(stderr, "\n  %s -> %d\n", bad[i].pattern, endpoint_pattern_check(bad[i].pattern));
    }
    char p[ENDPOINT_PATTERN_MAX + 8] = "GET /";
    memset(p + 5, 'a', ENDPOINT_PATTERN_MAX - 5);
    p[ENDPOINT_PATTERN_MAX] = '\0';
    CU_ASSERT_EQUAL(endpoint_pattern_check(p), ENDPOINT_OK);
    p[ENDPOINT_PATTERN_MAX] = 'a';
    p[ENDPOINT_PATTERN_MAX + 1] = '\0';
    CU_ASSERT_EQUAL(endpoint_pattern_check(p), ENDPOINT_TOO_LONG);
}

static void test_match(void)
{
    CU_ASSERT_TRUE(endpoint_match("*", "GET /v1/search"));
    CU_ASSERT_TRUE(endpoint_match("GET /v1/search", "GET /v1/search"));
    CU_ASSERT_FALSE(endpoint_match("GET /v1/search", "GET /v1/search/x"));
    CU_ASSERT_FALSE(endpoint_match("GET /v1/search", "GET /v1/searc"));
    CU_ASSERT_FALSE(endpoint_match("GET /v1/search", "POST /v1/search"));
    CU_ASSERT_TRUE(endpoint_match("GET /v1/*", "GET /v1/keys"));
    CU_ASSERT_TRUE(endpoint_match("GET /v1/*", "GET /v1/"));
    CU_ASSERT_TRUE(endpoint_match("GET /v1/*", "GET /v1/a/b/c"));
    CU_ASSERT_FALSE(endpoint_match("GET /v1/*", "GET /v1"));
    CU_ASSERT_FALSE(endpoint_match("GET /v1/*", "POST /v1/keys"));
    CU_ASSERT_TRUE(endpoint_match("GET /v1*", "GET /v12"));
    CU_ASSERT_FALSE(endpoint_match("", "GET /"));
    /* what the gate matches is the normal form of what was sent */
    char out[ENDPOINT_MAX + 1];
    CU_ASSERT_EQUAL(endpoint_from_request("GET", "/x/..//%70rotected/a", out), ENDPOINT_OK);
    CU_ASSERT_TRUE(endpoint_match("GET /protected/*", out));
}

static void test_status_text(void)
{
    for (int st = ENDPOINT_OK; st <= ENDPOINT_NOT_NORMAL; st++)
        CU_ASSERT(strlen(endpoint_status_text((enum endpoint_status)st)) > 3);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_spellings_of_one_path),
        UNIT_TEST(test_normal_form_rules),
        UNIT_TEST(test_refusals),
        UNIT_TEST(test_length),
        UNIT_TEST(test_normalize_text),
        UNIT_TEST(test_pattern_check),
        UNIT_TEST(test_match),
        UNIT_TEST(test_status_text),
    };
    return unit_run("endpoint", tests, TG_ARRAY_LEN(tests));
}
