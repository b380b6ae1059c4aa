/* ly_error: a small record of what went wrong, and its HTTP status. */
#include "loyal/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    int rc;
    int status;
    const char *code;
} error_table[] = {
    {LY_OK, 200, "ok"},
    {LY_EINVAL, 400, "invalid_request"},
    {LY_EAUTH, 401, "unauthorized"},
    {LY_EFORBIDDEN, 403, "forbidden"},
    {LY_ENOTFOUND, 404, "not_found"},
    {LY_EMETHOD, 405, "method_not_allowed"},
    {LY_ECONFLICT, 409, "conflict"},
    {LY_ETOOBIG, 413, "payload_too_large"},
    {LY_EREFUSED, 422, "unprocessable"},
    {LY_ELIMIT, 429, "rate_limited"},
    {LY_ESTORE, 503, "storage_unavailable"},
    {LY_ENOMEM, 503, "out_of_memory"},
    {LY_ERETRY, 503, "storage_busy"},
    {LY_EINTERNAL, 500, "internal_error"},
};

static int lookup(int rc)
{
    for (size_t i = 0; i < sizeof error_table / sizeof error_table[0]; i++)
        if (error_table[i].rc == rc)
            return (int)i;
    return (int)(sizeof error_table / sizeof error_table[0]) - 1;
}

int ly_error_set(ly_error *err, int rc, const char *code, const char *field, const char *fmt, ...)
{
    if (!err)
        return rc;
    err->rc = rc;
    snprintf(err->code, sizeof err->code, "%s", code ? code : ly_error_default_code(rc));
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return rc;
}

void ly_error_clear(ly_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

int ly_error_http_status(int rc)
{
    return error_table[lookup(rc)].status;
}

const char *ly_error_default_code(int rc)
{
    return error_table[lookup(rc)].code;
}
