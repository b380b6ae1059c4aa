/* Program settings: the typed columns (name, currency, timezone, point value)
 * and a JSON document for the policies (earn rate, pending days, expiry,
 * return policy, phone country code). Every change is validated whole before
 * anything is written. */
#include "loyal/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/rules_int.h"
#include "engine/txn.h"
#include "loyal/json.h"
#include "loyal/normalize.h"
#include "loyal/timeutil.h"

static const char *default_settings =
    "{\"earn\":{\"points\":1,\"per_minor\":100,\"rounding\":\"down\"},"
    "\"pending_days\":0,\"expiry\":{\"policy\":\"none\"},"
    "\"on_return_spent\":\"negative\",\"phone_country_code\":\"1\"}";

static const ly_json_field program_fields[] = {
    {"name", LY_JSON_STRING, 0, 200},
    {"currency", LY_JSON_STRING, 0, 0},
    {"timezone", LY_JSON_STRING, 0, 0},
    {"point_value_minor", LY_JSON_INTEGER, 0, 0},
    {"earn", LY_JSON_OBJECT, 0, 0},
    {"pending_days", LY_JSON_INTEGER, 0, 0},
    {"expiry", LY_JSON_OBJECT, 0, 0},
    {"on_return_spent", LY_JSON_STRING, 0, 0},
    {"phone_country_code", LY_JSON_STRING, 0, 0},
    {NULL, 0, 0, 0},
};

static const ly_json_field earn_fields[] = {
    {"points", LY_JSON_INTEGER, LY_FIELD_REQUIRED, 0},
    {"per_minor", LY_JSON_INTEGER, LY_FIELD_REQUIRED, 0},
    {"rounding", LY_JSON_STRING, 0, 0},
    {NULL, 0, 0, 0},
};

static const ly_json_field expiry_fields[] = {
    {"policy", LY_JSON_STRING, LY_FIELD_REQUIRED, 0},
    {"days", LY_JSON_INTEGER, 0, 0},
    {"months", LY_JSON_INTEGER, 0, 0},
    {"month", LY_JSON_INTEGER, 0, 0},
    {"day", LY_JSON_INTEGER, 0, 0},
    {"end_of_month_after_months", LY_JSON_INTEGER, 0, 0},
    {NULL, 0, 0, 0},
};

static int one_of(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return 1;
    return 0;
}

static int int_in(const json_t *obj, const char *key, const char *field, json_int_t lo,
                  json_int_t hi, ly_error *err)
{
    json_int_t v = json_integer_value(json_object_get(obj, key));
    if (v < lo || v > hi)
        return ly_error_set(err, LY_EINVAL, "invalid_value", field,
                            "%s must be between %lld and %lld", field, (long long)lo,
                            (long long)hi);
    return LY_OK;
}

static int check_earn(const json_t *earn, ly_error *err)
{
    static const char *const roundings[] = {"down", "nearest", "up", NULL};
    int rc = ly_json_check(earn, earn_fields, "earn", err);
    if (rc == LY_OK)
        rc = int_in(earn, "points", "earn.points", 0, LY_AMOUNT_MAX, err);
    if (rc == LY_OK)
        rc = int_in(earn, "per_minor", "earn.per_minor", 1, LY_AMOUNT_MAX, err);
    const char *r = ly_json_str(earn, "rounding");
    if (rc == LY_OK && r && !one_of(r, roundings))
        rc = ly_error_set(err, LY_EINVAL, "invalid_value", "earn.rounding",
                          "earn.rounding must be \"down\", \"nearest\" or \"up\"");
    return rc;
}

/* Are the keys of obj, beyond "policy", all in allowed? */
static int only_keys(const json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (strcmp(key, "policy") != 0 && !one_of(key, allowed))
            return 0;
    }
    return 1;
}

static int check_expiry(const json_t *e, ly_error *err)
{
    static const char *const policies[] = {"none", "rolling", "fixed", "inactivity", NULL};
    int rc = ly_json_check(e, expiry_fields, "expiry", err);
    if (rc != LY_OK)
        return rc;
    const char *p = ly_json_str(e, "policy");
    if (!one_of(p, policies))
        return ly_error_set(err, LY_EINVAL, "invalid_value", "expiry.policy",
                            "expiry.policy must be \"none\", \"rolling\", \"fixed\" or "
                            "\"inactivity\"");
    int has_days = json_object_get(e, "days") != NULL;
    int has_months = json_object_get(e, "months") != NULL;
    int has_md = json_object_get(e, "month") || json_object_get(e, "day");
    int has_eom = json_object_get(e, "end_of_month_after_months") != NULL;
    static const char *const none_keys[] = {NULL};
    static const char *const rolling_keys[] = {"days", "months", NULL};
    static const char *const fixed_keys[] = {"month", "day", "end_of_month_after_months", NULL};
    static const char *const inactivity_keys[] = {"days", NULL};
    const char *const *allowed = strcmp(p, "none") == 0      ? none_keys
                                 : strcmp(p, "rolling") == 0 ? rolling_keys
                                 : strcmp(p, "fixed") == 0   ? fixed_keys
                                                             : inactivity_keys;
    if (!only_keys(e, allowed))
        return ly_error_set(err, LY_EINVAL, "invalid_value", "expiry",
                            "a \"%s\" expiry policy takes only %s", p,
                            strcmp(p, "none") == 0      ? "\"policy\""
                            : strcmp(p, "rolling") == 0 ? "\"days\" or \"months\""
                            : strcmp(p, "fixed") == 0   ? "\"month\" and \"day\", or "
                                                          "\"end_of_month_after_months\""
                                                        : "\"days\"");
    if (strcmp(p, "rolling") == 0) {
        if (has_days == has_months)
            return ly_error_set(err, LY_EINVAL, "invalid_value", "expiry",
                                "a rolling expiry takes exactly one of \"days\" or \"months\"");
        return has_days ? int_in(e, "days", "expiry.days", 1, 36500, err)
                        : int_in(e, "months", "expiry.months", 1, 1200, err);
    }
    if (strcmp(p, "inactivity") == 0) {
        if (!has_days)
            return ly_error_set(err, LY_EINVAL, "missing_field", "expiry.days",
                                "an inactivity expiry needs \"days\"");
        return int_in(e, "days", "expiry.days", 1, 36500, err);
    }
    if (strcmp(p, "fixed") == 0) {
        if (has_md == has_eom)
            return ly_error_set(err, LY_EINVAL, "invalid_value", "expiry",
                                "a fixed expiry takes \"month\" and \"day\", or "
                                "\"end_of_month_after_months\"");
        if (has_eom)
            return int_in(e, "end_of_month_after_months", "expiry.end_of_month_after_months", 0,
                          1200, err);
        if (!json_object_get(e, "month") || !json_object_get(e, "day"))
            return ly_error_set(err, LY_EINVAL, "missing_field",
                                json_object_get(e, "month") ? "expiry.day" : "expiry.month",
                                "a fixed expiry date needs both \"month\" and \"day\"");
        if ((rc = int_in(e, "month", "expiry.month", 1, 12, err)) != LY_OK)
            return rc;
        /* Every year must have the date, so 29 February is refused. */
        static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int m = (int)json_integer_value(json_object_get(e, "month"));
        return int_in(e, "day", "expiry.day", 1, mdays[m - 1], err);
    }
    return LY_OK;
}

static int check_changes(const json_t *ch, ly_error *err)
{
    static const char *const returns[] = {"negative", "clawback", NULL};
    char buf[8];
    int rc = ly_json_check(ch, program_fields, NULL, err);
    if (rc != LY_OK)
        return rc;
    const char *s;
    if ((s = ly_json_str(ch, "name")) && (!*s))
        return ly_error_set(err, LY_EINVAL, "invalid_value", "name", "name must not be empty");
    if ((s = ly_json_str(ch, "currency")) && ly_norm_currency(s, buf, sizeof buf) != LY_OK)
        return ly_error_set(err, LY_EINVAL, "invalid_currency", "currency",
                            "currency must be an ISO 4217 code such as \"USD\"");
    if ((s = ly_json_str(ch, "timezone")) && ly_valid_timezone(s) != LY_OK)
        return ly_error_set(err, LY_EINVAL, "invalid_timezone", "timezone",
                            "\"%s\" is not a known IANA time zone", s);
    if (json_object_get(ch, "point_value_minor") &&
        (rc = int_in(ch, "point_value_minor", "point_value_minor", 1, 1000000000, err)) != LY_OK)
        return rc;
    if (json_object_get(ch, "pending_days") &&
        (rc = int_in(ch, "pending_days", "pending_days", 0, 3650, err)) != LY_OK)
        return rc;
    if ((s = ly_json_str(ch, "on_return_spent")) && !one_of(s, returns))
        return ly_error_set(err, LY_EINVAL, "invalid_value", "on_return_spent",
                            "on_return_spent must be \"negative\" or \"clawback\"");
    if ((s = ly_json_str(ch, "phone_country_code"))) {
        size_t n = strlen(s);
        if (n < 1 || n > 3 || s[0] == '0' || strspn(s, "0123456789") != n)
            return ly_error_set(err, LY_EINVAL, "invalid_value", "phone_country_code",
                                "phone_country_code must be 1 to 3 digits, e.g. \"1\" or \"44\"");
    }
    const json_t *o;
    if ((o = json_object_get(ch, "earn")) && (rc = check_earn(o, err)) != LY_OK)
        return rc;
    if ((o = json_object_get(ch, "expiry")) && (rc = check_expiry(o, err)) != LY_OK)
        return rc;
    return LY_OK;
}

/* The stored settings merged over the defaults; a new reference. */
static json_t *settings_full(const char *stored)
{
    json_t *full = json_loads(default_settings, 0, NULL);
    json_t *s = stored ? json_loads(stored, 0, NULL) : NULL;
    if (full && json_is_object(s))
        json_object_update(full, s);
    json_decref(s);
    return full;
}

static int fill_settings(ly_arena *a, ly_program *p, ly_error *err)
{
    json_t *full = settings_full(p->settings);
    char *text = full ? json_dumps(full, JSON_COMPACT) : NULL;
    json_decref(full);
    p->settings = text ? ly_arena_strdup(a, text) : NULL;
    free(text);
    if (!p->settings)
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    return LY_OK;
}

struct get_ctx {
    ly_arena *a;
    int64_t program_id;
    ly_program *out;
};

static int do_get(ly_conn *c, void *vctx, ly_error *err)
{
    struct get_ctx *g = vctx;
    return ly_store_program_get(c, g->a, g->program_id, g->out, err);
}

int ly_program_get(ly_conn *c, ly_arena *a, int64_t program_id, ly_program *out, ly_error *err)
{
    struct get_ctx g = {a, program_id, out};
    int rc = ly__txn_run(c, 0, do_get, &g, err);
    return rc == LY_OK ? fill_settings(a, out, err) : rc;
}

struct update_ctx {
    ly_arena *a;
    int64_t program_id;
    const json_t *changes;
    ly_program *out;
};

static int do_update(ly_conn *c, void *vctx, ly_error *err)
{
    struct update_ctx *u = vctx;
    ly_program *p = u->out;
    int rc = ly_store_program_get(c, u->a, u->program_id, p, err);
    if (rc != LY_OK)
        return rc;
    const json_t *ch = u->changes;
    char cur[8];
    const char *s;
    if ((s = ly_json_str(ch, "name")))
        p->name = s;
    if ((s = ly_json_str(ch, "currency")) && ly_norm_currency(s, cur, sizeof cur) == LY_OK)
        p->currency = ly_arena_strdup(u->a, cur);
    if ((s = ly_json_str(ch, "timezone")))
        p->timezone = s;
    if (json_object_get(ch, "point_value_minor"))
        p->point_value_minor = json_integer_value(json_object_get(ch, "point_value_minor"));

    static const char *const setting_keys[] = {
        "earn", "pending_days", "expiry", "on_return_spent", "phone_country_code", NULL};
    json_t *settings = settings_full(p->settings);
    if (!settings)
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    for (const char *const *k = setting_keys; *k; k++) {
        json_t *v = json_object_get(ch, *k);
        if (v)
            json_object_set(settings, *k, v);
    }
    json_t *earn = json_object_get(settings, "earn");
    if (!json_object_get(earn, "rounding"))
        json_object_set_new(earn, "rounding", json_string("down"));
    char *text = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(settings);
    p->settings = text ? ly_arena_strdup(u->a, text) : NULL;
    free(text);
    if (!p->settings || !p->currency)
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    /* Strictly increasing: the version by which interpreted settings are cached. */
    int64_t now = ly_time_now_ms();
    p->updated_at = now > p->updated_at ? now : p->updated_at + 1;
    return ly_store_program_put(c, p, err);
}

int ly_program_update(ly_conn *c, ly_arena *a, int64_t program_id, const json_t *changes,
                      ly_program *out, ly_error *err)
{
    int rc = check_changes(changes, err);
    if (rc != LY_OK)
        return rc;
    struct update_ctx u = {a, program_id, changes, out};
    rc = ly__txn_run(c, 1, do_update, &u, err);
    return rc == LY_OK ? fill_settings(a, out, err) : rc;
}

int ly__program_touch(ly_conn *c, ly_arena *a, int64_t program_id, ly_error *err)
{
    ly_program p;
    int rc = ly_store_program_get(c, a, program_id, &p, err);
    if (rc != LY_OK)
        return rc;
    int64_t now = ly_time_now_ms();
    p.updated_at = now > p.updated_at ? now : p.updated_at + 1;
    return ly_store_program_put(c, &p, err);
}

json_t *ly_program_to_json(const ly_program *p)
{
    char created[LY_TIME_BUFSZ], updated[LY_TIME_BUFSZ];
    ly_time_format(p->created_at, created);
    ly_time_format(p->updated_at, updated);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:I}", "name", p->name, "currency", p->currency, "timezone",
                  p->timezone, "point_value_minor", (json_int_t)p->point_value_minor);
    json_t *s = settings_full(p->settings);
    if (!o || !s) {
        json_decref(o);
        json_decref(s);
        return NULL;
    }
    json_object_update(o, s);
    json_decref(s);
    json_object_set_new(o, "created_at", json_string(created));
    json_object_set_new(o, "updated_at", json_string(updated));
    return o;
}
