/*
 * test_misc_modules.c - the pure parts of geo (conf/geo.c: the CIDR trie,
 * the /16 range table), split_clients (nginx's MurmurHash2, the bucket
 * bounds), valid_referers (http/referer.c) and proxy_cookie_flags
 * (proxy/cookie_rewrite.c: parse, flag edits, join).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "conf/geo.h"
#include "conf/split_clients.h"
#include "core/arena.h"
#include "http/referer.h"
#include "proxy/cookie_rewrite.h"

static struct arena A;

static int setup(void **state)
{
    (void)state;
    arena_init(&A, 4096);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_destroy(&A);
    return 0;
}

static const struct str *sv(const char *s)
{
    struct str *v = arena_alloc(&A, sizeof(*v));
    *v = str_from_cstr(s);
    return v;
}

static void v4(const char *text, uint8_t out[4])
{
    assert_int_equal(inet_pton(AF_INET, text, out), 1);
}

static const char *find4(const struct geo_node *root, const char *ip)
{
    uint8_t b[4];
    v4(ip, b);
    const struct str *v = geo_trie_find(root, b, 32);
    return v ? v->p : NULL;
}

static void test_geo_trie(void **state)
{
    (void)state;
    struct geo_node *root = NULL;
    const struct str *old = NULL;
    uint8_t b[4];
    v4("0.0.0.0", b);
    assert_int_equal(geo_trie_insert(&A, &root, b, 0, sv("default"), &old), 0);
    v4("10.0.0.0", b);
    assert_int_equal(geo_trie_insert(&A, &root, b, 8, sv("ten"), &old), 0);
    assert_null(old);
    v4("10.1.0.0", b);
    assert_int_equal(geo_trie_insert(&A, &root, b, 16, sv("ten-one"), &old), 0);
    v4("10.1.2.3", b);
    assert_int_equal(geo_trie_insert(&A, &root, b, 32, sv("host"), &old), 0);
    assert_string_equal(find4(root, "10.200.0.1"), "ten");
    assert_string_equal(find4(root, "10.1.9.9"), "ten-one");
    assert_string_equal(find4(root, "10.1.2.3"), "host");
    assert_string_equal(find4(root, "11.0.0.1"), "default");
    /* a duplicate returns the value it replaces */
    v4("10.0.0.0", b);
    assert_int_equal(geo_trie_insert(&A, &root, b, 8, sv("TEN"), &old), 0);
    assert_non_null(old);
    assert_string_equal(old->p, "ten");
    assert_string_equal(find4(root, "10.200.0.1"), "TEN");
    /* delete: exactly that network, once */
    v4("10.1.0.0", b);
    assert_int_equal(geo_trie_delete(root, b, 16), 1);
    assert_int_equal(geo_trie_delete(root, b, 16), 0);
    assert_int_equal(geo_trie_delete(root, b, 17), 0);
    assert_string_equal(find4(root, "10.1.9.9"), "TEN");
    assert_string_equal(find4(root, "10.1.2.3"), "host");
    /* IPv6 */
    struct geo_node *r6 = NULL;
    uint8_t a6[16];
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::", a6), 1);
    assert_int_equal(geo_trie_insert(&A, &r6, a6, 32, sv("doc"), &old), 0);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8:ffff::1", a6), 1);
    assert_string_equal(geo_trie_find(r6, a6, 128)->p, "doc");
    assert_int_equal(inet_pton(AF_INET6, "2001:db9::1", a6), 1);
    assert_null(geo_trie_find(r6, a6, 128));
}

static void test_geo_ranges(void **state)
{
    (void)state;
    /* block 10.0 holds [0.0-0.255]=a [1.0-1.255]=b; the rest: default */
    static uint32_t first[0x10001];
    struct geo_range16 rng[2] = {{0x0000, 0x00ff, sv("a")}, {0x0100, 0x01ff, sv("b")}};
    for (unsigned h = 0; h <= 0x10000; h++)
        first[h] = h <= 0x0a00 ? 0 : 2;
    struct geo_conf g = {.ranges = 1, .first = first, .rng = rng, .deflt = sv("none")};
    assert_string_equal(geo_find_range(&g, 0x0a000005)->p, "a");
    assert_string_equal(geo_find_range(&g, 0x0a000105)->p, "b");
    assert_string_equal(geo_find_range(&g, 0x0a000205)->p, "none");
    assert_string_equal(geo_find_range(&g, 0x0b000005)->p, "none");
    g.first = NULL;
    assert_string_equal(geo_find_range(&g, 0x0a000005)->p, "none");
}

static void test_murmur_hash2(void **state)
{
    (void)state;
    assert_int_equal(split_murmur_hash2((const unsigned char *)"", 0), 0);
    assert_int_equal(split_murmur_hash2((const unsigned char *)"a", 1), 0x92685f5e);
    assert_int_equal(split_murmur_hash2((const unsigned char *)"abcd", 4), 0x26873021);
    assert_int_equal(split_murmur_hash2((const unsigned char *)"hello world", 11), 0x44a81419);
    assert_int_equal(split_murmur_hash2((const unsigned char *)"127.0.0.1AAA", 12), 0xb5fc5e4b);
}

static void test_split_pick(void **state)
{
    (void)state;
    struct split_part parts[] = {{1000, STR_LIT("low")}, {2000, STR_LIT("mid")}};
    struct split_clients_conf sc = {.parts = parts, .nparts = 2};
    assert_string_equal(split_clients_pick(&sc, 0).p, "low");
    assert_string_equal(split_clients_pick(&sc, 999).p, "low");
    assert_string_equal(split_clients_pick(&sc, 1000).p, "mid");
    assert_int_equal(split_clients_pick(&sc, 5000).len, 0);
    parts[1].upto = 0; /* "*" */
    assert_string_equal(split_clients_pick(&sc, 5000).p, "mid");
}

static int invalid(const struct referer_conf *rc, const char *ref)
{
    return referer_invalid(rc, NULL, ref != NULL, ref ? str_from_cstr(ref) : STR_NULL);
}

static void test_referer(void **state)
{
    (void)state;
    struct referer_host hosts[] = {
        {REF_EXACT, STR_LIT("example.com"), 0, STR_NULL},
        {REF_WILD_HEAD, STR_LIT("example.org"), 0, STR_NULL},
        {REF_WILD_HEAD, STR_LIT("example.net"), 1, STR_NULL},
        {REF_WILD_TAIL, STR_LIT("www.example"), 0, STR_NULL},
        {REF_EXACT, STR_LIT("partner.example"), 0, STR_LIT("/ok/")},
    };
    struct referer_conf rc = {.none = 1, .hosts = hosts, .nhosts = 5};
    assert_int_equal(invalid(NULL, "http://x/"), 0);
    assert_int_equal(invalid(&rc, NULL), 0);
    assert_int_equal(invalid(&rc, "junk"), 1);
    rc.blocked = 1;
    assert_int_equal(invalid(&rc, "junk"), 0);
    assert_int_equal(invalid(&rc, "http://EXAMPLE.com:81/x"), 0);
    assert_int_equal(invalid(&rc, "https://a.b.example.org/"), 0);
    assert_int_equal(invalid(&rc, "https://example.org/"), 1);
    assert_int_equal(invalid(&rc, "https://example.net/"), 0);
    assert_int_equal(invalid(&rc, "https://www.example.co.uk/"), 0);
    assert_int_equal(invalid(&rc, "http://partner.example/ok/1"), 0);
    assert_int_equal(invalid(&rc, "http://partner.example/no"), 1);
    assert_int_equal(invalid(&rc, "http://other.example/"), 1);
}

static struct str rewrite_flags(const char *cookie, unsigned flags)
{
    struct cookie_attr *at;
    unsigned n;
    assert_int_equal(cookie_parse(&A, str_from_cstr(cookie), &at, &n), 0);
    cookie_edit_flags(at, &n, flags);
    return cookie_join(&A, at, n);
}

static void test_cookie_flags(void **state)
{
    (void)state;
    assert_int_equal(cookie_flag_bits(STR_LIT("SameSite=LAX")), COOKIE_SAMESITE_LAX);
    assert_int_equal(cookie_flag_bits(STR_LIT("bogus")), 0);
    assert_string_equal(rewrite_flags("a=1;Path=/ ; secure", COOKIE_SECURE_ON).p,
                        "a=1; Path=/; secure");
    assert_string_equal(rewrite_flags("a=1", COOKIE_SECURE_ON | COOKIE_HTTPONLY_ON |
                                                 COOKIE_SAMESITE_NONE).p,
                        "a=1; Secure; HttpOnly; SameSite=None");
    assert_string_equal(rewrite_flags("a=1; Secure; HTTPONLY; samesite=lax",
                                      COOKIE_SECURE_OFF | COOKIE_HTTPONLY_OFF |
                                          COOKIE_SAMESITE_STRICT).p,
                        "a=1; SameSite=Strict");
    assert_string_equal(rewrite_flags("a=1; samesite=lax", COOKIE_SAMESITE_LAX).p,
                        "a=1; samesite=lax");
    assert_string_equal(rewrite_flags("a=1; SameSite=Lax", COOKIE_SAMESITE_OFF).p, "a=1");
    struct cookie_attr *at;
    unsigned n;
    assert_int_equal(cookie_parse(&A, STR_LIT("flag; x"), &at, &n), 0);
    assert_int_equal(n, 2);
    assert_null(at[0].value.p);
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geo_trie),
        cmocka_unit_test(test_geo_ranges),
        cmocka_unit_test(test_murmur_hash2),
        cmocka_unit_test(test_split_pick),
        cmocka_unit_test(test_referer),
        cmocka_unit_test(test_cookie_flags),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, setup, teardown);
}
