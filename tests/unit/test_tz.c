/* Tests for src/core/tz.c: offsets, local civil time and wall-clock to UTC
 * in real IANA zones (checked against glibc, which reads the same files),
 * and every POSIX rule form through TZif files written for the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "loyal/error.h"
#include "loyal/timeutil.h"
#include "loyal/tz.h"

#define H  3600000LL
#define MN 60000LL

static char tmpdir[512];

static int64_t at(const char *rfc3339)
{
    int64_t ms;
    if (ly_time_parse(rfc3339, &ms) != 0)
        fail_msg("bad time in test table: %s", rfc3339);
    return ms;
}

static const ly_tz *zone(const char *name)
{
    const ly_tz *z = NULL;
    int rc = ly_tz_get(name, &z);
    if (rc != 0 || !z)
        fail_msg("ly_tz_get(%s) = %d", name, rc);
    return z;
}

static int system_has(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
    return access(path, R_OK) == 0;
}

/* ---- TZif files written for the test ---- */

struct ttype {
    int32_t utoff;
    int isdst;
};

struct tzif {
    char version; /* 0 or '2' */
    size_t ntrans;
    const int64_t *times;
    const unsigned char *idx;
    size_t ntypes;
    const struct ttype *types;
    const char *footer; /* version 2 only */
    uint32_t leapcnt;   /* written as zero-valued records */
};

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return p + 4;
}

static unsigned char *put64(unsigned char *p, int64_t v)
{
    p = put32(p, (uint32_t)((uint64_t)v >> 32));
    return put32(p, (uint32_t)v);
}

static unsigned char *put_block(unsigned char *p, const struct tzif *f, char version, int wide)
{
    memcpy(p, "TZif", 4);
    p[4] = (unsigned char)version;
    memset(p + 5, 0, 15);
    p += 20;
    p = put32(p, 0);
    p = put32(p, 0);
    p = put32(p, f->leapcnt);
    p = put32(p, (uint32_t)f->ntrans);
    p = put32(p, (uint32_t)f->ntypes);
    p = put32(p, 4);
    for (size_t i = 0; i < f->ntrans; i++)
        p = wide ? put64(p, f->times[i]) : put32(p, (uint32_t)(int32_t)f->times[i]);
    for (size_t i = 0; i < f->ntrans; i++)
        *p++ = f->idx[i];
    for (size_t i = 0; i < f->ntypes; i++) {
        p = put32(p, (uint32_t)f->types[i].utoff);
        *p++ = (unsigned char)f->types[i].isdst;
        *p++ = 0;
    }
    memcpy(p, "XYZ", 4);
    p += 4;
    for (uint32_t i = 0; i < f->leapcnt; i++)
        p = wide ? put64(put32(p, 0), 0) : put32(put32(p, 0), 0);
    return p;
}

static size_t tzif_build(const struct tzif *f, unsigned char *buf)
{
    unsigned char *p = put_block(buf, f, f->version, 0);
    if (f->version) {
        p = put_block(p, f, f->version, 1);
        *p++ = '\n';
        size_t n = strlen(f->footer);
        memcpy(p, f->footer, n);
        p += n;
        *p++ = '\n';
    }
    return (size_t)(p - buf);
}

static void write_file(const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/Test", tmpdir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/Test/%s", tmpdir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static void write_zone(const char *name, const struct tzif *f)
{
    unsigned char buf[8192];
    write_file(name, buf, tzif_build(f, buf));
}

/* A zone governed by its footer rule from 1800 on. The one no-op transition
 * is there for glibc, which ignores the footer of a file without
 * transitions (tzfile(5) says the footer then covers all instants, and
 * test_cached checks that we do so). */
static void write_rule_zone(const char *name, const char *footer)
{
    static const struct ttype t0[] = {{0, 0}};
    static const int64_t times[] = {-5364662400};
    static const unsigned char idx[] = {0};
    struct tzif f = {.version = '2',
                     .ntrans = 1,
                     .times = times,
                     .idx = idx,
                     .ntypes = 1,
                     .types = t0,
                     .footer = footer};
    write_zone(name, &f);
}

/* Looks a zone up with TZDIR pointing at the test's directory. */
static int get_test_zone(const char *name, const ly_tz **z)
{
    char full[256];
    snprintf(full, sizeof full, "Test/%s", name);
    setenv("TZDIR", tmpdir, 1);
    int rc = ly_tz_get(full, z);
    unsetenv("TZDIR");
    return rc;
}

static const ly_tz *test_zone(const char *name)
{
    const ly_tz *z = NULL;
    int rc = get_test_zone(name, &z);
    if (rc != 0)
        fail_msg("test zone %s: %d", name, rc);
    return z;
}

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("LOYAL_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0700);
    snprintf(tmpdir, sizeof tmpdir, "%s/tzXXXXXX", base);
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/Test", tmpdir);
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char f[1400];
            snprintf(f, sizeof f, "%s/%s", path, e->d_name);
            unlink(f);
        }
        closedir(d);
        rmdir(path);
    }
    rmdir(tmpdir);
    return 0;
}

/* ---- glibc as the reference ---- */

/* The offset glibc computes for TZ=spec at t (whole seconds), in ms. */
static int64_t glibc_offset(const char *spec, int64_t t_ms)
{
    static char current[1100];
    if (strcmp(current, spec) != 0) {
        setenv("TZ", spec, 1);
        tzset();
        snprintf(current, sizeof current, "%s", spec);
    }
    time_t t = (time_t)(t_ms >= 0 ? t_ms / 1000 : -((-t_ms + 999) / 1000));
    struct tm tm;
    if (!localtime_r(&t, &tm))
        fail_msg("localtime_r failed at %lld", (long long)t_ms);
    return (int64_t)tm.tm_gmtoff * 1000;
}

/* Walks from `start` to 2110 in uneven steps, comparing offsets with glibc,
 * pinning every change to the exact second, and checking that each instant's
 * local reading maps back to it (or to the earlier instant of an overlap). */
static void sweep(const ly_tz *z, const char *spec, const char *start)
{
    const int64_t from = at(start), to = at("2110-12-31T00:00:00Z");
    const int64_t step = 29 * H + 17 * MN + 3001;
    int64_t prev_t = from, prev_off = ly_tz_offset_ms(z, from);
    for (int64_t t = from; t <= to; t += step) {
        int64_t off = ly_tz_offset_ms(z, t);
        int64_t ref = glibc_offset(spec, t);
        if (off != ref)
            fail_msg("%s at %lld: %lld, glibc %lld", spec, (long long)t, (long long)off,
                     (long long)ref);
        if (off != prev_off) {
            int64_t lo = prev_t, hi = t; /* offset(lo) == prev_off, offset(hi) != prev_off */
            while (hi - lo > 1000) {
                int64_t mid = lo + (hi - lo) / 2;
                mid -= ((mid % 1000) + 1000) % 1000;
                if (mid <= lo)
                    mid = lo + 1000;
                if (mid >= hi)
                    break;
                if (ly_tz_offset_ms(z, mid) == prev_off)
                    lo = mid;
                else
                    hi = mid;
            }
            assert_int_equal(ly_tz_offset_ms(z, hi), glibc_offset(spec, hi));
            assert_int_equal(ly_tz_offset_ms(z, hi - 1000), glibc_offset(spec, hi - 1000));
        }
        int64_t local = t + off, back = ly_tz_to_utc(z, local);
        if (back + ly_tz_offset_ms(z, back) != local || back > t)
            fail_msg("%s: %lld reads %lld, which maps to %lld", spec, (long long)t,
                     (long long)local, (long long)back);
        prev_t = t;
        prev_off = off;
    }
}

/* ---- tests ---- */

static void test_utc(void **state)
{
    (void)state;
    /* Built in: no zone files needed. */
    setenv("TZDIR", "/nonexistent", 1);
    const ly_tz *a = zone("UTC"), *b = zone("Etc/UTC");
    unsetenv("TZDIR");
    assert_string_equal(ly_tz_name(a), "UTC");
    assert_string_equal(ly_tz_name(b), "Etc/UTC");
    static const int64_t instants[] = {
        0, 1, -1, 1772953200000, 4102444800000, -62135596800000, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof instants / sizeof instants[0]; i++) {
        assert_int_equal(ly_tz_offset_ms(a, instants[i]), 0);
        assert_int_equal(ly_tz_offset_ms(b, instants[i]), 0);
    }
    assert_int_equal(ly_tz_to_utc(a, 1772953200000), 1772953200000);
    assert_int_equal(ly_tz_to_utc(b, -1), -1);
    const ly_tz *again = zone("UTC");
    assert_ptr_equal(a, again);
}

static void test_offsets(void **state)
{
    (void)state;
    static const struct {
        const char *zone, *utc;
        int64_t off_min;
    } cases[] = {
        /* New York, 2026: EST -> EDT on 8 March at 07:00Z, back on 1 November at 06:00Z. */
        {"America/New_York", "2026-01-15T12:00:00Z", -300},
        {"America/New_York", "2026-03-08T06:59:59.999Z", -300},
        {"America/New_York", "2026-03-08T07:00:00Z", -240},
        {"America/New_York", "2026-07-04T12:00:00Z", -240},
        {"America/New_York", "2026-11-01T05:59:59.999Z", -240},
        {"America/New_York", "2026-11-01T06:00:00Z", -300},
        /* Beyond the file's table (it ends in 2037): the footer's rule. */
        {"America/New_York", "2100-03-14T06:59:59.999Z", -300},
        {"America/New_York", "2100-03-14T07:00:00Z", -240},
        {"America/New_York", "2100-07-04T12:00:00Z", -240},
        {"America/New_York", "2100-11-07T05:59:59.999Z", -240},
        {"America/New_York", "2100-11-07T06:00:00Z", -300},
        {"America/New_York", "2999-01-01T00:00:00Z", -300},
        {"Europe/London", "2026-03-29T00:59:59.999Z", 0},
        {"Europe/London", "2026-03-29T01:00:00Z", 60},
        {"Europe/London", "2026-10-25T00:59:59.999Z", 60},
        {"Europe/London", "2026-10-25T01:00:00Z", 0},
        /* Lord Howe Island: +10:30, and only half an hour more in summer. */
        {"Australia/Lord_Howe", "2026-04-04T14:59:59.999Z", 660},
        {"Australia/Lord_Howe", "2026-04-04T15:00:00Z", 630},
        {"Australia/Lord_Howe", "2026-10-03T15:29:59.999Z", 630},
        {"Australia/Lord_Howe", "2026-10-03T15:30:00Z", 660},
        {"Australia/Lord_Howe", "2100-01-01T00:00:00Z", 660},
        {"Australia/Lord_Howe", "2100-04-03T14:59:59Z", 660},
        {"Australia/Lord_Howe", "2100-04-03T15:00:00Z", 630},
        {"Australia/Lord_Howe", "2100-07-01T00:00:00Z", 630},
        {"Australia/Lord_Howe", "2100-10-02T15:29:59Z", 630},
        {"Australia/Lord_Howe", "2100-10-02T15:30:00Z", 660},
        {"Asia/Kathmandu", "1985-06-01T00:00:00Z", 330},
        {"Asia/Kathmandu", "1986-06-01T00:00:00Z", 345},
        {"Asia/Kathmandu", "2026-06-01T00:00:00Z", 345},
        {"Asia/Kathmandu", "2100-06-01T00:00:00Z", 345},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = ly_tz_offset_ms(zone(cases[i].zone), at(cases[i].utc));
        if (got != cases[i].off_min * MN)
            fail_msg("%s at %s: %lld min, want %lld", cases[i].zone, cases[i].utc,
                     (long long)(got / MN), (long long)cases[i].off_min);
    }
}

static void test_to_utc(void **state)
{
    (void)state;
    /* Local wall-clock times are written as if they were UTC. */
    static const struct {
        const char *zone, *local, *utc;
    } cases[] = {
        {"UTC", "2026-03-08T02:30:00Z", "2026-03-08T02:30:00Z"},
        {"America/New_York", "2026-01-15T07:00:00Z", "2026-01-15T12:00:00Z"},
        /* Spring gap, 02:00 -> 03:00: skipped times read with EST, so they
         * land as far past 03:00 EDT as they were past 02:00. */
        {"America/New_York", "2026-03-08T01:59:59.999Z", "2026-03-08T06:59:59.999Z"},
        {"America/New_York", "2026-03-08T02:00:00Z", "2026-03-08T07:00:00Z"},
        {"America/New_York", "2026-03-08T02:30:00Z", "2026-03-08T07:30:00Z"},
        {"America/New_York", "2026-03-08T02:59:59.999Z", "2026-03-08T07:59:59.999Z"},
        {"America/New_York", "2026-03-08T03:00:00Z", "2026-03-08T07:00:00Z"},
        {"America/New_York", "2026-03-08T03:30:00Z", "2026-03-08T07:30:00Z"},
        /* Autumn overlap, 01:00..02:00 twice: the earlier (EDT) instant. */
        {"America/New_York", "2026-11-01T00:59:59.999Z", "2026-11-01T04:59:59.999Z"},
        {"America/New_York", "2026-11-01T01:00:00Z", "2026-11-01T05:00:00Z"},
        {"America/New_York", "2026-11-01T01:30:00Z", "2026-11-01T05:30:00Z"},
        {"America/New_York", "2026-11-01T01:59:59.999Z", "2026-11-01T05:59:59.999Z"},
        {"America/New_York", "2026-11-01T02:00:00Z", "2026-11-01T07:00:00Z"},
        {"America/New_York", "2100-03-14T02:30:00Z", "2100-03-14T07:30:00Z"},
        {"America/New_York", "2100-11-07T01:30:00Z", "2100-11-07T05:30:00Z"},
        {"America/New_York", "2100-11-07T02:30:00Z", "2100-11-07T07:30:00Z"},
        {"Europe/London", "2026-03-29T00:30:00Z", "2026-03-29T00:30:00Z"},
        {"Europe/London", "2026-03-29T01:30:00Z", "2026-03-29T01:30:00Z"},
        {"Europe/London", "2026-03-29T02:00:00Z", "2026-03-29T01:00:00Z"},
        {"Europe/London", "2026-10-25T01:30:00Z", "2026-10-25T00:30:00Z"},
        {"Europe/London", "2026-10-25T02:00:00Z", "2026-10-25T02:00:00Z"},
        /* Lord Howe: a 30-minute gap (02:00 -> 02:30) and overlap (02:00 -> 01:30). */
        {"Australia/Lord_Howe", "2026-10-04T01:59:00Z", "2026-10-03T15:29:00Z"},
        {"Australia/Lord_Howe", "2026-10-04T02:15:00Z", "2026-10-03T15:45:00Z"},
        {"Australia/Lord_Howe", "2026-10-04T02:30:00Z", "2026-10-03T15:30:00Z"},
        {"Australia/Lord_Howe", "2026-04-05T01:29:00Z", "2026-04-04T14:29:00Z"},
        {"Australia/Lord_Howe", "2026-04-05T01:45:00Z", "2026-04-04T14:45:00Z"},
        {"Australia/Lord_Howe", "2026-04-05T02:00:00Z", "2026-04-04T15:30:00Z"},
        {"Australia/Lord_Howe", "2100-01-01T00:00:00Z", "2099-12-31T13:00:00Z"},
        {"Asia/Kathmandu", "2026-06-01T05:45:00Z", "2026-06-01T00:00:00Z"},
        {"Asia/Kathmandu", "2026-01-01T00:00:00Z", "2025-12-31T18:15:00Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = ly_tz_to_utc(zone(cases[i].zone), at(cases[i].local));
        if (got != at(cases[i].utc)) {
            char buf[LY_TIME_BUFSZ];
            ly_time_format(got, buf);
            fail_msg("%s local %s: %s, want %s", cases[i].zone, cases[i].local, buf, cases[i].utc);
        }
    }
}

static void test_local_civil(void **state)
{
    (void)state;
    static const struct {
        const char *zone, *utc;
        int year, month, day, hour, minute, second, ms, weekday, yday;
    } cases[] = {
        {"UTC", "1970-01-01T00:00:00Z", 1970, 1, 1, 0, 0, 0, 0, 4, 1},
        {"UTC", "1969-12-31T23:59:59.999Z", 1969, 12, 31, 23, 59, 59, 999, 3, 365},
        {"UTC", "2000-01-01T12:00:00Z", 2000, 1, 1, 12, 0, 0, 0, 6, 1},
        {"UTC", "2024-02-29T08:09:10.011Z", 2024, 2, 29, 8, 9, 10, 11, 4, 60},
        {"UTC", "2024-12-31T00:00:00Z", 2024, 12, 31, 0, 0, 0, 0, 2, 366},
        {"UTC", "2026-11-22T10:09:00.123Z", 2026, 11, 22, 10, 9, 0, 123, 7, 326},
        {"UTC", "1900-01-01T00:00:00Z", 1900, 1, 1, 0, 0, 0, 0, 1, 1},
        {"UTC", "2100-12-31T00:00:00Z", 2100, 12, 31, 0, 0, 0, 0, 5, 365},
        /* Still Saturday evening in New York, already Sunday in UTC. */
        {"America/New_York", "2026-11-22T03:00:00Z", 2026, 11, 21, 22, 0, 0, 0, 6, 325},
        {"America/New_York", "2026-03-08T07:00:00Z", 2026, 3, 8, 3, 0, 0, 0, 7, 67},
        {"America/New_York", "2026-03-08T06:59:59.999Z", 2026, 3, 8, 1, 59, 59, 999, 7, 67},
        {"America/New_York", "2027-01-01T04:59:59Z", 2026, 12, 31, 23, 59, 59, 0, 4, 365},
        {"America/New_York", "2100-07-04T16:00:00Z", 2100, 7, 4, 12, 0, 0, 0, 7, 185},
        /* Already Monday on Lord Howe Island. */
        {"Australia/Lord_Howe", "2026-11-22T14:00:00Z", 2026, 11, 23, 1, 0, 0, 0, 1, 327},
        {"Asia/Kathmandu", "2026-12-31T18:14:59Z", 2026, 12, 31, 23, 59, 59, 0, 4, 365},
        {"Asia/Kathmandu", "2026-12-31T18:15:00Z", 2027, 1, 1, 0, 0, 0, 0, 5, 1},
        {"Europe/London", "2026-07-01T00:00:00Z", 2026, 7, 1, 1, 0, 0, 0, 3, 182},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ly_civil c;
        memset(&c, 0xff, sizeof c);
        ly_tz_local_civil(zone(cases[i].zone), at(cases[i].utc), &c);
        if (c.year != cases[i].year || c.month != cases[i].month || c.day != cases[i].day ||
            c.hour != cases[i].hour || c.minute != cases[i].minute || c.second != cases[i].second ||
            c.ms != cases[i].ms || c.weekday != cases[i].weekday || c.yday != cases[i].yday)
            fail_msg("%s %s: %04d-%02d-%02d %02d:%02d:%02d.%03d wd %d yd %d", cases[i].zone,
                     cases[i].utc, c.year, c.month, c.day, c.hour, c.minute, c.second, c.ms,
                     c.weekday, c.yday);
    }
}

/* Every day of four centuries: the weekday advances by one and the day of
 * the year restarts on 1 January. */
static void test_weekday_sequence(void **state)
{
    (void)state;
    const ly_tz *z = zone("UTC");
    ly_civil prev;
    ly_tz_local_civil(z, at("1899-12-31T12:00:00Z"), &prev);
    assert_int_equal(prev.weekday, 7);
    for (int64_t t = at("1900-01-01T12:00:00Z"); t < at("2300-01-01T00:00:00Z"); t += 24 * H) {
        ly_civil c;
        ly_tz_local_civil(z, t, &c);
        assert_int_equal(c.weekday, prev.weekday % 7 + 1);
        assert_int_equal(c.yday, c.month == 1 && c.day == 1 ? 1 : prev.yday + 1);
        prev = c;
    }
}

static void test_against_glibc(void **state)
{
    (void)state;
    static const char *zones[] = {
        "America/New_York", "Europe/London",     "Australia/Lord_Howe", "Asia/Kathmandu",
        "Europe/Dublin",    "America/Santiago",  "America/Nuuk",        "Africa/Casablanca",
        "Pacific/Chatham",  "America/St_Johns",  "Antarctica/Troll",    "Asia/Tehran",
        "Pacific/Apia",     "America/Sao_Paulo", "Europe/Moscow",       "Australia/Sydney",
    };
    for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
        if (!system_has(zones[i])) {
            print_message("skipping %s: not installed\n", zones[i]);
            continue;
        }
        char spec[128];
        snprintf(spec, sizeof spec, ":%s", zones[i]);
        sweep(zone(zones[i]), spec, "1900-01-01T00:00:00Z");
    }
}

/* Every rule form, each checked against glibc reading the same file. */
static void test_posix_rules(void **state)
{
    (void)state;
    static const struct {
        const char *name, *footer;
    } rules[] = {
        {"Fixed_East", "<+0530>-5:30"},
        {"Fixed_West", "<-0930>9:30"},
        {"Fixed_Seconds", "LMT-0:17:30"},
        {"US", "EST5EDT,M3.2.0,M11.1.0"},
        {"EU_Last", "CET-1CEST,M3.5.0,M10.5.0/3"},
        {"Julian", "XST3XDT,J60/0,J300/1:30"},
        {"Zero_Based", "XST3XDT,59/0,299/1"},
        {"Negative_Times", "<-02>2<-01>,M3.5.0/-1,M10.5.0/0"},
        {"Midnight_24", "<-04>4<-03>,M9.1.6/24,M4.1.6/24"},
        {"Long_Times", "<+00>0<+02>-2,M3.5.0/1,M10.5.0/3"},
        {"Negative_DST", "IST-1GMT0,M10.5.0,M3.5.0/1"},
        {"Southern", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0"},
        {"Explicit_DST", "AAA-3BBB-5,J100,J200"},
    };
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        write_rule_zone(rules[i].name, rules[i].footer);
        char spec[1100];
        snprintf(spec, sizeof spec, ":%s/Test/%s", tmpdir, rules[i].name);
        /* glibc computes rule dates as if every year before 1971 were 1970. */
        sweep(test_zone(rules[i].name), spec, "1971-01-01T00:00:00Z");
    }
}

/* Points where the rule forms differ: Jn never counts 29 February, n does. */
static void test_rule_days(void **state)
{
    (void)state;
    write_rule_zone("J60", "XST3XDT,J60/0,J300/0");
    write_rule_zone("D59", "XST3XDT,59/0,299/0");
    write_rule_zone("AllYear", "EST5EDT,0/0,J365/25");
    write_rule_zone("Last_Week", "AAA0BBB,M2.5.0/0,M8.5.6/0");
    /* Daylight time without rules: the United States' (glibc reads its
     * "posixrules" file here instead, so it is no reference). */
    write_rule_zone("US_Default", "EST5EDT");
    static const struct {
        const char *zone, *utc;
        int64_t off_min;
    } cases[] = {
        /* J60 is 1 March every year; 59 is 1 March, or 29 Feb in a leap year. */
        {"J60", "2023-03-01T02:59:59Z", -180},
        {"J60", "2023-03-01T03:00:00Z", -120},
        {"J60", "2024-02-29T12:00:00Z", -180},
        {"J60", "2024-03-01T03:00:00Z", -120},
        {"D59", "2023-03-01T03:00:00Z", -120},
        {"D59", "2024-02-29T02:59:59Z", -180},
        {"D59", "2024-02-29T03:00:00Z", -120},
        {"AllYear", "2026-01-01T00:00:00Z", -240},
        {"AllYear", "2026-01-01T04:59:59Z", -240},
        {"AllYear", "2026-01-01T05:00:00Z", -240},
        {"AllYear", "2026-07-01T00:00:00Z", -240},
        {"AllYear", "2100-12-31T23:00:00Z", -240},
        /* Week 5 means the last: 26 Feb 2023 and 28 Feb 2021 (both Sundays),
         * 26 Aug 2023 and 31 Aug 2024 (Saturdays). */
        {"Last_Week", "2023-02-25T23:59:59Z", 0},
        {"Last_Week", "2023-02-26T00:00:00Z", 60},
        {"Last_Week", "2021-02-27T23:59:59Z", 0},
        {"Last_Week", "2021-02-28T00:00:00Z", 60},
        {"Last_Week", "2023-08-25T22:59:59Z", 60},
        {"Last_Week", "2023-08-25T23:00:00Z", 0},
        {"Last_Week", "2024-08-30T22:59:59Z", 60},
        {"Last_Week", "2024-08-30T23:00:00Z", 0},
        {"US_Default", "2026-03-08T06:59:59Z", -300},
        {"US_Default", "2026-03-08T07:00:00Z", -240},
        {"US_Default", "2026-11-01T05:59:59Z", -240},
        {"US_Default", "2026-11-01T06:00:00Z", -300},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = ly_tz_offset_ms(test_zone(cases[i].zone), at(cases[i].utc));
        if (got != cases[i].off_min * MN)
            fail_msg("%s at %s: %lld min, want %lld", cases[i].zone, cases[i].utc,
                     (long long)(got / MN), (long long)cases[i].off_min);
    }
    /* All-year daylight time has no gap or overlap at the new year. */
    const ly_tz *z = test_zone("AllYear");
    assert_int_equal(ly_tz_to_utc(z, at("2026-01-01T00:30:00Z")), at("2026-01-01T04:30:00Z"));
    assert_int_equal(ly_tz_to_utc(z, at("2025-12-31T23:30:00Z")), at("2026-01-01T03:30:00Z"));
}

/* A table for the past and the footer for the future, in both file formats. */
static void test_table_and_footer(void **state)
{
    (void)state;
    static const struct ttype types[] = {{-18000, 0}, {-14400, 1}, {3600, 0}};
    static const int64_t times[] = {1000000000, 1010000000, 1020000000};
    static const unsigned char idx[] = {1, 0, 1};
    struct tzif v2 = {.version = '2',
                      .ntrans = 3,
                      .times = times,
                      .idx = idx,
                      .ntypes = 3,
                      .types = types,
                      .footer = "<+01>-1"};
    write_zone("V2", &v2);
    struct tzif v1 = v2;
    v1.version = 0;
    write_zone("V1", &v1);
    struct tzif empty = v2;
    empty.footer = "";
    write_zone("V2_No_Footer", &empty);
    /* Far ends folded: a "big bang" transition and one past year 2 million. */
    static const int64_t far_times[] = {-((int64_t)1 << 59), 1000000000, (int64_t)1 << 59};
    static const unsigned char far_idx[] = {1, 0, 2};
    struct tzif far = v2;
    far.times = far_times;
    far.idx = far_idx;
    write_zone("Far", &far);

    static const struct {
        const char *zone;
        int64_t t_s, off_s;
    } cases[] = {
        /* Before the first transition: type 0. */
        {"V2", 999999999, -18000},
        {"V2", 1000000000, -14400},
        {"V2", 1009999999, -14400},
        {"V2", 1010000000, -18000},
        {"V2", 1019999999, -18000},
        /* From the last transition on, the footer. */
        {"V2", 1020000000, 3600},
        {"V2", 4000000000, 3600},
        {"V1", 999999999, -18000},
        {"V1", 1000000000, -14400},
        {"V1", 1010000000, -18000},
        /* Without a footer the last transition's type lasts forever. */
        {"V1", 1020000000, -14400},
        {"V1", 4000000000, -14400},
        {"V2_No_Footer", 4000000000, -14400},
        {"Far", -1000000000000, -14400},
        {"Far", 999999999, -14400},
        {"Far", 1000000000, -18000},
        {"Far", 4000000000, -18000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = ly_tz_offset_ms(test_zone(cases[i].zone), cases[i].t_s * 1000);
        if (got != cases[i].off_s * 1000)
            fail_msg("%s at %lld: %lld, want %lld s", cases[i].zone, (long long)cases[i].t_s,
                     (long long)(got / 1000), (long long)cases[i].off_s);
    }
    /* The gap at the jump from -05:00 to +01:00. */
    const ly_tz *z = test_zone("V2");
    int64_t jump = 1020000000LL * 1000;
    assert_int_equal(ly_tz_to_utc(z, jump - 18000000 + 3 * H), jump + 3 * H);
    assert_int_equal(ly_tz_to_utc(z, jump + 3600000), jump);
}

static void test_unknown_refused(void **state)
{
    (void)state;
    static const char *names[] = {
        "",
        "Mars/Olympus_Mons",
        "America/Nowhere",
        "America",
        "America/",
        "/America/New_York",
        "America//New_York",
        "../../../etc/passwd",
        "/etc/passwd",
        "America/./New_York",
        "zone.tab",
        "tzdata.zi",
        "America/New York",
        "America/New_York\n",
        "utc",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const ly_tz *z = NULL;
        int rc = ly_tz_get(names[i], &z);
        if (rc != LY_EINVAL)
            fail_msg("\"%s\" gave %d", names[i], rc);
    }
    /* One character over the limit. */
    char long_name[130];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    const ly_tz *z;
    assert_int_equal(ly_tz_get(long_name, &z), LY_EINVAL);
    assert_int_equal(ly_tz_get(NULL, &z), LY_EINVAL);
    assert_int_equal(ly_tz_get("UTC", NULL), LY_EINVAL);
    /* Leap-second zones count a different second. */
    if (system_has("right/America/New_York"))
        assert_int_equal(ly_tz_get("right/America/New_York", &z), LY_EINVAL);
}

static void test_malformed_refused(void **state)
{
    (void)state;
    static const struct ttype types[] = {{-18000, 0}, {-14400, 1}};
    static const int64_t times[] = {1000000000, 1010000000};
    static const unsigned char idx[] = {1, 0};
    const struct tzif good = {.version = '2',
                              .ntrans = 2,
                              .times = times,
                              .idx = idx,
                              .ntypes = 2,
                              .types = types,
                              .footer = "EST5EDT,M3.2.0,M11.1.0"};
    unsigned char buf[8192];
    size_t len = tzif_build(&good, buf);
    write_file("Good", buf, len);
    const ly_tz *z;
    assert_int_equal(get_test_zone("Good", &z), 0);

    /* Damaged copies of the good file. */
    unsigned char bad[8192];
    memcpy(bad, buf, len);
    write_file("Truncated", bad, len - 30);
    write_file("Tiny", bad, 10);
    write_file("Empty", bad, 0);
    write_file("No_Final_Newline", bad, len - 1);
    bad[0] = 'X';
    write_file("Bad_Magic", bad, len);
    memcpy(bad, buf, len);
    bad[4] = '1';
    write_file("Bad_Version", bad, len);
    memcpy(bad, buf, len);
    memcpy(bad + len, "junk", 4);
    write_file("Trailing", bad, len + 4);

    static const char *bad_footers[] = {
        "EST",                        /* no offset */
        "ES5",                        /* abbreviation too short */
        "<+05",                       /* unclosed */
        "EST25",                      /* offset over 24h */
        "EST5:60",                    /* minutes */
        "EST5EDT,M3.2.0",             /* end missing */
        "EST5EDT,M13.2.0,M11.1.0",    /* month */
        "EST5EDT,M3.6.0,M11.1.0",     /* week */
        "EST5EDT,M3.2.7,M11.1.0",     /* weekday */
        "EST5EDT,J0,J100",            /* Jn from 1 */
        "EST5EDT,J366,J100",          /* Jn to 365 */
        "EST5EDT,366,100",            /* n to 365 */
        "EST5EDT,M3.2.0/168,M11.1.0", /* time over 167h */
        "EST5EDT,M3.2.0,M11.1.0,",    /* trailing */
        "EST5EDT;M3.2.0,M11.1.0",     /* separator */
        "EST 5",                      /* space */
    };
    for (size_t i = 0; i < sizeof bad_footers / sizeof bad_footers[0]; i++) {
        struct tzif f = good;
        f.footer = bad_footers[i];
        char name[32];
        snprintf(name, sizeof name, "Bad_Footer_%zu", i);
        write_zone(name, &f);
    }
    static const struct ttype bad_offset[] = {{-18000, 0}, {100000, 0}};
    static const struct ttype bad_dst[] = {{-18000, 0}, {-14400, 2}};
    static const unsigned char bad_idx[] = {1, 2};
    static const int64_t unsorted[] = {1010000000, 1000000000};
    static const int64_t repeated[] = {1000000000, 1000000000};
    struct tzif f = good;
    f.types = bad_offset;
    write_zone("Bad_Offset", &f);
    f = good;
    f.types = bad_dst;
    write_zone("Bad_Isdst", &f);
    f = good;
    f.idx = bad_idx;
    write_zone("Bad_Index", &f);
    f = good;
    f.times = unsorted;
    write_zone("Unsorted", &f);
    f = good;
    f.times = repeated;
    write_zone("Repeated", &f);
    f = good;
    f.ntypes = 0;
    f.ntrans = 0;
    write_zone("No_Types", &f);
    f = good;
    f.leapcnt = 1;
    write_zone("Leap_Seconds", &f);
    f = good;
    f.version = 0;
    f.leapcnt = 1;
    write_zone("Leap_Seconds_V1", &f);

    static const char *names[] = {
        "Truncated", "Tiny",         "Empty",           "No_Final_Newline",
        "Bad_Magic", "Bad_Version",  "Trailing",        "Bad_Offset",
        "Bad_Isdst", "Bad_Index",    "Unsorted",        "Repeated",
        "No_Types",  "Leap_Seconds", "Leap_Seconds_V1", "Missing",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int rc = get_test_zone(names[i], &z);
        if (rc != LY_EINVAL)
            fail_msg("%s gave %d", names[i], rc);
    }
    for (size_t i = 0; i < sizeof bad_footers / sizeof bad_footers[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "Bad_Footer_%zu", i);
        int rc = get_test_zone(name, &z);
        if (rc != LY_EINVAL)
            fail_msg("footer \"%s\" gave %d", bad_footers[i], rc);
    }
}

/* Loaded once: the same pointer every time, even after the file is gone.
 * The file has no transitions, so its footer rules every instant. */
static void test_cached(void **state)
{
    (void)state;
    static const struct ttype t0[] = {{0, 0}};
    const struct tzif f = {.version = '2', .ntypes = 1, .types = t0, .footer = "<+03>-3"};
    write_zone("Cached", &f);
    const ly_tz *a = test_zone("Cached");
    char path[1024];
    snprintf(path, sizeof path, "%s/Test/Cached", tmpdir);
    assert_int_equal(unlink(path), 0);
    const ly_tz *b = test_zone("Cached");
    assert_ptr_equal(a, b);
    assert_string_equal(ly_tz_name(b), "Test/Cached");
    assert_int_equal(ly_tz_offset_ms(b, 0), 3 * H);
    assert_ptr_equal(zone("America/New_York"), zone("America/New_York"));
}

/* Threads racing to load the same zones all get one pointer per zone. */
static const char *const race_zones[] = {"Europe/Paris", "Asia/Tokyo", "America/Chicago",
                                         "Africa/Nairobi"};

static void *race(void *arg)
{
    const ly_tz **out = arg;
    for (size_t i = 0; i < 4; i++)
        if (ly_tz_get(race_zones[i], &out[i]) != 0)
            out[i] = NULL;
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    enum { N = 8 };
    pthread_t th[N];
    const ly_tz *got[N][4];
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race, got[i]), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < N; i++)
        for (size_t j = 0; j < 4; j++) {
            if (!system_has(race_zones[j]))
                continue;
            assert_non_null(got[i][j]);
            assert_ptr_equal(got[i][j], got[0][j]);
            assert_string_equal(ly_tz_name(got[i][j]), race_zones[j]);
        }
}

/* Instants far outside any calendar are clamped, not overflowed. */
static void test_extremes(void **state)
{
    (void)state;
    const ly_tz *z = zone("America/New_York");
    int64_t o = ly_tz_offset_ms(z, INT64_MAX);
    assert_true(o == -5 * H || o == -4 * H);
    o = ly_tz_offset_ms(z, INT64_MIN);
    assert_true(o > -6 * H && o < -4 * H);
    ly_civil c;
    ly_tz_local_civil(z, INT64_MAX, &c);
    assert_true(c.year > 2000000);
    ly_tz_local_civil(z, INT64_MIN, &c);
    assert_true(c.year < -2000000);
    int64_t u = ly_tz_to_utc(z, INT64_MAX);
    assert_true(u > 0);
    u = ly_tz_to_utc(z, INT64_MIN);
    assert_true(u < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utc),
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_to_utc),
        cmocka_unit_test(test_local_civil),
        cmocka_unit_test(test_weekday_sequence),
        cmocka_unit_test(test_against_glibc),
        cmocka_unit_test(test_posix_rules),
        cmocka_unit_test(test_rule_days),
        cmocka_unit_test(test_table_and_footer),
        cmocka_unit_test(test_unknown_refused),
        cmocka_unit_test(test_malformed_refused),
        cmocka_unit_test(test_cached),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_extremes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
