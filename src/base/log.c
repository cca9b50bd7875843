#include "log.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static int log_fd = 2;
static enum log_level log_min = LOG_INFO;
static char log_path[4096]; /* "" while logging to standard error */
static volatile sig_atomic_t reopen_wanted;
static _Thread_local char request_id[129];

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_open(const char *path, enum log_level level)
{
    log_min = level;
    if (!path || !*path) {
        log_close();
        return 0;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    if (log_fd > 2)
        close(log_fd);
    log_fd = fd;
    strlcpy_tg(log_path, path, sizeof log_path);
    return 0;
}

void log_close(void)
{
    if (log_fd > 2)
        close(log_fd);
    log_fd = 2;
    log_path[0] = '\0';
}

void log_reopen_request(void)
{
    reopen_wanted = 1;
}

int log_reopen_pending(void)
{
    return reopen_wanted != 0;
}

int log_reopen(void)
{
    reopen_wanted = 0;
    if (log_fd <= 2 || !log_path[0])
        return 0;
    int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    /* dup3 replaces the descriptor in one step (writers never see it closed)
     * and, unlike dup2, keeps it closed on exec. */
    int rc = dup3(fd, log_fd, O_CLOEXEC) < 0 ? -1 : 1;
    close(fd);
    return rc;
}

int log_level_parse(const char *name)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(level_names); i++)
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

enum log_level log_get_level(void)
{
    return log_min;
}

void log_set_request_id(const char *id)
{
    strlcpy_tg(request_id, id ? id : "", sizeof request_id);
}

const char *log_request_id(void)
{
    return request_id;
}

void log_write(enum log_level level, const char *file, int line, const char *fmt, ...)
{
    char buf[2048];
    char ts[TG_TIME_LEN];
    format_time_ms(now_ms(), ts);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int n = snprintf(buf, sizeof buf, "%s %s [%d] %s:%d%s%s", ts, level_names[level],
                     (int)getpid(), base, line, request_id[0] ? " req=" : "", request_id);
    if (n < 0)
        return;
    if ((size_t)n < sizeof buf - 1)
        buf[n++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m > 0 ? (size_t)m : 0);
    if (len > sizeof buf - 2)
        len = sizeof buf - 2;
    /* One line per record whatever the message holds. */
    for (size_t i = (size_t)n; i < len; i++)
        if (buf[i] == '\n' || buf[i] == '\r')
            buf[i] = ' ';
    buf[len++] = '\n';
    ssize_t w = write(log_fd, buf, len);
    (void)w;
}
