/* Unit tests of ctl_args: tollgatectl's argument parsing. */
#include "ctl_args.h"
#include "unit.h"

static const struct ctl_opt opts[] = {
    {"owner-id", "OWNER", "owner"},
    {"json", NULL, "json"},
    {"limit", "N", "limit"},
    {NULL, NULL, NULL},
};

#define PARSE(a, min, max, ...)                                                         \
    ({                                                                                  \
        char *argv_[] = {__VA_ARGS__};                                                  \
        ctl_args_parse(a, opts, (int)(sizeof argv_ / sizeof argv_[0]), argv_, min, max, \
                       msg, sizeof msg);                                                \
    })

static void test_values_flags_positionals(void)
{
    struct ctl_args a;
    char msg[256];
    CU_ASSERT_EQUAL(PARSE(&a, 1, 1, "--owner-id", "acct 1", "key_1", "--json", "--limit=5"), 0);
    CU_ASSERT_STRING_EQUAL(ctl_args_get(&a, "owner-id"), "acct 1");
    CU_ASSERT_STRING_EQUAL(ctl_args_get(&a, "limit"), "5");
    CU_ASSERT(ctl_args_has(&a, "json"));
    CU_ASSERT_STRING_EQUAL(ctl_args_get(&a, "json"), "");
    CU_ASSERT_FALSE(ctl_args_has(&a, "nope"));
    CU_ASSERT_EQUAL(a.npos, 1);
    CU_ASSERT_STRING_EQUAL(a.pos[0], "key_1");
    CU_ASSERT_FALSE(a.help);
    /* After "--", a dash starts an argument, not an option. */
    CU_ASSERT_EQUAL(PARSE(&a, 1, 1, "--", "--json"), 0);
    CU_ASSERT_STRING_EQUAL(a.pos[0], "--json");
    CU_ASSERT_FALSE(ctl_args_has(&a, "json"));
}

static void test_usage_errors(void)
{
    struct ctl_args a;
    char msg[256];
    CU_ASSERT_EQUAL(PARSE(&a, 0, 0, "--bogus"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "--bogus is not an option"));
    CU_ASSERT_EQUAL(PARSE(&a, 0, 0, "--owner-id"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "needs a value"));
    CU_ASSERT_EQUAL(PARSE(&a, 0, 0, "--json=1"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "takes no value"));
    CU_ASSERT_EQUAL(PARSE(&a, 1, 1, "--json"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "missing argument"));
    CU_ASSERT_EQUAL(PARSE(&a, 0, 1, "a", "b"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "unexpected argument 'b'"));
    CU_ASSERT_EQUAL(PARSE(&a, 0, 0, "-x"), -1);
}

static void test_help_wins(void)
{
    struct ctl_args a;
    char msg[256];
    /* --help is honoured even where the rest would be an error. */
    CU_ASSERT_EQUAL(PARSE(&a, 2, 2, "--bogus", "--help"), 0);
    CU_ASSERT(a.help);
    CU_ASSERT_EQUAL(PARSE(&a, 0, 0, "-h"), 0);
    CU_ASSERT(a.help);
    CU_ASSERT_EQUAL(PARSE(&a, 0, 1, "--", "--help"), 0);
    CU_ASSERT_FALSE(a.help);
}

static void test_tokens_refused(void)
{
    struct ctl_args a;
    char msg[256];
    CU_ASSERT(ctl_args_is_token("tgadm_abc"));
    CU_ASSERT_FALSE(ctl_args_is_token("tgadm_"));
    CU_ASSERT_FALSE(ctl_args_is_token("tg_abc"));
    CU_ASSERT_FALSE(ctl_args_is_token("key_abc"));
    CU_ASSERT_EQUAL(PARSE(&a, 0, 0, "--token", "x"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "--token-file"));
    CU_ASSERT_EQUAL(PARSE(&a, 0, 0, "--token=x"), -1);
    CU_ASSERT_EQUAL(PARSE(&a, 0, 1, "tgadm_0123456789"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "TOLLGATE_TOKEN"));
    CU_ASSERT_EQUAL(PARSE(&a, 0, 0, "--owner-id", "tgadm_0123456789"), -1);
    CU_ASSERT_EQUAL(PARSE(&a, 0, 0, "--owner-id=tgadm_0123456789"), -1);
    /* Nothing of the token is kept in the message. */
    CU_ASSERT_PTR_NULL(strstr(msg, "0123456789"));
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_values_flags_positionals),
        UNIT_TEST(test_usage_errors),
        UNIT_TEST(test_help_wins),
        UNIT_TEST(test_tokens_refused),
    };
    return unit_run("ctl_args", tests, sizeof tests / sizeof tests[0]);
}
