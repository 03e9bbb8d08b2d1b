/*
 * stream.h - the seam between a client protocol and the request layer
 * (ARCHITECTURE.md, decision 10).
 *
 * A client connection (struct client_conn) holds the facts of the accepted
 * socket: peer and local address, what a PROXY header said, the transport
 * (plain or TLS), the connection number and request count. A protocol
 * session (HTTP/1 today; HTTP/2 next) lives behind it and creates one client
 * stream (struct client_stream) per request. The stream owns the
 * protocol-neutral struct request; handlers (proxy, static files, return,
 * error pages), variables, limits and the access log use only the stream,
 * its connection's facts and the operations table below -- never protocol
 * internals, never protocol bytes.
 *
 * Conventions of the operations: they never free the stream synchronously
 * unless they say so ("may end the stream"); a caller that got SY_ERR or
 * called abort()/finish must not touch the stream again.
 */
#ifndef SY_HTTP_STREAM_H
#define SY_HTTP_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/buf.h"
#include "core/conn.h"
#include "core/proxy_protocol.h"
#include "core/stats.h"
#include "http/request.h"

struct client_stream;
struct listener;
struct tunnel_end; /* proxy/tunnel_end.h; only passed through here */

/* Protocols a client connection can speak. */
enum client_proto {
    CLIENT_PROTO_H1 = 1,
    CLIENT_PROTO_H2 = 2,
};

/*
 * The accepted connection: the facts variables and logs need, whatever
 * protocol runs on it. `c` is the socket; only the protocol session reads
 * and writes it.
 */
struct client_conn {
    struct conn c;              /* the client socket and its transport */
    enum client_proto proto;
    uint64_t id;                /* $connection */
    unsigned requests;          /* $connection_requests */
    uint64_t created_ms;        /* for keepalive_time */
    const struct listen_conf *listen; /* from the generation current at accept */
    struct listener *lst;       /* the listening socket (runtime) */
    union conn_addr local;      /* our address ($server_addr), filled lazily (IPv4/IPv6:
                                   client listeners are never unix sockets) */
    socklen_t locallen;
    struct pp_addrs pp;         /* what the PROXY protocol header said (family 0: nothing) */
};

/* Our address, asked of the kernel on first use. */
const struct sockaddr *client_conn_local(struct client_conn *cc);

/* How the length of a response body is known to the protocol. */
#define STREAM_LEN_UNKNOWN (-1)  /* streamed: HTTP/1.1 chunked (or close), h2 DATA until END_STREAM */

/* What a client stream's reading of the request body says. */
enum stream_body {
    STREAM_BODY_DATA = 0,       /* *out holds decoded body bytes */
    STREAM_BODY_AGAIN,          /* nothing now; the handler's on_event runs when there is */
    STREAM_BODY_DONE,           /* the whole body was read (and consumed) */
    STREAM_BODY_BAD,            /* malformed body framing (bad chunk): answer 400 or abort */
    STREAM_BODY_CLOSED,         /* the client closed or failed mid-body */
    STREAM_BODY_ERROR,          /* the stream already ended (out of memory): stop */
};

struct stream_ops {
    /*
     * Request body in. peek: decoded body bytes available now (reads the
     * client when none are buffered); the bytes stay until consume() says how
     * many were used. With HTTP/2, consume() is what opens the flow-control
     * window, so a slow upstream stalls only its own stream.
     */
    enum stream_body (*body_peek)(struct client_stream *st, struct str *out);
    void (*body_consume)(struct client_stream *st, size_t n);
    /* Decoded body bytes already buffered, without reading (0 if none). */
    size_t (*body_buffered)(struct client_stream *st, const char **p);

    /*
     * Trailer fields: those the client sent after its body (NULL/0 when none
     * or the protocol does not carry them), valid until the request ends;
     * and, when not NULL, a way to send the response's trailers: before the
     * last write(), the fields are copied (HTTP/2 sends them in a HEADERS
     * frame after the DATA; HTTP/1 leaves this NULL, as nginx sends none).
     */
    size_t (*request_trailers)(struct client_stream *st, const struct h1_header **out);
    int (*send_trailers)(struct client_stream *st, const struct h1_header *t, size_t n);

    /* "100 Continue" (the only interim response sent locally). */
    void (*send_continue)(struct client_stream *st);

    /*
     * Response out, streamed (the proxy). head: r->status and r->resp are
     * the response; `length` is the body length, STREAM_LEN_UNKNOWN, or 0 for
     * none. The head may be held and sent with the first body bytes.
     * write: takes what fits now and returns the count (possibly partial),
     * SY_AGAIN when nothing fits (on_event runs when more fits), SY_ERR when
     * the stream ended. `last` says the body ends with these bytes; the call
     * that takes the last byte (or write(NULL, 0, last=1)) completes it.
     * write_done() returns 1 once the stream has taken the whole body
     * (framing included): the handler is done with it then, though bytes may
     * still wait in the stream for the client's windows.
     */
    int (*send_head)(struct client_stream *st, int64_t length);
    ssize_t (*write)(struct client_stream *st, const struct iovec *iov, int n, int last);
    int (*write_done)(struct client_stream *st);

    /*
     * Response out, local (return, error pages, static files): head plus a
     * memory body (lives in the request arena or is static) or a file body
     * (fd owned by the stream from here; `off`,`len`). The stream sends it
     * all and then ends the request (http_request_done). May end the stream.
     */
    void (*send_memory)(struct client_stream *st, const char *body, size_t len);
    void (*send_file)(struct client_stream *st, int fd, off_t off, off_t len);

    /* The client-side deadline of what the handler waits for (body read, send). */
    void (*set_timeout)(struct client_stream *st, uint64_t ms);
    void (*stop_timeout)(struct client_stream *st);

    /* The client went away (its FIN or an error was seen). */
    int (*client_gone)(struct client_stream *st);

    /* The stream's response is complete: log, release, keep-alive. May end the stream. */
    void (*finish)(struct client_stream *st);

    /* End the stream now: HTTP/1 closes the connection, HTTP/2 sends RST_STREAM. */
    void (*abort)(struct client_stream *st, const char *reason);

    /* Hold the request for `ms` (limit_req delay), then run http_phase_resume(). */
    void (*hold)(struct client_stream *st, uint64_t ms);

    /* Optional (HTTP/1): the background requests this request started
     * (st->bg_wait, proxy_cache_background_update) have all ended; a
     * request whose response was sent meanwhile ends now, as nginx ends the
     * main request only after its background sub-requests. */
    void (*background_done)(struct client_stream *st);

    /*
     * Protocol switch, accepted by the upstream (101): r->status and r->resp
     * are the answer. upgrade_head: the protocol's answer to the client,
     * made while the request still lives (HTTP/1: the 101 head, malloc'd in
     * `*prefix`, for the tunnel to write first). -1: the stream was ended.
     * take_tunnel_side: hand the client side over to the tunnel. HTTP/1
     * gives its socket: `*sock` gets the connection (fd and transport),
     * `*leftover` the bytes read after the request head (or NULL), and the
     * call returns NULL (the tunnel makes a socket end). HTTP/2 returns a
     * ready-made stream end (the tunnel's, proxy/tunnel_end.h: opaque here).
     * The request ends with the call, without an access log line (the
     * tunnel writes its own).
     */
    int (*upgrade_head)(struct client_stream *st, char **prefix, size_t *prefix_len);
    struct tunnel_end *(*take_tunnel_side)(struct client_stream *st, struct conn *sock,
                                           struct buf **leftover);
};

/*
 * One request on a client connection. HTTP/1 has one per connection at a
 * time; HTTP/2 one per stream.
 */
struct client_stream {
    struct request req;         /* the protocol-neutral request */
    int req_active;             /* req is initialised (arena, rt ref) */
    int stat_writing;           /* counted in stats "writing" (stream_stat_request) */
    struct client_conn *conn;   /* borrowed: the connection it arrived on */
    const struct stream_ops *ops;

    /* The handler that drives the stream (the proxy): called when the
     * client side is ready (read/write) or its deadline passed, and when
     * the stream is ended under it (free what it holds; the stream is gone). */
    void (*on_event)(struct client_stream *st, int timed_out);
    void (*on_abort)(struct client_stream *st);

    /* Response filters of the current request (http/filter.h), NULL when
     * none: while set, `ops` is the chain's table in front of the protocol's. */
    struct filter_chain *filters;

    /* Background requests started by this request still running (only for
     * a protocol with background_done; http/subrequest.h). */
    unsigned bg_wait;
};

/* Log context for error lines: ", client: 1.2.3.4, server: x, request: \"GET / HTTP/1.1\"". */
void stream_log_ctx(struct client_stream *st, char *out, size_t cap);

/* A client request starts on `st`: counted in the shared stats (requests,
 * writing) until http_request_release(). Sub-requests are not counted. */
static inline void stream_stat_request(struct client_stream *st)
{
    stats_inc(&sy_stats->requests);
    stats_add(&sy_stats->writing, 1);
    st->stat_writing = 1;
}

/* $connection of the stream's client connection, for "*N" in log lines. */
static inline unsigned long long stream_conn_id(const struct client_stream *st)
{
    return (unsigned long long)st->conn->id;
}

#endif
