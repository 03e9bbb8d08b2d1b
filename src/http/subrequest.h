/*
 * subrequest.h - a request made inside another one (nginx's
 * ngx_http_subrequest, as auth_request uses it): a third implementation of
 * the client-stream operations (stream.h), next to HTTP/1 and HTTP/2.
 *
 * The child is a GET for a URI of the parent's server, with the parent's
 * request line, headers, $request_uri and `set` variables, and no body. It
 * runs the phases from the server's rewrite on (it is internal: `internal`
 * locations serve it; the access phase is skipped, as nginx skips it for
 * sub-requests), typically into a proxy_pass location. Its response head is
 * kept (status, r->resp, the upstream's headers for $upstream_http_*), its
 * body read and thrown away (auth_request) or handed to a sink as it comes
 * (SSI's include: subrequest_start_body); it writes no access-log line
 * (nginx's log_subrequest off). nginx's not_modified and range filters
 * leave sub-requests alone: a static file is always whole (phases.c).
 *
 * Ownership: the parent's handler owns the child. When the child ends, its
 * `done` callback runs from a posted event (never inside the caller's stack),
 * with the child still readable; the child is freed when `done` returns. A
 * parent that ends first calls subrequest_cancel(), and `done` never runs.
 */
#ifndef SY_HTTP_SUBREQUEST_H
#define SY_HTTP_SUBREQUEST_H

#include "http/stream.h"

/* `status`: the child's response status (500 when it failed before any). */
typedef void subrequest_done_fn(struct client_stream *parent, struct client_stream *child,
                                int status);

/* Start a sub-request of `parent` for `uri` (used as is, as nginx). The
 * child, or NULL (out of memory: nothing was started). */
struct client_stream *subrequest_start(struct client_stream *parent, struct str uri,
                                       subrequest_done_fn *done);

/*
 * Where a child's response body goes when the parent wants it (SSI's
 * `include virtual`): write() has the contract of stream_ops.write -- the
 * count of bytes taken, SY_AGAIN when the sink is full (the parent then
 * calls subrequest_resume() when it has room), SY_ERR when the parent's
 * stream ended (the child was cancelled with it: touch nothing after). The
 * body flows through; nothing holds it whole. A file or memory body of a
 * local answer is read one buffer at a time.
 */
struct subrequest_sink {
    ssize_t (*write)(void *ctx, struct client_stream *child, const struct iovec *iov, int n,
                     int last);
    void *ctx;
};

/* As subrequest_start(), for `uri` with the query `args` (may be empty),
 * the body going to `sink` (copied). */
struct client_stream *subrequest_start_body(struct client_stream *parent, struct str uri,
                                            struct str args, subrequest_done_fn *done,
                                            const struct subrequest_sink *sink);

/* The sink has room again: the child goes on writing its body. */
void subrequest_resume(struct client_stream *child);

/* The request that started `child` (a sub-request). */
struct client_stream *subrequest_parent(const struct client_stream *child);

/* End a child whose parent is going away: its handler (the proxy) is
 * stopped, everything it holds given back, `done` not called. */
void subrequest_cancel(struct client_stream *child);

/*
 * proxy_cache_background_update: a clone of `parent` (nginx's
 * NGX_HTTP_SUBREQUEST_CLONE | BACKGROUND) in the same location, a GET
 * with the parent's URI, headers and variables, run by `handler` (the
 * proxy) at once. Everything it needs is copied, its connection is a copy
 * without the socket, so it may outlive the parent. Its response is
 * dropped; it ends on its own (freed then). With HTTP/1 (a protocol with
 * background_done) the parent's end waits for it, as nginx's main request
 * waits for its background sub-requests: the client's next request on the
 * connection, or the close, comes once the entry is updated. The child, or
 * NULL (out of memory).
 */
struct client_stream *subrequest_start_background(struct client_stream *parent,
                                                  void (*handler)(struct client_stream *));

/* `waiter` (a request that started background requests: st->bg_wait) is
 * going away: they no longer report to it. */
void subrequest_background_forget(struct client_stream *waiter);

/* Background requests running (a worker shutting down waits for them). */
unsigned subrequest_background_count(void);

/* A worker's exit: every background request stopped and freed. */
void subrequest_background_cancel_all(void);

/* Is `s` a sub-request? */
int subrequest_is(const struct client_stream *s);

#endif
