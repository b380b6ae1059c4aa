/* The PostgreSQL backend through libpq: one PGconn per connection, every
 * statement prepared once per connection (named, on first use) and run with
 * text parameters and text results. */
#include "store/store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_MAXPARAMS 12
#define PG_PARAMBUF  72 /* an int64, or a 32-byte bytea as "\x" and hex */
/* The advisory lock migrations hold: "LOYALMIG" as a 64-bit integer. */
#define PG_MIGRATE_LOCK "5498711807030544711"
#define PG_MEMBER_COLS                                                                             \
    "id, program_id, external_id, email, phone, name, birthdate, attributes, status, "             \
    "created_at, updated_at"
#define PG_KEY_COLS "id, program_id, scope, name, hash, created_at, revoked_at"

enum {
    PG_BEGIN,
    PG_BEGIN_READ,
    PG_COMMIT,
    PG_ROLLBACK,
    PG_LOCK,
    PG_UNLOCK,
    PG_SCHEMA_EXISTS,
    PG_SCHEMA_VERSION,
    PG_MIGRATION_APPLIED,
    PG_MIGRATION_RECORD,
    PG_PROGRAM_GET,
    PG_PROGRAM_PUT,
    PG_MEMBER_INSERT,
    PG_MEMBER_GET,
    PG_MEMBER_BY_EXTERNAL_ID, /* the four lookups in the order of LY_BY_* */
    PG_MEMBER_BY_EMAIL,
    PG_MEMBER_BY_PHONE,
    PG_MEMBER_BY_CARD,
    PG_MEMBER_UPDATE,
    PG_MEMBER_LIST,
    PG_CARDS_RANGE,
    PG_CARD_ATTACH,
    PG_KEY_INSERT,
    PG_KEY_GET,
    PG_KEY_LIST,
    PG_KEY_REVOKE,
    PG_TABLE_COUNTS,
    PG_NSTMTS
};

_Static_assert(PG_MEMBER_BY_CARD - PG_MEMBER_BY_EXTERNAL_ID == LY_BY_CARD - LY_BY_EXTERNAL_ID,
               "lookups follow LY_BY_*");

/* The name of each row is also its prepared statement's name. */
static const struct {
    const char *name;
    const char *sql;
} pg_stmts[PG_NSTMTS] = {
    [PG_BEGIN] = {"begin", "BEGIN"},
    /* Reads see one snapshot, as on SQLite. */
    [PG_BEGIN_READ] = {"begin_read", "BEGIN ISOLATION LEVEL REPEATABLE READ"},
    [PG_COMMIT] = {"commit", "COMMIT"},
    [PG_ROLLBACK] = {"rollback", "ROLLBACK"},
    [PG_LOCK] = {"migrate_lock", "SELECT pg_advisory_lock(" PG_MIGRATE_LOCK ")"},
    [PG_UNLOCK] = {"migrate_unlock", "SELECT pg_advisory_unlock(" PG_MIGRATE_LOCK ")"},
    [PG_SCHEMA_EXISTS] = {"schema_exists", "SELECT CASE WHEN to_regclass('schema_migrations') "
                                           "IS NULL THEN 0 ELSE 1 END"},
    [PG_SCHEMA_VERSION] = {"schema_version",
                           "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"},
    [PG_MIGRATION_APPLIED] = {"migration_applied",
                              "SELECT 1 FROM schema_migrations WHERE version = $1"},
    [PG_MIGRATION_RECORD] = {"migration_record", "INSERT INTO schema_migrations "
                                                 "(version, name, applied_at) VALUES ($1, $2, $3)"},
    [PG_PROGRAM_GET] = {"program_get",
                        "SELECT id, name, currency, timezone, point_value_minor, settings, "
                        "created_at, updated_at FROM programs WHERE id = $1"},
    [PG_PROGRAM_PUT] = {"program_put",
                        "UPDATE programs SET name = $2, currency = $3, timezone = $4, "
                        "point_value_minor = $5, settings = COALESCE($6, '{}'), updated_at = $7 "
                        "WHERE id = $1"},
    [PG_MEMBER_INSERT] = {"member_insert",
                          "INSERT INTO members (program_id, external_id, email, phone, name, "
                          "birthdate, attributes, status, created_at, updated_at) VALUES ($1, $2, "
                          "$3, $4, $5, $6, COALESCE($7, '{}'), COALESCE($8, 'active'), $9, $10) "
                          "RETURNING id"},
    [PG_MEMBER_GET] = {"member_get", "SELECT " PG_MEMBER_COLS " FROM members "
                                     "WHERE program_id = $1 AND id = $2"},
    [PG_MEMBER_BY_EXTERNAL_ID] = {"member_by_external_id",
                                  "SELECT " PG_MEMBER_COLS " FROM members "
                                  "WHERE program_id = $1 AND external_id = $2"},
    [PG_MEMBER_BY_EMAIL] = {"member_by_email", "SELECT " PG_MEMBER_COLS " FROM members "
                                               "WHERE program_id = $1 AND email = $2"},
    [PG_MEMBER_BY_PHONE] = {"member_by_phone", "SELECT " PG_MEMBER_COLS " FROM members "
                                               "WHERE program_id = $1 AND phone = $2"},
    [PG_MEMBER_BY_CARD] = {"member_by_card",
                           "SELECT " PG_MEMBER_COLS " FROM members WHERE program_id = $1 AND id = "
                           "(SELECT member_id FROM member_cards WHERE program_id = $1 AND card = "
                           "$2)"},
    [PG_MEMBER_UPDATE] = {"member_update",
                          "UPDATE members SET external_id = $3, email = $4, phone = $5, name = $6, "
                          "birthdate = $7, attributes = COALESCE($8, '{}'), "
                          "status = COALESCE($9, status), updated_at = $10 "
                          "WHERE program_id = $1 AND id = $2"},
    [PG_MEMBER_LIST] = {"member_list", "SELECT " PG_MEMBER_COLS " FROM members "
                                       "WHERE program_id = $1 AND id > $2 ORDER BY id LIMIT $3"},
    [PG_CARDS_RANGE] = {"cards_range",
                        "SELECT member_id, card FROM member_cards WHERE program_id = $1 "
                        "AND member_id > $2 AND member_id <= $3 "
                        "ORDER BY member_id, created_at, card"},
    [PG_CARD_ATTACH] = {"card_attach",
                        "INSERT INTO member_cards (program_id, card, member_id, created_at) "
                        "SELECT $1::bigint, $2::text, id, $4::bigint FROM members "
                        "WHERE program_id = $1 AND id = $3"},
    [PG_KEY_INSERT] = {"key_insert", "INSERT INTO api_keys (" PG_KEY_COLS ") "
                                     "VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7::bigint, 0))"},
    [PG_KEY_GET] = {"key_get", "SELECT " PG_KEY_COLS " FROM api_keys WHERE id = $1"},
    [PG_KEY_LIST] = {"key_list", "SELECT " PG_KEY_COLS " FROM api_keys "
                                 "WHERE program_id = $1 ORDER BY created_at, id"},
    [PG_KEY_REVOKE] = {"key_revoke", "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) "
                                     "WHERE program_id = $1 AND id = $2"},
    [PG_TABLE_COUNTS] = {"table_counts",
                         "SELECT (SELECT count(*) FROM programs), (SELECT count(*) FROM members), "
                         "(SELECT count(*) FROM member_cards), (SELECT count(*) FROM api_keys)"},
};

/* SQLSTATEs (or their class, by prefix) that are not the request's fault. */
static const struct {
    const char *state;
    int rc;
} pg_states[] = {
    {"40001", LY_ERETRY}, /* serialization_failure */
    {"40P01", LY_ERETRY}, /* deadlock_detected */
    {"55P03", LY_ERETRY}, /* lock_not_available */
    {"08", LY_ESTORE},    /* connection exceptions */
    {"53", LY_ESTORE},    /* insufficient resources: disk full, out of memory, connections */
    {"57P", LY_ESTORE},   /* shutdowns, database dropped */
    {"58", LY_ESTORE},    /* system errors (I/O) */
    {"XX", LY_ESTORE},    /* internal errors, corruption */
    {"25006", LY_ESTORE}, /* read-only transaction: connected to a standby */
};

/* Unique constraints of the schema and the field each one protects. */
static const struct {
    const char *constraint;
    const char *field;
} pg_unique[] = {
    {"members_external_id_key", "external_id"},
    {"members_email_key", "email"},
    {"members_phone_key", "phone"},
    {"member_cards_pkey", "card"},
    {"api_keys_pkey", "id"},
};

typedef struct pg_conn {
    ly_conn base;
    PGconn *pg;
    unsigned char prepared[PG_NSTMTS];
} pg_conn;

typedef int (*pg_reader)(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err);

static pg_conn *pg(ly_conn *c)
{
    return (pg_conn *)c;
}

/* Notices ("relation already exists, skipping") are not for the log. */
static void pg_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Length of a libpq message without its trailing newlines. */
static int msglen(const char *msg)
{
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    return (int)n;
}

static int pg_constraint(const PGresult *r, const char *state, const char *msg, ly_error *err)
{
    if (strcmp(state, "23505") == 0) {
        const char *name = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
        for (size_t i = 0; name && i < sizeof pg_unique / sizeof pg_unique[0]; i++)
            if (strcmp(name, pg_unique[i].constraint) == 0)
                return ly__store_conflict(err, pg_unique[i].field);
        return ly_error_set(err, LY_ECONFLICT, "already_exists", NULL, "%.*s", msglen(msg), msg);
    }
    if (strcmp(state, "23503") == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL,
                            "the program or member referred to does not exist");
    return ly_error_set(err, LY_EINVAL, NULL, NULL, "refused by the database: %.*s", msglen(msg),
                        msg);
}

/* Turns a failed result (r may be NULL) into an LY_E* code and a message. */
static int pg_fail(pg_conn *c, const PGresult *r, const char *what, ly_error *err)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg)
        msg = PQerrorMessage(c->pg);
    if (!state || PQstatus(c->pg) != CONNECTION_OK)
        return ly_error_set(err, LY_ESTORE, NULL, NULL, "PostgreSQL is unavailable (%s): %.*s",
                            what, msglen(msg), msg);
    if (strncmp(state, "23", 2) == 0)
        return pg_constraint(r, state, msg, err);
    for (size_t i = 0; i < sizeof pg_states / sizeof pg_states[0]; i++)
        if (strncmp(state, pg_states[i].state, strlen(pg_states[i].state)) == 0)
            return ly_error_set(err, pg_states[i].rc, NULL, NULL, "PostgreSQL %s (%s): %.*s", state,
                                what, msglen(msg), msg);
    return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "database error %s in %s: %.*s", state, what,
                        msglen(msg), msg);
}

static int pg_prepare(pg_conn *c, int id, ly_error *err)
{
    if (c->prepared[id])
        return 0;
    PGresult *r = PQprepare(c->pg, pg_stmts[id].name, pg_stmts[id].sql, 0, NULL);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : pg_fail(c, r, pg_stmts[id].name, err);
    PQclear(r);
    c->prepared[id] = rc == 0;
    return rc;
}

/* Text form of each parameter; NULL stays SQL NULL. */
static int pg_values(const ly_sqlparam *p, int n, char buf[][PG_PARAMBUF], const char **vals,
                     ly_error *err)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < n; i++) {
        vals[i] = buf[i];
        if (p[i].type == 'i') {
            snprintf(buf[i], PG_PARAMBUF, "%" PRId64, p[i].i);
        } else if (p[i].type == 's') {
            vals[i] = p[i].s;
        } else {
            if (p[i].len * 2 + 3 > PG_PARAMBUF)
                return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "blob parameter too long");
            memcpy(buf[i], "\\x", 2);
            for (size_t j = 0; j < p[i].len; j++) {
                buf[i][2 + 2 * j] = hex[p[i].b[j] >> 4];
                buf[i][3 + 2 * j] = hex[p[i].b[j] & 15];
            }
            buf[i][2 + 2 * p[i].len] = '\0';
        }
    }
    return 0;
}

/* Runs statement id (preparing it first on this connection); *out is the
 * result to PQclear. */
static int pg_run(pg_conn *c, int id, const ly_sqlparam *p, int n, PGresult **out, ly_error *err)
{
    char buf[PG_MAXPARAMS][PG_PARAMBUF];
    const char *vals[PG_MAXPARAMS];
    *out = NULL;
    if (n > PG_MAXPARAMS)
        return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "%s: too many parameters",
                            pg_stmts[id].name);
    int rc = pg_prepare(c, id, err);
    if (rc < 0 || (rc = pg_values(p, n, buf, vals, err)) < 0)
        return rc;
    PGresult *r = PQexecPrepared(c->pg, pg_stmts[id].name, n, vals, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        *out = r;
        return 0;
    }
    rc = pg_fail(c, r, pg_stmts[id].name, err);
    PQclear(r);
    return rc;
}

static int parse_int(const char *s, int64_t *v, ly_error *err)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "the database returned %s for a number",
                            s);
    *v = x;
    return 0;
}

static int pg_int(const PGresult *r, int row, int col, int64_t *v, ly_error *err)
{
    *v = 0;
    return PQgetisnull(r, row, col) ? 0 : parse_int(PQgetvalue(r, row, col), v, err);
}

/* Reads integer columns cols[0..n) into fields[0..n). */
static int pg_ints(const PGresult *r, int row, const int *cols, int64_t *fields[], int n,
                   ly_error *err)
{
    for (int i = 0; i < n; i++)
        if (pg_int(r, row, cols[i], fields[i], err) < 0)
            return LY_EINTERNAL;
    return 0;
}

/* Reads text columns first..first+n-1 into arena strings, NULL for NULL. */
static int pg_texts(const PGresult *r, int row, int first, ly_arena *a, const char **fields[],
                    int n, ly_error *err)
{
    for (int i = 0; i < n; i++) {
        *fields[i] = NULL;
        if (PQgetisnull(r, row, first + i))
            continue;
        *fields[i] = ly_arena_strndup(a, PQgetvalue(r, row, first + i),
                                      (size_t)PQgetlength(r, row, first + i));
        if (!*fields[i])
            return ly__store_nomem(err);
    }
    return 0;
}

/* Runs a statement; *changes (may be NULL) receives how many rows it
 * changed. */
static int pg_exec(pg_conn *c, int id, const ly_sqlparam *p, int n, int64_t *changes, ly_error *err)
{
    PGresult *r;
    int rc = pg_run(c, id, p, n, &r, err);
    if (rc == 0 && changes)
        rc = parse_int(PQcmdTuples(r), changes, err);
    PQclear(r);
    return rc;
}

/* Reads the one row of statement id into out; LY_ENOTFOUND (err not set)
 * when there is none. */
static int pg_one(pg_conn *c, int id, const ly_sqlparam *p, int n, ly_arena *a, pg_reader read,
                  void *out, ly_error *err)
{
    PGresult *r;
    int rc = pg_run(c, id, p, n, &r, err);
    if (rc == 0)
        rc = PQntuples(r) > 0 ? read(r, 0, a, out, err) : LY_ENOTFOUND;
    PQclear(r);
    return rc;
}

/* Reads every row of statement id into an arena array of elements of size
 * sz. */
static int pg_all(pg_conn *c, int id, const ly_sqlparam *p, int n, ly_arena *a, pg_reader read,
                  size_t sz, void **out, size_t *count, ly_error *err)
{
    PGresult *r;
    *out = NULL;
    *count = 0;
    int rc = pg_run(c, id, p, n, &r, err);
    if (rc < 0)
        return rc;
    int rows = PQntuples(r);
    char *arr = rows ? ly_arena_alloc(a, (size_t)rows * sz) : NULL;
    if (rows && !arr)
        rc = ly__store_nomem(err);
    for (int i = 0; rc == 0 && i < rows; i++)
        rc = read(r, i, a, arr + (size_t)i * sz, err);
    PQclear(r);
    *out = rc == 0 ? arr : NULL;
    *count = rc == 0 ? (size_t)rows : 0;
    return rc;
}

/* The integer in the first column of the first row of statement id. */
static int pg_scalar(pg_conn *c, int id, int64_t *v, ly_error *err)
{
    PGresult *r;
    int rc = pg_run(c, id, NULL, 0, &r, err);
    if (rc == 0 && PQntuples(r) < 1)
        rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL, "%s returned no row", pg_stmts[id].name);
    if (rc == 0)
        rc = pg_int(r, 0, 0, v, err);
    PQclear(r);
    return rc;
}

static int pg_read_program(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
{
    ly_program *p = out;
    memset(p, 0, sizeof *p);
    static const int cols[] = {0, 4, 6, 7};
    int64_t *ints[] = {&p->id, &p->point_value_minor, &p->created_at, &p->updated_at};
    const char **texts[] = {&p->name, &p->currency, &p->timezone};
    const char **settings[] = {&p->settings};
    if (pg_ints(r, row, cols, ints, 4, err) < 0)
        return LY_EINTERNAL;
    if (pg_texts(r, row, 1, a, texts, 3, err) < 0 || pg_texts(r, row, 5, a, settings, 1, err) < 0)
        return LY_ENOMEM;
    return 0;
}

static int pg_read_member(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
{
    ly_member *m = out;
    memset(m, 0, sizeof *m);
    static const int cols[] = {0, 1, 9, 10};
    int64_t *ints[] = {&m->id, &m->program_id, &m->created_at, &m->updated_at};
    const char **texts[] = {&m->external_id, &m->email,      &m->phone, &m->name,
                            &m->birthdate,   &m->attributes, &m->status};
    if (pg_ints(r, row, cols, ints, 4, err) < 0)
        return LY_EINTERNAL;
    return pg_texts(r, row, 2, a, texts, 7, err);
}

static int pg_read_key(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
{
    ly_key *k = out;
    memset(k, 0, sizeof *k);
    static const int cols[] = {1, 5, 6};
    int64_t *ints[] = {&k->program_id, &k->created_at, &k->revoked_at};
    const char **id[] = {&k->id};
    const char **texts[] = {&k->scope, &k->name};
    if (pg_ints(r, row, cols, ints, 3, err) < 0)
        return LY_EINTERNAL;
    if (pg_texts(r, row, 0, a, id, 1, err) < 0 || pg_texts(r, row, 2, a, texts, 2, err) < 0)
        return LY_ENOMEM;
    size_t len = 0;
    unsigned char *hash = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, 4), &len);
    if (hash && len == sizeof k->hash)
        memcpy(k->hash, hash, sizeof k->hash);
    PQfreemem(hash);
    if (!hash)
        return ly__store_nomem(err);
    if (len != sizeof k->hash)
        return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "key %s has a malformed hash", k->id);
    return 0;
}

/* Loads the cards of the members ms[0..n) (sorted by id, every member of the
 * program with an id in (after_id, last id]). */
static int pg_cards(pg_conn *c, ly_arena *a, int64_t program_id, int64_t after_id, ly_member *ms,
                    size_t n, ly_error *err)
{
    if (n == 0)
        return 0;
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(after_id), LY_PI(ms[n - 1].id)};
    PGresult *r;
    int rc = pg_run(c, PG_CARDS_RANGE, p, LY_NPARAMS(p), &r, err);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        int64_t member_id;
        if ((rc = pg_int(r, i, 0, &member_id, err)) < 0)
            break;
        ly_member *m = ly__member_in(ms, n, member_id);
        if (m)
            rc = ly__member_add_card(a, m, PQgetvalue(r, i, 1), err);
    }
    PQclear(r);
    return rc;
}

static int pg_simple(ly_conn *c, int id, ly_error *err)
{
    return pg_exec(pg(c), id, NULL, 0, NULL, err);
}

static void pg_rollback(ly_conn *c)
{
    PGTransactionStatusType ts = PQtransactionStatus(pg(c)->pg);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
        (void)pg_simple(c, PG_ROLLBACK, NULL);
}

static void pg_close(ly_conn *c)
{
    PQfinish(pg(c)->pg);
    free(c);
}

static int pg_open(const char *url, ly_conn **out, ly_error *err)
{
    static const char *const keys[] = {"dbname", "fallback_application_name", "client_encoding",
                                       NULL};
    const char *const vals[] = {url, "loyal", "UTF8", NULL};
    pg_conn *c = calloc(1, sizeof *c);
    if (!c)
        return ly__store_nomem(err);
    c->base.ops = &ly__postgres_ops;
    c->pg = PQconnectdbParams(keys, vals, 1);
    if (!c->pg) {
        free(c);
        return ly__store_nomem(err);
    }
    if (PQstatus(c->pg) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(c->pg);
        int rc = ly_error_set(err, LY_ESTORE, NULL, NULL, "cannot connect to PostgreSQL: %.*s",
                              msglen(msg), msg);
        pg_close(&c->base);
        return rc;
    }
    PQsetNoticeProcessor(c->pg, pg_quiet, NULL);
    *out = &c->base;
    return 0;
}

/* Has the server closed an idle connection? Nothing is readable on one
 * unless the server is closing it (or sent a notice): reading what there is
 * tells libpq which. */
static int pg_alive(PGconn *conn)
{
    struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
    for (int i = 0; i < 8 && PQstatus(conn) == CONNECTION_OK && poll(&p, 1, 0) > 0; i++)
        if (!PQconsumeInput(conn))
            return 0;
    return PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE;
}

/* A pooled connection the server dropped (restart, idle timeout) is
 * reconnected once; its statements must then be prepared again. */
static int pg_check(ly_conn *c, ly_error *err)
{
    pg_conn *p = pg(c);
    if (pg_alive(p->pg))
        return 0;
    PQreset(p->pg);
    memset(p->prepared, 0, sizeof p->prepared);
    if (PQstatus(p->pg) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(p->pg);
        return ly_error_set(err, LY_ESTORE, NULL, NULL, "cannot reconnect to PostgreSQL: %.*s",
                            msglen(msg), msg);
    }
    return 0;
}

static int pg_migrate_lock(ly_conn *c, int lock, ly_error *err)
{
    return pg_simple(c, lock ? PG_LOCK : PG_UNLOCK, err);
}

static int pg_exec_script(ly_conn *c, const char *sql, ly_error *err)
{
    PGresult *r = PQexec(pg(c)->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc =
        st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : pg_fail(pg(c), r, "migration", err);
    PQclear(r);
    return rc;
}

static int pg_migration_applied(ly_conn *c, int version, int *applied, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(version)};
    PGresult *r;
    int rc = pg_run(pg(c), PG_MIGRATION_APPLIED, p, LY_NPARAMS(p), &r, err);
    *applied = rc == 0 && PQntuples(r) > 0;
    PQclear(r);
    return rc;
}

static int pg_migration_record(ly_conn *c, const ly_migration *m, int64_t now, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(m->version), LY_PS(m->name), LY_PI(now)};
    return pg_exec(pg(c), PG_MIGRATION_RECORD, p, LY_NPARAMS(p), NULL, err);
}

static int pg_schema_version(ly_conn *c, int *version, ly_error *err)
{
    int64_t v = 0;
    int rc = pg_scalar(pg(c), PG_SCHEMA_EXISTS, &v, err);
    if (rc == 0 && v)
        rc = pg_scalar(pg(c), PG_SCHEMA_VERSION, &v, err);
    *version = rc == 0 ? (int)v : 0;
    return rc;
}

static int pg_begin_write(ly_conn *c, ly_error *err)
{
    return pg_simple(c, PG_BEGIN, err);
}

static int pg_begin_read(ly_conn *c, ly_error *err)
{
    return pg_simple(c, PG_BEGIN_READ, err);
}

/* PostgreSQL answers COMMIT of a transaction an earlier error aborted with
 * ROLLBACK: that is a failure too. A failed commit leaves no transaction. */
static int pg_commit(ly_conn *c, ly_error *err)
{
    PGresult *r;
    int rc = pg_run(pg(c), PG_COMMIT, NULL, 0, &r, err);
    if (rc == 0 && strcmp(PQcmdStatus(r), "ROLLBACK") == 0)
        rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL,
                          "the transaction was rolled back after an earlier error");
    PQclear(r);
    if (rc < 0)
        pg_rollback(c);
    return rc;
}

static int pg_program_get(ly_conn *c, ly_arena *a, int64_t program_id, ly_program *out,
                          ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id)};
    int rc = pg_one(pg(c), PG_PROGRAM_GET, p, LY_NPARAMS(p), a, pg_read_program, out, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, NULL, NULL, "program %" PRId64 " not found", program_id);
    return rc;
}

static int pg_program_put(ly_conn *c, const ly_program *pr, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(pr->id),
                       LY_PS(pr->name),
                       LY_PS(pr->currency),
                       LY_PS(pr->timezone),
                       LY_PI(pr->point_value_minor),
                       LY_PS(pr->settings),
                       LY_PI(pr->updated_at)};
    int64_t changed = 0;
    int rc = pg_exec(pg(c), PG_PROGRAM_PUT, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL, "program %" PRId64 " not found", pr->id);
    return rc;
}

static int pg_member_insert(ly_conn *c, ly_member *m, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(m->program_id), LY_PS(m->external_id), LY_PS(m->email),
                       LY_PS(m->phone),      LY_PS(m->name),        LY_PS(m->birthdate),
                       LY_PS(m->attributes), LY_PS(m->status),      LY_PI(m->created_at),
                       LY_PI(m->updated_at)};
    PGresult *r;
    int rc = pg_run(pg(c), PG_MEMBER_INSERT, p, LY_NPARAMS(p), &r, err);
    if (rc == 0 && PQntuples(r) != 1)
        rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL, "member_insert returned no id");
    if (rc == 0)
        rc = pg_int(r, 0, 0, &m->id, err);
    PQclear(r);
    return rc;
}

static int pg_member_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, ly_member *out,
                         ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(id)};
    int rc = pg_one(pg(c), PG_MEMBER_GET, p, LY_NPARAMS(p), a, pg_read_member, out, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, NULL, NULL, "member %" PRId64 " not found", id);
    return rc < 0 ? rc : pg_cards(pg(c), a, program_id, id - 1, out, 1, err);
}

static int pg_member_find(ly_conn *c, ly_arena *a, int64_t program_id, int by, const char *value,
                          ly_member *out, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(value)};
    int id = PG_MEMBER_BY_EXTERNAL_ID + by;
    int rc = pg_one(pg(c), id, p, LY_NPARAMS(p), a, pg_read_member, out, err);
    if (rc == LY_ENOTFOUND)
        return ly__member_not_found(err, by);
    return rc < 0 ? rc : pg_cards(pg(c), a, program_id, out->id - 1, out, 1, err);
}

static int pg_member_update(ly_conn *c, const ly_member *m, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(m->program_id), LY_PI(m->id),         LY_PS(m->external_id),
                       LY_PS(m->email),      LY_PS(m->phone),      LY_PS(m->name),
                       LY_PS(m->birthdate),  LY_PS(m->attributes), LY_PS(m->status),
                       LY_PI(m->updated_at)};
    int64_t changed = 0;
    int rc = pg_exec(pg(c), PG_MEMBER_UPDATE, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL, "member %" PRId64 " not found", m->id);
    return rc;
}

static int pg_member_list(ly_conn *c, ly_arena *a, int64_t program_id, int64_t after_id, int limit,
                          ly_member **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(after_id), LY_PI(limit)};
    void *arr = NULL;
    int rc = pg_all(pg(c), PG_MEMBER_LIST, p, LY_NPARAMS(p), a, pg_read_member, sizeof(ly_member),
                    &arr, n, err);
    *out = arr;
    return rc < 0 ? rc : pg_cards(pg(c), a, program_id, after_id, *out, *n, err);
}

static int pg_card_attach(ly_conn *c, int64_t program_id, int64_t member_id, const char *card,
                          int64_t now, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(card), LY_PI(member_id), LY_PI(now)};
    int64_t changed = 0;
    int rc = pg_exec(pg(c), PG_CARD_ATTACH, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL, "member %" PRId64 " not found",
                            member_id);
    return rc;
}

static int pg_key_insert(ly_conn *c, const ly_key *k, ly_error *err)
{
    ly_sqlparam p[] = {LY_PS(k->id),        LY_PI(k->program_id),           LY_PS(k->scope),
                       LY_PS(k->name),      LY_PB(k->hash, sizeof k->hash), LY_PI(k->created_at),
                       LY_PI(k->revoked_at)};
    return pg_exec(pg(c), PG_KEY_INSERT, p, LY_NPARAMS(p), NULL, err);
}

static int pg_key_get(ly_conn *c, ly_arena *a, const char *id, ly_key *out, ly_error *err)
{
    ly_sqlparam p[] = {LY_PS(id)};
    int rc = pg_one(pg(c), PG_KEY_GET, p, LY_NPARAMS(p), a, pg_read_key, out, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, NULL, NULL, "no such key");
    return rc;
}

static int pg_key_list(ly_conn *c, ly_arena *a, int64_t program_id, ly_key **out, size_t *n,
                       ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id)};
    void *arr = NULL;
    int rc =
        pg_all(pg(c), PG_KEY_LIST, p, LY_NPARAMS(p), a, pg_read_key, sizeof(ly_key), &arr, n, err);
    *out = arr;
    return rc;
}

static int pg_key_revoke(ly_conn *c, int64_t program_id, const char *id, int64_t now, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(id), LY_PI(now)};
    int64_t changed = 0;
    int rc = pg_exec(pg(c), PG_KEY_REVOKE, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL, "no such key");
    return rc;
}

static int pg_table_counts(ly_conn *c, int64_t rows[LY_STORE_NTABLES], ly_error *err)
{
    PGresult *r;
    int rc = pg_run(pg(c), PG_TABLE_COUNTS, NULL, 0, &r, err);
    if (rc == 0 && PQntuples(r) != 1)
        rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL, "table_counts returned no row");
    for (int i = 0; rc == 0 && i < LY_STORE_NTABLES; i++)
        rc = pg_int(r, 0, i, &rows[i], err);
    PQclear(r);
    return rc;
}

const ly_store_ops ly__postgres_ops = {
    .name = "postgres",
    .migrations = ly__migrations_postgres,
    .open = pg_open,
    .close = pg_close,
    .check = pg_check,
    .reset = pg_rollback,
    .migrate_lock = pg_migrate_lock,
    .exec_script = pg_exec_script,
    .migration_applied = pg_migration_applied,
    .migration_record = pg_migration_record,
    .schema_version = pg_schema_version,
    .begin_write = pg_begin_write,
    .begin_read = pg_begin_read,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .program_get = pg_program_get,
    .program_put = pg_program_put,
    .member_insert = pg_member_insert,
    .member_get = pg_member_get,
    .member_find = pg_member_find,
    .member_update = pg_member_update,
    .member_list = pg_member_list,
    .card_attach = pg_card_attach,
    .key_insert = pg_key_insert,
    .key_get = pg_key_get,
    .key_list = pg_key_list,
    .key_revoke = pg_key_revoke,
    .table_counts = pg_table_counts,
};
