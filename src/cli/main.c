/* Entry point of `loyal`: the table of subcommands and the shared option
 * parser. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "loyal/keys.h"

static const cli_cmd commands[] = {
    {"serve", cli_serve, "run the HTTP API server"},
    {"demo", cli_demo, "create a demo program in ./loyal-demo.db and serve it"},
    {"migrate", cli_migrate, "bring the database schema up to date"},
    {"keys", cli_keys, "create, list and revoke API keys"},
    {"verify", cli_verify, "check every invariant of the ledger"},
    {"expire", cli_expire, "run the points expiry job (--as-of)"},
    {"birthdays", cli_birthdays, "grant birthday rules to this week's birthdays (--as-of)"},
    {"status", cli_status, "show the database's backend, schema version and row counts"},
    {"version", cli_version, "print the version"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: loyal <command> [options]\n\n"
               "Loyal is a customer loyalty engine: members, points, rules, tiers and rewards\n"
               "behind an HTTP API, on SQLite or PostgreSQL.\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`loyal <command> --help` tells more about each.\n");
}

static int find_opt(cli_opt *opts, const char *name, size_t len)
{
    for (int i = 0; opts[i].name; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return i;
    return -1;
}

static void print_usage(const char *cmd, const char *synopsis, const char *about,
                        const cli_opt *opts)
{
    printf("usage: loyal %s %s\n\n%s\n", cmd, synopsis, about);
    if (opts[0].name)
        printf("\noptions:\n");
    for (int i = 0; opts[i].name; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].arg ? " " : "",
                 opts[i].arg ? opts[i].arg : "");
        printf("  %-24s %s\n", left, opts[i].help);
    }
    printf("  %-24s %s\n", "--help", "show this help");
}

int cli_parse(const char *cmd, const char *synopsis, const char *about, int argc, char **argv,
              cli_opt *opts, const char **pos, int maxpos, int *npos)
{
    int np = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_usage(cmd, synopsis, about, opts);
            return -1;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (np >= maxpos) {
                fprintf(stderr, "loyal %s: unexpected argument \"%s\" (see loyal %s --help)\n", cmd,
                        a, cmd);
                return CLI_USAGE;
            }
            pos[np++] = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        int o = find_opt(opts, name, eq ? (size_t)(eq - name) : strlen(name));
        if (o < 0) {
            fprintf(stderr, "loyal %s: unknown option %.*s (see loyal %s --help)\n", cmd,
                    eq ? (int)(eq - a) : (int)strlen(a), a, cmd);
            return CLI_USAGE;
        }
        if (!opts[o].arg) {
            if (eq) {
                fprintf(stderr, "loyal %s: --%s takes no value\n", cmd, opts[o].name);
                return CLI_USAGE;
            }
            opts[o].value = "1";
        } else if (eq) {
            opts[o].value = eq + 1;
        } else if (i + 1 < argc) {
            opts[o].value = argv[++i];
        } else {
            fprintf(stderr, "loyal %s: --%s needs a value (%s)\n", cmd, opts[o].name, opts[o].arg);
            return CLI_USAGE;
        }
    }
    if (npos)
        *npos = np;
    return 0;
}

const char *cli_get(const cli_opt *opts, const char *name)
{
    for (int i = 0; opts[i].name; i++)
        if (strcmp(opts[i].name, name) == 0)
            return opts[i].value;
    return NULL;
}

const char *cli_db(const cli_opt *opts)
{
    const char *db = cli_get(opts, "db");
    if (!db || !*db)
        db = getenv("LOYAL_DB");
    return db && *db ? db : "./loyal.db";
}

int cli_open(const char *db, int pool, ly_store **out)
{
    ly_error err;
    ly_error_clear(&err);
    int applied = 0;
    if (ly_store_open(db, pool, out, &err) != LY_OK) {
        fprintf(stderr, "loyal: cannot open %s: %s\n", db, err.message);
        return 1;
    }
    if (ly_store_migrate(*out, &applied, &err) != LY_OK) {
        fprintf(stderr, "loyal: cannot migrate %s: %s\n", db, err.message);
        ly_store_close(*out);
        *out = NULL;
        return 1;
    }
    return 0;
}

int cli_version(int argc, char **argv)
{
    cli_opt opts[] = {{NULL, NULL, NULL, NULL}};
    int rc =
        cli_parse("version", "", "Prints the version of loyal.", argc, argv, opts, NULL, 0, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    printf("loyal %s\n", LOYAL_VERSION);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cli_version(1, argv + 1);
    /* With TZ unset, glibc re-reads /etc/localtime each time libmicrohttpd
     * formats a Date header; Loyal itself never uses local time. */
    setenv("TZ", "UTC", 0);
    if (ly_keys_init() != 0) {
        fprintf(stderr, "loyal: cannot initialise libsodium\n");
        return 1;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "loyal: unknown command \"%s\" (see loyal --help)\n", argv[1]);
    return CLI_USAGE;
}
