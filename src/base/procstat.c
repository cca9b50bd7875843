#include "procstat.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int procstat_parse(const char *stat, int64_t ticks_per_s, int64_t page_size, int64_t boot_ms,
                   struct procstat *out)
{
    /* The command name is the one field that can hold anything, and it is
     * in parentheses: the fields resume after the last ')'. */
    const char *p = strrchr(stat, ')');
    if (!p || ticks_per_s <= 0)
        return -1;
    unsigned long long utime, stime, start;
    long long rss;
    /* After ")": state (3), then fields 4..13 skipped, utime (14), stime
     * (15), 16..21 skipped, starttime (22), vsize (23), rss (24). */
    int n = sscanf(p + 1,
                   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d"
                   " %llu %*u %lld",
                   &utime, &stime, &start, &rss);
    if (n != 4)
        return -1;
    out->cpu_ms = (int64_t)((utime + stime) * 1000 / (unsigned long long)ticks_per_s);
    out->start_ms = boot_ms + (int64_t)(start * 1000 / (unsigned long long)ticks_per_s);
    out->rss_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page_size : 0;
    return 0;
}

int64_t procstat_boot_ms(const char *proc_stat)
{
    const char *p = strstr(proc_stat, "\nbtime ");
    if (!p)
        return -1;
    long long s = strtoll(p + 7, NULL, 10);
    return s > 0 ? (int64_t)s * 1000 : -1;
}

/* Reads at most size - 1 bytes of path into buf; 0 or -1. */
static int read_text(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0 ? 0 : -1;
}

static uint64_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    uint64_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n > 0 ? n - 1 : 0; /* not the one opendir holds */
}

/* /proc/stat's interrupt line can be long: its lines are read one by one. */
static int64_t boot_ms(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return -1;
    char line[256] = "\n";
    int64_t ms = -1;
    while (ms < 0 && fgets(line + 1, sizeof line - 1, f))
        ms = procstat_boot_ms(line); /* "\nbtime ..." when it is that line */
    fclose(f);
    return ms;
}

int procstat_self(struct procstat *out)
{
    memset(out, 0, sizeof *out);
    char stat[1024];
    if (read_text("/proc/self/stat", stat, sizeof stat) != 0)
        return -1;
    int64_t boot = boot_ms();
    if (boot < 0 || procstat_parse(stat, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), boot, out) != 0)
        return -1;
    out->open_fds = count_fds();
    return 0;
}
