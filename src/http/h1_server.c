/*
 * h1_server.c - client side of HTTP/1.x (see the state diagram in
 * h1_server.h). This file owns the client socket, its input buffer and the
 * request lifetime; handlers (local responses, static files, proxy) are
 * called from the routing step and hand control back through
 * h1_respond_status()/h1_request_done().
 *
 * Memory rules: an idle connection holds no buffer and no arena (decision 3);
 * the input buffer is taken when the socket is readable and returned as soon
 * as it is empty between requests.
 */
#include "http/h1_server.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/net.h"
#include "http/access_log.h"
#include "http/h1_proxy_protocol.h"
#include "http/limit_conn.h"
#include "http/limit_req.h"
#include "http/realip.h"
#include "http/response.h"
#include "http/rewrite_eval.h"
#include "http/static.h"
#include "http/vars_eval.h"
#include "conf/runtime.h"
#include "proxy/proxy.h"
#include "proxy/tunnel.h"
#include "tls/tls.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

#define H1_MAX_INTERNAL_REDIRECTS 10
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

static void h1_on_io(struct handle *h, uint32_t events);
static void h1_on_timer(struct timer *t);
static void h1_on_post(struct posted *p);
static void route_request(struct h1_session *s);
static void find_location_and_run(struct h1_session *s);
static void run_handler(struct h1_session *s);
/* What run_rewrite() tells its caller. */
enum rw_result {
    RW_CONTINUE = 0,            /* ops done; go on */
    RW_RESPONDED,               /* a response was produced (or the session closed) */
    RW_RESEARCH,                /* "rewrite ... last": search the location again */
    RW_STOP,                    /* "break": stop rewriting, stay in this location */
};
static enum rw_result run_rewrite(struct h1_session *s, const struct rw_op *op);
static void finish_request(struct h1_session *s);

const char *h1_state_name(enum h1_state st)
{
    switch (st) {
    case H1_S_IDLE: return "idle";
    case H1_S_READ_HEAD: return "reading client request headers";
    case H1_S_PROXY: return "proxying";
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
    if (s->lst->listen_index >= rt_current->gen->http->nlistens)
        return NULL;
    return rt_current->gen->http->listens[s->lst->listen_index];
}

static const struct loc_conf *default_lc(struct h1_session *s)
{
    const struct listen_conf *l = current_listen(s);
    return l && l->default_server ? l->default_server->lc : NULL;
}

void h1_set_timer(struct h1_session *s, uint64_t ms)
{
    timer_set(&s->timer, ms);
}

void h1_log_ctx(struct h1_session *s, char *out, size_t cap)
{
    char ip[64];
    net_ip_str(&realip_client(s)->sa, ip, sizeof(ip)); /* the real client, as nginx */
    struct request *r = &s->req;
    int n = snprintf(out, cap, ", client: %s", ip);
    if (n < 0 || (size_t)n >= cap)
        return;
    if (s->req_active && r->srv && r->srv->nnames && r->srv->names[0].name.len)
        n += snprintf(out + n, cap - (size_t)n, ", server: %.*s", (int)r->srv->names[0].name.len,
                      r->srv->names[0].name.p);
    else
        n += snprintf(out + n, cap - (size_t)n, ", server: ");
    if ((size_t)n >= cap)
        return;
    if (s->req_active && r->request_line.len)
        n += snprintf(out + n, cap - (size_t)n, ", request: \"%.*s\"",
                      (int)(r->request_line.len > 1024 ? 1024 : r->request_line.len),
                      r->request_line.p);
    if ((size_t)n >= cap)
        return;
    if (s->req_active && r->host.len)
        snprintf(out + n, cap - (size_t)n, ", host: \"%.*s\"", (int)r->host.len, r->host.p);
}

/* ------------------------------------------------------------ accept */

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
        if ((int64_t)(h1_active_conns + tunnel_count) >= limit) {
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
        conn_init(&s->c, fd, h1_on_io);
        if (plen > sizeof(s->c.peer))
            plen = sizeof(s->c.peer);
        memcpy(&s->c.peer, &peer, plen);
        s->c.peerlen = plen;
        s->lst = l;
        s->id = h1_next_id++;
        s->state = H1_S_IDLE;
        s->out_fd = -1;
        s->timer.cb = h1_on_timer;
        s->post.cb = h1_on_post;
        s->created_ms = loop_now();
        const struct listen_conf *lsc = current_listen(s);
        int pp = lsc && lsc->proxy_protocol;
        /* With proxy_protocol the PROXY header comes first and TLS starts
         * after it (run_proxy_protocol). */
        if (pp)
            s->state = H1_S_PROXY_PROTOCOL;
        if ((!pp && lsc && lsc->ssl && tls_accept(&s->c, rt_current, lsc, s->id) < 0) ||
            loop_add(&s->c.h) < 0) {
            conn_close_fd(&s->c);
            free(s);
            continue;
        }
        h1_active_conns++;
        sessions_add(s);
        const struct loc_conf *lc = default_lc(s);
        h1_set_timer(s, lc ? lc->client_header_timeout : 60000);
        /* Data often arrives with the handshake: try at once (READY_R is optimistic). */
        h1_run(s);
        if (h1_accept_full && (int64_t)(h1_active_conns + tunnel_count) >= limit) {
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
    if (!s->req_active)
        return;
    if (s->out_fd >= 0) {
        close(s->out_fd);
        s->out_fd = -1;
    }
    buf_put(s->out_buf);
    s->out_buf = NULL;
    /* Every way a request ends comes here: its limit_conn counts go back
     * (unless a tunnel took them over). */
    limit_conn_release(s->req.limit_conn);
    s->req.limit_conn = NULL;
    arena_destroy(&s->req.arena);
    rt_release(s->req.rt);
    memset(&s->req, 0, sizeof(s->req));
    s->req_active = 0;
    s->out_head = NULL;
    s->out_head_len = s->out_head_off = 0;
    s->out_body = NULL;
    s->out_body_len = s->out_body_off = 0;
}

void h1_close(struct h1_session *s, const char *reason)
{
    (void)reason;
    if (s->state == H1_S_CLOSED)
        return;
    if (s->req_active && s->req.proxy)
        proxy_abort(s);
    s->state = H1_S_CLOSED;
    timer_cancel(&s->timer);
    loop_unpost(&s->post);
    request_free(s);
    buf_put(s->in);
    s->in = NULL;
    conn_close_fd(&s->c);
    h1_active_conns--;
    sessions_del(s);
    loop_defer_free(session_free, s);
}

/* Close after the response, reading what the client still sends for a
 * moment so the kernel does not answer it with a RST that could destroy the
 * response before the client read it (nginx's lingering close): at most
 * lingering_time in all, lingering_timeout for each wait. */
static void close_lingering(struct h1_session *s, uint64_t time_ms, uint64_t timeout_ms)
{
    s->c.xprt->shutdown_wr(&s->c);
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
        if (!(s->c.flags & CONN_F_READY_R))
            break;
        ssize_t n = conn_recv(&s->c, sink, sizeof(sink));
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
    if (s->c.flags & CONN_F_READY_R)
        loop_post(&s->post);
}

/* ------------------------------------------------------------ local responses */

static void run_send(struct h1_session *s);

/*
 * Queue a locally generated response: status and headers in r, body from
 * memory (`body`,`len`) or from s->out_fd. HEAD and bodiless statuses send
 * no body. Takes over the connection until sent.
 */
static void send_local(struct h1_session *s, const char *body, size_t len, off_t file_len)
{
    struct request *r = &s->req;
    if (r->err_status_override > 0)
        r->status = r->err_status_override;
    int status = r->status;
    int bodiless = status < 200 || status == 204 || status == 304;
    int is_head = str_eq(r->method, STR_LIT("HEAD"));
    if (!bodiless) {
        uint64_t clen = s->out_fd >= 0 ? (uint64_t)file_len : len;
        char *cl = arena_printf(&r->arena, "%llu", (unsigned long long)clen);
        if (!cl || resp_add(r, STR_LIT("Content-Length"), str_from_cstr(cl)) < 0) {
            h1_close(s, "out of memory");
            return;
        }
    }
    if (resp_status_closes(status))
        r->keepalive = 0;
    /* A request body not read yet is read and dropped after the response
     * (h1_request_done -> H1_S_DISCARD_BODY) so the next request parses. */
    if (resp_build_head(s, &s->out_head, &s->out_head_len) < 0) {
        h1_close(s, "out of memory");
        return;
    }
    s->out_head_off = 0;
    if (bodiless || is_head) {
        s->out_body = NULL;
        s->out_body_len = 0;
        if (s->out_fd >= 0) {
            close(s->out_fd);
            s->out_fd = -1;
        }
    } else {
        s->out_body = body;
        s->out_body_len = len;
        s->out_file_left = file_len;
    }
    s->out_body_off = 0;
    r->head_sent = 1;
    s->state = H1_S_SEND;
    run_send(s);
}

/*
 * One step of a file body on a transport without sendfile (TLS): read the
 * next piece into a pooled buffer, write it. The buffer stays until its bytes
 * are written (an SSL_write retry must see them again). Returns SY_OK
 * (progress), SY_AGAIN, or SY_ERR after closing the session.
 */
static int send_file_copy(struct h1_session *s)
{
    struct request *r = &s->req;
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
    ssize_t w = conn_send(&s->c, buf_head(s->out_buf), buf_len(s->out_buf));
    if (w == SY_AGAIN)
        return SY_AGAIN;
    if (w < 0) {
        sy_log(LOG_LVL_INFO, "writev() failed (%d: %s) while sending response to client",
               s->c.last_errno, strerror(s->c.last_errno));
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
    struct request *r = &s->req;
    for (;;) {
        size_t head_left = s->out_head_len - s->out_head_off;
        size_t body_left = s->out_body_len - s->out_body_off;
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
            ssize_t w = conn_writev(&s->c, iov, n);
            if (w == SY_AGAIN)
                goto wait;
            if (w < 0) {
                sy_log(LOG_LVL_INFO, "writev() failed (%d: %s) while sending response to client",
                       s->c.last_errno, strerror(s->c.last_errno));
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
        if (s->c.xprt != &xprt_plain &&
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
            ssize_t w = sendfile(s->c.h.fd, s->out_fd, &s->out_file_off, chunk);
            if (w < 0) {
                if (errno == EAGAIN) {
                    s->c.flags &= ~CONN_F_READY_W;
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

struct str h1_absolute_location(struct h1_session *s, struct str loc)
{
    struct request *r = &s->req;
    if (loc.len == 0 || loc.p[0] != '/' || (r->lc && !r->lc->absolute_redirect))
        return loc;
    if (s->locallen == 0)
        net_local_addr(s->c.h.fd, &s->local, &s->locallen);
    unsigned port = net_port((struct sockaddr *)&s->local);
    int ssl = r->listen && r->listen->ssl;
    struct str host = r->host;
    char ipbuf[64];
    if (r->lc && r->lc->server_name_in_redirect && r->srv && r->srv->nnames &&
        r->srv->names[0].name.len)
        host = r->srv->names[0].name;
    if (!host.len) {
        if (r->srv && r->srv->nnames && r->srv->names[0].name.len)
            host = r->srv->names[0].name;
        else {
            net_ip_str((struct sockaddr *)&s->local, ipbuf, sizeof(ipbuf));
            host = str_from_cstr(ipbuf);
        }
    }
    char portbuf[16] = "";
    if (((ssl && port != 443) || (!ssl && port != 80)) && (!r->lc || r->lc->port_in_redirect))
        snprintf(portbuf, sizeof(portbuf), ":%u", port);
    char *p = arena_printf(&r->arena, "%s://%.*s%s%.*s", ssl ? "https" : "http", (int)host.len,
                           host.p, portbuf, (int)loc.len, loc.p);
    return p ? str_from_cstr(p) : loc;
}

/* Set the response's Location, replacing one set before (an error page
 * reached from a redirect gets one Location, as nginx's clear_location). */
static int set_location(struct request *r, struct str value)
{
    for (unsigned i = 0; i < r->nresp; i++)
        if (str_caseeq(r->resp[i].name, STR_LIT("location"))) {
            r->resp[i].value = value;
            return 0;
        }
    return resp_add(r, STR_LIT("Location"), value);
}

static void send_standard_page(struct h1_session *s, int status)
{
    struct request *r = &s->req;
    size_t len;
    int tokens = r->lc ? r->lc->server_tokens : 1;
    const char *page = resp_error_page(status, tokens, &len);
    char *body = arena_strndup(&r->arena, page, len);
    if (!body) {
        h1_close(s, "out of memory");
        return;
    }
    int bad = status == 494 || status == 495 || status == 496 || status == 497;
    r->status = bad ? 400 : status;
    /* This page is the answer: no earlier error_page status applies to it. */
    r->err_status_override = 0;
    if (bad)
        r->keepalive = 0;
    if (resp_add(r, STR_LIT("Content-Type"), STR_LIT("text/html")) < 0) {
        h1_close(s, "out of memory");
        return;
    }
    int bodiless = status < 200 || status == 204 || status == 304;
    send_local(s, bodiless ? NULL : body, bodiless ? 0 : len, 0);
}

/* Re-route to `uri`; `set_args` replaces $args with `args` (NULL slice = none). */
static void internal_redirect(struct h1_session *s, struct str uri, struct str args, int set_args)
{
    struct request *r = &s->req;
    if (++r->internal_redirects > H1_MAX_INTERNAL_REDIRECTS) {
        sy_log(LOG_LVL_ERR, "rewrite or internal redirection cycle while internally redirecting to \"%.*s\"",
               (int)uri.len, uri.p);
        r->error_page_done = 1;
        send_standard_page(s, 500);
        return;
    }
    char *norm = arena_alloc(&r->arena, uri.len + 2);
    if (!norm) {
        h1_close(s, "out of memory");
        return;
    }
    ssize_t n = router_normalize_uri(uri, norm, uri.len + 2);
    if (n < 0) {
        send_standard_page(s, 400);
        return;
    }
    r->uri = (struct str){norm, (size_t)n};
    r->uri_changed = 1;
    r->uri_rewritten = 0;
    if (set_args)
        r->args = args.len ? args : STR_NULL;
    find_location_and_run(s);
}

static void named_redirect(struct h1_session *s, struct str name)
{
    struct request *r = &s->req;
    if (++r->internal_redirects > H1_MAX_INTERNAL_REDIRECTS) {
        send_standard_page(s, 500);
        return;
    }
    const struct location *loc = router_find_named(r->srv, name);
    struct str before = r->uri;
    if (!loc) {
        sy_log(LOG_LVL_ERR, "could not find named location \"@%.*s\"", (int)name.len, name.p);
        r->error_page_done = 1;
        send_standard_page(s, 500);
        return;
    }
    r->loc = loc;
    r->lc = loc->lc;
    enum rw_result rc = run_rewrite(s, r->lc->rewrite);
    if (rc == RW_RESPONDED)
        return;
    if (rc == RW_RESEARCH || !str_eq(before, r->uri)) {
        find_location_and_run(s);
        return;
    }
    run_handler(s);
}

void h1_respond_status(struct h1_session *s, int status)
{
    struct request *r = &s->req;
    const struct loc_conf *lc = r->lc;
    if (r->head_sent) {
        h1_close(s, "error after response head");
        return;
    }
    if (status == 444) {
        r->status = 444;
        r->keepalive = 0;
        access_log_write(s);
        h1_close(s, "return 444");
        return;
    }
    r->status = status;
    /* nginx's r->err_status: the status an error-page target's own answer is
     * sent with, unless that target answers with an error or redirect of its
     * own (which comes back here and replaces it). */
    r->err_status_override = status;
    if (lc && !r->error_page_done) {
        for (unsigned i = 0; i < lc->nerror_pages; i++) {
            const struct error_page *ep = &lc->error_pages[i];
            int hit = 0;
            for (unsigned k = 0; k < ep->ncodes; k++)
                if (ep->codes[k] == status)
                    hit = 1;
            if (!hit)
                continue;
            r->error_page_done = 1;
            struct str target;
            if (tmpl_eval(s, &ep->target, &target) < 0) {
                h1_close(s, "out of memory");
                return;
            }
            /* nginx: 494-497 without "=code" answer 400 */
            r->err_status_override = ep->override >= 0              ? ep->override
                                     : status >= 494 && status <= 497 ? 400
                                                                      : status;
            if (target.len && target.p[0] == '@') {
                r->is_error_page = 1;
                named_redirect(s, (struct str){target.p + 1, target.len - 1});
                return;
            }
            if (target.len > 7 && (memcmp(target.p, "http://", 7) == 0 ||
                                   (target.len > 8 && memcmp(target.p, "https://", 8) == 0))) {
                int code = ep->override >= 301 && ep->override <= 308 ? ep->override : 302;
                r->err_status_override = 0;
                if (set_location(r, target) < 0) {
                    h1_close(s, "out of memory");
                    return;
                }
                send_standard_page(s, code);
                return;
            }
            /* Internal redirect: the method becomes GET (HEAD stays HEAD). */
            if (!str_eq(r->method, STR_LIT("HEAD")))
                r->method = STR_LIT("GET");
            struct str path = target, args = STR_NULL;
            for (size_t k = 0; k < target.len; k++)
                if (target.p[k] == '?') {
                    path.len = k;
                    args = (struct str){target.p + k + 1, target.len - k - 1};
                    break;
                }
            r->is_error_page = 1;
            internal_redirect(s, path, args, 1);
            return;
        }
    }
    send_standard_page(s, status);
}

/* ------------------------------------------------------------ rewrite phase */

/* Subjects ($uri, evaluated templates) live in the request arena or the
 * configuration, so the captures may borrow them for the request's life. */
static int regex_match(struct h1_session *s, void *re, struct str subject)
{
    return router_regex_match(re, subject, &s->req.caps);
}

static int eval_cond(struct h1_session *s, const struct rw_op *op)
{
    struct str lhs;
    if (tmpl_eval(s, &op->u.cond.lhs, &lhs) < 0)
        return 0;
    struct stat st;
    char path[4096];
    switch (op->u.cond.op) {
    case RW_COND_TRUTHY:
        return lhs.len && !(lhs.len == 1 && lhs.p[0] == '0');
    case RW_COND_EQ:
    case RW_COND_NE: {
        struct str rhs;
        if (tmpl_eval(s, &op->u.cond.rhs, &rhs) < 0)
            return 0;
        int eq = str_eq(lhs, rhs);
        return op->u.cond.op == RW_COND_EQ ? eq : !eq;
    }
    case RW_COND_RE:
    case RW_COND_RE_I:
        return regex_match(s, op->u.cond.re, lhs);
    case RW_COND_NRE:
    case RW_COND_NRE_I:
        return !regex_match(s, op->u.cond.re, lhs);
    default:
        break;
    }
    if (lhs.len >= sizeof(path))
        return 0;
    memcpy(path, lhs.p, lhs.len);
    path[lhs.len] = '\0';
    int exists = stat(path, &st) == 0;
    switch (op->u.cond.op) {
    case RW_COND_FILE: return exists && S_ISREG(st.st_mode);
    case RW_COND_NFILE: return !(exists && S_ISREG(st.st_mode));
    case RW_COND_DIR: return exists && S_ISDIR(st.st_mode);
    case RW_COND_NDIR: return !(exists && S_ISDIR(st.st_mode));
    case RW_COND_EXISTS: return exists;
    case RW_COND_NEXISTS: return !exists;
    default: return 0;
    }
}

static void do_return(struct h1_session *s, const struct rw_return *ret)
{
    struct request *r = &s->req;
    int code = ret->code;
    if (code == 444 || !ret->text) {
        if (code >= 400 || code == 444) {
            h1_respond_status(s, code);
            return;
        }
        r->status = code;
        if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308) {
            h1_respond_status(s, code); /* error_page applies, as in nginx */
            return;
        }
        if (code >= 300 && code < 400) {
            send_standard_page(s, code);
            return;
        }
        send_local(s, "", 0, 0);
        return;
    }
    struct str text;
    if (tmpl_eval(s, ret->text, &text) < 0) {
        h1_close(s, "out of memory");
        return;
    }
    if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308) {
        if (set_location(r, h1_absolute_location(s, text)) < 0) {
            h1_close(s, "out of memory");
            return;
        }
        h1_respond_status(s, code); /* error_page applies, as in nginx */
        return;
    }
    r->status = code;
    if (resp_add(r, STR_LIT("Content-Type"), r->lc->default_type) < 0) {
        h1_close(s, "out of memory");
        return;
    }
    send_local(s, text.p, text.len, 0);
}

/* Apply a matching `rewrite`: new $uri/$args, or a redirect. */
static enum rw_result do_rewrite(struct h1_session *s, const struct rw_op *op)
{
    struct request *r = &s->req;
    if (!regex_match(s, op->u.rewrite.re, r->uri))
        return RW_CONTINUE;
    int flag = op->u.rewrite.flag;
    int redirect = rw_is_url(op->u.rewrite.replacement.raw) || flag == RW_FLAG_REDIRECT ||
                   flag == RW_FLAG_PERMANENT;
    struct rw_eval ev;
    if (rw_eval_replacement(s, &op->u.rewrite.replacement, redirect, &ev) < 0) {
        h1_close(s, "out of memory");
        return RW_RESPONDED;
    }
    if (redirect) {
        if (set_location(r, h1_absolute_location(s, ev.uri)) < 0) {
            h1_close(s, "out of memory");
            return RW_RESPONDED;
        }
        h1_respond_status(s, flag == RW_FLAG_PERMANENT ? 301 : 302);
        return RW_RESPONDED;
    }
    struct str path = ev.uri, args = ev.args;
    r->uri = path;
    r->args = args.len ? args : STR_NULL;
    r->uri_changed = 1;
    r->uri_rewritten = 1;
    if (flag == RW_FLAG_LAST)
        return RW_RESEARCH;
    if (flag == RW_FLAG_BREAK)
        return RW_STOP;
    return RW_CONTINUE;
}

/* Run rewrite ops in order (see enum rw_result). */
static enum rw_result run_rewrite(struct h1_session *s, const struct rw_op *op)
{

    struct request *r = &s->req;
    for (; op; op = op->next) {
        switch (op->type) {
        case RW_RETURN:
            do_return(s, &op->u.ret);
            return RW_RESPONDED;
        case RW_BREAK:
            return RW_STOP;
        case RW_REWRITE: {
            enum rw_result rc = do_rewrite(s, op);
            if (rc != RW_CONTINUE)
                return rc;
            break;
        }
        case RW_SET: {
            struct str v;
            if (tmpl_eval(s, &op->u.set.value, &v) < 0) {
                h1_close(s, "out of memory");
                return RW_RESPONDED;
            }
            if (op->u.set.var_index & VAR_SET_BUILTIN) {
                var_set_builtin(s, op->u.set.var_index & ~VAR_SET_BUILTIN, v);
                break;
            }
            unsigned nslots = r->rt->gen->vars.nset_slots;
            if (!r->set_vals) {
                r->set_vals = arena_calloc(&r->arena, (nslots ? nslots : 1) * sizeof(struct str));
                if (!r->set_vals) {
                    h1_close(s, "out of memory");
                    return RW_RESPONDED;
                }
            }
            if (op->u.set.var_index < nslots)
                r->set_vals[op->u.set.var_index] = v;
            break;
        }
        case RW_IF:
            if (eval_cond(s, op)) {
                if (op->u.cond.lc)
                    r->lc = op->u.cond.lc;
                enum rw_result rc = run_rewrite(s, op->u.cond.body);
                if (rc != RW_CONTINUE)
                    return rc;
            }
            break;
        }
    }
    return RW_CONTINUE;
}

/* ------------------------------------------------------------ static files */

static int static_eval_cb(void *ctx, const struct tmpl *t, struct str *out)
{
    return tmpl_eval(ctx, t, out);
}

static void run_static(struct h1_session *s)
{
    struct request *r = &s->req;
    struct static_input in;
    memset(&in, 0, sizeof(in));
    in.uri = r->uri;
    in.method = r->method;
    in.loc = r->loc;
    in.lc = r->lc;
    in.prefix = r->rt->gen->prefix;
    in.if_modified_since = req_header(r, "if-modified-since");
    in.if_none_match = req_header(r, "if-none-match");
    in.if_match = req_header(r, "if-match");
    in.if_unmodified_since = req_header(r, "if-unmodified-since");
    in.range = req_header(r, "range");
    in.if_range = req_header(r, "if-range");
    in.eval = static_eval_cb;
    in.eval_ctx = s;
    struct static_result res;
    memset(&res, 0, sizeof(res));
    res.fd = -1;
    if (static_handle(&in, &res, &r->arena) < 0) {
        h1_respond_status(s, 500);
        return;
    }
    switch (res.action) {
    case STATIC_SEND:
    case STATIC_NOT_MODIFIED:
        r->status = res.action == STATIC_NOT_MODIFIED ? 304 : res.status;
        if (res.action == STATIC_SEND) {
            s->out_fd = res.fd;
            s->out_file_off = res.offset;
            if (res.content_type.len)
                resp_add(r, STR_LIT("Content-Type"), res.content_type);
        }
        if (res.last_modified.len)
            resp_add(r, STR_LIT("Last-Modified"), res.last_modified);
        if (res.etag.len)
            resp_add(r, STR_LIT("ETag"), res.etag);
        if (res.content_range.len && res.status == 206)
            resp_add(r, STR_LIT("Content-Range"), res.content_range);
        if (res.accept_ranges)
            resp_add(r, STR_LIT("Accept-Ranges"), STR_LIT("bytes"));
        if (r->err_status_override > 0 && res.action == STATIC_SEND)
            r->status = r->err_status_override;
        send_local(s, NULL, 0, res.action == STATIC_SEND ? res.length : 0);
        return;
    case STATIC_STATUS:
        if (res.status == 416 && res.content_range.len)
            resp_add(r, STR_LIT("Content-Range"), res.content_range);
        h1_respond_status(s, res.status);
        return;
    case STATIC_REDIRECT: {
        struct str loc = res.location;
        if (r->args.p) {
            char *p = arena_printf(&r->arena, "%.*s?%.*s", (int)loc.len, loc.p, (int)r->args.len,
                                   r->args.p);
            if (p)
                loc = str_from_cstr(p);
        }
        set_location(r, h1_absolute_location(s, loc));
        h1_respond_status(s, 301);
        return;
    }
    case STATIC_INTERNAL:
        internal_redirect(s, res.target, res.args, res.args_replace);
        return;
    case STATIC_NAMED:
        named_redirect(s, res.target);
        return;
    }
}

/* ------------------------------------------------------------ routing */

static void run_handler(struct h1_session *s)
{
    struct request *r = &s->req;
    /* nginx's PREACCESS phase: realip with the location's settings (first
     * in the phase, so access limits see the real client) */
    realip_apply(s, r->lc);
    /* nginx's preaccess phase: limit_req, then limit_conn, once per request
     * (an internal redirect, an error page, comes back here and passes). */
    if (r->lc->limit_reqs && !r->limit_req_status) {
        uint64_t delay;
        int st = limit_req_check(s, &delay);
        if (st) {
            h1_respond_status(s, st);
            return;
        }
        if (delay) {
            /* Held on the session timer; the worker serves others meanwhile. */
            s->state = H1_S_LIMIT_DELAY;
            h1_set_timer(s, delay);
            return;
        }
    }
    if (r->lc->limit_conns && !r->limit_conn_status) {
        int st = limit_conn_check(s);
        if (st) {
            h1_respond_status(s, st);
            return;
        }
    }
    if (r->lc->proxy_pass) {
        proxy_start(s);
        return;
    }
    run_static(s);
}

/* nginx's auto_redirect: "/dir" for a proxied "location /dir/" is a 301 to
 * "/dir/" (escaped, with the arguments). */
static void auto_redirect_to_slash(struct h1_session *s)
{
    struct request *r = &s->req;
    size_t len;
    char *loc = static_dir_location(&r->arena, r->uri, &len);
    if (!loc) {
        h1_close(s, "out of memory");
        return;
    }
    struct str target = {loc, len};
    if (r->args.len) {
        char *p = arena_printf(&r->arena, "%s?%.*s", loc, (int)r->args.len, r->args.p);
        if (p)
            target = str_from_cstr(p);
    }
    if (set_location(r, h1_absolute_location(s, target)) < 0) {
        h1_close(s, "out of memory");
        return;
    }
    h1_respond_status(s, 301);
}

static void find_location_and_run(struct h1_session *s)
{
    struct request *r = &s->req;
    for (int cycle = 0;; cycle++) {
        if (cycle > H1_MAX_INTERNAL_REDIRECTS) {
            sy_log(LOG_LVL_ERR, "rewrite or internal redirection cycle while processing \"%.*s\"",
                   (int)r->uri.len, r->uri.p);
            r->error_page_done = 1;
            send_standard_page(s, 500);
            return;
        }
        int auto_redirect;
        r->loc = router_find_location_ex(r->srv, r->uri, &r->caps, &auto_redirect);
        r->lc = r->loc ? r->loc->lc : r->srv->lc;
        r->uri_rewritten = 0;
        uint64_t max = r->lc->client_max_body_size;
        if (max && !r->is_error_page && (r->info.flags & H1_F_HAS_CL) &&
            r->info.content_length > max) {
            char ctx[1500];
            h1_log_ctx(s, ctx, sizeof(ctx));
            sy_log(LOG_LVL_ERR, "*%llu client intended to send too large body: %llu bytes%s",
                   (unsigned long long)s->id, (unsigned long long)r->info.content_length, ctx);
            r->keepalive = 0;
            h1_respond_status(s, 413);
            return;
        }
        if (!r->loc)
            break;
        if (r->lc->internal && !r->uri_changed) {
            /* An `internal` location serves only internal redirects. */
            h1_respond_status(s, 404);
            return;
        }
        if (auto_redirect) {
            auto_redirect_to_slash(s);
            return;
        }
        struct str before = r->uri;
        enum rw_result rc = run_rewrite(s, r->lc->rewrite);
        if (rc == RW_RESPONDED)
            return;
        if (rc == RW_RESEARCH || (rc == RW_CONTINUE && !str_eq(before, r->uri)))
            continue;
        break;
    }
    run_handler(s);
}

/* ssl_verify_client: nginx's 421 / 495 / 496 (answered as 400, error_page
 * 495 and 496 apply). Returns 1 when the request was answered. */
static int tls_check_request(struct h1_session *s)
{
    struct request *r = &s->req;
    char why[300];
    int status = tls_request_check(&s->c, r->srv, r->host, why, sizeof(why));
    if (!status)
        return 0;
    char ctx[1500];
    h1_log_ctx(s, ctx, sizeof(ctx));
    sy_log(LOG_LVL_INFO, "*%llu %s while reading client request headers%s",
           (unsigned long long)s->id, why, ctx);
    if (status != 421)
        r->keepalive = 0;
    h1_respond_status(s, status);
    return 1;
}

static void route_request(struct h1_session *s)
{
    struct request *r = &s->req;
    r->srv = router_find_server(r->listen, r->host, &r->caps);
    if (!r->srv) {
        h1_close(s, "no server");
        return;
    }
    r->lc = r->srv->lc;
    if (s->c.flags & CONN_F_PLAIN_ON_TLS) {
        /* nginx's 497: answered as 400 with its own page, error_page 497 applies. */
        char ctx[1500];
        h1_log_ctx(s, ctx, sizeof(ctx));
        sy_log(LOG_LVL_INFO, "*%llu client sent plain HTTP request to HTTPS port while reading "
               "client request headers%s", (unsigned long long)s->id, ctx);
        r->keepalive = 0;
        h1_respond_status(s, 497);
        return;
    }
    if (tls_is(&s->c) && tls_check_request(s))
        return;
    /* nginx's POST_READ phase: realip with the server's settings */
    realip_apply(s, r->srv->lc);
    if (run_rewrite(s, r->srv->lc->rewrite) == RW_RESPONDED)
        return;
    find_location_and_run(s);
}

/* ------------------------------------------------------------ request head */

static void bad_request(struct h1_session *s, int status, const char *why)
{
    char ctx[1500];
    h1_log_ctx(s, ctx, sizeof(ctx));
    sy_log(LOG_LVL_INFO, "*%llu client sent %s while reading client request headers%s",
           (unsigned long long)s->id, why, ctx);
    s->req.keepalive = 0;
    h1_respond_status(s, status);
}

/* Copy a slice that points into [from, from+len) to the same offset in `to`. */
static struct str rebase(struct str v, const char *from, char *to)
{
    if (!v.p)
        return v;
    return (struct str){to + (v.p - from), v.len};
}

static int valid_host_lower(struct request *r, struct str in, struct str *out)
{
    /* Lower-case, strip port and one trailing dot; reject what nginx rejects. */
    size_t len = in.len;
    if (len && in.p[0] == '[') {
        size_t k = 0;
        while (k < len && in.p[k] != ']')
            k++;
        if (k == len)
            return -1;
        len = k + 1;
    } else {
        for (size_t k = 0; k < len; k++)
            if (in.p[k] == ':') {
                len = k;
                break;
            }
    }
    for (size_t k = 0; k + 1 < len; k++)
        if (in.p[k] == '.' && in.p[k + 1] == '.')
            return -1;
    if (len && in.p[len - 1] == '.')
        len--;
    if (len == 0) /* "", ".", ":80": nginx's "invalid host" */
        return -1;
    char *p = arena_alloc(&r->arena, len + 1);
    if (!p)
        return -1;
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)in.p[k];
        if (c == '/' || c == '\\' || c == '\0' || c <= 0x20)
            return -1;
        if (c == '.' && k + 1 < len && in.p[k + 1] == '.')
            return -1;
        p[k] = (char)sy_tolower(c);
    }
    p[len] = '\0';
    *out = (struct str){p, len};
    return 0;
}

static void start_request(struct h1_session *s, struct h1_request *pr, ssize_t head_len)
{
    struct request *r = &s->req;
    /* Already zero: the session was calloc'd and request_free() clears it. */
    arena_init(&r->arena, 4096);
    s->req_active = 1;
    r->rt = rt_ref(rt_current);
    r->listen = current_listen(s);
    s->listen = r->listen;
    r->start_wall_ms = loop_wall_ms();
    r->start_ms = loop_now();
    r->head_len = (uint64_t)head_len;
    r->pipelined = s->pipelined_next;
    s->pipelined_next = 0;
    r->minor = pr->minor_version;
    r->keepalive = 0;
    s->requests++;
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
        h1_respond_status(s, 405);
        return;
    }
    if (str_eq(r->method, STR_LIT("TRACE"))) {
        r->keepalive = 0;
        h1_respond_status(s, 405);
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
    r->request_uri = path;
    /* The Host header is checked even when the request line names the host
     * (nginx's ngx_http_process_host), then the request line's host wins. */
    if (host.p && (r->info.flags & H1_F_HAS_HOST)) {
        struct str unused;
        if (valid_host_lower(r, r->info.host, &unused) < 0) {
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
    if (host.p && valid_host_lower(r, host, &r->host) < 0) {
        bad_request(s, 400, "invalid host in \"Host\" header");
        return;
    }

    /* Path and query, then the normalised $uri. */
    /* A fragment ends the path and the arguments (nginx: "/p?a#f" has $args
     * "a", "/p#f?a" none); $request_uri keeps it. */
    struct str qpath = path;
    for (size_t k = 0; k < path.len; k++) {
        if (path.p[k] == '#') {
            qpath.len = k;
            break;
        }
        if (path.p[k] == '?') {
            qpath.len = k;
            size_t e = k + 1;
            while (e < path.len && path.p[e] != '#')
                e++;
            r->args = (struct str){path.p + k + 1, e - k - 1};
            break;
        }
    }
    char *norm = arena_alloc(&r->arena, qpath.len + 2);
    if (!norm) {
        h1_close(s, "out of memory");
        return;
    }
    ssize_t nl = router_normalize_uri_opts(qpath, norm, qpath.len + 2, r->lc->merge_slashes);
    if (nl < 0) {
        bad_request(s, 400, "invalid request");
        return;
    }
    r->uri = (struct str){norm, (size_t)nl};

    /* Body framing. */
    if (r->info.flags & H1_F_CHUNKED) {
        if (r->minor == 0) {
            bad_request(s, 400, "chunked body in HTTP/1.0 request");
            return;
        }
        r->has_body = 1;
    } else if ((r->info.flags & H1_F_HAS_CL) && r->info.content_length > 0) {
        r->has_body = 1;
        r->body_left = r->info.content_length;
    } else {
        r->body_done = 1;
    }
    r->expect_continue = (r->info.flags & H1_F_EXPECT_CONTINUE) && r->minor == 1 && r->has_body;

    /* keepalive_requests / keepalive_time are checked at the end; the idle
     * timer becomes the request's own deadlines. */
    timer_stop(&s->timer);
    s->head_timer = 0;
    route_request(s);
}

/* A request head that cannot be accepted still gets a request context (for
 * the error page, the access log and the log line), then the error status. */
static void head_error(struct h1_session *s, int status, const char *why)
{
    struct request *r = &s->req;
    memset(r, 0, sizeof(*r));
    arena_init(&r->arena, 4096);
    s->req_active = 1;
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
    s->requests++;
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

static void read_head(struct h1_session *s)
{
    const struct loc_conf *lc = default_lc(s);
    uint64_t lhb = lc ? lc->large_client_header_buffers_size : 8192;
    for (int budget = 0; budget < H1_READ_BUDGET; budget++) {
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
        if (!(s->c.flags & CONN_F_READY_R))
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
        ssize_t n = conn_recv(&s->c, buf_tail(s->in), buf_room(s->in));
        if (n > 0) {
            if (s->state == H1_S_IDLE)
                s->state = H1_S_READ_HEAD;
            s->in->last += (uint32_t)n;
            continue;
        }
        if (n == SY_AGAIN)
            break;
        if (n == 0) {
            if (s->in && buf_len(s->in) > 0) {
                char ctx[256];
                conn_peer_ip(&s->c, ctx, sizeof(ctx));
                sy_log(LOG_LVL_INFO,
                       "*%llu client prematurely closed connection while reading client request "
                       "headers, client: %s",
                       (unsigned long long)s->id, ctx);
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
    if (s->c.flags & CONN_F_READY_R)
        loop_post(&s->post); /* read budget used up: yield, come back */
}

/* ------------------------------------------------------------ body discard */

static void run_discard(struct h1_session *s)
{
    struct request *r = &s->req;
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
        if (!(s->c.flags & CONN_F_READY_R)) {
            h1_set_timer(s, r->lc->client_body_timeout);
            return;
        }
        if (!s->in && !(s->in = buf_get())) {
            h1_close(s, "out of memory");
            return;
        }
        ssize_t n = conn_recv(&s->c, buf_tail(s->in), buf_room(s->in));
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

void h1_request_done(struct h1_session *s)
{
    struct request *r = &s->req;
    r->completed = 1; /* $request_completion */
    access_log_write(s);
    if (s->out_fd >= 0) {
        close(s->out_fd);
        s->out_fd = -1;
    }
    if (r->keepalive && r->has_body && !r->body_done) {
        s->state = H1_S_DISCARD_BODY;
        run_discard(s);
        return;
    }
    finish_request(s);
}

static void finish_request(struct h1_session *s)
{
    struct request *r = &s->req;
    const struct loc_conf *lc = r->lc;
    int keep = r->keepalive && !(s->c.flags & (CONN_F_EOF | CONN_F_ERROR)) && !sy_quit;
    if (keep && lc) {
        if (lc->keepalive_timeout == 0)
            keep = 0;
        if (lc->keepalive_requests >= 0 && s->requests >= (unsigned)lc->keepalive_requests)
            keep = 0;
        if (loop_now() - s->created_ms > lc->keepalive_time)
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
            (linger == LINGERING_CLOSE_ON && (unread || (s->c.flags & CONN_F_READY_R)))) {
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
        h1_set_timer(s, ka_timeout);
        loop_post(&s->post);
        return;
    }
    buf_put(s->in);
    s->in = NULL;
    s->state = H1_S_IDLE;
    h1_set_timer(s, ka_timeout);
    if (s->c.flags & CONN_F_READY_R)
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
    if (lsc && lsc->ssl && tls_accept(&s->c, rt_current, lsc, s->id) < 0) {
        h1_close(s, "TLS setup failed");
        return;
    }
    s->state = H1_S_IDLE;
    read_head(s);
}

/* ------------------------------------------------------------ dispatch */

void h1_run(struct h1_session *s)
{
    switch (s->state) {
    case H1_S_PROXY_PROTOCOL:
        run_proxy_protocol(s);
        break;
    case H1_S_IDLE:
    case H1_S_READ_HEAD:
        read_head(s);
        break;
    case H1_S_PROXY:
        proxy_on_client(s, 0);
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
        if (s->c.flags & (CONN_F_RDHUP | CONN_F_EOF | CONN_F_ERROR)) {
            char ctx[1500];
            h1_log_ctx(s, ctx, sizeof(ctx));
            sy_log(LOG_LVL_INFO, "*%llu client prematurely closed connection while %s%s",
                   (unsigned long long)s->id, h1_state_name(s->state), ctx);
            s->req.status = 499;
            access_log_write(s);
            h1_close(s, "client closed during limit_req delay");
        }
        break;
    case H1_S_CLOSED:
        break;
    }
}

static void h1_on_io(struct handle *h, uint32_t events)
{
    struct h1_session *s = container_of(h, struct h1_session, c.h);
    if (s->state == H1_S_CLOSED)
        return;
    conn_note_events(&s->c, events);
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
        if (s->c.flags & CONN_F_HANDSHAKE) {
            const struct listen_conf *l = current_listen(s);
            conn_peer_ip(&s->c, ctx, sizeof(ctx));
            sy_log(LOG_LVL_INFO, "*%llu client timed out (110: Connection timed out) while SSL "
                   "handshaking, client: %s, server: %s", (unsigned long long)s->id, ctx,
                   l && l->text ? l->text : "");
        }
        h1_close(s, "keepalive timeout");
        return;
    case H1_S_READ_HEAD:
        h1_log_ctx(s, ctx, sizeof(ctx));
        sy_log(LOG_LVL_INFO, "*%llu client timed out (110: Connection timed out) while reading client request headers%s",
               (unsigned long long)s->id, ctx);
        h1_close(s, "client header timeout");
        return;
    case H1_S_PROXY:
        proxy_on_client(s, 1);
        return;
    case H1_S_SEND:
    case H1_S_DISCARD_BODY:
        h1_log_ctx(s, ctx, sizeof(ctx));
        sy_log(LOG_LVL_INFO, "*%llu client timed out (110: Connection timed out) while %s%s",
               (unsigned long long)s->id, h1_state_name(s->state), ctx);
        h1_close(s, "client timeout");
        return;
    case H1_S_LIMIT_DELAY:
        /* The limit_req delay is over: on with the request. */
        s->state = H1_S_READ_HEAD;
        run_handler(s);
        return;
    case H1_S_LINGER:
    case H1_S_CLOSED:
        h1_close(s, "linger timeout");
        return;
    }
}

unsigned h1_shutdown_idle(void)
{
    for (unsigned i = 0; i < nall;) {
        struct h1_session *s = all_sessions[i];
        if (s->state == H1_S_IDLE || s->state == H1_S_PROXY_PROTOCOL) {
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
