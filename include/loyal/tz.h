/* IANA time zones read straight from the compiled TZif files, so that a
 * program's local calendar (expiry dates, caps per day, weekday rules) never
 * depends on libc's process-wide TZ state or on the host's /etc/localtime. */
#ifndef LOYAL_TZ_H
#define LOYAL_TZ_H

#include <stdint.h>

/* A loaded zone: immutable, owned by the process-wide cache, never freed.
 * Safe to share between threads without locking. */
typedef struct ly_tz ly_tz;

/* A broken-down local time. */
typedef struct ly_civil {
    int year;
    int month; /* 1..12 */
    int day;   /* 1..31 */
    int hour, minute, second, ms;
    int weekday; /* ISO: Monday 1 ... Sunday 7 */
    int yday;    /* day of the year, 1..366 */
} ly_civil;

/* Looks a zone up by its IANA name ("America/New_York"), loading
 * $TZDIR/<name> (default /usr/share/zoneinfo) the first time and caching it
 * for the life of the process. "UTC" and "Etc/UTC" are built in and need no
 * files. Names are ASCII letters, digits, '_', '+', '-' and single '/'
 * between parts (so nothing outside the zone directory can be named).
 * 0, LY_EINVAL for an unknown or malformed zone (zones with leap-second
 * records, the "right/" variants, are refused: our milliseconds are POSIX
 * time), LY_ENOMEM. Thread-safe. */
int ly_tz_get(const char *name, const ly_tz **out);

/* The name the zone was loaded under. */
const char *ly_tz_name(const ly_tz *z);

/* The UTC offset (local minus UTC, in milliseconds) in effect at the instant
 * utc_ms. Past the zone's last recorded transition the POSIX rule from the
 * file's footer applies ("EST5EDT,M3.2.0,M11.1.0"), so any future year
 * works. Instants are clamped to +/-2^56 ms (about 2.28 million years). */
int64_t ly_tz_offset_ms(const ly_tz *z, int64_t utc_ms);

/* The instant at which local wall-clock time local_ms (milliseconds since
 * 1970-01-01T00:00 local) occurs. A time skipped by a forward change (the
 * spring gap) is read with the offset in effect before the gap, so 02:30 in a
 * 02:00->03:00 gap is the instant shown as 03:30; a time that occurs twice
 * (the autumn overlap) gives the earlier instant. */
int64_t ly_tz_to_utc(const ly_tz *z, int64_t local_ms);

/* The local calendar date and time of the instant utc_ms. */
void ly_tz_local_civil(const ly_tz *z, int64_t utc_ms, ly_civil *out);

#endif
