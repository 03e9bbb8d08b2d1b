/*
 * geo_var.c - geo variables at run time (geo_var.h): nginx's
 * ngx_http_geo_cidr_variable / ngx_http_geo_range_variable.
 */
#include "http/geo_var.h"

#include <arpa/inet.h>
#include <string.h>

#include "core/net.h"
#include "http/realip.h"
#include "http/stream.h"
#include "http/vars_eval.h"

/* X-Forwarded-For behind the geo block's `proxy` addresses (the last header
 * first, as realip does and nginx's ngx_http_get_forwarded_addr). */
static void geo_forwarded(const struct request *r, const struct geo_conf *g,
                          union conn_addr *addr)
{
    for (size_t i = r->nheaders; i-- > 0;) {
        if (!str_caseeq_cstr(r->headers[i].name, "X-Forwarded-For"))
            continue;
        enum realip_rc rc = realip_forwarded(g->proxies, g->nproxies, g->proxy_recursive,
                                             r->headers[i].value, addr);
        /* recursive: an earlier header is read only when this one was used up */
        if (!g->proxy_recursive || rc != REALIP_OK)
            return;
    }
}

/* The address to look up; 0, or -1 when there is none. */
static int geo_address(struct client_stream *s, const struct geo_conf *g, union conn_addr *addr)
{
    if (g->has_source) {
        struct str v;
        if (tmpl_eval(s, &g->source, &v) < 0 || net_parse_ip(v.p ? v.p : "", v.len, addr) < 0)
            return -1;
    } else {
        *addr = *realip_client(s);
    }
    if (g->nproxies)
        geo_forwarded(&s->req, g, addr);
    return 0;
}

struct str geo_var_value(struct client_stream *s, const struct geo_conf *g)
{
    union conn_addr addr;
    uint32_t ip = 0xffffffffu; /* nginx's INADDR_NONE for "no address" */
    const uint8_t *ip6 = NULL;
    if (geo_address(s, g, &addr) == 0) {
        if (addr.sa.sa_family == AF_INET) {
            ip = ntohl(addr.in.sin_addr.s_addr);
        } else if (addr.sa.sa_family == AF_INET6) {
            const uint8_t *b = addr.in6.sin6_addr.s6_addr;
            if (IN6_IS_ADDR_V4MAPPED(&addr.in6.sin6_addr))
                ip = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
            else
                ip6 = b;
        }
    }
    const struct str *v;
    if (g->ranges) {
        v = ip6 ? g->deflt : geo_find_range(g, ip);
    } else if (ip6) {
        v = geo_trie_find(g->tree6, ip6, 128);
    } else {
        uint8_t b[4] = {(uint8_t)(ip >> 24), (uint8_t)(ip >> 16), (uint8_t)(ip >> 8), (uint8_t)ip};
        v = geo_trie_find(g->tree4, b, 32);
    }
    return v ? *v : STR_LIT("");
}
