/*
 * stats.h - connection and request counters shared by every process of an
 * instance (nginx's stub_status numbers): one page mapped before the
 * workers are forked, so every worker adds to the same counters, and they
 * survive reloads (the master keeps the page; new workers inherit it).
 *
 * active:  client connections open (HTTP/1, HTTP/2, and upgraded ones
 *          carried by a tunnel);
 * reading: HTTP/1 connections reading a request head;
 * writing: requests being processed (HTTP/1 and HTTP/2 streams, and
 *          tunnels), as nginx's "Writing";
 * waiting is active - reading - writing (idle keep-alive), at least 0.
 * A worker that dies leaves its share in active/reading/writing, as in
 * nginx.
 */
#ifndef SY_CORE_STATS_H
#define SY_CORE_STATS_H

#include <stdint.h>

struct sy_stats {
    uint64_t accepts;  /* connections accepted */
    uint64_t handled;  /* connections handled (= accepts: none are dropped at accept) */
    uint64_t requests; /* requests started */
    int64_t active;
    int64_t reading;
    int64_t writing;
};

/* The shared counters; points to a private zeroed struct until stats_init(). */
extern struct sy_stats *sy_stats;

/* Map the shared page (once, before forking). 0 or -1 (then counters stay
 * per process). */
int stats_init(void);

static inline void stats_add(int64_t *f, int64_t d)
{
    __atomic_fetch_add(f, d, __ATOMIC_RELAXED);
}

static inline void stats_inc(uint64_t *f)
{
    __atomic_fetch_add(f, 1, __ATOMIC_RELAXED);
}

static inline int64_t stats_get(const int64_t *f)
{
    return __atomic_load_n(f, __ATOMIC_RELAXED);
}

static inline uint64_t stats_getu(const uint64_t *f)
{
    return __atomic_load_n(f, __ATOMIC_RELAXED);
}

#endif
