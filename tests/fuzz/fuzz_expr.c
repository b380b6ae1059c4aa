/* libFuzzer harness for the expression language: every input is compiled
 * (its first byte picks the scopes) and, when it compiles, evaluated against
 * a fixed context in UTC and in America/New_York. Evaluation must not
 * allocate (a sanitizer malloc hook aborts if it does) and must give the same
 * answer twice. tests/fuzz/README.md says how to build and run it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyal/error.h"
#include "loyal/expr.h"
#include "loyal/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));

static volatile int in_eval;

static void on_malloc(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    if (in_eval) {
        fprintf(stderr, "ly_expr_eval allocated %zu bytes\n", n);
        abort();
    }
}

static void on_free(const volatile void *p)
{
    (void)p;
}

static const char *const attr_names[] = {"source", "campaign"};
static const char *const attr_values[] = {"app", "Winter"};
static const char *const member_tags[] = {"vip", "card_holder"};
static const char *const item_tags[] = {"hot", "Organic"};

static void eval_in(const ly_expr *e, const ly_tz *tz)
{
    static char scratch[64];
    static const ly_expr_item item = {"COF-12", "coffee", 3, 450, 1350, item_tags, 2};
    ly_expr_ctx ctx = {
        .event_type = "purchase",
        .event_currency = "USD",
        .event_channel = "store",
        .event_store = "S-001",
        .event_amount = 12345,
        .event_occurred_at = 1799505000000, /* 2027-01-09T14:30:00Z */
        .event_attr_names = attr_names,
        .event_attr_values = attr_values,
        .nevent_attrs = 2,
        .item = &item,
        .member_tier = "gold",
        .member_status = "active",
        .member_birthdate = "2000-02-29",
        .member_created_at = 1749981600000,
        .member_lifetime_spend = INT64_MAX,
        .member_purchase_count = 42,
        .member_days_since_last_purchase = 7,
        .member_attr_names = attr_names,
        .member_attr_values = attr_values,
        .nmember_attrs = 2,
        .member_tags = member_tags,
        .nmember_tags = 2,
        .now = 1799506800000,
        .tz = tz,
        .scratch = scratch,
        .scratch_size = sizeof scratch,
    };
    ly_expr_value v, again;
    ly_error err, err2;
    in_eval = 1;
    int rc = ly_expr_eval(e, &ctx, &v, &err);
    int rc2 = ly_expr_eval(e, &ctx, &again, &err2);
    char why[48] = "x";
    int rc3 = ly_expr_type(e) == LY_T_BOOL ? ly_expr_explain(e, &ctx, why, sizeof why, &err2) : rc;
    in_eval = 0;
    /* an explanation exactly when the condition is false */
    if (rc3 != rc || (ly_expr_type(e) == LY_T_BOOL && rc == 0 && (why[0] == '\0') != (v.i != 0)))
        abort();
    /* the same context gives the same answer: evaluation keeps no state */
    if (rc != rc2 || (rc == 0 && (v.type != again.type || v.i != again.i || v.len != again.len)))
        abort();
    if (rc == 0 && v.type != ly_expr_type(e))
        abort();
    if (ly_expr_stack_depth(e) > 128)
        abort();
    if (rc != 0 && (rc != LY_EREFUSED || err.message[0] == '\0'))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    static const ly_tz *utc, *ny;
    if (!ready) {
        ly_tz_get("UTC", &utc);
        if (ly_tz_get("America/New_York", &ny) != 0)
            ny = NULL;
        __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
        ready = 1;
    }
    if (size == 0)
        return 0;
    unsigned scopes = data[0] & 7;
    char *src = malloc(size);
    if (!src)
        return 0;
    memcpy(src, data + 1, size - 1);
    src[size - 1] = '\0';
    ly_expr *e = NULL;
    ly_error err;
    int line, col;
    int rc = ly_expr_compile_at(src, scopes, &e, &err, &line, &col);
    if (rc == 0) {
        eval_in(e, utc);
        eval_in(e, NULL);
        if (ny)
            eval_in(e, ny);
        ly_expr_free(e);
    } else if (rc == LY_EREFUSED) {
        char field[32];
        snprintf(field, sizeof field, "%d:%d", line, col);
        if (line < 1 || col < 1 || strcmp(field, err.field) != 0 || err.message[0] == '\0')
            abort();
    } else if (rc != LY_EINVAL && rc != LY_ENOMEM) {
        abort();
    }
    free(src);
    return 0;
}
