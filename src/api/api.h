/* Internals shared by the server and the handlers: the per-request state and
 * the helpers every handler uses to read its input and write its answer. */
#ifndef LOYAL_API_API_H
#define LOYAL_API_API_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdint.h>

#include "api/router.h"
#include "loyal/arena.h"
#include "loyal/error.h"
#include "loyal/jsonw.h"
#include "loyal/server.h"
#include "loyal/store.h"

typedef struct ly_metrics ly_metrics;
typedef struct ly_writer ly_writer;

struct ly_server {
    struct MHD_Daemon *mhd;
    ly_store *store;
    ly_server_config cfg;
    int port;
    ly_metrics *metrics;
    char *openapi; /* the OpenAPI document, built once */
    size_t openapi_len;
    long in_flight;    /* requests begun and not yet completed (atomic) */
    ly_writer *writer; /* SQLite: the group-commit writer; NULL otherwise */
};

/* A query parameter, decoded. value is NULL for a name given without '='. */
typedef struct ly_param {
    const char *name;
    size_t name_len; /* decoded, so a name may hold a NUL */
    const char *value;
} ly_param;

typedef struct ly_req {
    ly_server *srv;
    struct MHD_Connection *mc; /* NULL for a request given to ly__dispatch by other means */
    ly_arena arena;
    const char *method, *path;
    uint64_t start_ns;
    /* The head, as received: the headers Loyal reads (NULL when absent) and
     * the query parameters, in the order sent. */
    const char *authorization;
    const char *idempotency_key;
    const ly_param *query;
    size_t nquery;
    ly_route_match match;
    const ly_route *route;
    /* Body as received. */
    char *body;
    size_t body_len, body_cap;
    int too_large;
    /* Worked out before a write is queued (ly__prepare), so that the
     * writer's thread spends its time in the store: the body parsed (NULL
     * when not, or when it is not a JSON object: the handler then parses it
     * and answers the error) and, on routes taking events, the canonical
     * text and hash of each of the nevents events (0: not worked out). */
    json_t *json;
    size_t nevents;
    const char **ev_text, **ev_hash;
    /* The caller, once authenticated. */
    int64_t program_id;
    const char *key_id;
    const char *scope;
    ly_conn *db;
    /* The answer. */
    int status;
    char *resp; /* malloc'd, handed to libmicrohttpd */
    size_t resp_len;
    const char *content_type;
    const char *allow;
    int replayed;        /* the answer is a stored one (Idempotent-Replayed) */
    int retry;           /* the store asked for the transaction to be run again */
    int waiting;         /* queued to the writer, its connection suspended */
    int bare;            /* run by the writer without a savepoint: see writer.c */
    struct ly_req *next; /* in the writer's queue */
} ly_req;

/* The route table and its length. */
extern const ly_route ly__routes[];
extern const size_t ly__nroutes;

/* Answers: each sets the response and returns 0. reply_json steals body. */
int ly__reply_json(ly_req *r, int status, json_t *body);
/* Finishes w and answers with it (503 when it ran out of memory). */
int ly__reply_jw(ly_req *r, int status, ly_jw *w);
int ly__reply_text(ly_req *r, int status, const char *content_type, const char *text, size_t len);
int ly__reply_error(ly_req *r, const ly_error *err);
int ly__fail(ly_req *r, int rc, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Writes msg as a JSON string, any ill-formed UTF-8 replaced. */
void ly__jw_message(ly_jw *w, const char *msg);
/* Hex BLAKE2b-256 of data, in the request's arena (NULL: out of memory). */
const char *ly__hash_hex(ly_req *r, const void *data, size_t len);

/* Inputs. */
const char *ly__query(ly_req *r, const char *name);
/* Refuses (400 invalid_parameter) any query parameter not in allowed (NULL-ended). */
int ly__check_query(ly_req *r, const char *const *allowed);
/* Parses the body as a JSON object and checks its fields; on failure the
 * error reply is already set and a negative code returned. */
int ly__body(ly_req *r, const void *fields, json_t **out);
/* The request's store connection, acquired on first use; NULL (error reply
 * set) when the store cannot give one. */
ly_conn *ly__db(ly_req *r);
/* The most events one POST /v1/events/batch holds. */
#define LY_BATCH_MAX 1000

/* What a write's handler can have worked out before it is queued to the
 * writer: see ly_req.json and ly_req.ev_text. Needs no store; on any
 * failure it leaves the work to the handler. */
void ly__prepare(ly_req *r);
/* The canonical text (compact, keys sorted) of event i of the request's
 * body, v, and its hex hash, from ly__prepare when it worked them out;
 * returns the hash, NULL when out of memory. */
const char *ly__event_canonical(ly_req *r, size_t i, const json_t *v, const char **text);
/* Pagination: ?limit= (1..100, default 50) and ?cursor=. */
int ly__page(ly_req *r, int *limit, const char **cursor);

/* The server's state without a socket: metrics, the OpenAPI document and,
 * with_writer, the SQLite writer. ly_server_start adds libmicrohttpd to it;
 * ly_server_stop frees either. */
int ly__server_new(ly_store *store, const ly_server_config *cfg, int with_writer, ly_server **out,
                   ly_error *err);

/* A request's life once its head and body are in, the same for libmicrohttpd
 * and for callers without a socket (the HTTP fuzzer):
 *   r = ly__req_new(s, method, path);  fill in the head, and the body
 *                       (malloc'd, NUL-ended, r's to free) or too_large
 *   ly__dispatch(r);    routes, authenticates, runs the handler; a write on
 *                       the SQLite writer is queued instead, with r->waiting
 *                       set until the writer is done (read it atomically)
 *   ly__req_release_db(r);  the answer (status, resp) is final
 *   ly__req_free(r);
 * req_new returns NULL when out of memory; method and path must outlive r. */
ly_req *ly__req_new(ly_server *s, const char *method, const char *path);
void ly__dispatch(ly_req *r);
/* Gives the store connection back, a read transaction still open rolled back. */
void ly__req_release_db(ly_req *r);
void ly__req_free(ly_req *r);

/* Runs the route's handler, under its Idempotency-Key when it has one. */
void ly__run_handler(ly_req *r);

/* The SQLite writer (writer.c). submit queues a request whose connection
 * the caller has suspended; the writer calls ly__writer_done once the
 * request's group has committed (or failed), which resumes the connection
 * and clears r->waiting. */
int ly__writer_start(ly_server *s, ly_writer **out, ly_error *err);
void ly__writer_stop(ly_writer *w);
void ly__writer_submit(ly_writer *w, ly_req *r);
void ly__writer_done(ly_req *r);

/* Metrics. */
ly_metrics *ly__metrics_new(size_t nroutes);
void ly__metrics_free(ly_metrics *m);
void ly__metrics_observe(ly_metrics *m, int route, int status, uint64_t ns);
void ly__metrics_store_error(ly_metrics *m);
/* A group of n write requests committed together. */
void ly__metrics_group(ly_metrics *m, size_t n);
/* A writer transaction run again, each request in a savepoint of its own. */
void ly__metrics_group_redo(ly_metrics *m);
char *ly__metrics_render(ly_metrics *m, long in_flight, size_t *len);

/* The OpenAPI document for the route table (malloc'd). */
char *ly__openapi_build(size_t *len);

#endif
