/* The ledger's routes: events (single, batch, simulated), balances,
 * activity, redemptions, adjustments, transfers and the expiry job. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "loyal/engine.h"
#include "loyal/json.h"
#include "loyal/timeutil.h"

int ly__reply_result(ly_req *r, int rc, ly_result *res, ly_error *err)
{
    if (rc != LY_OK)
        return ly__reply_error(r, err);
    free(r->resp);
    r->resp = res->body;
    r->resp_len = res->len;
    r->status = res->status;
    r->content_type = "application/json";
    if (res->replayed)
        r->replayed = 1;
    return 0;
}

static int member_param(ly_req *r, size_t i, int64_t *id)
{
    if (ly_member_id_parse(r->match.params[i], id) != LY_OK)
        return ly__fail(r, LY_ENOTFOUND, "not_found", NULL, "no member %.64s", r->match.params[i]);
    return LY_OK;
}

/* ?as_of= as milliseconds, now when absent. */
static int as_of_param(ly_req *r, int64_t *as_of)
{
    const char *s = ly__query(r, "as_of");
    *as_of = ly_time_now_ms();
    if (s && ly_time_parse(s, as_of) != LY_OK)
        return ly__fail(r, LY_EINVAL, "invalid_parameter", "as_of",
                        "as_of must be an RFC 3339 time such as 2026-11-22T10:00:00Z");
    return LY_OK;
}

/* ---- events ------------------------------------------------------------- */

static int post_event(ly_req *r, int simulate)
{
    json_t *body;
    if (ly__body(r, NULL, &body) != LY_OK)
        return LY_EINVAL;
    ly_conn *db = ly__db(r);
    int rc = LY_ESTORE;
    if (db) {
        ly_result res;
        ly_error err;
        ly_error_clear(&err);
        const char *text, *hash = ly__event_canonical(r, 0, body, &text);
        rc = hash ? ly_event_post(db, &r->arena, r->program_id, body, text, hash, simulate, &res,
                                  &err)
                  : ly_error_set(&err, LY_ENOMEM, NULL, NULL, "out of memory");
        rc = ly__reply_result(r, rc, &res, &err);
    }
    json_decref(body);
    return rc;
}

int ly__h_events_post(ly_req *r)
{
    return post_event(r, 0);
}

int ly__h_events_simulate(ly_req *r)
{
    return post_event(r, 1);
}

/* Event i of a batch, inside the batch's transaction; its answer is
 * appended to w. With `isolate`, the event runs in a savepoint of its own,
 * so a refusal undoes only it. Without, the caller has found a cheaper way:
 * LY_ERETRY when the event failed after writing something, and the batch
 * must run again isolated (*w is then unusable). */
static int batch_one(ly_req *r, ly_conn *db, size_t i, const json_t *ev, int isolate, ly_jw *w)
{
    ly_error err;
    ly_error_clear(&err);
    ly_result res = {0};
    int rc;
    int64_t before = ly_store_changes(db);
    if (!json_is_object(ev)) {
        rc = ly_error_set(&err, LY_EINVAL, "invalid_type", NULL, "each event must be an object");
    } else if (!isolate || (rc = ly_store_savepoint(db, &err)) == LY_OK) {
        const char *text, *hash = ly__event_canonical(r, i, ev, &text);
        rc = hash ? ly_event_post(db, &r->arena, r->program_id, ev, text, hash, 0, &res, &err)
                  : ly_error_set(&err, LY_ENOMEM, NULL, NULL, "out of memory");
        if (isolate && rc == LY_OK)
            rc = ly_store_savepoint_release(db, &err);
        else if (isolate)
            ly_store_savepoint_rollback(db);
        else if (rc != LY_OK && ly_store_changes(db) != before)
            return LY_ERETRY;
    }
    ly_jw_obj_begin(w);
    ly_jw_key(w, "status");
    if (rc == LY_OK) {
        ly_jw_int(w, res.status);
        ly_jw_key(w, "body");
        ly_jw_raw(w, res.body);
    } else {
        ly_jw_int(w, ly_error_http_status(rc));
        ly_jw_key(w, "body");
        ly_jw_obj_begin(w);
        ly_jw_key(w, "error");
        ly_jw_obj_begin(w);
        ly_jw_key(w, "code");
        ly_jw_str(w, err.code[0] ? err.code : ly_error_default_code(rc));
        ly_jw_key(w, "message");
        ly__jw_message(w, err.message);
        if (err.field[0]) {
            ly_jw_key(w, "field");
            ly__jw_message(w, err.field);
        }
        ly_jw_obj_end(w);
        ly_jw_obj_end(w);
    }
    ly_jw_obj_end(w);
    free(res.body);
    return LY_OK;
}

/* Runs every event, writing {"results": […]} to w. */
static int batch_all(ly_req *r, ly_conn *db, const json_t *events, int isolate, ly_jw *w)
{
    int rc = LY_OK;
    ly_jw_init(w);
    ly_jw_obj_begin(w);
    ly_jw_key(w, "results");
    ly_jw_arr_begin(w);
    for (size_t i = 0; rc == LY_OK && i < json_array_size(events); i++)
        rc = batch_one(r, db, i, json_array_get(events, i), isolate, w);
    ly_jw_arr_end(w);
    ly_jw_obj_end(w);
    if (rc != LY_OK)
        ly_jw_discard(w);
    return rc;
}

/* A savepoint per event makes the store journal the same pages again for
 * every event. Where the store counts changes (SQLite), the batch first runs
 * without them (in one savepoint, or in none when the writer runs it bare),
 * events refused before writing anything costing nothing to undo; only an
 * event refused after writing sends the batch round again, isolated. */
static int batch_run(ly_req *r, ly_conn *db, const json_t *events, ly_jw *w, ly_error *err)
{
    if (ly_store_changes(db) < 0)
        return batch_all(r, db, events, 1, w);
    /* Run by the SQLite writer without a savepoint, the batch takes none
     * either: a savepoint makes SQLite copy every page it changes. An event
     * refused after writing fails the request, and the writer runs it again
     * in a savepoint of its own, and then this one as below. */
    if (r->bare) {
        if (batch_all(r, db, events, 0, w) == LY_OK)
            return LY_OK;
        return ly_error_set(err, LY_ERETRY, NULL, NULL,
                            "an event of the batch was refused after writing");
    }
    int rc = ly_store_savepoint(db, err);
    if (rc != LY_OK)
        return rc;
    if (batch_all(r, db, events, 0, w) == LY_OK)
        return ly_store_savepoint_release(db, err);
    ly_store_savepoint_rollback(db);
    return batch_all(r, db, events, 1, w);
}

static const ly_json_field batch_fields[] = {
    {"events", LY_JSON_ARRAY, LY_FIELD_REQUIRED, 0},
    {NULL, 0, 0, 0},
};

int ly__h_events_batch(ly_req *r)
{
    json_t *body;
    if (ly__body(r, batch_fields, &body) != LY_OK)
        return LY_EINVAL;
    const json_t *events = json_object_get(body, "events");
    size_t n = json_array_size(events);
    if (n < 1 || n > LY_BATCH_MAX) {
        json_decref(body);
        return ly__fail(r, LY_EINVAL, "invalid_value", "events",
                        "a batch holds 1 to %d events, not %zu", LY_BATCH_MAX, n);
    }
    ly_conn *db = ly__db(r);
    if (!db) {
        json_decref(body);
        return LY_ESTORE;
    }
    /* One transaction for the batch: one commit for a thousand events. */
    ly_error err;
    ly_error_clear(&err);
    int own = !ly_store_in_transaction(db);
    int rc = own ? ly_store_begin_write(db, &err) : LY_OK;
    ly_jw w = {0};
    if (rc == LY_OK)
        rc = batch_run(r, db, events, &w, &err);
    if (rc == LY_OK && own && (rc = ly_store_commit(db, &err)) != LY_OK)
        ly_store_rollback(db);
    else if (rc != LY_OK && own)
        ly_store_rollback(db);
    json_decref(body);
    if (rc != LY_OK) {
        ly_jw_discard(&w);
        return ly__reply_error(r, &err);
    }
    return ly__reply_jw(r, 200, &w);
}

/* ---- balances and activity ------------------------------------------------- */

int ly__h_member_balance(ly_req *r)
{
    static const char *const allowed[] = {"as_of", NULL};
    int64_t id, as_of;
    if (member_param(r, 0, &id) != LY_OK)
        return LY_ENOTFOUND;
    if (ly__check_query(r, allowed) != LY_OK || as_of_param(r, &as_of) != LY_OK)
        return LY_EINVAL;
    ly_conn *db = ly__db(r);
    if (!db)
        return LY_ESTORE;
    ly_error err;
    ly_error_clear(&err);
    ly_member m;
    ly_balance b;
    int rc = ly_member_get(db, &r->arena, r->program_id, id, &m, &err);
    if (rc == LY_ENOTFOUND)
        return ly__fail(r, rc, "not_found", NULL, "no member %.64s", r->match.params[0]);
    if (rc == LY_OK)
        rc = ly_balance_get(db, &r->arena, r->program_id, id, as_of, &b, &err);
    if (rc != LY_OK)
        return ly__reply_error(r, &err);
    ly_jw w;
    ly_jw_init(&w);
    ly_balance_write(&b, &w);
    return ly__reply_jw(r, 200, &w);
}

int ly__h_member_activity(ly_req *r)
{
    static const char *const allowed[] = {"limit", "cursor", NULL};
    int64_t id, before = 0;
    int limit;
    const char *cursor;
    if (member_param(r, 0, &id) != LY_OK)
        return LY_ENOTFOUND;
    if (ly__check_query(r, allowed) != LY_OK || ly__page(r, &limit, &cursor) != LY_OK)
        return LY_EINVAL;
    if (cursor) {
        char *end;
        before = strncmp(cursor, "ent_", 4) == 0 ? strtoll(cursor + 4, &end, 10) : 0;
        if (before <= 0 || *end)
            return ly__fail(r, LY_EINVAL, "invalid_parameter", "cursor",
                            "cursor must be the next_cursor of a previous page");
    }
    ly_conn *db = ly__db(r);
    if (!db)
        return LY_ESTORE;
    ly_error err;
    ly_error_clear(&err);
    ly_result res;
    int rc = ly_activity_list(db, &r->arena, r->program_id, id, before, limit, &res, &err);
    return ly__reply_result(r, rc, &res, &err);
}

/* ---- spending ---------------------------------------------------------------- */

static const ly_json_field redeem_fields[] = {
    {"points", LY_JSON_INTEGER, 0, 0},
    {"credit", LY_JSON_INTEGER, 0, 0},
    {"reward_id", LY_JSON_STRING, 0, 128},
    {NULL, 0, 0, 0},
};

int ly__h_member_redeem(ly_req *r)
{
    int64_t id;
    json_t *body;
    if (member_param(r, 0, &id) != LY_OK)
        return LY_ENOTFOUND;
    if (ly__body(r, redeem_fields, &body) != LY_OK)
        return LY_EINVAL;
    const json_t *points = json_object_get(body, "points"),
                 *credit = json_object_get(body, "credit");
    int rc = LY_OK;
    if (json_object_get(body, "reward_id"))
        rc = ly__fail(r, LY_EREFUSED, "unknown_reward", "reward_id",
                      "there is no rewards catalog yet; redeem points or credit instead");
    else if (!points == !credit)
        rc = ly__fail(r, LY_EINVAL, points ? "invalid_value" : "missing_field",
                      points ? "credit" : "points", "a redemption gives either points or credit");
    ly_conn *db = rc == LY_OK ? ly__db(r) : NULL;
    if (db) {
        ly_result res;
        ly_error err;
        ly_error_clear(&err);
        rc = ly_redeem(db, &r->arena, r->program_id, id, points ? "points" : "credit",
                       json_integer_value(points ? points : credit), &res, &err);
        rc = ly__reply_result(r, rc, &res, &err);
    }
    json_decref(body);
    return rc;
}

int ly__h_redemption_cancel(ly_req *r)
{
    int64_t id, rid;
    char *end;
    if (member_param(r, 0, &id) != LY_OK)
        return LY_ENOTFOUND;
    const char *p = r->match.params[1];
    rid = strncmp(p, "red_", 4) == 0 ? strtoll(p + 4, &end, 10) : 0;
    if (rid <= 0 || *end)
        return ly__fail(r, LY_ENOTFOUND, "not_found", NULL, "no redemption %.64s", p);
    ly_conn *db = ly__db(r);
    if (!db)
        return LY_ESTORE;
    ly_result res;
    ly_error err;
    ly_error_clear(&err);
    int rc = ly_redeem_cancel(db, &r->arena, r->program_id, id, rid, &res, &err);
    return ly__reply_result(r, rc, &res, &err);
}

static const ly_json_field adjust_fields[] = {
    {"asset", LY_JSON_STRING, LY_FIELD_REQUIRED, 16},
    {"amount", LY_JSON_INTEGER, LY_FIELD_REQUIRED, 0},
    {"reason", LY_JSON_STRING, LY_FIELD_REQUIRED, 500},
    {NULL, 0, 0, 0},
};

int ly__h_member_adjust(ly_req *r)
{
    int64_t id;
    json_t *body;
    if (member_param(r, 0, &id) != LY_OK)
        return LY_ENOTFOUND;
    if (ly__body(r, adjust_fields, &body) != LY_OK)
        return LY_EINVAL;
    int rc = LY_ESTORE;
    ly_conn *db = ly__db(r);
    if (db) {
        ly_result res;
        ly_error err;
        ly_error_clear(&err);
        rc = ly_adjust(db, &r->arena, r->program_id, id, ly_json_str(body, "asset"),
                       json_integer_value(json_object_get(body, "amount")),
                       ly_json_str(body, "reason"), &res, &err);
        rc = ly__reply_result(r, rc, &res, &err);
    }
    json_decref(body);
    return rc;
}

static const ly_json_field transfer_fields[] = {
    {"from", LY_JSON_STRING, LY_FIELD_REQUIRED, 64},
    {"to", LY_JSON_STRING, LY_FIELD_REQUIRED, 64},
    {"points", LY_JSON_INTEGER, LY_FIELD_REQUIRED, 0},
    {"reason", LY_JSON_STRING, LY_FIELD_NULLABLE, 500},
    {NULL, 0, 0, 0},
};

int ly__h_transfers(ly_req *r)
{
    json_t *body;
    if (ly__body(r, transfer_fields, &body) != LY_OK)
        return LY_EINVAL;
    int64_t from, to;
    int rc = LY_OK;
    if (ly_member_id_parse(ly_json_str(body, "from"), &from) != LY_OK)
        rc = ly__fail(r, LY_ENOTFOUND, "not_found", "from", "no member %.64s",
                      ly_json_str(body, "from"));
    else if (ly_member_id_parse(ly_json_str(body, "to"), &to) != LY_OK)
        rc = ly__fail(r, LY_ENOTFOUND, "not_found", "to", "no member %.64s",
                      ly_json_str(body, "to"));
    ly_conn *db = rc == LY_OK ? ly__db(r) : NULL;
    if (db) {
        ly_result res;
        ly_error err;
        ly_error_clear(&err);
        rc = ly_transfer(db, &r->arena, r->program_id, from, to,
                         json_integer_value(json_object_get(body, "points")),
                         ly_json_str(body, "reason"), &res, &err);
        rc = ly__reply_result(r, rc, &res, &err);
    }
    json_decref(body);
    return rc;
}

/* ---- jobs ---------------------------------------------------------------------- */

/* A job as of ?as_of= (default now), answered with what it did. */
static int run_job(ly_req *r, int birthdays)
{
    static const char *const allowed[] = {"as_of", NULL};
    int64_t as_of;
    if (ly__check_query(r, allowed) != LY_OK || as_of_param(r, &as_of) != LY_OK)
        return LY_EINVAL;
    ly_conn *db = ly__db(r);
    if (!db)
        return LY_ESTORE;
    ly_error err;
    ly_error_clear(&err);
    ly_expire_stats ex;
    ly_birthday_stats bd;
    int rc = birthdays ? ly_birthdays_run(db, &r->arena, r->program_id, as_of, &bd, &err)
                       : ly_expire_run(db, &r->arena, r->program_id, as_of, &ex, &err);
    if (rc != LY_OK)
        return ly__reply_error(r, &err);
    static const char *const names[2][3] = {{"lots_expired", "points_expired", "members"},
                                            {"members", "points", "credit"}};
    int64_t values[2][3] = {{0}, {0}};
    if (birthdays) {
        values[1][0] = bd.members;
        values[1][1] = bd.points;
        values[1][2] = bd.credit;
    } else {
        values[0][0] = ex.lots;
        values[0][1] = ex.points;
        values[0][2] = ex.members;
    }
    ly_jw w;
    ly_jw_init(&w);
    ly_jw_obj_begin(&w);
    ly_jw_key(&w, "as_of");
    ly_jw_time(&w, as_of);
    for (int k = 0; k < 3; k++) {
        ly_jw_key(&w, names[birthdays][k]);
        ly_jw_int(&w, values[birthdays][k]);
    }
    ly_jw_obj_end(&w);
    return ly__reply_jw(r, 200, &w);
}

int ly__h_jobs_birthdays(ly_req *r)
{
    return run_job(r, 1);
}

int ly__h_jobs_expire(ly_req *r)
{
    return run_job(r, 0);
}
