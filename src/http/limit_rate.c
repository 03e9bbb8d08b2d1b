/*
 * limit_rate.c - pacing of response bodies (limit_rate.h).
 *
 * The filter passes on at most what the budget allows:
 *     budget = after + rate * (elapsed + 1 s) - sent
 * (nginx's ngx_http_write_filter arithmetic, in milliseconds). When the
 * budget is spent, write() returns SY_AGAIN and arms a timer for the moment
 * enough is allowed again; the timer wakes the stream's handler (on_event)
 * as a writable client would. Nothing is buffered here.
 */
#include "http/limit_rate.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/arena.h"
#include "core/container.h"
#include "core/log.h"
#include "core/loop.h"
#include "http/vars_eval.h"

/* The smallest write worth waking up for (nginx's writes are at least a
 * buffer; one TCP segment keeps the pacing smooth). */
#define LR_MIN_CHUNK 1460

struct lr {
    struct resp_filter f;
    struct timer t;
    uint64_t rate;  /* bytes per second, > 0 */
    uint64_t after; /* bytes allowed before pacing */
    uint64_t start; /* loop_now() when the head went */
    uint64_t sent;  /* body bytes passed on */
};

/* Evaluate a size template (limit_rate, limit_rate_after); 0 when unset or
 * invalid (logged, as nginx ignores such a value). */
static uint64_t eval_size(struct client_stream *st, const struct tmpl *t, const char *what)
{
    if (!t)
        return 0;
    struct str v;
    uint64_t n;
    if (tmpl_eval(st, t, &v) != 0)
        return 0;
    if (str_to_size(v, &n) != 0) {
        char ctx[1500];
        stream_log_ctx(st, ctx, sizeof(ctx));
        sy_log(LOG_LVL_ERR, "*%llu invalid \"%s\" value \"%.*s\"%s", stream_conn_id(st), what,
               (int)v.len, v.p, ctx);
        return 0;
    }
    return n;
}

/* The rate of this response: what was assigned, else the location's value,
 * which then counts as assigned (so $limit_rate shows it in the log, as
 * nginx's write filter does). */
static uint64_t rate_in_force(struct client_stream *st)
{
    struct request *r = &st->req;
    if (!r->limit_rate_set) {
        r->limit_rate = (int64_t)eval_size(st, r->lc->limit_rate.rate, "limit_rate");
        r->limit_rate_set = 1;
    }
    return r->limit_rate > 0 ? (uint64_t)r->limit_rate : 0;
}

int limit_rate_value(struct client_stream *st, struct str *out)
{
    const struct request *r = &st->req;
    uint64_t rate = r->limit_rate_set && r->limit_rate > 0 ? (uint64_t)r->limit_rate : 0;
    char *p = arena_printf(&st->req.arena, "%llu", (unsigned long long)rate);
    if (!p)
        return -1;
    *out = str_from_cstr(p);
    return 0;
}

static int lr_wanted(const struct loc_conf *lc)
{
    return lc->limit_rate.rate != NULL || lc->limit_rate.assignable;
}

static void lr_wake(struct timer *t)
{
    struct lr *l = container_of(t, struct lr, t);
    struct client_stream *st = l->f.st;
    if (st->on_event)
        st->on_event(st, 0);
}

static struct resp_filter *lr_open(struct client_stream *st, struct resp_filter_head *h)
{
    if (h->header_only || h->head_request)
        return NULL;
    uint64_t rate = rate_in_force(st);
    if (rate == 0)
        return NULL;
    struct lr *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL; /* unpaced is a correct answer */
    l->rate = rate;
    l->after = eval_size(st, st->req.lc->limit_rate.after, "limit_rate_after");
    l->start = loop_now();
    l->t.cb = lr_wake;
    return &l->f;
}

/* Bytes that may go now (may be 0). */
static uint64_t budget(const struct lr *l)
{
    uint64_t elapsed = loop_now() - l->start + 1000;
    uint64_t allowed = l->after + (l->rate * elapsed) / 1000;
    return allowed > l->sent ? allowed - l->sent : 0;
}

static ssize_t lr_write(struct resp_filter *f, const struct iovec *iov, int n, int last)
{
    struct lr *l = (struct lr *)f;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    uint64_t can = budget(l);
    if (total > 0 && can == 0) {
        /* time until a segment's worth (or the rest) is allowed again */
        uint64_t want = total < LR_MIN_CHUNK ? total : LR_MIN_CHUNK;
        uint64_t ms = (want * 1000 + l->rate - 1) / l->rate;
        timer_set(&l->t, ms ? ms : 1);
        return SY_AGAIN;
    }
    if (total <= can) {
        ssize_t w = resp_filter_next_write(f, iov, n, last);
        if (w > 0)
            l->sent += (uint64_t)w;
        return w;
    }
    /* pass the first `can` bytes, not the end of the body */
    struct iovec part[8];
    int k = 0;
    size_t left = (size_t)can;
    for (int i = 0; i < n && left > 0 && k < 8; i++) {
        part[k].iov_base = iov[i].iov_base;
        part[k].iov_len = iov[i].iov_len < left ? iov[i].iov_len : left;
        left -= part[k].iov_len;
        k++;
    }
    ssize_t w = resp_filter_next_write(f, part, k, 0);
    if (w > 0) {
        l->sent += (uint64_t)w;
        /* the handler may wait for a writable client that already is: wake
         * it when the next bytes are due */
        if (!timer_armed(&l->t))
            timer_set(&l->t, (LR_MIN_CHUNK * 1000 + l->rate - 1) / l->rate);
    }
    return w;
}

static int lr_write_done(struct resp_filter *f)
{
    return resp_filter_next_done(f);
}

static int lr_resume(struct resp_filter *f)
{
    (void)f;
    return SY_OK; /* nothing is held here */
}

static void lr_close(struct resp_filter *f)
{
    struct lr *l = (struct lr *)f;
    timer_cancel(&l->t);
    free(l);
}

const struct resp_filter_type limit_rate_filter_type = {
    .name = "limit_rate",
    .wanted = lr_wanted,
    .open = lr_open,
    .write = lr_write,
    .write_done = lr_write_done,
    .resume = lr_resume,
    .close = lr_close,
};
