/* ctl_unit: what the tests of tollgatectl's modules share -- capturing what
 * a function writes to stdout or stderr. */
#ifndef TOLLGATE_CTL_UNIT_H
#define TOLLGATE_CTL_UNIT_H

#include "unit.h"

struct capture {
    int fd;    /* 1 or 2 */
    int saved; /* the original descriptor */
    char path[128];
};

/* Sends fd (1 or 2) to a temporary file until capture_end. */
static inline void capture_begin(struct capture *c, int fd)
{
    fflush(fd == 1 ? stdout : stderr);
    c->fd = fd;
    CU_ASSERT_FATAL(unit_tmpfile(c->path, sizeof c->path) == 0);
    c->saved = dup(fd);
    FILE *f = fopen(c->path, "w");
    CU_ASSERT_FATAL(f != NULL);
    dup2(fileno(f), fd);
    fclose(f);
}

/* Restores fd; returns what was written (caller frees). */
static inline char *capture_end(struct capture *c)
{
    fflush(c->fd == 1 ? stdout : stderr);
    dup2(c->saved, c->fd);
    close(c->saved);
    char *text = unit_slurp(c->path, NULL);
    unlink(c->path);
    return text ? text : strdup("");
}

#endif
