/*
 * filter.c - the response filter chain (see filter.h): the operations
 * table put in front of a client stream, the opening of filters at head
 * time, and the driver of a filtered local response (memory or file body).
 */
#include "http/filter.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "http/compress.h"
#include "http/limit_rate.h"
#include "http/sub_filter.h"
#include "http/ssi.h"
#include "http/phases.h"
#include "http/response.h"

/* Every filter type, handler side first (one line per module). */
static const struct resp_filter_type *const filter_types[] = {
    &sub_filter_type,
    &ssi_filter_type,
    &compress_filter_type,
    &limit_rate_filter_type, /* last: it paces what reaches the client */
    NULL,
};

struct filter_chain {
    const struct stream_ops *proto;   /* the protocol's own table */
    struct resp_filter *head;         /* first filter of this response, NULL: pass-through */
    unsigned notes;                   /* FILTER_NOTE_* */
    /* the handler's on_event while the chain wraps it (filters with held output) */
    void (*handler_on_event)(struct client_stream *st, int timed_out);
    int wrapped;

    /* a local response driven through the filters */
    const char *mem;                  /* memory body */
    size_t mem_len, mem_off;
    int fd;                           /* file body (-1 none), owned */
    off_t file_off, file_left;
    struct buf *in;                   /* file bytes read, not yet taken by the filters */
};

static const struct stream_ops filter_ops;

#define CHAIN(st) ((st)->filters)

/* ------------------------------------------------------------ install */

static void install(struct client_stream *st, int always)
{
    if (st->filters || !st->req.lc)
        return;
    int any = always;
    for (unsigned i = 0; filter_types[i] && !any; i++)
        any |= filter_types[i]->wanted(st->req.lc);
    if (!any)
        return;
    struct filter_chain *c = arena_calloc(&st->req.arena, sizeof(*c));
    if (!c)
        return; /* unfiltered is a correct answer */
    c->proto = st->ops;
    c->fd = -1;
    st->filters = c;
    st->ops = &filter_ops;
}

void http_filters_install(struct client_stream *st)
{
    install(st, 0);
}

void http_filters_require(struct client_stream *st)
{
    install(st, 1);
}

static void chain_on_event(struct client_stream *st, int timed_out);

/* Close the filters of the current response (and a local body's file). */
static void chain_reset(struct client_stream *st)
{
    struct filter_chain *c = CHAIN(st);
    struct resp_filter *f = c->head;
    c->head = NULL;
    while (f) {
        struct resp_filter *next = f->next;
        f->type->close(f);
        f = next;
    }
    if (c->wrapped && st->on_event == chain_on_event) {
        /* the wrapper is still installed: give the handler its own back */
        st->on_event = c->handler_on_event;
    }
    c->wrapped = 0;
    c->handler_on_event = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    buf_put(c->in);
    c->in = NULL;
}

void http_filters_release(struct client_stream *st)
{
    struct filter_chain *c = CHAIN(st);
    if (!c)
        return;
    chain_reset(st);
    st->ops = c->proto;
    st->filters = NULL;
}

void http_filters_note(struct client_stream *st, unsigned note)
{
    if (st->filters)
        st->filters->notes |= note;
}

unsigned http_filters_notes(const struct client_stream *st)
{
    return st->filters ? st->filters->notes : 0;
}

const struct stream_ops *http_filters_proto(const struct client_stream *st)
{
    return st->filters ? st->filters->proto : st->ops;
}

struct resp_filter *http_filters_find(const struct client_stream *st,
                                      const struct resp_filter_type *type)
{
    if (!st->filters)
        return NULL;
    for (struct resp_filter *f = st->filters->head; f; f = f->next)
        if (f->type == type)
            return f;
    return NULL;
}

/* ------------------------------------------------------------ downstream */

ssize_t resp_filter_next_write(struct resp_filter *f, const struct iovec *iov, int n, int last)
{
    if (f->next)
        return f->next->type->write(f->next, iov, n, last);
    return CHAIN(f->st)->proto->write(f->st, iov, n, last);
}

int resp_filter_next_done(struct resp_filter *f)
{
    if (f->next)
        return f->next->type->write_done(f->next);
    return CHAIN(f->st)->proto->write_done(f->st);
}

/* ------------------------------------------------------------ opening */

static int header_only(const struct request *r)
{
    return r->status < 200 || r->status == 204 || r->status == 304;
}

static int head_request(const struct request *r)
{
    return str_eq(r->method, STR_LIT("HEAD"));
}

/* HEAD: no body is handed over; the length is the one the head declares. */
static int64_t declared_length(struct client_stream *st)
{
    struct str cl = resp_get(&st->req, "content-length");
    uint64_t n;
    return cl.p && str_to_u64(cl, INT64_MAX, &n) == 0 ? (int64_t)n : STREAM_LEN_UNKNOWN;
}

/* Ask every filter type about this head; link those that take the body. */
static void chain_open(struct client_stream *st, struct resp_filter_head *h)
{
    struct filter_chain *c = CHAIN(st);
    struct resp_filter **tail = &c->head;
    for (unsigned i = 0; filter_types[i]; i++) {
        struct resp_filter *f = filter_types[i]->open(st, h);
        if (!f)
            continue;
        f->type = filter_types[i];
        f->st = st;
        f->next = NULL;
        *tail = f;
        tail = &f->next;
    }
}

/* Let filters with held output write it when the client is writable, then
 * the handler. */
static void chain_on_event(struct client_stream *st, int timed_out)
{
    struct filter_chain *c = CHAIN(st);
    void (*handler)(struct client_stream *, int) = c->handler_on_event;
    if (!timed_out) {
        for (struct resp_filter *f = c->head; f; f = f->next)
            if (f->type->resume(f) == SY_ERR)
                return;
    }
    if (handler)
        handler(st, timed_out);
}

static void chain_wrap_on_event(struct client_stream *st)
{
    struct filter_chain *c = CHAIN(st);
    if (!c->head || c->wrapped)
        return;
    c->handler_on_event = st->on_event;
    c->wrapped = 1;
    st->on_event = chain_on_event;
}

/* ------------------------------------------------------------ streamed responses */

static int f_send_head(struct client_stream *st, int64_t length)
{
    struct filter_chain *c = CHAIN(st);
    chain_reset(st);
    struct resp_filter_head h = {length, header_only(&st->req), head_request(&st->req), 1};
    if (h.head_request)
        h.length = declared_length(st);
    chain_open(st, &h);
    int rc = c->proto->send_head(st, h.length);
    if (rc == SY_OK)
        chain_wrap_on_event(st);
    return rc;
}

static ssize_t f_write(struct client_stream *st, const struct iovec *iov, int n, int last)
{
    struct filter_chain *c = CHAIN(st);
    if (c->head)
        return c->head->type->write(c->head, iov, n, last);
    return c->proto->write(st, iov, n, last);
}

static int f_write_done(struct client_stream *st)
{
    struct filter_chain *c = CHAIN(st);
    if (c->head)
        return c->head->type->write_done(c->head);
    return c->proto->write_done(st);
}

/* ------------------------------------------------------------ local responses */

/* Read the next piece of the file into c->in. SY_OK or SY_ERR (logged). */
static int local_read(struct filter_chain *c)
{
    return buf_read_file(&c->in, c->fd, &c->file_off, &c->file_left);
}

/* Push the local body through the filters until it is all written or the
 * client is full. */
static void local_run(struct client_stream *st)
{
    struct filter_chain *c = CHAIN(st);
    struct resp_filter *f = c->head;
    /* Until the body is written or the client is full (which a socket or
     * an HTTP/2 stream buffer soon is). */
    for (;;) {
        if (f->type->write_done(f)) {
            st->on_event = NULL;
            st->on_abort = NULL;
            c->proto->finish(st);
            return;
        }
        struct iovec iov = {NULL, 0};
        int last;
        if (c->fd >= 0) {
            if ((!c->in || buf_len(c->in) == 0) && c->file_left > 0 && local_read(c) < 0) {
                c->proto->abort(st, "file read error");
                return;
            }
            if (c->in && buf_len(c->in)) {
                iov.iov_base = buf_head(c->in);
                iov.iov_len = buf_len(c->in);
            }
            last = c->file_left == 0;
        } else {
            iov.iov_base = (void *)(c->mem + c->mem_off);
            iov.iov_len = c->mem_len - c->mem_off;
            last = 1;
        }
        ssize_t w = f->type->write(f, &iov, iov.iov_len ? 1 : 0, last);
        if (w == SY_AGAIN) {
            c->proto->set_timeout(st, st->req.lc ? st->req.lc->send_timeout : 60000);
            return;
        }
        if (w < 0)
            return; /* the stream ended */
        if (c->fd >= 0 && c->in)
            buf_consume(c->in, (size_t)w);
        else
            c->mem_off += (size_t)w;
    }
}

static void local_on_event(struct client_stream *st, int timed_out)
{
    struct filter_chain *c = CHAIN(st);
    if (timed_out) {
        char ctx[1500];
        stream_log_ctx(st, ctx, sizeof(ctx));
        sy_log(LOG_LVL_INFO, "*%llu client timed out (110: Connection timed out) while sending "
               "response to client%s", stream_conn_id(st), ctx);
        c->proto->abort(st, "client timeout");
        return;
    }
    c->proto->stop_timeout(st);
    local_run(st);
}

/* A local response: filtered when a filter takes its body, else the
 * protocol's own send (sendfile included). */
static void local_send(struct client_stream *st, const char *body, size_t len, int fd, off_t off,
                       off_t flen)
{
    struct filter_chain *c = CHAIN(st);
    chain_reset(st);
    struct resp_filter_head h = {fd >= 0 ? (int64_t)flen : (int64_t)len, header_only(&st->req),
                                 head_request(&st->req), 0};
    if (h.head_request)
        h.length = declared_length(st);
    chain_open(st, &h);
    if (!c->head) {
        if (fd >= 0)
            c->proto->send_file(st, fd, off, flen);
        else
            c->proto->send_memory(st, body, len);
        return;
    }
    c->mem = body;
    c->mem_len = len;
    c->mem_off = 0;
    c->fd = fd;
    c->file_off = off;
    c->file_left = fd >= 0 ? flen : 0;
    st->on_event = local_on_event;
    st->on_abort = NULL; /* the chain's release (the request's end) closes the file */
    if (c->proto->send_head(st, h.length) < 0)
        return;
    local_run(st);
}

static void f_send_memory(struct client_stream *st, const char *body, size_t len)
{
    local_send(st, body, len, -1, 0, 0);
}

static void f_send_file(struct client_stream *st, int fd, off_t off, off_t len)
{
    local_send(st, NULL, 0, fd, off, len);
}

/* ------------------------------------------------------------ forwarded */

#define PROTO(st) (CHAIN(st)->proto)

static enum stream_body f_body_peek(struct client_stream *st, struct str *out)
{
    return PROTO(st)->body_peek(st, out);
}

static void f_body_consume(struct client_stream *st, size_t n)
{
    PROTO(st)->body_consume(st, n);
}

static size_t f_body_buffered(struct client_stream *st, const char **p)
{
    return PROTO(st)->body_buffered(st, p);
}

static size_t f_request_trailers(struct client_stream *st, const struct h1_header **out)
{
    if (!PROTO(st)->request_trailers)
        return 0;
    return PROTO(st)->request_trailers(st, out);
}

static int f_send_trailers(struct client_stream *st, const struct h1_header *t, size_t n)
{
    /* Trailers describe the body as the upstream sent it (a checksum, a
     * length): they do not go with a body a filter changed. */
    if (CHAIN(st)->head || !PROTO(st)->send_trailers)
        return 0;
    return PROTO(st)->send_trailers(st, t, n);
}

static void f_send_continue(struct client_stream *st)
{
    PROTO(st)->send_continue(st);
}

static void f_set_timeout(struct client_stream *st, uint64_t ms)
{
    PROTO(st)->set_timeout(st, ms);
}

static void f_stop_timeout(struct client_stream *st)
{
    PROTO(st)->stop_timeout(st);
}

static int f_client_gone(struct client_stream *st)
{
    return PROTO(st)->client_gone(st);
}

static void f_finish(struct client_stream *st)
{
    PROTO(st)->finish(st);
}

static void f_abort(struct client_stream *st, const char *reason)
{
    PROTO(st)->abort(st, reason);
}

static void f_hold(struct client_stream *st, uint64_t ms)
{
    PROTO(st)->hold(st, ms);
}

static int f_upgrade_head(struct client_stream *st, char **prefix, size_t *prefix_len)
{
    return PROTO(st)->upgrade_head(st, prefix, prefix_len);
}

/* A tunnel takes the stream: the chain steps aside first (the request's
 * memory goes with the call). */
static struct tunnel_end *f_take_tunnel_side(struct client_stream *st, struct conn *sock,
                                             struct buf **leftover)
{
    const struct stream_ops *proto = PROTO(st);
    http_filters_release(st);
    return proto->take_tunnel_side(st, sock, leftover);
}

static const struct stream_ops filter_ops = {
    .body_peek = f_body_peek,
    .body_consume = f_body_consume,
    .body_buffered = f_body_buffered,
    .request_trailers = f_request_trailers,
    .send_trailers = f_send_trailers,
    .send_continue = f_send_continue,
    .send_head = f_send_head,
    .write = f_write,
    .write_done = f_write_done,
    .send_memory = f_send_memory,
    .send_file = f_send_file,
    .set_timeout = f_set_timeout,
    .stop_timeout = f_stop_timeout,
    .client_gone = f_client_gone,
    .finish = f_finish,
    .abort = f_abort,
    .hold = f_hold,
    .upgrade_head = f_upgrade_head,
    .take_tunnel_side = f_take_tunnel_side,
};
