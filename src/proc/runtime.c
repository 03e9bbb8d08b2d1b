/*
 * runtime.c - worker-side per-generation state (see runtime.h).
 */
#include "proc/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/shm_zone.h"
#include "proxy/balance.h"
#include "tls/tls.h"

struct gen_rt *rt_current;

static struct log_file *log_files;

struct log_file *log_file_get(const char *path)
{
    for (struct log_file *lf = log_files; lf; lf = lf->next)
        if (strcmp(lf->path, path) == 0)
            return log_file_ref(lf);
    struct log_file *lf = calloc(1, sizeof(*lf));
    if (!lf)
        return NULL;
    lf->path = strdup(path);
    if (!lf->path) {
        free(lf);
        return NULL;
    }
    lf->fd = log_open_file(path);
    if (lf->fd < 0)
        sy_log(LOG_LVL_ALERT, "open() \"%s\" failed (%d: %s)", path, errno, strerror(errno));
    lf->refs = 1;
    lf->next = log_files;
    log_files = lf;
    return lf;
}

void log_file_put(struct log_file *lf)
{
    if (!lf || --lf->refs > 0)
        return;
    for (struct log_file **pp = &log_files; *pp; pp = &(*pp)->next)
        if (*pp == lf) {
            *pp = lf->next;
            break;
        }
    if (lf->fd >= 0)
        close(lf->fd);
    free(lf->path);
    free(lf);
}

void log_files_reopen(void)
{
    for (struct log_file *lf = log_files; lf; lf = lf->next) {
        int fd = log_open_file(lf->path);
        if (fd < 0)
            continue;
        if (lf->fd >= 0) {
            dup2(fd, lf->fd);
            close(fd);
        } else {
            lf->fd = fd;
        }
    }
}

struct gen_rt *rt_create(struct generation *gen)
{
    struct gen_rt *rt = calloc(1, sizeof(*rt));
    if (!rt)
        goto fail;
    rt->gen = gen;
    rt->refs = 1;
    if (gen->http && gen->http->nupstreams) {
        rt->ups = calloc(gen->http->nupstreams, sizeof(*rt->ups));
        if (!rt->ups)
            goto fail;
        for (unsigned i = 0; i < gen->http->nupstreams; i++) {
            const struct upstream_conf *u = gen->http->upstreams[i];
            rt->ups[i].peers = calloc(u->npeers ? u->npeers : 1, sizeof(struct peer_rt));
            if (!rt->ups[i].peers)
                goto fail;
            for (unsigned j = 0; j < u->npeers; j++)
                rt->ups[i].peers[j].effective_weight = u->peers[j].weight;
        }
    }
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
    if (rt->ups) {
        for (unsigned i = 0; i < rt->gen->http->nupstreams; i++) {
            if (rt->ups[i].peers)
                for (unsigned j = 0; j < rt->gen->http->upstreams[i]->npeers; j++)
                    tls_session_free(rt->ups[i].peers[j].ssl_session);
            free(rt->ups[i].peers);
            balance_rt_free(&rt->ups[i]);
        }
        free(rt->ups);
    }
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
