/*
 * test_ws_frame.c - table-driven tests for proxy/ws_frame.c.
 *
 * Headers: every length class and its boundaries (125/126/65535/65536,
 * 2^63-1), RSV bits, masks; every proper prefix of a valid header must give
 * 0, every prefix of an invalid one 0 or the same error as the whole.
 *
 * Streams are run through a small model of the tunnel (run_stream): bytes
 * "arrive" at chosen cut points, are fed from exactly-sized heap copies (so
 * AddressSanitizer catches reads past `len`), an incomplete control frame is
 * held back until more bytes arrive, and a complete one is either dropped
 * with ws_stream_skip() or fed again. Whatever the cuts and the mode, the
 * control frames reported (stream offset, length, opcode) and the final
 * state must be the same.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/ws_frame.h"

#define RAW(s) (const uint8_t *)(s), sizeof(s) - 1
#define MAX_REPORTS 32

/* Heap copy of exactly n bytes (n may be 0). */
static uint8_t *dup_exact(const uint8_t *s, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    if (n)
        memcpy(p, s, n);
    return p;
}

/* Deterministic PRNG (xorshift64) so random splits are reproducible. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static const uint8_t key_a[4] = {0x37, 0xfa, 0x21, 0x3d};

/* ------------------------------------------------------------------------
 * Header parsing
 * ------------------------------------------------------------------------ */

struct hdr_vec {
    const uint8_t *raw;
    size_t len;
    uint8_t fin, rsv, opcode, masked;
    uint64_t plen;
};

static const struct hdr_vec valid_headers[] = {
    /* 7-bit lengths */
    {RAW("\x81\x00"), 1, 0, WS_OP_TEXT, 0, 0},
    {RAW("\x81\x05"), 1, 0, WS_OP_TEXT, 0, 5},
    {RAW("\x82\x7d"), 1, 0, WS_OP_BINARY, 0, 125},
    /* 16-bit lengths: 126 is the smallest, 65535 the largest */
    {RAW("\x82\x7e\x00\x7e"), 1, 0, WS_OP_BINARY, 0, 126},
    {RAW("\x82\x7e\x01\x00"), 1, 0, WS_OP_BINARY, 0, 256},
    {RAW("\x82\x7e\xff\xff"), 1, 0, WS_OP_BINARY, 0, 65535},
    /* 64-bit lengths: 65536 is the smallest, 2^63-1 the largest */
    {RAW("\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"), 1, 0, WS_OP_BINARY, 0, 65536},
    {RAW("\x82\x7f\x00\x00\x00\x01\x00\x00\x00\x00"), 1, 0, WS_OP_BINARY, 0, 1ull << 32},
    {RAW("\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff"), 1, 0, WS_OP_BINARY, 0, INT64_MAX},
    /* fragments: parse does not judge fragmentation */
    {RAW("\x01\x03"), 0, 0, WS_OP_TEXT, 0, 3},
    {RAW("\x00\x03"), 0, 0, WS_OP_CONT, 0, 3},
    {RAW("\x80\x00"), 1, 0, WS_OP_CONT, 0, 0},
    /* RSV bits are reported, not rejected */
    {RAW("\xc1\x05"), 1, 4, WS_OP_TEXT, 0, 5},
    {RAW("\xf2\x00"), 1, 7, WS_OP_BINARY, 0, 0},
    {RAW("\x21\x00"), 0, 2, WS_OP_TEXT, 0, 0},
    {RAW("\x91\x00"), 1, 1, WS_OP_TEXT, 0, 0},
    /* control frames */
    {RAW("\x89\x00"), 1, 0, WS_OP_PING, 0, 0},
    {RAW("\x89\x7d"), 1, 0, WS_OP_PING, 0, 125},
    {RAW("\x8a\x05"), 1, 0, WS_OP_PONG, 0, 5},
    {RAW("\x88\x02"), 1, 0, WS_OP_CLOSE, 0, 2},
    /* Unmasked frames of every length class, masked frames of every length
     * class: the MASK bit only says whether a key follows the length, in
     * either direction (browsers mask, a non-browser client may not, a server
     * may mask: the relay follows them all). Masked: RFC 6455 §5.7 key. */
    {RAW("\x01\x7d"), 0, 0, WS_OP_TEXT, 0, 125},
    {RAW("\x89\x7d"), 1, 0, WS_OP_PING, 0, 125},
    {RAW("\x8a\x00"), 1, 0, WS_OP_PONG, 0, 0},
    {RAW("\x88\x7d"), 1, 0, WS_OP_CLOSE, 0, 125},
    {RAW("\x81\x85\x37\xfa\x21\x3d"), 1, 0, WS_OP_TEXT, 1, 5},
    {RAW("\x89\x80\x37\xfa\x21\x3d"), 1, 0, WS_OP_PING, 1, 0},
    {RAW("\x82\xfe\x01\x00\x37\xfa\x21\x3d"), 1, 0, WS_OP_BINARY, 1, 256},
    {RAW("\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00\x37\xfa\x21\x3d"), 1, 0, WS_OP_BINARY, 1,
     65536},
    {RAW("\x02\xfe\xff\xff\x37\xfa\x21\x3d"), 0, 0, WS_OP_BINARY, 1, 65535},
    {RAW("\x81\xfd\x37\xfa\x21\x3d"), 1, 0, WS_OP_TEXT, 1, 125},
    {RAW("\x82\xfe\x00\x7e\x37\xfa\x21\x3d"), 1, 0, WS_OP_BINARY, 1, 126},
    {RAW("\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff\x37\xfa\x21\x3d"), 1, 0, WS_OP_BINARY, 1,
     INT64_MAX},
    {RAW("\x88\xfd\x37\xfa\x21\x3d"), 1, 0, WS_OP_CLOSE, 1, 125},
    {RAW("\x8a\x80\x00\x00\x00\x00"), 1, 0, WS_OP_PONG, 1, 0},
    {RAW("\xc1\x85\x37\xfa\x21\x3d"), 1, 4, WS_OP_TEXT, 1, 5},
};

static void check_fields(const struct hdr_vec *v, const struct ws_frame_info *fi)
{
    assert_int_equal(fi->fin, v->fin);
    assert_int_equal(fi->rsv, v->rsv);
    assert_int_equal(fi->opcode, v->opcode);
    assert_int_equal(fi->masked, v->masked);
    assert_int_equal(fi->header_len, v->len);
    assert_true(fi->payload_len == v->plen);
    if (v->masked)
        assert_memory_equal(fi->mask, v->raw + v->len - 4, 4);
}

static void test_parse_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid_headers) / sizeof(valid_headers[0]); i++) {
        const struct hdr_vec *v = &valid_headers[i];
        struct ws_frame_info fi;
        enum ws_frame_error err = WS_FE_NONE;

        /* Every proper prefix needs more and leaves *fi alone. */
        for (size_t k = 0; k < v->len; k++) {
            uint8_t *p = dup_exact(v->raw, k);
            memset(&fi, 0xAB, sizeof(fi));
            ssize_t rc = ws_parse_header(p, k, &fi, &err);
            if (rc != 0)
                fail_msg("valid header %zu: prefix %zu gave %zd", i, k, rc);
            assert_int_equal(fi.opcode, 0xAB);
            free(p);
        }
        uint8_t *p = dup_exact(v->raw, v->len);
        ssize_t rc = ws_parse_header(p, v->len, &fi, &err);
        if (rc != (ssize_t)v->len)
            fail_msg("valid header %zu: gave %zd (%s)", i, rc, ws_frame_error_str(err));
        check_fields(v, &fi);
        free(p);

        /* Trailing payload bytes change nothing. */
        uint8_t big[WS_MAX_HEADER + 8];
        memcpy(big, v->raw, v->len);
        memset(big + v->len, 0xFF, 8);
        assert_int_equal(ws_parse_header(big, v->len + 8, &fi, &err), v->len);
        check_fields(v, &fi);

        /* The same frame with the MASK bit flipped (key added or removed)
         * parses too: same fields, header 4 bytes longer or shorter. */
        struct hdr_vec flip = *v;
        uint8_t other[WS_MAX_HEADER];
        size_t lenpart = v->len - (v->masked ? 4 : 0);
        memcpy(other, v->raw, lenpart);
        other[1] ^= 0x80;
        if (!v->masked)
            memcpy(other + lenpart, key_a, 4);
        flip.raw = other;
        flip.len = v->masked ? lenpart : lenpart + 4;
        flip.masked = !v->masked;
        for (size_t k = 0; k < flip.len; k++)
            assert_int_equal(ws_parse_header(other, k, &fi, &err), 0);
        assert_int_equal(ws_parse_header(other, flip.len, &fi, &err), flip.len);
        check_fields(&flip, &fi);
    }
}

struct bad_vec {
    const uint8_t *raw;
    size_t len;
    enum ws_frame_error err;
    size_t known_at; /* shortest prefix already rejected */
};

static const struct bad_vec invalid_headers[] = {
    /* control frames must not be fragmented, checked on byte 0 */
    {RAW("\x09\x00"), WS_FE_CONTROL_FRAGMENTED, 1},
    {RAW("\x08\x02"), WS_FE_CONTROL_FRAGMENTED, 1},
    {RAW("\x0a\x80\x00\x00\x00\x00"), WS_FE_CONTROL_FRAGMENTED, 1},
    {RAW("\x49\x00"), WS_FE_CONTROL_FRAGMENTED, 1},
    /* byte 0 is judged before byte 1 */
    {RAW("\x09\xfe"), WS_FE_CONTROL_FRAGMENTED, 1},
    {RAW("\x03\x00"), WS_FE_RESERVED_OPCODE, 1},
    /* control payloads > 125 */
    {RAW("\x89\x7e\x00\x7e"), WS_FE_CONTROL_TOO_LONG, 2},
    {RAW("\x88\x7f\x00\x00\x00\x00\x00\x01\x00\x00"), WS_FE_CONTROL_TOO_LONG, 2},
    {RAW("\x8a\xfe\x00\x7e\x00\x00\x00\x00"), WS_FE_CONTROL_TOO_LONG, 2},
    {RAW("\x89\xfe\x00\x7e\x37\xfa\x21\x3d"), WS_FE_CONTROL_TOO_LONG, 2},
    {RAW("\x88\xff\x00\x00\x00\x00\x00\x01\x00\x00"), WS_FE_CONTROL_TOO_LONG, 2},
    /* non-minimal 16-bit lengths */
    {RAW("\x82\x7e\x00\x7d"), WS_FE_BAD_LENGTH, 4},
    {RAW("\x82\x7e\x00\x00"), WS_FE_BAD_LENGTH, 4},
    {RAW("\x82\xfe\x00\x05\x37\xfa\x21\x3d"), WS_FE_BAD_LENGTH, 4},
    /* non-minimal 64-bit lengths */
    {RAW("\x82\x7f\x00\x00\x00\x00\x00\x00\xff\xff"), WS_FE_BAD_LENGTH, 10},
    {RAW("\x82\x7f\x00\x00\x00\x00\x00\x00\x00\x7d"), WS_FE_BAD_LENGTH, 10},
    {RAW("\x82\x7f\x00\x00\x00\x00\x00\x00\x00\x00"), WS_FE_BAD_LENGTH, 10},
    {RAW("\x82\xff\x00\x00\x00\x00\x00\x00\xff\xff\x37\xfa\x21\x3d"), WS_FE_BAD_LENGTH, 10},
    /* 64-bit length with the MSB set: rejected on its first byte */
    {RAW("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00"), WS_FE_BAD_LENGTH, 3},
    {RAW("\x82\x7f\xff\xff\xff\xff\xff\xff\xff\xff"), WS_FE_BAD_LENGTH, 3},
    {RAW("\x82\xff\x80\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"), WS_FE_BAD_LENGTH, 3},
};

static void check_invalid(const uint8_t *raw, size_t len, enum ws_frame_error want, size_t known_at,
                          size_t idx)
{
    struct ws_frame_info fi;
    for (size_t k = 0; k <= len; k++) {
        enum ws_frame_error err = WS_FE_NONE;
        uint8_t *p = dup_exact(raw, k);
        ssize_t rc = ws_parse_header(p, k, &fi, &err);
        free(p);
        if (k < known_at && rc != 0)
            fail_msg("invalid header %zu: prefix %zu gave %zd, want 0", idx, k, rc);
        if (k >= known_at && (rc != -1 || err != want))
            fail_msg("invalid header %zu: prefix %zu gave %zd (%s), want -1 (%s)", idx, k, rc,
                     ws_frame_error_str(err), ws_frame_error_str(want));
    }
}

static void test_parse_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(invalid_headers) / sizeof(invalid_headers[0]); i++) {
        const struct bad_vec *v = &invalid_headers[i];
        check_invalid(v->raw, v->len, v->err, v->known_at, i);
    }
    /* Every reserved opcode, with and without FIN, masked or not. */
    for (unsigned op = 0; op < 16; op++) {
        if (op <= WS_OP_BINARY || (op >= WS_OP_CLOSE && op <= WS_OP_PONG))
            continue;
        for (unsigned fin = 0; fin < 2; fin++)
            for (int m = 0; m < 2; m++) {
                uint8_t h[6] = {(uint8_t)(fin << 7 | op), m ? 0x80 : 0x00, 1, 2, 3, 4};
                check_invalid(h, m ? 6 : 2, WS_FE_RESERVED_OPCODE, 1, 1000 + op);
            }
    }
}

/* RFC 6455 §5.7 examples. */
static void test_rfc_examples(void **state)
{
    (void)state;
    struct ws_frame_info fi;
    enum ws_frame_error err;

    /* unmasked "Hello" */
    static const uint8_t hello[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    assert_int_equal(ws_parse_header(hello, sizeof(hello), &fi, &err), 2);
    assert_true(fi.fin && fi.opcode == WS_OP_TEXT && fi.payload_len == 5);

    /* masked "Hello" */
    uint8_t mhello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    assert_int_equal(ws_parse_header(mhello, sizeof(mhello), &fi, &err), 6);
    ws_mask_bytes(mhello + 6, 5, fi.mask, 0);
    assert_memory_equal(mhello + 6, "Hello", 5);

    /* fragmented unmasked text: "Hel" + "lo" */
    static const uint8_t frag[] = {0x01, 0x03, 'H', 'e', 'l', 0x80, 0x02, 'l', 'o'};
    struct ws_stream st;
    size_t tot;
    ws_stream_init(&st);
    assert_int_equal(ws_stream_feed(&st, frag, 5, NULL, &tot), 5);
    assert_true(st.in_message && ws_stream_at_boundary(&st));
    assert_int_equal(ws_stream_feed(&st, frag + 5, 4, NULL, &tot), 4);
    assert_true(!st.in_message && st.frames == 2);

    /* unmasked ping, masked pong, 256 bytes and 64 KiB binary */
    assert_int_equal(ws_parse_header(RAW("\x89\x05Hello"), &fi, &err), 2);
    assert_int_equal(fi.opcode, WS_OP_PING);
    assert_int_equal(
        ws_parse_header(RAW("\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"), &fi, &err), 6);
    assert_int_equal(fi.opcode, WS_OP_PONG);
    assert_int_equal(ws_parse_header(RAW("\x82\x7E\x01\x00"), &fi, &err), 4);
    assert_true(fi.payload_len == 256);
    assert_int_equal(ws_parse_header(RAW("\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00"), &fi, &err),
                     10);
    assert_true(fi.payload_len == 65536);
}

/* ------------------------------------------------------------------------
 * Masking
 * ------------------------------------------------------------------------ */

static void test_mask(void **state)
{
    (void)state;
    uint8_t p[5] = {'H', 'e', 'l', 'l', 'o'};
    ws_mask_bytes(p, 5, key_a, 0);
    assert_memory_equal(p, "\x7f\x9f\x4d\x51\x58", 5);
    ws_mask_bytes(p, 5, key_a, 0);
    assert_memory_equal(p, "Hello", 5);

    /* Masking in pieces with running offsets equals masking in one go. */
    uint8_t whole[64], part[64];
    for (size_t i = 0; i < sizeof(whole); i++)
        whole[i] = part[i] = (uint8_t)(i * 7 + 1);
    ws_mask_bytes(whole, sizeof(whole), key_a, 0);
    for (size_t a = 0; a <= sizeof(part); a++) {
        uint8_t t[64];
        memcpy(t, part, sizeof(t));
        ws_mask_bytes(t, a, key_a, 0);
        ws_mask_bytes(t + a, sizeof(t) - a, key_a, a);
        assert_memory_equal(t, whole, sizeof(t));
    }
    /* The key index is offset % 4, also for offsets beyond 32 bits. */
    for (uint64_t off = 0; off < 8; off++) {
        uint8_t b = 0;
        ws_mask_bytes(&b, 1, key_a, off + (1ull << 40));
        assert_int_equal(b, key_a[off % 4]);
    }
    ws_mask_bytes(NULL, 0, key_a, 3); /* empty range touches nothing */
}

/* ------------------------------------------------------------------------
 * Streams
 * ------------------------------------------------------------------------ */

struct report {
    size_t off;   /* stream offset of the control frame */
    size_t total; /* header + payload */
    uint8_t opcode;
};

/* Which frames of a built stream are masked: the stream follows any mix. */
enum { MASK_NONE, MASK_ALL, MASK_ALTERNATE, MASK_MODES };

/* A stream under construction, with the reports it must produce. */
struct sbuild {
    uint8_t *b;
    size_t len, cap;
    int mask_mode; /* MASK_NONE, MASK_ALL or MASK_ALTERNATE */
    struct report rep[MAX_REPORTS];
    size_t nrep;
    uint64_t frames;
};

static void sb_init(struct sbuild *sb, int mask_mode)
{
    memset(sb, 0, sizeof(*sb));
    sb->mask_mode = mask_mode;
}

static void sb_put(struct sbuild *sb, const void *p, size_t n)
{
    if (sb->len + n > sb->cap) {
        sb->cap = (sb->len + n) * 2;
        sb->b = realloc(sb->b, sb->cap);
        assert_non_null(sb->b);
    }
    memcpy(sb->b + sb->len, p, n);
    sb->len += n;
}

/*
 * Append a frame written by hand (minimal length encoding, masked as the
 * stream's mask_mode says) with a patterned payload.
 */
static void sb_frame(struct sbuild *sb, int fin, unsigned rsv, unsigned op, uint64_t plen)
{
    uint8_t h[WS_MAX_HEADER];
    size_t n = 2, start = sb->len;
    h[0] = (uint8_t)((fin ? 0x80 : 0) | rsv << 4 | op);
    if (plen < 126) {
        h[1] = (uint8_t)plen;
    } else if (plen <= 0xFFFF) {
        h[1] = 126;
        h[2] = (uint8_t)(plen >> 8);
        h[3] = (uint8_t)plen;
        n = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)(plen >> (56 - 8 * i));
        n = 10;
    }
    if (sb->mask_mode == MASK_ALL || (sb->mask_mode == MASK_ALTERNATE && sb->frames % 2)) {
        h[1] |= 0x80;
        memcpy(h + n, key_a, 4);
        n += 4;
    }
    sb_put(sb, h, n);
    for (uint64_t i = 0; i < plen; i++) {
        uint8_t c = (uint8_t)(i * 13 + op);
        sb_put(sb, &c, 1);
    }
    if (op & 8) {
        assert_true(sb->nrep < MAX_REPORTS);
        sb->rep[sb->nrep++] = (struct report){start, n + (size_t)plen, (uint8_t)op};
    }
    sb->frames++;
}

struct outcome {
    struct report rep[MAX_REPORTS];
    size_t nrep;
    enum ws_frame_error err;
    uint64_t frames;
    size_t held;  /* bytes held back at the end (an incomplete control frame) */
    int boundary; /* ws_stream_at_boundary() at the end */
    int in_message;
};

/*
 * The tunnel model. Bytes of data[] arrive up to each cut in turn (the last
 * cut is `size`). `skip` = drop reported control frames, else feed them again.
 */
static void run_stream(const uint8_t *data, size_t size, const size_t *cuts, size_t ncuts, int skip,
                       struct outcome *o)
{
    struct ws_stream st;
    size_t start = 0, avail = 0, next_cut = 0;

    memset(o, 0, sizeof(*o));
    ws_stream_init(&st);
    for (;;) {
        int reported = 0;
        if (start < avail) {
            struct ws_frame_info ctl;
            size_t tot = 12345, n = avail - start;
            uint8_t *p = dup_exact(data + start, n);
            ssize_t r = ws_stream_feed(&st, p, n, &ctl, &tot);
            free(p);
            if (r < 0) {
                assert_int_equal(r, -1);
                assert_int_not_equal(st.err, WS_FE_NONE);
                /* sticky */
                assert_int_equal(ws_stream_feed(&st, data, 1, &ctl, &tot), -1);
                o->err = st.err;
                break;
            }
            assert_true((size_t)r <= n);
            if ((size_t)r == n) {
                assert_int_equal(tot, 0);
                start = avail;
            } else {
                /* a control frame starts at r: the stream sits at its start */
                assert_true(ws_stream_at_boundary(&st));
                start += (size_t)r;
                if (tot) {
                    assert_true(tot <= n - (size_t)r);
                    assert_true(ctl.opcode & 8);
                    assert_int_equal(tot, ctl.header_len + ctl.payload_len);
                    assert_true(o->nrep < MAX_REPORTS);
                    /* a frame is reported once: feeding again must not loop */
                    if (o->nrep && o->rep[o->nrep - 1].off == start)
                        fail_msg("control frame at %zu reported twice", start);
                    o->rep[o->nrep++] = (struct report){start, tot, ctl.opcode};
                    reported = 1;
                    if (skip) {
                        ws_stream_skip(&st, tot);
                        start += tot;
                    }
                } else {
                    assert_int_equal(ctl.opcode, 0);
                }
            }
        }
        if (reported)
            continue; /* feed on from the frame (or after it) right away */
        if (avail == size)
            break;
        assert_true(next_cut < ncuts);
        assert_true(cuts[next_cut] > avail && cuts[next_cut] <= size);
        avail = cuts[next_cut++];
    }
    o->frames = st.frames;
    o->held = size - start;
    o->boundary = ws_stream_at_boundary(&st);
    o->in_message = st.in_message;
}

static void same_outcome(const struct outcome *want, const struct outcome *got, const char *how)
{
    if (want->err != got->err)
        fail_msg("%s: error %s, want %s", how, ws_frame_error_str(got->err),
                 ws_frame_error_str(want->err));
    if (want->nrep != got->nrep)
        fail_msg("%s: %zu reports, want %zu", how, got->nrep, want->nrep);
    for (size_t i = 0; i < want->nrep; i++)
        if (memcmp(&want->rep[i], &got->rep[i], sizeof(struct report)) != 0)
            fail_msg("%s: report %zu is off %zu total %zu op %u, want %zu %zu %u", how, i,
                     got->rep[i].off, got->rep[i].total, got->rep[i].opcode, want->rep[i].off,
                     want->rep[i].total, want->rep[i].opcode);
    if (want->err == WS_FE_NONE) {
        if (want->frames != got->frames || want->held != got->held ||
            want->boundary != got->boundary || want->in_message != got->in_message)
            fail_msg("%s: frames %llu held %zu boundary %d in_message %d, want %llu %zu %d %d", how,
                     (unsigned long long)got->frames, got->held, got->boundary, got->in_message,
                     (unsigned long long)want->frames, want->held, want->boundary,
                     want->in_message);
    }
}

/*
 * Run a stream whole, byte by byte, split in two at every point (when
 * `every_split`) and at `nrand` random cut sets, dropping and re-feeding
 * control frames; every run must match `want`.
 */
static void check_all_splits(const uint8_t *data, size_t size, const struct outcome *want,
                             int every_split, int nrand)
{
    size_t *cuts = malloc((size + 1) * sizeof(*cuts));
    assert_non_null(cuts);
    struct outcome got;
    char how[96];

    for (int skip = 0; skip < 2; skip++) {
        cuts[0] = size;
        run_stream(data, size, cuts, size ? 1 : 0, skip, &got);
        snprintf(how, sizeof(how), "whole (skip=%d)", skip);
        same_outcome(want, &got, how);

        for (size_t i = 0; i < size; i++)
            cuts[i] = i + 1;
        run_stream(data, size, cuts, size, skip, &got);
        snprintf(how, sizeof(how), "byte by byte (skip=%d)", skip);
        same_outcome(want, &got, how);

        for (size_t k = 1; every_split && k < size; k++) {
            cuts[0] = k;
            cuts[1] = size;
            run_stream(data, size, cuts, 2, skip, &got);
            snprintf(how, sizeof(how), "split at %zu (skip=%d)", k, skip);
            same_outcome(want, &got, how);
        }

        for (int r = 0; r < nrand; r++) {
            uint64_t seed = rng_state;
            size_t n = 0, pos = 0;
            size_t maxstep = 1 + (size_t)(rng() % 300);
            while (pos < size) {
                size_t step = 1 + (size_t)(rng() % maxstep);
                pos = pos + step > size ? size : pos + step;
                cuts[n++] = pos;
            }
            run_stream(data, size, cuts, n, skip, &got);
            snprintf(how, sizeof(how), "random cuts seed %llx (skip=%d)", (unsigned long long)seed,
                     skip);
            same_outcome(want, &got, how);
        }
    }
    free(cuts);
}

static void expect_from(const struct sbuild *sb, struct outcome *want)
{
    memset(want, 0, sizeof(*want));
    memcpy(want->rep, sb->rep, sizeof(sb->rep));
    want->nrep = sb->nrep;
    want->frames = sb->frames;
    want->boundary = 1;
}

/* Text, fragmented binary with interleaved ping and pong, close. */
static void build_mixed(struct sbuild *sb, int mask_mode)
{
    sb_init(sb, mask_mode);
    sb_frame(sb, 1, 0, WS_OP_TEXT, 5);
    sb_frame(sb, 0, 0, WS_OP_BINARY, 130); /* 16-bit length, opens a message */
    sb_frame(sb, 1, 0, WS_OP_PING, 4);
    sb_frame(sb, 0, 0, WS_OP_CONT, 0);
    sb_frame(sb, 1, 0, WS_OP_PONG, 0);
    sb_frame(sb, 0, 4, WS_OP_CONT, 1); /* RSV1 is not an error */
    sb_frame(sb, 1, 0, WS_OP_PING, 125);
    sb_frame(sb, 1, 0, WS_OP_CONT, 300); /* closes the message */
    sb_frame(sb, 1, 4, WS_OP_TEXT, 0);
    sb_frame(sb, 1, 0, WS_OP_PONG, 3);
    sb_frame(sb, 1, 0, WS_OP_PONG, 1); /* two control frames back to back */
    sb_frame(sb, 1, 0, WS_OP_CLOSE, 2);
}

static void test_stream_mixed(void **state)
{
    (void)state;
    for (int mode = 0; mode < MASK_MODES; mode++) {
        struct sbuild sb;
        struct outcome want;
        build_mixed(&sb, mode);
        expect_from(&sb, &want);
        assert_int_equal(want.nrep, 6);
        check_all_splits(sb.b, sb.len, &want, 1, 300);
        free(sb.b);
    }
}

/* 64-bit lengths, with control frames around a large fragmented message. */
static void test_stream_large(void **state)
{
    (void)state;
    for (int mode = 0; mode < MASK_MODES; mode++) {
        struct sbuild sb;
        struct outcome want;
        sb_init(&sb, mode);
        sb_frame(&sb, 1, 0, WS_OP_PING, 0);
        sb_frame(&sb, 0, 0, WS_OP_BINARY, 70000);
        sb_frame(&sb, 1, 0, WS_OP_PONG, 10);
        sb_frame(&sb, 1, 0, WS_OP_CONT, 65536);
        sb_frame(&sb, 1, 0, WS_OP_TEXT, 65535);
        sb_frame(&sb, 1, 0, WS_OP_CLOSE, 0);
        expect_from(&sb, &want);
        check_all_splits(sb.b, sb.len, &want, 0, 40);
        free(sb.b);
    }
}

/* A stream cut anywhere: ends inside a frame, or in a control frame held back. */
static void check_truncated(int mask_mode)
{
    struct sbuild sb;
    build_mixed(&sb, mask_mode);
    for (size_t end = 0; end < sb.len; end++) {
        struct outcome want;
        size_t cuts[1] = {end};
        /* expectation from a whole-buffer run, then every split must agree */
        run_stream(sb.b, end, cuts, end ? 1 : 0, 1, &want);
        assert_int_equal(want.err, WS_FE_NONE);
        size_t nrep = 0;
        for (size_t i = 0; i < sb.nrep; i++)
            if (sb.rep[i].off + sb.rep[i].total <= end)
                nrep++;
        assert_int_equal(want.nrep, nrep);
        /* held back bytes are exactly an incomplete control frame's prefix */
        if (want.held) {
            int found = 0;
            for (size_t i = 0; i < sb.nrep; i++)
                found |= sb.rep[i].off == end - want.held && end < sb.rep[i].off + sb.rep[i].total;
            assert_true(found);
        }
        check_all_splits(sb.b, end, &want, end < 200, 4);
    }
    free(sb.b);
}

static void test_stream_truncated(void **state)
{
    (void)state;
    for (int mode = 0; mode < MASK_MODES; mode++)
        check_truncated(mode);
}

/* An incomplete control frame is reported with total 0 and not consumed. */
static void test_stream_incomplete_control(void **state)
{
    (void)state;
    static const uint8_t s[] = "\x81\x02hi\x89\x03"
                               "abc";
    const size_t ping_at = 4, full = sizeof(s) - 1;
    for (size_t end = ping_at + 1; end < full; end++) {
        struct ws_stream st;
        struct ws_frame_info ctl;
        size_t tot = 99;
        ws_stream_init(&st);
        uint8_t *p = dup_exact(s, end);
        assert_int_equal(ws_stream_feed(&st, p, end, &ctl, &tot), ping_at);
        assert_int_equal(tot, 0);
        assert_int_equal(st.frames, 1);
        assert_true(ws_stream_at_boundary(&st));
        /* the same bytes again: same answer, no state change */
        assert_int_equal(ws_stream_feed(&st, p + ping_at, end - ping_at, &ctl, &tot), 0);
        assert_int_equal(tot, 0);
        assert_int_equal(st.frames, 1);
        free(p);
        /* all of it: complete report at 0, then passed over */
        p = dup_exact(s + ping_at, full - ping_at);
        assert_int_equal(ws_stream_feed(&st, p, full - ping_at, &ctl, &tot), 0);
        assert_int_equal(tot, 5);
        assert_int_equal(ctl.opcode, WS_OP_PING);
        assert_int_equal(ws_stream_feed(&st, p, full - ping_at, &ctl, &tot), full - ping_at);
        assert_int_equal(st.frames, 2);
        free(p);
    }
}

/* Feeding again from a reported frame passes over it, and only it. */
static void test_stream_refeed(void **state)
{
    (void)state;
    static const uint8_t s[] = "\x89\x00\x8a\x01x\x81\x01y\x88\x00";
    const size_t len = sizeof(s) - 1;
    struct ws_stream st;
    struct ws_frame_info ctl;
    size_t tot;

    ws_stream_init(&st);
    assert_int_equal(ws_stream_feed(&st, s, len, &ctl, &tot), 0);
    assert_int_equal(tot, 2);
    assert_int_equal(ctl.opcode, WS_OP_PING);
    assert_int_equal(st.ctl_reported, 2);
    /* an empty feed keeps the memory */
    assert_int_equal(ws_stream_feed(&st, s, 0, &ctl, &tot), 0);
    assert_int_equal(st.ctl_reported, 2);
    /* passes the ping, stops at the pong right behind it */
    assert_int_equal(ws_stream_feed(&st, s, len, &ctl, &tot), 2);
    assert_int_equal(tot, 3);
    assert_int_equal(ctl.opcode, WS_OP_PONG);
    assert_int_equal(st.frames, 1);
    /* passes the pong and the text frame, stops at the close */
    assert_int_equal(ws_stream_feed(&st, s + 2, len - 2, &ctl, &tot), 6);
    assert_int_equal(ctl.opcode, WS_OP_CLOSE);
    assert_int_equal(st.frames, 3);
    /* the frame may be fed again in pieces */
    assert_int_equal(ws_stream_feed(&st, s + 8, 1, &ctl, &tot), 1);
    assert_false(ws_stream_at_boundary(&st));
    assert_int_equal(ws_stream_feed(&st, s + 9, 1, &ctl, &tot), 1);
    assert_true(ws_stream_at_boundary(&st));
    assert_int_equal(st.frames, 4);
    assert_int_equal(st.ctl_reported, 0);

    /* a re-feed with only part of the frame, then the rest: no second report */
    ws_stream_init(&st);
    assert_int_equal(ws_stream_feed(&st, s + 2, 3, &ctl, &tot), 0);
    assert_int_equal(tot, 3);
    assert_int_equal(ws_stream_feed(&st, s + 2, 1, &ctl, &tot), 1);
    assert_int_equal(ws_stream_feed(&st, s + 3, 5, &ctl, &tot), 5);
    assert_int_equal(st.frames, 2);
    assert_true(ws_stream_at_boundary(&st));
}

static void test_stream_skip(void **state)
{
    (void)state;
    static const uint8_t s[] = "\x01\x01"
                               "a\x89\x02pp\x80\x01"
                               "b\x8a\x00";
    const size_t len = sizeof(s) - 1;
    struct ws_stream st;
    struct ws_frame_info ctl;
    size_t tot;

    ws_stream_init(&st);
    assert_int_equal(ws_stream_feed(&st, s, len, &ctl, &tot), 3);
    assert_int_equal(tot, 4);
    assert_true(st.in_message);
    ws_stream_skip(&st, tot);
    assert_int_equal(st.frames, 2);
    assert_int_equal(st.ctl_reported, 0);
    assert_true(ws_stream_at_boundary(&st));
    /* the fragmented message continues after the dropped ping */
    assert_int_equal(ws_stream_feed(&st, s + 7, len - 7, &ctl, &tot), 3);
    assert_int_equal(ctl.opcode, WS_OP_PONG);
    assert_false(st.in_message);
    ws_stream_skip(&st, tot);
    assert_int_equal(st.frames, 4);
    assert_true(ws_stream_at_boundary(&st));
}

/* ws_stream_pass() accounts everything, control frames included. */
static void test_stream_pass(void **state)
{
    (void)state;
    static const uint8_t s[] = "\x81\x02hi\x89\x03"
                               "abc\x8a\x00";
    const size_t len = sizeof(s) - 1;
    struct ws_stream st;
    struct ws_frame_info ctl;
    size_t tot;

    /* the held start of an incomplete ping is passed; the rest is data */
    for (size_t cut = 5; cut < 9; cut++) {
        ws_stream_init(&st);
        assert_int_equal(ws_stream_feed(&st, s, cut, &ctl, &tot), 4);
        assert_int_equal(tot, 0);
        assert_int_equal(ws_stream_pass(&st, s + 4, cut - 4), cut - 4);
        assert_false(ws_stream_at_boundary(&st));
        assert_int_equal(ws_stream_feed(&st, s + cut, len - cut, &ctl, &tot), 9 - cut);
        assert_int_equal(ctl.opcode, WS_OP_PONG);
        assert_int_equal(st.frames, 2);
        assert_int_equal(ws_stream_feed(&st, s + 9, len - 9, &ctl, &tot), len - 9);
        assert_int_equal(st.frames, 3);
    }
    /* passing a reported frame clears the memory of the report */
    ws_stream_init(&st);
    assert_int_equal(ws_stream_feed(&st, s + 4, 5, &ctl, &tot), 0);
    assert_int_equal(ws_stream_pass(&st, s + 4, 5), 5);
    assert_int_equal(st.ctl_reported, 0);
    assert_int_equal(st.frames, 1);

    /* the mixed stream passed in random pieces: same frames and state */
    struct sbuild sb;
    build_mixed(&sb, MASK_ALTERNATE);
    for (int r = 0; r < 200; r++) {
        ws_stream_init(&st);
        size_t pos = 0, maxstep = 1 + (size_t)(rng() % 64);
        while (pos < sb.len) {
            size_t n = 1 + (size_t)(rng() % maxstep);
            if (n > sb.len - pos)
                n = sb.len - pos;
            uint8_t *p = dup_exact(sb.b + pos, n);
            assert_int_equal(ws_stream_pass(&st, p, n), n);
            free(p);
            pos += n;
        }
        assert_true(st.frames == sb.frames && ws_stream_at_boundary(&st) && !st.in_message);
    }
    free(sb.b);
}

struct err_vec {
    const uint8_t *raw;
    size_t len;
    enum ws_frame_error err;
    size_t nrep; /* control frames reported before the error */
};

static const struct err_vec stream_errors[] = {
    /* continuation without a message */
    {RAW("\x80\x00"), WS_FE_BAD_CONTINUATION, 0},
    {RAW("\x00\x01x"), WS_FE_BAD_CONTINUATION, 0},
    /* a new data frame while a message is open */
    {RAW("\x01\x00\x81\x00"), WS_FE_BAD_CONTINUATION, 0},
    {RAW("\x02\x01z\x89\x00\x01\x00"), WS_FE_BAD_CONTINUATION, 1},
    /* continuation after the message was finished */
    {RAW("\x01\x00\x80\x00\x80\x00"), WS_FE_BAD_CONTINUATION, 0},
    {RAW("\x01\x00\x8a\x00\x00\x00\x80\x01x\x00\x00"), WS_FE_BAD_CONTINUATION, 1},
    /* header errors after good frames, some split inside headers */
    {RAW("\x81\x01"
         "a\x83\x00"),
     WS_FE_RESERVED_OPCODE, 0},
    {RAW("\x89\x00\x09\x00"), WS_FE_CONTROL_FRAGMENTED, 1},
    {RAW("\x82\x7e\x00\x7d"), WS_FE_BAD_LENGTH, 0},
    {RAW("\x81\x00\x82\x7f\x00\x00\x00\x00\x00\x00\xff\xff"), WS_FE_BAD_LENGTH, 0},
    {RAW("\x81\x00\x82\x7f\x80"), WS_FE_BAD_LENGTH, 0},
    {RAW("\x89\x7e\x00\x7e"), WS_FE_CONTROL_TOO_LONG, 0},
    /* masked and unmasked frames mixed: only the fragmentation is wrong */
    {RAW("\x01\x80\x01\x02\x03\x04\x89\x00\x81\x00"), WS_FE_BAD_CONTINUATION, 1},
    {RAW("\x81\x00\x8a\x80\x01\x02\x03\x04\x80\x81\x01\x02\x03\x04x"),
     WS_FE_BAD_CONTINUATION, 1},
};

static void test_stream_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(stream_errors) / sizeof(stream_errors[0]); i++) {
        const struct err_vec *v = &stream_errors[i];
        struct outcome want;
        size_t cuts[1] = {v->len};
        run_stream(v->raw, v->len, cuts, 1, 0, &want);
        if (want.err != v->err || want.nrep != v->nrep)
            fail_msg("stream error %zu: got %s after %zu reports, want %s after %zu", i,
                     ws_frame_error_str(want.err), want.nrep, ws_frame_error_str(v->err), v->nrep);
        check_all_splits(v->raw, v->len, &want, 1, 20);

        /* ws_stream_pass() finds the same violation, byte by byte too */
        struct ws_stream st;
        ws_stream_init(&st);
        assert_int_equal(ws_stream_pass(&st, v->raw, v->len), -1);
        assert_int_equal(st.err, v->err);
        ws_stream_init(&st);
        ssize_t r = 0;
        for (size_t k = 0; k < v->len && r >= 0; k++)
            r = ws_stream_pass(&st, v->raw + k, 1);
        assert_int_equal(r, -1);
        assert_int_equal(st.err, v->err);
        assert_int_equal(ws_stream_pass(&st, v->raw, 1), -1);
    }
}

/* ------------------------------------------------------------------------
 * Building control frames
 * ------------------------------------------------------------------------ */

/* Parse a built control frame back and unmask its payload into `payload`. */
static size_t parse_built(const uint8_t *f, size_t flen, const uint8_t *mask, unsigned op,
                          uint8_t *payload)
{
    struct ws_frame_info fi;
    enum ws_frame_error err;
    ssize_t h = ws_parse_header(f, flen, &fi, &err);
    assert_int_equal(h, mask ? 6 : 2);
    assert_int_equal(fi.fin, 1);
    assert_int_equal(fi.rsv, 0);
    assert_int_equal(fi.opcode, op);
    assert_int_equal(fi.masked, mask != NULL);
    if (mask)
        assert_memory_equal(fi.mask, mask, 4);
    assert_int_equal((size_t)h + fi.payload_len, flen);
    memcpy(payload, f + h, (size_t)fi.payload_len);
    if (mask)
        ws_mask_bytes(payload, (size_t)fi.payload_len, mask, 0);

    /* a stream reports it as one complete control frame */
    struct ws_stream st;
    struct ws_frame_info ctl;
    size_t tot;
    ws_stream_init(&st);
    assert_int_equal(ws_stream_feed(&st, f, flen, &ctl, &tot), 0);
    assert_int_equal(tot, flen);
    return (size_t)fi.payload_len;
}

static void test_build_ping(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 5, 124, 125, 126, 300};
    uint8_t src[300], out[6 + 125], got[125];
    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (uint8_t)(i ^ 0x5A);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        for (int m = 0; m < 2; m++) {
            const uint8_t *mask = m ? key_a : NULL;
            size_t want = sizes[i] > 125 ? 125 : sizes[i];
            size_t n = ws_build_ping(out, src, sizes[i], mask);
            assert_int_equal(n, (m ? 6 : 2) + want);
            assert_int_equal(parse_built(out, n, mask, WS_OP_PING, got), want);
            assert_memory_equal(got, src, want);
        }
    /* NULL payload with length 0 */
    assert_int_equal(ws_build_ping(out, NULL, 0, NULL), 2);
    assert_memory_equal(out, "\x89\x00", 2);
    /* RFC 6455 §5.7: masked "Hello" ping bytes */
    assert_int_equal(ws_build_ping(out, (const uint8_t *)"Hello", 5, key_a), 11);
    assert_memory_equal(out, "\x89\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
}

struct close_vec {
    uint16_t code;
    size_t ascii;       /* reason = this many 'a' ... */
    const char *suffix; /* ... followed by this */
    size_t want_reason; /* bytes of reason kept */
};

static const struct close_vec close_cases[] = {
    {1000, 0, "", 0},
    {1001, 0, "going away", 10},
    {1011, 123, "", 123},
    {1011, 200, "", 123},
    {1000, 122, "\xc3\xa9", 122},     /* 2-byte char would end at 124 */
    {1000, 121, "\xc3\xa9", 123},     /* ... ends exactly at 123 */
    {1000, 121, "\xe2\x82\xac", 121}, /* 3-byte char */
    {1000, 120, "\xe2\x82\xac", 123},
    {1000, 119, "\xf0\x9f\x98\x80", 123}, /* 4-byte char */
    {1000, 120, "\xf0\x9f\x98\x80", 120},
    {1000, 122, "\xf0\x9f\x98\x80xyz", 122},
    {4999, 0, "\xe2\x82\xac\xe2\x82\xac", 6},
    /* invalid UTF-8: at most 3 continuation bytes are backed over */
    {1000, 118, "\x80\x80\x80\x80\x80\x80\x80\x80", 120},
};

static void test_build_close(void **state)
{
    (void)state;
    uint8_t out[6 + 125], got[125];
    char reason[300];
    for (size_t i = 0; i < sizeof(close_cases) / sizeof(close_cases[0]); i++) {
        const struct close_vec *c = &close_cases[i];
        memset(reason, 'a', c->ascii);
        strcpy(reason + c->ascii, c->suffix);
        for (int m = 0; m < 2; m++) {
            const uint8_t *mask = m ? key_a : NULL;
            size_t n = ws_build_close(out, c->code, reason, mask);
            size_t plen = parse_built(out, n, mask, WS_OP_CLOSE, got);
            if (plen != 2 + c->want_reason)
                fail_msg("close case %zu: payload %zu, want %zu", i, plen, 2 + c->want_reason);
            assert_int_equal(got[0] << 8 | got[1], c->code);
            assert_memory_equal(got + 2, reason, c->want_reason);
        }
    }
    /* NULL reason; code 0 = no status, empty payload */
    assert_int_equal(ws_build_close(out, 1000, NULL, NULL), 4);
    assert_memory_equal(out, "\x88\x02\x03\xe8", 4);
    assert_int_equal(ws_build_close(out, 0, "ignored", NULL), 2);
    assert_memory_equal(out, "\x88\x00", 2);
    assert_int_equal(ws_build_close(out, 0, NULL, key_a), 6);
    assert_memory_equal(out, "\x88\x80\x37\xfa\x21\x3d", 6);
}

/* ------------------------------------------------------------------------
 * Handshake
 * ------------------------------------------------------------------------ */

static void test_accept(void **state)
{
    (void)state;
    /* RFC 6455 §1.3 first; the others computed with Python hashlib/base64 */
    static const char *const vec[][2] = {
        {"dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
        {"x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk="},
        {"AAAAAAAAAAAAAAAAAAAAAA==", "ICX+Yqv66kxgM0FcWaLWlFLwTAI="},
        {"/////////////////////w==", "XXpj4jYzLM2yUE0C7TIgMwTQh2g="},
        {"+/+/+/+/+/+/+/+/+/+/+/==", "d2eRHn4P8v3oIXxyXLb4lHM2A90="},
        /* non-zero unused bits in the last character are accepted */
        {"AQIDBAUGBwgJCgsMDQ4PEC==", "OfS0wDaT5NoxF2gqm7Zj2YtetzM="},
    };
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        char out[29];
        memset(out, 'X', sizeof(out));
        /* exact-size copy without NUL: the key is a slice */
        uint8_t *k = dup_exact((const uint8_t *)vec[i][0], 24);
        assert_true(ws_key_valid((const char *)k, 24));
        assert_int_equal(ws_accept_for_key((const char *)k, 24, out), 0);
        assert_string_equal(out, vec[i][1]);
        free(k);
    }

    static const char *const bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",   /* 23 */
        "dGhlIHNhbXBsZSBub25jZQ===", /* 25 */
        "dGhlIHNhbXBsZSBub25jZQ",    /* no padding */
        "dGhlIHNhbXBsZSBub25jZQAA",  /* 24 chars, no padding */
        "dGhlIHNhbXBsZSBub25jZQA=",  /* 17 bytes */
        "dGhlIHNhbXBsZSBub25jZ===",  /* 15 bytes */
        "dGhlIHNhbXBsZSBub25jZ-==",  /* url-safe alphabet */
        "dGhlIHNhbXBsZSBub25jZ_==",
        "dGhlIHNhbXBsZSBub25j ZQ=",
        " dGhlIHNhbXBsZSBub25jZQ==",
        "dGhlIHNhbXBs=SBub25jZQ==",
        "========================",
        "dGhlIHNhbXBsZSBub25jZQ=\xff",
        "dGhlIHNhbXBsZSBub25jZ\xc3\xa9=",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[29] = "untouched";
        size_t n = strlen(bad[i]);
        if (ws_key_valid(bad[i], n))
            fail_msg("bad key %zu accepted", i);
        assert_int_equal(ws_accept_for_key(bad[i], n, out), -1);
    }
    /* an embedded NUL within the 24 bytes */
    assert_false(ws_key_valid("dGhlIHNhbXBs\0SBub25jZQ==", 24));
    assert_false(ws_key_valid(NULL, 0));
}

static void test_error_str(void **state)
{
    (void)state;
    const char *seen[WS_FE_TOO_BIG + 1];
    for (int e = WS_FE_NONE; e <= WS_FE_TOO_BIG; e++) {
        const char *s = ws_frame_error_str((enum ws_frame_error)e);
        assert_non_null(s);
        assert_true(strlen(s) > 0 && strlen(s) < 40);
        for (const char *c = s; *c; c++)
            assert_true((*c >= 'a' && *c <= 'z') || *c == ' ');
        for (int j = 0; j < e; j++)
            assert_string_not_equal(s, seen[j]);
        seen[e] = s;
    }
    assert_non_null(ws_frame_error_str((enum ws_frame_error)99));
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_rfc_examples),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_stream_mixed),
        cmocka_unit_test(test_stream_large),
        cmocka_unit_test(test_stream_truncated),
        cmocka_unit_test(test_stream_incomplete_control),
        cmocka_unit_test(test_stream_refeed),
        cmocka_unit_test(test_stream_skip),
        cmocka_unit_test(test_stream_pass),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_build_ping),
        cmocka_unit_test(test_build_close),
        cmocka_unit_test(test_accept),
        cmocka_unit_test(test_error_str),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
