/* The HTTP front: libmicrohttpd callbacks, request lifecycle, authentication
 * and dispatch to the route table. Each request lives in a ly_req on the
 * connection's closure pointer, with an arena freed when the request
 * completes. Responses are queued only once the whole body is in, which keeps
 * keep-alive working. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "api/api.h"
#include "loyal/engine.h"
#include "loyal/json.h"
#include "loyal/keys.h"
#include "loyal/timeutil.h"

/* A body past the limit is read and dropped up to this much, so that a
 * client still writing it gets its 413 rather than a reset connection; one
 * announced bigger is answered at once and the connection closed. */
#define DISCARD_MAX (64u << 20)

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int ly__reply_text(ly_req *r, int status, const char *content_type, const char *text, size_t len)
{
    free(r->resp);
    r->resp = malloc(len ? len : 1);
    if (!r->resp) {
        r->resp_len = 0;
        r->status = 503;
        return LY_ENOMEM;
    }
    memcpy(r->resp, text, len);
    r->resp_len = len;
    r->status = status;
    r->content_type = content_type;
    return 0;
}

int ly__reply_jw(ly_req *r, int status, ly_jw *w)
{
    size_t len;
    char *text = ly_jw_finish(w, &len);
    if (!text)
        return ly__fail(r, LY_ENOMEM, NULL, NULL, "the server is out of memory");
    free(r->resp);
    r->resp = text;
    r->resp_len = len;
    r->status = status;
    r->content_type = "application/json";
    return 0;
}

int ly__reply_json(ly_req *r, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        static const char oom[] =
            "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"the server is out of memory\"}}";
        return ly__reply_text(r, 503, "application/json", oom, sizeof oom - 1);
    }
    free(r->resp);
    r->resp = text;
    r->resp_len = strlen(text);
    r->status = status;
    r->content_type = "application/json";
    return 0;
}

/* Replaces every byte that is not part of well-formed UTF-8 with '?', so a
 * message that echoes (or cut short) a client's input is still a JSON string. */
static void utf8_scrub(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int n = *p < 0x80             ? 1
                : (*p & 0xE0) == 0xC0 ? 2
                : (*p & 0xF0) == 0xE0 ? 3
                : (*p & 0xF8) == 0xF0 ? 4
                                      : 0;
        int ok = n > 0 && !(n == 2 && *p < 0xC2) && !(n == 4 && *p > 0xF4);
        for (int i = 1; ok && i < n; i++)
            ok = (p[i] & 0xC0) == 0x80;
        if (ok && n == 3)
            ok = !(*p == 0xE0 && p[1] < 0xA0) && !(*p == 0xED && p[1] >= 0xA0);
        if (ok && n == 4)
            ok = !(*p == 0xF0 && p[1] < 0x90) && !(*p == 0xF4 && p[1] >= 0x90);
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

void ly__jw_message(ly_jw *w, const char *msg)
{
    char buf[sizeof((ly_error *)0)->message];
    snprintf(buf, sizeof buf, "%s", msg);
    utf8_scrub(buf);
    ly_jw_str(w, buf);
}

const char *ly__hash_hex(ly_req *r, const void *data, size_t len)
{
    unsigned char h[crypto_generichash_BYTES];
    char *hex = ly_arena_alloc(&r->arena, sizeof h * 2 + 1);
    if (!hex || crypto_generichash(h, sizeof h, data, len, NULL, 0) != 0)
        return NULL;
    return sodium_bin2hex(hex, sizeof h * 2 + 1, h, sizeof h);
}

int ly__reply_error(ly_req *r, const ly_error *err_in)
{
    ly_error scrubbed = *err_in, *err = &scrubbed;
    r->retry = err->rc == LY_ERETRY;
    utf8_scrub(err->message);
    utf8_scrub(err->field);
    int status = ly_error_http_status(err->rc);
    if (status >= 500 && r->srv)
        ly__metrics_store_error(r->srv->metrics);
    json_t *e = json_pack("{s:s, s:s}", "code", err->code[0] ? err->code : "internal_error",
                          "message", err->message[0] ? err->message : "something went wrong");
    if (e && err->field[0])
        json_object_set_new(e, "field", json_string(err->field));
    return ly__reply_json(r, status, e ? json_pack("{s:o}", "error", e) : NULL);
}

int ly__fail(ly_req *r, int rc, const char *code, const char *field, const char *fmt, ...)
{
    ly_error err;
    err.rc = rc;
    snprintf(err.code, sizeof err.code, "%s", code ? code : ly_error_default_code(rc));
    snprintf(err.field, sizeof err.field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    ly__reply_error(r, &err);
    return rc;
}

/* The first parameter of that name, its case ignored as libmicrohttpd does. */
const char *ly__query(ly_req *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->nquery; i++)
        if (r->query[i].name_len == n && strncasecmp(r->query[i].name, name, n) == 0)
            return r->query[i].value;
    return NULL;
}

int ly__check_query(ly_req *r, const char *const *allowed)
{
    for (size_t i = 0; i < r->nquery; i++) {
        const char *name = r->query[i].name;
        const char *const *a = allowed;
        while (*a && strcmp(*a, name) != 0)
            a++;
        if (!*a)
            return ly__fail(r, LY_EINVAL, "invalid_parameter", name,
                            "unknown query parameter \"%.64s\"", name);
    }
    return LY_OK;
}

int ly__body(ly_req *r, const void *fields, json_t **out)
{
    ly_error err;
    ly_error_clear(&err);
    int rc = LY_OK;
    if (r->json)
        *out = json_incref(r->json);
    else
        rc = ly_json_parse_object(r->body ? r->body : "", r->body_len, out, &err);
    if (rc == LY_OK && fields && (rc = ly_json_check(*out, fields, NULL, &err)) != LY_OK) {
        json_decref(*out);
        *out = NULL;
    }
    if (rc != LY_OK)
        ly__reply_error(r, &err);
    return rc;
}

static const char *canonical(ly_req *r, const json_t *v, const char **text)
{
    char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    *text = t ? ly_arena_strdup(&r->arena, t) : NULL;
    free(t);
    return *text ? ly__hash_hex(r, *text, strlen(*text)) : NULL;
}

void ly__prepare(ly_req *r)
{
    ly_error err;
    if (!r->route->body_schema || !r->body ||
        ly_json_parse_object(r->body, r->body_len, &r->json, &err) != LY_OK)
        return;
    const json_t *events = NULL;
    size_t n = 1;
    if (r->route->flags & LY_ROUTE_EVENT_BATCH) {
        events = json_object_get(r->json, "events");
        n = json_array_size(events);
        if (!json_is_array(events) || n > LY_BATCH_MAX)
            return; /* refused by the handler */
    } else if (!(r->route->flags & LY_ROUTE_EVENT)) {
        return;
    }
    const char **text = ly_arena_calloc(&r->arena, 2 * n * sizeof *text);
    if (!text)
        return;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = events ? json_array_get(events, i) : r->json;
        if (!(text[n + i] = canonical(r, v, &text[i])))
            return;
    }
    r->nevents = n;
    r->ev_text = text;
    r->ev_hash = text + n;
}

const char *ly__event_canonical(ly_req *r, size_t i, const json_t *v, const char **text)
{
    if (i < r->nevents) {
        *text = r->ev_text[i];
        return r->ev_hash[i];
    }
    return canonical(r, v, text);
}

ly_conn *ly__db(ly_req *r)
{
    if (r->db)
        return r->db;
    ly_error err;
    ly_error_clear(&err);
    r->db = ly_store_acquire(r->srv->store, &err);
    if (!r->db)
        ly__reply_error(r, &err);
    return r->db;
}

int ly__page(ly_req *r, int *limit, const char **cursor)
{
    const char *l = ly__query(r, "limit");
    *limit = 50;
    if (l) {
        char *end;
        long v = strtol(l, &end, 10);
        if (!*l || *end || v < 1 || v > 100)
            return ly__fail(r, LY_EINVAL, "invalid_parameter", "limit",
                            "limit must be a whole number from 1 to 100");
        *limit = (int)v;
    }
    *cursor = ly__query(r, "cursor");
    if (*cursor && !**cursor)
        return ly__fail(r, LY_EINVAL, "invalid_parameter", "cursor",
                        "cursor must be the next_cursor of a previous page");
    return LY_OK;
}

/* Authenticates the Bearer key and checks the route's scope. */
static int authorize(ly_req *r)
{
    const char *h = r->authorization;
    if (!h)
        return ly__fail(r, LY_EAUTH, "unauthorized", NULL,
                        "an API key is needed: send the header Authorization: Bearer <key>");
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return ly__fail(r, LY_EAUTH, "unauthorized", NULL,
                        "the Authorization header must be \"Bearer <key>\"");
    const char *key = h + 7;
    while (*key == ' ')
        key++;
    ly_conn *db = ly__db(r);
    if (!db)
        return LY_ESTORE;
    ly_key k;
    ly_error err;
    ly_error_clear(&err);
    /* A read route checks its key and reads its answer in one snapshot: one
     * transaction instead of two on the hottest paths. */
    int rc = LY_OK;
    if (strcmp(r->route->method, "GET") == 0 && (rc = ly_store_begin_read(db, &err)) != LY_OK) {
        ly__reply_error(r, &err);
        return rc;
    }
    rc = ly_apikey_authenticate(db, &r->arena, key, &k, &err);
    if (rc != LY_OK) {
        ly__reply_error(r, &err);
        return rc;
    }
    r->program_id = k.program_id;
    r->key_id = k.id;
    r->scope = k.scope;
    if (!ly_key_scope_allows(k.scope, r->route->scope))
        return ly__fail(r, LY_EFORBIDDEN, "forbidden", NULL,
                        "%s %s key cannot call %s %s; it needs %s key",
                        strcmp(k.scope, "admin") == 0 ? "an" : "a", k.scope, r->route->method,
                        r->route->pattern,
                        strcmp(r->route->scope, "read") == 0    ? "a read, pos, partner or admin"
                        : strcmp(r->route->scope, "admin") == 0 ? "an admin"
                        : strcmp(r->route->scope, "pos") == 0   ? "a pos or admin"
                                                                : "a partner or admin");
    return LY_OK;
}

#define IDEMPOTENCY_ATTEMPTS 8

static int idem_key_valid(const char *key)
{
    size_t n = strlen(key);
    if (n < 1 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (key[i] < 0x20 || key[i] > 0x7e)
            return 0;
    return 1;
}

/* Replies with a kept answer, or refuses a key reused for another request. */
static void idem_replay(ly_req *r, const ly_idem *kept, const char *hash)
{
    if (strcmp(kept->request_hash, hash) != 0) {
        ly__fail(r, LY_ECONFLICT, "idempotency_conflict", NULL,
                 "Idempotency-Key %.64s was used for another request (%s)", kept->key, kept->route);
        return;
    }
    ly__reply_text(r, kept->status, "application/json", kept->response, strlen(kept->response));
    r->replayed = 1;
}

/* What an idempotent request keeps of its answer: all of it, but a secret
 * shown once, which is kept as null. */
static const char *kept_answer(ly_req *r)
{
    if (!(r->route->flags & LY_ROUTE_SECRET_ANSWER))
        return ly_arena_strndup(&r->arena, r->resp, r->resp_len);
    json_t *o = json_loadb(r->resp, r->resp_len, 0, NULL);
    if (o)
        json_object_set_new(o, "key", json_null());
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    const char *kept = text ? ly_arena_strdup(&r->arena, text) : NULL;
    free(text);
    return kept;
}

/* Is text (n bytes) no body at all: nothing, white space, or an empty
 * object with white space about it? */
static int no_body_text(const char *text, size_t n)
{
    size_t i = 0;
    int braces = 0;
    for (; i < n; i++) {
        char ch = text[i];
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n')
            continue;
        if ((ch == '{' && braces == 0) || (ch == '}' && braces == 1))
            braces++;
        else
            return 0;
    }
    return braces == 0 || braces == 2;
}

/* A write without a request schema takes no body: none, white space or an
 * empty object. Anything else is refused as a bad body is on every other
 * route (invalid_json, invalid_type, unknown_field), not ignored. */
static int no_body(ly_req *r)
{
    static const ly_json_field none[] = {{NULL, 0, 0, 0}};
    size_t i = 0;
    while (i < r->body_len && r->body[i] && strchr(" \t\r\n", r->body[i]))
        i++;
    if (i == r->body_len)
        return LY_OK;
    json_t *body;
    int rc = ly__body(r, none, &body);
    if (rc == LY_OK)
        json_decref(body);
    return rc;
}

/* The route's handler; a write without a request schema first checks that
 * it was given no body, where every other handler parses its own. */
static void handle(ly_req *r)
{
    if (!r->route->body_schema && strcmp(r->route->method, "GET") != 0 && no_body(r) != LY_OK)
        return;
    r->route->handler(r);
}

/* The same inside the writer's transaction: no retries (one writer), and a
 * refusal is undone by the writer's savepoint. */
static void idempotent_joined(ly_req *r, ly_conn *db, const char *key, const char *route,
                              const char *hash)
{
    ly_error err;
    ly_error_clear(&err);
    ly_idem kept;
    int rc = ly_store_idem_get(db, &r->arena, r->program_id, key, &kept, &err);
    if (rc == LY_OK) {
        idem_replay(r, &kept, hash);
        return;
    }
    if (rc != LY_ENOTFOUND) {
        ly__reply_error(r, &err);
        return;
    }
    handle(r);
    if (r->status >= 400)
        return;
    ly_idem mine = {key, route, hash, r->status, kept_answer(r), ly_time_now_ms()};
    rc = mine.response ? ly_store_idem_put(db, r->program_id, &mine, &err)
                       : ly_error_set(&err, LY_ENOMEM, NULL, NULL, "out of memory");
    if (rc != LY_OK)
        ly__reply_error(r, &err);
}

/* A write under an Idempotency-Key: the key's check, the handler's work and
 * the kept answer are one transaction, so a key is used once or not at all.
 * A refusal (4xx or 5xx) keeps nothing. */
static void idempotent(ly_req *r, const char *key)
{
    if (!idem_key_valid(key)) {
        ly__fail(r, LY_EINVAL, "invalid_idempotency_key", NULL,
                 "Idempotency-Key must be 1 to 255 printable ASCII characters");
        return;
    }
    const char *route = ly_arena_printf(&r->arena, "%s %s", r->method, r->path);
    /* A route that takes no body takes none, white space or {} alike. */
    int none = !r->route->body_schema && no_body_text(r->body, r->body_len);
    char *material = route ? ly_arena_printf(&r->arena, "%s\n%.*s", route,
                                             none ? 0 : (int)r->body_len, r->body ? r->body : "")
                           : NULL;
    /* The query is part of the request (POST /v1/jobs/expire?as_of=…): each
     * parameter, in the order sent, after the body. */
    for (size_t i = 0; material && i < r->nquery; i++) {
        const ly_param *q = &r->query[i];
        material =
            ly_arena_printf(&r->arena, "%s\n?%zu:%.*s%s%s", material, q->name_len, (int)q->name_len,
                            q->name, q->value ? "=" : "", q->value ? q->value : "");
    }
    const char *hash = material ? ly__hash_hex(r, material, strlen(material)) : NULL;
    ly_conn *db = ly__db(r);
    if (!hash || !db) {
        if (!hash)
            ly__fail(r, LY_ENOMEM, NULL, NULL, "out of memory");
        return;
    }
    ly_error err;
    if (ly_store_in_transaction(db) == 2) {
        idempotent_joined(r, db, key, route, hash);
        return;
    }
    for (int attempt = 0; attempt < IDEMPOTENCY_ATTEMPTS; attempt++) {
        ly_error_clear(&err);
        ly_idem kept;
        int rc = ly_store_begin_write(db, &err);
        if (rc == LY_OK)
            rc = ly_store_idem_get(db, &r->arena, r->program_id, key, &kept, &err);
        if (rc == LY_OK) {
            ly_store_rollback(db);
            idem_replay(r, &kept, hash);
            return;
        }
        if (rc != LY_ENOTFOUND) {
            ly_store_rollback(db);
            if (rc == LY_ERETRY)
                continue;
            ly__reply_error(r, &err);
            return;
        }
        r->retry = 0;
        r->replayed = 0;
        handle(r);
        if (r->status >= 400 || !ly_store_in_transaction(db)) {
            ly_store_rollback(db);
            if (r->retry)
                continue;
            return;
        }
        ly_idem mine = {key, route, hash, r->status, kept_answer(r), ly_time_now_ms()};
        rc = mine.response ? ly_store_idem_put(db, r->program_id, &mine, &err) : LY_ENOMEM;
        if (rc == LY_OK)
            rc = ly_store_commit(db, &err);
        else
            ly_store_rollback(db);
        if (rc == LY_OK)
            return;
        /* Taken meanwhile by a concurrent duplicate: the next attempt replays it. */
        if (rc != LY_ECONFLICT && rc != LY_ERETRY) {
            ly__reply_error(r, &err);
            return;
        }
    }
    ly__fail(r, LY_ESTORE, "storage_busy", NULL,
             "the store stayed busy after %d attempts; retry later", IDEMPOTENCY_ATTEMPTS);
}

void ly__dispatch(ly_req *r)
{
    ly_route_find(ly__routes, ly__nroutes, r->method, r->path, &r->match);
    if (r->match.index < 0) {
        if (r->match.path_known) {
            r->allow = ly_arena_strdup(&r->arena, r->match.allow);
            ly__fail(r, LY_EMETHOD, "method_not_allowed", NULL,
                     "%s is not allowed on %.200s; allowed: %s", r->method, r->path,
                     r->match.allow);
        } else {
            ly__fail(r, LY_ENOTFOUND, "not_found", NULL, "no route %s %.200s", r->method, r->path);
        }
        return;
    }
    r->route = &ly__routes[r->match.index];
    if (r->too_large) {
        ly__fail(r, LY_ETOOBIG, "payload_too_large", NULL, "the body is larger than %zu bytes",
                 r->srv->cfg.max_body);
        return;
    }
    if (r->route->scope && authorize(r) != LY_OK)
        return;
    if (r->srv->writer && strcmp(r->route->method, "GET") != 0 &&
        !(r->route->flags & LY_ROUTE_WRITES_NOTHING)) {
        /* To the writer's next group; the answer comes after its commit. */
        if (r->db) {
            ly_store_release(r->srv->store, r->db);
            r->db = NULL;
        }
        ly__prepare(r);
        r->waiting = 1;
        if (r->mc)
            MHD_suspend_connection(r->mc);
        ly__writer_submit(r->srv->writer, r);
        return;
    }
    ly__run_handler(r);
}

void ly__run_handler(ly_req *r)
{
    const char *key = r->idempotency_key;
    if (key && strcmp(r->route->method, "GET") != 0 &&
        !(r->route->flags & LY_ROUTE_WRITES_NOTHING)) {
        idempotent(r, key);
        return;
    }
    handle(r);
}

void ly__writer_done(ly_req *r)
{
    /* Read first: without a connection, r may be gone once waiting clears. */
    struct MHD_Connection *mc = r->mc;
    __atomic_store_n(&r->waiting, 0, __ATOMIC_RELEASE);
    if (mc)
        MHD_resume_connection(mc);
}

ly_req *ly__req_new(ly_server *s, const char *method, const char *path)
{
    ly_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->srv = s;
    r->start_ns = now_ns();
    ly_arena_init(&r->arena, 8192);
    r->method = method;
    r->path = path;
    r->match.index = -1;
    return r;
}

void ly__req_release_db(ly_req *r)
{
    if (!r->db)
        return;
    if (ly_store_in_transaction(r->db) == 1)
        ly_store_rollback(r->db); /* read only: nothing to keep */
    ly_store_release(r->srv->store, r->db);
    r->db = NULL;
}

void ly__req_free(ly_req *r)
{
    if (r->db)
        ly_store_release(r->srv->store, r->db);
    free(r->resp);
    free(r->body);
    json_decref(r->json);
    ly_arena_release(&r->arena);
    free(r);
}

static void append_body(ly_req *r, const char *data, size_t n)
{
    if (r->too_large)
        return;
    if (r->body_len + n > r->srv->cfg.max_body) {
        r->too_large = 1;
        free(r->body);
        r->body = NULL;
        r->body_len = r->body_cap = 0;
        return;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *nb = realloc(r->body, cap);
        if (!nb) {
            r->too_large = 1; /* answered as 413: the body cannot be held */
            return;
        }
        r->body = nb;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
}

static enum MHD_Result respond(ly_server *s, ly_req *r);

struct query_read {
    ly_param *params;
    size_t n, cap;
};

static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    struct query_read *q = cls;
    if (q->n < q->cap)
        q->params[q->n++] = (ly_param){key, key_size, value};
    return MHD_YES;
}

/* The head as ly__dispatch reads it. libmicrohttpd keeps the strings until
 * the request completes. */
static int read_head(ly_req *r)
{
    r->authorization = MHD_lookup_connection_value(r->mc, MHD_HEADER_KIND, "Authorization");
    r->idempotency_key = MHD_lookup_connection_value(r->mc, MHD_HEADER_KIND, "Idempotency-Key");
    int n = MHD_get_connection_values(r->mc, MHD_GET_ARGUMENT_KIND, NULL, NULL);
    if (n <= 0)
        return LY_OK;
    struct query_read q = {ly_arena_alloc(&r->arena, (size_t)n * sizeof(ly_param)), 0, (size_t)n};
    if (!q.params)
        return ly__fail(r, LY_ENOMEM, NULL, NULL, "the server is out of memory");
    MHD_get_connection_values_n(r->mc, MHD_GET_ARGUMENT_KIND, query_iter, &q);
    r->query = q.params;
    r->nquery = q.n;
    return LY_OK;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *mc, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    ly_server *s = cls;
    ly_req *r = *con_cls;
    if (!r) {
        r = ly__req_new(s, method, url);
        if (!r)
            return MHD_NO;
        r->mc = mc;
        __atomic_add_fetch(&s->in_flight, 1, __ATOMIC_SEQ_CST);
        *con_cls = r;
        read_head(r); /* on failure the answer is set: a 503 once the body is in */
        const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");
        unsigned long long announced = cl ? strtoull(cl, NULL, 10) : 0;
        if (announced <= s->cfg.max_body)
            return MHD_YES;
        r->too_large = 1;
        if (announced <= DISCARD_MAX)
            return MHD_YES; /* read and dropped, then a 413 on a connection kept alive */
        /* Too big to be worth reading: answer now; the connection closes
         * after the answer. */
        return respond(s, r);
    }
    if (*upload_size) {
        if (r->too_large) {
            r->body_len += *upload_size; /* counts what was dropped */
            if (r->body_len > DISCARD_MAX)
                return MHD_NO;
        } else {
            append_body(r, upload, *upload_size);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    return respond(s, r);
}

/* Dispatches the request and queues its answer. */
static enum MHD_Result respond(ly_server *s, ly_req *r)
{
    if (!r->status) {
        ly__dispatch(r);
        if (__atomic_load_n(&r->waiting, __ATOMIC_ACQUIRE))
            return MHD_YES; /* answered when the writer resumes the connection */
    }
    ly__req_release_db(r);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->resp_len, r->resp, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        return MHD_NO;
    r->resp = NULL; /* now libmicrohttpd's */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->content_type ? r->content_type : "application/json");
    if (r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->replayed)
        MHD_add_response_header(resp, "Idempotent-Replayed", "true");
    enum MHD_Result ret = MHD_queue_response(r->mc, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void access_log(ly_server *s, ly_req *r, uint64_t ns)
{
    char ts[LY_TIME_BUFSZ];
    ly_time_format(ly_time_now_ms(), ts);
    json_t *line =
        json_pack("{s:s, s:s, s:s, s:s?, s:i, s:I, s:I, s:s?}", "ts", ts, "method",
                  r->method ? r->method : "", "path", r->path ? r->path : "", "route",
                  r->route ? r->route->pattern : NULL, "status", r->status, "duration_us",
                  (json_int_t)(ns / 1000), "bytes_in", (json_int_t)r->body_len, "key", r->key_id);
    char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);
    if (text) {
        size_t n = strlen(text);
        text[n] = '\n'; /* replaces the NUL: written with its length */
        fwrite(text, 1, n + 1, s->cfg.access_log);
        fflush(s->cfg.access_log);
        free(text);
    }
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    ly_server *s = cls;
    ly_req *r = *con_cls;
    if (!r)
        return;
    uint64_t ns = now_ns() - r->start_ns;
    if (!r->status)
        r->status = 499; /* the client went away before an answer */
    ly__metrics_observe(s->metrics, r->route ? (int)(r->route - ly__routes) : -1, r->status, ns);
    if (s->cfg.access_log)
        access_log(s, r, ns);
    ly__req_free(r);
    *con_cls = NULL;
    __atomic_sub_fetch(&s->in_flight, 1, __ATOMIC_SEQ_CST);
}

int ly__server_new(ly_store *store, const ly_server_config *cfg, int with_writer, ly_server **out,
                   ly_error *err)
{
    ly_server *s = calloc(1, sizeof *s);
    if (!s)
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    s->store = store;
    s->cfg = *cfg;
    s->metrics = ly__metrics_new(ly__nroutes);
    s->openapi = ly__openapi_build(&s->openapi_len);
    if (!s->metrics || !s->openapi) {
        ly_server_stop(s, 0);
        return ly_error_set(err, LY_ENOMEM, NULL, NULL, "out of memory");
    }
    if (with_writer && ly__writer_start(s, &s->writer, err) != LY_OK) {
        ly_server_stop(s, 0);
        return err ? err->rc : LY_ESTORE;
    }
    *out = s;
    return LY_OK;
}

int ly_server_start(ly_store *store, const ly_server_config *cfg, ly_server **out, ly_error *err)
{
    ly_server *s;
    int rc = ly__server_new(store, cfg, strcmp(ly_store_backend(store), "sqlite") == 0, &s, err);
    if (rc != LY_OK)
        return rc;

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (inet_pton(AF_INET, cfg->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)cfg->port);
    } else if (inet_pton(AF_INET6, cfg->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        ly_server_stop(s, 0);
        return ly_error_set(err, LY_EINVAL, "invalid_value", "listen",
                            "\"%s\" is not a numeric IPv4 or IPv6 address", cfg->host);
    }
    s->mhd = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_access, s, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->threads > 1 ? cfg->threads : 1),
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_CONNECTION_LIMIT, 10000u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        /* Headers of both directions live here (bodies do not): 8 KiB is
         * plenty, and libmicrohttpd clears it for every request. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)8192, MHD_OPTION_END);
    if (!s->mhd) {
        ly_server_stop(s, 0);
        return ly_error_set(err, LY_EINVAL, "listen_failed", "listen",
                            "cannot listen on %s port %d (in use, or not an address of this "
                            "machine?)",
                            cfg->host, cfg->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    *out = s;
    return LY_OK;
}

int ly_server_port(const ly_server *s)
{
    return s->port;
}

void ly_server_stop(ly_server *s, int drain_ms)
{
    if (!s)
        return;
    if (s->mhd) {
        MHD_socket fd = MHD_quiesce_daemon(s->mhd);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
        for (int waited = 0; waited < drain_ms; waited += 10) {
            if (__atomic_load_n(&s->in_flight, __ATOMIC_SEQ_CST) == 0)
                break;
            usleep(10000);
        }
    }
    /* The writer finishes its queue first: the requests in it hold
     * suspended connections that the daemon must see resumed. */
    ly__writer_stop(s->writer);
    s->writer = NULL;
    if (s->mhd)
        MHD_stop_daemon(s->mhd);
    ly__metrics_free(s->metrics);
    free(s->openapi);
    free(s);
}
