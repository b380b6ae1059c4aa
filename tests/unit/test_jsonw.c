/* The JSON writer: structure and commas, escaping, and that what it writes
 * parses back to the same values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "loyal/jsonw.h"

static char *write_sample(const char *s, size_t *len)
{
    ly_jw w;
    ly_jw_init(&w);
    ly_jw_obj_begin(&w);
    ly_jw_key(&w, "s");
    ly_jw_str(&w, s);
    ly_jw_key(&w, "n");
    ly_jw_null(&w);
    ly_jw_key(&w, "i");
    ly_jw_int(&w, INT64_MIN);
    ly_jw_key(&w, "j");
    ly_jw_int(&w, INT64_MAX);
    ly_jw_key(&w, "b");
    ly_jw_bool(&w, 1);
    ly_jw_key(&w, "a");
    ly_jw_arr_begin(&w);
    ly_jw_int(&w, 1);
    ly_jw_obj_begin(&w);
    ly_jw_obj_end(&w);
    ly_jw_arr_begin(&w);
    ly_jw_arr_end(&w);
    ly_jw_str(&w, NULL);
    ly_jw_arr_end(&w);
    ly_jw_key(&w, "raw");
    ly_jw_raw(&w, "{\"x\":[1,2]}");
    ly_jw_obj_end(&w);
    return ly_jw_finish(&w, len);
}

static void test_structure(void **state)
{
    (void)state;
    size_t len;
    char *out = write_sample("plain", &len);
    assert_non_null(out);
    assert_string_equal(out, "{\"s\":\"plain\",\"n\":null,\"i\":-9223372036854775808,"
                             "\"j\":9223372036854775807,\"b\":true,\"a\":[1,{},[],null],"
                             "\"raw\":{\"x\":[1,2]}}");
    assert_int_equal(len, strlen(out));
    free(out);
}

static void test_escaping_round_trips(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "",
        "quote \" backslash \\ slash /",
        "line\nfeed\rtab\tbell\x07",
        "\x01\x1f",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
        "</script>",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        size_t len;
        char *out = write_sample(inputs[i], &len);
        json_error_t e;
        json_t *v = json_loadb(out, len, JSON_REJECT_DUPLICATES, &e);
        if (!v)
            fail_msg("case %zu: %s in %s", i, e.text, out);
        assert_string_equal(json_string_value(json_object_get(v, "s")), inputs[i]);
        assert_int_equal(json_integer_value(json_object_get(v, "i")), INT64_MIN);
        json_decref(v);
        free(out);
    }
}

static void test_large_output_grows(void **state)
{
    (void)state;
    ly_jw w;
    ly_jw_init(&w);
    ly_jw_arr_begin(&w);
    for (int i = 0; i < 100000; i++)
        ly_jw_str(&w, "abcdefghij");
    ly_jw_arr_end(&w);
    size_t len;
    char *out = ly_jw_finish(&w, &len);
    assert_non_null(out);
    assert_int_equal(len, 2 + 100000 * 13 - 1); /* 12 per string, commas between */
    free(out);
}

static void test_ids(void **state)
{
    (void)state;
    ly_jw w;
    ly_jw_init(&w);
    ly_jw_arr_begin(&w);
    ly_jw_id(&w, "mem_", 0);
    ly_jw_id(&w, "mem_", 42);
    ly_jw_id(&w, "ent_", INT64_MAX);
    ly_jw_arr_end(&w);
    size_t len;
    char *out = ly_jw_finish(&w, &len);
    assert_string_equal(out, "[\"mem_0\",\"mem_42\",\"ent_9223372036854775807\"]");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_escaping_round_trips),
        cmocka_unit_test(test_large_output_grows),
        cmocka_unit_test(test_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
