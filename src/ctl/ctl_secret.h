/* ctl_secret: reading a secret from a file or standard input, the only
 * ways tollgatectl takes one (never an argument: the process list shows
 * arguments to every user). */
#ifndef TOLLGATE_CTL_SECRET_H
#define TOLLGATE_CTL_SECRET_H

#include <stddef.h>

/* Reads the first line of path ("-": standard input) into out (outlen
 * bytes, at least 2), without the line end and surrounding white space.
 * Refuses, with a sentence in msg: a file that cannot be read, a regular
 * file other users may read (mode o+r), an empty secret, one longer than
 * outlen - 1 bytes or one holding white space or control characters.
 * Returns 0 or -1. */
int ctl_secret_read(const char *path, char *out, size_t outlen, char *msg, size_t msglen);

/* Whether s is acceptable as a secret (non-empty, no white space or
 * control characters): the rule ctl_secret_read applies, for secrets from
 * the environment. */
int ctl_secret_ok(const char *s);

#endif
