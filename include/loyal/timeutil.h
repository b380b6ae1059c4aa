/* Time on the wire is RFC 3339; inside, integer milliseconds since the Unix
 * epoch, UTC. Pure functions, thread-safe. */
#ifndef LOYAL_TIMEUTIL_H
#define LOYAL_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define LY_TIME_BUFSZ 32
/* The instants RFC 3339 can write in UTC: 0001-01-01T00:00:00.000Z and
 * 9999-12-31T23:59:59.999Z. */
#define LY_TIME_MIN (-62135596800000LL)
#define LY_TIME_MAX 253402300799999LL

int64_t ly_time_now_ms(void);
/* "2026-11-22T10:09:00.123Z" (milliseconds always shown). */
void ly_time_format(int64_t ms, char buf[LY_TIME_BUFSZ]);
/* Full RFC 3339 date-time: "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)", 't'
 * and 'z' accepted, fraction truncated to milliseconds, leap second 60 refused,
 * years 0001..9999, in UTC too (LY_TIME_MIN..LY_TIME_MAX). 0 or LY_EINVAL. */
int ly_time_parse(const char *s, int64_t *ms);
/* Days since 1970-01-01 for a proleptic Gregorian date, and back. */
int64_t ly_days_from_civil(int64_t y, unsigned m, unsigned d);
void ly_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

#endif
