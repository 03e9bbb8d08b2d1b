/*
 * access.h - nginx's access phase (after rewrite and the preaccess limits,
 * before the content handler): the limit_except choice, then allow/deny
 * (ngx_http_access_module), auth_basic, auth_request, combined by
 * `satisfy` as ngx_http_core_access_phase does. Configuration: conf/access.h.
 *
 * The handlers return ACCESS_DECLINED (not configured here), ACCESS_OK,
 * ACCESS_WAIT (auth_request's sub-request runs) or an HTTP status (401,
 * 403, 500).
 */
#ifndef SY_HTTP_ACCESS_H
#define SY_HTTP_ACCESS_H

#include "conf/access.h"
#include "http/stream.h"

#define ACCESS_OK 0
#define ACCESS_DECLINED (-1)
#define ACCESS_WAIT (-2)

/*
 * The conf a request uses in location `lc` (nginx's
 * ngx_http_update_location_config): the location's limit_except block when
 * the request's method is not one it lists, else `lc`. The block's conf is
 * the location's, merged, with the block's directives on top -- and no
 * rewrite directives, as in nginx. phases.c calls it whenever a location is
 * chosen.
 */
const struct loc_conf *http_limit_except(const struct request *r, const struct loc_conf *lc);

/*
 * Run the access phase for the request's current location. 0: go on to the
 * content handler; ACCESS_WAIT: a sub-request runs, and the phase ends later
 * with http_phase_access_done() (phases.h) unless the stream ends first; a
 * status (401, 403, 500, ...): answer with it (WWW-Authenticate is already
 * in the response headers). Sub-requests skip the phase, as in nginx.
 */
int http_access_phase(struct client_stream *s);

/* auth_delay: the delay (ms) before a 401 of the access phase is sent, 0
 * none; logs nginx's "delaying unauthorized request" when there is one. */
uint64_t http_access_delay(struct client_stream *s);

/* auth_request's result (the handler's return value, see above), once its
 * sub-request ended: the phase goes on from there (auth_request.c). */
void http_access_resume(struct client_stream *s, int rc);

/* auth_basic (auth_basic.c): the handler. */
int auth_basic_check(struct client_stream *s, const struct access_conf *ac);

/* Add `WWW-Authenticate: Basic realm="<realm>"`; returns 401 (500 out of memory). */
int auth_basic_challenge(struct client_stream *s, struct str realm);

#endif
