/*
 * h1_proxy_protocol.c - the socket side of the PROXY protocol: take the
 * header off a freshly accepted connection, exactly, and nothing after it.
 *
 * Why MSG_PEEK then consume. The bytes after the header (an HTTP request, or
 * a TLS ClientHello) usually arrive in the same segment. With TLS, OpenSSL
 * reads the socket itself through its fd BIO, so whatever we read past the
 * header would have to be handed back to it (a custom BIO, or a memory BIO
 * in front of the socket). Peeking instead lets us parse the header without
 * taking anything, then recv() exactly its length: the next byte in the
 * kernel's queue is the client's first, for the plain HTTP reader and for
 * OpenSSL alike. No carry-over buffer, one code path for both transports.
 * The cost is one extra recv() per connection, on proxy_protocol listeners
 * only.
 *
 * A header that arrives in pieces is peeked again from its start on every
 * readable event and consumed only when complete. It is at most
 * PP_MAX_HEADER bytes and the wait is bounded by client_header_timeout, so
 * the re-reading is cheap, and a connection waiting for its header holds no
 * buffer (the peek buffer is on the stack). Edge-triggered epoll loses no
 * wake-up here: each new segment raises a new edge even though the earlier
 * bytes are still queued.
 *
 * End of stream. While a partial header sits in the queue a peek returns it,
 * never 0, so the peer's FIN is learnt from EPOLLRDHUP (CONN_F_RDHUP): once
 * it was signalled every byte the peer sent is already queued, and a header
 * that is still incomplete never will be.
 */
#include "client/h1_proxy_protocol.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/net.h"
#include "core/proxy_protocol.h"
#include "client/h1_session.h"

/* ", client: 1.2.3.4, server: 127.0.0.1:8080" (the connection has no request yet). */
static void log_ctx(struct h1_session *s, char *out, size_t cap)
{
    char ip[64], srv[80] = "";
    conn_peer_ip(&s->cc.c, ip, sizeof(ip));
    if (s->cc.lst)
        net_addr_str((const struct sockaddr *)&s->cc.lst->addr, srv, sizeof(srv));
    snprintf(out, cap, ", client: %s, server: %s", ip, srv);
}

/* What the client sent, for the log: up to the first CR/LF, at most a v1
 * line's worth, non-printable bytes as \xHH. */
static void escape_head(const unsigned char *b, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && i < PP_V1_MAX && o + 5 < cap; i++) {
        unsigned char c = b[i];
        if (c == '\r' || c == '\n')
            break;
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02X", c);
    }
    out[o] = '\0';
}

/* The header is unusable: say why, as nginx does for v1 ("broken header"). */
static void log_broken(struct h1_session *s, const unsigned char *b, size_t n,
                       const struct pp_result *pr, const char *why)
{
    char ctx[256], head[PP_V1_MAX * 4 + 8];
    log_ctx(s, ctx, sizeof(ctx));
    if (pr->version == 2) {
        sy_log(LOG_LVL_ERR, "*%llu broken PROXY protocol v2 header (%s) while reading PROXY "
               "protocol%s", (unsigned long long)s->cc.id, why, ctx);
        return;
    }
    escape_head(b, n, head, sizeof(head));
    sy_log(LOG_LVL_ERR, "*%llu broken header: \"%s\" (%s) while reading PROXY protocol%s",
           (unsigned long long)s->cc.id, head, why, ctx);
}

/* Remove exactly `len` bytes (the header, already peeked into `sink`, which
 * receives the same bytes again) from the socket. */
static int consume(struct h1_session *s, unsigned char *sink, size_t len)
{
    ssize_t n;
    do
        n = recv(s->cc.c.h.fd, sink, len, 0);
    while (n < 0 && errno == EINTR);
    /* The bytes are queued (we just saw them), so a short read cannot happen
     * on a TCP socket; treat one as the error it would be. */
    return n == (ssize_t)len ? 0 : -1;
}

int h1_pp_read(struct h1_session *s)
{
    unsigned char b[PP_MAX_HEADER];
    char ctx[256];
    ssize_t n;
    if (!(s->cc.c.flags & CONN_F_READY_R))
        return 0;
    do
        n = recv(s->cc.c.h.fd, b, sizeof(b), MSG_PEEK);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            s->cc.c.flags &= ~CONN_F_READY_R;
            return 0;
        }
        log_ctx(s, ctx, sizeof(ctx));
        sy_log(LOG_LVL_INFO, "*%llu recv() failed (%d: %s) while reading PROXY protocol%s",
               (unsigned long long)s->cc.id, errno, strerror(errno), ctx);
        return -1;
    }
    if (n == 0) {
        log_ctx(s, ctx, sizeof(ctx));
        sy_log(LOG_LVL_INFO, "*%llu client closed connection while reading PROXY protocol%s",
               (unsigned long long)s->cc.id, ctx);
        return -1;
    }
    struct pp_result pr;
    ssize_t rc = pp_parse(b, (size_t)n, &pr);
    if (rc == PP_NEED_MORE) {
        /* The parser decides within PP_MAX_HEADER bytes; RDHUP: no more will come. */
        if ((size_t)n == sizeof(b) || (s->cc.c.flags & CONN_F_RDHUP)) {
            log_broken(s, b, (size_t)n, &pr,
                       (size_t)n == sizeof(b) ? "header too long"
                                              : "connection closed before the header ended");
            return -1;
        }
        s->cc.c.flags &= ~CONN_F_READY_R;
        return 0;
    }
    if (rc < 0) {
        log_broken(s, b, (size_t)n, &pr, pr.reason);
        return -1;
    }
    s->cc.pp = pr.addrs;
    if (consume(s, b, (size_t)rc) < 0) {
        log_ctx(s, ctx, sizeof(ctx));
        sy_log(LOG_LVL_INFO, "*%llu recv() failed (%d: %s) while reading PROXY protocol%s",
               (unsigned long long)s->cc.id, errno, strerror(errno), ctx);
        return -1;
    }
    /* Bytes may follow (the peek saw them), or may not: READY_R stays set
     * only when they did, or when the peer's FIN is pending (the next read
     * must see the end: no further edge will announce it). */
    if (rc == n && !(s->cc.c.flags & CONN_F_RDHUP))
        s->cc.c.flags &= ~CONN_F_READY_R;
    return 1;
}

void h1_pp_log_timeout(struct h1_session *s)
{
    char ctx[256];
    log_ctx(s, ctx, sizeof(ctx));
    sy_log(LOG_LVL_INFO, "*%llu client timed out (110: Connection timed out) while reading "
           "PROXY protocol%s", (unsigned long long)s->cc.id, ctx);
}
