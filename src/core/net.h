/*
 * net.h - socket helpers: listening sockets, non-blocking connects, address
 * formatting. No policy: callers decide what to log.
 */
#ifndef SY_CORE_NET_H
#define SY_CORE_NET_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

/*
 * Open a non-blocking listening socket on `addr` (SO_REUSEADDR; SO_REUSEPORT
 * when `reuseport`; IPV6_V6ONLY per `ipv6only` for AF_INET6). Returns the fd,
 * or -1 with errno set and `*what` naming the failing call ("bind", ...).
 */
int net_listen(const struct sockaddr *addr, socklen_t len, int backlog, int reuseport,
               int ipv6only, const char **what);

/*
 * Start a non-blocking connect. Returns the fd with *in_progress = 1 when the
 * connect is pending (wait for writability, then net_connect_result()), or 0
 * when already connected; -1 on immediate failure (errno set).
 */
int net_connect(const struct sockaddr *addr, socklen_t len, int *in_progress);

/* What is set on an outgoing socket before it connects (proxy_bind,
 * proxy_socket_rcvbuf/sndbuf). */
struct net_connect_opts {
    const struct sockaddr *bind; /* local address (NULL: the kernel chooses) */
    socklen_t bind_len;
    int transparent;             /* IP_TRANSPARENT: bind a non-local address */
    int rcvbuf, sndbuf;          /* SO_RCVBUF / SO_SNDBUF, 0 = default */
};

/*
 * net_connect() with `o` applied first (NULL: none). A failed bind fails
 * the call (errno set, *bind_failed = 1); a failed buffer or transparent
 * option is logged and ignored, as nginx does.
 */
int net_connect_ex(const struct sockaddr *addr, socklen_t len, const struct net_connect_opts *o,
                   int *in_progress, int *bind_failed);

/*
 * Parse an IP address with an optional port: "1.2.3.4", "1.2.3.4:80",
 * "[::1]", "[::1]:80" or a bare "::1" (no port then). The port defaults to
 * `defport`. Fills *ss and *len; 0, or -1 when `s` is not that (a name,
 * a bad port).
 */
int net_parse_ip_port(const char *s, size_t n, unsigned defport, struct sockaddr_storage *ss,
                      socklen_t *len);

/* After writability on a pending connect: 0 when connected, else the errno. */
int net_connect_result(int fd);

/* Accept one connection non-blocking; -1 with errno (EAGAIN when none). */
int net_accept(int lfd, struct sockaddr_storage *peer, socklen_t *peerlen);

/* "1.2.3.4:80" or "[::1]:80" into out; returns length. */
size_t net_addr_str(const struct sockaddr *sa, char *out, size_t cap);
/* Only the address ("1.2.3.4", "::1"). */
size_t net_ip_str(const struct sockaddr *sa, char *out, size_t cap);
unsigned net_port(const struct sockaddr *sa);

/* Local address of a connected socket. */
int net_local_addr(int fd, struct sockaddr_storage *out, socklen_t *len);

union conn_addr;
/* Text [p, p+len) as an IPv4 or IPv6 address (no port, no brackets), via
 * inet_pton, into `out` (port 0). 0, or -1 when it is neither. */
int net_parse_ip(const char *p, size_t len, union conn_addr *out);

#endif
