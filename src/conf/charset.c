/*
 * charset.c - the directives of ngx_http_charset_module (see charset.h),
 * with nginx's syntax, defaults and messages
 * (ngx_http_charset_filter_module.c, ngx_http_types_slot).
 */
#include "conf/charset.h"
#include "conf/directive_table.h"

#include <string.h>
#include <strings.h>

/* nginx 1.22's default charset_types ("text/html" is always first). */
static const struct str default_types[] = {
    STR_LIT("text/html"),        STR_LIT("text/xml"),
    STR_LIT("text/plain"),       STR_LIT("text/vnd.wap.wml"),
    STR_LIT("application/javascript"), STR_LIT("application/rss+xml"),
};

void charset_conf_init(struct charset_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->charset.how = CONF_UNSET;
    c->source.how = CONF_UNSET;
    c->override = CONF_UNSET;
}

int charset_known(const struct charset_registry *reg, struct str name)
{
    for (unsigned i = 0; reg && i < reg->nnames; i++)
        if (str_caseeq(reg->names[i], name))
            return 1;
    return 0;
}

static int name_index(const struct charset_registry *reg, struct str name)
{
    for (unsigned i = 0; reg && i < reg->nnames; i++)
        if (str_caseeq(reg->names[i], name))
            return (int)i;
    return -1;
}

int charset_has_map(const struct charset_registry *reg, struct str a, struct str b)
{
    int x = name_index(reg, a), y = name_index(reg, b);
    if (x < 0 || y < 0)
        return 0;
    for (unsigned i = 0; i < reg->nmaps; i++) {
        const struct charset_map_pair *m = &reg->maps[i];
        if ((m->src == (unsigned)x && m->dst == (unsigned)y) ||
            (m->src == (unsigned)y && m->dst == (unsigned)x))
            return 1;
    }
    return 0;
}

/* The http-level registry, made at first need. */
static struct charset_registry *registry(struct conf_parser *p)
{
    struct http_conf *hc = p->g->http;
    if (!hc->charsets)
        hc->charsets = arena_calloc(p->a, sizeof(*hc->charsets));
    return hc->charsets;
}

/* nginx's ngx_http_add_charset: the index of `name`, registered when new; -1 when
 * out of memory. */
static int add_charset(struct conf_parser *p, struct str name)
{
    struct charset_registry *reg = registry(p);
    if (!reg)
        return -1;
    int i = name_index(reg, name);
    if (i >= 0)
        return i;
    if (reg->nnames == reg->capnames) {
        unsigned cap = reg->capnames ? reg->capnames * 2 : 4;
        struct str *n = arena_alloc(p->a, cap * sizeof(*n));
        if (!n)
            return -1;
        if (reg->nnames)
            memcpy(n, reg->names, reg->nnames * sizeof(*n));
        reg->names = n;
        reg->capnames = cap;
    }
    reg->names[reg->nnames] = name;
    return (int)reg->nnames++;
}

/* charset NAME | $var | off; source_charset NAME | $var (nginx ngx_http_set_charset_slot:
 * only `charset` knows `off`). */
static const char *set_charset_value(struct conf_parser *p, const struct directive *d,
                                     void *conf)
{
    struct charset_value *v = FIELD(conf, d, struct charset_value);
    if (v->how != CONF_UNSET)
        return "is duplicate";
    const char *a = p->node->args[0];
    if (strcmp(d->name, "charset") == 0 && strcmp(a, "off") == 0) {
        v->how = CHARSET_OFF;
        return NULL;
    }
    if (a[0] == '$') {
        struct tmpl *t = arena_calloc(p->a, sizeof(*t));
        const char *err = NULL;
        if (!t)
            return conf_err(p, "out of memory");
        if (tmpl_compile(t, &p->g->vars, p->a, str_from_cstr(a), &err) != 0)
            return conf_err(p, "%s", err ? err : "invalid value");
        v->how = CHARSET_VAR;
        v->var = t;
        return NULL;
    }
    if (add_charset(p, str_from_cstr(a)) < 0)
        return conf_err(p, "out of memory");
    v->how = CHARSET_NAME;
    v->name = str_from_cstr(a);
    return NULL;
}

/* charset_types type ...; (nginx ngx_http_types_slot: several directives add up,
 * "text/html" comes first, `*` means every type). */
static const char *set_charset_types(struct conf_parser *p, const struct directive *d,
                                     void *conf)
{
    (void)d;
    struct charset_conf *c = &((struct loc_conf *)conf)->charset;
    if (c->types_all)
        return NULL;
    struct str *list = arena_alloc(p->a, (c->ntypes + p->node->nargs + 1) * sizeof(*list));
    if (!list)
        return conf_err(p, "out of memory");
    unsigned n = 0;
    if (c->types) {
        memcpy(list, c->types, c->ntypes * sizeof(*list));
        n = c->ntypes;
    } else {
        list[n++] = default_types[0];
    }
    for (unsigned i = 0; i < p->node->nargs; i++) {
        const char *a = p->node->args[i];
        if (strcmp(a, "*") == 0) {
            c->types_all = 1;
            c->types = NULL;
            c->ntypes = 0;
            return NULL;
        }
        char *low = arena_strdup(p->a, a);
        if (!low)
            return conf_err(p, "out of memory");
        for (char *q = low; *q; q++)
            *q = (char)sy_tolower((unsigned char)*q);
        struct str t = str_from_cstr(low);
        int dup = 0;
        for (unsigned k = 0; k < n && !dup; k++)
            dup = str_eq(list[k], t);
        if (dup) {
            conf_warn_node(p, "duplicate MIME type \"%s\"", low);
            continue;
        }
        list[n++] = t;
    }
    c->types = list;
    c->ntypes = n;
    return NULL;
}

/* A hex byte of a charset_map line (nginx ngx_hextoi, at most 255); -1 when not. */
static int hex_value(const char *s, size_t len)
{
    if (len == 0)
        return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (d < 0 || v > 255)
            return -1;
        v = v * 16 + d;
    }
    return v > 255 ? -1 : v;
}

/* The code point of a UTF-8 sequence given as hex pairs ("D18E"), or -1. */
static long utf8_hex_codepoint(const char *s, size_t len)
{
    unsigned char b[4];
    size_t n = len / 2;
    if (len == 0 || n > 4)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = hex_value(s + 2 * i, i * 2 + 2 <= len ? 2 : 1);
        if (v < 0)
            return -1;
        b[i] = (unsigned char)v;
    }
    if (len % 2) {
        int v = hex_value(s + len - 1, 1);
        if (v < 0)
            return -1;
    }
    unsigned need = b[0] < 0x80 ? 1 : (b[0] & 0xe0) == 0xc0 ? 2 : (b[0] & 0xf0) == 0xe0 ? 3
                                    : (b[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (!need || need > n)
        return -1;
    long cp = need == 1 ? b[0] : b[0] & (0x7f >> need);
    for (unsigned i = 1; i < need; i++) {
        if ((b[i] & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (b[i] & 0x3f);
    }
    return cp;
}

/* One line of a charset_map block: "SRC DST" in hex (DST as UTF-8 bytes when the
 * block maps to utf-8), checked as nginx's ngx_http_charset_map. */
static const char *charset_map_line(struct conf_parser *p, const struct conf_node *c, int to_utf8)
{
    p->node = c;
    if (c->is_block || c->nargs != 1)
        return conf_err(p, "invalid parameters number");
    int src = hex_value(c->name, strlen(c->name));
    if (src < 0)
        return conf_err(p, "invalid value \"%s\"", c->name);
    const char *v = c->args[0];
    size_t len = strlen(v);
    if (to_utf8 ? utf8_hex_codepoint(v, len) < 0 || utf8_hex_codepoint(v, len) > 0xffff
                : hex_value(v, len) < 0)
        return conf_err(p, "invalid value \"%s\"", v);
    return NULL;
}

/* charset_map SRC DST { ... } (http): recorded for the load-time checks; the
 * tables themselves are only checked, as nothing is recoded. */
static const char *set_charset_map(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    const struct conf_node *self = p->node;
    struct str a = str_from_cstr(self->args[0]), b = str_from_cstr(self->args[1]);
    int src = add_charset(p, a), dst = add_charset(p, b);
    struct charset_registry *reg = registry(p);
    if (src < 0 || dst < 0 || !reg)
        return conf_err(p, "out of memory");
    if (src == dst)
        return conf_err(p, "\"charset_map\" between the same charsets \"%s\" and \"%s\"",
                        self->args[0], self->args[1]);
    if (charset_has_map(reg, a, b))
        return conf_err(p, "duplicate \"charset_map\" between \"%s\" and \"%s\"", self->args[0],
                        self->args[1]);
    int to_utf8 = strcasecmp(self->args[1], "utf-8") == 0;
    for (const struct conf_node *c = self->children; c; c = c->next) {
        const char *e = charset_map_line(p, c, to_utf8);
        if (e) {
            p->node = self;
            return e;
        }
    }
    p->node = self;
    if (reg->nmaps == reg->capmaps) {
        unsigned cap = reg->capmaps ? reg->capmaps * 2 : 2;
        struct charset_map_pair *m = arena_alloc(p->a, cap * sizeof(*m));
        if (!m)
            return conf_err(p, "out of memory");
        if (reg->nmaps)
            memcpy(m, reg->maps, reg->nmaps * sizeof(*m));
        reg->maps = m;
        reg->capmaps = cap;
    }
    reg->maps[reg->nmaps++] = (struct charset_map_pair){(unsigned)src, (unsigned)dst};
    return NULL;
}

static void merge_value(struct charset_value *c, const struct charset_value *prev)
{
    if (c->how != CONF_UNSET)
        return;
    if (prev)
        *c = *prev;
    else
        c->how = CHARSET_OFF;
}

int charset_conf_merge(struct conf_parser *p, struct charset_conf *c,
                       const struct charset_conf *prev)
{
    if (c->override == CONF_UNSET)
        c->override = prev ? prev->override : 0;
    merge_value(&c->charset, prev ? &prev->charset : NULL);
    merge_value(&c->source, prev ? &prev->source : NULL);
    if (!c->types && !c->types_all) {
        if (prev) {
            c->types = prev->types;
            c->ntypes = prev->ntypes;
            c->types_all = prev->types_all;
        } else {
            c->types = default_types;
            c->ntypes = sizeof(default_types) / sizeof(default_types[0]);
        }
    }
    /* nginx's postconfiguration check, for the constant pairs */
    if (c->charset.how != CHARSET_NAME || c->source.how != CHARSET_NAME ||
        str_caseeq(c->charset.name, c->source.name))
        return 0;
    const struct charset_registry *reg = p->g->http ? p->g->http->charsets : NULL;
    const struct str s = c->source.name, t = c->charset.name;
    if (!charset_has_map(reg, s, t))
        return conf_err_at(p, NULL, 0, "no \"charset_map\" between the charsets \"%.*s\" and \"%.*s\"",
                           (int)s.len, s.p, (int)t.len, t.p);
    return conf_err_at(p, NULL, 0,
                       "recoding from \"%.*s\" (source_charset) to \"%.*s\" (charset) is not "
                       "supported: Switchyard sets the charset of a response but does not "
                       "convert its body; serve the content in \"%.*s\" and set source_charset "
                       "to it (or remove source_charset)",
                       (int)s.len, s.p, (int)t.len, t.p, (int)t.len, t.p);
}

const struct directive charset_directives[] = {
    {"charset", HSL | CTX_LIF, ARGS(1, 1), set_charset_value, LOC(charset.charset), NULL},
    {"source_charset", HSL | CTX_LIF, ARGS(1, 1), set_charset_value, LOC(charset.source), NULL},
    {"override_charset", HSL | CTX_LIF, ARGS(1, 1), set_flag, LOC(charset.override), NULL},
    {"charset_types", HSL, ARGS(1, MANY), set_charset_types, LVL_LOC, 0, NULL},
    {"charset_map", CTX_HTTP, ARGS(2, 2) | D_BLOCK, set_charset_map, LVL_NONE, 0, NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
