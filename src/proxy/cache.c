/*
 * cache.c - the proxy cache at run time (cache.h).
 *
 * A cache file:
 *
 *   struct cache_file_hdr | key | head ("Name: value\r\n" ...) | vary | body
 *
 * `head` holds the response headers as they went to the client (before
 * add_header, which every response gets anew); `vary` the request header
 * values the response varies on ("name: value\r\n" per Vary name). The
 * header is written again, complete, just before the rename.
 */
#include "proxy/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "conf/cache.h"
#include "conf/conf.h"
#include "conf/runtime.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/shm_zone.h"
#include "http/byteranges.h"
#include "http/filter.h"
#include "http/phases.h"
#include "http/response.h"
#include "http/subrequest.h"
#include "http/vars_eval.h"

#define CACHE_META_MAX (64 * 1024) /* key + head + vary */
#define CACHE_READ_FIRST 8192         /* the first read of a cache file */

struct cache_req {
    struct request *req;
    struct shm_zone *zone;
    const struct cache_zone *cz;
    const struct cache_conf *cc;
    struct str key;
    unsigned char md5[16];
    char *path;                 /* the entry's file */
    uint32_t uses;              /* requests for the key, this one included */

    /* HIT, or the expired entry kept for proxy_cache_use_stale */
    int fd;
    int stale;                  /* fd is an expired entry */
    int updating_mine;          /* this request set ZONE_CACHE_UPDATING */
    struct cache_file_hdr hdr;
    char *meta;                 /* key, head, vary */
    const char *body;           /* the whole body, when the first read brought it */

    /* proxy_cache_lock: waiting for another request's fill */
    struct timer wait_timer;
    uint64_t wait_start_ms;
    void (*wake)(void *arg, enum cache_lookup_rc rc);
    void *wake_arg;
    int no_store;               /* lock_timeout passed: proxied without storing */
    int head_as_get;            /* proxy_cache_convert_head: a HEAD asked upstream as GET */
    int variant;                /* the key is a Vary variant's (variant_key) */
    struct str main_key;        /* then: the main key, its MD5 and file */
    unsigned char main_md5[16];
    char *main_path;
    int background;             /* serve the stale entry, a background request updates it */
    int error_status;           /* CACHE_ERROR: the stored error status */

    /* store */
    int tfd;                    /* temporary file, -1 when not storing */
    char *tpath;
    uint64_t written;
    int64_t valid_sec;
    int done;
};

/* ------------------------------------------------------------ helpers */

/* One log line per process for a cache that cannot be written. */
static void store_failed(const struct cache_req *c, const char *what, const char *path, int err)
{
    static int said;
    if (said)
        return;
    said = 1;
    sy_log(LOG_LVL_CRIT, "cache \"%s\": %s \"%s\" failed (%d: %s): responses are proxied "
           "without being stored", c->cz->name, what, path, err, strerror(err));
}

static int64_t now_sec(void)
{
    return (int64_t)(loop_wall_ms() / 1000);
}

static void hex(const unsigned char *md5, char out[33])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[md5[i] >> 4];
        out[2 * i + 1] = digits[md5[i] & 15];
    }
    out[32] = '\0';
}

/* nginx's layout: path/<last N chars>/<previous M chars>/<md5 hex>. */
char *cache_entry_path(struct arena *a, const struct cache_zone *cz, const unsigned char *md5)
{
    char h[33];
    hex(md5, h);
    char dirs[16] = "";
    size_t dl = 0, end = 32;
    for (unsigned i = 0; i < cz->nlevels; i++) {
        end -= cz->levels[i];
        dirs[dl++] = '/';
        memcpy(dirs + dl, h + end, cz->levels[i]);
        dl += cz->levels[i];
    }
    dirs[dl] = '\0';
    return arena_printf(a, "%s%s/%s", cz->path, dirs, h);
}

/* mkdir -p of the directories above `path`. 0 or -1 (errno). */
static int make_dirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0700);
        *p = '/';
        if (rc < 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

static const struct cache_zone *zone_by_name(const struct request *r, struct str name)
{
    const struct http_conf *hc = r->rt->gen->http;
    for (unsigned i = 0; i < hc->ncache_zones; i++)
        if (strlen(hc->cache_zones[i]->name) == name.len &&
            memcmp(hc->cache_zones[i]->name, name.p, name.len) == 0)
            return hc->cache_zones[i];
    return NULL;
}

static struct str cache_req_header(const struct request *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (str_caseeq_cstr(r->headers[i].name, name))
            return r->headers[i].value;
    return STR_NULL;
}

static unsigned method_bit(struct str m)
{
    if (str_eq(m, STR_LIT("GET")))
        return CACHE_METHOD_GET;
    if (str_eq(m, STR_LIT("HEAD")))
        return CACHE_METHOD_HEAD;
    if (str_eq(m, STR_LIT("POST")))
        return CACHE_METHOD_POST;
    return 0;
}

/* proxy_cache_bypass / proxy_no_cache: a value that is not empty and not "0". */
static int conds_true(struct client_stream *s, const struct tmpl *const *t, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct str v;
        if (tmpl_eval(s, t[i], &v) == 0 && v.len && !(v.len == 1 && v.p[0] == '0'))
            return 1;
    }
    return 0;
}

/* Remove the entry's file and forget its node (under the zone lock). */
static void drop_node(struct cache_req *c, struct arena *a, struct zone_node *n)
{
    if (n->c_flags & ZONE_CACHE_EXISTS) {
        char *p = cache_entry_path(a, c->cz, n->key);
        if (p)
            unlink(p);
    }
    shm_zone_remove(c->zone, n);
}

/* ------------------------------------------------------------ lookup */

/* Another request is fetching this entry now: its process lives and it
 * started less than a minute ago (a killed worker never holds it longer). */
static int fill_running(const struct zone_node *n)
{
    if (!(n->c_flags & ZONE_CACHE_UPDATING) || loop_now() - n->c_fill_ms > 60000)
        return 0;
    return kill((pid_t)n->c_fill_pid, 0) == 0 || errno == EPERM;
}

/* Clear the UPDATING mark this request set (the fill ended either way). */
static void clear_updating(struct cache_req *c)
{
    if (!c->updating_mine)
        return;
    c->updating_mine = 0;
    struct zone_key k;
    shm_zone_make_key(c->md5, sizeof(c->md5), &k);
    shm_zone_lock(c->zone);
    struct zone_node *n = shm_zone_find(c->zone, shm_zone_hash(c->zone, &k), &k);
    if (n && n->c_fill_pid == (uint32_t)getpid())
        n->c_flags = (uint16_t)(n->c_flags & ~ZONE_CACHE_UPDATING);
    shm_zone_unlock(c->zone);
}

/* Read and check the file's head. 0, or -1 (then treat it as absent). */
static int read_entry(struct cache_req *c, struct arena *a)
{
    c->fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (c->fd < 0)
        return -1;
    /* one read brings the header, the head and (small responses) the body */
    char *first = arena_alloc(a, CACHE_READ_FIRST);
    struct stat st;
    ssize_t n = first ? pread(c->fd, first, CACHE_READ_FIRST, 0) : -1;
    if (n < (ssize_t)sizeof(c->hdr))
        goto bad;
    memcpy(&c->hdr, first, sizeof(c->hdr));
    if (memcmp(c->hdr.magic, CACHE_MAGIC, 8) != 0 || fstat(c->fd, &st) < 0)
        goto bad;
    uint64_t meta = (uint64_t)c->hdr.key_len + c->hdr.head_len + c->hdr.vary_len;
    if (meta > CACHE_META_MAX || sizeof(c->hdr) + meta + c->hdr.body_len != (uint64_t)st.st_size)
        goto bad;
    if (sizeof(c->hdr) + meta <= (uint64_t)n) {
        c->meta = first + sizeof(c->hdr);
        if ((uint64_t)n == (uint64_t)st.st_size)
            c->body = c->meta + meta; /* served from memory, with the head */
    } else {
        c->meta = arena_alloc(a, meta);
        if (!c->meta || pread(c->fd, c->meta, meta, sizeof(c->hdr)) != (ssize_t)meta)
            goto bad;
    }
    /* an MD5 collision must not serve another key's page */
    if (c->hdr.key_len != c->key.len || memcmp(c->meta, c->key.p, c->key.len) != 0)
        goto bad;
    return 0;
bad:
    close(c->fd);
    c->fd = -1;
    c->body = NULL;
    return -1;
}

/* A request header's value as Vary compares it (nginx): the elements of
 * its comma-separated list without the blanks around them, empty ones
 * dropped ("foo, bar" = "foo,bar" = "foo,,  ,bar , "). In `a`; the value
 * itself when there is nothing to change. */
static struct str vary_value(struct arena *a, struct str v)
{
    if (!v.p || !v.len)
        return v;
    char *out = arena_alloc(a, v.len);
    if (!out)
        return v;
    size_t o = 0, i = 0;
    while (i < v.len) {
        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
            i++;
        size_t st = i, last = i;
        while (i < v.len && v.p[i] != ',') {
            if (v.p[i] != ' ' && v.p[i] != '\t')
                last = i + 1;
            i++;
        }
        if (last > st) {
            if (o)
                out[o++] = ',';
            memcpy(out + o, v.p + st, last - st);
            o += last - st;
        }
    }
    return (struct str){out, o};
}

/* The stored Vary values still match this request's headers. */
static int vary_matches(const struct cache_req *c, const struct request *r)
{
    const char *p = c->meta + c->hdr.key_len + c->hdr.head_len;
    const char *end = p + c->hdr.vary_len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (!eol || !colon || colon > eol)
            return 0;
        char name[128];
        size_t nl = (size_t)(colon - p);
        if (nl >= sizeof(name))
            return 0;
        memcpy(name, p, nl);
        name[nl] = '\0';
        struct str want = {colon + 2, (size_t)(eol - colon - 2)};
        struct str have = vary_value((struct arena *)&r->arena, cache_req_header(r, name));
        if (have.len != want.len || (want.len && memcmp(have.p, want.p, want.len) != 0))
            return 0;
        p = eol + 1;
    }
    return 1;
}

/*
 * The key of this request's variant of an entry stored with Vary (nginx's
 * secondary key): the main key, then the request's values of the stored
 * entry's Vary names. The main key's file holds the first variant stored;
 * the others have files of their own under this key. -1 out of memory.
 */
static int variant_key(struct cache_req *c, struct request *r)
{
    const char *p = c->meta + c->hdr.key_len + c->hdr.head_len;
    const char *end = p + c->hdr.vary_len;
    c->main_key = c->key;
    memcpy(c->main_md5, c->md5, sizeof(c->md5));
    c->main_path = c->path;
    char *k = arena_printf(&r->arena, "%.*s\nvariant\n", (int)c->key.len, c->key.p);
    while (k && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (!eol || !colon || colon > eol || (size_t)(colon - p) >= 128)
            return -1;
        char name[128];
        memcpy(name, p, (size_t)(colon - p));
        name[colon - p] = '\0';
        struct str have = vary_value(&r->arena, cache_req_header(r, name));
        k = arena_printf(&r->arena, "%s%s: %.*s\n", k, name, (int)have.len,
                         have.p ? have.p : "");
        p = eol + 1;
    }
    if (!k)
        return -1;
    c->key = str_from_cstr(k);
    EVP_Digest(c->key.p, c->key.len, c->md5, NULL, EVP_md5(), NULL);
    c->path = cache_entry_path(&r->arena, c->cz, c->md5);
    c->variant = 1;
    return c->path ? 0 : -1;
}

/* A stored entry of another variant was found under the main key: look
 * this request's variant up under its own key. 1 when the caller should
 * look again (c now has the variant's key), 0 not. */
static int to_variant(struct cache_req *c, struct request *r)
{
    if (c->variant || c->hdr.vary_len == 0)
        return 0;
    clear_updating(c); /* the main key's file is not this request's to fill */
    int rc = variant_key(c, r);
    close(c->fd);
    c->fd = -1;
    c->body = NULL;
    c->stale = 0;
    return rc == 0;
}

/* proxy_cache_max_range_offset: on a miss, a range starting at or past it
 * (or a suffix range, when a limit is set) goes upstream as asked and is
 * not stored (nginx's ngx_http_upstream_cache_check_range). */
static int range_too_far(const struct request *r, uint64_t limit)
{
    if (limit == UINT64_MAX)
        return 0;
    struct str v = cache_req_header(r, "Range");
    if (!v.p)
        return 0;
    if (limit == 0)
        return 1;
    if (v.len < 6 || strncasecmp(v.p, "bytes=", 6) != 0)
        return 0;
    size_t i = 6;
    while (i < v.len && v.p[i] == ' ')
        i++;
    if (i < v.len && v.p[i] == '-')
        return 1;
    uint64_t off = 0;
    for (; i < v.len && v.p[i] >= '0' && v.p[i] <= '9'; i++)
        off = off < UINT64_MAX / 10 ? off * 10 + (uint64_t)(v.p[i] - '0') : UINT64_MAX;
    return off >= limit;
}

enum cache_lookup_rc cache_lookup(struct client_stream *s, int https, struct cache_req **out)
{
    struct request *r = &s->req;
    const struct cache_conf *cc = &r->lc->cache;
    *out = NULL;
    const struct cache_zone *cz = cc->zone;
    if (cc->zone_var) {
        struct str name;
        if (tmpl_eval(s, cc->zone_var, &name) < 0 || !name.len)
            return CACHE_PROXY; /* nginx: empty, not cached */
        if (!(cz = zone_by_name(r, name))) {
            char ctx[1500];
            stream_log_ctx(s, ctx, sizeof(ctx));
            sy_log(LOG_LVL_ERR, "*%llu cache \"%.*s\" not found%s",
                   (unsigned long long)s->conn->id, (int)name.len, name.p, ctx);
            return CACHE_FAIL; /* nginx: 500 */
        }
    }
    if (!cz || !(method_bit(r->method) & cc->methods) || !r->rt->cache_zones)
        return CACHE_PROXY;
    struct cache_req *c = arena_calloc(&r->arena, sizeof(*c));
    if (!c)
        return CACHE_PROXY;
    c->fd = -1;
    c->tfd = -1;
    c->req = r;
    c->cz = cz;
    c->cc = cc;
    c->zone = r->rt->cache_zones[cz->index];
    if (tmpl_eval(s, cc->key ? cc->key : cz->default_key, &c->key) < 0)
        return CACHE_PROXY;
    if (!cc->key) {
        char *k = arena_printf(&r->arena, "%s://%.*s", https ? "https" : "http",
                               (int)c->key.len, c->key.p);
        if (!k)
            return CACHE_PROXY;
        c->key = str_from_cstr(k);
    }
    EVP_Digest(c->key.p, c->key.len, c->md5, NULL, EVP_md5(), NULL);
    if (!(c->path = cache_entry_path(&r->arena, cz, c->md5)))
        return CACHE_PROXY;
    *out = c;

    if (conds_true(s, cc->bypass, cc->nbypass)) {
        r->cache_status = CACHE_ST_BYPASS;
        c->uses = UINT32_MAX; /* min_uses does not hold back a bypassed response */
        return CACHE_PROXY;
    }

again:;
    struct zone_key k;
    shm_zone_make_key(c->md5, sizeof(c->md5), &k);
    int fresh = 0, exists = 0, updating = 0, error = 0;
    shm_zone_lock(c->zone);
    uint32_t h = shm_zone_hash(c->zone, &k);
    struct zone_node *n = shm_zone_find(c->zone, h, &k);
    if (!n) {
        n = shm_zone_insert(c->zone, h, &k);
        if (!n) { /* full: the least recently used entry goes (nginx's forced expiry) */
            struct zone_node *old = shm_zone_oldest(c->zone);
            if (old)
                drop_node(c, &r->arena, old);
            n = shm_zone_insert(c->zone, h, &k);
        }
    }
    if (n) {
        n->c_uses = n->c_uses < UINT32_MAX ? n->c_uses + 1 : n->c_uses;
        n->c_used_ms = loop_now();
        c->uses = n->c_uses;
        if (n->c_error && n->c_valid_sec >= now_sec())
            error = (int)n->c_error; /* an error stored, still valid: no file */
        else
            n->c_error = 0;
    }
    if (n && !error) {
        exists = (n->c_flags & ZONE_CACHE_EXISTS) != 0;
        fresh = exists && n->c_valid_sec >= now_sec(); /* nginx: fresh through that second */
        if (!fresh) {
            /* a background update fetches what its parent marked */
            updating = !r->cache_background && fill_running(n);
            if (!updating) { /* this request fetches it: others may wait or use stale */
                n->c_flags |= ZONE_CACHE_UPDATING;
                n->c_fill_pid = (uint32_t)getpid();
                n->c_fill_ms = loop_now();
                c->updating_mine = 1;
            }
        }
    }
    shm_zone_unlock(c->zone);

    if (error) {
        r->cache_status = CACHE_ST_HIT;
        c->error_status = error;
        return CACHE_ERROR;
    }
    r->cache_status = exists && !fresh ? CACHE_ST_EXPIRED : CACHE_ST_MISS;
    if (!fresh && !exists && c->uses < cc->min_uses) {
        /* proxy_cache_min_uses not reached: proxied as without the cache,
         * the client's Range and conditionals included (nginx) */
        clear_updating(c);
        *out = NULL;
        return CACHE_PROXY;
    }
    if (!fresh && range_too_far(r, cc->max_range_offset)) {
        /* the range goes upstream as asked; nothing is stored */
        clear_updating(c);
        *out = NULL;
        return CACHE_PROXY;
    }
    if (!fresh && !exists && updating && cc->lock)
        return CACHE_WAIT; /* the request filling it answers us too */
    if (!fresh) {
        /* kept for proxy_cache_use_stale, stale-while-revalidate,
         * stale-if-error and proxy_cache_revalidate */
        if (exists && read_entry(c, &r->arena) == 0) {
            if (vary_matches(c, r)) {
                c->stale = 1;
                int swr = now_sec() <= c->hdr.valid_sec + (int64_t)c->hdr.updating_sec;
                int stale_ok = (cc->use_stale & CACHE_STALE_UPDATING) ||
                               (c->hdr.updating_sec && swr);
                if (updating && stale_ok) {
                    r->cache_status = CACHE_ST_UPDATING;
                    return CACHE_SERVE;
                }
                if (!updating && stale_ok && cc->background_update && !r->cache_background) {
                    /* proxy_cache_background_update: the stale entry now,
                     * a background request fetches the new one */
                    r->cache_status = CACHE_ST_STALE;
                    c->background = 1;
                    return CACHE_SERVE;
                }
            } else if (to_variant(c, r)) {
                goto again;
            } else {
                close(c->fd);
                c->fd = -1;
            }
        }
        return CACHE_PROXY;
    }
    if (read_entry(c, &r->arena) == 0 && !vary_matches(c, r) && to_variant(c, r))
        goto again;
    if (c->fd < 0 || !vary_matches(c, r)) {
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        r->cache_status = CACHE_ST_MISS;
        return CACHE_PROXY;
    }
    r->cache_status = CACHE_ST_HIT;
    return CACHE_SERVE;
}

static int64_t validity(const struct cache_req *c, const struct request *r, int status,
                        const struct h1_header *uh, size_t n, int *cc_public);

/* ------------------------------------------------------------ lock */

#define CACHE_LOCK_POLL_MS 20

/* Where the entry being waited for stands: 1 stored (serve it), 0 still
 * filling, -1 the fill is gone or older than proxy_cache_lock_age (this
 * request fetches and stores it). */
static int lock_state(struct cache_req *c)
{
    struct zone_key k;
    shm_zone_make_key(c->md5, sizeof(c->md5), &k);
    int rc = -1;
    shm_zone_lock(c->zone);
    struct zone_node *n = shm_zone_find(c->zone, shm_zone_hash(c->zone, &k), &k);
    if (n && (n->c_flags & ZONE_CACHE_EXISTS) && n->c_valid_sec >= now_sec()) {
        rc = 1;
    } else if (n && fill_running(n) && loop_now() - n->c_fill_ms < c->cc->lock_age_ms) {
        rc = 0;
    } else if (n) { /* take the fill over */
        n->c_flags |= ZONE_CACHE_UPDATING;
        n->c_fill_pid = (uint32_t)getpid();
        n->c_fill_ms = loop_now();
        c->updating_mine = 1;
    }
    shm_zone_unlock(c->zone);
    return rc;
}

static void lock_poll(struct timer *t)
{
    struct cache_req *c = (struct cache_req *)(void *)((char *)t -
                                                        offsetof(struct cache_req, wait_timer));
    int st = lock_state(c);
    if (st == 0 && loop_now() - c->wait_start_ms < c->cc->lock_timeout_ms) {
        timer_set(&c->wait_timer, CACHE_LOCK_POLL_MS);
        return;
    }
    enum cache_lookup_rc rc = CACHE_PROXY;
    if (st == 1 && c->req && read_entry(c, &c->req->arena) == 0 && vary_matches(c, c->req)) {
        c->req->cache_status = CACHE_ST_HIT;
        rc = CACHE_SERVE;
    } else if (st == 0) {
        c->no_store = 1; /* nginx: after lock_timeout the response is not cached */
    }
    c->wake(c->wake_arg, rc);
}

void cache_wait(struct cache_req *c, void (*wake)(void *arg, enum cache_lookup_rc rc), void *arg)
{
    c->wake = wake;
    c->wake_arg = arg;
    c->wait_start_ms = loop_now();
    c->wait_timer.cb = lock_poll;
    timer_set(&c->wait_timer, CACHE_LOCK_POLL_MS);
}

/* ------------------------------------------------------------ serving */

static struct str resp_value(const struct request *r, const char *name)
{
    return resp_get(r, name);
}

/* If-None-Match / If-Modified-Since against the stored validators. */
static int not_modified(const struct request *r)
{
    struct str inm = cache_req_header(r, "If-None-Match");
    struct str etag = resp_value(r, "ETag");
    if (inm.p) {
        if (!etag.len)
            return 0;
        if (inm.len == 1 && inm.p[0] == '*')
            return 1;
        struct str e = etag;
        if (e.len > 2 && e.p[0] == 'W' && e.p[1] == '/')
            e = (struct str){e.p + 2, e.len - 2};
        for (size_t i = 0; i + e.len <= inm.len; i++)
            if (memcmp(inm.p + i, e.p, e.len) == 0)
                return 1;
        return 0;
    }
    struct str ims = cache_req_header(r, "If-Modified-Since");
    struct str lm = resp_value(r, "Last-Modified");
    return ims.p && lm.len && str_eq(ims, lm);
}

/* A single "bytes=a-b" range over `len` bytes: 1 (set *from, *to), 0 none
 * or not satisfiable as one range (the full response), -1 unsatisfiable. */
static int parse_range(struct str v, uint64_t len, uint64_t *from, uint64_t *to)
{
    if (v.len < 7 || strncasecmp(v.p, "bytes=", 6) != 0 || memchr(v.p, ',', v.len))
        return 0;
    const char *p = v.p + 6, *end = v.p + v.len;
    const char *dash = memchr(p, '-', (size_t)(end - p));
    if (!dash)
        return 0;
    uint64_t a = 0, b = 0;
    int has_a = dash > p, has_b = dash + 1 < end;
    if ((has_a && str_to_u64((struct str){p, (size_t)(dash - p)}, UINT64_MAX / 2, &a) != 0) ||
        (has_b && str_to_u64((struct str){dash + 1, (size_t)(end - dash - 1)}, UINT64_MAX / 2,
                             &b) != 0) ||
        (!has_a && !has_b))
        return 0;
    if (!has_a) { /* suffix: the last b bytes */
        if (b == 0)
            return -1;
        *from = b >= len ? 0 : len - b;
        *to = len - 1;
        return 1;
    }
    if (a >= len)
        return -1;
    if (has_b && b < a)
        return 0;
    *from = a;
    *to = has_b && b < len ? b : len - 1;
    return 1;
}

/* Put the stored head into r->resp. -1 when out of memory. */
static int load_head(struct request *r, const struct cache_req *c)
{
    const char *p = c->meta + c->hdr.key_len;
    const char *end = p + c->hdr.head_len;
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (!eol || !colon || colon > eol)
            break;
        struct str name = {p, (size_t)(colon - p)};
        struct str value = {colon + 2, (size_t)(eol - colon - 2)};
        if (resp_add(r, name, value) < 0)
            return -1;
        p = eol + 2;
    }
    return 0;
}

/* proxy_cache_background_update: the request that refreshes the entry this
 * one serves stale takes over its UPDATING mark. */
static void start_background(struct client_stream *s, struct cache_req *c)
{
    c->background = 0;
    if (subrequest_start_background(s, http_proxy_handler))
        c->updating_mine = 0; /* the background request's now */
    else
        clear_updating(c);
}

void cache_serve(struct client_stream *s, struct cache_req *c)
{
    struct request *r = &s->req;
    if (c->background)
        start_background(s, c);
    int fd = c->fd;
    c->fd = -1;
    r->status = c->hdr.status;
    if (load_head(r, c) < 0) {
        close(fd);
        s->ops->abort(s, "out of memory");
        return;
    }
    http_filters_install(s);
    off_t off = (off_t)(sizeof(c->hdr) + c->hdr.key_len + c->hdr.head_len + c->hdr.vary_len);
    uint64_t len = c->hdr.body_len;
    int bodiless = r->status < 200 || r->status == 204 || r->status == 304;
    if (r->status == 200 && not_modified(r)) {
        r->status = 304;
        resp_remove(r, "Content-Type");
        bodiless = 1;
    }
    struct str range = cache_req_header(r, "Range");
    struct str if_range = cache_req_header(r, "If-Range");
    /* nginx: ranges only when the upstream said Accept-Ranges */
    if (r->status == 200 && range.p && len && resp_value(r, "Accept-Ranges").len &&
        r->lc->max_ranges != 0 &&
        (!if_range.p || str_eq(if_range, resp_value(r, "ETag")) ||
         str_eq(if_range, resp_value(r, "Last-Modified")))) {
        uint64_t from = 0, to = 0;
        int rc = parse_range(range, len, &from, &to);
        if (rc == 0 && memchr(range.p, ',', range.len)) {
            /* several ranges: nginx's multipart/byteranges (http/byteranges.h) */
            struct byterange rg[BYTERANGES_MAX];
            unsigned n;
            enum byteranges_rc br = byteranges_parse(range, len, rg, &n, r->lc->max_ranges);
            char *body;
            size_t blen;
            struct str ctype;
            if (br == BYTERANGES_UNSATISFIABLE) {
                rc = -1;
            } else if (br == BYTERANGES_OK && n == 1) {
                rc = 1;
                from = rg[0].from;
                to = rg[0].to;
            } else if (br == BYTERANGES_OK &&
                       byteranges_multipart(&r->arena, fd, off, len, rg, n,
                                            resp_value(r, "Content-Type"), &body, &blen,
                                            &ctype) == 0) {
                close(fd);
                resp_remove(r, "Content-Type");
                char *cl = arena_printf(&r->arena, "%zu", blen);
                if (!cl || resp_add(r, STR_LIT("Content-Type"), ctype) < 0 ||
                    resp_add(r, STR_LIT("Content-Length"), str_from_cstr(cl)) < 0) {
                    s->ops->abort(s, "out of memory");
                    return;
                }
                r->status = 206;
                r->head_sent = 1;
                s->ops->send_memory(s, str_eq(r->method, STR_LIT("HEAD")) ? NULL : body,
                                    str_eq(r->method, STR_LIT("HEAD")) ? 0 : blen);
                return;
            }
        }
        if (rc < 0) {
            close(fd);
            r->nresp = 0;
            char *cr = arena_printf(&r->arena, "bytes */%llu", (unsigned long long)len);
            if (cr)
                resp_add(r, STR_LIT("Content-Range"), str_from_cstr(cr));
            http_respond_status(s, 416);
            return;
        }
        if (rc > 0) {
            char *cr = arena_printf(&r->arena, "bytes %llu-%llu/%llu", (unsigned long long)from,
                                    (unsigned long long)to, (unsigned long long)len);
            if (cr)
                resp_add(r, STR_LIT("Content-Range"), str_from_cstr(cr));
            r->status = 206;
            off += (off_t)from;
            len = to - from + 1;
        }
    }
    if (!bodiless) {
        char *cl = arena_printf(&r->arena, "%llu", (unsigned long long)len);
        if (!cl || resp_add(r, STR_LIT("Content-Length"), str_from_cstr(cl)) < 0) {
            close(fd);
            s->ops->abort(s, "out of memory");
            return;
        }
    }
    r->head_sent = 1;
    if (bodiless || str_eq(r->method, STR_LIT("HEAD")) || len == 0) {
        close(fd);
        s->ops->send_memory(s, NULL, 0);
        return;
    }
    if (c->body) { /* small: head and body in one write */
        close(fd);
        off_t boff = off - (off_t)(sizeof(c->hdr) + c->hdr.key_len + c->hdr.head_len +
                                   c->hdr.vary_len);
        s->ops->send_memory(s, c->body + boff, (size_t)len);
        return;
    }
    s->ops->send_file(s, fd, off, (off_t)len);
}

int cache_miss_range(const struct cache_req *c, const struct request *r,
                     const struct h1_header *uh, size_t nuh, uint64_t len, uint64_t *from,
                     uint64_t *to)
{
    if (!c || c->tfd < 0 || !len || c->head_as_get)
        return 0;
    struct str range = cache_req_header(r, "Range");
    if (!range.p || cache_req_header(r, "If-Range").p)
        return 0;
    int accept = 0;
    for (size_t i = 0; i < nuh; i++)
        if (str_caseeq_cstr(uh[i].name, "accept-ranges") && uh[i].value.len)
            accept = 1;
    return accept ? parse_range(range, len, from, to) : 0;
}

int cache_head_as_get(struct cache_req *c, const struct request *r)
{
    if (!c || !c->cc->convert_head || !str_eq(r->method, STR_LIT("HEAD")))
        return 0;
    c->head_as_get = 1;
    return 1;
}

int cache_drops_request_header(unsigned id, struct str name)
{
    (void)id;
    return str_caseeq_cstr(name, "range") || str_caseeq_cstr(name, "if-range") ||
           str_caseeq_cstr(name, "if-none-match") || str_caseeq_cstr(name, "if-match") ||
           str_caseeq_cstr(name, "if-modified-since") ||
           str_caseeq_cstr(name, "if-unmodified-since");
}

/* ------------------------------------------------------------ storing */

/* The value of `directive=N` in a Cache-Control list, or -1. */
static int64_t cc_number(struct str v, const char *directive)
{
    size_t dl = strlen(directive);
    for (size_t i = 0; i + dl < v.len; i++) {
        if ((i == 0 || v.p[i - 1] == ' ' || v.p[i - 1] == ',') &&
            strncasecmp(v.p + i, directive, dl) == 0 && v.p[i + dl] == '=') {
            uint64_t n = 0;
            size_t j = i + dl + 1, k = j;
            while (k < v.len && v.p[k] >= '0' && v.p[k] <= '9')
                k++;
            if (k == j || str_to_u64((struct str){v.p + j, k - j}, INT32_MAX, &n) != 0)
                return -1;
            return (int64_t)n;
        }
    }
    return -1;
}

static int64_t http_time(struct str v)
{
    char buf[64];
    if (v.len >= sizeof(buf))
        return -1;
    memcpy(buf, v.p, v.len);
    buf[v.len] = '\0';
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *e = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return e && *e == '\0' ? (int64_t)timegm(&tm) : -1;
}

/*
 * How long the response stays fresh (seconds), as nginx decides it:
 * X-Accel-Expires, then Cache-Control, then Expires, then proxy_cache_valid.
 * 0: not stored. *cc_public: Cache-Control allows a response to an
 * Authorization request (public, s-maxage, must-revalidate).
 */
static int64_t validity(const struct cache_req *c, const struct request *r, int status,
                        const struct h1_header *uh, size_t n, int *cc_public)
{
    unsigned ign = r->lc->proxy_ignore_headers;
    int64_t now = now_sec();
    *cc_public = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(ign & PROXY_IGNORE_XA_EXPIRES) && str_caseeq_cstr(uh[i].name, "x-accel-expires")) {
            struct str v = uh[i].value;
            uint64_t t;
            if (v.len > 1 && v.p[0] == '@') {
                if (str_to_u64((struct str){v.p + 1, v.len - 1}, INT64_MAX, &t) != 0)
                    continue;
                return (int64_t)t > now ? (int64_t)t - now : 0;
            }
            if (str_to_u64(v, INT32_MAX, &t) == 0)
                return (int64_t)t;
        }
    }
    int64_t valid = -1;
    for (size_t i = 0; i < n; i++) {
        if (!str_caseeq_cstr(uh[i].name, "cache-control"))
            continue;
        struct str v = uh[i].value;
        if (str_has_token(v, "public") || str_has_token(v, "must-revalidate") ||
            cc_number(v, "s-maxage") >= 0)
            *cc_public = 1;
        if (ign & PROXY_IGNORE_CACHE_CONTROL)
            continue;
        if (str_has_token(v, "no-cache") || str_has_token(v, "no-store") ||
            str_has_token(v, "private"))
            return 0;
        int64_t m = cc_number(v, "s-maxage");
        if (m < 0)
            m = cc_number(v, "max-age");
        if (m == 0)
            return 0;
        if (m > 0)
            valid = m;
    }
    if (valid > 0)
        return valid;
    for (size_t i = 0; !(ign & PROXY_IGNORE_EXPIRES) && i < n; i++) {
        if (str_caseeq_cstr(uh[i].name, "expires")) {
            int64_t t = http_time(uh[i].value);
            return t > now ? t - now : 0;
        }
    }
    return (int64_t)cache_valid_sec(c->cc, (unsigned)status);
}

/* Append `n` bytes to the temporary file; a failure drops the store. */
static void store_write(struct cache_req *c, const void *p, size_t n)
{
    const char *b = p;
    while (n && c->tfd >= 0) {
        ssize_t w = write(c->tfd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            store_failed(c, "write() to", c->tpath, w < 0 ? errno : ENOSPC);
            cache_store_abort(c);
            return;
        }
        b += w;
        n -= (size_t)w;
        c->written += (uint64_t)w;
    }
}

/* The Vary names' request values, "name: value\n" each, or NULL when the
 * response must not be stored (Vary: *). */
static char *vary_values(struct request *r, const struct h1_header *uh, size_t n, size_t *len)
{
    char *out = arena_alloc(&r->arena, 1);
    if (!out)
        return NULL;
    *out = '\0';
    *len = 0;
    for (size_t i = 0; i < n; i++) {
        if (!str_caseeq_cstr(uh[i].name, "vary"))
            continue;
        struct str v = uh[i].value;
        size_t pos = 0;
        while (pos < v.len) {
            while (pos < v.len && (v.p[pos] == ' ' || v.p[pos] == ','))
                pos++;
            size_t st = pos;
            while (pos < v.len && v.p[pos] != ',' && v.p[pos] != ' ')
                pos++;
            if (pos == st)
                continue;
            if (pos - st == 1 && v.p[st] == '*')
                return NULL;
            char name[128];
            if (pos - st >= sizeof(name))
                return NULL;
            memcpy(name, v.p + st, pos - st);
            name[pos - st] = '\0';
            struct str val = vary_value(&r->arena, cache_req_header(r, name));
            out = arena_printf(&r->arena, "%s%s: %.*s\n", out, name, (int)val.len,
                               val.p ? val.p : "");
            if (!out)
                return NULL;
        }
    }
    *len = strlen(out);
    return out;
}

/* Headers the stored head leaves out: the length is the file's on a hit. */
static int stored_skip(const struct resp_header *h)
{
    return str_caseeq_cstr(h->name, "content-length") ||
           str_caseeq_cstr(h->name, "transfer-encoding");
}

/* Cache-Control stale-while-revalidate=N and stale-if-error=N (nginx reads
 * them unless Cache-Control is ignored). */
static void stale_extensions(const struct request *r, const struct h1_header *uh, size_t n,
                             uint32_t *updating, uint32_t *error)
{
    *updating = *error = 0;
    if (r->lc->proxy_ignore_headers & PROXY_IGNORE_CACHE_CONTROL)
        return;
    for (size_t i = 0; i < n; i++) {
        if (!str_caseeq_cstr(uh[i].name, "cache-control"))
            continue;
        int64_t v = cc_number(uh[i].value, "stale-while-revalidate");
        if (v > 0)
            *updating = (uint32_t)v;
        v = cc_number(uh[i].value, "stale-if-error");
        if (v > 0)
            *error = (uint32_t)v;
    }
}

/* What may be stored of a response with `status`: its validity (seconds
 * from now, > 0), or 0 (proxy_no_cache, min_uses, Set-Cookie, no validity,
 * credentials, ...). */
static int64_t storable(struct cache_req *c, struct client_stream *s, int status,
                        const struct h1_header *uh, size_t nuh)
{
    struct request *r = &s->req;
    const struct cache_conf *cc = c->cc;
    if (status == 206 || c->uses < (uint64_t)cc->min_uses || c->no_store)
        return 0;
    if (conds_true(s, cc->no_cache, cc->nno_cache))
        return 0;
    unsigned ign = r->lc->proxy_ignore_headers;
    for (size_t i = 0; i < nuh; i++)
        if (!(ign & PROXY_IGNORE_SET_COOKIE) && str_caseeq_cstr(uh[i].name, "set-cookie"))
            return 0;
    int cc_public;
    int64_t valid = validity(c, r, status, uh, nuh, &cc_public);
    if (valid <= 0)
        return 0;
    /* RFC 9111 §3.5: a response to a request with credentials is shared
     * only when it says so (nginx stores it anyway: docs/differences.md) */
    if (cache_req_header(r, "Authorization").p && !cc_public)
        return 0;
    return valid;
}

int cache_error_status(const struct cache_req *c)
{
    return c->error_status;
}

void cache_store_error(struct cache_req *c, struct client_stream *s, int status,
                       const struct h1_header *uh, size_t nuh)
{
    int64_t valid = storable(c, s, status, uh, nuh);
    if (valid <= 0 || status > 0xffff) {
        clear_updating(c);
        return;
    }
    struct zone_key k;
    shm_zone_make_key(c->md5, sizeof(c->md5), &k);
    shm_zone_lock(c->zone);
    uint32_t h = shm_zone_hash(c->zone, &k);
    struct zone_node *n = shm_zone_find(c->zone, h, &k);
    if (!n)
        n = shm_zone_insert(c->zone, h, &k);
    if (n) {
        n->c_error = (uint32_t)status;
        n->c_valid_sec = now_sec() + valid;
        n->c_used_ms = loop_now();
        if (c->updating_mine && n->c_fill_pid == (uint32_t)getpid())
            n->c_flags = (uint16_t)(n->c_flags & ~ZONE_CACHE_UPDATING);
    }
    shm_zone_unlock(c->zone);
    c->updating_mine = 0;
}

void cache_store_begin(struct cache_req *c, struct client_stream *s, int status,
                       const struct h1_header *uh, size_t nuh)
{
    struct request *r = &s->req;
    if (c->tfd >= 0 || (!str_eq(r->method, STR_LIT("GET")) && !str_eq(r->method, STR_LIT("POST")) &&
                        !c->head_as_get))
        return; /* a HEAD answer has no body to store */
    int64_t valid = storable(c, s, status, uh, nuh);
    if (valid <= 0)
        return;
    unsigned ign = r->lc->proxy_ignore_headers;
    size_t vary_len = 0;
    char *vary = "";
    if (!(ign & PROXY_IGNORE_VARY) && !(vary = vary_values(r, uh, nuh, &vary_len)))
        return;
    if (c->variant) {
        /* nginx: a response fetched under a variant's key stays there only
         * when its own Vary gives that variant; one without Vary, or with
         * another Vary, replaces the main key's entry */
        char *mine = vary_len ? arena_printf(&r->arena, "%.*s\nvariant\n%s",
                                             (int)c->main_key.len, c->main_key.p, vary)
                              : NULL;
        if (!mine || strlen(mine) != c->key.len || memcmp(mine, c->key.p, c->key.len) != 0) {
            clear_updating(c);
            c->key = c->main_key;
            memcpy(c->md5, c->main_md5, sizeof(c->md5));
            c->path = c->main_path;
            c->variant = 0;
        }
    }

    /* the head as it goes to the client (add_header comes anew on a hit) */
    size_t head_len = 0;
    for (unsigned i = 0; i < r->nresp; i++)
        if (!stored_skip(&r->resp[i]))
            head_len += r->resp[i].name.len + r->resp[i].value.len + 4;
    if (c->key.len + head_len + vary_len > CACHE_META_MAX)
        return;

    static unsigned serial;
    c->tpath = arena_printf(&r->arena, "%s.%ld.%u.tmp", c->path, (long)getpid(), ++serial);
    if (!c->tpath)
        return;
    c->tfd = open(c->tpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (c->tfd < 0 && errno == ENOENT && make_dirs(c->tpath) == 0)
        c->tfd = open(c->tpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (c->tfd < 0) {
        store_failed(c, "open()", c->tpath, errno);
        return;
    }
    c->valid_sec = now_sec() + valid;
    c->hdr = (struct cache_file_hdr){.valid_sec = c->valid_sec,
                                     .date = now_sec(),
                                     .key_len = (uint32_t)c->key.len,
                                     .head_len = (uint32_t)head_len,
                                     .vary_len = (uint32_t)vary_len,
                                     .status = status};
    stale_extensions(r, uh, nuh, &c->hdr.updating_sec, &c->hdr.error_sec);
    memcpy(c->hdr.magic, CACHE_MAGIC, 8);
    store_write(c, &c->hdr, sizeof(c->hdr));
    store_write(c, c->key.p, c->key.len);
    for (unsigned i = 0; i < r->nresp && c->tfd >= 0; i++) {
        if (stored_skip(&r->resp[i]))
            continue;
        store_write(c, r->resp[i].name.p, r->resp[i].name.len);
        store_write(c, ": ", 2);
        store_write(c, r->resp[i].value.p, r->resp[i].value.len);
        store_write(c, "\r\n", 2);
    }
    store_write(c, vary, vary_len);
    c->written = 0; /* body bytes from here */
}

void cache_store_body(struct cache_req *c, const void *p, size_t n)
{
    if (!c || c->tfd < 0)
        return;
    store_write(c, p, n);
    if (c->tfd >= 0 && c->cz->max_size != UINT64_MAX && c->written > c->cz->max_size)
        cache_store_abort(c); /* larger than the whole cache may be */
}

void cache_store_done(struct cache_req *c)
{
    if (!c)
        return;
    if (c->tfd < 0) {
        clear_updating(c);
        return;
    }
    c->hdr.body_len = c->written;
    if (pwrite(c->tfd, &c->hdr, sizeof(c->hdr), 0) != (ssize_t)sizeof(c->hdr)) {
        store_failed(c, "write() to", c->tpath, errno);
        cache_store_abort(c);
        return;
    }
    struct stat st;
    uint64_t fsize = fstat(c->tfd, &st) == 0 ? (uint64_t)st.st_size : c->written;
    close(c->tfd);
    c->tfd = -1;
    if (rename(c->tpath, c->path) < 0) {
        store_failed(c, "rename() to", c->path, errno);
        unlink(c->tpath);
        return;
    }
    c->done = 1;
    struct zone_key k;
    shm_zone_make_key(c->md5, sizeof(c->md5), &k);
    shm_zone_lock(c->zone);
    uint32_t h = shm_zone_hash(c->zone, &k);
    struct zone_node *n = shm_zone_find(c->zone, h, &k);
    if (!n)
        n = shm_zone_insert(c->zone, h, &k);
    if (n) {
        n->c_flags |= ZONE_CACHE_EXISTS;
        n->c_error = 0; /* a stored response replaces a stored error */
        if (n->c_fill_pid == (uint32_t)getpid())
            n->c_flags = (uint16_t)(n->c_flags & ~ZONE_CACHE_UPDATING);
        n->c_valid_sec = c->valid_sec;
        n->c_fsize = fsize;
        n->c_used_ms = loop_now();
    }
    shm_zone_unlock(c->zone);
    c->updating_mine = 0;
}

/* A validator of the stored head ("ETag", "Last-Modified"), or STR_NULL. */
static struct str stored_header(const struct cache_req *c, const char *name)
{
    const char *p = c->meta + c->hdr.key_len;
    const char *end = p + c->hdr.head_len;
    size_t nl = strlen(name);
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol)
            break;
        if ((size_t)(eol - p) > nl + 2 && strncasecmp(p, name, nl) == 0 && p[nl] == ':')
            return (struct str){p + nl + 2, (size_t)(eol - p - nl - 2)};
        p = eol + 2;
    }
    return STR_NULL;
}

int cache_revalidate_headers(const struct cache_req *c, struct str *ims, struct str *inm)
{
    /* nginx revalidates only what it stored from a 200 or a 206 */
    if (!c || !c->stale || c->fd < 0 || !c->cc->revalidate ||
        (c->hdr.status != 200 && c->hdr.status != 206))
        return 0;
    *ims = stored_header(c, "Last-Modified");
    *inm = stored_header(c, "ETag");
    return ims->len || inm->len;
}

void cache_serve_revalidated(struct client_stream *s, struct cache_req *c,
                             const struct h1_header *uh, size_t nuh)
{
    struct request *r = &s->req;
    int pub;
    int64_t valid = validity(c, r, c->hdr.status, uh, nuh, &pub);
    static const char *const says[] = {"X-Accel-Expires", "Cache-Control", "Expires"};
    int said = 0;
    for (size_t i = 0; i < nuh; i++)
        for (unsigned k = 0; k < 3; k++)
            said |= str_caseeq_cstr(uh[i].name, says[k]);
    if (!said) {
        /* a 304 that says nothing of its freshness: the stored response's
         * headers say it anew from now (nginx re-reads them) */
        struct h1_header stored[3];
        size_t ns = 0;
        for (unsigned k = 0; k < 3; k++) {
            struct str v = stored_header(c, says[k]);
            if (v.p)
                stored[ns++] = (struct h1_header){str_from_cstr(says[k]), v, H1_H_OTHER};
        }
        valid = validity(c, r, c->hdr.status, stored, ns, &pub);
    }
    if (valid > 0) { /* fresh again: the file's header and the zone say until when */
        int64_t until = now_sec() + valid;
        int wfd = open(c->path, O_WRONLY | O_CLOEXEC);
        if (wfd >= 0) {
            if (pwrite(wfd, &until, sizeof(until), offsetof(struct cache_file_hdr, valid_sec)) ==
                (ssize_t)sizeof(until)) {
                struct zone_key k;
                shm_zone_make_key(c->md5, sizeof(c->md5), &k);
                shm_zone_lock(c->zone);
                struct zone_node *n = shm_zone_find(c->zone, shm_zone_hash(c->zone, &k), &k);
                if (n)
                    n->c_valid_sec = until;
                shm_zone_unlock(c->zone);
            }
            close(wfd);
        }
    }
    clear_updating(c);
    if (c->tfd >= 0) {
        close(c->tfd);
        c->tfd = -1;
        unlink(c->tpath);
    }
    r->cache_status = CACHE_ST_REVALIDATED;
    r->nresp = 0;
    r->up_headers = NULL;
    r->nup_headers = 0;
    cache_serve(s, c);
}

int cache_stale_allowed(const struct cache_req *c, unsigned flag)
{
    if (!c || !c->stale || c->fd < 0 || !flag)
        return 0;
    if (c->cc->use_stale & flag)
        return 1;
    /* stale-if-error=N: a failure to get a response (not an error status,
     * as nginx), for N seconds after the entry expired */
    unsigned errors = NEXT_UPSTREAM_ERROR | NEXT_UPSTREAM_TIMEOUT | NEXT_UPSTREAM_INVALID_HEADER;
    return (flag & errors) && c->hdr.error_sec &&
           now_sec() <= c->hdr.valid_sec + (int64_t)c->hdr.error_sec;
}

void cache_serve_stale(struct client_stream *s, struct cache_req *c)
{
    struct request *r = &s->req;
    clear_updating(c);
    if (c->tfd >= 0) {
        close(c->tfd);
        c->tfd = -1;
        unlink(c->tpath);
    }
    r->cache_status = CACHE_ST_STALE;
    r->nresp = 0;
    r->up_headers = NULL;
    r->nup_headers = 0;
    cache_serve(s, c);
}

void cache_store_abort(struct cache_req *c)
{
    if (!c)
        return;
    timer_cancel(&c->wait_timer);
    clear_updating(c);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (c->tfd < 0)
        return;
    close(c->tfd);
    c->tfd = -1;
    unlink(c->tpath);
}
