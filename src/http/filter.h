/*
 * filter.h - response filters: a protocol-neutral layer between the
 * handlers (proxy, static files, return, error pages) and a client stream's
 * response operations (stream.h), so that a transformation of response
 * bodies (compression today; ssi, charset, limit_rate later) is written once
 * for HTTP/1.1 and HTTP/2 alike.
 *
 * How it works. When a request may be filtered (some filter type's
 * wanted() says so for its location), http_filters_install() puts a chain
 * in front of the stream: st->ops becomes the chain's operations table,
 * which forwards everything to the protocol's own table except the
 * response operations:
 *   - send_head(length): every filter type's open() sees the head (status,
 *     r->resp, length, whether the response has a body) and either stays out
 *     or returns a filter that takes the body; it may edit the head
 *     (Content-Encoding, Content-Length dropped, length unknown, ETag, Vary).
 *     The handler's writes then go through the filters in order, the last one
 *     writing to the protocol (resp_filter_next_write);
 *   - send_memory / send_file (local responses): the same open(); when a
 *     filter takes the body, the chain drives it itself -- the memory, or
 *     the file read one buffer at a time (bounded memory, never the whole
 *     file), written through the filters with backpressure -- and ends the
 *     request with finish(). When none does, the protocol sends it as before
 *     (sendfile stays possible).
 * A filter that holds output it could not write (the client was not
 * writable) is given resume() when the client is writable again, before the
 * handler's own on_event runs.
 *
 * Contracts for a filter's write(): the same as stream_ops.write -- it takes
 * what it can and returns the count of input bytes taken, SY_AGAIN when it
 * took nothing because the client side is full (the handler's on_event runs
 * when there is room), SY_ERR when the stream ended. It never returns 0 for
 * a call that gave it bytes or `last` unless it is done. write_done() is 1
 * once the whole body, framing included, is with the protocol.
 *
 * Memory: a filter's state is its own (malloc or pooled buffers) and is
 * released with close(), called exactly once when the request ends (or its
 * head is replaced by an error page that was never written).
 */
#ifndef SY_HTTP_FILTER_H
#define SY_HTTP_FILTER_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "http/stream.h"

struct resp_filter;

/* What a filter type's open() is told about the response. */
struct resp_filter_head {
    int64_t length;             /* body length, or STREAM_LEN_UNKNOWN; the filter may set it */
    int header_only;            /* 1xx, 204, 304: a response without a body */
    int head_request;           /* HEAD: the head of a response with a body, but no body
                                   follows (edit the head as for GET; take no body) */
    int streaming;              /* the body comes from a source that may pause (the proxy):
                                   flush what was written when the source pauses */
};

struct resp_filter_type {
    const char *name;
    /* May this filter act on requests of `lc`? (No chain when none may.) */
    int (*wanted)(const struct loc_conf *lc);
    /* The head is about to go: NULL to stay out, or a new filter to take
     * the body (its first member a struct resp_filter). May edit r->resp
     * and h->length whether or not it takes the body. */
    struct resp_filter *(*open)(struct client_stream *st, struct resp_filter_head *h);
    ssize_t (*write)(struct resp_filter *f, const struct iovec *iov, int n, int last);
    int (*write_done)(struct resp_filter *f);
    /* The client is writable: write what was held back. SY_OK (nothing
     * held any more), SY_AGAIN, SY_ERR (the stream ended). */
    int (*resume)(struct resp_filter *f);
    /* Release everything the filter holds (called once). */
    void (*close)(struct resp_filter *f);
};

struct resp_filter {
    const struct resp_filter_type *type;
    struct resp_filter *next;   /* toward the client; NULL: the protocol */
    struct client_stream *st;
};

/* The chain of one request (opaque outside filter.c). */
struct filter_chain;

/*
 * Put the chain in front of `st` when a filter may act on the request's
 * current location (idempotent; a no-op when none may). Called before a
 * handler answers: the proxy handler and every local response.
 */
void http_filters_install(struct client_stream *st);

/* The same whatever the location says: the response itself asks for a
 * filter (an upstream's X-Accel-Limit-Rate). Before the head goes. */
void http_filters_require(struct client_stream *st);

/* Take the chain away (the protocol's ops back) and close its filters.
 * Called by http_request_release(), and before a tunnel takes the stream. */
void http_filters_release(struct client_stream *st);

/*
 * Per-request notes a handler leaves for the filters before the head goes
 * (0 when no chain is installed). FILTER_NOTE_VARY: a precompressed variant
 * exists (gzip_static on), so Vary: Accept-Encoding applies (gzip_vary).
 */
#define FILTER_NOTE_VARY 0x1u
void http_filters_note(struct client_stream *st, unsigned note);
unsigned http_filters_notes(const struct client_stream *st);

/* The protocol's own operations of `st` (st->ops when no chain is in front). */
const struct stream_ops *http_filters_proto(const struct client_stream *st);

/* The filter of `type` in the current response's chain, or NULL. */
struct resp_filter *http_filters_find(const struct client_stream *st,
                                      const struct resp_filter_type *type);

/* A filter writes downstream: to the next filter or to the protocol. */
ssize_t resp_filter_next_write(struct resp_filter *f, const struct iovec *iov, int n, int last);
/* Downstream has the whole body. */
int resp_filter_next_done(struct resp_filter *f);

#endif
