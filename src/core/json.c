/* Request bodies: one strict jansson configuration and one table-driven field
 * check, so that every handler refuses bad input with the same codes and
 * messages. Error texts may echo client input, so they are kept valid UTF-8. */
#include "loyal/json.h"

#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p, or 0 (overlong forms, surrogates
 * and code points past U+10FFFF are invalid too). */
static size_t utf8_len(const unsigned char *p)
{
    static const unsigned long min[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t n = *p < 0x80             ? 1
               : (*p & 0xe0) == 0xc0 ? 2
               : (*p & 0xf0) == 0xe0 ? 3
               : (*p & 0xf8) == 0xf0 ? 4
                                     : 0;
    if (n <= 1)
        return n;
    unsigned long cp = *p & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Replaces bytes that do not form valid UTF-8 with '?', in place. Error texts
 * echo client input (jansson's "near '...'" token, a field name cut by
 * snprintf), and the error goes back to the client as JSON. */
static void utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = utf8_len(p);
        if (n == 0)
            *p++ = '?';
        else
            p += n;
    }
}

/* Wraps ly_error_set: `return clean(err, ly_error_set(err, ...))`. */
static int clean(ly_error *err, int rc)
{
    if (err) {
        utf8_sanitize(err->field);
        utf8_sanitize(err->message);
    }
    return rc;
}

static void decode_key(const char *tok, size_t n, char *out, size_t outlen)
{
    json_t *v = json_loadb(tok, n, JSON_DECODE_ANY, NULL);
    if (json_is_string(v))
        snprintf(out, outlen, "%s", json_string_value(v));
    json_decref(v);
}

/* The name of a duplicate key. jansson stops right after the key's closing
 * quote, so the token is found in the body itself by walking back to its
 * opening quote; decoding it as JSON undoes escapes ("\u00e9" is "é"). The
 * error text (`duplicate object key near '"name"'`) is the fallback, good
 * only while the key fits in it. */
static void duplicate_key_name(const char *buf, size_t len, const json_error_t *je, char *out,
                               size_t outlen)
{
    out[0] = '\0';
    size_t end = je->position > 0 ? (size_t)je->position : 0;
    if (end >= 2 && end <= len && buf[end - 1] == '"') {
        for (size_t q = end - 1; q-- > 0;) {
            if (buf[q] != '"')
                continue;
            size_t bs = 0;
            while (bs < q && buf[q - 1 - bs] == '\\')
                bs++;
            if (bs % 2 == 0) {
                decode_key(buf + q, end - q, out, outlen);
                break;
            }
        }
    }
    if (out[0])
        return;
    const char *start = strstr(je->text, "near '");
    if (!start)
        return;
    start += strlen("near '");
    const char *close = strrchr(start, '\'');
    if (close && close > start)
        decode_key(start, (size_t)(close - start), out, outlen);
}

int ly_json_parse_object(const char *buf, size_t len, json_t **out, ly_error *err)
{
    *out = NULL;
    size_t i = 0;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
        i++;
    if (i == len)
        return ly_error_set(err, LY_EINVAL, "empty_body", NULL, "the request body is empty");

    json_error_t je;
    /* DECODE_ANY so that `[1]` or `"x"` is reported as the wrong type, not as a
     * syntax error. */
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!root) {
        char where[48];
        snprintf(where, sizeof where, "line %d, column %d", je.line, je.column);
        switch (json_error_code(&je)) {
        case json_error_duplicate_key: {
            char key[sizeof err->field];
            duplicate_key_name(buf, len, &je, key, sizeof key);
            return clean(
                err, ly_error_set(err, LY_EINVAL, "invalid_json", key, "%s: %s", where, je.text));
        }
        case json_error_numeric_overflow:
            return clean(err, ly_error_set(err, LY_EINVAL, "number_out_of_range", NULL, "%s: %s",
                                           where, je.text));
        case json_error_null_character:
            /* jansson's text names its own flag, which means nothing to a client. */
            return ly_error_set(err, LY_EINVAL, "invalid_json", NULL,
                                "%s: \\u0000 is not allowed in strings", where);
        case json_error_out_of_memory:
            return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory parsing the body");
        default:
            return clean(
                err, ly_error_set(err, LY_EINVAL, "invalid_json", NULL, "%s: %s", where, je.text));
        }
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return ly_error_set(err, LY_EINVAL, "invalid_type", NULL, "the body must be a JSON object");
    }
    *out = root;
    return 0;
}

static const char *type_phrase(int type)
{
    switch (type) {
    case LY_JSON_STRING:
        return "a string";
    case LY_JSON_INTEGER:
        return "an integer";
    case LY_JSON_BOOLEAN:
        return "a boolean";
    case LY_JSON_OBJECT:
        return "an object";
    case LY_JSON_ARRAY:
        return "an array";
    default:
        return "a value";
    }
}

static int type_matches(const json_t *v, int type)
{
    switch (type) {
    case LY_JSON_STRING:
        return json_is_string(v);
    case LY_JSON_INTEGER:
        return json_is_integer(v);
    case LY_JSON_BOOLEAN:
        return json_is_boolean(v);
    case LY_JSON_OBJECT:
        return json_is_object(v);
    case LY_JSON_ARRAY:
        return json_is_array(v);
    case LY_JSON_ANY:
        return 1;
    default:
        return 0;
    }
}

static const ly_json_field *find_field(const ly_json_field *fields, const char *name)
{
    for (const ly_json_field *f = fields; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static void full_name(char *buf, size_t size, const char *prefix, const char *name)
{
    if (prefix)
        snprintf(buf, size, "%s.%s", prefix, name);
    else
        snprintf(buf, size, "%s", name);
}

/* Characters (code points) of a string value, which jansson holds as UTF-8. */
static size_t utf8_chars(const json_t *v)
{
    return ly_utf8_chars(json_string_value(v), json_string_length(v));
}

int ly_json_check(const json_t *obj, const ly_json_field *fields, const char *prefix, ly_error *err)
{
    char name[sizeof err->field];

    if (!json_is_object(obj)) {
        if (!prefix)
            return ly_error_set(err, LY_EINVAL, "invalid_type", NULL,
                                "the body must be a JSON object");
        return clean(err, ly_error_set(err, LY_EINVAL, "invalid_type", prefix,
                                       "\"%s\" must be an object", prefix));
    }
    /* Members in the body first, so the error names what the client sent. */
    for (void *it = json_object_iter((json_t *)obj); it;
         it = json_object_iter_next((json_t *)obj, it)) {
        const char *key = json_object_iter_key(it);
        const json_t *v = json_object_iter_value(it);
        const ly_json_field *f = find_field(fields, key);
        full_name(name, sizeof name, prefix, key);
        if (!f)
            return clean(err, ly_error_set(err, LY_EINVAL, "unknown_field", name,
                                           "unknown field \"%s\"", name));
        if (json_is_null(v)) {
            if (f->flags & LY_FIELD_NULLABLE)
                continue;
            return clean(err, ly_error_set(err, LY_EINVAL, "invalid_type", name,
                                           "\"%s\" must be %s", name, type_phrase(f->type)));
        }
        if (!type_matches(v, f->type))
            return clean(err, ly_error_set(err, LY_EINVAL, "invalid_type", name,
                                           "\"%s\" must be %s", name, type_phrase(f->type)));
        if (f->type == LY_JSON_STRING && f->max_len && utf8_chars(v) > f->max_len) {
            return clean(err,
                         ly_error_set(err, LY_EINVAL, "too_long", name,
                                      "\"%s\" must be at most %zu characters", name, f->max_len));
        }
    }
    for (const ly_json_field *f = fields; f->name; f++) {
        if ((f->flags & LY_FIELD_REQUIRED) && !json_object_get(obj, f->name)) {
            full_name(name, sizeof name, prefix, f->name);
            return clean(err, ly_error_set(err, LY_EINVAL, "missing_field", name,
                                           "\"%s\" is required", name));
        }
    }
    return 0;
}

size_t ly_utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

const char *ly_json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}
