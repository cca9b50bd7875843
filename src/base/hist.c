#include "hist.h"


int hist_bucket(int64_t us)
{
    if (us < 8)
        return us < 0 ? 0 : (int)us;
    int e = 63 - __builtin_clzll((unsigned long long)us); /* floor(log2 us), >= 3 */
    if (e >= 32)
        return HIST_BUCKETS - 1;
    int m = (int)((us >> (e - 3)) & 7);
    return 8 + (e - 3) * 8 + m;
}

int64_t hist_lower(int bucket)
{
    if (bucket < 8)
        return bucket;
    int e = (bucket - 8) / 8 + 3, m = (bucket - 8) % 8;
    return (int64_t)(8 + m) << (e - 3);
}

int64_t hist_width(int bucket)
{
    if (bucket < 8)
        return 1;
    return (int64_t)1 << ((bucket - 8) / 8);
}

int64_t hist_quantile(const int64_t *counts, size_t n, double q, int64_t max_us)
{
    int64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += counts[i];
    if (total <= 0)
        return -1;
    double want = q * (double)total;
    int64_t rank = (int64_t)want, seen = 0;
    if ((double)rank < want)
        rank++;
    if (rank < 1)
        rank = 1;
    for (size_t i = 0; i < n; i++) {
        seen += counts[i];
        if (seen >= rank) {
            /* Values below 8 us are exact; above, the bucket's midpoint. */
            int64_t v = i < 8 ? (int64_t)i : hist_lower((int)i) + hist_width((int)i) / 2;
            return v > max_us ? max_us : v;
        }
    }
    return max_us;
}
