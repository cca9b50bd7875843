/* restore: tollgatectl restore FILE, the way back from a backup
 * (backup.h): into an empty database only, then checked against the
 * manifest. */
#ifndef TOLLGATE_RESTORE_H
#define TOLLGATE_RESTORE_H

#include "config.h"

/* tollgatectl restore FILE (the .dump or its .json): returns the exit
 * status (0 restored and every check passed, 1 refused or failed, 2
 * usage), after printing each check. */
int restore_main(const struct config *cfg, int argc, char **argv);

#endif
