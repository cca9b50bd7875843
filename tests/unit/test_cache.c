/* Unit tests of cache: copies in and out, TTL with injected time, capacity,
 * removal and statistics. */
#include <stdio.h>
#include <string.h>

#include "cache.h"
#include "unit.h"
#include "util.h"

/* True when key is fresh at now and its value equals want. */
static bool has(struct cache *c, const char *key, int64_t now, const char *want)
{
    char *v = NULL;
    size_t len = 0;
    if (!cache_get(c, key, now, &v, &len))
        return false;
    bool same = len == strlen(want) && strcmp(v, want) == 0;
    free(v);
    return same;
}

static void test_put_get_copy(void)
{
    struct cache *c = cache_new(16, 1000);
    char value[] = "record";
    cache_put(c, "k", value, strlen(value), 5000);
    value[0] = 'X'; /* the cache kept its own copy */
    char *out = NULL;
    size_t len = 0;
    CU_ASSERT_TRUE_FATAL(cache_get(c, "k", 5000, &out, &len));
    CU_ASSERT_EQUAL(len, 6);
    CU_ASSERT_STRING_EQUAL(out, "record");
    out[0] = 'Y'; /* and hands out copies */
    free(out);
    CU_ASSERT_TRUE(has(c, "k", 5001, "record"));
    /* len may be NULL. */
    out = NULL;
    CU_ASSERT_TRUE(cache_get(c, "k", 5001, &out, NULL));
    CU_ASSERT_STRING_EQUAL(out, "record");
    free(out);
    cache_free(c);
}

static void test_binary_value(void)
{
    struct cache *c = cache_new(4, 1000);
    static const char bin[] = {'a', '\0', 'b', '\xff'};
    cache_put(c, "bin", bin, sizeof bin, 0);
    char *out = NULL;
    size_t len = 0;
    CU_ASSERT_TRUE_FATAL(cache_get(c, "bin", 0, &out, &len));
    CU_ASSERT_EQUAL(len, sizeof bin);
    CU_ASSERT_EQUAL(memcmp(out, bin, sizeof bin), 0);
    CU_ASSERT_EQUAL(out[len], '\0'); /* terminated after len bytes */
    free(out);
    cache_put(c, "empty", "", 0, 0);
    CU_ASSERT_TRUE_FATAL(cache_get(c, "empty", 0, &out, &len));
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    free(out);
    cache_free(c);
}

static void test_miss_leaves_output(void)
{
    struct cache *c = cache_new(4, 1000);
    char *out = (char *)"sentinel";
    size_t len = 42;
    CU_ASSERT_FALSE(cache_get(c, "absent", 0, &out, &len));
    CU_ASSERT_STRING_EQUAL(out, "sentinel");
    CU_ASSERT_EQUAL(len, 42);
    cache_free(c);
}

static void test_ttl(void)
{
    struct cache *c = cache_new(16, 500);
    cache_put(c, "k", "v", 1, 10000);
    CU_ASSERT_TRUE(has(c, "k", 10000, "v"));
    CU_ASSERT_TRUE(has(c, "k", 10499, "v"));  /* ttl - 1 */
    CU_ASSERT_FALSE(has(c, "k", 10500, "v")); /* exactly ttl: expired */
    CU_ASSERT_FALSE(has(c, "k", 99999, "v"));
    /* A clock that went back never serves an entry from the future. */
    CU_ASSERT_FALSE(has(c, "k", 9999, "v"));
    /* A put restamps. */
    cache_put(c, "k", "w", 1, 20000);
    CU_ASSERT_TRUE(has(c, "k", 20499, "w"));
    CU_ASSERT_FALSE(has(c, "k", 20500, "w"));
    cache_free(c);
}

static void test_entry_ttl(void)
{
    struct cache *c = cache_new(16, 500);
    cache_put_ttl(c, "short", "s", 1, 1000, 100); /* shorter than the cache's */
    cache_put_ttl(c, "long", "l", 1, 1000, 60000); /* longer than the cache's */
    cache_put(c, "default", "d", 1, 1000);
    CU_ASSERT_TRUE(has(c, "short", 1099, "s"));
    CU_ASSERT_FALSE(has(c, "short", 1100, "s"));
    CU_ASSERT_TRUE(has(c, "default", 1499, "d"));
    CU_ASSERT_FALSE(has(c, "default", 1500, "d"));
    CU_ASSERT_TRUE(has(c, "long", 1500, "l"));
    CU_ASSERT_TRUE(has(c, "long", 60999, "l"));
    CU_ASSERT_FALSE(has(c, "long", 61000, "l"));
    CU_ASSERT_FALSE(has(c, "long", 999, "l")); /* never from the future */
    /* A later put sets the entry's TTL again, either way. */
    cache_put(c, "long", "l2", 2, 2000);
    CU_ASSERT_FALSE(has(c, "long", 2500, "l2"));
    cache_put_ttl(c, "default", "d2", 2, 3000, 10000);
    CU_ASSERT_TRUE(has(c, "default", 12999, "d2"));
    CU_ASSERT_FALSE(has(c, "default", 13000, "d2"));
    cache_put_ttl(c, "zero", "z", 1, 0, 0);
    CU_ASSERT_FALSE(has(c, "zero", 0, "z"));
    cache_free(c);
}

static void test_zero_ttl(void)
{
    struct cache *c = cache_new(16, 0);
    cache_put(c, "k", "v", 1, 100);
    CU_ASSERT_FALSE(has(c, "k", 100, "v"));
    cache_free(c);
}

static void test_update_in_place(void)
{
    struct cache *c = cache_new(2, 1000);
    cache_put(c, "a", "1", 1, 0);
    cache_put(c, "b", "2", 1, 0);
    /* Full, but replacing an existing key must not clear the map. */
    cache_put(c, "a", "longer value", 12, 1);
    CU_ASSERT_TRUE(has(c, "a", 1, "longer value"));
    CU_ASSERT_TRUE(has(c, "b", 1, "2"));
    cache_free(c);
}

static void test_count(void)
{
    struct cache *c = cache_new(2, 10);
    CU_ASSERT_EQUAL(cache_count(c), 0);
    cache_put(c, "a", "1", 1, 0);
    cache_put(c, "a", "2", 1, 0); /* replaced, not added */
    CU_ASSERT_EQUAL(cache_count(c), 1);
    cache_put(c, "b", "2", 1, 0);
    cache_put(c, "c", "3", 1, 0); /* full: one makes room */
    CU_ASSERT_EQUAL(cache_count(c), 2);
    CU_ASSERT_FALSE(has(c, "b", 100, "2")); /* expired, still held */
    CU_ASSERT_EQUAL(cache_count(c), 2);
    cache_remove(c, "c");
    CU_ASSERT_EQUAL(cache_count(c), 1);
    cache_free(c);
}

static void test_capacity_evicts_one(void)
{
    struct cache *c = cache_new(3, 1000);
    cache_put(c, "a", "1", 1, 0);
    cache_put(c, "b", "2", 1, 0);
    cache_put(c, "c", "3", 1, 0);
    CU_ASSERT_TRUE(has(c, "b", 0, "2")); /* b and c are read, a is not */
    CU_ASSERT_TRUE(has(c, "c", 0, "3"));
    cache_put(c, "d", "4", 1, 0); /* one over: the unread entry makes room */
    CU_ASSERT_FALSE(has(c, "a", 0, "1"));
    CU_ASSERT_TRUE(has(c, "b", 0, "2"));
    CU_ASSERT_TRUE(has(c, "c", 0, "3"));
    CU_ASSERT_TRUE(has(c, "d", 0, "4"));
    uint64_t hits, misses, evictions = 0;
    cache_stats(c, &hits, &misses, &evictions);
    CU_ASSERT_EQUAL(evictions, 1);
    /* All read: one turn of the hand clears the marks, then the oldest goes. */
    cache_put(c, "e", "5", 1, 0);
    CU_ASSERT_FALSE(has(c, "b", 0, "2"));
    CU_ASSERT_TRUE(has(c, "e", 0, "5"));
    /* An entry with its own TTL joins the ring like any other. */
    cache_put_ttl(c, "f", "6", 1, 0, 5);
    CU_ASSERT_TRUE(has(c, "f", 1, "6"));
    cache_free(c);
}

/* A flood of one-off entries does not displace entries that are read
 * between insertions: the hot set stays whole. */
static void test_hot_entries_survive_flood(void)
{
    enum { CAP = 100, HOT = 20, FLOOD = 10000 };
    struct cache *c = cache_new(CAP, 1000000);
    char k[32];
    for (int i = 0; i < HOT; i++) {
        snprintf(k, sizeof k, "hot%d", i);
        cache_put(c, k, "h", 1, 0);
    }
    int hot_misses = 0;
    for (int i = 0; i < FLOOD; i++) {
        snprintf(k, sizeof k, "cold%d", i);
        cache_put(c, k, "c", 1, 1);
        if (i % 2 == 0) { /* every hot key is read once per 40 insertions */
            snprintf(k, sizeof k, "hot%d", (i / 2) % HOT);
            hot_misses += !has(c, k, 2, "h");
        }
    }
    CU_ASSERT_EQUAL(hot_misses, 0);
    /* the cold entries took turns in the rest of the room */
    int cold = 0;
    for (int i = FLOOD - CAP; i < FLOOD; i++) {
        snprintf(k, sizeof k, "cold%d", i);
        cold += has(c, k, 2, "c");
    }
    CU_ASSERT(cold > 0 && cold <= CAP - HOT);
    cache_free(c);
}

static void test_many_keys(void)
{
    enum { N = 1000 };
    struct cache *c = cache_new(N, 1000);
    for (int i = 0; i < N; i++) {
        char k[16], v[16];
        snprintf(k, sizeof k, "key%d", i);
        snprintf(v, sizeof v, "val%d", i);
        cache_put(c, k, v, strlen(v), 0);
    }
    int found = 0;
    for (int i = 0; i < N; i++) {
        char k[16], v[16];
        snprintf(k, sizeof k, "key%d", i);
        snprintf(v, sizeof v, "val%d", i);
        found += has(c, k, 999, v);
    }
    CU_ASSERT_EQUAL(found, N);
    cache_free(c);
}

static void test_remove(void)
{
    struct cache *c = cache_new(8, 1000);
    for (int i = 0; i < 8; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        cache_put(c, k, k, strlen(k), 0);
    }
    for (int i = 0; i < 8; i += 2) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        cache_remove(c, k);
    }
    for (int i = 0; i < 8; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        CU_ASSERT_EQUAL(has(c, k, 0, k), i % 2 == 1);
    }
    cache_remove(c, "absent"); /* harmless */
    cache_remove(c, "k0");     /* twice is harmless */
    /* Removal frees room: four more fit without clearing the rest. */
    for (int i = 0; i < 4; i++) {
        char k[8];
        snprintf(k, sizeof k, "n%d", i);
        cache_put(c, k, k, strlen(k), 0);
    }
    CU_ASSERT_TRUE(has(c, "k1", 0, "k1"));
    CU_ASSERT_TRUE(has(c, "k7", 0, "k7"));
    CU_ASSERT_TRUE(has(c, "n3", 0, "n3"));
    /* And a removed key can come back. */
    cache_remove(c, "k1");
    CU_ASSERT_FALSE(has(c, "k1", 0, "k1"));
    cache_put(c, "k1", "again", 5, 0);
    CU_ASSERT_TRUE(has(c, "k1", 0, "again"));
    cache_free(c);
}

static void test_stats(void)
{
    struct cache *c = cache_new(2, 100);
    uint64_t hits = 99, misses = 99;
    cache_stats(c, &hits, &misses, NULL);
    CU_ASSERT_EQUAL(hits, 0);
    CU_ASSERT_EQUAL(misses, 0);
    CU_ASSERT_FALSE(has(c, "a", 0, "1"));  /* miss: absent */
    cache_put(c, "a", "1", 1, 0);
    CU_ASSERT_TRUE(has(c, "a", 0, "1"));   /* hit */
    CU_ASSERT_TRUE(has(c, "a", 99, "1"));  /* hit */
    CU_ASSERT_FALSE(has(c, "a", 100, "1")); /* miss: expired */
    cache_remove(c, "a");
    CU_ASSERT_FALSE(has(c, "a", 0, "1"));  /* miss: removed */
    cache_stats(c, &hits, &misses, NULL);
    CU_ASSERT_EQUAL(hits, 2);
    CU_ASSERT_EQUAL(misses, 3);
    /* Puts and removals do not count as lookups. */
    cache_put(c, "b", "2", 1, 0);
    cache_remove(c, "b");
    cache_stats(c, &hits, &misses, NULL);
    CU_ASSERT_EQUAL(hits, 2);
    CU_ASSERT_EQUAL(misses, 3);
    cache_free(c);
    cache_free(NULL);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_put_get_copy),
        UNIT_TEST(test_binary_value),
        UNIT_TEST(test_miss_leaves_output),
        UNIT_TEST(test_ttl),
        UNIT_TEST(test_entry_ttl),
        UNIT_TEST(test_zero_ttl),
        UNIT_TEST(test_update_in_place),
        UNIT_TEST(test_count),
        UNIT_TEST(test_capacity_evicts_one),
        UNIT_TEST(test_hot_entries_survive_flood),
        UNIT_TEST(test_many_keys),
        UNIT_TEST(test_remove),
        UNIT_TEST(test_stats),
    };
    return unit_run("cache", tests, TG_ARRAY_LEN(tests));
}
