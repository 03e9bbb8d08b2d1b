/*
 * h1_head.c - writing an HTTP/1.1 response head (see h1_head.h).
 */
#include "client/h1_head.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/loop.h"
#include "http/response.h"

/* Append C string `s` at p[o]; returns the new length (room is reserved). */
static size_t put(char *p, size_t o, const char *s)
{
    size_t n = strlen(s);
    memcpy(p + o, s, n);
    return o + n;
}

int h1_build_head(struct client_stream *s, char **out, size_t *outlen)
{
    struct request *r = &s->req;
    const struct loc_conf *lc = r->lc;
    int status = r->status;

    /* Keep-alive limits decide the Connection header of this very response. */
    if (r->keepalive && lc) {
        if (lc->keepalive_timeout == 0 ||
            (lc->keepalive_requests >= 0 && s->conn->requests >= (unsigned)lc->keepalive_requests) ||
            loop_now() - s->conn->created_ms > lc->keepalive_time)
            r->keepalive = 0;
    }
    if (sy_quit)
        r->keepalive = 0;

    struct resp_final f;
    if (resp_finalize(s, &f) < 0)
        return -1;
    size_t need = 128 + 64 + f.bytes + 4 * r->nresp; /* status line, Server, Date, Connection */
    char *p = arena_alloc(&r->arena, need);
    if (!p)
        return -1;
    /* Built with plain copies: this runs for every response. */
    size_t o = 0;
    const char *reason = http_reason(status);
    unsigned st = status >= 0 && status <= 999 ? (unsigned)status : 0;
    o = put(p, o, "HTTP/1.1 ");
    p[o++] = (char)('0' + st / 100);
    p[o++] = (char)('0' + st / 10 % 10);
    p[o++] = (char)('0' + st % 10);
    /* The SP after the code is there even with no reason phrase (RFC 9112
     * status-line; nginx writes "306 " too). */
    p[o++] = ' ';
    o = put(p, o, reason);
    o = put(p, o, "\r\n");
    if (!f.has_server) {
        o = put(p, o, "Server: ");
        o = put(p, o, f.server);
        o = put(p, o, "\r\n");
    }
    if (!f.has_date) {
        o = put(p, o, "Date: ");
        o = put(p, o, time_http_date());
        o = put(p, o, "\r\n");
    }
    for (unsigned i = 0; i < r->nresp; i++) {
        struct resp_header *h = &r->resp[i];
        memcpy(p + o, h->name.p, h->name.len);
        o += h->name.len;
        p[o++] = ':';
        p[o++] = ' ';
        memcpy(p + o, h->value.p, h->value.len);
        o += h->value.len;
        p[o++] = '\r';
        p[o++] = '\n';
    }
    if (status != 101) {
        if (r->keepalive) {
            memcpy(p + o, "Connection: keep-alive\r\n", 24);
            o += 24;
            if (lc && lc->keepalive_header_timeout != CONF_UNSET_U64 &&
                lc->keepalive_header_timeout != 0)
                o += (size_t)snprintf(p + o, need - o, "Keep-Alive: timeout=%llu\r\n",
                                      (unsigned long long)(lc->keepalive_header_timeout / 1000));
        } else {
            memcpy(p + o, "Connection: close\r\n", 19);
            o += 19;
        }
    }
    p[o++] = '\r';
    p[o++] = '\n';
    *out = p;
    *outlen = o;
    return 0;
}

