/* Prometheus metrics: per route and status a request counter, per route a
 * latency histogram, and a count of store failures. Plain atomic counters in
 * arrays sized at start; rendering reads them without locks. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

#define NSTATUS 500 /* 100..599 */

static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                 0.05,   0.1,   0.25,   0.5,   1,    2.5};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

struct ly_metrics {
    size_t nroutes;     /* plus one row for requests that matched no route */
    uint64_t *requests; /* [row][status - 100] */
    uint64_t *hist;     /* [row][bucket], cumulative at render time; last is +Inf */
    uint64_t *sum_ns;   /* [row] */
    uint64_t store_errors;
    uint64_t groups, group_requests; /* commits of the SQLite writer, and what they held */
    uint64_t group_redos;            /* its transactions run again, a savepoint per request */
};

ly_metrics *ly__metrics_new(size_t nroutes)
{
    ly_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->nroutes = nroutes;
    size_t rows = nroutes + 1;
    m->requests = calloc(rows * NSTATUS, sizeof *m->requests);
    m->hist = calloc(rows * (NBUCKETS + 1), sizeof *m->hist);
    m->sum_ns = calloc(rows, sizeof *m->sum_ns);
    if (!m->requests || !m->hist || !m->sum_ns) {
        ly__metrics_free(m);
        return NULL;
    }
    return m;
}

void ly__metrics_free(ly_metrics *m)
{
    if (!m)
        return;
    free(m->requests);
    free(m->hist);
    free(m->sum_ns);
    free(m);
}

void ly__metrics_observe(ly_metrics *m, int route, int status, uint64_t ns)
{
    size_t row = route < 0 ? m->nroutes : (size_t)route;
    if (status < 100 || status > 599)
        status = 599;
    __atomic_add_fetch(&m->requests[row * NSTATUS + (size_t)(status - 100)], 1, __ATOMIC_RELAXED);
    size_t b = 0;
    /* Bucket bounds are compared in nanoseconds to keep floats off the hot path. */
    static const uint64_t bounds_ns[] = {500000,    1000000,   2500000,    5000000,
                                         10000000,  25000000,  50000000,   100000000,
                                         250000000, 500000000, 1000000000, 2500000000u};
    while (b < NBUCKETS && ns > bounds_ns[b])
        b++;
    __atomic_add_fetch(&m->hist[row * (NBUCKETS + 1) + b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&m->sum_ns[row], ns, __ATOMIC_RELAXED);
}

void ly__metrics_group(ly_metrics *m, size_t n)
{
    __atomic_add_fetch(&m->groups, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&m->group_requests, (uint64_t)n, __ATOMIC_RELAXED);
}

void ly__metrics_group_redo(ly_metrics *m)
{
    __atomic_add_fetch(&m->group_redos, 1, __ATOMIC_RELAXED);
}

void ly__metrics_store_error(ly_metrics *m)
{
    __atomic_add_fetch(&m->store_errors, 1, __ATOMIC_RELAXED);
}

typedef struct buf {
    char *p;
    size_t len, cap;
    int failed;
} buf;

static void bprintf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static void route_labels(const ly_metrics *m, size_t row, const char **route, const char **method)
{
    if (row == m->nroutes) {
        *route = "unmatched";
        *method = "";
    } else {
        *route = ly__routes[row].pattern;
        *method = ly__routes[row].method;
    }
}

char *ly__metrics_render(ly_metrics *m, long in_flight, size_t *len)
{
    buf b = {malloc(16384), 0, 16384, 0};
    if (!b.p)
        return NULL;
    bprintf(&b, "# HELP loyal_http_requests_total HTTP requests answered, by route and status.\n"
                "# TYPE loyal_http_requests_total counter\n");
    for (size_t row = 0; row <= m->nroutes; row++) {
        const char *route, *method;
        route_labels(m, row, &route, &method);
        for (int s = 0; s < NSTATUS; s++) {
            uint64_t v = __atomic_load_n(&m->requests[row * NSTATUS + (size_t)s], __ATOMIC_RELAXED);
            if (v)
                bprintf(&b,
                        "loyal_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} "
                        "%llu\n",
                        route, method, s + 100, (unsigned long long)v);
        }
    }
    bprintf(&b, "# HELP loyal_http_request_duration_seconds Time from request to answer.\n"
                "# TYPE loyal_http_request_duration_seconds histogram\n");
    for (size_t row = 0; row <= m->nroutes; row++) {
        const char *route, *method;
        route_labels(m, row, &route, &method);
        uint64_t cum = 0;
        for (size_t i = 0; i <= NBUCKETS; i++)
            cum += __atomic_load_n(&m->hist[row * (NBUCKETS + 1) + i], __ATOMIC_RELAXED);
        if (!cum)
            continue;
        cum = 0;
        for (size_t i = 0; i <= NBUCKETS; i++) {
            cum += __atomic_load_n(&m->hist[row * (NBUCKETS + 1) + i], __ATOMIC_RELAXED);
            if (i < NBUCKETS)
                bprintf(&b,
                        "loyal_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\","
                        "le=\"%g\"} %llu\n",
                        route, method, buckets[i], (unsigned long long)cum);
            else
                bprintf(&b,
                        "loyal_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\","
                        "le=\"+Inf\"} %llu\n",
                        route, method, (unsigned long long)cum);
        }
        uint64_t sum = __atomic_load_n(&m->sum_ns[row], __ATOMIC_RELAXED);
        bprintf(&b,
                "loyal_http_request_duration_seconds_sum{route=\"%s\",method=\"%s\"} %llu.%09llu\n",
                route, method, (unsigned long long)(sum / 1000000000u),
                (unsigned long long)(sum % 1000000000u));
        bprintf(&b, "loyal_http_request_duration_seconds_count{route=\"%s\",method=\"%s\"} %llu\n",
                route, method, (unsigned long long)cum);
    }
    bprintf(&b,
            "# HELP loyal_store_errors_total Requests that failed because of the store.\n"
            "# TYPE loyal_store_errors_total counter\n"
            "loyal_store_errors_total %llu\n"
            "# HELP loyal_store_commit_groups_total Commits of the SQLite writer.\n"
            "# TYPE loyal_store_commit_groups_total counter\n"
            "loyal_store_commit_groups_total %llu\n"
            "# HELP loyal_store_group_requests_total Write requests those commits made durable.\n"
            "# TYPE loyal_store_group_requests_total counter\n"
            "loyal_store_group_requests_total %llu\n"
            "# HELP loyal_store_group_redos_total Writer transactions run again with a savepoint "
            "per request, because one was refused after writing.\n"
            "# TYPE loyal_store_group_redos_total counter\n"
            "loyal_store_group_redos_total %llu\n"
            "# HELP loyal_http_in_flight Requests being served.\n"
            "# TYPE loyal_http_in_flight gauge\n"
            "loyal_http_in_flight %ld\n",
            (unsigned long long)__atomic_load_n(&m->store_errors, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&m->groups, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&m->group_requests, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&m->group_redos, __ATOMIC_RELAXED), in_flight);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
