/*
 * sub_filter.h - nginx's ngx_http_sub_module: strings of a response body
 * replaced as it streams (a response filter, filter.h), case-insensitively,
 * each once (sub_filter_once on) or everywhere, for the content types of
 * sub_filter_types (text/html by default). Bounded memory: a string that
 * may continue in the next piece of the body is held back, at most the
 * longest string's length; output waiting for the client is one buffer.
 */
#ifndef SY_HTTP_SUB_FILTER_H
#define SY_HTTP_SUB_FILTER_H

#include "http/filter.h"

extern const struct resp_filter_type sub_filter_type;

/*
 * The matching step, apart for its unit test: scan `in` (len bytes) for the
 * strings `pat` (lower-case, n of them; done[i] set once replaced when
 * `once`), writing the text and replacements with `emit`. When `last` is 0,
 * the tail that may start a string continued later is not consumed.
 * Returns the count of bytes consumed.
 */
size_t sub_scan(const char *in, size_t len, const struct str *pat, const struct str *repl,
                unsigned n, unsigned char *done, int once, int last,
                int (*emit)(void *ctx, const char *p, size_t len), void *ctx);

#endif
