/* pgtool: runs PostgreSQL's client programs (pg_dump, pg_restore) for
 * tollgatectl, as child processes started with execvp, never through a
 * shell.  A conninfo's password never reaches their command line, where
 * any local user could read it (ps): it is split off and handed over in
 * the child's environment (PGPASSWORD). */
#ifndef TOLLGATE_PGTOOL_H
#define TOLLGATE_PGTOOL_H

#include "error.h"
#include "strbuf.h"
#include "util.h"

/* Splits conninfo (keyword=value pairs or a postgresql:// URI) into out
 * (reset first): the same connection as keyword=value pairs without the
 * password, each value single-quoted as libpq reads it; and *password, the
 * password it held (caller frees; NULL when none).  Returns 0, or -1 with e
 * filled when conninfo does not parse (the message never repeats it). */
int pgtool_conninfo(const char *conninfo, struct strbuf *out, char **password,
                    struct api_error *e) TG_WUR;

/* Runs argv[0] (found on PATH) with argv, PGPASSWORD set to password when
 * it is not NULL (else this process's environment as it is), umask 077,
 * standard input /dev/null and standard output out_fd (-1: this
 * process's), and waits for it.  Returns 0 when it exited with status 0,
 * or -1 with e saying how it ended. */
int pgtool_run(char *const argv[], const char *password, int out_fd,
               struct api_error *e) TG_WUR;

#endif
