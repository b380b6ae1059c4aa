/* Members: enrolment, updates, cards and lookups. Identifiers are normalised
 * here, with the program's phone country code, so that every path into the
 * store sees one spelling of each. */
#include "loyal/engine.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/rules_int.h"
#include "engine/txn.h"
#include "loyal/json.h"
#include "loyal/normalize.h"
#include "loyal/timeutil.h"

#define ATTRIBUTES_MAX 16384

static const char *program_country_code(ly_conn *c, ly_arena *a, int64_t program_id, ly_error *err)
{
    ly_program p;
    if (ly_store_program_get(c, a, program_id, &p, err) != LY_OK)
        return NULL;
    json_t *s = json_loads(p.settings, 0, NULL);
    const char *cc = json_string_value(json_object_get(s, "phone_country_code"));
    const char *out = ly_arena_strdup(a, cc ? cc : "1");
    json_decref(s);
    return out;
}

static int normalise_ident(ly_arena *a, const char *by, const char *value, const char *cc,
                           const char **out, ly_error *err)
{
    char buf[320];
    int rc;
    if (strcmp(by, "email") == 0) {
        rc = ly_norm_email(value, buf, sizeof buf);
        if (rc != LY_OK)
            return ly_error_set(err, LY_EINVAL, "invalid_email", "email",
                                "\"%.64s\" is not an email address", value);
    } else if (strcmp(by, "phone") == 0) {
        rc = ly_norm_phone(value, cc, buf, sizeof buf);
        if (rc != LY_OK)
            return ly_error_set(err, LY_EINVAL, "invalid_phone", "phone",
                                "\"%.64s\" is not a phone number; give it in international "
                                "form, e.g. +14155550123",
                                value);
    } else if (strcmp(by, "card") == 0) {
        rc = ly_norm_card(value, buf, sizeof buf);
        if (rc != LY_OK)
            return ly_error_set(err, LY_EINVAL, "invalid_card", "card",
                                "a card number is 4 to 64 letters and digits");
    } else {
        size_t n = ly_utf8_chars(value, strlen(value));
        if (n == 0 || n > 128)
            return ly_error_set(err, LY_EINVAL, "invalid_value", "external_id",
                                "external_id must be 1 to 128 characters");
        *out = value;
        return LY_OK;
    }
    *out = ly_arena_strdup(a, buf);
    return *out ? LY_OK : ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
}

/* Applies the input's fields to m (normalising), reading the program's phone
 * country code only when a phone is given. */
static int apply_input(ly_conn *c, ly_arena *a, int64_t program_id, const ly_member_input *in,
                       ly_member *m, ly_error *err)
{
    int rc = LY_OK;
    const char *cc = "1";
    if ((in->set & LY_MF_PHONE) && in->phone) {
        cc = program_country_code(c, a, program_id, err);
        if (!cc)
            return err ? err->rc : LY_ESTORE;
    }
    static const struct {
        unsigned bit;
        const char *by;
        size_t in_off, m_off;
    } idents[] = {
        {LY_MF_EXTERNAL_ID, "external_id", offsetof(ly_member_input, external_id),
         offsetof(ly_member, external_id)},
        {LY_MF_EMAIL, "email", offsetof(ly_member_input, email), offsetof(ly_member, email)},
        {LY_MF_PHONE, "phone", offsetof(ly_member_input, phone), offsetof(ly_member, phone)},
    };
    for (size_t i = 0; i < sizeof idents / sizeof idents[0]; i++) {
        if (!(in->set & idents[i].bit))
            continue;
        const char *v = *(const char *const *)((const char *)in + idents[i].in_off);
        const char **dst = (const char **)((char *)m + idents[i].m_off);
        if (!v)
            *dst = NULL;
        else if ((rc = normalise_ident(a, idents[i].by, v, cc, dst, err)) != LY_OK)
            return rc;
    }
    if (in->set & LY_MF_NAME) {
        if (in->name && (!*in->name || ly_utf8_chars(in->name, strlen(in->name)) > 200))
            return ly_error_set(err, LY_EINVAL, "invalid_value", "name",
                                "name must be 1 to 200 characters");
        m->name = in->name;
    }
    if (in->set & LY_MF_BIRTHDATE) {
        if (in->birthdate && ly_valid_date(in->birthdate) != LY_OK)
            return ly_error_set(err, LY_EINVAL, "invalid_date", "birthdate",
                                "birthdate must be a date written YYYY-MM-DD");
        m->birthdate = in->birthdate;
    }
    if (in->set & LY_MF_ATTRIBUTES) {
        if (!in->attributes) {
            m->attributes = "{}";
        } else {
            char *text = json_dumps(in->attributes, JSON_COMPACT | JSON_SORT_KEYS);
            size_t n = text ? strlen(text) : 0;
            m->attributes = text && n <= ATTRIBUTES_MAX ? ly_arena_strdup(a, text) : NULL;
            free(text);
            if (n > ATTRIBUTES_MAX)
                return ly_error_set(err, LY_EINVAL, "too_long", "attributes",
                                    "attributes must be at most %d bytes as JSON", ATTRIBUTES_MAX);
            if (!m->attributes)
                return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
        }
    }
    if (in->set & LY_MF_STATUS) {
        if (!in->status || (strcmp(in->status, "active") && strcmp(in->status, "suspended")))
            return ly_error_set(err, LY_EINVAL, "invalid_value", "status",
                                "status must be \"active\" or \"suspended\"");
        if (strcmp(m->status, "erased") == 0)
            return ly_error_set(err, LY_EREFUSED, "member_erased", "status",
                                "an erased member cannot be reactivated");
        m->status = in->status;
    }
    return LY_OK;
}

static int normalise_cards(ly_arena *a, const ly_member_input *in, const char ***out, ly_error *err)
{
    const char **cards = ly_arena_calloc(a, (in->ncards + 1) * sizeof *cards);
    if (!cards)
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    for (size_t i = 0; i < in->ncards; i++) {
        int rc = normalise_ident(a, "card", in->cards[i], NULL, &cards[i], err);
        if (rc != LY_OK)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(cards[i], cards[j]) == 0)
                return ly_error_set(err, LY_EINVAL, "invalid_value", "cards",
                                    "card %s is given twice", cards[i]);
    }
    *out = cards;
    return LY_OK;
}

struct enroll_ctx {
    ly_arena *a;
    int64_t program_id;
    const ly_member_input *in;
    const char **cards;
    ly_member *out;
};

static int do_enroll(ly_conn *c, void *vctx, ly_error *err)
{
    struct enroll_ctx *e = vctx;
    ly_member *m = e->out;
    memset(m, 0, sizeof *m);
    m->program_id = e->program_id;
    m->status = "active";
    m->attributes = "{}";
    int rc = apply_input(c, e->a, e->program_id, e->in, m, err);
    if (rc != LY_OK)
        return rc;
    m->created_at = m->updated_at = ly_time_now_ms();
    if ((rc = ly_store_member_insert(c, m, err)) != LY_OK)
        return rc;
    for (size_t i = 0; i < e->in->ncards; i++)
        if ((rc = ly_store_card_attach(c, e->program_id, m->id, e->cards[i], m->created_at, err)) !=
            LY_OK)
            return rc;
    if ((rc = ly__signup_earn(c, e->a, e->program_id, m->id, m->created_at, err)) != LY_OK)
        return rc;
    return ly_store_member_get(c, e->a, e->program_id, m->id, m, err);
}

int ly_member_enroll(ly_conn *c, ly_arena *a, int64_t program_id, const ly_member_input *in,
                     ly_member *out, ly_error *err)
{
    if (in->set & LY_MF_REFERRAL)
        return ly_error_set(err, LY_EREFUSED, "unknown_referral_code", "referral_code",
                            "no referral program is defined, so referral code \"%.40s\" is "
                            "unknown",
                            in->referral_code ? in->referral_code : "");
    struct enroll_ctx e = {a, program_id, in, NULL, out};
    int rc = normalise_cards(a, in, &e.cards, err);
    return rc == LY_OK ? ly__txn_run(c, 1, do_enroll, &e, err) : rc;
}

struct update_ctx {
    ly_arena *a;
    int64_t program_id, id;
    const ly_member_input *in;
    const char *card;
    ly_member *out;
};

static int do_update(ly_conn *c, void *vctx, ly_error *err)
{
    struct update_ctx *u = vctx;
    int rc = ly_store_member_get(c, u->a, u->program_id, u->id, u->out, err);
    if (rc == LY_OK)
        rc = apply_input(c, u->a, u->program_id, u->in, u->out, err);
    if (rc != LY_OK)
        return rc;
    u->out->updated_at = ly_time_now_ms();
    if ((rc = ly_store_member_update(c, u->out, err)) != LY_OK)
        return rc;
    return ly_store_member_get(c, u->a, u->program_id, u->id, u->out, err);
}

int ly_member_update(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id,
                     const ly_member_input *in, ly_member *out, ly_error *err)
{
    struct update_ctx u = {a, program_id, id, in, NULL, out};
    return ly__txn_run(c, 1, do_update, &u, err);
}

static int do_add_card(ly_conn *c, void *vctx, ly_error *err)
{
    struct update_ctx *u = vctx;
    int rc = ly_store_member_get(c, u->a, u->program_id, u->id, u->out, err);
    if (rc != LY_OK)
        return rc;
    int64_t now = ly_time_now_ms();
    if ((rc = ly_store_card_attach(c, u->program_id, u->id, u->card, now, err)) != LY_OK)
        return rc;
    return ly_store_member_get(c, u->a, u->program_id, u->id, u->out, err);
}

int ly_member_add_card(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, const char *card,
                       ly_member *out, ly_error *err)
{
    struct update_ctx u = {a, program_id, id, NULL, NULL, out};
    int rc = normalise_ident(a, "card", card, NULL, &u.card, err);
    return rc == LY_OK ? ly__txn_run(c, 1, do_add_card, &u, err) : rc;
}

struct read_ctx {
    ly_arena *a;
    int64_t program_id, id;
    const char *by, *value;
    int limit;
    ly_member *out;
    ly_member **list;
    size_t *n;
};

static int do_get(ly_conn *c, void *vctx, ly_error *err)
{
    struct read_ctx *r = vctx;
    return ly_store_member_get(c, r->a, r->program_id, r->id, r->out, err);
}

int ly_member_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, ly_member *out,
                  ly_error *err)
{
    struct read_ctx r = {.a = a, .program_id = program_id, .id = id, .out = out};
    return ly__txn_run(c, 0, do_get, &r, err);
}

static int do_lookup(ly_conn *c, void *vctx, ly_error *err)
{
    struct read_ctx *r = vctx;
    const char *cc = "1", *value;
    if (strcmp(r->by, "phone") == 0 && !(cc = program_country_code(c, r->a, r->program_id, err)))
        return err ? err->rc : LY_ESTORE;
    int rc = normalise_ident(r->a, r->by, r->value, cc, &value, err);
    if (rc != LY_OK)
        return rc;
    rc = ly_store_member_find(c, r->a, r->program_id, r->by, value, r->out, err);
    if (rc == LY_ENOTFOUND)
        ly_error_set(err, rc, "not_found", r->by, "no member has %s %s", r->by, value);
    return rc;
}

int ly_member_lookup(ly_conn *c, ly_arena *a, int64_t program_id, const char *by, const char *value,
                     ly_member *out, ly_error *err)
{
    struct read_ctx r = {.a = a, .program_id = program_id, .by = by, .value = value, .out = out};
    return ly__txn_run(c, 0, do_lookup, &r, err);
}

static int do_list(ly_conn *c, void *vctx, ly_error *err)
{
    struct read_ctx *r = vctx;
    return ly_store_member_list(c, r->a, r->program_id, r->id, r->limit, r->list, r->n, err);
}

int ly_member_list(ly_conn *c, ly_arena *a, int64_t program_id, int64_t after_id, int limit,
                   ly_member **out, size_t *n, ly_error *err)
{
    struct read_ctx r = {
        .a = a, .program_id = program_id, .id = after_id, .limit = limit, .list = out, .n = n};
    return ly__txn_run(c, 0, do_list, &r, err);
}

int ly_member_id_parse(const char *s, int64_t *id)
{
    if (strncmp(s, "mem_", 4) != 0 || s[4] < '1' || s[4] > '9' ||
        strspn(s + 4, "0123456789") != strlen(s + 4) || strlen(s + 4) > 18)
        return LY_EINVAL;
    *id = strtoll(s + 4, NULL, 10);
    return LY_OK;
}

void ly_member_write(const ly_member *m, ly_jw *w)
{
    char created[LY_TIME_BUFSZ], updated[LY_TIME_BUFSZ];
    ly_time_format(m->created_at, created);
    ly_time_format(m->updated_at, updated);
    ly_jw_obj_begin(w);
    ly_jw_key(w, "id");
    ly_jw_id(w, "mem_", m->id);
    ly_jw_key(w, "external_id");
    ly_jw_str(w, m->external_id);
    ly_jw_key(w, "email");
    ly_jw_str(w, m->email);
    ly_jw_key(w, "phone");
    ly_jw_str(w, m->phone);
    ly_jw_key(w, "name");
    ly_jw_str(w, m->name);
    ly_jw_key(w, "birthdate");
    ly_jw_str(w, m->birthdate);
    ly_jw_key(w, "attributes");
    /* Stored as compact JSON written by the engine itself. */
    ly_jw_raw(w, m->attributes && *m->attributes ? m->attributes : "{}");
    ly_jw_key(w, "status");
    ly_jw_str(w, m->status);
    ly_jw_key(w, "cards");
    ly_jw_arr_begin(w);
    for (size_t i = 0; i < m->ncards; i++)
        ly_jw_str(w, m->cards[i]);
    ly_jw_arr_end(w);
    ly_jw_key(w, "tier");
    ly_jw_null(w);
    ly_jw_key(w, "balances");
    ly_jw_obj_begin(w);
    ly_jw_key(w, "points");
    ly_jw_int(w, m->points);
    ly_jw_key(w, "credit");
    ly_jw_int(w, m->credit);
    ly_jw_obj_end(w);
    ly_jw_key(w, "created_at");
    ly_jw_str(w, created);
    ly_jw_key(w, "updated_at");
    ly_jw_str(w, updated);
    ly_jw_obj_end(w);
}
