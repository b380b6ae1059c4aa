/* Route matching: segment by segment against each row, collecting the
 * methods of rows whose path matches so that a 405 can say what is allowed. */
#include "api/router.h"

#include <string.h>

/* Does path match pattern? Fills params on success. */
static int match_path(const char *pattern, const char *path, ly_route_match *m)
{
    size_t np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return 0;
        p++, s++;
        const char *pe = strchr(p, '/'), *se = strchr(s, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p), sl = se ? (size_t)(se - s) : strlen(s);
        if (pl > 2 && p[0] == '{' && p[pl - 1] == '}') {
            if (sl == 0 || sl >= LY_ROUTE_PARAM_MAX || np >= LY_ROUTE_MAX_PARAMS)
                return 0;
            memcpy(m->params[np], s, sl);
            m->params[np][sl] = '\0';
            np++;
        } else if (pl != sl || memcmp(p, s, pl) != 0) {
            return 0;
        }
        p += pl, s += sl;
    }
    if (*p || *s)
        return 0;
    m->nparams = np;
    return 1;
}

static void allow_add(ly_route_match *m, const char *method)
{
    if (strstr(m->allow, method))
        return;
    size_t used = strlen(m->allow);
    if (used + strlen(method) + 3 > sizeof m->allow)
        return;
    if (used)
        strcat(m->allow, ", ");
    strcat(m->allow, method);
}

void ly_route_find(const ly_route *table, size_t n, const char *method, const char *path,
                   ly_route_match *m)
{
    /* Only the small fields are cleared: params are written before use. */
    m->index = -1;
    m->path_known = 0;
    m->nparams = 0;
    m->allow[0] = '\0';
    /* The usual case first: only rows of the request's method are matched. */
    for (size_t i = 0; i < n; i++)
        if (strcmp(table[i].method, method) == 0 && match_path(table[i].pattern, path, m)) {
            m->index = (int)i;
            m->path_known = 1;
            return;
        }
    /* No such route: which methods does the path have, for a 405's Allow? */
    ly_route_match scratch;
    for (size_t i = 0; i < n; i++) {
        if (!match_path(table[i].pattern, path, &scratch))
            continue;
        m->path_known = 1;
        allow_add(m, table[i].method);
    }
    if (!m->path_known || strcmp(method, "HEAD") != 0)
        return;
    /* HEAD is served wherever GET is. */
    for (size_t i = 0; i < n; i++)
        if (strcmp(table[i].method, "GET") == 0 && match_path(table[i].pattern, path, m)) {
            m->index = (int)i;
            return;
        }
}
