/* analytics: the query of the analytics routes (rankings of keys and
 * owners, totals per tier and day), parsed once from the raw query values
 * into a struct, and the split of its range over the usage rollups
 * (sql/017_analytics.sql).  Pure: no I/O, the values are given as strings. */
#ifndef TOLLGATE_ANALYTICS_H
#define TOLLGATE_ANALYTICS_H

#include <stdint.h>

#include "error.h"
#include "util.h"

#define ANALYTICS_MAX_DAYS 366
#define ANALYTICS_LIMIT_DEFAULT 10
#define ANALYTICS_LIMIT_MAX 1000
#define ANALYTICS_TIER_MAX 32

/* What a ranking orders by, descending (ties: by id, bytewise). */
enum analytics_rank {
    ANALYTICS_BY_REQUESTS, /* checks: allowed + denied */
    ANALYTICS_BY_DENIALS,  /* denied checks, of every kind */
    ANALYTICS_BY_BILLABLE, /* billable units: the costs of the allowed checks */
};

/* Which route: a ranking takes from, to (whole hours), by, limit and tier;
 * the totals per tier and day take from and to (whole UTC days). */
enum analytics_kind { ANALYTICS_RANKING, ANALYTICS_TIER_DAYS };

/* The raw query values (borrowed; NULL when absent). */
struct analytics_args {
    const char *from, *to, *by, *limit, *tier;
};

struct analytics_query {
    int64_t from_ms, to_ms; /* [from, to), epoch milliseconds */
    enum analytics_rank by;
    int64_t limit;
    char tier[ANALYTICS_TIER_MAX + 1]; /* "" for every tier */
};

/* Parses a's values for a route of kind into q.  from and to are required
 * RFC 3339 times, from before to, at most ANALYTICS_MAX_DAYS apart, on the
 * hour (ANALYTICS_RANKING) or at midnight UTC (ANALYTICS_TIER_DAYS); by is
 * requests (default), denials or billable; limit 1-1000 (default 10); tier a
 * tier name.  Values a route does not take must be NULL.  Returns 0, or -1
 * with e filled: 400 invalid_argument (missing_field for a missing from or
 * to) naming the parameter in field. */
int analytics_parse(const struct analytics_args *a, enum analytics_kind kind,
                    struct analytics_query *q, struct api_error *e) TG_WUR;

/* The name of a rank ("requests", "denials", "billable"). */
const char *analytics_rank_name(enum analytics_rank by);

/* [from, to) cut along the rollups, read from the coarsest that covers each
 * part: whole UTC months from usage_month, the whole days around them from
 * usage_day, the hours around those from usage_hour.  The parts are, in
 * order, hours [from, days_lo), days [days_lo, months_lo), months
 * [months_lo, months_hi), days [months_hi, days_hi), hours [days_hi, to);
 * empty parts have equal bounds.  A month of 10,000 keys is thus 10,000
 * month rows rather than 7.2 million hour rows. */
struct analytics_span {
    int64_t days_lo, months_lo, months_hi, days_hi;
};
void analytics_span_of(int64_t from_ms, int64_t to_ms, struct analytics_span *s);

/* The first instant of the UTC month holding ms, and of the next one. */
int64_t analytics_month_floor(int64_t ms);
int64_t analytics_month_next(int64_t ms);

#endif
