/* The store's front: picks the backend from the URL, keeps the pool of
 * connections, runs the migrations and forwards every operation to the
 * backend's table of functions. */
#include "store/store_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ly_store {
    const ly_store_ops *ops;
    char *url;
    int size;   /* connections allowed */
    int opened; /* connections open, free or in use */
    ly_conn *free;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static const char *const tables[LY_STORE_NTABLES] = {
    "programs",    "members",          "member_cards", "api_keys",         "accounts",
    "entries",     "postings",         "lots",         "lot_consumptions", "events",
    "redemptions", "idempotency_keys", "rules",        "rule_usage",       "event_rules"};

static const char *const invariants[LY_VERIFY_COUNT] = {
    [LY_VERIFY_ENTRY_BALANCED] = "entry_balanced", [LY_VERIFY_ACCOUNT_BALANCE] = "account_balance",
    [LY_VERIFY_MEMBER_LOTS] = "member_lots",       [LY_VERIFY_LOT_BOUNDS] = "lot_bounds",
    [LY_VERIFY_LOT_CONSUMED] = "lot_consumed",     [LY_VERIFY_EVENT_ENTRY] = "event_entry",
};

/* Created by ly_store_migrate before anything else, in both dialects. */
static const char migrations_table_sql[] = "CREATE TABLE IF NOT EXISTS schema_migrations (\n"
                                           "    version INTEGER PRIMARY KEY,\n"
                                           "    name TEXT NOT NULL,\n"
                                           "    applied_at BIGINT NOT NULL\n"
                                           ")";

static const char *const by_names[LY_BY_COUNT] = {"external_id", "email", "phone", "card"};

/* The unique constraints of the schema, the field each one protects and what
 * a clash means. */
static const struct {
    const char *constraint;
    const char *field;
    const char *message;
} conflicts[] = {
    {"members_external_id_key", "external_id", "external_id is already used by another member"},
    {"members_email_key", "email", "email is already used by another member"},
    {"members_phone_key", "phone", "phone is already used by another member"},
    {"member_cards_pkey", "card", "card is already attached to a member"},
    {"api_keys_pkey", "id", "a key with this id already exists"},
    {"events_ext_id_key", "id", "an event with this id already exists"},
    {"idempotency_keys_pkey", "idempotency_key",
     "this idempotency_key was stored meanwhile by another request"},
    {"rules_version_key", "version", "this version of the rule already exists"},
    {"rules_current_key", "rule_id", "the rule was changed meanwhile by another request"},
    {"event_rules_pkey", "rule_row", "the event already has a row for this rule version"},
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int is_postgres_url(const char *url)
{
    return strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0;
}

int ly_store_open(const char *url, int pool_size, ly_store **out, ly_error *err)
{
    *out = NULL;
    if (!url || !*url)
        return ly_error_set(err, LY_EINVAL, NULL, "url", "no database given");
    if (pool_size < 1)
        return ly_error_set(err, LY_EINVAL, NULL, "pool_size", "pool_size must be at least 1");
    ly_store *s = calloc(1, sizeof *s);
    if (!s || !(s->url = strdup(url))) {
        free(s);
        return ly__store_nomem(err);
    }
    s->ops = is_postgres_url(url) ? &ly__postgres_ops : &ly__sqlite_ops;
    s->size = pool_size;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    /* One connection at once, so that a wrong URL is reported here. */
    int rc = s->ops->open(s->url, &s->free, err);
    if (rc < 0) {
        ly_store_close(s);
        return rc;
    }
    s->opened = 1;
    *out = s;
    return 0;
}

void ly_store_close(ly_store *s)
{
    if (!s)
        return;
    while (s->free) {
        ly_conn *c = s->free;
        s->free = c->next;
        s->ops->close(c);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->url);
    free(s);
}

const char *ly_store_backend(const ly_store *s)
{
    return s->ops->name;
}

/* Gives a slot back after a connection could not be opened or was dropped. */
static void drop_slot(ly_store *s)
{
    pthread_mutex_lock(&s->mu);
    s->opened--;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

ly_conn *ly_store_acquire(ly_store *s, ly_error *err)
{
    pthread_mutex_lock(&s->mu);
    while (!s->free && s->opened >= s->size)
        pthread_cond_wait(&s->cv, &s->mu);
    ly_conn *c = s->free;
    if (c)
        s->free = c->next;
    else
        s->opened++;
    pthread_mutex_unlock(&s->mu);

    if (!c) {
        if (s->ops->open(s->url, &c, err) < 0) {
            drop_slot(s);
            return NULL;
        }
    } else if (s->ops->check && s->ops->check(c, err) < 0) {
        s->ops->close(c);
        drop_slot(s);
        return NULL;
    }
    c->next = NULL;
    c->pool = s;
    return c;
}

/* Idle connections let go of read snapshots older than a commit just made. */
static void release_snapshots(ly_store *s)
{
    pthread_mutex_lock(&s->mu);
    for (ly_conn *c = s->free; c; c = c->next)
        c->ops->release_snapshot(c);
    pthread_mutex_unlock(&s->mu);
}

void ly_store_release(ly_store *s, ly_conn *c)
{
    if (!c)
        return;
    s->ops->reset(c);
    c->txn = 0;
    pthread_mutex_lock(&s->mu);
    c->next = s->free;
    s->free = c;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Applies one migration in its own transaction, unless a concurrent run
 * already did. */
static int apply_migration(ly_conn *c, const ly_migration *m, int *applied, ly_error *err)
{
    const ly_store_ops *ops = c->ops;
    int done = 0;
    int rc = ops->begin_write(c, err);
    if (rc < 0)
        return rc;
    if ((rc = ops->migration_applied(c, m->version, &done, err)) < 0 || done)
        goto out;
    if ((rc = ops->exec_script(c, m->sql, err)) < 0 ||
        (rc = ops->migration_record(c, m, now_ms(), err)) < 0)
        goto out;
    if ((rc = ops->commit(c, err)) == 0)
        (*applied)++;
    return rc;
out:
    ops->rollback(c);
    return rc;
}

int ly_store_migrate(ly_store *s, int *applied, ly_error *err)
{
    ly_error local;
    if (!err)
        err = &local;
    int count = 0;
    ly_conn *c = ly_store_acquire(s, err);
    if (!c)
        return err->rc;
    int rc = s->ops->migrate_lock(c, 1, err);
    if (rc < 0)
        goto out;
    rc = s->ops->exec_script(c, migrations_table_sql, err);
    for (const ly_migration *m = s->ops->migrations; rc == 0 && m->version; m++)
        rc = apply_migration(c, m, &count, err);
    int unlock = s->ops->migrate_lock(c, 0, rc < 0 ? NULL : err);
    if (rc == 0)
        rc = unlock;
out:
    ly_store_release(s, c);
    if (applied)
        *applied = count;
    return rc;
}

int ly_store_schema_version(ly_store *s, int *version, ly_error *err)
{
    ly_error local;
    if (!err)
        err = &local;
    *version = 0;
    ly_conn *c = ly_store_acquire(s, err);
    if (!c)
        return err->rc;
    int rc = s->ops->schema_version(c, version, err);
    ly_store_release(s, c);
    return rc;
}

int ly_store_latest_version(const ly_store *s)
{
    int v = 0;
    for (const ly_migration *m = s->ops->migrations; m->version; m++)
        if (m->version > v)
            v = m->version;
    return v;
}

int ly_store_begin_write(ly_conn *c, ly_error *err)
{
    int rc = c->ops->begin_write(c, err);
    c->txn = rc == LY_OK ? 2 : 0;
    return rc;
}

int ly_store_begin_read(ly_conn *c, ly_error *err)
{
    int rc = c->ops->begin_read(c, err);
    c->txn = rc == LY_OK ? 1 : 0;
    return rc;
}

int ly_store_commit(ly_conn *c, ly_error *err)
{
    int wrote = c->txn == 2;
    c->txn = 0; /* a failed commit rolls back by itself */
    int rc = c->ops->commit(c, err);
    if (rc == LY_OK && wrote && c->ops->release_snapshot && c->pool)
        release_snapshots(c->pool);
    return rc;
}

void ly_store_rollback(ly_conn *c)
{
    c->txn = 0;
    c->ops->rollback(c);
}

int ly_store_in_transaction(const ly_conn *c)
{
    return c->txn;
}

int ly_store_program_get(ly_conn *c, ly_arena *a, int64_t program_id, ly_program *out,
                         ly_error *err)
{
    return c->ops->program_get(c, a, program_id, out, err);
}

int ly_store_program_put(ly_conn *c, const ly_program *p, ly_error *err)
{
    return c->ops->program_put(c, p, err);
}

int ly_store_member_insert(ly_conn *c, ly_member *m, ly_error *err)
{
    return c->ops->member_insert(c, m, err);
}

int ly_store_member_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, ly_member *out,
                        ly_error *err)
{
    return c->ops->member_get(c, a, program_id, id, out, err);
}

int ly_store_member_find(ly_conn *c, ly_arena *a, int64_t program_id, const char *by,
                         const char *value, ly_member *out, ly_error *err)
{
    for (int i = 0; i < LY_BY_COUNT; i++)
        if (by && strcmp(by, by_names[i]) == 0)
            return c->ops->member_find(c, a, program_id, i, value, out, err);
    return ly_error_set(err, LY_EINVAL, NULL, "by",
                        "members are found by external_id, email, phone or card");
}

int ly_store_member_update(ly_conn *c, const ly_member *m, ly_error *err)
{
    return c->ops->member_update(c, m, err);
}

int ly_store_member_list(ly_conn *c, ly_arena *a, int64_t program_id, int64_t after_id, int limit,
                         ly_member **out, size_t *n, ly_error *err)
{
    *out = NULL;
    *n = 0;
    if (limit < 0)
        return ly_error_set(err, LY_EINVAL, NULL, "limit", "limit must not be negative");
    if (limit == 0)
        return 0;
    return c->ops->member_list(c, a, program_id, after_id, limit, out, n, err);
}

int ly_store_card_attach(ly_conn *c, int64_t program_id, int64_t member_id, const char *card,
                         int64_t now, ly_error *err)
{
    return c->ops->card_attach(c, program_id, member_id, card, now, err);
}

int ly_store_key_insert(ly_conn *c, const ly_key *k, ly_error *err)
{
    return c->ops->key_insert(c, k, err);
}

int ly_store_key_get(ly_conn *c, ly_arena *a, const char *id, ly_key *out, ly_error *err)
{
    return c->ops->key_get(c, a, id, out, err);
}

int ly_store_key_list(ly_conn *c, ly_arena *a, int64_t program_id, ly_key **out, size_t *n,
                      ly_error *err)
{
    return c->ops->key_list(c, a, program_id, out, n, err);
}

int ly_store_key_revoke(ly_conn *c, int64_t program_id, const char *id, int64_t now, ly_error *err)
{
    return c->ops->key_revoke(c, program_id, id, now, err);
}

int ly_store_member_lock(ly_conn *c, int64_t program_id, int64_t member_id, int *active,
                         ly_error *err)
{
    return c->ops->member_lock(c, program_id, member_id, active, err);
}

int ly_store_member_touch(ly_conn *c, int64_t program_id, int64_t member_id, int64_t at,
                          ly_error *err)
{
    return c->ops->member_touch(c, program_id, member_id, at, err);
}

/* The engine builds postings; one that names no account, or two that name
 * the same one, is its bug. */
static int check_postings(const ly_posting *p, size_t n, ly_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!p[i].kind || !p[i].asset)
            return ly_error_set(err, LY_EINTERNAL, NULL, NULL,
                                "posting %zu names no account kind or asset", i);
        for (size_t j = 0; j < i; j++)
            if (p[j].member_id == p[i].member_id && strcmp(p[j].kind, p[i].kind) == 0 &&
                strcmp(p[j].asset, p[i].asset) == 0)
                return ly_error_set(err, LY_EINTERNAL, NULL, NULL,
                                    "an entry posts twice to account %s %s of member %" PRId64,
                                    p[i].kind, p[i].asset, p[i].member_id);
    }
    return 0;
}

int ly_store_entry_insert(ly_conn *c, ly_entry *e, const ly_posting *p, size_t n, ly_error *err)
{
    int rc = check_postings(p, n, err);
    return rc < 0 ? rc : c->ops->entry_insert(c, e, p, n, err);
}

int ly_store_entry_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, ly_entry *out,
                       ly_error *err)
{
    return c->ops->entry_get(c, a, program_id, id, out, err);
}

int ly_store_account_balance(ly_conn *c, int64_t program_id, int64_t member_id, const char *kind,
                             const char *asset, int64_t *balance, ly_error *err)
{
    return c->ops->account_balance(c, program_id, member_id, kind, asset, balance, err);
}

int ly_store_lot_insert(ly_conn *c, ly_lot *l, ly_error *err)
{
    return c->ops->lot_insert(c, l, err);
}

int ly_store_lots_open(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                       const char *asset, ly_lot **out, size_t *n, ly_error *err)
{
    return c->ops->lots_open(c, a, program_id, member_id, asset, out, n, err);
}

int ly_store_member_balances(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                             int64_t as_of, int max_groups, ly_asset_balance out[2], ly_error *err)
{
    ly__balance_row *rows;
    size_t n;
    memset(out, 0, 2 * sizeof *out);
    int rc =
        c->ops->member_balances(c, a, program_id, member_id, as_of, max_groups, &rows, &n, err);
    if (rc != LY_OK)
        return rc;
    size_t ngroups = 0;
    for (size_t i = 0; i < n; i++)
        ngroups += rows[i].kind == 1;
    if (ngroups && !(out[0].lots.groups = ly_arena_calloc(a, ngroups * sizeof(ly_lot_group))))
        return ly__store_nomem(err);
    for (size_t i = 0; i < n; i++) {
        ly_asset_balance *b = &out[rows[i].points ? 0 : 1];
        if (rows[i].kind == 0 && rows[i].asset_known) {
            b->balance = rows[i].v[0];
            b->lots.pending = rows[i].v[1];
            b->lots.expired = rows[i].v[2];
        } else if (rows[i].kind == 1 && rows[i].points) {
            /* In date order, whatever order the rows came in (few, and
             * sorted already as a rule). */
            ly_lot_group *g = b->lots.groups, x = {rows[i].v[0], rows[i].v[1]};
            size_t k = b->lots.ngroups++;
            for (; k > 0 && g[k - 1].expires_at > x.expires_at; k--)
                g[k] = g[k - 1];
            g[k] = x;
        }
    }
    return LY_OK;
}

int ly_store_lots_of_entry(ly_conn *c, ly_arena *a, int64_t program_id, int64_t entry_id,
                           ly_lot **out, size_t *n, ly_error *err)
{
    return c->ops->lots_of_entry(c, a, program_id, entry_id, out, n, err);
}

int ly_store_consumption_insert(ly_conn *c, int64_t program_id, const ly_consumption *k,
                                ly_error *err)
{
    return c->ops->consumption_insert(c, program_id, k, err);
}

int ly_store_lot_forgiven(ly_conn *c, int64_t program_id, int64_t lot_id, int64_t *out,
                          ly_error *err)
{
    return c->ops->lot_forgiven(c, program_id, lot_id, out, err);
}

int ly_store_lot_forgive(ly_conn *c, int64_t program_id, int64_t lot_id, int64_t delta,
                         ly_error *err)
{
    return c->ops->lot_forgive(c, program_id, lot_id, delta, err);
}

int ly_store_consumptions_of_entry(ly_conn *c, ly_arena *a, int64_t program_id, int64_t entry_id,
                                   ly_consumption **out, size_t *n, ly_error *err)
{
    return c->ops->consumptions_of_entry(c, a, program_id, entry_id, out, n, err);
}

/* Lists answer nothing for a limit of 0; a negative one is a mistake. */
static int check_limit(int limit, size_t *n, ly_error *err)
{
    *n = 0;
    if (limit < 0)
        return ly_error_set(err, LY_EINVAL, NULL, "limit", "limit must not be negative");
    return limit;
}

int ly_store_lots_expired(ly_conn *c, ly_arena *a, int64_t program_id, int64_t as_of, int limit,
                          ly_lot **out, size_t *n, ly_error *err)
{
    *out = NULL;
    int rc = check_limit(limit, n, err);
    return rc <= 0 ? rc : c->ops->lots_expired(c, a, program_id, as_of, limit, out, n, err);
}

int ly_store_members_inactive(ly_conn *c, ly_arena *a, int64_t program_id, int64_t before,
                              int64_t after_id, int limit, int64_t **out, size_t *n, ly_error *err)
{
    *out = NULL;
    int rc = check_limit(limit, n, err);
    return rc <= 0
               ? rc
               : c->ops->members_inactive(c, a, program_id, before, after_id, limit, out, n, err);
}

int ly_store_activity(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                      int64_t before_entry, int limit, ly_activity **out, size_t *n, ly_error *err)
{
    *out = NULL;
    int rc = check_limit(limit, n, err);
    if (rc <= 0)
        return rc;
    return c->ops->activity(c, a, program_id, member_id,
                            before_entry > 0 ? before_entry : INT64_MAX, limit, out, n, err);
}

int ly_store_event_insert(ly_conn *c, ly_event *ev, ly_error *err)
{
    return c->ops->event_insert(c, ev, err);
}

int ly_store_event_next_id(ly_conn *c, int64_t *id, ly_error *err)
{
    return c->ops->event_next_id(c, id, err);
}

int ly_store_event_get(ly_conn *c, ly_arena *a, int64_t program_id, const char *ext_id,
                       ly_event *out, ly_error *err)
{
    return c->ops->event_get(c, a, program_id, ext_id, out, err);
}

int ly_store_event_get_by_id(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, ly_event *out,
                             ly_error *err)
{
    return c->ops->event_get_by_id(c, a, program_id, id, out, err);
}

int ly_store_event_update(ly_conn *c, const ly_event *ev, ly_error *err)
{
    return c->ops->event_update(c, ev, err);
}

int ly_store_redemption_insert(ly_conn *c, ly_redemption *r, ly_error *err)
{
    return c->ops->redemption_insert(c, r, err);
}

int ly_store_redemption_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id,
                            ly_redemption *out, ly_error *err)
{
    return c->ops->redemption_get(c, a, program_id, id, out, err);
}

int ly_store_redemption_cancel(ly_conn *c, const ly_redemption *r, ly_error *err)
{
    return c->ops->redemption_cancel(c, r, err);
}

int ly_store_member_purchase(ly_conn *c, int64_t program_id, int64_t member_id, int64_t at,
                             int64_t spend, int64_t count, ly_error *err)
{
    return c->ops->member_purchase(c, program_id, member_id, at, spend, count, err);
}

/* "MM-DD", digits where digits go; the backends compare it as text. */
static int is_mmdd(const char *s)
{
    static const char shape[] = "99-99";
    for (size_t i = 0; i < sizeof shape - 1; i++)
        if (!s || !s[i] || (shape[i] == '9' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i]))
            return 0;
    return s[sizeof shape - 1] == '\0';
}

int ly_store_members_by_birthday(ly_conn *c, ly_arena *a, int64_t program_id, const char *mmdd,
                                 int64_t after_id, int limit, ly_member **out, size_t *n,
                                 ly_error *err)
{
    *out = NULL;
    int rc = check_limit(limit, n, err);
    if (rc <= 0)
        return rc;
    if (!is_mmdd(mmdd))
        return ly_error_set(err, LY_EINVAL, NULL, "mmdd", "a birthday is given as MM-DD");
    return c->ops->members_by_birthday(c, a, program_id, mmdd, after_id, limit, out, n, err);
}

int ly_store_rule_insert(ly_conn *c, ly_rule_row *r, ly_error *err)
{
    return c->ops->rule_insert(c, r, err);
}

int ly_store_rule_get(ly_conn *c, ly_arena *a, int64_t program_id, const char *rule_id,
                      int64_t version, ly_rule_row *out, ly_error *err)
{
    return c->ops->rule_get(c, a, program_id, rule_id, version, out, err);
}

int ly_store_rule_list(ly_conn *c, ly_arena *a, int64_t program_id, const char *after, int limit,
                       ly_rule_row **out, size_t *n, ly_error *err)
{
    *out = NULL;
    int rc = check_limit(limit, n, err);
    if (rc < 0)
        return rc;
    return c->ops->rule_list(c, a, program_id, after, limit ? limit : INT_MAX, out, n, err);
}

int ly_store_rule_versions(ly_conn *c, ly_arena *a, int64_t program_id, const char *rule_id,
                           int64_t after, int limit, ly_rule_row **out, size_t *n, ly_error *err)
{
    return c->ops->rule_versions(c, a, program_id, rule_id, after, limit ? limit : INT_MAX, out, n,
                                 err);
}

int ly_store_rule_usage_get(ly_conn *c, int64_t program_id, const char *rule_id, int64_t member_id,
                            int64_t period_start, ly_rule_usage *out, ly_error *err)
{
    return c->ops->rule_usage_get(c, program_id, rule_id, member_id, period_start, out, err);
}

int ly_store_rule_usage_add(ly_conn *c, int64_t program_id, const char *rule_id, int64_t member_id,
                            int64_t period_start, const ly_rule_usage *d, ly_error *err)
{
    return c->ops->rule_usage_add(c, program_id, rule_id, member_id, period_start, d, err);
}

int ly_store_event_rule_insert(ly_conn *c, int64_t program_id, const ly_event_rule *r,
                               ly_error *err)
{
    return c->ops->event_rule_insert(c, program_id, r, err);
}

int ly_store_event_rules(ly_conn *c, ly_arena *a, int64_t program_id, int64_t event_id,
                         ly_event_rule **out, size_t *n, ly_error *err)
{
    return c->ops->event_rules(c, a, program_id, event_id, out, n, err);
}

int ly_store_event_rule_update(ly_conn *c, int64_t program_id, const ly_event_rule *r,
                               ly_error *err)
{
    return c->ops->event_rule_update(c, program_id, r, err);
}

int ly_store_idem_get(ly_conn *c, ly_arena *a, int64_t program_id, const char *key, ly_idem *out,
                      ly_error *err)
{
    return c->ops->idem_get(c, a, program_id, key, out, err);
}

int ly_store_idem_put(ly_conn *c, int64_t program_id, const ly_idem *i, ly_error *err)
{
    return c->ops->idem_put(c, program_id, i, err);
}

int ly_store_verify(ly_conn *c, ly_arena *a, ly_violation **out, size_t *n, ly_error *err)
{
    ly_violation *v = NULL;
    size_t k = 0;
    *out = NULL;
    *n = 0;
    for (int check = 0; check < LY_VERIFY_COUNT && k < LY_VERIFY_MAX; check++) {
        const char **details;
        size_t m;
        int rc = c->ops->verify(c, a, check, (int)(LY_VERIFY_MAX - k), &details, &m, err);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < m && k < LY_VERIFY_MAX; i++) {
            ly_violation *grown = ly__arena_grow(a, v, k, sizeof *v);
            if (!grown)
                return ly__store_nomem(err);
            v = grown;
            v[k++] = (ly_violation){invariants[check], details[i]};
        }
    }
    *out = v;
    *n = k;
    return 0;
}

int ly_store_table_counts(ly_conn *c, ly_arena *a, ly_table_count **out, size_t *n, ly_error *err)
{
    int64_t rows[LY_STORE_NTABLES];
    *out = NULL;
    *n = 0;
    int rc = c->ops->table_counts(c, rows, err);
    if (rc < 0)
        return rc;
    ly_table_count *t = ly_arena_alloc(a, sizeof *t * LY_STORE_NTABLES);
    if (!t)
        return ly__store_nomem(err);
    for (int i = 0; i < LY_STORE_NTABLES; i++)
        t[i] = (ly_table_count){tables[i], rows[i]};
    *out = t;
    *n = LY_STORE_NTABLES;
    return 0;
}

int ly__store_nomem(ly_error *err)
{
    return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
}

int ly__store_conflict(ly_error *err, const char *constraint, const char *detail)
{
    for (size_t i = 0; constraint && i < sizeof conflicts / sizeof conflicts[0]; i++)
        if (strcmp(constraint, conflicts[i].constraint) == 0)
            return ly_error_set(err, LY_ECONFLICT, "already_exists", conflicts[i].field, "%s",
                                conflicts[i].message);
    return ly_error_set(err, LY_ECONFLICT, "already_exists", NULL, "%s", detail);
}

int ly__store_overflow(ly_error *err)
{
    return ly_error_set(err, LY_EREFUSED, "balance_overflow", NULL,
                        "the balance would leave the range the ledger can hold");
}

int ly__store_not_found(ly_error *err, const char *what, int64_t id)
{
    return ly_error_set(err, LY_ENOTFOUND, NULL, NULL, "%s %" PRId64 " not found", what, id);
}

int ly__member_not_found(ly_error *err, int by)
{
    return ly_error_set(err, LY_ENOTFOUND, NULL, NULL, "no member with this %s", by_names[by]);
}

void *ly__arena_grow(ly_arena *a, void *arr, size_t n, size_t sz)
{
    if (n && (n & (n - 1)))
        return arr; /* room is left up to the next power of two */
    size_t cap = n ? n * 2 : 1;
    if (cap > SIZE_MAX / sz)
        return NULL;
    void *p = ly_arena_alloc(a, cap * sz);
    if (p && n)
        memcpy(p, arr, n * sz);
    return p;
}

int ly__member_add_card(ly_arena *a, ly_member *m, const char *card, ly_error *err)
{
    const char **cards = ly__arena_grow(a, (void *)m->cards, m->ncards, sizeof *cards);
    const char *copy = ly_arena_strdup(a, card);
    if (!cards || !copy)
        return ly__store_nomem(err);
    cards[m->ncards++] = copy;
    m->cards = cards;
    return 0;
}

ly_member *ly__member_in(ly_member *ms, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ms[mid].id == id)
            return &ms[mid];
        if (ms[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int64_t ly_store_changes(ly_conn *c)
{
    return c->ops->changes ? c->ops->changes(c) : -1;
}

int ly_store_savepoint(ly_conn *c, ly_error *err)
{
    return c->ops->savepoint(c, 0, err);
}

int ly_store_savepoint_release(ly_conn *c, ly_error *err)
{
    return c->ops->savepoint(c, 1, err);
}

void ly_store_savepoint_rollback(ly_conn *c)
{
    ly_error ignored;
    /* After ROLLBACK TO the savepoint still exists: release it too. */
    if (c->ops->savepoint(c, 2, &ignored) == LY_OK)
        c->ops->savepoint(c, 1, &ignored);
}
