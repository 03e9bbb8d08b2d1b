/*
 * compress.c - the gzip / Brotli response filter and the choice of
 * precompressed files (see compress.h).
 */
#include "http/compress.h"

#include <brotli/encode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "http/response.h"
#include "http/router.h"
#include "http/subrequest.h"
#include "http/vars_eval.h"

#include "core/container.h"

/* ------------------------------------------------------------ Accept-Encoding */

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static struct str trim(struct str s)
{
    while (s.len && is_ows(s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len && is_ows(s.p[s.len - 1]))
        s.len--;
    return s;
}

/* A qvalue ("0", "0.5", "1.000") in thousandths; -1 when malformed. */
static int parse_q(struct str v)
{
    v = trim(v);
    if (v.len == 0 || (v.p[0] != '0' && v.p[0] != '1'))
        return -1;
    int q = (v.p[0] - '0') * 1000;
    if (v.len == 1)
        return q;
    if (v.p[1] != '.' || v.len > 5)
        return -1;
    int scale = 100;
    for (size_t i = 2; i < v.len; i++, scale /= 10) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        q += (v.p[i] - '0') * scale;
    }
    return q > 1000 ? -1 : q;
}

/* One list element: its coding and q (1000 without a q parameter; 0 when
 * the q is malformed, as nginx refuses those). */
static void parse_element(struct str e, struct str *coding, int *q)
{
    size_t i = 0;
    while (i < e.len && e.p[i] != ';')
        i++;
    *coding = trim((struct str){e.p, i});
    *q = 1000;
    while (i < e.len) {
        size_t start = ++i;
        while (i < e.len && e.p[i] != ';')
            i++;
        struct str param = trim((struct str){e.p + start, i - start});
        if (param.len >= 2 && (param.p[0] == 'q' || param.p[0] == 'Q')) {
            struct str rest = trim((struct str){param.p + 1, param.len - 1});
            if (rest.len && rest.p[0] == '=') {
                int v = parse_q((struct str){rest.p + 1, rest.len - 1});
                *q = v < 0 ? 0 : v;
            }
        }
    }
}

enum compress_coding compress_accept(struct str ae, unsigned offer, int q_out[3])
{
    int q[3] = {-1, -1, -1}; /* explicit q per coding; -1 = not listed */
    int star = -1;
    size_t i = 0;
    while (i < ae.len) {
        size_t start = i;
        while (i < ae.len && ae.p[i] != ',')
            i++;
        struct str coding;
        int v;
        parse_element((struct str){ae.p + start, i - start}, &coding, &v);
        i++;
        if (str_caseeq(coding, STR_LIT("gzip")) || str_caseeq(coding, STR_LIT("x-gzip")))
            q[COMPRESS_GZIP] = q[COMPRESS_GZIP] > v ? q[COMPRESS_GZIP] : v;
        else if (str_caseeq(coding, STR_LIT("br")))
            q[COMPRESS_BR] = q[COMPRESS_BR] > v ? q[COMPRESS_BR] : v;
        else if (str_eq(coding, STR_LIT("*")))
            star = v;
    }
    for (int c = 1; c < 3; c++)
        if (q[c] < 0)
            q[c] = star > 0 ? star : 0;
    if (q_out)
        memcpy(q_out, q, sizeof(q));
    int gz = (offer & (1u << COMPRESS_GZIP)) ? q[COMPRESS_GZIP] : 0;
    int br = (offer & (1u << COMPRESS_BR)) ? q[COMPRESS_BR] : 0;
    if (br > 0 && br >= gz)
        return COMPRESS_BR;
    if (gz > 0)
        return COMPRESS_GZIP;
    return COMPRESS_NONE;
}

/* ------------------------------------------------------------ nginx's gzip_ok */

/* nginx's MSIE 4-6 test (ngx_http_process_user_agent): "MSIE 4."/"5.", or
 * "MSIE 6." without "SV1"; never Opera. */
static int is_msie6(struct str ua)
{
    const char *m = ua.len ? memmem(ua.p, ua.len, "MSIE ", 5) : NULL;
    if (!m || memmem(ua.p, ua.len, "Opera", 5))
        return 0;
    size_t off = (size_t)(m - ua.p);
    if (off + 7 >= ua.len || m[6] != '.')
        return 0;
    if (m[5] == '4' || m[5] == '5')
        return 1;
    if (m[5] == '6')
        return off + 8 > ua.len || !memmem(m + 8, ua.len - off - 8, "SV1", 3);
    return 0;
}

/* Does a Cache-Control value list `token` (case-insensitive)? */
static int cc_has(struct str v, const char *token)
{
    size_t i = 0;
    while (i < v.len) {
        size_t start = i;
        while (i < v.len && v.p[i] != ',')
            i++;
        struct str e = trim((struct str){v.p + start, i - start});
        size_t k = 0;
        while (k < e.len && e.p[k] != '=')
            k++;
        if (str_caseeq(trim((struct str){e.p, k}), str_from_cstr(token)))
            return 1;
        i++;
    }
    return 0;
}

/* gzip_proxied for a request with Via (nginx's ngx_http_gzip_ok). */
static int proxied_ok(const struct request *r, unsigned p)
{
    if (p & GZIP_PROXIED_OFF)
        return 0;
    if (p & GZIP_PROXIED_ANY)
        return 1;
    if ((p & GZIP_PROXIED_AUTH) && req_header(r, "authorization").p)
        return 1;
    struct str e = resp_get(r, "expires");
    if (e.p) {
        if (!(p & GZIP_PROXIED_EXPIRED))
            return 0;
        int64_t expires = time_parse_http(e.p, e.len);
        if (expires < 0)
            return 0;
        struct str d = resp_get(r, "date");
        int64_t date = d.p ? time_parse_http(d.p, d.len) : (int64_t)(loop_wall_ms() / 1000);
        return date >= 0 && expires < date;
    }
    struct str cc = resp_get(r, "cache-control");
    if (cc.p)
        return ((p & GZIP_PROXIED_NO_CACHE) && cc_has(cc, "no-cache")) ||
               ((p & GZIP_PROXIED_NO_STORE) && cc_has(cc, "no-store")) ||
               ((p & GZIP_PROXIED_PRIVATE) && cc_has(cc, "private"));
    if ((p & GZIP_PROXIED_NO_LM) && resp_get(r, "last-modified").p)
        return 0;
    if ((p & GZIP_PROXIED_NO_ETAG) && resp_get(r, "etag").p)
        return 0;
    return 1;
}

/* The request-side checks of gzip (after Accept-Encoding): msie6,
 * gzip_http_version, gzip_proxied, gzip_disable. */
static int gzip_request_ok(const struct client_stream *st)
{
    const struct request *r = &st->req;
    const struct compress_conf *cc = &r->lc->compress;
    struct str ua = req_header(r, "user-agent");
    if (cc->gzip_disable_msie6 && is_msie6(ua))
        return 0;
    /* HTTP/2 counts as 1.1 (its requests have minor 1) */
    if (r->minor < cc->gzip_http_version)
        return 0;
    if (req_header(r, "via").p && !proxied_ok(r, cc->gzip_proxied))
        return 0;
    for (unsigned i = 0; i < cc->ngzip_disable && ua.p; i++)
        if (router_regex_match(cc->gzip_disable[i], ua, NULL))
            return 0;
    return 1;
}

/* ------------------------------------------------------------ the head */

/* Eligible for a coding by nginx's header-filter rules (status, no
 * Content-Encoding, not header-only, length, type). */
static int eligible(const struct request *r, const struct resp_filter_head *h, uint64_t min_length,
                    const struct compress_types *types)
{
    if (r->status != 200 && r->status != 403 && r->status != 404)
        return 0;
    if (h->header_only)
        return 0;
    if (resp_get(r, "content-encoding").len)
        return 0;
    if (h->length != STREAM_LEN_UNKNOWN && (uint64_t)h->length < min_length)
        return 0;
    return compress_types_match(types, resp_get(r, "content-type"));
}

/* ------------------------------------------------------------ the filter */

enum cz_op { CZ_PROCESS, CZ_FLUSH, CZ_FINISH };

struct cz {
    struct resp_filter f;       /* first: the chain's view */
    enum compress_coding coding;
    z_stream z;
    BrotliEncoderState *br;
    struct buf *out;            /* compressed bytes not yet taken downstream */
    enum cz_op pending_op;      /* a flush or finish under way (CZ_PROCESS: none) */
    int finished;               /* the encoder wrote its last byte */
    int dirty;                  /* input taken since the last flush */
    int streaming;              /* flush when the source pauses */
    int failed;
    uint64_t bytes_in, bytes_out; /* for $gzip_ratio / $brotli_ratio */
    struct posted flush_post;
};

/* Push the output buffer downstream. SY_OK when it is empty (and, once
 * finished, downstream has the end), SY_AGAIN, SY_ERR. After SY_ERR the
 * stream has ended and the request (this filter with it) may be freed:
 * callers return at once without touching `c`. */
static int cz_push(struct cz *c)
{
    while (c->out && buf_len(c->out)) {
        struct iovec iov = {buf_head(c->out), buf_len(c->out)};
        ssize_t w = resp_filter_next_write(&c->f, &iov, 1, c->finished);
        if (w == SY_AGAIN)
            return SY_AGAIN;
        if (w < 0)
            return SY_ERR; /* the stream ended: `c` may be gone already */
        if (w == 0)
            return SY_AGAIN;
        buf_consume(c->out, (size_t)w);
    }
    if (c->out) {
        c->out->pos = c->out->last = 0;
        if (c->finished) {
            buf_put(c->out);
            c->out = NULL;
        }
    }
    if (c->finished && !resp_filter_next_done(&c->f)) {
        ssize_t w = resp_filter_next_write(&c->f, NULL, 0, 1);
        if (w == SY_AGAIN)
            return SY_AGAIN;
        if (w < 0)
            return SY_ERR;
    }
    return SY_OK;
}

/* One encoder call into the free part of c->out. Returns 1 when `op` is
 * complete, 0 when it wants more output room, -1 on an encoder error. */
static int cz_step(struct cz *c, const uint8_t **in, size_t *avail, enum cz_op op)
{
    uint8_t *next_out = (uint8_t *)buf_tail(c->out);
    size_t room = buf_room(c->out);
    if (c->coding == COMPRESS_GZIP) {
        c->z.next_in = (Bytef *)*in;
        c->z.avail_in = (uInt)*avail;
        c->z.next_out = next_out;
        c->z.avail_out = (uInt)room;
        int flush = op == CZ_FINISH ? Z_FINISH : op == CZ_FLUSH ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        int rc = deflate(&c->z, flush);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            return -1;
        c->bytes_in += *avail - c->z.avail_in;
        c->bytes_out += room - c->z.avail_out;
        *in = c->z.next_in;
        *avail = c->z.avail_in;
        c->out->last += (uint32_t)(room - c->z.avail_out);
        if (op == CZ_FINISH)
            return rc == Z_STREAM_END;
        /* done when zlib did not fill the room it had */
        return *avail == 0 && c->z.avail_out != 0;
    }
    BrotliEncoderOperation bop = op == CZ_FINISH  ? BROTLI_OPERATION_FINISH
                                 : op == CZ_FLUSH ? BROTLI_OPERATION_FLUSH
                                                  : BROTLI_OPERATION_PROCESS;
    size_t left = room, before = *avail;
    if (!BrotliEncoderCompressStream(c->br, bop, avail, in, &left, &next_out, NULL))
        return -1;
    c->bytes_in += before - *avail;
    c->bytes_out += room - left;
    c->out->last += (uint32_t)(room - left);
    if (BrotliEncoderHasMoreOutput(c->br))
        return 0;
    if (op == CZ_FINISH)
        return BrotliEncoderIsFinished(c->br);
    return *avail == 0;
}

/* Run `op` over the input until it is complete. SY_OK, SY_AGAIN (the
 * output is full and downstream is too: *in / *avail say what was taken),
 * SY_ERR. */
static int cz_run(struct cz *c, const uint8_t **in, size_t *avail, enum cz_op op)
{
    for (;;) {
        if (!c->out && !(c->out = buf_get()))
            return SY_ERR;
        if (buf_room(c->out) == 0) {
            int rc = cz_push(c);
            if (rc != SY_OK)
                return rc;
        }
        int done = cz_step(c, in, avail, op);
        if (done < 0) {
            sy_log(LOG_LVL_ALERT, "%s failed", c->coding == COMPRESS_GZIP
                                                   ? "deflate()"
                                                   : "BrotliEncoderCompressStream()");
            c->failed = 1;
            return SY_ERR;
        }
        if (done)
            return SY_OK;
    }
}

/* Complete a flush or finish under way, then push. */
static int cz_settle(struct cz *c)
{
    if (c->failed)
        return SY_ERR;
    if (c->pending_op != CZ_PROCESS) {
        const uint8_t *in = NULL;
        size_t avail = 0;
        int rc = cz_run(c, &in, &avail, c->pending_op);
        if (rc != SY_OK)
            return rc;
        if (c->pending_op == CZ_FINISH)
            c->finished = 1;
        c->pending_op = CZ_PROCESS;
        c->dirty = 0;
    }
    return cz_push(c);
}

static void cz_flush_posted(struct posted *p)
{
    struct cz *c = container_of(p, struct cz, flush_post);
    if (!c->dirty || c->finished || c->failed || c->pending_op != CZ_PROCESS)
        return;
    c->pending_op = CZ_FLUSH;
    /* SY_AGAIN: the rest goes when the client is writable (resume). */
    (void)cz_settle(c);
}

static ssize_t cz_write(struct resp_filter *f, const struct iovec *iov, int n, int last)
{
    struct cz *c = (struct cz *)f;
    int rc = cz_settle(c);
    if (rc == SY_ERR)
        return SY_ERR;
    if (rc == SY_AGAIN)
        return SY_AGAIN;
    if (c->finished)
        return 0; /* done: the whole body was written */
    size_t taken = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *in = iov[i].iov_base;
        size_t avail = iov[i].iov_len;
        rc = avail ? cz_run(c, &in, &avail, CZ_PROCESS) : SY_OK;
        taken += iov[i].iov_len - avail;
        if (rc == SY_ERR)
            return SY_ERR;
        if (rc == SY_AGAIN) {
            c->dirty |= taken > 0;
            return taken ? (ssize_t)taken : SY_AGAIN;
        }
    }
    if (taken)
        c->dirty = 1;
    if (last) {
        c->pending_op = CZ_FINISH;
        rc = cz_settle(c);
        if (rc == SY_ERR)
            return SY_ERR;
        if (rc == SY_AGAIN && !taken)
            return SY_AGAIN;
    } else if (taken && c->streaming) {
        loop_post(&c->flush_post);
    }
    return (ssize_t)taken;
}

static int cz_write_done(struct resp_filter *f)
{
    struct cz *c = (struct cz *)f;
    return c->finished && (!c->out || buf_len(c->out) == 0) && resp_filter_next_done(f);
}

static int cz_resume(struct resp_filter *f)
{
    return cz_settle((struct cz *)f);
}

static void cz_close(struct resp_filter *f)
{
    struct cz *c = (struct cz *)f;
    loop_unpost(&c->flush_post);
    if (c->coding == COMPRESS_GZIP)
        deflateEnd(&c->z);
    else if (c->br)
        BrotliEncoderDestroyInstance(c->br);
    buf_put(c->out);
    free(c);
}

/* A new encoder for `coding` with the location's settings. */
static struct cz *cz_new(const struct compress_conf *cc, enum compress_coding coding,
                         int64_t length)
{
    struct cz *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->coding = coding;
    c->flush_post.cb = cz_flush_posted;
    if (coding == COMPRESS_GZIP) {
        int wbits = cc->gzip_wbits, memlevel = cc->gzip_memlevel;
        /* nginx: a short body needs no larger window (zlib's is 262 bytes short) */
        while (length > 0 && wbits > 9 && length < (1 << (wbits - 1)) - 262) {
            wbits--;
            memlevel--;
        }
        if (memlevel < 1)
            memlevel = 1;
        if (deflateInit2(&c->z, cc->gzip_level, Z_DEFLATED, wbits + 16, memlevel,
                         Z_DEFAULT_STRATEGY) != Z_OK) {
            sy_log(LOG_LVL_ALERT, "deflateInit2() failed");
            free(c);
            return NULL;
        }
        return c;
    }
    c->br = BrotliEncoderCreateInstance(NULL, NULL, NULL);
    if (!c->br) {
        free(c);
        return NULL;
    }
    /* as ngx_brotli: a short body needs no larger window */
    int lgwin = cc->brotli_lgwin;
    while (length > 0 && lgwin > BROTLI_MIN_WINDOW_BITS && length < (1 << (lgwin - 1)))
        lgwin--;
    BrotliEncoderSetParameter(c->br, BROTLI_PARAM_QUALITY, (uint32_t)cc->brotli_level);
    BrotliEncoderSetParameter(c->br, BROTLI_PARAM_LGWIN, (uint32_t)lgwin);
    if (length > 0 && length < (int64_t)UINT32_MAX)
        BrotliEncoderSetParameter(c->br, BROTLI_PARAM_SIZE_HINT, (uint32_t)length);
    return c;
}

int compress_ratio(const struct client_stream *st, enum compress_coding coding, char *out,
                   size_t cap)
{
    const struct cz *c = (const struct cz *)http_filters_find(st, &compress_filter_type);
    if (!c || c->coding != coding || !c->finished || !c->bytes_out)
        return 0;
    /* nginx's rounding: 2.125 -> 2.13 */
    uint64_t in = c->bytes_in, o = c->bytes_out;
    uint64_t whole = in / o, frac = in * 100 / o % 100;
    if (in * 1000 / o % 10 > 4 && ++frac > 99) {
        whole++;
        frac = 0;
    }
    snprintf(out, cap, "%llu.%02llu", (unsigned long long)whole, (unsigned long long)frac);
    return 1;
}

static int cz_wanted(const struct loc_conf *lc)
{
    const struct compress_conf *cc = &lc->compress;
    return cc->gzip || cc->brotli || cc->gzip_static == COMPRESS_STATIC_ON ||
           cc->brotli_static == COMPRESS_STATIC_ON;
}

static int add_header(struct request *r, const char *name, const char *value)
{
    return resp_add(r, str_from_cstr(name), str_from_cstr(value));
}

static struct resp_filter *cz_open(struct client_stream *st, struct resp_filter_head *h)
{
    struct request *r = &st->req;
    const struct compress_conf *cc = &r->lc->compress;
    if (subrequest_is(st))
        return NULL; /* its body goes into the main response (nginx's gzip_ok) */
    int gz_elig = cc->gzip && eligible(r, h, cc->gzip_min_length, cc->gzip_types);
    int br_elig = cc->brotli && eligible(r, h, cc->brotli_min_length, cc->brotli_types);
    int vary = gz_elig || br_elig || (http_filters_notes(st) & FILTER_NOTE_VARY);
    if (vary && cc->gzip_vary && add_header(r, "Vary", "Accept-Encoding") < 0)
        return NULL;
    if (!gz_elig && !br_elig)
        return NULL;
    struct str ae = req_header(r, "accept-encoding");
    if (!ae.len)
        return NULL;
    /* the request-side checks (Via, User-Agent, version) are gzip's alone,
     * as in nginx and ngx_brotli */
    unsigned offer = (br_elig ? 1u << COMPRESS_BR : 0) |
                     (gz_elig && gzip_request_ok(st) ? 1u << COMPRESS_GZIP : 0);
    enum compress_coding coding = compress_accept(ae, offer, NULL);
    if (coding == COMPRESS_NONE)
        return NULL;
    struct cz *c = NULL;
    if (!h->head_request && !(c = cz_new(cc, coding, h->length)))
        return NULL; /* uncompressed is a correct answer */
    if (add_header(r, "Content-Encoding", coding == COMPRESS_BR ? "br" : "gzip") < 0) {
        if (c)
            cz_close(&c->f);
        return NULL;
    }
    /* HEAD gets the head a GET would (nginx), and no body */
    resp_remove(r, "content-length");
    resp_remove(r, "accept-ranges");
    resp_weaken_etag(r);
    h->length = h->head_request ? 0 : STREAM_LEN_UNKNOWN;
    if (!c)
        return NULL;
    c->streaming = h->streaming;
    return &c->f;
}

const struct resp_filter_type compress_filter_type = {
    .name = "compress",
    .wanted = cz_wanted,
    .open = cz_open,
    .write = cz_write,
    .write_done = cz_write_done,
    .resume = cz_resume,
    .close = cz_close,
};

/* ------------------------------------------------------------ precompressed files */

static const struct str suffix_gz = STR_LIT(".gz");
static const struct str suffix_br = STR_LIT(".br");

unsigned compress_static_variants(struct client_stream *st, struct static_variant *v)
{
    const struct request *r = &st->req;
    const struct compress_conf *cc = &r->lc->compress;
    if (cc->gzip_static == COMPRESS_STATIC_OFF && cc->brotli_static == COMPRESS_STATIC_OFF)
        return 0;
    /* files only, GET and HEAD only (a directory's index comes back here
     * after its internal redirect) */
    if (!r->uri.len || r->uri.p[r->uri.len - 1] == '/' ||
        !(str_eq(r->method, STR_LIT("GET")) || str_eq(r->method, STR_LIT("HEAD"))))
        return 0;
    struct str ae = req_header(r, "accept-encoding");
    int q[3] = {0, 0, 0};
    if (ae.len)
        compress_accept(ae, 0, q);
    int gz_ok = cc->gzip_static == COMPRESS_STATIC_ALWAYS ||
                (cc->gzip_static == COMPRESS_STATIC_ON && q[COMPRESS_GZIP] > 0 &&
                 gzip_request_ok(st));
    int br_ok = cc->brotli_static == COMPRESS_STATIC_ALWAYS ||
                (cc->brotli_static == COMPRESS_STATIC_ON && q[COMPRESS_BR] > 0);
    /* "on" makes Vary apply whether or not the client takes the coding
     * (nginx: gzip_static sets it when the .gz exists; ngx_brotli always) */
    if (cc->brotli_static == COMPRESS_STATIC_ON)
        http_filters_note(st, FILTER_NOTE_VARY);
    unsigned n = 0;
    int br_first = br_ok && (!gz_ok || q[COMPRESS_BR] >= q[COMPRESS_GZIP] ||
                             cc->brotli_static == COMPRESS_STATIC_ALWAYS);
    if (br_first)
        v[n++] = (struct static_variant){suffix_br, 0, COMPRESS_BR};
    if (gz_ok)
        v[n++] = (struct static_variant){suffix_gz, 0, COMPRESS_GZIP};
    else if (cc->gzip_static == COMPRESS_STATIC_ON && cc->gzip_vary)
        v[n++] = (struct static_variant){suffix_gz, 1, COMPRESS_GZIP};
    if (br_ok && !br_first)
        v[n++] = (struct static_variant){suffix_br, 0, COMPRESS_BR};
    return n;
}

int compress_static_result(struct client_stream *st, const struct static_result *res)
{
    struct request *r = &st->req;
    const struct compress_conf *cc = &r->lc->compress;
    const struct static_variant *v = res->variant;
    if (res->variant_seen)
        http_filters_note(st, FILTER_NOTE_VARY);
    if (!v || (res->action != STATIC_SEND && res->action != STATIC_NOT_MODIFIED))
        return 0;
    int mode = v->coding == COMPRESS_BR ? cc->brotli_static : cc->gzip_static;
    if (mode == COMPRESS_STATIC_ON)
        http_filters_note(st, FILTER_NOTE_VARY);
    return resp_add(r, STR_LIT("Content-Encoding"),
                    v->coding == COMPRESS_BR ? STR_LIT("br") : STR_LIT("gzip"));
}
