/*
 * h1_server.h - the client side of HTTP/1.x: accepting, reading request
 * heads, routing, local responses, keep-alive, pipelining and closing.
 *
 * State machine (one enum, one dispatcher, h1_run()):
 *
 *   IDLE (no buffer) --bytes--> READ_HEAD --head ok--> route + rewrite phase
 *       --> return/static/error: SEND --done--> keep-alive ? IDLE : LINGER/close
 *       --> proxy_pass: PROXY (proxy.c drives both sockets) --done--> same as SEND
 *   any error/timeout --> CLOSED (freed at the end of the loop iteration)
 */
#ifndef SY_HTTP_H1_SERVER_H
#define SY_HTTP_H1_SERVER_H

#include <sys/socket.h>

#include "http/request.h"

struct listener;

/* A listening socket of the worker (runtime side of a listen_conf). */
struct listener {
    struct handle h;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const char *text;           /* "127.0.0.1:8080" (owned by the worker) */
    unsigned listen_index;      /* index into the current generation's listens */
    int paused;                 /* out of worker_connections: not accepting */
};

/* Accept every pending connection on `l` (called on readiness). */
void h1_on_accept(struct handle *h, uint32_t events);

/* Drive the session's state machine. May close the session. */
void h1_run(struct h1_session *s);

/*
 * Answer the current request with `status` locally: applies error_page
 * (internal redirect, named location or redirect) or sends the standard page.
 * Only valid before any response byte was sent. May close the session.
 */
void h1_respond_status(struct h1_session *s, int status);

/*
 * The current request's response is complete (proxy.c calls this after the
 * last body byte was written): logs, then keep-alive or close. May free `s`.
 */
void h1_request_done(struct h1_session *s);

/* Close the client connection; `reason` goes to the debug log. Frees later. */
void h1_close(struct h1_session *s, const char *reason);

/* (Re)arm the client-side timer for `ms`. */
void h1_set_timer(struct h1_session *s, uint64_t ms);

/*
 * Make a redirect target starting with '/' absolute as nginx does
 * ("http://host[:port]/x"); other values are returned unchanged. The result
 * lives in the request arena.
 */
struct str h1_absolute_location(struct h1_session *s, struct str loc);

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

/* Log context for error lines: ", client: 1.2.3.4, server: x, request: \"GET / HTTP/1.1\"". */
void h1_log_ctx(struct h1_session *s, char *out, size_t cap);

/* Close every idle keep-alive connection (graceful shutdown); returns open count left. */
unsigned h1_shutdown_idle(void);

/* Close every connection at once (fast shutdown, exit) and free the session table. */
void h1_close_all(void);

#endif
