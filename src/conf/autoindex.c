/*
 * autoindex.c - the directives of ngx_http_autoindex_module (see
 * autoindex.h): flags and an enum with nginx's generic setters and messages.
 */
#include "conf/autoindex.h"
#include "conf/directive_table.h"

void autoindex_conf_init(struct autoindex_conf *c)
{
    c->enable = CONF_UNSET;
    c->format = CONF_UNSET;
    c->exact_size = CONF_UNSET;
    c->localtime = CONF_UNSET;
}

static void merge_int(int *f, const int *prev, int def)
{
    if (*f == CONF_UNSET)
        *f = prev ? *prev : def;
}

void autoindex_conf_merge(struct autoindex_conf *c, const struct autoindex_conf *prev)
{
    merge_int(&c->enable, prev ? &prev->enable : NULL, 0);
    merge_int(&c->format, prev ? &prev->format : NULL, AUTOINDEX_HTML);
    merge_int(&c->exact_size, prev ? &prev->exact_size : NULL, 1);
    merge_int(&c->localtime, prev ? &prev->localtime : NULL, 0);
}

static const struct conf_enum formats[] = {
    {"html", AUTOINDEX_HTML},
    {"json", AUTOINDEX_JSON},
    {"jsonp", AUTOINDEX_JSONP},
    {"xml", AUTOINDEX_XML},
    {NULL, 0},
};

const struct directive autoindex_directives[] = {
    {"autoindex", HSL, ARGS(1, 1), set_flag, LOC(autoindex.enable), NULL},
    {"autoindex_format", HSL, ARGS(1, 1), set_enum, LOC(autoindex.format), formats},
    {"autoindex_exact_size", HSL, ARGS(1, 1), set_flag, LOC(autoindex.exact_size), NULL},
    {"autoindex_localtime", HSL, ARGS(1, 1), set_flag, LOC(autoindex.localtime), NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
