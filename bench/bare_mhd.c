/* The benchmark's ceiling: a libmicrohttpd server started with the same flags
 * and options as Loyal's (src/api/server.c) that answers every request with a
 * fixed member-shaped JSON body, so the difference to Loyal is what Loyal does.
 * Usage: bare_mhd PORT THREADS. Stops on SIGINT or SIGTERM. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* About the size and shape of GET /v1/members/{id}'s answer. */
static const char member_json[] =
    "{\"id\":\"mem_4711\",\"external_id\":\"B-4711\",\"email\":\"b4711@example.com\","
    "\"phone\":\"+14155550123\",\"name\":\"Benchmark Member\",\"birthdate\":\"1990-04-12\","
    "\"attributes\":{\"store\":\"downtown\",\"newsletter\":true},\"status\":\"active\","
    "\"cards\":[\"6000123412341234\"],\"tier\":null,\"balances\":{\"points\":1250,"
    "\"credit\":0},\"created_at\":\"2024-01-01T00:00:00.000Z\","
    "\"updated_at\":\"2024-01-01T00:00:00.000Z\"}";

/* Any non-NULL pointer: marks "first call seen" on the connection's closure. */
static int seen;

static enum MHD_Result on_access(void *cls, struct MHD_Connection *mc, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    (void)cls, (void)url, (void)method, (void)version, (void)upload;
    /* Queuing on the first call would turn keep-alive off, as in Loyal. */
    if (!*con_cls) {
        *con_cls = &seen;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        sizeof member_json - 1, (void *)member_json, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ret = MHD_queue_response(mc, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

static long parse_arg(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return -1;
    return v;
}

int main(int argc, char **argv)
{
    long port = argc == 3 ? parse_arg(argv[1], 1, 65535) : -1;
    long threads = argc == 3 ? parse_arg(argv[2], 1, 256) : -1;
    if (port < 0 || threads < 0) {
        fprintf(stderr, "usage: bare_mhd PORT THREADS\n");
        return 2;
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    /* Blocked before the workers start, so only sigwait below sees them. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_access, NULL, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
        MHD_OPTION_CONNECTION_LIMIT, 10000u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)8192, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "bare_mhd: cannot listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    printf("bare_mhd: serving http://127.0.0.1:%ld (%ld threads, %zu-byte body)\n", port, threads,
           sizeof member_json - 1);
    fflush(stdout);

    int sig = 0;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}
