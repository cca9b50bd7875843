/* Usage: the history of a key's or an owner's checks and reported events,
 * read from the minute buckets tollgate-billingd writes (usage_minute) and
 * their hourly rollup (usage_hour, written in the same transaction), and the
 * live state of a key's windows, read from the rate-limit store (no pipeline
 * lag). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "checker.h"
#include "common.h"
#include "handlers.h"
#include "hist.h"
#include "keystore.h"
#include "keyuse.h"
#include "ratelimit.h"

#define MINUTE_MS INT64_C(60000)
#define HOUR_MS (60 * MINUTE_MS)
#define USAGE_DEFAULT_BUCKETS 60
#define USAGE_MAX_BUCKETS 10000

/* ---- history ---- */

struct usage_query {
    const char *unit; /* date_trunc field: "minute", "hour", "day" */
    int64_t bucket_ms;
    int64_t from_ms, to_ms;
    int64_t hours_from_ms, hours_to_ms; /* [from, to) read from usage_hour */
    bool by_endpoint;
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return -floor_div(-a, b);
}

/* Splits [from, to) for hour and day buckets: the whole hours inside it are
 * read from the hourly rollup, the minutes before and after them from the
 * minute buckets.  Minute buckets, or a range holding no whole hour, read
 * only minutes (an empty hour range at to). */
static void usage_query_split(struct usage_query *q)
{
    int64_t lo = ceil_div(q->from_ms, HOUR_MS) * HOUR_MS;
    int64_t hi = floor_div(q->to_ms, HOUR_MS) * HOUR_MS;
    if (q->bucket_ms < HOUR_MS || lo >= hi)
        lo = hi = q->to_ms;
    q->hours_from_ms = lo;
    q->hours_to_ms = hi;
}

static int bad_param(struct api_error *e, const char *field, const char *msg)
{
    api_error_set(e, ERR_INVALID_ARGUMENT, field, "%s", msg);
    return -1;
}

/* Reads from, to, granularity and group_by.  UTC days, hours and minutes all
 * have a fixed length, so bucket arithmetic on epoch milliseconds is the
 * same as date_trunc in UTC.  Returns 0 or -1 with e filled. */
static int usage_query_parse(const struct http_req *r, int64_t now, struct usage_query *q,
                             struct api_error *e)
{
    static const char *const allowed[] = {"from", "to", "granularity", "group_by", NULL};
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"minute", MINUTE_MS}, {"hour", 60 * MINUTE_MS}, {"day", 1440 * MINUTE_MS}};
    if (http_query_allow(r, allowed, e) != 0)
        return -1;
    const char *g = http_query(r, "granularity"), *by = http_query(r, "group_by");
    const char *from = http_query(r, "from"), *to = http_query(r, "to");
    q->unit = NULL;
    for (size_t i = 0; i < TG_ARRAY_LEN(units); i++) {
        if (!g || strcmp(g, units[i].name) == 0) {
            q->unit = units[i].name;
            q->bucket_ms = units[i].ms;
            break;
        }
    }
    if (!q->unit)
        return bad_param(e, "granularity", "granularity must be minute, hour or day.");
    if (by && strcmp(by, "endpoint") != 0)
        return bad_param(e, "group_by", "group_by accepts only \"endpoint\".");
    q->by_endpoint = by != NULL;
    if (from && parse_time_ms(from, &q->from_ms) != 0)
        return bad_param(e, "from", "from must be an RFC 3339 time such as 2026-11-22T10:00:00.000Z.");
    if (to && parse_time_ms(to, &q->to_ms) != 0)
        return bad_param(e, "to", "to must be an RFC 3339 time such as 2026-11-22T10:00:00.000Z.");
    /* Defaults: up to the end of the current bucket (or to), and from the
     * start of the 60th bucket before the one holding to's last instant. */
    if (!to)
        q->to_ms = (floor_div(now, q->bucket_ms) + 1) * q->bucket_ms;
    if (!from)
        q->from_ms = (floor_div(q->to_ms - 1, q->bucket_ms) - (USAGE_DEFAULT_BUCKETS - 1)) *
                     q->bucket_ms;
    if (q->from_ms >= q->to_ms)
        return bad_param(e, to ? "to" : "from", "from must be earlier than to.");
    int64_t buckets = floor_div(q->to_ms - 1, q->bucket_ms) - floor_div(q->from_ms, q->bucket_ms) + 1;
    if (buckets > USAGE_MAX_BUCKETS) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "from",
                      "The range holds %" PRId64 " %s buckets; at most %d are allowed"
                      " (narrow it or choose a coarser granularity).",
                      buckets, q->unit, USAGE_MAX_BUCKETS);
        return -1;
    }
    usage_query_split(q);
    return 0;
}

/* The rows of a range, for the keys selected by KEYS ("= $1"): the whole
 * hours [$6, $7) from usage_hour, the minutes [$3, $6) and [$7, $4) from
 * usage_minute (times in epoch milliseconds).  The three ranges never
 * overlap: see usage_query_split. */
#define USAGE_AT(p) "tg_from_us(" p "::bigint * 1000)"
#define USAGE_PART(table, keys, lo, hi)                                                     \
    "SELECT ts, endpoint, allowed, rate_limited, quota_exceeded, denied_other, reported,"  \
    "  errors, rt_sum_us, rt_max_us, rt_hist FROM " table " WHERE key_id " keys            \
    "  AND ts >= " USAGE_AT(lo) " AND ts < " USAGE_AT(hi)
#define USAGE_ROWS(keys)                                                                    \
    " FROM (" USAGE_PART("usage_hour", keys, "$6", "$7")                                    \
    " UNION ALL " USAGE_PART("usage_minute", keys, "$3", "$6")                              \
    " UNION ALL " USAGE_PART("usage_minute", keys, "$7", "$4") ") u"

/* The columns of one history row, shared by the key and the owner query:
 * $2 the date_trunc field, $5 whether to group by endpoint.  A bucket start
 * is a whole second, so its epoch in float8 is exact (and cheaper than
 * tg_ms's numeric).  The histograms are returned side by side as text
 * ("{0,3}{1}") and summed in C, cheaper than merging them in SQL.  Buckets
 * without any count are left out (HAVING reuses the sums of the columns). */
#define USAGE_COLUMNS                                                                       \
    "SELECT (date_part('epoch', date_trunc($2, u.ts, 'UTC')) * 1000)::bigint AS b,"         \
    "  CASE WHEN $5::boolean THEN u.endpoint END AS ep,"                                    \
    "  sum(u.allowed)::bigint,"                                                             \
    "  sum(u.rate_limited + u.quota_exceeded + u.denied_other)::bigint,"                    \
    "  sum(u.reported)::bigint, sum(u.errors)::bigint, sum(u.rt_sum_us)::bigint,"           \
    "  max(u.rt_max_us), string_agg(u.rt_hist::text, '')"
#define USAGE_GROUP                                                                         \
    " GROUP BY 1, 2 HAVING sum(u.allowed)"                                                  \
    "  + sum(u.rate_limited + u.quota_exceeded + u.denied_other) + sum(u.reported) > 0"

/* A key's rows; a row of NULLs when the key has none, no row when the key
 * does not exist or is not owner $8's (404; $8 NULL: any owner's). */
static const char KEY_SQL[] =
    "SELECT g.* FROM keys k LEFT JOIN (" USAGE_COLUMNS USAGE_ROWS("= $1") USAGE_GROUP
    ") g ON true WHERE k.id = $1 AND ($8::text IS NULL OR k.owner_id = $8)"
    " ORDER BY g.b, g.ep";

/* An owner's rows, summed over all its keys (revoked ones included: their
 * history stays theirs).  An owner token asking for another owner's was
 * answered 404 before this. */
static const char OWNER_SQL[] =
    USAGE_COLUMNS USAGE_ROWS("IN (SELECT id FROM keys WHERE owner_id = $1)") USAGE_GROUP
    " ORDER BY 1, 2";

/* Milliseconds with microsecond resolution as a JSON number written exactly
 * ("12.345", "12.3", "12"), never through binary floating point formatting. */
static json_object *ms_json(int64_t us)
{
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%" PRId64 ".%03" PRId64, us / 1000, us % 1000);
    while (len > 0 && buf[len - 1] == '0')
        buf[--len] = '\0';
    if (len > 0 && buf[len - 1] == '.')
        buf[--len] = '\0';
    return json_object_new_double_s((double)us / 1000.0, buf);
}

/* Sums the histograms of text, bigint[] as PostgreSQL prints them put side
 * by side ("{0,3,1}{2}"), into counts.  Counts past the last bucket (none
 * are written) are added to it.  Returns the number of buckets read (the
 * longest histogram), 0 when text is malformed. */
static size_t hist_parse(const char *text, int64_t counts[HIST_BUCKETS])
{
    size_t longest = 0;
    memset(counts, 0, HIST_BUCKETS * sizeof *counts);
    for (const char *p = text; *p;) {
        if (*p != '{')
            return 0;
        size_t n = 0;
        for (p++; *p && *p != '}'; n++) {
            /* Counts are digits only (a month of them holds a few hundred
             * thousand): a plain loop, much cheaper than strtoll. */
            int64_t v = 0;
            const char *start = p;
            for (; *p >= '0' && *p <= '9' && v < INT64_MAX / 10 - 9; p++)
                v = v * 10 + (*p - '0');
            if (p == start || (*p != ',' && *p != '}'))
                return 0;
            counts[n < HIST_BUCKETS ? n : HIST_BUCKETS - 1] += v;
            if (*p == ',')
                p++;
        }
        if (*p != '}')
            return 0;
        p++;
        if (n > longest)
            longest = n;
    }
    return longest < HIST_BUCKETS ? longest : HIST_BUCKETS;
}

/* {avg, p95, max} from the row's event figures, or NULL when none. */
static json_object *response_json(const struct pg_res *res, int i, int64_t reported)
{
    if (reported <= 0)
        return NULL;
    int64_t sum = pg_int(res, i, 6), max = pg_int(res, i, 7);
    int64_t avg = (sum + reported / 2) / reported, p95 = -1;
    if (!pg_isnull(res, i, 8)) {
        int64_t counts[HIST_BUCKETS];
        size_t n = hist_parse(pg_val(res, i, 8), counts);
        p95 = hist_quantile(counts, n, 0.95, max);
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "avg", ms_json(avg));
    json_object_object_add(o, "p95", p95 >= 0 ? ms_json(p95) : NULL);
    json_object_object_add(o, "max", ms_json(max));
    return o;
}

static json_object *row_json(const struct pg_res *res, int i, bool by_endpoint)
{
    char ts[TG_TIME_LEN];
    int64_t allowed = pg_int(res, i, 2), denied = pg_int(res, i, 3);
    int64_t reported = pg_int(res, i, 4);
    format_time_ms(pg_int(res, i, 0), ts);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ts", json_object_new_string(ts));
    if (by_endpoint)
        json_object_object_add(o, "endpoint", json_object_new_string(pg_val(res, i, 1)));
    json_object_object_add(o, "requests", json_object_new_int64(allowed + denied));
    json_object_object_add(o, "allowed", json_object_new_int64(allowed));
    json_object_object_add(o, "denied", json_object_new_int64(denied));
    json_object_object_add(o, "reported", json_object_new_int64(reported));
    json_object_object_add(o, "errors", json_object_new_int64(pg_int(res, i, 5)));
    json_object_object_add(o, "response_ms", response_json(res, i, reported));
    return o;
}

/* The history of a key (by_owner false: 404 when unknown) or of an owner. */
static void usage_history(struct http_req *r, bool by_owner)
{
    struct api_error e;
    struct usage_query q;
    const char *id = r->params[0];
    if (usage_query_parse(r, now_ms(), &q, &e) != 0) {
        http_reply_error(r, &e);
        return;
    }
    if (by_owner) {
        size_t len = strlen(id);
        if (!utf8_valid(id, len) || utf8_len(id, len) > 128 || has_control_chars(id, len)) {
            api_error_set(&e, ERR_INVALID_ARGUMENT, "owner_id",
                          "owner_id must be 1 to 128 characters without control characters.");
            http_reply_error(r, &e);
            return;
        }
        /* Not 403: an owner token cannot tell another owner from none. */
        if (!auth_sees_owner(&r->who, id)) {
            api_error_set(&e, ERR_NOT_FOUND, NULL, "Owner not found.");
            http_reply_error(r, &e);
            return;
        }
    }
    char from[24], to[24], hours_from[24], hours_to[24];
    snprintf(from, sizeof from, "%" PRId64, q.from_ms);
    snprintf(to, sizeof to, "%" PRId64, q.to_ms);
    snprintf(hours_from, sizeof hours_from, "%" PRId64, q.hours_from_ms);
    snprintf(hours_to, sizeof hours_to, "%" PRId64, q.hours_to_ms);
    const char *p[] = {id,         q.unit,   from, to, q.by_endpoint ? "true" : "false",
                       hours_from, hours_to, auth_owner_scope(&r->who)};
    struct pg_conn *c = db_or_reply(r);
    if (!c)
        return;
    struct pg_res *res = pg_query(c, by_owner ? OWNER_SQL : KEY_SQL, by_owner ? 7 : 8, p, &e);
    db_release(r, c);
    if (!res) {
        http_reply_error(r, &e);
        return;
    }
    int n = pg_nrows(res);
    if (!by_owner && n == 0) {
        pg_res_free(res);
        api_error_set(&e, ERR_NOT_FOUND, NULL, "Key not found.");
        http_reply_error(r, &e);
        return;
    }
    json_object *data = json_object_new_array();
    for (int i = 0; i < n; i++)
        if (!pg_isnull(res, i, 0))
            json_object_array_add(data, row_json(res, i, q.by_endpoint));
    pg_res_free(res);
    json_object *body = json_object_new_object();
    json_object_object_add(body, "data", data);
    http_reply(r, 200, body, NULL);
}

static void usage_key(struct http_req *r)
{
    usage_history(r, false);
}

static void usage_owner(struct http_req *r)
{
    usage_history(r, true);
}

/* ---- live ---- */

static json_object *window_json(const struct rl_window *w, const struct key_limit *limit)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(w->name));
    json_object_object_add(o, "window_s", json_object_new_int64(w->window_s));
    json_object_object_add(o, "limit", json_object_new_int64(w->limit));
    json_object_object_add(o, "used", json_object_new_int64(w->used));
    json_object_object_add(o, "remaining", json_object_new_int64(w->remaining));
    json_object_object_add(o, "reset_ms", json_object_new_int64(w->reset_ms));
    if (limit->endpoint[0])
        json_object_object_add(o, "endpoint", json_object_new_string(limit->endpoint));
    return o;
}

static void usage_live(struct http_req *r)
{
    struct api_error e;
    struct key_record rec;
    if (keystore_by_id(r->app->keys, r->params[0], &rec, &e) != 0) {
        http_reply_error(r, &e);
        return;
    }
    if (!rec.found || !auth_sees_owner(&r->who, rec.owner_id)) {
        api_error_set(&e, ERR_NOT_FOUND, NULL, "Key not found.");
        http_reply_error(r, &e);
        key_record_fini(&rec);
        return;
    }
    struct rl_request req;
    struct rl_result res;
    struct api_error err;
    if (!check_prepare(&rec, NULL, 1, &req)) {
        api_error_set(&e, ERR_INTERNAL, NULL, "The key's limits exceed what one check enforces.");
        http_reply_error(r, &e);
        key_record_fini(&rec);
        return;
    }
    if (keyuse_decide(r->worker->redis, r->app->pg, &req, true, &res, &err) != 0 || res.stale) {
        api_error_set(&e, ERR_UNAVAILABLE, NULL, "The rate-limit store is unavailable.");
        http_reply_error(r, &e);
        key_record_fini(&rec);
        return;
    }
    json_object *data = json_object_new_array();
    for (size_t i = 0; i < req.nwindows; i++)
        json_object_array_add(data, window_json(&req.windows[i], &rec.limits[i]));
    json_object *body = json_object_new_object();
    json_object_object_add(body, "data", data);
    json_object *quota = NULL;
    if (rec.has_quota) {
        quota = json_object_new_object();
        json_object_object_add(quota, "used", json_object_new_int64(res.quota_used));
        json_object_object_add(quota, "included", json_object_new_int64(rec.quota_included));
    }
    json_object_object_add(body, "quota", quota);
    json_object_object_add(body, "remaining",
                           rec.has_remaining ? json_object_new_int64(res.remaining) : NULL);
    http_reply(r, 200, body, NULL);
    key_record_fini(&rec);
}

#define READ (ROLE_ADMIN | ROLE_OPERATOR | ROLE_BILLING | ROLE_VIEWER | ROLE_OWNER)

const struct route usage_routes[] = {
    {"GET", "/v1/keys/{id}/usage", READ, usage_key, 0, NULL},
    {"GET", "/v1/keys/{id}/usage/live", READ, usage_live, 0, NULL},
    {"GET", "/v1/owners/{owner_id}/usage", READ, usage_owner, 0, NULL},
};
const size_t usage_routes_len = TG_ARRAY_LEN(usage_routes);
