/*
 * upstream.h - upstream connections, peer selection and the idle
 * keep-alive pool.
 *
 * An upstream connection (struct upconn) is allocated once per TCP
 * connection and keeps its epoll registration for life: it moves between a
 * proxy (owner != NULL) and the keep-alive pool (owner == NULL) without any
 * epoll_ctl call. Idle pooled connections hold no buffer.
 */
#ifndef SY_PROXY_UPSTREAM_H
#define SY_PROXY_UPSTREAM_H

#include <stdint.h>

#include "conf/conf.h"
#include "core/conn.h"
#include "core/loop.h"
#include "proc/runtime.h"

struct proxy;

struct upconn {
    struct conn c;
    struct proxy *owner;        /* borrowed: the proxy using it; NULL while pooled */
    /* pool membership */
    struct upconn *next, *prev;
    struct pool_group *pool;    /* the group's pool while parked, else NULL */
    unsigned requests;          /* requests served on this connection */
    uint64_t created_ms;
    struct timer idle_timer;    /* keepalive_timeout while pooled */
};

/*
 * Pick a peer of `u` with smooth weighted round robin among live primaries,
 * then backups; skips peers whose bit is set in `tried` (peers >= 64 are
 * never skipped). Returns the peer index or -1 when none is usable
 * ("no live upstreams").
 */
int upstream_pick(const struct upstream_conf *u, struct upstream_rt *urt, uint64_t tried);

/* Record a failure / success of peer `i` (max_fails / fail_timeout accounting). */
void upstream_peer_failed(const struct upstream_conf *u, struct upstream_rt *urt, int i);
void upstream_peer_ok(const struct upstream_conf *u, struct upstream_rt *urt, int i);

/*
 * Take an idle connection to `peer` of group `u` from the pool, or NULL;
 * a TLS one when `tls` (https://), a plain one otherwise.
 * The returned upconn's owner must be set by the caller.
 */
struct upconn *upconn_pool_get(const struct upstream_conf *u, const struct upstream_peer *peer,
                               int tls);

/*
 * Park `uc` in the pool (takes ownership). Evicts the oldest idle connection
 * of the group beyond `keepalive`, closes `uc` instead when keep-alive is
 * off for the group or its request budget is spent.
 */
void upconn_pool_put(struct upconn *uc, const struct upstream_conf *u);

/* New upstream connection object around a connecting/connected fd. */
struct upconn *upconn_new(int fd, const struct sockaddr *addr, socklen_t len);

/* Close and free (deferred) an upconn not in the pool. Accepts NULL. */
void upconn_close(struct upconn *uc);

/* Close every pooled connection (shutdown). */
void upconn_pool_drain(void);

/* Called by upconn's epoll handler for owned connections (defined in proxy.c). */
void proxy_on_upstream(struct proxy *p, uint32_t events);

#endif
