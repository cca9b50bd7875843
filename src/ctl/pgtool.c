#include "pgtool.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A value as libpq's keyword=value syntax reads it: in single quotes, with
 * backslash before ' and \. */
static void put_quoted(struct strbuf *b, const char *v)
{
    strbuf_putc(b, '\'');
    for (; *v; v++) {
        if (*v == '\'' || *v == '\\')
            strbuf_putc(b, '\\');
        strbuf_putc(b, *v);
    }
    strbuf_putc(b, '\'');
}

int pgtool_conninfo(const char *conninfo, struct strbuf *out, char **password,
                    struct api_error *e)
{
    *password = NULL;
    strbuf_reset(out);
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
    if (!opts) {
        /* libpq's message may quote the text, password included. */
        api_error_set(e, ERR_INVALID_ARGUMENT, NULL, "%s",
                      msg ? "the PostgreSQL conninfo does not parse" : "out of memory");
        PQfreemem(msg);
        return -1;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        if (strcmp(o->keyword, "password") == 0) {
            free(*password);
            *password = xstrdup(o->val);
            continue;
        }
        if (out->len)
            strbuf_putc(out, ' ');
        strbuf_printf(out, "%s=", o->keyword);
        put_quoted(out, o->val);
    }
    PQconninfoFree(opts);
    if (!out->p)
        strbuf_put(out, "", 0);
    return 0;
}

/* In the child: only async-signal-safe calls until execvp, except setenv,
 * which is safe here because tollgatectl runs one thread. */
static void child(char *const argv[], const char *password, int out_fd)
{
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, STDIN_FILENO) < 0)
        _exit(126);
    if (out_fd >= 0 && dup2(out_fd, STDOUT_FILENO) < 0)
        _exit(126);
    umask(077);
    /* Without one in the conninfo, libpq's other sources (PGPASSWORD as
     * tollgatectl got it, the password file) serve the child as they served
     * tollgatectl. */
    if (password && setenv("PGPASSWORD", password, 1) != 0)
        _exit(126);
    execvp(argv[0], argv);
    _exit(errno == ENOENT ? 127 : 126);
}

int pgtool_run(char *const argv[], const char *password, int out_fd, struct api_error *e)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        api_error_set(e, ERR_INTERNAL, NULL, "cannot start %s: %s", argv[0], strerror(errno));
        return -1;
    }
    if (pid == 0)
        child(argv, password, out_fd);
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            api_error_set(e, ERR_INTERNAL, NULL, "waiting for %s: %s", argv[0], strerror(errno));
            return -1;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        api_error_set(e, ERR_INTERNAL, NULL, "%s was not found on PATH (PostgreSQL's client"
                                             " programs, Debian's postgresql-client)", argv[0]);
    else if (WIFEXITED(status))
        api_error_set(e, ERR_INTERNAL, NULL, "%s failed (exit status %d; its messages are above)",
                      argv[0], WEXITSTATUS(status));
    else
        api_error_set(e, ERR_INTERNAL, NULL, "%s was killed by signal %d", argv[0],
                      WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return -1;
}
