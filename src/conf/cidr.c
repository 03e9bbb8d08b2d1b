/*
 * cidr.c - set_real_ip_from addresses (struct realip_cidr, conf.h), parsed at
 * load by the directive and used by http/realip.c at run time.
 */
#include <string.h>

#include "conf/conf.h"
#include "core/conn.h"
#include "core/net.h"

int realip_parse_cidr(const char *text, struct realip_cidr *out)
{
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    union conn_addr a;
    if (net_parse_ip(text, alen, &a) < 0)
        return -1;
    memset(out, 0, sizeof(*out));
    out->family = (uint8_t)a.sa.sa_family;
    size_t bytes = a.sa.sa_family == AF_INET ? 4 : 16;
    memcpy(out->addr, a.sa.sa_family == AF_INET ? (const void *)&a.in.sin_addr
                                                : (const void *)&a.in6.sin6_addr,
           bytes);
    uint64_t bits = bytes * 8;
    if (slash && str_to_u64(str_from_cstr(slash + 1), bytes * 8, &bits) < 0)
        return -1;
    int low = 0;
    for (size_t i = 0; i < bytes; i++) {
        unsigned take = bits >= 8 ? 8 : (unsigned)bits;
        bits -= take;
        out->mask[i] = (uint8_t)(0xff00u >> take);
        if (out->addr[i] & ~out->mask[i])
            low = 1;
        out->addr[i] &= out->mask[i];
    }
    return low;
}
