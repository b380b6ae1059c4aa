/* Per-request arena: chunks in a singly linked list, bump-allocated. Large
 * requests get a chunk of their own so that small ones keep filling the head. */
#include "loyal/arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ly_arena_chunk {
    ly_arena_chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

void ly_arena_init(ly_arena *a, size_t chunk_size)
{
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 8192;
}

void ly_arena_release(ly_arena *a)
{
    ly_arena_chunk *c = a->head;
    while (c) {
        ly_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

void *ly_arena_alloc(ly_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    ly_arena_chunk *c = a->head;
    if (c && c->size - c->used >= n) {
        void *p = c->data + c->used;
        c->used += n;
        return p;
    }
    size_t size = n > a->chunk_size / 2 ? n : a->chunk_size;
    if (size > SIZE_MAX - sizeof *c)
        return NULL;
    ly_arena_chunk *nc = malloc(sizeof *nc + size);
    if (!nc)
        return NULL;
    nc->size = size;
    nc->used = n;
    if (c && size == n) {
        /* A big one-off: keep the current head for later small allocations. */
        nc->next = c->next;
        c->next = nc;
    } else {
        nc->next = c;
        a->head = nc;
    }
    return nc->data;
}

void *ly_arena_calloc(ly_arena *a, size_t n)
{
    void *p = ly_arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

char *ly_arena_strndup(ly_arena *a, const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *p = ly_arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *ly_arena_strdup(ly_arena *a, const char *s)
{
    return s ? ly_arena_strndup(a, s, strlen(s)) : NULL;
}

char *ly_arena_vprintf(ly_arena *a, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *p = ly_arena_alloc(a, (size_t)n + 1);
    if (p)
        vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *ly_arena_printf(ly_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = ly_arena_vprintf(a, fmt, ap);
    va_end(ap);
    return p;
}
