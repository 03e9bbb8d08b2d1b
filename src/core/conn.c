/*
 * conn.c - plain-socket transport and the common connection helpers.
 */
#include "core/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <stdio.h>
#include <unistd.h>

static ssize_t plain_recv(struct conn *c, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = recv(c->h.fd, buf, len, 0);
        if (n > 0) {
            /* A short read proves the socket is drained: no extra read for EAGAIN.
             * Unless the peer's FIN was signalled: then the next read returns 0,
             * and no further edge would tell us. */
            if ((size_t)n < len && !(c->flags & CONN_F_RDHUP))
                c->flags &= ~CONN_F_READY_R;
            return n;
        }
        if (n == 0) {
            c->flags |= CONN_F_EOF;
            c->flags &= ~CONN_F_READY_R;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->flags &= ~CONN_F_READY_R;
            return SY_AGAIN;
        }
        c->last_errno = errno;
        c->flags |= CONN_F_ERROR;
        c->flags &= ~CONN_F_READY_R;
        return SY_ERR;
    }
}

static ssize_t plain_writev(struct conn *c, const struct iovec *iov, int iovcnt)
{
    for (;;) {
        ssize_t n;
        if (iovcnt == 1) {
            n = send(c->h.fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
        } else {
            struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
            n = sendmsg(c->h.fd, &mh, MSG_NOSIGNAL);
        }
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->flags &= ~CONN_F_READY_W;
            return SY_AGAIN;
        }
        c->last_errno = errno;
        c->flags |= CONN_F_ERROR;
        return SY_ERR;
    }
}

static void plain_shutdown_wr(struct conn *c)
{
    shutdown(c->h.fd, SHUT_WR);
}

static void plain_release(struct conn *c)
{
    (void)c;
}

const struct xprt_ops xprt_plain = {
    .name = "plain",
    .recv = plain_recv,
    .writev = plain_writev,
    .shutdown_wr = plain_shutdown_wr,
    .release = plain_release,
};

void conn_init(struct conn *c, int fd, handle_fn *on_io)
{
    memset(c, 0, sizeof(*c));
    c->h.fd = fd;
    c->h.on_io = on_io;
    c->xprt = &xprt_plain;
    /* A fresh socket may already be writable; reads are tried optimistically too. */
    c->flags = CONN_F_READY_W | CONN_F_READY_R;
}

ssize_t conn_recv(struct conn *c, void *buf, size_t len)
{
    return c->xprt->recv(c, buf, len);
}

ssize_t conn_writev(struct conn *c, const struct iovec *iov, int iovcnt)
{
    return c->xprt->writev(c, iov, iovcnt);
}

ssize_t conn_send(struct conn *c, const void *buf, size_t len)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    return c->xprt->writev(c, &iov, 1);
}

void conn_close_fd(struct conn *c)
{
    if (c->h.fd < 0)
        return;
    if (c->xprt && c->xprt->release)
        c->xprt->release(c);
    c->xprt_ctx = NULL;
    close(c->h.fd); /* also removes it from epoll */
    c->h.fd = -1;
    c->flags &= ~(CONN_F_READY_R | CONN_F_READY_W | CONN_F_REGISTERED);
}

size_t conn_peer_ip(const struct conn *c, char *out, size_t cap)
{
    const void *a;
    if (c->peer.sa.sa_family == AF_INET6)
        a = &c->peer.in6.sin6_addr;
    else if (c->peer.sa.sa_family == AF_INET)
        a = &c->peer.in.sin_addr;
    else {
        snprintf(out, cap, "unix:");
        return strlen(out);
    }
    if (!inet_ntop(c->peer.sa.sa_family, a, out, (socklen_t)cap)) {
        out[0] = '\0';
        return 0;
    }
    return strlen(out);
}

unsigned conn_peer_port(const struct conn *c)
{
    if (c->peer.sa.sa_family == AF_INET6)
        return ntohs(c->peer.in6.sin6_port);
    if (c->peer.sa.sa_family == AF_INET)
        return ntohs(c->peer.in.sin_port);
    return 0;
}
