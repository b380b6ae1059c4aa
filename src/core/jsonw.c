/* JSON writer: appends to one buffer, doubling it as needed. */
#include "loyal/jsonw.h"
#include "loyal/timeutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(ly_jw *w, size_t n)
{
    if (w->failed)
        return 0;
    if (w->len + n + 1 <= w->cap)
        return 1;
    size_t cap = w->cap ? w->cap : 512;
    while (cap < w->len + n + 1)
        cap *= 2;
    char *nb = realloc(w->buf, cap);
    if (!nb) {
        w->failed = 1;
        return 0;
    }
    w->buf = nb;
    w->cap = cap;
    return 1;
}

static void put(ly_jw *w, const char *s, size_t n)
{
    if (!reserve(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static void comma(ly_jw *w)
{
    if (w->need_comma)
        put(w, ",", 1);
    w->need_comma = 1;
}

void ly_jw_init(ly_jw *w)
{
    memset(w, 0, sizeof *w);
}

void ly_jw_obj_begin(ly_jw *w)
{
    comma(w);
    put(w, "{", 1);
    w->need_comma = 0;
}

void ly_jw_obj_end(ly_jw *w)
{
    put(w, "}", 1);
    w->need_comma = 1;
}

void ly_jw_arr_begin(ly_jw *w)
{
    comma(w);
    put(w, "[", 1);
    w->need_comma = 0;
}

void ly_jw_arr_end(ly_jw *w)
{
    put(w, "]", 1);
    w->need_comma = 1;
}

static void quoted(ly_jw *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    put(w, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        put(w, run, (size_t)(s - run));
        run = s + 1;
        char esc[6] = {'\\', 0};
        switch (ch) {
        case '"':
        case '\\':
            esc[1] = (char)ch;
            put(w, esc, 2);
            break;
        case '\n':
            put(w, "\\n", 2);
            break;
        case '\r':
            put(w, "\\r", 2);
            break;
        case '\t':
            put(w, "\\t", 2);
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            put(w, esc, 6);
        }
    }
    put(w, run, (size_t)(s - run));
    put(w, "\"", 1);
}

void ly_jw_key(ly_jw *w, const char *key)
{
    comma(w);
    quoted(w, key);
    put(w, ":", 1);
    w->need_comma = 0;
}

void ly_jw_str(ly_jw *w, const char *s)
{
    if (!s) {
        ly_jw_null(w);
        return;
    }
    comma(w);
    quoted(w, s);
}

void ly_jw_int(ly_jw *w, int64_t v)
{
    /* By hand, from the end: printf costs more than the rest of a small answer. */
    char tmp[24];
    char *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    comma(w);
    put(w, p, (size_t)(tmp + sizeof tmp - p));
}

void ly_jw_id(ly_jw *w, const char *prefix, int64_t id)
{
    char tmp[48];
    size_t n = strlen(prefix);
    if (n > 20)
        n = 20;
    memcpy(tmp + 1, prefix, n);
    tmp[0] = '"';
    char digits[24], *p = digits + sizeof digits;
    uint64_t u = id < 0 ? 0 : (uint64_t)id;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    size_t d = (size_t)(digits + sizeof digits - p);
    memcpy(tmp + 1 + n, p, d);
    tmp[1 + n + d] = '"';
    comma(w);
    put(w, tmp, n + d + 2);
}

void ly_jw_time(ly_jw *w, int64_t ms)
{
    char t[LY_TIME_BUFSZ];
    ly_time_format(ms, t);
    ly_jw_str(w, t);
}

void ly_jw_bool(ly_jw *w, int v)
{
    comma(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void ly_jw_null(ly_jw *w)
{
    comma(w);
    put(w, "null", 4);
}

void ly_jw_raw(ly_jw *w, const char *json)
{
    comma(w);
    put(w, json, strlen(json));
}

char *ly_jw_finish(ly_jw *w, size_t *len)
{
    if (w->failed || !reserve(w, 0)) {
        ly_jw_discard(w);
        return NULL;
    }
    char *out = w->buf;
    *len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return out;
}

void ly_jw_discard(ly_jw *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}
