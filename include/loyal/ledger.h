/* The exact arithmetic of the points ledger: overflow-checked integers, earn
 * rates with an explicit rounding mode, proportional reversal, which lots a
 * spend consumes, and when a lot expires. No I/O, no floating point, no
 * globals: every function is pure and thread-safe. */
#ifndef LOYAL_LEDGER_H
#define LOYAL_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "loyal/tz.h"

/* The largest amount or point count the API deals in: JSON clients hold
 * numbers as doubles, which count exactly only up to 2^53. */
#define LY_LEDGER_MAX ((int64_t)1 << 53)

/* a + b, a - b, a * b into *out: 0, or LY_EREFUSED on overflow (then *out
 * is left untouched). */
int ly_add64(int64_t a, int64_t b, int64_t *out);
int ly_sub64(int64_t a, int64_t b, int64_t *out);
int ly_mul64(int64_t a, int64_t b, int64_t *out);

enum ly_rounding { LY_ROUND_DOWN, LY_ROUND_NEAREST, LY_ROUND_UP };

/* "down", "nearest" or "up" (exactly, lower case): 0 or LY_EINVAL. */
int ly_rounding_parse(const char *s, enum ly_rounding *out);
/* The wire name of a rounding mode, NULL for a value outside the enum. */
const char *ly_rounding_name(enum ly_rounding r);

/* Points earned on `amount` minor units at `points` per `per_minor` minor
 * units: amount * points / per_minor, exactly, then rounded down, up, or to
 * nearest with halves away from zero (1.5 -> 2). amount >= 0, points >= 0,
 * per_minor >= 1, else LY_EINVAL; LY_EREFUSED when the result is above
 * LY_LEDGER_MAX. */
int ly_earn_points(int64_t amount, int64_t points, int64_t per_minor, enum ly_rounding r,
                   int64_t *out);

/* floor(total * part / whole), exact (128-bit intermediate), for total >= 0,
 * 0 <= part <= whole, whole > 0 (else LY_EINVAL). The result never exceeds
 * total.
 *
 * Reversing a purchase returned in pieces: prorate the cumulative amount
 * returned and subtract what earlier returns already reversed,
 *
 *     reversal_now = prorate(earned, returned_so_far + this_return, amount)
 *                    - reversed_so_far
 *
 * rather than prorating each piece alone. Each piece's rounding is then
 * absorbed by the next, and once everything is returned the reversals add
 * up to exactly `earned` (prorate(earned, amount, amount) = earned), whereas
 * flooring every piece separately would leave points behind. */
int ly_prorate(int64_t total, int64_t part, int64_t whole, int64_t *out);

/* A lot as the spending plan sees it. Times are UTC milliseconds. */
typedef struct ly_lot_state {
    int64_t remaining;
    int64_t available_at; /* spendable from this instant on (end of the pending period) */
    int64_t expires_at;   /* no longer spendable from this instant on; 0 = never */
} ly_lot_state;

/* Which lots a spend of `want` points consumes at as_of. The lots come in
 * spending order (the store sorts them: soonest-expiring first, then
 * oldest); each lot that is available (available_at <= as_of) and not
 * expired (expires_at == 0 || expires_at > as_of) gives as much as is still
 * needed. take[i] is written for every lot (0 when untouched) and *got is
 * the total taken, which is less than want when the balance falls short:
 * whether that is an error is the caller's decision. LY_EINVAL for want < 0,
 * a negative remaining, or a NULL array with n > 0. */
int ly_lots_plan(const ly_lot_state *lots, size_t n, int64_t as_of, int64_t want, int64_t *take,
                 int64_t *got);

/* The points spendable at as_of (lots available and not expired), and those
 * still pending (not yet available and not expired). Lots with a negative
 * remaining count as empty; the sums saturate at INT64_MAX. */
int64_t ly_lots_available(const ly_lot_state *lots, size_t n, int64_t as_of);
int64_t ly_lots_pending(const ly_lot_state *lots, size_t n, int64_t as_of);

/* A program's expiry policy. All calendar arithmetic happens in the
 * program's time zone.
 *
 *   NONE            lots never expire.
 *   ROLLING_DAYS    n days (exact multiples of 24 hours) after the earn:
 *                   "365 days after you earned them", unaffected by clock
 *                   changes.
 *   ROLLING_MONTHS  the same local wall-clock time n calendar months after
 *                   the earn, the day clamped to the target month's length
 *                   (31 Jan + 1 month -> 28 Feb, or 29 Feb in a leap year);
 *                   a time that falls in a clock change reads as
 *                   ly_tz_to_utc reads it.
 *   FIXED_DATE      every year on month/day: at the end of the first
 *                   occurrence of that local date on or after the local date
 *                   of the earn, that is the local midnight starting the day
 *                   after (earned 31 Dec 10:00 with a 31 Dec policy: expires
 *                   1 Jan 00:00 of the next year; earned 1 Jan: expires at
 *                   the end of 31 Dec of the same year). Day 29 of February
 *                   means the last day of February.
 *   END_OF_MONTH    at the end of the local calendar month n months after
 *                   the month of the earn (n = 0: the same month), that is
 *                   the local midnight starting the month after it.
 *   INACTIVITY      not per lot: the whole balance expires n days after the
 *                   member's last activity (ly_inactivity_deadline), which
 *                   a job checks.
 */
enum ly_expiry_kind {
    LY_EXPIRY_NONE,
    LY_EXPIRY_ROLLING_DAYS,
    LY_EXPIRY_ROLLING_MONTHS,
    LY_EXPIRY_FIXED_DATE,
    LY_EXPIRY_END_OF_MONTH,
    LY_EXPIRY_INACTIVITY,
};

typedef struct ly_expiry {
    enum ly_expiry_kind kind;
    int n;          /* days or months, as the kind says */
    int month, day; /* FIXED_DATE only */
} ly_expiry;

/* Bounds a policy must respect (ly_expiry_check): a century at most. */
#define LY_EXPIRY_MAX_DAYS   36525
#define LY_EXPIRY_MAX_MONTHS 1200

/* 0 when the policy is usable, else LY_EINVAL: n in 1..LY_EXPIRY_MAX_DAYS
 * for ROLLING_DAYS and INACTIVITY, 1..LY_EXPIRY_MAX_MONTHS for
 * ROLLING_MONTHS, 0..LY_EXPIRY_MAX_MONTHS for END_OF_MONTH; a real month
 * and day for FIXED_DATE (29 Feb allowed, 30 Feb not). */
int ly_expiry_check(const ly_expiry *p);

/* When a lot earned at earned_at (UTC ms) expires, in UTC ms; 0 for never
 * (NONE, INACTIVITY, a policy ly_expiry_check refuses, or an earned_at more
 * than 2^55 ms, about a million years, away from 1970), and at most
 * LY_TIME_MAX. z NULL means UTC. */
int64_t ly_expiry_at(const ly_expiry *p, const ly_tz *z, int64_t earned_at);

/* last_activity + n days for a valid INACTIVITY policy; 0 otherwise (or
 * when the sum would overflow). */
int64_t ly_inactivity_deadline(const ly_expiry *p, int64_t last_activity);

#endif
