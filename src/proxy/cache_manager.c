/*
 * cache_manager.c - the cache loader and manager (cache_manager.h): what
 * nginx's cache loader and cache manager processes do, run by the process
 * that serves no traffic (the master; the single process of
 * `master_process off`).
 */
#include "proxy/cache_manager.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "conf/cache.h"
#include "conf/conf.h"
#include "conf/runtime.h"
#include "core/log.h"
#include "core/shm_zone.h"
#include "proxy/cache.h"

#define LOADERS_MAX 64
#define VICTIMS_MAX 1024
#define LOADER_DEPTH 4 /* the zone's directory and up to three `levels` */

/*
 * A zone's loader: a directory walk resumed from one iteration to the next
 * (loader_files entries or loader_threshold each, loader_sleep between), so
 * a large cache does not hold up the start; the first iteration runs before
 * the workers start, which indexes a small cache completely. A zone whose
 * table was wiped (a worker died holding its lock: core/shm_zone.h) is
 * walked again.
 */
struct loader {
    ino_t ino;              /* the zone (its memfd's inode) */
    uint32_t epoch;         /* the zone's epoch the walk started at */
    int walking;            /* a walk is under way */
    int depth;              /* dirs[0..depth] are open */
    DIR *dirs[LOADER_DEPTH];
    size_t plen[LOADER_DEPTH];
    char path[4096];
    struct timespec tmp_before; /* temporary files older than this are leftovers */
    unsigned n;             /* entries indexed by this walk */
};

static struct loader loaders[LOADERS_MAX];
static unsigned nloaders;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int unhex(const char *h, unsigned char out[16])
{
    for (int i = 0; i < 32; i++) {
        char c = h[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        if (i % 2 == 0)
            out[i / 2] = (unsigned char)(v << 4);
        else
            out[i / 2] |= (unsigned char)v;
    }
    return 0;
}

/* One file of the cache directory: indexed when it is a complete entry,
 * removed when it is a temporary file left by a fill that never ended. */
static void load_file(struct shm_zone *z, const char *path, const char *name,
                      const struct stat *lst, struct timespec tmp_before, unsigned *n)
{
    size_t len = strlen(name);
    if (len > 4 && strcmp(name + len - 4, ".tmp") == 0) {
        /* a fill of an earlier run that never ended; this run's fills are
         * newer (workers may fill while the walk goes on) */
        if (lst->st_mtim.tv_sec < tmp_before.tv_sec ||
            (lst->st_mtim.tv_sec == tmp_before.tv_sec &&
             lst->st_mtim.tv_nsec <= tmp_before.tv_nsec)) /* the same clock tick too */
            unlink(path);
        return;
    }
    unsigned char md5[16];
    if (len != 32 || unhex(name, md5) < 0)
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct cache_file_hdr h;
    struct stat st;
    int ok = pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) && fstat(fd, &st) == 0 &&
             memcmp(h.magic, CACHE_MAGIC, 8) == 0 &&
             sizeof(h) + (uint64_t)h.key_len + h.head_len + h.vary_len + h.body_len ==
                 (uint64_t)st.st_size;
    close(fd);
    if (!ok) {
        unlink(path); /* not ours, or damaged: never served */
        return;
    }
    struct zone_key k;
    shm_zone_make_key(md5, sizeof(md5), &k);
    shm_zone_lock(z);
    uint32_t hash = shm_zone_hash(z, &k);
    struct zone_node *node = shm_zone_find(z, hash, &k);
    if (!node)
        node = shm_zone_insert(z, hash, &k);
    if (node) {
        node->c_flags |= ZONE_CACHE_EXISTS;
        node->c_valid_sec = h.valid_sec;
        node->c_fsize = (uint64_t)st.st_size;
        node->c_used_ms = mono_ms();
        if (!node->c_uses)
            node->c_uses = 1;
        (*n)++;
    }
    shm_zone_unlock(z);
}

/* Workers run as `user` when the master is root: the cache directory is
 * theirs to write (nginx's ngx_create_paths does the same). */
static void give_to_workers(const struct main_conf *m, const char *path)
{
    if (!m->user || geteuid() != 0)
        return;
    struct passwd *pw = getpwnam(m->user);
    if (!pw)
        return; /* the master reports it when it switches */
    gid_t gid = pw->pw_gid;
    struct group *gr = m->group ? getgrnam(m->group) : NULL;
    if (gr)
        gid = gr->gr_gid;
    if (chown(path, pw->pw_uid, gid) < 0)
        sy_log(LOG_LVL_CRIT, "chown(\"%s\", %s) failed (%d: %s)", path, m->user, errno,
               strerror(errno));
}

static void loader_start(struct loader *L, struct shm_zone *z, const char *path, int first)
{
    L->epoch = shm_zone_epoch(z);
    L->n = 0;
    L->depth = -1;
    L->tmp_before = (struct timespec){0, 0}; /* a walk again removes nothing */
    if (first)
        clock_gettime(CLOCK_REALTIME, &L->tmp_before); /* mtimes are at most this (coarse or fine) */
    size_t len = strlen(path);
    if (len >= sizeof(L->path))
        return;
    memcpy(L->path, path, len + 1);
    L->dirs[0] = opendir(path);
    if (!L->dirs[0])
        return;
    L->plen[0] = len;
    L->depth = 0;
    L->walking = 1;
}

/* One iteration of a walk: up to loader_files entries, or loader_threshold. */
static void loader_step(struct loader *L, struct shm_zone *z, const struct cache_zone *cz)
{
    uint64_t t0 = mono_ms();
    unsigned files = 0, before = L->n;
    while (L->walking && files < cz->loader_files && mono_ms() - t0 < cz->loader_threshold_ms) {
        struct dirent *e = readdir(L->dirs[L->depth]);
        if (!e) {
            closedir(L->dirs[L->depth--]);
            if (L->depth < 0)
                L->walking = 0;
            continue;
        }
        if (e->d_name[0] == '.')
            continue;
        size_t base = L->plen[L->depth], nl = strlen(e->d_name);
        if (base + 1 + nl >= sizeof(L->path))
            continue;
        L->path[base] = '/';
        memcpy(L->path + base + 1, e->d_name, nl + 1);
        struct stat st;
        if (lstat(L->path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode) && L->depth + 1 < LOADER_DEPTH) {
            DIR *d = opendir(L->path);
            if (d) {
                L->dirs[++L->depth] = d;
                L->plen[L->depth] = base + 1 + nl;
            }
        } else if (S_ISREG(st.st_mode)) {
            load_file(z, L->path, e->d_name, &st, L->tmp_before, &L->n);
            files++;
        }
    }
    sy_log(LOG_LVL_DEBUG, "http file cache loader: \"%s\", %u entries in this iteration",
           cz->path, L->n - before);
    if (!L->walking)
        sy_log(LOG_LVL_NOTICE, "http file cache: %s, %u entries", cz->path, L->n);
}

static struct loader *loader_of(const struct shm_zone *z)
{
    for (unsigned j = 0; j < nloaders; j++)
        if (loaders[j].ino == z->ino)
            return &loaders[j];
    return NULL;
}

/* The loader's work for zone `z`: start (a new zone, or a wiped one), or go
 * on with its walk. 1 while a walk is under way. */
static int loader_run_zone(const struct gen_rt *rt, struct shm_zone *z,
                           const struct cache_zone *cz)
{
    struct loader *L = loader_of(z);
    if (!L) {
        if (nloaders == LOADERS_MAX)
            return 0;
        L = &loaders[nloaders++];
        L->ino = z->ino;
        if (mkdir(cz->path, 0700) == 0)
            give_to_workers(&rt->gen->main, cz->path);
        else if (errno != EEXIST)
            sy_log(LOG_LVL_CRIT, "mkdir() \"%s\" failed (%d: %s)", cz->path, errno,
                   strerror(errno));
        loader_start(L, z, cz->path, 1);
    } else if (!L->walking && shm_zone_epoch(z) != L->epoch) {
        sy_log(LOG_LVL_NOTICE, "http file cache: %s was emptied (a process died holding its "
               "lock), indexing its files again", cz->path);
        loader_start(L, z, cz->path, 0);
    }
    if (L->walking)
        loader_step(L, z, cz);
    return L->walking;
}

void cache_loader_run(struct gen_rt *rt)
{
    const struct http_conf *hc = rt->gen->http;
    for (unsigned i = 0; hc && rt->cache_zones && i < hc->ncache_zones; i++)
        if (!loader_of(rt->cache_zones[i]))
            loader_run_zone(rt, rt->cache_zones[i], hc->cache_zones[i]);
}

/* Remove what is inactive, then the least recently used entries while the
 * cache is above max_size or the file system below min_free. */
static int manage_zone(struct shm_zone *z, const struct cache_zone *cz)
{
    static unsigned char victims[VICTIMS_MAX][16];
    static int victim_exists[VICTIMS_MAX];
    unsigned nv = 0, most = cz->manager_files < VICTIMS_MAX ? (unsigned)cz->manager_files
                                                             : VICTIMS_MAX;
    int more = 0;
    uint64_t need_free = 0;
    if (cz->min_free) {
        struct statvfs vfs;
        if (statvfs(cz->path, &vfs) == 0) {
            uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
            if (avail < cz->min_free)
                need_free = cz->min_free - avail;
        }
    }
    uint64_t t0 = mono_ms(), now = t0;
    shm_zone_lock(z);
    uint64_t total = 0;
    for (struct zone_node *n = shm_zone_oldest(z); n; n = shm_zone_newer(z, n))
        if (n->c_flags & ZONE_CACHE_EXISTS)
            total += n->c_fsize;
    struct zone_node *n = shm_zone_oldest(z);
    while (n) {
        struct zone_node *next = shm_zone_newer(z, n);
        int inactive = now - n->c_used_ms >= cz->inactive_ms;
        int over = (cz->max_size != UINT64_MAX && total > cz->max_size) || need_free > 0;
        if (!inactive && !over)
            break; /* the rest was used more recently */
        if (nv == most || mono_ms() - t0 >= cz->manager_threshold_ms) {
            more = 1; /* the next iteration, after manager_sleep */
            break;
        }
        if ((n->c_flags & ZONE_CACHE_UPDATING) && now - n->c_fill_ms < 60000) {
            n = next; /* being filled: its request finishes it */
            continue;
        }
        if (n->c_flags & ZONE_CACHE_EXISTS) {
            total -= n->c_fsize;
            need_free = need_free > n->c_fsize ? need_free - n->c_fsize : 0;
        }
        memcpy(victims[nv], n->key, 16);
        victim_exists[nv++] = (n->c_flags & ZONE_CACHE_EXISTS) != 0;
        shm_zone_remove(z, n);
        n = next;
    }
    shm_zone_unlock(z);
    /* the files go after the lock is released (no syscall under it) */
    struct arena a;
    arena_init(&a, 4096);
    for (unsigned i = 0; i < nv; i++) {
        if (!victim_exists[i])
            continue;
        char *p = cache_entry_path(&a, cz, victims[i]);
        if (p)
            unlink(p);
        if (i % 32 == 31)
            arena_reset(&a);
    }
    arena_destroy(&a);
    if (nv)
        sy_log(LOG_LVL_DEBUG, "http file cache manager: \"%s\", %u entries removed in this "
               "iteration", cz->path, nv);
    return more;
}

unsigned cache_manager_run(struct gen_rt *rt)
{
    const struct http_conf *hc = rt->gen->http;
    uint64_t next = CACHE_MANAGER_INTERVAL_MS;
    if (!hc || !rt->cache_zones)
        return (unsigned)next;
    for (unsigned i = 0; i < hc->ncache_zones; i++) {
        const struct cache_zone *cz = hc->cache_zones[i];
        if (loader_run_zone(rt, rt->cache_zones[i], cz) && cz->loader_sleep_ms < next)
            next = cz->loader_sleep_ms;
        if (manage_zone(rt->cache_zones[i], cz) && cz->manager_sleep_ms < next)
            next = cz->manager_sleep_ms;
    }
    return next ? (unsigned)next : 1;
}
