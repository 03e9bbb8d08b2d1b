/*
 * byteranges.h - several ranges of one response (RFC 9110 14.6, nginx's
 * ngx_http_range_filter for more than one range): a multipart/byteranges
 * body, for static files and cache hits. A single range is answered by the
 * callers themselves (one 206 with Content-Range).
 *
 * The body is built in memory, part by part from the file, up to
 * BYTERANGES_MEMORY_MAX; past that the ranges are ignored (a 200 with the
 * whole response, which RFC 9110 allows).
 */
#ifndef SY_HTTP_BYTERANGES_H
#define SY_HTTP_BYTERANGES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/arena.h"
#include "core/str.h"

#define BYTERANGES_MAX 64              /* ranges answered; more: the whole response */
#define BYTERANGES_MEMORY_MAX (1 << 20) /* bytes of a multipart body built in memory */

struct byterange {
    uint64_t from, to; /* inclusive */
};

enum byteranges_rc {
    BYTERANGES_IGNORE = 0,        /* answer the whole response (200) */
    BYTERANGES_OK = 1,            /* *n >= 1 satisfiable ranges in out[] */
    BYTERANGES_UNSATISFIABLE = 2, /* 416 */
};

/*
 * Parse "bytes=a-b, c-, -d" over `len` bytes as nginx: unsatisfiable ranges
 * (starting at or past the end) are left out, 416 when none is left or the
 * header is malformed; more than `max` (max_ranges) or BYTERANGES_MAX
 * ranges, or ranges adding up to more than the response, are ignored.
 */
enum byteranges_rc byteranges_parse(struct str v, uint64_t len, struct byterange *out,
                                    unsigned *n, int64_t max);

/*
 * The multipart/byteranges body of ranges[0..n) of the `len` bytes at `base`
 * in `fd`, each part naming `ctype` (may be empty): *body and *blen in `a`,
 * *content_type its header value. 0, or -1 (the file could not be read, the
 * body would be larger than BYTERANGES_MEMORY_MAX, or out of memory: answer
 * the whole response).
 */
int byteranges_multipart(struct arena *a, int fd, off_t base, uint64_t len,
                         const struct byterange *ranges, unsigned n, struct str ctype,
                         char **body, size_t *blen, struct str *content_type);

#endif
