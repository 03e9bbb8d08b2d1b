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
#include "conf/runtime.h"
#include "proxy/balance.h"

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
    char *unix_path;            /* (owned) a Unix-socket peer's path: the pool's key, as
                                   c.peer holds only IPv4/IPv6 addresses; else NULL */
};

/*
 * Pick a peer of `u`: by the group's method (balance.h; `key` is the client
 * address bytes for ip_hash, the evaluated key for hash), else -- and when
 * the method finds nothing -- smooth weighted round robin among live
 * primaries, then backups; skips peers whose bit is set in `tried` (peers
 * >= 64 are never skipped). Returns the peer index or -1 when none is
 * usable ("no live upstreams").
 */
int upstream_pick(const struct upstream_conf *u, struct upstream_rt *urt, struct str key,
                  uint64_t tried);

/* Can peer `i` take a request now (not down, not disabled by max_fails within
 * fail_timeout, fewer than max_conns connections of this worker)? */
int upstream_peer_usable(const struct upstream_conf *u, struct upstream_rt *urt, unsigned i);

/*
 * This worker's count of active connections to peer `i` (requests in
 * progress and WebSocket tunnels), for least_conn and random two: a counter
 * the caller increments while it uses the peer and decrements after, shared
 * by every generation naming the same group and address. NULL only when out
 * of memory. upstream_peer_conns() reads it; upstream_loads_free() at exit.
 */
unsigned *upstream_peer_load(const struct upstream_conf *u, struct upstream_rt *urt, unsigned i);
unsigned upstream_peer_conns(const struct upstream_conf *u, struct upstream_rt *urt, unsigned i);
void upstream_loads_free(void);

/*
 * Record a failure / a non-failure of peer `i`, nginx's max_fails accounting:
 * a failure counts and lowers the effective weight by weight/max_fails; the
 * count is cleared only by a success after fail_timeout passed since the last
 * failure (not by every success). http_403/http_404 retries are non-failures.
 */
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
