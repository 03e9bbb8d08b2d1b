/*
 * empty_gif.c - `empty_gif;` (location): nginx's ngx_http_empty_gif_module
 * makes the 1x1 transparent GIF this location's content (http/empty_gif.c).
 */
#include "conf/directive_table.h"

static const char *set_empty_gif(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)p;
    (void)d;
    struct loc_conf *lc = conf;
    lc->empty_gif = 1;
    return NULL;
}

const struct directive empty_gif_directives[] = {
    {"empty_gif", CTX_LOCATION, ARGS(0, 0), set_empty_gif, LVL_LOC, 0, NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
