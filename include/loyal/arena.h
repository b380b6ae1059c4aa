/* A bump allocator for everything one request (or one command) allocates,
 * freed in one go. Not thread-safe: one arena belongs to one request.
 * Allocation failure returns NULL; callers turn that into LY_ENOMEM. */
#ifndef LOYAL_ARENA_H
#define LOYAL_ARENA_H

#include <stdarg.h>
#include <stddef.h>

typedef struct ly_arena_chunk ly_arena_chunk;

typedef struct ly_arena {
    ly_arena_chunk *head;
    size_t chunk_size;
} ly_arena;

void ly_arena_init(ly_arena *a, size_t chunk_size);
/* Frees every chunk; the arena can be used again afterwards. */
void ly_arena_release(ly_arena *a);
void *ly_arena_alloc(ly_arena *a, size_t n);       /* 16-byte aligned, uninitialised */
void *ly_arena_calloc(ly_arena *a, size_t n);      /* zeroed */
char *ly_arena_strdup(ly_arena *a, const char *s); /* NULL in, NULL out */
char *ly_arena_strndup(ly_arena *a, const char *s, size_t n);
char *ly_arena_printf(ly_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *ly_arena_vprintf(ly_arena *a, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#endif
