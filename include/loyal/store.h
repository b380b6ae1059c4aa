/* The store: Loyal's persistence, spoken in the domain's words (a member, a
 * key, a program), with two backends behind one interface: SQLite (a file
 * path) and PostgreSQL (a postgres:// or postgresql:// URL).
 *
 * A ly_store is an opened database with a pool of connections; it is
 * thread-safe. A ly_conn is one connection, used by one thread at a time
 * between ly_store_acquire and ly_store_release. Every statement is prepared
 * once per connection.
 *
 * Strings a read returns are allocated in the arena the caller passes and
 * live as long as it. Times are integer milliseconds since the Unix epoch,
 * UTC. Identifier values (email, phone, card) arrive already normalised. */
#ifndef LOYAL_STORE_H
#define LOYAL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "loyal/arena.h"
#include "loyal/error.h"

typedef struct ly_store ly_store;
typedef struct ly_conn ly_conn;

/* The program every store holds from its first migration; later programs get
 * higher ids. */
#define LY_DEFAULT_PROGRAM 1

typedef struct ly_program {
    int64_t id;
    const char *name;
    const char *currency; /* ISO 4217, upper case */
    const char *timezone; /* IANA name */
    int64_t point_value_minor;
    const char *settings; /* JSON object text with every other setting, never NULL */
    int64_t created_at, updated_at;
} ly_program;

typedef struct ly_member {
    int64_t id;
    int64_t program_id;
    const char *external_id; /* NULL when absent, likewise below */
    const char *email;
    const char *phone;
    const char *name;
    const char *birthdate;  /* YYYY-MM-DD */
    const char *attributes; /* JSON object text, never NULL on read ("{}") */
    const char *status;     /* "active", "suspended", "erased" */
    int64_t created_at, updated_at;
    const char **cards; /* ncards card numbers, oldest first */
    size_t ncards;
} ly_member;

typedef struct ly_key {
    const char *id; /* public part of the key, unique across the store */
    int64_t program_id;
    const char *scope; /* "admin", "pos", "partner", "read" */
    const char *name;  /* a label for people; may be NULL */
    unsigned char hash[32];
    int64_t created_at;
    int64_t revoked_at; /* 0 while active */
} ly_key;

typedef struct ly_table_count {
    const char *table;
    int64_t rows;
} ly_table_count;

/* Opening and migrations. ly_store_open does not migrate. pool_size is the
 * number of connections (at least 1). */
int ly_store_open(const char *url, int pool_size, ly_store **out, ly_error *err);
void ly_store_close(ly_store *s);
const char *ly_store_backend(const ly_store *s); /* "sqlite" or "postgres" */
/* Applies every pending migration, each in its own transaction; *applied
 * (may be NULL) receives how many ran. Safe to run concurrently from two
 * processes on PostgreSQL (advisory lock). */
int ly_store_migrate(ly_store *s, int *applied, ly_error *err);
/* Highest applied migration version, 0 for an empty database. */
int ly_store_schema_version(ly_store *s, int *version, ly_error *err);
/* Highest migration version this binary knows. */
int ly_store_latest_version(const ly_store *s);

/* Connections. acquire blocks until one is free; returns NULL (err set) only
 * when the store cannot give a working connection. A connection released
 * inside an open transaction is rolled back. */
ly_conn *ly_store_acquire(ly_store *s, ly_error *err);
void ly_store_release(ly_store *s, ly_conn *c);

/* Transactions. begin_write takes the write lock at once on SQLite (BEGIN
 * IMMEDIATE); begin_read gives a consistent snapshot. LY_ERETRY means a
 * transient failure (busy, serialization failure, deadlock): retry the whole
 * transaction. */
int ly_store_begin_write(ly_conn *c, ly_error *err);
int ly_store_begin_read(ly_conn *c, ly_error *err);
int ly_store_commit(ly_conn *c, ly_error *err);
void ly_store_rollback(ly_conn *c);
/* 0 outside a transaction, 1 inside a read one, 2 inside a write one. */
int ly_store_in_transaction(const ly_conn *c);

/* Program. */
int ly_store_program_get(ly_conn *c, ly_arena *a, int64_t program_id, ly_program *out,
                         ly_error *err);
/* Replaces name, currency, timezone, point_value_minor, settings, updated_at. */
int ly_store_program_put(ly_conn *c, const ly_program *p, ly_error *err);

/* Members. insert sets m->id. A uniqueness violation is LY_ECONFLICT with
 * err->field naming "external_id", "email", "phone" or "card". */
int ly_store_member_insert(ly_conn *c, ly_member *m, ly_error *err);
int ly_store_member_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, ly_member *out,
                        ly_error *err);
/* by is "external_id", "email", "phone" or "card"; LY_ENOTFOUND when none. */
int ly_store_member_find(ly_conn *c, ly_arena *a, int64_t program_id, const char *by,
                         const char *value, ly_member *out, ly_error *err);
/* Replaces external_id, email, phone, name, birthdate, attributes, status,
 * updated_at of member m->id (cards are untouched). LY_ENOTFOUND, LY_ECONFLICT. */
int ly_store_member_update(ly_conn *c, const ly_member *m, ly_error *err);
/* Members with id > after_id in ascending id order, at most limit. */
int ly_store_member_list(ly_conn *c, ly_arena *a, int64_t program_id, int64_t after_id, int limit,
                         ly_member **out, size_t *n, ly_error *err);
/* LY_ECONFLICT (field "card") when the card is already attached to any
 * member of the program. */
int ly_store_card_attach(ly_conn *c, int64_t program_id, int64_t member_id, const char *card,
                         int64_t now, ly_error *err);

/* API keys. */
int ly_store_key_insert(ly_conn *c, const ly_key *k, ly_error *err);
/* By public id, whatever its program; LY_ENOTFOUND when none. */
int ly_store_key_get(ly_conn *c, ly_arena *a, const char *id, ly_key *out, ly_error *err);
/* Every key of a program, active and revoked, oldest first. */
int ly_store_key_list(ly_conn *c, ly_arena *a, int64_t program_id, ly_key **out, size_t *n,
                      ly_error *err);
/* Sets revoked_at if not yet revoked; LY_ENOTFOUND when the program has no
 * such key. */
int ly_store_key_revoke(ly_conn *c, int64_t program_id, const char *id, int64_t now, ly_error *err);

/* Row count of every table of the schema, in a fixed order (for `loyal status`
 * and for tests that check nothing was written). */
int ly_store_table_counts(ly_conn *c, ly_arena *a, ly_table_count **out, size_t *n, ly_error *err);

#endif
