/* Tests for src/core/json.c: what a request body may be, and the codes, fields
 * and messages a client gets back when it is not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "loyal/error.h"
#include "loyal/json.h"

struct parse_case {
    const char *body;
    size_t len;
    const char *code; /* NULL: must parse */
    const char *field;
    const char *message; /* exact when not NULL */
};

#define BODY(s) s, sizeof(s) - 1

static void test_parse(void **state)
{
    (void)state;
    static const struct parse_case cases[] = {
        {BODY("{}"), NULL, NULL, NULL},
        {BODY(" \n{\"a\": [1, {\"b\": null}], \"c\": \"\xc3\xa9\"}\n "), NULL, NULL, NULL},
        {BODY("{\"a\":9223372036854775807}"), NULL, NULL, NULL},
        {BODY("{\"a\":-9223372036854775808}"), NULL, NULL, NULL},
        {BODY("{\"a\":\"\\ud83d\\ude00\"}"), NULL, NULL, NULL}, /* escaped surrogate pair */
        {BODY("{\"a\":\"\xf0\x9f\x98\x80\"}"), NULL, NULL, NULL},
        {BODY("{\"A\":1,\"a\":2}"), NULL, NULL, NULL}, /* keys are case-sensitive */

        {"", 0, "empty_body", "", "the request body is empty"},
        {BODY(" "), "empty_body", "", NULL},
        {BODY(" \t\r\n\n  "), "empty_body", "", NULL},

        {BODY("{\"a\": 1,}"), "invalid_json", "",
         "line 1, column 9: string or '}' expected near '}'"},
        {BODY("{\n  \"a\": 1,\n  \"b\": }"), "invalid_json", "",
         "line 3, column 8: unexpected token near '}'"},
        {BODY("{\"a\":1"), "invalid_json", "", "line 1, column 6: '}' expected near end of file"},
        {BODY("{} x"), "invalid_json", "", "line 1, column 4: end of file expected near 'x'"},
        {BODY("{}{}"), "invalid_json", "", NULL},
        {BODY("{'a':1}"), "invalid_json", "", NULL},
        {BODY("{a:1}"), "invalid_json", "", NULL},
        {BODY("{\"a\":01}"), "invalid_json", "", NULL},
        {BODY("{\"a\":NaN}"), "invalid_json", "", NULL},
        {BODY("{\"a\":\"tab\there\"}"), "invalid_json", "", NULL}, /* raw control character */
        {BODY("{}\0"), "invalid_json", "", NULL},
        {BODY("\xef\xbb\xbf{}"), "invalid_json", "", NULL}, /* byte order mark */

        {BODY("{\"name\":\"a\",\"name\":\"b\"}"), "invalid_json", "name",
         "line 1, column 18: duplicate object key near '\"name\"'"},
        {BODY("{\"a\\\"b\":1,\"a\\\"b\":2}"), "invalid_json", "a\"b", NULL},
        {BODY("{\"\\u00e9\":1,\"\xc3\xa9\":2}"), "invalid_json", "\xc3\xa9", NULL},
        {BODY("{\"o\":{\"x\":1,\"x\":2}}"), "invalid_json", "x", NULL},

        {BODY("{\"a\":99999999999999999999}"), "number_out_of_range", "",
         "line 1, column 25: too big integer near '99999999999999999999'"},
        {BODY("{\"a\":-99999999999999999999}"), "number_out_of_range", "", NULL},
        {BODY("{\"a\":9223372036854775808}"), "number_out_of_range", "", NULL},
        {BODY("{\"a\":-9223372036854775809}"), "number_out_of_range", "", NULL},
        {BODY("{\"a\":1e400}"), "number_out_of_range", "", NULL},

        {BODY("{\"a\":\"\xff\"}"), "invalid_json", "", NULL},
        {BODY("{\"a\":\"\xc0\x80\"}"), "invalid_json", "", NULL},         /* overlong NUL */
        {BODY("{\"a\":\"\xed\xa0\x80\"}"), "invalid_json", "", NULL},     /* UTF-16 surrogate */
        {BODY("{\"a\":\"\xc3\"}"), "invalid_json", "", NULL},             /* truncated */
        {BODY("{\"a\":\"\xf4\x90\x80\x80\"}"), "invalid_json", "", NULL}, /* past U+10FFFF */
        {BODY("{\xff:1}"), "invalid_json", "", NULL},
        {BODY("{\"\xfe\":1}"), "invalid_json", "", NULL},

        {BODY("{\"a\":\"\\u0000\"}"), "invalid_json", "",
         "line 1, column 13: \\u0000 is not allowed in strings"},
        {BODY("{\"k\\u0000\":1}"), "invalid_json", "", NULL},
        {BODY("{\"a\":\"\0\"}"), "invalid_json", "", NULL},
        {BODY("{\"a\":\"\\ud800\"}"), "invalid_json", "", NULL}, /* lone surrogate escape */

        {BODY("[1]"), "invalid_type", "", "the body must be a JSON object"},
        {BODY("[]"), "invalid_type", "", NULL},
        {BODY("\"x\""), "invalid_type", "", NULL},
        {BODY("42"), "invalid_type", "", NULL},
        {BODY("null"), "invalid_type", "", NULL},
        {BODY("true"), "invalid_type", "", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct parse_case *c = &cases[i];
        ly_error err;
        ly_error_clear(&err);
        json_t *obj = (json_t *)&err; /* must be overwritten */
        int rc = ly_json_parse_object(c->body, c->len, &obj, &err);
        if (!c->code) {
            if (rc != 0 || !json_is_object(obj))
                fail_msg("case %zu: %s: %s", i, err.code, err.message);
            json_decref(obj);
            continue;
        }
        if (rc != LY_EINVAL || obj != NULL)
            fail_msg("case %zu: rc %d, want LY_EINVAL and no object", i, rc);
        if (strcmp(err.code, c->code) != 0)
            fail_msg("case %zu: code %s, want %s (%s)", i, err.code, c->code, err.message);
        if (strcmp(err.field, c->field) != 0)
            fail_msg("case %zu: field \"%s\", want \"%s\"", i, err.field, c->field);
        if (c->message && strcmp(err.message, c->message) != 0)
            fail_msg("case %zu: message \"%s\", want \"%s\"", i, err.message, c->message);
        if (strcmp(c->code, "invalid_json") == 0 || strcmp(c->code, "number_out_of_range") == 0)
            if (strncmp(err.message, "line ", 5) != 0 || !strstr(err.message, ", column "))
                fail_msg("case %zu: no position in \"%s\"", i, err.message);
        assert_int_equal(err.rc, LY_EINVAL);
    }
}

static void test_parse_misc(void **state)
{
    (void)state;
    json_t *obj;
    /* No error record is fine. */
    assert_int_equal(ly_json_parse_object(BODY("[]"), &obj, NULL), LY_EINVAL);
    assert_int_equal(ly_json_parse_object(NULL, 0, &obj, NULL), LY_EINVAL);
    /* Only len bytes are read: the rest of the buffer is not the body. */
    assert_int_equal(ly_json_parse_object("{}garbage", 2, &obj, NULL), 0);
    json_decref(obj);

    /* Nesting is bounded, so a hostile body cannot exhaust the stack. */
    size_t n = 100000;
    char *deep = malloc(n + 1);
    assert_non_null(deep);
    deep[0] = '{';
    deep[1] = '"';
    deep[2] = 'a';
    deep[3] = '"';
    deep[4] = ':';
    memset(deep + 5, '[', n - 5);
    ly_error err;
    assert_int_equal(ly_json_parse_object(deep, n, &obj, &err), LY_EINVAL);
    assert_string_equal(err.code, "invalid_json");
    free(deep);
}

/* A duplicate key longer than the field buffer, made of two-byte characters:
 * whatever is cut, what comes back must still be valid UTF-8. */
static void test_error_text_stays_utf8(void **state)
{
    (void)state;
    char body[1024];
    size_t n = 0;
    body[n++] = '{';
    for (int rep = 0; rep < 2; rep++) {
        body[n++] = '"';
        body[n++] = 'x';
        body[n++] = 'y';
        for (int i = 0; i < 150; i++) {
            body[n++] = '\xc3';
            body[n++] = '\xa9';
        }
        memcpy(body + n, "\":1", 3);
        n += 3;
        body[n++] = rep == 0 ? ',' : '}';
    }
    ly_error err;
    json_t *obj;
    assert_int_equal(ly_json_parse_object(body, n, &obj, &err), LY_EINVAL);
    assert_string_equal(err.code, "invalid_json");
    /* 95 bytes of field hold "xy" and 46 characters, then half of one. */
    assert_int_equal(strlen(err.field), sizeof err.field - 1);
    assert_int_equal(strncmp(err.field, "xy\xc3\xa9", 4), 0);
    assert_int_equal(err.field[sizeof err.field - 2], '?');
    json_t *f = json_string(err.field), *m = json_string(err.message);
    assert_non_null(f); /* json_string refuses invalid UTF-8 */
    assert_non_null(m);
    json_decref(f);
    json_decref(m);

    /* The same for an unknown field named by ly_json_check. */
    n = (size_t)((char *)memchr(body, ',', n) - body);
    body[n++] = '}';
    assert_int_equal(ly_json_parse_object(body, n, &obj, &err), 0);
    static const ly_json_field none[] = {{NULL, 0, 0, 0}};
    assert_int_equal(ly_json_check(obj, none, "rules", &err), LY_EINVAL);
    assert_string_equal(err.code, "unknown_field");
    assert_int_equal(strncmp(err.field, "rules.xy\xc3\xa9", 10), 0);
    assert_int_equal(err.field[sizeof err.field - 2], '?');
    f = json_string(err.field);
    m = json_string(err.message);
    assert_non_null(f);
    assert_non_null(m);
    json_decref(f);
    json_decref(m);
    json_decref(obj);
}

static const ly_json_field member_fields[] = {
    {"email", LY_JSON_STRING, 0, 10},
    {"points", LY_JSON_INTEGER, LY_FIELD_REQUIRED, 0},
    {"active", LY_JSON_BOOLEAN, 0, 0},
    {"attributes", LY_JSON_OBJECT, LY_FIELD_NULLABLE, 0},
    {"items", LY_JSON_ARRAY, 0, 0},
    {"extra", LY_JSON_ANY, LY_FIELD_NULLABLE, 0},
    {"meta", LY_JSON_ANY, 0, 0},
    {"name", LY_JSON_STRING, LY_FIELD_NULLABLE | LY_FIELD_REQUIRED, 5},
    {"note", LY_JSON_STRING, 0, 0},
    {NULL, 0, 0, 0},
};

struct check_case {
    const char *body;
    const char *code; /* NULL: accepted */
    const char *field;
    const char *message;
};

static void test_check(void **state)
{
    (void)state;
    static const struct check_case cases[] = {
        {"{\"points\":1,\"name\":\"Ann\"}", NULL, NULL, NULL},
        {"{\"points\":-5,\"name\":null}", NULL, NULL, NULL},
        {"{\"points\":0,\"name\":\"\",\"email\":\"a@b.co\",\"active\":false,"
         "\"attributes\":{\"x\":1},\"items\":[],\"extra\":[1],\"meta\":\"m\",\"note\":\"\"}",
         NULL, NULL, NULL},
        {"{\"points\":1,\"name\":\"abcde\",\"email\":\"abcdefghij\"}", NULL, NULL, NULL},
        {"{\"points\":1,\"name\":\"x\",\"attributes\":null,\"extra\":null}", NULL, NULL, NULL},
        {"{\"points\":1,\"name\":\"x\",\"meta\":{\"deep\":[1,2]}}", NULL, NULL, NULL},
        {"{\"points\":1,\"name\":\"x\",\"meta\":3.5}", NULL, NULL, NULL},

        {"{\"points\":1,\"name\":\"x\",\"colour\":\"red\"}", "unknown_field", "colour",
         "unknown field \"colour\""},
        {"{\"Points\":1}", "unknown_field", "Points", NULL},
        {"{\"\":1}", "unknown_field", "", "unknown field \"\""},

        {"{\"points\":\"1\",\"name\":\"x\"}", "invalid_type", "points",
         "\"points\" must be an integer"},
        {"{\"points\":1.0,\"name\":\"x\"}", "invalid_type", "points", NULL},
        {"{\"points\":1e3,\"name\":\"x\"}", "invalid_type", "points", NULL},
        {"{\"points\":true,\"name\":\"x\"}", "invalid_type", "points", NULL},
        {"{\"points\":null,\"name\":\"x\"}", "invalid_type", "points", NULL},
        {"{\"points\":1,\"name\":\"x\",\"email\":5}", "invalid_type", "email",
         "\"email\" must be a string"},
        {"{\"points\":1,\"name\":\"x\",\"email\":null}", "invalid_type", "email", NULL},
        {"{\"points\":1,\"name\":\"x\",\"email\":[\"a\"]}", "invalid_type", "email", NULL},
        {"{\"points\":1,\"name\":\"x\",\"active\":1}", "invalid_type", "active",
         "\"active\" must be a boolean"},
        {"{\"points\":1,\"name\":\"x\",\"active\":\"true\"}", "invalid_type", "active", NULL},
        {"{\"points\":1,\"name\":\"x\",\"attributes\":[]}", "invalid_type", "attributes",
         "\"attributes\" must be an object"},
        {"{\"points\":1,\"name\":\"x\",\"attributes\":\"{}\"}", "invalid_type", "attributes", NULL},
        {"{\"points\":1,\"name\":\"x\",\"items\":{}}", "invalid_type", "items",
         "\"items\" must be an array"},
        {"{\"points\":1,\"name\":\"x\",\"items\":null}", "invalid_type", "items", NULL},
        {"{\"points\":1,\"name\":\"x\",\"meta\":null}", "invalid_type", "meta",
         "\"meta\" must be a value"},

        {"{\"name\":\"x\"}", "missing_field", "points", "\"points\" is required"},
        {"{\"points\":1}", "missing_field", "name", NULL},
        {"{}", "missing_field", "points", NULL},

        {"{\"points\":1,\"name\":\"abcdef\"}", "too_long", "name",
         "\"name\" must be at most 5 characters"},
        /* Lengths count characters: five two-byte letters fit, six do not. */
        {"{\"points\":1,\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", NULL, NULL, NULL},
        {"{\"points\":1,\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", "too_long",
         "name", NULL},
        {"{\"points\":1,\"name\":\"x\",\"email\":\"abcdefghijk\"}", "too_long", "email", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct check_case *c = &cases[i];
        ly_error err;
        json_t *obj;
        if (ly_json_parse_object(c->body, strlen(c->body), &obj, &err) != 0)
            fail_msg("case %zu does not parse: %s", i, err.message);
        ly_error_clear(&err);
        int rc = ly_json_check(obj, member_fields, NULL, &err);
        json_decref(obj);
        if (!c->code) {
            if (rc != 0)
                fail_msg("case %zu: %s %s: %s", i, err.code, err.field, err.message);
            continue;
        }
        if (rc != LY_EINVAL)
            fail_msg("case %zu: rc %d, want LY_EINVAL", i, rc);
        if (strcmp(err.code, c->code) != 0 || strcmp(err.field, c->field) != 0)
            fail_msg("case %zu: %s \"%s\", want %s \"%s\"", i, err.code, err.field, c->code,
                     c->field);
        if (c->message && strcmp(err.message, c->message) != 0)
            fail_msg("case %zu: message \"%s\", want \"%s\"", i, err.message, c->message);
    }
}

static void test_check_prefix(void **state)
{
    (void)state;
    static const ly_json_field earn[] = {
        {"points", LY_JSON_INTEGER, LY_FIELD_REQUIRED, 0},
        {"per_minor", LY_JSON_INTEGER, LY_FIELD_REQUIRED, 0},
        {"rounding", LY_JSON_STRING, 0, 8},
        {NULL, 0, 0, 0},
    };
    static const struct check_case cases[] = {
        {"{\"points\":1,\"per_minor\":100}", NULL, NULL, NULL},
        {"{\"points\":\"1\",\"per_minor\":100}", "invalid_type", "earn.points",
         "\"earn.points\" must be an integer"},
        {"{\"points\":1}", "missing_field", "earn.per_minor", "\"earn.per_minor\" is required"},
        {"{\"points\":1,\"per_minor\":100,\"bonus\":1}", "unknown_field", "earn.bonus",
         "unknown field \"earn.bonus\""},
        {"{\"points\":1,\"per_minor\":100,\"rounding\":\"half_even_x\"}", "too_long",
         "earn.rounding", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct check_case *c = &cases[i];
        ly_error err;
        json_t *obj;
        assert_int_equal(ly_json_parse_object(c->body, strlen(c->body), &obj, &err), 0);
        ly_error_clear(&err);
        int rc = ly_json_check(obj, earn, "earn", &err);
        json_decref(obj);
        if (!c->code) {
            assert_int_equal(rc, 0);
            continue;
        }
        assert_int_equal(rc, LY_EINVAL);
        assert_string_equal(err.code, c->code);
        assert_string_equal(err.field, c->field);
        if (c->message)
            assert_string_equal(err.message, c->message);
    }
    /* A nested object checked on its own, as a handler does for "earn". */
    json_t *obj;
    static const char body[] = "{\"earn\":{\"points\":true}}";
    assert_int_equal(ly_json_parse_object(body, strlen(body), &obj, NULL), 0);
    ly_error err;
    assert_int_equal(ly_json_check(json_object_get(obj, "earn"), earn, "earn", &err), LY_EINVAL);
    assert_string_equal(err.field, "earn.points");
    json_decref(obj);
    /* Handed something that is not an object, it says so rather than pass. */
    assert_int_equal(ly_json_parse_object(BODY("{\"earn\":[1]}"), &obj, NULL), 0);
    assert_int_equal(ly_json_check(json_object_get(obj, "earn"), earn, "earn", &err), LY_EINVAL);
    assert_string_equal(err.code, "invalid_type");
    assert_string_equal(err.field, "earn");
    assert_string_equal(err.message, "\"earn\" must be an object");
    assert_int_equal(ly_json_check(json_object_get(obj, "absent"), earn, NULL, &err), LY_EINVAL);
    assert_string_equal(err.code, "invalid_type");
    json_decref(obj);
    /* And with no error record at all. */
    assert_int_equal(ly_json_parse_object(BODY("{\"x\":1}"), &obj, NULL), 0);
    assert_int_equal(ly_json_check(obj, earn, NULL, NULL), LY_EINVAL);
    json_decref(obj);
}

static void test_str(void **state)
{
    (void)state;
    json_t *obj;
    static const char body[] = "{\"s\":\"v\",\"n\":null,\"i\":1,\"e\":\"\"}";
    assert_int_equal(ly_json_parse_object(body, strlen(body), &obj, NULL), 0);
    assert_string_equal(ly_json_str(obj, "s"), "v");
    assert_string_equal(ly_json_str(obj, "e"), "");
    assert_null(ly_json_str(obj, "n"));
    assert_null(ly_json_str(obj, "absent"));
    assert_null(ly_json_str(obj, "i")); /* not a string */
    assert_null(ly_json_str(NULL, "s"));
    json_decref(obj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_misc),
        cmocka_unit_test(test_error_text_stays_utf8),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_check_prefix),
        cmocka_unit_test(test_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
