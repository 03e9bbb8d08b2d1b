/*
 * limit_rate.h - the response rate limit (nginx's limit_rate and
 * limit_rate_after): a response filter (filter.h) last in the chain, so it
 * paces the bytes as they go to the client (compressed ones, with gzip),
 * per request (per stream with HTTP/2), over HTTP/1.1 and HTTP/2 alike.
 *
 * The rate in force: `set $limit_rate` or an upstream's X-Accel-Limit-Rate
 * (request.h limit_rate, limit_rate_set) when given, else the location's
 * limit_rate evaluated when the head goes. As nginx: the first
 * `limit_rate_after` bytes and one second's worth go at once, then the
 * body follows rate * elapsed.
 */
#ifndef SY_HTTP_LIMIT_RATE_H
#define SY_HTTP_LIMIT_RATE_H

#include "http/filter.h"

extern const struct resp_filter_type limit_rate_filter_type;

/* $limit_rate: the rate assigned to this request (set $limit_rate,
 * X-Accel-Limit-Rate, or limit_rate once the body started), as a decimal
 * string in *out (request arena); "0" before. 0, or -1 when out of memory. */
int limit_rate_value(struct client_stream *st, struct str *out);

#endif
