/*
 * net.c - socket helpers (see net.h).
 */
#include "core/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/conn.h"
#include "core/log.h"

int net_listen(const struct sockaddr *addr, socklen_t len, int backlog, int reuseport,
               int ipv6only, const char **what)
{
    int one = 1;
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *what = "socket()";
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto fail_opt;
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        goto fail_opt;
    /* Accepted sockets inherit TCP_NODELAY from the listener (Linux copies
     * the option): no Nagle delay on small writes after large ones (a
     * response tail waiting 40 ms for a delayed ACK), and no setsockopt per
     * connection. nginx sets it per keep-alive connection instead. */
    if (addr->sa_family != AF_UNIX &&
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        goto fail_opt;
    if (addr->sa_family == AF_INET6) {
        int v = ipv6only ? 1 : 0;
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof(v)) < 0)
            goto fail_opt;
    }
    if (bind(fd, addr, len) < 0) {
        *what = "bind()";
        goto fail;
    }
    if (listen(fd, backlog) < 0) {
        *what = "listen()";
        goto fail;
    }
    return fd;
fail_opt:
    *what = "setsockopt()";
fail: {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}
}

int net_connect(const struct sockaddr *addr, socklen_t len, int *in_progress)
{
    int bind_failed;
    return net_connect_ex(addr, len, NULL, in_progress, &bind_failed);
}

static void set_opt(int fd, int level, int name, int value, const char *what)
{
    if (setsockopt(fd, level, name, &value, sizeof(value)) < 0)
        sy_log(LOG_LVL_ALERT, "setsockopt(%s) failed, ignored (%d: %s)", what, errno,
               strerror(errno));
}

int net_connect_ex(const struct sockaddr *addr, socklen_t len, const struct net_connect_opts *o,
                   int *in_progress, int *bind_failed)
{
    *in_progress = 0;
    *bind_failed = 0;
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (addr->sa_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (o && o->rcvbuf > 0)
        set_opt(fd, SOL_SOCKET, SO_RCVBUF, o->rcvbuf, "SO_RCVBUF");
    if (o && o->sndbuf > 0)
        set_opt(fd, SOL_SOCKET, SO_SNDBUF, o->sndbuf, "SO_SNDBUF");
    if (o && o->bind && addr->sa_family != AF_UNIX) {
        if (o->transparent) {
            if (o->bind->sa_family == AF_INET6)
                set_opt(fd, SOL_IPV6, IPV6_TRANSPARENT, 1, "IPV6_TRANSPARENT");
            else
                set_opt(fd, SOL_IP, IP_TRANSPARENT, 1, "IP_TRANSPARENT");
        }
        if (bind(fd, o->bind, o->bind_len) < 0) {
            int e = errno;
            close(fd);
            errno = e;
            *bind_failed = 1;
            return -1;
        }
    }
    if (connect(fd, addr, len) == 0)
        return fd;
    if (errno == EINPROGRESS) {
        *in_progress = 1;
        return fd;
    }
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

int net_connect_result(int fd)
{
    int err = 0;
    socklen_t l = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
        return errno;
    return err;
}

int net_accept(int lfd, struct sockaddr_storage *peer, socklen_t *peerlen)
{
    *peerlen = sizeof(*peer);
    return accept4(lfd, (struct sockaddr *)peer, peerlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

size_t net_ip_str(const struct sockaddr *sa, char *out, size_t cap)
{
    const void *a;
    if (sa->sa_family == AF_INET)
        a = &((const struct sockaddr_in *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    else {
        snprintf(out, cap, "unix:");
        return strlen(out);
    }
    if (!inet_ntop(sa->sa_family, a, out, (socklen_t)cap)) {
        if (cap)
            out[0] = '\0';
        return 0;
    }
    return strlen(out);
}

unsigned net_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

size_t net_addr_str(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    net_ip_str(sa, ip, sizeof(ip));
    int n;
    if (sa->sa_family == AF_INET6)
        n = snprintf(out, cap, "[%s]:%u", ip, net_port(sa));
    else
        n = snprintf(out, cap, "%s:%u", ip, net_port(sa));
    return n < 0 ? 0 : ((size_t)n >= cap ? cap - 1 : (size_t)n);
}

int net_local_addr(int fd, struct sockaddr_storage *out, socklen_t *len)
{
    *len = sizeof(*out);
    return getsockname(fd, (struct sockaddr *)out, len);
}

int net_parse_ip(const char *p, size_t len, union conn_addr *out)
{
    char tmp[64];
    if (len == 0 || len >= sizeof(tmp) || memchr(p, '\0', len))
        return -1;
    memcpy(tmp, p, len);
    tmp[len] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, tmp, &out->in.sin_addr) == 1) {
        out->in.sin_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, tmp, &out->in6.sin6_addr) == 1) {
        out->in6.sin6_family = AF_INET6;
        return 0;
    }
    return -1;
}

int net_parse_ip_port(const char *s, size_t n, unsigned defport, struct sockaddr_storage *ss,
                      socklen_t *len)
{
    char buf[INET6_ADDRSTRLEN + 16];
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *host = buf, *port = NULL;
    if (buf[0] == '[') {
        char *rb = strchr(buf, ']');
        if (!rb || (rb[1] && rb[1] != ':'))
            return -1;
        *rb = '\0';
        host = buf + 1;
        port = rb[1] == ':' ? rb + 2 : NULL;
    } else {
        char *c = strchr(buf, ':');
        if (c && !strchr(c + 1, ':')) { /* one colon: host:port (more: bare IPv6) */
            *c = '\0';
            port = c + 1;
        }
    }
    long pn = defport;
    if (port) {
        char *end;
        pn = strtol(port, &end, 10);
        if (!*port || *end || pn < 0 || pn > 65535)
            return -1;
    }
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)pn);
        *len = sizeof(*s4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)pn);
        *len = sizeof(*s6);
        return 0;
    }
    return -1;
}
