/*
 * h2_internal.h - what h2_session.c (the connection) and h2_stream.c (one
 * request stream and its client-stream operations) share. Not for other
 * modules: they use h2_session.h.
 */
#ifndef SY_CLIENT_H2_INTERNAL_H
#define SY_CLIENT_H2_INTERNAL_H

#include <nghttp2/nghttp2.h>

#include "client/h2_session.h"
#include "core/buf.h"
#include "core/loop.h"

#define H2_ID_GAPS 8            /* skipped client stream id ranges remembered */

/* How a stream's response body is produced. */
enum h2_body_kind {
    H2_BODY_NONE = 0,           /* no body (HEADERS carries END_STREAM) */
    H2_BODY_STREAM,             /* written by the handler (write()) */
    H2_BODY_MEMORY,             /* a memory body (local responses) */
    H2_BODY_FILE,               /* a file body (static files) */
};

struct h2_stream {
    struct client_stream st;    /* the protocol-neutral request (first member) */
    struct h2_session *sess;
    int32_t id;
    struct h2_stream *next, *prev; /* the session's streams */

    /* request head, collected from HEADERS/CONTINUATION */
    struct h1_header *hdrs;     /* regular fields (arena) */
    size_t nhdrs, caphdrs;
    struct str method, scheme, authority, path, protocol;
    size_t head_bytes;          /* decoded field bytes so far (HPACK bomb bound) */
    int head_too_large;         /* a field or the list exceeded the limits */
    int head_bad;               /* a field nghttp2 let through that we refuse */
    int started;                /* the request runs (phases called) */
    int client_done;            /* END_STREAM received */
    int reset;                  /* the stream ended under us (RST_STREAM, connection gone) */

    /* request body: DATA not consumed by the handler yet */
    struct buf *in;

    /* response */
    enum h2_body_kind body;
    int submitted;              /* response HEADERS submitted */
    int deferred;               /* the data source said "deferred": resume on new bytes */
    struct buf *out;            /* H2_BODY_STREAM: bytes written, not yet framed */
    int out_eof;                /* the handler gave the last byte */
    int writer_blocked;         /* write() said "again": wake the handler on drain */
    const char *mem;            /* H2_BODY_MEMORY */
    size_t mem_len, mem_off;
    int fd;                     /* H2_BODY_FILE (owned), -1 none */
    off_t file_off, file_left;
    int end_sent;               /* END_STREAM sent: the response is complete */

    int ws;                     /* extended CONNECT with :protocol websocket (RFC 8441) */
    struct h1_header *rtrailers; /* the client's trailer fields (arena) */
    size_t nrtrailers, caprtrailers;
    nghttp2_nv *trailer_nv;     /* the response's trailer fields, sent after the DATA */
    size_t ntrailer_nv;
    struct h2_tunnel_end *tend; /* the tunnel's end once the stream became a tunnel */

    struct timer timer;         /* client-side deadline, or the limit_req hold */
    int holding;                /* the timer is a limit_req hold */
    struct posted post;         /* wake the handler */
};

/* nghttp2's output frame buffer, in pages of its own so an idle connection
 * can give them back to the kernel (h2_session.c, the allocator). */
#define H2_BIG_ALLOC 8192
#define H2_MAX_BIG 4

struct h2_session {
    struct client_conn cc;      /* the connection (first member) */
    nghttp2_session *ng;
    nghttp2_mem mem;            /* nghttp2's allocator for this session */
    struct { void *p; size_t len; } big[H2_MAX_BIG]; /* mmap'd allocations */
    unsigned nbig;
    int big_released;           /* their pages were given back (idle) */
    const struct generation *srv_gen; /* the generation srv was found in */
    const struct server_conf *srv; /* the connection's server: SNI's, else the default */
    struct h2_stream *streams;  /* open request streams */
    unsigned nstreams;
    struct buf *out;            /* framed bytes not yet written to the socket */
    struct timer timer;         /* idle (keepalive_timeout) deadline */
    struct posted post;         /* flush and re-run after the current batch */
    struct h2_session *next, *prev; /* every session of the worker */
    int closed;                 /* closing; freed at the end of the loop iteration */
    int goaway;                 /* GOAWAY submitted: close when streams are done */
    int in_callback;            /* inside nghttp2_session_mem_recv/mem_send */
    uint32_t window;            /* the per-stream receive window we announce */
    char flood_logged;          /* a flood/abuse line was logged for this connection */
    int calm;                   /* GOAWAY ENHANCE_YOUR_CALM queued: draining, then close */
    int shut;                   /* our side shut down after the GOAWAY: reading to the end */
    unsigned early_resets;      /* streams the client reset before their response ended */
    unsigned completed;         /* responses sent in full */
    unsigned empty_data;        /* DATA frames without payload or END_STREAM */
    /* The client's first frame (h2_feed): the magic's bytes fed so far, then
     * the first frame header's first 5 bytes held until its type and flags
     * are known. */
    uint8_t first_off, first_hn, first_done;
    char first_hdr[5];
    /* Client stream ids: the highest opened and the ranges skipped below it
     * (implicitly closed: a HEADERS there is a connection error, RFC 9113
     * 5.1.1), the last H2_ID_GAPS of them. */
    int32_t max_id;
    struct { int32_t from, to; } gaps[H2_ID_GAPS];
    unsigned ngaps;
};

/* Abuse bounds of one connection (docs/limits.md). */
#define H2_MAX_EARLY_RESETS 100     /* ... beyond the completed responses (rapid reset) */
#define H2_MAX_EMPTY_DATA 100       /* empty DATA frames (CVE-2019-9518) */
#define H2_CALM_DRAIN_MS 2000       /* time to deliver the GOAWAY before closing, renewed
                                       while the client reads what is queued */
#define H2_TUNNEL_LINGER_MS 5000    /* a tunnel's stream we ended waits this long for the
                                       client's END_STREAM, then is reset */

void h2_session_count_request(struct h2_session *sess);
const struct server_conf *h2_session_server(struct h2_session *sess);
void h2_session_calm(struct h2_session *sess, const char *why);

/* h2_tunnel_end.c: a stream as one end of a tunnel (WebSocket over HTTP/2) */
struct h2_tunnel_end;
struct tunnel_end *h2_tunnel_end_new(struct h2_stream *hs);
void h2_tunnel_end_ready(struct h2_stream *hs, unsigned events);
void h2_tunnel_end_stream_gone(struct h2_stream *hs);

/* h2_stream.c */
struct h2_stream *h2_stream_new(struct h2_session *sess, int32_t id);
int h2_stream_header(struct h2_stream *hs, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen);
int h2_stream_trailer(struct h2_stream *hs, const uint8_t *name, size_t namelen,
                      const uint8_t *value, size_t valuelen);
void h2_stream_head_done(struct h2_stream *hs, int end_stream);
void h2_stream_data(struct h2_stream *hs, const uint8_t *data, size_t len);
void h2_stream_end(struct h2_stream *hs);
void h2_stream_closed(struct h2_stream *hs, uint32_t error_code);
void h2_stream_wake(struct h2_stream *hs);

/* h2_session.c */
void h2_session_schedule(struct h2_session *sess);
void h2_session_log_ctx(struct h2_session *sess, char *out, size_t cap);
void h2_session_stream_gone(struct h2_session *sess, struct h2_stream *hs);

#endif
