/*
 * proxy.c - the proxy_pass handler (see proxy.h).
 *
 * One struct proxy per proxied request. It owns the upstream connection
 * (struct upconn) while the exchange runs and one buffer for the response
 * direction; the request direction reuses the client session's input
 * buffer. Both directions are "relays": bytes are read into the direction's
 * buffer only when the previous bytes were written out (backpressure), so a
 * proxied request holds at most two buffers whatever the peers do.
 *
 *   CONNECT --connected--> EXCHANGE (send head+body / read response head)
 *       --response head ok--> relay body to client --complete--> done
 *   errors before the response head: retry per proxy_next_upstream, else 502/504
 */
#include "proxy/proxy.h"
#include "proxy/cookie_rewrite.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "core/net.h"
#include "http/access_log.h"
#include "http/filter.h"
#include "proxy/dyn_upstream.h"
#include "http/phases.h"
#include "http/realip.h"
#include "http/response.h"
#include "http/status_page.h"
#include "core/live.h"
#include "http/router.h"
#include "http/vars_eval.h"
#include "conf/runtime.h"
#include "proxy/relay.h"
#include "proxy/tunnel.h"
#include "proxy/cache.h"
#include "proxy/upstream.h"
#include "proxy/ws_frame.h"
#include "tls/tls.h"

#define PROXY_MAX_RESP_HEADERS 100

enum proxy_phase {
    PX_CONNECT,                 /* waiting for the TCP connect */
    PX_EXCHANGE,                /* sending the request, waiting for the response head */
    PX_RESPONSE,                /* relaying the response body */
};

struct proxy {
    struct client_stream *s;       /* borrowed: the client session */
    struct upconn *uc;          /* owned while the exchange runs */
    const struct upstream_conf *ups;
    struct upstream_rt *urt;
    int peer;                   /* index in ups->peers */
    uint64_t tried;             /* peers tried (bitmap) */
    unsigned tries;
    uint64_t first_start_ms;    /* for proxy_next_upstream_timeout */
    uint64_t start_ms;          /* this attempt */
    enum proxy_phase phase;
    struct str up_uri;          /* the URI sent upstream (request arena), for error lines */
    struct dyn_upstream *dyn;   /* held: the run-time group of a proxy_pass with variables */
    struct dyn_wait *dyn_wait;  /* waiting for its name to be looked up */
    struct str dyn_uri;         /* the URI part of the proxy_pass value, kept while a name
                                   is looked up or a proxy_cache_lock wait runs */
    int dyn_has_uri;
    struct timer utimer;        /* connect / read / send deadline of the upstream side */
    struct posted post;
    int reused;                 /* connection came from the keep-alive pool */
    int keepalive_ok;           /* upstream connection may go back to the pool */
    int sent_conn_close;        /* we asked the upstream to close */
    int https;                  /* TLS to the upstream (proxy_pass https://) */
    unsigned *load;             /* the peer's active-connection count we hold (least_conn) */
    struct str bal_key;         /* ip_hash / hash: the request's key, made at the first pick */
    int bal_key_done;
    unsigned char ip_key[16];   /* ip_hash: the bytes of bal_key */

    /* protocol switch (RFC 9110 §7.8) */
    enum { UPG_NONE = 0, UPG_WEBSOCKET, UPG_OTHER } upgrade;
    struct str upgrade_token;   /* the token the client asked for */
    char ws_accept[29];         /* the Sec-WebSocket-Accept the upstream must answer */

    /* request direction */
    char *req_head;
    size_t req_head_len, req_head_off;
    struct relay rq;
    int rq_chunked;             /* the body goes upstream chunked (re-framed) */
    struct chunk_out rq_co;     /* its framing */
    int body_started;           /* a body byte was sent upstream: no retry */
    int request_sent;           /* this try started sending (nginx's u->request_sent) */
    int continue_sent;          /* "100 Continue" answered to the client */

    /* response direction */
    struct buf *ub;             /* upstream input */
    int resp_status;
    struct relay rs;
    int client_close_after;     /* close-delimited towards the client */
    int trailers_sent;          /* the upstream's trailer fields were given to the stream */
    int bulk;                   /* body reads fill whole buffers: read 64 KiB at a time */

    struct cache_req *cache;    /* proxy_cache: this request's entry (request arena) */
    int head_as_get;            /* proxy_cache_convert_head: HEAD sent as GET, body only stored */
    int window;                 /* the client gets only part of the body (a range of a response
                                   being stored, or nothing for head_as_get) */
    uint64_t win_skip, win_left; /* body bytes before the part, and in it */
};

#include "core/container.h"
#include "http/metrics_http.h"
#include "proxy/metrics_proxy.h"

static void proxy_run(struct proxy *p);
static void proxy_on_utimer(struct timer *t);
static void proxy_on_post(struct posted *pp);
static int connect_next(struct proxy *p);
static void proxy_on_client(struct client_stream *s, int timed_out);
static void proxy_abort(struct client_stream *s);

/* ------------------------------------------------------------ helpers */

static void log_upstream(struct proxy *p, enum log_level lvl, const char *what, int err)
{
    struct client_stream *s = p->s;
    char ctx[1500];
    stream_log_ctx(s, ctx, sizeof(ctx));
    const char *peer = p->ups && p->peer >= 0 ? p->ups->peers[p->peer].name : "?";
    char uri[600];
    struct request *r = &s->req;
    /* nginx names the URI sent upstream, and separates a Unix socket's
     * path from it with ':' */
    struct str up = p->up_uri.p ? p->up_uri : r->request_uri;
    snprintf(uri, sizeof(uri), "%s://%s%s%.*s", p->https ? "https" : "http", peer,
             strncmp(peer, "unix:", 5) == 0 ? ":" : "", (int)(up.len > 512 ? 512 : up.len),
             up.p);
    /* nginx's order: ..., request: "...", upstream: "...", host: "..." (the
     * host part is the last of the context; a request line may hold its text) */
    char *host = NULL;
    for (char *h = strstr(ctx, ", host: \""); h; h = strstr(h + 1, ", host: \""))
        host = h;
    char host_part[sizeof(ctx)] = "";
    if (host) {
        snprintf(host_part, sizeof(host_part), "%s", host);
        *host = '\0';
    }
    char loc[300] = "";
    if (p->upgrade && r->loc)
        snprintf(loc, sizeof(loc), ", location: \"%.*s\"",
                 (int)(r->loc->pattern.len > 256 ? 256 : r->loc->pattern.len), r->loc->pattern.p);
    if (err) {
        /* nginx's shape: "connect() failed (111: Connection refused) while connecting..." */
        const char *w = strstr(what, " while ");
        int head = w ? (int)(w - what) : (int)strlen(what);
        sy_log(lvl, "*%llu %.*s (%d: %s)%s%s, upstream: \"%s\"%s%s",
               (unsigned long long)s->conn->id, head, what, err, strerror(err), w ? w : "", ctx,
               uri, host_part, loc);
    }
    else
        sy_log(lvl, "*%llu %s%s, upstream: \"%s\"%s%s", (unsigned long long)s->conn->id, what, ctx,
               uri, host_part, loc);
}

/* The status of the current upstream try ($upstream_status): the
 * upstream's, or the 502/504 a failure gives. */
static void try_status(struct proxy *p, int status)
{
    struct upstream_try *t = upstream_try_last(&p->s->req);
    if (t)
        t->status = status;
}

/* The try is connected: $upstream_connect_time (TLS handshake included, as
 * nginx takes it when the request starts being sent). */
static void try_connected(struct proxy *p)
{
    struct upstream_try *t = upstream_try_last(&p->s->req);
    if (t && t->connect_ms < 0)
        t->connect_ms = (int64_t)(loop_now() - t->start_ms);
}

/* Release the upstream side: to the pool when reusable, else closed. */
static void release_upstream(struct proxy *p, int reusable)
{
    timer_stop(&p->utimer);
    if (p->load) {
        (*p->load)--;
        p->load = NULL;
    }
    buf_put(p->ub);
    p->ub = NULL;
    if (!p->uc)
        return;
    struct upconn *uc = p->uc;
    p->uc = NULL;
    uc->owner = NULL;
    tls_client_detach(&uc->c);
    if (reusable && !(uc->c.flags & (CONN_F_EOF | CONN_F_ERROR)))
        upconn_pool_put(uc, p->ups);
    else
        upconn_close(uc);
}

/*
 * Finished proxy states are kept for the next request (up to PROXY_CACHE):
 * a keep-alive request then costs no malloc/free for its state, and its
 * upstream timer, only stopped (timer_stop), keeps its heap entry, so arming
 * it again for the next request is a store. Released (timers cancelled) by
 * proxy_cache_release().
 */
#define PROXY_CACHE 64
static struct proxy *proxy_cache[PROXY_CACHE];
static unsigned nproxy_cache;

static struct proxy *proxy_alloc(void)
{
    if (nproxy_cache == 0) {
        struct proxy *p = malloc(sizeof(*p));
        if (p)
            memset(p, 0, sizeof(*p));
        return p;
    }
    struct proxy *p = proxy_cache[--nproxy_cache];
    struct timer keep = p->utimer; /* the heap points at it: keep its place */
    memset(p, 0, sizeof(*p));
    p->utimer = keep;
    return p;
}

void proxy_cache_release(void)
{
    dyn_upstream_release_all();
    while (nproxy_cache > 0) {
        struct proxy *p = proxy_cache[--nproxy_cache];
        timer_cancel(&p->utimer);
        free(p);
    }
}

static void proxy_free_to(struct proxy *p, int cache)
{
    dyn_upstream_cancel(p->dyn_wait);
    p->dyn_wait = NULL;
    cache_store_abort(p->cache); /* a store not completed leaves no file */
    p->cache = NULL;
    upstream_try_end(&p->s->req);
    loop_unpost(&p->post);
    timer_stop(&p->utimer);
    release_upstream(p, 0);
    dyn_upstream_put(p->dyn);
    p->dyn = NULL;
    p->s->req.proxy = NULL;
    p->s->on_event = NULL;
    p->s->on_abort = NULL;
    if (cache && nproxy_cache < PROXY_CACHE) {
        proxy_cache[nproxy_cache++] = p;
        return;
    }
    timer_cancel(&p->utimer);
    free(p);
}

static void proxy_free(struct proxy *p)
{
    proxy_free_to(p, 1);
}

/* Percent-escape a decoded path for the upstream request line (nginx's
 * NGX_ESCAPE_URI set: controls, space, '#', '%', '?', and non-ASCII). */
static size_t escape_uri(char *dst, struct str src)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < src.len; i++) {
        unsigned char c = (unsigned char)src.p[i];
        if (c <= 0x20 || c >= 0x7f || c == '#' || c == '%' || c == '?') {
            if (dst) {
                dst[o] = '%';
                dst[o + 1] = hex[c >> 4];
                dst[o + 2] = hex[c & 15];
            }
            o += 3;
        } else {
            if (dst)
                dst[o] = (char)c;
            o++;
        }
    }
    return o;
}

/* Is `name` listed as a token in any Connection header of `h`? */
static int named_in_connection(const struct h1_header *h, size_t n, struct str name)
{
    char tok[128];
    if (name.len >= sizeof(tok))
        return 0;
    int copied = 0; /* the token is made only when a Connection header exists */
    for (size_t i = 0; i < n; i++) {
        if (h[i].id != H1_H_CONNECTION)
            continue;
        if (!copied) {
            memcpy(tok, name.p, name.len);
            tok[name.len] = '\0';
            copied = 1;
        }
        if (str_has_token(h[i].value, tok))
            return 1;
    }
    return 0;
}

/* ------------------------------------------------------------ request head */

/* The URI sent upstream (nginx's rules, see docs/proxy.md). */
static int upstream_uri(struct proxy *p, struct str dyn_uri, int dyn_has_uri, struct str *out)
{
    struct request *r = &p->s->req;
    const struct proxy_pass *pp = r->lc->proxy_pass;
    struct arena *a = &r->arena;
    if (r->uri_rewritten && !pp->dynamic)
        goto changed;
    if (pp->dynamic) {
        if (dyn_has_uri) {
            *out = dyn_uri;
            return 0;
        }
    } else if (pp->has_uri) {
        /* Replace the part of the normalised URI that matched the location. */
        struct str rest = r->uri;
        if (r->loc && (r->loc->match == LOC_PREFIX || r->loc->match == LOC_EXACT ||
                       r->loc->match == LOC_PREFIX_NOREGEX) &&
            r->uri.len >= r->loc->pattern.len &&
            memcmp(r->uri.p, r->loc->pattern.p, r->loc->pattern.len) == 0) {
            rest = (struct str){r->uri.p + r->loc->pattern.len, r->uri.len - r->loc->pattern.len};
        }
        size_t need = pp->uri.len + escape_uri(NULL, rest) + 1 + r->args.len + 1;
        char *u = arena_alloc(a, need);
        if (!u)
            return -1;
        size_t o = 0;
        memcpy(u, pp->uri.p, pp->uri.len);
        o += pp->uri.len;
        o += escape_uri(u + o, rest);
        if (r->args.p) {
            u[o++] = '?';
            memcpy(u + o, r->args.p, r->args.len);
            o += r->args.len;
        }
        *out = (struct str){u, o};
        return 0;
    }
    if (!r->uri_changed) {
        *out = r->request_uri;
        return 0;
    }
changed:;
    /* The URI changed (rewrite, error_page, try_files): send the new one whole. */
    size_t need = escape_uri(NULL, r->uri) + 1 + r->args.len + 1;
    char *u = arena_alloc(a, need);
    if (!u)
        return -1;
    size_t o = escape_uri(u, r->uri);
    if (r->args.p) {
        u[o++] = '?';
        memcpy(u + o, r->args.p, r->args.len);
        o += r->args.len;
    }
    *out = (struct str){u, o};
    return 0;
}

struct strbuf {
    char *p;
    size_t len, cap;
    struct arena *a;
    int oom;
};

/* Grow (double) and append; after a failure every later append lands here
 * and does nothing (cap stays at len). */
static void __attribute__((noinline)) sb_grow_add(struct strbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    size_t cap = b->cap ? b->cap * 2 : 1024;
    while (cap < b->len + n)
        cap *= 2;
    char *np = arena_alloc(b->a, cap);
    if (!np) {
        b->oom = 1;
        b->cap = b->len;
        return;
    }
    if (b->len)
        memcpy(np, b->p, b->len);
    b->p = np;
    b->cap = cap;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* Inline: the upstream request head is a dozen appends per request, and
 * short constant ones compile to plain stores. */
static inline void sb_add(struct strbuf *b, const char *s, size_t n)
{
    if (__builtin_expect(b->p && b->cap - b->len >= n, 1)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
        return;
    }
    sb_grow_add(b, s, n);
}

static void sb_str(struct strbuf *b, struct str s)
{
    sb_add(b, s.p, s.len);
}

static void sb_cstr(struct strbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_header(struct strbuf *b, struct str name, struct str value)
{
    sb_str(b, name);
    sb_add(b, ": ", 2);
    sb_str(b, value);
    sb_add(b, "\r\n", 2);
}

/* A header value built from variables may not smuggle a line break. */
static int value_safe(struct str v)
{
    for (size_t i = 0; i < v.len; i++)
        if (v.p[i] == '\r' || v.p[i] == '\n' || v.p[i] == '\0')
            return 0;
    return 1;
}

static int location_sets_upgrade(const struct loc_conf *lc);

/*
 * Does `proxy_set_header Connection ...` ask for "close" on this request
 * (nginx then sends it and the upstream closes: the keepalive connection is
 * not reused, nginx-tests proxy_ssl_keepalive.t)? Not in a location that
 * also sets Upgrade: there the line is the WebSocket idiom, whose "close"
 * for ordinary requests Switchyard deliberately does not send
 * (docs/websocket.md).
 */
static int connection_close_asked(struct proxy *p)
{
    const struct loc_conf *lc = p->s->req.lc;
    if (location_sets_upgrade(lc))
        return 0;
    for (unsigned i = 0; i < lc->nproxy_set_headers; i++) {
        const struct header_tmpl *h = &lc->proxy_set_headers[i];
        if (!str_caseeq_cstr(h->name, "connection"))
            continue;
        struct str v;
        if (tmpl_eval(p->s, &h->value, &v) < 0)
            return 0;
        return str_has_token(v, "close");
    }
    return 0;
}

static int build_request_head(struct proxy *p, struct str uri)
{
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    const struct loc_conf *lc = r->lc;
    struct strbuf b = {.a = &r->arena};

    struct str method = r->method;
    if (!lc->proxy_method && cache_head_as_get(p->cache, r)) {
        method = STR_LIT("GET");
        p->head_as_get = 1;
    }
    if (lc->proxy_method) {
        if (tmpl_eval(s, lc->proxy_method, &method) < 0)
            return -1;
    }
    struct str set_body = STR_NULL;
    int has_set_body = 0;
    if (lc->proxy_set_body) {
        if (tmpl_eval(s, lc->proxy_set_body, &set_body) < 0)
            return -1;
        has_set_body = 1;
    }
    int send_body = lc->proxy_pass_request_body && r->has_body && !has_set_body;
    int chunked_up = send_body && (r->info.flags & H1_F_CHUNKED);
    int minor = lc->proxy_http_version_minor;
    if (chunked_up)
        minor = 1; /* chunked framing needs HTTP/1.1 upstream (documented) */
    /* Switchyard owns Upgrade and Connection upstream (docs/websocket.md): an
     * upgrade gets its own request over HTTP/1.1; anything else follows the
     * group's keep-alive policy, whatever proxy_set_header says. */
    int pool = p->ups && p->ups->keepalive;
    if (p->upgrade || pool)
        minor = 1;

    sb_str(&b, method);
    sb_add(&b, " ", 1);
    sb_str(&b, uri);
    sb_cstr(&b, minor ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n");

    int host_set = 0;
    for (unsigned i = 0; i < lc->nproxy_set_headers; i++)
        if (str_caseeq_cstr(lc->proxy_set_headers[i].name, "host"))
            host_set = 1;
    if (!host_set)
        sb_header(&b, STR_LIT("Host"), r->proxy_host);
    if (p->upgrade) {
        sb_header(&b, STR_LIT("Upgrade"), p->upgrade_token);
        sb_header(&b, STR_LIT("Connection"), STR_LIT("upgrade"));
    } else if (!pool || connection_close_asked(p)) {
        sb_header(&b, STR_LIT("Connection"), STR_LIT("close"));
        p->sent_conn_close = 1; /* the connection is not pooled afterwards */
    }
    for (unsigned i = 0; i < lc->nproxy_set_headers; i++) {
        const struct header_tmpl *h = &lc->proxy_set_headers[i];
        if (str_caseeq_cstr(h->name, "connection") || str_caseeq_cstr(h->name, "upgrade"))
            continue; /* owned by Switchyard, see above */
        struct str v;
        if (tmpl_eval(s, &h->value, &v) < 0)
            return -1;
        if (v.len == 0)
            continue;
        if (!value_safe(v)) {
            log_upstream(p, LOG_LVL_ERR, "header value with CR/LF not sent upstream", 0);
            continue;
        }
        sb_header(&b, h->name, v);
    }
    if (has_set_body) {
        char num[32];
        snprintf(num, sizeof(num), "%zu", set_body.len);
        sb_header(&b, STR_LIT("Content-Length"), str_from_cstr(num));
    } else if (send_body) {
        if (chunked_up) {
            sb_header(&b, STR_LIT("Transfer-Encoding"), STR_LIT("chunked"));
        } else {
            char num[32];
            snprintf(num, sizeof(num), "%llu", (unsigned long long)r->info.content_length);
            sb_header(&b, STR_LIT("Content-Length"), str_from_cstr(num));
        }
    }
    struct str ims, inm;
    if (cache_revalidate_headers(p->cache, &ims, &inm)) {
        if (ims.len)
            sb_header(&b, STR_LIT("If-Modified-Since"), ims);
        if (inm.len)
            sb_header(&b, STR_LIT("If-None-Match"), inm);
    }
    if (lc->proxy_pass_request_headers) {
        for (size_t i = 0; i < r->nheaders; i++) {
            struct str n = r->headers[i].name;
            unsigned id = r->headers[i].id;
            if (h1_hop_by_hop(id) || id == H1_H_HOST || id == H1_H_CONTENT_LENGTH ||
                id == H1_H_EXPECT || id == H1_H_HTTP2_SETTINGS)
                continue;
            if (named_in_connection(r->headers, r->nheaders, n))
                continue;
            if (p->cache && cache_drops_request_header(id, n))
                continue; /* the cache wants the full response */
            int overridden = 0;
            for (unsigned k = 0; k < lc->nproxy_set_headers; k++)
                if (str_caseeq(lc->proxy_set_headers[k].name, n))
                    overridden = 1;
            if (overridden)
                continue;
            sb_header(&b, n, r->headers[i].value);
        }
    }
    sb_add(&b, "\r\n", 2);
    if (has_set_body)
        sb_str(&b, set_body);
    if (b.oom)
        return -1;
    p->req_head = b.p;
    p->req_head_len = b.len;
    p->req_head_off = 0;

    /* Request body relay from the client's buffer. */
    memset(&p->rq, 0, sizeof(p->rq));
    memset(&p->rq_co, 0, sizeof(p->rq_co));
    p->rq_chunked = 0;
    if (!send_body) {
        p->rq.mode = RELAY_NONE;
        p->rq.in_done = 1;
    } else if (chunked_up) {
        p->rq.mode = RELAY_CHUNKED; /* decoded by the client stream, re-framed here */
        p->rq_chunked = 1;
    } else {
        p->rq.mode = RELAY_LENGTH;
        p->rq.left = r->info.content_length;
    }
    return 0;
}

/* ------------------------------------------------------------ failures */

enum step { STEP_IDLE = 0, STEP_PROGRESS = 1, STEP_STOP = 2 };

/* A POST, LOCK or PATCH whose sending began: it may have had effects, so
 * it is retried only with `proxy_next_upstream non_idempotent` (nginx). */
static int non_idempotent_sent(const struct proxy *p)
{
    const struct request *r = &p->s->req;
    return p->request_sent && (str_eq(r->method, STR_LIT("POST")) ||
                               str_eq(r->method, STR_LIT("LOCK")) ||
                               str_eq(r->method, STR_LIT("PATCH")));
}

/* nginx's u->peer.tries: one try per server of the group that is not
 * `down` (backups included), at most proxy_next_upstream_tries. */
static unsigned tries_allowed(const struct proxy *p)
{
    unsigned t = 0;
    for (unsigned i = 0; i < p->ups->npeers; i++)
        t += !p->ups->peers[i].down;
    unsigned lim = (unsigned)p->s->req.lc->proxy_next_upstream_tries;
    return lim && t > lim ? lim : t;
}

/*
 * May the request go on to the next server after a try that ended with
 * `flag` (nginx's ngx_http_upstream_next / ngx_http_upstream_test_next)?
 * Tries left, `flag` listed in proxy_next_upstream -- and `non_idempotent`
 * too for a POST, LOCK or PATCH that was sent --, proxy_next_upstream_timeout
 * not passed, and (Switchyard streams request bodies) no body byte sent.
 */
static int may_retry(const struct proxy *p, unsigned flag)
{
    const struct request *r = &p->s->req;
    const struct loc_conf *lc = r->lc;
    if (!flag || p->body_started || p->rq.mode == RELAY_CHUNKED)
        return 0;
    unsigned mask = flag;
    if (non_idempotent_sent(p))
        mask |= NEXT_UPSTREAM_NON_IDEMPOTENT;
    return p->tries < tries_allowed(p) && (lc->proxy_next_upstream & mask) == mask &&
           !(lc->proxy_next_upstream_timeout &&
             loop_now() - p->first_start_ms >= lc->proxy_next_upstream_timeout);
}

/* Start the next try after a failed one. STEP_PROGRESS, or STEP_STOP when
 * no server was left ("no live upstreams": a 502 was sent). */
static enum step retry_next(struct proxy *p)
{
    struct request *r = &p->s->req;
    release_upstream(p, 0);
    p->phase = PX_CONNECT;
    p->req_head_off = 0;
    if (p->rq.mode == RELAY_LENGTH)
        p->rq.left = r->info.content_length;
    return connect_next(p) == 0 ? STEP_PROGRESS : STEP_STOP;
}

/* proxy_cache_use_stale: answer with the expired cached response instead
 * of this failure (`flag`: NEXT_UPSTREAM_*). 1 when it did (p is freed). */
static int serve_stale(struct proxy *p, unsigned flag)
{
    if (!cache_stale_allowed(p->cache, flag))
        return 0;
    struct client_stream *s = p->s;
    struct cache_req *c = p->cache;
    p->cache = NULL;
    release_upstream(p, 0);
    proxy_free(p);
    cache_serve_stale(s, c);
    return 1;
}

/* The upstream failed before the client saw any response byte; logged at
 * `lvl`. */
static enum step upstream_failed_at(struct proxy *p, enum log_level lvl, unsigned reason_flag,
                                    int status, const char *what, int err)
{
    struct client_stream *s = p->s;
    log_upstream(p, lvl, what, err);
    /* nginx counts every failed try against the server (max_fails) */
    if (p->peer >= 0 && reason_flag)
        upstream_peer_failed(p->ups, p->urt, p->peer);
    try_status(p, status);
    if (may_retry(p, reason_flag))
        return retry_next(p);
    if (serve_stale(p, reason_flag))
        return STEP_STOP;
    if (p->upgrade) /* the status page's refused upgrades */
        status_upgrade_refused(s, p->ups->name, p->peer >= 0 ? p->ups->peers[p->peer].name : NULL,
                               status, what, err);
    release_upstream(p, 0);
    proxy_free(p);
    http_respond_status(s, status);
    return STEP_STOP;
}

static enum step upstream_failed(struct proxy *p, unsigned reason_flag, int status,
                                 const char *what, int err)
{
    return upstream_failed_at(p, LOG_LVL_ERR, reason_flag, status, what, err);
}

/* ------------------------------------------------------------ connect */

/* The address of `ss` without the port, for messages. */
static void sockaddr_ip_text(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    const void *a = ss->ss_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
    if (!inet_ntop(ss->ss_family, a, out, (socklen_t)cap))
        snprintf(out, cap, "?");
}

/*
 * The socket options of this location's upstream connections (proxy_bind,
 * proxy_socket_rcvbuf/sndbuf). An address that evaluates empty means no
 * bind; one that is not an address is logged and not bound either (nginx's
 * "invalid local address"). 0, or -1 when out of memory.
 */
static int connect_opts(struct proxy *p, struct net_connect_opts *o, struct sockaddr_storage *ss)
{
    struct client_stream *s = p->s;
    const struct proxy_socket_conf *c = &s->req.lc->proxy_socket;
    memset(o, 0, sizeof(*o));
    o->rcvbuf = c->rcvbuf > 0 && c->rcvbuf < INT_MAX ? (int)c->rcvbuf : 0;
    o->sndbuf = c->sndbuf > 0 && c->sndbuf < INT_MAX ? (int)c->sndbuf : 0;
    if (!c->bind)
        return 0;
    struct str v;
    if (tmpl_eval(s, c->bind, &v) != 0)
        return -1;
    if (v.len == 0)
        return 0;
    socklen_t sl;
    if (net_parse_ip_port(v.p, v.len, 0, ss, &sl) != 0) {
        char ctx[1500];
        stream_log_ctx(s, ctx, sizeof(ctx));
        sy_log(LOG_LVL_ERR, "*%llu invalid local address \"%.*s\"%s", stream_conn_id(s),
               (int)v.len, v.p, ctx);
        return 0;
    }
    o->bind = (const struct sockaddr *)ss;
    o->bind_len = sl;
    o->transparent = c->transparent;
    return 0;
}

/* nginx's level for a connect() that failed at once (ngx_event_connect_peer):
 * error for what the network or the peer refused -- Linux's EAGAIN is a Unix
 * socket's full backlog --, crit for the rest (a missing socket file, ENOENT). */
static enum log_level connect_error_level(int err)
{
    switch (err) {
    case ECONNREFUSED: case EAGAIN: case ECONNRESET: case ENETDOWN: case ENETUNREACH:
    case EHOSTDOWN: case EHOSTUNREACH:
        return LOG_LVL_ERR;
    default:
        return LOG_LVL_CRIT;
    }
}

/* Put the new upstream connection on TLS (client mode); the handshake runs in
 * the first send/recv once connected. The name is proxy_ssl_name ($proxy_host
 * by default) without a port, as nginx. */
static int upstream_tls_start(struct proxy *p)
{
    struct request *r = &p->s->req;
    const struct loc_conf *lc = r->lc;
    struct str v = r->proxy_host;
    if (lc->proxy_ssl_name && tmpl_eval(p->s, lc->proxy_ssl_name, &v) < 0)
        return -1;
    size_t from = 0, n = v.len;
    if (n && v.p[0] == '[')
        for (from = 1; from < n && v.p[from] != ']'; from++)
            ;
    for (size_t i = from < n ? from : 0; i < n; i++)
        if (v.p[i] == ':') {
            n = i;
            break;
        }
    char name[256];
    snprintf(name, sizeof(name), "%.*s", (int)(n < 255 ? n : 255), v.p);
    struct tls_session_slot *pr = lc->proxy_ssl_session_reuse ? &p->urt->peers[p->peer].tls : NULL;
    return tls_connect(&p->uc->c, r->rt, lc, name, pr);
}

/* The TLS handshake to the upstream failed: nginx's "... while SSL handshaking to upstream". */
static enum step upstream_tls_failed(struct proxy *p)
{
    char what[1400];
    const char *e = tls_handshake_error(&p->uc->c);
    snprintf(what, sizeof(what), "%s while SSL handshaking to upstream",
             e ? e : "SSL_do_handshake() failed");
    return upstream_failed(p, NEXT_UPSTREAM_ERROR, 502, what, 0);
}

static int upstream_handshaking(const struct proxy *p)
{
    return p->uc && tls_is(&p->uc->c) && (p->uc->c.flags & CONN_F_HANDSHAKE);
}

/* The key of an ip_hash / hash group for this request: the client's
 * network (first three octets of IPv4, all of IPv6; none for Unix sockets:
 * round robin then) or the evaluated `hash` key. */
static void make_balance_key(struct proxy *p)
{
    p->bal_key_done = 1;
    p->bal_key = STR_NULL;
    if (p->ups->balancer == UPS_BALANCE_IP_HASH) {
        const union conn_addr *a = realip_client(p->s);
        if (a->sa.sa_family == AF_INET) {
            memcpy(p->ip_key, &a->in.sin_addr, 3);
            p->bal_key = (struct str){(const char *)p->ip_key, 3};
        } else if (a->sa.sa_family == AF_INET6) {
            const unsigned char *b = a->in6.sin6_addr.s6_addr;
            if (IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr)) {
                memcpy(p->ip_key, b + 12, 3);
                p->bal_key = (struct str){(const char *)p->ip_key, 3};
            } else {
                memcpy(p->ip_key, b, 16);
                p->bal_key = (struct str){(const char *)p->ip_key, 16};
            }
        }
    } else if (p->ups->balancer == UPS_BALANCE_HASH && p->ups->hash_key) {
        struct str v;
        if (tmpl_eval(p->s, p->ups->hash_key, &v) == 0)
            p->bal_key = v;
    }
}

/* Connect to the next peer; 0 on started, -1 when none is left (a 502 was sent). */
static int connect_next(struct proxy *p)
{
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    if (!p->bal_key_done)
        make_balance_key(p);
    for (;;) {
        int i = upstream_pick(p->ups, p->urt, p->bal_key, p->tried);
        if (i < 0) {
            /* nginx: "no live upstreams", a try named after the group, 502
             * (whatever earlier tries ended with) */
            p->peer = -1;
            log_upstream(p, LOG_LVL_ERR, "no live upstreams while connecting to upstream", 0);
            struct upstream_try *t = upstream_try_begin(r, p->ups->name);
            if (t)
                t->status = 502;
            if (serve_stale(p, NEXT_UPSTREAM_ERROR))
                return -1;
            if (p->upgrade) /* the status page's refused upgrades */
                status_upgrade_refused(s, p->ups->name, NULL, 502, "no live upstreams", 0);
            proxy_free(p);
            http_respond_status(s, 502);
            return -1;
        }
        p->peer = i;
        if (p->load)
            (*p->load)--;
        if ((p->load = upstream_peer_load(p->ups, p->urt, (unsigned)i)))
            (*p->load)++;
        if (i < 64)
            p->tried |= 1ULL << i;
        p->tries++;
        p->request_sent = 0;
        p->start_ms = loop_now();
        const struct upstream_peer *pe = &p->ups->peers[i];
        metrics_peer_try(upstream_try_begin(r, pe->name), p->ups, p->urt, i);
        struct upconn *uc = upconn_pool_get(p->ups, pe, p->https);
        if (uc) {
            uc->owner = p;
            p->uc = uc;
            p->reused = 1;
            p->phase = PX_EXCHANGE;
            try_connected(p);
            loop_post(&p->post);
            return 0;
        }
        p->reused = 0;
        int in_progress, bind_failed;
        struct net_connect_opts co;
        struct sockaddr_storage local;
        if (connect_opts(p, &co, &local) < 0) {
            proxy_free(p);
            http_respond_status(s, 500);
            return -1;
        }
        int fd = net_connect_ex((const struct sockaddr *)&pe->addr, pe->addrlen, &co,
                                &in_progress, &bind_failed);
        if (fd < 0 && bind_failed) {
            int e = errno;
            char ip[INET6_ADDRSTRLEN + 8];
            sockaddr_ip_text(&local, ip, sizeof(ip));
            char ctx[1500];
            stream_log_ctx(s, ctx, sizeof(ctx));
            sy_log(LOG_LVL_CRIT, "*%llu bind(%s) failed (%d: %s) while connecting to upstream%s",
                   stream_conn_id(s), ip, e, strerror(e), ctx);
            proxy_free(p);
            http_respond_status(s, 500); /* nginx: an error of its own, not the upstream's */
            return -1;
        }
        if (fd < 0) {
            int e = errno;
            p->phase = PX_CONNECT;
            /* Immediate failure (a Unix socket's missing file, refused
             * or full backlog): nginx names the peer, account it like an
             * asynchronous one. */
            char what[300];
            snprintf(what, sizeof(what), "connect() to %s failed while connecting to upstream",
                     pe->name);
            enum step st = upstream_failed_at(p, connect_error_level(e), NEXT_UPSTREAM_ERROR,
                                              502, what, e);
            return st == STEP_STOP ? -1 : 0;
        }
        if (r->lc->proxy_socket_keepalive == 1) {
            int one = 1;
            if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) < 0)
                sy_log(LOG_LVL_ALERT, "setsockopt(SO_KEEPALIVE) failed, ignored (%d: %s)", errno,
                       strerror(errno));
        }
        uc = upconn_new(fd, (const struct sockaddr *)&pe->addr, pe->addrlen);
        if (!uc) {
            close(fd);
            proxy_free(p);
            http_respond_status(s, 500);
            return -1;
        }
        uc->owner = p;
        p->uc = uc;
        if (p->https && upstream_tls_start(p) < 0) {
            p->phase = PX_CONNECT;
            enum step st = upstream_failed(p, NEXT_UPSTREAM_ERROR, 502,
                                           "SSL_new() failed while SSL handshaking to upstream", 0);
            return st == STEP_STOP ? -1 : 0;
        }
        if (in_progress) {
            p->phase = PX_CONNECT;
            /* not writable until connected (a TLS handshake still to run) */
            uc->c.flags = CONN_F_CONNECTING | (uc->c.flags & CONN_F_HANDSHAKE);
            timer_set(&p->utimer, r->lc->proxy_connect_timeout);
        } else {
            p->phase = PX_EXCHANGE;
            if (!p->https)
                try_connected(p);
            loop_post(&p->post);
        }
        return 0;
    }
}

/* ------------------------------------------------------------ response head */

/*
 * X-Accel-Redirect: the upstream's response is dropped (its connection
 * closed), the fields nginx carries over to the new response are kept
 * (Content-Type, Set-Cookie, Content-Disposition, Cache-Control, Expires,
 * Accept-Ranges), and the request goes on at `target`.
 */
static void accel_redirect(struct proxy *p, const struct h1_header *uh, size_t n, struct str target)
{
    /* single-valued fields: the last one counts, as in nginx */
    static const char *const one[] = {"Content-Type", "Content-Disposition", "Expires",
                                      "Accept-Ranges"};
    static const char *const all[] = {"Set-Cookie", "Cache-Control"};
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    for (size_t k = 0; k < sizeof(one) / sizeof(one[0]); k++) {
        const struct h1_header *last = NULL;
        for (size_t i = 0; i < n; i++)
            if (str_caseeq_cstr(uh[i].name, one[k]))
                last = &uh[i];
        if (last)
            resp_add(r, last->name, last->value);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++)
            if (str_caseeq_cstr(uh[i].name, all[k]))
                resp_add(r, uh[i].name,
                         k == 0 && r->lc->proxy_cookie /* proxy_cookie_*, as nginx */
                             ? cookie_rewrite(s, r->lc->proxy_cookie, uh[i].value)
                             : uh[i].value);
    proxy_free(p);
    http_accel_redirect(s, target);
}

static int header_hidden(const struct loc_conf *lc, const struct h1_header *h)
{
    struct str n = h->name;
    /* nginx never passes these from the upstream by default: Date, Server,
     * X-Pad and the X-Accel-* family (consecutive ids). */
    if (h->id >= H1_H_DATE && h->id <= H1_H_X_ACCEL_CHARSET) {
        for (unsigned k = 0; k < lc->nproxy_pass_headers; k++)
            if (str_caseeq(lc->proxy_pass_headers[k], n))
                return 0;
        return 1;
    }
    for (unsigned k = 0; k < lc->nproxy_hide_headers; k++)
        if (str_caseeq(lc->proxy_hide_headers[k], n))
            return 1;
    return 0;
}

/* proxy_redirect on a Location/Refresh value. */
static struct str apply_redirect(struct proxy *p, struct str v)
{
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    const struct loc_conf *lc = r->lc;
    if (lc->proxy_redirect_off)
        return v;
    for (unsigned i = 0; i < lc->nproxy_redirects; i++) {
        const struct proxy_redirect *pr = &lc->proxy_redirects[i];
        struct str from, to;
        if (pr->re) {
            /* "~regex" / "~*regex": a match replaces the whole value with the
             * replacement, where $1.. are this match's captures (nginx's
             * ngx_http_proxy_rewrite_regex; they stay the request's captures) */
            struct regex_caps caps;
            if (!router_regex_match(pr->re, v, &caps))
                continue;
            r->caps = caps;
            if (tmpl_eval(s, &pr->to, &to) < 0)
                continue;
            return to;
        }
        if (tmpl_eval(s, &pr->from, &from) < 0 || tmpl_eval(s, &pr->to, &to) < 0)
            continue;
        if (from.len && v.len >= from.len && memcmp(v.p, from.p, from.len) == 0) {
            char *nv = arena_printf(&r->arena, "%.*s%.*s", (int)to.len, to.p,
                                    (int)(v.len - from.len), v.p + from.len);
            return nv ? str_from_cstr(nv) : v;
        }
    }
    return v;
}

/* ------------------------------------------------------------ upgrades */

/* Refuse an upgrade request with `status`, log the reason at warn. */
static void upgrade_refused(struct proxy *p, int status, const char *why)
{
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    char ctx[1500];
    stream_log_ctx(s, ctx, sizeof(ctx));
    sy_log(LOG_LVL_WARN, "*%llu WebSocket upgrade refused: %s%s, location: \"%.*s\"",
           (unsigned long long)s->conn->id, why, ctx, r->loc ? (int)r->loc->pattern.len : 0,
           r->loc ? r->loc->pattern.p : "");
    status_upgrade_refused(s, NULL, NULL, status, why, 0); /* the status page's list */
    metrics_upgrade_refused(r, status, 0);
    if (status == 426)
        resp_add(r, STR_LIT("Sec-WebSocket-Version"), STR_LIT("13"));
    r->keepalive = 0;
    proxy_free(p);
    http_respond_status(s, status);
}

static int location_sets_upgrade(const struct loc_conf *lc)
{
    for (unsigned i = 0; i < lc->nproxy_set_headers; i++)
        if (str_caseeq_cstr(lc->proxy_set_headers[i].name, "upgrade"))
            return 1;
    return 0;
}

/* Origin and pattern compared as scheme://host[:port], case-insensitive, the
 * scheme's default port omitted on either side. */
static struct str origin_norm(struct str o, char *buf, size_t cap)
{
    if (o.len >= cap)
        return STR_NULL;
    for (size_t i = 0; i < o.len; i++)
        buf[i] = (char)sy_tolower((unsigned char)o.p[i]);
    size_t n = o.len;
    if (n > 8 && memcmp(buf, "https://", 8) == 0 && n > 4 && memcmp(buf + n - 4, ":443", 4) == 0)
        n -= 4;
    else if (n > 7 && memcmp(buf, "http://", 7) == 0 && n > 3 && memcmp(buf + n - 3, ":80", 3) == 0)
        n -= 3;
    return (struct str){buf, n};
}

/* Does the WebSocket's Origin pass websocket_origins? No list: yes. No
 * Origin header: yes (not a browser; Cross-Site WebSocket Hijacking needs
 * a victim's browser, which always sends Origin). */
static int origin_allowed(struct proxy *p, struct str origin)
{
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    const struct loc_conf *lc = r->lc;
    if (!lc->nwebsocket_origins || !origin.p)
        return 1;
    char ob[512], pb[512], sb[512];
    struct str o = origin_norm(origin, ob, sizeof(ob));
    if (!o.p)
        return 0;
    for (unsigned i = 0; i < lc->nwebsocket_origins; i++) {
        struct str pat = lc->websocket_origins[i];
        if (str_eq(pat, STR_LIT("null"))) {
            if (str_eq(o, STR_LIT("null")))
                return 1;
            continue;
        }
        if (str_eq(pat, STR_LIT("same-origin"))) {
            /* this request's own scheme and Host */
            const char *scheme = tls_is(&s->conn->c) ? "https://" : "http://";
            size_t sl = strlen(scheme);
            if (sl + r->info.host.len >= sizeof(sb))
                continue;
            memcpy(sb, scheme, sl);
            memcpy(sb + sl, r->info.host.p, r->info.host.len);
            char nb[512];
            struct str self = origin_norm((struct str){sb, sl + r->info.host.len}, nb, sizeof(nb));
            if (self.p && str_eq(o, self))
                return 1;
            continue;
        }
        struct str pn = origin_norm(pat, pb, sizeof(pb));
        if (!pn.p)
            continue;
        const char *star = memchr(pn.p, '*', pn.len);
        if (!star) {
            if (str_eq(o, pn))
                return 1;
            continue;
        }
        /* scheme://(star).domain[:port]: same scheme and port, one or more labels
         * before ".domain" */
        size_t pre = (size_t)(star - pn.p);          /* "https://" */
        struct str suf = {star + 1, pn.len - pre - 1}; /* ".domain[:port]" */
        if (o.len > pre + suf.len && memcmp(o.p, pn.p, pre) == 0 &&
            memcmp(o.p + o.len - suf.len, suf.p, suf.len) == 0 &&
            !memchr(o.p + pre, ':', o.len - pre - suf.len) &&
            !memchr(o.p + pre, '/', o.len - pre - suf.len))
            return 1;
    }
    return 0;
}

/*
 * Decide whether the request asks for a protocol switch we pass on
 * (docs/websocket.md). Returns 0 (p->upgrade set or not), or -1 when the
 * request was refused (a response is under way).
 */
static int classify_upgrade(struct proxy *p)
{
    struct request *r = &p->s->req;
    const struct loc_conf *lc = r->lc;
    if (!(r->info.flags & H1_F_HAS_UPGRADE) || !(r->info.flags & H1_F_CONN_UPGRADE) ||
        r->minor == 0)
        return 0; /* not a request to switch: Upgrade is dropped as hop-by-hop */
    struct str tok = r->info.upgrade;
    if (str_caseeq_cstr(tok, "h2c"))
        return 0; /* never forwarded (decision 2) */
    int opted_in = location_sets_upgrade(lc);
    if (str_caseeq_cstr(tok, "websocket")) {
        if (!lc->websocket_auto && !opted_in)
            return 0;
        if (!str_eq(r->method, STR_LIT("GET"))) {
            upgrade_refused(p, 400, "client sent a WebSocket upgrade with a method other than GET");
            return -1;
        }
        if (r->has_body) {
            upgrade_refused(p, 400, "client sent a WebSocket upgrade with a request body");
            return -1;
        }
        struct str ver = req_header(r, "sec-websocket-version");
        if (!ver.p) {
            upgrade_refused(p, 400, "client sent Upgrade without Sec-WebSocket-Version");
            return -1;
        }
        if (!str_eq(ver, STR_LIT("13"))) {
            upgrade_refused(p, 426, "client sent an unsupported Sec-WebSocket-Version");
            return -1;
        }
        struct str key = req_header(r, "sec-websocket-key");
        if (!key.p) {
            upgrade_refused(p, 400, "client sent Upgrade without Sec-WebSocket-Key");
            return -1;
        }
        if (ws_accept_for_key(key.p, key.len, p->ws_accept) < 0) {
            upgrade_refused(p, 400, "client sent an invalid Sec-WebSocket-Key");
            return -1;
        }
        struct str origin = req_header(r, "origin");
        if (!origin_allowed(p, origin)) {
            char why[400];
            snprintf(why, sizeof(why), "origin \"%.*s\" is not allowed by websocket_origins",
                     (int)(origin.len < 300 ? origin.len : 300), origin.p);
            upgrade_refused(p, 403, why);
            return -1;
        }
        p->upgrade = UPG_WEBSOCKET;
        p->upgrade_token = STR_LIT("websocket");
        return 0;
    }
    /* Other protocols (SPDY/3.1, tcp, ...) only where the location opts in. */
    int listed = 0;
    for (unsigned i = 0; i < lc->nwebsocket_upgrade_tokens; i++)
        if (str_caseeq(lc->websocket_upgrade_tokens[i], tok))
            listed = 1;
    if (opted_in || listed) {
        p->upgrade = UPG_OTHER;
        p->upgrade_token = tok;
    }
    return 0;
}

/* Access-log lines for the tunnel's end, evaluated now with markers where
 * the tunnel variables go (the request context is gone by then). */
static int prepare_tunnel_logs(struct proxy *p, struct tunnel_params *tp)
{
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    const struct loc_conf *lc = r->lc;
    tp->logs = NULL;
    tp->nlogs = 0;
    if (lc->access_log_off || !lc->naccess_logs || !r->rt->logs)
        return 0;
    tp->logs = calloc(lc->naccess_logs, sizeof(*tp->logs));
    if (!tp->logs)
        return -1;
    r->log_marks = 1;
    for (unsigned i = 0; i < lc->naccess_logs; i++) {
        const struct access_log *al = &lc->access_logs[i];
        if (al->file_index >= r->rt->gen->nlog_paths)
            continue;
        if (al->cond) {
            struct str v;
            if (tmpl_eval(s, al->cond, &v) < 0 || v.len == 0 || (v.len == 1 && v.p[0] == '0'))
                continue;
        }
        enum tmpl_escape esc = al->format->escape_json   ? TMPL_ESC_JSON
                               : al->format->escape_none ? TMPL_ESC_NONE
                                                         : TMPL_ESC_LOG;
        struct str line;
        if (tmpl_eval_esc(s, &al->format->tmpl, esc, &line) < 0)
            continue;
        char *copy = malloc(line.len + 1);
        if (!copy)
            continue;
        memcpy(copy, line.p, line.len);
        struct tunnel_log *tl = &tp->logs[tp->nlogs++];
        tl->line = copy;
        tl->len = line.len;
        tl->lf = log_file_ref(r->rt->logs[al->file_index]);
    }
    r->log_marks = 0;
    return 0;
}

/*
 * The upstream answered 101 to an upgrade we asked for: check it, answer the
 * client's 101 and hand both sockets to a tunnel. Returns STEP_STOP.
 */
static enum step switch_protocols(struct proxy *p, const struct h1_header *uh, size_t nuh)
{
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    const struct loc_conf *lc = r->lc;
    struct str up_upgrade = STR_NULL, accept = STR_NULL;
    for (size_t i = 0; i < nuh; i++) {
        if (str_caseeq_cstr(uh[i].name, "upgrade"))
            up_upgrade = uh[i].value;
        else if (str_caseeq_cstr(uh[i].name, "sec-websocket-accept"))
            accept = uh[i].value;
    }
    if (!str_caseeq(up_upgrade, p->upgrade_token)) {
        char what[300];
        snprintf(what, sizeof(what),
                 "upstream answered 101 with \"Upgrade: %.*s\" to an upgrade to \"%.*s\"",
                 (int)(up_upgrade.len > 100 ? 100 : up_upgrade.len), up_upgrade.p ? up_upgrade.p : "",
                 (int)p->upgrade_token.len, p->upgrade_token.p);
        log_upstream(p, LOG_LVL_WARN, what, 0);
        metrics_upgrade_refused(r, 0, MUR_UPSTREAM_INVALID);
        return upstream_failed(p, 0, 502, "invalid 101 response from upstream", 0);
    }
    if (p->upgrade == UPG_WEBSOCKET && !str_eq(accept, str_from_cstr(p->ws_accept))) {
        log_upstream(p, LOG_LVL_WARN, "bad Sec-WebSocket-Accept from upstream in its 101 response", 0);
        metrics_upgrade_refused(r, 0, MUR_UPSTREAM_INVALID);
        return upstream_failed(p, 0, 502, "invalid 101 response from upstream", 0);
    }
    /* The client's 101: the upstream's end-to-end headers, our Upgrade/Connection. */
    r->status = 101;
    r->keepalive = 0;
    for (size_t i = 0; i < nuh; i++) {
        struct str n = uh[i].name;
        if (h1_hop_by_hop(uh[i].id) || named_in_connection(uh, nuh, n) ||
            header_hidden(lc, &uh[i]) || uh[i].id == H1_H_CONTENT_LENGTH)
            continue;
        if (resp_add(r, n, uh[i].value) < 0)
            goto oom;
    }
    if (resp_add(r, STR_LIT("Upgrade"), p->upgrade_token) < 0 ||
        resp_add(r, STR_LIT("Connection"), STR_LIT("upgrade")) < 0)
        goto oom;

    struct tunnel_params tp;
    memset(&tp, 0, sizeof(tp));
    tp.websocket = p->upgrade == UPG_WEBSOCKET;
    tp.idle_timeout = lc->websocket_idle_timeout;
    /* nginx applies proxy_read/send_timeout to tunnels; set explicitly, they still do. */
    if (lc->proxy_read_timeout_explicit && lc->proxy_read_timeout < tp.idle_timeout)
        tp.idle_timeout = lc->proxy_read_timeout;
    if (lc->proxy_send_timeout_explicit && lc->proxy_send_timeout < tp.idle_timeout)
        tp.idle_timeout = lc->proxy_send_timeout;
    tp.ping_interval = lc->websocket_ping_interval;
    tp.ping_timeout = lc->websocket_ping_timeout;
    tp.max_message = lc->websocket_max_message_size;
    tp.message_rate = lc->websocket_message_rate;
    tp.message_burst = lc->websocket_message_burst;
    tp.conn_id = s->conn->id;
    char ctx[1500];
    stream_log_ctx(s, ctx, sizeof(ctx));
    const char *peer = p->peer >= 0 ? p->ups->peers[p->peer].name : "";
    size_t cl = strlen(ctx) + strlen(peer) + 32;
    tp.log_ctx = malloc(cl);
    if (tp.log_ctx)
        snprintf(tp.log_ctx, cl, "%s, upstream: \"%s\"", ctx, peer);
    /* The client's answer (HTTP/1: the 101 head the tunnel writes first). */
    if (s->ops->upgrade_head(s, &tp.prefix_to_client, &tp.prefix_len) < 0) {
        free(tp.log_ctx);
        return STEP_STOP;
    }
    /* The tunnel's log line is made now: count what the tunnel writes
     * first (the 101 head, bytes that came with either head), the rest
     * it adds when it ends (tunnel.h). */
    uint64_t early_up = p->ub ? buf_len(p->ub) : 0;
    uint64_t early_client = s->ops->body_buffered(s, NULL);
    r->bytes_sent += tp.prefix_len + early_up;
    r->body_bytes_sent += early_up;
    struct upstream_try *ut = upstream_try_last(r);
    if (ut)
        ut->bytes_sent += early_client;
    upstream_try_end(r);
    if (prepare_tunnel_logs(p, &tp) < 0) {
        free(tp.log_ctx);
        free(tp.prefix_to_client);
        goto oom;
    }
    tp.limit_conn = r->limit_conn; /* the tunnel counts for limit_conn until it closes */
    r->limit_conn = NULL;
    tp.peer_load = p->load;        /* and for least_conn towards its server */
    tp.live_slot = status_tunnel_open(s, p->ups->name, peer); /* listed on the status page */
    tp.metrics_sid = metrics_tunnel_series(r, p->ups);
    p->load = NULL;
    tp.from_upstream = p->ub;
    p->ub = NULL;
    /* Take the upstream socket out of its upconn without closing it. */
    tls_client_detach(&p->uc->c);
    struct conn upstream = p->uc->c;
    struct upconn *uc = p->uc;
    p->uc = NULL;
    uc->c.h.fd = -1;
    uc->owner = NULL;
    upconn_close(uc);
    /* The caches serve request churn; a connection that became a tunnel
     * gives its request memory back to malloc (the stream does the same),
     * so a crowd of idle tunnels opened in a burst leaves no cache behind. */
    proxy_free_to(p, 0);
    /* The client side becomes the tunnel's client end; the stream ends
     * (and its memory goes: the metrics count the request first). */
    metrics_request_end(s);
    struct conn client;
    tp.client_end = s->ops->take_tunnel_side(s, &client, &tp.from_client);
    if (!tp.client_end)
        tp.client = &client;
    tp.upstream = &upstream;
    tunnel_start(&tp); /* owns both sockets from here, even when it fails */
    return STEP_STOP;
oom:
    s->ops->abort(s, "out of memory");
    return STEP_STOP;
}

/* Parse the response head in p->ub. Returns STEP_PROGRESS when the head was
 * handled (response relay set up), STEP_IDLE when more bytes are needed,
 * STEP_STOP when the proxy ended (error response sent or retry done). */
static enum step handle_response_head(struct proxy *p)
{
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    const struct loc_conf *lc = r->lc;
    for (;;) {
        struct h1_header hdrs[PROXY_MAX_RESP_HEADERS];
        struct h1_response resp = {.headers = hdrs, .nheaders = PROXY_MAX_RESP_HEADERS};
        enum h1_error err;
        ssize_t rc = h1_parse_response(buf_head(p->ub), buf_len(p->ub), &resp, &err);
        if (rc == -2) {
            if (buf_room(p->ub) == 0) {
                buf_compact(p->ub);
                if (buf_room(p->ub) == 0)
                    return upstream_failed(p, NEXT_UPSTREAM_INVALID_HEADER, 502,
                                           "upstream sent too big header while reading response header from upstream", 0);
            }
            return STEP_IDLE;
        }
        if (rc == -1) {
            char what[200];
            snprintf(what, sizeof(what),
                     "upstream sent invalid header (%s) while reading response header from upstream",
                     h1_error_str(err));
            return upstream_failed(p, NEXT_UPSTREAM_INVALID_HEADER, 502, what, 0);
        }
        struct upstream_try *ut = upstream_try_last(r);
        if (ut)
            ut->head_bytes += (uint64_t)rc;
        if (resp.status >= 100 && resp.status < 200 && resp.status != 101) {
            buf_consume(p->ub, (size_t)rc); /* interim response: skip */
            if (buf_len(p->ub) == 0)
                return STEP_IDLE;
            continue;
        }
        if (resp.status == 101 && !p->upgrade) {
            return upstream_failed(p, 0, 502,
                                   "upstream sent an unsolicited 101 Switching Protocols while reading response header from upstream", 0);
        }
        struct h1_info info;
        enum h1_framing_error fe;
        if (h1_analyze_headers(resp.headers, resp.nheaders, &info, &fe) < 0) {
            char what[200];
            snprintf(what, sizeof(what),
                     "upstream sent invalid header (%s) while reading response header from upstream",
                     h1_framing_error_str(fe));
            return upstream_failed(p, NEXT_UPSTREAM_INVALID_HEADER, 502, what, 0);
        }
        int status = resp.status;
        if (ut)
            ut->header_ms = (int64_t)(loop_now() - ut->start_ms);
        if (ut && p->peer >= 0) /* the status page's peer latency */
            live_peer_ok(p->ups->name, p->ups->peers[p->peer].name, (uint64_t)ut->header_ms);
        if (status == 101) {
            try_status(p, 101);
            buf_consume(p->ub, (size_t)rc);
            return switch_protocols(p, resp.headers, resp.nheaders);
        }
        if (p->upgrade) {
            /* Refused upgrade: relayed as an ordinary response; the client's
             * connection stays HTTP and this upstream connection is never reused. */
            char what[160];
            snprintf(what, sizeof(what), "upstream answered %d to the %s upgrade", status,
                     p->upgrade == UPG_WEBSOCKET ? "WebSocket" : "protocol");
            status_upgrade_refused(s, p->ups->name, p->ups->peers[p->peer].name, status, what, 0);
            /* RFC 8441: a 2xx to an extended CONNECT says the tunnel is open;
             * an upstream that did not switch must not say that */
            if (s->conn->proto == CLIENT_PROTO_H2 && status >= 200 && status < 300)
                return upstream_failed(p, NEXT_UPSTREAM_INVALID_HEADER, 502, what, 0);
            log_upstream(p, LOG_LVL_WARN, what, 0);
        }

        /* proxy_next_upstream http_5xx/404: retry before anything was sent. */
        unsigned flag = status == 500 ? NEXT_UPSTREAM_HTTP_500
                        : status == 502 ? NEXT_UPSTREAM_HTTP_502
                        : status == 503 ? NEXT_UPSTREAM_HTTP_503
                        : status == 504 ? NEXT_UPSTREAM_HTTP_504
                        : status == 403 ? NEXT_UPSTREAM_HTTP_403
                        : status == 404 ? NEXT_UPSTREAM_HTTP_404
                        : status == 429 ? NEXT_UPSTREAM_HTTP_429
                                        : 0;
        if (may_retry(p, flag)) {
            try_status(p, status);
            /* http_403 / http_404 are never failures of the server (nginx) */
            if (flag == NEXT_UPSTREAM_HTTP_403 || flag == NEXT_UPSTREAM_HTTP_404)
                upstream_peer_ok(p->ups, p->urt, p->peer);
            else
                upstream_peer_failed(p->ups, p->urt, p->peer);
            return retry_next(p);
        }
        /* Otherwise (no tries left, POST, ...) this response is the answer,
         * as nginx passes the last one on. */
        if (p->upgrade)
            metrics_upgrade_refused(r, 0, MUR_UPSTREAM_DECLINED);

        try_status(p, status);
        if (p->peer >= 0)
            upstream_peer_ok(p->ups, p->urt, p->peer);
        if (serve_stale(p, flag))
            return STEP_STOP;
        struct str ims_v, inm_v;
        if (status == 304 && cache_revalidate_headers(p->cache, &ims_v, &inm_v)) {
            /* proxy_cache_revalidate: the stored response is still good */
            struct cache_req *c = p->cache;
            p->cache = NULL;
            struct h1_header *kept = arena_alloc(&r->arena, (resp.nheaders ? resp.nheaders : 1) *
                                                                sizeof(*kept));
            char *hcopy = arena_alloc(&r->arena, (size_t)rc);
            if (!kept || !hcopy) {
                cache_store_abort(c);
                s->ops->abort(s, "out of memory");
                return STEP_STOP;
            }
            memcpy(hcopy, buf_head(p->ub), (size_t)rc);
            for (size_t i = 0; i < resp.nheaders; i++) {
                kept[i] = resp.headers[i];
                kept[i].name.p = hcopy + (resp.headers[i].name.p - buf_head(p->ub));
                kept[i].value.p = hcopy + (resp.headers[i].value.p - buf_head(p->ub));
            }
            release_upstream(p, 0);
            proxy_free(p);
            cache_serve_revalidated(s, c, kept, resp.nheaders);
            return STEP_STOP;
        }

        /* Copy the head into the arena: the buffer is reused for the body. */
        char *head = arena_alloc(&r->arena, (size_t)rc);
        struct h1_header *uh = arena_alloc(&r->arena, (resp.nheaders ? resp.nheaders : 1) * sizeof(*uh));
        if (!head || !uh) {
            s->ops->abort(s, "out of memory");
            return STEP_STOP;
        }
        const char *from = buf_head(p->ub);
        memcpy(head, from, (size_t)rc);
        for (size_t i = 0; i < resp.nheaders; i++) {
            uh[i] = resp.headers[i];
            uh[i].name.p = head + (resp.headers[i].name.p - from);
            uh[i].value.p = head + (resp.headers[i].value.p - from);
        }
        r->up_headers = uh;
        r->nup_headers = resp.nheaders;
        buf_consume(p->ub, (size_t)rc);

        /* proxy_intercept_errors: an error_page for this status answers instead. */
        if (lc->proxy_intercept_errors && status >= 300) {
            for (unsigned i = 0; i < lc->nerror_pages; i++)
                for (unsigned k = 0; k < lc->error_pages[i].ncodes; k++)
                    if (lc->error_pages[i].codes[k] == status) {
                        /* nginx keeps the upstream's WWW-Authenticate
                         * header(s) on an intercepted 401, no other header */
                        for (size_t h = 0; status == 401 && h < resp.nheaders; h++)
                            if (str_caseeq_cstr(uh[h].name, "www-authenticate"))
                                resp_add(r, uh[h].name, uh[h].value);
                        if (p->cache) /* nginx stores the status (its node's "error") */
                            cache_store_error(p->cache, s, status, uh, resp.nheaders);
                        proxy_free(p);
                                    http_respond_status(s, status);
                        return STEP_STOP;
                    }
        }

        /* X-Accel-Limit-Rate: the upstream paces this response (bytes/s) */
        if (!(lc->proxy_ignore_headers & PROXY_IGNORE_XA_LIMIT_RATE)) {
            for (size_t i = 0; i < resp.nheaders; i++) {
                uint64_t rate;
                if (uh[i].id == H1_H_X_ACCEL_LIMIT_RATE &&
                    str_to_u64(uh[i].value, INT64_MAX, &rate) == 0) {
                    r->limit_rate = (int64_t)rate;
                    r->limit_rate_set = 1;
                    http_filters_require(s);
                }
            }
        }

        /* X-Accel-Redirect: the upstream names what to serve instead (a
         * protected file, usually in an `internal` location). */
        if (!(lc->proxy_ignore_headers & PROXY_IGNORE_XA_REDIRECT)) {
            for (size_t i = 0; i < resp.nheaders; i++)
                if (uh[i].id == H1_H_X_ACCEL_REDIRECT && uh[i].value.len) {
                    accel_redirect(p, uh, resp.nheaders, uh[i].value);
                    return STEP_STOP;
                }
        }

        /* Upstream framing. */
        int bodiless = (str_eq(r->method, STR_LIT("HEAD")) && !p->head_as_get) || status == 204 ||
                       status == 304 ||
                       (status >= 100 && status < 200);
        memset(&p->rs, 0, sizeof(p->rs));
        if (bodiless) {
            p->rs.mode = RELAY_NONE;
            p->rs.in_done = 1;
        } else if (info.flags & H1_F_CHUNKED) {
            p->rs.mode = RELAY_CHUNKED;
            /* Trailer fields reach clients whose protocol carries them. */
            if (s->ops->send_trailers && (p->rs.dec.tr = arena_alloc(&r->arena, 4096)))
                p->rs.dec.tr_cap = 4096;
        } else if (info.flags & H1_F_HAS_CL) {
            p->rs.mode = info.content_length ? RELAY_LENGTH : RELAY_NONE;
            p->rs.left = info.content_length;
            if (!info.content_length)
                p->rs.in_done = 1;
        } else {
            p->rs.mode = RELAY_EOF;
        }
        p->keepalive_ok = resp.minor_version == 1 && !(info.flags & H1_F_CONN_CLOSE) &&
                          !p->sent_conn_close && p->rs.mode != RELAY_EOF && p->ups->keepalive &&
                          !p->upgrade;
        if (resp.minor_version == 0 && !(info.flags & H1_F_CONN_KEEPALIVE))
            p->keepalive_ok = 0;

        /* Client framing. An error_page target answers with the original
         * status (or the one error_page forces); "=" alone keeps this one. */
        r->status = r->err_status_override > 0 ? r->err_status_override : status;
        int stream_unknown = p->rs.mode == RELAY_CHUNKED || p->rs.mode == RELAY_EOF;
        for (size_t i = 0; i < resp.nheaders; i++) {
            struct str n = uh[i].name;
            if (h1_hop_by_hop(uh[i].id) || named_in_connection(uh, resp.nheaders, n))
                continue;
            if (uh[i].id == H1_H_CONTENT_LENGTH && stream_unknown)
                continue;
            if (header_hidden(lc, &uh[i]))
                continue;
            struct str v = uh[i].value;
            if (str_caseeq_cstr(n, "location")) {
                v = apply_redirect(p, v);
            } else if (lc->proxy_cookie && str_caseeq_cstr(n, "set-cookie")) {
                v = cookie_rewrite(s, lc->proxy_cookie, v); /* proxy_cookie_* */
            } else if (str_caseeq_cstr(n, "refresh")) {
                /* "5; url=http://..." : only the URL after "url=" is rewritten */
                for (size_t k = 0; k + 4 <= v.len; k++) {
                    if (strncasecmp(v.p + k, "url=", 4) != 0)
                        continue;
                    struct str u = apply_redirect(p, (struct str){v.p + k + 4, v.len - k - 4});
                    char *nv = arena_printf(&r->arena, "%.*s%.*s", (int)(k + 4), v.p, (int)u.len, u.p);
                    if (nv)
                        v = str_from_cstr(nv);
                    break;
                }
            }
            /* nginx's header filter makes a relative Location absolute. */
            if (str_caseeq_cstr(n, "location") && v.len && v.p[0] == '/')
                v = http_absolute_location(s, v);
            if (resp_add(r, n, v) < 0) {
                s->ops->abort(s, "out of memory");
                return STEP_STOP;
            }
        }
        int64_t length = p->rs.mode == RELAY_NONE     ? 0
                         : p->rs.mode == RELAY_LENGTH ? (int64_t)p->rs.left
                                                      : STREAM_LEN_UNKNOWN;
        if (p->cache)
            cache_store_begin(p->cache, s, status, uh, resp.nheaders);
        uint64_t rfrom, rto;
        int mr = status == 200 && p->rs.mode == RELAY_LENGTH && !p->head_as_get
                     ? cache_miss_range(p->cache, r, uh, resp.nheaders, p->rs.left, &rfrom, &rto)
                     : 0;
        if (p->head_as_get) {
            length = 0; /* the client asked HEAD: the head only */
            p->window = 1;
        } else if (mr < 0) {
            /* nginx's range filter: 416 with the length, the body still stored */
            char *cr = arena_printf(&r->arena, "bytes */%llu", (unsigned long long)p->rs.left);
            r->nresp = 0;
            if (!cr || resp_add(r, STR_LIT("Content-Range"), str_from_cstr(cr)) < 0 ||
                resp_add(r, STR_LIT("Content-Length"), STR_LIT("0")) < 0) {
                s->ops->abort(s, "out of memory");
                return STEP_STOP;
            }
            r->status = 416;
            length = 0;
            p->window = 1;
            p->win_skip = 0;
            p->win_left = 0;
        } else if (mr > 0) {
            char *cl = arena_printf(&r->arena, "%llu", (unsigned long long)(rto - rfrom + 1));
            char *cr = arena_printf(&r->arena, "bytes %llu-%llu/%llu", (unsigned long long)rfrom,
                                    (unsigned long long)rto, (unsigned long long)p->rs.left);
            resp_remove(r, "Content-Length");
            if (!cl || !cr || resp_add(r, STR_LIT("Content-Length"), str_from_cstr(cl)) < 0 ||
                resp_add(r, STR_LIT("Content-Range"), str_from_cstr(cr)) < 0) {
                s->ops->abort(s, "out of memory");
                return STEP_STOP;
            }
            r->status = 206;
            length = (int64_t)(rto - rfrom + 1);
            p->window = 1;
            p->win_skip = rfrom;
            p->win_left = rto - rfrom + 1;
        }
        if (s->ops->send_head(s, length) < 0)
            return STEP_STOP;
        /* a HEAD asked as GET, a 416: the client's response is the head, sent
         * now; the body only goes to the cache (the request ends with it) */
        if (p->window && length == 0 && s->ops->write(s, NULL, 0, 0) == SY_ERR)
            return STEP_STOP;
        p->phase = PX_RESPONSE;
        s->ops->stop_timeout(s);
        return STEP_PROGRESS;
    }
}

/* ------------------------------------------------------------ steps */

/* The client's body could not be read: the client went away (499, nginx's
 * message) or sent a malformed chunked body (400, or a close once the
 * response started). Ends the proxy. */
static enum step client_body_failed(struct proxy *p, enum stream_body why)
{
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    char ctx[1500];
    stream_log_ctx(s, ctx, sizeof(ctx));
    if (why == STREAM_BODY_CLOSED) {
        sy_log(LOG_LVL_INFO, "*%llu client prematurely closed connection while sending request body to upstream%s",
               (unsigned long long)s->conn->id, ctx);
        r->status = r->status ? r->status : 499;
        s->ops->abort(s, "client closed during body");
        return STEP_STOP;
    }
    if (why == STREAM_BODY_BAD) {
        sy_log(LOG_LVL_INFO, "*%llu client sent invalid chunked body%s", (unsigned long long)s->conn->id, ctx);
        if (r->head_sent) {
            s->ops->abort(s, "bad chunked body");
            return STEP_STOP;
        }
        proxy_free(p);
        r->keepalive = 0;
        http_respond_status(s, 400);
    }
    return STEP_STOP;
}

/* The request body, framing included, is all upstream. */
static int request_body_sent(const struct proxy *p)
{
    return p->rq_chunked ? p->rq_co.done : relay_finished(&p->rq);
}

/* The client's trailer fields (HTTP/2 HEADERS after its DATA) go upstream
 * in the chunked body's terminator. 0, or -1 (the stream was ended). */
static int request_trailers(struct proxy *p)
{
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    const struct h1_header *t;
    size_t n = s->ops->request_trailers ? s->ops->request_trailers(s, &t) : 0;
    if (!n)
        return 0;
    size_t len = 5;
    for (size_t i = 0; i < n; i++)
        len += t[i].name.len + t[i].value.len + 4;
    char *term = arena_alloc(&r->arena, len);
    if (!term) {
        proxy_free(p);
        s->ops->abort(s, "out of memory");
        return -1;
    }
    size_t o = 0;
    memcpy(term, "0\r\n", 3);
    o = 3;
    for (size_t i = 0; i < n; i++) {
        if (!value_safe(t[i].value) || h1_hop_by_hop(t[i].id))
            continue;
        memcpy(term + o, t[i].name.p, t[i].name.len);
        o += t[i].name.len;
        term[o++] = ':';
        term[o++] = ' ';
        memcpy(term + o, t[i].value.p, t[i].value.len);
        o += t[i].value.len;
        term[o++] = '\r';
        term[o++] = '\n';
    }
    term[o++] = '\r';
    term[o++] = '\n';
    p->rq_co.term = term;
    p->rq_co.term_len = (unsigned)o;
    return 0;
}

/*
 * Write the request head and body upstream. Body bytes come decoded from the
 * client stream (peek) and are consumed only once written upstream, so the
 * client is read no faster than the upstream takes them; a chunked request
 * body is re-framed as chunked.
 */
static enum step send_request(struct proxy *p)
{
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    struct conn *uc = &p->uc->c;
    enum step progress = STEP_IDLE;
    for (int i = 0; i < 16; i++) {
        size_t head_left = p->req_head_len - p->req_head_off;
        if (!head_left && request_body_sent(p)) {
            r->body_done = 1;
            return progress;
        }
        struct str body = STR_NULL;
        enum stream_body bs = STREAM_BODY_DONE;
        if (!request_body_sent(p) && !p->rq.in_done) {
            bs = s->ops->body_peek(s, &body);
            if (bs == STREAM_BODY_BAD || bs == STREAM_BODY_CLOSED || bs == STREAM_BODY_ERROR)
                return client_body_failed(p, bs);
            if (bs == STREAM_BODY_DONE) {
                p->rq.in_done = 1;
                if (p->rq_chunked && request_trailers(p) < 0)
                    return STEP_STOP;
            }
            if (bs != STREAM_BODY_DATA)
                body.len = 0;
        }
        if (p->rq.mode == RELAY_LENGTH && body.len > p->rq.left)
            body.len = (size_t)p->rq.left;
        uint64_t max = r->lc->client_max_body_size;
        if (max && p->rq.mode == RELAY_CHUNKED && p->rq.moved + body.len > max) {
            char ctx[1500];
            stream_log_ctx(s, ctx, sizeof(ctx));
            sy_log(LOG_LVL_ERR, "*%llu client intended to send too large chunked body: %llu+ bytes%s",
                   (unsigned long long)s->conn->id,
                   (unsigned long long)(p->rq.moved + body.len), ctx);
            if (r->head_sent) {
                s->ops->abort(s, "body too large");
                return STEP_STOP;
            }
            proxy_free(p);
            r->keepalive = 0;
            http_respond_status(s, 413);
            return STEP_STOP;
        }
        struct iovec iov[6];
        int n = 0;
        if (head_left) {
            iov[n].iov_base = p->req_head + p->req_head_off;
            iov[n++].iov_len = head_left;
        }
        if (p->rq_chunked && (body.len || p->rq.in_done))
            n += chunk_out_iov(&p->rq_co, body.p, body.len, p->rq.in_done, iov + n);
        else if (body.len) {
            iov[n].iov_base = (char *)body.p;
            iov[n++].iov_len = body.len;
        }
        if (n == 0) {
            /* Waiting for body bytes from the client. */
            if (bs == STREAM_BODY_AGAIN && !r->body_done)
                s->ops->set_timeout(s, r->lc->client_body_timeout);
            return progress;
        }
        if (!(uc->flags & CONN_F_READY_W))
            return progress;
        p->request_sent = 1;
        ssize_t w = conn_writev(uc, iov, n);
        if (w == SY_AGAIN) {
            timer_set(&p->utimer, r->lc->proxy_send_timeout);
            return progress;
        }
        if (w < 0) {
            if (upstream_handshaking(p))
                return upstream_tls_failed(p);
            if (p->reused && !p->body_started && p->tries <= 1) {
                /* A pooled connection the upstream closed meanwhile: retry once
                 * fresh (a failed try of its own in $upstream_*, as nginx). */
                try_status(p, 502);
                release_upstream(p, 0);
                p->tried = 0;
                p->tries = 0;
                p->req_head_off = 0;
                if (connect_next(p) < 0)
                    return STEP_STOP;
                return STEP_PROGRESS;
            }
            return upstream_failed(p, NEXT_UPSTREAM_ERROR, 502,
                                   "writev() failed while sending request to upstream",
                                   uc->last_errno);
        }
        struct upstream_try *t = upstream_try_last(r);
        if (t)
            t->bytes_sent += (uint64_t)w;
        try_connected(p);
        size_t wh = (size_t)w < head_left ? (size_t)w : head_left;
        p->req_head_off += wh;
        size_t rest = (size_t)w - wh;
        if (rest) {
            p->body_started = 1;
            size_t payload = p->rq_chunked ? chunk_out_advance(&p->rq_co, rest) : rest;
            if (payload) {
                s->ops->body_consume(s, payload);
                p->rq.moved += payload;
                if (p->rq.mode == RELAY_LENGTH)
                    p->rq.left -= payload;
            }
        }
        progress = STEP_PROGRESS;
    }
    return progress;
}

/* Read from the upstream into p->ub. */
static enum step read_upstream(struct proxy *p)
{
    struct conn *uc = &p->uc->c;
    struct request *r = &p->s->req;
    if (!(uc->flags & CONN_F_READY_R))
        return STEP_IDLE;
    /* A large body: once a read fills a whole small buffer, read into big
     * ones (a quarter of the syscalls); the head always fits a small one. */
    if (p->ub && p->bulk && buf_len(p->ub) == 0 && p->ub->size != BUF_BIG_SIZE) {
        buf_put(p->ub);
        p->ub = NULL;
    }
    if (!p->ub && !(p->ub = p->bulk ? buf_get_big() : buf_get())) {
        p->s->ops->abort(p->s, "out of memory");
        return STEP_STOP;
    }
    if (buf_room(p->ub) == 0)
        buf_compact(p->ub);
    if (buf_room(p->ub) == 0)
        return STEP_IDLE;
    size_t room = buf_room(p->ub);
    ssize_t n = conn_recv(uc, buf_tail(p->ub), room);
    if (n > 0) {
        if (p->phase == PX_RESPONSE && room == BUF_SIZE && (size_t)n == room)
            p->bulk = 1;
        p->ub->last += (uint32_t)n;
        struct upstream_try *t = upstream_try_last(r);
        if (t)
            t->bytes_received += (uint64_t)n;
        timer_set(&p->utimer, r->lc->proxy_read_timeout);
        return STEP_PROGRESS;
    }
    if (n == SY_AGAIN) {
        if (buf_len(p->ub) == 0) {
            buf_put(p->ub);
            p->ub = NULL;
        }
        return STEP_IDLE;
    }
    if (n <= 0 && upstream_handshaking(p))
        return upstream_tls_failed(p);
    if (n == 0) {
        if (p->phase == PX_EXCHANGE) {
            if (p->reused && !p->body_started && p->tries <= 1 && (!p->ub || buf_len(p->ub) == 0) &&
                (!non_idempotent_sent(p) ||
                 (r->lc->proxy_next_upstream & NEXT_UPSTREAM_NON_IDEMPOTENT))) {
                /* Keep-alive race: the upstream closed the idle connection as
                 * we reused it (a POST was sent, so it is not retried unless
                 * non_idempotent allows). */
                try_status(p, 502);
                release_upstream(p, 0);
                p->tried = 0;
                p->tries = 0;
                p->req_head_off = 0;
                if (p->rq.mode == RELAY_LENGTH)
                    p->rq.left = r->info.content_length;
                if (connect_next(p) < 0)
                    return STEP_STOP;
                return STEP_PROGRESS;
            }
            return upstream_failed(p, NEXT_UPSTREAM_ERROR, 502,
                                   "upstream prematurely closed connection while reading response header from upstream", 0);
        }
        if (p->rs.mode == RELAY_EOF) {
            p->rs.in_done = 1;
            return STEP_PROGRESS;
        }
        if (!p->rs.in_done) {
            log_upstream(p, LOG_LVL_ERR,
                         "upstream prematurely closed connection while reading upstream", 0);
            /* The client cannot be told cleanly: close its connection (no terminator). */
            p->s->ops->abort(p->s, "upstream closed mid-body");
            return STEP_STOP;
        }
        return STEP_IDLE;
    }
    if (p->phase == PX_EXCHANGE)
        return upstream_failed(p, NEXT_UPSTREAM_ERROR, 502,
                               "recv() failed while reading response header from upstream",
                               uc->last_errno);
    log_upstream(p, LOG_LVL_ERR, "recv() failed while reading upstream", uc->last_errno);
    p->s->ops->abort(p->s, "upstream read error");
    return STEP_STOP;
}

/* Whether the upstream's body ends with the bytes now ready (`ready`). */
static int response_last(const struct proxy *p, size_t ready)
{
    switch (p->rs.mode) {
    case RELAY_NONE:
        return 1;
    case RELAY_LENGTH:
        return p->rs.left == ready;
    case RELAY_CHUNKED:
        return p->rs.in_done;
    case RELAY_EOF:
        return p->rs.in_done;
    }
    (void)ready;
    return 0;
}

/* Write the response body to the client through the stream (the head
 * goes with the first bytes). */
static enum step send_response(struct proxy *p)
{
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    enum step progress = STEP_IDLE;
    for (int i = 0; i < 16; i++) {
        if (p->rs.mode == RELAY_CHUNKED && relay_decode(&p->rs, p->ub) < 0) {
            if (r->bytes_sent == 0) {
                /* Nothing reached the client yet: it gets a 502, not a
                 * connection that closes without an answer. */
                r->head_sent = 0;
                r->nresp = 0;
                r->up_headers = NULL;
                r->nup_headers = 0;
                return upstream_failed(p, 0, 502, "upstream sent invalid chunked response", 0);
            }
            log_upstream(p, LOG_LVL_ERR, "upstream sent invalid chunked response while reading upstream", 0);
            s->ops->abort(s, "bad upstream chunked");
            return STEP_STOP;
        }
        if (p->rs.mode == RELAY_LENGTH && p->rs.left == 0)
            p->rs.in_done = 1;
        if (s->ops->write_done(s))
            return progress;
        size_t ready = relay_ready(&p->rs, p->ub);
        int last = response_last(p, ready);
        if (last && p->rs.dec.tr_len && !p->trailers_sent) {
            struct h1_header t[64];
            size_t nt = h1_parse_trailers(p->rs.dec.tr, p->rs.dec.tr_len, t, 64);
            p->trailers_sent = 1;
            if (nt && s->ops->send_trailers(s, t, nt) < 0)
                return STEP_STOP;
        }
        if (!ready && !last) {
            enum step st = read_upstream(p);
            if (st != STEP_PROGRESS)
                return st == STEP_STOP ? STEP_STOP : progress;
            progress = STEP_PROGRESS;
            continue;
        }
        int client_last = last;
        if (p->window && ready) {
            /* only [win_skip, win_skip + win_left) goes to the client; the
             * whole body goes to the cache */
            size_t outside = p->win_skip ? (p->win_skip < ready ? (size_t)p->win_skip : ready)
                             : p->win_left == 0 ? ready : 0;
            if (outside) {
                if (p->cache)
                    cache_store_body(p->cache, buf_head(p->ub), outside);
                relay_advance(&p->rs, p->ub, outside);
                p->win_skip -= p->win_skip ? outside : 0;
                if (p->ub && buf_len(p->ub) == 0 && p->rs.dec_avail == 0) {
                    buf_put(p->ub);
                    p->ub = NULL;
                }
                progress = STEP_PROGRESS;
                continue;
            }
            if (ready > p->win_left)
                ready = (size_t)p->win_left;
            client_last = 0; /* the end comes once the upstream's body is stored */
        }
        /* The end of the body is all here: the cache entry is completed and
         * committed before the client has its last bytes, so that the next
         * request (another worker's too) finds it, as nginx updates its cache
         * when the upstream is done; the stores after the write are then
         * no-ops. */
        if (p->cache && client_last && !p->window) {
            if (ready)
                cache_store_body(p->cache, buf_head(p->ub), ready);
            cache_store_done(p->cache);
        }
        struct iovec iov = {ready ? buf_head(p->ub) : NULL, ready};
        ssize_t w = s->ops->write(s, &iov, ready ? 1 : 0, client_last);
        if (w == SY_AGAIN) {
            s->ops->set_timeout(s, r->lc->send_timeout);
            return progress;
        }
        if (w < 0)
            return STEP_STOP;
        if (w > 0) {
            if (p->window)
                p->win_left -= (uint64_t)w;
            if (p->cache)
                cache_store_body(p->cache, buf_head(p->ub), (size_t)w);
            relay_advance(&p->rs, p->ub, (size_t)w);
            if (p->ub && buf_len(p->ub) == 0 && p->rs.dec_avail == 0) {
                buf_put(p->ub);
                p->ub = NULL;
            }
        }
        progress = STEP_PROGRESS;
    }
    loop_post(&p->post);
    return progress;
}

static void response_complete(struct proxy *p)
{
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    int extra = p->ub && buf_len(p->ub) > 0;
    if (extra)
        log_upstream(p, LOG_LVL_WARN, "upstream sent more data than specified in \"Content-Length\" header while reading upstream", 0);
    int reusable = p->keepalive_ok && !extra && request_body_sent(p) &&
                   p->req_head_off == p->req_head_len;
    release_upstream(p, reusable);
    if (!r->body_done)
        r->keepalive = 0;
    if (!extra)
        cache_store_done(p->cache);
    proxy_free(p);
    s->ops->finish(s);
}

/* ------------------------------------------------------------ driver */

static void proxy_run(struct proxy *p)
{
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    for (int round = 0; round < 64; round++) {
        enum step any = STEP_IDLE;
        if (p->phase == PX_CONNECT)
            return;
        if (r->expect_continue && !p->continue_sent && p->rq.mode != RELAY_NONE &&
            p->req_head_off == p->req_head_len && s->ops->body_buffered(s, NULL) == 0) {
            /* The client waits for our go-ahead before sending the body. */
            s->ops->send_continue(s);
            p->continue_sent = 1;
        }
        if (p->phase == PX_EXCHANGE) {
            enum step st = send_request(p);
            if (st == STEP_STOP)
                return;
            any |= st;
            if (p->phase != PX_EXCHANGE)
                continue;
            st = read_upstream(p);
            if (st == STEP_STOP)
                return;
            if (p->phase != PX_EXCHANGE)
                continue;
            any |= st;
            if (p->ub && buf_len(p->ub) > 0) {
                st = handle_response_head(p);
                if (st == STEP_STOP)
                    return;
                any |= st;
            }
            if (p->phase == PX_EXCHANGE && !(p->uc->c.flags & CONN_F_READY_R) &&
                p->req_head_off == p->req_head_len)
                timer_set(&p->utimer, r->lc->proxy_read_timeout);
        }
        if (p->phase == PX_RESPONSE) {
            /* Keep sending the request body if the upstream answered early. */
            if (!request_body_sent(p)) {
                enum step st = send_request(p);
                if (st == STEP_STOP)
                    return;
                any |= st;
            }
            enum step st = send_response(p);
            if (st == STEP_STOP)
                return;
            any |= st;
            if (s->ops->write_done(s)) {
                response_complete(p);
                return;
            }
            if (!p->rs.in_done && !(p->uc->c.flags & CONN_F_READY_R))
                timer_set(&p->utimer, r->lc->proxy_read_timeout);
        }
        if (any == STEP_IDLE)
            return;
    }
    loop_post(&p->post);
}

static void connect_done(struct proxy *p, uint32_t events)
{
    /* Writable without an error or hang-up: the connect succeeded; only a
     * failure needs getsockopt(SO_ERROR) to say why (nginx asks every time). */
    int err = events & (EPOLLERR_BIT | EPOLLHUP_BIT) ? net_connect_result(p->uc->c.h.fd) : 0;
    if (err) {
        upstream_failed(p, NEXT_UPSTREAM_ERROR, 502,
                        "connect() failed while connecting to upstream", err);
        return;
    }
    p->uc->c.flags &= ~CONN_F_CONNECTING;
    p->uc->c.flags |= CONN_F_READY_W;
    timer_stop(&p->utimer);
    if (!p->https)
        try_connected(p); /* TLS: once the handshake is done */
    p->phase = PX_EXCHANGE;
    proxy_run(p);
}

void proxy_on_upstream(struct proxy *p, uint32_t events)
{
    if (p->phase == PX_CONNECT) {
        if (events & (EPOLLOUT_BIT | EPOLLERR_BIT | EPOLLHUP_BIT))
            connect_done(p, events);
        return;
    }
    proxy_run(p);
}

static void proxy_on_post(struct posted *pp)
{
    struct proxy *p = container_of(pp, struct proxy, post);
    proxy_run(p);
}

static void proxy_on_utimer(struct timer *t)
{
    struct proxy *p = container_of(t, struct proxy, utimer);
    struct client_stream *s = p->s;
    switch (p->phase) {
    case PX_CONNECT:
        upstream_failed(p, NEXT_UPSTREAM_TIMEOUT, 504,
                        "upstream timed out (110: Connection timed out) while connecting to upstream", 0);
        return;
    case PX_EXCHANGE:
        if (upstream_handshaking(p)) {
            upstream_failed(p, NEXT_UPSTREAM_TIMEOUT, 504,
                            "upstream timed out (110: Connection timed out) while SSL handshaking to upstream", 0);
            return;
        }
        if (p->req_head_off < p->req_head_len || !request_body_sent(p)) {
            if (p->uc && !(p->uc->c.flags & CONN_F_READY_W)) {
                upstream_failed(p, NEXT_UPSTREAM_TIMEOUT, 504,
                                "upstream timed out (110: Connection timed out) while sending request to upstream", 0);
                return;
            }
        }
        upstream_failed(p, NEXT_UPSTREAM_TIMEOUT, 504,
                        "upstream timed out (110: Connection timed out) while reading response header from upstream", 0);
        return;
    case PX_RESPONSE:
        log_upstream(p, LOG_LVL_ERR,
                     "upstream timed out (110: Connection timed out) while reading upstream", 0);
        s->ops->abort(s, "upstream read timeout");
        return;
    }
}

/* ------------------------------------------------------------ entry points */

/* Find the upstream group for a dynamic proxy_pass host (no resolver). */
static const struct upstream_conf *find_group(struct request *r, struct str host)
{
    const struct http_conf *h = r->rt->gen->http;
    for (unsigned i = 0; i < h->nupstreams; i++) {
        const struct upstream_conf *u = h->upstreams[i];
        if (strlen(u->name) == host.len && strncasecmp(u->name, host.p, host.len) == 0)
            return u;
    }
    return NULL;
}

static void on_dyn_resolved(void *ctx, struct dyn_upstream *d, const char *err);
static void proxy_go(struct proxy *p, struct str uri, int dyn_has_uri);

/* The host of "host[:port]" or "[v6][:port]", as nginx names it in logs. */
static struct str host_only(struct str hp)
{
    const char *from = hp.len && hp.p[0] == '[' ? memchr(hp.p, ']', hp.len) : hp.p;
    const char *colon = from ? memchr(from, ':', hp.len - (size_t)(from - hp.p)) : NULL;
    return colon ? (struct str){hp.p, (size_t)(colon - hp.p)} : hp;
}

/* Parse an evaluated "http://host[:port][/uri]" for a dynamic proxy_pass:
 * 0 (p->ups set), 1 (a name is being looked up: on_dyn_resolved follows),
 * -1 (logged). */
static int resolve_dynamic(struct proxy *p, struct str *uri, int *has_uri)
{
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    struct str v;
    if (tmpl_eval(s, r->lc->proxy_pass->dynamic, &v) < 0)
        return -1;
    size_t skip = 0;
    if (v.len >= 7 && strncasecmp(v.p, "http://", 7) == 0)
        skip = 7;
    else if (v.len >= 8 && strncasecmp(v.p, "https://", 8) == 0)
        skip = p->https = 8;
    else {
        log_upstream(p, LOG_LVL_ERR, "invalid URL prefix in proxy_pass value", 0);
        return -1;
    }
    size_t k = skip;
    while (k < v.len && v.p[k] != '/' && v.p[k] != '?')
        k++;
    struct str hostport = {v.p + skip, k - skip};
    *has_uri = k < v.len;
    *uri = (struct str){v.p + k, v.len - k};
    r->proxy_host = hostport;
    r->proxy_port = p->https ? STR_LIT("443") : STR_LIT("80");
    const char *colon = hostport.len && hostport.p[0] == '[' ? memchr(hostport.p, ']', hostport.len)
                                                              : hostport.p;
    colon = colon ? memchr(colon, ':', hostport.len - (size_t)(colon - hostport.p)) : NULL;
    if (colon)
        r->proxy_port = (struct str){colon + 1, hostport.len - (size_t)(colon + 1 - hostport.p)};
    const struct upstream_conf *u = find_group(r, hostport);
    if (u) {
        p->ups = u;
        p->urt = &r->rt->ups[u->index];
        return 0;
    }
    /* an address or a name: a group made at run time (dyn_upstream.c) */
    struct dyn_upstream *d = NULL;
    const char *err = NULL;
    int rc = dyn_upstream_get(r->lc, hostport, p->https ? 443 : 80, &d, on_dyn_resolved, p,
                              &p->dyn_wait, &err);
    if (rc < 0) {
        char ctx[1500];
        stream_log_ctx(s, ctx, sizeof(ctx));
        struct str host = host_only(hostport);
        if (strcmp(err, "no resolver defined") == 0)
            sy_log(LOG_LVL_ERR, "*%llu no resolver defined to resolve %.*s%s",
                   (unsigned long long)s->conn->id, (int)host.len, host.p, ctx);
        else
            sy_log(LOG_LVL_ERR, "*%llu %.*s could not be resolved (%s)%s",
                   (unsigned long long)s->conn->id, (int)host.len, host.p, err, ctx);
        return -1;
    }
    if (rc == 1)
        return 1; /* on_dyn_resolved() goes on */
    p->dyn = d;
    p->ups = dyn_upstream_conf(d);
    p->urt = dyn_upstream_rt(d);
    return 0;
}

/* nginx reads every proxied request's body first (ngx_http_test_expect) and
 * so answers "Expect: 100-continue" of an HTTP/1.1 request even when there is
 * no body to wait for (Content-Length: 0); with a body the 100 is sent when
 * the body is wanted (proxy_run). */
static void send_continue_for_empty_body(struct proxy *p)
{
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    if (r->has_body || !(r->info.flags & H1_F_EXPECT_CONTINUE) || r->minor != 1)
        return;
    s->ops->send_continue(s);
    p->continue_sent = 1;
}

static void go_upstream(struct proxy *p);

/* Answer from the cache entry p->cache found (p is freed). */
static void serve_cached(struct proxy *p)
{
    struct client_stream *s = p->s;
    struct cache_req *c = p->cache;
    p->cache = NULL;
    proxy_free(p);
    cache_serve(s, c);
}

/* proxy_cache_lock: the wait ended (cache.h, cache_wait). */
static void cache_woken(void *arg, enum cache_lookup_rc rc)
{
    struct proxy *p = arg;
    if (rc == CACHE_SERVE)
        serve_cached(p);
    else
        go_upstream(p);
}

void proxy_start(struct client_stream *s)
{
    struct request *r = &s->req;
    const struct proxy_pass *pp = r->lc->proxy_pass;
    struct proxy *p = proxy_alloc();
    if (!p) {
        http_respond_status(s, 500);
        return;
    }
    p->s = s;
    p->peer = -1;
    p->utimer.cb = proxy_on_utimer;
    p->post.cb = proxy_on_post;
    p->first_start_ms = loop_now();
    p->start_ms = loop_now();
    r->proxy = p;
    s->on_event = proxy_on_client;
    s->on_abort = proxy_abort;
    upstream_pass_begin(r); /* " : " after an earlier proxied pass */

    struct str uri = STR_NULL;
    int dyn_has_uri = 0;
    if (pp->dynamic) {
        int rc = resolve_dynamic(p, &uri, &dyn_has_uri);
        if (rc < 0) {
            proxy_free(p);
            http_respond_status(s, 502);
            return;
        }
        if (rc == 1) {
            p->dyn_uri = uri;
            p->dyn_has_uri = dyn_has_uri;
            return; /* a name is being looked up */
        }
    } else {
        p->https = pp->https;
        p->ups = pp->upstream;
        p->urt = &r->rt->ups[pp->upstream->index];
        r->proxy_host = pp->host;
        r->proxy_port = pp->port;
    }
    proxy_go(p, uri, dyn_has_uri);
}

/* A name of a dynamic proxy_pass was looked up: on with the request, or
 * nginx's 502 "could not be resolved". */
static void on_dyn_resolved(void *ctx, struct dyn_upstream *d, const char *err)
{
    struct proxy *p = ctx;
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    p->dyn_wait = NULL;
    if (!d) {
        char lctx[1500];
        stream_log_ctx(s, lctx, sizeof(lctx));
        struct str host = host_only(r->proxy_host);
        sy_log(LOG_LVL_ERR, "*%llu %.*s could not be resolved (%s)%s",
               (unsigned long long)s->conn->id, (int)host.len, host.p,
               err ? err : "3: Host not found", lctx);
        proxy_free(p);
        http_respond_status(s, 502);
        return;
    }
    p->dyn = d;
    p->ups = dyn_upstream_conf(d);
    p->urt = dyn_upstream_rt(d);
    proxy_go(p, p->dyn_uri, p->dyn_has_uri);
}

/* The upstream group is known: the request head, then the connection. */
static void proxy_go(struct proxy *p, struct str uri, int dyn_has_uri)
{
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    if (classify_upgrade(p) < 0)
        return;
    p->dyn_uri = uri;
    p->dyn_has_uri = dyn_has_uri;
    if (r->lc->cache.on && !p->upgrade) {
        enum cache_lookup_rc rc = cache_lookup(s, p->https, &p->cache);
        if (rc == CACHE_WAIT) {
            s->ops->stop_timeout(s);
            cache_wait(p->cache, cache_woken, p);
            return;
        }
        if (rc == CACHE_SERVE) {
            serve_cached(p);
            return;
        }
        if (rc == CACHE_ERROR || rc == CACHE_FAIL) { /* a stored error status; error_page applies */
            int status = rc == CACHE_FAIL ? 500 : cache_error_status(p->cache);
            proxy_free(p);
            http_respond_status(s, status);
            return;
        }
    }
    go_upstream(p);
}

/* The rest of proxy_start: the upstream request is made and sent. */
static void go_upstream(struct proxy *p)
{
    struct client_stream *s = p->s;
    struct request *r = &s->req;
    struct str uri = p->dyn_uri;
    int dyn_has_uri = p->dyn_has_uri;
    /* $request_body exists when the whole body already sits in the client
     * buffer (small bodies, as nginx's in-memory client body). */
    const char *buffered;
    if ((r->info.flags & H1_F_HAS_CL) && r->info.content_length > 0 &&
        s->ops->body_buffered(s, &buffered) >= r->info.content_length)
        r->request_body = arena_str(&r->arena, (struct str){buffered, r->info.content_length});
    if (upstream_uri(p, uri, dyn_has_uri, &uri) < 0 || build_request_head(p, uri) < 0) {
        proxy_free(p);
        s->ops->abort(s, "out of memory");
        return;
    }
    p->up_uri = uri;
    s->ops->stop_timeout(s);
    send_continue_for_empty_body(p);
    connect_next(p);
}

static void proxy_on_client(struct client_stream *s, int timed_out)
{
    struct proxy *p = s->req.proxy;
    if (!p)
        return;
    if (timed_out) {
        char ctx[1500];
        stream_log_ctx(s, ctx, sizeof(ctx));
        if (p->phase == PX_RESPONSE)
            sy_log(LOG_LVL_INFO, "*%llu client timed out (110: Connection timed out) while sending to client%s",
                   (unsigned long long)s->conn->id, ctx);
        else
            sy_log(LOG_LVL_INFO, "*%llu client timed out (110: Connection timed out) while reading client request body%s",
                   (unsigned long long)s->conn->id, ctx);
        /* nginx closes without a response (408 is only logged). */
        s->req.status = p->phase == PX_RESPONSE ? s->req.status : 408;
        s->ops->abort(s, "client timeout");
        return;
    }
    struct request *r = &s->req;
    if (s->ops->client_gone(s) && p->phase != PX_RESPONSE && r->body_done &&
        !r->lc->proxy_ignore_client_abort) {
        /* The client went away while the upstream has not answered yet
         * (nginx's check_broken_connection): nobody will read the answer,
         * so give up now rather than at proxy_read_timeout, and give back
         * what the request holds (the upstream, limit_conn counts). */
        char ctx[1500];
        stream_log_ctx(s, ctx, sizeof(ctx));
        sy_log(LOG_LVL_INFO, "*%llu epoll_wait() reported that client prematurely closed "
               "connection, so upstream connection is closed too while %s%s",
               (unsigned long long)s->conn->id, p->phase == PX_CONNECT ? "connecting to upstream"
               : "reading response header from upstream", ctx);
        r->status = 499;
        s->ops->abort(s, "client closed before the response");
        return;
    }
    proxy_run(p);
}

static void proxy_abort(struct client_stream *s)
{
    struct proxy *p = s->req.proxy;
    if (!p)
        return;
    proxy_free(p);
}
