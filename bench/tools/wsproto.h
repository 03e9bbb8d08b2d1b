/*
 * wsproto - WebSocket (RFC 6455) framing shared by sy-backend and sy-load:
 * frame headers, masking and the Sec-WebSocket-Accept key.
 */
#ifndef SY_WSPROTO_H
#define SY_WSPROTO_H

#include <stddef.h>
#include <stdint.h>

enum { WS_CONT = 0, WS_TEXT = 1, WS_BIN = 2, WS_CLOSE = 8, WS_PING = 9, WS_PONG = 10 };

#define WS_MAX_HDR 14   /* 2 + 8 (64-bit length) + 4 (mask) */
#define WS_MAX_CTL 125  /* control frame payload limit */

struct ws_hdr {
    uint64_t len;    /* payload length */
    unsigned hlen;   /* header length on the wire */
    uint8_t opcode;
    uint8_t fin;
    uint8_t masked;
    uint8_t mask[4];
};

/* Parse a frame header at p (n bytes available): 1 complete, 0 need more
 * bytes, -1 malformed (reserved bits/opcodes, oversized control frame). */
int ws_parse_hdr(const uint8_t *p, size_t n, struct ws_hdr *h);

/* Write a frame header; mask NULL for an unmasked (server) frame.
 * Returns its length (at most WS_MAX_HDR). */
size_t ws_put_hdr(uint8_t *p, int opcode, int fin, uint64_t len, const uint8_t *mask);

/* XOR n bytes with the mask; off is the position of b[0] in the payload. */
void ws_mask(uint8_t *b, size_t n, const uint8_t mask[4], uint64_t off);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: 28 characters and a NUL. */
void ws_accept(const char *key, size_t klen, char out[29]);

#endif
