/* /v1/members: enrol, look up, list, read, change, attach cards. The body is
 * turned into a ly_member_input; the engine validates and normalises. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "loyal/engine.h"
#include "loyal/json.h"

static const ly_json_field create_fields[] = {
    {"external_id", LY_JSON_STRING, LY_FIELD_NULLABLE, 128},
    {"email", LY_JSON_STRING, LY_FIELD_NULLABLE, 254},
    {"phone", LY_JSON_STRING, LY_FIELD_NULLABLE, 64},
    {"name", LY_JSON_STRING, LY_FIELD_NULLABLE, 200},
    {"birthdate", LY_JSON_STRING, LY_FIELD_NULLABLE, 0},
    {"attributes", LY_JSON_OBJECT, LY_FIELD_NULLABLE, 0},
    {"cards", LY_JSON_ARRAY, LY_FIELD_NULLABLE, 0},
    {"referral_code", LY_JSON_STRING, LY_FIELD_NULLABLE, 64},
    {NULL, 0, 0, 0},
};

static const ly_json_field patch_fields[] = {
    {"external_id", LY_JSON_STRING, LY_FIELD_NULLABLE, 128},
    {"email", LY_JSON_STRING, LY_FIELD_NULLABLE, 254},
    {"phone", LY_JSON_STRING, LY_FIELD_NULLABLE, 64},
    {"name", LY_JSON_STRING, LY_FIELD_NULLABLE, 200},
    {"birthdate", LY_JSON_STRING, LY_FIELD_NULLABLE, 0},
    {"attributes", LY_JSON_OBJECT, LY_FIELD_NULLABLE, 0},
    {"status", LY_JSON_STRING, 0, 16},
    {NULL, 0, 0, 0},
};

static const ly_json_field card_fields[] = {
    {"card", LY_JSON_STRING, LY_FIELD_REQUIRED, 64},
    {NULL, 0, 0, 0},
};

/* Fills in from the body's fields; `cards` must be an array of strings. */
static int read_input(ly_req *r, const json_t *body, ly_member_input *in)
{
    static const struct {
        const char *name;
        unsigned bit;
        size_t off;
    } strs[] = {
        {"external_id", LY_MF_EXTERNAL_ID, offsetof(ly_member_input, external_id)},
        {"email", LY_MF_EMAIL, offsetof(ly_member_input, email)},
        {"phone", LY_MF_PHONE, offsetof(ly_member_input, phone)},
        {"name", LY_MF_NAME, offsetof(ly_member_input, name)},
        {"birthdate", LY_MF_BIRTHDATE, offsetof(ly_member_input, birthdate)},
        {"status", LY_MF_STATUS, offsetof(ly_member_input, status)},
        {"referral_code", LY_MF_REFERRAL, offsetof(ly_member_input, referral_code)},
    };
    memset(in, 0, sizeof *in);
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        json_t *v = json_object_get(body, strs[i].name);
        if (!v || (json_is_null(v) && strs[i].bit == LY_MF_REFERRAL))
            continue;
        in->set |= strs[i].bit;
        *(const char **)((char *)in + strs[i].off) = json_string_value(v);
    }
    json_t *attrs = json_object_get(body, "attributes");
    if (attrs) {
        in->set |= LY_MF_ATTRIBUTES;
        in->attributes = json_is_object(attrs) ? attrs : NULL;
    }
    json_t *cards = json_object_get(body, "cards");
    if (json_is_array(cards)) {
        size_t n = json_array_size(cards);
        if (n > 20)
            return ly__fail(r, LY_EINVAL, "invalid_value", "cards",
                            "at most 20 cards may be given at once");
        in->cards = ly_arena_calloc(&r->arena, (n + 1) * sizeof *in->cards);
        if (!in->cards)
            return ly__fail(r, LY_ENOMEM, NULL, NULL, "out of memory");
        for (size_t i = 0; i < n; i++) {
            json_t *c = json_array_get(cards, i);
            if (!json_is_string(c))
                return ly__fail(r, LY_EINVAL, "invalid_type", "cards",
                                "\"cards\" must be an array of strings");
            in->cards[i] = json_string_value(c);
        }
        in->ncards = n;
        in->set |= LY_MF_CARDS;
    }
    return LY_OK;
}

static int member_id(ly_req *r, int64_t *id)
{
    if (ly_member_id_parse(r->match.params[0], id) != LY_OK)
        return ly__fail(r, LY_ENOTFOUND, "not_found", NULL, "no member %.64s", r->match.params[0]);
    return LY_OK;
}

static int reply_member(ly_req *r, int status, int rc, const ly_member *m, ly_error *err)
{
    if (rc == LY_ENOTFOUND && !err->field[0])
        ly_error_set(err, rc, "not_found", NULL, "no member %.64s", r->match.params[0]);
    if (rc != LY_OK)
        return ly__reply_error(r, err);
    ly_jw w;
    ly_jw_init(&w);
    ly_member_write(m, &w);
    return ly__reply_jw(r, status, &w);
}

int ly__h_members_create(ly_req *r)
{
    json_t *body;
    ly_member_input in;
    if (ly__body(r, create_fields, &body) != LY_OK)
        return LY_EINVAL;
    int rc = read_input(r, body, &in);
    ly_conn *db = rc == LY_OK ? ly__db(r) : NULL;
    if (db) {
        ly_member m;
        ly_error err;
        ly_error_clear(&err);
        rc = ly_member_enroll(db, &r->arena, r->program_id, &in, &m, &err);
        rc = reply_member(r, 201, rc, &m, &err);
    }
    json_decref(body);
    return rc;
}

static int list_members(ly_req *r)
{
    int limit;
    const char *cursor;
    if (ly__page(r, &limit, &cursor) != LY_OK)
        return LY_EINVAL;
    int64_t after = 0;
    if (cursor && ly_member_id_parse(cursor, &after) != LY_OK)
        return ly__fail(r, LY_EINVAL, "invalid_parameter", "cursor",
                        "cursor must be the next_cursor of a previous page");
    ly_conn *db = ly__db(r);
    if (!db)
        return LY_ESTORE;
    ly_member *ms;
    size_t n;
    ly_error err;
    ly_error_clear(&err);
    /* One extra row tells whether another page follows. */
    int rc = ly_member_list(db, &r->arena, r->program_id, after, limit + 1, &ms, &n, &err);
    if (rc != LY_OK)
        return ly__reply_error(r, &err);
    ly_jw w;
    ly_jw_init(&w);
    ly_jw_obj_begin(&w);
    ly_jw_key(&w, "data");
    ly_jw_arr_begin(&w);
    for (size_t i = 0; i < n && i < (size_t)limit; i++)
        ly_member_write(&ms[i], &w);
    ly_jw_arr_end(&w);
    ly_jw_key(&w, "next_cursor");
    if (n > (size_t)limit)
        ly_jw_id(&w, "mem_", ms[limit - 1].id);
    else
        ly_jw_null(&w);
    ly_jw_obj_end(&w);
    return ly__reply_jw(r, 200, &w);
}

int ly__h_members_list(ly_req *r)
{
    static const char *const allowed[] = {"email", "phone",  "card", "external_id",
                                          "limit", "cursor", NULL};
    static const char *const idents[] = {"email", "phone", "card", "external_id", NULL};
    if (ly__check_query(r, allowed) != LY_OK)
        return LY_EINVAL;
    const char *by = NULL, *value = NULL;
    for (size_t i = 0; i < r->nquery; i++)
        for (const char *const *k = idents; *k; k++)
            if (!r->query[i].value && strcmp(r->query[i].name, *k) == 0)
                return ly__fail(r, LY_EINVAL, "invalid_parameter", *k, "%s needs a value: ?%s=…",
                                *k, *k);
    for (const char *const *k = idents; *k; k++) {
        const char *v = ly__query(r, *k);
        if (!v)
            continue;
        if (by)
            return ly__fail(r, LY_EINVAL, "invalid_parameter", *k,
                            "look a member up by one of email, phone, card or external_id at a "
                            "time");
        by = *k;
        value = v;
    }
    /* A till (pos) or a partner looks members up one at a time; the whole
     * list, everyone's email and phone, is for read and admin keys. */
    if (!by && strcmp(r->scope, "admin") != 0 && strcmp(r->scope, "read") != 0)
        return ly__fail(r, LY_EFORBIDDEN, "forbidden", NULL,
                        "a %s key looks a member up by email, phone, card or external_id; "
                        "listing every member needs a read or admin key",
                        r->scope);
    if (!by)
        return list_members(r);
    if (ly__query(r, "limit") || ly__query(r, "cursor"))
        return ly__fail(r, LY_EINVAL, "invalid_parameter",
                        ly__query(r, "limit") ? "limit" : "cursor",
                        "a lookup by %s returns one member and takes no pagination", by);
    ly_conn *db = ly__db(r);
    if (!db)
        return LY_ESTORE;
    ly_member m;
    ly_error err;
    ly_error_clear(&err);
    int rc = ly_member_lookup(db, &r->arena, r->program_id, by, value, &m, &err);
    return reply_member(r, 200, rc, &m, &err);
}

int ly__h_member_get(ly_req *r)
{
    int64_t id;
    if (member_id(r, &id) != LY_OK)
        return LY_ENOTFOUND;
    ly_conn *db = ly__db(r);
    if (!db)
        return LY_ESTORE;
    ly_member m;
    ly_error err;
    ly_error_clear(&err);
    int rc = ly_member_get(db, &r->arena, r->program_id, id, &m, &err);
    return reply_member(r, 200, rc, &m, &err);
}

int ly__h_member_patch(ly_req *r)
{
    int64_t id;
    json_t *body;
    ly_member_input in;
    if (member_id(r, &id) != LY_OK)
        return LY_ENOTFOUND;
    if (ly__body(r, patch_fields, &body) != LY_OK)
        return LY_EINVAL;
    int rc = read_input(r, body, &in);
    if (rc == LY_OK && (in.set & LY_MF_STATUS) && strcmp(r->scope, "admin") != 0)
        rc = ly__fail(r, LY_EFORBIDDEN, "forbidden", "status",
                      "only an admin key may change a member's status");
    ly_conn *db = rc == LY_OK ? ly__db(r) : NULL;
    if (db) {
        ly_member m;
        ly_error err;
        ly_error_clear(&err);
        rc = ly_member_update(db, &r->arena, r->program_id, id, &in, &m, &err);
        rc = reply_member(r, 200, rc, &m, &err);
    }
    json_decref(body);
    return rc;
}

int ly__h_member_cards(ly_req *r)
{
    int64_t id;
    json_t *body;
    if (member_id(r, &id) != LY_OK)
        return LY_ENOTFOUND;
    if (ly__body(r, card_fields, &body) != LY_OK)
        return LY_EINVAL;
    int rc = LY_ESTORE;
    ly_conn *db = ly__db(r);
    if (db) {
        ly_member m;
        ly_error err;
        ly_error_clear(&err);
        rc = ly_member_add_card(db, &r->arena, r->program_id, id, ly_json_str(body, "card"), &m,
                                &err);
        rc = reply_member(r, 201, rc, &m, &err);
    }
    json_decref(body);
    return rc;
}
