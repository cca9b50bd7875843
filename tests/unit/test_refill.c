/* Unit tests of refill: the API member's validation and canonical form,
 * and the interval starts at day and month boundaries, against the C
 * library's calendar (timegm). */
#define _DEFAULT_SOURCE /* timegm */
#include <string.h>
#include <time.h>

#include "jsonx.h"
#include "refill.h"
#include "unit.h"

#define DAY INT64_C(86400000)

static int parse_text(const char *text, struct key_refill *r, struct api_error *e)
{
    json_object *o = json_tokener_parse(text);
    int rc = refill_parse(o, r, e);
    json_object_put(o);
    return rc;
}

static void test_parse(void)
{
    struct key_refill r;
    struct api_error e;
    CU_ASSERT_EQUAL(parse_text("{\"amount\":3,\"interval\":\"day\"}", &r, &e), 0);
    CU_ASSERT_TRUE(r.on);
    CU_ASSERT_EQUAL(r.amount, 3);
    CU_ASSERT_EQUAL(r.day_of_month, 0);
    CU_ASSERT_EQUAL(parse_text("{\"amount\":0,\"interval\":\"month\"}", &r, &e), 0);
    CU_ASSERT_EQUAL(r.day_of_month, 1);
    CU_ASSERT_EQUAL(
        parse_text("{\"interval\":\"month\",\"day_of_month\":28,\"amount\":1000000000000000}", &r, &e),
        0);
    CU_ASSERT_EQUAL(r.day_of_month, 28);
    CU_ASSERT_EQUAL(r.amount, REFILL_AMOUNT_MAX);
    /* null: none */
    CU_ASSERT_EQUAL(refill_parse(NULL, &r, &e), 0);
    CU_ASSERT_FALSE(r.on);
    static const struct {
        const char *text, *field;
        enum err_code code;
    } bad[] = {
        {"[]", "refill", ERR_INVALID_ARGUMENT},
        {"{\"amount\":3}", "refill.interval", ERR_MISSING_FIELD},
        {"{\"interval\":\"day\"}", "refill.amount", ERR_MISSING_FIELD},
        {"{\"amount\":-1,\"interval\":\"day\"}", "refill.amount", ERR_INVALID_ARGUMENT},
        {"{\"amount\":1000000000000001,\"interval\":\"day\"}", "refill.amount", ERR_INVALID_ARGUMENT},
        {"{\"amount\":1.5,\"interval\":\"day\"}", "refill.amount", ERR_INVALID_ARGUMENT},
        {"{\"amount\":\"3\",\"interval\":\"day\"}", "refill.amount", ERR_INVALID_ARGUMENT},
        {"{\"amount\":3,\"interval\":\"week\"}", "refill.interval", ERR_INVALID_ARGUMENT},
        {"{\"amount\":3,\"interval\":1}", "refill.interval", ERR_INVALID_ARGUMENT},
        {"{\"amount\":3,\"interval\":\"day\",\"day_of_month\":2}", "refill.day_of_month",
         ERR_INVALID_ARGUMENT},
        {"{\"amount\":3,\"interval\":\"month\",\"day_of_month\":0}", "refill.day_of_month",
         ERR_INVALID_ARGUMENT},
        {"{\"amount\":3,\"interval\":\"month\",\"day_of_month\":29}", "refill.day_of_month",
         ERR_INVALID_ARGUMENT},
        {"{\"amount\":3,\"interval\":\"day\",\"at\":1}", "refill.at", ERR_UNKNOWN_FIELD},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        memset(&e, 0, sizeof e);
        CU_ASSERT_EQUAL(parse_text(bad[i].text, &r, &e), -1);
        CU_ASSERT_EQUAL(e.code, bad[i].code);
        CU_ASSERT_STRING_EQUAL(e.field, bad[i].field);
    }
}

static void test_json(void)
{
    struct key_refill r = {true, 7, 0}, back;
    json_object *o = refill_to_json(&r);
    CU_ASSERT_STRING_EQUAL(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                           "{\"amount\":7,\"interval\":\"day\"}");
    CU_ASSERT_EQUAL(refill_from_stored(o, &back), 0);
    CU_ASSERT_TRUE(back.on && back.amount == 7 && back.day_of_month == 0);
    json_object_put(o);
    r.day_of_month = 15;
    o = refill_to_json(&r);
    CU_ASSERT_STRING_EQUAL(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                           "{\"amount\":7,\"interval\":\"month\",\"day_of_month\":15}");
    json_object_put(o);
    r.on = false;
    CU_ASSERT_PTR_NULL(refill_to_json(&r));
    CU_ASSERT_EQUAL(refill_from_stored(NULL, &back), 0);
    CU_ASSERT_FALSE(back.on);
}

static int64_t civil_ms(int y, int m, int d)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    return (int64_t)timegm(&tm) * 1000;
}

static void test_boundaries(void)
{
    struct key_refill daily = {true, 1, 0}, monthly = {true, 1, 1}, on15 = {true, 1, 15},
                      off = {false, 0, 0};
    int64_t t = civil_ms(2026, 12, 31) + 23 * 3600000 + 59 * 60000 + 59999; /* 23:59:59.999 */
    CU_ASSERT_EQUAL(refill_start(&daily, t), civil_ms(2026, 12, 31));
    CU_ASSERT_EQUAL(refill_start(&daily, t + 1), civil_ms(2027, 1, 1));
    CU_ASSERT_EQUAL(refill_next(&daily, civil_ms(2026, 12, 31)), civil_ms(2027, 1, 1));
    CU_ASSERT_EQUAL(refill_start(&monthly, t), civil_ms(2026, 12, 1));
    CU_ASSERT_EQUAL(refill_start(&monthly, t + 1), civil_ms(2027, 1, 1));
    CU_ASSERT_EQUAL(refill_next(&monthly, civil_ms(2026, 12, 1)), civil_ms(2027, 1, 1));
    /* On the 15th: the 14th belongs to the previous month's interval. */
    CU_ASSERT_EQUAL(refill_start(&on15, civil_ms(2027, 1, 15) - 1), civil_ms(2026, 12, 15));
    CU_ASSERT_EQUAL(refill_start(&on15, civil_ms(2027, 1, 15)), civil_ms(2027, 1, 15));
    CU_ASSERT_EQUAL(refill_next(&on15, civil_ms(2026, 12, 15)), civil_ms(2027, 1, 15));
    /* Leap day: 2028-02-29 is in February's interval. */
    CU_ASSERT_EQUAL(refill_start(&monthly, civil_ms(2028, 2, 29) + 5), civil_ms(2028, 2, 1));
    CU_ASSERT_EQUAL(refill_start(&daily, civil_ms(2028, 2, 29) + 5), civil_ms(2028, 2, 29));
    CU_ASSERT_EQUAL(refill_start(&off, t), 0);
    CU_ASSERT_EQUAL(refill_start(&daily, -5), 0);
}

/* Every day from 1970 to 2200, every schedule, against timegm. */
static void test_calendar(void)
{
    int bad = 0;
    for (int64_t day = 0; day < 84000 && bad < 5; day++) {
        time_t s = (time_t)(day * 86400);
        struct tm tm;
        gmtime_r(&s, &tm);
        int y = tm.tm_year + 1900, m = tm.tm_mon + 1;
        for (int dom = 0; dom <= REFILL_DAY_MAX; dom++) {
            struct key_refill r = {true, 1, dom};
            int64_t want, next;
            if (dom == 0) {
                want = day * DAY;
                next = want + DAY;
            } else {
                int sy = y, sm = m;
                if (tm.tm_mday < dom && --sm == 0) {
                    sm = 12;
                    sy--;
                }
                want = civil_ms(sy, sm, dom);
                next = civil_ms(sm == 12 ? sy + 1 : sy, sm == 12 ? 1 : sm + 1, dom);
            }
            int64_t t = day * DAY + (day * 7919) % DAY;
            if (refill_start(&r, t) != want || refill_next(&r, want) != next) {
                if (bad++ < 5)
                    fprintf(stderr, "day %lld dom %d: start %lld want %lld\n", (long long)day,
                            dom, (long long)refill_start(&r, t), (long long)want);
            }
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_parse),
        UNIT_TEST(test_json),
        UNIT_TEST(test_boundaries),
        UNIT_TEST(test_calendar),
    };
    return unit_run("refill", tests, TG_ARRAY_LEN(tests));
}
