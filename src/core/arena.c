/*
 * arena.c - region allocator (see arena.h). Blocks are malloc'd and chained;
 * the newest block is at the head and serves allocations until full.
 */
#include "core/arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct arena_block {
    struct arena_block *next; /* older block */
    size_t size;              /* usable bytes in data[] */
    size_t used;
    _Alignas(16) char data[];
};

#define ARENA_ALIGN 16

void arena_init(struct arena *a, size_t block_size)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : 4096;
    a->total = 0;
}

/*
 * Blocks of the default size are kept for reuse (up to ARENA_CACHE of them):
 * a request arena takes one block per request, and glibc serves 4 KiB only
 * from its slower bins, not its per-thread cache. Processes are single
 * threaded, so the cache is a plain array.
 */
#define ARENA_CACHE_SIZE 4096
#define ARENA_CACHE 32
static struct arena_block *block_cache[ARENA_CACHE];
static unsigned nblock_cache;

static struct arena_block *block_new(struct arena *a, size_t size)
{
    struct arena_block *b;
    if (size == ARENA_CACHE_SIZE && nblock_cache > 0)
        b = block_cache[--nblock_cache];
    else if (!(b = malloc(sizeof(*b) + size)))
        return NULL;
    b->size = size;
    b->used = 0;
    a->total += size;
    return b;
}

static void block_free(struct arena_block *b)
{
    if (b->size == ARENA_CACHE_SIZE && nblock_cache < ARENA_CACHE)
        block_cache[nblock_cache++] = b;
    else
        free(b);
}

void arena_cache_release(void)
{
    while (nblock_cache > 0)
        free(block_cache[--nblock_cache]);
}

void *arena_alloc(struct arena *a, size_t n)
{
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (n == 0)
        n = ARENA_ALIGN;
    struct arena_block *b = a->head;
    if (b && b->size - b->used >= n) {
        void *p = b->data + b->used;
        b->used += n;
        return p;
    }
    if (n > a->block_size / 4) {
        /* A large object gets its own block, chained behind the head so the
         * head's remaining space stays usable. */
        struct arena_block *big = block_new(a, n);
        if (!big)
            return NULL;
        big->used = n;
        if (b) {
            big->next = b->next;
            b->next = big;
        } else {
            big->next = NULL;
            a->head = big;
        }
        return big->data;
    }
    struct arena_block *nb = block_new(a, a->block_size);
    if (!nb)
        return NULL;
    nb->next = b;
    a->head = nb;
    nb->used = n;
    return nb->data;
}

void *arena_calloc(struct arena *a, size_t n)
{
    void *p = arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t len)
{
    char *p = arena_alloc(a, len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

struct str arena_str(struct arena *a, struct str s)
{
    char *p = arena_strndup(a, s.p ? s.p : "", s.len);
    return (struct str){p, p ? s.len : 0};
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void arena_reset(struct arena *a)
{
    struct arena_block *b = a->head;
    if (!b)
        return;
    /* Keep the oldest ordinary-sized block: it is the one a short request needs. */
    struct arena_block *keep = NULL;
    while (b) {
        struct arena_block *next = b->next;
        if (!keep && b->size == a->block_size) {
            keep = b;
        } else {
            a->total -= b->size;
            block_free(b);
        }
        b = next;
    }
    if (keep) {
        keep->next = NULL;
        keep->used = 0;
    }
    a->head = keep;
}

static void destroy(struct arena *a, int cache)
{
    struct arena_block *b = a->head;
    while (b) {
        struct arena_block *next = b->next;
        if (cache)
            block_free(b);
        else
            free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}

void arena_destroy_uncached(struct arena *a)
{
    destroy(a, 0);
}

void arena_destroy(struct arena *a)
{
    destroy(a, 1);
}
