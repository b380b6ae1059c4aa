/* Events: a purchase earns, a return reverses what its purchase earned in
 * proportion, a custom event is recorded. Each is one transaction that also
 * keeps the event and its answer, so that the same event sent again gets the
 * same answer and changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "engine/ledger_int.h"
#include "engine/rules_int.h"
#include "engine/txn.h"
#include "loyal/json.h"
#include "loyal/normalize.h"
#include "loyal/timeutil.h"

static const ly_json_field event_fields[] = {
    {"id", LY_JSON_STRING, 0, 128},
    {"type", LY_JSON_STRING, LY_FIELD_REQUIRED, 64},
    {"member", LY_JSON_ANY, LY_FIELD_NULLABLE, 0},
    {"enroll", LY_JSON_BOOLEAN, 0, 0},
    {"occurred_at", LY_JSON_STRING, 0, 64},
    {"amount", LY_JSON_INTEGER, 0, 0},
    {"currency", LY_JSON_STRING, 0, 0},
    {"channel", LY_JSON_STRING, LY_FIELD_NULLABLE, 64},
    {"store", LY_JSON_STRING, LY_FIELD_NULLABLE, 64},
    {"items", LY_JSON_ARRAY, 0, 0},
    {"attributes", LY_JSON_OBJECT, LY_FIELD_NULLABLE, 0},
    {"original_event_id", LY_JSON_STRING, 0, 128},
    {NULL, 0, 0, 0},
};

static const ly_json_field item_fields[] = {
    {"sku", LY_JSON_STRING, LY_FIELD_REQUIRED, 64},
    {"category", LY_JSON_STRING, LY_FIELD_NULLABLE, 64},
    {"quantity", LY_JSON_INTEGER, 0, 0},
    {"unit_price", LY_JSON_INTEGER, 0, 0},
    {"tags", LY_JSON_ARRAY, 0, 0},
    {NULL, 0, 0, 0},
};

static const ly_json_field return_item_fields[] = {
    {"sku", LY_JSON_STRING, LY_FIELD_REQUIRED, 64},
    {"quantity", LY_JSON_INTEGER, 0, 0},
    {NULL, 0, 0, 0},
};

static const ly_json_field member_ref_fields[] = {
    {"id", LY_JSON_STRING, 0, 64},           {"phone", LY_JSON_STRING, 0, 64},
    {"email", LY_JSON_STRING, 0, 254},       {"card", LY_JSON_STRING, 0, 64},
    {"external_id", LY_JSON_STRING, 0, 128}, {NULL, 0, 0, 0},
};

enum ev_type { EV_PURCHASE, EV_RETURN, EV_CUSTOM };

/* The event as checked, before any store access. */
typedef struct ev_in {
    const json_t *body;
    enum ev_type type;
    const char *type_name;
    const char *ext_id; /* NULL: make one */
    const json_t *member;
    int enroll;
    int64_t occurred_at;
    int64_t amount; /* 0: absent */
    const char *currency;
    const json_t *items;
    const char *original;
    const char *text; /* the body's canonical form, kept with the event */
    const char *hash;
} ev_in;

static int check_items(const json_t *items, int is_return, ly_error *err)
{
    size_t i;
    const json_t *it;
    if (json_array_size(items) > 1000)
        return ly_error_set(err, LY_EINVAL, "invalid_value", "items",
                            "an event holds at most 1000 items");
    json_array_foreach(items, i, it)
    {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "items[%zu]", i);
        if (!json_is_object(it))
            return ly_error_set(err, LY_EINVAL, "invalid_type", prefix, "%s must be an object",
                                prefix);
        int rc = ly_json_check(it, is_return ? return_item_fields : item_fields, prefix, err);
        if (rc != LY_OK)
            return rc;
        const json_t *q = json_object_get(it, "quantity"), *p = json_object_get(it, "unit_price");
        char field[48];
        snprintf(field, sizeof field, "%s.quantity", prefix);
        if (q && (json_integer_value(q) < 1 || json_integer_value(q) > 1000000))
            return ly_error_set(err, LY_EINVAL, "invalid_value", field,
                                "%s must be from 1 to 1000000", field);
        snprintf(field, sizeof field, "%s.unit_price", prefix);
        if (p && json_integer_value(p) < 0)
            return ly_error_set(err, LY_EINVAL, "invalid_value", field, "%s must not be negative",
                                field);
        if (p && json_integer_value(p) > LY_AMOUNT_MAX)
            return ly_error_set(err, LY_EINVAL, "amount_too_large", field,
                                "%s must be at most 2^53", field);
        if (p && q && (__int128)json_integer_value(p) * json_integer_value(q) > LY_AMOUNT_MAX)
            return ly_error_set(err, LY_EINVAL, "amount_too_large", prefix,
                                "%s: quantity times unit_price must be at most 2^53", prefix);
        const json_t *tags = json_object_get(it, "tags"), *t;
        size_t k;
        json_array_foreach(tags, k, t) if (!json_is_string(t)) return ly_error_set(
            err, LY_EINVAL, "invalid_type", "tags", "%s.tags must be strings", prefix);
    }
    return LY_OK;
}

static int check_event(const json_t *body, const char *hash, int64_t now, ev_in *ev, ly_error *err)
{
    int rc = ly_json_check(body, event_fields, NULL, err);
    if (rc != LY_OK)
        return rc;
    memset(ev, 0, sizeof *ev);
    ev->body = body;
    ev->hash = hash;
    ev->type_name = ly_json_str(body, "type");
    if (strcmp(ev->type_name, "purchase") == 0) {
        ev->type = EV_PURCHASE;
    } else if (strcmp(ev->type_name, "return") == 0) {
        ev->type = EV_RETURN;
    } else if (strncmp(ev->type_name, "custom:", 7) == 0 && ev->type_name[7] &&
               strspn(ev->type_name + 7, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789_-") == strlen(ev->type_name + 7)) {
        ev->type = EV_CUSTOM;
    } else {
        return ly_error_set(err, LY_EINVAL, "invalid_value", "type",
                            "type must be \"purchase\", \"return\" or \"custom:<name>\"");
    }
    ev->ext_id = ly_json_str(body, "id");
    if (ev->ext_id && !*ev->ext_id)
        return ly_error_set(err, LY_EINVAL, "invalid_value", "id", "id must not be empty");
    ev->member = json_object_get(body, "member");
    if (json_is_null(ev->member))
        ev->member = NULL;
    if (ev->member && !json_is_string(ev->member) && !json_is_object(ev->member))
        return ly_error_set(err, LY_EINVAL, "invalid_type", "member",
                            "member must be a member id or an object such as {\"phone\": …}");
    if (json_is_object(ev->member)) {
        if ((rc = ly_json_check(ev->member, member_ref_fields, "member", err)) != LY_OK)
            return rc;
        if (json_object_size(ev->member) != 1)
            return ly_error_set(err, LY_EINVAL, "invalid_value", "member",
                                "member must name exactly one of id, phone, email, card or "
                                "external_id");
    }
    ev->enroll = json_is_true(json_object_get(body, "enroll"));
    ev->occurred_at = now;
    const char *t = ly_json_str(body, "occurred_at");
    if (t && ly_time_parse(t, &ev->occurred_at) != LY_OK)
        return ly_error_set(err, LY_EINVAL, "invalid_value", "occurred_at",
                            "occurred_at must be an RFC 3339 time such as 2026-11-22T10:00:00Z");
    const json_t *amount = json_object_get(body, "amount");
    if (amount) {
        ev->amount = json_integer_value(amount);
        if (ev->amount <= 0)
            return ly_error_set(err, LY_EINVAL, "invalid_value", "amount",
                                "amount must be at least 1 (minor units)");
        if (ev->amount > LY_AMOUNT_MAX)
            return ly_error_set(err, LY_EINVAL, "amount_too_large", "amount",
                                "amount must be at most 2^53 (9007199254740992)");
    } else if (ev->type == EV_PURCHASE) {
        return ly_error_set(err, LY_EINVAL, "missing_field", "amount",
                            "a purchase needs an amount (minor units)");
    }
    ev->currency = ly_json_str(body, "currency");
    char cur[8];
    if (ev->currency && ly_norm_currency(ev->currency, cur, sizeof cur) != LY_OK)
        return ly_error_set(err, LY_EINVAL, "invalid_currency", "currency",
                            "currency must be an ISO 4217 code such as \"USD\"");
    ev->items = json_object_get(body, "items");
    if (ev->items && (rc = check_items(ev->items, ev->type == EV_RETURN, err)) != LY_OK)
        return rc;
    ev->original = ly_json_str(body, "original_event_id");
    if (ev->type == EV_RETURN && !ev->original)
        return ly_error_set(err, LY_EINVAL, "missing_field", "original_event_id",
                            "a return names its purchase in original_event_id");
    if (ev->type != EV_RETURN && ev->original)
        return ly_error_set(err, LY_EINVAL, "invalid_value", "original_event_id",
                            "only a return has an original_event_id");
    if (ev->type == EV_RETURN && ev->amount && ev->items)
        return ly_error_set(err, LY_EINVAL, "invalid_value", "items",
                            "a return gives an amount or items, not both");
    if (ev->type != EV_PURCHASE && ev->enroll)
        return ly_error_set(err, LY_EINVAL, "invalid_value", "enroll",
                            "only a purchase may enrol its member");
    return LY_OK;
}

/* ---- the transaction ---------------------------------------------------- */

typedef struct ev_ctx {
    ly_arena *a;
    int64_t program_id;
    const ev_in *in;
    int simulate;
    ly_result *out;
    /* Filled while running. */
    ly__prog prog;
    ly__ruleset *rules;
    ly_member member;
    int64_t member_id;
    int would_enroll; /* a simulation of a purchase that would enrol its member */
} ev_ctx;

/* Finds the event's member: 0 in *id when it names none or an unknown one. */
static int resolve_member(ly_conn *c, ev_ctx *x, ly_error *err)
{
    const json_t *m = x->in->member;
    x->member_id = 0;
    if (!m)
        return LY_OK;
    const char *by = "id", *value;
    if (json_is_string(m)) {
        value = json_string_value(m);
    } else {
        void *iter = json_object_iter((json_t *)m);
        by = json_object_iter_key(iter);
        value = json_string_value(json_object_iter_value(iter));
    }
    int rc;
    if (strcmp(by, "id") == 0) {
        /* A candidate: whether it exists is learnt when it is locked. */
        int64_t id;
        if (ly_member_id_parse(value, &id) == LY_OK)
            x->member_id = id;
        return LY_OK;
    }
    rc = ly_member_lookup(c, x->a, x->program_id, by, value, &x->member, err);
    if (rc == LY_OK)
        x->member_id = x->member.id;
    if (rc == LY_ENOTFOUND && x->in->enroll && strcmp(by, "id") != 0 && x->simulate) {
        ly_error_clear(err);
        x->would_enroll = 1;
        return LY_OK;
    }
    if (rc == LY_ENOTFOUND && x->in->enroll && strcmp(by, "id") != 0) {
        ly_member_input in = {0};
        in.set = strcmp(by, "email") == 0   ? LY_MF_EMAIL
                 : strcmp(by, "phone") == 0 ? LY_MF_PHONE
                 : strcmp(by, "card") == 0  ? LY_MF_CARDS
                                            : LY_MF_EXTERNAL_ID;
        in.email = in.phone = in.external_id = value;
        in.cards = &value;
        in.ncards = strcmp(by, "card") == 0;
        rc = ly_member_enroll(c, x->a, x->program_id, &in, &x->member, err);
        if (rc == LY_OK)
            x->member_id = x->member.id;
        return rc;
    }
    if (rc == LY_ENOTFOUND) {
        ly_error_clear(err);
        return LY_OK;
    }
    return rc;
}

static void write_member_id(ly_jw *w, int64_t id)
{
    ly_jw_key(w, "member_id");
    if (id)
        ly_jw_id(w, "mem_", id);
    else
        ly_jw_null(w);
}

static int write_balance(ly_conn *c, ev_ctx *x, ly_jw *w, ly_error *err)
{
    ly_jw_key(w, "balance");
    if (!x->member_id) {
        ly_jw_null(w);
        return LY_OK;
    }
    ly_balance b;
    int rc = ly_balance_get(c, x->a, x->program_id, x->member_id, ly_time_now_ms(), &b, err);
    if (rc == LY_OK)
        ly__balance_write_assets(&b, w);
    return rc;
}

/* evt_ + 10 characters of the time in ms + 10 random ones, in an alphabet
 * whose order is ASCII order: ids sort by time, so new events append to the
 * index instead of landing on random pages of it. */
static char *make_ext_id(ly_arena *a, int64_t now)
{
    static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
    char id[4 + 20 + 1] = "evt_";
    uint64_t t = (uint64_t)now;
    for (int i = 9; i >= 0; i--, t >>= 5)
        id[4 + i] = alphabet[t & 31];
    unsigned char r[10];
    randombytes_buf(r, sizeof r); /* one call: the generator is a system call away */
    for (int i = 10; i < 20; i++)
        id[4 + i] = alphabet[r[i - 10] & 31];
    id[24] = '\0';
    return ly_arena_strdup(a, id);
}

/* Finishes the answer and writes the event's row, once, with its outcome
 * and answer, then what each rule gave it (e, may be NULL), which names the
 * row. */
static int keep(ly_conn *c, ev_ctx *x, ly_event *row, const ly__earned *e, ly_jw *w, int status,
                ly_error *err)
{
    size_t len;
    char *text = ly_jw_finish(w, &len);
    if (!text)
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    int rc = LY_OK;
    if (!x->simulate) {
        row->result = ly_arena_strndup(x->a, text, len);
        if (!row->result)
            rc = ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
        if (rc == LY_OK && (rc = ly_store_event_insert(c, row, err)) == LY_ECONFLICT)
            rc = ly_error_set(err, LY_ERETRY, NULL, NULL, "event id taken meanwhile");
        if (rc == LY_OK && e)
            rc = ly__earned_record(c, &x->prog, row->id, e, err);
    }
    if (rc != LY_OK) {
        free(text);
        return rc;
    }
    x->out->status = status;
    x->out->body = text;
    x->out->len = len;
    x->out->replayed = 0;
    return LY_OK;
}

static void write_head(ly_jw *w, const ly_event *row, const ev_ctx *x)
{
    ly_jw_obj_begin(w);
    ly_jw_key(w, "event_id");
    ly_jw_str(w, row->ext_id);
    ly_jw_key(w, "type");
    ly_jw_str(w, row->type);
    write_member_id(w, x->member_id);
}

/* The member as the rules see it (the event's own changes not yet made),
 * read once the member is locked; only when some rule is on this type. */
static int load_member(ly_conn *c, ev_ctx *x, const char *type, ly_error *err)
{
    if (!x->member_id || !ly__ruleset_has(x->rules, type))
        return LY_OK;
    return ly_store_member_get(c, x->a, x->program_id, x->member_id, &x->member, err);
}

/* Evaluates the rules (or the base rate) for the event in row. */
static int earn_by_rules(ly_conn *c, ev_ctx *x, ly_event *row, ly__earned *e, ly_error *err)
{
    memset(e, 0, sizeof *e);
    if (!x->member_id && !x->would_enroll)
        return LY_OK;
    int rc = load_member(c, x, row->type, err);
    if (rc != LY_OK)
        return rc;
    ly__earn_in in = {.type = row->type,
                      .occurred_at = row->occurred_at,
                      .amount = row->amount,
                      .body = x->in->body,
                      .member = x->member_id ? &x->member : NULL,
                      .simulate = x->simulate};
    return ly__earn(c, x->a, &x->prog, x->rules, &in, e, err);
}

/* Posts what an event earned: one entry crediting the member's points and
 * credit from the program's issued accounts, and a lot for each; its id in
 * *entry_id (left alone when nothing was earned). */
static int post_earned(ly_conn *c, ev_ctx *x, const ly_event *row, const ly__earned *earned,
                       int64_t *entry_id, ly_error *err)
{
    if (x->simulate || (earned->points <= 0 && earned->credit <= 0))
        return LY_OK;
    ly_entry e = {.program_id = x->program_id,
                  .member_id = x->member_id,
                  .kind = "earn",
                  .event_id = row->id,
                  .effective_at = row->occurred_at,
                  .created_at = row->created_at};
    static const char *const assets[] = {"points", "credit"};
    int64_t amounts[] = {earned->points, earned->credit}, before[2] = {0, 0};
    ly_posting p[4];
    size_t np = 0;
    int rc;
    for (int i = 0; i < 2; i++) {
        if (amounts[i] <= 0)
            continue;
        if ((rc = ly_store_account_balance(c, x->program_id, x->member_id, "member", assets[i],
                                           &before[i], err)) != LY_OK)
            return rc;
        p[np++] = (ly_posting){x->member_id, "member", assets[i], amounts[i]};
        p[np++] = (ly_posting){0, "issued", assets[i], -amounts[i]};
    }
    if ((rc = ly_store_entry_insert(c, &e, p, np, err)) != LY_OK)
        return rc;
    int64_t available = row->occurred_at;
    if (ly_add64(row->occurred_at, x->prog.pending_ms, &available) != LY_OK)
        available = INT64_MAX;
    for (int i = 0; i < 2; i++) {
        if (amounts[i] <= 0)
            continue;
        /* Points expire by the program's policy; store credit does not. */
        int64_t expires = i == 0 ? ly_expiry_at(&x->prog.expiry, x->prog.tz, row->occurred_at) : 0;
        ly_lot lot;
        if ((rc = ly__lot_new(c, &e, x->member_id, assets[i], amounts[i], available, expires, &lot,
                              err)) != LY_OK)
            return rc;
        /* Lots need settling against the balance only when it was negative:
         * otherwise the new lot is exactly the balance's increase. */
        if (before[i] < 0 &&
            (rc = ly__settle(c, x->a, x->program_id, x->member_id, assets[i], e.id, err)) != LY_OK)
            return rc;
    }
    *entry_id = e.id;
    return LY_OK;
}

/* The common end of an earning answer: points and credit earned, the rules
 * that gave them (every rule considered, in a simulation), the balance. */
static int write_earned(ly_conn *c, ev_ctx *x, const ly__earned *e, ly_jw *w, ly_error *err)
{
    ly_jw_key(w, "points_earned");
    ly_jw_int(w, e->points);
    ly_jw_key(w, "credit_earned");
    ly_jw_int(w, e->credit);
    ly_jw_key(w, "applied_rules");
    ly__earned_write_applied(e, w);
    if (x->simulate) {
        ly_jw_key(w, "rules");
        ly__earned_write_considered(e, w);
    }
    return write_balance(c, x, w, err);
}

static int purchase(ly_conn *c, ev_ctx *x, ly_event *row, ly_error *err)
{
    ly__earned e;
    int rc = earn_by_rules(c, x, row, &e, err);
    row->points = e.points;
    row->credit = e.credit;
    if (rc == LY_OK)
        rc = post_earned(c, x, row, &e, &row->entry_id, err);
    if (rc == LY_OK && x->member_id && !x->simulate)
        rc = ly_store_member_purchase(c, x->program_id, x->member_id, row->occurred_at, row->amount,
                                      1, err);
    if (rc != LY_OK)
        return rc;
    ly_jw w;
    ly_jw_init(&w);
    write_head(&w, row, x);
    if ((rc = write_earned(c, x, &e, &w, err)) != LY_OK) {
        ly_jw_discard(&w);
        return rc;
    }
    ly_jw_key(&w, "tier");
    ly_jw_null(&w);
    ly_jw_key(&w, "occurred_at");
    ly_jw_time(&w, row->occurred_at);
    if (x->simulate) {
        ly_jw_key(&w, "simulated");
        ly_jw_bool(&w, 1);
    }
    ly_jw_obj_end(&w);
    return keep(c, x, row, &e, &w, x->simulate ? 200 : 201, err);
}

/* The value at unit prices of so many units of each SKU (units: {sku:
 * count}) of the purchase's lines, each SKU's taken in line order, so that
 * a SKU listed on several lines at different prices comes back unit by unit
 * at its own lines' prices. */
static __int128 units_value(const json_t *pitems, const json_t *units)
{
    __int128 v = 0;
    const char *sku;
    const json_t *n;
    json_object_foreach((json_t *)units, sku, n)
    {
        json_int_t left = json_integer_value(n);
        size_t k;
        const json_t *p;
        json_array_foreach(pitems, k, p)
        {
            if (left <= 0 || strcmp(json_string_value(json_object_get(p, "sku")), sku) != 0)
                continue;
            json_t *q = json_object_get(p, "quantity");
            json_int_t take = q ? json_integer_value(q) : 1;
            if (take > left)
                take = left;
            v += (__int128)take * json_integer_value(json_object_get(p, "unit_price"));
            left -= take;
        }
    }
    return v;
}

/* What returning x's items gives back, in *amount, with `returned` (the
 * units of each SKU returned before) brought up to date. The items are
 * valued at the purchase's unit prices; when those do not add up to the
 * purchase's amount (a basket discount, a tax), the value is scaled to it,
 * so that returning every item gives back exactly the amount: the share
 * returned so far, rounded down, less what earlier returns gave back. */
static int items_amount(const ev_ctx *x, const ly_event *orig, json_t *returned, int64_t *amount,
                        ly_error *err)
{
    json_t *pbody = json_loads(orig->body ? orig->body : "{}", 0, NULL);
    json_t *pitems = json_object_get(pbody, "items");
    json_t *before = json_deep_copy(returned), *all = json_object();
    size_t i;
    const json_t *it;
    int rc = before && all ? LY_OK : ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    *amount = 0;
    json_array_foreach(pitems, i, it)
    {
        const char *sku = json_string_value(json_object_get(it, "sku"));
        json_t *q = json_object_get(it, "quantity");
        if (rc == LY_OK)
            json_object_set_new(all, sku,
                                json_integer(json_integer_value(json_object_get(all, sku)) +
                                             (q ? json_integer_value(q) : 1)));
    }
    json_array_foreach(x->in->items, i, it)
    {
        if (rc != LY_OK)
            break;
        const char *sku = json_string_value(json_object_get(it, "sku"));
        json_int_t qty = json_object_get(it, "quantity")
                             ? json_integer_value(json_object_get(it, "quantity"))
                             : 1;
        json_int_t bought = json_integer_value(json_object_get(all, sku));
        json_int_t done = json_integer_value(json_object_get(returned, sku));
        if (!bought) {
            rc = ly_error_set(err, LY_EREFUSED, "return_exceeds_purchase", "items",
                              "purchase %s has no item %.64s", orig->ext_id, sku);
            break;
        }
        if (qty > bought - done) {
            rc = ly_error_set(err, LY_EREFUSED, "return_exceeds_purchase", "items",
                              "purchase %s has %lld of %.64s left to return, not %lld",
                              orig->ext_id, (long long)(bought - done), sku, (long long)qty);
            break;
        }
        json_object_set_new(returned, sku, json_integer(done + qty));
    }
    if (rc == LY_OK) {
        __int128 total = units_value(pitems, all), was = units_value(pitems, before),
                 now = units_value(pitems, returned), a = orig->amount;
        if (total > 0 && total != a) {
            was = was * a / total;
            now = now * a / total;
        }
        if (now - was > INT64_MAX)
            rc = ly_error_set(err, LY_EREFUSED, "amount_overflow", "items",
                              "the returned items' value does not fit in 64 bits");
        else
            *amount = (int64_t)(now - was);
    }
    json_decref(all);
    json_decref(before);
    json_decref(pbody);
    return rc;
}

static int do_return(ly_conn *c, ev_ctx *x, ly_event *row, ly_error *err)
{
    ly_event orig;
    int rc = ly_store_event_get(c, x->a, x->program_id, x->in->original, &orig, err);
    if (rc == LY_OK && (strcmp(orig.type, "purchase") != 0 || !orig.member_id ||
                        (x->in->member && x->member_id != orig.member_id)))
        rc = LY_ENOTFOUND;
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, LY_EREFUSED, "unknown_original_event", "original_event_id",
                            "no purchase %.128s of this member to return", x->in->original);
    if (rc != LY_OK)
        return rc;
    x->member_id = orig.member_id;
    /* A suspended member's purchase is still taken back when returned: a
     * return only takes points away (its rules give a suspended member
     * nothing, below). */
    int active = 0;
    if ((rc = ly_store_member_lock(c, x->program_id, x->member_id, &active, err)) != LY_OK)
        return rc;
    if (x->in->currency && orig.currency && strcmp(x->in->currency, orig.currency) != 0)
        return ly_error_set(err, LY_EREFUSED, "currency_mismatch", "currency",
                            "the return's currency is not its purchase's (%s)", orig.currency);
    int64_t left = orig.amount - orig.returned_amount, amount = left;
    json_t *returned = json_loads(orig.returned_items ? orig.returned_items : "{}", 0, NULL);
    if (!returned)
        returned = json_object();
    if (x->in->items)
        rc = items_amount(x, &orig, returned, &amount, err);
    else if (x->in->amount)
        amount = x->in->amount;
    if (rc == LY_OK && (amount > left || left <= 0))
        rc = ly_error_set(err, LY_EREFUSED, "return_exceeds_purchase",
                          x->in->items ? "items" : "amount",
                          "purchase %s has %lld left to return, not %lld", orig.ext_id,
                          (long long)left, (long long)amount);
    char *items_text = rc == LY_OK ? json_dumps(returned, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(returned);
    if (rc != LY_OK)
        return rc;
    /* What the purchase has given back once this return is done, so that
     * pieces add up to exactly what it earned. */
    int64_t total_after = orig.returned_amount + amount, points_after, credit_after;
    if (ly_prorate(orig.points, total_after, orig.amount, &points_after) != LY_OK ||
        ly_prorate(orig.credit, total_after, orig.amount, &credit_after) != LY_OK) {
        free(items_text);
        return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "return arithmetic failed");
    }
    int64_t reverse = points_after - orig.reversed_points;
    int64_t credit = credit_after - orig.reversed_credit;
    int64_t balance = 0, taken = reverse, forgiven = 0;
    rc =
        ly_store_account_balance(c, x->program_id, x->member_id, "member", "points", &balance, err);
    if (rc == LY_OK && x->prog.clawback && reverse > (balance > 0 ? balance : 0)) {
        taken = balance > 0 ? balance : 0;
        forgiven = reverse - taken;
    }
    row->member_id = x->member_id;
    row->original_id = orig.id;
    row->amount = amount;
    row->points = -taken;
    row->credit = -credit;
    /* The purchase's own lots: points are taken from them first, and what
     * was forgiven is marked on them. */
    ly_lot *lots = NULL;
    size_t n = 0;
    if (rc == LY_OK && !x->simulate && (taken > 0 || credit > 0 || forgiven > 0) && orig.entry_id)
        rc = ly_store_lots_of_entry(c, x->a, x->program_id, orig.entry_id, &lots, &n, err);
    if (rc == LY_OK && !x->simulate && (taken > 0 || credit > 0)) {
        ly_entry e = {.program_id = x->program_id,
                      .member_id = x->member_id,
                      .kind = "return",
                      .event_id = row->id,
                      .ref_entry_id = orig.entry_id,
                      .effective_at = row->occurred_at,
                      .created_at = row->created_at};
        ly_posting p[4];
        size_t np = 0;
        if (taken > 0) {
            p[np++] = (ly_posting){x->member_id, "member", "points", -taken};
            p[np++] = (ly_posting){0, "returned", "points", taken};
        }
        if (credit > 0) {
            p[np++] = (ly_posting){x->member_id, "member", "credit", -credit};
            p[np++] = (ly_posting){0, "returned", "credit", credit};
        }
        rc = ly_store_entry_insert(c, &e, p, np, err);
        /* The purchase's own lots first, then (ly__settle) whatever else the
         * balance no longer covers. */
        int64_t want = taken;
        for (size_t i = 0; rc == LY_OK && i < n && want > 0; i++) {
            /* Points from its points lot, not from the credit lot beside it. */
            if (strcmp(lots[i].asset, "points") != 0)
                continue;
            int64_t t = lots[i].remaining < want ? lots[i].remaining : want;
            if (!t)
                continue;
            ly_consumption k = {e.id, lots[i].id, t};
            rc = ly_store_consumption_insert(c, x->program_id, &k, err);
            want -= t;
        }
        if (rc == LY_OK && taken > 0)
            rc = ly__settle(c, x->a, x->program_id, x->member_id, "points", e.id, err);
        if (rc == LY_OK && credit > 0)
            rc = ly__settle(c, x->a, x->program_id, x->member_id, "credit", e.id, err);
        row->entry_id = e.id;
    }
    /* What was forgiven is marked on the purchase's points lots, so that a
     * cancelled spend of them gives them back to the return, not the member
     * (see do_cancel in ledger.c). */
    if (rc == LY_OK && !x->simulate && forgiven > 0) {
        int64_t rest = forgiven;
        for (size_t i = 0; rc == LY_OK && i < n && rest > 0; i++) {
            int64_t had = 0;
            if (strcmp(lots[i].asset, "points") != 0 ||
                (rc = ly_store_lot_forgiven(c, x->program_id, lots[i].id, &had, err)) != LY_OK)
                continue;
            int64_t f = lots[i].amount - had < rest ? lots[i].amount - had : rest;
            if (f > 0 && (rc = ly_store_lot_forgive(c, x->program_id, lots[i].id, f, err)) == LY_OK)
                rest -= f;
        }
    }
    if (rc == LY_OK && !x->simulate)
        rc = ly__earn_reverse(c, x->a, &x->prog, &orig, total_after, err);
    if (rc == LY_OK && !x->simulate)
        rc = ly_store_member_purchase(c, x->program_id, x->member_id, row->occurred_at, -amount, 0,
                                      err);
    if (rc == LY_OK && !x->simulate) {
        orig.returned_amount = total_after;
        orig.reversed_points = points_after;
        orig.reversed_credit = credit_after;
        orig.returned_items =
            x->in->items ? ly_arena_strdup(x->a, items_text) : orig.returned_items;
        rc = ly_store_event_update(c, &orig, err);
    }
    free(items_text);
    if (rc != LY_OK)
        return rc;
    /* Rules on "return" earn like any others, in an entry of their own;
     * not for a suspended member, who cannot earn. */
    ly__earned e;
    memset(&e, 0, sizeof e);
    int64_t earn_entry = 0;
    if ((active && (rc = earn_by_rules(c, x, row, &e, err)) != LY_OK) ||
        (rc = post_earned(c, x, row, &e, &earn_entry, err)) != LY_OK)
        return rc;
    ly_jw w;
    ly_jw_init(&w);
    write_head(&w, row, x);
    ly_jw_key(&w, "original_event_id");
    ly_jw_str(&w, orig.ext_id);
    ly_jw_key(&w, "amount_returned");
    ly_jw_int(&w, amount);
    ly_jw_key(&w, "points_reversed");
    ly_jw_int(&w, taken);
    ly_jw_key(&w, "points_forgiven");
    ly_jw_int(&w, forgiven);
    ly_jw_key(&w, "credit_reversed");
    ly_jw_int(&w, credit);
    if ((rc = write_earned(c, x, &e, &w, err)) != LY_OK) {
        ly_jw_discard(&w);
        return rc;
    }
    ly_jw_key(&w, "occurred_at");
    ly_jw_time(&w, row->occurred_at);
    if (x->simulate) {
        ly_jw_key(&w, "simulated");
        ly_jw_bool(&w, 1);
    }
    ly_jw_obj_end(&w);
    return keep(c, x, row, &e, &w, x->simulate ? 200 : 201, err);
}

/* A custom event (and a signup or a birthday): earns by the rules on its
 * type. */
static int custom(ly_conn *c, ev_ctx *x, ly_event *row, ly_error *err)
{
    int rc;
    if (!x->member_id)
        return ly_error_set(err, LY_EREFUSED, "unknown_member", "member",
                            "a custom event needs a known member");
    ly__earned e;
    if ((rc = earn_by_rules(c, x, row, &e, err)) != LY_OK)
        return rc;
    row->points = e.points;
    row->credit = e.credit;
    if ((rc = post_earned(c, x, row, &e, &row->entry_id, err)) != LY_OK)
        return rc;
    if (!x->simulate && (rc = ly_store_member_touch(c, x->program_id, x->member_id,
                                                    row->occurred_at, err)) != LY_OK)
        return rc;
    ly_jw w;
    ly_jw_init(&w);
    write_head(&w, row, x);
    if ((rc = write_earned(c, x, &e, &w, err)) != LY_OK) {
        ly_jw_discard(&w);
        return rc;
    }
    ly_jw_key(&w, "occurred_at");
    ly_jw_time(&w, row->occurred_at);
    if (x->simulate) {
        ly_jw_key(&w, "simulated");
        ly_jw_bool(&w, 1);
    }
    ly_jw_obj_end(&w);
    return keep(c, x, row, &e, &w, x->simulate ? 200 : 201, err);
}

static int do_event(ly_conn *c, void *vctx, ly_error *err)
{
    ev_ctx *x = vctx;
    const ev_in *in = x->in;
    int rc;
    /* A known id: the same event again gets the same answer, and a
     * simulation of it what sending it would answer. */
    if (in->ext_id) {
        ly_event prev;
        rc = ly_store_event_get(c, x->a, x->program_id, in->ext_id, &prev, err);
        if (rc == LY_OK) {
            if (!prev.request_hash || strcmp(prev.request_hash, in->hash) != 0)
                return ly_error_set(err, LY_ECONFLICT, "idempotency_conflict", "id",
                                    "event %.128s was already recorded with another body",
                                    in->ext_id);
            size_t len = strlen(prev.result ? prev.result : "");
            x->out->body = malloc(len + 1);
            if (!x->out->body)
                return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
            memcpy(x->out->body, prev.result ? prev.result : "", len + 1);
            x->out->len = len;
            x->out->status = x->simulate ? 200 : 201;
            x->out->replayed = 1;
            return LY_OK;
        }
        if (rc != LY_ENOTFOUND)
            return rc;
    }
    if ((rc = ly__prog_load(c, x->a, x->program_id, &x->prog, err)) != LY_OK)
        return rc;
    ly__ruleset_release(x->rules); /* from an attempt that was retried */
    x->rules = NULL;
    if ((rc = ly__ruleset_get(c, x->a, &x->prog, &x->rules, err)) != LY_OK)
        return rc;
    if (in->currency && strcmp(in->currency, x->prog.p.currency) != 0 &&
        strcasecmp(in->currency, x->prog.p.currency) == 0)
        return ly_error_set(err, LY_EINVAL, "invalid_currency", "currency",
                            "currency codes are upper case: \"%s\"", x->prog.p.currency);
    if (in->currency && strcmp(in->currency, x->prog.p.currency) != 0)
        return ly_error_set(err, LY_EREFUSED, "currency_mismatch", "currency",
                            "the program counts in %s, not %.8s", x->prog.p.currency, in->currency);
    if ((rc = resolve_member(c, x, err)) != LY_OK)
        return rc;
    if (x->member_id && in->type != EV_RETURN &&
        (rc = ly__member_ready(c, x->program_id, x->member_id, err)) != LY_OK) {
        if (rc != LY_ENOTFOUND)
            return rc;
        /* An id no member has: a purchase by someone not (yet) a member. */
        ly_error_clear(err);
        x->member_id = 0;
    }
    int64_t now = ly_time_now_ms();
    ly_event row = {.program_id = x->program_id,
                    .ext_id = in->ext_id ? in->ext_id : make_ext_id(x->a, now),
                    .type = in->type_name,
                    .member_id = x->member_id,
                    .amount = in->amount,
                    .currency = x->prog.p.currency,
                    .occurred_at = in->occurred_at,
                    .request_hash = in->hash,
                    .created_at = now};
    row.body = in->text;
    if (!row.ext_id)
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    /* Its id first, so that entries can name it; the row once it is done. */
    if (!x->simulate && (rc = ly_store_event_next_id(c, &row.id, err)) != LY_OK)
        return rc;
    switch (in->type) {
    case EV_PURCHASE:
        return purchase(c, x, &row, err);
    case EV_RETURN:
        return do_return(c, x, &row, err);
    default:
        return custom(c, x, &row, err);
    }
}

int ly_event_post(ly_conn *c, ly_arena *a, int64_t program_id, const json_t *body, const char *text,
                  const char *request_hash, int simulate, ly_result *out, ly_error *err)
{
    ev_in in;
    memset(out, 0, sizeof *out);
    int rc = check_event(body, request_hash, ly_time_now_ms(), &in, err);
    if (rc != LY_OK)
        return rc;
    if (!text) {
        char *t = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
        text = t ? ly_arena_strdup(a, t) : NULL;
        free(t);
        if (!text)
            return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    }
    in.text = text;
    ev_ctx x = {.a = a, .program_id = program_id, .in = &in, .simulate = simulate, .out = out};
    /* A simulation runs the event for real and rolls it back. */
    rc = simulate ? ly__txn_dry_run(c, do_event, &x, err) : ly__txn_run(c, 1, do_event, &x, err);
    ly__ruleset_release(x.rules);
    return rc;
}

/* ---- events of the member's life: signup and birthday ----------------------- */

/* Records a `type` event for the member at `at` and grants the rules on it
 * (ext_id NULL: made up), inside the caller's transaction. */
static int member_event(ly_conn *c, ly_arena *a, const ly__prog *prog, ly__ruleset *rs,
                        int64_t member_id, const char *type, const char *ext_id, int64_t at,
                        ly_event *row, ly_error *err)
{
    json_t *body = json_pack("{s:s}", "type", type);
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    ev_in in = {.body = body, .type = EV_CUSTOM, .type_name = type, .hash = ""};
    ly_result res = {0};
    ev_ctx x = {.a = a,
                .program_id = prog->p.id,
                .in = &in,
                .out = &res,
                .prog = *prog,
                .rules = rs,
                .member_id = member_id};
    int64_t now = ly_time_now_ms();
    *row = (ly_event){.program_id = prog->p.id,
                      .ext_id = ext_id ? ext_id : make_ext_id(a, now),
                      .type = type,
                      .member_id = member_id,
                      .currency = prog->p.currency,
                      .occurred_at = at,
                      .body = text ? ly_arena_strdup(a, text) : NULL,
                      .request_hash = "",
                      .created_at = now};
    free(text);
    int rc = !row->body || !row->ext_id ? ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory")
                                        : ly_store_event_next_id(c, &row->id, err);
    if (rc == LY_OK)
        rc = custom(c, &x, row, err);
    free(res.body);
    json_decref(body);
    return rc;
}

int ly__signup_earn(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id, int64_t at,
                    ly_error *err)
{
    ly__prog prog;
    ly__ruleset *rs = NULL;
    int rc = ly__prog_load(c, a, program_id, &prog, err);
    if (rc == LY_OK)
        rc = ly__ruleset_get(c, a, &prog, &rs, err);
    if (rc == LY_OK && rs->signup_rules) {
        ly_event row;
        rc = member_event(c, a, &prog, rs, member_id, "signup", NULL, at, &row, err);
    }
    ly__ruleset_release(rs);
    return rc;
}

struct bday_ctx {
    ly_arena *a;
    const ly__prog *prog;
    ly__ruleset *rs;
    int64_t member_id, at;
    const char *ext_id;
    ly_event row;
    int granted;
};

static int do_birthday(ly_conn *c, void *vctx, ly_error *err)
{
    struct bday_ctx *b = vctx;
    ly_event prev;
    b->granted = 0;
    int rc = ly_store_event_get(c, b->a, b->prog->p.id, b->ext_id, &prev, err);
    if (rc != LY_ENOTFOUND)
        return rc; /* LY_OK: granted already this year */
    ly_error_clear(err);
    rc = ly__member_ready(c, b->prog->p.id, b->member_id, err);
    if (rc == LY_EREFUSED || rc == LY_ENOTFOUND) {
        ly_error_clear(err); /* suspended or erased meanwhile */
        return LY_OK;
    }
    if (rc == LY_OK)
        rc = member_event(c, b->a, b->prog, b->rs, b->member_id, "birthday", b->ext_id, b->at,
                          &b->row, err);
    b->granted = rc == LY_OK;
    return rc;
}

#define BIRTHDAY_CATCH_UP_DAYS 7
#define BIRTHDAY_PAGE          200

static int birthdays_on(ly_conn *c, ly_arena *a, struct bday_ctx *b, int64_t day, const char *mmdd,
                        ly_birthday_stats *out, ly_error *err)
{
    int64_t y;
    unsigned mo, d;
    ly_civil_from_days(day, &y, &mo, &d);
    int64_t midnight = ly_tz_to_utc(b->prog->tz, day * 86400000);
    int64_t after = 0;
    for (;;) {
        ly_member *ms;
        size_t n;
        int rc = ly_store_members_by_birthday(c, a, b->prog->p.id, mmdd, after, BIRTHDAY_PAGE, &ms,
                                              &n, err);
        if (rc != LY_OK)
            return rc;
        for (size_t i = 0; i < n; i++) {
            ly_civil cc;
            ly_tz_local_civil(b->prog->tz, ms[i].created_at, &cc);
            /* Birthdays since the member joined only. */
            if (ly_days_from_civil(cc.year, (unsigned)cc.month, (unsigned)cc.day) > day)
                continue;
            b->member_id = ms[i].id;
            b->at = ms[i].created_at > midnight ? ms[i].created_at : midnight;
            b->ext_id =
                ly_arena_printf(a, "birthday_%lld_mem_%lld", (long long)y, (long long)ms[i].id);
            if (!b->ext_id)
                return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
            if ((rc = ly__txn_run(c, 1, do_birthday, b, err)) != LY_OK)
                return rc;
            if (b->granted) {
                out->members++;
                out->points += b->row.points;
                out->credit += b->row.credit;
            }
        }
        if (n < BIRTHDAY_PAGE)
            return LY_OK;
        after = ms[n - 1].id;
    }
}

int ly_birthdays_run(ly_conn *c, ly_arena *a, int64_t program_id, int64_t as_of,
                     ly_birthday_stats *out, ly_error *err)
{
    memset(out, 0, sizeof *out);
    ly__prog prog;
    ly__ruleset *rs = NULL;
    int rc = ly__prog_load(c, a, program_id, &prog, err);
    if (rc == LY_OK)
        rc = ly__ruleset_get(c, a, &prog, &rs, err);
    if (rc != LY_OK || !rs->birthday_rules) {
        ly__ruleset_release(rs);
        return rc;
    }
    struct bday_ctx b = {.a = a, .prog = &prog, .rs = rs};
    ly_civil now;
    ly_tz_local_civil(prog.tz, as_of, &now);
    int64_t today = ly_days_from_civil(now.year, (unsigned)now.month, (unsigned)now.day);
    /* The last week, so that a day the job did not run is caught up; a 29
     * February birthday is kept on 28 February in other years. */
    for (int64_t day = today - (BIRTHDAY_CATCH_UP_DAYS - 1); rc == LY_OK && day <= today; day++) {
        int64_t y;
        unsigned mo, d;
        char mmdd[8];
        ly_civil_from_days(day, &y, &mo, &d);
        snprintf(mmdd, sizeof mmdd, "%02u-%02u", mo % 100, d % 100);
        rc = birthdays_on(c, a, &b, day, mmdd, out, err);
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        if (rc == LY_OK && mo == 2 && d == 28 && !leap)
            rc = birthdays_on(c, a, &b, day, "02-29", out, err);
    }
    ly__ruleset_release(rs);
    return rc;
}
