/*
 * proxy_socket.c - proxy_bind and proxy_socket_rcvbuf/sndbuf
 * (proxy_socket.h), checked as nginx checks them.
 */
#include "conf/proxy_socket.h"

#include <arpa/inet.h>
#include <string.h>

#include "conf/directive_table.h"
#include "conf/vars.h"

void proxy_socket_conf_init(struct proxy_socket_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->rcvbuf = c->sndbuf = CONF_UNSET_U64;
}

void proxy_socket_conf_merge(struct proxy_socket_conf *c, const struct proxy_socket_conf *prev)
{
    if (!c->bind_set && prev) {
        c->bind = prev->bind;
        c->bind_set = prev->bind_set;
        c->transparent = prev->transparent;
    }
    if (c->rcvbuf == CONF_UNSET_U64)
        c->rcvbuf = prev ? prev->rcvbuf : 0;
    if (c->sndbuf == CONF_UNSET_U64)
        c->sndbuf = prev ? prev->sndbuf : 0;
}

/* A constant address must be an IP address, with an optional port
 * (nginx's ngx_parse_addr_port). */
static int valid_address(const char *a)
{
    char host[INET6_ADDRSTRLEN + 2];
    unsigned char buf[sizeof(struct in6_addr)];
    const char *end = a + strlen(a);
    if (a[0] == '[') {
        const char *rb = strchr(a, ']');
        if (!rb || (size_t)(rb - a - 1) >= sizeof(host))
            return 0;
        memcpy(host, a + 1, (size_t)(rb - a - 1));
        host[rb - a - 1] = '\0';
        return inet_pton(AF_INET6, host, buf) == 1 && (rb[1] == '\0' || rb[1] == ':');
    }
    const char *colon = strchr(a, ':');
    size_t n = colon ? (size_t)(colon - a) : (size_t)(end - a);
    if (colon && strchr(colon + 1, ':'))
        return inet_pton(AF_INET6, a, buf) == 1; /* a bare IPv6 address */
    if (n >= sizeof(host))
        return 0;
    memcpy(host, a, n);
    host[n] = '\0';
    return inet_pton(AF_INET, host, buf) == 1;
}

/* proxy_bind address [transparent] | off */
static const char *set_bind(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct proxy_socket_conf *c = &((struct loc_conf *)conf)->proxy_socket;
    if (c->bind_set)
        return "is duplicate";
    c->bind_set = 1;
    const char *a = p->node->args[0];
    if (strcmp(a, "off") == 0) {
        if (p->node->nargs > 1)
            return conf_err(p, "invalid parameter \"%s\"", p->node->args[1]);
        return NULL;
    }
    if (p->node->nargs > 1) {
        if (strcmp(p->node->args[1], "transparent") != 0)
            return conf_err(p, "invalid parameter \"%s\"", p->node->args[1]);
        c->transparent = 1;
    }
    struct tmpl *t = conf_tmpl(p, a);
    if (!t)
        return CONF_ERROR;
    if (t->constant && !valid_address(a))
        return conf_err(p, "invalid address \"%s\"", a);
    c->bind = t;
    return NULL;
}

#define PS(f) LVL_LOC, offsetof(struct loc_conf, proxy_socket.f)

const struct directive proxy_socket_directives[] = {
    {"proxy_bind", HSL, ARGS(1, 2), set_bind, LVL_LOC, 0, NULL},
    {"proxy_socket_rcvbuf", HSL, ARGS(1, 1), set_size, PS(rcvbuf), NULL},
    {"proxy_socket_sndbuf", HSL, ARGS(1, 1), set_size, PS(sndbuf), NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
