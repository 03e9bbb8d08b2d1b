/*
 * tls.c - TLS contexts per generation and the TLS transport (see tls.h).
 *
 * Owns: the SSL_CTX of every server{} with certificates (struct tls_gen,
 * hung on the generation, freed by gen_free), and per connection one
 * struct tls_conn (conn.xprt_ctx) with its SSL, freed by the transport's
 * release op (conn_close_fd). Nothing here closes a socket.
 *
 * Context switching follows OpenSSL's advice: the client-hello callback runs
 * before version negotiation and session resumption, so after
 * SSL_set_SSL_CTX() the chosen server's certificates, session id context,
 * options (protocols, tickets, cipher preference) and cipher list all apply.
 * The session cache and ticket keys stay those of the context the connection
 * started with (the listen's default server), as in nginx.
 */
#include "tls/tls.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "conf/conf.h"
#include "conf/snapshot.h"
#include "core/arena.h"
#include "core/log.h"
#include "conf/runtime.h"
#include "core/metrics.h"

/* Small iovecs are gathered into one SSL_write of at most one record. */
#define TLS_COALESCE 16384
/* ssl_early_data on: the most early data a client may send (nginx: 16 KiB) */
#define TLS_EARLY_DATA_MAX 16384

/* One server's context. */
struct tls_srv {
    const struct server_conf *srv; /* borrowed from the generation */
    SSL_CTX *ctx;                  /* owned (one reference) */
};

/* One client context (HTTPS upstreams): one per distinct set of
 * context-level proxy_ssl_* settings. */
struct tls_cli {
    unsigned protocols;            /* proxy_ssl_protocols */
    int verify;                    /* proxy_ssl_verify */
    const char *ca;                /* proxy_ssl_trusted_certificate (borrowed) */
    const char *crl;               /* proxy_ssl_crl, with verify (borrowed) */
    const char *cert, *key;        /* proxy_ssl_certificate / _key (borrowed) */
    const char *pwfile;            /* proxy_ssl_password_file (borrowed) */
    const char *ciphers;           /* proxy_ssl_ciphers (borrowed) */
    int depth;                     /* proxy_ssl_verify_depth */
    const char **cmds;             /* proxy_ssl_conf_command pairs (borrowed) */
    unsigned ncmds;
    SSL_CTX *ctx;                  /* owned (one reference) */
};

/* ssl_session_ticket_key: one key file (nginx's layout: 48 bytes = name,
 * AES-128 key, HMAC key; 80 bytes = name, HMAC key, AES-256 key). */
struct tkey {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    unsigned size;                 /* 48 or 80 */
};

/* The keys of one SSL_CTX (its ex_data, freed with the context). */
struct tkeys {
    unsigned n;
    struct tkey k[];
};

struct tls_gen {
    struct tls_srv *srvs;          /* owned; sorted by srv address */
    unsigned n;
    struct tls_cli *clis;          /* owned */
    unsigned ncli, capcli;
};

enum tls_state {
    TLS_ST_DETECT = 0,  /* nothing read yet: is the first byte a TLS record? */
    TLS_ST_HANDSHAKE,   /* handshake in progress */
    TLS_ST_EARLY,       /* TLS 1.3 early data (0-RTT) accepted, handshake not finished */
    TLS_ST_OPEN,        /* handshake done: application data */
};

/* tls_ready(): the handshake may carry early data: tls_recv reads it. */
#define TLS_READY_EARLY 2

/* Per-connection transport state (conn.xprt_ctx). */
struct tls_conn {
    SSL *ssl;                         /* owned */
    struct gen_rt *rt;                /* reference held until the handshake ends */
    const struct listen_conf *listen; /* in rt's generation; NULL once rt is dropped */
    const struct tls_gen *tg;         /* likewise */
    uint64_t id;                      /* connection number for log lines */
    int wpending;                     /* length of an SSL_write to be retried (0 = none) */
    unsigned char state;              /* enum tls_state */
    unsigned char fatal;              /* fatal error seen: no SSL_shutdown */
    /* client side (upstream connections) */
    unsigned char client;             /* SSL_set_connect_state */
    unsigned char verify;             /* proxy_ssl_verify: check after the handshake */
    char *name;                       /* owned: the name the certificate must match */
    char *err;                        /* owned: why the handshake failed (for the log) */
    struct tls_session_slot *peer;    /* session cache slot, valid while rt is held */
    SSL_SESSION *pending;             /* owned: a session received before verification */
    /* server side */
    SSL_CTX *sess_ctx;                /* the first context: sessions and ticket keys (borrowed) */
    unsigned bufsize;                 /* ssl_buffer_size of the chosen server */
    unsigned char rejected;           /* ssl_reject_handshake refused it */
    unsigned char sni_named;          /* SNI named a server (nginx: hc->ssl_servername) */
    unsigned char h2;                 /* ALPN offers h2: conf_http2_enabled() for the listen
                                         and the server chosen so far (default, then SNI) */
    unsigned char early_over;         /* early data read to its end (or none to read) */
};

static int tkeys_index = -1;

/* ------------------------------------------------------------ messages */

/* Append OpenSSL's error queue as nginx prints it (" error:...:reason:data ...")
 * to out (NUL-terminated); empties the queue. */
static void ssl_errs(char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (;;) {
        const char *data = NULL;
        int flags = 0;
        unsigned long e = ERR_peek_error_data(&data, &flags);
        if (e == 0)
            break;
        if (o + 2 < cap) {
            out[o++] = ' ';
            ERR_error_string_n(e, out + o, cap - o);
            o += strlen(out + o);
            if (data && *data && (flags & ERR_TXT_STRING) && o + 2 < cap) {
                int n = snprintf(out + o, cap - o, ":%s", data);
                if (n > 0)
                    o = o + (size_t)n < cap ? o + (size_t)n : cap - 1;
            }
        }
        (void)ERR_get_error();
    }
}

struct load {
    char *err;
    size_t errlen;
    char *warn;
    size_t warnlen;
};

/* "<fmt> (SSL: <queue>) in file:line" into ld->err; returns -1. The SSL part
 * is added when `with_ssl`. */
__attribute__((format(printf, 5, 6))) static int load_fail(struct load *ld, const char *file,
                                                           unsigned line, int with_ssl,
                                                           const char *fmt, ...)
{
    char es[1024] = "";
    if (with_ssl)
        ssl_errs(es, sizeof(es));
    else
        ERR_clear_error();
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(ld->err, ld->errlen, fmt, ap);
    va_end(ap);
    size_t o = n < 0 ? 0 : (size_t)n < ld->errlen ? (size_t)n : ld->errlen - 1;
    if (with_ssl && o < ld->errlen) {
        n = snprintf(ld->err + o, ld->errlen - o, " (SSL:%s)", es);
        if (n > 0)
            o = o + (size_t)n < ld->errlen ? o + (size_t)n : ld->errlen - 1;
    }
    if (file && o < ld->errlen)
        snprintf(ld->err + o, ld->errlen - o, " in %s:%u", file, line);
    return -1;
}

__attribute__((format(printf, 4, 5))) static void load_warn(struct load *ld, const char *file,
                                                            unsigned line, const char *fmt, ...)
{
    if (!ld->warn || ld->warnlen == 0)
        return;
    size_t used = strlen(ld->warn);
    if (used + 2 >= ld->warnlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(ld->warn + used, ld->warnlen - used, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    used = used + (size_t)n < ld->warnlen ? used + (size_t)n : ld->warnlen - 1;
    if (file && used < ld->warnlen) {
        n = snprintf(ld->warn + used, ld->warnlen - used, " in %s:%u", file, line);
        if (n > 0)
            used = used + (size_t)n < ld->warnlen ? used + (size_t)n : ld->warnlen - 1;
    }
    if (used + 1 < ld->warnlen) {
        ld->warn[used] = '\n';
        ld->warn[used + 1] = '\0';
    }
}

/* ------------------------------------------------------------ callbacks */

static const struct tls_srv *srv_find(const struct tls_gen *tg, const struct server_conf *srv)
{
    unsigned lo = 0, hi = tg ? tg->n : 0;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if ((uintptr_t)tg->srvs[mid].srv == (uintptr_t)srv)
            return &tg->srvs[mid];
        if ((uintptr_t)tg->srvs[mid].srv < (uintptr_t)srv)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/*
 * The host_name of a server_name extension, lower-cased without a trailing
 * dot, into host[256]. Returns its length (0 when there is none), or -1 when
 * the extension is malformed or the name is not a valid host (nginx refuses
 * those with unrecognized_name).
 */
static int sni_host(const unsigned char *p, size_t len, char host[256])
{
    if (len < 2 || (size_t)((p[0] << 8) | p[1]) != len - 2)
        return -1;
    p += 2;
    len -= 2;
    while (len >= 3) {
        unsigned type = p[0];
        size_t nlen = (size_t)((p[1] << 8) | p[2]);
        if (nlen > len - 3)
            return -1;
        if (type == 0) { /* host_name */
            const unsigned char *n = p + 3;
            if (nlen && n[nlen - 1] == '.')
                nlen--;
            if (nlen == 0 || nlen > 255)
                return -1;
            for (size_t i = 0; i < nlen; i++) {
                unsigned char c = n[i];
                if (c <= 0x20 || c >= 0x7f || c == '/' || c == '\\' ||
                    (c == '.' && i + 1 < nlen && n[i + 1] == '.') || (c == '.' && i == 0))
                    return -1;
                host[i] = (char)sy_tolower(c);
            }
            host[nlen] = '\0';
            return (int)nlen;
        }
        p += 3 + nlen;
        len -= 3 + nlen;
    }
    return 0;
}

/* Does `srv` have `host` (lower case) as an exact server_name? */
static int has_exact_name(const struct server_conf *srv, const char *host, size_t len)
{
    for (unsigned i = 0; i < srv->nnames; i++)
        if (srv->names[i].kind == SN_EXACT && srv->names[i].name.len == len &&
            strncasecmp(srv->names[i].name.p, host, len) == 0)
            return 1;
    return 0;
}

static unsigned buf_size(const struct ssl_conf *s)
{
    if (s->buffer_size == 0 || s->buffer_size > TLS_COALESCE)
        return TLS_COALESCE;
    return (unsigned)s->buffer_size;
}

/* SNI: choose the server{} as for Host, switch to its context; refuse the
 * handshake when that server says ssl_reject_handshake. */
/* The http layer's server_name lookup (tls_set_server_finder); NULL: the default server. */
static tls_server_finder server_finder;

void tls_set_server_finder(tls_server_finder find)
{
    server_finder = find;
}

static int on_client_hello(SSL *ssl, int *al, void *arg)
{
    (void)arg;
    struct tls_conn *tc = SSL_get_app_data(ssl);
    if (!tc || !tc->listen || !tc->tg)
        return SSL_CLIENT_HELLO_SUCCESS;
    const unsigned char *ext;
    size_t extlen;
    char host[256];
    int hlen = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &extlen) == 1) {
        hlen = sni_host(ext, extlen, host);
        if (hlen < 0) {
            *al = SSL_AD_UNRECOGNIZED_NAME;
            return SSL_CLIENT_HELLO_ERROR;
        }
    }
    const struct server_conf *srv = tc->listen->default_server;
    if (hlen > 0 && server_finder) {
        srv = server_finder(tc->listen, (struct str){host, (size_t)hlen});
        tc->sni_named = srv && (srv != tc->listen->default_server ||
                                has_exact_name(srv, host, (size_t)hlen));
    }
    if (srv && srv->ssl->reject_handshake) {
        /* nginx: the chosen server refuses handshakes (unknown names) */
        tc->rejected = 1;
        *al = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_CLIENT_HELLO_ERROR;
    }
    /* nginx decides ALPN by the server SNI chose (hc->conf_ctx) */
    tc->h2 = (unsigned char)conf_http2_enabled(tc->listen, srv);
    const struct tls_srv *ts = srv ? srv_find(tc->tg, srv) : NULL;
    if (!ts || ts->ctx == SSL_get_SSL_CTX(ssl))
        return SSL_CLIENT_HELLO_SUCCESS;
    tc->bufsize = buf_size(srv->ssl);
    /* SSL_set_SSL_CTX moves certificates and the session id context; what
     * SSL_new copied from the first context is set again here. */
    if (!SSL_set_SSL_CTX(ssl, ts->ctx)) {
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    uint64_t opts = SSL_CTX_get_options(ts->ctx);
    SSL_clear_options(ssl, SSL_get_options(ssl) & ~opts);
    SSL_set_options(ssl, opts);
    SSL_set_verify(ssl, SSL_CTX_get_verify_mode(ts->ctx), SSL_CTX_get_verify_callback(ts->ctx));
    SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(ts->ctx));
    if (SSL_set_cipher_list(ssl, srv->ssl->ciphers) != 1) {
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* Acknowledge SNI, so the name is kept in the session (SSL_get_servername
 * after a TLS 1.2 resumption). The choice was made in on_client_hello. */
static int on_servername(SSL *ssl, int *al, void *arg)
{
    (void)ssl;
    (void)al;
    (void)arg;
    return SSL_TLSEXT_ERR_OK;
}

/* ALPN: h2 (preferred) and http/1.1 when HTTP/2 is on for the connection's
 * listen or server (tc->h2), else http/1.1; the server's order wins, as in
 * nginx. No common protocol is fatal (no_application_protocol), as in nginx. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)arg;
    static const unsigned char h1[] = "\x08http/1.1";
    static const unsigned char h2_h1[] = "\x02h2\x08http/1.1";
    const struct tls_conn *tc = SSL_get_app_data(ssl);
    const unsigned char *protos = h1;
    unsigned protolen = sizeof(h1) - 1;
    if (tc && tc->h2) {
        protos = h2_h1;
        protolen = sizeof(h2_h1) - 1;
    }
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, protos, protolen, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* The passphrase for an encrypted key: `u` is the one being tried (a C
 * string), or NULL without ssl_password_file: fail instead of prompting on a
 * terminal. */
static int give_password(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    const char *pw = u;
    if (!pw)
        return 0;
    size_t n = strlen(pw);
    if (n > (size_t)size)
        n = (size_t)size;
    memcpy(buf, pw, n);
    return (int)n;
}

/* ------------------------------------------------------------ contexts */

#define PEM_FILE_MAX (16u << 20)

/*
 * A memory BIO over a PEM value: a file read through the snapshot layer (a
 * worker reloading as an unprivileged user gets the master's copy of a
 * root-only key), or "data:<PEM>". *hold owns the bytes: free it after
 * BIO_free(). NULL on failure, with OpenSSL's error queue saying why.
 */
static BIO *open_pem(const char *path, char **hold)
{
    *hold = NULL;
    if (strncmp(path, "data:", 5) == 0)
        return BIO_new_mem_buf(path + 5, -1);
    size_t len;
    const char *what;
    if (snap_read_file(path, PEM_FILE_MAX, hold, &len, &what) != 0)
        return BIO_new_file(path, "r"); /* fails as well, in OpenSSL's words */
    BIO *b = BIO_new_mem_buf(*hold, (int)len);
    if (!b) {
        free(*hold);
        *hold = NULL;
    }
    return b;
}

static void close_pem(BIO *b, char *hold)
{
    BIO_free(b);
    free(hold);
}

#define PEM_CERTS 1 /* certificates into the store */
#define PEM_CRLS 2  /* CRLs into the store */
#define PEM_NAMES 4 /* certificates' subjects into the client CA list */

/* The certificates and CRLs of the PEM bundle `path` into ctx (`what`:
 * PEM_*): SSL_CTX_load_verify_locations(ctx, path, NULL) is
 * PEM_CERTS | PEM_CRLS. Fails when nothing was found. 0 or -1. */
static int load_pem_objs(SSL_CTX *ctx, const char *path, unsigned what)
{
    char *hold;
    BIO *b = open_pem(path, &hold);
    if (!b)
        return -1;
    STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(b, NULL, NULL, NULL);
    close_pem(b, hold);
    if (!infos)
        return -1;
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int count = 0, ok = 1;
    for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *xi = sk_X509_INFO_value(infos, i);
        if (xi->x509 && (what & PEM_CERTS) && (ok = X509_STORE_add_cert(store, xi->x509)) == 1)
            count++;
        if (ok == 1 && xi->x509 && (what & PEM_NAMES) &&
            (ok = SSL_CTX_add_client_CA(ctx, xi->x509)) == 1)
            count++;
        if (ok == 1 && xi->crl && (what & PEM_CRLS) &&
            (ok = X509_STORE_add_crl(store, xi->crl)) == 1)
            count++;
        if (ok != 1)
            break;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    if (ok == 1 && count == 0)
        ERR_raise(ERR_LIB_X509, X509_R_NO_CERTIFICATE_OR_CRL_FOUND);
    return ok == 1 && count > 0 ? 0 : -1;
}

static int load_ca_file(SSL_CTX *ctx, const char *path)
{
    return load_pem_objs(ctx, path, PEM_CERTS | PEM_CRLS);
}

/* ssl_crl / proxy_ssl_crl: the CRLs, and the store checks every certificate
 * of a chain against them (nginx's ngx_ssl_crl). */
static int load_crl(struct load *ld, SSL_CTX *ctx, const char *path, const char *file,
                    unsigned line)
{
    if (load_pem_objs(ctx, path, PEM_CRLS) != 0)
        return load_fail(ld, file, line, 1, "X509_LOOKUP_load_file(\"%s\") failed", path);
    X509_STORE_set_flags(SSL_CTX_get_cert_store(ctx),
                         X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    return 0;
}

static void warn_validity(struct load *ld, X509 *x, const char *path, const struct conf_where *w)
{
    const ASN1_TIME *t = NULL;
    const char *what = NULL;
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
        t = X509_get0_notAfter(x);
        what = "expired on";
    } else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
        t = X509_get0_notBefore(x);
        what = "is not valid before";
    }
    if (!t)
        return;
    char when[64] = "?";
    BIO *m = BIO_new(BIO_s_mem());
    if (m && ASN1_TIME_print(m, t) == 1) {
        int n = BIO_read(m, when, sizeof(when) - 1);
        when[n > 0 ? n : 0] = '\0';
    }
    BIO_free(m);
    load_warn(ld, w->file, w->line, "certificate \"%s\" %s %s", path, what, when);
}

/* ssl_password_file: the passphrases, one a line (nginx: CR LF or LF ends a
 * line, empty lines are skipped; an empty file is one empty passphrase). */
struct pwlist {
    char **v;
    unsigned n;
};

static void pw_free(struct pwlist *pw)
{
    for (unsigned i = 0; i < pw->n; i++) {
        OPENSSL_cleanse(pw->v[i], strlen(pw->v[i]));
        free(pw->v[i]);
    }
    free(pw->v);
    pw->v = NULL;
    pw->n = 0;
}

static int pw_read(struct load *ld, struct pwlist *pw, const char *path, const struct conf_where *w)
{
    memset(pw, 0, sizeof(*pw));
    char *buf;
    size_t len;
    const char *what;
    if (snap_read_file(path, 1u << 20, &buf, &len, &what) != 0) {
        int e = errno;
        load_fail(ld, w->file, w->line, 0, "%s \"%s\" failed (%d: %s)", what, path, e,
                  strerror(e));
        return -1;
    }
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && buf[j] != '\n')
            j++;
        if (j == len && j == i)
            break;
        size_t l = j - i;
        if (l && buf[i + l - 1] == '\r')
            l--;
        if (l) {
            char **nv = realloc(pw->v, (pw->n + 1) * sizeof(*nv));
            char *one = nv ? strndup(buf + i, l) : NULL;
            if (nv)
                pw->v = nv;
            if (!one) {
                OPENSSL_cleanse(buf, len);
                free(buf);
                pw_free(pw);
                snprintf(ld->err, ld->errlen, "out of memory");
                return -1;
            }
            pw->v[pw->n++] = one;
        }
        i = j + 1;
    }
    OPENSSL_cleanse(buf, len);
    free(buf);
    if (pw->n == 0) {
        pw->v = calloc(1, sizeof(*pw->v));
        if (!pw->v || !(pw->v[0] = strdup(""))) {
            free(pw->v);
            pw->v = NULL;
            snprintf(ld->err, ld->errlen, "out of memory");
            return -1;
        }
        pw->n = 1;
    }
    return 0;
}

/* Certificate `cert` (with its chain) and key `key` into ctx. Also hashes the
 * certificate into `md` (session id context). */
static int load_pair(struct load *ld, SSL_CTX *ctx, const char *cert, const struct conf_where *cw,
                     const char *key, const struct conf_where *kw, EVP_MD_CTX *md,
                     const struct pwlist *pw)
{
    if (cert[0] == '$' || key[0] == '$')
        return load_fail(ld, cert[0] == '$' ? cw->file : kw->file,
                         cert[0] == '$' ? cw->line : kw->line, 0,
                         "variables in \"%s\" are not supported",
                         cert[0] == '$' ? "ssl_certificate" : "ssl_certificate_key");
    ERR_clear_error();
    char *hold;
    BIO *b = open_pem(cert, &hold);
    if (!b)
        return load_fail(ld, cw->file, cw->line, 1,
                         "cannot load certificate \"%s\": BIO_new_file() failed", cert);
    X509 *x = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL);
    if (!x) {
        close_pem(b, hold);
        return load_fail(ld, cw->file, cw->line, 1,
                         "cannot load certificate \"%s\": PEM_read_bio_X509_AUX() failed", cert);
    }
    if (SSL_CTX_use_certificate(ctx, x) != 1) {
        X509_free(x);
        close_pem(b, hold);
        return load_fail(ld, cw->file, cw->line, 1, "SSL_CTX_use_certificate(\"%s\") failed",
                         cert);
    }
    warn_validity(ld, x, cert, cw);
    unsigned char *der = NULL;
    int dlen = i2d_X509(x, &der);
    if (dlen > 0 && md)
        EVP_DigestUpdate(md, der, (size_t)dlen);
    OPENSSL_free(der);
    /* The rest of the file is the chain (intermediates), for this certificate. */
    for (;;) {
        X509 *ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!ca) {
            unsigned long e = ERR_peek_last_error();
            if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                ERR_clear_error();
                break;
            }
            X509_free(x);
            close_pem(b, hold);
            return load_fail(ld, cw->file, cw->line, 1,
                             "cannot load certificate \"%s\": PEM_read_bio_X509() failed", cert);
        }
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
            X509_free(ca);
            X509_free(x);
            close_pem(b, hold);
            return load_fail(ld, cw->file, cw->line, 1, "SSL_CTX_add0_chain_cert(\"%s\") failed",
                             cert);
        }
    }
    close_pem(b, hold);

    b = open_pem(key, &hold);
    if (!b) {
        X509_free(x);
        return load_fail(ld, kw->file, kw->line, 1,
                         "cannot load certificate key \"%s\": BIO_new_file() failed", key);
    }
    /* Each passphrase of ssl_password_file in turn (nginx), else none. */
    EVP_PKEY *pk = NULL;
    for (unsigned i = 0; i < (pw && pw->n ? pw->n : 1) && !pk; i++) {
        if (i > 0) {
            ERR_clear_error();
            (void)BIO_reset(b);
        }
        pk = PEM_read_bio_PrivateKey(b, NULL, give_password, pw && pw->n ? pw->v[i] : NULL);
    }
    close_pem(b, hold);
    if (!pk) {
        X509_free(x);
        return load_fail(ld, kw->file, kw->line, 1,
                         "cannot load certificate key \"%s\": PEM_read_bio_PrivateKey() failed",
                         key);
    }
    /* OpenSSL checks the key only against a certificate of the same type; a
     * key of another type would silently stay unused. */
    int ok = X509_check_private_key(x, pk) == 1 && SSL_CTX_use_PrivateKey(ctx, pk) == 1;
    X509_free(x);
    EVP_PKEY_free(pk);
    if (!ok)
        return load_fail(ld, kw->file, kw->line, 1, "SSL_CTX_use_PrivateKey(\"%s\") failed", key);
    return 0;
}

static int set_dhparam(struct load *ld, SSL_CTX *ctx, const struct server_conf *sc)
{
    const char *path = sc->ssl->dhparam;
    char *hold;
    BIO *b = open_pem(path, &hold);
    if (!b)
        return load_fail(ld, sc->file, sc->line, 1, "BIO_new_file(\"%s\") failed", path);
    EVP_PKEY *dh = PEM_read_bio_Parameters(b, NULL);
    close_pem(b, hold);
    if (!dh)
        return load_fail(ld, sc->file, sc->line, 1, "PEM_read_bio_Parameters(\"%s\") failed",
                         path);
    if (SSL_CTX_set0_tmp_dh_pkey(ctx, dh) != 1) {
        EVP_PKEY_free(dh);
        return load_fail(ld, sc->file, sc->line, 1, "SSL_CTX_set0_tmp_dh_pkey(\"%s\") failed",
                         path);
    }
    return 0;
}

/* Session cache as nginx sets it up (ngx_ssl_session_cache), with OpenSSL's
 * own cache standing in for the shared one (per worker process). */
static void set_session_cache(SSL_CTX *ctx, const struct ssl_conf *s)
{
    int stored = s->session_cache_builtin || s->session_cache_shared_name;
    if (s->early_data == 1 && !stored) {
        /* With early data on, OpenSSL's replay protection makes TLS 1.3
         * tickets stateful: they resume only from a cache. Without one,
         * nothing would resume (nginx's behaviour); a per-process cache of
         * OpenSSL's default size makes 0-RTT and resumption work. */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    } else if (s->session_cache_off == 1) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    } else if (!stored) {
        /* "none" (the default): resumption is announced, nothing is stored;
         * session tickets still resume. */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_AUTO_CLEAR |
                                                SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_cache_size(ctx, 1);
    } else {
        long size = 0;
        if (s->session_cache_builtin)
            size += s->session_cache_builtin_size >= 0 ? (long)s->session_cache_builtin_size
                                                       : SSL_SESSION_CACHE_MAX_SIZE_DEFAULT;
        if (s->session_cache_shared_name) /* nginx: about 4000 sessions per megabyte */
            size += (long)(s->session_cache_shared_size / 256);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, size);
    }
    SSL_CTX_set_timeout(ctx, (long)(s->session_timeout / 1000));
}

static int verify_keep_going(int ok, X509_STORE_CTX *x);

static void tkeys_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    struct tkeys *k = ptr;
    if (k) {
        OPENSSL_cleanse(k, sizeof(*k) + k->n * sizeof(k->k[0]));
        free(k);
    }
}

/*
 * Session tickets with the ssl_session_ticket_key keys (nginx's
 * ngx_ssl_ticket_key_callback): the first key encrypts; any key decrypts; a
 * ticket of another key, or any TLS 1.3 ticket, is renewed. OpenSSL calls this
 * on the connection's first context (the listen's default server).
 */
static int on_ticket_key(SSL *ssl, unsigned char name[16], unsigned char *iv,
                         EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
    struct tls_conn *tc = SSL_get_app_data(ssl);
    const struct tkeys *keys =
        tc && tc->sess_ctx ? SSL_CTX_get_ex_data(tc->sess_ctx, tkeys_index) : NULL;
    if (!keys || keys->n == 0)
        return enc ? -1 : 0;
    unsigned i = 0;
    if (enc) {
        if (RAND_bytes(iv, 16) != 1)
            return -1;
        memcpy(name, keys->k[0].name, 16);
    } else {
        while (i < keys->n && memcmp(name, keys->k[i].name, 16) != 0)
            i++;
        if (i == keys->n)
            return 0; /* unknown key: a full handshake */
    }
    const struct tkey *k = &keys->k[i];
    const EVP_CIPHER *cipher = k->size == 48 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
    size_t hlen = k->size == 48 ? 16 : 32;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, hlen),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_CTX_set_params(hctx, params) != 1)
        return -1;
    if (enc)
        return EVP_EncryptInit_ex(ectx, cipher, NULL, k->aes, iv) == 1 ? 1 : -1;
    if (EVP_DecryptInit_ex(ectx, cipher, NULL, k->aes, iv) != 1)
        return -1;
    return SSL_version(ssl) == TLS1_3_VERSION || i != 0 ? 2 : 1;
}

/* ssl_session_ticket_key files into ctx (48 or 80 bytes each). */
static int set_ticket_keys(struct load *ld, SSL_CTX *ctx, const struct ssl_conf *s)
{
    struct tkeys *keys = calloc(1, sizeof(*keys) + s->nticket_keys * sizeof(keys->k[0]));
    if (!keys) {
        snprintf(ld->err, ld->errlen, "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < s->nticket_keys; i++) {
        const char *path = s->ticket_keys[i];
        const struct conf_where *w = &s->ticket_key_at[i];
        char *buf;
        size_t len;
        const char *what;
        if (snap_read_file(path, 4096, &buf, &len, &what) != 0) {
            int e = errno;
            tkeys_free(NULL, keys, NULL, 0, 0, NULL);
            return load_fail(ld, w->file, w->line, 0, "%s \"%s\" failed (%d: %s)", what, path,
                             e, strerror(e));
        }
        struct tkey *k = &keys->k[keys->n];
        if (len == 48) {
            memcpy(k->name, buf, 16);
            memcpy(k->aes, buf + 16, 16);
            memcpy(k->hmac, buf + 32, 16);
        } else if (len == 80) {
            memcpy(k->name, buf, 16);
            memcpy(k->hmac, buf + 16, 32);
            memcpy(k->aes, buf + 48, 32);
        }
        OPENSSL_cleanse(buf, len);
        free(buf);
        if (len != 48 && len != 80) {
            tkeys_free(NULL, keys, NULL, 0, 0, NULL);
            return load_fail(ld, w->file, w->line, 0, "\"%s\" must be 48 or 80 bytes", path);
        }
        k->size = (unsigned)len;
        keys->n++;
    }
    if (tkeys_index < 0)
        tkeys_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tkeys_free);
    if (tkeys_index < 0 || SSL_CTX_set_ex_data(ctx, tkeys_index, keys) != 1) {
        tkeys_free(NULL, keys, NULL, 0, 0, NULL);
        return load_fail(ld, NULL, 0, 1, "SSL_CTX_set_ex_data() failed");
    }
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key);
    return 0;
}

/* ssl_conf_command / proxy_ssl_conf_command: OpenSSL's SSL_CONF_cmd(), in
 * order, after everything else (nginx). `cmds` holds n/2 name, value pairs;
 * `at` says where each was written (NULL: `dflt`). */
static int conf_commands(struct load *ld, SSL_CTX *ctx, const char *const *cmds, unsigned n,
                         const struct conf_where *at, const struct conf_where *dflt, int server)
{
    SSL_CONF_CTX *cc = SSL_CONF_CTX_new();
    if (!cc)
        return load_fail(ld, NULL, 0, 1, "SSL_CONF_CTX_new() failed");
    SSL_CONF_CTX_set_flags(cc, SSL_CONF_FLAG_FILE | SSL_CONF_FLAG_CERTIFICATE |
                                   (server ? SSL_CONF_FLAG_SERVER : SSL_CONF_FLAG_CLIENT));
    SSL_CONF_CTX_set_ssl_ctx(cc, ctx);
    for (unsigned i = 0; i + 1 < n; i += 2) {
        const struct conf_where *w = at ? &at[i / 2] : dflt;
        if (SSL_CONF_cmd(cc, cmds[i], cmds[i + 1]) <= 0) {
            SSL_CONF_CTX_free(cc);
            return load_fail(ld, w->file, w->line, 1, "SSL_CONF_cmd(\"%s\", \"%s\") failed",
                             cmds[i], cmds[i + 1]);
        }
    }
    int ok = SSL_CONF_CTX_finish(cc);
    SSL_CONF_CTX_free(cc);
    return ok == 1 ? 0 : load_fail(ld, NULL, 0, 1, "SSL_CONF_finish() failed");
}

/* ssl_verify_client, ssl_verify_depth, ssl_client_certificate,
 * ssl_trusted_certificate, ssl_crl (nginx's ngx_ssl_client_certificate,
 * ngx_ssl_trusted_certificate, ngx_ssl_crl). The handshake never fails on
 * the certificate: the request is checked (tls_request_check). */
static int set_client_verify(struct load *ld, SSL_CTX *ctx, const struct server_conf *sc)
{
    const struct ssl_conf *s = sc->ssl;
    SSL_CTX_set_verify(ctx, s->verify_client ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                       verify_keep_going);
    SSL_CTX_set_verify_depth(ctx, s->verify_depth);
    const char *cc = s->client_certificate;
    if (s->verify_client && cc) {
        if (load_pem_objs(ctx, cc, PEM_CERTS | PEM_CRLS) != 0)
            return load_fail(ld, sc->file, sc->line, 1,
                             "SSL_CTX_load_verify_locations(\"%s\") failed", cc);
        if (load_pem_objs(ctx, cc, PEM_NAMES) != 0)
            return load_fail(ld, sc->file, sc->line, 1, "SSL_load_client_CA_file(\"%s\") failed",
                             cc);
    }
    if (s->trusted_certificate && load_ca_file(ctx, s->trusted_certificate) != 0)
        return load_fail(ld, sc->file, sc->line, 1,
                         "SSL_CTX_load_verify_locations(\"%s\") failed", s->trusted_certificate);
    if (s->crl && load_crl(ld, ctx, s->crl, sc->file, sc->line) != 0)
        return -1;
    return 0;
}

static SSL_CTX *build_ctx(struct load *ld, const struct server_conf *sc)
{
    const struct ssl_conf *s = sc->ssl;
    struct pwlist pw = {NULL, 0};
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!ctx || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        load_fail(ld, sc->file, sc->line, 1, "SSL_CTX_new() failed");
        goto fail;
    }
    /* Protocols as nginx: every version allowed, the unlisted ones masked. */
    SSL_CTX_set_min_proto_version(ctx, 0);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    uint64_t opts = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF;
    if (!(s->protocols & SSL_PROTO_SSLv3))
        opts |= SSL_OP_NO_SSLv3;
    if (!(s->protocols & SSL_PROTO_TLSv1))
        opts |= SSL_OP_NO_TLSv1;
    if (!(s->protocols & SSL_PROTO_TLSv1_1))
        opts |= SSL_OP_NO_TLSv1_1;
    if (!(s->protocols & SSL_PROTO_TLSv1_2))
        opts |= SSL_OP_NO_TLSv1_2;
    if (!(s->protocols & SSL_PROTO_TLSv1_3))
        opts |= SSL_OP_NO_TLSv1_3;
    if (s->prefer_server_ciphers == 1)
        opts |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    if (!s->session_tickets)
        opts |= SSL_OP_NO_TICKET;
    SSL_CTX_set_options(ctx, opts);
    /* ssl_early_data: TLS 1.3 0-RTT (OpenSSL's replay protection needs the
     * session cache; across workers and hosts a replay is possible, which is
     * why $ssl_early_data exists: see docs/tls.md) */
    SSL_CTX_set_max_early_data(ctx, s->early_data == 1 ? TLS_EARLY_DATA_MAX : 0);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read what the socket has in one read(2), not a record header and then
     * its body in two: half the reads when records are small (HTTP/2
     * frames, WebSocket messages). The buffer is still released once empty. */
    SSL_CTX_set_read_ahead(ctx, 1);
    if (SSL_CTX_set_cipher_list(ctx, s->ciphers) != 1) {
        load_fail(ld, sc->file, sc->line, 1, "SSL_CTX_set_cipher_list(\"%s\") failed",
                  s->ciphers);
        goto fail;
    }
    if (s->password_file && s->ncertificates &&
        pw_read(ld, &pw, s->password_file, &s->password_file_at) != 0)
        goto fail;
    for (unsigned i = 0; i < s->ncertificates && i < s->ncertificate_keys; i++) {
        static const struct conf_where nowhere = {NULL, 0};
        const struct conf_where *cw = s->certificate_at ? &s->certificate_at[i] : &nowhere;
        const struct conf_where *kw = s->certificate_key_at ? &s->certificate_key_at[i] : &nowhere;
        if (load_pair(ld, ctx, s->certificates[i], cw, s->certificate_keys[i], kw, md, &pw) != 0)
            goto fail;
    }
    pw_free(&pw);
    /* A session made under other client-certificate rules does not resume here. */
    EVP_DigestUpdate(md, &s->verify_client, sizeof(s->verify_client));
    EVP_DigestUpdate(md, &s->verify_depth, sizeof(s->verify_depth));
    if (s->client_certificate)
        EVP_DigestUpdate(md, s->client_certificate, strlen(s->client_certificate) + 1);
    if (s->trusted_certificate)
        EVP_DigestUpdate(md, s->trusted_certificate, strlen(s->trusted_certificate) + 1);
    /* Sessions resume only on a server with the same certificates. */
    unsigned char sid[EVP_MAX_MD_SIZE];
    unsigned sidlen = 0;
    if (EVP_DigestFinal_ex(md, sid, &sidlen) != 1 ||
        SSL_CTX_set_session_id_context(ctx, sid,
                                       sidlen > SSL_MAX_SID_CTX_LENGTH ? SSL_MAX_SID_CTX_LENGTH
                                                                       : sidlen) != 1) {
        load_fail(ld, sc->file, sc->line, 1, "SSL_CTX_set_session_id_context() failed");
        goto fail;
    }
    EVP_MD_CTX_free(md);
    md = NULL;
    set_session_cache(ctx, s);
    if (s->dhparam && set_dhparam(ld, ctx, sc) != 0)
        goto fail;
    if (s->ecdh_curve && strcmp(s->ecdh_curve, "auto") != 0 &&
        SSL_CTX_set1_groups_list(ctx, s->ecdh_curve) != 1) {
        load_fail(ld, sc->file, sc->line, 1, "SSL_CTX_set1_curves_list(\"%s\") failed",
                  s->ecdh_curve);
        goto fail;
    }
    if (set_client_verify(ld, ctx, sc) != 0)
        goto fail;
    if (s->stapling == 1)
        load_warn(ld, sc->file, sc->line, "\"ssl_stapling\" ignored, not supported");
    if (s->nticket_keys && set_ticket_keys(ld, ctx, s) != 0)
        goto fail;
    SSL_CTX_set_client_hello_cb(ctx, on_client_hello, NULL);
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    if (s->nconf_commands && conf_commands(ld, ctx, s->conf_commands, s->nconf_commands,
                                           s->conf_command_at, NULL, 1) != 0)
        goto fail;
    return ctx;
fail:
    pw_free(&pw);
    EVP_MD_CTX_free(md);
    SSL_CTX_free(ctx);
    return NULL;
}

static int srv_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct tls_srv *)a)->srv;
    uintptr_t y = (uintptr_t)((const struct tls_srv *)b)->srv;
    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------ client contexts */

static int on_new_session(SSL *ssl, SSL_SESSION *sess);

/* nginx's ngx_ssl_verify_callback: never fail inside the handshake; the
 * result is checked once it is done (client_established). */
static int verify_keep_going(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    return 1;
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int cli_same(const struct tls_cli *t, const struct loc_conf *lc)
{
    unsigned protos = lc->proxy_ssl_protocols;
    int verify = lc->proxy_ssl_verify == 1;
    const char *ca = verify ? lc->proxy_ssl_trusted_certificate : NULL;
    const char *crl = verify ? lc->proxy_ssl_crl : NULL;
    const char *cert = lc->proxy_ssl_certificate;
    return t->protocols == protos && t->verify == verify && same_str(t->ca, ca) &&
           same_str(t->crl, crl) && same_str(t->cert, cert) &&
           same_str(t->key, cert ? lc->proxy_ssl_certificate_key : NULL) &&
           same_str(t->pwfile, cert ? lc->proxy_ssl_password_file : NULL) &&
           same_str(t->ciphers, lc->proxy_ssl_ciphers) && t->depth == lc->proxy_ssl_verify_depth &&
           t->cmds == lc->proxy_ssl_conf_commands && t->ncmds == lc->nproxy_ssl_conf_commands;
}

/* proxy_ssl_certificate / _key / proxy_ssl_password_file (nginx's
 * ngx_http_proxy_set_ssl): the certificate offered to upstreams that ask. */
static int cli_certificate(struct load *ld, SSL_CTX *ctx, const struct loc_conf *lc)
{
    const struct proxy_pass *pp = lc->proxy_pass;
    const char *cert = lc->proxy_ssl_certificate;
    if (!lc->proxy_ssl_certificate_key)
        return load_fail(ld, pp->file, pp->line, 0,
                         "no \"proxy_ssl_certificate_key\" is defined for certificate \"%s\"",
                         cert);
    if (cert[0] == '$' || lc->proxy_ssl_certificate_key[0] == '$')
        return load_fail(ld, pp->file, pp->line, 0,
                         "variables in \"proxy_ssl_certificate\" and "
                         "\"proxy_ssl_certificate_key\" are not supported");
    struct conf_where w = {pp->file, pp->line};
    struct pwlist pw = {NULL, 0};
    if (lc->proxy_ssl_password_file &&
        pw_read(ld, &pw, lc->proxy_ssl_password_file, &w) != 0)
        return -1;
    int rc = load_pair(ld, ctx, cert, &w, lc->proxy_ssl_certificate_key, &w, NULL, &pw);
    pw_free(&pw);
    return rc;
}

static const struct tls_cli *cli_find(const struct tls_gen *tg, const struct loc_conf *lc)
{
    for (unsigned i = 0; tg && i < tg->ncli; i++)
        if (cli_same(&tg->clis[i], lc))
            return &tg->clis[i];
    return NULL;
}

/* A client context for lc's proxy_ssl_* settings (nginx's ngx_http_proxy_set_ssl). */
static SSL_CTX *build_cli_ctx(struct load *ld, const struct loc_conf *lc)
{
    const struct proxy_pass *pp = lc->proxy_pass;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        load_fail(ld, pp->file, pp->line, 1, "SSL_CTX_new() failed");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, 0);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    unsigned pr = lc->proxy_ssl_protocols;
    uint64_t opts = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF;
    if (!(pr & SSL_PROTO_SSLv3))
        opts |= SSL_OP_NO_SSLv3;
    if (!(pr & SSL_PROTO_TLSv1))
        opts |= SSL_OP_NO_TLSv1;
    if (!(pr & SSL_PROTO_TLSv1_1))
        opts |= SSL_OP_NO_TLSv1_1;
    if (!(pr & SSL_PROTO_TLSv1_2))
        opts |= SSL_OP_NO_TLSv1_2;
    if (!(pr & SSL_PROTO_TLSv1_3))
        opts |= SSL_OP_NO_TLSv1_3;
    SSL_CTX_set_options(ctx, opts);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read what the socket has in one read(2), not a record header and then
     * its body in two: half the reads when records are small (HTTP/2
     * frames, WebSocket messages). The buffer is still released once empty. */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* Sessions are cached per upstream peer (a tls_session_slot), not by OpenSSL. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    if (lc->proxy_ssl_verify == 1) {
        if (!lc->proxy_ssl_trusted_certificate) {
            load_fail(ld, pp->file, pp->line, 0,
                      "no proxy_ssl_trusted_certificate for proxy_ssl_verify");
            goto fail;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_keep_going);
        SSL_CTX_set_verify_depth(ctx, lc->proxy_ssl_verify_depth);
        if (load_ca_file(ctx, lc->proxy_ssl_trusted_certificate) != 0) {
            load_fail(ld, pp->file, pp->line, 1, "SSL_CTX_load_verify_locations(\"%s\") failed",
                      lc->proxy_ssl_trusted_certificate);
            goto fail;
        }
        if (lc->proxy_ssl_crl && load_crl(ld, ctx, lc->proxy_ssl_crl, pp->file, pp->line) != 0)
            goto fail;
    }
    if (lc->proxy_ssl_certificate && cli_certificate(ld, ctx, lc) != 0)
        goto fail;
    if (SSL_CTX_set_cipher_list(ctx, lc->proxy_ssl_ciphers) != 1) {
        load_fail(ld, pp->file, pp->line, 1, "SSL_CTX_set_cipher_list(\"%s\") failed",
                  lc->proxy_ssl_ciphers);
        goto fail;
    }
    struct conf_where here = {pp->file, pp->line};
    if (lc->nproxy_ssl_conf_commands &&
        conf_commands(ld, ctx, lc->proxy_ssl_conf_commands, lc->nproxy_ssl_conf_commands, NULL,
                      &here, 0) != 0)
        goto fail;
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* Add the client context lc needs (a location proxying to https, or to a
 * variable URL) unless one with the same settings exists. */
static int cli_add(struct load *ld, struct tls_gen *tg, const struct loc_conf *lc)
{
    if (!lc || !lc->proxy_pass || !(lc->proxy_pass->https || lc->proxy_pass->dynamic) ||
        cli_find(tg, lc))
        return 0;
    if (tg->ncli == tg->capcli) {
        unsigned cap = tg->capcli ? tg->capcli * 2 : 4;
        struct tls_cli *n = realloc(tg->clis, cap * sizeof(*n));
        if (!n) {
            snprintf(ld->err, ld->errlen, "out of memory");
            return -1;
        }
        tg->clis = n;
        tg->capcli = cap;
    }
    SSL_CTX *ctx = build_cli_ctx(ld, lc);
    if (!ctx)
        return -1;
    struct tls_cli *t = &tg->clis[tg->ncli++];
    t->protocols = lc->proxy_ssl_protocols;
    t->verify = lc->proxy_ssl_verify == 1;
    t->ca = t->verify ? lc->proxy_ssl_trusted_certificate : NULL;
    t->crl = t->verify ? lc->proxy_ssl_crl : NULL;
    t->cert = lc->proxy_ssl_certificate;
    t->key = t->cert ? lc->proxy_ssl_certificate_key : NULL;
    t->pwfile = t->cert ? lc->proxy_ssl_password_file : NULL;
    t->ciphers = lc->proxy_ssl_ciphers;
    t->depth = lc->proxy_ssl_verify_depth;
    t->cmds = lc->proxy_ssl_conf_commands;
    t->ncmds = lc->nproxy_ssl_conf_commands;
    t->ctx = ctx;
    return 0;
}

static int cli_walk_ops(struct load *ld, struct tls_gen *tg, const struct rw_op *op);

static int cli_walk_locs(struct load *ld, struct tls_gen *tg, const struct location *l, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (cli_add(ld, tg, l[i].lc) != 0 || (l[i].lc && cli_walk_ops(ld, tg, l[i].lc->rewrite)) ||
            cli_walk_locs(ld, tg, l[i].children, l[i].nchildren) != 0)
            return -1;
    }
    return 0;
}

static int cli_walk_ops(struct load *ld, struct tls_gen *tg, const struct rw_op *op)
{
    for (; op; op = op->next)
        if (op->type == RW_IF &&
            (cli_add(ld, tg, op->u.cond.lc) != 0 || cli_walk_ops(ld, tg, op->u.cond.body) != 0))
            return -1;
    return 0;
}

static int cli_load(struct load *ld, struct tls_gen *tg, const struct http_conf *hc)
{
    for (unsigned i = 0; i < hc->nservers; i++) {
        const struct server_conf *sc = hc->servers[i];
        if ((sc->lc && cli_walk_ops(ld, tg, sc->lc->rewrite) != 0) ||
            cli_walk_locs(ld, tg, sc->locations, sc->nlocations) != 0 ||
            cli_walk_locs(ld, tg, sc->named, sc->nnamed) != 0)
            return -1;
    }
    return 0;
}

int tls_gen_load(struct generation *g, char *err, size_t errlen, char *warn, size_t warnlen)
{
    struct load ld = {err, errlen, warn, warnlen};
    g->tls = NULL;
    if (!g->http)
        return 0;
    const struct http_conf *hc = g->http;
    unsigned n = 0;
    for (unsigned i = 0; i < hc->nservers; i++)
        if (hc->servers[i]->ssl && (hc->servers[i]->ssl->ncertificates ||
                                     hc->servers[i]->ssl->reject_handshake == 1))
            n++;
    struct tls_gen *tg = calloc(1, sizeof(*tg));
    if (!tg || !(tg->srvs = calloc(n ? n : 1, sizeof(*tg->srvs)))) {
        free(tg);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    g->tls = tg; /* gen_free frees what was built so far */
    if (cli_load(&ld, tg, hc) != 0)
        return -1;
    if (n == 0 && tg->ncli == 0) { /* nothing uses TLS */
        tls_gen_free(tg);
        g->tls = NULL;
        return 0;
    }
    for (unsigned i = 0; i < hc->nservers; i++) {
        const struct server_conf *sc = hc->servers[i];
        if (!sc->ssl || (!sc->ssl->ncertificates && sc->ssl->reject_handshake != 1))
            continue;
        SSL_CTX *ctx = build_ctx(&ld, sc);
        if (!ctx)
            return -1;
        tg->srvs[tg->n].srv = sc;
        tg->srvs[tg->n].ctx = ctx;
        tg->n++;
    }
    qsort(tg->srvs, tg->n, sizeof(*tg->srvs), srv_cmp);
    return 0;
}

void tls_gen_free(struct tls_gen *t)
{
    if (!t)
        return;
    for (unsigned i = 0; i < t->n; i++)
        SSL_CTX_free(t->srvs[i].ctx);
    for (unsigned i = 0; i < t->ncli; i++)
        SSL_CTX_free(t->clis[i].ctx);
    free(t->clis);
    free(t->srvs);
    free(t);
}

/* ------------------------------------------------------------ transport */

/* SSL_ERROR_WANT_READ/WRITE of a read (`writing` 0) or a write: clear the
 * readiness that proved false and note what the blocked side waits for. */
static ssize_t want(struct conn *c, int e, int writing)
{
    if (e == SSL_ERROR_WANT_READ) {
        c->flags &= ~CONN_F_READY_R;
        if (writing)
            c->flags = (c->flags & ~CONN_F_READY_W) | CONN_F_WANT_R_FOR_W;
        else
            c->flags &= ~CONN_F_WANT_W_FOR_R;
    } else {
        c->flags &= ~CONN_F_READY_W;
        if (!writing)
            c->flags = (c->flags & ~CONN_F_READY_R) | CONN_F_WANT_W_FOR_R;
        else
            c->flags &= ~CONN_F_WANT_R_FOR_W;
    }
    return SY_AGAIN;
}

static void drop_rt(struct tls_conn *tc)
{
    tc->listen = NULL;
    tc->tg = NULL;
    struct gen_rt *rt = tc->rt;
    tc->rt = NULL;
    rt_release(rt); /* may free the generation; SSL keeps its contexts alive */
}

/* Not TLS after all: become a plain connection, flagged for the HTTP layer. */
static void to_plain(struct conn *c, struct tls_conn *tc)
{
    SSL_free(tc->ssl);
    drop_rt(tc);
    free(tc);
    c->xprt = &xprt_plain;
    c->xprt_ctx = NULL;
    c->flags = (c->flags & ~CONN_F_HANDSHAKE) | CONN_F_PLAIN_ON_TLS;
}

static void log_hs_error(struct conn *c, struct tls_conn *tc, const char *what, int err)
{
    if (tc->client) { /* the proxy logs it, with the request's context */
        char m[1200];
        if (err)
            snprintf(m, sizeof(m), "%s (%d: %s)", what, err, strerror(err));
        else
            snprintf(m, sizeof(m), "%s", what);
        free(tc->err);
        tc->err = strdup(m);
        return;
    }
    char ip[64];
    conn_peer_ip(c, ip, sizeof(ip));
    const char *srv = tc->listen && tc->listen->text ? tc->listen->text : "";
    if (err)
        sy_log(LOG_LVL_INFO, "*%llu %s (%d: %s) while SSL handshaking, client: %s, server: %s",
               (unsigned long long)tc->id, what, err, strerror(err), ip, srv);
    else
        sy_log(LOG_LVL_INFO, "*%llu %s while SSL handshaking, client: %s, server: %s",
               (unsigned long long)tc->id, what, ip, srv);
}

/* Why a client's handshake failed, for the metrics (the error stays queued). */
static enum metrics_tls_failure tls_failure_reason(const struct tls_conn *tc, int e, int err)
{
    if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL)
        return err == 0 || err == ECONNRESET || err == EPIPE ? MTF_PEER_CLOSED : MTF_OTHER;
    if (tc->rejected)
        return MTF_REJECTED;
    unsigned long code = ERR_peek_error();
    if (ERR_GET_LIB(code) != ERR_LIB_SSL)
        return MTF_OTHER;
    switch (ERR_GET_REASON(code)) {
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
        return MTF_PEER_CLOSED;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
        return MTF_NO_SHARED_CIPHER;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
        return MTF_PROTOCOL_VERSION;
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
        return MTF_HTTP_REQUEST;
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_NO_CERTIFICATES_RETURNED:
        return MTF_CERTIFICATE;
    default:
        return MTF_OTHER;
    }
}

/* A failed SSL_do_handshake: log as nginx does, set the conn's error state. */
static ssize_t handshake_failed(struct conn *c, struct tls_conn *tc, int e, int saved_errno)
{
    tc->fatal = 1;
    if (!tc->client)
        metrics_tls_failed(tls_failure_reason(tc, e, saved_errno));
    /* (With OpenSSL 3 a FIN mid-handshake is an SSL error, "unexpected eof
     * while reading", logged as such, as nginx does.) */
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && saved_errno == 0)) {
        ERR_clear_error();
        log_hs_error(c, tc, "peer closed connection in SSL handshake", 0);
        c->flags |= CONN_F_EOF;
        c->flags &= ~CONN_F_READY_R;
        return 0;
    }
    c->flags |= CONN_F_ERROR;
    c->flags &= ~CONN_F_READY_R;
    if (e == SSL_ERROR_SYSCALL) {
        ERR_clear_error();
        log_hs_error(c, tc, "peer closed connection in SSL handshake", saved_errno);
        c->last_errno = saved_errno;
        return SY_ERR;
    }
    char es[1024], msg[1100];
    ssl_errs(es, sizeof(es));
    if (tc->rejected) { /* ssl_reject_handshake, worded as nginx */
        log_hs_error(c, tc, "handshake rejected", 0);
        c->last_errno = EPROTO;
        return SY_ERR;
    }
    snprintf(msg, sizeof(msg), "SSL_do_handshake() failed (SSL:%s)", es);
    log_hs_error(c, tc, msg, 0);
    c->last_errno = EPROTO;
    return SY_ERR;
}

/* Store session `sess` (owned) in the peer's cache slot. */
static void save_session(struct tls_conn *tc, SSL_SESSION *sess)
{
    struct tls_session_slot *pr = tc->peer;
    if (!pr) {
        SSL_SESSION_free(sess);
        return;
    }
    SSL_SESSION_free(pr->session);
    pr->session = sess;
    pr->ctx = SSL_get_SSL_CTX(tc->ssl);
}

/* A new session from the upstream (TLS 1.2: in the handshake; TLS 1.3: a
 * ticket read later). Cached per peer once the certificate was accepted. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct tls_conn *tc = SSL_get_app_data(ssl);
    if (!tc || !tc->client || !tc->peer)
        return 0;
    if (tc->state != TLS_ST_OPEN) {
        SSL_SESSION_free(tc->pending);
        tc->pending = sess;
        return 1;
    }
    save_session(tc, sess);
    return 1;
}

/* The client handshake finished: check the certificate as nginx does
 * (proxy_ssl_verify: the chain, then the name), then take the session. */
static ssize_t client_established(struct conn *c, struct tls_conn *tc)
{
    char m[600];
    m[0] = '\0';
    if (tc->verify) {
        long v = SSL_get_verify_result(tc->ssl);
        X509 *x = SSL_get1_peer_certificate(tc->ssl);
        const char *name = tc->name ? tc->name : "";
        if (v != X509_V_OK)
            snprintf(m, sizeof(m), "upstream SSL certificate verify error: (%ld:%s)", v,
                     X509_verify_cert_error_string(v));
        else if (!x)
            snprintf(m, sizeof(m), "upstream server does not have SSL certificate");
        else if (!*name || (X509_check_host(x, name, strlen(name), 0, NULL) != 1 &&
                            X509_check_ip_asc(x, name, 0) != 1))
            snprintf(m, sizeof(m), "upstream SSL certificate does not match \"%s\"", name);
        X509_free(x);
    }
    if (m[0]) {
        ERR_clear_error();
        free(tc->err);
        tc->err = strdup(m);
        tc->fatal = 1;
        SSL_SESSION_free(tc->pending);
        tc->pending = NULL;
        c->flags |= CONN_F_ERROR;
        c->flags &= ~CONN_F_READY_R;
        c->last_errno = EPROTO;
        return SY_ERR;
    }
    tc->state = TLS_ST_OPEN;
    c->flags &= ~CONN_F_HANDSHAKE;
    if (tc->pending) {
        save_session(tc, tc->pending);
        tc->pending = NULL;
    }
    return 1;
}

/*
 * Bring the connection to application data: peek at the first byte, run the
 * handshake. Returns 1 when ready (or when the connection just turned plain:
 * check c->xprt), 0 on EOF, SY_AGAIN or SY_ERR.
 */
static ssize_t tls_ready(struct conn *c, struct tls_conn *tc, int writing)
{
    if (tc->state == TLS_ST_OPEN)
        return 1;
    if (tc->state == TLS_ST_DETECT) {
        unsigned char b;
        ssize_t n;
        do
            n = recv(c->h.fd, &b, 1, MSG_PEEK);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return want(c, SSL_ERROR_WANT_READ, writing);
            c->last_errno = errno;
            c->flags |= CONN_F_ERROR;
            c->flags &= ~CONN_F_READY_R;
            return SY_ERR;
        }
        if (n == 0) {
            c->flags |= CONN_F_EOF;
            c->flags &= ~CONN_F_READY_R;
            return 0;
        }
        /* A handshake record (SSLv3/TLS), or an SSLv2-format hello. */
        if (b != 0x16 && !(b & 0x80)) {
            to_plain(c, tc);
            return 1;
        }
        tc->state = TLS_ST_HANDSHAKE;
    }
    /* ssl_early_data on: the client's early data is read (SSL_read_early_data,
     * by tls_recv) before the handshake is finished; SSL_do_handshake now
     * would reject it. */
    if (tc->state == TLS_ST_EARLY ||
        (!tc->client && !tc->early_over && SSL_get_max_early_data(tc->ssl) > 0))
        return TLS_READY_EARLY;
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(tc->ssl);
    int saved = errno;
    if (r == 1) {
        if (tc->client)
            return client_established(c, tc);
        tc->state = TLS_ST_OPEN;
        c->flags &= ~CONN_F_HANDSHAKE;
        metrics_tls_handshake(SSL_version(tc->ssl), SSL_session_reused(tc->ssl));
        drop_rt(tc);
        return 1;
    }
    int e = SSL_get_error(tc->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return want(c, e, writing);
    return handshake_failed(c, tc, e, saved);
}

static void log_io_error(struct conn *c, struct tls_conn *tc, const char *what)
{
    char es[1024], ip[64];
    ssl_errs(es, sizeof(es));
    conn_peer_ip(c, ip, sizeof(ip));
    sy_log(LOG_LVL_INFO, "*%llu %s failed (SSL:%s), client: %s", (unsigned long long)tc->id,
           what, es, ip);
}

/*
 * Read TLS 1.3 early data (0-RTT, ssl_early_data on) into buf: the request
 * is served before the handshake ends, saving the client a round trip.
 * Returns bytes, SY_AGAIN/SY_ERR, or 0 with tc->early_over set when there
 * is no (more) early data: the handshake then finishes as usual.
 */
static ssize_t early_read(struct conn *c, struct tls_conn *tc, void *buf, size_t len)
{
    for (int i = 0; i < 4; i++) {
        size_t n = 0;
        ERR_clear_error();
        errno = 0;
        int r = SSL_read_early_data(tc->ssl, buf, len, &n);
        int saved = errno;
        if (r == SSL_READ_EARLY_DATA_SUCCESS) {
            tc->state = TLS_ST_EARLY;
            if (n > 0) {
                c->flags &= ~CONN_F_WANT_W_FOR_R;
                return (ssize_t)n;
            }
            continue;
        }
        if (r == SSL_READ_EARLY_DATA_FINISH) {
            tc->early_over = 1;
            tc->state = TLS_ST_HANDSHAKE;
            return n > 0 ? (ssize_t)n : 0;
        }
        int e = SSL_get_error(tc->ssl, 0);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return want(c, e, 0);
        tc->early_over = 1;
        return handshake_failed(c, tc, e, saved);
    }
    return want(c, SSL_ERROR_WANT_READ, 0);
}

static ssize_t tls_recv(struct conn *c, void *buf, size_t len)
{
    struct tls_conn *tc = c->xprt_ctx;
    ssize_t rc = tls_ready(c, tc, 0);
    if (rc == TLS_READY_EARLY) {
        rc = early_read(c, tc, buf, len);
        if (rc != 0 || !tc->early_over)
            return rc;
        rc = tls_ready(c, tc, 0);
    }
    if (rc != 1)
        return rc;
    if (c->xprt != &xprt_tls)
        return c->xprt->recv(c, buf, len);
    if (len > INT_MAX)
        len = INT_MAX;
    ERR_clear_error();
    errno = 0;
    int n = SSL_read(tc->ssl, buf, (int)len);
    int saved = errno;
    if (n > 0) {
        /* No short-read shortcut: OpenSSL may hold more already. */
        c->flags &= ~CONN_F_WANT_W_FOR_R;
        return n;
    }
    int e = SSL_get_error(tc->ssl, n);
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return want(c, e, 0);
    case SSL_ERROR_ZERO_RETURN: /* close_notify, or a plain FIN (IGNORE_UNEXPECTED_EOF) */
        c->flags |= CONN_F_EOF;
        c->flags &= ~CONN_F_READY_R;
        return 0;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        tc->fatal = 1;
        c->last_errno = saved ? saved : ECONNRESET;
        c->flags |= CONN_F_ERROR;
        c->flags &= ~CONN_F_READY_R;
        return SY_ERR;
    default:
        tc->fatal = 1;
        log_io_error(c, tc, "SSL_read()");
        c->last_errno = EPROTO;
        c->flags |= CONN_F_ERROR;
        c->flags &= ~CONN_F_READY_R;
        return SY_ERR;
    }
}

static ssize_t tls_writev(struct conn *c, const struct iovec *iov, int iovcnt)
{
    static char gather[TLS_COALESCE];
    struct tls_conn *tc = c->xprt_ctx;
    ssize_t rc = tls_ready(c, tc, 1);
    if (rc == TLS_READY_EARLY) {
        /* Nothing to answer before early data arrived; the response to a
         * request read from it goes out as 0.5-RTT data. */
        if (tc->state != TLS_ST_EARLY)
            return want(c, SSL_ERROR_WANT_READ, 1);
        rc = 1;
    }
    if (rc == 0) {
        c->last_errno = EPIPE;
        c->flags |= CONN_F_ERROR;
        return SY_ERR;
    }
    if (rc != 1)
        return rc;
    if (c->xprt != &xprt_tls)
        return c->xprt->writev(c, iov, iovcnt);
    /* One SSL_write: the first iovec, or the iovecs gathered up to one record.
     * A retry after WANT_WRITE sees the same iovecs and so passes the same
     * bytes (OpenSSL's rule; the buffer may move: ACCEPT_MOVING_WRITE_BUFFER). */
    /* At most ssl_buffer_size bytes a write (server side), so records are
     * no larger (nginx's ssl_buffer_size). */
    size_t cap = !tc->client && tc->bufsize ? tc->bufsize : TLS_COALESCE;
    const void *p;
    size_t len;
    if (iovcnt == 1 || iov[0].iov_len >= cap) {
        p = iov[0].iov_base;
        len = iov[0].iov_len;
        if (cap < TLS_COALESCE && len > cap)
            len = cap;
    } else {
        len = 0;
        for (int i = 0; i < iovcnt && len < cap; i++) {
            size_t take = iov[i].iov_len < cap - len ? iov[i].iov_len : cap - len;
            memcpy(gather + len, iov[i].iov_base, take);
            len += take;
        }
        p = gather;
    }
    if (len == 0)
        return 0;
    if (len > INT_MAX)
        len = INT_MAX;
    ERR_clear_error();
    errno = 0;
    int n;
    if (tc->state == TLS_ST_EARLY) {
        size_t w = 0;
        n = SSL_write_early_data(tc->ssl, p, len, &w) == 1 ? (int)w : -1;
    } else {
        n = SSL_write(tc->ssl, p, (int)len);
    }
    int saved = errno;
    if (n > 0) {
        tc->wpending = 0;
        c->flags &= ~CONN_F_WANT_R_FOR_W;
        return n;
    }
    int e = SSL_get_error(tc->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        tc->wpending = (int)len;
        return want(c, e, 1);
    }
    tc->fatal = 1;
    c->flags |= CONN_F_ERROR;
    if (e == SSL_ERROR_SYSCALL) {
        ERR_clear_error();
        c->last_errno = saved ? saved : EPIPE;
        return SY_ERR;
    }
    log_io_error(c, tc, "SSL_write()");
    c->last_errno = EPROTO;
    return SY_ERR;
}

/* close_notify, best effort (never after a fatal error, never mid-handshake). */
static void send_close_notify(struct tls_conn *tc)
{
    if (tc->state != TLS_ST_OPEN || tc->fatal ||
        (SSL_get_shutdown(tc->ssl) & SSL_SENT_SHUTDOWN))
        return;
    ERR_clear_error();
    (void)SSL_shutdown(tc->ssl);
    ERR_clear_error();
}

static void tls_shutdown_wr(struct conn *c)
{
    struct tls_conn *tc = c->xprt_ctx;
    if (tc)
        send_close_notify(tc);
    shutdown(c->h.fd, SHUT_WR);
}

static void tls_release(struct conn *c)
{
    struct tls_conn *tc = c->xprt_ctx;
    if (!tc)
        return;
    if (tc->state == TLS_ST_OPEN && !tc->fatal) {
        send_close_notify(tc);
        /* A connection closed without the peer's close_notify (a timeout, the
         * client just leaving) keeps its session resumable. */
        SSL_set_shutdown(tc->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    }
    SSL_SESSION_free(tc->pending);
    SSL_free(tc->ssl);
    ERR_clear_error();
    tc->peer = NULL;
    if (tc->rt)
        drop_rt(tc);
    free(tc->name);
    free(tc->err);
    free(tc);
    c->xprt_ctx = NULL;
}

const struct xprt_ops xprt_tls = {
    .name = "tls",
    .recv = tls_recv,
    .writev = tls_writev,
    .shutdown_wr = tls_shutdown_wr,
    .release = tls_release,
};

int tls_accept(struct conn *c, struct gen_rt *rt, const struct listen_conf *l, uint64_t id)
{
    const struct tls_gen *tg = rt && rt->gen ? rt->gen->tls : NULL;
    const struct tls_srv *ts = tg && l->default_server ? srv_find(tg, l->default_server) : NULL;
    if (!ts)
        return -1;
    struct tls_conn *tc = calloc(1, sizeof(*tc));
    if (!tc)
        return -1;
    ERR_clear_error();
    tc->ssl = SSL_new(ts->ctx);
    if (!tc->ssl || SSL_set_fd(tc->ssl, c->h.fd) != 1) {
        SSL_free(tc->ssl);
        free(tc);
        ERR_clear_error();
        return -1;
    }
    SSL_set_accept_state(tc->ssl);
    SSL_set_app_data(tc->ssl, tc);
    tc->rt = rt_ref(rt);
    tc->listen = l;
    tc->tg = tg;
    tc->id = id;
    tc->state = TLS_ST_DETECT;
    tc->sess_ctx = ts->ctx;
    tc->bufsize = buf_size(l->default_server->ssl);
    tc->h2 = (unsigned char)conf_http2_enabled(l, l->default_server);
    c->xprt = &xprt_tls;
    c->xprt_ctx = tc;
    c->flags |= CONN_F_HANDSHAKE;
    return 0;
}

int tls_connect(struct conn *c, struct gen_rt *rt, const struct loc_conf *lc, const char *name,
                struct tls_session_slot *pr)
{
    const struct tls_cli *t = rt && rt->gen ? cli_find(rt->gen->tls, lc) : NULL;
    if (!t)
        return -1;
    struct tls_conn *tc = calloc(1, sizeof(*tc));
    if (!tc)
        return -1;
    ERR_clear_error();
    tc->ssl = SSL_new(t->ctx);
    if (!tc->ssl || SSL_set_fd(tc->ssl, c->h.fd) != 1)
        goto fail;
    SSL_set_connect_state(tc->ssl);
    SSL_set_app_data(tc->ssl, tc);
    tc->client = 1;
    tc->verify = (unsigned char)t->verify;
    if (t->verify && !(tc->name = strdup(name)))
        goto fail;
    /* SNI (RFC 6066: never an IP literal) */
    unsigned char a6[16];
    if (lc->proxy_ssl_server_name == 1 && name[0] && name[0] != '[' &&
        inet_pton(AF_INET, name, a6) != 1 && inet_pton(AF_INET6, name, a6) != 1 &&
        SSL_set_tlsext_host_name(tc->ssl, name) != 1)
        goto fail;
    if (pr) {
        tc->peer = pr;
        tc->rt = rt_ref(rt); /* keeps pr alive */
        if (pr->session && pr->ctx == t->ctx && SSL_SESSION_is_resumable(pr->session))
            (void)SSL_set_session(tc->ssl, pr->session);
    }
    tc->state = TLS_ST_HANDSHAKE;
    c->xprt = &xprt_tls;
    c->xprt_ctx = tc;
    c->flags |= CONN_F_HANDSHAKE;
    ERR_clear_error();
    return 0;
fail:
    SSL_free(tc->ssl);
    free(tc->name);
    free(tc);
    ERR_clear_error();
    return -1;
}

void tls_client_detach(struct conn *c)
{
    if (!tls_is(c) || !c->xprt_ctx)
        return;
    struct tls_conn *tc = c->xprt_ctx;
    if (!tc->client)
        return;
    tc->peer = NULL;
    if (tc->rt)
        drop_rt(tc);
}

const char *tls_handshake_error(const struct conn *c)
{
    if (!tls_is(c) || !c->xprt_ctx)
        return NULL;
    const struct tls_conn *tc = c->xprt_ctx;
    return tc->err;
}

void tls_session_free(void *sess)
{
    SSL_SESSION_free(sess);
}

static SSL *open_ssl(const struct conn *c)
{
    if (!tls_is(c) || !c->xprt_ctx)
        return NULL;
    const struct tls_conn *tc = c->xprt_ctx;
    return tc->state == TLS_ST_OPEN || tc->state == TLS_ST_EARLY ? tc->ssl : NULL;
}


const char *tls_protocol(const struct conn *c)
{
    SSL *ssl = open_ssl(c);
    return ssl ? SSL_get_version(ssl) : NULL;
}

int tls_alpn_is_h2(const struct conn *c)
{
    SSL *ssl = open_ssl(c);
    const unsigned char *p = NULL;
    unsigned len = 0;
    if (ssl)
        SSL_get0_alpn_selected(ssl, &p, &len);
    return len == 2 && memcmp(p, "h2", 2) == 0;
}

const char *tls_cipher(const struct conn *c)
{
    SSL *ssl = open_ssl(c);
    return ssl ? SSL_get_cipher_name(ssl) : NULL;
}

const char *tls_server_name(const struct conn *c)
{
    SSL *ssl = open_ssl(c);
    return ssl ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

/* ------------------------------------------------------------ $ssl_* facts */

static const char hexdig[] = "0123456789abcdef";

/* A group (curve) by name as nginx prints it: the short name of a known nid,
 * OpenSSL's name for a provider group, else "0x" and its code. */
static const char *group_name(SSL *ssl, int nid, char tmp[8])
{
    if (!(nid & TLSEXT_nid_unknown)) {
        const char *sn = OBJ_nid2sn(nid);
        if (sn)
            return sn;
    }
    const char *name = SSL_group_to_name(ssl, nid);
    if (name)
        return name;
    snprintf(tmp, 8, "0x%04x", (unsigned)(nid & 0xffff));
    return tmp;
}

/* The client's cipher list: names of the ciphers OpenSSL knows, "0x" and
 * the code of the others, ':'-separated (nginx's $ssl_ciphers). */
static struct str client_ciphers(SSL *ssl, struct arena *a)
{
    const unsigned char *raw;
    int bytes = (int)SSL_get0_raw_cipherlist(ssl, NULL);
    int total = (int)SSL_get0_raw_cipherlist(ssl, &raw);
    if (bytes <= 0 || total <= 0)
        return STR_LIT("");
    int n = total / bytes;
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        const SSL_CIPHER *c = SSL_CIPHER_find(ssl, raw + i * bytes);
        len += (c ? strlen(SSL_CIPHER_get_name(c)) : 2 + 2 * (size_t)bytes) + 1;
    }
    char *p = arena_alloc(a, len);
    if (!p)
        return STR_LIT("");
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        const unsigned char *code = raw + i * bytes;
        const SSL_CIPHER *c = SSL_CIPHER_find(ssl, code);
        if (c) {
            const char *name = SSL_CIPHER_get_name(c);
            memcpy(p + o, name, strlen(name));
            o += strlen(name);
        } else {
            p[o++] = '0';
            p[o++] = 'x';
            for (int k = 0; k < bytes; k++) {
                p[o++] = hexdig[code[k] >> 4];
                p[o++] = hexdig[code[k] & 15];
            }
        }
        p[o++] = ':';
    }
    return (struct str){p, o - 1};
}

/* The client's supported groups, ':'-separated (nginx's $ssl_curves). */
static struct str client_curves(SSL *ssl, struct arena *a)
{
    int n = (int)SSL_get1_curves(ssl, NULL);
    if (n <= 0)
        return STR_LIT("");
    int *nids = arena_alloc(a, (size_t)n * sizeof(*nids));
    if (!nids)
        return STR_LIT("");
    n = (int)SSL_get1_curves(ssl, nids);
    size_t len = 0;
    char tmp[8];
    for (int i = 0; i < n; i++)
        len += strlen(group_name(ssl, nids[i], tmp)) + 1;
    char *p = arena_alloc(a, len);
    if (!p || n <= 0)
        return STR_LIT("");
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        const char *name = group_name(ssl, nids[i], tmp);
        memcpy(p + o, name, strlen(name));
        o += strlen(name);
        p[o++] = ':';
    }
    return (struct str){p, o - 1};
}

static struct str session_id(SSL *ssl, struct arena *a)
{
    SSL_SESSION *sess = SSL_get0_session(ssl);
    unsigned int len = 0;
    const unsigned char *id = sess ? SSL_SESSION_get_id(sess, &len) : NULL;
    if (!id || len == 0)
        return STR_LIT("");
    char *p = arena_alloc(a, 2 * (size_t)len);
    if (!p)
        return STR_LIT("");
    for (unsigned i = 0; i < len; i++) {
        p[2 * i] = hexdig[id[i] >> 4];
        p[2 * i + 1] = hexdig[id[i] & 15];
    }
    return (struct str){p, 2 * (size_t)len};
}

struct str tls_info(const struct conn *c, enum tls_info what, struct arena *a)
{
    SSL *ssl = open_ssl(c);
    if (!ssl)
        return STR_NULL;
    switch (what) {
    case TLS_I_CIPHERS:
        return client_ciphers(ssl, a);
    case TLS_I_CURVE: {
        int nid = SSL_get_negotiated_group(ssl);
        if (nid == NID_undef)
            return STR_LIT("");
        char tmp[8];
        return arena_str(a, str_from_cstr(group_name(ssl, nid, tmp)));
    }
    case TLS_I_CURVES:
        return client_curves(ssl, a);
    case TLS_I_SESSION_ID:
        return session_id(ssl, a);
    case TLS_I_SESSION_REUSED:
        return SSL_session_reused(ssl) ? STR_LIT("r") : STR_LIT(".");
    case TLS_I_EARLY_DATA:
        /* nginx (OpenSSL): "1" while the handshake is not finished, i.e. a
         * request read from TLS 1.3 early data (ssl_early_data on). */
        return SSL_is_init_finished(ssl) ? STR_LIT("") : STR_LIT("1");
    case TLS_I_ALPN: {
        const unsigned char *data = NULL;
        unsigned int len = 0;
        SSL_get0_alpn_selected(ssl, &data, &len);
        return len ? arena_str(a, (struct str){(const char *)data, len}) : STR_LIT("");
    }
    }
    return STR_LIT("");
}

/* ------------------------------------------------------------ client certificates */

/* What BIO `b` holds, copied into `a` (empty on failure); frees `b`. */
static struct str bio_take(BIO *b, int ok, struct arena *a)
{
    struct str v = STR_LIT("");
    char *data = NULL;
    long n = b && ok ? BIO_get_mem_data(b, &data) : 0;
    if (n > 0 && data)
        v = arena_str(a, (struct str){data, (size_t)n});
    BIO_free(b);
    return v;
}

/* nginx's NGX_ESCAPE_URI_COMPONENT: all but ALPHA, DIGIT, "-", ".", "_", "~". */
static struct str uri_component(struct str in, struct arena *a)
{
    static const char up[] = "0123456789ABCDEF";
    char *p = arena_alloc(a, in.len * 3 + 1);
    if (!p)
        return STR_LIT("");
    size_t o = 0;
    for (size_t i = 0; i < in.len; i++) {
        unsigned char ch = (unsigned char)in.p[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            p[o++] = (char)ch;
        } else {
            p[o++] = '%';
            p[o++] = up[ch >> 4];
            p[o++] = up[ch & 15];
        }
    }
    return (struct str){p, o};
}

/* $ssl_client_cert (deprecated in nginx): the PEM without its last newline,
 * every other line break followed by a tab. */
static struct str tabbed(struct str pem, struct arena *a)
{
    if (pem.len == 0)
        return pem;
    size_t n = pem.len - 1, extra = 0;
    for (size_t i = 0; i < n; i++)
        extra += pem.p[i] == '\n';
    char *p = arena_alloc(a, n + extra + 1);
    if (!p)
        return STR_LIT("");
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        p[o++] = pem.p[i];
        if (pem.p[i] == '\n')
            p[o++] = '\t';
    }
    return (struct str){p, o};
}

static struct str cert_time(const ASN1_TIME *t, struct arena *a)
{
    BIO *b = BIO_new(BIO_s_mem());
    return bio_take(b, b && ASN1_TIME_print(b, t) == 1, a);
}

static struct str cert_value(SSL *ssl, X509 *x, enum tls_client what, struct arena *a)
{
    BIO *b;
    switch (what) {
    case TLS_C_VERIFY: {
        long rc = SSL_get_verify_result(ssl);
        if (rc == X509_V_OK)
            return STR_LIT("SUCCESS");
        const char *why = X509_verify_cert_error_string(rc);
        char *p = arena_printf(a, "FAILED:%s", why);
        return p ? str_from_cstr(p) : STR_LIT("");
    }
    case TLS_C_RAW_CERT:
    case TLS_C_CERT:
    case TLS_C_ESCAPED_CERT: {
        b = BIO_new(BIO_s_mem());
        struct str pem = bio_take(b, b && PEM_write_bio_X509(b, x) == 1, a);
        return what == TLS_C_RAW_CERT ? pem
               : what == TLS_C_CERT   ? tabbed(pem, a)
                                      : uri_component(pem, a);
    }
    case TLS_C_S_DN:
    case TLS_C_I_DN:
        b = BIO_new(BIO_s_mem());
        return bio_take(b,
                        b && X509_NAME_print_ex(b,
                                                what == TLS_C_S_DN ? X509_get_subject_name(x)
                                                                   : X509_get_issuer_name(x),
                                                0, XN_FLAG_RFC2253) >= 0,
                        a);
    case TLS_C_S_DN_LEGACY:
    case TLS_C_I_DN_LEGACY: {
        char *one = X509_NAME_oneline(what == TLS_C_S_DN_LEGACY ? X509_get_subject_name(x)
                                                                : X509_get_issuer_name(x),
                                      NULL, 0);
        struct str v = one ? arena_str(a, str_from_cstr(one)) : STR_LIT("");
        OPENSSL_free(one);
        return v;
    }
    case TLS_C_SERIAL:
        b = BIO_new(BIO_s_mem());
        return bio_take(b, b && i2a_ASN1_INTEGER(b, X509_get_serialNumber(x)) >= 0, a);
    case TLS_C_FINGERPRINT: {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        if (X509_digest(x, EVP_sha1(), md, &n) != 1)
            return STR_LIT("");
        char *p = arena_alloc(a, 2 * (size_t)n);
        if (!p)
            return STR_LIT("");
        for (unsigned i = 0; i < n; i++) {
            p[2 * i] = hexdig[md[i] >> 4];
            p[2 * i + 1] = hexdig[md[i] & 15];
        }
        return (struct str){p, 2 * (size_t)n};
    }
    case TLS_C_V_START:
        return cert_time(X509_get0_notBefore(x), a);
    case TLS_C_V_END:
        return cert_time(X509_get0_notAfter(x), a);
    case TLS_C_V_REMAIN: {
        struct tm tm;
        if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
            return STR_LIT("");
        time_t end = timegm(&tm), now = time(NULL);
        if (end < now + 86400)
            return STR_LIT("0");
        char *p = arena_printf(a, "%lld", (long long)((end - now) / 86400));
        return p ? str_from_cstr(p) : STR_LIT("");
    }
    }
    return STR_LIT("");
}

struct str tls_client_cert(const struct conn *c, enum tls_client what, struct arena *a)
{
    SSL *ssl = open_ssl(c);
    if (!ssl)
        return STR_NULL;
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (!x)
        return what == TLS_C_VERIFY ? STR_LIT("NONE") : STR_LIT("");
    struct str v = cert_value(ssl, x, what, a);
    ERR_clear_error();
    return v;
}

/* nginx's ngx_ssl_verify_error_optional: the errors optional_no_ca lets pass. */
static int verify_error_optional(long rc)
{
    return rc == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
           rc == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
           rc == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
           rc == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
           rc == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE;
}

/* The session of a refused certificate must not resume (nginx:
 * ngx_ssl_remove_cached_session). */
static void forget_session(const struct tls_conn *tc)
{
    SSL_SESSION *sess = SSL_get0_session(tc->ssl);
    if (sess && tc->sess_ctx)
        SSL_CTX_remove_session(tc->sess_ctx, sess);
}

int tls_request_check(const struct conn *c, const struct server_conf *srv, struct str host,
                      char *why, size_t len)
{
    SSL *ssl = open_ssl(c);
    if (!ssl || !srv || !srv->ssl)
        return 0;
    const struct tls_conn *tc = c->xprt_ctx;
    const struct ssl_conf *s = srv->ssl;
    if (!s->verify_client)
        return 0;
    /* nginx's ngx_http_set_virtual_server: the SNI name chose a server, the
     * Host header another one that checks certificates. */
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (tc->sni_named && sni) {
        size_t n = strlen(sni);
        if (n && sni[n - 1] == '.')
            n--;
        if (n != host.len || strncasecmp(sni, host.p, n) != 0) {
            snprintf(why, len, "client attempted to request the server name different from "
                               "the one that was negotiated");
            return 421;
        }
    }
    long rc = SSL_get_verify_result(ssl);
    if (rc != X509_V_OK &&
        (s->verify_client != SSL_VERIFY_CLIENT_OPTIONAL_NO_CA || !verify_error_optional(rc))) {
        snprintf(why, len, "client SSL certificate verify error: (%ld:%s)", rc,
                 X509_verify_cert_error_string(rc));
        forget_session(tc);
        return 495;
    }
    if (s->verify_client == SSL_VERIFY_CLIENT_ON && !SSL_get0_peer_certificate(ssl)) {
        snprintf(why, len, "client sent no required SSL certificate");
        forget_session(tc);
        return 496;
    }
    return 0;
}
