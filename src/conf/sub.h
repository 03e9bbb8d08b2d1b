/*
 * sub.h - configuration of nginx's ngx_http_sub_module: `sub_filter STRING
 * REPLACEMENT` (several), `sub_filter_once`, `sub_filter_types`,
 * `sub_filter_last_modified`. The filter is src/http/sub_filter.c.
 *
 * Embedded in struct loc_conf as `lc->sub`; the pairs of a level replace its
 * parent's (nginx's inheritance of arrays).
 */
#ifndef SY_CONF_SUB_H
#define SY_CONF_SUB_H

#include "core/str.h"

struct tmpl;
struct compress_types;

struct sub_pair {
    const struct tmpl *match;       /* the string to find (case-insensitive) */
    const struct tmpl *replacement; /* what replaces it */
};

struct sub_conf {
    struct sub_pair *pairs;         /* NULL: no sub_filter at this level */
    unsigned npairs;
    int once;                       /* sub_filter_once: on */
    int last_modified;              /* sub_filter_last_modified: off */
    const struct compress_types *types; /* sub_filter_types: text/html */
};

void sub_conf_init(struct sub_conf *c);
void sub_conf_merge(struct sub_conf *c, const struct sub_conf *prev);

#endif
