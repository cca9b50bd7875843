/* rollup: the statements by which ingest adds a batch's rows, staged in a
 * temporary table of (key_id, minute_s, endpoint, counters...), to the
 * analytics rollups of sql/017_analytics.sql: per key and UTC day, per key
 * and UTC month, per tier and UTC day.  They run in ingest's transaction,
 * after usage_minute and usage_hour and before keys, so that they count
 * exactly what the minutes count and lock in one global order (each table
 * in primary key order).  Rows without a check are left out: the rollups
 * hold check counters only. */
#ifndef TOLLGATE_ROLLUP_H
#define TOLLGATE_ROLLUP_H

#define ROLLUP_COUNTERS "allowed, allowed_cost, rate_limited, quota_exceeded, denied_other"

#define ROLLUP_SUMS                                                                        \
    "sum(allowed), sum(allowed_cost), sum(rate_limited), sum(quota_exceeded), "             \
    "sum(denied_other)"

#define ROLLUP_ANY_CHECK                                                                   \
    "HAVING sum(allowed) + sum(rate_limited) + sum(quota_exceeded) + sum(denied_other) > 0 "

#define ROLLUP_ADD                                                                         \
    "DO UPDATE SET allowed = u.allowed + EXCLUDED.allowed, "                               \
    "allowed_cost = u.allowed_cost + EXCLUDED.allowed_cost, "                              \
    "rate_limited = u.rate_limited + EXCLUDED.rate_limited, "                              \
    "quota_exceeded = u.quota_exceeded + EXCLUDED.quota_exceeded, "                        \
    "denied_other = u.denied_other + EXCLUDED.denied_other"

/* Per key and day. */
#define ROLLUP_UPSERT_DAY(staging)                                                         \
    "INSERT INTO usage_day AS u (key_id, ts, " ROLLUP_COUNTERS ") "                         \
    "SELECT key_id, to_timestamp(minute_s - minute_s % 86400) AS day, " ROLLUP_SUMS         \
    " FROM " staging " GROUP BY key_id, day " ROLLUP_ANY_CHECK "ORDER BY key_id, day "     \
    "ON CONFLICT (key_id, ts) " ROLLUP_ADD

/* Per key and month (tg_month: the UTC month). */
#define ROLLUP_UPSERT_MONTH(staging)                                                       \
    "INSERT INTO usage_month AS u (key_id, ts, " ROLLUP_COUNTERS ") "                       \
    "SELECT key_id, tg_month(to_timestamp(minute_s)) AS month, " ROLLUP_SUMS                \
    " FROM " staging " GROUP BY key_id, month " ROLLUP_ANY_CHECK "ORDER BY key_id, month " \
    "ON CONFLICT (key_id, ts) " ROLLUP_ADD

/* Per tier and day: the key's tier now, that is when the usage is recorded
 * (seconds after the checks).  A key erased meanwhile has no tier: its rows
 * are left out. */
#define ROLLUP_UPSERT_TIER_DAY(staging)                                                    \
    "INSERT INTO usage_tier_day AS u (tier, ts, " ROLLUP_COUNTERS ") "                      \
    "SELECT k.tier, to_timestamp(s.minute_s - s.minute_s % 86400) AS day, "                \
    "sum(s.allowed), sum(s.allowed_cost), sum(s.rate_limited), sum(s.quota_exceeded), "    \
    "sum(s.denied_other) FROM " staging " s JOIN keys k ON k.id = s.key_id "               \
    "GROUP BY k.tier, day HAVING sum(s.allowed) + sum(s.rate_limited) + "                  \
    "sum(s.quota_exceeded) + sum(s.denied_other) > 0 ORDER BY k.tier, day "                \
    "ON CONFLICT (tier, ts) " ROLLUP_ADD

#endif
