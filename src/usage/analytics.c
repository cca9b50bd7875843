#include "analytics.h"

#include <string.h>

#define HOUR_MS INT64_C(3600000)
#define DAY_MS (24 * HOUR_MS)

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t floor_to(int64_t ms, int64_t unit)
{
    return floor_div(ms, unit) * unit;
}

static int64_t ceil_to(int64_t ms, int64_t unit)
{
    return -floor_div(-ms, unit) * unit;
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (H.
 * Hinnant's days_from_civil / civil_from_days): calendar arithmetic
 * without time_t, whose range or gmtime's would otherwise matter. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

int64_t analytics_month_floor(int64_t ms)
{
    int64_t y, m;
    civil_from_days(floor_div(ms, DAY_MS), &y, &m);
    return days_from_civil(y, m, 1) * DAY_MS;
}

int64_t analytics_month_next(int64_t ms)
{
    int64_t y, m;
    civil_from_days(floor_div(ms, DAY_MS), &y, &m);
    return (m == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, m + 1, 1)) * DAY_MS;
}

static int64_t month_ceil(int64_t ms)
{
    int64_t lo = analytics_month_floor(ms);
    return lo == ms ? ms : analytics_month_next(ms);
}

void analytics_span_of(int64_t from_ms, int64_t to_ms, struct analytics_span *s)
{
    s->days_lo = ceil_to(from_ms, DAY_MS);
    s->days_hi = floor_to(to_ms, DAY_MS);
    if (s->days_lo >= s->days_hi)
        s->days_lo = s->days_hi = to_ms; /* no whole day: hours only */
    s->months_lo = month_ceil(s->days_lo);
    s->months_hi = analytics_month_floor(s->days_hi);
    if (s->months_lo >= s->months_hi)
        s->months_lo = s->months_hi = s->days_hi; /* no whole month: days only */
}

const char *analytics_rank_name(enum analytics_rank by)
{
    static const char *const names[] = {"requests", "denials", "billable"};
    return names[by];
}

static int bad(struct api_error *e, const char *field, const char *msg)
{
    api_error_set(e, ERR_INVALID_ARGUMENT, field, "%s", msg);
    return -1;
}

static int parse_bound(const char *value, const char *field, int64_t unit, int64_t *out,
                       struct api_error *e)
{
    if (!value) {
        api_error_set(e, ERR_MISSING_FIELD, field,
                      "%s is required (an RFC 3339 time such as 2026-11-01T00:00:00Z).", field);
        return -1;
    }
    if (parse_time_ms(value, out) != 0) {
        api_error_set(e, ERR_INVALID_ARGUMENT, field,
                      "%s must be an RFC 3339 time such as 2026-11-01T00:00:00Z.", field);
        return -1;
    }
    if (floor_to(*out, unit) != *out) {
        api_error_set(e, ERR_INVALID_ARGUMENT, field, "%s must be on the %s (UTC).", field,
                      unit == HOUR_MS ? "hour" : "day, at 00:00Z");
        return -1;
    }
    return 0;
}

static int parse_ranking(const struct analytics_args *a, struct analytics_query *q,
                         struct api_error *e)
{
    q->by = ANALYTICS_BY_REQUESTS;
    if (a->by) {
        size_t i = 0;
        while (i < 3 && strcmp(a->by, analytics_rank_name((enum analytics_rank)i)) != 0)
            i++;
        if (i == 3)
            return bad(e, "by", "by must be requests, denials or billable.");
        q->by = (enum analytics_rank)i;
    }
    q->limit = ANALYTICS_LIMIT_DEFAULT;
    if (a->limit && parse_int64(a->limit, 1, ANALYTICS_LIMIT_MAX, &q->limit) != 0)
        return bad(e, "limit", "limit must be an integer from 1 to 1000.");
    q->tier[0] = '\0';
    if (a->tier) {
        size_t len = strlen(a->tier);
        if (!name_ok(a->tier, len, ANALYTICS_TIER_MAX, "_-"))
            return bad(e, "tier", "tier must be a tier name: 1 to 32 of [a-z0-9_-].");
        memcpy(q->tier, a->tier, len + 1);
    }
    return 0;
}

int analytics_parse(const struct analytics_args *a, enum analytics_kind kind,
                    struct analytics_query *q, struct api_error *e)
{
    int64_t unit = kind == ANALYTICS_RANKING ? HOUR_MS : DAY_MS;
    memset(q, 0, sizeof *q);
    if (parse_bound(a->from, "from", unit, &q->from_ms, e) != 0 ||
        parse_bound(a->to, "to", unit, &q->to_ms, e) != 0)
        return -1;
    if (q->from_ms >= q->to_ms)
        return bad(e, "to", "from must be earlier than to.");
    if (q->to_ms - q->from_ms > ANALYTICS_MAX_DAYS * DAY_MS)
        return bad(e, "to", "The range may span at most 366 days.");
    if (kind == ANALYTICS_RANKING)
        return parse_ranking(a, q, e);
    q->by = ANALYTICS_BY_REQUESTS;
    return 0;
}
