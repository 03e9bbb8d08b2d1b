/* wsproto - see wsproto.h */
#include "wsproto.h"

#include <openssl/evp.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

int ws_parse_hdr(const uint8_t *p, size_t n, struct ws_hdr *h)
{
    if (n < 2)
        return 0;
    if (p[0] & 0x70)  /* RSV1-3: no extension is ever negotiated */
        return -1;
    h->fin = p[0] >> 7;
    h->opcode = p[0] & 0x0f;
    h->masked = p[1] >> 7;
    if ((h->opcode > WS_BIN && h->opcode < WS_CLOSE) || h->opcode > WS_PONG)
        return -1;
    uint64_t len = p[1] & 0x7f;
    unsigned hl = 2;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = (uint64_t)p[2] << 8 | p[3];
        hl = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        if (len >> 63)
            return -1;
        hl = 10;
    }
    if (h->opcode >= WS_CLOSE && (len > WS_MAX_CTL || !h->fin))
        return -1;
    if (h->masked) {
        if (n < hl + 4)
            return 0;
        memcpy(h->mask, p + hl, 4);
        hl += 4;
    } else {
        memset(h->mask, 0, 4);
    }
    h->len = len;
    h->hlen = hl;
    return 1;
}

size_t ws_put_hdr(uint8_t *p, int opcode, int fin, uint64_t len, const uint8_t *mask)
{
    size_t hl = 2;
    p[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    uint8_t mbit = mask ? 0x80 : 0;
    if (len < 126) {
        p[1] = mbit | (uint8_t)len;
    } else if (len <= 0xffff) {
        p[1] = mbit | 126;
        p[2] = (uint8_t)(len >> 8);
        p[3] = (uint8_t)len;
        hl = 4;
    } else {
        p[1] = mbit | 127;
        for (int i = 0; i < 8; i++)
            p[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        hl = 10;
    }
    if (mask) {
        memcpy(p + hl, mask, 4);
        hl += 4;
    }
    return hl;
}

void ws_mask(uint8_t *b, size_t n, const uint8_t mask[4], uint64_t off)
{
    /* 8 bytes at a time: k[j] is the mask byte for payload position off+j,
     * and since 8 is a multiple of 4 it also serves position off+j+8i. */
    uint8_t k[8];
    for (int j = 0; j < 8; j++)
        k[j] = mask[(off + (uint64_t)j) & 3];
    uint64_t k64;
    memcpy(&k64, k, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, b + i, 8);
        v ^= k64;
        memcpy(b + i, &v, 8);
    }
    for (; i < n; i++)
        b[i] ^= k[i & 7];
}

void ws_accept(const char *key, size_t klen, char out[29])
{
    unsigned char buf[128], md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (klen > sizeof buf - (sizeof WS_GUID - 1))
        klen = sizeof buf - (sizeof WS_GUID - 1);  /* a real key is 24 chars */
    memcpy(buf, key, klen);
    memcpy(buf + klen, WS_GUID, sizeof WS_GUID - 1);
    EVP_Digest(buf, klen + sizeof WS_GUID - 1, md, &mdlen, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);  /* 20 bytes -> 28 chars + NUL */
}
