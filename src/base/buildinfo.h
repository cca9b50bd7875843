/* buildinfo: the commit this program was built from, written into a
 * generated source at build time: git's abbreviated commit when built from a
 * checkout, "unknown" otherwise (a release tarball).  The version is
 * configure's PACKAGE_VERSION. */
#ifndef TOLLGATE_BUILDINFO_H
#define TOLLGATE_BUILDINFO_H

#include <stdio.h>

extern const char buildinfo_commit[];

/* Writes "PROGRAM VERSION (commit COMMIT)" and a newline to out: what
 * --version prints, the same figures as tollgate_build_info in /metrics. */
void buildinfo_print(FILE *out, const char *program);

#endif
