/*
 * secure_link.c - the variables of the secure_link module (secure_link.h),
 * as nginx computes them.
 */
#include "http/secure_link.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "core/arena.h"
#include "core/loop.h"
#include "http/vars_eval.h"

static int md5(struct str in, unsigned char out[16])
{
    unsigned int n = 0;
    return EVP_Digest(in.p, in.len, out, &n, EVP_md5(), NULL) == 1 && n == 16 ? 0 : -1;
}

/* base64url (RFC 4648 §5) without padding, as nginx's ngx_decode_base64url. */
static int b64url(struct str in, unsigned char *out, size_t cap, size_t *len)
{
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.p[i];
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '-'             ? 62
                : c == '_'             ? 63
                                       : -1;
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (in.len % 4 == 1)
        return -1;
    *len = o;
    return 0;
}

/* The "hash,expires" form: 1 valid, 0 expired, -1 no match. *exp the
 * expiry text (may be empty). */
static int check_md5_form(struct client_stream *s, const struct secure_link_conf *c,
                          struct str *exp)
{
    struct str val, text;
    *exp = STR_NULL;
    if (tmpl_eval(s, c->variable, &val) != 0)
        return -1;
    long long expires = 0;
    const char *comma = memchr(val.p, ',', val.len);
    if (comma) {
        *exp = (struct str){comma + 1, val.len - (size_t)(comma + 1 - val.p)};
        char buf[32];
        if (exp->len == 0 || exp->len >= sizeof(buf))
            return -1;
        memcpy(buf, exp->p, exp->len);
        buf[exp->len] = '\0';
        char *end;
        expires = strtoll(buf, &end, 10);
        if (*end || expires <= 0)
            return -1;
        val.len = (size_t)(comma - val.p);
    }
    unsigned char want[16], got[16];
    size_t n;
    if (val.len > 24 || b64url(val, want, sizeof(want), &n) != 0 || n != 16)
        return -1;
    if (!c->md5 || tmpl_eval(s, c->md5, &text) != 0 || md5(text, got) != 0)
        return -1;
    if (memcmp(want, got, 16) != 0)
        return -1;
    return expires && expires < (long long)(loop_wall_ms() / 1000) ? 0 : 1;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                                 : -1;
}

/* The secure_link_secret form: the LINK of /PREFIX/HASH/LINK, or NULL. */
static struct str check_secret_form(struct client_stream *s, const char *secret)
{
    struct request *r = &s->req;
    struct str u = r->request_uri;
    const char *p = u.p + 1, *last = u.p + u.len;
    const char *start = memchr(p, '/', (size_t)(last - p));
    if (!start)
        return STR_NULL;
    start++;
    const char *end = memchr(start, '/', (size_t)(last - start));
    if (!end || end - start != 32 || end + 1 >= last)
        return STR_NULL;
    struct str link = {end + 1, (size_t)(last - end - 1)};
    size_t slen = strlen(secret);
    char *buf = arena_alloc(&r->arena, link.len + slen);
    unsigned char got[16];
    if (!buf)
        return STR_NULL;
    memcpy(buf, link.p, link.len);
    memcpy(buf + link.len, secret, slen);
    if (md5((struct str){buf, link.len + slen}, got) != 0)
        return STR_NULL;
    for (int i = 0; i < 16; i++) {
        int hi = hexval((unsigned char)start[2 * i]), lo = hexval((unsigned char)start[2 * i + 1]);
        if (hi < 0 || lo < 0 || (unsigned char)(hi << 4 | lo) != got[i])
            return STR_NULL;
    }
    return link;
}

struct str secure_link_value(struct client_stream *s, int *found)
{
    const struct loc_conf *lc = s->req.lc;
    *found = 0;
    if (!lc)
        return STR_NULL;
    if (lc->secure_link.secret) {
        struct str link = check_secret_form(s, lc->secure_link.secret);
        *found = link.p != NULL;
        return link;
    }
    if (!lc->secure_link.variable)
        return STR_NULL;
    struct str exp;
    int rc = check_md5_form(s, &lc->secure_link, &exp);
    if (rc < 0)
        return STR_NULL;
    *found = 1;
    return rc ? STR_LIT("1") : STR_LIT("0");
}

struct str secure_link_expires(struct client_stream *s, int *found)
{
    const struct loc_conf *lc = s->req.lc;
    struct str val;
    *found = 0;
    if (!lc || !lc->secure_link.variable || tmpl_eval(s, lc->secure_link.variable, &val) != 0)
        return STR_NULL;
    const char *comma = memchr(val.p, ',', val.len);
    if (!comma)
        return STR_NULL;
    *found = 1;
    return (struct str){comma + 1, val.len - (size_t)(comma + 1 - val.p)};
}
