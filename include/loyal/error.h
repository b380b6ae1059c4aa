/* Errors: every fallible function returns 0 or a negative LY_E* code and, when
 * the caller passed one, fills a ly_error with the wire code, the offending
 * field and a message meant for a person. Thread-safe (no globals). */
#ifndef LOYAL_ERROR_H
#define LOYAL_ERROR_H

#include <stddef.h>

enum {
    LY_OK = 0,
    LY_EINVAL = -1,     /* malformed input: 400 */
    LY_EAUTH = -2,      /* no or bad key: 401 */
    LY_EFORBIDDEN = -3, /* key lacks the scope: 403 */
    LY_ENOTFOUND = -4,  /* 404 */
    LY_EMETHOD = -5,    /* route exists, method does not: 405 */
    LY_ECONFLICT = -6,  /* uniqueness or idempotency conflict: 409 */
    LY_ETOOBIG = -7,    /* body over the limit: 413 */
    LY_EREFUSED = -8,   /* well-formed but refused by a business rule: 422 */
    LY_ELIMIT = -9,     /* rate limited: 429 */
    LY_ESTORE = -10,    /* storage unavailable or failing: 503 */
    LY_ENOMEM = -11,    /* out of memory: 503 */
    LY_ERETRY = -12,    /* transient (serialization failure, deadlock, busy): retry */
    LY_EINTERNAL = -13, /* a bug: 500 */
};

typedef struct ly_error {
    int rc;
    char code[48];     /* wire code, e.g. "unknown_field" */
    char field[96];    /* offending field, "" when none */
    char message[320]; /* for a person */
} ly_error;

/* Sets err (when not NULL) and returns rc, so callers can `return ly_error_set(...)`. */
int ly_error_set(ly_error *err, int rc, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void ly_error_clear(ly_error *err);
/* HTTP status for an LY_E* code. */
int ly_error_http_status(int rc);
/* Default wire code for an LY_E* code ("invalid_request", "not_found", ...). */
const char *ly_error_default_code(int rc);

#endif
