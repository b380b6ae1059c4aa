/* /v1/keys: create (the secret is in this one answer only), list, revoke. */
#include <string.h>

#include "api/handlers.h"
#include "loyal/engine.h"
#include "loyal/json.h"

static const ly_json_field key_fields[] = {
    {"scope", LY_JSON_STRING, LY_FIELD_REQUIRED, 16},
    {"name", LY_JSON_STRING, LY_FIELD_NULLABLE, 100},
    {NULL, 0, 0, 0},
};

int ly__h_keys_create(ly_req *r)
{
    json_t *body;
    if (ly__body(r, key_fields, &body) != LY_OK)
        return LY_EINVAL;
    ly_conn *db = ly__db(r);
    if (!db) {
        json_decref(body);
        return LY_ESTORE;
    }
    char key[LY_KEY_MAX];
    ly_key k;
    ly_error err;
    ly_error_clear(&err);
    int rc = ly_apikey_create(db, &r->arena, r->program_id, ly_json_str(body, "scope"),
                              ly_json_str(body, "name"), key, &k, &err);
    json_decref(body);
    if (rc != LY_OK)
        return ly__reply_error(r, &err);
    json_t *out = ly_apikey_to_json(&r->arena, &k);
    if (out)
        json_object_set_new(out, "key", json_string(key));
    return ly__reply_json(r, 201, out);
}

/* A program has few keys: the page is cut from the whole list, after the
 * key named by the cursor. */
int ly__h_keys_list(ly_req *r)
{
    static const char *const allowed[] = {"limit", "cursor", NULL};
    int limit;
    const char *cursor;
    if (ly__check_query(r, allowed) != LY_OK || ly__page(r, &limit, &cursor) != LY_OK)
        return LY_EINVAL;
    ly_conn *db = ly__db(r);
    if (!db)
        return LY_ESTORE;
    ly_key *keys;
    size_t n, first = 0;
    ly_error err;
    ly_error_clear(&err);
    int rc = ly_apikey_list(db, &r->arena, r->program_id, &keys, &n, &err);
    if (rc != LY_OK)
        return ly__reply_error(r, &err);
    if (cursor) {
        const char *id = strncmp(cursor, "key_", 4) == 0 ? cursor + 4 : cursor;
        while (first < n && strcmp(keys[first].id, id) != 0)
            first++;
        if (first == n)
            return ly__fail(r, LY_EINVAL, "invalid_parameter", "cursor",
                            "cursor must be the next_cursor of a previous page");
        first++;
    }
    json_t *data = json_array();
    size_t end = first + (size_t)limit < n ? first + (size_t)limit : n;
    for (size_t i = first; i < end; i++)
        json_array_append_new(data, ly_apikey_to_json(&r->arena, &keys[i]));
    json_t *next =
        end < n ? json_string(ly_apikey_wire_id(&r->arena, keys[end - 1].id)) : json_null();
    return ly__reply_json(r, 200, json_pack("{s:o, s:o}", "data", data, "next_cursor", next));
}

int ly__h_key_revoke(ly_req *r)
{
    ly_conn *db = ly__db(r);
    if (!db)
        return LY_ESTORE;
    ly_key k;
    ly_error err;
    ly_error_clear(&err);
    int rc = ly_apikey_revoke(db, &r->arena, r->program_id, r->match.params[0], &k, &err);
    if (rc != LY_OK)
        return ly__reply_error(r, &err);
    return ly__reply_json(r, 200, ly_apikey_to_json(&r->arena, &k));
}
