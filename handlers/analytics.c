/* Analytics: rankings of keys and owners, and totals per tier and UTC day,
 * over a range of whole hours (days for the tiers), for product and finance
 * teams.  Read only from the rollups (sql/017_analytics.sql) and, for the
 * hours at the edges of a range, usage_hour: never from usage_minute, so a
 * month of every key reads one row per key (analytics.h).  The answers are
 * written as JSON text straight from the rows, without a json-c tree. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "analytics.h"
#include "auth.h"
#include "common.h"
#include "handlers.h"

/* The check counters of the five parts of a range ($1..$6, times): hours,
 * days, months, days, hours (analytics_span_of), with each row's owner and
 * tier.  The day and month rollups hold them (sql/022_owner_rollups.sql:
 * the tier recorded with the usage); the hours at the edges take the key's
 * from keys, summed per key first so that each key is looked up once.
 * Rows without an owner are usage of keys that no longer exist: left out. */
#define AN_PART(table, lo, hi)                                                              \
    "SELECT key_id, owner_id, tier, allowed AS al, allowed_cost AS cost,"                   \
    "  rate_limited AS rl, quota_exceeded AS qe, denied_other AS dot FROM " table           \
    "  WHERE ts >= " lo "::timestamptz AND ts < " hi "::timestamptz AND owner_id IS NOT NULL"
#define AN_HOURS(lo, hi)                                                                    \
    "SELECT h.key_id, k.owner_id, k.tier, h.al, h.cost, h.rl, h.qe, h.dot FROM (SELECT"     \
    "  key_id, tg_sum8(allowed) AS al, tg_sum8(allowed_cost) AS cost,"                      \
    "  tg_sum8(rate_limited) AS rl, tg_sum8(quota_exceeded) AS qe,"                         \
    "  tg_sum8(denied_other) AS dot FROM usage_hour WHERE ts >= " lo "::timestamptz"        \
    "  AND ts < " hi "::timestamptz GROUP BY key_id) h JOIN keys k ON k.id = h.key_id"
#define AN_ROWS                                                                             \
    " FROM (" AN_HOURS("$1", "$2") " UNION ALL " AN_PART("usage_day", "$2", "$3")           \
    " UNION ALL " AN_PART("usage_month", "$3", "$4") " UNION ALL "                          \
    AN_PART("usage_day", "$4", "$5") " UNION ALL " AN_HOURS("$5", "$6") ") u"               \
    " WHERE ($7::text IS NULL OR u.tier = $7)"

/* Per key over the range (usage of tier $7 only, NULL: all), keys with at
 * least one check.  tg_sum8: bigint sums (sql/017_analytics.sql), several
 * times cheaper than sum()'s numeric over 10,000 keys. */
#define AN_PER_KEY                                                                          \
    "SELECT key_id, min(owner_id) AS owner_id, tg_sum8(al) AS al, tg_sum8(cost) AS cost,"   \
    "  tg_sum8(rl) AS rl, tg_sum8(qe) AS qe, tg_sum8(dot) AS dot" AN_ROWS " GROUP BY key_id" \
    "  HAVING tg_sum8(al + rl + qe + dot) > 0"

/* The rows of one whole month or one whole day, starting at $1, of tier
 * $2 (NULL: all), with the rank ($3) of each as m, in ranking order.
 * TABLE is usage_month or usage_day: one row per key already, nothing to
 * sum, and its owner and tier on it. */
#define AN_CHECKS "allowed + rate_limited + quota_exceeded + denied_other"
#define AN_ONE_WHERE                                                                        \
    " WHERE ts = $1::timestamptz AND owner_id IS NOT NULL AND " AN_CHECKS " > 0"            \
    "  AND ($2::text IS NULL OR tier = $2)"
#define AN_RANKED(table)                                                                    \
    "SELECT key_id, owner_id, allowed AS al, allowed_cost AS cost, rate_limited AS rl,"     \
    "  quota_exceeded AS qe, denied_other AS dot, CASE $3::int WHEN 0 THEN " AN_CHECKS       \
    "  WHEN 1 THEN rate_limited + quota_exceeded + denied_other ELSE allowed_cost END AS m"  \
    "  FROM " table AN_ONE_WHERE " ORDER BY m DESC, key_id COLLATE \"C\""

/* Top keys of one whole month or day (limit $4): the top rows are chosen
 * with a bounded heap rather than a sort of every key, then their keys
 * looked up for the name and the current tier. */
#define AN_ONE_ROW(table)                                                                   \
    "SELECT a.key_id, a.owner_id, k.tier, k.name, a.al, a.cost, a.rl, a.qe, a.dot FROM ("    \
    AN_RANKED(table) " LIMIT $4) a LEFT JOIN keys k ON k.id = a.key_id"                      \
    " ORDER BY a.m DESC, a.key_id COLLATE \"C\""

/* by: the parameter of the rank (enum analytics_rank). */
#define AN_ORDER(by, al, cost, rl, qe, dot)                                                 \
    " ORDER BY CASE " by "::int WHEN 0 THEN " al " + " rl " + " qe " + " dot " WHEN 1 THEN "    \
    rl " + " qe " + " dot " ELSE " cost " END DESC"

/* The ranking from per_key, whose rank and limit are the parameters by and
 * lim, the keys looked up after the limit. */
#define AN_TOP_KEYS(per_key, by, lim)                                                       \
    "SELECT t.key_id, t.owner_id, k.tier, k.name, al, cost, rl, qe, dot FROM (SELECT * FROM (" \
    per_key ") p" AN_ORDER(by, "al", "cost", "rl", "qe", "dot") ", key_id COLLATE \"C\""      \
    " LIMIT " lim ") t LEFT JOIN keys k ON k.id = t.key_id"                                  \
    AN_ORDER(by, "al", "cost", "rl", "qe", "dot") ", t.key_id COLLATE \"C\""

#define AN_OWNER_SUMS                                                                       \
    "tg_sum8(al), tg_sum8(cost), tg_sum8(rl), tg_sum8(qe), tg_sum8(dot)"
#define AN_OWNER_ORDER(by)                                                                  \
    AN_ORDER(by, "tg_sum8(al)", "tg_sum8(cost)", "tg_sum8(rl)", "tg_sum8(qe)",              \
             "tg_sum8(dot)") ", owner_id COLLATE \"C\""

/* Owners of the keys of per_key. */
#define AN_TOP_OWNERS(per_key, by, lim)                                                     \
    "SELECT owner_id, count(*), " AN_OWNER_SUMS " FROM (" per_key ") t GROUP BY owner_id"   \
    AN_OWNER_ORDER(by) " LIMIT " lim

/* Owners of one whole month or day: a key is one row. */
#define AN_ONE_OWNERS(table)                                                                \
    "SELECT owner_id, count(*), " AN_OWNER_SUMS " FROM (SELECT owner_id, allowed AS al,"    \
    "  allowed_cost AS cost, rate_limited AS rl, quota_exceeded AS qe, denied_other AS dot"  \
    "  FROM " table AN_ONE_WHERE ") t GROUP BY owner_id" AN_OWNER_ORDER("$3") " LIMIT $4"

/* Indexed by enum an_shape. */
enum an_shape { AN_SUMMED, AN_ONE_MONTH, AN_ONE_DAY };
static const char *const TOP_KEYS_SQL[] = {
    AN_TOP_KEYS(AN_PER_KEY, "$8", "$9"),
    AN_ONE_ROW("usage_month"),
    AN_ONE_ROW("usage_day"),
};
static const char *const TOP_OWNERS_SQL[] = {
    AN_TOP_OWNERS(AN_PER_KEY, "$8", "$9"),
    AN_ONE_OWNERS("usage_month"),
    AN_ONE_OWNERS("usage_day"),
};

/* Whether [from, to) is exactly one rollup row per key. */
static enum an_shape an_shape_of(const struct analytics_query *q,
                                 const struct analytics_span *s)
{
    if (s->months_lo == q->from_ms && s->months_hi == q->to_ms &&
        analytics_month_next(q->from_ms) == q->to_ms)
        return AN_ONE_MONTH;
    if (s->days_lo == q->from_ms && s->days_hi == q->to_ms && s->months_lo == s->months_hi &&
        q->to_ms - q->from_ms == INT64_C(86400000))
        return AN_ONE_DAY;
    return AN_SUMMED;
}

static const char TIERS_SQL[] =
    "SELECT (date_part('epoch', ts) * 1000)::bigint, tier, allowed, allowed_cost,"
    "  rate_limited, quota_exceeded, denied_other FROM usage_tier_day"
    " WHERE ts >= $1::timestamptz AND ts < $2::timestamptz"
    "  AND allowed + rate_limited + quota_exceeded + denied_other > 0"
    " ORDER BY ts, tier COLLATE \"C\"";

/* "name":value, for the counters of a row. */
static void put_count(struct strbuf *b, const char *name, int64_t v)
{
    strbuf_putc(b, ',');
    strbuf_json_str(b, name);
    strbuf_putc(b, ':');
    strbuf_int(b, v);
}

/* The figures of a row whose counters start at column c: allowed, billable
 * cost, rate limited, quota exceeded, other denials. */
static void put_counters(struct strbuf *b, const struct pg_res *res, int i, int c)
{
    int64_t al = pg_int(res, i, c), cost = pg_int(res, i, c + 1);
    int64_t rl = pg_int(res, i, c + 2), qe = pg_int(res, i, c + 3), dot = pg_int(res, i, c + 4);
    put_count(b, "requests", al + rl + qe + dot);
    put_count(b, "allowed", al);
    put_count(b, "denied", rl + qe + dot);
    strbuf_put(b, ",\"denied_by\":{", 14);
    strbuf_put(b, "\"rate_limited\":", 15);
    strbuf_int(b, rl);
    put_count(b, "quota_exceeded", qe);
    put_count(b, "other", dot);
    strbuf_putc(b, '}');
    put_count(b, "billable_units", cost);
}

static void put_str_or_null(struct strbuf *b, const struct pg_res *res, int i, int c)
{
    if (pg_isnull(res, i, c))
        strbuf_put(b, "null", 4);
    else
        strbuf_json_str(b, pg_val(res, i, c));
}

/* A key's row; its tier and name are null when the key is gone. */
static void put_key_row(struct strbuf *b, const struct pg_res *res, int i)
{
    strbuf_put(b, "{\"key_id\":", 10);
    strbuf_json_str(b, pg_val(res, i, 0));
    strbuf_put(b, ",\"owner_id\":", 12);
    strbuf_json_str(b, pg_val(res, i, 1));
    strbuf_put(b, ",\"tier\":", 8);
    put_str_or_null(b, res, i, 2);
    strbuf_put(b, ",\"name\":", 8);
    put_str_or_null(b, res, i, 3);
    put_counters(b, res, i, 4);
    strbuf_putc(b, '}');
}

static void put_owner_row(struct strbuf *b, const struct pg_res *res, int i)
{
    strbuf_put(b, "{\"owner_id\":", 12);
    strbuf_json_str(b, pg_val(res, i, 0));
    put_count(b, "keys", pg_int(res, i, 1));
    put_counters(b, res, i, 2);
    strbuf_putc(b, '}');
}

static void put_tier_row(struct strbuf *b, const struct pg_res *res, int i)
{
    char ts[TG_TIME_LEN];
    format_time_ms(pg_int(res, i, 0), ts);
    strbuf_put(b, "{\"ts\":", 6);
    strbuf_json_str(b, ts);
    strbuf_put(b, ",\"tier\":", 8);
    strbuf_json_str(b, pg_val(res, i, 1));
    put_counters(b, res, i, 2);
    strbuf_putc(b, '}');
}

/* Reads the query of a route of kind; false after replying 400. */
static bool query_or_reply(struct http_req *r, enum analytics_kind kind,
                           struct analytics_query *q)
{
    static const char *const ranking[] = {"from", "to", "by", "limit", "tier", NULL};
    static const char *const days[] = {"from", "to", NULL};
    struct api_error e;
    struct analytics_args a = {http_query(r, "from"), http_query(r, "to"), NULL, NULL, NULL};
    if (kind == ANALYTICS_RANKING) {
        a.by = http_query(r, "by");
        a.limit = http_query(r, "limit");
        a.tier = http_query(r, "tier");
    }
    if (http_query_allow(r, kind == ANALYTICS_RANKING ? ranking : days, &e) != 0 ||
        analytics_parse(&a, kind, q, &e) != 0) {
        http_reply_error(r, &e);
        return false;
    }
    return true;
}

/* Runs sql with its n parameters and replies {"data":[rows]}, each row
 * written by put. */
static void reply_rows(struct http_req *r, const char *sql, int n, const char *const *p,
                       void (*put)(struct strbuf *b, const struct pg_res *res, int i))
{
    struct api_error e;
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    struct pg_res *res = pg_query(c, sql, n, p, &e);
    db_release(r, c);
    if (!res) {
        http_reply_error(r, &e);
        return;
    }
    struct strbuf b = {0};
    strbuf_put(&b, "{\"data\":[", 9);
    for (int i = 0; i < pg_nrows(res); i++) {
        if (i > 0)
            strbuf_putc(&b, ',');
        put(&b, res, i);
    }
    strbuf_put(&b, "]}", 2);
    pg_res_free(res);
    http_reply_json_text(r, 200, NULL, b.p, b.len);
    strbuf_fini(&b);
}

/* sql is indexed by enum an_shape. */
static void ranking(struct http_req *r, const char *const *sql,
                    void (*put)(struct strbuf *b, const struct pg_res *res, int i))
{
    struct analytics_query q;
    if (!query_or_reply(r, ANALYTICS_RANKING, &q))
        return;
    struct analytics_span s;
    analytics_span_of(q.from_ms, q.to_ms, &s);
    char t[6][TG_TIME_LEN], by[4], limit[8];
    enum an_shape shape = an_shape_of(&q, &s);
    const int64_t at[6] = {q.from_ms, s.days_lo, s.months_lo, s.months_hi, s.days_hi, q.to_ms};
    for (int i = 0; i < 6; i++)
        format_time_ms(at[i], t[i]);
    snprintf(by, sizeof by, "%d", (int)q.by);
    snprintf(limit, sizeof limit, "%" PRId64, q.limit);
    const char *tier = q.tier[0] ? q.tier : NULL;
    if (shape != AN_SUMMED) {
        const char *p[] = {t[0], tier, by, limit};
        reply_rows(r, sql[shape], 4, p, put);
        return;
    }
    const char *p[] = {t[0], t[1], t[2], t[3], t[4], t[5], tier, by, limit};
    reply_rows(r, sql[shape], 9, p, put);
}

static void top_keys(struct http_req *r)
{
    ranking(r, TOP_KEYS_SQL, put_key_row);
}

static void top_owners(struct http_req *r)
{
    ranking(r, TOP_OWNERS_SQL, put_owner_row);
}

static void tier_days(struct http_req *r)
{
    struct analytics_query q;
    if (!query_or_reply(r, ANALYTICS_TIER_DAYS, &q))
        return;
    char from[TG_TIME_LEN], to[TG_TIME_LEN];
    format_time_ms(q.from_ms, from);
    format_time_ms(q.to_ms, to);
    const char *p[] = {from, to};
    reply_rows(r, TIERS_SQL, 2, p, put_tier_row);
}

/* Finance and product roles only: not viewer, service or any role added
 * later unless listed here. */
#define ANALYTICS (ROLE_ADMIN | ROLE_OPERATOR | ROLE_BILLING)

const struct route analytics_routes[] = {
    {"GET", "/v1/analytics/top-keys", ANALYTICS, top_keys, 0, NULL},
    {"GET", "/v1/analytics/top-owners", ANALYTICS, top_owners, 0, NULL},
    {"GET", "/v1/analytics/tiers", ANALYTICS, tier_days, 0, NULL},
};
const size_t analytics_routes_len = TG_ARRAY_LEN(analytics_routes);
