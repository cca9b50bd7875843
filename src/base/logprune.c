#include "logprune.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

bool logprune_is_rotated(const char *name)
{
    /* The last ".log." or ".log-" with something on both sides. */
    for (const char *p = strstr(name, ".log"); p; p = strstr(p + 1, ".log")) {
        if (p > name && (p[4] == '.' || p[4] == '-') && p[5] != '\0')
            return true;
    }
    return false;
}

int logprune_run(const char *log_file, int64_t days, time_t now, struct api_error *e)
{
    if (!log_file || !*log_file || days <= 0)
        return 0;
    char dir[4096];
    const char *slash = strrchr(log_file, '/');
    if (!slash)
        strlcpy_tg(dir, ".", sizeof dir);
    else if (slash == log_file)
        strlcpy_tg(dir, "/", sizeof dir);
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - log_file), log_file);
    DIR *d = opendir(dir);
    if (!d) {
        api_error_set(e, ERR_INTERNAL, NULL, "logs: cannot read %s: %s", dir, strerror(errno));
        return -1;
    }
    int fd = dirfd(d), removed = 0;
    uid_t me = geteuid();
    time_t cutoff = now - (time_t)days * 86400;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (!logprune_is_rotated(de->d_name) ||
            fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        /* Another account's files, even named like ours, are not ours. */
        if (!S_ISREG(st.st_mode) || st.st_uid != me || st.st_mtime >= cutoff)
            continue;
        if (unlinkat(fd, de->d_name, 0) != 0) {
            log_warn("logs: cannot remove %s/%s: %s", dir, de->d_name, strerror(errno));
            continue;
        }
        removed++;
        log_info("logs: removed %s/%s (older than %lld days)", dir, de->d_name, (long long)days);
    }
    closedir(d);
    return removed;
}
