/* load_opts - sy-load's command line and URL parsing */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"

struct opts O;

static void usage(void)
{
    fprintf(stderr,
            "usage: sy-load MODE --url ws[s]://HOST[:PORT]/PATH [options]\n"
            "modes:\n"
            "  ws-echo       closed loop: each connection sends --size bytes, waits for the echo\n"
            "  ws-paced      open loop at --rate msg/s in total; latency from the scheduled time\n"
            "  ws-handshake  --conns workers loop: connect, upgrade, close\n"
            "  ws-bulk       upload --size frames to a sink as fast as possible (--down: read a source)\n"
            "  ws-idle       open --conns, print {\"opened\":N,\"errors\":E}, wait for a stdin line\n"
            "                or --hold, then one echo per connection\n"
            "options:\n"
            "  --conns N          connections (default: echo/paced 100, handshake 20, bulk 1, idle 1000)\n"
            "  --duration SEC     measured time (default 10)\n"
            "  --size BYTES       message size (default 64; bulk 65536)\n"
            "  --rate MSG_PER_S   ws-paced total rate (default 10000)\n"
            "  --threads N        worker threads (default 1)\n"
            "  --bind-from A[-B]  source IPv4 addresses, round robin (e.g. 127.0.0.2-127.0.0.20)\n"
            "  --down             ws-bulk: download from /ws/source instead of uploading\n"
            "  --hold SEC         ws-idle: stop waiting for stdin after SEC\n"
            "  --timeout SEC      ws-idle: wait for the echoes at most SEC (default 60)\n"
            "  --inflight N       handshakes in progress at once while opening (default 200)\n"
            "  --sni NAME         TLS server name (default: the URL's host unless an IP address)\n"
            "  --allow-errors     exit 0 even when errors were counted\n");
    exit(2);
}

static double num(const char *flag, const char *v, double lo, double hi)
{
    char *end;
    double x = strtod(v, &end);
    if (*v == 0 || *end != 0 || !(x >= lo && x <= hi)) {
        fprintf(stderr, "sy-load: bad value for %s: %s\n", flag, v);
        exit(2);
    }
    return x;
}

static void parse_url(const char *url)
{
    const char *p;
    if (!strncmp(url, "ws://", 5)) {
        p = url + 5;
        O.port = 80;
    } else if (!strncmp(url, "wss://", 6)) {
        p = url + 6;
        O.port = 443;
        O.tls = 1;
    } else {
        fprintf(stderr, "sy-load: the URL must be ws:// or wss://\n");
        exit(2);
    }
    const char *slash = strchr(p, '/');
    const char *hend = slash ? slash : p + strlen(p);
    const char *colon = NULL;
    if (*p == '[') {  /* [v6]:port */
        const char *rb = memchr(p, ']', (size_t)(hend - p));
        if (!rb)
            usage();
        snprintf(O.host, sizeof O.host, "%.*s", (int)(rb - p - 1), p + 1);
        if (rb + 1 < hend && rb[1] == ':')
            colon = rb + 1;
    } else {
        colon = memchr(p, ':', (size_t)(hend - p));
        snprintf(O.host, sizeof O.host, "%.*s", (int)((colon ? colon : hend) - p), p);
    }
    if (colon)
        O.port = (int)num("--url port", strndupa(colon + 1, (size_t)(hend - colon - 1)), 1, 65535);
    snprintf(O.path, sizeof O.path, "%s", slash ? slash : "/");
    snprintf(O.hosthdr, sizeof O.hosthdr, "%.*s", (int)(hend - p), p);

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    char ps[8];
    snprintf(ps, sizeof ps, "%d", O.port);
    int rc = getaddrinfo(O.host, ps, &hints, &ai);
    if (rc) {
        fprintf(stderr, "sy-load: %s: %s\n", O.host, gai_strerror(rc));
        exit(2);
    }
    memcpy(&O.addr, ai->ai_addr, ai->ai_addrlen);
    O.addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);

    /* RFC 6066: no literal IP addresses in SNI */
    struct in6_addr tmp;
    if (inet_pton(AF_INET, O.host, &tmp) != 1 && inet_pton(AF_INET6, O.host, &tmp) != 1)
        snprintf(O.sni, sizeof O.sni, "%s", O.host);
}

static void parse_bind_from(const char *v)
{
    char a[64], b[64];
    const char *dash = strchr(v, '-');
    snprintf(a, sizeof a, "%.*s", (int)(dash ? dash - v : (long)strlen(v)), v);
    snprintf(b, sizeof b, "%s", dash ? dash + 1 : a);
    struct in_addr x, y;
    if (inet_pton(AF_INET, a, &x) != 1 || inet_pton(AF_INET, b, &y) != 1 ||
        ntohl(y.s_addr) < ntohl(x.s_addr) || ntohl(y.s_addr) - ntohl(x.s_addr) >= 65536) {
        fprintf(stderr, "sy-load: bad --bind-from %s (IPv4 A-B)\n", v);
        exit(2);
    }
    O.nsrcs = (int)(ntohl(y.s_addr) - ntohl(x.s_addr) + 1);
    O.srcs = calloc((size_t)O.nsrcs, sizeof *O.srcs);
    for (int i = 0; i < O.nsrcs; i++)
        O.srcs[i] = ntohl(x.s_addr) + (uint32_t)i;
}

void opts_parse(int argc, char **argv)
{
    static const struct { const char *name; enum mode m; int conns; size_t size; } modes[] = {
        {"ws-echo", MODE_ECHO, 100, 64},    {"ws-paced", MODE_PACED, 100, 64},
        {"ws-handshake", MODE_HANDSHAKE, 20, 64}, {"ws-bulk", MODE_BULK, 1, 65536},
        {"ws-idle", MODE_IDLE, 1000, 64},
    };
    int conns = -1, have_mode = 0;
    double size = -1;
    O.duration = 10;
    O.rate = 10000;
    O.threads = 1;
    O.timeout = 60;
    O.inflight = 200;
    O.hold = 3600;  /* without --hold, wait for stdin at most an hour */
    const char *sni = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            if (have_mode)
                usage();  /* one mode, and no stray words */
            for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++)
                if (!strcmp(a, modes[m].name)) {
                    O.mode = modes[m].m;
                    O.mode_name = modes[m].name;
                    if (conns < 0)
                        conns = modes[m].conns;
                    if (size < 0)
                        size = (double)modes[m].size;
                    have_mode = 1;
                }
            if (!have_mode)
                usage();
            continue;
        }
        if (!strcmp(a, "--down")) {
            O.down = 1;
            continue;
        }
        if (!strcmp(a, "--allow-errors")) {
            O.allow_errors = 1;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--url"))
            O.url = v;
        else if (!strcmp(a, "--conns"))
            conns = (int)num(a, v, 1, 1000000);
        else if (!strcmp(a, "--duration"))
            O.duration = num(a, v, 0.001, 86400);
        else if (!strcmp(a, "--size"))
            size = num(a, v, 0, 1 << 30);
        else if (!strcmp(a, "--rate"))
            O.rate = num(a, v, 0.001, 1e8);
        else if (!strcmp(a, "--threads"))
            O.threads = (int)num(a, v, 1, 64);
        else if (!strcmp(a, "--bind-from"))
            parse_bind_from(v);
        else if (!strcmp(a, "--hold")) {
            O.hold = num(a, v, 0, 86400);
            O.hold_given = 1;
        } else if (!strcmp(a, "--timeout"))
            O.timeout = num(a, v, 0.001, 86400);
        else if (!strcmp(a, "--inflight"))
            O.inflight = (int)num(a, v, 1, 100000);
        else if (!strcmp(a, "--sni"))
            sni = v;
        else
            usage();
    }
    if (!have_mode || !O.url)
        usage();
    O.conns = conns;
    O.size = (size_t)size;
    if (O.mode == MODE_PACED && O.size < 8) {
        fprintf(stderr, "sy-load: ws-paced needs --size >= 8 (the send time travels in the message)\n");
        exit(2);
    }
    if (O.threads > O.conns)
        O.threads = O.conns;
    parse_url(O.url);
    if (sni)
        snprintf(O.sni, sizeof O.sni, "%s", sni);
    if (O.nsrcs && O.addr.ss_family != AF_INET) {
        fprintf(stderr, "sy-load: --bind-from needs an IPv4 target\n");
        exit(2);
    }
}
