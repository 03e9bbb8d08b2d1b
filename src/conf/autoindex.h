/*
 * autoindex.h - the configuration of nginx's ngx_http_autoindex_module
 * (`autoindex`, `autoindex_format`, `autoindex_exact_size`,
 * `autoindex_localtime`): the per-location state (loc_conf.autoindex) and
 * the table (autoindex_directives). The listing itself is
 * src/http/autoindex.c, reached from the static handler.
 */
#ifndef SY_CONF_AUTOINDEX_H
#define SY_CONF_AUTOINDEX_H

/* autoindex_format values (nginx's NGX_HTTP_AUTOINDEX_*) */
enum autoindex_format {
    AUTOINDEX_HTML = 0,
    AUTOINDEX_JSON,
    AUTOINDEX_JSONP,
    AUTOINDEX_XML,
};

struct autoindex_conf {
    int enable;     /* autoindex on|off: off */
    int format;     /* enum autoindex_format: html */
    int exact_size; /* autoindex_exact_size: on */
    int localtime;  /* autoindex_localtime: off */
};

/* Every field CONF_UNSET. */
void autoindex_conf_init(struct autoindex_conf *c);

/* nginx's merge: each unset field from `prev`, or nginx's default when
 * `prev` is NULL (the http level). */
void autoindex_conf_merge(struct autoindex_conf *c, const struct autoindex_conf *prev);

#endif
