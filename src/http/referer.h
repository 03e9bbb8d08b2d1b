/*
 * referer.h - $invalid_referer (nginx's ngx_http_referer_module) from the
 * location's valid_referers (conf/referer.h).
 */
#ifndef SY_HTTP_REFERER_H
#define SY_HTTP_REFERER_H

#include "conf/conf.h"
#include "conf/referer.h"
#include "core/str.h"

/*
 * 1 when the Referer is not valid for `rc`, as nginx decides: no list (or
 * nothing but none/blocked) is valid; no header is valid with `none`; a value
 * not starting with http:// or https:// (case-insensitive, at least 11
 * bytes) is valid with `blocked`; otherwise the host (lower-cased, up to ':'
 * or '/', at most 256 bytes) must be a listed name -- exact, then `*.x` /
 * `.x`, then `x.*`, and a listed /prefix must start the path -- or one of
 * the server's names with `server_names`, or a `~regex` must match the value
 * after the scheme. `srv` may be NULL; `has` says whether there was a header.
 */
int referer_invalid(const struct referer_conf *rc, const struct server_conf *srv, int has,
                    struct str referer);

#endif
