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
 * days, months, days, hours (analytics_span_of). */
#define AN_COLS "key_id, allowed, allowed_cost, rate_limited, quota_exceeded, denied_other"
#define AN_PART(table, lo, hi)                                                              \
    "SELECT " AN_COLS " FROM " table " WHERE ts >= " lo "::timestamptz AND ts < " hi         \
    "::timestamptz"
#define AN_ROWS                                                                             \
    " FROM (" AN_PART("usage_hour", "$1", "$2") " UNION ALL "                               \
    AN_PART("usage_day", "$2", "$3") " UNION ALL " AN_PART("usage_month", "$3", "$4")        \
    " UNION ALL " AN_PART("usage_day", "$4", "$5") " UNION ALL "                            \
    AN_PART("usage_hour", "$5", "$6") ") u"

/* Per key over the range, keys with at least one check; joined to keys
 * (current tier, $7: NULL for all), so erased keys drop out.  tg_sum8:
 * bigint sums (sql/017_analytics.sql), several times cheaper than sum()'s
 * numeric over 10,000 keys. */
#define AN_PER_KEY                                                                          \
    "SELECT a.*, k.owner_id, k.tier, k.name FROM (SELECT key_id,"                          \
    "  tg_sum8(allowed) AS al, tg_sum8(allowed_cost) AS cost,"                              \
    "  tg_sum8(rate_limited) AS rl, tg_sum8(quota_exceeded) AS qe,"                         \
    "  tg_sum8(denied_other) AS dot" AN_ROWS " GROUP BY key_id"                             \
    "  HAVING tg_sum8(allowed + rate_limited + quota_exceeded + denied_other) > 0) a"      \
    " JOIN keys k ON k.id = a.key_id WHERE ($7::text IS NULL OR k.tier = $7)"

/* The rows of one whole month or one whole day, starting at $1, with the
 * rank ($3) of each as m, in ranking order.  TABLE is usage_month or
 * usage_day: one row per key already, nothing to sum. */
#define AN_RANKED(table)                                                                    \
    "SELECT key_id, allowed AS al, allowed_cost AS cost, rate_limited AS rl,"               \
    "  quota_exceeded AS qe, denied_other AS dot, CASE $3::int"                             \
    "  WHEN 0 THEN allowed + rate_limited + quota_exceeded + denied_other"                  \
    "  WHEN 1 THEN rate_limited + quota_exceeded + denied_other ELSE allowed_cost END AS m"  \
    "  FROM " table " WHERE ts = $1::timestamptz"                                           \
    "  AND allowed + rate_limited + quota_exceeded + denied_other > 0"                      \
    "  ORDER BY m DESC, key_id COLLATE \"C\""
#define AN_KEY_ROW "SELECT a.key_id, k.owner_id, k.tier, k.name, a.al, a.cost, a.rl, a.qe, a.dot"
#define AN_RANK_ORDER " ORDER BY a.m DESC, a.key_id COLLATE \"C\""

/* Top keys of one whole month or day (tier $2, limit $4): the rows are
 * sorted, then their keys looked up in that order until limit of them
 * match the tier.  A hash join of all 10,000 keys cost more than the rest
 * of the query. */
#define AN_ONE_ROW(table)                                                                   \
    AN_KEY_ROW " FROM (" AN_RANKED(table) ") a CROSS JOIN LATERAL (SELECT owner_id, tier,"  \
    "  name FROM keys WHERE id = a.key_id AND ($2::text IS NULL OR tier = $2)) k"          \
    AN_RANK_ORDER " LIMIT $4"

/* The same without a tier filter ($2 unused but typed): the top rows are
 * chosen first, with a bounded heap rather than a sort of every key, then
 * their keys looked up.  A key erased while its usage stays in a rollup
 * comes back with a null owner_id: the handler then runs AN_ONE_ROW. */
#define AN_ONE_ROW_TOP(table)                                                               \
    AN_KEY_ROW " FROM (" AN_RANKED(table) " LIMIT $4) a LEFT JOIN keys k"                   \
    "  ON k.id = a.key_id AND $2::text IS NULL" AN_RANK_ORDER

/* Owners of one whole month or day: every key's owner is needed. */
#define AN_ONE_ROW_OWNERS(table)                                                            \
    "SELECT a.key_id, a.allowed AS al, a.allowed_cost AS cost, a.rate_limited AS rl,"      \
    "  a.quota_exceeded AS qe, a.denied_other AS dot, k.owner_id, k.tier, k.name"           \
    " FROM " table " a JOIN keys k ON k.id = a.key_id WHERE a.ts = $1::timestamptz"         \
    "  AND a.allowed + a.rate_limited + a.quota_exceeded + a.denied_other > 0"              \
    "  AND ($2::text IS NULL OR k.tier = $2)"

/* by: the parameter of the rank (enum analytics_rank). */
#define AN_ORDER(by, al, cost, rl, qe, dot)                                                 \
    " ORDER BY CASE " by "::int WHEN 0 THEN " al " + " rl " + " qe " + " dot " WHEN 1 THEN "    \
    rl " + " qe " + " dot " ELSE " cost " END DESC"

/* The ranking from per_key, whose rank and limit are the parameters by and
 * lim. */
#define AN_TOP_KEYS(per_key, by, lim)                                                       \
    "SELECT key_id, owner_id, tier, name, al, cost, rl, qe, dot FROM (" per_key ") t"       \
    AN_ORDER(by, "al", "cost", "rl", "qe", "dot") ", key_id COLLATE \"C\" LIMIT " lim

#define AN_TOP_OWNERS(per_key, by, lim)                                                     \
    "SELECT owner_id, count(*), tg_sum8(al), tg_sum8(cost), tg_sum8(rl), tg_sum8(qe),"     \
    "  tg_sum8(dot) FROM (" per_key ") t GROUP BY owner_id"                                 \
    AN_ORDER(by, "tg_sum8(al)", "tg_sum8(cost)", "tg_sum8(rl)", "tg_sum8(qe)",              \
             "tg_sum8(dot)") ", owner_id COLLATE \"C\" LIMIT " lim

/* Indexed by enum an_shape. */
enum an_shape { AN_SUMMED, AN_ONE_MONTH, AN_ONE_DAY };
static const char *const TOP_KEYS_FAST_SQL[] = {
    NULL,
    AN_ONE_ROW_TOP("usage_month"),
    AN_ONE_ROW_TOP("usage_day"),
};
static const char *const TOP_KEYS_SQL[] = {
    AN_TOP_KEYS(AN_PER_KEY, "$8", "$9"),
    AN_ONE_ROW("usage_month"),
    AN_ONE_ROW("usage_day"),
};
static const char *const TOP_OWNERS_SQL[] = {
    AN_TOP_OWNERS(AN_PER_KEY, "$8", "$9"),
    AN_TOP_OWNERS(AN_ONE_ROW_OWNERS("usage_month"), "$3", "$4"),
    AN_TOP_OWNERS(AN_ONE_ROW_OWNERS("usage_day"), "$3", "$4"),
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

static void put_key_row(struct strbuf *b, const struct pg_res *res, int i)
{
    strbuf_put(b, "{\"key_id\":", 10);
    strbuf_json_str(b, pg_val(res, i, 0));
    strbuf_put(b, ",\"owner_id\":", 12);
    strbuf_json_str(b, pg_val(res, i, 1));
    strbuf_put(b, ",\"tier\":", 8);
    strbuf_json_str(b, pg_val(res, i, 2));
    strbuf_put(b, ",\"name\":", 8);
    if (pg_isnull(res, i, 3))
        strbuf_put(b, "null", 4);
    else
        strbuf_json_str(b, pg_val(res, i, 3));
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
 * written by put.  With fallback, a result in which a row's column 1 is
 * null is set aside for fallback's, run with the same parameters. */
static void reply_rows(struct http_req *r, const char *sql, const char *fallback, int n,
                       const char *const *p,
                       void (*put)(struct strbuf *b, const struct pg_res *res, int i))
{
    struct api_error e;
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    struct pg_res *res = pg_query(c, sql, n, p, &e);
    for (int i = 0; fallback && res && i < pg_nrows(res); i++) {
        if (pg_isnull(res, i, 1)) {
            pg_res_free(res);
            res = pg_query(c, fallback, n, p, &e);
            break;
        }
    }
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

/* sql and fast (may be NULL) are indexed by enum an_shape: fast serves a
 * whole month or day without a tier filter. */
static void ranking(struct http_req *r, const char *const *sql, const char *const *fast,
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
        if (fast && !tier)
            reply_rows(r, fast[shape], sql[shape], 4, p, put);
        else
            reply_rows(r, sql[shape], NULL, 4, p, put);
        return;
    }
    const char *p[] = {t[0], t[1], t[2], t[3], t[4], t[5], tier, by, limit};
    reply_rows(r, sql[shape], NULL, 9, p, put);
}

static void top_keys(struct http_req *r)
{
    ranking(r, TOP_KEYS_SQL, TOP_KEYS_FAST_SQL, put_key_row);
}

static void top_owners(struct http_req *r)
{
    ranking(r, TOP_OWNERS_SQL, NULL, put_owner_row);
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
    reply_rows(r, TIERS_SQL, NULL, 2, p, put_tier_row);
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
