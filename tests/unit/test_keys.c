/* Tests for src/core/keys.c: key shape, uniqueness, hashing and which scope
 * may call what. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "loyal/error.h"
#include "loyal/keys.h"

static const char *const scopes[] = {"admin", "pos", "partner", "read"};
#define NSCOPES (sizeof scopes / sizeof scopes[0])

static int setup(void **state)
{
    (void)state;
    return ly_keys_init();
}

static void test_scope_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSCOPES; i++)
        assert_true(ly_key_scope_valid(scopes[i]));
    static const char *const bad[] = {"",       "Admin", "ADMIN", "adm",
                                      "admins", "root",  "pos ",  "read_only"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(ly_key_scope_valid(bad[i]));
    assert_false(ly_key_scope_valid(NULL));
}

static void test_generate_parses_back(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSCOPES; i++) {
        char key[LY_KEY_MAX], id[LY_KEY_ID_LEN + 1], scope[16], pid[LY_KEY_ID_LEN + 1];
        assert_int_equal(ly_key_generate(scopes[i], key, id), 0);
        assert_int_equal(strlen(key),
                         3 + strlen(scopes[i]) + 1 + LY_KEY_ID_LEN + LY_KEY_SECRET_LEN);
        assert_int_equal(strncmp(key, "lk_", 3), 0);
        assert_int_equal(strlen(id), LY_KEY_ID_LEN);
        assert_int_equal(ly_key_parse(key, scope, sizeof scope, pid), 0);
        assert_string_equal(scope, scopes[i]);
        assert_string_equal(pid, id);
        /* The id is the first part of the random body. */
        assert_non_null(strstr(key, id));
        for (const char *p = key + 3 + strlen(scopes[i]) + 1; *p; p++)
            assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz234567", *p));
    }
}

static void test_generate_unknown_scope(void **state)
{
    (void)state;
    char key[LY_KEY_MAX], id[LY_KEY_ID_LEN + 1];
    assert_int_equal(ly_key_generate("root", key, id), LY_EINVAL);
    assert_int_equal(ly_key_generate("", key, id), LY_EINVAL);
    assert_int_equal(ly_key_generate("Admin", key, id), LY_EINVAL);
    assert_int_equal(ly_key_generate(NULL, key, id), LY_EINVAL);
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_ids_unique(void **state)
{
    (void)state;
    enum { N = 1000 };
    char(*ids)[LY_KEY_ID_LEN + 1] = malloc(N * sizeof *ids);
    char(*keys)[LY_KEY_MAX] = malloc(N * sizeof *keys);
    assert_non_null(ids);
    assert_non_null(keys);
    for (int i = 0; i < N; i++)
        assert_int_equal(ly_key_generate(scopes[i % NSCOPES], keys[i], ids[i]), 0);
    qsort(ids, N, sizeof *ids, cmp_id);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    qsort(keys, N, sizeof *keys, cmp_id);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(keys[i - 1], keys[i]);
    free(ids);
    free(keys);
}

static void test_hash(void **state)
{
    (void)state;
    char k1[LY_KEY_MAX], k2[LY_KEY_MAX], id[LY_KEY_ID_LEN + 1];
    unsigned char h1[LY_KEY_HASH_LEN], h1b[LY_KEY_HASH_LEN], h2[LY_KEY_HASH_LEN];
    assert_int_equal(ly_key_generate("pos", k1, id), 0);
    assert_int_equal(ly_key_generate("pos", k2, id), 0);
    ly_key_hash(k1, h1);
    ly_key_hash(k1, h1b);
    ly_key_hash(k2, h2);
    assert_true(ly_key_hash_equal(h1, h1b));
    assert_false(ly_key_hash_equal(h1, h2));

    /* One character changed anywhere changes the hash. */
    for (size_t i = 0; k1[i]; i++) {
        char k3[LY_KEY_MAX];
        unsigned char h3[LY_KEY_HASH_LEN];
        memcpy(k3, k1, sizeof k3);
        k3[i] = k3[i] == 'a' ? 'b' : 'a';
        ly_key_hash(k3, h3);
        assert_false(ly_key_hash_equal(h1, h3));
    }

    /* BLAKE2b-256 of "" (RFC 7693 parameters, 32-byte output). */
    static const unsigned char empty[LY_KEY_HASH_LEN] = {
        0x0e, 0x57, 0x51, 0xc0, 0x26, 0xe5, 0x43, 0xb2, 0xe8, 0xab, 0x2e,
        0xb0, 0x60, 0x99, 0xda, 0xa1, 0xd1, 0xe5, 0xdf, 0x47, 0x77, 0x8f,
        0x77, 0x87, 0xfa, 0xab, 0x45, 0xcd, 0xf1, 0x2f, 0xe3, 0xa8};
    unsigned char he[LY_KEY_HASH_LEN];
    ly_key_hash("", he);
    assert_memory_equal(he, empty, LY_KEY_HASH_LEN);
}

static void test_parse_malformed(void **state)
{
    (void)state;
    char body[LY_KEY_ID_LEN + LY_KEY_SECRET_LEN + 1];
    memset(body, 'a', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    char good[LY_KEY_MAX];
    snprintf(good, sizeof good, "lk_pos_%s", body);
    char scope[16], id[LY_KEY_ID_LEN + 1];
    assert_int_equal(ly_key_parse(good, scope, sizeof scope, id), 0);
    assert_string_equal(scope, "pos");
    assert_string_equal(id, "aaaaaaaaaaaa");

    char cases[32][160];
    size_t n = 0;
#define CASE(...) snprintf(cases[n++], sizeof cases[0], __VA_ARGS__)
    CASE("%s", "");
    CASE("%s", "lk_");
    CASE("%s", "lk_pos_");
    CASE("lk_pos%s", body);  /* no separator */
    CASE("lk-pos_%s", body); /* wrong prefix separator */
    CASE("LK_pos_%s", body); /* prefix is case-sensitive */
    CASE("sk_pos_%s", body); /* another vendor's key */
    CASE("lkpos_%s", body);
    CASE("lk_root_%s", body); /* unknown scope */
    CASE("lk_POS_%s", body);
    CASE("lk__%s", body);            /* empty scope */
    CASE("lk_pos__%s", body);        /* extra separator */
    CASE("lk_pos_%.43s", body);      /* one short */
    CASE("lk_pos_%sa", body);        /* one long */
    CASE("lk_pos_%s%s", body, body); /* far too long */
    CASE("lk_pos_A%.43s", body);     /* upper case */
    CASE("lk_pos_1%.43s", body);     /* '1' is not in the alphabet */
    CASE("lk_pos_8%.43s", body);     /* nor '8' */
    CASE("lk_pos_0%.43s", body);     /* nor '0' */
    CASE("lk_pos_=%.43s", body);     /* padding */
    CASE("lk_pos_ %.43s", body);     /* space */
    CASE("lk_pos_%.43s ", body);     /* trailing space */
    CASE(" lk_pos_%.43s", body);     /* leading space */
    CASE("lk_pos_%.20s_%.23s", body, body);
    CASE("lk_pos_%.43s\xc3", body); /* stray UTF-8 byte */
    CASE("lk_admin_pos_%s", body);
#undef CASE
    for (size_t i = 0; i < n; i++) {
        if (ly_key_parse(cases[i], scope, sizeof scope, id) != LY_EAUTH)
            fail_msg("accepted \"%s\"", cases[i]);
    }
    assert_int_equal(ly_key_parse(NULL, scope, sizeof scope, id), LY_EAUTH);

    /* A key longer than any real one is refused without reading it all. */
    char *huge = malloc(1 << 20);
    assert_non_null(huge);
    memset(huge, 'a', (1 << 20) - 1);
    memcpy(huge, "lk_pos_", 7);
    huge[(1 << 20) - 1] = '\0';
    assert_int_equal(ly_key_parse(huge, scope, sizeof scope, id), LY_EAUTH);
    free(huge);
}

static void test_parse_buffers(void **state)
{
    (void)state;
    char key[LY_KEY_MAX], id[LY_KEY_ID_LEN + 1], small[4], scope[8];
    assert_int_equal(ly_key_generate("partner", key, id), 0);
    assert_int_equal(ly_key_parse(key, small, sizeof small, NULL), LY_EINVAL);
    assert_int_equal(ly_key_parse(key, scope, sizeof scope, NULL), 0);
    assert_string_equal(scope, "partner");
    assert_int_equal(ly_key_parse(key, NULL, 0, NULL), 0);
}

static void test_scope_allows(void **state)
{
    (void)state;
    /* rows: have; columns: need, in the order admin, pos, partner, read */
    static const int want[4][4] = {
        {1, 1, 1, 1}, /* admin */
        {0, 1, 0, 1}, /* pos */
        {0, 0, 1, 1}, /* partner */
        {0, 0, 0, 1}, /* read */
    };
    for (size_t h = 0; h < NSCOPES; h++)
        for (size_t n = 0; n < NSCOPES; n++)
            if (ly_key_scope_allows(scopes[h], scopes[n]) != want[h][n])
                fail_msg("%s needing %s: want %d", scopes[h], scopes[n], want[h][n]);
    assert_false(ly_key_scope_allows("root", "read"));
    assert_false(ly_key_scope_allows("admin", "root"));
    assert_false(ly_key_scope_allows(NULL, "read"));
    assert_false(ly_key_scope_allows("admin", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scope_valid),
        cmocka_unit_test(test_generate_parses_back),
        cmocka_unit_test(test_generate_unknown_scope),
        cmocka_unit_test(test_ids_unique),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_parse_buffers),
        cmocka_unit_test(test_scope_allows),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
