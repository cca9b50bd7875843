/* procstat: this process's figures in the Prometheus conventions (start
 * time, CPU time, resident memory, open descriptors), read from /proc.
 * Parsing is separate from reading so that it can be tested on fixed text. */
#ifndef TOLLGATE_PROCSTAT_H
#define TOLLGATE_PROCSTAT_H

#include <stdint.h>

#include "util.h"

struct procstat {
    int64_t start_ms;   /* since the epoch */
    int64_t cpu_ms;     /* user + system */
    uint64_t rss_bytes;
    uint64_t open_fds;
};

/* Fills out from the text of /proc/<pid>/stat (the comm field may hold
 * spaces and parentheses), given the clock ticks per second, the page size
 * and the boot time in ms since the epoch.  open_fds is left alone.  0, or -1
 * when the text is not a stat line. */
int procstat_parse(const char *stat, int64_t ticks_per_s, int64_t page_size, int64_t boot_ms,
                   struct procstat *out) TG_WUR;

/* The boot time in ms since the epoch from the text of /proc/stat ("btime"
 * line); -1 when absent. */
int64_t procstat_boot_ms(const char *proc_stat);

/* This process's figures, open_fds included.  0, or -1 when /proc cannot be
 * read (out is then zeroed). */
int procstat_self(struct procstat *out) TG_WUR;

#endif
