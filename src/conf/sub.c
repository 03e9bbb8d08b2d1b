/*
 * sub.c - the directives of ngx_http_sub_module (sub.h), checked as nginx
 * checks them.
 */
#include "conf/sub.h"

#include <string.h>

#include "conf/directive_table.h"
#include "conf/gzip.h"
#include "conf/vars.h"

void sub_conf_init(struct sub_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->once = CONF_UNSET;
    c->last_modified = CONF_UNSET;
}

void sub_conf_merge(struct sub_conf *c, const struct sub_conf *prev)
{
    if (!c->pairs && prev) {
        c->pairs = prev->pairs;
        c->npairs = prev->npairs;
    }
    if (c->once == CONF_UNSET)
        c->once = prev ? prev->once : 1;
    if (c->last_modified == CONF_UNSET)
        c->last_modified = prev ? prev->last_modified : 0;
    if (!c->types && prev)
        c->types = prev->types;
}

/* sub_filter STRING REPLACEMENT: both may contain variables; the string may
 * not be empty (nginx: "empty search pattern"). */
static const char *set_sub_filter(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct sub_conf *c = &((struct loc_conf *)conf)->sub;
    if (p->node->args[0][0] == '\0')
        return conf_err(p, "empty search pattern");
    struct sub_pair *pairs = arena_alloc(p->a, (c->npairs + 1) * sizeof(*pairs));
    if (!pairs)
        return conf_err(p, "out of memory");
    if (c->npairs)
        memcpy(pairs, c->pairs, c->npairs * sizeof(*pairs));
    struct sub_pair *n = &pairs[c->npairs];
    struct tmpl *m = conf_tmpl(p, p->node->args[0]);
    struct tmpl *r = m ? conf_tmpl(p, p->node->args[1]) : NULL;
    if (!m || !r)
        return CONF_ERROR;
    n->match = m;
    n->replacement = r;
    c->pairs = pairs;
    c->npairs++;
    return NULL;
}

#define SUB(f) LVL_LOC, offsetof(struct loc_conf, sub.f)

const struct directive sub_directives[] = {
    {"sub_filter", HSL, ARGS(2, 2), set_sub_filter, LVL_LOC, 0, NULL},
    {"sub_filter_once", HSL, ARGS(1, 1), set_flag, SUB(once), NULL},
    {"sub_filter_last_modified", HSL, ARGS(1, 1), set_flag, SUB(last_modified), NULL},
    {"sub_filter_types", HSL, ARGS(1, MANY), compress_set_types, SUB(types), NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
