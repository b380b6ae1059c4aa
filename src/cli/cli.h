/* The `loyal` command: shared option parsing and store opening for its
 * subcommands. Each subcommand returns the process exit status: 0 success,
 * 1 failure, 2 bad usage. */
#ifndef LOYAL_CLI_H
#define LOYAL_CLI_H

#include "loyal/store.h"

#define CLI_USAGE 2

typedef struct cli_opt {
    const char *name; /* long name without "--" */
    const char *arg;  /* metavariable when the option takes a value, NULL for a flag */
    const char *help;
    const char *value; /* parsed: the value, or "1" for a given flag, NULL when absent */
} cli_opt;

typedef struct cli_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_cmd;

/* Parses argv (argv[0] is the subcommand's name) into opts, which ends with
 * a {NULL} row; positional arguments are gathered into pos (at most maxpos).
 * Prints the usage and returns -1 for --help (exit 0), or prints one line and
 * returns CLI_USAGE on a mistake; 0 otherwise. */
int cli_parse(const char *cmd, const char *synopsis, const char *about, int argc, char **argv,
              cli_opt *opts, const char **pos, int maxpos, int *npos);
const char *cli_get(const cli_opt *opts, const char *name);
/* --db, else $LOYAL_DB, else ./loyal.db */
const char *cli_db(const cli_opt *opts);
/* Opens and migrates the store; prints why not and returns 1 on failure. */
int cli_open(const char *db, int pool, ly_store **out);

int cli_serve(int argc, char **argv);
int cli_demo(int argc, char **argv);
int cli_migrate(int argc, char **argv);
int cli_keys(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_verify(int argc, char **argv);
int cli_expire(int argc, char **argv);
int cli_birthdays(int argc, char **argv);
int cli_version(int argc, char **argv);

#endif
