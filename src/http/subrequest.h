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
 * body read and thrown away; it writes no access-log line (nginx's
 * log_subrequest off).
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

/* End a child whose parent is going away: its handler (the proxy) is
 * stopped, everything it holds given back, `done` not called. */
void subrequest_cancel(struct client_stream *child);

/* Is `s` a sub-request? */
int subrequest_is(const struct client_stream *s);

#endif
