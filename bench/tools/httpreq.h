/*
 * httpreq - the minimal HTTP/1.x request-head parser of sy-backend: just what
 * an origin for benchmarks needs (method, path, keep-alive, body length,
 * WebSocket upgrade), nothing is copied, all pointers point into the input.
 */
#ifndef SY_HTTPREQ_H
#define SY_HTTPREQ_H

#include <stddef.h>
#include <stdint.h>

struct http_req {
    size_t head_len;         /* up to and including the empty line */
    const char *path;        /* without the query string */
    size_t path_len;
    const char *ws_key;      /* Sec-WebSocket-Key or NULL */
    size_t ws_key_len;
    uint64_t content_length;
    unsigned is_get : 1, is_head : 1;
    unsigned http10 : 1;
    unsigned conn_close : 1, conn_keepalive : 1;
    unsigned upgrade_ws : 1; /* Upgrade: websocket */
    unsigned chunked : 1;    /* Transfer-Encoding: chunked (not decoded) */
};

/* 1 parsed, 0 head incomplete, -1 malformed. */
int http_parse_req(const char *p, size_t n, struct http_req *r);

#endif
