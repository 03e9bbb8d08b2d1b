/*
 * dyn_upstream.h - upstream groups for a `proxy_pass` with variables whose
 * host is not an upstream{} name (nginx's resolved and IP-literal peers):
 * `set $up 127.0.0.1:3000; proxy_pass http://$up;` and the docker-compose
 * pattern `resolver 127.0.0.11 valid=30s; set $app app:3000; proxy_pass
 * http://$app;`.
 *
 * Each distinct "host:port" gets a group of its own (one peer per address,
 * round robin, no keep-alive pool), cached per worker: an IP literal for
 * the generation's life, a name for `resolver ... valid=` (else the DNS
 * TTL, at least 1 s). Names are looked up with the configured `resolver`
 * servers (UDP DNS, A and, with ipv6=on, AAAA records; resolver_timeout);
 * requests for a name being looked up wait together. At most
 * DYN_UPSTREAM_MAX groups: past that, the least recently used idle one
 * goes (a request's group is held until the request lets it go).
 */
#ifndef SY_PROXY_DYN_UPSTREAM_H
#define SY_PROXY_DYN_UPSTREAM_H

#include "conf/conf.h"
#include "core/str.h"

#define DYN_UPSTREAM_MAX 256

struct dyn_upstream;
struct proxy_balance_rt;
struct upstream_rt;

/* Called when a lookup ends: `d` ready (NULL: failed, `err` says why, as
 * nginx: "could not be resolved (3: Host not found)"). */
typedef void dyn_upstream_cb(void *ctx, struct dyn_upstream *d, const char *err);

struct dyn_wait; /* a request waiting for a lookup (opaque) */

/*
 * The group for `hostport` (host[:port], port defaulting to `defport`)
 * with the resolver settings of `lc`: 0 with *out held (ready), 1 when a
 * lookup runs (cb(ctx, ...) will run from the loop; *wait lets the caller
 * cancel), -1 with *err set (no resolver, invalid host, out of memory).
 */
int dyn_upstream_get(const struct loc_conf *lc, struct str hostport, unsigned defport,
                     struct dyn_upstream **out, dyn_upstream_cb *cb, void *ctx,
                     struct dyn_wait **wait, const char **err);

/* Stop waiting (the request went away); the lookup itself goes on. */
void dyn_upstream_cancel(struct dyn_wait *w);

/* The group's conf and per-worker state. */
const struct upstream_conf *dyn_upstream_conf(struct dyn_upstream *d);
struct upstream_rt *dyn_upstream_rt(struct dyn_upstream *d);

/* The request is done with `d` (NULL: nothing). */
void dyn_upstream_put(struct dyn_upstream *d);

/* Free every group and lookup (worker exit). */
void dyn_upstream_release_all(void);

#endif
