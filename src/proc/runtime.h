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
    unsigned fails;             /* failures counted (nginx's peer->fails) */
    uint64_t accessed_ms;       /* last failure (nginx's peer->accessed) */
    uint64_t checked_ms;        /* last failure or fail_timeout probe (peer->checked) */
    unsigned *load;             /* this worker's active connections to the peer, shared by
                                   every generation (upstream_peer_load); NULL until used */
    void *ssl_session;          /* SSL_SESSION * of the last TLS connection (owned), for
                                   proxy_ssl_session_reuse; NULL none */
    const void *ssl_session_ctx;/* the SSL_CTX it was made with */
};

struct ring_point;
struct upstream_rt {
    struct peer_rt *peers;      /* [upstream->npeers] */
    struct ring_point *ring;    /* hash ... consistent: the ring, built at first use */
    unsigned nring;
    uint64_t rng;               /* random: generator state */
};

/*
 * An open access-log file, shared by every generation (and tunnel) that
 * writes to the same path, so a reload reuses the fd and a tunnel outliving
 * its generation can still log its end.
 */
struct log_file {
    char *path;                 /* owned */
    int fd;                     /* -1 when the open failed */
    unsigned refs;
    struct log_file *next;
};

/* Find or open the log file at `path`, taking a reference. NULL on allocation failure. */
struct log_file *log_file_get(const char *path);
static inline struct log_file *log_file_ref(struct log_file *lf)
{
    lf->refs++;
    return lf;
}
/* Drop a reference; closes the fd at zero. Accepts NULL. */
void log_file_put(struct log_file *lf);
/* Reopen every open log file (SIGUSR1). */
void log_files_reopen(void);

struct shm_zone;

struct gen_rt {
    struct generation *gen;     /* owned */
    unsigned refs;
    struct upstream_rt *ups;    /* [gen->http->nupstreams], owned */
    struct log_file **logs;     /* [gen->nlog_paths], one reference each */
    struct shm_zone **zones;    /* [gen->http->nlimit_zones] limit_req/limit_conn zones,
                                   one reference each (core/shm_zone.h) */
};

/*
 * Build the runtime for `gen` (takes ownership of gen): opens access logs,
 * attaches the shared zones of limit_req_zone / limit_conn_zone (creating
 * them, or in a worker under a master, using those the master sent).
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


/* The worker's current runtime (new connections use it). */
extern struct gen_rt *rt_current;

#endif
