/*
 * live.h - the live state behind the status page (status_page;): every
 * WebSocket/upgrade tunnel open in any worker, the recent refused upgrades,
 * the recent reloads and what each worker saw of each upstream peer.
 *
 * Like core/stats.h it is one anonymous MAP_SHARED mapping made by the
 * first process before any fork (main.c), so every worker writes into, and
 * every worker reads, the same memory, and it outlives reloads (the master
 * keeps it, workers inherit it). Nothing is allocated afterwards: every table
 * is bounded, and a full table drops entries instead of failing traffic.
 *
 * Writers never lock:
 *  - a tunnel slot is claimed with a compare-and-swap of its pid (0 = free)
 *    and written only by the worker that owns the tunnel; the names are
 *    written under a sequence number (odd while they change) so a reader
 *    never shows a half-written slot; bytes and the last activity are plain
 *    relaxed atomics updated at each read of the relay. When all slots are
 *    taken a tunnel still works, it only counts in `unlisted`. Slots left by
 *    a worker that died are freed by the reader (kill(pid, 0) says ESRCH)
 *    and by the master when it reaps the worker (live_reap);
 *  - the refused-upgrade and reload rings take an entry with an atomic
 *    increment and write it under a sequence number;
 *  - a peer entry is found by hashing "group + address" into a fixed open
 *    addressed table; its counters are relaxed atomics (the latency average
 *    may lose a sample when two workers update it at once: it is a display).
 *
 * Times: tunnel times are CLOCK_MONOTONIC milliseconds (loop_now()), the
 * others CLOCK_REALTIME milliseconds (loop_wall_ms()).
 */
#ifndef SY_CORE_LIVE_H
#define SY_CORE_LIVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LIVE_TUNNELS 4096  /* tunnels listed one by one; more are counted only */
#define LIVE_REFUSED 64    /* recent refused upgrades kept */
#define LIVE_RELOADS 16    /* recent reloads kept */
#define LIVE_PEERS 512     /* upstream peers followed */

#define LIVE_NAME 96       /* server, location, upstream, peer, client (NUL included) */
#define LIVE_REASON 200    /* a refusal's reason, a failed reload's first error line */

/* Where a tunnel or a refused upgrade belongs (strings are truncated). */
struct live_route {
    const char *server;    /* the server's first name ("" none) */
    const char *location;  /* the location's pattern */
    const char *upstream;  /* the upstream group ("" none yet) */
    const char *peer;      /* the peer's address ("" none yet) */
    const char *client;    /* the client's address */
    unsigned http2;        /* the client came over HTTP/2 */
};

/* One listed tunnel as read (live_tunnels_read). */
struct live_tunnel_view {
    pid_t pid;
    uint64_t conn_id;
    uint64_t start_ms, last_ms;           /* monotonic */
    uint64_t bytes_up, bytes_down;        /* client->upstream, upstream->client */
    unsigned http2;
    char server[LIVE_NAME], location[LIVE_NAME], upstream[LIVE_NAME], peer[LIVE_NAME],
        client[LIVE_NAME];
};

struct live_refusal_view {
    uint64_t when_ms;                     /* wall clock */
    int status;                           /* the status the client got (0 unknown) */
    unsigned http2;
    char server[LIVE_NAME], location[LIVE_NAME], upstream[LIVE_NAME], peer[LIVE_NAME],
        client[LIVE_NAME], reason[LIVE_REASON];
};

struct live_reload_view {
    uint64_t when_ms;                     /* wall clock */
    uint64_t generation;                  /* the new generation's number (0 when it failed) */
    int ok;
    char message[LIVE_REASON];            /* the first error line when it failed */
};

struct live_peer_view {
    uint64_t ok, fails;                   /* answered tries, failed tries (all workers) */
    uint64_t latency_us;                  /* moving average of connect + response head */
    uint64_t last_ok_ms, last_fail_ms;    /* wall clock, 0 never */
    int seen;                             /* 0: no try recorded yet */
};

/* Map the shared tables (once, before forking). 0 or -1 (then each process
 * keeps its own tables, as stats_init()). */
int live_init(void);

/* ---- tunnels (written by the owning worker) */

/* List a new tunnel: its slot, or -1 when the table is full (counted in
 * the unlisted number until live_tunnel_close(-1)). */
int live_tunnel_open(const struct live_route *rt, uint64_t conn_id);

/* `n` bytes read from the client (dir 0) or the upstream (dir 1); also the
 * last activity. Slot -1 is ignored. */
void live_tunnel_bytes(int slot, int dir, uint64_t n);

/* The tunnel ended: its slot is free again (-1: one unlisted fewer). */
void live_tunnel_close(int slot);

/* Copy the listed tunnels into out[0..cap): their number. Frees slots of
 * dead processes on the way. *unlisted gets the count not listed. */
size_t live_tunnels_read(struct live_tunnel_view *out, size_t cap, uint64_t *unlisted);

/* The master reaped `pid`: free the slots it left. */
void live_reap(pid_t pid);

/* ---- refused upgrades, reloads */

/* An upgrade request that did not become a tunnel. */
void live_refused(const struct live_route *rt, int status, const char *reason);

/* Copy the kept refusals, newest first: their number (at most cap). */
size_t live_refused_read(struct live_refusal_view *out, size_t cap);

/* A reload was done (ok) or refused: `message` is the error text (only its
 * first line is kept), generation the new generation's number. */
void live_reload(int ok, uint64_t generation, const char *message);

size_t live_reloads_read(struct live_reload_view *out, size_t cap);

/* ---- upstream peers (any worker) */

/* A try of `peer` in `group` got a response head after latency_ms (connect
 * included). */
void live_peer_ok(const char *group, const char *peer, uint64_t latency_ms);

/* A try of `peer` failed (connect error, timeout, invalid answer). */
void live_peer_failed(const char *group, const char *peer);

/* What is known of a peer into *out (seen = 0 when nothing yet). */
void live_peer_get(const char *group, const char *peer, struct live_peer_view *out);

#endif
