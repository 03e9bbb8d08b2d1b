/*
 * phases.c - the protocol-neutral request phases (see phases.h): server
 * and location routing, realip, the rewrite module (rewrite, return, set,
 * if), limit_req/limit_conn, error pages and internal redirects, local
 * responses, static files, and the one end-of-request path.
 *
 * Everything here talks to the client through the stream operations
 * (stream.h); nothing here knows HTTP/1 or HTTP/2.
 */
#include "http/phases.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/net.h"
#include "http/access.h"
#include "http/access_log.h"
#include "http/compress.h"
#include "http/filter.h"
#include "http/autoindex.h"
#include "http/limit_conn.h"
#include "http/limit_req.h"
#include "http/realip.h"
#include "http/empty_gif.h"
#include "http/stub_status.h"
#include "http/status_page.h"
#include "http/response.h"
#include "http/rewrite_eval.h"
#include "http/static.h"
#include "http/subrequest.h"
#include "http/vars_eval.h"
#include "conf/runtime.h"
#include "tls/tls.h"
#include "http/metrics_http.h"

#define HTTP_MAX_INTERNAL_REDIRECTS 10

void (*http_proxy_handler)(struct client_stream *st);

/* What run_rewrite() tells its caller. */
enum rw_result {
    RW_CONTINUE = 0,            /* ops done; go on */
    RW_RESPONDED,               /* a response was produced (or the stream ended) */
    RW_RESEARCH,                /* "rewrite ... last": search the location again */
    RW_STOP,                    /* "break": stop rewriting, stay in this location */
};

static void find_location_and_run(struct client_stream *s);
static void run_handler(struct client_stream *s);
static enum rw_result run_rewrite(struct client_stream *s, const struct rw_op *op);
static void send_local(struct client_stream *s, const char *body, size_t len, int fd, off_t off,
                       off_t file_len);

const struct sockaddr *client_conn_local(struct client_conn *cc)
{
    if (cc->locallen == 0) {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        if (net_local_addr(cc->c.h.fd, &ss, &len) == 0 && len) {
            memcpy(&cc->local, &ss, len < sizeof(cc->local) ? len : sizeof(cc->local));
            cc->locallen = len < sizeof(cc->local) ? len : sizeof(cc->local);
        }
    }
    return &cc->local.sa;
}

void stream_log_ctx(struct client_stream *s, char *out, size_t cap)
{
    char ip[64];
    net_ip_str(&realip_client(s)->sa, ip, sizeof(ip)); /* the real client, as nginx */
    struct request *r = &s->req;
    int n = snprintf(out, cap, ", client: %s", ip);
    if (n < 0 || (size_t)n >= cap)
        return;
    if (s->req_active && r->srv && r->srv->nnames && r->srv->names[0].name.len)
        n += snprintf(out + n, cap - (size_t)n, ", server: %.*s", (int)r->srv->names[0].name.len,
                      r->srv->names[0].name.p);
    else
        n += snprintf(out + n, cap - (size_t)n, ", server: ");
    if ((size_t)n >= cap)
        return;
    if (s->req_active && r->request_line.len)
        n += snprintf(out + n, cap - (size_t)n, ", request: \"%.*s\"",
                      (int)(r->request_line.len > 1024 ? 1024 : r->request_line.len),
                      r->request_line.p);
    if ((size_t)n >= cap)
        return;
    if (s->req_active && subrequest_is(s)) /* nginx names the sub-request's URI */
        n += snprintf(out + n, cap - (size_t)n, ", subrequest: \"%.*s\"",
                      (int)(r->uri.len > 1024 ? 1024 : r->uri.len), r->uri.p);
    if ((size_t)n >= cap)
        return;
    if (s->req_active && r->host.len)
        snprintf(out + n, cap - (size_t)n, ", host: \"%.*s\"", (int)r->host.len, r->host.p);
}

struct str http_absolute_location(struct client_stream *s, struct str loc)
{
    struct request *r = &s->req;
    if (loc.len == 0 || loc.p[0] != '/' || (r->lc && !r->lc->absolute_redirect))
        return loc;
    const struct sockaddr *local = client_conn_local(s->conn);
    unsigned port = net_port(local);
    int ssl = r->listen && r->listen->ssl;
    struct str host = r->host;
    char ipbuf[64];
    if (r->lc && r->lc->server_name_in_redirect && r->srv && r->srv->nnames &&
        r->srv->names[0].name.len)
        host = r->srv->names[0].name;
    if (!host.len) {
        if (r->srv && r->srv->nnames && r->srv->names[0].name.len)
            host = r->srv->names[0].name;
        else {
            net_ip_str(local, ipbuf, sizeof(ipbuf));
            host = str_from_cstr(ipbuf);
        }
    }
    char portbuf[16] = "";
    if (((ssl && port != 443) || (!ssl && port != 80)) && (!r->lc || r->lc->port_in_redirect))
        snprintf(portbuf, sizeof(portbuf), ":%u", port);
    char *p = arena_printf(&r->arena, "%s://%.*s%s%.*s", ssl ? "https" : "http", (int)host.len,
                           host.p, portbuf, (int)loc.len, loc.p);
    return p ? str_from_cstr(p) : loc;
}

/* Set the response's Location, replacing one set before (an error page
 * reached from a redirect gets one Location, as nginx's clear_location). */
static int set_location(struct request *r, struct str value)
{
    for (unsigned i = 0; i < r->nresp; i++)
        if (str_caseeq(r->resp[i].name, STR_LIT("location"))) {
            r->resp[i].value = value;
            return 0;
        }
    return resp_add(r, STR_LIT("Location"), value);
}

static void send_standard_page(struct client_stream *s, int status)
{
    struct request *r = &s->req;
    size_t len;
    int tokens = r->lc ? r->lc->server_tokens : 1;
    const char *page = resp_error_page(status, tokens, &len);
    char *body = arena_strndup(&r->arena, page, len);
    if (!body) {
        s->ops->abort(s, "out of memory");
        return;
    }
    int bad = status == 494 || status == 495 || status == 496 || status == 497;
    r->status = bad ? 400 : status;
    /* This page is the answer: no earlier error_page status applies to it. */
    r->err_status_override = 0;
    if (bad)
        r->keepalive = 0;
    if (resp_add(r, STR_LIT("Content-Type"), STR_LIT("text/html")) < 0) {
        s->ops->abort(s, "out of memory");
        return;
    }
    int bodiless = status < 200 || status == 204 || status == 304;
    send_local(s, bodiless ? NULL : body, bodiless ? 0 : len, -1, 0, 0);
}

/* Re-route to `uri`; `set_args` replaces $args with `args` (NULL slice = none). */
static void internal_redirect(struct client_stream *s, struct str uri, struct str args, int set_args)
{
    struct request *r = &s->req;
    if (++r->internal_redirects > HTTP_MAX_INTERNAL_REDIRECTS) {
        sy_log(LOG_LVL_ERR, "rewrite or internal redirection cycle while internally redirecting to \"%.*s\"",
               (int)uri.len, uri.p);
        r->error_page_done = 1;
        send_standard_page(s, 500);
        return;
    }
    char *norm = arena_alloc(&r->arena, uri.len + 2);
    if (!norm) {
        s->ops->abort(s, "out of memory");
        return;
    }
    ssize_t n = router_normalize_uri(uri, norm, uri.len + 2);
    if (n < 0) {
        send_standard_page(s, 400);
        return;
    }
    r->uri = (struct str){norm, (size_t)n};
    r->uri_changed = 1;
    r->uri_rewritten = 0;
    if (set_args)
        r->args = args.len ? args : STR_NULL;
    find_location_and_run(s);
}

static void named_redirect(struct client_stream *s, struct str name)
{
    struct request *r = &s->req;
    if (++r->internal_redirects > HTTP_MAX_INTERNAL_REDIRECTS) {
        send_standard_page(s, 500);
        return;
    }
    const struct location *loc = router_find_named(r->srv, name);
    struct str before = r->uri;
    if (!loc) {
        sy_log(LOG_LVL_ERR, "could not find named location \"@%.*s\"", (int)name.len, name.p);
        r->error_page_done = 1;
        send_standard_page(s, 500);
        return;
    }
    r->loc = loc;
    r->lc = http_limit_except(r, loc->lc);
    enum rw_result rc = run_rewrite(s, r->lc->rewrite);
    if (rc == RW_RESPONDED)
        return;
    if (rc == RW_RESEARCH || !str_eq(before, r->uri)) {
        find_location_and_run(s);
        return;
    }
    run_handler(s);
}

void http_accel_redirect(struct client_stream *s, struct str target)
{
    struct request *r = &s->req;
    if (target.len > 1 && target.p[0] == '@') {
        named_redirect(s, (struct str){target.p + 1, target.len - 1});
        return;
    }
    /* nginx (ngx_http_parse_unsafe_uri): the path is split from its
     * arguments; one with ".." segments or no leading "/" is refused (404) */
    const char *q = memchr(target.p, '?', target.len);
    struct str uri = {target.p, q ? (size_t)(q - target.p) : target.len};
    struct str args = q ? (struct str){q + 1, target.len - uri.len - 1} : STR_NULL;
    int unsafe = uri.len == 0 || uri.p[0] != '/';
    for (size_t i = 0; !unsafe && i + 2 < uri.len; i++) /* a ".." segment */
        unsafe = uri.p[i] == '/' && uri.p[i + 1] == '.' && uri.p[i + 2] == '.' &&
                 (i + 3 == uri.len || uri.p[i + 3] == '/');
    if (unsafe) {
        char ctx[1500];
        stream_log_ctx(s, ctx, sizeof(ctx));
        sy_log(LOG_LVL_ERR, "*%llu unsafe URI \"%.*s\" was detected%s", stream_conn_id(s),
               (int)uri.len, uri.p, ctx);
        http_respond_status(s, 404);
        return;
    }
    if (!str_eq(r->method, STR_LIT("HEAD")))
        r->method = STR_LIT("GET");
    internal_redirect(s, uri, args, 1);
}

void http_respond_status(struct client_stream *s, int status)
{
    struct request *r = &s->req;
    const struct loc_conf *lc = r->lc;
    if (r->head_sent) {
        s->ops->abort(s, "error after response head");
        return;
    }
    if (status == 444) {
        r->status = 444;
        r->keepalive = 0;
        http_request_log(s);
        s->ops->abort(s, "return 444");
        return;
    }
    r->status = status;
    /* nginx's r->err_status: the status an error-page target's own answer is
     * sent with, unless that target answers with an error or redirect of its
     * own (which comes back here and replaces it). */
    r->err_status_override = status;
    if (lc && !r->error_page_done) {
        for (unsigned i = 0; i < lc->nerror_pages; i++) {
            const struct error_page *ep = &lc->error_pages[i];
            int hit = 0;
            for (unsigned k = 0; k < ep->ncodes; k++)
                if (ep->codes[k] == status)
                    hit = 1;
            if (!hit)
                continue;
            r->error_page_done = 1;
            struct str target;
            if (tmpl_eval(s, &ep->target, &target) < 0) {
                s->ops->abort(s, "out of memory");
                return;
            }
            /* nginx: 494-497 without "=code" answer 400 */
            r->err_status_override = ep->override >= 0              ? ep->override
                                     : status >= 494 && status <= 497 ? 400
                                                                      : status;
            if (target.len && target.p[0] == '@') {
                r->is_error_page = 1;
                named_redirect(s, (struct str){target.p + 1, target.len - 1});
                return;
            }
            if (target.len > 7 && (memcmp(target.p, "http://", 7) == 0 ||
                                   (target.len > 8 && memcmp(target.p, "https://", 8) == 0))) {
                int code = ep->override >= 301 && ep->override <= 308 ? ep->override : 302;
                r->err_status_override = 0;
                if (set_location(r, target) < 0) {
                    s->ops->abort(s, "out of memory");
                    return;
                }
                send_standard_page(s, code);
                return;
            }
            /* Internal redirect: the method becomes GET (HEAD stays HEAD). */
            if (!str_eq(r->method, STR_LIT("HEAD")))
                r->method = STR_LIT("GET");
            struct str path = target, args = STR_NULL;
            for (size_t k = 0; k < target.len; k++)
                if (target.p[k] == '?') {
                    path.len = k;
                    args = (struct str){target.p + k + 1, target.len - k - 1};
                    break;
                }
            r->is_error_page = 1;
            internal_redirect(s, path, args, 1);
            return;
        }
    }
    send_standard_page(s, status);
}

/* Subjects ($uri, evaluated templates) live in the request arena or the
 * configuration, so the captures may borrow them for the request's life. */
static int regex_match(struct client_stream *s, void *re, struct str subject)
{
    return router_regex_match(re, subject, &s->req.caps);
}

static int eval_cond(struct client_stream *s, const struct rw_op *op)
{
    struct str lhs;
    if (tmpl_eval(s, &op->u.cond.lhs, &lhs) < 0)
        return 0;
    struct stat st;
    char path[4096];
    switch (op->u.cond.op) {
    case RW_COND_TRUTHY:
        return lhs.len && !(lhs.len == 1 && lhs.p[0] == '0');
    case RW_COND_EQ:
    case RW_COND_NE: {
        struct str rhs;
        if (tmpl_eval(s, &op->u.cond.rhs, &rhs) < 0)
            return 0;
        int eq = str_eq(lhs, rhs);
        return op->u.cond.op == RW_COND_EQ ? eq : !eq;
    }
    case RW_COND_RE:
    case RW_COND_RE_I:
        return regex_match(s, op->u.cond.re, lhs);
    case RW_COND_NRE:
    case RW_COND_NRE_I:
        return !regex_match(s, op->u.cond.re, lhs);
    default:
        break;
    }
    if (lhs.len >= sizeof(path))
        return 0;
    memcpy(path, lhs.p, lhs.len);
    path[lhs.len] = '\0';
    int exists = stat(path, &st) == 0;
    switch (op->u.cond.op) {
    case RW_COND_FILE: return exists && S_ISREG(st.st_mode);
    case RW_COND_NFILE: return !(exists && S_ISREG(st.st_mode));
    case RW_COND_DIR: return exists && S_ISDIR(st.st_mode);
    case RW_COND_NDIR: return !(exists && S_ISDIR(st.st_mode));
    case RW_COND_EXISTS: return exists;
    case RW_COND_NEXISTS: return !exists;
    default: return 0;
    }
}

static void do_return(struct client_stream *s, const struct rw_return *ret)
{
    struct request *r = &s->req;
    int code = ret->code;
    if (code == 444 || !ret->text) {
        if (code >= 400 || code == 444) {
            http_respond_status(s, code);
            return;
        }
        r->status = code;
        if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308) {
            http_respond_status(s, code); /* error_page applies, as in nginx */
            return;
        }
        if (code >= 300 && code < 400) {
            send_standard_page(s, code);
            return;
        }
        send_local(s, "", 0, -1, 0, 0);
        return;
    }
    struct str text;
    if (tmpl_eval(s, ret->text, &text) < 0) {
        s->ops->abort(s, "out of memory");
        return;
    }
    if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308) {
        if (set_location(r, http_absolute_location(s, text)) < 0) {
            s->ops->abort(s, "out of memory");
            return;
        }
        http_respond_status(s, code); /* error_page applies, as in nginx */
        return;
    }
    r->status = code;
    if (resp_add(r, STR_LIT("Content-Type"), r->lc->default_type) < 0) {
        s->ops->abort(s, "out of memory");
        return;
    }
    send_local(s, text.p, text.len, -1, 0, 0);
}

/* Apply a matching `rewrite`: new $uri/$args, or a redirect. */
static enum rw_result do_rewrite(struct client_stream *s, const struct rw_op *op)
{
    struct request *r = &s->req;
    if (!regex_match(s, op->u.rewrite.re, r->uri))
        return RW_CONTINUE;
    int flag = op->u.rewrite.flag;
    int redirect = rw_is_url(op->u.rewrite.replacement.raw) || flag == RW_FLAG_REDIRECT ||
                   flag == RW_FLAG_PERMANENT;
    struct rw_eval ev;
    if (rw_eval_replacement(s, &op->u.rewrite.replacement, redirect, &ev) < 0) {
        s->ops->abort(s, "out of memory");
        return RW_RESPONDED;
    }
    if (redirect) {
        if (set_location(r, http_absolute_location(s, ev.uri)) < 0) {
            s->ops->abort(s, "out of memory");
            return RW_RESPONDED;
        }
        http_respond_status(s, flag == RW_FLAG_PERMANENT ? 301 : 302);
        return RW_RESPONDED;
    }
    struct str path = ev.uri, args = ev.args;
    r->uri = path;
    r->args = args.len ? args : STR_NULL;
    r->uri_changed = 1;
    r->uri_rewritten = 1;
    if (flag == RW_FLAG_LAST)
        return RW_RESEARCH;
    if (flag == RW_FLAG_BREAK)
        return RW_STOP;
    return RW_CONTINUE;
}

static int static_eval_cb(void *ctx, const struct tmpl *t, struct str *out)
{
    return tmpl_eval(ctx, t, out);
}

/* A directory listing (src/http/autoindex.c), or its error status. */
static void send_autoindex(struct client_stream *s, struct str dir)
{
    struct request *r = &s->req;
    struct autoindex_page page;
    if (autoindex_build(s, dir, &page) < 0) {
        s->ops->abort(s, "out of memory");
        return;
    }
    if (page.status != 200) {
        http_respond_status(s, page.status);
        return;
    }
    r->status = 200;
    if (resp_add(r, STR_LIT("Content-Type"), page.content_type) < 0) {
        s->ops->abort(s, "out of memory");
        return;
    }
    send_local(s, page.body.p, page.body.len, -1, 0, 0);
}

/* SSI rewrites the whole body: no ranges of the files it processes (nginx). */
static int ssi_ranges_ok(void *ctx, struct str content_type)
{
    const struct request *r = &((struct client_stream *)ctx)->req;
    return !r->lc->ssi.enable || !compress_types_match(r->lc->ssi.types, content_type);
}

static void run_static(struct client_stream *s)
{
    struct request *r = &s->req;
    struct static_input in;
    memset(&in, 0, sizeof(in));
    in.uri = r->uri;
    in.method = r->method;
    in.loc = r->loc;
    in.lc = r->lc;
    in.prefix = r->rt->gen->prefix;
    in.if_modified_since = req_header(r, "if-modified-since");
    in.if_none_match = req_header(r, "if-none-match");
    in.if_match = req_header(r, "if-match");
    in.if_unmodified_since = req_header(r, "if-unmodified-since");
    in.range = req_header(r, "range");
    in.if_range = req_header(r, "if-range");
    in.eval = static_eval_cb;
    in.eval_ctx = s;
    in.ranges_ok = ssi_ranges_ok;
    in.no_ranges = r->lc->max_ranges == 0;
    in.max_ranges = r->lc->max_ranges == INT64_MAX ? 0 : r->lc->max_ranges;
    if (subrequest_is(s)) {
        /* nginx's not_modified and range filters leave sub-requests alone:
         * an included file is whole, whatever the client's conditions */
        in.if_modified_since = in.if_none_match = in.if_match = in.if_unmodified_since = STR_NULL;
        in.range = in.if_range = STR_NULL;
    }
    /* gzip_static / brotli_static (http/compress.c) */
    struct static_variant variants[COMPRESS_MAX_VARIANTS];
    http_filters_install(s);
    in.variants = variants;
    in.nvariants = compress_static_variants(s, variants);
    struct static_result res;
    memset(&res, 0, sizeof(res));
    res.fd = -1;
    if (static_handle(&in, &res, &r->arena) < 0 || compress_static_result(s, &res) < 0) {
        if (res.fd >= 0)
            close(res.fd);
        http_respond_status(s, 500);
        return;
    }
    switch (res.action) {
    case STATIC_SEND:
    case STATIC_NOT_MODIFIED:
        r->status = res.action == STATIC_NOT_MODIFIED ? 304 : res.status;
        if (res.action == STATIC_SEND) {
            /* an X-Accel-Redirect keeps the upstream's type (nginx) */
            if (res.content_type.len && !resp_get(r, "Content-Type").p)
                resp_add(r, STR_LIT("Content-Type"), res.content_type);
        }
        if (res.last_modified.len)
            resp_add(r, STR_LIT("Last-Modified"), res.last_modified);
        if (res.etag.len)
            resp_add(r, STR_LIT("ETag"), res.etag);
        if (res.content_range.len && res.status == 206)
            resp_add(r, STR_LIT("Content-Range"), res.content_range);
        if (res.accept_ranges && !resp_get(r, "Accept-Ranges").p)
            resp_add(r, STR_LIT("Accept-Ranges"), STR_LIT("bytes"));
        if (r->err_status_override > 0 && res.action == STATIC_SEND)
            r->status = r->err_status_override;
        if (res.body) { /* several ranges: the multipart body */
            send_local(s, res.body, res.body_len, -1, 0, 0);
            return;
        }
        send_local(s, NULL, 0, res.action == STATIC_SEND ? res.fd : -1, res.offset,
                   res.action == STATIC_SEND ? res.length : 0);
        return;
    case STATIC_STATUS:
        if (res.status == 416 && res.content_range.len)
            resp_add(r, STR_LIT("Content-Range"), res.content_range);
        http_respond_status(s, res.status);
        return;
    case STATIC_REDIRECT: {
        struct str loc = res.location;
        if (r->args.p) {
            char *p = arena_printf(&r->arena, "%.*s?%.*s", (int)loc.len, loc.p, (int)r->args.len,
                                   r->args.p);
            if (p)
                loc = str_from_cstr(p);
        }
        set_location(r, http_absolute_location(s, loc));
        http_respond_status(s, 301);
        return;
    }
    case STATIC_INTERNAL:
        internal_redirect(s, res.target, res.args, res.args_replace);
        return;
    case STATIC_NAMED:
        named_redirect(s, res.target);
        return;
    case STATIC_AUTOINDEX:
        send_autoindex(s, res.dir);
        return;
    }
}

static void auto_redirect_to_slash(struct client_stream *s)
{
    struct request *r = &s->req;
    size_t len;
    char *loc = static_dir_location(&r->arena, r->uri, &len);
    if (!loc) {
        s->ops->abort(s, "out of memory");
        return;
    }
    struct str target = {loc, len};
    if (r->args.len) {
        char *p = arena_printf(&r->arena, "%s?%.*s", loc, (int)r->args.len, r->args.p);
        if (p)
            target = str_from_cstr(p);
    }
    if (set_location(r, http_absolute_location(s, target)) < 0) {
        s->ops->abort(s, "out of memory");
        return;
    }
    http_respond_status(s, 301);
}

static int tls_check_request(struct client_stream *s)
{
    struct request *r = &s->req;
    char why[300];
    int status = tls_request_check(&s->conn->c, r->srv, r->host, why, sizeof(why));
    if (!status)
        return 0;
    char ctx[1500];
    stream_log_ctx(s, ctx, sizeof(ctx));
    sy_log(LOG_LVL_INFO, "*%llu %s while reading client request headers%s",
           (unsigned long long)s->conn->id, why, ctx);
    if (status != 421)
        r->keepalive = 0;
    http_respond_status(s, status);
    return 1;
}

int http_valid_host(struct request *r, struct str in, struct str *out)
{
    /* Lower-case, strip port and one trailing dot; reject what nginx rejects. */
    size_t len = in.len;
    if (len && in.p[0] == '[') {
        size_t k = 0;
        while (k < len && in.p[k] != ']')
            k++;
        if (k == len)
            return -1;
        len = k + 1;
    } else {
        for (size_t k = 0; k < len; k++)
            if (in.p[k] == ':') {
                len = k;
                break;
            }
    }
    for (size_t k = 0; k + 1 < len; k++)
        if (in.p[k] == '.' && in.p[k + 1] == '.')
            return -1;
    if (len && in.p[len - 1] == '.')
        len--;
    if (len == 0) /* "", ".", ":80": nginx's "invalid host" */
        return -1;
    char *p = arena_alloc(&r->arena, len + 1);
    if (!p)
        return -1;
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)in.p[k];
        if (c == '/' || c == '\\' || c == '\0' || c <= 0x20)
            return -1;
        if (c == '.' && k + 1 < len && in.p[k + 1] == '.')
            return -1;
        p[k] = (char)sy_tolower(c);
    }
    p[len] = '\0';
    *out = (struct str){p, len};
    return 0;
}

/*
 * Send a locally generated response: status and headers in r, body from
 * memory (`body`,`len`) or the file `fd` (owned from here; -1 none). HEAD
 * and bodiless statuses send no body. The stream completes the request.
 */
static void send_local(struct client_stream *s, const char *body, size_t len, int fd, off_t off,
                       off_t file_len)
{
    struct request *r = &s->req;
    http_filters_install(s); /* response filters (compression) see every local response */
    if (r->err_status_override > 0)
        r->status = r->err_status_override;
    int status = r->status;
    int bodiless = status < 200 || status == 204 || status == 304;
    int is_head = str_eq(r->method, STR_LIT("HEAD"));
    if (!bodiless) {
        uint64_t clen = fd >= 0 ? (uint64_t)file_len : len;
        char *cl = arena_printf(&r->arena, "%llu", (unsigned long long)clen);
        if (!cl || resp_add(r, STR_LIT("Content-Length"), str_from_cstr(cl)) < 0) {
            if (fd >= 0)
                close(fd);
            s->ops->abort(s, "out of memory");
            return;
        }
    }
    if (resp_status_closes(status))
        r->keepalive = 0;
    r->head_sent = 1;
    if (bodiless || is_head) {
        if (fd >= 0)
            close(fd);
        s->ops->send_memory(s, NULL, 0);
    } else if (fd >= 0) {
        s->ops->send_file(s, fd, off, file_len);
    } else {
        s->ops->send_memory(s, body, len);
    }
}

static enum rw_result run_rewrite(struct client_stream *s, const struct rw_op *op)
{

    struct request *r = &s->req;
    for (; op; op = op->next) {
        switch (op->type) {
        case RW_RETURN:
            do_return(s, &op->u.ret);
            return RW_RESPONDED;
        case RW_BREAK:
            return RW_STOP;
        case RW_REWRITE: {
            enum rw_result rc = do_rewrite(s, op);
            if (rc != RW_CONTINUE)
                return rc;
            break;
        }
        case RW_SET: {
            struct str v;
            if (tmpl_eval(s, &op->u.set.value, &v) < 0) {
                s->ops->abort(s, "out of memory");
                return RW_RESPONDED;
            }
            if (op->u.set.var_index & VAR_SET_BUILTIN) {
                var_set_builtin(s, op->u.set.var_index & ~VAR_SET_BUILTIN, v);
                break;
            }
            unsigned nslots = r->rt->gen->vars.nset_slots;
            if (!r->set_vals) {
                r->set_vals = arena_calloc(&r->arena, (nslots ? nslots : 1) * sizeof(struct str));
                if (!r->set_vals) {
                    s->ops->abort(s, "out of memory");
                    return RW_RESPONDED;
                }
            }
            if (op->u.set.var_index < nslots)
                r->set_vals[op->u.set.var_index] = v;
            break;
        }
        case RW_IF:
            if (eval_cond(s, op)) {
                if (op->u.cond.lc)
                    r->lc = op->u.cond.lc;
                enum rw_result rc = run_rewrite(s, op->u.cond.body);
                if (rc != RW_CONTINUE)
                    return rc;
            }
            break;
        }
    }
    return RW_CONTINUE;
}

/* ------------------------------------------------------------ static files */


static void run_handler(struct client_stream *s)
{
    struct request *r = &s->req;
    /* nginx's PREACCESS phase: realip with the location's settings (first
     * in the phase, so access limits see the real client) */
    realip_apply(s, r->lc);
    /* nginx's preaccess phase: limit_req, then limit_conn, once per request
     * (an internal redirect, an error page, comes back here and passes). */
    if (r->lc->limit_reqs && !r->limit_req_status) {
        uint64_t delay;
        int st = limit_req_check(s, &delay);
        if (st) {
            status_upgrade_refused(s, NULL, NULL, st, "over the limit_req rate", 0);
            http_respond_status(s, st);
            return;
        }
        if (delay) {
            /* Held by the protocol; the worker serves others meanwhile. */
            s->ops->hold(s, delay);
            return;
        }
    }
    if (r->lc->limit_conns && !r->limit_conn_status) {
        int st = limit_conn_check(s);
        if (st) {
            status_upgrade_refused(s, NULL, NULL, st, "over the limit_conn limit", 0);
            http_respond_status(s, st);
            return;
        }
    }
    /* nginx's access phase: allow/deny, auth_basic, auth_request (access.c) */
    int access = http_access_phase(s);
    if (access != ACCESS_WAIT)
        http_phase_access_done(s, access);
}

void http_phase_access_done(struct client_stream *s, int status)
{
    struct request *r = &s->req;
    uint64_t delay;
    if (status == 401 && (delay = http_access_delay(s)) != 0) {
        /* auth_delay: the 401 goes out after the delay (http_phase_resume) */
        r->auth_delayed = 1;
        s->ops->hold(s, delay);
        return;
    }
    if (status) {
        status_upgrade_refused(s, NULL, NULL, status, "refused by the access phase (allow/deny, "
                                                      "auth_basic, auth_request)", 0);
        http_respond_status(s, status);
        return;
    }
    if (r->lc->stub_status || r->lc->status_page || r->lc->metrics) {
        /* the generated pages: stub_status, the status page, Prometheus metrics */
        const char *body;
        size_t len;
        int st = r->lc->stub_status   ? stub_status_prepare(s, &body, &len)
                 : r->lc->status_page ? status_page_prepare(s, &body, &len)
                                      : metrics_page_prepare(s, &body, &len);
        if (st == 405)
            http_respond_status(s, st);
        else if (st < 0)
            s->ops->abort(s, "out of memory");
        else
            send_local(s, body, len, -1, 0, 0);
        return;
    }
    if (r->lc->empty_gif) {
        int st = empty_gif_prepare(s);
        if (st == 405)
            http_respond_status(s, st);
        else if (st < 0)
            s->ops->abort(s, "out of memory");
        else
            send_local(s, (const char *)empty_gif_bytes, empty_gif_len, -1, 0, 0);
        return;
    }
    if (r->lc->proxy_pass) {
        http_filters_install(s);
        http_proxy_handler(s);
        return;
    }
    run_static(s);
}

/* nginx's auto_redirect: "/dir" for a proxied "location /dir/" is a 301 to
 * "/dir/" (escaped, with the arguments). */

static void find_location_and_run(struct client_stream *s)
{
    struct request *r = &s->req;
    for (int cycle = 0;; cycle++) {
        if (cycle > HTTP_MAX_INTERNAL_REDIRECTS) {
            sy_log(LOG_LVL_ERR, "rewrite or internal redirection cycle while processing \"%.*s\"",
                   (int)r->uri.len, r->uri.p);
            r->error_page_done = 1;
            send_standard_page(s, 500);
            return;
        }
        int auto_redirect;
        r->loc = router_find_location_ex(r->srv, r->uri, &r->caps, &auto_redirect);
        r->lc = r->loc ? http_limit_except(r, r->loc->lc) : r->srv->lc;
        r->uri_rewritten = 0;
        uint64_t max = r->lc->client_max_body_size;
        if (max && !r->is_error_page && (r->info.flags & H1_F_HAS_CL) &&
            r->info.content_length > max) {
            char ctx[1500];
            stream_log_ctx(s, ctx, sizeof(ctx));
            sy_log(LOG_LVL_ERR, "*%llu client intended to send too large body: %llu bytes%s",
                   (unsigned long long)s->conn->id, (unsigned long long)r->info.content_length, ctx);
            r->keepalive = 0;
            http_respond_status(s, 413);
            return;
        }
        if (!r->loc)
            break;
        if (r->lc->internal && !r->uri_changed) {
            /* An `internal` location serves only internal redirects. */
            http_respond_status(s, 404);
            return;
        }
        if (auto_redirect) {
            auto_redirect_to_slash(s);
            return;
        }
        struct str before = r->uri;
        enum rw_result rc = run_rewrite(s, r->lc->rewrite);
        if (rc == RW_RESPONDED)
            return;
        if (rc == RW_RESEARCH || (rc == RW_CONTINUE && !str_eq(before, r->uri)))
            continue;
        break;
    }
    run_handler(s);
}

/* ssl_verify_client: nginx's 421 / 495 / 496 (answered as 400, error_page
 * 495 and 496 apply). Returns 1 when the request was answered. */

void http_request_run(struct client_stream *s)
{
    struct request *r = &s->req;
    r->srv = router_find_server(r->listen, r->host, &r->caps);
    if (!r->srv) {
        s->ops->abort(s, "no server");
        return;
    }
    r->lc = r->srv->lc;
    if (s->conn->c.flags & CONN_F_PLAIN_ON_TLS) {
        /* nginx's 497: answered as 400 with its own page, error_page 497 applies. */
        char ctx[1500];
        stream_log_ctx(s, ctx, sizeof(ctx));
        sy_log(LOG_LVL_INFO, "*%llu client sent plain HTTP request to HTTPS port while reading "
               "client request headers%s", (unsigned long long)s->conn->id, ctx);
        metrics_tls_failed(MTF_HTTP_REQUEST);
        r->keepalive = 0;
        http_respond_status(s, 497);
        return;
    }
    if (tls_is(&s->conn->c) && tls_check_request(s))
        return;
    /* nginx's POST_READ phase: realip with the server's settings */
    realip_apply(s, r->srv->lc);
    if (run_rewrite(s, r->srv->lc->rewrite) == RW_RESPONDED)
        return;
    find_location_and_run(s);
}

/* ------------------------------------------------------------ request head */


void http_phase_resume(struct client_stream *s)
{
    if (s->req.auth_delayed) {
        s->req.auth_delayed = 0;
        http_respond_status(s, 401);
        return;
    }
    run_handler(s);
}

void http_request_run_internal(struct client_stream *s)
{
    struct request *r = &s->req;
    realip_apply(s, r->srv->lc);
    if (run_rewrite(s, r->srv->lc->rewrite) == RW_RESPONDED)
        return;
    find_location_and_run(s);
}

int http_set_path(struct client_stream *s, struct str path)
{
    struct request *r = &s->req;
    r->request_uri = path;
    /* A fragment ends the path and the arguments (nginx: "/p?a#f" has $args
     * "a", "/p#f?a" none); $request_uri keeps it. */
    struct str qpath = path;
    for (size_t k = 0; k < path.len; k++) {
        if (path.p[k] == '#') {
            qpath.len = k;
            break;
        }
        if (path.p[k] == '?') {
            qpath.len = k;
            size_t e = k + 1;
            while (e < path.len && path.p[e] != '#')
                e++;
            r->args = (struct str){path.p + k + 1, e - k - 1};
            break;
        }
    }
    char *norm = arena_alloc(&r->arena, qpath.len + 2);
    if (!norm)
        return -2;
    ssize_t nl = router_normalize_uri_opts(qpath, norm, qpath.len + 2, r->lc->merge_slashes);
    if (nl < 0)
        return -1;
    r->uri = (struct str){norm, (size_t)nl};
    return 0;
}

void http_request_log(struct client_stream *s)
{
    struct request *r = &s->req;
    if (!s->req_active || r->logged || !r->head_parsed)
        return;
    r->logged = 1;
    access_log_write(s);
}

void http_request_done(struct client_stream *s)
{
    s->req.completed = 1; /* $request_completion */
    http_request_log(s);
}

void http_request_release(struct client_stream *s)
{
    if (!s->req_active)
        return;
    http_request_log(s);
    metrics_request_end(s);
    /* Every way a request ends comes here: its limit_conn counts go back
     * (unless a tunnel took them over). */
    limit_conn_release(s->req.limit_conn);
    s->req.limit_conn = NULL;
    http_filters_release(s); /* the protocol's ops back, the filters closed */
    arena_destroy(&s->req.arena);
    rt_release(s->req.rt);
    memset(&s->req, 0, sizeof(s->req));
    s->req_active = 0;
    if (s->stat_writing) {
        stats_add(&sy_stats->writing, -1);
        s->stat_writing = 0;
    }
}
