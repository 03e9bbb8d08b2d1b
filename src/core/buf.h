/*
 * buf.h - pooled I/O buffers. One size class (BUF_SIZE); each worker keeps a
 * bounded free list so steady traffic does not hit malloc, and idle
 * connections hold no buffer at all (ARCHITECTURE decision 3): take one when
 * a read is about to happen, give it back the moment it is drained.
 *
 * Bytes live in data[pos..last); data[0..pos) is consumed space that
 * buf_compact() reclaims.
 */
#ifndef SY_CORE_BUF_H
#define SY_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BUF_SIZE (16 * 1024)

struct buf {
    uint32_t pos;               /* first unconsumed byte */
    uint32_t last;              /* end of valid bytes */
    uint32_t size;              /* capacity of data[] */
    struct buf *next_free;      /* free-list link while pooled */
    char data[];
};

/*
 * The bulk size class: a tunnel that fills a BUF_SIZE buffer in one read is
 * moving bulk data; reading 64 KiB at a time quarters its syscalls. Held only
 * while bytes are in flight, like every buffer.
 */
#define BUF_BIG_SIZE (64 * 1024)

/* Take a buffer (pos = last = 0). NULL on allocation failure. */
struct buf *buf_get(void);
/* Take a BUF_BIG_SIZE buffer; buf_put() returns either kind. */
struct buf *buf_get_big(void);
/* Return a buffer to the pool; accepts NULL. */
void buf_put(struct buf *b);

static inline size_t buf_len(const struct buf *b)
{
    return b->last - b->pos;
}
static inline size_t buf_room(const struct buf *b)
{
    return b->size - b->last;
}
static inline char *buf_head(struct buf *b)
{
    return b->data + b->pos;
}
static inline char *buf_tail(struct buf *b)
{
    return b->data + b->last;
}
/* Consume n bytes; resets to empty when everything is consumed. */
static inline void buf_consume(struct buf *b, size_t n)
{
    b->pos += (uint32_t)n;
    if (b->pos == b->last)
        b->pos = b->last = 0;
}
/* Move unconsumed bytes to the start of data[]. */
void buf_compact(struct buf *b);

/* Pool counters, for the status endpoint and tests ("idle => 0 in use"). */
struct buf_stats {
    uint64_t in_use;            /* handed out, not yet returned */
    uint64_t pooled;            /* on the free list */
    uint64_t allocs;            /* malloc calls so far */
};
void buf_stats(struct buf_stats *out);

/* Free the pooled buffers (worker exit). */
void buf_pool_drain(void);

/*
 * Read the next piece of a file body into *b (taken with buf_get() when
 * NULL, emptied first): at most *left bytes from *off, both advanced.
 * SY_OK, or SY_ERR with nginx's line logged (pread failed, or the file
 * was truncated while being sent).
 */
int buf_read_file(struct buf **b, int fd, off_t *off, off_t *left);

#endif
