/*
 * cache.h - configuration of nginx's proxy cache (ngx_http_file_cache and
 * the proxy_cache_* directives of ngx_http_proxy_module): `proxy_cache_path`
 * declares a cache (a directory and a keys zone in shared memory); the
 * per-level directives choose a cache and say what is stored and how it is
 * served. The cache itself is src/proxy/cache*.c.
 *
 * A `proxy_cache NAME` may come before the `proxy_cache_path` that declares
 * NAME (as in nginx): the first reference creates the zone with size 0, the
 * declaration fills it in, and cache_finish reports a zone never declared.
 *
 * Embedded in struct loc_conf as `lc->cache`; lists (valid, bypass,
 * no_cache) of a level replace its parent's, as nginx's arrays do.
 */
#ifndef SY_CONF_CACHE_H
#define SY_CONF_CACHE_H

#include <stdint.h>

struct tmpl;
struct conf_parser;
struct conf_node;

/* proxy_cache_use_stale bits: the NEXT_UPSTREAM_* values (conf.h) plus these. */
#define CACHE_STALE_UPDATING 0x1000u

/* One proxy_cache_path. */
struct cache_zone {
    const char *name;           /* keys_zone name */
    uint64_t size;              /* keys_zone size in bytes; 0 while only referenced */
    const char *path;           /* absolute, without a trailing '/' */
    unsigned char levels[3];    /* levels=1:2 -> {1, 2, 0} */
    unsigned nlevels;
    int use_temp_path;          /* on (Switchyard writes temp files in the cache directory
                                   either way: a rename never crosses file systems) */
    uint64_t max_size;          /* bytes; UINT64_MAX = no limit */
    uint64_t min_free;          /* bytes kept free on the file system; 0 = no limit */
    uint64_t inactive_ms;       /* 10m: entries not used for this long are removed */
    uint64_t manager_files;     /* 100 */
    uint64_t manager_sleep_ms;  /* 50ms */
    uint64_t manager_threshold_ms; /* 200ms */
    uint64_t loader_files;      /* 100 */
    uint64_t loader_sleep_ms;   /* 50ms */
    uint64_t loader_threshold_ms;  /* 200ms */
    unsigned index;             /* slot in http_conf.cache_zones and gen_rt.cache_zones */
    const struct tmpl *default_key; /* $proxy_host$request_uri (cache_finish): the default
                                   key is the proxy_pass scheme, "://", then this */
    const char *file; unsigned line; /* the declaration, or the first reference */
};

/* proxy_cache_valid [code ...] time: status 0 = any. */
struct cache_valid {
    unsigned status;
    uint64_t sec;
};

/* proxy_cache_methods bits */
#define CACHE_METHOD_GET  0x1u
#define CACHE_METHOD_HEAD 0x2u
#define CACHE_METHOD_POST 0x4u

struct cache_conf {
    int on;                          /* proxy_cache: CONF_UNSET, 0 (off) or 1 */
    struct cache_zone *zone;         /* proxy_cache NAME */
    const struct tmpl *zone_var;     /* proxy_cache $variable: the zone named at run time */
    const struct tmpl *key;          /* proxy_cache_key; NULL = $scheme$proxy_host$request_uri */
    const struct cache_valid *valid; unsigned nvalid; /* CONF_UNSET_PTR = unset */
    unsigned methods;                /* CACHE_METHOD_*; GET and HEAD always */
    int64_t min_uses;                /* 1 */
    const struct tmpl **bypass; unsigned nbypass;   /* proxy_cache_bypass; CONF_UNSET_PTR */
    const struct tmpl **no_cache; unsigned nno_cache; /* proxy_no_cache; CONF_UNSET_PTR */
    unsigned use_stale;              /* NEXT_UPSTREAM_* | CACHE_STALE_UPDATING; 0 = unset */
    int background_update;           /* off */
    int lock;                        /* off */
    uint64_t lock_timeout_ms;        /* 5s */
    uint64_t lock_age_ms;            /* 5s */
    int revalidate;                  /* off */
    int convert_head;                /* on */
    uint64_t max_range_offset;       /* no limit (UINT64_MAX) */
};

void cache_conf_init(struct cache_conf *c);
void cache_conf_merge(struct cache_conf *c, const struct cache_conf *prev);

/*
 * After http{} is read: every zone named by proxy_cache was declared by a
 * proxy_cache_path, no two caches share a directory, and no cache shares a
 * name with a limit_req/limit_conn zone (`http`: the http block, where
 * nginx locates the message). 0, or -1 with the message written.
 */
int cache_finish(struct conf_parser *p, const struct conf_node *http, unsigned nservers);

/* The zone declared as `name` (length `len`), or NULL. */
struct cache_zone *cache_zone_find(const struct conf_parser *p, const char *name, unsigned len);

/* Seconds of validity proxy_cache_valid gives `status` (0: not cached). */
uint64_t cache_valid_sec(const struct cache_conf *c, unsigned status);

#endif
