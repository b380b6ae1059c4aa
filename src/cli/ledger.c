/* `loyal verify` and `loyal expire`: the ledger's check and its expiry job
 * from the command line. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "loyal/engine.h"
#include "loyal/timeutil.h"

#define DB_OPT                                                                                     \
    {                                                                                              \
        "db", "PATH|URL", "SQLite file or postgres:// URL (env LOYAL_DB)", NULL                    \
    }

int cli_verify(int argc, char **argv)
{
    cli_opt opts[] = {DB_OPT, {NULL, NULL, NULL, NULL}};
    int rc = cli_parse("verify", "[--db PATH|URL]",
                       "Checks every invariant of the ledger: each entry balanced per asset,\n"
                       "each account equal to its postings, each member's lots equal to its\n"
                       "balance, no lot out of bounds, every lot's consumptions accounted for,\n"
                       "every accepted event with its entry. Prints ok and exits 0, or names\n"
                       "each violation and exits 1.",
                       argc, argv, opts, NULL, 0, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    ly_store *s;
    if (cli_open(cli_db(opts), 1, &s))
        return 1;
    ly_error err;
    ly_error_clear(&err);
    ly_arena a;
    ly_arena_init(&a, 16384);
    ly_violation *v = NULL;
    size_t n = 0;
    ly_conn *c = ly_store_acquire(s, &err);
    rc = c ? ly_ledger_verify(c, &a, &v, &n, &err) : LY_ESTORE;
    if (rc != LY_OK)
        fprintf(stderr, "loyal verify: %s\n", err.message);
    else if (n == 0)
        printf("ok\n");
    for (size_t i = 0; rc == LY_OK && i < n; i++)
        printf("%s: %s\n", v[i].invariant, v[i].detail);
    if (c)
        ly_store_release(s, c);
    ly_arena_release(&a);
    ly_store_close(s);
    return rc == LY_OK && n == 0 ? 0 : 1;
}

int cli_expire(int argc, char **argv)
{
    cli_opt opts[] = {DB_OPT,
                      {"as-of", "TIME", "RFC 3339 time to expire as of (default now)", NULL},
                      {NULL, NULL, NULL, NULL}};
    int rc = cli_parse("expire", "[--db PATH|URL] [--as-of TIME]",
                       "Runs the expiry job: lots past their date, and idle balances under an\n"
                       "inactivity policy, go to the program's expired account. Running it\n"
                       "twice expires nothing the second time. Prints what it did as JSON.",
                       argc, argv, opts, NULL, 0, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    int64_t as_of = ly_time_now_ms();
    const char *t = cli_get(opts, "as-of");
    if (t && ly_time_parse(t, &as_of) != LY_OK) {
        fprintf(stderr, "loyal expire: --as-of must be an RFC 3339 time, not \"%s\"\n", t);
        return CLI_USAGE;
    }
    ly_store *s;
    if (cli_open(cli_db(opts), 1, &s))
        return 1;
    ly_error err;
    ly_error_clear(&err);
    ly_arena a;
    ly_arena_init(&a, 16384);
    ly_expire_stats st;
    ly_conn *c = ly_store_acquire(s, &err);
    rc = c ? ly_expire_run(c, &a, LY_DEFAULT_PROGRAM, as_of, &st, &err) : LY_ESTORE;
    if (rc == LY_OK) {
        char when[LY_TIME_BUFSZ];
        ly_time_format(as_of, when);
        printf(
            "{\"as_of\":\"%s\",\"lots_expired\":%lld,\"points_expired\":%lld,\"members\":%lld}\n",
            when, (long long)st.lots, (long long)st.points, (long long)st.members);
    } else {
        fprintf(stderr, "loyal expire: %s\n", err.message);
    }
    if (c)
        ly_store_release(s, c);
    ly_arena_release(&a);
    ly_store_close(s);
    return rc == LY_OK ? 0 : 1;
}
