/*
 * proxy_protocol.c - PROXY protocol v1/v2 header parser (see the contract in
 * proxy_protocol.h). Pure: reads only `buf`, writes only `out`.
 *
 * Strictness. The header comes from a balancer we trust to speak the
 * protocol, so anything the spec does not allow is an error rather than
 * something to guess around: v1 fields are separated by exactly one space,
 * addresses must parse as the family named (TCP4/TCP6), ports are decimal
 * 0..65535; v2 versions other than 2, commands other than LOCAL/PROXY and
 * unassigned families/transports are rejected (the spec says receivers must
 * drop them; nginx skips such headers instead, docs/differences.md). What the
 * spec tells receivers to ignore is ignored: the rest of a v1 UNKNOWN line,
 * the addresses of a v2 LOCAL header, v2 TLVs (skipped whole by the length
 * field, never interpreted).
 *
 * Incremental use. A caller that has only part of a header gets
 * PP_NEED_MORE as long as what it has can still become a valid header, so it
 * can wait for more bytes; a prefix that can no longer match is rejected at
 * once (a client speaking HTTP to a PROXY listener fails on its first
 * bytes, not at the timeout).
 */
#include "core/proxy_protocol.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

/* v2 signature: "\r\n\r\n\0\r\nQUIT\n" */
static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

#define V2_FIXED 16             /* signature, ver/cmd, fam/proto, length */
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_FAM_UNSPEC 0x0
#define V2_FAM_INET 0x1
#define V2_FAM_INET6 0x2
#define V2_FAM_UNIX 0x3
#define V2_PROTO_STREAM 0x1
#define V2_PROTO_DGRAM 0x2

static ssize_t fail(struct pp_result *out, const char *why)
{
    out->reason = why;
    return PP_ERROR;
}

/* ------------------------------------------------------------------ v1 */

/* A field of the v1 line: [p, p+len). */
struct field {
    const uint8_t *p;
    size_t len;
};

/* Split [*pos, end) at the next single space. 0, or -1 on an empty field. */
static int next_field(const uint8_t **pos, const uint8_t *end, struct field *f)
{
    const uint8_t *p = *pos;
    const uint8_t *sp = memchr(p, ' ', (size_t)(end - p));
    const uint8_t *stop = sp ? sp : end;
    if (stop == p)
        return -1;
    f->p = p;
    f->len = (size_t)(stop - p);
    *pos = sp ? sp + 1 : end;
    return 0;
}

static int field_is(const struct field *f, const char *word)
{
    size_t n = strlen(word);
    return f->len == n && memcmp(f->p, word, n) == 0;
}

/* An address of `family` in text form into 16 bytes (inet_pton needs a C string). */
static int v1_addr(const struct field *f, int family, uint8_t out[16])
{
    char tmp[48];
    if (f->len == 0 || f->len >= sizeof(tmp) || memchr(f->p, '\0', f->len))
        return -1;
    memcpy(tmp, f->p, f->len);
    tmp[f->len] = '\0';
    memset(out, 0, 16);
    return inet_pton(family, tmp, out) == 1 ? 0 : -1;
}

static int v1_port(const struct field *f, uint16_t *out)
{
    if (f->len == 0 || f->len > 5)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < f->len; i++) {
        if (f->p[i] < '0' || f->p[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(f->p[i] - '0');
    }
    if (v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* The fields after "PROXY " on a complete line [p, end) (CRLF excluded). */
static ssize_t v1_fields(const uint8_t *p, const uint8_t *end, size_t line_len,
                         struct pp_result *out)
{
    struct field proto, src, dst, sport, dport;
    /* UNKNOWN: the rest of the line, if any, is to be ignored (spec 2.1). */
    if ((size_t)(end - p) >= 7 && memcmp(p, "UNKNOWN", 7) == 0 && (end - p == 7 || p[7] == ' '))
        return (ssize_t)line_len;
    if (next_field(&p, end, &proto) < 0)
        return fail(out, "missing protocol in PROXY protocol v1 header");
    int family;
    if (field_is(&proto, "TCP4"))
        family = AF_INET;
    else if (field_is(&proto, "TCP6"))
        family = AF_INET6;
    else
        return fail(out, "unknown protocol in PROXY protocol v1 header");
    if (next_field(&p, end, &src) < 0 || next_field(&p, end, &dst) < 0 ||
        next_field(&p, end, &sport) < 0 || next_field(&p, end, &dport) < 0 ||
        dport.p + dport.len != end)
        return fail(out, "wrong number of fields in PROXY protocol v1 header");
    if (v1_addr(&src, family, out->addrs.src) < 0 || v1_addr(&dst, family, out->addrs.dst) < 0)
        return fail(out, "invalid address in PROXY protocol v1 header");
    if (v1_port(&sport, &out->addrs.src_port) < 0 || v1_port(&dport, &out->addrs.dst_port) < 0)
        return fail(out, "invalid port in PROXY protocol v1 header");
    out->addrs.family = (uint8_t)family;
    return (ssize_t)line_len;
}

static ssize_t parse_v1(const uint8_t *b, size_t len, struct pp_result *out)
{
    out->version = 1;
    size_t lim = len < PP_V1_MAX ? len : PP_V1_MAX;
    const uint8_t *lf = memchr(b, '\n', lim);
    if (!lf) {
        if (len >= PP_V1_MAX)
            return fail(out, "PROXY protocol v1 header longer than 107 bytes");
        /* A CR can only be the one before the final LF. */
        const uint8_t *cr = memchr(b, '\r', len);
        if (cr && cr != b + len - 1)
            return fail(out, "PROXY protocol v1 header not terminated by CRLF");
        return PP_NEED_MORE;
    }
    size_t line_len = (size_t)(lf - b) + 1;
    /* (A CR elsewhere was already an error while the line was incomplete:
     * the outcome must not depend on how the bytes were split.) */
    if (line_len < 8 || lf[-1] != '\r' || memchr(b, '\r', line_len - 2))
        return fail(out, "PROXY protocol v1 header not terminated by CRLF");
    return v1_fields(b + 6, lf - 1, line_len, out);
}

/* ------------------------------------------------------------------ v2 */

/* Size of the address block of `fam` (spec 2.2). */
static size_t v2_addr_len(unsigned fam)
{
    switch (fam) {
    case V2_FAM_INET: return 12;
    case V2_FAM_INET6: return 36;
    case V2_FAM_UNIX: return 216;
    default: return 0;
    }
}

static void v2_addrs(const uint8_t *a, unsigned fam, struct pp_addrs *out)
{
    size_t alen = fam == V2_FAM_INET ? 4 : 16;
    memcpy(out->src, a, alen);
    memcpy(out->dst, a + alen, alen);
    out->src_port = (uint16_t)(a[2 * alen] << 8 | a[2 * alen + 1]);
    out->dst_port = (uint16_t)(a[2 * alen + 2] << 8 | a[2 * alen + 3]);
    out->family = fam == V2_FAM_INET ? AF_INET : AF_INET6;
}

static ssize_t parse_v2(const uint8_t *b, size_t len, struct pp_result *out)
{
    out->version = 2;
    if (len < V2_FIXED)
        return PP_NEED_MORE;
    unsigned ver = b[12] >> 4, cmd = b[12] & 0x0f;
    unsigned fam = b[13] >> 4, proto = b[13] & 0x0f;
    size_t total = V2_FIXED + ((size_t)b[14] << 8 | b[15]);
    if (ver != 2)
        return fail(out, "unknown PROXY protocol version");
    if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
        return fail(out, "unknown PROXY protocol v2 command");
    if (total > PP_V2_MAX)
        return fail(out, "PROXY protocol v2 header is too large");
    /* LOCAL (a balancer's own health check): the family is to be ignored. */
    if (cmd == V2_CMD_PROXY) {
        if (fam > V2_FAM_UNIX || proto > V2_PROTO_DGRAM)
            return fail(out, "unknown address family or transport in PROXY protocol v2 header");
        if (total - V2_FIXED < v2_addr_len(fam))
            return fail(out, "PROXY protocol v2 address block is truncated");
    }
    if (len < total)
        return PP_NEED_MORE;
    /* Only TCP over IPv4/IPv6 names a client we can use; for the rest
     * (AF_UNSPEC, AF_UNIX, datagrams) the real peer stays. TLVs after the
     * addresses are skipped with the rest of the block. */
    if (cmd == V2_CMD_PROXY && proto == V2_PROTO_STREAM &&
        (fam == V2_FAM_INET || fam == V2_FAM_INET6))
        v2_addrs(b + V2_FIXED, fam, &out->addrs);
    return (ssize_t)total;
}

/* ------------------------------------------------------------------ API */

ssize_t pp_parse(const void *buf, size_t len, struct pp_result *out)
{
    const uint8_t *b = buf;
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return PP_NEED_MORE;
    /* The first byte decides: 'P' for v1, CR for v2; compare what we have. */
    if (b[0] == v2_sig[0]) {
        if (memcmp(b, v2_sig, len < sizeof(v2_sig) ? len : sizeof(v2_sig)) != 0)
            return fail(out, "no PROXY protocol header");
        return parse_v2(b, len, out);
    }
    if (memcmp(b, "PROXY ", len < 6 ? len : 6) != 0)
        return fail(out, "no PROXY protocol header");
    return parse_v1(b, len, out);
}

size_t pp_addr_text(const struct pp_addrs *a, int dst, char *out, size_t cap)
{
    if (cap == 0)
        return 0;
    out[0] = '\0';
    if (a->family != AF_INET && a->family != AF_INET6)
        return 0;
    if (!inet_ntop(a->family, dst ? a->dst : a->src, out, (socklen_t)cap)) {
        out[0] = '\0';
        return 0;
    }
    return strlen(out);
}
