/* hist: the response-time histogram kept per usage bucket.
 *
 * Log-linear buckets over microseconds: values below 8 have a bucket each;
 * above, each power of two is split into 8 equal buckets, so a bucket is at
 * most 1/8 of its lower bound wide and its midpoint is within 6.25 % of any
 * value in it.  2^32 us (71 minutes) and above share the last bucket.  Stored
 * as an array of counts (trailing zeros trimmed) and merged element-wise, in
 * C and in SQL (tg_hist_add). */
#ifndef TOLLGATE_HIST_H
#define TOLLGATE_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_BUCKETS 240

/* The bucket of a value in microseconds (negative counts as 0). */
int hist_bucket(int64_t us);
/* A bucket's lower bound and width in microseconds. */
int64_t hist_lower(int bucket);
int64_t hist_width(int bucket);
/* The value reported for a quantile q (0 < q <= 1) of counts[0..n): the
 * midpoint of the bucket holding the ceil(q * total)-th value, capped at max_us
 * (the exact maximum, known separately).  -1 when the histogram is empty. */
int64_t hist_quantile(const int64_t *counts, size_t n, double q, int64_t max_us);

#endif
