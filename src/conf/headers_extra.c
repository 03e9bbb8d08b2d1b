/*
 * headers_extra.c - the `expires` directive (see headers_extra.h), nginx's
 * syntax and messages (ngx_http_headers_filter_module.c, ngx_parse_time).
 */
#include "conf/headers_extra.h"
#include "conf/directive_table.h"

#include <string.h>

void expires_conf_init(struct expires_conf *c)
{
    c->mode = CONF_UNSET;
    c->time = 0;
    c->value = NULL;
}

void expires_conf_merge(struct expires_conf *c, const struct expires_conf *prev)
{
    if (c->mode != CONF_UNSET)
        return;
    if (prev)
        *c = *prev;
    else
        c->mode = EXPIRES_OFF;
}

/* One unit of nginx's time syntax in seconds mode (ngx_parse_time(.., 1)):
 * its rank (units must come in decreasing order, each once) and scale. */
static int time_unit(char u, int *rank, int64_t *scale)
{
    static const struct { char u; int rank; int64_t scale; } units[] = {
        {'y', 1, 365 * 86400}, {'M', 2, 30 * 86400}, {'w', 3, 7 * 86400},
        {'d', 4, 86400},       {'h', 5, 3600},       {'m', 6, 60},
        {'s', 7, 1},
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (units[i].u == u) {
            *rank = units[i].rank;
            *scale = units[i].scale;
            return 1;
        }
    return 0;
}

/* nginx's ngx_parse_time in seconds mode: -1 when invalid. */
static int64_t parse_seconds(struct str v)
{
    int64_t total = 0, value = 0;
    int step = 0, valid = 0;
    size_t i = 0;
    while (i < v.len) {
        char c = v.p[i++];
        if (c >= '0' && c <= '9') {
            if (value > (INT64_MAX - 9) / 10)
                return -1;
            value = value * 10 + (c - '0');
            valid = 1;
            continue;
        }
        int rank;
        int64_t scale;
        if (c == ' ') {
            if (step >= 7)
                return -1;
            rank = 8;
            scale = 1;
        } else if (c == 'm' && i < v.len && v.p[i] == 's') {
            return -1; /* milliseconds have no place in seconds */
        } else if (!time_unit(c, &rank, &scale) || step >= rank) {
            return -1;
        }
        step = rank;
        if (value > INT64_MAX / scale || total > INT64_MAX - value * scale)
            return -1;
        total += value * scale;
        value = 0;
        while (i < v.len && v.p[i] == ' ')
            i++;
    }
    if (!valid || total > INT64_MAX - value)
        return -1;
    return total + value;
}

const char *expires_parse(struct str v, int *mode, int64_t *time)
{
    if (*mode != EXPIRES_MODIFIED) {
        if (str_eq(v, STR_LIT("epoch"))) {
            *mode = EXPIRES_EPOCH;
            return NULL;
        }
        if (str_eq(v, STR_LIT("max"))) {
            *mode = EXPIRES_MAX;
            return NULL;
        }
        if (str_eq(v, STR_LIT("off"))) {
            *mode = EXPIRES_OFF;
            return NULL;
        }
    }
    int minus = 0;
    if (v.len && v.p[0] == '@') {
        if (*mode == EXPIRES_MODIFIED)
            return "daily time cannot be used with \"modified\" parameter";
        *mode = EXPIRES_DAILY;
        v.p++, v.len--;
    } else if (v.len && (v.p[0] == '+' || v.p[0] == '-')) {
        minus = v.p[0] == '-';
        v.p++, v.len--;
    }
    int64_t t = parse_seconds(v);
    if (t < 0)
        return "invalid value";
    if (*mode == EXPIRES_DAILY && t > 24 * 60 * 60)
        return "daily time value must be less than 24 hours";
    *time = minus ? -t : t;
    return NULL;
}

/* expires [modified] time | epoch | max | off; the value may have variables. */
static const char *set_expires(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct expires_conf *c = &((struct loc_conf *)conf)->expires;
    if (c->mode != CONF_UNSET)
        return "is duplicate";
    const char *const *args = (const char *const *)p->node->args;
    int mode = EXPIRES_ACCESS;
    unsigned n = 0;
    if (p->node->nargs == 2) {
        if (strcmp(args[0], "modified") != 0)
            return "invalid value";
        mode = EXPIRES_MODIFIED;
        n = 1;
    }
    struct str v = str_from_cstr(args[n]);
    struct tmpl *t = arena_calloc(p->a, sizeof(*t));
    if (!t)
        return conf_err(p, "out of memory");
    const char *err = NULL;
    if (tmpl_compile(t, &p->g->vars, p->a, v, &err) != 0)
        return conf_err(p, "%s", err ? err : "invalid value");
    if (!t->constant) {
        c->mode = mode;
        c->time = 0;
        c->value = t;
        return NULL;
    }
    int64_t time = 0;
    err = expires_parse(v, &mode, &time);
    if (err)
        return err;
    c->mode = mode;
    c->time = time;
    c->value = NULL;
    return NULL;
}

const struct directive headers_extra_directives[] = {
    {"expires", HSL | CTX_LIF, ARGS(1, 2), set_expires, LVL_LOC, 0, NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
