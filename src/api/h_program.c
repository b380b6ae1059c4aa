/* GET and PUT /v1/program. */
#include "api/handlers.h"
#include "loyal/engine.h"

static int reply_program(ly_req *r, int rc, const ly_program *p, const ly_error *err)
{
    if (rc != LY_OK)
        return ly__reply_error(r, err);
    return ly__reply_json(r, 200, ly_program_to_json(p));
}

int ly__h_program_get(ly_req *r)
{
    ly_conn *db = ly__db(r);
    if (!db)
        return LY_ESTORE;
    ly_program p;
    ly_error err;
    ly_error_clear(&err);
    int rc = ly_program_get(db, &r->arena, r->program_id, &p, &err);
    return reply_program(r, rc, &p, &err);
}

int ly__h_program_put(ly_req *r)
{
    json_t *body;
    if (ly__body(r, NULL, &body) != LY_OK)
        return LY_EINVAL;
    ly_conn *db = ly__db(r);
    if (!db) {
        json_decref(body);
        return LY_ESTORE;
    }
    ly_program p;
    ly_error err;
    ly_error_clear(&err);
    int rc = ly_program_update(db, &r->arena, r->program_id, body, &p, &err);
    rc = reply_program(r, rc, &p, &err);
    json_decref(body);
    return rc;
}
