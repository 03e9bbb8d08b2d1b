/*
 * fuzz_h1_response.c - libFuzzer target for h1_parse_response() and
 * h1_analyze_headers() on what an upstream might send.
 *
 * Checks, besides memory safety: result range, slices inside the head, the
 * status range, the prefix properties (-2 for every proper prefix of an
 * accepted head, prefixes of incomplete input incomplete, prefixes of
 * rejected input never accepted), that no accepted head holds a CR without
 * its LF, that the head with every lone LF made CRLF parses to the same
 * fields, and the header capacity.
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

static ssize_t parse(const char *buf, size_t len, struct h1_response *resp, struct h1_header *hs,
                     size_t cap, enum h1_error *err)
{
    *resp = (struct h1_response){.headers = hs, .nheaders = cap};
    return h1_parse_response(buf, len, resp, err);
}

/* The CRLF form of an accepted head (every lone LF made CRLF) parses to
 * the same fields; no CR of the head lacks its LF. */
static void check_line_ends(const char *buf, size_t len, const struct h1_response *resp)
{
    char *canon = malloc(2 * len + 1);
    CHECK(canon != NULL);
    size_t clen = 0;
    for (size_t i = 0; i < len; i++) {
        CHECK(buf[i] != '\r' || (i + 1 < len && buf[i + 1] == '\n'));
        if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r'))
            canon[clen++] = '\r';
        canon[clen++] = buf[i];
    }
    struct h1_header hs[MAXH];
    struct h1_response r;
    enum h1_error err;
    CHECK(parse(canon, clen, &r, hs, MAXH, &err) == (ssize_t)clen);
    CHECK(r.status == resp->status && r.minor_version == resp->minor_version);
    CHECK(str_eq(r.reason, resp->reason) && r.nheaders == resp->nheaders);
    for (size_t i = 0; i < r.nheaders; i++)
        CHECK(str_eq(hs[i].name, resp->headers[i].name) &&
              str_eq(hs[i].value, resp->headers[i].value));
    free(canon);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct h1_header hs[MAXH], hs2[MAXH];
    struct h1_response resp, resp2;
    enum h1_error err, err2;

    ssize_t r = parse(buf, size, &resp, hs, MAXH, &err);
    CHECK(r == -1 || r == -2 || (r > 0 && (size_t)r <= size));
    CHECK((r == -1) == (err != H1_E_NONE));

    size_t split = size ? ((size_t)data[0] * 131 + (size_t)data[size - 1]) % size : 0;

    if (r > 0) {
        size_t len = (size_t)r;
        CHECK(resp.status >= 100 && resp.status <= 999);
        CHECK(resp.minor_version == 0 || resp.minor_version == 1);
        CHECK(inside(resp.reason, buf, len));
        for (size_t i = 0; i < resp.reason.len; i++) {
            unsigned char c = (unsigned char)resp.reason.p[i];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        CHECK(resp.nheaders <= MAXH);
        for (size_t i = 0; i < resp.nheaders; i++) {
            CHECK(hs[i].name.len > 0 && inside(hs[i].name, buf, len));
            CHECK(inside(hs[i].value, buf, len));
        }
        CHECK(buf[len - 1] == '\n');
        check_line_ends(buf, len, &resp);
        CHECK(parse(buf, len - 1, &resp2, hs2, MAXH, &err2) == -2);
        CHECK(parse(buf, split % len, &resp2, hs2, MAXH, &err2) == -2);
        CHECK(parse(buf, size, &resp2, hs2, resp.nheaders, &err2) == r);
        CHECK(resp2.status == resp.status && str_eq(resp2.reason, resp.reason));
        if (resp.nheaders > 0) {
            CHECK(parse(buf, size, &resp2, hs2, resp.nheaders - 1, &err2) == -1);
            CHECK(err2 == H1_E_TOO_MANY_HEADERS);
        }

        struct h1_info info;
        enum h1_framing_error ferr;
        int rc = h1_analyze_headers(hs, resp.nheaders, &info, &ferr);
        CHECK((rc == -1) == (ferr != H1_FE_NONE));
        if (rc == 0 && (info.flags & H1_F_HAS_HOST))
            CHECK(inside(info.host, buf, len));
    } else if (r == -2) {
        CHECK(parse(buf, split, &resp2, hs2, MAXH, &err2) == -2);
    } else {
        ssize_t r2 = parse(buf, split, &resp2, hs2, MAXH, &err2);
        CHECK(r2 == -1 || r2 == -2);
    }
    return 0;
}
