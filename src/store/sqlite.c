/* The SQLite backend: one database file in WAL mode, one sqlite3 handle per
 * connection, every statement prepared once per connection (on first use,
 * since the tables exist only after the migrations) and kept. */
#include "store/store_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define SQ_BUSY_TIMEOUT_MS 5000
#define SQ_MEMBER_COLS                                                                             \
    "id, program_id, external_id, email, phone, name, birthdate, attributes, status, "             \
    "created_at, updated_at"
#define SQ_KEY_COLS "id, program_id, scope, name, hash, created_at, revoked_at"

enum {
    SQ_BEGIN_WRITE,
    SQ_BEGIN_READ,
    SQ_COMMIT,
    SQ_ROLLBACK,
    SQ_SCHEMA_EXISTS,
    SQ_SCHEMA_VERSION,
    SQ_MIGRATION_APPLIED,
    SQ_MIGRATION_RECORD,
    SQ_PROGRAM_GET,
    SQ_PROGRAM_PUT,
    SQ_MEMBER_INSERT,
    SQ_MEMBER_GET,
    SQ_MEMBER_BY_EXTERNAL_ID, /* the four lookups in the order of LY_BY_* */
    SQ_MEMBER_BY_EMAIL,
    SQ_MEMBER_BY_PHONE,
    SQ_MEMBER_BY_CARD,
    SQ_MEMBER_UPDATE,
    SQ_MEMBER_LIST,
    SQ_CARDS_RANGE,
    SQ_CARD_ATTACH,
    SQ_KEY_INSERT,
    SQ_KEY_GET,
    SQ_KEY_LIST,
    SQ_KEY_REVOKE,
    SQ_TABLE_COUNTS,
    SQ_NSTMTS
};

_Static_assert(SQ_MEMBER_BY_CARD - SQ_MEMBER_BY_EXTERNAL_ID == LY_BY_CARD - LY_BY_EXTERNAL_ID,
               "lookups follow LY_BY_*");

static const struct {
    const char *name;
    const char *sql;
} sq_stmts[SQ_NSTMTS] = {
    [SQ_BEGIN_WRITE] = {"begin_write", "BEGIN IMMEDIATE"},
    [SQ_BEGIN_READ] = {"begin_read", "BEGIN"},
    [SQ_COMMIT] = {"commit", "COMMIT"},
    [SQ_ROLLBACK] = {"rollback", "ROLLBACK"},
    [SQ_SCHEMA_EXISTS] = {"schema_exists", "SELECT count(*) FROM sqlite_master "
                                           "WHERE type = 'table' AND name = 'schema_migrations'"},
    [SQ_SCHEMA_VERSION] = {"schema_version",
                           "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"},
    [SQ_MIGRATION_APPLIED] = {"migration_applied",
                              "SELECT 1 FROM schema_migrations WHERE version = ?1"},
    [SQ_MIGRATION_RECORD] = {"migration_record", "INSERT INTO schema_migrations "
                                                 "(version, name, applied_at) VALUES (?1, ?2, ?3)"},
    [SQ_PROGRAM_GET] = {"program_get",
                        "SELECT id, name, currency, timezone, point_value_minor, settings, "
                        "created_at, updated_at FROM programs WHERE id = ?1"},
    [SQ_PROGRAM_PUT] = {"program_put",
                        "UPDATE programs SET name = ?2, currency = ?3, timezone = ?4, "
                        "point_value_minor = ?5, settings = COALESCE(?6, '{}'), updated_at = ?7 "
                        "WHERE id = ?1"},
    [SQ_MEMBER_INSERT] = {"member_insert",
                          "INSERT INTO members (program_id, external_id, email, phone, name, "
                          "birthdate, attributes, status, created_at, updated_at) VALUES (?1, ?2, "
                          "?3, ?4, ?5, ?6, COALESCE(?7, '{}'), COALESCE(?8, 'active'), ?9, ?10)"},
    [SQ_MEMBER_GET] = {"member_get", "SELECT " SQ_MEMBER_COLS " FROM members "
                                     "WHERE program_id = ?1 AND id = ?2"},
    [SQ_MEMBER_BY_EXTERNAL_ID] = {"member_by_external_id",
                                  "SELECT " SQ_MEMBER_COLS " FROM members "
                                  "WHERE program_id = ?1 AND external_id = ?2"},
    [SQ_MEMBER_BY_EMAIL] = {"member_by_email", "SELECT " SQ_MEMBER_COLS " FROM members "
                                               "WHERE program_id = ?1 AND email = ?2"},
    [SQ_MEMBER_BY_PHONE] = {"member_by_phone", "SELECT " SQ_MEMBER_COLS " FROM members "
                                               "WHERE program_id = ?1 AND phone = ?2"},
    [SQ_MEMBER_BY_CARD] = {"member_by_card",
                           "SELECT " SQ_MEMBER_COLS " FROM members WHERE program_id = ?1 AND id = "
                           "(SELECT member_id FROM member_cards WHERE program_id = ?1 AND card = "
                           "?2)"},
    [SQ_MEMBER_UPDATE] = {"member_update",
                          "UPDATE members SET external_id = ?3, email = ?4, phone = ?5, name = ?6, "
                          "birthdate = ?7, attributes = COALESCE(?8, '{}'), "
                          "status = COALESCE(?9, status), updated_at = ?10 "
                          "WHERE program_id = ?1 AND id = ?2"},
    [SQ_MEMBER_LIST] = {"member_list", "SELECT " SQ_MEMBER_COLS " FROM members "
                                       "WHERE program_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"},
    [SQ_CARDS_RANGE] = {"cards_range",
                        "SELECT member_id, card FROM member_cards WHERE program_id = ?1 "
                        "AND member_id > ?2 AND member_id <= ?3 "
                        "ORDER BY member_id, created_at, card"},
    [SQ_CARD_ATTACH] = {"card_attach",
                        "INSERT INTO member_cards (program_id, card, member_id, created_at) "
                        "SELECT ?1, ?2, id, ?4 FROM members WHERE program_id = ?1 AND id = ?3"},
    [SQ_KEY_INSERT] = {"key_insert", "INSERT INTO api_keys (" SQ_KEY_COLS ") "
                                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULLIF(?7, 0))"},
    [SQ_KEY_GET] = {"key_get", "SELECT " SQ_KEY_COLS " FROM api_keys WHERE id = ?1"},
    [SQ_KEY_LIST] = {"key_list", "SELECT " SQ_KEY_COLS " FROM api_keys "
                                 "WHERE program_id = ?1 ORDER BY created_at, id"},
    [SQ_KEY_REVOKE] = {"key_revoke", "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3) "
                                     "WHERE program_id = ?1 AND id = ?2"},
    [SQ_TABLE_COUNTS] = {"table_counts",
                         "SELECT (SELECT count(*) FROM programs), (SELECT count(*) FROM members), "
                         "(SELECT count(*) FROM member_cards), (SELECT count(*) FROM api_keys)"},
};

/* Failures of the file or the disk: the store is unavailable, not the
 * request wrong. */
static const struct {
    int code; /* primary result code */
    int rc;
    const char *what;
} sq_errors[] = {
    {SQLITE_BUSY, LY_ERETRY, "the database is busy"},
    {SQLITE_LOCKED, LY_ERETRY, "the database is locked"},
    {SQLITE_FULL, LY_ESTORE, "the disk is full"},
    {SQLITE_IOERR, LY_ESTORE, "the database file cannot be read or written"},
    {SQLITE_CANTOPEN, LY_ESTORE, "the database file cannot be opened"},
    {SQLITE_READONLY, LY_ESTORE, "the database is read-only"},
    {SQLITE_CORRUPT, LY_ESTORE, "the database file is corrupt"},
    {SQLITE_NOTADB, LY_ESTORE, "the file is not a database"},
    {SQLITE_PERM, LY_ESTORE, "access to the database file is denied"},
    {SQLITE_NOLFS, LY_ESTORE, "the database file is too large"},
    {SQLITE_NOMEM, LY_ENOMEM, "out of memory"},
};

/* "UNIQUE constraint failed: members.program_id, members.email": the last
 * column names the field. */
static const struct {
    const char *column;
    const char *field;
} sq_unique[] = {
    {"members.external_id", "external_id"}, {"members.email", "email"}, {"members.phone", "phone"},
    {"member_cards.card", "card"},          {"api_keys.id", "id"},
};

typedef struct sq_conn {
    ly_conn base;
    sqlite3 *db;
    sqlite3_stmt *stmt[SQ_NSTMTS];
} sq_conn;

typedef int (*sq_reader)(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err);

static sq_conn *sq(ly_conn *c)
{
    return (sq_conn *)c;
}

/* Does msg list column (followed by a comma or its end)? */
static int lists_column(const char *msg, const char *column)
{
    size_t n = strlen(column);
    for (const char *p = strstr(msg, column); p; p = strstr(p + 1, column))
        if ((p == msg || p[-1] == ' ') && (p[n] == '\0' || p[n] == ','))
            return 1;
    return 0;
}

static int sq_constraint(int ext, const char *msg, ly_error *err)
{
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY) {
        for (size_t i = 0; i < sizeof sq_unique / sizeof sq_unique[0]; i++)
            if (lists_column(msg, sq_unique[i].column))
                return ly__store_conflict(err, sq_unique[i].field);
        return ly_error_set(err, LY_ECONFLICT, "already_exists", NULL, "%s", msg);
    }
    if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL,
                            "the program or member referred to does not exist");
    return ly_error_set(err, LY_EINVAL, NULL, NULL, "refused by the database: %s", msg);
}

/* Turns the connection's last error into an LY_E* code and a message. */
static int sq_fail(sq_conn *c, const char *what, ly_error *err)
{
    int ext = sqlite3_extended_errcode(c->db);
    const char *msg = sqlite3_errmsg(c->db);
    if ((ext & 0xff) == SQLITE_CONSTRAINT)
        return sq_constraint(ext, msg, err);
    for (size_t i = 0; i < sizeof sq_errors / sizeof sq_errors[0]; i++)
        if ((ext & 0xff) == sq_errors[i].code)
            return ly_error_set(err, sq_errors[i].rc, NULL, NULL, "%s (%s: %s)", sq_errors[i].what,
                                what, msg);
    return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "database error in %s: %s", what, msg);
}

static int sq_bind(sqlite3_stmt *st, const ly_sqlparam *p, int n)
{
    int rc = SQLITE_OK;
    for (int i = 0; i < n && rc == SQLITE_OK; i++) {
        if (p[i].type == 'i')
            rc = sqlite3_bind_int64(st, i + 1, p[i].i);
        else if (p[i].type == 'b')
            rc = sqlite3_bind_blob(st, i + 1, p[i].b, (int)p[i].len, SQLITE_STATIC);
        else if (p[i].s)
            rc = sqlite3_bind_text(st, i + 1, p[i].s, -1, SQLITE_STATIC);
        else
            rc = sqlite3_bind_null(st, i + 1);
    }
    return rc;
}

/* Ends a use of a statement. reset repeats the error the last step already
 * reported, so its result is not looked at. */
static void sq_done(sqlite3_stmt *st)
{
    (void)sqlite3_reset(st);
    (void)sqlite3_clear_bindings(st);
}

/* Prepares statement id (once per connection) and binds p; the caller steps
 * it and ends with sq_done. */
static int sq_start(sq_conn *c, int id, const ly_sqlparam *p, int n, sqlite3_stmt **out,
                    ly_error *err)
{
    if (!c->stmt[id] && sqlite3_prepare_v3(c->db, sq_stmts[id].sql, -1, SQLITE_PREPARE_PERSISTENT,
                                           &c->stmt[id], NULL) != SQLITE_OK)
        return sq_fail(c, sq_stmts[id].name, err);
    if (sq_bind(c->stmt[id], p, n) != SQLITE_OK) {
        int rc = sq_fail(c, sq_stmts[id].name, err);
        sq_done(c->stmt[id]);
        return rc;
    }
    *out = c->stmt[id];
    return 0;
}

/* 1 for a row, 0 when done, or a negative code (err set). */
static int sq_step(sq_conn *c, int id, sqlite3_stmt *st, ly_error *err)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return sq_fail(c, sq_stmts[id].name, err);
}

/* Runs a statement that returns no rows; *changes (may be NULL) receives
 * how many rows it changed. */
static int sq_exec(sq_conn *c, int id, const ly_sqlparam *p, int n, int64_t *changes, ly_error *err)
{
    sqlite3_stmt *st;
    int rc = sq_start(c, id, p, n, &st, err);
    if (rc < 0)
        return rc;
    rc = sq_step(c, id, st, err);
    if (rc > 0)
        rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL, "%s returned rows", sq_stmts[id].name);
    if (rc == 0 && changes)
        *changes = sqlite3_changes(c->db);
    sq_done(st);
    return rc;
}

/* Reads the one row of statement id into out; LY_ENOTFOUND (err not set)
 * when there is none. */
static int sq_one(sq_conn *c, int id, const ly_sqlparam *p, int n, ly_arena *a, sq_reader read,
                  void *out, ly_error *err)
{
    sqlite3_stmt *st;
    int rc = sq_start(c, id, p, n, &st, err);
    if (rc < 0)
        return rc;
    rc = sq_step(c, id, st, err);
    if (rc > 0)
        rc = read(st, a, out, err);
    else if (rc == 0)
        rc = LY_ENOTFOUND;
    sq_done(st);
    return rc;
}

/* Reads every row of statement id into an arena array of elements of size
 * sz. */
static int sq_all(sq_conn *c, int id, const ly_sqlparam *p, int n, ly_arena *a, sq_reader read,
                  size_t sz, void **out, size_t *count, ly_error *err)
{
    sqlite3_stmt *st;
    char *arr = NULL;
    size_t k = 0;
    int rc = sq_start(c, id, p, n, &st, err);
    if (rc < 0)
        return rc;
    while ((rc = sq_step(c, id, st, err)) > 0) {
        char *grown = ly__arena_grow(a, arr, k, sz);
        if (!grown) {
            rc = ly__store_nomem(err);
            break;
        }
        arr = grown;
        if ((rc = read(st, a, arr + k * sz, err)) < 0)
            break;
        k++;
    }
    sq_done(st);
    *out = rc < 0 ? NULL : arr;
    *count = rc < 0 ? 0 : k;
    return rc;
}

/* Column col as an arena string, NULL for SQL NULL. */
static int sq_text(sqlite3_stmt *st, int col, ly_arena *a, const char **out, ly_error *err)
{
    *out = NULL;
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return 0;
    const unsigned char *t = sqlite3_column_text(st, col);
    if (t)
        *out = ly_arena_strndup(a, (const char *)t, (size_t)sqlite3_column_bytes(st, col));
    return *out ? 0 : ly__store_nomem(err);
}

/* Reads text columns first..first+n-1 into fields[0..n). */
static int sq_texts(sqlite3_stmt *st, int first, ly_arena *a, const char **fields[], int n,
                    ly_error *err)
{
    for (int i = 0; i < n; i++)
        if (sq_text(st, first + i, a, fields[i], err) < 0)
            return LY_ENOMEM;
    return 0;
}

static int sq_read_program(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    ly_program *p = out;
    memset(p, 0, sizeof *p);
    const char **texts[] = {&p->name, &p->currency, &p->timezone};
    p->id = sqlite3_column_int64(st, 0);
    p->point_value_minor = sqlite3_column_int64(st, 4);
    p->created_at = sqlite3_column_int64(st, 6);
    p->updated_at = sqlite3_column_int64(st, 7);
    if (sq_texts(st, 1, a, texts, 3, err) < 0 || sq_text(st, 5, a, &p->settings, err) < 0)
        return LY_ENOMEM;
    return 0;
}

static int sq_read_member(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    ly_member *m = out;
    memset(m, 0, sizeof *m);
    const char **texts[] = {&m->external_id, &m->email,      &m->phone, &m->name,
                            &m->birthdate,   &m->attributes, &m->status};
    m->id = sqlite3_column_int64(st, 0);
    m->program_id = sqlite3_column_int64(st, 1);
    m->created_at = sqlite3_column_int64(st, 9);
    m->updated_at = sqlite3_column_int64(st, 10);
    return sq_texts(st, 2, a, texts, 7, err);
}

static int sq_read_key(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    ly_key *k = out;
    memset(k, 0, sizeof *k);
    const char **texts[] = {&k->scope, &k->name};
    k->program_id = sqlite3_column_int64(st, 1);
    k->created_at = sqlite3_column_int64(st, 5);
    k->revoked_at = sqlite3_column_int64(st, 6); /* NULL reads as 0 */
    if (sq_text(st, 0, a, &k->id, err) < 0 || sq_texts(st, 2, a, texts, 2, err) < 0)
        return LY_ENOMEM;
    const void *hash = sqlite3_column_blob(st, 4);
    if (!hash || sqlite3_column_bytes(st, 4) != (int)sizeof k->hash)
        return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "key %s has a malformed hash", k->id);
    memcpy(k->hash, hash, sizeof k->hash);
    return 0;
}

/* Loads the cards of the members ms[0..n) (sorted by id, every member of the
 * program with an id in (after_id, last id]). */
static int sq_cards(sq_conn *c, ly_arena *a, int64_t program_id, int64_t after_id, ly_member *ms,
                    size_t n, ly_error *err)
{
    if (n == 0)
        return 0;
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(after_id), LY_PI(ms[n - 1].id)};
    sqlite3_stmt *st;
    int rc = sq_start(c, SQ_CARDS_RANGE, p, LY_NPARAMS(p), &st, err);
    if (rc < 0)
        return rc;
    while ((rc = sq_step(c, SQ_CARDS_RANGE, st, err)) > 0) {
        ly_member *m = ly__member_in(ms, n, sqlite3_column_int64(st, 0));
        const char *card = (const char *)sqlite3_column_text(st, 1);
        if (!card)
            rc = ly__store_nomem(err);
        else if (m)
            rc = ly__member_add_card(a, m, card, err);
        if (rc < 0)
            break;
    }
    sq_done(st);
    return rc;
}

static int sq_run(ly_conn *c, int id, ly_error *err)
{
    return sq_exec(sq(c), id, NULL, 0, NULL, err);
}

static void sq_rollback(ly_conn *c)
{
    if (!sqlite3_get_autocommit(sq(c)->db))
        (void)sq_run(c, SQ_ROLLBACK, NULL);
}

static void sq_close(ly_conn *c)
{
    sq_conn *s = sq(c);
    for (int i = 0; i < SQ_NSTMTS; i++)
        (void)sqlite3_finalize(s->stmt[i]);
    (void)sqlite3_close_v2(s->db);
    free(s);
}

/* Before SQLite initialises: no global allocation statistics, whose mutex
 * every connection would otherwise contend on. */
static void sq_configure(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int sq_open(const char *path, ly_conn **out, ly_error *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sq_configure);
    static const char *const setup[] = {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                                        "PRAGMA foreign_keys=ON"};
    if (strcmp(path, ":memory:") == 0)
        return ly_error_set(err, LY_EINVAL, NULL, "url",
                            "an in-memory database cannot be shared by a pool: give a file path");
    sq_conn *c = calloc(1, sizeof *c);
    if (!c)
        return ly__store_nomem(err);
    c->base.ops = &ly__sqlite_ops;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = 0;
    if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
        rc = c->db ? sq_fail(c, path, err) : ly__store_nomem(err);
        goto fail;
    }
    if (sqlite3_extended_result_codes(c->db, 1) != SQLITE_OK ||
        sqlite3_busy_timeout(c->db, SQ_BUSY_TIMEOUT_MS) != SQLITE_OK) {
        rc = sq_fail(c, path, err);
        goto fail;
    }
    for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++)
        if (sqlite3_exec(c->db, setup[i], NULL, NULL, NULL) != SQLITE_OK) {
            rc = sq_fail(c, setup[i], err);
            goto fail;
        }
    *out = &c->base;
    return 0;
fail:
    sq_close(&c->base);
    return rc;
}

/* Each migration runs under BEGIN IMMEDIATE, which is lock enough. */
static int sq_migrate_lock(ly_conn *c, int lock, ly_error *err)
{
    (void)c;
    (void)lock;
    (void)err;
    return 0;
}

static int sq_exec_script(ly_conn *c, const char *sql, ly_error *err)
{
    if (sqlite3_exec(sq(c)->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(sq(c), "migration", err);
    return 0;
}

static int sq_migration_applied(ly_conn *c, int version, int *applied, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(version)};
    sqlite3_stmt *st;
    int rc = sq_start(sq(c), SQ_MIGRATION_APPLIED, p, LY_NPARAMS(p), &st, err);
    if (rc < 0)
        return rc;
    rc = sq_step(sq(c), SQ_MIGRATION_APPLIED, st, err);
    sq_done(st);
    *applied = rc > 0;
    return rc < 0 ? rc : 0;
}

static int sq_migration_record(ly_conn *c, const ly_migration *m, int64_t now, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(m->version), LY_PS(m->name), LY_PI(now)};
    return sq_exec(sq(c), SQ_MIGRATION_RECORD, p, LY_NPARAMS(p), NULL, err);
}

/* The single integer a statement without parameters returns. */
static int sq_scalar(sq_conn *c, int id, int64_t *v, ly_error *err)
{
    sqlite3_stmt *st;
    int rc = sq_start(c, id, NULL, 0, &st, err);
    if (rc < 0)
        return rc;
    rc = sq_step(c, id, st, err);
    if (rc == 0)
        rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL, "%s returned no row", sq_stmts[id].name);
    if (rc > 0) {
        *v = sqlite3_column_int64(st, 0);
        rc = 0;
    }
    sq_done(st);
    return rc;
}

static int sq_schema_version(ly_conn *c, int *version, ly_error *err)
{
    int64_t v = 0;
    int rc = sq_scalar(sq(c), SQ_SCHEMA_EXISTS, &v, err);
    if (rc == 0 && v)
        rc = sq_scalar(sq(c), SQ_SCHEMA_VERSION, &v, err);
    *version = rc == 0 ? (int)v : 0;
    return rc;
}

static int sq_begin_write(ly_conn *c, ly_error *err)
{
    return sq_run(c, SQ_BEGIN_WRITE, err);
}

static int sq_begin_read(ly_conn *c, ly_error *err)
{
    return sq_run(c, SQ_BEGIN_READ, err);
}

/* A failed commit leaves no transaction behind. */
static int sq_commit(ly_conn *c, ly_error *err)
{
    int rc = sq_run(c, SQ_COMMIT, err);
    if (rc < 0)
        sq_rollback(c);
    return rc;
}

static int sq_program_get(ly_conn *c, ly_arena *a, int64_t program_id, ly_program *out,
                          ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id)};
    int rc = sq_one(sq(c), SQ_PROGRAM_GET, p, LY_NPARAMS(p), a, sq_read_program, out, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, NULL, NULL, "program %" PRId64 " not found", program_id);
    return rc;
}

static int sq_program_put(ly_conn *c, const ly_program *pr, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(pr->id),
                       LY_PS(pr->name),
                       LY_PS(pr->currency),
                       LY_PS(pr->timezone),
                       LY_PI(pr->point_value_minor),
                       LY_PS(pr->settings),
                       LY_PI(pr->updated_at)};
    int64_t changed = 0;
    int rc = sq_exec(sq(c), SQ_PROGRAM_PUT, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL, "program %" PRId64 " not found", pr->id);
    return rc;
}

static int sq_member_insert(ly_conn *c, ly_member *m, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(m->program_id), LY_PS(m->external_id), LY_PS(m->email),
                       LY_PS(m->phone),      LY_PS(m->name),        LY_PS(m->birthdate),
                       LY_PS(m->attributes), LY_PS(m->status),      LY_PI(m->created_at),
                       LY_PI(m->updated_at)};
    int rc = sq_exec(sq(c), SQ_MEMBER_INSERT, p, LY_NPARAMS(p), NULL, err);
    if (rc == 0)
        m->id = sqlite3_last_insert_rowid(sq(c)->db);
    return rc;
}

static int sq_member_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, ly_member *out,
                         ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(id)};
    int rc = sq_one(sq(c), SQ_MEMBER_GET, p, LY_NPARAMS(p), a, sq_read_member, out, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, NULL, NULL, "member %" PRId64 " not found", id);
    return rc < 0 ? rc : sq_cards(sq(c), a, program_id, id - 1, out, 1, err);
}

static int sq_member_find(ly_conn *c, ly_arena *a, int64_t program_id, int by, const char *value,
                          ly_member *out, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(value)};
    int id = SQ_MEMBER_BY_EXTERNAL_ID + by;
    int rc = sq_one(sq(c), id, p, LY_NPARAMS(p), a, sq_read_member, out, err);
    if (rc == LY_ENOTFOUND)
        return ly__member_not_found(err, by);
    return rc < 0 ? rc : sq_cards(sq(c), a, program_id, out->id - 1, out, 1, err);
}

static int sq_member_update(ly_conn *c, const ly_member *m, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(m->program_id), LY_PI(m->id),         LY_PS(m->external_id),
                       LY_PS(m->email),      LY_PS(m->phone),      LY_PS(m->name),
                       LY_PS(m->birthdate),  LY_PS(m->attributes), LY_PS(m->status),
                       LY_PI(m->updated_at)};
    int64_t changed = 0;
    int rc = sq_exec(sq(c), SQ_MEMBER_UPDATE, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL, "member %" PRId64 " not found", m->id);
    return rc;
}

static int sq_member_list(ly_conn *c, ly_arena *a, int64_t program_id, int64_t after_id, int limit,
                          ly_member **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(after_id), LY_PI(limit)};
    void *arr = NULL;
    int rc = sq_all(sq(c), SQ_MEMBER_LIST, p, LY_NPARAMS(p), a, sq_read_member, sizeof(ly_member),
                    &arr, n, err);
    *out = arr;
    return rc < 0 ? rc : sq_cards(sq(c), a, program_id, after_id, *out, *n, err);
}

static int sq_card_attach(ly_conn *c, int64_t program_id, int64_t member_id, const char *card,
                          int64_t now, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(card), LY_PI(member_id), LY_PI(now)};
    int64_t changed = 0;
    int rc = sq_exec(sq(c), SQ_CARD_ATTACH, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL, "member %" PRId64 " not found",
                            member_id);
    return rc;
}

static int sq_key_insert(ly_conn *c, const ly_key *k, ly_error *err)
{
    ly_sqlparam p[] = {LY_PS(k->id),        LY_PI(k->program_id),           LY_PS(k->scope),
                       LY_PS(k->name),      LY_PB(k->hash, sizeof k->hash), LY_PI(k->created_at),
                       LY_PI(k->revoked_at)};
    return sq_exec(sq(c), SQ_KEY_INSERT, p, LY_NPARAMS(p), NULL, err);
}

static int sq_key_get(ly_conn *c, ly_arena *a, const char *id, ly_key *out, ly_error *err)
{
    ly_sqlparam p[] = {LY_PS(id)};
    int rc = sq_one(sq(c), SQ_KEY_GET, p, LY_NPARAMS(p), a, sq_read_key, out, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, NULL, NULL, "no such key");
    return rc;
}

static int sq_key_list(ly_conn *c, ly_arena *a, int64_t program_id, ly_key **out, size_t *n,
                       ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id)};
    void *arr = NULL;
    int rc =
        sq_all(sq(c), SQ_KEY_LIST, p, LY_NPARAMS(p), a, sq_read_key, sizeof(ly_key), &arr, n, err);
    *out = arr;
    return rc;
}

static int sq_key_revoke(ly_conn *c, int64_t program_id, const char *id, int64_t now, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(id), LY_PI(now)};
    int64_t changed = 0;
    int rc = sq_exec(sq(c), SQ_KEY_REVOKE, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL, "no such key");
    return rc;
}

static int sq_table_counts(ly_conn *c, int64_t rows[LY_STORE_NTABLES], ly_error *err)
{
    sqlite3_stmt *st;
    int rc = sq_start(sq(c), SQ_TABLE_COUNTS, NULL, 0, &st, err);
    if (rc < 0)
        return rc;
    rc = sq_step(sq(c), SQ_TABLE_COUNTS, st, err);
    if (rc == 0)
        rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL, "table_counts returned no row");
    for (int i = 0; rc > 0 && i < LY_STORE_NTABLES; i++)
        rows[i] = sqlite3_column_int64(st, i);
    sq_done(st);
    return rc < 0 ? rc : 0;
}

const ly_store_ops ly__sqlite_ops = {
    .name = "sqlite",
    .migrations = ly__migrations_sqlite,
    .open = sq_open,
    .close = sq_close,
    .check = NULL,
    .reset = sq_rollback,
    .migrate_lock = sq_migrate_lock,
    .exec_script = sq_exec_script,
    .migration_applied = sq_migration_applied,
    .migration_record = sq_migration_record,
    .schema_version = sq_schema_version,
    .begin_write = sq_begin_write,
    .begin_read = sq_begin_read,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .program_get = sq_program_get,
    .program_put = sq_program_put,
    .member_insert = sq_member_insert,
    .member_get = sq_member_get,
    .member_find = sq_member_find,
    .member_update = sq_member_update,
    .member_list = sq_member_list,
    .card_attach = sq_card_attach,
    .key_insert = sq_key_insert,
    .key_get = sq_key_get,
    .key_list = sq_key_list,
    .key_revoke = sq_key_revoke,
    .table_counts = sq_table_counts,
};
