/* log: levelled log lines carrying file, line and the current request id.
 * A line is written with one write(2) on an O_APPEND descriptor, so lines of
 * concurrent threads and processes never interleave.  Never pass a plaintext
 * key, token or the HMAC secret to these macros. */
#ifndef TOLLGATE_LOG_H
#define TOLLGATE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Opens path for appending (NULL: standard error).  Returns 0 or -1. */
int log_open(const char *path, enum log_level level);
void log_close(void);

/* Log rotation (logrotate renames the file, then sends SIGHUP).
 * log_reopen_request only sets a flag, so a signal handler may call it;
 * log_reopen_pending tells whether one is waiting.  log_reopen opens the
 * path given to log_open again and puts it in place of the current file with
 * dup2, so a line that another thread writes meanwhile goes to one file or
 * the other, whole; it clears the flag.  Returns 1 when the file was
 * reopened, 0 when there is nothing to reopen (standard error), -1 when the
 * path cannot be opened (the old file stays in use). */
void log_reopen_request(void);
int log_reopen_pending(void);
int log_reopen(void);
/* "debug", "info", "warn", "error" -> level; returns -1 if unknown. */
int log_level_parse(const char *name);
enum log_level log_get_level(void);

/* The request id the calling thread is serving ("" when none). */
void log_set_request_id(const char *id);
const char *log_request_id(void);

void log_write(enum log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define LOG_AT(lvl, ...)                                                   \
    do {                                                                   \
        if ((lvl) >= log_get_level())                                      \
            log_write((lvl), __FILE__, __LINE__, __VA_ARGS__);             \
    } while (0)
#define log_debug(...) LOG_AT(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_INFO, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_WARN, __VA_ARGS__)
#define log_error(...) LOG_AT(LOG_ERROR, __VA_ARGS__)

#endif
