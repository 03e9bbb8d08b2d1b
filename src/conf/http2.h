/*
 * http2.h - the directives of nginx's ngx_http_v2_module (nginx 1.25.1+
 * syntax, which also reads 1.22's): setters referenced from the directive
 * table in directives.c. Internal to src/conf; the values are loc_conf's
 * http2_* fields and server_conf.http2 (conf.h), read through
 * conf_http2_enabled() for the protocol choice.
 *
 * Every setter gets the level's loc_conf as `conf` (LVL_LOC) and answers in
 * nginx's words: "is duplicate", "invalid value", the module's own limits.
 */
#ifndef SY_CONF_HTTP2_H
#define SY_CONF_HTTP2_H

#include "conf/directives.h"

struct directive;

/* http2_max_concurrent_streams NUMBER (http, server) */
const char *http2_set_max_streams(struct conf_parser *p, const struct directive *d, void *conf);
/* http2_body_preread_size SIZE (http, server): at most 2^31-1 */
const char *http2_set_preread_size(struct conf_parser *p, const struct directive *d, void *conf);
/* http2_chunk_size SIZE (http, server, location): not 0; above 2^24-1 clamped */
const char *http2_set_chunk_size(struct conf_parser *p, const struct directive *d, void *conf);
/* http2_recv_buffer_size SIZE (http): more than 16 */
const char *http2_set_recv_buffer_size(struct conf_parser *p, const struct directive *d,
                                       void *conf);
/* http2_pool_size SIZE (http, server): checked as nginx does, then unused
 * (Switchyard's HTTP/2 session has no per-connection pool to size). */
const char *http2_set_pool_size(struct conf_parser *p, const struct directive *d, void *conf);
/* http2_streams_index_size NUMBER (http, server): a power of two; unused. */
const char *http2_set_streams_index_size(struct conf_parser *p, const struct directive *d,
                                         void *conf);
/*
 * The obsolete directives, accepted with nginx's warning and no effect:
 * http2_idle_timeout, http2_max_requests, http2_recv_timeout,
 * http2_max_field_size, http2_max_header_size ("the \"X\" directive is
 * obsolete, use the \"Y\" directive instead", nginx 1.19.7) and
 * http2_push, http2_push_preload, http2_max_concurrent_pushes ("... is
 * obsolete, ignored", nginx 1.25.1). The argument is not checked (nginx
 * does not either).
 */
const char *http2_set_obsolete(struct conf_parser *p, const struct directive *d, void *conf);

#endif
