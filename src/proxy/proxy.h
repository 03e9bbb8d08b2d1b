/*
 * proxy.h - the proxy_pass handler: one upstream exchange per request,
 * streaming both bodies with one buffer per direction.
 *
 * Written against the client stream (http/stream.h) only: the request body
 * comes from the stream's body_peek/consume, the response goes out through
 * send_head/write, and the stream calls back (on_event) when its client
 * side is ready or its deadline passed -- whatever protocol the client speaks.
 */
#ifndef SY_PROXY_PROXY_H
#define SY_PROXY_PROXY_H

#include "http/stream.h"

/*
 * Start proxying the stream's current request (installed as
 * http_proxy_handler). Errors before the upstream answered become local
 * 502/504 responses through http_respond_status(). May end the stream.
 */
void proxy_start(struct client_stream *s);

/* Free the cached proxy states (worker exit, memory trim). */
void proxy_cache_release(void);

#endif
