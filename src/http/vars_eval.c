/*
 * vars_eval.c - variable values and template evaluation for a request.
 *
 * Values are computed on demand (nothing is precomputed per request): most
 * requests touch only the few variables their templates name. The builtins
 * are answered by families (request, connection, response and upstreams,
 * TLS, process), each a switch that declines the ids it does not know. The
 * upstream tries behind $upstream_* are recorded here too, for the proxy.
 * A tunnel's log line is evaluated at the switch with the values only known
 * at its end left as marks (proxy/tunnel.h).
 */
#include "http/vars_eval.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/log.h"
#include "core/net.h"
#include "http/compress.h"
#include "http/stream.h"
#include "http/limit_rate.h"
#include "http/stub_status.h"
#include "http/secure_link.h"
#include "http/geo_var.h"
#include "http/referer.h"
#include "conf/split_clients.h"
#include "http/limit_req.h"
#include "http/realip.h"
#include "conf/runtime.h"
#include "tls/tls.h"
#include "core/version.h"

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

/*
 * The value of cookie `name` in one Set-Cookie header, nginx's
 * ngx_http_parse_set_cookie_lines: the header starts with the name
 * (any case), then spaces, '=', spaces; the value runs to the first ';'
 * (commas and trailing spaces included: "tc=a,tc=b" gives "a,tc=b"). A tab
 * or anything else before '=' makes the header not match.
 */
static struct str set_cookie_value(struct str h, struct str name, int *found)
{
    *found = 0;
    if (name.len >= h.len || strncasecmp(h.p, name.p, name.len) != 0)
        return STR_NULL;
    size_t i = name.len;
    while (i < h.len && h.p[i] == ' ')
        i++;
    if (i == h.len || h.p[i++] != '=')
        return STR_NULL;
    while (i < h.len && h.p[i] == ' ')
        i++;
    size_t start = i;
    while (i < h.len && h.p[i] != ';')
        i++;
    *found = 1;
    return (struct str){h.p + start, i - start};
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

/* Seconds with milliseconds since the monotonic time `since` (never negative). */
static struct str elapsed_str(struct arena *a, uint64_t since)
{
    uint64_t now = loop_now();
    return msec_str(a, now > since ? now - since : 0);
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

/* $binary_remote_addr: the address in network order, 4 bytes for IPv4 and 16
 * for IPv6 (an IPv4-mapped one included), as nginx: short keys for limit zones. */
static struct str binary_addr(struct arena *a, const union conn_addr *ca)
{
    if (ca->sa.sa_family == AF_INET)
        return (struct str){(const char *)&ca->in.sin_addr, 4};
    if (ca->sa.sa_family == AF_INET6)
        return (struct str){(const char *)ca->in6.sin6_addr.s6_addr, 16};
    return addr_text(a, ca);
}

static void ensure_local(struct client_stream *s)
{
    client_conn_local(s->conn);
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

/* ------------------------------------------------------------ upstream tries */

void upstream_pass_begin(struct request *r)
{
    if (r->nup_tries == 0)
        return;
    if (upstream_try_begin(r, NULL))
        r->up_tries[r->nup_tries - 1].response_ms = 0; /* a separator has no times */
}

struct upstream_try *upstream_try_begin(struct request *r, const char *peer)
{
    struct upstream_try *last = upstream_try_last(r);
    uint64_t now = loop_now();
    if (last && last->response_ms < 0)
        last->response_ms = (int64_t)(now - last->start_ms);
    if (r->nup_tries == r->cap_up_tries) {
        unsigned cap = r->cap_up_tries ? r->cap_up_tries * 2 : 4;
        struct upstream_try *n = arena_alloc(&r->arena, cap * sizeof(*n));
        if (!n)
            return NULL;
        if (r->nup_tries)
            memcpy(n, r->up_tries, r->nup_tries * sizeof(*n));
        r->up_tries = n;
        r->cap_up_tries = cap;
    }
    struct upstream_try *t = &r->up_tries[r->nup_tries++];
    memset(t, 0, sizeof(*t));
    t->peer = peer;
    t->start_ms = now;
    t->connect_ms = t->header_ms = t->response_ms = -1;
    return t;
}

struct upstream_try *upstream_try_last(struct request *r)
{
    if (r->nup_tries == 0 || !r->up_tries[r->nup_tries - 1].peer)
        return NULL;
    return &r->up_tries[r->nup_tries - 1];
}

void upstream_try_end(struct request *r)
{
    struct upstream_try *t = upstream_try_last(r);
    if (t && t->response_ms < 0)
        t->response_ms = (int64_t)(loop_now() - t->start_ms);
}

/* One try's value of `field` appended at `p` (room for 24 bytes or the peer name). */
static size_t try_value(char *p, const struct upstream_try *t, enum upstream_field field,
                        int64_t open_ms)
{
    int64_t ms = -1;
    uint64_t n = 0;
    switch (field) {
    case UF_ADDR: {
        size_t l = strlen(t->peer);
        memcpy(p, t->peer, l);
        return l;
    }
    case UF_STATUS:
        if (!t->status)
            break;
        return (size_t)sprintf(p, "%d", t->status);
    case UF_CONNECT_TIME:
        ms = t->connect_ms;
        goto time;
    case UF_HEADER_TIME:
        ms = t->header_ms;
        goto time;
    case UF_RESPONSE_TIME:
        ms = t->response_ms;
        if (ms < 0 && open_ms >= 0)
            ms = open_ms > (int64_t)t->start_ms ? open_ms - (int64_t)t->start_ms : 0;
    time:
        if (ms < 0)
            break;
        return (size_t)sprintf(p, "%lld.%03lld", (long long)(ms / 1000), (long long)(ms % 1000));
    case UF_RESPONSE_LENGTH:
        n = t->header_ms >= 0 && t->bytes_received > t->head_bytes
                ? t->bytes_received - t->head_bytes : 0;
        goto num;
    case UF_BYTES_RECEIVED:
        n = t->bytes_received;
        goto num;
    case UF_BYTES_SENT:
        n = t->bytes_sent;
    num:
        return (size_t)sprintf(p, "%llu", (unsigned long long)n);
    }
    p[0] = '-';
    return 1;
}

int upstream_list(struct arena *a, const struct upstream_try *t, unsigned n,
                  enum upstream_field field, int64_t open_ms, struct str *out)
{
    if (n == 0)
        return -1;
    size_t cap = 0;
    for (unsigned i = 0; i < n; i++)
        cap += (t[i].peer && field == UF_ADDR ? strlen(t[i].peer) : 24) + 3;
    char *p = arena_alloc(a, cap + 1);
    if (!p)
        return -1;
    size_t o = 0;
    /* nginx's loop: a value per try; before the next one ", ", or " : " when a
     * separator comes (which prints nothing itself). */
    for (unsigned i = 0;;) {
        if (t[i].peer)
            o += try_value(p + o, &t[i], field, i == n - 1 ? open_ms : -1);
        if (++i == n)
            break;
        if (t[i].peer) {
            memcpy(p + o, ", ", 2);
            o += 2;
        } else {
            memcpy(p + o, " : ", 3);
            o += 3;
            if (++i == n)
                break;
        }
    }
    *out = (struct str){p, o};
    return 0;
}

static struct str upstream_var(struct client_stream *s, enum upstream_field field, int *found)
{
    struct request *r = &s->req;
    /* Proxying still runs (a log line written as the client goes away):
     * the last try's response time is the time so far, as nginx's
     * finalize sets it before logging. */
    int64_t open_ms = r->proxy ? (int64_t)loop_now() : -1;
    struct str out;
    if (upstream_list(&r->arena, r->up_tries, r->nup_tries, field, open_ms, &out) < 0) {
        *found = 0;
        return STR_NULL;
    }
    return out;
}

/* ------------------------------------------------------------ helpers */

static struct str str_slice(struct str s, size_t from)
{
    return from >= s.len ? (struct str){s.p + s.len, 0} : (struct str){s.p + from, s.len - from};
}

/* nginx's base64 alphabet decoder: stops at '=', refuses other bytes. */
static int b64_decode(struct str in, unsigned char *out, size_t *outlen)
{
    static signed char val[256];
    static int ready;
    if (!ready) {
        const char *al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        memset(val, -1, sizeof(val));
        for (int i = 0; i < 64; i++)
            val[(unsigned char)al[i]] = (signed char)i;
        ready = 1;
    }
    size_t len = 0;
    while (len < in.len && in.p[len] != '=') {
        if (val[(unsigned char)in.p[len]] < 0)
            return -1;
        len++;
    }
    if (len % 4 == 1)
        return -1;
    const unsigned char *s = (const unsigned char *)in.p;
    size_t o = 0;
    for (; len > 3; len -= 4, s += 4) {
        out[o++] = (unsigned char)(val[s[0]] << 2 | val[s[1]] >> 4);
        out[o++] = (unsigned char)(val[s[1]] << 4 | val[s[2]] >> 2);
        out[o++] = (unsigned char)(val[s[2]] << 6 | val[s[3]]);
    }
    if (len > 1)
        out[o++] = (unsigned char)(val[s[0]] << 2 | val[s[1]] >> 4);
    if (len > 2)
        out[o++] = (unsigned char)(val[s[1]] << 4 | val[s[2]] >> 2);
    *outlen = o;
    return 0;
}

int basic_auth_user(struct arena *a, struct str v, struct str *user)
{
    if (v.len < 6 || strncasecmp(v.p, "Basic ", 6) != 0)
        return -1;
    v = str_slice(v, 6);
    while (v.len && v.p[0] == ' ')
        v = str_slice(v, 1);
    if (v.len == 0)
        return -1;
    unsigned char *buf = arena_alloc(a, v.len / 4 * 3 + 3);
    size_t n;
    if (!buf || b64_decode(v, buf, &n) < 0)
        return -1;
    size_t colon = 0;
    while (colon < n && buf[colon] != ':')
        colon++;
    if (colon == 0 || colon == n)
        return -1;
    *user = (struct str){(const char *)buf, colon};
    return 0;
}

/* The first server_name as written ($server_name; $host without a Host):
 * "~regex", "*.example.com", "www.example.*", "" when the server has none. */
static struct str first_server_name(struct request *r)
{
    if (!r->srv || !r->srv->nnames)
        return STR_LIT("");
    const struct server_name *sn = &r->srv->names[0];
    const char *fmt = sn->kind == SN_REGEX                      ? "~%.*s"
                      : sn->kind == SN_WILD_HEAD && !sn->dot_form ? "*.%.*s"
                      : sn->kind == SN_WILD_TAIL                  ? "%.*s*"
                                                                  : NULL;
    if (!fmt)
        return sn->name;
    char *p = arena_printf(&r->arena, fmt, (int)sn->name.len, sn->name.p);
    return p ? str_from_cstr(p) : sn->name;
}

/* $document_root: the location's root or alias, evaluated, joined to the
 * prefix when relative; nginx's default root is "html". -1 on failure. */
static int document_root(struct client_stream *s, struct str *out)
{
    struct request *r = &s->req;
    const struct loc_conf *lc = r->lc;
    if (!lc)
        return -1;
    const struct tmpl *t = lc->alias ? lc->alias : lc->root;
    struct str v = STR_LIT("html");
    if (t && tmpl_eval(s, t, &v) < 0)
        return -1;
    if (!lc->alias && v.len > 1 && v.p[v.len - 1] == '/')
        v.len--; /* as static.c serves it: "root /srv/" is "/srv" */
    const char *prefix = r->rt ? r->rt->gen->prefix : NULL;
    if ((v.len == 0 || v.p[0] != '/') && prefix) {
        char *p = arena_printf(&r->arena, "%s%.*s", prefix, (int)v.len, v.p);
        if (!p)
            return -1;
        v = str_from_cstr(p);
    }
    *out = v;
    return 0;
}

/* $request_filename: the file the URI maps to (nginx ngx_http_map_uri_to_path). */
static int request_filename(struct client_stream *s, struct str *out)
{
    struct request *r = &s->req;
    struct str root, tail = r->uri;
    if (document_root(s, &root) < 0)
        return -1;
    if (r->lc->alias) {
        const struct location *loc = r->loc;
        if (!loc || loc->match == LOC_NAMED)
            return -1;
        if (loc->match == LOC_REGEX || loc->match == LOC_REGEX_ICASE)
            tail = STR_NULL; /* the alias is the whole path */
        else if (tail.len >= loc->pattern.len && memcmp(tail.p, loc->pattern.p, loc->pattern.len) == 0)
            tail = str_slice(tail, loc->pattern.len);
        else
            return -1; /* nginx: "alias" cannot be used where URI was rewritten */
    }
    char *p = arena_printf(&r->arena, "%.*s%.*s", (int)root.len, root.p, (int)tail.len,
                           tail.p ? tail.p : "");
    if (!p)
        return -1;
    *out = str_from_cstr(p);
    return 0;
}

/* $realpath_root: $document_root with symbolic links resolved. */
static int realpath_root(struct client_stream *s, struct str *out)
{
    struct request *r = &s->req;
    struct str root;
    if (document_root(s, &root) < 0)
        return -1;
    char *path = arena_strndup(&r->arena, root.p, root.len);
    char real[PATH_MAX];
    if (!path)
        return -1;
    if (!realpath(path, real)) {
        sy_log(LOG_LVL_CRIT, "*%llu realpath() \"%s\" failed (%d: %s)",
               (unsigned long long)s->conn->id, path, errno, strerror(errno));
        return -1;
    }
    *out = arena_str(&r->arena, str_from_cstr(real));
    return out->p ? 0 : -1;
}

/* The port the client named: from an absolute-form request target, else
 * from the Host header ($request_port); 0 when none. */
static unsigned request_port(const struct request *r)
{
    struct str auth = STR_NULL;
    const char *sp = r->request_line.p ? memchr(r->request_line.p, ' ', r->request_line.len) : NULL;
    if (sp) {
        struct str t = {sp + 1, r->request_line.len - (size_t)(sp + 1 - r->request_line.p)};
        size_t skip = t.len >= 7 && strncasecmp(t.p, "http://", 7) == 0    ? 7
                      : t.len >= 8 && strncasecmp(t.p, "https://", 8) == 0 ? 8
                                                                            : 0;
        if (skip) {
            size_t k = skip;
            while (k < t.len && t.p[k] != '/' && t.p[k] != '?' && t.p[k] != ' ')
                k++;
            auth = (struct str){t.p + skip, k - skip};
        }
    }
    if (!auth.p && (r->info.flags & H1_F_HAS_HOST))
        auth = r->info.host;
    size_t i = 0;
    if (auth.len && auth.p[0] == '[')
        while (i < auth.len && auth.p[i] != ']')
            i++;
    while (i < auth.len && auth.p[i] != ':')
        i++;
    unsigned port = 0;
    for (i++; i < auth.len && auth.p[i] >= '0' && auth.p[i] <= '9' && port <= 65535; i++)
        port = port * 10 + (unsigned)(auth.p[i] - '0');
    return port <= 65535 ? port : 0;
}

/* $request_id: 16 random bytes in hex, made once per request (the same value
 * in a proxied header and in the log line, as nginx). */
static struct str request_id(struct request *r)
{
    if (!r->request_id) {
        unsigned char b[16];
        if (RAND_bytes(b, sizeof(b)) != 1 && getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
            return STR_NULL;
        char *p = arena_alloc(&r->arena, 33);
        if (!p)
            return STR_NULL;
        static const char hex[] = "0123456789abcdef";
        for (int i = 0; i < 16; i++) {
            p[2 * i] = hex[b[i] >> 4];
            p[2 * i + 1] = hex[b[i] & 15];
        }
        p[32] = '\0';
        r->request_id = p;
    }
    return (struct str){r->request_id, 32};
}

/* $hostname: the machine's name, lower-cased (nginx reads it at start). */
static struct str hostname(void)
{
    static char name[256];
    if (!name[0]) {
        if (gethostname(name, sizeof(name)) != 0)
            snprintf(name, sizeof(name), "localhost");
        name[sizeof(name) - 1] = '\0';
        for (char *c = name; *c; c++)
            *c = (char)sy_tolower((unsigned char)*c);
    }
    return str_from_cstr(name);
}

/* $tcpinfo_*: the kernel's view of the client connection (TCP_INFO). */
static struct str tcpinfo(struct client_stream *s, unsigned id, int *found)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    if (getsockopt(s->conn->c.h.fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) {
        *found = 0;
        return STR_NULL;
    }
    uint32_t v = id == VB_TCPINFO_RTT      ? ti.tcpi_rtt
                 : id == VB_TCPINFO_RTTVAR ? ti.tcpi_rttvar
                 : id == VB_TCPINFO_SND_CWND ? ti.tcpi_snd_cwnd
                                             : ti.tcpi_rcv_space;
    return num_str(&s->req.arena, v);
}

/* A not-found result: empty in templates, "-" in access logs. */
static struct str none(int *found)
{
    *found = 0;
    return STR_NULL;
}

/* ------------------------------------------------------------ builtins by family */

/* Addresses and the connection. NULL .p with *found = -1: not this family. */
static struct str conn_var(struct client_stream *s, unsigned id, int *found)
{
    struct request *r = &s->req;
    struct arena *a = &r->arena;
    char tmp[128];
    switch (id) {
    case VB_REMOTE_ADDR:
        return addr_text(a, realip_client(s));
    case VB_BINARY_REMOTE_ADDR:
        return binary_addr(a, realip_client(s));
    case VB_REMOTE_PORT:
        return port_text(a, realip_client(s));
    case VB_REALIP_REMOTE_ADDR:
        return addr_text(a, &s->conn->c.peer);
    case VB_REALIP_REMOTE_PORT:
        return port_text(a, &s->conn->c.peer);
    case VB_PROXY_PROTOCOL_ADDR:
    case VB_PROXY_PROTOCOL_SERVER_ADDR:
        /* Not found (empty; "-" in logs) without a PROXY header naming addresses. */
        if (!pp_addr_text(&s->conn->pp, id == VB_PROXY_PROTOCOL_SERVER_ADDR, tmp, sizeof(tmp)))
            return none(found);
        return arena_str(a, str_from_cstr(tmp));
    case VB_PROXY_PROTOCOL_PORT:
    case VB_PROXY_PROTOCOL_SERVER_PORT:
        if (!s->conn->pp.family)
            return none(found);
        return num_str(a, id == VB_PROXY_PROTOCOL_PORT ? s->conn->pp.src_port : s->conn->pp.dst_port);
    case VB_SERVER_ADDR:
        ensure_local(s);
        net_ip_str(&s->conn->local.sa, tmp, sizeof(tmp));
        return arena_str(a, str_from_cstr(tmp));
    case VB_SERVER_PORT:
        ensure_local(s);
        return num_str(a, net_port(&s->conn->local.sa));
    case VB_CONNECTION:
        return num_str(a, s->conn->id);
    case VB_CONNECTION_REQUESTS:
        return num_str(a, s->conn->requests);
    case VB_CONNECTION_TIME:
        return elapsed_str(a, s->conn->created_ms);
    case VB_PIPE:
        return r->pipelined ? STR_LIT("p") : STR_LIT(".");
    case VB_GZIP_RATIO:
    case VB_BROTLI_RATIO:
        /* not found until the compressor has finished (nginx) */
        if (!compress_ratio(s, id == VB_GZIP_RATIO ? COMPRESS_GZIP : COMPRESS_BR, tmp,
                            sizeof(tmp)))
            return none(found);
        return arena_str(a, str_from_cstr(tmp));
    case VB_TCPINFO_RTT:
    case VB_TCPINFO_RTTVAR:
    case VB_TCPINFO_SND_CWND:
    case VB_TCPINFO_RCV_SPACE:
        return tcpinfo(s, id, found);
    case VB_HTTP2: /* "h2" over TLS, "h2c" in the clear, empty for HTTP/1.x */
        if (s->conn->proto != CLIENT_PROTO_H2)
            return STR_LIT("");
        return tls_is(&s->conn->c) ? STR_LIT("h2") : STR_LIT("h2c");
    case VB_HTTP3: /* no HTTP/3 yet */
        return STR_LIT("");
    }
    *found = -1;
    return STR_NULL;
}

/* TLS ($https, $ssl_*). */
static struct str tls_var(struct client_stream *s, unsigned id, int *found)
{
    struct arena *a = &s->req.arena;
    static const enum tls_info infos[] = {
        [VB_SSL_CIPHERS] = TLS_I_CIPHERS,       [VB_SSL_CURVE] = TLS_I_CURVE,
        [VB_SSL_CURVES] = TLS_I_CURVES,         [VB_SSL_SESSION_ID] = TLS_I_SESSION_ID,
        [VB_SSL_SESSION_REUSED] = TLS_I_SESSION_REUSED, [VB_SSL_EARLY_DATA] = TLS_I_EARLY_DATA,
        [VB_SSL_ALPN_PROTOCOL] = TLS_I_ALPN,
    };
    switch (id) {
    case VB_SCHEME: /* the connection's: plain HTTP on a TLS port is "http" (nginx) */
        return tls_is(&s->conn->c) ? STR_LIT("https") : STR_LIT("http");
    case VB_HTTPS:
        return tls_is(&s->conn->c) ? STR_LIT("on") : STR_LIT("");
    case VB_SSL_PROTOCOL:
    case VB_SSL_CIPHER:
    case VB_SSL_SERVER_NAME: {
        const char *v = id == VB_SSL_PROTOCOL ? tls_protocol(&s->conn->c)
                        : id == VB_SSL_CIPHER ? tls_cipher(&s->conn->c)
                                              : tls_server_name(&s->conn->c);
        return v ? str_from_cstr(v) : none(found);
    }
    case VB_SSL_CIPHERS:
    case VB_SSL_CURVE:
    case VB_SSL_CURVES:
    case VB_SSL_SESSION_ID:
    case VB_SSL_SESSION_REUSED:
    case VB_SSL_EARLY_DATA:
    case VB_SSL_ALPN_PROTOCOL: {
        /* nginx: an empty value is "not found" */
        struct str v = tls_info(&s->conn->c, infos[id], a);
        return v.len ? v : none(found);
    }
    case VB_SSL_CLIENT_VERIFY:
    case VB_SSL_CLIENT_CERT:
    case VB_SSL_CLIENT_RAW_CERT:
    case VB_SSL_CLIENT_ESCAPED_CERT:
    case VB_SSL_CLIENT_S_DN:
    case VB_SSL_CLIENT_I_DN:
    case VB_SSL_CLIENT_S_DN_LEGACY:
    case VB_SSL_CLIENT_I_DN_LEGACY:
    case VB_SSL_CLIENT_SERIAL:
    case VB_SSL_CLIENT_FINGERPRINT:
    case VB_SSL_CLIENT_V_START:
    case VB_SSL_CLIENT_V_END:
    case VB_SSL_CLIENT_V_REMAIN: {
        static const enum tls_client certs[] = {
            [VB_SSL_CLIENT_VERIFY] = TLS_C_VERIFY,
            [VB_SSL_CLIENT_CERT] = TLS_C_CERT,
            [VB_SSL_CLIENT_RAW_CERT] = TLS_C_RAW_CERT,
            [VB_SSL_CLIENT_ESCAPED_CERT] = TLS_C_ESCAPED_CERT,
            [VB_SSL_CLIENT_S_DN] = TLS_C_S_DN,
            [VB_SSL_CLIENT_I_DN] = TLS_C_I_DN,
            [VB_SSL_CLIENT_S_DN_LEGACY] = TLS_C_S_DN_LEGACY,
            [VB_SSL_CLIENT_I_DN_LEGACY] = TLS_C_I_DN_LEGACY,
            [VB_SSL_CLIENT_SERIAL] = TLS_C_SERIAL,
            [VB_SSL_CLIENT_FINGERPRINT] = TLS_C_FINGERPRINT,
            [VB_SSL_CLIENT_V_START] = TLS_C_V_START,
            [VB_SSL_CLIENT_V_END] = TLS_C_V_END,
            [VB_SSL_CLIENT_V_REMAIN] = TLS_C_V_REMAIN,
        };
        struct str v = tls_client_cert(&s->conn->c, certs[id], a); /* empty: not found (nginx) */
        return v.len ? v : none(found);
    }
    }
    *found = -1;
    return STR_NULL;
}

/* The request: line, URI, arguments, headers, body, files. */
static struct str request_var(struct client_stream *s, unsigned id, int *found)
{
    struct request *r = &s->req;
    struct arena *a = &r->arena;
    struct str v;
    switch (id) {
    case VB_HOST:
        return r->host.len ? r->host : first_server_name(r);
    case VB_SERVER_NAME:
        return first_server_name(r);
    case VB_SERVER_PROTOCOL:
        if (s->conn->proto == CLIENT_PROTO_H2)
            return STR_LIT("HTTP/2.0");
        return r->minor ? STR_LIT("HTTP/1.1") : STR_LIT("HTTP/1.0");
    case VB_REQUEST_URI:
        return r->request_uri;
    case VB_URI:
    case VB_DOCUMENT_URI:
        return r->uri;
    case VB_ARGS:
    case VB_QUERY_STRING:
        return r->args.p ? r->args : none(found);
    case VB_IS_ARGS:
        return r->args.len ? STR_LIT("?") : STR_LIT("");
    case VB_REQUEST_PORT:
    case VB_IS_REQUEST_PORT: {
        unsigned port = request_port(r);
        if (id == VB_IS_REQUEST_PORT)
            return port ? STR_LIT(":") : STR_LIT("");
        return port ? num_str(a, port) : STR_LIT("");
    }
    case VB_REQUEST_METHOD:
        return r->method;
    case VB_REQUEST_LENGTH:
        return num_str(a, r->head_len + r->body_received);
    case VB_REQUEST:
        return r->request_line;
    case VB_CONTENT_LENGTH:
        v = req_header(r, "content-length");
        return v.p ? v : none(found);
    case VB_CONTENT_TYPE:
        v = req_header(r, "content-type");
        return v.p ? v : none(found);
    case VB_HTTP_USER_AGENT:
        return header_list_value(a, r->headers, r->nheaders, STR_LIT("user_agent"), found);
    case VB_HTTP_REFERER:
        return header_list_value(a, r->headers, r->nheaders, STR_LIT("referer"), found);
    case VB_CONNECTIONS_ACTIVE:
    case VB_CONNECTIONS_READING:
    case VB_CONNECTIONS_WRITING:
    case VB_CONNECTIONS_WAITING: {
        static const char which[] = "arwW";
        char *p = arena_printf(a, "%lld",
                               (long long)stub_status_value(which[id - VB_CONNECTIONS_ACTIVE]));
        return p ? str_from_cstr(p) : none(found);
    }
    case VB_SECURE_LINK:
    case VB_SECURE_LINK_EXPIRES: {
        int ok;
        v = id == VB_SECURE_LINK ? secure_link_value(s, &ok) : secure_link_expires(s, &ok);
        return ok ? v : none(found);
    }
    case VB_INVALID_REFERER:
        v = req_header(r, "referer");
        return referer_invalid(r->lc ? r->lc->referer : NULL, r->srv, v.p != NULL, v)
                   ? STR_LIT("1")
                   : STR_LIT("");
    case VB_REMOTE_USER:
        v = req_header(r, "authorization");
        return v.p && basic_auth_user(a, v, &v) == 0 ? v : none(found);
    case VB_REQUEST_BODY:
        return r->request_body.p ? r->request_body : none(found);
    case VB_REQUEST_BODY_FILE: /* bodies are never written to files */
        return none(found);
    case VB_REQUEST_ID:
        return request_id(r);
    case VB_DOCUMENT_ROOT:
        return document_root(s, &v) == 0 ? v : none(found);
    case VB_REALPATH_ROOT:
        return realpath_root(s, &v) == 0 ? v : none(found);
    case VB_REQUEST_FILENAME:
        return request_filename(s, &v) == 0 ? v : none(found);
    case VB_LIMIT_RATE: /* the rate in force, 0 = unlimited */
        return limit_rate_value(s, &v) == 0 ? v : STR_LIT("0");
    }
    *found = -1;
    return STR_NULL;
}

/* The response, the proxy and upstreams. */
static struct str response_var(struct client_stream *s, unsigned id, int *found)
{
    struct request *r = &s->req;
    struct arena *a = &r->arena;
    char tmp[128];
    switch (id) {
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
    case VB_REQUEST_COMPLETION:
        return r->completed ? STR_LIT("OK") : STR_LIT("");
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
        return r->proxy_host.p ? r->proxy_host : none(found);
    case VB_PROXY_PORT:
        return r->proxy_port.p ? r->proxy_port : none(found);
    case VB_UPSTREAM_ADDR:
        return upstream_var(s, UF_ADDR, found);
    case VB_UPSTREAM_STATUS:
        return upstream_var(s, UF_STATUS, found);
    case VB_UPSTREAM_CONNECT_TIME:
        return upstream_var(s, UF_CONNECT_TIME, found);
    case VB_UPSTREAM_HEADER_TIME:
        return upstream_var(s, UF_HEADER_TIME, found);
    case VB_UPSTREAM_RESPONSE_TIME:
        return upstream_var(s, UF_RESPONSE_TIME, found);
    case VB_UPSTREAM_RESPONSE_LENGTH:
        return upstream_var(s, UF_RESPONSE_LENGTH, found);
    case VB_UPSTREAM_BYTES_RECEIVED:
        return upstream_var(s, UF_BYTES_RECEIVED, found);
    case VB_UPSTREAM_BYTES_SENT:
        return upstream_var(s, UF_BYTES_SENT, found);
    case VB_UPSTREAM_CACHE_STATUS: {
        static const char *const names[] = {NULL,    "MISS",    "BYPASS",      "EXPIRED",
                                            "STALE", "UPDATING", "REVALIDATED", "HIT"};
        const char *v = r->cache_status < sizeof(names) / sizeof(names[0])
                            ? names[r->cache_status] : NULL;
        return v ? str_from_cstr(v) : none(found);
    }
    case VB_UPSTREAM_CACHE_LAST_MODIFIED:
    case VB_UPSTREAM_CACHE_ETAG:
        return none(found);
    case VB_LIMIT_REQ_STATUS:
    case VB_LIMIT_CONN_STATUS: {
        const char *v = limit_status_name(id == VB_LIMIT_REQ_STATUS ? r->limit_req_status
                                                                    : r->limit_conn_status);
        return v ? str_from_cstr(v) : none(found);
    }
    case VB_TUNNEL_DURATION:
        return msec_str(a, r->tunnel_ms);
    case VB_TUNNEL_BYTES_FROM_CLIENT:
        return num_str(a, r->tunnel_from_client);
    case VB_TUNNEL_BYTES_FROM_UPSTREAM:
        return num_str(a, r->tunnel_from_upstream);
    case VB_TUNNEL_CLOSE_REASON:
        return r->tunnel_close_reason ? str_from_cstr(r->tunnel_close_reason) : none(found);
    }
    *found = -1;
    return STR_NULL;
}

/* Time and the process. */
static struct str process_var(struct client_stream *s, unsigned id, int *found)
{
    struct arena *a = &s->req.arena;
    switch (id) {
    case VB_TIME_LOCAL:
        return arena_str(a, str_from_cstr(time_local()));
    case VB_TIME_ISO8601:
        return arena_str(a, str_from_cstr(time_iso8601()));
    case VB_MSEC:
        return msec_str(a, loop_wall_ms());
    case VB_HOSTNAME:
        return hostname();
    case VB_PID:
        return num_str(a, (uint64_t)getpid());
    case VB_NGINX_VERSION:
        return STR_LIT(SY_NGINX_COMPAT_VERSION);
    case VB_SWITCHYARD_VERSION:
        return STR_LIT(SY_VERSION);
    }
    *found = -1;
    return STR_NULL;
}

static struct str builtin(struct client_stream *s, unsigned id, int *found)
{
    static struct str (*const families[])(struct client_stream *, unsigned, int *) = {
        request_var, conn_var, response_var, tls_var, process_var,
    };
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        *found = 1;
        struct str v = families[i](s, id, found);
        if (*found >= 0)
            return v;
    }
    *found = 0; /* VB_SENT_HTTP_CONTENT_TYPE_UNUSED */
    return STR_NULL;
}

/* $sent_http_connection / $sent_http_keep_alive: made by the head writer
 * (response.c), not kept among the response headers. Sets *handled. */
static struct str sent_generated(struct request *r, struct str name, int *found, int *handled)
{
    *handled = 1;
    *found = 1;
    if (str_eq(name, STR_LIT("connection")))
        return r->status == 101 ? STR_LIT("upgrade")
               : r->keepalive   ? STR_LIT("keep-alive")
                                : STR_LIT("close");
    if (str_eq(name, STR_LIT("keep_alive"))) {
        const struct loc_conf *lc = r->lc;
        if (r->keepalive && r->status != 101 && lc && lc->keepalive_header_timeout != CONF_UNSET_U64 &&
            lc->keepalive_header_timeout != 0) {
            char *p = arena_printf(&r->arena, "timeout=%llu",
                                   (unsigned long long)(lc->keepalive_header_timeout / 1000));
            return p ? str_from_cstr(p) : STR_NULL;
        }
        return none(found);
    }
    *handled = 0;
    return STR_NULL;
}

/* Response headers named `var` ($sent_http_*), several joined with ", ". */
static struct str sent_header(struct request *r, struct str var, int *found)
{
    int handled;
    struct str v = sent_generated(r, var, found, &handled);
    if (handled)
        return v;
    *found = 0;
    size_t count = 0, total = 0;
    for (unsigned i = 0; i < r->nresp; i++)
        if (header_var_match(r->resp[i].name, var)) {
            if (!count++)
                v = r->resp[i].value;
            total += r->resp[i].value.len + 2;
        }
    if (count == 0)
        return STR_NULL;
    *found = 1;
    if (count == 1)
        return v;
    char *buf = arena_alloc(&r->arena, total);
    if (!buf)
        return v;
    size_t o = 0;
    for (unsigned i = 0; i < r->nresp; i++) {
        if (!header_var_match(r->resp[i].name, var))
            continue;
        if (o) {
            memcpy(buf + o, ", ", 2);
            o += 2;
        }
        memcpy(buf + o, r->resp[i].value.p, r->resp[i].value.len);
        o += r->resp[i].value.len;
    }
    return (struct str){buf, o};
}

struct str var_value(struct client_stream *s, const struct var_ref *v, int *found)
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
        return sent_header(r, v->name, found);
    case VAR_UPSTREAM_TRAILER: /* upstream trailers are not kept */
    case VAR_SENT_TRAILER:     /* no add_trailer: nothing is ever sent */
        return STR_NULL;
    case VAR_UPSTREAM_HTTP:
        return header_list_value(&r->arena, r->up_headers, r->nup_headers, v->name, found);
    case VAR_UPSTREAM_COOKIE:
        for (size_t i = 0; i < r->nup_headers; i++) {
            if (!str_caseeq_cstr(r->up_headers[i].name, "set-cookie"))
                continue;
            struct str val = set_cookie_value(r->up_headers[i].value, v->name, found);
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
    case VAR_GEO:
        *found = 1;
        return geo_var_value(s, v->data);
    case VAR_SPLIT: {
        const struct split_clients_conf *sc = v->data;
        struct str key;
        if (tmpl_eval(s, &sc->source, &key) < 0)
            return STR_NULL;
        *found = 1;
        return split_clients_pick(sc, split_murmur_hash2((const unsigned char *)key.p, key.len));
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

void var_set_builtin(struct client_stream *s, unsigned id, struct str v)
{
    struct request *r = &s->req;
    if (id == VB_LIMIT_RATE) {
        /* nginx: a size ("10k"); an invalid value leaves the rate as it was */
        uint64_t n;
        if (str_to_size(v, &n) == 0 && n <= INT64_MAX) {
            r->limit_rate = (int64_t)n;
            r->limit_rate_set = 1;
        }
        return;
    }
    if (id == VB_ARGS) {
        /* An empty value leaves no arguments: no "?" on the proxied URI
         * (nginx adds one only for a non-empty $args). */
        r->args = v.len ? v : STR_NULL;
        r->uri_changed = 1;
    }
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

/* A mark (tunnel.h) in the request arena: TUNNEL_MARK, `letter`, `base`, ';'. */
static struct str mark(struct arena *a, char letter, uint64_t base)
{
    char *p = arena_printf(a, "%c%c%llu;", TUNNEL_MARK, letter, (unsigned long long)base);
    return p ? str_from_cstr(p) : STR_NULL;
}

/* An $upstream_* list whose last try's value the tunnel gives: the list of
 * the tries before it, then the mark. */
static struct str upstream_list_mark(struct request *r, enum upstream_field field, char letter,
                                     uint64_t base)
{
    struct str head = STR_LIT("");
    unsigned n = r->nup_tries;
    if (n > 1 && upstream_list(&r->arena, r->up_tries, n - 1, field, -1, &head) < 0)
        return STR_NULL;
    struct str m = mark(&r->arena, letter, base);
    const char *sep = n > 1 && r->up_tries[n - 2].peer ? ", " : "";
    char *p = arena_printf(&r->arena, "%.*s%s%.*s", (int)head.len, head.p, sep, (int)m.len, m.p);
    return p ? str_from_cstr(p) : STR_NULL;
}

/*
 * In a tunnel's log line prepared at the switch, the value of a variable
 * that is only known when the tunnel ends, as a mark (tunnel.h); STR_NULL
 * for the others, evaluated now.
 */
static struct str tunnel_mark(struct client_stream *s, const struct var_ref *v)
{
    struct request *r = &s->req;
    if (!r->log_marks || v->kind != VAR_BUILTIN)
        return STR_NULL;
    struct arena *a = &r->arena;
    struct upstream_try *t = upstream_try_last(r);
    switch (v->id) {
    case VB_TUNNEL_DURATION:
        return mark(a, 'd', 0);
    case VB_TUNNEL_BYTES_FROM_CLIENT:
        return mark(a, 'c', 0);
    case VB_TUNNEL_BYTES_FROM_UPSTREAM:
        return mark(a, 'u', 0);
    case VB_TUNNEL_CLOSE_REASON:
        return mark(a, 'r', 0);
    case VB_REQUEST_TIME:
        return mark(a, 'T', r->start_wall_ms);
    case VB_CONNECTION_TIME:
        return mark(a, 'K', s->conn->created_ms);
    case VB_BYTES_SENT:
        return mark(a, 'B', r->bytes_sent);
    case VB_BODY_BYTES_SENT:
        return mark(a, 'b', r->body_bytes_sent);
    case VB_REQUEST_COMPLETION:
        return mark(a, 'C', 0);
    case VB_MSEC:
        return mark(a, 'M', 0);
    case VB_TIME_LOCAL:
        return mark(a, 'L', 0);
    case VB_TIME_ISO8601:
        return mark(a, 'I', 0);
    case VB_UPSTREAM_RESPONSE_TIME:
        return t ? upstream_list_mark(r, UF_RESPONSE_TIME, 'R', t->start_ms) : STR_NULL;
    case VB_UPSTREAM_BYTES_RECEIVED:
        return t ? upstream_list_mark(r, UF_BYTES_RECEIVED, 'X', t->bytes_received) : STR_NULL;
    case VB_UPSTREAM_BYTES_SENT:
        return t ? upstream_list_mark(r, UF_BYTES_SENT, 'S', t->bytes_sent) : STR_NULL;
    }
    return STR_NULL;
}

int tmpl_eval_esc(struct client_stream *s, const struct tmpl *t, enum tmpl_escape esc,
                  struct str *out)
{
    if (t->constant || !t->segs) {
        *out = t->raw;
        return 0;
    }
    struct request *r = &s->req;
    /* Values first (they may allocate), then one buffer for the result.
     * verbatim[i]: copied as is (a tunnel mark, the "-" of a missing value). */
    struct str vals_small[16];
    unsigned char verbatim_small[16];
    struct str *vals = vals_small;
    unsigned char *verbatim = verbatim_small;
    if (t->nsegs > 16) {
        vals = arena_alloc(&r->arena, t->nsegs * sizeof(*vals));
        verbatim = arena_alloc(&r->arena, t->nsegs);
        if (!vals || !verbatim)
            return -1;
    }
    size_t total = 0;
    for (unsigned i = 0; i < t->nsegs; i++) {
        total += t->segs[i].lit.len;
        vals[i] = STR_NULL;
        verbatim[i] = 1;
        const struct var_ref *v = t->segs[i].var;
        if (!v)
            continue;
        struct str m = tunnel_mark(s, v);
        if (m.p) {
            vals[i] = m;
            total += m.len;
            continue;
        }
        int found;
        vals[i] = var_value(s, v, &found);
        if (!found) {
            /* nginx: "-" with the default escaping; nothing with json or none */
            vals[i] = esc == TMPL_ESC_LOG ? STR_LIT("-") : STR_NULL;
        } else if (esc != TMPL_ESC_NONE) {
            verbatim[i] = 0;
        }
        total += verbatim[i] ? vals[i].len : vals[i].len * 6;
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
        if (!t->segs[i].var)
            continue;
        if (verbatim[i]) {
            if (vals[i].len)
                memcpy(buf + o, vals[i].p, vals[i].len);
            o += vals[i].len;
        } else {
            o += escape_into(buf + o, vals[i], esc);
        }
    }
    buf[o] = '\0';
    *out = (struct str){buf, o};
    return 0;
}

int tmpl_eval(struct client_stream *s, const struct tmpl *t, struct str *out)
{
    return tmpl_eval_esc(s, t, TMPL_ESC_NONE, out);
}
