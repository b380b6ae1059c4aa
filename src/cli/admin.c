/* `loyal migrate`, `loyal keys` and `loyal status`: operations on the
 * database without a server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "loyal/engine.h"
#include "loyal/timeutil.h"

#define DB_OPT                                                                                     \
    {                                                                                              \
        "db", "PATH|URL", "SQLite file or postgres:// URL (env LOYAL_DB)", NULL                    \
    }

int cli_migrate(int argc, char **argv)
{
    cli_opt opts[] = {DB_OPT, {NULL, NULL, NULL, NULL}};
    int rc = cli_parse("migrate", "[--db PATH|URL]",
                       "Applies every pending schema migration. Running it again does nothing.",
                       argc, argv, opts, NULL, 0, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *db = cli_db(opts);
    ly_store *s;
    ly_error err;
    ly_error_clear(&err);
    if (ly_store_open(db, 1, &s, &err) != LY_OK) {
        fprintf(stderr, "loyal migrate: cannot open %s: %s\n", db, err.message);
        return 1;
    }
    int applied = 0, version = 0;
    rc = ly_store_migrate(s, &applied, &err);
    if (rc == LY_OK)
        rc = ly_store_schema_version(s, &version, &err);
    if (rc == LY_OK)
        printf("%s: %d migration%s applied, schema version %d\n", db, applied,
               applied == 1 ? "" : "s", version);
    else
        fprintf(stderr, "loyal migrate: %s\n", err.message);
    ly_store_close(s);
    return rc == LY_OK ? 0 : 1;
}

static int keys_create(ly_conn *c, ly_arena *a, const cli_opt *opts, ly_error *err)
{
    const char *scope = cli_get(opts, "scope");
    char key[LY_KEY_MAX];
    ly_key k;
    int rc = ly_apikey_create(c, a, LY_DEFAULT_PROGRAM, scope ? scope : "", cli_get(opts, "name"),
                              key, &k, err);
    if (rc == LY_OK)
        printf("%s\n", key);
    return rc;
}

static int keys_list(ly_conn *c, ly_arena *a, ly_error *err)
{
    ly_key *keys;
    size_t n;
    int rc = ly_apikey_list(c, a, LY_DEFAULT_PROGRAM, &keys, &n, err);
    if (rc != LY_OK)
        return rc;
    printf("%-17s %-8s %-24s %-24s %s\n", "ID", "SCOPE", "CREATED", "REVOKED", "NAME");
    for (size_t i = 0; i < n; i++) {
        char created[LY_TIME_BUFSZ], revoked[LY_TIME_BUFSZ] = "-";
        ly_time_format(keys[i].created_at, created);
        if (keys[i].revoked_at)
            ly_time_format(keys[i].revoked_at, revoked);
        printf("key_%-13s %-8s %-24s %-24s %s\n", keys[i].id, keys[i].scope, created, revoked,
               keys[i].name ? keys[i].name : "");
    }
    return LY_OK;
}

int cli_keys(int argc, char **argv)
{
    cli_opt opts[] = {DB_OPT,
                      {"scope", "SCOPE", "create: admin, pos, partner or read", NULL},
                      {"name", "NAME", "create: a label for people, e.g. \"till 3\"", NULL},
                      {NULL, NULL, NULL, NULL}};
    const char *pos[2];
    int npos = 0;
    int rc = cli_parse("keys", "create --scope SCOPE [--name NAME] | list | revoke KEY_ID [--db X]",
                       "Manages API keys of the program. `create` prints the new key alone on\n"
                       "one line: it is shown only this once.",
                       argc, argv, opts, pos, 2, &npos);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *action = npos ? pos[0] : NULL;
    int want = action && strcmp(action, "revoke") == 0 ? 2 : 1;
    if (!action ||
        (strcmp(action, "create") && strcmp(action, "list") && strcmp(action, "revoke"))) {
        fprintf(stderr, "loyal keys: say create, list or revoke (see loyal keys --help)\n");
        return CLI_USAGE;
    }
    if (npos != want) {
        fprintf(stderr, "loyal keys %s: %s\n", action,
                want == 2 ? "give the id of the key to revoke" : "takes no further argument");
        return CLI_USAGE;
    }
    if (strcmp(action, "create") == 0 && !cli_get(opts, "scope")) {
        fprintf(stderr, "loyal keys create: --scope is needed (admin, pos, partner or read)\n");
        return CLI_USAGE;
    }
    ly_store *s;
    if (cli_open(cli_db(opts), 1, &s))
        return 1;
    ly_error err;
    ly_error_clear(&err);
    ly_arena a;
    ly_arena_init(&a, 4096);
    ly_conn *c = ly_store_acquire(s, &err);
    rc = c ? LY_OK : LY_ESTORE;
    if (c && strcmp(action, "create") == 0)
        rc = keys_create(c, &a, opts, &err);
    else if (c && strcmp(action, "list") == 0)
        rc = keys_list(c, &a, &err);
    else if (c) {
        ly_key k;
        rc = ly_apikey_revoke(c, &a, LY_DEFAULT_PROGRAM, pos[1], &k, &err);
        if (rc == LY_OK)
            printf("key_%s revoked\n", k.id);
    }
    if (rc != LY_OK)
        fprintf(stderr, "loyal keys %s: %s\n", action, err.message);
    if (c)
        ly_store_release(s, c);
    ly_arena_release(&a);
    ly_store_close(s);
    return rc == LY_OK ? 0 : (rc == LY_EINVAL ? CLI_USAGE : 1);
}

int cli_status(int argc, char **argv)
{
    cli_opt opts[] = {DB_OPT, {NULL, NULL, NULL, NULL}};
    int rc = cli_parse("status", "[--db PATH|URL]",
                       "Prints, as JSON, the backend, the schema version and the row count of\n"
                       "every table.",
                       argc, argv, opts, NULL, 0, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *db = cli_db(opts);
    ly_store *s;
    ly_error err;
    ly_error_clear(&err);
    if (ly_store_open(db, 1, &s, &err) != LY_OK) {
        fprintf(stderr, "loyal status: cannot open %s: %s\n", db, err.message);
        return 1;
    }
    int version = 0;
    ly_arena a;
    ly_arena_init(&a, 4096);
    ly_table_count *counts = NULL;
    size_t n = 0;
    ly_conn *c = NULL;
    rc = ly_store_schema_version(s, &version, &err);
    if (rc == LY_OK && version > 0) {
        c = ly_store_acquire(s, &err);
        rc = c ? ly_store_table_counts(c, &a, &counts, &n, &err) : LY_ESTORE;
    }
    if (rc == LY_OK) {
        json_t *tables = json_object();
        for (size_t i = 0; i < n; i++)
            json_object_set_new(tables, counts[i].table, json_integer(counts[i].rows));
        json_t *out =
            json_pack("{s:s, s:i, s:i, s:o}", "backend", ly_store_backend(s), "schema_version",
                      version, "latest_version", ly_store_latest_version(s), "tables", tables);
        char *text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(out);
    } else {
        fprintf(stderr, "loyal status: %s\n", err.message);
    }
    if (c)
        ly_store_release(s, c);
    ly_arena_release(&a);
    ly_store_close(s);
    return rc == LY_OK ? 0 : 1;
}
