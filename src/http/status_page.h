/*
 * status_page.h - the live status page (`status_page;`, docs/status-page.md):
 * an HTML page (src/http/status_page.html, embedded at build time) and the
 * JSON it polls (`?format=json`), made from the shared tables of
 * core/live.h: upstream peers, open tunnels of every worker, recent refused
 * upgrades and reloads.
 *
 * The hooks the proxy calls to fill those tables from a request are here
 * too, so each hook is one line at its call site.
 */
#ifndef SY_HTTP_STATUS_PAGE_H
#define SY_HTTP_STATUS_PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "http/stream.h"

/* The embedded page (generated from status_page.html by the Makefile). */
extern const unsigned char status_page_html[];
extern const size_t status_page_html_len;

/*
 * Answer the request with the page or its JSON: 0 with *body, *len set
 * (request arena) and the head prepared, 405 for a method other than
 * GET/HEAD, -1 when out of memory.
 */
int status_page_prepare(struct client_stream *s, const char **body, size_t *len);

/*
 * A tunnel for this request's upgrade is about to start towards `peer` of
 * `group`: list it (core/live.h). Returns the slot for live_tunnel_bytes()
 * and live_tunnel_close(), or -1 (not listed, still counted).
 */
int status_tunnel_open(struct client_stream *s, const char *group, const char *peer);

/*
 * This request asked for a protocol switch (HTTP/1.1 Upgrade or HTTP/2
 * extended CONNECT) that will not happen: record it with the status the
 * client gets and why; `err` (an errno, 0 none) is added to the reason as
 * the error log does ("connect() failed (111: Connection refused) while
 * ..."). Does nothing for a request that is no upgrade, so callers may call
 * it on any failure path. `group` and `peer` may be NULL.
 */
void status_upgrade_refused(struct client_stream *s, const char *group, const char *peer,
                            int status, const char *reason, int err);

#endif
