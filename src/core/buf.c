/*
 * buf.c - the per-worker buffer pool (see buf.h).
 */
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

/* Spare buffers kept for reuse; beyond this, returned buffers are freed so
 * memory follows the number of busy connections, not the historical peak. */
#define BUF_POOL_MAX 64

static struct buf *pool_head;
static struct buf_stats stats;

struct buf *buf_get(void)
{
    struct buf *b = pool_head;
    if (b) {
        pool_head = b->next_free;
        stats.pooled--;
    } else {
        b = malloc(sizeof(*b) + BUF_SIZE);
        if (!b)
            return NULL;
        b->size = BUF_SIZE;
        stats.allocs++;
    }
    b->pos = b->last = 0;
    b->next_free = NULL;
    stats.in_use++;
    return b;
}

void buf_put(struct buf *b)
{
    if (!b)
        return;
    stats.in_use--;
    if (stats.pooled >= BUF_POOL_MAX) {
        free(b);
        return;
    }
    b->next_free = pool_head;
    pool_head = b;
    stats.pooled++;
}

void buf_compact(struct buf *b)
{
    if (b->pos == 0)
        return;
    size_t n = b->last - b->pos;
    if (n)
        memmove(b->data, b->data + b->pos, n);
    b->pos = 0;
    b->last = (uint32_t)n;
}

void buf_stats(struct buf_stats *out)
{
    *out = stats;
}

void buf_pool_drain(void)
{
    while (pool_head) {
        struct buf *b = pool_head;
        pool_head = b->next_free;
        free(b);
        stats.pooled--;
    }
}
