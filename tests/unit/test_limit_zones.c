/*
 * test_limit_zones.c - core/shm_zone.c (the shared table: hash, node pool,
 * LRU, epoch, robust lock, hand-over between processes) and the arithmetic
 * and eviction of http/limit_req.c (nginx's leaky bucket in milli-requests).
 *
 * Zones are real memfd mappings; the cross-process cases fork.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "core/shm_zone.h"
#include "http/limit_req.h"

static struct shm_zone *zone(const char *name, uint64_t size)
{
    struct shm_zone *z = shm_zone_attach(name, size, SHM_ZONE_LIMIT_REQ, 1);
    assert_non_null(z);
    return z;
}

static void key(struct zone_key *k, const char *s)
{
    shm_zone_make_key(s, strlen(s), k);
}

/* ------------------------------------------------------------ table */

static void test_insert_find_remove(void **state)
{
    (void)state;
    struct shm_zone *z = zone("t1", 64 * 1024);
    struct zone_key a, b, c;
    key(&a, "127.0.0.1");
    key(&b, "127.0.0.2");
    key(&c, "127.0.0.3");
    assert_int_equal(shm_zone_lock(z), 0);
    assert_null(shm_zone_find(z, shm_zone_hash(z, &a), &a));
    struct zone_node *na = shm_zone_insert(z, shm_zone_hash(z, &a), &a);
    struct zone_node *nb = shm_zone_insert(z, shm_zone_hash(z, &b), &b);
    assert_non_null(na);
    assert_non_null(nb);
    na->conns = 7;
    assert_ptr_equal(shm_zone_find(z, shm_zone_hash(z, &a), &a), na);
    assert_int_equal(shm_zone_find(z, shm_zone_hash(z, &a), &a)->conns, 7);
    assert_null(shm_zone_find(z, shm_zone_hash(z, &c), &c));
    assert_int_equal(shm_zone_used(z), 2);
    /* ids are stable and checked against the epoch */
    uint32_t id = shm_zone_node_id(z, na), ep = shm_zone_epoch(z);
    assert_ptr_equal(shm_zone_node_at(z, id, ep), na);
    assert_null(shm_zone_node_at(z, id, ep + 1));
    assert_null(shm_zone_node_at(z, 0, ep));
    shm_zone_remove(z, na);
    assert_null(shm_zone_find(z, shm_zone_hash(z, &a), &a));
    assert_ptr_equal(shm_zone_find(z, shm_zone_hash(z, &b), &b), nb);
    assert_int_equal(shm_zone_used(z), 1);
    /* a freed node is reused */
    assert_ptr_equal(shm_zone_insert(z, shm_zone_hash(z, &c), &c), na);
    shm_zone_unlock(z);
    shm_zone_release(z);
}

/* Keys with the same bytes but different lengths, long keys (digests),
 * empty key: all distinct. */
static void test_keys(void **state)
{
    (void)state;
    struct shm_zone *z = zone("t2", 64 * 1024);
    char long1[200], long2[200];
    memset(long1, 'x', sizeof(long1));
    memcpy(long2, long1, sizeof(long2));
    long2[199] = 'y';
    struct zone_key k[5];
    key(&k[0], "ab");
    key(&k[1], "abc");
    shm_zone_make_key(long1, sizeof(long1), &k[2]);
    shm_zone_make_key(long2, sizeof(long2), &k[3]);
    key(&k[4], "");
    assert_int_equal(k[2].len, SHM_ZONE_KEY_DIGEST | 32);
    assert_int_equal(k[1].len, 3);
    shm_zone_lock(z);
    for (int i = 0; i < 5; i++)
        assert_non_null(shm_zone_insert(z, shm_zone_hash(z, &k[i]), &k[i]));
    for (int i = 0; i < 5; i++) {
        struct zone_node *n = shm_zone_find(z, shm_zone_hash(z, &k[i]), &k[i]);
        assert_non_null(n);
        n->conns = (uint32_t)i + 1;
    }
    for (int i = 0; i < 5; i++)
        assert_int_equal(shm_zone_find(z, shm_zone_hash(z, &k[i]), &k[i])->conns, i + 1);
    shm_zone_unlock(z);
    shm_zone_release(z);
}

/* The pool is finite; LRU order follows use (find moves to the head). */
static void test_full_zone_and_lru(void **state)
{
    (void)state;
    struct shm_zone *z = zone("t3", 32 * 1024);
    unsigned cap = shm_zone_capacity(z);
    assert_true(cap > 200 && cap < 400); /* about 100 bytes a node */
    char buf[32];
    struct zone_key k;
    shm_zone_lock(z);
    for (unsigned i = 0; i < cap; i++) {
        snprintf(buf, sizeof(buf), "key%u", i);
        key(&k, buf);
        assert_non_null(shm_zone_insert(z, shm_zone_hash(z, &k), &k));
    }
    key(&k, "one too many");
    assert_null(shm_zone_insert(z, shm_zone_hash(z, &k), &k));
    /* oldest is key0; using it makes key1 the oldest */
    struct zone_key k0, k1;
    key(&k0, "key0");
    key(&k1, "key1");
    struct zone_node *old = shm_zone_oldest(z);
    struct zone_node *n0 = shm_zone_find(z, shm_zone_hash(z, &k0), &k0);
    assert_ptr_equal(old, n0);
    struct zone_node *n1 = shm_zone_oldest(z);
    struct zone_node *f1 = shm_zone_find(z, shm_zone_hash(z, &k1), &k1);
    assert_ptr_equal(n1, f1);
    /* (that find moved key1 to the head: key2 is the oldest now) */
    assert_ptr_not_equal(shm_zone_oldest(z), n1);
    assert_ptr_not_equal(shm_zone_oldest(z), n0);
    assert_ptr_equal(shm_zone_newer(z, n0), n1); /* n1 was used after n0 */
    shm_zone_remove(z, shm_zone_oldest(z));
    assert_non_null(shm_zone_insert(z, shm_zone_hash(z, &k), &k));
    shm_zone_unlock(z);
    shm_zone_release(z);
}

/* ------------------------------------------------------------ limit_req */

static void test_leaky_bucket_arithmetic(void **state)
{
    (void)state;
    /* 1 r/s = 1000 milli-r/s: a request right after another adds 1000 */
    assert_int_equal(limit_req_excess(0, 1000, 0), 1000);
    assert_int_equal(limit_req_excess(1000, 1000, 0), 2000);
    /* 500 ms later half a request has drained */
    assert_int_equal(limit_req_excess(1000, 1000, 500), 1500);
    /* long idle: back to 0 (never negative, the +1000 included) */
    assert_int_equal(limit_req_excess(3000, 1000, 60000), 0);
    assert_int_equal(limit_req_excess(0, 1000, 1000), 0);
    /* 1r/m is 16 milli-r/s (nginx rounds down): 1 s drains 16 */
    assert_int_equal(limit_req_excess(1000, 16, 1000), 1984);
    /* huge elapsed times do not overflow */
    assert_int_equal(limit_req_excess(5000, UINT32_MAX * 1000ULL, INT64_MAX / 2), 0);
    /* clock steps: a small step back is 0 ms, a big one 1 ms */
    assert_int_equal(limit_req_elapsed(1000, 1500), 0);
    assert_int_equal(limit_req_elapsed(1000, 100000), 1);
    assert_int_equal(limit_req_elapsed(5000, 1000), 4000);
    /* delays: (excess - delay) / rate */
    assert_int_equal(limit_req_delay_ms(3000, 0, 10000), 300);
    assert_int_equal(limit_req_delay_ms(3000, 2000, 10000), 100);
    assert_int_equal(limit_req_delay_ms(2000, 2000, 10000), 0);
    assert_int_equal(limit_req_delay_ms(5000, UINT64_MAX, 1000), 0); /* nodelay */
    assert_string_equal(limit_status_name(LIMIT_REJECTED_DRY_RUN), "REJECTED_DRY_RUN");
    assert_null(limit_status_name(0));
}

static void test_lookup_burst_and_accounting(void **state)
{
    (void)state;
    struct shm_zone *z = zone("t4", 64 * 1024);
    struct limit_zone lz = {.name = "t4", .rate = 1000}; /* 1 r/s */
    struct limit_req_rule rule = {.zone = &lz, .burst = 2000, .delay = 0};
    struct zone_key k;
    key(&k, "client");
    int64_t e;
    shm_zone_lock(z);
    /* first request: level 0 */
    assert_int_equal(limit_req_lookup(z, &rule, &k, 10000, 1, &e), LIMIT_REQ_OK);
    assert_int_equal(e, 0);
    assert_int_equal(limit_req_lookup(z, &rule, &k, 10000, 1, &e), LIMIT_REQ_OK);
    assert_int_equal(e, 1000);
    assert_int_equal(limit_req_lookup(z, &rule, &k, 10000, 1, &e), LIMIT_REQ_OK);
    assert_int_equal(e, 2000);
    /* over the burst: rejected, and the level is not stored */
    assert_int_equal(limit_req_lookup(z, &rule, &k, 10000, 1, &e), LIMIT_REQ_BUSY);
    assert_int_equal(e, 3000);
    assert_int_equal(limit_req_lookup(z, &rule, &k, 10000, 1, &e), LIMIT_REQ_BUSY);
    assert_int_equal(e, 3000);
    /* a second later one request drained: accepted again */
    assert_int_equal(limit_req_lookup(z, &rule, &k, 11000, 1, &e), LIMIT_REQ_OK);
    assert_int_equal(e, 2000);
    /* without accounting nothing is stored */
    assert_int_equal(limit_req_lookup(z, &rule, &k, 11000, 0, &e), LIMIT_REQ_BUSY);
    struct zone_key k2;
    key(&k2, "other");
    assert_int_equal(limit_req_lookup(z, &rule, &k2, 11000, 0, &e), LIMIT_REQ_AGAIN);
    assert_int_equal(e, 0);
    shm_zone_unlock(z);
    shm_zone_release(z);
}

/* A full zone evicts keys idle for a minute whose bucket drained, else its
 * least recently used key; so a new client is never refused by a full
 * limit_req zone, and an active key is kept over an old one. */
static void test_eviction(void **state)
{
    (void)state;
    struct shm_zone *z = zone("t5", 32 * 1024);
    unsigned cap = shm_zone_capacity(z);
    struct limit_zone lz = {.name = "t5", .rate = 1000};
    struct limit_req_rule rule = {.zone = &lz, .burst = 0, .delay = 0};
    char buf[32];
    struct zone_key k;
    int64_t e;
    shm_zone_lock(z);
    for (unsigned i = 0; i < cap; i++) {
        snprintf(buf, sizeof(buf), "c%u", i);
        key(&k, buf);
        assert_int_equal(limit_req_lookup(z, &rule, &k, 1000, 1, &e), LIMIT_REQ_OK);
    }
    assert_int_equal(shm_zone_used(z), cap);
    /* c0 is used again (now the most recent), then a new key arrives soon
     * after: nothing is idle, so the least recently used (c1) goes */
    struct zone_key k0, k1;
    key(&k0, "c0");
    key(&k1, "c1");
    assert_int_equal(limit_req_lookup(z, &rule, &k0, 1000, 1, &e), LIMIT_REQ_BUSY);
    key(&k, "newcomer");
    assert_int_equal(limit_req_lookup(z, &rule, &k, 2000, 1, &e), LIMIT_REQ_OK);
    assert_null(shm_zone_find(z, shm_zone_hash(z, &k1), &k1));
    assert_non_null(shm_zone_find(z, shm_zone_hash(z, &k0), &k0));
    assert_int_equal(shm_zone_used(z), cap);
    /* two minutes later the oldest keys have drained: the next new key
     * removes up to two idle ones plus makes room, without forcing */
    unsigned before = shm_zone_used(z);
    key(&k, "later");
    assert_int_equal(limit_req_lookup(z, &rule, &k, 200000, 1, &e), LIMIT_REQ_OK);
    assert_int_equal(shm_zone_used(z), before - 2 + 1);
    shm_zone_unlock(z);
    shm_zone_release(z);
}

/* ------------------------------------------------------------ processes */

/* A child that dies holding the lock does not wedge the zone: the next
 * locker gets it, the table is wiped and the epoch moves on. */
static void test_owner_death_wipes_the_zone(void **state)
{
    (void)state;
    struct shm_zone *z = zone("t6", 64 * 1024);
    struct zone_key k;
    key(&k, "held");
    shm_zone_lock(z);
    struct zone_node *n = shm_zone_insert(z, shm_zone_hash(z, &k), &k);
    n->conns = 3;
    uint32_t id = shm_zone_node_id(z, n), ep = shm_zone_epoch(z);
    shm_zone_unlock(z);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        shm_zone_lock(z);
        _exit(0); /* dies holding the lock */
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_int_equal(shm_zone_lock(z), 1); /* wiped */
    assert_null(shm_zone_find(z, shm_zone_hash(z, &k), &k));
    assert_null(shm_zone_node_at(z, id, ep));
    assert_int_equal(shm_zone_used(z), 0);
    shm_zone_unlock(z);
    assert_int_equal(shm_zone_lock(z), 0); /* and usable as usual */
    shm_zone_unlock(z);
    shm_zone_release(z);
}

/* A forked child shares the zone's memory; zones sent over a socket are
 * mapped by the receiver and are the same memory too. */
static void test_shared_with_children_and_over_the_channel(void **state)
{
    (void)state;
    struct shm_zone *z = zone("t7", 64 * 1024);
    struct zone_key k;
    key(&k, "shared");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        shm_zone_lock(z);
        struct zone_node *n = shm_zone_insert(z, shm_zone_hash(z, &k), &k);
        n->conns = 42;
        shm_zone_unlock(z);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    shm_zone_lock(z);
    struct zone_node *n = shm_zone_find(z, shm_zone_hash(z, &k), &k);
    assert_non_null(n);
    assert_int_equal(n->conns, 42);
    shm_zone_unlock(z);

    /* hand-over: a child "worker" adopts what we send and sees our node */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    struct shm_zone *z2 = zone("t7b", 64 * 1024); /* the child below inherits it */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        static char msg[16384];
        char cbuf[CMSG_SPACE(sizeof(int) * 64)];
        struct iovec iov = {.iov_base = msg, .iov_len = sizeof(msg)};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                            .msg_controllen = sizeof(cbuf)};
        ssize_t r = recvmsg(sv[1], &mh, 0);
        if (r <= 0 || !shm_zone_is_ctl_msg(msg, (size_t)r))
            _exit(10);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        int *fds = (int *)CMSG_DATA(c);
        unsigned nfds = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        shm_zone_set_follower(1);
        shm_zone_adopt(msg, (size_t)r, fds, nfds);
        struct shm_zone *a = shm_zone_attach("t7b", 64 * 1024, SHM_ZONE_LIMIT_REQ, 1);
        if (a != z2) /* the same memory as the copy inherited at fork: the same entry */
            _exit(11);
        shm_zone_lock(a);
        struct zone_key kk;
        shm_zone_make_key("from child", 10, &kk);
        struct zone_node *x = shm_zone_insert(a, shm_zone_hash(a, &kk), &kk);
        x->conns = 9;
        shm_zone_unlock(a);
        _exit(0);
    }
    close(sv[1]);
    assert_int_equal(shm_zone_send(sv[0]), 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    struct zone_key kk;
    shm_zone_make_key("from child", 10, &kk);
    shm_zone_lock(z2);
    n = shm_zone_find(z2, shm_zone_hash(z2, &kk), &kk);
    assert_non_null(n);
    assert_int_equal(n->conns, 9);
    shm_zone_unlock(z2);
    close(sv[0]);
    shm_zone_release(z2);
    shm_zone_release(z);
}

/* A zone created by the master after the worker forked reaches the worker
 * through the channel alone. */
static void test_adopt_new_zone(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        static char msg[16384];
        char cbuf[CMSG_SPACE(sizeof(int) * 64)];
        struct iovec iov = {.iov_base = msg, .iov_len = sizeof(msg)};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                            .msg_controllen = sizeof(cbuf)};
        ssize_t r = recvmsg(sv[1], &mh, 0);
        if (r <= 0 || !shm_zone_is_ctl_msg(msg, (size_t)r))
            _exit(10);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        if (!c)
            _exit(12);
        shm_zone_set_follower(1);
        shm_zone_adopt(msg, (size_t)r, (int *)CMSG_DATA(c),
                       (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int)));
        struct shm_zone *a = shm_zone_attach("late", 48 * 1024, SHM_ZONE_LIMIT_CONN, 5);
        if (!a)
            _exit(11);
        shm_zone_gc(); /* attached: kept */
        shm_zone_lock(a);
        struct zone_key kk;
        shm_zone_make_key("w", 1, &kk);
        shm_zone_insert(a, shm_zone_hash(a, &kk), &kk)->conns = 5;
        shm_zone_unlock(a);
        _exit(0);
    }
    close(sv[1]);
    struct shm_zone *z = shm_zone_attach("late", 48 * 1024, SHM_ZONE_LIMIT_CONN, 5);
    assert_non_null(z);
    assert_int_equal(shm_zone_send(sv[0]), 0);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_int_equal(WEXITSTATUS(st), 0);
    struct zone_key kk;
    shm_zone_make_key("w", 1, &kk);
    shm_zone_lock(z);
    struct zone_node *n = shm_zone_find(z, shm_zone_hash(z, &kk), &kk);
    assert_non_null(n);
    assert_int_equal(n->conns, 5);
    shm_zone_unlock(z);
    close(sv[0]);
    shm_zone_release(z);
}

/* attach finds a zone by name, size, kind and key; anything else is another zone. */
static void test_attach_identity(void **state)
{
    (void)state;
    struct shm_zone *a = shm_zone_attach("same", 64 * 1024, SHM_ZONE_LIMIT_REQ, 7);
    struct shm_zone *b = shm_zone_attach("same", 64 * 1024, SHM_ZONE_LIMIT_REQ, 7);
    struct shm_zone *c = shm_zone_attach("same", 128 * 1024, SHM_ZONE_LIMIT_REQ, 7);
    struct shm_zone *d = shm_zone_attach("same", 64 * 1024, SHM_ZONE_LIMIT_CONN, 7);
    struct shm_zone *e = shm_zone_attach("same", 64 * 1024, SHM_ZONE_LIMIT_REQ, 8);
    assert_ptr_equal(a, b);
    assert_int_equal(a->refs, 2);
    assert_ptr_not_equal(a, c);
    assert_ptr_not_equal(a, d);
    assert_ptr_not_equal(a, e);
    shm_zone_release(a);
    shm_zone_release(b);
    shm_zone_release(c);
    shm_zone_release(d);
    shm_zone_release(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_find_remove),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_full_zone_and_lru),
        cmocka_unit_test(test_leaky_bucket_arithmetic),
        cmocka_unit_test(test_lookup_burst_and_accounting),
        cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_owner_death_wipes_the_zone),
        cmocka_unit_test(test_shared_with_children_and_over_the_channel),
        cmocka_unit_test(test_adopt_new_zone),
        cmocka_unit_test(test_attach_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
