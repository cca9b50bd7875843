/* rollup: the statements by which ingest adds a batch's rows, staged in a
 * temporary table of (key_id, minute_s, endpoint, counters...), to the
 * analytics rollups of sql/017_analytics.sql and sql/022_owner_rollups.sql:
 * per key and UTC day, per key and UTC month (both with the key's owner and
 * tier), per tier and UTC day.  They run in ingest's transaction, after
 * usage_minute, usage_hour and usage_owner_hour (ingest.c: they have every
 * column) and before keys, so that they count exactly what the minutes
 * count and lock in one global order (each table in primary key order).
 * Rows without a check are left out: these rollups hold check counters
 * only. */
#ifndef TOLLGATE_ROLLUP_H
#define TOLLGATE_ROLLUP_H

#define ROLLUP_COUNTERS "allowed, allowed_cost, rate_limited, quota_exceeded, denied_other"

#define ROLLUP_ADD                                                                         \
    "DO UPDATE SET allowed = u.allowed + EXCLUDED.allowed, "                               \
    "allowed_cost = u.allowed_cost + EXCLUDED.allowed_cost, "                              \
    "rate_limited = u.rate_limited + EXCLUDED.rate_limited, "                              \
    "quota_exceeded = u.quota_exceeded + EXCLUDED.quota_exceeded, "                        \
    "denied_other = u.denied_other + EXCLUDED.denied_other"

/* Per key and day, and per key and month (tg_month: the UTC month), with
 * the key's owner and its tier now, that is when the usage is recorded
 * (seconds after the checks).  A key erased meanwhile has neither. */
#define ROLLUP_KEY_PERIOD(table, staging, period_expr, period)                                      \
    "INSERT INTO " table " AS u (key_id, ts, owner_id, tier, " ROLLUP_COUNTERS ") "          \
    "SELECT s.key_id, " period_expr " AS " period ", k.owner_id, k.tier, "                  \
    "sum(s.allowed), sum(s.allowed_cost), sum(s.rate_limited), sum(s.quota_exceeded), "    \
    "sum(s.denied_other) FROM " staging " s LEFT JOIN keys k ON k.id = s.key_id "     \
    "GROUP BY s.key_id, " period ", k.owner_id, k.tier HAVING sum(s.allowed) + "            \
    "sum(s.rate_limited) + sum(s.quota_exceeded) + sum(s.denied_other) > 0 "               \
    "ORDER BY s.key_id, " period " ON CONFLICT (key_id, ts) " ROLLUP_ADD                    \
    ", owner_id = coalesce(EXCLUDED.owner_id, u.owner_id), "                               \
    "tier = coalesce(EXCLUDED.tier, u.tier)"

#define ROLLUP_UPSERT_DAY(staging)                                                         \
    ROLLUP_KEY_PERIOD("usage_day", staging, "to_timestamp(s.minute_s - s.minute_s % 86400)", "day")
#define ROLLUP_UPSERT_MONTH(staging)                                                       \
    ROLLUP_KEY_PERIOD("usage_month", staging, "tg_month(to_timestamp(s.minute_s))", "month")

/* Per tier and day: the key's tier when the usage is recorded, as above. */
#define ROLLUP_UPSERT_TIER_DAY(staging)                                                           \
    "INSERT INTO usage_tier_day AS u (tier, ts, " ROLLUP_COUNTERS ") "                      \
    "SELECT k.tier, to_timestamp(s.minute_s - s.minute_s % 86400) AS day, "                \
    "sum(s.allowed), sum(s.allowed_cost), sum(s.rate_limited), sum(s.quota_exceeded), "    \
    "sum(s.denied_other) FROM " staging " s JOIN keys k ON k.id = s.key_id "        \
    "GROUP BY k.tier, day HAVING sum(s.allowed) + sum(s.rate_limited) + "                  \
    "sum(s.quota_exceeded) + sum(s.denied_other) > 0 ORDER BY k.tier, day "                \
    "ON CONFLICT (tier, ts) " ROLLUP_ADD

#endif
