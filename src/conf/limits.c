/*
 * limits.c - configuration of limit_req / limit_conn (see limits.h).
 *
 * Zones are http-level objects (http_conf.limit_zones). A `limit_req` or
 * `limit_conn` may name a zone declared further down the file, as in nginx:
 * the first reference creates the zone with size 0 and the declaration
 * fills it in; a zone still of size 0 at the end of http{} was never
 * declared (limits_finish). Messages follow nginx's wording.
 */
#include "conf/limits.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/shm_zone.h"

#define OOM(p) conf_err((p), "out of memory")

static const char *kind_directive(unsigned kind)
{
    return kind == LIMIT_ZONE_REQ ? "limit_req_zone" : "limit_conn_zone";
}

static struct limit_zone *find_zone(struct http_conf *hc, const char *name, size_t len)
{
    for (unsigned i = 0; i < hc->nlimit_zones; i++)
        if (strlen(hc->limit_zones[i]->name) == len &&
            memcmp(hc->limit_zones[i]->name, name, len) == 0)
            return hc->limit_zones[i];
    return NULL;
}

/* Append to an arena array grown by doubling (capacity is implicit: 4, 8, ...). */
static void *grow(struct arena *a, void *arr, unsigned n, size_t sz)
{
    if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
        return arr;
    unsigned cap = n == 0 ? 4 : n * 2;
    void *na = arena_alloc(a, (size_t)cap * sz);
    if (na && n)
        memcpy(na, arr, (size_t)n * sz);
    return na;
}

static struct limit_zone *new_zone(struct conf_parser *p, const char *name, size_t len,
                                   unsigned kind)
{
    struct http_conf *hc = p->g->http;
    struct limit_zone **arr = grow(p->a, hc->limit_zones, hc->nlimit_zones, sizeof(*arr));
    struct limit_zone *z = arena_calloc(p->a, sizeof(*z));
    if (!arr || !z || !(z->name = arena_strndup(p->a, name, len)))
        return NULL;
    hc->limit_zones = arr;
    z->kind = kind;
    z->index = hc->nlimit_zones;
    z->file = p->node->file;
    z->line = p->node->end_line ? p->node->end_line : p->node->line;
    hc->limit_zones[hc->nlimit_zones++] = z;
    return z;
}

/* nginx's ngx_parse_size: digits with an optional k/K/m/M suffix. -1 when invalid. */
static int parse_size(const char *s, uint64_t *out)
{
    size_t len = strlen(s);
    uint64_t mult = 1;
    if (len && (s[len - 1] == 'k' || s[len - 1] == 'K'))
        mult = 1024, len--;
    else if (len && (s[len - 1] == 'm' || s[len - 1] == 'M'))
        mult = 1024 * 1024, len--;
    uint64_t v;
    if (len == 0 || str_to_u64((struct str){s, len}, (UINT64_MAX / 4) / mult, &v) != 0)
        return -1;
    *out = v * mult;
    return 0;
}

/* zone=name:size of a *_zone directive, then the zone itself (declared). */
static const char *declare_zone(struct conf_parser *p, const char *v, unsigned kind,
                                struct limit_zone **out)
{
    const char *name = v + 5;
    const char *colon = strchr(name, ':');
    if (!colon)
        return conf_err(p, "invalid zone size \"%s\"", v);
    if (colon == name)
        return conf_err(p, "\"%s\" must have \"zone\" parameter", p->node->name);
    size_t nlen = (size_t)(colon - name);
    uint64_t size;
    if (parse_size(colon + 1, &size) != 0)
        return conf_err(p, "invalid zone size \"%s\"", v);
    if (size < 8 * (uint64_t)sysconf(_SC_PAGESIZE))
        return conf_err(p, "zone \"%s\" is too small", v);
    if (nlen > SHM_ZONE_NAME_MAX)
        return conf_err(p, "zone name \"%.*s\" is too long", (int)nlen, name);
    struct limit_zone *z = find_zone(p->g->http, name, nlen);
    if (z && z->size && z->size != size)
        return conf_err(p, "the size %llu of shared memory zone \"%s\" conflicts with already "
                        "declared size %llu", (unsigned long long)size, z->name,
                        (unsigned long long)z->size);
    if (z && z->kind != kind)
        return conf_err(p, "the shared memory zone \"%s\" is already declared for a different use",
                        z->name);
    if (z && z->size)
        return conf_err(p, "%s \"%s\" is already bound to key \"%.*s\"", kind_directive(kind),
                        z->name, (int)z->key.raw.len, z->key.raw.p);
    if (!z && !(z = new_zone(p, name, nlen, kind)))
        return OOM(p);
    z->size = size;
    z->file = p->node->file;
    z->line = p->node->end_line ? p->node->end_line : p->node->line;
    const char *e = NULL;
    if (tmpl_compile(&z->key, &p->g->vars, p->a, str_from_cstr(p->node->args[0]), &e) != 0)
        return conf_err(p, "%s", e ? e : "invalid key");
    *out = z;
    return NULL;
}

/* The zone a limit_req / limit_conn names (created undeclared if unknown yet). */
static const char *use_zone(struct conf_parser *p, const char *name, size_t len, unsigned kind,
                            const struct limit_zone **out)
{
    struct limit_zone *z = find_zone(p->g->http, name, len);
    if (z && z->kind != kind)
        return conf_err(p, "the shared memory zone \"%s\" is already declared for a different use",
                        z->name);
    if (!z && !(z = new_zone(p, name, len, kind)))
        return OOM(p);
    *out = z;
    return NULL;
}

const char *limits_set_req_zone(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    struct limit_zone *z = NULL;
    uint64_t rate = 0;
    for (unsigned i = 1; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        if (strncmp(v, "zone=", 5) == 0) {
            if (z)
                return conf_err(p, "invalid parameter \"%s\"", v);
            const char *rv = declare_zone(p, v, LIMIT_ZONE_REQ, &z);
            if (rv)
                return rv;
        } else if (strncmp(v, "rate=", 5) == 0) {
            /* N r/s or N r/m, stored in milli-requests per second (nginx) */
            size_t len = strlen(v + 5);
            uint64_t n, scale = 0;
            if (len > 3 && strcmp(v + 5 + len - 3, "r/s") == 0)
                scale = 1;
            else if (len > 3 && strcmp(v + 5 + len - 3, "r/m") == 0)
                scale = 60;
            if (!scale || str_to_u64((struct str){v + 5, len - 3}, UINT32_MAX, &n) != 0 ||
                n == 0)
                return conf_err(p, "invalid rate \"%s\"", v);
            rate = n * 1000 / scale;
        } else {
            return conf_err(p, "invalid parameter \"%s\"", v);
        }
    }
    if (!z)
        return conf_err(p, "\"%s\" must have \"zone\" parameter", p->node->name);
    if (!rate)
        return conf_err(p, "\"%s\" must have \"rate\" parameter", p->node->name);
    z->rate = rate;
    return NULL;
}

const char *limits_set_conn_zone(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    const char *v = p->node->args[1];
    if (strncmp(v, "zone=", 5) != 0)
        return conf_err(p, "\"%s\" must have \"zone\" parameter", p->node->name);
    struct limit_zone *z;
    return declare_zone(p, v, LIMIT_ZONE_CONN, &z);
}

static int64_t number(const char *s)
{
    uint64_t v;
    if (str_to_u64(str_from_cstr(s), INT32_MAX, &v) != 0)
        return -1;
    return (int64_t)v;
}

const char *limits_set_req(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    const struct limit_zone *z = NULL;
    int64_t burst = 0, delay = 0;
    int nodelay = 0;
    for (unsigned i = 0; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        if (strncmp(v, "zone=", 5) == 0) {
            if (!v[5])
                return conf_err(p, "\"%s\" must have \"zone\" parameter", p->node->name);
            const char *rv = use_zone(p, v + 5, strlen(v + 5), LIMIT_ZONE_REQ, &z);
            if (rv)
                return rv;
        } else if (strncmp(v, "burst=", 6) == 0) {
            if ((burst = number(v + 6)) < 0)
                return conf_err(p, "invalid burst value \"%s\"", v);
        } else if (strncmp(v, "delay=", 6) == 0) {
            if ((delay = number(v + 6)) < 0)
                return conf_err(p, "invalid delay value \"%s\"", v);
        } else if (strcmp(v, "nodelay") == 0) {
            nodelay = 1;
        } else {
            return conf_err(p, "invalid parameter \"%s\"", v);
        }
    }
    if (!z)
        return conf_err(p, "\"%s\" must have \"zone\" parameter", p->node->name);
    for (unsigned i = 0; i < lc->nlimit_reqs; i++)
        if (lc->limit_reqs[i].zone == z)
            return "is duplicate";
    struct limit_req_rule *arr = grow(p->a, lc->limit_reqs, lc->nlimit_reqs, sizeof(*arr));
    if (!arr)
        return OOM(p);
    lc->limit_reqs = arr;
    struct limit_req_rule *r = &arr[lc->nlimit_reqs++];
    r->zone = z;
    r->burst = (uint64_t)burst * 1000;
    r->delay = nodelay ? UINT64_MAX : (uint64_t)delay * 1000;
    return NULL;
}

const char *limits_set_conn(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    const char *name = p->node->args[0];
    const struct limit_zone *z;
    const char *rv = use_zone(p, name, strlen(name), LIMIT_ZONE_CONN, &z);
    if (rv)
        return rv;
    int64_t n = number(p->node->args[1]);
    if (n <= 0)
        return conf_err(p, "invalid number of connections \"%s\"", p->node->args[1]);
    if (n > 65535)
        return conf_err(p, "connection limit must be less 65536");
    for (unsigned i = 0; i < lc->nlimit_conns; i++)
        if (lc->limit_conns[i].zone == z)
            return "is duplicate";
    struct limit_conn_rule *arr = grow(p->a, lc->limit_conns, lc->nlimit_conns, sizeof(*arr));
    if (!arr)
        return OOM(p);
    lc->limit_conns = arr;
    arr[lc->nlimit_conns].zone = z;
    arr[lc->nlimit_conns].conn = (unsigned)n;
    lc->nlimit_conns++;
    return NULL;
}

const char *limits_set_status(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    int *f = strcmp(p->node->name, "limit_req_status") == 0 ? &lc->limit_req_status
                                                            : &lc->limit_conn_status;
    if (*f != CONF_UNSET)
        return "is duplicate";
    int64_t v = number(p->node->args[0]);
    if (v < 400 || v > 599)
        return conf_err(p, "value must be between 400 and 599");
    *f = (int)v;
    return NULL;
}

int limits_finish(struct conf_parser *p)
{
    struct http_conf *hc = p->g->http;
    for (unsigned i = 0; i < hc->nlimit_zones; i++) {
        const struct limit_zone *z = hc->limit_zones[i];
        /* nginx: "zero size shared memory zone", without a location */
        if (!z->size)
            return conf_err_at(p, z->file, z->line, "unknown %s \"%s\"", kind_directive(z->kind),
                               z->name);
    }
    return 0;
}
