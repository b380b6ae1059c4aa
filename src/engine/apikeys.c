/* API keys: issued with their secret shown once, checked on every request by
 * their public id and a constant-time comparison of hashes, revoked at once. */
#include "loyal/engine.h"

#include <stdio.h>
#include <string.h>

#include "engine/txn.h"
#include "loyal/json.h"
#include "loyal/timeutil.h"

struct key_ctx {
    ly_arena *a;
    int64_t program_id;
    const char *id;
    ly_key *out;
    ly_key **list;
    size_t *n;
};

static int do_insert(ly_conn *c, void *vctx, ly_error *err)
{
    struct key_ctx *k = vctx;
    return ly_store_key_insert(c, k->out, err);
}

int ly_apikey_create(ly_conn *c, ly_arena *a, int64_t program_id, const char *scope,
                     const char *name, char key_out[LY_KEY_MAX], ly_key *out, ly_error *err)
{
    if (!scope || !ly_key_scope_valid(scope))
        return ly_error_set(err, LY_EINVAL, "invalid_value", "scope",
                            "scope must be \"admin\", \"pos\", \"partner\" or \"read\"");
    if (name && (!*name || ly_utf8_chars(name, strlen(name)) > 100))
        return ly_error_set(err, LY_EINVAL, "invalid_value", "name",
                            "name must be 1 to 100 characters");
    char id[LY_KEY_ID_LEN + 1];
    if (ly_key_generate(scope, key_out, id) != LY_OK)
        return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "could not generate a key");
    memset(out, 0, sizeof *out);
    out->id = ly_arena_strdup(a, id);
    out->program_id = program_id;
    out->scope = ly_arena_strdup(a, scope);
    out->name = ly_arena_strdup(a, name);
    out->created_at = ly_time_now_ms();
    ly_key_hash(key_out, out->hash);
    if (!out->id || !out->scope || (name && !out->name))
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    struct key_ctx k = {.a = a, .out = out};
    return ly__txn_run(c, 1, do_insert, &k, err);
}

static int do_get(ly_conn *c, void *vctx, ly_error *err)
{
    struct key_ctx *k = vctx;
    return ly_store_key_get(c, k->a, k->id, k->out, err);
}

int ly_apikey_authenticate(ly_conn *c, ly_arena *a, const char *key, ly_key *out, ly_error *err)
{
    char scope[16], id[LY_KEY_ID_LEN + 1];
    if (ly_key_parse(key, scope, sizeof scope, id) != LY_OK)
        return ly_error_set(err, LY_EAUTH, "unauthorized", NULL,
                            "the API key is malformed; keys look like lk_<scope>_<44 characters>");
    struct key_ctx k = {.a = a, .id = id, .out = out};
    int rc = ly__txn_run(c, 0, do_get, &k, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, LY_EAUTH, "unauthorized", NULL, "the API key is not known");
    if (rc != LY_OK)
        return rc;
    unsigned char hash[LY_KEY_HASH_LEN];
    ly_key_hash(key, hash);
    if (!ly_key_hash_equal(hash, out->hash) || strcmp(scope, out->scope) != 0)
        return ly_error_set(err, LY_EAUTH, "unauthorized", NULL, "the API key is not known");
    if (out->revoked_at)
        return ly_error_set(err, LY_EAUTH, "unauthorized", NULL, "the API key has been revoked");
    return LY_OK;
}

static int do_revoke(ly_conn *c, void *vctx, ly_error *err)
{
    struct key_ctx *k = vctx;
    int rc = ly_store_key_revoke(c, k->program_id, k->id, ly_time_now_ms(), err);
    if (rc == LY_OK)
        rc = ly_store_key_get(c, k->a, k->id, k->out, err);
    return rc;
}

int ly_apikey_revoke(ly_conn *c, ly_arena *a, int64_t program_id, const char *id, ly_key *out,
                     ly_error *err)
{
    if (strncmp(id, "key_", 4) == 0)
        id += 4;
    struct key_ctx k = {.a = a, .program_id = program_id, .id = id, .out = out};
    int rc = ly__txn_run(c, 1, do_revoke, &k, err);
    if (rc == LY_ENOTFOUND)
        ly_error_set(err, rc, "not_found", NULL, "no key key_%.20s in this program", id);
    return rc;
}

static int do_list(ly_conn *c, void *vctx, ly_error *err)
{
    struct key_ctx *k = vctx;
    return ly_store_key_list(c, k->a, k->program_id, k->list, k->n, err);
}

int ly_apikey_list(ly_conn *c, ly_arena *a, int64_t program_id, ly_key **out, size_t *n,
                   ly_error *err)
{
    struct key_ctx k = {.a = a, .program_id = program_id, .list = out, .n = n};
    return ly__txn_run(c, 0, do_list, &k, err);
}

const char *ly_apikey_wire_id(ly_arena *a, const char *id)
{
    return ly_arena_printf(a, "key_%s", id);
}

json_t *ly_apikey_to_json(ly_arena *a, const ly_key *k)
{
    char created[LY_TIME_BUFSZ], revoked[LY_TIME_BUFSZ];
    ly_time_format(k->created_at, created);
    if (k->revoked_at)
        ly_time_format(k->revoked_at, revoked);
    const char *wid = ly_apikey_wire_id(a, k->id);
    return json_pack("{s:s, s:s, s:o, s:s, s:o}", "id", wid ? wid : "", "scope", k->scope, "name",
                     k->name ? json_string(k->name) : json_null(), "created_at", created,
                     "revoked_at", k->revoked_at ? json_string(revoked) : json_null());
}
