/* The points ledger's operations besides events: balances, redemptions and
 * their cancellation, adjustments, transfers, activity, expiry and the
 * invariant check. Every change is a balanced journal entry; lots follow the
 * member's balance so that their remaining always sums to max(balance, 0). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ledger_int.h"
#include "engine/txn.h"
#include "loyal/timeutil.h"

#define EXPIRING_MAX 20
#define EXPIRE_BATCH 500

/* ---- settings and members ------------------------------------------------ */

static int expiry_from_settings(const json_t *e, ly_expiry *out)
{
    const char *policy = json_string_value(json_object_get(e, "policy"));
    json_int_t days = json_integer_value(json_object_get(e, "days"));
    json_int_t months = json_integer_value(json_object_get(e, "months"));
    memset(out, 0, sizeof *out);
    out->kind = LY_EXPIRY_NONE;
    if (!policy || strcmp(policy, "none") == 0)
        return LY_OK;
    if (strcmp(policy, "rolling") == 0) {
        out->kind =
            json_object_get(e, "months") ? LY_EXPIRY_ROLLING_MONTHS : LY_EXPIRY_ROLLING_DAYS;
        out->n = (int)(json_object_get(e, "months") ? months : days);
    } else if (strcmp(policy, "fixed") == 0) {
        if (json_object_get(e, "end_of_month_after_months")) {
            out->kind = LY_EXPIRY_END_OF_MONTH;
            out->n = (int)json_integer_value(json_object_get(e, "end_of_month_after_months"));
        } else {
            out->kind = LY_EXPIRY_FIXED_DATE;
            out->month = (int)json_integer_value(json_object_get(e, "month"));
            out->day = (int)json_integer_value(json_object_get(e, "day"));
        }
    } else if (strcmp(policy, "inactivity") == 0) {
        out->kind = LY_EXPIRY_INACTIVITY;
        out->n = (int)days;
    }
    return LY_OK;
}

/* Interpreted settings, by program and version (updated_at): every purchase
 * needs them, and reading the row is much cheaper than parsing its JSON.
 * Entries are copied out under the lock, so one may be replaced at once. */
#define PROG_CACHE 8
static pthread_mutex_t prog_mu = PTHREAD_MUTEX_INITIALIZER;
static struct prog_cached {
    int used;
    ly__prog prog;
    ly_arena arena; /* the strings of prog */
} prog_cache[PROG_CACHE];
static unsigned prog_next;

static int prog_copy(ly_arena *a, const ly__prog *from, ly__prog *to)
{
    *to = *from;
    to->p.name = ly_arena_strdup(a, from->p.name);
    to->p.currency = ly_arena_strdup(a, from->p.currency);
    to->p.timezone = ly_arena_strdup(a, from->p.timezone);
    to->p.settings = ly_arena_strdup(a, from->p.settings);
    return to->p.name && to->p.currency && to->p.timezone && to->p.settings ? LY_OK : LY_ENOMEM;
}

static int prog_cached_get(ly_arena *a, const ly_program *row, ly__prog *out)
{
    int rc = LY_ENOTFOUND;
    pthread_mutex_lock(&prog_mu);
    for (int i = 0; i < PROG_CACHE; i++) {
        struct prog_cached *e = &prog_cache[i];
        if (e->used && e->prog.p.id == row->id && e->prog.p.updated_at == row->updated_at) {
            rc = prog_copy(a, &e->prog, out);
            break;
        }
    }
    pthread_mutex_unlock(&prog_mu);
    return rc;
}

static void prog_cache_put(const ly__prog *prog)
{
    pthread_mutex_lock(&prog_mu);
    struct prog_cached *e = &prog_cache[prog_next++ % PROG_CACHE];
    if (e->used)
        ly_arena_release(&e->arena);
    ly_arena_init(&e->arena, 1024);
    e->used = prog_copy(&e->arena, prog, &e->prog) == LY_OK;
    pthread_mutex_unlock(&prog_mu);
}

static int prog_parse(ly_conn *c, ly_arena *a, int64_t program_id, ly__prog *out, ly_error *err);

int ly__prog_load(ly_conn *c, ly_arena *a, int64_t program_id, ly__prog *out, ly_error *err)
{
    ly_program row;
    int rc = ly_store_program_get(c, a, program_id, &row, err);
    if (rc != LY_OK)
        return rc;
    if (prog_cached_get(a, &row, out) == LY_OK)
        return LY_OK;
    if ((rc = prog_parse(c, a, program_id, out, err)) == LY_OK)
        prog_cache_put(out);
    return rc;
}

static int prog_parse(ly_conn *c, ly_arena *a, int64_t program_id, ly__prog *out, ly_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = ly_program_get(c, a, program_id, &out->p, err);
    if (rc != LY_OK)
        return rc;
    json_t *s = json_loads(out->p.settings, 0, NULL);
    if (!s)
        return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "the program's settings are unreadable");
    json_t *earn = json_object_get(s, "earn");
    out->earn_points = json_integer_value(json_object_get(earn, "points"));
    out->earn_per_minor = json_integer_value(json_object_get(earn, "per_minor"));
    if (out->earn_per_minor < 1)
        out->earn_per_minor = 1;
    const char *r = json_string_value(json_object_get(earn, "rounding"));
    if (!r || ly_rounding_parse(r, &out->rounding) != LY_OK)
        out->rounding = LY_ROUND_DOWN;
    out->pending_ms = json_integer_value(json_object_get(s, "pending_days")) * 86400000;
    expiry_from_settings(json_object_get(s, "expiry"), &out->expiry);
    const char *ret = json_string_value(json_object_get(s, "on_return_spent"));
    out->clawback = ret && strcmp(ret, "clawback") == 0;
    json_decref(s);
    if (ly_tz_get(out->p.timezone, &out->tz) != LY_OK && ly_tz_get("UTC", &out->tz) != LY_OK)
        return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "no time zone data");
    return LY_OK;
}

int ly__member_ready(ly_conn *c, int64_t program_id, int64_t member_id, ly_error *err)
{
    int active = 0;
    int rc = ly_store_member_lock(c, program_id, member_id, &active, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, "not_found", NULL, "no member mem_%lld", (long long)member_id);
    if (rc != LY_OK)
        return rc;
    if (!active)
        return ly_error_set(err, LY_EREFUSED, "member_suspended", NULL,
                            "member mem_%lld is not active: it can neither earn nor spend",
                            (long long)member_id);
    return LY_OK;
}

int ly__asset_valid(const char *asset)
{
    return asset && (strcmp(asset, "points") == 0 || strcmp(asset, "credit") == 0);
}

/* ---- entries and lots ---------------------------------------------------- */

int ly__post(ly_conn *c, ly_entry *e, int64_t member_id, const char *asset, const char *other,
             int64_t amount, ly_error *err)
{
    ly_posting p[2] = {
        {member_id, "member", asset, amount},
        {0, other, asset, -amount},
    };
    return ly_store_entry_insert(c, e, p, 2, err);
}

int ly__lot_new(ly_conn *c, const ly_entry *e, int64_t member_id, const char *asset, int64_t amount,
                int64_t available_at, int64_t expires_at, ly_lot *out, ly_error *err)
{
    memset(out, 0, sizeof *out);
    out->program_id = e->program_id;
    out->member_id = member_id;
    out->asset = asset;
    out->entry_id = e->id;
    out->amount = out->remaining = amount;
    out->available_at = available_at;
    out->expires_at = expires_at;
    out->created_at = e->created_at;
    return ly_store_lot_insert(c, out, err);
}

static ly_lot_state *lot_states(ly_arena *a, const ly_lot *lots, size_t n)
{
    ly_lot_state *st = ly_arena_alloc(a, (n ? n : 1) * sizeof *st);
    for (size_t i = 0; st && i < n; i++) {
        st[i].remaining = lots[i].remaining;
        st[i].available_at = lots[i].available_at;
        st[i].expires_at = lots[i].expires_at;
    }
    return st;
}

int ly__spend_plan(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                   const char *asset, int64_t amount, const char *field, int64_t as_of,
                   ly_lot **lots, int64_t **take, size_t *n, ly_error *err)
{
    int rc = ly_store_lots_open(c, a, program_id, member_id, asset, lots, n, err);
    if (rc != LY_OK)
        return rc;
    ly_lot_state *st = lot_states(a, *lots, *n);
    *take = ly_arena_alloc(a, (*n ? *n : 1) * sizeof **take);
    if (!st || !*take)
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    int64_t got = 0;
    ly_lots_plan(st, *n, as_of, amount, *take, &got);
    if (got < amount) {
        int points = strcmp(asset, "points") == 0;
        return ly_error_set(err, LY_EREFUSED,
                            points ? "insufficient_points" : "insufficient_credit", field,
                            "member mem_%lld has %lld %s available, %lld asked",
                            (long long)member_id, (long long)ly_lots_available(st, *n, as_of),
                            points ? "points" : "credit", (long long)amount);
    }
    return LY_OK;
}

int ly__spend_apply(ly_conn *c, int64_t program_id, int64_t entry_id, const ly_lot *lots,
                    const int64_t *take, size_t n, ly_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!take[i])
            continue;
        ly_consumption k = {entry_id, lots[i].id, take[i]};
        int rc = ly_store_consumption_insert(c, program_id, &k, err);
        if (rc != LY_OK)
            return rc;
    }
    return LY_OK;
}

int ly__settle(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id, const char *asset,
               int64_t entry_id, ly_error *err)
{
    int64_t balance;
    ly_lot *lots;
    size_t n;
    int rc = ly_store_account_balance(c, program_id, member_id, "member", asset, &balance, err);
    if (rc == LY_OK)
        rc = ly_store_lots_open(c, a, program_id, member_id, asset, &lots, &n, err);
    if (rc != LY_OK)
        return rc;
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += lots[i].remaining; /* bounded by the balance, which fits */
    int64_t excess = sum - (balance > 0 ? balance : 0);
    if (excess < 0)
        return ly_error_set(err, LY_EINTERNAL, "ledger_inconsistent", NULL,
                            "member mem_%lld holds %lld %s in lots for a balance of %lld",
                            (long long)member_id, (long long)sum, asset, (long long)balance);
    for (size_t i = 0; i < n && excess > 0; i++) {
        int64_t t = lots[i].remaining < excess ? lots[i].remaining : excess;
        ly_consumption k = {entry_id, lots[i].id, t};
        if ((rc = ly_store_consumption_insert(c, program_id, &k, err)) != LY_OK)
            return rc;
        excess -= t;
    }
    return LY_OK;
}

/* ---- balances ------------------------------------------------------------ */

struct balance_ctx {
    ly_arena *a;
    int64_t program_id, member_id, as_of;
    ly_balance *out;
};

/* An asset's balance, available and pending amounts from its account and
 * lots: lots past their date are gone as of then, whether or not the expiry
 * job has run. */
static void asset_balance(const ly_asset_balance *ab, int64_t *balance, int64_t *available,
                          int64_t *pending)
{
    *available = (ab->balance > 0 ? ab->balance : 0) - ab->lots.pending - ab->lots.expired;
    if (pending)
        *pending = ab->lots.pending;
    *balance = ab->balance - ab->lots.expired;
}

static int do_balance(ly_conn *c, void *vctx, ly_error *err)
{
    struct balance_ctx *b = vctx;
    ly_balance *out = b->out;
    ly_asset_balance ab[2];
    memset(out, 0, sizeof *out);
    out->member_id = b->member_id;
    out->as_of = b->as_of;
    int rc = ly_store_member_balances(c, b->a, b->program_id, b->member_id, b->as_of, EXPIRING_MAX,
                                      ab, err);
    if (rc != LY_OK)
        return rc;
    asset_balance(&ab[0], &out->points_balance, &out->points_available, &out->points_pending);
    asset_balance(&ab[1], &out->credit_balance, &out->credit_available, NULL);
    const ly_lot_summary *lots = &ab[0].lots;
    out->nexpiring = lots->ngroups < EXPIRING_MAX ? lots->ngroups : EXPIRING_MAX;
    out->expiring = ly_arena_calloc(b->a, EXPIRING_MAX * sizeof *out->expiring);
    if (!out->expiring)
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    for (size_t i = 0; i < out->nexpiring; i++) {
        out->expiring[i].points = lots->groups[i].amount;
        out->expiring[i].expires_at = lots->groups[i].expires_at;
    }
    return LY_OK;
}

int ly_balance_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id, int64_t as_of,
                   ly_balance *out, ly_error *err)
{
    struct balance_ctx b = {a, program_id, member_id, as_of, out};
    return ly__txn_run(c, 0, do_balance, &b, err);
}

/* The "points" and "credit" members of a balance object. */
static void write_asset_members(const ly_balance *b, ly_jw *w)
{
    ly_jw_key(w, "points");
    ly_jw_obj_begin(w);
    ly_jw_key(w, "balance");
    ly_jw_int(w, b->points_balance);
    ly_jw_key(w, "available");
    ly_jw_int(w, b->points_available);
    ly_jw_key(w, "pending");
    ly_jw_int(w, b->points_pending);
    ly_jw_key(w, "expiring");
    ly_jw_arr_begin(w);
    for (size_t i = 0; i < b->nexpiring; i++) {
        ly_jw_obj_begin(w);
        ly_jw_key(w, "points");
        ly_jw_int(w, b->expiring[i].points);
        ly_jw_key(w, "expires_at");
        ly_jw_time(w, b->expiring[i].expires_at);
        ly_jw_obj_end(w);
    }
    ly_jw_arr_end(w);
    ly_jw_obj_end(w);
    ly_jw_key(w, "credit");
    ly_jw_obj_begin(w);
    ly_jw_key(w, "balance");
    ly_jw_int(w, b->credit_balance);
    ly_jw_key(w, "available");
    ly_jw_int(w, b->credit_available);
    ly_jw_obj_end(w);
}

/* The balance object inside answers: points and credit only. */
void ly__balance_write_assets(const ly_balance *b, ly_jw *w)
{
    ly_jw_obj_begin(w);
    write_asset_members(b, w);
    ly_jw_obj_end(w);
}

void ly_balance_write(const ly_balance *b, ly_jw *w)
{
    ly_jw_obj_begin(w);
    ly_jw_key(w, "member_id");
    ly_jw_id(w, "mem_", b->member_id);
    ly_jw_key(w, "as_of");
    ly_jw_time(w, b->as_of);
    write_asset_members(b, w);
    ly_jw_obj_end(w);
}

/* The member's balance now, written under "balance". */
static int write_balance_now(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                             ly_jw *w, ly_error *err)
{
    ly_balance b;
    struct balance_ctx ctx = {a, program_id, member_id, ly_time_now_ms(), &b};
    int rc = do_balance(c, &ctx, err);
    if (rc == LY_OK)
        ly__balance_write_assets(&b, w);
    return rc;
}

static int finish(ly_jw *w, int status, ly_result *out, ly_error *err)
{
    out->status = status;
    out->replayed = 0;
    out->body = ly_jw_finish(w, &out->len);
    return out->body ? LY_OK : ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
}

/* The opening most ledger answers share: {"<key>": "<prefix><id>",
 * "member_id": …, "asset": …, "amount": … (left open for the rest). */
static void write_movement(ly_jw *w, const char *key, const char *prefix, int64_t id,
                           int64_t member_id, const char *asset, int64_t amount)
{
    ly_jw_obj_begin(w);
    ly_jw_key(w, key);
    ly_jw_id(w, prefix, id);
    ly_jw_key(w, "member_id");
    ly_jw_id(w, "mem_", member_id);
    ly_jw_key(w, "asset");
    ly_jw_str(w, asset);
    ly_jw_key(w, "amount");
    ly_jw_int(w, amount);
}

/* ---- redemptions ----------------------------------------------------------- */

struct spend_ctx {
    ly_arena *a;
    int64_t program_id, member_id, other_id, id;
    const char *asset, *reason;
    int64_t amount;
    ly_result *out;
};

static int do_redeem(ly_conn *c, void *vctx, ly_error *err)
{
    struct spend_ctx *s = vctx;
    ly__prog prog;
    ly_lot *lots;
    int64_t *take;
    size_t n;
    int64_t now = ly_time_now_ms();
    int rc = ly__prog_load(c, s->a, s->program_id, &prog, err);
    if (rc == LY_OK)
        rc = ly__member_ready(c, s->program_id, s->member_id, err);
    if (rc == LY_OK)
        rc = ly__spend_plan(c, s->a, s->program_id, s->member_id, s->asset, s->amount, s->asset,
                            now, &lots, &take, &n, err);
    if (rc != LY_OK)
        return rc;
    ly_entry e = {.program_id = s->program_id,
                  .member_id = s->member_id,
                  .kind = "redeem",
                  .effective_at = now,
                  .created_at = now};
    ly_redemption red = {.program_id = s->program_id,
                         .member_id = s->member_id,
                         .asset = s->asset,
                         .amount = s->amount,
                         .status = "active",
                         .created_at = now};
    if ((rc = ly__post(c, &e, s->member_id, s->asset, "redeemed", -s->amount, err)) != LY_OK ||
        (rc = ly__spend_apply(c, s->program_id, e.id, lots, take, n, err)) != LY_OK)
        return rc;
    red.entry_id = e.id;
    if ((rc = ly_store_redemption_insert(c, &red, err)) != LY_OK ||
        (rc = ly_store_member_touch(c, s->program_id, s->member_id, now, err)) != LY_OK)
        return rc;
    int64_t value = s->amount;
    if (strcmp(s->asset, "points") == 0 && ly_mul64(s->amount, prog.p.point_value_minor, &value))
        return ly_error_set(err, LY_EREFUSED, "amount_overflow", "points",
                            "the value of %lld points does not fit in 64 bits",
                            (long long)s->amount);
    ly_jw w;
    ly_jw_init(&w);
    write_movement(&w, "id", "red_", red.id, s->member_id, s->asset, s->amount);
    ly_jw_key(&w, "value_minor");
    ly_jw_int(&w, value);
    ly_jw_key(&w, "currency");
    ly_jw_str(&w, prog.p.currency);
    ly_jw_key(&w, "status");
    ly_jw_str(&w, "active");
    ly_jw_key(&w, "balance");
    if ((rc = write_balance_now(c, s->a, s->program_id, s->member_id, &w, err)) != LY_OK) {
        ly_jw_discard(&w);
        return rc;
    }
    ly_jw_key(&w, "created_at");
    ly_jw_time(&w, now);
    ly_jw_obj_end(&w);
    return finish(&w, 201, s->out, err);
}

static int check_amount(const char *field, int64_t amount, ly_error *err)
{
    if (amount <= 0)
        return ly_error_set(err, LY_EINVAL, "invalid_value", field, "%s must be at least 1", field);
    if (amount > LY_AMOUNT_MAX)
        return ly_error_set(err, LY_EINVAL, "amount_too_large", field,
                            "%s must be at most 2^53 (9007199254740992)", field);
    return LY_OK;
}

int ly_redeem(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id, const char *asset,
              int64_t amount, ly_result *out, ly_error *err)
{
    int rc = check_amount(asset, amount, err);
    struct spend_ctx s = {.a = a,
                          .program_id = program_id,
                          .member_id = member_id,
                          .asset = asset,
                          .amount = amount,
                          .out = out};
    return rc == LY_OK ? ly__txn_run(c, 1, do_redeem, &s, err) : rc;
}

/* Points given back by a cancelled redemption to lots of a returned
 * purchase, which the return forgave (on_return_spent "clawback": the
 * member had spent them, so the return could not take them), are taken by
 * that return now: one more "return" entry, and the lots' forgiven
 * lowered. *reclaimed receives how many. */
static int reclaim_forgiven(ly_conn *c, struct spend_ctx *s, const ly_redemption *red,
                            const ly_consumption *ks, size_t n, int64_t *reclaimed, ly_error *err)
{
    *reclaimed = 0;
    if (strcmp(red->asset, "points") != 0)
        return LY_OK;
    int64_t *take = ly_arena_alloc(s->a, (n ? n : 1) * sizeof *take), total = 0;
    if (!take)
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int64_t f = 0;
        int rc = ks[i].amount > 0 ? ly_store_lot_forgiven(c, s->program_id, ks[i].lot_id, &f, err)
                                  : LY_OK;
        if (rc != LY_OK)
            return rc;
        /* A spend consumes each lot once: its consumptions name distinct lots. */
        take[i] = f < ks[i].amount ? f : ks[i].amount;
        total += take[i];
    }
    if (total == 0)
        return LY_OK;
    int64_t now = ly_time_now_ms();
    ly_entry e = {.program_id = s->program_id,
                  .member_id = s->member_id,
                  .kind = "return",
                  .ref_entry_id = red->entry_id,
                  .memo = "points a return forgave, taken when the redemption that spent them "
                          "was cancelled",
                  .effective_at = now,
                  .created_at = now};
    int rc = ly__post(c, &e, s->member_id, "points", "returned", -total, err);
    for (size_t i = 0; rc == LY_OK && i < n; i++) {
        if (!take[i])
            continue;
        ly_consumption k = {e.id, ks[i].lot_id, take[i]};
        if ((rc = ly_store_consumption_insert(c, s->program_id, &k, err)) == LY_OK)
            rc = ly_store_lot_forgive(c, s->program_id, ks[i].lot_id, -take[i], err);
    }
    if (rc == LY_OK)
        *reclaimed = total;
    return rc;
}

static int do_cancel(ly_conn *c, void *vctx, ly_error *err)
{
    struct spend_ctx *s = vctx;
    ly_redemption red;
    ly_member m;
    ly_consumption *ks;
    size_t n;
    int64_t now = ly_time_now_ms();
    int rc = ly_store_member_lock(c, s->program_id, s->member_id, NULL, err);
    if (rc == LY_OK)
        rc = ly_store_member_get(c, s->a, s->program_id, s->member_id, &m, err);
    if (rc == LY_OK)
        rc = ly_store_redemption_get(c, s->a, s->program_id, s->id, &red, err);
    if (rc == LY_ENOTFOUND || (rc == LY_OK && red.member_id != s->member_id))
        return ly_error_set(err, LY_ENOTFOUND, "not_found", NULL,
                            "member mem_%lld has no redemption red_%lld", (long long)s->member_id,
                            (long long)s->id);
    if (rc != LY_OK)
        return rc;
    if (strcmp(red.status, "cancelled") == 0)
        return ly_error_set(err, LY_EREFUSED, "already_cancelled", NULL,
                            "redemption red_%lld was already cancelled", (long long)s->id);
    if ((rc = ly_store_consumptions_of_entry(c, s->a, s->program_id, red.entry_id, &ks, &n, err)) !=
        LY_OK)
        return rc;
    ly_entry e = {.program_id = s->program_id,
                  .member_id = s->member_id,
                  .kind = "redeem_cancel",
                  .ref_entry_id = red.entry_id,
                  .effective_at = now,
                  .created_at = now};
    if ((rc = ly__post(c, &e, s->member_id, red.asset, "redeemed", red.amount, err)) != LY_OK)
        return rc;
    /* The exact lots, given back; then any negative balance is paid first. */
    for (size_t i = 0; i < n; i++) {
        ly_consumption back = {e.id, ks[i].lot_id, -ks[i].amount};
        if ((rc = ly_store_consumption_insert(c, s->program_id, &back, err)) != LY_OK)
            return rc;
    }
    int64_t reclaimed = 0;
    if ((rc = reclaim_forgiven(c, s, &red, ks, n, &reclaimed, err)) != LY_OK)
        return rc;
    if ((rc = ly__settle(c, s->a, s->program_id, s->member_id, red.asset, e.id, err)) != LY_OK)
        return rc;
    red.status = "cancelled";
    red.cancel_entry_id = e.id;
    red.cancelled_at = now;
    if ((rc = ly_store_redemption_cancel(c, &red, err)) != LY_OK)
        return rc;
    ly_jw w;
    ly_jw_init(&w);
    write_movement(&w, "id", "red_", red.id, s->member_id, red.asset, red.amount);
    ly_jw_key(&w, "status");
    ly_jw_str(&w, "cancelled");
    ly_jw_key(&w, "points_reclaimed");
    ly_jw_int(&w, reclaimed);
    ly_jw_key(&w, "balance");
    if ((rc = write_balance_now(c, s->a, s->program_id, s->member_id, &w, err)) != LY_OK) {
        ly_jw_discard(&w);
        return rc;
    }
    ly_jw_key(&w, "created_at");
    ly_jw_time(&w, red.created_at);
    ly_jw_key(&w, "cancelled_at");
    ly_jw_time(&w, now);
    ly_jw_obj_end(&w);
    return finish(&w, 200, s->out, err);
}

int ly_redeem_cancel(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                     int64_t redemption_id, ly_result *out, ly_error *err)
{
    struct spend_ctx s = {
        .a = a, .program_id = program_id, .member_id = member_id, .id = redemption_id, .out = out};
    return ly__txn_run(c, 1, do_cancel, &s, err);
}

/* ---- adjustments and transfers -------------------------------------------- */

static int do_adjust(ly_conn *c, void *vctx, ly_error *err)
{
    struct spend_ctx *s = vctx;
    ly__prog prog;
    ly_member m;
    int64_t now = ly_time_now_ms();
    int rc = ly__prog_load(c, s->a, s->program_id, &prog, err);
    if (rc == LY_OK)
        rc = ly_store_member_lock(c, s->program_id, s->member_id, NULL, err);
    if (rc == LY_OK)
        rc = ly_store_member_get(c, s->a, s->program_id, s->member_id, &m, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, "not_found", NULL, "no member mem_%lld",
                            (long long)s->member_id);
    if (rc != LY_OK)
        return rc;
    ly_lot *lots = NULL;
    int64_t *take = NULL;
    size_t n = 0;
    if (s->amount < 0 &&
        (rc = ly__spend_plan(c, s->a, s->program_id, s->member_id, s->asset, -s->amount, "amount",
                             now, &lots, &take, &n, err)) != LY_OK)
        return rc;
    ly_entry e = {.program_id = s->program_id,
                  .member_id = s->member_id,
                  .kind = "adjust",
                  .memo = s->reason,
                  .effective_at = now,
                  .created_at = now};
    if ((rc = ly__post(c, &e, s->member_id, s->asset, "adjusted", s->amount, err)) != LY_OK)
        return rc;
    if (s->amount < 0) {
        rc = ly__spend_apply(c, s->program_id, e.id, lots, take, n, err);
    } else {
        int points = strcmp(s->asset, "points") == 0;
        ly_lot lot;
        rc = ly__lot_new(c, &e, s->member_id, s->asset, s->amount, now,
                         points ? ly_expiry_at(&prog.expiry, prog.tz, now) : 0, &lot, err);
        if (rc == LY_OK)
            rc = ly__settle(c, s->a, s->program_id, s->member_id, s->asset, e.id, err);
    }
    if (rc != LY_OK)
        return rc;
    ly_jw w;
    ly_jw_init(&w);
    write_movement(&w, "entry_id", "ent_", e.id, s->member_id, s->asset, s->amount);
    ly_jw_key(&w, "reason");
    ly_jw_str(&w, s->reason);
    ly_jw_key(&w, "balance");
    if ((rc = write_balance_now(c, s->a, s->program_id, s->member_id, &w, err)) != LY_OK) {
        ly_jw_discard(&w);
        return rc;
    }
    ly_jw_key(&w, "created_at");
    ly_jw_time(&w, now);
    ly_jw_obj_end(&w);
    return finish(&w, 201, s->out, err);
}

int ly_adjust(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id, const char *asset,
              int64_t amount, const char *reason, ly_result *out, ly_error *err)
{
    if (!ly__asset_valid(asset))
        return ly_error_set(err, LY_EINVAL, "invalid_value", "asset",
                            "asset must be \"points\" or \"credit\"");
    if (amount == 0)
        return ly_error_set(err, LY_EINVAL, "invalid_value", "amount",
                            "amount must not be 0: give a positive or a negative correction");
    if (amount > LY_AMOUNT_MAX || amount < -LY_AMOUNT_MAX)
        return ly_error_set(err, LY_EINVAL, "amount_too_large", "amount",
                            "amount must be within ±2^53");
    if (!reason || !*reason)
        return ly_error_set(err, LY_EINVAL, "missing_field", "reason",
                            "an adjustment needs a reason");
    struct spend_ctx s = {.a = a,
                          .program_id = program_id,
                          .member_id = member_id,
                          .asset = asset,
                          .amount = amount,
                          .reason = reason,
                          .out = out};
    return ly__txn_run(c, 1, do_adjust, &s, err);
}

static int do_transfer(ly_conn *c, void *vctx, ly_error *err)
{
    struct spend_ctx *s = vctx;
    ly_lot *lots;
    int64_t *take;
    size_t n;
    int64_t now = ly_time_now_ms();
    /* Locks in id order, so that two opposite transfers cannot deadlock. */
    int first_from = s->member_id < s->other_id;
    int rc = ly__member_ready(c, s->program_id, first_from ? s->member_id : s->other_id, err);
    if (rc == LY_OK)
        rc = ly__member_ready(c, s->program_id, first_from ? s->other_id : s->member_id, err);
    if (rc == LY_OK)
        rc = ly__spend_plan(c, s->a, s->program_id, s->member_id, "points", s->amount, "points",
                            now, &lots, &take, &n, err);
    if (rc != LY_OK)
        return rc;
    ly_posting p[2] = {
        {s->member_id, "member", "points", -s->amount},
        {s->other_id, "member", "points", s->amount},
    };
    ly_entry e = {.program_id = s->program_id,
                  .member_id = s->member_id,
                  .kind = "transfer",
                  .memo = s->reason,
                  .effective_at = now,
                  .created_at = now};
    if ((rc = ly_store_entry_insert(c, &e, p, 2, err)) != LY_OK ||
        (rc = ly__spend_apply(c, s->program_id, e.id, lots, take, n, err)) != LY_OK)
        return rc;
    /* Each part moves with its expiry date. */
    for (size_t i = 0; i < n; i++) {
        if (!take[i])
            continue;
        ly_lot lot;
        if ((rc = ly__lot_new(c, &e, s->other_id, "points", take[i], now, lots[i].expires_at, &lot,
                              err)) != LY_OK)
            return rc;
    }
    if ((rc = ly__settle(c, s->a, s->program_id, s->other_id, "points", e.id, err)) != LY_OK ||
        (rc = ly_store_member_touch(c, s->program_id, s->member_id, now, err)) != LY_OK ||
        (rc = ly_store_member_touch(c, s->program_id, s->other_id, now, err)) != LY_OK)
        return rc;
    char id[32], fid[32], tid[32];
    snprintf(id, sizeof id, "ent_%lld", (long long)e.id);
    snprintf(fid, sizeof fid, "mem_%lld", (long long)s->member_id);
    snprintf(tid, sizeof tid, "mem_%lld", (long long)s->other_id);
    ly_jw w;
    ly_jw_init(&w);
    ly_jw_obj_begin(&w);
    ly_jw_key(&w, "entry_id");
    ly_jw_str(&w, id);
    ly_jw_key(&w, "from");
    ly_jw_str(&w, fid);
    ly_jw_key(&w, "to");
    ly_jw_str(&w, tid);
    ly_jw_key(&w, "points");
    ly_jw_int(&w, s->amount);
    ly_jw_key(&w, "reason");
    ly_jw_str(&w, s->reason);
    ly_jw_key(&w, "balances");
    ly_jw_obj_begin(&w);
    ly_jw_key(&w, fid);
    rc = write_balance_now(c, s->a, s->program_id, s->member_id, &w, err);
    ly_jw_key(&w, tid);
    if (rc == LY_OK)
        rc = write_balance_now(c, s->a, s->program_id, s->other_id, &w, err);
    if (rc != LY_OK) {
        ly_jw_discard(&w);
        return rc;
    }
    ly_jw_obj_end(&w);
    ly_jw_key(&w, "created_at");
    ly_jw_time(&w, now);
    ly_jw_obj_end(&w);
    return finish(&w, 201, s->out, err);
}

int ly_transfer(ly_conn *c, ly_arena *a, int64_t program_id, int64_t from, int64_t to,
                int64_t points, const char *reason, ly_result *out, ly_error *err)
{
    int rc = check_amount("points", points, err);
    if (rc != LY_OK)
        return rc;
    if (from == to)
        return ly_error_set(err, LY_EREFUSED, "same_member", "to",
                            "a member cannot transfer points to itself");
    struct spend_ctx s = {.a = a,
                          .program_id = program_id,
                          .member_id = from,
                          .other_id = to,
                          .amount = points,
                          .reason = reason,
                          .out = out};
    return ly__txn_run(c, 1, do_transfer, &s, err);
}

/* ---- activity ------------------------------------------------------------- */

struct activity_ctx {
    ly_arena *a;
    int64_t program_id, member_id, before;
    int limit;
    ly_result *out;
};

static int do_activity(ly_conn *c, void *vctx, ly_error *err)
{
    struct activity_ctx *x = vctx;
    ly_member m;
    ly_activity *rows;
    size_t n;
    int rc = ly_store_member_get(c, x->a, x->program_id, x->member_id, &m, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, "not_found", NULL, "no member mem_%lld",
                            (long long)x->member_id);
    /* One more than the page tells whether another follows, and one more
     * again shows whether the page would split an entry's lines (points and
     * credit): the cursor names an entry, so a page ends between entries. */
    if (rc == LY_OK)
        rc = ly_store_activity(c, x->a, x->program_id, x->member_id, x->before, x->limit + 2, &rows,
                               &n, err);
    if (rc != LY_OK)
        return rc;
    size_t cut = n < (size_t)x->limit ? n : (size_t)x->limit;
    while (cut > 0 && cut < n && rows[cut].entry_id == rows[cut - 1].entry_id)
        cut--;
    if (cut == 0) /* one entry with more lines than the page: show it whole */
        while (cut < n && rows[cut].entry_id == rows[0].entry_id)
            cut++;
    ly_jw w;
    ly_jw_init(&w);
    ly_jw_obj_begin(&w);
    ly_jw_key(&w, "data");
    ly_jw_arr_begin(&w);
    for (size_t i = 0; i < cut; i++) {
        ly_jw_obj_begin(&w);
        ly_jw_key(&w, "entry_id");
        ly_jw_id(&w, "ent_", rows[i].entry_id);
        ly_jw_key(&w, "kind");
        ly_jw_str(&w, rows[i].kind);
        ly_jw_key(&w, "asset");
        ly_jw_str(&w, rows[i].asset);
        ly_jw_key(&w, "amount");
        ly_jw_int(&w, rows[i].amount);
        ly_jw_key(&w, "event_id");
        ly_jw_str(&w, rows[i].event_ext_id);
        ly_jw_key(&w, "memo");
        ly_jw_str(&w, rows[i].memo);
        ly_jw_key(&w, "effective_at");
        ly_jw_time(&w, rows[i].effective_at);
        ly_jw_key(&w, "created_at");
        ly_jw_time(&w, rows[i].created_at);
        ly_jw_obj_end(&w);
    }
    ly_jw_arr_end(&w);
    ly_jw_key(&w, "next_cursor");
    if (cut < n)
        ly_jw_id(&w, "ent_", rows[cut - 1].entry_id);
    else
        ly_jw_null(&w);
    ly_jw_obj_end(&w);
    return finish(&w, 200, x->out, err);
}

int ly_activity_list(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                     int64_t before_entry, int limit, ly_result *out, ly_error *err)
{
    struct activity_ctx x = {a, program_id, member_id, before_entry, limit, out};
    return ly__txn_run(c, 0, do_activity, &x, err);
}

/* ---- expiry ----------------------------------------------------------------- */

struct expire_ctx {
    ly_arena *a;
    int64_t program_id, as_of;
    ly_expire_stats *stats;
    ly_expire_stats committed; /* what earlier batches did: a retried batch restarts from it */
    int more;                  /* a batch was full: run again */
    int64_t after_member, after_committed;
};

/* Expires the member's lots that `pick` selects, in one entry. The lots are
 * read after the member is locked, so that two nodes running the job at once
 * cannot expire a lot twice. */
static int expire_member(ly_conn *c, struct expire_ctx *x, int64_t member_id, int whole,
                         ly_error *err)
{
    ly_lot *lots;
    size_t n;
    int rc = ly_store_member_lock(c, x->program_id, member_id, NULL, err);
    if (rc == LY_OK)
        rc = ly_store_lots_open(c, x->a, x->program_id, member_id, "points", &lots, &n, err);
    if (rc != LY_OK)
        return rc;
    int64_t *take = ly_arena_alloc(x->a, (n ? n : 1) * sizeof *take), total = 0;
    if (!take)
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int due = whole || (lots[i].expires_at && lots[i].expires_at <= x->as_of);
        take[i] = due ? lots[i].remaining : 0;
        total += take[i];
    }
    if (!total)
        return LY_OK;
    ly_entry e = {.program_id = x->program_id,
                  .member_id = member_id,
                  .kind = "expire",
                  .memo = whole ? "inactivity" : NULL,
                  .effective_at = x->as_of,
                  .created_at = ly_time_now_ms()};
    if ((rc = ly__post(c, &e, member_id, "points", "expired", -total, err)) != LY_OK ||
        (rc = ly__spend_apply(c, x->program_id, e.id, lots, take, n, err)) != LY_OK)
        return rc;
    x->stats->points += total;
    x->stats->members++;
    for (size_t i = 0; i < n; i++)
        x->stats->lots += take[i] > 0;
    return LY_OK;
}

static int do_expire_dated(ly_conn *c, void *vctx, ly_error *err)
{
    struct expire_ctx *x = vctx;
    ly_lot *lots;
    size_t n;
    *x->stats = x->committed;
    int rc = ly_store_lots_expired(c, x->a, x->program_id, x->as_of, EXPIRE_BATCH, &lots, &n, err);
    if (rc != LY_OK)
        return rc;
    x->more = n == EXPIRE_BATCH;
    /* Lots come by member: one entry per member. */
    for (size_t i = 0; i < n; i++)
        if ((i == 0 || lots[i].member_id != lots[i - 1].member_id) &&
            (rc = expire_member(c, x, lots[i].member_id, 0, err)) != LY_OK)
            return rc;
    return LY_OK;
}

static int do_expire_idle(ly_conn *c, void *vctx, ly_error *err)
{
    struct expire_ctx *x = vctx;
    ly__prog prog;
    int64_t *ids;
    size_t n;
    *x->stats = x->committed;
    x->after_member = x->after_committed;
    int rc = ly__prog_load(c, x->a, x->program_id, &prog, err);
    x->more = 0;
    if (rc != LY_OK || prog.expiry.kind != LY_EXPIRY_INACTIVITY)
        return rc;
    int64_t before = x->as_of - (int64_t)prog.expiry.n * 86400000;
    rc = ly_store_members_inactive(c, x->a, x->program_id, before, x->after_member, EXPIRE_BATCH,
                                   &ids, &n, err);
    if (rc != LY_OK)
        return rc;
    x->more = n == EXPIRE_BATCH;
    for (size_t i = 0; i < n; i++) {
        x->after_member = ids[i];
        if ((rc = expire_member(c, x, ids[i], 1, err)) != LY_OK)
            return rc;
    }
    return LY_OK;
}

int ly_expire_run(ly_conn *c, ly_arena *a, int64_t program_id, int64_t as_of, ly_expire_stats *out,
                  ly_error *err)
{
    memset(out, 0, sizeof *out);
    struct expire_ctx x = {.a = a, .program_id = program_id, .as_of = as_of, .stats = out};
    int rc;
    /* In batches, each its own transaction, so a large run does not hold the
     * write lock for long; a batch interrupted is simply done by the next run. */
    do {
        rc = ly__txn_run(c, 1, do_expire_dated, &x, err);
        if (rc == LY_OK)
            x.committed = *out;
    } while (rc == LY_OK && x.more);
    while (rc == LY_OK) {
        rc = ly__txn_run(c, 1, do_expire_idle, &x, err);
        if (rc == LY_OK) {
            x.committed = *out;
            x.after_committed = x.after_member;
        }
        if (!x.more)
            break;
    }
    *out = x.committed;
    return rc;
}

/* ---- verification --------------------------------------------------------------- */

struct verify_ctx {
    ly_arena *a;
    ly_violation **out;
    size_t *n;
};

static int do_verify(ly_conn *c, void *vctx, ly_error *err)
{
    struct verify_ctx *v = vctx;
    return ly_store_verify(c, v->a, v->out, v->n, err);
}

int ly_ledger_verify(ly_conn *c, ly_arena *a, ly_violation **out, size_t *n, ly_error *err)
{
    struct verify_ctx v = {a, out, n};
    return ly__txn_run(c, 0, do_verify, &v, err);
}
