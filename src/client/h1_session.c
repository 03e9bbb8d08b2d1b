/*
 * h1_session.c - the HTTP/1.x protocol session (see h1_session.h). This
 * file owns the client socket, its input buffer and the request lifetime on
 * the connection; the request itself runs in the protocol-neutral phases
 * (http/phases.c), which answer through this session's stream operations.
 *
 * Memory rules: an idle connection holds no buffer and no arena (decision 3);
 * the input buffer is taken when the socket is readable and returned as soon
 * as it is empty between requests.
 */
#include "client/h1_session.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/h1_head.h"
#include "client/h1_proxy_protocol.h"
#include "client/h2_session.h"
#include "core/log.h"
#include "core/net.h"
#include "http/phases.h"
#include "http/subrequest.h"
#include "http/response.h"
#include "conf/runtime.h"
#include "proxy/tunnel.h"
#include "tls/tls.h"

#include "core/container.h"

#define H1_READ_BUDGET 16

unsigned h1_active_conns;
void (*h1_accept_full)(void);
static uint64_t h1_next_id = 1;

uint64_t h1_next_session_id(void)
{
    return h1_next_id;
}

/* Every session, so shutdown can find idle ones. */
static struct h1_session **all_sessions;
static unsigned nall, capall;

static const struct stream_ops h1_stream_ops;

static void h1_on_io(struct handle *h, uint32_t events);
static void h1_on_timer(struct timer *t);
static void h1_on_post(struct posted *p);
static void finish_request(struct h1_session *s);
static void run_send(struct h1_session *s);
static void h1_request_done(struct h1_session *s);
static void h1_request_end(struct h1_session *s);
static void st_background_done(struct client_stream *st);

#define ST_H1(st) container_of(st, struct h1_session, st)

const char *h1_state_name(enum h1_state st)
{
    switch (st) {
    case H1_S_IDLE: return "idle";
    case H1_S_READ_HEAD: return "reading client request headers";
    case H1_S_SEND: return "sending response to client";
    case H1_S_DISCARD_BODY: return "discarding request body";
    case H1_S_LINGER: return "lingering close";
    case H1_S_PROXY_PROTOCOL: return "reading PROXY protocol";
    case H1_S_LIMIT_DELAY: return "delaying request (limit_req)";
    case H1_S_CLOSED: return "closed";
    }
    return "?";
}

static void sessions_add(struct h1_session *s)
{
    if (nall == capall) {
        unsigned cap = capall ? capall * 2 : 256;
        struct h1_session **n = realloc(all_sessions, cap * sizeof(*n));
        if (!n)
            return;
        all_sessions = n;
        capall = cap;
    }
    all_sessions[nall++] = s;
}

static void sessions_del(struct h1_session *s)
{
    for (unsigned i = 0; i < nall; i++)
        if (all_sessions[i] == s) {
            all_sessions[i] = all_sessions[--nall];
            return;
        }
}

/* The generation configuration that applies to a connection with no request yet. */
static const struct listen_conf *current_listen(struct h1_session *s)
{
    if (!rt_current || !rt_current->gen->http)
        return NULL;
    if (s->cc.lst->listen_index >= rt_current->gen->http->nlistens)
        return NULL;
    return rt_current->gen->http->listens[s->cc.lst->listen_index];
}

static const struct loc_conf *default_lc(struct h1_session *s)
{
    const struct listen_conf *l = current_listen(s);
    return l && l->default_server ? l->default_server->lc : NULL;
}

static void h1_set_timer(struct h1_session *s, uint64_t ms)
{
    timer_set(&s->timer, ms);
}

void h1_on_accept(struct handle *h, uint32_t events)
{
    (void)events;
    struct listener *l = container_of(h, struct listener, h);
    int64_t limit = rt_current ? rt_current->gen->main.worker_connections : 512;
    /* multi_accept off (nginx's default): one connection per wake-up. The
     * listener is level-triggered, so epoll reports it again while more are
     * queued, and no accept4() is spent just to learn the queue is empty. */
    int batch = rt_current && rt_current->gen->main.multi_accept ? 64 : 1;
    for (int i = 0; i < batch; i++) {
        struct sockaddr_storage peer;
        socklen_t plen;
        int fd = net_accept(h->fd, &peer, &plen);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            if (errno == ECONNABORTED)
                continue;
            sy_log(LOG_LVL_ALERT, "accept4() failed (%d: %s)", errno, strerror(errno));
            return;
        }
        /* Client connections and tunnels count against worker_connections. */
        if ((int64_t)(h1_active_conns + h2_active_conns + tunnel_count) >= limit) {
            static uint64_t last;
            if (loop_now() - last > 1000) {
                last = loop_now();
                sy_log(LOG_LVL_ALERT, "%lld worker_connections are not enough",
                       (long long)limit);
            }
            close(fd);
            continue;
        }
        struct h1_session *s = calloc(1, sizeof(*s));
        if (!s) {
            close(fd);
            continue;
        }
        conn_init(&s->cc.c, fd, h1_on_io);
        if (plen > sizeof(s->cc.c.peer))
            plen = sizeof(s->cc.c.peer);
        memcpy(&s->cc.c.peer, &peer, plen);
        s->cc.c.peerlen = plen;
        s->cc.lst = l;
        s->cc.proto = CLIENT_PROTO_H1;
        s->cc.id = h1_next_id++;
        s->st.conn = &s->cc;
        s->st.ops = &h1_stream_ops;
        s->state = H1_S_IDLE;
        s->out_fd = -1;
        s->timer.cb = h1_on_timer;
        s->post.cb = h1_on_post;
        s->cc.created_ms = loop_now();
        const struct listen_conf *lsc = current_listen(s);
        int pp = lsc && lsc->proxy_protocol;
        /* With proxy_protocol the PROXY header comes first and TLS starts
         * after it (run_proxy_protocol). */
        if (pp)
            s->state = H1_S_PROXY_PROTOCOL;
        if ((!pp && lsc && lsc->ssl && tls_accept(&s->cc.c, rt_current, lsc, s->cc.id) < 0) ||
            loop_add(&s->cc.c.h) < 0) {
            conn_close_fd(&s->cc.c);
            free(s);
            continue;
        }
        h1_active_conns++;
        stats_inc(&sy_stats->accepts);
        stats_inc(&sy_stats->handled);
        stats_add(&sy_stats->active, 1);
        sessions_add(s);
        const struct loc_conf *lc = default_lc(s);
        h1_set_timer(s, lc ? lc->client_header_timeout : 60000);
        /* Data often arrives with the handshake: try at once (READY_R is optimistic). */
        h1_run(s);
        if (h1_accept_full && (int64_t)(h1_active_conns + h2_active_conns + tunnel_count) >= limit) {
            /* Full: stop accepting instead of accepting and closing; other
             * workers take new connections, or they wait in the backlog. */
            sy_log(LOG_LVL_WARN, "%lld worker_connections reached, not accepting until "
                   "connections close", (long long)limit);
            h1_accept_full();
            return;
        }
    }
}

/* ------------------------------------------------------------ close */

static void session_free(void *p)
{
    free(p);
}

static void request_free(struct h1_session *s)
{
    if (!s->st.req_active)
        return;
    if (s->out_fd >= 0) {
        close(s->out_fd);
        s->out_fd = -1;
    }
    buf_put(s->out_buf);
    s->out_buf = NULL;
    http_request_release(&s->st);
    memset(&s->body, 0, sizeof(s->body));
    s->out_chunked = s->out_last = s->out_done = 0;
    memset(&s->co, 0, sizeof(s->co));
    s->out_head = NULL;
    s->out_head_len = s->out_head_off = 0;
    s->out_body = NULL;
    s->out_body_len = s->out_body_off = 0;
}

/* The session counts among the connections reading a request head
 * (stub_status "Reading") while `on`. */
static void h1_stat_reading(struct h1_session *s, int on)
{
    if (s->stat_reading == on)
        return;
    s->stat_reading = (unsigned char)on;
    stats_add(&sy_stats->reading, on ? 1 : -1);
}

void h1_close(struct h1_session *s, const char *reason)
{
    (void)reason;
    if (s->state == H1_S_CLOSED)
        return;
    s->state = H1_S_CLOSED;
    if (s->st.bg_wait)
        subrequest_background_forget(&s->st);
    if (s->st.on_abort) {
        /* The handler frees what it holds; the stream ends below. */
        void (*on_abort)(struct client_stream *) = s->st.on_abort;
        s->st.on_abort = NULL;
        s->st.on_event = NULL;
        on_abort(&s->st);
    }
    timer_cancel(&s->timer);
    loop_unpost(&s->post);
    request_free(s);
    buf_put(s->in);
    s->in = NULL;
    conn_close_fd(&s->cc.c);
    h1_active_conns--;
    stats_add(&sy_stats->active, -1);
    h1_stat_reading(s, 0);
    sessions_del(s);
    loop_defer_free(session_free, s);
}

/* Close after the response, reading what the client still sends for a
 * moment so the kernel does not answer it with a RST that could destroy the
 * response before the client read it (nginx's lingering close): at most
 * lingering_time in all, lingering_timeout for each wait. */
static void close_lingering(struct h1_session *s, uint64_t time_ms, uint64_t timeout_ms)
{
    s->cc.c.xprt->shutdown_wr(&s->cc.c);
    s->state = H1_S_LINGER;
    s->linger_deadline = loop_now() + time_ms;
    s->linger_timeout = timeout_ms;
    h1_set_timer(s, timeout_ms < time_ms ? timeout_ms : time_ms);
    loop_post(&s->post);
}

static void run_linger(struct h1_session *s)
{
    char sink[4096];
    int got = 0;
    for (int i = 0; i < 64; i++) {
        if (!(s->cc.c.flags & CONN_F_READY_R))
            break;
        ssize_t n = conn_recv(&s->cc.c, sink, sizeof(sink));
        if (n == SY_AGAIN)
            break;
        if (n <= 0) {
            h1_close(s, "linger done");
            return;
        }
        got = 1;
    }
    uint64_t now = loop_now();
    if (now >= s->linger_deadline) {
        h1_close(s, "lingering time over");
        return;
    }
    if (got) {
        uint64_t left = s->linger_deadline - now;
        h1_set_timer(s, s->linger_timeout < left ? s->linger_timeout : left);
    }
    if (s->cc.c.flags & CONN_F_READY_R)
        loop_post(&s->post);
}

/* ------------------------------------------------------------ local responses */

static int send_file_copy(struct h1_session *s)
{
    struct request *r = &s->st.req;
    if (!s->out_buf || buf_len(s->out_buf) == 0) {
        if (!s->out_buf && !(s->out_buf = buf_get())) {
            h1_close(s, "out of memory");
            return SY_ERR;
        }
        size_t want = s->out_file_left < (off_t)s->out_buf->size ? (size_t)s->out_file_left
                                                                 : s->out_buf->size;
        ssize_t n;
        do
            n = pread(s->out_fd, s->out_buf->data, want, s->out_file_off);
        while (n < 0 && errno == EINTR);
        if (n <= 0) {
            if (n < 0)
                sy_log(LOG_LVL_CRIT, "pread() failed (%d: %s) while sending response to client",
                       errno, strerror(errno));
            else
                sy_log(LOG_LVL_ERR, "file was truncated while sending response to client");
            h1_close(s, "file read error");
            return SY_ERR;
        }
        s->out_buf->pos = 0;
        s->out_buf->last = (uint32_t)n;
        s->out_file_off += n;
        s->out_file_left -= n;
    }
    ssize_t w = conn_send(&s->cc.c, buf_head(s->out_buf), buf_len(s->out_buf));
    if (w == SY_AGAIN)
        return SY_AGAIN;
    if (w < 0) {
        sy_log(LOG_LVL_INFO, "writev() failed (%d: %s) while sending response to client",
               s->cc.c.last_errno, strerror(s->cc.c.last_errno));
        h1_close(s, "write error");
        return SY_ERR;
    }
    buf_consume(s->out_buf, (size_t)w);
    r->bytes_sent += (uint64_t)w;
    r->body_bytes_sent += (uint64_t)w;
    if (buf_len(s->out_buf) == 0 && s->out_file_left == 0) {
        buf_put(s->out_buf);
        s->out_buf = NULL;
    }
    return SY_OK;
}

static void run_send(struct h1_session *s)
{
    struct request *r = &s->st.req;
    for (;;) {
        size_t head_left = s->out_head_len - s->out_head_off;
        size_t body_left = s->out_body_len - s->out_body_off;
        if (head_left && !body_left && s->out_fd >= 0 && s->out_file_left > 0 &&
            s->cc.c.xprt == &xprt_plain) {
            /* a file follows: the head waits for its first bytes (MSG_MORE),
             * so they leave in full segments, as nginx's tcp_nopush */
            ssize_t w = send(s->cc.c.h.fd, s->out_head + s->out_head_off, head_left,
                             MSG_MORE | MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && errno == EAGAIN) {
                s->cc.c.flags &= ~CONN_F_READY_W;
                goto wait;
            }
            if (w < 0) {
                sy_log(LOG_LVL_INFO, "send() failed (%d: %s) while sending response to client",
                       errno, strerror(errno));
                h1_close(s, "write error");
                return;
            }
            r->bytes_sent += (uint64_t)w;
            s->out_head_off += (size_t)w;
            continue;
        }
        if (head_left || body_left) {
            struct iovec iov[2];
            int n = 0;
            if (head_left) {
                iov[n].iov_base = s->out_head + s->out_head_off;
                iov[n++].iov_len = head_left;
            }
            if (body_left) {
                iov[n].iov_base = (char *)s->out_body + s->out_body_off;
                iov[n++].iov_len = body_left;
            }
            ssize_t w = conn_writev(&s->cc.c, iov, n);
            if (w == SY_AGAIN)
                goto wait;
            if (w < 0) {
                sy_log(LOG_LVL_INFO, "writev() failed (%d: %s) while sending response to client",
                       s->cc.c.last_errno, strerror(s->cc.c.last_errno));
                h1_close(s, "write error");
                return;
            }
            r->bytes_sent += (uint64_t)w;
            size_t wh = (size_t)w < head_left ? (size_t)w : head_left;
            s->out_head_off += wh;
            s->out_body_off += (size_t)w - wh;
            r->body_bytes_sent += (uint64_t)w - wh;
            continue;
        }
        if (s->cc.c.xprt != &xprt_plain &&
            ((s->out_fd >= 0 && s->out_file_left > 0) || (s->out_buf && buf_len(s->out_buf)))) {
            int rc = send_file_copy(s);
            if (rc == SY_AGAIN)
                goto wait;
            if (rc < 0)
                return;
            continue;
        }
        if (s->out_fd >= 0 && s->out_file_left > 0) {
            size_t chunk = s->out_file_left > (1 << 20) ? (1 << 20) : (size_t)s->out_file_left;
            ssize_t w = sendfile(s->cc.c.h.fd, s->out_fd, &s->out_file_off, chunk);
            if (w < 0) {
                if (errno == EAGAIN) {
                    s->cc.c.flags &= ~CONN_F_READY_W;
                    goto wait;
                }
                if (errno == EINTR)
                    continue;
                sy_log(LOG_LVL_INFO, "sendfile() failed (%d: %s) while sending response to client",
                       errno, strerror(errno));
                h1_close(s, "sendfile error");
                return;
            }
            if (w == 0) {
                /* File shrank under us: the promised length cannot be met. */
                sy_log(LOG_LVL_ERR, "file was truncated while sending response to client");
                h1_close(s, "file truncated");
                return;
            }
            s->out_file_left -= w;
            r->bytes_sent += (uint64_t)w;
            r->body_bytes_sent += (uint64_t)w;
            continue;
        }
        h1_request_done(s);
        return;
    }
wait:
    h1_set_timer(s, r->lc ? r->lc->send_timeout : 60000);
}

/* ------------------------------------------------------------ stream operations */

/* Local response: the head now, the memory or file body after it. */
static void st_send_memory(struct client_stream *st, const char *body, size_t len)
{
    struct h1_session *s = ST_H1(st);
    /* An error page may replace a streamed head that was never written. */
    s->out_chunked = 0;
    memset(&s->co, 0, sizeof(s->co));
    if (h1_build_head(st, &s->out_head, &s->out_head_len) < 0) {
        h1_close(s, "out of memory");
        return;
    }
    s->out_head_off = 0;
    s->out_body = body;
    s->out_body_len = len;
    s->out_body_off = 0;
    s->state = H1_S_SEND;
    run_send(s);
}

static void st_send_file(struct client_stream *st, int fd, off_t off, off_t len)
{
    struct h1_session *s = ST_H1(st);
    s->out_fd = fd;
    s->out_file_off = off;
    s->out_file_left = len;
    st_send_memory(st, NULL, 0);
}

/* Streamed response: the head is held and goes out with the first body
 * bytes (one writev). An unknown length is chunked on HTTP/1.1 (unless
 * chunked_transfer_encoding is off) and delimited by close otherwise. */
static int st_send_head(struct client_stream *st, int64_t length)
{
    struct h1_session *s = ST_H1(st);
    struct request *r = &st->req;
    if (length == STREAM_LEN_UNKNOWN) {
        if (r->minor == 1 && r->lc->chunked_transfer_encoding) {
            s->out_chunked = 1;
            if (resp_add(r, STR_LIT("Transfer-Encoding"), STR_LIT("chunked")) < 0) {
                h1_close(s, "out of memory");
                return SY_ERR;
            }
        } else {
            r->keepalive = 0;
        }
    }
    if (h1_build_head(st, &s->out_head, &s->out_head_len) < 0) {
        h1_close(s, "out of memory");
        return SY_ERR;
    }
    s->out_head_off = 0;
    r->head_sent = 1;
    return SY_OK;
}

static ssize_t st_write(struct client_stream *st, const struct iovec *iov, int n, int last)
{
    struct h1_session *s = ST_H1(st);
    struct request *r = &st->req;
    struct iovec out[8];
    int k = 0;
    size_t head_left = s->out_head_len - s->out_head_off;
    if (head_left) {
        out[k].iov_base = s->out_head + s->out_head_off;
        out[k++].iov_len = head_left;
    }
    size_t avail = 0;
    if (s->out_chunked) {
        /* One chunk per call: the first piece only. */
        avail = n ? iov[0].iov_len : 0;
        k += chunk_out_iov(&s->co, avail ? iov[0].iov_base : NULL, avail, last && n <= 1,
                           out + k);
    } else {
        for (int i = 0; i < n && k < 8; i++) {
            out[k++] = iov[i];
            avail += iov[i].iov_len;
        }
    }
    if (k == 0) {
        if (last)
            s->out_last = 1;
        return 0;
    }
    if (!(s->cc.c.flags & CONN_F_READY_W))
        return SY_AGAIN;
    ssize_t w = conn_writev(&s->cc.c, out, k);
    if (w == SY_AGAIN)
        return SY_AGAIN;
    if (w < 0) {
        char ctx[1500];
        stream_log_ctx(st, ctx, sizeof(ctx));
        sy_log(LOG_LVL_INFO, "*%llu writev() failed (%d: %s) while sending to client%s",
               (unsigned long long)s->cc.id, s->cc.c.last_errno, strerror(s->cc.c.last_errno),
               ctx);
        h1_close(s, "client write error");
        return SY_ERR;
    }
    r->bytes_sent += (uint64_t)w;
    size_t wh = (size_t)w < head_left ? (size_t)w : head_left;
    s->out_head_off += wh;
    size_t payload = (size_t)w - wh;
    if (s->out_chunked)
        payload = chunk_out_advance(&s->co, payload);
    r->body_bytes_sent += payload;
    if (last && payload == avail && (!s->out_chunked || n <= 1))
        s->out_last = 1;
    return (ssize_t)payload;
}

static int st_write_done(struct client_stream *st)
{
    struct h1_session *s = ST_H1(st);
    return s->out_head_off == s->out_head_len && s->out_last && (!s->out_chunked || s->co.done);
}

/* Request body in: Content-Length or chunked, decoded in place in s->in. */
static enum stream_body st_body_peek(struct client_stream *st, struct str *out)
{
    struct h1_session *s = ST_H1(st);
    struct request *r = &st->req;
    for (;;) {
        if (s->body.mode == RELAY_CHUNKED && relay_decode(&s->body, s->in) < 0)
            return STREAM_BODY_BAD;
        size_t ready = relay_ready(&s->body, s->in);
        if (ready) {
            *out = (struct str){buf_head(s->in), ready};
            return STREAM_BODY_DATA;
        }
        if (r->body_done || s->body.mode == RELAY_NONE ||
            (s->body.mode == RELAY_LENGTH && s->body.left == 0) ||
            (s->body.mode == RELAY_CHUNKED && s->body.in_done)) {
            r->body_done = 1;
            return STREAM_BODY_DONE;
        }
        if (!(s->cc.c.flags & CONN_F_READY_R))
            return STREAM_BODY_AGAIN;
        if (!s->in && !(s->in = buf_get())) {
            h1_close(s, "out of memory");
            return STREAM_BODY_ERROR;
        }
        if (buf_room(s->in) == 0)
            buf_compact(s->in);
        if (buf_room(s->in) == 0)
            return STREAM_BODY_AGAIN;
        ssize_t n = conn_recv(&s->cc.c, buf_tail(s->in), buf_room(s->in));
        if (n > 0) {
            s->in->last += (uint32_t)n;
            h1_set_timer(s, r->lc->client_body_timeout);
            continue;
        }
        if (n == SY_AGAIN)
            return STREAM_BODY_AGAIN;
        return STREAM_BODY_CLOSED;
    }
}

static void st_body_consume(struct client_stream *st, size_t n)
{
    struct h1_session *s = ST_H1(st);
    relay_advance(&s->body, s->in, n);
    st->req.body_received = s->body.moved;
    if ((s->body.mode == RELAY_LENGTH && s->body.left == 0) ||
        (s->body.mode == RELAY_CHUNKED && s->body.in_done && s->body.dec_avail == 0))
        st->req.body_done = 1;
}

static size_t st_body_buffered(struct client_stream *st, const char **p)
{
    struct h1_session *s = ST_H1(st);
    if (!s->in || buf_len(s->in) == 0)
        return 0;
    if (p)
        *p = buf_head(s->in);
    return buf_len(s->in);
}

static void st_send_continue(struct client_stream *st)
{
    struct h1_session *s = ST_H1(st);
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (conn_send(&s->cc.c, cont, sizeof(cont) - 1) != (ssize_t)(sizeof(cont) - 1))
        st->req.keepalive = 0;
}

static void st_set_timeout(struct client_stream *st, uint64_t ms)
{
    h1_set_timer(ST_H1(st), ms);
}

static void st_stop_timeout(struct client_stream *st)
{
    timer_stop(&ST_H1(st)->timer);
}

static int st_client_gone(struct client_stream *st)
{
    return !!(ST_H1(st)->cc.c.flags & CONN_F_RDHUP);
}

static void st_finish(struct client_stream *st)
{
    struct h1_session *s = ST_H1(st);
    st->on_event = NULL;
    st->on_abort = NULL;
    s->state = H1_S_SEND;
    timer_stop(&s->timer);
    h1_request_done(s);
}

static void st_abort(struct client_stream *st, const char *reason)
{
    h1_close(ST_H1(st), reason);
}

static void st_hold(struct client_stream *st, uint64_t ms)
{
    struct h1_session *s = ST_H1(st);
    s->state = H1_S_LIMIT_DELAY;
    h1_set_timer(s, ms);
}

/* 101: the head the tunnel writes first. */
static int st_upgrade_head(struct client_stream *st, char **prefix, size_t *prefix_len)
{
    struct h1_session *s = ST_H1(st);
    char *head;
    size_t head_len;
    if (h1_build_head(st, &head, &head_len) < 0 || !(*prefix = malloc(head_len))) {
        h1_close(s, "out of memory");
        return -1;
    }
    memcpy(*prefix, head, head_len);
    *prefix_len = head_len;
    st->req.head_sent = 1;
    return 0;
}

/* The tunnel takes the socket: forget it without closing it, end the stream. */
static struct tunnel_end *st_take_tunnel_side(struct client_stream *st, struct conn *out,
                                              struct buf **leftover)
{
    struct h1_session *s = ST_H1(st);
    *out = s->cc.c;
    *leftover = s->in;
    s->in = NULL;
    s->cc.c.h.fd = -1;
    s->cc.c.xprt = &xprt_plain;
    s->cc.c.xprt_ctx = NULL;
    s->cc.c.flags = 0;
    /* The tunnel writes the log line; the request memory goes back to malloc
     * (a crowd of idle tunnels opened in a burst leaves no cache behind). */
    st->req.logged = 1;
    st->on_event = NULL;
    st->on_abort = NULL;
    arena_destroy_uncached(&st->req.arena);
    h1_close(s, "switched protocols");
    return NULL;
}

static const struct stream_ops h1_stream_ops = {
    .body_peek = st_body_peek,
    .body_consume = st_body_consume,
    .body_buffered = st_body_buffered,
    .send_continue = st_send_continue,
    .send_head = st_send_head,
    .write = st_write,
    .write_done = st_write_done,
    .send_memory = st_send_memory,
    .send_file = st_send_file,
    .background_done = st_background_done,
    .set_timeout = st_set_timeout,
    .stop_timeout = st_stop_timeout,
    .client_gone = st_client_gone,
    .finish = st_finish,
    .abort = st_abort,
    .hold = st_hold,
    .upgrade_head = st_upgrade_head,
    .take_tunnel_side = st_take_tunnel_side,
};

static void bad_request(struct h1_session *s, int status, const char *why)
{
    char ctx[1500];
    stream_log_ctx(&s->st, ctx, sizeof(ctx));
    sy_log(LOG_LVL_INFO, "*%llu client sent %s while reading client request headers%s",
           (unsigned long long)s->cc.id, why, ctx);
    s->st.req.keepalive = 0;
    http_respond_status(&s->st, status);
}

/* Copy a slice that points into [from, from+len) to the same offset in `to`. */
static struct str rebase(struct str v, const char *from, char *to)
{
    if (!v.p)
        return v;
    return (struct str){to + (v.p - from), v.len};
}

static void start_request(struct h1_session *s, struct h1_request *pr, ssize_t head_len)
{
    struct request *r = &s->st.req;
    /* Already zero: the session was calloc'd and request_free() clears it. */
    arena_init(&r->arena, 4096);
    s->st.req_active = 1;
    h1_stat_reading(s, 0);
    stream_stat_request(&s->st);
    r->head_parsed = 1;
    r->rt = rt_ref(rt_current);
    r->listen = current_listen(s);
    s->cc.listen = r->listen;
    r->start_wall_ms = loop_wall_ms();
    r->start_ms = loop_now();
    r->head_len = (uint64_t)head_len;
    r->pipelined = s->pipelined_next;
    s->pipelined_next = 0;
    r->minor = pr->minor_version;
    r->keepalive = 0;
    s->cc.requests++;
    if (!r->listen) {
        h1_close(s, "no configuration");
        return;
    }
    r->srv = r->listen->default_server;
    r->lc = r->srv->lc;

    /* Copy the head into the arena so the input buffer can be released.
     * Header names with '_' are invalid unless underscores_in_headers (nginx:
     * they would alias "-" names in $http_* variables and upstream headers),
     * and invalid headers are dropped unless ignore_invalid_headers is off. */
    const char *from = buf_head(s->in);
    char *head = arena_alloc(&r->arena, (size_t)head_len);
    r->headers = arena_alloc(&r->arena, (pr->nheaders ? pr->nheaders : 1) * sizeof(struct h1_header));
    if (!head || !r->headers) {
        h1_close(s, "out of memory");
        return;
    }
    memcpy(head, from, (size_t)head_len);
    r->method = rebase(pr->method, from, head);
    struct str target = rebase(pr->target, from, head);
    r->nheaders = 0;
    for (size_t i = 0; i < pr->nheaders; i++) {
        if (!r->lc->underscores_in_headers && r->lc->ignore_invalid_headers &&
            memchr(pr->headers[i].name.p, '_', pr->headers[i].name.len))
            continue;
        r->headers[r->nheaders].name = rebase(pr->headers[i].name, from, head);
        r->headers[r->nheaders].value = rebase(pr->headers[i].value, from, head);
        r->headers[r->nheaders].id = pr->headers[i].id;
        r->nheaders++;
    }
    const char *line_end = target.p + target.len + 9; /* " HTTP/1.x" */
    r->request_line = (struct str){r->method.p, (size_t)(line_end - r->method.p)};
    buf_consume(s->in, (size_t)head_len);

    enum h1_framing_error fe;
    if (h1_analyze_headers(r->headers, r->nheaders, &r->info, &fe) < 0) {
        /* nginx: an unknown transfer coding is "not implemented". */
        bad_request(s, fe == H1_FE_BAD_TE ? 501 : 400, h1_framing_error_str(fe));
        return;
    }
    /* Methods are upper-case letters, '-' and '_' (nginx); TRACE is refused. */
    for (size_t k = 0; k < r->method.len; k++) {
        char c = r->method.p[k];
        if (!((c >= 'A' && c <= 'Z') || c == '-' || c == '_')) {
            bad_request(s, 400, "invalid method");
            return;
        }
    }
    /* CONNECT (authority-form; the parser took nothing else) is recognised
     * and refused: 405 as current nginx without proxy_connect, and the
     * connection closes, so no tunnel bytes are read as a next request. */
    if (str_eq(r->method, STR_LIT("CONNECT"))) {
        sy_log(LOG_LVL_INFO, "client sent CONNECT method");
        r->keepalive = 0;
        http_respond_status(&s->st, 405);
        return;
    }
    if (str_eq(r->method, STR_LIT("TRACE"))) {
        r->keepalive = 0;
        http_respond_status(&s->st, 405);
        return;
    }
    r->keepalive = r->minor ? !(r->info.flags & H1_F_CONN_CLOSE)
                            : !!(r->info.flags & H1_F_CONN_KEEPALIVE);

    /* Request target: origin-form, absolute-form (host overrides Host), or '*'. */
    struct str path = target, host = STR_NULL;
    if (target.len >= 7 && (strncasecmp(target.p, "http://", 7) == 0 ||
                            (target.len >= 8 && strncasecmp(target.p, "https://", 8) == 0))) {
        size_t skip = target.p[4] == ':' ? 7 : 8;
        size_t k = skip;
        while (k < target.len && target.p[k] != '/' && target.p[k] != '?' && target.p[k] != '#')
            k++;
        host = (struct str){target.p + skip, k - skip};
        path = (struct str){target.p + k, target.len - k};
        if (path.len == 0)
            path = STR_LIT("/");
        /* nginx: a fragment right after the authority is an invalid request */
        if (host.len == 0 || (k < target.len && target.p[k] == '#')) {
            bad_request(s, 400, "invalid host in request line");
            return;
        }
    } else if (target.p[0] != '/') {
        bad_request(s, 400, "invalid request");
        return;
    }
    /* The Host header is checked even when the request line names the host
     * (nginx's ngx_http_process_host), then the request line's host wins. */
    if (host.p && (r->info.flags & H1_F_HAS_HOST)) {
        struct str unused;
        if (http_valid_host(r, r->info.host, &unused) < 0) {
            bad_request(s, 400, "invalid host in \"Host\" header");
            return;
        }
    }
    if (!host.p && (r->info.flags & H1_F_HAS_HOST))
        host = r->info.host;
    if (!host.p && r->minor == 1) {
        bad_request(s, 400, "HTTP/1.1 request without \"Host\" header");
        return;
    }
    if (host.p && http_valid_host(r, host, &r->host) < 0) {
        bad_request(s, 400, "invalid host in \"Host\" header");
        return;
    }

    /* Path and query, then the normalised $uri. */
    int prc = http_set_path(&s->st, path);
    if (prc == -2) {
        h1_close(s, "out of memory");
        return;
    }
    if (prc < 0) {
        bad_request(s, 400, "invalid request");
        return;
    }

    /* Body framing. */
    if (r->info.flags & H1_F_CHUNKED) {
        if (r->minor == 0) {
            bad_request(s, 400, "chunked body in HTTP/1.0 request");
            return;
        }
        r->has_body = 1;
        s->body.mode = RELAY_CHUNKED;
    } else if ((r->info.flags & H1_F_HAS_CL) && r->info.content_length > 0) {
        r->has_body = 1;
        r->body_left = r->info.content_length;
        s->body.mode = RELAY_LENGTH;
        s->body.left = r->info.content_length;
    } else {
        r->body_done = 1;
        s->body.mode = RELAY_NONE;
    }
    r->expect_continue = (r->info.flags & H1_F_EXPECT_CONTINUE) && r->minor == 1 && r->has_body;

    /* keepalive_requests / keepalive_time are checked at the end; the idle
     * timer becomes the request's own deadlines. */
    timer_stop(&s->timer);
    s->head_timer = 0;
    http_request_run(&s->st);
}

/* A request head that cannot be accepted still gets a request context (for
 * the error page, the access log and the log line), then the error status. */
static void head_error(struct h1_session *s, int status, const char *why)
{
    struct request *r = &s->st.req;
    memset(r, 0, sizeof(*r));
    arena_init(&r->arena, 4096);
    s->st.req_active = 1;
    h1_stat_reading(s, 0);
    stream_stat_request(&s->st);
    r->head_parsed = 1;
    r->rt = rt_ref(rt_current);
    r->listen = current_listen(s);
    if (!r->listen) {
        h1_close(s, "no configuration");
        return;
    }
    r->srv = r->listen->default_server;
    r->lc = r->srv->lc;
    r->start_wall_ms = loop_wall_ms();
    r->minor = 1;
    s->cc.requests++;
    timer_stop(&s->timer);
    s->head_timer = 0;
    /* Keep the first line for the logs ($request), then drop the input: the
     * rest cannot be parsed reliably. */
    if (s->in) {
        const char *p = buf_head(s->in);
        size_t n = 0, len = buf_len(s->in);
        while (n < len && n < 2048 && p[n] != '\r' && p[n] != '\n')
            n++;
        char *line = arena_strndup(&r->arena, p, n);
        if (line)
            r->request_line = (struct str){line, n};
        s->in->pos = s->in->last = 0;
    }
    bad_request(s, status, why);
}

/*
 * Whether the first line of `d` ends like an HTTP/1 request line (" HTTP/"
 * digit "." digit): 1 yes, 0 no, -1 no complete line yet.
 */
static int h1_request_line_plausible(const char *d, size_t len)
{
    const char *nl = memchr(d, '\n', len < 16384 ? len : 16384);
    if (!nl)
        return len < 16384 ? -1 : 1; /* a long line: the HTTP/1 parser says what it is */
    size_t n = (size_t)(nl - d);
    if (n && d[n - 1] == '\r')
        n--;
    return n >= 9 && memcmp(d + n - 9, " HTTP/", 6) == 0 && (d[n - 3] >= '0' && d[n - 3] <= '9') &&
           d[n - 2] == '.' && (d[n - 1] >= '0' && d[n - 1] <= '9');
}

/*
 * HTTP/2 on this connection? With TLS, ALPN chose h2; on a plain listener
 * with http2, the first bytes are the h2c preface (prior knowledge;
 * anything else is HTTP/1). 1: the connection went to an HTTP/2 session
 * (s is closed), 0: it stays HTTP/1, -1: too few bytes to tell.
 */
static int switch_to_h2(struct h1_session *s)
{
    if (s->cc.requests || s->st.req_active)
        return 0;
    const struct listen_conf *l = current_listen(s);
    if (!l)
        return 0;
    int h2;
    if (tls_is(&s->cc.c)) {
        h2 = tls_alpn_is_h2(&s->cc.c);
    } else {
        if (!conf_http2_enabled(l, l->default_server))
            return 0;
        h2 = h2_is_preface(buf_head(s->in), buf_len(s->in));
        if (h2 < 0)
            return -1;
        /* Neither the preface nor an HTTP/1 request line: a broken HTTP/2
         * preface, answered as HTTP/2 does (the connection closes). */
        if (!h2) {
            int h1 = h1_request_line_plausible(buf_head(s->in), buf_len(s->in));
            if (h1 < 0)
                return -1;
            h2 = !h1;
        }
    }
    if (!h2)
        return 0;
    if (h2_session_start(&s->cc, buf_head(s->in), buf_len(s->in)) < 0) {
        h1_close(s, "HTTP/2 session failed");
        return 1;
    }
    /* The HTTP/2 session has the socket now: forget it, close the rest. */
    s->cc.c.h.fd = -1;
    s->cc.c.xprt = &xprt_plain;
    s->cc.c.xprt_ctx = NULL;
    h1_close(s, "switched to HTTP/2");
    return 1;
}

static void read_head(struct h1_session *s)
{
    const struct loc_conf *lc = default_lc(s);
    uint64_t lhb = lc ? lc->large_client_header_buffers_size : 8192;
    for (int budget = 0; budget < H1_READ_BUDGET; budget++) {
        if (s->in && buf_len(s->in) > 0 && s->cc.requests == 0) {
            int sw = switch_to_h2(s);
            if (sw > 0)
                return;
            if (sw < 0)
                goto more;
        }
        if (s->in && buf_len(s->in) > 0) {
            struct h1_header hdrs[H1_MAX_HEADERS];
            struct h1_request pr;
            memset(&pr, 0, sizeof(pr));
            pr.headers = hdrs;
            pr.nheaders = H1_MAX_HEADERS;
            enum h1_error err = H1_E_NONE;
            ssize_t rc = h1_parse_request(buf_head(s->in), buf_len(s->in), &pr, &err);
            if (rc > 0) {
                /* nginx's limits: the request line and each header line must fit
                 * one large header buffer. */
                size_t line_len = (size_t)(pr.target.p + pr.target.len + 9 - pr.method.p);
                int too_long = 0;
                for (size_t i = 0; i < pr.nheaders; i++)
                    if (pr.headers[i].name.len + pr.headers[i].value.len + 4 > lhb)
                        too_long = 1;
                if (line_len > lhb || too_long) {
                    head_error(s, too_long ? 494 : 414,
                               too_long ? "too long header line" : "too long URI");
                    return;
                }
                start_request(s, &pr, rc);
                return;
            }
            if (rc == -1) {
                if (err == H1_E_VERSION_NOT_SUPP)
                    head_error(s, 505, "unsupported HTTP version");
                else if (err == H1_E_TOO_MANY_HEADERS)
                    head_error(s, 494, "too many headers");
                else
                    head_error(s, 400, h1_error_str(err));
                return;
            }
            int too_long = 0, line = pr.line_done;
            if (!line && buf_len(s->in) > lhb)
                too_long = 1;
            if (buf_room(s->in) == 0) {
                buf_compact(s->in);
                if (buf_room(s->in) == 0)
                    too_long = 1;
            }
            if (too_long) {
                head_error(s, line ? 494 : 414, line ? "too large request header" : "too long URI");
                return;
            }
        }
    more:
        if (!(s->cc.c.flags & CONN_F_READY_R))
            break;
        if (!s->in) {
            s->in = buf_get();
            if (!s->in) {
                h1_close(s, "out of memory");
                return;
            }
        }
        if (buf_room(s->in) == 0)
            buf_compact(s->in);
        ssize_t n = conn_recv(&s->cc.c, buf_tail(s->in), buf_room(s->in));
        if (n > 0) {
            if (s->state == H1_S_IDLE) {
                s->state = H1_S_READ_HEAD;
                h1_stat_reading(s, 1);
            }
            s->in->last += (uint32_t)n;
            continue;
        }
        if (n == SY_AGAIN)
            break;
        if (n == 0) {
            if (s->in && buf_len(s->in) > 0) {
                char ctx[256];
                conn_peer_ip(&s->cc.c, ctx, sizeof(ctx));
                sy_log(LOG_LVL_INFO,
                       "*%llu client prematurely closed connection while reading client request "
                       "headers, client: %s",
                       (unsigned long long)s->cc.id, ctx);
            }
            h1_close(s, "client closed");
            return;
        }
        h1_close(s, "read error");
        return;
    }
    /* Waiting for more bytes. A head that started arriving has
     * client_header_timeout from now on; armed only here, as most heads come
     * whole in one read and would pay two heap operations for nothing. */
    if (s->state == H1_S_READ_HEAD && !s->head_timer) {
        s->head_timer = 1;
        h1_set_timer(s, lc ? lc->client_header_timeout : 60000);
    }
    if (s->in && buf_len(s->in) == 0) {
        buf_put(s->in);
        s->in = NULL;
    }
    if (s->cc.c.flags & CONN_F_READY_R)
        loop_post(&s->post); /* read budget used up: yield, come back */
}

/* ------------------------------------------------------------ body discard */

static void run_discard(struct h1_session *s)
{
    struct request *r = &s->st.req;
    for (;;) {
        if (s->in && buf_len(s->in) > 0) {
            if (r->info.flags & H1_F_CHUNKED) {
                size_t len = buf_len(s->in);
                ssize_t rc = h1_decode_chunked(&r->chunked, buf_head(s->in), &len);
                if (rc == -1) {
                    h1_close(s, "bad chunked body");
                    return;
                }
                if (rc >= 0) {
                    /* Move the leftover (next request) to the front. */
                    memmove(s->in->data, buf_head(s->in) + len, (size_t)rc);
                    s->in->pos = 0;
                    s->in->last = (uint32_t)rc;
                    r->body_done = 1;
                    finish_request(s);
                    return;
                }
                s->in->pos = s->in->last = 0;
            } else {
                size_t take = buf_len(s->in) < r->body_left ? buf_len(s->in) : r->body_left;
                buf_consume(s->in, take);
                r->body_left -= take;
                if (r->body_left == 0) {
                    r->body_done = 1;
                    finish_request(s);
                    return;
                }
            }
        }
        if (!(s->cc.c.flags & CONN_F_READY_R)) {
            h1_set_timer(s, r->lc->client_body_timeout);
            return;
        }
        if (!s->in && !(s->in = buf_get())) {
            h1_close(s, "out of memory");
            return;
        }
        ssize_t n = conn_recv(&s->cc.c, buf_tail(s->in), buf_room(s->in));
        if (n > 0) {
            s->in->last += (uint32_t)n;
            continue;
        }
        if (n == SY_AGAIN) {
            h1_set_timer(s, r->lc->client_body_timeout);
            return;
        }
        h1_close(s, "client closed while discarding body");
        return;
    }
}

/* ------------------------------------------------------------ completion */

static void h1_request_done(struct h1_session *s)
{
    http_request_done(&s->st);
    if (s->out_fd >= 0) {
        close(s->out_fd);
        s->out_fd = -1;
    }
    if (s->st.bg_wait) {
        /* proxy_cache_background_update: the connection goes on (or
         * closes) when the background request has updated the entry */
        s->bg_waiting = 1;
        timer_cancel(&s->timer);
        return;
    }
    h1_request_end(s);
}

/* stream_ops.background_done: the background requests ended. */
static void st_background_done(struct client_stream *st)
{
    struct h1_session *s = ST_H1(st);
    if (!s->bg_waiting || s->state == H1_S_CLOSED)
        return;
    s->bg_waiting = 0;
    h1_request_end(s);
}

static void h1_request_end(struct h1_session *s)
{
    struct request *r = &s->st.req;
    if (r->keepalive && r->has_body && !r->body_done) {
        s->state = H1_S_DISCARD_BODY;
        run_discard(s);
        return;
    }
    finish_request(s);
}

static void finish_request(struct h1_session *s)
{
    struct request *r = &s->st.req;
    const struct loc_conf *lc = r->lc;
    int keep = r->keepalive && !(s->cc.c.flags & (CONN_F_EOF | CONN_F_ERROR)) && !sy_quit;
    if (keep && lc) {
        if (lc->keepalive_timeout == 0)
            keep = 0;
        if (lc->keepalive_requests >= 0 && s->cc.requests >= (unsigned)lc->keepalive_requests)
            keep = 0;
        if (loop_now() - s->cc.created_ms > lc->keepalive_time)
            keep = 0;
    }
    uint64_t ka_timeout = lc ? lc->keepalive_timeout : 75000;
    int unread = (r->has_body && !r->body_done) || (s->in && buf_len(s->in) > 0);
    int linger = lc ? lc->lingering_close : LINGERING_CLOSE_ON;
    uint64_t linger_time = lc ? lc->lingering_time : 30000;
    uint64_t linger_timeout = lc ? lc->lingering_timeout : 5000;
    request_free(s);
    timer_stop(&s->timer);
    if (!keep) {
        if (linger == LINGERING_CLOSE_ALWAYS ||
            (linger == LINGERING_CLOSE_ON && (unread || (s->cc.c.flags & CONN_F_READY_R)))) {
            buf_put(s->in);
            s->in = NULL;
            close_lingering(s, linger_time, linger_timeout);
        } else {
            h1_close(s, "no keep-alive");
        }
        return;
    }
    if (s->in && buf_len(s->in) > 0) {
        /* Pipelined request already buffered: parse it on the next turn. */
        s->pipelined_next = 1;
        s->state = H1_S_READ_HEAD;
        h1_stat_reading(s, 1);
        h1_set_timer(s, ka_timeout);
        loop_post(&s->post);
        return;
    }
    buf_put(s->in);
    s->in = NULL;
    s->state = H1_S_IDLE;
    h1_set_timer(s, ka_timeout);
    if (s->cc.c.flags & CONN_F_READY_R)
        loop_post(&s->post);
}

/* ------------------------------------------------------------ PROXY protocol */

/* Before anything else on a proxy_protocol listener: the PROXY header, then
 * (ssl) the TLS transport, then the first request as on any connection. The
 * timer armed at accept (client_header_timeout) keeps running: it bounds the
 * header, the handshake and the first request head together, as in nginx. */
static void run_proxy_protocol(struct h1_session *s)
{
    int rc = h1_pp_read(s);
    if (rc == 0)
        return;
    if (rc < 0) {
        h1_close(s, "bad PROXY protocol header");
        return;
    }
    const struct listen_conf *lsc = current_listen(s);
    if (lsc && lsc->ssl && tls_accept(&s->cc.c, rt_current, lsc, s->cc.id) < 0) {
        h1_close(s, "TLS setup failed");
        return;
    }
    s->state = H1_S_IDLE;
    read_head(s);
}

/* ------------------------------------------------------------ dispatch */

void h1_run(struct h1_session *s)
{
    if (s->st.on_event && s->state == H1_S_READ_HEAD) {
        /* A handler drives the stream (the proxy). */
        s->st.on_event(&s->st, 0);
        return;
    }
    switch (s->state) {
    case H1_S_PROXY_PROTOCOL:
        run_proxy_protocol(s);
        break;
    case H1_S_IDLE:
    case H1_S_READ_HEAD:
        read_head(s);
        break;
    case H1_S_SEND:
        run_send(s);
        break;
    case H1_S_DISCARD_BODY:
        run_discard(s);
        break;
    case H1_S_LINGER:
        run_linger(s);
        break;
    case H1_S_LIMIT_DELAY:
        /* Only a client that goes away matters now (nginx's test_reading);
         * anything it sends waits in the socket. */
        if (s->cc.c.flags & (CONN_F_RDHUP | CONN_F_EOF | CONN_F_ERROR)) {
            char ctx[1500];
            stream_log_ctx(&s->st, ctx, sizeof(ctx));
            sy_log(LOG_LVL_INFO, "*%llu client prematurely closed connection while %s%s",
                   (unsigned long long)s->cc.id, h1_state_name(s->state), ctx);
            s->st.req.status = 499;
            h1_close(s, "client closed during limit_req delay");
        }
        break;
    case H1_S_CLOSED:
        break;
    }
}

static void h1_on_io(struct handle *h, uint32_t events)
{
    struct h1_session *s = container_of(h, struct h1_session, cc.c.h);
    if (s->state == H1_S_CLOSED)
        return;
    conn_note_events(&s->cc.c, events);
    h1_run(s);
}

static void h1_on_post(struct posted *p)
{
    struct h1_session *s = container_of(p, struct h1_session, post);
    h1_run(s);
}

static void h1_on_timer(struct timer *t)
{
    struct h1_session *s = container_of(t, struct h1_session, timer);
    char ctx[1500];
    switch (s->state) {
    case H1_S_PROXY_PROTOCOL:
        h1_pp_log_timeout(s);
        h1_close(s, "PROXY protocol timeout");
        return;
    case H1_S_IDLE:
        if (s->cc.c.flags & CONN_F_HANDSHAKE) {
            const struct listen_conf *l = current_listen(s);
            conn_peer_ip(&s->cc.c, ctx, sizeof(ctx));
            sy_log(LOG_LVL_INFO, "*%llu client timed out (110: Connection timed out) while SSL "
                   "handshaking, client: %s, server: %s", (unsigned long long)s->cc.id, ctx,
                   l && l->text ? l->text : "");
        }
        h1_close(s, "keepalive timeout");
        return;
    case H1_S_READ_HEAD:
        if (s->st.on_event) {
            s->st.on_event(&s->st, 1);
            return;
        }
        stream_log_ctx(&s->st, ctx, sizeof(ctx));
        sy_log(LOG_LVL_INFO, "*%llu client timed out (110: Connection timed out) while reading client request headers%s",
               (unsigned long long)s->cc.id, ctx);
        h1_close(s, "client header timeout");
        return;
    case H1_S_SEND:
    case H1_S_DISCARD_BODY:
        stream_log_ctx(&s->st, ctx, sizeof(ctx));
        sy_log(LOG_LVL_INFO, "*%llu client timed out (110: Connection timed out) while %s%s",
               (unsigned long long)s->cc.id, h1_state_name(s->state), ctx);
        h1_close(s, "client timeout");
        return;
    case H1_S_LIMIT_DELAY:
        /* The limit_req delay is over: on with the request. */
        s->state = H1_S_READ_HEAD;
        http_phase_resume(&s->st);
        return;
    case H1_S_LINGER:
    case H1_S_CLOSED:
        h1_close(s, "linger timeout");
        return;
    }
}

/* A connection accepted just before a graceful shutdown, whose first request
 * has not arrived yet, gets this long to send it (and have it answered):
 * closing it would fail a request the client already sent on its way. */
#define SHUTDOWN_FIRST_REQUEST_MS 1000

unsigned h1_shutdown_idle(void)
{
    uint64_t now = loop_now();
    for (unsigned i = 0; i < nall;) {
        struct h1_session *s = all_sessions[i];
        int fresh = s->cc.requests == 0 && now - s->cc.created_ms < SHUTDOWN_FIRST_REQUEST_MS;
        if ((s->state == H1_S_IDLE || s->state == H1_S_PROXY_PROTOCOL) && !fresh) {
            h1_close(s, "shutdown");
            continue; /* sessions_del moved another entry into slot i */
        }
        i++;
    }
    return nall;
}

void h1_close_all(void)
{
    while (nall > 0)
        h1_close(all_sessions[nall - 1], "exit");
    free(all_sessions);
    all_sessions = NULL;
    capall = 0;
}
