/*
 * tls-conn-mem - how much memory OpenSSL keeps per idle server-side TLS
 * connection, and where it was allocated.
 *
 *     tls-conn-mem CERT KEY [CONNECTIONS]
 *
 * Runs CONNECTIONS (default 200) TLS handshakes in process, each between a
 * server SSL (configured as Switchyard configures its listeners:
 * SSL_MODE_RELEASE_BUFFERS, default protocols and groups) and a client SSL
 * over a socketpair, then one small echo, leaving every connection open and
 * idle. OpenSSL's allocator hooks record each allocation made while server
 * code runs together with OpenSSL's source file and line; what is still live
 * at the end is printed per connection, grouped by site, largest first.
 *
 * This is the profile behind the idle wss:// row of docs/performance.md: it
 * shows which part of a connection's memory belongs to the TLS library and
 * could only go with kernel TLS or another library.
 */
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Live allocations: open-addressing table keyed by pointer. */
struct live {
    void *p;
    size_t n;
    const char *file;
    int line;
};
#define LIVE_CAP (1u << 20)
static struct live *live;
static int tracking; /* 1 while server-side OpenSSL code runs */

static size_t slot_of(const void *p)
{
    return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull) & (LIVE_CAP - 1);
}

static void live_add(void *p, size_t n, const char *file, int line)
{
    size_t i = slot_of(p);
    while (live[i].p && live[i].p != (void *)1)
        i = (i + 1) & (LIVE_CAP - 1);
    live[i] = (struct live){p, n, file, line};
}

static void live_del(void *p)
{
    for (size_t i = slot_of(p); live[i].p; i = (i + 1) & (LIVE_CAP - 1))
        if (live[i].p == p) {
            live[i].p = (void *)1; /* tombstone */
            return;
        }
}

static void *hook_malloc(size_t n, const char *file, int line)
{
    void *p = malloc(n);
    if (p && tracking)
        live_add(p, n, file, line);
    return p;
}

static void *hook_realloc(void *old, size_t n, const char *file, int line)
{
    if (old)
        live_del(old);
    void *p = realloc(old, n);
    if (p && (tracking || old))
        live_add(p, n, file, line);
    return p;
}

static void hook_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    if (p)
        live_del(p);
    free(p);
}

struct site {
    const char *file;
    int line;
    size_t bytes, count;
};

static int by_bytes(const void *a, const void *b)
{
    const struct site *x = a, *y = b;
    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

static int handshake(SSL_CTX *sctx, SSL_CTX *cctx, SSL **server, SSL **client)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return -1;
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    tracking = 1;
    SSL *s = SSL_new(sctx);
    SSL_set_fd(s, sv[0]);
    SSL_set_accept_state(s);
    tracking = 0;
    SSL *c = SSL_new(cctx);
    SSL_set_fd(c, sv[1]);
    SSL_set_connect_state(c);
    int done = 0;
    for (int i = 0; i < 64 && !done; i++) {
        int a = SSL_do_handshake(c);
        tracking = 1;
        int b = SSL_do_handshake(s);
        tracking = 0;
        done = a == 1 && b == 1;
    }
    if (!done)
        return -1;
    char buf[64];
    if (SSL_write(c, "hello", 5) != 5)
        return -1;
    tracking = 1;
    int n = SSL_read(s, buf, sizeof(buf));
    int w = n > 0 ? SSL_write(s, buf, n) : -1;
    tracking = 0;
    if (w != n)
        return -1;
    while (SSL_read(c, buf, sizeof(buf)) > 0) /* the echo and the session tickets */
        ;
    *server = s;
    *client = c;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: tls-conn-mem CERT KEY [CONNECTIONS]\n");
        return 2;
    }
    int conns = argc > 3 ? atoi(argv[3]) : 200;
    if (conns < 1)
        conns = 1;
    live = calloc(LIVE_CAP, sizeof(*live));
    if (!live || !CRYPTO_set_mem_functions(hook_malloc, hook_realloc, hook_free)) {
        fprintf(stderr, "cannot install allocator hooks\n");
        return 1;
    }
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    if (!sctx || !cctx || SSL_CTX_use_certificate_chain_file(sctx, argv[1]) != 1 ||
        SSL_CTX_use_PrivateKey_file(sctx, argv[2], SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_mode(sctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                               SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_mode(cctx, SSL_MODE_RELEASE_BUFFERS);
    /* Warm-up: one-time library state (provider caches, method tables) is
     * allocated by the first handshakes and is not per connection. */
    SSL *ws, *wc;
    for (int i = 0; i < 4; i++)
        if (handshake(sctx, cctx, &ws, &wc) < 0) {
            fprintf(stderr, "warm-up handshake failed\n");
            return 1;
        }
    memset(live, 0, LIVE_CAP * sizeof(*live));
    for (int i = 0; i < conns; i++) {
        SSL *s, *c;
        if (handshake(sctx, cctx, &s, &c) < 0) {
            fprintf(stderr, "handshake %d failed\n", i);
            return 1;
        }
    }

    struct site *sites = calloc(4096, sizeof(*sites));
    size_t nsites = 0, total = 0, count = 0;
    for (size_t i = 0; i < LIVE_CAP; i++) {
        struct live *l = &live[i];
        if (!l->p || l->p == (void *)1)
            continue;
        total += l->n;
        count++;
        size_t k = 0;
        while (k < nsites && !(sites[k].line == l->line && strcmp(sites[k].file, l->file) == 0))
            k++;
        if (k == nsites) {
            if (nsites == 4096)
                continue;
            sites[nsites++] = (struct site){l->file, l->line, 0, 0};
        }
        sites[k].bytes += l->n;
        sites[k].count++;
    }
    qsort(sites, nsites, sizeof(*sites), by_bytes);
    printf("%s, %d idle server connections: %zu bytes in %.1f allocations per connection "
           "(plus malloc's own 8-16 bytes each)\n",
           OpenSSL_version(OPENSSL_VERSION), conns, total / (size_t)conns,
           (double)count / conns);
    for (size_t k = 0; k < nsites; k++)
        if (sites[k].bytes / (size_t)conns >= 32)
            printf("%8zu B  %4.1f x  %s:%d\n", sites[k].bytes / (size_t)conns,
                   (double)sites[k].count / conns, sites[k].file, sites[k].line);
    return 0;
}
