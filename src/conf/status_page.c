/*
 * status_page.c - `status_page;` (location): Switchyard's live status page
 * (http/status_page.c, docs/status-page.md) is this location's content:
 * the HTML page on GET, its data on `?format=json`. No argument.
 */
#include "conf/directive_table.h"

static const char *set_status_page(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)p;
    (void)d;
    struct loc_conf *lc = conf;
    lc->status_page = 1;
    return NULL;
}

const struct directive status_page_directives[] = {
    {"status_page", CTX_LOCATION, ARGS(0, 0), set_status_page, LVL_LOC, 0, NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
