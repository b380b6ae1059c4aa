/* Inside the store: the table of operations each backend (sqlite.c,
 * postgres.c) provides, the part of a connection every backend shares, and
 * the helpers store.c offers both. Not part of the public interface. */
#ifndef LOYAL_STORE_INT_H
#define LOYAL_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "loyal/store.h"
#include "store/migrations.h"

typedef struct ly_store_ops ly_store_ops;

/* Every backend's connection starts with this, so store.c can keep a free
 * list and dispatch without knowing the backend. */
struct ly_conn {
    const ly_store_ops *ops;
    ly_conn *next;  /* in the pool's free list */
    int txn;        /* what ly_store_in_transaction answers */
    ly_store *pool; /* the store it was acquired from, NULL before */
};

/* The identifiers a member can be found by, in the order of ly__member_by. */
enum { LY_BY_EXTERNAL_ID, LY_BY_EMAIL, LY_BY_PHONE, LY_BY_CARD, LY_BY_COUNT };

/* ly_store_table_counts reports programs, members, member_cards, api_keys,
 * then the ledger's tables, then the rules' (store.c names them). */
#define LY_STORE_NTABLES 15

/* The checks of ly_store_verify, in the order of each backend's statements;
 * the list of violations stops at LY_VERIFY_MAX. */
enum {
    LY_VERIFY_ENTRY_BALANCED,
    LY_VERIFY_ACCOUNT_BALANCE,
    LY_VERIFY_MEMBER_LOTS,
    LY_VERIFY_LOT_BOUNDS,
    LY_VERIFY_LOT_CONSUMED,
    LY_VERIFY_EVENT_ENTRY,
    LY_VERIFY_COUNT
};
#define LY_VERIFY_MAX 1000

/* A statement parameter, whatever the backend: an integer, a text (NULL is
 * SQL NULL) or a blob. */
typedef struct ly_sqlparam {
    char type; /* 'i', 's' or 'b' */
    int64_t i;
    const char *s;
    const unsigned char *b;
    size_t len;
} ly_sqlparam;

#define LY_PI(v)                                                                                   \
    {                                                                                              \
        .type = 'i', .i = (v)                                                                      \
    }
#define LY_PS(v)                                                                                   \
    {                                                                                              \
        .type = 's', .s = (v)                                                                      \
    }
#define LY_PB(p, n)                                                                                \
    {                                                                                              \
        .type = 'b', .b = (p), .len = (n)                                                          \
    }
#define LY_NPARAMS(p) ((int)(sizeof(p) / sizeof((p)[0])))

/* A row of the member_balances statement: kind 0 is a member account
 * (v: balance, pending, expired), kind 1 a group of its points lots by
 * expiry date (v: amount, expires_at). */
typedef struct ly__balance_row {
    int64_t kind;
    int points;      /* the asset is points */
    int asset_known; /* points or credit */
    int64_t v[3];
} ly__balance_row;

struct ly_store_ops {
    const char *name;
    const ly_migration *migrations;

    int (*open)(const char *url, ly_conn **out, ly_error *err);
    void (*close)(ly_conn *c);
    /* On acquire: make a pooled connection usable again (may be NULL). */
    int (*check)(ly_conn *c, ly_error *err);
    /* On release: roll back whatever transaction is still open (a backend
     * may keep a read-only one for the next read; see release_snapshot). */
    void (*reset)(ly_conn *c);
    /* Ends a read transaction kept open by reset or rollback, if any; NULL
     * when the backend keeps none. Called on idle connections after every
     * commit, so that none holds on to data older than it. */
    void (*release_snapshot)(ly_conn *c);

    /* Migrations: a lock held across the whole run (lock = 1, then 0), a
     * script of several statements, and the schema_migrations bookkeeping. */
    int (*migrate_lock)(ly_conn *c, int lock, ly_error *err);
    int (*exec_script)(ly_conn *c, const char *sql, ly_error *err);
    int (*migration_applied)(ly_conn *c, int version, int *applied, ly_error *err);
    int (*migration_record)(ly_conn *c, const ly_migration *m, int64_t now, ly_error *err);
    int (*schema_version)(ly_conn *c, int *version, ly_error *err);

    int (*begin_write)(ly_conn *c, ly_error *err);
    int (*begin_read)(ly_conn *c, ly_error *err);
    int (*commit)(ly_conn *c, ly_error *err);
    void (*rollback)(ly_conn *c);

    int (*program_get)(ly_conn *c, ly_arena *a, int64_t program_id, ly_program *out, ly_error *err);
    int (*program_put)(ly_conn *c, const ly_program *p, ly_error *err);
    int (*member_insert)(ly_conn *c, ly_member *m, ly_error *err);
    int (*member_get)(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, ly_member *out,
                      ly_error *err);
    int (*member_find)(ly_conn *c, ly_arena *a, int64_t program_id, int by, const char *value,
                       ly_member *out, ly_error *err);
    int (*member_update)(ly_conn *c, const ly_member *m, ly_error *err);
    int (*member_list)(ly_conn *c, ly_arena *a, int64_t program_id, int64_t after_id, int limit,
                       ly_member **out, size_t *n, ly_error *err);
    int (*card_attach)(ly_conn *c, int64_t program_id, int64_t member_id, const char *card,
                       int64_t now, ly_error *err);
    int (*key_insert)(ly_conn *c, const ly_key *k, ly_error *err);
    int (*key_get)(ly_conn *c, ly_arena *a, const char *id, ly_key *out, ly_error *err);
    int (*key_list)(ly_conn *c, ly_arena *a, int64_t program_id, ly_key **out, size_t *n,
                    ly_error *err);
    int (*key_revoke)(ly_conn *c, int64_t program_id, const char *id, int64_t now, ly_error *err);
    int (*table_counts)(ly_conn *c, int64_t rows[LY_STORE_NTABLES], ly_error *err);

    /* The ledger. store.c has checked the arguments: postings name their
     * kind and asset and no account twice, limits are positive. */
    int (*member_lock)(ly_conn *c, int64_t program_id, int64_t member_id, int *active,
                       ly_error *err);
    int (*member_touch)(ly_conn *c, int64_t program_id, int64_t member_id, int64_t at,
                        ly_error *err);
    int (*entry_insert)(ly_conn *c, ly_entry *e, const ly_posting *p, size_t n, ly_error *err);
    int (*entry_get)(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, ly_entry *out,
                     ly_error *err);
    int (*account_balance)(ly_conn *c, int64_t program_id, int64_t member_id, const char *kind,
                           const char *asset, int64_t *balance, ly_error *err);
    int (*lot_insert)(ly_conn *c, ly_lot *l, ly_error *err);
    int64_t (*changes)(ly_conn *c); /* may be NULL: not counted */
    /* op: 0 SAVEPOINT, 1 RELEASE, 2 ROLLBACK TO (the one savepoint "ly_sp"). */
    int (*savepoint)(ly_conn *c, int op, ly_error *err);
    int (*member_balances)(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                           int64_t as_of, int max_groups, ly__balance_row **rows, size_t *n,
                           ly_error *err);
    int (*lots_open)(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                     const char *asset, ly_lot **out, size_t *n, ly_error *err);
    int (*lots_of_entry)(ly_conn *c, ly_arena *a, int64_t program_id, int64_t entry_id,
                         ly_lot **out, size_t *n, ly_error *err);
    int (*consumption_insert)(ly_conn *c, int64_t program_id, const ly_consumption *k,
                              ly_error *err);
    int (*lot_forgiven)(ly_conn *c, int64_t program_id, int64_t lot_id, int64_t *out,
                        ly_error *err);
    int (*lot_forgive)(ly_conn *c, int64_t program_id, int64_t lot_id, int64_t delta,
                       ly_error *err);
    int (*consumptions_of_entry)(ly_conn *c, ly_arena *a, int64_t program_id, int64_t entry_id,
                                 ly_consumption **out, size_t *n, ly_error *err);
    int (*lots_expired)(ly_conn *c, ly_arena *a, int64_t program_id, int64_t as_of, int limit,
                        ly_lot **out, size_t *n, ly_error *err);
    int (*members_inactive)(ly_conn *c, ly_arena *a, int64_t program_id, int64_t before,
                            int64_t after_id, int limit, int64_t **out, size_t *n, ly_error *err);
    /* before_entry is INT64_MAX for "from the newest". */
    int (*activity)(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                    int64_t before_entry, int limit, ly_activity **out, size_t *n, ly_error *err);
    int (*event_insert)(ly_conn *c, ly_event *ev, ly_error *err);
    int (*event_next_id)(ly_conn *c, int64_t *id, ly_error *err);
    int (*event_get)(ly_conn *c, ly_arena *a, int64_t program_id, const char *ext_id, ly_event *out,
                     ly_error *err);
    int (*event_get_by_id)(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, ly_event *out,
                           ly_error *err);
    int (*event_update)(ly_conn *c, const ly_event *ev, ly_error *err);
    int (*redemption_insert)(ly_conn *c, ly_redemption *r, ly_error *err);
    int (*redemption_get)(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id,
                          ly_redemption *out, ly_error *err);
    int (*redemption_cancel)(ly_conn *c, const ly_redemption *r, ly_error *err);
    int (*idem_get)(ly_conn *c, ly_arena *a, int64_t program_id, const char *key, ly_idem *out,
                    ly_error *err);
    int (*idem_put)(ly_conn *c, int64_t program_id, const ly_idem *i, ly_error *err);
    /* The details (arena strings) of at most limit violations of one check
     * (LY_VERIFY_*). */
    int (*verify)(ly_conn *c, ly_arena *a, int check, int limit, const char ***details, size_t *n,
                  ly_error *err);

    /* Purchase totals and rules. Limits are positive (store.c turns a
     * rule_list limit of 0 into INT_MAX); mmdd is "MM-DD". */
    int (*member_purchase)(ly_conn *c, int64_t program_id, int64_t member_id, int64_t at,
                           int64_t spend, int64_t count, ly_error *err);
    int (*members_by_birthday)(ly_conn *c, ly_arena *a, int64_t program_id, const char *mmdd,
                               int64_t after_id, int limit, ly_member **out, size_t *n,
                               ly_error *err);
    int (*rule_insert)(ly_conn *c, ly_rule_row *r, ly_error *err);
    int (*rule_get)(ly_conn *c, ly_arena *a, int64_t program_id, const char *rule_id,
                    int64_t version, ly_rule_row *out, ly_error *err);
    int (*rule_list)(ly_conn *c, ly_arena *a, int64_t program_id, const char *after, int limit,
                     ly_rule_row **out, size_t *n, ly_error *err);
    int (*rule_versions)(ly_conn *c, ly_arena *a, int64_t program_id, const char *rule_id,
                         int64_t after, int limit, ly_rule_row **out, size_t *n, ly_error *err);
    int (*rule_usage_get)(ly_conn *c, int64_t program_id, const char *rule_id, int64_t member_id,
                          int64_t period_start, ly_rule_usage *out, ly_error *err);
    int (*rule_usage_add)(ly_conn *c, int64_t program_id, const char *rule_id, int64_t member_id,
                          int64_t period_start, const ly_rule_usage *d, ly_error *err);
    int (*event_rule_insert)(ly_conn *c, int64_t program_id, const ly_event_rule *r, ly_error *err);
    int (*event_rules)(ly_conn *c, ly_arena *a, int64_t program_id, int64_t event_id,
                       ly_event_rule **out, size_t *n, ly_error *err);
    int (*event_rule_update)(ly_conn *c, int64_t program_id, const ly_event_rule *r, ly_error *err);
};

extern const ly_store_ops ly__sqlite_ops;
extern const ly_store_ops ly__postgres_ops;
/* The PostgreSQL backend's i-th statement (its name in *name), NULL past
 * the last: for tests that look at their plans. */
const char *ly__pg_statement(size_t i, const char **name);

/* Helpers for the backends (store.c). */
int ly__store_nomem(ly_error *err);
/* LY_ECONFLICT "already_exists" for a unique constraint of the schema, by its
 * name ("members_email_key"): names the field it protects and says what
 * clashed. For a constraint store.c does not know (or NULL), the database's
 * own message, detail, is given. */
int ly__store_conflict(ly_error *err, const char *constraint, const char *detail);
/* LY_EREFUSED "balance_overflow": a sum left the range of int64. */
int ly__store_overflow(ly_error *err);
/* LY_ENOTFOUND for a member, a redemption... of that id. */
int ly__store_not_found(ly_error *err, const char *what, int64_t id);
int ly__member_not_found(ly_error *err, int by);
/* Appends a copy of card to m->cards, growing the array in the arena. */
int ly__member_add_card(ly_arena *a, ly_member *m, const char *card, ly_error *err);
/* The member of id in ms[0..n), sorted by id; NULL when absent. */
ly_member *ly__member_in(ly_member *ms, size_t n, int64_t id);
/* Grows an arena array of elements of size sz that holds n to hold n + 1
 * (doubling at powers of two); NULL when out of memory. */
void *ly__arena_grow(ly_arena *a, void *arr, size_t n, size_t sz);

#endif
