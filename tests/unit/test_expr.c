/* Tests for src/core/expr.c: the lexer, the parser's precedence and errors
 * (with their line:column), the type checker over every operator and type
 * pair, and the evaluator, table by table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>

#include "loyal/error.h"
#include "loyal/expr.h"
#include "loyal/timeutil.h"
#include "loyal/tz.h"

#define ALL   (LY_EXPR_EVENT | LY_EXPR_ITEM | LY_EXPR_MEMBER)
#define MS_D  86400000LL
#define MS_H  3600000LL
#define MS_M  60000LL
#define I64MX "9223372036854775807"

static int64_t at(const char *rfc3339)
{
    int64_t ms;
    if (ly_time_parse(rfc3339, &ms) != 0)
        fail_msg("bad time in test table: %s", rfc3339);
    return ms;
}

/* ---- the fixed context ---- */

static const char *const event_attr_names[] = {"source", "campaign", "utm_source2", "Source"};
static const char *const event_attr_values[] = {"app", "Winter", "mail", "APP"};
static const char *const member_attr_names[] = {"card", "city"};
static const char *const member_attr_values[] = {"yes", "Boston"};
static const char *const member_tags[] = {"vip", "card_holder"};
static const char *const item_tags[] = {"hot", "Organic"};
static char scratch[64];

static const ly_expr_item item = {
    .sku = "COF-12",
    .category = "coffee",
    .quantity = 3,
    .unit_price = 450,
    .amount = 1350,
    .tags = item_tags,
    .ntags = 2,
};

static ly_expr_ctx base_ctx(void)
{
    ly_expr_ctx c = {
        .event_type = "purchase",
        .event_currency = "USD",
        .event_channel = "store",
        .event_store = "S-001",
        .event_amount = 12345,
        .event_occurred_at = at("2027-01-09T14:30:00Z"), /* a Saturday */
        .event_attr_names = event_attr_names,
        .event_attr_values = event_attr_values,
        .nevent_attrs = 4,
        .item = &item,
        .member_tier = "gold",
        .member_status = "active",
        .member_birthdate = "1990-01-09",
        .member_created_at = at("2025-06-15T10:00:00Z"),
        .member_lifetime_spend = 500000,
        .member_purchase_count = 42,
        .member_days_since_last_purchase = 7,
        .member_attr_names = member_attr_names,
        .member_attr_values = member_attr_values,
        .nmember_attrs = 2,
        .member_tags = member_tags,
        .nmember_tags = 2,
        .now = at("2027-01-09T15:00:00Z"),
        .tz = NULL,
        .scratch = scratch,
        .scratch_size = sizeof scratch,
    };
    return c;
}

static ly_expr *compile_ok(const char *src, unsigned scopes)
{
    ly_expr *e = NULL;
    ly_error err = {0};
    int rc = ly_expr_compile(src, scopes, &e, &err);
    if (rc != 0 || !e)
        fail_msg("compile(%s) = %d: %s %s %s", src, rc, err.code, err.field, err.message);
    return e;
}

/* The value borrows from the expression, so the last one is kept until the
 * next call (or the end of the run). */
static ly_expr *last;

static int free_last(void **state)
{
    (void)state;
    ly_expr_free(last);
    last = NULL;
    return 0;
}

static ly_expr_value eval_ok(const char *src, const ly_expr_ctx *ctx)
{
    ly_expr *e = compile_ok(src, ALL);
    ly_expr_value v;
    ly_error err = {0};
    int rc = ly_expr_eval(e, ctx, &v, &err);
    if (rc != 0)
        fail_msg("eval(%s) = %d: %s %s", src, rc, err.code, err.message);
    if (v.type != ly_expr_type(e))
        fail_msg("eval(%s): value type %d, compiled type %d", src, v.type, ly_expr_type(e));
    ly_expr_free(last);
    last = e;
    return v;
}

/* ---- evaluation: every operator, name and function ---- */

#define B LY_T_BOOL

static const struct ecase {
    const char *src;
    enum ly_expr_type type;
    int64_t i;     /* integers, times, durations, booleans */
    const char *s; /* strings */
} ecases[] = {
    /* literals */
    {"0", LY_T_INT, 0, NULL},
    {"42", LY_T_INT, 42, NULL},
    {"007", LY_T_INT, 7, NULL},
    {I64MX, LY_T_INT, INT64_MAX, NULL},
    {"-" I64MX " - 1", LY_T_INT, INT64_MIN, NULL},
    {"30d", LY_T_DURATION, 30 * MS_D, NULL},
    {"12h", LY_T_DURATION, 12 * MS_H, NULL},
    {"15m", LY_T_DURATION, 15 * MS_M, NULL},
    {"45s", LY_T_DURATION, 45000, NULL},
    {"0s", LY_T_DURATION, 0, NULL},
    {"-1h", LY_T_DURATION, -MS_H, NULL},
    {"\"abc\"", LY_T_STR, 0, "abc"},
    {"\"\"", LY_T_STR, 0, ""},
    {"\"a\\\"b\"", LY_T_STR, 0, "a\"b"},
    {"\"a\\\\b\"", LY_T_STR, 0, "a\\b"},
    {"\"a\\nb\"", LY_T_STR, 0, "a\nb"},
    {"\"a\\tb\"", LY_T_STR, 0, "a\tb"},
    {"\"a\\rb\"", LY_T_STR, 0, "a\rb"},
    {"\"# not a comment\"", LY_T_STR, 0, "# not a comment"},
    {"\"caf\xc3\xa9\"", LY_T_STR, 0, "caf\xc3\xa9"},
    {"true", LY_T_BOOL, 1, NULL},
    {"false", LY_T_BOOL, 0, NULL},
    {"1 # a comment\n+ 2", LY_T_INT, 3, NULL},
    {"# leading comment\n5", LY_T_INT, 5, NULL},
    {"\t1\r\n+\t2\n", LY_T_INT, 3, NULL},
    {"1+2", LY_T_INT, 3, NULL},
    {"1 in[1]", B, 1, NULL},
    {"!true||false", B, 0, NULL},
    {"(1<2)&&(2>=2)", B, 1, NULL},
    {"weekday (now)", LY_T_INT, 6, NULL},
    {"weekday(\n  now\n)", LY_T_INT, 6, NULL},
    {"event.attributes.utm_source2", LY_T_STR, 0, "mail"},
    {"event.attributes.Source", LY_T_STR, 0, "APP"},
    {"event.attributes.source_", LY_T_STR, 0, ""},
    {"event.attributes.2", LY_T_STR, 0, ""},
    {"\"b\"in[\"a\",\"b\"]||false", B, 1, NULL},
    {"1-2", LY_T_INT, -1, NULL},
    {"1--2", LY_T_INT, 3, NULL},
    /* arithmetic, precedence and associativity */
    {"1 + 2", LY_T_INT, 3, NULL},
    {"2 * 3 + 4", LY_T_INT, 10, NULL},
    {"2 + 3 * 4", LY_T_INT, 14, NULL},
    {"(2 + 3) * 4", LY_T_INT, 20, NULL},
    {"10 - 4 - 3", LY_T_INT, 3, NULL},
    {"10 - (4 - 3)", LY_T_INT, 9, NULL},
    {"100 / 10 / 5", LY_T_INT, 2, NULL},
    {"100 / (10 / 5)", LY_T_INT, 50, NULL},
    {"2 * 3 % 4", LY_T_INT, 2, NULL},
    {"2 * (3 % 4)", LY_T_INT, 6, NULL},
    {"7 % 3", LY_T_INT, 1, NULL},
    {"-7 % 3", LY_T_INT, -1, NULL},
    {"7 % -3", LY_T_INT, 1, NULL},
    {"-7 / 2", LY_T_INT, -3, NULL},
    {"7 / -2", LY_T_INT, -3, NULL},
    {"- -5", LY_T_INT, 5, NULL},
    {"-(2 + 3)", LY_T_INT, -5, NULL},
    {"2 - -3", LY_T_INT, 5, NULL},
    {"-2 * -3", LY_T_INT, 6, NULL},
    {"1 + 2 * 3 - 4 / 2 % 3", LY_T_INT, 5, NULL},
    {"((((1))))", LY_T_INT, 1, NULL},
    {I64MX " - 1 + 1", LY_T_INT, INT64_MAX, NULL},
    {"event.amount / 100", LY_T_INT, 123, NULL},
    {"event.amount % 100", LY_T_INT, 45, NULL},
    {"item.quantity * item.unit_price", LY_T_INT, 1350, NULL},
    {"item.amount - item.quantity * item.unit_price", LY_T_INT, 0, NULL},
    /* comparisons */
    {"1 < 2", B, 1, NULL},
    {"2 < 1", B, 0, NULL},
    {"2 <= 2", B, 1, NULL},
    {"3 <= 2", B, 0, NULL},
    {"3 > 2", B, 1, NULL},
    {"2 > 2", B, 0, NULL},
    {"2 >= 3", B, 0, NULL},
    {"3 >= 3", B, 1, NULL},
    {"1 == 1", B, 1, NULL},
    {"1 != 1", B, 0, NULL},
    {"-1 < 0", B, 1, NULL},
    {"1 + 1 == 2", B, 1, NULL},
    {"\"a\" < \"b\"", B, 1, NULL},
    {"\"abc\" < \"abd\"", B, 1, NULL},
    {"\"ab\" < \"abc\"", B, 1, NULL},
    {"\"abc\" <= \"ab\"", B, 0, NULL},
    {"\"b\" > \"abc\"", B, 1, NULL},
    {"\"b\" >= \"b\"", B, 1, NULL},
    {"\"\" == \"\"", B, 1, NULL},
    {"\"\" < \"a\"", B, 1, NULL},
    {"\"A\" < \"a\"", B, 1, NULL},
    {"\"a\" != \"A\"", B, 1, NULL},
    {"\"x\" == \"x\"", B, 1, NULL},
    {"true == true", B, 1, NULL},
    {"true != false", B, 1, NULL},
    {"false == false", B, 1, NULL},
    {"(1 < 2) == (2 < 3)", B, 1, NULL},
    {"now > event.occurred_at", B, 1, NULL},
    {"now == now", B, 1, NULL},
    {"1h < 1d", B, 1, NULL},
    {"60m == 1h", B, 1, NULL},
    {"24h == 1d", B, 1, NULL},
    {"60s == 1m", B, 1, NULL},
    {"-1h < 0s", B, 1, NULL},
    /* logic */
    {"!true", B, 0, NULL},
    {"!false", B, 1, NULL},
    {"!!true", B, 1, NULL},
    {"true && true", B, 1, NULL},
    {"true && false", B, 0, NULL},
    {"false && true", B, 0, NULL},
    {"false || true", B, 1, NULL},
    {"false || false", B, 0, NULL},
    {"true || false && false", B, 1, NULL},
    {"(true || false) && false", B, 0, NULL},
    {"false && false || true", B, 1, NULL},
    {"false && (false || true)", B, 0, NULL},
    {"!false && true", B, 1, NULL},
    {"!(1 < 2)", B, 0, NULL},
    {"!true == false", B, 1, NULL},
    {"1 < 2 && 2 < 3 && 3 < 4", B, 1, NULL},
    {"1 > 2 || 2 > 3 || 3 < 4", B, 1, NULL},
    {"1 > 2 || 2 > 3 || 3 > 4", B, 0, NULL},
    {"true && true && true && false", B, 0, NULL},
    /* short-circuit: the right side would fail */
    {"false && 1 / (event.amount - 12345) == 0", B, 0, NULL},
    {"true || 1 / (event.amount - 12345) == 0", B, 1, NULL},
    {"false && " I64MX " + 1 > 0", B, 0, NULL},
    {"true || " I64MX " + 1 > 0", B, 1, NULL},
    {"event.channel == \"web\" && " I64MX " * 2 > 0", B, 0, NULL},
    {"(false && " I64MX " * 2 > 0) || true", B, 1, NULL},
    /* times and durations */
    {"event.occurred_at + 1d > event.occurred_at", B, 1, NULL},
    {"now - event.occurred_at", LY_T_DURATION, 30 * MS_M, NULL},
    {"now - event.occurred_at == 30m", B, 1, NULL},
    {"event.occurred_at - now", LY_T_DURATION, -30 * MS_M, NULL},
    {"now - 1d < now", B, 1, NULL},
    {"1d + now > now", B, 1, NULL},
    {"1h + 30m", LY_T_DURATION, 90 * MS_M, NULL},
    {"1h + 30m == 90m", B, 1, NULL},
    {"2d - 1h", LY_T_DURATION, 47 * MS_H, NULL},
    {"(now - 1h) - (now - 2h) == 1h", B, 1, NULL},
    {"-(now - event.occurred_at)", LY_T_DURATION, -30 * MS_M, NULL},
    {"now - member.created_at > 365d", B, 1, NULL},
    {"event.occurred_at + 30m == now", B, 1, NULL},
    /* in */
    {"\"b\" in [\"a\", \"b\"]", B, 1, NULL},
    {"\"c\" in [\"a\", \"b\"]", B, 0, NULL},
    {"\"\" in [\"a\"]", B, 0, NULL},
    {"\"\" in [\"\"]", B, 1, NULL},
    {"\"ab\" in [\"a\", \"abc\"]", B, 0, NULL},
    {"2 in [1, 2, 3]", B, 1, NULL},
    {"4 in [1, 2, 3]", B, 0, NULL},
    {"-1 in [-1, 5]", B, 1, NULL},
    {"1 in [-1, 5]", B, 0, NULL},
    {"item.quantity in [1, 2, 3]", B, 1, NULL},
    {"\"ffe\" in \"coffee\"", B, 1, NULL},
    {"\"coffee\" in \"coffee\"", B, 1, NULL},
    {"\"coffees\" in \"coffee\"", B, 0, NULL},
    {"\"tea\" in \"coffee\"", B, 0, NULL},
    {"\"\" in \"x\"", B, 1, NULL},
    {"\"\" in \"\"", B, 1, NULL},
    {"\"x\" in \"\"", B, 0, NULL},
    {"\"fe\" in item.category", B, 1, NULL},
    {"\"card_holder\" in member.tags", B, 1, NULL},
    {"\"card\" in member.tags", B, 0, NULL},
    {"\"Organic\" in item.tags", B, 1, NULL},
    {"\"organic\" in item.tags", B, 0, NULL},
    {"lower(\"ORG\") in lower(\"Organic\")", B, 1, NULL},
    {"lower(\"VIP\") in member.tags", B, 1, NULL},
    {"event.store in [\"S-001\", \"S-002\"]", B, 1, NULL},
    {"event.currency in [\"EUR\", \"GBP\"]", B, 0, NULL},
    {"!(event.currency in [\"EUR\"])", B, 1, NULL},
    {"(1 in [1]) == true", B, 1, NULL},
    /* names */
    {"event.type", LY_T_STR, 0, "purchase"},
    {"event.amount", LY_T_INT, 12345, NULL},
    {"event.currency", LY_T_STR, 0, "USD"},
    {"event.channel", LY_T_STR, 0, "store"},
    {"event.store", LY_T_STR, 0, "S-001"},
    {"event.attributes.source", LY_T_STR, 0, "app"},
    {"event.attributes.campaign", LY_T_STR, 0, "Winter"},
    {"event.attributes.missing", LY_T_STR, 0, ""},
    {"event.attributes.card", LY_T_STR, 0, ""},
    {"item.sku", LY_T_STR, 0, "COF-12"},
    {"item.category", LY_T_STR, 0, "coffee"},
    {"item.quantity", LY_T_INT, 3, NULL},
    {"item.unit_price", LY_T_INT, 450, NULL},
    {"item.amount", LY_T_INT, 1350, NULL},
    {"member.tier", LY_T_STR, 0, "gold"},
    {"member.status", LY_T_STR, 0, "active"},
    {"member.birthdate", LY_T_STR, 0, "1990-01-09"},
    {"member.attributes.card", LY_T_STR, 0, "yes"},
    {"member.attributes.city", LY_T_STR, 0, "Boston"},
    {"member.attributes.source", LY_T_STR, 0, ""},
    {"member.lifetime_spend", LY_T_INT, 500000, NULL},
    {"member.purchase_count", LY_T_INT, 42, NULL},
    {"member.days_since_last_purchase", LY_T_INT, 7, NULL},
    {"member.days_since_last_purchase > 5", B, 1, NULL},
    {"member.tier == \"gold\"", B, 1, NULL},
    {"member.tier != \"gold\"", B, 0, NULL},
    /* functions */
    {"weekday(event.occurred_at)", LY_T_INT, 6, NULL},
    {"weekday(event.occurred_at + 1d)", LY_T_INT, 7, NULL},
    {"weekday(event.occurred_at + 2d)", LY_T_INT, 1, NULL},
    {"weekday(event.occurred_at - 1d)", LY_T_INT, 5, NULL},
    {"hour(event.occurred_at)", LY_T_INT, 14, NULL},
    {"hour(now)", LY_T_INT, 15, NULL},
    {"hour(event.occurred_at + 10h)", LY_T_INT, 0, NULL},
    {"month(event.occurred_at)", LY_T_INT, 1, NULL},
    {"month(event.occurred_at - 9d)", LY_T_INT, 12, NULL},
    {"day(event.occurred_at)", LY_T_INT, 9, NULL},
    {"day(event.occurred_at + 23d)", LY_T_INT, 1, NULL},
    {"days_between(event.occurred_at, now)", LY_T_INT, 0, NULL},
    {"days_between(event.occurred_at, now + 1d)", LY_T_INT, 1, NULL},
    {"days_between(now, now - 10d)", LY_T_INT, -10, NULL},
    {"days_between(member.created_at, now)", LY_T_INT, 573, NULL},
    {"days_between(now, member.created_at)", LY_T_INT, -573, NULL},
    {"is_birthday(member.birthdate, now)", B, 1, NULL},
    {"is_birthday(member.birthdate, now + 1d)", B, 0, NULL},
    {"is_birthday(\"1990-01-10\", now)", B, 0, NULL},
    {"is_birthday(\"\", now)", B, 0, NULL},
    {"has_tag(member.tags, \"vip\")", B, 1, NULL},
    {"has_tag(member.tags, \"VIP\")", B, 0, NULL},
    {"has_tag(member.tags, lower(\"VIP\"))", B, 1, NULL},
    {"has_tag(item.tags, \"hot\")", B, 1, NULL},
    {"has_tag(item.tags, \"cold\")", B, 0, NULL},
    {"has_tag([\"a\", \"b\"], \"b\")", B, 1, NULL},
    {"starts_with(item.sku, \"COF\")", B, 1, NULL},
    {"starts_with(item.sku, \"cof\")", B, 0, NULL},
    {"starts_with(lower(item.sku), \"cof\")", B, 1, NULL},
    {"starts_with(item.sku, lower(\"COF\"))", B, 0, NULL},
    {"starts_with(item.sku, \"\")", B, 1, NULL},
    {"starts_with(\"ab\", \"abc\")", B, 0, NULL},
    {"starts_with(item.sku, item.sku)", B, 1, NULL},
    {"lower(\"AbC\")", LY_T_STR, 0, "abc"},
    {"lower(\"\")", LY_T_STR, 0, ""},
    {"lower(event.currency)", LY_T_STR, 0, "usd"},
    {"lower(lower(\"X-Y_Z 1\"))", LY_T_STR, 0, "x-y_z 1"},
    {"lower(\"\xc3\x89T\xc3\x89\")", LY_T_STR, 0, "\xc3\x89t\xc3\x89"},
    {"lower(event.currency) == \"usd\"", B, 1, NULL},
    {"lower(event.currency) == \"USD\"", B, 0, NULL},
    {"\"B\" < lower(\"A\")", B, 1, NULL},
    {"lower(\"B\") > \"a\"", B, 1, NULL},
    {"lower(\"ABC\") < lower(\"ABD\")", B, 1, NULL},
    {"lower(event.attributes.campaign) == \"winter\"", B, 1, NULL},
    {"weekday(now) + hour(now) * 10", LY_T_INT, 156, NULL},
    /* the worked examples of the rules documentation */
    {"event.amount / 100", LY_T_INT, 123, NULL},
    {"weekday(event.occurred_at) >= 6", B, 1, NULL},
    {"weekday(event.occurred_at) in [6, 7]", B, 1, NULL},
    {"item.category == \"coffee\" && hour(event.occurred_at) < 11", B, 0, NULL},
    {"item.category == \"coffee\" && hour(event.occurred_at) >= 11", B, 1, NULL},
    {"member.attributes.card == \"yes\"", B, 1, NULL},
    {"has_tag(member.tags, \"card_holder\")", B, 1, NULL},
    {"is_birthday(member.birthdate, event.occurred_at)", B, 1, NULL},
    {"event.type == \"custom:review\"", B, 0, NULL},
    {"member.purchase_count == 0", B, 0, NULL},
    {"event.type == \"purchase\" && event.channel == \"store\" &&\n"
     "  event.amount >= 10000 && member.tier in [\"gold\", \"platinum\"]",
     B, 1, NULL},
    {"days_between(member.created_at, event.occurred_at) < 30 || member.purchase_count < 3", B, 0,
     NULL},
};

static void test_eval_table(void **state)
{
    (void)state;
    ly_expr_ctx ctx = base_ctx();
    for (size_t k = 0; k < sizeof ecases / sizeof ecases[0]; k++) {
        const struct ecase *c = &ecases[k];
        ly_expr_value v = eval_ok(c->src, &ctx);
        enum ly_expr_type want = c->type;
        if (v.type != want)
            fail_msg("%s: type %s, want %s", c->src, ly_expr_type_name(v.type),
                     ly_expr_type_name(want));
        if (want == LY_T_STR) {
            if (v.len != strlen(c->s) || memcmp(v.s, c->s, v.len) != 0)
                fail_msg("%s: \"%.*s\", want \"%s\"", c->src, (int)v.len, v.s, c->s);
        } else if (v.i != c->i) {
            fail_msg("%s: %lld, want %lld", c->src, (long long)v.i, (long long)c->i);
        }
    }
}

static void test_eval_lists(void **state)
{
    (void)state;
    ly_expr_ctx ctx = base_ctx();
    ly_expr_value v = eval_ok("[\"a\", \"b\\\"c\"]", &ctx);
    assert_int_equal(v.type, LY_T_LIST_STR);
    assert_int_equal(v.len, 2);
    assert_string_equal(v.list_s[0], "a");
    assert_string_equal(v.list_s[1], "b\"c");
    v = eval_ok("[3, -4, " I64MX "]", &ctx);
    assert_int_equal(v.type, LY_T_LIST_INT);
    assert_int_equal(v.len, 3);
    assert_true(v.list_i[0] == 3 && v.list_i[1] == -4 && v.list_i[2] == INT64_MAX);
    v = eval_ok("member.tags", &ctx);
    assert_int_equal(v.type, LY_T_LIST_STR);
    assert_int_equal(v.len, 2);
    assert_string_equal(v.list_s[1], "card_holder");
    v = eval_ok("item.tags", &ctx);
    assert_int_equal(v.len, 2);
}

/* ---- run-time errors ---- */

static const struct rcase {
    const char *src;
    const char *code;
    const char *field; /* the failing operator */
} rcases[] = {
    {I64MX " + 1", "expression_overflow", "1:21"},
    {"-" I64MX " - 2", "expression_overflow", "1:22"},
    {I64MX " * 2", "expression_overflow", "1:21"},
    {"-" I64MX " * 3", "expression_overflow", "1:22"},
    {"(-" I64MX " - 1) / -1", "expression_overflow", "1:28"},
    {"(-" I64MX " - 1) % -1", "expression_overflow", "1:28"},
    {"-(-" I64MX " - 1)", "expression_overflow", "1:1"},
    {"event.amount * " I64MX, "expression_overflow", "1:14"},
    {"member.lifetime_spend * member.lifetime_spend * member.lifetime_spend * 1000",
     "expression_overflow", "1:71"},
    {"now + 106751991167d > now", "expression_overflow", "1:5"},
    {"now - 106751991167d - 106751991167d < now", "expression_overflow", "1:21"},
    {"106751991167d + 106751991167d", "expression_overflow", "1:15"},
    {"-(now - now - 106751991167d - 106751991167d)", "expression_overflow", "1:29"},
    {"true && " I64MX " + 1 > 0", "expression_overflow", "1:29"},
    {"false || " I64MX " + 1 > 0", "expression_overflow", "1:30"},
    {"event.amount > 0 &&\n  " I64MX " + event.amount > 0", "expression_overflow", "2:23"},
    {"1 / (event.amount - 12345)", "expression_error", "1:3"},
    {"1 % (item.quantity - 3)", "expression_error", "1:3"},
    {"weekday(now) / (member.days_since_last_purchase - 7) > 0", "expression_error", "1:14"},
};

static void test_eval_errors(void **state)
{
    (void)state;
    ly_expr_ctx ctx = base_ctx();
    for (size_t k = 0; k < sizeof rcases / sizeof rcases[0]; k++) {
        ly_expr *e = compile_ok(rcases[k].src, ALL);
        ly_expr_value v;
        ly_error err = {0};
        int rc = ly_expr_eval(e, &ctx, &v, &err);
        if (rc != LY_EREFUSED || strcmp(err.code, rcases[k].code) != 0)
            fail_msg("%s: rc %d code %s, want %s", rcases[k].src, rc, err.code, rcases[k].code);
        ly_expr_free(e);
    }
}

static void test_eval_context_edges(void **state)
{
    (void)state;
    ly_expr_ctx ctx = base_ctx();
    ly_expr *e = compile_ok("item.sku == \"x\"", ALL);
    ly_expr_value v;
    ly_error err = {0};
    ctx.item = NULL;
    assert_int_equal(ly_expr_eval(e, &ctx, &v, &err), LY_EREFUSED);
    assert_string_equal(err.code, "expression_error");
    assert_string_equal(err.field, "1:1");
    assert_string_equal(err.message, "item.sku used without an item");
    ly_expr_free(e);

    /* NULL strings and lists read as empty */
    ctx = base_ctx();
    ctx.event_type = NULL;
    ctx.member_tags = NULL;
    ctx.nmember_tags = 5;
    ctx.event_attr_names = NULL;
    v = eval_ok("event.type == \"\" && !(\"vip\" in member.tags) && "
                "event.attributes.source == \"\"",
                &ctx);
    assert_int_equal(v.i, 1);

    /* a lower() value needs the scratch buffer */
    ctx = base_ctx();
    ctx.scratch_size = 3;
    e = compile_ok("lower(\"ABC\")", ALL);
    assert_int_equal(ly_expr_eval(e, &ctx, &v, &err), LY_EREFUSED);
    ctx.scratch_size = 4;
    assert_int_equal(ly_expr_eval(e, &ctx, &v, &err), 0);
    assert_string_equal(v.s, "abc");
    ctx.scratch = NULL;
    assert_int_equal(ly_expr_eval(e, &ctx, &v, &err), LY_EREFUSED);
    ly_expr_free(e);

    /* an unlowered string needs none */
    ctx.scratch = NULL;
    v = eval_ok("event.currency", &ctx);
    assert_int_equal(v.len, 3);

    assert_int_equal(ly_expr_eval(NULL, &ctx, &v, &err), LY_EINVAL);
}

/* ---- compile errors with their line:column ---- */

static const struct ccase {
    const char *src;
    unsigned scopes;
    const char *code;
    const char *field;
    const char *message;
} ccases[] = {
    /* lexer */
    {"\"abc", ALL, "expression_error", "1:1", "unterminated string"},
    {"\"abc\ndef\"", ALL, "expression_error", "1:1", "unterminated string"},
    {"1 + \"ab\\", ALL, "expression_error", "1:5", "unterminated string"},
    {"\"a\\qb\"", ALL, "expression_error", "1:3", "unknown escape \"\\q\" in a string"},
    {"1 & 2", ALL, "expression_error", "1:3", "expected \"&&\" (there is no \"&\" operator)"},
    {"true | false", ALL, "expression_error", "1:6",
     "expected \"||\" (there is no \"|\" operator)"},
    {"1 = 1", ALL, "expression_error", "1:3", "expected \"==\" (there is no assignment)"},
    {"1 @ 2", ALL, "expression_error", "1:3", "unexpected character \"@\""},
    {"1 +\n  $", ALL, "expression_error", "2:3", "unexpected character \"$\""},
    {"\x01", ALL, "expression_error", "1:1", "unexpected byte 0x01"},
    {"event.amount > 1.5", ALL, "expression_error", "1:16",
     "numbers are whole: amounts are integers in minor units (cents)"},
    {"event.type == 'a'", ALL, "expression_error", "1:15", "strings are written in double quotes"},
    {"1.", ALL, "expression_error", "1:2", "unexpected character \".\""},
    {"event.", ALL, "expression_error", "1:7", "expected a name after \".\""},
    {"event..type", ALL, "expression_error", "1:7", "expected a name after \".\""},
    {"12x", ALL, "expression_error", "1:1", "unknown duration unit in \"12x\" (use d, h, m or s)"},
    {"1 + 12dd", ALL, "expression_error", "1:5",
     "unknown duration unit in \"12dd\" (use d, h, m or s)"},
    {"5ms", ALL, "expression_error", "1:1", "unknown duration unit in \"5ms\" (use d, h, m or s)"},
    {"9223372036854775808", ALL, "expression_error", "1:1",
     "number \"9223372036854775808\" is out of range"},
    {"106751991168d", ALL, "expression_error", "1:1", "number \"106751991168d\" is out of range"},
    /* parser */
    {"", ALL, "expression_error", "1:1", "expected an expression, found end of input"},
    {"   ", ALL, "expression_error", "1:4", "expected an expression, found end of input"},
    {"# only a comment", ALL, "expression_error", "1:17",
     "expected an expression, found end of input"},
    {"1 +", ALL, "expression_error", "1:4", "expected an expression, found end of input"},
    {"1 +\n\n  * 2", ALL, "expression_error", "3:3", "expected an expression, found \"*\""},
    {"\n\n   )", ALL, "expression_error", "3:4", "expected an expression, found \")\""},
    {"(1 + 2", ALL, "expression_error", "1:7",
     "expected \")\" to close \"(\" at 1:1, found end of input"},
    {"x == (1 + 2", ALL, "unknown_name", "1:1", "unknown name \"x\""},
    {"(1 + 2]", ALL, "expression_error", "1:7",
     "expected \")\" to close \"(\" at 1:1, found \"]\""},
    {"weekday(now", ALL, "expression_error", "1:12",
     "expected \")\" after the arguments of weekday, found end of input"},
    {"1 + weekday(event.occurred_at", ALL, "expression_error", "1:30",
     "expected \")\" after the arguments of weekday, found end of input"},
    {"weekday(now ]", ALL, "expression_error", "1:13",
     "expected \")\" after the arguments of weekday, found \"]\""},
    {"days_between(now now)", ALL, "expression_error", "1:18",
     "expected \")\" after the arguments of days_between, found \"now\""},
    {"1 2", ALL, "expression_error", "1:3",
     "expected an operator or the end of the expression, found \"2\""},
    {"true false", ALL, "expression_error", "1:6",
     "expected an operator or the end of the expression, found \"false\""},
    {"(1))", ALL, "expression_error", "1:4",
     "expected an operator or the end of the expression, found \")\""},
    {"1 < 2 < 3", ALL, "expression_error", "1:7",
     "comparisons do not chain: use && or parentheses"},
    {"1 == 1 == true", ALL, "expression_error", "1:8",
     "comparisons do not chain: use && or parentheses"},
    {"weekday", ALL, "expression_error", "1:8", "expected \"(\" after weekday"},
    {"lower + 1", ALL, "expression_error", "1:7", "expected \"(\" after lower"},
    {"[1, 2", ALL, "expression_error", "1:6",
     "expected \",\" or \"]\" in the list, found end of input"},
    {"[1 2]", ALL, "expression_error", "1:4", "expected \",\" or \"]\" in the list, found \"2\""},
    {"[now]", ALL, "expression_error", "1:2", "a list holds string or integer literals only"},
    {"[1, 1 + 1]", ALL, "expression_error", "1:7",
     "expected \",\" or \"]\" in the list, found \"+\""},
    {"[-\"a\"]", ALL, "expression_error", "1:2", "a list holds string or integer literals only"},
    {"[1d]", ALL, "expression_error", "1:2", "a list holds string or integer literals only"},
    {"[1,]", ALL, "expression_error", "1:4", "a list holds string or integer literals only"},
    {"1 +\t)", ALL, "expression_error", "1:5", "expected an expression, found \")\""},
    {"!", ALL, "expression_error", "1:2", "expected an expression, found end of input"},
    {"weekday(,)", ALL, "expression_error", "1:9", "expected an expression, found \",\""},
    /* types */
    {"[]", ALL, "type_error", "1:1", "an empty list has no element type"},
    {"[1, \"a\"]", ALL, "type_error", "1:5", "list elements must all be integers"},
    {"[\"a\", 1]", ALL, "type_error", "1:7", "list elements must all be strings"},
    {"event.type == 1", ALL, "type_error", "1:12", "cannot compare string with integer"},
    {"event.amount == \"100\"", ALL, "type_error", "1:14", "cannot compare integer with string"},
    {"event.type == \"a\" && event.amount >= \"x\"", ALL, "type_error", "1:35",
     "cannot compare integer with string"},
    {"now < 1", ALL, "type_error", "1:5", "cannot compare time with integer"},
    {"now < 1d", ALL, "type_error", "1:5", "cannot compare time with duration"},
    {"true < false", ALL, "type_error", "1:6", "booleans can only be compared with == and !="},
    {"[1] == [1]", ALL, "type_error", "1:5", "cannot compare lists"},
    {"1 in [\"a\"]", ALL, "type_error", "1:3", "cannot look for an integer in a list of strings"},
    {"\"a\" in 1", ALL, "type_error", "1:5", "cannot look for a string in an integer"},
    {"member.tags in member.tags", ALL, "type_error", "1:13",
     "cannot look for a list of strings in a list of strings"},
    {"1 + 2 / 0", ALL, "type_error", "1:9", "division by zero"},
    {"event.amount % 0", ALL, "type_error", "1:16", "division by zero"},
    {"event.amount / (0)", ALL, "type_error", "1:16", "division by zero"},
    {"event.amount / -0", ALL, "type_error", "1:16", "division by zero"},
    {"event.amount / ((-(0)))", ALL, "type_error", "1:16", "division by zero"},
    {"!1", ALL, "type_error", "1:1", "operator \"!\" needs a boolean, found an integer"},
    {"!event.type", ALL, "type_error", "1:1", "operator \"!\" needs a boolean, found a string"},
    {"-\"a\"", ALL, "type_error", "1:1", "operator \"-\" cannot be applied to a string"},
    {"-now", ALL, "type_error", "1:1", "operator \"-\" cannot be applied to a time"},
    {"-true", ALL, "type_error", "1:1", "operator \"-\" cannot be applied to a boolean"},
    {"1 && true", ALL, "type_error", "1:3", "operator \"&&\" needs booleans, found integer"},
    {"true && 1", ALL, "type_error", "1:6", "operator \"&&\" needs booleans, found integer"},
    {"true || \"a\"", ALL, "type_error", "1:6", "operator \"||\" needs booleans, found string"},
    {"\"a\" + \"b\"", ALL, "type_error", "1:5",
     "operator \"+\" cannot be applied to string and string"},
    {"now + now", ALL, "type_error", "1:5", "operator \"+\" cannot be applied to time and time"},
    {"1d - now", ALL, "type_error", "1:4", "operator \"-\" cannot be applied to duration and time"},
    {"1d * 2", ALL, "type_error", "1:4",
     "operator \"*\" cannot be applied to duration and integer"},
    {"now + 1", ALL, "type_error", "1:5", "operator \"+\" cannot be applied to time and integer"},
    {"true + 1", ALL, "type_error", "1:6",
     "operator \"+\" cannot be applied to boolean and integer"},
    {"weekday(\"x\")", ALL, "type_error", "1:9",
     "argument 1 of weekday must be a time, found a string"},
    {"hour(1)", ALL, "type_error", "1:6", "argument 1 of hour must be a time, found an integer"},
    {"month(1d)", ALL, "type_error", "1:7", "argument 1 of month must be a time, found a duration"},
    {"day(true)", ALL, "type_error", "1:5", "argument 1 of day must be a time, found a boolean"},
    {"days_between(now, 1)", ALL, "type_error", "1:19",
     "argument 2 of days_between must be a time, found an integer"},
    {"is_birthday(now, now)", ALL, "type_error", "1:13",
     "argument 1 of is_birthday must be a string, found a time"},
    {"has_tag(\"vip\", member.tags)", ALL, "type_error", "1:9",
     "argument 1 of has_tag must be a list of strings, found a string"},
    {"has_tag([1], \"1\")", ALL, "type_error", "1:9",
     "argument 1 of has_tag must be a list of strings, found a list of integers"},
    {"starts_with(item.sku, 1 + 2)", ALL, "type_error", "1:23",
     "argument 2 of starts_with must be a string, found an integer"},
    {"lower(1)", ALL, "type_error", "1:7",
     "argument 1 of lower must be a string, found an integer"},
    {"weekday()", ALL, "type_error", "1:9", "weekday takes 1 argument, found 0"},
    {"weekday(now, now)", ALL, "type_error", "1:14", "weekday takes 1 argument"},
    {"days_between(now)", ALL, "type_error", "1:17", "days_between takes 2 arguments, found 1"},
    {"days_between(now, now, now)", ALL, "type_error", "1:24", "days_between takes 2 arguments"},
    {"lower()", ALL, "type_error", "1:7", "lower takes 1 argument, found 0"},
    {"weekday(now) + \"a\"", ALL, "type_error", "1:14",
     "operator \"+\" cannot be applied to integer and string"},
    {"lower(\"a\") + 1", ALL, "type_error", "1:12",
     "operator \"+\" cannot be applied to string and integer"},
    /* names and scopes */
    {"foo", ALL, "unknown_name", "1:1", "unknown name \"foo\""},
    {"event.amout > 5", ALL, "unknown_name", "1:1", "unknown name \"event.amout\""},
    {"event.type == \"purchase\" &&\n  event.amout > 5", ALL, "unknown_name", "2:3",
     "unknown name \"event.amout\""},
    {"event", ALL, "unknown_name", "1:1", "unknown name \"event\""},
    {"event.attributes", ALL, "unknown_name", "1:1", "unknown name \"event.attributes\""},
    {"event.attributes.a.b", ALL, "unknown_name", "1:1", "unknown name \"event.attributes.a.b\""},
    {"item.price", ALL, "unknown_name", "1:1", "unknown name \"item.price\""},
    {"member.birthday", ALL, "unknown_name", "1:1", "unknown name \"member.birthday\""},
    {"Event.type", ALL, "unknown_name", "1:1", "unknown name \"Event.type\""},
    {"NOW", ALL, "unknown_name", "1:1", "unknown name \"NOW\""},
    {"TRUE", ALL, "unknown_name", "1:1", "unknown name \"TRUE\""},
    {"true_", ALL, "unknown_name", "1:1", "unknown name \"true_\""},
    {"inx", ALL, "unknown_name", "1:1", "unknown name \"inx\""},
    {"nowx", ALL, "unknown_name", "1:1", "unknown name \"nowx\""},
    {"now.x", ALL, "unknown_name", "1:1", "unknown name \"now.x\""},
    {"item._sku", ALL, "unknown_name", "1:1", "unknown name \"item._sku\""},
    {"1 + event.Amount", ALL, "unknown_name", "1:5", "unknown name \"event.Amount\""},
    {"foo(1)", ALL, "unknown_name", "1:1", "unknown function \"foo\""},
    {"event.type(1)", ALL, "unknown_name", "1:1", "unknown function \"event.type\""},
    {"item.sku == \"x\"", LY_EXPR_EVENT | LY_EXPR_MEMBER, "unknown_name", "1:1",
     "\"item.sku\" cannot be used here"},
    {"event.amount > 0 && item.tags == item.tags", LY_EXPR_EVENT, "unknown_name", "1:21",
     "\"item.tags\" cannot be used here"},
    {"member.tier", LY_EXPR_EVENT, "unknown_name", "1:1", "\"member.tier\" cannot be used here"},
    {"member.attributes.card", LY_EXPR_EVENT | LY_EXPR_ITEM, "unknown_name", "1:1",
     "\"member.attributes.card\" cannot be used here"},
    {"event.attributes.x", LY_EXPR_MEMBER, "unknown_name", "1:1",
     "\"event.attributes.x\" cannot be used here"},
    {"event.type", 0, "unknown_name", "1:1", "\"event.type\" cannot be used here"},
};

static void test_compile_errors(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof ccases / sizeof ccases[0]; k++) {
        const struct ccase *c = &ccases[k];
        ly_expr *e = (ly_expr *)&e;
        ly_error err = {0};
        int line = -1, col = -1;
        int rc = ly_expr_compile_at(c->src, c->scopes, &e, &err, &line, &col);
        if (rc != LY_EREFUSED || e != NULL)
            fail_msg("%s: rc %d, want a refusal", c->src, rc);
        if (strcmp(err.code, c->code) != 0 || strcmp(err.field, c->field) != 0 ||
            strcmp(err.message, c->message) != 0)
            fail_msg("%s:\n got %s %s: %s\nwant %s %s: %s", c->src, err.code, err.field,
                     err.message, c->code, c->field, c->message);
        char pos[32];
        snprintf(pos, sizeof pos, "%d:%d", line, col);
        assert_string_equal(pos, c->field);
        assert_int_equal(err.rc, LY_EREFUSED);
    }
}

static void test_compile_limits(void **state)
{
    (void)state;
    char buf[LY_EXPR_MAX_SOURCE + 2];
    ly_expr *e = NULL;
    ly_error err = {0};
    int line, col;

    /* nesting */
    size_t n = 0;
    for (int i = 0; i < 60; i++)
        buf[n++] = '(';
    buf[n++] = '1';
    for (int i = 0; i < 60; i++)
        buf[n++] = ')';
    buf[n] = '\0';
    assert_int_equal(ly_expr_compile_at(buf, ALL, &e, &err, &line, &col), LY_EREFUSED);
    assert_string_equal(err.code, "expression_error");
    assert_non_null(strstr(err.message, "nested too deeply"));
    assert_int_equal(line, 1);
    assert_int_equal(col, 41);

    n = 0;
    for (int i = 0; i < 30; i++)
        buf[n++] = '(';
    buf[n++] = '1';
    for (int i = 0; i < 30; i++)
        buf[n++] = ')';
    buf[n] = '\0';
    e = compile_ok(buf, ALL);
    assert_int_equal(ly_expr_stack_depth(e), 1);
    ly_expr_free(e);

    /* each level of parentheses can hold two pending operands */
    n = 0;
    for (int i = 0; i < 39; i++)
        n += (size_t)sprintf(buf + n, "1 + 2 * (");
    buf[n++] = '3';
    for (int i = 0; i < 39; i++)
        buf[n++] = ')';
    strcpy(buf + n, " == 0");
    e = compile_ok(buf, ALL);
    assert_int_equal(ly_expr_stack_depth(e), 2 * 39 + 1);
    ly_expr_ctx deep = base_ctx();
    ly_expr_value dv;
    assert_int_equal(ly_expr_eval(e, &deep, &dv, &err), 0);
    assert_int_equal(dv.i, 0);
    ly_expr_free(e);

    memset(buf, '!', 100);
    strcpy(buf + 100, "true");
    assert_int_equal(ly_expr_compile(buf, ALL, &e, &err), LY_EREFUSED);
    assert_non_null(strstr(err.message, "nested too deeply"));

    /* a long flat chain is fine: the stack stays shallow */
    n = 0;
    for (int i = 0; i < 2000; i++) {
        memcpy(buf + n, "1 + ", 4);
        n += 4;
    }
    strcpy(buf + n, "1");
    e = compile_ok(buf, ALL);
    assert_int_equal(ly_expr_stack_depth(e), 2);
    ly_expr_value v;
    ly_expr_ctx ctx = base_ctx();
    assert_int_equal(ly_expr_eval(e, &ctx, &v, &err), 0);
    assert_int_equal(v.i, 2001);
    ly_expr_free(e);

    /* too long */
    memset(buf, ' ', LY_EXPR_MAX_SOURCE);
    buf[LY_EXPR_MAX_SOURCE] = '1';
    buf[LY_EXPR_MAX_SOURCE + 1] = '\0';
    assert_int_equal(ly_expr_compile(buf, ALL, &e, &err), LY_EINVAL);
    buf[0] = '1';
    buf[LY_EXPR_MAX_SOURCE] = '\0';
    e = compile_ok(buf, ALL);
    ly_expr_free(e);

    /* lists */
    n = 0;
    buf[n++] = '[';
    for (int i = 0; i < 1025; i++)
        n += (size_t)sprintf(buf + n, "%s%d", i ? "," : "", i);
    buf[n++] = ']';
    buf[n] = '\0';
    assert_int_equal(ly_expr_compile(buf, ALL, &e, &err), LY_EREFUSED);
    assert_string_equal(err.message, "a list holds at most 1024 elements");
    strcpy(buf + n - 6, "]");
    e = compile_ok(buf, ALL);
    ly_expr_free(e);

    /* many strings on one long line */
    n = (size_t)sprintf(buf, "\"a\\\"\" in [");
    for (int i = 0; i < 1000; i++)
        n += (size_t)sprintf(buf + n, "%s\"%c\\\"\"", i ? "," : "", 'a' + i % 26);
    strcpy(buf + n, "]");
    e = compile_ok(buf, ALL);
    assert_int_equal(ly_expr_eval(e, &ctx, &v, &err), 0);
    assert_int_equal(v.i, 1);
    ly_expr_free(e);

    assert_int_equal(ly_expr_compile(NULL, ALL, &e, &err), LY_EINVAL);
    assert_int_equal(ly_expr_compile("1", ALL, NULL, &err), LY_EINVAL);
    assert_int_equal(ly_expr_compile("(", ALL, &e, NULL), LY_EREFUSED);
}

static void test_stack_depth(void **state)
{
    (void)state;
    static const struct {
        const char *src;
        size_t depth;
    } cases[] = {
        {"1", 1},
        {"1 + 2", 2},
        {"1 + 2 + 3 + 4", 2},
        {"1 + (2 + (3 + 4))", 4},
        {"1 * 2 + 3 * 4", 3},
        {"true && false || true", 1},
        {"1 < 2 && 3 < 4", 2},
        {"days_between(now, now + 1d)", 3},
        {"starts_with(lower(item.sku), \"x\")", 2},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ly_expr *e = compile_ok(cases[k].src, ALL);
        if (ly_expr_stack_depth(e) != cases[k].depth)
            fail_msg("%s: depth %zu, want %zu", cases[k].src, ly_expr_stack_depth(e),
                     cases[k].depth);
        assert_true(ly_expr_code_size(e) > 0);
        ly_expr_free(e);
    }
}

static void test_scopes_used(void **state)
{
    (void)state;
    static const struct {
        const char *src;
        unsigned scopes;
    } cases[] = {
        {"1 + 2 == 3", 0},
        {"now > now - 1d", 0},
        {"event.amount > 0", LY_EXPR_EVENT},
        {"event.attributes.x == \"\"", LY_EXPR_EVENT},
        {"item.sku == \"a\"", LY_EXPR_ITEM},
        {"has_tag(item.tags, \"x\") || member.tier == \"gold\"", LY_EXPR_ITEM | LY_EXPR_MEMBER},
        {"member.attributes.card == \"yes\"", LY_EXPR_MEMBER},
        {"false && event.type == member.tier", LY_EXPR_EVENT | LY_EXPR_MEMBER},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ly_expr *e = compile_ok(cases[k].src, ALL);
        if (ly_expr_scopes(e) != cases[k].scopes)
            fail_msg("%s: scopes %u, want %u", cases[k].src, ly_expr_scopes(e), cases[k].scopes);
        ly_expr_free(e);
    }
}

/* Many list literals in one expression: each keeps only its own elements. */
static void test_many_lists(void **state)
{
    (void)state;
    char buf[LY_EXPR_MAX_SOURCE];
    size_t n = 0;
    for (int i = 0; i < 600; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%d in [%d, %d]", i ? " && " : "", i, i,
                              -i);
    ly_expr *e = compile_ok(buf, ALL);
    ly_expr_ctx ctx = base_ctx();
    ly_expr_value v;
    ly_error err;
    assert_int_equal(ly_expr_eval(e, &ctx, &v, &err), 0);
    assert_int_equal(v.i, 1);
    ly_expr_free(e);
}

/* ---- every binary operator against every pair of operand types ---- */

static const char *const samples[] = {
    [LY_T_INT] = "1",        [LY_T_STR] = "\"a\"",   [LY_T_BOOL] = "true",
    [LY_T_TIME] = "now",     [LY_T_DURATION] = "1d", [LY_T_LIST_STR] = "[\"a\"]",
    [LY_T_LIST_INT] = "[1]",
};
#define NTYPES 7

/* The language's typing rules, written again independently of the compiler:
 * the result type, or -1 where the pair is refused. */
static int expected_type(const char *op, int l, int r)
{
    bool num = l == LY_T_INT && r == LY_T_INT;
    if (!strcmp(op, "+")) {
        if (num)
            return LY_T_INT;
        if ((l == LY_T_TIME && r == LY_T_DURATION) || (l == LY_T_DURATION && r == LY_T_TIME))
            return LY_T_TIME;
        if (l == LY_T_DURATION && r == LY_T_DURATION)
            return LY_T_DURATION;
        return -1;
    }
    if (!strcmp(op, "-")) {
        if (num)
            return LY_T_INT;
        if (l == LY_T_TIME && r == LY_T_DURATION)
            return LY_T_TIME;
        if ((l == LY_T_TIME && r == LY_T_TIME) || (l == LY_T_DURATION && r == LY_T_DURATION))
            return LY_T_DURATION;
        return -1;
    }
    if (!strcmp(op, "*") || !strcmp(op, "/") || !strcmp(op, "%"))
        return num ? LY_T_INT : -1;
    bool list = l == LY_T_LIST_STR || l == LY_T_LIST_INT;
    if (!strcmp(op, "==") || !strcmp(op, "!="))
        return l == r && !list ? LY_T_BOOL : -1;
    if (op[0] == '<' || op[0] == '>')
        return l == r && !list && l != LY_T_BOOL ? LY_T_BOOL : -1;
    if (!strcmp(op, "in"))
        return (l == LY_T_STR && (r == LY_T_LIST_STR || r == LY_T_STR)) ||
                       (l == LY_T_INT && r == LY_T_LIST_INT)
                   ? LY_T_BOOL
                   : -1;
    return l == LY_T_BOOL && r == LY_T_BOOL ? LY_T_BOOL : -1; /* && || */
}

static void test_type_matrix(void **state)
{
    (void)state;
    static const char *const ops[] = {
        "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "in", "&&", "||"};
    ly_expr_ctx ctx = base_ctx();
    int checked = 0;
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
        for (int l = 0; l < NTYPES; l++)
            for (int r = 0; r < NTYPES; r++) {
                char src[64];
                snprintf(src, sizeof src, "%s %s %s", samples[l], ops[o], samples[r]);
                ly_expr *e = NULL;
                ly_error err = {0};
                int rc = ly_expr_compile(src, ALL, &e, &err);
                int want = expected_type(ops[o], l, r);
                if (want < 0) {
                    if (rc != LY_EREFUSED || strcmp(err.code, "type_error") != 0)
                        fail_msg("%s: rc %d %s, want a type error", src, rc, err.code);
                    char field[32];
                    snprintf(field, sizeof field, "1:%zu", strlen(samples[l]) + 2);
                    if (strcmp(err.field, field) != 0)
                        fail_msg("%s: at %s, want %s", src, err.field, field);
                } else {
                    if (rc != 0)
                        fail_msg("%s: %s %s", src, err.field, err.message);
                    assert_int_equal(ly_expr_type(e), want);
                    ly_expr_value v;
                    assert_int_equal(ly_expr_eval(e, &ctx, &v, &err), 0);
                    assert_int_equal(v.type, want);
                    ly_expr_free(e);
                }
                checked++;
            }
    assert_int_equal(checked, 14 * 49);
}

static void test_unary_and_function_matrix(void **state)
{
    (void)state;
    ly_expr_ctx ctx = base_ctx();
    for (int t = 0; t < NTYPES; t++) {
        char src[64];
        ly_expr *e = NULL;
        ly_error err = {0};
        snprintf(src, sizeof src, "-%s", samples[t]);
        int rc = ly_expr_compile(src, ALL, &e, &err);
        assert_int_equal(rc == 0, t == LY_T_INT || t == LY_T_DURATION);
        ly_expr_free(e);
        e = NULL;
        snprintf(src, sizeof src, "!%s", samples[t]);
        rc = ly_expr_compile(src, ALL, &e, &err);
        assert_int_equal(rc == 0, t == LY_T_BOOL);
        ly_expr_free(e);
    }
    static const struct {
        const char *name;
        int nargs;
        enum ly_expr_type args[2];
    } fns[] = {
        {"weekday", 1, {LY_T_TIME}},
        {"hour", 1, {LY_T_TIME}},
        {"month", 1, {LY_T_TIME}},
        {"day", 1, {LY_T_TIME}},
        {"days_between", 2, {LY_T_TIME, LY_T_TIME}},
        {"is_birthday", 2, {LY_T_STR, LY_T_TIME}},
        {"has_tag", 2, {LY_T_LIST_STR, LY_T_STR}},
        {"starts_with", 2, {LY_T_STR, LY_T_STR}},
        {"lower", 1, {LY_T_STR}},
    };
    for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++)
        for (int pos = 0; pos < fns[f].nargs; pos++)
            for (int t = 0; t < NTYPES; t++) {
                char src[128];
                int n = snprintf(src, sizeof src, "%s(", fns[f].name);
                for (int a = 0; a < fns[f].nargs; a++)
                    n += snprintf(src + n, sizeof src - (size_t)n, "%s%s", a ? ", " : "",
                                  samples[a == pos ? t : (int)fns[f].args[a]]);
                snprintf(src + n, sizeof src - (size_t)n, ")");
                ly_expr *e = NULL;
                ly_error err = {0};
                int rc = ly_expr_compile(src, ALL, &e, &err);
                if ((rc == 0) != (t == (int)fns[f].args[pos]))
                    fail_msg("%s: rc %d %s", src, rc, err.message);
                if (rc == 0) {
                    ly_expr_value v;
                    assert_int_equal(ly_expr_eval(e, &ctx, &v, &err), 0);
                } else {
                    assert_string_equal(err.code, "type_error");
                }
                ly_expr_free(e);
            }
}

/* ---- time zones and calendars ---- */

static int has_zone(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
    return access(path, R_OK) == 0;
}

static int64_t eval_at(const char *src, const char *zone, const char *now, const char *birthdate)
{
    ly_expr_ctx ctx = base_ctx();
    if (zone && ly_tz_get(zone, &ctx.tz) != 0)
        fail_msg("zone %s", zone);
    ctx.now = at(now);
    ctx.event_occurred_at = ctx.now;
    if (birthdate)
        ctx.member_birthdate = birthdate;
    return eval_ok(src, &ctx).i;
}

static const struct zcase {
    const char *src;
    const char *zone; /* NULL: UTC */
    const char *now;
    int64_t want;
} zcases[] = {
    /* New York across the spring change (2027-03-14 02:00 EST -> 03:00 EDT) */
    {"hour(now)", "America/New_York", "2027-03-14T06:59:00Z", 1},
    {"hour(now)", "America/New_York", "2027-03-14T07:00:00Z", 3},
    {"hour(now + 1h)", "America/New_York", "2027-03-14T06:30:00Z", 3},
    {"day(now)", "America/New_York", "2027-03-14T07:00:00Z", 14},
    /* and the autumn one (2027-11-07 02:00 EDT -> 01:00 EST): 01:30 twice */
    {"hour(now)", "America/New_York", "2027-11-07T05:30:00Z", 1},
    {"hour(now)", "America/New_York", "2027-11-07T06:30:00Z", 1},
    {"hour(now)", "America/New_York", "2027-11-07T07:30:00Z", 2},
    /* a Sunday in UTC is still Saturday evening in New York */
    {"weekday(now)", "America/New_York", "2027-01-10T03:00:00Z", 6},
    {"weekday(now)", NULL, "2027-01-10T03:00:00Z", 7},
    {"hour(now)", "America/New_York", "2027-01-10T03:00:00Z", 22},
    {"day(now)", "America/New_York", "2027-01-10T03:00:00Z", 9},
    {"weekday(now)", "America/New_York", "2027-07-05T03:59:00Z", 7},
    {"weekday(now)", "America/New_York", "2027-07-05T04:00:00Z", 1},
    {"month(now)", "America/New_York", "2027-01-01T04:59:59Z", 12},
    {"month(now)", "America/New_York", "2027-01-01T05:00:00Z", 1},
    {"weekday(now)", "Asia/Tokyo", "2027-01-10T20:00:00Z", 1},
    {"weekday(now)", "UTC", "2027-01-10T20:00:00Z", 7},
    /* each ISO weekday */
    {"weekday(now)", NULL, "2027-01-04T12:00:00Z", 1},
    {"weekday(now)", NULL, "2027-01-05T12:00:00Z", 2},
    {"weekday(now)", NULL, "2027-01-06T12:00:00Z", 3},
    {"weekday(now)", NULL, "2027-01-07T12:00:00Z", 4},
    {"weekday(now)", NULL, "2027-01-08T12:00:00Z", 5},
    {"weekday(now)", NULL, "1970-01-01T00:00:00Z", 4},
    {"weekday(now)", NULL, "1969-12-31T23:59:59Z", 3},
    {"hour(now)", NULL, "1969-12-31T23:59:59Z", 23},
    {"day(now)", NULL, "2028-02-29T12:00:00Z", 29},
    /* days_between counts calendar days in the zone, across years */
    {"days_between(now - 2h, now)", NULL, "2027-01-01T01:00:00Z", 1},
    {"days_between(now - 2h, now)", "America/New_York", "2027-01-01T01:00:00Z", 0},
    {"days_between(now - 366d, now)", NULL, "2025-01-01T00:00:00Z", 366},
    {"days_between(now, now + 365d)", NULL, "2023-03-01T00:00:00Z", 365},
    {"days_between(now - 3650d, now)", NULL, "2030-06-01T12:00:00Z", 3650},
    {"days_between(now, now + 23h)", NULL, "2027-03-13T00:30:00Z", 0},
    {"days_between(now, now + 23h)", "America/New_York", "2027-03-13T17:00:00Z", 1},
    {"days_between(now, now + 1d)", "America/New_York", "2027-11-06T16:00:00Z", 1},
    {"now - (now - 1d) == 24h", "America/New_York", "2027-03-14T12:00:00Z", 1},
    /* coffee in the morning, in the program's time zone */
    {"item.category == \"coffee\" && hour(event.occurred_at) < 11", "America/New_York",
     "2027-01-09T14:30:00Z", 1},
    {"item.category == \"coffee\" && hour(event.occurred_at) < 11", "America/New_York",
     "2027-01-09T16:00:00Z", 0},
    {"item.category == \"coffee\" && hour(event.occurred_at) < 11", NULL, "2027-01-09T10:59:59Z",
     1},
    {"weekday(event.occurred_at) >= 6", "America/New_York", "2027-01-11T04:00:00Z", 1},
};

static void test_zones(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof zcases / sizeof zcases[0]; k++) {
        const struct zcase *c = &zcases[k];
        if (c->zone && strcmp(c->zone, "UTC") != 0 && !has_zone(c->zone))
            continue;
        int64_t got = eval_at(c->src, c->zone, c->now, NULL);
        int64_t want = c->want;
        if (got != want)
            fail_msg("%s in %s at %s: %lld, want %lld", c->src, c->zone ? c->zone : "UTC", c->now,
                     (long long)got, (long long)want);
    }
}

static const struct bcase {
    const char *birthdate;
    const char *now;
    const char *zone;
    int want;
} bcases[] = {
    {"1990-01-09", "2027-01-09T00:00:00Z", NULL, 1},
    {"1990-01-09", "2027-01-09T23:59:59Z", NULL, 1},
    {"1990-01-09", "2027-01-10T00:00:00Z", NULL, 0},
    {"1990-01-09", "2027-01-08T23:59:59Z", NULL, 0},
    {"1990-01-09", "1990-01-09T12:00:00Z", NULL, 1},
    {"2000-02-29", "2027-02-28T12:00:00Z", NULL, 1},
    {"2000-02-29", "2027-03-01T12:00:00Z", NULL, 0},
    {"2000-02-29", "2028-02-28T12:00:00Z", NULL, 0},
    {"2000-02-29", "2028-02-29T12:00:00Z", NULL, 1},
    {"2000-02-29", "2100-02-28T12:00:00Z", NULL, 1}, /* 2100 is not a leap year */
    {"2000-02-29", "2000-02-29T12:00:00Z", NULL, 1},
    {"2000-02-28", "2028-02-28T12:00:00Z", NULL, 1},
    {"2000-02-28", "2028-02-29T12:00:00Z", NULL, 0},
    {"1985-12-31", "2027-12-31T12:00:00Z", NULL, 1},
    {"1985-12-31", "2028-01-01T03:00:00Z", "America/New_York", 1},
    {"1985-12-31", "2028-01-01T03:00:00Z", NULL, 0},
    {"1990-01-10", "2027-01-10T03:00:00Z", "America/New_York", 0},
    {"1990-01-10", "2027-01-10T03:00:00Z", NULL, 1},
    {"", "2027-01-09T12:00:00Z", NULL, 0},
    {"garbage", "2027-01-09T12:00:00Z", NULL, 0},
    {"1990-1-9", "2027-01-09T12:00:00Z", NULL, 0},
    {"1990-13-09", "2027-01-09T12:00:00Z", NULL, 0},
    {"1990-00-09", "2027-01-09T12:00:00Z", NULL, 0},
    {"1990-01-00", "2027-01-09T12:00:00Z", NULL, 0},
    {"1990-02-30", "2027-02-28T12:00:00Z", NULL, 0},
    {"1991-02-29", "2027-02-28T12:00:00Z", NULL, 0},
    {"1990-04-31", "2027-04-30T12:00:00Z", NULL, 0},
    {"1990/01/09", "2027-01-09T12:00:00Z", NULL, 0},
    {"1990-01-09T", "2027-01-09T12:00:00Z", NULL, 0},
    {"19x0-01-09", "2027-01-09T12:00:00Z", NULL, 0},
};

static void test_birthdays(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof bcases / sizeof bcases[0]; k++) {
        const struct bcase *c = &bcases[k];
        if (c->zone && !has_zone(c->zone))
            continue;
        int64_t got = eval_at("is_birthday(member.birthdate, now)", c->zone, c->now, c->birthdate);
        if (got != c->want)
            fail_msg("is_birthday(%s) at %s in %s: %lld", c->birthdate, c->now,
                     c->zone ? c->zone : "UTC", (long long)got);
    }
    /* a NULL birthdate is the empty string */
    ly_expr_ctx ctx = base_ctx();
    ctx.member_birthdate = NULL;
    assert_int_equal(eval_ok("is_birthday(member.birthdate, now)", &ctx).i, 0);
}

/* One compiled expression, evaluated by many threads' worth of contexts in
 * turn: evaluation keeps no state in the expression. */
static void test_reuse(void **state)
{
    (void)state;
    ly_expr *e = compile_ok("item.quantity * 2 + member.purchase_count", ALL);
    for (int i = 0; i < 100; i++) {
        ly_expr_item it = item;
        it.quantity = i;
        ly_expr_ctx ctx = base_ctx();
        ctx.item = &it;
        ctx.member_purchase_count = i;
        ly_expr_value v;
        ly_error err;
        assert_int_equal(ly_expr_eval(e, &ctx, &v, &err), 0);
        assert_int_equal(v.i, 3 * i);
    }
    ly_expr_free(e);
    ly_expr_free(NULL);
    assert_string_equal(ly_expr_type_name(LY_T_LIST_INT), "list of integers");
    assert_string_equal(ly_expr_type_name((enum ly_expr_type)99), "unknown");
}

/* Why a rule did not match: the first false condition of the outermost
 * && chain. */
static void test_explain(void **state)
{
    (void)state;
    static const struct {
        const char *src;
        const char *why;
    } cases[] = {
        {"event.channel == \"web\" && weekday(event.occurred_at) >= 6", "event.channel == \"web\""},
        {"weekday(event.occurred_at) >= 6 && event.channel == \"web\"", "event.channel == \"web\""},
        {"weekday(event.occurred_at) >= 6 && event.channel == \"web\" && 1 / (item.quantity - 3) > "
         "1",
         "event.channel == \"web\""},
        {"event.amount > 0 &&\n  (member.tier == \"silver\" && true) && true",
         "(member.tier == \"silver\" && true)"},
        {"event.amount > 0 && event.amount > 100000 # not that much", "event.amount > 100000"},
        {"  # leading comment\n  event.amount > 100000  ", "event.amount > 100000"},
        {"event.channel == \"web\" || false", "event.channel == \"web\" || false"},
        {"true && false || event.amount < 0", "true && false || event.amount < 0"},
        {"(true && false) || false", "(true && false) || false"},
        {"!(true && true)", "!(true && true)"},
        {"true && !(true && true)", "!(true && true)"},
        {"has_tag(member.tags, \"vip\") && starts_with(item.sku, \"TEA\")",
         "starts_with(item.sku, \"TEA\")"},
        {"true && true", ""},
        {"event.amount > 0", ""},
    };
    ly_expr_ctx ctx = base_ctx();
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ly_expr *e = compile_ok(cases[k].src, ALL);
        char buf[128] = "junk";
        ly_error err = {0};
        int rc = ly_expr_explain(e, &ctx, buf, sizeof buf, &err);
        if (rc != 0 || strcmp(buf, cases[k].why) != 0)
            fail_msg("%s: rc %d \"%s\", want \"%s\"", cases[k].src, rc, buf, cases[k].why);
        /* explaining does not change what evaluation gives */
        ly_expr_value v;
        assert_int_equal(ly_expr_eval(e, &ctx, &v, &err), 0);
        assert_int_equal(v.i, cases[k].why[0] == '\0');
        ly_expr_free(e);
    }

    ly_expr *e = compile_ok("event.amount > 0 && event.channel == \"web\"", ALL);
    char buf[8];
    ly_error err;
    assert_int_equal(ly_expr_explain(e, &ctx, buf, sizeof buf, &err), 0);
    assert_string_equal(buf, "even...");
    assert_int_equal(ly_expr_explain(e, &ctx, buf, 1, &err), 0);
    assert_string_equal(buf, "");
    assert_int_equal(ly_expr_explain(e, &ctx, buf, 0, &err), LY_EINVAL);
    ly_expr_free(e);

    e = compile_ok("event.amount", ALL);
    assert_int_equal(ly_expr_explain(e, &ctx, buf, sizeof buf, &err), LY_EINVAL);
    ly_expr_free(e);

    e = compile_ok("event.amount > 0 && 1 / (event.amount - 12345) > 0", ALL);
    assert_int_equal(ly_expr_explain(e, &ctx, buf, sizeof buf, &err), LY_EREFUSED);
    assert_string_equal(err.code, "expression_error");
    ly_expr_free(e);
}

/* Several threads evaluating one compiled expression at once. */
struct worker {
    const ly_expr *e;
    int id;
    int wrong;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    static const char *const tiers[] = {"GOLD", "Silver"};
    for (int i = 0; i < 20000; i++) {
        ly_expr_item it = item;
        it.quantity = w->id * 100000 + i;
        ly_expr_ctx ctx = base_ctx();
        ctx.item = &it;
        ctx.member_tier = tiers[i % 2];
        ly_expr_value v;
        ly_error err;
        if (ly_expr_eval(w->e, &ctx, &v, &err) != 0 || v.i != (i % 2 == 0))
            w->wrong++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    ly_expr *e = compile_ok("item.quantity % 2 == 0 && lower(member.tier) == \"gold\" && "
                            "weekday(event.occurred_at) == 6",
                            ALL);
    pthread_t th[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.e = e, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].wrong, 0);
    }
    ly_expr_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_table),
        cmocka_unit_test(test_eval_lists),
        cmocka_unit_test(test_eval_errors),
        cmocka_unit_test(test_eval_context_edges),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_compile_limits),
        cmocka_unit_test(test_stack_depth),
        cmocka_unit_test(test_scopes_used),
        cmocka_unit_test(test_many_lists),
        cmocka_unit_test(test_type_matrix),
        cmocka_unit_test(test_unary_and_function_matrix),
        cmocka_unit_test(test_zones),
        cmocka_unit_test(test_birthdays),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_explain),
    };
    return cmocka_run_group_tests(tests, NULL, free_last);
}
