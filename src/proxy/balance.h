/*
 * balance.h - the load-balancing methods of an upstream{} block besides
 * weighted round robin: ip_hash, hash KEY [consistent], least_conn and
 * random [two [least_conn]] (nginx's modules of the same names).
 *
 * What they promise, as in nginx:
 *   ip_hash     a client (the first three octets of an IPv4 address, the
 *               whole IPv6 address) keeps going to the same server while it
 *               is usable; with weights, clients spread in proportion.
 *   hash        the same for any key (`hash $arg_user`, `hash $request_uri`);
 *               `consistent` (ketama): adding or removing a server moves only
 *               the keys of that server.
 *   least_conn  the server with the fewest active connections of this worker
 *               relative to its weight; ties by round robin.
 *   random      a random server by weight; `two`: the better of two random
 *               ones (fewest connections).
 * These methods use the primary servers; when the chosen server is down,
 * failed or already tried for this request, they probe others (up to 20
 * picks), then fall back to weighted round robin over every server.
 * The key of a hash method is computed once per request (balance_key); an
 * empty key (`hash $arg_x` without the argument) means round robin, as nginx.
 */
#ifndef SY_PROXY_BALANCE_H
#define SY_PROXY_BALANCE_H

#include <stdint.h>

#include "conf/conf.h"
#include "conf/runtime.h"
#include "core/str.h"
#include "tls/tls.h"

/* A worker's state of one upstream server in one generation (gen_rt.ups[u].peers[i]). */
struct peer_rt {
    int64_t current_weight;     /* smooth weighted round robin state */
    int64_t effective_weight;
    unsigned fails;             /* failures counted (nginx's peer->fails) */
    uint64_t accessed_ms;       /* last failure (nginx's peer->accessed) */
    uint64_t checked_ms;        /* last failure or fail_timeout probe (peer->checked) */
    unsigned *load;             /* this worker's active connections to the peer, shared by
                                   every generation (upstream_peer_load); NULL until used */
    struct tls_session_slot tls;/* proxy_ssl_session_reuse: the last TLS session (owned) */
    int metrics_sid;            /* its metrics series (proxy/metrics_proxy.c); 0 until used */
};

struct ring_point;
/* A worker's state of one upstream{} in one generation (gen_rt.ups[u]). */
struct upstream_rt {
    struct peer_rt *peers;      /* [upstream->npeers] */
    struct ring_point *ring;    /* hash ... consistent: the ring, built at first use */
    unsigned nring;
    uint64_t rng;               /* random: generator state */
};

/*
 * The rt_hooks (conf/runtime.h) for the upstream state: balance_rt_create
 * makes rt->ups (peers at their configured weights); 0 or -1 (out of
 * memory, left for balance_rt_destroy). balance_rt_destroy frees rt->ups,
 * the cached TLS sessions and the rings; accepts a half-built rt->ups.
 */
int balance_rt_create(struct gen_rt *rt);
void balance_rt_destroy(struct gen_rt *rt);

/* 32-bit CRC (IEEE 802.3, reflected), the hash of the hash methods. */
uint32_t balance_crc32(const void *p, size_t n);

/*
 * Pick a peer of `u` by its method with `key` (ip_hash: the client address
 * bytes; hash: the evaluated key; ignored otherwise). `tried` as
 * upstream_pick. Returns the peer index, or -1 when the method found no
 * usable primary (the caller then uses round robin).
 */
int balance_pick(const struct upstream_conf *u, struct upstream_rt *urt, struct str key,
                 uint64_t tried);

/* Free what balance_pick built lazily in `urt` (the consistent-hash ring). */
void balance_rt_free(struct upstream_rt *urt);

#endif
