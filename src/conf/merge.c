/*
 * merge.c - creating per-level confs with every field unset, and merging a
 * level from its parent with nginx's defaults and inheritance rules
 * (ngx_http_core_merge_loc_conf, ngx_http_proxy_merge_loc_conf, ...).
 *
 * Rules worth knowing:
 *   - scalars: a level that sets a value keeps it, otherwise it inherits;
 *     the top (http) level falls back to nginx's default;
 *   - lists (add_header, proxy_set_header, error_page, index, access_log,
 *     proxy_hide_header, proxy_pass_header, proxy_redirect, types):
 *     a level that sets any entry replaces the whole inherited list;
 *   - never inherited: try_files, the rewrite ops, alias and proxy_pass --
 *     except into the conf of an `if` block ("noname" in nginx), which
 *     inherits everything from its location;
 *   - `proxy_redirect default` (the default when nothing is set) becomes a
 *     concrete from/to pair for a location with a static proxy_pass.
 * After loc_conf_merge() no field is CONF_UNSET, except
 * keepalive_header_timeout whose UNSET means "no Keep-Alive header".
 */
#include "conf/access.h"
#include "conf/directives.h"
#include "conf/proxy_cookie.h"
#include "conf/referer.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct loc_conf *loc_conf_create(struct arena *a)
{
    struct loc_conf *c = arena_calloc(a, sizeof(*c));
    if (!c)
        return NULL;
    c->client_header_timeout = CONF_UNSET_U64;
    c->client_body_timeout = CONF_UNSET_U64;
    c->send_timeout = CONF_UNSET_U64;
    c->keepalive_timeout = CONF_UNSET_U64;
    c->keepalive_header_timeout = CONF_UNSET_U64;
    c->keepalive_time = CONF_UNSET_U64;
    c->keepalive_requests = CONF_UNSET;
    c->keepalive_disable_msie6 = CONF_UNSET;
    c->client_max_body_size = CONF_UNSET_U64;
    c->client_body_buffer_size = CONF_UNSET_U64;
    c->client_header_buffer_size = CONF_UNSET_U64;
    c->large_client_header_buffers_num = CONF_UNSET;
    c->large_client_header_buffers_size = CONF_UNSET_U64;
    c->server_tokens = CONF_UNSET;
    c->real_ip_header = CONF_UNSET;
    c->real_ip_recursive = CONF_UNSET;
    c->sendfile = CONF_UNSET;
    c->tcp_nodelay = CONF_UNSET;
    c->websocket_origins_off = CONF_UNSET;
    c->access_log_off = CONF_UNSET;
    c->disable_symlinks = CONF_UNSET;
    c->etag = CONF_UNSET;
    c->if_modified_since = CONF_UNSET;
    c->proxy_http_version_minor = CONF_UNSET;
    c->proxy_connect_timeout = CONF_UNSET_U64;
    c->proxy_read_timeout = CONF_UNSET_U64;
    c->proxy_send_timeout = CONF_UNSET_U64;
    c->proxy_buffering = CONF_UNSET;
    c->proxy_request_buffering = CONF_UNSET;
    c->proxy_buffer_size = CONF_UNSET_U64;
    c->proxy_buffers_num = CONF_UNSET;
    c->proxy_buffers_size = CONF_UNSET_U64;
    c->proxy_redirect_off = CONF_UNSET;
    c->proxy_pass_request_headers = CONF_UNSET;
    c->proxy_pass_request_body = CONF_UNSET;
    c->proxy_intercept_errors = CONF_UNSET;
    c->proxy_ignore_headers = 0; /* bitmask: 0 = unset */
    c->proxy_next_upstream = 0; /* bitmask: 0 = unset */
    c->proxy_next_upstream_tries = CONF_UNSET;
    c->proxy_next_upstream_timeout = CONF_UNSET_U64;
    c->tcp_nopush = CONF_UNSET;
    c->max_ranges = CONF_UNSET;
    c->keepalive_disable_safari = CONF_UNSET;
    c->proxy_busy_buffers_size = CONF_UNSET_U64;
    c->proxy_ignore_client_abort = CONF_UNSET;
    c->proxy_ssl_server_name = CONF_UNSET;
    c->proxy_ssl_verify = CONF_UNSET;
    c->proxy_ssl_protocols = 0;
    c->proxy_ssl_session_reuse = CONF_UNSET;
    c->proxy_ssl_verify_depth = CONF_UNSET;
    c->resolver_valid = CONF_UNSET_U64;
    c->resolver_ipv4 = CONF_UNSET;
    c->resolver_ipv6 = CONF_UNSET;
    c->resolver_timeout = CONF_UNSET_U64;
    c->underscores_in_headers = CONF_UNSET;
    c->ignore_invalid_headers = CONF_UNSET;
    c->merge_slashes = CONF_UNSET;
    c->absolute_redirect = CONF_UNSET;
    c->port_in_redirect = CONF_UNSET;
    c->server_name_in_redirect = CONF_UNSET;
    c->lingering_close = CONF_UNSET;
    c->lingering_time = CONF_UNSET_U64;
    c->lingering_timeout = CONF_UNSET_U64;
    c->chunked_transfer_encoding = CONF_UNSET;
    c->proxy_socket_keepalive = CONF_UNSET;
    c->internal = CONF_UNSET;
    c->websocket_auto = CONF_UNSET;
    c->websocket_idle_timeout = CONF_UNSET_U64;
    c->websocket_ping_interval = CONF_UNSET_U64;
    c->websocket_ping_timeout = CONF_UNSET_U64;
    c->websocket_max_message_size = CONF_UNSET_U64;
    c->limit_req_status = CONF_UNSET;
    c->limit_conn_status = CONF_UNSET;
    c->limit_req_log_level = CONF_UNSET;
    c->limit_conn_log_level = CONF_UNSET;
    c->limit_req_dry_run = CONF_UNSET;
    c->limit_conn_dry_run = CONF_UNSET;
    c->websocket_message_rate = CONF_UNSET_U64;
    c->websocket_message_burst = CONF_UNSET_U64;
    c->http2 = CONF_UNSET;
    c->http2_max_concurrent_streams = CONF_UNSET_U64;
    c->http2_body_preread_size = CONF_UNSET_U64;
    c->http2_chunk_size = CONF_UNSET_U64;
    c->http2_recv_buffer_size = CONF_UNSET_U64;
    compress_conf_init(&c->compress);
    limit_rate_conf_init(&c->limit_rate);
    sub_conf_init(&c->sub);
    proxy_socket_conf_init(&c->proxy_socket);
    cache_conf_init(&c->cache);
    expires_conf_init(&c->expires);
    charset_conf_init(&c->charset);
    autoindex_conf_init(&c->autoindex);
    ssi_conf_init(&c->ssi);
    return c;
}

#define MERGE_U64(f, def)                                                                          \
    do {                                                                                           \
        if (c->f == CONF_UNSET_U64)                                                                \
            c->f = prev ? prev->f : (def);                                                         \
    } while (0)
#define MERGE_INT(f, def)                                                                          \
    do {                                                                                           \
        if (c->f == CONF_UNSET)                                                                    \
            c->f = prev ? prev->f : (def);                                                         \
    } while (0)
#define MERGE_PTR(f)                                                                               \
    do {                                                                                           \
        if (!c->f && prev)                                                                         \
            c->f = prev->f;                                                                        \
    } while (0)
#define MERGE_LIST(f, n)                                                                           \
    do {                                                                                           \
        if (c->n == 0 && prev) {                                                                   \
            c->f = prev->f;                                                                        \
            c->n = prev->n;                                                                        \
        }                                                                                          \
    } while (0)

/* The default access log: logs/access.log in the "combined" format. */
static struct access_log *default_log(struct conf_parser *p)
{
    if (p->default_log)
        return p->default_log;
    struct access_log *al = arena_calloc(p->a, sizeof(*al));
    if (!al)
        return NULL;
    al->path = conf_full_path(p, "logs/access.log");
    if (!al->path)
        return NULL;
    const struct http_conf *hc = p->g->http;
    for (unsigned i = 0; hc && i < hc->nlog_formats; i++)
        if (strcmp(hc->log_formats[i]->name, "combined") == 0)
            al->format = hc->log_formats[i];
    p->default_log = al;
    return al;
}

/* The default pair nginx derives from a static proxy_pass. */
static int default_redirect(struct conf_parser *p, struct loc_conf *c, const struct location *loc)
{
    const struct proxy_pass *pp = c->proxy_pass;
    struct proxy_redirect *pr = arena_calloc(p->a, sizeof(*pr));
    if (!pr)
        return -1;
    const char *from, *to;
    if (pp->has_uri) {
        from = arena_printf(p->a, "%.*s%.*s", (int)pp->url.len, pp->url.p, (int)pp->uri.len,
                            pp->uri.p);
        if (loc && loc->match == LOC_NAMED)
            to = arena_printf(p->a, "@%.*s", (int)loc->pattern.len, loc->pattern.p);
        else if (loc)
            to = arena_strndup(p->a, loc->pattern.p, loc->pattern.len);
        else
            to = "";
    } else {
        from = arena_printf(p->a, "%.*s/", (int)pp->url.len, pp->url.p);
        to = "/";
    }
    if (!from || !to)
        return -1;
    pr->is_default = 1;
    pr->from.raw = str_from_cstr(from);
    pr->from.constant = 1;
    pr->to.raw = str_from_cstr(to);
    pr->to.constant = 1;
    c->proxy_redirects = pr;
    c->nproxy_redirects = 1;
    return 0;
}

int loc_conf_merge(struct conf_parser *p, struct loc_conf *c, const struct loc_conf *prev,
                   const struct location *loc, int noname)
{
    /* explicit flags first: they look at what this level set */
    c->proxy_read_timeout_explicit =
        c->proxy_read_timeout != CONF_UNSET_U64 || (prev && prev->proxy_read_timeout_explicit);
    c->proxy_send_timeout_explicit =
        c->proxy_send_timeout != CONF_UNSET_U64 || (prev && prev->proxy_send_timeout_explicit);

    /* client side */
    MERGE_U64(client_header_timeout, 60000);
    MERGE_U64(client_body_timeout, 60000);
    MERGE_U64(send_timeout, 60000);
    MERGE_U64(keepalive_timeout, 75000);
    /* merged on its own, as nginx does; UNSET = no "Keep-Alive: timeout=" header */
    if (c->keepalive_header_timeout == CONF_UNSET_U64 && prev)
        c->keepalive_header_timeout = prev->keepalive_header_timeout;
    MERGE_U64(keepalive_time, 3600000);
    MERGE_INT(keepalive_requests, 1000);
    if (c->keepalive_disable_msie6 == CONF_UNSET) {
        c->keepalive_disable_msie6 = prev ? prev->keepalive_disable_msie6 : 1;
        c->keepalive_disable_safari = prev ? prev->keepalive_disable_safari : 0;
    }
    if (c->keepalive_disable_safari == CONF_UNSET)
        c->keepalive_disable_safari = 0;
    MERGE_U64(client_max_body_size, 1024 * 1024);
    MERGE_U64(client_body_buffer_size, 16 * 1024);
    MERGE_U64(client_header_buffer_size, 1024);
    if (c->large_client_header_buffers_num == CONF_UNSET) {
        c->large_client_header_buffers_num = prev ? prev->large_client_header_buffers_num : 4;
        c->large_client_header_buffers_size =
            prev ? prev->large_client_header_buffers_size : 8 * 1024;
    }
    MERGE_INT(server_tokens, 1);
    MERGE_INT(sendfile, 0);
    MERGE_INT(tcp_nodelay, 1);
    /* realip: the trusted list is inherited by levels without their own;
     * the header (with its name) and recursion are scalars */
    MERGE_LIST(real_ip_from, nreal_ip_from);
    if (c->real_ip_header == CONF_UNSET) {
        c->real_ip_header = prev ? prev->real_ip_header : REALIP_HDR_X_REAL_IP;
        c->real_ip_header_name = prev ? prev->real_ip_header_name : STR_NULL;
    }
    MERGE_INT(real_ip_recursive, 0);
    MERGE_INT(tcp_nopush, 0);
    MERGE_INT(max_ranges, INT64_MAX);

    /* content */
    if (!c->default_type.p)
        c->default_type = prev ? prev->default_type : STR_LIT("text/plain");
    if (!c->types)
        c->types = prev ? prev->types : mime_types_builtin();
    MERGE_LIST(add_headers, nadd_headers);
    MERGE_LIST(error_pages, nerror_pages);

    if (c->access_log_off == CONF_UNSET && c->naccess_logs == 0) {
        if (prev) {
            c->access_logs = prev->access_logs;
            c->naccess_logs = prev->naccess_logs;
            c->access_log_off = prev->access_log_off;
        } else {
            c->access_logs = default_log(p);
            if (!c->access_logs)
                goto oom;
            c->naccess_logs = 1;
            c->access_log_off = 0;
        }
    }
    if (c->access_log_off == CONF_UNSET)
        c->access_log_off = 0;
    if (c->access_log_off)
        c->naccess_logs = 0;

    if (!c->root && !c->alias && noname && prev) {
        c->root = prev->root;
        c->alias = prev->alias;
    }
    if (!c->root) {
        if (prev && prev->root) {
            c->root = prev->root;
        } else {
            const char *html = conf_full_path(p, "html");
            struct tmpl *t = arena_calloc(p->a, sizeof(*t));
            if (!html || !t)
                goto oom;
            t->raw = str_from_cstr(html);
            t->constant = 1;
            c->root = t;
        }
    }
    if (c->nindex == 0) {
        if (prev) {
            c->index = prev->index;
            c->nindex = prev->nindex;
        } else {
            struct tmpl *t = arena_calloc(p->a, sizeof(*t));
            if (!t)
                goto oom;
            t->raw = STR_LIT("index.html");
            t->constant = 1;
            c->index = t;
            c->nindex = 1;
        }
    }
    if (c->disable_symlinks == CONF_UNSET) {
        c->disable_symlinks = prev ? prev->disable_symlinks : 0;
        if (!c->disable_symlinks_from && prev)
            c->disable_symlinks_from = prev->disable_symlinks_from;
    }
    MERGE_INT(etag, 1);
    MERGE_INT(if_modified_since, 1);

    /* proxy */
    if (noname && !c->proxy_pass && prev)
        c->proxy_pass = prev->proxy_pass;
    MERGE_LIST(proxy_set_headers, nproxy_set_headers);
    MERGE_INT(proxy_http_version_minor, 0);
    MERGE_U64(proxy_connect_timeout, 60000);
    MERGE_U64(proxy_read_timeout, 60000);
    MERGE_U64(proxy_send_timeout, 60000);
    MERGE_INT(proxy_buffering, 1);
    MERGE_INT(proxy_request_buffering, 1);
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    if (page == 0 || page > 65536)
        page = 4096;
    MERGE_U64(proxy_buffer_size, page);
    if (c->proxy_buffers_num == CONF_UNSET) {
        c->proxy_buffers_num = prev ? prev->proxy_buffers_num : 8;
        c->proxy_buffers_size = prev ? prev->proxy_buffers_size : page;
    }
    if (c->proxy_busy_buffers_size == CONF_UNSET_U64) {
        if (prev) {
            c->proxy_busy_buffers_size = prev->proxy_busy_buffers_size;
        } else {
            uint64_t sz = c->proxy_buffer_size > c->proxy_buffers_size ? c->proxy_buffer_size
                                                                       : c->proxy_buffers_size;
            c->proxy_busy_buffers_size = 2 * sz;
        }
    }

    /* proxy_redirect: off | list (replaces) | default for a static proxy_pass */
    if (c->proxy_redirect_off == CONF_UNSET) {
        if (prev) {
            c->proxy_redirect_off = prev->proxy_redirect_off;
            c->proxy_redirects = prev->proxy_redirects;
            c->nproxy_redirects = prev->nproxy_redirects;
        } else {
            c->proxy_redirect_off = 0;
        }
    }
    if (c->proxy_redirect_off) {
        c->proxy_redirects = NULL;
        c->nproxy_redirects = 0;
    } else if (c->nproxy_redirects == 0 && c->proxy_pass && !c->proxy_pass->dynamic) {
        if (default_redirect(p, c, noname ? NULL : loc) != 0)
            goto oom;
    }

    MERGE_LIST(proxy_hide_headers, nproxy_hide_headers);
    MERGE_LIST(proxy_pass_headers, nproxy_pass_headers);
    MERGE_INT(proxy_pass_request_headers, 1);
    MERGE_INT(proxy_pass_request_body, 1);
    MERGE_PTR(proxy_method);
    MERGE_PTR(proxy_set_body);
    MERGE_INT(proxy_intercept_errors, 0);
    if (c->proxy_ignore_headers == 0 && prev)
        c->proxy_ignore_headers = prev->proxy_ignore_headers;
    /* WebSocket (Switchyard): long-lived by default, no pings unless asked */
    MERGE_INT(websocket_auto, 1);
    MERGE_U64(websocket_idle_timeout, 3600000);
    MERGE_U64(websocket_ping_interval, 0);
    MERGE_U64(websocket_ping_timeout, 30000);
    MERGE_U64(websocket_max_message_size, 0);
    if (c->websocket_message_rate == CONF_UNSET_U64) { /* rate and burst go together */
        c->websocket_message_rate = prev ? prev->websocket_message_rate : 0;
        c->websocket_message_burst = prev ? prev->websocket_message_burst : 0;
    }
    MERGE_LIST(websocket_upgrade_tokens, nwebsocket_upgrade_tokens);
    /* websocket_origins: inherited unless the level has its own list or `off` */
    if (c->websocket_origins_off == CONF_UNSET) {
        c->websocket_origins_off = 0;
        MERGE_LIST(websocket_origins, nwebsocket_origins);
        if (c->nwebsocket_origins == 0 && prev && prev->websocket_origins_off == 1)
            c->websocket_origins_off = 1;
    }
    if (c->proxy_next_upstream == 0)
        c->proxy_next_upstream =
            prev ? prev->proxy_next_upstream : (NEXT_UPSTREAM_ERROR | NEXT_UPSTREAM_TIMEOUT);
    if (c->proxy_next_upstream & NEXT_UPSTREAM_OFF)
        c->proxy_next_upstream = NEXT_UPSTREAM_OFF;
    MERGE_INT(proxy_next_upstream_tries, 0);
    MERGE_U64(proxy_next_upstream_timeout, 0);
    MERGE_INT(proxy_ignore_client_abort, 0);
    MERGE_INT(proxy_ssl_server_name, 0);
    MERGE_PTR(proxy_ssl_name);
    MERGE_INT(proxy_ssl_verify, 0);
    MERGE_PTR(proxy_ssl_trusted_certificate);
    if (c->proxy_ssl_protocols == 0)
        c->proxy_ssl_protocols =
            prev ? prev->proxy_ssl_protocols : (SSL_PROTO_TLSv1_2 | SSL_PROTO_TLSv1_3);
    MERGE_INT(proxy_ssl_session_reuse, 1);
    MERGE_PTR(proxy_ssl_certificate);
    MERGE_PTR(proxy_ssl_certificate_key);
    MERGE_PTR(proxy_ssl_password_file);
    MERGE_PTR(proxy_ssl_crl);
    MERGE_PTR(proxy_ssl_ciphers);
    if (!c->proxy_ssl_ciphers)
        c->proxy_ssl_ciphers = "DEFAULT";
    MERGE_INT(proxy_ssl_verify_depth, 1);
    MERGE_LIST(proxy_ssl_conf_commands, nproxy_ssl_conf_commands);
    if (c->nresolvers == 0 && prev) {
        c->resolvers = prev->resolvers;
        c->nresolvers = prev->nresolvers;
        if (c->resolver_valid == CONF_UNSET_U64)
            c->resolver_valid = prev->resolver_valid;
        if (c->resolver_ipv4 == CONF_UNSET)
            c->resolver_ipv4 = prev->resolver_ipv4;
        if (c->resolver_ipv6 == CONF_UNSET)
            c->resolver_ipv6 = prev->resolver_ipv6;
    }
    if (c->resolver_valid == CONF_UNSET_U64)
        c->resolver_valid = 0;
    if (c->resolver_ipv4 == CONF_UNSET)
        c->resolver_ipv4 = 1;
    if (c->resolver_ipv6 == CONF_UNSET)
        c->resolver_ipv6 = 1;
    MERGE_U64(resolver_timeout, 30000);

    /* request handling (set at http/server level only) */
    MERGE_INT(underscores_in_headers, 0);
    MERGE_INT(ignore_invalid_headers, 1);
    MERGE_INT(merge_slashes, 1);
    /* redirects, closing */
    MERGE_INT(absolute_redirect, 1);
    MERGE_INT(port_in_redirect, 1);
    MERGE_INT(server_name_in_redirect, 0);
    MERGE_INT(lingering_close, LINGERING_CLOSE_ON);
    MERGE_U64(lingering_time, 30000);
    MERGE_U64(lingering_timeout, 5000);
    MERGE_INT(chunked_transfer_encoding, 1);
    MERGE_INT(proxy_socket_keepalive, 0);
    /* limit_req / limit_conn: a level with its own list replaces the inherited one */
    MERGE_LIST(limit_reqs, nlimit_reqs);
    MERGE_LIST(limit_conns, nlimit_conns);
    MERGE_INT(limit_req_status, 503);
    MERGE_INT(limit_conn_status, 503);
    MERGE_INT(limit_req_log_level, LOG_LVL_ERR);
    MERGE_INT(limit_conn_log_level, LOG_LVL_ERR);
    MERGE_INT(limit_req_dry_run, 0);
    MERGE_INT(limit_conn_dry_run, 0);
    MERGE_INT(internal, 0);

    /* HTTP/2 (nginx ngx_http_v2_merge_srv_conf / _loc_conf, init_main_conf) */
    MERGE_INT(http2, 0);
    MERGE_U64(http2_max_concurrent_streams, 128);
    MERGE_U64(http2_body_preread_size, 64 * 1024);
    MERGE_U64(http2_chunk_size, 8 * 1024);
    MERGE_U64(http2_recv_buffer_size, 256 * 1024);
    /* compression (gzip.c) */
    compress_conf_merge(&c->compress, prev ? &prev->compress : NULL);
    limit_rate_conf_merge(&c->limit_rate, prev ? &prev->limit_rate : NULL,
                          p->g->vars.limit_rate_assigned);
    sub_conf_merge(&c->sub, prev ? &prev->sub : NULL);
    proxy_socket_conf_merge(&c->proxy_socket, prev ? &prev->proxy_socket : NULL);
    secure_link_conf_merge(&c->secure_link, prev ? &prev->secure_link : NULL);
    cache_conf_merge(&c->cache, prev ? &prev->cache : NULL);
    expires_conf_merge(&c->expires, prev ? &prev->expires : NULL);
    if (charset_conf_merge(p, &c->charset, prev ? &prev->charset : NULL) != 0)
        return -1;
    autoindex_conf_merge(&c->autoindex, prev ? &prev->autoindex : NULL);
    ssi_conf_merge(&c->ssi, prev ? &prev->ssi : NULL);

    /* empty_gif is the location's content handler: an `if` inside keeps it
     * (nginx's request keeps the location's content handler), a nested
     * location does not */
    if (noname && prev && !c->empty_gif)
        c->empty_gif = prev->empty_gif;
    if (noname && prev && !c->stub_status)
        c->stub_status = prev->stub_status;
    if (noname && prev && !c->status_page)
        c->status_page = prev->status_page;
    if (noname && prev && !c->metrics)
        c->metrics = prev->metrics;
    /* valid_referers: a level's own list replaces the inherited one */
    if (!c->referer && prev)
        c->referer = prev->referer;
    if (referer_conf_check(p, c->referer) != 0)
        return -1;
    /* proxy_cookie_*: each list inherited unless this level set it */
    if (proxy_cookie_merge(p, c, prev) != 0)
        return -1;

    /* access control (conf/access.c); then the limit_except block's conf,
       a child of this now complete level */
    if (access_conf_merge(p, &c->access, prev ? prev->access : NULL) != 0)
        goto oom;
    return access_conf_merge_lmt(p, c);

oom:
    conf_err_at(p, NULL, 0, "out of memory");
    return -1;
}

void ssl_conf_init(struct ssl_conf *s)
{
    memset(s, 0, sizeof(*s));
    s->prefer_server_ciphers = CONF_UNSET;
    s->session_cache_off = CONF_UNSET;
    s->session_cache_builtin_size = -1;
    s->session_timeout = CONF_UNSET_U64;
    s->session_tickets = CONF_UNSET;
    s->enable = CONF_UNSET;
    s->early_data = CONF_UNSET;
    s->stapling = CONF_UNSET;
    s->stapling_verify = CONF_UNSET;
    s->verify_client = CONF_UNSET;
    s->verify_depth = CONF_UNSET;
    s->reject_handshake = CONF_UNSET;
    s->buffer_size = CONF_UNSET_U64;
}

void ssl_conf_merge(struct ssl_conf *c, const struct ssl_conf *prev)
{
    if (c->ncertificates == 0 && prev) {
        c->certificates = prev->certificates;
        c->certificate_at = prev->certificate_at;
        c->ncertificates = prev->ncertificates;
    }
    if (c->ncertificate_keys == 0 && prev) {
        c->certificate_keys = prev->certificate_keys;
        c->certificate_key_at = prev->certificate_key_at;
        c->ncertificate_keys = prev->ncertificate_keys;
    }
    if (c->protocols == 0)
        c->protocols = prev ? prev->protocols : (SSL_PROTO_TLSv1_2 | SSL_PROTO_TLSv1_3);
    if (!c->ciphers)
        c->ciphers = prev ? prev->ciphers : "HIGH:!aNULL:!MD5";
    MERGE_INT(prefer_server_ciphers, 0);
    if (c->enable == CONF_UNSET && prev)
        c->enable_at = prev->enable_at;
    MERGE_INT(enable, 0);
    MERGE_INT(early_data, 0);
    if (c->session_cache_off == CONF_UNSET) {
        if (prev) {
            c->session_cache_off = prev->session_cache_off;
            c->session_cache_builtin = prev->session_cache_builtin;
            c->session_cache_builtin_size = prev->session_cache_builtin_size;
            c->session_cache_shared_name = prev->session_cache_shared_name;
            c->session_cache_shared_size = prev->session_cache_shared_size;
        } else {
            c->session_cache_off = 0; /* nginx default "none" */
        }
    }
    MERGE_U64(session_timeout, 300000);
    MERGE_INT(session_tickets, 1);
    MERGE_PTR(dhparam);
    MERGE_INT(stapling, 0);
    MERGE_INT(stapling_verify, 0);
    MERGE_PTR(ecdh_curve);
    if (!c->ecdh_curve)
        c->ecdh_curve = "auto";
    MERGE_PTR(trusted_certificate);
    if (c->verify_client == CONF_UNSET && prev)
        c->verify_at = prev->verify_at;
    MERGE_INT(verify_client, SSL_VERIFY_CLIENT_OFF);
    MERGE_INT(verify_depth, 1);
    MERGE_PTR(client_certificate);
    MERGE_PTR(crl);
    MERGE_INT(reject_handshake, 0);
    if (c->nticket_keys == 0 && prev) {
        c->ticket_keys = prev->ticket_keys;
        c->ticket_key_at = prev->ticket_key_at;
        c->nticket_keys = prev->nticket_keys;
    }
    if (!c->password_file && prev)
        c->password_file_at = prev->password_file_at;
    MERGE_PTR(password_file);
    MERGE_U64(buffer_size, 16384);
    if (c->nconf_commands == 0 && prev) {
        c->conf_commands = prev->conf_commands;
        c->conf_command_at = prev->conf_command_at;
        c->nconf_commands = prev->nconf_commands;
    }
}
