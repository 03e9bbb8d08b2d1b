/*
 * runtime.c - worker-side per-generation state (see runtime.h).
 */
#include "conf/runtime.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/shm_zone.h"
#include "core/metrics.h"

struct gen_rt *rt_current;

static const struct rt_hooks *hooks;

void rt_set_hooks(const struct rt_hooks *h)
{
    hooks = h;
}

struct gen_rt *rt_create(struct generation *gen)
{
    struct gen_rt *rt = calloc(1, sizeof(*rt));
    if (!rt)
        goto fail;
    rt->gen = gen;
    rt->refs = 1;
    METRICS_FIXED_ADD(gens_alive, 1);
    if (hooks && hooks->create && hooks->create(rt) != 0)
        goto fail;
    if (gen->nlog_paths) {
        rt->logs = calloc(gen->nlog_paths, sizeof(*rt->logs));
        if (!rt->logs)
            goto fail;
        for (unsigned i = 0; i < gen->nlog_paths; i++)
            if (!(rt->logs[i] = log_file_get(gen->log_paths[i])))
                goto fail;
    }
    if (gen->http && gen->http->nlimit_zones) {
        rt->zones = calloc(gen->http->nlimit_zones, sizeof(*rt->zones));
        if (!rt->zones)
            goto fail;
        for (unsigned i = 0; i < gen->http->nlimit_zones; i++) {
            const struct limit_zone *z = gen->http->limit_zones[i];
            rt->zones[i] = shm_zone_attach(z->name, z->size, z->kind,
                                           shm_zone_key_id(z->key.raw.p, z->key.raw.len));
            if (!rt->zones[i]) {
                rt->refs = 1;
                rt_release(rt);
                return NULL; /* logged */
            }
        }
    }
    if (gen->http && gen->http->ncache_zones) {
        rt->cache_zones = calloc(gen->http->ncache_zones, sizeof(*rt->cache_zones));
        if (!rt->cache_zones)
            goto fail;
        for (unsigned i = 0; i < gen->http->ncache_zones; i++) {
            const struct cache_zone *z = gen->http->cache_zones[i];
            /* the same name, size and directory keep the zone (and its index) */
            rt->cache_zones[i] = shm_zone_attach(z->name, z->size, SHM_ZONE_CACHE,
                                                 shm_zone_key_id(z->path, strlen(z->path)));
            if (!rt->cache_zones[i]) {
                rt->refs = 1;
                rt_release(rt);
                return NULL; /* logged */
            }
        }
    }
    return rt;
fail:
    sy_log(LOG_LVL_EMERG, "out of memory creating the configuration runtime");
    if (rt) {
        rt->refs = 1;
        rt_release(rt);
    } else {
        gen_free(gen);
    }
    return NULL;
}

void rt_release(struct gen_rt *rt)
{
    if (!rt || --rt->refs > 0)
        return;
    METRICS_FIXED_ADD(gens_alive, -1);
    if (hooks && hooks->destroy)
        hooks->destroy(rt);
    if (rt->logs) {
        for (unsigned i = 0; i < rt->gen->nlog_paths; i++)
            log_file_put(rt->logs[i]);
        free(rt->logs);
    }
    if (rt->zones) {
        for (unsigned i = 0; i < rt->gen->http->nlimit_zones; i++)
            shm_zone_release(rt->zones[i]);
        free(rt->zones);
    }
    if (rt->cache_zones) {
        for (unsigned i = 0; i < rt->gen->http->ncache_zones; i++)
            shm_zone_release(rt->cache_zones[i]);
        free(rt->cache_zones);
    }
    gen_free(rt->gen);
    free(rt);
}
