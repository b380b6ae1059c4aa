/* The engine: Loyal's operations (enrol a member, attach a card, change the
 * program, issue a key…), each one store transaction, retried when the store
 * reports a transient conflict. It validates and normalises what it is given
 * and is the only layer that writes. Callers pass a connection they hold, an
 * arena for what is returned, and a ly_error for refusals. Thread-safe as far
 * as the connection is used by one thread. */
#ifndef LOYAL_ENGINE_H
#define LOYAL_ENGINE_H

#include <jansson.h>
#include <stdint.h>

#include "loyal/arena.h"
#include "loyal/error.h"
#include "loyal/jsonw.h"
#include "loyal/keys.h"
#include "loyal/store.h"

/* Member fields given on enrolment or update. A field is considered only
 * when its bit is in `set`; a NULL value with its bit set clears it. */
enum {
    LY_MF_EXTERNAL_ID = 1 << 0,
    LY_MF_EMAIL = 1 << 1,
    LY_MF_PHONE = 1 << 2,
    LY_MF_NAME = 1 << 3,
    LY_MF_BIRTHDATE = 1 << 4,
    LY_MF_ATTRIBUTES = 1 << 5,
    LY_MF_STATUS = 1 << 6,
    LY_MF_CARDS = 1 << 7,
    LY_MF_REFERRAL = 1 << 8,
};

typedef struct ly_member_input {
    unsigned set;
    const char *external_id, *email, *phone, *name, *birthdate;
    const json_t *attributes; /* an object */
    const char *status;
    const char **cards;
    size_t ncards;
    const char *referral_code;
} ly_member_input;

/* Program. The returned settings text always holds every setting, defaults
 * filled in. */
int ly_program_get(ly_conn *c, ly_arena *a, int64_t program_id, ly_program *out, ly_error *err);
/* Applies the fields present in `changes` (the PUT /v1/program body, already
 * checked for JSON shape by the caller or not) after validating all of them. */
int ly_program_update(ly_conn *c, ly_arena *a, int64_t program_id, const json_t *changes,
                      ly_program *out, ly_error *err);
/* The program as its JSON document (name, currency, …, created_at). */
json_t *ly_program_to_json(const ly_program *p);

/* Members. */
int ly_member_enroll(ly_conn *c, ly_arena *a, int64_t program_id, const ly_member_input *in,
                     ly_member *out, ly_error *err);
int ly_member_update(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id,
                     const ly_member_input *in, ly_member *out, ly_error *err);
int ly_member_add_card(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, const char *card,
                       ly_member *out, ly_error *err);
int ly_member_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, ly_member *out,
                  ly_error *err);
/* by is "external_id", "email", "phone" or "card"; the value is normalised
 * as on enrolment (a malformed one is LY_EINVAL naming the field). */
int ly_member_lookup(ly_conn *c, ly_arena *a, int64_t program_id, const char *by, const char *value,
                     ly_member *out, ly_error *err);
int ly_member_list(ly_conn *c, ly_arena *a, int64_t program_id, int64_t after_id, int limit,
                   ly_member **out, size_t *n, ly_error *err);
/* Wire form of a member id: "mem_<n>"; parse refuses anything else. */
int ly_member_id_parse(const char *s, int64_t *id);
/* Writes the member as its JSON document (the answer of /v1/members). */
void ly_member_write(const ly_member *m, ly_jw *w);

/* Keys. create writes the full key (shown once) to key_out. */
int ly_apikey_create(ly_conn *c, ly_arena *a, int64_t program_id, const char *scope,
                     const char *name, char key_out[LY_KEY_MAX], ly_key *out, ly_error *err);
/* Checks a presented key: LY_EAUTH when malformed, unknown, revoked or not
 * matching its hash. */
int ly_apikey_authenticate(ly_conn *c, ly_arena *a, const char *key, ly_key *out, ly_error *err);
int ly_apikey_revoke(ly_conn *c, ly_arena *a, int64_t program_id, const char *id, ly_key *out,
                     ly_error *err);
int ly_apikey_list(ly_conn *c, ly_arena *a, int64_t program_id, ly_key **out, size_t *n,
                   ly_error *err);
/* Wire ids are "key_<id>". */
const char *ly_apikey_wire_id(ly_arena *a, const char *id);
json_t *ly_apikey_to_json(ly_arena *a, const ly_key *k);

/* ---- The ledger ------------------------------------------------------------
 * Operations on points and store credit. Each runs as one transaction (or
 * joins the caller's), locks the members it changes, and keeps the ledger's
 * invariants (docs/ledger.md). Answers are written as JSON text, which is
 * what idempotent replays give back byte for byte. */

typedef struct ly_expiring {
    int64_t points, expires_at;
} ly_expiring;

typedef struct ly_balance {
    int64_t member_id, as_of;
    int64_t points_balance, points_available, points_pending;
    ly_expiring *expiring; /* soonest first, at most 20 */
    size_t nexpiring;
    int64_t credit_balance, credit_available;
} ly_balance;

/* A finished operation: the HTTP status and the JSON answer (malloc'd). */
typedef struct ly_result {
    int status;
    char *body;
    size_t len;
    int replayed; /* the answer of an earlier identical request */
} ly_result;

int ly_balance_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id, int64_t as_of,
                   ly_balance *out, ly_error *err);
void ly_balance_write(const ly_balance *b, ly_jw *w);

/* POST /v1/events: body is the request object; text is its canonical form
 * (compact, keys sorted; NULL: made here), kept as the event's body, and
 * request_hash identifies it (for replays by event id). simulate = 1 writes
 * nothing. */
int ly_event_post(ly_conn *c, ly_arena *a, int64_t program_id, const json_t *body, const char *text,
                  const char *request_hash, int simulate, ly_result *out, ly_error *err);

/* Redemptions, adjustments, transfers; asset is "points" or "credit". */
int ly_redeem(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id, const char *asset,
              int64_t amount, ly_result *out, ly_error *err);
int ly_redeem_cancel(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                     int64_t redemption_id, ly_result *out, ly_error *err);
int ly_adjust(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id, const char *asset,
              int64_t amount, const char *reason, ly_result *out, ly_error *err);
int ly_transfer(ly_conn *c, ly_arena *a, int64_t program_id, int64_t from, int64_t to,
                int64_t points, const char *reason, ly_result *out, ly_error *err);

/* The member's ledger lines, newest first. */
int ly_activity_list(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                     int64_t before_entry, int limit, ly_result *out, ly_error *err);

/* Expires every lot past its date as of as_of, and idle balances under an
 * inactivity policy. Idempotent. */
typedef struct ly_expire_stats {
    int64_t lots, points, members;
} ly_expire_stats;
int ly_expire_run(ly_conn *c, ly_arena *a, int64_t program_id, int64_t as_of, ly_expire_stats *out,
                  ly_error *err);

/* Every invariant of the ledger; *n violations (0: sound). */
int ly_ledger_verify(ly_conn *c, ly_arena *a, ly_violation **out, size_t *n, ly_error *err);

/* ---- Rules ------------------------------------------------------------------
 * Earn rules (docs/rules.md), versioned: every change is a new version and
 * the ledger records which version gave what. Answers are JSON text. */

/* Creates (rule_id NULL: POST, 201; the id is the body's or made up) or
 * replaces (PUT, 200, a new version unless the rule is unchanged) a rule. */
int ly_rule_save(ly_conn *c, ly_arena *a, int64_t program_id, const char *rule_id,
                 const json_t *body, ly_result *out, ly_error *err);
/* Removes a rule from evaluation; its versions stay readable. */
int ly_rule_delete(ly_conn *c, ly_arena *a, int64_t program_id, const char *rule_id, ly_result *out,
                   ly_error *err);
/* The current version (version 0) or a given one. */
int ly_rule_fetch(ly_conn *c, ly_arena *a, int64_t program_id, const char *rule_id, int64_t version,
                  ly_result *out, ly_error *err);
/* Live rules by id after `after` (NULL: the first), at most limit. */
int ly_rule_list(ly_conn *c, ly_arena *a, int64_t program_id, const char *after, int limit,
                 ly_result *out, ly_error *err);
/* A rule's versions after version `after` (0: from the first), at most
 * limit; next_cursor is the last one's version. 404 when the rule never
 * existed. */
int ly_rule_versions(ly_conn *c, ly_arena *a, int64_t program_id, const char *rule_id,
                     int64_t after, int limit, ly_result *out, ly_error *err);
/* POST /v1/rules/validate: {"expression", "scope"} or a whole rule. */
int ly_rule_validate(const json_t *body, ly_result *out, ly_error *err);

/* Grants the program's birthday rules to members whose birthday fell in the
 * week up to as_of (in the program's time zone), once per member and year. */
typedef struct ly_birthday_stats {
    int64_t members, points, credit;
} ly_birthday_stats;
int ly_birthdays_run(ly_conn *c, ly_arena *a, int64_t program_id, int64_t as_of,
                     ly_birthday_stats *out, ly_error *err);

/* The largest amount or number of points the API accepts: 2^53, beyond
 * which JSON clients lose precision. */
#define LY_AMOUNT_MAX (INT64_C(1) << 53)

#endif
