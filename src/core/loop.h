/*
 * loop.h - the per-worker event loop: epoll readiness, timers, posted
 * handlers and deferred frees. One loop per worker thread; workers share
 * nothing, so the loop is a process global (`sy_loop`).
 *
 * Each iteration: epoll_wait (timeout = nearest deadline) -> dispatch ready
 * handles -> run posted handlers -> expire timers -> run deferred frees.
 * Handles are registered once, edge-triggered, for both directions; code
 * keeps its own "ready" flags and only waits after EAGAIN.
 */
#ifndef SY_CORE_LOOP_H
#define SY_CORE_LOOP_H

#include <stdint.h>

/* epoll event bits, without pulling <sys/epoll.h> into every header. */
#define EPOLLIN_BIT    0x001u
#define EPOLLOUT_BIT   0x004u
#define EPOLLERR_BIT   0x008u
#define EPOLLHUP_BIT   0x010u
#define EPOLLRDHUP_BIT 0x2000u

struct handle;
typedef void handle_fn(struct handle *h, uint32_t events);

/* Something with an fd registered in epoll; epoll's data.ptr points at it. */
struct handle {
    int fd;
    handle_fn *on_io;           /* called with EPOLLIN/EPOLLOUT/EPOLLRDHUP/EPOLLERR/EPOLLHUP bits */
};

struct timer;
typedef void timer_fn(struct timer *t);

/*
 * A deadline. `when` may be moved later freely (just a store, decision 5):
 * the heap is keyed on `heap_when`, and an entry that pops early is re-queued
 * at its real deadline. Moving a deadline earlier goes through timer_set().
 */
struct timer {
    uint64_t when;              /* ms deadline; 0 = not armed */
    uint64_t heap_when;         /* key the heap is ordered on */
    uint32_t heap_idx;          /* position + 1 in the heap; 0 = not in the heap */
    timer_fn *cb;
};

/* A handler queued to run after the current dispatch batch. */
struct posted;
typedef void posted_fn(struct posted *p);
struct posted {
    struct posted *next;
    posted_fn *cb;
    int queued;
};

/* Initialise the loop of this worker. Returns 0 or -1 (errno set). */
int loop_init(void);
void loop_destroy(void);

/* Cached clock (CLOCK_MONOTONIC ms), refreshed once per iteration. */
uint64_t loop_now(void);
/* Wall clock in ms since the epoch, refreshed with loop_now. */
uint64_t loop_wall_ms(void);
void loop_update_time(void);

/* Register `h` (fd set) for EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET. 0 or -1. */
int loop_add(struct handle *h);
/* Register a listening socket: input only, level-triggered, and exclusive, so a
 * new connection wakes one worker instead of all of them. */
int loop_add_listener(struct handle *h);
/* Register for input only, level-triggered (signalfd and the like). */
int loop_add_input(struct handle *h);
/* Point an fd's registration at another handle (ownership moved): a table
 * store, no epoll_ctl. 0 or -1. */
int loop_rebind(struct handle *h);

/* Remove from epoll (closing the fd also does; use before handing an fd over). */
void loop_del(struct handle *h);

/* Arm `t` to fire `ms` from now (cancels nothing else). */
void timer_set(struct timer *t, uint64_t ms);
/* Disarm and leave the heap; safe when not armed. Required before the memory
 * holding `t` is freed. */
void timer_cancel(struct timer *t);
/*
 * Disarm lazily: only a store. The heap entry stays until it pops (and is
 * dropped, as `when` is 0) or the timer is re-armed at a deadline no earlier
 * than the entry's (a store again). For timers re-armed on every request
 * (a keep-alive connection's, a pooled upstream connection's) this takes the
 * heap out of the per-request path. The owner must still timer_cancel()
 * before freeing `t`.
 */
static inline void timer_stop(struct timer *t)
{
    t->when = 0;
}
static inline int timer_armed(const struct timer *t)
{
    return t->when != 0;
}

/* Queue `p` to run after the current batch (no-op when already queued). */
void loop_post(struct posted *p);
/* Remove `p` from the queue if queued. */
void loop_unpost(struct posted *p);

/*
 * Run `fn(arg)` at the end of this iteration, after every handler ran: used to
 * free connections closed during dispatch, so stale events in the same batch
 * still find valid memory.
 */
void loop_defer_free(void (*fn)(void *), void *arg);

/* Run one iteration (waits at most `max_wait_ms`, -1 = until a timer). */
void loop_run_once(int max_wait_ms);

extern volatile int sy_quit;   /* set by signal handlers: see proc/ */

#endif
