/* `loyal serve` and `loyal demo`: open and migrate the store, start the HTTP
 * server, and wait for SIGINT or SIGTERM to drain and stop. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "loyal/engine.h"
#include "loyal/server.h"
#include "loyal/timeutil.h"

#define DRAIN_MS 10000

/* "HOST:PORT", "[v6]:PORT" or ":PORT". */
static int parse_listen(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon)
        return -1;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']')
        h++, hl -= 2;
    if (hl == 0)
        h = "0.0.0.0", hl = 7;
    if (hl >= hostlen)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || errno || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

static int parse_int(const char *cmd, const char *name, const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*v || *end || errno || n < lo || n > hi) {
        fprintf(stderr, "loyal %s: --%s must be a whole number from %ld to %ld, not \"%s\"\n", cmd,
                name, lo, hi, v);
        return CLI_USAGE;
    }
    *out = n;
    return 0;
}

typedef struct serve_args {
    const char *db;
    char host[64];
    int port;
    long threads;
    FILE *access_log;
    long max_body;
    long expire_every; /* seconds between expiry runs, 0: never */
} serve_args;

static int read_serve_args(const char *cmd, cli_opt *opts, const char *default_db, serve_args *a)
{
    a->db = cli_get(opts, "db");
    if (!a->db && default_db)
        a->db = default_db;
    if (!a->db)
        a->db = cli_db(opts);
    const char *listen = cli_get(opts, "listen");
    if (!listen)
        listen = getenv("LOYAL_LISTEN");
    if (!listen || !*listen)
        listen = "127.0.0.1:8080";
    if (parse_listen(listen, a->host, sizeof a->host, &a->port) != 0) {
        fprintf(stderr, "loyal %s: --listen must be HOST:PORT, e.g. 127.0.0.1:8080, not \"%s\"\n",
                cmd, listen);
        return CLI_USAGE;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    a->threads = ncpu > 1 ? ncpu : 2;
    const char *t = cli_get(opts, "threads");
    if (t && parse_int(cmd, "threads", t, 1, 256, &a->threads))
        return CLI_USAGE;
    a->max_body = 1 << 20;
    a->expire_every = 3600;
    const char *ev = cli_get(opts, "expire-every");
    if (ev && parse_int(cmd, "expire-every", ev, 0, 31L * 86400, &a->expire_every))
        return CLI_USAGE;
    /* The store reads the cap from the environment, so that every connection
     * it opens, now or later, gets it. */
    const char *pages = cli_get(opts, "max-db-pages");
    long npages;
    if (pages) {
        if (parse_int(cmd, "max-db-pages", pages, 1, 4294967294L, &npages))
            return CLI_USAGE;
        setenv("LOYAL_SQLITE_MAX_PAGES", pages, 1);
    }
    const char *log = cli_get(opts, "access-log");
    a->access_log = stderr;
    if (log && strcmp(log, "off") == 0) {
        a->access_log = NULL;
    } else if (log && strcmp(log, "-") != 0) {
        a->access_log = fopen(log, "a");
        if (!a->access_log) {
            fprintf(stderr, "loyal %s: cannot open access log %s: %s\n", cmd, log, strerror(errno));
            return 1;
        }
    }
    return 0;
}

/* The scheduler: runs the expiry job at start and then every `every`
 * seconds, until told to stop. */
typedef struct scheduler {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    long every;
    ly_store *store;
} scheduler;

/* The scheduled jobs: expiry, then birthday rules. Each logs a JSON line
 * when it did something or failed. */
static void scheduled_jobs(ly_store *store)
{
    ly_error err;
    ly_error_clear(&err);
    ly_arena a;
    ly_arena_init(&a, 16384);
    ly_expire_stats st = {0};
    ly_birthday_stats bd = {0};
    int64_t now = ly_time_now_ms();
    char ts[LY_TIME_BUFSZ];
    ly_time_format(now, ts);
    ly_conn *c = ly_store_acquire(store, &err);
    int rc = c ? ly_expire_run(c, &a, LY_DEFAULT_PROGRAM, now, &st, &err) : LY_ESTORE;
    if (rc != LY_OK)
        fprintf(stderr, "{\"ts\":\"%s\",\"job\":\"expire\",\"error\":\"%s\"}\n", ts, err.code);
    else if (st.lots)
        fprintf(stderr,
                "{\"ts\":\"%s\",\"job\":\"expire\",\"lots_expired\":%lld,\"points_expired\":%lld,"
                "\"members\":%lld}\n",
                ts, (long long)st.lots, (long long)st.points, (long long)st.members);
    if (c) {
        ly_error_clear(&err);
        rc = ly_birthdays_run(c, &a, LY_DEFAULT_PROGRAM, now, &bd, &err);
        if (rc != LY_OK)
            fprintf(stderr, "{\"ts\":\"%s\",\"job\":\"birthdays\",\"error\":\"%s\"}\n", ts,
                    err.code);
        else if (bd.members)
            fprintf(stderr,
                    "{\"ts\":\"%s\",\"job\":\"birthdays\",\"members\":%lld,\"points\":%lld,"
                    "\"credit\":%lld}\n",
                    ts, (long long)bd.members, (long long)bd.points, (long long)bd.credit);
        ly_store_release(store, c);
    }
    ly_arena_release(&a);
}

static void *scheduler_main(void *arg)
{
    scheduler *sc = arg;
    pthread_mutex_lock(&sc->mu);
    while (!sc->stop) {
        pthread_mutex_unlock(&sc->mu);
        scheduled_jobs(sc->store);
        pthread_mutex_lock(&sc->mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += sc->every;
        while (!sc->stop && pthread_cond_timedwait(&sc->cv, &sc->mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&sc->mu);
    return NULL;
}

static int scheduler_start(scheduler *sc, ly_store *store, long every)
{
    memset(sc, 0, sizeof *sc);
    sc->store = store;
    sc->every = every;
    pthread_mutex_init(&sc->mu, NULL);
    pthread_cond_init(&sc->cv, NULL);
    return every > 0 ? pthread_create(&sc->thread, NULL, scheduler_main, sc) : 0;
}

static void scheduler_stop(scheduler *sc)
{
    if (sc->every > 0) {
        pthread_mutex_lock(&sc->mu);
        sc->stop = 1;
        pthread_cond_signal(&sc->cv);
        pthread_mutex_unlock(&sc->mu);
        pthread_join(sc->thread, NULL);
    }
    pthread_cond_destroy(&sc->cv);
    pthread_mutex_destroy(&sc->mu);
}

static int run_server(const char *cmd, serve_args *a, ly_store *store, const char *banner)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    /* Blocked before the workers start, so only sigwait below sees them. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    ly_server_config cfg = {
        .host = a->host,
        .port = a->port,
        .threads = (int)a->threads,
        .access_log = a->access_log,
        .max_body = (size_t)a->max_body,
        .connection_timeout = 60,
    };
    ly_server *srv;
    ly_error err;
    ly_error_clear(&err);
    if (ly_server_start(store, &cfg, &srv, &err) != LY_OK) {
        fprintf(stderr, "loyal %s: %s\n", cmd, err.message);
        return 1;
    }
    int v6 = strchr(a->host, ':') != NULL;
    char hostbuf[80];
    snprintf(hostbuf, sizeof hostbuf, "%s%s%s", v6 ? "[" : "", a->host, v6 ? "]" : "");
    if (banner)
        printf("%s", banner);
    printf("loyal %s: serving http://%s:%d on %s (%s, %ld threads); Ctrl-C stops\n", cmd, hostbuf,
           ly_server_port(srv), a->db, ly_store_backend(store), a->threads);
    fflush(stdout);
    scheduler sc;
    if (scheduler_start(&sc, store, a->expire_every) != 0) {
        fprintf(stderr, "loyal %s: cannot start the scheduler\n", cmd);
        ly_server_stop(srv, 0);
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    scheduler_stop(&sc);
    fprintf(stderr, "loyal %s: %s received, finishing requests in flight\n", cmd,
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    ly_server_stop(srv, DRAIN_MS);
    return 0;
}

/* clang-format off */
#define SERVE_OPTS                                                                     \
    {"db", "PATH|URL", "SQLite file or postgres:// URL (env LOYAL_DB)", NULL},         \
    {"listen", "HOST:PORT", "address to serve on (env LOYAL_LISTEN; 127.0.0.1:8080)", NULL}, \
    {"threads", "N", "worker threads (default: number of CPUs)", NULL},                \
    {"access-log", "PATH|-|off", "JSON access log lines (default - for stderr)", NULL}, \
    {"expire-every", "SECONDS", "run the expiry and birthday jobs this often (3600; 0: never)", NULL}, \
    {"max-db-pages", "N", "cap an SQLite database at N pages (env LOYAL_SQLITE_MAX_PAGES)", NULL}
/* clang-format on */

int cli_serve(int argc, char **argv)
{
    cli_opt opts[] = {SERVE_OPTS, {NULL, NULL, NULL, NULL}};
    int rc = cli_parse("serve", "[options]",
                       "Serves the HTTP API. The schema is migrated first if needed.", argc, argv,
                       opts, NULL, 0, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    serve_args a;
    if ((rc = read_serve_args("serve", opts, NULL, &a)))
        return rc;
    ly_store *store;
    if (cli_open(a.db, (int)a.threads + 2, &store))
        return 1;
    rc = run_server("serve", &a, store, NULL);
    ly_store_close(store);
    if (a.access_log && a.access_log != stderr)
        fclose(a.access_log);
    return rc;
}

/* The demo program: a café with a few members, created once. */
static int seed_demo(ly_store *store)
{
    static const char program[] =
        "{\"name\":\"Bean & Leaf Coffee\",\"currency\":\"USD\",\"timezone\":\"America/New_York\","
        "\"point_value_minor\":1,\"earn\":{\"points\":1,\"per_minor\":100,\"rounding\":\"down\"},"
        "\"pending_days\":0,\"expiry\":{\"policy\":\"rolling\",\"days\":365},"
        "\"on_return_spent\":\"negative\",\"phone_country_code\":\"1\"}";
    static const struct {
        const char *external_id, *email, *phone, *name, *birthdate, *card;
    } people[] = {
        {"C-1001", "ann.lee@example.com", "+1 415 555 0101", "Ann Lee", "1990-04-01",
         "6006 0000 0000 1001"},
        {"C-1002", "bo.diaz@example.com", "(212) 555-0102", "Bo Diaz", "1985-11-23",
         "6006 0000 0000 1002"},
        {"C-1003", "chen.wu@example.com", "+1 646 555 0103", "Chen Wu", "2001-02-14", NULL},
        {"C-1004", "dana.okafor@example.com", NULL, "Dana Okafor", NULL, "6006 0000 0000 1004"},
        {"C-1005", NULL, "718-555-0105", "Eli Novak", "1978-07-30", NULL},
    };
    /* Its earn rules (docs/rules.md), made before the members so that they
     * get the welcome bonus. */
    static const char *const rules[] = {
        "{\"id\":\"points-per-dollar\",\"name\":\"1 point per dollar\",\"on\":\"purchase\","
        "\"effect\":{\"points_per\":{\"points\":1,\"per_minor\":100}}}",
        "{\"id\":\"weekend-x2\",\"name\":\"Double points at weekends\",\"on\":\"purchase\","
        "\"priority\":10,\"when\":\"weekday(event.occurred_at) >= 6\","
        "\"effect\":{\"multiply\":\"2\"}}",
        "{\"id\":\"morning-coffee-x3\",\"name\":\"Triple points on coffee before 11\","
        "\"on\":\"purchase\",\"priority\":20,\"when\":\"hour(event.occurred_at) < 11\","
        "\"items\":\"item.category == \\\"coffee\\\"\",\"effect\":{\"multiply\":\"3\"}}",
        "{\"id\":\"review-50\",\"name\":\"50 points per review, 3 a month\","
        "\"on\":\"custom:review\",\"effect\":{\"points\":50},"
        "\"cap\":{\"count\":3,\"per\":\"member\",\"period\":\"month\"}}",
        "{\"id\":\"welcome-50\",\"name\":\"Welcome bonus\",\"on\":\"signup\","
        "\"effect\":{\"points\":50}}",
        "{\"id\":\"birthday-200\",\"name\":\"Birthday bonus\",\"on\":\"birthday\","
        "\"effect\":{\"points\":200}}",
    };
    ly_error err;
    ly_error_clear(&err);
    ly_conn *c = ly_store_acquire(store, &err);
    if (!c)
        goto fail;
    ly_arena a;
    ly_arena_init(&a, 8192);
    ly_member *list;
    size_t n = 0;
    int rc = ly_member_list(c, &a, LY_DEFAULT_PROGRAM, 0, 1, &list, &n, &err);
    if (rc == LY_OK && n == 0) {
        ly_program p;
        json_t *body = json_loads(program, 0, NULL);
        rc = body ? ly_program_update(c, &a, LY_DEFAULT_PROGRAM, body, &p, &err) : LY_ENOMEM;
        json_decref(body);
        for (size_t i = 0; rc == LY_OK && i < sizeof rules / sizeof rules[0]; i++) {
            ly_result res = {0};
            json_t *rule = json_loads(rules[i], 0, NULL);
            rc = rule ? ly_rule_save(c, &a, LY_DEFAULT_PROGRAM, NULL, rule, &res, &err) : LY_ENOMEM;
            json_decref(rule);
            free(res.body);
        }
        for (size_t i = 0; rc == LY_OK && i < sizeof people / sizeof people[0]; i++) {
            const char *cards[1] = {people[i].card};
            ly_member_input in = {
                .set = LY_MF_EXTERNAL_ID | LY_MF_EMAIL | LY_MF_PHONE | LY_MF_NAME |
                       LY_MF_BIRTHDATE | LY_MF_CARDS,
                .external_id = people[i].external_id,
                .email = people[i].email,
                .phone = people[i].phone,
                .name = people[i].name,
                .birthdate = people[i].birthdate,
                .cards = cards,
                .ncards = people[i].card ? 1 : 0,
            };
            ly_member m;
            rc = ly_member_enroll(c, &a, LY_DEFAULT_PROGRAM, &in, &m, &err);
        }
    }
    ly_arena_release(&a);
    ly_store_release(store, c);
    if (rc == LY_OK)
        return 0;
fail:
    fprintf(stderr, "loyal demo: cannot create the demo program: %s\n", err.message);
    return 1;
}

int cli_demo(int argc, char **argv)
{
    cli_opt opts[] = {SERVE_OPTS, {NULL, NULL, NULL, NULL}};
    int rc = cli_parse("demo", "[options]",
                       "Creates the demo program \"Bean & Leaf Coffee\" with a few members in\n"
                       "./loyal-demo.db (unless it is there already), prints a new admin key and\n"
                       "serves it on 127.0.0.1:8080.",
                       argc, argv, opts, NULL, 0, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    serve_args a;
    if ((rc = read_serve_args("demo", opts, "./loyal-demo.db", &a)))
        return rc;
    ly_store *store;
    if (cli_open(a.db, (int)a.threads + 2, &store))
        return 1;
    if (seed_demo(store)) {
        ly_store_close(store);
        return 1;
    }
    ly_error err;
    ly_error_clear(&err);
    ly_conn *c = ly_store_acquire(store, &err);
    char key[LY_KEY_MAX], banner[1024];
    ly_key k;
    ly_arena ar;
    ly_arena_init(&ar, 4096);
    rc = c ? ly_apikey_create(c, &ar, LY_DEFAULT_PROGRAM, "admin", "demo", key, &k, &err) : 1;
    if (c)
        ly_store_release(store, c);
    ly_arena_release(&ar);
    if (rc != LY_OK) {
        fprintf(stderr, "loyal demo: cannot create a key: %s\n", err.message);
        ly_store_close(store);
        return 1;
    }
    snprintf(banner, sizeof banner,
             "\nBean & Leaf Coffee is ready.\n\n"
             "  admin key: %s\n\n"
             "Try:\n"
             "  curl -H 'Authorization: Bearer %s' "
             "'http://%s:%d/v1/members?email=ann.lee@example.com'\n\n",
             key, key, a.host, a.port);
    rc = run_server("demo", &a, store, banner);
    ly_store_close(store);
    if (a.access_log && a.access_log != stderr)
        fclose(a.access_log);
    return rc;
}
