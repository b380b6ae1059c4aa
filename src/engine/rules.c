/* Earn rules in the engine: their versions in the store, the compiled set
 * each program's events are evaluated against, caps and budgets, and what
 * each rule gave (so a return can take back and free exactly its share). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "engine/rules_int.h"
#include "engine/txn.h"
#include "loyal/json.h"
#include "loyal/timeutil.h"

/* ---- the compiled set, cached per program version ------------------------- */

#define RULESET_CACHE 8
static pthread_mutex_t rs_mu = PTHREAD_MUTEX_INITIALIZER;
static ly__ruleset *rs_cache[RULESET_CACHE];
static unsigned rs_next;

static void ruleset_free(ly__ruleset *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        ly_rule_free(rs->rules[i]);
    free(rs->rules);
    free(rs);
}

void ly__ruleset_release(ly__ruleset *rs)
{
    if (rs && __atomic_sub_fetch(&rs->refs, 1, __ATOMIC_ACQ_REL) == 0)
        ruleset_free(rs);
}

int ly__ruleset_has(const ly__ruleset *rs, const char *type)
{
    for (size_t i = 0; rs && i < rs->n; i++)
        if (strcmp(rs->rules[i]->on, type) == 0)
            return 1;
    return 0;
}

static int ruleset_build(ly_conn *c, ly_arena *a, const ly__prog *prog, ly__ruleset **out,
                         ly_error *err)
{
    ly_rule_row *rows;
    size_t n;
    int rc = ly_store_rule_list(c, a, prog->p.id, NULL, 0, &rows, &n, err);
    if (rc != LY_OK)
        return rc;
    ly__ruleset *rs = calloc(1, sizeof *rs);
    if (!rs || (n && !(rs->rules = calloc(n, sizeof *rs->rules)))) {
        free(rs);
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    }
    rs->refs = 1;
    rs->program_id = prog->p.id;
    rs->updated_at = prog->p.updated_at;
    for (size_t i = 0; i < n; i++) {
        json_t *body = json_loads(rows[i].body, 0, NULL);
        ly_error e = {0};
        ly_rule *r = NULL;
        rc = body ? ly_rule_compile(body, &r, NULL, &e) : LY_EINTERNAL;
        json_decref(body);
        if (rc != LY_OK) {
            /* Checked when saved; a rule that no longer compiles is left out
             * rather than stopping every event. */
            fprintf(stderr, "loyal: rule %s version %lld no longer compiles: %s\n", rows[i].rule_id,
                    (long long)rows[i].version, e.message);
            continue;
        }
        r->row_id = rows[i].id;
        r->version = rows[i].version;
        rs->rules[rs->n++] = r;
        rs->purchase_rules |= strcmp(r->on, "purchase") == 0;
        rs->signup_rules |= strcmp(r->on, "signup") == 0;
        rs->birthday_rules |= strcmp(r->on, "birthday") == 0;
    }
    ly_rules_sort(rs->rules, rs->n);
    *out = rs;
    return LY_OK;
}

int ly__ruleset_get(ly_conn *c, ly_arena *a, const ly__prog *prog, ly__ruleset **out, ly_error *err)
{
    pthread_mutex_lock(&rs_mu);
    for (int i = 0; i < RULESET_CACHE; i++) {
        ly__ruleset *rs = rs_cache[i];
        if (rs && rs->program_id == prog->p.id && rs->updated_at == prog->p.updated_at) {
            __atomic_add_fetch(&rs->refs, 1, __ATOMIC_ACQ_REL);
            pthread_mutex_unlock(&rs_mu);
            *out = rs;
            return LY_OK;
        }
    }
    pthread_mutex_unlock(&rs_mu);
    ly__ruleset *rs;
    int rc = ruleset_build(c, a, prog, &rs, err);
    if (rc != LY_OK)
        return rc;
    /* The cache keeps one reference, the caller gets another. */
    rs->refs = 2;
    pthread_mutex_lock(&rs_mu);
    unsigned slot = rs_next++ % RULESET_CACHE;
    ly__ruleset *old = rs_cache[slot];
    rs_cache[slot] = rs;
    pthread_mutex_unlock(&rs_mu);
    ly__ruleset_release(old);
    *out = rs;
    return LY_OK;
}

/* ---- turning an event into points ----------------------------------------- */

/* An attribute value as the language reads it: strings as they are,
 * numbers and booleans as their JSON text, anything else as "". */
static const char *attr_text(ly_arena *a, const json_t *v)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v))
        return ly_arena_printf(a, "%lld", (long long)json_integer_value(v));
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    if (json_is_real(v)) {
        /* 15 digits: the decimals people write come back as written (4.5, 0.1). */
        char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
        const char *out = text ? ly_arena_strdup(a, text) : "";
        free(text);
        return out ? out : "";
    }
    return "";
}

static int attrs_of(ly_arena *a, const json_t *obj, const char *const **names,
                    const char *const **values, size_t *n)
{
    size_t k = json_object_size(obj), i = 0;
    const char **nm = ly_arena_alloc(a, (k + 1) * sizeof *nm);
    const char **vl = ly_arena_alloc(a, (k + 1) * sizeof *vl);
    if (!nm || !vl)
        return LY_ENOMEM;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        nm[i] = key;
        vl[i++] = attr_text(a, v);
    }
    *names = nm;
    *values = vl;
    *n = i;
    return LY_OK;
}

/* The strings of a JSON array of strings (others skipped). */
static const char *const *strings_of(ly_arena *a, const json_t *arr, size_t *n)
{
    size_t k = json_array_size(arr), i, j = 0;
    const char **out = ly_arena_alloc(a, (k + 1) * sizeof *out);
    const json_t *v;
    if (!out)
        return NULL;
    json_array_foreach(arr, i, v) if (json_is_string(v)) out[j++] = json_string_value(v);
    *n = j;
    return out;
}

static int64_t local_days(const ly_tz *z, int64_t t)
{
    ly_civil c;
    ly_tz_local_civil(z, t, &c);
    return ly_days_from_civil(c.year, (unsigned)c.month, (unsigned)c.day);
}

/* The event's names for the expression language. member_attrs holds the
 * parsed member attributes (owned by the caller). */
static int event_of(ly_arena *a, const ly__prog *prog, const ly__earn_in *in, json_t *member_attrs,
                    ly_rule_event *ev, ly_error *err)
{
    memset(ev, 0, sizeof *ev);
    ly_expr_ctx *x = &ev->ctx;
    ev->type = in->type;
    ev->occurred_at = in->occurred_at;
    ev->amount = in->amount;
    x->event_type = in->type;
    x->event_currency = prog->p.currency;
    x->event_amount = in->amount;
    x->event_occurred_at = in->occurred_at;
    x->event_channel = ly_json_str(in->body, "channel");
    x->event_store = ly_json_str(in->body, "store");
    x->now = ly_time_now_ms();
    x->tz = prog->tz;
    ev->quiet = !in->simulate;
    const json_t *attrs = json_object_get(in->body, "attributes");
    if (json_is_object(attrs) &&
        attrs_of(a, attrs, &x->event_attr_names, &x->event_attr_values, &x->nevent_attrs) != LY_OK)
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    const json_t *items = json_object_get(in->body, "items");
    size_t n = json_array_size(items), i;
    if (n) {
        ly_expr_item *it = ly_arena_calloc(a, n * sizeof *it);
        const json_t *j;
        if (!it)
            return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
        json_array_foreach(items, i, j)
        {
            const json_t *q = json_object_get(j, "quantity");
            it[i].sku = ly_json_str(j, "sku");
            it[i].category = ly_json_str(j, "category");
            it[i].quantity = q ? json_integer_value(q) : 1;
            it[i].unit_price = json_integer_value(json_object_get(j, "unit_price"));
            if (ly_mul64(it[i].quantity, it[i].unit_price, &it[i].amount) != LY_OK)
                return ly_error_set(err, LY_EREFUSED, "amount_overflow", "items",
                                    "items[%zu]: quantity times unit_price does not fit in 64 "
                                    "bits",
                                    i);
            it[i].tags = strings_of(a, json_object_get(j, "tags"), &it[i].ntags);
            if (!it[i].tags)
                return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
        }
        ev->items = it;
        ev->nitems = n;
    }
    const ly_member *m = in->member;
    if (!m) {
        x->member_tier = "";
        x->member_status = "active";
        x->member_birthdate = "";
        x->member_created_at = in->occurred_at;
        return LY_OK;
    }
    x->member_tier = "";
    x->member_status = m->status;
    x->member_birthdate = m->birthdate ? m->birthdate : "";
    x->member_created_at = m->created_at;
    x->member_lifetime_spend = m->lifetime_spend;
    x->member_purchase_count = m->purchase_count;
    int64_t since = m->last_purchase_at ? m->last_purchase_at : m->created_at;
    int64_t days = local_days(prog->tz, in->occurred_at) - local_days(prog->tz, since);
    x->member_days_since_last_purchase = days > 0 ? days : 0;
    if (json_is_object(member_attrs)) {
        if (attrs_of(a, member_attrs, &x->member_attr_names, &x->member_attr_values,
                     &x->nmember_attrs) != LY_OK ||
            !(x->member_tags =
                  strings_of(a, json_object_get(member_attrs, "tags"), &x->nmember_tags)))
            return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    }
    return LY_OK;
}

static const char *cap_words(ly_arena *a, const ly_rule_cap *cap)
{
    const char *per = cap->per_rule ? "for the whole rule" : "per member";
    const char *period = cap->period == LY_PERIOD_LIFETIME ? "in all" : ly_period_name(cap->period);
    if (cap->count)
        return ly_arena_printf(a, "cap reached: at most %lld times %s %s%s", (long long)cap->count,
                               per, cap->period == LY_PERIOD_LIFETIME ? "" : "per ", period);
    return ly_arena_printf(a, "cap reached: at most %lld %s %s %s%s",
                           (long long)(cap->points ? cap->points : cap->credit),
                           cap->points ? "points" : "credit", per,
                           cap->period == LY_PERIOD_LIFETIME ? "" : "per ", period);
}

/* Cuts one applied rule's outcome to its caps. */
static int apply_caps(ly_conn *c, ly_arena *a, const ly__prog *prog, const ly__earn_in *in,
                      ly__earn_rule *r, ly_error *err)
{
    const ly_rule *rule = r->o.rule;
    int64_t member_id = in->member ? in->member->id : 0;
    int fires = 1;
    for (size_t k = 0; k < rule->ncaps; k++) {
        const ly_rule_cap *cap = &rule->caps[k];
        ly_rule_usage u = {0};
        if (cap->per_rule || member_id) {
            int rc = ly_store_rule_usage_get(
                c, prog->p.id, rule->id, cap->per_rule ? 0 : member_id,
                ly_period_start(cap->period, prog->tz, in->occurred_at), &u, err);
            if (rc != LY_OK)
                return rc;
        }
        int64_t p = r->points, cr = r->credit;
        if (!ly_rule_cap_apply(cap, u.points, u.credit, u.count, &r->points, &r->credit) ||
            ((p || cr) && !r->points && !r->credit)) {
            fires = 0;
            const char *why = cap_words(a, cap);
            snprintf(r->o.reason, sizeof r->o.reason, "%s", why ? why : "cap reached");
        }
    }
    if (!fires)
        r->points = r->credit = 0;
    r->capped = r->points < r->o.points || r->credit < r->o.credit || !fires;
    if (in->simulate || !fires || (!r->points && !r->credit))
        return LY_OK;
    for (size_t k = 0; k < rule->ncaps; k++) {
        const ly_rule_cap *cap = &rule->caps[k];
        ly_rule_usage d = {r->points, r->credit, 1};
        int rc = ly_store_rule_usage_add(c, prog->p.id, rule->id, cap->per_rule ? 0 : member_id,
                                         ly_period_start(cap->period, prog->tz, in->occurred_at),
                                         &d, err);
        if (rc != LY_OK)
            return rc;
    }
    return LY_OK;
}

int ly__earn(ly_conn *c, ly_arena *a, const ly__prog *prog, const ly__ruleset *rs,
             const ly__earn_in *in, ly__earned *out, ly_error *err)
{
    memset(out, 0, sizeof *out);
    if (strcmp(in->type, "purchase") == 0 && !rs->purchase_rules) {
        out->base = 1;
        if (ly_earn_points(in->amount, prog->earn_points, prog->earn_per_minor, prog->rounding,
                           &out->points) != LY_OK)
            return ly_error_set(err, LY_EREFUSED, "amount_overflow", "amount",
                                "the points for this amount do not fit: the earn rate times the "
                                "amount is beyond 2^53");
        return LY_OK;
    }
    if (!ly__ruleset_has(rs, in->type))
        return LY_OK;
    json_t *mattrs = in->member ? json_loads(in->member->attributes, 0, NULL) : NULL;
    ly_rule_event ev;
    int rc = event_of(a, prog, in, mattrs, &ev, err);
    void *scratch = rc == LY_OK ? ly_arena_alloc(a, ly_rules_scratch_size(rs->n, ev.nitems)) : NULL;
    ly_rule_outcome *o = rc == LY_OK ? ly_arena_alloc(a, (rs->n + 1) * sizeof *o) : NULL;
    out->rules = rc == LY_OK ? ly_arena_calloc(a, (rs->n + 1) * sizeof *out->rules) : NULL;
    if (rc == LY_OK && (!scratch || !o || !out->rules))
        rc = ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    if (rc == LY_OK)
        rc = ly_rules_eval(rs->rules, rs->n, &ev, scratch, o, err);
    for (size_t i = 0; rc == LY_OK && i < rs->n; i++) {
        if (!o[i].considered)
            continue;
        ly__earn_rule *r = &out->rules[out->n++];
        r->o = o[i];
        if (!o[i].applied)
            continue;
        r->points = o[i].points;
        r->credit = o[i].credit;
        if ((rc = apply_caps(c, a, prog, in, r, err)) != LY_OK)
            break;
        out->points += r->points; /* each is at most its uncapped value: sums were checked */
        out->credit += r->credit;
    }
    json_decref(mattrs);
    return rc;
}

int ly__earned_record(ly_conn *c, const ly__prog *prog, int64_t event_id, const ly__earned *e,
                      ly_error *err)
{
    int rc = LY_OK;
    for (size_t i = 0; rc == LY_OK && i < e->n; i++) {
        const ly__earn_rule *r = &e->rules[i];
        if (!r->o.applied || (!r->points && !r->credit))
            continue;
        ly_event_rule er = {.event_id = event_id,
                            .rule_row = r->o.rule->row_id,
                            .points = r->points,
                            .credit = r->credit};
        rc = ly_store_event_rule_insert(c, prog->p.id, &er, err);
    }
    return rc;
}

int ly__earn_reverse(ly_conn *c, ly_arena *a, const ly__prog *prog, const ly_event *purchase,
                     int64_t total_after, ly_error *err)
{
    ly_event_rule *ers;
    size_t n;
    int rc = ly_store_event_rules(c, a, prog->p.id, purchase->id, &ers, &n, err);
    int whole = total_after >= purchase->amount && purchase->returned_amount < purchase->amount;
    for (size_t i = 0; rc == LY_OK && i < n; i++) {
        ly_event_rule *er = &ers[i];
        int64_t pa, ca;
        if (ly_prorate(er->points, total_after, purchase->amount, &pa) != LY_OK ||
            ly_prorate(er->credit, total_after, purchase->amount, &ca) != LY_OK)
            return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "return arithmetic failed");
        ly_rule_usage d = {-(pa - er->reversed_points), -(ca - er->reversed_credit), -whole};
        if (!d.points && !d.credit && !d.count)
            continue;
        er->reversed_points = pa;
        er->reversed_credit = ca;
        if ((rc = ly_store_event_rule_update(c, prog->p.id, er, err)) != LY_OK)
            break;
        /* The caps of the version that gave the points, in the purchase's
         * periods. */
        ly_rule_row row;
        if ((rc = ly_store_rule_get(c, a, prog->p.id, er->rule_id, er->version, &row, err)) !=
            LY_OK)
            break;
        json_t *body = json_loads(row.body, 0, NULL);
        ly_rule *rule = NULL;
        ly_error e = {0};
        int crc = body ? ly_rule_compile(body, &rule, NULL, &e) : LY_EINTERNAL;
        json_decref(body);
        for (size_t k = 0; crc == LY_OK && rc == LY_OK && k < rule->ncaps; k++) {
            const ly_rule_cap *cap = &rule->caps[k];
            rc = ly_store_rule_usage_add(
                c, prog->p.id, er->rule_id, cap->per_rule ? 0 : purchase->member_id,
                ly_period_start(cap->period, prog->tz, purchase->occurred_at), &d, err);
        }
        ly_rule_free(rule);
    }
    return rc;
}

void ly__earned_write_applied(const ly__earned *e, ly_jw *w)
{
    ly_jw_arr_begin(w);
    if (e->base && e->points > 0) {
        ly_jw_obj_begin(w);
        ly_jw_key(w, "rule_id");
        ly_jw_str(w, "base");
        ly_jw_key(w, "points");
        ly_jw_int(w, e->points);
        ly_jw_obj_end(w);
    }
    for (size_t i = 0; i < e->n; i++) {
        const ly__earn_rule *r = &e->rules[i];
        if (!r->o.applied || (!r->points && !r->credit && r->capped))
            continue;
        ly_jw_obj_begin(w);
        ly_jw_key(w, "rule_id");
        ly_jw_str(w, r->o.rule->id);
        ly_jw_key(w, "version");
        ly_jw_int(w, r->o.rule->version);
        ly_jw_key(w, "points");
        ly_jw_int(w, r->points);
        ly_jw_key(w, "credit");
        ly_jw_int(w, r->credit);
        if (r->capped) {
            ly_jw_key(w, "capped");
            ly_jw_bool(w, 1);
        }
        ly_jw_obj_end(w);
    }
    ly_jw_arr_end(w);
}

void ly__earned_write_considered(const ly__earned *e, ly_jw *w)
{
    ly_jw_arr_begin(w);
    for (size_t i = 0; i < e->n; i++) {
        const ly__earn_rule *r = &e->rules[i];
        ly_jw_obj_begin(w);
        ly_jw_key(w, "rule_id");
        ly_jw_str(w, r->o.rule->id);
        ly_jw_key(w, "version");
        ly_jw_int(w, r->o.rule->version);
        ly_jw_key(w, "priority");
        ly_jw_int(w, r->o.rule->priority);
        ly_jw_key(w, "matched");
        ly_jw_bool(w, r->o.matched);
        ly_jw_key(w, "applied");
        ly_jw_bool(w, r->o.applied && !(r->capped && !r->points && !r->credit));
        ly_jw_key(w, "reason");
        if (r->o.reason[0])
            ly_jw_str(w, r->o.reason);
        else
            ly_jw_null(w);
        ly_jw_key(w, "eligible_amount");
        ly_jw_int(w, r->o.eligible_amount);
        ly_jw_key(w, "points");
        ly_jw_int(w, r->points);
        ly_jw_key(w, "credit");
        ly_jw_int(w, r->credit);
        ly_jw_key(w, "capped");
        ly_jw_bool(w, r->capped);
        ly_jw_obj_end(w);
    }
    ly_jw_arr_end(w);
}

/* ---- the rules API ----------------------------------------------------- */

static int result_json(json_t *o, int status, ly_result *out, ly_error *err)
{
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text)
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    out->status = status;
    out->body = text;
    out->len = strlen(text);
    out->replayed = 0;
    return LY_OK;
}

/* A stored version as the API shows it: the rule, its version and when
 * this version was made. */
static json_t *row_json(const ly_rule_row *row)
{
    json_t *o = json_loads(row->body, 0, NULL);
    char t[LY_TIME_BUFSZ];
    if (!o)
        return NULL;
    ly_time_format(row->created_at, t);
    json_object_set_new(o, "version", json_integer(row->version));
    json_object_set_new(o, "updated_at", json_string(t));
    if (row->deleted)
        json_object_set_new(o, "deleted", json_true());
    return o;
}

static int row_result(const ly_rule_row *row, int status, ly_result *out, ly_error *err)
{
    json_t *o = row_json(row);
    if (!o)
        return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "rule %s is unreadable", row->rule_id);
    return result_json(o, status, out, err);
}

static char *new_rule_id(ly_arena *a)
{
    static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
    unsigned char r[12];
    char id[5 + 12 + 1] = "rule_";
    randombytes_buf(r, sizeof r);
    for (int i = 0; i < 12; i++)
        id[5 + i] = alphabet[r[i] & 31];
    id[17] = '\0';
    return ly_arena_strdup(a, id);
}

struct rule_op {
    ly_arena *a;
    int64_t program_id;
    const char *rule_id;
    const json_t *body; /* NULL: delete */
    int create;
    ly_result *out;
};

static int do_rule_write(ly_conn *c, void *vctx, ly_error *err)
{
    struct rule_op *op = vctx;
    ly_rule_row cur = {0}, row = {0};
    int rc = ly_store_rule_get(c, op->a, op->program_id, op->rule_id, 0, &cur, err);
    if (rc != LY_OK && rc != LY_ENOTFOUND)
        return rc;
    int exists = rc == LY_OK && !cur.deleted;
    ly_error_clear(err);
    if (op->create && exists)
        return ly_error_set(err, LY_ECONFLICT, "rule_exists", "id",
                            "rule %s already exists: PUT /v1/rules/%s changes it", op->rule_id,
                            op->rule_id);
    if (!op->create && !exists)
        return ly_error_set(err, LY_ENOTFOUND, "not_found", NULL, "no rule %.64s", op->rule_id);
    char *text = NULL;
    if (op->body) {
        ly_rule *r;
        json_t *canon;
        if ((rc = ly_rule_compile(op->body, &r, &canon, err)) != LY_OK)
            return rc;
        ly_rule_free(r);
        text = json_dumps(canon, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(canon);
        if (!text)
            return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
        /* The same rule again, in whatever order, is not a new version. */
        json_t *stored = exists ? json_loads(cur.body, 0, NULL) : NULL;
        json_t *given = stored ? json_loads(text, 0, NULL) : NULL;
        int same = stored && given && json_equal(stored, given);
        json_decref(stored);
        json_decref(given);
        if (same) {
            free(text);
            return row_result(&cur, 200, op->out, err);
        }
    }
    row.program_id = op->program_id;
    row.rule_id = op->rule_id;
    row.version = cur.version + 1;
    row.body = text ? ly_arena_strdup(op->a, text) : cur.body;
    row.deleted = op->body == NULL;
    row.created_at = ly_time_now_ms();
    free(text);
    if (!row.body)
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    if ((rc = ly_store_rule_insert(c, &row, err)) != LY_OK ||
        (rc = ly__program_touch(c, op->a, op->program_id, err)) != LY_OK)
        return rc == LY_ECONFLICT
                   ? ly_error_set(err, LY_ERETRY, NULL, NULL, "rule changed meanwhile")
                   : rc;
    if (row.deleted) {
        json_t *o = json_pack("{s:s, s:b, s:I}", "id", row.rule_id, "deleted", 1, "version",
                              (json_int_t)row.version);
        return o ? result_json(o, 200, op->out, err)
                 : ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    }
    return row_result(&row, op->create ? 201 : 200, op->out, err);
}

/* What a rule grants must exist: there is no reward catalog yet, so no
 * reward does. */
static int check_reward(const ly_rule *r, ly_error *err)
{
    if (r->effect != LY_EFFECT_REWARD)
        return LY_OK;
    return ly_error_set(err, LY_EREFUSED, "unknown_reward", "effect.grant_reward",
                        "no reward %s in the program's catalog", r->reward);
}

int ly_rule_save(ly_conn *c, ly_arena *a, int64_t program_id, const char *rule_id,
                 const json_t *body, ly_result *out, ly_error *err)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(body))
        return ly_error_set(err, LY_EINVAL, "invalid_type", NULL, "a rule is a JSON object");
    const json_t *id = json_object_get(body, "id");
    int rc = LY_OK;
    if (rule_id && id && (!json_is_string(id) || strcmp(json_string_value(id), rule_id) != 0))
        return ly_error_set(err, LY_EINVAL, "invalid_value", "id",
                            "id must be the rule's id in the path (%.64s), or left out", rule_id);
    /* The id first, whether given or made up, then the rest as given. */
    json_t *copy = json_object();
    const char *made = rule_id ? rule_id : new_rule_id(a);
    if (!copy || !made ||
        json_object_set_new(copy, "id", id ? json_deep_copy(id) : json_string(made)) != 0 ||
        json_object_update(copy, (json_t *)body) != 0) {
        json_decref(copy);
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    }
    /* Checked before the transaction, so bad input costs no lock. */
    ly_rule *r = NULL;
    if (rc == LY_OK && (rc = ly_rule_compile(copy, &r, NULL, err)) == LY_OK &&
        (rc = check_reward(r, err)) != LY_OK) {
        ly_rule_free(r);
    } else if (rc == LY_OK) {
        struct rule_op op = {a, program_id, ly_arena_strdup(a, r->id), copy, rule_id == NULL, out};
        ly_rule_free(r);
        rc = ly__txn_run(c, 1, do_rule_write, &op, err);
    }
    json_decref(copy);
    return rc;
}

int ly_rule_delete(ly_conn *c, ly_arena *a, int64_t program_id, const char *rule_id, ly_result *out,
                   ly_error *err)
{
    memset(out, 0, sizeof *out);
    struct rule_op op = {a, program_id, rule_id, NULL, 0, out};
    return ly__txn_run(c, 1, do_rule_write, &op, err);
}

int ly_rule_fetch(ly_conn *c, ly_arena *a, int64_t program_id, const char *rule_id, int64_t version,
                  ly_result *out, ly_error *err)
{
    memset(out, 0, sizeof *out);
    ly_rule_row row;
    int rc = ly_store_rule_get(c, a, program_id, rule_id, version, &row, err);
    if (rc == LY_OK && row.deleted && version == 0)
        rc = LY_ENOTFOUND;
    if (rc == LY_ENOTFOUND)
        return version
                   ? ly_error_set(err, LY_ENOTFOUND, "not_found", "version",
                                  "rule %.64s has no version %lld", rule_id, (long long)version)
                   : ly_error_set(err, LY_ENOTFOUND, "not_found", NULL, "no rule %.64s", rule_id);
    return rc == LY_OK ? row_result(&row, 200, out, err) : rc;
}

static int rows_result(const ly_rule_row *rows, size_t n, const char *next, ly_result *out,
                       ly_error *err)
{
    json_t *data = json_array(), *o = json_object();
    for (size_t i = 0; data && i < n; i++)
        json_array_append_new(data, row_json(&rows[i]));
    if (!data || !o) {
        json_decref(data);
        json_decref(o);
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    }
    json_object_set_new(o, "data", data);
    json_object_set_new(o, "next_cursor", next ? json_string(next) : json_null());
    return result_json(o, 200, out, err);
}

int ly_rule_list(ly_conn *c, ly_arena *a, int64_t program_id, const char *after, int limit,
                 ly_result *out, ly_error *err)
{
    memset(out, 0, sizeof *out);
    ly_rule_row *rows;
    size_t n;
    int rc = ly_store_rule_list(c, a, program_id, after, limit + 1, &rows, &n, err);
    if (rc != LY_OK)
        return rc;
    const char *next = NULL;
    if (n > (size_t)limit) {
        n = (size_t)limit;
        next = rows[n - 1].rule_id;
    }
    return rows_result(rows, n, next, out, err);
}

int ly_rule_versions(ly_conn *c, ly_arena *a, int64_t program_id, const char *rule_id,
                     int64_t after, int limit, ly_result *out, ly_error *err)
{
    memset(out, 0, sizeof *out);
    ly_rule_row *rows, first;
    size_t n;
    int rc = ly_store_rule_versions(c, a, program_id, rule_id, after, limit + 1, &rows, &n, err);
    if (rc != LY_OK)
        return rc;
    /* No version at all is no rule; none after the cursor is the end. */
    if (n == 0 && after > 0)
        rc = ly_store_rule_get(c, a, program_id, rule_id, 0, &first, err);
    if (n == 0 && (after == 0 || rc == LY_ENOTFOUND))
        return ly_error_set(err, LY_ENOTFOUND, "not_found", NULL, "no rule %.64s", rule_id);
    if (rc != LY_OK)
        return rc;
    const char *next = NULL;
    if (n > (size_t)limit) {
        n = (size_t)limit;
        next = ly_arena_printf(a, "%" PRId64, rows[n - 1].version);
        if (!next)
            return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    }
    return rows_result(rows, n, next, out, err);
}

int ly_rule_validate(const json_t *body, ly_result *out, ly_error *err)
{
    static const ly_json_field expr_fields[] = {
        {"expression", LY_JSON_STRING, LY_FIELD_REQUIRED, 0},
        {"scope", LY_JSON_STRING, 0, 16},
        {NULL, 0, 0, 0},
    };
    memset(out, 0, sizeof *out);
    if (json_object_get(body, "expression")) {
        int rc = ly_json_check(body, expr_fields, NULL, err);
        if (rc != LY_OK)
            return rc;
        const char *scope = ly_json_str(body, "scope");
        if (scope && strcmp(scope, "when") != 0 && strcmp(scope, "items") != 0)
            return ly_error_set(err, LY_EINVAL, "invalid_value", "scope",
                                "scope must be \"when\" or \"items\"");
        int items = scope && strcmp(scope, "items") == 0;
        unsigned scopes = LY_EXPR_EVENT | LY_EXPR_MEMBER | (items ? LY_EXPR_ITEM : 0);
        ly_expr *e;
        int line = 0, column = 0;
        ly_error ce = {0};
        if (ly_expr_compile_at(ly_json_str(body, "expression"), scopes, &e, &ce, &line, &column) !=
            LY_OK) {
            if (ce.rc != LY_EREFUSED)
                return ly_error_set(err, ce.rc, ce.code, "expression", "%s", ce.message);
            return ly_error_set(err, LY_EREFUSED, ce.code, "expression", "%d:%d: %s", line, column,
                                ce.message);
        }
        const char *type = ly_expr_type_name(ly_expr_type(e));
        int cond = ly_expr_type(e) == LY_T_BOOL;
        ly_expr_free(e);
        /* With a scope it is checked as a rule's when or items is: a condition. */
        if (scope && !cond)
            return ly_error_set(err, LY_EREFUSED, "type_error", "expression",
                                "1:1: %s must be a condition (true or false), found %s %s", scope,
                                type[0] == 'i' ? "an" : "a", type);
        json_t *o = json_pack("{s:b, s:s}", "valid", 1, "type", type);
        return o ? result_json(o, 200, out, err)
                 : ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    }
    json_t *copy = json_deep_copy(body);
    if (copy && !json_object_get(copy, "id"))
        json_object_set_new(copy, "id", json_string("rule"));
    ly_rule *r = NULL;
    json_t *canon = NULL;
    int rc = copy ? ly_rule_compile(copy, &r, &canon, err)
                  : ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    json_decref(copy);
    if (rc == LY_OK && (rc = check_reward(r, err)) != LY_OK)
        json_decref(canon);
    ly_rule_free(r);
    if (rc != LY_OK)
        return rc;
    if (!json_object_get(body, "id"))
        json_object_del(canon, "id");
    json_t *o = json_pack("{s:b, s:o}", "valid", 1, "rule", canon);
    return o ? result_json(o, 200, out, err)
             : ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
}
