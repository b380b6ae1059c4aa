/* Operational routes: health, metrics, the OpenAPI document. No key needed. */
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "loyal/store.h"

int ly__h_healthz(ly_req *r)
{
    ly_conn *db = ly__db(r);
    if (!db)
        return LY_ESTORE;
    ly_error err;
    ly_error_clear(&err);
    int rc = ly_store_begin_read(db, &err);
    if (rc == LY_OK) {
        ly_program p;
        rc = ly_store_program_get(db, &r->arena, LY_DEFAULT_PROGRAM, &p, &err);
        ly_store_rollback(db);
    }
    if (rc != LY_OK && rc != LY_ENOTFOUND) {
        if (err.rc == LY_OK || ly_error_http_status(err.rc) != 503)
            ly_error_set(&err, LY_ESTORE, "storage_unavailable", NULL, "the store does not answer");
        return ly__reply_error(r, &err);
    }
    return ly__reply_json(r, 200,
                          json_pack("{s:s, s:s, s:s}", "status", "ok", "store",
                                    ly_store_backend(r->srv->store), "version", LOYAL_VERSION));
}

int ly__h_metrics(ly_req *r)
{
    size_t len = 0;
    char *text = ly__metrics_render(r->srv->metrics,
                                    __atomic_load_n(&r->srv->in_flight, __ATOMIC_RELAXED), &len);
    if (!text)
        return ly__fail(r, LY_ENOMEM, NULL, NULL, "out of memory");
    free(r->resp);
    r->resp = text;
    r->resp_len = len;
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4";
    return 0;
}

int ly__h_openapi(ly_req *r)
{
    return ly__reply_text(r, 200, "application/json", r->srv->openapi, r->srv->openapi_len);
}
