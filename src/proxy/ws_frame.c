/*
 * ws_frame.c - WebSocket (RFC 6455) frame headers, stream boundary tracking,
 * the control frames Switchyard sends, and the opening-handshake accept
 * value. See ws_frame.h for the contracts.
 *
 * Like h1_parser.c this module is pure: no I/O, no allocation, no global
 * state. Everything works on caller memory so it can be fuzzed in isolation.
 *
 * Header parsing checks each byte as soon as it is available, so a prefix of
 * an invalid header is either "need more" (0) or rejected with the same
 * reason the whole header would get. The order of checks follows the bytes:
 *   byte 0: reserved opcode, then fragmented control frame;
 *   byte 1: control payload > 125 (the MASK bit only says whether a key
 *           follows the length: masking is the endpoints' rule, §5.1);
 *   byte 2: MSB of a 64-bit length;
 *   length: non-minimal 16-bit or 64-bit encoding.
 *
 * ws_stream_feed() walks a relayed byte range frame by frame. Payloads are
 * skipped by arithmetic only; headers split across calls are kept in
 * st->hdr. It stops before every control frame that *starts* in the range
 * so the tunnel can look at it (pongs answering our pings, closes) and
 * remembers in st->ctl_reported that it did, so feeding again from that
 * offset passes over the frame instead of reporting it forever.
 */
#include "proxy/ws_frame.h"

#include <assert.h>
#include <string.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

/* Bits of the first two header bytes (RFC 6455 §5.2). */
#define WS_B0_FIN 0x80u
#define WS_B0_RSV 0x70u
#define WS_B0_OPCODE 0x0Fu
#define WS_B1_MASK 0x80u
#define WS_B1_LEN 0x7Fu

/* 7-bit length values that announce an extended length. */
#define WS_LEN_16 126
#define WS_LEN_64 127

/* Appended to the client's key before hashing (RFC 6455 §1.3). */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

const char *ws_frame_error_str(enum ws_frame_error e)
{
    switch (e) {
    case WS_FE_NONE:
        return "no error";
    case WS_FE_RESERVED_OPCODE:
        return "reserved opcode";
    case WS_FE_CONTROL_TOO_LONG:
        return "control frame too long";
    case WS_FE_CONTROL_FRAGMENTED:
        return "fragmented control frame";
    case WS_FE_BAD_LENGTH:
        return "bad payload length encoding";
    case WS_FE_BAD_CONTINUATION:
        return "bad continuation frame";
    case WS_FE_TOO_BIG:
        return "message too big";
    }
    return "unknown frame error";
}

/* Opcodes defined by RFC 6455; 3-7 and B-F are reserved. */
static int opcode_known(unsigned op)
{
    return op <= WS_OP_BINARY || (op >= WS_OP_CLOSE && op <= WS_OP_PONG);
}

static int opcode_is_control(unsigned op)
{
    return (op & 0x8u) != 0;
}

static ssize_t parse_fail(enum ws_frame_error *err, enum ws_frame_error e)
{
    *err = e;
    return -1;
}

ssize_t ws_parse_header(const uint8_t *buf, size_t len, struct ws_frame_info *fi,
                        enum ws_frame_error *err)
{
    if (len < 1)
        return 0;

    unsigned b0 = buf[0];
    unsigned op = b0 & WS_B0_OPCODE;
    int fin = (b0 & WS_B0_FIN) != 0;
    if (!opcode_known(op))
        return parse_fail(err, WS_FE_RESERVED_OPCODE);
    if (opcode_is_control(op) && !fin)
        return parse_fail(err, WS_FE_CONTROL_FRAGMENTED);
    if (len < 2)
        return 0;

    unsigned b1 = buf[1];
    int masked = (b1 & WS_B1_MASK) != 0;
    unsigned len7 = b1 & WS_B1_LEN;
    if (opcode_is_control(op) && len7 > WS_MAX_CONTROL_PAYLOAD)
        return parse_fail(err, WS_FE_CONTROL_TOO_LONG);

    size_t ext = len7 == WS_LEN_16 ? 2 : len7 == WS_LEN_64 ? 8 : 0;
    /* The MSB of a 64-bit length must be 0 (§5.2); known from byte 2. */
    if (ext == 8 && len >= 3 && (buf[2] & 0x80u))
        return parse_fail(err, WS_FE_BAD_LENGTH);
    if (len < 2 + ext)
        return 0;

    uint64_t plen = len7;
    if (ext) {
        plen = 0;
        for (size_t i = 0; i < ext; i++)
            plen = (plen << 8) | buf[2 + i];
        /* "the minimal number of bytes MUST be used to encode the length" */
        if ((ext == 2 && plen < WS_LEN_16) || (ext == 8 && plen <= 0xFFFFu))
            return parse_fail(err, WS_FE_BAD_LENGTH);
    }

    size_t hlen = 2 + ext + (masked ? 4 : 0);
    if (len < hlen)
        return 0;

    fi->fin = (uint8_t)fin;
    fi->rsv = (uint8_t)((b0 & WS_B0_RSV) >> 4);
    fi->opcode = (uint8_t)op;
    fi->masked = (uint8_t)masked;
    if (masked)
        memcpy(fi->mask, buf + 2 + ext, 4);
    else
        memset(fi->mask, 0, 4);
    fi->header_len = (uint8_t)hlen;
    fi->payload_len = plen;
    return (ssize_t)hlen;
}

/* ------------------------------------------------------------------------
 * Stream tracking
 * ------------------------------------------------------------------------ */

void ws_stream_init(struct ws_stream *st)
{
    memset(st, 0, sizeof(*st));
}

static ssize_t stream_fail(struct ws_stream *st, enum ws_frame_error e, size_t at)
{
    st->err = e;
    st->err_off = at;
    return -1;
}

/*
 * A header has been parsed in full: apply the fragmentation rules and the
 * message size limit, and make it the current frame. Returns WS_FE_NONE, or
 * the error that stops the stream.
 */
static enum ws_frame_error stream_start_frame(struct ws_stream *st, const struct ws_frame_info *fi)
{
    switch (fi->opcode) {
    case WS_OP_CONT:
        if (!st->in_message)
            return WS_FE_BAD_CONTINUATION;
        if (fi->fin)
            st->in_message = 0;
        st->msg_len += fi->payload_len;
        break;
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        if (st->in_message)
            return WS_FE_BAD_CONTINUATION;
        if (!fi->fin)
            st->in_message = 1;
        st->msg_len = fi->payload_len;
        st->messages++;
        break;
    default:
        break; /* control frames may sit between fragments */
    }
    /* Checked at the header, before any byte of the payload is relayed. */
    if (st->max_message && !(fi->opcode & 8) && st->msg_len > st->max_message)
        return WS_FE_TOO_BIG;
    st->cur = *fi;
    st->payload_left = fi->payload_len;
    if (st->payload_left == 0)
        st->frames++;
    return 0;
}

/*
 * The body of ws_stream_feed() (stop = 1) and ws_stream_pass() (stop = 0,
 * control frames are accounted like data frames).
 */
static ssize_t stream_scan(struct ws_stream *st, const uint8_t *buf, size_t len,
                           struct ws_frame_info *ctl, size_t *ctl_total, int stop)
{
    struct ws_frame_info fi;
    enum ws_frame_error err = WS_FE_NONE;
    size_t pos = 0;

    *ctl_total = 0;
    if (st->err != WS_FE_NONE)
        return -1;
    if (len == 0)
        return 0;

    /* A control frame reported at this position is passed over this time. */
    int pass_reported = st->ctl_reported != 0;
    st->ctl_reported = 0;

    while (pos < len) {
        if (st->payload_left) {
            uint64_t n = len - pos;
            if (n > st->payload_left)
                n = st->payload_left;
            pos += (size_t)n;
            st->payload_left -= n;
            if (st->payload_left == 0)
                st->frames++;
            continue;
        }

        if (st->hdr_have == 0) {
            /* A frame starts at buf[pos]. */
            size_t avail = len - pos;
            ssize_t rc = ws_parse_header(buf + pos, avail, &fi, &err);
            if (rc < 0)
                return stream_fail(st, err, pos);
            if (stop && opcode_is_control(buf[pos] & WS_B0_OPCODE) &&
                !(pass_reported && pos == 0)) {
                /* Stop here: complete -> report it, incomplete -> ask for more. */
                if (rc > 0 && fi.payload_len <= avail - (size_t)rc) {
                    *ctl_total = (size_t)rc + (size_t)fi.payload_len;
                    if (ctl)
                        *ctl = fi;
                    st->ctl_reported = (uint8_t)*ctl_total;
                } else if (ctl) {
                    memset(ctl, 0, sizeof(*ctl));
                }
                return (ssize_t)pos;
            }
            if (rc == 0) {
                /* Only a header shorter than the longest one can be partial. */
                assert(avail < WS_MAX_HEADER);
                memcpy(st->hdr, buf + pos, avail);
                st->hdr_have = (uint8_t)avail;
                pos = len;
                break;
            }
            if ((err = stream_start_frame(st, &fi)) != WS_FE_NONE)
                return stream_fail(st, err, pos);
            pos += (size_t)rc;
            continue;
        }

        /*
         * Continue a header split across calls. A control frame whose first
         * bytes were fed earlier did not start in this range: it is passed
         * over like data (the tunnel avoids this by waiting, see the header).
         */
        uint8_t tmp[WS_MAX_HEADER];
        size_t have = st->hdr_have;
        size_t take = len - pos;
        if (take > WS_MAX_HEADER - have)
            take = WS_MAX_HEADER - have;
        memcpy(tmp, st->hdr, have);
        memcpy(tmp + have, buf + pos, take);
        ssize_t rc = ws_parse_header(tmp, have + take, &fi, &err);
        /* This frame began in an earlier range: what can still be held back
         * starts here. */
        if (rc < 0)
            return stream_fail(st, err, pos);
        if (rc == 0) {
            assert(have + take < WS_MAX_HEADER && pos + take == len);
            memcpy(st->hdr + have, buf + pos, take);
            st->hdr_have = (uint8_t)(have + take);
            pos += take;
            continue;
        }
        assert((size_t)rc > have);
        size_t piece = pos;
        pos += (size_t)rc - have;
        st->hdr_have = 0;
        if ((err = stream_start_frame(st, &fi)) != WS_FE_NONE)
            return stream_fail(st, err, piece);
    }
    return (ssize_t)len;
}

ssize_t ws_stream_feed(struct ws_stream *st, const uint8_t *buf, size_t len,
                       struct ws_frame_info *ctl, size_t *ctl_total)
{
    return stream_scan(st, buf, len, ctl, ctl_total, 1);
}

ssize_t ws_stream_pass(struct ws_stream *st, const uint8_t *buf, size_t len)
{
    size_t unused;
    return stream_scan(st, buf, len, NULL, &unused, 0);
}

void ws_stream_skip(struct ws_stream *st, size_t total)
{
    /* Only a frame just reported by ws_stream_feed() may be dropped. */
    assert(ws_stream_at_boundary(st));
    assert(st->ctl_reported != 0 && st->ctl_reported == total);
    (void)total;
    st->ctl_reported = 0;
    st->frames++;
}

/* ------------------------------------------------------------------------
 * Building control frames
 * ------------------------------------------------------------------------ */

void ws_mask_bytes(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t offset)
{
    /* Rotate the key once so the loop indexes it from 0. */
    uint8_t k[4];
    for (unsigned i = 0; i < 4; i++)
        k[i] = mask[(offset + i) & 3u];
    for (size_t i = 0; i < len; i++)
        p[i] ^= k[i & 3u];
}

/*
 * Write a FIN control frame header + payload into out[]; the payload (at most
 * 125 bytes) is masked when `mask` is given. Returns the frame length.
 */
static size_t build_control(uint8_t *out, unsigned opcode, const uint8_t *payload,
                            size_t payload_len, const uint8_t *mask)
{
    size_t h = 2;
    assert(payload_len <= WS_MAX_CONTROL_PAYLOAD);
    out[0] = (uint8_t)(WS_B0_FIN | opcode);
    out[1] = (uint8_t)((mask ? WS_B1_MASK : 0) | payload_len);
    if (mask) {
        memcpy(out + 2, mask, 4);
        h += 4;
    }
    if (payload_len) {
        memcpy(out + h, payload, payload_len);
        if (mask)
            ws_mask_bytes(out + h, payload_len, mask, 0);
    }
    return h + payload_len;
}

size_t ws_build_ping(uint8_t *out, const uint8_t *payload, size_t payload_len, const uint8_t *mask)
{
    if (payload_len > WS_MAX_CONTROL_PAYLOAD)
        payload_len = WS_MAX_CONTROL_PAYLOAD;
    return build_control(out, WS_OP_PING, payload, payload_len, mask);
}

size_t ws_build_close(uint8_t *out, uint16_t code, const char *reason, const uint8_t *mask)
{
    uint8_t body[WS_MAX_CONTROL_PAYLOAD];
    size_t n = 0;

    if (code != 0) {
        body[0] = (uint8_t)(code >> 8);
        body[1] = (uint8_t)code;
        size_t rlen = reason ? strnlen(reason, WS_MAX_CONTROL_PAYLOAD - 1) : 0;
        if (rlen > WS_MAX_CONTROL_PAYLOAD - 2) {
            /*
             * Cut before the UTF-8 character that does not fit whole: back
             * over at most 3 continuation bytes (a character has at most 3),
             * so invalid input cannot shrink the reason further.
             */
            size_t keep = WS_MAX_CONTROL_PAYLOAD - 2;
            rlen = keep;
            while (rlen > keep - 3 && ((unsigned char)reason[rlen] & 0xC0u) == 0x80u)
                rlen--;
        }
        if (rlen)
            memcpy(body + 2, reason, rlen);
        n = 2 + rlen;
    }
    return build_control(out, WS_OP_CLOSE, body, n, mask);
}

/* ------------------------------------------------------------------------
 * Opening handshake
 * ------------------------------------------------------------------------ */

/* Length of a Sec-WebSocket-Key: base64 of 16 bytes is 22 chars + "==". */
#define WS_KEY_LEN 24

static int b64_char_ok(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

int ws_key_valid(const char *key, size_t key_len)
{
    if (key == NULL || key_len != WS_KEY_LEN)
        return 0;
    for (size_t i = 0; i < WS_KEY_LEN - 2; i++)
        if (!b64_char_ok((unsigned char)key[i]))
            return 0;
    /*
     * The 4 unused bits of key[21] are not checked: Python websockets and
     * node ws accept any value there, and the accept hash is computed over
     * the key text anyway.
     */
    return key[22] == '=' && key[23] == '=';
}

/* Standard base64 with padding; out[] needs 4 * ceil(n / 3) + 1 bytes. */
static size_t b64_encode(char *out, const uint8_t *in, size_t n)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

int ws_accept_for_key(const char *key, size_t key_len, char out[29])
{
    uint8_t text[WS_KEY_LEN + sizeof(ws_guid) - 1];
    uint8_t digest[SHA_DIGEST_LENGTH];

    if (!ws_key_valid(key, key_len))
        return -1;
    memcpy(text, key, WS_KEY_LEN);
    memcpy(text + WS_KEY_LEN, ws_guid, sizeof(ws_guid) - 1);
    SHA1(text, sizeof(text), digest);
    b64_encode(out, digest, sizeof(digest)); /* 20 bytes -> 28 chars + NUL */
    return 0;
}

int ws_new_key(char out[25])
{
    uint8_t raw[16];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    b64_encode(out, raw, sizeof(raw));
    return 0;
}
