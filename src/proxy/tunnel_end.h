/*
 * tunnel_end.h - one end of a tunnel: what the relay (tunnel.c) reads from
 * and writes to, through a small table of operations.
 *
 * The relay knows nothing of sockets, epoll or protocols. An end:
 *   - hands out the bytes its peer sent (recv), and says when there are more
 *     by calling tunnel_end_ready(end, TUNNEL_END_R): a socket end from its
 *     epoll handler; a stream end (HTTP/2, RFC 8441) from its session, when
 *     DATA arrives;
 *   - takes what fits of the bytes for its peer (writev): a socket end what
 *     the socket buffer takes, a stream end what the stream and connection
 *     flow-control windows allow. When nothing fits it returns SY_AGAIN and
 *     later calls tunnel_end_ready(end, TUNNEL_END_W) (EPOLLOUT; WINDOW_UPDATE);
 *   - ends its write side after the last byte (shutdown_wr: FIN; END_STREAM);
 *   - is closed when the tunnel is over (close: close(2); RST_STREAM unless
 *     the stream already ended both ways).
 *
 * Readiness lives in the end (`ready`), so the relay tests a bit before it
 * takes a buffer or makes a call: an idle tunnel holds no buffer and no
 * wake-up costs a wasted syscall. The end keeps the bits honest: it sets them
 * through tunnel_end_ready() and clears them when recv/writev report SY_AGAIN
 * (or, for a socket, when a short read proves it drained).
 *
 * splice(2) is a fast path between two plain sockets only: an end that can
 * take part gives its fd through splice_fd; the relay may splice only when
 * both ends of a tunnel do.
 */
#ifndef SY_PROXY_TUNNEL_END_H
#define SY_PROXY_TUNNEL_END_H

#include <sys/types.h>
#include <sys/uio.h>

#include "core/conn.h"

#define TUNNEL_END_R 0x1u       /* recv may return bytes, the end of the stream, or an error */
#define TUNNEL_END_W 0x2u       /* writev may take bytes */

struct tunnel;
struct tunnel_end;

struct tunnel_end_ops {
    const char *name;           /* "socket", "h2 stream", ... (for logs) */
    /*
     * Up to `len` bytes from the peer. Returns >0 bytes; 0 when the peer
     * ended its side (FIN, END_STREAM); SY_AGAIN when nothing is there now
     * (TUNNEL_END_R cleared; tunnel_end_ready() tells when); SY_ERR when the
     * peer aborted (RST, RST_STREAM) or the end failed.
     */
    ssize_t (*recv)(struct tunnel_end *e, void *buf, size_t len);
    /*
     * Write the first bytes of `iov`: returns how many were taken (possibly
     * fewer than offered: socket buffer, flow-control window), SY_AGAIN when
     * none (TUNNEL_END_W cleared; tunnel_end_ready() tells when) or SY_ERR.
     * The bytes are copied or sent before it returns: the caller keeps its
     * buffer.
     */
    ssize_t (*writev)(struct tunnel_end *e, const struct iovec *iov, int iovcnt);
    /* No more bytes towards the peer after those written: FIN, END_STREAM. */
    void (*shutdown_wr)(struct tunnel_end *e);
    /*
     * The tunnel is done with the end (normal end or abort: the end tells
     * them apart by whether both directions ended). A socket end closes its
     * fd; a stream end sends RST_STREAM when the stream is not closed both
     * ways, and may free itself. After close the tunnel never touches the end
     * again, and the end must not call tunnel_end_ready().
     */
    void (*close)(struct tunnel_end *e);
    /* The fd splice(2) may move bytes through, or -1 (TLS, a stream). May be NULL: -1. */
    int (*splice_fd)(const struct tunnel_end *e);
};

struct tunnel_end {
    const struct tunnel_end_ops *ops;
    struct tunnel *tunnel;      /* set when a tunnel takes the end; NULL before */
    unsigned ready;             /* TUNNEL_END_R | TUNNEL_END_W, kept by the end */
};

/*
 * An end has become readable or writable (`events`: TUNNEL_END_*): record it
 * and let its tunnel move bytes now. Safe to call before a tunnel has taken
 * the end (only records). An end that must not be re-entered from where it
 * learns this (an HTTP/2 session inside its frame callbacks) uses
 * tunnel_end_ready_post(), which runs the relay after the current batch.
 */
void tunnel_end_ready(struct tunnel_end *e, unsigned events);
void tunnel_end_ready_post(struct tunnel_end *e, unsigned events);

/* splice(2) eligibility: the end's fd, or -1. */
static inline int tunnel_end_splice_fd(const struct tunnel_end *e)
{
    return e->ops->splice_fd ? e->ops->splice_fd(e) : -1;
}

/* ------------------------------------------------------------ socket end */

/*
 * A socket end: an HTTP/1.1 client or upstream connection (plain or TLS).
 * Its epoll registration is pointed at the end, whose handler feeds
 * readiness to tunnel_end_ready().
 */
struct tunnel_sock_end {
    struct tunnel_end end;
    struct conn c;
};

extern const struct tunnel_end_ops tunnel_sock_end_ops;

/*
 * Take over connection `c` (copied: fd, transport and readiness; the caller
 * forgets `c` without closing it) and move its epoll registration to the end,
 * without a syscall. Returns 0, or -1 when `c`'s fd is not registered (then
 * nothing was taken: `c` is still the caller's to close).
 */
int tunnel_sock_end_init(struct tunnel_sock_end *se, const struct conn *c);

#endif
