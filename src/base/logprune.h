/* logprune: removes the rotated copies of the log files, the [retention]
 * logs_days of docs/retention.md.  Tollgate appends to one file per process
 * and never rotates it (a rotator such as logrotate with copytruncate
 * does); what piles up is the rotators' copies, which nothing else removes
 * when the rotator keeps them by count rather than by age. */
#ifndef TOLLGATE_LOGPRUNE_H
#define TOLLGATE_LOGPRUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "util.h"

/* True when name is a rotated copy of a log file: "<stem>.log.<suffix>" or
 * "<stem>.log-<suffix>" with a stem and suffix of at least one character
 * (billingd.log.1, tollgate-fcgi.log.2.gz, billingd.log-20261201).  A live
 * log ("<stem>.log") never is. */
bool logprune_is_rotated(const char *name);

/* In the directory holding log_file, removes the rotated copies (above)
 * that are regular files owned by this process's user and last modified
 * more than days days before now; each one removed is logged.  log_file ""
 * (standard error) or days 0: nothing is done.  Returns the number
 * removed, or -1 with e filled when the directory cannot be read (a file
 * that cannot be removed is logged and skipped). */
int logprune_run(const char *log_file, int64_t days, time_t now, struct api_error *e);

#endif
