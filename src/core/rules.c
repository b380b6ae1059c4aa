/* Earn rules: checking and compiling a rule's JSON, and evaluating a set of
 * rules against one event. Every amount is an integer and every step is
 * overflow-checked; points given to line items are tracked item by item so
 * that a multiplier with an `items` filter multiplies exactly what those
 * items earned. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyal/json.h"
#include "loyal/rules.h"
#include "loyal/timeutil.h"

/* ---- compiling ------------------------------------------------------------ */

static const ly_json_field rule_fields[] = {
    {"id", LY_JSON_STRING, LY_FIELD_REQUIRED, LY_RULE_ID_MAX},
    {"name", LY_JSON_STRING, LY_FIELD_NULLABLE, 200},
    {"description", LY_JSON_STRING, LY_FIELD_NULLABLE, 2000},
    {"on", LY_JSON_STRING, LY_FIELD_REQUIRED, 71},
    {"when", LY_JSON_STRING, LY_FIELD_NULLABLE, 0},
    {"items", LY_JSON_STRING, LY_FIELD_NULLABLE, 0},
    {"effect", LY_JSON_OBJECT, LY_FIELD_REQUIRED, 0},
    {"cap", LY_JSON_ANY, LY_FIELD_NULLABLE, 0},
    {"active_from", LY_JSON_STRING, LY_FIELD_NULLABLE, 64},
    {"active_to", LY_JSON_STRING, LY_FIELD_NULLABLE, 64},
    {"priority", LY_JSON_INTEGER, 0, 0},
    {"stack", LY_JSON_BOOLEAN, 0, 0},
    {"enabled", LY_JSON_BOOLEAN, 0, 0},
    {NULL, 0, 0, 0},
};

static const ly_json_field effect_fields[] = {
    {"points_per", LY_JSON_OBJECT, 0, 0},
    {"points", LY_JSON_INTEGER, 0, 0},
    {"multiply", LY_JSON_ANY, 0, 0},
    {"cashback_percent", LY_JSON_ANY, 0, 0},
    {"grant_reward", LY_JSON_STRING, 0, LY_RULE_ID_MAX},
    {NULL, 0, 0, 0},
};

static const ly_json_field points_per_fields[] = {
    {"points", LY_JSON_INTEGER, LY_FIELD_REQUIRED, 0},
    {"per_minor", LY_JSON_INTEGER, 0, 0},
    {"rounding", LY_JSON_STRING, 0, 16},
    {NULL, 0, 0, 0},
};

static const ly_json_field cap_fields[] = {
    {"points", LY_JSON_INTEGER, 0, 0}, {"credit", LY_JSON_INTEGER, 0, 0},
    {"count", LY_JSON_INTEGER, 0, 0},  {"per", LY_JSON_STRING, 0, 16},
    {"period", LY_JSON_STRING, 0, 16}, {NULL, 0, 0, 0},
};

#define PRIORITY_MAX 1000000
#define MULTIPLY_MAX (1000 * LY_DECIMAL_SCALE)

static const char *const period_names[] = {"day", "week", "month", "year", "lifetime"};

const char *ly_period_name(enum ly_period p)
{
    return (unsigned)p <= LY_PERIOD_LIFETIME ? period_names[p] : NULL;
}

int ly_decimal_parse(const char *s, int64_t *out)
{
    int64_t whole = 0, frac = 0, scale = LY_DECIMAL_SCALE;
    const char *p = s;
    if (!s || *p < '0' || *p > '9')
        return LY_EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (whole > (INT64_MAX / LY_DECIMAL_SCALE - 9) / 10)
            return LY_EINVAL;
        whole = whole * 10 + (*p - '0');
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return LY_EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (scale == 1)
                return LY_EINVAL; /* more decimals than kept */
            scale /= 10;
            frac += (*p - '0') * scale;
        }
    }
    if (*p)
        return LY_EINVAL;
    *out = whole * LY_DECIMAL_SCALE + frac;
    return LY_OK;
}

/* A decimal given as a JSON string ("1.5") or integer (2). */
static int decimal_field(const json_t *v, const char *field, int64_t min, int64_t max,
                         const char *what, int64_t *out, ly_error *err)
{
    int64_t d = -1;
    if (json_is_integer(v) && json_integer_value(v) >= 0 &&
        json_integer_value(v) <= INT64_MAX / LY_DECIMAL_SCALE)
        d = json_integer_value(v) * LY_DECIMAL_SCALE;
    else if (json_is_string(v) && ly_decimal_parse(json_string_value(v), &d) != LY_OK)
        d = -1;
    else if (!json_is_string(v) && !json_is_integer(v))
        return ly_error_set(err, LY_EINVAL, "invalid_type", field,
                            "%s must be a decimal number as a string, such as \"1.5\"", field);
    if (d < min || d > max)
        return ly_error_set(err, LY_EINVAL, "invalid_value", field, "%s must be %s", field, what);
    *out = d;
    return LY_OK;
}

static int period_parse(const char *s, enum ly_period *out)
{
    for (int i = 0; i <= LY_PERIOD_LIFETIME; i++)
        if (strcmp(s, period_names[i]) == 0) {
            *out = (enum ly_period)i;
            return LY_OK;
        }
    return LY_EINVAL;
}

static int compile_cap(const json_t *c, const char *field, ly_rule *r, ly_error *err)
{
    char sub[48];
    if (!json_is_object(c))
        return ly_error_set(err, LY_EINVAL, "invalid_type", field, "%s must be an object", field);
    int rc = ly_json_check(c, cap_fields, field, err);
    if (rc != LY_OK)
        return rc;
    ly_rule_cap *cap = &r->caps[r->ncaps++];
    memset(cap, 0, sizeof *cap);
    cap->period = LY_PERIOD_LIFETIME;
    static const char *const kinds[] = {"points", "credit", "count"};
    int64_t *slots[] = {&cap->points, &cap->credit, &cap->count};
    for (int i = 0; i < 3; i++) {
        const json_t *v = json_object_get(c, kinds[i]);
        if (!v)
            continue;
        snprintf(sub, sizeof sub, "%s.%s", field, kinds[i]);
        if (json_integer_value(v) < 1 || json_integer_value(v) > LY_LEDGER_MAX)
            return ly_error_set(err, LY_EINVAL, "invalid_value", sub, "%s must be from 1 to 2^53",
                                sub);
        *slots[i] = json_integer_value(v);
    }
    if (!cap->points && !cap->credit && !cap->count)
        return ly_error_set(err, LY_EINVAL, "missing_field", field,
                            "%s limits points, credit or count", field);
    if (cap->points && r->effect == LY_EFFECT_CASHBACK)
        return ly_error_set(err, LY_EINVAL, "invalid_value", field,
                            "a cashback rule gives credit: cap its credit, not points");
    if (cap->credit && r->effect != LY_EFFECT_CASHBACK)
        return ly_error_set(err, LY_EINVAL, "invalid_value", field,
                            "only a cashback rule gives credit: cap its points");
    const char *per = ly_json_str(c, "per"), *period = ly_json_str(c, "period");
    snprintf(sub, sizeof sub, "%s.per", field);
    if (per && strcmp(per, "member") != 0 && strcmp(per, "rule") != 0)
        return ly_error_set(err, LY_EINVAL, "invalid_value", sub,
                            "%s must be \"member\" or \"rule\" (a budget for the whole rule)", sub);
    cap->per_rule = per && strcmp(per, "rule") == 0;
    snprintf(sub, sizeof sub, "%s.period", field);
    if (period && period_parse(period, &cap->period) != LY_OK)
        return ly_error_set(err, LY_EINVAL, "invalid_value", sub,
                            "%s must be day, week, month, year or lifetime", sub);
    return LY_OK;
}

static int compile_effect(const json_t *e, ly_rule *r, ly_error *err)
{
    int rc = ly_json_check(e, effect_fields, "effect", err);
    if (rc != LY_OK)
        return rc;
    if (json_object_size(e) != 1)
        return ly_error_set(err, LY_EINVAL, "invalid_value", "effect",
                            "effect has exactly one of points_per, points, multiply, "
                            "cashback_percent or grant_reward");
    const json_t *v;
    if ((v = json_object_get(e, "points_per"))) {
        r->effect = LY_EFFECT_POINTS_PER;
        if ((rc = ly_json_check(v, points_per_fields, "effect.points_per", err)) != LY_OK)
            return rc;
        r->points = json_integer_value(json_object_get(v, "points"));
        r->per_minor = json_object_get(v, "per_minor")
                           ? json_integer_value(json_object_get(v, "per_minor"))
                           : 100;
        const char *rounding = ly_json_str(v, "rounding");
        if (r->points < 1 || r->points > LY_LEDGER_MAX)
            return ly_error_set(err, LY_EINVAL, "invalid_value", "effect.points_per.points",
                                "effect.points_per.points must be from 1 to 2^53");
        if (r->per_minor < 1 || r->per_minor > LY_LEDGER_MAX)
            return ly_error_set(err, LY_EINVAL, "invalid_value", "effect.points_per.per_minor",
                                "effect.points_per.per_minor must be from 1 to 2^53");
        if (rounding && ly_rounding_parse(rounding, &r->rounding) != LY_OK)
            return ly_error_set(err, LY_EINVAL, "invalid_value", "effect.points_per.rounding",
                                "effect.points_per.rounding must be down, nearest or up");
    } else if ((v = json_object_get(e, "points"))) {
        r->effect = LY_EFFECT_POINTS;
        r->points = json_integer_value(v);
        if (r->points < 1 || r->points > LY_LEDGER_MAX)
            return ly_error_set(err, LY_EINVAL, "invalid_value", "effect.points",
                                "effect.points must be from 1 to 2^53");
    } else if ((v = json_object_get(e, "multiply"))) {
        r->effect = LY_EFFECT_MULTIPLY;
        return decimal_field(v, "effect.multiply", LY_DECIMAL_SCALE, MULTIPLY_MAX,
                             "from \"1\" to \"1000\", with at most 4 decimals", &r->factor, err);
    } else if ((v = json_object_get(e, "cashback_percent"))) {
        r->effect = LY_EFFECT_CASHBACK;
        rc = decimal_field(v, "effect.cashback_percent", 1, 100 * LY_DECIMAL_SCALE,
                           "above \"0\" and at most \"100\", with at most 4 decimals", &r->factor,
                           err);
        if (rc == LY_OK && r->factor == 0)
            rc = ly_error_set(err, LY_EINVAL, "invalid_value", "effect.cashback_percent",
                              "effect.cashback_percent must be above 0");
        return rc;
    } else {
        r->effect = LY_EFFECT_REWARD;
        const char *reward = json_string_value(json_object_get(e, "grant_reward"));
        if (!*reward)
            return ly_error_set(err, LY_EINVAL, "invalid_value", "effect.grant_reward",
                                "effect.grant_reward names a reward");
        snprintf(r->reward, sizeof r->reward, "%s", reward);
    }
    return LY_OK;
}

static int compile_expr(const char *src, const char *field, unsigned scopes, ly_expr **out,
                        ly_error *err)
{
    int line = 0, column = 0;
    ly_error e = {0};
    if (ly_expr_compile_at(src, scopes, out, &e, &line, &column) != LY_OK) {
        if (e.rc != LY_EREFUSED)
            return ly_error_set(err, e.rc == LY_ENOMEM ? LY_ENOMEM : LY_EINVAL,
                                e.rc == LY_ENOMEM ? NULL : "invalid_value", field, "%s: %s", field,
                                e.message);
        if (line)
            return ly_error_set(err, LY_EREFUSED, e.code, field, "%s:%d:%d: %s", field, line,
                                column, e.message);
        return ly_error_set(err, LY_EREFUSED, e.code, field, "%s: %s", field, e.message);
    }
    if (ly_expr_type(*out) != LY_T_BOOL) {
        const char *t = ly_expr_type_name(ly_expr_type(*out));
        ly_expr_free(*out);
        *out = NULL;
        return ly_error_set(err, LY_EREFUSED, "type_error", field,
                            "%s:1:1: %s must be a condition (true or false), found %s %s", field,
                            field, t[0] == 'i' ? "an" : "a", t);
    }
    return LY_OK;
}

static int valid_on(const char *on)
{
    static const char *const fixed[] = {"purchase", "return", "signup", "birthday"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        if (strcmp(on, fixed[i]) == 0)
            return 1;
    const char *name = on + 7;
    return strncmp(on, "custom:", 7) == 0 && *name &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
               strlen(name);
}

static int valid_id(const char *id)
{
    return *id &&
           strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") ==
               strlen(id);
}

static int compile_time(const json_t *body, const char *field, int64_t *out, ly_error *err)
{
    const char *t = ly_json_str(body, field);
    if (t && ly_time_parse(t, out) != LY_OK)
        return ly_error_set(err, LY_EINVAL, "invalid_value", field,
                            "%s must be an RFC 3339 time such as 2027-01-01T00:00:00Z", field);
    return LY_OK;
}

static int compile(const json_t *body, ly_rule *r, ly_error *err)
{
    int rc = ly_json_check(body, rule_fields, NULL, err);
    if (rc != LY_OK)
        return rc;
    const char *id = ly_json_str(body, "id"), *on = ly_json_str(body, "on");
    if (!valid_id(id))
        return ly_error_set(err, LY_EINVAL, "invalid_value", "id",
                            "id is 1 to 64 letters, digits, '_', '-', '.' or ':'");
    snprintf(r->id, sizeof r->id, "%s", id);
    if (!valid_on(on))
        return ly_error_set(err, LY_EINVAL, "invalid_value", "on",
                            "on must be purchase, return, signup, birthday or custom:<name>");
    snprintf(r->on, sizeof r->on, "%s", on);
    if ((rc = compile_effect(json_object_get(body, "effect"), r, err)) != LY_OK)
        return rc;
    const char *when = ly_json_str(body, "when"), *items = ly_json_str(body, "items");
    if (when &&
        (rc = compile_expr(when, "when", LY_EXPR_EVENT | LY_EXPR_MEMBER, &r->when, err)) != LY_OK)
        return rc;
    if (items && (rc = compile_expr(items, "items", LY_EXPR_EVENT | LY_EXPR_MEMBER | LY_EXPR_ITEM,
                                    &r->items, err)) != LY_OK)
        return rc;
    const json_t *cap = json_object_get(body, "cap");
    if (json_is_array(cap)) {
        size_t i;
        const json_t *c;
        if (json_array_size(cap) > LY_RULE_MAX_CAPS)
            return ly_error_set(err, LY_EINVAL, "invalid_value", "cap",
                                "a rule has at most %d caps", LY_RULE_MAX_CAPS);
        json_array_foreach(cap, i, c)
        {
            char field[32];
            snprintf(field, sizeof field, "cap[%zu]", i);
            if ((rc = compile_cap(c, field, r, err)) != LY_OK)
                return rc;
        }
    } else if (cap && !json_is_null(cap) && (rc = compile_cap(cap, "cap", r, err)) != LY_OK) {
        return rc;
    }
    r->active_from = INT64_MIN;
    r->active_to = INT64_MAX;
    if ((rc = compile_time(body, "active_from", &r->active_from, err)) != LY_OK ||
        (rc = compile_time(body, "active_to", &r->active_to, err)) != LY_OK)
        return rc;
    if (r->active_from > r->active_to)
        return ly_error_set(err, LY_EINVAL, "invalid_value", "active_to",
                            "active_to must not be before active_from");
    const json_t *prio = json_object_get(body, "priority");
    r->priority = prio ? json_integer_value(prio) : 0;
    if (r->priority < -PRIORITY_MAX || r->priority > PRIORITY_MAX)
        return ly_error_set(err, LY_EINVAL, "invalid_value", "priority",
                            "priority must be from -1000000 to 1000000");
    r->stack = !json_is_false(json_object_get(body, "stack"));
    r->enabled = !json_is_false(json_object_get(body, "enabled"));
    return LY_OK;
}

int ly_rule_compile(const json_t *body, ly_rule **out, json_t **canon, ly_error *err)
{
    *out = NULL;
    if (canon)
        *canon = NULL;
    if (!json_is_object(body))
        return ly_error_set(err, LY_EINVAL, "invalid_type", NULL, "a rule is a JSON object");
    ly_rule *r = calloc(1, sizeof *r);
    if (!r)
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    int rc = compile(body, r, err);
    if (rc == LY_OK && canon) {
        json_t *c = json_deep_copy(body);
        /* An optional field given as null is the field left out. */
        static const char *const optional[] = {"name", "description", "when",     "items",
                                               "cap",  "active_from", "active_to"};
        for (size_t i = 0; c && i < sizeof optional / sizeof *optional; i++)
            if (json_is_null(json_object_get(c, optional[i])))
                json_object_del(c, optional[i]);
        json_t *pp = json_object_get(json_object_get(c, "effect"), "points_per");
        if (pp && !json_object_get(pp, "per_minor"))
            json_object_set_new(pp, "per_minor", json_integer(r->per_minor));
        if (pp && !json_object_get(pp, "rounding"))
            json_object_set_new(pp, "rounding", json_string(ly_rounding_name(r->rounding)));
        json_t *caps = json_object_get(c, "cap");
        for (size_t i = 0; caps && i < r->ncaps; i++) {
            json_t *cap = json_is_array(caps) ? json_array_get(caps, i) : caps;
            if (!json_object_get(cap, "per"))
                json_object_set_new(cap, "per", json_string("member"));
            if (!json_object_get(cap, "period"))
                json_object_set_new(cap, "period", json_string(ly_period_name(r->caps[i].period)));
        }
        /* Times are kept as UTC with milliseconds, however they were sent. */
        if (c && json_is_string(json_object_get(c, "active_from"))) {
            char t[LY_TIME_BUFSZ];
            ly_time_format(r->active_from, t);
            json_object_set_new(c, "active_from", json_string(t));
        }
        if (c && json_is_string(json_object_get(c, "active_to"))) {
            char t[LY_TIME_BUFSZ];
            ly_time_format(r->active_to, t);
            json_object_set_new(c, "active_to", json_string(t));
        }
        if (c && !json_object_get(c, "priority"))
            json_object_set_new(c, "priority", json_integer(r->priority));
        if (c && !json_object_get(c, "stack"))
            json_object_set_new(c, "stack", json_true());
        if (c && !json_object_get(c, "enabled"))
            json_object_set_new(c, "enabled", json_true());
        if (!c)
            rc = ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
        *canon = c;
    }
    if (rc != LY_OK) {
        ly_rule_free(r);
        return rc;
    }
    *out = r;
    return LY_OK;
}

void ly_rule_free(ly_rule *r)
{
    if (!r)
        return;
    ly_expr_free(r->when);
    ly_expr_free(r->items);
    free(r);
}

static int rule_cmp(const void *a, const void *b)
{
    const ly_rule *x = *(ly_rule *const *)a, *y = *(ly_rule *const *)b;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return strcmp(x->id, y->id);
}

void ly_rules_sort(ly_rule **rules, size_t n)
{
    if (n > 1)
        qsort(rules, n, sizeof *rules, rule_cmp);
}

/* ---- evaluating ------------------------------------------------------------ */

size_t ly_rules_scratch_size(size_t nrules, size_t nitems)
{
    /* Points per item and one slot for the event itself, remainders and a
     * copy of the points for spreading, and which items each rule selected. */
    return 3 * (nitems + 1) * sizeof(int64_t) + nrules * nitems + 1;
}

/* Adds `total` to the buckets selected by sel (NULL: all) in proportion to
 * their weights, exactly: each gets floor(total * w / W) and the units left
 * go one each to the largest remainders, the earliest first on ties. The
 * weight of bucket k is at wbase + k * stride. Returns 0, adding nothing,
 * when the selected weights sum to 0. */
static int spread(int64_t total, const char *wbase, size_t stride, const unsigned char *sel,
                  size_t m, int64_t *bucket, int64_t *rem)
{
    __int128 w = 0;
    for (size_t k = 0; k < m; k++) {
        int64_t wk;
        memcpy(&wk, wbase + k * stride, sizeof wk);
        rem[k] = -1;
        if ((!sel || sel[k]) && wk > 0)
            w += wk;
    }
    if (w == 0)
        return 0;
    /* Remainders are below w, which may pass 2^63 when the weights are item
     * amounts; kept shifted so that they fit (and stay >= 0), they still
     * order the same way bar ties. */
    int shift = 0;
    while ((w - 1) >> shift > INT64_MAX)
        shift++;
    int64_t given = 0;
    for (size_t k = 0; k < m; k++) {
        int64_t wk;
        memcpy(&wk, wbase + k * stride, sizeof wk);
        if ((sel && !sel[k]) || wk <= 0)
            continue;
        __int128 q = (__int128)total * wk;
        int64_t share = (int64_t)(q / w);
        rem[k] = (int64_t)((q % w) >> shift);
        bucket[k] += share;
        given += share;
    }
    for (int64_t left = total - given; left > 0; left--) {
        size_t best = m;
        for (size_t k = 0; k < m; k++)
            if (rem[k] >= 0 && (best == m || rem[k] > rem[best]))
                best = k;
        if (best == m)
            break;
        bucket[best]++;
        rem[best] = -1;
    }
    return 1;
}

static int eval_error(const ly_rule *r, const char *where, const ly_error *e, ly_error *err)
{
    char field[LY_RULE_ID_MAX + 8];
    snprintf(field, sizeof field, "rules.%s", r->id);
    return ly_error_set(err, LY_EREFUSED, "rule_error", field, "rule %s: %s:%s: %s", r->id, where,
                        e->field, e->message);
}

static int too_many(const ly_rule *r, ly_error *err)
{
    char field[LY_RULE_ID_MAX + 8];
    snprintf(field, sizeof field, "rules.%s", r->id);
    return ly_error_set(err, LY_EREFUSED, "rule_error", field,
                        "rule %s: the points or credit it gives would exceed 2^53", r->id);
}

/* Whether the rule matches; its selected items in sel (all when it has no
 * filter) and its eligible amount in o. */
static int match(const ly_rule *r, const ly_rule_event *ev, unsigned char *sel, ly_rule_outcome *o,
                 ly_error *err)
{
    ly_error e = {0};
    char when[LY_TIME_BUFSZ];
    if (!r->enabled) {
        snprintf(o->reason, sizeof o->reason, "disabled");
        return LY_OK;
    }
    if (ev->occurred_at < r->active_from || ev->occurred_at > r->active_to) {
        if (ev->quiet)
            return LY_OK;
        int before = ev->occurred_at < r->active_from;
        ly_time_format(before ? r->active_from : r->active_to, when);
        snprintf(o->reason, sizeof o->reason, before ? "not active before %s" : "ended at %s",
                 when);
        return LY_OK;
    }
    if (r->when) {
        ly_expr_value v;
        if (ly_expr_eval(r->when, &ev->ctx, &v, &e) != LY_OK)
            return eval_error(r, "when", &e, err);
        if (!v.i && ev->quiet)
            return LY_OK;
        if (!v.i) {
            char why[128];
            if (ly_expr_explain(r->when, &ev->ctx, why, sizeof why, &e) != LY_OK)
                snprintf(why, sizeof why, "when");
            snprintf(o->reason, sizeof o->reason, "false: %s", why);
            return LY_OK;
        }
    }
    if (!r->items) {
        memset(sel, 1, ev->nitems);
        o->eligible_amount = ev->amount;
        o->matched = 1;
        return LY_OK;
    }
    ly_expr_ctx ctx = ev->ctx;
    int64_t amount = 0;
    size_t picked = 0;
    for (size_t k = 0; k < ev->nitems; k++) {
        ly_expr_value v;
        ctx.item = &ev->items[k];
        if (ly_expr_eval(r->items, &ctx, &v, &e) != LY_OK)
            return eval_error(r, "items", &e, err);
        sel[k] = (unsigned char)v.i;
        if (v.i) {
            picked++;
            if (ly_add64(amount, ev->items[k].amount, &amount) != LY_OK)
                return too_many(r, err);
        }
    }
    if (!picked) {
        snprintf(o->reason, sizeof o->reason,
                 ev->nitems ? "no item passes items" : "the event has no items");
        return LY_OK;
    }
    o->eligible_amount = amount;
    o->matched = 1;
    return LY_OK;
}

/* Runs one applied rule's effect: its points and credit in o, its points
 * added to the buckets (bucket[k] for item k, bucket[m] for the event). */
static int apply(const ly_rule *r, const ly_rule_event *ev, const unsigned char *sel,
                 int64_t *bucket, int64_t *rem, ly_rule_outcome *o, ly_error *err)
{
    size_t m = ev->nitems;
    const char *amounts = m ? (const char *)&ev->items[0].amount : NULL;
    int64_t p = 0, base = 0;
    switch (r->effect) {
    case LY_EFFECT_POINTS_PER:
        if (ly_earn_points(o->eligible_amount, r->points, r->per_minor, r->rounding, &p) != LY_OK)
            return too_many(r, err);
        /* Given to the items that earned it, in proportion to their amounts;
         * to the event itself when it has no items with an amount. */
        if (!spread(p, amounts, sizeof *ev->items, sel, m, bucket, rem))
            bucket[m] += p;
        break;
    case LY_EFFECT_POINTS:
        p = r->points;
        bucket[m] += p;
        break;
    case LY_EFFECT_MULTIPLY: {
        /* What the selected items earned so far (and the event's own points
         * when the rule has no filter), times factor - 1, rounded down. */
        size_t upto = r->items ? m : m + 1;
        for (size_t k = 0; k < upto; k++)
            if (k == m || sel[k])
                base += bucket[k];
        __int128 extra = (__int128)base * (r->factor - LY_DECIMAL_SCALE) / LY_DECIMAL_SCALE;
        if (extra > LY_LEDGER_MAX)
            return too_many(r, err);
        p = (int64_t)extra;
        /* Spread in proportion to what each bucket held before. */
        int64_t *before = rem + m + 1;
        memcpy(before, bucket, (m + 1) * sizeof *bucket);
        if (!spread(p, (const char *)before, sizeof *before, r->items ? sel : NULL, upto, bucket,
                    rem))
            bucket[m] += p;
        break;
    }
    case LY_EFFECT_CASHBACK: {
        __int128 c = (__int128)o->eligible_amount * r->factor / (100 * LY_DECIMAL_SCALE);
        if (c > LY_LEDGER_MAX)
            return too_many(r, err);
        o->credit = (int64_t)c;
        break;
    }
    case LY_EFFECT_REWARD:
        break;
    }
    o->points = p;
    return LY_OK;
}

int ly_rules_eval(ly_rule *const *rules, size_t n, const ly_rule_event *ev, void *scratch,
                  ly_rule_outcome *out, ly_error *err)
{
    if ((n && (!rules || !out)) || !ev || !scratch || (ev->nitems && !ev->items))
        return ly_error_set(err, LY_EINVAL, NULL, NULL, "bad arguments to ly_rules_eval");
    size_t m = ev->nitems;
    int64_t *bucket = scratch, *rem = bucket + m + 1;
    unsigned char *sel = (unsigned char *)(rem + 2 * (m + 1));
    int rc;
    memset(bucket, 0, (m + 1) * sizeof *bucket);
    /* Which rules match, and which exclusive rule wins: the matching one of
     * highest priority (the first by id among equals). */
    size_t winner = n;
    for (size_t i = 0; i < n; i++) {
        ly_rule_outcome *o = &out[i];
        /* Field by field: clearing the reason buffers costs more than the rest. */
        o->rule = rules[i];
        o->considered = o->matched = o->applied = 0;
        o->reason[0] = '\0';
        o->eligible_amount = o->points = o->credit = 0;
        if (strcmp(rules[i]->on, ev->type) != 0)
            continue;
        o->considered = 1;
        if ((rc = match(rules[i], ev, sel + i * m, o, err)) != LY_OK)
            return rc;
        if (o->matched && !rules[i]->stack &&
            (winner == n || rules[i]->priority > rules[winner]->priority))
            winner = i;
    }
    int64_t points = 0, credit = 0;
    for (size_t i = 0; i < n; i++) {
        ly_rule_outcome *o = &out[i];
        if (!o->matched)
            continue;
        if (!rules[i]->stack && i != winner) {
            snprintf(o->reason, sizeof o->reason,
                     "exclusive: rule %s (priority %lld) applies instead", rules[winner]->id,
                     (long long)rules[winner]->priority);
            continue;
        }
        o->applied = 1;
        if ((rc = apply(rules[i], ev, sel + i * m, bucket, rem, o, err)) != LY_OK)
            return rc;
        if (ly_add64(points, o->points, &points) != LY_OK || points > LY_LEDGER_MAX ||
            ly_add64(credit, o->credit, &credit) != LY_OK || credit > LY_LEDGER_MAX)
            return too_many(rules[i], err);
    }
    return LY_OK;
}

int64_t ly_period_start(enum ly_period p, const ly_tz *z, int64_t t)
{
    if (p == LY_PERIOD_LIFETIME)
        return 0;
    if (!z && ly_tz_get("UTC", &z) != LY_OK)
        return 0;
    ly_civil c;
    ly_tz_local_civil(z, t, &c);
    int64_t days = ly_days_from_civil(c.year, (unsigned)c.month, (unsigned)c.day);
    switch (p) {
    case LY_PERIOD_WEEK:
        days -= c.weekday - 1;
        break;
    case LY_PERIOD_MONTH:
        days = ly_days_from_civil(c.year, (unsigned)c.month, 1);
        break;
    case LY_PERIOD_YEAR:
        days = ly_days_from_civil(c.year, 1, 1);
        break;
    default:
        break;
    }
    return ly_tz_to_utc(z, days * 86400000);
}

int ly_rule_cap_apply(const ly_rule_cap *cap, int64_t used_points, int64_t used_credit,
                      int64_t used_count, int64_t *points, int64_t *credit)
{
    if (cap->count && used_count >= cap->count) {
        *points = *credit = 0;
        return 0;
    }
    if (cap->points) {
        int64_t room = cap->points > used_points ? cap->points - used_points : 0;
        if (*points > room)
            *points = room;
    }
    if (cap->credit) {
        int64_t room = cap->credit > used_credit ? cap->credit - used_credit : 0;
        if (*credit > room)
            *credit = room;
    }
    return 1;
}
