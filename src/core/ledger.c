/* Ledger arithmetic: checked integer operations, earn rates and reversal in
 * exact 128-bit intermediates, the lot consumption plan and expiry dates.
 * Balances never see a floating-point number or a silent wrap-around. */
#include "loyal/ledger.h"

#include <string.h>

#include "loyal/error.h"
#include "loyal/timeutil.h"

#define MS_PER_DAY 86400000LL
/* Calendar arithmetic on instants further out than this (about a million
 * years) would meet the time zone module's clamping; such lots never expire. */
#define EXPIRY_INSTANT_LIMIT ((int64_t)1 << 55)

int ly_add64(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return LY_EREFUSED;
    *out = r;
    return 0;
}

int ly_sub64(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return LY_EREFUSED;
    *out = r;
    return 0;
}

int ly_mul64(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return LY_EREFUSED;
    *out = r;
    return 0;
}

static const char *const rounding_names[] = {
    [LY_ROUND_DOWN] = "down",
    [LY_ROUND_NEAREST] = "nearest",
    [LY_ROUND_UP] = "up",
};

#define NROUNDING (sizeof rounding_names / sizeof rounding_names[0])

int ly_rounding_parse(const char *s, enum ly_rounding *out)
{
    if (!s)
        return LY_EINVAL;
    for (size_t i = 0; i < NROUNDING; i++)
        if (strcmp(s, rounding_names[i]) == 0) {
            *out = (enum ly_rounding)i;
            return 0;
        }
    return LY_EINVAL;
}

const char *ly_rounding_name(enum ly_rounding r)
{
    return (unsigned)r < NROUNDING ? rounding_names[r] : NULL;
}

int ly_earn_points(int64_t amount, int64_t points, int64_t per_minor, enum ly_rounding r,
                   int64_t *out)
{
    if (amount < 0 || points < 0 || per_minor < 1 || (unsigned)r >= NROUNDING)
        return LY_EINVAL;
    /* Both factors are below 2^63, so the product fits in 126 bits. */
    __int128 product = (__int128)amount * points;
    __int128 q = product / per_minor, rem = product % per_minor;
    if (r == LY_ROUND_UP && rem != 0)
        q++;
    else if (r == LY_ROUND_NEAREST && 2 * rem >= per_minor)
        q++; /* operands are non-negative, so half up is half away from zero */
    if (q > LY_LEDGER_MAX)
        return LY_EREFUSED;
    *out = (int64_t)q;
    return 0;
}

int ly_prorate(int64_t total, int64_t part, int64_t whole, int64_t *out)
{
    if (total < 0 || whole <= 0 || part < 0 || part > whole)
        return LY_EINVAL;
    /* part <= whole, so the quotient is at most total and fits. */
    *out = (int64_t)((__int128)total * part / whole);
    return 0;
}

static int lot_usable(const ly_lot_state *l, int64_t as_of)
{
    return l->available_at <= as_of && (l->expires_at == 0 || l->expires_at > as_of);
}

static int lot_pending(const ly_lot_state *l, int64_t as_of)
{
    return l->available_at > as_of && (l->expires_at == 0 || l->expires_at > as_of);
}

int ly_lots_plan(const ly_lot_state *lots, size_t n, int64_t as_of, int64_t want, int64_t *take,
                 int64_t *got)
{
    if (want < 0 || !got || (n > 0 && (!lots || !take)))
        return LY_EINVAL;
    /* Check everything first so that a refused call writes nothing. */
    for (size_t i = 0; i < n; i++)
        if (lots[i].remaining < 0)
            return LY_EINVAL;
    int64_t need = want;
    for (size_t i = 0; i < n; i++) {
        int64_t t = 0;
        if (need > 0 && lots[i].remaining > 0 && lot_usable(&lots[i], as_of))
            t = lots[i].remaining < need ? lots[i].remaining : need;
        take[i] = t;
        need -= t;
    }
    *got = want - need;
    return 0;
}

static int64_t saturating_add(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

int64_t ly_lots_available(const ly_lot_state *lots, size_t n, int64_t as_of)
{
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        if (lots[i].remaining > 0 && lot_usable(&lots[i], as_of))
            sum = saturating_add(sum, lots[i].remaining);
    return sum;
}

int64_t ly_lots_pending(const ly_lot_state *lots, size_t n, int64_t as_of)
{
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        if (lots[i].remaining > 0 && lot_pending(&lots[i], as_of))
            sum = saturating_add(sum, lots[i].remaining);
    return sum;
}

/* ---- expiry ---- */

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

int ly_expiry_check(const ly_expiry *p)
{
    if (!p)
        return LY_EINVAL;
    switch (p->kind) {
    case LY_EXPIRY_NONE:
        return 0;
    case LY_EXPIRY_ROLLING_DAYS:
    case LY_EXPIRY_INACTIVITY:
        return p->n >= 1 && p->n <= LY_EXPIRY_MAX_DAYS ? 0 : LY_EINVAL;
    case LY_EXPIRY_ROLLING_MONTHS:
        return p->n >= 1 && p->n <= LY_EXPIRY_MAX_MONTHS ? 0 : LY_EINVAL;
    case LY_EXPIRY_END_OF_MONTH:
        return p->n >= 0 && p->n <= LY_EXPIRY_MAX_MONTHS ? 0 : LY_EINVAL;
    case LY_EXPIRY_FIXED_DATE:
        /* 2000 is a leap year: 29 Feb passes, 30 Feb does not. */
        return p->month >= 1 && p->month <= 12 && p->day >= 1 &&
                       p->day <= month_days(2000, p->month)
                   ? 0
                   : LY_EINVAL;
    }
    return LY_EINVAL;
}

/* Local midnight starting day `days` (days since 1970-01-01, local), plus
 * ms_of_day, as a UTC instant. */
static int64_t local_to_utc(const ly_tz *z, int64_t days, int64_t ms_of_day)
{
    return ly_tz_to_utc(z, days * MS_PER_DAY + ms_of_day);
}

/* The month `add` months after (y, m), as (year, month 1..12); floor
 * division keeps years before 0 right. */
static void add_months(int64_t y, int m, int64_t add, int64_t *oy, int *om)
{
    int64_t idx = y * 12 + (m - 1) + add;
    int64_t ny = idx / 12 - (idx % 12 < 0);
    *oy = ny;
    *om = (int)(idx - ny * 12) + 1;
}

static int64_t expiry_at(const ly_expiry *p, const ly_tz *z, int64_t earned_at);

int64_t ly_expiry_at(const ly_expiry *p, const ly_tz *z, int64_t earned_at)
{
    /* Past the last instant a time can be written at is never, as good as:
     * the last instant, so that every expiry date can be shown. */
    int64_t t = expiry_at(p, z, earned_at);
    return t > LY_TIME_MAX ? LY_TIME_MAX : t;
}

static int64_t expiry_at(const ly_expiry *p, const ly_tz *z, int64_t earned_at)
{
    if (ly_expiry_check(p) != 0 || earned_at < -EXPIRY_INSTANT_LIMIT ||
        earned_at > EXPIRY_INSTANT_LIMIT)
        return 0;
    if (!z && ly_tz_get("UTC", &z) != 0)
        return 0;
    ly_civil c;
    int64_t y;
    int m;
    switch (p->kind) {
    case LY_EXPIRY_NONE:
    case LY_EXPIRY_INACTIVITY:
        return 0;
    case LY_EXPIRY_ROLLING_DAYS:
        /* Bounded inputs: neither step can overflow. */
        return earned_at + (int64_t)p->n * MS_PER_DAY;
    case LY_EXPIRY_ROLLING_MONTHS: {
        ly_tz_local_civil(z, earned_at, &c);
        add_months(c.year, c.month, p->n, &y, &m);
        int d = c.day < month_days(y, m) ? c.day : month_days(y, m);
        int64_t tod = (((int64_t)c.hour * 60 + c.minute) * 60 + c.second) * 1000 + c.ms;
        return local_to_utc(z, ly_days_from_civil(y, (unsigned)m, (unsigned)d), tod);
    }
    case LY_EXPIRY_FIXED_DATE: {
        ly_tz_local_civil(z, earned_at, &c);
        y = c.year;
        int d = p->day < month_days(y, p->month) ? p->day : month_days(y, p->month);
        if (p->month < c.month || (p->month == c.month && d < c.day)) {
            y++;
            d = p->day < month_days(y, p->month) ? p->day : month_days(y, p->month);
        }
        return local_to_utc(z, ly_days_from_civil(y, (unsigned)p->month, (unsigned)d) + 1, 0);
    }
    case LY_EXPIRY_END_OF_MONTH:
        ly_tz_local_civil(z, earned_at, &c);
        add_months(c.year, c.month, (int64_t)p->n + 1, &y, &m);
        return local_to_utc(z, ly_days_from_civil(y, (unsigned)m, 1), 0);
    }
    return 0;
}

int64_t ly_inactivity_deadline(const ly_expiry *p, int64_t last_activity)
{
    int64_t r;
    if (!p || p->kind != LY_EXPIRY_INACTIVITY || ly_expiry_check(p) != 0 ||
        ly_add64(last_activity, (int64_t)p->n * MS_PER_DAY, &r) != 0)
        return 0;
    return r;
}
