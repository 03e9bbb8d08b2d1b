/*
 * limit_conn.c - the limit_conn phase (see limit_conn.h).
 *
 * A node per key with a count of requests in progress; the node goes when
 * its count is back to 0, so a zone holds only the keys active right now and
 * needs no eviction. Counts are taken and given back under the zone's lock.
 */
#include "http/limit_conn.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/shm_zone.h"
#include "http/stream.h"
#include "http/limit_req.h"
#include "http/vars_eval.h"
#include "conf/runtime.h"
#include "http/metrics_http.h"

/* Longest key nginx accepts for limit_conn; longer values are not limited. */
#define LIMIT_CONN_KEY_MAX 255

void limit_conn_release(struct limit_conn_holds *h)
{
    if (!h)
        return;
    for (unsigned i = 0; i < h->n; i++) {
        struct shm_zone *z = h->h[i].z;
        if (shm_zone_lock(z) >= 0) {
            /* A wiped zone (a process died holding its lock) voided the node. */
            struct zone_node *n = shm_zone_node_at(z, h->h[i].id, h->h[i].epoch);
            if (n && n->conns > 0 && --n->conns == 0)
                shm_zone_remove(z, n);
            shm_zone_unlock(z);
        }
        shm_zone_release(z);
    }
    free(h);
}

int limit_conn_check(struct client_stream *s)
{
    struct request *r = &s->req;
    const struct loc_conf *lc = r->lc;
    struct limit_conn_holds *h = NULL;
    for (unsigned i = 0; i < lc->nlimit_conns; i++) {
        const struct limit_conn_rule *rule = &lc->limit_conns[i];
        struct str key;
        if (tmpl_eval(s, &rule->zone->key, &key) < 0) {
            limit_conn_release(h);
            return 500;
        }
        if (key.len == 0)
            continue;
        if (key.len > LIMIT_CONN_KEY_MAX) {
            limit_log_long_key(s, rule->zone, LIMIT_CONN_KEY_MAX, &key);
            continue;
        }
        r->limit_conn_status = LIMIT_PASSED;
        if (!h) {
            h = calloc(1, sizeof(*h) + lc->nlimit_conns * sizeof(h->h[0]));
            if (!h)
                return 500;
        }
        struct shm_zone *z = r->rt->zones[rule->zone->index];
        struct zone_key k;
        shm_zone_make_key(key.p, key.len, &k);
        if (shm_zone_lock(z) < 0)
            continue; /* logged; a broken lock limits nothing */
        uint32_t hash = shm_zone_hash(z, &k);
        struct zone_node *n = shm_zone_find(z, hash, &k);
        int full = 0;
        if (!n) {
            n = shm_zone_insert(z, hash, &k);
            full = n == NULL;
        } else if (n->conns >= rule->conn) {
            n = NULL;
        }
        if (!n) {
            shm_zone_unlock(z);
            int dry = lc->limit_conn_dry_run;
            if (full) {
                sy_log(LOG_LVL_ALERT, "*%llu could not allocate node in limit_conn zone \"%s\"",
                       (unsigned long long)s->conn->id, rule->zone->name);
            } else if ((enum log_level)lc->limit_conn_log_level <= log_level_get()) {
                char ctx[1500];
                stream_log_ctx(s, ctx, sizeof(ctx));
                sy_log((enum log_level)lc->limit_conn_log_level,
                       "*%llu limiting connections%s by zone \"%s\"%s", (unsigned long long)s->conn->id,
                       dry ? ", dry run," : "", rule->zone->name, ctx);
            }
            /* nginx gives back what this request took from earlier rules */
            limit_conn_release(h);
            r->limit_conn_status = dry ? LIMIT_REJECTED_DRY_RUN : LIMIT_REJECTED;
            metrics_limit(MK_LIMIT_CONN, rule->zone->name, r->limit_conn_status);
            return dry ? 0 : lc->limit_conn_status;
        }
        n->conns++;
        metrics_limit(MK_LIMIT_CONN, rule->zone->name, LIMIT_PASSED);
        h->h[h->n].z = shm_zone_ref(z);
        h->h[h->n].id = shm_zone_node_id(z, n);
        h->h[h->n].epoch = shm_zone_epoch(z);
        h->n++;
        shm_zone_unlock(z);
    }
    r->limit_conn = h;
    return 0;
}
