/* Normalisation of member identifiers and small settings values, so that one
 * customer is found however the till typed them. Pure functions, thread-safe.
 * Each returns 0 and writes a NUL-terminated result to out, or LY_EINVAL
 * (out unspecified) when the input cannot be what it claims to be; out of
 * space is LY_EINVAL too. */
#ifndef LOYAL_NORMALIZE_H
#define LOYAL_NORMALIZE_H

#include <stddef.h>

/* Trimmed and case-folded ("  Ann@Example.COM " -> "ann@example.com"); one
 * '@', a local part of 1..64 printable non-space ASCII characters without
 * leading, trailing or doubled dots, a domain of dot-separated labels
 * (letters, digits, '-', not starting or ending with '-') with at least one
 * dot and a last label that is not all digits, at most 254 characters in all. */
int ly_norm_email(const char *in, char *out, size_t outlen);

/* To E.164 ("+14155550123"). Spaces, dots, dashes, slashes and parentheses
 * are ignored; a leading "+" or "00" introduces the country code, otherwise
 * default_cc (digits, e.g. "1") is prepended after dropping one national
 * trunk "0" (and, for "1", an 11-digit number starting with 1 is taken as
 * already including it). Refused: letters or other characters, a country
 * code starting with 0, fewer than 8 or more than 15 digits in all, and for
 * country code 1 anything but 10 national digits whose area code and
 * exchange do not start with 0 or 1. Other countries get length checks only
 * (4..14 national digits): we carry no numbering plan beyond NANP, so where the
 * trunk prefix is not a droppable "0" (Italy keeps it, Russia dials 8), the
 * number must be given in international form. "+44 (0)20..." drops the "(0)". */
int ly_norm_phone(const char *in, const char *default_cc, char *out, size_t outlen);

/* Card numbers: spaces and dashes dropped, letters upper-cased; 4..64
 * characters of [A-Z0-9] remain. */
int ly_norm_card(const char *in, char *out, size_t outlen);

/* ISO 4217 code: exactly three ASCII letters, returned upper case. */
int ly_norm_currency(const char *in, char *out, size_t outlen);

/* A calendar date YYYY-MM-DD that exists (leap years included), years 1900..9999. */
int ly_valid_date(const char *in);

/* An IANA time zone name ("UTC", "Europe/Paris", "America/Argentina/Salta"):
 * [A-Za-z0-9_+-] segments joined by '/', no "..", and, where the system has
 * /usr/share/zoneinfo, a zone it knows. Returns 0 or LY_EINVAL. */
int ly_valid_timezone(const char *in);

#endif
