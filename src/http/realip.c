/*
 * realip.c - the real client address behind trusted proxies (realip.h).
 *
 * Semantics follow nginx 1.22's ngx_http_realip_module and
 * ngx_http_get_forwarded_addr(): the peer must be trusted; X-Forwarded-For
 * is read from its last element, and with real_ip_recursive each address
 * taken must itself be trusted before the element to its left is taken;
 * several X-Forwarded-For headers are walked from the last one; X-Real-IP
 * and other headers use their first occurrence; a PROXY protocol source
 * becomes the address and its port the port. Addresses are parsed with
 * inet_pton (nginx's own parser also accepts leading zeros in IPv4).
 */
#include "http/realip.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "core/net.h"
#include "http/request.h"
#include "http/stream.h"

/* ------------------------------------------------------------ pure helpers */

int realip_trusted(const struct realip_cidr *from, unsigned n, const union conn_addr *a)
{
    int family = a->sa.sa_family;
    const uint8_t *ip = NULL;
    if (family == AF_INET) {
        ip = (const uint8_t *)&a->in.sin_addr;
    } else if (family == AF_INET6) {
        ip = a->in6.sin6_addr.s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr)) {
            family = AF_INET;
            ip += 12;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        if (from[i].family != family)
            continue;
        if (family == AF_UNIX)
            return 1;
        size_t bytes = family == AF_INET ? 4 : 16;
        size_t k = 0;
        while (k < bytes && (ip[k] & from[i].mask[k]) == from[i].addr[k])
            k++;
        if (k == bytes)
            return 1;
    }
    return 0;
}

static int parse_port(const char *p, size_t len, unsigned *port)
{
    uint64_t v;
    if (str_to_u64((struct str){p, len}, 65535, &v) < 0 || v == 0)
        return -1;
    *port = (unsigned)v;
    return 0;
}

int realip_parse_addr(struct str t, union conn_addr *out)
{
    if (net_parse_ip(t.p, t.len, out) == 0)
        return 0;
    const char *ip = t.p, *colon;
    size_t iplen;
    if (t.len && t.p[0] == '[') {
        const char *rb = memchr(t.p, ']', t.len);
        if (!rb || rb + 1 >= t.p + t.len || rb[1] != ':')
            return -1;
        ip = t.p + 1;
        iplen = (size_t)(rb - ip);
        colon = rb + 1;
    } else {
        colon = memchr(t.p, ':', t.len);
        if (!colon)
            return -1;
        iplen = (size_t)(colon - t.p);
    }
    unsigned port;
    if (parse_port(colon + 1, (size_t)(t.p + t.len - colon - 1), &port) < 0 ||
        net_parse_ip(ip, iplen, out) < 0)
        return -1;
    if (out->sa.sa_family == AF_INET)
        out->in.sin_port = htons((uint16_t)port);
    else
        out->in6.sin6_port = htons((uint16_t)port);
    return 0;
}

static int is_sep(char c)
{
    return c == ' ' || c == ',';
}

enum realip_rc realip_forwarded(const struct realip_cidr *from, unsigned n, int recursive,
                                struct str value, union conn_addr *addr)
{
    const char *x = value.p;
    size_t len = value.len;
    int found = 0;
    for (;;) {
        if (!realip_trusted(from, n, addr))
            return found ? REALIP_DONE : REALIP_DECLINED;
        while (len > 0 && is_sep(x[len - 1]))
            len--;
        size_t start = len;
        while (start > 0 && !is_sep(x[start - 1]))
            start--;
        union conn_addr a;
        if (realip_parse_addr((struct str){x + start, len - start}, &a) < 0)
            return found ? REALIP_DONE : REALIP_DECLINED;
        *addr = a;
        found = 1;
        if (!recursive || start == 0)
            return REALIP_OK;
        len = start - 1; /* drop the separator before this element */
    }
}

/* ------------------------------------------------------------ per request */

/* Several X-Forwarded-For headers: the last one first (nginx 1.22). */
static enum realip_rc from_xff(const struct request *r, const struct loc_conf *lc,
                               union conn_addr *addr)
{
    enum realip_rc rc = REALIP_DECLINED;
    int found = 0;
    for (size_t i = r->nheaders; i-- > 0;) {
        if (!str_caseeq_cstr(r->headers[i].name, "X-Forwarded-For"))
            continue;
        rc = realip_forwarded(lc->real_ip_from, lc->nreal_ip_from, lc->real_ip_recursive,
                              r->headers[i].value, addr);
        if (!lc->real_ip_recursive)
            break;
        if (rc == REALIP_DECLINED && found)
            return REALIP_DONE;
        if (rc != REALIP_OK)
            break;
        found = 1;
    }
    return rc;
}

/* Value of the first header called `name` (any case); NULL slice when none. */
static struct str first_header(const struct request *r, struct str name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (str_caseeq(r->headers[i].name, name))
            return r->headers[i].value;
    return STR_NULL;
}

/* The PROXY protocol source, when the peer is trusted. */
static enum realip_rc from_proxy_protocol(const struct client_stream *s, const struct loc_conf *lc,
                                          union conn_addr *addr)
{
    const struct pp_addrs *pp = &s->conn->pp;
    if (pp->family != AF_INET && pp->family != AF_INET6)
        return REALIP_DECLINED;
    if (!realip_trusted(lc->real_ip_from, lc->nreal_ip_from, addr))
        return REALIP_DECLINED;
    memset(addr, 0, sizeof(*addr));
    if (pp->family == AF_INET) {
        addr->in.sin_family = AF_INET;
        memcpy(&addr->in.sin_addr, pp->src, 4);
        addr->in.sin_port = htons(pp->src_port);
    } else {
        addr->in6.sin6_family = AF_INET6;
        memcpy(&addr->in6.sin6_addr, pp->src, 16);
        addr->in6.sin6_port = htons(pp->src_port);
    }
    return REALIP_OK;
}

void realip_apply(struct client_stream *s, const struct loc_conf *lc)
{
    struct request *r = &s->req;
    if (r->realip_set || !lc || lc->nreal_ip_from == 0)
        return;
    union conn_addr addr = s->conn->c.peer;
    enum realip_rc rc = REALIP_DECLINED;
    struct str v;
    switch (lc->real_ip_header) {
    case REALIP_HDR_PROXY_PROTOCOL:
        rc = from_proxy_protocol(s, lc, &addr);
        break;
    case REALIP_HDR_X_FORWARDED_FOR:
        rc = from_xff(r, lc, &addr);
        break;
    default:
        v = first_header(r, lc->real_ip_header == REALIP_HDR_OTHER ? lc->real_ip_header_name
                                                                   : STR_LIT("X-Real-IP"));
        if (v.p)
            rc = realip_forwarded(lc->real_ip_from, lc->nreal_ip_from, lc->real_ip_recursive, v,
                                  &addr);
        break;
    }
    if (rc == REALIP_DECLINED)
        return;
    r->realip = addr;
    r->realip_set = 1;
}

const union conn_addr *realip_client(const struct client_stream *s)
{
    return s->req_active && s->req.realip_set ? &s->req.realip : &s->conn->c.peer;
}
