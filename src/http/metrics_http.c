/*
 * metrics_http.c - request metrics and the metrics page (metrics_http.h).
 */
#include "http/metrics_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/loop.h"
#include "http/response.h"
#include "http/subrequest.h"

size_t metrics_location_name(const struct request *r, char *buf, size_t cap)
{
    if (!cap)
        return 0;
    if (!r->loc) {
        buf[0] = 0;
        return 0;
    }
    static const char *const prefix[] = {
        [LOC_EXACT] = "= ", [LOC_PREFIX] = "",         [LOC_PREFIX_NOREGEX] = "^~ ",
        [LOC_REGEX] = "~ ", [LOC_REGEX_ICASE] = "~* ", [LOC_NAMED] = "@"};
    const char *pre =
        (unsigned)r->loc->match < sizeof(prefix) / sizeof(prefix[0]) && prefix[r->loc->match]
            ? prefix[r->loc->match]
            : "";
    int n = snprintf(buf, cap, "%s%.*s", pre, (int)r->loc->pattern.len, r->loc->pattern.p);
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

/* The (server, location) series of the request, cached in its loc_conf
 * (written by this worker only; the labels are the same for every request
 * that ends in this loc_conf). */
static int http_series(const struct request *r)
{
    struct loc_conf *lc = (struct loc_conf *)r->lc;
    if (lc->metrics_sid)
        return lc->metrics_sid;
    char labels[METRICS_LABELS_MAX], loc[160];
    size_t len = 0;
    const struct server_conf *srv = r->srv;
    struct str name = srv && srv->nnames ? srv->names[0].name : (struct str){"", 0};
    metrics_label_append(labels, sizeof(labels), &len, "server", name.p, name.len);
    size_t ll = metrics_location_name(r, loc, sizeof(loc));
    metrics_label_append(labels, sizeof(labels), &len, "location", loc, ll);
    int sid = metrics_series(MK_HTTP, labels, len);
    lc->metrics_sid = sid ? sid : -1;
    return lc->metrics_sid;
}

static void tries_end(const struct request *r)
{
    for (unsigned i = 0; i < r->nup_tries; i++) {
        const struct upstream_try *t = &r->up_tries[i];
        uint64_t *v = t->peer ? metrics_vals(t->metrics_sid) : NULL;
        if (!v)
            continue;
        metrics_add(&v[MV_PEER_TRIES], 1);
        if (t->connect_ms >= 0)
            metrics_observe(&v[MV_PEER_CONNECT], (uint64_t)t->connect_ms);
        if (t->header_ms >= 0)
            metrics_observe(&v[MV_PEER_HEADER], (uint64_t)t->header_ms);
        if (t->response_ms >= 0)
            metrics_observe(&v[MV_PEER_RESPONSE], (uint64_t)t->response_ms);
    }
}

void metrics_request_end(struct client_stream *s)
{
    struct request *r = &s->req;
    if (!metrics_me || !r->head_parsed || !r->lc || r->metrics_done)
        return;
    r->metrics_done = 1;
    /* a subrequest (auth_request, SSI) is part of its main request: only
     * its upstream tries count */
    uint64_t *v = subrequest_is(s) ? NULL : metrics_vals(http_series(r));
    if (v) {
        int c = r->status / 100;
        metrics_add(&v[MV_HTTP_CLASS + (c >= 1 && c <= 5 ? c - 1 : 5)], 1);
        uint64_t now = loop_now();
        metrics_observe(&v[MV_HTTP_DUR], now > r->start_ms ? now - r->start_ms : 0);
    }
    if (r->nup_tries)
        tries_end(r);
    struct buf_stats bs;
    buf_stats(&bs);
    metrics_set(&metrics_fixed_me->buf_in_use, bs.in_use);
    metrics_set(&metrics_fixed_me->buf_pooled, bs.pooled);
}

void metrics_limit(enum metrics_kind kind, const char *zone, int status)
{
    if (!metrics_me || status < 1 || status > 5 || !zone)
        return;
    char labels[METRICS_LABELS_MAX];
    size_t len = 0;
    metrics_label_append(labels, sizeof(labels), &len, "zone", zone, strlen(zone));
    uint64_t *v = metrics_vals(metrics_series(kind, labels, len));
    if (v)
        metrics_add(&v[status - 1], 1);
}

int metrics_page_prepare(struct client_stream *s, const char **body, size_t *len)
{
    struct request *r = &s->req;
    if (!str_eq(r->method, STR_LIT("GET")) && !str_eq(r->method, STR_LIT("HEAD")))
        return 405;
    char *text;
    long n = metrics_render(&text);
    if (n < 0)
        return -1;
    char *p = arena_alloc(&r->arena, (size_t)n + 1);
    if (p) {
        memcpy(p, text, (size_t)n);
        p[n] = 0;
    }
    free(text);
    if (!p || resp_add(r, STR_LIT("Content-Type"),
                       STR_LIT("text/plain; version=0.0.4; charset=utf-8")) < 0)
        return -1;
    r->status = 200;
    *body = p;
    *len = (size_t)n;
    return 0;
}
