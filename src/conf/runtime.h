/*
 * runtime.h - the worker-side companion of a configuration generation.
 *
 * A generation is immutable; what a worker must mutate per generation
 * (round-robin weights and failure counters of upstream peers, open
 * access-log fds, shared zones) lives in a struct gen_rt that wraps it.
 * Requests hold a reference to the gen_rt they started with (decision 8);
 * the worker holds one on the current one. The last release frees both.
 *
 * The upstream state belongs to the proxy layer (proxy/balance.h): this
 * layer only holds the pointer and calls the hooks a higher layer installed
 * (rt_set_hooks, done once at startup by proc/runtime.c) to build and free
 * it, so conf never includes proxy headers.
 */
#ifndef SY_CONF_RUNTIME_H
#define SY_CONF_RUNTIME_H

#include "conf/conf.h"
#include "core/log_file.h"

struct shm_zone;
struct upstream_rt;             /* proxy/balance.h */

struct gen_rt {
    struct generation *gen;     /* owned */
    unsigned refs;
    struct upstream_rt *ups;    /* [gen->http->nupstreams], owned (made and freed by the hooks) */
    struct log_file **logs;     /* [gen->nlog_paths], one reference each */
    struct shm_zone **zones;    /* [gen->http->nlimit_zones] limit_req/limit_conn zones,
                                   one reference each (core/shm_zone.h) */
    struct shm_zone **cache_zones; /* [gen->http->ncache_zones] proxy_cache_path keys zones,
                                   one reference each */
};

/*
 * What higher layers add to a runtime. `create` runs first in rt_create and
 * returns 0, or -1 when out of memory (rt_create then logs and fails);
 * `destroy` runs first in the last rt_release, also after a failed or
 * partial `create` (it must accept what `create` left half-built).
 */
struct rt_hooks {
    int (*create)(struct gen_rt *rt);
    void (*destroy)(struct gen_rt *rt);
};

/* Install the hooks (the pointer is kept; NULL removes them). Before any rt_create. */
void rt_set_hooks(const struct rt_hooks *hooks);

/*
 * Build the runtime for `gen` (takes ownership of gen): runs the create hook
 * (upstream state), opens access logs, attaches the shared zones of
 * limit_req_zone / limit_conn_zone (creating them, or in a worker under a
 * master, using those the master sent). Returns NULL on failure (gen is
 * freed, message logged).
 */
struct gen_rt *rt_create(struct generation *gen);

static inline struct gen_rt *rt_ref(struct gen_rt *rt)
{
    rt->refs++;
    return rt;
}

/* Drop a reference; frees the runtime and its generation at zero. Accepts NULL. */
void rt_release(struct gen_rt *rt);

/* The worker's current runtime (new connections use it). */
extern struct gen_rt *rt_current;

#endif
