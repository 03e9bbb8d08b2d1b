/*
 * buf.c - the per-worker buffer pool (see buf.h).
 */
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

#include "core/log.h"
#include "core/conn.h"

/* Spare buffers kept for reuse; beyond this, returned buffers are freed so
 * memory follows the number of busy connections, not the historical peak. */
#define BUF_POOL_MAX 64

#define BUF_BIG_POOL_MAX 8

/* One free list per size class. */
struct size_class {
    struct buf *head;
    unsigned n, max;
    uint32_t size;
};

static struct size_class small = {NULL, 0, BUF_POOL_MAX, BUF_SIZE};
static struct size_class big = {NULL, 0, BUF_BIG_POOL_MAX, BUF_BIG_SIZE};
static struct buf_stats stats;

static struct buf *take(struct size_class *sc)
{
    struct buf *b = sc->head;
    if (b) {
        sc->head = b->next_free;
        sc->n--;
        stats.pooled--;
    } else {
        b = malloc(sizeof(*b) + sc->size);
        if (!b)
            return NULL;
        b->size = sc->size;
        stats.allocs++;
    }
    b->pos = b->last = 0;
    b->next_free = NULL;
    stats.in_use++;
    return b;
}

struct buf *buf_get(void)
{
    return take(&small);
}

struct buf *buf_get_big(void)
{
    return take(&big);
}

void buf_put(struct buf *b)
{
    if (!b)
        return;
    stats.in_use--;
    struct size_class *sc = b->size == BUF_BIG_SIZE ? &big : &small;
    if (sc->n >= sc->max) {
        free(b);
        return;
    }
    b->next_free = sc->head;
    sc->head = b;
    sc->n++;
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

static void drain(struct size_class *sc)
{
    while (sc->head) {
        struct buf *b = sc->head;
        sc->head = b->next_free;
        free(b);
        sc->n--;
        stats.pooled--;
    }
}

void buf_pool_drain(void)
{
    drain(&small);
    drain(&big);
}

int buf_read_file(struct buf **b, int fd, off_t *off, off_t *left)
{
    if (!*b && !(*b = buf_get()))
        return SY_ERR;
    struct buf *in = *b;
    in->pos = in->last = 0;
    size_t want = *left < (off_t)in->size ? (size_t)*left : in->size;
    ssize_t n;
    do
        n = pread(fd, in->data, want, *off);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        if (n < 0)
            sy_log(LOG_LVL_CRIT, "pread() failed (%d: %s) while sending response to client",
                   errno, strerror(errno));
        else
            sy_log(LOG_LVL_ERR, "file was truncated while sending response to client");
        return SY_ERR;
    }
    in->last = (uint32_t)n;
    *off += n;
    *left -= n;
    return SY_OK;
}
