/*
 * conn.h - a connected socket plus its transport (plain, or TLS: tls/tls.c).
 *
 * Protocol code (HTTP/1 session, upstream side, tunnel) embeds a struct conn,
 * sets conn.h.on_io, and reads and writes only through conn_recv/conn_send/
 * conn_writev, so the same code runs over any transport (decision 6).
 *
 * Readiness is edge-triggered: CONN_F_READY_R/W are set by events and cleared
 * only when the transport reports SY_AGAIN (or a short read proves the socket
 * drained), so callers always try the syscall first.
 */
#ifndef SY_CORE_CONN_H
#define SY_CORE_CONN_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/loop.h"

#define SY_OK    0
#define SY_ERR   (-1)
#define SY_AGAIN (-2)

#define CONN_F_READY_R   0x01u  /* a read may return data */
#define CONN_F_READY_W   0x02u  /* a write may make progress */
#define CONN_F_EOF       0x04u  /* peer closed its side (read returned 0) */
#define CONN_F_ERROR     0x08u  /* socket error seen */
#define CONN_F_REGISTERED 0x10u /* in epoll */
#define CONN_F_CONNECTING 0x20u /* non-blocking connect in progress */
#define CONN_F_RDHUP     0x40u  /* the peer's FIN was signalled: read until 0 */
/* TLS: a read waits for the socket to become writable (SSL_ERROR_WANT_WRITE in
 * SSL_read), or a write for it to become readable; conn_note_events() turns
 * that event into the readiness the blocked side waits for. */
#define CONN_F_WANT_W_FOR_R 0x80u
#define CONN_F_WANT_R_FOR_W 0x100u
#define CONN_F_HANDSHAKE  0x200u /* TLS handshake not finished */
#define CONN_F_PLAIN_ON_TLS 0x400u /* no TLS record on a TLS listener: plain HTTP (answered 400) */

struct conn;

struct xprt_ops {
    const char *name;
    ssize_t (*recv)(struct conn *c, void *buf, size_t len);
    ssize_t (*writev)(struct conn *c, const struct iovec *iov, int iovcnt);
    void (*shutdown_wr)(struct conn *c);
    void (*release)(struct conn *c);   /* free transport state (SSL*); fd untouched */
};

extern const struct xprt_ops xprt_plain;

/* A peer address: IPv4 or IPv6 (28 bytes, not sockaddr_storage's 128: this is
 * in every connection, idle ones included). */
union conn_addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

struct conn {
    struct handle h;            /* fd + on_io; epoll data.ptr points here */
    const struct xprt_ops *xprt;
    void *xprt_ctx;             /* owned transport state (SSL *) */
    unsigned flags;             /* CONN_F_* */
    int last_errno;             /* errno of the last SY_ERR */
    union conn_addr peer;
    socklen_t peerlen;
};

/* Set up `c` around connected fd `fd` (non-blocking already) with the plain transport. */
void conn_init(struct conn *c, int fd, handle_fn *on_io);

/* Apply event bits to the readiness flags; call first in every on_io. */
static inline void conn_note_events(struct conn *c, uint32_t ev)
{
    /* EPOLLIN 0x1, EPOLLOUT 0x4, EPOLLERR 0x8, EPOLLHUP 0x10, EPOLLRDHUP 0x2000 */
    if (ev & (0x001u | 0x2000u | 0x008u | 0x010u))
        c->flags |= CONN_F_READY_R | (c->flags & CONN_F_WANT_R_FOR_W ? CONN_F_READY_W : 0);
    if (ev & (0x2000u | 0x010u))
        c->flags |= CONN_F_RDHUP;
    if (ev & (0x004u | 0x008u | 0x010u))
        c->flags |= CONN_F_READY_W | (c->flags & CONN_F_WANT_W_FOR_R ? CONN_F_READY_R : 0);
}

/*
 * Read up to `len` bytes. Returns >0 bytes, 0 on EOF (sets CONN_F_EOF),
 * SY_AGAIN (clears READY_R) or SY_ERR (last_errno set).
 */
ssize_t conn_recv(struct conn *c, void *buf, size_t len);

/* Write (gathering). Returns bytes written (may be partial), SY_AGAIN (clears READY_W) or SY_ERR. */
ssize_t conn_writev(struct conn *c, const struct iovec *iov, int iovcnt);
ssize_t conn_send(struct conn *c, const void *buf, size_t len);

/* Close the fd (epoll forgets it) and release the transport. Idempotent. */
void conn_close_fd(struct conn *c);

/* Format the peer address as "1.2.3.4" / "::1" (no port); returns length. */
size_t conn_peer_ip(const struct conn *c, char *out, size_t cap);
unsigned conn_peer_port(const struct conn *c);

#endif
