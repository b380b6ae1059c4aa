/* Time zones from compiled TZif files (RFC 8536) and the POSIX TZ rule in
 * their footer, without libc's global TZ state: offsets at an instant, local
 * calendar time, and wall-clock time back to UTC for the program's calendar. */
#include "loyal/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loyal/error.h"
#include "loyal/timeutil.h"

#define MS_PER_DAY   86400000LL
#define MS_PER_HOUR  3600000LL
#define ZONEINFO_DIR "/usr/share/zoneinfo"
#define NAME_MAX_LEN 128
#define FILE_MAX     (1 << 20)
#define HEADER_SIZE  44
#define FOOTER_MAX   256
#define MAX_INSTANTS 32
/* Far enough for any calendar, near enough that no year or day count in the
 * arithmetic below comes close to overflowing. */
#define INSTANT_LIMIT ((int64_t)1 << 56)
/* RFC 8536 bounds for a UT offset: -25:59:59 .. +25:59:59. */
#define UTOFF_MIN (-89999)
#define UTOFF_MAX 93599

/* The day a POSIX rule changes the clocks, and the local time it does so. */
struct rule_date {
    char form;    /* 'J': Jn (1..365, 29 Feb never counted); 'D': n (0..365); 'M': Mm.w.d */
    int a, b, c;  /* J, D: a = the day; M: a = month, b = week 1..5 (5 = last), c = 0 Sunday..6 */
    int32_t time; /* seconds after local midnight, -167h..167h */
};

struct rule {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    struct rule_date start, end; /* start in standard time, end in daylight time */
};

struct ly_tz {
    struct ly_tz *next; /* the cache's list */
    char name[NAME_MAX_LEN + 1];
    int32_t off_before; /* seconds, before the first transition */
    size_t ntrans;
    int64_t *trans;     /* UTC milliseconds, strictly ascending */
    int32_t *trans_off; /* seconds, from each transition on */
    bool has_rule;      /* the footer's rule governs from the last transition on */
    struct rule rule;
};

/* Built in, so that UTC programs run on hosts without tzdata. */
static const struct ly_tz builtin[] = {{.name = "UTC"}, {.name = "Etc/UTC"}};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ly_tz *cache;

/* ---- calendar helpers ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t clamp_instant(int64_t t)
{
    return t < -INSTANT_LIMIT ? -INSTANT_LIMIT : t > INSTANT_LIMIT ? INSTANT_LIMIT : t;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

static int64_t year_of(int64_t local_ms)
{
    int64_t y;
    unsigned m, d;
    ly_civil_from_days(floor_div(local_ms, MS_PER_DAY), &y, &m, &d);
    return y;
}

/* ---- POSIX TZ rule strings ---- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Up to max_digits decimal digits, at least one. */
static bool parse_num(const char **pp, int max_digits, int *out)
{
    const char *p = *pp;
    int v = 0, n = 0;
    while (n < max_digits && is_digit(*p)) {
        v = v * 10 + (*p++ - '0');
        n++;
    }
    if (n == 0)
        return false;
    *pp = p;
    *out = v;
    return true;
}

/* "EST" or "<+0545>": at least three characters either way, as POSIX asks. */
static bool parse_abbr(const char **pp)
{
    const char *p = *pp;
    size_t n = 0;
    if (*p == '<') {
        for (p++; is_alpha(*p) || is_digit(*p) || *p == '+' || *p == '-'; p++)
            n++;
        if (*p++ != '>')
            return false;
    } else {
        for (; is_alpha(*p); p++)
            n++;
    }
    if (n < 3)
        return false;
    *pp = p;
    return true;
}

/* [+-]h[h[h]][:mm[:ss]] in seconds; max_h is 24 for an offset, 167 for the
 * time of a change (RFC 8536 lets rules name times outside one day). */
static bool parse_hms(const char **pp, int max_h, int32_t *out)
{
    const char *p = *pp;
    int sign = 1, h, m = 0, s = 0;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    if (!parse_num(&p, 3, &h) || h > max_h)
        return false;
    if (*p == ':') {
        p++;
        if (!parse_num(&p, 2, &m) || m > 59)
            return false;
        if (*p == ':') {
            p++;
            if (!parse_num(&p, 2, &s) || s > 59)
                return false;
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    *pp = p;
    return true;
}

static bool parse_rule_date(const char **pp, struct rule_date *d)
{
    const char *p = *pp;
    d->b = d->c = 0;
    if (*p == 'J') {
        p++;
        d->form = 'J';
        if (!parse_num(&p, 3, &d->a) || d->a < 1 || d->a > 365)
            return false;
    } else if (*p == 'M') {
        p++;
        d->form = 'M';
        if (!parse_num(&p, 2, &d->a) || d->a < 1 || d->a > 12 || *p++ != '.' ||
            !parse_num(&p, 1, &d->b) || d->b < 1 || d->b > 5 || *p++ != '.' ||
            !parse_num(&p, 1, &d->c) || d->c > 6)
            return false;
    } else {
        d->form = 'D';
        if (!parse_num(&p, 3, &d->a) || d->a > 365)
            return false;
    }
    d->time = 2 * 3600;
    if (*p == '/') {
        p++;
        if (!parse_hms(&p, 167, &d->time))
            return false;
    }
    *pp = p;
    return true;
}

/* "std offset [dst [offset] [,start[/time],end[/time]]]". POSIX offsets count
 * west of Greenwich, hence the sign flips. A daylight zone without rules gets
 * the United States' rules, as glibc does; tzdata footers always carry them. */
static bool parse_posix(const char *s, struct rule *r)
{
    const char *p = s;
    int32_t off;
    memset(r, 0, sizeof *r);
    if (!parse_abbr(&p) || !parse_hms(&p, 24, &off))
        return false;
    r->std_off = -off;
    r->dst_off = r->std_off;
    if (*p == '\0')
        return true;
    if (!parse_abbr(&p))
        return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        if (!parse_hms(&p, 24, &off))
            return false;
        r->dst_off = -off;
    }
    if (*p == '\0') {
        r->start = (struct rule_date){'M', 3, 2, 0, 2 * 3600};
        r->end = (struct rule_date){'M', 11, 1, 0, 2 * 3600};
        return true;
    }
    if (*p++ != ',' || !parse_rule_date(&p, &r->start) || *p++ != ',' ||
        !parse_rule_date(&p, &r->end))
        return false;
    return *p == '\0';
}

/* Days since 1970-01-01 of the local date a rule names in year y. */
static int64_t rule_day(const struct rule_date *d, int64_t y)
{
    int64_t jan1 = ly_days_from_civil(y, 1, 1);
    if (d->form == 'J')
        return jan1 + d->a - 1 + (is_leap(y) && d->a >= 60);
    if (d->form == 'D')
        return jan1 + d->a;
    int64_t first = ly_days_from_civil(y, (unsigned)d->a, 1);
    int wd = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday; 0 = Sunday */
    int day = 1 + (d->c - wd + 7) % 7 + 7 * (d->b - 1);
    while (day > month_days(y, d->a))
        day -= 7;
    return first + day - 1;
}

struct change {
    int64_t at; /* UTC ms */
    bool start; /* daylight time starts */
};

static void rule_changes(const struct rule *r, int64_t y, struct change out[2])
{
    out[0].at = (rule_day(&r->start, y) * 86400 + r->start.time - r->std_off) * 1000;
    out[0].start = true;
    out[1].at = (rule_day(&r->end, y) * 86400 + r->end.time - r->dst_off) * 1000;
    out[1].start = false;
}

/* Chronological; at the same instant an end sorts before a start, so that a
 * zone on daylight time all year ("EST5EDT,0/0,J365/25", RFC 8536 3.3.1)
 * stays on it across the new year. */
static void sort_changes(struct change *c, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct change x = c[i];
        size_t j = i;
        while (j > 0 &&
               (c[j - 1].at > x.at || (c[j - 1].at == x.at && c[j - 1].start && !x.start))) {
            c[j] = c[j - 1];
            j--;
        }
        c[j] = x;
    }
}

/* The changes of years y0..y1 (at most four years), sorted. */
static size_t rule_changes_span(const struct rule *r, int64_t y0, int64_t y1, struct change c[8])
{
    size_t n = 0;
    for (int64_t y = y0; y <= y1 && n < 8; y++, n += 2)
        rule_changes(r, y, c + n);
    sort_changes(c, n);
    return n;
}

static int32_t rule_offset(const struct rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    /* Changes may sit days away from the year they belong to (times up to
     * 167h), so the state at t is decided by the latest change at or before t
     * among the surrounding years. */
    int64_t y = year_of(t + (int64_t)r->std_off * 1000);
    struct change c[8];
    size_t n = rule_changes_span(r, y - 2, y + 1, c);
    bool dst = false;
    for (size_t i = 0; i < n && c[i].at <= t; i++)
        dst = c[i].start;
    return dst ? r->dst_off : r->std_off;
}

/* ---- offsets and conversions ---- */

static int32_t offset_s(const ly_tz *z, int64_t t)
{
    if (z->ntrans == 0 || t >= z->trans[z->ntrans - 1]) {
        if (z->has_rule)
            return rule_offset(&z->rule, t);
        return z->ntrans ? z->trans_off[z->ntrans - 1] : z->off_before;
    }
    if (t < z->trans[0])
        return z->off_before;
    size_t lo = 0, hi = z->ntrans - 1; /* trans[lo] <= t < trans[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->trans_off[lo];
}

static int64_t offset_ms(const ly_tz *z, int64_t t)
{
    return (int64_t)offset_s(z, t) * 1000;
}

int64_t ly_tz_offset_ms(const ly_tz *z, int64_t utc_ms)
{
    return offset_ms(z, clamp_instant(utc_ms));
}

/* Every instant in (from, to] at which the offset may change: the table's
 * transitions, then the rule's changes past the table's end. */
static size_t change_instants(const ly_tz *z, int64_t from, int64_t to, int64_t out[MAX_INSTANTS])
{
    size_t n = 0, lo = 0, hi = z->ntrans;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= from)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < z->ntrans && z->trans[i] <= to && n < MAX_INSTANTS; i++)
        out[n++] = z->trans[i];
    if (!z->has_rule || !z->rule.has_dst)
        return n;
    int64_t table_end = z->ntrans ? z->trans[z->ntrans - 1] : INT64_MIN;
    int64_t std = (int64_t)z->rule.std_off * 1000;
    struct change c[8];
    size_t k = rule_changes_span(&z->rule, year_of(from + std) - 1, year_of(to + std) + 1, c);
    for (size_t i = 0; i < k && n < MAX_INSTANTS; i++)
        if (c[i].at > from && c[i].at <= to && c[i].at > table_end &&
            (n == 0 || out[n - 1] != c[i].at))
            out[n++] = c[i].at;
    return n;
}

int64_t ly_tz_to_utc(const ly_tz *z, int64_t local_ms)
{
    int64_t local = clamp_instant(local_ms);
    /* Offsets stay within +/-26h, so every instant that reads as `local` lies
     * in this window; walk its stretches of constant offset in order and the
     * first one that contains its own reading is the earliest answer. */
    int64_t from = local - 27 * MS_PER_HOUR, to = local + 27 * MS_PER_HOUR;
    int64_t at[MAX_INSTANTS];
    size_t n = change_instants(z, from, to, at);
    int64_t seg_start = from, off = offset_ms(z, from);
    for (size_t i = 0; i <= n; i++) {
        int64_t t = local - off;
        if (t >= seg_start && (i == n || t < at[i]))
            return t;
        if (i < n) {
            seg_start = at[i];
            off = offset_ms(z, at[i]);
        }
    }
    /* No instant reads as `local`: it is in a gap; read it with the offset
     * from before the gap, which lands as far past the gap's start as
     * `local` was. */
    for (size_t i = 0; i < n; i++) {
        int64_t before = offset_ms(z, at[i] - 1), after = offset_ms(z, at[i]);
        if (at[i] + before <= local && local < at[i] + after)
            return local - before;
    }
    return local - offset_ms(z, from);
}

void ly_tz_local_civil(const ly_tz *z, int64_t utc_ms, ly_civil *out)
{
    int64_t t = clamp_instant(utc_ms);
    int64_t local = t + offset_ms(z, t);
    int64_t days = floor_div(local, MS_PER_DAY), rem = local - days * MS_PER_DAY;
    int64_t y;
    unsigned m, d;
    ly_civil_from_days(days, &y, &m, &d);
    out->year = (int)y;
    out->month = (int)m;
    out->day = (int)d;
    out->hour = (int)(rem / MS_PER_HOUR);
    out->minute = (int)(rem / 60000 % 60);
    out->second = (int)(rem / 1000 % 60);
    out->ms = (int)(rem % 1000);
    out->weekday = (int)(((days + 3) % 7 + 7) % 7) + 1; /* 1970-01-01 was a Thursday */
    out->yday = (int)(days - ly_days_from_civil(y, 1, 1)) + 1;
}

const char *ly_tz_name(const ly_tz *z)
{
    return z->name;
}

/* ---- TZif files ---- */

struct header {
    unsigned char version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static bool read_header(const unsigned char *p, size_t len, struct header *h)
{
    if (len < HEADER_SIZE || memcmp(p, "TZif", 4) != 0)
        return false;
    h->version = p[4];
    if (h->version != 0 && (h->version < '2' || h->version > '9'))
        return false;
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    return true;
}

static uint64_t block_size(const struct header *h, unsigned timesz)
{
    return (uint64_t)h->timecnt * timesz + h->timecnt + (uint64_t)h->typecnt * 6 + h->charcnt +
           (uint64_t)h->leapcnt * (timesz + 4) + h->isstdcnt + h->isutcnt;
}

/* Fills a zone from one data block (32- or 64-bit times). */
static int parse_block(const unsigned char *p, const struct header *h, unsigned timesz,
                       struct ly_tz *z)
{
    const unsigned char *idx = p + (size_t)h->timecnt * timesz;
    const unsigned char *types = idx + h->timecnt;
    for (uint32_t i = 0; i < h->typecnt; i++) {
        int32_t utoff = (int32_t)be32(types + 6 * i);
        if (utoff < UTOFF_MIN || utoff > UTOFF_MAX || types[6 * i + 4] > 1 ||
            types[6 * i + 5] >= h->charcnt)
            return LY_EINVAL;
    }
    z->off_before = (int32_t)be32(types);
    z->ntrans = 0;
    bool cut = false;
    int64_t prev = 0;
    for (uint32_t i = 0; i < h->timecnt; i++) {
        const unsigned char *tp = p + (size_t)i * timesz;
        int64_t s = timesz == 8 ? be64(tp) : (int32_t)be32(tp);
        if ((i > 0 && s <= prev) || idx[i] >= h->typecnt)
            return LY_EINVAL;
        prev = s;
        int32_t off = (int32_t)be32(types + 6 * idx[i]);
        /* zic writes a "big bang" transition near -2^59 s; such far ends
         * fold into the clamped range instead of overflowing milliseconds. */
        if (s < -INSTANT_LIMIT / 1000) {
            z->off_before = off;
        } else if (s > INSTANT_LIMIT / 1000) {
            cut = true;
        } else if (!cut) {
            z->trans[z->ntrans] = s * 1000;
            z->trans_off[z->ntrans] = off;
            z->ntrans++;
        }
    }
    if (cut)
        z->has_rule = false;
    return 0;
}

static int parse_tzif(const unsigned char *buf, size_t len, const char *name, struct ly_tz **out)
{
    struct header h;
    size_t pos = HEADER_SIZE;
    unsigned timesz = 4;
    if (!read_header(buf, len, &h))
        return LY_EINVAL;
    if (h.version >= '2') {
        /* The 32-bit block is only for old readers: skip to the 64-bit one. */
        uint64_t skip = block_size(&h, 4);
        if (skip > len - pos)
            return LY_EINVAL;
        pos += (size_t)skip;
        if (!read_header(buf + pos, len - pos, &h) || h.version < '2')
            return LY_EINVAL;
        pos += HEADER_SIZE;
        timesz = 8;
    }
    /* Leap-second records mean the file counts TAI-like seconds, not the
     * POSIX time our milliseconds are. */
    if (h.typecnt == 0 || h.typecnt > 256 || h.charcnt == 0 || h.leapcnt != 0 ||
        (h.isutcnt != 0 && h.isutcnt != h.typecnt) || (h.isstdcnt != 0 && h.isstdcnt != h.typecnt))
        return LY_EINVAL;
    uint64_t size = block_size(&h, timesz);
    if (size > len - pos)
        return LY_EINVAL;
    const unsigned char *data = buf + pos;
    pos += (size_t)size;

    struct rule rule = {0};
    bool has_rule = false;
    if (timesz == 8) {
        if (pos >= len || buf[pos] != '\n')
            return LY_EINVAL;
        const unsigned char *f = buf + pos + 1;
        const unsigned char *nl = memchr(f, '\n', len - pos - 1);
        if (!nl || nl != buf + len - 1 || (size_t)(nl - f) >= FOOTER_MAX)
            return LY_EINVAL;
        if (nl > f) {
            char s[FOOTER_MAX];
            memcpy(s, f, (size_t)(nl - f));
            s[nl - f] = '\0';
            if (!parse_posix(s, &rule))
                return LY_EINVAL;
            has_rule = true;
        }
    }

    struct ly_tz *z =
        calloc(1, sizeof *z + (size_t)h.timecnt * (sizeof(int64_t) + sizeof(int32_t)));
    if (!z)
        return LY_ENOMEM;
    z->trans = (int64_t *)(z + 1);
    z->trans_off = (int32_t *)(z->trans + h.timecnt);
    z->has_rule = has_rule;
    z->rule = rule;
    snprintf(z->name, sizeof z->name, "%s", name);
    int rc = parse_block(data, &h, timesz, z);
    if (rc != 0) {
        free(z);
        return rc;
    }
    *out = z;
    return 0;
}

static int read_file(const char *path, unsigned char **buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOMEM ? LY_ENOMEM : LY_EINVAL;
    int rc = LY_EINVAL;
    unsigned char *b = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < HEADER_SIZE ||
        st.st_size > FILE_MAX)
        goto out;
    size_t size = (size_t)st.st_size, got = 0;
    b = malloc(size);
    if (!b) {
        rc = LY_ENOMEM;
        goto out;
    }
    while (got < size) {
        ssize_t r = read(fd, b + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto out;
        got += (size_t)r;
    }
    *buf = b;
    *len = size;
    b = NULL;
    rc = 0;
out:
    free(b);
    close(fd);
    return rc;
}

/* The same rule as ly_valid_timezone: no '.', so no "..", and no leading
 * '/', so a name cannot leave the zone directory. */
static bool valid_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '/') {
            if (i == 0 || i == len - 1 || s[i + 1] == '/')
                return false;
        } else if (!is_alpha(c) && !is_digit(c) && c != '_' && c != '+' && c != '-') {
            return false;
        }
    }
    return true;
}

static int load(const char *name, struct ly_tz **out)
{
    const char *dir = getenv("TZDIR");
    if (!dir || !*dir)
        dir = ZONEINFO_DIR;
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        return LY_EINVAL;
    unsigned char *buf;
    size_t len;
    int rc = read_file(path, &buf, &len);
    if (rc != 0)
        return rc;
    rc = parse_tzif(buf, len, name, out);
    free(buf);
    return rc;
}

static struct ly_tz *cache_find(const char *name)
{
    for (struct ly_tz *z = cache; z; z = z->next)
        if (strcmp(z->name, name) == 0)
            return z;
    return NULL;
}

int ly_tz_get(const char *name, const ly_tz **out)
{
    if (!name || !out || !valid_name(name))
        return LY_EINVAL;
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (strcmp(builtin[i].name, name) == 0) {
            *out = &builtin[i];
            return 0;
        }
    pthread_mutex_lock(&cache_lock);
    struct ly_tz *z = cache_find(name);
    pthread_mutex_unlock(&cache_lock);
    if (z) {
        *out = z;
        return 0;
    }
    /* Read without the lock held; if another thread loaded the same zone
     * meanwhile, keep the first so that every caller sees one pointer. */
    struct ly_tz *loaded;
    int rc = load(name, &loaded);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&cache_lock);
    z = cache_find(name);
    if (!z) {
        loaded->next = cache;
        cache = loaded;
        z = loaded;
        loaded = NULL;
    }
    pthread_mutex_unlock(&cache_lock);
    free(loaded);
    *out = z;
    return 0;
}
