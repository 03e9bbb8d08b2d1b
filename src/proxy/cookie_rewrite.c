/*
 * cookie_rewrite.c - Set-Cookie rewriting (cookie_rewrite.h), nginx's rules:
 * `Domain` and `Path` attributes (names any case) go through their lists, the
 * first rule that matches wins; then the first proxy_cookie_flags rule whose
 * name matches edits the flags. A header nothing changed is passed as it
 * came; a changed one is rebuilt from its trimmed parts joined by "; ".
 */
#include "proxy/cookie_rewrite.h"

#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "http/router.h"
#include "http/stream.h"
#include "http/vars_eval.h"

/* ------------------------------------------------------------ pure parts */

static struct str trim(const char *b, const char *e)
{
    while (b < e && *b == ' ')
        b++;
    while (e > b && e[-1] == ' ')
        e--;
    return (struct str){b, (size_t)(e - b)};
}

int cookie_parse(struct arena *a, struct str v, struct cookie_attr **out, unsigned *n)
{
    unsigned count = 1;
    for (size_t i = 0; i < v.len; i++)
        count += v.p[i] == ';';
    struct cookie_attr *at = arena_calloc(a, (count + 3) * sizeof(*at));
    if (!at)
        return -1;
    const char *s = v.p ? v.p : "", *end = s + v.len;
    unsigned k = 0;
    for (;;) {
        const char *last = memchr(s, ';', (size_t)(end - s));
        if (!last)
            last = end;
        const char *eq = memchr(s, '=', (size_t)(last - s));
        at[k].key = trim(s, eq ? eq : last);
        if (!at[k].key.p)
            at[k].key.p = s;
        if (eq) {
            at[k].value = trim(eq + 1, last);
            if (!at[k].value.p)
                at[k].value.p = eq + 1;
        }
        k++;
        if (last == end)
            break;
        s = last + 1;
    }
    *out = at;
    *n = k;
    return 0;
}

static const struct {
    const char *name;
    unsigned bits;
} cookie_flag_words[] = {
    {"secure", COOKIE_SECURE_ON},
    {"nosecure", COOKIE_SECURE_OFF},
    {"httponly", COOKIE_HTTPONLY_ON},
    {"nohttponly", COOKIE_HTTPONLY_OFF},
    {"samesite=strict", COOKIE_SAMESITE_STRICT},
    {"samesite=lax", COOKIE_SAMESITE_LAX},
    {"samesite=none", COOKIE_SAMESITE_NONE},
    {"nosamesite", COOKIE_SAMESITE_OFF},
};

unsigned cookie_flag_bits(struct str word)
{
    for (size_t i = 0; i < sizeof(cookie_flag_words) / sizeof(cookie_flag_words[0]); i++)
        if (str_caseeq_cstr(word, cookie_flag_words[i].name))
            return cookie_flag_words[i].bits;
    return 0;
}

/* SameSite set to `val` unless it already says so (any case). */
static void samesite_to(struct cookie_attr *at, const char *val)
{
    if (!str_caseeq_cstr(at->value, val)) {
        at->key = STR_LIT("SameSite");
        at->value = str_from_cstr(val);
    }
}

void cookie_edit_flags(struct cookie_attr *attrs, unsigned *n, unsigned flags)
{
    for (unsigned i = 1; i < *n; i++) {
        struct cookie_attr *at = &attrs[i];
        if (!at->key.p)
            continue;
        if (str_caseeq_cstr(at->key, "secure")) {
            if (flags & COOKIE_SECURE_ON)
                flags &= ~COOKIE_SECURE_ON;
            else if (flags & COOKIE_SECURE_OFF)
                at->key.p = NULL;
        } else if (str_caseeq_cstr(at->key, "httponly")) {
            if (flags & COOKIE_HTTPONLY_ON)
                flags &= ~COOKIE_HTTPONLY_ON;
            else if (flags & COOKIE_HTTPONLY_OFF)
                at->key.p = NULL;
        } else if (str_caseeq_cstr(at->key, "samesite")) {
            if (flags & COOKIE_SAMESITE_STRICT) {
                flags &= ~COOKIE_SAMESITE_STRICT;
                samesite_to(at, "Strict");
            } else if (flags & COOKIE_SAMESITE_LAX) {
                flags &= ~COOKIE_SAMESITE_LAX;
                samesite_to(at, "Lax");
            } else if (flags & COOKIE_SAMESITE_NONE) {
                flags &= ~COOKIE_SAMESITE_NONE;
                samesite_to(at, "None");
            } else if (flags & COOKIE_SAMESITE_OFF) {
                at->key.p = NULL;
            }
        }
    }
    if (flags & COOKIE_SECURE_ON)
        attrs[(*n)++] = (struct cookie_attr){STR_LIT("Secure"), STR_NULL};
    if (flags & COOKIE_HTTPONLY_ON)
        attrs[(*n)++] = (struct cookie_attr){STR_LIT("HttpOnly"), STR_NULL};
    if (flags & (COOKIE_SAMESITE_STRICT | COOKIE_SAMESITE_LAX | COOKIE_SAMESITE_NONE)) {
        const char *v = flags & COOKIE_SAMESITE_STRICT ? "Strict"
                        : flags & COOKIE_SAMESITE_LAX  ? "Lax"
                                                       : "None";
        attrs[(*n)++] = (struct cookie_attr){STR_LIT("SameSite"), str_from_cstr(v)};
    }
}

struct str cookie_join(struct arena *a, const struct cookie_attr *attrs, unsigned n)
{
    size_t len = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!attrs[i].key.p)
            continue;
        len += (i > 0 ? 2 : 0) + attrs[i].key.len + (attrs[i].value.p ? 1 + attrs[i].value.len : 0);
    }
    char *out = arena_alloc(a, len + 1);
    if (!out)
        return STR_NULL;
    size_t o = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!attrs[i].key.p)
            continue;
        if (i > 0) {
            memcpy(out + o, "; ", 2);
            o += 2;
        }
        memcpy(out + o, attrs[i].key.p, attrs[i].key.len);
        o += attrs[i].key.len;
        if (attrs[i].value.p) {
            out[o++] = '=';
            memcpy(out + o, attrs[i].value.p, attrs[i].value.len);
            o += attrs[i].value.len;
        }
    }
    out[o] = '\0';
    return (struct str){out, o};
}

/* ------------------------------------------------------------ per request */

/* `repl` in place of value[off, off+len). 0, or -1 on OOM. */
static int splice_value(struct arena *a, struct str *value, size_t off, size_t len, struct str repl)
{
    char *n = arena_alloc(a, value->len - len + repl.len + 1);
    if (!n)
        return -1;
    memcpy(n, value->p, off);
    memcpy(n + off, repl.p, repl.len);
    memcpy(n + off + repl.len, value->p + off + len, value->len - off - len);
    *value = (struct str){n, value->len - len + repl.len};
    return 0;
}

/* One rule on an attribute value: 1 rewritten, 0 not matched, -1 error. */
static int apply_rule(struct client_stream *s, const struct cookie_rw *rw, struct str *value)
{
    struct request *r = &s->req;
    struct str pat, repl;
    size_t off = 0, len = value->len;
    if (rw->kind == COOKIE_RW_REGEX) {
        struct regex_caps caps;
        if (!router_regex_match(rw->re, *value, &caps))
            return 0;
        r->caps = caps; /* nginx: the match's captures become the request's */
    } else {
        if (tmpl_eval(s, &rw->pattern, &pat) < 0)
            return -1;
        if (rw->kind == COOKIE_RW_DOMAIN) {
            if (len && value->p[0] == '.') {
                off = 1;
                len--;
            }
            if (pat.len != len || strncasecmp(pat.p, value->p + off, len) != 0)
                return 0;
        } else {
            if (pat.len > len || memcmp(value->p, pat.p, pat.len) != 0)
                return 0;
            len = pat.len;
        }
    }
    if (tmpl_eval(s, &rw->replacement, &repl) < 0)
        return -1;
    return splice_value(&r->arena, value, off, len, repl) < 0 ? -1 : 1;
}

static int apply_list(struct client_stream *s, const struct cookie_rw *list, unsigned n,
                      struct str *value)
{
    for (unsigned i = 0; i < n; i++) {
        int rc = apply_rule(s, &list[i], value);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The flags of the first matching proxy_cookie_flags rule; 0 when none. */
static unsigned flags_for(struct client_stream *s, const struct proxy_cookie_conf *pc,
                          struct str name)
{
    for (unsigned i = 0; i < pc->nflags; i++) {
        const struct cookie_flags_rule *fr = &pc->flags[i];
        if (fr->re) {
            struct regex_caps caps;
            if (!router_regex_match(fr->re, name, &caps))
                continue;
            s->req.caps = caps;
        } else {
            struct str want;
            if (tmpl_eval(s, &fr->name, &want) < 0 || !str_caseeq(want, name))
                continue;
        }
        unsigned bits = 0;
        for (unsigned k = 0; k < fr->nflags; k++) {
            struct str w;
            if (tmpl_eval(s, &fr->flags[k], &w) == 0 && w.len)
                bits |= cookie_flag_bits(w); /* an unknown word is ignored, as nginx */
        }
        return bits;
    }
    return 0;
}

struct str cookie_rewrite(struct client_stream *s, const struct proxy_cookie_conf *pc,
                          struct str v)
{
    struct arena *a = &s->req.arena;
    struct cookie_attr *at;
    unsigned n;
    if (cookie_parse(a, v, &at, &n) < 0 || !at[0].value.p)
        return v;
    int changed = 0;
    for (unsigned i = 1; i < n; i++) {
        if (!at[i].value.p)
            continue;
        int rc = 0;
        if (pc->ndomains && str_caseeq_cstr(at[i].key, "domain"))
            rc = apply_list(s, pc->domains, pc->ndomains, &at[i].value);
        else if (pc->npaths && str_caseeq_cstr(at[i].key, "path"))
            rc = apply_list(s, pc->paths, pc->npaths, &at[i].value);
        if (rc < 0)
            return v;
        changed |= rc;
    }
    if (pc->nflags) {
        unsigned bits = flags_for(s, pc, at[0].key);
        if (bits) {
            cookie_edit_flags(at, &n, bits);
            changed = 1;
        }
    }
    if (!changed)
        return v;
    struct str out = cookie_join(a, at, n);
    return out.p ? out : v;
}
