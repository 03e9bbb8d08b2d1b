/*
 * fuzz_h1_request.c - libFuzzer target for h1_parse_request() and
 * h1_analyze_headers().
 *
 * Besides memory safety (ASan/UBSan) it checks the parser's contract:
 *   - the result is -1, -2 or a length within the input;
 *   - every slice it returns lies inside the head it measured;
 *   - every proper prefix of an accepted head is -2, and a prefix of an
 *     incomplete input is incomplete too (the "restartable" property);
 *   - a prefix of a rejected input is never accepted;
 *   - returned fields obey the grammar (token method, trimmed values...);
 *   - the head ends in an empty line, and every CR in it is followed by LF;
 *   - the head with every lone LF made CRLF parses to the same fields (a
 *     bare LF means exactly what CRLF means);
 *   - the header capacity is honoured exactly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1_parser.h"

#define MAXH 32

/* Invariant violations abort so libFuzzer records the input as a crash. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(struct str s, const char *base, size_t len)
{
    return s.p >= base && s.p + s.len <= base + len;
}

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static ssize_t parse(const char *buf, size_t len, struct h1_request *req, struct h1_header *hs,
                     size_t cap, enum h1_error *err)
{
    *req = (struct h1_request){.headers = hs, .nheaders = cap};
    return h1_parse_request(buf, len, req, err);
}

/* The head buf[0..len) ends in an empty line (LF or CRLF after a LF) and
 * holds no CR that is not followed by LF. */
static int line_ends_ok(const char *buf, size_t len)
{
    if (len < 2 || buf[len - 1] != '\n')
        return 0;
    if (buf[len - 2] != '\n' && !(len >= 3 && buf[len - 2] == '\r' && buf[len - 3] == '\n'))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\r' && (i + 1 == len || buf[i + 1] != '\n'))
            return 0;
    return 1;
}

/* Heap copy of buf[0..len) with every LF not preceded by CR made CRLF. */
static char *to_crlf(const char *buf, size_t len, size_t *out_len)
{
    char *o = malloc(2 * len + 1);
    CHECK(o != NULL);
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r'))
            o[j++] = '\r';
        o[j++] = buf[i];
    }
    *out_len = j;
    return o;
}

/* The CRLF form of an accepted head parses to the same fields. */
static void check_crlf_form(const char *buf, size_t len, const struct h1_request *req)
{
    size_t clen;
    char *canon = to_crlf(buf, len, &clen);
    struct h1_header hs[MAXH];
    struct h1_request r;
    enum h1_error err;
    CHECK(parse(canon, clen, &r, hs, MAXH, &err) == (ssize_t)clen);
    CHECK(str_eq(r.method, req->method) && str_eq(r.target, req->target));
    CHECK(r.minor_version == req->minor_version && r.nheaders == req->nheaders);
    for (size_t i = 0; i < r.nheaders; i++)
        CHECK(str_eq(hs[i].name, req->headers[i].name) &&
              str_eq(hs[i].value, req->headers[i].value));
    free(canon);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct h1_header hs[MAXH], hs2[MAXH];
    struct h1_request req, req2;
    enum h1_error err, err2;

    ssize_t r = parse(buf, size, &req, hs, MAXH, &err);
    CHECK(r == -1 || r == -2 || (r > 0 && (size_t)r <= size));
    CHECK((r == -1) == (err != H1_E_NONE));
    if (r < 0)
        CHECK(req.nheaders == MAXH);

    /* A split point derived from the data, so each input tests a different one. */
    size_t split = size ? ((size_t)data[0] * 131 + (size_t)data[size - 1]) % size : 0;

    if (r > 0) {
        size_t len = (size_t)r;
        CHECK(req.line_done == 1);
        CHECK(req.minor_version == 0 || req.minor_version == 1);
        CHECK(req.method.len > 0 && inside(req.method, buf, len));
        CHECK(req.target.len > 0 && inside(req.target, buf, len));
        for (size_t i = 0; i < req.method.len; i++)
            CHECK(is_tchar((unsigned char)req.method.p[i]));
        for (size_t i = 0; i < req.target.len; i++)
            CHECK((unsigned char)req.target.p[i] > 0x20 && req.target.p[i] != 0x7f);
        CHECK(req.nheaders <= MAXH);
        for (size_t i = 0; i < req.nheaders; i++) {
            struct str n = hs[i].name, v = hs[i].value;
            CHECK(n.len > 0 && inside(n, buf, len) && inside(v, buf, len));
            for (size_t j = 0; j < n.len; j++)
                CHECK(is_tchar((unsigned char)n.p[j]));
            CHECK(n.p[n.len] == ':');
            if (v.len) {
                CHECK(v.p[0] != ' ' && v.p[0] != '\t');
                CHECK(v.p[v.len - 1] != ' ' && v.p[v.len - 1] != '\t');
            }
            for (size_t j = 0; j < v.len; j++) {
                unsigned char c = (unsigned char)v.p[j];
                CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
            }
        }
        CHECK(line_ends_ok(buf, len));
        check_crlf_form(buf, len, &req);

        /* every proper prefix is incomplete */
        CHECK(parse(buf, len - 1, &req2, hs2, MAXH, &err2) == -2);
        CHECK(parse(buf, split % len, &req2, hs2, MAXH, &err2) == -2);
        CHECK(req2.line_done <= req.line_done);

        /* exactly enough capacity works; one less does not */
        CHECK(parse(buf, size, &req2, hs2, req.nheaders, &err2) == r);
        CHECK(req2.nheaders == req.nheaders);
        CHECK(str_eq(req2.method, req.method) && str_eq(req2.target, req.target));
        if (req.nheaders > 0) {
            CHECK(parse(buf, size, &req2, hs2, req.nheaders - 1, &err2) == -1);
            CHECK(err2 == H1_E_TOO_MANY_HEADERS);
        }

        struct h1_info info;
        enum h1_framing_error ferr;
        int rc = h1_analyze_headers(hs, req.nheaders, &info, &ferr);
        CHECK(rc == 0 || rc == -1);
        CHECK((rc == -1) == (ferr != H1_FE_NONE));
        if (rc == 0) {
            if (info.flags & H1_F_HAS_HOST)
                CHECK(inside(info.host, buf, len));
            if (info.flags & H1_F_HAS_UPGRADE)
                CHECK(inside(info.upgrade, buf, len));
            if (info.flags & H1_F_HAS_CL)
                CHECK(info.content_length <= ((uint64_t)1 << 62));
            CHECK(!((info.flags & H1_F_HAS_CL) && (info.flags & H1_F_HAS_TE)));
            CHECK(!!(info.flags & H1_F_CHUNKED) == !!(info.flags & H1_F_HAS_TE));
        }
    } else if (r == -2) {
        ssize_t r2 = parse(buf, split, &req2, hs2, MAXH, &err2);
        CHECK(r2 == -2);
        CHECK(req2.line_done <= req.line_done);
    } else {
        /* a prefix of a rejected input may be incomplete, never accepted */
        ssize_t r2 = parse(buf, split, &req2, hs2, MAXH, &err2);
        CHECK(r2 == -1 || r2 == -2);
        CHECK(req2.line_done <= req.line_done);
    }
    return 0;
}
