/*
 * referer.c - `valid_referers none | blocked | server_names | string ...;`
 * (referer.h), nginx's parameters and messages. Several directives at one
 * level add up; a level without one inherits its parent's list whole.
 * `referer_hash_max_size` / `referer_hash_bucket_size` size nginx's hash:
 * accepted, no effect (the hosts are matched without one).
 */
#include "conf/referer.h"
#include "conf/directive_table.h"

#include <string.h>

#include "core/arena.h"

static const char *ref_oom(struct conf_parser *p)
{
    p->fatal = 1;
    return conf_err(p, "out of memory");
}

/* The level's own list: created on its first valid_referers. */
static struct referer_conf *ref_conf(struct conf_parser *p, struct loc_conf *lc)
{
    if (!lc->referer)
        lc->referer = arena_calloc(p->a, sizeof(struct referer_conf));
    return lc->referer;
}

static struct referer_host *ref_push(struct conf_parser *p, struct referer_conf *rc)
{
    struct referer_host *h = arena_alloc(p->a, (rc->nhosts + 1) * sizeof(*h));
    if (!h)
        return NULL;
    if (rc->nhosts)
        memcpy(h, rc->hosts, rc->nhosts * sizeof(*h));
    rc->hosts = h;
    memset(&h[rc->nhosts], 0, sizeof(*h));
    return &h[rc->nhosts++];
}

/* nginx's wildcard rules (ngx_hash_add_key): one '*' at most, no "..";
 * ".x", "*.x" and "x.*" are wildcards, anything else without '*' an exact
 * name (even "" or "."). The host is classified into `h` (lower-case).
 * 0, 1 when invalid, -1 on OOM. */
static int ref_classify(struct conf_parser *p, const char *name, size_t len,
                        struct referer_host *h)
{
    char *low = arena_strndup(p->a, name, len);
    if (!low)
        return -1;
    unsigned stars = 0;
    for (size_t i = 0; i < len; i++) {
        low[i] = (char)sy_tolower((unsigned char)low[i]);
        stars += low[i] == '*';
        if (stars > 1 || (low[i] == '.' && i + 1 < len && low[i + 1] == '.'))
            return 1;
    }
    h->kind = REF_EXACT;
    if (len > 1 && low[0] == '.') {
        h->kind = REF_WILD_HEAD;
        h->dot_form = 1;
        low++;
        len--;
    } else if (len > 2 && low[0] == '*' && low[1] == '.') {
        h->kind = REF_WILD_HEAD;
        low += 2;
        len -= 2;
    } else if (len > 2 && low[len - 1] == '*' && low[len - 2] == '.') {
        h->kind = REF_WILD_TAIL;
        len -= 2;
    }
    if (memchr(low, '*', len))
        return 1;
    h->host = (struct str){low, len};
    return 0;
}

/* nginx keeps exact names, leading and trailing wildcards in three sets, a
 * ".x" being in the first two; a name twice in one set is a conflict. */
static int ref_conflict(const struct referer_host *a, const struct referer_host *b)
{
    if (!str_eq(a->host, b->host))
        return 0;
    int a_exact = a->kind == REF_EXACT || a->dot_form, b_exact = b->kind == REF_EXACT || b->dot_form;
    return (a_exact && b_exact) || (a->kind == b->kind && a->kind != REF_EXACT);
}

static const char *ref_host(struct conf_parser *p, struct referer_conf *rc, const char *v)
{
    const char *slash = strchr(v, '/');
    size_t hlen = slash ? (size_t)(slash - v) : strlen(v);
    struct referer_host *h = ref_push(p, rc);
    if (!h)
        return ref_oom(p);
    int r = ref_classify(p, v, hlen, h);
    if (r < 0)
        return ref_oom(p);
    if (r > 0)
        return conf_err(p, "invalid hostname or wildcard \"%.*s\"", (int)hlen, v);
    if (slash && slash[1])
        h->uri = arena_str(p->a, str_from_cstr(slash));
    for (unsigned i = 0; i + 1 < rc->nhosts; i++)
        if (ref_conflict(&rc->hosts[i], h))
            return conf_err(p, "conflicting parameter \"%.*s\"", (int)hlen, v);
    return NULL;
}

static const char *ref_regex(struct conf_parser *p, struct referer_conf *rc, const char *v)
{
    if (v[1] == '\0')
        return conf_err(p, "empty regex in \"%s\"", v);
    void **n = arena_alloc(p->a, (rc->nregex + 1) * sizeof(*n));
    if (!n)
        return ref_oom(p);
    if (rc->nregex)
        memcpy(n, rc->regex, rc->nregex * sizeof(*n));
    /* nginx compiles them caseless, whatever follows the '~' */
    if (!(n[rc->nregex] = conf_regex_compile(p, v + 1, 1)))
        return CONF_ERROR;
    rc->regex = n;
    rc->nregex++;
    return NULL;
}

static const char *set_valid_referers(struct conf_parser *p, const struct directive *d,
                                      void *conf)
{
    (void)d;
    struct referer_conf *rc = ref_conf(p, conf);
    if (!rc)
        return ref_oom(p);
    for (unsigned i = 0; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        const char *rv = NULL;
        if (v[0] == '\0')
            return conf_err(p, "invalid referer \"%s\"", v);
        if (strcmp(v, "none") == 0)
            rc->none = 1;
        else if (strcmp(v, "blocked") == 0)
            rc->blocked = 1;
        else if (strcmp(v, "server_names") == 0)
            rc->server_names = 1;
        else if (v[0] == '~')
            rv = ref_regex(p, rc, v);
        else
            rv = ref_host(p, rc, v);
        if (rv)
            return rv;
    }
    return NULL;
}

int referer_conf_check(struct conf_parser *p, struct referer_conf *rc)
{
    if (!rc || rc->checked)
        return 0;
    rc->checked = 1;
    /* nginx's merge-time check (it names no file:line either); the server's
     * names count as valid referers, regexes do not */
    if ((rc->none || rc->blocked) && rc->nhosts == 0 && !rc->server_names)
        return conf_err_at(p, NULL, 0,
                           "the \"none\" or \"blocked\" referers are specified in the "
                           "\"valid_referers\" directive without any valid referer");
    return 0;
}

#define SL (CTX_SERVER | CTX_LOCATION)

const struct directive referer_directives[] = {
    {"valid_referers", SL, ARGS(1, MANY), set_valid_referers, LVL_LOC, 0, NULL},
    {"referer_hash_max_size", SL, ARGS(1, 1), set_ignored_num, LVL_NONE, 0, NULL},
    {"referer_hash_bucket_size", SL, ARGS(1, 1), set_ignored_num, LVL_NONE, 0, NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
