/*
 * gzip.c - the directives of response compression (see gzip.h): nginx's
 * ngx_http_gzip_module, the gzip_* directives of ngx_http_core_module,
 * ngx_http_gzip_static_module, and ngx_brotli's brotli filter and static
 * modules. Syntax, limits and messages are nginx's (and ngx_brotli's).
 */
#include "conf/gzip.h"
#include "conf/directive_table.h"

#include <strings.h>
#include <string.h>

#define CC(f) LVL_LOC, offsetof(struct loc_conf, compress.f)

void compress_conf_init(struct compress_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->gzip = CONF_UNSET;
    c->gzip_level = CONF_UNSET;
    c->gzip_min_length = CONF_UNSET_U64;
    c->gzip_wbits = CONF_UNSET;
    c->gzip_memlevel = CONF_UNSET;
    c->gzip_bufs_num = CONF_UNSET;
    c->gzip_bufs_size = CONF_UNSET_U64;
    c->gzip_no_buffer = CONF_UNSET;
    c->postpone_gzipping = CONF_UNSET_U64;
    c->gzip_vary = CONF_UNSET;
    c->gzip_http_version = CONF_UNSET;
    c->gzip_static = CONF_UNSET;
    c->brotli = CONF_UNSET;
    c->brotli_level = CONF_UNSET;
    c->brotli_lgwin = CONF_UNSET;
    c->brotli_min_length = CONF_UNSET_U64;
    c->brotli_static = CONF_UNSET;
}

#define M_INT(f, def)                                                                              \
    do {                                                                                           \
        if (c->f == CONF_UNSET)                                                                    \
            c->f = prev ? prev->f : (def);                                                         \
    } while (0)

void compress_conf_merge(struct compress_conf *c, const struct compress_conf *prev)
{
    M_INT(gzip, 0);
    M_INT(gzip_level, 1);
    if (c->gzip_min_length == CONF_UNSET_U64)
        c->gzip_min_length = prev ? prev->gzip_min_length : 20;
    M_INT(gzip_wbits, 15);
    M_INT(gzip_memlevel, 8);
    if (c->gzip_bufs_num == CONF_UNSET) {
        /* nginx: 128k / pagesize buffers of a page */
        c->gzip_bufs_num = prev ? prev->gzip_bufs_num : 32;
        c->gzip_bufs_size = prev ? prev->gzip_bufs_size : 4096;
    }
    M_INT(gzip_no_buffer, 0);
    if (c->postpone_gzipping == CONF_UNSET_U64)
        c->postpone_gzipping = prev ? prev->postpone_gzipping : 0;
    if (!c->gzip_types && prev)
        c->gzip_types = prev->gzip_types;
    M_INT(gzip_vary, 0);
    M_INT(gzip_http_version, 1);
    if (c->gzip_proxied == 0)
        c->gzip_proxied = prev ? prev->gzip_proxied : GZIP_PROXIED_OFF;
    if (!c->gzip_disable_set && prev) {
        c->gzip_disable = prev->gzip_disable;
        c->ngzip_disable = prev->ngzip_disable;
        c->gzip_disable_msie6 = prev->gzip_disable_msie6;
    }
    M_INT(gzip_static, COMPRESS_STATIC_OFF);
    M_INT(brotli, 0);
    M_INT(brotli_level, 6);
    M_INT(brotli_lgwin, 19);
    if (c->brotli_min_length == CONF_UNSET_U64)
        c->brotli_min_length = prev ? prev->brotli_min_length : 20;
    if (!c->brotli_types && prev)
        c->brotli_types = prev->brotli_types;
    M_INT(brotli_static, COMPRESS_STATIC_OFF);
}

int compress_types_match(const struct compress_types *t, struct str ct)
{
    size_t n = 0;
    while (n < ct.len && ct.p[n] != ';' && ct.p[n] != ' ' && ct.p[n] != '\t')
        n++;
    struct str type = {ct.p, n};
    if (!n)
        return 0;
    if (str_caseeq(type, STR_LIT("text/html")))
        return 1;
    if (!t)
        return 0;
    if (t->any)
        return 1;
    for (unsigned i = 0; i < t->ntypes; i++)
        if (str_caseeq(type, t->types[i]))
            return 1;
    return 0;
}

/* ------------------------------------------------------------ setters */

/* gzip_types / brotli_types MIME-TYPE ...: repeated directives add up;
 * "*" matches any type (nginx's ngx_http_types_slot). */
const char *compress_set_types(struct conf_parser *p, const struct directive *d, void *conf)
{
    const struct compress_types **f = FIELD(conf, d, const struct compress_types *);
    const struct compress_types *old = *f;
    if (old && old->any)
        return NULL;
    unsigned n = (old ? old->ntypes : 0) + p->node->nargs;
    struct compress_types *t = arena_calloc(p->a, sizeof(*t));
    struct str *v = arena_alloc(p->a, (n ? n : 1) * sizeof(*v));
    if (!t || !v)
        return conf_err(p, "out of memory");
    t->types = v;
    if (old) {
        memcpy(v, old->types, old->ntypes * sizeof(*v));
        t->ntypes = old->ntypes;
    }
    for (unsigned i = 0; i < p->node->nargs; i++) {
        const char *a = p->node->args[i];
        if (strcmp(a, "*") == 0) {
            t->any = 1;
            break;
        }
        size_t len = strlen(a);
        char *low = arena_alloc(p->a, len + 1);
        if (!low)
            return conf_err(p, "out of memory");
        for (size_t k = 0; k <= len; k++)
            low[k] = (char)sy_tolower((unsigned char)a[k]);
        struct str s = {low, len};
        int dup = str_eq(s, STR_LIT("text/html"));
        for (unsigned k = 0; k < t->ntypes && !dup; k++)
            dup = str_eq(s, t->types[k]);
        if (dup) {
            conf_warn_node(p, "duplicate MIME type \"%s\"", low);
            continue;
        }
        v[t->ntypes++] = s;
    }
    *f = t;
    return NULL;
}

/* gzip_comp_level 1..9 (nginx's bounds message) */
static const char *set_gzip_level(struct conf_parser *p, const struct directive *d, void *conf)
{
    const char *rv = set_int_num(p, d, conf);
    if (rv)
        return rv;
    int v = *FIELD(conf, d, int);
    if (v < 1 || v > 9)
        return conf_err(p, "value must be between 1 and 9");
    return NULL;
}

/* brotli_comp_level 0..11 */
static const char *set_brotli_level(struct conf_parser *p, const struct directive *d, void *conf)
{
    const char *rv = set_int_num(p, d, conf);
    if (rv)
        return rv;
    int v = *FIELD(conf, d, int);
    if (v > 11)
        return conf_err(p, "value must be between 0 and 11");
    return NULL;
}

/* A power-of-two size among [lo, hi] into its log2 (gzip_window, gzip_hash,
 * brotli_window). */
static const char *set_pow2(struct conf_parser *p, const struct directive *d, void *conf,
                            int lo_bits, int hi_bits, int bias, const char *msg)
{
    int *f = FIELD(conf, d, int);
    if (*f != CONF_UNSET)
        return "is duplicate";
    uint64_t v;
    if (str_to_size(str_from_cstr(p->node->args[0]), &v) != 0)
        return "invalid value";
    for (int b = lo_bits; b <= hi_bits; b++)
        if (v == (UINT64_C(1) << b)) {
            *f = b - bias;
            return NULL;
        }
    return msg;
}

/* gzip_window 512..32k: zlib's windowBits 9..15 */
static const char *set_gzip_window(struct conf_parser *p, const struct directive *d, void *conf)
{
    return set_pow2(p, d, conf, 9, 15, 0, "must be 512, 1k, 2k, 4k, 8k, 16k, or 32k");
}

/* gzip_hash 512..128k: zlib's memLevel 1..9 */
static const char *set_gzip_hash(struct conf_parser *p, const struct directive *d, void *conf)
{
    return set_pow2(p, d, conf, 9, 17, 8, "must be 512, 1k, 2k, 4k, 8k, 16k, 32k, 64k, or 128k");
}

/* brotli_window 1k..16m: lgwin 10..24 */
static const char *set_brotli_window(struct conf_parser *p, const struct directive *d, void *conf)
{
    return set_pow2(p, d, conf, 10, 24, 0,
                    "must be 1k, 2k, 4k, 8k, 16k, 32k, 64k, 128k, 256k, 512k, 1m, 2m, 4m, 8m "
                    "or 16m");
}

/* gzip_buffers NUMBER SIZE */
static const char *set_gzip_buffers(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct compress_conf *c = &((struct loc_conf *)conf)->compress;
    if (c->gzip_bufs_num != CONF_UNSET)
        return "is duplicate";
    uint64_t n, s;
    if (str_to_u64(str_from_cstr(p->node->args[0]), 1 << 20, &n) != 0 || n == 0 ||
        str_to_size(str_from_cstr(p->node->args[1]), &s) != 0 || s == 0)
        return "invalid value";
    c->gzip_bufs_num = (int)n;
    c->gzip_bufs_size = s;
    return NULL;
}

/* gzip_disable REGEX|msie6|degradation ...: caseless regexes on User-Agent */
static const char *set_gzip_disable(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct compress_conf *c = &((struct loc_conf *)conf)->compress;
    unsigned n = c->ngzip_disable + p->node->nargs;
    void **v = arena_alloc(p->a, n * sizeof(*v));
    if (!v)
        return conf_err(p, "out of memory");
    if (c->ngzip_disable)
        memcpy(v, c->gzip_disable, c->ngzip_disable * sizeof(*v));
    c->gzip_disable = v;
    c->gzip_disable_set = 1;
    for (unsigned i = 0; i < p->node->nargs; i++) {
        const char *a = p->node->args[i];
        if (strcmp(a, "msie6") == 0) {
            c->gzip_disable_msie6 = 1;
            continue;
        }
        if (strcmp(a, "degradation") == 0) /* no degradation module: never degraded */
            continue;
        void *re = conf_regex_compile(p, a, 1);
        if (!re)
            return CONF_ERROR;
        v[c->ngzip_disable++] = re;
    }
    return NULL;
}

static const struct conf_enum static_values[] = {
    {"off", COMPRESS_STATIC_OFF}, {"on", COMPRESS_STATIC_ON}, {"always", COMPRESS_STATIC_ALWAYS},
    {NULL, 0}};
static const struct conf_enum gzip_http_versions[] = {{"1.0", 0}, {"1.1", 1}, {NULL, 0}};
static const struct conf_enum gzip_proxied_values[] = {
    {"off", GZIP_PROXIED_OFF},
    {"expired", GZIP_PROXIED_EXPIRED},
    {"no-cache", GZIP_PROXIED_NO_CACHE},
    {"no-store", GZIP_PROXIED_NO_STORE},
    {"private", GZIP_PROXIED_PRIVATE},
    {"no_last_modified", GZIP_PROXIED_NO_LM},
    {"no_etag", GZIP_PROXIED_NO_ETAG},
    {"auth", GZIP_PROXIED_AUTH},
    {"any", GZIP_PROXIED_ANY},
    {NULL, 0}};

const struct directive gzip_directives[] = {
    {"gzip", HSL | CTX_LIF, ARGS(1, 1), set_flag, CC(gzip), NULL},
    {"gzip_buffers", HSL, ARGS(2, 2), set_gzip_buffers, LVL_LOC, 0, NULL},
    {"gzip_types", HSL, ARGS(1, MANY), compress_set_types, CC(gzip_types), NULL},
    {"gzip_comp_level", HSL, ARGS(1, 1), set_gzip_level, CC(gzip_level), NULL},
    {"gzip_window", HSL, ARGS(1, 1), set_gzip_window, CC(gzip_wbits), NULL},
    {"gzip_hash", HSL, ARGS(1, 1), set_gzip_hash, CC(gzip_memlevel), NULL},
    {"postpone_gzipping", HSL, ARGS(1, 1), set_size, CC(postpone_gzipping), NULL},
    {"gzip_no_buffer", HSL, ARGS(1, 1), set_flag, CC(gzip_no_buffer), NULL},
    {"gzip_min_length", HSL, ARGS(1, 1), set_size, CC(gzip_min_length), NULL},
    {"gzip_vary", HSL, ARGS(1, 1), set_flag, CC(gzip_vary), NULL},
    {"gzip_http_version", HSL, ARGS(1, 1), set_enum, CC(gzip_http_version), gzip_http_versions},
    {"gzip_proxied", HSL, ARGS(1, MANY), set_bitmask, CC(gzip_proxied), gzip_proxied_values},
    {"gzip_disable", HSL, ARGS(1, MANY), set_gzip_disable, LVL_LOC, 0, NULL},
    {"gzip_static", HSL, ARGS(1, 1), set_enum, CC(gzip_static), static_values},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};

const struct directive brotli_directives[] = {
    {"brotli", HSL | CTX_LIF, ARGS(1, 1), set_flag, CC(brotli), NULL},
    {"brotli_types", HSL, ARGS(1, MANY), compress_set_types, CC(brotli_types), NULL},
    {"brotli_comp_level", HSL, ARGS(1, 1), set_brotli_level, CC(brotli_level), NULL},
    {"brotli_window", HSL, ARGS(1, 1), set_brotli_window, CC(brotli_lgwin), NULL},
    {"brotli_min_length", HSL, ARGS(1, 1), set_size, CC(brotli_min_length), NULL},
    /* deprecated in ngx_brotli, checked and ignored there too */
    {"brotli_buffers", HSL, ARGS(2, 2), set_ignored_bufs, LVL_NONE, 0, NULL},
    {"brotli_static", HSL, ARGS(1, 1), set_enum, CC(brotli_static), static_values},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
