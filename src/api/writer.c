/* Group commit for SQLite: one thread owns the write connection and runs
 * queued write requests together in one transaction, each in a savepoint of
 * its own, so that one fsync makes many requests durable. A request's
 * connection is suspended while it waits and resumed once its group has
 * committed, so the answer is sent only after it is durable and no worker
 * thread is held meanwhile. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"

#define GROUP_MAX     1024
#define BEGIN_RETRIES 50

struct ly_writer {
    ly_server *srv;
    ly_conn *db;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ly_req *head, *tail; /* the queue, linked through ly_req.next */
    int stop;
};

void ly__writer_submit(ly_writer *w, ly_req *r)
{
    r->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = r;
    else
        w->head = r;
    w->tail = r;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static int begin(ly_writer *w, ly_error *err)
{
    int rc = LY_ERETRY;
    for (int i = 0; i < BEGIN_RETRIES && rc == LY_ERETRY; i++) {
        rc = ly_store_begin_write(w->db, err);
        if (rc == LY_ERETRY) {
            struct timespec ts = {0, 2000000}; /* another process holds the lock */
            nanosleep(&ts, NULL);
        }
    }
    return rc;
}

/* Runs one request of the group inside its savepoint; a refusal undoes
 * what it did and leaves the others be. */
static void run_one(ly_writer *w, ly_req *r)
{
    ly_error err;
    ly_error_clear(&err);
    r->db = w->db;
    if (ly_store_savepoint(w->db, &err) != LY_OK) {
        ly__reply_error(r, &err);
    } else {
        ly__run_handler(r);
        if (r->status >= 400)
            ly_store_savepoint_rollback(w->db);
        else if (ly_store_savepoint_release(w->db, &err) != LY_OK)
            ly__reply_error(r, &err);
    }
    r->db = NULL;
}

/* Runs one request of the group without a savepoint, which costs SQLite a
 * copy of every page the request changes; 1 when the request was refused
 * after writing, so that only a savepoint of its own could undo it alone. */
static int run_bare(ly_writer *w, ly_req *r)
{
    int64_t before = ly_store_changes(w->db);
    r->db = w->db;
    r->bare = 1;
    ly__run_handler(r);
    r->bare = 0;
    r->db = NULL;
    return r->status >= 400 && ly_store_changes(w->db) != before;
}

/* Forgets an answer made in a transaction that was rolled back. */
static void forget_answer(ly_req *r)
{
    free(r->resp);
    r->resp = NULL;
    r->resp_len = 0;
    r->status = 0;
    r->content_type = NULL;
    r->replayed = 0;
    r->retry = 0;
}

/* Runs requests from first on in one transaction, and commits it: all of
 * them, or up to the first that fails in the store (5xx), whose followers
 * are then left in *rest. SQLite may have rolled back the whole transaction
 * by itself (SQLITE_FULL, SQLITE_IOERR), and later statements would run
 * outside any, each committed on its own while its answer says it failed.
 * So the transaction ends there: the requests run in it so far are undone
 * and fail, and the rest start a new one.
 *
 * Without isolate, requests run without savepoints. *redo is then set, and
 * nothing kept, when one was refused after writing: the transaction must
 * run again with each request in a savepoint of its own. */
static int run_txn(ly_writer *w, ly_req *first, int isolate, ly_req **rest, int *redo,
                   ly_error *err)
{
    size_t n = 0;
    *rest = NULL;
    *redo = 0;
    int rc = begin(w, err);
    for (ly_req *r = first; rc == LY_OK && r; r = r->next, n++) {
        if (isolate) {
            run_one(w, r);
        } else if (run_bare(w, r)) {
            ly_store_rollback(w->db);
            for (ly_req *q = first; q != r->next; q = q->next)
                forget_answer(q);
            *redo = 1;
            return LY_OK;
        }
        if (r->status >= 500) {
            *rest = r->next;
            r->next = NULL;
            rc = ly_error_set(err, LY_ESTORE, NULL, NULL,
                              "not written: another write of its transaction failed in the "
                              "store and this one was undone with it; retry it");
        }
    }
    if (rc == LY_OK)
        rc = ly_store_commit(w->db, err);
    if (rc != LY_OK)
        ly_store_rollback(w->db);
    if (rc == LY_OK)
        ly__metrics_group(w->srv->metrics, n);
    return rc;
}

/* Runs a group in as many transactions as it takes (see run_txn), then
 * lets every request's answer go. Requests first run without savepoints:
 * most succeed, and most refusals come before any write. */
static void run_group(ly_writer *w, ly_req *group)
{
    int isolate = ly_store_changes(w->db) < 0, redo;
    for (ly_req *first = group, *rest; first; first = rest) {
        ly_error err;
        ly_error_clear(&err);
        int rc = run_txn(w, first, isolate, &rest, &redo, &err);
        if (redo) {
            ly__metrics_group_redo(w->srv->metrics);
            isolate = 1;
            rc = run_txn(w, first, isolate, &rest, &redo, &err);
        }
        for (ly_req *r = first, *next; r; r = next) {
            next = r->next;
            /* Nothing of the transaction is durable: every request of it fails. */
            if (rc != LY_OK && (r->status < 400 || !r->resp))
                ly__reply_error(r, &err);
            ly__writer_done(r);
        }
    }
}

static void *writer_main(void *arg)
{
    ly_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->head)
            break;
        /* Take what is queued, up to a group's worth. */
        ly_req *group = w->head, *last = group;
        for (int n = 1; n < GROUP_MAX && last->next; n++)
            last = last->next;
        w->head = last->next;
        if (!w->head)
            w->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&w->mu);
        run_group(w, group);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int ly__writer_start(ly_server *s, ly_writer **out, ly_error *err)
{
    ly_writer *w = calloc(1, sizeof *w);
    if (!w)
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    w->srv = s;
    w->db = ly_store_acquire(s->store, err);
    if (!w->db) {
        free(w);
        return err ? err->rc : LY_ESTORE;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        ly_store_release(s->store, w->db);
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "cannot start the writer thread");
    }
    *out = w;
    return LY_OK;
}

void ly__writer_stop(ly_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    ly_store_release(w->srv->store, w->db);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
