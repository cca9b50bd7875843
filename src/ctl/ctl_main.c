/* tollgatectl: operating Tollgate from the shell (tollgatectl(1)).  The
 * commands live in src/ctl/; this is only the process's start. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctl_cli.h"
#include "util.h"

extern char **environ;

int main(int argc, char **argv)
{
    /* Tokens and secrets pass through this process's memory. */
    if (no_core_dumps() != 0)
        fprintf(stderr, "tollgatectl: cannot turn core dumps off: %s\n", strerror(errno));
    return ctl_cli_run(argc, argv, environ);
}
