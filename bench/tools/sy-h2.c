/*
 * sy-h2 - the benchmark's HTTP/2 client for what h2load does not do:
 * idle HTTP/2 connections and WebSockets over HTTP/2 (RFC 8441).
 *
 *     sy-h2 idle    --url https://HOST:PORT/ [--conns N] [--hold SEC]
 *     sy-h2 ws-echo --url https://HOST:PORT/PATH [--conns N] [--streams S]
 *                   [--size BYTES] [--duration SEC]
 *     sy-h2 probe   --url https://HOST:PORT/
 *
 * idle: opens N TLS connections (ALPN h2), each with the HTTP/2 preface and
 * a SETTINGS exchange both ways (the server's SETTINGS received, ours
 * acknowledged), prints {"opened":N,"errors":E}, then keeps them open, idle,
 * until a line arrives on stdin (or --hold seconds pass), and prints the same
 * object again.
 *
 * ws-echo: opens N connections of S streams, each stream a WebSocket by
 * extended CONNECT (:protocol websocket), then for --duration seconds every
 * stream sends a masked binary message of --size bytes and waits for its
 * echo before sending the next. Prints {"ops","seconds","p50_us","p99_us",
 * "errors",...}: ops are echoes received in the measured time.
 *
 * probe: prints {"alpn":"h2"|"","enable_connect_protocol":0|1}.
 *
 * One thread, one epoll loop; TLS by OpenSSL, HTTP/2 by libnghttp2 (the
 * nghttp2_session_mem_send / mem_recv interface, so the TLS layer stays ours).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hist.h"
#include "wsproto.h"

#define SEC 1000000000ull
#define OPEN_TIMEOUT (15 * SEC)
#define MAX_STARTING 64     /* connections between connect() and SETTINGS at once */
#define MAX_MSG 65536

enum mode { M_IDLE, M_ECHO, M_PROBE };
enum cstate { C_CONNECTING, C_TLS, C_H2, C_DEAD };

struct tun {                /* ws-echo: one WebSocket on one stream */
    struct hc *c;
    int32_t id;
    int status;             /* :status of the response */
    int open;
    uint64_t t_sent;        /* 0: no message in flight */
    uint8_t *tx;            /* frame being handed to nghttp2 */
    size_t tx_len, tx_off;
    uint8_t hdr[WS_MAX_HDR];  /* incoming frame header, possibly partial */
    size_t hdr_len;
    uint64_t pay_left;
    int fin;
};

struct hc {                 /* one connection */
    int fd;
    int state;
    int settings_in, settings_acked, counted;
    SSL *ssl;
    nghttp2_session *s;
    uint8_t *out;           /* nghttp2 output SSL_write has not taken */
    size_t out_len, out_off;
    uint32_t want;          /* epoll events armed */
    struct tun *tuns;
};

static struct {
    enum mode mode;
    char host[256], path[1024], authority[300];
    int port;
    int conns, streams;
    size_t size;
    double duration, hold;
} O = {.conns = 1, .streams = 1, .size = 64, .duration = 5, .hold = 3600, .path = "/"};

static SSL_CTX *ctx;
static int ep;
static struct hc *C;
static int opened, failed, starting, next_start, tunnels_open;
static int running;         /* ws-echo: in the measured part */
static uint64_t ops, t_run0;
static struct hist H;
static uint8_t payload[MAX_MSG];
static uint8_t rbuf[1 << 16];

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "sy-h2: %s\n", what);
    exit(2);
}

static void conn_fail(struct hc *c)
{
    if (c->state == C_DEAD)
        return;
    if (!c->counted)  /* still between connect() and SETTINGS */
        starting--;
    c->counted = 1;
    failed++;
    c->state = C_DEAD;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static void arm(struct hc *c, uint32_t ev)
{
    if (c->want == ev)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(ep, c->want ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e);
    c->want = ev;
}

/* ------------------------------------------------------------ WebSocket */

static void tun_send(struct tun *t)
{
    static const uint8_t mask[4] = {1, 2, 3, 4};  /* payload is random anyway */
    size_t hl = ws_put_hdr(t->tx, WS_BIN, 1, O.size, mask);
    memcpy(t->tx + hl, payload, O.size);
    t->tx_len = hl + O.size;
    t->tx_off = 0;
    t->t_sent = now_ns();
    nghttp2_session_resume_data(t->c->s, t->id);
}

static void tun_message(struct tun *t)
{
    uint64_t now = now_ns();
    if (running == 1) {
        ops++;
        hist_add(&H, now - t->t_sent);
    }
    t->t_sent = 0;
    if (running < 2)
        tun_send(t);
}

/* Feed the server's (unmasked) frames; a complete data message is an echo. */
static void tun_input(struct tun *t, const uint8_t *p, size_t n)
{
    while (n) {
        if (t->pay_left) {
            size_t k = n < t->pay_left ? n : (size_t)t->pay_left;
            t->pay_left -= k;
            p += k;
            n -= k;
            if (!t->pay_left && t->fin)
                tun_message(t);
            continue;
        }
        t->hdr[t->hdr_len++] = *p++;
        n--;
        struct ws_hdr h;
        int r = ws_parse_hdr(t->hdr, t->hdr_len, &h);
        if (r < 0)
            die("malformed WebSocket frame from the proxy");
        if (r == 0)
            continue;
        t->hdr_len = 0;
        t->pay_left = h.len;
        t->fin = h.fin && h.opcode != WS_PING && h.opcode != WS_PONG && h.opcode != WS_CLOSE;
        if (!h.len && t->fin)
            tun_message(t);
    }
}

static ssize_t tun_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                        uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)s, (void)id, (void)flags, (void)ud;
    struct tun *t = src->ptr;
    if (t->tx_off == t->tx_len)
        return NGHTTP2_ERR_DEFERRED;
    size_t k = t->tx_len - t->tx_off;
    if (k > len)
        k = len;
    memcpy(buf, t->tx + t->tx_off, k);
    t->tx_off += k;
    return (ssize_t)k;
}

static void open_tunnels(struct hc *c)
{
    c->tuns = calloc((size_t)O.streams, sizeof *c->tuns);
    if (!c->tuns)
        die("out of memory");
    nghttp2_nv nv[] = {
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}
        NV(":method", "CONNECT"), NV(":protocol", "websocket"), NV(":scheme", "https"),
        NV(":path", O.path), NV(":authority", O.authority), NV("sec-websocket-version", "13"),
#undef NV
    };
    for (int i = 0; i < O.streams; i++) {
        struct tun *t = &c->tuns[i];
        t->c = c;
        t->tx = malloc(WS_MAX_HDR + O.size);
        if (!t->tx)
            die("out of memory");
        nghttp2_data_provider dp = {.source.ptr = t, .read_callback = tun_read};
        t->id = nghttp2_submit_request(c->s, NULL, nv, sizeof nv / sizeof nv[0], &dp, t);
        if (t->id < 0)
            die("nghttp2_submit_request failed");
    }
}

/* ------------------------------------------------------------ nghttp2 callbacks */

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct hc *c = ud;
    if (f->hd.type == NGHTTP2_SETTINGS && f->hd.stream_id == 0) {
        if (f->hd.flags & NGHTTP2_FLAG_ACK)
            c->settings_acked = 1;
        else
            c->settings_in = 1;
        if (c->settings_in && c->settings_acked && !c->counted) {
            c->counted = 1;
            starting--;
            opened++;
            if (O.mode == M_ECHO) {
                if (!nghttp2_session_get_remote_settings(s, NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL))
                    die("the proxy does not enable extended CONNECT (RFC 8441)");
                open_tunnels(c);
            }
        }
    } else if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
        struct tun *t = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        if (t && t->status == 200 && !t->open) {
            t->open = 1;
            tunnels_open++;
            tun_send(t);
        }
    }
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)flags, (void)ud, (void)vlen;
    struct tun *t = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (t && nlen == 7 && !memcmp(name, ":status", 7))
        t->status = atoi((const char *)value);
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud)
{
    (void)flags, (void)ud;
    struct tun *t = nghttp2_session_get_stream_user_data(s, id);
    if (t)
        tun_input(t, data, len);
    return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    (void)code, (void)ud;
    struct tun *t = nghttp2_session_get_stream_user_data(s, id);
    if (t && running < 2) {
        if (t->open)
            tunnels_open--;
        failed++;
        t->open = 0;
    }
    return 0;
}

/* ------------------------------------------------------------ connection I/O */

static void conn_flush(struct hc *c)
{
    for (;;) {
        if (c->out_off == c->out_len) {
            const uint8_t *d;
            ssize_t n = nghttp2_session_mem_send(c->s, &d);
            if (n < 0) {
                conn_fail(c);
                return;
            }
            if (n == 0)
                break;
            free(c->out);
            c->out = malloc((size_t)n);
            if (!c->out)
                die("out of memory");
            memcpy(c->out, d, (size_t)n);
            c->out_len = (size_t)n;
            c->out_off = 0;
        }
        int w = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
        if (w <= 0) {
            int e = SSL_get_error(c->ssl, w);
            if (e == SSL_ERROR_WANT_WRITE) {
                arm(c, EPOLLIN | EPOLLOUT);
                return;
            }
            if (e != SSL_ERROR_WANT_READ)
                conn_fail(c);
            return;
        }
        c->out_off += (size_t)w;
    }
    arm(c, EPOLLIN);
}

static void conn_h2_start(struct hc *c)
{
    const unsigned char *alpn;
    unsigned alen;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
    if (alen != 2 || memcmp(alpn, "h2", 2)) {
        conn_fail(c);
        return;
    }
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    if (nghttp2_session_client_new(&c->s, cb, c))
        die("nghttp2_session_client_new failed");
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
    nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 1);
    c->state = C_H2;
    conn_flush(c);
}

static void conn_tls(struct hc *c)
{
    int r = SSL_connect(c->ssl);
    if (r == 1) {
        conn_h2_start(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        arm(c, EPOLLIN);
    else if (e == SSL_ERROR_WANT_WRITE)
        arm(c, EPOLLOUT);
    else
        conn_fail(c);
}

static void conn_read(struct hc *c)
{
    for (;;) {
        int n = SSL_read(c->ssl, rbuf, sizeof rbuf);
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                conn_fail(c);
            return;
        }
        if (nghttp2_session_mem_recv(c->s, rbuf, (size_t)n) < 0) {
            conn_fail(c);
            return;
        }
    }
}

static void conn_event(struct hc *c, uint32_t ev)
{
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            conn_fail(c);
            return;
        }
        c->state = C_TLS;
    }
    if (c->state == C_TLS) {
        conn_tls(c);
        return;
    }
    if (c->state != C_H2)
        return;
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_read(c);
    if (c->state == C_H2)
        conn_flush(c);
}

static void conn_start(struct hc *c)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)O.port)};
    if (inet_pton(AF_INET, O.host, &a.sin_addr) != 1)
        die("--url: the host must be an IPv4 address");
    starting++;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c->fd < 0 || (connect(c->fd, (struct sockaddr *)&a, sizeof a) && errno != EINPROGRESS)) {
        conn_fail(c);
        return;
    }
    c->ssl = SSL_new(ctx);
    SSL_set_fd(c->ssl, c->fd);
    c->state = C_CONNECTING;
    arm(c, EPOLLOUT);
}

/* ------------------------------------------------------------ main */

static void usage(void)
{
    fprintf(stderr, "usage: sy-h2 idle|ws-echo|probe --url https://IP:PORT/PATH [--conns N] "
                    "[--streams S] [--size B] [--duration SEC] [--hold SEC]\n");
    exit(2);
}

static void parse(int argc, char **argv)
{
    if (argc < 2)
        usage();
    if (!strcmp(argv[1], "idle"))
        O.mode = M_IDLE;
    else if (!strcmp(argv[1], "ws-echo"))
        O.mode = M_ECHO;
    else if (!strcmp(argv[1], "probe"))
        O.mode = M_PROBE;
    else
        usage();
    const char *url = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--url"))
            url = v;
        else if (!strcmp(k, "--conns"))
            O.conns = atoi(v);
        else if (!strcmp(k, "--streams"))
            O.streams = atoi(v);
        else if (!strcmp(k, "--size"))
            O.size = (size_t)atol(v);
        else if (!strcmp(k, "--duration"))
            O.duration = atof(v);
        else if (!strcmp(k, "--hold"))
            O.hold = atof(v);
        else
            usage();
    }
    if (!url || sscanf(url, "https://%255[0-9.]:%d%1023s", O.host, &O.port, O.path) < 2 ||
        O.conns < 1 || O.streams < 1 || O.size > MAX_MSG)
        usage();
    if (O.mode == M_PROBE)
        O.conns = 1;
    snprintf(O.authority, sizeof O.authority, "%s:%d", O.host, O.port);
}

static void tls_init(void)
{
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        die("SSL_CTX_new failed");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    static const unsigned char alpn[] = "\x02h2";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
}

/* Run the loop until done() or the deadline; starts connections as slots free. */
static void loop(int (*done)(void), uint64_t deadline, int watch_stdin)
{
    struct epoll_event ev[256];
    while (!done() && now_ns() < deadline) {
        while (next_start < O.conns && starting < MAX_STARTING)
            conn_start(&C[next_start++]);
        int n = epoll_wait(ep, ev, 256, 50);
        for (int i = 0; i < n; i++) {
            if (!ev[i].data.ptr) {  /* stdin: a line, or EOF */
                if (watch_stdin)
                    return;
                continue;
            }
            conn_event(ev[i].data.ptr, ev[i].events);
        }
    }
}

static int all_settled(void)
{
    return next_start == O.conns && starting == 0 &&
           (O.mode != M_ECHO || tunnels_open + failed >= opened * O.streams);
}

static int never(void)
{
    return 0;
}

static void report_idle(void)
{
    printf("{\"opened\":%d,\"errors\":%d}\n", opened, failed);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl)) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 131 + 7);
    tls_init();
    ep = epoll_create1(EPOLL_CLOEXEC);
    C = calloc((size_t)O.conns, sizeof *C);
    if (ep < 0 || !C)
        die("setup failed");
    for (int i = 0; i < O.conns; i++)
        C[i].fd = -1;

    loop(all_settled, now_ns() + OPEN_TIMEOUT, 0);
    if (O.mode == M_PROBE) {
        int ok = opened == 1;
        printf("{\"alpn\":\"%s\",\"enable_connect_protocol\":%u}\n", ok ? "h2" : "",
               ok ? nghttp2_session_get_remote_settings(C[0].s,
                                                        NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL)
                  : 0u);
        return 0;
    }
    if (O.mode == M_IDLE) {
        report_idle();
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(ep, EPOLL_CTL_ADD, 0, &e);
        loop(never, now_ns() + (uint64_t)(O.hold * SEC), 1);
        report_idle();
        return 0;
    }
    /* ws-echo: measure while every open tunnel keeps one message in flight */
    int setup_errors = failed;
    running = 1;
    t_run0 = now_ns();
    loop(never, t_run0 + (uint64_t)(O.duration * SEC), 0);
    uint64_t t_end = now_ns();
    running = 2;
    double us = 1e-3;
    printf("{\"mode\":\"ws-echo-h2\",\"conns\":%d,\"streams\":%d,\"size\":%zu,\"opened\":%d,"
           "\"tunnels\":%d,\"ops\":%llu,\"seconds\":%.3f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
           "\"mean_us\":%.1f,\"errors\":%d}\n",
           O.conns, O.streams, O.size, opened, tunnels_open, (unsigned long long)ops,
           (double)(t_end - t_run0) / SEC, us * (double)hist_quantile(&H, 0.5),
           us * (double)hist_quantile(&H, 0.99), H.count ? us * (double)(H.sum / H.count) : 0.0,
           failed > setup_errors ? failed : setup_errors);
    return 0;
}
