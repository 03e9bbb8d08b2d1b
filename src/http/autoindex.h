/*
 * autoindex.h - directory listings (nginx's ngx_http_autoindex_module),
 * byte for byte in nginx's html, json, jsonp and xml formats. The static
 * handler decides that a directory is to be listed (STATIC_AUTOINDEX: the
 * URI ends in '/', no index file, `autoindex on`, GET or HEAD); this builds
 * the page.
 */
#ifndef SY_HTTP_AUTOINDEX_H
#define SY_HTTP_AUTOINDEX_H

#include "http/stream.h"

struct autoindex_page {
    int status;              /* 200, or 400 (bad jsonp callback), 403, 404, 500 */
    struct str content_type; /* 200: "text/html", "application/json",
                                "application/javascript", "text/xml; charset=utf-8" */
    struct str body;         /* 200: the listing (request arena) */
};

/*
 * List directory `dir` (NUL-terminated, no trailing '/') for the request of
 * `s` in its location's autoindex_format: entries not starting with '.',
 * directories first, then by name (bytes); stat(2) through symlinks (a
 * broken one is described by lstat). The html page counts names in UTF-8
 * characters when the charset module gives text/html the charset utf-8, as
 * nginx does. Failures to open the directory are logged as nginx logs them.
 * 0 with `out` filled, or -1 (out of memory).
 */
int autoindex_build(struct client_stream *s, struct str dir, struct autoindex_page *out);

#endif
