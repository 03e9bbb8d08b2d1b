/*
 * test_h1_parser.c - table-driven tests for http/h1_parser.c.
 *
 * Every valid head is fed at every split point (each proper prefix must give
 * -2, the whole head its length with the same fields), and again with every
 * lone LF turned into CRLF (same fields); every invalid head must
 * give -1 with the expected reason, and once a prefix is rejected every longer
 * prefix is too. Chunked bodies are decoded in one call, byte by byte, at
 * every two-way split and at random splits, and must decode identically.
 *
 * Inputs are copied into exactly-sized heap buffers so that AddressSanitizer
 * catches any read past `len`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/h1_parser.h"

#define RAW(s) s, sizeof(s) - 1
#define MAXH 8
#define B(s) s, sizeof(s) - 1

/* Heap copy of exactly n bytes (n may be 0). */
static char *dup_exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, s, n);
    return p;
}

static int slice_is(struct str s, const char *want)
{
    size_t n = strlen(want);
    return s.len == n && (n == 0 || memcmp(s.p, want, n) == 0);
}

/* Print a byte string with escapes, for failure messages. */
static const char *esc(const char *s, size_t n)
{
    static char out[2][512];
    static int which;
    char *o = out[which ^= 1];
    size_t j = 0;
    for (size_t i = 0; i < n && j < sizeof(out[0]) - 8; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r')
            j += (size_t)sprintf(o + j, "\\r");
        else if (c == '\n')
            j += (size_t)sprintf(o + j, "\\n");
        else if (c < 0x20 || c >= 0x7f)
            j += (size_t)sprintf(o + j, "\\x%02x", c);
        else
            o[j++] = (char)c;
    }
    o[j] = 0;
    return o;
}

/* ------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------ */

struct hdr_exp {
    const char *name, *value;
};

struct req_vec {
    const char *raw;
    size_t len;
    const char *method, *target;
    int minor;
    size_t nh;
    struct hdr_exp h[MAXH];
};

/* clang-format off */
static const struct req_vec req_valid[] = {
    {RAW("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), "GET", "/", 1, 1,
     {{"Host", "example.com"}}},
    {RAW("GET / HTTP/1.0\r\n\r\n"), "GET", "/", 0, 0, {{0}}},
    {RAW("\r\nGET / HTTP/1.1\r\n\r\n"), "GET", "/", 1, 0, {{0}}},
    {RAW("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n"), "GET", "/", 1, 0, {{0}}},
    {RAW("POST /a/b?c=d&e=%20f#frag HTTP/1.1\r\nContent-Length: 5\r\nHost: h\r\n\r\n"), "POST",
     "/a/b?c=d&e=%20f#frag", 1, 2, {{"Content-Length", "5"}, {"Host", "h"}}},
    {RAW("GET http://example.com:8080/x?y HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"), "GET",
     "http://example.com:8080/x?y", 1, 1, {{"Host", "example.com:8080"}}},
    {RAW("GET HTTPS://example.com HTTP/1.1\r\n\r\n"), "GET", "HTTPS://example.com", 1, 0, {{0}}},
    {RAW("GET http://[::1]:80?q HTTP/1.1\r\n\r\n"), "GET", "http://[::1]:80?q", 1, 0, {{0}}},
    {RAW("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), "CONNECT",
     "example.com:443", 1, 1, {{"Host", "example.com:443"}}},
    {RAW("CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n\r\n"), "CONNECT", "[2001:db8::1]:8443", 1, 0,
     {{0}}},
    {RAW("CONNECT 10.0.0.1:1 HTTP/1.1\r\n\r\n"), "CONNECT", "10.0.0.1:1", 1, 0, {{0}}},
    {RAW("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), "OPTIONS", "*", 1, 1, {{"Host", "h"}}},
    {RAW("OPTIONS /x HTTP/1.1\r\n\r\n"), "OPTIONS", "/x", 1, 0, {{0}}},
    {RAW("PATCH /\xc3\xa9t\xc3\xa9 HTTP/1.1\r\n\r\n"), "PATCH", "/\xc3\xa9t\xc3\xa9", 1, 0, {{0}}},
    {RAW("!#$%&'*+-.^_`|~09azAZ /~!$&'()*+,;=:@[]{}\"\\^` HTTP/1.1\r\n\r\n"),
     "!#$%&'*+-.^_`|~09azAZ", "/~!$&'()*+,;=:@[]{}\"\\^`", 1, 0, {{0}}},
    {RAW("get / HTTP/1.1\r\n\r\n"), "get", "/", 1, 0, {{0}}},
    /* a lone LF ends any head line (RFC 9112 §2.2, as nginx), mixed freely with CRLF */
    {RAW("GET / HTTP/1.0\nHost: localhost\n\n"), "GET", "/", 0, 1, {{"Host", "localhost"}}},
    {RAW("GET / HTTP/1.1\n\n"), "GET", "/", 1, 0, {{0}}},
    {RAW("GET / HTTP/1.1\nHost: a\r\n\r\n"), "GET", "/", 1, 1, {{"Host", "a"}}},
    {RAW("GET / HTTP/1.1\r\nHost: a\n\r\n"), "GET", "/", 1, 1, {{"Host", "a"}}},
    {RAW("GET / HTTP/1.1\r\nHost: a\r\n\n"), "GET", "/", 1, 1, {{"Host", "a"}}},
    {RAW("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"), "GET", "/", 1, 2,
     {{"Host", "a"}, {"X", "b"}}},
    {RAW("GET / HTTP/1.1\n\r\n"), "GET", "/", 1, 0, {{0}}},
    {RAW("GET / HTTP/1.1\r\n\n"), "GET", "/", 1, 0, {{0}}},
    {RAW("\nGET / HTTP/1.1\r\n\r\n"), "GET", "/", 1, 0, {{0}}},
    {RAW("\r\n\nGET / HTTP/1.1\n\n"), "GET", "/", 1, 0, {{0}}},
    {RAW("\n\r\n\n\r\n\n\r\n\n\r\nGET / HTTP/1.1\n\n"), "GET", "/", 1, 0, {{0}}},
    {RAW("POST /p?q HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\n\n"), "POST", "/p?q", 1, 2,
     {{"Host", "h"}, {"Transfer-Encoding", "chunked"}}},
    {RAW("GET / HTTP/1.9\n\n"), "GET", "/", 1, 0, {{0}}},
    {RAW("GET / HTTP/1.1\nA:b\nB:  \t c  d \t \nC:\nD: \t \n\n"), "GET", "/", 1, 4,
     {{"A", "b"}, {"B", "c  d"}, {"C", ""}, {"D", ""}}},
    /* OWS handling: leading and trailing SP/HTAB trimmed, inner kept */
    {RAW("GET / HTTP/1.1\r\nA:b\r\nB:  \t c  d \t \r\nC:\r\nD: \t \r\n\r\n"), "GET", "/", 1, 4,
     {{"A", "b"}, {"B", "c  d"}, {"C", ""}, {"D", ""}}},
    /* obs-text and every VCHAR in a value */
    {RAW("GET / HTTP/1.1\r\nX-Bin: \x80\xff !\"#~\x7e\r\n\r\n"), "GET", "/", 1, 1,
     {{"X-Bin", "\x80\xff !\"#~\x7e"}}},
    {RAW("GET / HTTP/1.1\r\nx:y\r\nSEC-websocket-KEY: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         "a:1\r\nb:2\r\nc:3\r\nd:4\r\ne:5\r\nf:6\r\n\r\n"),
     "GET",
     "/",
     1,
     8,
     {{"x", "y"},
      {"SEC-websocket-KEY", "dGhlIHNhbXBsZSBub25jZQ=="},
      {"a", "1"},
      {"b", "2"},
      {"c", "3"},
      {"d", "4"},
      {"e", "5"},
      {"f", "6"}}},
};
/* clang-format on */

/* Where the request line ends (after its LF), skipping leading empty lines. */
static size_t req_line_end(const char *raw, size_t len)
{
    size_t i = 0;
    for (;;) {
        if (i < len && raw[i] == '\n')
            i++;
        else if (i + 1 < len && raw[i] == '\r' && raw[i + 1] == '\n')
            i += 2;
        else
            break;
    }
    for (; i < len; i++)
        if (raw[i] == '\n')
            return i + 1;
    return len;
}

/* Copy of raw[0..len) with every LF not preceded by CR turned into CRLF:
 * the canonical form of a head, which must parse to the same fields. */
static char *to_crlf(const char *raw, size_t len, size_t *out_len)
{
    char *o = malloc(2 * len + 1);
    assert_non_null(o);
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r'))
            o[j++] = '\r';
        o[j++] = raw[i];
    }
    *out_len = j;
    return o;
}

static void check_req_fields(const struct req_vec *v, const struct h1_request *req, size_t idx)
{
    if (!slice_is(req->method, v->method) || !slice_is(req->target, v->target) ||
        req->minor_version != v->minor || req->nheaders != v->nh || req->line_done != 1)
        fail_msg("vector %zu (%s): fields differ (method %s, minor %d, nh %zu)", idx,
                 esc(v->raw, v->len), esc(req->method.p, req->method.len), req->minor_version,
                 req->nheaders);
    for (size_t i = 0; i < v->nh; i++)
        if (!slice_is(req->headers[i].name, v->h[i].name) ||
            !slice_is(req->headers[i].value, v->h[i].value))
            fail_msg("vector %zu header %zu: got [%s]=[%s]", idx, i,
                     esc(req->headers[i].name.p, req->headers[i].name.len),
                     esc(req->headers[i].value.p, req->headers[i].value.len));
}

static void test_request_valid(void **state)
{
    (void)state;
    for (size_t idx = 0; idx < sizeof(req_valid) / sizeof(req_valid[0]); idx++) {
        const struct req_vec *v = &req_valid[idx];
        size_t line_end = req_line_end(v->raw, v->len);

        for (size_t k = 0; k <= v->len; k++) {
            char *buf = dup_exact(v->raw, k);
            struct h1_header hs[MAXH];
            struct h1_request req = {.headers = hs, .nheaders = MAXH};
            enum h1_error err;
            ssize_t r = h1_parse_request(buf, k, &req, &err);
            if (k < v->len) {
                if (r != -2)
                    fail_msg("vector %zu (%s): prefix %zu gave %zd (%s)", idx, esc(v->raw, v->len),
                             k, r, h1_error_str(err));
                assert_int_equal(req.nheaders, MAXH); /* untouched on -2 */
                assert_int_equal(req.line_done, k >= line_end);
                if (req.line_done) {
                    assert_true(slice_is(req.method, v->method));
                    assert_true(slice_is(req.target, v->target));
                }
            } else {
                if (r != (ssize_t)v->len)
                    fail_msg("vector %zu (%s): gave %zd (%s)", idx, esc(v->raw, v->len), r,
                             h1_error_str(err));
                assert_int_equal(err, H1_E_NONE);
                check_req_fields(v, &req, idx);
            }
            free(buf);
        }

        /* The same head with CRLF everywhere means exactly the same. */
        size_t clen;
        char *canon = to_crlf(v->raw, v->len, &clen);
        {
            struct h1_header hs[MAXH];
            struct h1_request req = {.headers = hs, .nheaders = MAXH};
            enum h1_error err;
            if (h1_parse_request(canon, clen, &req, &err) != (ssize_t)clen)
                fail_msg("vector %zu: CRLF form (%s) rejected: %s", idx, esc(canon, clen),
                         h1_error_str(err));
            check_req_fields(v, &req, idx);
        }
        free(canon);

        /* Bytes after the head (a body, a pipelined request) are not part of it. */
        char tail[512];
        assert_true(v->len + 9 <= sizeof(tail));
        memcpy(tail, v->raw, v->len);
        memcpy(tail + v->len, "GET / HTT", 9);
        struct h1_header hs[MAXH];
        struct h1_request req = {.headers = hs, .nheaders = MAXH};
        enum h1_error err;
        assert_int_equal(h1_parse_request(tail, v->len + 9, &req, &err), (ssize_t)v->len);
        check_req_fields(v, &req, idx);
    }
}

struct bad_vec {
    const char *raw;
    size_t len;
    enum h1_error err;
};

/* clang-format off */
static const struct bad_vec req_invalid[] = {
    /* line endings: a CR not followed by LF, wherever it is (a lone LF is fine) */
    {RAW("GET / HTTP/1.1\rHost: a\r\n\r\n"), H1_E_BAD_LINE_END},
    {RAW("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n"), H1_E_BAD_LINE_END},
    {RAW("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"), H1_E_BAD_LINE_END},
    {RAW("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n"), H1_E_BAD_LINE_END},
    {RAW("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n"), H1_E_BAD_LINE_END},
    {RAW("GET / HTTP/1.1\r\nHost: a\r\n\rX"), H1_E_BAD_LINE_END},
    {RAW("\r\rGET / HTTP/1.1\r\n\r\n"), H1_E_BAD_LINE_END},
    {RAW("\rGET / HTTP/1.1\r\n\r\n"), H1_E_BAD_LINE_END},
    {RAW("\n\rGET / HTTP/1.1\n\n"), H1_E_BAD_LINE_END},
    {RAW("GET / HTTP/1.1\rX: a\n\n"), H1_E_BAD_LINE_END},
    {RAW("GET / HTTP/1.1\n\rX: a\n\n"), H1_E_BAD_LINE_END},
    {RAW("GET / HTTP/1.1\nHost: a\rX: b\n\n"), H1_E_BAD_LINE_END},
    {RAW("GET / HTTP/1.1\nHost: a\r\r\n\n"), H1_E_BAD_LINE_END},
    {RAW("GET / HTTP/1.1\nHost: a\n\r\r"), H1_E_BAD_LINE_END},
    {RAW("GET / HTTP/1.1\nHost: a\n\rX"), H1_E_BAD_LINE_END},
    {RAW("GET / HTTP/1.1\nX: a\r \n\n"), H1_E_BAD_LINE_END},
    {RAW("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n"), H1_E_BAD_METHOD},
    {RAW("\n\n\n\n\n\n\n\n\nGET / HTTP/1.1\n\n"), H1_E_BAD_METHOD},
    {RAW("\n\r\n\n\r\n\n\r\n\n\r\n\nGET / HTTP/1.1\r\n\r\n"), H1_E_BAD_METHOD},
    /* everything else stays refused when lines end in a lone LF */
    {RAW("GET / HTTP/1.1\nX: a\n b\n\n"), H1_E_OBS_FOLD},
    {RAW("GET / HTTP/1.1\nX: a\n\tb\n\n"), H1_E_OBS_FOLD},
    {RAW("GET / HTTP/1.1\n Host: a\n\n"), H1_E_OBS_FOLD},
    {RAW("GET / HTTP/1.1\nHost: a\n \n\n"), H1_E_OBS_FOLD},
    {RAW("GET / HTTP/1.1\nHost : a\n\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\nTransfer-Encoding\t: chunked\n\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\nHost\n\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\n: a\n\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\nX: a\0\n\n"), H1_E_BAD_HEADER_VALUE},
    {RAW("GET / HTTP/1.1\nX: a\x0b\n\n"), H1_E_BAD_HEADER_VALUE},
    {RAW("GET /\n\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/1.10\n\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/1.1 \n\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/1.\n\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/2.0\n\n"), H1_E_VERSION_NOT_SUPP},
    {RAW("GET\n\n"), H1_E_BAD_METHOD},
    {RAW("GET /a\nb HTTP/1.1\n\n"), H1_E_BAD_VERSION},
    /* obs-fold and whitespace at line start */
    {RAW("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"), H1_E_OBS_FOLD},
    {RAW("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n"), H1_E_OBS_FOLD},
    {RAW("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), H1_E_OBS_FOLD},
    {RAW("GET / HTTP/1.1\r\nHost: a\r\n \r\n\r\n"), H1_E_OBS_FOLD},
    /* header names */
    {RAW("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\r\nTransfer-Encoding\t:chunked\r\n\r\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\r\n: a\r\n\r\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\r\nHo st: a\r\n\r\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\r\nHost\r\n\r\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\r\nHost\n\r\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\r\nH@st: a\r\n\r\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\r\nH(o)st: a\r\n\r\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\r\nHo\xc3\x9ft: a\r\n\r\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\r\nH\0st: a\r\n\r\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\r\nX\x7f: a\r\n\r\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\r\n\x01X: a\r\n\r\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\r\n\"X\": a\r\n\r\n"), H1_E_BAD_HEADER_NAME},
    /* header values */
    {RAW("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"), H1_E_BAD_HEADER_VALUE},
    {RAW("GET / HTTP/1.1\r\nX: \0\r\n\r\n"), H1_E_BAD_HEADER_VALUE},
    {RAW("GET / HTTP/1.1\r\nX: a\x01\r\n\r\n"), H1_E_BAD_HEADER_VALUE},
    {RAW("GET / HTTP/1.1\r\nX: a\x1b[0m\r\n\r\n"), H1_E_BAD_HEADER_VALUE},
    {RAW("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n"), H1_E_BAD_HEADER_VALUE},
    {RAW("GET / HTTP/1.1\r\nX: a\x0b\r\n\r\n"), H1_E_BAD_HEADER_VALUE},
    {RAW("GET / HTTP/1.1\r\nContent-Length: \x00" "5\r\n\r\n"), H1_E_BAD_HEADER_VALUE},
    /* methods */
    {RAW(" / HTTP/1.1\r\n\r\n"), H1_E_BAD_METHOD},
    {RAW("G(T / HTTP/1.1\r\n\r\n"), H1_E_BAD_METHOD},
    {RAW("GET\t/ HTTP/1.1\r\n\r\n"), H1_E_BAD_METHOD},
    {RAW("GE\0T / HTTP/1.1\r\n\r\n"), H1_E_BAD_METHOD},
    {RAW("GET\r\n\r\n"), H1_E_BAD_METHOD},
    {RAW("GET\n"), H1_E_BAD_METHOD},
    {RAW("G\xc3\x89T / HTTP/1.1\r\n\r\n"), H1_E_BAD_METHOD},
    {RAW("GET:/ HTTP/1.1\r\n\r\n"), H1_E_BAD_METHOD},
    {RAW("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), H1_E_BAD_METHOD}, /* TLS hello */
    /* targets */
    {RAW("GET  / HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET  HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET /a\x7f" "b HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET /a\x01 HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET /a\0 HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET /a\tb HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET / \tHTTP/1.1\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET * HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("OPTIONS *x HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("OPTIONS ** HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET example.com HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET example.com:80 HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET ?x HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET %2F HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET \\x HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET ftp://a/ HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET http: HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET http:/x HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET http:// HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET http:///x HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET http://u:p@h/ HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET http://h:99999/ HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("GET http://[::1/ HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("CONNECT / HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("CONNECT * HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("CONNECT example.com HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("CONNECT example.com: HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("CONNECT example.com:x HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("CONNECT :443 HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("CONNECT http://a:1/ HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("CONNECT u@a:443 HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("CONNECT a:443/ HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), H1_E_BAD_TARGET},
    {RAW("M-SEARCH * HTTP/1.1\r\n\r\n"), H1_E_BAD_TARGET},
    /* versions */
    {RAW("GET /\r\n"), H1_E_BAD_VERSION},
    {RAW("GET /\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET /\n"), H1_E_BAD_VERSION},
    {RAW("GET / \r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/0.9\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/0.1\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET / http/1.1\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/1.1 \r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/1.1\t\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/11\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/1.10\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/1.\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/1\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/2\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/2.0x\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/2.0 \r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/a.b\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/1.1 HTTP/1.1\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET / / HTTP/1.1\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/2.0\r\n\r\n"), H1_E_VERSION_NOT_SUPP},
    {RAW("GET / HTTP/3.0\r\n\r\n"), H1_E_VERSION_NOT_SUPP},
    {RAW("GET / HTTP/9.9\r\n\r\n"), H1_E_VERSION_NOT_SUPP},
    {RAW("GET / HTTP/1.1\r\r\n"), H1_E_BAD_LINE_END},
};
/* clang-format on */

/*
 * Invalid heads cut right after the offending byte: the prefix before it must
 * still be -2, and the byte itself must be rejected (no waiting for more).
 */
/* clang-format off */
static const struct bad_vec req_early[] = {
    {RAW("\n"), H1_E_NONE},
    {RAW("\r\n\n\r"), H1_E_NONE},
    {RAW("\r\r"), H1_E_BAD_LINE_END},
    {RAW("\n\r\r"), H1_E_BAD_LINE_END},
    {RAW("\n\n\n\n\n\n\n\n\n"), H1_E_BAD_METHOD},
    {RAW(" "), H1_E_BAD_METHOD},
    {RAW("G@"), H1_E_BAD_METHOD},
    {RAW("GET\r"), H1_E_BAD_METHOD},
    {RAW("GET\n"), H1_E_BAD_METHOD},
    {RAW("GET \x01"), H1_E_BAD_TARGET},
    {RAW("GET  "), H1_E_BAD_TARGET},
    {RAW("GET x"), H1_E_BAD_TARGET},
    {RAW("GET httpx"), H1_E_BAD_TARGET},
    {RAW("GET https:x"), H1_E_BAD_TARGET},
    {RAW("GET f"), H1_E_BAD_TARGET},
    /* still-valid prefixes (H1_E_NONE: must be -2) */
    {RAW("GET h"), H1_E_NONE},
    {RAW("GET HTTPS:/"), H1_E_NONE},
    {RAW("CONNECT a"), H1_E_NONE},
    {RAW("OPTIONS *"), H1_E_NONE},
    {RAW("GET *"), H1_E_BAD_TARGET},
    {RAW("GET ?"), H1_E_BAD_TARGET},
    {RAW("CONNECT \x7f"), H1_E_BAD_TARGET},
    {RAW("GET /a\x7f"), H1_E_BAD_TARGET},
    {RAW("GET /\r"), H1_E_BAD_VERSION},
    {RAW("GET /\n"), H1_E_BAD_VERSION},
    {RAW("GET / h"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/0"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/1,"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/1.x"), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/1.1 "), H1_E_BAD_VERSION},
    {RAW("GET / HTTP/1.1\n"), H1_E_NONE},
    {RAW("GET / HTTP/1.1\r"), H1_E_NONE},
    {RAW("GET / HTTP/1.1\rX"), H1_E_BAD_LINE_END},
    {RAW("GET / HTTP/1.1\r\r"), H1_E_BAD_LINE_END},
    {RAW("GET / HTTP/2.0\r"), H1_E_VERSION_NOT_SUPP},
    {RAW("GET / HTTP/2.0\n"), H1_E_VERSION_NOT_SUPP},
    {RAW("GET / HTTP/1.1\n "), H1_E_OBS_FOLD},
    {RAW("GET / HTTP/1.1\nX: a\n\t"), H1_E_OBS_FOLD},
    {RAW("GET / HTTP/1.1\nHost "), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\nHost\n"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\nX: a\rb"), H1_E_BAD_LINE_END},
    {RAW("GET / HTTP/1.1\n\rX"), H1_E_BAD_LINE_END},
    {RAW("GET / HTTP/1.1\nX: a\n\r\r"), H1_E_BAD_LINE_END},
    {RAW("GET / HTTP/1.1\r\n "), H1_E_OBS_FOLD},
    {RAW("GET / HTTP/1.1\r\n\t"), H1_E_OBS_FOLD},
    {RAW("GET / HTTP/1.1\r\nHost "), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\r\n:"), H1_E_BAD_HEADER_NAME},
    {RAW("GET / HTTP/1.1\r\nX: a\0"), H1_E_BAD_HEADER_VALUE},
    {RAW("GET / HTTP/1.1\r\nX:\x01"), H1_E_BAD_HEADER_VALUE},
    {RAW("GET / HTTP/1.1\r\nX: a\rb"), H1_E_BAD_LINE_END},
    {RAW("GET / HTTP/1.1\r\nX: a\n"), H1_E_NONE},
    {RAW("GET / HTTP/1.1\r\nX: a\n\r"), H1_E_NONE},
    {RAW("GET / HTTP/1.1\r\n\rX"), H1_E_BAD_LINE_END},
};
/* clang-format on */

/* Check that prefixes only ever go -2 ... -2, -1 ... -1 and never succeed. */
static void check_req_monotonic(const char *raw, size_t len, size_t idx)
{
    int rejected = 0;
    for (size_t k = 0; k <= len; k++) {
        char *buf = dup_exact(raw, k);
        struct h1_header hs[MAXH];
        struct h1_request req = {.headers = hs, .nheaders = MAXH};
        enum h1_error err;
        ssize_t r = h1_parse_request(buf, k, &req, &err);
        free(buf);
        if (r >= 0 || (rejected && r != -1))
            fail_msg("vector %zu (%s): prefix %zu gave %zd", idx, esc(raw, len), k, r);
        if (r == -1)
            rejected = 1;
    }
}

static void test_request_invalid(void **state)
{
    (void)state;
    for (size_t idx = 0; idx < sizeof(req_invalid) / sizeof(req_invalid[0]); idx++) {
        const struct bad_vec *v = &req_invalid[idx];
        char *buf = dup_exact(v->raw, v->len);
        struct h1_header hs[MAXH];
        struct h1_request req = {.headers = hs, .nheaders = MAXH};
        enum h1_error err = H1_E_NONE;
        ssize_t r = h1_parse_request(buf, v->len, &req, &err);
        if (r != -1 || err != v->err)
            fail_msg("vector %zu (%s): gave %zd / %s, want %s", idx, esc(v->raw, v->len), r,
                     h1_error_str(err), h1_error_str(v->err));
        assert_int_equal(req.nheaders, MAXH);
        free(buf);
        check_req_monotonic(v->raw, v->len, idx);
    }
}

static void test_request_early_reject(void **state)
{
    (void)state;
    for (size_t idx = 0; idx < sizeof(req_early) / sizeof(req_early[0]); idx++) {
        const struct bad_vec *v = &req_early[idx];
        struct h1_header hs[MAXH];
        struct h1_request req = {.headers = hs, .nheaders = MAXH};
        enum h1_error err;
        char *buf = dup_exact(v->raw, v->len);
        ssize_t before = h1_parse_request(buf, v->len - 1, &req, &err);
        ssize_t at = h1_parse_request(buf, v->len, &req, &err);
        free(buf);
        if (v->err == H1_E_NONE) {
            /* a still-valid prefix, listed to pin down what must NOT fail */
            if (at != -2)
                fail_msg("early %zu (%s): gave %zd", idx, esc(v->raw, v->len), at);
            continue;
        }
        if (before != -2 || at != -1 || err != v->err)
            fail_msg("early %zu (%s): before %zd, at %zd / %s, want %s", idx, esc(v->raw, v->len),
                     before, at, h1_error_str(err), h1_error_str(v->err));
    }
}

/* Up to 8 empty lines, CRLF (style 0), LF (1) or alternating (2), may
 * precede the request line; a 9th is refused. */
static void test_request_leading_empty_lines(void **state)
{
    (void)state;
    char buf[64];
    for (int style = 0; style < 3; style++) {
        for (int n = 0; n <= 10; n++) {
            size_t len = 0;
            for (int i = 0; i < n; i++) {
                if (style == 0 || (style == 2 && i % 2))
                    buf[len++] = '\r';
                buf[len++] = '\n';
            }
            size_t lead = len;
            memcpy(buf + len, "GET / HTTP/1.1\r\n\r\n", 18);
            len += 18;
            struct h1_request req = {.headers = NULL, .nheaders = 0};
            enum h1_error err;
            ssize_t r = h1_parse_request(buf, len, &req, &err);
            if (n <= 8) {
                assert_int_equal(r, (ssize_t)len); /* they count in the result */
                assert_true(slice_is(req.method, "GET"));
                assert_ptr_equal(req.method.p, buf + lead);
            } else {
                assert_int_equal(r, -1);
                assert_int_equal(err, H1_E_BAD_METHOD);
            }
        }
    }
}

static void test_request_capacity(void **state)
{
    (void)state;
    static const char raw[] = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    size_t len = sizeof(raw) - 1;
    struct h1_header hs[4];
    enum h1_error err;

    struct h1_request req = {.headers = hs, .nheaders = 3};
    assert_int_equal(h1_parse_request(raw, len, &req, &err), (ssize_t)len);
    assert_int_equal(req.nheaders, 3);
    assert_true(slice_is(hs[2].name, "C") && slice_is(hs[2].value, "3"));

    for (size_t cap = 0; cap < 3; cap++) {
        req = (struct h1_request){.headers = cap ? hs : NULL, .nheaders = cap};
        assert_int_equal(h1_parse_request(raw, len, &req, &err), -1);
        assert_int_equal(err, H1_E_TOO_MANY_HEADERS);
        assert_int_equal(req.line_done, 1);
        assert_int_equal(req.nheaders, cap);
    }

    /* no headers at all fits a zero capacity */
    req = (struct h1_request){.headers = NULL, .nheaders = 0};
    assert_int_equal(h1_parse_request(RAW("GET / HTTP/1.1\r\n\r\n"), &req, &err), 18);
    assert_int_equal(req.nheaders, 0);
}

/* line_done distinguishes "request line too long" from "headers too large". */
static void test_request_line_done(void **state)
{
    (void)state;
    struct h1_header hs[2];
    enum h1_error err;
    struct h1_request req = {.headers = hs, .nheaders = 2};

    assert_int_equal(h1_parse_request(RAW("GET /very/long/uri"), &req, &err), -2);
    assert_int_equal(req.line_done, 0);
    assert_int_equal(h1_parse_request(RAW("GET / HTTP/1.1\r"), &req, &err), -2);
    assert_int_equal(req.line_done, 0);
    assert_int_equal(h1_parse_request(RAW("GET /x HTTP/1.0\r\nHost: a\r\nX-Big: aaaa"), &req, &err),
                     -2);
    assert_int_equal(req.line_done, 1);
    assert_true(slice_is(req.target, "/x"));
    assert_int_equal(req.minor_version, 0);
    assert_int_equal(h1_parse_request(RAW("GET / HTTP/1.1\r\nX : a\r\n\r\n"), &req, &err), -1);
    assert_int_equal(req.line_done, 1);
    assert_int_equal(h1_parse_request(RAW("GET / HTTP/1.x\r\n\r\n"), &req, &err), -1);
    assert_int_equal(req.line_done, 0);
    /* a lone LF completes the line as CRLF does */
    assert_int_equal(h1_parse_request(RAW("GET / HTTP/1.1"), &req, &err), -2);
    assert_int_equal(req.line_done, 0);
    assert_int_equal(h1_parse_request(RAW("GET /y HTTP/1.1\nX-Big: aaaa"), &req, &err), -2);
    assert_int_equal(req.line_done, 1);
    assert_true(slice_is(req.target, "/y"));
    assert_int_equal(req.minor_version, 1);
}

/* RFC 9110 §2.5: HTTP/1.2..1.9 are processed as HTTP/1.1. */
static void test_request_higher_minor_is_11(void **state)
{
    (void)state;
    struct h1_header hs[2];
    enum h1_error err;
    struct h1_request req = {.headers = hs, .nheaders = 2};
    assert_int_equal(h1_parse_request(RAW("GET / HTTP/1.9\r\n\r\n"), &req, &err), 18);
    assert_int_equal(req.minor_version, 1);
}

/* ------------------------------------------------------------------------
 * Responses
 * ------------------------------------------------------------------------ */

struct resp_vec {
    const char *raw;
    size_t len;
    int minor, status;
    const char *reason;
    size_t nh;
    struct hdr_exp h[MAXH];
};

/* clang-format off */
static const struct resp_vec resp_valid[] = {
    {RAW("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), 1, 200, "OK", 1,
     {{"Content-Length", "5"}}},
    {RAW("HTTP/1.0 404 Not Found\r\n\r\n"), 0, 404, "Not Found", 0, {{0}}},
    {RAW("HTTP/1.1 200\r\n\r\n"), 1, 200, "", 0, {{0}}},
    {RAW("HTTP/1.1 204 \r\n\r\n"), 1, 204, "", 0, {{0}}},
    {RAW("HTTP/1.1 999 what\tever \xff\x80 \r\n\r\n"), 1, 999, "what\tever \xff\x80 ", 0, {{0}}},
    {RAW("HTTP/1.1 100 Continue\r\n\r\n"), 1, 100, "Continue", 0, {{0}}},
    {RAW("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
     1,
     101,
     "Switching Protocols",
     3,
     {{"Upgrade", "websocket"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}}},
    {RAW("HTTP/1.1 302 Found\r\nLocation: /x\r\nSet-Cookie: a=b\r\nSet-Cookie: c=d\r\n\r\n"), 1,
     302, "Found", 3, {{"Location", "/x"}, {"Set-Cookie", "a=b"}, {"Set-Cookie", "c=d"}}},
    /* a lone LF ends status and header lines too (nginx: ngx_http_parse_status_line) */
    {RAW("HTTP/1.1 200 OK\nContent-Length: 5\n\n"), 1, 200, "OK", 1, {{"Content-Length", "5"}}},
    {RAW("HTTP/1.1 200\n\n"), 1, 200, "", 0, {{0}}},
    {RAW("HTTP/1.1 204 \n\n"), 1, 204, "", 0, {{0}}},
    {RAW("HTTP/1.0 404 Not Found\n\r\n"), 0, 404, "Not Found", 0, {{0}}},
    {RAW("HTTP/1.1 200 OK\r\nX: y\nZ:  w \r\n\n"), 1, 200, "OK", 2, {{"X", "y"}, {"Z", "w"}}},
    {RAW("HTTP/1.1 200 OK\r\nX: y\r\n\n"), 1, 200, "OK", 1, {{"X", "y"}}},
};
/* clang-format on */

/* clang-format off */
static const struct bad_vec resp_invalid[] = {
    {RAW("HTTP/1.1 20 OK\r\n\r\n"), H1_E_BAD_STATUS},
    {RAW("HTTP/1.1 2000 OK\r\n\r\n"), H1_E_BAD_STATUS},
    {RAW("HTTP/1.1 099 x\r\n\r\n"), H1_E_BAD_STATUS},
    {RAW("HTTP/1.1 000\r\n\r\n"), H1_E_BAD_STATUS},
    {RAW("HTTP/1.1 abc\r\n\r\n"), H1_E_BAD_STATUS},
    {RAW("HTTP/1.1 -20 x\r\n\r\n"), H1_E_BAD_STATUS},
    {RAW("HTTP/1.1  200 OK\r\n\r\n"), H1_E_BAD_STATUS},
    {RAW("HTTP/1.1 200\tOK\r\n\r\n"), H1_E_BAD_STATUS},
    {RAW("HTTP/1.1 200 O\x01K\r\n\r\n"), H1_E_BAD_STATUS},
    {RAW("HTTP/1.1 200 O\0K\r\n\r\n"), H1_E_BAD_STATUS},
    {RAW("HTTP/1.1 200 OK\x7f\r\n\r\n"), H1_E_BAD_STATUS},
    {RAW("HTTP/1.1 \r\n\r\n"), H1_E_BAD_STATUS},
    {RAW("HTTP/1.1 200 OK\rX: y\r\n\r\n"), H1_E_BAD_LINE_END},
    {RAW("HTTP/1.1 200 OK\r\r\n\r\n"), H1_E_BAD_LINE_END},
    {RAW("HTTP/1.1 200\r\r\n\n"), H1_E_BAD_LINE_END},
    {RAW("HTTP/1.1 200 OK\nX: y\rZ: w\n\n"), H1_E_BAD_LINE_END},
    {RAW("HTTP/1.1 200 OK\nX: y\n\rX"), H1_E_BAD_LINE_END},
    {RAW("HTTP/1.1 200 OK\nX: y\n z\n\n"), H1_E_OBS_FOLD},
    {RAW("HTTP/1.1 200 OK\nX : y\n\n"), H1_E_BAD_HEADER_NAME},
    {RAW("HTTP/1.1 20\n\n"), H1_E_BAD_STATUS},
    {RAW("HTTP/1.1\n\n"), H1_E_BAD_VERSION},
    {RAW("\nHTTP/1.1 200 OK\n\n"), H1_E_BAD_VERSION},
    {RAW("HTTP/0.9 200 OK\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("http/1.1 200 OK\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("\r\nHTTP/1.1 200 OK\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("HTTP/1.1\t200 OK\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("HTTP/1.1\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("HTTP/1.10 200 OK\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("ICY 200 OK\r\n\r\n"), H1_E_BAD_VERSION},
    {RAW("HTTP/2.0 200 OK\r\n\r\n"), H1_E_VERSION_NOT_SUPP},
    {RAW("HTTP/1.1 200 OK\r\nX : y\r\n\r\n"), H1_E_BAD_HEADER_NAME},
    {RAW("HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n"), H1_E_OBS_FOLD},
    {RAW("HTTP/1.1 200 OK\r\nX: y\0\r\n\r\n"), H1_E_BAD_HEADER_VALUE},
    {RAW("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length\0: 2\r\n\r\n"),
     H1_E_BAD_HEADER_NAME},
};
/* clang-format on */

/* Every split point of each vector, and of its CRLF form (same fields). */
static void test_response_valid(void **state)
{
    (void)state;
    for (size_t idx = 0; idx < sizeof(resp_valid) / sizeof(resp_valid[0]); idx++) {
        const struct resp_vec *v = &resp_valid[idx];
        for (int form = 0; form < 2; form++) {
            size_t len = v->len;
            char *raw = form ? to_crlf(v->raw, v->len, &len) : dup_exact(v->raw, v->len);
            for (size_t k = 0; k <= len; k++) {
                char *buf = dup_exact(raw, k);
                struct h1_header hs[MAXH];
                struct h1_response resp = {.headers = hs, .nheaders = MAXH};
                enum h1_error err;
                ssize_t r = h1_parse_response(buf, k, &resp, &err);
                if (k < len) {
                    if (r != -2)
                        fail_msg("resp %zu/%d: prefix %zu gave %zd (%s)", idx, form, k, r,
                                 h1_error_str(err));
                    assert_int_equal(resp.nheaders, MAXH);
                } else {
                    if (r != (ssize_t)len)
                        fail_msg("resp %zu (%s): gave %zd (%s)", idx, esc(raw, len), r,
                                 h1_error_str(err));
                    assert_int_equal(resp.minor_version, v->minor);
                    assert_int_equal(resp.status, v->status);
                    assert_true(slice_is(resp.reason, v->reason));
                    assert_int_equal(resp.nheaders, v->nh);
                    for (size_t i = 0; i < v->nh; i++) {
                        assert_true(slice_is(hs[i].name, v->h[i].name));
                        assert_true(slice_is(hs[i].value, v->h[i].value));
                    }
                }
                free(buf);
            }
            free(raw);
        }
    }
}

static void test_response_invalid(void **state)
{
    (void)state;
    for (size_t idx = 0; idx < sizeof(resp_invalid) / sizeof(resp_invalid[0]); idx++) {
        const struct bad_vec *v = &resp_invalid[idx];
        int rejected = 0;
        for (size_t k = 0; k <= v->len; k++) {
            char *buf = dup_exact(v->raw, k);
            struct h1_header hs[MAXH];
            struct h1_response resp = {.headers = hs, .nheaders = MAXH};
            enum h1_error err = H1_E_NONE;
            ssize_t r = h1_parse_response(buf, k, &resp, &err);
            free(buf);
            if (r >= 0 || (rejected && r != -1))
                fail_msg("resp %zu (%s): prefix %zu gave %zd", idx, esc(v->raw, v->len), k, r);
            rejected |= r == -1;
            if (k == v->len && err != v->err)
                fail_msg("resp %zu (%s): %s, want %s", idx, esc(v->raw, v->len), h1_error_str(err),
                         h1_error_str(v->err));
        }
        assert_true(rejected);
    }
}

static void test_response_capacity(void **state)
{
    (void)state;
    struct h1_header hs[1];
    struct h1_response resp = {.headers = hs, .nheaders = 1};
    enum h1_error err;
    assert_int_equal(h1_parse_response(RAW("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n"), &resp, &err),
                     -1);
    assert_int_equal(err, H1_E_TOO_MANY_HEADERS);
}

/* ------------------------------------------------------------------------
 * Framing analysis
 * ------------------------------------------------------------------------ */

struct ana_vec {
    const char *fields; /* header lines, each ending in CRLF */
    int rc;
    enum h1_framing_error ferr;
    unsigned flags;
    uint64_t cl;
    const char *host, *upgrade;
};

#define F_CC H1_F_CHUNKED | H1_F_HAS_TE

/* clang-format off */
static const struct ana_vec ana_vecs[] = {
    {"", 0, H1_FE_NONE, 0, 0, NULL, NULL},
    {"Host: example.com\r\n", 0, H1_FE_NONE, H1_F_HAS_HOST, 0, "example.com", NULL},
    {"host: example.com:8080\r\n", 0, H1_FE_NONE, H1_F_HAS_HOST, 0, "example.com:8080", NULL},
    {"HOST: [::1]:443\r\n", 0, H1_FE_NONE, H1_F_HAS_HOST, 0, "[::1]:443", NULL},
    {"Host: [v7.a:b]\r\n", 0, H1_FE_NONE, H1_F_HAS_HOST, 0, "[v7.a:b]", NULL},
    {"Host: 127.0.0.1\r\n", 0, H1_FE_NONE, H1_F_HAS_HOST, 0, "127.0.0.1", NULL},
    {"Host: a-b_c~d.e%41\r\n", 0, H1_FE_NONE, H1_F_HAS_HOST, 0, "a-b_c~d.e%41", NULL},
    {"Host: h:\r\n", 0, H1_FE_NONE, H1_F_HAS_HOST, 0, "h:", NULL},
    {"Host:\r\n", 0, H1_FE_NONE, H1_F_HAS_HOST, 0, "", NULL},
    {"Host: a\r\nHost: b\r\n", -1, H1_FE_DUP_HOST, 0, 0, NULL, NULL},
    {"Host: a\r\nhost: a\r\n", -1, H1_FE_DUP_HOST, 0, 0, NULL, NULL},
    {"Host:\r\nHost:\r\n", -1, H1_FE_DUP_HOST, 0, 0, NULL, NULL},
    {"Host: a/b\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: u@a\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: a b\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: a, b\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: a\tb\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: a:99999\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: a:123456\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: a:8x\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: a:1:2\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: :80\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: [::1\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: []\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: [::1]x\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: [a/b]\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: a%2\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: a%zz\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: a\\b\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: a?b\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: a#b\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    {"Host: \xc3\xa9\r\n", -1, H1_FE_BAD_HOST, 0, 0, NULL, NULL},
    /* Content-Length */
    {"Content-Length: 0\r\n", 0, H1_FE_NONE, H1_F_HAS_CL, 0, NULL, NULL},
    {"content-length: 42\r\n", 0, H1_FE_NONE, H1_F_HAS_CL, 42, NULL, NULL},
    {"Content-Length: 007\r\n", 0, H1_FE_NONE, H1_F_HAS_CL, 7, NULL, NULL},
    {"Content-Length: 4611686018427387904\r\n", 0, H1_FE_NONE, H1_F_HAS_CL, 4611686018427387904ULL,
     NULL, NULL},
    {"Content-Length: 4611686018427387905\r\n", -1, H1_FE_BAD_CL, 0, 0, NULL, NULL},
    {"Content-Length: 18446744073709551616\r\n", -1, H1_FE_BAD_CL, 0, 0, NULL, NULL},
    {"Content-Length: 99999999999999999999999999\r\n", -1, H1_FE_BAD_CL, 0, 0, NULL, NULL},
    {"Content-Length: -1\r\n", -1, H1_FE_BAD_CL, 0, 0, NULL, NULL},
    {"Content-Length: +1\r\n", -1, H1_FE_BAD_CL, 0, 0, NULL, NULL},
    {"Content-Length: 1 2\r\n", -1, H1_FE_BAD_CL, 0, 0, NULL, NULL},
    {"Content-Length: 0x10\r\n", -1, H1_FE_BAD_CL, 0, 0, NULL, NULL},
    {"Content-Length: 1.0\r\n", -1, H1_FE_BAD_CL, 0, 0, NULL, NULL},
    {"Content-Length: 1e3\r\n", -1, H1_FE_BAD_CL, 0, 0, NULL, NULL},
    {"Content-Length:\r\n", -1, H1_FE_BAD_CL, 0, 0, NULL, NULL},
    {"Content-Length: \"5\"\r\n", -1, H1_FE_BAD_CL, 0, 0, NULL, NULL},
    {"Content-Length: 5, 5\r\n", -1, H1_FE_DUP_CL, 0, 0, NULL, NULL},
    {"Content-Length: 5,6\r\n", -1, H1_FE_DUP_CL, 0, 0, NULL, NULL},
    {"Content-Length: 5,\r\n", -1, H1_FE_DUP_CL, 0, 0, NULL, NULL},
    {"Content-Length: ,5\r\n", -1, H1_FE_DUP_CL, 0, 0, NULL, NULL},
    {"Content-Length: 5\r\nContent-Length: 5\r\n", -1, H1_FE_DUP_CL, 0, 0, NULL, NULL},
    {"Content-Length: 5\r\ncontent-length: 6\r\n", -1, H1_FE_DUP_CL, 0, 0, NULL, NULL},
    {"Content-Length: 5\r\nContent-Length: x\r\n", -1, H1_FE_DUP_CL, 0, 0, NULL, NULL},
    {"Content-Length2: 5\r\nX-Content-Length: 6\r\n", 0, H1_FE_NONE, 0, 0, NULL, NULL},
    /* Transfer-Encoding */
    {"Transfer-Encoding: chunked\r\n", 0, H1_FE_NONE, F_CC, 0, NULL, NULL},
    {"transfer-encoding: Chunked\r\n", 0, H1_FE_NONE, F_CC, 0, NULL, NULL},
    {"TRANSFER-ENCODING:  CHUNKED \t\r\n", 0, H1_FE_NONE, F_CC, 0, NULL, NULL},
    {"Transfer-Encoding: chunked, identity\r\n", -1, H1_FE_BAD_TE, 0, 0, NULL, NULL},
    {"Transfer-Encoding: identity\r\n", -1, H1_FE_BAD_TE, 0, 0, NULL, NULL},
    {"Transfer-Encoding: gzip, chunked\r\n", -1, H1_FE_BAD_TE, 0, 0, NULL, NULL},
    {"Transfer-Encoding: xchunked\r\n", -1, H1_FE_BAD_TE, 0, 0, NULL, NULL},
    {"Transfer-Encoding: chunkedx\r\n", -1, H1_FE_BAD_TE, 0, 0, NULL, NULL},
    {"Transfer-Encoding: chunked;x\r\n", -1, H1_FE_BAD_TE, 0, 0, NULL, NULL},
    {"Transfer-Encoding: chunked ;x=1\r\n", -1, H1_FE_BAD_TE, 0, 0, NULL, NULL},
    {"Transfer-Encoding: chunked,\r\n", -1, H1_FE_BAD_TE, 0, 0, NULL, NULL},
    {"Transfer-Encoding: ,chunked\r\n", -1, H1_FE_BAD_TE, 0, 0, NULL, NULL},
    {"Transfer-Encoding: chunked, chunked\r\n", -1, H1_FE_BAD_TE, 0, 0, NULL, NULL},
    {"Transfer-Encoding: \"chunked\"\r\n", -1, H1_FE_BAD_TE, 0, 0, NULL, NULL},
    {"Transfer-Encoding: chu nked\r\n", -1, H1_FE_BAD_TE, 0, 0, NULL, NULL},
    {"Transfer-Encoding:\r\n", -1, H1_FE_BAD_TE, 0, 0, NULL, NULL},
    {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", -1, H1_FE_BAD_TE, 0, 0, NULL,
     NULL},
    {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", -1, H1_FE_BAD_TE, 0, 0, NULL,
     NULL},
    {"Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n", -1, H1_FE_BAD_TE, 0, 0, NULL, NULL},
    /* both */
    {"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", -1, H1_FE_CL_AND_TE, 0, 0, NULL, NULL},
    {"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", -1, H1_FE_CL_AND_TE, 0, 0, NULL, NULL},
    {"Transfer-Encoding: chunked\r\nContent-Length: 0\r\nHost: a\r\n", -1, H1_FE_CL_AND_TE, 0, 0,
     NULL, NULL},
    /* Connection, Expect, Upgrade */
    {"Connection: close\r\n", 0, H1_FE_NONE, H1_F_CONN_CLOSE, 0, NULL, NULL},
    {"Connection: Keep-Alive\r\n", 0, H1_FE_NONE, H1_F_CONN_KEEPALIVE, 0, NULL, NULL},
    {"connection: UPGRADE\r\n", 0, H1_FE_NONE, H1_F_CONN_UPGRADE, 0, NULL, NULL},
    {"Connection: keep-alive, Upgrade\r\n", 0, H1_FE_NONE, H1_F_CONN_KEEPALIVE | H1_F_CONN_UPGRADE,
     0, NULL, NULL},
    {"Connection: foo,  close ,bar\r\n", 0, H1_FE_NONE, H1_F_CONN_CLOSE, 0, NULL, NULL},
    {"Connection: ,,close,,\r\n", 0, H1_FE_NONE, H1_F_CONN_CLOSE, 0, NULL, NULL},
    {"Connection: close\r\nConnection: upgrade\r\n", 0, H1_FE_NONE,
     H1_F_CONN_CLOSE | H1_F_CONN_UPGRADE, 0, NULL, NULL},
    {"Connection: closed, xclose, keep-alivex, upgrades\r\n", 0, H1_FE_NONE, 0, 0, NULL, NULL},
    {"Connection:\r\n", 0, H1_FE_NONE, 0, 0, NULL, NULL},
    {"Expect: 100-continue\r\n", 0, H1_FE_NONE, H1_F_EXPECT_CONTINUE, 0, NULL, NULL},
    {"expect: 100-Continue\r\n", 0, H1_FE_NONE, H1_F_EXPECT_CONTINUE, 0, NULL, NULL},
    {"Expect: 100-continuex\r\n", 0, H1_FE_NONE, 0, 0, NULL, NULL},
    {"Expect: 200-ok\r\n", 0, H1_FE_NONE, 0, 0, NULL, NULL},
    {"Upgrade: websocket\r\nConnection: Upgrade\r\n", 0, H1_FE_NONE,
     H1_F_HAS_UPGRADE | H1_F_CONN_UPGRADE, 0, NULL, "websocket"},
    {"upgrade: h2c, websocket\r\n", 0, H1_FE_NONE, H1_F_HAS_UPGRADE, 0, NULL, "h2c, websocket"},
    /* a realistic mix */
    {"Host: api.example.com\r\nUser-Agent: x\r\nContent-Length: 12\r\nConnection: keep-alive\r\n"
     "Expect: 100-continue\r\n",
     0, H1_FE_NONE, H1_F_HAS_HOST | H1_F_HAS_CL | H1_F_CONN_KEEPALIVE | H1_F_EXPECT_CONTINUE, 12,
     "api.example.com", NULL},
};
/* clang-format on */

static void test_analyze(void **state)
{
    (void)state;
    for (size_t idx = 0; idx < sizeof(ana_vecs) / sizeof(ana_vecs[0]); idx++) {
        const struct ana_vec *v = &ana_vecs[idx];
        char buf[1024];
        int len = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n%s\r\n", v->fields);
        assert_true(len > 0 && (size_t)len < sizeof(buf));
        struct h1_header hs[MAXH];
        struct h1_request req = {.headers = hs, .nheaders = MAXH};
        enum h1_error err;
        if (h1_parse_request(buf, (size_t)len, &req, &err) != len)
            fail_msg("analyze %zu: head did not parse: %s", idx, h1_error_str(err));

        struct h1_info info;
        enum h1_framing_error ferr;
        int rc = h1_analyze_headers(hs, req.nheaders, &info, &ferr);
        if (rc != v->rc || ferr != v->ferr)
            fail_msg("analyze %zu (%s): rc %d / %s, want %d / %s", idx, esc(buf, (size_t)len), rc,
                     h1_framing_error_str(ferr), v->rc, h1_framing_error_str(v->ferr));
        if (rc < 0)
            continue;
        if (info.flags != v->flags)
            fail_msg("analyze %zu (%s): flags %#x, want %#x", idx, esc(buf, (size_t)len),
                     info.flags, v->flags);
        if (v->flags & H1_F_HAS_CL)
            assert_int_equal(info.content_length, v->cl);
        if (v->host) {
            assert_true(slice_is(info.host, v->host));
            assert_true(info.host.p >= buf && info.host.p <= buf + len);
        }
        if (v->upgrade)
            assert_true(slice_is(info.upgrade, v->upgrade));
    }
}

/* Headers built by hand (not by the parser) may carry OWS: analysis trims it. */
static void test_analyze_untrimmed(void **state)
{
    (void)state;
    struct h1_header hs[] = {
        {STR_LIT("Transfer-Encoding"), STR_LIT(" \tchunked "), 0},
        {STR_LIT("Host"), STR_LIT("  a.example:80\t"), 0},
        {STR_LIT("Upgrade"), STR_LIT(" websocket "), 0},
        {STR_LIT("Expect"), STR_LIT("\t100-continue "), 0},
    };
    struct h1_info info;
    enum h1_framing_error ferr;
    assert_int_equal(h1_analyze_headers(hs, 4, &info, &ferr), 0);
    assert_int_equal(info.flags, H1_F_CHUNKED | H1_F_HAS_TE | H1_F_HAS_HOST | H1_F_HAS_UPGRADE |
                                     H1_F_EXPECT_CONTINUE);
    assert_true(slice_is(info.host, "a.example:80"));
    assert_true(slice_is(info.upgrade, "websocket"));

    struct h1_header cl[] = {{STR_LIT("content-length"), STR_LIT(" 12 "), 0}};
    assert_int_equal(h1_analyze_headers(cl, 1, &info, &ferr), 0);
    assert_int_equal(info.content_length, 12);

    /* an empty list is fine and clears whatever the struct held */
    memset(&info, 0xff, sizeof(info));
    assert_int_equal(h1_analyze_headers(NULL, 0, &info, &ferr), 0);
    assert_int_equal(info.flags, 0);
    assert_int_equal(ferr, H1_FE_NONE);
}

/* Well-known names get their id whatever their case; near misses do not. */
static void test_header_ids(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        unsigned id;
    } v[] = {
        {"Host", H1_H_HOST}, {"date", H1_H_DATE}, {"TE", H1_H_TE}, {"x-pad", H1_H_X_PAD},
        {"Server", H1_H_SERVER}, {"EXPECT", H1_H_EXPECT}, {"Upgrade", H1_H_UPGRADE},
        {"Trailer", H1_H_TRAILER}, {"Connection", H1_H_CONNECTION},
        {"Keep-Alive", H1_H_KEEP_ALIVE}, {"Content-Length", H1_H_CONTENT_LENGTH},
        {"HTTP2-Settings", H1_H_HTTP2_SETTINGS}, {"X-Accel-Expires", H1_H_X_ACCEL_EXPIRES},
        {"X-Accel-Charset", H1_H_X_ACCEL_CHARSET}, {"Proxy-Connection", H1_H_PROXY_CONNECTION},
        {"X-Accel-Redirect", H1_H_X_ACCEL_REDIRECT},
        {"Transfer-Encoding", H1_H_TRANSFER_ENCODING},
        {"X-Accel-Buffering", H1_H_X_ACCEL_BUFFERING},
        {"X-Accel-Limit-Rate", H1_H_X_ACCEL_LIMIT_RATE},
        /* near misses: same length and first letter, or a prefix */
        {"hosts", H1_H_OTHER}, {"hoST_", H1_H_OTHER}, {"data", H1_H_OTHER}, {"tf", H1_H_OTHER},
        {"Content-Lengtx", H1_H_OTHER}, {"Content-Type", H1_H_OTHER}, {"X-Accel-Expirex", H1_H_OTHER},
        {"Connectio", H1_H_OTHER}, {"", H1_H_OTHER}, {"Transfer-Encodinh", H1_H_OTHER},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        struct str n = {v[i].name, strlen(v[i].name)};
        assert_int_equal(h1_header_id(n), v[i].id);
    }
    /* hop-by-hop is exactly the seven RFC 9110 / de-facto ones */
    unsigned hop = 0;
    for (unsigned id = 0; id <= H1_H_X_ACCEL_CHARSET; id++)
        hop += (unsigned)h1_hop_by_hop(id);
    assert_int_equal(hop, 7);
    assert_true(h1_hop_by_hop(H1_H_TE) && h1_hop_by_hop(H1_H_PROXY_CONNECTION));
    assert_false(h1_hop_by_hop(H1_H_HOST) || h1_hop_by_hop(H1_H_CONTENT_LENGTH));

    /* the parsers fill the id of every header */
    const char *req = "GET / HTTP/1.1\r\nhOsT: a\r\nX-Other: 1\r\ncontent-length: 0\r\n\r\n";
    struct h1_header hs[8];
    struct h1_request r = {.headers = hs, .nheaders = 8};
    enum h1_error err;
    assert_true(h1_parse_request(req, strlen(req), &r, &err) > 0);
    assert_int_equal(r.nheaders, 3);
    assert_int_equal(hs[0].id, H1_H_HOST);
    assert_int_equal(hs[1].id, H1_H_OTHER);
    assert_int_equal(hs[2].id, H1_H_CONTENT_LENGTH);
    const char *resp = "HTTP/1.1 200 OK\r\nServer: x\r\nConnection: close\r\n\r\n";
    struct h1_response rs = {.headers = hs, .nheaders = 8};
    assert_true(h1_parse_response(resp, strlen(resp), &rs, &err) > 0);
    assert_int_equal(hs[0].id, H1_H_SERVER);
    assert_int_equal(hs[1].id, H1_H_CONNECTION);
}

/* Every byte value at every position of a long value or target (the
 * parser checks 16 bytes at a time there): accepted exactly when the grammar
 * allows it. */
static void test_value_and_target_bytes(void **state)
{
    (void)state;
    char buf[256];
    struct h1_header hs[4];
    enum h1_error err;
    for (int b = 0; b < 256; b++) {
        int value_ok = b == '\t' || (b >= 0x20 && b != 0x7f);
        int target_ok = b > 0x20 && b != 0x7f;
        for (int pos = 0; pos < 40; pos++) {
            char run[41];
            memset(run, 'a', 40);
            run[40] = '\0';
            run[pos] = (char)b;
            int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\nX: a");
            memcpy(buf + n, run, 40);
            n += 40;
            n += snprintf(buf + n, sizeof(buf) - (size_t)n, "z\r\n\r\n");
            struct h1_request r = {.headers = hs, .nheaders = 4};
            ssize_t rc = h1_parse_request(buf, (size_t)n, &r, &err);
            if (value_ok) {
                assert_int_equal(rc, n);
                assert_int_equal(hs[1].value.len, 42);
            } else {
                assert_int_equal(rc, -1);
            }
            n = snprintf(buf, sizeof(buf), "GET /");
            memcpy(buf + n, run, 40);
            n += 40;
            n += snprintf(buf + n, sizeof(buf) - (size_t)n, " HTTP/1.1\r\nHost: h\r\n\r\n");
            struct h1_request r2 = {.headers = hs, .nheaders = 4};
            rc = h1_parse_request(buf, (size_t)n, &r2, &err);
            if (target_ok) {
                assert_int_equal(rc, n);
                assert_int_equal(r2.target.len, 41);
            } else {
                assert_int_equal(rc, -1);
            }
        }
    }
}

static void test_error_strings(void **state)
{
    (void)state;
    for (int e = H1_E_NONE; e <= H1_E_BAD_CHUNK; e++) {
        const char *s = h1_error_str((enum h1_error)e);
        assert_non_null(s);
        assert_true(strlen(s) > 0 && strlen(s) < 48);
        for (const char *c = s; *c; c++)
            assert_false(*c >= 'A' && *c <= 'Z');
    }
    for (int e = H1_FE_NONE; e <= H1_FE_BAD_HOST; e++) {
        const char *s = h1_framing_error_str((enum h1_framing_error)e);
        assert_non_null(s);
        assert_true(strlen(s) > 0 && strlen(s) < 48);
        for (const char *c = s; *c; c++)
            assert_false(*c >= 'A' && *c <= 'Z');
    }
    assert_string_equal(h1_error_str(H1_E_BAD_HEADER_NAME), "invalid header name");
}

/* ------------------------------------------------------------------------
 * Chunked decoding
 * ------------------------------------------------------------------------ */

enum ck_want { CK_OK, CK_MORE, CK_BAD };

struct ck_vec {
    const char *raw;
    size_t len;
    enum ck_want want;
    const char *body; /* decoded payload (CK_OK, CK_MORE) */
    size_t body_len;
    const char *left; /* leftover after the body (CK_OK) */
};

/* clang-format off */
static const struct ck_vec ck_vecs[] = {
    {RAW("5\r\nhello\r\n0\r\n\r\n"), CK_OK, B("hello"), ""},
    {RAW("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), CK_OK, B("hello world"), ""},
    {RAW("A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n"), CK_OK, B("0123456789abcdefghij"), ""},
    {RAW("000005\r\nhello\r\n0000\r\n\r\n"), CK_OK, B("hello"), ""},
    {RAW("0000000000000005\r\nhello\r\n0\r\n\r\n"), CK_OK, B("hello"), ""},
    {RAW("0\r\n\r\n"), CK_OK, B(""), ""},
    {RAW("1\r\n\r\r\n1\r\n\n\r\n0\r\n\r\n"), CK_OK, B("\r\n"), ""},
    {RAW("3\r\n\0\xff\0\r\n0\r\n\r\n"), CK_OK, B("\0\xff\0"), ""},
    {RAW("5;foo=bar\r\nhello\r\n0;last\r\n\r\n"), CK_OK, B("hello"), ""},
    {RAW("5 ;foo\r\nhello\r\n0\r\n\r\n"), CK_OK, B("hello"), ""},
    {RAW("5\t; a = b ; c=\"q\\\"x\" ;d\r\nhello\r\n0\r\n\r\n"), CK_OK, B("hello"), ""},
    {RAW("5;a=\"\";b=\"\\\\\";c=\"\t \x80\"\r\nhello\r\n0\r\n\r\n"), CK_OK, B("hello"), ""},
    {RAW("5;a;b;c=1\r\nhello\r\n0\r\n\r\n"), CK_OK, B("hello"), ""},
    {RAW("0\r\nX-Trailer: v\r\nY:\r\nZ: \t a b \x80\r\n\r\n"), CK_OK, B(""), ""},
    {RAW("5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), CK_OK, B("hello"), "GET / HTTP/1.1\r\n"},
    {RAW("2\r\nab\r\n0\r\nT: 1\r\n\r\n\r\n"), CK_OK, B("ab"), "\r\n"},
    {RAW("2\r\nab\r\n0\r\n\r\n0\r\n\r\n"), CK_OK, B("ab"), "0\r\n\r\n"},
    /* incomplete */
    {RAW(""), CK_MORE, B(""), NULL},
    {RAW("5"), CK_MORE, B(""), NULL},
    {RAW("5\r"), CK_MORE, B(""), NULL},
    {RAW("5\r\nhel"), CK_MORE, B("hel"), NULL},
    {RAW("5\r\nhello"), CK_MORE, B("hello"), NULL},
    {RAW("5\r\nhello\r\n"), CK_MORE, B("hello"), NULL},
    {RAW("5;a=\"x"), CK_MORE, B(""), NULL},
    {RAW("0\r\n"), CK_MORE, B(""), NULL},
    {RAW("0\r\nX: y\r\n"), CK_MORE, B(""), NULL},
    {RAW("0\r\n\r"), CK_MORE, B(""), NULL},
    {RAW("4000000000000000\r\n"), CK_MORE, B(""), NULL},
    /* chunk-size */
    {RAW("0x5\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("+5\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("-5\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW(" 5\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("\t5\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5 \r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("g\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5g\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5_0\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("00000000000000005\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("4000000000000001\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("8000000000000000\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("FFFFFFFFFFFFFFFF\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("10000000000000000\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    /* line endings */
    {RAW("5\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5\rhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5\r\nhelloX\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5\r\nhello\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5\r\nhello\r0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5\r\nhello\r\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5\r\nhello0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5\r\nhello\r\n0\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5\r\nhello\r\n0\r\n\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5\r\nhello\r\n0\r\n\rX"), CK_BAD, NULL, 0, NULL},
    /* a bare LF never ends a framing line, though it may end a head's
     * (RFC 9112 §7.1 and erratum 7633; nginx >= 1.29.4) */
    {RAW("5\nhello\n0\n\n"), CK_BAD, NULL, 0, NULL},
    {RAW("0\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("0\r\n\n"), CK_BAD, NULL, 0, NULL},
    {RAW("0;x\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5;a=\"b\"\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5\r\nhello\r\n0\r\nX: a\r\n\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5\r\nhello\r\n0\r\nX: a\nY: b\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("3\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL}, /* body longer than its size */
    /* extensions */
    {RAW("5;\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5;=x\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5;a=\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5;a =\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5;a b\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5;a=b c\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5;a=b \r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5;a \r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5;a=\"x\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5;a=\"x\"y\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5;a=\"\\\x01\"\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5;a\0\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5;a=b\0\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5;a=b\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5;a=b;\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5;a=b=c\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("5;a@b\r\nhello\r\n0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    /* trailers */
    {RAW("0\r\nX: a\r\n b\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("0\r\n X: a\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("0\r\nX\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("0\r\nX : a\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("0\r\n: a\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("0\r\nX: a\0\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("0\r\nX: a\x7f\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("0\r\nX: a\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("0\r\nX: a\rb\r\n\r\n"), CK_BAD, NULL, 0, NULL},
    {RAW("0\r\n\n"), CK_BAD, NULL, 0, NULL},
};
/* clang-format on */

struct ck_result {
    ssize_t rc; /* -2, -1, or the total leftover length */
    char *body;
    size_t body_len;
    char *left;
    size_t left_len;
};

static void ck_result_free(struct ck_result *o)
{
    free(o->body);
    free(o->left);
}

/*
 * Decode `in` fed as consecutive pieces ending at cuts[0..ncuts) and then at
 * `len`, each piece in its own exactly-sized buffer, as a reader would.
 */
static void ck_feed(const char *in, size_t len, const size_t *cuts, size_t ncuts,
                    struct ck_result *o)
{
    struct h1_chunked d;
    memset(&d, 0, sizeof(d));
    o->rc = -2;
    o->body = malloc(len + 1);
    o->body_len = 0;
    o->left = malloc(len + 1);
    o->left_len = 0;
    assert_true(o->body && o->left);

    size_t pos = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t stop = i < ncuts ? cuts[i] : len;
        assert_true(stop >= pos && stop <= len);
        size_t plen = stop - pos;
        char *piece = dup_exact(in + pos, plen);
        size_t l = plen;
        ssize_t r = h1_decode_chunked(&d, piece, &l);
        assert_true(l <= plen);
        memcpy(o->body + o->body_len, piece, l);
        o->body_len += l;
        if (r >= 0) {
            /* the leftover is the tail of this piece, moved to just after the payload */
            assert_true(l + (size_t)r <= plen);
            assert_memory_equal(piece + l, in + stop - (size_t)r, (size_t)r);
            memcpy(o->left, piece + l, (size_t)r);
            memcpy(o->left + r, in + stop, len - stop);
            o->left_len = (size_t)r + (len - stop);
            o->rc = (ssize_t)o->left_len;
            free(piece);
            return;
        }
        free(piece);
        if (r == -1) {
            o->rc = -1;
            return;
        }
        assert_int_equal(r, -2);
        pos = stop;
    }
}

static void ck_expect_same(const struct ck_result *a, const struct ck_result *b, const char *what,
                           size_t idx)
{
    if (a->rc != b->rc ||
        (a->rc != -1 && (a->body_len != b->body_len || memcmp(a->body, b->body, a->body_len) != 0 ||
                         a->left_len != b->left_len || memcmp(a->left, b->left, a->left_len) != 0)))
        fail_msg("chunked %zu: %s differs from one-shot (rc %zd vs %zd, body %zu vs %zu)", idx,
                 what, b->rc, a->rc, b->body_len, a->body_len);
}

/* One-shot, byte-by-byte, every 2-way split and random splits agree. */
static void ck_check_all_splits(const char *raw, size_t len, size_t idx, struct ck_result *ref)
{
    ck_feed(raw, len, NULL, 0, ref);

    size_t *cuts = malloc((len + 1) * sizeof(*cuts));
    assert_non_null(cuts);
    struct ck_result o;

    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    ck_feed(raw, len, cuts, len ? len - 1 : 0, &o);
    ck_expect_same(ref, &o, "byte by byte", idx);
    ck_result_free(&o);

    for (size_t k = 0; k <= len; k++) {
        cuts[0] = k;
        ck_feed(raw, len, cuts, 1, &o);
        ck_expect_same(ref, &o, "two-way split", idx);
        ck_result_free(&o);
    }

    for (int round = 0; round < 50; round++) {
        size_t n = 0, at = 0;
        while (at < len) {
            at += 1 + (size_t)rand() % (len / 3 + 2);
            if (at < len)
                cuts[n++] = at;
        }
        ck_feed(raw, len, cuts, n, &o);
        ck_expect_same(ref, &o, "random split", idx);
        ck_result_free(&o);
    }
    free(cuts);
}

static void test_chunked_vectors(void **state)
{
    (void)state;
    srand(12345);
    for (size_t idx = 0; idx < sizeof(ck_vecs) / sizeof(ck_vecs[0]); idx++) {
        const struct ck_vec *v = &ck_vecs[idx];
        struct ck_result ref;
        ck_check_all_splits(v->raw, v->len, idx, &ref);
        switch (v->want) {
        case CK_OK:
            if (ref.rc < 0)
                fail_msg("chunked %zu (%s): rc %zd, want ok", idx, esc(v->raw, v->len), ref.rc);
            assert_true(ref.body_len == v->body_len &&
                        memcmp(ref.body, v->body, ref.body_len) == 0);
            assert_true(ref.left_len == strlen(v->left) &&
                        memcmp(ref.left, v->left, ref.left_len) == 0);
            break;
        case CK_MORE:
            if (ref.rc != -2)
                fail_msg("chunked %zu (%s): rc %zd, want -2", idx, esc(v->raw, v->len), ref.rc);
            assert_true(ref.body_len == v->body_len &&
                        memcmp(ref.body, v->body, ref.body_len) == 0);
            break;
        case CK_BAD:
            if (ref.rc != -1)
                fail_msg("chunked %zu (%s): rc %zd, want -1", idx, esc(v->raw, v->len), ref.rc);
            break;
        }
        ck_result_free(&ref);
    }
}

/* Build "<ext>" of n bytes after the size digits: ";a=" followed by 'x's. */
static size_t build_ext_chunk(char *out, size_t ext_len)
{
    size_t o = 0;
    out[o++] = '1';
    out[o++] = ';';
    out[o++] = 'a';
    out[o++] = '=';
    for (size_t i = 3; i < ext_len; i++)
        out[o++] = 'x';
    memcpy(out + o, "\r\nZ\r\n0\r\n\r\n", 10);
    return o + 10;
}

static void test_chunked_limits(void **state)
{
    (void)state;
    static char buf[40000];
    struct ck_result o;

    /* extension text of exactly 4096 bytes is fine, 4097 is not */
    size_t len = build_ext_chunk(buf, 4096);
    ck_feed(buf, len, NULL, 0, &o);
    assert_int_equal(o.rc, 0);
    assert_true(o.body_len == 1 && o.body[0] == 'Z');
    ck_result_free(&o);
    len = build_ext_chunk(buf, 4097);
    ck_feed(buf, len, NULL, 0, &o);
    assert_int_equal(o.rc, -1);
    ck_result_free(&o);

    /* BWS counts too: no endless whitespace before ';' */
    len = 0;
    buf[len++] = '1';
    for (int i = 0; i < 5000; i++)
        buf[len++] = ' ';
    ck_feed(buf, len, NULL, 0, &o);
    assert_int_equal(o.rc, -1);
    ck_result_free(&o);

    /* the limit is per size line, not per body */
    len = 0;
    for (int i = 0; i < 4; i++) {
        len += build_ext_chunk(buf + len, 4000) - 5; /* drop the "0\r\n\r\n" */
    }
    memcpy(buf + len, "0\r\n\r\n", 5);
    len += 5;
    ck_feed(buf, len, NULL, 0, &o);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.body_len, 4);
    ck_result_free(&o);

    /* trailer lines: 16384 bytes in total (CRLFs included) pass, one more fails */
    for (size_t total = 16384; total <= 16385; total++) {
        len = 0;
        memcpy(buf, "0\r\n", 3);
        len = 3;
        size_t field = total - 2; /* one line: "T:" + value, then CRLF */
        buf[len++] = 'T';
        buf[len++] = ':';
        for (size_t i = 2; i < field; i++)
            buf[len++] = 'v';
        memcpy(buf + len, "\r\n\r\n", 4);
        len += 4;
        ck_feed(buf, len, NULL, 0, &o);
        assert_int_equal(o.rc, total == 16384 ? 0 : -1);
        ck_result_free(&o);
    }

    /* many short trailer lines count together */
    len = 3;
    memcpy(buf, "0\r\n", 3);
    for (int i = 0; i < 3000; i++) {
        memcpy(buf + len, "Ab: c\r\n", 7);
        len += 7;
    }
    memcpy(buf + len, "\r\n", 2);
    len += 2;
    ck_feed(buf, len, NULL, 0, &o);
    assert_int_equal(o.rc, -1);
    ck_result_free(&o);
}

static void test_chunked_sticky_states(void **state)
{
    (void)state;
    struct h1_chunked d;
    char buf[64];
    size_t len;

    /* after completion, everything is leftover */
    memset(&d, 0, sizeof(d));
    memcpy(buf, "0\r\n\r\n", 5);
    len = 5;
    assert_int_equal(h1_decode_chunked(&d, buf, &len), 0);
    assert_int_equal(len, 0);
    memcpy(buf, "abc", 3);
    len = 3;
    assert_int_equal(h1_decode_chunked(&d, buf, &len), 3);
    assert_int_equal(len, 0);
    assert_memory_equal(buf, "abc", 3);

    /* after an error, every call fails */
    memset(&d, 0, sizeof(d));
    memcpy(buf, "x", 1);
    len = 1;
    assert_int_equal(h1_decode_chunked(&d, buf, &len), -1);
    memcpy(buf, "0\r\n\r\n", 5);
    len = 5;
    assert_int_equal(h1_decode_chunked(&d, buf, &len), -1);

    /* empty input is "need more" and changes nothing */
    memset(&d, 0, sizeof(d));
    len = 0;
    assert_int_equal(h1_decode_chunked(&d, buf, &len), -2);
    assert_int_equal(len, 0);
}

/* A large random body, randomly chunked with extensions, decoded at random splits. */
static void test_chunked_random_roundtrip(void **state)
{
    (void)state;
    srand(777);
    for (int round = 0; round < 20; round++) {
        size_t body_len = (size_t)rand() % 200000;
        char *body = malloc(body_len + 1);
        char *enc = malloc(body_len * 2 + 100000);
        assert_true(body && enc);
        for (size_t i = 0; i < body_len; i++)
            body[i] = (char)rand();

        size_t e = 0, at = 0;
        while (at < body_len) {
            size_t n = 1 + (size_t)rand() % 20000;
            if (n > body_len - at)
                n = body_len - at;
            e += (size_t)sprintf(enc + e, (rand() & 1) ? "%zx" : "%zX", n);
            if (rand() % 3 == 0)
                e += (size_t)sprintf(enc + e, " ; ext=%d;q=\"a b\"", rand());
            memcpy(enc + e, "\r\n", 2);
            e += 2;
            memcpy(enc + e, body + at, n);
            e += n;
            memcpy(enc + e, "\r\n", 2);
            e += 2;
            at += n;
        }
        e += (size_t)sprintf(enc + e, "0\r\nChecksum: %d\r\n\r\nNEXT", round);

        struct ck_result ref, o;
        ck_feed(enc, e, NULL, 0, &ref);
        assert_int_equal(ref.rc, 4);
        assert_int_equal(ref.body_len, body_len);
        assert_memory_equal(ref.body, body, body_len);
        assert_memory_equal(ref.left, "NEXT", 4);

        size_t cuts[64], n = 0;
        for (size_t c = 0; c < 64 && e; c++) {
            size_t cut = (size_t)rand() % e;
            if (n == 0 || cut > cuts[n - 1])
                cuts[n++] = cut;
        }
        ck_feed(enc, e, cuts, n, &o);
        ck_expect_same(&ref, &o, "random roundtrip", (size_t)round);
        ck_result_free(&o);
        ck_result_free(&ref);
        free(body);
        free(enc);
    }
}

/* Trailer lines are copied when asked, and h1_parse_trailers() splits them;
 * a copy cut short by its room drops the cut field only. */
static void test_chunked_trailer_capture(void **state)
{
    (void)state;
    char body[] = "5\r\nhello\r\n0\r\ngrpc-status: 0\r\nX-Sum:  abc \r\n\r\nNEXT";
    char tr[64];
    struct h1_chunked d = {0};
    d.tr = tr;
    d.tr_cap = sizeof(tr);
    size_t len = strlen(body);
    ssize_t rc = h1_decode_chunked(&d, body, &len);
    assert_int_equal(rc, 4); /* "NEXT" is leftover */
    assert_int_equal(len, 5);
    assert_memory_equal(body, "hello", 5);
    assert_int_equal(d.tr_len, strlen("grpc-status: 0\r\nX-Sum:  abc \r\n"));
    struct h1_header h[4];
    size_t n = h1_parse_trailers(tr, d.tr_len, h, 4);
    assert_int_equal(n, 2);
    assert_true(str_eq(h[0].name, STR_LIT("grpc-status")) && str_eq(h[0].value, STR_LIT("0")));
    assert_true(str_eq(h[1].name, STR_LIT("X-Sum")) && str_eq(h[1].value, STR_LIT("abc")));

    /* Room for the first line only: the second is dropped, not cut. */
    char body2[] = "0\r\na: 1\r\nbbbbbbbb: 2\r\n\r\n";
    char small[12];
    struct h1_chunked d2 = {0};
    d2.tr = small;
    d2.tr_cap = sizeof(small);
    len = strlen(body2);
    assert_int_equal(h1_decode_chunked(&d2, body2, &len), 0);
    assert_int_equal(h1_parse_trailers(small, d2.tr_len, h, 4), 1);
    assert_true(str_eq(h[0].name, STR_LIT("a")) && str_eq(h[0].value, STR_LIT("1")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_valid),
        cmocka_unit_test(test_request_invalid),
        cmocka_unit_test(test_request_early_reject),
        cmocka_unit_test(test_request_leading_empty_lines),
        cmocka_unit_test(test_request_capacity),
        cmocka_unit_test(test_request_line_done),
        cmocka_unit_test(test_request_higher_minor_is_11),
        cmocka_unit_test(test_response_valid),
        cmocka_unit_test(test_response_invalid),
        cmocka_unit_test(test_response_capacity),
        cmocka_unit_test(test_analyze),
        cmocka_unit_test(test_analyze_untrimmed),
        cmocka_unit_test(test_error_strings),
        cmocka_unit_test(test_chunked_vectors),
        cmocka_unit_test(test_chunked_limits),
        cmocka_unit_test(test_chunked_sticky_states),
        cmocka_unit_test(test_chunked_random_roundtrip),
        cmocka_unit_test(test_chunked_trailer_capture),
        cmocka_unit_test(test_header_ids),
        cmocka_unit_test(test_value_and_target_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
