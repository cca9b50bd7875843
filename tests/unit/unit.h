/* unit: the few helpers every unit test program shares.  Each program builds
 * one CUnit suite from a table of tests and exits non-zero when any fails, so
 * the automake test driver reports it. */
#ifndef TOLLGATE_UNIT_H
#define TOLLGATE_UNIT_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct unit_test {
    const char *name;
    CU_TestFunc fn;
};

#define UNIT_TEST(fn) {#fn, fn}

/* Registers tests as one suite named suite, runs it verbosely and returns
 * the exit status: 0 when every test passed, 1 otherwise (a registry error
 * counts as a failure). */
static inline int unit_run(const char *suite, const struct unit_test *tests, size_t n)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "%s: %s\n", suite, CU_get_error_msg());
        return 1;
    }
    CU_pSuite s = CU_add_suite(suite, NULL, NULL);
    for (size_t i = 0; s && i < n; i++) {
        if (!CU_add_test(s, tests[i].name, tests[i].fn)) {
            s = NULL;
            break;
        }
    }
    if (!s) {
        fprintf(stderr, "%s: %s\n", suite, CU_get_error_msg());
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_ErrorCode rc = CU_basic_run_tests();
    unsigned failed = CU_get_number_of_tests_failed() + CU_get_number_of_failures();
    CU_cleanup_registry();
    return rc != CUE_SUCCESS || failed != 0;
}

/* Creates an empty temporary file and writes its name into path (at least
 * 64 bytes); returns 0 or -1.  The caller unlinks it. */
static inline int unit_tmpfile(char *path, size_t size)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, size, "%s/tollgate-unit-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* The whole content of path as a new NUL-terminated string (caller frees),
 * or NULL when it cannot be read. */
static inline char *unit_slurp(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0, n;
    char *buf = malloc(cap);
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) {
        buf[len] = '\0';
        if (len_out)
            *len_out = len;
    }
    return buf;
}

/* Number of occurrences of c in s. */
static inline size_t unit_count_char(const char *s, char c)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

#endif
