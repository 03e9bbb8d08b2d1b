/*
 * directive_table.c - the list of directive tables the dispatcher searches
 * (directive_table.h). A module adds its table here, one line.
 */
#include "conf/directive_table.h"

const struct directive *const conf_module_tables[] = {
    core_directives,
    http2_directives,
    gzip_directives,
    brotli_directives,
    headers_extra_directives,
    charset_directives,
    autoindex_directives,
    access_directives,
    limit_rate_directives,
    sub_directives,
    proxy_socket_directives,
    stub_status_directives,
    status_page_directives,
    metrics_directives,
    secure_link_directives,
    geo_directives,
    split_clients_directives,
    referer_directives,
    empty_gif_directives,
    upstream_zone_directives,
    proxy_cookie_directives,
    ssi_directives,
    cache_directives,
    NULL,
};
