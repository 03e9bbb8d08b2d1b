/*
 * sy-backend - the origin server of the benchmark: HTTP/1.1 and WebSocket,
 * as cheap per operation as we can make it so that it is never the
 * bottleneck of a proxy benchmark.
 *
 *     sy-backend --port P [--threads N] [--addr 127.0.0.1] [--max-seconds S]
 *
 * Prints "ready" once listening. Each thread has its own epoll instance and
 * its own SO_REUSEPORT listener (the kernel spreads connections over them).
 *
 * HTTP: any path -> 200 with a 100-byte text/plain body; /1m -> 1 MiB body;
 * /text -> 32 KiB of text/plain made of words (compressible like a page: the
 * compression scenario)
 * from a static buffer. Keep-alive, HTTP/1.0, Connection: close, pipelining,
 * request bodies with Content-Length (skipped). HEAD gets the head only.
 * A chunked request body cannot be skipped without decoding it: such a
 * request is answered and the connection then closed.
 *
 * WebSocket: any GET with "Upgrade: websocket" -> 101. Then by path:
 * /ws/sink discards data frames, /ws/source streams 64 KiB binary frames as
 * fast as the socket takes them, anything else echoes each data frame back
 * (unmasked, same opcode and FIN, so fragments are echoed one by one).
 * Ping -> pong, close -> close and the socket is closed.
 *
 * Cost model: every socket is registered once (EPOLLIN|EPOLLOUT, edge
 * triggered). Reads go to one per-thread buffer; payloads are streamed
 * (unmasked in place and copied to the output, or skipped), so a
 * connection owns memory only for a partial frame header or request head,
 * and for output the socket did not take. Replies produced by one read are
 * written with one syscall.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "httpreq.h"
#include "wsproto.h"

#define RBUF_SZ (256 * 1024)
#define STAGE_FLUSH (256 * 1024)  /* write the replies of a long pipeline early */
#define OUT_PAUSE (4u << 20)      /* stop reading a peer that does not read */
#define MAX_HEAD 16384
#define BIG_SZ (1u << 20)
#define SMALL_SZ 100
#define TEXT_SZ (32u << 10)
#define SRC_PAYLOAD 65536
#define SRC_FRAMES 4              /* /ws/source writes 4 frames per syscall */
#define SRC_FRAME (10 + SRC_PAYLOAD)
#define READS_PER_EVENT 16        /* then the connection waits on the run queue */
#define WRITES_PER_EVENT 64

enum mode { M_HTTP, M_ECHO, M_SINK, M_SOURCE };

struct conn {
    int fd;
    uint8_t mode;
    uint8_t dead, on_runq;
    uint8_t paused;      /* not reading: a 1m body is being sent, or OUT_PAUSE */
    uint8_t eof;         /* the peer sent FIN */
    uint8_t close_after; /* close once the output is written */
    uint8_t peer_close;  /* source mode: close frame received, reply pending */
    /* HTTP: request body bytes still to skip */
    uint64_t body_left;
    /* WebSocket receive state: inside a data frame's payload */
    uint64_t pay_left, pay_off;
    uint8_t in_frame, masked;
    uint8_t mask[4];
    /* unparsed input (partial head or frame header) */
    uint8_t *carry;
    size_t carry_len;
    /* output the socket did not take yet: `out` first, then `bulk` */
    uint8_t *out;
    size_t out_off, out_len, out_cap;
    const uint8_t *bulk;
    size_t bulk_left;
    /* source mode: a pong to send at the next frame boundary */
    uint8_t *pong;
    size_t pong_len;
    struct conn *next;   /* run queue or dead list */
};

struct worker {
    int ep, lfd, reserve_fd;
    uint8_t *rbuf;
    uint8_t *stage;      /* replies being produced for the current connection */
    size_t stage_len, stage_cap;
    struct conn *runq, *runq_tail, *dead;
    pthread_t tid;
};

/* ------------------------------------------------------------ static data */

enum { KA11, CLOSE, KA10, NVARIANT };
static char small_resp[NVARIANT][256], big_head[NVARIANT][160];
static size_t small_len[NVARIANT], small_head_len[NVARIANT], big_head_len[NVARIANT];
static uint8_t *big_body, *src_buf;
static char text_head[NVARIANT][160];
static size_t text_head_len[NVARIANT];
static uint8_t text_body[TEXT_SZ];

/* Words picked by a fixed LCG: text that compresses about as a web page does. */
static void build_text(void)
{
    static const char *const words[] = {
        "the", "of", "and", "a", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on",
        "are", "as", "with", "his", "they", "at", "be", "this", "have", "from", "or", "one",
        "had", "by", "word", "but", "not", "what", "all", "were", "we", "when", "your", "can",
        "said", "there", "use", "an", "each", "which", "she", "do", "how", "their", "if",
        "will", "up", "other", "about", "out", "many", "then", "them", "these", "so", "some",
        "<div class=\"item\">", "</div>", "<p>", "</p>", "<a href=\"/page/", "\">", "</a>"};
    uint32_t x = 12345;
    size_t n = 0;
    while (n < TEXT_SZ) {
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) % (sizeof(words) / sizeof(words[0]))];
        for (; *w && n < TEXT_SZ; w++)
            text_body[n++] = (uint8_t)*w;
        if (n < TEXT_SZ)
            text_body[n++] = (x >> 8) % 11 == 0 ? '\n' : ' ';
    }
}

static void build_static(void)
{
    static const char *conn_hdr[NVARIANT] = {"", "Connection: close\r\n", "Connection: keep-alive\r\n"};
    char body[SMALL_SZ];
    for (int i = 0; i < SMALL_SZ - 1; i++)
        body[i] = (char)('a' + i % 26);
    body[SMALL_SZ - 1] = '\n';
    for (int v = 0; v < NVARIANT; v++) {
        int hl = snprintf(small_resp[v], sizeof small_resp[v],
                          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n",
                          SMALL_SZ, conn_hdr[v]);
        small_head_len[v] = (size_t)hl;
        memcpy(small_resp[v] + hl, body, SMALL_SZ);
        small_len[v] = (size_t)hl + SMALL_SZ;
        big_head_len[v] = (size_t)snprintf(big_head[v], sizeof big_head[v],
                                           "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %u\r\n%s\r\n",
                                           BIG_SZ, conn_hdr[v]);
    }
    for (int v = 0; v < NVARIANT; v++)
        text_head_len[v] = (size_t)snprintf(text_head[v], sizeof text_head[v],
                                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                            "Content-Length: %u\r\n%s\r\n", TEXT_SZ, conn_hdr[v]);
    build_text();
    big_body = malloc(BIG_SZ);
    src_buf = malloc((size_t)SRC_FRAMES * SRC_FRAME);
    if (!big_body || !src_buf)
        abort();
    for (size_t i = 0; i < BIG_SZ; i++)
        big_body[i] = (uint8_t)('a' + i % 26);
    for (int f = 0; f < SRC_FRAMES; f++) {
        uint8_t *p = src_buf + (size_t)f * SRC_FRAME;
        size_t hl = ws_put_hdr(p, WS_BIN, 1, SRC_PAYLOAD, NULL);
        memset(p + hl, 's', SRC_PAYLOAD);
    }
}

/* ------------------------------------------------------------ buffers */

static void grow(uint8_t **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    uint8_t *n = realloc(*p, c);
    if (!n) {
        perror("sy-backend: realloc");
        exit(1);
    }
    *p = n;
    *cap = c;
}

static void stage_add(struct worker *w, const void *d, size_t n)
{
    grow(&w->stage, &w->stage_cap, w->stage_len + n);
    memcpy(w->stage + w->stage_len, d, n);
    w->stage_len += n;
}

static int out_pending(const struct conn *c)
{
    return c->out_len > c->out_off || c->bulk_left;
}

static void out_add(struct conn *c, const uint8_t *d, size_t n)
{
    if (c->out_off && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    grow(&c->out, &c->out_cap, c->out_len + n);
    memcpy(c->out + c->out_len, d, n);
    c->out_len += n;
}

/* ------------------------------------------------------------ connections */

static void runq_push(struct worker *w, struct conn *c)
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

/* The struct is freed after the epoll batch (see loop): an event or the run
 * queue may still point at it. */
static void conn_close(struct worker *w, struct conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    close(c->fd);
    free(c->carry);
    free(c->out);
    free(c->pong);
    c->carry = c->out = c->pong = NULL;
    if (!c->on_runq) {
        c->next = w->dead;
        w->dead = c;
    }
}

/* Hand the staged replies (and an optional static body after them) to the
 * connection: written at once when nothing is queued before them, and what
 * the socket does not take is kept. -1 on a write error. */
static int conn_send(struct worker *w, struct conn *c, const uint8_t *bulk, size_t blen)
{
    size_t slen = w->stage_len;
    w->stage_len = 0;
    if (!slen && !blen)
        return 0;
    if (out_pending(c)) {
        /* only reachable with bulk_left == 0: input processing stops while a
         * body is queued, so order is kept */
        out_add(c, w->stage, slen);
        if (blen) {
            c->bulk = bulk;
            c->bulk_left = blen;
        }
    } else {
        struct iovec iov[2] = {{w->stage, slen}, {(void *)bulk, blen}};
        ssize_t n = writev(c->fd, iov, 2);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                return -1;
            n = 0;
        }
        size_t done = (size_t)n;
        if (done < slen) {
            out_add(c, w->stage + done, slen - done);
            done = 0;
        } else {
            done -= slen;
        }
        c->bulk = bulk + done;
        c->bulk_left = blen - done;
    }
    if (c->bulk_left || c->out_len - c->out_off > OUT_PAUSE)
        c->paused = 1;
    return 0;
}

/* Write queued output. -1: close the connection; 0: blocked (EPOLLOUT will
 * come) or out of budget (queued to run again); 1: everything written. */
static int conn_flush(struct worker *w, struct conn *c)
{
    for (int i = 0; i < WRITES_PER_EVENT; i++) {
        if (out_pending(c)) {
            struct iovec iov[2] = {{c->out + c->out_off, c->out_len - c->out_off},
                                   {(void *)c->bulk, c->bulk_left}};
            ssize_t n = writev(c->fd, iov, 2);
            if (n < 0) {
                if (errno == EAGAIN)
                    return 0;
                if (errno == EINTR)
                    continue;
                return -1;
            }
            size_t k = (size_t)n, o = c->out_len - c->out_off;
            if (k < o) {
                c->out_off += k;
                return 0;  /* a short write means the socket buffer is full */
            }
            c->out_off = c->out_len = 0;
            k -= o;
            c->bulk += k;
            c->bulk_left -= k;
            if (c->bulk_left)
                return 0;
            if (c->out_cap > 65536) {  /* do not keep a big buffer per idle conn */
                free(c->out);
                c->out = NULL;
                c->out_cap = 0;
            }
        }
        /* everything written, and /ws/source is at a frame boundary */
        if (c->mode == M_SOURCE && !c->close_after) {
            if (c->pong_len) {
                out_add(c, c->pong, c->pong_len);
                c->pong_len = 0;
            }
            if (c->peer_close) {
                static const uint8_t bye[4] = {0x88, 2, 0x03, 0xe8};  /* 1000 */
                out_add(c, bye, sizeof bye);
                c->close_after = 1;
            } else {
                c->bulk = src_buf;
                c->bulk_left = (size_t)SRC_FRAMES * SRC_FRAME;
            }
            continue;
        }
        return c->close_after ? -1 : 1;
    }
    runq_push(w, c);
    return 0;
}

/* ------------------------------------------------------------ WebSocket */

static void ws_reply_ctl(struct worker *w, struct conn *c, int op, const uint8_t *pl, size_t n)
{
    uint8_t f[2 + WS_MAX_CTL];
    size_t hl = ws_put_hdr(f, op, 1, n, NULL);
    memcpy(f + hl, pl, n);
    if (c->mode == M_SOURCE) {
        /* must not cut into the frame being streamed: keep the latest pong
         * (RFC 6455 5.5.3 allows answering only the last ping) */
        if (!c->pong)
            c->pong = malloc(2 + WS_MAX_CTL);
        if (c->pong) {
            memcpy(c->pong, f, hl + n);
            c->pong_len = hl + n;
        }
        return;
    }
    stage_add(w, f, hl + n);
}

/* Consume WebSocket input; returns bytes used (the rest is carried). */
static size_t ws_input(struct worker *w, struct conn *c, uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n && !c->close_after && !c->peer_close) {
        if (c->in_frame) {
            size_t k = n - off;
            if (k > c->pay_left)
                k = (size_t)c->pay_left;
            if (c->mode == M_ECHO) {
                if (c->masked)
                    ws_mask(p + off, k, c->mask, c->pay_off);
                stage_add(w, p + off, k);
            }
            off += k;
            c->pay_off += k;
            c->pay_left -= k;
            if (!c->pay_left)
                c->in_frame = 0;
            continue;
        }
        struct ws_hdr h;
        int r = ws_parse_hdr(p + off, n - off, &h);
        if (r == 0)
            break;
        if (r < 0) {
            static const uint8_t err[4] = {0x88, 2, 0x03, 0xea};  /* 1002 */
            if (c->mode == M_SOURCE) {
                c->peer_close = 1;  /* the close goes out at a frame boundary */
            } else {
                stage_add(w, err, sizeof err);
                c->close_after = 1;
            }
            break;
        }
        if (h.opcode >= WS_CLOSE) {  /* control frames are handled whole */
            if (n - off < h.hlen + h.len)
                break;
            uint8_t *pl = p + off + h.hlen;
            if (h.masked)
                ws_mask(pl, (size_t)h.len, h.mask, 0);
            off += h.hlen + (size_t)h.len;
            if (h.opcode == WS_PING) {
                ws_reply_ctl(w, c, WS_PONG, pl, (size_t)h.len);
            } else if (h.opcode == WS_CLOSE) {
                if (c->mode == M_SOURCE) {
                    c->peer_close = 1;
                } else {
                    ws_reply_ctl(w, c, WS_CLOSE, pl, h.len >= 2 ? 2 : 0);
                    c->close_after = 1;
                }
            }
            continue;
        }
        off += h.hlen;
        if (c->mode == M_ECHO) {
            uint8_t hb[WS_MAX_HDR];
            stage_add(w, hb, ws_put_hdr(hb, h.opcode, h.fin, h.len, NULL));
        }
        c->masked = h.masked;
        memcpy(c->mask, h.mask, 4);
        c->pay_left = h.len;
        c->pay_off = 0;
        c->in_frame = h.len > 0;
    }
    if (c->close_after || c->peer_close)
        return n;  /* nothing after a close frame is read */
    return off;
}

/* ------------------------------------------------------------ HTTP */

static int path_is(const struct http_req *r, const char *s)
{
    size_t l = strlen(s);
    return r->path_len == l && memcmp(r->path, s, l) == 0;
}

static void bad_request(struct worker *w, struct conn *c)
{
    static const char resp[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    stage_add(w, resp, sizeof resp - 1);
    c->close_after = 1;
}

/* Switch to WebSocket after a valid upgrade request. */
static void ws_upgrade(struct worker *w, struct conn *c, const struct http_req *r)
{
    char acc[29], resp[160];
    ws_accept(r->ws_key, r->ws_key_len, acc);
    int l = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", acc);
    stage_add(w, resp, (size_t)l);
    c->mode = path_is(r, "/ws/sink") ? M_SINK : path_is(r, "/ws/source") ? M_SOURCE : M_ECHO;
}

/* Consume HTTP input; returns bytes used (the rest is carried), or -1 for a
 * write error. Stops at a queued 1 MiB body so responses stay in order. */
static ssize_t http_input(struct worker *w, struct conn *c, uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        if (c->body_left) {
            size_t k = n - off < c->body_left ? n - off : (size_t)c->body_left;
            off += k;
            c->body_left -= k;
            continue;
        }
        if (c->paused || c->close_after || c->mode != M_HTTP)
            break;
        struct http_req r;
        int rc = http_parse_req((const char *)p + off, n - off, &r);
        if (rc == 0) {
            if (n - off > MAX_HEAD)
                bad_request(w, c);
            break;
        }
        if (rc < 0) {
            bad_request(w, c);
            break;
        }
        off += r.head_len;
        if (r.is_get && r.upgrade_ws) {
            if (!r.ws_key || r.ws_key_len == 0 || r.ws_key_len > 64)
                bad_request(w, c);
            else
                ws_upgrade(w, c, &r);
            break;
        }
        c->body_left = r.content_length;
        int keep = r.http10 ? r.conn_keepalive && !r.conn_close : !r.conn_close;
        if (r.chunked)
            keep = 0;
        int v = !keep ? CLOSE : r.http10 ? KA10 : KA11;
        if (!keep)
            c->close_after = 1;
        if (path_is(&r, "/1m")) {
            stage_add(w, big_head[v], big_head_len[v]);
            if (conn_send(w, c, r.is_head ? NULL : big_body, r.is_head ? 0 : BIG_SZ) < 0)
                return -1;
        } else if (path_is(&r, "/text")) {
            stage_add(w, text_head[v], text_head_len[v]);
            if (conn_send(w, c, r.is_head ? NULL : text_body, r.is_head ? 0 : TEXT_SZ) < 0)
                return -1;
        } else {
            stage_add(w, small_resp[v], r.is_head ? small_head_len[v] : small_len[v]);
            if (w->stage_len >= STAGE_FLUSH && conn_send(w, c, NULL, 0) < 0)
                return -1;
        }
    }
    return (ssize_t)off;
}

static ssize_t conn_input(struct worker *w, struct conn *c, uint8_t *p, size_t n)
{
    size_t off = 0;
    if (c->mode == M_HTTP) {
        ssize_t k = http_input(w, c, p, n);
        if (k < 0)
            return -1;
        off = (size_t)k;
    }
    if (c->mode != M_HTTP && off < n)
        off += ws_input(w, c, p + off, n - off);
    return (ssize_t)off;
}

/* ------------------------------------------------------------ events */

/* Read and process until the socket is drained (or the budget is spent, or
 * the connection must stop reading). */
static void conn_pump(struct worker *w, struct conn *c, uint32_t ev)
{
    int drain = (ev & (EPOLLRDHUP | EPOLLHUP)) != 0;
    int i;
    for (i = 0; i < READS_PER_EVENT; i++) {
        size_t k = c->carry_len, want = 0;
        ssize_t n = 0;
        int blocked = 0;
        if (k) {
            memcpy(w->rbuf, c->carry, k);
            free(c->carry);
            c->carry = NULL;
            c->carry_len = 0;
        }
        if (!c->eof && k < RBUF_SZ / 2) {
            want = RBUF_SZ - k;
            n = read(c->fd, w->rbuf + k, want);
            if (n == 0) {
                c->eof = 1;
            } else if (n < 0) {
                if (errno != EAGAIN && errno != EINTR) {
                    conn_close(w, c);
                    return;
                }
                blocked = errno == EAGAIN;
                n = 0;
            }
        }
        size_t tot = k + (size_t)n;
        if (tot) {
            ssize_t used = conn_input(w, c, w->rbuf, tot);
            if (used < 0 || conn_send(w, c, NULL, 0) < 0) {
                conn_close(w, c);
                return;
            }
            size_t left = tot - (size_t)used;
            if (left && !c->close_after) {
                if (c->mode == M_HTTP ? left > MAX_HEAD && !c->paused : left > 2 * WS_MAX_HDR + WS_MAX_CTL) {
                    conn_close(w, c);  /* cannot happen with a sane peer */
                    return;
                }
                c->carry = malloc(left);
                if (!c->carry) {
                    conn_close(w, c);
                    return;
                }
                memcpy(c->carry, w->rbuf + used, left);
                c->carry_len = left;
            }
        }
        /* A short read drained the socket: the next data brings a new edge
         * (EOF is reported as EPOLLRDHUP, for which we read to the end). */
        if (c->eof || blocked || c->paused || c->close_after || (want && (size_t)n < want && !drain))
            break;
    }
    if (i == READS_PER_EVENT)
        runq_push(w, c);
    int r = conn_flush(w, c);
    if (r < 0 || (r == 1 && c->eof && !c->paused))
        conn_close(w, c);
}

static void conn_event(struct worker *w, struct conn *c, uint32_t ev)
{
    if (ev & EPOLLERR) {
        conn_close(w, c);
        return;
    }
    int r = conn_flush(w, c);
    if (r < 0) {
        conn_close(w, c);
        return;
    }
    if (r == 1 && c->paused) {
        c->paused = 0;
        ev |= EPOLLIN;  /* we stopped reading: the edge may be gone */
    }
    if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) && !c->paused)
        conn_pump(w, c, ev);
}

static void accept_some(struct worker *w)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* out of descriptors: refuse one pending connection rather
                 * than spin on the level-triggered listener */
                close(w->reserve_fd);
                fd = accept(w->lfd, NULL, NULL);
                if (fd >= 0)
                    close(fd);
                w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            return;
        }
        c->fd = fd;
        struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &e) < 0) {
            close(fd);
            free(c);
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[256];
    for (;;) {  /* a server: runs until SIGTERM or --max-seconds (alarm) */
        int n = epoll_wait(w->ep, evs, 256, w->runq ? 0 : -1);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL)
                accept_some(w);
            else
                conn_event(w, evs[i].data.ptr, evs[i].events);
        }
        struct conn *q = w->runq;
        w->runq = w->runq_tail = NULL;
        while (q) {
            struct conn *c = q;
            q = q->next;
            c->on_runq = 0;
            if (c->dead) {
                c->next = w->dead;
                w->dead = c;
            } else {
                conn_event(w, c, EPOLLIN | EPOLLOUT);
            }
        }
        while (w->dead) {
            struct conn *c = w->dead;
            w->dead = c->next;
            free(c);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ setup */

static int listen_on(const char *addr, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "sy-backend: bad address %s\n", addr);
        exit(2);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0) {
        fprintf(stderr, "sy-backend: listen on %s:%d: %s\n", addr, port, strerror(errno));
        exit(1);
    }
    return fd;
}

static void usage(void)
{
    fprintf(stderr, "usage: sy-backend --port P [--threads N] [--addr 127.0.0.1] [--max-seconds S]\n"
                    "  --max-seconds: exit after S seconds (default 10800, 0 = never)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1";
    int port = 0, threads = 1;
    long max_s = 10800;  /* a forgotten backend does not run forever */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "--port"))
            port = atoi(v);
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--addr"))
            addr = v;
        else if (!strcmp(a, "--max-seconds"))
            max_s = atol(v);
        else
            usage();
        i++;
    }
    if (port <= 0 || port > 65535 || threads < 1 || threads > 256 || max_s < 0)
        usage();

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    if (max_s)
        alarm((unsigned)max_s);  /* default action of SIGALRM: terminate */
    build_static();

    struct worker *ws = calloc((size_t)threads, sizeof *ws);
    for (int t = 0; t < threads; t++) {
        struct worker *w = &ws[t];
        w->lfd = listen_on(addr, port);
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        w->rbuf = malloc(RBUF_SZ);
        w->stage_cap = 2 * RBUF_SZ;
        w->stage = malloc(w->stage_cap);
        /* the listener is level-triggered: accept_some takes a bounded batch */
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
        if (w->ep < 0 || !w->rbuf || !w->stage || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->lfd, &e) < 0) {
            perror("sy-backend: setup");
            return 1;
        }
    }
    printf("ready\n");
    fflush(stdout);
    for (int t = 1; t < threads; t++)
        if (pthread_create(&ws[t].tid, NULL, worker_main, &ws[t]) != 0) {
            perror("sy-backend: pthread_create");
            return 1;
        }
    worker_main(&ws[0]);
    return 0;
}
