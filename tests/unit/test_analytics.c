#include <stdint.h>

#include "analytics.h"
#include "util.h"
#include "unit.h"

static int64_t at(const char *rfc3339)
{
    int64_t ms = 0;
    CU_ASSERT_EQUAL_FATAL(parse_time_ms(rfc3339, &ms), 0);
    return ms;
}

/* Parses a ranking's values; on failure checks the code and field. */
static int parse(struct analytics_args a, enum analytics_kind kind, struct analytics_query *q,
                 enum err_code code, const char *field)
{
    struct api_error e = {0};
    int rc = analytics_parse(&a, kind, q, &e);
    if (code == ERR_NONE) {
        CU_ASSERT_EQUAL(rc, 0);
    } else {
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_EQUAL(e.code, code);
        CU_ASSERT_STRING_EQUAL(e.field, field);
        CU_ASSERT(e.message[0] != '\0');
    }
    return rc;
}

#define NOV "2026-11-01T00:00:00Z"
#define DEC "2026-12-01T00:00:00Z"

static void test_defaults_and_values(void)
{
    struct analytics_query q;
    parse((struct analytics_args){NOV, DEC, NULL, NULL, NULL}, ANALYTICS_RANKING, &q, ERR_NONE,
          NULL);
    CU_ASSERT_EQUAL(q.from_ms, at(NOV));
    CU_ASSERT_EQUAL(q.to_ms, at(DEC));
    CU_ASSERT_EQUAL(q.by, ANALYTICS_BY_REQUESTS);
    CU_ASSERT_EQUAL(q.limit, 10);
    CU_ASSERT_STRING_EQUAL(q.tier, "");

    parse((struct analytics_args){"2026-11-01T01:00:00+01:00", "2026-11-03T05:00:00.000Z",
                                  "billable", "1000", "pro_2-x"},
          ANALYTICS_RANKING, &q, ERR_NONE, NULL);
    CU_ASSERT_EQUAL(q.from_ms, at(NOV));
    CU_ASSERT_EQUAL(q.by, ANALYTICS_BY_BILLABLE);
    CU_ASSERT_EQUAL(q.limit, 1000);
    CU_ASSERT_STRING_EQUAL(q.tier, "pro_2-x");

    parse((struct analytics_args){NOV, DEC, "denials", "1", NULL}, ANALYTICS_RANKING, &q,
          ERR_NONE, NULL);
    CU_ASSERT_EQUAL(q.by, ANALYTICS_BY_DENIALS);
    CU_ASSERT_EQUAL(q.limit, 1);
    CU_ASSERT_STRING_EQUAL(analytics_rank_name(ANALYTICS_BY_DENIALS), "denials");
    CU_ASSERT_STRING_EQUAL(analytics_rank_name(ANALYTICS_BY_REQUESTS), "requests");
    CU_ASSERT_STRING_EQUAL(analytics_rank_name(ANALYTICS_BY_BILLABLE), "billable");

    /* 366 days exactly is allowed. */
    parse((struct analytics_args){"2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z", NULL, NULL,
                                  NULL},
          ANALYTICS_TIER_DAYS, &q, ERR_NONE, NULL);
}

static void test_errors_name_the_parameter(void)
{
    struct analytics_query q;
    const enum analytics_kind R = ANALYTICS_RANKING, D = ANALYTICS_TIER_DAYS;
    parse((struct analytics_args){NULL, DEC, NULL, NULL, NULL}, R, &q, ERR_MISSING_FIELD, "from");
    parse((struct analytics_args){NOV, NULL, NULL, NULL, NULL}, R, &q, ERR_MISSING_FIELD, "to");
    parse((struct analytics_args){"yesterday", DEC, NULL, NULL, NULL}, R, &q,
          ERR_INVALID_ARGUMENT, "from");
    parse((struct analytics_args){NOV, "2026-12-01", NULL, NULL, NULL}, R, &q,
          ERR_INVALID_ARGUMENT, "to");
    /* Whole hours for rankings, whole UTC days for the tiers. */
    parse((struct analytics_args){"2026-11-01T00:30:00Z", DEC, NULL, NULL, NULL}, R, &q,
          ERR_INVALID_ARGUMENT, "from");
    parse((struct analytics_args){NOV, "2026-11-30T23:59:59.999Z", NULL, NULL, NULL}, R, &q,
          ERR_INVALID_ARGUMENT, "to");
    parse((struct analytics_args){"2026-11-01T05:00:00Z", DEC, NULL, NULL, NULL}, D, &q,
          ERR_INVALID_ARGUMENT, "from");
    parse((struct analytics_args){NOV, "2026-11-30T01:00:00+01:00", NULL, NULL, NULL}, D, &q,
          ERR_NONE, NULL);
    parse((struct analytics_args){DEC, NOV, NULL, NULL, NULL}, R, &q, ERR_INVALID_ARGUMENT, "to");
    parse((struct analytics_args){NOV, NOV, NULL, NULL, NULL}, R, &q, ERR_INVALID_ARGUMENT, "to");
    parse((struct analytics_args){"2026-01-01T00:00:00Z", "2027-01-03T00:00:00Z", NULL, NULL,
                                  NULL},
          R, &q, ERR_INVALID_ARGUMENT, "to");
    static const char *const bad_by[] = {"", "Requests", "requests ", "cost", "billable_units"};
    for (size_t i = 0; i < TG_ARRAY_LEN(bad_by); i++)
        parse((struct analytics_args){NOV, DEC, bad_by[i], NULL, NULL}, R, &q,
              ERR_INVALID_ARGUMENT, "by");
    static const char *const bad_limit[] = {"", "0", "1001", "-1", "10x", " 10", "1e2",
                                            "99999999999999999999"};
    for (size_t i = 0; i < TG_ARRAY_LEN(bad_limit); i++)
        parse((struct analytics_args){NOV, DEC, NULL, bad_limit[i], NULL}, R, &q,
              ERR_INVALID_ARGUMENT, "limit");
    static const char *const bad_tier[] = {"", "Pro", "pro tier", "p\xc3\xa9",
                                           "abcdefghijklmnopqrstuvwxyz0123456"};
    for (size_t i = 0; i < TG_ARRAY_LEN(bad_tier); i++)
        parse((struct analytics_args){NOV, DEC, NULL, NULL, bad_tier[i]}, R, &q,
              ERR_INVALID_ARGUMENT, "tier");
}

static void test_months(void)
{
    CU_ASSERT_EQUAL(analytics_month_floor(at("2026-11-17T13:00:00Z")), at(NOV));
    CU_ASSERT_EQUAL(analytics_month_floor(at(NOV)), at(NOV));
    CU_ASSERT_EQUAL(analytics_month_next(at(NOV)), at(DEC));
    CU_ASSERT_EQUAL(analytics_month_next(at("2026-12-31T23:00:00Z")), at("2027-01-01T00:00:00Z"));
    CU_ASSERT_EQUAL(analytics_month_next(at("2028-02-28T00:00:00Z")), at("2028-03-01T00:00:00Z"));
    CU_ASSERT_EQUAL(analytics_month_floor(at("2028-02-29T12:00:00Z")), at("2028-02-01T00:00:00Z"));
    CU_ASSERT_EQUAL(analytics_month_floor(-3600000), -INT64_C(31) * 86400000); /* 1969-12 */
    CU_ASSERT_EQUAL(analytics_month_floor(0), 0);
    CU_ASSERT_EQUAL(analytics_month_next(-1), 0);
}

static void check_span(const char *from, const char *to, const char *days_lo,
                       const char *months_lo, const char *months_hi, const char *days_hi)
{
    struct analytics_span s;
    analytics_span_of(at(from), at(to), &s);
    CU_ASSERT_EQUAL(s.days_lo, at(days_lo));
    CU_ASSERT_EQUAL(s.months_lo, at(months_lo));
    CU_ASSERT_EQUAL(s.months_hi, at(months_hi));
    CU_ASSERT_EQUAL(s.days_hi, at(days_hi));
    /* The parts are in order and cover [from, to). */
    CU_ASSERT(at(from) <= s.days_lo && s.days_lo <= s.months_lo && s.months_lo <= s.months_hi &&
              s.months_hi <= s.days_hi && s.days_hi <= at(to));
}

static void test_span(void)
{
    /* A calendar month: one month part only. */
    check_span(NOV, DEC, NOV, NOV, DEC, DEC);
    /* Hours, days, a month, days, hours. */
    check_span("2026-10-30T22:00:00Z", "2026-12-02T03:00:00Z", "2026-10-31T00:00:00Z", NOV, DEC,
               "2026-12-02T00:00:00Z");
    /* Thirty days across two months: days only. */
    check_span("2026-11-05T00:00:00Z", "2026-12-05T00:00:00Z", "2026-11-05T00:00:00Z",
               "2026-12-05T00:00:00Z", "2026-12-05T00:00:00Z", "2026-12-05T00:00:00Z");
    /* Within a day: hours only. */
    check_span("2026-11-05T03:00:00Z", "2026-11-05T09:00:00Z", "2026-11-05T09:00:00Z",
               "2026-11-05T09:00:00Z", "2026-11-05T09:00:00Z", "2026-11-05T09:00:00Z");
    /* Across midnight, no whole day: hours only. */
    check_span("2026-11-05T20:00:00Z", "2026-11-06T04:00:00Z", "2026-11-06T04:00:00Z",
               "2026-11-06T04:00:00Z", "2026-11-06T04:00:00Z", "2026-11-06T04:00:00Z");
    /* One whole day in the middle. */
    check_span("2026-11-05T20:00:00Z", "2026-11-07T04:00:00Z", "2026-11-06T00:00:00Z",
               "2026-11-07T00:00:00Z", "2026-11-07T00:00:00Z", "2026-11-07T00:00:00Z");
    /* Two whole months and a year boundary. */
    check_span(NOV, "2027-01-01T00:00:00Z", NOV, NOV, "2027-01-01T00:00:00Z",
               "2027-01-01T00:00:00Z");
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_defaults_and_values),
        UNIT_TEST(test_errors_name_the_parameter),
        UNIT_TEST(test_months),
        UNIT_TEST(test_span),
    };
    return unit_run("analytics", tests, sizeof tests / sizeof tests[0]);
}
