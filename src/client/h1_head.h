/*
 * h1_head.h - the HTTP/1.1 response head: status line, Server, Date, the
 * response headers (after resp_finalize), Connection/Keep-Alive.
 */
#ifndef SY_CLIENT_H1_HEAD_H
#define SY_CLIENT_H1_HEAD_H

#include <stddef.h>

#include "http/stream.h"

/*
 * Serialise the head of the stream's response (r->status, r->resp) into the
 * request arena. The keep-alive limits (keepalive_timeout 0,
 * keepalive_requests, keepalive_time, shutting down) may turn r->keepalive
 * off here, so the head says "Connection: close" on the last response.
 * 0 or -1 (out of memory).
 */
int h1_build_head(struct client_stream *s, char **out, size_t *outlen);

#endif
