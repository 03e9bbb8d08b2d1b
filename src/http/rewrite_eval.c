/*
 * rewrite_eval.c - a `rewrite` replacement evaluated as nginx's script engine
 * does (ngx_http_script_copy_capture_code, ngx_http_script_regex_end_code).
 *
 * Why the escaping matters: $uri is decoded, so a capture of it holds the
 * bytes the client sent as %0D%0A. Copied raw into a Location header or into
 * $args that would be a CR LF; nginx re-escapes captures there when the
 * request URI carried escapes, and so do we.
 */
#include "http/rewrite_eval.h"

#include <string.h>

#include "http/vars_eval.h"

int rw_is_url(struct str raw)
{
    return (raw.len >= 7 && memcmp(raw.p, "http://", 7) == 0) ||
           (raw.len >= 8 && memcmp(raw.p, "https://", 8) == 0) ||
           (raw.len >= 7 && memcmp(raw.p, "$scheme", 7) == 0);
}

/* nginx's NGX_ESCAPE_ARGS set: controls, space, DEL, non-ASCII and
 * " # % & + ; < > ? \ ^ ` { | } */
static int esc_args(unsigned char c)
{
    return c <= 0x20 || c >= 0x7f || strchr("\"#%&+;<>?\\^`{|}", c) != NULL;
}

/* nginx's quoted_uri / plus_in_uri: the path of the request line (before
 * '?' or '#') held a %-escape or a '+'. */
static int uri_was_quoted(const struct request *r)
{
    struct str u = r->request_uri;
    for (size_t i = 0; i < u.len && u.p[i] != '?' && u.p[i] != '#'; i++)
        if (u.p[i] == '%' || u.p[i] == '+')
            return 1;
    return 0;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/*
 * nginx's NGX_UNESCAPE_REDIRECT, in place: %XX becomes its byte when that is
 * printable and above '%' (so %0D, %20 and %25 stay escaped); it stops after
 * the first '?' (raw or %3F) and keeps the rest as is. Like nginx, a '%' not
 * followed by two hex digits is dropped. Returns the new length.
 */
static size_t unescape_redirect(char *buf, size_t n)
{
    size_t s = 0, d = 0;
    while (s < n) {
        unsigned char ch = (unsigned char)buf[s++];
        if (ch == '?') {
            buf[d++] = (char)ch;
            break;
        }
        if (ch != '%') {
            buf[d++] = (char)ch;
            continue;
        }
        if (s == n)
            break;
        int hi = hexval((unsigned char)buf[s]);
        if (hi < 0) {
            buf[d++] = buf[s++];
            continue;
        }
        s++;
        if (s == n)
            break;
        int lo = hexval((unsigned char)buf[s]);
        s++;
        if (lo < 0)
            continue;
        unsigned char v = (unsigned char)(hi << 4 | lo);
        if (v == '?') {
            buf[d++] = '?';
            break;
        }
        if (v > '%' && v < 0x7f) {
            buf[d++] = (char)v;
        } else {
            buf[d++] = '%';
            buf[d++] = buf[s - 2];
            buf[d++] = buf[s - 1];
        }
    }
    memmove(buf + d, buf + s, n - s);
    return d + (n - s);
}

/* Append `v` at buf[*o], escaped with esc_args() when `esc`. */
static void put_value(char *buf, size_t *o, struct str v, int esc)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t k = 0; k < v.len; k++) {
        unsigned char c = (unsigned char)v.p[k];
        if (esc && esc_args(c)) {
            buf[(*o)++] = '%';
            buf[(*o)++] = hex[c >> 4];
            buf[(*o)++] = hex[c & 15];
        } else {
            buf[(*o)++] = (char)c;
        }
    }
}

int rw_eval_replacement(struct client_stream *s, const struct tmpl *t, int redirect,
                        struct rw_eval *out)
{
    struct request *r = &s->req;
    int quoted = uri_was_quoted(r);
    /* "the last '?' drops the original arguments" (and is not copied) */
    int add_args = !(t->raw.len && t->raw.p[t->raw.len - 1] == '?');
    struct tmpl_seg whole = {t->raw, NULL};
    const struct tmpl_seg *segs = t->constant || !t->segs ? &whole : t->segs;
    unsigned nsegs = t->constant || !t->segs ? 1 : t->nsegs;

    struct str *vals = arena_alloc(&r->arena, nsegs * sizeof(*vals));
    if (!vals)
        return -1;
    size_t cap = r->args.len + 2;
    for (unsigned i = 0; i < nsegs; i++) {
        cap += segs[i].lit.len;
        vals[i] = STR_NULL;
        if (segs[i].var) {
            int found = 0;
            vals[i] = var_value(s, segs[i].var, &found);
            if (!found)
                vals[i] = STR_NULL;
            cap += 3 * vals[i].len;
        }
    }
    char *buf = arena_alloc(&r->arena, cap);
    if (!buf)
        return -1;

    size_t o = 0, args_at = 0;
    int in_args = 0, had_qmark = 0;
    for (unsigned i = 0; i < nsegs; i++) {
        struct str lit = segs[i].lit;
        if (i == nsegs - 1 && !segs[i].var && !add_args && lit.len)
            lit.len--;
        for (size_t k = 0; k < lit.len; k++) {
            /* Only a '?' written in the configuration splits off arguments
             * (one from a variable's value is data), and only for an
             * internal rewrite: a redirect target is copied whole. */
            if (lit.p[k] == '?') {
                had_qmark = 1;
                if (!redirect && !in_args) {
                    in_args = 1;
                    args_at = o;
                    continue;
                }
            }
            buf[o++] = lit.p[k];
        }
        if (segs[i].var) {
            enum var_kind kind = segs[i].var->kind;
            int esc = kind == VAR_CAPTURE && (in_args || redirect) && quoted;
            put_value(buf, &o, vals[i], esc);
        }
    }

    if (redirect) {
        o = unescape_redirect(buf, o);
        if (add_args && r->args.len) {
            buf[o++] = had_qmark ? '&' : '?';
            memcpy(buf + o, r->args.p, r->args.len);
            o += r->args.len;
        }
        out->uri = (struct str){buf, o};
        out->args = STR_NULL;
        return 0;
    }
    if (!in_args) {
        out->uri = (struct str){buf, o};
        out->args = add_args ? r->args : STR_NULL;
        return 0;
    }
    if (add_args && r->args.len) {
        buf[o++] = '&';
        memcpy(buf + o, r->args.p, r->args.len);
        o += r->args.len;
    }
    out->uri = (struct str){buf, args_at};
    out->args = (struct str){buf + args_at, o - args_at};
    return 0;
}
