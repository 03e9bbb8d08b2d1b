/*
 * balance.c - ip_hash, hash [consistent], least_conn and random (see
 * balance.h). Weighted round robin stays in upstream.c, which calls here
 * first for the other methods and falls back to itself on -1.
 */
#include "proxy/balance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/upstream.h"

/* Picks probed before a hash method gives up and round robin takes over. */
#define BALANCE_TRIES 20
/* Points per unit of weight on the consistent-hash ring (ketama's 160). */
#define RING_POINTS 160

uint32_t balance_crc32(const void *p, size_t n)
{
    static uint32_t table[256];
    static int ready;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const unsigned char *b = p;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = table[(c ^ b[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static int candidate(const struct upstream_conf *u, struct upstream_rt *urt, unsigned i,
                     uint64_t tried)
{
    if (i < 64 && (tried & (1ULL << i)))
        return 0;
    return upstream_peer_usable(u, urt, i);
}

/* ---------------------------------------------------------------- hashing */

/* Weighted choice among the primaries by a hash value. */
static unsigned by_weight(const struct upstream_conf *u, uint32_t h)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < u->nprimary; i++)
        total += u->peers[i].weight;
    uint64_t w = total ? h % total : 0;
    unsigned i = 0;
    while (i + 1 < u->nprimary && w >= u->peers[i].weight) {
        w -= u->peers[i].weight;
        i++;
    }
    return i;
}

/* Rehashing: the next hash of a probe sequence (the same for a given key). */
static uint32_t rehash(uint32_t h, unsigned attempt)
{
    uint32_t v[2] = {h, attempt};
    return balance_crc32(v, sizeof(v));
}

static int pick_hash(const struct upstream_conf *u, struct upstream_rt *urt, struct str key,
                     uint64_t tried)
{
    uint32_t h = balance_crc32(key.p, key.len);
    for (unsigned a = 0; a < BALANCE_TRIES; a++) {
        unsigned i = by_weight(u, h);
        if (candidate(u, urt, i, tried))
            return (int)i;
        h = rehash(h, a + 1);
    }
    return -1;
}

/* ------------------------------------------------------- consistent ring */

struct ring_point {
    uint32_t hash;
    unsigned peer;
};

static int point_cmp(const void *a, const void *b)
{
    const struct ring_point *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->peer < y->peer ? -1 : x->peer > y->peer;
}

/* Built on first use per worker and generation: RING_POINTS × weight points
 * per primary, each the hash of "<server name>#<n>", so a server's points do
 * not depend on the other servers and removing one moves only its keys. */
static int build_ring(const struct upstream_conf *u, struct upstream_rt *urt)
{
    size_t n = 0;
    for (unsigned i = 0; i < u->nprimary; i++)
        n += (size_t)RING_POINTS * u->peers[i].weight;
    struct ring_point *r = malloc((n ? n : 1) * sizeof(*r));
    if (!r)
        return -1;
    size_t k = 0;
    for (unsigned i = 0; i < u->nprimary; i++)
        for (unsigned j = 0; j < RING_POINTS * u->peers[i].weight; j++) {
            char text[300];
            int len = snprintf(text, sizeof(text), "%s#%u", u->peers[i].name, j);
            r[k].hash = balance_crc32(text, (size_t)len < sizeof(text) ? (size_t)len
                                                                        : sizeof(text) - 1);
            r[k].peer = i;
            k++;
        }
    qsort(r, n, sizeof(*r), point_cmp);
    urt->ring = r;
    urt->nring = (unsigned)n;
    return 0;
}

static int pick_consistent(const struct upstream_conf *u, struct upstream_rt *urt,
                           struct str key, uint64_t tried)
{
    if (!urt->ring && build_ring(u, urt) < 0)
        return -1;
    if (urt->nring == 0)
        return -1;
    uint32_t h = balance_crc32(key.p, key.len);
    /* first point at or after h, wrapping */
    unsigned lo = 0, hi = urt->nring;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (urt->ring[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (unsigned a = 0; a < BALANCE_TRIES && a < urt->nring; a++) {
        unsigned i = urt->ring[(lo + a) % urt->nring].peer;
        if (candidate(u, urt, i, tried))
            return (int)i;
    }
    return -1;
}

void balance_rt_free(struct upstream_rt *urt)
{
    free(urt->ring);
    urt->ring = NULL;
    urt->nring = 0;
}

int balance_rt_create(struct gen_rt *rt)
{
    const struct generation *gen = rt->gen;
    if (!gen->http || !gen->http->nupstreams)
        return 0;
    rt->ups = calloc(gen->http->nupstreams, sizeof(*rt->ups));
    if (!rt->ups)
        return -1;
    for (unsigned i = 0; i < gen->http->nupstreams; i++) {
        const struct upstream_conf *u = gen->http->upstreams[i];
        rt->ups[i].peers = calloc(u->npeers ? u->npeers : 1, sizeof(struct peer_rt));
        if (!rt->ups[i].peers)
            return -1;
        for (unsigned j = 0; j < u->npeers; j++)
            rt->ups[i].peers[j].effective_weight = u->peers[j].weight;
    }
    return 0;
}

void balance_rt_destroy(struct gen_rt *rt)
{
    if (!rt->ups)
        return;
    for (unsigned i = 0; i < rt->gen->http->nupstreams; i++) {
        if (rt->ups[i].peers)
            for (unsigned j = 0; j < rt->gen->http->upstreams[i]->npeers; j++)
                tls_session_free(rt->ups[i].peers[j].tls.session);
        free(rt->ups[i].peers);
        balance_rt_free(&rt->ups[i]);
    }
    free(rt->ups);
    rt->ups = NULL;
}

/* ------------------------------------------------------ connection counts */

/* Is a (conns / weight) below b's? Compared without division. */
static int fewer(const struct upstream_conf *u, struct upstream_rt *urt, unsigned a, unsigned b)
{
    uint64_t ca = upstream_peer_conns(u, urt, a), cb = upstream_peer_conns(u, urt, b);
    return ca * u->peers[b].weight < cb * u->peers[a].weight;
}

static int pick_least_conn(const struct upstream_conf *u, struct upstream_rt *urt, uint64_t tried)
{
    int best = -1;
    for (unsigned i = 0; i < u->nprimary; i++)
        if (candidate(u, urt, i, tried) && (best < 0 || fewer(u, urt, i, (unsigned)best)))
            best = (int)i;
    if (best < 0)
        return -1;
    /* Ties (same conns per weight): smooth weighted round robin among them,
     * so equal servers take turns instead of the first always winning. */
    int pick = -1;
    int64_t total = 0;
    for (unsigned i = 0; i < u->nprimary; i++) {
        if (!candidate(u, urt, i, tried) || fewer(u, urt, (unsigned)best, i))
            continue;
        struct peer_rt *pr = &urt->peers[i];
        pr->current_weight += pr->effective_weight;
        total += pr->effective_weight;
        if (pick < 0 || pr->current_weight > urt->peers[pick].current_weight)
            pick = (int)i;
    }
    urt->peers[pick].current_weight -= total;
    return pick;
}

/* xorshift64*: per worker, seeded from the clock at first use. */
static uint64_t next_random(struct upstream_rt *urt)
{
    if (!urt->rng)
        urt->rng = (loop_wall_ms() << 20) ^ (uint64_t)(uintptr_t)urt ^ 0x9E3779B97F4A7C15ull;
    uint64_t x = urt->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    urt->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static int pick_random(const struct upstream_conf *u, struct upstream_rt *urt, uint64_t tried)
{
    int first = -1;
    for (unsigned a = 0; a < BALANCE_TRIES; a++) {
        unsigned i = by_weight(u, (uint32_t)(next_random(urt) >> 32));
        if (!candidate(u, urt, i, tried))
            continue;
        if (!u->random_two)
            return (int)i;
        if (first < 0) {
            first = (int)i;
            continue;
        }
        if (i == (unsigned)first && u->nprimary > 1)
            continue;
        /* the better of two: fewer connections per weight */
        return fewer(u, urt, i, (unsigned)first) ? (int)i : first;
    }
    return first;
}

int balance_pick(const struct upstream_conf *u, struct upstream_rt *urt, struct str key,
                 uint64_t tried)
{
    if (u->nprimary == 0)
        return -1;
    switch (u->balancer) {
    case UPS_BALANCE_IP_HASH:
        return key.len ? pick_hash(u, urt, key, tried) : -1;
    case UPS_BALANCE_HASH:
        if (key.len == 0)
            return -1; /* an empty key: round robin, as nginx */
        return u->hash_consistent ? pick_consistent(u, urt, key, tried)
                                  : pick_hash(u, urt, key, tried);
    case UPS_BALANCE_LEAST_CONN:
        return pick_least_conn(u, urt, tried);
    case UPS_BALANCE_RANDOM:
        return pick_random(u, urt, tried);
    case UPS_BALANCE_ROUND_ROBIN:
        break;
    }
    return -1;
}
