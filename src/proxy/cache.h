/*
 * cache.h - the proxy cache at run time (nginx's ngx_http_file_cache for
 * proxy_pass): lookup before the upstream is asked, a HIT served from the
 * file, a MISS stored while it streams to the first client. Configuration:
 * conf/cache.h; how to use it and what is done: docs/cache.md.
 *
 * Storage: one file per key under the zone's path (nginx's layout: the MD5
 * of the key in hex, `levels` directories taken from its end), written to a
 * temporary name in the same directory and renamed when complete, so a
 * partly written file is never served. The keys zone (core/shm_zone.h, kind
 * SHM_ZONE_CACHE) says, for every key, whether a complete file exists, until
 * when it is fresh, and how often it was asked for; every worker shares it.
 * Any file-system failure (no space, unwritable directory) drops the store
 * with one log line: the response is proxied as without the cache.
 */
#ifndef SY_PROXY_CACHE_H
#define SY_PROXY_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "http/stream.h"

struct cache_req; /* per-request state, in the request arena */
struct cache_zone;
struct arena;

/* The fixed start of a cache file (then key, head, vary, body: cache.c). */
#define CACHE_MAGIC "SYCACHE2"
struct cache_file_hdr {
    char magic[8];
    int64_t valid_sec;          /* fresh until (Unix time) */
    int64_t date;               /* stored at */
    uint64_t body_len;
    uint32_t key_len, head_len, vary_len;
    int32_t status;
    uint32_t updating_sec;      /* Cache-Control stale-while-revalidate */
    uint32_t error_sec;         /* Cache-Control stale-if-error */
};

/* The file of the entry whose key has MD5 `md5` (nginx's layout), in `a`. */
char *cache_entry_path(struct arena *a, const struct cache_zone *cz, const unsigned char *md5);

/* What cache_lookup found. */
enum cache_lookup_rc {
    CACHE_PROXY = 0, /* go upstream; *out (when set) may store the response */
    CACHE_SERVE = 1, /* a fresh entry: call cache_serve(s, *out) */
    CACHE_WAIT = 2,  /* proxy_cache_lock: another request fills it; call cache_wait */
    CACHE_ERROR = 3, /* an error status is stored for the key: answer cache_error_status() */
    CACHE_FAIL = 4,  /* proxy_cache names an unknown zone (logged): answer 500, as nginx */
};

/* The status of a CACHE_ERROR lookup (nginx answers it, error_page applies). */
int cache_error_status(const struct cache_req *c);

/*
 * proxy_intercept_errors answers an upstream error with an error_page: if
 * the response could be stored (proxy_cache_valid for its status, or its
 * Cache-Control, ...), its status is remembered for the key, as nginx's
 * cache node "error", and answered by the following lookups until it
 * expires or a response is stored.
 */
void cache_store_error(struct cache_req *c, struct client_stream *s, int status,
                       const struct h1_header *uh, size_t nuh);

/*
 * Wait for the request filling the entry (polled, as nginx does): `wake`
 * runs later with CACHE_SERVE (stored meanwhile: cache_serve) or
 * CACHE_PROXY (go upstream: this request stores it after
 * proxy_cache_lock_age, or does not after proxy_cache_lock_timeout).
 * cache_store_abort() cancels the wait.
 */
void cache_wait(struct cache_req *c, void (*wake)(void *arg, enum cache_lookup_rc rc), void *arg);

/*
 * Before the upstream request is made (proxy_cache on, no upgrade): the key,
 * proxy_cache_bypass, proxy_cache_methods, the zone lookup. Sets
 * r->cache_status (MISS, BYPASS, EXPIRED, UPDATING, HIT); UPDATING (another
 * request is fetching, proxy_cache_use_stale updating) is served as a hit. *out: NULL when the cache
 * has nothing to do with this request. `https`: the upstream's scheme, for
 * the default key (nginx's: "http://" $proxy_host $request_uri).
 */
enum cache_lookup_rc cache_lookup(struct client_stream *s, int https, struct cache_req **out);

/* Answer from the cached file (HEAD, Range, If-None-Match/If-Modified-Since
 * answered from the stored head). May end the stream. */
void cache_serve(struct client_stream *s, struct cache_req *c);

/* proxy_cache_use_stale allows answering with the expired entry this
 * request found, for a failure of kind `flag` (NEXT_UPSTREAM_*). */
int cache_stale_allowed(const struct cache_req *c, unsigned flag);

/* Answer with that expired entry ($upstream_cache_status STALE) instead of
 * the upstream's error. The caller freed its upstream state. May end the stream. */
void cache_serve_stale(struct client_stream *s, struct cache_req *c);

/* proxy_cache_revalidate: the expired entry's validators to send upstream
 * (If-Modified-Since, If-None-Match; empty when absent). 1 when there is one. */
int cache_revalidate_headers(const struct cache_req *c, struct str *ims, struct str *inm);

/* The upstream answered the revalidation with 304 (`uh`: its headers): the
 * entry is fresh again (REVALIDATED) and answers. The caller freed its
 * upstream state. May end the stream. */
void cache_serve_revalidated(struct client_stream *s, struct cache_req *c,
                             const struct h1_header *uh, size_t nuh);

/*
 * A single Range of a response being stored (status 200, `len` bytes, the
 * upstream said Accept-Ranges): 1 with the bytes [*from, *to] the client
 * gets as a 206, while the whole response is stored (nginx's single range on
 * a miss). 0: the client gets the whole response. -1: the range is not
 * satisfiable: the client gets a 416 without a body (the response is still
 * stored).
 */
int cache_miss_range(const struct cache_req *c, const struct request *r,
                     const struct h1_header *uh, size_t nuh, uint64_t len, uint64_t *from,
                     uint64_t *to);

/* proxy_cache_convert_head: 1 when this HEAD request goes upstream as GET
 * (the response is stored; the client gets the head only). */
int cache_head_as_get(struct cache_req *c, const struct request *r);

/* Request headers a caching proxy does not pass upstream (it must get the
 * full response to store it): Range, If-Range, If-*-Match, If-*-Since. */
int cache_drops_request_header(unsigned id, struct str name);

/*
 * The upstream's final response head (status, headers as they go to the
 * client, before add_header): decides whether it is stored (proxy_no_cache,
 * proxy_cache_valid, X-Accel-Expires, Cache-Control, Expires, Set-Cookie,
 * Vary, Authorization) and opens the temporary file.
 */
void cache_store_begin(struct cache_req *c, struct client_stream *s, int status,
                       const struct h1_header *uh, size_t nuh);

/* Body bytes the client stream took (the same bytes go to the file). */
void cache_store_body(struct cache_req *c, const void *p, size_t n);

/* The upstream's response is complete: the file is renamed into place and
 * the zone says it exists. Accepts NULL. */
void cache_store_done(struct cache_req *c);

/* The exchange ended otherwise: the temporary file goes. Accepts NULL;
 * nothing after cache_store_done. */
void cache_store_abort(struct cache_req *c);

#endif
