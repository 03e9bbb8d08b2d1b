/*
 * load_run - a sy-load worker thread: its event loop, and what each mode
 * does when a connection opens, gets a message, can write, or goes away.
 *
 * Phases (driven by main through g_phase): open the connections (at most
 * --inflight handshakes at a time), wait for PH_RUN, run the mode until its
 * deadline, then close every connection with a close handshake.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>

#include "load.h"

#define SWEEP_NS (100 * 1000000ull)   /* deadline checks */
#define OPEN_PHASE_MAX (600 * SEC)
#define PACED_DRAIN (2 * SEC)         /* echoes still awaited after the run */
#define RESTART_BACKOFF (10 * 1000000ull)
#define BULK_BATCH (512 * 1024)

static void sweep(struct lworker *w, uint64_t now)
{
    for (int i = 0; i < w->n; i++)
        conn_check_deadline(w, &w->c[i], now);
    w->last_sweep = now;
}

static void restart_due(struct lworker *w, uint64_t now)
{
    int keep = 0, n = w->nrestart;
    w->nrestart = 0;  /* conn_start may queue again (a failed connect) */
    uint32_t *due = w->restart_tmp;
    memcpy(due, w->restart, (size_t)n * sizeof *due);
    for (int i = 0; i < n; i++) {
        struct lconn *c = &w->c[due[i]];
        if (c->restart_at <= now && !w->stopping)
            conn_start(w, c);
        else if (!w->stopping)
            w->restart[w->nrestart + keep++] = due[i];
    }
    w->nrestart += keep;
}

/* epoll_wait with a nanosecond timeout (ws-paced sends on time); where
 * epoll_pwait2 is missing (kernel < 5.11, valgrind) milliseconds, rounded up. */
static int wait_events(int ep, struct epoll_event *evs, int max, uint64_t timeout_ns)
{
    static _Atomic int no_pwait2;
    if (!atomic_load(&no_pwait2)) {
        struct timespec ts = {.tv_sec = (time_t)(timeout_ns / SEC), .tv_nsec = (long)(timeout_ns % SEC)};
        int n = epoll_pwait2(ep, evs, max, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store(&no_pwait2, 1);
    }
    uint64_t ms = (timeout_ns + 999999) / 1000000;
    return epoll_wait(ep, evs, max, ms > 1000 ? 1000 : (int)ms);
}

/* One epoll round, the run queue, restarts and (every 100 ms) deadlines. */
static void loop_once(struct lworker *w, uint64_t timeout_ns)
{
    struct epoll_event evs[512];
    if (w->runq || w->nrestart)
        timeout_ns = w->runq ? 0 : timeout_ns < RESTART_BACKOFF ? timeout_ns : RESTART_BACKOFF;
    int n = wait_events(w->ep, evs, 512, timeout_ns);
    for (int i = 0; i < n; i++) {
        uint32_t idx = (uint32_t)evs[i].data.u64, gen = (uint32_t)(evs[i].data.u64 >> 32);
        struct lconn *c = &w->c[idx];
        if (c->gen == gen)
            conn_event(w, c, evs[i].events);
    }
    struct lconn *q = w->runq;
    w->runq = w->runq_tail = NULL;
    while (q) {
        struct lconn *c = q;
        q = q->next;
        c->on_runq = 0;
        if (c->state >= CS_READ_101)
            conn_event(w, c, EPOLLIN | EPOLLOUT);
    }
    uint64_t now = now_ns();
    if (w->nrestart)
        restart_due(w, now);
    if (now - w->last_sweep >= SWEEP_NS)
        sweep(w, now);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Serve events until `until` (ns) or until done(w) says so. */
static void run_until(struct lworker *w, uint64_t until, int (*done)(struct lworker *), uint64_t step)
{
    for (;;) {
        uint64_t now = now_ns();
        if (now >= until || (done && done(w)))
            return;
        loop_once(w, min_u64(until - now, step));
    }
}

/* ------------------------------------------------------------ ws-bulk upload */

/* Write batches of masked frames (only the 4-byte mask differs, see
 * conn_send_msg) until the socket is full; count a batch once written. */
static void bulk_pump(struct lworker *w, struct lconn *c)
{
    struct bulk *b = c->bulk;
    for (int iter = 0; iter < 64; iter++) {
        if (b->pos == b->total) {
            if (b->total) {
                w->ops += (uint64_t)b->nframes;
                w->bytes += (uint64_t)b->nframes * O.size;
                w->t_end = now_ns();
            }
            b->pos = b->total = 0;
            if (w->stopping) {
                conn_close_gently(w, c);
                return;
            }
            for (int f = 0; f < b->nframes; f++) {
                uint64_t r = rng_next(&w->rng);
                uint8_t mask[4];
                memcpy(mask, &r, 4);
                b->hl = ws_put_hdr(b->hdr[f], WS_BIN, 1, O.size, mask);
            }
            b->total = (size_t)b->nframes * (b->hl + O.size);
        }
        struct iovec iov[32];
        int cnt = 0;
        size_t skip = b->pos, want = 0;
        for (int f = 0; f < b->nframes; f++) {
            const void *part[2] = {b->hdr[f], g_payload};
            size_t len[2] = {b->hl, O.size};
            for (int j = 0; j < 2; j++) {
                if (skip >= len[j]) {
                    skip -= len[j];
                    continue;
                }
                iov[cnt++] = (struct iovec){(uint8_t *)part[j] + skip, len[j] - skip};
                want += len[j] - skip;
                skip = 0;
            }
        }
        ssize_t n = tr_writev(c, iov, cnt);
        if (n == -1)
            return;
        if (n <= 0) {
            conn_fail(w, c, E_CLOSED);
            return;
        }
        b->pos += (size_t)n;
        if (!c->ssl && (size_t)n < want)
            return;  /* socket full: EPOLLOUT follows */
    }
    runq_push(w, c);
}

/* ------------------------------------------------------------ mode hooks */

void mode_on_open(struct lworker *w, struct lconn *c)
{
    uint64_t now = now_ns();
    if (O.mode == MODE_HANDSHAKE) {
        if (!w->stopping) {
            hist_add(&w->hist, now - c->t0);
            w->ops++;
        }
        conn_close_gently(w, c);
        return;
    }
    w->opened++;
    w->live_open++;
}

void mode_on_message(struct lworker *w, struct lconn *c, uint64_t len)
{
    uint64_t now = now_ns();
    switch (O.mode) {
    case MODE_ECHO:
        if (!c->waiting)
            return;
        c->waiting = 0;
        if (w->stopping)
            return;
        if (len != O.size)
            w->errors[E_PROTOCOL]++;
        hist_add(&w->hist, now - c->t0);
        w->ops++;
        w->bytes += len;
        if (c->state == CS_OPEN) {
            c->waiting = 1;
            c->t0 = now;
            conn_send_msg(w, c, 0);
        }
        return;
    case MODE_IDLE:
        if (!c->waiting)
            return;
        c->waiting = 0;
        w->pending--;
        w->echoed++;
        w->bytes += len;
        hist_add(&w->hist, now - c->t0);
        return;
    case MODE_PACED:
        if (!c->inflight)
            return;
        c->inflight--;
        w->pending--;
        if (c->ts_got == 8) {
            uint64_t ts;
            memcpy(&ts, c->ts, 8);
            hist_add(&w->hist, now > ts ? now - ts : 0);
        }
        w->ops++;
        w->bytes += len;
        return;
    case MODE_BULK:
        if (O.down && atomic_load(&g_phase) == PH_RUN && !w->stopping) {
            w->ops++;
            w->bytes += len;
        }
        return;
    case MODE_HANDSHAKE:
        return;
    }
}

void mode_on_writable(struct lworker *w, struct lconn *c)
{
    if (O.mode == MODE_BULK && c->bulk && atomic_load(&g_phase) == PH_RUN)
        bulk_pump(w, c);
}

void mode_on_gone(struct lworker *w, struct lconn *c, int was_open, int ok)
{
    if (was_open && O.mode != MODE_HANDSHAKE)
        w->live_open--;
    if (c->waiting) {
        c->waiting = 0;
        if (O.mode == MODE_IDLE)
            w->pending--;
    }
    if (c->inflight) {  /* ws-paced messages that will never come back */
        w->errors[E_LOST] += c->inflight;
        w->pending -= c->inflight;
        c->inflight = 0;
    }
    free(c->bulk);
    c->bulk = NULL;
    if (O.mode == MODE_HANDSHAKE && !w->stopping && atomic_load(&g_phase) == PH_RUN) {
        /* restarted from the loop, never from inside a connection's own
         * event handling; after a failure not at once */
        c->restart_at = now_ns() + (ok ? 0 : RESTART_BACKOFF);
        w->restart[w->nrestart++] = c->idx;
    }
}

/* ------------------------------------------------------------ phases */

static int all_started(struct lworker *w)
{
    return w->next_start >= w->n && w->starting == 0;
}

static void open_phase(struct lworker *w)
{
    int limit = O.inflight / O.threads;
    if (limit < 1)
        limit = 1;
    uint64_t until = now_ns() + OPEN_PHASE_MAX;
    while (!all_started(w) && now_ns() < until) {
        while (w->starting < limit && w->next_start < w->n)
            conn_start(w, &w->c[w->next_start++]);
        loop_once(w, 10 * 1000000ull);
    }
    /* whatever did not make it in time */
    for (int i = 0; i < w->n; i++)
        if (w->c[i].state != CS_IDLE && w->c[i].state < CS_OPEN)
            conn_fail(w, &w->c[i], E_TIMEOUT);
}

static int nothing_pending(struct lworker *w)
{
    return w->pending == 0;
}

/* What was awaited and not seen is counted once, here: late echoes and
 * closes after this do not count again. */
static void forget_pending(struct lworker *w)
{
    for (int i = 0; i < w->n; i++) {
        w->c[i].inflight = 0;
        w->c[i].waiting = 0;
    }
    w->pending = 0;
}

static void run_paced(struct lworker *w, uint64_t t0, uint64_t until)
{
    int nopen = 0;
    for (int i = 0; i < w->n; i++)
        if (w->c[i].state == CS_OPEN)
            w->open_idx[nopen++] = (uint32_t)i;
    double rate = O.rate * w->n / O.conns;  /* this worker's share */
    uint64_t k = 0;
    while (nopen) {
        uint64_t now = now_ns();
        if (now >= until)
            break;
        /* every send due by now, each stamped with its scheduled time */
        for (int burst = 0; burst < 4096; burst++) {
            uint64_t t = t0 + (uint64_t)((double)k * 1e9 / rate);
            if (t > now || t >= until)
                break;
            struct lconn *c = &w->c[w->open_idx[k % (uint64_t)nopen]];
            k++;
            if (c->state != CS_OPEN)
                continue;  /* its loss was counted when it closed */
            c->inflight++;
            w->pending++;
            conn_send_msg(w, c, t);
        }
        uint64_t next = t0 + (uint64_t)((double)k * 1e9 / rate);
        now = now_ns();
        loop_once(w, next > now ? min_u64(next - now, until - now) : 0);
    }
    w->t_end = until;
    run_until(w, until + PACED_DRAIN, nothing_pending, 10 * 1000000ull);
    w->errors[E_LOST] += w->pending;
    forget_pending(w);
}

static void run_mode(struct lworker *w)
{
    uint64_t t0 = atomic_load(&g_t0);
    uint64_t until = t0 + (uint64_t)(O.duration * 1e9);
    w->t_start = t0;
    switch (O.mode) {
    case MODE_ECHO:
        for (int i = 0; i < w->n; i++) {
            struct lconn *c = &w->c[i];
            if (c->state == CS_OPEN) {
                c->waiting = 1;
                c->t0 = now_ns();
                conn_send_msg(w, c, 0);
            }
        }
        run_until(w, until, NULL, 100 * 1000000ull);
        w->t_end = now_ns();
        break;
    case MODE_PACED:
        run_paced(w, t0, until);
        break;
    case MODE_HANDSHAKE:
        for (int i = 0; i < w->n; i++)
            conn_start(w, &w->c[i]);
        run_until(w, until, NULL, 10 * 1000000ull);
        w->t_end = now_ns();
        w->stopping = 1;
        for (int i = 0; i < w->n; i++)  /* cut what is in progress, no error */
            conn_drop(w, &w->c[i]);
        break;
    case MODE_BULK:
        if (!O.down)
            for (int i = 0; i < w->n; i++) {
                struct lconn *c = &w->c[i];
                if (c->state != CS_OPEN)
                    continue;
                c->bulk = calloc(1, sizeof *c->bulk);
                if (!c->bulk)
                    exit(3);
                int nf = (int)(BULK_BATCH / (O.size + WS_MAX_HDR));
                c->bulk->nframes = nf < 1 ? 1 : nf > 16 ? 16 : nf;
                bulk_pump(w, c);
            }
        run_until(w, until, NULL, 100 * 1000000ull);
        w->t_end = now_ns();
        break;
    case MODE_IDLE:
        w->t_start = now_ns();
        for (int i = 0; i < w->n; i++) {
            struct lconn *c = &w->c[i];
            if (c->state == CS_OPEN) {
                c->waiting = 1;
                w->pending++;
                c->t0 = now_ns();
                conn_send_msg(w, c, 0);
            }
        }
        run_until(w, w->t_start + (uint64_t)(O.timeout * 1e9), nothing_pending, 100 * 1000000ull);
        w->t_end = now_ns();
        w->errors[E_TIMEOUT] += w->pending;
        forget_pending(w);
        break;
    }
}

/* Close handshakes on everything still open, bounded in time. */
static int all_closed(struct lworker *w)
{
    return w->live == 0;
}

static void close_phase(struct lworker *w)
{
    w->stopping = 1;
    for (int i = 0; i < w->n; i++) {
        struct lconn *c = &w->c[i];
        if (c->bulk && c->state == CS_OPEN && c->bulk->pos != c->bulk->total)
            bulk_pump(w, c);  /* finishes its frames, then closes */
        else
            conn_close_gently(w, c);
    }
    run_until(w, now_ns() + CLOSE_TIMEOUT + SEC, all_closed, 10 * 1000000ull);
    for (int i = 0; i < w->n; i++)
        conn_drop(w, &w->c[i]);
}

void *worker_main(void *arg)
{
    struct lworker *w = arg;
    /* epoll timeouts are otherwise up to 50 us late (default timer slack),
     * which ws-paced would report as latency */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    w->last_sweep = now_ns();
    if (O.mode != MODE_HANDSHAKE)
        open_phase(w);
    w->t_open_done = now_ns();
    uint64_t errs = 0;
    for (int e = 0; e < E_NKINDS; e++)
        errs += w->errors[e];
    atomic_store(&w->snap_opened, w->opened);
    atomic_store(&w->snap_errors, errs);
    atomic_fetch_add(&g_settled, 1);
    /* main starts the run when every worker is ready (ws-idle: after the
     * hold); keep serving meanwhile (pings, closes, a source's data) */
    while (atomic_load(&g_phase) == PH_OPEN)
        loop_once(w, 2 * 1000000ull);
    if (atomic_load(&g_phase) == PH_RUN)
        run_mode(w);
    close_phase(w);
    return NULL;
}
