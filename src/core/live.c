/*
 * live.c - the shared live tables of the status page (live.h).
 */
#include "core/live.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"

struct tunnel_slot {
    int32_t pid;                /* owner; 0 = free (claimed by CAS) */
    uint32_t seq;               /* odd while the names are written */
    uint64_t conn_id;
    uint64_t start_ms, last_ms; /* monotonic */
    uint64_t bytes[2];          /* [0] from the client, [1] from the upstream */
    uint32_t http2;
    char server[LIVE_NAME], location[LIVE_NAME], upstream[LIVE_NAME], peer[LIVE_NAME],
        client[LIVE_NAME];
};

/* A ring entry: the seq word first, then the view (ring_read relies on it). */
struct refusal_slot {
    uint64_t seq;               /* 2n+1 while entry n is written, 2n+2 when done */
    struct live_refusal_view v;
};

struct reload_slot {
    uint64_t seq;
    struct live_reload_view v;
};

_Static_assert(offsetof(struct refusal_slot, v) == sizeof(uint64_t) &&
                   offsetof(struct reload_slot, v) == sizeof(uint64_t),
               "ring_read reads the view right after the seq word");

struct peer_slot {
    uint32_t state;             /* 0 empty, 1 key being written, 2 ready */
    char group[LIVE_NAME], peer[LIVE_NAME];
    uint64_t ok, fails, latency_us, last_ok_ms, last_fail_ms;
};

struct live_shared {
    uint64_t unlisted;          /* open tunnels without a slot */
    uint64_t refusals;          /* refusals ever recorded (ring head) */
    uint64_t reloads;
    struct tunnel_slot tunnels[LIVE_TUNNELS];
    struct refusal_slot refused[LIVE_REFUSED];
    struct reload_slot reload[LIVE_RELOADS];
    struct peer_slot peers[LIVE_PEERS];
};

static struct live_shared *L;       /* NULL until live_init or first use */
static struct live_shared *local_tables;
static unsigned tunnel_hint;        /* where this process looks for a free slot first */
static uint64_t full_until;         /* the table was full: skip the scan until then (ms) or
                                       until this process frees a slot (a crowd of tunnels
                                       beyond the table does not scan it each time) */

int live_init(void)
{
    if (L && L != local_tables)
        return 0;
    void *p = mmap(NULL, sizeof(struct live_shared), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    L = p; /* zeroed by the kernel; pages are touched only when used */
    return 0;
}

/* The tables, private ones when live_init() was never called (unit tests,
 * a failed mmap). NULL only when even that fails. */
static struct live_shared *tables(void)
{
    if (L)
        return L;
    void *p = mmap(NULL, sizeof(struct live_shared), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    L = local_tables = p;
    return L;
}

/* Copy a C string into a fixed field, truncated, NUL-terminated. */
static void put(char *dst, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= LIVE_NAME)
        n = LIVE_NAME - 1;
    memcpy(dst, src ? src : "", n);
    dst[n] = 0;
}

static void put_reason(char *dst, const char *src)
{
    size_t n = 0;
    /* the first line only */
    while (src && src[n] && src[n] != '\n' && n < LIVE_REASON - 1)
        n++;
    memcpy(dst, src ? src : "", n);
    dst[n] = 0;
}

/* ------------------------------------------------------------- tunnels */

int live_tunnel_open(const struct live_route *rt, uint64_t conn_id)
{
    struct live_shared *t = tables();
    if (!t)
        return -1;
    int32_t me = (int32_t)getpid();
    for (unsigned k = 0; k < LIVE_TUNNELS && loop_now() >= full_until; k++) {
        unsigned i = (tunnel_hint + k) % LIVE_TUNNELS;
        struct tunnel_slot *s = &t->tunnels[i];
        int32_t zero = 0;
        if (__atomic_load_n(&s->pid, __ATOMIC_RELAXED) != 0 ||
            !__atomic_compare_exchange_n(&s->pid, &zero, me, 0, __ATOMIC_ACQUIRE,
                                         __ATOMIC_RELAXED))
            continue;
        tunnel_hint = i + 1;
        /* A free slot's seq is odd (or 0, never used): readers skip it until
         * the names are written and it turns even. */
        uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED) | 1;
        s->conn_id = conn_id;
        s->http2 = rt->http2;
        put(s->server, rt->server);
        put(s->location, rt->location);
        put(s->upstream, rt->upstream);
        put(s->peer, rt->peer);
        put(s->client, rt->client);
        __atomic_store_n(&s->bytes[0], 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->bytes[1], 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->start_ms, loop_now(), __ATOMIC_RELAXED);
        __atomic_store_n(&s->last_ms, loop_now(), __ATOMIC_RELAXED);
        __atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELEASE); /* even: readable */
        return (int)i;
    }
    if (loop_now() >= full_until)
        full_until = loop_now() + 1000;
    __atomic_fetch_add(&t->unlisted, 1, __ATOMIC_RELAXED);
    return -1;
}

void live_tunnel_bytes(int slot, int dir, uint64_t n)
{
    if (slot < 0 || !L)
        return;
    struct tunnel_slot *s = &L->tunnels[slot];
    __atomic_fetch_add(&s->bytes[dir ? 1 : 0], n, __ATOMIC_RELAXED);
    __atomic_store_n(&s->last_ms, loop_now(), __ATOMIC_RELAXED);
}

void live_tunnel_close(int slot)
{
    if (!L)
        return;
    if (slot < 0) {
        __atomic_fetch_sub(&L->unlisted, 1, __ATOMIC_RELAXED);
        return;
    }
    struct tunnel_slot *s = &L->tunnels[slot];
    full_until = 0;
    tunnel_hint = (unsigned)slot;
    __atomic_fetch_add(&s->seq, 1, __ATOMIC_RELEASE); /* odd: not to be shown */
    __atomic_store_n(&s->pid, 0, __ATOMIC_RELEASE);
}

/* Free the slot when its owner (other than us) no longer exists. */
static int owner_gone(struct tunnel_slot *s, int32_t pid)
{
    if (pid == (int32_t)getpid() || kill(pid, 0) == 0 || errno != ESRCH)
        return 0;
    __atomic_compare_exchange_n(&s->pid, &pid, 0, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return 1;
}

size_t live_tunnels_read(struct live_tunnel_view *out, size_t cap, uint64_t *unlisted)
{
    struct live_shared *t = tables();
    size_t n = 0;
    if (unlisted)
        *unlisted = t ? __atomic_load_n(&t->unlisted, __ATOMIC_RELAXED) : 0;
    if (!t)
        return 0;
    for (unsigned i = 0; i < LIVE_TUNNELS && n < cap; i++) {
        struct tunnel_slot *s = &t->tunnels[i];
        int32_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);
        if (!pid || owner_gone(s, pid))
            continue;
        uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        if ((seq & 1) || seq == 0)
            continue; /* being (re)written: shown next time */
        struct live_tunnel_view *v = &out[n];
        v->pid = pid;
        v->conn_id = s->conn_id;
        v->http2 = s->http2;
        memcpy(v->server, s->server, LIVE_NAME);
        memcpy(v->location, s->location, LIVE_NAME);
        memcpy(v->upstream, s->upstream, LIVE_NAME);
        memcpy(v->peer, s->peer, LIVE_NAME);
        memcpy(v->client, s->client, LIVE_NAME);
        v->start_ms = __atomic_load_n(&s->start_ms, __ATOMIC_RELAXED);
        v->last_ms = __atomic_load_n(&s->last_ms, __ATOMIC_RELAXED);
        v->bytes_up = __atomic_load_n(&s->bytes[0], __ATOMIC_RELAXED);
        v->bytes_down = __atomic_load_n(&s->bytes[1], __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) != seq ||
            __atomic_load_n(&s->pid, __ATOMIC_RELAXED) != pid)
            continue; /* reused while we copied */
        v->server[LIVE_NAME - 1] = v->location[LIVE_NAME - 1] = v->upstream[LIVE_NAME - 1] =
            v->peer[LIVE_NAME - 1] = v->client[LIVE_NAME - 1] = 0;
        n++;
    }
    return n;
}

void live_reap(pid_t pid)
{
    if (!L)
        return;
    for (unsigned i = 0; i < LIVE_TUNNELS; i++) {
        int32_t p = (int32_t)pid;
        __atomic_compare_exchange_n(&L->tunnels[i].pid, &p, 0, 0, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED);
    }
}

/* --------------------------------------------------- refusals, reloads */

void live_refused(const struct live_route *rt, int status, const char *reason)
{
    struct live_shared *t = tables();
    if (!t)
        return;
    uint64_t n = __atomic_fetch_add(&t->refusals, 1, __ATOMIC_RELAXED);
    struct refusal_slot *e = &t->refused[n % LIVE_REFUSED];
    __atomic_store_n(&e->seq, 2 * n + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    e->v.when_ms = loop_wall_ms();
    e->v.status = status;
    e->v.http2 = rt->http2;
    put(e->v.server, rt->server);
    put(e->v.location, rt->location);
    put(e->v.upstream, rt->upstream);
    put(e->v.peer, rt->peer);
    put(e->v.client, rt->client);
    put_reason(e->v.reason, reason);
    __atomic_store_n(&e->seq, 2 * n + 2, __ATOMIC_RELEASE);
}

/*
 * Copy the newest entries of a ring (`head` entries written so far, `ring`
 * slots of `slot_size` bytes, each a seq word then a view of `view_size`
 * bytes) into out[], newest first, skipping an entry being written (the seq
 * word says so before and after the copy). The number copied.
 */
static size_t ring_read(const uint64_t *headp, const void *slots, size_t slot_size,
                        size_t view_size, unsigned ring, void *out, size_t cap)
{
    uint64_t head = __atomic_load_n(headp, __ATOMIC_ACQUIRE);
    size_t n = 0;
    for (uint64_t k = head; k > 0 && head - k < ring && n < cap; k--) {
        const char *e = (const char *)slots + ((k - 1) % ring) * slot_size;
        const uint64_t *seq = (const uint64_t *)(const void *)e;
        uint64_t want = 2 * (k - 1) + 2;
        if (__atomic_load_n(seq, __ATOMIC_ACQUIRE) != want)
            continue;
        memcpy((char *)out + n * view_size, e + sizeof(uint64_t), view_size);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(seq, __ATOMIC_RELAXED) != want)
            continue;
        n++;
    }
    return n;
}

size_t live_refused_read(struct live_refusal_view *out, size_t cap)
{
    struct live_shared *t = tables();
    return t ? ring_read(&t->refusals, t->refused, sizeof(t->refused[0]), sizeof(*out),
                         LIVE_REFUSED, out, cap)
             : 0;
}

void live_reload(int ok, uint64_t generation, const char *message)
{
    struct live_shared *t = tables();
    if (!t)
        return;
    uint64_t n = __atomic_fetch_add(&t->reloads, 1, __ATOMIC_RELAXED);
    struct reload_slot *e = &t->reload[n % LIVE_RELOADS];
    __atomic_store_n(&e->seq, 2 * n + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* the master runs no event loop clock */
    e->v.when_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    e->v.generation = generation;
    e->v.ok = ok;
    put_reason(e->v.message, message);
    __atomic_store_n(&e->seq, 2 * n + 2, __ATOMIC_RELEASE);
}

size_t live_reloads_read(struct live_reload_view *out, size_t cap)
{
    struct live_shared *t = tables();
    return t ? ring_read(&t->reloads, t->reload, sizeof(t->reload[0]), sizeof(*out),
                         LIVE_RELOADS, out, cap)
             : 0;
}

/* --------------------------------------------------------------- peers */

static uint32_t peer_hash(const char *group, const char *peer)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = group; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ 0xff) * 16777619u;
    for (const char *p = peer; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

static int key_is(const struct peer_slot *s, const char *g, const char *p)
{
    return strcmp(s->group, g) == 0 && strcmp(s->peer, p) == 0;
}

/* The entry of (group, peer), made when `create`; NULL when absent or the
 * table is full. */
static struct peer_slot *peer_find(const char *group, const char *peer, int create)
{
    struct live_shared *t = tables();
    if (!t)
        return NULL;
    char g[LIVE_NAME], p[LIVE_NAME];
    put(g, group);
    put(p, peer);
    uint32_t h = peer_hash(g, p);
    for (unsigned k = 0; k < LIVE_PEERS; k++) {
        struct peer_slot *s = &t->peers[(h + k) % LIVE_PEERS];
        uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if (st == 0) {
            if (!create)
                return NULL;
            uint32_t zero = 0;
            if (__atomic_compare_exchange_n(&s->state, &zero, 1, 0, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED)) {
                memcpy(s->group, g, LIVE_NAME);
                memcpy(s->peer, p, LIVE_NAME);
                __atomic_store_n(&s->state, 2, __ATOMIC_RELEASE);
                return s;
            }
            st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        }
        /* Another worker is writing this key: a few copies at most. */
        for (int spin = 0; st == 1 && spin < 100000; spin++)
            st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if (st == 2 && key_is(s, g, p))
            return s;
    }
    return NULL;
}

void live_peer_ok(const char *group, const char *peer, uint64_t latency_ms)
{
    struct peer_slot *s = peer_find(group, peer, 1);
    if (!s)
        return;
    uint64_t us = latency_ms * 1000;
    uint64_t n = __atomic_fetch_add(&s->ok, 1, __ATOMIC_RELAXED);
    uint64_t avg = __atomic_load_n(&s->latency_us, __ATOMIC_RELAXED);
    /* EWMA with weight 1/8; the first sample is taken as it is */
    avg = n == 0 ? us : avg - avg / 8 + us / 8;
    __atomic_store_n(&s->latency_us, avg, __ATOMIC_RELAXED);
    __atomic_store_n(&s->last_ok_ms, loop_wall_ms(), __ATOMIC_RELAXED);
}

void live_peer_failed(const char *group, const char *peer)
{
    struct peer_slot *s = peer_find(group, peer, 1);
    if (!s)
        return;
    __atomic_fetch_add(&s->fails, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&s->last_fail_ms, loop_wall_ms(), __ATOMIC_RELAXED);
}

void live_peer_get(const char *group, const char *peer, struct live_peer_view *out)
{
    memset(out, 0, sizeof(*out));
    struct peer_slot *s = peer_find(group, peer, 0);
    if (!s)
        return;
    out->seen = 1;
    out->ok = __atomic_load_n(&s->ok, __ATOMIC_RELAXED);
    out->fails = __atomic_load_n(&s->fails, __ATOMIC_RELAXED);
    out->latency_us = __atomic_load_n(&s->latency_us, __ATOMIC_RELAXED);
    out->last_ok_ms = __atomic_load_n(&s->last_ok_ms, __ATOMIC_RELAXED);
    out->last_fail_ms = __atomic_load_n(&s->last_fail_ms, __ATOMIC_RELAXED);
}
