/*
 * test_balance.c - the hash methods of proxy/balance.c: CRC-32, weights,
 * the consistent ring's "only the removed server's keys move", probing past
 * unusable servers, least_conn's choice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "proxy/balance.h"
#include "proxy/upstream.h"

#define NPEERS 4

struct group {
    struct upstream_conf u;
    struct upstream_peer peers[NPEERS];
    struct peer_rt prt[NPEERS];
    struct upstream_rt urt;
    char names[NPEERS][32];
};

static void group_init(struct group *g, unsigned n, enum upstream_balancer b, int consistent)
{
    memset(g, 0, sizeof(*g));
    for (unsigned i = 0; i < n; i++) {
        snprintf(g->names[i], sizeof(g->names[i]), "10.0.0.%u:80", i + 1);
        g->peers[i].name = g->names[i];
        g->peers[i].weight = 1;
        g->peers[i].addrlen = sizeof(struct sockaddr_in);
        ((struct sockaddr_in *)&g->peers[i].addr)->sin_family = AF_INET;
        ((struct sockaddr_in *)&g->peers[i].addr)->sin_addr.s_addr = htonl(0x0a000001u + i);
        g->prt[i].effective_weight = 1;
    }
    g->u.name = "pool";
    g->u.peers = g->peers;
    g->u.npeers = g->u.nprimary = n;
    g->u.balancer = b;
    g->u.hash_consistent = consistent;
    g->urt.peers = g->prt;
}

static int pick(struct group *g, const char *key, uint64_t tried)
{
    return balance_pick(&g->u, &g->urt, (struct str){key, strlen(key)}, tried);
}

static void test_crc32(void **state)
{
    (void)state;
    assert_int_equal(balance_crc32("123456789", 9), 0xCBF43926u); /* the check value */
    assert_int_equal(balance_crc32("", 0), 0);
}

static void test_hash_weights(void **state)
{
    (void)state;
    struct group g;
    group_init(&g, 2, UPS_BALANCE_HASH, 0);
    g.peers[1].weight = 3;
    unsigned count[2] = {0, 0};
    char key[32];
    for (int k = 0; k < 4000; k++) {
        snprintf(key, sizeof(key), "user-%d", k);
        int i = pick(&g, key, 0);
        assert_true(i == 0 || i == 1);
        count[i]++;
        assert_int_equal(pick(&g, key, 0), i); /* stable */
    }
    /* 1:3 within a few percent */
    assert_in_range(count[0], 800, 1200);
}

static void test_consistent_ring_moves_only_removed_keys(void **state)
{
    (void)state;
    struct group g3, g2;
    group_init(&g3, 3, UPS_BALANCE_HASH, 1);
    group_init(&g2, 2, UPS_BALANCE_HASH, 1); /* the same first two servers */
    int before[1000];
    unsigned per[3] = {0, 0, 0};
    char key[32];
    for (int k = 0; k < 1000; k++) {
        snprintf(key, sizeof(key), "/video/%d", k);
        before[k] = pick(&g3, key, 0);
        assert_true(before[k] >= 0 && before[k] < 3);
        per[before[k]]++;
    }
    for (int i = 0; i < 3; i++)
        assert_in_range(per[i], 200, 470); /* a third each, roughly */
    for (int k = 0; k < 1000; k++) {
        snprintf(key, sizeof(key), "/video/%d", k);
        int now = pick(&g2, key, 0);
        if (before[k] < 2)
            assert_int_equal(now, before[k]);
        else
            assert_true(now == 0 || now == 1);
    }
    balance_rt_free(&g3.urt);
    balance_rt_free(&g2.urt);
}

static void test_probes_past_unusable_servers(void **state)
{
    (void)state;
    struct group g;
    group_init(&g, 3, UPS_BALANCE_HASH, 1);
    int first = pick(&g, "k", 0);
    g.peers[first].down = 1;
    int second = pick(&g, "k", 0);
    assert_true(second >= 0 && second != first);
    /* tried servers are skipped too */
    int third = pick(&g, "k", 1ULL << (unsigned)second);
    assert_true(third >= 0 && third != first && third != second);
    /* every server down: the method gives up (round robin decides then) */
    for (int i = 0; i < 3; i++)
        g.peers[i].down = 1;
    assert_int_equal(pick(&g, "k", 0), -1);
    balance_rt_free(&g.urt);

    struct group ip;
    group_init(&ip, 3, UPS_BALANCE_IP_HASH, 0);
    unsigned char net[3] = {192, 0, 2};
    struct str key = {(const char *)net, 3};
    int a = balance_pick(&ip.u, &ip.urt, key, 0);
    assert_int_equal(balance_pick(&ip.u, &ip.urt, key, 0), a);
    assert_int_equal(balance_pick(&ip.u, &ip.urt, STR_NULL, 0), -1); /* no address: round robin */
}

static void test_least_conn(void **state)
{
    (void)state;
    struct group g;
    group_init(&g, 3, UPS_BALANCE_LEAST_CONN, 0);
    unsigned *load[3];
    for (unsigned i = 0; i < 3; i++)
        assert_non_null(load[i] = upstream_peer_load(&g.u, &g.urt, i));
    *load[0] = 2;
    *load[1] = 0;
    *load[2] = 1;
    assert_int_equal(pick(&g, "", 0), 1);
    /* weight 3 with 2 connections beats weight 1 with 1 */
    g.peers[0].weight = 3;
    *load[1] = 1;
    assert_int_equal(pick(&g, "", 0), 0);
    /* ties take turns */
    *load[0] = *load[1] = *load[2] = 0;
    g.peers[0].weight = 1;
    unsigned seen = 0;
    for (int k = 0; k < 6; k++)
        seen |= 1u << pick(&g, "", 0);
    assert_int_equal(seen, 7);
    *load[0] = *load[1] = *load[2] = 0;
    upstream_loads_free();
}

static void test_empty_hash_key_is_round_robin(void **state)
{
    (void)state;
    for (int consistent = 0; consistent < 2; consistent++) {
        struct group g;
        group_init(&g, 3, UPS_BALANCE_HASH, consistent);
        assert_true(pick(&g, "k", 0) >= 0);
        assert_int_equal(pick(&g, "", 0), -1); /* the caller's round robin decides */
        /* and that spreads the requests */
        unsigned seen = 0;
        for (int k = 0; k < 3; k++)
            seen |= 1u << upstream_pick(&g.u, &g.urt, STR_NULL, 0);
        assert_int_equal(seen, 7);
        balance_rt_free(&g.urt);
    }
}

static void test_max_conns_and_backup(void **state)
{
    (void)state;
    struct group g;
    group_init(&g, 2, UPS_BALANCE_ROUND_ROBIN, 0);
    g.u.name = "maxconns";
    g.u.nprimary = 1; /* peer 1 is a backup */
    g.peers[0].max_conns = 1;
    unsigned *load0 = upstream_peer_load(&g.u, &g.urt, 0);
    assert_non_null(load0);
    assert_int_equal(upstream_pick(&g.u, &g.urt, STR_NULL, 0), 0);
    *load0 = 1; /* full: the backup takes the request */
    assert_false(upstream_peer_usable(&g.u, &g.urt, 0));
    assert_int_equal(upstream_pick(&g.u, &g.urt, STR_NULL, 0), 1);
    g.peers[1].max_conns = 2;
    *upstream_peer_load(&g.u, &g.urt, 1) = 2; /* everything full: no live upstreams */
    assert_int_equal(upstream_pick(&g.u, &g.urt, STR_NULL, 0), -1);
    *load0 = 0;
    assert_int_equal(upstream_pick(&g.u, &g.urt, STR_NULL, 0), 0);
    *upstream_peer_load(&g.u, &g.urt, 1) = 0;
    upstream_loads_free();
}

static void test_max_fails_not_cleared_by_success(void **state)
{
    (void)state;
    struct group g;
    group_init(&g, 2, UPS_BALANCE_ROUND_ROBIN, 0);
    g.peers[0].max_fails = 3;
    g.peers[0].fail_timeout = 60000;
    g.peers[0].weight = 3;
    g.prt[0].effective_weight = 3;
    /* a success before the first failure */
    upstream_peer_ok(&g.u, &g.urt, 0);
    for (int k = 0; k < 2; k++) {
        upstream_peer_failed(&g.u, &g.urt, 0);
        upstream_peer_ok(&g.u, &g.urt, 0); /* within fail_timeout: the count stays */
    }
    assert_int_equal(g.prt[0].fails, 2);
    /* weight/max_fails off per failure */
    assert_int_equal(g.prt[0].effective_weight, 1);
    assert_true(upstream_peer_usable(&g.u, &g.urt, 0));
    upstream_peer_failed(&g.u, &g.urt, 0);
    assert_false(upstream_peer_usable(&g.u, &g.urt, 0));
    for (int k = 0; k < 4; k++)
        assert_int_equal(upstream_pick(&g.u, &g.urt, STR_NULL, 0), 1);
    upstream_loads_free();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32),
        cmocka_unit_test(test_hash_weights),
        cmocka_unit_test(test_consistent_ring_moves_only_removed_keys),
        cmocka_unit_test(test_probes_past_unusable_servers),
        cmocka_unit_test(test_least_conn),
        cmocka_unit_test(test_empty_hash_key_is_round_robin),
        cmocka_unit_test(test_max_conns_and_backup),
        cmocka_unit_test(test_max_fails_not_cleared_by_success),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
