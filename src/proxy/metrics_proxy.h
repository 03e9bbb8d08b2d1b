/*
 * metrics_proxy.h - the proxy side of the Prometheus metrics
 * (core/metrics.h): upstream servers, tunnels, refused upgrades.
 */
#ifndef SY_PROXY_METRICS_PROXY_H
#define SY_PROXY_METRICS_PROXY_H

#include "core/metrics.h"
#include "http/request.h"
#include "proxy/balance.h"

/* A try of server i of u begins: its series into t (t may be NULL). */
void metrics_peer_try(struct upstream_try *t, const struct upstream_conf *u,
                      struct upstream_rt *urt, int i);

/* A failed try counted against server i (upstream_peer_failed, before it
 * counts): failures, and "down" until fail_timeout when max_fails is hit. */
void metrics_peer_failed(const struct upstream_conf *u, struct upstream_rt *urt, int i);

/* The tunnel series of the request's location and upstream u (0: none). */
int metrics_tunnel_series(const struct request *r, const struct upstream_conf *u);

void metrics_tunnel_open(int sid);
/* `from_client` 1: bytes read from the client, 0: from the upstream. */
void metrics_tunnel_bytes(int sid, int from_client, uint64_t n);
/* The tunnel ended; `reason` is its access log reason ("client closed", ...). */
void metrics_tunnel_closed(int sid, const char *reason);

/* An upgrade refused: with the status sent to the client (400, 403, 426),
 * or why (enum metrics_upgrade_reason) when status is 0. */
void metrics_upgrade_refused(const struct request *r, int status, int why);

#endif
