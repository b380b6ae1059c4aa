/* The schema migrations compiled into the binary, one table per dialect,
 * ascending by version and ending with a {0} row. */
#ifndef LOYAL_STORE_MIGRATIONS_H
#define LOYAL_STORE_MIGRATIONS_H

typedef struct ly_migration {
    int version;
    const char *name;
    const char *sql;
} ly_migration;

extern const ly_migration ly__migrations_sqlite[];
extern const ly_migration ly__migrations_postgres[];

#endif
