/* ctl_secret: see ctl_secret.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl_secret.h"

int ctl_secret_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

int ctl_secret_read(const char *path, char *out, size_t outlen, char *msg, size_t msglen)
{
    int from_stdin = strcmp(path, "-") == 0;
    FILE *f = from_stdin ? stdin : fopen(path, "r");
    out[0] = '\0';
    if (!f) {
        snprintf(msg, msglen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (!from_stdin && fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
        (st.st_mode & S_IROTH)) {
        snprintf(msg, msglen, "%s: other users may read this file; make it private first "
                              "(chmod o-rwx)", path);
        fclose(f);
        return -1;
    }
    int rc = 0;
    if (!fgets(out, (int)outlen, f)) {
        snprintf(msg, msglen, "%s: %s", from_stdin ? "standard input" : path,
                 ferror(f) ? strerror(errno) : "empty");
        rc = -1;
    } else if (!strchr(out, '\n') && strlen(out) == outlen - 1 && !feof(f)) {
        snprintf(msg, msglen, "%s: the first line is too long for a secret",
                 from_stdin ? "standard input" : path);
        rc = -1;
    }
    if (!from_stdin)
        fclose(f);
    if (rc == 0) {
        /* Trim, then whatever remains must be one word. */
        size_t n = strlen(out);
        while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ' ||
                         out[n - 1] == '\t'))
            out[--n] = '\0';
        size_t lead = strspn(out, " \t");
        memmove(out, out + lead, n - lead + 1);
        if (!ctl_secret_ok(out)) {
            snprintf(msg, msglen, "%s: %s", from_stdin ? "standard input" : path,
                     *out ? "the secret holds white space or control characters"
                          : "the first line is empty");
            rc = -1;
        }
    }
    if (rc != 0)
        explicit_bzero(out, outlen);
    return rc;
}
