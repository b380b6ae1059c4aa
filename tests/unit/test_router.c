/* Route matching: exact paths, captures, 405 with Allow, HEAD as GET, and
 * the edges (trailing slash, empty or oversized segments). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/router.h"

static int h(struct ly_req *r)
{
    (void)r;
    return 0;
}

static const ly_route table[] = {
    {"GET", "/healthz", h, NULL, "", NULL, 0, NULL, NULL, NULL},
    {"GET", "/v1/members", h, "read", "", NULL, 0, NULL, NULL, NULL},
    {"POST", "/v1/members", h, "pos", "", NULL, 0, NULL, NULL, NULL},
    {"GET", "/v1/members/{id}", h, "read", "", NULL, 0, NULL, NULL, NULL},
    {"PATCH", "/v1/members/{id}", h, "pos", "", NULL, 0, NULL, NULL, NULL},
    {"POST", "/v1/members/{id}/cards", h, "pos", "", NULL, 0, NULL, NULL, NULL},
    {"DELETE", "/v1/keys/{id}", h, "admin", "", NULL, 0, NULL, NULL, NULL},
    {"GET", "/v1/a/{x}/b/{y}", h, "read", "", NULL, 0, NULL, NULL, NULL},
};
#define N (sizeof table / sizeof table[0])

static const struct {
    const char *method, *path;
    int index, known;
    const char *p0, *p1, *allow;
} cases[] = {
    {"GET", "/healthz", 0, 1, NULL, NULL, ""},
    {"GET", "/v1/members", 1, 1, NULL, NULL, ""},
    {"POST", "/v1/members", 2, 1, NULL, NULL, ""},
    {"DELETE", "/v1/members", -1, 1, NULL, NULL, "GET, POST"},
    {"GET", "/v1/members/mem_1", 3, 1, "mem_1", NULL, ""},
    {"PATCH", "/v1/members/mem_1", 4, 1, "mem_1", NULL, ""},
    {"PUT", "/v1/members/mem_1", -1, 1, NULL, NULL, "GET, PATCH"},
    {"POST", "/v1/members/mem_7/cards", 5, 1, "mem_7", NULL, ""},
    {"GET", "/v1/members/mem_7/cards", -1, 1, NULL, NULL, "POST"},
    {"DELETE", "/v1/keys/key_abc", 6, 1, "key_abc", NULL, ""},
    {"GET", "/v1/a/1/b/2", 7, 1, "1", "2", ""},
    {"HEAD", "/v1/members/mem_2", 3, 1, "mem_2", NULL, NULL},
    {"GET", "/v1/members/", -1, 0, NULL, NULL, ""},
    {"GET", "/v1/members//cards", -1, 0, NULL, NULL, ""},
    {"GET", "/v1/member", -1, 0, NULL, NULL, ""},
    {"GET", "/v1/membersx", -1, 0, NULL, NULL, ""},
    {"GET", "/", -1, 0, NULL, NULL, ""},
    {"GET", "", -1, 0, NULL, NULL, ""},
    {"GET", "/healthz/", -1, 0, NULL, NULL, ""},
    {"GET", "/v1/a/1/b", -1, 0, NULL, NULL, ""},
    {"GET", "/v1/a/1/b/2/c", -1, 0, NULL, NULL, ""},
    {"GET", "healthz", -1, 0, NULL, NULL, ""},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ly_route_match m;
        ly_route_find(table, N, cases[i].method, cases[i].path, &m);
        print_message("case %zu: %s %s\n", i, cases[i].method, cases[i].path);
        assert_int_equal(m.index, cases[i].index);
        assert_int_equal(m.path_known, cases[i].known);
        if (cases[i].p0)
            assert_string_equal(m.params[0], cases[i].p0);
        if (cases[i].p1)
            assert_string_equal(m.params[1], cases[i].p1);
        if (cases[i].allow)
            assert_string_equal(m.allow, cases[i].allow);
    }
}

static void test_long_segment(void **state)
{
    (void)state;
    char path[LY_ROUTE_PARAM_MAX + 32] = "/v1/members/";
    size_t used = strlen(path);
    memset(path + used, 'x', LY_ROUTE_PARAM_MAX - 1);
    path[used + LY_ROUTE_PARAM_MAX - 1] = '\0';
    ly_route_match m;
    ly_route_find(table, N, "GET", path, &m);
    assert_int_equal(m.index, 3); /* the longest that fits */
    assert_int_equal(strlen(m.params[0]), LY_ROUTE_PARAM_MAX - 1);
    path[used + LY_ROUTE_PARAM_MAX - 1] = 'x';
    path[used + LY_ROUTE_PARAM_MAX] = '\0';
    ly_route_find(table, N, "GET", path, &m);
    assert_int_equal(m.index, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_long_segment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
