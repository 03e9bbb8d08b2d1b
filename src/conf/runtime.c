/*
 * runtime.c - worker-side per-generation state (see runtime.h).
 */
#include "conf/runtime.h"

#include <stdlib.h>

#include "core/log.h"
#include "core/shm_zone.h"

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
    gen_free(rt->gen);
    free(rt);
}
