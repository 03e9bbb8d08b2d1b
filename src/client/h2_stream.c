/*
 * h2_stream.c - one HTTP/2 request stream: its head becomes a
 * protocol-neutral request (RFC 9113 section 8 on top of what nghttp2
 * checks), and it implements the client-stream operations (http/stream.h)
 * for the phases and handlers that serve it.
 */
#include "client/h2_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/listener.h"
#include "conf/runtime.h"
#include "core/log.h"
#include "http/phases.h"
#include "http/response.h"
#include "proxy/ws_frame.h"

#include "core/container.h"
#include "core/metrics.h"
#include "proxy/metrics_proxy.h"
#define HS(st) container_of(st, struct h2_stream, st)

static const struct stream_ops h2_stream_ops;
static void hs_on_timer(struct timer *t);
static void hs_on_post(struct posted *p);

struct h2_stream *h2_stream_new(struct h2_session *sess, int32_t id)
{
    struct h2_stream *hs = calloc(1, sizeof(*hs));
    if (!hs)
        return NULL;
    hs->sess = sess;
    hs->id = id;
    hs->fd = -1;
    hs->st.conn = &sess->cc;
    hs->st.ops = &h2_stream_ops;
    hs->timer.cb = hs_on_timer;
    hs->post.cb = hs_on_post;
    struct request *r = &hs->st.req;
    arena_init(&r->arena, 4096);
    hs->st.req_active = 1;
    stream_stat_request(&hs->st);
    r->rt = rt_ref(rt_current);
    r->listen = client_current_listen(&sess->cc);
    r->start_wall_ms = loop_wall_ms();
    r->start_ms = loop_now();
    r->minor = 1;
    if (r->listen) {
        r->srv = h2_session_server(sess);
        if (!r->srv)
            r->srv = r->listen->default_server;
        r->lc = r->srv->lc;
    }
    hs->next = sess->streams;
    if (sess->streams)
        sess->streams->prev = hs;
    sess->streams = hs;
    sess->nstreams++;
    METRICS_FIXED_ADD(h2_streams, 1);
    METRICS_FIXED_ADD(h2_streams_total, 1);
    /* A stream's own deadline: the head must be complete within
     * client_header_timeout. */
    timer_set(&hs->timer, r->lc ? r->lc->client_header_timeout : 60000);
    return hs;
}

/* ------------------------------------------------------------ request head */

static int is_name(const uint8_t *n, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(n, lit, len) == 0;
}

int h2_stream_header(struct h2_stream *hs, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen)
{
    struct request *r = &hs->st.req;
    /* nginx's limits: each field within one large_client_header_buffers
     * buffer, the whole list within all of them; beyond that the head is
     * refused (and what an HPACK bomb decodes to is never stored). */
    uint64_t field_max = r->lc ? r->lc->large_client_header_buffers_size : 8192;
    uint64_t list_max = field_max * (r->lc ? r->lc->large_client_header_buffers_num : 4);
    hs->head_bytes += namelen + valuelen + 32;
    if (namelen + valuelen > field_max || hs->head_bytes > list_max) {
        hs->head_too_large = 1;
        if (hs->head_bytes > 4 * list_max)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0;
    }
    if (hs->head_too_large)
        return 0;
    char *v = arena_alloc(&r->arena, valuelen + 1);
    if (!v)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    memcpy(v, value, valuelen);
    v[valuelen] = '\0';
    struct str sv = {v, valuelen};
    if (namelen && name[0] == ':') {
        if (is_name(name, namelen, ":method"))
            hs->method = sv;
        else if (is_name(name, namelen, ":path"))
            hs->path = sv;
        else if (is_name(name, namelen, ":scheme"))
            hs->scheme = sv;
        else if (is_name(name, namelen, ":authority"))
            hs->authority = sv;
        else if (is_name(name, namelen, ":protocol"))
            hs->protocol = sv;
        return 0;
    }
    char *n = arena_alloc(&r->arena, namelen + 1);
    if (!n)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    memcpy(n, name, namelen);
    n[namelen] = '\0';
    if (hs->nhdrs == hs->caphdrs) {
        size_t cap = hs->caphdrs ? hs->caphdrs * 2 : 16;
        struct h1_header *nh = arena_alloc(&r->arena, cap * sizeof(*nh));
        if (!nh)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (hs->nhdrs)
            memcpy(nh, hs->hdrs, hs->nhdrs * sizeof(*nh));
        hs->hdrs = nh;
        hs->caphdrs = cap;
    }
    struct h1_header *h = &hs->hdrs[hs->nhdrs++];
    h->name = (struct str){n, namelen};
    h->value = sv;
    h->id = h1_header_id(h->name);
    return 0;
}

/* A trailer field of the request (HEADERS after the DATA): kept for the
 * handler (an HTTP/1.1 upstream gets them after a chunked body). */
int h2_stream_trailer(struct h2_stream *hs, const uint8_t *name, size_t namelen,
                      const uint8_t *value, size_t valuelen)
{
    struct request *r = &hs->st.req;
    if (!hs->st.req_active || (namelen && name[0] == ':'))
        return 0;
    hs->head_bytes += namelen + valuelen + 32;
    uint64_t field_max = r->lc ? r->lc->large_client_header_buffers_size : 8192;
    if (namelen + valuelen > field_max || hs->nrtrailers >= 64)
        return 0; /* dropped, as nginx drops them all */
    if (hs->nrtrailers == hs->caprtrailers) {
        size_t cap = hs->caprtrailers ? hs->caprtrailers * 2 : 4;
        struct h1_header *nt = arena_alloc(&r->arena, cap * sizeof(*nt));
        if (!nt)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (hs->nrtrailers)
            memcpy(nt, hs->rtrailers, hs->nrtrailers * sizeof(*nt));
        hs->rtrailers = nt;
        hs->caprtrailers = cap;
    }
    char *n = arena_strndup(&r->arena, (const char *)name, namelen);
    char *v = arena_strndup(&r->arena, (const char *)value, valuelen);
    if (!n || !v)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    struct h1_header *h = &hs->rtrailers[hs->nrtrailers++];
    h->name = (struct str){n, namelen};
    h->value = (struct str){v, valuelen};
    h->id = h1_header_id(h->name);
    return 0;
}

/* Cookie crumbs (RFC 9113 8.2.3) become one "cookie" field joined with
 * "; " for HTTP/1.1 upstreams and variables. */
static int join_cookies(struct h2_stream *hs)
{
    struct request *r = &hs->st.req;
    size_t n = 0, total = 0;
    for (size_t i = 0; i < hs->nhdrs; i++)
        if (str_eq(hs->hdrs[i].name, STR_LIT("cookie"))) {
            n++;
            total += hs->hdrs[i].value.len + 2;
        }
    if (n < 2)
        return 0;
    char *v = arena_alloc(&r->arena, total + 1);
    if (!v)
        return -1;
    size_t o = 0, first = (size_t)-1, k = 0;
    for (size_t i = 0; i < hs->nhdrs; i++) {
        if (!str_eq(hs->hdrs[i].name, STR_LIT("cookie"))) {
            hs->hdrs[k++] = hs->hdrs[i];
            continue;
        }
        if (o) {
            v[o++] = ';';
            v[o++] = ' ';
        }
        memcpy(v + o, hs->hdrs[i].value.p, hs->hdrs[i].value.len);
        o += hs->hdrs[i].value.len;
        if (first == (size_t)-1) {
            first = k;
            hs->hdrs[k++] = hs->hdrs[i];
        }
    }
    v[o] = '\0';
    hs->hdrs[first].value = (struct str){v, o};
    hs->nhdrs = k;
    return 0;
}

static void refuse(struct h2_stream *hs, int status, const char *why);

/* Append a request field (arena copy of the array when full). */
static int add_field(struct h2_stream *hs, struct str name, struct str value, unsigned id)
{
    struct request *r = &hs->st.req;
    if (hs->nhdrs == hs->caphdrs) {
        size_t cap = hs->caphdrs ? hs->caphdrs * 2 : 8;
        struct h1_header *nh = arena_alloc(&r->arena, cap * sizeof(*nh));
        if (!nh)
            return -1;
        if (hs->nhdrs)
            memcpy(nh, hs->hdrs, hs->nhdrs * sizeof(*nh));
        hs->hdrs = nh;
        hs->caphdrs = cap;
    }
    struct h1_header *h = &hs->hdrs[hs->nhdrs++];
    h->name = name;
    h->value = value;
    h->id = id;
    return 0;
}

/*
 * WebSocket over HTTP/2 (RFC 8441): an extended CONNECT becomes, for the
 * request phases and the proxy, what an HTTP/1.1 "GET" with "Upgrade:
 * websocket" is: $http_upgrade is "websocket", $http_connection "upgrade"
 * (so the classic proxy_set_header lines mean the same), and a fresh
 * Sec-WebSocket-Key stands for the client's (the proxy checks the upstream's
 * Accept against it). $request keeps "CONNECT". 0, or -1 (answered).
 */
static int extended_connect(struct h2_stream *hs)
{
    struct request *r = &hs->st.req;
    char *key = arena_alloc(&r->arena, 25);
    if (!key || ws_new_key(key) < 0) {
        hs->st.ops->abort(&hs->st, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < hs->nhdrs; i++)
        if (hs->hdrs[i].id == H1_H_UPGRADE || hs->hdrs[i].id == H1_H_CONNECTION ||
            str_eq(hs->hdrs[i].name, STR_LIT("sec-websocket-key"))) {
            metrics_upgrade_refused(r, 0, MUR_BAD_REQUEST);
            refuse(hs, 400, "connection-specific field in an extended CONNECT");
            return -1;
        }
    if (add_field(hs, STR_LIT("upgrade"), STR_LIT("websocket"), H1_H_UPGRADE) < 0 ||
        add_field(hs, STR_LIT("connection"), STR_LIT("upgrade"), H1_H_CONNECTION) < 0 ||
        add_field(hs, STR_LIT("sec-websocket-key"), (struct str){key, 24}, H1_H_OTHER) < 0) {
        hs->st.ops->abort(&hs->st, "out of memory");
        return -1;
    }
    r->method = STR_LIT("GET");
    r->headers = hs->hdrs;
    r->nheaders = hs->nhdrs;
    enum h1_framing_error fe;
    if (h1_analyze_headers(r->headers, r->nheaders, &r->info, &fe) < 0) {
        refuse(hs, 400, h1_framing_error_str(fe));
        return -1;
    }
    hs->ws = 1;
    return 0;
}

/* Answer the stream's request locally before it ran (a bad head). */
static void refuse(struct h2_stream *hs, int status, const char *why)
{
    char ctx[1500];
    stream_log_ctx(&hs->st, ctx, sizeof(ctx));
    sy_log(LOG_LVL_INFO, "*%llu client sent %s while processing HTTP/2 request%s",
           (unsigned long long)hs->sess->cc.id, why, ctx);
    http_respond_status(&hs->st, status);
}

void h2_stream_head_done(struct h2_stream *hs, int end_stream)
{
    struct request *r = &hs->st.req;
    struct h2_session *sess = hs->sess;
    hs->started = 1;
    hs->client_done = end_stream;
    r->head_parsed = 1;
    h2_session_count_request(sess);
    timer_stop(&hs->timer);
    if (!r->listen) {
        nghttp2_submit_rst_stream(sess->ng, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_REFUSED_STREAM);
        return;
    }
    /* $request as nginx writes it for HTTP/2: "GET /path HTTP/2.0". */
    r->method = hs->method;
    struct str path = hs->path.len ? hs->path : STR_LIT("/");
    char *line = arena_printf(&r->arena, "%.*s %.*s HTTP/2.0", (int)r->method.len,
                              r->method.p ? r->method.p : "", (int)path.len, path.p);
    if (line)
        r->request_line = str_from_cstr(line);
    r->head_len = hs->head_bytes;
    if (hs->head_too_large) {
        refuse(hs, 494, "too large request header");
        return;
    }
    if (join_cookies(hs) < 0) {
        hs->st.ops->abort(&hs->st, "out of memory");
        return;
    }
    /* :authority is the host; a Host field naming another one makes the
     * request malformed (RFC 9113 8.3.1). Either one stands in for the
     * other in $http_host and upstream requests. */
    struct str host_field = STR_NULL;
    for (size_t i = 0; i < hs->nhdrs; i++)
        if (hs->hdrs[i].id == H1_H_HOST)
            host_field = hs->hdrs[i].value;
    if (hs->authority.p && host_field.p) {
        struct str a, b;
        if (http_valid_host(r, hs->authority, &a) < 0 || http_valid_host(r, host_field, &b) < 0 ||
            !str_eq(a, b)) {
            refuse(hs, 400, "\"Host\" header that differs from \":authority\"");
            return;
        }
    }
    if (hs->authority.p && !host_field.p) {
        if (hs->nhdrs == hs->caphdrs) {
            struct h1_header *nh = arena_alloc(&r->arena, (hs->caphdrs + 1) * sizeof(*nh));
            if (!nh) {
                hs->st.ops->abort(&hs->st, "out of memory");
                return;
            }
            if (hs->nhdrs)
                memcpy(nh, hs->hdrs, hs->nhdrs * sizeof(*nh));
            hs->hdrs = nh;
            hs->caphdrs++;
        }
        struct h1_header *h = &hs->hdrs[hs->nhdrs++];
        h->name = STR_LIT("host");
        h->value = hs->authority;
        h->id = H1_H_HOST;
    }
    r->headers = hs->hdrs;
    r->nheaders = hs->nhdrs;
    enum h1_framing_error fe;
    if (h1_analyze_headers(r->headers, r->nheaders, &r->info, &fe) < 0) {
        refuse(hs, 400, h1_framing_error_str(fe));
        return;
    }
    if (str_eq(r->method, STR_LIT("CONNECT")) && !hs->protocol.p) {
        /* A plain CONNECT (no :path, RFC 9113 8.5) is not proxied: 400,
         * as nginx answers it over HTTP/2. */
        refuse(hs, 400, "CONNECT method");
        return;
    }
    if (!r->method.len || !hs->path.len) {
        refuse(hs, 400, "request without \":method\" or \":path\"");
        return;
    }
    if (str_eq(r->method, STR_LIT("TRACE"))) { /* nginx: 405, as over HTTP/1 */
        refuse(hs, 405, "TRACE method");
        return;
    }
    if (str_eq(r->method, STR_LIT("CONNECT"))) {
        if (!str_caseeq(hs->protocol, STR_LIT("websocket"))) {
            metrics_upgrade_refused(r, 0, MUR_UNKNOWN_PROTOCOL);
            refuse(hs, 501, "extended CONNECT for an unknown \":protocol\"");
            return;
        }
        if (extended_connect(hs) < 0)
            return;
    }
    if (hs->path.p[0] != '/') {
        refuse(hs, 400, "invalid \":path\"");
        return;
    }
    if (r->info.flags & H1_F_HAS_HOST) {
        if (http_valid_host(r, r->info.host, &r->host) < 0) {
            refuse(hs, 400, "invalid host in \":authority\"");
            return;
        }
    }
    int prc = http_set_path(&hs->st, hs->path);
    if (prc == -2) {
        hs->st.ops->abort(&hs->st, "out of memory");
        return;
    }
    if (prc < 0) {
        refuse(hs, 400, "invalid \":path\"");
        return;
    }
    /* Body: Content-Length if given (nghttp2 checks it against the DATA),
     * otherwise streamed (chunked towards an HTTP/1.1 upstream). */
    if (!end_stream && !hs->ws) {
        r->has_body = 1;
        if (r->info.flags & H1_F_HAS_CL) {
            r->body_left = r->info.content_length;
            if (r->info.content_length == 0)
                r->has_body = 0;
        } else {
            r->info.flags |= H1_F_CHUNKED;
        }
    }
    if (!r->has_body)
        r->body_done = 1;
    http_request_run(&hs->st);
}

void h2_stream_data(struct h2_stream *hs, const uint8_t *data, size_t len)
{
    struct h2_session *sess = hs->sess;
    if (!hs->started || hs->reset || (hs->end_sent && !hs->tend) ||
        (hs->ws && !hs->tend && !hs->st.on_event)) {
        /* Nobody will read it: give the windows back. */
        nghttp2_session_consume(sess->ng, hs->id, len);
        return;
    }
    if (!hs->in && !(hs->in = buf_get_big())) {
        nghttp2_session_consume(sess->ng, hs->id, len);
        nghttp2_submit_rst_stream(sess->ng, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    if (buf_room(hs->in) < len)
        buf_compact(hs->in);
    if (buf_room(hs->in) < len) {
        /* More than the window we announced: a flow-control error. */
        nghttp2_submit_rst_stream(sess->ng, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_FLOW_CONTROL_ERROR);
        return;
    }
    memcpy(buf_tail(hs->in), data, len);
    hs->in->last += (uint32_t)len;
    h2_stream_wake(hs);
}

void h2_stream_end(struct h2_stream *hs)
{
    hs->client_done = 1;
    h2_stream_wake(hs);
}

void h2_stream_wake(struct h2_stream *hs)
{
    if (hs->tend)
        h2_tunnel_end_ready(hs, 1 /* TUNNEL_END_R */);
    else if (hs->st.on_event)
        loop_post(&hs->post);
}

static void stream_free(void *p)
{
    free(p);
}

/* The stream is gone from nghttp2 (or the connection closes): end the
 * request (the handler first), free everything. */
void h2_stream_closed(struct h2_stream *hs, uint32_t error_code)
{
    struct request *r = &hs->st.req;
    hs->reset = 1;
    if (hs->tend)
        h2_tunnel_end_stream_gone(hs);
    if (hs->st.on_abort) {
        void (*on_abort)(struct client_stream *) = hs->st.on_abort;
        hs->st.on_abort = NULL;
        hs->st.on_event = NULL;
        on_abort(&hs->st);
    }
    if (!hs->end_sent && hs->started && r->status == 0)
        r->status = 499; /* the client went away before the response */
    (void)error_code;
    http_request_release(&hs->st);
    timer_cancel(&hs->timer);
    loop_unpost(&hs->post);
    buf_put(hs->in);
    hs->in = NULL;
    buf_put(hs->out);
    hs->out = NULL;
    if (hs->fd >= 0)
        close(hs->fd);
    hs->fd = -1;
    h2_session_stream_gone(hs->sess, hs);
    loop_defer_free(stream_free, hs);
}

static void hs_on_post(struct posted *p)
{
    struct h2_stream *hs = container_of(p, struct h2_stream, post);
    if (hs->st.on_event)
        hs->st.on_event(&hs->st, 0);
    h2_session_schedule(hs->sess);
}

static void hs_on_timer(struct timer *t)
{
    struct h2_stream *hs = container_of(t, struct h2_stream, timer);
    if (hs->holding) {
        hs->holding = 0;
        http_phase_resume(&hs->st);
    } else if (hs->st.on_event) {
        hs->st.on_event(&hs->st, 1);
    } else if (!hs->started) {
        char ctx[128];
        h2_session_log_ctx(hs->sess, ctx, sizeof(ctx));
        sy_log(LOG_LVL_INFO, "*%llu client timed out (110: Connection timed out) while reading "
               "client request headers%s", (unsigned long long)hs->sess->cc.id, ctx);
        nghttp2_submit_rst_stream(hs->sess->ng, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_CANCEL);
    } else {
        /* A local response the client does not read (send_timeout). */
        nghttp2_submit_rst_stream(hs->sess->ng, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_CANCEL);
    }
    h2_session_schedule(hs->sess);
}

/* ------------------------------------------------------------ response out */

/* nghttp2 pulls the body: from the handler's buffer, memory or a file. */
static ssize_t data_read(nghttp2_session *ng, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)ud;
    struct h2_stream *hs = src->ptr;
    struct request *r = &hs->st.req;
    size_t n = 0;
    switch (hs->body) {
    case H2_BODY_STREAM:
        if (hs->out) {
            n = buf_len(hs->out) < length ? buf_len(hs->out) : length;
            memcpy(buf, buf_head(hs->out), n);
            buf_consume(hs->out, n);
            if (buf_len(hs->out) == 0) {
                buf_put(hs->out);
                hs->out = NULL;
            }
        }
        if (!hs->out && hs->out_eof) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            if (hs->trailer_nv && nghttp2_submit_trailer(ng, stream_id, hs->trailer_nv,
                                                         hs->ntrailer_nv) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM; /* the trailers end it */
        } else if (n == 0) {
            hs->deferred = 1;
            return NGHTTP2_ERR_DEFERRED;
        }
        if (hs->writer_blocked) {
            hs->writer_blocked = 0;
            if (hs->tend)
                h2_tunnel_end_ready(hs, 2 /* TUNNEL_END_W */);
            else
                h2_stream_wake(hs);
        }
        break;
    case H2_BODY_MEMORY:
        n = hs->mem_len - hs->mem_off < length ? hs->mem_len - hs->mem_off : length;
        memcpy(buf, hs->mem + hs->mem_off, n);
        hs->mem_off += n;
        if (hs->mem_off == hs->mem_len)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        break;
    case H2_BODY_FILE: {
        size_t want = (off_t)length < hs->file_left ? length : (size_t)hs->file_left;
        ssize_t got;
        do
            got = pread(hs->fd, buf, want, hs->file_off);
        while (got < 0 && errno == EINTR);
        if (got <= 0) {
            if (got < 0)
                sy_log(LOG_LVL_CRIT, "pread() failed (%d: %s) while sending response to client",
                       errno, strerror(errno));
            else
                sy_log(LOG_LVL_ERR, "file was truncated while sending response to client");
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        n = (size_t)got;
        hs->file_off += got;
        hs->file_left -= got;
        if (hs->file_left == 0)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        break;
    }
    case H2_BODY_NONE:
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        break;
    }
    r->body_bytes_sent += n;
    r->bytes_sent += n + 9;
    return (ssize_t)n;
}

/* Lower-case a header name into the arena (HTTP/2 field names are). */
static struct str lower_name(struct arena *a, struct str n)
{
    char *p = arena_alloc(a, n.len + 1);
    if (!p)
        return STR_NULL;
    for (size_t i = 0; i < n.len; i++)
        p[i] = (char)sy_tolower((unsigned char)n.p[i]);
    p[n.len] = '\0';
    return (struct str){p, n.len};
}

static int is_connection_specific(struct str n)
{
    return str_caseeq(n, STR_LIT("connection")) || str_caseeq(n, STR_LIT("keep-alive")) ||
           str_caseeq(n, STR_LIT("proxy-connection")) ||
           str_caseeq(n, STR_LIT("transfer-encoding")) || str_caseeq(n, STR_LIT("upgrade"));
}

/* Submit HEADERS for r->status/r->resp, with the body source `kind`. */
static int submit_response(struct h2_stream *hs, enum h2_body_kind kind)
{
    struct request *r = &hs->st.req;
    struct resp_final f;
    if (resp_finalize(&hs->st, &f) < 0)
        return -1;
    nghttp2_nv *nv = arena_alloc(&r->arena, (r->nresp + 3) * sizeof(*nv));
    if (!nv)
        return -1;
    size_t n = 0;
    char *status = arena_printf(&r->arena, "%03d", r->status > 0 && r->status < 1000 ? r->status : 500);
    if (!status)
        return -1;
    size_t bytes = 0;
    nv[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE};
    if (!f.has_server)
        nv[n++] = (nghttp2_nv){(uint8_t *)"server", (uint8_t *)f.server, 6, strlen(f.server),
                               NGHTTP2_NV_FLAG_NONE};
    if (!f.has_date) {
        const char *d = arena_strndup(&r->arena, time_http_date(), 29);
        if (!d)
            return -1;
        nv[n++] = (nghttp2_nv){(uint8_t *)"date", (uint8_t *)d, 4, strlen(d), NGHTTP2_NV_FLAG_NONE};
    }
    for (unsigned i = 0; i < r->nresp; i++) {
        struct str name = r->resp[i].name, value = r->resp[i].value;
        if (!name.len || is_connection_specific(name))
            continue;
        struct str ln = lower_name(&r->arena, name);
        if (!ln.p)
            return -1;
        nv[n++] = (nghttp2_nv){(uint8_t *)ln.p, (uint8_t *)(value.p ? value.p : ""), ln.len,
                               value.len, NGHTTP2_NV_FLAG_NONE};
        bytes += ln.len + value.len + 4;
    }
    r->bytes_sent += bytes + 64;
    hs->body = kind;
    nghttp2_data_provider dp = {.source.ptr = hs, .read_callback = data_read};
    int rv = nghttp2_submit_response(hs->sess->ng, hs->id, nv, n,
                                     kind == H2_BODY_NONE ? NULL : &dp);
    if (rv != 0)
        return -1;
    hs->submitted = 1;
    r->head_sent = 1;
    h2_session_schedule(hs->sess);
    return 0;
}

static void st_send_memory(struct client_stream *st, const char *body, size_t len)
{
    struct h2_stream *hs = HS(st);
    hs->mem = body;
    hs->mem_len = len;
    hs->mem_off = 0;
    st->on_event = NULL;
    st->on_abort = NULL;
    if (submit_response(hs, len ? H2_BODY_MEMORY : H2_BODY_NONE) < 0)
        st->ops->abort(st, "out of memory");
}

static void st_send_file(struct client_stream *st, int fd, off_t off, off_t len)
{
    struct h2_stream *hs = HS(st);
    hs->fd = fd;
    hs->file_off = off;
    hs->file_left = len;
    st->on_event = NULL;
    st->on_abort = NULL;
    if (submit_response(hs, len ? H2_BODY_FILE : H2_BODY_NONE) < 0)
        st->ops->abort(st, "out of memory");
}

static int st_send_head(struct client_stream *st, int64_t length)
{
    struct h2_stream *hs = HS(st);
    int bodiless = length == 0 || str_eq(st->req.method, STR_LIT("HEAD"));
    if (submit_response(hs, bodiless ? H2_BODY_NONE : H2_BODY_STREAM) < 0) {
        st->ops->abort(st, "out of memory");
        return SY_ERR;
    }
    return SY_OK;
}

static ssize_t st_write(struct client_stream *st, const struct iovec *iov, int n, int last)
{
    struct h2_stream *hs = HS(st);
    if (hs->reset)
        return SY_ERR;
    if (hs->body != H2_BODY_STREAM) {
        /* Bodiless response: nothing to frame. */
        if (last)
            hs->out_eof = 1;
        return 0;
    }
    size_t taken = 0, avail = 0;
    for (int i = 0; i < n; i++)
        avail += iov[i].iov_len;
    for (int i = 0; i < n; i++) {
        if (!iov[i].iov_len)
            continue;
        if (!hs->out && !(hs->out = buf_get())) {
            st->ops->abort(st, "out of memory");
            return SY_ERR;
        }
        if (buf_room(hs->out) < iov[i].iov_len)
            buf_compact(hs->out);
        size_t k = buf_room(hs->out) < iov[i].iov_len ? buf_room(hs->out) : iov[i].iov_len;
        memcpy(buf_tail(hs->out), iov[i].iov_base, k);
        hs->out->last += (uint32_t)k;
        taken += k;
        if (k < iov[i].iov_len)
            break;
    }
    if (last && taken == avail)
        hs->out_eof = 1;
    if (taken == 0 && avail) {
        hs->writer_blocked = 1;
        return SY_AGAIN;
    }
    if (hs->deferred && (taken || hs->out_eof)) {
        hs->deferred = 0;
        nghttp2_session_resume_data(hs->sess->ng, hs->id);
    }
    h2_session_schedule(hs->sess);
    return (ssize_t)taken;
}

/* Everything was given: the bytes in hs->out are the stream's to send
 * (the handler may let its upstream go now). */
static int st_write_done(struct client_stream *st)
{
    return HS(st)->out_eof;
}

/* ------------------------------------------------------------ request body in */

static enum stream_body st_body_peek(struct client_stream *st, struct str *out)
{
    struct h2_stream *hs = HS(st);
    if (hs->in && buf_len(hs->in)) {
        *out = (struct str){buf_head(hs->in), buf_len(hs->in)};
        return STREAM_BODY_DATA;
    }
    if (hs->reset)
        return STREAM_BODY_CLOSED;
    if (hs->client_done || !st->req.has_body) {
        st->req.body_done = 1;
        return STREAM_BODY_DONE;
    }
    return STREAM_BODY_AGAIN;
}

static void st_body_consume(struct client_stream *st, size_t n)
{
    struct h2_stream *hs = HS(st);
    if (!hs->in || !n)
        return;
    buf_consume(hs->in, n);
    st->req.body_received += n;
    if (buf_len(hs->in) == 0) {
        buf_put(hs->in);
        hs->in = NULL;
    }
    /* The window opens by what the handler took, no sooner. */
    nghttp2_session_consume(hs->sess->ng, hs->id, n);
    if (hs->client_done && !hs->in)
        st->req.body_done = 1;
    h2_session_schedule(hs->sess);
}

static size_t st_body_buffered(struct client_stream *st, const char **p)
{
    struct h2_stream *hs = HS(st);
    if (!hs->in || buf_len(hs->in) == 0)
        return 0;
    if (p)
        *p = buf_head(hs->in);
    return buf_len(hs->in);
}

static size_t st_request_trailers(struct client_stream *st, const struct h1_header **out)
{
    struct h2_stream *hs = HS(st);
    *out = hs->rtrailers;
    return hs->nrtrailers;
}

/* The upstream's trailer fields: sent in a HEADERS frame after the last
 * DATA (lower-case names; connection-specific ones and pseudo-fields left
 * out). */
static int st_send_trailers(struct client_stream *st, const struct h1_header *t, size_t n)
{
    struct h2_stream *hs = HS(st);
    struct request *r = &st->req;
    if (hs->body != H2_BODY_STREAM)
        return 0;
    nghttp2_nv *nv = arena_alloc(&r->arena, (n ? n : 1) * sizeof(*nv));
    if (!nv) {
        st->ops->abort(st, "out of memory");
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!t[i].name.len || is_connection_specific(t[i].name) || h1_hop_by_hop(t[i].id))
            continue;
        struct str ln = lower_name(&r->arena, t[i].name);
        char *v = arena_strndup(&r->arena, t[i].value.p ? t[i].value.p : "", t[i].value.len);
        if (!ln.p || !v) {
            st->ops->abort(st, "out of memory");
            return -1;
        }
        nv[k++] = (nghttp2_nv){(uint8_t *)ln.p, (uint8_t *)v, ln.len, t[i].value.len,
                               NGHTTP2_NV_FLAG_NONE};
    }
    if (k) {
        hs->trailer_nv = nv;
        hs->ntrailer_nv = k;
    }
    return 0;
}

static void st_send_continue(struct client_stream *st)
{
    (void)st; /* HTTP/2 clients send the body without waiting for a 100 */
}

/* ------------------------------------------------------------ the rest */

static void st_set_timeout(struct client_stream *st, uint64_t ms)
{
    struct h2_stream *hs = HS(st);
    hs->holding = 0;
    timer_set(&hs->timer, ms);
}

static void st_stop_timeout(struct client_stream *st)
{
    timer_stop(&HS(st)->timer);
}

static int st_client_gone(struct client_stream *st)
{
    struct h2_stream *hs = HS(st);
    return hs->reset || hs->sess->closed;
}

static void st_finish(struct client_stream *st)
{
    struct h2_stream *hs = HS(st);
    st->on_event = NULL;
    st->on_abort = NULL;
    timer_stop(&hs->timer);
    h2_session_schedule(hs->sess);
}

static void st_abort(struct client_stream *st, const char *reason)
{
    (void)reason;
    struct h2_stream *hs = HS(st);
    if (st->on_abort) {
        void (*on_abort)(struct client_stream *) = st->on_abort;
        st->on_abort = NULL;
        st->on_event = NULL;
        on_abort(st);
    }
    if (!hs->reset && !hs->sess->closed) {
        nghttp2_submit_rst_stream(hs->sess->ng, NGHTTP2_FLAG_NONE, hs->id,
                                  NGHTTP2_INTERNAL_ERROR);
        h2_session_schedule(hs->sess);
    }
}

static void st_hold(struct client_stream *st, uint64_t ms)
{
    struct h2_stream *hs = HS(st);
    hs->holding = 1;
    timer_set(&hs->timer, ms);
}

/* The upstream accepted the WebSocket upgrade: the client's answer is a
 * 200 to its extended CONNECT (RFC 8441 5), with the upstream's end-to-end
 * fields (subprotocol, extensions) but no Sec-WebSocket-Accept; the DATA
 * frames of the stream then carry the WebSocket. */
static int st_upgrade_head(struct client_stream *st, char **prefix, size_t *prefix_len)
{
    struct h2_stream *hs = HS(st);
    struct request *r = &st->req;
    *prefix = NULL;
    *prefix_len = 0;
    if (!hs->ws) {
        st->ops->abort(st, "no upgrade over HTTP/2");
        return -1;
    }
    for (unsigned i = 0; i < r->nresp; i++)
        if (str_caseeq(r->resp[i].name, STR_LIT("sec-websocket-accept")))
            r->resp[i].name = STR_NULL; /* left out by submit_response */
    r->status = 200;
    if (submit_response(hs, H2_BODY_STREAM) < 0) {
        st->ops->abort(st, "out of memory");
        return -1;
    }
    return 0;
}

/* The stream becomes the tunnel's client end; the request ends (the
 * tunnel writes the log line). */
static struct tunnel_end *st_take_tunnel_side(struct client_stream *st, struct conn *sock,
                                              struct buf **leftover)
{
    struct h2_stream *hs = HS(st);
    memset(sock, 0, sizeof(*sock));
    sock->h.fd = -1;
    *leftover = NULL;
    struct tunnel_end *e = h2_tunnel_end_new(hs);
    st->req.logged = 1;
    st->on_event = NULL;
    st->on_abort = NULL;
    timer_stop(&hs->timer);
    arena_destroy_uncached(&st->req.arena);
    http_request_release(st);
    if (!e)
        nghttp2_submit_rst_stream(hs->sess->ng, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_INTERNAL_ERROR);
    h2_session_schedule(hs->sess);
    return e;
}

static const struct stream_ops h2_stream_ops = {
    .body_peek = st_body_peek,
    .body_consume = st_body_consume,
    .body_buffered = st_body_buffered,
    .request_trailers = st_request_trailers,
    .send_trailers = st_send_trailers,
    .send_continue = st_send_continue,
    .send_head = st_send_head,
    .write = st_write,
    .write_done = st_write_done,
    .send_memory = st_send_memory,
    .send_file = st_send_file,
    .set_timeout = st_set_timeout,
    .stop_timeout = st_stop_timeout,
    .client_gone = st_client_gone,
    .finish = st_finish,
    .abort = st_abort,
    .hold = st_hold,
    .upgrade_head = st_upgrade_head,
    .take_tunnel_side = st_take_tunnel_side,
};
