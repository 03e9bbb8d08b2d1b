/*
 * fuzz_ws_frame.c - libFuzzer target for proxy/ws_frame.c.
 *
 * Input: byte 0 holds options (bit 1: mask the built frames; it and the
 * other bits seed the splits), the remaining bytes are one direction of a
 * WebSocket stream (they double as key, ping payload and close reason).
 * Either direction alike: frames are followed whatever their MASK bit.
 *
 * Checked properties:
 *   - ws_parse_header(): result range, fields consistent with the bytes
 *     (minimal length encoding, control frame limits; fi.masked is the MASK
 *     bit and the header holds the 4-byte key iff it is set), the prefix
 *     property (a prefix gives 0 or the same error as the whole), and that
 *     flipping the MASK bit only moves the end of the header by 4 bytes.
 *   - ws_stream_feed(): a tunnel model feeds the stream whole, split in two,
 *     at random cuts and byte by byte, dropping (ws_stream_skip) or re-feeding
 *     reported control frames. Every run must report the same control frames
 *     at the same stream offsets, end in the same state, and agree with a
 *     plain sequential walk over the whole buffer (the reference). Offsets
 *     and lengths returned must lie within the range fed.
 *   - ws_build_ping()/ws_build_close() parse back to what was asked for,
 *     with the close reason cut at a UTF-8 character boundary.
 *   - ws_mask_bytes() is an involution and split-consistent; ws_key_valid()
 *     matches a direct statement of the rule; accepts are 28 base64 chars.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/ws_frame.h"

/* Invariant violations abort so libFuzzer records the input as a crash. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct report {
    size_t off, total;
    uint8_t opcode;
};

struct outcome {
    struct report *rep; /* malloc'd, `cap` entries */
    size_t nrep, cap;
    enum ws_frame_error err;
    uint64_t frames;
    size_t held; /* trailing bytes of an incomplete control frame */
    int boundary, in_message;
};

/* Room for one report per 2 bytes: the shortest control frame. */
static void outcome_init(struct outcome *o, size_t n)
{
    memset(o, 0, sizeof(*o));
    o->cap = n / 2 + 1;
    o->rep = malloc(o->cap * sizeof(*o->rep));
    CHECK(o->rep != NULL);
}

static void outcome_reset(struct outcome *o)
{
    o->nrep = 0;
    o->err = WS_FE_NONE;
    o->frames = 0;
    o->held = 0;
    o->boundary = o->in_message = 0;
}

static void add_report(struct outcome *o, size_t off, size_t total, uint8_t op)
{
    CHECK(o->nrep < o->cap);
    o->rep[o->nrep++] = (struct report){off, total, op};
}

/* The frame sequence walked directly over the whole buffer. */
static void reference(const uint8_t *d, size_t n, struct outcome *o)
{
    size_t pos = 0;
    int in_msg = 0;
    o->boundary = 1;
    while (pos < n) {
        struct ws_frame_info fi;
        enum ws_frame_error err = WS_FE_NONE;
        int control = (d[pos] & 0x08) != 0;
        ssize_t rc = ws_parse_header(d + pos, n - pos, &fi, &err);
        if (rc < 0) {
            o->err = err;
            break;
        }
        if (rc == 0) {
            if (control)
                o->held = n - pos;
            else
                o->boundary = 0;
            break;
        }
        if (fi.opcode == WS_OP_CONT) {
            if (!in_msg) {
                o->err = WS_FE_BAD_CONTINUATION;
                break;
            }
            in_msg = !fi.fin;
        } else if (!control) {
            if (in_msg) {
                o->err = WS_FE_BAD_CONTINUATION;
                break;
            }
            in_msg = !fi.fin;
        }
        uint64_t left = n - pos - (size_t)rc;
        if (fi.payload_len > left) {
            if (control)
                o->held = n - pos;
            else
                o->boundary = 0;
            break;
        }
        if (control)
            add_report(o, pos, (size_t)rc + (size_t)fi.payload_len, fi.opcode);
        pos += (size_t)rc + (size_t)fi.payload_len;
        o->frames++;
    }
    o->in_message = in_msg;
}

/*
 * The tunnel model: bytes arrive up to each cut (cuts[] ascending, last =
 * size); an incomplete control frame is held until more bytes arrive; a
 * complete one is dropped (`skip`) or fed again.
 */
static void run(const uint8_t *d, size_t size, const size_t *cuts, size_t ncuts, int skip,
                struct outcome *o)
{
    struct ws_stream st;
    size_t start = 0, avail = 0, next = 0;

    ws_stream_init(&st);
    for (;;) {
        int reported = 0;
        if (start < avail) {
            struct ws_frame_info ctl;
            size_t tot = 777, n = avail - start;
            uint8_t *p = malloc(n);
            CHECK(p != NULL);
            memcpy(p, d + start, n);
            ssize_t r = ws_stream_feed(&st, p, n, &ctl, &tot);
            free(p);
            if (r < 0) {
                CHECK(r == -1 && st.err != WS_FE_NONE);
                CHECK(ws_stream_feed(&st, d, 1, &ctl, &tot) == -1); /* sticky */
                o->err = st.err;
                break;
            }
            CHECK((size_t)r <= n);
            if ((size_t)r == n) {
                CHECK(tot == 0);
                start = avail;
            } else {
                CHECK(ws_stream_at_boundary(&st));
                CHECK(d[start + (size_t)r] & 0x08);
                start += (size_t)r;
                if (tot) {
                    CHECK(tot <= n - (size_t)r);
                    CHECK(tot <= WS_MAX_HEADER + WS_MAX_CONTROL_PAYLOAD);
                    CHECK(tot == ctl.header_len + ctl.payload_len);
                    CHECK(st.ctl_reported == tot);
                    /* the header reported is the one at that offset */
                    struct ws_frame_info again;
                    enum ws_frame_error e;
                    CHECK(ws_parse_header(d + start, tot, &again, &e) ==
                          (ssize_t)ctl.header_len);
                    CHECK(again.fin == ctl.fin && again.rsv == ctl.rsv &&
                          again.opcode == ctl.opcode && again.masked == ctl.masked &&
                          memcmp(again.mask, ctl.mask, 4) == 0 &&
                          again.payload_len == ctl.payload_len);
                    /* reported once only: re-feeding must make progress */
                    CHECK(o->nrep == 0 || o->rep[o->nrep - 1].off != start);
                    add_report(o, start, tot, ctl.opcode);
                    reported = 1;
                    if (skip) {
                        ws_stream_skip(&st, tot);
                        start += tot;
                    }
                } else {
                    CHECK(st.ctl_reported == 0);
                }
            }
        }
        if (reported)
            continue;
        if (avail == size)
            break;
        CHECK(next < ncuts && cuts[next] > avail && cuts[next] <= size);
        avail = cuts[next++];
    }
    o->frames = st.frames;
    o->held = o->err ? 0 : size - start;
    o->boundary = o->err ? 0 : ws_stream_at_boundary(&st);
    o->in_message = o->err ? 0 : st.in_message;
}

/* Account the stream with ws_stream_pass() in pieces ending at cuts[]. */
static void run_pass(const uint8_t *d, const size_t *cuts, size_t ncuts, const struct outcome *want)
{
    struct ws_stream st;
    size_t pos = 0;
    ssize_t r = 0;
    ws_stream_init(&st);
    for (size_t i = 0; i < ncuts && r >= 0; i++) {
        r = ws_stream_pass(&st, d + pos, cuts[i] - pos);
        CHECK(r == -1 || (size_t)r == cuts[i] - pos);
        pos = cuts[i];
    }
    CHECK(st.err == want->err && (r == -1) == (want->err != WS_FE_NONE));
    CHECK(st.frames == want->frames);
    if (want->err == WS_FE_NONE) {
        /* the held start of a control frame was accounted, not held */
        CHECK(ws_stream_at_boundary(&st) == (want->boundary && want->held == 0));
        CHECK(st.in_message == want->in_message);
    }
}

static void same(const struct outcome *a, const struct outcome *b)
{
    CHECK(a->err == b->err);
    CHECK(a->nrep == b->nrep);
    for (size_t i = 0; i < a->nrep; i++) {
        CHECK(a->rep[i].off == b->rep[i].off);
        CHECK(a->rep[i].total == b->rep[i].total);
        CHECK(a->rep[i].opcode == b->rep[i].opcode);
    }
    CHECK(a->frames == b->frames);
    if (a->err == WS_FE_NONE) {
        CHECK(a->held == b->held);
        CHECK(a->boundary == b->boundary);
        CHECK(a->in_message == b->in_message);
    }
}

/*
 * The MASK bit is reported, not judged: the same bytes with the bit flipped
 * give the same verdict, with the header 4 bytes longer (the key now follows
 * the length) or shorter. `rc`/`fi`/`err` are the verdict on s[0..n).
 */
static void check_mask_flip(const uint8_t *s, size_t n, ssize_t rc, const struct ws_frame_info *fi,
                            enum ws_frame_error err)
{
    /* A header is at most 14 bytes, so 18 decide any verdict, flipped too. */
    uint8_t f[WS_MAX_HEADER + 4];
    size_t m = n < sizeof(f) ? n : sizeof(f);
    if (m < 2)
        return;
    memcpy(f, s, m);
    f[1] ^= 0x80;
    struct ws_frame_info ff;
    enum ws_frame_error fe = WS_FE_NONE;
    ssize_t rf = ws_parse_header(f, m, &ff, &fe);
    if (rc < 0) {
        CHECK(rf == -1 && fe == err);
    } else if (rc == 0) {
        /* only dropping the key can complete a header that needed more */
        CHECK(rf == 0 || (rf > 0 && (s[1] & 0x80) && (size_t)rf + 4 > n));
    } else {
        size_t want = fi->masked ? (size_t)rc - 4 : (size_t)rc + 4;
        if (want > m) {
            CHECK(rf == 0);
            return;
        }
        CHECK(rf == (ssize_t)want && ff.header_len == want);
        CHECK(ff.masked == !fi->masked && ff.fin == fi->fin && ff.rsv == fi->rsv &&
              ff.opcode == fi->opcode && ff.payload_len == fi->payload_len);
        if (ff.masked)
            CHECK(memcmp(ff.mask, f + want - 4, 4) == 0);
    }
}

static void check_header(const uint8_t *s, size_t n)
{
    struct ws_frame_info fi;
    enum ws_frame_error err = WS_FE_NONE;
    ssize_t rc = ws_parse_header(s, n, &fi, &err);
    CHECK(rc == -1 || rc == 0 || (rc >= 2 && rc <= WS_MAX_HEADER && (size_t)rc <= n));
    if (rc > 0) {
        CHECK(fi.header_len == rc);
        CHECK(fi.masked == (s[1] >> 7));
        if (fi.masked)
            CHECK(memcmp(fi.mask, s + rc - 4, 4) == 0);
        CHECK(fi.rsv <= 7 && fi.rsv == ((s[0] >> 4) & 7));
        CHECK(fi.opcode <= 2 || (fi.opcode >= 8 && fi.opcode <= 10));
        CHECK(fi.payload_len < (1ull << 63));
        if (fi.opcode & 8)
            CHECK(fi.fin && fi.payload_len <= WS_MAX_CONTROL_PAYLOAD);
        size_t base = (size_t)rc - (fi.masked ? 4 : 0);
        CHECK(base == (fi.payload_len < 126 ? 2 : fi.payload_len < 65536 ? 4 : 10));
    }
    if (rc == -1)
        CHECK(err != WS_FE_NONE);
    /* prefixes: 0 before the verdict, then the same verdict */
    size_t lim = n < WS_MAX_HEADER + 1 ? n : WS_MAX_HEADER + 1;
    int rejected = 0;
    for (size_t k = 0; k <= lim; k++) {
        uint8_t pre[WS_MAX_HEADER + 1];
        struct ws_frame_info pf;
        enum ws_frame_error pe = WS_FE_NONE;
        memcpy(pre, s, k);
        ssize_t r = ws_parse_header(pre, k, &pf, &pe);
        if (rc > 0) {
            CHECK(r == ((ssize_t)k < rc ? 0 : rc));
        } else if (rc == 0) {
            CHECK(r == 0);
        } else {
            CHECK(r == 0 || (r == -1 && pe == err));
            CHECK(!rejected || r == -1);
            rejected |= r == -1;
        }
    }
    check_mask_flip(s, n, rc, &fi, err);
}

static void check_build(const uint8_t *s, size_t n, uint8_t opt)
{
    uint8_t out[WS_MAX_HEADER + WS_MAX_CONTROL_PAYLOAD], key[4] = {0};
    struct ws_frame_info fi;
    enum ws_frame_error err;
    memcpy(key, s, n < 4 ? n : 4);
    const uint8_t *mask = (opt & 2) ? key : NULL;

    size_t flen = ws_build_ping(out, s, n, mask);
    size_t want = n > WS_MAX_CONTROL_PAYLOAD ? WS_MAX_CONTROL_PAYLOAD : n;
    CHECK(flen == (mask ? 6 : 2) + want);
    CHECK(ws_parse_header(out, flen, &fi, &err) == (mask ? 6 : 2));
    CHECK(fi.fin && fi.opcode == WS_OP_PING && fi.payload_len == want);
    ws_mask_bytes(out + fi.header_len, want, fi.mask, 0);
    CHECK(want == 0 || memcmp(out + fi.header_len, s, want) == 0);

    /* close reason: the input up to its first NUL */
    char *reason = malloc(n + 1);
    CHECK(reason != NULL);
    memcpy(reason, s, n);
    reason[n] = '\0';
    size_t rlen = strlen(reason);
    uint16_t code = n >= 2 ? (uint16_t)(s[0] << 8 | s[1]) : 1000;
    flen = ws_build_close(out, code, reason, mask);
    CHECK(ws_parse_header(out, flen, &fi, &err) == (mask ? 6 : 2));
    CHECK(fi.fin && fi.opcode == WS_OP_CLOSE && fi.header_len + fi.payload_len == flen);
    ws_mask_bytes(out + fi.header_len, (size_t)fi.payload_len, fi.mask, 0);
    const uint8_t *pl = out + fi.header_len;
    if (code == 0) {
        CHECK(fi.payload_len == 0);
    } else {
        CHECK(fi.payload_len >= 2 && (pl[0] << 8 | pl[1]) == code);
        size_t kept = (size_t)fi.payload_len - 2;
        CHECK(kept <= 123 && kept <= rlen && memcmp(pl + 2, reason, kept) == 0);
        if (rlen <= 123)
            CHECK(kept == rlen);
        else /* cut before a character start, or after backing 3 bytes */
            CHECK(kept >= 120 && (((unsigned char)reason[kept] & 0xC0) != 0x80 || kept == 120));
    }
    free(reason);
}

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int is_b64(char c)
{
    return c != '\0' && strchr(b64_chars, c) != NULL;
}

static void check_mask_and_key(const uint8_t *s, size_t n)
{
    uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
    size_t m = n < 256 ? n : 256;
    uint8_t *a = malloc(m + 1), *b = malloc(m + 1);
    CHECK(a && b);
    memcpy(a, s, m);
    memcpy(b, s, m);
    size_t cut = m ? s[0] % (m + 1) : 0;
    uint64_t off = n ? s[n - 1] : 0;
    ws_mask_bytes(a, m, key, off);
    ws_mask_bytes(b, cut, key, off);
    ws_mask_bytes(b + cut, m - cut, key, off + cut);
    CHECK(m == 0 || memcmp(a, b, m) == 0);
    for (size_t i = 0; i < m; i++)
        CHECK((a[i] ^ s[i]) == key[(off + i) % 4]);
    ws_mask_bytes(a, m, key, off);
    CHECK(m == 0 || memcmp(a, s, m) == 0);
    free(a);
    free(b);

    for (size_t len = 22; len <= 26 && len <= n; len++) {
        const char *k = (const char *)s;
        int ok = len == 24 && k[22] == '=' && k[23] == '=';
        for (size_t i = 0; ok && i < 22; i++)
            ok = is_b64(k[i]);
        CHECK(ws_key_valid(k, len) == ok);
        char out[29];
        int rc = ws_accept_for_key(k, len, out);
        CHECK(rc == (ok ? 0 : -1));
        if (rc == 0) {
            CHECK(strlen(out) == 28 && out[27] == '=');
            for (size_t i = 0; i < 27; i++)
                CHECK(is_b64(out[i]));
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    const uint8_t *s = data + 1;
    size_t n = size - 1;

    check_header(s, n);
    check_build(s, n, opt);
    check_mask_and_key(s, n);

    struct outcome want, got;
    outcome_init(&want, n);
    outcome_init(&got, n);
    reference(s, n, &want);

    size_t *cuts = malloc((n + 1) * sizeof(*cuts));
    CHECK(cuts != NULL);
    uint64_t x = 0x9E3779B97F4A7C15ull ^ opt;
    for (size_t i = 0; i < n; i++)
        x = (x ^ s[i]) * 0x100000001B3ull;

    for (int skip = 0; skip < 2; skip++) {
        /* whole */
        cuts[0] = n;
        outcome_reset(&got);
        run(s, n, cuts, n ? 1 : 0, skip, &got);
        same(&want, &got);

        /* two pieces */
        if (n > 1) {
            cuts[0] = 1 + (size_t)(x % (n - 1));
            cuts[1] = n;
            outcome_reset(&got);
            run(s, n, cuts, 2, skip, &got);
            same(&want, &got);
        }

        /* random pieces of up to `maxstep` bytes */
        size_t k = 0, pos = 0, maxstep = 1 + (opt >> 1);
        uint64_t y = x;
        while (pos < n) {
            y ^= y << 13;
            y ^= y >> 7;
            y ^= y << 17;
            size_t step = 1 + (size_t)(y % maxstep);
            pos = pos + step > n ? n : pos + step;
            cuts[k++] = pos;
        }
        outcome_reset(&got);
        run(s, n, cuts, k, skip, &got);
        same(&want, &got);
        if (skip)
            run_pass(s, cuts, k, &want);

        /* byte by byte */
        if (n <= 4096) {
            for (size_t i = 0; i < n; i++)
                cuts[i] = i + 1;
            outcome_reset(&got);
            run(s, n, cuts, n, skip, &got);
            same(&want, &got);
        }
    }
    free(cuts);
    free(want.rep);
    free(got.rep);
    return 0;
}
