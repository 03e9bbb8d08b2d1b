/*
 * runtime.h - the worker-side companion of a configuration generation.
 *
 * A generation is immutable; what a worker must mutate per generation
 * (round-robin weights and failure counters of upstream peers, open
 * access-log fds) lives in a struct gen_rt that wraps it. Requests hold a
 * reference to the gen_rt they started with (decision 8); the worker holds
 * one on the current one. The last release frees both.
 */
#ifndef SY_PROC_RUNTIME_H
#define SY_PROC_RUNTIME_H

#include <stdint.h>

#include "conf/conf.h"

struct peer_rt {
    int64_t current_weight;     /* smooth weighted round robin state */
    int64_t effective_weight;
    unsigned fails;             /* failures within fail_timeout */
    uint64_t checked_ms;        /* when the failure window started */
    unsigned conns;             /* active connections (least_conn later) */
};

struct upstream_rt {
    struct peer_rt *peers;      /* [upstream->npeers] */
};

struct gen_rt {
    struct generation *gen;     /* owned */
    unsigned refs;
    struct upstream_rt *ups;    /* [gen->http->nupstreams], owned */
    int *log_fds;               /* [gen->nlog_paths], owned fds (-1 when failed) */
};

/*
 * Build the runtime for `gen` (takes ownership of gen): opens access logs.
 * Returns NULL on failure (gen is freed, message logged).
 */
struct gen_rt *rt_create(struct generation *gen);

static inline struct gen_rt *rt_ref(struct gen_rt *rt)
{
    rt->refs++;
    return rt;
}

/* Drop a reference; frees the runtime and its generation at zero. Accepts NULL. */
void rt_release(struct gen_rt *rt);

/* Reopen every access log of `rt` (SIGUSR1). */
void rt_reopen_logs(struct gen_rt *rt);

/* The worker's current runtime (new connections use it). */
extern struct gen_rt *rt_current;

#endif
