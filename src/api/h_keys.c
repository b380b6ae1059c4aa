/* /v1/keys: create (the secret is in this one answer only), list, revoke. */
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

int ly__h_keys_list(ly_req *r)
{
    static const char *const allowed[] = {NULL};
    if (ly__check_query(r, allowed) != LY_OK)
        return LY_EINVAL;
    ly_conn *db = ly__db(r);
    if (!db)
        return LY_ESTORE;
    ly_key *keys;
    size_t n;
    ly_error err;
    ly_error_clear(&err);
    int rc = ly_apikey_list(db, &r->arena, r->program_id, &keys, &n, &err);
    if (rc != LY_OK)
        return ly__reply_error(r, &err);
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, ly_apikey_to_json(&r->arena, &keys[i]));
    return ly__reply_json(r, 200, json_pack("{s:o, s:n}", "data", data, "next_cursor"));
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
