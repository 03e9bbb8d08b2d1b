/*
 * split_clients.c - the split_clients block (split_clients.h): nginx's
 * parameters and messages ("invalid percent value", "percent total is
 * greater than 100%"), its bucket bounds and its MurmurHash2.
 */
#include "conf/split_clients.h"
#include "conf/directive_table.h"

#include <string.h>

#include "core/arena.h"

uint32_t split_murmur_hash2(const unsigned char *data, size_t len)
{
    uint32_t h = 0 ^ (uint32_t)len, k;
    while (len >= 4) {
        k = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
            (uint32_t)data[3] << 24;
        k *= 0x5bd1e995;
        k ^= k >> 24;
        k *= 0x5bd1e995;
        h *= 0x5bd1e995;
        h ^= k;
        data += 4;
        len -= 4;
    }
    switch (len) {
    case 3:
        h ^= (uint32_t)data[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)data[1] << 8;
        /* fall through */
    case 1:
        h ^= data[0];
        h *= 0x5bd1e995;
    }
    h ^= h >> 13;
    h *= 0x5bd1e995;
    h ^= h >> 15;
    return h;
}

struct str split_clients_pick(const struct split_clients_conf *sc, uint32_t hash)
{
    for (unsigned i = 0; i < sc->nparts; i++)
        if (hash < sc->parts[i].upto || sc->parts[i].upto == 0)
            return sc->parts[i].value;
    return STR_LIT("");
}

/* nginx ngx_atofp(text, len, 2): "12.34" -> 1234; -1 when invalid. */
static long percent_value(const char *text, size_t len)
{
    long v = 0;
    int dot = 0, frac = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '.' && !dot) {
            dot = 1;
            continue;
        }
        if (c < '0' || c > '9' || (dot && ++frac > 2))
            return -1;
        v = v * 10 + (c - '0');
        if (v > 100000000)
            return -1;
    }
    for (; frac < 2; frac++)
        v *= 10;
    return v;
}

static const char *split_part(struct conf_parser *p, struct split_clients_conf *sc,
                              const struct conf_node *c)
{
    if (c->is_block)
        return conf_err(p, "unexpected \"{\"");
    /* nginx reads the second word only: more are ignored; with none its
     * value is whatever its argument array held (here: empty) */
    uint32_t pct = 0;
    if (strcmp(c->name, "*") != 0) {
        size_t len = strlen(c->name);
        long n = len && c->name[len - 1] == '%' ? percent_value(c->name, len - 1) : -1;
        if (n <= 0)
            return conf_err(p, "invalid percent value \"%s\"", c->name);
        pct = (uint32_t)n;
    }
    struct split_part *parts = arena_alloc(p->a, (sc->nparts + 1) * sizeof(*parts));
    if (!parts) {
        p->fatal = 1;
        return conf_err(p, "out of memory");
    }
    if (sc->nparts)
        memcpy(parts, sc->parts, sc->nparts * sizeof(*parts));
    parts[sc->nparts].upto = pct;
    parts[sc->nparts].value = arena_str(p->a, str_from_cstr(c->nargs ? c->args[0] : ""));
    sc->parts = parts;
    sc->nparts++;
    return NULL;
}

/* Percentages (hundredths) into hash bounds, nginx's arithmetic. */
static const char *split_bounds(struct conf_parser *p, struct split_clients_conf *sc)
{
    uint32_t sum = 0, last = 0;
    for (unsigned i = 0; i < sc->nparts; i++) {
        struct split_part *pt = &sc->parts[i];
        sum = pt->upto ? sum + pt->upto : 10000;
        if (sum == 10000)
            pt->upto = 0;
        if (sum > 10000)
            return conf_err(p, "percent total is greater than 100%%");
        if (pt->upto) {
            last += (uint32_t)(pt->upto * (uint64_t)0xffffffff / 10000);
            pt->upto = last;
        }
    }
    return NULL;
}

static const char *set_split_clients(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    const struct conf_node *self = p->node;
    struct split_clients_conf *sc = arena_calloc(p->a, sizeof(*sc));
    if (!sc) {
        p->fatal = 1;
        return conf_err(p, "out of memory");
    }
    const char *e = NULL;
    if (tmpl_compile(&sc->source, &p->g->vars, p->a, str_from_cstr(self->args[0]), &e) != 0)
        return conf_err(p, "%s", e ? e : "invalid value");
    const char *dst = self->args[1];
    if (dst[0] != '$')
        return conf_err(p, "invalid variable name \"%s\"", dst);
    if (!var_define_module(&p->g->vars, p->a, str_from_cstr(dst + 1), VAR_SPLIT, sc, &e))
        return conf_err(p, "%s", e ? e : "out of memory");
    for (const struct conf_node *c = self->children; c; c = c->next) {
        p->node = c;
        const char *rv = split_part(p, sc, c);
        if (rv)
            return rv;
    }
    p->node = self;
    return split_bounds(p, sc);
}

const struct directive split_clients_directives[] = {
    {"split_clients", CTX_HTTP, ARGS(2, 2) | D_BLOCK, set_split_clients, LVL_NONE, 0, NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
