/*
 * expires.h - the response side of nginx's `expires` (ngx_http_headers_module,
 * ngx_http_set_expires), called by resp_finalize() for the statuses nginx
 * applies it to (200, 201, 204, 206, 301, 302, 303, 304, 307, 308).
 */
#ifndef SY_HTTP_EXPIRES_H
#define SY_HTTP_EXPIRES_H

#include "http/stream.h"

/*
 * Set Expires and Cache-Control in s->req.resp as the location's `expires`
 * asks (loc_conf.expires, not off): the last Expires already there (an
 * upstream's) gets the new value in place, as does the first Cache-Control,
 * whose other occurrences are removed; missing ones are appended, Expires
 * first. A value with variables that does not parse, or says `off`, changes
 * nothing. 0, or -1 (out of memory).
 */
int expires_apply(struct client_stream *s);

#endif
