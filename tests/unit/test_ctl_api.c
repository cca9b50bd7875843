/* Unit tests of ctl_api: request bodies, paths and queries from options,
 * list printing, and what a call does when nothing answers. */
#include <json-c/json.h>

#include "ctl_api.h"
#include "ctl_http.h"
#include "ctl_unit.h"
#include "pg.h"

static const struct ctl_opt opts[] = {
    {"owner-id", "OWNER", ""}, {"status", "S", ""}, {"json", NULL, ""}, {NULL, NULL, NULL}};

static void test_body_add(void)
{
    json_object *b = json_object_new_object();
    char msg[256];
    CU_ASSERT_EQUAL(ctl_api_body_add(b, "name", "name", "a \"b\"", CTL_V_STRING, msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(ctl_api_body_add(b, "remaining", "remaining", "10", CTL_V_INT, msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(ctl_api_body_add(b, "expires_at", "x", "null", CTL_V_JSON, msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(ctl_api_body_add(b, "meta", "meta", "{\"k\":[1]}", CTL_V_JSON, msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(ctl_api_body_add(b, "tier", "tier", NULL, CTL_V_STRING, msg, sizeof msg), 0);
    CU_ASSERT_STRING_EQUAL(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN),
                           "{\"name\":\"a \\\"b\\\"\",\"remaining\":10,\"expires_at\":null,"
                           "\"meta\":{\"k\":[1]}}");
    CU_ASSERT_EQUAL(ctl_api_body_add(b, "remaining", "remaining", "10x", CTL_V_INT, msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "--remaining takes an integer"));
    CU_ASSERT_EQUAL(ctl_api_body_add(b, "meta", "meta", "{oops", CTL_V_JSON, msg, sizeof msg), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "--meta: not JSON"));
    json_object_put(b);
}

static void test_path_and_query(void)
{
    struct ctl_args a;
    char msg[256];
    char *argv[] = {"--status", "active", "--owner-id", "acct/1"};
    CU_ASSERT_FATAL(ctl_args_parse(&a, opts, 4, argv, 0, 0, msg, sizeof msg) == 0);
    struct strbuf p = {0};
    ctl_api_path(&p, "/v1/keys/", "key 1/..", "/usage");
    CU_ASSERT_STRING_EQUAL(p.p, "/v1/keys/key%201%2F../usage");
    ctl_api_query(&p, &a, (const char *const[]){"owner-id", "owner_id", "status", "status",
                                                 "json", NULL});
    CU_ASSERT_STRING_EQUAL(p.p, "/v1/keys/key%201%2F../usage?owner_id=acct%2F1&status=active");
    strbuf_fini(&p);
}

static void test_print_list(void)
{
    static const struct ctl_col cols[] = {{"ID", "id"}};
    json_object *j = json_tokener_parse("{\"data\":[{\"id\":\"a\"}],\"next_cursor\":\"c1\"}");
    struct capture o, e;
    capture_begin(&o, 1);
    capture_begin(&e, 2);
    ctl_api_print_list(j, cols, 1);
    char *err = capture_end(&e), *out = capture_end(&o);
    CU_ASSERT_STRING_EQUAL(out, "ID\na\n");
    CU_ASSERT_STRING_EQUAL(err, "next page: --cursor c1\n");
    free(out);
    free(err);
    json_object_put(j);
}

static void test_call_without_answer(void)
{
    struct ctl ctl;
    memset(&ctl, 0, sizeof ctl);
    ctl.url = "http://127.0.0.1:9";
    setenv("TOLLGATE_TOKEN", "tgadm_unit", 1);
    json_object *j = (json_object *)&ctl; /* must be reset */
    struct capture e;
    capture_begin(&e, 2);
    int rc = ctl_api_call(&ctl, "GET", "/v1/tiers", NULL, false, &j);
    char *err = capture_end(&e);
    CU_ASSERT_EQUAL(rc, CTL_FAIL);
    CU_ASSERT_PTR_NULL(j);
    CU_ASSERT_EQUAL(strncmp(err, "tollgatectl: GET http://127.0.0.1:9/v1/tiers", 44), 0);
    free(err);
    CU_ASSERT_EQUAL(ctl_api(&ctl), 0); /* the client stays open */
    ctl_http_free(ctl.http);
    unsetenv("TOLLGATE_TOKEN");
}

static void test_db_unreachable(void)
{
    struct ctl ctl;
    memset(&ctl, 0, sizeof ctl);
    char conninfo[] = "host=127.0.0.1 port=9 dbname=x connect_timeout=2";
    char empty[] = "";
    ctl.cfg.pg_conninfo = conninfo;
    ctl.cfg.pg_migrate_conninfo = empty;
    struct capture e;
    capture_begin(&e, 2);
    int rc = ctl_db(&ctl, true);
    char *err = capture_end(&e);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_PTR_NULL(ctl.pg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "tollgatectl: cannot connect to PostgreSQL"));
    free(err);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_body_add),
        UNIT_TEST(test_path_and_query),
        UNIT_TEST(test_print_list),
        UNIT_TEST(test_call_without_answer),
        UNIT_TEST(test_db_unreachable),
    };
    return unit_run("ctl_api", tests, sizeof tests / sizeof tests[0]);
}
