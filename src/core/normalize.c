/* One canonical spelling for each member identifier (email, phone, card) and
 * for small settings values, so that lookups match however a till typed them.
 * Deliberately conservative: refusing a doubtful value beats storing two. */
#include "loyal/normalize.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "loyal/error.h"

#define ZONEINFO_DIR "/usr/share/zoneinfo"

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char to_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static char to_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Domain: LDH labels of 1..63 characters, at least two of them, and a last
 * label that is not all digits (so "1.2.3.4" is not taken for a domain). */
static int valid_domain(const char *d, size_t len)
{
    size_t labels = 0, i = 0;
    while (i <= len) {
        size_t start = i;
        int all_digits = 1;
        while (i < len && d[i] != '.') {
            if (!is_alpha(d[i]) && !is_digit(d[i]) && d[i] != '-')
                return 0;
            all_digits &= is_digit(d[i]);
            i++;
        }
        size_t n = i - start;
        if (n == 0 || n > 63 || d[start] == '-' || d[i - 1] == '-')
            return 0;
        labels++;
        if (i == len)
            return labels >= 2 && !all_digits;
        i++; /* the dot */
    }
    return 0;
}

/* Local part: printable ASCII only (no SMTPUTF8 addresses), and the dot rules
 * of RFC 5322's dot-atom so that "a..b" and ".a" are not stored as members. */
static int valid_local(const char *l, size_t len)
{
    if (len < 1 || len > 64 || l[0] == '.' || l[len - 1] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)l[i];
        if (c < 0x21 || c > 0x7e || c == '@')
            return 0;
        if (c == '.' && l[i + 1] == '.')
            return 0;
    }
    return 1;
}

int ly_norm_email(const char *in, char *out, size_t outlen)
{
    if (!in)
        return LY_EINVAL;
    while (is_space(*in))
        in++;
    size_t len = strlen(in);
    while (len > 0 && is_space(in[len - 1]))
        len--;
    if (len == 0 || len > 254 || len + 1 > outlen)
        return LY_EINVAL;
    const char *at = memchr(in, '@', len);
    if (!at)
        return LY_EINVAL;
    size_t llen = (size_t)(at - in);
    if (!valid_local(in, llen) || !valid_domain(at + 1, len - llen - 1))
        return LY_EINVAL;
    for (size_t i = 0; i < len; i++)
        out[i] = to_lower(in[i]);
    out[len] = '\0';
    return 0;
}

/* Length of the E.164 country code that starts `d`. Codes are prefix-free:
 * 1 and 7 stand alone, the two-digit ones are listed, everything else has
 * three digits. This is the ITU assignment, not a numbering plan. */
static size_t cc_len(const char *d)
{
    static const char two_digit[][3] = {
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46",
        "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
        "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98"};
    if (d[0] == '1' || d[0] == '7')
        return 1;
    for (size_t i = 0; i < sizeof two_digit / sizeof two_digit[0]; i++)
        if (d[0] == two_digit[i][0] && d[1] == two_digit[i][1])
            return 2;
    return 3;
}

/* A complete number, country code first. Only NANP (+1) is checked beyond
 * lengths: we carry no other country's numbering plan, so elsewhere a number
 * of plausible length is accepted as typed. */
static int valid_e164(const char *d, size_t n)
{
    if (n < 8 || n > 15 || d[0] == '0')
        return 0;
    size_t cl = cc_len(d);
    const char *nat = d + cl;
    size_t nlen = n - cl;
    if (cl == 1 && d[0] == '1')
        return nlen == 10 && nat[0] >= '2' && nat[3] >= '2';
    return nlen >= 4 && nlen <= 14;
}

#define PHONE_MAX_DIGITS 15

int ly_norm_phone(const char *in, const char *default_cc, char *out, size_t outlen)
{
    char digits[PHONE_MAX_DIGITS + 4];
    size_t n = 0;
    int plus = 0;
    if (!in || !default_cc)
        return LY_EINVAL;
    for (const char *p = in; *p; p++) {
        char c = *p;
        if (is_digit(c)) {
            /* Room for "00" plus a full number; anything longer is refused. */
            if (n >= sizeof digits - 1)
                return LY_EINVAL;
            digits[n++] = c;
        } else if (c == '+') {
            if (plus || n > 0)
                return LY_EINVAL;
            plus = 1;
        } else if (c == '(' && p[1] == '0' && p[2] == ')' &&
                   (plus ? n > 0 : n > 2 && digits[0] == '0' && digits[1] == '0')) {
            /* "+44 (0)20 ...": the bracketed trunk zero is not dialled from abroad. */
            p += 2;
        } else if (!(c == ' ' || c == '.' || c == '-' || c == '/' || c == '(' || c == ')')) {
            return LY_EINVAL;
        }
    }
    digits[n] = '\0';

    char full[PHONE_MAX_DIGITS + 1];
    const char *src = digits;
    size_t len = n;
    if (plus || (n >= 2 && digits[0] == '0' && digits[1] == '0')) {
        if (!plus) {
            src += 2;
            len -= 2;
        }
        if (len > PHONE_MAX_DIGITS)
            return LY_EINVAL;
        memcpy(full, src, len);
    } else {
        size_t cl = strlen(default_cc);
        if (cl == 0 || cl > 3 || default_cc[0] == '0' || strspn(default_cc, "0123456789") != cl ||
            cc_len(default_cc) != cl)
            return LY_EINVAL;
        if (strcmp(default_cc, "1") == 0 && len == 11 && src[0] == '1') {
            src++;
            len--;
        } else if (len > 0 && src[0] == '0') {
            src++;
            len--;
        }
        if (cl + len > PHONE_MAX_DIGITS)
            return LY_EINVAL;
        memcpy(full, default_cc, cl);
        memcpy(full + cl, src, len);
        len += cl;
    }
    if (!valid_e164(full, len) || len + 2 > outlen)
        return LY_EINVAL;
    out[0] = '+';
    memcpy(out + 1, full, len);
    out[len + 1] = '\0';
    return 0;
}

int ly_norm_card(const char *in, char *out, size_t outlen)
{
    size_t n = 0;
    if (!in)
        return LY_EINVAL;
    for (; *in; in++) {
        if (*in == ' ' || *in == '-')
            continue;
        if (!is_alpha(*in) && !is_digit(*in))
            return LY_EINVAL;
        if (n >= 64 || n + 1 >= outlen)
            return LY_EINVAL;
        out[n++] = to_upper(*in);
    }
    if (n < 4)
        return LY_EINVAL;
    out[n] = '\0';
    return 0;
}

int ly_norm_currency(const char *in, char *out, size_t outlen)
{
    if (!in || outlen < 4 || !is_alpha(in[0]) || !is_alpha(in[1]) || !is_alpha(in[2]) ||
        in[3] != '\0')
        return LY_EINVAL;
    for (int i = 0; i < 3; i++)
        out[i] = to_upper(in[i]);
    out[3] = '\0';
    return 0;
}

int ly_valid_date(const char *in)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!in || strlen(in) != 10 || in[4] != '-' || in[7] != '-')
        return LY_EINVAL;
    int v[3] = {0, 0, 0};
    static const int start[3] = {0, 5, 8}, width[3] = {4, 2, 2};
    for (int f = 0; f < 3; f++)
        for (int i = start[f]; i < start[f] + width[f]; i++) {
            if (!is_digit(in[i]))
                return LY_EINVAL;
            v[f] = v[f] * 10 + (in[i] - '0');
        }
    int y = v[0], m = v[1], d = v[2];
    if (y < 1900 || m < 1 || m > 12 || d < 1)
        return LY_EINVAL;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int max = dim[m - 1] + (m == 2 && leap);
    return d <= max ? 0 : LY_EINVAL;
}

/* A compiled zone starts with "TZif"; this keeps the data files that share
 * the directory (leapseconds, SECURITY...) from passing for zones. */
static int zoneinfo_knows(const char *name)
{
    char path[sizeof ZONEINFO_DIR + 1 + 128];
    snprintf(path, sizeof path, "%s/%s", ZONEINFO_DIR, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char magic[4];
    ssize_t r = read(fd, magic, sizeof magic);
    close(fd);
    return r == 4 && memcmp(magic, "TZif", 4) == 0;
}

int ly_valid_timezone(const char *in)
{
    if (!in)
        return LY_EINVAL;
    size_t len = strlen(in);
    if (len == 0 || len > 128)
        return LY_EINVAL;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '/') {
            if (i == 0 || i == len - 1 || in[i + 1] == '/')
                return LY_EINVAL;
        } else if (!is_alpha(c) && !is_digit(c) && c != '_' && c != '+' && c != '-') {
            return LY_EINVAL;
        }
    }
    if (access(ZONEINFO_DIR, F_OK) != 0)
        return 0;
    return zoneinfo_knows(in) ? 0 : LY_EINVAL;
}
