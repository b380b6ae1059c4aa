/* `loyal verify`, `loyal expire` and `loyal birthdays`: the ledger's check and
 * the scheduled jobs, from the command line. */
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

/* The jobs `serve` also runs on its schedule, run once from the command line:
 * the options and the store are the same, the work and its report differ. */
enum job { JOB_EXPIRE, JOB_BIRTHDAYS };

static int run_job(ly_conn *c, ly_arena *a, enum job job, int64_t as_of, char *out, size_t size,
                   ly_error *err)
{
    char when[LY_TIME_BUFSZ];
    ly_time_format(as_of, when);
    int rc;
    if (job == JOB_EXPIRE) {
        ly_expire_stats st;
        if ((rc = ly_expire_run(c, a, LY_DEFAULT_PROGRAM, as_of, &st, err)) == LY_OK)
            snprintf(out, size,
                     "{\"as_of\":\"%s\",\"lots_expired\":%lld,\"points_expired\":%lld,"
                     "\"members\":%lld}",
                     when, (long long)st.lots, (long long)st.points, (long long)st.members);
        return rc;
    }
    ly_birthday_stats st;
    if ((rc = ly_birthdays_run(c, a, LY_DEFAULT_PROGRAM, as_of, &st, err)) == LY_OK)
        snprintf(out, size, "{\"as_of\":\"%s\",\"members\":%lld,\"points\":%lld,\"credit\":%lld}",
                 when, (long long)st.members, (long long)st.points, (long long)st.credit);
    return rc;
}

static int job_main(enum job job, int argc, char **argv)
{
    const char *name = job == JOB_EXPIRE ? "expire" : "birthdays";
    cli_opt opts[] = {DB_OPT,
                      {"as-of", "TIME", "RFC 3339 time to run the job as of (default now)", NULL},
                      {NULL, NULL, NULL, NULL}};
    int rc = cli_parse(
        name, "[--db PATH|URL] [--as-of TIME]",
        job == JOB_EXPIRE
            ? "Runs the expiry job: lots past their date, and idle balances under an\n"
              "inactivity policy, go to the program's expired account. Running it\n"
              "twice expires nothing the second time. Prints what it did as JSON."
            : "Runs the birthday job: the program's birthday rules are granted to members\n"
              "whose birthday fell in the week up to --as-of, once per member and year.\n"
              "Prints what it did as JSON.",
        argc, argv, opts, NULL, 0, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    int64_t as_of = ly_time_now_ms();
    const char *t = cli_get(opts, "as-of");
    if (t && ly_time_parse(t, &as_of) != LY_OK) {
        fprintf(stderr, "loyal %s: --as-of must be an RFC 3339 time, not \"%s\"\n", name, t);
        return CLI_USAGE;
    }
    ly_store *s;
    if (cli_open(cli_db(opts), 1, &s))
        return 1;
    ly_error err;
    ly_error_clear(&err);
    ly_arena a;
    ly_arena_init(&a, 16384);
    char report[256];
    ly_conn *c = ly_store_acquire(s, &err);
    rc = c ? run_job(c, &a, job, as_of, report, sizeof report, &err) : LY_ESTORE;
    if (rc == LY_OK)
        printf("%s\n", report);
    else
        fprintf(stderr, "loyal %s: %s\n", name, err.message);
    if (c)
        ly_store_release(s, c);
    ly_arena_release(&a);
    ly_store_close(s);
    return rc == LY_OK ? 0 : 1;
}

int cli_expire(int argc, char **argv)
{
    return job_main(JOB_EXPIRE, argc, argv);
}

int cli_birthdays(int argc, char **argv)
{
    return job_main(JOB_BIRTHDAYS, argc, argv);
}
