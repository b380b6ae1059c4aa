/* Tests for src/core/timeutil.c: RFC 3339 in and out, and the civil calendar
 * conversions every expiry and tier window is computed with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "loyal/error.h"
#include "loyal/timeutil.h"

static void test_civil_round_trip(void **state)
{
    (void)state;
    static const struct {
        int64_t y;
        unsigned m, d;
        int64_t days;
    } cases[] = {
        {1970, 1, 1, 0},      {1970, 1, 2, 1},       {1969, 12, 31, -1},      {1969, 1, 1, -365},
        {1971, 1, 1, 365},    {1972, 2, 29, 789},    {1972, 3, 1, 790},       {2000, 1, 1, 10957},
        {2000, 2, 28, 11015}, {2000, 2, 29, 11016},  {2000, 3, 1, 11017},     {2000, 12, 31, 11322},
        {1900, 3, 1, -25508}, {1900, 2, 28, -25509}, {2024, 2, 29, 19782},    {2026, 11, 22, 20779},
        {1, 1, 1, -719162},   {0, 3, 1, -719468},    {9999, 12, 31, 2932896}, {-1, 12, 31, -719529},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t days = ly_days_from_civil(cases[i].y, cases[i].m, cases[i].d);
        if (days != cases[i].days)
            fail_msg("%lld-%u-%u: %lld days, want %lld", (long long)cases[i].y, cases[i].m,
                     cases[i].d, (long long)days, (long long)cases[i].days);
        int64_t y;
        unsigned m, d;
        ly_civil_from_days(cases[i].days, &y, &m, &d);
        if (y != cases[i].y || m != cases[i].m || d != cases[i].d)
            fail_msg("day %lld: %lld-%u-%u", (long long)cases[i].days, (long long)y, m, d);
    }
}

/* Every day across four centuries maps back to itself and follows its
 * predecessor, which catches any off-by-one at month or year ends. */
static void test_civil_consecutive(void **state)
{
    (void)state;
    int64_t start = ly_days_from_civil(1899, 12, 31), end = ly_days_from_civil(2401, 1, 1);
    int64_t py;
    unsigned pm, pd;
    ly_civil_from_days(start, &py, &pm, &pd);
    for (int64_t z = start + 1; z <= end; z++) {
        int64_t y;
        unsigned m, d;
        ly_civil_from_days(z, &y, &m, &d);
        assert_int_equal(ly_days_from_civil(y, m, d), z);
        int next_ok = (y == py && m == pm && d == pd + 1) || (y == py && m == pm + 1 && d == 1) ||
                      (y == py + 1 && m == 1 && d == 1 && pm == 12 && pd == 31);
        if (!next_ok)
            fail_msg("%lld-%u-%u follows %lld-%u-%u", (long long)y, m, d, (long long)py, pm, pd);
        py = y;
        pm = m;
        pd = d;
    }
}

static void test_format(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {1, "1970-01-01T00:00:00.001Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {-86400000, "1969-12-31T00:00:00.000Z"},
        {-86400001, "1969-12-30T23:59:59.999Z"},
        {951782400000, "2000-02-29T00:00:00.000Z"},
        {1763806140123, "2025-11-22T10:09:00.123Z"},
        {1795342140123, "2026-11-22T10:09:00.123Z"},
        {253402300799999, "9999-12-31T23:59:59.999Z"},
        {-62135596800000, "0001-01-01T00:00:00.000Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[LY_TIME_BUFSZ];
        ly_time_format(cases[i].ms, buf);
        assert_string_equal(buf, cases[i].want);
        int64_t back = 0;
        assert_int_equal(ly_time_parse(buf, &back), 0);
        assert_int_equal(back, cases[i].ms);
    }
}

static void test_format_extremes_fit(void **state)
{
    (void)state;
    char buf[LY_TIME_BUFSZ];
    ly_time_format(INT64_MAX, buf);
    assert_true(strlen(buf) < LY_TIME_BUFSZ);
    ly_time_format(INT64_MIN, buf);
    assert_true(strlen(buf) < LY_TIME_BUFSZ);
}

static void test_parse_valid(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t ms;
    } cases[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"1970-01-01t00:00:00z", 0},
        {"1970-01-01T00:00:00.5Z", 500},
        {"1970-01-01T00:00:00.05Z", 50},
        {"1970-01-01T00:00:00.123Z", 123},
        {"1970-01-01T00:00:00.1239Z", 123},       /* truncated, not rounded */
        {"1970-01-01T00:00:00.999999999Z", 999},  /* nanoseconds */
        {"1970-01-01T00:00:00.000000000001Z", 0}, /* more digits than anyone needs */
        {"1970-01-01T01:00:00+01:00", 0},         /* Paris in winter */
        {"1969-12-31T19:00:00-05:00", 0},         /* New York */
        {"1970-01-01T05:30:00+05:30", 0},         /* India */
        {"1970-01-01T00:00:00+00:00", 0},
        {"1970-01-01T00:00:00-00:00", 0},
        {"1970-01-01T23:59:00+23:59", 0},
        {"1969-12-31T00:01:00-23:59", 0},
        {"2000-02-29T12:00:00Z", 951825600000},
        {"2024-02-29T00:00:00.001Z", 1709164800001},
        {"2026-11-22T10:09:00.123Z", 1795342140123},
        {"2026-11-22T05:09:00.123-05:00", 1795342140123},
        {"0001-01-01T00:00:00Z", -62135596800000},
        {"9999-12-31T23:59:59.999Z", 253402300799999},
        {"9999-12-31T23:59:59.999+01:00", 253402297199999},
        {"0001-01-01T00:00:00-01:00", -62135593200000},
        {"1900-02-28T23:59:59Z", -2203891201000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = -42;
        int rc = ly_time_parse(cases[i].in, &ms);
        if (rc != 0 || ms != cases[i].ms)
            fail_msg("%s: rc %d, %lld ms, want %lld", cases[i].in, rc, (long long)ms,
                     (long long)cases[i].ms);
    }
}

static void test_parse_invalid(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "",
        "2026",
        "2026-11-22",           /* a date is not a date-time */
        "2026-11-22T10:09:00",  /* no offset */
        "2026-11-22 10:09:00Z", /* space instead of T */
        "2026-11-22T10:09Z",    /* no seconds */
        "26-11-22T10:09:00Z",   /* two-digit year */
        "2026-1-22T10:09:00Z",  /* one-digit month */
        "2026-11-2T10:09:00Z",
        "2026-13-01T00:00:00Z", /* month 13 */
        "2026-00-01T00:00:00Z", /* month 0 */
        "2026-11-00T00:00:00Z", /* day 0 */
        "2026-11-31T00:00:00Z", /* November has 30 days */
        "2026-02-29T00:00:00Z", /* not a leap year */
        "1900-02-29T00:00:00Z", /* divisible by 100, not by 400 */
        "2100-02-29T00:00:00Z",
        "2026-11-22T24:00:00Z",      /* hour 24 */
        "2026-11-22T10:60:00Z",      /* minute 60 */
        "2026-12-31T23:59:60Z",      /* leap second */
        "0000-01-01T00:00:00Z",      /* year 0 */
        "9999-12-31T23:59:59-00:01", /* year 10000 in UTC */
        "0001-01-01T00:00:00+00:01", /* year 0 in UTC */
        "2026-11-22T10:09:00.Z",     /* dot without digits */
        "2026-11-22T10:09:00+0100",  /* offset without colon */
        "2026-11-22T10:09:00+01",    /* offset without minutes */
        "2026-11-22T10:09:00+24:00", /* offset hour 24 */
        "2026-11-22T10:09:00+01:60", /* offset minute 60 */
        "2026-11-22T10:09:00Z ",     /* trailing space */
        " 2026-11-22T10:09:00Z",     /* leading space */
        "2026-11-22T10:09:00ZZ",     /* trailing garbage */
        "2026-11-22T10:09:00.123Zx",
        "2026-11-22T10:09:00.12a3Z",
        "+2026-11-22T10:09:00Z",
        "2026/11/22T10:09:00Z",
        "2026-11-22T10-09-00Z",
        "2026-11-22T1a:09:00Z",
        "１２３４-11-22T10:09:00Z", /* full-width digits */
        "10000-01-01T00:00:00Z",
        "2026-11-22T10:09:00UTC",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = 0;
        if (ly_time_parse(cases[i], &ms) != LY_EINVAL)
            fail_msg("accepted \"%s\"", cases[i]);
    }
    int64_t ms;
    assert_int_equal(ly_time_parse(NULL, &ms), LY_EINVAL);
}

static void test_now(void **state)
{
    (void)state;
    int64_t a = ly_time_now_ms(), b = ly_time_now_ms();
    assert_true(a > 1700000000000LL); /* after November 2023 */
    assert_true(b >= a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_civil_round_trip),
        cmocka_unit_test(test_civil_consecutive),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_extremes_fit),
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
