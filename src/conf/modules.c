/*
 * modules.c - the module table (modules.h): nginx's modules, whether nginx
 * builds each by default, whether Switchyard has it, a probe directive for
 * the tests, and the nginx directives of each that Switchyard lacks.
 *
 * Directive names are nginx's (1.22 to current), listed in full so that a
 * typo is still `unknown directive`. A directive Switchyard accepts (even
 * with no effect) is in the directive table instead, never here; the unit
 * test checks both lists against each other.
 */
#include "conf/modules.h"

#include <stddef.h>
#include <string.h>

#define DEF CONF_MOD_NGINX_DEFAULT
#define BUILT CONF_MOD_BUILT

static const struct conf_module modules[] = {
    /* Built in, as in every nginx (they have no configure switch). */
    {"http_core_module", "ngx_http_core_module", DEF | BUILT, PROBE_LOCATION,
     "client_max_body_size 1m;",
     "post_action early_hints keepalive_min_timeout "
     "max_headers client_body_early_read",
     ""},
    {"http_log_module", "ngx_http_log_module", DEF | BUILT, PROBE_HTTP, "access_log off;", "", ""},
    {"http_headers_module", "ngx_http_headers_module", DEF | BUILT, PROBE_LOCATION,
     "add_header X-Probe 1;", "add_trailer add_header_inherit add_trailer_inherit", ""},
    {"http_index_module", "ngx_http_index_module", DEF | BUILT, PROBE_LOCATION, "index index.html;",
     "", ""},
    {"pcre-jit", "PCRE JIT", BUILT, PROBE_MAIN, "pcre_jit on;", "", ""},

    /* Built in, with nginx's configure switch when it has one. */
    {"http_ssl_module", "ngx_http_ssl_module", BUILT, PROBE_HTTP, "ssl_session_timeout 5m;",
     "ssl_certificate_cache ssl_certificate_compression ssl_ech_file ssl_ocsp "
     "ssl_ocsp_cache ssl_ocsp_responder",
     ""},
    {"http_realip_module", "ngx_http_realip_module", BUILT, PROBE_HTTP,
     "set_real_ip_from 127.0.0.1;", "", ""},
    {"http_rewrite_module", "ngx_http_rewrite_module", DEF | BUILT, PROBE_LOCATION,
     "rewrite ^/a /b;", "", ""},
    {"http_map_module", "ngx_http_map_module", DEF | BUILT, PROBE_HTTP,
     "map $uri $probe { default 1; }", "", ""},
    {"http_proxy_module", "ngx_http_proxy_module", DEF | BUILT, PROBE_LOCATION,
     "proxy_pass http://127.0.0.1:9;",
     "proxy_limit_rate proxy_pass_trailers proxy_ssl_certificate_cache proxy_store proxy_cache_purge "
     "proxy_store_access",
     ""},
    {"http_access_module", "ngx_http_access_module", DEF | BUILT, PROBE_LOCATION, "deny all;",
     "", ""},
    {"http_auth_basic_module", "ngx_http_auth_basic_module", DEF | BUILT, PROBE_LOCATION,
     "auth_basic closed;", "", ""},
    /* nginx builds it on request (--with-http_auth_request_module) */
    {"http_auth_request_module", "ngx_http_auth_request_module", BUILT, PROBE_LOCATION,
     "auth_request /auth;", "", ""},
    {"http_limit_conn_module", "ngx_http_limit_conn_module", DEF | BUILT, PROBE_HTTP,
     "limit_conn_zone $binary_remote_addr zone=probe_c:1m;", "", ""},
    {"http_limit_req_module", "ngx_http_limit_req_module", DEF | BUILT, PROBE_HTTP,
     "limit_req_zone $binary_remote_addr zone=probe_r:1m rate=1r/s;", "", ""},
    {"http_upstream_hash_module", "ngx_http_upstream_hash_module", DEF | BUILT, PROBE_UPSTREAM,
     "hash $uri;", "", ""},
    {"http_upstream_ip_hash_module", "ngx_http_upstream_ip_hash_module", DEF | BUILT,
     PROBE_UPSTREAM, "ip_hash;", "", ""},
    {"http_upstream_least_conn_module", "ngx_http_upstream_least_conn_module", DEF | BUILT,
     PROBE_UPSTREAM, "least_conn;", "", ""},
    {"http_upstream_random_module", "ngx_http_upstream_random_module", DEF | BUILT, PROBE_UPSTREAM,
     "random;", "", ""},
    {"http_upstream_keepalive_module", "ngx_http_upstream_keepalive_module", DEF | BUILT,
     PROBE_UPSTREAM, "keepalive 8;", "", ""},
    {"http_geo_module", "ngx_http_geo_module", DEF | BUILT, PROBE_HTTP,
     "geo $probe { default 0; }", "", ""},
    {"http_split_clients_module", "ngx_http_split_clients_module", DEF | BUILT, PROBE_HTTP,
     "split_clients $uri $probe { * a; }", "", ""},
    {"http_referer_module", "ngx_http_referer_module", DEF | BUILT, PROBE_LOCATION,
     "valid_referers none example.com;", "", ""},
    {"http_empty_gif_module", "ngx_http_empty_gif_module", DEF | BUILT, PROBE_LOCATION,
     "empty_gif;", "", ""},
    /* `zone` is accepted; peer state stays per worker (upstream_zone.c) */
    {"http_upstream_zone_module", "ngx_http_upstream_zone_module", DEF | BUILT, PROBE_UPSTREAM,
     "zone probe 64k;", "", ""},
    /* nginx builds it on request (--with-http_v2_module); every directive is
     * accepted (src/conf/http2.c), the obsolete ones with nginx's warning. */
    {"http_v2_module", "ngx_http_v2_module", BUILT, PROBE_HTTP,
     "http2_max_concurrent_streams 16;", "", ""},
    /* Response compression (src/conf/gzip.c, src/http/compress.c); every
     * directive, gzip_static's too (nginx builds it on request). */
    {"http_gzip_module", "ngx_http_gzip_module", DEF | BUILT, PROBE_HTTP, "gzip on;", "", ""},
    {"http_gzip_static_module", "ngx_http_gzip_static_module", BUILT, PROBE_LOCATION,
     "gzip_static on;", "", ""},

    /* Every directive (src/conf/charset.c); bodies are not recoded: a location
     * whose source_charset differs from its charset is refused at load. */
    {"http_charset_module", "ngx_http_charset_module", DEF | BUILT, PROBE_HTTP, "charset utf-8;",
     "", ""},
    /* Server-side includes (src/conf/ssi.c, src/http/ssi.c). */
    {"http_ssi_module", "ngx_http_ssi_module", DEF | BUILT, PROBE_HTTP, "ssi on;", "", ""},
    /* Directory listings (src/conf/autoindex.c, src/http/autoindex.c). */
    {"http_autoindex_module", "ngx_http_autoindex_module", DEF | BUILT, PROBE_LOCATION,
     "autoindex on;", "", ""},

    /* nginx builds these by default; Switchyard does not have them (-V: --without-). */
    {"http_userid_module", "ngx_http_userid_module", DEF, PROBE_HTTP, "userid on;",
     "userid userid_domain userid_expires userid_flags userid_mark userid_name userid_p3p "
     "userid_path userid_service",
     ""},
    {"http_mirror_module", "ngx_http_mirror_module", DEF, PROBE_LOCATION, "mirror /mirror;",
     "mirror mirror_request_body", ""},
    {"http_fastcgi_module", "ngx_http_fastcgi_module", DEF, PROBE_LOCATION,
     "fastcgi_pass 127.0.0.1:9;",
     "fastcgi_bind fastcgi_buffer_size fastcgi_buffering fastcgi_buffers "
     "fastcgi_busy_buffers_size fastcgi_cache fastcgi_cache_background_update "
     "fastcgi_cache_bypass fastcgi_cache_key fastcgi_cache_lock fastcgi_cache_lock_age "
     "fastcgi_cache_lock_timeout fastcgi_cache_max_range_offset fastcgi_cache_methods "
     "fastcgi_cache_min_uses fastcgi_cache_path fastcgi_cache_revalidate "
     "fastcgi_cache_use_stale fastcgi_cache_valid fastcgi_catch_stderr fastcgi_connect_timeout "
     "fastcgi_force_ranges fastcgi_hide_header fastcgi_ignore_client_abort "
     "fastcgi_ignore_headers fastcgi_index fastcgi_intercept_errors fastcgi_keep_conn "
     "fastcgi_limit_rate fastcgi_max_temp_file_size fastcgi_next_upstream "
     "fastcgi_next_upstream_timeout fastcgi_next_upstream_tries fastcgi_no_cache fastcgi_param "
     "fastcgi_pass fastcgi_pass_header fastcgi_pass_request_body fastcgi_pass_request_headers "
     "fastcgi_read_timeout fastcgi_request_buffering fastcgi_send_lowat fastcgi_send_timeout "
     "fastcgi_socket_keepalive fastcgi_socket_rcvbuf fastcgi_socket_sndbuf "
     "fastcgi_split_path_info fastcgi_store fastcgi_store_access fastcgi_temp_file_write_size",
     ""},
    {"http_uwsgi_module", "ngx_http_uwsgi_module", DEF, PROBE_LOCATION, "uwsgi_pass 127.0.0.1:9;",
     "uwsgi_bind uwsgi_buffer_size uwsgi_buffering uwsgi_buffers uwsgi_busy_buffers_size "
     "uwsgi_cache uwsgi_cache_background_update uwsgi_cache_bypass uwsgi_cache_key "
     "uwsgi_cache_lock uwsgi_cache_lock_age uwsgi_cache_lock_timeout "
     "uwsgi_cache_max_range_offset uwsgi_cache_methods uwsgi_cache_min_uses uwsgi_cache_path "
     "uwsgi_cache_revalidate uwsgi_cache_use_stale uwsgi_cache_valid uwsgi_connect_timeout "
     "uwsgi_force_ranges uwsgi_hide_header uwsgi_ignore_client_abort uwsgi_ignore_headers "
     "uwsgi_intercept_errors uwsgi_limit_rate uwsgi_max_temp_file_size uwsgi_modifier1 "
     "uwsgi_modifier2 uwsgi_next_upstream uwsgi_next_upstream_timeout "
     "uwsgi_next_upstream_tries uwsgi_no_cache uwsgi_param uwsgi_pass uwsgi_pass_header "
     "uwsgi_pass_request_body uwsgi_pass_request_headers uwsgi_read_timeout "
     "uwsgi_request_buffering uwsgi_send_timeout uwsgi_socket_keepalive uwsgi_socket_rcvbuf "
     "uwsgi_socket_sndbuf uwsgi_ssl_certificate uwsgi_ssl_certificate_cache "
     "uwsgi_ssl_certificate_key uwsgi_ssl_ciphers uwsgi_ssl_conf_command uwsgi_ssl_crl "
     "uwsgi_ssl_name uwsgi_ssl_password_file uwsgi_ssl_protocols uwsgi_ssl_server_name "
     "uwsgi_ssl_session_reuse uwsgi_ssl_trusted_certificate uwsgi_ssl_verify "
     "uwsgi_ssl_verify_depth uwsgi_store uwsgi_store_access uwsgi_string "
     "uwsgi_temp_file_write_size",
     ""},
    {"http_scgi_module", "ngx_http_scgi_module", DEF, PROBE_LOCATION, "scgi_pass 127.0.0.1:9;",
     "scgi_bind scgi_buffer_size scgi_buffering scgi_buffers scgi_busy_buffers_size scgi_cache "
     "scgi_cache_background_update scgi_cache_bypass scgi_cache_key scgi_cache_lock "
     "scgi_cache_lock_age scgi_cache_lock_timeout scgi_cache_max_range_offset "
     "scgi_cache_methods scgi_cache_min_uses scgi_cache_path scgi_cache_revalidate "
     "scgi_cache_use_stale scgi_cache_valid scgi_connect_timeout scgi_force_ranges "
     "scgi_hide_header scgi_ignore_client_abort scgi_ignore_headers scgi_intercept_errors "
     "scgi_limit_rate scgi_max_temp_file_size scgi_next_upstream scgi_next_upstream_timeout "
     "scgi_next_upstream_tries scgi_no_cache scgi_param scgi_pass scgi_pass_header "
     "scgi_pass_request_body scgi_pass_request_headers scgi_read_timeout "
     "scgi_request_buffering scgi_send_timeout scgi_socket_keepalive scgi_socket_rcvbuf "
     "scgi_socket_sndbuf scgi_store scgi_store_access scgi_temp_file_write_size",
     ""},
    {"http_grpc_module", "ngx_http_grpc_module", DEF, PROBE_LOCATION, "grpc_pass 127.0.0.1:9;",
     "grpc_bind grpc_buffer_size grpc_connect_timeout grpc_hide_header grpc_ignore_headers "
     "grpc_intercept_errors grpc_next_upstream grpc_next_upstream_timeout "
     "grpc_next_upstream_tries grpc_pass grpc_pass_header grpc_read_timeout grpc_send_timeout "
     "grpc_set_header grpc_socket_keepalive grpc_socket_rcvbuf grpc_socket_sndbuf "
     "grpc_ssl_certificate grpc_ssl_certificate_cache grpc_ssl_certificate_key "
     "grpc_ssl_ciphers grpc_ssl_conf_command grpc_ssl_crl grpc_ssl_name grpc_ssl_password_file "
     "grpc_ssl_protocols grpc_ssl_server_name grpc_ssl_session_reuse "
     "grpc_ssl_trusted_certificate grpc_ssl_verify grpc_ssl_verify_depth",
     ""},
    {"http_memcached_module", "ngx_http_memcached_module", DEF, PROBE_LOCATION,
     "memcached_pass 127.0.0.1:9;",
     "memcached_bind memcached_buffer_size memcached_connect_timeout memcached_gzip_flag "
     "memcached_next_upstream memcached_next_upstream_timeout memcached_next_upstream_tries "
     "memcached_pass memcached_read_timeout memcached_send_timeout memcached_socket_keepalive",
     ""},
    {"http_tunnel_module", "ngx_http_tunnel_module", DEF, PROBE_LOCATION, "tunnel_pass;",
     "tunnel_bind tunnel_buffer_size tunnel_connect_timeout tunnel_next_upstream "
     "tunnel_next_upstream_timeout tunnel_next_upstream_tries tunnel_pass tunnel_read_timeout "
     "tunnel_send_lowat tunnel_send_timeout tunnel_socket_keepalive tunnel_socket_rcvbuf "
     "tunnel_socket_sndbuf",
     ""},
    {"http_browser_module", "ngx_http_browser_module", DEF, PROBE_HTTP, "modern_browser msie 6.0;",
     "ancient_browser ancient_browser_value modern_browser modern_browser_value", ""},
    {"http_upstream_least_time_module", "ngx_http_upstream_least_time_module", DEF, PROBE_UPSTREAM,
     "least_time header;", "least_time", ""},
    {"http_upstream_sticky_module", "ngx_http_upstream_sticky_module", DEF, PROBE_UPSTREAM,
     "sticky cookie probe;", "sticky", ""},
    {"http-cache", "ngx_http_proxy_module's cache", DEF | BUILT, PROBE_HTTP,
     "proxy_cache_path cache keys_zone=probe:1m;", "", ""},

    /* nginx builds these only on request; Switchyard does not have them (-V: nothing). */
    {"http_v3_module", "ngx_http_v3_module", CONF_MOD_INERT, PROBE_HTTP, "http3 on;",
     "http3 http3_hq http3_max_concurrent_streams http3_stream_buffer_size "
     "quic_active_connection_id_limit quic_bpf quic_gso quic_host_key quic_retry",
     ""},
    {"http_addition_module", "ngx_http_addition_module", 0, PROBE_LOCATION,
     "add_after_body /after;", "add_after_body add_before_body addition_types", ""},
    {"http_sub_module", "ngx_http_sub_module", BUILT, PROBE_LOCATION, "sub_filter a b;", "", ""},
    {"http_dav_module", "ngx_http_dav_module", 0, PROBE_LOCATION, "dav_methods PUT;",
     "create_full_put_path dav_access dav_methods min_delete_depth", ""},
    {"http_flv_module", "ngx_http_flv_module", 0, PROBE_LOCATION, "flv;", "flv", ""},
    {"http_mp4_module", "ngx_http_mp4_module", 0, PROBE_LOCATION, "mp4;",
     "mp4 mp4_buffer_size mp4_max_buffer_size mp4_start_key_frame", ""},
    {"http_gunzip_module", "ngx_http_gunzip_module", 0, PROBE_LOCATION, "gunzip on;",
     "gunzip gunzip_buffers", ""},
    {"http_random_index_module", "ngx_http_random_index_module", 0, PROBE_LOCATION,
     "random_index on;", "random_index", ""},
    {"http_secure_link_module", "ngx_http_secure_link_module", BUILT, PROBE_LOCATION,
     "secure_link $arg_s;", "", ""},
    {"http_degradation_module", "ngx_http_degradation_module", 0, PROBE_LOCATION, "degrade 204;",
     "degradation degrade", ""},
    {"http_slice_module", "ngx_http_slice_module", 0, PROBE_LOCATION, "slice 1m;", "slice", ""},
    {"http_stub_status_module", "ngx_http_stub_status_module", BUILT, PROBE_LOCATION,
     "stub_status;", "", ""},
    {"http_perl_module", "ngx_http_perl_module", 0, PROBE_HTTP, "perl_modules perl;",
     "perl perl_modules perl_require perl_set", ""},
    {"http_xslt_module", "ngx_http_xslt_module", 0, PROBE_LOCATION, "xslt_types text/xml;",
     "xml_entities xml_external_entities xslt_last_modified xslt_param xslt_string_param "
     "xslt_stylesheet xslt_types",
     ""},
    {"http_image_filter_module", "ngx_http_image_filter_module", 0, PROBE_LOCATION,
     "image_filter size;",
     "image_filter image_filter_buffer image_filter_interlace image_filter_jpeg_quality "
     "image_filter_sharpen image_filter_transparency image_filter_webp_quality",
     ""},
    {"http_geoip_module", "ngx_http_geoip_module", 0, PROBE_HTTP, "geoip_proxy 127.0.0.1;",
     "geoip_city geoip_country geoip_org geoip_proxy geoip_proxy_recursive", ""},
    {"mail", "ngx_mail_module", 0, PROBE_MAIN, "mail { }", "mail", ""},
    {"stream", "ngx_stream_module", 0, PROBE_MAIN, "stream { }", "stream", ""},
};

const struct conf_module *conf_module_at(unsigned i)
{
    return i < sizeof(modules) / sizeof(modules[0]) ? &modules[i] : NULL;
}

const char *conf_module_switch(const struct conf_module *m)
{
    int nginx_default = (m->flags & CONF_MOD_NGINX_DEFAULT) != 0;
    int built = (m->flags & CONF_MOD_BUILT) != 0;
    if (nginx_default && !built)
        return "--without-";
    if (!nginx_default && built)
        return "--with-";
    return NULL;
}

/* `name` is one of the space-separated words of `list`. */
static int word_in(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *s = list; (s = strstr(s, name)) != NULL; s += len) {
        int starts = s == list || s[-1] == ' ';
        int ends = s[len] == '\0' || s[len] == ' ';
        if (starts && ends)
            return 1;
    }
    return 0;
}

const struct conf_module *conf_module_lacking(const char *name, int *planned)
{
    if (!name[0])
        return NULL;
    for (size_t i = 0; i < sizeof(modules) / sizeof(modules[0]); i++) {
        if (word_in(modules[i].planned, name)) {
            *planned = 1;
            return &modules[i];
        }
        if (word_in(modules[i].lacking, name)) {
            *planned = 0;
            return &modules[i];
        }
    }
    return NULL;
}
