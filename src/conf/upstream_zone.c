/*
 * upstream_zone.c - `zone name [size];` in upstream{} (nginx's
 * ngx_http_upstream_zone_module): checked with nginx's messages, no effect.
 *
 * nginx's zone puts a group's peer state (failures, weights, the
 * round-robin position, connection counts) in shared memory so that every
 * worker sees it. Switchyard keeps that state per worker, as nginx does
 * without a zone (docs/directives.md, `zone`, says exactly what is kept
 * where); the directive is accepted so that configurations written for
 * nginx run unchanged.
 */
#include "conf/directive_table.h"

#include <stdint.h>

#define ZONE_MIN_SIZE (8 * 4096) /* nginx: 8 pages */

static const char *set_upstream_zone(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    const struct conf_node *n = p->node;
    if (n->args[0][0] == '\0')
        return conf_err(p, "invalid zone name \"%s\"", n->args[0]);
    if (n->nargs == 2) {
        uint64_t size;
        if (str_to_size(str_from_cstr(n->args[1]), &size) != 0)
            return conf_err(p, "invalid zone size \"%s\"", n->args[1]);
        if (size < ZONE_MIN_SIZE)
            return conf_err(p, "zone \"%s\" is too small", n->args[0]);
    }
    return NULL;
}

const struct directive upstream_zone_directives[] = {
    {"zone", CTX_UPSTREAM, ARGS(1, 2), set_upstream_zone, LVL_NONE, 0, NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
