/*
 * tls.h - TLS for listeners (OpenSSL 3): the per-generation contexts and a
 * transport with the same interface as plain sockets (struct xprt_ops).
 *
 * Contexts. tls_gen_load() builds one SSL_CTX per server{} that has
 * certificates or ssl_reject_handshake (nginx's ssl_* directives: several
 * certificate/key pairs with ssl_password_file, protocols, ciphers, session
 * cache, tickets and ssl_session_ticket_key, dhparam, client certificate
 * verification, ssl_conf_command), when the
 * configuration is loaded, so `-t` reads and checks every certificate. They
 * belong to the generation and are freed with it (gen_free); a connection
 * holds its own OpenSSL reference to the context it uses, so a reload never
 * pulls a context from under a live connection.
 *
 * Transport. tls_accept() puts an accepted connection on `xprt_tls`. Its
 * first read peeks at one byte: a TLS handshake record (0x16, or an SSLv2
 * hello) starts the handshake; anything else turns the connection back into
 * a plain one with CONN_F_PLAIN_ON_TLS set, so the HTTP layer can answer
 * nginx's "plain HTTP request was sent to HTTPS port". The handshake runs
 * inside the first recv/writev calls; SNI (a client-hello callback) picks the
 * server{} by the router's server_name rules on the listen address and
 * switches to its context (verify mode and depth too, and ssl_buffer_size),
 * or refuses the handshake for ssl_reject_handshake. ALPN offers h2 then
 * http/1.1 when conf_http2_enabled() holds for the listen and that server
 * (the listen's default server without SNI), else http/1.1 alone; a client
 * with no protocol in common gets no_application_protocol, as in nginx.
 * Client certificates never fail the handshake: tls_request_check() applies
 * nginx's rules to each request. While the handshake runs the
 * connection holds a reference to the generation it was accepted on (the
 * SNI lookup needs its listen and servers); it drops it when the handshake
 * ends, so an established TLS connection (a WebSocket tunnel) references no
 * generation.
 *
 * Readiness: SSL_ERROR_WANT_READ/WANT_WRITE become SY_AGAIN with READY_R or
 * READY_W cleared, plus CONN_F_WANT_W_FOR_R / CONN_F_WANT_R_FOR_W when a read
 * waits for writability or the reverse (conn_note_events maps the event).
 * READY_R is cleared only on WANT_READ: OpenSSL may hold bytes already read
 * from the socket, so a short read proves nothing.
 *
 * Memory: SSL_MODE_RELEASE_BUFFERS, so an idle TLS connection holds no
 * OpenSSL read or write buffer; the transport itself holds one small struct.
 */
#ifndef SY_TLS_TLS_H
#define SY_TLS_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "core/conn.h"
#include "core/str.h"

struct arena;

struct generation;
struct gen_rt;
struct loc_conf;
/* A client-side session cache slot (one per upstream peer, proxy/balance.h). */
struct tls_session_slot {
    void *session;              /* SSL_SESSION * of the last TLS connection (owned); NULL none */
    const void *ctx;            /* the SSL_CTX it was made with */
};
struct listen_conf;
struct server_conf;
struct tls_gen;

extern const struct xprt_ops xprt_tls;

/*
 * The server{} of listen `l` that serves the SNI name `host` (lower-cased,
 * without a trailing dot), by the server_name rules; the default server
 * when none matches. The http layer provides it (router_find_server), which
 * TLS may not include: installed once at startup (proc/runtime.c). Without
 * one, every handshake uses the listen's default server.
 */
typedef const struct server_conf *(*tls_server_finder)(const struct listen_conf *l,
                                                       struct str host);
void tls_set_server_finder(tls_server_finder find);

/*
 * Build the TLS contexts of `g` (every server with ssl_certificate), stored
 * in g->tls. Returns 0, or -1 with "message in file:line" in `err` (nginx
 * wording: cannot load certificate "..." ...). Problems that do not stop the
 * load (an expired certificate) are appended to `warn` as lines.
 */
int tls_gen_load(struct generation *g, char *err, size_t errlen, char *warn, size_t warnlen);

/* Free the contexts (connections keep theirs alive). Accepts NULL. */
void tls_gen_free(struct tls_gen *t);

/*
 * Put `c`, just accepted on TLS listen `l` of `rt`'s generation, on the TLS
 * transport (SSL_new from the context of l's default server). `id` is the
 * connection number for log lines. Takes a reference on `rt` until the
 * handshake ends (released by the transport). Returns 0, or -1 with `c`
 * unchanged (the caller closes it).
 */
int tls_accept(struct conn *c, struct gen_rt *rt, const struct listen_conf *l, uint64_t id);

/*
 * Client side (HTTPS upstreams). tls_gen_load() also builds one client
 * SSL_CTX per distinct set of proxy_ssl_protocols / proxy_ssl_verify /
 * proxy_ssl_trusted_certificate among the locations that proxy to https://
 * (or to a URL with variables).
 *
 * tls_connect() puts `c` (a connecting upstream socket) on the TLS transport
 * in client mode; the handshake runs inside the first writev/recv, as on the
 * listener side. `name` is the proxy_ssl_name (port stripped): sent as SNI
 * when proxy_ssl_server_name is on (never for IP literals), matched against
 * the certificate when proxy_ssl_verify is on. With `pr` (proxy_ssl_session_reuse)
 * the peer's cached session is offered and new sessions are stored in
 * pr->session; the connection then holds a reference on `rt` (which owns
 * pr) until tls_client_detach() or close. Returns 0 or -1 (c unchanged).
 *
 * A failed handshake returns SY_ERR (or 0 for EOF) with CONN_F_HANDSHAKE
 * still set; tls_handshake_error() then gives nginx's message ("SSL_do_handshake()
 * failed (SSL: ...)", "upstream SSL certificate verify error: (..)", ...),
 * to be logged with " while SSL handshaking to upstream".
 */
int tls_connect(struct conn *c, struct gen_rt *rt, const struct loc_conf *lc, const char *name,
                struct tls_session_slot *pr);
/* Stop caching sessions into the peer slot and drop the runtime reference
 * (the connection leaves its request: pooled, closed or tunnelled). */
void tls_client_detach(struct conn *c);
const char *tls_handshake_error(const struct conn *c);
/* SSL_SESSION_free for the owner of a tls_session_slot. Accepts NULL. */
void tls_session_free(void *sess);

static inline int tls_is(const struct conn *c)
{
    return c->xprt == &xprt_tls;
}

/* Negotiated values of an established TLS connection; NULL when `c` is not
 * TLS (or, for the server name, when the client sent none). */
const char *tls_protocol(const struct conn *c);     /* "TLSv1.3" */
const char *tls_cipher(const struct conn *c);       /* "TLS_AES_256_GCM_SHA384" */
const char *tls_server_name(const struct conn *c);  /* SNI host name */
/* 1 when ALPN selected "h2" on the established TLS connection `c` (the
 * client speaks HTTP/2 next), else 0 (not TLS, no ALPN, http/1.1). */
int tls_alpn_is_h2(const struct conn *c);

/* The other facts nginx's $ssl_* variables give (see tls_info()). */
enum tls_info {
    TLS_I_CIPHERS,              /* the client's cipher list, ':'-separated ($ssl_ciphers) */
    TLS_I_CURVE,                /* the negotiated group ("X25519") */
    TLS_I_CURVES,               /* the client's supported groups, ':'-separated */
    TLS_I_SESSION_ID,           /* session id, lower-case hex */
    TLS_I_SESSION_REUSED,       /* "r" when the session was resumed, else "." */
    TLS_I_EARLY_DATA,           /* "1" while in TLS 1.3 early data, else empty */
    TLS_I_ALPN,                 /* the protocol chosen by ALPN ("http/1.1") */
};

/*
 * The value of `what` for an established TLS connection, in nginx's format,
 * allocated in `a` when it is not static. The slice is empty when there is
 * no such value (nginx: the variable is "not found"), and .p is NULL when
 * `c` is not an established TLS connection.
 */
struct str tls_info(const struct conn *c, enum tls_info what, struct arena *a);

/* The client certificate facts of nginx's $ssl_client_* variables. */
enum tls_client {
    TLS_C_VERIFY,        /* SUCCESS, FAILED:<reason>, NONE */
    TLS_C_CERT,          /* PEM, lines after the first prefixed by a tab */
    TLS_C_RAW_CERT,      /* PEM */
    TLS_C_ESCAPED_CERT,  /* PEM, URI-component escaped */
    TLS_C_S_DN,          /* subject, RFC 2253 */
    TLS_C_I_DN,          /* issuer, RFC 2253 */
    TLS_C_S_DN_LEGACY,   /* subject, "/CN=..." */
    TLS_C_I_DN_LEGACY,   /* issuer, "/CN=..." */
    TLS_C_SERIAL,        /* upper-case hex */
    TLS_C_FINGERPRINT,   /* SHA-1 of the DER, lower-case hex */
    TLS_C_V_START,       /* "Jan  1 00:00:00 2026 GMT" */
    TLS_C_V_END,
    TLS_C_V_REMAIN,      /* whole days left, "0" within the last day or after */
};

/*
 * The value of `what` for the client certificate of an established TLS
 * connection (allocated in `a`). Without a certificate: "NONE" for
 * TLS_C_VERIFY, else an empty slice ("not found"); .p is NULL when `c` is not
 * an established TLS connection.
 */
struct str tls_client_cert(const struct conn *c, enum tls_client what, struct arena *a);

/*
 * nginx's checks of a request on a TLS connection whose server `srv` (chosen
 * by Host) has ssl_verify_client: 421 when the SNI name chose a server and
 * `host` (lower case, no port) names another; 495 when the certificate failed
 * verification (optional_no_ca lets an unknown issuer pass); 496 when `on`
 * and none was sent. Returns 0 (go on) or the status, with the line to log at
 * info in `why`.
 */
int tls_request_check(const struct conn *c, const struct server_conf *srv, struct str host,
                      char *why, size_t len);

#endif
