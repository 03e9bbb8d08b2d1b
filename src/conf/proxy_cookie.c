/*
 * proxy_cookie.c - the proxy_cookie_* directives (proxy_cookie.h), nginx's
 * syntax and messages: several directives at one level add up (tried in
 * order), `off` cancels the inherited list, and anything after `off` (or
 * `off` after a rule) "is duplicate".
 */
#include "conf/proxy_cookie.h"
#include "conf/directive_table.h"

#include <string.h>

#include "core/arena.h"

static const char *pc_oom(struct conf_parser *p)
{
    p->fatal = 1;
    return conf_err(p, "out of memory");
}

static struct proxy_cookie_conf *pc_conf(struct conf_parser *p, struct loc_conf *lc)
{
    if (!lc->proxy_cookie)
        lc->proxy_cookie = arena_calloc(p->a, sizeof(struct proxy_cookie_conf));
    return lc->proxy_cookie;
}

static int pc_tmpl(struct conf_parser *p, struct tmpl *t, const char *text)
{
    const char *e = NULL;
    if (tmpl_compile(t, &p->g->vars, p->a, str_from_cstr(text), &e) != 0) {
        conf_err(p, "%s", e ? e : "invalid value");
        return -1;
    }
    return 0;
}

/*
 * The common head of the three setters: "off" or a new rule. Returns NULL
 * and sets *add when a rule is to be added; NULL without *add for "off";
 * else the error.
 */
static const char *pc_state(struct conf_parser *p, enum cookie_list_state *st, int *add)
{
    *add = 0;
    if (*st == COOKIE_LIST_OFF)
        return "is duplicate";
    if (p->node->nargs == 1) {
        if (strcmp(p->node->args[0], "off") != 0)
            return conf_err(p, "invalid parameter \"%s\"", p->node->args[0]);
        if (*st != COOKIE_LIST_UNSET)
            return "is duplicate";
        *st = COOKIE_LIST_OFF;
        return NULL;
    }
    *st = COOKIE_LIST_SET;
    *add = 1;
    return NULL;
}

static struct cookie_rw *rw_push(struct conf_parser *p, struct cookie_rw **arr, unsigned *n)
{
    struct cookie_rw *a = arena_alloc(p->a, (*n + 1) * sizeof(*a));
    if (!a)
        return NULL;
    if (*n)
        memcpy(a, *arr, *n * sizeof(*a));
    memset(&a[*n], 0, sizeof(*a));
    *arr = a;
    return &a[(*n)++];
}

static const char *set_cookie_domain(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct proxy_cookie_conf *pc = pc_conf(p, conf);
    if (!pc)
        return pc_oom(p);
    int add;
    const char *rv = pc_state(p, &pc->domains_state, &add);
    if (rv || !add)
        return rv;
    struct cookie_rw *rw = rw_push(p, &pc->domains, &pc->ndomains);
    if (!rw)
        return pc_oom(p);
    const char *from = p->node->args[0], *to = p->node->args[1];
    if (from[0] == '~') {
        rw->kind = COOKIE_RW_REGEX;
        if (!(rw->re = conf_regex_compile(p, from + 1, 1)))
            return CONF_ERROR;
    } else {
        rw->kind = COOKIE_RW_DOMAIN;
        if (from[0] == '.')
            from++;
        if (to[0] == '.')
            to++;
        if (pc_tmpl(p, &rw->pattern, from) != 0)
            return CONF_ERROR;
    }
    return pc_tmpl(p, &rw->replacement, to) != 0 ? CONF_ERROR : NULL;
}

static const char *set_cookie_path(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct proxy_cookie_conf *pc = pc_conf(p, conf);
    if (!pc)
        return pc_oom(p);
    int add;
    const char *rv = pc_state(p, &pc->paths_state, &add);
    if (rv || !add)
        return rv;
    struct cookie_rw *rw = rw_push(p, &pc->paths, &pc->npaths);
    if (!rw)
        return pc_oom(p);
    const char *from = p->node->args[0];
    if (from[0] == '~') {
        int icase = from[1] == '*';
        rw->kind = COOKIE_RW_REGEX;
        if (!(rw->re = conf_regex_compile(p, from + 1 + icase, icase)))
            return CONF_ERROR;
    } else {
        rw->kind = COOKIE_RW_PREFIX;
        if (pc_tmpl(p, &rw->pattern, from) != 0)
            return CONF_ERROR;
    }
    return pc_tmpl(p, &rw->replacement, p->node->args[1]) != 0 ? CONF_ERROR : NULL;
}

static const char *set_cookie_flags(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct proxy_cookie_conf *pc = pc_conf(p, conf);
    if (!pc)
        return pc_oom(p);
    int add;
    const char *rv = pc_state(p, &pc->flags_state, &add);
    if (rv || !add)
        return rv;
    struct cookie_flags_rule *a = arena_alloc(p->a, (pc->nflags + 1) * sizeof(*a));
    if (!a)
        return pc_oom(p);
    if (pc->nflags)
        memcpy(a, pc->flags, pc->nflags * sizeof(*a));
    pc->flags = a;
    struct cookie_flags_rule *r = &a[pc->nflags++];
    memset(r, 0, sizeof(*r));
    const char *name = p->node->args[0];
    if (name[0] == '~') {
        if (!(r->re = conf_regex_compile(p, name + 1, 1)))
            return CONF_ERROR;
    } else if (pc_tmpl(p, &r->name, name) != 0) {
        return CONF_ERROR;
    }
    r->nflags = p->node->nargs - 1;
    r->flags = arena_calloc(p->a, r->nflags * sizeof(*r->flags));
    if (!r->flags)
        return pc_oom(p);
    for (unsigned i = 0; i < r->nflags; i++)
        if (pc_tmpl(p, &r->flags[i], p->node->args[i + 1]) != 0)
            return CONF_ERROR;
    return NULL;
}

int proxy_cookie_merge(struct conf_parser *p, struct loc_conf *c, const struct loc_conf *prev)
{
    const struct proxy_cookie_conf *up = prev ? prev->proxy_cookie : NULL;
    if (!c->proxy_cookie) {
        c->proxy_cookie = (struct proxy_cookie_conf *)up;
        return 0;
    }
    (void)p;
    struct proxy_cookie_conf *pc = c->proxy_cookie;
    if (!up)
        return 0;
    if (pc->domains_state == COOKIE_LIST_UNSET) {
        pc->domains_state = up->domains_state;
        pc->domains = up->domains;
        pc->ndomains = up->ndomains;
    }
    if (pc->paths_state == COOKIE_LIST_UNSET) {
        pc->paths_state = up->paths_state;
        pc->paths = up->paths;
        pc->npaths = up->npaths;
    }
    if (pc->flags_state == COOKIE_LIST_UNSET) {
        pc->flags_state = up->flags_state;
        pc->flags = up->flags;
        pc->nflags = up->nflags;
    }
    return 0;
}

const struct directive proxy_cookie_directives[] = {
    {"proxy_cookie_domain", HSL, ARGS(1, 2), set_cookie_domain, LVL_LOC, 0, NULL},
    {"proxy_cookie_path", HSL, ARGS(1, 2), set_cookie_path, LVL_LOC, 0, NULL},
    {"proxy_cookie_flags", HSL, ARGS(1, 4), set_cookie_flags, LVL_LOC, 0, NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
