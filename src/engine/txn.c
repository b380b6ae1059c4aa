/* Transaction wrapper with bounded retry and jittered backoff. */
#include "engine/txn.h"

#include <time.h>

#define TXN_ATTEMPTS 8

static void backoff(int attempt)
{
    /* 1, 2, 4 … ms, with the low bits of the clock as cheap jitter. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long us = (1000L << (attempt < 6 ? attempt : 6)) + (now.tv_nsec / 1000) % 1000;
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* mode: 1 write and commit, 0 read and commit, -1 read and roll back. */
static int run(ly_conn *c, int mode, ly__txn_fn fn, void *ctx, ly_error *err)
{
    int rc = LY_OK, outer = ly_store_in_transaction(c), write = mode == 1;
    /* Inside the caller's transaction the operation joins it; the caller
     * commits and retries. */
    if (outer == 2 || (outer == 1 && !write))
        return fn(c, ctx, err);
    if (outer)
        return ly_error_set(err, LY_EINTERNAL, NULL, NULL,
                            "a write cannot run inside a read transaction");
    for (int attempt = 0; attempt < TXN_ATTEMPTS; attempt++) {
        rc = write ? ly_store_begin_write(c, err) : ly_store_begin_read(c, err);
        if (rc == LY_OK) {
            rc = fn(c, ctx, err);
            if (rc == LY_OK && mode >= 0)
                rc = ly_store_commit(c, err);
            if (rc != LY_OK || mode < 0)
                ly_store_rollback(c);
        }
        if (rc != LY_ERETRY)
            return rc;
        backoff(attempt);
    }
    return ly_error_set(err, LY_ESTORE, "storage_busy", NULL,
                        "the store stayed busy after %d attempts; retry later", TXN_ATTEMPTS);
}

int ly__txn_run(ly_conn *c, int write, ly__txn_fn fn, void *ctx, ly_error *err)
{
    return run(c, write ? 1 : 0, fn, ctx, err);
}

int ly__txn_dry_run(ly_conn *c, ly__txn_fn fn, void *ctx, ly_error *err)
{
    return run(c, -1, fn, ctx, err);
}
