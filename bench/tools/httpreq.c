/* httpreq - see httpreq.h */
#define _GNU_SOURCE
#include "httpreq.h"

#include <string.h>
#include <strings.h>

/* Does the comma-separated list v (n bytes) hold token t, any case? */
static int has_token(const char *v, size_t n, const char *t)
{
    size_t tl = strlen(t);
    const char *end = v + n;
    while (v < end) {
        while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
            v++;
        const char *s = v;
        while (v < end && *v != ',')
            v++;
        const char *e = v;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, t, tl) == 0)
            return 1;
    }
    return 0;
}

static int name_is(const char *name, size_t nl, const char *want)
{
    return nl == strlen(want) && strncasecmp(name, want, nl) == 0;
}

static int parse_header(struct http_req *r, const char *l, size_t ll)
{
    const char *colon = memchr(l, ':', ll);
    if (!colon || colon == l)
        return -1;
    size_t nl = (size_t)(colon - l);
    const char *v = colon + 1, *ve = l + ll;
    while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    size_t vl = (size_t)(ve - v);
    switch (l[0] | 0x20) {  /* cheap first-letter dispatch, most headers skip */
    case 'c':
        if (name_is(l, nl, "connection")) {
            if (has_token(v, vl, "close"))
                r->conn_close = 1;
            if (has_token(v, vl, "keep-alive"))
                r->conn_keepalive = 1;
        } else if (name_is(l, nl, "content-length")) {
            uint64_t x = 0;
            if (vl == 0 || vl > 18)
                return -1;
            for (size_t i = 0; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return -1;
                x = x * 10 + (uint64_t)(v[i] - '0');
            }
            r->content_length = x;
        }
        break;
    case 'u':
        if (name_is(l, nl, "upgrade") && has_token(v, vl, "websocket"))
            r->upgrade_ws = 1;
        break;
    case 's':
        if (name_is(l, nl, "sec-websocket-key")) {
            r->ws_key = v;
            r->ws_key_len = vl;
        }
        break;
    case 't':
        if (name_is(l, nl, "transfer-encoding") && has_token(v, vl, "chunked"))
            r->chunked = 1;
        break;
    }
    return 0;
}

int http_parse_req(const char *p, size_t n, struct http_req *r)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end)
        return 0;
    memset(r, 0, sizeof *r);
    r->head_len = (size_t)(end - p) + 4;

    /* request line: METHOD SP target SP HTTP/1.x */
    const char *le = memchr(p, '\r', (size_t)(end - p) + 1);
    const char *sp1 = memchr(p, ' ', (size_t)(le - p));
    if (!sp1 || sp1 == p)
        return -1;
    const char *tgt = sp1 + 1;
    const char *sp2 = memchr(tgt, ' ', (size_t)(le - tgt));
    if (!sp2 || sp2 == tgt || le - sp2 != 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return -1;
    if (sp2[8] == '0')
        r->http10 = 1;
    else if (sp2[8] != '1')
        return -1;
    size_t ml = (size_t)(sp1 - p);
    r->is_get = ml == 3 && memcmp(p, "GET", 3) == 0;
    r->is_head = ml == 4 && memcmp(p, "HEAD", 4) == 0;
    const char *q = memchr(tgt, '?', (size_t)(sp2 - tgt));
    r->path = tgt;
    r->path_len = (size_t)((q ? q : sp2) - tgt);

    /* header lines */
    const char *l = le + 2;
    while (l < end + 2) {
        const char *e = memchr(l, '\r', (size_t)(end + 2 - l));
        if (!e || e[1] != '\n')
            return -1;
        if (e > l && parse_header(r, l, (size_t)(e - l)) < 0)
            return -1;
        l = e + 2;
    }
    return 1;
}
