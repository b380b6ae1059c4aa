/* Strict JSON in, for request bodies: one parser configuration (duplicate
 * keys rejected, invalid UTF-8 rejected, NUL in strings rejected, integers
 * beyond 64 bits rejected) and table-driven checking of an object's fields,
 * so every handler refuses unknown fields and wrong types the same way.
 * Thread-safe; returned json_t values are owned by the caller (json_decref). */
#ifndef LOYAL_JSON_H
#define LOYAL_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "loyal/error.h"

/* Parses a request body that must be a JSON object. Errors (all LY_EINVAL):
 *   "empty_body"     len == 0 or only whitespace
 *   "invalid_json"   syntax, bad UTF-8, duplicate key, NUL: the message says
 *                    "line L, column C: <what>"; a duplicate key also names
 *                    the key in err->field
 *   "number_out_of_range"  an integer that does not fit in 64 bits (line/column
 *                    in the message)
 *   "invalid_type"   valid JSON that is not an object */
int ly_json_parse_object(const char *buf, size_t len, json_t **out, ly_error *err);

enum ly_json_type {
    LY_JSON_STRING = 1,
    LY_JSON_INTEGER, /* a JSON integer (1.0 and 1e3 are not) */
    LY_JSON_BOOLEAN,
    LY_JSON_OBJECT,
    LY_JSON_ARRAY,
    LY_JSON_ANY,
};

enum {
    LY_FIELD_REQUIRED = 1, /* must be present */
    LY_FIELD_NULLABLE = 2, /* null is accepted (and means "clear" on a PATCH) */
};

typedef struct ly_json_field {
    const char *name;
    int type;       /* enum ly_json_type */
    int flags;      /* LY_FIELD_* */
    size_t max_len; /* strings: maximum length in characters, 0 for no limit */
} ly_json_field;

/* Checks obj against a table ending with a {NULL} row. Errors (LY_EINVAL,
 * err->field set to the member's name, prefixed with `prefix` and a dot when
 * prefix is not NULL, e.g. "earn.points"):
 *   "unknown_field", "invalid_type", "missing_field", "too_long" */
int ly_json_check(const json_t *obj, const ly_json_field *fields, const char *prefix,
                  ly_error *err);

/* Characters (code points) in len bytes of valid UTF-8. */
size_t ly_utf8_chars(const char *s, size_t len);

/* The string value of key, or NULL when absent or null. */
const char *ly_json_str(const json_t *obj, const char *key);

#endif
