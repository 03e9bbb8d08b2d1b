/*
 * dyn_upstream.c - upstream groups made at run time for proxy_pass with
 * variables, and the DNS lookups they need (dyn_upstream.h).
 *
 * The DNS client is the smallest that does the job: one UDP socket per
 * lookup, an A query (and an AAAA one with ipv6=on) to the first resolver,
 * the next resolver after resolver_timeout / its count, answers matched by
 * query id and question; CNAME chains are followed by taking every A/AAAA
 * record of the answer section (what a recursive resolver returns).
 */
#include "proxy/dyn_upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/container.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/net.h"
#include "proxy/balance.h"
#include "proxy/dns_wire.h"

#define DYN_MAX_PEERS 16

struct dyn_wait {
    struct dyn_wait *next;
    struct dyn_upstream *d;
    dyn_upstream_cb *cb;
    void *ctx;
};

struct dyn_upstream {
    struct dyn_upstream *next;
    char *key;                  /* "host:port", lower-case */
    char *host;                 /* the name to look up (NUL-terminated) */
    unsigned port;
    struct upstream_conf conf;
    struct upstream_peer peers[DYN_MAX_PEERS];
    struct upstream_rt rt;
    struct peer_rt prt[DYN_MAX_PEERS];
    unsigned refs;
    uint64_t last_used;
    uint64_t expires;           /* loop_now() ms; 0 = never (an IP literal) */
    int ready;                  /* peers are known */
    int orphan;                 /* replaced by a fresh lookup; freed when let go */
    /* a lookup in progress */
    struct handle h;            /* the UDP socket, fd -1 when none */
    struct timer t;
    struct sockaddr_storage servers[8];
    socklen_t server_len[8];
    unsigned nservers, server;  /* resolvers, the one asked */
    uint16_t id_a, id_aaaa;
    int want_a, want_aaaa;      /* answers still expected */
    uint32_t ttl;
    struct sockaddr_storage found[DYN_MAX_PEERS]; /* addresses answered so far */
    unsigned nfound;
    int rcode;                  /* the last error RCODE seen */
    uint64_t valid;             /* resolver valid= (ms), 0 = the TTL */
    uint64_t timeout;           /* per resolver */
    struct dyn_wait *waiters;
};

static struct dyn_upstream *groups;
static unsigned ngroups;

const struct upstream_conf *dyn_upstream_conf(struct dyn_upstream *d)
{
    return &d->conf;
}

struct upstream_rt *dyn_upstream_rt(struct dyn_upstream *d)
{
    return &d->rt;
}

static void group_free(struct dyn_upstream *d);

void dyn_upstream_put(struct dyn_upstream *d)
{
    if (d && d->refs)
        d->refs--;
    if (d && d->orphan && !d->refs)
        group_free(d);
}

static void set_peers(struct dyn_upstream *d, const struct sockaddr_storage *addrs, unsigned n)
{
    for (unsigned i = 0; i < d->conf.npeers; i++) {
        free((char *)d->peers[i].name);
        tls_session_free(d->prt[i].tls.session);
    }
    memset(d->peers, 0, sizeof(d->peers));
    memset(d->prt, 0, sizeof(d->prt));
    for (unsigned i = 0; i < n; i++) {
        struct upstream_peer *pe = &d->peers[i];
        pe->addr = addrs[i];
        pe->addrlen = addrs[i].ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                     : sizeof(struct sockaddr_in);
        char ip[INET6_ADDRSTRLEN], buf[INET6_ADDRSTRLEN + 16];
        const void *a = addrs[i].ss_family == AF_INET6
                            ? (const void *)&((const struct sockaddr_in6 *)&addrs[i])->sin6_addr
                            : (const void *)&((const struct sockaddr_in *)&addrs[i])->sin_addr;
        inet_ntop(addrs[i].ss_family, a, ip, sizeof(ip));
        snprintf(buf, sizeof(buf), addrs[i].ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip,
                 d->port);
        pe->name = strdup(buf);
        pe->weight = 1;
        pe->max_fails = 1;
        pe->fail_timeout = 10000;
        d->prt[i].effective_weight = 1;
    }
    d->conf.npeers = d->conf.nprimary = n;
    d->ready = n > 0;
}

static void group_free(struct dyn_upstream *d)
{
    set_peers(d, NULL, 0);
    if (d->h.fd >= 0) {
        loop_del(&d->h);
        close(d->h.fd);
    }
    timer_cancel(&d->t);
    for (struct dyn_wait *w = d->waiters, *n; w; w = n) {
        n = w->next;
        free(w);
    }
    balance_rt_free(&d->rt);
    free(d->key);
    free(d->host);
    free(d);
}

void dyn_upstream_release_all(void)
{
    while (groups) {
        struct dyn_upstream *d = groups;
        groups = d->next;
        group_free(d);
    }
    ngroups = 0;
}

/* Make room: drop the least recently used group nobody holds. */
static void evict(void)
{
    struct dyn_upstream **victim = NULL;
    for (struct dyn_upstream **pp = &groups; *pp; pp = &(*pp)->next)
        if (!(*pp)->refs && !(*pp)->waiters && (!victim || (*pp)->last_used < (*victim)->last_used))
            victim = pp;
    if (!victim)
        return;
    struct dyn_upstream *d = *victim;
    *victim = d->next;
    ngroups--;
    group_free(d);
}

/* ------------------------------------------------------------ DNS */

static void send_queries(struct dyn_upstream *d)
{
    unsigned char q[300];
    const struct sockaddr *to = (const struct sockaddr *)&d->servers[d->server];
    /* connected: the kernel drops datagrams from anyone else */
    if (connect(d->h.fd, to, d->server_len[d->server]) < 0)
        return; /* the timer moves on to the next resolver */
    for (int type = 0; type < 2; type++) {
        int want = type ? d->want_aaaa : d->want_a;
        if (!want)
            continue;
        size_t n = dns_query_build(q, sizeof(q), type ? d->id_aaaa : d->id_a, d->host,
                                   type ? DNS_TYPE_AAAA : DNS_TYPE_A);
        if (n)
            (void)send(d->h.fd, q, n, 0);
    }
}

static void finish(struct dyn_upstream *d, const char *err);

static void on_dns(struct handle *h, uint32_t events)
{
    (void)events;
    struct dyn_upstream *d = container_of(h, struct dyn_upstream, h);
    unsigned char m[1500];
    for (;;) {
        ssize_t n = recv(h->fd, m, sizeof(m), 0);
        if (n < 0)
            return; /* EAGAIN, or an ICMP error: the timer moves on */
        uint16_t id = 0;
        unsigned before = d->nfound;
        uint32_t ttl = d->ttl;
        int rc = dns_answer_parse(m, (size_t)n, &id, d->port, d->found, &d->nfound,
                                  DYN_MAX_PEERS, &ttl);
        int is_a = rc >= 0 && d->want_a && id == d->id_a;
        int is_aaaa = rc >= 0 && d->want_aaaa && id == d->id_aaaa;
        if (!is_a && !is_aaaa) {
            d->nfound = before; /* not ours: forget what it said */
            continue;
        }
        d->ttl = ttl;
        if (rc > 0)
            d->rcode = rc;
        if (is_a)
            d->want_a = 0;
        else
            d->want_aaaa = 0;
        if (!d->want_a && !d->want_aaaa) {
            finish(d, NULL);
            return;
        }
    }
}

static void on_dns_timer(struct timer *t)
{
    struct dyn_upstream *d = container_of(t, struct dyn_upstream, t);
    if (++d->server < d->nservers) {
        send_queries(d);
        timer_set(&d->t, d->timeout);
        return;
    }
    finish(d, "110: Operation timed out");
}

/* The lookup ended: set the peers (or fail) and run the waiters. */
static void finish(struct dyn_upstream *d, const char *err)
{
    static char why[64];
    if (d->h.fd >= 0) {
        loop_del(&d->h);
        close(d->h.fd);
        d->h.fd = -1;
    }
    timer_cancel(&d->t);
    if (!err && d->nfound == 0)
        err = d->rcode == 3 ? "3: Host not found" : d->rcode == 2 ? "2: Server failure"
              : d->rcode ? (snprintf(why, sizeof(why), "%d: DNS error", d->rcode), why)
                         : "3: Host not found";
    if (!err) {
        set_peers(d, d->found, d->nfound);
        uint64_t ttl_ms = (uint64_t)(d->ttl ? d->ttl : 1) * 1000;
        d->expires = loop_now() + (d->valid ? d->valid : ttl_ms);
    } else {
        d->expires = loop_now() + 1000; /* retry a failed name after a second */
        set_peers(d, NULL, 0);
    }
    d->nfound = 0;
    d->rcode = 0;
    struct dyn_wait *w = d->waiters;
    d->waiters = NULL;
    while (w) {
        struct dyn_wait *n = w->next;
        if (w->cb) {
            if (d->ready)
                d->refs++;
            w->cb(w->ctx, d->ready ? d : NULL, d->ready ? NULL : err);
        }
        free(w);
        w = n;
    }
}

/* Parse the resolver words of `lc` ("1.2.3.4", "1.2.3.4:5353", "[::1]:53"). */
static unsigned parse_servers(const struct loc_conf *lc, struct dyn_upstream *d)
{
    unsigned n = 0;
    for (unsigned i = 0; i < lc->nresolvers && n < 8; i++)
        if (net_parse_ip_port(lc->resolvers[i].p, lc->resolvers[i].len, 53, &d->servers[n],
                              &d->server_len[n]) == 0)
            n++;
    return n;
}

/* Start looking `d->host` up. 0, or -1 with *err. */
static int start_lookup(const struct loc_conf *lc, struct dyn_upstream *d, const char **err)
{
    d->nservers = parse_servers(lc, d);
    if (d->nservers == 0) {
        *err = "no resolver defined";
        return -1;
    }
    d->server = 0;
    d->valid = lc->resolver_valid;
    d->timeout = lc->resolver_timeout / d->nservers ? lc->resolver_timeout / d->nservers : 1;
    int fd = socket(d->servers[0].ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = "socket() failed";
        return -1;
    }
    d->h.fd = fd;
    d->h.on_io = on_dns;
    if (loop_add_input(&d->h) < 0) {
        close(fd);
        d->h.fd = -1;
        *err = "epoll_ctl() failed";
        return -1;
    }
    uint16_t ids[2];
    if (getrandom(ids, sizeof(ids), 0) != sizeof(ids))
        ids[0] = (uint16_t)rand(), ids[1] = (uint16_t)rand();
    d->id_a = ids[0];
    d->id_aaaa = (uint16_t)(ids[1] == ids[0] ? ids[1] + 1 : ids[1]);
    d->want_a = lc->resolver_ipv4 != 0;
    d->want_aaaa = lc->resolver_ipv6 != 0;
    d->ttl = 0;
    d->t.cb = on_dns_timer;
    send_queries(d);
    timer_set(&d->t, d->timeout);
    return 0;
}

/* ------------------------------------------------------------ groups */

/* An IP literal: its address, or 0 when `host` is a name. */
static int literal(const char *host, unsigned port, struct sockaddr_storage *ss)
{
    socklen_t len; /* `host` has no port part: the port is `port` */
    return net_parse_ip_port(host, strlen(host), port, ss, &len) == 0;
}

int dyn_upstream_get(const struct loc_conf *lc, struct str hostport, unsigned defport,
                     struct dyn_upstream **out, dyn_upstream_cb *cb, void *ctx,
                     struct dyn_wait **wait, const char **err)
{
    char key[300], host[260];
    if (hostport.len == 0 || hostport.len >= sizeof(host)) {
        *err = "invalid host";
        return -1;
    }
    /* host, [v6] or host:port */
    size_t hl = hostport.len;
    unsigned port = defport;
    const char *hp = hostport.p;
    if (hp[0] == '[') {
        const char *rb = memchr(hp, ']', hostport.len);
        if (!rb) {
            *err = "invalid host";
            return -1;
        }
        hl = (size_t)(rb - hp - 1);
        memcpy(host, hp + 1, hl);
        if ((size_t)(rb - hp) + 1 < hostport.len) {
            if (rb[1] != ':') {
                *err = "invalid host";
                return -1;
            }
            port = (unsigned)atoi(rb + 2);
        }
    } else {
        const char *colon = memchr(hp, ':', hostport.len);
        if (colon) {
            hl = (size_t)(colon - hp);
            char pb[8];
            size_t pl = hostport.len - hl - 1;
            if (pl == 0 || pl >= sizeof(pb)) {
                *err = "invalid port";
                return -1;
            }
            memcpy(pb, colon + 1, pl);
            pb[pl] = '\0';
            char *end;
            long v = strtol(pb, &end, 10);
            if (*end || v < 1 || v > 65535) {
                *err = "invalid port";
                return -1;
            }
            port = (unsigned)v;
        }
        memcpy(host, hp, hl);
    }
    host[hl] = '\0';
    for (size_t i = 0; i < hl; i++)
        host[i] = (char)(host[i] >= 'A' && host[i] <= 'Z' ? host[i] + 32 : host[i]);
    if (hl == 0 || port == 0 || port > 65535) {
        *err = "invalid host";
        return -1;
    }
    snprintf(key, sizeof(key), "%s:%u", host, port);

    struct dyn_upstream *d;
    for (d = groups; d; d = d->next)
        if (strcmp(d->key, key) == 0)
            break;
    uint64_t now = loop_now();
    if (d && d->ready && d->expires && now >= d->expires && d->refs && d->h.fd < 0) {
        /* expired while requests still use its peers: a new group takes
         * its place, this one goes when they let it go */
        struct dyn_upstream **pp = &groups;
        while (*pp != d)
            pp = &(*pp)->next;
        *pp = d->next;
        ngroups--;
        d->orphan = 1;
        d = NULL;
    }
    if (d && d->ready && (!d->expires || now < d->expires)) {
        d->refs++;
        d->last_used = now;
        *out = d;
        return 0;
    }
    if (d && !d->ready && d->h.fd < 0 && d->expires && now < d->expires) {
        *err = "3: Host not found";
        return -1;
    }
    if (!d) {
        if (ngroups >= DYN_UPSTREAM_MAX)
            evict();
        if (ngroups >= DYN_UPSTREAM_MAX) {
            *err = "too many upstream names at once";
            return -1;
        }
        d = calloc(1, sizeof(*d));
        if (!d || !(d->key = strdup(key)) || !(d->host = strdup(host))) {
            if (d)
                free(d->key);
            free(d);
            *err = "out of memory";
            return -1;
        }
        d->h.fd = -1;
        d->port = port;
        d->conf.name = d->key;
        d->conf.implicit = 1;
        d->conf.peers = d->peers;
        d->conf.keepalive = 0;
        d->conf.keepalive_timeout = 60000;
        d->conf.keepalive_requests = 1000;
        d->conf.keepalive_time = 3600000;
        d->conf.index = (unsigned)-1; /* no slot in a generation's state */
        d->rt.peers = d->prt;
        d->next = groups;
        groups = d;
        ngroups++;
    }
    d->last_used = now;
    struct sockaddr_storage ss;
    if (literal(host, port, &ss)) {
        set_peers(d, &ss, 1);
        d->expires = 0;
        d->refs++;
        *out = d;
        return 0;
    }
    /* a name: wait for its lookup (started now unless one runs) */
    struct dyn_wait *w = calloc(1, sizeof(*w));
    if (!w) {
        *err = "out of memory";
        return -1;
    }
    if (d->h.fd < 0 && start_lookup(lc, d, err) < 0) {
        free(w);
        return -1;
    }
    w->d = d;
    w->cb = cb;
    w->ctx = ctx;
    w->next = d->waiters;
    d->waiters = w;
    *wait = w;
    return 1;
}

void dyn_upstream_cancel(struct dyn_wait *w)
{
    if (w)
        w->cb = NULL; /* freed when the lookup ends */
}
