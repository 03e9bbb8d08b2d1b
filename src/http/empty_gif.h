/*
 * empty_gif.h - nginx's ngx_http_empty_gif_module: a location with
 * `empty_gif;` answers with a 1x1 transparent GIF (43 bytes).
 */
#ifndef SY_HTTP_EMPTY_GIF_H
#define SY_HTTP_EMPTY_GIF_H

#include <stddef.h>

#include "http/stream.h"

/* The GIF's bytes and length (nginx's ngx_empty_gif, byte for byte). */
extern const unsigned char empty_gif_bytes[];
extern const size_t empty_gif_len;

/*
 * Prepare the response on `s` as nginx does: 405 for a method other than
 * GET or HEAD (the caller sends the error page); else status 200 (304 when
 * If-Modified-Since is the GIF's Last-Modified, or later with
 * `if_modified_since before`; never with `off`) with Content-Type image/gif and Last-Modified
 * "Mon, 28 Sep 1970 06:00:00 GMT" added to the response headers. Returns
 * the status; -1 on allocation failure.
 */
int empty_gif_prepare(struct client_stream *s);

#endif
