/*
 * dns_wire.c - DNS query and answer bytes (dns_wire.h).
 */
#include "proxy/dns_wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

size_t dns_query_build(unsigned char *q, size_t cap, uint16_t id, const char *name, int type)
{
    size_t n = strlen(name);
    if (n == 0 || n > 253 || n + 18 > cap)
        return 0;
    const unsigned char head[12] = {(unsigned char)(id >> 8), (unsigned char)id, 0x01, 0x00,
                                    0, 1, 0, 0, 0, 0, 0, 0};
    memcpy(q, head, 12);
    size_t o = 12;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l == 0 || l > 63)
            return 0;
        q[o++] = (unsigned char)l;
        memcpy(q + o, p, l);
        o += l;
        p += l + (dot ? 1 : 0);
    }
    q[o++] = 0;
    q[o++] = 0;
    q[o++] = (unsigned char)type;
    q[o++] = 0;
    q[o++] = 1; /* IN */
    return o;
}

/* Skip a (possibly compressed) name: the offset after it, or 0. */
static size_t skip_name(const unsigned char *m, size_t len, size_t o)
{
    while (o < len) {
        unsigned char l = m[o];
        if ((l & 0xc0) == 0xc0)
            return o + 2 <= len ? o + 2 : 0;
        if (l & 0xc0)
            return 0; /* reserved label types */
        if (l == 0)
            return o + 1;
        o += 1 + (size_t)l;
    }
    return 0;
}

int dns_answer_parse(const unsigned char *m, size_t len, uint16_t *id, unsigned port,
                     struct sockaddr_storage *out, unsigned *n, unsigned max, uint32_t *ttl)
{
    if (len < 12 || !(m[2] & 0x80))
        return -1;
    *id = (uint16_t)(m[0] << 8 | m[1]);
    unsigned qd = (unsigned)(m[4] << 8 | m[5]), an = (unsigned)(m[6] << 8 | m[7]);
    size_t o = 12;
    for (unsigned i = 0; i < qd; i++) {
        o = skip_name(m, len, o);
        if (!o || o + 4 > len)
            return -1;
        o += 4;
    }
    for (unsigned i = 0; i < an; i++) {
        o = skip_name(m, len, o);
        if (!o || o + 10 > len)
            return -1;
        unsigned type = (unsigned)(m[o] << 8 | m[o + 1]);
        uint32_t t = (uint32_t)m[o + 4] << 24 | (uint32_t)m[o + 5] << 16 |
                     (uint32_t)m[o + 6] << 8 | m[o + 7];
        size_t rdlen = (size_t)(m[o + 8] << 8 | m[o + 9]);
        o += 10;
        if (o + rdlen > len)
            return -1;
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        int got = 0;
        if (type == DNS_TYPE_A && rdlen == 4) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            s4->sin_family = AF_INET;
            s4->sin_port = htons((uint16_t)port);
            memcpy(&s4->sin_addr, m + o, 4);
            got = 1;
        } else if (type == DNS_TYPE_AAAA && rdlen == 16) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons((uint16_t)port);
            memcpy(&s6->sin6_addr, m + o, 16);
            got = 1;
        }
        if (got && *n < max) {
            out[(*n)++] = ss;
            if (*ttl == 0 || t < *ttl)
                *ttl = t;
        }
        o += rdlen;
    }
    return m[3] & 0x0f;
}
