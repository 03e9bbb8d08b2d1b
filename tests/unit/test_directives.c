/*
 * test_directives.c - conf/directives.c, merge.c, gen.c, mime.c: small
 * configurations written to a fresh temp directory, loaded with gen_parse()
 * (gen_load() without reading certificates), and checked field by field;
 * plus a table of broken configurations with nginx's exact messages
 * (file:line included), warnings, -g, and -T output.
 *
 * Every config is loaded with the temp directory as prefix, so relative
 * paths come out as DIR/... . Expected strings say "<C>" for DIR/sy.conf and
 * "<D>" for DIR/.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <pcre2.h>

#include "conf/access.h"
#include "conf/conf.h"
#include "conf/directives.h"
#include "conf/modules.h"

struct fx {
    char dir[64];
    char prefix[80];
    char conf[96];
    char err[1024];
    char warn[4096];
    struct generation *g;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/sy_test_dir.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->prefix, sizeof(f->prefix), "%s/", f->dir);
    snprintf(f->conf, sizeof(f->conf), "%s/sy.conf", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gen_free(f->g);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

static void put(struct fx *f, const char *rel, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
    for (char *s = path + strlen(f->dir) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        mkdir(path, 0755);
        *s = '/';
    }
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* Load `text` as DIR/sy.conf (with optional -g text); NULL on error (f->err). */
static struct generation *try_load_g(struct fx *f, const char *text, const char *g_text)
{
    gen_free(f->g);
    f->g = NULL;
    put(f, "sy.conf", text);
    f->g = gen_parse(f->prefix, f->conf, g_text, f->err, sizeof(f->err), f->warn, sizeof(f->warn));
    return f->g;
}

static struct generation *try_load(struct fx *f, const char *text)
{
    return try_load_g(f, text, NULL);
}

static struct generation *load(struct fx *f, const char *text)
{
    struct generation *g = try_load(f, text);
    if (!g)
        fail_msg("load failed: %s", f->err);
    return g;
}

/* "<C>" in `pat` stands for DIR/sy.conf, "<D>" for DIR/ */
static void expand(const struct fx *f, const char *pat, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *s = pat; *s && o + 1 < cap; s++) {
        const char *rep = strncmp(s, "<C>", 3) == 0   ? f->conf
                          : strncmp(s, "<D>", 3) == 0 ? f->prefix
                                                      : NULL;
        if (rep) {
            o += (size_t)snprintf(out + o, cap - o, "%s", rep);
            s += 2;
        } else {
            out[o++] = *s;
        }
    }
    out[o < cap ? o : cap - 1] = '\0';
}

static void assert_str(struct str s, const char *want)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%.*s", (int)s.len, s.p ? s.p : "");
    assert_string_equal(buf, want);
}

static void assert_path(const struct fx *f, const char *got, const char *pat)
{
    char want[512];
    expand(f, pat, want, sizeof(want));
    assert_string_equal(got, want);
}

static const struct server_conf *server_named(const struct generation *g, const char *name)
{
    for (unsigned i = 0; i < g->http->nservers; i++) {
        const struct server_conf *s = g->http->servers[i];
        for (unsigned k = 0; k < s->nnames; k++)
            if (s->names[k].kind != SN_REGEX && str_eq(s->names[k].name, str_from_cstr(name)))
                return s;
    }
    fail_msg("no server %s", name);
    return NULL;
}

static const struct location *loc_in(const struct location *l, unsigned n, const char *pat)
{
    for (unsigned i = 0; i < n; i++) {
        if (str_eq(l[i].pattern, str_from_cstr(pat)))
            return &l[i];
        const struct location *c = loc_in(l[i].children, l[i].nchildren, pat);
        if (c)
            return c;
    }
    return NULL;
}

static const struct location *loc(const struct server_conf *s, const char *pat)
{
    const struct location *l = loc_in(s->locations, s->nlocations, pat);
    if (!l)
        l = loc_in(s->named, s->nnamed, pat);
    if (!l)
        fail_msg("no location %s", pat);
    return l;
}

static const struct listen_conf *listen_at(const struct generation *g, const char *text)
{
    for (unsigned i = 0; i < g->http->nlistens; i++)
        if (strcmp(g->http->listens[i]->text, text) == 0)
            return g->http->listens[i];
    fail_msg("no listen %s", text);
    return NULL;
}

static const struct header_tmpl *psh(const struct loc_conf *lc, const char *name)
{
    for (unsigned i = 0; i < lc->nproxy_set_headers; i++)
        if (str_eq(lc->proxy_set_headers[i].name, str_from_cstr(name)))
            return &lc->proxy_set_headers[i];
    return NULL;
}

/* ============================================================== main level */

static void test_main_defaults(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, "events {}\n");
    assert_int_equal(g->refs, 1);
    assert_int_equal(g->main.worker_processes, 1);
    assert_int_equal(g->main.worker_connections, 512);
    assert_int_equal(g->main.worker_rlimit_nofile, CONF_UNSET);
    assert_true(g->main.worker_shutdown_timeout == CONF_UNSET_U64);
    assert_int_equal(g->main.daemon, 1);
    assert_int_equal(g->main.master_process, 1);
    assert_path(f, g->main.pid_path, "<D>logs/switchyard.pid");
    assert_path(f, g->main.error_log_path, "<D>logs/error.log");
    assert_int_equal(g->main.error_log_level, LOG_LVL_ERR);
    assert_null(g->main.user);
    assert_null(g->http);
    assert_string_equal(g->prefix, f->prefix);
    assert_string_equal(g->conf_path, f->conf);
    assert_int_equal(g->main.multi_accept, 0);
    assert_int_equal(g->main.accept_mutex, 0);
    assert_int_equal(g->main.worker_priority, 0);
    assert_true(g->main.worker_rlimit_core == CONF_UNSET_U64);
}

static void test_main_directives(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, "worker_processes auto;\n"
                                   "worker_rlimit_nofile 65536;\n"
                                   "worker_shutdown_timeout 30s;\n"
                                   "worker_cpu_affinity 0101 1010;\n"
                                   "error_log stderr info;\n"
                                   "error_log logs/second.log;\n"
                                   "pid run/sy.pid;\n"
                                   "daemon off;\n"
                                   "master_process off;\n"
                                   "worker_priority -5;\n"
                                   "worker_rlimit_core 64m;\n"
                                   "events { worker_connections 4096; use epoll; multi_accept on; "
                                   "accept_mutex on; }\n");
    assert_int_equal(g->main.worker_processes, 0);
    assert_int_equal(g->main.worker_rlimit_nofile, 65536);
    assert_true(g->main.worker_shutdown_timeout == 30000);
    assert_int_equal(g->main.nworker_cpu_masks, 2);
    assert_true(g->main.worker_cpu_masks[0] == 0x5);
    assert_true(g->main.worker_cpu_masks[1] == 0xa);
    assert_false(g->main.worker_cpu_affinity_auto);
    assert_string_equal(g->main.error_log_path, "stderr");
    assert_int_equal(g->main.error_log_level, LOG_LVL_INFO);
    assert_path(f, g->main.pid_path, "<D>run/sy.pid");
    assert_int_equal(g->main.daemon, 0);
    assert_int_equal(g->main.master_process, 0);
    assert_int_equal(g->main.worker_connections, 4096);
    assert_int_equal(g->main.multi_accept, 1);
    assert_int_equal(g->main.accept_mutex, 1);
    assert_int_equal(g->main.worker_priority, -5);
    assert_true(g->main.worker_rlimit_core == 64u << 20);
    g = load(f, "worker_priority +3; events {}");
    assert_int_equal(g->main.worker_priority, 3);

    g = load(f, "worker_processes 3; worker_cpu_affinity auto 1111; events {}");
    assert_int_equal(g->main.worker_processes, 3);
    assert_true(g->main.worker_cpu_affinity_auto);
    assert_true(g->main.worker_cpu_masks[0] == 0xf);
}

static void test_g_directives(void **state)
{
    struct fx *f = *state;
    struct generation *g = try_load_g(f, "events {}\n", "daemon off; master_process off;");
    assert_non_null(g);
    assert_int_equal(g->main.daemon, 0);
    assert_int_equal(g->main.master_process, 0);

    /* nginx: a -g directive repeated in the file is a duplicate at the file's line */
    assert_null(try_load_g(f, "events {}\n\ndaemon on;\n", "daemon off;"));
    char want[256];
    expand(f, "\"daemon\" directive is duplicate in <C>:3", want, sizeof(want));
    assert_string_equal(f->err, want);

    assert_null(try_load_g(f, "events {}\n", "foo on;"));
    assert_string_equal(f->err, "unknown directive \"foo\" in command line");
    assert_null(try_load_g(f, "events {}\n", "http { }"));
    assert_string_equal(f->err, "block directives are not supported in -g option in command line");
}

/* ============================================================== http client */

static void test_http_defaults_after_merge(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, "events {} http { server { location / { } } }");
    const struct server_conf *s = g->http->servers[0];
    const struct loc_conf *lcs[] = {g->http->lc, s->lc, loc(s, "/")->lc};
    for (unsigned i = 0; i < 3; i++) {
        const struct loc_conf *lc = lcs[i];
        assert_true(lc->client_header_timeout == 60000);
        assert_true(lc->client_body_timeout == 60000);
        assert_true(lc->send_timeout == 60000);
        assert_true(lc->keepalive_timeout == 75000);
        assert_true(lc->keepalive_header_timeout == CONF_UNSET_U64);
        assert_true(lc->keepalive_time == 3600000);
        assert_int_equal(lc->keepalive_requests, 1000);
        assert_int_equal(lc->keepalive_disable_msie6, 1);
        assert_true(lc->client_max_body_size == 1024 * 1024);
        assert_true(lc->client_body_buffer_size == 16 * 1024);
        assert_true(lc->client_header_buffer_size == 1024);
        assert_int_equal(lc->large_client_header_buffers_num, 4);
        assert_true(lc->large_client_header_buffers_size == 8192);
        assert_int_equal(lc->server_tokens, 1);
        assert_int_equal(lc->sendfile, 0);
        assert_int_equal(lc->tcp_nodelay, 1);
        assert_int_equal(lc->tcp_nopush, 0);
        assert_str(lc->default_type, "text/plain");
        assert_ptr_equal(lc->types, mime_types_builtin());
        assert_int_equal(lc->nadd_headers, 0);
        assert_int_equal(lc->nerror_pages, 0);
        assert_int_equal(lc->access_log_off, 0);
        assert_int_equal(lc->naccess_logs, 1);
        assert_path(f, lc->access_logs[0].path, "<D>logs/access.log");
        assert_string_equal(lc->access_logs[0].format->name, "combined");
        assert_non_null(lc->root);
        assert_path(f, lc->root->raw.p, "<D>html");
        assert_null(lc->alias);
        assert_int_equal(lc->nindex, 1);
        assert_str(lc->index[0].raw, "index.html");
        assert_int_equal(lc->ntry_files, 0);
        assert_int_equal(lc->disable_symlinks, 0);
        assert_int_equal(lc->autoindex.enable, 0);
        assert_int_equal(lc->ssi.enable, 0);
        assert_int_equal(lc->ssi.silent_errors, 0);
        assert_int_equal(lc->ssi.last_modified, 0);
        assert_true(lc->ssi.value_len == 255);
        assert_true(lc->ssi.min_file_chunk == 1024);
        assert_null(lc->ssi.types);
        assert_int_equal(lc->etag, 1);
        assert_int_equal(lc->if_modified_since, 1);
        assert_null(lc->proxy_pass);
        assert_int_equal(lc->nproxy_set_headers, 0);
        assert_int_equal(lc->proxy_http_version_minor, 0);
        assert_true(lc->proxy_connect_timeout == 60000);
        assert_true(lc->proxy_read_timeout == 60000);
        assert_true(lc->proxy_send_timeout == 60000);
        assert_false(lc->proxy_read_timeout_explicit);
        assert_false(lc->proxy_send_timeout_explicit);
        assert_int_equal(lc->proxy_buffering, 1);
        assert_int_equal(lc->proxy_request_buffering, 1);
        assert_int_equal(lc->proxy_buffers_num, 8);
        assert_int_equal(lc->proxy_redirect_off, 0);
        assert_int_equal(lc->nproxy_redirects, 0);
        assert_int_equal(lc->proxy_pass_request_headers, 1);
        assert_int_equal(lc->proxy_pass_request_body, 1);
        assert_null(lc->proxy_method);
        assert_int_equal(lc->proxy_intercept_errors, 0);
        assert_int_equal(lc->proxy_next_upstream, NEXT_UPSTREAM_ERROR | NEXT_UPSTREAM_TIMEOUT);
        assert_int_equal(lc->proxy_next_upstream_tries, 0);
        assert_true(lc->proxy_next_upstream_timeout == 0);
        assert_int_equal(lc->proxy_ssl_session_reuse, 1);
        assert_int_equal(lc->proxy_ssl_protocols, SSL_PROTO_TLSv1_2 | SSL_PROTO_TLSv1_3);
        assert_true(lc->resolver_timeout == 30000);
        assert_null(lc->rewrite);
    }
    /* the default access log is opened once */
    assert_int_equal(g->nlog_paths, 1);
    assert_path(f, g->log_paths[0], "<D>logs/access.log");
}

static void test_client_directives(void **state)
{
    struct fx *f = *state;
    struct generation *g =
        load(f, "events {} http {\n"
                " keepalive_timeout 65 60;\n"
                " keepalive_requests 50;\n"
                " keepalive_time 2h;\n"
                " keepalive_disable msie6 safari;\n"
                " client_max_body_size 0;\n"
                " client_header_timeout 5s;\n"
                " client_body_timeout 7;\n"
                " send_timeout 500ms;\n"
                " client_body_buffer_size 32k;\n"
                " client_header_buffer_size 2k;\n"
                " large_client_header_buffers 8 16k;\n"
                " server_tokens build;\n"
                " sendfile on; tcp_nopush on; tcp_nodelay off;\n"
                " etag off; if_modified_since before;\n"
                " resolver 127.0.0.53 [::1]:5353 valid=30s ipv6=off;\n"
                " resolver_timeout 5s;\n"
                " server { server_name a; location / { keepalive_timeout 0; } }\n"
                "}\n");
    const struct server_conf *s = server_named(g, "a");
    const struct loc_conf *lc = s->lc;
    assert_true(lc->keepalive_timeout == 65000);
    assert_true(lc->keepalive_header_timeout == 60000);
    assert_int_equal(lc->keepalive_requests, 50);
    assert_true(lc->keepalive_time == 7200000);
    assert_int_equal(lc->keepalive_disable_msie6, 1);
    assert_int_equal(lc->keepalive_disable_safari, 1);
    assert_true(lc->client_max_body_size == 0);
    assert_true(lc->client_header_timeout == 5000);
    assert_true(lc->client_body_timeout == 7000);
    assert_true(lc->send_timeout == 500);
    assert_true(lc->client_body_buffer_size == 32768);
    assert_true(lc->client_header_buffer_size == 2048);
    assert_int_equal(lc->large_client_header_buffers_num, 8);
    assert_true(lc->large_client_header_buffers_size == 16384);
    assert_int_equal(lc->server_tokens, 2);
    assert_int_equal(lc->sendfile, 1);
    assert_int_equal(lc->tcp_nopush, 1);
    assert_int_equal(lc->tcp_nodelay, 0);
    assert_int_equal(lc->etag, 0);
    assert_int_equal(lc->if_modified_since, 2);
    assert_int_equal(lc->nresolvers, 2);
    assert_str(lc->resolvers[1], "[::1]:5353");
    assert_true(lc->resolver_valid == 30000);
    assert_int_equal(lc->resolver_ipv6, 0);
    assert_int_equal(lc->resolver_ipv4, 1);
    assert_true(lc->resolver_timeout == 5000);
    /* the header timeout is merged on its own (nginx) */
    const struct loc_conf *l = loc(s, "/")->lc;
    assert_true(l->keepalive_timeout == 0);
    assert_true(l->keepalive_header_timeout == 60000);
    assert_int_equal(l->keepalive_requests, 50);
}

static void test_timeouts_inherit_and_explicit(void **state)
{
    struct fx *f = *state;
    struct generation *g =
        load(f, "events {} http {\n"
                " proxy_connect_timeout 3s;\n"
                " server { server_name a;\n"
                "  proxy_read_timeout 90s;\n"
                "  location / { location /in/ { proxy_send_timeout 5s; } }\n"
                "  location /own/ { proxy_read_timeout 1h; }\n"
                " }\n"
                " server { server_name b; location / { } }\n"
                " proxy_send_timeout 9s;\n" /* after the servers: still applies */
                "}\n");
    const struct server_conf *a = server_named(g, "a"), *b = server_named(g, "b");
    const struct loc_conf *root = loc(a, "/")->lc, *in = loc(a, "/in/")->lc,
                          *own = loc(a, "/own/")->lc, *bl = loc(b, "/")->lc;
    assert_true(root->proxy_connect_timeout == 3000);
    assert_true(root->proxy_read_timeout == 90000);
    assert_true(root->proxy_read_timeout_explicit);
    assert_true(root->proxy_send_timeout == 9000);
    assert_true(root->proxy_send_timeout_explicit);
    assert_true(in->proxy_send_timeout == 5000);
    assert_true(in->proxy_read_timeout == 90000);
    assert_true(in->proxy_read_timeout_explicit);
    assert_true(own->proxy_read_timeout == 3600000);
    assert_true(bl->proxy_read_timeout == 60000);
    assert_false(bl->proxy_read_timeout_explicit);
    assert_true(bl->proxy_send_timeout_explicit);
}

/* ============================================================== listen */

static void test_listen_and_servers(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, "events {} http {\n"
                                   " server { server_name a; listen 8080; listen [::]:8080; "
                                   "listen 127.0.0.1:8081 default_server backlog=100 reuseport; }\n"
                                   " server { server_name b; listen 8080 default_server; "
                                   "listen *:8082 ipv6only=on so_keepalive=on deferred; }\n"
                                   " server { server_name c; listen 127.0.0.1:8081; "
                                   "listen [::1]:8083 http2; listen 8084 bind "
                                   "so_keepalive=30s:10s:3 rcvbuf=64k sndbuf=128k; }\n"
                                   " server { server_name d; }\n"
                                   "}\n");
    const struct http_conf *h = g->http;
    assert_int_equal(h->nservers, 4);
    const struct server_conf *a = server_named(g, "a"), *b = server_named(g, "b"),
                             *c = server_named(g, "c"), *d = server_named(g, "d");

    const struct listen_conf *l8080 = listen_at(g, "0.0.0.0:8080");
    assert_int_equal(l8080->nservers, 2);
    assert_ptr_equal(l8080->servers[0], a);
    assert_ptr_equal(l8080->servers[1], b);
    assert_ptr_equal(l8080->default_server, b);
    assert_true(l8080->default_server_set);
    assert_int_equal(l8080->backlog, 511);
    assert_int_equal(l8080->addr.ss_family, AF_INET);
    assert_int_equal(ntohs(((const struct sockaddr_in *)&l8080->addr)->sin_port), 8080);
    assert_int_equal(l8080->addrlen, sizeof(struct sockaddr_in));

    const struct listen_conf *v6 = listen_at(g, "[::]:8080");
    assert_int_equal(v6->addr.ss_family, AF_INET6);
    assert_int_equal(v6->ipv6only, 1);
    assert_ptr_equal(v6->default_server, a);
    assert_false(v6->default_server_set);

    const struct listen_conf *l8081 = listen_at(g, "127.0.0.1:8081");
    assert_int_equal(l8081->nservers, 2);
    assert_ptr_equal(l8081->default_server, a);
    assert_int_equal(l8081->backlog, 100);
    assert_true(l8081->reuseport);

    const struct listen_conf *l8082 = listen_at(g, "0.0.0.0:8082");
    assert_int_equal(l8082->so_keepalive, 1);
    assert_true(l8082->deferred);
    assert_true(l8082->bind);

    const struct listen_conf *l8083 = listen_at(g, "[::1]:8083");
    assert_true(l8083->http2);
    assert_false(l8083->ssl);
    const struct listen_conf *l8084 = listen_at(g, "0.0.0.0:8084");
    assert_true(l8084->bind);
    assert_int_equal(l8084->keepidle, 30);
    assert_int_equal(l8084->keepintvl, 10);
    assert_int_equal(l8084->keepcnt, 3);
    assert_int_equal(l8084->rcvbuf, 65536);
    assert_int_equal(l8084->sndbuf, 131072);
    (void)c;

    /* a server without listen: *:80 as root, *:8000 otherwise (nginx) */
    const struct listen_conf *dl = listen_at(g, geteuid() == 0 ? "0.0.0.0:80" : "0.0.0.0:8000");
    assert_int_equal(dl->nservers, 1);
    assert_ptr_equal(dl->servers[0], d);

    /* indexes are the positions */
    for (unsigned i = 0; i < h->nlistens; i++)
        assert_int_equal(h->listens[i]->index, i);
}

static void test_server_names(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, "events {} http {\n"
                                   " server { listen 8080; server_name Example.COM .a.org *.b.net "
                                   "www.c.*; server_name ~^(?<sub>\\w+)\\.d\\.io$ \"\"; "
                                   "return 200 $sub; }\n"
                                   " server { listen 8081; }\n"
                                   "}\n");
    const struct server_conf *s = g->http->servers[0];
    assert_int_equal(s->nnames, 6);
    assert_int_equal(s->names[0].kind, SN_EXACT);
    assert_str(s->names[0].name, "example.com");
    assert_int_equal(s->names[1].kind, SN_WILD_HEAD);
    assert_str(s->names[1].name, "a.org");
    assert_true(s->names[1].dot_form);
    assert_int_equal(s->names[2].kind, SN_WILD_HEAD);
    assert_str(s->names[2].name, "b.net");
    assert_false(s->names[2].dot_form);
    assert_int_equal(s->names[3].kind, SN_WILD_TAIL);
    assert_str(s->names[3].name, "www.c.");
    assert_int_equal(s->names[4].kind, SN_REGEX);
    assert_non_null(s->names[4].re);
    assert_str(s->names[4].name, "^(?<sub>\\w+)\\.d\\.io$");
    assert_int_equal(s->names[5].kind, SN_EXACT);
    assert_str(s->names[5].name, "");

    /* a server with no server_name gets "" */
    const struct server_conf *s2 = g->http->servers[1];
    assert_int_equal(s2->nnames, 1);
    assert_int_equal(s2->names[0].kind, SN_EXACT);
    assert_str(s2->names[0].name, "");

    /* server_name regexes are caseless, like nginx */
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    assert_true(pcre2_match(s->names[4].re, (PCRE2_SPTR) "WWW.D.IO", 8, 0, 0, md, NULL) > 0);
    pcre2_match_data_free(md);
    assert_string_equal(f->warn, "");
}

static void test_conflicting_names_warn(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, "events {} http {\n"
                                   " server { listen 8080; server_name a .b.com; }\n"
                                   " server { listen 8080; server_name a b.com *.b.com; }\n"
                                   " server { listen 8081; }\n server { listen 8081; }\n"
                                   " server { listen 8082; server_name www.*.x; }\n"
                                   "}\n");
    assert_non_null(g);
    assert_string_equal(f->warn, "conflicting server name \"a\" on 0.0.0.0:8080, ignored\n"
                                 "conflicting server name \"b.com\" on 0.0.0.0:8080, ignored\n"
                                 "conflicting server name \"*.b.com\" on 0.0.0.0:8080, ignored\n"
                                 "conflicting server name \"\" on 0.0.0.0:8081, ignored\n");
}

/* ============================================================== locations */

static void test_locations(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, "events {} http { server {\n"
                                   " location / { location /a/ { location ~ \\.x$ { } } }\n"
                                   " location = /exact { }\n"
                                   " location =/exact2 { }\n"
                                   " location ^~ /static/ { }\n"
                                   " location ~ ^/(?<id>\\d+)$ { return 200 $id; }\n"
                                   " location ~* \\.PNG$ { }\n"
                                   " location ~*\\.gif$ { }\n"
                                   " location @fallback { }\n"
                                   " location /exact { }\n"
                                   "} }\n");
    const struct server_conf *s = g->http->servers[0];
    assert_int_equal(s->nlocations, 8);
    assert_int_equal(s->nnamed, 1);
    assert_int_equal(s->locations[0].match, LOC_PREFIX);
    assert_int_equal(s->locations[0].nchildren, 1);
    const struct location *a = &s->locations[0].children[0];
    assert_str(a->pattern, "/a/");
    assert_int_equal(a->nchildren, 1);
    assert_int_equal(a->children[0].match, LOC_REGEX);
    assert_non_null(a->children[0].re);
    assert_int_equal(loc(s, "/exact")->match, LOC_EXACT);
    assert_int_equal(loc(s, "/exact2")->match, LOC_EXACT);
    assert_int_equal(loc(s, "/static/")->match, LOC_PREFIX_NOREGEX);
    assert_int_equal(loc(s, "\\.PNG$")->match, LOC_REGEX_ICASE);
    assert_int_equal(loc(s, "\\.gif$")->match, LOC_REGEX_ICASE);
    assert_int_equal(s->named[0].match, LOC_NAMED);
    assert_str(s->named[0].pattern, "fallback");
    assert_int_equal(s->locations[7].match, LOC_PREFIX);
    assert_int_equal(s->locations[7].line, 10);
    assert_string_equal(s->locations[7].file, f->conf);
    /* every location has a merged conf */
    for (unsigned i = 0; i < s->nlocations; i++)
        assert_true(s->locations[i].lc->proxy_read_timeout == 60000);

    /* caseless regex location */
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    assert_true(pcre2_match(loc(s, "\\.PNG$")->re, (PCRE2_SPTR) "/a.png", 6, 0, 0, md, NULL) > 0);
    pcre2_match_data_free(md);
}

/* ============================================================== inheritance */

static void test_list_inheritance(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, "events {} http {\n"
                                   " proxy_set_header X-A a;\n"
                                   " proxy_set_header X-B b;\n"
                                   " add_header X-H h;\n"
                                   " error_page 404 /404.html;\n"
                                   " index index.htm;\n"
                                   " proxy_hide_header X-Powered-By;\n"
                                   " server { server_name s;\n"
                                   "  location /inherit/ { }\n"
                                   "  location /replace/ { proxy_set_header X-C $host; "
                                   "add_header X-I i always; add_header X-J j; error_page 500 "
                                   "502 =200 /err; index a b; proxy_hide_header Server; }\n"
                                   "  location /parent/ { proxy_set_header X-P p;\n"
                                   "   location /parent/child/ { }\n"
                                   "   location /parent/own/ { proxy_set_header X-Q q; } }\n"
                                   " }\n"
                                   "}\n");
    const struct server_conf *s = server_named(g, "s");
    const struct loc_conf *inh = loc(s, "/inherit/")->lc;
    assert_int_equal(inh->nproxy_set_headers, 2);
    assert_non_null(psh(inh, "X-A"));
    assert_non_null(psh(inh, "X-B"));
    assert_int_equal(inh->nadd_headers, 1);
    assert_int_equal(inh->nerror_pages, 1);
    assert_int_equal(inh->error_pages[0].codes[0], 404);
    assert_int_equal(inh->error_pages[0].override, -1);
    assert_int_equal(inh->nindex, 1);
    assert_str(inh->index[0].raw, "index.htm");
    assert_int_equal(inh->nproxy_hide_headers, 1);
    assert_str(inh->proxy_hide_headers[0], "x-powered-by");

    const struct loc_conf *rep = loc(s, "/replace/")->lc;
    assert_int_equal(rep->nproxy_set_headers, 1); /* replaces, never appends */
    assert_non_null(psh(rep, "X-C"));
    assert_null(psh(rep, "X-A"));
    assert_false(psh(rep, "X-C")->value.constant);
    assert_int_equal(rep->nadd_headers, 2);
    assert_str(rep->add_headers[0].name, "X-I");
    assert_true(rep->add_headers[0].always);
    assert_false(rep->add_headers[1].always);
    assert_int_equal(rep->nerror_pages, 1);
    assert_int_equal(rep->error_pages[0].ncodes, 2);
    assert_int_equal(rep->error_pages[0].codes[1], 502);
    assert_int_equal(rep->error_pages[0].override, 200);
    assert_str(rep->error_pages[0].target.raw, "/err");
    assert_int_equal(rep->nindex, 2);
    assert_int_equal(rep->nproxy_hide_headers, 1);
    assert_str(rep->proxy_hide_headers[0], "server");

    const struct loc_conf *child = loc(s, "/parent/child/")->lc;
    assert_int_equal(child->nproxy_set_headers, 1);
    assert_non_null(psh(child, "X-P"));
    const struct loc_conf *own = loc(s, "/parent/own/")->lc;
    assert_int_equal(own->nproxy_set_headers, 1);
    assert_non_null(psh(own, "X-Q"));
}

static void test_proxy_redirect_inheritance(void **state)
{
    struct fx *f = *state;
    struct generation *g =
        load(f, "events {} http {\n"
                " upstream be { server 127.0.0.1:9000; }\n"
                " server { server_name s;\n"
                "  proxy_redirect http://x/ /;\n"
                "  location /a/ { proxy_pass http://be/app/; }\n"
                "  location /b/ { proxy_pass http://be; proxy_redirect off; }\n"
                "  location /c/ { }\n"
                " }\n"
                " server { server_name t;\n"
                "  location /app/ { proxy_pass http://be/x/;\n"
                "   location /app/n/ { } }\n"
                "  location /root/ { proxy_pass http://be; }\n"
                "  location /d/ { proxy_pass http://be/d/; proxy_redirect default; "
                "proxy_redirect ~*^http://(\\w+)/ /$1/; }\n"
                "  location /v/ { proxy_pass http://$host; }\n"
                " }\n"
                "}\n");
    const struct server_conf *s = server_named(g, "s"), *t = server_named(g, "t");
    /* server-level list is inherited and replaces the default */
    const struct loc_conf *a = loc(s, "/a/")->lc;
    assert_int_equal(a->nproxy_redirects, 1);
    assert_false(a->proxy_redirects[0].is_default);
    assert_str(a->proxy_redirects[0].from.raw, "http://x/");
    assert_int_equal(loc(s, "/b/")->lc->proxy_redirect_off, 1);
    assert_int_equal(loc(s, "/b/")->lc->nproxy_redirects, 0);
    assert_int_equal(loc(s, "/c/")->lc->nproxy_redirects, 1);

    /* default, expanded from proxy_pass (nginx) */
    const struct loc_conf *app = loc(t, "/app/")->lc;
    assert_int_equal(app->nproxy_redirects, 1);
    assert_true(app->proxy_redirects[0].is_default);
    assert_str(app->proxy_redirects[0].from.raw, "http://be/x/");
    assert_str(app->proxy_redirects[0].to.raw, "/app/");
    const struct loc_conf *n = loc(t, "/app/n/")->lc;
    assert_ptr_equal(n->proxy_redirects, app->proxy_redirects);
    const struct loc_conf *r = loc(t, "/root/")->lc;
    assert_str(r->proxy_redirects[0].from.raw, "http://be/");
    assert_str(r->proxy_redirects[0].to.raw, "/");
    const struct loc_conf *d = loc(t, "/d/")->lc;
    assert_int_equal(d->nproxy_redirects, 2);
    assert_true(d->proxy_redirects[0].is_default);
    assert_str(d->proxy_redirects[0].from.raw, "http://be/d/");
    assert_str(d->proxy_redirects[0].to.raw, "/d/");
    assert_non_null(d->proxy_redirects[1].re);
    assert_false(d->proxy_redirects[1].to.constant);
    /* no default for a proxy_pass with variables */
    assert_int_equal(loc(t, "/v/")->lc->nproxy_redirects, 0);
}

/* ============================================================== proxy_pass */

static void test_proxy_pass_targets(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, "events {} http {\n"
                                   " server { server_name s;\n"
                                   "  location /a/ { proxy_pass http://127.0.0.1:9000/a/; }\n"
                                   "  location /b/ { proxy_pass http://127.0.0.1:9000; }\n"
                                   "  location /c/ { proxy_pass http://127.0.0.1/; }\n"
                                   "  location /d/ { proxy_pass https://127.0.0.1; }\n"
                                   "  location /e/ { proxy_pass https://127.0.0.1:443?x=1; }\n"
                                   "  location /f/ { proxy_pass http://[::1]:9001; }\n"
                                   "  location /g/ { proxy_pass http://Group; }\n"
                                   "  location /h/ { proxy_pass http://$host:$server_port$uri; }\n"
                                   "  location /i/ { proxy_pass http://localhost:9002; }\n"
                                   " }\n"
                                   " upstream group { server 127.0.0.2:8000; server 127.0.0.3 "
                                   "backup; }\n"
                                   "}\n");
    const struct server_conf *s = server_named(g, "s");
    const struct proxy_pass *a = loc(s, "/a/")->lc->proxy_pass;
    assert_non_null(a);
    assert_true(a->has_uri);
    assert_str(a->uri, "/a/");
    assert_str(a->host, "127.0.0.1:9000");
    assert_str(a->port, "9000");
    assert_str(a->url, "http://127.0.0.1:9000");
    assert_false(a->https);
    assert_null(a->dynamic);
    assert_non_null(a->upstream);
    assert_true(a->upstream->implicit);
    assert_string_equal(a->upstream->name, "127.0.0.1:9000");
    assert_int_equal(a->upstream->npeers, 1);
    assert_string_equal(a->upstream->peers[0].name, "127.0.0.1:9000");
    assert_int_equal(a->upstream->peers[0].weight, 1);
    assert_true(a->upstream->keepalive_timeout == 60000);
    assert_int_equal(a->upstream->keepalive_requests, 1000);
    assert_int_equal(a->file == NULL, 0);
    assert_int_equal(a->line, 3);

    const struct proxy_pass *b = loc(s, "/b/")->lc->proxy_pass;
    assert_false(b->has_uri);
    assert_ptr_equal(b->upstream, a->upstream); /* one implicit group per host:port */

    const struct proxy_pass *c = loc(s, "/c/")->lc->proxy_pass;
    assert_true(c->has_uri);
    assert_str(c->uri, "/");
    assert_str(c->host, "127.0.0.1");
    assert_str(c->port, "80");
    assert_string_equal(c->upstream->name, "127.0.0.1:80");

    const struct proxy_pass *d = loc(s, "/d/")->lc->proxy_pass;
    assert_true(d->https);
    assert_str(d->host, "127.0.0.1");
    assert_str(d->port, "443");
    assert_string_equal(d->upstream->name, "127.0.0.1:443");
    const struct proxy_pass *e = loc(s, "/e/")->lc->proxy_pass;
    assert_ptr_equal(e->upstream, d->upstream);
    assert_str(e->host, "127.0.0.1"); /* explicit default port is omitted */
    assert_str(e->uri, "?x=1");

    const struct proxy_pass *fp = loc(s, "/f/")->lc->proxy_pass;
    assert_str(fp->host, "[::1]:9001");
    assert_int_equal(fp->upstream->peers[0].addr.ss_family, AF_INET6);
    assert_string_equal(fp->upstream->peers[0].name, "[::1]:9001");

    /* an upstream{} defined later, matched case-insensitively */
    const struct proxy_pass *gp = loc(s, "/g/")->lc->proxy_pass;
    assert_false(gp->upstream->implicit);
    assert_string_equal(gp->upstream->name, "group");
    assert_str(gp->host, "Group"); /* $proxy_host: as written in proxy_pass (nginx) */
    assert_str(gp->port, "80");

    const struct proxy_pass *h = loc(s, "/h/")->lc->proxy_pass;
    assert_non_null(h->dynamic);
    assert_null(h->upstream);
    assert_false(h->dynamic->constant);

    const struct proxy_pass *i = loc(s, "/i/")->lc->proxy_pass;
    assert_true(i->upstream->npeers >= 1);
    assert_str(i->host, "localhost:9002");

    /* every group has a distinct index; explicit ones first */
    const struct http_conf *hc = g->http;
    assert_int_equal(hc->nupstreams, 6);
    assert_ptr_equal(hc->upstreams[0], gp->upstream);
    for (unsigned k = 0; k < hc->nupstreams; k++)
        assert_int_equal(hc->upstreams[k]->index, k);
}

static void test_upstream_block(void **state)
{
    struct fx *f = *state;
    struct generation *g =
        load(f, "events {} http {\n"
                " upstream u {\n"
                "  server 127.0.0.1:9001 backup;\n"
                "  server 127.0.0.1:9000 weight=5 max_fails=3 fail_timeout=30s "
                "max_conns=10;\n"
                "  server 127.0.0.1 down;\n"
                "  keepalive 32; keepalive_timeout 30s; keepalive_requests 100; "
                "keepalive_time 10m;\n"
                "  least_conn;\n"
                " }\n"
                " upstream h { server 127.0.0.1:1; hash $remote_addr consistent; }\n"
                " upstream i { server 127.0.0.1:1; ip_hash; }\n"
                " upstream r { server 127.0.0.1:1; random two least_conn; }\n"
                "}\n");
    const struct upstream_conf *u = g->http->upstreams[0];
    assert_string_equal(u->name, "u");
    assert_false(u->implicit);
    assert_int_equal(u->npeers, 3);
    assert_int_equal(u->nprimary, 2);
    assert_string_equal(u->peers[0].name, "127.0.0.1:9000");
    assert_int_equal(u->peers[0].weight, 5);
    assert_int_equal(u->peers[0].max_fails, 3);
    assert_true(u->peers[0].fail_timeout == 30000);
    assert_int_equal(u->peers[0].max_conns, 10);
    assert_string_equal(u->peers[1].name, "127.0.0.1:80");
    assert_true(u->peers[1].down);
    assert_string_equal(u->peers[2].name, "127.0.0.1:9001");
    assert_true(u->peers[2].backup);
    assert_int_equal(u->peers[2].max_fails, 1);
    assert_true(u->peers[2].fail_timeout == 10000);
    assert_int_equal(u->keepalive, 32);
    assert_true(u->keepalive_timeout == 30000);
    assert_int_equal(u->keepalive_requests, 100);
    assert_true(u->keepalive_time == 600000);
    assert_int_equal(u->balancer, UPS_BALANCE_LEAST_CONN);
    assert_int_equal(u->line, 2);

    const struct upstream_conf *h = g->http->upstreams[1];
    assert_int_equal(h->balancer, UPS_BALANCE_HASH);
    assert_true(h->hash_consistent);
    assert_non_null(h->hash_key);
    assert_int_equal(h->keepalive, 0);
    assert_true(h->keepalive_timeout == 60000);
    assert_int_equal(h->keepalive_requests, 1000);
    assert_int_equal(g->http->upstreams[2]->balancer, UPS_BALANCE_IP_HASH);
    assert_int_equal(g->http->upstreams[3]->balancer, UPS_BALANCE_RANDOM);
    assert_true(g->http->upstreams[3]->random_two);
}

/* ============================================================== map */

static void test_map(void **state)
{
    struct fx *f = *state;
    put(f, "map.inc", "  Gamma g;\n");
    struct generation *g = load(f, "events {} http {\n"
                                   " map $http_upgrade $connection_upgrade {\n"
                                   "  default upgrade;\n"
                                   "  '' close;\n"
                                   " }\n"
                                   " map $host$uri $m {\n"
                                   "  volatile;\n"
                                   "  beta b;\n"
                                   "  Alpha a;\n"
                                   "  include map.inc;\n"
                                   "  ~^/img/(?<file>.+)$ img-$file;\n"
                                   "  ~*\\.JPG$ jpg-$1;\n"
                                   "  \\~tilde t;\n"
                                   " }\n"
                                   " map $host $h {\n"
                                   "  hostnames;\n"
                                   "  .example.com ex;\n"
                                   "  *.b.org b;\n"
                                   "  www.c.* c;\n"
                                   "  plain p;\n"
                                   " }\n"
                                   " server { return 200 \"$connection_upgrade $m $h $file\"; }\n"
                                   "}\n");
    assert_non_null(g);
    const struct var_ref *cu = NULL, *m = NULL, *h = NULL;
    for (unsigned i = 0; i < g->vars.nrefs; i++) {
        const struct var_ref *v = g->vars.refs[i];
        if (str_eq(v->full, STR_LIT("connection_upgrade")))
            cu = v;
        if (str_eq(v->full, STR_LIT("m")))
            m = v;
        if (str_eq(v->full, STR_LIT("h")))
            h = v;
    }
    assert_non_null(cu);
    assert_int_equal(cu->kind, VAR_MAP);
    const struct map_conf *mc = cu->map;
    assert_int_equal(mc->nexact, 1);
    assert_str(mc->exact[0].key, "");
    assert_str(mc->exact[0].value.raw, "close");
    assert_str(mc->deflt.raw, "upgrade");
    assert_str(mc->source.raw, "$http_upgrade");

    const struct map_conf *mm = m->map;
    assert_true(mm->volatile_);
    assert_false(mm->hostnames);
    assert_int_equal(mm->nexact, 4);
    /* sorted with map_key_cmp: case-insensitive, keys as written */
    assert_str(mm->exact[0].key, "Alpha");
    assert_str(mm->exact[1].key, "beta");
    assert_str(mm->exact[2].key, "Gamma");
    assert_str(mm->exact[3].key, "~tilde");
    assert_int_equal(mm->nregex, 2);
    assert_non_null(mm->regex[0].re);
    assert_false(mm->regex[0].value.constant);
    assert_str(mm->deflt.raw, "");
    assert_int_equal(mm->source.nsegs, 2);

    const struct map_conf *hm = h->map;
    assert_true(hm->hostnames);
    assert_int_equal(hm->nexact, 2);
    assert_str(hm->exact[0].key, "example.com");
    assert_str(hm->exact[1].key, "plain");
    assert_int_equal(hm->nwild_head, 2);
    assert_str(hm->wild_head[0].key, "b.org");
    assert_str(hm->wild_head[1].key, "example.com");
    assert_int_equal(hm->nwild_tail, 1);
    assert_str(hm->wild_tail[0].key, "www.c.");
}

/* ============================================================== rewrite ops */

static void test_rewrite_ops(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, "events {} http { server { server_name s;\n"
                                   " if ($http_x = \"a b\") { return 403; }\n"
                                   " set $v 1;\n"
                                   " return 301 https://$host$request_uri;\n"
                                   " location / {\n"
                                   "  if ($request_method !~* ^(GET|HEAD)$) { return 405 'no'; }\n"
                                   "  if (-f $request_filename) { add_header X-F 1; set $w 2; }\n"
                                   "  if (!-d /tmp) { proxy_pass http://127.0.0.1:9000; }\n"
                                   "  if ($v) { return 444; }\n"
                                   "  if ( $v != 0 ) { return 200; }\n"
                                   "  if ($uri ~ (?<num>\\d+)) { return 200 $num; }\n"
                                   "  return http://example.com/;\n"
                                   " }\n"
                                   " location /p/ { proxy_pass http://127.0.0.1:9001/p/; "
                                   "proxy_set_header X-Y y;\n"
                                   "  if ($arg_x) { add_header X-Z z; } }\n"
                                   "} }\n");
    const struct server_conf *s = server_named(g, "s");
    const struct rw_op *op = s->lc->rewrite;
    assert_int_equal(op->type, RW_IF);
    assert_int_equal(op->u.cond.op, RW_COND_EQ);
    assert_str(op->u.cond.rhs.raw, "a b");
    assert_int_equal(op->u.cond.body->type, RW_RETURN);
    assert_int_equal(op->u.cond.body->u.ret.code, 403);
    assert_null(op->u.cond.body->u.ret.text);
    assert_null(op->u.cond.lc); /* server-level if has no conf */
    op = op->next;
    assert_int_equal(op->type, RW_SET);
    assert_str(op->u.set.value.raw, "1");
    op = op->next;
    assert_int_equal(op->type, RW_RETURN);
    assert_int_equal(op->u.ret.code, 301);
    assert_false(op->u.ret.text->constant);
    assert_null(op->next);

    const struct location *l = loc(s, "/");
    /* location rewrite ops are the location's own (never inherited) */
    op = l->lc->rewrite;
    assert_int_equal(op->u.cond.op, RW_COND_NRE_I);
    assert_non_null(op->u.cond.re);
    assert_str(op->u.cond.body->u.ret.text->raw, "no");
    op = op->next;
    assert_int_equal(op->u.cond.op, RW_COND_FILE);
    assert_non_null(op->u.cond.lc);
    assert_int_equal(op->u.cond.lc->nadd_headers, 1);
    assert_int_equal(op->u.cond.body->type, RW_SET);
    op = op->next;
    assert_int_equal(op->u.cond.op, RW_COND_NDIR);
    assert_str(op->u.cond.lhs.raw, "/tmp");
    assert_non_null(op->u.cond.lc->proxy_pass);
    assert_null(op->u.cond.body);
    /* the if's conf is merged from its location */
    assert_true(op->u.cond.lc->proxy_read_timeout == 60000);
    op = op->next;
    assert_int_equal(op->u.cond.op, RW_COND_TRUTHY);
    assert_int_equal(op->u.cond.body->u.ret.code, 444);
    assert_null(op->u.cond.lc);
    op = op->next;
    assert_int_equal(op->u.cond.op, RW_COND_NE);
    op = op->next;
    assert_int_equal(op->u.cond.op, RW_COND_RE);
    op = op->next;
    assert_int_equal(op->type, RW_RETURN);
    assert_int_equal(op->u.ret.code, 302);
    assert_str(op->u.ret.text->raw, "http://example.com/");

    /* an if inside a proxy location inherits proxy_pass, headers, redirect */
    const struct location *pl = loc(s, "/p/");
    const struct rw_op *pif = pl->lc->rewrite;
    assert_non_null(pif->u.cond.lc);
    assert_ptr_equal(pif->u.cond.lc->proxy_pass, pl->lc->proxy_pass);
    assert_int_equal(pif->u.cond.lc->nproxy_set_headers, 1);
    assert_int_equal(pif->u.cond.lc->nadd_headers, 1);
    assert_ptr_equal(pif->u.cond.lc->proxy_redirects, pl->lc->proxy_redirects);
}

/* ============================================================== content */

static void test_types_and_mime(void **state)
{
    struct fx *f = *state;
    /* the shipped conf/mime.types is the built-in table */
    char src[512];
    snprintf(src, sizeof(src),
             "cp conf/mime.types '%s/mime.types' 2>/dev/null || cp "
             "../../conf/mime.types '%s/mime.types'",
             f->dir, f->dir);
    assert_int_equal(system(src), 0);
    struct generation *g = load(f, "events {} http {\n"
                                   " include mime.types;\n"
                                   " default_type application/octet-stream;\n"
                                   " server { server_name s; location /x/ { types { text/x-a A "
                                   "b; } } }\n"
                                   "}\n");
    const struct mime_types *bt = mime_types_builtin();
    const struct mime_types *ft = g->http->lc->types;
    assert_int_equal(ft->n, bt->n);
    for (unsigned i = 0; i < bt->n; i++) {
        assert_true(str_eq(ft->entries[i].ext, bt->entries[i].ext));
        assert_true(str_eq(ft->entries[i].type, bt->entries[i].type));
        if (i)
            assert_true(mime_ext_cmp(bt->entries[i - 1].ext, bt->entries[i].ext) < 0);
    }
    const struct server_conf *s = server_named(g, "s");
    assert_ptr_equal(s->lc->types, ft);
    assert_str(s->lc->default_type, "application/octet-stream");
    const struct mime_types *xt = loc(s, "/x/")->lc->types;
    assert_int_equal(xt->n, 2);
    assert_str(mime_types_find(xt, STR_LIT("a")), "text/x-a");
    assert_str(mime_types_find(xt, STR_LIT("B")), "text/x-a");
    assert_null(mime_types_find(xt, STR_LIT("html")).p);

    static const struct {
        const char *ext, *type;
    } want[] = {
        {"html", "text/html"},
        {"HTM", "text/html"},
        {"css", "text/css"},
        {"js", "application/javascript"},
        {"mjs", "application/javascript"},
        {"json", "application/json"},
        {"svg", "image/svg+xml"},
        {"wasm", "application/wasm"},
        {"woff2", "font/woff2"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"webp", "image/webp"},
        {"avif", "image/avif"},
        {"mp4", "video/mp4"},
        {"gz", "application/gzip"},
        {"tar", "application/x-tar"},
        {"map", "application/json"},
        {"txt", "text/plain"},
        {"ico", "image/x-icon"},
        {"pdf", "application/pdf"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_str(mime_types_find(bt, str_from_cstr(want[i].ext)), want[i].type);
    assert_null(mime_types_find(bt, STR_LIT("nosuchext")).p);
    assert_null(mime_types_find(bt, STR_LIT("")).p);
}

static void test_static_content(void **state)
{
    struct fx *f = *state;
    struct generation *g =
        load(f, "events {} http {\n"
                " root www/;\n"
                " server { server_name s;\n"
                "  location /a/ { alias /srv/a/; }\n"
                "  location /b/ { root /srv/$host; try_files $uri $uri/ @be; "
                "disable_symlinks if_not_owner from=$document_root; autoindex "
                "off; }\n"
                "  location /c/ { try_files $uri =404; index i.html /abs.html; }\n"
                "  location @be { }\n"
                "  location /r/ { root /; }\n"
                " }\n"
                "}\n");
    const struct server_conf *s = server_named(g, "s");
    assert_str(loc(s, "/r/")->lc->root->raw, "");
    assert_path(f, s->lc->root->raw.p, "<D>www");
    const struct loc_conf *a = loc(s, "/a/")->lc;
    assert_str(a->alias->raw, "/srv/a/");
    const struct loc_conf *b = loc(s, "/b/")->lc;
    assert_str(b->root->raw, "/srv/$host");
    assert_false(b->root->constant);
    assert_int_equal(b->ntry_files, 3);
    assert_str(b->try_files[2].raw, "@be");
    assert_int_equal(b->disable_symlinks, 2);
    assert_non_null(b->disable_symlinks_from);
    const struct loc_conf *c = loc(s, "/c/")->lc;
    assert_int_equal(c->ntry_files, 2);
    assert_int_equal(c->nindex, 2);
    assert_null(loc(s, "be")->lc->alias);
    assert_int_equal(loc(s, "be")->lc->ntry_files, 0); /* try_files is not inherited */
}

static void test_logs(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, "events {} http {\n"
                                   " log_format main escape=json '{\"a\":\"$remote_addr\",' "
                                   "'\"s\":$status}';\n"
                                   " access_log logs/main.log main buffer=32k flush=5s;\n"
                                   " server { server_name a; access_log /var/log/x.log combined "
                                   "if=$arg_log; access_log logs/main.log main gzip=5 "
                                   "buffer=1m; }\n"
                                   " server { server_name b; access_log off; location / { "
                                   "access_log logs/loc.log; } }\n"
                                   " server { server_name c; }\n"
                                   "}\n");
    const struct http_conf *h = g->http;
    assert_int_equal(h->nlog_formats, 2);
    assert_string_equal(h->log_formats[0]->name, "combined");
    assert_str(h->log_formats[0]->tmpl.raw,
               "$remote_addr - $remote_user [$time_local] \"$request\" $status "
               "$body_bytes_sent \"$http_referer\" \"$http_user_agent\"");
    const struct log_format *m = h->log_formats[1];
    assert_true(m->escape_json);
    assert_str(m->tmpl.raw, "{\"a\":\"$remote_addr\",\"s\":$status}");

    const struct loc_conf *a = server_named(g, "a")->lc;
    assert_int_equal(a->naccess_logs, 2);
    assert_string_equal(a->access_logs[0].path, "/var/log/x.log");
    assert_non_null(a->access_logs[0].cond);
    assert_ptr_equal(a->access_logs[1].format, m);
    const struct loc_conf *b = server_named(g, "b")->lc;
    assert_int_equal(b->access_log_off, 1);
    assert_int_equal(b->naccess_logs, 0);
    const struct loc_conf *bl = loc(server_named(g, "b"), "/")->lc;
    assert_int_equal(bl->access_log_off, 0);
    assert_path(f, bl->access_logs[0].path, "<D>logs/loc.log");
    const struct loc_conf *c = server_named(g, "c")->lc;
    assert_int_equal(c->naccess_logs, 1);
    assert_path(f, c->access_logs[0].path, "<D>logs/main.log");

    /* one slot per distinct path that some server or location uses */
    assert_int_equal(g->nlog_paths, 3);
    assert_string_equal(g->log_paths[a->access_logs[0].file_index], "/var/log/x.log");
    assert_int_equal(a->access_logs[1].file_index, c->access_logs[0].file_index);
    assert_path(f, g->log_paths[bl->access_logs[0].file_index], "<D>logs/loc.log");
}

/* HTTP/2: `http2` per server (merged from http), the settings merged down
 * to every location, nginx's defaults, conf_http2_enabled(). */
static void test_http2_recorded(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, "events {} http {\n"
                                   " http2 on; http2_recv_buffer_size 128k;\n"
                                   " http2_max_concurrent_streams 64; http2_chunk_size 32m;\n"
                                   " server { server_name a; listen 8081;\n"
                                   "  http2_body_preread_size 1m;\n"
                                   "  location /x { http2_chunk_size 4k; } location /y { } }\n"
                                   " server { server_name b; listen 8081; http2 off;\n"
                                   "  http2_max_concurrent_streams 8; }\n"
                                   " server { server_name c; listen 8082 http2; http2 off; }\n"
                                   "}\n");
    const struct server_conf *a = server_named(g, "a");
    const struct server_conf *b = server_named(g, "b");
    const struct server_conf *c = server_named(g, "c");
    assert_int_equal(a->http2, 1);
    assert_int_equal(b->http2, 0);
    assert_int_equal(c->http2, 0);
    const struct loc_conf *x = loc(a, "/x")->lc, *y = loc(a, "/y")->lc;
    assert_true(x->http2_max_concurrent_streams == 64);
    assert_true(x->http2_body_preread_size == 1024 * 1024);
    assert_true(x->http2_chunk_size == 4096);
    assert_true(y->http2_chunk_size == (1u << 24) - 1); /* clamped, as nginx */
    assert_true(y->http2_recv_buffer_size == 128 * 1024);
    assert_true(b->lc->http2_max_concurrent_streams == 8);
    assert_true(b->lc->http2_body_preread_size == 64 * 1024);
    const struct listen_conf *l1 = listen_at(g, "0.0.0.0:8081");
    const struct listen_conf *l2 = listen_at(g, "0.0.0.0:8082");
    assert_false(l1->http2);
    assert_true(l2->http2);
    assert_true(conf_http2_enabled(l1, a));
    assert_false(conf_http2_enabled(l1, b));
    assert_true(conf_http2_enabled(l2, c)); /* the listen flag is enough */
    assert_false(conf_http2_enabled(NULL, NULL));
    assert_non_null(strstr(f->warn, "the \"listen ... http2\" directive is deprecated"));

    g = load(f, "events {} http { server { listen 8083; location / { } } }\n");
    const struct server_conf *d = g->http->servers[0];
    const struct loc_conf *dl = loc(d, "/")->lc;
    assert_int_equal(d->http2, 0);
    assert_true(dl->http2_max_concurrent_streams == 128);
    assert_true(dl->http2_body_preread_size == 64 * 1024);
    assert_true(dl->http2_chunk_size == 8 * 1024);
    assert_true(dl->http2_recv_buffer_size == 256 * 1024);
}

/* Access control (conf/access.c): inheritance as nginx, the user file read
 * at load, limit_except's conf merged from its location and not inherited. */
static void test_access_recorded(void **state)
{
    struct fx *f = *state;
    put(f, "pw", "u:{PLAIN}p\n");
    struct generation *g = load(f, "events {} http {\n"
                                   " server { listen 8081; deny 10.0.0.0/8; allow all;\n"
                                   "  auth_basic \"R $host\"; auth_basic_user_file pw;\n"
                                   "  location /a { }\n"
                                   "  location /b { satisfy any; allow 127.0.0.1;\n"
                                   "   auth_basic off; auth_basic_user_file missing; }\n"
                                   "  location /c { auth_basic_user_file pw.$host; auth_request /x;\n"
                                   "   limit_except GET POST { deny all; }\n"
                                   "   location /c/d { } }\n"
                                   " }\n"
                                   " server { listen 8082; location / { } }\n"
                                   "}\n");
    const struct server_conf *s = g->http->servers[0];
    const struct access_conf *sa = s->lc->access;
    assert_non_null(sa);
    assert_int_equal(sa->satisfy, SATISFY_ALL);
    assert_int_equal(sa->nrules, 4); /* deny 10/8; allow all = one per family */
    assert_int_equal(sa->rules[0].deny, 1);
    assert_int_equal(sa->rules[0].addr[0], 10);
    assert_int_equal(sa->rules[0].mask[1], 0);
    assert_false(sa->realm->constant);
    assert_non_null(sa->file);
    assert_int_equal(sa->file->err, 0);
    assert_true(str_eq(sa->file->text, STR_LIT("u:{PLAIN}p\n")));
    assert_int_equal(sa->auth_request.len, 0); /* off */

    /* a location that sets nothing shares its server's */
    assert_ptr_equal(loc(s, "/a")->lc->access, sa);

    const struct access_conf *b = loc(s, "/b")->lc->access;
    assert_int_equal(b->satisfy, SATISFY_ANY);
    assert_int_equal(b->nrules, 1); /* replaces the server's rules */
    assert_true(b->realm->constant && str_eq(b->realm->raw, STR_LIT("off"))); /* checked per
                                                                                request */
    assert_int_equal(b->file->err, ENOENT); /* not an error at load, as nginx */

    const struct location *c = loc(s, "/c");
    const struct access_conf *ca = c->lc->access;
    assert_non_null(ca->user_file); /* variables: read per request */
    assert_null(ca->file);
    assert_true(str_eq(ca->auth_request, STR_LIT("/x")));
    assert_int_equal(ca->lmt_methods, LMT_GET | LMT_HEAD | LMT_POST);
    assert_non_null(ca->lmt_lc);
    const struct access_conf *la = ca->lmt_lc->access;
    assert_int_equal(la->nrules, 3);          /* deny all */
    assert_true(str_eq(la->auth_request, STR_LIT("/x"))); /* inherited */
    assert_null(la->lmt_lc);
    assert_ptr_equal(ca->lmt_lc->root, c->lc->root);
    assert_null(ca->lmt_lc->rewrite);
    /* a nested location does not inherit limit_except */
    const struct access_conf *da = loc_in(c->children, c->nchildren, "/c/d")->lc->access;
    assert_null(da->lmt_lc);
    assert_true(str_eq(da->auth_request, STR_LIT("/x")));

    /* no access directive anywhere: no access conf at all */
    assert_null(loc(g->http->servers[1], "/")->lc->access);

    assert_int_equal(access_method_bit(STR_LIT("PATCH")), LMT_PATCH);
    assert_int_equal(access_method_bit(STR_LIT("get")), 0);
    assert_int_equal(access_method_bit(STR_LIT("FOO")), 0);
}

static void test_ssl_recorded(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, "events {} http {\n"
                                   " ssl_protocols TLSv1.3;\n"
                                   " ssl_session_cache shared:SSL:10m;\n"
                                   " server { server_name a; listen 8443 ssl http2; "
                                   "ssl_certificate certs/a.pem; ssl_certificate_key "
                                   "/k/a.key; ssl_ciphers HIGH; ssl_session_timeout 1h; "
                                   "ssl_session_tickets off; ssl_stapling on; "
                                   "ssl_prefer_server_ciphers on; ssl_dhparam dh.pem; }\n"
                                   " server { server_name b; location / { proxy_pass "
                                   "https://127.0.0.1:9443; proxy_ssl_server_name on; "
                                   "proxy_ssl_name $host; proxy_ssl_verify on; "
                                   "proxy_ssl_trusted_certificate ca.pem; proxy_ssl_protocols "
                                   "TLSv1.2; proxy_ssl_session_reuse off; } }\n"
                                   "}\n");
    const struct server_conf *a = server_named(g, "a");
    const struct ssl_conf *s = a->ssl;
    assert_int_equal(s->ncertificates, 1);
    assert_path(f, s->certificates[0], "<D>certs/a.pem");
    assert_string_equal(s->certificate_keys[0], "/k/a.key");
    assert_int_equal(s->protocols, SSL_PROTO_TLSv1_3);
    assert_string_equal(s->ciphers, "HIGH");
    assert_true(s->session_timeout == 3600000);
    assert_int_equal(s->session_tickets, 0);
    assert_int_equal(s->stapling, 1);
    assert_int_equal(s->prefer_server_ciphers, 1);
    assert_string_equal(s->session_cache_shared_name, "SSL");
    assert_true(s->session_cache_shared_size == 10 * 1024 * 1024);
    assert_path(f, s->dhparam, "<D>dh.pem");
    const struct listen_conf *l = listen_at(g, "0.0.0.0:8443");
    assert_true(l->ssl);
    assert_true(l->http2);

    const struct ssl_conf *sb = server_named(g, "b")->ssl;
    assert_int_equal(sb->ncertificates, 0);
    assert_string_equal(sb->ciphers, "HIGH:!aNULL:!MD5");
    assert_true(sb->session_timeout == 300000);
    assert_int_equal(sb->protocols, SSL_PROTO_TLSv1_3); /* inherited from http */

    const struct loc_conf *lc = loc(server_named(g, "b"), "/")->lc;
    assert_int_equal(lc->proxy_ssl_server_name, 1);
    assert_non_null(lc->proxy_ssl_name);
    assert_int_equal(lc->proxy_ssl_verify, 1);
    assert_path(f, lc->proxy_ssl_trusted_certificate, "<D>ca.pem");
    assert_int_equal(lc->proxy_ssl_protocols, SSL_PROTO_TLSv1_2);
    assert_int_equal(lc->proxy_ssl_session_reuse, 0);
    assert_true(lc->proxy_pass->https);
}

static void test_ssl_client_verify_recorded(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, "events {} http {\n"
                                   " ssl_verify_client optional; ssl_client_certificate ca.pem;\n"
                                   " ssl_verify_depth 3; ssl_crl crl.pem;\n"
                                   " ssl_session_ticket_key k1; ssl_session_ticket_key k2;\n"
                                   " ssl_password_file pw; ssl_buffer_size 4k;\n"
                                   " ssl_conf_command Options -SessionTicket;\n"
                                   " server { server_name a; }\n"
                                   " server { server_name b; ssl_verify_client off; "
                                   "ssl_reject_handshake on; location / { proxy_pass "
                                   "https://127.0.0.1:9443; proxy_ssl_certificate c.pem; "
                                   "proxy_ssl_certificate_key c.key; proxy_ssl_password_file "
                                   "pw; proxy_ssl_crl crl.pem; proxy_ssl_ciphers HIGH; "
                                   "proxy_ssl_verify_depth 2; proxy_ssl_conf_command "
                                   "Options -SessionTicket; } }\n"
                                   "}\n");
    const struct ssl_conf *a = server_named(g, "a")->ssl;
    assert_int_equal(a->verify_client, SSL_VERIFY_CLIENT_OPTIONAL);
    assert_path(f, a->client_certificate, "<D>ca.pem");
    assert_int_equal(a->verify_depth, 3);
    assert_path(f, a->crl, "<D>crl.pem");
    assert_int_equal(a->nticket_keys, 2);
    assert_path(f, a->ticket_keys[1], "<D>k2");
    assert_path(f, a->password_file, "<D>pw");
    assert_true(a->buffer_size == 4096);
    assert_int_equal(a->nconf_commands, 2);
    assert_string_equal(a->conf_commands[0], "Options");
    assert_string_equal(a->conf_commands[1], "-SessionTicket");
    assert_int_equal(a->reject_handshake, 0);

    const struct ssl_conf *b = server_named(g, "b")->ssl;
    assert_int_equal(b->verify_client, SSL_VERIFY_CLIENT_OFF);
    assert_int_equal(b->reject_handshake, 1);
    assert_int_equal(b->verify_depth, 3);
    const struct loc_conf *lc = loc(server_named(g, "b"), "/")->lc;
    assert_path(f, lc->proxy_ssl_certificate, "<D>c.pem");
    assert_path(f, lc->proxy_ssl_certificate_key, "<D>c.key");
    assert_path(f, lc->proxy_ssl_password_file, "<D>pw");
    assert_path(f, lc->proxy_ssl_crl, "<D>crl.pem");
    assert_string_equal(lc->proxy_ssl_ciphers, "HIGH");
    assert_int_equal(lc->proxy_ssl_verify_depth, 2);
    assert_int_equal(lc->nproxy_ssl_conf_commands, 2);
    assert_string_equal(lc->proxy_ssl_conf_commands[1], "-SessionTicket");
    const struct loc_conf *la = server_named(g, "a")->lc;
    assert_string_equal(la->proxy_ssl_ciphers, "DEFAULT");
    assert_int_equal(la->proxy_ssl_verify_depth, 1);
}

static void test_misc_proxy_directives(void **state)
{
    struct fx *f = *state;
    struct generation *g =
        load(f, "events {} http { server { server_name s; location / {\n"
                " proxy_pass http://127.0.0.1:9000;\n"
                " proxy_http_version 1.1;\n"
                " proxy_buffering off; proxy_request_buffering off;\n"
                " proxy_buffer_size 16k; proxy_buffers 4 32k; "
                "proxy_busy_buffers_size 64k;\n"
                " proxy_pass_header X-Accel; proxy_pass_request_headers off; "
                "proxy_pass_request_body off;\n"
                " proxy_method POST; proxy_set_body $arg_b;\n"
                " proxy_intercept_errors on;\n"
                " proxy_next_upstream error timeout http_502 non_idempotent;\n"
                " proxy_next_upstream_tries 3; proxy_next_upstream_timeout 10s;\n"
                " proxy_ignore_client_abort on; proxy_cache off;\n"
                "} location /off/ { proxy_next_upstream off; } } }\n");
    const struct loc_conf *lc = loc(g->http->servers[0], "/")->lc;
    assert_int_equal(lc->proxy_http_version_minor, 1);
    assert_int_equal(lc->proxy_buffering, 0);
    assert_int_equal(lc->proxy_request_buffering, 0);
    assert_true(lc->proxy_buffer_size == 16384);
    assert_int_equal(lc->proxy_buffers_num, 4);
    assert_true(lc->proxy_buffers_size == 32768);
    assert_true(lc->proxy_busy_buffers_size == 65536);
    assert_int_equal(lc->nproxy_pass_headers, 1);
    assert_str(lc->proxy_pass_headers[0], "x-accel");
    assert_int_equal(lc->proxy_pass_request_headers, 0);
    assert_int_equal(lc->proxy_pass_request_body, 0);
    assert_str(lc->proxy_method->raw, "POST");
    assert_false(lc->proxy_set_body->constant);
    assert_int_equal(lc->proxy_intercept_errors, 1);
    assert_int_equal(lc->proxy_next_upstream, NEXT_UPSTREAM_ERROR | NEXT_UPSTREAM_TIMEOUT |
                                                  NEXT_UPSTREAM_HTTP_502 |
                                                  NEXT_UPSTREAM_NON_IDEMPOTENT);
    assert_int_equal(lc->proxy_next_upstream_tries, 3);
    assert_true(lc->proxy_next_upstream_timeout == 10000);
    assert_int_equal(lc->proxy_ignore_client_abort, 1);
    assert_int_equal(loc(g->http->servers[0], "/off/")->lc->proxy_next_upstream, NEXT_UPSTREAM_OFF);
}

/* ============================================================== dump, regexes */

static void test_dump(void **state)
{
    struct fx *f = *state;
    put(f, "inc/b.conf", "# b\n");
    put(f, "inc/a.conf", "server { listen 8080; }\n");
    struct generation *g = load(f, "events {}\nhttp {\n include inc/*.conf;\n}\n");
    assert_int_equal(g->nfiles, 3); /* b.conf holds only a comment: read, so dumped (nginx) */
    char path[128];
    snprintf(path, sizeof(path), "%s/dump.out", f->dir);
    FILE *fp = fopen(path, "w+");
    assert_non_null(fp);
    assert_int_equal(gen_dump(g, fileno(fp)), 0);
    rewind(fp);
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    char want[1024];
    snprintf(want, sizeof(want),
             "# configuration file %s:\nevents {}\nhttp {\n include inc/*.conf;\n}\n\n"
             "# configuration file %s/inc/a.conf:\nserver { listen 8080; }\n\n"
             "# configuration file %s/inc/b.conf:\n# b\n\n",
             f->conf, f->dir, f->dir);
    assert_string_equal(buf, want);
}

static void test_regexes_recorded(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, "events {} http {\n"
                                   " map $uri $x { ~a 1; ~*b 2; }\n"
                                   " server { server_name ~^w; location ~ c { if ($uri ~ d) { "
                                   "return 200; } proxy_pass http://127.0.0.1:1; proxy_redirect "
                                   "~e /; } }\n"
                                   "}\n");
    assert_int_equal(g->nregexes, 6);
    for (unsigned i = 0; i < g->nregexes; i++)
        assert_non_null(g->regexes[i]);
}

/* ============================================================== rewrite */

static void test_rewrite_directive(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, "events {} http { server { server_name s;\n"
                                   " rewrite ^/old/(.*)$ /new/$1;\n"
                                   " rewrite ^/a(\\d+)/(?<rest>.*) /b/$2/$1?x=$rest last;\n"
                                   " rewrite ^/brk /x break;\n"
                                   " rewrite ^/tmp http://t.example/ redirect;\n"
                                   " rewrite ^/perm /p permanent;\n"
                                   " rewrite ^/abs $scheme://$host/abs;\n"
                                   " rewrite \"\" /empty-regex-matches-all;\n"
                                   " if ($arg_stop) { rewrite ^ /s; break; }\n"
                                   " break;\n"
                                   " location / {\n"
                                   "  rewrite ^ https://example.com/;\n"
                                   "  if ($uri) { rewrite ^(.*)$ $1/ break; }\n"
                                   "  break;\n"
                                   " }\n"
                                   "} }\n");
    const struct server_conf *s = server_named(g, "s");
    const struct rw_op *op = s->lc->rewrite;

    assert_int_equal(op->type, RW_REWRITE);
    assert_non_null(op->u.rewrite.re);
    assert_int_equal(op->u.rewrite.flag, RW_FLAG_NONE);
    assert_str(op->u.rewrite.replacement.raw, "/new/$1");
    assert_false(op->u.rewrite.replacement.constant);
    assert_int_equal(op->u.rewrite.replacement.nsegs, 1);
    assert_str(op->u.rewrite.replacement.segs[0].lit, "/new/");
    assert_int_equal(op->u.rewrite.replacement.segs[0].var->kind, VAR_CAPTURE);
    assert_int_equal(op->u.rewrite.replacement.segs[0].var->id, 1);
    assert_int_equal(op->line, 2);

    op = op->next;
    assert_int_equal(op->u.rewrite.flag, RW_FLAG_LAST);
    const struct tmpl *t = &op->u.rewrite.replacement;
    assert_int_equal(t->nsegs, 3);
    assert_int_equal(t->segs[0].var->kind, VAR_CAPTURE);
    assert_int_equal(t->segs[0].var->id, 2);
    assert_int_equal(t->segs[1].var->id, 1);
    assert_str(t->segs[2].lit, "?x=");
    assert_int_equal(t->segs[2].var->kind, VAR_NAMED_CAPTURE);

    op = op->next;
    assert_int_equal(op->u.rewrite.flag, RW_FLAG_BREAK);
    assert_true(op->u.rewrite.replacement.constant);
    op = op->next;
    assert_int_equal(op->u.rewrite.flag, RW_FLAG_REDIRECT);
    op = op->next;
    assert_int_equal(op->u.rewrite.flag, RW_FLAG_PERMANENT);
    op = op->next; /* "$scheme..." redirects at run time; the flag stays NONE */
    assert_int_equal(op->u.rewrite.flag, RW_FLAG_NONE);
    assert_str(op->u.rewrite.replacement.raw, "$scheme://$host/abs");
    op = op->next;
    assert_int_equal(op->type, RW_REWRITE);
    assert_non_null(op->u.rewrite.re);

    op = op->next;
    assert_int_equal(op->type, RW_IF);
    assert_int_equal(op->u.cond.body->type, RW_REWRITE);
    assert_int_equal(op->u.cond.body->next->type, RW_BREAK);
    assert_null(op->u.cond.body->next->next);
    op = op->next;
    assert_int_equal(op->type, RW_BREAK);
    assert_int_equal(op->line, 10);
    assert_null(op->next);

    /* location ops: own list, `if` body inside */
    op = loc(s, "/")->lc->rewrite;
    assert_int_equal(op->type, RW_REWRITE);
    assert_int_equal(op->u.rewrite.flag, RW_FLAG_NONE);
    op = op->next;
    assert_int_equal(op->type, RW_IF);
    assert_null(op->u.cond.lc); /* rewrite/break are rewrite ops, not if-conf directives */
    assert_int_equal(op->u.cond.body->u.rewrite.flag, RW_FLAG_BREAK);
    op = op->next;
    assert_int_equal(op->type, RW_BREAK);

    /* every regex is recorded for gen_free: 7 server rewrites + 1 in if + 2 in the location */
    assert_int_equal(g->nregexes, 10);
    /* the regex is matched as written: case-sensitive */
    const struct rw_op *first = s->lc->rewrite;
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    assert_true(pcre2_match(first->u.rewrite.re, (PCRE2_SPTR) "/old/x", 6, 0, 0, md, NULL) > 0);
    assert_true(pcre2_match(first->u.rewrite.re, (PCRE2_SPTR) "/OLD/x", 6, 0, 0, md, NULL) < 0);
    pcre2_match_data_free(md);
}

/* ====================================================== request handling */

static void test_request_flags_defaults_and_merge(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, "events {} http { server { location / { location /n { } } } }");
    const struct server_conf *s = g->http->servers[0];
    const struct loc_conf *lcs[] = {g->http->lc, s->lc, loc(s, "/")->lc, loc(s, "/n")->lc};
    for (unsigned i = 0; i < 4; i++) {
        const struct loc_conf *lc = lcs[i];
        assert_int_equal(lc->underscores_in_headers, 0);
        assert_int_equal(lc->ignore_invalid_headers, 1);
        assert_int_equal(lc->merge_slashes, 1);
        assert_int_equal(lc->absolute_redirect, 1);
        assert_int_equal(lc->port_in_redirect, 1);
        assert_int_equal(lc->server_name_in_redirect, 0);
        assert_int_equal(lc->lingering_close, LINGERING_CLOSE_ON);
        assert_true(lc->lingering_time == 30000);
        assert_true(lc->lingering_timeout == 5000);
        assert_int_equal(lc->internal, 0);
    }

    g = load(f, "events {} http {\n"
                " underscores_in_headers on; ignore_invalid_headers off; merge_slashes off;\n"
                " absolute_redirect off; lingering_close always; lingering_time 1m;\n"
                " server { server_name a; }\n"
                " server { server_name b; underscores_in_headers off; merge_slashes on;\n"
                "  port_in_redirect off; server_name_in_redirect on; lingering_timeout 2s;\n"
                "  location / { absolute_redirect on; lingering_close off;\n"
                "   location /in { internal; location /in/deeper { } } }\n"
                "  location @named { internal; }\n"
                "  location /x { port_in_redirect on; if ($uri) { root /r; } } } }\n");
    const struct loc_conf *a = server_named(g, "a")->lc;
    assert_int_equal(a->underscores_in_headers, 1);
    assert_int_equal(a->ignore_invalid_headers, 0);
    assert_int_equal(a->merge_slashes, 0);
    assert_int_equal(a->absolute_redirect, 0);
    assert_int_equal(a->lingering_close, LINGERING_CLOSE_ALWAYS);
    assert_true(a->lingering_time == 60000);
    assert_true(a->lingering_timeout == 5000);

    const struct server_conf *b = server_named(g, "b");
    assert_int_equal(b->lc->underscores_in_headers, 0);
    assert_int_equal(b->lc->ignore_invalid_headers, 0);
    assert_int_equal(b->lc->merge_slashes, 1);
    assert_int_equal(b->lc->port_in_redirect, 0);
    assert_int_equal(b->lc->server_name_in_redirect, 1);
    assert_true(b->lc->lingering_timeout == 2000);
    const struct loc_conf *root = loc(b, "/")->lc;
    assert_int_equal(root->absolute_redirect, 1);
    assert_int_equal(root->port_in_redirect, 0);
    assert_int_equal(root->server_name_in_redirect, 1);
    assert_int_equal(root->lingering_close, LINGERING_CLOSE_OFF);
    assert_true(root->lingering_time == 60000);
    assert_int_equal(root->internal, 0);
    assert_int_equal(loc(b, "/in")->lc->internal, 1);
    assert_int_equal(loc(b, "/in/deeper")->lc->internal, 1); /* inherited, as nginx */
    assert_int_equal(loc(b, "named")->lc->internal, 1);
    /* an `if` conf inherits them from its location */
    const struct rw_op *iff = loc(b, "/x")->lc->rewrite;
    assert_int_equal(loc(b, "/x")->lc->port_in_redirect, 1);
    assert_int_equal(iff->u.cond.lc->port_in_redirect, 1);
    assert_int_equal(iff->u.cond.lc->server_name_in_redirect, 1);
    assert_int_equal(iff->u.cond.lc->internal, 0);
}

/* Directives of stock nginx configs that Switchyard validates and drops. */
static void test_accepted_directives(void **state)
{
    struct fx *f = *state;
    struct generation *g =
        load(f, "events {} http {\n"
                " types_hash_max_size 2048; types_hash_bucket_size 64;\n"
                " server_names_hash_max_size 512; server_names_hash_bucket_size 128;\n"
                " variables_hash_max_size 1024; variables_hash_bucket_size 64;\n"
                " map_hash_max_size 2048; map_hash_bucket_size 64;\n"
                " proxy_headers_hash_max_size 512; proxy_headers_hash_bucket_size 64;\n"
                " reset_timedout_connection on; chunked_transfer_encoding on;\n"
                " msie_padding off; log_not_found off; log_subrequest on;\n"
                " open_log_file_cache off; open_file_cache off;\n"
                " client_body_in_file_only off; client_body_in_single_buffer on;\n"
                " output_buffers 2 32k; postpone_output 1460; send_lowat 0;\n"
                " keepalive_disable msie6 safari;\n"
                " connection_pool_size 512; request_pool_size 4k; sendfile_max_chunk 2m;\n"
                " aio threads=pool; aio_write on; directio 4m; directio_alignment 512;\n"
                " read_ahead 0; open_file_cache_errors on; open_file_cache_events on;\n"
                " open_file_cache_min_uses 2; open_file_cache_valid 60s; msie_refresh on;\n"
                " max_ranges 1; recursive_error_pages off; satisfy any; auth_delay 1s;\n"
                " subrequest_output_buffer_size 8k; rewrite_log on;\n"
                " uninitialized_variable_warn off;\n"
                " proxy_ignore_headers X-Accel-Redirect set-cookie; proxy_max_temp_file_size 0;\n"
                " proxy_temp_file_write_size 16k; proxy_force_ranges off;\n"
                " client_body_temp_path tmp/body 1 2; proxy_temp_path tmp/proxy/ 1 2;\n"
                " fastcgi_temp_path tmp/fcgi; uwsgi_temp_path tmp/uwsgi 2;\n"
                " scgi_temp_path tmp/scgi;\n"
                " server { server_name s; types_hash_max_size 1024; log_not_found on;\n"
                "  open_file_cache off; open_log_file_cache off;\n"
                "  location / { types_hash_max_size 512; log_not_found off; output_buffers 1 4k;\n"
                "   proxy_temp_path tmp/proxy 1 2; client_body_temp_path tmp/other;\n"
                "   if ($uri) { rewrite_log off; return 200; } } } }\n");
    assert_non_null(g);
    /* send_lowat: nginx on Linux warns the same way */
    char want[512];
    expand(f, "\"send_lowat\" is not supported, ignored in <C>:11\n", want, sizeof(want));
    assert_string_equal(f->warn, want);

    /* main and events level */
    g = load(f, "env FOO; env BAR=1; lock_file logs/x.lock; working_directory /tmp;\n"
                "pcre_jit on; thread_pool pool threads=4 max_queue=100; thread_pool b threads=1;\n"
                "timer_resolution 100ms; debug_points abort; ssl_object_cache_inheritable off;\n"
                "events { accept_mutex_delay 500ms; epoll_events 512; worker_aio_requests 32; }\n");
    assert_non_null(g);
    assert_string_equal(f->warn, "");
    /* nginx built without --with-debug (and nginx with an unknown engine) says so too */
    g = load(f, "ssl_engine qat;\nevents { debug_connection 10.0.0.0/8; }\n"
                "http { proxy_send_lowat 1k; }\n");
    assert_non_null(g);
    expand(f,
           "\"ssl_engine\" is not supported, ignored: OpenSSL's default implementation is used "
           "in <C>:1\n"
           "\"debug_connection\" is not supported, ignored in <C>:2\n"
           "\"proxy_send_lowat\" is not supported, ignored in <C>:3\n",
           want, sizeof(want));
    assert_string_equal(f->warn, want);

    /* implemented: chunked_transfer_encoding, proxy_socket_keepalive */
    g = load(f, "events {} http { chunked_transfer_encoding off; proxy_socket_keepalive on;\n"
                " server { server_name a; location / { chunked_transfer_encoding on; } } }\n");
    assert_int_equal(g->http->lc->chunked_transfer_encoding, 0);
    assert_int_equal(g->http->lc->proxy_socket_keepalive, 1);
    const struct server_conf *sa = server_named(g, "a");
    assert_int_equal(sa->lc->chunked_transfer_encoding, 0);
    assert_int_equal(loc(sa, "/")->lc->chunked_transfer_encoding, 1);
    assert_int_equal(loc(sa, "/")->lc->proxy_socket_keepalive, 1);
    g = load(f, "events {} http { server { } }\n");
    assert_int_equal(g->http->lc->chunked_transfer_encoding, 1);
    assert_int_equal(g->http->lc->proxy_socket_keepalive, 0);
    /* the same directive in nested blocks is no duplicate; included files join the block */
    put(f, "inc.conf", "types_hash_max_size 1;\n");
    assert_null(try_load(f, "events {} http { types_hash_max_size 2;\n include inc.conf; }\n"));
    expand(f, "\"types_hash_max_size\" directive is duplicate in <D>inc.conf:1", want,
           sizeof(want));
    assert_string_equal(f->err, want);
}

/* Messages name the line of the ';' / '{' ending a directive, as nginx does. */
static void test_error_lines(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *conf, *err;
    } cases[] = {
        {"events {}\nhttp {\n keepalive_timeout\n  10x\n ;\n}\n",
         "\"keepalive_timeout\" directive invalid value in <C>:5"},
        {"events {}\nhttp {\n server {\n  listen 127.0.0.1:8080\n  location / { }\n }\n}\n",
         "directive \"listen\" is not terminated by \";\" in <C>:5"},
        {"events {}\nhttp {\n upstream empty {\n\n }\n}\n",
         "no servers are inside upstream in <C>:5"},
        {"events {}\nhttp {\n upstream u\n {\n server 127.0.0.1:9\n  down; server\n "
         "nosuch.invalid;\n}\n}\n",
         "host not found in upstream \"nosuch.invalid\" in <C>:7"},
        {"events {}\nhttp {\n server\n {\n listen 8443 ssl;\n}\n}\n",
         "no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive in <C>:4"},
        {"events {}\nhttp {\n server {\n location /x\n {}\n location /x\n {}\n}\n}\n",
         "duplicate location \"/x\" in <C>:7"},
        {"events {}\nhttp {\n server {\n location /x\n {\n location /y {\n}\n}\n}\n}\n",
         "location \"/y\" is outside location \"/x\" in <C>:6"},
        {"events {}\nfoo\n;\n", "unknown directive \"foo\" in <C>:3"},
        {"events {}\nhttp\n;\n", "directive \"http\" has no opening \"{\" in <C>:3"},
        {"events {}\nhttp {\n map $uri $a {\n X 1;\n x\n 2; } }\n",
         "conflicting parameter \"x\" in <C>:6"},
        {"events {}\nhttp {\n server {\n listen 80\n default_server; }\n server { listen 80\n "
         "default_server\n; } }\n",
         "a duplicate default server for 0.0.0.0:80 in <C>:8"},
        {"events {}\nhttp {\n upstream u\n {\n server 127.0.0.1:9;\n}\n server {\n location / "
         "{ proxy_pass http://u:80\n; }\n}\n}\n",
         "upstream \"u\" may not have port 80 in <C>:9"},
        {"events {}\nhttp {\n server {\n rewrite\n ^/(a\n /x;\n}\n}\n",
         "pcre2_compile() failed: missing closing parenthesis in \"^/(a\" in <C>:6"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[1024];
        expand(f, cases[i].err, want, sizeof(want));
        if (try_load(f, cases[i].conf))
            fail_msg("case %zu loaded, expected: %s", i, want);
        if (strcmp(f->err, want) != 0)
            fail_msg("case %zu\n  want: %s\n  got:  %s", i, want, f->err);
    }
    /* warnings too */
    assert_non_null(load(f, "events {}\nhttp {\n index a\n /b\n c;\n server { server_name a/b\n; "
                            "}\n}\n"));
    char want[512];
    expand(f,
           "only the last index in \"index\" directive should be absolute in <C>:5\n"
           "server name \"a/b\" has suspicious symbols in <C>:7\n",
           want, sizeof(want));
    assert_string_equal(f->warn, want);
    /* recorded positions: the line of the '{' / ';' */
    struct generation *g = load(f, "events {}\nhttp {\n server\n {\n location /\n {\n proxy_pass\n "
                                   "http://127.0.0.1:9\n;\n }\n }\n}\n");
    const struct server_conf *s = g->http->servers[0];
    assert_int_equal(s->line, 4);
    assert_int_equal(s->locations[0].line, 6);
    assert_int_equal(s->locations[0].lc->proxy_pass->line, 9);
}

/* ============================================================== -T */

static char *dump_text(struct fx *f, const struct generation *g)
{
    static char buf[4096];
    char path[128];
    snprintf(path, sizeof(path), "%s/dump.out", f->dir);
    FILE *fp = fopen(path, "w+");
    assert_non_null(fp);
    assert_int_equal(gen_dump(g, fileno(fp)), 0);
    rewind(fp);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static void test_dump_every_file_read(void **state)
{
    struct fx *f = *state;
    put(f, "empty.conf", "");
    put(f, "only-comments.conf", "# nothing here\n# really\n");
    put(f, "srv.conf", "server { listen 8080; }\n");
    put(f, "g.conf", "worker_processes 2;\n");
    /* -g includes come first; a file included twice is dumped once */
    struct generation *g = try_load_g(f,
                                      "events {}\ninclude empty.conf;\nhttp {\n include srv.conf;\n"
                                      " include only-comments.conf;\n include srv.conf;\n}\n",
                                      "include g.conf;");
    assert_non_null(g);
    assert_int_equal(g->main.worker_processes, 2);
    assert_int_equal(g->nfiles, 5);
    assert_path(f, g->files[0].path, "<D>g.conf");
    assert_path(f, g->files[1].path, "<C>");
    assert_path(f, g->files[2].path, "<D>empty.conf");
    assert_path(f, g->files[3].path, "<D>srv.conf");
    assert_path(f, g->files[4].path, "<D>only-comments.conf");
    assert_int_equal(g->files[2].text.len, 0);
    char want[2048];
    snprintf(
        want, sizeof(want),
        "# configuration file %sg.conf:\nworker_processes 2;\n\n"
        "# configuration file %s:\nevents {}\ninclude empty.conf;\nhttp {\n include srv.conf;\n"
        " include only-comments.conf;\n include srv.conf;\n}\n\n"
        "# configuration file %sempty.conf:\n\n"
        "# configuration file %ssrv.conf:\nserver { listen 8080; }\n\n"
        "# configuration file %sonly-comments.conf:\n# nothing here\n# really\n\n",
        f->prefix, f->conf, f->prefix, f->prefix, f->prefix);
    assert_string_equal(dump_text(f, g), want);

    /* the bytes are those read at load, even if the file changes afterwards */
    put(f, "only-comments.conf", "changed\n");
    assert_str(g->files[4].text, "# nothing here\n# really\n");
}

/* ============================================================== docs */

/* docs/directives.md, found from this source file's path (the build compiles
 * tests/unit/test_directives.c from the repository root). */
static char *read_doc(void)
{
    char path[512];
    const char *me = __FILE__;
    const char *slash = strrchr(me, '/');
    snprintf(path, sizeof(path), "%.*s../../docs/directives.md", slash ? (int)(slash - me + 1) : 0,
             me);
    FILE *fp = fopen(path, "r");
    if (!fp)
        fail_msg("cannot open %s (run from the repository root)", path);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    if (n == sizeof(buf) - 1)
        fail_msg("%s is larger than the test's buffer", path);
    return buf;
}

static const struct {
    unsigned ctx;
    const char *name;
} ctx_names[] = {
    {CTX_MAIN, "main"},          {CTX_EVENTS, "events"},     {CTX_HTTP, "http"},
    {CTX_SERVER, "server"},      {CTX_LOCATION, "location"}, {CTX_SIF, "if in server"},
    {CTX_LIF, "if in location"}, {CTX_UPSTREAM, "upstream"}, {CTX_LMT, "limit_except"},
};

/* The "**Context:**" line of the entry "### `name`": its `...` items as CTX_ bits. */
static unsigned doc_contexts(const char *doc, const char *name)
{
    char head[128];
    snprintf(head, sizeof(head), "\n### `%s`\n", name);
    const char *e = strstr(doc, head);
    if (!e) {
        fail_msg("docs/directives.md has no entry \"### `%s`\"", name);
        return 0;
    }
    if (strstr(e + 1, head))
        fail_msg("docs/directives.md has two entries for `%s`", name);
    e += strlen(head);
    const char *end = strstr(e, "\n### ");
    const char *c = strstr(e, "**Context:**");
    if (!c || (end && c > end)) {
        fail_msg("entry `%s` has no **Context:** line", name);
        return 0;
    }
    const char *eol = strchr(c, '\n');
    unsigned bits = 0;
    for (const char *q = strchr(c, '`'); q && (!eol || q < eol); q = strchr(q, '`')) {
        const char *close = strchr(q + 1, '`');
        if (!close)
            break;
        size_t len = (size_t)(close - q - 1);
        unsigned k;
        for (k = 0; k < sizeof(ctx_names) / sizeof(ctx_names[0]); k++)
            if (strlen(ctx_names[k].name) == len && strncmp(q + 1, ctx_names[k].name, len) == 0)
                break;
        if (k == sizeof(ctx_names) / sizeof(ctx_names[0]))
            fail_msg("entry `%s`: unknown context `%.*s`", name, (int)len, q + 1);
        bits |= ctx_names[k].ctx;
        q = close + 1;
    }
    return bits;
}

/* Every directive of the table is documented with exactly its contexts, every
 * documented directive exists, and every builtin variable is documented. */
static void test_docs_complete(void **state)
{
    (void)state;
    const char *doc = read_doc();
    struct conf_directive_info d, o;
    unsigned n = 0;
    for (unsigned i = 0; conf_directive_at(i, &d); i++, n++) {
        unsigned want = 0;
        for (unsigned k = 0; conf_directive_at(k, &o); k++)
            if (strcmp(o.name, d.name) == 0)
                want |= o.ctx;
        unsigned got = doc_contexts(doc, d.name);
        if (got != want)
            fail_msg("docs/directives.md: `%s` contexts 0x%x, the table says 0x%x", d.name, got,
                     want);
    }
    assert_true(n > 100);

    /* no entry for a directive the table does not have */
    for (const char *q = strstr(doc, "\n### `"); q; q = strstr(q + 1, "\n### `")) {
        const char *name = q + 6;
        const char *close = strchr(name, '`');
        assert_non_null(close);
        if (name[0] == '$')
            continue;
        int found = 0;
        for (unsigned i = 0; !found && conf_directive_at(i, &d); i++)
            found = strlen(d.name) == (size_t)(close - name) &&
                    strncmp(d.name, name, (size_t)(close - name)) == 0;
        if (!found)
            fail_msg("docs/directives.md documents `%.*s`, which the table does not have",
                     (int)(close - name), name);
    }

    for (unsigned i = 0; i < VB__COUNT; i++) {
        const char *v = var_builtin_name((enum var_builtin)i);
        if (!v)
            continue;
        char want[96];
        snprintf(want, sizeof(want), "`$%s`", v);
        if (!strstr(doc, want))
            fail_msg("docs/directives.md does not document the variable %s", want);
    }
    static const char *const prefixes[] = {"`$http_",      "`$arg_",           "`$cookie_",
                                           "`$sent_http_", "`$upstream_http_", "`$upstream_cookie_",
                                           "`$1`"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (!strstr(doc, prefixes[i]))
            fail_msg("docs/directives.md does not document %s", prefixes[i]);
}

/* ============================================================== module table */

/* A configuration holding module `m`'s probe directive where it belongs. */
static void probe_conf(const struct conf_module *m, char *out, size_t cap)
{
    switch (m->probe_ctx) {
    case PROBE_MAIN:
        snprintf(out, cap, "events {}\n%s\n", m->probe);
        break;
    case PROBE_HTTP:
        snprintf(out, cap, "events {}\nhttp {\n%s\n}\n", m->probe);
        break;
    case PROBE_LOCATION:
        snprintf(out, cap, "events {}\nhttp { server { location / {\n%s\n} } }\n", m->probe);
        break;
    case PROBE_UPSTREAM:
        snprintf(out, cap, "events {}\nhttp { upstream u {\n%s\nserver 127.0.0.1:9; } }\n",
                 m->probe);
        break;
    }
}

static int in_directive_table(const char *name)
{
    struct conf_directive_info d;
    for (unsigned i = 0; conf_directive_at(i, &d); i++)
        if (strcmp(d.name, name) == 0)
            return 1;
    return 0;
}

/* Each word of `list`: not in the directive table, and looked up as lacking in `m`. */
static void check_lacking_words(const struct conf_module *m, const char *list, int planned)
{
    char word[64];
    for (const char *s = list; *s;) {
        size_t len = strcspn(s, " ");
        assert_true(len > 0 && len < sizeof(word));
        memcpy(word, s, len);
        word[len] = '\0';
        if (in_directive_table(word))
            fail_msg("\"%s\" is listed as lacking in %s (src/conf/modules.c) but the directive "
                     "table has it",
                     word, m->name);
        int pl = -1;
        const struct conf_module *got = conf_module_lacking(word, &pl);
        if (got != m || pl != planned)
            fail_msg("\"%s\" of %s is found in %s (planned %d)", word, m->name,
                     got ? got->name : "no module", pl);
        s += len;
        s += *s == ' ';
    }
}

/*
 * What -V claims (src/conf/modules.c) is what -t does: every module claimed
 * built has its probe directive accepted, every module claimed absent has it
 * refused with the "not implemented" message, and no directive listed as
 * lacking is in the directive table. Adding a directive family without
 * updating the module table fails here.
 */
static void test_module_table(void **state)
{
    struct fx *f = *state;
    const struct conf_module *m;
    unsigned n = 0;
    for (unsigned i = 0; (m = conf_module_at(i)) != NULL; i++, n++) {
        char conf[512];
        probe_conf(m, conf, sizeof(conf));
        int built = (m->flags & CONF_MOD_BUILT) != 0;
        struct generation *g = try_load(f, conf);
        if (built && !g)
            fail_msg("%s is claimed built, but its probe \"%s\" fails: %s", m->name, m->probe,
                     f->err);
        int inert = (m->flags & CONF_MOD_INERT) != 0;
        if (inert && !g)
            fail_msg("%s is claimed inert, but its probe \"%s\" fails: %s", m->name, m->probe,
                     f->err);
        if (!built && !inert && g)
            fail_msg("%s is claimed absent, but its probe \"%s\" loads: update "
                     "src/conf/modules.c",
                     m->name, m->probe);
        check_lacking_words(m, m->lacking, 0);
        check_lacking_words(m, m->planned, 1);
        if (built || inert)
            continue;
        char name[64];
        size_t len = strcspn(m->probe, " ;{");
        assert_true(len < sizeof(name));
        memcpy(name, m->probe, len);
        name[len] = '\0';
        int planned;
        if (conf_module_lacking(name, &planned) != m) {
            /* accepted in its neutral form only (autoindex off) */
            assert_true(in_directive_table(name));
            continue;
        }
        char want[256];
        snprintf(want, sizeof(want), "nginx directive \"%s\" is not implemented yet (%s", name,
                 m->label);
        char handler[256]; /* absent upstream modules: their handler says what to do */
        snprintf(handler, sizeof(handler), "\"%s\" is not supported (%s is not built in)", name,
                 m->label);
        if (strncmp(f->err, want, strlen(want)) != 0 &&
            strncmp(f->err, handler, strlen(handler)) != 0)
            fail_msg("%s: want \"%s...\", got: %s", m->name, want, f->err);
    }
    assert_true(n > 50);

    /* the modules nginx builds by default are all in the table, so -V can say
     * --without- for each one Switchyard lacks (nginx's auto/options) */
    static const char *const nginx_defaults[] = {
        "http_charset_module", "http_gzip_module", "http_ssi_module", "http_userid_module",
        "http_access_module", "http_auth_basic_module", "http_mirror_module",
        "http_autoindex_module", "http_geo_module", "http_map_module",
        "http_split_clients_module", "http_referer_module", "http_rewrite_module",
        "http_proxy_module", "http_fastcgi_module", "http_uwsgi_module", "http_scgi_module",
        "http_grpc_module", "http_tunnel_module", "http_memcached_module",
        "http_limit_conn_module", "http_limit_req_module", "http_empty_gif_module",
        "http_browser_module", "http_upstream_hash_module", "http_upstream_ip_hash_module",
        "http_upstream_least_conn_module", "http_upstream_least_time_module",
        "http_upstream_random_module", "http_upstream_keepalive_module",
        "http_upstream_zone_module", "http_upstream_sticky_module", "http-cache"};
    for (size_t k = 0; k < sizeof(nginx_defaults) / sizeof(nginx_defaults[0]); k++) {
        const struct conf_module *found = NULL;
        for (unsigned i = 0; (m = conf_module_at(i)) != NULL; i++)
            if (strcmp(m->name, nginx_defaults[k]) == 0)
                found = m;
        if (!found || !(found->flags & CONF_MOD_NGINX_DEFAULT))
            fail_msg("%s: missing from the module table, or not marked as nginx's default",
                     nginx_defaults[k]);
        const char *sw = conf_module_switch(found);
        if (found->flags & CONF_MOD_BUILT)
            assert_null(sw);
        else
            assert_string_equal(sw, "--without-");
    }
    for (unsigned i = 0; (m = conf_module_at(i)) != NULL; i++)
        if (strcmp(m->name, "http_ssl_module") == 0 || strcmp(m->name, "http_realip_module") == 0)
            assert_string_equal(conf_module_switch(m), "--with-");
}

/* ============================================================== errors */

static const struct {
    const char *conf;
    const char *err; /* "<C>" = DIR/sy.conf */
} error_cases[] = {
    {"events {}\nfoo;\n", "unknown directive \"foo\" in <C>:2"},
    {"events {}\nproxy_pass x;\n", "\"proxy_pass\" directive is not allowed here in <C>:2"},
    {"events {} http {\n server {\n  listen;\n } }\n",
     "invalid number of arguments in \"listen\" directive in <C>:3"},
    {"events {} http { server { location / {\n\n proxy_read_timeout 10x; } } }\n",
     "\"proxy_read_timeout\" directive invalid value in <C>:3"},
    {"events {} http {\n keepalive_timeout 5;\n keepalive_timeout 6; }\n",
     "\"keepalive_timeout\" directive is duplicate in <C>:3"},
    {"events {} http { server { listen 80 foo; } }\n", "invalid parameter \"foo\" in <C>:1"},
    {"events {} http { upstream u { server nosuch.invalid:80; } }\n",
     "host not found in upstream \"nosuch.invalid:80\" in <C>:1"},
    {"events {} http { server { location / {\n proxy_pass http://nosuch.invalid/; } } }\n",
     "host not found in upstream \"nosuch.invalid\" in <C>:2"},
    {"events {} http { server { location / { proxy_pass http://; } } }\n",
     "no host in upstream \"\" in <C>:1"},
    {"events {} http { server { location / { return 200 $foo; } } }\n",
     "unknown \"foo\" variable in <C>:1"},
    {"events {} http {\n server { location / { proxy_pass http://u:80; } }\n upstream u { server "
     "127.0.0.1; } }\n",
     "upstream \"u\" may not have port 80 in <C>:2"},
    {"events {} http { server { location ~ ^/x {\n proxy_pass http://127.0.0.1:9/; } } }\n",
     "\"proxy_pass\" cannot have URI part in location given by regular expression, or inside "
     "named location, or inside \"if\" statement, or inside \"limit_except\" block in <C>:2"},
    {"events {} http { server { location @n { proxy_pass http://127.0.0.1:9/x; } } }\n",
     "\"proxy_pass\" cannot have URI part in location given by regular expression, or inside "
     "named location, or inside \"if\" statement, or inside \"limit_except\" block in <C>:1"},
    {"events {} http { server { location / { if ($uri) { proxy_pass http://127.0.0.1:9/x; } } } "
     "}\n",
     "\"proxy_pass\" cannot have URI part in location given by regular expression, or inside "
     "named location, or inside \"if\" statement, or inside \"limit_except\" block in <C>:1"},
    {"events {} http { server {\n location /x {}\n location /x {} } }\n",
     "duplicate location \"/x\" in <C>:3"},
    {"events {} http { server {\n listen 80 default_server; }\n server { listen 80 "
     "default_server; } }\n",
     "a duplicate default server for 0.0.0.0:80 in <C>:3"},
    {"events {} http { server { location ~ (foo { } } }\n",
     "pcre2_compile() failed: missing closing parenthesis in \"(foo\" in <C>:1"},
    {"events {} http { server { return x; } }\n", "invalid return code \"x\" in <C>:1"},
    {"events {} http { server { return 1000; } }\n", "invalid return code \"1000\" in <C>:1"},
    {"http { }\n", "no \"events\" section in configuration"},
    {"events {} http {\n server {\n  listen 8443 ssl;\n } }\n",
     "no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive in <C>:2"},
    {"events {} events {}\n", "\"events\" directive is duplicate in <C>:1"},
    {"events {} http {} http {}\n", "\"http\" directive is duplicate in <C>:1"},
    {"events {} http daemon;\n", "directive \"http\" has no opening \"{\" in <C>:1"},
    {"events {} daemon off {}\n", "directive \"daemon\" is not terminated by \";\" in <C>:1"},
    {"daemon xx; events {}\n",
     "invalid value \"xx\" in \"daemon\" directive, it must be \"on\" or \"off\" in <C>:1"},
    {"events { worker_connections x; }\n", "invalid number \"x\" in <C>:1"},
    {"events { use kqueue; }\n", "invalid event type \"kqueue\" in <C>:1"},
    {"worker_processes x; events {}\n", "\"worker_processes\" directive invalid value in <C>:1"},
    {"events {} http { keepalive_requests x; }\n",
     "\"keepalive_requests\" directive invalid number in <C>:1"},
    {"events {} http { server { listen 0; } }\n",
     "invalid port in \"0\" of the \"listen\" directive in <C>:1"},
    {"events {} http { server { listen nosuch.invalid:80; } }\n",
     "host not found in \"nosuch.invalid:80\" of the \"listen\" directive in <C>:1"},
    {"events {} http { server { listen unix:/tmp/s; } }\n",
     "unix domain sockets are not supported in \"unix:/tmp/s\" of the \"listen\" directive in "
     "<C>:1"},
    {"events {} http { server { listen 80; listen 80; } }\n",
     "a duplicate listen 0.0.0.0:80 in <C>:1"},
    {"events {} http { server { listen 80 backlog=5; } server { listen 80 backlog=6; } }\n",
     "duplicate listen options for 0.0.0.0:80 in <C>:1"},
    {"events {} http { server { location = /x { location /y {} } } }\n",
     "location \"/y\" cannot be inside the exact location \"/x\" in <C>:1"},
    {"events {} http { server { location /x { location /y {} } } }\n",
     "location \"/y\" is outside location \"/x\" in <C>:1"},
    {"events {} http { server { location /x { location @y {} } } }\n",
     "named location \"@y\" can be on the server level only in <C>:1"},
    {"events {} http { server { location xx /x { } } }\n",
     "invalid location modifier \"xx\" in <C>:1"},
    {"events {} http { server { location / { proxy_pass ftp://x; } } }\n",
     "invalid URL prefix in <C>:1"},
    {"events {} http { server { location / { proxy_pass http://x:99999; } } }\n",
     "invalid port in upstream \"x:99999\" in <C>:1"},
    {"events {} http { upstream u { } }\n", "no servers are inside upstream in <C>:1"},
    {"events {} http { upstream u { server 127.0.0.1 weight=0; } }\n",
     "invalid parameter \"weight=0\" in <C>:1"},
    {"events {} http { upstream u { server 127.0.0.1; } upstream U { server 127.0.0.1; } }\n",
     "duplicate upstream \"U\" in <C>:1"},
    {"events {} http { server { location / { set $host 1; } } }\n",
     "the duplicate \"host\" variable in <C>:1"},
    {"events {} http { server { set x 1; } }\n", "invalid variable name \"x\" in <C>:1"},
    {"events {} http { server { return 200 \"${x\"; } }\n",
     "the closing bracket in \"x\" variable is missing in <C>:1"},
    {"events {} http { server { return 200 \"a$-\"; } }\n", "invalid variable name in <C>:1"},
    {"events {} http { server { location /x { if ($a = b c) { return 200; } } } }\n",
     "invalid condition \"$a\" in <C>:1"},
    {"events {} http { server { location /x { if ($uri ! b) { return 200; } } } }\n",
     "unexpected \"!\" in condition in <C>:1"},
    {"events {} http { server { location /x { if (-q /b) { return 200; } } } }\n",
     "invalid condition \"-q\" in <C>:1"},
    {"events {} http { server { if ($uri) { add_header a b; } } }\n",
     "\"add_header\" directive is not allowed here in <C>:1"},
    {"events {} http { server { location / { if ($uri) { if ($uri) { } } } } }\n",
     "\"if\" directive is not allowed here in <C>:1"},
    {"events {} http { map $uri $a { default 1; default 2; } }\n",
     "duplicate default map parameter in <C>:1"},
    {"events {} http { map $uri $a {\n X 1;\n x 2; } }\n", "conflicting parameter \"x\" in <C>:3"},
    {"events {} http { map $uri $a { x 1 2; } }\n",
     "invalid number of the map parameters in <C>:1"},
    {"events {} http { map $uri a { x 1; } }\n", "invalid variable name \"a\" in <C>:1"},
    {"events {} http { map $uri $a { hostnames; *.x.* 1; } }\n",
     "invalid hostname or wildcard \"*.x.*\" in <C>:1"},
    {"events {} http { map $uri $a { x { } } }\n", "unexpected \"{\" in <C>:1"},
    {"events {} http { log_format combined x; }\n",
     "duplicate \"log_format\" name \"combined\" in <C>:1"},
    {"events {} http { log_format a escape=foo x; }\n",
     "unknown log format escaping \"foo\" in <C>:1"},
    {"events {} http { access_log /tmp/x nosuch; }\n", "unknown log format \"nosuch\" in <C>:1"},
    {"events {} http { access_log /tmp/x combined flush=1s; }\n",
     "no buffer is defined for access_log \"/tmp/x\" in <C>:1"},
    {"events {} http { access_log off foo; }\n", "invalid parameter \"foo\" in <C>:1"},
    {"events {} http { error_page 404 =x /x; }\n", "invalid value \"=x\" in <C>:1"},
    {"events {} http { error_page 200 /x; }\n",
     "value \"200\" must be between 300 and 599 in <C>:1"},
    {"events {} http { add_header a b c; }\n", "invalid parameter \"c\" in <C>:1"},
    {"events {} http { proxy_http_version 2.0; }\n", "invalid value \"2.0\" in <C>:1"},
    {"events {} http { proxy_next_upstream foo; }\n", "invalid value \"foo\" in <C>:1"},
    {"events {} http { index \"\"; }\n", "index \"\" in \"index\" directive is invalid in <C>:1"},
    {"events {} http { server { try_files a =1000; } }\n", "invalid code \"=1000\" in <C>:1"},
    {"events {} http { disable_symlinks off from=x; }\n",
     "\"from=\" cannot be used with \"off\" parameter in <C>:1"},
    {"events {} http { large_client_header_buffers 0 8k; }\n",
     "\"large_client_header_buffers\" directive invalid value in <C>:1"},
    {"events {} http { server { location / { proxy_redirect default; } } }\n",
     "\"proxy_redirect default\" should be placed after the \"proxy_pass\" directive in <C>:1"},
    {"events {} http { server { location / { proxy_pass http://$host; proxy_redirect default; } } "
     "}\n",
     "\"proxy_redirect default\" cannot be used with \"proxy_pass\" directive with variables in "
     "<C>:1"},
    {"events {} http { server { location / { proxy_pass http://127.0.0.1; proxy_pass "
     "http://127.0.0.1; } } }\n",
     "\"proxy_pass\" directive is duplicate in <C>:1"},
    {"events {} http { server { location /x { alias /tmp; root /x; } } }\n",
     "\"root\" directive is duplicate, \"alias\" directive was specified earlier in <C>:1"},
    {"events {} http { server { server_name www.*.x; } server { server_name b; } }\n",
     "invalid server name or wildcard \"www.*.x\" on 0.0.0.0:80"},
    {"events {} http { server { server_name *; } }\n", "server name \"*\" is invalid in <C>:1"},
    {"events {} http { proxy_cache zone; }\n", "zero size shared memory zone \"zone\""},
    {"events {} http {\n proxy_cache zone;\n server { }\n}\n",
     "\"proxy_cache\" zone \"zone\" is unknown in <C>:4"},
    {"events {} http { proxy_cache off; proxy_cache off; }\n",
     "\"proxy_cache\" directive is duplicate in <C>:1"},
    {"events {} http { proxy_cache_path /tmp/c levels=3 keys_zone=c:1m; }\n",
     "invalid \"levels\" \"levels=3\" in <C>:1"},
    {"events {} http { proxy_cache_path /tmp/c levels=1:2:2:2 keys_zone=c:1m; }\n",
     "invalid \"levels\" \"levels=1:2:2:2\" in <C>:1"},
    {"events {} http { proxy_cache_path /tmp/c keys_zone=c:1k; }\n",
     "keys zone \"keys_zone=c:1k\" is too small in <C>:1"},
    {"events {} http { proxy_cache_path /tmp/c keys_zone=c; }\n",
     "invalid keys zone size \"keys_zone=c\" in <C>:1"},
    {"events {} http { proxy_cache_path /tmp/c levels=1:2; }\n",
     "\"proxy_cache_path\" must have \"keys_zone\" parameter in <C>:1"},
    {"events {} http { proxy_cache_path /tmp/c keys_zone=c:1m use_temp_path=x; }\n",
     "invalid use_temp_path value \"use_temp_path=x\", it must be \"on\" or \"off\" in <C>:1"},
    {"events {} http { proxy_cache_path /tmp/c keys_zone=c:1m inactive=1x; }\n",
     "invalid inactive value \"inactive=1x\" in <C>:1"},
    {"events {} http { proxy_cache_path /tmp/c keys_zone=c:1m max_size=x; }\n",
     "invalid max_size value \"max_size=x\" in <C>:1"},
    {"events {} http { proxy_cache_path /tmp/c keys_zone=c:1m loader_sleep=x; }\n",
     "invalid loader_sleep value \"loader_sleep=x\" in <C>:1"},
    {"events {} http { proxy_cache_path /tmp/c keys_zone=c:1m foo=1; }\n",
     "invalid parameter \"foo=1\" in <C>:1"},
    {"events {} http { proxy_cache_path /tmp/c keys_zone=c:1m; proxy_cache_path /tmp/d "
     "keys_zone=c:1m; }\n",
     "duplicate zone \"c\" in <C>:1"},
    {"events {} http {\n proxy_cache_path /tmp/c keys_zone=c:1m;\n proxy_cache_path /tmp/c/ "
     "keys_zone=d:1m;\n}\n",
     "the same path name \"/tmp/c\" used in <C>:2 and in <C>:3"},
    {"events {} http { limit_req_zone $uri zone=c:1m rate=1r/s; proxy_cache c; }\n",
     "the shared memory zone \"c\" is already declared for a different use in <C>:1"},
    {"events {} http { proxy_cache_valid 99 1m; }\n", "invalid status \"99\" in <C>:1"},
    {"events {} http { proxy_cache_valid 200 1500ms; }\n",
     "invalid time value \"1500ms\" in <C>:1"},
    {"events {} http { proxy_cache_methods GET PUT; }\n", "invalid value \"PUT\" in <C>:1"},
    {"events {} http { proxy_cache_use_stale error foo; }\n", "invalid value \"foo\" in <C>:1"},
    {"events {} http { proxy_cache_key a; proxy_cache_key b; }\n",
     "\"proxy_cache_key\" directive is duplicate in <C>:1"},
    {"events {} http { proxy_cache_lock_age 1x; }\n",
     "\"proxy_cache_lock_age\" directive invalid value in <C>:1"},
    {"events {} http { server { location / { if ($uri) { proxy_cache off; } } } }\n",
     "\"proxy_cache\" directive is not allowed here in <C>:1"},
    {"events {} http { server { listen 80 ssl; ssl_certificate /x; } }\n",
     "no \"ssl_certificate_key\" is defined for certificate \"/x\" in <C>:1"},
    {"events {} http { limit_req zone=x; }\n", "unknown limit_req_zone \"x\" in <C>:1"},
    {"events {} http {\n limit_conn a 1;\n limit_conn_zone $remote_addr zone=a:64k;\n"
     " limit_conn_zone $host zone=a:64k;\n}\n",
     "limit_conn_zone \"a\" is already bound to key \"$remote_addr\" in <C>:4"},
    {"events {} http { limit_req_zone $remote_addr zone=a:1m rate=1r/s;\n limit_conn a 1; }\n",
     "the shared memory zone \"a\" is already declared for a different use in <C>:2"},
    {"events {} http { limit_req_zone $remote_addr zone=a:16k rate=1r/s; }\n",
     "zone \"zone=a:16k\" is too small in <C>:1"},
    {"events {} http { limit_req_zone $remote_addr zone=a:1m rate=1r/h; }\n",
     "invalid rate \"rate=1r/h\" in <C>:1"},
    {"events {} http { limit_req_zone $remote_addr zone=a:1m rate=1r/s;\n"
     " limit_req zone=a burst=x; }\n",
     "invalid burst value \"burst=x\" in <C>:2"},
    {"events {} http { limit_conn_zone $remote_addr zone=a:1m;\n limit_conn a 0; }\n",
     "invalid number of connections \"0\" in <C>:2"},
    {"events {} http { limit_conn_status 302; }\n",
     "value must be between 400 and 599 in <C>:1"},
    {"events {} http { server { location / { include nosuch.conf; } } }\n",
     "open() \"<D>nosuch.conf\" failed (2: No such file or directory) in <C>:1"},
    /* rewrite, break, internal */
    {"events {} http { server { rewrite ^/a \"\" last; } }\n", "empty replacement in <C>:1"},
    {"events {} http { server { rewrite ^/(a /x; } }\n",
     "pcre2_compile() failed: missing closing parenthesis in \"^/(a\" in <C>:1"},
    {"events {} http { server { rewrite ^/a /x foo; } }\n", "invalid parameter \"foo\" in <C>:1"},
    {"events {} http { server { rewrite ^/a /x LAST; } }\n", "invalid parameter \"LAST\" in <C>:1"},
    {"events {} http { server { rewrite ^/a /x last x; } }\n",
     "invalid number of arguments in \"rewrite\" directive in <C>:1"},
    {"events {} http { server { rewrite ^/a; } }\n",
     "invalid number of arguments in \"rewrite\" directive in <C>:1"},
    {"events {} http { rewrite ^/a /x; }\n", "\"rewrite\" directive is not allowed here in <C>:1"},
    {"events {} http { server { location / { rewrite ^ $nosuch; } } }\n",
     "unknown \"nosuch\" variable in <C>:1"},
    {"events {} http { server { break x; } }\n",
     "invalid number of arguments in \"break\" directive in <C>:1"},
    {"events {} http { break; }\n", "\"break\" directive is not allowed here in <C>:1"},
    {"events {} http { server { internal; } }\n",
     "\"internal\" directive is not allowed here in <C>:1"},
    {"events {} http { server { location / { internal; internal; } } }\n",
     "\"internal\" directive is duplicate in <C>:1"},
    {"events {} http { server { location / { if ($uri) { internal; } } } }\n",
     "\"internal\" directive is not allowed here in <C>:1"},
    {"events {} http { server { location / { internal x; } } }\n",
     "invalid number of arguments in \"internal\" directive in <C>:1"},
    /* request handling, redirects, closing */
    {"events {} http { server { location / { underscores_in_headers on; } } }\n",
     "\"underscores_in_headers\" directive is not allowed here in <C>:1"},
    {"events {} http { server { location / { merge_slashes off; } } }\n",
     "\"merge_slashes\" directive is not allowed here in <C>:1"},
    {"events {} http { ignore_invalid_headers yes; }\n",
     "invalid value \"yes\" in \"ignore_invalid_headers\" directive, it must be \"on\" or "
     "\"off\" in <C>:1"},
    {"events {} http { merge_slashes on; merge_slashes off; }\n",
     "\"merge_slashes\" directive is duplicate in <C>:1"},
    {"events {} http { server { location / { if ($uri) { absolute_redirect off; } } } }\n",
     "\"absolute_redirect\" directive is not allowed here in <C>:1"},
    {"events {} http { lingering_close sometimes; }\n", "invalid value \"sometimes\" in <C>:1"},
    {"events {} http { lingering_time 10x; }\n",
     "\"lingering_time\" directive invalid value in <C>:1"},
    {"events {} http { lingering_timeout 1s; lingering_timeout 2s; }\n",
     "\"lingering_timeout\" directive is duplicate in <C>:1"},
    /* accepted, kept nowhere */
    {"events {} http { types_hash_max_size x; }\n",
     "\"types_hash_max_size\" directive invalid number in <C>:1"},
    {"events {} http { types_hash_max_size 1; types_hash_max_size 2; }\n",
     "\"types_hash_max_size\" directive is duplicate in <C>:1"},
    {"events {} http { server { server_names_hash_bucket_size 64; } }\n",
     "\"server_names_hash_bucket_size\" directive is not allowed here in <C>:1"},
    {"events {} http { server { location / { map_hash_max_size 1; } } }\n",
     "\"map_hash_max_size\" directive is not allowed here in <C>:1"},
    {"events {} http { msie_padding maybe; }\n",
     "invalid value \"maybe\" in \"msie_padding\" directive, it must be \"on\" or \"off\" in "
     "<C>:1"},
    {"events {} http { server { log_not_found on; log_not_found off; } }\n",
     "\"log_not_found\" directive is duplicate in <C>:1"},
    {"events {} http { output_buffers 0 32k; }\n",
     "\"output_buffers\" directive invalid value in <C>:1"},
    {"events {} http { postpone_output x; }\n",
     "\"postpone_output\" directive invalid value in <C>:1"},
    {"events {} http { client_body_in_file_only on; }\n",
     "\"client_body_in_file_only\" directive is not supported except \"off\" in <C>:1"},
    {"events {} http { client_body_in_file_only x; }\n", "invalid value \"x\" in <C>:1"},
    {"events {} http { open_file_cache foo; }\n",
     "invalid \"open_file_cache\" parameter \"foo\" in <C>:1"},
    {"events {} http { open_file_cache off; open_file_cache off; }\n",
     "\"open_file_cache\" directive is duplicate in <C>:1"},
    {"events {} http { open_log_file_cache max=10 bar; }\n",
     "invalid \"open_log_file_cache\" parameter \"bar\" in <C>:1"},
    /* nginx directives Switchyard lacks: explained, not "unknown" (src/conf/modules.c) */
    {"events {} http { ssi maybe; }\n",
     "invalid value \"maybe\" in \"ssi\" directive, it must be \"on\" or \"off\" in <C>:1"},
    {"events {} http { ssi_value_length lots; }\n",
     "\"ssi_value_length\" directive invalid value in <C>:1"},
    {"events {} http { ssi_types; }\n",
     "invalid number of arguments in \"ssi_types\" directive in <C>:1"},
    {"events {} http { server { if ($uri) { ssi_types text/css; } } }\n",
     "\"ssi_types\" directive is not allowed here in <C>:1"},
    {"events {} http { gzip_types; }\n",
     "invalid number of arguments in \"gzip_types\" directive in <C>:1"},
    {"events {} http { gzip_comp_level 10; }\n",
     "value must be between 1 and 9 in <C>:1"},
    {"events {} http { gzip_window 3k; }\n",
     "\"gzip_window\" directive must be 512, 1k, 2k, 4k, 8k, 16k, or 32k in <C>:1"},
    {"events {} http { gzip_proxied sometimes; }\n", "invalid value \"sometimes\" in <C>:1"},
    {"events {} http { gzip_static maybe; }\n", "invalid value \"maybe\" in <C>:1"},
    {"events {} http { gzip_disable \"(\"; }\n",
     "pcre2_compile() failed: missing closing parenthesis in \"(\" in <C>:1"},
    {"events {} http { brotli_comp_level 12; }\n",
     "value must be between 0 and 11 in <C>:1"},
    {"events {} http { server { if ($uri) { gzip_types text/css; } } }\n",
     "\"gzip_types\" directive is not allowed here in <C>:1"},
    /* access control (src/conf/access.c), nginx's messages */
    {"events {} http { server { location / { limit_except GET FOO { deny all; } } } }\n",
     "invalid method \"FOO\" in <C>:1"},
    {"events {} http { server { location / {\n limit_except GET { }\n limit_except POST { } } } }\n",
     "\"limit_except\" directive is duplicate in <C>:3"},
    {"events {} http { server { location / { limit_except GET { auth_request /a; } } } }\n",
     "\"auth_request\" directive is not allowed here in <C>:1"},
    {"events {} http { server { limit_except GET { } } }\n",
     "\"limit_except\" directive is not allowed here in <C>:1"},
    {"events {} http { allow 10.0.0.256; }\n", "invalid parameter \"10.0.0.256\" in <C>:1"},
    {"events {} http { deny example.com; }\n", "invalid parameter \"example.com\" in <C>:1"},
    {"events {} http { server { location / { if ($uri) { deny all; } } } }\n",
     "\"deny\" directive is not allowed here in <C>:1"},
    {"events {} http { auth_basic a; auth_basic b; }\n",
     "\"auth_basic\" directive is duplicate in <C>:1"},
    {"events {} http { auth_basic_user_file a; auth_basic_user_file b; }\n",
     "\"auth_basic_user_file\" directive is duplicate in <C>:1"},
    {"events {} http { satisfy some; }\n", "invalid value \"some\" in <C>:1"},
    {"events {} http { auth_request /a; auth_request off; }\n",
     "\"auth_request\" directive is duplicate in <C>:1"},
    {"events {} http { auth_request_set user $upstream_http_x_user; }\n",
     "invalid variable name \"user\" in <C>:1"},
    {"events {} http { auth_request_set $remote_addr x; }\n",
     "the duplicate \"remote_addr\" variable in <C>:1"},
    {"events {} stream { }\n",
     "nginx directive \"stream\" is not implemented yet (ngx_stream_module); remove it to run "
     "this configuration in <C>:1"},
    {"events {} http { server { location / { fastcgi_pass 127.0.0.1:9000; } } }\n",
     "\"fastcgi_pass\" is not supported (ngx_http_fastcgi_module is not built in): Switchyard "
     "speaks HTTP to upstreams, not FastCGI: put the application behind an HTTP server (for "
     "PHP: php-fpm behind Apache or Caddy, or FrankenPHP) and use \"proxy_pass\" in <C>:1"},
    {"events {} http { server { ssl on; } }\n",
     "no \"ssl_certificate\" is defined for the \"ssl\" directive in <C>:1"},
    {"events {} http { server { ssl on; ssl off; } }\n", "\"ssl\" directive is duplicate in <C>:1"},
    /* several problems: every one, a line each */
    {"events {} http {\n nope1;\n server { nope2; location / { nope3; } }\n}\n",
     "unknown directive \"nope1\" in <C>:2\nunknown directive \"nope2\" in <C>:3\n"
     "unknown directive \"nope3\" in <C>:3"},
    {"events {} http { gzipp on; }\n", "unknown directive \"gzipp\" in <C>:1"},
    /* *_temp_path: nginx's checks (ngx_conf_set_path_slot, ngx_add_path) */
    {"events {} http { proxy_temp_path a 1 2;\n proxy_temp_path b; }\n",
     "\"proxy_temp_path\" directive is duplicate in <C>:2"},
    {"events {} http { proxy_temp_path a 1 2;\n client_body_temp_path a/ 2 2; }\n",
     "the same path name \"<D>a\" in <C>:1 has the different levels than in <C>:2"},
    {"events {} http { scgi_temp_path a 11; }\n",
     "\"scgi_temp_path\" directive invalid value in <C>:1"},
    {"events {} http { uwsgi_temp_path a 5 6; }\n",
     "\"uwsgi_temp_path\" directive invalid value in <C>:1"},
    {"events {} http { fastcgi_temp_path a 0; }\n",
     "\"fastcgi_temp_path\" directive invalid value in <C>:1"},
    {"events {} http { client_body_temp_path a x; }\n",
     "\"client_body_temp_path\" directive invalid value in <C>:1"},
    {"events {} http { proxy_temp_path a 1 2 3 4; }\n",
     "invalid number of arguments in \"proxy_temp_path\" directive in <C>:1"},
    {"events {} http { server { location / { if ($uri) { proxy_temp_path a; } } } }\n",
     "\"proxy_temp_path\" directive is not allowed here in <C>:1"},
    {"proxy_temp_path a; events {}\n",
     "\"proxy_temp_path\" directive is not allowed here in <C>:1"},
    /* accepted for compatibility: nginx's argument checks */
    {"events {} http { connection_pool_size 100; }\n",
     "the pool size must be no less than 112 in <C>:1"},
    {"events {} http { request_pool_size 120; }\n",
     "the pool size must be a multiple of 16 in <C>:1"},
    {"events {} http { server { location / { connection_pool_size 512; } } }\n",
     "\"connection_pool_size\" directive is not allowed here in <C>:1"},
    {"thread_pool x threads=0; events {}\n", "invalid threads value \"threads=0\" in <C>:1"},
    {"thread_pool x max_queue=1; events {}\n",
     "\"thread_pool\" must have \"threads\" parameter in <C>:1"},
    {"thread_pool d threads=1;\nthread_pool d threads=2; events {}\n",
     "duplicate thread pool \"d\" in <C>:2"},
    {"worker_priority x; events {}\n", "\"worker_priority\" directive invalid number in <C>:1"},
    {"worker_priority 1; worker_priority 2; events {}\n",
     "\"worker_priority\" directive is duplicate in <C>:1"},
    {"lock_file a; lock_file b; events {}\n", "\"lock_file\" directive is duplicate in <C>:1"},
    {"debug_points stop; debug_points x; events {}\n",
     "\"debug_points\" directive is duplicate in <C>:1"},
    {"debug_points x; events {}\n", "invalid value \"x\" in <C>:1"},
    {"timer_resolution x; events {}\n", "\"timer_resolution\" directive invalid value in <C>:1"},
    {"events { accept_mutex_delay x; }\n",
     "\"accept_mutex_delay\" directive invalid value in <C>:1"},
    {"events {} http { aio maybe; }\n", "\"aio\" directive invalid value in <C>:1"},
    {"events {} http { directio x; }\n", "\"directio\" directive invalid value in <C>:1"},
    {"events {} http { satisfy some; }\n", "invalid value \"some\" in <C>:1"},
    {"events {} http { proxy_ignore_headers Server; }\n", "invalid value \"Server\" in <C>:1"},
    {"events {} http { recursive_error_pages on; }\n",
     "\"recursive_error_pages\" directive is not supported except \"off\" in <C>:1"},
    {"events {} http { proxy_force_ranges on; }\n",
     "\"proxy_force_ranges\" directive is not supported except \"off\" in <C>:1"},
    {"events {} http { max_ranges x; }\n",
     "\"max_ranges\" directive invalid number in <C>:1"},
    {"events {} http { chunked_transfer_encoding maybe; }\n",
     "invalid value \"maybe\" in \"chunked_transfer_encoding\" directive, it must be \"on\" or "
     "\"off\" in <C>:1"},
    {"events {} http { server { if ($uri) { rewrite_log on; rewrite_log off; } } }\n",
     "\"rewrite_log\" directive is duplicate in <C>:1"},
};

static void test_errors(void **state)
{
    struct fx *f = *state;
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        char want[1024];
        expand(f, error_cases[i].err, want, sizeof(want));
        if (try_load(f, error_cases[i].conf))
            fail_msg("case %zu loaded, expected: %s", i, want);
        if (strcmp(f->err, want) != 0)
            fail_msg("case %zu\n  want: %s\n  got:  %s", i, want, f->err);
    }
}

static void test_warnings(void **state)
{
    struct fx *f = *state;
    char want[1024];
    struct generation *g = load(f, "events {} http {\n types { text/html html; text/x html; }\n"
                                   " index a /b c;\n"
                                   " server { server_name a/b; }\n"
                                   " proxy_next_upstream error error;\n}\n");
    assert_non_null(g);
    expand(f,
           "duplicate extension \"html\", content type: \"text/x\", previous content type: "
           "\"text/html\" in <C>:2\n"
           "only the last index in \"index\" directive should be absolute in <C>:3\n"
           "server name \"a/b\" has suspicious symbols in <C>:4\n"
           "duplicate value \"error\" in <C>:5\n",
           want, sizeof(want));
    assert_string_equal(f->warn, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_main_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_main_directives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_g_directives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_defaults_after_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_directives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeouts_inherit_and_explicit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_and_servers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicting_names_warn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_inheritance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proxy_redirect_inheritance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proxy_pass_targets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upstream_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewrite_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_types_and_mime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ssl_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http2_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ssl_client_verify_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misc_proxy_directives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump, setup, teardown),
        cmocka_unit_test_setup_teardown(test_regexes_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewrite_directive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_flags_defaults_and_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accepted_directives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_every_file_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_docs_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_module_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_warnings, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
