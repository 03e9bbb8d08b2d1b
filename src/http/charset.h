/*
 * charset.h - the response side of nginx's charset module: the charset
 * parameter of Content-Type (see src/conf/charset.h for the directives).
 * Called by resp_finalize() after add_header, as nginx's charset filter runs
 * after its headers filter.
 */
#ifndef SY_HTTP_CHARSET_H
#define SY_HTTP_CHARSET_H

#include "http/stream.h"

/*
 * Give the response's Content-Type the charset the location asks for
 * (loc_conf.charset), as nginx's ngx_http_charset_header_filter decides:
 *   - a Content-Type without a charset whose type is in charset_types gets
 *     "; charset=NAME" (`charset NAME`, or the value of `charset $var`);
 *   - one with a charset keeps it, unless override_charset is on: then the
 *     same charset is rewritten as "TYPE; charset=NAME", and a different one
 *     would need recoding, which Switchyard does not do (nginx's "no
 *     charset_map" error is logged, or Switchyard's "recoding ... is not
 *     supported" when a map exists) and the header is left as it was;
 *   - 301 and 302 responses never get a charset (nginx's rule).
 * 0, or -1 (out of memory).
 */
int charset_apply(struct client_stream *s);

/*
 * The charset charset_apply() would give a 200 response of the bare type
 * `type` ("text/html") in this location, or an empty slice (charset off,
 * type not listed, or a recoding it would refuse). For handlers that shape
 * their body by it (autoindex: UTF-8 names counted as characters). 0, or -1
 * (out of memory evaluating a variable).
 */
int charset_of_type(struct client_stream *s, struct str type, struct str *out);

#endif
