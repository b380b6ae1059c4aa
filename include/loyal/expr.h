/* The expression language of rules and segments (DESIGN §5): a typed,
 * loop-free language compiled once to a compact bytecode and evaluated
 * without allocating. A compiled ly_expr is immutable and owned by the
 * caller (ly_expr_free); evaluating it from several threads at once is safe.
 * docs/expr.md is the language reference. */
#ifndef LOYAL_EXPR_H
#define LOYAL_EXPR_H

#include <stddef.h>
#include <stdint.h>

#include "loyal/error.h"
#include "loyal/tz.h"

typedef struct ly_expr ly_expr;

/* Which names an expression may use: a rule's `when` has the event and the
 * member, its `items` filter the item too. `now` is always available. */
enum ly_expr_scope { LY_EXPR_EVENT = 1, LY_EXPR_ITEM = 2, LY_EXPR_MEMBER = 4 };

enum ly_expr_type {
    LY_T_INT,
    LY_T_STR,
    LY_T_BOOL,
    LY_T_TIME,     /* milliseconds since the Unix epoch, UTC */
    LY_T_DURATION, /* milliseconds */
    LY_T_LIST_STR,
    LY_T_LIST_INT,
};

/* Longest source accepted, in bytes. */
#define LY_EXPR_MAX_SOURCE 16384

/* Compiles src for the names of `scopes` (LY_EXPR_* flags). 0, LY_EREFUSED
 * with err->code "expression_error" (syntax), "type_error" or "unknown_name",
 * err->field "line:column" (1-based, columns in bytes) and a message saying
 * what was expected; LY_EINVAL for a NULL or over-long source; LY_ENOMEM. */
int ly_expr_compile(const char *src, unsigned scopes, ly_expr **out, ly_error *err);
/* The same, also giving the position of a compile error as integers (0, 0
 * when the error has no position). line and column may be NULL. */
int ly_expr_compile_at(const char *src, unsigned scopes, ly_expr **out, ly_error *err, int *line,
                       int *column);
void ly_expr_free(ly_expr *e);

/* The type of the expression's value, known at compile time. */
enum ly_expr_type ly_expr_type(const ly_expr *e);
/* A type's name as the error messages spell it ("integer", "list of strings"). */
const char *ly_expr_type_name(enum ly_expr_type t);
/* Bytecode instructions and the value stack depth evaluation needs. */
size_t ly_expr_code_size(const ly_expr *e);
size_t ly_expr_stack_depth(const ly_expr *e);
/* The scopes (LY_EXPR_* flags) whose names the expression reads: an `items`
 * filter that reads no item.* name selects all items or none. */
unsigned ly_expr_scopes(const ly_expr *e);

typedef struct ly_expr_item {
    const char *sku, *category;
    int64_t quantity, unit_price, amount;
    const char *const *tags;
    size_t ntags;
} ly_expr_item;

/* What the names refer to. NULL strings read as "", missing attributes as "".
 * Times are read in tz (NULL: UTC). The strings are borrowed for the call. */
typedef struct ly_expr_ctx {
    const char *event_type, *event_currency, *event_channel, *event_store;
    int64_t event_amount, event_occurred_at;
    const char *const *event_attr_names, *const *event_attr_values;
    size_t nevent_attrs;
    const ly_expr_item *item; /* NULL when there is none: item.* then fails */
    const char *member_tier, *member_status, *member_birthdate;
    int64_t member_created_at, member_lifetime_spend, member_purchase_count,
        member_days_since_last_purchase;
    const char *const *member_attr_names, *const *member_attr_values;
    size_t nmember_attrs;
    const char *const *member_tags;
    size_t nmember_tags;
    int64_t now;
    const ly_tz *tz;
    /* Only for an expression whose value is a string made by lower(): the
     * value is written here (NUL-terminated). Conditions never need it. */
    char *scratch;
    size_t scratch_size;
} ly_expr_ctx;

/* i holds integers, times, durations and booleans (0/1); s and len strings
 * (not NUL-terminated in general); list_s or list_i and len lists. Borrowed
 * from the context, the compiled expression or ctx->scratch. */
typedef struct ly_expr_value {
    enum ly_expr_type type;
    int64_t i;
    const char *s;
    size_t len;
    const char *const *list_s;
    const int64_t *list_i;
} ly_expr_value;

/* Evaluates e; never allocates. 0, or LY_EREFUSED with err->code
 * "expression_overflow" (an integer overflowed) or "expression_error"
 * (division by zero at run time, item.* without an item, a lower() result
 * larger than the scratch buffer), err->field the "line:column" of the
 * failing operator or name; LY_EINVAL for NULL arguments. */
int ly_expr_eval(const ly_expr *e, const ly_expr_ctx *ctx, ly_expr_value *out, ly_error *err);

/* Why a condition is false in ctx: the first of its conditions (the operands
 * of its outermost && chain; the whole expression when it has none, or has
 * an || outside parentheses) that is false, as its source text in buf,
 * NUL-terminated, cut to "..." if it does not fit. buf is "" when the
 * expression is true. Never allocates. 0, the errors of ly_expr_eval, or
 * LY_EINVAL for an expression that is not boolean. */
int ly_expr_explain(const ly_expr *e, const ly_expr_ctx *ctx, char *buf, size_t size,
                    ly_error *err);

#endif
