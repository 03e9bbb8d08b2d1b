/*
 * subrequest.c - sub-requests (see subrequest.h): the stream operations of
 * a child request, whose "client" is its parent request in the same worker.
 *
 * What the handler sends is captured instead of written: send_head and
 * send_memory keep the status (r->status) and headers (r->resp); body bytes
 * are counted and dropped -- or, with a sink (subrequest_start_body), handed
 * to the parent as they come: a streamed body write by write, a local
 * answer (memory, or a file read one buffer at a time) by the driver below,
 * which waits for subrequest_resume() when the sink is full.
 * finish/abort/local answers mark the child done and post the parent's
 * callback.
 */
#include "http/subrequest.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <errno.h>

#include "conf/runtime.h"
#include "core/log.h"
#include "core/loop.h"
#include "http/filter.h"
#include "http/phases.h"

#include "core/container.h"

struct subrequest {
    struct client_stream st;    /* first: the child stream */
    struct client_stream *parent;
    subrequest_done_fn *done;
    struct posted post;         /* runs `done` once the child ended */
    struct timer timer;         /* limit_req delay inside the child */
    int head_seen;              /* a response head was given */
    int body_done;              /* the whole response body was taken */
    int ended;                  /* finished, answered or aborted */

    /* the body to the parent (has_sink) */
    int has_sink;
    struct subrequest_sink sink;
    int local;                  /* a local answer is being driven to the sink */
    const char *mem;            /* its memory body */
    size_t mem_len, mem_off;
    int fd;                     /* its file body (-1 none), owned */
    off_t file_off, file_left;
    struct buf *in;             /* file bytes read, not yet taken by the sink */

    /* a background request (subrequest_start_background): no parent after
     * the start; the connection is a copy without a socket */
    int detached;
    struct client_stream *waiter; /* the request waiting for this one to end, or NULL */
    struct client_conn conn;
    struct subrequest *bg_prev, *bg_next;
};

static struct subrequest *bg_list; /* the background requests running */
static unsigned bg_count;

static const struct stream_ops sub_ops;

#define SUB(st) ((struct subrequest *)(void *)(st))

int subrequest_is(const struct client_stream *s)
{
    return http_filters_proto(s) == &sub_ops; /* a filter chain may be in front */
}

/* The child's request is over, one way or another: `done` runs next. */
static void sub_end(struct subrequest *sr)
{
    if (sr->ended)
        return;
    sr->ended = 1;
    sr->st.on_event = NULL;
    sr->st.on_abort = NULL;
    timer_cancel(&sr->timer);
    if (!sr->head_seen && sr->st.req.status < 200)
        sr->st.req.status = 500;
    loop_post(&sr->post);
}

/* The local answer's file and buffer back. */
static void sub_local_release(struct subrequest *sr)
{
    if (sr->fd >= 0)
        close(sr->fd);
    sr->fd = -1;
    buf_put(sr->in);
    sr->in = NULL;
    sr->local = 0;
}

static void sub_free(struct subrequest *sr)
{
    if (sr->detached) {
        if (sr->bg_prev)
            sr->bg_prev->bg_next = sr->bg_next;
        else
            bg_list = sr->bg_next;
        if (sr->bg_next)
            sr->bg_next->bg_prev = sr->bg_prev;
        bg_count--;
    }
    sub_local_release(sr);
    loop_unpost(&sr->post);
    timer_cancel(&sr->timer);
    http_request_release(&sr->st);
    free(sr);
}

/* Posted by sub_end: the parent's callback, then the child is freed. */
static void sub_on_post(struct posted *p)
{
    struct subrequest *sr = container_of(p, struct subrequest, post);
    if (sr->detached) {
        struct client_stream *w = sr->waiter;
        sub_free(sr);
        if (w && --w->bg_wait == 0)
            http_filters_proto(w)->background_done(w);
        return;
    }
    /* nginx keeps these in the main request: once a sub-request went through
     * limit_req / limit_conn, later ones (and the request) pass */
    struct request *pr = &sr->parent->req, *c = &sr->st.req;
    if (!pr->limit_req_status)
        pr->limit_req_status = c->limit_req_status;
    if (!pr->limit_conn_status)
        pr->limit_conn_status = c->limit_conn_status;
    sr->done(sr->parent, &sr->st, sr->st.req.status);
    sub_free(sr);
}

static void sub_on_timer(struct timer *t)
{
    struct subrequest *sr = container_of(t, struct subrequest, timer);
    if (!sr->ended)
        http_phase_resume(&sr->st);
}

/* ---- the operations ---- */

static enum stream_body sub_body_peek(struct client_stream *st, struct str *out)
{
    (void)out;
    st->req.body_done = 1;
    return STREAM_BODY_DONE;
}

static void sub_body_consume(struct client_stream *st, size_t n)
{
    (void)st;
    (void)n;
}

static size_t sub_body_buffered(struct client_stream *st, const char **p)
{
    (void)st;
    (void)p;
    return 0;
}

static void sub_send_continue(struct client_stream *st)
{
    (void)st;
}

static int sub_send_head(struct client_stream *st, int64_t length)
{
    (void)length;
    SUB(st)->head_seen = 1;
    st->req.head_sent = 1;
    return SY_OK;
}

static ssize_t sub_write(struct client_stream *st, const struct iovec *iov, int n, int last)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    struct subrequest *sr = SUB(st);
    if (sr->has_sink) {
        ssize_t w = sr->sink.write(sr->sink.ctx, st, iov, n, last);
        if (w < 0)
            return w; /* SY_ERR: the child may be gone already */
        st->req.body_bytes_sent += (size_t)w;
        if (last && (size_t)w == total)
            sr->body_done = 1;
        return w;
    }
    st->req.body_bytes_sent += total;
    if (last)
        SUB(st)->body_done = 1;
    return (ssize_t)total;
}

static int sub_write_done(struct client_stream *st)
{
    return SUB(st)->body_done;
}

/* Read the next piece of the local answer's file. SY_OK or SY_ERR (logged). */
static int sub_local_read(struct subrequest *sr)
{
    return buf_read_file(&sr->in, sr->fd, &sr->file_off, &sr->file_left);
}

/* Hand the local answer to the sink until it is all taken or the sink is
 * full (subrequest_resume() comes back here). */
static void sub_local_run(struct subrequest *sr)
{
    for (;;) {
        struct iovec iov = {NULL, 0};
        int last;
        if (sr->fd >= 0) {
            if ((!sr->in || buf_len(sr->in) == 0) && sr->file_left > 0 &&
                sub_local_read(sr) < 0) {
                sub_local_release(sr);
                sub_end(sr);
                return;
            }
            if (sr->in && buf_len(sr->in)) {
                iov.iov_base = buf_head(sr->in);
                iov.iov_len = buf_len(sr->in);
            }
            last = sr->file_left == 0;
        } else {
            iov.iov_base = (void *)(sr->mem + sr->mem_off);
            iov.iov_len = sr->mem_len - sr->mem_off;
            last = 1;
        }
        ssize_t w = sr->sink.write(sr->sink.ctx, &sr->st, &iov, iov.iov_len ? 1 : 0, last);
        if (w == SY_AGAIN)
            return;
        if (w < 0)
            return; /* the parent ended: `sr` may be gone */
        sr->st.req.body_bytes_sent += (size_t)w;
        if (sr->fd >= 0 && sr->in)
            buf_consume(sr->in, (size_t)w);
        else
            sr->mem_off += (size_t)w;
        if (last && (size_t)w == iov.iov_len) {
            sr->body_done = 1;
            sub_local_release(sr);
            sub_end(sr);
            return;
        }
    }
}

static void sub_send_memory(struct client_stream *st, const char *body, size_t len)
{
    struct subrequest *sr = SUB(st);
    if (sr->has_sink) {
        sr->head_seen = 1;
        st->req.head_sent = 1;
        sr->local = 1;
        sr->mem = body;
        sr->mem_len = body ? len : 0;
        sr->mem_off = 0;
        sub_local_run(sr);
        return;
    }
    st->req.body_bytes_sent += len;
    SUB(st)->head_seen = 1;
    st->req.head_sent = 1;
    sub_end(SUB(st));
}

static void sub_send_file(struct client_stream *st, int fd, off_t off, off_t len)
{
    struct subrequest *sr = SUB(st);
    if (sr->has_sink && fd >= 0) {
        sr->head_seen = 1;
        st->req.head_sent = 1;
        sr->local = 1;
        sr->fd = fd;
        sr->file_off = off;
        sr->file_left = len;
        sub_local_run(sr);
        return;
    }
    (void)off;
    (void)len;
    if (fd >= 0)
        close(fd);
    sub_send_memory(st, NULL, 0);
}

static void sub_set_timeout(struct client_stream *st, uint64_t ms)
{
    (void)st;
    (void)ms;
}

static void sub_stop_timeout(struct client_stream *st)
{
    (void)st;
}

static int sub_client_gone(struct client_stream *st)
{
    (void)st;
    return 0;
}

static void sub_finish(struct client_stream *st)
{
    sub_end(SUB(st));
}

static void sub_abort(struct client_stream *st, const char *reason)
{
    (void)reason;
    struct subrequest *sr = SUB(st);
    /* the handler frees what it holds, as a protocol's abort makes it */
    if (st->on_abort) {
        void (*on_abort)(struct client_stream *) = st->on_abort;
        st->on_abort = NULL;
        st->on_event = NULL;
        on_abort(st);
    }
    if (!sr->head_seen)
        st->req.status = 500;
    sub_end(sr);
}

static void sub_hold(struct client_stream *st, uint64_t ms)
{
    timer_set(&SUB(st)->timer, ms);
}

static int sub_upgrade_head(struct client_stream *st, char **prefix, size_t *prefix_len)
{
    (void)prefix;
    (void)prefix_len;
    sub_abort(st, "upgrade in a sub-request");
    return -1;
}

static struct tunnel_end *sub_take_tunnel_side(struct client_stream *st, struct conn *sock,
                                               struct buf **leftover)
{
    (void)st;
    (void)sock;
    *leftover = NULL;
    return NULL;
}

static const struct stream_ops sub_ops = {
    .body_peek = sub_body_peek,
    .body_consume = sub_body_consume,
    .body_buffered = sub_body_buffered,
    .send_continue = sub_send_continue,
    .send_head = sub_send_head,
    .write = sub_write,
    .write_done = sub_write_done,
    .send_memory = sub_send_memory,
    .send_file = sub_send_file,
    .set_timeout = sub_set_timeout,
    .stop_timeout = sub_stop_timeout,
    .client_gone = sub_client_gone,
    .finish = sub_finish,
    .abort = sub_abort,
    .hold = sub_hold,
    .upgrade_head = sub_upgrade_head,
    .take_tunnel_side = sub_take_tunnel_side,
};

/* ---- start / cancel ---- */

/* The child's request: what ngx_http_subrequest copies from the parent. */
static int init_child(struct request *c, struct request *p, struct str uri, struct str args)
{
    arena_init(&c->arena, 2048);
    c->rt = rt_ref(p->rt);
    c->listen = p->listen;
    c->srv = p->srv;
    c->lc = p->srv->lc;
    c->method = STR_LIT("GET");
    c->request_uri = p->request_uri;
    c->request_line = p->request_line;
    c->uri = uri;
    c->args = args.len ? args : STR_NULL;
    c->host = p->host;
    c->minor = p->minor;
    c->headers = p->headers;
    c->nheaders = p->nheaders;
    /* no body, no upgrade: the framing of the parent's request is not the child's */
    c->info = p->info;
    c->info.flags &= ~(H1_F_CONN_UPGRADE | H1_F_HAS_UPGRADE | H1_F_CHUNKED | H1_F_HAS_CL |
                       H1_F_HAS_TE | H1_F_EXPECT_CONTINUE);
    c->info.content_length = 0;
    c->body_done = 1;
    c->keepalive = 1;
    c->uri_changed = 1;         /* internal: `internal` locations serve it */
    c->logged = 1;              /* log_subrequest off */
    c->realip = p->realip;
    c->realip_set = p->realip_set;
    c->limit_req_status = p->limit_req_status;
    c->limit_conn_status = p->limit_conn_status;
    c->start_wall_ms = loop_wall_ms();
    c->start_ms = loop_now();
    /* nginx shares the variables: `set` values and auth_request_set results */
    if (!p->set_vals) {
        unsigned n = p->rt->gen->vars.nset_slots;
        p->set_vals = arena_calloc(&p->arena, (n ? n : 1) * sizeof(struct str));
        if (!p->set_vals)
            return -1;
    }
    c->set_vals = p->set_vals;
    return 0;
}

static struct client_stream *start(struct client_stream *parent, struct str uri, struct str args,
                                   subrequest_done_fn *done, const struct subrequest_sink *sink)
{
    struct subrequest *sr = calloc(1, sizeof(*sr));
    if (!sr)
        return NULL;
    sr->fd = -1;
    if (sink) {
        sr->has_sink = 1;
        sr->sink = *sink;
    }
    sr->parent = parent;
    sr->done = done;
    sr->post.cb = sub_on_post;
    sr->timer.cb = sub_on_timer;
    sr->st.ops = &sub_ops;
    sr->st.conn = parent->conn;
    sr->st.req_active = 1;
    if (init_child(&sr->st.req, &parent->req, uri, args) < 0) {
        sub_free(sr);
        return NULL;
    }
    http_request_run_internal(&sr->st);
    return &sr->st;
}

struct client_stream *subrequest_start(struct client_stream *parent, struct str uri,
                                       subrequest_done_fn *done)
{
    return start(parent, uri, STR_NULL, done, NULL);
}

struct client_stream *subrequest_start_body(struct client_stream *parent, struct str uri,
                                            struct str args, subrequest_done_fn *done,
                                            const struct subrequest_sink *sink)
{
    return start(parent, uri, args, done, sink);
}

void subrequest_resume(struct client_stream *child)
{
    struct subrequest *sr = SUB(child);
    if (sr->ended)
        return;
    if (sr->local) {
        sub_local_run(sr);
        return;
    }
    if (child->on_event)
        child->on_event(child, 0);
}

struct client_stream *subrequest_parent(const struct client_stream *child)
{
    return ((const struct subrequest *)(const void *)child)->parent;
}

void subrequest_cancel(struct client_stream *child)
{
    struct subrequest *sr = SUB(child);
    if (!sr->ended && child->on_abort) {
        void (*on_abort)(struct client_stream *) = child->on_abort;
        child->on_abort = NULL;
        child->on_event = NULL;
        on_abort(child);
    }
    sub_free(sr);
}

/* ---- background requests ---- */

static struct str dup_str(struct arena *a, struct str v, int *fail)
{
    if (!v.p)
        return v;
    struct str out = arena_str(a, v);
    if (!out.p)
        *fail = 1;
    return out;
}

/* The parent's request as the clone needs it, copied: the parent may end
 * (and free its arena) first. */
static int clone_request(struct request *c, const struct request *p)
{
    int fail = 0;
    struct arena *a = &c->arena;
    arena_init(a, 4096);
    c->rt = rt_ref(p->rt);
    c->listen = p->listen;
    c->srv = p->srv;
    c->loc = p->loc;
    c->lc = p->lc;
    c->method = STR_LIT("GET"); /* the whole response is what is stored */
    c->request_uri = dup_str(a, p->request_uri, &fail);
    c->request_line = dup_str(a, p->request_line, &fail);
    c->uri = dup_str(a, p->uri, &fail);
    c->args = dup_str(a, p->args, &fail);
    c->host = dup_str(a, p->host, &fail);
    c->minor = p->minor;
    c->nheaders = p->nheaders;
    c->headers = arena_alloc(a, (p->nheaders ? p->nheaders : 1) * sizeof(*c->headers));
    if (!c->headers)
        return -1;
    for (size_t i = 0; i < p->nheaders; i++) {
        c->headers[i].name = dup_str(a, p->headers[i].name, &fail);
        c->headers[i].value = dup_str(a, p->headers[i].value, &fail);
        c->headers[i].id = p->headers[i].id;
    }
    c->info = p->info;
    c->info.flags &= ~(H1_F_CONN_UPGRADE | H1_F_HAS_UPGRADE | H1_F_CHUNKED | H1_F_HAS_CL |
                       H1_F_HAS_TE | H1_F_EXPECT_CONTINUE);
    c->info.content_length = 0;
    /* regex captures ($1 in proxy_pass): their subject copied too */
    c->caps = p->caps;
    if (p->caps.n && p->caps.subject) {
        size_t end = 0;
        for (int i = 0; i < 2 * p->caps.n; i++)
            if (p->caps.ov[i] != (size_t)-1 && p->caps.ov[i] > end)
                end = p->caps.ov[i];
        char *subj = arena_strndup(a, p->caps.subject, end);
        if (!subj)
            return -1;
        c->caps.subject = subj;
    }
    unsigned nset = p->rt->gen->vars.nset_slots;
    if (p->set_vals && nset) {
        c->set_vals = arena_calloc(a, nset * sizeof(struct str));
        if (!c->set_vals)
            return -1;
        for (unsigned i = 0; i < nset; i++)
            c->set_vals[i] = dup_str(a, p->set_vals[i], &fail);
    }
    c->body_done = 1;
    c->keepalive = 1;
    c->uri_changed = p->uri_changed;
    c->logged = 1;
    c->realip = p->realip;
    c->realip_set = p->realip_set;
    c->limit_req_status = p->limit_req_status;
    c->limit_conn_status = p->limit_conn_status;
    c->cache_background = 1;
    c->start_wall_ms = loop_wall_ms();
    c->start_ms = loop_now();
    return fail ? -1 : 0;
}

struct client_stream *subrequest_start_background(struct client_stream *parent,
                                                  void (*handler)(struct client_stream *))
{
    struct subrequest *sr = calloc(1, sizeof(*sr));
    if (!sr)
        return NULL;
    sr->fd = -1;
    sr->detached = 1;
    sr->post.cb = sub_on_post;
    sr->timer.cb = sub_on_timer;
    /* the connection as variables see it ($remote_addr, $scheme, $server_addr),
     * without its socket or TLS state ($ssl_* are empty) */
    client_conn_local(parent->conn);
    sr->conn = *parent->conn;
    sr->conn.c.h.fd = -1;
    sr->conn.c.xprt_ctx = NULL;
    sr->conn.c.flags = 0;
    sr->conn.lst = NULL;
    sr->st.ops = &sub_ops;
    sr->st.conn = &sr->conn;
    sr->st.req_active = 1;
    sr->bg_next = bg_list;
    if (bg_list)
        bg_list->bg_prev = sr;
    bg_list = sr;
    bg_count++;
    if (clone_request(&sr->st.req, &parent->req) < 0) {
        sub_free(sr);
        return NULL;
    }
    if (http_filters_proto(parent)->background_done) {
        sr->waiter = parent; /* it ends after this one, as nginx's main request */
        parent->bg_wait++;
    }
    handler(&sr->st);
    return &sr->st;
}

void subrequest_background_forget(struct client_stream *waiter)
{
    for (struct subrequest *sr = bg_list; sr && waiter->bg_wait; sr = sr->bg_next)
        if (sr->waiter == waiter) {
            sr->waiter = NULL;
            waiter->bg_wait--;
        }
    waiter->bg_wait = 0;
}

unsigned subrequest_background_count(void)
{
    return bg_count;
}

void subrequest_background_cancel_all(void)
{
    while (bg_list)
        subrequest_cancel(&bg_list->st);
}
