/*
 * limit_rate.c - the directives `limit_rate` and `limit_rate_after`
 * (limit_rate.h): checked as nginx checks them (a value without variables
 * must be a size), kept as templates evaluated per response.
 */
#include "conf/limit_rate.h"

#include "conf/directive_table.h"
#include "conf/vars.h"

void limit_rate_conf_init(struct limit_rate_conf *c)
{
    c->rate = NULL;
    c->after = NULL;
    c->assignable = 0;
}

void limit_rate_conf_merge(struct limit_rate_conf *c, const struct limit_rate_conf *prev,
                           int assigned)
{
    if (!c->rate && prev)
        c->rate = prev->rate;
    if (!c->after && prev)
        c->after = prev->after;
    c->assignable = assigned;
}

/* limit_rate SIZE | limit_rate_after SIZE: variables allowed; a constant is
 * a size now (nginx's ngx_http_set_complex_value_size_slot). */
static const char *set_rate(struct conf_parser *p, const struct directive *d, void *conf)
{
    const char *rv = set_tmpl_ptr(p, d, conf);
    if (rv)
        return rv;
    const struct tmpl *t = *FIELD(conf, d, const struct tmpl *);
    uint64_t v;
    if (t->constant && str_to_size(t->raw, &v) != 0)
        return "invalid value";
    return NULL;
}

const struct directive limit_rate_directives[] = {
    {"limit_rate", HSL | CTX_LIF, ARGS(1, 1), set_rate, LOC(limit_rate.rate), NULL},
    {"limit_rate_after", HSL | CTX_LIF, ARGS(1, 1), set_rate, LOC(limit_rate.after), NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
