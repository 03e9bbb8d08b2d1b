/*
 * geo.c - the geo block (geo.h), nginx's ngx_http_geo_module: parsing with
 * nginx's parameters and messages, the CIDR tries and the /16 range table.
 *
 *   geo [$address] $variable {
 *       default VALUE;  CIDR VALUE;  delete CIDR;  include FILE;
 *       ranges;  START-END VALUE;  proxy CIDR;  proxy_recursive;  volatile;
 *   }
 *
 * `include` is expanded by the parser (parse.c) like anywhere else. Values
 * are plain strings (nginx does not expand variables in them).
 */
#include "conf/geo.h"
#include "conf/directive_table.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"

#define GEO_BLOCKS 0x10000u /* /16 blocks of the IPv4 space (ranges form) */

/* ------------------------------------------------------------ the trie */

static int bit_at(const uint8_t *addr, unsigned i)
{
    return (addr[i >> 3] >> (7 - (i & 7))) & 1;
}

int geo_trie_insert(struct arena *a, struct geo_node **root, const uint8_t *addr, unsigned bits,
                    const struct str *value, const struct str **old)
{
    struct geo_node **slot = root;
    for (unsigned i = 0;; i++) {
        if (!*slot && !(*slot = arena_calloc(a, sizeof(**slot))))
            return -1;
        if (i == bits)
            break;
        slot = &(*slot)->child[bit_at(addr, i)];
    }
    *old = (*slot)->value;
    (*slot)->value = value;
    return 0;
}

int geo_trie_delete(struct geo_node *root, const uint8_t *addr, unsigned bits)
{
    struct geo_node *n = root;
    for (unsigned i = 0; n && i < bits; i++)
        n = n->child[bit_at(addr, i)];
    if (!n || !n->value)
        return 0;
    n->value = NULL;
    return 1;
}

const struct str *geo_trie_find(const struct geo_node *root, const uint8_t *addr, unsigned width)
{
    const struct str *best = NULL;
    const struct geo_node *n = root;
    for (unsigned i = 0; n; i++) {
        if (n->value)
            best = n->value;
        if (i == width)
            break;
        n = n->child[bit_at(addr, i)];
    }
    return best;
}

const struct str *geo_find_range(const struct geo_conf *g, uint32_t ip)
{
    if (g->first) {
        unsigned h = ip >> 16, low = ip & 0xffff;
        for (uint32_t i = g->first[h]; i < g->first[h + 1]; i++)
            if (low >= g->rng[i].start && low <= g->rng[i].end)
                return g->rng[i].value;
    }
    return g->deflt;
}

/* ------------------------------------------------------------ loading */

/* Ranges of one /16 block while loading, in address order. */
struct geo_block_tmp {
    struct geo_range16 *r;
    unsigned n, cap;
};

struct geo_load {
    struct conf_parser *p;
    struct geo_conf *g;
    struct geo_block_tmp *blocks; /* ranges form: GEO_BLOCKS entries (malloc) */
    int has_cidr;                 /* a CIDR entry or default was seen */
    int has_default;
};

static const struct str *geo_value(struct conf_parser *p, const char *text)
{
    struct str *v = arena_alloc(p->a, sizeof(*v));
    if (!v)
        return NULL;
    *v = arena_str(p->a, str_from_cstr(text));
    return v->p ? v : NULL;
}

static const char *geo_oom(struct conf_parser *p)
{
    p->fatal = 1;
    return conf_err(p, "out of memory");
}

/* nginx ngx_http_geo_cidr_value(): "255.255.255.255" or a CIDR. */
static int geo_cidr(struct conf_parser *p, const char *net, struct realip_cidr *c)
{
    int rc = realip_parse_cidr(net, c);
    if (rc < 0) {
        conf_err(p, "invalid network \"%s\"", net);
        return -1;
    }
    if (rc == 1)
        conf_warn_node(p, "low address bits of %s are meaningless", net);
    return 0;
}

static unsigned cidr_bits(const struct realip_cidr *c)
{
    unsigned bits = 0, bytes = c->family == AF_INET ? 4 : 16;
    for (unsigned i = 0; i < bytes; i++)
        for (unsigned m = c->mask[i]; m & 0x80; m = (m << 1) & 0xff)
            bits++;
    return bits;
}

static const char *geo_cidr_add(struct geo_load *l, int family, const uint8_t *addr,
                                unsigned bits, const char *value, const char *net)
{
    struct conf_parser *p = l->p;
    const struct str *v = geo_value(p, value), *old = NULL;
    struct geo_node **root = family == AF_INET ? &l->g->tree4 : &l->g->tree6;
    if (!v || geo_trie_insert(p->a, root, addr, bits, v, &old) != 0)
        return geo_oom(p);
    if (old)
        conf_warn_node(p, "duplicate network \"%s\", value: \"%s\", old value: \"%.*s\"", net,
                       value, (int)old->len, old->p);
    return NULL;
}

static const char *geo_cidr_entry(struct geo_load *l, const struct conf_node *c)
{
    struct conf_parser *p = l->p;
    l->has_cidr = 1;
    if (strcmp(c->name, "default") == 0) {
        static const uint8_t zero[16];
        const char *rv = geo_cidr_add(l, AF_INET, zero, 0, c->args[0], "default");
        return rv ? rv : geo_cidr_add(l, AF_INET6, zero, 0, c->args[0], "default");
    }
    int del = strcmp(c->name, "delete") == 0;
    const char *net = del ? c->args[0] : c->name;
    struct realip_cidr cidr;
    if (geo_cidr(p, net, &cidr) != 0)
        return CONF_ERROR;
    if (cidr.family != AF_INET && cidr.family != AF_INET6)
        return conf_err(p, "invalid network \"%s\"", net);
    unsigned bits = cidr_bits(&cidr);
    if (del) {
        struct geo_node *root = cidr.family == AF_INET ? l->g->tree4 : l->g->tree6;
        if (!geo_trie_delete(root, cidr.addr, bits))
            conf_warn_node(p, "no network \"%s\" to delete", net);
        return NULL;
    }
    return geo_cidr_add(l, cidr.family, cidr.addr, bits, c->args[0], net);
}

/* "A.B.C.D-A.B.C.D" into host-order start/end; -1 when invalid. */
static int parse_range(const char *net, uint32_t *start, uint32_t *end)
{
    const char *dash = strchr(net, '-');
    if (!dash || dash - net >= 16 || strlen(dash + 1) >= 16)
        return -1;
    char a[16], b[16];
    memcpy(a, net, (size_t)(dash - net));
    a[dash - net] = '\0';
    strcpy(b, dash + 1);
    struct in_addr ia, ib;
    if (inet_pton(AF_INET, a, &ia) != 1 || inet_pton(AF_INET, b, &ib) != 1)
        return -1;
    *start = ntohl(ia.s_addr);
    *end = ntohl(ib.s_addr);
    /* nginx's ngx_inet_addr() answers 255.255.255.255 with INADDR_NONE: invalid */
    if (*start == 0xffffffffu || *end == 0xffffffffu)
        return -1;
    return *start > *end ? -1 : 0;
}

static struct geo_range16 *block_insert(struct geo_block_tmp *b, unsigned at)
{
    if (b->n == b->cap) {
        unsigned cap = b->cap ? b->cap * 2 : 8;
        struct geo_range16 *r = realloc(b->r, cap * sizeof(*r));
        if (!r)
            return NULL;
        b->r = r;
        b->cap = cap;
    }
    memmove(&b->r[at + 1], &b->r[at], (b->n - at) * sizeof(*b->r));
    b->n++;
    return &b->r[at];
}

/*
 * Add [s, e] with `v` to block `h`: nginx ngx_http_geo_add_range(). A range
 * equal to one present replaces its value (warning); one inside a present
 * range splits it; any other overlap is an error.
 */
static int block_add(struct geo_load *l, unsigned h, unsigned s, unsigned e,
                     const struct str *v, const char *net)
{
    struct geo_block_tmp *b = &l->blocks[h];
    struct geo_range16 *r;
    unsigned i = b->n;
    while (i) {
        i--;
        struct geo_range16 cur = b->r[i];
        if (e < cur.start)
            continue;
        if (s > cur.end) {
            if (!(r = block_insert(b, i + 1)))
                return -2;
            *r = (struct geo_range16){(uint16_t)s, (uint16_t)e, v};
            return 0;
        }
        if (s == cur.start && e == cur.end) {
            conf_warn_node(l->p, "duplicate range \"%s\", value: \"%.*s\", old value: \"%.*s\"",
                           net, (int)v->len, v->p, (int)cur.value->len, cur.value->p);
            b->r[i].value = v;
            return 0;
        }
        if (s >= cur.start && e <= cur.end) {
            /* inside: [cur.start, s-1] [s, e] [e+1, cur.end], empty parts dropped */
            unsigned at = i;
            if (s > cur.start) {
                b->r[i].end = (uint16_t)(s - 1);
                at = i + 1;
                if (!(r = block_insert(b, at)))
                    return -2;
            } else {
                r = &b->r[i];
            }
            *r = (struct geo_range16){(uint16_t)s, (uint16_t)e, v};
            if (e < cur.end) {
                if (!(r = block_insert(b, at + 1)))
                    return -2;
                *r = (struct geo_range16){(uint16_t)(e + 1), cur.end, cur.value};
            }
            return 0;
        }
        conf_err(l->p, "range \"%s\" overlaps \"%u.%u.%u.%u-%u.%u.%u.%u\"", net, h >> 8, h & 0xff,
                 (unsigned)cur.start >> 8, (unsigned)cur.start & 0xff, h >> 8, h & 0xff,
                 (unsigned)cur.end >> 8, (unsigned)cur.end & 0xff);
        return -1;
    }
    if (!(r = block_insert(b, 0)))
        return -2;
    *r = (struct geo_range16){(uint16_t)s, (uint16_t)e, v};
    return 0;
}

/* nginx ngx_http_geo_delete_range(): 1 when some part was not found. */
static int block_delete(struct geo_load *l, uint32_t start, uint32_t end)
{
    int warn = 0;
    for (uint64_t n = start; n <= end; n = (n + 0x10000) & ~(uint64_t)0xffff) {
        unsigned h = (unsigned)(n >> 16);
        unsigned s = n == start ? (unsigned)(n & 0xffff) : 0;
        unsigned e = (n | 0xffff) > end ? (end & 0xffff) : 0xffff;
        struct geo_block_tmp *b = &l->blocks[h];
        unsigned i;
        for (i = 0; i < b->n; i++)
            if (b->r[i].start == s && b->r[i].end == e)
                break;
        if (i == b->n) {
            warn = 1;
            continue;
        }
        memmove(&b->r[i], &b->r[i + 1], (b->n - 1 - i) * sizeof(*b->r));
        b->n--;
    }
    return warn;
}

static const char *geo_range_entry(struct geo_load *l, const struct conf_node *c)
{
    struct conf_parser *p = l->p;
    if (strcmp(c->name, "default") == 0) {
        const struct str *v = geo_value(p, c->args[0]);
        if (!v)
            return geo_oom(p);
        if (l->has_default)
            conf_warn_node(p, "duplicate default geo range value: \"%s\", old value: \"%.*s\"",
                           c->args[0], (int)l->g->deflt->len, l->g->deflt->p);
        l->has_default = 1;
        l->g->deflt = v;
        return NULL;
    }
    if (!l->blocks && !(l->blocks = calloc(GEO_BLOCKS, sizeof(*l->blocks))))
        return geo_oom(p);
    int del = strcmp(c->name, "delete") == 0;
    const char *net = del ? c->args[0] : c->name;
    uint32_t start, end;
    if (parse_range(net, &start, &end) != 0)
        return conf_err(p, "invalid range \"%s\"", net);
    if (del) {
        if (block_delete(l, start, end))
            conf_warn_node(p, "no address range \"%s\" to delete", net);
        return NULL;
    }
    const struct str *v = geo_value(p, c->args[0]);
    if (!v)
        return geo_oom(p);
    for (uint64_t n = start; n <= end; n = (n + 0x10000) & ~(uint64_t)0xffff) {
        unsigned h = (unsigned)(n >> 16);
        unsigned s = n == start ? (unsigned)(n & 0xffff) : 0;
        unsigned e = (n | 0xffff) > end ? (end & 0xffff) : 0xffff;
        int rc = block_add(l, h, s, e, v, net);
        if (rc == -2)
            return geo_oom(p);
        if (rc < 0)
            return CONF_ERROR;
    }
    return NULL;
}

static const char *geo_proxy(struct geo_load *l, const char *net)
{
    struct conf_parser *p = l->p;
    struct realip_cidr cidr;
    if (geo_cidr(p, net, &cidr) != 0)
        return CONF_ERROR;
    struct geo_conf *g = l->g;
    struct realip_cidr *n = arena_alloc(p->a, (g->nproxies + 1) * sizeof(*n));
    if (!n)
        return geo_oom(p);
    if (g->nproxies)
        memcpy(n, g->proxies, g->nproxies * sizeof(*n));
    n[g->nproxies++] = cidr;
    g->proxies = n;
    return NULL;
}

/* One line of the block: nginx ngx_http_geo(). */
static const char *geo_entry(struct geo_load *l, const struct conf_node *c)
{
    struct conf_parser *p = l->p;
    if (c->is_block)
        return conf_err(p, "unexpected \"{\"");
    if (c->nargs == 0) {
        if (strcmp(c->name, "ranges") == 0) {
            if (l->has_cidr)
                return conf_err(p, "the \"ranges\" directive must be the first directive "
                                   "inside \"geo\" block");
            l->g->ranges = 1;
            return NULL;
        }
        if (strcmp(c->name, "proxy_recursive") == 0) {
            l->g->proxy_recursive = 1;
            return NULL;
        }
        if (strcmp(c->name, "volatile") == 0)
            return NULL; /* values are never cached across a request here */
    }
    if (c->nargs != 1)
        return conf_err(p, "invalid number of the geo parameters");
    if (strcmp(c->name, "proxy") == 0)
        return geo_proxy(l, c->args[0]);
    return l->g->ranges ? geo_range_entry(l, c) : geo_cidr_entry(l, c);
}

/* The ranges of every block into one array indexed by g->first. */
static const char *geo_pack_ranges(struct geo_load *l)
{
    struct conf_parser *p = l->p;
    if (!l->blocks)
        return NULL;
    size_t total = 0;
    for (unsigned h = 0; h < GEO_BLOCKS; h++)
        total += l->blocks[h].n;
    struct geo_conf *g = l->g;
    g->first = arena_alloc(p->a, (GEO_BLOCKS + 1) * sizeof(*g->first));
    g->rng = arena_alloc(p->a, (total ? total : 1) * sizeof(*g->rng));
    if (!g->first || !g->rng)
        return geo_oom(p);
    uint32_t at = 0;
    for (unsigned h = 0; h < GEO_BLOCKS; h++) {
        g->first[h] = at;
        if (l->blocks[h].n)
            memcpy(&g->rng[at], l->blocks[h].r, l->blocks[h].n * sizeof(*g->rng));
        at += l->blocks[h].n;
    }
    g->first[GEO_BLOCKS] = at;
    return NULL;
}

static void geo_load_free(struct geo_load *l)
{
    if (!l->blocks)
        return;
    for (unsigned h = 0; h < GEO_BLOCKS; h++)
        free(l->blocks[h].r);
    free(l->blocks);
    l->blocks = NULL;
}

/* The default value ("" unless `default` set one): both trie roots. */
static const char *geo_defaults(struct geo_load *l)
{
    struct conf_parser *p = l->p;
    static const uint8_t zero[16];
    const struct str *empty = geo_value(p, ""), *old = NULL;
    if (!empty)
        return geo_oom(p);
    if (l->g->ranges) {
        if (!l->g->deflt)
            l->g->deflt = empty;
        return NULL;
    }
    struct geo_node **roots[2] = {&l->g->tree4, &l->g->tree6};
    for (int i = 0; i < 2; i++) {
        if (*roots[i] && (*roots[i])->value)
            continue;
        if (geo_trie_insert(p->a, roots[i], zero, 0, empty, &old) != 0)
            return geo_oom(p);
    }
    return NULL;
}

static const char *set_geo(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    const struct conf_node *self = p->node;
    struct geo_conf *g = arena_calloc(p->a, sizeof(*g));
    if (!g)
        return geo_oom(p);
    const char *dst = self->args[self->nargs - 1];
    if (self->nargs == 2) {
        const char *src = self->args[0];
        if (src[0] != '$')
            return conf_err(p, "invalid variable name \"%s\"", src);
        const char *e = NULL;
        if (tmpl_compile(&g->source, &p->g->vars, p->a, str_from_cstr(src), &e) != 0)
            return conf_err(p, "%s", e ? e : "invalid value");
        g->has_source = 1;
    }
    if (dst[0] != '$')
        return conf_err(p, "invalid variable name \"%s\"", dst);
    const char *e = NULL;
    if (!var_define_module(&p->g->vars, p->a, str_from_cstr(dst + 1), VAR_GEO, g, &e))
        return conf_err(p, "%s", e ? e : "out of memory");

    struct geo_load l = {.p = p, .g = g};
    const char *rv = NULL;
    for (const struct conf_node *c = self->children; c && !rv; c = c->next) {
        p->node = c;
        rv = geo_entry(&l, c);
    }
    p->node = self;
    if (!rv)
        rv = geo_pack_ranges(&l);
    geo_load_free(&l);
    return rv ? rv : geo_defaults(&l);
}

const struct directive geo_directives[] = {
    {"geo", CTX_HTTP, ARGS(1, 2) | D_BLOCK, set_geo, LVL_NONE, 0, NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
