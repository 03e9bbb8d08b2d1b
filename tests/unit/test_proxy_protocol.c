/*
 * test_proxy_protocol.c - table-driven tests for core/proxy_protocol.c.
 *
 * Every valid header is fed whole with bytes after it (the header length
 * must come back, never more) and at every proper prefix (must be
 * PP_NEED_MORE). Every invalid header must give PP_ERROR whole, and each of
 * its prefixes PP_NEED_MORE or PP_ERROR, never a length. Inputs are fed from
 * exactly-sized heap copies, so AddressSanitizer catches a read past `len`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <sys/socket.h>

#include "core/proxy_protocol.h"

static const char SIG[] = "\r\n\r\n\0\r\nQUIT\n"; /* 12 bytes + NUL */

static ssize_t parse_exact(const uint8_t *b, size_t n, struct pp_result *r)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    if (n)
        memcpy(p, b, n);
    ssize_t rc = pp_parse(p, n, r);
    free(p);
    return rc;
}

/* A v2 header: fixed part, then `body` (addresses + TLVs) of `blen` bytes. */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t blen)
{
    memcpy(out, SIG, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(blen >> 8);
    out[15] = (uint8_t)blen;
    if (blen) /* body may be NULL then: memcpy from NULL is undefined even for 0 bytes */
        memcpy(out + 16, body, blen);
    return 16 + blen;
}

static const uint8_t V4_BODY[12] = {192, 0, 2, 1, 198, 51, 100, 7, 0x30, 0x39, 0x01, 0xbb};

struct valid {
    const char *name;
    uint8_t bytes[600];
    size_t len;
    int family;             /* 0, AF_INET, AF_INET6 */
    const char *src, *dst;
    unsigned sport, dport;
    unsigned version;
};

static void check_valid(const struct valid *v)
{
    struct pp_result r;
    /* whole, followed by the client's first bytes */
    uint8_t buf[700];
    memcpy(buf, v->bytes, v->len);
    memcpy(buf + v->len, "GET / HTTP/1.1\r\n", 16);
    ssize_t rc = parse_exact(buf, v->len + 16, &r);
    if (rc != (ssize_t)v->len)
        fail_msg("%s: got %zd (%s), want %zu", v->name, rc, r.reason ? r.reason : "-", v->len);
    assert_int_equal(r.version, v->version);
    assert_int_equal(r.addrs.family, v->family);
    /* exactly the header */
    assert_int_equal(parse_exact(v->bytes, v->len, &r), (ssize_t)v->len);
    if (v->family) {
        char t[64];
        pp_addr_text(&r.addrs, 0, t, sizeof(t));
        assert_string_equal(t, v->src);
        pp_addr_text(&r.addrs, 1, t, sizeof(t));
        assert_string_equal(t, v->dst);
        assert_int_equal(r.addrs.src_port, v->sport);
        assert_int_equal(r.addrs.dst_port, v->dport);
    }
    for (size_t k = 0; k < v->len; k++) {
        rc = parse_exact(v->bytes, k, &r);
        if (rc != PP_NEED_MORE)
            fail_msg("%s: prefix %zu gave %zd (%s)", v->name, k, rc, r.reason ? r.reason : "-");
    }
}

#define V1(name, text, fam, src, dst, sp, dp)                                                      \
    {                                                                                              \
        struct valid v = {name, {0}, sizeof(text) - 1, fam, src, dst, sp, dp, 1};                  \
        memcpy(v.bytes, text, sizeof(text) - 1);                                                   \
        check_valid(&v);                                                                           \
    }

static void test_v1_valid(void **state)
{
    (void)state;
    V1("tcp4", "PROXY TCP4 192.0.2.1 198.51.100.7 12345 443\r\n", AF_INET, "192.0.2.1",
       "198.51.100.7", 12345, 443);
    V1("tcp6", "PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n", AF_INET6, "2001:db8::1",
       "2001:db8::2", 65535, 0);
    V1("tcp6 mapped", "PROXY TCP6 ::ffff:10.0.0.1 ::1 1 2\r\n", AF_INET6, "::ffff:10.0.0.1", "::1",
       1, 2);
    V1("unknown", "PROXY UNKNOWN\r\n", 0, NULL, NULL, 0, 0);
    V1("unknown with addresses", "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", 0,
       NULL, NULL, 0, 0);
    /* the longest line the spec allows: 107 bytes */
    V1("max tcp6",
       "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
       "65535 65535\r\n",
       AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, 65535);
    char line[PP_V1_MAX + 1];
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    line[PP_V1_MAX - 2] = '\r';
    line[PP_V1_MAX - 1] = '\n';
    struct valid v = {"unknown 107", {0}, PP_V1_MAX, 0, NULL, NULL, 0, 0, 1};
    memcpy(v.bytes, line, PP_V1_MAX);
    check_valid(&v);
}

static void test_v2_valid(void **state)
{
    (void)state;
    struct valid v = {"v2 inet", {0}, 0, AF_INET, "192.0.2.1", "198.51.100.7", 12345, 443, 2};
    v.len = v2(v.bytes, 0x21, 0x11, V4_BODY, sizeof(V4_BODY));
    check_valid(&v);

    uint8_t b6[36] = {0};
    b6[0] = 0x20, b6[1] = 0x01, b6[2] = 0x0d, b6[3] = 0xb8, b6[15] = 1; /* 2001:db8::1 */
    b6[31] = 1;                                                         /* ::1 */
    b6[32] = 0x00, b6[33] = 80, b6[34] = 0x1f, b6[35] = 0x90;           /* 80 -> 8080 */
    struct valid v6 = {"v2 inet6", {0}, 0, AF_INET6, "2001:db8::1", "::1", 80, 8080, 2};
    v6.len = v2(v6.bytes, 0x21, 0x21, b6, sizeof(b6));
    check_valid(&v6);

    /* TLVs after the addresses are skipped with the block */
    uint8_t tl[12 + 3 + 5 + 3 + 200];
    memcpy(tl, V4_BODY, 12);
    uint8_t *t = tl + 12;
    *t++ = 0x01, *t++ = 0, *t++ = 5; /* ALPN "h2 x1" */
    memcpy(t, "h2 x1", 5), t += 5;
    *t++ = 0x04, *t++ = 0, *t++ = 200; /* NOOP padding */
    memset(t, 0, 200);
    struct valid vt = {"v2 tlvs", {0}, 0, AF_INET, "192.0.2.1", "198.51.100.7", 12345, 443, 2};
    vt.len = v2(vt.bytes, 0x21, 0x11, tl, sizeof(tl));
    check_valid(&vt);

    /* LOCAL: addresses (if any) ignored, whatever the family byte says */
    struct valid vl = {"v2 local", {0}, 0, 0, NULL, NULL, 0, 0, 2};
    vl.len = v2(vl.bytes, 0x20, 0x00, NULL, 0);
    check_valid(&vl);
    vl.len = v2(vl.bytes, 0x20, 0x11, V4_BODY, sizeof(V4_BODY));
    check_valid(&vl);
    vl.len = v2(vl.bytes, 0x20, 0xff, NULL, 0);
    check_valid(&vl);

    /* PROXY but nothing usable: AF_UNSPEC, AF_UNIX, datagrams */
    struct valid vu = {"v2 unspec", {0}, 0, 0, NULL, NULL, 0, 0, 2};
    vu.len = v2(vu.bytes, 0x21, 0x00, NULL, 0);
    check_valid(&vu);
    uint8_t un[216] = {0};
    memcpy(un, "/run/a.sock", 11);
    vu.len = v2(vu.bytes, 0x21, 0x31, un, sizeof(un));
    check_valid(&vu);
    vu.len = v2(vu.bytes, 0x21, 0x12, V4_BODY, sizeof(V4_BODY));
    check_valid(&vu);
}

struct invalid {
    const char *name;
    uint8_t bytes[5000];
    size_t len;
};

static void check_invalid(const struct invalid *v)
{
    struct pp_result r;
    ssize_t rc = parse_exact(v->bytes, v->len, &r);
    if (rc != PP_ERROR)
        fail_msg("%s: got %zd, want an error", v->name, rc);
    assert_non_null(r.reason);
    for (size_t k = 0; k < v->len; k++) {
        rc = parse_exact(v->bytes, k, &r);
        if (rc != PP_NEED_MORE && rc != PP_ERROR)
            fail_msg("%s: prefix %zu parsed as %zd", v->name, k, rc);
        if (rc == PP_ERROR)
            assert_non_null(r.reason);
    }
}

static struct invalid inv; /* large: not on the stack */

#define BAD1(name_, text)                                                                          \
    {                                                                                              \
        inv.name = name_;                                                                          \
        inv.len = sizeof(text) - 1;                                                                \
        memcpy(inv.bytes, text, inv.len);                                                          \
        check_invalid(&inv);                                                                       \
    }

static void test_v1_invalid(void **state)
{
    (void)state;
    BAD1("http", "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    BAD1("tls", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
    BAD1("lower case", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n");
    BAD1("no space", "PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n");
    BAD1("bare LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n");
    BAD1("CR inside", "PROXY TCP4 1.2.3.4\r 5.6.7.8 1 2\r\n");
    BAD1("tcp5", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n");
    BAD1("udp4", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n");
    BAD1("empty", "PROXY \r\n");
    BAD1("v6 in tcp4", "PROXY TCP4 ::1 ::1 1 2\r\n");
    BAD1("v4 in tcp6", "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n");
    BAD1("bad octet", "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n");
    BAD1("host name", "PROXY TCP4 localhost 5.6.7.8 1 2\r\n");
    BAD1("port range", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n");
    BAD1("port sign", "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n");
    BAD1("port hex", "PROXY TCP4 1.2.3.4 5.6.7.8 0x10 2\r\n");
    BAD1("port long", "PROXY TCP4 1.2.3.4 5.6.7.8 000001 2\r\n");
    BAD1("missing port", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n");
    BAD1("extra field", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n");
    BAD1("double space", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n");
    BAD1("trailing space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n");
    BAD1("NUL in address", "PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n");
    BAD1("UNKNOWNX", "PROXY UNKNOWNX\r\n");
    /* 107 bytes without the end of the line: too long, whatever follows */
    char line[PP_V1_MAX + 20];
    memset(line, '1', sizeof(line));
    memcpy(line, "PROXY TCP4 ", 11);
    inv.name = "over-long";
    inv.len = PP_V1_MAX;
    memcpy(inv.bytes, line, inv.len);
    check_invalid(&inv);
    memcpy(line, "PROXY UNKNOWN ", 14);
    line[PP_V1_MAX - 1] = '\r';
    line[PP_V1_MAX] = '\n';
    inv.name = "unknown 108";
    inv.len = PP_V1_MAX + 1;
    memcpy(inv.bytes, line, inv.len);
    check_invalid(&inv);
}

static void bad2(const char *name, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t blen)
{
    inv.name = name;
    inv.len = v2(inv.bytes, ver_cmd, fam, body, blen);
    check_invalid(&inv);
}

static void test_v2_invalid(void **state)
{
    (void)state;
    uint8_t zeros[4096] = {0};
    bad2("version 1", 0x11, 0x11, V4_BODY, sizeof(V4_BODY));
    bad2("version 3", 0x31, 0x11, V4_BODY, sizeof(V4_BODY));
    bad2("command 2", 0x22, 0x11, V4_BODY, sizeof(V4_BODY));
    bad2("command 15", 0x2f, 0x11, V4_BODY, sizeof(V4_BODY));
    bad2("family 4", 0x21, 0x41, V4_BODY, sizeof(V4_BODY));
    bad2("transport 3", 0x21, 0x13, V4_BODY, sizeof(V4_BODY));
    bad2("inet short", 0x21, 0x11, V4_BODY, 11);
    bad2("inet6 short", 0x21, 0x21, zeros, 35);
    bad2("unix short", 0x21, 0x31, zeros, 215);
    bad2("too large", 0x21, 0x11, zeros, PP_V2_MAX - 16 + 1);
    /* An absurd length is refused from the fixed part alone, before any body. */
    struct pp_result r;
    uint8_t hdr[16];
    memcpy(hdr, SIG, 12);
    hdr[12] = 0x21, hdr[13] = 0x11, hdr[14] = 0xff, hdr[15] = 0xff;
    assert_int_equal(parse_exact(hdr, 16, &r), PP_ERROR);
    assert_int_equal(r.version, 2);
    /* Broken signatures. */
    uint8_t sig[16];
    v2(sig, 0x21, 0x00, NULL, 0);
    for (size_t i = 0; i < 12; i++) {
        uint8_t b[16];
        memcpy(b, sig, 16);
        b[i] ^= 0x20;
        if (parse_exact(b, 16, &r) != PP_ERROR)
            fail_msg("signature byte %zu changed: accepted", i);
    }
}

/* Whatever the bytes, a result is a length within the input, NEED_MORE or
 * an error with a reason: random and mutated inputs (the fuzz target does
 * more of this). */
static void test_random(void **state)
{
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    uint8_t base[64] = {0};
    size_t blen = v2(base, 0x21, 0x11, V4_BODY, sizeof(V4_BODY));
    for (int round = 0; round < 20000; round++) {
        uint8_t b[64];
        memcpy(b, round & 1 ? base : (const uint8_t *)"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET / HTTP/1.1\r\n", 48);
        for (int k = 0; k < 3; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            b[x % 48] = (uint8_t)(x >> 24);
        }
        size_t n = (size_t)(x >> 40) % 49;
        struct pp_result r;
        ssize_t rc = parse_exact(b, n, &r);
        if (rc > 0)
            assert_true((size_t)rc <= n);
        else if (rc == PP_ERROR)
            assert_non_null(r.reason);
        else
            assert_int_equal(rc, PP_NEED_MORE);
    }
    (void)blen;
}

static void test_addr_text(void **state)
{
    (void)state;
    struct pp_addrs a;
    memset(&a, 0, sizeof(a));
    char t[64] = "junk";
    assert_int_equal(pp_addr_text(&a, 0, t, sizeof(t)), 0);
    assert_string_equal(t, "");
    a.family = AF_INET;
    memcpy(a.src, "\x7f\x00\x00\x01", 4);
    assert_int_equal(pp_addr_text(&a, 0, t, sizeof(t)), 9);
    assert_string_equal(t, "127.0.0.1");
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_valid),
        cmocka_unit_test(test_v2_valid),
        cmocka_unit_test(test_v1_invalid),
        cmocka_unit_test(test_v2_invalid),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_addr_text),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
