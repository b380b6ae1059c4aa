/* The store against SQLite (a temporary file) and, when LOYAL_TEST_PG_URL is
 * set, against PostgreSQL (a schema of its own per test): one table of
 * cases, run once per backend. */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "loyal/store.h"

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

static void assert_counts(fixture *f, int64_t programs, int64_t members, int64_t cards,
                          int64_t keys)
{
    static const char *const names[] = {"programs", "members", "member_cards", "api_keys"};
    int64_t want[] = {programs, members, cards, keys};
    ly_table_count *t;
    size_t n;
    expect_ok(f, ly_store_table_counts(f->conn, &f->arena, &t, &n, &f->err));
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(t[i].table, names[i]);
        assert_int_equal(t[i].rows, want[i]);
    }
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
        cmocka_unit_test_prestate_setup_teardown(test_reconnect, setup, teardown, be)

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
