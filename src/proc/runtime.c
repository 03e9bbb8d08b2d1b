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

struct gen_rt *rt_current;

static int open_log(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
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
        rt->log_fds = malloc(gen->nlog_paths * sizeof(int));
        if (!rt->log_fds)
            goto fail;
        for (unsigned i = 0; i < gen->nlog_paths; i++) {
            rt->log_fds[i] = open_log(gen->log_paths[i]);
            if (rt->log_fds[i] < 0)
                sy_log(LOG_LVL_ALERT, "open() \"%s\" failed (%d: %s)", gen->log_paths[i], errno,
                       strerror(errno));
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
        for (unsigned i = 0; i < rt->gen->http->nupstreams; i++)
            free(rt->ups[i].peers);
        free(rt->ups);
    }
    if (rt->log_fds) {
        for (unsigned i = 0; i < rt->gen->nlog_paths; i++)
            if (rt->log_fds[i] >= 0)
                close(rt->log_fds[i]);
        free(rt->log_fds);
    }
    gen_free(rt->gen);
    free(rt);
}

void rt_reopen_logs(struct gen_rt *rt)
{
    if (!rt || !rt->log_fds)
        return;
    for (unsigned i = 0; i < rt->gen->nlog_paths; i++) {
        int fd = open_log(rt->gen->log_paths[i]);
        if (fd < 0)
            continue;
        if (rt->log_fds[i] >= 0) {
            dup2(fd, rt->log_fds[i]);
            close(fd);
        } else {
            rt->log_fds[i] = fd;
        }
    }
}
