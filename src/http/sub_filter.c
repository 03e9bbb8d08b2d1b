/*
 * sub_filter.c - string replacement in response bodies (sub_filter.h).
 *
 * Input is scanned in pieces of at most SF_PIECE bytes, appended to what
 * the last piece left unconsumed (a possible start of a string, shorter
 * than the longest one); the result goes to one output buffer, written on
 * to the client before more input is taken.
 */
#include "http/sub_filter.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "http/response.h"
#include "http/vars_eval.h"

#define SF_PIECE 16384

struct sf {
    struct resp_filter f;
    struct str *pat;     /* lower-case strings to find */
    struct str *repl;    /* their replacements */
    unsigned n;
    unsigned char *done; /* replaced already (sub_filter_once) */
    int once;
    size_t maxlen;       /* longest string */
    char *work;          /* carry + piece */
    size_t carry;        /* bytes of work kept from the previous piece */
    char *out;           /* output not yet taken by the client */
    size_t olen, ooff, ocap;
    int in_done;         /* the whole body was taken */
    int last_sent;       /* the end of the body went on */
};

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Does pat match at p (case-insensitive), within the `avail` bytes? 1 yes,
 * 0 no, -1 maybe (the bytes so far match but the string goes further). */
static int match_at(const char *p, size_t avail, struct str pat)
{
    size_t k = pat.len < avail ? pat.len : avail;
    for (size_t i = 0; i < k; i++)
        if (lower((unsigned char)p[i]) != (unsigned char)pat.p[i])
            return 0;
    return pat.len <= avail ? 1 : -1;
}

size_t sub_scan(const char *in, size_t len, const struct str *pat, const struct str *repl,
                unsigned n, unsigned char *done, int once, int last,
                int (*emit)(void *ctx, const char *p, size_t len), void *ctx)
{
    size_t i = 0, lit = 0; /* in[lit..i) is text not yet emitted */
    while (i < len) {
        int best = -1, maybe = 0;
        for (unsigned k = 0; k < n; k++) {
            if (once && done[k])
                continue;
            int m = match_at(in + i, len - i, pat[k]);
            if (m == 1 && (best < 0 || pat[k].len > pat[best].len))
                best = (int)k;
            else if (m < 0)
                maybe = 1; /* only longer than the bytes left, so than any match */
        }
        if (maybe && !last)
            break; /* a (longer) string may continue in the next piece */
        if (best < 0) {
            i++;
            continue;
        }
        if ((i > lit && emit(ctx, in + lit, i - lit) < 0) ||
            emit(ctx, repl[best].p, repl[best].len) < 0)
            return (size_t)-1;
        done[best] = 1;
        i += pat[best].len;
        lit = i;
    }
    if (i > lit && emit(ctx, in + lit, i - lit) < 0)
        return (size_t)-1;
    return i;
}

static int sf_emit(void *ctx, const char *p, size_t len)
{
    struct sf *s = ctx;
    if (s->olen + len > s->ocap) {
        size_t cap = s->ocap ? s->ocap : SF_PIECE;
        while (cap < s->olen + len)
            cap *= 2;
        char *o = realloc(s->out, cap);
        if (!o)
            return -1;
        s->out = o;
        s->ocap = cap;
    }
    memcpy(s->out + s->olen, p, len);
    s->olen += len;
    return 0;
}

static int sf_wanted(const struct loc_conf *lc)
{
    return lc->sub.pairs != NULL;
}

static void sf_close(struct resp_filter *f)
{
    struct sf *s = (struct sf *)f;
    free(s->work);
    free(s->out);
    free(s->pat);
    free(s);
}

static struct resp_filter *sf_open(struct client_stream *st, struct resp_filter_head *h)
{
    struct request *r = &st->req;
    const struct sub_conf *c = &r->lc->sub;
    if (!c->pairs || h->length == 0 || h->header_only ||
        !compress_types_match(c->types, resp_get(r, "content-type")))
        return NULL;
    /* nginx: the length is unknown now; the validators go with the old
     * body unless sub_filter_last_modified on */
    resp_remove(r, "content-length");
    if (c->last_modified) {
        resp_weaken_etag(r);
    } else {
        resp_remove(r, "last-modified");
        resp_remove(r, "etag");
    }
    h->length = h->head_request ? 0 : STREAM_LEN_UNKNOWN;
    if (h->head_request)
        return NULL;
    struct sf *s = calloc(1, sizeof(*s));
    struct str *v = calloc(2 * (size_t)c->npairs, sizeof(*v));
    if (!s || !v) {
        free(s);
        free(v);
        return NULL;
    }
    s->pat = v;
    s->repl = v + c->npairs;
    s->once = c->once;
    for (unsigned i = 0; i < c->npairs; i++) {
        struct str m, rep;
        if (tmpl_eval(st, c->pairs[i].match, &m) != 0 ||
            tmpl_eval(st, c->pairs[i].replacement, &rep) != 0 || m.len == 0)
            continue; /* nginx skips a string that evaluates empty */
        char *low = arena_alloc(&r->arena, m.len);
        if (!low)
            continue;
        for (size_t k = 0; k < m.len; k++)
            low[k] = (char)lower((unsigned char)m.p[k]);
        s->pat[s->n] = (struct str){low, m.len};
        s->repl[s->n] = rep;
        if (m.len > s->maxlen)
            s->maxlen = m.len;
        s->n++;
    }
    s->done = arena_calloc(&r->arena, s->n ? s->n : 1);
    s->work = malloc(s->maxlen + SF_PIECE);
    if (!s->done || !s->work || s->n == 0) {
        sf_close(&s->f);
        return NULL;
    }
    return &s->f;
}

/* Write the held output on. SY_OK when none is left, SY_AGAIN, SY_ERR. */
static int sf_flush(struct sf *s)
{
    int end = s->in_done && !s->last_sent;
    if (s->ooff == s->olen && !end)
        return SY_OK;
    struct iovec iov = {s->out + s->ooff, s->olen - s->ooff};
    ssize_t w = resp_filter_next_write(&s->f, &iov, iov.iov_len ? 1 : 0, s->in_done);
    if (w == SY_AGAIN)
        return SY_AGAIN;
    if (w < 0)
        return SY_ERR;
    s->ooff += (size_t)w;
    if (s->ooff < s->olen)
        return SY_AGAIN;
    s->ooff = s->olen = 0;
    if (s->in_done)
        s->last_sent = 1;
    return SY_OK;
}

static ssize_t sf_write(struct resp_filter *f, const struct iovec *iov, int n, int last)
{
    struct sf *s = (struct sf *)f;
    int rc = sf_flush(s);
    if (rc != SY_OK)
        return rc == SY_AGAIN ? SY_AGAIN : SY_ERR;
    /* one piece of the input after what the last one kept */
    size_t take = 0, total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    for (int i = 0; i < n && take < SF_PIECE; i++) {
        size_t k = iov[i].iov_len < SF_PIECE - take ? iov[i].iov_len : SF_PIECE - take;
        memcpy(s->work + s->carry + take, iov[i].iov_base, k);
        take += k;
    }
    int end = last && take == total;
    size_t len = s->carry + take;
    size_t used = sub_scan(s->work, len, s->pat, s->repl, s->n, s->done, s->once, end, sf_emit, s);
    if (used == (size_t)-1)
        return SY_ERR;
    s->carry = len - used;
    memmove(s->work, s->work + used, s->carry);
    s->in_done = end;
    if (sf_flush(s) == SY_ERR)
        return SY_ERR;
    return (ssize_t)take;
}

static int sf_write_done(struct resp_filter *f)
{
    struct sf *s = (struct sf *)f;
    return s->last_sent && resp_filter_next_done(f);
}

static int sf_resume(struct resp_filter *f)
{
    return sf_flush((struct sf *)f);
}

const struct resp_filter_type sub_filter_type = {
    .name = "sub",
    .wanted = sf_wanted,
    .open = sf_open,
    .write = sf_write,
    .write_done = sf_write_done,
    .resume = sf_resume,
    .close = sf_close,
};
