/*
 * htpasswd.c - htpasswd lines and password hashes (see htpasswd.h).
 *
 * $apr1$ is written here from its description (APR's apr_md5_encode, the
 * FreeBSD MD5-crypt with another magic); crypt(3) is libxcrypt's crypt_r;
 * SHA-1 and MD5 come from OpenSSL's EVP interface.
 */
#include "http/htpasswd.h"

#include <crypt.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

int htpasswd_find(struct str text, struct str user, struct str *hash)
{
    size_t i = 0, n = text.len;
    const char *t = text.p;
    while (i < n) {
        size_t eol = i;
        while (eol < n && t[eol] != '\n')
            eol++;
        /* nginx: a line starting with '#' or CR is skipped; the name must be
         * followed by ':' */
        if (eol > i && t[i] != '#' && t[i] != '\r' && eol - i > user.len &&
            memcmp(t + i, user.p, user.len) == 0 && t[i + user.len] == ':') {
            size_t s = i + user.len + 1, e = s;
            while (e < eol && t[e] != ':' && t[e] != '\r')
                e++;
            *hash = (struct str){t + s, e - s};
            return 1;
        }
        i = eol + 1;
    }
    return 0;
}

static const char b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_val(unsigned char c)
{
    const char *p = c ? strchr(b64_std, c) : NULL;
    return p ? (int)(p - b64_std) : -1;
}

long htpasswd_b64_decode(const char *in, size_t len, unsigned char *out)
{
    /* as nginx's ngx_decode_base64: the data ends at '=' or the end */
    size_t n = 0;
    while (n < len && in[n] != '=') {
        if (b64_val((unsigned char)in[n]) < 0)
            return -1;
        n++;
    }
    if (n % 4 == 1)
        return -1;
    long o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 6) | (unsigned)b64_val((unsigned char)in[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o;
}

/* Standard base64 of `len` bytes into out (NUL-terminated). */
static void b64_encode(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = b64_std[(v >> 18) & 63];
        out[o++] = b64_std[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_std[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64_std[v & 63] : '=';
    }
    out[o] = '\0';
}

/* Equal strings, in time that depends only on the lengths. */
static int same(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && CRYPTO_memcmp(a, b, alen) == 0;
}

/* ---------------------------------------------------------------- $apr1$ */

static const char itoa64[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static char *to64(char *s, unsigned long v, int n)
{
    while (n-- > 0) {
        *s++ = itoa64[v & 0x3f];
        v >>= 6;
    }
    return s;
}

void htpasswd_apr1(struct str pw, struct str setting, char out[64])
{
    static const char magic[] = "$apr1$";
    const size_t mlen = sizeof(magic) - 1;
    struct str salt = setting;
    if (salt.len >= mlen && memcmp(salt.p, magic, mlen) == 0) {
        salt.p += mlen;
        salt.len -= mlen;
    }
    size_t sl = 0;
    while (sl < salt.len && sl < 8 && salt.p[sl] != '$')
        sl++;
    salt.len = sl;

    EVP_MD_CTX *ctx = EVP_MD_CTX_new(), *alt = EVP_MD_CTX_new();
    unsigned char fin[16];
    out[0] = '\0';
    if (!ctx || !alt)
        goto done;
    /* the alternate sum: password, salt, password */
    EVP_DigestInit_ex(alt, EVP_md5(), NULL);
    EVP_DigestUpdate(alt, pw.p, pw.len);
    EVP_DigestUpdate(alt, salt.p, salt.len);
    EVP_DigestUpdate(alt, pw.p, pw.len);
    EVP_DigestFinal_ex(alt, fin, NULL);

    EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
    EVP_DigestUpdate(ctx, pw.p, pw.len);
    EVP_DigestUpdate(ctx, magic, mlen);
    EVP_DigestUpdate(ctx, salt.p, salt.len);
    for (size_t left = pw.len; left > 0; left -= left > 16 ? 16 : left)
        EVP_DigestUpdate(ctx, fin, left > 16 ? 16 : left);
    for (size_t i = pw.len; i; i >>= 1)
        EVP_DigestUpdate(ctx, (i & 1) ? "" : pw.p, 1); /* "" gives its NUL */
    EVP_DigestFinal_ex(ctx, fin, NULL);

    /* 1000 rounds to slow a guesser down */
    for (int i = 0; i < 1000; i++) {
        const unsigned char *first = (i & 1) ? (const unsigned char *)pw.p : fin;
        size_t first_len = (i & 1) ? pw.len : 16;
        EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
        EVP_DigestUpdate(ctx, first, first_len);
        if (i % 3)
            EVP_DigestUpdate(ctx, salt.p, salt.len);
        if (i % 7)
            EVP_DigestUpdate(ctx, pw.p, pw.len);
        if (i & 1)
            EVP_DigestUpdate(ctx, fin, 16);
        else
            EVP_DigestUpdate(ctx, pw.p, pw.len);
        EVP_DigestFinal_ex(ctx, fin, NULL);
    }

    char *p = out;
    memcpy(p, magic, mlen);
    p += mlen;
    memcpy(p, salt.p, salt.len);
    p += salt.len;
    *p++ = '$';
    p = to64(p, ((unsigned long)fin[0] << 16) | ((unsigned long)fin[6] << 8) | fin[12], 4);
    p = to64(p, ((unsigned long)fin[1] << 16) | ((unsigned long)fin[7] << 8) | fin[13], 4);
    p = to64(p, ((unsigned long)fin[2] << 16) | ((unsigned long)fin[8] << 8) | fin[14], 4);
    p = to64(p, ((unsigned long)fin[3] << 16) | ((unsigned long)fin[9] << 8) | fin[15], 4);
    p = to64(p, ((unsigned long)fin[4] << 16) | ((unsigned long)fin[10] << 8) | fin[5], 4);
    p = to64(p, fin[11], 2);
    *p = '\0';
    OPENSSL_cleanse(fin, sizeof(fin));
done:
    EVP_MD_CTX_free(ctx);
    EVP_MD_CTX_free(alt);
}

/* ------------------------------------------------------------ {SHA} etc. */

static int sha1(const void *a, size_t alen, const void *b, size_t blen, unsigned char out[20])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) &&
             EVP_DigestUpdate(ctx, a, alen) && (!blen || EVP_DigestUpdate(ctx, b, blen)) &&
             EVP_DigestFinal_ex(ctx, out, NULL);
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

static int check_sha(struct str pw, struct str b64)
{
    unsigned char d[20];
    char enc[32];
    if (sha1(pw.p, pw.len, NULL, 0, d) < 0)
        return -1;
    b64_encode(d, sizeof(d), enc);
    return same(enc, strlen(enc), b64.p, b64.len);
}

static int check_ssha(struct str pw, struct str b64)
{
    unsigned char raw[512], d[20];
    if (b64.len > sizeof(raw) * 4 / 3)
        return 0;
    long n = htpasswd_b64_decode(b64.p, b64.len, raw);
    if (n < 20)
        return 0;
    if (sha1(pw.p, pw.len, raw + 20, (size_t)n - 20, d) < 0)
        return -1;
    return CRYPTO_memcmp(d, raw, 20) == 0;
}

static int check_crypt(struct str pw, struct str hash)
{
    /* crypt_r wants NUL-terminated strings; one worker thread: one buffer */
    static struct crypt_data cd;
    char key[1024], setting[CRYPT_OUTPUT_SIZE];
    if (pw.len >= sizeof(key) || hash.len >= sizeof(setting))
        return 0;
    memcpy(key, pw.p, pw.len);
    key[pw.len] = '\0';
    memcpy(setting, hash.p, hash.len);
    setting[hash.len] = '\0';
    cd.initialized = 0;
    const char *out = crypt_r(key, setting, &cd);
    OPENSSL_cleanse(key, sizeof(key));
    if (!out)
        return -1;
    /* a setting crypt(3) cannot use gives libxcrypt's failure token ("*0"),
     * which matches no stored hash: a mismatch, as nginx sees it */
    int ok = same(out, strlen(out), hash.p, hash.len);
    OPENSSL_cleanse(cd.output, sizeof(cd.output));
    return ok;
}

static int has_prefix(struct str s, const char *pre, size_t n)
{
    return s.len >= n && memcmp(s.p, pre, n) == 0;
}

int htpasswd_check(struct str pw, struct str hash)
{
    if (has_prefix(hash, "$apr1$", 6)) {
        char out[64];
        htpasswd_apr1(pw, hash, out);
        int ok = out[0] && same(out, strlen(out), hash.p, hash.len);
        OPENSSL_cleanse(out, sizeof(out));
        return ok;
    }
    if (has_prefix(hash, "{PLAIN}", 7))
        return same(pw.p, pw.len, hash.p + 7, hash.len - 7);
    if (has_prefix(hash, "{SHA}", 5))
        return check_sha(pw, (struct str){hash.p + 5, hash.len - 5});
    if (has_prefix(hash, "{SSHA}", 6))
        return check_ssha(pw, (struct str){hash.p + 6, hash.len - 6});
    return check_crypt(pw, hash);
}
