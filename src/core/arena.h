/*
 * arena.h - region allocator. Everything allocated from an arena is freed at
 * once by arena_reset() (keep the first block for reuse) or arena_destroy().
 *
 * Used for a configuration generation (lives until the generation's last user
 * goes) and for per-request data (reset between keep-alive requests).
 * Allocation failure returns NULL; callers on a connection path close the
 * connection, callers at config load fail the load.
 */
#ifndef SY_CORE_ARENA_H
#define SY_CORE_ARENA_H

#include <stddef.h>

#include "core/str.h"

struct arena_block;

struct arena {
    struct arena_block *head;   /* owned: current block, chained to older ones */
    size_t block_size;          /* size of ordinary blocks */
    size_t total;               /* bytes of all blocks (for status/tests) */
};

/* Initialise an empty arena whose blocks are `block_size` bytes (0 = 4096). */
void arena_init(struct arena *a, size_t block_size);

/* Allocate `n` bytes aligned to 16; NULL on failure. Large requests get their own block. */
void *arena_alloc(struct arena *a, size_t n);

/* arena_alloc + zero fill. */
void *arena_calloc(struct arena *a, size_t n);

/* Copy `len` bytes of `s` and NUL-terminate. */
char *arena_strndup(struct arena *a, const char *s, size_t len);
char *arena_strdup(struct arena *a, const char *s);

/* Copy a slice, returning a NUL-terminated slice owned by the arena. */
struct str arena_str(struct arena *a, struct str s);

/* printf into the arena. */
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Free every block but the first (which is kept, emptied, for reuse). */
void arena_reset(struct arena *a);

/* Free everything; the arena may be re-initialised. Accepts an empty arena. */
void arena_destroy(struct arena *a);

/* arena_destroy, but every block goes back to malloc, none to the cache. */
void arena_destroy_uncached(struct arena *a);

/* Return the cached free blocks (see arena.c) to malloc. */
void arena_cache_release(void);

#endif
