/*
 * loop.c - epoll event loop with a lazy min-heap of timers (see loop.h).
 */
#include "core/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256

struct deferred {
    void (*fn)(void *);
    void *arg;
};

/*
 * Registrations: epoll's data is (generation << 32 | fd), and slots[fd] says
 * which handle the fd belongs to now. Handing a socket to another handle (a
 * connection becoming a tunnel) is then a store, not an epoll_ctl(MOD); the
 * generation, bumped at every registration, keeps an event from an fd closed
 * and reused within one batch away from the new owner.
 */
struct slot {
    struct handle *h;
    uint32_t gen;
};

static struct {
    int epfd;
    struct slot *slots;
    uint32_t nslots;
    uint64_t now;               /* monotonic ms */
    uint64_t wall;              /* realtime ms */
    struct timer **heap;        /* 0-based array; heap_idx is index + 1 */
    uint32_t nheap, capheap;
    struct posted *post_head, *post_tail;
    struct posted *run_head, *run_last; /* the batch run_posted() is running */
    struct deferred *defer;
    uint32_t ndefer, capdefer;
} L = {.epfd = -1};

volatile int sy_quit;

void loop_update_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    L.now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    clock_gettime(CLOCK_REALTIME, &ts);
    L.wall = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t loop_now(void)
{
    return L.now;
}

uint64_t loop_wall_ms(void)
{
    return L.wall;
}

int loop_init(void)
{
    L.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (L.epfd < 0)
        return -1;
    loop_update_time();
    return 0;
}

void loop_destroy(void)
{
    if (L.epfd >= 0)
        close(L.epfd);
    L.epfd = -1;
    free(L.heap);
    L.heap = NULL;
    L.nheap = L.capheap = 0;
    free(L.defer);
    L.defer = NULL;
    L.ndefer = L.capdefer = 0;
    free(L.slots);
    L.slots = NULL;
    L.nslots = 0;
}

static int slot_claim(struct handle *h, uint64_t *data)
{
    if (h->fd < 0) {
        errno = EBADF;
        return -1;
    }
    uint32_t fd = (uint32_t)h->fd;
    if (fd >= L.nslots) {
        uint32_t n = L.nslots ? L.nslots : 1024;
        while (n <= fd)
            n *= 2;
        struct slot *s = realloc(L.slots, n * sizeof(*s));
        if (!s)
            return -1;
        memset(s + L.nslots, 0, (n - L.nslots) * sizeof(*s));
        L.slots = s;
        L.nslots = n;
    }
    L.slots[fd].gen++;
    L.slots[fd].h = h;
    *data = (uint64_t)L.slots[fd].gen << 32 | fd;
    return 0;
}

static int add(struct handle *h, uint32_t events)
{
    uint64_t data;
    if (slot_claim(h, &data) < 0)
        return -1;
    struct epoll_event ev = {.events = events, .data.u64 = data};
    if (epoll_ctl(L.epfd, EPOLL_CTL_ADD, h->fd, &ev) < 0) {
        L.slots[h->fd].h = NULL;
        return -1;
    }
    return 0;
}

int loop_add(struct handle *h)
{
    return add(h, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
}

int loop_add_listener(struct handle *h)
{
    return add(h, EPOLLIN | EPOLLEXCLUSIVE);
}

int loop_add_input(struct handle *h)
{
    return add(h, EPOLLIN);
}

int loop_rebind(struct handle *h)
{
    if (h->fd < 0 || (uint32_t)h->fd >= L.nslots || !L.slots[h->fd].h) {
        errno = EBADF;
        return -1;
    }
    L.slots[h->fd].h = h; /* same registration, same generation: no syscall */
    return 0;
}

void loop_del(struct handle *h)
{
    if (h->fd < 0)
        return;
    if ((uint32_t)h->fd < L.nslots && L.slots[h->fd].h == h)
        L.slots[h->fd].h = NULL;
    epoll_ctl(L.epfd, EPOLL_CTL_DEL, h->fd, NULL);
}

/* ---- timer heap ---- */

static void heap_swap(uint32_t a, uint32_t b)
{
    struct timer *t = L.heap[a];
    L.heap[a] = L.heap[b];
    L.heap[b] = t;
    L.heap[a]->heap_idx = a + 1;
    L.heap[b]->heap_idx = b + 1;
}

static void heap_up(uint32_t i)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (L.heap[parent]->heap_when <= L.heap[i]->heap_when)
            break;
        heap_swap(i, parent);
        i = parent;
    }
}

static void heap_down(uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < L.nheap && L.heap[l]->heap_when < L.heap[m]->heap_when)
            m = l;
        if (r < L.nheap && L.heap[r]->heap_when < L.heap[m]->heap_when)
            m = r;
        if (m == i)
            break;
        heap_swap(i, m);
        i = m;
    }
}

static void heap_remove(struct timer *t)
{
    uint32_t i = t->heap_idx - 1;
    L.nheap--;
    if (i != L.nheap) {
        L.heap[i] = L.heap[L.nheap];
        L.heap[i]->heap_idx = i + 1;
        heap_down(i);
        heap_up(i);
    }
    t->heap_idx = 0;
}

static int heap_push(struct timer *t)
{
    if (L.nheap == L.capheap) {
        uint32_t cap = L.capheap ? L.capheap * 2 : 256;
        struct timer **nh = realloc(L.heap, cap * sizeof(*nh));
        if (!nh)
            return -1;
        L.heap = nh;
        L.capheap = cap;
    }
    L.heap[L.nheap] = t;
    t->heap_idx = ++L.nheap;
    heap_up(L.nheap - 1);
    return 0;
}

void timer_set(struct timer *t, uint64_t ms)
{
    uint64_t when = L.now + ms;
    if (when == 0)
        when = 1;
    t->when = when;
    if (t->heap_idx) {
        /* Later deadline: leave the heap entry, it is corrected when it pops. */
        if (when >= t->heap_when)
            return;
        heap_remove(t);
    }
    t->heap_when = when;
    if (heap_push(t) < 0) {
        /* Out of memory for the heap: keep the timer disarmed rather than lose track. */
        t->when = 0;
    }
}

void timer_cancel(struct timer *t)
{
    t->when = 0;
    if (t->heap_idx)
        heap_remove(t);
}

static void timers_expire(void)
{
    while (L.nheap > 0) {
        struct timer *t = L.heap[0];
        if (t->heap_when > L.now)
            break;
        heap_remove(t);
        if (t->when == 0)
            continue;
        if (t->when > L.now) {
            /* Deadline moved later: re-queue at the real deadline. */
            t->heap_when = t->when;
            if (heap_push(t) < 0)
                t->when = 0;
            continue;
        }
        t->when = 0;
        t->cb(t);
    }
}

static int next_timeout(int max_wait_ms)
{
    if (L.post_head)
        return 0;
    if (L.nheap == 0)
        return max_wait_ms;
    uint64_t first = L.heap[0]->heap_when;
    int ms = first <= L.now ? 0 : (first - L.now > 3600000 ? 3600000 : (int)(first - L.now));
    if (max_wait_ms >= 0 && max_wait_ms < ms)
        ms = max_wait_ms;
    return ms;
}

/* ---- posted handlers ---- */

void loop_post(struct posted *p)
{
    if (p->queued)
        return;
    p->queued = 1;
    p->next = NULL;
    if (L.post_tail)
        L.post_tail->next = p;
    else
        L.post_head = p;
    L.post_tail = p;
}

/* Take `p` out of the list that starts at *head and ends at *tail. */
static int list_remove(struct posted **head, struct posted **tail, struct posted *p)
{
    struct posted *prev = NULL;
    for (struct posted *q = *head; q; prev = q, q = q == *tail ? NULL : q->next) {
        if (q != p)
            continue;
        if (prev)
            prev->next = p->next;
        else
            *head = p == *tail ? NULL : p->next;
        if (*tail == p) {
            *tail = prev;
            if (!prev)
                *head = NULL;
        }
        return 1;
    }
    return 0;
}

void loop_unpost(struct posted *p)
{
    if (!p->queued)
        return;
    /* Queued for the next batch, or waiting in the batch being run (a
     * handler may unpost another one's entry before it runs, e.g. when it
     * frees it). */
    if (!list_remove(&L.post_head, &L.post_tail, p))
        list_remove(&L.run_head, &L.run_last, p);
    p->queued = 0;
    p->next = NULL;
}

static void run_posted(void)
{
    /* Only run what was queued before we started, so a handler that re-posts
     * itself yields to epoll (fairness). The batch stays reachable from L so
     * loop_unpost() can take entries out of it. */
    L.run_head = L.post_head;
    L.run_last = L.post_tail;
    L.post_head = L.post_tail = NULL;
    while (L.run_head) {
        struct posted *p = L.run_head;
        L.run_head = p == L.run_last ? NULL : p->next;
        if (!L.run_head)
            L.run_last = NULL;
        p->queued = 0;
        p->next = NULL;
        p->cb(p);
    }
}

void loop_defer_free(void (*fn)(void *), void *arg)
{
    if (L.ndefer == L.capdefer) {
        uint32_t cap = L.capdefer ? L.capdefer * 2 : 64;
        struct deferred *nd = realloc(L.defer, cap * sizeof(*nd));
        if (!nd) {
            /* Cannot defer: free now. Callers only defer memory that no pending
             * event in this batch can reach except through a closed flag. */
            fn(arg);
            return;
        }
        L.defer = nd;
        L.capdefer = cap;
    }
    L.defer[L.ndefer].fn = fn;
    L.defer[L.ndefer].arg = arg;
    L.ndefer++;
}

static void run_deferred(void)
{
    for (uint32_t i = 0; i < L.ndefer; i++)
        L.defer[i].fn(L.defer[i].arg);
    L.ndefer = 0;
}

void loop_run_once(int max_wait_ms)
{
    struct epoll_event evs[LOOP_MAX_EVENTS];
    int n = epoll_wait(L.epfd, evs, LOOP_MAX_EVENTS, next_timeout(max_wait_ms));
    loop_update_time();
    for (int i = 0; i < n; i++) {
        uint32_t fd = (uint32_t)evs[i].data.u64, gen = (uint32_t)(evs[i].data.u64 >> 32);
        if (fd >= L.nslots || L.slots[fd].gen != gen || !L.slots[fd].h)
            continue; /* unregistered, or the fd was closed and reused meanwhile */
        struct handle *h = L.slots[fd].h;
        h->on_io(h, evs[i].events);
    }
    if (n < 0 && errno != EINTR) {
        /* epoll_wait failing is not recoverable in a useful way; avoid a hot loop. */
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    run_posted();
    timers_expire();
    run_deferred();
}
