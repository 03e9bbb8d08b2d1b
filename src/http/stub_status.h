/*
 * stub_status.h - nginx's stub_status page and its variables, from the
 * shared counters of core/stats.h.
 */
#ifndef SY_HTTP_STUB_STATUS_H
#define SY_HTTP_STUB_STATUS_H

#include "http/stream.h"

/*
 * Answer the request with the status page (text/plain, nginx's format):
 * 0 with *body and *len set (request arena) and the head prepared, 405 for a
 * method other than GET/HEAD, -1 when out of memory.
 */
int stub_status_prepare(struct client_stream *s, const char **body, size_t *len);

/* $connections_active / _reading / _writing / _waiting: `which` is one of
 * 'a', 'r', 'w', 'W'. */
int64_t stub_status_value(char which);

#endif
