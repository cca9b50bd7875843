/* Unit tests of log: levels, the line format with file, line and request id,
 * one line per record whatever the message holds, and whole lines under
 * concurrent writers. */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "unit.h"
#include "util.h"

static char PATH[256];

/* Starts a fresh log file at level. */
static void fresh_log(enum log_level level)
{
    if (PATH[0])
        unlink(PATH);
    CU_ASSERT_EQUAL_FATAL(unit_tmpfile(PATH, sizeof PATH), 0);
    CU_ASSERT_EQUAL_FATAL(log_open(PATH, level), 0);
}

/* The log's content (caller frees). */
static char *contents(void)
{
    char *s = unit_slurp(PATH, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    return s;
}

static void test_level_parse(void)
{
    CU_ASSERT_EQUAL(log_level_parse("debug"), LOG_DEBUG);
    CU_ASSERT_EQUAL(log_level_parse("info"), LOG_INFO);
    CU_ASSERT_EQUAL(log_level_parse("warn"), LOG_WARN);
    CU_ASSERT_EQUAL(log_level_parse("error"), LOG_ERROR);
    CU_ASSERT_EQUAL(log_level_parse("DEBUG"), -1);
    CU_ASSERT_EQUAL(log_level_parse("warning"), -1);
    CU_ASSERT_EQUAL(log_level_parse(""), -1);
    CU_ASSERT_EQUAL(log_level_parse("info "), -1);
}

static void test_levels_filter(void)
{
    fresh_log(LOG_INFO);
    CU_ASSERT_EQUAL(log_get_level(), LOG_INFO);
    log_debug("message-debug");
    log_info("message-info %d", 1);
    log_warn("message-warn");
    log_error("message-error");
    char *s = contents();
    CU_ASSERT_PTR_NULL(strstr(s, "message-debug"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, " info "));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "message-info 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, " warn "));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "message-warn\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, " error "));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "message-error\n"));
    CU_ASSERT_EQUAL(unit_count_char(s, '\n'), 3);
    free(s);

    fresh_log(LOG_ERROR);
    CU_ASSERT_EQUAL(log_get_level(), LOG_ERROR);
    log_info("quiet");
    log_warn("quiet");
    log_error("loud");
    s = contents();
    CU_ASSERT_PTR_NULL(strstr(s, "quiet"));
    CU_ASSERT_EQUAL(unit_count_char(s, '\n'), 1);
    free(s);

    fresh_log(LOG_DEBUG);
    log_debug("chatty");
    s = contents();
    CU_ASSERT_PTR_NOT_NULL(strstr(s, " debug "));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "chatty\n"));
    free(s);
}

static void test_line_format(void)
{
    fresh_log(LOG_INFO);
    log_set_request_id(NULL);
    int64_t before = now_ms();
    int line = __LINE__ + 1;
    log_info("formatted %s", "line");
    int64_t after = now_ms();
    char *s = contents();
    /* Starts with an RFC 3339 timestamp of the moment of writing. */
    char *sp = strchr(s, ' ');
    CU_ASSERT_PTR_NOT_NULL_FATAL(sp);
    *sp = '\0';
    int64_t ts = 0;
    CU_ASSERT_EQUAL(parse_time_ms(s, &ts), 0);
    CU_ASSERT(ts >= before - 1 && ts <= after + 1);
    *sp = ' ';
    /* Carries the process id, the base name of the file and the line. */
    char want[64];
    snprintf(want, sizeof want, "[%d]", (int)getpid());
    CU_ASSERT_PTR_NOT_NULL(strstr(s, want));
    snprintf(want, sizeof want, " test_log.c:%d ", line);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, want));
    CU_ASSERT_PTR_NULL(strstr(s, "tests/unit/"));
    CU_ASSERT_PTR_NULL(strstr(s, "req="));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "formatted line\n"));
    free(s);
}

static void test_write_direct(void)
{
    fresh_log(LOG_ERROR);
    /* log_write itself writes whatever the level: the macros filter. */
    log_write(LOG_WARN, "/some/dir/handler.c", 77, "direct %s %d", "call", 5);
    log_write(LOG_DEBUG, "plain.c", 1, "no directory");
    char *s = contents();
    CU_ASSERT_EQUAL(unit_count_char(s, '\n'), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, " warn "));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, " handler.c:77 direct call 5\n"));
    CU_ASSERT_PTR_NULL(strstr(s, "/some/dir"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, " debug "));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, " plain.c:1 no directory\n"));
    free(s);
}

static void test_request_id_in_line(void)
{
    fresh_log(LOG_INFO);
    log_set_request_id("req-77.a:b");
    CU_ASSERT_STRING_EQUAL(log_request_id(), "req-77.a:b");
    log_info("with id");
    log_set_request_id(NULL);
    CU_ASSERT_STRING_EQUAL(log_request_id(), "");
    log_info("without id");
    char *s = contents();
    char *first_end = strchr(s, '\n');
    CU_ASSERT_PTR_NOT_NULL_FATAL(first_end);
    *first_end = '\0';
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "req=req-77.a:b"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "with id"));
    CU_ASSERT_PTR_NULL(strstr(first_end + 1, "req="));
    CU_ASSERT_PTR_NOT_NULL(strstr(first_end + 1, "without id"));
    free(s);
}

static void test_request_id_bounded(void)
{
    char id[300];
    memset(id, 'i', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    log_set_request_id(id);
    CU_ASSERT_EQUAL(strlen(log_request_id()), 128);
    log_set_request_id("");
    CU_ASSERT_STRING_EQUAL(log_request_id(), "");
}

static void *other_thread(void *arg)
{
    const char **seen = arg;
    *seen = xstrdup(log_request_id());
    log_set_request_id("thread-own");
    return NULL;
}

static void test_request_id_per_thread(void)
{
    log_set_request_id("main-thread");
    const char *seen = NULL;
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, other_thread, &seen), 0);
    pthread_join(t, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(seen);
    CU_ASSERT_STRING_EQUAL(seen, "");
    CU_ASSERT_STRING_EQUAL(log_request_id(), "main-thread");
    free((void *)seen);
    log_set_request_id(NULL);
}

static void test_newlines_flattened(void)
{
    fresh_log(LOG_INFO);
    log_info("first\nsecond\rthird\r\nfourth");
    log_error("%s", "evil\n2026-01-01T00:00:00.000Z error [1] forged.c:1 injected");
    char *s = contents();
    CU_ASSERT_EQUAL(unit_count_char(s, '\n'), 2);
    CU_ASSERT_EQUAL(unit_count_char(s, '\r'), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "first second third  fourth\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "evil 2026-01-01T00:00:00.000Z error"));
    free(s);
}

static void test_long_message_one_line(void)
{
    fresh_log(LOG_INFO);
    char *big = xmalloc(5001);
    memset(big, 'x', 5000);
    big[5000] = '\0';
    big[3000] = '\n'; /* past the cut: must not matter */
    log_info("%s", big);
    log_info("next");
    free(big);
    size_t len = 0;
    char *s = unit_slurp(PATH, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(unit_count_char(s, '\n'), 2);
    char *nl = strchr(s, '\n');
    CU_ASSERT(nl != NULL && (size_t)(nl - s) < 2048);
    CU_ASSERT_PTR_NOT_NULL(strstr(nl + 1, "next\n"));
    free(s);
}

enum { WRITERS = 4, LINES = 300 };

static void *writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    char rid[16];
    snprintf(rid, sizeof rid, "w%d", id);
    log_set_request_id(rid);
    for (int i = 0; i < LINES; i++)
        log_info("writer=%d seq=%d %s", id, i, "padding-padding-padding-padding-padding");
    return NULL;
}

static void test_concurrent_lines_whole(void)
{
    fresh_log(LOG_INFO);
    pthread_t t[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    char *s = contents();
    CU_ASSERT_EQUAL(unit_count_char(s, '\n'), WRITERS * LINES);
    /* Every line is whole: its own request id and message, nothing else. */
    int good = 0;
    char *save = NULL;
    for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int w = -1, seq = -1;
        char *msg = strstr(line, "writer=");
        char rid[24];
        if (msg && sscanf(msg, "writer=%d seq=%d", &w, &seq) == 2) {
            snprintf(rid, sizeof rid, "req=w%d ", w);
            size_t n = strlen(line);
            const char *tail = "padding-padding-padding-padding-padding";
            good += strstr(line, rid) != NULL && n > strlen(tail) &&
                    strcmp(line + n - strlen(tail), tail) == 0 && strncmp(line, "20", 2) == 0;
        }
    }
    CU_ASSERT_EQUAL(good, WRITERS * LINES);
    free(s);
    log_set_request_id(NULL);
}

static void test_open_failure_and_close(void)
{
    CU_ASSERT_EQUAL(log_open("/nonexistent-dir/tollgate/x.log", LOG_INFO), -1);
    CU_ASSERT_EQUAL(log_open(NULL, LOG_WARN), 0); /* standard error */
    CU_ASSERT_EQUAL(log_get_level(), LOG_WARN);
    log_close();
    log_close(); /* twice is harmless */
}

static void on_hup(int sig)
{
    (void)sig;
    log_reopen_request();
}

/* What logrotate does: rename the file, send SIGHUP; the next lines go to a
 * new file at the configured path, the earlier ones stay in the renamed one. */
static void test_reopen_after_rename(void)
{
    char rotated[300];
    fresh_log(LOG_INFO);
    snprintf(rotated, sizeof rotated, "%s.1", PATH);
    log_info("before-rotation");
    CU_ASSERT_EQUAL_FATAL(rename(PATH, rotated), 0);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_hup;
    sigemptyset(&sa.sa_mask);
    CU_ASSERT_EQUAL_FATAL(sigaction(SIGHUP, &sa, &old), 0);
    CU_ASSERT_FALSE(log_reopen_pending());
    CU_ASSERT_EQUAL(raise(SIGHUP), 0);
    CU_ASSERT_TRUE(log_reopen_pending());
    sigaction(SIGHUP, &old, NULL);
    log_info("still-old-file"); /* until the loop reopens */
    CU_ASSERT_EQUAL(log_reopen(), 1);
    CU_ASSERT_FALSE(log_reopen_pending());
    log_info("after-rotation");
    char *now = contents();
    char *old_text = unit_slurp(rotated, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(old_text);
    CU_ASSERT_PTR_NOT_NULL(strstr(old_text, "before-rotation\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(old_text, "still-old-file\n"));
    CU_ASSERT_PTR_NULL(strstr(old_text, "after-rotation"));
    CU_ASSERT_PTR_NOT_NULL(strstr(now, "after-rotation\n"));
    CU_ASSERT_EQUAL(unit_count_char(now, '\n'), 1);
    struct stat st;
    CU_ASSERT_EQUAL(stat(PATH, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0640);
    free(now);
    free(old_text);
    unlink(rotated);
}

/* Standard error is never reopened; an unreachable path keeps the old file. */
static void test_reopen_without_file_or_path(void)
{
    log_close();
    log_reopen_request();
    CU_ASSERT_EQUAL(log_reopen(), 0);
    CU_ASSERT_FALSE(log_reopen_pending());

    char dir[256];
    CU_ASSERT_EQUAL_FATAL(unit_tmpfile(dir, sizeof dir), 0);
    unlink(dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/x.log", dir);
    CU_ASSERT_EQUAL_FATAL(log_open(path, LOG_INFO), 0);
    unlink(path);
    rmdir(dir);
    CU_ASSERT_EQUAL(log_reopen(), -1);
    log_info("old-descriptor-still-works"); /* no crash, nowhere to read it */
    log_close();
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_level_parse),
        UNIT_TEST(test_levels_filter),
        UNIT_TEST(test_line_format),
        UNIT_TEST(test_write_direct),
        UNIT_TEST(test_request_id_in_line),
        UNIT_TEST(test_request_id_bounded),
        UNIT_TEST(test_request_id_per_thread),
        UNIT_TEST(test_newlines_flattened),
        UNIT_TEST(test_long_message_one_line),
        UNIT_TEST(test_concurrent_lines_whole),
        UNIT_TEST(test_open_failure_and_close),
        UNIT_TEST(test_reopen_after_rename),
        UNIT_TEST(test_reopen_without_file_or_path),
    };
    int rc = unit_run("log", tests, TG_ARRAY_LEN(tests));
    log_close();
    if (PATH[0])
        unlink(PATH);
    return rc;
}
