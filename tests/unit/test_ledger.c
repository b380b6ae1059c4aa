/* Tests for src/core/ledger.c: checked arithmetic, earn rounding and its
 * limits, exact proration and piecewise reversal, the lot consumption plan,
 * and expiry dates across month ends, leap years and clock changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "loyal/error.h"
#include "loyal/ledger.h"
#include "loyal/timeutil.h"
#include "loyal/tz.h"

#define UNTOUCHED 0x5a5a5a5a5a5a5a5aLL
#define P53       ((int64_t)1 << 53)
#define DAY       86400000LL

static int64_t at(const char *rfc3339)
{
    int64_t ms;
    if (ly_time_parse(rfc3339, &ms) != 0)
        fail_msg("bad time in test table: %s", rfc3339);
    return ms;
}

static void test_checked_ops(void **state)
{
    (void)state;
    enum { ADD, SUB, MUL };
    static const struct {
        int op;
        int64_t a, b;
        int rc;
        int64_t want;
    } cases[] = {
        {ADD, 1, 2, 0, 3},
        {ADD, INT64_MAX, 0, 0, INT64_MAX},
        {ADD, INT64_MAX, 1, LY_EREFUSED, 0},
        {ADD, INT64_MAX, INT64_MAX, LY_EREFUSED, 0},
        {ADD, INT64_MIN, -1, LY_EREFUSED, 0},
        {ADD, INT64_MIN, INT64_MIN, LY_EREFUSED, 0},
        {ADD, INT64_MAX, INT64_MIN, 0, -1},
        {ADD, -5, 5, 0, 0},
        {SUB, 5, 7, 0, -2},
        {SUB, INT64_MIN, 1, LY_EREFUSED, 0},
        {SUB, 0, INT64_MIN, LY_EREFUSED, 0},
        {SUB, -1, INT64_MIN, 0, INT64_MAX},
        {SUB, INT64_MAX, -1, LY_EREFUSED, 0},
        {SUB, INT64_MAX, INT64_MAX, 0, 0},
        {MUL, 6, 7, 0, 42},
        {MUL, INT64_MAX, 1, 0, INT64_MAX},
        {MUL, INT64_MAX, 2, LY_EREFUSED, 0},
        {MUL, INT64_MIN, -1, LY_EREFUSED, 0},
        {MUL, -1, INT64_MIN, LY_EREFUSED, 0},
        {MUL, INT64_MIN, 1, 0, INT64_MIN},
        {MUL, (int64_t)1 << 31, (int64_t)1 << 32, LY_EREFUSED, 0},
        {MUL, (int64_t)1 << 31, (int64_t)1 << 31, 0, (int64_t)1 << 62},
        {MUL, -((int64_t)1 << 31), (int64_t)1 << 32, 0, INT64_MIN},
        {MUL, 3037000499, 3037000499, 0, 9223372030926249001},
        {MUL, 3037000500, 3037000500, LY_EREFUSED, 0},
        {MUL, -3037000500, 3037000500, LY_EREFUSED, 0},
        {MUL, 0, INT64_MIN, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t out = UNTOUCHED;
        int rc = cases[i].op == ADD   ? ly_add64(cases[i].a, cases[i].b, &out)
                 : cases[i].op == SUB ? ly_sub64(cases[i].a, cases[i].b, &out)
                                      : ly_mul64(cases[i].a, cases[i].b, &out);
        int64_t want = cases[i].rc == 0 ? cases[i].want : UNTOUCHED;
        if (rc != cases[i].rc || out != want)
            fail_msg("case %zu: rc %d out %lld, want rc %d out %lld", i, rc, (long long)out,
                     cases[i].rc, (long long)want);
    }
}

static void test_rounding_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int rc;
        enum ly_rounding want;
    } cases[] = {
        {"down", 0, LY_ROUND_DOWN}, {"nearest", 0, LY_ROUND_NEAREST},
        {"up", 0, LY_ROUND_UP},     {"Down", LY_EINVAL, 0},
        {"UP", LY_EINVAL, 0},       {"", LY_EINVAL, 0},
        {"near", LY_EINVAL, 0},     {"up ", LY_EINVAL, 0},
        {"half_up", LY_EINVAL, 0},  {"floor", LY_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum ly_rounding r = (enum ly_rounding)99;
        int rc = ly_rounding_parse(cases[i].s, &r);
        if (rc != cases[i].rc || (rc == 0 && r != cases[i].want))
            fail_msg("\"%s\": rc %d mode %d", cases[i].s, rc, (int)r);
        if (rc == 0)
            assert_string_equal(ly_rounding_name(r), cases[i].s);
    }
    enum ly_rounding r;
    assert_int_equal(ly_rounding_parse(NULL, &r), LY_EINVAL);
    assert_null(ly_rounding_name((enum ly_rounding)3));
    assert_null(ly_rounding_name((enum ly_rounding) - 1));
}

static void test_earn_points(void **state)
{
    (void)state;
    enum { D = LY_ROUND_DOWN, N = LY_ROUND_NEAREST, U = LY_ROUND_UP };
    static const struct {
        int64_t amount, points, per_minor;
        int mode, rc;
        int64_t want;
    } cases[] = {
        /* 1 point per dollar (100 cents). */
        {1250, 1, 100, D, 0, 12},
        {1250, 1, 100, N, 0, 13}, /* 12.5: half away from zero */
        {1250, 1, 100, U, 0, 13},
        {1249, 1, 100, D, 0, 12},
        {1249, 1, 100, N, 0, 12},
        {1249, 1, 100, U, 0, 13},
        {1251, 1, 100, D, 0, 12},
        {1251, 1, 100, N, 0, 13},
        {1251, 1, 100, U, 0, 13},
        {1200, 1, 100, D, 0, 12},
        {1200, 1, 100, N, 0, 12},
        {1200, 1, 100, U, 0, 12},
        {99, 1, 100, D, 0, 0},
        {99, 1, 100, N, 0, 1},
        {99, 1, 100, U, 0, 1},
        {50, 1, 100, N, 0, 1},
        {49, 1, 100, N, 0, 0},
        {1, 1, 100, U, 0, 1},
        {0, 1, 100, U, 0, 0},
        {0, 1, 100, N, 0, 0},
        {1250, 0, 100, U, 0, 0},
        /* 1.5, 6.67, 0.33 */
        {1, 3, 2, D, 0, 1},
        {1, 3, 2, N, 0, 2},
        {1, 3, 2, U, 0, 2},
        {10, 2, 3, D, 0, 6},
        {10, 2, 3, N, 0, 7},
        {10, 2, 3, U, 0, 7},
        {1, 1, 3, N, 0, 0},
        {1, 1, 3, U, 0, 1},
        /* 5 points per cent. */
        {1999, 5, 1, D, 0, 9995},
        {1000000000000000, 3, 7, D, 0, 428571428571428},
        {1000000000000000, 3, 7, N, 0, 428571428571429},
        {1000000000000000, 3, 7, U, 0, 428571428571429},
        /* The 2^53 limit: reached exactly is fine, one more is refused. */
        {P53, 1, 1, D, 0, P53},
        {P53 + 1, 1, 1, D, LY_EREFUSED, 0},
        {P53 + 1, 1, 2, D, 0, P53 / 2},
        {P53 + 1, 1, 2, U, 0, P53 / 2 + 1},
        {P53 - 1, 2, 2, N, 0, P53 - 1},
        {P53 + 1, 1, 1, U, LY_EREFUSED, 0},
        /* Rounding up across the limit: 2^53 - 1/1024 rounds to 2^53. */
        {INT64_MAX, 1, 1024, D, 0, P53 - 1},
        {INT64_MAX, 1, 1024, N, 0, P53},
        {INT64_MAX, 1, 1024, U, 0, P53},
        {INT64_MAX, 2, 1024, D, LY_EREFUSED, 0},
        {INT64_MAX, 1, 1023, D, LY_EREFUSED, 0},
        /* Beyond int64 in the intermediate, exact in 128 bits. */
        {(int64_t)1 << 62, (int64_t)1 << 40, (int64_t)1 << 62, D, 0, (int64_t)1 << 40},
        {INT64_MAX, INT64_MAX, INT64_MAX, D, LY_EREFUSED, 0},
        {INT64_MAX, INT64_MAX, 1, U, LY_EREFUSED, 0},
        {INT64_MAX, 3, INT64_MAX, U, 0, 3},
        {INT64_MAX - 1, 3, INT64_MAX, D, 0, 2},
        {INT64_MAX - 1, 3, INT64_MAX, N, 0, 3},
        /* Refused inputs. */
        {-1, 1, 100, D, LY_EINVAL, 0},
        {-1250, 1, 100, N, LY_EINVAL, 0},
        {INT64_MIN, 1, 100, U, LY_EINVAL, 0},
        {1250, -1, 100, D, LY_EINVAL, 0},
        {1250, 1, 0, D, LY_EINVAL, 0},
        {1250, 1, -100, N, LY_EINVAL, 0},
        {1250, 1, 100, 3, LY_EINVAL, 0},
        {1250, 1, 100, -1, LY_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t out = UNTOUCHED;
        int rc = ly_earn_points(cases[i].amount, cases[i].points, cases[i].per_minor,
                                (enum ly_rounding)cases[i].mode, &out);
        int64_t want = cases[i].rc == 0 ? cases[i].want : UNTOUCHED;
        if (rc != cases[i].rc || out != want)
            fail_msg("case %zu (%lld * %lld / %lld, mode %d): rc %d out %lld, want rc %d out %lld",
                     i, (long long)cases[i].amount, (long long)cases[i].points,
                     (long long)cases[i].per_minor, cases[i].mode, rc, (long long)out, cases[i].rc,
                     (long long)want);
    }
}

/* Each mode against its definition, over every small input. */
static void test_earn_points_exhaustive(void **state)
{
    (void)state;
    for (int64_t per = 1; per <= 40; per++)
        for (int64_t pts = 0; pts <= 12; pts++)
            for (int64_t amount = 0; amount <= 300; amount++) {
                int64_t down, near, up, p = amount * pts;
                assert_int_equal(ly_earn_points(amount, pts, per, LY_ROUND_DOWN, &down), 0);
                assert_int_equal(ly_earn_points(amount, pts, per, LY_ROUND_NEAREST, &near), 0);
                assert_int_equal(ly_earn_points(amount, pts, per, LY_ROUND_UP, &up), 0);
                assert_true(down * per <= p && p < (down + 1) * per);
                assert_true(up * per >= p && (up - 1) * per < p);
                /* nearest: |near - p/per| <= 1/2, ties upwards */
                assert_true(2 * (near * per - p) <= per && 2 * (p - near * per) < per);
            }
}

static void test_prorate(void **state)
{
    (void)state;
    static const struct {
        int64_t total, part, whole;
        int rc;
        int64_t want;
    } cases[] = {
        {100, 1, 3, 0, 33},
        {100, 2, 3, 0, 66},
        {100, 3, 3, 0, 100},
        {12, 400, 1250, 0, 3},
        {12, 1250, 1250, 0, 12},
        {0, 5, 10, 0, 0},
        {7, 0, 10, 0, 0},
        {7, 0, 1, 0, 0},
        {INT64_MAX, INT64_MAX, INT64_MAX, 0, INT64_MAX},
        {INT64_MAX, INT64_MAX - 1, INT64_MAX, 0, INT64_MAX - 1},
        {INT64_MAX, 1, 2, 0, 4611686018427387903},
        {INT64_MAX, 1, INT64_MAX, 0, 1},
        {INT64_MAX - 1, 1, INT64_MAX, 0, 0},
        {P53, 3, 7, 0, 3860228252031853},
        {1, 0, 0, LY_EINVAL, 0},
        {1, 1, -1, LY_EINVAL, 0},
        {-1, 1, 2, LY_EINVAL, 0},
        {10, -1, 2, LY_EINVAL, 0},
        {10, 3, 2, LY_EINVAL, 0},
        {10, INT64_MAX, INT64_MAX - 1, LY_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t out = UNTOUCHED;
        int rc = ly_prorate(cases[i].total, cases[i].part, cases[i].whole, &out);
        int64_t want = cases[i].rc == 0 ? cases[i].want : UNTOUCHED;
        if (rc != cases[i].rc || out != want)
            fail_msg("case %zu: rc %d out %lld, want rc %d out %lld", i, rc, (long long)out,
                     cases[i].rc, (long long)want);
    }
    /* Floor, exactly, for every part of small wholes and a few large totals. */
    static const int64_t totals[] = {0, 1, 7, 12, 999, P53, INT64_MAX / 3, INT64_MAX};
    for (size_t t = 0; t < sizeof totals / sizeof totals[0]; t++)
        for (int64_t whole = 1; whole <= 60; whole++)
            for (int64_t part = 0; part <= whole; part++) {
                int64_t out;
                assert_int_equal(ly_prorate(totals[t], part, whole, &out), 0);
                __int128 p = (__int128)totals[t] * part;
                assert_true((__int128)out * whole <= p && p < ((__int128)out + 1) * whole);
            }
}

/* Returning a purchase in pieces reverses exactly what it earned, never
 * more at any step, whatever the pieces. */
static void test_cumulative_reversal(void **state)
{
    (void)state;
    static const struct {
        int64_t earned, amount;
        size_t npieces;
        int64_t pieces[7];
    } cases[] = {
        {12, 1250, 1, {1250}},
        {12, 1250, 3, {400, 425, 425}},
        {12, 1250, 3, {1, 1, 1248}},
        {12, 1250, 7, {178, 179, 178, 179, 178, 179, 179}},
        {12, 1250, 7, {1, 2, 3, 4, 5, 6, 1229}},
        {7, 3, 3, {1, 1, 1}},
        {1, 1000, 7, {100, 100, 100, 100, 100, 100, 400}},
        {999, 7, 7, {1, 1, 1, 1, 1, 1, 1}},
        {0, 500, 3, {100, 200, 200}},
        {P53, 1000000000007, 3, {333333333335, 333333333336, 333333333336}},
        {P53,
         1000000000007,
         7,
         {142857142858, 142857142858, 142857142858, 142857142858, 142857142858, 142857142858,
          142857142859}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t returned = 0, reversed = 0, naive = 0;
        for (size_t k = 0; k < cases[i].npieces; k++) {
            int64_t cum, piece_alone;
            returned += cases[i].pieces[k];
            assert_int_equal(ly_prorate(cases[i].earned, returned, cases[i].amount, &cum), 0);
            int64_t now = cum - reversed;
            assert_true(now >= 0);
            reversed += now;
            assert_true(reversed <= cases[i].earned);
            assert_int_equal(
                ly_prorate(cases[i].earned, cases[i].pieces[k], cases[i].amount, &piece_alone), 0);
            naive += piece_alone;
        }
        assert_int_equal(returned, cases[i].amount);
        if (reversed != cases[i].earned)
            fail_msg("case %zu: reversed %lld of %lld", i, (long long)reversed,
                     (long long)cases[i].earned);
        assert_true(naive <= reversed);
    }
    /* Why the idiom: flooring each third alone leaves points behind. */
    int64_t third, whole;
    assert_int_equal(ly_prorate(100, 1, 3, &third), 0);
    assert_int_equal(ly_prorate(100, 3, 3, &whole), 0);
    assert_int_equal(3 * third, 99);
    assert_int_equal(whole, 100);
}

static void test_lots_plan(void **state)
{
    (void)state;
    const int64_t now = 1000;
    static const ly_lot_state lots[] = {
        {100, 0, 2000},  /* 0: available, expires later */
        {50, 0, 0},      /* 1: available, never expires */
        {30, 1500, 0},   /* 2: pending */
        {40, 0, 1000},   /* 3: expires exactly now: expired */
        {20, 0, 500},    /* 4: expired */
        {60, 1000, 0},   /* 5: available from exactly now */
        {0, 0, 0},       /* 6: empty */
        {70, 1500, 900}, /* 7: would have become available after expiring */
        {25, 999, 1001}, /* 8: available for two milliseconds */
    };
    const size_t n = sizeof lots / sizeof lots[0];
    static const struct {
        int64_t want, got, take[9];
    } cases[] = {
        {0, 0, {0}},
        {1, 1, {1}},
        {80, 80, {80}},
        {100, 100, {100}},
        {120, 120, {100, 20}},
        {150, 150, {100, 50}},
        {151, 151, {100, 50, 0, 0, 0, 1}},
        {210, 210, {100, 50, 0, 0, 0, 60}},
        {235, 235, {100, 50, 0, 0, 0, 60, 0, 0, 25}},
        {236, 235, {100, 50, 0, 0, 0, 60, 0, 0, 25}},
        {1000000, 235, {100, 50, 0, 0, 0, 60, 0, 0, 25}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t take[9], got = -1;
        for (size_t j = 0; j < n; j++)
            take[j] = UNTOUCHED;
        assert_int_equal(ly_lots_plan(lots, n, now, cases[i].want, take, &got), 0);
        if (got != cases[i].got)
            fail_msg("want %lld: got %lld", (long long)cases[i].want, (long long)got);
        for (size_t j = 0; j < n; j++)
            if (take[j] != cases[i].take[j])
                fail_msg("want %lld: lot %zu gave %lld, expected %lld", (long long)cases[i].want, j,
                         (long long)take[j], (long long)cases[i].take[j]);
    }
    assert_int_equal(ly_lots_available(lots, n, now), 235);
    assert_int_equal(ly_lots_pending(lots, n, now), 30);
    /* Later: lot 0 has expired, lot 2 has become available, lot 8 is gone. */
    assert_int_equal(ly_lots_available(lots, n, 2000), 50 + 30 + 60);
    assert_int_equal(ly_lots_pending(lots, n, 2000), 0);
    /* Earlier: lots 5 and 8 were still pending, lots 3 and 4 were live. */
    assert_int_equal(ly_lots_available(lots, n, 0), 100 + 50 + 40 + 20);
    assert_int_equal(ly_lots_pending(lots, n, 0), 30 + 60 + 70 + 25);
}

/* The plan follows the order it is given, whatever the lots' dates. */
static void test_lots_order_kept(void **state)
{
    (void)state;
    static const ly_lot_state a[] = {{10, 0, 0}, {10, 0, 500}, {10, 0, 300}};
    static const ly_lot_state b[] = {{10, 0, 300}, {10, 0, 500}, {10, 0, 0}};
    int64_t take[3], got;
    assert_int_equal(ly_lots_plan(a, 3, 100, 15, take, &got), 0);
    assert_int_equal(got, 15);
    assert_int_equal(take[0], 10);
    assert_int_equal(take[1], 5);
    assert_int_equal(take[2], 0);
    assert_int_equal(ly_lots_plan(b, 3, 100, 25, take, &got), 0);
    assert_int_equal(got, 25);
    assert_int_equal(take[0], 10);
    assert_int_equal(take[1], 10);
    assert_int_equal(take[2], 5);
}

static void test_lots_refused(void **state)
{
    (void)state;
    static const ly_lot_state ok[] = {{10, 0, 0}, {10, 0, 0}};
    static const ly_lot_state negative[] = {{10, 0, 0}, {-5, 0, 0}};
    int64_t take[2] = {UNTOUCHED, UNTOUCHED}, got = UNTOUCHED;
    assert_int_equal(ly_lots_plan(ok, 2, 0, -1, take, &got), LY_EINVAL);
    assert_int_equal(ly_lots_plan(negative, 2, 0, 5, take, &got), LY_EINVAL);
    assert_int_equal(ly_lots_plan(NULL, 2, 0, 5, take, &got), LY_EINVAL);
    assert_int_equal(ly_lots_plan(ok, 2, 0, 5, NULL, &got), LY_EINVAL);
    assert_int_equal(ly_lots_plan(ok, 2, 0, 5, take, NULL), LY_EINVAL);
    /* A refused call writes nothing. */
    assert_int_equal(take[0], UNTOUCHED);
    assert_int_equal(take[1], UNTOUCHED);
    assert_int_equal(got, UNTOUCHED);
    /* No lots: nothing to take, not an error. */
    assert_int_equal(ly_lots_plan(NULL, 0, 0, 5, NULL, &got), 0);
    assert_int_equal(got, 0);
    assert_int_equal(ly_lots_available(NULL, 0, 0), 0);
    assert_int_equal(ly_lots_pending(NULL, 0, 0), 0);
    /* Negative remainders count as empty; sums saturate. */
    assert_int_equal(ly_lots_available(negative, 2, 0), 10);
    static const ly_lot_state huge[] = {{INT64_MAX, 0, 0}, {INT64_MAX, 0, 0}, {INT64_MAX, 9, 0}};
    assert_int_equal(ly_lots_available(huge, 3, 0), INT64_MAX);
    assert_int_equal(ly_lots_pending(huge, 3, 0), INT64_MAX);
    int64_t take3[3];
    assert_int_equal(ly_lots_plan(huge, 3, 0, INT64_MAX, take3, &got), 0);
    assert_int_equal(got, INT64_MAX);
    assert_int_equal(take3[0], INT64_MAX);
    assert_int_equal(take3[1], 0);
    assert_int_equal(take3[2], 0);
}

static int has_zone(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
    return strcmp(name, "UTC") == 0 || access(path, R_OK) == 0;
}

static void test_expiry_at(void **state)
{
    (void)state;
    enum {
        NONE = LY_EXPIRY_NONE,
        DAYS = LY_EXPIRY_ROLLING_DAYS,
        MONTHS = LY_EXPIRY_ROLLING_MONTHS,
        FIXED = LY_EXPIRY_FIXED_DATE,
        EOM = LY_EXPIRY_END_OF_MONTH,
        INACT = LY_EXPIRY_INACTIVITY,
    };
    static const char NY[] = "America/New_York";
    static const struct {
        int kind, n, month, day;
        const char *zone, *earned, *expires; /* expires NULL: never */
    } cases[] = {
        {NONE, 0, 0, 0, "UTC", "2026-01-15T10:00:00Z", NULL},
        {INACT, 180, 0, 0, "UTC", "2026-01-15T10:00:00Z", NULL},
        /* Rolling days: exact multiples of 24 hours, even across a clock change. */
        {DAYS, 365, 0, 0, "UTC", "2026-01-15T10:00:00Z", "2027-01-15T10:00:00Z"},
        {DAYS, 365, 0, 0, "UTC", "2024-01-15T10:00:00Z", "2025-01-14T10:00:00Z"},
        {DAYS, 1, 0, 0, "UTC", "2026-12-31T23:59:59.999Z", "2027-01-01T23:59:59.999Z"},
        {DAYS, 30, 0, 0, NY, "2026-03-01T17:00:00Z", "2026-03-31T17:00:00Z"},
        /* Rolling months: month ends clamp. */
        {MONTHS, 1, 0, 0, "UTC", "2024-01-31T10:00:00Z", "2024-02-29T10:00:00Z"},
        {MONTHS, 1, 0, 0, "UTC", "2025-01-31T10:00:00Z", "2025-02-28T10:00:00Z"},
        {MONTHS, 1, 0, 0, "UTC", "2026-03-31T23:59:59.999Z", "2026-04-30T23:59:59.999Z"},
        {MONTHS, 1, 0, 0, "UTC", "2026-01-30T00:00:00Z", "2026-02-28T00:00:00Z"},
        {MONTHS, 1, 0, 0, "UTC", "2026-02-28T08:00:00Z", "2026-03-28T08:00:00Z"},
        {MONTHS, 2, 0, 0, "UTC", "2025-12-31T08:00:00Z", "2026-02-28T08:00:00Z"},
        {MONTHS, 1, 0, 0, "UTC", "2026-12-15T08:00:00Z", "2027-01-15T08:00:00Z"},
        {MONTHS, 13, 0, 0, "UTC", "2026-12-31T08:00:00Z", "2028-01-31T08:00:00Z"},
        /* Leap years: 29 Feb + 12 months is 28 Feb; + 48 months is 29 Feb again. */
        {MONTHS, 12, 0, 0, "UTC", "2024-02-29T12:00:00Z", "2025-02-28T12:00:00Z"},
        {MONTHS, 48, 0, 0, "UTC", "2024-02-29T12:00:00Z", "2028-02-29T12:00:00Z"},
        {MONTHS, 12, 0, 0, "UTC", "2023-03-01T00:00:00Z", "2024-03-01T00:00:00Z"},
        {MONTHS, 1200, 0, 0, "UTC", "2000-02-29T00:00:00Z", "2100-02-28T00:00:00Z"},
        /* Local wall-clock time kept across daylight saving changes. */
        {MONTHS, 6, 0, 0, NY, "2026-01-15T17:00:00Z", "2026-07-15T16:00:00Z"},
        {MONTHS, 6, 0, 0, NY, "2026-07-15T16:00:00Z", "2027-01-15T17:00:00Z"},
        {MONTHS, 12, 0, 0, NY, "2026-01-31T04:59:59Z", "2027-01-31T04:59:59Z"},
        /* Landing in the spring gap: 02:30 EST is read as 03:30 EDT. */
        {MONTHS, 1, 0, 0, NY, "2026-02-08T07:30:00Z", "2026-03-08T07:30:00Z"},
        /* Landing in the autumn overlap: the earlier 01:30. */
        {MONTHS, 1, 0, 0, NY, "2026-10-01T05:30:00Z", "2026-11-01T05:30:00Z"},
        /* Earned during the overlap's second 01:30. */
        {MONTHS, 1, 0, 0, NY, "2026-11-01T06:30:00Z", "2026-12-01T06:30:00Z"},
        /* Lord Howe Island's half-hour change inside the period. */
        {MONTHS, 1, 0, 0, "Australia/Lord_Howe", "2026-09-04T01:30:00Z", "2026-10-04T01:00:00Z"},
        /* Fixed date, 31 Dec: the end of that local day. */
        {FIXED, 0, 12, 31, NY, "2026-06-15T16:00:00Z", "2027-01-01T05:00:00Z"},
        {FIXED, 0, 12, 31, NY, "2026-12-31T15:00:00Z", "2027-01-01T05:00:00Z"},
        {FIXED, 0, 12, 31, NY, "2027-01-01T05:00:00Z", "2028-01-01T05:00:00Z"},
        /* Already 1 January in UTC, still 31 December in New York. */
        {FIXED, 0, 12, 31, NY, "2027-01-01T04:59:59Z", "2027-01-01T05:00:00Z"},
        {FIXED, 0, 12, 31, "UTC", "2026-12-31T10:00:00Z", "2027-01-01T00:00:00Z"},
        {FIXED, 0, 12, 31, "UTC", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"},
        /* Fixed date, 30 Jun: before, on, after. */
        {FIXED, 0, 6, 30, "UTC", "2026-03-01T00:00:00Z", "2026-07-01T00:00:00Z"},
        {FIXED, 0, 6, 30, "UTC", "2026-06-30T00:00:00Z", "2026-07-01T00:00:00Z"},
        {FIXED, 0, 6, 30, "UTC", "2026-06-30T23:59:59.999Z", "2026-07-01T00:00:00Z"},
        {FIXED, 0, 6, 30, "UTC", "2026-07-01T00:00:00Z", "2027-07-01T00:00:00Z"},
        {FIXED, 0, 6, 30, NY, "2026-06-30T12:00:00Z", "2026-07-01T04:00:00Z"},
        /* 29 February means the last day of February. */
        {FIXED, 0, 2, 29, "UTC", "2024-01-10T00:00:00Z", "2024-03-01T00:00:00Z"},
        {FIXED, 0, 2, 29, "UTC", "2025-01-10T00:00:00Z", "2025-03-01T00:00:00Z"},
        {FIXED, 0, 2, 29, "UTC", "2025-02-28T12:00:00Z", "2025-03-01T00:00:00Z"},
        {FIXED, 0, 2, 29, "UTC", "2025-03-01T00:00:00Z", "2026-03-01T00:00:00Z"},
        {FIXED, 0, 2, 29, "UTC", "2027-03-01T00:00:00Z", "2028-03-01T00:00:00Z"},
        /* Midnight that does not exist (Havana springs forward at 00:00):
         * read with the offset from before the gap, i.e. 01:00 CDT. */
        {FIXED, 0, 3, 7, "America/Havana", "2026-02-01T12:00:00Z", "2026-03-08T05:00:00Z"},
        /* End of month, n months on. */
        {EOM, 0, 0, 0, NY, "2026-01-15T17:00:00Z", "2026-02-01T05:00:00Z"},
        {EOM, 0, 0, 0, NY, "2026-07-10T16:00:00Z", "2026-08-01T04:00:00Z"},
        {EOM, 0, 0, 0, NY, "2027-01-01T04:00:00Z", "2027-01-01T05:00:00Z"},
        {EOM, 0, 0, 0, "UTC", "2024-02-10T00:00:00Z", "2024-03-01T00:00:00Z"},
        {EOM, 1, 0, 0, NY, "2026-01-31T17:00:00Z", "2026-03-01T05:00:00Z"},
        {EOM, 1, 0, 0, NY, "2026-12-05T17:00:00Z", "2027-02-01T05:00:00Z"},
        {EOM, 2, 0, 0, NY, "2026-01-10T17:00:00Z", "2026-04-01T04:00:00Z"},
        {EOM, 11, 0, 0, NY, "2026-01-10T17:00:00Z", "2027-01-01T05:00:00Z"},
        {EOM, 11, 0, 0, NY, "2026-02-10T17:00:00Z", "2027-02-01T05:00:00Z"},
        {EOM, 12, 0, 0, NY, "2026-01-10T17:00:00Z", "2027-02-01T05:00:00Z"},
        {EOM, 12, 0, 0, NY, "2026-12-05T17:00:00Z", "2028-01-01T05:00:00Z"},
        {EOM, 12, 0, 0, "UTC", "2026-12-31T23:59:59.999Z", "2028-01-01T00:00:00Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (!has_zone(cases[i].zone)) {
            print_message("skipping a case in %s: not installed\n", cases[i].zone);
            continue;
        }
        const ly_tz *z;
        assert_int_equal(ly_tz_get(cases[i].zone, &z), 0);
        ly_expiry p = {.kind = (enum ly_expiry_kind)cases[i].kind,
                       .n = cases[i].n,
                       .month = cases[i].month,
                       .day = cases[i].day};
        int64_t got = ly_expiry_at(&p, z, at(cases[i].earned));
        int64_t want = cases[i].expires ? at(cases[i].expires) : 0;
        if (got != want) {
            char buf[LY_TIME_BUFSZ] = "never";
            if (got)
                ly_time_format(got, buf);
            fail_msg("case %zu (kind %d n %d %d/%d, %s, earned %s): %s, want %s", i, cases[i].kind,
                     cases[i].n, cases[i].month, cases[i].day, cases[i].zone, cases[i].earned, buf,
                     cases[i].expires ? cases[i].expires : "never");
        }
    }
    /* No zone means UTC. */
    ly_expiry p = {.kind = LY_EXPIRY_END_OF_MONTH, .n = 0};
    assert_int_equal(ly_expiry_at(&p, NULL, at("2026-01-15T17:00:00Z")),
                     at("2026-02-01T00:00:00Z"));
    /* Beyond year 9999 is the last instant that can be written. */
    ly_expiry year = {.kind = LY_EXPIRY_ROLLING_DAYS, .n = 365};
    assert_int_equal(ly_expiry_at(&year, NULL, at("9999-06-01T00:00:00Z")), LY_TIME_MAX);
    assert_int_equal(ly_expiry_at(&year, NULL, at("9998-06-01T00:00:00Z")),
                     at("9999-06-01T00:00:00Z"));
    ly_expiry fixed = {.kind = LY_EXPIRY_FIXED_DATE, .month = 1, .day = 31};
    assert_int_equal(ly_expiry_at(&fixed, NULL, at("9999-12-31T12:00:00Z")), LY_TIME_MAX);
}

/* Every day of 2024-2027 earned at noon: rolling months lands on the same
 * time of day, on the same day or the month's last, and never moves the lot
 * backwards. */
static void test_rolling_months_sweep(void **state)
{
    (void)state;
    const ly_tz *z;
    assert_int_equal(ly_tz_get("UTC", &z), 0);
    for (int n = 1; n <= 25; n += 3) {
        ly_expiry p = {.kind = LY_EXPIRY_ROLLING_MONTHS, .n = n};
        for (int64_t t = at("2024-01-01T12:00:00Z"); t < at("2028-01-01T00:00:00Z"); t += DAY) {
            ly_civil a, b;
            int64_t e = ly_expiry_at(&p, z, t);
            assert_true(e > t);
            ly_tz_local_civil(z, t, &a);
            ly_tz_local_civil(z, e, &b);
            assert_int_equal(b.hour, 12);
            assert_int_equal((b.year * 12 + b.month) - (a.year * 12 + a.month), n);
            if (b.day != a.day) {
                assert_true(b.day < a.day);
                ly_civil next;
                ly_tz_local_civil(z, e + DAY, &next);
                assert_int_equal(next.day, 1);
            }
        }
    }
}

static void test_expiry_check(void **state)
{
    (void)state;
    static const struct {
        ly_expiry p;
        int rc;
    } cases[] = {
        {{LY_EXPIRY_NONE, 0, 0, 0}, 0},
        {{LY_EXPIRY_ROLLING_DAYS, 1, 0, 0}, 0},
        {{LY_EXPIRY_ROLLING_DAYS, 365, 0, 0}, 0},
        {{LY_EXPIRY_ROLLING_DAYS, LY_EXPIRY_MAX_DAYS, 0, 0}, 0},
        {{LY_EXPIRY_ROLLING_DAYS, LY_EXPIRY_MAX_DAYS + 1, 0, 0}, LY_EINVAL},
        {{LY_EXPIRY_ROLLING_DAYS, 0, 0, 0}, LY_EINVAL},
        {{LY_EXPIRY_ROLLING_DAYS, -1, 0, 0}, LY_EINVAL},
        {{LY_EXPIRY_ROLLING_MONTHS, 12, 0, 0}, 0},
        {{LY_EXPIRY_ROLLING_MONTHS, 0, 0, 0}, LY_EINVAL},
        {{LY_EXPIRY_ROLLING_MONTHS, LY_EXPIRY_MAX_MONTHS + 1, 0, 0}, LY_EINVAL},
        {{LY_EXPIRY_END_OF_MONTH, 0, 0, 0}, 0},
        {{LY_EXPIRY_END_OF_MONTH, LY_EXPIRY_MAX_MONTHS, 0, 0}, 0},
        {{LY_EXPIRY_END_OF_MONTH, -1, 0, 0}, LY_EINVAL},
        {{LY_EXPIRY_INACTIVITY, 180, 0, 0}, 0},
        {{LY_EXPIRY_INACTIVITY, 0, 0, 0}, LY_EINVAL},
        {{LY_EXPIRY_FIXED_DATE, 0, 12, 31}, 0},
        {{LY_EXPIRY_FIXED_DATE, 0, 1, 1}, 0},
        {{LY_EXPIRY_FIXED_DATE, 0, 2, 29}, 0},
        {{LY_EXPIRY_FIXED_DATE, 0, 2, 30}, LY_EINVAL},
        {{LY_EXPIRY_FIXED_DATE, 0, 4, 31}, LY_EINVAL},
        {{LY_EXPIRY_FIXED_DATE, 0, 13, 1}, LY_EINVAL},
        {{LY_EXPIRY_FIXED_DATE, 0, 0, 1}, LY_EINVAL},
        {{LY_EXPIRY_FIXED_DATE, 0, 1, 0}, LY_EINVAL},
        {{(enum ly_expiry_kind)42, 1, 1, 1}, LY_EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = ly_expiry_check(&cases[i].p);
        if (rc != cases[i].rc)
            fail_msg("case %zu: %d, want %d", i, rc, cases[i].rc);
        /* A policy that fails the check never expires anything. */
        if (rc != 0)
            assert_int_equal(ly_expiry_at(&cases[i].p, NULL, 0), 0);
    }
    assert_int_equal(ly_expiry_check(NULL), LY_EINVAL);
    assert_int_equal(ly_expiry_at(NULL, NULL, 0), 0);
    /* Instants too far out to compute with never expire. */
    ly_expiry days = {.kind = LY_EXPIRY_ROLLING_DAYS, .n = 1};
    assert_int_equal(ly_expiry_at(&days, NULL, INT64_MAX), 0);
    assert_int_equal(ly_expiry_at(&days, NULL, INT64_MIN), 0);
}

static void test_inactivity_deadline(void **state)
{
    (void)state;
    ly_expiry inact = {.kind = LY_EXPIRY_INACTIVITY, .n = 180};
    assert_int_equal(ly_inactivity_deadline(&inact, at("2026-01-01T00:00:00Z")),
                     at("2026-06-30T00:00:00Z"));
    assert_int_equal(ly_inactivity_deadline(&inact, 0), 180 * DAY);
    assert_int_equal(ly_inactivity_deadline(&inact, INT64_MAX - DAY), 0);
    ly_expiry days = {.kind = LY_EXPIRY_ROLLING_DAYS, .n = 180};
    assert_int_equal(ly_inactivity_deadline(&days, 0), 0);
    ly_expiry none = {.kind = LY_EXPIRY_NONE};
    assert_int_equal(ly_inactivity_deadline(&none, 0), 0);
    ly_expiry bad = {.kind = LY_EXPIRY_INACTIVITY, .n = 0};
    assert_int_equal(ly_inactivity_deadline(&bad, 0), 0);
    assert_int_equal(ly_inactivity_deadline(NULL, 0), 0);
    /* Inactivity is a whole-balance rule: lots carry no date of their own. */
    assert_int_equal(ly_expiry_at(&inact, NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checked_ops),
        cmocka_unit_test(test_rounding_parse),
        cmocka_unit_test(test_earn_points),
        cmocka_unit_test(test_earn_points_exhaustive),
        cmocka_unit_test(test_prorate),
        cmocka_unit_test(test_cumulative_reversal),
        cmocka_unit_test(test_lots_plan),
        cmocka_unit_test(test_lots_order_kept),
        cmocka_unit_test(test_lots_refused),
        cmocka_unit_test(test_expiry_at),
        cmocka_unit_test(test_rolling_months_sweep),
        cmocka_unit_test(test_expiry_check),
        cmocka_unit_test(test_inactivity_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
