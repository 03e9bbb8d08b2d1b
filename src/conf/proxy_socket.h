/*
 * proxy_socket.h - how the proxy's upstream sockets are made: nginx's
 * `proxy_bind` (a local address, variables allowed, `transparent`, `off`)
 * and `proxy_socket_rcvbuf` / `proxy_socket_sndbuf` (nginx >= 1.25.4).
 * Embedded in struct loc_conf as `lc->proxy_socket`; used by proxy.c when
 * it connects.
 */
#ifndef SY_CONF_PROXY_SOCKET_H
#define SY_CONF_PROXY_SOCKET_H

#include <stdint.h>

struct tmpl;

struct proxy_socket_conf {
    const struct tmpl *bind; /* proxy_bind address; NULL: none (or off) */
    int bind_set;            /* given at this level (off included) */
    int transparent;         /* proxy_bind ... transparent */
    uint64_t rcvbuf, sndbuf; /* 0: the system's default; UINT64_MAX unset */
};

void proxy_socket_conf_init(struct proxy_socket_conf *c);
void proxy_socket_conf_merge(struct proxy_socket_conf *c, const struct proxy_socket_conf *prev);

#endif
