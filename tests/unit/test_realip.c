/*
 * test_realip.c - the pure helpers of http/realip.c: CIDR parsing (nginx's
 * ngx_ptocidr, "low address bits" included), trust checks (IPv4-mapped IPv6
 * peers match IPv4 entries), address[:port] parsing (ngx_parse_addr_port)
 * and the X-Forwarded-For walk (ngx_http_get_forwarded_addr_internal).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <sys/socket.h>

#include "core/net.h"
#include "http/realip.h"

static union conn_addr ip(const char *text, unsigned port)
{
    union conn_addr a;
    memset(&a, 0, sizeof(a));
    if (inet_pton(AF_INET, text, &a.in.sin_addr) == 1) {
        a.in.sin_family = AF_INET;
        a.in.sin_port = htons((uint16_t)port);
    } else {
        assert_int_equal(inet_pton(AF_INET6, text, &a.in6.sin6_addr), 1);
        a.in6.sin6_family = AF_INET6;
        a.in6.sin6_port = htons((uint16_t)port);
    }
    return a;
}

static const char *text(const union conn_addr *a)
{
    static char buf[80];
    net_ip_str(&a->sa, buf, sizeof(buf));
    return buf;
}

static void test_parse_cidr(void **state)
{
    (void)state;
    struct realip_cidr c;
    assert_int_equal(realip_parse_cidr("10.0.0.0/8", &c), 0);
    assert_int_equal(c.family, AF_INET);
    assert_memory_equal(c.mask, "\xff\x00\x00\x00", 4);
    assert_int_equal(realip_parse_cidr("10.1.2.3/8", &c), 1); /* low bits: warned, masked */
    assert_memory_equal(c.addr, "\x0a\x00\x00\x00", 4);
    assert_int_equal(realip_parse_cidr("192.0.2.1", &c), 0);
    assert_memory_equal(c.mask, "\xff\xff\xff\xff", 4);
    assert_int_equal(realip_parse_cidr("0.0.0.0/0", &c), 0);
    assert_memory_equal(c.mask, "\x00\x00\x00\x00", 4);
    assert_int_equal(realip_parse_cidr("10.0.0.0/20", &c), 0);
    assert_memory_equal(c.mask, "\xff\xff\xf0\x00", 4);
    assert_int_equal(realip_parse_cidr("2001:db8::/32", &c), 0);
    assert_int_equal(c.family, AF_INET6);
    assert_memory_equal(c.mask, "\xff\xff\xff\xff\x00", 5);
    assert_int_equal(realip_parse_cidr("::/0", &c), 0);
    assert_int_equal(realip_parse_cidr("2001:db8::1/64", &c), 1);
    const char *bad[] = {"10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/x", "10.0.0/8",
                         "example.com", "", "/8", "10.0.0.0/-1", "unix:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (realip_parse_cidr(bad[i], &c) != -1)
            fail_msg("\"%s\" parsed as a CIDR", bad[i]);
}

static void test_trusted(void **state)
{
    (void)state;
    struct realip_cidr from[3];
    assert_int_equal(realip_parse_cidr("10.0.0.0/8", &from[0]), 0);
    assert_int_equal(realip_parse_cidr("2001:db8::/32", &from[1]), 0);
    assert_int_equal(realip_parse_cidr("192.0.2.7", &from[2]), 0);
    union conn_addr a = ip("10.200.3.4", 1);
    assert_true(realip_trusted(from, 3, &a));
    a = ip("11.0.0.1", 1);
    assert_false(realip_trusted(from, 3, &a));
    a = ip("::ffff:10.9.9.9", 1); /* IPv4-mapped: as IPv4 */
    assert_true(realip_trusted(from, 3, &a));
    a = ip("2001:db8:ffff::1", 1);
    assert_true(realip_trusted(from, 3, &a));
    a = ip("2001:db9::1", 1);
    assert_false(realip_trusted(from, 3, &a));
    a = ip("192.0.2.7", 1);
    assert_true(realip_trusted(from, 3, &a));
    a = ip("192.0.2.8", 1);
    assert_false(realip_trusted(from, 3, &a));
    assert_false(realip_trusted(from, 0, &a));
    struct realip_cidr unix_only = {.family = AF_UNIX};
    assert_false(realip_trusted(&unix_only, 1, &a));
}

static void test_parse_addr(void **state)
{
    (void)state;
    union conn_addr a;
    struct {
        const char *in;
        const char *ip;
        unsigned port;
    } ok[] = {
        {"192.0.2.1", "192.0.2.1", 0},   {"192.0.2.1:8080", "192.0.2.1", 8080},
        {"::1", "::1", 0},               {"[2001:db8::1]:443", "2001:db8::1", 443},
        {"2001:db8::1", "2001:db8::1", 0}, {"1.2.3.4:65535", "1.2.3.4", 65535},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (realip_parse_addr(str_from_cstr(ok[i].in), &a) != 0)
            fail_msg("\"%s\" did not parse", ok[i].in);
        assert_string_equal(text(&a), ok[i].ip);
        assert_int_equal(net_port(&a.sa), ok[i].port);
    }
    const char *bad[] = {"", "x", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:", "[::1]", "[::1]x",
                         "[::1]:", "1.2.3.4:80:80", "256.1.1.1", " 1.2.3.4", "1.2.3.4 "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (realip_parse_addr(str_from_cstr(bad[i]), &a) == 0)
            fail_msg("\"%s\" parsed", bad[i]);
}

/* The walk over one X-Forwarded-For value from peer 127.0.0.1, trusting
 * 127.0.0.1 and 10.0.0.0/8. */
static enum realip_rc walk(const char *xff, int recursive, const char **out)
{
    struct realip_cidr from[2];
    assert_int_equal(realip_parse_cidr("127.0.0.1", &from[0]), 0);
    assert_int_equal(realip_parse_cidr("10.0.0.0/8", &from[1]), 0);
    union conn_addr a = ip("127.0.0.1", 5000);
    enum realip_rc rc = realip_forwarded(from, 2, recursive, str_from_cstr(xff), &a);
    *out = text(&a);
    return rc;
}

static void test_forwarded(void **state)
{
    (void)state;
    const char *got;
    assert_int_equal(walk("203.0.113.1, 10.0.0.2", 0, &got), REALIP_OK);
    assert_string_equal(got, "10.0.0.2");
    assert_int_equal(walk("203.0.113.1, 10.0.0.2", 1, &got), REALIP_OK); /* list used up */
    assert_string_equal(got, "203.0.113.1");
    assert_int_equal(walk("10.0.0.3,10.0.0.2", 1, &got), REALIP_OK);
    assert_string_equal(got, "10.0.0.3");
    assert_int_equal(walk("198.51.100.1, 203.0.113.1, 10.0.0.2", 1, &got), REALIP_DONE);
    assert_string_equal(got, "203.0.113.1");
    assert_int_equal(walk("garbage, 10.0.0.2", 1, &got), REALIP_DONE);
    assert_string_equal(got, "10.0.0.2");
    assert_int_equal(walk("10.0.0.2, garbage", 1, &got), REALIP_DECLINED);
    assert_string_equal(got, "127.0.0.1");
    assert_int_equal(walk("203.0.113.1 ,, ", 0, &got), REALIP_OK);
    assert_string_equal(got, "203.0.113.1");
    assert_int_equal(walk("", 1, &got), REALIP_DECLINED);
    assert_int_equal(walk(" , ", 1, &got), REALIP_DECLINED);
    assert_int_equal(walk("[2001:db8::1]:8080", 1, &got), REALIP_OK);
    assert_string_equal(got, "2001:db8::1");
    /* an untrusted peer: nothing is taken */
    struct realip_cidr from;
    assert_int_equal(realip_parse_cidr("10.0.0.0/8", &from), 0);
    union conn_addr a = ip("127.0.0.1", 1);
    assert_int_equal(realip_forwarded(&from, 1, 1, STR_LIT("10.0.0.1"), &a), REALIP_DECLINED);
    assert_string_equal(text(&a), "127.0.0.1");
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_cidr),
        cmocka_unit_test(test_trusted),
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_forwarded),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
