/* The durable-purchase benchmark's ceiling: a bare SQLite program that runs,
 * per purchase, the statements Loyal's purchase path runs (the same SQL text,
 * prepared once) on Loyal's schema, in WAL mode with synchronous=FULL, and
 * commits every GROUP purchases: no HTTP, no JSON parsing, no Loyal code.
 *
 * Usage: bare_sqlite DB MIGRATIONS_DIR GROUP SECONDS [MEMBERS [writes]]
 *
 * DB is created with the SQL of every NNNN_*.sql file of MIGRATIONS_DIR, in
 * name order, when it has no members table yet; it then gets MEMBERS
 * members (default 1000) unless it holds that many already, so a second run
 * on the same file continues where the first stopped, as Loyal's database
 * does between its single and batch runs. Then it records purchases of a
 * random member and a random amount for SECONDS seconds, finishing the group
 * under way, and prints on stdout
 *   events=N seconds=S events_per_s=R transactions=T group=G sqlite=VERSION
 * and a sentence on stderr. Exits 1 on any SQLite error.
 *
 * One purchase, as src/engine/events.c (do_event, purchase) and
 * src/engine/ledger.c (ly__post, ly__lot_new, ly_balance_get)
 * run it on src/store/sqlite.c for an event naming its member by id, with no
 * event id (so a new one) and points earned:
 *   program_get;                                           -- reads
 *   member_lock (which also says whether it is active);
 *   event_next_id;                                         -- the event's id
 *   account_balance;                                       -- the balance before
 *   entry_insert; account_add + posting_add for the        -- the earn entry
 *     member, posting_add for the program's issued account
 *     (which keeps no running balance);
 *   lot_insert;                                            -- its lot
 *   member_purchase;                                       -- purchase totals
 *   member_balances (both accounts, their lots' sums and   -- the answer's balance,
 *     the next expiry dates, in one statement);           --   from index ranges
 *   event_insert                                           -- its row and answer
 * (Loyal settles the lots against the balance only when the balance was
 * negative before the purchase, which never happens here: purchases only.)
 * With GROUP 1 each purchase is its own BEGIN IMMEDIATE ... COMMIT (one
 * fsync per purchase). The GROUP purchases of a transaction run without
 * savepoints, as the group-commit writer runs requests and a batch's
 * events.
 *
 * With "writes" after MEMBERS, a purchase runs only the rows it must write,
 * and reads nothing: the event, the entry, the member account's balance, the
 * two postings, the lot and the member's totals, 7 statements, with every
 * account id and the next event id known beforehand (read once, before the
 * clock starts). That is the ceiling over any way of keeping these rows, not
 * what Loyal does: Loyal must read the program, the member and the balance
 * before it writes, and the balance again for its answer. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_EVENTS 100000000L /* a bound on the loop besides the clock */

/* Loyal's statements, verbatim from src/store/sqlite.c. */

enum {
    BEGIN_WRITE,
    COMMIT,
    PROGRAM_GET,
    MEMBER_LOCK,
    EVENT_NEXT_ID,
    EVENT_INSERT,
    ENTRY_INSERT,
    ACCOUNT_ADD,
    ACCOUNT_CREATE,
    POSTING_INSERT,
    POSTING_ADD,
    LOT_INSERT,
    ACCOUNT_BALANCE,
    MEMBER_BALANCES,
    MEMBER_PURCHASE,
    ACCOUNT_ADD_ID,
    NSTMTS
};

static const char *const sql[NSTMTS] = {
    [BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [COMMIT] = "COMMIT",
    [PROGRAM_GET] = "SELECT id, name, currency, timezone, point_value_minor, settings, "
                    "created_at, updated_at FROM programs WHERE id = ?1",
    [MEMBER_LOCK] = "SELECT status = 'active' FROM members WHERE program_id = ?1 AND id = ?2",
    [EVENT_NEXT_ID] = "SELECT COALESCE(MAX(id), 0) + 1 FROM events",
    [EVENT_INSERT] = "INSERT INTO events (id, program_id, ext_id, type, member_id, amount, "
                     "currency, occurred_at, original_id, points, credit, returned_amount, "
                     "reversed_points, reversed_credit, returned_items, entry_id, body, "
                     "request_hash, result, created_at) VALUES (NULLIF(?20, 0), ?1, ?2, ?3, "
                     "NULLIF(?4, 0), ?5, ?6, ?7, NULLIF(?8, 0), ?9, ?10, ?11, ?12, ?13, ?14, "
                     "NULLIF(?15, 0), ?16, ?17, ?18, ?19)",
    [ENTRY_INSERT] = "INSERT INTO entries (program_id, member_id, kind, event_id, ref_entry_id, "
                     "memo, data, effective_at, created_at) VALUES (?1, ?2, ?3, NULLIF(?4, 0), "
                     "NULLIF(?5, 0), ?6, ?7, ?8, ?9)",
    [ACCOUNT_ADD] = "UPDATE accounts SET balance = checked_add(balance, ?5) "
                    "WHERE program_id = ?1 AND member_id = ?2 AND kind = ?3 AND asset = ?4",
    [ACCOUNT_CREATE] = "INSERT INTO accounts (program_id, member_id, kind, asset, balance) "
                       "VALUES (?1, ?2, ?3, ?4, ?5)",
    [POSTING_INSERT] = "INSERT INTO postings (entry_id, account_id, amount) VALUES (?1, ?2, ?3)",
    [POSTING_ADD] = "INSERT INTO postings (entry_id, account_id, amount) "
                    "SELECT ?6, id, ?5 FROM accounts WHERE program_id = ?1 AND member_id = ?2 "
                    "AND kind = ?3 AND asset = ?4",
    [LOT_INSERT] = "INSERT INTO lots (program_id, member_id, asset, entry_id, amount, "
                   "remaining, available_at, expires_at, created_at) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULLIF(?8, 0), ?9)",
    [ACCOUNT_BALANCE] = "SELECT balance FROM accounts WHERE program_id = ?1 AND member_id = ?2 "
                        "AND kind = ?3 AND asset = ?4",
    [MEMBER_BALANCES] =
        "SELECT 0, a.asset, a.balance, "
        "(SELECT COALESCE(SUM(l.remaining), 0) FROM lots l WHERE l.program_id = ?1 "
        "AND l.member_id = ?2 AND l.asset = a.asset AND l.remaining > 0 AND l.available_at > ?3 "
        "AND l.available_at > l.created_at AND (l.expires_at IS NULL OR l.expires_at > ?3)), "
        "(SELECT COALESCE(SUM(l.remaining), 0) FROM lots l WHERE l.program_id = ?1 "
        "AND l.member_id = ?2 AND l.asset = a.asset AND l.remaining > 0 "
        "AND l.expires_at <= ?3) "
        "FROM accounts a WHERE a.program_id = ?1 AND a.member_id = ?2 AND a.kind = 'member' "
        "UNION ALL SELECT * FROM (SELECT 1, 'points', SUM(remaining), expires_at, 0 FROM lots "
        "WHERE program_id = ?1 AND member_id = ?2 AND asset = 'points' AND remaining > 0 "
        "AND expires_at > ?3 GROUP BY expires_at ORDER BY expires_at LIMIT ?4)",
    [MEMBER_PURCHASE] = "UPDATE members SET lifetime_spend = checked_add(lifetime_spend, ?4), "
                        "purchase_count = checked_add(purchase_count, ?5), "
                        "last_purchase_at = CASE WHEN ?5 > 0 "
                        "THEN max(COALESCE(last_purchase_at, ?3), ?3) "
                        "ELSE last_purchase_at END, "
                        "last_activity_at = max(COALESCE(last_activity_at, ?3), ?3) "
                        "WHERE program_id = ?1 AND id = ?2",
    /* Only for "writes": an account's balance moved by its id. */
    [ACCOUNT_ADD_ID] = "UPDATE accounts SET balance = checked_add(balance, ?2) WHERE id = ?1",
};

static sqlite3 *db;
static sqlite3_stmt *st[NSTMTS];

static void die(const char *what)
{
    fprintf(stderr, "bare_sqlite: %s: %s\n", what, db ? sqlite3_errmsg(db) : "no database");
    exit(1);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next_rand(void)
{
    /* xorshift64* */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1du;
}

/* Loyal's checked_add: the account upsert's SQL calls it. */
static void checked_add(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    int64_t sum;
    if (__builtin_add_overflow((int64_t)sqlite3_value_int64(argv[0]),
                               (int64_t)sqlite3_value_int64(argv[1]), &sum))
        sqlite3_result_error(ctx, "integer overflow", -1);
    else
        sqlite3_result_int64(ctx, sum);
}

static void exec(const char *s)
{
    if (sqlite3_exec(db, s, NULL, NULL, NULL) != SQLITE_OK)
        die(s);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "bare_sqlite: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "bare_sqlite: out of memory\n");
        exit(1);
    }
    buf[n] = '\0';
    return buf;
}

/* Binds statement id's parameters by a format: 'i' an int64_t, 's' a text
 * or NULL. */
static sqlite3_stmt *bindp(int id, const char *fmt, ...)
{
    sqlite3_stmt *s = st[id];
    va_list ap;
    va_start(ap, fmt);
    for (int i = 0; fmt[i]; i++) {
        int rc;
        if (fmt[i] == 'i') {
            rc = sqlite3_bind_int64(s, i + 1, va_arg(ap, int64_t));
        } else {
            const char *t = va_arg(ap, const char *);
            rc =
                t ? sqlite3_bind_text(s, i + 1, t, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i + 1);
        }
        if (rc != SQLITE_OK)
            die(sql[id]);
    }
    va_end(ap);
    return s;
}

/* Steps a statement that returns no rows. */
static void run(int id, sqlite3_stmt *s)
{
    if (sqlite3_step(s) != SQLITE_DONE)
        die(sql[id]);
    sqlite3_reset(s);
}

/* Steps a statement to its end, reading every column of every row as Loyal's
 * readers do; the first column of the first row in *first (0 when none) and
 * the sum of column sum_col over the rows in *sum (when sum_col >= 0). */
static int rows(int id, sqlite3_stmt *s, int64_t *first, int sum_col, int64_t *sum)
{
    int n = 0, rc;
    if (first)
        *first = 0;
    if (sum)
        *sum = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int cols = sqlite3_column_count(s);
        for (int c = 0; c < cols; c++) {
            if (sqlite3_column_type(s, c) == SQLITE_TEXT)
                (void)sqlite3_column_text(s, c);
            else
                (void)sqlite3_column_int64(s, c);
        }
        if (n == 0 && first)
            *first = sqlite3_column_int64(s, 0);
        if (sum_col >= 0 && sum)
            *sum += sqlite3_column_int64(s, sum_col);
        n++;
    }
    if (rc != SQLITE_DONE)
        die(sql[id]);
    sqlite3_reset(s);
    return n;
}

/* A migration's file name: four digits, '_', and ".sql" at the end. */
static int is_migration(const struct dirent *d)
{
    const char *s = d->d_name;
    size_t n = strlen(s);
    for (int i = 0; i < 4; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return s[4] == '_' && n > 9 && strcmp(s + n - 4, ".sql") == 0;
}

static void setup(const char *path, const char *migrations, int64_t members)
{
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        die(path);
    sqlite3_busy_timeout(db, 5000);
    /* Loyal's connection settings (sq_open). */
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec("PRAGMA foreign_keys=ON");
    exec("PRAGMA cache_size=-65536"); /* as Loyal's connections */
    if (sqlite3_create_function_v2(db, "checked_add", 2,
                                   SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                   checked_add, NULL, NULL, NULL) != SQLITE_OK)
        die("checked_add");

    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE name = 'members'", -1, &q,
                           NULL) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_ROW)
        die("schema check");
    int have_schema = sqlite3_column_int(q, 0) > 0;
    sqlite3_finalize(q);
    if (!have_schema) {
        /* Loyal's migrations, all of them, in order: 0001_init.sql, ... */
        struct dirent **files;
        int n = scandir(migrations, &files, is_migration, alphasort);
        if (n <= 0) {
            fprintf(stderr, "bare_sqlite: no NNNN_*.sql migrations in %s\n", migrations);
            exit(1);
        }
        exec("BEGIN IMMEDIATE");
        for (int i = 0; i < n; i++) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", migrations, files[i]->d_name);
            char *text = slurp(p);
            exec(text);
            free(text);
            free(files[i]);
        }
        free(files);
        exec("COMMIT");
    }

    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM members", -1, &q, NULL) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_ROW)
        die("member count");
    int64_t have = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (have < members) {
        /* Loyal's member_insert, for members like bench/seed.mjs's. */
        if (sqlite3_prepare_v2(db,
                               "INSERT INTO members (program_id, external_id, email, phone, name, "
                               "birthdate, attributes, status, created_at, updated_at) VALUES "
                               "(1, ?1, ?2, NULL, NULL, NULL, '{}', 'active', ?3, ?3)",
                               -1, &q, NULL) != SQLITE_OK)
            die("member insert");
        exec("BEGIN IMMEDIATE");
        for (int64_t n = have + 1; n <= members; n++) {
            char ext[32], email[64];
            snprintf(ext, sizeof ext, "S-%" PRId64, n);
            snprintf(email, sizeof email, "s%" PRId64 "@example.com", n);
            sqlite3_bind_text(q, 1, ext, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(q, 2, email, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(q, 3, now_ms());
            if (sqlite3_step(q) != SQLITE_DONE)
                die("member insert");
            sqlite3_reset(q);
        }
        exec("COMMIT");
        sqlite3_finalize(q);
    }

    for (int i = 0; i < NSTMTS; i++)
        if (sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i], NULL) !=
            SQLITE_OK)
            die(sql[i]);
}

static void format_time(int64_t ms, char *out, size_t n)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* One purchase of `amount` minor units by member `member`. */
/* A posting of amount to the points account (prog, member, kind), as
 * src/store/sqlite.c makes it: a member account's balance moves by an
 * UPDATE, the posting finds its account by key, and an account that does
 * not exist yet is created (a program account, which keeps no balance,
 * with 0). */
static void post(int64_t prog, int64_t member, const char *kind, int64_t amount, int64_t entry)
{
    if (member != 0) {
        run(ACCOUNT_ADD, bindp(ACCOUNT_ADD, "iissi", prog, member, kind, "points", amount));
        if (sqlite3_changes(db) == 0)
            goto create;
    }
    run(POSTING_ADD, bindp(POSTING_ADD, "iissii", prog, member, kind, "points", amount, entry));
    if (sqlite3_changes(db) == 1)
        return;
create:
    run(ACCOUNT_CREATE, bindp(ACCOUNT_CREATE, "iissi", prog, member, kind, "points",
                              member != 0 ? amount : (int64_t)0));
    run(POSTING_INSERT, bindp(POSTING_INSERT, "iii", entry, sqlite3_last_insert_rowid(db), amount));
}

/* "writes": each member's points account id, by member id - lo, the program's
 * issued account id, and the next event id. */
static int writes_only;
static int64_t *account_of, *balance_of, issued_account, next_event_id;

static void purchase(int64_t member, int64_t amount, int64_t lo)
{
    static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
    static const char hexd[] = "0123456789abcdef";
    const int64_t prog = 1;
    int64_t now = now_ms();
    char ext_id[25] = "evt_", hash[65], body[160], result[640], when[80];
    /* Loyal's event ids: 10 characters of the time, then 10 random ones. */
    uint64_t t = (uint64_t)now, r = next_rand();
    for (int i = 9; i >= 0; i--, t >>= 5)
        ext_id[4 + i] = alphabet[t & 31];
    for (int i = 10; i < 20; i++, r >>= 5)
        ext_id[4 + i] = alphabet[r & 31];
    ext_id[24] = '\0';
    for (int i = 0; i < 64; i += 16) {
        r = next_rand();
        for (int k = 0; k < 16; k++, r >>= 4)
            hash[i + k] = hexd[r & 15];
    }
    hash[64] = '\0';
    /* The request as Loyal keeps it: canonical JSON, keys sorted. */
    snprintf(body, sizeof body,
             "{\"amount\":%" PRId64 ",\"member\":\"mem_%" PRId64 "\",\"type\":\"purchase\"}",
             amount, member);
    int64_t points = amount / 100; /* the default earn rate: 1 point per 100, down */

    int64_t event_id, balance, entry_id;
    if (writes_only) {
        /* The ceiling: the writes alone, every id known. */
        int64_t acct = account_of[member - lo];
        event_id = next_event_id++;
        run(ENTRY_INSERT, bindp(ENTRY_INSERT, "iisiissii", prog, member, "earn", event_id,
                                (int64_t)0, (const char *)NULL, (const char *)NULL, now, now));
        entry_id = sqlite3_last_insert_rowid(db);
        run(ACCOUNT_ADD_ID, bindp(ACCOUNT_ADD_ID, "ii", acct, points));
        run(POSTING_INSERT, bindp(POSTING_INSERT, "iii", entry_id, acct, points));
        run(POSTING_INSERT, bindp(POSTING_INSERT, "iii", entry_id, issued_account, -points));
        balance_of[member - lo] += points;
    } else {
        /* The reads before the event: program, and the member's lock. */
        if (rows(PROGRAM_GET, bindp(PROGRAM_GET, "i", prog), NULL, -1, NULL) != 1)
            die("no program 1");
        if (rows(MEMBER_LOCK, bindp(MEMBER_LOCK, "ii", prog, member), NULL, -1, NULL) != 1)
            die("member lock");

        /* The event's id; its row is written once it is done. */
        rows(EVENT_NEXT_ID, st[EVENT_NEXT_ID], &event_id, -1, NULL);

        /* The balance before: lots are settled only after a negative one. */
        rows(ACCOUNT_BALANCE, bindp(ACCOUNT_BALANCE, "iiss", prog, member, "member", "points"),
             &balance, -1, NULL);
        if (balance < 0)
            die("a negative balance: purchases alone never make one");

        /* ly__post: the entry and its two postings. */
        run(ENTRY_INSERT, bindp(ENTRY_INSERT, "iisiissii", prog, member, "earn", event_id,
                                (int64_t)0, (const char *)NULL, (const char *)NULL, now, now));
        entry_id = sqlite3_last_insert_rowid(db);
        post(prog, member, "member", points, entry_id);
        post(prog, 0, "issued", -points, entry_id);
    }

    /* ly__lot_new: no pending days, no expiry. */
    run(LOT_INSERT, bindp(LOT_INSERT, "iisiiiiii", prog, member, "points", entry_id, points, points,
                          now, (int64_t)0, now));

    /* The member's purchase totals and last activity. */
    run(MEMBER_PURCHASE, bindp(MEMBER_PURCHASE, "iiiii", prog, member, now, amount, (int64_t)1));

    /* The answer's balance, as of now: both accounts with the pending and
     * expired sums of their lots, and the points' next expiry dates, in one
     * statement. */
    int64_t pending = 0, expired = 0, credit = 0;
    if (writes_only) {
        balance = balance_of[member - lo]; /* known: nothing to read */
    } else {
        sqlite3_stmt *q = bindp(MEMBER_BALANCES, "iiii", prog, member, now_ms(), (int64_t)20);
        int rc;
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
            if (sqlite3_column_int64(q, 0) != 0)
                continue;
            if (strcmp((const char *)sqlite3_column_text(q, 1), "points") == 0) {
                balance = sqlite3_column_int64(q, 2);
                pending = sqlite3_column_int64(q, 3);
                expired = sqlite3_column_int64(q, 4);
            } else {
                credit = sqlite3_column_int64(q, 2);
            }
        }
        if (rc != SQLITE_DONE)
            die(sql[MEMBER_BALANCES]);
        sqlite3_reset(q);
    }
    int64_t available = (balance > 0 ? balance : 0) - pending - expired;

    /* The answer, about as Loyal writes it, kept with the event's row. */
    format_time(now, when, sizeof when);
    snprintf(result, sizeof result,
             "{\"event_id\":\"%s\",\"type\":\"purchase\",\"member_id\":\"mem_%" PRId64
             "\",\"points_earned\":%" PRId64 ",\"credit_earned\":0,\"applied_rules\":"
             "[{\"rule_id\":\"base\",\"points\":%" PRId64 "}],\"balance\":{\"points\":"
             "{\"balance\":%" PRId64 ",\"available\":%" PRId64 ",\"pending\":%" PRId64 ","
             "\"expiring\":[]},\"credit\":{\"balance\":%" PRId64 ",\"available\":0}},"
             "\"tier\":null,\"occurred_at\":\"%s\"}",
             ext_id, member, points, points, balance - expired, available, pending, credit, when);
    run(EVENT_INSERT,
        bindp(EVENT_INSERT, "issiisiiiiiiisisssii", prog, ext_id, "purchase", member, amount, "USD",
              now, (int64_t)0, points, (int64_t)0, (int64_t)0, (int64_t)0, (int64_t)0,
              (const char *)NULL, entry_id, body, hash, result, now, event_id));
}

/* "writes": reads, before the clock starts, every id a purchase would look
 * up, creating the accounts no purchase made yet as Loyal's first posting
 * would. */
static void known_ids(int64_t lo, int64_t hi)
{
    size_t n = (size_t)(hi - lo + 1);
    account_of = calloc(n, sizeof *account_of);
    balance_of = calloc(n, sizeof *balance_of);
    if (!account_of || !balance_of) {
        fprintf(stderr, "bare_sqlite: out of memory\n");
        exit(1);
    }
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, balance FROM accounts WHERE program_id = 1 "
                           "AND member_id = ?1 AND kind = ?2 AND asset = 'points'",
                           -1, &q, NULL) != SQLITE_OK)
        die("account ids");
    exec("BEGIN IMMEDIATE");
    for (int64_t m = lo; m <= hi + 1; m++) {
        int64_t member = m <= hi ? m : 0; /* then the program's issued account */
        const char *kind = member ? "member" : "issued";
        sqlite3_bind_int64(q, 1, member);
        sqlite3_bind_text(q, 2, kind, -1, SQLITE_STATIC);
        int rc = sqlite3_step(q);
        int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
        int64_t bal = rc == SQLITE_ROW ? sqlite3_column_int64(q, 1) : 0;
        sqlite3_reset(q);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            die("account ids");
        if (rc == SQLITE_DONE) {
            run(ACCOUNT_CREATE,
                bindp(ACCOUNT_CREATE, "iissi", (int64_t)1, member, kind, "points", (int64_t)0));
            id = sqlite3_last_insert_rowid(db);
        }
        if (member) {
            account_of[m - lo] = id;
            balance_of[m - lo] = bal;
        } else {
            issued_account = id;
        }
    }
    sqlite3_finalize(q);
    exec("COMMIT");
    rows(EVENT_NEXT_ID, st[EVENT_NEXT_ID], &next_event_id, -1, NULL);
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 7 || (argc == 7 && strcmp(argv[6], "writes") != 0)) {
        fprintf(stderr, "usage: bare_sqlite DB MIGRATIONS_DIR GROUP SECONDS [MEMBERS [writes]]\n");
        return 2;
    }
    writes_only = argc == 7;
    long group = strtol(argv[3], NULL, 10);
    double seconds = strtod(argv[4], NULL);
    long members = argc > 5 ? strtol(argv[5], NULL, 10) : 1000;
    if (group < 1 || group > 1000000 || !(seconds > 0) || seconds > 86400 || members < 1 ||
        members > 10000000) {
        fprintf(stderr, "bare_sqlite: GROUP 1..1000000, SECONDS > 0, MEMBERS >= 1\n");
        return 2;
    }
    setup(argv[1], argv[2], members);

    int64_t lo, hi;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "SELECT min(id), max(id) FROM members", -1, &q, NULL) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_ROW)
        die("member ids");
    lo = sqlite3_column_int64(q, 0);
    hi = sqlite3_column_int64(q, 1);
    sqlite3_finalize(q);
    if (writes_only)
        known_ids(lo, hi);
    rng ^= (uint64_t)now_ms();

    long events = 0, txns = 0;
    double start = mono(), elapsed = 0;
    while (elapsed < seconds && events < MAX_EVENTS) {
        run(BEGIN_WRITE, st[BEGIN_WRITE]);
        for (long i = 0; i < group; i++) {
            int64_t member = lo + (int64_t)(next_rand() % (uint64_t)(hi - lo + 1));
            int64_t amount = 100 + (int64_t)(next_rand() % 49901); /* 1.00 to 500.00 */
            purchase(member, amount, lo);
        }
        run(COMMIT, st[COMMIT]);
        events += group;
        txns++;
        elapsed = mono() - start;
    }
    for (int i = 0; i < NSTMTS; i++)
        sqlite3_finalize(st[i]);
    sqlite3_close(db);
    free(account_of);
    free(balance_of);

    double rate = events / elapsed;
    printf("events=%ld seconds=%.2f events_per_s=%.0f transactions=%ld group=%ld sqlite=%s\n",
           events, elapsed, rate, txns, group, sqlite3_libversion());
    fprintf(stderr,
            "bare_sqlite: %ld purchases in %.2f s, %.0f/s, %ld transactions of %ld (WAL, "
            "synchronous=FULL)\n",
            events, elapsed, rate, txns, group);
    return 0;
}
