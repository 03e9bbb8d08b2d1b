/*
 * cache.c - the proxy cache directives (cache.h), checked as nginx checks
 * them, with nginx's messages.
 */
#include "conf/cache.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "conf/parse.h"
#include "conf/directive_table.h"
#include "conf/vars.h"
#include "core/shm_zone.h"

#define OOM(p) conf_err((p), "out of memory")

void cache_conf_init(struct cache_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->on = CONF_UNSET;
    c->valid = CONF_UNSET_PTR;
    c->min_uses = CONF_UNSET;
    c->bypass = CONF_UNSET_PTR;
    c->no_cache = CONF_UNSET_PTR;
    c->background_update = CONF_UNSET;
    c->lock = CONF_UNSET;
    c->lock_timeout_ms = CONF_UNSET_U64;
    c->lock_age_ms = CONF_UNSET_U64;
    c->revalidate = CONF_UNSET;
    c->convert_head = CONF_UNSET;
    c->max_range_offset = CONF_UNSET_U64;
}

#define MERGE_INT(f, def)                                                                          \
    do {                                                                                           \
        if (c->f == CONF_UNSET)                                                                    \
            c->f = prev ? prev->f : (def);                                                         \
    } while (0)
#define MERGE_U64(f, def)                                                                          \
    do {                                                                                           \
        if (c->f == CONF_UNSET_U64)                                                                \
            c->f = prev ? prev->f : (def);                                                         \
    } while (0)

void cache_conf_merge(struct cache_conf *c, const struct cache_conf *prev)
{
    if (c->on == CONF_UNSET) {
        c->on = prev ? prev->on : 0;
        c->zone = prev ? prev->zone : NULL;
        c->zone_var = prev ? prev->zone_var : NULL;
    }
    if (!c->key && prev)
        c->key = prev->key;
    if (c->valid == CONF_UNSET_PTR) {
        c->valid = prev ? prev->valid : NULL;
        c->nvalid = prev ? prev->nvalid : 0;
    }
    if (!c->methods && prev)
        c->methods = prev->methods;
    c->methods |= CACHE_METHOD_GET | CACHE_METHOD_HEAD;
    MERGE_INT(min_uses, 1);
    if (c->bypass == CONF_UNSET_PTR) {
        c->bypass = prev ? prev->bypass : NULL;
        c->nbypass = prev ? prev->nbypass : 0;
    }
    if (c->no_cache == CONF_UNSET_PTR) {
        c->no_cache = prev ? prev->no_cache : NULL;
        c->nno_cache = prev ? prev->nno_cache : 0;
    }
    if (!c->use_stale)
        c->use_stale = prev ? prev->use_stale : NEXT_UPSTREAM_OFF;
    if (c->use_stale & NEXT_UPSTREAM_OFF)
        c->use_stale = NEXT_UPSTREAM_OFF;
    MERGE_INT(background_update, 0);
    MERGE_INT(lock, 0);
    MERGE_U64(lock_timeout_ms, 5000);
    MERGE_U64(lock_age_ms, 5000);
    MERGE_INT(revalidate, 0);
    MERGE_INT(convert_head, 1);
    MERGE_U64(max_range_offset, UINT64_MAX);
}

uint64_t cache_valid_sec(const struct cache_conf *c, unsigned status)
{
    for (unsigned i = 0; i < c->nvalid; i++)
        if (c->valid[i].status == 0 || c->valid[i].status == status)
            return c->valid[i].sec;
    return 0;
}

/* ------------------------------------------------------------ parsing helpers */

/* nginx's ngx_parse_time(s, 1): a time in seconds ("ms" is refused). -1 when invalid. */
static int parse_sec(const char *s, uint64_t *out)
{
    size_t len = strlen(s);
    if (len >= 2 && strcasecmp(s + len - 2, "ms") == 0)
        return -1;
    uint64_t ms;
    if (str_to_msec(str_from_cstr(s), &ms) != 0)
        return -1;
    *out = ms / 1000;
    return 0;
}

/* A plain decimal number (nginx's ngx_atoi). -1 when invalid. */
static int parse_num(const char *s, uint64_t *out)
{
    return str_to_u64(str_from_cstr(s), INT64_MAX, out);
}

/* Append to an arena array grown by doubling (capacity 4, 8, ...). */
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

struct cache_zone *cache_zone_find(const struct conf_parser *p, const char *name, unsigned len)
{
    const struct http_conf *hc = p->g->http;
    for (unsigned i = 0; hc && i < hc->ncache_zones; i++)
        if (strlen(hc->cache_zones[i]->name) == len &&
            memcmp(hc->cache_zones[i]->name, name, len) == 0)
            return hc->cache_zones[i];
    return NULL;
}

static int limit_zone_named(const struct conf_parser *p, const char *name)
{
    const struct http_conf *hc = p->g->http;
    for (unsigned i = 0; i < hc->nlimit_zones; i++)
        if (strcmp(hc->limit_zones[i]->name, name) == 0)
            return 1;
    return 0;
}

static struct cache_zone *new_zone(struct conf_parser *p, const char *name, size_t len)
{
    struct http_conf *hc = p->g->http;
    struct cache_zone **arr = grow(p->a, hc->cache_zones, hc->ncache_zones, sizeof(*arr));
    struct cache_zone *z = arena_calloc(p->a, sizeof(*z));
    if (!arr || !z || !(z->name = arena_strndup(p->a, name, len)))
        return NULL;
    hc->cache_zones = arr;
    z->index = hc->ncache_zones;
    z->file = p->node->file;
    z->line = p->node->end_line ? p->node->end_line : p->node->line;
    z->use_temp_path = 1;
    z->max_size = UINT64_MAX;
    z->inactive_ms = 600000;
    z->manager_files = 100;
    z->manager_sleep_ms = 50;
    z->manager_threshold_ms = 200;
    z->loader_files = 100;
    z->loader_sleep_ms = 50;
    z->loader_threshold_ms = 200;
    hc->cache_zones[hc->ncache_zones++] = z;
    return z;
}

/* ------------------------------------------------------------ proxy_cache_path */

/* levels=1:2 (one to three levels of 1 or 2 characters). -1 when invalid. */
static int parse_levels(const char *s, struct cache_zone *z)
{
    unsigned n = 0;
    for (;;) {
        if (n == 3 || (*s != '1' && *s != '2'))
            return -1;
        z->levels[n++] = (unsigned char)(*s++ - '0');
        if (*s == '\0')
            break;
        if (*s++ != ':' || *s == '\0')
            return -1;
    }
    z->nlevels = n;
    return 0;
}

/* keys_zone=name:size. Writes the message itself. */
static const char *parse_keys_zone(struct conf_parser *p, const char *v, struct cache_zone *tmp,
                                   const char **name, size_t *nlen)
{
    const char *s = v + 10;
    const char *colon = strchr(s, ':');
    uint64_t size;
    if (!colon || str_to_size(str_from_cstr(colon + 1), &size) != 0)
        return conf_err(p, "invalid keys zone size \"%s\"", v);
    if (size < 2 * 4096) /* nginx: two pages */
        return conf_err(p, "keys zone \"%s\" is too small", v);
    if ((size_t)(colon - s) > SHM_ZONE_NAME_MAX)
        return conf_err(p, "zone name \"%.*s\" is too long", (int)(colon - s), s);
    *name = s;
    *nlen = (size_t)(colon - s);
    tmp->size = size;
    return NULL;
}

/* One `name=value` parameter of proxy_cache_path other than levels and keys_zone. */
static const char *parse_path_param(struct conf_parser *p, const char *v, struct cache_zone *z)
{
    static const struct {
        const char *name;
        int kind; /* 0 sec -> ms, 1 size, 2 number, 3 msec */
        size_t off;
    } params[] = {
        {"inactive=", 0, offsetof(struct cache_zone, inactive_ms)},
        {"max_size=", 1, offsetof(struct cache_zone, max_size)},
        {"min_free=", 1, offsetof(struct cache_zone, min_free)},
        {"manager_files=", 2, offsetof(struct cache_zone, manager_files)},
        {"manager_sleep=", 3, offsetof(struct cache_zone, manager_sleep_ms)},
        {"manager_threshold=", 3, offsetof(struct cache_zone, manager_threshold_ms)},
        {"loader_files=", 2, offsetof(struct cache_zone, loader_files)},
        {"loader_sleep=", 3, offsetof(struct cache_zone, loader_sleep_ms)},
        {"loader_threshold=", 3, offsetof(struct cache_zone, loader_threshold_ms)},
    };
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        size_t len = strlen(params[i].name);
        if (strncmp(v, params[i].name, len) != 0)
            continue;
        const char *val = v + len;
        uint64_t *f = (uint64_t *)(void *)((char *)z + params[i].off);
        int rc;
        if (params[i].kind == 0) {
            rc = parse_sec(val, f);
            *f *= 1000;
        } else if (params[i].kind == 1) {
            rc = str_to_size(str_from_cstr(val), f);
        } else if (params[i].kind == 2) {
            rc = parse_num(val, f);
        } else {
            rc = str_to_msec(str_from_cstr(val), f);
        }
        if (rc != 0)
            return conf_err(p, "invalid %.*s value \"%s\"", (int)(len - 1), params[i].name, v);
        return NULL;
    }
    return conf_err(p, "invalid parameter \"%s\"", v);
}

/* proxy_cache_path path [levels=] [use_temp_path=] keys_zone=name:size [inactive=] ... */
static const char *set_cache_path(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)conf;
    struct cache_zone tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.use_temp_path = 1;
    tmp.max_size = UINT64_MAX;
    tmp.inactive_ms = 600000;
    tmp.manager_files = 100;
    tmp.manager_sleep_ms = 50;
    tmp.manager_threshold_ms = 200;
    tmp.loader_files = 100;
    tmp.loader_sleep_ms = 50;
    tmp.loader_threshold_ms = 200;
    const char *name = NULL;
    size_t nlen = 0;
    for (unsigned i = 1; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        const char *e = NULL;
        if (strncmp(v, "levels=", 7) == 0) {
            if (parse_levels(v + 7, &tmp) != 0)
                return conf_err(p, "invalid \"levels\" \"%s\"", v);
        } else if (strncmp(v, "use_temp_path=", 14) == 0) {
            if (strcmp(v + 14, "on") == 0 || strcmp(v + 14, "off") == 0)
                tmp.use_temp_path = strcmp(v + 14, "on") == 0;
            else
                return conf_err(p, "invalid use_temp_path value \"%s\", it must be \"on\" or "
                                   "\"off\"", v);
        } else if (strncmp(v, "keys_zone=", 10) == 0) {
            e = parse_keys_zone(p, v, &tmp, &name, &nlen);
        } else {
            e = parse_path_param(p, v, &tmp);
        }
        if (e)
            return e;
    }
    if (!name)
        return conf_err(p, "\"%s\" must have \"keys_zone\" parameter", d->name);

    /* the directory: relative to the prefix, without a trailing '/' */
    char *raw = arena_strdup(p->a, p->node->args[0]);
    if (!raw)
        return OOM(p);
    size_t rl = strlen(raw);
    if (rl > 1 && raw[rl - 1] == '/')
        raw[rl - 1] = '\0';
    const char *path = conf_full_path(p, raw);
    if (!path)
        return OOM(p);
    struct http_conf *hc = p->g->http;
    for (unsigned i = 0; i < hc->ncache_zones; i++) {
        const struct cache_zone *o = hc->cache_zones[i];
        if (o->path && strcmp(o->path, path) == 0 && o->nlevels == tmp.nlevels &&
            memcmp(o->levels, tmp.levels, sizeof(tmp.levels)) == 0)
        {
            conf_err_at(p, NULL, 0, "the same path name \"%s\" used in %s:%u and in %s:%u", path,
                        o->file, o->line, p->node->file,
                        p->node->end_line ? p->node->end_line : p->node->line);
            return CONF_ERROR;
        }
    }
    char zname[SHM_ZONE_NAME_MAX + 1];
    memcpy(zname, name, nlen);
    zname[nlen] = '\0';
    if (limit_zone_named(p, zname))
        return conf_err(p, "the shared memory zone \"%s\" is already declared for a different use",
                        zname);
    struct cache_zone *z = cache_zone_find(p, name, (unsigned)nlen);
    if (z && z->size)
        return conf_err(p, "duplicate zone \"%s\"", z->name);
    if (!z && !(z = new_zone(p, name, nlen)))
        return OOM(p);
    unsigned index = z->index;
    const char *zn = z->name;
    *z = tmp;
    z->name = zn;
    z->index = index;
    z->path = path;
    z->file = p->node->file;
    z->line = p->node->end_line ? p->node->end_line : p->node->line;
    return NULL;
}

/* ------------------------------------------------------------ per-level directives */

#define CC(conf) (&((struct loc_conf *)(conf))->cache)

/* proxy_cache zone | $variable | off */
static const char *set_proxy_cache(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct cache_conf *c = CC(conf);
    if (c->on != CONF_UNSET)
        return "is duplicate";
    const char *v = p->node->args[0];
    if (strcmp(v, "off") == 0) {
        c->on = 0;
        return NULL;
    }
    c->on = 1;
    if (strchr(v, '$')) {
        const struct tmpl *t = conf_tmpl(p, v);
        if (!t)
            return CONF_ERROR;
        if (!t->constant) {
            c->zone_var = t;
            return NULL;
        }
    }
    if (limit_zone_named(p, v))
        return conf_err(p, "the shared memory zone \"%s\" is already declared for a different use",
                        v);
    struct cache_zone *z = cache_zone_find(p, v, (unsigned)strlen(v));
    if (!z && !(z = new_zone(p, v, strlen(v))))
        return OOM(p);
    c->zone = z;
    return NULL;
}

static const char *set_cache_key(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct cache_conf *c = CC(conf);
    if (c->key)
        return "is duplicate";
    c->key = conf_tmpl(p, p->node->args[0]);
    return c->key ? NULL : CONF_ERROR;
}

/* proxy_cache_valid [code ...] time; a time alone means 200 301 302. */
static const char *set_cache_valid(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct cache_conf *c = CC(conf);
    unsigned n = p->node->nargs - 1;
    uint64_t sec;
    if (parse_sec(p->node->args[n], &sec) != 0)
        return conf_err(p, "invalid time value \"%s\"", p->node->args[n]);
    if (c->valid == CONF_UNSET_PTR) {
        c->valid = NULL;
        c->nvalid = 0;
    }
    unsigned add = n == 0 ? 3 : n;
    struct cache_valid *nv = arena_alloc(p->a, (c->nvalid + add) * sizeof(*nv));
    if (!nv)
        return OOM(p);
    if (c->nvalid)
        memcpy(nv, c->valid, c->nvalid * sizeof(*nv));
    static const unsigned dflt[3] = {200, 301, 302};
    for (unsigned i = 0; i < add; i++) {
        unsigned status;
        if (n == 0) {
            status = dflt[i];
        } else if (strcmp(p->node->args[i], "any") == 0) {
            status = 0;
        } else {
            uint64_t s;
            if (parse_num(p->node->args[i], &s) != 0 || s < 100 || s > UINT32_MAX)
                return conf_err(p, "invalid status \"%s\"", p->node->args[i]);
            status = (unsigned)s;
        }
        nv[c->nvalid + i] = (struct cache_valid){status, sec};
    }
    c->valid = nv;
    c->nvalid += add;
    return NULL;
}

/* proxy_cache_bypass / proxy_no_cache string ...: appended at one level. */
static const char *set_cache_conds(struct conf_parser *p, const struct directive *d, void *conf)
{
    struct cache_conf *c = CC(conf);
    int bypass = strcmp(d->name, "proxy_cache_bypass") == 0;
    const struct tmpl ***arr = bypass ? &c->bypass : &c->no_cache;
    unsigned *n = bypass ? &c->nbypass : &c->nno_cache;
    if (*arr == CONF_UNSET_PTR) {
        *arr = NULL;
        *n = 0;
    }
    const struct tmpl **na = arena_alloc(p->a, (*n + p->node->nargs) * sizeof(*na));
    if (!na)
        return OOM(p);
    if (*n)
        memcpy(na, *arr, *n * sizeof(*na));
    for (unsigned i = 0; i < p->node->nargs; i++)
        if (!(na[*n + i] = conf_tmpl(p, p->node->args[i])))
            return CONF_ERROR;
    *arr = na;
    *n += p->node->nargs;
    return NULL;
}

/* proxy_cache_max_range_offset: an offset (nginx's ngx_conf_set_off_slot). */
static const char *set_range_offset(struct conf_parser *p, const struct directive *d, void *conf)
{
    return set_size(p, d, conf);
}

static const struct conf_enum cache_methods[] = {
    {"GET", CACHE_METHOD_GET}, {"HEAD", CACHE_METHOD_HEAD}, {"POST", CACHE_METHOD_POST}, {NULL, 0}};

static const struct conf_enum use_stale_values[] = {
    {"error", NEXT_UPSTREAM_ERROR},
    {"timeout", NEXT_UPSTREAM_TIMEOUT},
    {"invalid_header", NEXT_UPSTREAM_INVALID_HEADER},
    {"updating", CACHE_STALE_UPDATING},
    {"http_500", NEXT_UPSTREAM_HTTP_500},
    {"http_502", NEXT_UPSTREAM_HTTP_502},
    {"http_503", NEXT_UPSTREAM_HTTP_503},
    {"http_504", NEXT_UPSTREAM_HTTP_504},
    {"http_403", NEXT_UPSTREAM_HTTP_403},
    {"http_404", NEXT_UPSTREAM_HTTP_404},
    {"http_429", NEXT_UPSTREAM_HTTP_429},
    {"off", NEXT_UPSTREAM_OFF},
    {NULL, 0},
};

/* ------------------------------------------------------------ end of http{} */

int cache_finish(struct conf_parser *p, const struct conf_node *http, unsigned nservers)
{
    struct http_conf *hc = p->g->http;
    for (unsigned i = 0; i < hc->ncache_zones; i++) {
        const struct cache_zone *z = hc->cache_zones[i];
        if (z->size)
            continue;
        /* nginx finds it when merging the servers (located at the end of
         * http{}); with no server, only when creating the zones */
        if (nservers)
            return conf_err_at(p, http->file, http->close_line ? http->close_line : http->line,
                               "\"proxy_cache\" zone \"%s\" is unknown", z->name);
        return conf_err_at(p, NULL, 0, "zero size shared memory zone \"%s\"", z->name);
    }
    const struct tmpl *dkey = NULL;
    if (hc->ncache_zones && !(dkey = conf_tmpl(p, "$proxy_host$request_uri")))
        return -1;
    for (unsigned i = 0; i < hc->ncache_zones; i++)
        hc->cache_zones[i]->default_key = dkey;
    for (unsigned i = 0; i < hc->ncache_zones; i++)
        if (limit_zone_named(p, hc->cache_zones[i]->name)) {
            const struct limit_zone *lz = NULL;
            for (unsigned j = 0; j < hc->nlimit_zones; j++)
                if (strcmp(hc->limit_zones[j]->name, hc->cache_zones[i]->name) == 0)
                    lz = hc->limit_zones[j];
            return conf_err_at(p, lz->file, lz->line,
                               "the shared memory zone \"%s\" is already declared for a "
                               "different use", lz->name);
        }
    return 0;
}

/* ------------------------------------------------------------ the table */

#define CCF(f) LVL_LOC, offsetof(struct loc_conf, cache.f)

const struct directive cache_directives[] = {
    {"proxy_cache_path", CTX_HTTP, ARGS(2, MANY), set_cache_path, LVL_NONE, 0, NULL},
    {"proxy_cache", HSL, ARGS(1, 1), set_proxy_cache, LVL_LOC, 0, NULL},
    {"proxy_cache_key", HSL, ARGS(1, 1), set_cache_key, LVL_LOC, 0, NULL},
    {"proxy_cache_valid", HSL, ARGS(1, MANY), set_cache_valid, LVL_LOC, 0, NULL},
    {"proxy_cache_methods", HSL, ARGS(1, MANY), set_bitmask, CCF(methods), cache_methods},
    {"proxy_cache_min_uses", HSL, ARGS(1, 1), set_num, CCF(min_uses), NULL},
    {"proxy_cache_bypass", HSL, ARGS(1, MANY), set_cache_conds, LVL_LOC, 0, NULL},
    {"proxy_no_cache", HSL, ARGS(1, MANY), set_cache_conds, LVL_LOC, 0, NULL},
    {"proxy_cache_use_stale", HSL, ARGS(1, MANY), set_bitmask, CCF(use_stale), use_stale_values},
    {"proxy_cache_background_update", HSL, ARGS(1, 1), set_flag, CCF(background_update), NULL},
    {"proxy_cache_lock", HSL, ARGS(1, 1), set_flag, CCF(lock), NULL},
    {"proxy_cache_lock_timeout", HSL, ARGS(1, 1), set_msec, CCF(lock_timeout_ms), NULL},
    {"proxy_cache_lock_age", HSL, ARGS(1, 1), set_msec, CCF(lock_age_ms), NULL},
    {"proxy_cache_revalidate", HSL, ARGS(1, 1), set_flag, CCF(revalidate), NULL},
    {"proxy_cache_convert_head", HSL, ARGS(1, 1), set_flag, CCF(convert_head), NULL},
    {"proxy_cache_max_range_offset", HSL, ARGS(1, 1), set_range_offset, CCF(max_range_offset),
     NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
