/*
 * phases.h - the protocol-neutral request phases: what happens to a request
 * once a protocol session has read its head, whatever the protocol.
 *
 *   http_request_run: server-level checks, realip, server rewrite
 *     -> location search (rewrite ... last, internal redirects)
 *     -> realip, limit_req (may hold the stream), limit_conn
 *     -> handler: proxy (http_proxy_handler) | static files | return
 *   errors anywhere: http_respond_status (error_page, standard pages)
 *   the end: http_request_done (complete) / http_request_release (any end)
 */
#ifndef SY_HTTP_PHASES_H
#define SY_HTTP_PHASES_H

#include "http/stream.h"

/*
 * The handler of proxy_pass locations. The proxy layer sits above this one,
 * so it installs itself here at start-up (the callback keeps the
 * dependency one-way). Must be set before requests run.
 */
extern void (*http_proxy_handler)(struct client_stream *st);

/*
 * Run a request whose head the protocol has read and checked: r->method,
 * r->uri/args/request_uri (http_set_path), r->host (http_valid_host),
 * r->headers, r->info, r->listen, r->srv chosen by the caller or NULL.
 * May end the stream.
 */
void http_request_run(struct client_stream *st);

/* Continue with the handler after ops->hold() (limit_req delay). */
void http_phase_resume(struct client_stream *st);

/* The access phase ended later (auth_request's sub-request, http/access.c):
 * 0 goes on to the content handler, a status answers with it. */
void http_phase_access_done(struct client_stream *st, int status);

/* Run a sub-request (http/subrequest.c) from the server's rewrite phase on:
 * r->srv, r->lc, r->uri and the rest set by the caller. May end the stream. */
void http_request_run_internal(struct client_stream *st);

/*
 * Answer the current request with `status` locally: applies error_page
 * (internal redirect, named location or redirect) or sends the standard page.
 * Only valid before any response byte was sent (else the stream is aborted).
 * May end the stream.
 */
void http_respond_status(struct client_stream *st, int status);

/*
 * X-Accel-Redirect: continue the request at `target` (a URI with optional
 * "?args", which replace the request's, or "@name"), as GET unless HEAD,
 * as nginx does after an upstream answered with the header. An unsafe URI
 * ("..", not starting with "/") is a 404.
 */
void http_accel_redirect(struct client_stream *st, struct str target);

/*
 * Make a redirect target starting with '/' absolute as nginx does
 * ("http://host[:port]/x"); other values are returned unchanged. The result
 * lives in the request arena.
 */
struct str http_absolute_location(struct client_stream *st, struct str loc);

/* $host from a Host value (or :authority): lower-cased, port and one trailing
 * dot removed; -1 for what nginx rejects ("invalid host"). Arena copy. */
int http_valid_host(struct request *r, struct str in, struct str *out);

/* Set $request_uri, $args and the normalised $uri from a request target's
 * path ("/p?a#f"). 0; -1 invalid (answer 400); -2 out of memory. */
int http_set_path(struct client_stream *st, struct str path);

/* The response was sent in full: $request_completion, the access log line. */
void http_request_done(struct client_stream *st);

/* Write the request's access log line unless written (exactly once per request
 * whose head was accepted; a tunnel writes its own). */
void http_request_log(struct client_stream *st);

/* The one end of every request: log it if not yet, give back its limit_conn
 * counts, arena and generation reference. Idempotent. */
void http_request_release(struct client_stream *st);

#endif
