/* libFuzzer harness for the HTTP API: every input is one to eight requests,
 * run through ly__dispatch (routing, authentication, body parsing, handlers,
 * idempotency, answers) as the server runs them once libmicrohttpd has read
 * them, from the state of a small SQLite database: once through the
 * group-commit writer, as `loyal serve` on SQLite, and once with handlers
 * running their own transactions, as on PostgreSQL. It aborts on a 5xx, on a
 * status the API does not document, on an answer that is not JSON or an
 * error without the documented shape, on a read or a refusal that changed the
 * database, on a replay under an Idempotency-Key that differs from the first
 * answer, when the two runs disagree on a status, and when the ledger's
 * invariants fail afterwards. tests/fuzz/README.md describes the input. */
#define _GNU_SOURCE /* memmem */
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "api/api.h"
#include "loyal/engine.h"
#include "loyal/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REQUESTS 8
#define SEPARATOR    "\n===\n"
#define MAX_BODY     (1u << 20) /* as `loyal serve` */

/* The keys of the template database, by the name an input uses for them. */
static const char *const key_names[] = {"admin", "pos", "partner", "read", "revoked"};
#define NKEYS (sizeof key_names / sizeof key_names[0])
static char keys[NKEYS][LY_KEY_MAX];
static char dir[64], template_db[96], run_db[96];
static int trace; /* FUZZ_HTTP_TRACE set: each request and its answer to stderr */

/* The copy stays open across inputs, with its store, its two servers and
 * their prepared statements: opening connections would cost more than the
 * requests. Before each run the copy gets the template's rows back, through
 * a connection of its own that also watches what a request wrote. */
static ly_store *store;
static ly_server *servers[2]; /* without, with the writer */
static sqlite3 *raw;
/* For every table: its name, and statements on the copy that read it, empty
 * it and refill it from the template. */
typedef struct table {
    char *name;
    sqlite3_stmt *scan, *empty, *refill;
} table;
static table *tables;
static size_t ntables;

/* One request of an input, parsed in place. */
typedef struct fuzz_req {
    const char *method, *target;
    const char *authorization, *idempotency_key;
    unsigned long long content_length;
    const char *body;
    size_t body_len;
} fuzz_req;

/* What a run saw of one request. */
typedef struct seen {
    int status, replayed;
    char *resp; /* malloc'd */
    size_t resp_len;
    const char *path;      /* decoded; malloc'd */
    int secret, too_large; /* the route's answer holds a secret; over 1 MiB */
} seen;

static void die(const fuzz_req *q, const ly_req *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
static void remove_db(const char *path);

static void die(const fuzz_req *q, const ly_req *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_http: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (q)
        fprintf(stderr, "\nrequest: %s %s (%zu bytes of body)\n", q->method, q->target,
                q->body_len);
    if (r)
        fprintf(stderr, "answer: %d %.*s\n", r->status,
                (int)(r->resp_len > 2000 ? 2000 : r->resp_len), r->resp ? r->resp : "");
    remove_db(run_db);
    remove_db(template_db);
    rmdir(dir);
    abort();
}

static void cleanup(void)
{
    for (size_t i = 0; i < ntables; i++) {
        sqlite3_finalize(tables[i].scan);
        sqlite3_finalize(tables[i].empty);
        sqlite3_finalize(tables[i].refill);
        sqlite3_free(tables[i].name);
    }
    free(tables);
    sqlite3_close(raw);
    ly_server_stop(servers[0], 0);
    ly_server_stop(servers[1], 0);
    ly_store_close(store);
    remove_db(run_db);
    remove_db(template_db);
    rmdir(dir);
}

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char buf[1 << 16];
    ssize_t n = 0;
    while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n) {
            n = -1;
            break;
        }
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return in < 0 || out < 0 || n < 0 ? -1 : 0;
}

static void remove_db(const char *path)
{
    char side[128];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

/* ---- the database's content, to tell that a request wrote nothing -------- */

/* PRAGMA data_version: changes whenever another connection commits. */
static int64_t db_version(sqlite3 *db)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* BLAKE2b of every row of every table. */
static void db_digest(sqlite3 *db, unsigned char out[32])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 32);
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (size_t t = 0; t < ntables; t++) {
        sqlite3_stmt *rows = tables[t].scan;
        crypto_generichash_update(&h, (const unsigned char *)tables[t].name,
                                  strlen(tables[t].name) + 1);
        while (sqlite3_step(rows) == SQLITE_ROW)
            for (int i = 0; i < sqlite3_column_count(rows); i++) {
                unsigned char type = (unsigned char)sqlite3_column_type(rows, i);
                const unsigned char *v = sqlite3_column_blob(rows, i);
                size_t n = (size_t)sqlite3_column_bytes(rows, i);
                crypto_generichash_update(&h, &type, 1);
                crypto_generichash_update(&h, (const unsigned char *)&n, sizeof n);
                if (v)
                    crypto_generichash_update(&h, v, n);
            }
        if (sqlite3_reset(rows) != SQLITE_OK)
            die(NULL, NULL, "cannot read %s: %s", tables[t].name, sqlite3_errmsg(db));
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    crypto_generichash_final(&h, out, 32);
}

/* ---- the input ------------------------------------------------------------- */

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Cuts the line at *p (to '\n' or end), dropping a trailing '\r'. */
static char *next_line(char **p, char *end)
{
    char *line = *p, *nl = memchr(line, '\n', (size_t)(end - line));
    char *stop = nl ? nl : end;
    *p = nl ? nl + 1 : end;
    if (stop > line && stop[-1] == '\r')
        stop--;
    *stop = '\0';
    return line;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* "METHOD TARGET[ HTTP/1.1]", header lines, an empty line, the body. 0 when
 * libmicrohttpd would have refused the request line before Loyal saw it. */
static int parse_request(char *p, char *end, fuzz_req *q)
{
    memset(q, 0, sizeof *q);
    q->authorization = "admin";
    char *line = next_line(&p, end), *sp = strchr(line, ' ');
    if (!sp)
        return 0;
    *sp = '\0';
    q->method = line;
    q->target = sp + 1;
    if ((sp = strchr(sp + 1, ' ')))
        *sp = '\0';
    if (!*q->method || strlen(q->method) > 16 || !*q->target)
        return 0;
    for (const char *c = q->method; *c; c++)
        if (!is_tchar((unsigned char)*c))
            return 0;
    for (const unsigned char *c = (const unsigned char *)q->target; *c; c++)
        if (*c <= 0x20 || *c >= 0x7f)
            return 0;
    while (p < end) {
        line = next_line(&p, end);
        if (!*line)
            break;
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        char *value = trim(colon + 1);
        if (strcasecmp(line, "Authorization") == 0)
            q->authorization = value;
        else if (strcasecmp(line, "Idempotency-Key") == 0)
            q->idempotency_key = value;
        else if (strcasecmp(line, "Content-Length") == 0)
            q->content_length = strtoull(value, NULL, 10);
    }
    q->body = p;
    q->body_len = (size_t)(end - p);
    return 1;
}

/* "admin", "pos", … stand for the template's keys; "none" for no header. */
static const char *authorization(const fuzz_req *q, ly_arena *a)
{
    if (strcmp(q->authorization, "none") == 0)
        return NULL;
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(q->authorization, key_names[i]) == 0)
            return ly_arena_printf(a, "Bearer %s", keys[i]);
    return q->authorization;
}

/* The query string split and decoded as libmicrohttpd does: '&' between
 * parameters, the first '=' between name and value (none: a NULL value), '+'
 * for a space, %XX escapes. */
static void parse_query(ly_req *r, char *args)
{
    size_t cap = 1;
    for (const char *c = args; *c; c++)
        cap += *c == '&';
    ly_param *params = ly_arena_alloc(&r->arena, cap * sizeof *params);
    size_t n = 0;
    while (params && args && *args) {
        char *amp = strchr(args, '&'), *eq;
        if (amp)
            *amp = '\0';
        if ((eq = strchr(args, '=')))
            *eq++ = '\0';
        for (char *c = args; *c; c++)
            if (*c == '+')
                *c = ' ';
        for (char *c = eq; c && *c; c++)
            if (*c == '+')
                *c = ' ';
        size_t len = MHD_http_unescape(args);
        if (eq)
            MHD_http_unescape(eq);
        params[n++] = (ly_param){args, len, eq};
        args = amp ? amp + 1 : NULL;
    }
    r->query = params;
    r->nquery = n;
}

/* ---- one request ------------------------------------------------------------ */

static const int documented[] = {200, 201, 400, 401, 403, 404, 405, 409, 413, 422, 429};

static void check_error_shape(const fuzz_req *q, const ly_req *r, json_t *body)
{
    json_t *e = json_object_get(body, "error");
    if (json_object_size(body) != 1 || !json_is_object(e))
        die(q, r, "an error answer is not {\"error\": {…}}");
    const char *k;
    json_t *v;
    json_object_foreach(e, k, v)
    {
        if (strcmp(k, "code") != 0 && strcmp(k, "message") != 0 && strcmp(k, "field") != 0)
            die(q, r, "error.%s is not part of the error shape", k);
        if (!json_is_string(v))
            die(q, r, "error.%s is not a string", k);
    }
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *message = json_string_value(json_object_get(e, "message"));
    if (!code || !*code || !message || !*message)
        die(q, r, "an error without a code or a message");
}

static void check_answer(const fuzz_req *q, const ly_req *r)
{
    size_t i = 0;
    while (i < sizeof documented / sizeof documented[0] && documented[i] != r->status)
        i++;
    if (i == sizeof documented / sizeof documented[0])
        die(q, r, "status %d", r->status);
    if (r->status == 405 && (!r->allow || !*r->allow))
        die(q, r, "a 405 without Allow");
    if (r->content_type && strncmp(r->content_type, "application/json", 16) != 0) {
        if (r->status >= 400)
            die(q, r, "an error in %s", r->content_type);
        return;
    }
    json_error_t je;
    json_t *body = json_loadb(r->resp ? r->resp : "", r->resp_len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(body))
        die(q, r, "the answer is not a JSON object (%s)", body ? "another value" : je.text);
    if (r->status >= 400)
        check_error_shape(q, r, body);
    json_decref(body);
}

/* A write under a key that succeeded earlier in the run, identical: it
 * must be replayed as it was answered. (Reads and simulations ignore the
 * header.) */
static void check_replay(const fuzz_req *reqs, const seen *seen, size_t i, const ly_req *r)
{
    const fuzz_req *q = &reqs[i];
    if (!q->idempotency_key || !r->route || strcmp(r->route->method, "GET") == 0 ||
        (r->route->flags & LY_ROUTE_WRITES_NOTHING) || r->status == 401 || r->status == 403 ||
        seen[i].too_large)
        return;
    for (size_t j = 0; j < i; j++) {
        const fuzz_req *p = &reqs[j];
        if (!p->idempotency_key || strcmp(p->idempotency_key, q->idempotency_key) != 0 ||
            seen[j].status >= 400 || seen[j].replayed || !seen[j].path || !seen[i].path ||
            strcmp(p->method, q->method) != 0 || strcmp(seen[j].path, seen[i].path) != 0 ||
            p->body_len != q->body_len || memcmp(p->body, q->body, q->body_len) != 0)
            continue;
        if (r->status != seen[j].status || !r->replayed)
            die(q, r, "not replayed under Idempotency-Key %s: first %d", q->idempotency_key,
                seen[j].status);
        if (!seen[j].secret &&
            (r->resp_len != seen[j].resp_len || memcmp(r->resp, seen[j].resp, r->resp_len) != 0))
            die(q, r, "replayed with another answer; first: %.*s", (int)seen[j].resp_len,
                seen[j].resp);
        return;
    }
}

static void run_one(ly_server *s, sqlite3 *peek, const fuzz_req *reqs, seen *seen, size_t i,
                    int64_t *known_version, unsigned char known[32])
{
    const fuzz_req *q = &reqs[i];
    int64_t before = db_version(peek);
    if (before != *known_version) {
        db_digest(peek, known);
        *known_version = before;
    }
    ly_req *r = ly__req_new(s, q->method, NULL);
    if (!r)
        die(q, NULL, "out of memory");
    /* The path is decoded; the query is split off first, as libmicrohttpd does. */
    char *target = ly_arena_strdup(&r->arena, q->target), *args;
    if (!target)
        die(q, NULL, "out of memory");
    if ((args = strchr(target, '?')))
        *args++ = '\0';
    MHD_http_unescape(target);
    r->path = target;
    if (args)
        parse_query(r, args);
    r->authorization = authorization(q, &r->arena);
    r->idempotency_key = q->idempotency_key;
    if (q->content_length > MAX_BODY || q->body_len > MAX_BODY) {
        r->too_large = 1;
    } else if (q->body_len) {
        if (!(r->body = malloc(q->body_len + 1)))
            die(q, NULL, "out of memory");
        memcpy(r->body, q->body, q->body_len);
        r->body[q->body_len] = '\0';
        r->body_len = q->body_len;
        r->body_cap = q->body_len + 1;
    }
    ly__dispatch(r);
    while (__atomic_load_n(&r->waiting, __ATOMIC_ACQUIRE))
        sched_yield();
    ly__req_release_db(r);

    if (trace)
        fprintf(stderr, "%s %s -> %d %.*s\n", q->method, q->target, r->status,
                (int)(r->resp_len > 300 ? 300 : r->resp_len), r->resp ? r->resp : "");
    check_answer(q, r);
    seen[i].status = r->status;
    seen[i].replayed = r->replayed;
    seen[i].path = target; /* in r's arena: copied below */
    seen[i].too_large = r->too_large;
    seen[i].secret = r->route && (r->route->flags & LY_ROUTE_SECRET_ANSWER);
    int writes = r->route && strcmp(r->route->method, "GET") != 0 &&
                 !(r->route->flags & LY_ROUTE_WRITES_NOTHING) && r->status < 400;
    if (!writes && db_version(peek) != before) {
        unsigned char now[32];
        db_digest(peek, now);
        if (memcmp(now, known, 32) != 0)
            die(q, r, "%s changed the database", r->status >= 400 ? "a refusal" : "a read");
    }
    check_replay(reqs, seen, i, r);
    seen[i].path = strdup(target);
    seen[i].resp = r->resp;
    seen[i].resp_len = r->resp_len;
    r->resp = NULL;
    ly__req_free(r);
}

/* ---- the database: a template, and a copy the inputs run on ---------------- */

/* Gives the copy the template's rows back. */
static void restore_template(void)
{
    if (sqlite3_exec(raw, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        die(NULL, NULL, "cannot restore the template: %s", sqlite3_errmsg(raw));
    for (size_t i = 0; i < ntables; i++)
        if (sqlite3_step(tables[i].empty) != SQLITE_DONE ||
            sqlite3_reset(tables[i].empty) != SQLITE_OK ||
            sqlite3_step(tables[i].refill) != SQLITE_DONE ||
            sqlite3_reset(tables[i].refill) != SQLITE_OK)
            die(NULL, NULL, "cannot restore the template: %s", sqlite3_errmsg(raw));
    /* The engine caches a program's settings and rules by its updated_at,
     * which only ever grows in one database; here the database goes back to
     * the template, so each run starts from a version of its own, far ahead
     * of the clock, lest it find another run's settings or rules cached. */
    static int64_t runs;
    char sql[96];
    snprintf(sql, sizeof sql, "UPDATE main.programs SET updated_at = %lld",
             (long long)(UINT64_C(4102444800000) + (uint64_t)++runs * 1000000u));
    if (sqlite3_exec(raw, sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        die(NULL, NULL, "cannot restore the template: %s", sqlite3_errmsg(raw));
}

static sqlite3_stmt *prepare(const char *fmt, const char *name)
{
    char *sql = sqlite3_mprintf(fmt, name, name);
    sqlite3_stmt *st;
    if (!sql || sqlite3_prepare_v2(raw, sql, -1, &st, NULL) != SQLITE_OK)
        die(NULL, NULL, "cannot prepare %s: %s", sql ? sql : fmt, sqlite3_errmsg(raw));
    sqlite3_free(sql);
    return st;
}

static void prepare_tables(void)
{
    sqlite3_stmt *list;
    if (sqlite3_prepare_v2(raw,
                           "SELECT name FROM tpl.sqlite_master WHERE type = 'table' ORDER BY name",
                           -1, &list, NULL) != SQLITE_OK)
        die(NULL, NULL, "cannot list tables: %s", sqlite3_errmsg(raw));
    while (sqlite3_step(list) == SQLITE_ROW) {
        char *name = sqlite3_mprintf("%s", sqlite3_column_text(list, 0));
        table *grown = realloc(tables, (ntables + 1) * sizeof *tables);
        if (!name || !grown)
            die(NULL, NULL, "out of memory");
        tables = grown;
        tables[ntables++] = (table){
            name,
            prepare("SELECT * FROM main.\"%w\"", name),
            prepare("DELETE FROM main.\"%w\"", name),
            prepare("INSERT INTO main.\"%w\" SELECT * FROM tpl.\"%w\"", name),
        };
    }
    sqlite3_finalize(list);
}

/* Runs the requests from the template's state; statuses[] receives what
 * each got. */
static void run(const fuzz_req *reqs, size_t n, int with_writer, int *statuses)
{
    restore_template();
    int64_t known_version = db_version(raw);
    unsigned char known[32];
    db_digest(raw, known);
    seen seen[MAX_REQUESTS] = {0};
    for (size_t i = 0; i < n; i++) {
        run_one(servers[with_writer], raw, reqs, seen, i, &known_version, known);
        statuses[i] = seen[i].status;
    }
    for (size_t i = 0; i < n; i++) {
        free(seen[i].resp);
        free((char *)seen[i].path);
    }

    /* The ledger is sound whatever was asked of it. */
    ly_error err;
    ly_error_clear(&err);
    ly_conn *c = ly_store_acquire(store, &err);
    ly_arena a;
    ly_arena_init(&a, 4096);
    ly_violation *v;
    size_t nv = 0;
    if (!c || ly_ledger_verify(c, &a, &v, &nv, &err) != LY_OK)
        die(NULL, NULL, "cannot verify the ledger: %s", err.message);
    if (nv)
        die(NULL, NULL, "the ledger breaks %s (%s), %s the writer", v[0].invariant, v[0].detail,
            with_writer ? "with" : "without");
    ly_arena_release(&a);
    ly_store_release(store, c);
}

/* Requests that give the template a program with earn rules, members with
 * points, credit, a card and a redemption: mem_1 (ann@example.com,
 * +14155550100, card 4000000000000001, external_id A-1, birthday 15 June),
 * mem_2 (bob@example.com), red_1 of mem_1, purchase order-1 of mem_1. */
static const char *const setup_requests[] = {
    "PUT /v1/program\n\n{\"name\":\"Fuzz Coffee\",\"currency\":\"USD\",\"earn\":{\"points\":1,"
    "\"per_minor\":100,\"rounding\":\"down\"},\"pending_days\":0,\"expiry\":{\"policy\":"
    "\"rolling\",\"days\":365},\"on_return_spent\":\"negative\",\"phone_country_code\":\"1\"}",
    "POST /v1/rules\n\n{\"id\":\"base\",\"on\":\"purchase\",\"effect\":{\"points_per\":"
    "{\"points\":1,\"per_minor\":100,\"rounding\":\"down\"}}}",
    "POST /v1/rules\n\n{\"id\":\"coffee-x2\",\"on\":\"purchase\",\"priority\":10,\"items\":"
    "\"item.category == \\\"coffee\\\"\",\"effect\":{\"multiply\":\"2\"},\"cap\":{\"points\":500,"
    "\"per\":\"member\",\"period\":\"day\"}}",
    "POST /v1/rules\n\n{\"id\":\"cashback-2\",\"on\":\"purchase\",\"when\":\"event.amount >= "
    "1000\",\"effect\":{\"cashback_percent\":\"2\"},\"cap\":{\"credit\":100000,\"per\":\"rule\","
    "\"period\":\"lifetime\"}}",
    "POST /v1/rules\n\n{\"id\":\"review-50\",\"on\":\"custom:review\",\"effect\":{\"points\":50},"
    "\"cap\":{\"count\":3,\"per\":\"member\",\"period\":\"month\"}}",
    "POST /v1/rules\n\n{\"id\":\"welcome\",\"on\":\"signup\",\"effect\":{\"points\":100}}",
    "POST /v1/rules\n\n{\"id\":\"birthday-200\",\"on\":\"birthday\",\"effect\":{\"points\":200}}",
    "POST /v1/members\n\n{\"external_id\":\"A-1\",\"email\":\"ann@example.com\",\"phone\":"
    "\"+14155550100\",\"name\":\"Ann\",\"birthdate\":\"1990-06-15\",\"cards\":"
    "[\"4000000000000001\"]}",
    "POST /v1/members\n\n{\"name\":\"Bob\",\"email\":\"bob@example.com\"}",
    "POST /v1/events\n\n{\"id\":\"order-1\",\"type\":\"purchase\",\"member\":\"mem_1\","
    "\"amount\":50000,\"currency\":\"USD\",\"items\":[{\"sku\":\"LATTE\",\"category\":\"coffee\","
    "\"quantity\":2,\"unit_price\":500},{\"sku\":\"MUG\",\"category\":\"goods\",\"quantity\":1,"
    "\"unit_price\":49000}]}",
    "POST /v1/members/mem_1/adjustments\n\n{\"asset\":\"credit\",\"amount\":1000,\"reason\":"
    "\"welcome\"}",
    "POST /v1/members/mem_1/redemptions\n\n{\"points\":10}",
};

static void make_template(void)
{
    ly_error err;
    ly_error_clear(&err);
    snprintf(dir, sizeof dir, "%s", "/dev/shm/loyal-fuzz-XXXXXX");
    if (!mkdtemp(dir)) {
        snprintf(dir, sizeof dir, "%s", "/tmp/loyal-fuzz-XXXXXX");
        if (!mkdtemp(dir))
            die(NULL, NULL, "cannot make a directory");
    }
    snprintf(template_db, sizeof template_db, "%s/template.db", dir);
    snprintf(run_db, sizeof run_db, "%s/run.db", dir);
    atexit(cleanup);
    ly_store *tpl;
    if (ly_keys_init() != LY_OK || ly_store_open(template_db, 2, &tpl, &err) != LY_OK ||
        ly_store_migrate(tpl, NULL, &err) != LY_OK)
        die(NULL, NULL, "no template database: %s", err.message);
    ly_conn *c = ly_store_acquire(tpl, &err);
    ly_arena a;
    ly_arena_init(&a, 4096);
    for (size_t i = 0; i < NKEYS; i++) {
        ly_key k;
        const char *scope = strcmp(key_names[i], "revoked") == 0 ? "admin" : key_names[i];
        if (!c ||
            ly_apikey_create(c, &a, LY_DEFAULT_PROGRAM, scope, key_names[i], keys[i], &k, &err) !=
                LY_OK ||
            (strcmp(key_names[i], "revoked") == 0 &&
             ly_apikey_revoke(c, &a, LY_DEFAULT_PROGRAM, k.id, &k, &err) != LY_OK))
            die(NULL, NULL, "no key: %s", err.message);
    }
    ly_arena_release(&a);
    ly_store_release(tpl, c);

    ly_server *s;
    ly_server_config cfg = {.host = "127.0.0.1", .threads = 1, .max_body = MAX_BODY};
    if (ly__server_new(tpl, &cfg, 0, &s, &err) != LY_OK)
        die(NULL, NULL, "no server: %s", err.message);
    for (size_t i = 0; i < sizeof setup_requests / sizeof setup_requests[0]; i++) {
        char *text = strdup(setup_requests[i]);
        fuzz_req q;
        parse_request(text, text + strlen(text), &q);
        ly_req *r = ly__req_new(s, q.method, q.target);
        r->authorization = authorization(&q, &r->arena);
        r->body = strdup(q.body);
        r->body_len = q.body_len;
        r->body_cap = q.body_len + 1;
        ly__dispatch(r);
        ly__req_release_db(r);
        if (r->status >= 300)
            die(&q, r, "the template's request failed");
        ly__req_free(r);
        free(text);
    }
    ly_server_stop(s, 0);
    ly_store_close(tpl); /* the last connection checkpoints: one file */

    if (copy_file(template_db, run_db) != 0)
        die(NULL, NULL, "cannot copy %s", template_db);
    if (ly_store_open(run_db, 3, &store, &err) != LY_OK ||
        ly__server_new(store, &cfg, 0, &servers[0], &err) != LY_OK ||
        ly__server_new(store, &cfg, 1, &servers[1], &err) != LY_OK)
        die(NULL, NULL, "no server on %s: %s", run_db, err.message);
    char *attach = sqlite3_mprintf("ATTACH '%q' AS tpl", template_db);
    if (sqlite3_open(run_db, &raw) != SQLITE_OK || sqlite3_busy_timeout(raw, 5000) != SQLITE_OK ||
        sqlite3_exec(raw, attach, NULL, NULL, NULL) != SQLITE_OK)
        die(NULL, NULL, "cannot open %s: %s", run_db, sqlite3_errmsg(raw));
    sqlite3_free(attach);
    prepare_tables();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        trace = getenv("FUZZ_HTTP_TRACE") != NULL;
        make_template();
        ready = 1;
    }
    /* A copy to cut in place, NUL-ended, with room to find the separators. */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    fuzz_req reqs[MAX_REQUESTS];
    size_t n = 0;
    for (char *p = text, *end = text + size; p < end && n < MAX_REQUESTS;) {
        char *sep = memmem(p, (size_t)(end - p), SEPARATOR, strlen(SEPARATOR));
        char *stop = sep ? sep : end;
        *stop = '\0';
        if (parse_request(p, stop, &reqs[n]))
            n++;
        p = sep ? sep + strlen(SEPARATOR) : end;
    }
    if (n) {
        int with[MAX_REQUESTS], without[MAX_REQUESTS];
        if (trace)
            fprintf(stderr, "-- through the writer\n");
        run(reqs, n, 1, with);
        if (trace)
            fprintf(stderr, "-- without the writer\n");
        run(reqs, n, 0, without);
        for (size_t i = 0; i < n; i++)
            if (with[i] != without[i])
                die(&reqs[i], NULL, "%d through the writer, %d without", with[i], without[i]);
    }
    free(text);
    return 0;
}
