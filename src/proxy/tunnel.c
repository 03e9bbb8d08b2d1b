/*
 * tunnel.c - relaying an upgraded connection (see tunnel.h).
 *
 * The relay moves bytes between two ends (tunnel_end.h) through their
 * operations only: it never sees a socket, a transport or epoll. Ends wake it
 * with tunnel_end_ready(); it tests their readiness bits before it takes a
 * buffer or makes a call.
 *
 * Two directions, each "bytes read from side i, written to side 1-i":
 *
 *   read side i --> dir[i].buf --> write side 1-i
 *
 * A direction reads only when its buffer is empty (backpressure: memory per
 * tunnel is at most one buffer per direction, whatever the peers do) and
 * returns the buffer to the pool as soon as it is drained, so an idle tunnel
 * holds none.
 *
 * For WebSocket tunnels each direction follows frame boundaries (headers
 * only; payloads are neither unmasked nor copied; frames are relayed whatever
 * their MASK bit, as nginx does: masking is the endpoints' rule, RFC 6455
 * §5.1) so Switchyard can:
 *   - send its own pings between two frames and swallow the matching pongs;
 *   - end the tunnel with a close frame (1001 going away, 1011 error) instead
 *     of a bare TCP close that browsers report as 1006.
 *
 *   RELAY --one side FIN--> relay the rest, FIN the other side (a close frame
 *         first when the side vanished without one) --other FIN or linger
 *         timeout--> CLOSED
 *   RELAY --idle/ping timeout, shutdown--> CLOSING (close frames, FINs) --> CLOSED
 *   any error of an end (reset, RST_STREAM) --> CLOSED at once
 */
#include "proxy/tunnel.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/stats.h"
#include "core/live.h"
#include "core/loop.h"
#include "http/limit_conn.h"
#include "conf/runtime.h"
#include "proxy/tunnel_end.h"
#include "proxy/ws_frame.h"

#include "core/container.h"
#include "proxy/metrics_proxy.h"

#define TUNNEL_LINGER_MS 5000
#define TUNNEL_READ_BUDGET 8
#define CTL_MAX (WS_MAX_HEADER + WS_MAX_CONTROL_PAYLOAD)

_Static_assert(LIVE_TUNNELS <= INT16_MAX, "a tunnel keeps its status page slot in 16 bits");

enum { SIDE_CLIENT = 0, SIDE_UPSTREAM = 1 };

struct tunnel_dir {
    struct buf *buf;            /* read from the source side, not yet written (NULL = none) */
    uint32_t fed;               /* bytes at buf head already given to `ws` */
    uint32_t hold;                /* bytes at buf head that may be written (the rest waits for a
                                   complete control frame) */
    struct ws_stream ws;        /* frames read from the source side */
    uint64_t bytes;             /* bytes read from the source side */
    uint8_t *inject;            /* owned: our control frame to write to the destination */
    uint16_t inject_len, inject_off; /* a control frame: at most 14 + 125 bytes */
    unsigned eof : 1;           /* the source side sent FIN (or failed) */
    unsigned shut : 1;          /* we shut the destination's write side */
    unsigned close_seen : 1;    /* the source sent a WebSocket close frame */
    unsigned bulk : 1;          /* reads fill whole buffers: use BUF_BIG_SIZE ones */
};

/* A token bucket over the client's WebSocket messages (websocket_message_rate). */
struct tunnel_rate {
    uint64_t rate;              /* milli-messages per second */
    uint64_t cap;               /* bucket size, milli-messages (burst) */
    uint64_t tokens;            /* milli-messages available */
    uint64_t last_ms;           /* last refill */
    uint32_t seen;              /* client messages already charged (wraps like the count) */
};

/*
 * An idle tunnel is this struct and nothing else (decision 3: well under
 * 1 KiB): keep it packed -- durations fit 32 bits of milliseconds, the one
 * prefix goes one way only, the client end is found without a pointer
 * unless it was given ready-made.
 */
struct tunnel {
    struct tunnel_end *client_end; /* a ready-made client end (HTTP/2 stream); NULL: sock[0] */
    struct tunnel_dir dir[2];   /* dir[i]: from end i to end 1 - i (T_END) */
    struct tunnel_sock_end sock[2]; /* the ends made from the connections given (sock[0]
                                   unused when the client end was given ready-made) */
    struct timer timer;         /* idle / ping / linger deadline */
    struct posted post;
    char *prefix;               /* owned: written to the client before anything relayed
                                   (the 101 head) */
    uint32_t prefix_len, prefix_off;
    uint8_t websocket;
    uint8_t closing;            /* Switchyard ended it: waiting for the frames to drain and FINs */
    uint8_t ping_pending[2];    /* a ping to side i awaits its pong */
    uint8_t dead;
    int16_t live;               /* status page slot (core/live.h), -1 none: fits the padding */
    uint8_t ping_token[8];
    uint32_t idle_timeout, ping_interval, ping_timeout; /* ms (at most ~49 days) */
    unsigned nlogs;
    uint64_t ping_sent_ms;
    uint64_t start_ms, last_activity_ms;
    const char *close_reason;   /* static string */
    int metrics_sid;            /* metrics series (proxy/metrics_proxy.h), 0 none */
    uint64_t conn_id;
    char *log_ctx;
    struct tunnel_log *logs;
    struct tunnel *next, *prev; /* all tunnels of the worker */
    struct tunnel_rate *rate;   /* websocket_message_rate state; NULL = no limit */
    struct limit_conn_holds *limit_conn; /* the upgrade request's limit_conn counts (owned) */
    unsigned *peer_load;        /* the upstream server's active-connection count we hold */
};

unsigned tunnel_count;
static struct tunnel *all_tunnels;
static uint64_t ping_counter;

static void tunnel_on_timer(struct timer *t);
static void tunnel_on_post(struct posted *p);
static void tunnel_run(struct tunnel *t);

/* End `side` of the tunnel. */
static inline struct tunnel_end *T_END(struct tunnel *t, int side)
{
    if (side == SIDE_CLIENT && t->client_end)
        return t->client_end;
    return &t->sock[side].end;
}

/* ------------------------------------------------------------ ending */

/* "s.mmm" of `ms` milliseconds into `out`. */
static void fmt_msec(char *out, size_t cap, uint64_t ms)
{
    snprintf(out, cap, "%llu.%03llu", (unsigned long long)(ms / 1000),
             (unsigned long long)(ms % 1000));
}

/* The value of mark `letter` with `base` (tunnel.h) as the tunnel ends. */
static void mark_value(const struct tunnel *t, char letter, uint64_t base, char *out, size_t cap)
{
    uint64_t now = loop_now(), wall = loop_wall_ms();
    uint64_t from_client = t->dir[SIDE_CLIENT].bytes, from_upstream = t->dir[SIDE_UPSTREAM].bytes;
    switch (letter) {
    case 'd':
        fmt_msec(out, cap, now - t->start_ms);
        return;
    case 'c':
    case 'u':
        snprintf(out, cap, "%llu", (unsigned long long)(letter == 'c' ? from_client : from_upstream));
        return;
    case 'r':
        snprintf(out, cap, "%s", t->close_reason ? t->close_reason : "-");
        return;
    case 'T':
        fmt_msec(out, cap, wall > base ? wall - base : 0);
        return;
    case 'K':
    case 'R':
        fmt_msec(out, cap, now > base ? now - base : 0);
        return;
    case 'B':
    case 'b':
    case 'X':
        snprintf(out, cap, "%llu", (unsigned long long)(base + from_upstream));
        return;
    case 'S':
        snprintf(out, cap, "%llu", (unsigned long long)(base + from_client));
        return;
    case 'C':
        snprintf(out, cap, "OK");
        return;
    case 'M':
        fmt_msec(out, cap, wall);
        return;
    case 'L':
        snprintf(out, cap, "%s", time_local());
        return;
    case 'I':
        snprintf(out, cap, "%s", time_iso8601());
        return;
    }
    snprintf(out, cap, "-");
}

/* Copy a prepared line with its marks replaced (and a '\n'); malloc'd. */
static char *fill_line(const struct tunnel *t, const struct tunnel_log *tl, size_t *outlen)
{
    size_t nmarks = 0;
    for (size_t k = 0; k < tl->len; k++)
        nmarks += tl->line[k] == TUNNEL_MARK;
    size_t cap = tl->len + nmarks * 64 + 2;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t k = 0; k < tl->len; k++) {
        if (tl->line[k] != TUNNEL_MARK || k + 1 >= tl->len) {
            out[o++] = tl->line[k];
            continue;
        }
        char letter = tl->line[++k];
        uint64_t base = 0;
        while (k + 1 < tl->len && tl->line[k + 1] >= '0' && tl->line[k + 1] <= '9')
            base = base * 10 + (uint64_t)(tl->line[++k] - '0');
        if (k + 1 < tl->len && tl->line[k + 1] == ';')
            k++;
        char v[64];
        mark_value(t, letter, base, v, sizeof(v));
        size_t vl = strlen(v);
        memcpy(out + o, v, vl);
        o += vl;
    }
    out[o++] = '\n';
    *outlen = o;
    return out;
}

static void write_logs(struct tunnel *t)
{
    for (unsigned i = 0; i < t->nlogs; i++) {
        struct tunnel_log *tl = &t->logs[i];
        if (!tl->lf || tl->lf->fd < 0)
            continue;
        size_t n;
        char *out = fill_line(t, tl, &n);
        if (!out)
            continue;
        if (write(tl->lf->fd, out, n) < 0) {
            /* a full disk loses the line, never the traffic */
        }
        free(out);
    }
}

static void tunnel_free(void *p)
{
    struct tunnel *t = p;
    for (unsigned i = 0; i < t->nlogs; i++) {
        log_file_put(t->logs[i].lf);
        free(t->logs[i].line);
    }
    free(t->logs);
    free(t->log_ctx);
    free(t->rate);
    free(t);
}

/* Close both ends now; `reason` is what the access log reports. */
static void tunnel_close(struct tunnel *t, const char *reason)
{
    if (t->dead)
        return;
    t->dead = 1;
    if (!t->close_reason)
        t->close_reason = reason;
    timer_cancel(&t->timer);
    loop_unpost(&t->post);
    free(t->prefix);
    t->prefix = NULL;
    for (int i = 0; i < 2; i++) {
        buf_put(t->dir[i].buf);
        t->dir[i].buf = NULL;
        free(t->dir[i].inject);
        t->dir[i].inject = NULL;
        T_END(t, i)->ops->close(T_END(t, i));
    }
    sy_log(LOG_LVL_INFO, "*%llu tunnel closed (%s) after %llu ms, %llu bytes from client, %llu from upstream%s",
           (unsigned long long)t->conn_id, t->close_reason,
           (unsigned long long)(loop_now() - t->start_ms),
           (unsigned long long)t->dir[SIDE_CLIENT].bytes,
           (unsigned long long)t->dir[SIDE_UPSTREAM].bytes, t->log_ctx ? t->log_ctx : "");
    write_logs(t);
    /* A tunnel counts for limit_conn as long as it lives. */
    limit_conn_release(t->limit_conn);
    t->limit_conn = NULL;
    if (t->peer_load) {
        (*t->peer_load)--;
        t->peer_load = NULL;
    }
    if (t->prev)
        t->prev->next = t->next;
    else if (all_tunnels == t)
        all_tunnels = t->next;
    if (t->next)
        t->next->prev = t->prev;
    tunnel_count--;
    live_tunnel_close(t->live);
    metrics_tunnel_closed(t->metrics_sid, t->close_reason);
    stats_add(&sy_stats->active, -1);
    stats_add(&sy_stats->writing, -1);
    loop_defer_free(tunnel_free, t);
}

/* Queue a close frame towards side `to` (carried by dir[1 - to]). */
static void queue_close(struct tunnel *t, int to, uint16_t code, const char *reason)
{
    struct tunnel_dir *d = &t->dir[1 - to];
    if (!t->websocket || d->inject || d->shut)
        return;
    uint8_t *f = malloc(CTL_MAX);
    if (!f)
        return;
    uint8_t key[4] = {0x5e, 0x1f, 0x2a, 0x77};
    d->inject_len = (uint16_t)ws_build_close(f, code, reason, to == SIDE_UPSTREAM ? key : NULL);
    d->inject = f;
    d->inject_off = 0;
}

/*
 * Switchyard ends the tunnel: a close frame to each side (WebSocket), then
 * FIN once it is written; the ends close when both sides are done or the
 * linger deadline passes.
 */
static void tunnel_wind_down(struct tunnel *t, uint16_t code, const char *reason, const char *why)
{
    if (t->closing || t->dead)
        return;
    t->closing = 1;
    t->close_reason = why;
    if (t->websocket) {
        queue_close(t, SIDE_CLIENT, code, reason);
        queue_close(t, SIDE_UPSTREAM, code, reason);
    }
    timer_set(&t->timer, TUNNEL_LINGER_MS);
    loop_post(&t->post);
}

/* ------------------------------------------------------------ relaying */

/* Is the pong in frame[0..total) (from side `from`) the answer to our ping? */
static int is_our_pong(struct tunnel *t, const uint8_t *frame, const struct ws_frame_info *fi)
{
    if (fi->payload_len != sizeof(t->ping_token))
        return 0;
    uint8_t payload[sizeof(t->ping_token)];
    memcpy(payload, frame + fi->header_len, sizeof(payload));
    if (fi->masked)
        ws_mask_bytes(payload, sizeof(payload), fi->mask, 0);
    return memcmp(payload, t->ping_token, sizeof(payload)) == 0;
}

/* Charge the client's new messages to its bucket; 0, or -1 when over the rate. */
static int rate_charge(struct tunnel *t)
{
    struct tunnel_rate *r = t->rate;
    uint64_t n = (uint32_t)(t->dir[SIDE_CLIENT].ws.messages - r->seen);
    if (!n)
        return 0;
    r->seen += n;
    uint64_t now = loop_now();
    r->tokens += (now - r->last_ms) * r->rate / 1000;
    if (r->tokens > r->cap)
        r->tokens = r->cap;
    r->last_ms = now;
    if (r->tokens < n * 1000)
        return -1;
    r->tokens -= n * 1000;
    return 0;
}

/*
 * Follow the frames in the unscanned part of dir `i`'s buffer: swallow our
 * pongs, note close frames, and compute how many bytes may be written.
 * Returns 0, -1 on a protocol violation (or a message over the size limit:
 * d->ws.err says which), -2 when the client exceeds its message rate.
 */
static int scan_frames(struct tunnel *t, int i)
{
    struct tunnel_dir *d = &t->dir[i];
    struct buf *b = d->buf;
    for (;;) {
        size_t have = buf_len(b);
        if (d->fed >= have) {
            d->hold = have;
            return 0;
        }
        uint8_t *base = (uint8_t *)buf_head(b);
        struct ws_frame_info ctl;
        size_t total = 0;
        ssize_t r = ws_stream_feed(&d->ws, base + d->fed, have - d->fed, &ctl, &total);
        if (r < 0) {
            /* What precedes the offending frame is still relayed. */
            d->hold = d->fed + d->ws.err_off;
            return -1;
        }
        if (i == SIDE_CLIENT && t->rate && rate_charge(t) < 0) {
            d->hold = d->fed;
            return -2;
        }
        d->fed += (size_t)r;
        if (d->fed >= have) {
            d->hold = have;
            return 0;
        }
        if (total == 0) {
            /* An incomplete control frame starts here: write what precedes it. */
            d->hold = d->fed;
            return 0;
        }
        uint8_t *frame = base + d->fed;
        if (ctl.opcode == WS_OP_PONG && t->ping_pending[i] && is_our_pong(t, frame, &ctl)) {
            /* Our own keep-alive: the peer never asked for it, so it never sees it. */
            memmove(frame, frame + total, have - d->fed - total);
            b->last -= (uint32_t)total;
            ws_stream_skip(&d->ws, total);
            t->ping_pending[i] = 0;
            continue;
        }
        if (ctl.opcode == WS_OP_CLOSE) {
            d->close_seen = 1;
            /* Whoever starts the close handshake closed the tunnel, even though
             * the server side usually sends the first FIN (RFC 6455 §7.1.1). */
            if (!t->close_reason)
                t->close_reason = i == SIDE_CLIENT ? "client closed" : "upstream closed";
        }
        /* Feeding again from the frame start passes over it (ws_stream remembers). */
    }
}

/* Write `len` bytes at `p` to end `e` (tunnel_end_ops.writev). */
static ssize_t end_send(struct tunnel_end *e, const void *p, size_t len)
{
    struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
    return e->ops->writev(e, &iov, 1);
}

/*
 * Move bytes of direction `i`. Returns 1 when progress was made, 0 when it
 * waits for an event, -1 when the tunnel was closed.
 */
static int pump(struct tunnel *t, int i)
{
    struct tunnel_dir *d = &t->dir[i];
    struct tunnel_end *src = T_END(t, i), *dst = T_END(t, 1 - i);
    int progress = 0;
    for (int round = 0; round < TUNNEL_READ_BUDGET; round++) {
        /* 0. The switch itself (the 101 head) goes to the client first. */
        if (i == SIDE_UPSTREAM && t->prefix) {
            if (!(dst->ready & TUNNEL_END_W))
                return progress;
            ssize_t w = end_send(dst, t->prefix + t->prefix_off, t->prefix_len - t->prefix_off);
            if (w == SY_AGAIN)
                return progress;
            if (w < 0) {
                tunnel_close(t, "client closed");
                return -1;
            }
            t->prefix_off += (uint32_t)w;
            if (t->prefix_off == t->prefix_len) {
                free(t->prefix);
                t->prefix = NULL;
            }
            progress = 1;
            continue;
        }
        /* 1. Bytes waiting for the destination. */
        if (d->buf && buf_len(d->buf) > 0) {
            int sc;
            if (t->websocket && !d->ws.err && (sc = scan_frames(t, i)) < 0) {
                /* 1002 for a broken frame; 1009 / 1008 for a client over
                 * websocket_max_message_size / websocket_message_rate. */
                uint16_t code = 1002;
                const char *why = "protocol error";
                if (sc == -2) {
                    code = 1008;
                    why = "message rate exceeded";
                    sy_log(LOG_LVL_WARN, "*%llu client exceeded websocket_message_rate%s",
                           (unsigned long long)t->conn_id, t->log_ctx ? t->log_ctx : "");
                } else if (d->ws.err == WS_FE_TOO_BIG) {
                    code = 1009;
                    why = "message too big";
                    sy_log(LOG_LVL_WARN, "*%llu client sent a message over "
                           "websocket_max_message_size (%llu bytes)%s",
                           (unsigned long long)t->conn_id, (unsigned long long)d->ws.max_message,
                           t->log_ctx ? t->log_ctx : "");
                } else {
                    sy_log(LOG_LVL_WARN, "*%llu %s sent an invalid WebSocket frame (%s)%s",
                           (unsigned long long)t->conn_id, i == SIDE_CLIENT ? "client" : "upstream",
                           ws_frame_error_str(d->ws.err), t->log_ctx ? t->log_ctx : "");
                }
                /* The frames before the offending one are relayed, nothing
                 * after it; then the close frames go out. */
                d->buf->last = d->buf->pos + (uint32_t)d->hold;
                d->fed = d->hold;
                if (d->hold == 0) {
                    buf_put(d->buf);
                    d->buf = NULL;
                }
                d->eof = 1;
                tunnel_wind_down(t, code, why, why);
                progress = 1;
                continue;
            }
            size_t n = t->websocket && !d->ws.err ? d->hold : buf_len(d->buf);
            if (n == 0 && buf_len(d->buf) > 0 && !d->eof) {
                /* Waiting for the rest of a control frame. */
                goto read_more;
            }
            if (n > 0) {
                if (!(dst->ready & TUNNEL_END_W))
                    return progress;
                ssize_t w = end_send(dst, buf_head(d->buf), n);
                if (w == SY_AGAIN)
                    return progress;
                if (w < 0) {
                    tunnel_close(t, i == SIDE_CLIENT ? "upstream closed" : "client closed");
                    return -1;
                }
                buf_consume(d->buf, (size_t)w);
                d->fed -= (size_t)w < d->fed ? (size_t)w : d->fed;
                d->hold -= (size_t)w;
                progress = 1;
                if (buf_len(d->buf) > 0)
                    continue;
            }
            if (d->buf && buf_len(d->buf) == 0) {
                buf_put(d->buf);
                d->buf = NULL;
                d->fed = d->hold = 0;
            }
        }
        /* 2. Our own control frame, only between two frames. */
        if (d->inject && !d->buf && (!t->websocket || ws_stream_at_boundary(&d->ws) || d->eof)) {
            if (!(dst->ready & TUNNEL_END_W))
                return progress;
            ssize_t w = end_send(dst, d->inject + d->inject_off, d->inject_len - d->inject_off);
            if (w == SY_AGAIN)
                return progress;
            if (w < 0) {
                tunnel_close(t, t->close_reason ? t->close_reason
                                                : i == SIDE_CLIENT ? "upstream closed" : "client closed");
                return -1;
            }
            d->inject_off += (uint16_t)w;
            if (d->inject_off == d->inject_len) {
                free(d->inject);
                d->inject = NULL;
            }
            progress = 1;
            continue;
        }
        /* 3. FIN towards the destination once this direction is finished. */
        if ((d->eof || t->closing) && !d->buf && !d->inject && !d->shut) {
            if (d->eof || t->closing) {
                dst->ops->shutdown_wr(dst);
                d->shut = 1;
                progress = 1;
            }
        }
    read_more:
        /* 4. Read more from the source. */
        if (d->eof || !(src->ready & TUNNEL_END_R))
            return progress;
        if (d->buf && buf_room(d->buf) == 0) {
            buf_compact(d->buf);
            if (buf_room(d->buf) == 0)
                return progress;
        }
        if (d->buf && buf_len(d->buf) > 0 && d->hold > 0)
            return progress; /* backpressure: write what we have first */
        if (!d->buf && !(d->buf = d->bulk ? buf_get_big() : buf_get())) {
            tunnel_close(t, "out of memory");
            return -1;
        }
        size_t room = buf_room(d->buf);
        ssize_t r = src->ops->recv(src, buf_tail(d->buf), room);
        if (r > 0) {
            /* A read that fills a whole small buffer means bulk: take big
             * buffers from now on; a small read goes back to small ones. */
            if (room == BUF_SIZE && (size_t)r == room)
                d->bulk = 1;
            else if ((size_t)r < BUF_SIZE / 4)
                d->bulk = 0;
            d->buf->last += (uint32_t)r;
            d->bytes += (uint64_t)r;
            metrics_tunnel_bytes(t->metrics_sid, i == SIDE_CLIENT, (uint64_t)r);
            t->last_activity_ms = loop_now();
            live_tunnel_bytes(t->live, i, (uint64_t)r);
            progress = 1;
            continue;
        }
        if (r == SY_AGAIN) {
            if (buf_len(d->buf) == 0) {
                buf_put(d->buf);
                d->buf = NULL;
                d->fed = d->hold = 0;
            }
            return progress;
        }
        /* EOF or error from the source. */
        d->eof = 1;
        progress = 1;
        if (r < 0) {
            tunnel_close(t, i == SIDE_CLIENT ? "client reset" : "upstream reset");
            return -1;
        }
        if (!t->close_reason)
            t->close_reason = i == SIDE_CLIENT ? "client closed" : "upstream closed";
        if (t->websocket && !d->close_seen && !t->closing) {
            /* The side vanished without a close handshake: tell the other side
             * properly instead of a bare TCP close (1006 in browsers). */
            if (i == SIDE_UPSTREAM)
                queue_close(t, SIDE_CLIENT, 1011, "upstream closed");
            else
                queue_close(t, SIDE_UPSTREAM, 1001, "client went away");
        }
        if (d->buf && buf_len(d->buf) == 0) {
            buf_put(d->buf);
            d->buf = NULL;
            d->fed = d->hold = 0;
        }
        if (t->websocket && t->dir[0].close_seen && t->dir[1].close_seen && !t->dir[0].buf &&
            !t->dir[1].buf && !t->dir[0].inject && !t->dir[1].inject && !t->prefix) {
            /* Both close frames were relayed and a side closed its socket:
             * the WebSocket is over. Closing both now sends each peer its FIN
             * (no half-close dance, RFC 6455 7.1.1: the server closes first). */
            tunnel_close(t, t->close_reason);
            return -1;
        }
        if (!t->closing)
            timer_set(&t->timer, TUNNEL_LINGER_MS);
    }
    loop_post(&t->post);
    return progress;
}

static void tunnel_run(struct tunnel *t)
{
    for (int round = 0; round < 4 && !t->dead; round++) {
        int p0 = pump(t, SIDE_CLIENT);
        if (t->dead)
            return;
        int p1 = pump(t, SIDE_UPSTREAM);
        if (t->dead)
            return;
        /* Both directions finished (FIN relayed both ways): done. */
        if (t->dir[0].eof && t->dir[1].eof && t->dir[0].shut && t->dir[1].shut) {
            tunnel_close(t, t->close_reason ? t->close_reason : "closed");
            return;
        }
        /* Switchyard ended it and everything it had to say is written. */
        if (t->closing && t->dir[0].shut && t->dir[1].shut && (t->dir[0].eof || t->dir[1].eof)) {
            tunnel_close(t, t->close_reason);
            return;
        }
        if (p0 <= 0 && p1 <= 0)
            return;
    }
}

/* ------------------------------------------------------------ events */

/* Wake-ups come from the ends (tunnel_end.h), never from epoll directly. */
void tunnel_end_ready(struct tunnel_end *e, unsigned events)
{
    e->ready |= events;
    struct tunnel *t = e->tunnel;
    if (t && !t->dead)
        tunnel_run(t);
}

void tunnel_end_ready_post(struct tunnel_end *e, unsigned events)
{
    e->ready |= events;
    struct tunnel *t = e->tunnel;
    if (t && !t->dead)
        loop_post(&t->post);
}

static void tunnel_on_post(struct posted *p)
{
    struct tunnel *t = container_of(p, struct tunnel, post);
    if (!t->dead)
        tunnel_run(t);
}

static void send_pings(struct tunnel *t)
{
    ping_counter++;
    uint64_t v = (loop_now() << 16) ^ ping_counter ^ t->conn_id;
    memcpy(t->ping_token, &v, sizeof(t->ping_token));
    uint8_t key[4] = {0x33, 0x9a, 0x4c, 0x01};
    for (int side = 0; side < 2; side++) {
        struct tunnel_dir *d = &t->dir[1 - side];
        if (d->inject || d->shut)
            continue;
        uint8_t *f = malloc(CTL_MAX);
        if (!f)
            continue;
        d->inject_len = (uint16_t)ws_build_ping(f, t->ping_token, sizeof(t->ping_token),
                                      side == SIDE_UPSTREAM ? key : NULL);
        d->inject = f;
        d->inject_off = 0;
        t->ping_pending[side] = 1;
    }
    t->ping_sent_ms = loop_now();
}

/* The next deadline of a relaying tunnel, from its settings and activity. */
static void rearm(struct tunnel *t)
{
    uint64_t now = loop_now(), next = UINT64_MAX;
    if (t->idle_timeout)
        next = t->last_activity_ms + t->idle_timeout;
    if (t->ping_interval) {
        if (t->ping_pending[0] || t->ping_pending[1]) {
            uint64_t d = t->ping_sent_ms + t->ping_timeout;
            if (d < next)
                next = d;
        } else {
            uint64_t d = t->last_activity_ms + t->ping_interval;
            if (d < next)
                next = d;
        }
    }
    if (next != UINT64_MAX)
        timer_set(&t->timer, next > now ? next - now : 1);
}

static void tunnel_on_timer(struct timer *tm)
{
    struct tunnel *t = container_of(tm, struct tunnel, timer);
    if (t->dead)
        return;
    uint64_t now = loop_now();
    if (t->closing || t->dir[0].eof || t->dir[1].eof) {
        /* Linger over: whoever did not finish is cut off. */
        tunnel_close(t, t->close_reason ? t->close_reason : "linger timeout");
        return;
    }
    if (t->ping_interval && (t->ping_pending[0] || t->ping_pending[1]) &&
        now >= t->ping_sent_ms + t->ping_timeout) {
        const char *who = t->ping_pending[0] && t->ping_pending[1] ? "both sides"
                          : t->ping_pending[0]                   ? "client"
                                                                 : "upstream";
        sy_log(LOG_LVL_WARN, "*%llu WebSocket ping to %s not answered within %llu ms, closing%s",
               (unsigned long long)t->conn_id, who, (unsigned long long)t->ping_timeout,
               t->log_ctx ? t->log_ctx : "");
        tunnel_wind_down(t, 1011, "ping timeout", "ping timeout");
        return;
    }
    if (t->idle_timeout && now - t->last_activity_ms >= t->idle_timeout) {
        tunnel_wind_down(t, 1001, "idle timeout", "idle timeout");
        return;
    }
    if (t->websocket && t->ping_interval && !t->ping_pending[0] && !t->ping_pending[1] &&
        now - t->last_activity_ms >= t->ping_interval) {
        send_pings(t);
        loop_post(&t->post);
    }
    rearm(t);
}

/* ------------------------------------------------------------ start */

/*
 * Give the tunnel its two ends: the ready-made client end, or socket ends
 * around the connections. 0, or -1 with what was taken closed and the rest
 * left in `tp` for tunnel_start's fail path.
 */
static int take_ends(struct tunnel *t, struct tunnel_params *tp)
{
    if (tp->client_end) {
        t->client_end = tp->client_end;
    } else {
        if (tunnel_sock_end_init(&t->sock[SIDE_CLIENT], tp->client) < 0)
            return -1;
    }
    if (tunnel_sock_end_init(&t->sock[SIDE_UPSTREAM], tp->upstream) < 0) {
        /* Whatever the client end is now, it is closed through it. */
        T_END(t, SIDE_CLIENT)->ops->close(T_END(t, SIDE_CLIENT));
        tp->client_end = NULL;
        tp->client = NULL;
        return -1;
    }
    T_END(t, SIDE_CLIENT)->tunnel = T_END(t, SIDE_UPSTREAM)->tunnel = t;
    return 0;
}

/* A duration in 32 bits of milliseconds (about 49 days at most). */
static uint32_t ms32(uint64_t ms)
{
    return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

int tunnel_start(struct tunnel_params *tp)
{
    struct tunnel *t = calloc(1, sizeof(*t));
    if (!t || take_ends(t, tp) < 0) {
        free(t);
        goto fail;
    }
    ws_stream_init(&t->dir[SIDE_CLIENT].ws);
    ws_stream_init(&t->dir[SIDE_UPSTREAM].ws);
    t->prefix = tp->prefix_to_client;
    t->prefix_len = (uint32_t)tp->prefix_len;
    t->dir[SIDE_CLIENT].buf = tp->from_client;
    t->dir[SIDE_UPSTREAM].buf = tp->from_upstream;
    if (t->dir[SIDE_CLIENT].buf && buf_len(t->dir[SIDE_CLIENT].buf) == 0) {
        buf_put(t->dir[SIDE_CLIENT].buf);
        t->dir[SIDE_CLIENT].buf = NULL;
    }
    if (t->dir[SIDE_UPSTREAM].buf && buf_len(t->dir[SIDE_UPSTREAM].buf) == 0) {
        buf_put(t->dir[SIDE_UPSTREAM].buf);
        t->dir[SIDE_UPSTREAM].buf = NULL;
    }
    t->websocket = tp->websocket;
    t->idle_timeout = ms32(tp->idle_timeout);
    t->ping_interval = tp->websocket ? ms32(tp->ping_interval) : 0;
    t->ping_timeout = tp->ping_timeout ? ms32(tp->ping_timeout) : 30000;
    t->conn_id = tp->conn_id;
    t->dir[SIDE_CLIENT].ws.max_message =
        !tp->websocket ? 0 : tp->max_message > UINT32_MAX ? UINT32_MAX : (uint32_t)tp->max_message;
    if (tp->websocket && tp->message_rate && (t->rate = calloc(1, sizeof(*t->rate)))) {
        t->rate->rate = tp->message_rate;
        t->rate->cap = (tp->message_burst ? tp->message_burst : 1) * 1000;
        t->rate->tokens = t->rate->cap;
        t->rate->last_ms = loop_now();
    }
    t->log_ctx = tp->log_ctx;
    t->limit_conn = tp->limit_conn;
    t->peer_load = tp->peer_load;
    t->live = (int16_t)tp->live_slot;
    t->logs = tp->logs;
    t->nlogs = tp->nlogs;
    t->start_ms = t->last_activity_ms = loop_now();
    t->timer.cb = tunnel_on_timer;
    t->post.cb = tunnel_on_post;
    t->next = all_tunnels;
    if (all_tunnels)
        all_tunnels->prev = t;
    all_tunnels = t;
    tunnel_count++;
    t->metrics_sid = tp->metrics_sid;
    metrics_tunnel_open(t->metrics_sid);
    stats_add(&sy_stats->active, 1);
    stats_add(&sy_stats->writing, 1);
    rearm(t);
    tunnel_run(t);
    return 0;
fail:
    if (tp->client_end)
        tp->client_end->ops->close(tp->client_end);
    else if (tp->client)
        conn_close_fd(tp->client);
    conn_close_fd(tp->upstream);
    free(tp->prefix_to_client);
    buf_put(tp->from_client);
    buf_put(tp->from_upstream);
    for (unsigned i = 0; i < tp->nlogs; i++) {
        log_file_put(tp->logs[i].lf);
        free(tp->logs[i].line);
    }
    free(tp->logs);
    free(tp->log_ctx);
    limit_conn_release(tp->limit_conn);
    if (tp->peer_load)
        (*tp->peer_load)--;
    live_tunnel_close(tp->live_slot);
    return -1;
}

void tunnel_shutdown_all(void)
{
    for (struct tunnel *t = all_tunnels; t; t = t->next)
        if (!t->dead && !t->closing)
            tunnel_wind_down(t, 1001, "going away", "shutdown");
}

void tunnel_close_all(void)
{
    while (all_tunnels)
        tunnel_close(all_tunnels, "exit");
}
