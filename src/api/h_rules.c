/* /v1/rules: earn rules and their versions, and checking a rule or an
 * expression before saving it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"

int ly__h_rules_list(ly_req *r)
{
    static const char *const allowed[] = {"limit", "cursor", NULL};
    int limit;
    const char *cursor;
    if (ly__check_query(r, allowed) != LY_OK || ly__page(r, &limit, &cursor) != LY_OK)
        return LY_EINVAL;
    /* A cursor is the last rule id of a page: 1 to 64 of the characters ids
     * are made of. */
    if (cursor && (strlen(cursor) > 64 ||
                   cursor[strspn(cursor, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789_-.:")] != '\0'))
        return ly__fail(r, LY_EINVAL, "invalid_parameter", "cursor",
                        "cursor must be the next_cursor of a previous page");
    ly_conn *db = ly__db(r);
    if (!db)
        return LY_ESTORE;
    ly_result res;
    ly_error err;
    ly_error_clear(&err);
    int rc = ly_rule_list(db, &r->arena, r->program_id, cursor, limit, &res, &err);
    return ly__reply_result(r, rc, &res, &err);
}

static int save(ly_req *r, const char *rule_id)
{
    json_t *body;
    if (ly__body(r, NULL, &body) != LY_OK)
        return LY_EINVAL;
    ly_conn *db = ly__db(r);
    int rc = LY_ESTORE;
    if (db) {
        ly_result res;
        ly_error err;
        ly_error_clear(&err);
        rc = ly_rule_save(db, &r->arena, r->program_id, rule_id, body, &res, &err);
        rc = ly__reply_result(r, rc, &res, &err);
    }
    json_decref(body);
    return rc;
}

int ly__h_rules_create(ly_req *r)
{
    return save(r, NULL);
}

int ly__h_rule_put(ly_req *r)
{
    return save(r, r->match.params[0]);
}

int ly__h_rules_validate(ly_req *r)
{
    json_t *body;
    if (ly__body(r, NULL, &body) != LY_OK)
        return LY_EINVAL;
    ly_result res;
    ly_error err;
    ly_error_clear(&err);
    int rc = ly_rule_validate(body, &res, &err);
    json_decref(body);
    return ly__reply_result(r, rc, &res, &err);
}

int ly__h_rule_get(ly_req *r)
{
    static const char *const allowed[] = {"version", NULL};
    if (ly__check_query(r, allowed) != LY_OK)
        return LY_EINVAL;
    const char *v = ly__query(r, "version");
    int64_t version = 0;
    if (v) {
        char *end;
        long long n = strtoll(v, &end, 10);
        if (!*v || *end || n < 1 || n > INT32_MAX)
            return ly__fail(r, LY_EINVAL, "invalid_parameter", "version",
                            "version must be a whole number from 1");
        version = n;
    }
    ly_conn *db = ly__db(r);
    if (!db)
        return LY_ESTORE;
    ly_result res;
    ly_error err;
    ly_error_clear(&err);
    int rc = ly_rule_fetch(db, &r->arena, r->program_id, r->match.params[0], version, &res, &err);
    return ly__reply_result(r, rc, &res, &err);
}

int ly__h_rule_versions(ly_req *r)
{
    static const char *const allowed[] = {"limit", "cursor", NULL};
    int limit;
    const char *cursor;
    if (ly__check_query(r, allowed) != LY_OK || ly__page(r, &limit, &cursor) != LY_OK)
        return LY_EINVAL;
    int64_t after = 0;
    if (cursor) {
        char *end;
        errno = 0;
        long long v = strtoll(cursor, &end, 10);
        if (*end || errno || v < 1 || cursor[0] < '0' || cursor[0] > '9')
            return ly__fail(r, LY_EINVAL, "invalid_parameter", "cursor",
                            "cursor must be the next_cursor of a previous page");
        after = v;
    }
    ly_conn *db = ly__db(r);
    if (!db)
        return LY_ESTORE;
    ly_result res;
    ly_error err;
    ly_error_clear(&err);
    int rc = ly_rule_versions(db, &r->arena, r->program_id, r->match.params[0], after, limit, &res,
                              &err);
    return ly__reply_result(r, rc, &res, &err);
}

int ly__h_rule_delete(ly_req *r)
{
    ly_conn *db = ly__db(r);
    if (!db)
        return LY_ESTORE;
    ly_result res;
    ly_error err;
    ly_error_clear(&err);
    int rc = ly_rule_delete(db, &r->arena, r->program_id, r->match.params[0], &res, &err);
    return ly__reply_result(r, rc, &res, &err);
}
