/* Inside the engine's ledger: the program's settings as the ledger needs
 * them, and the steps every ledger operation is built from (post an entry,
 * create a lot, spend lots, keep lots in line with the balance). */
#ifndef LOYAL_ENGINE_LEDGER_INT_H
#define LOYAL_ENGINE_LEDGER_INT_H

#include "loyal/engine.h"
#include "loyal/ledger.h"
#include "loyal/tz.h"

typedef struct ly__prog {
    ly_program p;
    int64_t earn_points, earn_per_minor;
    enum ly_rounding rounding;
    int64_t pending_ms;
    ly_expiry expiry;
    int clawback; /* on_return_spent is "clawback" */
    const ly_tz *tz;
} ly__prog;

/* Reads and interprets the program's settings. */
int ly__prog_load(ly_conn *c, ly_arena *a, int64_t program_id, ly__prog *out, ly_error *err);

/* A member that may earn and spend: locked for the transaction, found,
 * active (LY_EREFUSED "member_suspended" otherwise). */
int ly__member_ready(ly_conn *c, int64_t program_id, int64_t member_id, ly_error *err);

/* Posts a two-sided entry: amount to the member's account of asset and its
 * opposite to the program account `other`. Sets e->id. */
int ly__post(ly_conn *c, ly_entry *e, int64_t member_id, const char *asset, const char *other,
             int64_t amount, ly_error *err);

/* Creates a lot for a credit just posted by entry e. */
int ly__lot_new(ly_conn *c, const ly_entry *e, int64_t member_id, const char *asset, int64_t amount,
                int64_t available_at, int64_t expires_at, ly_lot *out, ly_error *err);

/* Plans to spend `amount` of the member's available lots as of `as_of`;
 * LY_EREFUSED "insufficient_points"/"insufficient_credit", naming field
 * (the request's field that asked for amount), when they do not cover it.
 * *lots and *take (n each) receive the plan. */
int ly__spend_plan(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                   const char *asset, int64_t amount, const char *field, int64_t as_of,
                   ly_lot **lots, int64_t **take, size_t *n, ly_error *err);
/* Records the plan's consumptions by entry_id. */
int ly__spend_apply(ly_conn *c, int64_t program_id, int64_t entry_id, const ly_lot *lots,
                    const int64_t *take, size_t n, ly_error *err);

/* Makes the member's lots of asset sum to max(balance, 0) by consuming the
 * surplus in spending order with entry_id: a credit that pays back a
 * negative balance, or a reversal beyond the lots it came from. */
int ly__settle(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id, const char *asset,
               int64_t entry_id, ly_error *err);

/* A balance as it appears inside answers: {"points": {…}, "credit": {…}}. */
void ly__balance_write_assets(const ly_balance *b, ly_jw *w);

int ly__asset_valid(const char *asset);

#endif
