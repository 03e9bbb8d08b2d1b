/*
 * charset.c - the Content-Type charset parameter (see charset.h), the header
 * half of nginx's ngx_http_charset_filter_module; bodies are never recoded.
 */
#include "http/charset.h"

#include <string.h>
#include <strings.h>

#include "conf/charset.h"
#include "conf/runtime.h"
#include "core/log.h"
#include "http/response.h"
#include "http/vars_eval.h"

/*
 * A Content-Type value as nginx keeps it (ngx_http_upstream_copy_content_type):
 * the whole value, the length of its type (up to the ';' before a
 * "charset=" parameter, else the whole value) and that charset (one pair of
 * quotes removed; it runs to the end of the value, as nginx reads it).
 */
struct ctype {
    struct str value;
    size_t type_len;
    struct str charset;
};

static void ctype_parse(struct str v, struct ctype *ct)
{
    ct->value = v;
    ct->type_len = v.len;
    ct->charset = STR_NULL;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] != ';')
            continue;
        size_t semi = i;
        while (i + 1 < v.len && v.p[i + 1] == ' ')
            i++;
        if (i + 1 >= v.len)
            return;
        if (v.len - (i + 1) < 8 || strncasecmp(v.p + i + 1, "charset=", 8) != 0)
            continue;
        const char *p = v.p + i + 9, *last = v.p + v.len;
        if (p < last && *p == '"')
            p++;
        if (last > p && last[-1] == '"')
            last--;
        ct->type_len = semi;
        ct->charset = (struct str){p, last > p ? (size_t)(last - p) : 0};
        return;
    }
}

/* Is the type (lower-cased) one of charset_types? */
static int type_listed(const struct charset_conf *c, struct str type)
{
    if (c->types_all)
        return 1;
    for (unsigned i = 0; i < c->ntypes; i++)
        if (str_caseeq(c->types[i], type))
            return 1;
    return 0;
}

/* The charset a `charset` / `source_charset` value names for this response. */
static int value_name(struct client_stream *s, const struct charset_value *v, struct str *out)
{
    if (v->how == CHARSET_NAME) {
        *out = v->name;
        return 0;
    }
    return tmpl_eval(s, v->var, out);
}

static void log_no_recode(struct client_stream *s, const struct charset_registry *reg,
                          struct str src, struct str dst)
{
    int map = charset_known(reg, src) && charset_known(reg, dst) && charset_has_map(reg, src, dst);
    if (map)
        sy_log(LOG_LVL_ERR,
               "*%llu recoding from \"%.*s\" to \"%.*s\" is not supported (no body is recoded), "
               "the response keeps its charset",
               (unsigned long long)s->conn->id, (int)src.len, src.p, (int)dst.len, dst.p);
    else
        sy_log(LOG_LVL_ERR, "*%llu no \"charset_map\" between the charsets \"%.*s\" and \"%.*s\"",
               (unsigned long long)s->conn->id, (int)src.len, src.p, (int)dst.len, dst.p);
}

/* Write the header back, `type_len` bytes of it: TYPE; charset=NAME when that
 * is the bare type (the value had no charset, or it is being rewritten) and a
 * charset is set (nginx's header filter), else those bytes as they are. */
static int ctype_store(struct request *r, struct resp_header *h, const struct ctype *ct,
                       size_t type_len, struct str charset)
{
    if (type_len != ct->type_len || !charset.len) {
        h->value = (struct str){ct->value.p, type_len};
        return 0;
    }
    size_t n = type_len + 10 + charset.len;
    char *v = arena_alloc(&r->arena, n);
    if (!v)
        return -1;
    memcpy(v, ct->value.p, type_len);
    memcpy(v + type_len, "; charset=", 10);
    memcpy(v + type_len + 10, charset.p, charset.len);
    h->value = (struct str){v, n};
    return 0;
}

int charset_of_type(struct client_stream *s, struct str type, struct str *out)
{
    const struct charset_conf *c = &s->req.lc->charset;
    *out = STR_NULL;
    if (c->charset.how == CHARSET_OFF || !type_listed(c, type))
        return 0;
    struct str dst, src;
    if (value_name(s, &c->charset, &dst) < 0)
        return -1;
    if (c->source.how != CHARSET_OFF) {
        if (value_name(s, &c->source, &src) < 0)
            return -1;
        if (!str_caseeq(src, dst))
            return 0;
    }
    *out = dst;
    return 0;
}

int charset_apply(struct client_stream *s)
{
    struct request *r = &s->req;
    const struct charset_conf *c = &r->lc->charset;
    if (c->charset.how == CHARSET_OFF)
        return 0;
    struct resp_header *h = NULL;
    for (unsigned i = 0; i < r->nresp && !h; i++)
        if (str_caseeq_cstr(r->resp[i].name, "content-type"))
            h = &r->resp[i];
    if (!h || !h->value.len)
        return 0;
    struct ctype ct;
    ctype_parse(h->value, &ct);
    /* the destination (nginx's ngx_http_destination_charset) */
    if (ct.charset.len ? !c->override : !type_listed(c, (struct str){ct.value.p, ct.type_len}))
        return 0;
    const struct charset_registry *reg = r->rt->gen->http->charsets;
    struct str dst, src;
    if (value_name(s, &c->charset, &dst) < 0)
        return -1;
    int dst_known = c->charset.how == CHARSET_NAME || charset_known(reg, dst);
    /* the source: the response's own charset, else source_charset */
    size_t type_len = ct.value.len; /* kept whole unless the charset is rewritten */
    int src_known;
    if (ct.charset.len) {
        src = ct.charset;
        src_known = charset_known(reg, src);
    } else if (c->source.how == CHARSET_OFF) {
        goto set;
    } else {
        if (value_name(s, &c->source, &src) < 0)
            return -1;
        src_known = c->source.how == CHARSET_NAME || charset_known(reg, src);
    }
    if (!dst_known || !src_known) {
        if (dst_known != src_known || !str_caseeq(src, dst)) {
            log_no_recode(s, reg, src, dst);
            return 0;
        }
        goto set;
    }
    if (!str_caseeq(src, dst)) {
        /* nginx would recode the body (with a charset_map); not Switchyard */
        if (!resp_get(r, "content-encoding").len)
            log_no_recode(s, reg, src, dst);
        return 0;
    }
    type_len = ct.type_len;
set:
    /* nginx sets no charset on redirects (ngx_http_set_charset) */
    if (r->status == 301 || r->status == 302)
        dst = STR_NULL;
    return ctype_store(r, h, &ct, type_len, dst);
}
