/* Running one operation as one store transaction, retried a few times when
 * the store reports a transient conflict (SQLite busy, PostgreSQL
 * serialization failure or deadlock). Internal to the engine. */
#ifndef LOYAL_ENGINE_TXN_H
#define LOYAL_ENGINE_TXN_H

#include "loyal/store.h"

typedef int (*ly__txn_fn)(ly_conn *c, void *ctx, ly_error *err);

/* Runs fn inside a write (write = 1) or read transaction and commits; rolls
 * back on any error. fn must be safe to run again after a rollback. When the
 * connection is already inside a transaction that allows it, fn simply runs
 * in it, and committing is left to whoever opened it. */
int ly__txn_run(ly_conn *c, int write, ly__txn_fn fn, void *ctx, ly_error *err);
/* Runs fn in a read transaction that is always rolled back, retried like
 * ly__txn_run: what fn wrote is undone (a simulation). Inside the caller's
 * transaction fn simply runs in it. */
int ly__txn_dry_run(ly_conn *c, ly__txn_fn fn, void *ctx, ly_error *err);

#endif
