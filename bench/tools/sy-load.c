/*
 * sy-load - WebSocket load generator of the benchmark (ws:// and wss://).
 *
 *     sy-load MODE --url ws[s]://HOST[:PORT]/PATH [--conns N] [--duration SEC]
 *             [--size BYTES] [--rate MSG_PER_S] [--threads N]
 *             [--bind-from A-B] [--down] [--hold SEC] [--timeout SEC]
 *             [--inflight N] [--sni NAME] [--allow-errors]
 *
 * Prints one JSON object on stdout at the end, and nothing else there
 * (ws-idle prints {"opened":N,"errors":E} first, once all are open).
 * Exit status 0, or 1 when errors were counted (unless --allow-errors).
 *
 * This file: start the workers (load_run.c), run the phases, report.
 */
#define _GNU_SOURCE
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "load.h"

_Atomic int g_phase = PH_OPEN;
_Atomic uint64_t g_t0;
_Atomic int g_settled;

static struct lworker *workers;
static uint64_t g_start_ns;  /* the open phase began */

static void setup_worker(struct lworker *w, int id, int n)
{
    w->id = id;
    w->n = n;
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->c = calloc((size_t)n, sizeof *w->c);
    w->rbuf = malloc(256 * 1024);
    w->sbuf = malloc(WS_MAX_HDR + (O.size > 8 ? O.size : 8));
    w->open_idx = calloc((size_t)n, sizeof *w->open_idx);
    w->restart = calloc((size_t)n, sizeof *w->restart);
    w->restart_tmp = calloc((size_t)n, sizeof *w->restart_tmp);
    if (w->ep < 0 || !w->c || !w->rbuf || !w->sbuf || !w->open_idx || !w->restart || !w->restart_tmp ||
        RAND_bytes((unsigned char *)&w->rng, sizeof w->rng) != 1) {
        perror("sy-load: setup");
        exit(3);
    }
    w->rng |= 1;  /* xorshift must not start at 0 */
    for (int i = 0; i < n; i++) {
        w->c[i].idx = (uint32_t)i;
        w->c[i].fd = -1;
    }
}

/* ws-idle: wait for a line on stdin, or --hold seconds. At EOF on stdin,
 * go on at once unless --hold was given. */
static void wait_for_go(void)
{
    uint64_t until = now_ns() + (uint64_t)(O.hold * 1e9);
    int stdin_open = 1;
    for (;;) {
        uint64_t now = now_ns();
        if (now >= until)
            return;
        uint64_t ms = (until - now) / 1000000 + 1;
        if (!stdin_open) {
            usleep((useconds_t)(ms > 100 ? 100000 : ms * 1000));
            continue;
        }
        struct pollfd p = {.fd = 0, .events = POLLIN};
        int r = poll(&p, 1, (int)(ms > 1000 ? 1000 : ms));
        if (r <= 0)
            continue;
        char buf[256];
        ssize_t n = read(0, buf, sizeof buf);
        if (n > 0 && memchr(buf, '\n', (size_t)n))
            return;
        if (n <= 0) {
            if (!O.hold_given)
                return;
            stdin_open = 0;
        }
    }
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

/* The final report; returns the exit status. */
static int report(void)
{
    struct hist *h = calloc(1, sizeof *h);
    uint64_t ops = 0, bytes = 0, sent = 0, opened = 0, echoed = 0, errs[E_NKINDS] = {0}, errors = 0;
    uint64_t t_start = UINT64_MAX, t_end = 0, open_done = 0;
    for (int t = 0; t < O.threads; t++) {
        struct lworker *w = &workers[t];
        hist_merge(h, &w->hist);
        ops += w->ops;
        bytes += w->bytes;
        sent += w->sent;
        opened += w->opened;
        echoed += w->echoed;
        for (int e = 0; e < E_NKINDS; e++)
            errs[e] += w->errors[e];
        if (w->t_start && w->t_start < t_start)
            t_start = w->t_start;
        if (w->t_end > t_end)
            t_end = w->t_end;
        if (w->t_open_done > open_done)
            open_done = w->t_open_done;
    }
    for (int e = 0; e < E_NKINDS; e++)
        errors += errs[e];
    double secs = t_end > t_start && t_start != UINT64_MAX ? (double)(t_end - t_start) / 1e9 : 0;

    printf("{\"mode\":\"%s\",\"url\":", O.mode_name);
    json_str(O.url);
    printf(",\"conns\":%d,\"threads\":%d,\"size\":%zu", O.conns, O.threads, O.size);
    if (O.mode == MODE_IDLE) {
        printf(",\"opened\":%llu,\"echoed\":%llu,\"open_seconds\":%.3f", (unsigned long long)opened,
               (unsigned long long)echoed, (double)(open_done - g_start_ns) / 1e9);
        ops = echoed;
    } else if (O.mode != MODE_HANDSHAKE) {
        printf(",\"opened\":%llu", (unsigned long long)opened);
    }
    printf(",\"ops\":%llu,\"seconds\":%.3f,\"ops_per_s\":%.1f,\"bytes\":%llu,\"gbytes_per_s\":%.4f",
           (unsigned long long)ops, secs, secs > 0 ? (double)ops / secs : 0.0, (unsigned long long)bytes,
           secs > 0 ? (double)bytes / secs / 1e9 : 0.0);
    if (O.mode == MODE_PACED)
        /* sent < scheduled: the client itself could not keep the pace */
        printf(",\"rate\":%.1f,\"scheduled\":%.0f,\"sent\":%llu", O.rate, floor(O.rate * O.duration),
               (unsigned long long)sent);
    if (O.mode == MODE_BULK)
        printf(",\"direction\":\"%s\"", O.down ? "down" : "up");
    printf(",\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f",
           us(hist_quantile(h, 0.5)), us(hist_quantile(h, 0.9)), us(hist_quantile(h, 0.99)),
           us(hist_quantile(h, 0.999)), us(h->max), h->count ? us(h->sum / h->count) : 0.0);
    printf(",\"errors\":%llu,\"error_kinds\":{", (unsigned long long)errors);
    for (int e = 0; e < E_NKINDS; e++)
        printf("%s\"%s\":%llu", e ? "," : "", err_names[e], (unsigned long long)errs[e]);
    printf("}}\n");
    fflush(stdout);
    free(h);

    int bad = errors > 0 || (O.mode == MODE_IDLE && echoed < (uint64_t)O.conns);
    return bad && !O.allow_errors ? 1 : 0;
}

int main(int argc, char **argv)
{
    opts_parse(argc, argv);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    if (net_init() < 0) {
        fprintf(stderr, "sy-load: initialisation failed\n");
        return 3;
    }
    workers = calloc((size_t)O.threads, sizeof *workers);
    if (!workers)
        return 3;
    for (int t = 0; t < O.threads; t++)
        setup_worker(&workers[t], t, O.conns / O.threads + (t < O.conns % O.threads));

    g_start_ns = now_ns();
    for (int t = 0; t < O.threads; t++)
        if (pthread_create(&workers[t].tid, NULL, worker_main, &workers[t]) != 0) {
            perror("sy-load: pthread_create");
            return 3;
        }
    /* the open phase of each worker is bounded (load_run.c), so is this */
    while (atomic_load(&g_settled) < O.threads)
        usleep(2000);

    if (O.mode == MODE_IDLE) {
        uint64_t opened = 0, errors = 0;
        for (int t = 0; t < O.threads; t++) {
            opened += atomic_load(&workers[t].snap_opened);
            errors += atomic_load(&workers[t].snap_errors);
        }
        printf("{\"opened\":%llu,\"errors\":%llu}\n", (unsigned long long)opened, (unsigned long long)errors);
        fflush(stdout);
        wait_for_go();
    }
    atomic_store(&g_t0, now_ns());
    atomic_store(&g_phase, PH_RUN);
    for (int t = 0; t < O.threads; t++)
        pthread_join(workers[t].tid, NULL);
    return report();
}
