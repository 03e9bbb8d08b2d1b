/*
 * relay.h - one direction of an HTTP message body read into a buffer:
 * Content-Length, chunked (decoded in place) or delimited by close; and
 * chunked framing towards a receiver (chunk_out).
 *
 * Neither reads nor writes a socket: the reader fills the buffer, asks
 * relay_ready() what is there, passes it on and reports it with
 * relay_advance(). Pure bookkeeping, so it can be reasoned about (and
 * tested) on its own.
 */
#ifndef SY_PROXY_RELAY_H
#define SY_PROXY_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/buf.h"
#include "http/h1_parser.h"

/* Output framing of one direction: optional chunked encoding. */
struct chunk_out {
    char hdr[24];               /* "<hex>\r\n" of the chunk being written */
    unsigned hdr_len, hdr_off;
    uint64_t data_left;         /* payload bytes of this chunk not yet written */
    unsigned trl_off;           /* progress in the "\r\n" after the payload */
    int active;                 /* a chunk is being written */
    unsigned term_off;          /* progress in the terminator */
    int done;                   /* the last chunk was written */
    const char *term;           /* terminator with trailer fields ("0\r\nx: y\r\n\r\n");
                                   NULL: "0\r\n\r\n" */
    unsigned term_len;
};

/*
 * Chunked framing around payload: fill iov[] (room for 4) with [chunk header]
 * [payload] [CRLF] [last chunk] for `avail` bytes at `data`; `fin` says no
 * payload follows these bytes. A chunk once started covers exactly its size:
 * give the same bytes (and maybe more) again until they are written.
 */
int chunk_out_iov(struct chunk_out *co, const char *data, size_t avail, int fin,
                  struct iovec *iov);

/* Account `w` bytes written from chunk_out_iov(); returns the payload bytes
 * among them. co->done once the last chunk is out. */
size_t chunk_out_advance(struct chunk_out *co, size_t w);

enum relay_mode {
    RELAY_NONE,                 /* no body */
    RELAY_LENGTH,               /* Content-Length */
    RELAY_CHUNKED,              /* chunked, decoded and re-encoded */
    RELAY_EOF,                  /* delimited by the sender closing */
};

/* One direction of body bytes read into a buffer: the sender's framing
 * (Content-Length, chunked decoded in place, or close-delimited) and what
 * was passed on. Chunked framing towards a receiver is a chunk_out. */
struct relay {
    enum relay_mode mode;
    int in_done;                /* the sender's body is complete */
    uint64_t left;              /* RELAY_LENGTH: bytes not yet taken from the buffer */
    struct h1_chunked dec;
    size_t dec_avail;           /* RELAY_CHUNKED: decoded bytes at the buffer head */
    uint64_t moved;             /* payload bytes passed on */
};

/* Decode newly available chunked bytes at the head of `b` (only when nothing
 * decoded is pending). 0, or -1 for invalid chunked data. */
int relay_decode(struct relay *rl, struct buf *b);

/* Payload bytes of `b` ready to be passed on. */
size_t relay_ready(const struct relay *rl, const struct buf *b);

/* Account `w` payload bytes passed on; consumes them from `b`. */
void relay_advance(struct relay *rl, struct buf *b, size_t w);

/* Whether the sender's whole body was passed on. */
int relay_finished(const struct relay *rl);

#endif
