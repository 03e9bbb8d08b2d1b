/*
 * shm_zone.h - shared-memory zones: fixed-size hash tables of small nodes
 * that every process of one Switchyard instance sees (the state of
 * limit_req_zone and limit_conn_zone, nginx's shared memory zones).
 *
 * Where a zone lives: a memfd of `size` bytes, mapped MAP_SHARED. The
 * process that loads a configuration without a master above it (the master,
 * or the single process of `master_process off`) creates the zones when it
 * builds the runtime of a generation (rt_create); workers forked afterwards
 * inherit the mapping. At a reload the master keeps every zone whose name,
 * size, kind and key are unchanged (its state survives), creates the others,
 * and sends the whole set to each worker over the control channel before the
 * reload order (shm_zone_send / shm_zone_adopt); a worker maps the ones it
 * does not have yet. So every worker always uses the same memory as the
 * others.
 *
 * Each process has a registry of the zones it has mapped (`struct
 * shm_zone`, refcounted: each generation runtime attaching it, and each
 * limit_conn hold of a request or a tunnel, is a reference). A zone is
 * unmapped when its last reference goes.
 *
 * Inside a zone: a header with a process-shared robust mutex, a bucket
 * array, and a pool of fixed-size nodes chained per bucket and on one LRU
 * list (head = most recently used). Nothing is allocated after creation, so
 * a full zone is "no free node", never a crash. Table operations are only
 * valid between shm_zone_lock() and shm_zone_unlock(), and are short (no
 * syscall, no allocation): other workers spin on the same lock.
 *
 * If a process dies holding the lock (a worker killed by a signal halfway
 * through an update), the next locker gets EOWNERDEAD from the robust mutex;
 * the table may then be half-updated, so it is wiped (every key starts
 * afresh) and its epoch increases, which voids node ids held by requests
 * (shm_zone_node_at). Logged as an alert.
 */
#ifndef SY_CORE_SHM_ZONE_H
#define SY_CORE_SHM_ZONE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Keys up to this many bytes are stored as they are; longer ones as their
 * SHA-256 digest (keylen = SHM_ZONE_KEY_DIGEST | 32). */
#define SHM_ZONE_KEY_MAX 64
#define SHM_ZONE_KEY_DIGEST 0x8000u

/* Zone names are at most this long (the control message carries them). */
#define SHM_ZONE_NAME_MAX 127

/* What a zone is for: a limit_req zone cannot serve limit_conn (nginx's
 * "already declared for a different use"). */
enum shm_zone_kind {
    SHM_ZONE_LIMIT_REQ = 1,
    SHM_ZONE_LIMIT_CONN = 2,
    SHM_ZONE_CACHE = 3,      /* proxy_cache_path keys zone (proxy/cache.c) */
};

/* zone_node.c_flags of a cache entry */
#define ZONE_CACHE_EXISTS   0x1u /* a complete file is on disk */
#define ZONE_CACHE_UPDATING 0x2u /* a request is filling (or refreshing) it */

/* One entry of a zone, in shared memory. */
struct zone_node {
    uint32_t hnext;     /* next node of the bucket chain (id), 0 = end */
    uint32_t prev;      /* LRU neighbours (ids); head = most recently used */
    uint32_t next;
    uint32_t hash;
    int64_t excess;     /* limit_req: milli-requests above the rate */
    uint64_t last_ms;   /* limit_req: CLOCK_MONOTONIC ms of the last accounted request */
    union {
        uint32_t conns;   /* limit_conn: requests (and tunnels) in progress for the key */
        uint32_t c_error; /* cache: an error status stored (proxy_intercept_errors), 0 none */
    };
    uint16_t keylen;    /* bytes of key, or SHM_ZONE_KEY_DIGEST | 32 */
    uint16_t c_flags;   /* cache: ZONE_CACHE_* */
    uint32_t c_uses;    /* cache: requests for the key (proxy_cache_min_uses) */
    uint32_t c_fill_pid; /* cache: the process filling it (with ZONE_CACHE_UPDATING) */
    int64_t c_valid_sec; /* cache: the stored response is fresh until this Unix time */
    uint64_t c_fsize;   /* cache: bytes of the file on disk (max_size) */
    uint64_t c_used_ms; /* cache: CLOCK_MONOTONIC ms of the last use (inactive) */
    uint64_t c_fill_ms; /* cache: when the fill started (proxy_cache_lock_age) */
    uint8_t key[SHM_ZONE_KEY_MAX];
};

/* A key as stored: the value itself, or the digest of a long one. */
struct zone_key {
    uint16_t len;
    uint8_t bytes[SHM_ZONE_KEY_MAX];
};

/* This process's handle on a zone (registry entry). */
struct shm_zone {
    char *name;             /* owned */
    uint64_t size;          /* bytes, as configured */
    unsigned kind;          /* enum shm_zone_kind */
    uint64_t key_id;        /* hash of the key template's text */
    int fd;                 /* the memfd (owned) */
    ino_t ino;              /* the memfd's inode: identifies the memory across processes */
    void *base;             /* mapping of `size` bytes */
    unsigned refs;
    unsigned current : 1;   /* in the set the master sent last (workers), or ours */
    unsigned pinned : 1;    /* adopted, not attached yet: kept until shm_zone_gc() */
    struct shm_zone *next;
};

/* ------------------------------------------------------------ registry */

/*
 * The zone called `name` of `size` bytes and `kind`, whose key template's
 * text hashes to `key_id` (shm_zone_key_id), with one more reference: an
 * existing one when this process has it, else a new zone (a worker under a
 * master uses only the zones the master sent; if the master sent none such,
 * it creates a private one and logs an alert). NULL on failure (logged).
 */
struct shm_zone *shm_zone_attach(const char *name, uint64_t size, unsigned kind, uint64_t key_id);

/* Drop a reference; unmaps the zone after the last one. Accepts NULL. */
void shm_zone_release(struct shm_zone *z);

/* Take one more reference. */
static inline struct shm_zone *shm_zone_ref(struct shm_zone *z)
{
    z->refs++;
    return z;
}

/* Hash of a key template's text, to tell zones apart by key. */
uint64_t shm_zone_key_id(const char *text, size_t len);

/* This process is a worker under a master: zones come from the master. */
void shm_zone_set_follower(int on);

/*
 * Master: send the set of zones it has (every zone of the current runtime)
 * to the worker at the other end of `ctl_fd`, in one or more messages sent
 * before the reload order. 0 or -1 (errno set).
 */
int shm_zone_send(int ctl_fd);

/* Is this control-channel message one of shm_zone_send's? */
int shm_zone_is_ctl_msg(const void *msg, size_t len);

/*
 * Worker: take the zones of one message of shm_zone_send (the fds attached,
 * `nfds` of them, are taken over and closed when not needed). The first
 * message of a set replaces the current set; zones not mapped yet are mapped
 * and pinned until shm_zone_gc().
 */
void shm_zone_adopt(const void *msg, size_t len, const int *fds, unsigned nfds);

/* Unpin adopted zones and unmap every zone nobody references. */
void shm_zone_gc(void);

/*
 * Empty every zone of `kind` this process has (master: a worker died, and
 * the limit_conn counts of its requests would never be given back). Node ids
 * held by requests become void (epoch), so their releases do nothing.
 */
void shm_zone_reset_kind(unsigned kind);

/* ------------------------------------------------------------ table */

/*
 * Lock the zone. Returns 0, or 1 when the previous holder died holding the
 * lock and the table was wiped (the caller still holds the lock).
 */
int shm_zone_lock(struct shm_zone *z);
void shm_zone_unlock(struct shm_zone *z);

/* The stored form of `len` bytes of `key` (digest when longer than SHM_ZONE_KEY_MAX). */
void shm_zone_make_key(const void *key, size_t len, struct zone_key *out);

/* Keyed hash of a stored key (the seed is per zone, so every process agrees). */
uint32_t shm_zone_hash(const struct shm_zone *z, const struct zone_key *k);

/* The node of key `k` (hash `hash`), moved to the LRU head; NULL when absent. */
struct zone_node *shm_zone_find(struct shm_zone *z, uint32_t hash, const struct zone_key *k);

/*
 * A new node for `k` (the caller made sure it is absent), zeroed but for the
 * key, at the LRU head. NULL when every node is in use (the caller may
 * evict: shm_zone_oldest, shm_zone_remove, and try again).
 */
struct zone_node *shm_zone_insert(struct shm_zone *z, uint32_t hash, const struct zone_key *k);

/* Unlink `n` and return it to the free pool. */
void shm_zone_remove(struct shm_zone *z, struct zone_node *n);

/* The least recently used node (LRU tail), or NULL when empty. */
struct zone_node *shm_zone_oldest(struct shm_zone *z);
/* The node used just more recently than `n` (towards the head), or NULL. */
struct zone_node *shm_zone_newer(struct shm_zone *z, const struct zone_node *n);

/* A node's id (stable while it is in the table) and the table's epoch (bumped by a wipe). */
uint32_t shm_zone_node_id(const struct shm_zone *z, const struct zone_node *n);
uint32_t shm_zone_epoch(const struct shm_zone *z);
/* The node with id `id` if the table is still at `epoch`, else NULL. */
struct zone_node *shm_zone_node_at(struct shm_zone *z, uint32_t id, uint32_t epoch);

/* Nodes in use and the most the zone holds (for tests and logs). */
unsigned shm_zone_used(const struct shm_zone *z);
unsigned shm_zone_capacity(const struct shm_zone *z);

#endif
