/* refill: see refill.h. */
#include "refill.h"

#include <string.h>

#include "jsonx.h"

#define DAY_MS INT64_C(86400000)

int refill_parse(json_object *v, struct key_refill *out, struct api_error *e)
{
    memset(out, 0, sizeof *out);
    if (!v)
        return 0;
    if (!json_object_is_type(v, json_type_object)) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "refill",
                      "refill must be an object {\"amount\",\"interval\"} or null.");
        return -1;
    }
    json_object *amount = NULL, *interval = NULL, *day = NULL;
    json_object_object_foreach(v, name, val)
    {
        if (strcmp(name, "amount") == 0) {
            amount = val;
        } else if (strcmp(name, "interval") == 0) {
            interval = val;
        } else if (strcmp(name, "day_of_month") == 0) {
            day = val;
        } else {
            char path[80];
            jsonx_path(path, sizeof path, "refill.", name);
            api_error_set(e, ERR_UNKNOWN_FIELD, path, "Unknown field '%s'.", path);
            return -1;
        }
    }
    if (!amount || !interval) {
        api_error_set(e, ERR_MISSING_FIELD, !amount ? "refill.amount" : "refill.interval",
                      "refill needs amount and interval.");
        return -1;
    }
    if (jsonx_int_range(amount, "refill.amount", 0, REFILL_AMOUNT_MAX, e) != 0)
        return -1;
    const char *iv = json_object_is_type(interval, json_type_string)
                         ? json_object_get_string(interval)
                         : "";
    bool monthly = strcmp(iv, "month") == 0;
    if (!monthly && strcmp(iv, "day") != 0) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "refill.interval",
                      "refill.interval must be \"day\" or \"month\".");
        return -1;
    }
    if (day && !monthly) {
        api_error_set(e, ERR_INVALID_ARGUMENT, "refill.day_of_month",
                      "refill.day_of_month applies only to a monthly refill.");
        return -1;
    }
    if (day && jsonx_int_range(day, "refill.day_of_month", 1, REFILL_DAY_MAX, e) != 0)
        return -1;
    out->on = true;
    out->amount = json_object_get_int64(amount);
    out->day_of_month = monthly ? (day ? json_object_get_int(day) : 1) : 0;
    return 0;
}

json_object *refill_to_json(const struct key_refill *r)
{
    if (!r->on)
        return NULL;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "amount", json_object_new_int64(r->amount));
    json_object_object_add(o, "interval",
                           json_object_new_string(r->day_of_month ? "month" : "day"));
    if (r->day_of_month)
        json_object_object_add(o, "day_of_month", json_object_new_int(r->day_of_month));
    return o;
}

int refill_from_stored(json_object *v, struct key_refill *out)
{
    struct api_error e;
    return refill_parse(v, out, &e);
}

/* Days since 1970-01-01 of a civil date, and back (H. Hinnant's algorithms;
 * the same arithmetic as ratelimit.lua's). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

int64_t refill_start(const struct key_refill *r, int64_t t_ms)
{
    if (!r->on)
        return 0;
    if (t_ms < 0)
        t_ms = 0;
    int64_t day = t_ms / DAY_MS;
    if (r->day_of_month == 0)
        return day * DAY_MS;
    /* A month that starts on day D: shift back D - 1 days, take the month,
     * shift forward again (D <= 28 exists in every month). */
    int64_t off = r->day_of_month - 1, y, m;
    civil_from_days(day - off, &y, &m);
    return (days_from_civil(y, m, 1) + off) * DAY_MS;
}

int64_t refill_next(const struct key_refill *r, int64_t start)
{
    if (r->day_of_month == 0)
        return start + DAY_MS;
    int64_t off = r->day_of_month - 1, y, m;
    civil_from_days(start / DAY_MS - off, &y, &m);
    if (++m > 12) {
        m = 1;
        y++;
    }
    return (days_from_civil(y, m, 1) + off) * DAY_MS;
}
