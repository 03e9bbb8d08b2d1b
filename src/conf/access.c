/*
 * access.c - the access-control directives (see access.h): allow, deny,
 * satisfy, auth_basic, auth_basic_user_file, auth_request,
 * auth_request_set and limit_except, with nginx's syntax and messages
 * (ngx_http_access_module.c, ngx_http_auth_basic_module.c,
 * ngx_http_auth_request_module.c, ngx_http_core_module.c).
 *
 * An htpasswd file named without variables is read here, when the
 * configuration loads (through the snapshot layer, so a reload reads it
 * again and workers get the bytes the master read); a name with variables
 * is read per request by src/http/auth_basic.c, as nginx reads every file.
 */
#include "conf/access.h"
#include "conf/directive_table.h"
#include "conf/snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define HTPASSWD_MAX_SIZE (64u << 20)

/* The level's access conf, created on first use. */
static struct access_conf *ac_get(struct conf_parser *p, struct loc_conf *lc)
{
    if (lc->access)
        return lc->access;
    struct access_conf *ac = arena_calloc(p->a, sizeof(*ac));
    if (!ac)
        return NULL;
    ac->satisfy = CONF_UNSET;
    ac->auth_delay = CONF_UNSET_U64;
    lc->access = ac;
    return ac;
}

static const char *oom(struct conf_parser *p)
{
    return conf_err(p, "out of memory");
}

static int push_rule(struct conf_parser *p, struct access_conf *ac, const struct access_rule *r)
{
    struct access_rule *n = arena_alloc(p->a, (ac->nrules + 1) * sizeof(*n));
    if (!n)
        return -1;
    if (ac->nrules)
        memcpy(n, ac->rules, ac->nrules * sizeof(*n));
    n[ac->nrules++] = *r;
    ac->rules = n;
    return 0;
}

/* allow|deny address | CIDR | unix: | all */
static const char *set_rule(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct access_conf *ac = ac_get(p, conf);
    if (!ac)
        return oom(p);
    const char *v = p->node->args[0];
    struct access_rule r;
    memset(&r, 0, sizeof(r));
    r.deny = p->node->name[0] == 'd';
    if (strcmp(v, "all") == 0) {
        static const uint8_t families[] = {AF_INET, AF_INET6, AF_UNIX};
        for (unsigned i = 0; i < 3; i++) {
            r.family = families[i];
            if (push_rule(p, ac, &r) < 0)
                return oom(p);
        }
        return NULL;
    }
    if (strcmp(v, "unix:") == 0) {
        r.family = AF_UNIX;
        return push_rule(p, ac, &r) < 0 ? oom(p) : NULL;
    }
    struct realip_cidr c;
    memset(&c, 0, sizeof(c));
    int rc = realip_parse_cidr(v, &c);
    if (rc < 0)
        return conf_err(p, "invalid parameter \"%s\"", v);
    if (rc == 1)
        conf_warn_node(p, "low address bits of %s are meaningless", v);
    r.family = c.family;
    memcpy(r.addr, c.addr, sizeof(r.addr));
    memcpy(r.mask, c.mask, sizeof(r.mask));
    return push_rule(p, ac, &r) < 0 ? oom(p) : NULL;
}

/* satisfy all|any (nginx ngx_conf_set_enum_slot) */
static const char *set_satisfy(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct access_conf *ac = ac_get(p, conf);
    if (!ac)
        return oom(p);
    if (ac->satisfy != CONF_UNSET)
        return "is duplicate";
    const char *v = p->node->args[0];
    if (strcasecmp(v, "all") == 0)
        ac->satisfy = SATISFY_ALL;
    else if (strcasecmp(v, "any") == 0)
        ac->satisfy = SATISFY_ANY;
    else
        return conf_err(p, "invalid value \"%s\"", v);
    return NULL;
}

/* auth_delay time (nginx ngx_conf_set_msec_slot) */
static const char *set_auth_delay(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct access_conf *ac = ac_get(p, conf);
    if (!ac)
        return oom(p);
    if (ac->auth_delay != CONF_UNSET_U64)
        return "is duplicate";
    if (str_to_msec(str_from_cstr(p->node->args[0]), &ac->auth_delay) != 0) {
        ac->auth_delay = CONF_UNSET_U64;
        return "invalid value";
    }
    return NULL;
}

static struct tmpl *compile(struct conf_parser *p, const char *text)
{
    struct tmpl *t = arena_calloc(p->a, sizeof(*t));
    const char *e = NULL;
    if (!t) {
        oom(p);
        return NULL;
    }
    if (tmpl_compile(t, &p->g->vars, p->a, str_from_cstr(text), &e) != 0) {
        conf_err(p, "%s", e ? e : "invalid value");
        return NULL;
    }
    return t;
}

/* auth_basic string|off: the realm may hold variables; a value that is
 * "off" (also once evaluated) turns the check off. */
static const char *set_auth_basic(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct access_conf *ac = ac_get(p, conf);
    if (!ac)
        return oom(p);
    if (ac->realm_set)
        return "is duplicate";
    ac->realm_set = 1;
    ac->realm = compile(p, p->node->args[0]);
    return ac->realm ? NULL : CONF_ERROR;
}

/* Read an htpasswd file now (the snapshot layer records it for workers).
 * A file that cannot be read is not an error, as nginx only opens it per
 * request: the request gets nginx's answer then (auth_basic.c). */
static const struct htpasswd_file *load_user_file(struct conf_parser *p, const char *path)
{
    struct htpasswd_file *f = arena_calloc(p->a, sizeof(*f));
    if (!f)
        return NULL;
    f->path = path;
    char *bytes = NULL;
    size_t len = 0;
    const char *what = NULL;
    if (snap_read_file(path, HTPASSWD_MAX_SIZE, &bytes, &len, &what) != 0) {
        f->err = errno ? errno : EIO;
        return f;
    }
    char *copy = arena_alloc(p->a, len + 1);
    if (!copy) {
        free(bytes);
        return NULL;
    }
    memcpy(copy, bytes, len);
    copy[len] = '\0';
    /* the passwords' hashes are secrets: no copy left behind */
    explicit_bzero(bytes, len);
    free(bytes);
    f->text = (struct str){copy, len};
    return f;
}

/* auth_basic_user_file file: relative to the configuration's directory. */
static const char *set_user_file(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct access_conf *ac = ac_get(p, conf);
    if (!ac)
        return oom(p);
    if (ac->user_file_set)
        return "is duplicate";
    ac->user_file_set = 1;
    const char *v = p->node->args[0];
    const char *path = v[0] == '/' || v[0] == '$' ? arena_strdup(p->a, v)
                                                  : arena_printf(p->a, "%s%s", p->conf_prefix, v);
    if (!path)
        return oom(p);
    struct tmpl *t = compile(p, path);
    if (!t)
        return CONF_ERROR;
    if (!t->constant) {
        ac->user_file = t;
        return NULL;
    }
    ac->file = load_user_file(p, path);
    return ac->file ? NULL : oom(p);
}

/* auth_request uri|off */
static const char *set_auth_request(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct access_conf *ac = ac_get(p, conf);
    if (!ac)
        return oom(p);
    if (ac->auth_request.p)
        return "is duplicate";
    const char *v = p->node->args[0];
    ac->auth_request = strcmp(v, "off") == 0 ? (struct str){"", 0} : str_from_cstr(v);
    return NULL;
}

/* auth_request_set $variable value */
static const char *set_auth_request_set(struct conf_parser *p, const struct directive *d,
                                        void *conf)
{
    (void)d;
    struct access_conf *ac = ac_get(p, conf);
    if (!ac)
        return oom(p);
    const char *name = p->node->args[0];
    if (name[0] != '$')
        return conf_err(p, "invalid variable name \"%s\"", name);
    const struct var_ref *v = var_define_set(&p->g->vars, p->a, str_from_cstr(name + 1));
    if (!v)
        return conf_err(p, "the duplicate \"%s\" variable", name + 1);
    struct auth_request_var *n = arena_alloc(p->a, (ac->nvars + 1) * sizeof(*n));
    if (!n)
        return oom(p);
    if (ac->nvars)
        memcpy(n, ac->vars, ac->nvars * sizeof(*n));
    struct auth_request_var *av = &n[ac->nvars];
    memset(av, 0, sizeof(*av));
    av->var = v;
    const char *e = NULL;
    if (tmpl_compile(&av->value, &p->g->vars, p->a, str_from_cstr(p->node->args[1]), &e) != 0)
        return conf_err(p, "%s", e ? e : "invalid value");
    ac->vars = n;
    ac->nvars++;
    ac->vars_set = 1;
    return NULL;
}

static const struct {
    const char *name;
    unsigned bit;
} methods[] = {
    {"GET", LMT_GET},           {"HEAD", LMT_HEAD},         {"POST", LMT_POST},
    {"PUT", LMT_PUT},           {"DELETE", LMT_DELETE},     {"MKCOL", LMT_MKCOL},
    {"COPY", LMT_COPY},         {"MOVE", LMT_MOVE},         {"OPTIONS", LMT_OPTIONS},
    {"PROPFIND", LMT_PROPFIND}, {"PROPPATCH", LMT_PROPPATCH}, {"LOCK", LMT_LOCK},
    {"UNLOCK", LMT_UNLOCK},     {"PATCH", LMT_PATCH},
};

unsigned access_method_bit(struct str method)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (str_eq(method, str_from_cstr(methods[i].name)))
            return methods[i].bit;
    return 0;
}

/* limit_except METHOD ... { allow/deny/auth_basic ... } (location only) */
static const char *set_limit_except(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct access_conf *ac = ac_get(p, conf);
    if (!ac)
        return oom(p);
    if (ac->lmt_lc)
        return "is duplicate";
    unsigned listed = 0;
    for (unsigned i = 0; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        size_t k;
        for (k = 0; k < sizeof(methods) / sizeof(methods[0]); k++)
            if (strcasecmp(v, methods[k].name) == 0)
                break;
        if (k == sizeof(methods) / sizeof(methods[0]))
            return conf_err(p, "invalid method \"%s\"", v);
        listed |= methods[k].bit;
    }
    if (listed & LMT_GET) /* allowing GET allows HEAD */
        listed |= LMT_HEAD;
    struct loc_conf *inner = loc_conf_create(p->a);
    if (!inner)
        return oom(p);
    ac->lmt_methods = listed;
    ac->lmt_lc = inner;
    ac->lmt_file = p->node->file;
    ac->lmt_line = p->node->end_line ? p->node->end_line : p->node->line;
    const struct conf_node *self = p->node;
    struct loc_conf *saved = p->lc;
    p->lc = inner;
    int rc = conf_run_block(p, self->children, CTX_LMT);
    p->lc = saved;
    p->node = self;
    return rc == 0 ? NULL : CONF_ERROR;
}

int access_conf_merge(struct conf_parser *p, struct access_conf **cp,
                      const struct access_conf *prev)
{
    struct access_conf *c = *cp;
    if (!c) {
        if (!prev || !prev->lmt_lc) {
            *cp = (struct access_conf *)prev; /* shared, read-only from here */
            return 0;
        }
        /* limit_except belongs to its location: a copy without it */
        if (!(c = arena_alloc(p->a, sizeof(*c))))
            return -1;
        *c = *prev;
        c->lmt_lc = NULL;
        c->lmt_methods = 0;
        *cp = c;
        return 0;
    }
    if (c->satisfy == CONF_UNSET)
        c->satisfy = prev ? prev->satisfy : SATISFY_ALL;
    if (c->auth_delay == CONF_UNSET_U64)
        c->auth_delay = prev ? prev->auth_delay : 0;
    if (!c->nrules && prev) {
        c->rules = prev->rules;
        c->nrules = prev->nrules;
    }
    if (!c->realm_set && prev)
        c->realm = prev->realm;
    if (!c->user_file_set && prev) {
        c->file = prev->file;
        c->user_file = prev->user_file;
    }
    if (!c->auth_request.p)
        c->auth_request = prev ? prev->auth_request : (struct str){"", 0};
    if (!c->vars_set && prev) {
        c->vars = prev->vars;
        c->nvars = prev->nvars;
    }
    return 0;
}

int access_conf_merge_lmt(struct conf_parser *p, struct loc_conf *lc)
{
    if (!lc->access || !lc->access->lmt_lc)
        return 0;
    /* the block's conf is a nameless child of the location ("noname" in
     * nginx): it inherits everything, proxy_pass included */
    return loc_conf_merge(p, lc->access->lmt_lc, lc, NULL, 1);
}

#define AL (HSL | CTX_LMT)

const struct directive access_directives[] = {
    {"allow", AL, ARGS(1, 1), set_rule, LVL_LOC, 0, NULL},
    {"deny", AL, ARGS(1, 1), set_rule, LVL_LOC, 0, NULL},
    {"satisfy", HSL, ARGS(1, 1), set_satisfy, LVL_LOC, 0, NULL},
    {"auth_delay", HSL, ARGS(1, 1), set_auth_delay, LVL_LOC, 0, NULL},
    {"auth_basic", AL, ARGS(1, 1), set_auth_basic, LVL_LOC, 0, NULL},
    {"auth_basic_user_file", AL, ARGS(1, 1), set_user_file, LVL_LOC, 0, NULL},
    {"auth_request", HSL, ARGS(1, 1), set_auth_request, LVL_LOC, 0, NULL},
    {"auth_request_set", HSL, ARGS(2, 2), set_auth_request_set, LVL_LOC, 0, NULL},
    {"limit_except", CTX_LOCATION, ARGS(1, MANY) | D_BLOCK, set_limit_except, LVL_LOC, 0, NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
