/*
 * referer.c - the valid_referers check (referer.h): nginx's
 * ngx_http_referer_variable(), with the names matched by list instead of
 * nginx's hash (same precedence: exact, leading wildcard, trailing one).
 */
#include "http/referer.h"

#include <strings.h>

#include "http/router.h"

#define REF_MAX_HOST 256 /* nginx's buffer: a longer host is invalid */

/* host ends in ".base" */
static int head_match(struct str host, struct str base)
{
    return host.len > base.len + 1 && host.p[host.len - base.len - 1] == '.' &&
           memcmp(host.p + host.len - base.len, base.p, base.len) == 0;
}

/* host is "base." followed by at least one byte */
static int tail_match(struct str host, struct str base)
{
    return host.len > base.len + 1 && host.p[base.len] == '.' &&
           memcmp(host.p, base.p, base.len) == 0;
}

static int host_match(const struct referer_host *h, struct str host, enum referer_host_kind kind)
{
    if (h->kind != kind)
        return 0;
    switch (kind) {
    case REF_EXACT:
        return str_eq(h->host, host);
    case REF_WILD_HEAD:
        return head_match(host, h->host) || (h->dot_form && str_eq(h->host, host));
    case REF_WILD_TAIL:
        return tail_match(host, h->host);
    }
    return 0;
}

/* The listed host `host` matches, by nginx's precedence; NULL when none. */
static const struct referer_host *find_host(const struct referer_conf *rc, struct str host)
{
    static const enum referer_host_kind order[] = {REF_EXACT, REF_WILD_HEAD, REF_WILD_TAIL};
    for (unsigned k = 0; k < 3; k++) {
        const struct referer_host *best = NULL;
        for (unsigned i = 0; i < rc->nhosts; i++)
            if (host_match(&rc->hosts[i], host, order[k]) &&
                (!best || rc->hosts[i].host.len > best->host.len))
                best = &rc->hosts[i];
        if (best)
            return best;
    }
    return NULL;
}

static int ci_eq(struct str a, struct str b)
{
    return a.len == b.len && strncasecmp(a.p, b.p, a.len) == 0;
}

/* One of the server's names (server_name) matches `host` (lower-case). */
static int server_name_match(const struct server_conf *srv, struct str host)
{
    if (!srv)
        return 0;
    for (unsigned i = 0; i < srv->nnames; i++) {
        const struct server_name *sn = &srv->names[i];
        struct str n = sn->name;
        switch (sn->kind) {
        case SN_EXACT:
            if (ci_eq(n, host))
                return 1;
            break;
        case SN_WILD_HEAD:
            while (n.len && (n.p[0] == '*' || n.p[0] == '.')) {
                n.p++;
                n.len--;
            }
            if ((host.len > n.len + 1 && host.p[host.len - n.len - 1] == '.' &&
                 ci_eq((struct str){host.p + host.len - n.len, n.len}, n)) ||
                (sn->dot_form && ci_eq(n, host)))
                return 1;
            break;
        case SN_WILD_TAIL:
            while (n.len && (n.p[n.len - 1] == '*' || n.p[n.len - 1] == '.'))
                n.len--;
            if (host.len > n.len + 1 && host.p[n.len] == '.' &&
                ci_eq((struct str){host.p, n.len}, n))
                return 1;
            break;
        case SN_REGEX:
            break;
        }
    }
    /* nginx tries the regex names after every name of its hash */
    for (unsigned i = 0; i < srv->nnames; i++)
        if (srv->names[i].kind == SN_REGEX && router_regex_match(srv->names[i].re, host, NULL))
            return 1;
    return 0;
}

/* The scheme's length when `v` starts with http:// or https://, else 0. */
static size_t scheme_len(struct str v)
{
    if (v.len < sizeof("http://i.ru") - 1)
        return 0;
    if (strncasecmp(v.p, "http://", 7) == 0)
        return 7;
    if (strncasecmp(v.p, "https://", 8) == 0)
        return 8;
    return 0;
}

int referer_invalid(const struct referer_conf *rc, const struct server_conf *srv, int has,
                    struct str referer)
{
    if (!rc || (rc->nhosts == 0 && rc->nregex == 0 && !rc->server_names))
        return 0;
    if (!has)
        return !rc->none;
    size_t skip = scheme_len(referer);
    if (!skip)
        return !rc->blocked;
    struct str ref = {referer.p + skip, referer.len - skip};
    char buf[REF_MAX_HOST];
    size_t n = 0;
    while (n < ref.len && ref.p[n] != '/' && ref.p[n] != ':') {
        if (n == REF_MAX_HOST)
            return 1;
        buf[n] = (char)sy_tolower((unsigned char)ref.p[n]);
        n++;
    }
    struct str host = {buf, n};
    const struct referer_host *h = find_host(rc, host);
    if (h) {
        if (!h->uri.len)
            return 0;
        size_t p = n;
        while (p < ref.len && ref.p[p] != '/')
            p++;
        return !(ref.len - p >= h->uri.len && memcmp(ref.p + p, h->uri.p, h->uri.len) == 0);
    }
    if (rc->server_names && server_name_match(srv, host))
        return 0;
    for (unsigned i = 0; i < rc->nregex; i++)
        if (router_regex_match(rc->regex[i], ref, NULL))
            return 0;
    return 1;
}
