/*
 * absent_modules.c - directives of the upstream modules Switchyard does not
 * have (FastCGI, uwsgi, SCGI, gRPC, memcached).
 *
 * Real configurations carry their tuning directives where nothing uses them
 * (`fastcgi_buffers` in an http block of a site that only proxies, Debian's
 * `fastcgi_params` included by habit). Those are accepted, and `-t` says
 * once per module that they have no effect. The handler of such a module
 * (`fastcgi_pass`, ...) is what would need it: that one is an error that
 * names the module and says what to do instead.
 */
#include "conf/absent_modules.h"

#include <string.h>

struct absent_module {
    const char *label;   /* nginx's module name, as conf_module.label */
    const char *handler; /* the directive that would need the module (NULL: none) */
    const char *instead; /* what to do, for the handler's error; or why nothing is lost */
    unsigned ctx;        /* blocks its directives may be in */
};

#define HTTP_BLOCKS (CTX_HTTP | CTX_SERVER | CTX_LOCATION | CTX_SIF | CTX_LIF)

static const struct absent_module absent[] = {
    {"ngx_http_fastcgi_module", "fastcgi_pass",
     "Switchyard speaks HTTP to upstreams, not FastCGI: put the application behind an HTTP "
     "server (for PHP: php-fpm behind Apache or Caddy, or FrankenPHP) and use \"proxy_pass\"",
     HTTP_BLOCKS},
    {"ngx_http_uwsgi_module", "uwsgi_pass",
     "Switchyard speaks HTTP to upstreams, not uwsgi: start uWSGI with \"--http-socket\" (or the "
     "application with gunicorn) and use \"proxy_pass\"",
     HTTP_BLOCKS},
    {"ngx_http_scgi_module", "scgi_pass",
     "Switchyard speaks HTTP to upstreams, not SCGI: serve the application over HTTP and use "
     "\"proxy_pass\"",
     HTTP_BLOCKS},
    {"ngx_http_grpc_module", "grpc_pass",
     "Switchyard's upstreams speak HTTP/1.1, which gRPC cannot use: pass gRPC through a proxy "
     "that speaks HTTP/2 to upstreams",
     HTTP_BLOCKS},
    {"ngx_http_memcached_module", "memcached_pass",
     "Switchyard does not read responses from memcached: serve them from the application "
     "with \"proxy_pass\"",
     HTTP_BLOCKS},
    /* HTTP/3 needs no handler: a client that cannot use it uses HTTP/2 or
     * HTTP/1.1 on the TCP listener (an Alt-Svc header only makes browsers
     * try QUIC first and fall back). */
    {"ngx_http_v3_module", NULL, "HTTP/3 (QUIC) is not built in: clients use HTTP/2 or HTTP/1.1",
     HTTP_BLOCKS | CTX_MAIN},
};

#define NABSENT (sizeof(absent) / sizeof(absent[0]))

int absent_module_directive(struct conf_parser *p, const struct conf_node *n, unsigned ctx,
                            const char *label)
{
    const struct absent_module *am = NULL;
    unsigned idx = 0;
    for (unsigned i = 0; i < NABSENT; i++)
        if (strcmp(absent[i].label, label) == 0) {
            am = &absent[i];
            idx = i;
        }
    if (!am)
        return 0;
    if (am->handler && strcmp(n->name, am->handler) == 0) {
        p->node = n;
        conf_err(p, "\"%s\" is not supported (%s is not built in): %s", n->name, label,
                 am->instead);
        return -1;
    }
    if (!(ctx & am->ctx)) {
        p->node = n;
        conf_err(p, "\"%s\" directive is not allowed here", n->name);
        return -1;
    }
    struct absent_use *u = &p->absent[idx];
    if (u->count++ == 0) {
        u->first = n;
        u->label = label;
    }
    return 1;
}

void absent_module_notes(struct conf_parser *p)
{
    for (unsigned i = 0; i < NABSENT; i++) {
        const struct absent_use *u = &p->absent[i];
        if (u->count == 0)
            continue;
        p->node = u->first;
        if (!absent[i].handler && u->count == 1)
            conf_warn_node(p, "\"%s\" has no effect: %s", u->first->name, absent[i].instead);
        else if (!absent[i].handler)
            conf_warn_node(p, "\"%s\" and %u more directives of %s have no effect: %s",
                           u->first->name, u->count - 1, u->label, absent[i].instead);
        else if (u->count == 1)
            conf_warn_node(p, "\"%s\" has no effect: %s is not built in", u->first->name,
                           u->label);
        else
            conf_warn_node(p,
                           "\"%s\" and %u more directives of %s have no effect: the module is not "
                           "built in",
                           u->first->name, u->count - 1, u->label);
    }
    p->node = NULL;
}
