/* Tests for src/core/normalize.c: one spelling per identifier, and refusal of
 * what cannot be an email, a phone number, a card, a currency, a date or a
 * time zone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "loyal/error.h"
#include "loyal/normalize.h"

/* want == NULL: the input must be refused. */
struct norm_case {
    const char *in;
    const char *want;
};

static void test_email(void **state)
{
    (void)state;
    static char fill[101], long_local[80], long_label[80], max_total[300], too_long[300];
    memset(fill, 'x', 100);
    snprintf(long_local, sizeof long_local, "%.65s@example.com", fill);
    snprintf(long_label, sizeof long_label, "ann@%.64s.com", fill);
    /* 64 + 1 + 189 = 254 characters: the longest address accepted. */
    snprintf(max_total, sizeof max_total, "%.64s@%.63s.%.63s.%.57s.com", fill, fill, fill, fill);
    snprintf(too_long, sizeof too_long, "%.64s@%.63s.%.63s.%.58s.com", fill, fill, fill, fill);

    const struct norm_case cases[] = {
        {"ann@example.com", "ann@example.com"},
        {"  Ann@Example.COM ", "ann@example.com"},
        {"\tANN@EXAMPLE.COM\r\n", "ann@example.com"},
        {"first.last@example.co.uk", "first.last@example.co.uk"},
        {"a+tag@example.com", "a+tag@example.com"},
        {"o'brien@example.ie", "o'brien@example.ie"},
        {"x@sub-domain.example.com", "x@sub-domain.example.com"},
        {"a@b.co", "a@b.co"},
        {"1@2.io", "1@2.io"},
        {"a@123.example", "a@123.example"},
        {"user_name-1!#$%&*/=?^`{|}~@example.org", "user_name-1!#$%&*/=?^`{|}~@example.org"},
        {"a@xn--bcher-kva.example", "a@xn--bcher-kva.example"},
        {max_total, max_total},
        {"", NULL},
        {"   ", NULL},
        {"ann", NULL},
        {"ann@", NULL},
        {"@example.com", NULL},
        {"ann@@example.com", NULL},
        {"ann@bob@example.com", NULL},
        {"ann@localhost", NULL}, /* no dot in the domain */
        {"ann@example..com", NULL},
        {"ann@.example.com", NULL},
        {"ann@example.com.", NULL},
        {"ann@-example.com", NULL},
        {"ann@example-.com", NULL},
        {"ann@exa_mple.com", NULL},
        {"ann@192.168.0.1", NULL}, /* an address, not a domain */
        {"ann@[192.168.0.1]", NULL},
        {"ann@example.123", NULL}, /* all-digit TLD */
        {"ann.@example.com", NULL},
        {".ann@example.com", NULL},
        {"an..n@example.com", NULL},
        {"a n@example.com", NULL},
        {"ann@exa mple.com", NULL},
        {"ann\x01@example.com", NULL},
        {"ann\x7f@example.com", NULL},
        {"jos\xc3\xa9@example.com", NULL}, /* non-ASCII local part */
        {"ann@b\xc3\xbc"
         "cher.example",
         NULL}, /* IDN must come as xn-- */
        {long_local, NULL},
        {long_label, NULL}, /* a DNS label is at most 63 characters */
        {too_long, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[300];
        int rc = ly_norm_email(cases[i].in, out, sizeof out);
        if (!cases[i].want && rc != LY_EINVAL)
            fail_msg("accepted \"%s\" as \"%s\"", cases[i].in, out);
        if (cases[i].want && (rc != 0 || strcmp(out, cases[i].want) != 0))
            fail_msg("\"%s\": rc %d \"%s\", want \"%s\"", cases[i].in, rc, rc ? "" : out,
                     cases[i].want);
    }
    assert_int_equal(strlen(max_total), 254);
    assert_int_equal(strlen(too_long), 255);
    char out[16];
    assert_int_equal(ly_norm_email("ann@example.com", out, 15), LY_EINVAL); /* no room */
    assert_int_equal(ly_norm_email("ann@example.com", out, 16), 0);
    assert_int_equal(ly_norm_email(NULL, out, sizeof out), LY_EINVAL);
}

struct phone_case {
    const char *in, *cc, *want;
};

static void test_phone(void **state)
{
    (void)state;
    static const struct phone_case cases[] = {
        /* NANP */
        {"(415) 555-0123", "1", "+14155550123"},
        {"415-555-0123", "1", "+14155550123"},
        {"415.555.0123", "1", "+14155550123"},
        {"415/555 0123", "1", "+14155550123"},
        {"4155550123", "1", "+14155550123"},
        {"1-415-555-0123", "1", "+14155550123"},
        {"1 (415) 555-0123", "1", "+14155550123"},
        {"+1 415 555 0123", "1", "+14155550123"},
        {"+1 (415) 555-0123", "44", "+14155550123"},
        {"  +14155550123  ", "1", "+14155550123"},
        {"001 415 555 0123", "1", "+14155550123"},
        {"+1 212 200 0000", "1", "+12122000000"},
        {"+1 999 999 9999", "1", "+19999999999"},
        /* elsewhere */
        {"+44 20 7946 0958", "1", "+442079460958"},
        {"0044 20 7946 0958", "1", "+442079460958"},
        {"020 7946 0958", "44", "+442079460958"},
        {"+44 (0)20 7946 0958", "1", "+442079460958"},
        {"0044 (0)20 7946 0958", "1", "+442079460958"},
        {"(+44) 20 7946 0958", "1", "+442079460958"},
        {"06 12 34 56 78", "33", "+33612345678"},
        {"+33 6 12 34 56 78", "1", "+33612345678"},
        {"030 123456", "49", "+4930123456"},
        {"+49 30 12345678", "1", "+493012345678"},
        {"+353 1 234 5678", "1", "+35312345678"},
        {"+7 495 123-45-67", "1", "+74951234567"},
        {"+86 10 1234 5678", "1", "+861012345678"},
        {"+39 06 1234 5678", "1", "+390612345678"},    /* Italy keeps its 0 */
        {"+354 123 4567", "1", "+3541234567"},         /* 10 digits, 3-digit code */
        {"+683 4002", "1", NULL},                      /* 7 digits in all: below our minimum of 8 */
        {"+49 123456789012345", "1", NULL},            /* 17 digits */
        {"+4912345678901234", "1", NULL},              /* 16 digits */
        {"+491234567890123", "1", "+491234567890123"}, /* 15 digits */
        {"+44 123", "1", NULL},                        /* too short */
        {"+47 2212 3456", "1", "+4722123456"},
        /* refused */
        {"abc", "1", NULL},
        {"12345", "1", NULL},
        {"+0123456789", "1", NULL},
        {"00 0123456789", "1", NULL},
        {"555-0123", "1", NULL},
        {"+1 015 555 0123", "1", NULL},  /* area code starting 0 */
        {"+1 115 555 0123", "1", NULL},  /* area code starting 1 */
        {"+1 415 055 0123", "1", NULL},  /* exchange starting 0 */
        {"+1 415 155 0123", "1", NULL},  /* exchange starting 1 */
        {"+1 415 555 01234", "1", NULL}, /* 11 national digits */
        {"+1 415 555 012", "1", NULL},
        {"2-415-555-0123", "1", NULL},   /* 11 digits not starting 1 */
        {"1234567890123456", "1", NULL}, /* more than 15 digits */
        {"+", "1", NULL},
        {"", "1", NULL},
        {"   ", "1", NULL},
        {"415-CALL-NOW", "1", NULL},
        {"++14155550123", "1", NULL},
        {"+1+4155550123", "1", NULL},
        {"1+4155550123", "1", NULL},
        {"415 555 0123+", "1", NULL},
        {"415_555_0123", "1", NULL},
        {"415,555,0123", "1", NULL},
        {"415-555-0123 ext 9", "1", NULL},
        {"415-555-0123#9", "1", NULL},
        {"\xef\xbc\x94"
         "155550123",
         "1", NULL}, /* full-width digit */
        {"+44 (0)20 7946 0958x", "1", NULL},
        /* default country code must itself be one */
        {"4155550123", "", NULL},
        {"4155550123", "01", NULL},
        {"4155550123", "+1", NULL},
        {"4155550123", "1a", NULL},
        {"20 7946 0958", "4", NULL}, /* not a country code */
        {"20 7946 0958", "4444", NULL},
        {"020 7946 0958", "44", "+442079460958"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[20];
        int rc = ly_norm_phone(cases[i].in, cases[i].cc, out, sizeof out);
        if (!cases[i].want && rc != LY_EINVAL)
            fail_msg("cc %s: accepted \"%s\" as \"%s\"", cases[i].cc, cases[i].in, out);
        if (cases[i].want && (rc != 0 || strcmp(out, cases[i].want) != 0))
            fail_msg("cc %s: \"%s\": rc %d \"%s\", want \"%s\"", cases[i].cc, cases[i].in, rc,
                     rc ? "" : out, cases[i].want);
    }
    char out[13];
    assert_int_equal(ly_norm_phone("4155550123", "1", out, 12), LY_EINVAL);
    assert_int_equal(ly_norm_phone("4155550123", "1", out, 13), 0);
    assert_string_equal(out, "+14155550123");
    assert_int_equal(ly_norm_phone(NULL, "1", out, sizeof out), LY_EINVAL);
    assert_int_equal(ly_norm_phone("4155550123", NULL, out, sizeof out), LY_EINVAL);
}

static void test_card(void **state)
{
    (void)state;
    static char too_long[80], longest[80];
    memset(too_long, '7', 65);
    memset(longest, 'z', 64);
    static const char longest_up[] =
        "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ";
    const struct norm_case cases[] = {
        {"1234", "1234"},
        {"4000 1234 5678 9010", "4000123456789010"},
        {"ab-12-cd", "AB12CD"},
        {" gold 42 ", "GOLD42"},
        {"--12--34--", "1234"},
        {longest, longest_up},
        {"", NULL},
        {"123", NULL},
        {"1 2 3", NULL},
        {"----", NULL},
        {"1234.5678", NULL},
        {"1234_5678", NULL},
        {"1234\t5678", NULL},
        {"CAFÉ1234", NULL},
        {too_long, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[80];
        int rc = ly_norm_card(cases[i].in, out, sizeof out);
        if (!cases[i].want && rc != LY_EINVAL)
            fail_msg("accepted \"%s\" as \"%s\"", cases[i].in, out);
        if (cases[i].want && (rc != 0 || strcmp(out, cases[i].want) != 0))
            fail_msg("\"%s\": rc %d, want \"%s\"", cases[i].in, rc, cases[i].want);
    }
    char out[5];
    assert_int_equal(ly_norm_card("12345", out, sizeof out), LY_EINVAL);
    assert_int_equal(ly_norm_card("1234", out, sizeof out), 0);
}

static void test_currency(void **state)
{
    (void)state;
    static const struct norm_case cases[] = {
        {"USD", "USD"}, {"usd", "USD"}, {"eUr", "EUR"}, {"", NULL},
        {"US", NULL},   {"USDX", NULL}, {" USD", NULL}, {"USD ", NULL},
        {"U$D", NULL},  {"840", NULL},  {"U-S", NULL},  {"ÉUR", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[4];
        int rc = ly_norm_currency(cases[i].in, out, sizeof out);
        if (!cases[i].want && rc != LY_EINVAL)
            fail_msg("accepted \"%s\"", cases[i].in);
        if (cases[i].want && (rc != 0 || strcmp(out, cases[i].want) != 0))
            fail_msg("\"%s\": rc %d, want \"%s\"", cases[i].in, rc, cases[i].want);
    }
    char small[3];
    assert_int_equal(ly_norm_currency("USD", small, sizeof small), LY_EINVAL);
}

static void test_date(void **state)
{
    (void)state;
    static const char *const good[] = {
        "2000-02-29", "2024-02-29", "1996-02-29", "1900-02-28", "1900-01-01",
        "9999-12-31", "2026-01-31", "2026-04-30", "2026-12-31", "1984-07-04",
    };
    static const char *const bad[] = {
        "1900-02-29",
        "2100-02-29",
        "2023-02-29",
        "2024-02-30",
        "2026-04-31",
        "2026-06-31",
        "2026-09-31",
        "2026-11-31",
        "2026-01-32",
        "2026-00-10",
        "2026-13-01",
        "2026-01-00",
        "1899-12-31",
        "0001-01-01",
        "2026-1-01",
        "2026-01-1",
        "26-01-01",
        "2026/01/01",
        "2026-01-01T00:00:00Z",
        " 2026-01-01",
        "2026-01-01 ",
        "",
        "abcd-ef-gh",
        "20260101",
        "+026-01-01",
        "-2026-01-01",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (ly_valid_date(good[i]) != 0)
            fail_msg("refused %s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (ly_valid_date(bad[i]) != LY_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    assert_int_equal(ly_valid_date(NULL), LY_EINVAL);
}

static void test_timezone(void **state)
{
    (void)state;
    static const char *const shaped_badly[] = {
        "",
        "/",
        "Europe/",
        "/Europe/Paris",
        "Europe//Paris",
        "../etc/passwd",
        "Europe/../../etc/passwd",
        "Europe/Paris ",
        "Europe Paris",
        "Europe\\Paris",
        "Europe/Paris\n",
        "zone.tab",
        "Etc/GMT+5;rm",
        "Europe/Pärís",
    };
    for (size_t i = 0; i < sizeof shaped_badly / sizeof shaped_badly[0]; i++)
        if (ly_valid_timezone(shaped_badly[i]) != LY_EINVAL)
            fail_msg("accepted \"%s\"", shaped_badly[i]);
    assert_int_equal(ly_valid_timezone(NULL), LY_EINVAL);

    if (access("/usr/share/zoneinfo/UTC", F_OK) != 0) {
        /* No database here: only the shape can be checked. */
        assert_int_equal(ly_valid_timezone("America/New_York"), 0);
        return;
    }
    static const char *const known[] = {
        "UTC",
        "Europe/Paris",
        "America/New_York",
        "America/Argentina/Salta",
        "Asia/Kolkata",
        "Etc/GMT+5",
        "Etc/GMT-14",
        "America/Port-au-Prince",
        "Australia/Lord_Howe",
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (ly_valid_timezone(known[i]) != 0)
            fail_msg("refused %s", known[i]);
    static const char *const unknown[] = {
        "Mars/Olympus_Mons", "Europe/Pariss", "Europe", "America", "utc_",
        "leapseconds", /* a data file beside the zones, not a zone */
        "SECURITY",
    };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        if (ly_valid_timezone(unknown[i]) != LY_EINVAL)
            fail_msg("accepted \"%s\"", unknown[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email), cmocka_unit_test(test_phone),
        cmocka_unit_test(test_card),  cmocka_unit_test(test_currency),
        cmocka_unit_test(test_date),  cmocka_unit_test(test_timezone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
