/* Unit tests of hist: bucket boundaries, the consistency of lower bounds and
 * widths over every bucket, and quantiles against exact values. */
#include "hist.h"
#include "unit.h"

static void test_bucket_boundaries(void)
{
    for (int64_t v = 0; v < 8; v++)
        CU_ASSERT_EQUAL(hist_bucket(v), (int)v);
    CU_ASSERT_EQUAL(hist_bucket(-1), 0);
    CU_ASSERT_EQUAL(hist_bucket(INT64_MIN), 0);
    /* [8, 16): one bucket per value; [16, 32): two values a bucket. */
    CU_ASSERT_EQUAL(hist_bucket(8), 8);
    CU_ASSERT_EQUAL(hist_bucket(15), 15);
    CU_ASSERT_EQUAL(hist_bucket(16), 16);
    CU_ASSERT_EQUAL(hist_bucket(17), 16);
    CU_ASSERT_EQUAL(hist_bucket(18), 17);
    CU_ASSERT_EQUAL(hist_bucket(31), 23);
    CU_ASSERT_EQUAL(hist_bucket(32), 24);
    CU_ASSERT_EQUAL(hist_bucket(1000), hist_bucket(1023));
    CU_ASSERT_NOT_EQUAL(hist_bucket(1023), hist_bucket(1024));
    /* 2^32 us and above share the last bucket. */
    CU_ASSERT_EQUAL(hist_bucket(((int64_t)1 << 32) - 1), HIST_BUCKETS - 1);
    CU_ASSERT_EQUAL(hist_bucket((int64_t)1 << 32), HIST_BUCKETS - 1);
    CU_ASSERT_EQUAL(hist_bucket(INT64_MAX), HIST_BUCKETS - 1);
    CU_ASSERT_EQUAL(hist_bucket(3600000000LL), hist_bucket(3600000000LL - 1));
}

static void test_lower_width_every_bucket(void)
{
    CU_ASSERT_EQUAL(hist_lower(0), 0);
    for (int b = 0; b < HIST_BUCKETS; b++) {
        int64_t lo = hist_lower(b), w = hist_width(b);
        CU_ASSERT(w >= 1);
        CU_ASSERT_EQUAL(hist_bucket(lo), b);
        CU_ASSERT_EQUAL(hist_bucket(lo + w - 1), b);
        if (b > 0)
            CU_ASSERT_EQUAL(hist_bucket(lo - 1), b - 1);
        if (b + 1 < HIST_BUCKETS)
            CU_ASSERT_EQUAL(hist_lower(b + 1), lo + w);
        if (lo >= 8)
            CU_ASSERT(w * 8 <= lo); /* at most 1/8 of the lower bound wide */
    }
    /* The last regular bucket ends at 2^32. */
    CU_ASSERT_EQUAL(hist_lower(HIST_BUCKETS - 1) + hist_width(HIST_BUCKETS - 1), (int64_t)1 << 32);
}

static void test_empty(void)
{
    int64_t counts[HIST_BUCKETS] = {0};
    CU_ASSERT_EQUAL(hist_quantile(counts, HIST_BUCKETS, 0.5, 100), -1);
    CU_ASSERT_EQUAL(hist_quantile(counts, 0, 0.99, 100), -1);
    CU_ASSERT_EQUAL(hist_quantile(NULL, 0, 1.0, 0), -1);
}

static void test_small_exact_and_cap(void)
{
    int64_t counts[HIST_BUCKETS] = {0};
    counts[hist_bucket(3)] = 2;
    counts[hist_bucket(5)] = 2;
    CU_ASSERT_EQUAL(hist_quantile(counts, HIST_BUCKETS, 0.5, 5), 3);
    CU_ASSERT_EQUAL(hist_quantile(counts, HIST_BUCKETS, 0.51, 5), 5);
    CU_ASSERT_EQUAL(hist_quantile(counts, HIST_BUCKETS, 1.0, 5), 5);
    /* One value of 970 (bucket [960, 1024)): the midpoint 992, capped at
     * the maximum when that is lower. */
    int64_t one[HIST_BUCKETS] = {0};
    int b = hist_bucket(970);
    one[b] = 1;
    CU_ASSERT_EQUAL(hist_lower(b), 960);
    CU_ASSERT_EQUAL(hist_quantile(one, HIST_BUCKETS, 0.5, 5000), 992);
    CU_ASSERT_EQUAL(hist_quantile(one, HIST_BUCKETS, 0.5, 970), 970);
    /* A trimmed array (n < HIST_BUCKETS) is read as is. */
    CU_ASSERT_EQUAL(hist_quantile(counts, 6, 0.99, 5), 5);
}

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Log-uniform values from 1 us to ~1 h: every order of magnitude present. */
static void test_quantiles_generated(void)
{
    enum { N = 100000 };
    int64_t *v = malloc(N * sizeof *v);
    int64_t counts[HIST_BUCKETS] = {0}, max = 0;
    for (int i = 0; i < N; i++) {
        int shift = (int)(rng() % 32);
        v[i] = (int64_t)(rng() % ((uint64_t)1 << shift)) + ((int64_t)1 << shift);
        if (v[i] > 3600000000LL)
            v[i] = 3600000000LL;
        counts[hist_bucket(v[i])]++;
        if (v[i] > max)
            max = v[i];
    }
    qsort(v, N, sizeof *v, cmp_i64);
    static const double qs[] = {0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0};
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        size_t rank = (size_t)(qs[k] * N + 0.999999);
        int64_t truth = v[rank - 1];
        int64_t got = hist_quantile(counts, HIST_BUCKETS, qs[k], max);
        double rel = (double)(got > truth ? got - truth : truth - got) / (double)truth;
        CU_ASSERT(rel <= 0.0625);
        if (rel > 0.0625)
            printf("q=%g truth=%lld got=%lld\n", qs[k], (long long)truth, (long long)got);
    }
    CU_ASSERT_EQUAL(hist_quantile(counts, HIST_BUCKETS, 1.0, max), max);
    free(v);
}

/* Narrow data inside one power of two: still within 6.25 %. */
static void test_quantiles_narrow(void)
{
    int64_t counts[HIST_BUCKETS] = {0}, v[1000];
    for (int i = 0; i < 1000; i++) {
        v[i] = 20000 + (int64_t)(rng() % 5000);
        counts[hist_bucket(v[i])]++;
    }
    qsort(v, 1000, sizeof *v, cmp_i64);
    for (int p = 1; p <= 100; p++) {
        int64_t truth = v[p * 10 - 1];
        int64_t got = hist_quantile(counts, HIST_BUCKETS, p / 100.0, v[999]);
        CU_ASSERT(llabs(got - truth) * 16 <= truth);
    }
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_bucket_boundaries), UNIT_TEST(test_lower_width_every_bucket),
        UNIT_TEST(test_empty),             UNIT_TEST(test_small_exact_and_cap),
        UNIT_TEST(test_quantiles_generated), UNIT_TEST(test_quantiles_narrow),
    };
    return unit_run("hist", tests, sizeof tests / sizeof tests[0]);
}
