/* Wire time (RFC 3339) to and from integer UTC milliseconds. Calendar maths is
 * Howard Hinnant's days_from_civil, in integers only, so that results do not
 * depend on the host's time zone database, locale or floating point. */
#include "loyal/timeutil.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "loyal/error.h"

#define MS_PER_DAY 86400000LL

int64_t ly_time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ly_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t mm = m, dd = d;
    y -= mm <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (mm > 2 ? mm - 3 : mm + 9) + 2) / 5 + dd - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void ly_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

void ly_time_format(int64_t ms, char buf[LY_TIME_BUFSZ])
{
    /* Floor division, so that instants before 1970 land on the right day. */
    int64_t days = ms / MS_PER_DAY, rem = ms % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days -= 1;
    }
    int64_t y;
    unsigned m, d;
    ly_civil_from_days(days, &y, &m, &d);
    int h = (int)(rem / 3600000), mi = (int)(rem / 60000 % 60), s = (int)(rem / 1000 % 60);
    if (y < 0 || y > 9999) {
        snprintf(buf, LY_TIME_BUFSZ, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d, h,
                 mi, s, (int)(rem % 1000));
        return;
    }
    /* By hand: every answer formats a few of these, and printf is slow. */
    static const char pattern[] = "0000-00-00T00:00:00.000Z";
    const int fields[][3] = {{0, 4, (int)y},
                             {5, 2, (int)m},
                             {8, 2, (int)d},
                             {11, 2, h},
                             {14, 2, mi},
                             {17, 2, s},
                             {20, 3, (int)(rem % 1000)}};
    memcpy(buf, pattern, sizeof pattern);
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
        for (int i = fields[f][1] - 1, v = fields[f][2]; i >= 0; i--, v /= 10)
            buf[fields[f][0] + i] = (char)('0' + v % 10);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Reads exactly n decimal digits; 0 when any of them is not a digit. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return 0;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 1;
}

static int expect(const char **p, char a, char b)
{
    if (**p != a && **p != b)
        return 0;
    (*p)++;
    return 1;
}

int ly_time_parse(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec, frac = 0;
    if (!s)
        return LY_EINVAL;
    const char *p = s;
    if (!digits(&p, 4, &y) || !expect(&p, '-', '-') || !digits(&p, 2, &mo) ||
        !expect(&p, '-', '-') || !digits(&p, 2, &d) || !expect(&p, 'T', 't') ||
        !digits(&p, 2, &h) || !expect(&p, ':', ':') || !digits(&p, 2, &mi) ||
        !expect(&p, ':', ':') || !digits(&p, 2, &sec))
        return LY_EINVAL;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return LY_EINVAL;
        /* Any number of digits is valid RFC 3339; we keep milliseconds and
         * truncate, so an instant is never moved into the future. */
        int n = 0;
        for (; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3)
                frac = frac * 10 + (*p - '0');
        for (; n < 3; n++)
            frac *= 10;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (!digits(&p, 2, &oh) || !expect(&p, ':', ':') || !digits(&p, 2, &om))
            return LY_EINVAL;
        if (oh > 23 || om > 59)
            return LY_EINVAL;
        offset_min = sign * (oh * 60 + om);
    } else {
        return LY_EINVAL;
    }
    if (*p != '\0')
        return LY_EINVAL;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || (unsigned)d > days_in_month(y, (unsigned)mo) ||
        h > 23 || mi > 59 || sec > 59)
        return LY_EINVAL;
    int64_t days = ly_days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t t = days * MS_PER_DAY + ((int64_t)h * 3600 + mi * 60 + sec) * 1000 + frac -
                (int64_t)offset_min * 60000;
    /* An offset may carry 9999-12-31 or 0001-01-01 out of the years UTC
     * can be written in. */
    if (t < LY_TIME_MIN || t > LY_TIME_MAX)
        return LY_EINVAL;
    *ms = t;
    return 0;
}
