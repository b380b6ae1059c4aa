/* The store against SQLite (a temporary file) and, when LOYAL_TEST_PG_URL is
 * set, against PostgreSQL (a schema of its own per test): one table of
 * cases, run once per backend. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "loyal/store.h"
#include "store/store_int.h"

typedef struct backend {
    const char *name; /* "sqlite" or "postgres" */
} backend;

static const backend sqlite_backend = {"sqlite"};
static const backend postgres_backend = {"postgres"};

typedef struct fixture {
    const backend *be;
    char url[1024];
    char path[512];  /* sqlite: the database file */
    char schema[64]; /* postgres: the schema the test runs in */
    ly_store *store;
    ly_conn *conn;
    ly_arena arena;
    ly_error err;
} fixture;

static int counter;

/* Asserts that call returned want, showing the error message when not. */
#define expect_rc(f, call, want)                                                                   \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != (want))                                                                         \
            print_error("%s = %d: %s\n", #call, rc_, (f)->err.message);                            \
        assert_int_equal(rc_, (want));                                                             \
    } while (0)
#define expect_ok(f, call) expect_rc(f, call, 0)

static int is_pg(const fixture *f)
{
    return strcmp(f->be->name, "postgres") == 0;
}

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Runs one statement on the PostgreSQL server as its administrator. */
static int pg_admin(const char *fmt, ...)
{
    char sql[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGconn *pg = PQconnectdb(getenv("LOYAL_TEST_PG_URL"));
    PQsetNoticeProcessor(pg, quiet, NULL);
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
    if (rc < 0)
        print_error("%s: %s", sql, PQerrorMessage(pg));
    else if (st == PGRES_TUPLES_OK && PQntuples(r) > 0)
        rc = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(pg);
    return rc;
}

static void make_url(fixture *f)
{
    int n = ++counter;
    if (is_pg(f)) {
        const char *base = getenv("LOYAL_TEST_PG_URL");
        snprintf(f->schema, sizeof f->schema, "loyal_test_%ld_%d", (long)getpid(), n);
        snprintf(f->url, sizeof f->url, "%s%coptions=-csearch_path%%3D%s&application_name=%s", base,
                 strchr(base, '?') ? '&' : '?', f->schema, f->schema);
        return;
    }
    const char *dir = getenv("LOYAL_TEST_TMP");
    if (!dir || !*dir)
        dir = "/tmp";
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        dir = "/tmp";
    snprintf(f->path, sizeof f->path, "%s/test_store-%ld-%d.db", dir, (long)getpid(), n);
    snprintf(f->url, sizeof f->url, "%s", f->path);
}

static void remove_database(fixture *f)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[600];
    if (is_pg(f)) {
        pg_admin("DROP SCHEMA IF EXISTS %s CASCADE", f->schema);
        return;
    }
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
}

/* A fresh, empty database and a store on it, not migrated. */
static int setup_open(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->be = *state;
    make_url(f);
    remove_database(f);
    if (is_pg(f) && pg_admin("CREATE SCHEMA %s", f->schema) < 0)
        return -1;
    ly_arena_init(&f->arena, 0);
    *state = f;
    if (ly_store_open(f->url, 2, &f->store, &f->err) < 0) {
        print_error("open %s: %s\n", f->url, f->err.message);
        return -1;
    }
    return 0;
}

/* The same, migrated, with a connection in f->conn. */
static int setup(void **state)
{
    if (setup_open(state) < 0)
        return -1;
    fixture *f = *state;
    if (ly_store_migrate(f->store, NULL, &f->err) < 0 ||
        !(f->conn = ly_store_acquire(f->store, &f->err))) {
        print_error("migrate: %s\n", f->err.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->conn)
        ly_store_release(f->store, f->conn);
    ly_store_close(f->store);
    ly_arena_release(&f->arena);
    remove_database(f);
    free(f);
    return 0;
}

static ly_member new_member(const char *external_id, const char *email, const char *phone)
{
    return (ly_member){.program_id = LY_DEFAULT_PROGRAM,
                       .external_id = external_id,
                       .email = email,
                       .phone = phone,
                       .name = "Ann Example",
                       .birthdate = "1990-04-01",
                       .attributes = "{\"vip\":true}",
                       .status = "active",
                       .created_at = 1000,
                       .updated_at = 1000};
}

static int64_t insert_member(fixture *f, const char *external_id, const char *email,
                             const char *phone)
{
    ly_member m = new_member(external_id, email, phone);
    expect_ok(f, ly_store_member_insert(f->conn, &m, &f->err));
    assert_true(m.id > 0);
    return m.id;
}

static void assert_str_or_null(const char *got, const char *want)
{
    if (!want) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, want);
}

static void assert_member(const ly_member *got, const ly_member *want)
{
    assert_int_equal(got->id, want->id);
    assert_int_equal(got->program_id, want->program_id);
    assert_str_or_null(got->external_id, want->external_id);
    assert_str_or_null(got->email, want->email);
    assert_str_or_null(got->phone, want->phone);
    assert_str_or_null(got->name, want->name);
    assert_str_or_null(got->birthdate, want->birthdate);
    assert_string_equal(got->attributes, want->attributes ? want->attributes : "{}");
    assert_string_equal(got->status, want->status ? want->status : "active");
    assert_int_equal(got->created_at, want->created_at);
    assert_int_equal(got->updated_at, want->updated_at);
}

static void assert_cards(const ly_member *m, const char *const *cards, size_t n)
{
    assert_int_equal(m->ncards, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(m->cards[i], cards[i]);
}

static void test_migrate_twice(void **state)
{
    fixture *f = *state;
    int version = -1, applied = -1;
    int latest = ly_store_latest_version(f->store);
    assert_true(latest >= 1);
    assert_string_equal(ly_store_backend(f->store), f->be->name);
    expect_ok(f, ly_store_schema_version(f->store, &version, &f->err));
    assert_int_equal(version, 0);
    expect_ok(f, ly_store_migrate(f->store, &applied, &f->err));
    assert_int_equal(applied, latest);
    expect_ok(f, ly_store_schema_version(f->store, &version, &f->err));
    assert_int_equal(version, latest);
    expect_ok(f, ly_store_migrate(f->store, &applied, &f->err));
    assert_int_equal(applied, 0);
    expect_ok(f, ly_store_schema_version(f->store, &version, &f->err));
    assert_int_equal(version, latest);
}

typedef struct migrate_run {
    const char *url;
    int rc, applied;
} migrate_run;

static void *migrate_thread(void *arg)
{
    migrate_run *run = arg;
    ly_store *s = NULL;
    ly_error err;
    run->rc = ly_store_open(run->url, 1, &s, &err);
    if (run->rc == 0)
        run->rc = ly_store_migrate(s, &run->applied, &err);
    ly_store_close(s);
    return NULL;
}

/* Two processes starting at once: each migration is applied exactly once. */
static void test_migrate_concurrently(void **state)
{
    fixture *f = *state;
    migrate_run runs[2] = {{f->url, -1, 0}, {f->url, -1, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, migrate_thread, &runs[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(runs[0].rc, 0);
    assert_int_equal(runs[1].rc, 0);
    assert_int_equal(runs[0].applied + runs[1].applied, ly_store_latest_version(f->store));
}

static void test_open_errors(void **state)
{
    fixture *f = *state;
    ly_store *s = NULL;
    assert_int_equal(ly_store_open(f->url, 0, &s, &f->err), LY_EINVAL);
    assert_null(s);
    assert_int_equal(ly_store_open("", 1, &s, &f->err), LY_EINVAL);
    if (is_pg(f)) {
        assert_int_equal(ly_store_open("postgresql://127.0.0.1:1/none", 1, &s, &f->err), LY_ESTORE);
    } else {
        assert_int_equal(ly_store_open(":memory:", 1, &s, &f->err), LY_EINVAL);
        assert_int_equal(ly_store_open("/nonexistent/dir/loyal.db", 1, &s, &f->err), LY_ESTORE);
        assert_string_equal(f->err.code, "storage_unavailable");
        assert_non_null(strstr(f->err.message, "unable to open database file"));
    }
    assert_null(s);
}

static void test_program_get_put(void **state)
{
    fixture *f = *state;
    ly_program p;
    int64_t now = (int64_t)time(NULL) * 1000;
    expect_ok(f, ly_store_program_get(f->conn, &f->arena, LY_DEFAULT_PROGRAM, &p, &f->err));
    assert_int_equal(p.id, LY_DEFAULT_PROGRAM);
    assert_string_equal(p.name, "My loyalty program");
    assert_string_equal(p.currency, "USD");
    assert_string_equal(p.timezone, "UTC");
    assert_int_equal(p.point_value_minor, 1);
    assert_string_equal(p.settings, "{}");
    assert_true(p.created_at > now - 600000 && p.created_at < now + 600000);
    assert_int_equal(p.updated_at, p.created_at);
    int64_t created = p.created_at;

    ly_program q = {.id = LY_DEFAULT_PROGRAM,
                    .name = "Bean & Leaf Coffee",
                    .currency = "EUR",
                    .timezone = "Europe/Paris",
                    .point_value_minor = 5,
                    .settings = "{\"pending_days\":14}",
                    .created_at = 1,
                    .updated_at = created + 5};
    expect_ok(f, ly_store_program_put(f->conn, &q, &f->err));
    expect_ok(f, ly_store_program_get(f->conn, &f->arena, LY_DEFAULT_PROGRAM, &p, &f->err));
    assert_string_equal(p.name, "Bean & Leaf Coffee");
    assert_string_equal(p.currency, "EUR");
    assert_string_equal(p.timezone, "Europe/Paris");
    assert_int_equal(p.point_value_minor, 5);
    assert_string_equal(p.settings, "{\"pending_days\":14}");
    assert_int_equal(p.created_at, created);
    assert_int_equal(p.updated_at, created + 5);

    expect_rc(f, ly_store_program_get(f->conn, &f->arena, 42, &p, &f->err), LY_ENOTFOUND);
    assert_string_equal(f->err.code, "not_found");
    q.id = 42;
    expect_rc(f, ly_store_program_put(f->conn, &q, &f->err), LY_ENOTFOUND);
}

static void test_member_insert_get(void **state)
{
    fixture *f = *state;
    ly_member full = new_member("ext-1", "ann@example.com", "+14155550123");
    ly_member bare = {.program_id = LY_DEFAULT_PROGRAM, .created_at = 7, .updated_at = 8};
    ly_member got;
    expect_ok(f, ly_store_member_insert(f->conn, &full, &f->err));
    expect_ok(f, ly_store_member_insert(f->conn, &bare, &f->err));
    assert_true(bare.id > full.id);

    expect_ok(f,
              ly_store_member_get(f->conn, &f->arena, LY_DEFAULT_PROGRAM, full.id, &got, &f->err));
    assert_member(&got, &full);
    assert_cards(&got, NULL, 0);
    expect_ok(f,
              ly_store_member_get(f->conn, &f->arena, LY_DEFAULT_PROGRAM, bare.id, &got, &f->err));
    assert_member(&got, &bare);

    expect_rc(f, ly_store_member_get(f->conn, &f->arena, LY_DEFAULT_PROGRAM, 9999, &got, &f->err),
              LY_ENOTFOUND);
    expect_rc(f, ly_store_member_get(f->conn, &f->arena, 2, full.id, &got, &f->err), LY_ENOTFOUND);

    ly_member orphan = new_member("ext-2", NULL, NULL);
    orphan.program_id = 77;
    expect_rc(f, ly_store_member_insert(f->conn, &orphan, &f->err), LY_ENOTFOUND);

    /* Erased members are still read: the engine decides what to show. */
    got.status = "erased";
    got.email = got.phone = got.external_id = got.name = got.birthdate = NULL;
    expect_ok(f, ly_store_member_update(f->conn, &got, &f->err));
    expect_ok(f,
              ly_store_member_get(f->conn, &f->arena, LY_DEFAULT_PROGRAM, bare.id, &got, &f->err));
    assert_string_equal(got.status, "erased");
}

static void test_member_find(void **state)
{
    fixture *f = *state;
    int64_t a = insert_member(f, "ext-a", "a@example.com", "+14155550001");
    int64_t b = insert_member(f, "ext-b", "b@example.com", "+14155550002");
    expect_ok(f, ly_store_card_attach(f->conn, 1, b, "CARD0002", 10, &f->err));
    expect_ok(f, ly_store_card_attach(f->conn, 1, a, "CARD0001", 10, &f->err));
    static const struct {
        const char *by, *value;
        int b;
    } cases[] = {
        {"external_id", "ext-a", 0},   {"external_id", "ext-b", 1},  {"email", "a@example.com", 0},
        {"email", "b@example.com", 1}, {"phone", "+14155550001", 0}, {"phone", "+14155550002", 1},
        {"card", "CARD0001", 0},       {"card", "CARD0002", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ly_member m;
        expect_ok(f, ly_store_member_find(f->conn, &f->arena, 1, cases[i].by, cases[i].value, &m,
                                          &f->err));
        assert_int_equal(m.id, cases[i].b ? b : a);
        assert_int_equal(m.ncards, 1);
        assert_string_equal(m.cards[0], cases[i].b ? "CARD0002" : "CARD0001");

        expect_rc(f,
                  ly_store_member_find(f->conn, &f->arena, 1, cases[i].by, "nobody", &m, &f->err),
                  LY_ENOTFOUND);
        assert_string_equal(f->err.code, "not_found");
        expect_rc(
            f,
            ly_store_member_find(f->conn, &f->arena, 2, cases[i].by, cases[i].value, &m, &f->err),
            LY_ENOTFOUND);
    }
    ly_member m;
    expect_rc(f, ly_store_member_find(f->conn, &f->arena, 1, "name", "Ann", &m, &f->err),
              LY_EINVAL);
    assert_string_equal(f->err.field, "by");
}

static void test_member_update(void **state)
{
    fixture *f = *state;
    int64_t a = insert_member(f, "ext-a", "a@example.com", "+14155550001");
    int64_t b = insert_member(f, "ext-b", "b@example.com", "+14155550002");
    ly_member m;
    expect_ok(f, ly_store_member_get(f->conn, &f->arena, 1, a, &m, &f->err));
    m.email = NULL;
    m.phone = "+14155550003";
    m.name = "Ann Other";
    m.attributes = "{\"tier\":\"gold\"}";
    m.status = "suspended";
    m.updated_at = 2000;
    expect_ok(f, ly_store_member_update(f->conn, &m, &f->err));
    ly_member got;
    expect_ok(f, ly_store_member_get(f->conn, &f->arena, 1, a, &got, &f->err));
    assert_member(&got, &m);

    /* The email a freed is b's to take; a's new phone is not. */
    expect_ok(f, ly_store_member_get(f->conn, &f->arena, 1, b, &m, &f->err));
    m.email = "a@example.com";
    expect_ok(f, ly_store_member_update(f->conn, &m, &f->err));
    m.phone = "+14155550003";
    expect_rc(f, ly_store_member_update(f->conn, &m, &f->err), LY_ECONFLICT);
    assert_string_equal(f->err.field, "phone");
    assert_string_equal(f->err.code, "already_exists");

    m.id = 9999;
    m.phone = "+14155550009";
    expect_rc(f, ly_store_member_update(f->conn, &m, &f->err), LY_ENOTFOUND);
}

static void test_member_list(void **state)
{
    fixture *f = *state;
    int64_t ids[5];
    char ext[5][16];
    for (int i = 0; i < 5; i++) {
        snprintf(ext[i], sizeof ext[i], "ext-%d", i);
        ids[i] = insert_member(f, ext[i], NULL, NULL);
    }
    static const char *const c0[] = {"C0A", "C0B"}, *const c2[] = {"C2A"},
                             *const c4[] = {"C4A", "C4B", "C4C"};
    expect_ok(f, ly_store_card_attach(f->conn, 1, ids[0], "C0A", 1, &f->err));
    expect_ok(f, ly_store_card_attach(f->conn, 1, ids[0], "C0B", 2, &f->err));
    expect_ok(f, ly_store_card_attach(f->conn, 1, ids[2], "C2A", 1, &f->err));
    for (int i = 0; i < 3; i++)
        expect_ok(f, ly_store_card_attach(f->conn, 1, ids[4], c4[i], 5 + i, &f->err));

    ly_member *ms;
    size_t n;
    expect_ok(f, ly_store_member_list(f->conn, &f->arena, 1, 0, 2, &ms, &n, &f->err));
    assert_int_equal(n, 2);
    assert_int_equal(ms[0].id, ids[0]);
    assert_int_equal(ms[1].id, ids[1]);
    assert_string_equal(ms[0].external_id, "ext-0");
    assert_cards(&ms[0], c0, 2);
    assert_cards(&ms[1], NULL, 0);

    expect_ok(f, ly_store_member_list(f->conn, &f->arena, 1, ids[1], 2, &ms, &n, &f->err));
    assert_int_equal(n, 2);
    assert_int_equal(ms[0].id, ids[2]);
    assert_int_equal(ms[1].id, ids[3]);
    assert_cards(&ms[0], c2, 1);
    assert_cards(&ms[1], NULL, 0);

    expect_ok(f, ly_store_member_list(f->conn, &f->arena, 1, ids[3], 10, &ms, &n, &f->err));
    assert_int_equal(n, 1);
    assert_int_equal(ms[0].id, ids[4]);
    assert_cards(&ms[0], c4, 3);

    expect_ok(f, ly_store_member_list(f->conn, &f->arena, 1, ids[4], 10, &ms, &n, &f->err));
    assert_int_equal(n, 0);
    expect_ok(f, ly_store_member_list(f->conn, &f->arena, 1, 0, 0, &ms, &n, &f->err));
    assert_int_equal(n, 0);
    expect_ok(f, ly_store_member_list(f->conn, &f->arena, 2, 0, 10, &ms, &n, &f->err));
    assert_int_equal(n, 0);
    expect_rc(f, ly_store_member_list(f->conn, &f->arena, 1, 0, -1, &ms, &n, &f->err), LY_EINVAL);

    expect_ok(f, ly_store_member_list(f->conn, &f->arena, 1, 0, 100, &ms, &n, &f->err));
    assert_int_equal(n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ms[i].id, ids[i]);
}

static void test_member_conflicts(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *external_id, *email, *phone, *field;
    } cases[] = {
        {"ext-a", "z@example.com", "+14155550009", "external_id"},
        {"ext-z", "a@example.com", "+14155550009", "email"},
        {"ext-z", "z@example.com", "+14155550001", "phone"},
    };
    insert_member(f, "ext-a", "a@example.com", "+14155550001");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ly_member m = new_member(cases[i].external_id, cases[i].email, cases[i].phone);
        expect_ok(f, ly_store_begin_write(f->conn, &f->err));
        expect_rc(f, ly_store_member_insert(f->conn, &m, &f->err), LY_ECONFLICT);
        assert_string_equal(f->err.code, "already_exists");
        assert_string_equal(f->err.field, cases[i].field);
        assert_non_null(strstr(f->err.message, cases[i].field));
        ly_store_rollback(f->conn);
    }
    /* Absent identifiers never collide. */
    insert_member(f, NULL, NULL, NULL);
    insert_member(f, NULL, NULL, NULL);
}

static void test_card_attach(void **state)
{
    fixture *f = *state;
    int64_t a = insert_member(f, "ext-a", NULL, NULL);
    int64_t b = insert_member(f, "ext-b", NULL, NULL);
    expect_ok(f, ly_store_card_attach(f->conn, 1, a, "CARD3", 300, &f->err));
    expect_ok(f, ly_store_card_attach(f->conn, 1, a, "CARD1", 100, &f->err));
    expect_ok(f, ly_store_card_attach(f->conn, 1, a, "CARD2", 200, &f->err));

    expect_rc(f, ly_store_card_attach(f->conn, 1, b, "CARD1", 400, &f->err), LY_ECONFLICT);
    assert_string_equal(f->err.code, "already_exists");
    assert_string_equal(f->err.field, "card");
    expect_rc(f, ly_store_card_attach(f->conn, 1, a, "CARD2", 400, &f->err), LY_ECONFLICT);
    assert_string_equal(f->err.field, "card");
    expect_rc(f, ly_store_card_attach(f->conn, 1, 9999, "CARD9", 400, &f->err), LY_ENOTFOUND);
    expect_rc(f, ly_store_card_attach(f->conn, 2, a, "CARD9", 400, &f->err), LY_ENOTFOUND);

    static const char *const oldest_first[] = {"CARD1", "CARD2", "CARD3"};
    ly_member m;
    expect_ok(f, ly_store_member_get(f->conn, &f->arena, 1, a, &m, &f->err));
    assert_cards(&m, oldest_first, 3);
    expect_ok(f, ly_store_member_get(f->conn, &f->arena, 1, b, &m, &f->err));
    assert_cards(&m, NULL, 0);
}

static ly_key new_key(const char *id, const char *name, int64_t created_at)
{
    ly_key k = {.id = id,
                .program_id = LY_DEFAULT_PROGRAM,
                .scope = "pos",
                .name = name,
                .created_at = created_at};
    for (size_t i = 0; i < sizeof k.hash; i++)
        k.hash[i] = (unsigned char)(i * 37 + (unsigned)created_at);
    return k;
}

static void assert_key(const ly_key *got, const ly_key *want)
{
    assert_string_equal(got->id, want->id);
    assert_int_equal(got->program_id, want->program_id);
    assert_string_equal(got->scope, want->scope);
    assert_str_or_null(got->name, want->name);
    assert_memory_equal(got->hash, want->hash, sizeof want->hash);
    assert_int_equal(got->created_at, want->created_at);
    assert_int_equal(got->revoked_at, want->revoked_at);
}

static void test_keys(void **state)
{
    fixture *f = *state;
    ly_key k2 = new_key("abcdefghij02", NULL, 200);
    ly_key k1 = new_key("abcdefghij01", "front till", 100);
    k1.scope = "admin";
    k1.hash[0] = 0; /* a zero byte survives the round trip */
    expect_ok(f, ly_store_key_insert(f->conn, &k2, &f->err));
    expect_ok(f, ly_store_key_insert(f->conn, &k1, &f->err));

    ly_key got, *ks;
    size_t n;
    expect_ok(f, ly_store_key_get(f->conn, &f->arena, k1.id, &got, &f->err));
    assert_key(&got, &k1);
    expect_ok(f, ly_store_key_list(f->conn, &f->arena, 1, &ks, &n, &f->err));
    assert_int_equal(n, 2);
    assert_key(&ks[0], &k1);
    assert_key(&ks[1], &k2);
    expect_ok(f, ly_store_key_list(f->conn, &f->arena, 2, &ks, &n, &f->err));
    assert_int_equal(n, 0);

    expect_ok(f, ly_store_key_revoke(f->conn, 1, k1.id, 500, &f->err));
    expect_ok(f, ly_store_key_revoke(f->conn, 1, k1.id, 900, &f->err));
    k1.revoked_at = 500;
    expect_ok(f, ly_store_key_get(f->conn, &f->arena, k1.id, &got, &f->err));
    assert_key(&got, &k1);
    expect_ok(f, ly_store_key_get(f->conn, &f->arena, k2.id, &got, &f->err));
    assert_key(&got, &k2);

    expect_rc(f, ly_store_key_revoke(f->conn, 1, "nosuchkey000", 500, &f->err), LY_ENOTFOUND);
    expect_rc(f, ly_store_key_revoke(f->conn, 2, k2.id, 500, &f->err), LY_ENOTFOUND);
    expect_rc(f, ly_store_key_get(f->conn, &f->arena, "nosuchkey000", &got, &f->err), LY_ENOTFOUND);
    assert_string_equal(f->err.code, "not_found");

    ly_key dup = new_key(k2.id, "again", 300);
    expect_rc(f, ly_store_key_insert(f->conn, &dup, &f->err), LY_ECONFLICT);
    assert_string_equal(f->err.field, "id");
}

static const char *const table_names[] = {
    "programs",    "members",          "member_cards", "api_keys",         "accounts",
    "entries",     "postings",         "lots",         "lot_consumptions", "events",
    "redemptions", "idempotency_keys", "rules",        "rule_usage",       "event_rules"};
#define NTABLES (sizeof table_names / sizeof table_names[0])

/* Row counts of every table, in table_names' order. */
static void table_rows(fixture *f, int64_t rows[NTABLES])
{
    ly_table_count *t;
    size_t n;
    expect_ok(f, ly_store_table_counts(f->conn, &f->arena, &t, &n, &f->err));
    assert_int_equal(n, NTABLES);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(t[i].table, table_names[i]);
        rows[i] = t[i].rows;
    }
}

static int64_t table_count(fixture *f, const char *table)
{
    int64_t rows[NTABLES];
    table_rows(f, rows);
    for (size_t i = 0; i < NTABLES; i++)
        if (strcmp(table_names[i], table) == 0)
            return rows[i];
    fail_msg("no table %s", table);
    return -1;
}

/* The first four tables hold these counts; the ledger's are empty. */
static void assert_counts(fixture *f, int64_t programs, int64_t members, int64_t cards,
                          int64_t keys)
{
    int64_t want[NTABLES] = {programs, members, cards, keys}, rows[NTABLES];
    table_rows(f, rows);
    for (size_t i = 0; i < NTABLES; i++)
        assert_int_equal(rows[i], want[i]);
}

static void test_table_counts(void **state)
{
    fixture *f = *state;
    assert_counts(f, 1, 0, 0, 0);
    int64_t a = insert_member(f, "ext-a", NULL, NULL);
    insert_member(f, "ext-b", NULL, NULL);
    expect_ok(f, ly_store_card_attach(f->conn, 1, a, "CARD1", 1, &f->err));
    ly_key k = new_key("abcdefghij01", NULL, 1);
    expect_ok(f, ly_store_key_insert(f->conn, &k, &f->err));
    assert_counts(f, 1, 2, 1, 1);
}

static void test_transactions(void **state)
{
    fixture *f = *state;
    ly_member m = new_member("ext-a", NULL, NULL), got;

    expect_ok(f, ly_store_begin_write(f->conn, &f->err));
    expect_ok(f, ly_store_member_insert(f->conn, &m, &f->err));
    expect_ok(f, ly_store_card_attach(f->conn, 1, m.id, "CARD1", 1, &f->err));
    ly_store_rollback(f->conn);
    expect_rc(f, ly_store_member_get(f->conn, &f->arena, 1, m.id, &got, &f->err), LY_ENOTFOUND);
    assert_counts(f, 1, 0, 0, 0);
    ly_store_rollback(f->conn); /* nothing open: harmless */

    /* Released inside a transaction: rolled back. */
    expect_ok(f, ly_store_begin_write(f->conn, &f->err));
    expect_ok(f, ly_store_member_insert(f->conn, &m, &f->err));
    ly_store_release(f->store, f->conn);
    assert_non_null(f->conn = ly_store_acquire(f->store, &f->err));
    assert_counts(f, 1, 0, 0, 0);

    expect_ok(f, ly_store_begin_write(f->conn, &f->err));
    expect_ok(f, ly_store_member_insert(f->conn, &m, &f->err));
    expect_ok(f, ly_store_commit(f->conn, &f->err));
    expect_ok(f, ly_store_begin_read(f->conn, &f->err));
    expect_ok(f, ly_store_member_get(f->conn, &f->arena, 1, m.id, &got, &f->err));
    expect_ok(f, ly_store_commit(f->conn, &f->err));
    assert_member(&got, &m);

    /* Another connection sees only what was committed. */
    ly_conn *other = ly_store_acquire(f->store, &f->err);
    assert_non_null(other);
    expect_ok(f, ly_store_begin_write(f->conn, &f->err));
    ly_member m2 = new_member("ext-b", NULL, NULL);
    expect_ok(f, ly_store_member_insert(f->conn, &m2, &f->err));
    expect_rc(f, ly_store_member_get(other, &f->arena, 1, m2.id, &got, &f->err), LY_ENOTFOUND);
    expect_ok(f, ly_store_commit(f->conn, &f->err));
    expect_ok(f, ly_store_member_get(other, &f->arena, 1, m2.id, &got, &f->err));

    /* A read transaction keeps its snapshot while others commit. */
    expect_ok(f, ly_store_begin_read(other, &f->err));
    expect_ok(f, ly_store_member_get(other, &f->arena, 1, m2.id, &got, &f->err));
    ly_member m3 = new_member("ext-c", NULL, NULL);
    expect_ok(f, ly_store_member_insert(f->conn, &m3, &f->err));
    expect_rc(f, ly_store_member_get(other, &f->arena, 1, m3.id, &got, &f->err), LY_ENOTFOUND);
    expect_ok(f, ly_store_commit(other, &f->err));
    expect_ok(f, ly_store_member_get(other, &f->arena, 1, m3.id, &got, &f->err));
    ly_store_release(f->store, other);
}

/* A read transaction that then writes over a newer commit must start again:
 * LY_ERETRY on both backends (SQLite: stale snapshot; PostgreSQL:
 * serialization failure). */
static void test_retry(void **state)
{
    fixture *f = *state;
    int64_t id = insert_member(f, "ext-a", NULL, NULL);
    ly_conn *other = ly_store_acquire(f->store, &f->err);
    assert_non_null(other);
    ly_member mine, theirs;
    expect_ok(f, ly_store_begin_read(f->conn, &f->err));
    expect_ok(f, ly_store_member_get(f->conn, &f->arena, 1, id, &mine, &f->err));
    expect_ok(f, ly_store_member_get(other, &f->arena, 1, id, &theirs, &f->err));
    theirs.name = "Theirs";
    expect_ok(f, ly_store_member_update(other, &theirs, &f->err));
    mine.name = "Mine";
    expect_rc(f, ly_store_member_update(f->conn, &mine, &f->err), LY_ERETRY);
    assert_string_equal(f->err.code, "storage_busy");
    ly_store_rollback(f->conn);
    ly_store_release(f->store, other);

    expect_ok(f, ly_store_begin_write(f->conn, &f->err));
    expect_ok(f, ly_store_member_update(f->conn, &mine, &f->err));
    expect_ok(f, ly_store_commit(f->conn, &f->err));
    expect_ok(f, ly_store_member_get(f->conn, &f->arena, 1, id, &mine, &f->err));
    assert_string_equal(mine.name, "Mine");
}

typedef struct waiter {
    ly_store *store;
    ly_conn *got;
} waiter;

static void *acquire_thread(void *arg)
{
    waiter *w = arg;
    w->got = ly_store_acquire(w->store, NULL);
    return NULL;
}

/* A full pool makes acquire wait for a release. */
static void test_pool(void **state)
{
    fixture *f = *state;
    ly_conn *second = ly_store_acquire(f->store, &f->err);
    assert_non_null(second);
    assert_ptr_not_equal(second, f->conn);
    waiter w = {f->store, NULL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, acquire_thread, &w), 0);
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
    ly_store_release(f->store, second);
    pthread_join(t, NULL);
    assert_ptr_equal(w.got, second);
    ly_store_release(f->store, w.got);
}

/* ---- The ledger ---------------------------------------------------------- */

/* Runs SQL on the test's database behind the store's back, to break what the
 * store never would (CHECK constraints are off on SQLite for it). */
static void raw_sql(fixture *f, const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    if (is_pg(f)) {
        PGconn *pg = PQconnectdb(f->url);
        PQsetNoticeProcessor(pg, quiet, NULL);
        PGresult *r = PQexec(pg, sql);
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            fail_msg("%s: %s", sql, PQerrorMessage(pg));
        PQclear(r);
        PQfinish(pg);
        return;
    }
    sqlite3 *db = NULL;
    char *msg = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, "PRAGMA ignore_check_constraints = ON", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

/* The integer the query's first row starts with, read behind the store's
 * back. */
static int64_t raw_int(fixture *f, const char *sql)
{
    int64_t v = 0;
    if (is_pg(f)) {
        PGconn *pg = PQconnectdb(f->url);
        PGresult *r = PQexec(pg, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
            fail_msg("%s: %s", sql, PQerrorMessage(pg));
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(pg);
        return v;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static ly_posting posting(int64_t member_id, const char *kind, const char *asset, int64_t amount)
{
    return (ly_posting){member_id, kind, asset, amount};
}

static ly_entry new_entry(int64_t member_id, const char *kind, int64_t at)
{
    return (ly_entry){.program_id = LY_DEFAULT_PROGRAM,
                      .member_id = member_id,
                      .kind = kind,
                      .effective_at = at,
                      .created_at = at + 1};
}

static int64_t insert_entry(fixture *f, int64_t member_id, const char *kind, const ly_posting *p,
                            size_t n)
{
    ly_entry e = new_entry(member_id, kind, 1000);
    expect_ok(f, ly_store_entry_insert(f->conn, &e, p, n, &f->err));
    assert_true(e.id > 0);
    return e.id;
}

/* An earn of points to a member from the program's issued account. */
static int64_t earn(fixture *f, int64_t member_id, const char *asset, int64_t amount)
{
    ly_posting p[] = {posting(member_id, "member", asset, amount),
                      posting(0, "issued", asset, -amount)};
    return insert_entry(f, member_id, "earn", p, 2);
}

static int64_t balance(fixture *f, int64_t member_id, const char *kind, const char *asset)
{
    int64_t b = -1;
    expect_ok(f, ly_store_account_balance(f->conn, LY_DEFAULT_PROGRAM, member_id, kind, asset, &b,
                                          &f->err));
    return b;
}

static ly_lot new_lot(int64_t member_id, int64_t entry_id, int64_t amount, int64_t expires_at,
                      int64_t created_at)
{
    return (ly_lot){.program_id = LY_DEFAULT_PROGRAM,
                    .member_id = member_id,
                    .asset = "points",
                    .entry_id = entry_id,
                    .amount = amount,
                    .remaining = amount,
                    .available_at = created_at + 7,
                    .expires_at = expires_at,
                    .created_at = created_at};
}

static int64_t insert_lot(fixture *f, ly_lot l)
{
    expect_ok(f, ly_store_lot_insert(f->conn, &l, &f->err));
    assert_true(l.id > 0);
    return l.id;
}

static int64_t lot_remaining(fixture *f, int64_t entry_id, int64_t lot_id)
{
    ly_lot *ls;
    size_t n;
    expect_ok(f, ly_store_lots_of_entry(f->conn, &f->arena, 1, entry_id, &ls, &n, &f->err));
    for (size_t i = 0; i < n; i++)
        if (ls[i].id == lot_id)
            return ls[i].remaining;
    fail_msg("lot %" PRId64 " is not entry %" PRId64 "'s", lot_id, entry_id);
    return -1;
}

/* Asserts that verify reports detail under invariant (among others, or
 * alone when alone is set). */
static void expect_violation(fixture *f, const char *invariant, const char *detail, int alone)
{
    ly_violation *v;
    size_t n;
    expect_ok(f, ly_store_verify(f->conn, &f->arena, &v, &n, &f->err));
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].invariant, invariant) == 0 && strcmp(v[i].detail, detail) == 0) {
            if (alone && n != 1)
                fail_msg("%s: %zu violations, the first %s: %s", detail, n, v[0].invariant,
                         v[0].detail);
            return;
        }
    for (size_t i = 0; i < n; i++)
        print_error("%s: %s\n", v[i].invariant, v[i].detail);
    fail_msg("verify does not report %s: %s", invariant, detail);
}

static void expect_sound(fixture *f)
{
    ly_violation *v;
    size_t n;
    expect_ok(f, ly_store_verify(f->conn, &f->arena, &v, &n, &f->err));
    if (n)
        fail_msg("%zu violations, the first %s: %s", n, v[0].invariant, v[0].detail);
}

static void test_entry_postings(void **state)
{
    fixture *f = *state;
    int64_t m = insert_member(f, "ext-a", "a@example.com", NULL);
    ly_member got;
    expect_ok(f, ly_store_member_get(f->conn, &f->arena, 1, m, &got, &f->err));
    assert_int_equal(got.points, 0);
    assert_int_equal(got.credit, 0);
    assert_int_equal(got.last_activity_at, 0);
    assert_int_equal(balance(f, m, "member", "points"), 0);

    ly_entry e = {.program_id = 1,
                  .member_id = m,
                  .kind = "earn",
                  .event_id = 41,
                  .ref_entry_id = 0,
                  .memo = "purchase order-1",
                  .data = "{\"rule\":\"base\"}",
                  .effective_at = 5000,
                  .created_at = 5001};
    ly_posting p1[] = {posting(m, "member", "points", 100), posting(0, "issued", "points", -100)};
    expect_ok(f, ly_store_begin_write(f->conn, &f->err));
    expect_ok(f, ly_store_member_lock(f->conn, 1, m, NULL, &f->err));
    expect_ok(f, ly_store_entry_insert(f->conn, &e, p1, 2, &f->err));
    expect_ok(f, ly_store_member_touch(f->conn, 1, m, 5000, &f->err));
    expect_ok(f, ly_store_commit(f->conn, &f->err));
    assert_true(e.id > 0);

    ly_posting p2[] = {posting(m, "member", "points", 20), posting(0, "issued", "points", -20),
                       posting(m, "member", "credit", 50), posting(0, "issued", "credit", -50)};
    ly_entry e2 = new_entry(m, "earn", 6000);
    e2.ref_entry_id = e.id;
    expect_ok(f, ly_store_entry_insert(f->conn, &e2, p2, 4, &f->err));
    assert_true(e2.id > e.id);

    assert_int_equal(balance(f, m, "member", "points"), 120);
    assert_int_equal(balance(f, m, "member", "credit"), 50);
    assert_int_equal(balance(f, 0, "issued", "points"), -120);
    assert_int_equal(balance(f, 0, "issued", "credit"), -50);
    assert_int_equal(balance(f, 0, "redeemed", "points"), 0);
    assert_int_equal(table_count(f, "accounts"), 4);
    assert_int_equal(table_count(f, "entries"), 2);
    assert_int_equal(table_count(f, "postings"), 6);

    /* Every member read carries the balances and the last activity. */
    expect_ok(f, ly_store_member_get(f->conn, &f->arena, 1, m, &got, &f->err));
    assert_int_equal(got.points, 120);
    assert_int_equal(got.credit, 50);
    assert_int_equal(got.last_activity_at, 5000);
    expect_ok(f,
              ly_store_member_find(f->conn, &f->arena, 1, "email", "a@example.com", &got, &f->err));
    assert_int_equal(got.points, 120);
    assert_int_equal(got.last_activity_at, 5000);
    int64_t other = insert_member(f, "ext-b", NULL, NULL);
    ly_member *ms;
    size_t n;
    expect_ok(f, ly_store_member_list(f->conn, &f->arena, 1, 0, 10, &ms, &n, &f->err));
    assert_int_equal(n, 2);
    assert_int_equal(ms[0].credit, 50);
    assert_int_equal(ms[1].id, other);
    assert_int_equal(ms[1].points, 0);
    assert_int_equal(ms[1].last_activity_at, 0);

    ly_entry r;
    expect_ok(f, ly_store_entry_get(f->conn, &f->arena, 1, e.id, &r, &f->err));
    assert_int_equal(r.id, e.id);
    assert_int_equal(r.program_id, 1);
    assert_int_equal(r.member_id, m);
    assert_string_equal(r.kind, "earn");
    assert_int_equal(r.event_id, 41);
    assert_int_equal(r.ref_entry_id, 0);
    assert_string_equal(r.memo, "purchase order-1");
    assert_string_equal(r.data, "{\"rule\":\"base\"}");
    assert_int_equal(r.effective_at, 5000);
    assert_int_equal(r.created_at, 5001);
    expect_ok(f, ly_store_entry_get(f->conn, &f->arena, 1, e2.id, &r, &f->err));
    assert_int_equal(r.event_id, 0);
    assert_int_equal(r.ref_entry_id, e.id);
    assert_null(r.memo);
    assert_null(r.data);
    expect_rc(f, ly_store_entry_get(f->conn, &f->arena, 2, e.id, &r, &f->err), LY_ENOTFOUND);
    expect_rc(f, ly_store_entry_get(f->conn, &f->arena, 1, 9999, &r, &f->err), LY_ENOTFOUND);

    expect_ok(f, ly_store_begin_write(f->conn, &f->err));
    expect_rc(f, ly_store_member_lock(f->conn, 1, 9999, NULL, &f->err), LY_ENOTFOUND);
    expect_rc(f, ly_store_member_lock(f->conn, 2, m, NULL, &f->err), LY_ENOTFOUND);
    ly_store_rollback(f->conn);
    expect_rc(f, ly_store_member_touch(f->conn, 1, 9999, 1, &f->err), LY_ENOTFOUND);

    /* Balances without their lots are unsound, until the lots exist. */
    ly_violation *v;
    expect_ok(f, ly_store_verify(f->conn, &f->arena, &v, &n, &f->err));
    assert_int_equal(n, 2);
    assert_string_equal(v[0].invariant, "member_lots");
    ly_lot credit = new_lot(m, e2.id, 50, 0, 1);
    credit.asset = "credit";
    insert_lot(f, new_lot(m, e.id, 100, 0, 1));
    insert_lot(f, new_lot(m, e2.id, 20, 0, 1));
    insert_lot(f, credit);
    expect_sound(f);
}

/* A member's balance stops at the ends of int64, exactly: reaching
 * INT64_MAX is fine, one more is refused, and a refused entry writes
 * nothing. A program account keeps no running balance: its balance is the
 * sum of its postings, which may reach INT64_MIN. */
static void test_entry_overflow(void **state)
{
    fixture *f = *state;
    int64_t a = insert_member(f, "ext-a", NULL, NULL);
    int64_t b = insert_member(f, "ext-b", NULL, NULL);
    earn(f, a, "points", INT64_MAX);
    earn(f, b, "points", 1);
    assert_int_equal(balance(f, 0, "issued", "points"), INT64_MIN);
    int64_t rows[NTABLES], after[NTABLES];
    table_rows(f, rows);

    /* Outside a transaction: nothing of the entry stays. */
    ly_posting more[] = {posting(a, "member", "points", 1), posting(0, "issued", "points", -1)};
    ly_entry e = new_entry(a, "earn", 1);
    expect_rc(f, ly_store_entry_insert(f->conn, &e, more, 2, &f->err), LY_EREFUSED);
    assert_string_equal(f->err.code, "balance_overflow");
    table_rows(f, after);
    assert_memory_equal(rows, after, sizeof rows);

    ly_posting up[] = {posting(0, "adjusted", "points", -1), posting(a, "member", "points", 1)};
    expect_ok(f, ly_store_begin_write(f->conn, &f->err));
    expect_rc(f, ly_store_entry_insert(f->conn, &e, up, 2, &f->err), LY_EREFUSED);
    assert_string_equal(f->err.code, "balance_overflow");
    ly_store_rollback(f->conn);
    assert_int_equal(balance(f, a, "member", "points"), INT64_MAX);
    assert_int_equal(balance(f, 0, "issued", "points"), INT64_MIN);
    assert_int_equal(balance(f, 0, "adjusted", "points"), 0);
    table_rows(f, after);
    assert_memory_equal(rows, after, sizeof rows);

    /* Back from the edge is fine; the program account's row holds no
     * balance of its own, only its postings do. */
    ly_posting down[] = {posting(a, "member", "points", -5), posting(0, "redeemed", "points", 5)};
    insert_entry(f, a, "redeem", down, 2);
    assert_int_equal(balance(f, a, "member", "points"), INT64_MAX - 5);
    assert_int_equal(balance(f, 0, "redeemed", "points"), 5);
    assert_int_equal(
        raw_int(f, "SELECT count(*) FROM accounts WHERE member_id = 0 AND balance <> 0"), 0);
}

static void test_entry_refused_postings(void **state)
{
    fixture *f = *state;
    int64_t m = insert_member(f, "ext-a", NULL, NULL);
    ly_posting twice[] = {posting(m, "member", "points", 5), posting(0, "issued", "points", -10),
                          posting(m, "member", "points", 5)};
    ly_entry e = new_entry(m, "earn", 1);
    expect_rc(f, ly_store_entry_insert(f->conn, &e, twice, 3, &f->err), LY_EINTERNAL);
    assert_non_null(strstr(f->err.message, "twice"));
    ly_posting unnamed[] = {posting(m, NULL, "points", 5), posting(0, "issued", "points", -5)};
    expect_rc(f, ly_store_entry_insert(f->conn, &e, unnamed, 2, &f->err), LY_EINTERNAL);
    assert_counts(f, 1, 1, 0, 0);
    /* The same kind for two members, or two assets, are different accounts. */
    ly_posting fine[] = {posting(m, "member", "points", 5), posting(0, "member", "points", -5),
                         posting(m, "member", "credit", 5), posting(m, "issued", "credit", -5)};
    insert_entry(f, m, "adjust", fine, 4);
    assert_int_equal(table_count(f, "accounts"), 4);
    /* Names travel intact, whatever characters they hold. */
    static const char odd[] = "a \"quoted\", {braced} \\ NULL";
    ly_posting named[] = {posting(m, "member", "credit", 1), posting(0, odd, "credit", -1)};
    insert_entry(f, m, "adjust", named, 2);
    assert_int_equal(balance(f, 0, odd, "credit"), -1);
    assert_int_equal(balance(f, m, "member", "credit"), 6);
}

static void test_lots_open_order(void **state)
{
    fixture *f = *state;
    int64_t m = insert_member(f, "ext-a", NULL, NULL);
    int64_t o = insert_member(f, "ext-b", NULL, NULL);
    int64_t e = earn(f, m, "points", 1000);
    int64_t never_old = insert_lot(f, new_lot(m, e, 10, 0, 5));
    int64_t exp300 = insert_lot(f, new_lot(m, e, 10, 300, 1));
    int64_t exp100_late = insert_lot(f, new_lot(m, e, 10, 100, 20));
    int64_t exp100 = insert_lot(f, new_lot(m, e, 10, 100, 10));
    int64_t never_new = insert_lot(f, new_lot(m, e, 10, 0, 30));
    int64_t exp200 = insert_lot(f, new_lot(m, e, 10, 200, 40));
    int64_t exp200_same = insert_lot(f, new_lot(m, e, 10, 200, 40));
    ly_lot spent = new_lot(m, e, 10, 50, 1);
    spent.remaining = 0;
    insert_lot(f, spent);
    ly_lot credit = new_lot(m, e, 10, 50, 1);
    credit.asset = "credit";
    insert_lot(f, credit);
    insert_lot(f, new_lot(o, e, 10, 50, 1));

    int64_t want[] = {exp100, exp100_late, exp200, exp200_same, exp300, never_old, never_new};
    ly_lot *ls;
    size_t n;
    expect_ok(f, ly_store_lots_open(f->conn, &f->arena, 1, m, "points", &ls, &n, &f->err));
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ls[i].id, want[i]);
    assert_int_equal(ls[0].program_id, 1);
    assert_int_equal(ls[0].member_id, m);
    assert_string_equal(ls[0].asset, "points");
    assert_int_equal(ls[0].entry_id, e);
    assert_int_equal(ls[0].amount, 10);
    assert_int_equal(ls[0].remaining, 10);
    assert_int_equal(ls[0].available_at, 17);
    assert_int_equal(ls[0].expires_at, 100);
    assert_int_equal(ls[0].created_at, 10);
    assert_int_equal(ls[5].expires_at, 0);

    expect_ok(f, ly_store_lots_open(f->conn, &f->arena, 1, m, "credit", &ls, &n, &f->err));
    assert_int_equal(n, 1);
    expect_ok(f, ly_store_lots_open(f->conn, &f->arena, 2, m, "points", &ls, &n, &f->err));
    assert_int_equal(n, 0);
    expect_ok(f, ly_store_lots_of_entry(f->conn, &f->arena, 1, e, &ls, &n, &f->err));
    assert_int_equal(n, 10);
    assert_int_equal(ls[0].id, never_old);
    assert_int_equal(ls[9].member_id, o);

    /* A lot is never empty at birth, nor fuller than its amount. */
    ly_lot bad = new_lot(m, e, 0, 0, 1);
    expect_rc(f, ly_store_lot_insert(f->conn, &bad, &f->err), LY_EINVAL);
    bad = new_lot(m, e, 5, 0, 1);
    bad.remaining = 6;
    expect_rc(f, ly_store_lot_insert(f->conn, &bad, &f->err), LY_EINVAL);
    bad = new_lot(m, 9999, 5, 0, 1);
    expect_rc(f, ly_store_lot_insert(f->conn, &bad, &f->err), LY_ENOTFOUND);
}

static void test_consumption(void **state)
{
    fixture *f = *state;
    int64_t m = insert_member(f, "ext-a", NULL, NULL);
    int64_t e = earn(f, m, "points", 10);
    int64_t lot = insert_lot(f, new_lot(m, e, 10, 0, 1));
    int64_t spend = insert_entry(f, m, "redeem", NULL, 0);
    int64_t cancel = insert_entry(f, m, "redeem_cancel", NULL, 0);

    ly_consumption k = {spend, lot, 4};
    expect_ok(f, ly_store_consumption_insert(f->conn, 1, &k, &f->err));
    assert_int_equal(lot_remaining(f, e, lot), 6);
    k.amount = 7;
    expect_rc(f, ly_store_consumption_insert(f->conn, 1, &k, &f->err), LY_EINTERNAL);
    char want[64];
    snprintf(want, sizeof want, "lot %" PRId64 " cannot give 7", lot);
    assert_string_equal(f->err.message, want);
    assert_int_equal(lot_remaining(f, e, lot), 6);
    assert_int_equal(table_count(f, "lot_consumptions"), 1);
    k.amount = 6;
    expect_rc(f, ly_store_consumption_insert(f->conn, 2, &k, &f->err), LY_EINTERNAL);
    expect_ok(f, ly_store_consumption_insert(f->conn, 1, &k, &f->err));
    assert_int_equal(lot_remaining(f, e, lot), 0);

    ly_lot *ls;
    size_t n;
    expect_ok(f, ly_store_lots_open(f->conn, &f->arena, 1, m, "points", &ls, &n, &f->err));
    assert_int_equal(n, 0);

    /* Given back, but never beyond the lot's amount. */
    ly_consumption back = {cancel, lot, -3};
    expect_ok(f, ly_store_consumption_insert(f->conn, 1, &back, &f->err));
    assert_int_equal(lot_remaining(f, e, lot), 3);
    back.amount = -8;
    expect_rc(f, ly_store_consumption_insert(f->conn, 1, &back, &f->err), LY_EINTERNAL);
    back.amount = -7;
    expect_ok(f, ly_store_consumption_insert(f->conn, 1, &back, &f->err));
    assert_int_equal(lot_remaining(f, e, lot), 10);
    ly_consumption missing = {spend, 9999, 1};
    expect_rc(f, ly_store_consumption_insert(f->conn, 1, &missing, &f->err), LY_EINTERNAL);

    ly_consumption *ks;
    expect_ok(f, ly_store_consumptions_of_entry(f->conn, &f->arena, 1, spend, &ks, &n, &f->err));
    assert_int_equal(n, 2);
    assert_int_equal(ks[0].entry_id, spend);
    assert_int_equal(ks[0].lot_id, lot);
    assert_int_equal(ks[0].amount, 4);
    assert_int_equal(ks[1].amount, 6);
    expect_ok(f, ly_store_consumptions_of_entry(f->conn, &f->arena, 1, cancel, &ks, &n, &f->err));
    assert_int_equal(n, 2);
    assert_int_equal(ks[0].amount, -3);
    assert_int_equal(ks[1].amount, -7);
    expect_ok(f, ly_store_consumptions_of_entry(f->conn, &f->arena, 2, cancel, &ks, &n, &f->err));
    assert_int_equal(n, 0);
}

static void test_lots_expired(void **state)
{
    fixture *f = *state;
    int64_t a = insert_member(f, "ext-a", NULL, NULL);
    int64_t b = insert_member(f, "ext-b", NULL, NULL);
    int64_t e = earn(f, a, "points", 100);
    int64_t b100 = insert_lot(f, new_lot(b, e, 10, 100, 1));
    int64_t a150 = insert_lot(f, new_lot(a, e, 10, 150, 1));
    int64_t a100 = insert_lot(f, new_lot(a, e, 10, 100, 2));
    insert_lot(f, new_lot(a, e, 10, 0, 1));   /* never */
    insert_lot(f, new_lot(a, e, 10, 151, 1)); /* later */
    ly_lot spent = new_lot(a, e, 10, 50, 1);
    spent.remaining = 0;
    insert_lot(f, spent);
    ly_lot elsewhere = new_lot(a, e, 10, 50, 1);
    elsewhere.program_id = 2;
    insert_lot(f, elsewhere);

    ly_lot *ls;
    size_t n;
    expect_ok(f, ly_store_lots_expired(f->conn, &f->arena, 1, 150, 10, &ls, &n, &f->err));
    assert_int_equal(n, 3);
    assert_int_equal(ls[0].id, a150);
    assert_int_equal(ls[1].id, a100);
    assert_int_equal(ls[2].id, b100);
    expect_ok(f, ly_store_lots_expired(f->conn, &f->arena, 1, 150, 1, &ls, &n, &f->err));
    assert_int_equal(n, 1);
    expect_ok(f, ly_store_lots_expired(f->conn, &f->arena, 1, 99, 10, &ls, &n, &f->err));
    assert_int_equal(n, 0);
    expect_ok(f, ly_store_lots_expired(f->conn, &f->arena, 1, 150, 0, &ls, &n, &f->err));
    assert_int_equal(n, 0);
    expect_rc(f, ly_store_lots_expired(f->conn, &f->arena, 1, 150, -1, &ls, &n, &f->err),
              LY_EINVAL);
}

static void test_members_inactive(void **state)
{
    fixture *f = *state;
    /* Enrolled at 1000 (new_member). */
    int64_t idle = insert_member(f, "idle", NULL, NULL);
    int64_t busy = insert_member(f, "busy", NULL, NULL);
    int64_t empty = insert_member(f, "empty", NULL, NULL);
    int64_t credit = insert_member(f, "credit", NULL, NULL);
    int64_t owing = insert_member(f, "owing", NULL, NULL);
    int64_t fresh = insert_member(f, "fresh", NULL, NULL);
    earn(f, idle, "points", 50);
    earn(f, busy, "points", 10);
    expect_ok(f, ly_store_member_touch(f->conn, 1, busy, 5000, &f->err));
    earn(f, empty, "points", 10);
    earn(f, empty, "points", -10);
    earn(f, credit, "credit", 10);
    earn(f, owing, "points", -5);
    earn(f, fresh, "points", 5);
    expect_ok(f, ly_store_member_touch(f->conn, 1, fresh, 1500, &f->err));

    int64_t *ids;
    size_t n;
    expect_ok(f, ly_store_members_inactive(f->conn, &f->arena, 1, 1500, 0, 10, &ids, &n, &f->err));
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], idle);
    assert_int_equal(ids[1], owing);
    expect_ok(f, ly_store_members_inactive(f->conn, &f->arena, 1, 6000, 0, 10, &ids, &n, &f->err));
    assert_int_equal(n, 4);
    assert_int_equal(ids[1], busy);
    assert_int_equal(ids[3], fresh);
    expect_ok(f,
              ly_store_members_inactive(f->conn, &f->arena, 1, 6000, idle, 2, &ids, &n, &f->err));
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], busy);
    assert_int_equal(ids[1], owing);
    expect_ok(f, ly_store_members_inactive(f->conn, &f->arena, 1, 1000, 0, 10, &ids, &n, &f->err));
    assert_int_equal(n, 0);
    expect_ok(f, ly_store_members_inactive(f->conn, &f->arena, 2, 6000, 0, 10, &ids, &n, &f->err));
    assert_int_equal(n, 0);
}

static void test_activity(void **state)
{
    fixture *f = *state;
    int64_t m = insert_member(f, "ext-a", NULL, NULL);
    int64_t o = insert_member(f, "ext-b", NULL, NULL);
    ly_entry e1 = new_entry(m, "earn", 100);
    e1.event_id = 7;
    e1.memo = "order-1";
    ly_posting p1[] = {posting(m, "member", "points", 12), posting(0, "issued", "points", -12),
                       posting(m, "member", "credit", 30), posting(0, "issued", "credit", -30)};
    expect_ok(f, ly_store_entry_insert(f->conn, &e1, p1, 4, &f->err));
    earn(f, o, "points", 99);
    ly_entry e2 = new_entry(m, "redeem", 200);
    e2.data = "{\"redemption\":1}";
    ly_posting p2[] = {posting(m, "member", "points", -5), posting(0, "redeemed", "points", 5)};
    expect_ok(f, ly_store_entry_insert(f->conn, &e2, p2, 2, &f->err));
    ly_posting p3[] = {posting(o, "member", "points", -4), posting(m, "member", "points", 4)};
    ly_entry e3 = new_entry(o, "transfer", 300);
    expect_ok(f, ly_store_entry_insert(f->conn, &e3, p3, 2, &f->err));

    static const struct {
        const char *kind, *asset;
        int64_t amount;
    } want[] = {{"transfer", "points", 4},
                {"redeem", "points", -5},
                {"earn", "credit", 30},
                {"earn", "points", 12}};
    int64_t ids[] = {e3.id, e2.id, e1.id, e1.id};
    ly_activity *v;
    size_t n;
    expect_ok(f, ly_store_activity(f->conn, &f->arena, 1, m, 0, 50, &v, &n, &f->err));
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(v[i].entry_id, ids[i]);
        assert_string_equal(v[i].kind, want[i].kind);
        assert_string_equal(v[i].asset, want[i].asset);
        assert_int_equal(v[i].amount, want[i].amount);
    }
    assert_int_equal(v[3].event_id, 7);
    assert_string_equal(v[3].memo, "order-1");
    assert_null(v[3].data);
    assert_int_equal(v[3].effective_at, 100);
    assert_int_equal(v[3].created_at, 101);
    assert_string_equal(v[1].data, "{\"redemption\":1}");
    assert_null(v[1].memo);
    assert_int_equal(v[1].event_id, 0);

    expect_ok(f, ly_store_activity(f->conn, &f->arena, 1, m, 0, 2, &v, &n, &f->err));
    assert_int_equal(n, 2);
    assert_int_equal(v[1].entry_id, e2.id);
    expect_ok(f, ly_store_activity(f->conn, &f->arena, 1, m, e2.id, 2, &v, &n, &f->err));
    assert_int_equal(n, 2);
    assert_int_equal(v[0].entry_id, e1.id);
    assert_string_equal(v[0].asset, "credit");
    expect_ok(f, ly_store_activity(f->conn, &f->arena, 1, m, e1.id, 2, &v, &n, &f->err));
    assert_int_equal(n, 0);
    expect_ok(f, ly_store_activity(f->conn, &f->arena, 1, o, 0, 50, &v, &n, &f->err));
    assert_int_equal(n, 2);
    expect_ok(f, ly_store_activity(f->conn, &f->arena, 1, 9999, 0, 50, &v, &n, &f->err));
    assert_int_equal(n, 0);
    expect_rc(f, ly_store_activity(f->conn, &f->arena, 1, m, 0, -1, &v, &n, &f->err), LY_EINVAL);
}

static ly_event new_event(const char *ext_id, int64_t member_id)
{
    return (ly_event){.program_id = LY_DEFAULT_PROGRAM,
                      .ext_id = ext_id,
                      .type = "purchase",
                      .member_id = member_id,
                      .amount = 1250,
                      .currency = "USD",
                      .occurred_at = 900,
                      .body = "{\"id\":\"order-1\"}",
                      .request_hash = "ab12",
                      .created_at = 950};
}

static void assert_event(const ly_event *got, const ly_event *want)
{
    assert_int_equal(got->id, want->id);
    assert_int_equal(got->program_id, want->program_id);
    assert_string_equal(got->ext_id, want->ext_id);
    assert_string_equal(got->type, want->type);
    assert_int_equal(got->member_id, want->member_id);
    assert_int_equal(got->amount, want->amount);
    assert_str_or_null(got->currency, want->currency);
    assert_int_equal(got->occurred_at, want->occurred_at);
    assert_int_equal(got->original_id, want->original_id);
    assert_int_equal(got->points, want->points);
    assert_int_equal(got->credit, want->credit);
    assert_int_equal(got->returned_amount, want->returned_amount);
    assert_int_equal(got->reversed_points, want->reversed_points);
    assert_int_equal(got->reversed_credit, want->reversed_credit);
    assert_str_or_null(got->returned_items, want->returned_items);
    assert_int_equal(got->entry_id, want->entry_id);
    assert_str_or_null(got->body, want->body);
    assert_str_or_null(got->request_hash, want->request_hash);
    assert_str_or_null(got->result, want->result);
    assert_int_equal(got->created_at, want->created_at);
}

static void test_events(void **state)
{
    fixture *f = *state;
    int64_t m = insert_member(f, "ext-a", NULL, NULL);
    ly_event anon = new_event("order-0", 0);
    anon.currency = NULL;
    anon.body = anon.request_hash = NULL;
    ly_event ev = new_event("order-1", m);
    expect_ok(f, ly_store_event_insert(f->conn, &anon, &f->err));
    expect_ok(f, ly_store_event_insert(f->conn, &ev, &f->err));
    assert_true(ev.id > anon.id);

    ly_event got;
    expect_ok(f, ly_store_event_get(f->conn, &f->arena, 1, "order-1", &got, &f->err));
    assert_event(&got, &ev);
    expect_ok(f, ly_store_event_get_by_id(f->conn, &f->arena, 1, anon.id, &got, &f->err));
    assert_event(&got, &anon);

    ev.entry_id = earn(f, m, "points", 12);
    ev.points = 12;
    ev.credit = 3;
    ev.returned_amount = 525;
    ev.reversed_points = -6;
    ev.reversed_credit = -1;
    ev.returned_items = "{\"0\":1}";
    ev.result = "{\"points_earned\":12}";
    ev.amount = 1; /* not updated */
    expect_ok(f, ly_store_event_update(f->conn, &ev, &f->err));
    ev.amount = 1250;
    expect_ok(f, ly_store_event_get_by_id(f->conn, &f->arena, 1, ev.id, &got, &f->err));
    assert_event(&got, &ev);

    ly_event ret = new_event("ret-1", m);
    ret.type = "return";
    ret.original_id = ev.id;
    ret.points = -6;
    expect_ok(f, ly_store_event_insert(f->conn, &ret, &f->err));
    expect_ok(f, ly_store_event_get(f->conn, &f->arena, 1, "ret-1", &got, &f->err));
    assert_event(&got, &ret);

    ly_event dup = new_event("order-1", 0);
    expect_rc(f, ly_store_event_insert(f->conn, &dup, &f->err), LY_ECONFLICT);
    assert_string_equal(f->err.code, "already_exists");
    assert_string_equal(f->err.field, "id");
    assert_non_null(strstr(f->err.message, "event"));
    dup.program_id = 2;
    expect_ok(f, ly_store_event_insert(f->conn, &dup, &f->err));

    expect_rc(f, ly_store_event_get(f->conn, &f->arena, 1, "order-9", &got, &f->err), LY_ENOTFOUND);
    expect_rc(f, ly_store_event_get_by_id(f->conn, &f->arena, 2, ev.id, &got, &f->err),
              LY_ENOTFOUND);
    ev.id = 9999;
    expect_rc(f, ly_store_event_update(f->conn, &ev, &f->err), LY_ENOTFOUND);
    assert_int_equal(table_count(f, "events"), 4);
}

static void test_redemptions(void **state)
{
    fixture *f = *state;
    int64_t m = insert_member(f, "ext-a", NULL, NULL);
    int64_t e = earn(f, m, "points", 500);
    ly_redemption r = {.program_id = 1,
                       .member_id = m,
                       .asset = "points",
                       .amount = 500,
                       .entry_id = e,
                       .status = "active",
                       .created_at = 700};
    expect_ok(f, ly_store_redemption_insert(f->conn, &r, &f->err));
    assert_true(r.id > 0);
    ly_redemption got;
    expect_ok(f, ly_store_redemption_get(f->conn, &f->arena, 1, r.id, &got, &f->err));
    assert_int_equal(got.id, r.id);
    assert_int_equal(got.program_id, 1);
    assert_int_equal(got.member_id, m);
    assert_string_equal(got.asset, "points");
    assert_int_equal(got.amount, 500);
    assert_int_equal(got.entry_id, e);
    assert_string_equal(got.status, "active");
    assert_int_equal(got.cancel_entry_id, 0);
    assert_int_equal(got.created_at, 700);
    assert_int_equal(got.cancelled_at, 0);

    got.cancel_entry_id = earn(f, m, "points", 1);
    got.cancelled_at = 800;
    expect_ok(f, ly_store_redemption_cancel(f->conn, &got, &f->err));
    ly_redemption after;
    expect_ok(f, ly_store_redemption_get(f->conn, &f->arena, 1, r.id, &after, &f->err));
    assert_string_equal(after.status, "cancelled");
    assert_int_equal(after.cancel_entry_id, got.cancel_entry_id);
    assert_int_equal(after.cancelled_at, 800);

    /* Once only. */
    got.cancelled_at = 900;
    expect_rc(f, ly_store_redemption_cancel(f->conn, &got, &f->err), LY_EREFUSED);
    assert_string_equal(f->err.code, "already_cancelled");
    expect_ok(f, ly_store_redemption_get(f->conn, &f->arena, 1, r.id, &after, &f->err));
    assert_int_equal(after.cancelled_at, 800);

    got.id = 9999;
    expect_rc(f, ly_store_redemption_cancel(f->conn, &got, &f->err), LY_ENOTFOUND);
    expect_rc(f, ly_store_redemption_get(f->conn, &f->arena, 1, 9999, &after, &f->err),
              LY_ENOTFOUND);
    expect_rc(f, ly_store_redemption_get(f->conn, &f->arena, 2, r.id, &after, &f->err),
              LY_ENOTFOUND);
}

static void test_idempotency(void **state)
{
    fixture *f = *state;
    ly_idem got;
    expect_rc(f, ly_store_idem_get(f->conn, &f->arena, 1, "k-1", &got, &f->err), LY_ENOTFOUND);
    ly_idem i = {.key = "k-1",
                 .route = "POST /v1/members",
                 .request_hash = "0f0e",
                 .status = 201,
                 .response = "{\"id\":\"mem_1\"}",
                 .created_at = 1234};
    expect_ok(f, ly_store_idem_put(f->conn, 1, &i, &f->err));
    expect_ok(f, ly_store_idem_get(f->conn, &f->arena, 1, "k-1", &got, &f->err));
    assert_string_equal(got.key, "k-1");
    assert_string_equal(got.route, "POST /v1/members");
    assert_string_equal(got.request_hash, "0f0e");
    assert_int_equal(got.status, 201);
    assert_string_equal(got.response, "{\"id\":\"mem_1\"}");
    assert_int_equal(got.created_at, 1234);

    i.status = 200;
    expect_rc(f, ly_store_idem_put(f->conn, 1, &i, &f->err), LY_ECONFLICT);
    assert_string_equal(f->err.code, "already_exists");
    assert_string_equal(f->err.field, "idempotency_key");
    expect_ok(f, ly_store_idem_get(f->conn, &f->arena, 1, "k-1", &got, &f->err));
    assert_int_equal(got.status, 201);
    expect_rc(f, ly_store_idem_get(f->conn, &f->arena, 2, "k-1", &got, &f->err), LY_ENOTFOUND);
    expect_ok(f, ly_store_idem_put(f->conn, 2, &i, &f->err));
    assert_int_equal(table_count(f, "idempotency_keys"), 2);
}

/* A sound ledger passes; each invariant broken on purpose (and mended) is
 * reported, told with its ids and numbers. */
static void test_verify(void **state)
{
    fixture *f = *state;
    int64_t m = insert_member(f, "ext-a", NULL, NULL);
    int64_t o = insert_member(f, "ext-b", NULL, NULL);
    ly_event ev = new_event("order-1", m);
    expect_ok(f, ly_store_event_insert(f->conn, &ev, &f->err));
    ly_entry e = new_entry(m, "earn", 100);
    e.event_id = ev.id;
    ly_posting p[] = {posting(m, "member", "points", 100), posting(0, "issued", "points", -100)};
    expect_ok(f, ly_store_entry_insert(f->conn, &e, p, 2, &f->err));
    int64_t lot = insert_lot(f, new_lot(m, e.id, 60, 500, 100));
    int64_t lot2 = insert_lot(f, new_lot(m, e.id, 40, 0, 100));
    ev.entry_id = e.id;
    ev.points = 100;
    expect_ok(f, ly_store_event_update(f->conn, &ev, &f->err));
    ly_posting spend[] = {posting(m, "member", "points", -70),
                          posting(0, "redeemed", "points", 70)};
    int64_t r = insert_entry(f, m, "redeem", spend, 2);
    ly_consumption k1 = {r, lot, 60}, k2 = {r, lot2, 10};
    expect_ok(f, ly_store_consumption_insert(f->conn, 1, &k1, &f->err));
    expect_ok(f, ly_store_consumption_insert(f->conn, 1, &k2, &f->err));
    /* A member below zero has no lots. */
    ly_posting owe[] = {posting(o, "member", "points", -5), posting(0, "adjusted", "points", 5)};
    insert_entry(f, o, "adjust", owe, 2);
    ly_event anon = new_event("order-2", 0);
    anon.points = 10; /* a non-member purchase earns nothing: no entry needed */
    expect_ok(f, ly_store_event_insert(f->conn, &anon, &f->err));
    expect_sound(f);

    char want[160];
    snprintf(want, sizeof want, "entry %" PRId64 " points sums to 5", e.id);
    raw_sql(f,
            "UPDATE postings SET amount = amount + 5 WHERE entry_id = %" PRId64 " AND "
            "account_id = (SELECT id FROM accounts WHERE kind = 'issued');"
            "UPDATE accounts SET balance = balance + 5 WHERE kind = 'issued'",
            e.id);
    expect_violation(f, "entry_balanced", want, 1);
    raw_sql(f,
            "UPDATE postings SET amount = amount - 5 WHERE entry_id = %" PRId64 " AND "
            "account_id = (SELECT id FROM accounts WHERE kind = 'issued');"
            "UPDATE accounts SET balance = balance - 5 WHERE kind = 'issued'",
            e.id);
    expect_sound(f);

    /* A program account's row keeps no balance: what it holds is ignored,
     * its postings are its balance. */
    raw_sql(f, "UPDATE accounts SET balance = balance + 7 WHERE kind = 'redeemed'");
    expect_sound(f);
    raw_sql(f, "UPDATE accounts SET balance = balance - 7 WHERE kind = 'redeemed'");

    /* A member's balance off: its postings and its lots disagree. */
    int64_t mine = raw_int(f, "SELECT id FROM accounts WHERE kind = 'member' AND balance = 30");
    raw_sql(f, "UPDATE accounts SET balance = 33 WHERE id = %" PRId64, mine);
    snprintf(want, sizeof want,
             "account %" PRId64 " (member points of member %" PRId64
             ") balance 33, postings sum to 30",
             mine, m);
    expect_violation(f, "account_balance", want, 0);
    snprintf(want, sizeof want, "member %" PRId64 " points: balance 33, lots remaining 30", m);
    expect_violation(f, "member_lots", want, 0);
    raw_sql(f, "UPDATE accounts SET balance = 30 WHERE id = %" PRId64, mine);
    expect_sound(f);

    /* Lots beyond the balance, lots of a member below zero, lots without an
     * account. */
    static const char lot_sql[] =
        "INSERT INTO lots (program_id, member_id, asset, entry_id, amount, remaining, "
        "available_at, created_at) VALUES (1, %" PRId64 ", '%s', %" PRId64 ", 3, 3, 0, 0)";
    raw_sql(f, lot_sql, m, "points", e.id);
    snprintf(want, sizeof want, "member %" PRId64 " points: balance 30, lots remaining 33", m);
    expect_violation(f, "member_lots", want, 1);
    raw_sql(f, "DELETE FROM lots WHERE amount = 3");
    raw_sql(f, lot_sql, o, "points", e.id);
    snprintf(want, sizeof want, "member %" PRId64 " points: balance -5, lots remaining 3", o);
    expect_violation(f, "member_lots", want, 1);
    raw_sql(f, "DELETE FROM lots WHERE amount = 3");
    raw_sql(f, lot_sql, o, "credit", e.id);
    snprintf(want, sizeof want, "member %" PRId64 " credit: no account, lots remaining 3", o);
    expect_violation(f, "member_lots", want, 1);
    raw_sql(f, "DELETE FROM lots WHERE amount = 3");
    expect_sound(f);

    /* Only the schema's CHECK keeps lots in bounds: take it away. */
    if (is_pg(f))
        raw_sql(f, "ALTER TABLE lots DROP CONSTRAINT lots_remaining_check");
    raw_sql(f, "UPDATE lots SET remaining = 62 WHERE id = %" PRId64, lot);
    snprintf(want, sizeof want, "lot %" PRId64 " remaining 62 of amount 60", lot);
    expect_violation(f, "lot_bounds", want, 0);
    snprintf(want, sizeof want, "lot %" PRId64 " gave -2, its consumptions sum to 60", lot);
    expect_violation(f, "lot_consumed", want, 0);
    raw_sql(f, "UPDATE lots SET remaining = -1 WHERE id = %" PRId64, lot);
    snprintf(want, sizeof want, "lot %" PRId64 " remaining -1 of amount 60", lot);
    expect_violation(f, "lot_bounds", want, 0);
    raw_sql(f, "UPDATE lots SET remaining = 0 WHERE id = %" PRId64, lot);
    expect_sound(f);

    raw_sql(f, "UPDATE lot_consumptions SET amount = 11 WHERE lot_id = %" PRId64, lot2);
    snprintf(want, sizeof want, "lot %" PRId64 " gave 10, its consumptions sum to 11", lot2);
    expect_violation(f, "lot_consumed", want, 1);
    raw_sql(f, "UPDATE lot_consumptions SET amount = 10 WHERE lot_id = %" PRId64, lot2);

    raw_sql(f, "UPDATE events SET entry_id = NULL WHERE id = %" PRId64, ev.id);
    snprintf(want, sizeof want,
             "event %" PRId64 " (purchase order-1) of member %" PRId64
             " has 100 points and 0 credit but no entry",
             ev.id, m);
    expect_violation(f, "event_entry", want, 1);
    raw_sql(f, "UPDATE events SET entry_id = %" PRId64 " WHERE id = %" PRId64, e.id, ev.id);
    expect_sound(f);

    /* The list stops at 1000. */
    raw_sql(f,
            "WITH RECURSIVE s (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 1100) "
            "INSERT INTO events (program_id, ext_id, type, member_id, occurred_at, points, "
            "created_at) SELECT 1, 'bulk-' || i, 'return', %" PRId64 ", 0, -1, 0 FROM s",
            m);
    ly_violation *v;
    size_t n;
    expect_ok(f, ly_store_verify(f->conn, &f->arena, &v, &n, &f->err));
    assert_int_equal(n, 1000);
    assert_string_equal(v[999].invariant, "event_entry");
    assert_non_null(strstr(v[999].detail, "-1 points"));
}

typedef struct locker {
    ly_store *store;
    int64_t member_id;
    int rc;
    volatile int done;
} locker;

static void *lock_thread(void *arg)
{
    locker *l = arg;
    ly_conn *c = ly_store_acquire(l->store, NULL);
    l->rc = c ? ly_store_begin_write(c, NULL) : LY_ESTORE;
    if (l->rc == 0)
        l->rc = ly_store_member_lock(c, 1, l->member_id, NULL, NULL);
    l->done = 1;
    ly_store_release(l->store, c);
    return NULL;
}

/* PostgreSQL: a second writer of the same member waits for the first to
 * commit (SQLite's write transactions exclude each other anyway). */
/* ---- Purchase totals and rules ------------------------------------------- */

static ly_member member_of(fixture *f, int64_t id)
{
    ly_member m;
    expect_ok(f, ly_store_member_get(f->conn, &f->arena, 1, id, &m, &f->err));
    return m;
}

static void assert_totals(const ly_member *m, int64_t spend, int64_t count, int64_t last)
{
    assert_int_equal(m->lifetime_spend, spend);
    assert_int_equal(m->purchase_count, count);
    assert_int_equal(m->last_purchase_at, last);
}

static void test_member_purchase(void **state)
{
    fixture *f = *state;
    int64_t m = insert_member(f, "ext-a", "a@example.com", NULL);
    int64_t other = insert_member(f, "ext-b", NULL, NULL);
    ly_member got = member_of(f, m);
    assert_totals(&got, 0, 0, 0);
    assert_int_equal(got.last_activity_at, 0);

    expect_ok(f, ly_store_member_purchase(f->conn, 1, m, 5000, 1250, 1, &f->err));
    got = member_of(f, m);
    assert_totals(&got, 1250, 1, 5000);
    assert_int_equal(got.last_activity_at, 5000);

    /* An older purchase arriving late leaves the latest one's time, for the
     * last purchase and for the last activity alike. */
    expect_ok(f, ly_store_begin_write(f->conn, &f->err));
    expect_ok(f, ly_store_member_purchase(f->conn, 1, m, 3000, 800, 1, &f->err));
    expect_ok(f, ly_store_commit(f->conn, &f->err));
    got = member_of(f, m);
    assert_totals(&got, 2050, 2, 5000);
    assert_int_equal(got.last_activity_at, 5000);
    expect_ok(f, ly_store_member_touch(f->conn, 1, m, 4000, &f->err));
    assert_int_equal(member_of(f, m).last_activity_at, 5000);

    /* A return takes spend back and is no purchase. */
    expect_ok(f, ly_store_member_purchase(f->conn, 1, m, 7000, -500, 0, &f->err));
    got = member_of(f, m);
    assert_totals(&got, 1550, 2, 5000);
    assert_int_equal(got.last_activity_at, 7000);
    expect_ok(f, ly_store_member_purchase(f->conn, 1, m, 9000, 100, 1, &f->err));

    /* Every member read carries the totals. */
    expect_ok(f,
              ly_store_member_find(f->conn, &f->arena, 1, "email", "a@example.com", &got, &f->err));
    assert_totals(&got, 1650, 3, 9000);
    ly_member *ms;
    size_t n;
    expect_ok(f, ly_store_member_list(f->conn, &f->arena, 1, 0, 10, &ms, &n, &f->err));
    assert_int_equal(n, 2);
    assert_totals(&ms[0], 1650, 3, 9000);
    assert_totals(&ms[1], 0, 0, 0);
    expect_ok(
        f, ly_store_members_by_birthday(f->conn, &f->arena, 1, "04-01", 0, 10, &ms, &n, &f->err));
    assert_int_equal(n, 2);
    assert_totals(&ms[0], 1650, 3, 9000);

    expect_rc(f, ly_store_member_purchase(f->conn, 1, 9999, 1, 1, 1, &f->err), LY_ENOTFOUND);
    expect_rc(f, ly_store_member_purchase(f->conn, 2, m, 1, 1, 1, &f->err), LY_ENOTFOUND);

    /* Overflow is refused and changes nothing. */
    expect_rc(f, ly_store_member_purchase(f->conn, 1, m, 10000, INT64_MAX, 1, &f->err),
              LY_EREFUSED);
    assert_string_equal(f->err.code, "balance_overflow");
    got = member_of(f, m);
    assert_totals(&got, 1650, 3, 9000);
    assert_int_equal(got.last_activity_at, 9000);
    got = member_of(f, other);
    assert_totals(&got, 0, 0, 0);
}

static void test_members_by_birthday(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *birthdate, *status;
    } members[] = {
        {"1990-04-01", "active"}, {"1985-04-02", "active"},    {"2001-04-01", "active"},
        {NULL, "active"},         {"1970-04-01", "suspended"}, {"1999-04-01", "erased"},
        {"1960-04-01", "active"},
    };
    int64_t ids[7];
    for (size_t i = 0; i < 7; i++) {
        ly_member m = new_member(NULL, NULL, NULL);
        m.birthdate = members[i].birthdate;
        m.status = members[i].status;
        expect_ok(f, ly_store_member_insert(f->conn, &m, &f->err));
        ids[i] = m.id;
    }
    expect_ok(f, ly_store_card_attach(f->conn, 1, ids[2], "CARD2", 1, &f->err));
    expect_ok(f, ly_store_card_attach(f->conn, 1, ids[1], "CARD1", 1, &f->err));

    ly_member *ms;
    size_t n;
    expect_ok(
        f, ly_store_members_by_birthday(f->conn, &f->arena, 1, "04-01", 0, 10, &ms, &n, &f->err));
    assert_int_equal(n, 3);
    assert_int_equal(ms[0].id, ids[0]);
    assert_int_equal(ms[1].id, ids[2]);
    assert_int_equal(ms[2].id, ids[6]);
    assert_string_equal(ms[0].birthdate, "1990-04-01");
    assert_int_equal(ms[0].ncards, 0);
    static const char *const card2[] = {"CARD2"};
    assert_cards(&ms[1], card2, 1);

    /* Paged by id. */
    expect_ok(f,
              ly_store_members_by_birthday(f->conn, &f->arena, 1, "04-01", 0, 2, &ms, &n, &f->err));
    assert_int_equal(n, 2);
    assert_int_equal(ms[1].id, ids[2]);
    expect_ok(f, ly_store_members_by_birthday(f->conn, &f->arena, 1, "04-01", ids[2], 2, &ms, &n,
                                              &f->err));
    assert_int_equal(n, 1);
    assert_int_equal(ms[0].id, ids[6]);
    assert_cards(&ms[0], NULL, 0);
    expect_ok(f, ly_store_members_by_birthday(f->conn, &f->arena, 1, "04-01", ids[6], 2, &ms, &n,
                                              &f->err));
    assert_int_equal(n, 0);

    expect_ok(
        f, ly_store_members_by_birthday(f->conn, &f->arena, 1, "04-02", 0, 10, &ms, &n, &f->err));
    assert_int_equal(n, 1);
    assert_int_equal(ms[0].id, ids[1]);
    static const char *const card1[] = {"CARD1"};
    assert_cards(&ms[0], card1, 1);
    expect_ok(
        f, ly_store_members_by_birthday(f->conn, &f->arena, 1, "12-31", 0, 10, &ms, &n, &f->err));
    assert_int_equal(n, 0);
    expect_ok(
        f, ly_store_members_by_birthday(f->conn, &f->arena, 2, "04-01", 0, 10, &ms, &n, &f->err));
    assert_int_equal(n, 0);
    expect_ok(f,
              ly_store_members_by_birthday(f->conn, &f->arena, 1, "04-01", 0, 0, &ms, &n, &f->err));
    assert_int_equal(n, 0);

    static const char *const bad[] = {"4-01", "04-1", "0401", "04-01x", "04/01", "AB-CD", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_rc(
            f, ly_store_members_by_birthday(f->conn, &f->arena, 1, bad[i], 0, 10, &ms, &n, &f->err),
            LY_EINVAL);
        assert_string_equal(f->err.field, "mmdd");
    }
    expect_rc(f, ly_store_members_by_birthday(f->conn, &f->arena, 1, NULL, 0, 10, &ms, &n, &f->err),
              LY_EINVAL);
    expect_rc(f,
              ly_store_members_by_birthday(f->conn, &f->arena, 1, "04-01", 0, -1, &ms, &n, &f->err),
              LY_EINVAL);
}

static ly_rule_row new_rule(const char *rule_id, int64_t version, const char *body, int deleted)
{
    return (ly_rule_row){.program_id = LY_DEFAULT_PROGRAM,
                         .rule_id = rule_id,
                         .version = version,
                         .body = body,
                         .deleted = deleted,
                         .created_at = 100 * version};
}

static int64_t insert_rule(fixture *f, const char *rule_id, int64_t version, int deleted)
{
    char body[64];
    snprintf(body, sizeof body, "{\"id\":\"%s\",\"v\":%" PRId64 "}", rule_id, version);
    ly_rule_row r = new_rule(rule_id, version, body, deleted);
    expect_ok(f, ly_store_rule_insert(f->conn, &r, &f->err));
    assert_true(r.id > 0);
    assert_int_equal(r.current, 1);
    return r.id;
}

static void assert_rule(const ly_rule_row *got, int64_t id, const char *rule_id, int64_t version,
                        int deleted, int current)
{
    char body[64];
    snprintf(body, sizeof body, "{\"id\":\"%s\",\"v\":%" PRId64 "}", rule_id, version);
    assert_int_equal(got->id, id);
    assert_int_equal(got->program_id, LY_DEFAULT_PROGRAM);
    assert_string_equal(got->rule_id, rule_id);
    assert_int_equal(got->version, version);
    assert_string_equal(got->body, body);
    assert_int_equal(got->deleted, deleted);
    assert_int_equal(got->current, current);
    assert_int_equal(got->created_at, 100 * version);
}

static void test_rule_versions(void **state)
{
    fixture *f = *state;
    ly_rule_row got, *rs;
    size_t n;
    int64_t v1 = insert_rule(f, "double-points", 1, 0);
    expect_ok(f, ly_store_rule_get(f->conn, &f->arena, 1, "double-points", 0, &got, &f->err));
    assert_rule(&got, v1, "double-points", 1, 0, 1);

    /* Two versions in one transaction: the second is current. */
    expect_ok(f, ly_store_begin_write(f->conn, &f->err));
    int64_t v2 = insert_rule(f, "double-points", 2, 0);
    int64_t v3 = insert_rule(f, "double-points", 3, 0);
    expect_ok(f, ly_store_commit(f->conn, &f->err));
    assert_true(v1 < v2 && v2 < v3);
    int64_t other = insert_rule(f, "welcome", 1, 0);

    expect_ok(f, ly_store_rule_get(f->conn, &f->arena, 1, "double-points", 1, &got, &f->err));
    assert_rule(&got, v1, "double-points", 1, 0, 0);
    expect_ok(f, ly_store_rule_get(f->conn, &f->arena, 1, "double-points", 2, &got, &f->err));
    assert_rule(&got, v2, "double-points", 2, 0, 0);
    expect_ok(f, ly_store_rule_get(f->conn, &f->arena, 1, "double-points", 0, &got, &f->err));
    assert_rule(&got, v3, "double-points", 3, 0, 1);
    expect_ok(f, ly_store_rule_get(f->conn, &f->arena, 1, "welcome", 0, &got, &f->err));
    assert_rule(&got, other, "welcome", 1, 0, 1);

    /* A deleting version is current too, and read as such. */
    int64_t v4 = insert_rule(f, "double-points", 4, 1);
    expect_ok(f, ly_store_rule_get(f->conn, &f->arena, 1, "double-points", 0, &got, &f->err));
    assert_rule(&got, v4, "double-points", 4, 1, 1);
    expect_ok(f, ly_store_rule_get(f->conn, &f->arena, 1, "double-points", 3, &got, &f->err));
    assert_rule(&got, v3, "double-points", 3, 0, 0);

    expect_ok(
        f, ly_store_rule_versions(f->conn, &f->arena, 1, "double-points", 0, 0, &rs, &n, &f->err));
    assert_int_equal(n, 4);
    int64_t ids[] = {v1, v2, v3, v4};
    for (size_t i = 0; i < 4; i++)
        assert_rule(&rs[i], ids[i], "double-points", (int64_t)i + 1, i == 3, i == 3);
    /* A page: after version 1, at most 2. */
    expect_ok(
        f, ly_store_rule_versions(f->conn, &f->arena, 1, "double-points", 1, 2, &rs, &n, &f->err));
    assert_int_equal(n, 2);
    assert_rule(&rs[0], v2, "double-points", 2, 0, 0);
    assert_rule(&rs[1], v3, "double-points", 3, 0, 0);
    expect_ok(
        f, ly_store_rule_versions(f->conn, &f->arena, 1, "double-points", 4, 0, &rs, &n, &f->err));
    assert_int_equal(n, 0);
    expect_ok(f, ly_store_rule_versions(f->conn, &f->arena, 1, "nothing", 0, 0, &rs, &n, &f->err));
    assert_int_equal(n, 0);
    expect_ok(f, ly_store_rule_versions(f->conn, &f->arena, 2, "welcome", 0, 0, &rs, &n, &f->err));
    assert_int_equal(n, 0);

    expect_rc(f, ly_store_rule_get(f->conn, &f->arena, 1, "double-points", 5, &got, &f->err),
              LY_ENOTFOUND);
    assert_string_equal(f->err.code, "not_found");
    expect_rc(f, ly_store_rule_get(f->conn, &f->arena, 1, "nothing", 0, &got, &f->err),
              LY_ENOTFOUND);
    expect_rc(f, ly_store_rule_get(f->conn, &f->arena, 2, "welcome", 0, &got, &f->err),
              LY_ENOTFOUND);

    /* A version taken is a conflict, and leaves the current one current. */
    int64_t rows[NTABLES], after[NTABLES];
    table_rows(f, rows);
    ly_rule_row dup = new_rule("double-points", 2, "{}", 0);
    expect_rc(f, ly_store_rule_insert(f->conn, &dup, &f->err), LY_ECONFLICT);
    assert_string_equal(f->err.code, "already_exists");
    assert_string_equal(f->err.field, "version");
    expect_ok(f, ly_store_begin_write(f->conn, &f->err));
    expect_rc(f, ly_store_rule_insert(f->conn, &dup, &f->err), LY_ECONFLICT);
    assert_string_equal(f->err.field, "version");
    ly_store_rollback(f->conn);
    expect_ok(f, ly_store_rule_get(f->conn, &f->arena, 1, "double-points", 0, &got, &f->err));
    assert_rule(&got, v4, "double-points", 4, 1, 1);
    table_rows(f, after);
    assert_memory_equal(rows, after, sizeof rows);
    assert_int_equal(table_count(f, "rules"), 5);

    ly_rule_row orphan = new_rule("orphan", 1, "{}", 0);
    orphan.program_id = 77;
    expect_rc(f, ly_store_rule_insert(f->conn, &orphan, &f->err), LY_ENOTFOUND);

    /* Brought back after its deletion. */
    int64_t v5 = insert_rule(f, "double-points", 5, 0);
    expect_ok(f, ly_store_rule_get(f->conn, &f->arena, 1, "double-points", 0, &got, &f->err));
    assert_rule(&got, v5, "double-points", 5, 0, 1);
}

static void test_rule_list(void **state)
{
    fixture *f = *state;
    /* Inserted out of order; listed in byte order ("B" < "a" < "a-2" < "a_2"
     * < "b" < "é"), which no natural-language collation gives. */
    static const char *const order[] = {"B", "a", "a-2", "a_2", "b", "\xc3\xa9"};
    static const int inserted[] = {4, 1, 5, 0, 3, 2};
    int64_t ids[6];
    for (size_t i = 0; i < 6; i++)
        ids[inserted[i]] = insert_rule(f, order[inserted[i]], 1, 0);
    /* Changed (still listed, as its current version) or deleted (not). */
    ids[1] = insert_rule(f, "a", 2, 0);
    insert_rule(f, "gone", 1, 0);
    insert_rule(f, "gone", 2, 1);
    insert_rule(f, "deleted-then-back", 1, 1);
    int64_t back = insert_rule(f, "deleted-then-back", 2, 0);

    ly_rule_row *rs;
    size_t n;
    expect_ok(f, ly_store_rule_list(f->conn, &f->arena, 1, NULL, 0, &rs, &n, &f->err));
    assert_int_equal(n, 7);
    static const char *const want[] = {"B",       "a", "a-2", "a_2", "b", "deleted-then-back",
                                       "\xc3\xa9"};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(rs[i].rule_id, want[i]);
        assert_int_equal(rs[i].current, 1);
        assert_int_equal(rs[i].deleted, 0);
    }
    assert_int_equal(rs[0].id, ids[0]);
    assert_int_equal(rs[1].id, ids[1]);
    assert_int_equal(rs[1].version, 2);
    assert_int_equal(rs[5].id, back);
    assert_int_equal(rs[6].id, ids[5]);

    /* Paged by rule_id. */
    const char *after = NULL;
    size_t seen = 0;
    for (int page = 0; page < 5; page++) {
        expect_ok(f, ly_store_rule_list(f->conn, &f->arena, 1, after, 3, &rs, &n, &f->err));
        for (size_t i = 0; i < n; i++)
            assert_string_equal(rs[i].rule_id, want[seen + i]);
        seen += n;
        if (n < 3)
            break;
        after = rs[n - 1].rule_id;
    }
    assert_int_equal(seen, 7);
    expect_ok(f, ly_store_rule_list(f->conn, &f->arena, 1, "a", 2, &rs, &n, &f->err));
    assert_int_equal(n, 2);
    assert_string_equal(rs[0].rule_id, "a-2");
    assert_string_equal(rs[1].rule_id, "a_2");
    expect_ok(f, ly_store_rule_list(f->conn, &f->arena, 1, "c", 0, &rs, &n, &f->err));
    assert_int_equal(n, 2);
    assert_string_equal(rs[0].rule_id, "deleted-then-back");
    expect_ok(f, ly_store_rule_list(f->conn, &f->arena, 1, "\xc3\xa9", 0, &rs, &n, &f->err));
    assert_int_equal(n, 0);
    expect_ok(f, ly_store_rule_list(f->conn, &f->arena, 2, NULL, 0, &rs, &n, &f->err));
    assert_int_equal(n, 0);
    expect_rc(f, ly_store_rule_list(f->conn, &f->arena, 1, NULL, -1, &rs, &n, &f->err), LY_EINVAL);
}

static void assert_usage(fixture *f, const char *rule_id, int64_t member_id, int64_t period,
                         int64_t points, int64_t credit, int64_t count)
{
    ly_rule_usage u = {-1, -1, -1};
    expect_ok(f, ly_store_rule_usage_get(f->conn, 1, rule_id, member_id, period, &u, &f->err));
    assert_int_equal(u.points, points);
    assert_int_equal(u.credit, credit);
    assert_int_equal(u.count, count);
}

static void test_rule_usage(void **state)
{
    fixture *f = *state;
    assert_usage(f, "cap", 7, 0, 0, 0, 0);
    /* PostgreSQL reads the row locked, creating it (with zeros) to lock it. */
    assert_int_equal(table_count(f, "rule_usage"), is_pg(f) ? 1 : 0);

    ly_rule_usage d = {50, 10, 1};
    expect_ok(f, ly_store_rule_usage_add(f->conn, 1, "cap", 7, 0, &d, &f->err));
    assert_usage(f, "cap", 7, 0, 50, 10, 1);
    expect_ok(f, ly_store_begin_write(f->conn, &f->err));
    expect_ok(f, ly_store_rule_usage_add(f->conn, 1, "cap", 7, 0, &d, &f->err));
    expect_ok(f, ly_store_commit(f->conn, &f->err));
    assert_usage(f, "cap", 7, 0, 100, 20, 2);

    /* A return gives some back: negative parts. */
    ly_rule_usage back = {-30, 0, -1};
    expect_ok(f, ly_store_rule_usage_add(f->conn, 1, "cap", 7, 0, &back, &f->err));
    assert_usage(f, "cap", 7, 0, 70, 20, 1);
    /* A first row may start negative too. */
    expect_ok(f, ly_store_rule_usage_add(f->conn, 1, "cap", 8, 0, &back, &f->err));
    assert_usage(f, "cap", 8, 0, -30, 0, -1);

    /* Each member, the rule's own total (member 0), each period, each rule
     * and each program count apart. */
    ly_rule_usage one = {1, 2, 3};
    expect_ok(f, ly_store_rule_usage_add(f->conn, 1, "cap", 0, 0, &one, &f->err));
    expect_ok(f, ly_store_rule_usage_add(f->conn, 1, "cap", 7, 86400000, &one, &f->err));
    expect_ok(f, ly_store_rule_usage_add(f->conn, 1, "cap2", 7, 0, &one, &f->err));
    expect_ok(f, ly_store_rule_usage_add(f->conn, 2, "cap", 7, 0, &one, &f->err));
    assert_usage(f, "cap", 0, 0, 1, 2, 3);
    assert_usage(f, "cap", 7, 86400000, 1, 2, 3);
    assert_usage(f, "cap2", 7, 0, 1, 2, 3);
    assert_usage(f, "cap", 7, 0, 70, 20, 1);
    assert_usage(f, "cap", 7, 1, 0, 0, 0);
    assert_int_equal(table_count(f, "rule_usage"), is_pg(f) ? 7 : 6);

    /* Overflow of any part is refused and changes nothing. */
    ly_rule_usage huge[] = {{INT64_MAX, 0, 0}, {0, INT64_MAX, 0}, {0, 0, INT64_MAX}};
    for (size_t i = 0; i < 3; i++) {
        expect_rc(f, ly_store_rule_usage_add(f->conn, 1, "cap", 7, 86400000, &huge[i], &f->err),
                  LY_EREFUSED);
        assert_string_equal(f->err.code, "balance_overflow");
    }
    assert_usage(f, "cap", 7, 86400000, 1, 2, 3);
}

static int64_t insert_event(fixture *f, const char *ext_id, int64_t member_id)
{
    ly_event ev = new_event(ext_id, member_id);
    expect_ok(f, ly_store_event_insert(f->conn, &ev, &f->err));
    return ev.id;
}

static void assert_event_rule(const ly_event_rule *got, int64_t event_id, int64_t rule_row,
                              const char *rule_id, int64_t version, int64_t points, int64_t credit,
                              int64_t reversed_points, int64_t reversed_credit)
{
    assert_int_equal(got->event_id, event_id);
    assert_int_equal(got->rule_row, rule_row);
    assert_string_equal(got->rule_id, rule_id);
    assert_int_equal(got->version, version);
    assert_int_equal(got->points, points);
    assert_int_equal(got->credit, credit);
    assert_int_equal(got->reversed_points, reversed_points);
    assert_int_equal(got->reversed_credit, reversed_credit);
}

/* A read on one connection sees at once what another committed, though a
 * read snapshot may be kept between reads (SQLite), and a write by another
 * process as soon as the kept snapshot has aged out. */
static void rename_program(fixture *f, ly_conn *c, const char *name)
{
    ly_program p;
    expect_ok(f, ly_store_begin_write(c, &f->err));
    expect_ok(f, ly_store_program_get(c, &f->arena, LY_DEFAULT_PROGRAM, &p, &f->err));
    p.name = name;
    p.updated_at++;
    expect_ok(f, ly_store_program_put(c, &p, &f->err));
    expect_ok(f, ly_store_commit(c, &f->err));
}

static const char *read_name(fixture *f)
{
    ly_program p;
    expect_ok(f, ly_store_begin_read(f->conn, &f->err));
    expect_ok(f, ly_store_program_get(f->conn, &f->arena, LY_DEFAULT_PROGRAM, &p, &f->err));
    ly_store_rollback(f->conn);
    return p.name;
}

static void test_reads_see_commits(void **state)
{
    fixture *f = *state;
    ly_conn *other = ly_store_acquire(f->store, &f->err);
    assert_non_null(other);
    char name[32];
    for (int i = 0; i < 50; i++) {
        (void)read_name(f);
        (void)read_name(f);
        snprintf(name, sizeof name, "Round %d", i);
        rename_program(f, other, name);
        assert_string_equal(read_name(f), name);
    }
    ly_store_release(f->store, other);
    if (is_pg(f))
        return;

    /* Another process: a connection of its own, outside the store. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    for (int i = 0; i < 5; i++) {
        (void)read_name(f);
        snprintf(name, sizeof name, "Elsewhere %d", i);
        char *sql = sqlite3_mprintf("UPDATE programs SET name = %Q WHERE id = 1", name);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_free(sql);
        struct timespec pause = {0, 5 * 1000 * 1000};
        nanosleep(&pause, NULL);
        assert_string_equal(read_name(f), name);
    }
    sqlite3_close(db);
}

static void test_event_rules(void **state)
{
    fixture *f = *state;
    int64_t m = insert_member(f, "ext-a", NULL, NULL);
    int64_t ev = insert_event(f, "order-1", m), ev2 = insert_event(f, "order-2", m);
    int64_t base1 = insert_rule(f, "base", 1, 0);
    int64_t bonus = insert_rule(f, "bonus", 1, 0);
    int64_t base2 = insert_rule(f, "base", 2, 0);

    /* Inserted out of rule_row order; the old version of a rule still
     * counts for the events it gave to. */
    ly_event_rule r2 = {.event_id = ev, .rule_row = base2, .points = 20, .credit = 5};
    ly_event_rule r1 = {.event_id = ev, .rule_row = bonus, .points = 100};
    ly_event_rule r0 = {.event_id = ev2, .rule_row = base1, .points = 7, .reversed_points = -2};
    expect_ok(f, ly_store_begin_write(f->conn, &f->err));
    expect_ok(f, ly_store_event_rule_insert(f->conn, 1, &r2, &f->err));
    expect_ok(f, ly_store_event_rule_insert(f->conn, 1, &r1, &f->err));
    expect_ok(f, ly_store_commit(f->conn, &f->err));
    expect_ok(f, ly_store_event_rule_insert(f->conn, 1, &r0, &f->err));
    assert_int_equal(table_count(f, "event_rules"), 3);

    ly_event_rule *xs;
    size_t n;
    expect_ok(f, ly_store_event_rules(f->conn, &f->arena, 1, ev, &xs, &n, &f->err));
    assert_int_equal(n, 2);
    assert_event_rule(&xs[0], ev, bonus, "bonus", 1, 100, 0, 0, 0);
    assert_event_rule(&xs[1], ev, base2, "base", 2, 20, 5, 0, 0);
    expect_ok(f, ly_store_event_rules(f->conn, &f->arena, 1, ev2, &xs, &n, &f->err));
    assert_int_equal(n, 1);
    assert_event_rule(&xs[0], ev2, base1, "base", 1, 7, 0, -2, 0);
    expect_ok(f, ly_store_event_rules(f->conn, &f->arena, 2, ev, &xs, &n, &f->err));
    assert_int_equal(n, 0);
    expect_ok(f, ly_store_event_rules(f->conn, &f->arena, 1, 9999, &xs, &n, &f->err));
    assert_int_equal(n, 0);

    /* Returns take back: only the reversed parts change. */
    r2.points = 999;
    r2.credit = 999;
    r2.reversed_points = -10;
    r2.reversed_credit = -5;
    expect_ok(f, ly_store_event_rule_update(f->conn, 1, &r2, &f->err));
    expect_ok(f, ly_store_event_rules(f->conn, &f->arena, 1, ev, &xs, &n, &f->err));
    assert_int_equal(n, 2);
    assert_event_rule(&xs[0], ev, bonus, "bonus", 1, 100, 0, 0, 0);
    assert_event_rule(&xs[1], ev, base2, "base", 2, 20, 5, -10, -5);

    ly_event_rule missing = {.event_id = ev, .rule_row = base1, .reversed_points = -1};
    expect_rc(f, ly_store_event_rule_update(f->conn, 1, &missing, &f->err), LY_ENOTFOUND);
    expect_rc(f, ly_store_event_rule_update(f->conn, 2, &r2, &f->err), LY_ENOTFOUND);

    expect_rc(f, ly_store_event_rule_insert(f->conn, 1, &r1, &f->err), LY_ECONFLICT);
    assert_string_equal(f->err.code, "already_exists");
    assert_string_equal(f->err.field, "rule_row");
    ly_event_rule dangling = {.event_id = ev, .rule_row = 9999, .points = 1};
    expect_rc(f, ly_store_event_rule_insert(f->conn, 1, &dangling, &f->err), LY_ENOTFOUND);
    dangling = (ly_event_rule){.event_id = 9999, .rule_row = base1, .points = 1};
    expect_rc(f, ly_store_event_rule_insert(f->conn, 1, &dangling, &f->err), LY_ENOTFOUND);
    assert_int_equal(table_count(f, "event_rules"), 3);
}

static void test_member_lock_waits(void **state)
{
    fixture *f = *state;
    if (!is_pg(f))
        skip();
    int64_t m = insert_member(f, "ext-a", NULL, NULL);
    expect_ok(f, ly_store_begin_write(f->conn, &f->err));
    expect_ok(f, ly_store_member_lock(f->conn, 1, m, NULL, &f->err));
    /* Inserting a row that refers to the member is not held up. */
    expect_ok(f, ly_store_card_attach(f->conn, 1, m, "CARD1", 1, &f->err));
    locker l = {f->store, m, -1, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, lock_thread, &l), 0);
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    assert_false(l.done);
    expect_ok(f, ly_store_commit(f->conn, &f->err));
    pthread_join(t, NULL);
    assert_int_equal(l.rc, 0);
}

/* PostgreSQL: an entry locks the accounts of its members, never the
 * program's, so that earns of different members never wait for each other
 * (another transaction may take the lock an update of the issued account
 * would take, NOWAIT; the postings' foreign keys only share it). */
static void test_program_accounts_unlocked(void **state)
{
    fixture *f = *state;
    if (!is_pg(f))
        skip();
    int64_t a = insert_member(f, "ext-a", NULL, NULL);
    int64_t b = insert_member(f, "ext-b", NULL, NULL);
    earn(f, a, "points", 10);
    expect_ok(f, ly_store_begin_write(f->conn, &f->err));
    ly_posting p[] = {posting(b, "member", "points", 5), posting(0, "issued", "points", -5)};
    ly_entry e = new_entry(b, "earn", 1);
    expect_ok(f, ly_store_entry_insert(f->conn, &e, p, 2, &f->err));
    assert_int_equal(raw_int(f, "SELECT count(*) FROM (SELECT id FROM accounts "
                                "WHERE member_id = 0 FOR NO KEY UPDATE NOWAIT) x"),
                     1);
    expect_ok(f, ly_store_commit(f->conn, &f->err));
    assert_int_equal(balance(f, 0, "issued", "points"), -15);
    assert_int_equal(balance(f, b, "member", "points"), 5);
}

/* A read transaction (a simulation) reads the member in its snapshot: a
 * write to the member committed after the snapshot began neither holds it
 * up nor fails it (on PostgreSQL, locking the row would be a serialization
 * failure), and it still sees the status as of its snapshot. */
static void test_member_lock_in_read(void **state)
{
    fixture *f = *state;
    int64_t m = insert_member(f, "ext-a", NULL, NULL);
    ly_program p;
    expect_ok(f, ly_store_begin_read(f->conn, &f->err));
    expect_ok(f, ly_store_program_get(f->conn, &f->arena, 1, &p, &f->err)); /* the snapshot */
    ly_conn *other = ly_store_acquire(f->store, &f->err);
    assert_non_null(other);
    expect_ok(f, ly_store_begin_write(other, &f->err));
    expect_ok(f, ly_store_member_lock(other, 1, m, NULL, &f->err));
    expect_ok(f, ly_store_member_touch(other, 1, m, 5, &f->err));
    expect_ok(f, ly_store_commit(other, &f->err));
    ly_store_release(f->store, other);
    int active = 0;
    expect_ok(f, ly_store_member_lock(f->conn, 1, m, &active, &f->err));
    assert_true(active);
    ly_store_rollback(f->conn);
}

/* Transactions hold on both stores, however their BEGIN is sent (with the
 * first statement, on PostgreSQL): a write is seen by no one else until it
 * commits and is gone after a rollback; a read keeps the snapshot of its
 * first statement; a transaction that ran nothing commits as a no-op. */
static void test_transactions_hold(void **state)
{
    fixture *f = *state;
    int64_t m = insert_member(f, "ext-t", NULL, NULL);
    ly_member seen;
    ly_conn *other = ly_store_acquire(f->store, &f->err);
    assert_non_null(other);

    expect_ok(f, ly_store_begin_write(f->conn, &f->err));
    expect_ok(f, ly_store_member_touch(f->conn, 1, m, 7, &f->err));
    expect_ok(f, ly_store_member_get(other, &f->arena, 1, m, &seen, &f->err));
    assert_int_not_equal(seen.last_activity_at, 7);
    ly_store_rollback(f->conn);
    expect_ok(f, ly_store_member_get(other, &f->arena, 1, m, &seen, &f->err));
    assert_int_not_equal(seen.last_activity_at, 7);

    expect_ok(f, ly_store_begin_write(other, &f->err));
    expect_ok(f, ly_store_member_touch(other, 1, m, 8, &f->err));
    expect_ok(f, ly_store_commit(other, &f->err));
    expect_ok(f, ly_store_begin_read(f->conn, &f->err));
    expect_ok(f, ly_store_member_get(f->conn, &f->arena, 1, m, &seen, &f->err));
    assert_int_equal(seen.last_activity_at, 8);
    expect_ok(f, ly_store_begin_write(other, &f->err));
    expect_ok(f, ly_store_member_touch(other, 1, m, 9, &f->err));
    expect_ok(f, ly_store_commit(other, &f->err));
    expect_ok(f, ly_store_member_get(f->conn, &f->arena, 1, m, &seen, &f->err));
    assert_int_equal(seen.last_activity_at, 8); /* the snapshot of the first read */
    ly_store_rollback(f->conn);
    expect_ok(f, ly_store_member_get(f->conn, &f->arena, 1, m, &seen, &f->err));
    assert_int_equal(seen.last_activity_at, 9);

    expect_ok(f, ly_store_begin_write(f->conn, &f->err));
    expect_ok(f, ly_store_commit(f->conn, &f->err));
    expect_ok(f, ly_store_begin_read(f->conn, &f->err));
    ly_store_rollback(f->conn);
    expect_ok(f, ly_store_member_get(f->conn, &f->arena, 1, m, &seen, &f->err));
    assert_int_equal(seen.last_activity_at, 9);
    ly_store_release(f->store, other);
}

/* PostgreSQL: every statement that names a row by its id is planned, as
 * a generic plan on a fresh (empty) database, with id as an index condition,
 * never as a filter over an index led by program_id, which reads every row
 * of the program on each call. */
static void test_pg_plans_by_id(void **state)
{
    fixture *f = *state;
    if (!is_pg(f))
        skip();
    PGconn *pg = PQconnectdb(f->url);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    PQclear(PQexec(pg, "SET plan_cache_mode = force_generic_plan"));
    const char *name, *sql;
    int checked = 0;
    for (size_t i = 0; (sql = ly__pg_statement(i, &name)) != NULL; i++) {
        int by_id = 0, params = 0;
        for (const char *at = sql; (at = strstr(at, "id = $")) != NULL; at++)
            by_id |= at == sql || !(isalnum((unsigned char)at[-1]) || at[-1] == '_');
        for (const char *at = sql; (at = strchr(at, '$')) != NULL; at++)
            if (atoi(at + 1) > params)
                params = atoi(at + 1);
        if (!by_id || strncmp(sql, "WITH", 4) == 0)
            continue;
        char cmd[8192], args[512] = "";
        for (int k = 1; k <= params; k++)
            strcat(args, k == 1 ? "NULL" : ", NULL");
        snprintf(cmd, sizeof cmd, "PREPARE t%zu AS %s", i, sql);
        PGresult *r = PQexec(pg, cmd);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            fail_msg("%s: %s", name, PQerrorMessage(pg));
        PQclear(r);
        snprintf(cmd, sizeof cmd, params ? "EXPLAIN EXECUTE t%zu(%s)" : "EXPLAIN EXECUTE t%zu%s", i,
                 args);
        r = PQexec(pg, cmd);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            fail_msg("%s: %s", name, PQerrorMessage(pg));
        for (int row = 0; row < PQntuples(r); row++) {
            const char *line = PQgetvalue(r, row, 0);
            if (strstr(line, "Filter: (id = ") || strstr(line, "Seq Scan"))
                fail_msg("%s is planned with %s", name, line);
        }
        PQclear(r);
        checked++;
    }
    PQfinish(pg);
    assert_true(checked >= 10);
}

/* PostgreSQL: a full disk (SQLSTATE 53100, raised here by a trigger) is
 * LY_ESTORE "storage_full", as on SQLite, and nothing is written. */
static void test_pg_disk_full(void **state)
{
    fixture *f = *state;
    if (!is_pg(f))
        skip();
    raw_sql(f, "CREATE FUNCTION full_disk() RETURNS trigger LANGUAGE plpgsql AS "
               "$$BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; "
               "END$$; CREATE TRIGGER full_disk BEFORE INSERT ON members "
               "FOR EACH ROW EXECUTE FUNCTION full_disk()");
    ly_member m = new_member("ext-a", NULL, NULL);
    expect_rc(f, ly_store_member_insert(f->conn, &m, &f->err), LY_ESTORE);
    assert_string_equal(f->err.code, "storage_full");
    raw_sql(f, "DROP TRIGGER full_disk ON members; DROP FUNCTION full_disk()");
    assert_int_equal(table_count(f, "members"), 0);
}

/* Ends the server side of every connection of f's store, and waits until
 * they are gone. */
static void terminate_connections(fixture *f)
{
    assert_true(pg_admin("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                         "WHERE application_name = '%s'",
                         f->schema) >= 1);
    for (int i = 0; i < 100 && pg_admin("SELECT count(*) FROM pg_stat_activity "
                                        "WHERE application_name = '%s'",
                                        f->schema) > 0;
         i++) {
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

/* PostgreSQL: a connection the server dropped fails with LY_ESTORE, and is
 * reconnected when next acquired, whether it was in use or in the pool. */
static void test_reconnect(void **state)
{
    fixture *f = *state;
    ly_program p;
    if (!is_pg(f))
        skip();
    expect_ok(f, ly_store_program_get(f->conn, &f->arena, 1, &p, &f->err));
    terminate_connections(f);
    expect_rc(f, ly_store_program_get(f->conn, &f->arena, 1, &p, &f->err), LY_ESTORE);
    assert_string_equal(f->err.code, "storage_unavailable");
    ly_store_release(f->store, f->conn);
    assert_non_null(f->conn = ly_store_acquire(f->store, &f->err));
    expect_ok(f, ly_store_program_get(f->conn, &f->arena, 1, &p, &f->err));
    assert_string_equal(p.currency, "USD");

    ly_store_release(f->store, f->conn);
    terminate_connections(f);
    assert_non_null(f->conn = ly_store_acquire(f->store, &f->err));
    expect_ok(f, ly_store_program_get(f->conn, &f->arena, 1, &p, &f->err));
}

#define STORE_TESTS(be)                                                                            \
    cmocka_unit_test_prestate_setup_teardown(test_migrate_twice, setup_open, teardown, be),        \
        cmocka_unit_test_prestate_setup_teardown(test_migrate_concurrently, setup_open, teardown,  \
                                                 be),                                              \
        cmocka_unit_test_prestate_setup_teardown(test_open_errors, setup_open, teardown, be),      \
        cmocka_unit_test_prestate_setup_teardown(test_program_get_put, setup, teardown, be),       \
        cmocka_unit_test_prestate_setup_teardown(test_member_insert_get, setup, teardown, be),     \
        cmocka_unit_test_prestate_setup_teardown(test_member_find, setup, teardown, be),           \
        cmocka_unit_test_prestate_setup_teardown(test_member_update, setup, teardown, be),         \
        cmocka_unit_test_prestate_setup_teardown(test_member_list, setup, teardown, be),           \
        cmocka_unit_test_prestate_setup_teardown(test_member_conflicts, setup, teardown, be),      \
        cmocka_unit_test_prestate_setup_teardown(test_card_attach, setup, teardown, be),           \
        cmocka_unit_test_prestate_setup_teardown(test_keys, setup, teardown, be),                  \
        cmocka_unit_test_prestate_setup_teardown(test_table_counts, setup, teardown, be),          \
        cmocka_unit_test_prestate_setup_teardown(test_transactions, setup, teardown, be),          \
        cmocka_unit_test_prestate_setup_teardown(test_retry, setup, teardown, be),                 \
        cmocka_unit_test_prestate_setup_teardown(test_pool, setup, teardown, be),                  \
        cmocka_unit_test_prestate_setup_teardown(test_reconnect, setup, teardown, be),             \
        cmocka_unit_test_prestate_setup_teardown(test_entry_postings, setup, teardown, be),        \
        cmocka_unit_test_prestate_setup_teardown(test_entry_overflow, setup, teardown, be),        \
        cmocka_unit_test_prestate_setup_teardown(test_entry_refused_postings, setup, teardown,     \
                                                 be),                                              \
        cmocka_unit_test_prestate_setup_teardown(test_lots_open_order, setup, teardown, be),       \
        cmocka_unit_test_prestate_setup_teardown(test_consumption, setup, teardown, be),           \
        cmocka_unit_test_prestate_setup_teardown(test_lots_expired, setup, teardown, be),          \
        cmocka_unit_test_prestate_setup_teardown(test_members_inactive, setup, teardown, be),      \
        cmocka_unit_test_prestate_setup_teardown(test_activity, setup, teardown, be),              \
        cmocka_unit_test_prestate_setup_teardown(test_events, setup, teardown, be),                \
        cmocka_unit_test_prestate_setup_teardown(test_redemptions, setup, teardown, be),           \
        cmocka_unit_test_prestate_setup_teardown(test_idempotency, setup, teardown, be),           \
        cmocka_unit_test_prestate_setup_teardown(test_verify, setup, teardown, be),                \
        cmocka_unit_test_prestate_setup_teardown(test_pg_disk_full, setup, teardown, be),          \
        cmocka_unit_test_prestate_setup_teardown(test_pg_plans_by_id, setup, teardown, be),        \
        cmocka_unit_test_prestate_setup_teardown(test_member_lock_in_read, setup, teardown, be),   \
        cmocka_unit_test_prestate_setup_teardown(test_program_accounts_unlocked, setup, teardown,  \
                                                 be),                                              \
        cmocka_unit_test_prestate_setup_teardown(test_member_lock_waits, setup, teardown, be),     \
        cmocka_unit_test_prestate_setup_teardown(test_member_purchase, setup, teardown, be),       \
        cmocka_unit_test_prestate_setup_teardown(test_members_by_birthday, setup, teardown, be),   \
        cmocka_unit_test_prestate_setup_teardown(test_rule_versions, setup, teardown, be),         \
        cmocka_unit_test_prestate_setup_teardown(test_rule_list, setup, teardown, be),             \
        cmocka_unit_test_prestate_setup_teardown(test_rule_usage, setup, teardown, be),            \
        cmocka_unit_test_prestate_setup_teardown(test_event_rules, setup, teardown, be),           \
        cmocka_unit_test_prestate_setup_teardown(test_reads_see_commits, setup, teardown, be),     \
        cmocka_unit_test_prestate_setup_teardown(test_transactions_hold, setup, teardown, be)

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = {STORE_TESTS((void *)&sqlite_backend)};
    const struct CMUnitTest postgres_tests[] = {STORE_TESTS((void *)&postgres_backend)};
    int failed = cmocka_run_group_tests_name("store/sqlite", sqlite_tests, NULL, NULL);
    const char *pg = getenv("LOYAL_TEST_PG_URL");
    if (pg && *pg)
        failed += cmocka_run_group_tests_name("store/postgres", postgres_tests, NULL, NULL);
    else
        printf("store/postgres: skipped (LOYAL_TEST_PG_URL is not set)\n");
    return failed ? 1 : 0;
}
