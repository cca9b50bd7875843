/* ctl_cli: see ctl_cli.h. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buildinfo.h"
#include "ctl_cli.h"
#include "ctl_http.h"
#include "ctl_secret.h"
#include "keys.h"
#include "pg.h"

/* In the order of the program's help. */
static const struct ctl_group *const groups[] = {
    &ctl_keys_group,    &ctl_tiers_group,  &ctl_usage_group,  &ctl_billing_group,
    &ctl_audit_group,   &ctl_tokens_group, &ctl_token_group,  &ctl_config_group,
    &ctl_migrate_group, &ctl_secrets_group, &ctl_backup_group, &ctl_restore_group,
};

/* Taken before the command word and after it alike (except -c). */
static const struct ctl_opt global_opts[] = {
    {"config", "FILE", "configuration (else $TOLLGATE_CONFIG, the default file)"},
    {"url", "URL", "the API (else $TOLLGATE_URL, [ctl] url)"},
    {"token-file", "FILE", "the admin token's file, - for stdin (else $TOLLGATE_TOKEN,"
                           " [ctl] token_file)"},
    {"ca-file", "FILE", "the CA of the API's certificate (else $TOLLGATE_CA_FILE, [ctl] ca_file)"},
};
#define NGLOBAL (sizeof global_opts / sizeof global_opts[0])

const struct ctl_group *ctl_cli_group(const char *word)
{
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (strcmp(groups[i]->word, word) == 0)
            return groups[i];
    return NULL;
}

const struct ctl_cmd *ctl_cli_cmd(const struct ctl_group *g, const char *word)
{
    for (size_t i = 0; i < g->ncmds; i++) {
        const char *w = g->cmds[i].word;
        if ((!w && !word) || (w && word && strcmp(w, word) == 0))
            return &g->cmds[i];
    }
    return NULL;
}

static void put_opt(FILE *out, const struct ctl_opt *o)
{
    char left[64];
    snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
    fprintf(out, "  %-24s %s\n", left, o->help);
}

void ctl_cli_help(FILE *out)
{
    fprintf(out, "usage: tollgatectl [OPTIONS] COMMAND [SUBCOMMAND] [ARGS]\n"
                 "Operate Tollgate from the shell.  Tables go to stdout; --json prints the\n"
                 "API's answer instead.  Errors go to stderr as \"tollgatectl: ...\".\n\n"
                 "Options:\n"
                 "  -c, --config FILE        configuration (default: $TOLLGATE_CONFIG, else\n"
                 "                           " CONFIG_DEFAULT_PATH ")\n");
    for (size_t i = 1; i < NGLOBAL; i++)
        put_opt(out, &global_opts[i]);
    fprintf(out, "  -h, --help               help; after a command: that command's help\n"
                 "  -V, --version            version and commit\n\nCommands:\n");
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        const struct ctl_group *g = groups[i];
        fprintf(out, "  %-9s%s\n", g->word, g->summary);
        if (g->cmds[0].word) {
            fprintf(out, "  %-9s", "");
            for (size_t k = 0; k < g->ncmds; k++)
                fprintf(out, "%s%s", k ? " | " : "", g->cmds[k].word);
            fprintf(out, "\n");
        }
    }
    fprintf(out, "\nThe admin token is read from a file or the environment, never from the\n"
                 "command line.  Exit status: 0 done, 1 failed, 2 usage error.\n"
                 "tollgatectl COMMAND --help tells more; see tollgatectl(1).\n");
}

void ctl_cli_group_help(FILE *out, const struct ctl_group *g)
{
    if (!g->cmds[0].word) {
        ctl_cli_cmd_help(out, g, &g->cmds[0]);
        return;
    }
    fprintf(out, "usage: tollgatectl %s SUBCOMMAND [OPTIONS] [ARGS]\n%s.\n\n", g->word, g->summary);
    for (size_t k = 0; k < g->ncmds; k++) {
        char left[64];
        snprintf(left, sizeof left, "%s %s", g->cmds[k].word, g->cmds[k].synopsis);
        fprintf(out, "  %-26s %s\n", left, g->cmds[k].summary);
    }
    fprintf(out, "\ntollgatectl %s SUBCOMMAND --help tells more.\n", g->word);
}

void ctl_cli_cmd_help(FILE *out, const struct ctl_group *g, const struct ctl_cmd *c)
{
    fprintf(out, "usage: tollgatectl %s%s%s [OPTIONS]%s%s\n%s.\n", g->word, c->word ? " " : "",
            c->word ? c->word : "", *c->synopsis ? " " : "", c->synopsis, c->summary);
    if (c->details)
        fprintf(out, "%s\n", c->details);
    fprintf(out, "\nOptions:\n");
    for (size_t i = 0; c->opts[i].name; i++)
        put_opt(out, &c->opts[i]);
    if (c->kind == CTL_API) {
        for (size_t i = 1; i < NGLOBAL; i++)
            put_opt(out, &global_opts[i]);
    }
    put_opt(out, &global_opts[0]);
    fprintf(out, "  %-24s %s\n", "--help", "this text");
    fprintf(out, "%s\n", c->kind == CTL_API ? "\nThrough the API: needs an admin token whose role "
                                              "may do this."
                                            : "\nWorks on the stores the configuration names.");
}

/* The command's options followed by the global ones, in opts. */
static void merge_opts(struct ctl_opt *opts, const struct ctl_cmd *c)
{
    size_t n = 0;
    for (size_t i = 0; c->opts[i].name && n < CTL_ARGS_MAX_OPTS - NGLOBAL - 1; i++)
        opts[n++] = c->opts[i];
    for (size_t i = 0; i < NGLOBAL; i++)
        opts[n++] = global_opts[i];
    opts[n] = (struct ctl_opt){NULL, NULL, NULL};
}

/* A usage error: the message, then the synopsis of what was being used
 * (the command c of group g, the group, or the program). */
static int usage_error(const char *msg, const struct ctl_group *g, const struct ctl_cmd *c)
{
    fprintf(stderr, "tollgatectl: %s\n", msg);
    if (c)
        fprintf(stderr, "usage: tollgatectl %s%s%s [OPTIONS]%s%s (more: --help)\n", g->word,
                c->word ? " " : "", c->word ? c->word : "", *c->synopsis ? " " : "", c->synopsis);
    else if (g)
        fprintf(stderr, "usage: tollgatectl %s SUBCOMMAND ... (tollgatectl %s --help)\n", g->word,
                g->word);
    else
        fprintf(stderr, "usage: tollgatectl [OPTIONS] COMMAND ... (tollgatectl --help)\n");
    return CTL_USAGE;
}

/* The configuration: required for local commands, read for API commands
 * when named or when the default file is readable. */
static int load_config(struct ctl *ctl, enum ctl_kind kind, char *const *envp)
{
    const char *path = ctl->config_path;
    if (!path || !*path)
        path = getenv("TOLLGATE_CONFIG");
    bool named = path && *path;
    if (!named)
        path = CONFIG_DEFAULT_PATH;
    if (kind == CTL_API && !named && access(path, R_OK) != 0)
        return CTL_OK;
    struct api_error err;
    if (config_load(&ctl->cfg, path, envp, &err) != 0) {
        fprintf(stderr, "tollgatectl: %s\n", err.message);
        return CTL_FAIL;
    }
    ctl->config_loaded = true;
    return CTL_OK;
}

/* flag, else the environment's name, else the configuration's value. */
static const char *pick(const char *flag, const char *env, const struct ctl *ctl, char *cfg_value)
{
    if (flag)
        return flag;
    const char *v = getenv(env);
    if (v && *v)
        return v;
    return ctl->config_loaded && cfg_value && *cfg_value ? cfg_value : NULL;
}

int ctl_api(struct ctl *ctl)
{
    if (ctl->http)
        return 0;
    const char *url = pick(ctl->url, "TOLLGATE_URL", ctl, ctl->cfg.ctl_url);
    const char *ca = pick(ctl->ca_file, "TOLLGATE_CA_FILE", ctl, ctl->cfg.ctl_ca_file);
    char token[KEYS_MAX_LEN + 64], msg[512];
    const char *env = getenv("TOLLGATE_TOKEN");
    const char *file = ctl->token_file;
    if (!url) {
        fprintf(stderr, "tollgatectl: no API URL: give --url, set TOLLGATE_URL or [ctl] url\n");
        return -1;
    }
    if (!file && env && *env) {
        if (!ctl_secret_ok(env) || strlen(env) >= sizeof token) {
            fprintf(stderr, "tollgatectl: TOLLGATE_TOKEN is not a token\n");
            return -1;
        }
        strlcpy_tg(token, env, sizeof token);
    } else {
        if (!file && ctl->config_loaded && *ctl->cfg.ctl_token_file)
            file = ctl->cfg.ctl_token_file;
        if (!file) {
            fprintf(stderr, "tollgatectl: no admin token: name its file with --token-file, "
                            "set TOLLGATE_TOKEN or [ctl] token_file\n");
            return -1;
        }
        if (ctl_secret_read(file, token, sizeof token, msg, sizeof msg) != 0) {
            fprintf(stderr, "tollgatectl: admin token: %s\n", msg);
            return -1;
        }
    }
    /* Plain HTTP is for a loopback API; anywhere else it shows the token to
     * the network.  Said, not refused: a private network may be trusted. */
    if (strncmp(url, "http://", 7) == 0 && strncmp(url + 7, "127.", 4) != 0 &&
        strncmp(url + 7, "localhost", 9) != 0 && strncmp(url + 7, "[::1]", 5) != 0)
        fprintf(stderr, "tollgatectl: warning: %s is not HTTPS: the admin token travels in "
                        "clear text\n", url);
    ctl->http = ctl_http_new(url, token, ca, msg, sizeof msg);
    explicit_bzero(token, sizeof token);
    if (!ctl->http) {
        fprintf(stderr, "tollgatectl: %s\n", msg);
        return -1;
    }
    return 0;
}

/* Runs group g's command named by argv (the words after the group's). */
static int run_command(struct ctl *ctl, const struct ctl_group *g, int argc, char **argv,
                       char *const *envp)
{
    const struct ctl_cmd *c = ctl_cli_cmd(g, NULL);
    char msg[512];
    if (!c) {
        if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
            ctl_cli_group_help(argc < 1 ? stderr : stdout, g);
            return argc < 1 ? CTL_USAGE : CTL_OK;
        }
        c = ctl_cli_cmd(g, argv[0]);
        if (!c) {
            snprintf(msg, sizeof msg, "%s: no subcommand '%.40s'", g->word, argv[0]);
            return usage_error(msg, g, NULL);
        }
        argc--;
        argv++;
    }
    struct ctl_opt opts[CTL_ARGS_MAX_OPTS];
    struct ctl_args a;
    merge_opts(opts, c);
    if (ctl_args_parse(&a, opts, argc, argv, c->min_args, c->max_args, msg, sizeof msg) != 0)
        return usage_error(msg, g, c);
    if (a.help) {
        ctl_cli_cmd_help(stdout, g, c);
        return CTL_OK;
    }
    if (ctl_args_get(&a, "config"))
        ctl->config_path = ctl_args_get(&a, "config");
    if (ctl_args_get(&a, "url"))
        ctl->url = ctl_args_get(&a, "url");
    if (ctl_args_get(&a, "token-file"))
        ctl->token_file = ctl_args_get(&a, "token-file");
    if (ctl_args_get(&a, "ca-file"))
        ctl->ca_file = ctl_args_get(&a, "ca-file");
    if (load_config(ctl, c->kind, envp) != CTL_OK)
        return CTL_FAIL;
    return c->run(ctl, &a);
}

int ctl_cli_run(int argc, char **argv, char *const *envp)
{
    struct ctl ctl;
    memset(&ctl, 0, sizeof ctl);
    int i = 1;
    /* Global options before the command word. */
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *s = argv[i];
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            ctl_cli_help(stdout);
            return CTL_OK;
        }
        if (strcmp(s, "-V") == 0 || strcmp(s, "--version") == 0) {
            buildinfo_print(stdout, "tollgatectl");
            return CTL_OK;
        }
        const char **slot = NULL;
        const char *name = s[1] == 'c' && s[2] == '\0' ? "config" : s + 2;
        size_t len = strcspn(name, "=");
        if (s[1] == '-' || s[1] == 'c') {
            if (len == 6 && strncmp(name, "config", 6) == 0)
                slot = &ctl.config_path;
            else if (len == 3 && strncmp(name, "url", 3) == 0)
                slot = &ctl.url;
            else if (len == 10 && strncmp(name, "token-file", 10) == 0)
                slot = &ctl.token_file;
            else if (len == 7 && strncmp(name, "ca-file", 7) == 0)
                slot = &ctl.ca_file;
        }
        if (!slot) {
            char msg[256];
            snprintf(msg, sizeof msg, "%.40s%s", s,
                     strncmp(s, "--token", 7) == 0 && (s[7] == '\0' || s[7] == '=')
                         ? ": an admin token is never taken on the command line; name a file "
                           "with --token-file or set TOLLGATE_TOKEN"
                         : " is not an option");
            return usage_error(msg, NULL, NULL);
        }
        if (name[len] == '=') {
            *slot = name + len + 1;
        } else if (i + 1 < argc) {
            *slot = argv[++i];
        } else {
            return usage_error("an option needs a value", NULL, NULL);
        }
    }
    if (i >= argc) {
        ctl_cli_help(stderr);
        return CTL_USAGE;
    }
    const struct ctl_group *g = ctl_cli_group(argv[i]);
    if (!g) {
        char msg[128];
        snprintf(msg, sizeof msg, "no command '%.40s'", argv[i]);
        return usage_error(msg, NULL, NULL);
    }
    int rc = run_command(&ctl, g, argc - i - 1, argv + i + 1, envp);
    ctl_http_free(ctl.http);
    pg_disconnect(ctl.pg);
    if (ctl.config_loaded)
        config_fini(&ctl.cfg);
    return rc;
}
