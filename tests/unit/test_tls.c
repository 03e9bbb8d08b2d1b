/*
 * test_tls.c - tls/tls.c: contexts built by gen_load (errors with file:line,
 * warnings), and the TLS transport driven over a socketpair against an
 * OpenSSL client in the same process: handshake inside conn_recv, SNI,
 * $ssl_* values, large gathered writes retried after SY_AGAIN while the
 * client reads slowly, close_notify as EOF, plain bytes on a TLS listener,
 * and the readiness mapping of conn_note_events.
 *
 * No event loop: readiness comes from poll(2) turned into epoll bits and fed
 * to conn_note_events, as the loop would.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "conf/conf.h"
#include "core/conn.h"
#include "proc/runtime.h"
#include "tls/tls.h"

struct fx {
    char dir[64];
    char conf[128];
    char err[2048], warn[2048];
};

static void write_cert(const char *dir, const char *stem, const char *cn, long from_s, long to_s)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    assert_non_null(pk);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_set_pubkey(x, pk);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
    char path[256];
    snprintf(path, sizeof(path), "%s/%s.crt", dir, stem);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
    snprintf(path, sizeof(path), "%s/%s.key", dir, stem);
    f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(pk);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sy-tls-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->conf, sizeof(f->conf), "%s/sy.conf", f->dir);
    write_cert(f->dir, "t", "t.test", 0, 86400);
    write_cert(f->dir, "u", "u.test", 0, 86400);
    write_cert(f->dir, "old", "old.test", -3 * 86400, -86400);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

/* Write the config (with %s standing for the directory, any number of times)
 * and load it. */
static struct generation *load(struct fx *f, const char *fmt)
{
    char text[4096];
    size_t o = 0;
    for (const char *p = fmt; *p && o + 64 < sizeof(text); p++) {
        if (p[0] == '%' && p[1] == 's') {
            o += (size_t)snprintf(text + o, sizeof(text) - o, "%s", f->dir);
            p++;
        } else {
            text[o++] = *p;
        }
    }
    text[o] = '\0';
    FILE *fp = fopen(f->conf, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    f->err[0] = f->warn[0] = '\0';
    return gen_load(f->dir, f->conf, NULL, f->err, sizeof(f->err), f->warn, sizeof(f->warn));
}

static const char *CONF_TWO = "events {} http { access_log off;\n"
                              "server { listen 127.0.0.1:8443 ssl; server_name t.test;\n"
                              "  ssl_certificate %s/t.crt; ssl_certificate_key %s/t.key; }\n"
                              "server { listen 127.0.0.1:8443 ssl; server_name u.test;\n"
                              "  ssl_certificate %s/u.crt; ssl_certificate_key %s/u.key; }\n"
                              "}\n";

static void test_load_errors_and_warnings(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, CONF_TWO);
    assert_non_null(g);
    assert_non_null(g->tls);
    gen_free(g);

    /* mismatch: the key of another certificate, at the key's line */
    g = load(f, "events {} http {\nserver { listen 8443 ssl;\n"
                "ssl_certificate %s/t.crt;\nssl_certificate_key %s/u.key;\n} }\n");
    assert_null(g);
    assert_non_null(strstr(f->err, "SSL_CTX_use_PrivateKey(\""));
    assert_non_null(strstr(f->err, "key values mismatch"));
    char where[200];
    snprintf(where, sizeof(where), " in %s:4", f->conf);
    assert_non_null(strstr(f->err, where));

    /* unreadable certificate, at the certificate's line */
    g = load(f, "events {} http {\nserver { listen 8443 ssl;\n"
                "ssl_certificate %s/none.crt;\nssl_certificate_key %s/t.key;\n} }\n");
    assert_null(g);
    assert_non_null(strstr(f->err, "cannot load certificate \""));
    assert_non_null(strstr(f->err, "BIO_new_file() failed (SSL: error:"));
    snprintf(where, sizeof(where), " in %s:3", f->conf);
    assert_non_null(strstr(f->err, where));

    /* expired: a warning, the load succeeds */
    g = load(f, "events {} http {\nserver { listen 8443 ssl;\n"
                "ssl_certificate %s/old.crt;\nssl_certificate_key %s/old.key;\n} }\n");
    assert_non_null(g);
    assert_non_null(strstr(f->warn, "old.crt\" expired on "));
    gen_free(g);

    /* no server with certificates: no TLS table at all */
    g = load(f, "events {} http { server { listen 8080; } }\n");
    assert_non_null(g);
    assert_null(g->tls);
    gen_free(g);
}

/* Feed poll(2) readiness of c's fd to conn_note_events, as the loop would. */
static void note(struct conn *c)
{
    struct pollfd p = {.fd = c->h.fd, .events = POLLIN | POLLOUT};
    if (poll(&p, 1, 0) <= 0)
        return;
    uint32_t ev = 0;
    if (p.revents & POLLIN)
        ev |= EPOLLIN_BIT;
    if (p.revents & POLLOUT)
        ev |= EPOLLOUT_BIT;
    if (p.revents & POLLHUP)
        ev |= EPOLLHUP_BIT;
    conn_note_events(c, ev);
}

struct pair {
    int sv[2];
    struct conn c;    /* server side, on xprt_tls */
    SSL_CTX *cctx;
    SSL *cl;          /* client side, non-blocking */
    struct gen_rt *rt;
};

static void pair_open(struct pair *pp, struct generation *g, const char *sni)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pp->sv), 0);
    pp->rt = rt_create(g);
    assert_non_null(pp->rt);
    conn_init(&pp->c, pp->sv[0], NULL);
    assert_int_equal(tls_accept(&pp->c, pp->rt, g->http->listens[0], 7), 0);
    assert_true(tls_is(&pp->c));
    assert_true(pp->c.flags & CONN_F_HANDSHAKE);
    pp->cctx = SSL_CTX_new(TLS_client_method());
    pp->cl = SSL_new(pp->cctx);
    SSL_set_fd(pp->cl, pp->sv[1]);
    SSL_set_connect_state(pp->cl);
    if (sni)
        SSL_set_tlsext_host_name(pp->cl, sni);
}

static void pair_close(struct pair *pp)
{
    conn_close_fd(&pp->c);
    SSL_free(pp->cl);
    SSL_CTX_free(pp->cctx);
    close(pp->sv[1]);
    rt_release(pp->rt); /* the last reference: frees the generation */
}

/* Drive both handshakes to the end; the server's runs inside conn_recv. */
static void handshake(struct pair *pp)
{
    char b[16];
    for (int i = 0; i < 100; i++) {
        int cr = SSL_do_handshake(pp->cl);
        note(&pp->c);
        ssize_t n = conn_recv(&pp->c, b, sizeof(b));
        assert_true(n == SY_AGAIN);
        if (cr == 1 && !(pp->c.flags & CONN_F_HANDSHAKE))
            return;
    }
    fail_msg("handshake did not finish");
}

static void test_transport(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, CONF_TWO);
    assert_non_null(g);
    struct pair pp;
    pair_open(&pp, g, "u.test");
    handshake(&pp);

    /* SNI picked the second server: its certificate, its name. */
    X509 *peer = SSL_get1_peer_certificate(pp.cl);
    char cn[64] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof(cn));
    X509_free(peer);
    assert_string_equal(cn, "u.test");
    assert_string_equal(tls_protocol(&pp.c), "TLSv1.3");
    assert_string_equal(tls_server_name(&pp.c), "u.test");
    assert_non_null(tls_cipher(&pp.c));

    /* client -> server */
    assert_int_equal(SSL_write(pp.cl, "hello", 5), 5);
    char b[64];
    note(&pp.c);
    assert_int_equal(conn_recv(&pp.c, b, sizeof(b)), 5);
    assert_memory_equal(b, "hello", 5);
    assert_int_equal(conn_recv(&pp.c, b, sizeof(b)), SY_AGAIN);
    assert_false(pp.c.flags & CONN_F_READY_R);

    /* server -> client: 3 MiB as three iovecs per call (a small head, then
     * the body in two pieces) while the client reads 4 KiB at a time; every
     * SY_AGAIN is retried with the same iovecs, as callers do. */
    size_t total = 3u << 20;
    unsigned char *src = malloc(total), *dst = malloc(total);
    for (size_t i = 0; i < total; i++)
        src[i] = (unsigned char)(i * 31 + (i >> 13));
    size_t sent = 0, got = 0;
    unsigned again = 0;
    while (got < total) {
        if (sent < total) {
            note(&pp.c);
            struct iovec iov[3];
            size_t left = total - sent, a = left < 100 ? left : 100;
            size_t bl = left - a, b1 = bl / 2;
            iov[0] = (struct iovec){src + sent, a};
            iov[1] = (struct iovec){src + sent + a, b1};
            iov[2] = (struct iovec){src + sent + a + b1, bl - b1};
            int cnt = bl ? (b1 ? 3 : 2) : 1;
            if (cnt == 2)
                iov[1].iov_len = bl;
            ssize_t w = conn_writev(&pp.c, iov, cnt);
            if (w == SY_AGAIN) {
                again++;
                assert_false(pp.c.flags & CONN_F_READY_W);
            } else {
                assert_true(w > 0);
                sent += (size_t)w;
            }
        }
        int r = SSL_read(pp.cl, dst + got, (int)(total - got < 4096 ? total - got : 4096));
        if (r > 0)
            got += (size_t)r;
        else
            assert_int_equal(SSL_get_error(pp.cl, r), SSL_ERROR_WANT_READ);
    }
    assert_true(again > 0); /* the socket really filled up */
    assert_memory_equal(src, dst, total);
    free(src);
    free(dst);

    /* close_notify from the client is EOF */
    SSL_shutdown(pp.cl);
    note(&pp.c);
    assert_int_equal(conn_recv(&pp.c, b, sizeof(b)), 0);
    assert_true(pp.c.flags & CONN_F_EOF);
    pair_close(&pp);
}

/* ssl_verify_client optional_no_ca with a self-signed client certificate:
 * the handshake succeeds, the facts are nginx's, the request passes; and
 * ssl_buffer_size caps each write. */
static void test_client_certificate_and_buffer_size(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, "events {} http { access_log off;\n"
                                   "server { listen 127.0.0.1:8443 ssl; server_name t.test;\n"
                                   "  ssl_certificate %s/t.crt; ssl_certificate_key %s/t.key;\n"
                                   "  ssl_verify_client optional_no_ca; ssl_buffer_size 1k; }\n"
                                   "}\n");
    assert_non_null(g);
    struct pair pp;
    pair_open(&pp, g, "t.test");
    char path[256];
    snprintf(path, sizeof(path), "%s/u.crt", f->dir);
    assert_int_equal(SSL_use_certificate_file(pp.cl, path, SSL_FILETYPE_PEM), 1);
    snprintf(path, sizeof(path), "%s/u.key", f->dir);
    assert_int_equal(SSL_use_PrivateKey_file(pp.cl, path, SSL_FILETYPE_PEM), 1);
    handshake(&pp);

    struct arena a;
    arena_init(&a, 4096);
    struct str v = tls_client_cert(&pp.c, TLS_C_VERIFY, &a);
    assert_true(v.len > 7 && memcmp(v.p, "FAILED:", 7) == 0);
    v = tls_client_cert(&pp.c, TLS_C_S_DN, &a);
    assert_true(str_eq(v, STR_LIT("CN=u.test")));
    v = tls_client_cert(&pp.c, TLS_C_SERIAL, &a);
    assert_true(str_eq(v, STR_LIT("01")));
    v = tls_client_cert(&pp.c, TLS_C_FINGERPRINT, &a);
    assert_int_equal(v.len, 40);
    char why[200];
    assert_int_equal(tls_request_check(&pp.c, g->http->servers[0], STR_LIT("t.test"), why,
                                       sizeof(why)),
                     0);
    arena_destroy(&a);

    static char big[10000];
    struct iovec iov = {big, sizeof(big)};
    note(&pp.c);
    assert_int_equal(conn_writev(&pp.c, &iov, 1), 1024);
    pair_close(&pp);
}

static void test_plain_bytes_on_tls_listener(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, CONF_TWO);
    assert_non_null(g);
    struct pair pp;
    pair_open(&pp, g, NULL);
    char b[64];
    assert_int_equal(conn_recv(&pp.c, b, sizeof(b)), SY_AGAIN); /* nothing yet */
    const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(pp.sv[1], req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
    note(&pp.c);
    ssize_t n = conn_recv(&pp.c, b, sizeof(b));
    assert_int_equal(n, (ssize_t)(sizeof(req) - 1));
    assert_memory_equal(b, req, sizeof(req) - 1);
    assert_true(pp.c.xprt == &xprt_plain);
    assert_true(pp.c.flags & CONN_F_PLAIN_ON_TLS);
    assert_false(pp.c.flags & CONN_F_HANDSHAKE);
    assert_null(tls_protocol(&pp.c));
    pair_close(&pp);
}

static void test_garbage_handshake_is_an_error(void **state)
{
    struct fx *f = *state;
    struct generation *g = load(f, CONF_TWO);
    assert_non_null(g);
    struct pair pp;
    pair_open(&pp, g, NULL);
    unsigned char junk[37] = {0x16, 0x03, 0x01, 0x00, 0x20};
    memset(junk + 5, 0xff, 32);
    assert_int_equal(write(pp.sv[1], junk, sizeof(junk)), (ssize_t)sizeof(junk));
    char b[64];
    note(&pp.c);
    assert_int_equal(conn_recv(&pp.c, b, sizeof(b)), SY_ERR);
    assert_true(pp.c.flags & CONN_F_ERROR);
    pair_close(&pp);
}

static void test_note_events_wakes_the_blocked_side(void **state)
{
    (void)state;
    struct conn c;
    conn_init(&c, -1, NULL);
    /* a read waiting for writability: EPOLLOUT makes it ready */
    c.flags = CONN_F_WANT_W_FOR_R;
    conn_note_events(&c, EPOLLOUT_BIT);
    assert_true(c.flags & CONN_F_READY_R);
    assert_true(c.flags & CONN_F_READY_W);
    /* a write waiting for readability: EPOLLIN makes it ready */
    c.flags = CONN_F_WANT_R_FOR_W;
    conn_note_events(&c, EPOLLIN_BIT);
    assert_true(c.flags & CONN_F_READY_W);
    assert_true(c.flags & CONN_F_READY_R);
    /* without the flags the directions stay apart */
    c.flags = 0;
    conn_note_events(&c, EPOLLOUT_BIT);
    assert_false(c.flags & CONN_F_READY_R);
    c.flags = 0;
    conn_note_events(&c, EPOLLIN_BIT);
    assert_false(c.flags & CONN_F_READY_W);
}

int main(void)
{
    runtime_hooks_install(); /* TLS contexts, SNI lookup, upstream state */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_errors_and_warnings),
        cmocka_unit_test(test_transport),
        cmocka_unit_test(test_client_certificate_and_buffer_size),
        cmocka_unit_test(test_plain_bytes_on_tls_listener),
        cmocka_unit_test(test_garbage_handshake_is_an_error),
        cmocka_unit_test(test_note_events_wakes_the_blocked_side),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
