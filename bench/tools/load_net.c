/*
 * load_net - what sy-load needs below WebSocket: sockets connected from the
 * --bind-from addresses, the TLS client, reads and writes over either, and
 * the upgrade request with its expected Sec-WebSocket-Accept.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "load.h"

#define NUPGRADES 64  /* keys differ per connection without a SHA-1 each */

static SSL_CTX *ctx;
static struct upgrade upgrades[NUPGRADES];
static _Atomic unsigned src_next;
static _Atomic uint64_t *src_busy_until;  /* per source address: out of ports */
uint8_t *g_payload;

int net_init(void)
{
    if (O.tls) {
        ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx)
            return -1;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        long mode = SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
        if (O.mode == MODE_IDLE)
            mode |= SSL_MODE_RELEASE_BUFFERS;  /* idle: ~34 KiB less per connection */
        SSL_CTX_set_mode(ctx, mode);
        /* a peer closing without close_notify is an EOF, not an error */
        SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        static const unsigned char alpn[] = "\x08http/1.1";
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    }
    for (int i = 0; i < NUPGRADES; i++) {
        unsigned char raw[16];
        char key[25];
        if (RAND_bytes(raw, sizeof raw) != 1)
            return -1;
        EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
        ws_accept(key, 24, upgrades[i].accept);
        int n = snprintf(upgrades[i].req, sizeof upgrades[i].req,
                         "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                         O.path, O.hosthdr, key);
        if (n < 0 || (size_t)n >= sizeof upgrades[i].req)
            return -1;
        upgrades[i].req_len = (size_t)n;
    }
    size_t psz = O.size > 8 ? O.size : 8;
    g_payload = malloc(psz);
    if (!g_payload || RAND_bytes(g_payload, (int)(psz < 65536 ? psz : 65536)) != 1)
        return -1;
    for (size_t i = 65536; i < psz; i++)  /* randomness is not the point past 64 KiB */
        g_payload[i] = g_payload[i & 65535];
    if (O.nsrcs) {
        src_busy_until = calloc((size_t)O.nsrcs, sizeof *src_busy_until);
        if (!src_busy_until)
            return -1;
    }
    return 0;
}

const struct upgrade *net_upgrade(uint64_t r)
{
    return &upgrades[r % NUPGRADES];
}

/* Pick a source address that still has ports, round robin. -1 if none. */
static int pick_source(void)
{
    uint64_t now = now_ns();
    for (int k = 0; k < O.nsrcs; k++) {
        unsigned i = atomic_fetch_add(&src_next, 1) % (unsigned)O.nsrcs;
        if (atomic_load(&src_busy_until[i]) <= now)
            return (int)i;
    }
    return -1;
}

/* A non-blocking socket with its connect started (0), or -1 with errno.
 * With --bind-from, an address out of ephemeral ports (EADDRNOTAVAIL) is
 * left alone for a second and the next one is tried. */
int net_socket_connect(int *fd_out)
{
    int tries = O.nsrcs ? O.nsrcs : 1;
    for (int t = 0; t < tries; t++) {
        int fd = socket(O.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        int one = 1, si = -1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (O.nsrcs) {
            si = pick_source();
            if (si < 0) {
                close(fd);
                errno = EADDRNOTAVAIL;
                return -1;
            }
            /* the port is chosen at connect(), per destination: more of them */
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(O.srcs[si])};
            if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                int e = errno;
                close(fd);
                if (e == EADDRNOTAVAIL || e == EADDRINUSE) {
                    atomic_store(&src_busy_until[si], now_ns() + SEC);
                    continue;
                }
                errno = e;
                return -1;
            }
        }
        if (connect(fd, (struct sockaddr *)&O.addr, O.addrlen) == 0 || errno == EINPROGRESS) {
            *fd_out = fd;
            return 0;
        }
        int e = errno;
        close(fd);
        if (e == EADDRNOTAVAIL && si >= 0) {
            atomic_store(&src_busy_until[si], now_ns() + SEC);
            continue;
        }
        errno = e;
        return -1;
    }
    errno = EADDRNOTAVAIL;
    return -1;
}

SSL *net_tls_new(int fd)
{
    SSL *s = SSL_new(ctx);
    if (!s)
        return NULL;
    SSL_set_fd(s, fd);
    if (O.sni[0])
        SSL_set_tlsext_host_name(s, O.sni);
    SSL_set_connect_state(s);
    return s;
}

/* The tr_* calls return bytes (> 0), 0 at EOF, -1 when the socket would
 * block, -2 on an error. */
static ssize_t tls_result(SSL *s, int r)
{
    switch (SSL_get_error(s, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        ERR_clear_error();
        return -2;
    }
}

ssize_t tr_read(struct lconn *c, void *buf, size_t n)
{
    if (!c->ssl) {
        for (;;) {
            ssize_t r = read(c->fd, buf, n);
            if (r >= 0)
                return r;
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? -1 : -2;
        }
    }
    int r = SSL_read(c->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
    return r > 0 ? r : tls_result(c->ssl, r);
}

ssize_t tr_writev(struct lconn *c, const struct iovec *iov, int cnt)
{
    if (!c->ssl) {
        for (;;) {
            ssize_t r = writev(c->fd, iov, cnt);
            if (r >= 0)
                return r;
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? -1 : -2;
        }
    }
    /* TLS has no writev: one SSL_write per piece (callers merge small ones) */
    ssize_t total = 0;
    for (int i = 0; i < cnt; i++) {
        if (!iov[i].iov_len)
            continue;
        size_t len = iov[i].iov_len > INT_MAX ? INT_MAX : iov[i].iov_len;
        int r = SSL_write(c->ssl, iov[i].iov_base, (int)len);
        if (r <= 0) {
            ssize_t e = tls_result(c->ssl, r);
            return total ? total : e == 0 ? -2 : e;
        }
        total += r;
        if ((size_t)r < iov[i].iov_len)
            break;
    }
    return total;
}

/* Is this response head (up to the empty line) a valid 101 for c's key? */
int net_check_101(const struct lconn *c, const char *head, size_t len)
{
    if (len < 12 || memcmp(head, "HTTP/1.1 101", 12) != 0)
        return -1;
    const char *p = head, *end = head + len;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        p++;
        if (end - p > 21 && strncasecmp(p, "sec-websocket-accept:", 21) == 0) {
            const char *v = p + 21;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            if (end - v >= 30 && memcmp(v, c->up->accept, 28) == 0 &&
                (v[28] == '\r' || v[28] == ' ' || v[28] == '\t'))
                return 0;
            return -1;
        }
    }
    return -1;
}
