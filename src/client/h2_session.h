/*
 * h2_session.h - the HTTP/2 protocol session (RFC 9113) behind a client
 * connection, on nghttp2: frames, HPACK, flow control and stream states are
 * nghttp2's; this layer turns each request stream into a client stream
 * (http/stream.h) that the protocol-neutral request phases run, and moves
 * bytes between the socket and nghttp2 with backpressure both ways.
 *
 * Memory: the receive window of a stream opens only as its handler consumes
 * body bytes (no automatic WINDOW_UPDATE), so a stream holds at most one
 * buffer of request body, and a slow upstream stalls only its own stream.
 * Response bytes wait in one buffer per stream until nghttp2 frames them
 * within the peer's windows.
 */
#ifndef SY_CLIENT_H2_SESSION_H
#define SY_CLIENT_H2_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "http/stream.h"

struct h2_session;
struct h2_stream;

/* The client connection preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"). */
#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24

/*
 * Whether `data` (len bytes, the first bytes of a plain connection) starts
 * the HTTP/2 preface: 1 yes, 0 no, -1 not enough bytes to tell.
 */
int h2_is_preface(const char *data, size_t len);

/*
 * Take over a client connection as HTTP/2: `cc` is copied (socket,
 * transport, facts; the caller forgets its fd), `data`/`len` are bytes
 * already read from it (the preface, with h2c). The socket's epoll
 * registration is pointed at the new session. 0, or -1 (the caller closes).
 */
int h2_session_start(const struct client_conn *cc, const char *data, size_t len);

/* Open HTTP/2 connections of this worker. */
extern unsigned h2_active_conns;

/* Graceful shutdown: GOAWAY on every connection; idle ones close now, the
 * others when their streams end. Returns the connections left open. */
unsigned h2_shutdown_idle(void);

/* Close every HTTP/2 connection at once (fast shutdown, exit). */
void h2_close_all(void);

#endif
