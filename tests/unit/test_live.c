/*
 * test_live.c - the status page's shared tables (core/live.h): tunnel slots
 * (claim, bytes, free, a full table, slots of a dead process), the refusal
 * and reload rings (newest first, wrap-around, first line only) and the peer
 * table (counts, latency average, a full table).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/live.h"
#include "core/loop.h"

static struct live_tunnel_view views[LIVE_TUNNELS];

static const struct live_route route = {
    .server = "example.com", .location = "/ws", .upstream = "chat", .peer = "10.0.0.1:9000",
    .client = "192.0.2.1:40000", .http2 = 0,
};

static size_t listed(uint64_t *unlisted)
{
    return live_tunnels_read(views, LIVE_TUNNELS, unlisted);
}

static void test_tunnel_slots(void **state)
{
    (void)state;
    uint64_t un;
    assert_int_equal(live_init(), 0);
    size_t base = listed(&un);
    int a = live_tunnel_open(&route, 7);
    assert_true(a >= 0);
    live_tunnel_bytes(a, 0, 100);
    live_tunnel_bytes(a, 1, 40);
    live_tunnel_bytes(a, 0, 1);
    assert_int_equal(listed(&un), base + 1);
    const struct live_tunnel_view *v = NULL;
    for (size_t i = 0; i < base + 1; i++)
        if (views[i].conn_id == 7)
            v = &views[i];
    assert_non_null(v);
    assert_int_equal(v->pid, getpid());
    assert_string_equal(v->server, "example.com");
    assert_string_equal(v->location, "/ws");
    assert_string_equal(v->upstream, "chat");
    assert_string_equal(v->peer, "10.0.0.1:9000");
    assert_string_equal(v->client, "192.0.2.1:40000");
    assert_int_equal(v->bytes_up, 101);
    assert_int_equal(v->bytes_down, 40);
    live_tunnel_close(a);
    assert_int_equal(listed(&un), base);
    /* a slot reused shows the new tunnel's numbers only */
    int b = live_tunnel_open(&route, 8);
    assert_true(b >= 0);
    assert_int_equal(listed(&un), base + 1);
    live_tunnel_close(b);
}

static void test_long_names_are_cut(void **state)
{
    (void)state;
    char longname[300];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    struct live_route r = route;
    r.location = longname;
    uint64_t un;
    size_t base = listed(&un);
    int a = live_tunnel_open(&r, 9);
    assert_int_equal(listed(&un), base + 1);
    for (size_t i = 0; i < base + 1; i++)
        if (views[i].conn_id == 9)
            assert_int_equal(strlen(views[i].location), LIVE_NAME - 1);
    live_tunnel_close(a);
}

static void test_full_table_counts_unlisted(void **state)
{
    (void)state;
    uint64_t un;
    size_t base = listed(&un);
    assert_int_equal(un, 0);
    static int slots[LIVE_TUNNELS + 3];
    for (int i = 0; i < LIVE_TUNNELS + 3; i++)
        slots[i] = live_tunnel_open(&route, 1000 + (uint64_t)i);
    assert_int_equal(listed(&un), LIVE_TUNNELS);
    assert_int_equal(un, base + 3);
    assert_int_equal(slots[LIVE_TUNNELS + 2], -1);
    live_tunnel_bytes(-1, 0, 5); /* ignored */
    for (int i = 0; i < LIVE_TUNNELS + 3; i++)
        live_tunnel_close(slots[i]);
    assert_int_equal(listed(&un), base);
    assert_int_equal(un, 0);
}

/* A child opens a tunnel and exits without closing it: the reader drops the
 * slot (its pid is gone). */
static void test_dead_owner_is_dropped(void **state)
{
    (void)state;
    uint64_t un;
    size_t base = listed(&un);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        live_tunnel_open(&route, 4242);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_int_equal(listed(&un), base);
    /* and live_reap() frees them for the master */
    pid = fork();
    if (pid == 0) {
        live_tunnel_open(&route, 4243);
        pause(); /* until killed */
        _exit(0);
    }
    for (int i = 0; i < 2000 && listed(&un) == base; i++)
        usleep(1000);
    assert_int_equal(listed(&un), base + 1);
    live_reap(pid);
    assert_int_equal(listed(&un), base);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
}

static void test_refusal_ring(void **state)
{
    (void)state;
    static struct live_refusal_view rv[LIVE_REFUSED];
    char reason[64];
    for (int i = 0; i < LIVE_REFUSED + 5; i++) {
        snprintf(reason, sizeof(reason), "reason %d\nsecond line", i);
        live_refused(&route, 400 + i % 100, reason);
    }
    size_t n = live_refused_read(rv, LIVE_REFUSED);
    assert_int_equal(n, LIVE_REFUSED);
    assert_string_equal(rv[0].reason, "reason 68"); /* newest first, first line only */
    assert_string_equal(rv[LIVE_REFUSED - 1].reason, "reason 5");
    assert_int_equal(rv[0].status, 400 + 68);
    assert_string_equal(rv[0].client, "192.0.2.1:40000");
    assert_int_equal(live_refused_read(rv, 2), 2);
}

static void test_reload_ring(void **state)
{
    (void)state;
    struct live_reload_view rv[LIVE_RELOADS];
    live_reload(1, 2, NULL);
    live_reload(0, 0, "unknown directive \"x\" in a.conf:3\nmore");
    size_t n = live_reloads_read(rv, LIVE_RELOADS);
    assert_int_equal(n, 2);
    assert_int_equal(rv[0].ok, 0);
    assert_string_equal(rv[0].message, "unknown directive \"x\" in a.conf:3");
    assert_int_equal(rv[1].ok, 1);
    assert_int_equal(rv[1].generation, 2);
    assert_string_equal(rv[1].message, "");
    assert_true(rv[1].when_ms > 1600000000000ull);
}

static void test_peers(void **state)
{
    (void)state;
    struct live_peer_view v;
    live_peer_get("g", "1.2.3.4:80", &v);
    assert_int_equal(v.seen, 0);
    live_peer_ok("g", "1.2.3.4:80", 80);
    live_peer_get("g", "1.2.3.4:80", &v);
    assert_int_equal(v.seen, 1);
    assert_int_equal(v.ok, 1);
    assert_int_equal(v.latency_us, 80000); /* the first sample as it is */
    live_peer_ok("g", "1.2.3.4:80", 0);
    live_peer_get("g", "1.2.3.4:80", &v);
    assert_int_equal(v.latency_us, 70000); /* 7/8 of it */
    live_peer_failed("g", "1.2.3.4:80");
    live_peer_get("g", "1.2.3.4:80", &v);
    assert_int_equal(v.fails, 1);
    /* the key is group + address */
    live_peer_get("h", "1.2.3.4:80", &v);
    assert_int_equal(v.seen, 0);
    /* a full table drops new peers, keeps the known ones */
    char name[32];
    for (int i = 0; i < LIVE_PEERS + 10; i++) {
        snprintf(name, sizeof(name), "10.1.%d.%d:80", i / 256, i % 256);
        live_peer_failed("many", name);
    }
    live_peer_get("g", "1.2.3.4:80", &v);
    assert_int_equal(v.ok, 2);
}

int main(void)
{
    loop_update_time();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tunnel_slots),          cmocka_unit_test(test_long_names_are_cut),
        cmocka_unit_test(test_full_table_counts_unlisted),
        cmocka_unit_test(test_dead_owner_is_dropped), cmocka_unit_test(test_refusal_ring),
        cmocka_unit_test(test_reload_ring),           cmocka_unit_test(test_peers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
