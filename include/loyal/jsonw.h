/* A JSON writer into a growing malloc'd buffer, for answers on hot paths
 * where building a jansson tree and dumping it costs more than the query.
 * Commas are placed by the writer; strings are escaped (the input must be
 * valid UTF-8, as everything read from the store is). A failed allocation
 * makes the writer sticky-failed: ly_jw_finish then returns NULL. Not
 * thread-safe; one writer per answer. */
#ifndef LOYAL_JSONW_H
#define LOYAL_JSONW_H

#include <stddef.h>
#include <stdint.h>

typedef struct ly_jw {
    char *buf;
    size_t len, cap;
    int failed;
    int need_comma;
} ly_jw;

void ly_jw_init(ly_jw *w);
void ly_jw_obj_begin(ly_jw *w);
void ly_jw_obj_end(ly_jw *w);
void ly_jw_arr_begin(ly_jw *w);
void ly_jw_arr_end(ly_jw *w);
/* An object member's name; the value follows with one of the calls below. */
void ly_jw_key(ly_jw *w, const char *key);
void ly_jw_str(ly_jw *w, const char *s); /* NULL writes null */
void ly_jw_int(ly_jw *w, int64_t v);
/* A wire id: the string "<prefix><id>" ("mem_42"); id >= 0, prefix short. */
void ly_jw_id(ly_jw *w, const char *prefix, int64_t id);
/* A time as an RFC 3339 string in UTC with milliseconds. */
void ly_jw_time(ly_jw *w, int64_t ms);
void ly_jw_bool(ly_jw *w, int v);
void ly_jw_null(ly_jw *w);
/* Already serialised JSON, written as is. */
void ly_jw_raw(ly_jw *w, const char *json);
/* Hands over the buffer (NUL-terminated, free() it) and its length; NULL
 * when an allocation failed. */
char *ly_jw_finish(ly_jw *w, size_t *len);
void ly_jw_discard(ly_jw *w);

#endif
