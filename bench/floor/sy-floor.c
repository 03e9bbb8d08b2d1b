/*
 * sy-floor - the floor of the benchmark: a featureless TCP relay.
 *
 *     sy-floor --port P --to B
 *
 * Accepts on 127.0.0.1:P and relays each connection, byte for byte, to
 * 127.0.0.1:B: no HTTP, no TLS, no logs, no timeouts. It does the least any
 * proxy must do per message: one read and one write per direction, with
 * edge-triggered epoll, every socket registered once. What a real proxy costs
 * above this is the price of its features (and of its inefficiencies).
 *
 * Memory: one 64 KiB read buffer for the whole process; a connection holds a
 * buffer only while the other side does not take what it was sent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFSZ 65536

struct end {
    int fd;
    int readable, writable, rdhup;
    struct end *peer;
    char *pending; /* bytes read from this end's peer, not yet written here */
    size_t plen, poff;
};

struct pair {
    struct end e[2];
    int dead;
    struct pair *next_dead;
};

static char rbuf[BUFSZ];
static int ep;
static struct pair *dead; /* freed after the epoll batch: its other end may be in it */

static void pair_close(struct pair *p)
{
    if (p->dead)
        return;
    p->dead = 1;
    for (int i = 0; i < 2; i++) {
        close(p->e[i].fd);
        free(p->e[i].pending);
        p->e[i].pending = NULL;
    }
    p->next_dead = dead;
    dead = p;
}

/* Write what is pending towards `to`; 0 when done, 1 when blocked, -1 error. */
static int flush(struct end *to)
{
    while (to->plen > to->poff) {
        ssize_t n = write(to->fd, to->pending + to->poff, to->plen - to->poff);
        if (n < 0) {
            if (errno == EAGAIN) {
                to->writable = 0;
                return 1;
            }
            return -1;
        }
        to->poff += (size_t)n;
    }
    free(to->pending);
    to->pending = NULL;
    to->plen = to->poff = 0;
    return 0;
}

/* Move bytes from `from` to its peer until one side blocks. -1: close. */
static int relay(struct end *from)
{
    struct end *to = from->peer;
    if (to->pending) {
        if (!to->writable)
            return 0;
        int r = flush(to);
        if (r)
            return r < 0 ? -1 : 0;
    }
    while (from->readable) {
        ssize_t n = read(from->fd, rbuf, BUFSZ);
        if (n < 0) {
            if (errno == EAGAIN) {
                from->readable = 0;
                break;
            }
            return -1;
        }
        if (n == 0)
            return -1;
        if (n < BUFSZ && !from->rdhup)
            from->readable = 0; /* a short read: the queue is empty (unless a
                                 * FIN is pending: no further edge announces it) */
        ssize_t w = write(to->fd, rbuf, (size_t)n);
        if (w < 0 && errno != EAGAIN)
            return -1;
        if (w < 0)
            w = 0;
        if (w < n) {
            to->writable = 0;
            to->pending = malloc((size_t)(n - w));
            if (!to->pending)
                return -1;
            memcpy(to->pending, rbuf + w, (size_t)(n - w));
            to->plen = (size_t)(n - w);
            to->poff = 0;
            return 0;
        }
    }
    return 0;
}

static int add(struct end *e)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = e};
    return epoll_ctl(ep, EPOLL_CTL_ADD, e->fd, &ev);
}

int main(int argc, char **argv)
{
    int port = 0, to = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port"))
            port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--to"))
            to = atoi(argv[i + 1]);
    }
    if (!port || !to) {
        fprintf(stderr, "usage: sy-floor --port P --to B\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 4096) < 0) {
        perror("sy-floor: bind/listen");
        return 1;
    }
    struct sockaddr_in up = a;
    up.sin_port = htons((uint16_t)to);
    ep = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN | EPOLLET, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            struct end *e = evs[i].data.ptr;
            if (!e) {
                for (;;) {
                    int c = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                    if (c < 0)
                        break;
                    int u = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    if (u < 0 || (connect(u, (struct sockaddr *)&up, sizeof(up)) < 0 &&
                                  errno != EINPROGRESS)) {
                        close(c);
                        if (u >= 0)
                            close(u);
                        continue;
                    }
                    struct pair *p = calloc(1, sizeof(*p));
                    if (!p) {
                        close(c);
                        close(u);
                        continue;
                    }
                    p->e[0].fd = c;
                    p->e[1].fd = u;
                    p->e[0].peer = &p->e[1];
                    p->e[1].peer = &p->e[0];
                    add(&p->e[0]);
                    add(&p->e[1]);
                }
                continue;
            }
            uint32_t ev = evs[i].events;
            /* The pair from either end: e[0] is its first member. */
            struct pair *pr = e->peer > e ? (struct pair *)e : (struct pair *)e->peer;
            if (pr->dead)
                continue;
            if (ev & (EPOLLERR | EPOLLHUP)) {
                pair_close(pr);
                continue;
            }
            if (ev & (EPOLLIN | EPOLLRDHUP))
                e->readable = 1;
            if (ev & EPOLLRDHUP)
                e->rdhup = 1;
            if (ev & EPOLLOUT)
                e->writable = 1;
            /* e readable: e -> peer; e writable: its pending bytes (peer -> e). */
            if (relay(e) < 0 || relay(e->peer) < 0)
                pair_close(pr);
        }
        while (dead) {
            struct pair *d = dead;
            dead = d->next_dead;
            free(d);
        }
    }
}
