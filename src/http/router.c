/*
 * router.c - picks the server{} for a Host and the location{} for a URI with
 * nginx's precedence rules, normalises request paths the way nginx does
 * before matching, and looks values up in map{} blocks.
 *
 * Everything here runs once or more per request over the immutable
 * configuration, so nothing allocates: lookups are linear scans (bsearch for
 * map keys) and regexes share one PCRE2 match data per thread, created on
 * first use. Behaviour follows nginx's ngx_http_find_virtual_server,
 * ngx_http_core_find_location, ngx_http_parse_complex_uri and
 * ngx_http_map_find; where the contract in router.h says "Details", that is
 * the nginx rule implemented here.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "http/router.h"

#include <pcre2.h>
#include <string.h>

/* ---------------------------------------------------------------- regex */

/* One match data per thread; ROUTER_MAX_CAPS pairs: $0..$9. Owned here. */
static __thread pcre2_match_data *router_md;

void router_thread_cleanup(void)
{
    pcre2_match_data_free(router_md);
    router_md = NULL;
}

/*
 * Run `re` over `subj`. Returns 1 on a match (and fills `caps` when not
 * NULL), 0 on no match, on a PCRE2 error (limits) or when the match data
 * cannot be created. `caps->subject` then borrows subj.p.
 */
int router_regex_match(const void *re, struct str subj, struct regex_caps *caps)
{
    if (re == NULL)
        return 0;
    if (router_md == NULL) {
        router_md = pcre2_match_data_create(ROUTER_MAX_CAPS, NULL);
        if (router_md == NULL)
            return 0;
    }
    const char *s = subj.p ? subj.p : "";
    int rc = pcre2_match((const pcre2_code *)re, (PCRE2_SPTR)s, subj.len, 0, 0, router_md, NULL);
    if (rc < 0)
        return 0;
    if (caps != NULL) {
        /* rc == 0: more groups than pairs; every pair we have is set. */
        if (rc == 0 || rc > ROUTER_MAX_CAPS)
            rc = ROUTER_MAX_CAPS;
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(router_md);
        for (int i = 0; i < 2 * rc; i++)
            caps->ov[i] = ov[i];
        caps->n = rc;
        caps->subject = s;
        caps->re = re;
    }
    return 1;
}

/* --------------------------------------------------------- name helpers */

/* ASCII case-insensitive equality of n bytes. */
static int ci_eq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (sy_tolower((unsigned char)a[i]) != sy_tolower((unsigned char)b[i]))
            return 0;
    return 1;
}

/*
 * A leading-wildcard name as stored ("example.com"); tolerate a stored
 * "*.example.com" or ".example.com" too.
 */
static struct str head_base(struct str name)
{
    if (name.len && name.p[0] == '*') {
        name.p++;
        name.len--;
    }
    if (name.len && name.p[0] == '.') {
        name.p++;
        name.len--;
    }
    return name;
}

/* "x.example.com" (one or more labels) under base "example.com". */
static int head_match(struct str host, struct str base)
{
    if (base.len == 0 || host.len < base.len + 2)
        return 0;
    size_t off = host.len - base.len;
    return host.p[off - 1] == '.' && ci_eq(host.p + off, base.p, base.len);
}

/*
 * Length of the label part of a trailing-wildcard name: "www.example." (as
 * stored), "www.example.*" or "www.example" all give 11 ("www.example").
 */
static size_t tail_base_len(struct str name)
{
    size_t n = name.len;
    if (n && name.p[n - 1] == '*')
        n--;
    if (n && name.p[n - 1] == '.')
        n--;
    return n;
}

/* "www.example.com" (one or more labels) after "www.example". */
static int tail_match(struct str host, struct str name, size_t blen)
{
    return blen > 0 && host.len >= blen + 2 && host.p[blen] == '.' && ci_eq(host.p, name.p, blen);
}

/* Host without ":port" (IPv6 literal kept in brackets) and one trailing dot. */
static struct str host_strip(struct str h)
{
    if (h.len == 0 || h.p == NULL)
        return (struct str){h.p, 0};
    if (h.p[0] == '[') {
        const char *rb = memchr(h.p, ']', h.len);
        if (rb != NULL)
            h.len = (size_t)(rb - h.p) + 1;
    } else {
        const char *colon = memchr(h.p, ':', h.len);
        if (colon != NULL)
            h.len = (size_t)(colon - h.p);
    }
    if (h.len && h.p[h.len - 1] == '.')
        h.len--;
    return h;
}

/* --------------------------------------------------------------- servers */

const struct server_conf *router_find_server(const struct listen_conf *l, struct str host,
                                             struct regex_caps *caps)
{
    if (l == NULL)
        return NULL;
    host = host_strip(host);

    /* 1. exact names, and the bare name of a ".example.com"; first wins */
    for (unsigned i = 0; i < l->nservers; i++) {
        const struct server_conf *s = l->servers[i];
        for (unsigned j = 0; j < s->nnames; j++) {
            const struct server_name *sn = &s->names[j];
            struct str name;
            if (sn->kind == SN_EXACT)
                name = sn->name;
            else if (sn->kind == SN_WILD_HEAD && sn->dot_form)
                name = head_base(sn->name);
            else
                continue;
            if (name.len == host.len && ci_eq(host.p, name.p, host.len))
                return s;
        }
    }
    if (host.len == 0)
        goto deflt;

    /* 2. longest leading wildcard, 3. longest trailing wildcard */
    const struct server_conf *head = NULL, *tail = NULL;
    size_t head_len = 0, tail_len = 0;
    for (unsigned i = 0; i < l->nservers; i++) {
        const struct server_conf *s = l->servers[i];
        for (unsigned j = 0; j < s->nnames; j++) {
            const struct server_name *sn = &s->names[j];
            if (sn->kind == SN_WILD_HEAD) {
                struct str base = head_base(sn->name);
                if (base.len > head_len && head_match(host, base)) {
                    head = s;
                    head_len = base.len;
                }
            } else if (sn->kind == SN_WILD_TAIL) {
                size_t blen = tail_base_len(sn->name);
                if (blen > tail_len && tail_match(host, sn->name, blen)) {
                    tail = s;
                    tail_len = blen;
                }
            }
        }
    }
    if (head != NULL)
        return head;
    if (tail != NULL)
        return tail;

    /* 4. first regex in config order */
    for (unsigned i = 0; i < l->nservers; i++) {
        const struct server_conf *s = l->servers[i];
        for (unsigned j = 0; j < s->nnames; j++)
            if (s->names[j].kind == SN_REGEX && router_regex_match(s->names[j].re, host, caps))
                return s;
    }

deflt:
    /* 5. default server of the address */
    if (l->default_server != NULL)
        return l->default_server;
    return l->nservers ? l->servers[0] : NULL;
}

/* ------------------------------------------------------------- locations */

enum loc_found {
    LF_NONE = 0, /* nothing at this level; *best unchanged */
    LF_PREFIX,   /* *best is a prefix match; regexes of outer levels may still win */
    LF_DONE,     /* exact or regex match: final */
};

/*
 * One level of ngx_http_core_find_location over locs[0..n): exact match
 * returns at once; else the longest prefix, whose nested locations are
 * searched next; then (unless that prefix was "^~") this level's regexes in
 * order, a match being followed by a search of its own nested locations.
 */
static enum loc_found find_loc(const struct location *locs, unsigned n, struct str uri,
                               const struct location **best, struct regex_caps *caps,
                               int *auto_redirect)
{
    const struct location *longest = NULL;

    for (unsigned i = 0; i < n; i++) {
        const struct location *l = &locs[i];
        if (l->match == LOC_EXACT) {
            if (str_eq(l->pattern, uri)) {
                *best = l;
                return LF_DONE;
            }
        } else if (l->match == LOC_PREFIX || l->match == LOC_PREFIX_NOREGEX) {
            if (l->pattern.len <= uri.len &&
                (longest == NULL || l->pattern.len > longest->pattern.len) &&
                (l->pattern.len == 0 || memcmp(uri.p, l->pattern.p, l->pattern.len) == 0))
                longest = l;
        }
    }

    /* nginx's auto_redirect: "/dir" names no location but a prefix or exact
     * "/dir/" with proxy_pass exists at this level -> that location, flagged
     * for a 301 to "/dir/" (before any regex is tried). */
    if (auto_redirect && (longest == NULL || longest->pattern.len != uri.len)) {
        for (unsigned i = 0; i < n; i++) {
            const struct location *l = &locs[i];
            if ((l->match == LOC_EXACT || l->match == LOC_PREFIX ||
                 l->match == LOC_PREFIX_NOREGEX) &&
                l->pattern.len == uri.len + 1 && l->pattern.p[uri.len] == '/' &&
                l->lc && l->lc->proxy_pass && memcmp(l->pattern.p, uri.p, uri.len) == 0) {
                *best = l;
                *auto_redirect = 1;
                return LF_DONE;
            }
        }
    }

    enum loc_found rc = LF_NONE;
    int noregex = 0;
    if (longest != NULL) {
        *best = longest;
        rc = LF_PREFIX;
        noregex = longest->match == LOC_PREFIX_NOREGEX;
        if (longest->nchildren &&
            find_loc(longest->children, longest->nchildren, uri, best, caps, auto_redirect) ==
                LF_DONE)
            return LF_DONE;
    }

    if (!noregex) {
        for (unsigned i = 0; i < n; i++) {
            const struct location *l = &locs[i];
            if ((l->match == LOC_REGEX || l->match == LOC_REGEX_ICASE) &&
                router_regex_match(l->re, uri, caps)) {
                *best = l;
                if (l->nchildren)
                    find_loc(l->children, l->nchildren, uri, best, caps, NULL);
                return LF_DONE;
            }
        }
    }
    return rc;
}

const struct location *router_find_location(const struct server_conf *s, struct str uri,
                                            struct regex_caps *caps)
{
    return router_find_location_ex(s, uri, caps, NULL);
}

const struct location *router_find_location_ex(const struct server_conf *s, struct str uri,
                                               struct regex_caps *caps, int *auto_redirect)
{
    const struct location *best = NULL;
    if (auto_redirect)
        *auto_redirect = 0;
    if (s == NULL)
        return NULL;
    find_loc(s->locations, s->nlocations, uri, &best, caps, auto_redirect);
    return best;
}

const struct location *router_find_named(const struct server_conf *s, struct str name)
{
    if (s == NULL)
        return NULL;
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < s->nnamed; i++)
            if (str_eq(s->named[i].pattern, name))
                return &s->named[i];
        /* second pass: the caller passed "@name" */
        if (name.len == 0 || name.p[0] != '@')
            break;
        name.p++;
        name.len--;
    }
    return NULL;
}

/* --------------------------------------------------------- normalisation */

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (unsigned char)(c | 0x20);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/*
 * States after the last byte written (nginx's sw_usual, sw_slash, sw_dot,
 * sw_dot_dot): inside a segment, just after '/', after "/.", after "/..".
 */
enum norm_state { NS_USUAL, NS_SLASH, NS_DOT, NS_DOT_DOT };

/* Drop the "/.." just written and the segment before it; -1 above the root. */
static int norm_up(const char *out, size_t *u)
{
    if (*u < 4)
        return -1;
    size_t i = *u - 4; /* last byte of the previous segment, or its '/' */
    for (;;) {
        if (out[i] == '/') {
            *u = i + 1;
            return 0;
        }
        if (i == 0)
            return -1;
        i--;
    }
}

ssize_t router_normalize_uri(struct str path, char *out, size_t cap)
{
    return router_normalize_uri_opts(path, out, cap, 1);
}

ssize_t router_normalize_uri_opts(struct str path, char *out, size_t cap, int merge_slashes)
{
    if (path.len == 0) {
        if (cap < 1)
            return -1;
        out[0] = '/';
        return 1;
    }
    if (path.p[0] != '/')
        return -1;

    const unsigned char *p = (const unsigned char *)path.p;
    const unsigned char *end = p + path.len;
    enum norm_state state = NS_USUAL;
    size_t u = 0;

#define NORM_PUT(c)                                                                                \
    do {                                                                                           \
        if (u >= cap)                                                                              \
            return -1;                                                                             \
        out[u++] = (char)(c);                                                                      \
    } while (0)

    while (p < end) {
        unsigned char ch = *p++;

        if (ch == '%') {
            int hi, lo;
            if (end - p < 2 || (hi = hex_val(p[0])) < 0 || (lo = hex_val(p[1])) < 0)
                return -1;
            p += 2;
            ch = (unsigned char)(hi << 4 | lo);
            if (ch == '\0')
                return -1;
            /*
             * The decoded byte goes through the state machine below as if
             * sent literally; a decoded '%', '#' or '?' stays data because
             * only raw bytes start an escape or end the path (nginx).
             */
        } else if (ch == '#' || ch == '?') {
            break;
        } else if (ch == '\0') {
            return -1;
        }

        switch (state) {
        case NS_USUAL:
            if (ch == '/')
                state = NS_SLASH;
            NORM_PUT(ch);
            break;
        case NS_SLASH:
            if (ch == '/') {
                if (merge_slashes)
                    break;
                NORM_PUT(ch);
                break;
            }
            state = ch == '.' ? NS_DOT : NS_USUAL;
            NORM_PUT(ch);
            break;
        case NS_DOT:
            if (ch == '/') {
                u--; /* "/./" -> "/" */
                state = NS_SLASH;
            } else {
                state = ch == '.' ? NS_DOT_DOT : NS_USUAL;
                NORM_PUT(ch);
            }
            break;
        case NS_DOT_DOT:
            if (ch == '/') {
                if (norm_up(out, &u) < 0)
                    return -1;
                state = NS_SLASH;
            } else {
                state = NS_USUAL;
                NORM_PUT(ch);
            }
            break;
        }
    }
#undef NORM_PUT

    if (state == NS_DOT) {
        u--;
    } else if (state == NS_DOT_DOT) {
        if (norm_up(out, &u) < 0)
            return -1;
    }
    return (ssize_t)u;
}

/* ------------------------------------------------------------------ maps */

const struct tmpl *map_find(const struct map_conf *m, struct str key, struct regex_caps *caps)
{
    if (m->hostnames && key.len && key.p[key.len - 1] == '.')
        key.len--;

    /* exact: bsearch over keys sorted by map_key_cmp */
    size_t lo = 0, hi = m->nexact;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = map_key_cmp(key, m->exact[mid].key);
        if (c == 0)
            return &m->exact[mid].value;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }

    if (m->hostnames && key.len) {
        const struct map_entry *best = NULL;
        size_t best_len = 0;
        for (unsigned i = 0; i < m->nwild_head; i++) {
            struct str base = head_base(m->wild_head[i].key);
            if (base.len > best_len && head_match(key, base)) {
                best = &m->wild_head[i];
                best_len = base.len;
            }
        }
        if (best != NULL)
            return &best->value;
        for (unsigned i = 0; i < m->nwild_tail; i++) {
            size_t blen = tail_base_len(m->wild_tail[i].key);
            if (blen > best_len && tail_match(key, m->wild_tail[i].key, blen)) {
                best = &m->wild_tail[i];
                best_len = blen;
            }
        }
        if (best != NULL)
            return &best->value;
    }

    if (key.len) {
        for (unsigned i = 0; i < m->nregex; i++)
            if (router_regex_match(m->regex[i].re, key, caps))
                return &m->regex[i].value;
    }
    return &m->deflt;
}
