/*
 * metrics.h - Prometheus metrics shared by every process of an instance.
 *
 * One mapping (MAP_SHARED|MAP_ANONYMOUS), made by the master before any fork
 * and kept across reloads, holds:
 *  - a table of series (a kind and a label string such as
 *    `server="a",location="/"`), filled lock-free by whichever process first
 *    needs a series; fixed capacity (METRICS_SERIES): a series that does not
 *    fit is counted in switchyard_metrics_series_dropped_total and logged
 *    once;
 *  - one slot per worker: its fixed counters and a block of values per
 *    series. A worker writes only its own slot, with relaxed stores: no lock,
 *    no shared cache line on the hot path. A scrape sums the slots.
 * A worker claims a slot when it starts; when it exits the master zeroes the
 * slot's gauges and marks it free, and the next worker continues its
 * counters, so counters never go backwards (reloads keep the workers, a
 * respawned worker takes over a dead one's slot).
 * Durations are whole milliseconds (the loop's clock).
 */
#ifndef SY_CORE_METRICS_H
#define SY_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_SLOTS 64                         /* workers counted (more are not, logged once) */
#define METRICS_SERIES 1024                      /* labelled series, all kinds together */
#define METRICS_VALS 48                          /* values per series and slot */
#define METRICS_LABELS_MAX 216                   /* one series' label string, escaped */
#define METRICS_NBUCKETS 11                      /* histogram bounds below (+Inf is the count) */
#define METRICS_HIST_VALS (METRICS_NBUCKETS + 2) /* buckets, sum (ms), count */

/* What a series' values mean (the families it is printed in). */
enum metrics_kind {
    MK_NONE = 0,
    MK_HTTP,       /* server, location: [0..5] status classes 1xx..5xx + other,
                      [6..18] request duration histogram */
    MK_PEER,       /* upstream, peer: [0..12] connect, [13..25] header, [26..38]
                      response histograms, [39] tries, [40] failures,
                      [41] down until (monotonic ms; max over workers) */
    MK_TUNNEL,     /* location, upstream: [0] live (gauge), [1] opened, [2] bytes
                      from client, [3] bytes from upstream, [4..] closes by reason */
    MK_UPGRADE,    /* location: refused upgrades by reason */
    MK_LIMIT_REQ,  /* zone: [0..4] limit_req outcomes (enum limit_status - 1) */
    MK_LIMIT_CONN, /* zone: likewise for limit_conn */
    MK_COUNT
};

#define MV_HTTP_CLASS 0
#define MV_HTTP_DUR 6
#define MV_PEER_CONNECT 0
#define MV_PEER_HEADER 13
#define MV_PEER_RESPONSE 26
#define MV_PEER_TRIES 39
#define MV_PEER_FAILS 40
#define MV_PEER_DOWN_UNTIL 41
#define MV_TUN_LIVE 0
#define MV_TUN_OPENED 1
#define MV_TUN_BYTES_CLIENT 2
#define MV_TUN_BYTES_UPSTREAM 3
#define MV_TUN_CLOSE 4

/* Why a tunnel ended (MK_TUNNEL closes). */
enum metrics_tunnel_reason {
    MTR_CLIENT_CLOSED,
    MTR_UPSTREAM_CLOSED,
    MTR_CLIENT_RESET,
    MTR_UPSTREAM_RESET,
    MTR_IDLE_TIMEOUT,
    MTR_PING_TIMEOUT,
    MTR_SHUTDOWN,
    MTR_POLICY,
    MTR_ERROR,
    MTR_OTHER,
    MTR_COUNT
};

/* Why an upgrade was not made into a tunnel (MK_UPGRADE). */
enum metrics_upgrade_reason {
    MUR_BAD_REQUEST,       /* the client's upgrade request was invalid (400) */
    MUR_VERSION,           /* unsupported Sec-WebSocket-Version (426) */
    MUR_ORIGIN,            /* websocket_origins (403) */
    MUR_UPSTREAM_DECLINED, /* the upstream answered something other than 101 */
    MUR_UPSTREAM_INVALID,  /* the upstream's 101 was invalid (502) */
    MUR_UNKNOWN_PROTOCOL,  /* HTTP/2 extended CONNECT for a :protocol other than websocket */
    MUR_COUNT
};

/* TLS handshake facts (server side). */
enum metrics_tls_version { MTV_TLS1, MTV_TLS1_1, MTV_TLS1_2, MTV_TLS1_3, MTV_OTHER, MTV_COUNT };
enum metrics_tls_failure {
    MTF_PEER_CLOSED,
    MTF_REJECTED,
    MTF_NO_SHARED_CIPHER,
    MTF_PROTOCOL_VERSION,
    MTF_HTTP_REQUEST,
    MTF_CERTIFICATE,
    MTF_OTHER,
    MTF_COUNT
};

/* A worker's fixed (unlabelled) values. */
struct metrics_fixed {
    uint64_t h2_conns; /* gauge */
    uint64_t h2_conns_total;
    uint64_t h2_streams; /* gauge */
    uint64_t h2_streams_total;
    uint64_t tunnels;                      /* gauge: tunnels open (all locations) */
    uint64_t gens_alive;                   /* gauge: configuration generations held */
    uint64_t buf_in_use, buf_pooled;       /* gauges, published at each request's end */
    uint64_t tls_handshakes[MTV_COUNT][2]; /* [version][resumed] */
    uint64_t tls_failures[MTF_COUNT];
};

/* One worker's slot. */
struct metrics_slot;

/*
 * Map the shared area (master, once, before forking). 0, or -1 when mmap
 * fails: then nothing is counted.
 */
int metrics_init(void);

/* A worker claims a slot as it starts (also with master_process off).
 * Without a slot (none free, or no shared area) its hooks count nothing. */
void metrics_worker_attach(void);

/* Master: worker `pid` has been reaped: its gauges are zeroed and its slot
 * freed for the next worker (its counters stay). */
void metrics_worker_exited(int pid);

/* Master: a reload ended (ok 1) or failed (ok 0). */
void metrics_reload(int ok);

/* This process's slot values, NULL when it has no slot. */
extern struct metrics_slot *metrics_me;
extern struct metrics_fixed *metrics_fixed_me;

/*
 * The series id of (kind, labels); labels is the escaped label string
 * (metrics_label_append). Returns > 0, or 0 when the table is full or there
 * is no shared area (then the caller counts nothing).
 */
int metrics_series(enum metrics_kind kind, const char *labels, size_t len);

/* Append `name="value"` (escaped; value truncated to keep the whole under
 * cap) to buf at *len. */
void metrics_label_append(char *buf, size_t cap, size_t *len, const char *name, const char *value,
                          size_t vlen);

/* The value block of series `sid` in this process's slot (NULL: none). */
uint64_t *metrics_vals(int sid);

static inline void metrics_add(uint64_t *p, uint64_t d)
{
    /* only this process writes *p: a plain read, an untorn store */
    __atomic_store_n(p, *p + d, __ATOMIC_RELAXED);
}

static inline void metrics_set(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* Add a duration (ms) to the histogram at h (METRICS_HIST_VALS values). */
void metrics_observe(uint64_t *h, uint64_t ms);

/* Fixed counters (no-ops without a slot). */
void metrics_fixed_add(uint64_t *field, int64_t d);
#define METRICS_FIXED_ADD(field, d)                                                                \
    do {                                                                                           \
        if (metrics_fixed_me)                                                                      \
            metrics_fixed_add(&metrics_fixed_me->field, (d));                                      \
    } while (0)

/* A server-side TLS handshake finished (version from SSL_version, resumed
 * 0/1) or failed. */
void metrics_tls_handshake(int ssl_version, int resumed);
void metrics_tls_failed(enum metrics_tls_failure why);

/*
 * Write the whole exposition (text format 0.0.4) into a malloc'd buffer:
 * *out (free it), its length returned; -1 when out of memory.
 */
long metrics_render(char **out);

#endif
