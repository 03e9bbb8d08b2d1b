/*
 * status_page.c - the live status page and its JSON (status_page.h).
 */
#include "http/status_page.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/runtime.h"
#include "core/arena.h"
#include "core/live.h"
#include "core/loop.h"
#include "core/net.h"
#include "core/version.h"
#include "http/realip.h"
#include "http/response.h"

/* ------------------------------------------------------------- hooks */

/* Is this request an upgrade the proxy would try (what classify_upgrade in
 * proxy.c looks at)? HTTP/2 extended CONNECT arrives translated into it. */
static int is_upgrade(const struct request *r)
{
    return (r->info.flags & H1_F_HAS_UPGRADE) && (r->info.flags & H1_F_CONN_UPGRADE) &&
           r->minor != 0 && !str_caseeq_cstr(r->info.upgrade, "h2c");
}

/* The route of this request; the strings live in `buf` (or the config). */
static void route_of(struct client_stream *s, const char *group, const char *peer,
                     struct live_route *rt, char *client, size_t cap, char *server, char *loc)
{
    struct request *r = &s->req;
    net_addr_str(&realip_client(s)->sa, client, cap);
    server[0] = loc[0] = 0;
    if (r->srv && r->srv->nnames && r->srv->names[0].name.len)
        snprintf(server, LIVE_NAME, "%.*s", (int)r->srv->names[0].name.len,
                 r->srv->names[0].name.p);
    if (r->loc)
        snprintf(loc, LIVE_NAME, "%s%.*s", r->loc->match == LOC_EXACT ? "= " : "",
                 (int)r->loc->pattern.len, r->loc->pattern.p);
    rt->server = server;
    rt->location = loc;
    rt->upstream = group ? group : "";
    rt->peer = peer ? peer : "";
    rt->client = client;
    rt->http2 = s->conn && s->conn->proto == CLIENT_PROTO_H2;
}

int status_tunnel_open(struct client_stream *s, const char *group, const char *peer)
{
    struct live_route rt;
    char client[LIVE_NAME], server[LIVE_NAME], loc[LIVE_NAME];
    route_of(s, group, peer, &rt, client, sizeof(client), server, loc);
    return live_tunnel_open(&rt, s->conn ? s->conn->id : 0);
}

void status_upgrade_refused(struct client_stream *s, const char *group, const char *peer,
                            int status, const char *reason, int err)
{
    if (!is_upgrade(&s->req))
        return;
    struct live_route rt;
    char client[LIVE_NAME], server[LIVE_NAME], loc[LIVE_NAME];
    route_of(s, group, peer, &rt, client, sizeof(client), server, loc);
    char why[LIVE_REASON];
    if (err) {
        /* the error log's shape: the errno goes before " while ..." */
        const char *w = strstr(reason, " while ");
        int head = w ? (int)(w - reason) : (int)strlen(reason);
        snprintf(why, sizeof(why), "%.*s (%d: %s)%s", head, reason, err, strerror(err),
                 w ? w : "");
        reason = why;
    }
    live_refused(&rt, status, reason);
}

/* ---------------------------------------------------------------- JSON */

struct out {
    char *p;
    size_t len, cap;
    int oom;
};

static void out_grow(struct out *o, size_t need)
{
    if (o->oom || o->len + need <= o->cap)
        return;
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->len + need)
        cap *= 2;
    char *n = realloc(o->p, cap);
    if (!n) {
        o->oom = 1;
        return;
    }
    o->p = n;
    o->cap = cap;
}

static void out_raw(struct out *o, const char *s, size_t n)
{
    out_grow(o, n);
    if (o->oom)
        return;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct out *o, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        out_raw(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A JSON string: quotes, backslashes and control bytes escaped; bytes >=
 * 0x80 that are not valid UTF-8 become U+FFFD so the document stays valid. */
static void out_str(struct out *o, const char *s)
{
    out_raw(o, "\"", 1);
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            out_raw(o, e, 2);
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            out_printf(o, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            out_raw(o, (const char *)p, 1);
            p++;
        } else {
            int n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
            int ok = n > 0;
            for (int k = 1; ok && k < n; k++)
                ok = (p[k] & 0xc0) == 0x80;
            if (ok) {
                out_raw(o, (const char *)p, (size_t)n);
                p += n;
            } else {
                out_raw(o, "\\ufffd", 6);
                p++;
            }
        }
    }
    out_raw(o, "\"", 1);
}

static void out_key(struct out *o, const char *k, const char *v)
{
    out_printf(o, "\"%s\":", k);
    out_str(o, v);
}

static void out_num(struct out *o, const char *k, uint64_t v)
{
    out_printf(o, "\"%s\":%llu", k, (unsigned long long)v);
}

static const char *peer_state(const struct upstream_peer *pe, const struct live_peer_view *v)
{
    if (pe->down)
        return "disabled";
    if (!v->seen)
        return "unknown";
    return v->last_fail_ms > v->last_ok_ms ? "down" : "up";
}

static void json_upstreams(struct out *o, const struct http_conf *http)
{
    out_raw(o, "\"upstreams\":[", 13);
    for (unsigned u = 0; http && u < http->nupstreams; u++) {
        const struct upstream_conf *uc = http->upstreams[u];
        out_raw(o, u ? ",{" : "{", u ? 2 : 1);
        out_key(o, "name", uc->name);
        out_printf(o, ",\"implicit\":%s,\"peers\":[", uc->implicit ? "true" : "false");
        for (unsigned i = 0; i < uc->npeers; i++) {
            const struct upstream_peer *pe = &uc->peers[i];
            struct live_peer_view v;
            live_peer_get(uc->name, pe->name, &v);
            out_raw(o, i ? ",{" : "{", i ? 2 : 1);
            out_key(o, "address", pe->name);
            out_raw(o, ",", 1);
            out_key(o, "state", peer_state(pe, &v));
            out_printf(o, ",\"backup\":%s,", pe->backup ? "true" : "false");
            out_num(o, "weight", pe->weight);
            out_raw(o, ",", 1);
            out_num(o, "ok", v.ok);
            out_raw(o, ",", 1);
            out_num(o, "fails", v.fails);
            if (v.ok)
                out_printf(o, ",\"latency_ms\":%.1f", (double)v.latency_us / 1000.0);
            else
                out_raw(o, ",\"latency_ms\":null", 18);
            out_raw(o, ",", 1);
            out_num(o, "last_ok", v.last_ok_ms);
            out_raw(o, ",", 1);
            out_num(o, "last_fail", v.last_fail_ms);
            out_raw(o, "}", 1);
        }
        out_raw(o, "]}", 2);
    }
    out_raw(o, "]", 1);
}

static void json_tunnels(struct out *o)
{
    struct live_tunnel_view *tv = malloc(sizeof(*tv) * LIVE_TUNNELS);
    uint64_t unlisted = 0;
    size_t n = tv ? live_tunnels_read(tv, LIVE_TUNNELS, &unlisted) : 0;
    if (!tv)
        o->oom = 1;
    uint64_t now = loop_now(), wall = loop_wall_ms();
    out_printf(o, "\"tunnels\":{\"count\":%llu,\"unlisted\":%llu,\"list\":[",
               (unsigned long long)(n + unlisted), (unsigned long long)unlisted);
    for (size_t i = 0; i < n; i++) {
        const struct live_tunnel_view *t = &tv[i];
        uint64_t age = now > t->start_ms ? now - t->start_ms : 0;
        uint64_t idle = now > t->last_ms ? now - t->last_ms : 0;
        out_raw(o, i ? ",{" : "{", i ? 2 : 1);
        out_num(o, "pid", (uint64_t)t->pid);
        out_raw(o, ",", 1);
        out_num(o, "connection", t->conn_id);
        out_raw(o, ",", 1);
        out_key(o, "server", t->server);
        out_raw(o, ",", 1);
        out_key(o, "location", t->location);
        out_raw(o, ",", 1);
        out_key(o, "upstream", t->upstream);
        out_raw(o, ",", 1);
        out_key(o, "peer", t->peer);
        out_raw(o, ",", 1);
        out_key(o, "client", t->client);
        out_raw(o, ",", 1);
        out_key(o, "protocol", t->http2 ? "HTTP/2" : "HTTP/1.1");
        out_raw(o, ",", 1);
        out_num(o, "started", wall - age);
        out_raw(o, ",", 1);
        out_num(o, "age_ms", age);
        out_raw(o, ",", 1);
        out_num(o, "idle_ms", idle);
        out_raw(o, ",", 1);
        out_num(o, "bytes_from_client", t->bytes_up);
        out_raw(o, ",", 1);
        out_num(o, "bytes_from_upstream", t->bytes_down);
        out_raw(o, "}", 1);
    }
    out_raw(o, "]}", 2);
    free(tv);
}

static void json_refused(struct out *o)
{
    struct live_refusal_view *rv = malloc(sizeof(*rv) * LIVE_REFUSED);
    size_t n = rv ? live_refused_read(rv, LIVE_REFUSED) : 0;
    if (!rv)
        o->oom = 1;
    out_raw(o, "\"refused\":[", 11);
    for (size_t i = 0; i < n; i++) {
        const struct live_refusal_view *v = &rv[i];
        out_raw(o, i ? ",{" : "{", i ? 2 : 1);
        out_num(o, "time", v->when_ms);
        out_raw(o, ",", 1);
        out_key(o, "client", v->client);
        out_raw(o, ",", 1);
        out_key(o, "server", v->server);
        out_raw(o, ",", 1);
        out_key(o, "location", v->location);
        out_raw(o, ",", 1);
        out_key(o, "upstream", v->upstream);
        out_raw(o, ",", 1);
        out_key(o, "peer", v->peer);
        out_raw(o, ",", 1);
        out_key(o, "protocol", v->http2 ? "HTTP/2" : "HTTP/1.1");
        out_printf(o, ",\"status\":%d,", v->status);
        out_key(o, "reason", v->reason);
        out_raw(o, "}", 1);
    }
    out_raw(o, "]", 1);
    free(rv);
}

static void json_reloads(struct out *o)
{
    struct live_reload_view rv[LIVE_RELOADS];
    size_t n = live_reloads_read(rv, LIVE_RELOADS);
    out_raw(o, "\"reloads\":[", 11);
    for (size_t i = 0; i < n; i++) {
        out_raw(o, i ? ",{" : "{", i ? 2 : 1);
        out_num(o, "time", rv[i].when_ms);
        out_raw(o, ",", 1);
        out_num(o, "generation", rv[i].generation);
        out_printf(o, ",\"ok\":%s,", rv[i].ok ? "true" : "false");
        out_key(o, "message", rv[i].message);
        out_raw(o, "}", 1);
    }
    out_raw(o, "]", 1);
}

static void json_document(struct out *o, const struct request *r)
{
    const struct generation *g = r->rt ? r->rt->gen : NULL;
    out_raw(o, "{", 1);
    out_key(o, "version", SY_VERSION);
    out_raw(o, ",", 1);
    out_num(o, "time", loop_wall_ms());
    out_raw(o, ",", 1);
    out_num(o, "pid", (uint64_t)getpid());
    out_raw(o, ",", 1);
    out_num(o, "generation", g ? g->serial : 0);
    out_raw(o, ",", 1);
    json_upstreams(o, g ? g->http : NULL);
    out_raw(o, ",", 1);
    json_tunnels(o);
    out_raw(o, ",", 1);
    json_refused(o);
    out_raw(o, ",", 1);
    json_reloads(o);
    out_raw(o, "}\n", 2);
}

/* ---------------------------------------------------------------- page */

/* `format=json` among the arguments? */
static int wants_json(const struct request *r)
{
    const char *p = r->args.p, *end = r->args.p + r->args.len;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if ((size_t)(e - p) == 11 && memcmp(p, "format=json", 11) == 0)
            return 1;
        p = amp ? amp + 1 : end;
    }
    return 0;
}

int status_page_prepare(struct client_stream *s, const char **body, size_t *len)
{
    struct request *r = &s->req;
    if (!str_eq(r->method, STR_LIT("GET")) && !str_eq(r->method, STR_LIT("HEAD")))
        return 405;
    if (resp_add(r, STR_LIT("Cache-Control"), STR_LIT("no-store")) < 0 ||
        resp_add(r, STR_LIT("X-Content-Type-Options"), STR_LIT("nosniff")) < 0)
        return -1;
    r->status = 200;
    if (!wants_json(r)) {
        /* The page only runs its own inline script and fetches its JSON; it
         * may not be framed by another site (clickjacking). */
        if (resp_add(r, STR_LIT("Content-Type"), STR_LIT("text/html; charset=utf-8")) < 0 ||
            resp_add(r, STR_LIT("Content-Security-Policy"),
                     STR_LIT("default-src 'none'; script-src 'unsafe-inline'; "
                             "style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; "
                             "form-action 'none'; frame-ancestors 'none'")) < 0)
            return -1;
        *body = (const char *)status_page_html;
        *len = status_page_html_len;
        return 0;
    }
    struct out o = {0};
    json_document(&o, r);
    char *copy = o.oom ? NULL : arena_alloc(&r->arena, o.len ? o.len : 1);
    if (copy)
        memcpy(copy, o.p, o.len);
    free(o.p);
    if (!copy || resp_add(r, STR_LIT("Content-Type"), STR_LIT("application/json")) < 0)
        return -1;
    *body = copy;
    *len = o.len;
    return 0;
}
