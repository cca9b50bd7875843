/* ctl_cli: tollgatectl's command line -- global options, the table of
 * command groups, help at every level, and running the chosen command. */
#ifndef TOLLGATE_CTL_CLI_H
#define TOLLGATE_CTL_CLI_H

#include <stdio.h>

#include "ctl.h"

/* Runs the command line argv[0..argc) (argv[0] the program) with envp for
 * the configuration's overrides; returns the exit status (CTL_OK,
 * CTL_FAIL, CTL_USAGE).  Help goes to stdout with status 0; every error
 * is one "tollgatectl: ..." line on stderr (usage errors add a usage
 * line). */
int ctl_cli_run(int argc, char **argv, char *const *envp);

/* The group called word, or NULL. */
const struct ctl_group *ctl_cli_group(const char *word);
/* The command word of group g (NULL: its only command when it has no
 * words), or NULL. */
const struct ctl_cmd *ctl_cli_cmd(const struct ctl_group *g, const char *word);

/* Help texts: the program's, a group's, a command's. */
void ctl_cli_help(FILE *out);
void ctl_cli_group_help(FILE *out, const struct ctl_group *g);
void ctl_cli_cmd_help(FILE *out, const struct ctl_group *g, const struct ctl_cmd *c);

#endif
