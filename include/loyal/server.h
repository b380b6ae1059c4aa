/* The HTTP API server: libmicrohttpd with an epoll thread pool, a table of
 * routes, one arena per request, JSON in and out, an access log and
 * Prometheus metrics. Start returns once the socket listens; stop drains. */
#ifndef LOYAL_SERVER_H
#define LOYAL_SERVER_H

#include <stdio.h>

#include "loyal/error.h"
#include "loyal/store.h"

typedef struct ly_server ly_server;

typedef struct ly_server_config {
    const char *host;            /* numeric IPv4 or IPv6 address to bind */
    int port;                    /* 0 picks a free one */
    int threads;                 /* worker threads, >= 1 */
    FILE *access_log;            /* one JSON line per request; NULL for none */
    size_t max_body;             /* bytes; bodies beyond are refused with 413 */
    unsigned connection_timeout; /* seconds of idleness before a connection is closed */
} ly_server_config;

/* Does not take ownership of the store, which must outlive the server. */
int ly_server_start(ly_store *store, const ly_server_config *cfg, ly_server **out, ly_error *err);
/* The port actually bound. */
int ly_server_port(const ly_server *s);
/* Stops accepting connections, waits up to drain_ms for requests in flight
 * to finish, then stops every thread and frees the server. */
void ly_server_stop(ly_server *s, int drain_ms);

#endif
