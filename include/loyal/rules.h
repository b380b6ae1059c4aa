/* Earn rules (DESIGN §5, docs/rules.md): a rule's JSON checked and compiled
 * once, and a program's rules evaluated against one event. Pure: no store,
 * no clock, no allocation while evaluating. The engine reads cap usage,
 * applies caps (ly_rule_cap_*) and posts what the rules gave. */
#ifndef LOYAL_RULES_H
#define LOYAL_RULES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "loyal/error.h"
#include "loyal/expr.h"
#include "loyal/ledger.h"
#include "loyal/tz.h"

enum ly_rule_effect {
    LY_EFFECT_POINTS_PER, /* points per amount of the eligible items */
    LY_EFFECT_POINTS,     /* a fixed number of points */
    LY_EFFECT_MULTIPLY,   /* multiplies the points lower-priority rules gave */
    LY_EFFECT_CASHBACK,   /* a percentage of the eligible amount, as credit */
    LY_EFFECT_REWARD,     /* grants a reward of the catalog */
};

/* Decimals ("1.5", "2", "0.25") are held as integers times 10^4. */
#define LY_DECIMAL_SCALE 10000

enum ly_period {
    LY_PERIOD_DAY,
    LY_PERIOD_WEEK,
    LY_PERIOD_MONTH,
    LY_PERIOD_YEAR,
    LY_PERIOD_LIFETIME
};

/* A cap: at most `points` points, `credit` minor units or `count` firings
 * (0: that kind is not limited; at least one is set) per member, or for the
 * whole rule (a budget), per period. */
typedef struct ly_rule_cap {
    int per_rule;
    enum ly_period period;
    int64_t points, credit, count;
} ly_rule_cap;

#define LY_RULE_MAX_CAPS 4
#define LY_RULE_ID_MAX   64

typedef struct ly_rule {
    char id[LY_RULE_ID_MAX + 1];
    char on[72];    /* "purchase", "return", "signup", "birthday", "custom:<name>" */
    ly_expr *when;  /* NULL: always */
    ly_expr *items; /* NULL: the whole event is eligible */
    enum ly_rule_effect effect;
    int64_t points, per_minor; /* points_per (points, per_minor) and points (points) */
    enum ly_rounding rounding;
    int64_t factor; /* multiply and cashback_percent, times LY_DECIMAL_SCALE */
    char reward[LY_RULE_ID_MAX + 1];
    ly_rule_cap caps[LY_RULE_MAX_CAPS];
    size_t ncaps;
    int64_t active_from, active_to; /* INT64_MIN, INT64_MAX when open */
    int64_t priority;
    int stack;   /* 1: combines with others; 0: exclusive */
    int enabled; /* 0: kept but never applied */
    /* Which stored version this is; set by the caller. */
    int64_t row_id, version;
} ly_rule;

/* Checks a rule's JSON (the body of POST /v1/rules) and compiles it. On
 * success *out is a new rule (ly_rule_free) and, when canon is not NULL,
 * *canon the rule as it is kept: the fields given with their defaults
 * filled in (json_decref). Errors: LY_EINVAL with the JSON-shape codes of
 * ly_json_check ("unknown_field", "invalid_type", "missing_field",
 * "too_long") or "invalid_value", naming the field ("effect.points_per.per_minor");
 * LY_EREFUSED for an expression that does not compile, with the compiler's
 * code ("expression_error", "type_error", "unknown_name"), field "when" or
 * "items" and a message beginning with "when:LINE:COLUMN: ". */
int ly_rule_compile(const json_t *body, ly_rule **out, json_t **canon, ly_error *err);
void ly_rule_free(ly_rule *r);

/* Parses a decimal "2", "1.5", "0.0001" (at most 4 decimals, no sign, no
 * exponent) into *out times LY_DECIMAL_SCALE: 0 or LY_EINVAL. */
int ly_decimal_parse(const char *s, int64_t *out);

/* Sorts rules into evaluation order: ascending priority, then id. */
void ly_rules_sort(ly_rule **rules, size_t n);

/* An event as the rules see it. ctx holds the event's and the member's
 * names (ctx.item is set by the evaluation, item by item); amount is the
 * event's amount and items its line items (item.amount filled in). */
typedef struct ly_rule_event {
    const char *type;
    int64_t occurred_at;
    int64_t amount;
    const ly_expr_item *items;
    size_t nitems;
    ly_expr_ctx ctx;
    int quiet; /* 1: leave reasons empty (only simulations show them) */
} ly_rule_event;

/* What one rule did to the event. considered: its `on` is the event's type
 * (rules of other types are not mentioned to anyone). matched: enabled,
 * active at the event's time, `when` true and, with an `items` filter, at
 * least one item selected. applied: matched and not set aside for an
 * exclusive rule. reason says why a considered rule did not apply ("" when
 * it did). points and credit are what its effect gave, before caps. */
typedef struct ly_rule_outcome {
    const ly_rule *rule;
    int considered, matched, applied;
    char reason[160];
    int64_t eligible_amount;
    int64_t points, credit;
} ly_rule_outcome;

/* Evaluates the rules (in ly_rules_sort order) against the event into
 * out[0..n). scratch must hold ly_rules_scratch_size(n, ev->nitems) bytes,
 * suitably aligned for int64_t (any malloc'd or arena memory is). Never
 * allocates. 0; LY_EREFUSED "rule_error" naming the rule in err->field
 * ("rules.<id>") when an expression fails at run time (overflow, division
 * by zero) or a result would exceed LY_LEDGER_MAX; LY_EINVAL for bad
 * arguments. */
size_t ly_rules_scratch_size(size_t nrules, size_t nitems);
int ly_rules_eval(ly_rule *const *rules, size_t n, const ly_rule_event *ev, void *scratch,
                  ly_rule_outcome *out, ly_error *err);

/* The first instant of the period containing t in zone z (NULL: UTC), in
 * UTC ms: the local midnight starting the day, the Monday of the ISO week,
 * the first of the month or of the year; 0 for LY_PERIOD_LIFETIME. */
int64_t ly_period_start(enum ly_period p, const ly_tz *z, int64_t t);
const char *ly_period_name(enum ly_period p);

/* What a cap still allows given what was used: *points and *credit are cut
 * to the room left (never below 0), and the result is 0 when the cap's
 * count is used up (the rule does not fire), 1 otherwise. */
int ly_rule_cap_apply(const ly_rule_cap *cap, int64_t used_points, int64_t used_credit,
                      int64_t used_count, int64_t *points, int64_t *credit);

#endif
