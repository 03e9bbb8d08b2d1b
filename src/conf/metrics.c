/*
 * metrics.c - `metrics;` (server, location): the Prometheus metrics of every
 * worker (core/metrics.h) as this location's content, in the text
 * exposition format (http/metrics_http.c). Switchyard's own directive.
 */
#include "conf/directive_table.h"

static const char *set_metrics(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)p;
    (void)d;
    struct loc_conf *lc = conf;
    lc->metrics = 1;
    return NULL;
}

const struct directive metrics_directives[] = {
    {"metrics", CTX_SERVER | CTX_LOCATION, ARGS(0, 0), set_metrics, LVL_LOC, 0, NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
