/* The store: Loyal's persistence, spoken in the domain's words (a member, a
 * key, a program), with two backends behind one interface: SQLite (a file
 * path) and PostgreSQL (a postgres:// or postgresql:// URL).
 *
 * A ly_store is an opened database with a pool of connections; it is
 * thread-safe. A ly_conn is one connection, used by one thread at a time
 * between ly_store_acquire and ly_store_release. Every statement is prepared
 * once per connection.
 *
 * Strings a read returns are allocated in the arena the caller passes and
 * live as long as it. Times are integer milliseconds since the Unix epoch,
 * UTC. Identifier values (email, phone, card) arrive already normalised. */
#ifndef LOYAL_STORE_H
#define LOYAL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "loyal/arena.h"
#include "loyal/error.h"

typedef struct ly_store ly_store;
typedef struct ly_conn ly_conn;

/* The program every store holds from its first migration; later programs get
 * higher ids. */
#define LY_DEFAULT_PROGRAM 1

typedef struct ly_program {
    int64_t id;
    const char *name;
    const char *currency; /* ISO 4217, upper case */
    const char *timezone; /* IANA name */
    int64_t point_value_minor;
    const char *settings; /* JSON object text with every other setting, never NULL */
    int64_t created_at, updated_at;
} ly_program;

typedef struct ly_member {
    int64_t id;
    int64_t program_id;
    const char *external_id; /* NULL when absent, likewise below */
    const char *email;
    const char *phone;
    const char *name;
    const char *birthdate;  /* YYYY-MM-DD */
    const char *attributes; /* JSON object text, never NULL on read ("{}") */
    const char *status;     /* "active", "suspended", "erased" */
    int64_t created_at, updated_at;
    const char **cards; /* ncards card numbers, oldest first */
    size_t ncards;
    /* Read only (the ledger keeps them): balances of the member's accounts,
     * and the time of the last earn or spend (0 when none). */
    int64_t points, credit;
    int64_t last_activity_at;
    /* Read only: purchases net of returns (minor units), how many purchases,
     * and the time of the latest (0 when none). */
    int64_t lifetime_spend, purchase_count, last_purchase_at;
} ly_member;

typedef struct ly_key {
    const char *id; /* public part of the key, unique across the store */
    int64_t program_id;
    const char *scope; /* "admin", "pos", "partner", "read" */
    const char *name;  /* a label for people; may be NULL */
    unsigned char hash[32];
    int64_t created_at;
    int64_t revoked_at; /* 0 while active */
} ly_key;

typedef struct ly_table_count {
    const char *table;
    int64_t rows;
} ly_table_count;

/* Opening and migrations. ly_store_open does not migrate. pool_size is the
 * number of connections (at least 1). */
int ly_store_open(const char *url, int pool_size, ly_store **out, ly_error *err);
void ly_store_close(ly_store *s);
const char *ly_store_backend(const ly_store *s); /* "sqlite" or "postgres" */
/* Applies every pending migration, each in its own transaction; *applied
 * (may be NULL) receives how many ran. Safe to run concurrently from two
 * processes on PostgreSQL (advisory lock). */
int ly_store_migrate(ly_store *s, int *applied, ly_error *err);
/* Highest applied migration version, 0 for an empty database. */
int ly_store_schema_version(ly_store *s, int *version, ly_error *err);
/* Highest migration version this binary knows. */
int ly_store_latest_version(const ly_store *s);

/* Connections. acquire blocks until one is free; returns NULL (err set) only
 * when the store cannot give a working connection. A connection released
 * inside an open transaction is rolled back. */
ly_conn *ly_store_acquire(ly_store *s, ly_error *err);
void ly_store_release(ly_store *s, ly_conn *c);

/* Transactions. begin_write takes the write lock at once on SQLite (BEGIN
 * IMMEDIATE); begin_read gives a consistent snapshot. LY_ERETRY means a
 * transient failure (busy, serialization failure, deadlock): retry the whole
 * transaction. */
int ly_store_begin_write(ly_conn *c, ly_error *err);
int ly_store_begin_read(ly_conn *c, ly_error *err);
int ly_store_commit(ly_conn *c, ly_error *err);
void ly_store_rollback(ly_conn *c);
/* 0 outside a transaction, 1 inside a read one, 2 inside a write one. */
int ly_store_in_transaction(const ly_conn *c);
/* Rows changed by this connection so far, or -1 where the backend does not
 * count them (PostgreSQL): a caller can tell whether a failed operation
 * wrote anything before failing. */
int64_t ly_store_changes(ly_conn *c);
/* A savepoint inside the current transaction (not nested): release keeps
 * what was done since, rollback undoes it and the transaction goes on. */
int ly_store_savepoint(ly_conn *c, ly_error *err);
int ly_store_savepoint_release(ly_conn *c, ly_error *err);
void ly_store_savepoint_rollback(ly_conn *c);

/* Program. */
int ly_store_program_get(ly_conn *c, ly_arena *a, int64_t program_id, ly_program *out,
                         ly_error *err);
/* Replaces name, currency, timezone, point_value_minor, settings, updated_at. */
int ly_store_program_put(ly_conn *c, const ly_program *p, ly_error *err);

/* Members. insert sets m->id. A uniqueness violation is LY_ECONFLICT with
 * err->field naming "external_id", "email", "phone" or "card". */
int ly_store_member_insert(ly_conn *c, ly_member *m, ly_error *err);
int ly_store_member_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, ly_member *out,
                        ly_error *err);
/* by is "external_id", "email", "phone" or "card"; LY_ENOTFOUND when none. */
int ly_store_member_find(ly_conn *c, ly_arena *a, int64_t program_id, const char *by,
                         const char *value, ly_member *out, ly_error *err);
/* Replaces external_id, email, phone, name, birthdate, attributes, status,
 * updated_at of member m->id (cards are untouched). LY_ENOTFOUND, LY_ECONFLICT. */
int ly_store_member_update(ly_conn *c, const ly_member *m, ly_error *err);
/* Members with id > after_id in ascending id order, at most limit. */
int ly_store_member_list(ly_conn *c, ly_arena *a, int64_t program_id, int64_t after_id, int limit,
                         ly_member **out, size_t *n, ly_error *err);
/* LY_ECONFLICT (field "card") when the card is already attached to any
 * member of the program. */
int ly_store_card_attach(ly_conn *c, int64_t program_id, int64_t member_id, const char *card,
                         int64_t now, ly_error *err);

/* API keys. */
int ly_store_key_insert(ly_conn *c, const ly_key *k, ly_error *err);
/* By public id, whatever its program; LY_ENOTFOUND when none. */
int ly_store_key_get(ly_conn *c, ly_arena *a, const char *id, ly_key *out, ly_error *err);
/* Every key of a program, active and revoked, oldest first. */
int ly_store_key_list(ly_conn *c, ly_arena *a, int64_t program_id, ly_key **out, size_t *n,
                      ly_error *err);
/* Sets revoked_at if not yet revoked; LY_ENOTFOUND when the program has no
 * such key. */
int ly_store_key_revoke(ly_conn *c, int64_t program_id, const char *id, int64_t now, ly_error *err);

/* ---- The ledger -------------------------------------------------------------
 * Accounts hold a balance per asset ("points", "credit"). A member account
 * has kind "member" and its member's id; program accounts have member_id 0
 * and kinds "issued", "redeemed", "expired", "adjusted", "returned",
 * "transfers". Accounts are created on first posting. A journal entry is
 * immutable; its postings sum to zero per asset, which the engine
 * guarantees and `loyal verify` checks. */

typedef struct ly_posting {
    int64_t member_id; /* 0 for a program account */
    const char *kind;  /* "member" or a program account kind */
    const char *asset; /* "points" or "credit" */
    int64_t amount;    /* signed: + adds to the account's balance */
} ly_posting;

typedef struct ly_entry {
    int64_t id;
    int64_t program_id;
    int64_t member_id;    /* the member it is about, 0 for none */
    const char *kind;     /* "earn", "return", "redeem", "redeem_cancel", "adjust",
                             "transfer", "expire" */
    int64_t event_id;     /* events.id that caused it, 0 for none */
    int64_t ref_entry_id; /* the entry it undoes or follows, 0 for none */
    const char *memo;     /* a reason for people, may be NULL */
    const char *data;     /* JSON object text with details, may be NULL */
    int64_t effective_at; /* when it counts (an event's occurred_at, an as_of) */
    int64_t created_at;
} ly_entry;

typedef struct ly_lot {
    int64_t id;
    int64_t program_id, member_id;
    const char *asset;
    int64_t entry_id;     /* the entry that created it */
    int64_t amount;       /* > 0 */
    int64_t remaining;    /* 0 <= remaining <= amount */
    int64_t available_at; /* spendable from then (pending before) */
    int64_t expires_at;   /* 0: never */
    int64_t created_at;
} ly_lot;

/* Every change of a lot's remaining after its creation is a consumption
 * by an entry: amount > 0 taken (spend, return, expiry, transfer, a debt
 * settled by a new earn), amount < 0 given back (a cancelled redemption). */
typedef struct ly_consumption {
    int64_t entry_id, lot_id, amount;
} ly_consumption;

/* A member's ledger line: one posting to one of the member's accounts. */
typedef struct ly_activity {
    int64_t entry_id;
    const char *kind, *asset, *memo, *data;
    int64_t amount; /* signed, as posted to the member's account */
    int64_t event_id;
    const char *event_ext_id; /* the event's own id, NULL when none */
    int64_t effective_at, created_at;
} ly_activity;

typedef struct ly_event {
    int64_t id; /* internal */
    int64_t program_id;
    const char *ext_id;   /* the client's id, or one made up; unique per program */
    const char *type;     /* "purchase", "return", "custom:<name>" */
    int64_t member_id;    /* 0: not a member (a non-member purchase) */
    int64_t amount;       /* minor units, 0 when none */
    const char *currency; /* may be NULL */
    int64_t occurred_at;
    int64_t original_id;    /* a return: events.id of its purchase; else 0 */
    int64_t points, credit; /* earned (purchase) or reversed (return, negative) */
    /* A purchase: what its returns have taken back so far. */
    int64_t returned_amount, reversed_points, reversed_credit;
    const char *returned_items; /* JSON object {"<item index>": quantity}, may be NULL */
    int64_t entry_id;           /* its journal entry, 0 for none */
    const char *body;           /* the request as received (JSON text) */
    const char *request_hash;   /* hex digest of the canonical body, for replays */
    const char *result;         /* the answer given (JSON text) */
    int64_t created_at;
} ly_event;

typedef struct ly_redemption {
    int64_t id;
    int64_t program_id, member_id;
    const char *asset;
    int64_t amount;
    int64_t entry_id;
    const char *status; /* "active", "cancelled" */
    int64_t cancel_entry_id;
    int64_t created_at, cancelled_at;
} ly_redemption;

typedef struct ly_idem {
    const char *key;
    const char *route;        /* "POST /v1/..." the key was first used on */
    const char *request_hash; /* hex digest of method, path and body */
    int status;
    const char *response;
    int64_t created_at;
} ly_idem;

typedef struct ly_violation {
    const char *invariant; /* e.g. "entry_balanced" */
    const char *detail;    /* what and where, for a person */
} ly_violation;

/* Locks the member against concurrent ledger writes until the transaction
 * ends (PostgreSQL: SELECT … FOR NO KEY UPDATE on the member row; SQLite:
 * nothing, its write transaction is exclusive), and tells in *active (may
 * be NULL) whether its status is "active". LY_ENOTFOUND when no such member.
 * In a read transaction (a simulation) it only reads the member in the
 * transaction's snapshot: nothing will be written, so nothing is locked, and
 * a concurrent writer of the member neither holds it up nor fails it. */
int ly_store_member_lock(ly_conn *c, int64_t program_id, int64_t member_id, int *active,
                         ly_error *err);
/* Moves members.last_activity_at to `at` when that is later. */
int ly_store_member_touch(ly_conn *c, int64_t program_id, int64_t member_id, int64_t at,
                          ly_error *err);

/* A purchase or a return of the member: adds spend (negative for a return)
 * to lifetime_spend and count to purchase_count; when count > 0 sets
 * last_purchase_at to the later of it and `at`. Also touches
 * last_activity_at like ly_store_member_touch. */
int ly_store_member_purchase(ly_conn *c, int64_t program_id, int64_t member_id, int64_t at,
                             int64_t spend, int64_t count, ly_error *err);
/* Up to limit members (ids > after_id, ascending) with status "active" whose
 * birthdate (YYYY-MM-DD) falls on mmdd ("MM-DD"). */
int ly_store_members_by_birthday(ly_conn *c, ly_arena *a, int64_t program_id, const char *mmdd,
                                 int64_t after_id, int limit, ly_member **out, size_t *n,
                                 ly_error *err);

/* Inserts the entry (setting e->id) and its postings, creating accounts as
 * needed and adding each amount to its member account's balance (overflow
 * of a balance is LY_EREFUSED "balance_overflow"). */
int ly_store_entry_insert(ly_conn *c, ly_entry *e, const ly_posting *p, size_t n, ly_error *err);
int ly_store_entry_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, ly_entry *out,
                       ly_error *err);
/* Balance of one account, 0 when it does not exist yet. A member account
 * keeps it on its row; a program account (member_id 0) keeps none, and its
 * balance is the sum of its postings. */
int ly_store_account_balance(ly_conn *c, int64_t program_id, int64_t member_id, const char *kind,
                             const char *asset, int64_t *balance, ly_error *err);

/* Lots. insert sets l->id. */
int ly_store_lot_insert(ly_conn *c, ly_lot *l, ly_error *err);
/* The member's lots of an asset with remaining > 0, in spending order:
 * expires_at ascending with never-expiring last, then created_at, then id. */
int ly_store_lots_open(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                       const char *asset, ly_lot **out, size_t *n, ly_error *err);
/* What a member's open lots of an asset hold as of a time: pending (not yet
 * available, not expired) and past their date (awaiting the expiry job), and
 * the unexpired part grouped by expiry date, soonest first, at most
 * max_groups groups. The spendable rest is max(balance, 0) − pending −
 * expired, since lots sum to the balance. Each part reads only the lots in
 * its own index range, so a member with thousands of lots costs no more. */
typedef struct ly_lot_group {
    int64_t amount, expires_at;
} ly_lot_group;

typedef struct ly_lot_summary {
    int64_t pending, expired;
    ly_lot_group *groups;
    size_t ngroups;
} ly_lot_summary;

/* A member's balance of one asset, and the summary of its lots. */
typedef struct ly_asset_balance {
    int64_t balance; /* the member account's (0: none yet) */
    ly_lot_summary lots;
} ly_asset_balance;

/* The member's points (out[0]) and credit (out[1]) with their lots as of
 * as_of: pending and expired sums, and for points the next max_groups
 * expiry dates with what expires on each. One statement. */
int ly_store_member_balances(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                             int64_t as_of, int max_groups, ly_asset_balance out[2], ly_error *err);
/* Lots an entry created, by id. */
int ly_store_lots_of_entry(ly_conn *c, ly_arena *a, int64_t program_id, int64_t entry_id,
                           ly_lot **out, size_t *n, ly_error *err);
/* Records the consumption and moves the lot's remaining by -k->amount
 * (LY_EINTERNAL if that would leave it outside 0..amount). */
int ly_store_consumption_insert(ly_conn *c, int64_t program_id, const ly_consumption *k,
                                ly_error *err);
/* Points a return forgave on a lot (see migration 0006): read it, or move
 * it by delta (LY_EINTERNAL if that would leave it outside 0..amount). */
int ly_store_lot_forgiven(ly_conn *c, int64_t program_id, int64_t lot_id, int64_t *out,
                          ly_error *err);
int ly_store_lot_forgive(ly_conn *c, int64_t program_id, int64_t lot_id, int64_t delta,
                         ly_error *err);
int ly_store_consumptions_of_entry(ly_conn *c, ly_arena *a, int64_t program_id, int64_t entry_id,
                                   ly_consumption **out, size_t *n, ly_error *err);
/* Up to limit lots of the program with remaining > 0 and 0 < expires_at <=
 * as_of, by member_id then id. */
int ly_store_lots_expired(ly_conn *c, ly_arena *a, int64_t program_id, int64_t as_of, int limit,
                          ly_lot **out, size_t *n, ly_error *err);
/* Up to limit member ids (ascending, > after_id) whose points balance is not
 * 0 and whose last activity (or enrolment, when none) is before `before`. */
int ly_store_members_inactive(ly_conn *c, ly_arena *a, int64_t program_id, int64_t before,
                              int64_t after_id, int limit, int64_t **out, size_t *n, ly_error *err);

/* The member's ledger lines, newest first (by entry id), entry id <
 * before_entry (0: from the newest), at most limit. */
int ly_store_activity(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                      int64_t before_entry, int limit, ly_activity **out, size_t *n, ly_error *err);

/* Events. insert keeps ev->id when set (from event_next_id), else sets it;
 * LY_ECONFLICT field "id" when ext_id is taken. */
int ly_store_event_insert(ly_conn *c, ly_event *ev, ly_error *err);
/* An id for an event not written yet, so that its entries can name it and
 * the row be written once, with its outcome; inside a write transaction. */
int ly_store_event_next_id(ly_conn *c, int64_t *id, ly_error *err);
int ly_store_event_get(ly_conn *c, ly_arena *a, int64_t program_id, const char *ext_id,
                       ly_event *out, ly_error *err);
int ly_store_event_get_by_id(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, ly_event *out,
                             ly_error *err);
/* Updates entry_id, points, credit, returned_amount, reversed_points,
 * reversed_credit, returned_items and result of event ev->id. */
int ly_store_event_update(ly_conn *c, const ly_event *ev, ly_error *err);

/* Redemptions. insert sets r->id. */
int ly_store_redemption_insert(ly_conn *c, ly_redemption *r, ly_error *err);
int ly_store_redemption_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id,
                            ly_redemption *out, ly_error *err);
/* Sets status "cancelled", cancel_entry_id and cancelled_at. */
int ly_store_redemption_cancel(ly_conn *c, const ly_redemption *r, ly_error *err);

/* Rules, versioned: every change of a rule is a new row (a version), and
 * the ledger refers to the row that applied. */
typedef struct ly_rule_row {
    int64_t id; /* this version's row */
    int64_t program_id;
    const char *rule_id; /* the rule's id, chosen by the program */
    int64_t version;     /* 1, 2, … per rule_id */
    const char *body;    /* the rule as JSON text */
    int deleted;         /* this version removed the rule */
    int current;         /* the latest version of its rule (read only) */
    int64_t created_at;
} ly_rule_row;

/* Inserts r as the current version of r->rule_id; the version that was
 * current no longer is. Sets r->id. LY_ECONFLICT when that version exists. */
int ly_store_rule_insert(ly_conn *c, ly_rule_row *r, ly_error *err);
/* One version; version 0 is the current one (deleted or not). LY_ENOTFOUND. */
int ly_store_rule_get(ly_conn *c, ly_arena *a, int64_t program_id, const char *rule_id,
                      int64_t version, ly_rule_row *out, ly_error *err);
/* The current, not deleted, rules of the program by rule_id (byte order),
 * rule_id > after (NULL: from the first), at most limit (0: all). */
int ly_store_rule_list(ly_conn *c, ly_arena *a, int64_t program_id, const char *after, int limit,
                       ly_rule_row **out, size_t *n, ly_error *err);
/* The versions of one rule after version `after` (0: from the first),
 * oldest first, at most limit (0: all); none: *n = 0. */
int ly_store_rule_versions(ly_conn *c, ly_arena *a, int64_t program_id, const char *rule_id,
                           int64_t after, int limit, ly_rule_row **out, size_t *n, ly_error *err);

/* What a rule has used of a cap: per member (member_id), or for the whole
 * rule (member_id 0), in the period that starts at period_start (0: the
 * rule's lifetime). */
typedef struct ly_rule_usage {
    int64_t points, credit, count;
} ly_rule_usage;

/* Zeros when nothing was used yet. On PostgreSQL the usage row is locked
 * (created when absent) until the transaction ends, so that grants from one
 * budget by concurrent transactions follow one another. */
int ly_store_rule_usage_get(ly_conn *c, int64_t program_id, const char *rule_id, int64_t member_id,
                            int64_t period_start, ly_rule_usage *out, ly_error *err);
/* Adds d (each part may be negative) to the usage, creating its row. */
int ly_store_rule_usage_add(ly_conn *c, int64_t program_id, const char *rule_id, int64_t member_id,
                            int64_t period_start, const ly_rule_usage *d, ly_error *err);

/* What one rule version gave one event, and how much of it returns took
 * back. */
typedef struct ly_event_rule {
    int64_t event_id;
    int64_t rule_row;    /* ly_rule_row.id */
    const char *rule_id; /* read only, from the rule row */
    int64_t version;     /* read only, from the rule row */
    int64_t points, credit;
    int64_t reversed_points, reversed_credit;
} ly_event_rule;

int ly_store_event_rule_insert(ly_conn *c, int64_t program_id, const ly_event_rule *r,
                               ly_error *err);
/* The event's rules, by rule_row. */
int ly_store_event_rules(ly_conn *c, ly_arena *a, int64_t program_id, int64_t event_id,
                         ly_event_rule **out, size_t *n, ly_error *err);
/* Sets reversed_points and reversed_credit of (r->event_id, r->rule_row). */
int ly_store_event_rule_update(ly_conn *c, int64_t program_id, const ly_event_rule *r,
                               ly_error *err);

/* Idempotency keys, per program. get: LY_ENOTFOUND when unused. put:
 * LY_ECONFLICT when the key was stored meanwhile (a concurrent duplicate). */
int ly_store_idem_get(ly_conn *c, ly_arena *a, int64_t program_id, const char *key, ly_idem *out,
                      ly_error *err);
int ly_store_idem_put(ly_conn *c, int64_t program_id, const ly_idem *i, ly_error *err);

/* Checks every ledger invariant of every program and lists each violation
 * (an empty list when the ledger is sound):
 *   entry_balanced     each entry's postings sum to 0 per asset
 *   account_balance    each member account's balance equals the sum of its
 *                      postings (a program account's is that sum)
 *   member_lots        each member account's balance b: the remaining of its
 *                      lots sums to max(b, 0)
 *   lot_bounds         0 <= remaining <= amount for every lot
 *   lot_consumed       amount - remaining equals the sum of the lot's
 *                      consumptions
 *   event_entry        every member purchase or return with points or credit
 *                      has its entry */
int ly_store_verify(ly_conn *c, ly_arena *a, ly_violation **out, size_t *n, ly_error *err);

/* Row count of every table of the schema, in a fixed order (for `loyal status`
 * and for tests that check nothing was written). */
int ly_store_table_counts(ly_conn *c, ly_arena *a, ly_table_count **out, size_t *n, ly_error *err);

#endif
