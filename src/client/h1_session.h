/*
 * h1_session.h - the HTTP/1.x protocol session behind a client connection:
 * reading request heads, keep-alive, pipelining, lingering close, and the
 * client-stream operations (http/stream.h) of its one request at a time.
 *
 * State machine (one enum, one dispatcher, h1_run()):
 *
 *   IDLE (no buffer) --bytes--> READ_HEAD --head ok--> http_request_run()
 *       --> local response: SEND --done--> keep-alive ? IDLE : LINGER/close
 *       --> a handler drives the stream (st.on_event set): the proxy reads the
 *           body and writes the response through the stream operations
 *   any error/timeout --> CLOSED (freed at the end of the loop iteration)
 */
#ifndef SY_CLIENT_H1_SESSION_H
#define SY_CLIENT_H1_SESSION_H

#include <sys/socket.h>

#include "client/listener.h"
#include "http/stream.h"
#include "proxy/relay.h"

enum h1_state {
    H1_S_IDLE = 0,      /* waiting for the first byte of a request; no buffer held */
    H1_S_READ_HEAD,     /* reading/parsing a request head; or a handler drives the stream */
    H1_S_SEND,          /* writing a locally generated response (head + memory/file body) */
    H1_S_DISCARD_BODY,  /* reading and dropping a request body before keep-alive */
    H1_S_LINGER,        /* response sent, waiting briefly for the client's FIN before close */
    H1_S_PROXY_PROTOCOL,/* listen ... proxy_protocol: waiting for the PROXY header, which
                           comes before anything else (TLS too); no buffer held */
    H1_S_LIMIT_DELAY,   /* request held on the session timer by limit_req (burst, no nodelay) */
    H1_S_CLOSED,        /* closed; freed at the end of the loop iteration */
};

const char *h1_state_name(enum h1_state s);

struct h1_session {
    struct client_conn cc;      /* the connection (socket, facts for variables) */
    struct client_stream st;    /* the current request's stream */
    enum h1_state state;
    struct buf *in;             /* client input; NULL while idle */
    struct timer timer;         /* client-side deadline of the current state */
    struct posted post;         /* re-run the state machine (pipelining, fairness) */
    int head_timer;             /* client_header_timeout armed for the head being read */
    uint64_t linger_deadline;   /* H1_S_LINGER: loop time when lingering_time is over */
    uint64_t linger_timeout;    /* H1_S_LINGER: lingering_timeout, the wait for each read */
    int pipelined_next;         /* the next request's head is already buffered ($pipe) */

    /* request body in (decoded from s->in for the stream's body_peek) */
    struct relay body;

    /* response out */
    char *out_head;             /* head bytes (arena) */
    size_t out_head_len, out_head_off;
    const char *out_body;       /* memory body (arena or static) */
    size_t out_body_len, out_body_off;
    int out_fd;                 /* file body (-1 none), owned */
    off_t out_file_off, out_file_left;
    struct buf *out_buf;        /* file bytes read for TLS (no sendfile); NULL otherwise */
    int out_chunked;            /* streamed body framed as chunked */
    struct chunk_out co;        /* the chunk being written */
    int out_last;               /* the handler gave the body's last byte */
    int out_done;               /* head, body and framing all written */
    unsigned char stat_reading; /* counted in stats "reading" (core/stats.h) */
    unsigned char bg_waiting;   /* response sent, waiting for background requests */
};

/* Accept every pending connection on `l` (called on readiness). */
void h1_on_accept(struct handle *h, uint32_t events);

/* Drive the session's state machine. May close the session. */
void h1_run(struct h1_session *s);

/* Close the client connection; `reason` goes to the debug log. Frees later. */
void h1_close(struct h1_session *s, const char *reason);

/* The id the next client connection gets (ids count connections accepted). */
uint64_t h1_next_session_id(void);

/* Number of open client connections of this worker (tunnels not included). */
extern unsigned h1_active_conns;

/*
 * Called with 1 when this worker reaches worker_connections (client
 * connections plus tunnels) and should stop accepting, so that other workers
 * take the new connections; the owner of the listeners (worker.c) resumes
 * when there is room again. NULL: nothing to pause (tests).
 */
extern void (*h1_accept_full)(void);

/* Close every idle keep-alive connection (graceful shutdown); returns open count left. */
unsigned h1_shutdown_idle(void);

/* Close every connection at once (fast shutdown, exit) and free the session table. */
void h1_close_all(void);

#endif
