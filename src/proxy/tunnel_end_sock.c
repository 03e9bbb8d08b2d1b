/*
 * tunnel_end_sock.c - the socket end of a tunnel (see tunnel_end.h): a
 * struct conn (plain or TLS) behind the tunnel-end operations.
 *
 * The connection's own flags (CONN_F_READY_R/W, kept by the transport, with
 * TLS's want-read-for-write and the like) stay the truth; after every event
 * and every call the end copies the two readiness bits into end.ready, where
 * the relay looks.
 */
#include "proxy/tunnel_end.h"

#include <stddef.h>

#include "core/container.h"

static struct tunnel_sock_end *sock_of(struct tunnel_end *e)
{
    return container_of(e, struct tunnel_sock_end, end);
}

/* The connection's readiness as TUNNEL_END_* bits: the same bits, so a mask
 * (this runs after every read and write of the relay). */
_Static_assert(TUNNEL_END_R == CONN_F_READY_R && TUNNEL_END_W == CONN_F_READY_W,
               "tunnel-end readiness mirrors the connection's");
static inline unsigned sock_ready(const struct conn *c)
{
    return c->flags & (CONN_F_READY_R | CONN_F_READY_W);
}

static ssize_t sock_recv(struct tunnel_end *e, void *buf, size_t len)
{
    struct conn *c = &sock_of(e)->c;
    ssize_t r = conn_recv(c, buf, len);
    e->ready = sock_ready(c);
    /* An EOF on a socket that has failed (EPOLLERR) is a reset, not a FIN. */
    if (r == 0 && (c->flags & CONN_F_ERROR))
        return SY_ERR;
    return r;
}

static ssize_t sock_writev(struct tunnel_end *e, const struct iovec *iov, int iovcnt)
{
    struct conn *c = &sock_of(e)->c;
    ssize_t w = conn_writev(c, iov, iovcnt);
    e->ready = sock_ready(c);
    return w;
}

static void sock_shutdown_wr(struct tunnel_end *e)
{
    struct conn *c = &sock_of(e)->c;
    c->xprt->shutdown_wr(c);
}

static void sock_close(struct tunnel_end *e)
{
    conn_close_fd(&sock_of(e)->c);
    e->ready = 0;
}

static int sock_splice_fd(const struct tunnel_end *e)
{
    const struct tunnel_sock_end *se = container_of(e, const struct tunnel_sock_end, end);
    return se->c.xprt == &xprt_plain ? se->c.h.fd : -1;
}

const struct tunnel_end_ops tunnel_sock_end_ops = {
    .name = "socket",
    .recv = sock_recv,
    .writev = sock_writev,
    .shutdown_wr = sock_shutdown_wr,
    .close = sock_close,
    .splice_fd = sock_splice_fd,
};

static void sock_on_io(struct handle *h, uint32_t events)
{
    struct tunnel_sock_end *se = container_of(h, struct tunnel_sock_end, c.h);
    conn_note_events(&se->c, events);
    tunnel_end_ready(&se->end, sock_ready(&se->c));
}

int tunnel_sock_end_init(struct tunnel_sock_end *se, const struct conn *c)
{
    se->c = *c;
    se->c.h.on_io = sock_on_io;
    if (loop_rebind(&se->c.h) < 0)
        return -1;
    se->end.ops = &tunnel_sock_end_ops;
    se->end.tunnel = NULL;
    /* Plain sockets keep what their last read proved (a short read or
     * EAGAIN: nothing waiting), and EPOLL_CTL_MOD reports any readiness
     * anew, so no read is wasted on an empty socket. TLS may hold
     * decrypted bytes the socket does not show: try it. */
    se->c.flags |= CONN_F_READY_W;
    if (se->c.xprt != &xprt_plain)
        se->c.flags |= CONN_F_READY_R;
    se->end.ready = sock_ready(&se->c);
    return 0;
}
