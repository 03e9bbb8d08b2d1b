/*
 * secure_link.c - the directives of ngx_http_secure_link_module
 * (secure_link.h).
 */
#include "conf/secure_link.h"

#include "conf/directive_table.h"

void secure_link_conf_merge(struct secure_link_conf *c, const struct secure_link_conf *prev)
{
    if (!prev)
        return;
    if (!c->variable)
        c->variable = prev->variable;
    if (!c->md5)
        c->md5 = prev->md5;
    if (!c->secret)
        c->secret = prev->secret;
}

#define SL(f) LVL_LOC, offsetof(struct loc_conf, secure_link.f)

const struct directive secure_link_directives[] = {
    {"secure_link", HSL, ARGS(1, 1), set_tmpl_ptr, SL(variable), NULL},
    {"secure_link_md5", HSL, ARGS(1, 1), set_tmpl_ptr, SL(md5), NULL},
    {"secure_link_secret", CTX_LOCATION, ARGS(1, 1), set_str, SL(secret), NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
