/*
 * snapshot.c - the files a configuration load reads, recorded and replayed
 * (see snapshot.h).
 *
 * The snapshot is a flat byte string, read back in place from a mapping:
 *   "SYSNAP1\n" then records, each
 *     u8 kind (SNAP_FILE | SNAP_GLOB), u32 path length, path bytes,
 *     FILE: u32 size, bytes          GLOB: u32 count, count × (u32 len, bytes)
 * Integers are native-endian: only processes of one binary exchange it.
 */
#include "conf/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAP_MAGIC "SYSNAP1\n"
enum { SNAP_FILE = 1, SNAP_GLOB = 2 };

/* Recording: a growing buffer. */
static struct {
    int on;
    char *p;
    size_t len, cap;
    int failed; /* out of memory while recording: the snapshot is unusable */
} rec;

/* Replaying: the mapped snapshot. */
static struct {
    const unsigned char *p;
    size_t len;
} rep;

static void rec_put(const void *data, size_t n)
{
    if (rec.failed)
        return;
    if (rec.len + n > rec.cap) {
        size_t cap = rec.cap ? rec.cap : 4096;
        while (cap < rec.len + n)
            cap *= 2;
        char *p = realloc(rec.p, cap);
        if (!p) {
            rec.failed = 1;
            return;
        }
        rec.p = p;
        rec.cap = cap;
    }
    memcpy(rec.p + rec.len, data, n);
    rec.len += n;
}

static void rec_u32(size_t v)
{
    uint32_t u = (uint32_t)v;
    rec_put(&u, sizeof(u));
}

static void rec_head(unsigned kind, const char *path)
{
    unsigned char k = (unsigned char)kind;
    rec_put(&k, 1);
    rec_u32(strlen(path));
    rec_put(path, strlen(path));
}

void snap_record_begin(void)
{
    snap_record_abort();
    rec.on = 1;
    rec_put(SNAP_MAGIC, sizeof(SNAP_MAGIC) - 1);
}

void snap_record_abort(void)
{
    free(rec.p);
    memset(&rec, 0, sizeof(rec));
}

int snap_record_end(void)
{
    int fd = -1;
    if (rec.failed) {
        errno = ENOMEM;
        goto out;
    }
    fd = memfd_create("switchyard-config", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        goto out;
    size_t off = 0;
    while (off < rec.len) {
        ssize_t n = write(fd, rec.p + off, rec.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            close(fd);
            fd = -1;
            errno = e;
            goto out;
        }
        off += (size_t)n;
    }
    /* Sealed: a worker can trust that nobody changes it under its mapping. */
    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
out:;
    int e = errno;
    snap_record_abort();
    errno = e;
    return fd;
}

int snap_replay_begin(int fd)
{
    snap_replay_end();
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)(sizeof(SNAP_MAGIC) - 1))
        return -1;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        return -1;
    if (memcmp(p, SNAP_MAGIC, sizeof(SNAP_MAGIC) - 1) != 0) {
        munmap(p, (size_t)st.st_size);
        return -1;
    }
    rep.p = p;
    rep.len = (size_t)st.st_size;
    return 0;
}

int snap_replaying(void)
{
    return rep.p != NULL;
}

void snap_replay_end(void)
{
    if (rep.p)
        munmap((void *)rep.p, rep.len);
    rep.p = NULL;
    rep.len = 0;
}

/* A bounds-checked reader over the mapping. */
struct cursor {
    size_t at;
    int bad;
};

static uint32_t cur_u32(struct cursor *c)
{
    uint32_t v = 0;
    if (c->bad || rep.len - c->at < sizeof(v)) {
        c->bad = 1;
        return 0;
    }
    memcpy(&v, rep.p + c->at, sizeof(v));
    c->at += sizeof(v);
    return v;
}

static const unsigned char *cur_bytes(struct cursor *c, size_t n)
{
    if (c->bad || rep.len - c->at < n) {
        c->bad = 1;
        return NULL;
    }
    const unsigned char *p = rep.p + c->at;
    c->at += n;
    return p;
}

/* Skip a record's body (after its head). */
static void cur_skip(struct cursor *c, unsigned kind)
{
    uint32_t n = cur_u32(c);
    if (kind == SNAP_FILE) {
        cur_bytes(c, n);
        return;
    }
    for (uint32_t i = 0; i < n && !c->bad; i++)
        cur_bytes(c, cur_u32(c));
}

/* Position `c` at the body of the record (kind, path); 0, or -1 if absent. */
static int find(unsigned kind, const char *path, struct cursor *c)
{
    size_t plen = strlen(path);
    c->at = sizeof(SNAP_MAGIC) - 1;
    c->bad = 0;
    while (c->at < rep.len && !c->bad) {
        const unsigned char *k = cur_bytes(c, 1);
        uint32_t n = cur_u32(c);
        const unsigned char *name = cur_bytes(c, n);
        if (c->bad)
            break;
        if (*k == kind && n == plen && memcmp(name, path, plen) == 0)
            return 0;
        cur_skip(c, *k);
    }
    return -1;
}

static char *dup_bytes(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static int read_disk(const char *path, size_t max, char **out, size_t *len, const char **what)
{
    *what = "open()";
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    *what = "fstat()";
    if (fstat(fd, &st) != 0)
        goto fail;
    size_t size = st.st_size > 0 ? (size_t)st.st_size : 0;
    if ((unsigned long long)st.st_size > max) {
        errno = EFBIG;
        goto fail;
    }
    *what = "read()";
    char *buf = malloc(size + 1);
    if (!buf)
        goto fail;
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO; /* shorter than fstat() said: changed while read */
            free(buf);
            goto fail;
        }
        got += (size_t)n;
    }
    close(fd);
    buf[size] = '\0';
    *out = buf;
    *len = size;
    return 0;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

int snap_read_file(const char *path, size_t max, char **out, size_t *len, const char **what)
{
    struct cursor c;
    if (rep.p && find(SNAP_FILE, path, &c) == 0) {
        uint32_t n = cur_u32(&c);
        const unsigned char *bytes = cur_bytes(&c, n);
        if (!c.bad) {
            *what = "read()";
            if (n > max) {
                errno = EFBIG;
                return -1;
            }
            if (!(*out = dup_bytes(bytes, n)))
                return -1;
            *len = n;
            return 0;
        }
    }
    /* Not replaying (or not in the snapshot, which a load of the same files
     * cannot produce): the disk. */
    if (read_disk(path, max, out, len, what) != 0)
        return -1;
    if (rec.on) {
        rec_head(SNAP_FILE, path);
        rec_u32(*len);
        rec_put(*out, *len);
    }
    return 0;
}

void snap_glob_free(char **paths, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

static int replay_glob(struct cursor *c, char ***paths, size_t *n)
{
    uint32_t count = cur_u32(c);
    char **v = calloc(count ? count : 1, sizeof(*v));
    if (!v || c->bad) {
        free(v);
        return -1;
    }
    for (uint32_t i = 0; i < count; i++) {
        uint32_t l = cur_u32(c);
        const unsigned char *b = cur_bytes(c, l);
        if (c->bad || !(v[i] = dup_bytes(b, l))) {
            snap_glob_free(v, i);
            errno = c->bad ? EINVAL : ENOMEM;
            return -1;
        }
    }
    *paths = v;
    *n = count;
    return 0;
}

int snap_glob(const char *pattern, char ***paths, size_t *n)
{
    struct cursor c;
    if (rep.p && find(SNAP_GLOB, pattern, &c) == 0 && replay_glob(&c, paths, n) == 0)
        return 0;
    glob_t g;
    memset(&g, 0, sizeof(g));
    errno = 0;
    int rc = glob(pattern, 0, NULL, &g);
    if (rc != 0 && rc != GLOB_NOMATCH) {
        int e = errno;
        globfree(&g);
        errno = e;
        return -1;
    }
    size_t count = rc == GLOB_NOMATCH ? 0 : g.gl_pathc;
    char **v = calloc(count ? count : 1, sizeof(*v));
    if (!v) {
        globfree(&g);
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < count; i++)
        if (!(v[i] = strdup(g.gl_pathv[i]))) {
            snap_glob_free(v, i);
            globfree(&g);
            errno = ENOMEM;
            return -1;
        }
    globfree(&g);
    if (rec.on) {
        rec_head(SNAP_GLOB, pattern);
        rec_u32(count);
        for (size_t i = 0; i < count; i++) {
            rec_u32(strlen(v[i]));
            rec_put(v[i], strlen(v[i]));
        }
    }
    *paths = v;
    *n = count;
    return 0;
}
