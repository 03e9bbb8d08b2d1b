/*
 * metrics_http.h - the request side of the Prometheus metrics
 * (core/metrics.h): the per-request hook, limit outcomes and the `metrics`
 * page.
 */
#ifndef SY_HTTP_METRICS_HTTP_H
#define SY_HTTP_METRICS_HTTP_H

#include "core/metrics.h"
#include "http/stream.h"

/* A request ends (http_request_release; before its memory goes when it
 * becomes a tunnel): status class, duration, the upstream tries' timings,
 * once per request; publishes the worker's buffer pool numbers. */
void metrics_request_end(struct client_stream *s);

/* A limit_req (kind MK_LIMIT_REQ) or limit_conn (MK_LIMIT_CONN) outcome
 * (enum limit_status) for zone `zone`. */
void metrics_limit(enum metrics_kind kind, const char *zone, int status);

/* The request's location as a label value ("/api/", "= /x", "~ re", "@n";
 * "" when no location matched) into buf; its length. */
size_t metrics_location_name(const struct request *r, char *buf, size_t cap);

/*
 * Answer the request with the exposition (text/plain; version=0.0.4): 0 with
 * *body and *len set (request arena) and the head prepared, 405 for a
 * method other than GET/HEAD, -1 when out of memory.
 */
int metrics_page_prepare(struct client_stream *s, const char **body, size_t *len);

#endif
