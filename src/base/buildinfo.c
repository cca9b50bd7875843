#include "buildinfo.h"

void buildinfo_print(FILE *out, const char *program)
{
    fprintf(out, "%s %s (commit %s)\n", program, PACKAGE_VERSION, buildinfo_commit);
}
