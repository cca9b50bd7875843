/* Unit tests of router: matching, decoded parameters, 404 versus 405 with
 * the Allow list. */
#include <string.h>

#include "router.h"
#include "unit.h"

static void h_list(struct http_req *r) { (void)r; }
static void h_create(struct http_req *r) { (void)r; }
static void h_get(struct http_req *r) { (void)r; }
static void h_rotate(struct http_req *r) { (void)r; }

static const struct route ROUTES[] = {
    {"GET", "/v1/keys", 1, h_list, 0, NULL},
    {"POST", "/v1/keys", 1, h_create, 0, NULL},
    {"GET", "/v1/keys/{id}", 1, h_get, 0, NULL},
    {"PATCH", "/v1/keys/{id}", 1, h_get, 0, NULL},
    {"DELETE", "/v1/keys/{id}", 1, h_get, 0, NULL},
    {"POST", "/v1/keys/{id}/rotate", 1, h_rotate, 0, NULL},
    {"GET", "/v1/tiers/{tier}/keys/{id}", 1, h_get, 0, NULL},
    {"GET", "/health", 0, h_get, 0, NULL},
    {"GET", "/", 0, h_get, 0, NULL},
};

struct match {
    enum router_result rc;
    const struct route *route;
    char params[HTTP_MAX_PARAMS][HTTP_PARAM_MAX];
    int nparams;
    char allow[128];
};

static struct router *RT;

static struct match *run(const char *method, const char *path)
{
    static struct match m;
    memset(&m, 0, sizeof m);
    m.nparams = -1;
    m.rc = router_match(RT, method, path, &m.route, m.params, &m.nparams, m.allow,
                        sizeof m.allow);
    return &m;
}

static void test_exact_match(void)
{
    struct match *m = run("GET", "/v1/keys");
    CU_ASSERT_EQUAL(m->rc, ROUTER_OK);
    CU_ASSERT_PTR_EQUAL(m->route, &ROUTES[0]);
    CU_ASSERT_EQUAL(m->nparams, 0);
    m = run("POST", "/v1/keys");
    CU_ASSERT_EQUAL(m->rc, ROUTER_OK);
    CU_ASSERT_PTR_EQUAL(m->route, &ROUTES[1]);
    m = run("GET", "/health");
    CU_ASSERT_EQUAL(m->rc, ROUTER_OK);
    CU_ASSERT_PTR_EQUAL(m->route, &ROUTES[7]);
    CU_ASSERT_EQUAL(m->route->roles, 0);
    m = run("GET", "/");
    CU_ASSERT_EQUAL(m->rc, ROUTER_OK);
    CU_ASSERT_PTR_EQUAL(m->route, &ROUTES[8]);
}

static void test_params(void)
{
    struct match *m = run("GET", "/v1/keys/key_0123456789");
    CU_ASSERT_EQUAL(m->rc, ROUTER_OK);
    CU_ASSERT_PTR_EQUAL(m->route, &ROUTES[2]);
    CU_ASSERT_EQUAL(m->nparams, 1);
    CU_ASSERT_STRING_EQUAL(m->params[0], "key_0123456789");
    m = run("POST", "/v1/keys/abc/rotate");
    CU_ASSERT_EQUAL(m->rc, ROUTER_OK);
    CU_ASSERT_PTR_EQUAL(m->route, &ROUTES[5]);
    CU_ASSERT_EQUAL(m->nparams, 1);
    CU_ASSERT_STRING_EQUAL(m->params[0], "abc");
    m = run("GET", "/v1/tiers/pro/keys/k1");
    CU_ASSERT_EQUAL(m->rc, ROUTER_OK);
    CU_ASSERT_PTR_EQUAL(m->route, &ROUTES[6]);
    CU_ASSERT_EQUAL(m->nparams, 2);
    CU_ASSERT_STRING_EQUAL(m->params[0], "pro");
    CU_ASSERT_STRING_EQUAL(m->params[1], "k1");
}

static void test_params_decoded(void)
{
    struct match *m = run("GET", "/v1/keys/a%20b");
    CU_ASSERT_EQUAL(m->rc, ROUTER_OK);
    CU_ASSERT_STRING_EQUAL(m->params[0], "a b");
    m = run("GET", "/v1/keys/a+b"); /* '+' is a space only in queries */
    CU_ASSERT_EQUAL(m->rc, ROUTER_OK);
    CU_ASSERT_STRING_EQUAL(m->params[0], "a+b");
    m = run("GET", "/v1/keys/caf%C3%A9");
    CU_ASSERT_EQUAL(m->rc, ROUTER_OK);
    CU_ASSERT_STRING_EQUAL(m->params[0], "caf\xC3\xA9");
    /* An encoded slash stays inside the parameter: it does not split it. */
    m = run("GET", "/v1/keys/a%2Fb");
    CU_ASSERT_EQUAL(m->rc, ROUTER_OK);
    CU_ASSERT_PTR_EQUAL(m->route, &ROUTES[2]);
    CU_ASSERT_STRING_EQUAL(m->params[0], "a/b");
    m = run("POST", "/v1/keys/x%2frotate");
    CU_ASSERT_EQUAL(m->rc, ROUTER_METHOD_NOT_ALLOWED);
    m = run("GET", "/v1/tiers/a%2Fb/keys/c%2Fd");
    CU_ASSERT_EQUAL(m->rc, ROUTER_OK);
    CU_ASSERT_STRING_EQUAL(m->params[0], "a/b");
    CU_ASSERT_STRING_EQUAL(m->params[1], "c/d");
}

static void test_bad_params(void)
{
    CU_ASSERT_EQUAL(run("GET", "/v1/keys/%zz")->rc, ROUTER_NOT_FOUND);
    CU_ASSERT_EQUAL(run("GET", "/v1/keys/abc%")->rc, ROUTER_NOT_FOUND);
    CU_ASSERT_EQUAL(run("GET", "/v1/keys/abc%4")->rc, ROUTER_NOT_FOUND);
    CU_ASSERT_EQUAL(run("GET", "/v1/keys/a%00b")->rc, ROUTER_NOT_FOUND);
    CU_ASSERT_EQUAL(run("POST", "/v1/keys//rotate")->rc, ROUTER_NOT_FOUND); /* empty */
    /* not UTF-8, escaped or raw: no id can be like that */
    CU_ASSERT_EQUAL(run("GET", "/v1/keys/%FF")->rc, ROUTER_NOT_FOUND);
    CU_ASSERT_EQUAL(run("GET", "/v1/keys/ab\xdc")->rc, ROUTER_NOT_FOUND);
    CU_ASSERT_EQUAL(run("GET", "/v1/keys/caf%C3%A9")->rc, ROUTER_OK);
}

static void test_param_length(void)
{
    char path[HTTP_PARAM_MAX + 32];
    /* HTTP_PARAM_MAX - 1 characters fit with their terminator. */
    strcpy(path, "/v1/keys/");
    size_t base = strlen(path);
    memset(path + base, 'k', HTTP_PARAM_MAX - 1);
    path[base + HTTP_PARAM_MAX - 1] = '\0';
    struct match *m = run("GET", path);
    CU_ASSERT_EQUAL(m->rc, ROUTER_OK);
    CU_ASSERT_EQUAL(strlen(m->params[0]), HTTP_PARAM_MAX - 1);
    strcat(path, "k");
    CU_ASSERT_EQUAL(run("GET", path)->rc, ROUTER_NOT_FOUND);
    /* Length counts decoded bytes: 511 escapes decode to 511 bytes. */
    char enc[3 * HTTP_PARAM_MAX + 32] = "/v1/keys/";
    for (int i = 0; i < HTTP_PARAM_MAX - 1; i++)
        strcat(enc, "%41");
    m = run("GET", enc);
    CU_ASSERT_EQUAL(m->rc, ROUTER_OK);
    CU_ASSERT_EQUAL(strlen(m->params[0]), HTTP_PARAM_MAX - 1);
}

static void test_not_found(void)
{
    static const char *const paths[] = {
        "/v2/keys", "/v1/keys/", "/v1/keys/x/", "/v1", "/v1/", "//v1/keys", "/v1//keys",
        "/v1/keys/x/rotate/y", "/v1/keys/x/rotat", "/V1/keys", "/healthz", "/health/",
        "", "v1/keys", "/v1/tiers/pro/keys", "/v1/tiers//keys/k",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(paths); i++) {
        struct match *m = run("GET", paths[i]);
        CU_ASSERT_EQUAL(m->rc, ROUTER_NOT_FOUND);
        CU_ASSERT_STRING_EQUAL(m->allow, "");
        if (m->rc != ROUTER_NOT_FOUND)
            fprintf(stderr, "router matched '%s'\n", paths[i]);
    }
}

static void test_method_not_allowed(void)
{
    struct match *m = run("PUT", "/v1/keys");
    CU_ASSERT_EQUAL(m->rc, ROUTER_METHOD_NOT_ALLOWED);
    CU_ASSERT_STRING_EQUAL(m->allow, "GET, POST");
    m = run("POST", "/v1/keys/abc");
    CU_ASSERT_EQUAL(m->rc, ROUTER_METHOD_NOT_ALLOWED);
    CU_ASSERT_STRING_EQUAL(m->allow, "GET, PATCH, DELETE");
    m = run("GET", "/v1/keys/abc/rotate");
    CU_ASSERT_EQUAL(m->rc, ROUTER_METHOD_NOT_ALLOWED);
    CU_ASSERT_STRING_EQUAL(m->allow, "POST");
    m = run("get", "/v1/keys"); /* methods are case-sensitive */
    CU_ASSERT_EQUAL(m->rc, ROUTER_METHOD_NOT_ALLOWED);
    CU_ASSERT_STRING_EQUAL(m->allow, "GET, POST");
}

static void test_allow_deduplicated(void)
{
    static const struct route routes[] = {
        {"GET", "/v1/keys/{id}", 1, h_get, 0, NULL},
        {"GET", "/v1/keys/me", 1, h_get, 0, NULL},
        {"DELETE", "/v1/keys/me", 1, h_get, 0, NULL},
    };
    struct router *rt = router_new();
    router_add(rt, routes, TG_ARRAY_LEN(routes));
    const struct route *out = NULL;
    char params[HTTP_MAX_PARAMS][HTTP_PARAM_MAX];
    int n = 0;
    char allow[64];
    CU_ASSERT_EQUAL(router_match(rt, "PUT", "/v1/keys/me", &out, params, &n, allow, sizeof allow),
                    ROUTER_METHOD_NOT_ALLOWED);
    CU_ASSERT_STRING_EQUAL(allow, "GET, DELETE");
    /* The first route in table order wins. */
    CU_ASSERT_EQUAL(router_match(rt, "GET", "/v1/keys/me", &out, params, &n, allow, sizeof allow),
                    ROUTER_OK);
    CU_ASSERT_PTR_EQUAL(out, &routes[0]);
    CU_ASSERT_STRING_EQUAL(params[0], "me");
    router_free(rt);
}

static void test_allow_bounded(void)
{
    const struct route *out = NULL;
    char params[HTTP_MAX_PARAMS][HTTP_PARAM_MAX];
    int n = 0;
    char allow[8];
    memset(allow, 'Z', sizeof allow);
    CU_ASSERT_EQUAL(router_match(RT, "PUT", "/v1/keys/x", &out, params, &n, allow, sizeof allow),
                    ROUTER_METHOD_NOT_ALLOWED);
    CU_ASSERT(memchr(allow, '\0', sizeof allow) != NULL);
    CU_ASSERT_EQUAL(strncmp("GET, PATCH, DELETE", allow, strlen(allow)), 0);
    /* No Allow buffer at all. */
    CU_ASSERT_EQUAL(router_match(RT, "PUT", "/v1/keys/x", &out, params, &n, NULL, 0),
                    ROUTER_METHOD_NOT_ALLOWED);
    CU_ASSERT_EQUAL(router_match(RT, "GET", "/v1/keys/x", &out, params, &n, NULL, 0), ROUTER_OK);
}

static void test_empty_and_growing_router(void)
{
    struct router *rt = router_new();
    const struct route *out = NULL;
    char params[HTTP_MAX_PARAMS][HTTP_PARAM_MAX];
    int n = 0;
    char allow[64];
    CU_ASSERT_EQUAL(router_match(rt, "GET", "/", &out, params, &n, allow, sizeof allow),
                    ROUTER_NOT_FOUND);
    /* More routes than the initial capacity, added in several calls. */
    enum { N = 100 };
    static char patterns[N][32];
    static struct route many[N];
    for (int i = 0; i < N; i++) {
        snprintf(patterns[i], sizeof patterns[i], "/r%d/{x}", i);
        many[i] = (struct route){"GET", patterns[i], 0, h_get, 0, NULL};
    }
    router_add(rt, many, 30);
    router_add(rt, many + 30, N - 30);
    for (int i = 0; i < N; i += 7) {
        char path[48];
        snprintf(path, sizeof path, "/r%d/v%d", i, i);
        CU_ASSERT_EQUAL(router_match(rt, "GET", path, &out, params, &n, allow, sizeof allow),
                        ROUTER_OK);
        CU_ASSERT_PTR_EQUAL(out, &many[i]);
        char want[16];
        snprintf(want, sizeof want, "v%d", i);
        CU_ASSERT_STRING_EQUAL(params[0], want);
    }
    CU_ASSERT_EQUAL(router_match(rt, "GET", "/r99/x", &out, params, &n, allow, sizeof allow),
                    ROUTER_OK);
    CU_ASSERT_PTR_EQUAL(out, &many[99]);
    router_free(rt);
    router_free(NULL);
}

static void test_too_many_params(void)
{
    static const struct route routes[] = {
        {"GET", "/{a}/{b}/{c}/{d}", 0, h_get, 0, NULL},
        {"GET", "/{a}/{b}/{c}/{d}/{e}", 0, h_get, 0, NULL},
    };
    struct router *rt = router_new();
    router_add(rt, routes, 2);
    const struct route *out = NULL;
    char params[HTTP_MAX_PARAMS][HTTP_PARAM_MAX];
    int n = 0;
    CU_ASSERT_EQUAL(router_match(rt, "GET", "/1/2/3/4", &out, params, &n, NULL, 0), ROUTER_OK);
    CU_ASSERT_EQUAL(n, HTTP_MAX_PARAMS);
    CU_ASSERT_STRING_EQUAL(params[3], "4");
    /* A fifth parameter has no slot: never a match, never an overflow. */
    CU_ASSERT_EQUAL(router_match(rt, "GET", "/1/2/3/4/5", &out, params, &n, NULL, 0),
                    ROUTER_NOT_FOUND);
    router_free(rt);
}

int main(void)
{
    RT = router_new();
    router_add(RT, ROUTES, TG_ARRAY_LEN(ROUTES));
    static const struct unit_test tests[] = {
        UNIT_TEST(test_exact_match),
        UNIT_TEST(test_params),
        UNIT_TEST(test_params_decoded),
        UNIT_TEST(test_bad_params),
        UNIT_TEST(test_param_length),
        UNIT_TEST(test_not_found),
        UNIT_TEST(test_method_not_allowed),
        UNIT_TEST(test_allow_deduplicated),
        UNIT_TEST(test_allow_bounded),
        UNIT_TEST(test_empty_and_growing_router),
        UNIT_TEST(test_too_many_params),
    };
    int rc = unit_run("router", tests, TG_ARRAY_LEN(tests));
    router_free(RT);
    return rc;
}
