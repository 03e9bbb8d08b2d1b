/*
 * vars_eval.c - variable values and template evaluation for a request.
 *
 * Values are computed on demand (nothing is precomputed per request): most
 * requests touch only the few variables their templates name.
 */
#include "http/vars_eval.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/log.h"
#include "core/net.h"
#include "http/h1_server.h"
#include "http/limit_req.h"
#include "http/realip.h"
#include "proc/runtime.h"
#include "proxy/tunnel.h"
#include "tls/tls.h"

#define SY_VERSION_STR "0.1.0"

struct str req_header(const struct request *r, const char *name)
{
    struct str n = str_from_cstr(name);
    for (size_t i = 0; i < r->nheaders; i++)
        if (str_caseeq(r->headers[i].name, n))
            return r->headers[i].value;
    return STR_NULL;
}

/* $http_foo_bar matches header "Foo-Bar": '_' stands for '-'. */
static int header_var_match(struct str hname, struct str var)
{
    if (hname.len != var.len)
        return 0;
    for (size_t i = 0; i < var.len; i++) {
        unsigned char a = sy_tolower((unsigned char)hname.p[i]);
        unsigned char b = sy_tolower((unsigned char)var.p[i]);
        if (a == '-')
            a = '_';
        if (a != b)
            return 0;
    }
    return 1;
}

/* Several headers of the same name are joined: cookies with "; ", others with ", ". */
static struct str header_list_value(struct arena *a, const struct h1_header *h, size_t n,
                                    struct str var, int *found)
{
    struct str first = STR_NULL;
    size_t count = 0, total = 0;
    int is_cookie = var.len == 6 && memcmp(var.p, "cookie", 6) == 0;
    for (size_t i = 0; i < n; i++) {
        if (header_var_match(h[i].name, var)) {
            if (count == 0)
                first = h[i].value;
            count++;
            total += h[i].value.len + 2;
        }
    }
    if (count == 0) {
        *found = 0;
        return STR_NULL;
    }
    *found = 1;
    if (count == 1)
        return first;
    char *buf = arena_alloc(a, total);
    if (!buf)
        return first;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (!header_var_match(h[i].name, var))
            continue;
        if (off) {
            buf[off++] = is_cookie ? ';' : ',';
            buf[off++] = ' ';
        }
        memcpy(buf + off, h[i].value.p, h[i].value.len);
        off += h[i].value.len;
    }
    return (struct str){buf, off};
}

/* Value of argument `name` in a query string "a=1&b=2" (exact, case-sensitive? nginx: case-insensitive). */
static struct str find_arg(struct str args, struct str name, int *found)
{
    size_t i = 0;
    while (i < args.len) {
        size_t start = i;
        while (i < args.len && args.p[i] != '&')
            i++;
        struct str pair = {args.p + start, i - start};
        i++;
        size_t eq = 0;
        while (eq < pair.len && pair.p[eq] != '=')
            eq++;
        if (str_caseeq((struct str){pair.p, eq}, name)) {
            *found = 1;
            if (eq >= pair.len)
                return (struct str){pair.p + pair.len, 0};
            return (struct str){pair.p + eq + 1, pair.len - eq - 1};
        }
    }
    *found = 0;
    return STR_NULL;
}

/* Cookie `name` from a "a=1; b=2" list. */
static struct str find_cookie(struct str cookies, struct str name, int *found)
{
    size_t i = 0;
    while (i < cookies.len) {
        while (i < cookies.len && (cookies.p[i] == ' ' || cookies.p[i] == ';' || cookies.p[i] == ','))
            i++;
        size_t start = i;
        while (i < cookies.len && cookies.p[i] != ';' && cookies.p[i] != ',')
            i++;
        struct str pair = {cookies.p + start, i - start};
        size_t eq = 0;
        while (eq < pair.len && pair.p[eq] != '=')
            eq++;
        if (eq < pair.len && str_caseeq((struct str){pair.p, eq}, name)) {
            *found = 1;
            return (struct str){pair.p + eq + 1, pair.len - eq - 1};
        }
    }
    *found = 0;
    return STR_NULL;
}

static struct str num_str(struct arena *a, uint64_t v)
{
    char *p = arena_printf(a, "%llu", (unsigned long long)v);
    return p ? str_from_cstr(p) : STR_NULL;
}

static struct str msec_str(struct arena *a, uint64_t ms)
{
    char *p = arena_printf(a, "%llu.%03llu", (unsigned long long)(ms / 1000),
                           (unsigned long long)(ms % 1000));
    return p ? str_from_cstr(p) : STR_NULL;
}

/* "1.2.3.4" / "::1" of a client address, in the request arena. */
static struct str addr_text(struct arena *a, const union conn_addr *ca)
{
    char tmp[64];
    net_ip_str(&ca->sa, tmp, sizeof(tmp));
    return arena_str(a, str_from_cstr(tmp));
}

/* Its port; "" when it has none (an X-Real-IP without a port), as nginx. */
static struct str port_text(struct arena *a, const union conn_addr *ca)
{
    unsigned port = net_port(&ca->sa);
    return port ? num_str(a, port) : STR_LIT("");
}

static void ensure_local(struct h1_session *s)
{
    if (s->locallen == 0)
        net_local_addr(s->c.h.fd, &s->local, &s->locallen);
}

static struct str capture(const struct request *r, unsigned n, int *found)
{
    if (!r->caps.subject || (int)n >= r->caps.n) {
        *found = 0;
        return STR_NULL;
    }
    size_t a = r->caps.ov[2 * n], b = r->caps.ov[2 * n + 1];
    if (a == PCRE2_UNSET || b < a) {
        *found = 0;
        return STR_NULL;
    }
    *found = 1;
    return (struct str){r->caps.subject + a, b - a};
}

static struct str named_capture(const struct request *r, struct str name, int *found)
{
    *found = 0;
    if (!r->caps.subject || !r->caps.re)
        return STR_NULL;
    char nm[128];
    if (name.len >= sizeof(nm))
        return STR_NULL;
    memcpy(nm, name.p, name.len);
    nm[name.len] = '\0';
    int num = pcre2_substring_number_from_name((const pcre2_code *)r->caps.re, (PCRE2_SPTR)nm);
    if (num < 0)
        return STR_NULL;
    return capture(r, (unsigned)num, found);
}

static struct str builtin(struct h1_session *s, unsigned id, int *found)
{
    struct request *r = &s->req;
    struct arena *a = &r->arena;
    char tmp[128];
    *found = 1;
    switch ((enum var_builtin)id) {
    case VB_HOST:
        if (r->host.len)
            return r->host;
        if (r->srv && r->srv->nnames && r->srv->names[0].kind == SN_EXACT)
            return r->srv->names[0].name;
        ensure_local(s);
        net_ip_str((struct sockaddr *)&s->local, tmp, sizeof(tmp));
        return arena_str(a, str_from_cstr(tmp));
    case VB_REMOTE_ADDR:
    case VB_BINARY_REMOTE_ADDR:
        return addr_text(a, realip_client(s));
    case VB_REMOTE_PORT:
        return port_text(a, realip_client(s));
    case VB_REALIP_REMOTE_ADDR:
        return addr_text(a, &s->c.peer);
    case VB_REALIP_REMOTE_PORT:
        return port_text(a, &s->c.peer);
    case VB_PROXY_PROTOCOL_ADDR:
    case VB_PROXY_PROTOCOL_SERVER_ADDR:
        /* Not found (empty; "-" in logs) without a PROXY header naming addresses. */
        if (!pp_addr_text(&s->pp, id == VB_PROXY_PROTOCOL_SERVER_ADDR, tmp, sizeof(tmp))) {
            *found = 0;
            return STR_NULL;
        }
        return arena_str(a, str_from_cstr(tmp));
    case VB_PROXY_PROTOCOL_PORT:
    case VB_PROXY_PROTOCOL_SERVER_PORT:
        if (!s->pp.family) {
            *found = 0;
            return STR_NULL;
        }
        return num_str(a, id == VB_PROXY_PROTOCOL_PORT ? s->pp.src_port : s->pp.dst_port);
    case VB_SERVER_ADDR:
        ensure_local(s);
        net_ip_str((struct sockaddr *)&s->local, tmp, sizeof(tmp));
        return arena_str(a, str_from_cstr(tmp));
    case VB_SERVER_PORT:
        ensure_local(s);
        return num_str(a, net_port((struct sockaddr *)&s->local));
    case VB_SERVER_NAME:
        if (r->srv && r->srv->nnames)
            return r->srv->names[0].name;
        return STR_LIT("");
    case VB_SERVER_PROTOCOL:
        return r->minor ? STR_LIT("HTTP/1.1") : STR_LIT("HTTP/1.0");
    case VB_SCHEME: /* the connection's: plain HTTP on a TLS port is "http" (nginx) */
        return tls_is(&s->c) ? STR_LIT("https") : STR_LIT("http");
    case VB_HTTPS:
        return tls_is(&s->c) ? STR_LIT("on") : STR_LIT("");
    case VB_SSL_PROTOCOL:
    case VB_SSL_CIPHER:
    case VB_SSL_SERVER_NAME: {
        const char *v = id == VB_SSL_PROTOCOL ? tls_protocol(&s->c)
                        : id == VB_SSL_CIPHER ? tls_cipher(&s->c)
                                              : tls_server_name(&s->c);
        if (!v) {
            *found = 0;
            return STR_NULL;
        }
        return str_from_cstr(v);
    }
    case VB_REQUEST_URI:
        return r->request_uri;
    case VB_URI:
    case VB_DOCUMENT_URI:
        return r->uri;
    case VB_ARGS:
    case VB_QUERY_STRING:
        if (!r->args.p) {
            *found = 0;
            return STR_NULL;
        }
        return r->args;
    case VB_IS_ARGS:
        return r->args.p ? STR_LIT("?") : STR_LIT("");
    case VB_REQUEST_METHOD:
        return r->method;
    case VB_REQUEST_LENGTH:
        return num_str(a, r->head_len + r->body_received);
    case VB_REQUEST:
        return r->request_line;
    case VB_CONTENT_LENGTH: {
        struct str v = req_header(r, "content-length");
        *found = v.p != NULL;
        return v;
    }
    case VB_CONTENT_TYPE: {
        struct str v = req_header(r, "content-type");
        *found = v.p != NULL;
        return v;
    }
    case VB_PROXY_ADD_X_FORWARDED_FOR: {
        int f;
        struct str xff = header_list_value(a, r->headers, r->nheaders, STR_LIT("x_forwarded_for"), &f);
        net_ip_str(&realip_client(s)->sa, tmp, sizeof(tmp));
        if (!f)
            return arena_str(a, str_from_cstr(tmp));
        char *p = arena_printf(a, "%.*s, %s", (int)xff.len, xff.p, tmp);
        return p ? str_from_cstr(p) : STR_NULL;
    }
    case VB_PROXY_HOST:
        if (!r->proxy_host.p)
            *found = 0;
        return r->proxy_host;
    case VB_PROXY_PORT:
        if (!r->proxy_port.p)
            *found = 0;
        return r->proxy_port;
    case VB_STATUS: {
        char *p = arena_printf(a, "%03d", r->status ? r->status : 0);
        return p ? str_from_cstr(p) : STR_NULL;
    }
    case VB_BODY_BYTES_SENT:
        return num_str(a, r->body_bytes_sent);
    case VB_BYTES_SENT:
        return num_str(a, r->bytes_sent);
    case VB_REQUEST_TIME: {
        uint64_t now = loop_wall_ms();
        return msec_str(a, now > r->start_wall_ms ? now - r->start_wall_ms : 0);
    }
    case VB_UPSTREAM_ADDR:
        if (!r->upstream_addr.len)
            *found = 0;
        return r->upstream_addr;
    case VB_UPSTREAM_STATUS:
        if (!r->upstream_status.len)
            *found = 0;
        return r->upstream_status;
    case VB_UPSTREAM_RESPONSE_TIME:
    case VB_UPSTREAM_CONNECT_TIME:
    case VB_UPSTREAM_HEADER_TIME: {
        int64_t v = id == VB_UPSTREAM_RESPONSE_TIME  ? r->upstream_response_ms
                    : id == VB_UPSTREAM_CONNECT_TIME ? r->upstream_connect_ms
                                                     : r->upstream_header_ms;
        if (v < 0 || !r->upstream_addr.len) {
            *found = 0;
            return STR_NULL;
        }
        return msec_str(a, (uint64_t)v);
    }
    case VB_UPSTREAM_RESPONSE_LENGTH:
        if (!r->upstream_addr.len) {
            *found = 0;
            return STR_NULL;
        }
        return num_str(a, r->upstream_response_length);
    case VB_TIME_LOCAL:
        return arena_str(a, str_from_cstr(time_local()));
    case VB_TIME_ISO8601:
        return arena_str(a, str_from_cstr(time_iso8601()));
    case VB_MSEC:
        return msec_str(a, loop_wall_ms());
    case VB_CONNECTION:
        return num_str(a, s->id);
    case VB_CONNECTION_REQUESTS:
        return num_str(a, s->requests);
    case VB_HTTP_USER_AGENT:
        return header_list_value(a, r->headers, r->nheaders, STR_LIT("user_agent"), found);
    case VB_HTTP_REFERER:
        return header_list_value(a, r->headers, r->nheaders, STR_LIT("referer"), found);
    case VB_REQUEST_BODY:
        if (r->request_body.p)
            return r->request_body;
        *found = 0;
        return STR_NULL;
    case VB_REMOTE_USER:
    case VB_REALPATH_ROOT:
    case VB_REQUEST_FILENAME:
    case VB_SENT_HTTP_CONTENT_TYPE_UNUSED:
        *found = 0;
        return STR_NULL;
    case VB_DOCUMENT_ROOT:
        if (r->lc && r->lc->root)
            return r->lc->root->raw;
        *found = 0;
        return STR_NULL;
    case VB_HOSTNAME:
        if (gethostname(tmp, sizeof(tmp)) != 0)
            return STR_LIT("localhost");
        tmp[sizeof(tmp) - 1] = '\0';
        return arena_str(a, str_from_cstr(tmp));
    case VB_PID:
        return num_str(a, (uint64_t)getpid());
    case VB_NGINX_VERSION:
        return STR_LIT(SY_VERSION_STR);
    case VB_REQUEST_ID: {
        /* 32 hex digits, unique enough per worker: time, connection id, request count. */
        char *p = arena_printf(a, "%016llx%08llx%08x", (unsigned long long)loop_wall_ms(),
                               (unsigned long long)(s->id & 0xffffffffu), s->requests);
        return p ? str_from_cstr(p) : STR_NULL;
    }
    case VB_TUNNEL_DURATION:
        return msec_str(a, r->tunnel_ms);
    case VB_TUNNEL_BYTES_FROM_CLIENT:
        return num_str(a, r->tunnel_from_client);
    case VB_TUNNEL_BYTES_FROM_UPSTREAM:
        return num_str(a, r->tunnel_from_upstream);
    case VB_TUNNEL_CLOSE_REASON:
        if (!r->tunnel_close_reason) {
            *found = 0;
            return STR_NULL;
        }
        return str_from_cstr(r->tunnel_close_reason);
    case VB_LIMIT_REQ_STATUS:
    case VB_LIMIT_CONN_STATUS: {
        const char *v = limit_status_name(id == VB_LIMIT_REQ_STATUS ? r->limit_req_status
                                                                    : r->limit_conn_status);
        if (!v) {
            *found = 0;
            return STR_NULL;
        }
        return str_from_cstr(v);
    }
    case VB__COUNT:
        break;
    }
    *found = 0;
    return STR_NULL;
}

struct str var_value(struct h1_session *s, const struct var_ref *v, int *found)
{
    struct request *r = &s->req;
    *found = 0;
    switch (v->kind) {
    case VAR_BUILTIN:
        return builtin(s, v->id, found);
    case VAR_HTTP:
        return header_list_value(&r->arena, r->headers, r->nheaders, v->name, found);
    case VAR_ARG:
        if (!r->args.p)
            return STR_NULL;
        return find_arg(r->args, v->name, found);
    case VAR_COOKIE: {
        int f;
        struct str c = header_list_value(&r->arena, r->headers, r->nheaders, STR_LIT("cookie"), &f);
        if (!f)
            return STR_NULL;
        return find_cookie(c, v->name, found);
    }
    case VAR_SENT_HTTP:
        for (unsigned i = 0; i < r->nresp; i++)
            if (header_var_match(r->resp[i].name, v->name)) {
                *found = 1;
                return r->resp[i].value;
            }
        return STR_NULL;
    case VAR_UPSTREAM_HTTP:
        return header_list_value(&r->arena, r->up_headers, r->nup_headers, v->name, found);
    case VAR_UPSTREAM_COOKIE:
        for (size_t i = 0; i < r->nup_headers; i++) {
            if (!str_caseeq_cstr(r->up_headers[i].name, "set-cookie"))
                continue;
            struct str c = r->up_headers[i].value;
            size_t semi = 0;
            while (semi < c.len && c.p[semi] != ';')
                semi++;
            struct str val = find_cookie((struct str){c.p, semi}, v->name, found);
            if (*found)
                return val;
        }
        return STR_NULL;
    case VAR_MAP: {
        struct str key;
        if (tmpl_eval(s, &v->map->source, &key) < 0)
            return STR_NULL;
        struct regex_caps caps = {0};
        const struct tmpl *val = map_find(v->map, key, &caps);
        if (!val)
            return STR_NULL;
        struct regex_caps saved = r->caps;
        if (caps.n > 0)
            r->caps = caps;
        struct str out;
        int rc = tmpl_eval(s, val, &out);
        r->caps = saved;
        if (rc < 0)
            return STR_NULL;
        *found = 1;
        return out;
    }
    case VAR_SET:
        if (!r->set_vals || !r->set_vals[v->id].p)
            return STR_NULL;
        *found = 1;
        return r->set_vals[v->id];
    case VAR_CAPTURE:
        return capture(r, v->id, found);
    case VAR_NAMED_CAPTURE:
        return named_capture(r, v->name, found);
    }
    return STR_NULL;
}

/* Escape a log value the way nginx does (escape=default / json). */
static size_t escape_into(char *dst, struct str v, enum tmpl_escape esc)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (esc == TMPL_ESC_LOG) {
            if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f) {
                dst[o++] = '\\';
                dst[o++] = 'x';
                dst[o++] = hex[c >> 4];
                dst[o++] = hex[c & 15];
                continue;
            }
        } else if (esc == TMPL_ESC_JSON) {
            if (c == '"' || c == '\\') {
                dst[o++] = '\\';
                dst[o++] = (char)c;
                continue;
            }
            if (c == '\t' || c == '\n' || c == '\r' || c == '\b' || c == '\f') {
                dst[o++] = '\\';
                dst[o++] = c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\b' ? 'b' : 'f';
                continue;
            }
            if (c < 0x20) {
                memcpy(dst + o, "\\u00", 4);
                o += 4;
                dst[o++] = hex[c >> 4];
                dst[o++] = hex[c & 15];
                continue;
            }
        }
        dst[o++] = (char)c;
    }
    return o;
}

int tmpl_eval_esc(struct h1_session *s, const struct tmpl *t, enum tmpl_escape esc,
                  struct str *out)
{
    if (t->constant || !t->segs) {
        *out = t->raw;
        return 0;
    }
    struct request *r = &s->req;
    /* Values first (they may allocate), then one buffer for the result. */
    struct str vals_small[16];
    struct str *vals = vals_small;
    if (t->nsegs > 16) {
        vals = arena_alloc(&r->arena, t->nsegs * sizeof(*vals));
        if (!vals)
            return -1;
    }
    size_t total = 0;
    for (unsigned i = 0; i < t->nsegs; i++) {
        total += t->segs[i].lit.len;
        vals[i] = STR_NULL;
        if (t->segs[i].var) {
            int found;
            const struct var_ref *v = t->segs[i].var;
            if (r->log_marks && v->kind == VAR_BUILTIN && v->id >= VB_TUNNEL_DURATION &&
                v->id <= VB_TUNNEL_CLOSE_REASON) {
                /* Filled in by the tunnel when it ends (tunnel.h). */
                static const char marks[4][2] = {{TUNNEL_MARK, 'd'}, {TUNNEL_MARK, 'c'},
                                                 {TUNNEL_MARK, 'u'}, {TUNNEL_MARK, 'r'}};
                vals[i] = (struct str){marks[v->id - VB_TUNNEL_DURATION], 2};
                total += 2;
                continue;
            }
            vals[i] = var_value(s, t->segs[i].var, &found);
            if (!found && esc != TMPL_ESC_NONE)
                vals[i] = STR_LIT("-");
            total += esc == TMPL_ESC_NONE ? vals[i].len : vals[i].len * 6;
        }
    }
    char *buf = arena_alloc(&r->arena, total + 1);
    if (!buf)
        return -1;
    size_t o = 0;
    for (unsigned i = 0; i < t->nsegs; i++) {
        if (t->segs[i].lit.len) {
            memcpy(buf + o, t->segs[i].lit.p, t->segs[i].lit.len);
            o += t->segs[i].lit.len;
        }
        if (t->segs[i].var) {
            if (esc == TMPL_ESC_NONE || (vals[i].len == 1 && vals[i].p[0] == '-') ||
                (vals[i].len == 2 && vals[i].p[0] == TUNNEL_MARK)) {
                if (vals[i].len)
                    memcpy(buf + o, vals[i].p, vals[i].len);
                o += vals[i].len;
            } else {
                o += escape_into(buf + o, vals[i], esc);
            }
        }
    }
    buf[o] = '\0';
    *out = (struct str){buf, o};
    return 0;
}

int tmpl_eval(struct h1_session *s, const struct tmpl *t, struct str *out)
{
    return tmpl_eval_esc(s, t, TMPL_ESC_NONE, out);
}
