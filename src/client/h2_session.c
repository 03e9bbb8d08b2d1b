/*
 * h2_session.c - one HTTP/2 connection (see h2_session.h): nghttp2 set-up
 * and limits, moving bytes between the socket and nghttp2, the connection's
 * timers, GOAWAY and close. The streams are in h2_stream.c.
 *
 * Output is pulled from nghttp2 (mem_send) into one buffer and written with
 * one send per turn; input is read into a per-worker scratch buffer and fed
 * to mem_recv, which keeps partial frames itself, so an idle connection
 * holds no buffer of ours.
 */
#include "client/h2_internal.h"

#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client/listener.h"
#include "conf/runtime.h"
#include "core/log.h"
#include "core/stats.h"
#include "http/phases.h"
#include "http/router.h"
#include "tls/tls.h"

#include "core/container.h"
#include "core/metrics.h"

#define H2_READ_BUDGET 16
/* Set explicitly: Debian's nghttp2 1.52 has these options backported from
 * 1.57 (RST_STREAM rate, CVE-2023-44487 "rapid reset") and 1.61
 * (CONTINUATION frames per header block, CVE-2024-27316 family); the values
 * are those later nghttp2 versions default to. */
#define H2_RESET_BURST 1000
#define H2_RESET_RATE 33
#define H2_MAX_CONTINUATIONS 8
/* SETTINGS frames and outbound ACKs (PING/SETTINGS floods) nghttp2 accepts
 * before it tears the connection down (its defaults, set explicitly). */
#define H2_MAX_SETTINGS 32
#define H2_MAX_OUTBOUND_ACK 1000

unsigned h2_active_conns;
static struct h2_session *all_sessions;

static void h2_on_io(struct handle *h, uint32_t events);
static void h2_on_timer(struct timer *t);
static void h2_on_post(struct posted *p);
static void h2_run(struct h2_session *sess);
static void h2_close(struct h2_session *sess, const char *reason);
static void h2_drain(struct h2_session *sess);
static int h2_feed(struct h2_session *sess, const char *data, size_t len);

int h2_is_preface(const char *data, size_t len)
{
    size_t n = len < H2_PREFACE_LEN ? len : H2_PREFACE_LEN;
    if (memcmp(data, H2_PREFACE, n) != 0)
        return 0;
    return len >= H2_PREFACE_LEN ? 1 : -1;
}

/*
 * The connection's server{} in the current generation, whose settings are
 * the connection's (limits, timeouts), as in nginx: the one SNI named on a
 * TLS connection, else the listen address's default server. Looked up once
 * per generation.
 */
const struct server_conf *h2_session_server(struct h2_session *sess)
{
    if (rt_current && sess->srv && sess->srv_gen == rt_current->gen)
        return sess->srv;
    const struct listen_conf *l = client_current_listen(&sess->cc);
    if (!l)
        return NULL;
    const struct server_conf *srv = l->default_server;
    const char *sni = tls_is(&sess->cc.c) ? tls_server_name(&sess->cc.c) : NULL;
    if (sni && *sni) {
        struct regex_caps caps;
        const struct server_conf *named = router_find_server(l, str_from_cstr(sni), &caps);
        if (named)
            srv = named;
    }
    sess->srv = srv;
    sess->srv_gen = rt_current->gen;
    return srv;
}

static const struct loc_conf *sess_lc(struct h2_session *sess)
{
    const struct server_conf *srv = h2_session_server(sess);
    return srv ? srv->lc : NULL;
}

void h2_session_log_ctx(struct h2_session *sess, char *out, size_t cap)
{
    char ip[64];
    conn_peer_ip(&sess->cc.c, ip, sizeof(ip));
    snprintf(out, cap, ", client: %s", ip);
}

void h2_session_schedule(struct h2_session *sess)
{
    if (!sess->closed)
        loop_post(&sess->post);
}

/* ------------------------------------------------------------ nghttp2 callbacks */

/*
 * Stream ids only grow: a HEADERS for an id the client skipped is a
 * connection error (RFC 9113 5.1.1). nghttp2 ignores such a block, to be
 * safe with trailers on streams it forgot; the skipped ranges are known
 * exactly, so they are checked here.
 */
static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *ud)
{
    struct h2_session *sess = ud;
    if (hd->type != NGHTTP2_HEADERS || !(hd->stream_id & 1))
        return 0;
    int32_t id = hd->stream_id;
    if (id > sess->max_id) {
        if (id > sess->max_id + 2) {
            if (sess->ngaps == H2_ID_GAPS) {
                memmove(sess->gaps, sess->gaps + 1, sizeof(sess->gaps[0]) * (H2_ID_GAPS - 1));
                sess->ngaps--;
            }
            sess->gaps[sess->ngaps].from = sess->max_id ? sess->max_id + 2 : 1;
            sess->gaps[sess->ngaps].to = id - 2;
            sess->ngaps++;
        }
        sess->max_id = id;
        return 0;
    }
    for (unsigned i = 0; i < sess->ngaps; i++)
        if (id >= sess->gaps[i].from && id <= sess->gaps[i].to) {
            nghttp2_session_terminate_session(ng, NGHTTP2_PROTOCOL_ERROR);
            break;
        }
    return 0;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct h2_session *sess = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct h2_stream *hs = h2_stream_new(sess, f->hd.stream_id);
    if (!hs)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM INTERNAL_ERROR */
    nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, hs);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud)
{
    (void)flags;
    (void)ud;
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct h2_stream *hs = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!hs)
        return 0;
    if (hs->started)
        return h2_stream_trailer(hs, name, namelen, value, valuelen);
    return h2_stream_header(hs, name, namelen, value, valuelen);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct h2_session *sess = ud;
    struct h2_stream *hs;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        hs = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
        if (!hs)
            break;
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST)
            h2_stream_head_done(hs, !!(f->hd.flags & NGHTTP2_FLAG_END_STREAM));
        else if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
            h2_stream_end(hs);
        break;
    case NGHTTP2_DATA:
        hs = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
        if (hs && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
            h2_stream_end(hs);
        /* Empty DATA frames cost a frame's work and carry nothing
         * (CVE-2019-9518): a few are legal, a stream of them is abuse. */
        if (f->hd.length == 0 && !(f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
            ++sess->empty_data > H2_MAX_EMPTY_DATA)
            h2_session_calm(sess, "sent too many empty DATA frames");
        break;
    case NGHTTP2_RST_STREAM:
        /* Streams reset before their response was sent: a client that opens
         * and cancels streams makes the proxy start work for nothing
         * (CVE-2023-44487, "rapid reset"). */
        hs = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
        if (hs && !hs->end_sent && ++sess->early_resets > H2_MAX_EARLY_RESETS &&
            sess->early_resets > sess->completed)
            h2_session_calm(sess, "reset too many streams before their response");
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    struct h2_stream *hs = nghttp2_session_get_stream_user_data(ng, stream_id);
    if (!hs) {
        /* Nobody reads it: give the connection window back. */
        nghttp2_session_consume_connection(ng, len);
        return 0;
    }
    h2_stream_data(hs, data, len);
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    if ((f->hd.type != NGHTTP2_DATA && f->hd.type != NGHTTP2_HEADERS) ||
        !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    struct h2_stream *hs = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!hs || hs->end_sent)
        return 0;
    hs->end_sent = 1;
    hs->sess->completed++;
    /* The response is complete: its log line now ($request_time). */
    http_request_done(&hs->st);
    if (!hs->client_done && !hs->ws) {
        /* The client may still be sending a body nobody reads: end it
         * (RFC 9113 8.1), and give its bytes in flight back. */
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t stream_id, uint32_t error_code,
                           void *ud)
{
    (void)ud;
    struct h2_stream *hs = nghttp2_session_get_stream_user_data(ng, stream_id);
    if (hs) {
        nghttp2_session_set_stream_user_data(ng, stream_id, NULL);
        h2_stream_closed(hs, error_code);
    }
    return 0;
}

/* DATA frames are at most http2_chunk_size (nginx's unit of response
 * bytes per frame), within what the peer's windows and frame size allow. */
static ssize_t data_chunk_len(nghttp2_session *ng, uint8_t type, int32_t stream_id,
                              int32_t conn_window, int32_t stream_window, uint32_t max_frame,
                              void *ud)
{
    (void)type;
    (void)ud;
    ssize_t len = max_frame;
    struct h2_stream *hs = nghttp2_session_get_stream_user_data(ng, stream_id);
    const struct loc_conf *lc = hs ? hs->st.req.lc : NULL;
    if (lc && lc->http2_chunk_size && (ssize_t)lc->http2_chunk_size < len)
        len = (ssize_t)lc->http2_chunk_size;
    if (conn_window < len)
        len = conn_window;
    if (stream_window < len)
        len = stream_window;
    return len > 0 ? len : 1;
}

/* Protocol errors nghttp2 detected: one info line per connection (a client
 * that misbehaves once usually goes on doing it). */
static int on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *f, int lib_error, void *ud)
{
    (void)ng;
    struct h2_session *sess = ud;
    if (!sess->flood_logged) {
        sess->flood_logged = 1;
        char ctx[128];
        h2_session_log_ctx(sess, ctx, sizeof(ctx));
        sy_log(LOG_LVL_INFO, "*%llu client sent invalid HTTP/2 frame (type %u): %s%s",
               (unsigned long long)sess->cc.id, (unsigned)f->hd.type,
               nghttp2_strerror(lib_error), ctx);
    }
    return 0;
}

static nghttp2_session_callbacks *callbacks(void)
{
    static nghttp2_session_callbacks *cb;
    if (cb)
        return cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
    nghttp2_session_callbacks_set_data_source_read_length_callback(cb, data_chunk_len);
    return cb;
}

static nghttp2_option *options(void)
{
    static nghttp2_option *opt;
    if (opt)
        return opt;
    if (nghttp2_option_new(&opt) != 0)
        return NULL;
    /* The receive windows open as handlers consume body bytes (h2_stream.c). */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_stream_reset_rate_limit(opt, H2_RESET_BURST, H2_RESET_RATE);
    nghttp2_option_set_max_continuations(opt, H2_MAX_CONTINUATIONS);
    nghttp2_option_set_max_settings(opt, H2_MAX_SETTINGS);
    nghttp2_option_set_max_outbound_ack(opt, H2_MAX_OUTBOUND_ACK);
    return opt;
}

/* ------------------------------------------------------------ memory */

/*
 * nghttp2's allocator for one session. Allocations of H2_BIG_ALLOC bytes or
 * more -- the 16 KiB output frame buffer every session keeps -- get pages
 * of their own, which an idle connection gives back to the kernel
 * (h2_release_idle_memory): the frame buffer holds nothing between frames.
 * Everything else comes from malloc.
 */
static size_t page_round(size_t n)
{
    static size_t pg;
    if (!pg)
        pg = (size_t)sysconf(_SC_PAGESIZE);
    return (n + pg - 1) & ~(pg - 1);
}

static void *h2m_malloc(size_t n, void *ud)
{
    struct h2_session *sess = ud;
    if (n >= H2_BIG_ALLOC && sess->nbig < H2_MAX_BIG) {
        size_t len = page_round(n);
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        sess->big[sess->nbig].p = p;
        sess->big[sess->nbig].len = len;
        sess->nbig++;
        return p;
    }
    return malloc(n);
}

static int big_index(struct h2_session *sess, void *p)
{
    for (unsigned i = 0; i < sess->nbig; i++)
        if (sess->big[i].p == p)
            return (int)i;
    return -1;
}

static void h2m_free(void *p, void *ud)
{
    struct h2_session *sess = ud;
    if (!p)
        return;
    int i = big_index(sess, p);
    if (i < 0) {
        free(p);
        return;
    }
    munmap(p, sess->big[i].len);
    sess->big[i] = sess->big[--sess->nbig];
}

static void *h2m_calloc(size_t nmemb, size_t size, void *ud)
{
    size_t n = nmemb * size;
    if (size && n / size != nmemb)
        return NULL;
    struct h2_session *sess = ud;
    unsigned before = sess->nbig;
    void *p = h2m_malloc(n, ud);
    if (p && sess->nbig == before)
        memset(p, 0, n); /* fresh anonymous pages are zero already */
    return p;
}

static void *h2m_realloc(void *p, size_t n, void *ud)
{
    struct h2_session *sess = ud;
    if (!p)
        return h2m_malloc(n, ud);
    int i = big_index(sess, p);
    if (i < 0 && n < H2_BIG_ALLOC)
        return realloc(p, n);
    size_t old = i >= 0 ? sess->big[i].len : malloc_usable_size(p);
    void *np = h2m_malloc(n, ud);
    if (!np)
        return NULL;
    memcpy(np, p, old < n ? old : n);
    h2m_free(p, ud);
    return np;
}

/* An idle connection (no stream, nothing to send) holds no frame bytes:
 * its frame buffer's pages go back to the kernel until the next frame. */
static void h2_release_idle_memory(struct h2_session *sess)
{
    if (sess->big_released)
        return;
    sess->big_released = 1;
    for (unsigned i = 0; i < sess->nbig; i++)
        madvise(sess->big[i].p, sess->big[i].len, MADV_DONTNEED);
}

/* ------------------------------------------------------------ start */

int h2_session_start(const struct client_conn *cc, const char *data, size_t len)
{
    struct h2_session *sess = calloc(1, sizeof(*sess));
    if (!sess)
        return -1;
    sess->cc = *cc;
    sess->cc.proto = CLIENT_PROTO_H2;
    sess->cc.c.h.on_io = h2_on_io;
    sess->timer.cb = h2_on_timer;
    sess->post.cb = h2_on_post;
    const struct loc_conf *lc = sess_lc(sess);
    nghttp2_session_callbacks *cb = callbacks();
    nghttp2_option *opt = options();
    sess->mem = (nghttp2_mem){sess, h2m_malloc, h2m_free, h2m_calloc, h2m_realloc};
    if (!cb || !opt || nghttp2_session_server_new3(&sess->ng, cb, sess, opt, &sess->mem) != 0) {
        free(sess);
        return -1;
    }
    uint32_t streams = lc ? (uint32_t)lc->http2_max_concurrent_streams : 128;
    /* The stream window is http2_body_preread_size, within one body buffer
     * of the stream (at most 64 KiB - 1, at least 1 KiB: a closed window
     * would need a WINDOW_UPDATE before the handler reads). */
    uint64_t preread = lc ? lc->http2_body_preread_size : 65536;
    uint32_t window = preread > BUF_BIG_SIZE - 1 ? BUF_BIG_SIZE - 1
                      : preread < 1024           ? 1024
                                                 : (uint32_t)preread;
    sess->window = window;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window},
        /* WebSocket over HTTP/2 (RFC 8441): extended CONNECT is welcome. */
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
    };
    /* The connection window covers every stream's window: the streams'
     * own windows are what bound memory. */
    uint64_t conn_window = (uint64_t)streams * window;
    if (conn_window > 0x7fffffff)
        conn_window = 0x7fffffff;
    if (nghttp2_submit_settings(sess->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(sess->ng, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)conn_window) != 0 ||
        loop_rebind(&sess->cc.c.h) < 0) {
        nghttp2_session_del(sess->ng);
        free(sess);
        return -1;
    }
    h2_active_conns++;
    METRICS_FIXED_ADD(h2_conns, 1);
    METRICS_FIXED_ADD(h2_conns_total, 1);
    stats_add(&sy_stats->active, 1);
    sess->next = all_sessions;
    if (all_sessions)
        all_sessions->prev = sess;
    all_sessions = sess;
    timer_set(&sess->timer, lc ? lc->keepalive_timeout : 75000);
    if (len && h2_feed(sess, data, len) < 0)
        return 0;
    h2_run(sess);
    return 0;
}

/* ------------------------------------------------------------ I/O */

/* Write what nghttp2 has to send: framed bytes are gathered in sess->out and
 * written with one send; 0, or -1 when the connection was closed. */
static int h2_flush(struct h2_session *sess)
{
    for (int round = 0; round < 64; round++) {
        if (sess->out && buf_len(sess->out)) {
            if (!(sess->cc.c.flags & CONN_F_READY_W))
                return 0;
            ssize_t w = conn_send(&sess->cc.c, buf_head(sess->out), buf_len(sess->out));
            if (w == SY_AGAIN)
                return 0;
            if (w < 0) {
                h2_close(sess, "write error");
                return -1;
            }
            buf_consume(sess->out, (size_t)w);
            if (sess->calm && w > 0)
                timer_set(&sess->timer, H2_CALM_DRAIN_MS); /* the client reads: keep draining */
            if (buf_len(sess->out))
                continue;
        }
        /* Gather frames until the buffer is full. */
        for (;;) {
            if (!sess->out && !(sess->out = buf_get_big())) {
                h2_close(sess, "out of memory");
                return -1;
            }
            if (buf_room(sess->out) < 16 * 1024 + 9 && buf_len(sess->out))
                break;
            if (buf_room(sess->out) == 0)
                buf_compact(sess->out);
            const uint8_t *p;
            sess->in_callback = 1;
            ssize_t n = nghttp2_session_mem_send(sess->ng, &p);
            sess->in_callback = 0;
            if (sess->closed)
                return -1;
            if (n < 0) {
                h2_close(sess, "nghttp2 send error");
                return -1;
            }
            if (n == 0)
                break;
            sess->big_released = 0; /* the frame buffer is in use again */
            /* A frame larger than the room left: write what we have first.
             * mem_send's bytes stay valid until its next call, so copy in
             * pieces with writes in between. */
            while (n > 0) {
                size_t room = buf_room(sess->out);
                if (room == 0) {
                    buf_compact(sess->out);
                    room = buf_room(sess->out);
                }
                size_t k = (size_t)n < room ? (size_t)n : room;
                memcpy(buf_tail(sess->out), p, k);
                sess->out->last += (uint32_t)k;
                p += k;
                n -= (ssize_t)k;
                if (n > 0) {
                    ssize_t w = SY_AGAIN;
                    if (sess->cc.c.flags & CONN_F_READY_W)
                        w = conn_send(&sess->cc.c, buf_head(sess->out), buf_len(sess->out));
                    if (w == SY_AGAIN) {
                        /* Keep the rest of this frame: it must go out
                         * before anything nghttp2 makes next. */
                        struct buf *big = sess->out;
                        if (buf_room(big) < (size_t)n)
                            buf_compact(big);
                        if (buf_room(big) < (size_t)n) {
                            h2_close(sess, "output frame too large");
                            return -1;
                        }
                        memcpy(buf_tail(big), p, (size_t)n);
                        big->last += (uint32_t)n;
                        n = 0;
                        break;
                    }
                    if (w < 0) {
                        h2_close(sess, "write error");
                        return -1;
                    }
                    buf_consume(sess->out, (size_t)w);
                }
            }
        }
        if (!sess->out || buf_len(sess->out) == 0) {
            buf_put(sess->out);
            sess->out = NULL;
            return 0;
        }
    }
    loop_post(&sess->post);
    return 0;
}

static int h2_feed_ng(struct h2_session *sess, const char *data, size_t len);

/* Hand bytes read from the client to nghttp2. 1: go on reading; 0: stop
 * (the connection is draining after an error or a flood); -1: it closed.
 *
 * RFC 9113 3.4: the client's preface is the magic then a SETTINGS frame,
 * and nghttp2 ends a connection whose first frame is anything else. nginx
 * accepts it (its own test suite's client sends HEADERS first): so does
 * Switchyard, by handing nghttp2 an empty SETTINGS frame (the defaults)
 * before such a first frame (its type and flags, the 4th and 5th bytes of
 * its header, are held until they are here). */
static int h2_feed(struct h2_session *sess, const char *data, size_t len)
{
    static const char empty_settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    while (len && !sess->first_done) {
        if (sess->first_off < 24) { /* the magic, which nghttp2 checks */
            size_t k = 24u - sess->first_off < len ? 24u - sess->first_off : len;
            int rc = h2_feed_ng(sess, data, k);
            if (rc <= 0)
                return rc;
            sess->first_off = (uint8_t)(sess->first_off + k);
            data += k;
            len -= k;
            continue;
        }
        size_t k = 5u - sess->first_hn < len ? 5u - sess->first_hn : len;
        memcpy(sess->first_hdr + sess->first_hn, data, k);
        sess->first_hn = (uint8_t)(sess->first_hn + k);
        data += k;
        len -= k;
        if (sess->first_hn < 5)
            return 1;
        sess->first_done = 1;
        if (sess->first_hdr[3] != 4 || (sess->first_hdr[4] & 1)) { /* not SETTINGS, or its ACK */
            int rc = h2_feed_ng(sess, empty_settings, sizeof(empty_settings));
            if (rc <= 0)
                return rc;
        }
        int rc = h2_feed_ng(sess, sess->first_hdr, 5);
        if (rc <= 0)
            return rc;
    }
    return len ? h2_feed_ng(sess, data, len) : 1;
}

static int h2_feed_ng(struct h2_session *sess, const char *data, size_t len)
{
    sess->big_released = 0;
    sess->in_callback = 1;
    ssize_t rv = nghttp2_session_mem_recv(sess->ng, (const uint8_t *)data, len);
    sess->in_callback = 0;
    if (sess->closed)
        return -1;
    if (rv == NGHTTP2_ERR_FLOODED) {
        /* Frames that each want an answer (PING, SETTINGS) faster than the
         * client reads the answers. */
        h2_session_calm(sess, "flooded the connection with frames to acknowledge");
        return 0;
    }
    if (rv < 0) {
        char ctx[128];
        h2_session_log_ctx(sess, ctx, sizeof(ctx));
        sy_log(LOG_LVL_INFO, "*%llu client sent invalid HTTP/2 data (%s) while processing HTTP/2 "
               "connection%s", (unsigned long long)sess->cc.id, nghttp2_strerror((int)rv), ctx);
        /* nghttp2 queued a GOAWAY for most errors: deliver it, then close
         * (draining what the client still sends meanwhile). */
        h2_drain(sess);
        return 0;
    }
    return 1;
}

/* Read and hand to nghttp2; 0, or -1 when the connection was closed. */
static int h2_read(struct h2_session *sess)
{
    /* http2_recv_buffer_size: one input buffer per worker, shared by its
     * connections (nghttp2 keeps partial frames itself). */
    static char *scratch;
    static size_t scratch_size;
    const struct loc_conf *lc = sess_lc(sess);
    size_t want = lc && lc->http2_recv_buffer_size ? (size_t)lc->http2_recv_buffer_size : 262144;
    if (want != scratch_size) {
        char *nb = realloc(scratch, want);
        if (nb) {
            scratch = nb;
            scratch_size = want;
        }
    }
    if (!scratch) {
        h2_close(sess, "out of memory");
        return -1;
    }
    for (int i = 0; i < H2_READ_BUDGET; i++) {
        if (!(sess->cc.c.flags & CONN_F_READY_R))
            return 0;
        ssize_t n = conn_recv(&sess->cc.c, scratch, scratch_size);
        if (n == SY_AGAIN)
            return 0;
        if (n <= 0) {
            h2_close(sess, n == 0 ? "client closed" : "read error");
            return -1;
        }
        if (sess->calm)
            continue; /* draining: what the client sends is dropped */
        int rc = h2_feed(sess, scratch, (size_t)n);
        if (rc <= 0)
            return rc;
    }
    loop_post(&sess->post); /* budget used: come back after the others */
    return 0;
}

static void h2_run(struct h2_session *sess)
{
    if (sess->closed)
        return;
    if (h2_read(sess) < 0)
        return;
    if (h2_flush(sess) < 0)
        return;
    int pending = sess->out && buf_len(sess->out);
    if (sess->calm) {
        /* The GOAWAY is out: shut our side and read what the client still
         * sends until it closes (closing with unread input would make the
         * kernel answer with a RST that can destroy the GOAWAY). */
        if (!pending && !nghttp2_session_want_write(sess->ng) && !sess->shut) {
            sess->shut = 1;
            sess->cc.c.xprt->shutdown_wr(&sess->cc.c);
        }
        return;
    }
    if (!pending && !nghttp2_session_want_read(sess->ng) && !nghttp2_session_want_write(sess->ng)) {
        /* nghttp2 ended the session (a GOAWAY went out): close without
         * destroying it -- our side shut, the client's bytes read away. */
        h2_drain(sess);
        h2_run(sess);
        return;
    }
    if (!pending && sess->goaway && sess->nstreams == 0 &&
        !nghttp2_session_want_write(sess->ng)) {
        /* GOAWAY sent and every stream done: close, gracefully. */
        h2_drain(sess);
        h2_run(sess);
        return;
    }
    /* No stream: the connection is idle (keepalive_timeout). */
    if (sess->nstreams == 0 && !sess->timer.when) {
        const struct loc_conf *lc = sess_lc(sess);
        timer_set(&sess->timer, lc ? lc->keepalive_timeout : 75000);
    } else if (sess->nstreams > 0) {
        timer_stop(&sess->timer);
    }
    if (sess->nstreams == 0 && !pending && !nghttp2_session_want_write(sess->ng))
        h2_release_idle_memory(sess);
}

static void h2_on_io(struct handle *h, uint32_t events)
{
    struct h2_session *sess = container_of(h, struct h2_session, cc.c.h);
    if (sess->closed)
        return;
    conn_note_events(&sess->cc.c, events);
    h2_run(sess);
}

static void h2_on_post(struct posted *p)
{
    struct h2_session *sess = container_of(p, struct h2_session, post);
    h2_run(sess);
}

/* Close gracefully: what is queued goes out, then our side is shut and the
 * client's remaining bytes are read and dropped until it closes or the
 * drain time (renewed while it reads) is over (h2_run, h2_on_timer). */
static void h2_drain(struct h2_session *sess)
{
    if (sess->calm || sess->closed)
        return;
    sess->calm = 1;
    sess->goaway = 1;
    timer_set(&sess->timer, H2_CALM_DRAIN_MS);
    h2_session_schedule(sess);
}

void h2_session_calm(struct h2_session *sess, const char *why)
{
    if (sess->calm || sess->closed)
        return;
    sess->calm = 1;
    sess->goaway = 1;
    if (!sess->flood_logged) {
        sess->flood_logged = 1;
        char ctx[128];
        h2_session_log_ctx(sess, ctx, sizeof(ctx));
        sy_log(LOG_LVL_WARN, "*%llu client %s, closing HTTP/2 connection with "
               "ENHANCE_YOUR_CALM%s", (unsigned long long)sess->cc.id, why, ctx);
    }
    /* The GOAWAY goes after what is queued; the connection reads no more
     * and closes once it is out, or when the drain time is over. */
    nghttp2_session_terminate_session(sess->ng, NGHTTP2_ENHANCE_YOUR_CALM);
    timer_set(&sess->timer, H2_CALM_DRAIN_MS);
    h2_session_schedule(sess);
}

static void h2_goaway(struct h2_session *sess)
{
    if (sess->goaway || sess->closed)
        return;
    sess->goaway = 1;
    nghttp2_submit_goaway(sess->ng, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(sess->ng), NGHTTP2_NO_ERROR,
                          NULL, 0);
    h2_session_schedule(sess);
}

static void h2_on_timer(struct timer *t)
{
    struct h2_session *sess = container_of(t, struct h2_session, timer);
    if (sess->calm) {
        h2_close(sess, "abuse: drain time over");
        return;
    }
    if (sess->nstreams)
        return;
    /* Idle for keepalive_timeout: say goodbye, then close. */
    h2_goaway(sess);
    h2_flush(sess);
    if (!sess->closed)
        h2_close(sess, "keepalive timeout");
}

/* ------------------------------------------------------------ close */

void h2_session_stream_gone(struct h2_session *sess, struct h2_stream *hs)
{
    if (hs->prev)
        hs->prev->next = hs->next;
    else if (sess->streams == hs)
        sess->streams = hs->next;
    if (hs->next)
        hs->next->prev = hs->prev;
    hs->next = hs->prev = NULL;
    sess->nstreams--;
    METRICS_FIXED_ADD(h2_streams, -1);
    /* keepalive_requests reached and nothing left: the GOAWAY is out. */
    h2_session_schedule(sess);
}

static void session_free(void *p)
{
    free(p);
}

static void h2_close(struct h2_session *sess, const char *reason)
{
    (void)reason;
    if (sess->closed)
        return;
    sess->closed = 1;
    while (sess->streams)
        h2_stream_closed(sess->streams, NGHTTP2_CANCEL);
    nghttp2_session_del(sess->ng);
    sess->ng = NULL;
    buf_put(sess->out);
    sess->out = NULL;
    timer_cancel(&sess->timer);
    loop_unpost(&sess->post);
    conn_close_fd(&sess->cc.c);
    h2_active_conns--;
    METRICS_FIXED_ADD(h2_conns, -1);
    stats_add(&sy_stats->active, -1);
    if (sess->prev)
        sess->prev->next = sess->next;
    else
        all_sessions = sess->next;
    if (sess->next)
        sess->next->prev = sess->prev;
    loop_defer_free(session_free, sess);
}

unsigned h2_shutdown_idle(void)
{
    unsigned left = 0;
    for (struct h2_session *sess = all_sessions, *next; sess; sess = next) {
        next = sess->next;
        h2_goaway(sess);
        if (sess->nstreams == 0) {
            h2_flush(sess);
            if (!sess->closed)
                h2_close(sess, "shutdown");
            continue;
        }
        left++;
    }
    return left;
}

void h2_close_all(void)
{
    while (all_sessions)
        h2_close(all_sessions, "exit");
}

/* keepalive_requests: after this stream, no more on this connection. */
void h2_session_count_request(struct h2_session *sess)
{
    const struct loc_conf *lc = sess_lc(sess);
    sess->cc.requests++;
    if (lc && ((lc->keepalive_requests >= 0 && sess->cc.requests >= (unsigned)lc->keepalive_requests) ||
               loop_now() - sess->cc.created_ms > lc->keepalive_time))
        h2_goaway(sess);
}
