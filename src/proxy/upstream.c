/*
 * upstream.c - peer selection (smooth weighted round robin with
 * max_fails/fail_timeout) and the per-worker keep-alive pool of idle
 * upstream connections (see upstream.h).
 */
#include "proxy/upstream.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/live.h"
#include "core/log.h"
#include "proxy/balance.h"
#include "tls/tls.h"

#include "core/container.h"
#include "proxy/metrics_proxy.h"

/*
 * The idle connections of one upstream group. Keyed by the group's name, not
 * its configuration, so a pool survives reloads; a handful of groups per
 * worker, so finding one is a short list walk. Buckets live until exit.
 */
struct pool_group {
    char *name;
    struct upconn *head, *tail; /* most recently parked first */
    unsigned count;
    struct pool_group *next;
};

static struct pool_group *pool_groups;

static struct pool_group *pool_group_of(const char *name, int create)
{
    for (struct pool_group *g = pool_groups; g; g = g->next)
        if (strcmp(g->name, name) == 0)
            return g;
    if (!create)
        return NULL;
    struct pool_group *g = calloc(1, sizeof(*g));
    if (!g || !(g->name = strdup(name))) {
        free(g);
        return NULL;
    }
    g->next = pool_groups;
    pool_groups = g;
    return g;
}

int upstream_peer_usable(const struct upstream_conf *u, struct upstream_rt *urt, unsigned i)
{
    const struct upstream_peer *pe = &u->peers[i];
    struct peer_rt *pr = &urt->peers[i];
    if (pe->down)
        return 0;
    /* max_conns: this worker's connections (no shared zone), as nginx without `zone`. */
    if (pe->max_conns && upstream_peer_conns(u, urt, i) >= pe->max_conns)
        return 0;
    /* nginx never marks the only server of a group down: there is no alternative. */
    if (u->npeers == 1)
        return 1;
    /* Failed max_fails times: out until fail_timeout after the last failure
     * (or the last probe); the counter is reset only by a success after
     * such a probe (upstream_peer_ok), as nginx's peer->checked/accessed. */
    if (pe->max_fails && pr->fails >= pe->max_fails &&
        loop_now() - pr->checked_ms <= pe->fail_timeout)
        return 0;
    return 1;
}

static int pick_range(const struct upstream_conf *u, struct upstream_rt *urt, unsigned from,
                      unsigned to, uint64_t tried)
{
    int best = -1;
    int64_t total = 0;
    for (unsigned i = from; i < to; i++) {
        if (i < 64 && (tried & (1ULL << i)))
            continue;
        if (!upstream_peer_usable(u, urt, i))
            continue;
        struct peer_rt *pr = &urt->peers[i];
        pr->current_weight += pr->effective_weight;
        total += pr->effective_weight;
        /* a weight lowered by failures recovers by one per pick */
        if (pr->effective_weight < u->peers[i].weight)
            pr->effective_weight++;
        if (best < 0 || pr->current_weight > urt->peers[best].current_weight)
            best = (int)i;
    }
    if (best >= 0)
        urt->peers[best].current_weight -= total;
    return best;
}

/* The chosen peer: a probe after fail_timeout opens a new window (nginx sets
 * peer->checked), so a success now resets its failure count. */
static int chosen(const struct upstream_conf *u, struct upstream_rt *urt, int i)
{
    if (i >= 0) {
        struct peer_rt *pr = &urt->peers[i];
        if (loop_now() - pr->checked_ms > u->peers[i].fail_timeout)
            pr->checked_ms = loop_now();
    }
    return i;
}

int upstream_pick(const struct upstream_conf *u, struct upstream_rt *urt, struct str key,
                  uint64_t tried)
{
    if (u->balancer != UPS_BALANCE_ROUND_ROBIN) {
        int b = balance_pick(u, urt, key, tried);
        if (b >= 0)
            return chosen(u, urt, b);
    }
    int i = pick_range(u, urt, 0, u->nprimary, tried);
    if (i >= 0)
        return chosen(u, urt, i);
    return chosen(u, urt, pick_range(u, urt, u->nprimary, u->npeers, tried));
}

/*
 * Active connections per (group name, peer address) of this worker, for
 * least_conn and random two. Keyed like the keep-alive pools, so the count
 * survives reloads as the connections (and WebSocket tunnels) themselves
 * do; entries live until exit, a handful per configured server.
 */
struct peer_load {
    char *group;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    unsigned conns;
    struct peer_load *next;
};

static struct peer_load *peer_loads;

unsigned *upstream_peer_load(const struct upstream_conf *u, struct upstream_rt *urt, unsigned i)
{
    struct peer_rt *pr = &urt->peers[i];
    if (pr->load)
        return pr->load;
    const struct upstream_peer *pe = &u->peers[i];
    struct peer_load *l;
    for (l = peer_loads; l; l = l->next)
        if (l->addrlen == pe->addrlen && memcmp(&l->addr, &pe->addr, pe->addrlen) == 0 &&
            strcmp(l->group, u->name) == 0)
            break;
    if (!l) {
        l = calloc(1, sizeof(*l));
        if (!l || !(l->group = strdup(u->name))) {
            free(l);
            return NULL;
        }
        memcpy(&l->addr, &pe->addr, pe->addrlen);
        l->addrlen = pe->addrlen;
        l->next = peer_loads;
        peer_loads = l;
    }
    pr->load = &l->conns;
    return pr->load;
}

unsigned upstream_peer_conns(const struct upstream_conf *u, struct upstream_rt *urt, unsigned i)
{
    unsigned *c = upstream_peer_load(u, urt, i);
    return c ? *c : 0;
}

void upstream_loads_free(void)
{
    while (peer_loads) {
        struct peer_load *l = peer_loads;
        peer_loads = l->next;
        free(l->group);
        free(l);
    }
}

void upstream_peer_failed(const struct upstream_conf *u, struct upstream_rt *urt, int i)
{
    live_peer_failed(u->name, u->peers[i].name); /* the status page's peer state */
    metrics_peer_failed(u, urt, i);
    /* nginx does not count failures of the only server of a group */
    if (u->npeers == 1)
        return;
    struct peer_rt *pr = &urt->peers[i];
    const struct upstream_peer *pe = &u->peers[i];
    pr->fails++;
    pr->accessed_ms = pr->checked_ms = loop_now();
    if (pe->max_fails) {
        /* nginx lowers the weight by weight/max_fails per failure; picks restore it */
        pr->effective_weight -= pe->weight / pe->max_fails;
        if (pr->fails >= pe->max_fails)
            sy_log(LOG_LVL_WARN, "upstream server temporarily disabled while connecting to upstream, upstream: \"%s\"",
                   pe->name);
    }
    if (pr->effective_weight < 0)
        pr->effective_weight = 0;
}

void upstream_peer_ok(const struct upstream_conf *u, struct upstream_rt *urt, int i)
{
    (void)u;
    struct peer_rt *pr = &urt->peers[i];
    /* reset only after a probe that followed fail_timeout (nginx: accessed < checked) */
    if (pr->accessed_ms < pr->checked_ms)
        pr->fails = 0;
}

/* ---- upstream connection objects ---- */

static void upconn_on_io(struct handle *h, uint32_t events);
static void upconn_idle_timeout(struct timer *t);

struct upconn *upconn_new(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct upconn *uc = calloc(1, sizeof(*uc));
    if (!uc)
        return NULL;
    conn_init(&uc->c, fd, upconn_on_io);
    if (addr->sa_family == AF_UNIX) {
        uc->unix_path = strdup(((const struct sockaddr_un *)addr)->sun_path);
        if (!uc->unix_path) {
            free(uc);
            return NULL;
        }
        uc->c.peer.sa.sa_family = AF_UNIX;
        uc->c.peerlen = sizeof(sa_family_t);
    } else {
        if (len > sizeof(uc->c.peer))
            len = sizeof(uc->c.peer);
        memcpy(&uc->c.peer, addr, len);
        uc->c.peerlen = len;
    }
    uc->idle_timer.cb = upconn_idle_timeout;
    uc->created_ms = loop_now();
    if (loop_add(&uc->c.h) < 0) {
        free(uc->unix_path);
        free(uc);
        return NULL;
    }
    return uc;
}

static void pool_unlink(struct upconn *uc)
{
    struct pool_group *g = uc->pool;
    if (!g)
        return;
    if (uc->prev)
        uc->prev->next = uc->next;
    else
        g->head = uc->next;
    if (uc->next)
        uc->next->prev = uc->prev;
    else
        g->tail = uc->prev;
    g->count--;
    uc->next = uc->prev = NULL;
    uc->pool = NULL;
}

void upconn_close(struct upconn *uc)
{
    if (!uc)
        return;
    timer_cancel(&uc->idle_timer);
    conn_close_fd(&uc->c);
    free(uc->unix_path);
    uc->unix_path = NULL;
    uc->owner = NULL;
    loop_defer_free(free, uc);
}

static void upconn_on_io(struct handle *h, uint32_t events)
{
    struct upconn *uc = container_of(h, struct upconn, c.h);
    if (uc->c.h.fd < 0)
        return;
    conn_note_events(&uc->c, events);
    if (uc->owner) {
        proxy_on_upstream(uc->owner, events);
        return;
    }
    /* Idle in the pool: any readability means the upstream closed it or sent
     * something unsolicited; either way it cannot be reused. */
    if (events & (EPOLLIN_BIT | EPOLLRDHUP_BIT | EPOLLERR_BIT | EPOLLHUP_BIT)) {
        pool_unlink(uc);
        upconn_close(uc);
    }
}

static void upconn_idle_timeout(struct timer *t)
{
    struct upconn *uc = container_of(t, struct upconn, idle_timer);
    pool_unlink(uc);
    upconn_close(uc);
}

/* Is `uc` a connection to `peer` (same address, or same socket path)? */
static int upconn_is_to(const struct upconn *uc, const struct upstream_peer *peer)
{
    if (peer->addr.ss_family == AF_UNIX)
        return uc->unix_path &&
               strcmp(uc->unix_path, ((const struct sockaddr_un *)&peer->addr)->sun_path) == 0;
    return uc->c.peerlen == peer->addrlen && memcmp(&uc->c.peer, &peer->addr, peer->addrlen) == 0;
}

struct upconn *upconn_pool_get(const struct upstream_conf *u, const struct upstream_peer *peer,
                               int tls)
{
    if (!u->keepalive)
        return NULL;
    struct pool_group *g = pool_group_of(u->name, 0);
    if (!g)
        return NULL;
    for (struct upconn *uc = g->head; uc; uc = uc->next) {
        if (!upconn_is_to(uc, peer))
            continue;
        if (tls_is(&uc->c) != !!tls)
            continue;
        pool_unlink(uc);
        timer_stop(&uc->idle_timer);
        /* It was idle: assume writable; reads wait for the response. */
        uc->c.flags |= CONN_F_READY_W;
        return uc;
    }
    return NULL;
}

void upconn_pool_put(struct upconn *uc, const struct upstream_conf *u)
{
    uc->owner = NULL;
    uc->requests++;
    struct pool_group *g = NULL;
    if (!u->keepalive || uc->requests >= u->keepalive_requests ||
        loop_now() - uc->created_ms >= u->keepalive_time || !(g = pool_group_of(u->name, 1))) {
        upconn_close(uc);
        return;
    }
    /* Enforce `keepalive N`: the group's oldest idle connection goes. */
    if (g->count >= u->keepalive && g->tail) {
        struct upconn *oldest = g->tail;
        pool_unlink(oldest);
        upconn_close(oldest);
    }
    uc->pool = g;
    uc->prev = NULL;
    uc->next = g->head;
    if (g->head)
        g->head->prev = uc;
    else
        g->tail = uc;
    g->head = uc;
    g->count++;
    timer_set(&uc->idle_timer, u->keepalive_timeout);
}

void upconn_pool_drain(void)
{
    while (pool_groups) {
        struct pool_group *g = pool_groups;
        while (g->head) {
            struct upconn *uc = g->head;
            pool_unlink(uc);
            upconn_close(uc);
        }
        pool_groups = g->next;
        free(g->name);
        free(g);
    }
}
