/*
 * auth_request.h - nginx's ngx_http_auth_request_module: the access phase
 * asks another location (usually a proxy_pass to an authentication service,
 * as oauth2-proxy and Authelia document) through a sub-request
 * (subrequest.h). Its answer decides: 2xx allows, 401 (with the service's
 * WWW-Authenticate headers) and 403 pass through, anything else is a 500
 * ("auth request unexpected status: N"). auth_request_set copies values of
 * the sub-request ($upstream_http_*, $sent_http_*, ...) into variables of
 * the request once it ended.
 */
#ifndef SY_HTTP_AUTH_REQUEST_H
#define SY_HTTP_AUTH_REQUEST_H

#include "conf/access.h"
#include "http/stream.h"

/*
 * The handler: ACCESS_DECLINED when auth_request is off here; ACCESS_WAIT
 * when the sub-request was started (the phase goes on with
 * http_access_resume() when it ends; `code` is what `satisfy any`
 * remembered so far, kept for then); 500 when it could not start.
 */
int auth_request_start(struct client_stream *s, const struct access_conf *ac, int code);

/* The `code` given to auth_request_start, for http_access_resume(). */
int auth_request_saved_code(const struct client_stream *s);

#endif
