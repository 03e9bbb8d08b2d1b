/*
 * load_conn - one sy-load connection: connect, TLS, upgrade, WebSocket
 * frames from the server, our (masked) frames to it, and the close.
 *
 * Sockets are registered once for EPOLLIN|EPOLLOUT, edge triggered; the
 * epoll data carries the connection index and a generation, so an event for
 * a socket closed in the same batch never reaches its successor.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "load.h"

#define RBUF_SZ (256 * 1024)
#define MAX_101 8192
#define READS_PER_EVENT 16

const char *const err_names[E_NKINDS] = {"connect", "handshake", "closed", "protocol", "timeout", "lost"};

void runq_push(struct lworker *w, struct lconn *c)
{
    if (c->on_runq)
        return;
    c->on_runq = 1;
    c->next = NULL;
    if (w->runq_tail)
        w->runq_tail->next = c;
    else
        w->runq = c;
    w->runq_tail = c;
}

/* ------------------------------------------------------------ lifecycle */

static void starting_done(struct lworker *w, struct lconn *c)
{
    if (c->starting) {
        c->starting = 0;
        w->starting--;
    }
}

/* Close the socket and forget the connection's state (no error counted). */
void conn_drop(struct lworker *w, struct lconn *c)
{
    starting_done(w, c);
    if (c->state == CS_IDLE)
        return;
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
    close(c->fd);
    c->fd = -1;
    free(c->carry);
    free(c->out);
    c->carry = c->out = NULL;
    c->carry_len = c->out_off = c->out_len = c->out_cap = 0;
    c->state = CS_IDLE;
    c->deadline = 0;
    w->live--;
}

void conn_fail(struct lworker *w, struct lconn *c, enum err e)
{
    int was_open = c->state >= CS_OPEN;
    w->errors[e]++;
    conn_drop(w, c);
    mode_on_gone(w, c, was_open, 0);
}

static void conn_finish(struct lworker *w, struct lconn *c)
{
    conn_drop(w, c);
    mode_on_gone(w, c, 1, 1);
}

void conn_start(struct lworker *w, struct lconn *c)
{
    /* a fresh slot, except for the run queue links it may be in */
    uint32_t gen = c->gen + 1, idx = c->idx;
    uint8_t on_runq = c->on_runq;
    struct lconn *next = c->next;
    memset(c, 0, sizeof *c);
    c->idx = idx;
    c->gen = gen;
    c->on_runq = on_runq;
    c->next = next;
    c->fd = -1;
    c->up = net_upgrade(rng_next(&w->rng));
    c->t0 = now_ns();
    c->deadline = c->t0 + CONNECT_TIMEOUT;
    c->starting = 1;
    w->starting++;
    int fd;
    if (net_socket_connect(&fd) < 0) {
        c->state = CS_IDLE;
        starting_done(w, c);
        w->errors[E_CONNECT]++;
        mode_on_gone(w, c, 0, 0);
        return;
    }
    c->fd = fd;
    c->state = CS_CONNECTING;
    w->live++;
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                            .data.u64 = (uint64_t)gen << 32 | idx};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &e) < 0)
        conn_fail(w, c, E_CONNECT);
}

/* ------------------------------------------------------------ output */

static void out_add(struct lconn *c, const void *d, size_t n)
{
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + n)
            cap *= 2;
        uint8_t *p = realloc(c->out, cap);
        if (!p) {
            perror("sy-load: realloc");
            exit(3);
        }
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, d, n);
    c->out_len += n;
}

/* Send, or queue what the socket does not take. -1: the connection failed
 * (and is gone). */
static int conn_write(struct lworker *w, struct lconn *c, const struct iovec *iov, int cnt)
{
    size_t done = 0;
    if (c->out_len == c->out_off) {
        ssize_t n = tr_writev(c, iov, cnt);
        if (n == -2) {
            conn_fail(w, c, E_CLOSED);
            return -1;
        }
        done = n > 0 ? (size_t)n : 0;
    }
    for (int i = 0; i < cnt; i++) {
        if (done >= iov[i].iov_len) {
            done -= iov[i].iov_len;
            continue;
        }
        out_add(c, (const uint8_t *)iov[i].iov_base + done, iov[i].iov_len - done);
        done = 0;
    }
    return 0;
}

/* Write queued output: -1 failed (gone), 0 blocked, 1 all written. */
static int conn_flush(struct lworker *w, struct lconn *c)
{
    while (c->out_len > c->out_off) {
        struct iovec iov = {c->out + c->out_off, c->out_len - c->out_off};
        ssize_t n = tr_writev(c, &iov, 1);
        if (n == -1)
            return 0;
        if (n <= 0) {
            conn_fail(w, c, E_CLOSED);
            return -1;
        }
        c->out_off += (size_t)n;
        if (!c->ssl && (size_t)n < iov.iov_len)
            return 0;  /* short write: the socket buffer is full */
    }
    return 1;
}

int conn_output_pending(const struct lconn *c)
{
    return c->out_len > c->out_off;
}

/* A masked control frame. */
static int send_ctl(struct lworker *w, struct lconn *c, int op, const uint8_t *pl, size_t n)
{
    uint8_t f[WS_MAX_HDR + WS_MAX_CTL];
    uint64_t r = rng_next(&w->rng);
    uint8_t mask[4];
    memcpy(mask, &r, 4);
    size_t hl = ws_put_hdr(f, op, 1, n, mask);
    memcpy(f + hl, pl, n);
    ws_mask(f + hl, n, mask, 0);
    struct iovec iov = {f, hl + n};
    return conn_write(w, c, &iov, 1);
}

/* One binary message of O.size bytes. The payload is the random
 * g_payload sent as is: it is what the server gets after unmasking that is
 * arbitrary, so there is nothing to XOR, except for the 8 bytes that carry
 * the send time in ws-paced. */
int conn_send_msg(struct lworker *w, struct lconn *c, uint64_t ts)
{
    uint64_t r = rng_next(&w->rng);
    uint8_t mask[4];
    memcpy(mask, &r, 4);
    size_t hl = ws_put_hdr(w->sbuf, WS_BIN, 1, O.size, mask);
    size_t emb = O.mode == MODE_PACED ? 8 : 0;
    struct iovec iov[2];
    int cnt = 1;
    if (O.size <= 16384 || c->ssl) {  /* one buffer: one syscall, one TLS record */
        memcpy(w->sbuf + hl, g_payload, O.size);
        iov[0] = (struct iovec){w->sbuf, hl + O.size};
    } else {
        memcpy(w->sbuf + hl, g_payload, emb);
        iov[0] = (struct iovec){w->sbuf, hl + emb};
        iov[1] = (struct iovec){g_payload + emb, O.size - emb};
        cnt = 2;
    }
    if (emb) {
        uint8_t t[8];
        memcpy(t, &ts, 8);
        for (int j = 0; j < 8; j++)
            w->sbuf[hl + (size_t)j] = t[j] ^ mask[j & 3];
    }
    w->sent++;
    return conn_write(w, c, iov, cnt);
}

/* Start our side of the close handshake (or just drop a connection that
 * is not open yet). */
void conn_close_gently(struct lworker *w, struct lconn *c)
{
    if (c->state == CS_OPEN) {
        static const uint8_t code[2] = {0x03, 0xe8};  /* 1000 */
        c->state = CS_CLOSING;
        c->deadline = now_ns() + CLOSE_TIMEOUT;
        send_ctl(w, c, WS_CLOSE, code, 2);
    } else if (c->state != CS_CLOSING && c->state != CS_IDLE) {
        conn_drop(w, c);
    }
}

/* ------------------------------------------------------------ input */

static void message_done(struct lworker *w, struct lconn *c)
{
    c->in_msg = 0;
    mode_on_message(w, c, c->msg_len);
}

/* Frames from the server; returns bytes used. Stops when the connection
 * is gone (state CS_IDLE). */
static size_t ws_feed(struct lworker *w, struct lconn *c, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n && c->state >= CS_OPEN) {
        if (c->in_frame) {
            size_t k = n - off < c->pay_left ? n - off : (size_t)c->pay_left;
            if (c->ts_got < 8) {
                size_t t = 8u - c->ts_got < k ? 8u - c->ts_got : k;
                memcpy(c->ts + c->ts_got, p + off, t);
                c->ts_got += (uint8_t)t;
            }
            c->msg_len += k;
            off += k;
            c->pay_left -= k;
            if (!c->pay_left) {
                c->in_frame = 0;
                if (c->frame_fin)
                    message_done(w, c);
            }
            continue;
        }
        struct ws_hdr h;
        int r = ws_parse_hdr(p + off, n - off, &h);
        if (r == 0)
            break;
        if (r < 0 || h.masked) {  /* a server must not mask */
            conn_fail(w, c, E_PROTOCOL);
            return n;
        }
        if (h.opcode >= WS_CLOSE) {
            if (n - off < h.hlen + h.len)
                break;
            const uint8_t *pl = p + off + h.hlen;
            off += h.hlen + (size_t)h.len;
            if (h.opcode == WS_PING) {
                if (send_ctl(w, c, WS_PONG, pl, (size_t)h.len) < 0)
                    return n;
            } else if (h.opcode == WS_CLOSE) {
                c->close_rcvd = 1;
                if (c->state == CS_OPEN) {  /* the server closes first: unexpected */
                    w->errors[E_CLOSED]++;
                    c->state = CS_CLOSING;
                    if (send_ctl(w, c, WS_CLOSE, pl, h.len >= 2 ? 2 : 0) < 0)
                        return n;
                }
                /* let the server close the TCP connection first (it keeps
                 * the TIME_WAIT), but not for long */
                c->deadline = now_ns() + EOF_WAIT;
                return n;
            }
            continue;
        }
        if ((h.opcode == WS_CONT) != c->in_msg) {  /* fragments out of order */
            conn_fail(w, c, E_PROTOCOL);
            return n;
        }
        off += h.hlen;
        if (!c->in_msg) {
            c->msg_len = 0;
            c->ts_got = 0;
        }
        c->in_msg = 1;
        c->frame_fin = h.fin;
        c->pay_left = h.len;
        c->in_frame = h.len > 0;
        if (!c->in_frame && h.fin)
            message_done(w, c);
    }
    return off;
}

/* Input in any state after the request was sent; returns bytes used. */
static size_t conn_feed(struct lworker *w, struct lconn *c, const uint8_t *p, size_t n)
{
    if (c->state != CS_READ_101)
        return ws_feed(w, c, p, n);
    const uint8_t *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end) {
        if (n > MAX_101)
            conn_fail(w, c, E_HANDSHAKE);
        return c->state == CS_IDLE ? n : 0;
    }
    size_t hl = (size_t)(end - p) + 4;
    if (net_check_101(c, (const char *)p, hl) < 0) {
        conn_fail(w, c, E_HANDSHAKE);
        return n;
    }
    c->state = CS_OPEN;
    c->deadline = 0;
    starting_done(w, c);
    mode_on_open(w, c);
    if (c->state < CS_OPEN)
        return n;
    return hl + ws_feed(w, c, p + hl, n - hl);
}

static void conn_eof(struct lworker *w, struct lconn *c)
{
    if (c->state == CS_CLOSING)
        conn_finish(w, c);
    else
        conn_fail(w, c, c->state == CS_OPEN ? E_CLOSED : E_HANDSHAKE);
}

static void conn_read(struct lworker *w, struct lconn *c, uint32_t ev)
{
    /* TLS records arrive whole or not at all, so a short read says nothing
     * about the socket: read to EAGAIN there */
    int drain = (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) || c->ssl;
    int i;
    for (i = 0; i < READS_PER_EVENT && c->state >= CS_READ_101; i++) {
        size_t k = c->carry_len;
        if (k)
            memcpy(w->rbuf, c->carry, k);
        size_t want = RBUF_SZ - k;
        ssize_t n = tr_read(c, w->rbuf + k, want);
        if (n == -1)
            return;
        if (n == -2) {
            if (c->state == CS_CLOSING && c->close_rcvd)
                conn_finish(w, c);  /* a reset after the close handshake */
            else
                conn_fail(w, c, c->state >= CS_OPEN ? E_CLOSED : E_HANDSHAKE);
            return;
        }
        if (n == 0) {
            conn_eof(w, c);
            return;
        }
        free(c->carry);
        c->carry = NULL;
        c->carry_len = 0;
        size_t tot = k + (size_t)n;
        size_t used = conn_feed(w, c, w->rbuf, tot);
        if (c->state == CS_IDLE)
            return;
        if (used < tot) {
            c->carry = malloc(tot - used);
            if (!c->carry) {
                perror("sy-load: malloc");
                exit(3);
            }
            memcpy(c->carry, w->rbuf + used, tot - used);
            c->carry_len = tot - used;
        }
        /* a plain short read drained the socket: new data is a new edge */
        if (!drain && (size_t)n < want)
            return;
    }
    if (i == READS_PER_EVENT)
        runq_push(w, c);
}

/* ------------------------------------------------------------ events */

static int connect_step(struct lworker *w, struct lconn *c)
{
    if (c->state == CS_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            conn_fail(w, c, E_CONNECT);
            return -1;
        }
        if (O.tls) {
            c->ssl = net_tls_new(c->fd);
            if (!c->ssl) {
                conn_fail(w, c, E_HANDSHAKE);
                return -1;
            }
            c->state = CS_TLS;
        } else {
            c->state = CS_SEND_REQ;
        }
    }
    if (c->state == CS_TLS) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return -1;
            conn_fail(w, c, E_HANDSHAKE);
            return -1;
        }
        c->state = CS_SEND_REQ;
    }
    if (c->state == CS_SEND_REQ) {
        struct iovec iov = {(char *)c->up->req + c->req_off, c->up->req_len - c->req_off};
        ssize_t n = tr_writev(c, &iov, 1);
        if (n == -1)
            return -1;
        if (n <= 0) {
            conn_fail(w, c, E_HANDSHAKE);
            return -1;
        }
        c->req_off += (size_t)n;
        if (c->req_off < c->up->req_len)
            return -1;
        c->state = CS_READ_101;
    }
    return 0;
}

void conn_event(struct lworker *w, struct lconn *c, uint32_t ev)
{
    if (c->state == CS_IDLE)
        return;
    if (c->state < CS_READ_101) {
        if (c->state == CS_CONNECTING && !(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        if (connect_step(w, c) < 0)
            return;
        if (!c->ssl)
            return;  /* the 101 will come with a new edge */
        ev |= EPOLLIN;  /* TLS may hold records already read from the socket */
    }
    if ((ev & EPOLLOUT) && conn_output_pending(c)) {
        if (conn_flush(w, c) < 0)
            return;
    }
    if (c->state == CS_OPEN && (ev & EPOLLOUT) && !conn_output_pending(c))
        mode_on_writable(w, c);
    if (c->state != CS_IDLE && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        conn_read(w, c, ev);
}

void conn_check_deadline(struct lworker *w, struct lconn *c, uint64_t now)
{
    if (c->state == CS_IDLE || !c->deadline || now < c->deadline)
        return;
    switch (c->state) {
    case CS_CONNECTING:
        conn_fail(w, c, E_CONNECT);
        break;
    case CS_CLOSING:
        if (c->close_rcvd)
            conn_finish(w, c);
        else
            conn_fail(w, c, E_TIMEOUT);
        break;
    case CS_OPEN:
        break;
    default:
        conn_fail(w, c, E_HANDSHAKE);
    }
}
