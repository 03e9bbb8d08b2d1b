/*
 * limit_req.c - the limit_req phase (see limit_req.h).
 *
 * With several limit_req rules the order of work is nginx's: every rule but
 * the last only looks its key up (creating the node, checking the burst);
 * the last one also stores its new level; if some rule rejects, nothing else
 * is stored. When all pass, the earlier rules store theirs and the longest
 * of all the delays wins. Each step holds one zone's lock for a few hundred
 * nanoseconds; nothing blocks: a delayed request waits on its session's
 * timer (h1_server.c, state H1_S_LIMIT_DELAY).
 */
#include "http/limit_req.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/shm_zone.h"
#include "http/stream.h"
#include "http/vars_eval.h"
#include "conf/runtime.h"
#include "http/metrics_http.h"

/* Longest key nginx accepts for limit_req; longer values are not limited. */
#define LIMIT_REQ_KEY_MAX 65535

/* A key not used for 60 s whose bucket has drained may be evicted. */
#define LIMIT_REQ_IDLE_MS 60000

/* limit_req_check's summary before any rule ran. */
#define LR_DECLINED 0
#define LR_AGAIN LIMIT_REQ_AGAIN
#define LR_OK LIMIT_REQ_OK
#define LR_BUSY LIMIT_REQ_BUSY
#define LR_ERROR LIMIT_REQ_ERROR

const char *limit_status_name(unsigned st)
{
    static const char *const names[] = {NULL, "PASSED", "DELAYED", "REJECTED", "DELAYED_DRY_RUN",
                                        "REJECTED_DRY_RUN"};
    return st < sizeof(names) / sizeof(names[0]) ? names[st] : NULL;
}

int64_t limit_req_elapsed(uint64_t now, uint64_t last)
{
    int64_t ms = (int64_t)(now - last);
    if (ms < -60000)
        return 1;
    return ms < 0 ? 0 : ms;
}

int64_t limit_req_excess(int64_t excess, uint64_t rate, int64_t elapsed_ms)
{
    /* rate <= 2^32 * 1000 and a drained amount above 2^62 means "all of it" */
    uint64_t drained = (uint64_t)elapsed_ms > (UINT64_C(1) << 62) / (rate ? rate : 1)
                           ? UINT64_C(1) << 62
                           : rate * (uint64_t)elapsed_ms / 1000;
    int64_t e = excess - (int64_t)drained + 1000;
    return e < 0 ? 0 : e;
}

uint64_t limit_req_delay_ms(int64_t excess, uint64_t delay, uint64_t rate)
{
    if (excess <= 0 || (uint64_t)excess <= delay || rate == 0)
        return 0;
    return ((uint64_t)excess - delay) * 1000 / rate;
}

/*
 * Make room: remove up to 2 least recently used keys idle for a minute whose
 * bucket has drained; with `force`, first remove the oldest key whatever its
 * state (the zone is full). nginx's ngx_http_limit_req_expire().
 */
static void expire(struct shm_zone *z, uint64_t rate, uint64_t now, int force)
{
    for (int i = force ? 0 : 1; i < 3; i++) {
        struct zone_node *n = shm_zone_oldest(z);
        if (!n)
            return;
        if (i != 0) {
            int64_t ms = (int64_t)(now - n->last_ms);
            if (ms < 0)
                ms = -ms;
            if (ms < LIMIT_REQ_IDLE_MS)
                return;
            if (limit_req_excess(n->excess, rate, ms) - 1000 > 0)
                return;
        }
        shm_zone_remove(z, n);
    }
}

/* A node for a key seen for the first time (level 0). NULL when full. */
static struct zone_node *new_node(struct shm_zone *z, uint32_t hash, const struct zone_key *k,
                                  uint64_t rate, uint64_t now)
{
    expire(z, rate, now, 0);
    struct zone_node *n = shm_zone_insert(z, hash, k);
    if (!n) {
        expire(z, rate, now, 1);
        n = shm_zone_insert(z, hash, k);
    }
    if (n) {
        n->excess = 0;
        n->last_ms = now;
    }
    return n;
}

int limit_req_lookup(struct shm_zone *z, const struct limit_req_rule *rule,
                     const struct zone_key *k, uint64_t now, int account, int64_t *ep)
{
    uint64_t rate = rule->zone->rate;
    uint32_t hash = shm_zone_hash(z, k);
    struct zone_node *n = shm_zone_find(z, hash, k);
    if (n) {
        int64_t ms = limit_req_elapsed(now, n->last_ms);
        int64_t excess = limit_req_excess(n->excess, rate, ms);
        *ep = excess;
        if ((uint64_t)excess > rule->burst)
            return LR_BUSY;
        if (!account)
            return LR_AGAIN;
        n->excess = excess;
        if (ms)
            n->last_ms = now;
        return LR_OK;
    }
    *ep = 0;
    if (!new_node(z, hash, k, rate, now))
        return LR_ERROR;
    return account ? LR_OK : LR_AGAIN;
}

/* Store the new level of an earlier rule that passed; its excess. */
static int64_t account(struct shm_zone *z, const struct limit_req_rule *rule,
                       const struct zone_key *k, uint64_t now)
{
    uint64_t rate = rule->zone->rate;
    uint32_t hash = shm_zone_hash(z, k);
    struct zone_node *n = shm_zone_find(z, hash, k);
    if (!n && !(n = new_node(z, hash, k, rate, now)))
        return 0; /* evicted meanwhile and the zone is full: nothing to store */
    int64_t ms = limit_req_elapsed(now, n->last_ms);
    int64_t excess = limit_req_excess(n->excess, rate, ms);
    if (ms)
        n->last_ms = now;
    n->excess = excess;
    return excess;
}

/* A rule whose key was looked up. */
struct looked {
    struct shm_zone *z;         /* NULL: the rule did not apply (empty key) */
    struct zone_key key;
};

static void log_line(struct client_stream *s, enum log_level lvl, const char *what, int dry_run,
                     int64_t excess, const char *comma, const struct limit_zone *zone)
{
    if (lvl > log_level_get())
        return;
    char ctx[1500];
    stream_log_ctx(s, ctx, sizeof(ctx));
    sy_log(lvl, "*%llu %s%s, excess: %llu.%03llu%s by zone \"%s\"%s", (unsigned long long)s->conn->id,
           what, dry_run ? ", dry run" : "", (unsigned long long)(excess / 1000),
           (unsigned long long)(excess % 1000), comma, zone->name, ctx);
}

int limit_req_check(struct client_stream *s, uint64_t *delay_ms)
{
    struct request *r = &s->req;
    const struct loc_conf *lc = r->lc;
    unsigned nrules = lc->nlimit_reqs;
    struct looked *lk = arena_calloc(&r->arena, nrules * sizeof(*lk));
    *delay_ms = 0;
    if (!lk)
        return 500;
    uint64_t now = loop_now();
    int rc = LR_DECLINED;
    int64_t excess = 0;
    const struct limit_req_rule *lim = NULL;
    unsigned n;
    for (n = 0; n < nrules; n++) {
        const struct limit_req_rule *rule = &lc->limit_reqs[n];
        struct str key;
        if (tmpl_eval(s, &rule->zone->key, &key) < 0)
            return 500;
        if (key.len == 0)
            continue;
        if (key.len > LIMIT_REQ_KEY_MAX) {
            limit_log_long_key(s, rule->zone, LIMIT_REQ_KEY_MAX, &key);
            continue;
        }
        struct shm_zone *z = r->rt->zones[rule->zone->index];
        shm_zone_make_key(key.p, key.len, &lk[n].key);
        if (shm_zone_lock(z) < 0)
            continue; /* logged; a broken lock limits nothing */
        rc = limit_req_lookup(z, rule, &lk[n].key, now, n == nrules - 1, &excess);
        shm_zone_unlock(z);
        lk[n].z = z;
        lim = rule;
        if (rc != LR_AGAIN)
            break;
    }
    if (rc == LR_DECLINED)
        return 0;
    int dry = lc->limit_req_dry_run;
    if (rc == LR_BUSY || rc == LR_ERROR) {
        if (rc == LR_BUSY)
            log_line(s, (enum log_level)lc->limit_req_log_level, "limiting requests", dry, excess,
                     "", lim->zone);
        else
            sy_log(LOG_LVL_ALERT, "*%llu could not allocate node in limit_req zone \"%s\"",
                   (unsigned long long)s->conn->id, lim->zone->name);
        r->limit_req_status = dry ? LIMIT_REJECTED_DRY_RUN : LIMIT_REJECTED;
        metrics_limit(MK_LIMIT_REQ, lim->zone->name, r->limit_req_status);
        return dry ? 0 : lc->limit_req_status;
    }
    if (rc == LR_AGAIN)
        excess = 0; /* the last rules had empty keys: only earlier ones count */
    uint64_t max_delay = limit_req_delay_ms(excess, lim->delay, lim->zone->rate);
    while (n-- > 0) {
        if (!lk[n].z)
            continue;
        const struct limit_req_rule *rule = &lc->limit_reqs[n];
        if (shm_zone_lock(lk[n].z) < 0)
            continue;
        int64_t e = account(lk[n].z, rule, &lk[n].key, now);
        shm_zone_unlock(lk[n].z);
        uint64_t d = limit_req_delay_ms(e, rule->delay, rule->zone->rate);
        if (d > max_delay) {
            max_delay = d;
            excess = e;
            lim = rule;
        }
    }
    if (!max_delay) {
        r->limit_req_status = LIMIT_PASSED;
        metrics_limit(MK_LIMIT_REQ, lim->zone->name, r->limit_req_status);
        return 0;
    }
    /* nginx logs delays one level below rejections (info stays info) */
    enum log_level lvl = (enum log_level)lc->limit_req_log_level;
    log_line(s, lvl == LOG_LVL_INFO ? LOG_LVL_INFO : lvl + 1, "delaying request", dry, excess, ",",
             lim->zone);
    r->limit_req_status = dry ? LIMIT_DELAYED_DRY_RUN : LIMIT_DELAYED;
    metrics_limit(MK_LIMIT_REQ, lim->zone->name, r->limit_req_status);
    if (!dry)
        *delay_ms = max_delay;
    return 0;
}

void limit_log_long_key(struct client_stream *s, const struct limit_zone *z, int max,
                        const struct str *key)
{
    char ctx[1500];
    stream_log_ctx(s, ctx, sizeof(ctx));
    sy_log(LOG_LVL_ERR, "*%llu the value of the \"%.*s\" key is more than %d bytes: "
           "\"%.*s...\"%s", (unsigned long long)s->conn->id, (int)z->key.raw.len, z->key.raw.p, max,
           64, key->p, ctx);
}
