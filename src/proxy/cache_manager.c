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

#define LOADED_MAX 64
#define VICTIMS_MAX 1024

static ino_t loaded[LOADED_MAX]; /* zones this process has indexed (memfd inode) */
static unsigned nloaded;

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
static void load_file(struct shm_zone *z, const char *path, const char *name, unsigned *n)
{
    size_t len = strlen(name);
    if (len > 4 && strcmp(name + len - 4, ".tmp") == 0) {
        unlink(path); /* nothing fills before the loader ran */
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

static void load_dir(struct shm_zone *z, const char *dir, int depth, unsigned *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path))
            continue;
        struct stat st;
        if (lstat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth < 3)
            load_dir(z, path, depth + 1, n);
        else if (S_ISREG(st.st_mode))
            load_file(z, path, e->d_name, n);
    }
    closedir(d);
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

void cache_loader_run(struct gen_rt *rt)
{
    const struct http_conf *hc = rt->gen->http;
    for (unsigned i = 0; hc && rt->cache_zones && i < hc->ncache_zones; i++) {
        struct shm_zone *z = rt->cache_zones[i];
        int seen = 0;
        for (unsigned j = 0; j < nloaded; j++)
            if (loaded[j] == z->ino)
                seen = 1;
        if (seen || nloaded == LOADED_MAX)
            continue;
        loaded[nloaded++] = z->ino;
        const struct cache_zone *cz = hc->cache_zones[i];
        if (mkdir(cz->path, 0700) == 0)
            give_to_workers(&rt->gen->main, cz->path);
        else if (errno != EEXIST)
            sy_log(LOG_LVL_CRIT, "mkdir() \"%s\" failed (%d: %s)", cz->path, errno,
                   strerror(errno));
        unsigned n = 0;
        load_dir(z, cz->path, 0, &n);
        sy_log(LOG_LVL_NOTICE, "http file cache: %s, %u entries", cz->path, n);
    }
}

/* Remove what is inactive, then the least recently used entries while the
 * cache is above max_size or the file system below min_free. */
static void manage_zone(struct shm_zone *z, const struct cache_zone *cz)
{
    static unsigned char victims[VICTIMS_MAX][16];
    static int victim_exists[VICTIMS_MAX];
    unsigned nv = 0;
    uint64_t need_free = 0;
    if (cz->min_free) {
        struct statvfs vfs;
        if (statvfs(cz->path, &vfs) == 0) {
            uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
            if (avail < cz->min_free)
                need_free = cz->min_free - avail;
        }
    }
    uint64_t now = mono_ms();
    shm_zone_lock(z);
    uint64_t total = 0;
    for (struct zone_node *n = shm_zone_oldest(z); n; n = shm_zone_newer(z, n))
        if (n->c_flags & ZONE_CACHE_EXISTS)
            total += n->c_fsize;
    struct zone_node *n = shm_zone_oldest(z);
    while (n && nv < VICTIMS_MAX) {
        struct zone_node *next = shm_zone_newer(z, n);
        int inactive = now - n->c_used_ms >= cz->inactive_ms;
        int over = (cz->max_size != UINT64_MAX && total > cz->max_size) || need_free > 0;
        if (!inactive && !over)
            break; /* the rest was used more recently */
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
}

void cache_manager_run(struct gen_rt *rt)
{
    const struct http_conf *hc = rt->gen->http;
    if (!hc || !rt->cache_zones)
        return;
    cache_loader_run(rt);
    for (unsigned i = 0; i < hc->ncache_zones; i++)
        manage_zone(rt->cache_zones[i], hc->cache_zones[i]);
}
