/*
 * stub_status.c - `stub_status;` (server, location): nginx's
 * ngx_http_stub_status_module makes the connection and request counters
 * (core/stats.h) this location's content (http/stub_status.c). nginx before
 * 1.7.5 wrote `stub_status on;`: an argument is accepted, as nginx does.
 */
#include "conf/directive_table.h"

static const char *set_stub_status(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)p;
    (void)d;
    struct loc_conf *lc = conf;
    lc->stub_status = 1;
    return NULL;
}

const struct directive stub_status_directives[] = {
    {"stub_status", CTX_SERVER | CTX_LOCATION, ARGS(0, 1), set_stub_status, LVL_LOC, 0, NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
