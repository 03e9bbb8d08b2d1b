/*
 * proxy.h - the proxy_pass handler: one upstream exchange per request,
 * streaming both bodies with one buffer per direction.
 *
 * The proxy drives the client connection while the session is in
 * H1_S_PROXY; the session forwards client events and timer expiries here.
 */
#ifndef SY_PROXY_PROXY_H
#define SY_PROXY_PROXY_H

#include "http/request.h"

/*
 * Start proxying the session's current request (state becomes H1_S_PROXY).
 * Errors before the upstream answered become local 502/504 responses through
 * h1_respond_status(). May close the session.
 */
void proxy_start(struct h1_session *s);

/* The client socket became ready, or the client-side timer fired (`timed_out`). */
void proxy_on_client(struct h1_session *s, int timed_out);

/* The session is closing (client gone or error): release the upstream side. */
void proxy_abort(struct h1_session *s);

/* Free the cached proxy states (worker exit, memory trim). */
void proxy_cache_release(void);

#endif
