/*
 * shm_zone.c - shared-memory zones (see shm_zone.h): the per-process
 * registry of mapped zones, the hand-over from master to workers, and the
 * table inside a zone (robust lock, keyed hash, node pool, LRU).
 *
 * Layout of a zone's memory (offsets from the start of the mapping):
 *
 *   struct zone_hdr | uint32_t buckets[nbuckets] | struct zone_node nodes[nnodes]
 *
 * Node ids are index + 1, so 0 means "none" and a zero-filled memfd is an
 * empty bucket array: creating a zone writes only its header page, and node
 * pages are touched when first used ("fresh" counts the nodes ever used), so
 * a 10m zone costs memory only as keys arrive.
 */
#include "core/shm_zone.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/log.h"

#define ZONE_MAGIC 0x53595a31u /* "SYZ1": layout version 1 */

struct zone_hdr {
    uint32_t magic;
    uint32_t kind;
    uint64_t size;
    uint64_t seed;          /* hash key, random per zone */
    uint32_t nbuckets;      /* a power of two */
    uint32_t nnodes;
    uint32_t fresh;         /* nodes with index >= fresh were never used */
    uint32_t free_head;     /* freed nodes, chained through hnext */
    uint32_t lru_head;      /* most recently used */
    uint32_t lru_tail;      /* least recently used */
    uint32_t used;
    uint32_t epoch;         /* bumped by every wipe */
    uint64_t buckets_off;
    uint64_t nodes_off;
    pthread_mutex_t lock;   /* process-shared, robust */
};

static struct shm_zone *zones;  /* this process's registry */
static int follower;            /* a worker under a master */

/* ------------------------------------------------------------ layout */

static struct zone_hdr *hdr(const struct shm_zone *z)
{
    return z->base;
}

static uint32_t *buckets(const struct shm_zone *z)
{
    return (uint32_t *)((char *)z->base + hdr(z)->buckets_off);
}

static struct zone_node *node(const struct shm_zone *z, uint32_t id)
{
    return id ? (struct zone_node *)((char *)z->base + hdr(z)->nodes_off) + (id - 1) : NULL;
}

uint32_t shm_zone_node_id(const struct shm_zone *z, const struct zone_node *n)
{
    const struct zone_node *first = (const struct zone_node *)((char *)z->base + hdr(z)->nodes_off);
    return (uint32_t)(n - first) + 1;
}

/* Lay the table out in `size` bytes: about one bucket per node. 0 or -1. */
static int layout(struct zone_hdr *h, uint64_t size)
{
    uint64_t off = (sizeof(*h) + 63) & ~(uint64_t)63;
    if (size <= off + 64 * (sizeof(struct zone_node) + 4))
        return -1;
    uint64_t n = (size - off) / (sizeof(struct zone_node) + sizeof(uint32_t));
    if (n > UINT32_MAX / 2)
        n = UINT32_MAX / 2;
    uint32_t nb = 1;
    while ((uint64_t)nb * 2 <= n)
        nb *= 2;
    uint64_t nodes_off = (off + (uint64_t)nb * sizeof(uint32_t) + 63) & ~(uint64_t)63;
    h->nbuckets = nb;
    h->nnodes = (uint32_t)((size - nodes_off) / sizeof(struct zone_node));
    h->buckets_off = off;
    h->nodes_off = nodes_off;
    return nodes_off < size ? 0 : -1;
}

/* ------------------------------------------------------------ registry */

uint64_t shm_zone_key_id(const char *text, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a: only tells configurations apart */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)text[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

void shm_zone_set_follower(int on)
{
    follower = on;
}

static void zone_free(struct shm_zone *z)
{
    for (struct shm_zone **pp = &zones; *pp; pp = &(*pp)->next)
        if (*pp == z) {
            *pp = z->next;
            break;
        }
    if (z->base)
        munmap(z->base, z->size);
    if (z->fd >= 0)
        close(z->fd);
    free(z->name);
    free(z);
}

/* A registry entry for memfd `fd` (taken over) mapped at `base`. */
static struct shm_zone *zone_add(const char *name, uint64_t size, unsigned kind, uint64_t key_id,
                                 int fd, void *base)
{
    struct shm_zone *z = calloc(1, sizeof(*z));
    struct stat st;
    if (!z || !(z->name = strdup(name)) || fstat(fd, &st) < 0) {
        if (z)
            free(z->name);
        free(z);
        munmap(base, size);
        close(fd);
        return NULL;
    }
    z->size = size;
    z->kind = kind;
    z->key_id = key_id;
    z->fd = fd;
    z->ino = st.st_ino;
    z->base = base;
    z->current = 1;
    z->next = zones;
    zones = z;
    return z;
}

static struct shm_zone *zone_create(const char *name, uint64_t size, unsigned kind,
                                    uint64_t key_id)
{
    char label[SHM_ZONE_NAME_MAX + 32];
    snprintf(label, sizeof(label), "switchyard zone %s", name);
    int fd = memfd_create(label, MFD_CLOEXEC);
    if (fd < 0) {
        sy_log(LOG_LVL_EMERG, "memfd_create() for zone \"%s\" failed (%d: %s)", name, errno,
               strerror(errno));
        return NULL;
    }
    if (ftruncate(fd, (off_t)size) < 0) {
        sy_log(LOG_LVL_EMERG, "ftruncate() of zone \"%s\" to %llu failed (%d: %s)", name,
               (unsigned long long)size, errno, strerror(errno));
        close(fd);
        return NULL;
    }
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        sy_log(LOG_LVL_EMERG, "mmap() of zone \"%s\" failed (%d: %s)", name, errno,
               strerror(errno));
        close(fd);
        return NULL;
    }
    struct zone_hdr *h = base;
    if (layout(h, size) < 0) {
        sy_log(LOG_LVL_EMERG, "zone \"%s\" is too small", name);
        munmap(base, size);
        close(fd);
        return NULL;
    }
    h->kind = kind;
    h->size = size;
    if (getrandom(&h->seed, sizeof(h->seed), GRND_NONBLOCK) != (ssize_t)sizeof(h->seed)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        h->seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
    }
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(&h->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    if (rc != 0) {
        sy_log(LOG_LVL_EMERG, "pthread_mutex_init() for zone \"%s\" failed (%d: %s)", name, rc,
               strerror(rc));
        munmap(base, size);
        close(fd);
        return NULL;
    }
    h->magic = ZONE_MAGIC; /* last: the header is complete */
    struct shm_zone *z = zone_add(name, size, kind, key_id, fd, base);
    if (!z)
        sy_log(LOG_LVL_EMERG, "out of memory creating zone \"%s\"", name);
    return z;
}

struct shm_zone *shm_zone_attach(const char *name, uint64_t size, unsigned kind, uint64_t key_id)
{
    for (struct shm_zone *z = zones; z; z = z->next)
        if ((z->current || !follower) && z->kind == kind && z->size == size &&
            z->key_id == key_id && strcmp(z->name, name) == 0)
            return shm_zone_ref(z);
    if (follower)
        sy_log(LOG_LVL_ALERT, "zone \"%s\" was not received from the master process: this "
               "worker uses a zone of its own", name);
    struct shm_zone *z = zone_create(name, size, kind, key_id);
    return z ? shm_zone_ref(z) : NULL;
}

void shm_zone_release(struct shm_zone *z)
{
    if (!z || --z->refs > 0 || z->pinned)
        return;
    zone_free(z);
}

void shm_zone_gc(void)
{
    struct shm_zone *z = zones;
    while (z) {
        struct shm_zone *next = z->next;
        z->pinned = 0;
        if (z->refs == 0)
            zone_free(z);
        z = next;
    }
}

/* ------------------------------------------------------------ hand-over */

#define ZONE_CTL_MAGIC 0x5a4f4e45u /* "ZONE"; a reload order starts with a count <= 250 */
#define ZONE_CTL_MAX 32

struct zone_ctl_msg {
    uint32_t magic;
    uint32_t n;
    uint32_t first; /* 1: this message starts the set (the previous set is forgotten) */
    uint32_t pad;
    struct {
        char name[SHM_ZONE_NAME_MAX + 1];
        uint64_t size;
        uint64_t key_id;
        uint32_t kind;
        uint32_t pad;
    } z[ZONE_CTL_MAX];
};

int shm_zone_is_ctl_msg(const void *msg, size_t len)
{
    uint32_t magic;
    if (len < offsetof(struct zone_ctl_msg, z))
        return 0;
    memcpy(&magic, msg, sizeof(magic));
    return magic == ZONE_CTL_MAGIC;
}

static int send_batch(int ctl_fd, struct zone_ctl_msg *m, const int *fds)
{
    char cbuf[CMSG_SPACE(sizeof(int) * ZONE_CTL_MAX)];
    memset(cbuf, 0, sizeof(cbuf));
    struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (m->n) {
        mh.msg_control = cbuf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * m->n);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * m->n);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * m->n);
    }
    return sendmsg(ctl_fd, &mh, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

int shm_zone_send(int ctl_fd)
{
    static struct zone_ctl_msg m;
    int fds[ZONE_CTL_MAX];
    memset(&m, 0, sizeof(m));
    m.magic = ZONE_CTL_MAGIC;
    m.first = 1;
    for (struct shm_zone *z = zones; z; z = z->next) {
        if (z->refs == 0)
            continue;
        if (m.n == ZONE_CTL_MAX) {
            if (send_batch(ctl_fd, &m, fds) < 0)
                return -1;
            m.n = 0;
            m.first = 0;
        }
        snprintf(m.z[m.n].name, sizeof(m.z[m.n].name), "%s", z->name);
        m.z[m.n].size = z->size;
        m.z[m.n].key_id = z->key_id;
        m.z[m.n].kind = z->kind;
        fds[m.n++] = z->fd;
    }
    return send_batch(ctl_fd, &m, fds); /* also when empty: the set may have become empty */
}

void shm_zone_adopt(const void *msg, size_t len, const int *fds, unsigned nfds)
{
    static struct zone_ctl_msg m;
    memset(&m, 0, sizeof(m));
    memcpy(&m, msg, len < sizeof(m) ? len : sizeof(m));
    if (m.first)
        for (struct shm_zone *z = zones; z; z = z->next)
            z->current = 0;
    unsigned n = m.n < ZONE_CTL_MAX ? m.n : ZONE_CTL_MAX;
    for (unsigned k = n; k < nfds; k++)
        close(fds[k]);
    for (unsigned k = 0; k < n && k < nfds; k++) {
        int fd = fds[k];
        m.z[k].name[SHM_ZONE_NAME_MAX] = '\0';
        struct stat st;
        if (fstat(fd, &st) < 0) {
            close(fd);
            continue;
        }
        struct shm_zone *z;
        for (z = zones; z; z = z->next)
            if (z->ino == st.st_ino)
                break;
        if (z) { /* the same memory as a zone we have */
            z->current = 1;
            close(fd);
            continue;
        }
        uint64_t size = m.z[k].size;
        void *base = (uint64_t)st.st_size == size
                         ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                         : MAP_FAILED;
        if (base == MAP_FAILED || ((struct zone_hdr *)base)->magic != ZONE_MAGIC) {
            sy_log(LOG_LVL_ALERT, "could not map zone \"%s\" from the master process",
                   m.z[k].name);
            if (base != MAP_FAILED)
                munmap(base, size);
            close(fd);
            continue;
        }
        z = zone_add(m.z[k].name, size, m.z[k].kind, m.z[k].key_id, fd, base);
        if (z)
            z->pinned = 1;
    }
}

/* ------------------------------------------------------------ table */

/* Empty the table (its previous holder died in the middle of a change). */
static void wipe(struct shm_zone *z)
{
    struct zone_hdr *h = hdr(z);
    memset(buckets(z), 0, (size_t)h->nbuckets * sizeof(uint32_t));
    h->fresh = 0;
    h->free_head = 0;
    h->lru_head = h->lru_tail = 0;
    h->used = 0;
    h->epoch++;
}

void shm_zone_reset_kind(unsigned kind)
{
    for (struct shm_zone *z = zones; z; z = z->next) {
        if (z->kind != kind || z->refs == 0)
            continue;
        if (shm_zone_lock(z) < 0)
            continue;
        wipe(z);
        shm_zone_unlock(z);
        sy_log(LOG_LVL_NOTICE, "zone \"%s\" emptied: a worker process died", z->name);
    }
}

int shm_zone_lock(struct shm_zone *z)
{
    struct zone_hdr *h = hdr(z);
    int rc = pthread_mutex_lock(&h->lock);
    if (rc == 0)
        return 0;
    if (rc == EOWNERDEAD) {
        wipe(z);
        pthread_mutex_consistent(&h->lock);
        sy_log(LOG_LVL_ALERT, "a process died holding the lock of zone \"%s\": the zone was "
               "emptied", z->name);
        return 1;
    }
    sy_log(LOG_LVL_ALERT, "pthread_mutex_lock() of zone \"%s\" failed (%d: %s)", z->name, rc,
           strerror(rc));
    return -1;
}

void shm_zone_unlock(struct shm_zone *z)
{
    pthread_mutex_unlock(&hdr(z)->lock);
}

void shm_zone_make_key(const void *key, size_t len, struct zone_key *out)
{
    memset(out, 0, sizeof(*out));
    if (len <= SHM_ZONE_KEY_MAX) {
        out->len = (uint16_t)len;
        if (len)
            memcpy(out->bytes, key, len);
        return;
    }
    unsigned mdlen = 0;
    EVP_Digest(key, len, out->bytes, &mdlen, EVP_sha256(), NULL);
    out->len = (uint16_t)(SHM_ZONE_KEY_DIGEST | mdlen);
}

static size_t key_bytes(uint16_t len)
{
    return len & ~SHM_ZONE_KEY_DIGEST;
}

/* A 64-bit mixer (a multiply-xorshift finaliser). */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Seeded so that clients cannot choose keys that all land in one bucket. */
uint32_t shm_zone_hash(const struct shm_zone *z, const struct zone_key *k)
{
    uint64_t h = mix(hdr(z)->seed ^ k->len);
    size_t n = key_bytes(k->len);
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w = 0;
        memcpy(&w, k->bytes + i, n - i < 8 ? n - i : 8);
        h = mix(h ^ w) + 0x9e3779b97f4a7c15ULL;
    }
    return (uint32_t)(h ^ (h >> 32));
}

static void lru_unlink(struct shm_zone *z, struct zone_node *n)
{
    struct zone_hdr *h = hdr(z);
    if (n->prev)
        node(z, n->prev)->next = n->next;
    else
        h->lru_head = n->next;
    if (n->next)
        node(z, n->next)->prev = n->prev;
    else
        h->lru_tail = n->prev;
    n->prev = n->next = 0;
}

static void lru_push_head(struct shm_zone *z, struct zone_node *n)
{
    struct zone_hdr *h = hdr(z);
    uint32_t id = shm_zone_node_id(z, n);
    n->prev = 0;
    n->next = h->lru_head;
    if (h->lru_head)
        node(z, h->lru_head)->prev = id;
    h->lru_head = id;
    if (!h->lru_tail)
        h->lru_tail = id;
}

struct zone_node *shm_zone_find(struct shm_zone *z, uint32_t hash, const struct zone_key *k)
{
    struct zone_hdr *h = hdr(z);
    uint32_t id = buckets(z)[hash & (h->nbuckets - 1)];
    size_t n = key_bytes(k->len);
    while (id) {
        struct zone_node *x = node(z, id);
        if (x->hash == hash && x->keylen == k->len && memcmp(x->key, k->bytes, n) == 0) {
            if (h->lru_head != id) {
                lru_unlink(z, x);
                lru_push_head(z, x);
            }
            return x;
        }
        id = x->hnext;
    }
    return NULL;
}

struct zone_node *shm_zone_insert(struct shm_zone *z, uint32_t hash, const struct zone_key *k)
{
    struct zone_hdr *h = hdr(z);
    uint32_t id;
    if (h->free_head) {
        id = h->free_head;
        h->free_head = node(z, id)->hnext;
    } else if (h->fresh < h->nnodes) {
        id = ++h->fresh;
    } else {
        return NULL;
    }
    struct zone_node *x = node(z, id);
    memset(x, 0, sizeof(*x));
    x->hash = hash;
    x->keylen = k->len;
    memcpy(x->key, k->bytes, key_bytes(k->len));
    uint32_t *b = &buckets(z)[hash & (h->nbuckets - 1)];
    x->hnext = *b;
    *b = id;
    lru_push_head(z, x);
    h->used++;
    return x;
}

void shm_zone_remove(struct shm_zone *z, struct zone_node *x)
{
    struct zone_hdr *h = hdr(z);
    uint32_t id = shm_zone_node_id(z, x);
    uint32_t *pp = &buckets(z)[x->hash & (h->nbuckets - 1)];
    while (*pp && *pp != id)
        pp = &node(z, *pp)->hnext;
    if (*pp)
        *pp = x->hnext;
    lru_unlink(z, x);
    x->hnext = h->free_head;
    x->keylen = 0;
    h->free_head = id;
    h->used--;
}

struct zone_node *shm_zone_oldest(struct shm_zone *z)
{
    return node(z, hdr(z)->lru_tail);
}

struct zone_node *shm_zone_newer(struct shm_zone *z, const struct zone_node *n)
{
    return node(z, n->prev);
}

uint32_t shm_zone_epoch(const struct shm_zone *z)
{
    return hdr(z)->epoch;
}

struct zone_node *shm_zone_node_at(struct shm_zone *z, uint32_t id, uint32_t epoch)
{
    struct zone_hdr *h = hdr(z);
    if (h->epoch != epoch || id == 0 || id > h->fresh)
        return NULL;
    return node(z, id);
}

unsigned shm_zone_used(const struct shm_zone *z)
{
    return hdr(z)->used;
}

unsigned shm_zone_capacity(const struct shm_zone *z)
{
    return hdr(z)->nnodes;
}
