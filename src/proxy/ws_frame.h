/*
 * ws_frame.h - WebSocket (RFC 6455) frame headers: parsing, following frame
 * boundaries in a relayed byte stream, and building the few control frames
 * Switchyard itself sends (ping, close). Pure code: no I/O, no allocation.
 *
 * The tunnel never unmasks or copies payloads for inspection; it only needs
 * to know where frames start and end, so that it can insert its own control
 * frames between two frames and recognise the pongs that answer its pings.
 */
#ifndef SY_PROXY_WS_FRAME_H
#define SY_PROXY_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WS_OP_CONT   0x0
#define WS_OP_TEXT   0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE  0x8
#define WS_OP_PING   0x9
#define WS_OP_PONG   0xA

/* Longest frame header: 2 + 8 (length) + 4 (mask). */
#define WS_MAX_HEADER 14
/* Control frames carry at most 125 payload bytes. */
#define WS_MAX_CONTROL_PAYLOAD 125

struct ws_frame_info {
    uint8_t fin;            /* 1 = final fragment */
    uint8_t rsv;            /* RSV1..3 bits (0..7); extensions may use them */
    uint8_t opcode;         /* WS_OP_* */
    uint8_t masked;         /* MASK bit */
    uint8_t mask[4];        /* masking key when masked */
    uint8_t header_len;     /* bytes of the header (2..14) */
    uint64_t payload_len;   /* payload length (< 2^63) */
};

enum ws_frame_error {
    WS_FE_NONE = 0,
    WS_FE_RESERVED_OPCODE,  /* opcodes 3-7, B-F */
    WS_FE_CONTROL_TOO_LONG, /* control frame with payload > 125 */
    WS_FE_CONTROL_FRAGMENTED, /* control frame without FIN */
    WS_FE_BAD_LENGTH,       /* non-minimal length encoding or 64-bit length with MSB set */
    WS_FE_BAD_CONTINUATION, /* continuation without a started message, or a new
                               data frame while a fragmented message is open */
    WS_FE_TOO_BIG,          /* a message larger than the stream's max_message */
};

/* Short lowercase phrase for logs ("reserved opcode"); never NULL. */
const char *ws_frame_error_str(enum ws_frame_error e);

/*
 * Parse one frame header from buf[0..len). Returns the header length (> 0)
 * and fills *fi; 0 when more bytes are needed; -1 when invalid (*err set).
 * The MASK bit is reported, never judged: fi->masked is the bit, and the
 * header includes the 4-byte key (fi->mask) iff it is set, whichever side
 * sent the frame. Requiring client frames to be masked and server frames not
 * is the endpoints' rule (RFC 6455 §5.1); a relay passes the frames on as
 * they are, as nginx does. Fragmentation rules are checked by ws_stream.
 * RSV bits are reported in fi->rsv, never rejected (extensions use them).
 * Each byte is checked as soon as it is present, so a prefix of an invalid
 * header gives 0 or -1 with the same *err as the whole header. *fi is only
 * written when the result is > 0.
 */
ssize_t ws_parse_header(const uint8_t *buf, size_t len, struct ws_frame_info *fi,
                        enum ws_frame_error *err);

/*
 * Following one direction of a tunnel. Feed every relayed byte range in order
 * with ws_stream_feed(); it reports where frames begin so the tunnel knows
 * whether the stream is at a frame boundary.
 */
struct ws_stream {
    uint64_t payload_left;  /* payload bytes of the current frame still to come */
    uint64_t frames;        /* complete frames seen (dropped ones included) */
    uint64_t msg_len;       /* payload announced so far for the current message */
    struct ws_frame_info cur; /* header of the current frame (valid once parsed) */
    enum ws_frame_error err;/* set once the stream violated the protocol */
    size_t err_off;         /* with err: offset, in the range whose feed failed, of
                               the offending frame's first byte there (bytes before
                               it are whole frames, or the end of one, and may
                               still be relayed) */
    uint32_t max_message;   /* a data message may carry at most this many payload
                               bytes (all its fragments); 0 = no limit */
    uint32_t messages;      /* data messages started (wraps; for rate limits) */
    uint8_t hdr[WS_MAX_HEADER]; /* a header split across feeds */
    uint8_t hdr_have;       /* bytes of hdr[] collected */
    uint8_t ctl_reported;   /* total length of the complete control frame just
                               reported at the current position (0: none); the
                               next feed passes over it instead of stopping */
    uint8_t in_message;     /* inside a fragmented data message */
};

/* Start following a stream at a frame boundary; either direction alike. */
void ws_stream_init(struct ws_stream *st);

/* True when the bytes fed so far end exactly at a frame boundary. */
static inline int ws_stream_at_boundary(const struct ws_stream *st)
{
    return st->hdr_have == 0 && st->payload_left == 0;
}

/*
 * Scan buf[0..len) (bytes that will be relayed, in order) and return how many
 * of them can be consumed before the next control frame that starts inside
 * this range, so the caller may inspect it. A return value `off` < len always
 * means "a control frame starts at buf[off]"; bytes before it are accounted
 * and the stream state is positioned at its start:
 *   - returns len (and *ctl_total = 0) when no control frame starts in the
 *     range: everything was consumed, the caller relays and feeds on;
 *   - complete control frame: returns `off`, fills *ctl with its header and
 *     *ctl_total with header + payload length (> 0); buf[off .. off +
 *     ctl_total) is the whole frame. Then either call ws_stream_skip() to
 *     drop it from the stream, or feed again starting at `off`: the stream
 *     remembers (st->ctl_reported) that it reported the frame at this
 *     position, so the next feed passes over it and continues after it
 *     rather than reporting it again. A len-0 feed keeps that memory; any
 *     other feed clears it;
 *   - incomplete control frame (header or payload runs past len): returns
 *     `off` with *ctl_total = 0 (*ctl zeroed): "give me more bytes starting
 *     from here". Nothing from `off` on was consumed; the caller keeps
 *     buf[off..len), waits for more bytes and feeds again from `off`. A
 *     control frame is at most WS_MAX_HEADER + 125 = 139 bytes, so waiting
 *     never needs more than a small buffer. To relay those bytes without
 *     waiting, account them with ws_stream_pass(); the rest of that frame is
 *     then passed over like data, without a report.
 * `ctl` may be NULL. Works with any split of the byte stream: the same
 * frames are reported at the same stream positions.
 * On a protocol violation returns -1 (st->err set, st->err_off where the
 * offending frame starts in buf); the error is sticky, every later call
 * returns -1.
 */
ssize_t ws_stream_feed(struct ws_stream *st, const uint8_t *buf, size_t len,
                       struct ws_frame_info *ctl, size_t *ctl_total);

/*
 * Account buf[0..len) like ws_stream_feed(), but without stopping at control
 * frames: for bytes relayed without inspection, e.g. the held start of an
 * incomplete control frame when the tunnel stops waiting for the rest (peer
 * idle, so its buffer can be released; EOF). Later feeds then continue inside
 * that frame and do not report it. Returns len, or -1 on a protocol violation
 * (st->err set).
 */
ssize_t ws_stream_pass(struct ws_stream *st, const uint8_t *buf, size_t len);

/*
 * Consume the complete frame of `total` bytes at the current position: the
 * control frame ws_stream_feed() has just reported, with `total` its
 * *ctl_total (asserted). Counts it in st->frames; the caller then feeds from
 * off + total.
 */
void ws_stream_skip(struct ws_stream *st, size_t total);

/*
 * Build a ping (payload up to 125 bytes; longer payloads are truncated to
 * 125) into out[] (needs 6 + payload_len bytes). FIN set, 7-bit length.
 * `mask` non-NULL = masked with that key (proxy-to-upstream frames): the
 * payload is written masked. `payload` may be NULL when payload_len is 0.
 * Returns the frame length.
 */
size_t ws_build_ping(uint8_t *out, const uint8_t *payload, size_t payload_len,
                     const uint8_t *mask);

/*
 * Build a close frame with `code` (2 bytes, big-endian) and a UTF-8 `reason`
 * (NUL-terminated, may be NULL) truncated to 123 bytes at a character
 * boundary so the payload fits 125 bytes (the cut backs over at most 3
 * continuation bytes, so invalid UTF-8 is cut at 120..123). `code` 0 builds a close frame with
 * an empty payload (no status; `reason` ignored). Masked as ws_build_ping().
 * out[] needs 6 + 125 bytes. Returns the frame length.
 */
size_t ws_build_close(uint8_t *out, uint16_t code, const char *reason, const uint8_t *mask);

/*
 * Unmask (or mask) payload bytes in place; `offset` is the position of p[0]
 * inside the frame payload (the key rotates every 4 bytes).
 */
void ws_mask_bytes(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t offset);

/*
 * Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2):
 * base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")). out[] needs 29
 * bytes (28 + NUL). Returns 0, or -1 when the key is not a valid 16-byte base64
 * nonce (24 characters).
 */
int ws_accept_for_key(const char *key, size_t key_len, char out[29]);

/* A fresh random Sec-WebSocket-Key (24 characters and a NUL), for an
 * upgrade the proxy makes itself (WebSocket over HTTP/2). 0 or -1. */
int ws_new_key(char out[25]);

/*
 * Is `key` a valid Sec-WebSocket-Key (base64 of exactly 16 bytes)? That is
 * exactly 24 characters: 22 of the standard alphabet (A-Z a-z 0-9 + /) then
 * "==". Like node ws and Python websockets, the 4 unused bits of the 22nd
 * character are not checked. The caller trims surrounding whitespace.
 */
int ws_key_valid(const char *key, size_t key_len);

#endif
