/* ctl_args: a command's arguments, parsed once against the command's table
 * of options.  Options are --name VALUE, --name=VALUE or --flag; "--" ends
 * them; anything else is a positional argument.  --help is understood
 * everywhere. */
#ifndef TOLLGATE_CTL_ARGS_H
#define TOLLGATE_CTL_ARGS_H

#include <stdbool.h>
#include <stddef.h>

struct ctl_opt {
    const char *name; /* without dashes: "owner-id" */
    const char *arg;  /* the value's name in help ("OWNER"); NULL for a flag */
    const char *help;
};

#define CTL_ARGS_MAX_OPTS 16
#define CTL_ARGS_MAX_POS 4

struct ctl_args {
    const struct ctl_opt *opts;        /* the table parsed against, ending with {NULL} */
    const char *val[CTL_ARGS_MAX_OPTS]; /* per option: NULL absent, "" a flag given */
    const char *pos[CTL_ARGS_MAX_POS];
    int npos;
    bool help;
};

/* Parses argv[0..argc) against opts (at most CTL_ARGS_MAX_OPTS, ending with
 * {NULL}) expecting min..max positional arguments (max at most
 * CTL_ARGS_MAX_POS).  Values point into argv.  Returns 0, or -1 with a
 * sentence in msg: an unknown option, a missing value, a value given to a
 * flag, a wrong number of arguments, or an argument that looks like an
 * admin token (a token on the command line is visible to every user of the
 * machine).  When --help is seen, returns 0 with help set and the rest
 * unchecked. */
int ctl_args_parse(struct ctl_args *a, const struct ctl_opt *opts, int argc, char **argv,
                   int min, int max, char *msg, size_t msglen);

/* The value of option name (borrowed), or NULL when it was not given. */
const char *ctl_args_get(const struct ctl_args *a, const char *name);
/* Whether option name (a flag or not) was given. */
bool ctl_args_has(const struct ctl_args *a, const char *name);

/* Whether s looks like an admin token ("tgadm_" and more): such a string
 * is refused as an argument. */
bool ctl_args_is_token(const char *s);

#endif
