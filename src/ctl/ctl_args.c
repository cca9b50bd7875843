/* ctl_args: see ctl_args.h. */
#include <stdio.h>
#include <string.h>

#include "ctl_args.h"

#define TOKEN_REFUSED                                                                     \
    "an admin token is never taken on the command line (every user of the machine can " \
    "read it there): name a file with --token-file or set TOLLGATE_TOKEN"

bool ctl_args_is_token(const char *s)
{
    return strncmp(s, "tgadm_", 6) == 0 && s[6] != '\0';
}

static int find(const struct ctl_opt *opts, const char *name, size_t len)
{
    for (int i = 0; opts && opts[i].name; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return i;
    return -1;
}

/* One "--name[=value]" at argv[*i]; advances *i past a separate value. */
static int parse_option(struct ctl_args *a, int argc, char **argv, int *i, char *msg,
                        size_t msglen)
{
    const char *name = argv[*i] + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    if (len == 5 && strncmp(name, "token", 5) == 0) {
        snprintf(msg, msglen, "--token: %s", TOKEN_REFUSED);
        return -1;
    }
    int k = find(a->opts, name, len);
    if (k < 0) {
        snprintf(msg, msglen, "--%.*s is not an option of this command", (int)len, name);
        return -1;
    }
    if (!a->opts[k].arg) {
        if (eq) {
            snprintf(msg, msglen, "--%s takes no value", a->opts[k].name);
            return -1;
        }
        a->val[k] = "";
        return 0;
    }
    const char *v = eq ? eq + 1 : NULL;
    if (!v) {
        if (*i + 1 >= argc) {
            snprintf(msg, msglen, "--%s needs a value (%s)", a->opts[k].name, a->opts[k].arg);
            return -1;
        }
        v = argv[++*i];
    }
    if (ctl_args_is_token(v)) {
        snprintf(msg, msglen, "--%s: %s", a->opts[k].name, TOKEN_REFUSED);
        return -1;
    }
    a->val[k] = v;
    return 0;
}

int ctl_args_parse(struct ctl_args *a, const struct ctl_opt *opts, int argc, char **argv,
                   int min, int max, char *msg, size_t msglen)
{
    memset(a, 0, sizeof *a);
    a->opts = opts;
    msg[0] = '\0';
    bool options_done = false;
    for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            a->help = true;
            return 0;
        }
    }
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (!options_done && strcmp(s, "--") == 0) {
            options_done = true;
        } else if (!options_done && strncmp(s, "--", 2) == 0) {
            if (parse_option(a, argc, argv, &i, msg, msglen) != 0)
                return -1;
        } else if (!options_done && s[0] == '-' && s[1] != '\0') {
            snprintf(msg, msglen, "%s is not an option of this command", s);
            return -1;
        } else if (ctl_args_is_token(s)) {
            snprintf(msg, msglen, "%s", TOKEN_REFUSED);
            return -1;
        } else if (a->npos >= max || a->npos >= CTL_ARGS_MAX_POS) {
            snprintf(msg, msglen, "unexpected argument '%s'", s);
            return -1;
        } else {
            a->pos[a->npos++] = s;
        }
    }
    if (a->npos < min) {
        snprintf(msg, msglen, "missing argument%s", min - a->npos > 1 ? "s" : "");
        return -1;
    }
    return 0;
}

const char *ctl_args_get(const struct ctl_args *a, const char *name)
{
    int k = find(a->opts, name, strlen(name));
    return k < 0 ? NULL : a->val[k];
}

bool ctl_args_has(const struct ctl_args *a, const char *name)
{
    return ctl_args_get(a, name) != NULL;
}
