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
#define USAGE_PART_OF(table, who, lo, hi)                                                   \
    "SELECT ts, endpoint, allowed, rate_limited + quota_exceeded + denied_other AS denied," \
    "  reported, errors, rt_sum_us, rt_max_us, rt_hist FROM " table " WHERE " who           \
    "  AND ts >= " USAGE_AT(lo) " AND ts < " USAGE_AT(hi)
#define USAGE_PART(table, keys, lo, hi) USAGE_PART_OF(table, "key_id " keys, lo, hi)
#define USAGE_ROWS(keys)                                                                    \
    " FROM (" USAGE_PART("usage_hour", keys, "$6", "$7")                                    \
    " UNION ALL " USAGE_PART("usage_minute", keys, "$3", "$6")                              \
    " UNION ALL " USAGE_PART("usage_minute", keys, "$7", "$4") ") u"

/* The stored rows themselves, each with its bucket's start ($2: the
 * date_trunc field) and in bucket order (then endpoint when $5, grouping
 * by endpoint): the responder sums the rows of a bucket as they come.
 * For a key by hour or minute a bucket is about one row, and summing in
 * SQL (a hash aggregate, then a sort of its result) cost about three
 * quarters of the query's time.  A bucket start is a whole second, so its
 * epoch in float8 is exact. */
#define USAGE_BUCKET "(date_part('epoch', date_trunc($2, u.ts, 'UTC')) * 1000)::bigint AS b"
#define USAGE_COLUMNS                                                                       \
    "SELECT " USAGE_BUCKET ", u.endpoint, u.allowed, u.denied, u.reported, u.errors,"       \
    "  u.rt_sum_us, u.rt_max_us, u.rt_hist::text"
#define USAGE_ORDER " ORDER BY b, CASE WHEN $5::boolean THEN u.endpoint END"

/* The same summed per bucket (and endpoint) in SQL, where a bucket holds
 * many rows (an owner's keys, a day's hours) and shipping them all would
 * cost more: bigint sums (tg_sum8, cheaper than sum()'s numeric), the
 * histograms side by side as text ("{0,3}{1}"), merged by the responder. */
#define USAGE_SUMMED                                                                        \
    "SELECT " USAGE_BUCKET ", CASE WHEN $5::boolean THEN u.endpoint END AS ep,"             \
    "  tg_sum8(u.allowed), tg_sum8(u.denied), tg_sum8(u.reported), tg_sum8(u.errors),"      \
    "  tg_sum8(u.rt_sum_us), max(u.rt_max_us), string_agg(u.rt_hist::text, '')"
#define USAGE_GROUP " GROUP BY 1, 2 ORDER BY 1, 2"

/* A key's rows; a row of NULLs when the key has none, no row when the key
 * does not exist or is not owner $8's (404; $8 NULL: any owner's).  Indexed
 * by summed.  (The outer ORDER BY keeps the order the responder relies on;
 * the rows come sorted already.) */
#define KEY_OF_OWNER " WHERE k.id = $1 AND ($8::text IS NULL OR k.owner_id = $8)"
static const char *const KEY_SQL[] = {
    "SELECT u.* FROM keys k LEFT JOIN (" USAGE_COLUMNS USAGE_ROWS("= $1") ") u ON true"
    KEY_OF_OWNER USAGE_ORDER,
    "SELECT u.* FROM keys k LEFT JOIN (" USAGE_SUMMED USAGE_ROWS("= $1") " GROUP BY 1, 2"
    ") u ON true" KEY_OF_OWNER " ORDER BY 1, 2",
};

/* An owner's rows, over all its keys (revoked ones included: their history
 * stays theirs), summed in SQL: the whole hours from the owner's own rollup
 * (usage_owner_hour, sql/022_owner_rollups.sql: a month by hour is 720 rows
 * per endpoint however many keys the owner has), the minutes at the edges
 * from its keys' rows.  An owner token asking for another owner's was
 * answered 404 before this. */
#define OWNER_KEYS "IN (SELECT id FROM keys WHERE owner_id = $1)"
static const char OWNER_SQL[] =
    USAGE_SUMMED " FROM (" USAGE_PART_OF("usage_owner_hour", "owner_id = $1", "$6", "$7")
    " UNION ALL " USAGE_PART("usage_minute", OWNER_KEYS, "$3", "$6")
    " UNION ALL " USAGE_PART("usage_minute", OWNER_KEYS, "$7", "$4") ") u" USAGE_GROUP;

/* Milliseconds with microsecond resolution as a JSON number written exactly
 * ("12.345", "12.3", "12"), never through binary floating point formatting. */
static void put_ms(struct strbuf *b, int64_t us)
{
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%" PRId64 ".%03" PRId64, us / 1000, us % 1000);
    while (len > 0 && buf[len - 1] == '0')
        buf[--len] = '\0';
    if (len > 0 && buf[len - 1] == '.')
        buf[--len] = '\0';
    strbuf_put(b, buf, (size_t)len);
}

/* Adds histograms as PostgreSQL prints bigint[], one or several side by
 * side ("{0,3,1}{2}"), into counts.  Counts past the last bucket (none are
 * written) are added to it.  Returns the number of buckets read (the
 * longest histogram), -1 when text is malformed. */
static long hist_add_text(const char *text, int64_t counts[HIST_BUCKETS])
{
    size_t longest = 0;
    for (const char *p = text; *p;) {
        if (*p != '{')
            return -1;
        size_t n = 0;
        for (p++; *p && *p != '}'; n++) {
            /* Counts are digits only (a month of them holds a few hundred
             * thousand): a plain loop, much cheaper than strtoll. */
            int64_t v = 0;
            const char *start = p;
            for (; *p >= '0' && *p <= '9' && v < INT64_MAX / 10 - 9; p++)
                v = v * 10 + (*p - '0');
            if (p == start || (*p != ',' && *p != '}'))
                return -1;
            counts[n < HIST_BUCKETS ? n : HIST_BUCKETS - 1] += v;
            if (*p == ',')
                p++;
        }
        if (*p != '}')
            return -1;
        p++;
        if (n > longest)
            longest = n;
    }
    return (long)(longest < HIST_BUCKETS ? longest : HIST_BUCKETS);
}

/* One bucket (and endpoint) of the answer, summed from its rows. */
struct usage_sum {
    int64_t ts;
    const char *endpoint; /* borrowed from the result */
    int64_t allowed, denied, reported, errors, rt_sum_us, rt_max_us;
    int64_t counts[HIST_BUCKETS];
    size_t nbuckets; /* histogram buckets in use; 0: no histogram */
    bool bad_hist;   /* a histogram could not be read: p95 unknown */
};

static void sum_start(struct usage_sum *s, const struct pg_res *res, int i)
{
    if (s->nbuckets)
        memset(s->counts, 0, s->nbuckets * sizeof *s->counts);
    s->ts = pg_int(res, i, 0);
    s->endpoint = pg_val(res, i, 1);
    s->allowed = s->denied = s->reported = s->errors = s->rt_sum_us = s->rt_max_us = 0;
    s->nbuckets = 0;
    s->bad_hist = false;
}

static void sum_add(struct usage_sum *s, const struct pg_res *res, int i)
{
    s->allowed += pg_int(res, i, 2);
    s->denied += pg_int(res, i, 3);
    s->reported += pg_int(res, i, 4);
    s->errors += pg_int(res, i, 5);
    s->rt_sum_us += pg_int(res, i, 6);
    int64_t max = pg_int(res, i, 7);
    if (max > s->rt_max_us)
        s->rt_max_us = max;
    if (!pg_isnull(res, i, 8)) {
        long n = hist_add_text(pg_val(res, i, 8), s->counts);
        if (n < 0)
            s->bad_hist = true;
        else if ((size_t)n > s->nbuckets)
            s->nbuckets = (size_t)n;
    }
}

/* {avg, p95, max} from the bucket's event figures, or null when none. */
static void put_response(struct strbuf *b, const struct usage_sum *s)
{
    if (s->reported <= 0) {
        strbuf_put(b, "null", 4);
        return;
    }
    int64_t avg = (s->rt_sum_us + s->reported / 2) / s->reported, p95 = -1;
    if (s->nbuckets && !s->bad_hist)
        p95 = hist_quantile(s->counts, s->nbuckets, 0.95, s->rt_max_us);
    strbuf_put(b, "{\"avg\":", 7);
    put_ms(b, avg);
    strbuf_put(b, ",\"p95\":", 7);
    if (p95 >= 0)
        put_ms(b, p95);
    else
        strbuf_put(b, "null", 4);
    strbuf_put(b, ",\"max\":", 7);
    put_ms(b, s->rt_max_us);
    strbuf_putc(b, '}');
}

/* Writes the bucket as a row of data (a comma first unless it is the
 * first); a bucket with nothing counted is left out. */
static void put_sum(struct strbuf *b, const struct usage_sum *s, bool by_endpoint, bool *first)
{
    if (s->allowed + s->denied + s->reported <= 0)
        return;
    char ts[TG_TIME_LEN];
    format_time_ms(s->ts, ts);
    if (!*first)
        strbuf_putc(b, ',');
    *first = false;
    strbuf_put(b, "{\"ts\":\"", 7);
    strbuf_put(b, ts, strlen(ts));
    strbuf_putc(b, '"');
    if (by_endpoint) {
        strbuf_put(b, ",\"endpoint\":", 12);
        strbuf_json_str(b, s->endpoint);
    }
    strbuf_put(b, ",\"requests\":", 12);
    strbuf_int(b, s->allowed + s->denied);
    strbuf_put(b, ",\"allowed\":", 11);
    strbuf_int(b, s->allowed);
    strbuf_put(b, ",\"denied\":", 10);
    strbuf_int(b, s->denied);
    strbuf_put(b, ",\"reported\":", 12);
    strbuf_int(b, s->reported);
    strbuf_put(b, ",\"errors\":", 10);
    strbuf_int(b, s->errors);
    strbuf_put(b, ",\"response_ms\":", 15);
    put_response(b, s);
    strbuf_putc(b, '}');
}

/* The answer from rows in bucket (then endpoint) order, stored or summed
 * in SQL: consecutive rows of one bucket (and endpoint) are summed into
 * one. */
static void reply_history(struct http_req *r, const struct pg_res *res, bool by_endpoint)
{
    struct usage_sum *s = xcalloc(1, sizeof *s);
    struct strbuf b = {0};
    bool first = true, open = false;
    strbuf_reserve(&b, 64 + (size_t)pg_nrows(res) * 120);
    strbuf_put(&b, "{\"data\":[", 9);
    for (int i = 0; i < pg_nrows(res); i++) {
        if (pg_isnull(res, i, 0))
            continue; /* a key without rows */
        if (!open || s->ts != pg_int(res, i, 0) ||
            (by_endpoint && strcmp(s->endpoint, pg_val(res, i, 1)) != 0)) {
            if (open)
                put_sum(&b, s, by_endpoint, &first);
            sum_start(s, res, i);
            open = true;
        }
        sum_add(s, res, i);
    }
    if (open)
        put_sum(&b, s, by_endpoint, &first);
    strbuf_put(&b, "]}", 2);
    http_reply_json_text(r, 200, NULL, b.p, b.len);
    strbuf_fini(&b);
    free(s);
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
    /* About one stored row per bucket: read them as they are; more: sum in SQL. */
    bool summed = by_owner || q.bucket_ms > HOUR_MS;
    struct pg_res *res =
        pg_query(c, by_owner ? OWNER_SQL : KEY_SQL[summed], by_owner ? 7 : 8, p, &e);
    db_release(r, c);
    if (!res) {
        http_reply_error(r, &e);
        return;
    }
    if (!by_owner && pg_nrows(res) == 0) {
        pg_res_free(res);
        api_error_set(&e, ERR_NOT_FOUND, NULL, "Key not found.");
        http_reply_error(r, &e);
        return;
    }
    reply_history(r, res, q.by_endpoint);
    pg_res_free(res);
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
