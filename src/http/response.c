/*
 * response.c - status reasons, error pages, and the protocol-neutral last
 * step of every response head (add_header, header safety, Server/Date).
 */
#include "http/response.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/version.h"
#include "http/charset.h"
#include "http/expires.h"
#include "http/vars_eval.h"

#define SY_SERVER_NAME "switchyard"
#define SY_SERVER_FULL "switchyard/" SY_VERSION

const char *http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Moved Temporarily";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Time-out";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Request Entity Too Large";
    case 414: return "Request-URI Too Large";
    case 415: return "Unsupported Media Type";
    case 416: return "Requested Range Not Satisfiable";
    case 421: return "Misdirected Request";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 494: return "Request Header Or Cookie Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Temporarily Unavailable";
    case 504: return "Gateway Time-out";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return "";
    }
}

int resp_status_closes(int status)
{
    /* nginx drops keep-alive after answering these itself. */
    switch (status) {
    case 400: case 408: case 413: case 414: case 431: case 494:
    case 500: case 501: case 505:
        return 1;
    default:
        return 0;
    }
}

int resp_add(struct request *r, struct str name, struct str value)
{
    if (r->nresp == r->capresp) {
        unsigned cap = r->capresp ? r->capresp * 2 : 16;
        struct resp_header *nh = arena_alloc(&r->arena, cap * sizeof(*nh));
        if (!nh)
            return -1;
        if (r->nresp)
            memcpy(nh, r->resp, r->nresp * sizeof(*nh));
        r->resp = nh;
        r->capresp = cap;
    }
    r->resp[r->nresp].name = name;
    r->resp[r->nresp].value = value;
    r->nresp++;
    return 0;
}

struct str resp_get(const struct request *r, const char *name)
{
    for (unsigned i = 0; i < r->nresp; i++)
        if (str_caseeq_cstr(r->resp[i].name, name))
            return r->resp[i].value;
    return STR_NULL;
}

void resp_remove(struct request *r, const char *name)
{
    unsigned k = 0;
    for (unsigned i = 0; i < r->nresp; i++)
        if (!str_caseeq_cstr(r->resp[i].name, name))
            r->resp[k++] = r->resp[i];
    r->nresp = k;
}

/* nginx's ngx_http_weak_etag: a strong ETag becomes W/"..."; one that is
 * not a quoted string is dropped. */
void resp_weaken_etag(struct request *r)
{
    for (unsigned i = 0; i < r->nresp; i++) {
        if (!str_caseeq_cstr(r->resp[i].name, "etag"))
            continue;
        struct str v = r->resp[i].value;
        if (v.len > 2 && v.p[0] == 'W' && v.p[1] == '/')
            return;
        if (v.len == 0 || v.p[0] != '"') {
            resp_remove(r, "etag");
            return;
        }
        char *w = arena_printf(&r->arena, "W/%.*s", (int)v.len, v.p);
        if (w)
            r->resp[i].value = str_from_cstr(w);
        return;
    }
}

/* Statuses for which add_header applies without "always" (nginx's list). */
static int add_header_applies(int status)
{
    switch (status) {
    case 200: case 201: case 204: case 206: case 301: case 302: case 303: case 304:
    case 307: case 308:
        return 1;
    default:
        return 0;
    }
}

/*
 * No response header may carry CR, LF or NUL: a value built from the request
 * ($uri is decoded, captures, an upstream's header) would otherwise let a
 * client inject headers or split the response. nginx does not check this
 * (`return 302 http://x$uri;` and `add_header X $uri;` are injectable there).
 * Here, at the one place heads are written, a Location gets such bytes
 * percent-encoded (it stays a usable URL); any other value gets each replaced
 * by SP, as RFC 9110 section 5.5 allows a recipient. Logged at "error".
 */
static int unsafe_byte(unsigned char c)
{
    return c == '\r' || c == '\n' || c == '\0';
}

static void sanitize_header(struct request *r, struct resp_header *h)
{
    size_t bad = 0;
    for (size_t i = 0; i < h->value.len; i++)
        bad += unsafe_byte((unsigned char)h->value.p[i]);
    if (!bad)
        return;
    int is_location = str_caseeq(h->name, STR_LIT("location"));
    char *v = arena_alloc(&r->arena, h->value.len + 2 * bad + 1);
    if (!v) {
        h->value = STR_NULL; /* never send the unsafe bytes */
        return;
    }
    size_t o = 0;
    for (size_t i = 0; i < h->value.len; i++) {
        unsigned char c = (unsigned char)h->value.p[i];
        if (!unsafe_byte(c)) {
            v[o++] = (char)c;
        } else if (is_location) {
            v[o++] = '%';
            v[o++] = "0123456789ABCDEF"[c >> 4];
            v[o++] = "0123456789ABCDEF"[c & 15];
        } else {
            v[o++] = ' ';
        }
    }
    sy_log(LOG_LVL_ERR, "response header \"%.*s\" had CR, LF or NUL in its value, %s",
           (int)h->name.len, h->name.p, is_location ? "percent-encoded" : "replaced by spaces");
    h->value = (struct str){v, o};
}

int resp_finalize(struct client_stream *s, struct resp_final *f)
{
    struct request *r = &s->req;
    const struct loc_conf *lc = r->lc;
    int status = r->status;
    memset(f, 0, sizeof(*f));

    /* expires first, then add_header (nginx's headers filter): both land in
     * r->resp, so $sent_http_* sees them. */
    if (lc && lc->expires.mode != EXPIRES_OFF && add_header_applies(status) &&
        expires_apply(s) < 0)
        return -1;
    if (lc && lc->nadd_headers) {
        int applies = add_header_applies(status);
        for (unsigned i = 0; i < lc->nadd_headers; i++) {
            const struct add_header *ah = &lc->add_headers[i];
            if (!applies && !ah->always)
                continue;
            struct str v;
            if (tmpl_eval(s, &ah->value, &v) < 0)
                return -1;
            if (v.len == 0)
                continue;
            if (resp_add(r, ah->name, v) < 0)
                return -1;
        }
    }
    /* then the charset of Content-Type (nginx's charset filter) */
    if (lc && lc->charset.charset.how != CHARSET_OFF && charset_apply(s) < 0)
        return -1;
    /* An upstream's Server/Date passed with proxy_pass_header (or set by
     * add_header) replace ours. */
    for (unsigned i = 0; i < r->nresp; i++) {
        sanitize_header(r, &r->resp[i]);
        struct str n = r->resp[i].name;
        f->bytes += n.len + r->resp[i].value.len;
        if (n.len == 6 && str_caseeq(n, STR_LIT("server")))
            f->has_server = 1;
        else if (n.len == 4 && str_caseeq(n, STR_LIT("date")))
            f->has_date = 1;
    }
    f->server = lc && !lc->server_tokens ? SY_SERVER_NAME : SY_SERVER_FULL;
    return 0;
}

/* nginx-shaped error pages; the product line changes with server_tokens. */
const char *resp_error_page(int status, int server_tokens, size_t *len)
{
    static char page[600];
    /* nginx's 401 page names the status its own way (the status line does not) */
    const char *reason = status == 401 ? "Authorization Required" : http_reason(status);
    int n = snprintf(page, sizeof(page),
                     "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n"
                     "<center><h1>%d %s</h1></center>\r\n<hr><center>%s</center>\r\n"
                     "</body>\r\n</html>\r\n",
                     status, reason, status, reason,
                     server_tokens ? SY_SERVER_FULL : SY_SERVER_NAME);
    /* nginx's NGX_HTTPS_CERT_ERROR, NGX_HTTPS_NO_CERT, NGX_HTTP_TO_HTTPS */
    const char *why = status == 495   ? "The SSL certificate error"
                      : status == 496 ? "No required SSL certificate was sent"
                      : status == 497 ? "The plain HTTP request was sent to HTTPS port"
                                      : NULL;
    if (why)
        n = snprintf(page, sizeof(page),
                     "<html>\r\n<head><title>400 %s</title></head>\r\n<body>\r\n"
                     "<center><h1>400 Bad Request</h1></center>\r\n<center>%s</center>\r\n"
                     "<hr><center>%s</center>\r\n</body>\r\n</html>\r\n",
                     why, why, server_tokens ? SY_SERVER_FULL : SY_SERVER_NAME);
    if (status == 494 || status == 431) {
        n = snprintf(page, sizeof(page),
                     "<html>\r\n<head><title>400 Request Header Or Cookie Too Large</title></head>"
                     "\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n"
                     "<center>Request Header Or Cookie Too Large</center>\r\n"
                     "<hr><center>%s</center>\r\n</body>\r\n</html>\r\n",
                     server_tokens ? SY_SERVER_FULL : SY_SERVER_NAME);
    }
    *len = n > 0 ? (size_t)n : 0;
    return page;
}
