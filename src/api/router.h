/* The route table and its matcher: a path like /v1/members/{id}/cards is
 * split into segments; "{name}" segments capture. Matching is a linear scan
 * of a small static table (a few dozen rows), which beats a trie at this
 * size. Pure and thread-safe. */
#ifndef LOYAL_API_ROUTER_H
#define LOYAL_API_ROUTER_H

#include <stddef.h>

#define LY_ROUTE_MAX_PARAMS 4
#define LY_ROUTE_PARAM_MAX  128

struct ly_req;
struct ly_resp;
typedef int (*ly_handler)(struct ly_req *r);

typedef struct ly_route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/v1/members/{id}" */
    ly_handler handler;
    const char *scope; /* least scope needed, NULL for public routes */
    const char *summary;
    const char *body_schema; /* name of the request schema in openapi, or NULL */
    unsigned flags;          /* LY_ROUTE_* */
    /* For /openapi.json: the status of a successful answer (NULL: "200"),
     * its schema (or NULL), and the query parameters the route reads,
     * space-separated (or NULL). */
    const char *status;
    const char *answer;
    const char *query;
} ly_route;

/* A POST that writes nothing (a simulation): no Idempotency-Key, no writer. */
#define LY_ROUTE_WRITES_NOTHING 1u
/* The answer holds a secret shown once ("key"): a replay under the same
 * Idempotency-Key gives the answer with the secret as null, which is all
 * that is kept. */
#define LY_ROUTE_SECRET_ANSWER 2u
/* The body is an event (LY_ROUTE_EVENT), or a batch of them under "events"
 * (LY_ROUTE_EVENT_BATCH): their canonical forms can be worked out before
 * the write is queued (ly__prepare). */
#define LY_ROUTE_EVENT       4u
#define LY_ROUTE_EVENT_BATCH 8u

typedef struct ly_route_match {
    int index;      /* row of the table, -1 when nothing matched */
    int path_known; /* the path matched some row, whatever the method */
    size_t nparams;
    char params[LY_ROUTE_MAX_PARAMS][LY_ROUTE_PARAM_MAX];
    char allow[64]; /* when the method is not allowed: those that are, "GET, POST" */
} ly_route_match;

/* Matches method and path (without query string) against table[0..n). A
 * parameter segment longer than LY_ROUTE_PARAM_MAX - 1 does not match. */
void ly_route_find(const ly_route *table, size_t n, const char *method, const char *path,
                   ly_route_match *m);

#endif
