/* Unit tests of the per-connection statement cache: found by text (not by
 * pointer), distinct names, forgetting one leaves the others, clearing
 * starts over, and past PGSTMT_MAX nothing more is recorded. */
#include <stdio.h>
#include <string.h>

#include "pgstmt.h"
#include "util.h"
#include "unit.h"

static void test_find_by_text(void)
{
    struct pgstmt_cache c = {0};
    CU_ASSERT_PTR_NULL(pgstmt_find(&c, "SELECT 1"));
    const char *a = pgstmt_add(&c, "SELECT 1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    char copy[] = "SELECT 1"; /* same text, another buffer */
    CU_ASSERT_PTR_EQUAL(pgstmt_find(&c, copy), a);
    CU_ASSERT_PTR_NULL(pgstmt_find(&c, "SELECT 2"));
    CU_ASSERT_PTR_NULL(pgstmt_find(&c, "SELECT 1 "));
    /* adding it again returns the same statement */
    CU_ASSERT_PTR_EQUAL(pgstmt_add(&c, copy), a);
    CU_ASSERT_EQUAL(pgstmt_count(&c), 1);
    pgstmt_clear(&c);
}

static void test_names_distinct_and_forget(void)
{
    struct pgstmt_cache c = {0};
    char n1[PGSTMT_NAME], n2[PGSTMT_NAME], n3[PGSTMT_NAME];
    snprintf(n1, sizeof n1, "%s", pgstmt_add(&c, "SELECT $1::int"));
    snprintf(n2, sizeof n2, "%s", pgstmt_add(&c, "SELECT $1::text"));
    snprintf(n3, sizeof n3, "%s", pgstmt_add(&c, "SELECT now()"));
    CU_ASSERT_STRING_NOT_EQUAL(n1, n2);
    CU_ASSERT_STRING_NOT_EQUAL(n2, n3);
    CU_ASSERT_STRING_NOT_EQUAL(n1, n3);
    pgstmt_forget(&c, n2);
    CU_ASSERT_EQUAL(pgstmt_count(&c), 2);
    CU_ASSERT_PTR_NULL(pgstmt_find(&c, "SELECT $1::text"));
    CU_ASSERT_STRING_EQUAL(pgstmt_find(&c, "SELECT $1::int"), n1);
    CU_ASSERT_STRING_EQUAL(pgstmt_find(&c, "SELECT now()"), n3);
    /* prepared again, it gets a name the session has not used: the old
     * one may still exist on the server (forgotten inside a failed
     * transaction, where it could not be deallocated) */
    const char *again = pgstmt_add(&c, "SELECT $1::text");
    CU_ASSERT_STRING_NOT_EQUAL(again, n2);
    CU_ASSERT_STRING_NOT_EQUAL(again, n1);
    CU_ASSERT_STRING_NOT_EQUAL(again, n3);
    pgstmt_forget(&c, "no_such_name"); /* harmless */
    CU_ASSERT_EQUAL(pgstmt_count(&c), 3);
    pgstmt_clear(&c);
    CU_ASSERT_EQUAL(pgstmt_count(&c), 0);
    CU_ASSERT_PTR_NULL(pgstmt_find(&c, "SELECT now()"));
    pgstmt_clear(&c); /* twice is harmless */
}

static void test_bounded(void)
{
    struct pgstmt_cache c = {0};
    char sql[64];
    for (int i = 0; i < PGSTMT_MAX; i++) {
        snprintf(sql, sizeof sql, "SELECT %d", i);
        CU_ASSERT_PTR_NOT_NULL(pgstmt_add(&c, sql));
    }
    CU_ASSERT_EQUAL(pgstmt_count(&c), PGSTMT_MAX);
    CU_ASSERT_PTR_NULL(pgstmt_add(&c, "SELECT 'one more'"));
    CU_ASSERT_PTR_NULL(pgstmt_find(&c, "SELECT 'one more'"));
    CU_ASSERT_PTR_NOT_NULL(pgstmt_find(&c, "SELECT 17"));
    CU_ASSERT_PTR_NOT_NULL(pgstmt_add(&c, "SELECT 17")); /* known: still found */
    pgstmt_clear(&c);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_find_by_text),
        UNIT_TEST(test_names_distinct_and_forget),
        UNIT_TEST(test_bounded),
    };
    return unit_run("pgstmt", tests, TG_ARRAY_LEN(tests));
}
