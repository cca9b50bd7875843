/* Unit tests of ctl_cli: tollgatectl's command line, help and exit codes
 * (what needs no running service). */
#include "ctl_cli.h"
#include "ctl_unit.h"

static char *const no_env[] = {NULL};

/* Runs the command line words (NULL-terminated) with stdout and stderr
 * captured; returns the exit status. */
static int run(char **out, char **err, char *const *words)
{
    char *argv[32] = {"tollgatectl"};
    int argc = 1;
    while (words[argc - 1] && argc < 31) {
        argv[argc] = words[argc - 1];
        argc++;
    }
    struct capture o, e;
    capture_begin(&o, 1);
    capture_begin(&e, 2);
    int rc = ctl_cli_run(argc, argv, no_env);
    *err = capture_end(&e);
    *out = capture_end(&o);
    return rc;
}

#define RUN(...) run(&out, &err, (char *const[]){__VA_ARGS__, NULL})

static void test_help_everywhere(void)
{
    char *out, *err;
    CU_ASSERT_EQUAL(RUN("--help"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "usage: tollgatectl"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Exit status: 0 done, 1 failed, 2 usage error"));
    CU_ASSERT_STRING_EQUAL(err, "");
    free(out);
    free(err);
    static const char *const groups[] = {"keys", "tiers", "usage", "billing", "audit", "tokens",
                                         "token", "config", "migrate", "secrets"};
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        const struct ctl_group *g = ctl_cli_group(groups[i]);
        CU_ASSERT_FATAL(g != NULL);
        CU_ASSERT_EQUAL(RUN((char *)groups[i], "--help"), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, groups[i]));
        free(out);
        free(err);
        for (size_t k = 0; k < g->ncmds; k++) {
            const struct ctl_cmd *c = &g->cmds[k];
            CU_ASSERT_PTR_EQUAL(ctl_cli_cmd(g, c->word), c);
            int rc = c->word ? RUN((char *)groups[i], (char *)c->word, "--help")
                             : RUN((char *)groups[i], "--help");
            CU_ASSERT_EQUAL(rc, 0);
            /* Every option is in the command's help. */
            for (size_t o = 0; c->opts[o].name; o++)
                CU_ASSERT_PTR_NOT_NULL(strstr(out, c->opts[o].name));
            CU_ASSERT_PTR_NOT_NULL(strstr(out, "--help"));
            CU_ASSERT_STRING_EQUAL(err, "");
            free(out);
            free(err);
        }
    }
    CU_ASSERT_PTR_NULL(ctl_cli_group("nope"));
    CU_ASSERT_PTR_NULL(ctl_cli_cmd(ctl_cli_group("keys"), "nope"));
    CU_ASSERT_PTR_NULL(ctl_cli_cmd(ctl_cli_group("keys"), NULL));
}

static void test_version(void)
{
    char *out, *err;
    CU_ASSERT_EQUAL(RUN("--version"), 0);
    CU_ASSERT_EQUAL(strncmp(out, "tollgatectl ", 12), 0);
    free(out);
    free(err);
}

/* Usage errors: exit 2, one "tollgatectl: " line and a usage line on
 * stderr, nothing on stdout. */
static void expect_usage(int rc, char *out, char *err, const char *what)
{
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_EQUAL(strncmp(err, "tollgatectl: ", 13), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\nusage: tollgatectl"));
    if (!strstr(err, what))
        fprintf(stderr, "want '%s' in: %s\n", what, err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, what));
    free(out);
    free(err);
}

static void test_usage_errors(void)
{
    char *out, *err;
    int rc = RUN("frobnicate");
    expect_usage(rc, out, err, "no command 'frobnicate'");
    rc = RUN("keys", "frobnicate");
    expect_usage(rc, out, err, "keys: no subcommand");
    rc = RUN("keys", "show");
    expect_usage(rc, out, err, "missing argument");
    rc = RUN("keys", "list", "--bogus");
    expect_usage(rc, out, err, "--bogus is not an option");
    rc = RUN("--bogus", "keys", "list");
    expect_usage(rc, out, err, "--bogus is not an option");
    rc = RUN("--url");
    expect_usage(rc, out, err, "needs a value");
    /* No command at all: the help, on stderr. */
    CU_ASSERT_EQUAL(RUN("-c", "/x"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "usage: tollgatectl"));
    free(out);
    free(err);
}

static void test_token_never_an_argument(void)
{
    char *out, *err;
    int rc = RUN("--token", "tgadm_abc", "keys", "list");
    expect_usage(rc, out, err, "--token-file");
    rc = RUN("keys", "list", "--token=tgadm_abc");
    expect_usage(rc, out, err, "--token-file");
    rc = RUN("keys", "show", "tgadm_abcdef");
    expect_usage(rc, out, err, "TOLLGATE_TOKEN");
}

static void test_api_needs_url_and_token(void)
{
    char *out, *err;
    /* No configuration named and none at the default path of a test
     * build: the API commands need --url and a token from somewhere. */
    unsetenv("TOLLGATE_URL");
    unsetenv("TOLLGATE_TOKEN");
    unsetenv("TOLLGATE_CONFIG");
    CU_ASSERT_EQUAL(RUN("keys", "list"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "tollgatectl: no API URL"));
    free(out);
    free(err);
    CU_ASSERT_EQUAL(RUN("--url", "http://127.0.0.1:9", "keys", "list"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "tollgatectl: no admin token"));
    free(out);
    free(err);
    CU_ASSERT_EQUAL(RUN("keys", "list", "--url", "http://127.0.0.1:9", "--token-file",
                        "/nonexistent/token"),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/token"));
    free(out);
    free(err);
    /* A token from the environment; port 9 (discard) answers nothing. */
    setenv("TOLLGATE_TOKEN", "tgadm_from_env", 1);
    CU_ASSERT_EQUAL(RUN("keys", "list", "--url=http://127.0.0.1:9"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "tollgatectl: GET http://127.0.0.1:9/v1/keys"));
    CU_ASSERT_PTR_NULL(strstr(err, "tgadm_from_env"));
    CU_ASSERT_STRING_EQUAL(out, "");
    free(out);
    free(err);
    setenv("TOLLGATE_TOKEN", "two words", 1);
    CU_ASSERT_EQUAL(RUN("keys", "list", "--url=http://127.0.0.1:9"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "TOLLGATE_TOKEN is not a token"));
    free(out);
    free(err);
    unsetenv("TOLLGATE_TOKEN");
}

static void test_local_needs_config(void)
{
    char *out, *err;
    CU_ASSERT_EQUAL(RUN("-c", "/nonexistent/tollgate.conf", "config", "check"), 1);
    CU_ASSERT_EQUAL(strncmp(err, "tollgatectl: ", 13), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/tollgate.conf"));
    free(out);
    free(err);
}

static void test_help_functions(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    const struct ctl_group *g = ctl_cli_group("keys");
    ctl_cli_help(f);
    ctl_cli_group_help(f, g);
    ctl_cli_cmd_help(f, g, ctl_cli_cmd(g, "rotate"));
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "usage: tollgatectl keys SUBCOMMAND"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "usage: tollgatectl keys rotate [OPTIONS] ID"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "--grace-seconds N"));
    free(buf);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_help_everywhere),
        UNIT_TEST(test_version),
        UNIT_TEST(test_usage_errors),
        UNIT_TEST(test_token_never_an_argument),
        UNIT_TEST(test_api_needs_url_and_token),
        UNIT_TEST(test_local_needs_config),
        UNIT_TEST(test_help_functions),
    };
    return unit_run("ctl_cli", tests, sizeof tests / sizeof tests[0]);
}
