/*
 * relay.c - body relaying bookkeeping (see relay.h).
 */
#include "proxy/relay.h"

#include <stdio.h>
#include <string.h>

static const char last_chunk[] = "0\r\n\r\n";

/* Decode newly available chunked bytes at the buffer head (when nothing
 * decoded is pending). Returns 0, or -1 for invalid chunked data. */
int relay_decode(struct relay *rl, struct buf *b)
{
    if (rl->mode != RELAY_CHUNKED || rl->in_done || rl->dec_avail || !b || buf_len(b) == 0)
        return 0;
    size_t len = buf_len(b);
    ssize_t rc = h1_decode_chunked(&rl->dec, buf_head(b), &len);
    if (rc == -1)
        return -1;
    rl->dec_avail = len;
    if (rc >= 0) {
        rl->in_done = 1;
        b->last = b->pos + (uint32_t)len + (uint32_t)rc;
    } else {
        b->last = b->pos + (uint32_t)len;
    }
    if (b->pos == b->last)
        b->pos = b->last = 0;
    return 0;
}

/* Payload bytes ready to send from `b`. */
size_t relay_ready(const struct relay *rl, const struct buf *b)
{
    if (!b)
        return 0;
    switch (rl->mode) {
    case RELAY_LENGTH:
        return buf_len(b) < rl->left ? buf_len(b) : (size_t)rl->left;
    case RELAY_CHUNKED:
        return rl->dec_avail;
    case RELAY_EOF:
        return buf_len(b);
    case RELAY_NONE:
        break;
    }
    return 0;
}

int chunk_out_iov(struct chunk_out *co, const char *data, size_t avail, int fin,
                  struct iovec *iov)
{
    int n = 0;
    if (co->done)
        return 0;
    if (!co->active && avail) {
        co->hdr_len = (unsigned)snprintf(co->hdr, sizeof(co->hdr), "%zx\r\n", avail);
        co->hdr_off = 0;
        co->data_left = avail;
        co->trl_off = 0;
        co->active = 1;
    }
    if (co->active) {
        if (co->hdr_off < co->hdr_len) {
            iov[n].iov_base = co->hdr + co->hdr_off;
            iov[n++].iov_len = co->hdr_len - co->hdr_off;
        }
        if (co->data_left) {
            iov[n].iov_base = (char *)data;
            iov[n++].iov_len = (size_t)co->data_left;
        }
        iov[n].iov_base = (char *)"\r\n" + co->trl_off;
        iov[n++].iov_len = 2 - co->trl_off;
    }
    /* The last chunk goes with the chunk that carries the last payload. */
    if (fin && (co->active ? co->data_left == avail : avail == 0)) {
        const char *term = co->term ? co->term : last_chunk;
        unsigned term_len = co->term ? co->term_len : (unsigned)sizeof(last_chunk) - 1;
        iov[n].iov_base = (char *)term + co->term_off;
        iov[n++].iov_len = term_len - co->term_off;
    }
    return n;
}

size_t chunk_out_advance(struct chunk_out *co, size_t w)
{
    size_t payload = 0;
    while (w > 0) {
        if (co->active) {
            size_t h = co->hdr_len - co->hdr_off;
            if (h) {
                size_t k = w < h ? w : h;
                co->hdr_off += (unsigned)k;
                w -= k;
                continue;
            }
            if (co->data_left) {
                size_t k = w < co->data_left ? w : (size_t)co->data_left;
                co->data_left -= k;
                payload += k;
                w -= k;
                continue;
            }
            size_t t = 2 - co->trl_off;
            size_t k = w < t ? w : t;
            co->trl_off += (unsigned)k;
            w -= k;
            if (co->trl_off == 2)
                co->active = 0;
            continue;
        }
        unsigned term_len = co->term ? co->term_len : (unsigned)sizeof(last_chunk) - 1;
        size_t t = term_len - co->term_off;
        size_t k = w < t ? w : t;
        co->term_off += (unsigned)k;
        w -= k;
        if (co->term_off == term_len)
            co->done = 1;
    }
    return payload;
}

/* Account `w` payload bytes passed on. */
void relay_advance(struct relay *rl, struct buf *b, size_t w)
{
    if (w == 0)
        return;
    rl->moved += w;
    if (rl->mode == RELAY_LENGTH)
        rl->left -= w;
    else if (rl->mode == RELAY_CHUNKED)
        rl->dec_avail -= w;
    buf_consume(b, w);
}

/* Whether the sender's whole body was passed on. */
int relay_finished(const struct relay *rl)
{
    switch (rl->mode) {
    case RELAY_NONE:
        return 1;
    case RELAY_LENGTH:
        return rl->left == 0;
    case RELAY_CHUNKED:
    case RELAY_EOF:
        return rl->in_done && rl->dec_avail == 0;
    }
    return 0;
}
