/*
 * worker.c - one worker's life (see worker.h).
 *
 * Signals are read from a signalfd registered in the loop, so a signal never
 * interrupts a handler half-way and never races with epoll_wait:
 *   SIGHUP  reload (parse, check, swap the generation; old one freed when
 *           its last request ends)       SIGUSR1 reopen logs
 *   SIGQUIT graceful stop                 SIGTERM/SIGINT fast stop
 */
#include "proc/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/snapshot.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/live.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/net.h"
#include "core/shm_zone.h"
#include "client/h1_session.h"
#include "client/h2_session.h"
#include "http/phases.h"
#include "http/subrequest.h"
#include "http/router.h"
#include "proxy/cache_manager.h"
#include "proxy/proxy.h"
#include "proxy/tunnel.h"
#include "proxy/upstream.h"
#include "core/metrics.h"

#define MAX_LISTENERS 256
/* After the close frames of a shutdown: time for the close handshakes (the
 * tunnels' own linger is 5 s; a peer that does not answer is cut then). */
#define TUNNEL_CLOSE_GRACE_MS 6000

static struct listener *listeners[MAX_LISTENERS];
static unsigned nlisteners;

/* Listening sockets handed over by the previous binary (SIGUSR2, nginx's
 * binary upgrade): SWITCHYARD_LISTENERS="fd;fd;...". -1 once taken. */
#define INHERIT_ENV "SWITCHYARD_LISTENERS"
static int inherited[MAX_LISTENERS];
static unsigned ninherited;
static int was_inherited;
static pid_t inherited_from; /* the old binary's master */
static pid_t master_pid; /* our master, when there is one */
static int accepting = 1; /* 0 once stopping */
static int paused;        /* worker_connections reached: listeners unregistered */

static struct {
    int reload, reopen, graceful, fast;
} pending;
static int master_channel; /* reloads are driven by the master (worker_send_reload) */
static int reload_snap = -1; /* the snapshot the next reload loads from (or the disk) */

static int same_addr(const struct sockaddr_storage *a, socklen_t al,
                     const struct sockaddr_storage *b, socklen_t bl)
{
    return al == bl && memcmp(a, b, al) == 0;
}

/* The inherited socket bound to `addr`, or -1. */
static int take_inherited(const struct sockaddr_storage *addr, socklen_t len)
{
    for (unsigned k = 0; k < ninherited; k++) {
        if (inherited[k] < 0)
            continue;
        struct sockaddr_storage a;
        socklen_t al = sizeof(a);
        if (getsockname(inherited[k], (struct sockaddr *)&a, &al) == 0 &&
            same_addr(&a, al, addr, len)) {
            int fd = inherited[k];
            inherited[k] = -1;
            fcntl(fd, F_SETFD, FD_CLOEXEC);
            return fd;
        }
    }
    return -1;
}

/* Read SWITCHYARD_LISTENERS (once, at start). */
static void read_inherited(void)
{
    const char *v = getenv(INHERIT_ENV);
    if (!v)
        return;
    was_inherited = 1;
    inherited_from = getppid();
    while (*v && ninherited < MAX_LISTENERS) {
        char *end;
        long fd = strtol(v, &end, 10);
        if (end == v || fd < 0 || fd > INT_MAX) {
            sy_log_stderr(LOG_LVL_EMERG, "invalid socket number \"%s\" in environment "
                          "variable " INHERIT_ENV " ignoring the rest of the variable", v);
            break;
        }
        if (fcntl((int)fd, F_GETFD) >= 0)
            inherited[ninherited++] = (int)fd;
        v = *end == ';' ? end + 1 : end;
    }
    unsetenv(INHERIT_ENV);
}

int worker_inherited(void)
{
    return was_inherited;
}

int worker_old_binary_running(void)
{
    return was_inherited && getppid() == inherited_from;
}

unsigned worker_listener_fds(int *fds, unsigned max)
{
    unsigned n = 0;
    for (unsigned j = 0; j < nlisteners && n < max; j++)
        fds[n++] = listeners[j]->h.fd;
    return n;
}

/* Point each listener at its listen_conf in `gen`; open new ones; close the
 * ones the configuration no longer has. Returns 0 or -1. */
static int sync_listeners(struct generation *gen, int registered)
{
    if (!gen->http)
        return 0;
    int keep[MAX_LISTENERS] = {0};
    for (unsigned i = 0; i < gen->http->nlistens; i++) {
        const struct listen_conf *lc = gen->http->listens[i];
        unsigned j;
        for (j = 0; j < nlisteners; j++)
            if (same_addr(&listeners[j]->addr, listeners[j]->addrlen, &lc->addr, lc->addrlen))
                break;
        if (j < nlisteners) {
            listeners[j]->listen_index = i;
            keep[j] = 1;
            continue;
        }
        if (nlisteners == MAX_LISTENERS) {
            sy_log_stderr(LOG_LVL_EMERG, "too many listening sockets");
            return -1;
        }
        const char *what = "socket()";
        int fd = take_inherited(&lc->addr, lc->addrlen);
        if (fd < 0)
            fd = net_listen((const struct sockaddr *)&lc->addr, lc->addrlen,
                            lc->backlog > 0 ? lc->backlog : 511, lc->reuseport, lc->ipv6only,
                            &what);
        if (fd < 0) {
            sy_log_stderr(LOG_LVL_EMERG, "%s to %s failed (%d: %s)", what, lc->text, errno,
                          strerror(errno));
            return -1;
        }
        struct listener *l = calloc(1, sizeof(*l));
        if (!l) {
            close(fd);
            return -1;
        }
        l->h.fd = fd;
        l->h.on_io = h1_on_accept;
        memcpy(&l->addr, &lc->addr, lc->addrlen);
        l->addrlen = lc->addrlen;
        l->listen_index = i;
        keep[nlisteners] = 1;
        listeners[nlisteners++] = l;
        if (registered && accepting && !paused)
            loop_add_listener(&l->h);
    }
    for (unsigned j = 0; j < nlisteners;) {
        if (keep[j]) {
            j++;
            continue;
        }
        close(listeners[j]->h.fd);
        free(listeners[j]);
        listeners[j] = listeners[nlisteners - 1];
        keep[j] = keep[nlisteners - 1];
        nlisteners--;
    }
    return 0;
}

int worker_open_listeners(struct gen_rt *rt)
{
    read_inherited();
    int rc = sync_listeners(rt->gen, 0);
    /* sockets of the old binary this configuration no longer listens on */
    for (unsigned k = 0; k < ninherited; k++)
        if (inherited[k] >= 0)
            close(inherited[k]);
    ninherited = 0;
    return rc;
}

int worker_sync_listeners(struct generation *gen)
{
    return sync_listeners(gen, 0);
}

/* One reload message: the addresses, in the order of the fds attached; then,
 * when `snap` is set, one more fd: the configuration snapshot to load. */
#define CTL_MAX_FDS 250
struct ctl_msg {
    uint32_t n;
    uint32_t snap;
    struct {
        struct sockaddr_storage addr;
        socklen_t len;
    } a[CTL_MAX_FDS];
};

int worker_send_reload(int ctl_fd, int snap_fd)
{
    static struct ctl_msg m;
    unsigned n = nlisteners < CTL_MAX_FDS ? nlisteners : CTL_MAX_FDS;
    m.n = n;
    m.snap = snap_fd >= 0;
    unsigned nfds = n + m.snap;
    char cbuf[CMSG_SPACE(sizeof(int) * (CTL_MAX_FDS + 1))];
    memset(cbuf, 0, sizeof(cbuf));
    for (unsigned j = 0; j < n; j++) {
        m.a[j].addr = listeners[j]->addr;
        m.a[j].len = listeners[j]->addrlen;
    }
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        mh.msg_control = cbuf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        int *fds = (int *)CMSG_DATA(c);
        for (unsigned j = 0; j < n; j++)
            fds[j] = listeners[j]->h.fd;
        if (m.snap)
            fds[n] = snap_fd;
    }
    return sendmsg(ctl_fd, &mh, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

/*
 * Worker side: adopt the master's listening sockets. An address we already
 * serve keeps our (identical) socket; a new one becomes a listener; one the
 * master no longer has is closed.
 */
static void adopt_listeners(const struct ctl_msg *m, const int *fds, unsigned nfds)
{
    int keep[MAX_LISTENERS] = {0};
    for (unsigned k = 0; k < m->n && k < nfds; k++) {
        unsigned j;
        for (j = 0; j < nlisteners; j++)
            if (same_addr(&listeners[j]->addr, listeners[j]->addrlen, &m->a[k].addr, m->a[k].len))
                break;
        if (j < nlisteners) {
            keep[j] = 1;
            close(fds[k]);
            continue;
        }
        struct listener *l = nlisteners < MAX_LISTENERS ? calloc(1, sizeof(*l)) : NULL;
        if (!l) {
            close(fds[k]);
            continue;
        }
        l->h.fd = fds[k];
        l->h.on_io = h1_on_accept;
        l->addr = m->a[k].addr;
        l->addrlen = m->a[k].len;
        keep[nlisteners] = 1;
        listeners[nlisteners++] = l;
        if (accepting && !paused)
            loop_add_listener(&l->h);
    }
    for (unsigned j = 0; j < nlisteners;) {
        if (keep[j]) {
            j++;
            continue;
        }
        loop_del(&listeners[j]->h);
        close(listeners[j]->h.fd);
        free(listeners[j]);
        listeners[j] = listeners[nlisteners - 1];
        keep[j] = keep[nlisteners - 1];
        nlisteners--;
    }
}

struct ctl_handle {
    struct handle h;
};

static void on_ctl(struct handle *h, uint32_t events)
{
    (void)events;
    static struct ctl_msg m;
    char cbuf[CMSG_SPACE(sizeof(int) * (CTL_MAX_FDS + 1))];
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof(cbuf)};
    ssize_t r = recvmsg(h->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (r == 0) {
        /* The master closed the channel: it retires this worker (it still
         * is our parent; a SIGQUIT follows), or it is gone and nobody
         * supervises us any more. */
        if (getppid() == master_pid)
            sy_log(LOG_LVL_NOTICE, "retired by the master process, shutting down");
        else
            sy_log(LOG_LVL_ALERT, "master process exited, shutting down");
        pending.graceful = 1;
        loop_del(h);
        return;
    }
    if (r < (ssize_t)sizeof(uint32_t))
        return;
    int *fds = NULL;
    unsigned nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            fds = (int *)CMSG_DATA(c);
            nfds = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        }
    if (shm_zone_is_ctl_msg(&m, (size_t)r)) {
        /* The master's shared zones, sent before a reload order. */
        shm_zone_adopt(&m, (size_t)r, fds, nfds);
        return;
    }
    if (m.snap && nfds > 0) {
        /* The last fd is the snapshot of the configuration the master checked. */
        if (reload_snap >= 0)
            close(reload_snap);
        reload_snap = fds[--nfds];
    }
    adopt_listeners(&m, fds, nfds);
    pending.reload = 1;
}

void worker_close_listeners(void)
{
    for (unsigned j = 0; j < nlisteners; j++) {
        if (listeners[j]->h.fd >= 0)
            close(listeners[j]->h.fd);
        free(listeners[j]);
    }
    nlisteners = 0;
}

/* worker_connections reached (h1_accept_full): unregister the listeners. */
static void pause_accepting(void)
{
    if (!accepting || paused)
        return;
    paused = 1;
    for (unsigned j = 0; j < nlisteners; j++)
        loop_del(&listeners[j]->h);
}

/* Register the listeners again once below the limit. */
static void maybe_resume_accepting(void)
{
    if (!paused || !accepting)
        return;
    int64_t limit = rt_current->gen->main.worker_connections;
    if ((int64_t)(h1_active_conns + h2_active_conns + tunnel_count) >= limit)
        return;
    paused = 0;
    for (unsigned j = 0; j < nlisteners; j++)
        loop_add_listener(&listeners[j]->h);
    sy_log(LOG_LVL_NOTICE, "accepting connections again");
}

/* Graceful stop: close our listening sockets (as nginx does), so that once
 * no process holds them new connections are refused instead of waiting in a
 * backlog nobody accepts from. */
static void stop_accepting(void)
{
    if (!accepting)
        return;
    accepting = 0;
    if (!paused)
        for (unsigned j = 0; j < nlisteners; j++)
            loop_del(&listeners[j]->h);
    worker_close_listeners();
}

static void do_reload(const struct worker_opts *o)
{
    char err[8192] = "", warn[4096] = "";
    sy_log(LOG_LVL_NOTICE, "signal 1 (SIGHUP) received, reconfiguring");
    /* Under a master, load the bytes it read and checked (as root): the
     * configuration and keys may not even be readable by this worker. */
    int replay = reload_snap >= 0 && snap_replay_begin(reload_snap) == 0;
    struct generation *gen =
        gen_load(o->prefix, o->conf_path, o->g_directives, err, sizeof(err), warn, sizeof(warn));
    if (replay)
        snap_replay_end();
    if (reload_snap >= 0) {
        close(reload_snap);
        reload_snap = -1;
    }
    if (!gen) {
        sy_log_lines(LOG_LVL_EMERG, err, 0);
        sy_log(LOG_LVL_ALERT, "reload failed, still running with the previous configuration");
        if (!master_channel) /* else the master tells the status page */
            live_reload(0, 0, err);
        return;
    }
    if (warn[0]) {
        char *line = strtok(warn, "\n");
        while (line) {
            sy_log(LOG_LVL_WARN, "%s", line);
            line = strtok(NULL, "\n");
        }
    }
    if (sync_listeners(gen, 1) < 0) {
        gen_free(gen);
        sy_log(LOG_LVL_ALERT, "reload failed, still running with the previous configuration");
        return;
    }
    struct gen_rt *rt = rt_create(gen);
    if (!rt)
        return;
    gen->serial = rt_current->gen->serial + 1;
    if (log_open(gen->main.error_log_path, gen->main.error_log_level) < 0)
        sy_log(LOG_LVL_ALERT, "could not open error log \"%s\"", gen->main.error_log_path);
    struct gen_rt *old = rt_current;
    rt_current = rt;
    rt_release(old);
    sy_log(LOG_LVL_NOTICE, "configuration generation %llu is live",
           (unsigned long long)gen->serial);
    if (!master_channel) /* else the master tells the status page */
        live_reload(1, gen->serial, NULL);
}

struct sig_handle {
    struct handle h;
};

/*
 * Give memory freed after a burst (handshake buffers, request arenas) back to
 * the kernel: glibc keeps free heap pages mapped, so without this a worker's
 * RSS stays at its busiest moment even when only idle tunnels remain. Every
 * 5 s, and only when connections came or went since the last time.
 */
#define TRIM_INTERVAL_MS 5000
static struct timer trim_timer;
static uint64_t trim_mark;

static void on_trim(struct timer *t)
{
    struct buf_stats bs;
    buf_stats(&bs);
    uint64_t mark = h1_next_session_id() + bs.allocs;
    if (mark != trim_mark) {
        trim_mark = mark;
        proxy_cache_release();
        arena_cache_release();
        malloc_trim(0);
    }
    timer_set(t, TRIM_INTERVAL_MS);
}

static void on_signal(struct handle *h, uint32_t events)
{
    (void)events;
    struct signalfd_siginfo si;
    while (read(h->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGHUP:
            /* Under a master, reloads come over the channel with the sockets. */
            if (!master_channel)
                pending.reload = 1;
            break;
        case SIGUSR1: pending.reopen = 1; break;
        case SIGQUIT: pending.graceful = 1; break;
        case SIGTERM:
        case SIGINT: pending.fast = 1; break;
        default: break;
        }
    }
}

/* worker_rlimit_core and worker_priority, as nginx's ngx_worker_process_init:
 * a failure is logged and the worker goes on. */
static void worker_apply_limits(const struct main_conf *m)
{
    if (m->worker_rlimit_core != CONF_UNSET_U64) {
        struct rlimit rl = {.rlim_cur = (rlim_t)m->worker_rlimit_core,
                            .rlim_max = (rlim_t)m->worker_rlimit_core};
        if (setrlimit(RLIMIT_CORE, &rl) < 0)
            sy_log(LOG_LVL_ALERT, "setrlimit(RLIMIT_CORE, %llu) failed (%d: %s)",
                   (unsigned long long)m->worker_rlimit_core, errno, strerror(errno));
    }
    if (m->worker_priority != 0 && setpriority(PRIO_PROCESS, 0, m->worker_priority) < 0)
        sy_log(LOG_LVL_ALERT, "setpriority(%d) failed (%d: %s)", m->worker_priority, errno,
               strerror(errno));
}

/* master_process off: this process is also the proxy cache's loader and
 * manager (proxy/cache_manager.h). */
static struct timer cache_timer;

static void on_cache_tick(struct timer *t)
{
    timer_set(t, cache_manager_run(rt_current));
}

int worker_run(struct gen_rt *rt, const struct worker_opts *opts)
{
    rt_current = rt;
    metrics_worker_attach();
    METRICS_FIXED_ADD(gens_alive, 1); /* rt, made before the fork */
    master_channel = opts->ctl_fd >= 0;
    master_pid = master_channel ? getppid() : 0;
    shm_zone_set_follower(master_channel);
    int64_t nofile = rt->gen->main.worker_rlimit_nofile;
    if (nofile != CONF_UNSET && nofile > 0) {
        struct rlimit rl = {.rlim_cur = (rlim_t)nofile, .rlim_max = (rlim_t)nofile};
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            /* Raising the hard limit needs privileges: at least raise the soft one. */
            struct rlimit cur;
            if (getrlimit(RLIMIT_NOFILE, &cur) == 0) {
                rl.rlim_max = cur.rlim_max;
                if (rl.rlim_cur > cur.rlim_max)
                    rl.rlim_cur = cur.rlim_max;
            }
            if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || (rlim_t)nofile > rl.rlim_cur)
                sy_log(LOG_LVL_ALERT, "setrlimit(RLIMIT_NOFILE, %lld) failed, using %llu",
                       (long long)nofile, (unsigned long long)rl.rlim_cur);
        }
    }
    worker_apply_limits(&rt->gen->main);
    if (loop_init() < 0) {
        sy_log(LOG_LVL_EMERG, "epoll_create1() failed (%d: %s)", errno, strerror(errno));
        return 1;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct sig_handle sh = {.h = {.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC),
                                  .on_io = on_signal}};
    if (sh.h.fd < 0 || loop_add_input(&sh.h) < 0) {
        sy_log(LOG_LVL_EMERG, "signalfd() failed (%d: %s)", errno, strerror(errno));
        return 1;
    }
    for (unsigned j = 0; j < nlisteners; j++)
        loop_add_listener(&listeners[j]->h);
    struct ctl_handle ch = {.h = {.fd = opts->ctl_fd, .on_io = on_ctl}};
    if (ch.h.fd >= 0)
        loop_add_input(&ch.h);

    uint64_t shutdown_deadline = 0;
    int tunnels_told = 0; /* 1001 sent to every tunnel */
    h1_accept_full = pause_accepting;
    http_proxy_handler = proxy_start;
    trim_timer.cb = on_trim;
    timer_set(&trim_timer, TRIM_INTERVAL_MS);
    if (!master_channel) {
        cache_loader_run(rt);
        cache_timer.cb = on_cache_tick;
        timer_set(&cache_timer, CACHE_MANAGER_INTERVAL_MS);
    }
    for (;;) {
        loop_run_once(shutdown_deadline ? 100 : -1);
        maybe_resume_accepting();
        if (pending.reopen) {
            pending.reopen = 0;
            sy_log(LOG_LVL_NOTICE, "signal 10 (SIGUSR1) received, reopening logs");
            log_reopen();
            log_files_reopen();
        }
        if (pending.reload && !pending.graceful && !pending.fast) {
            pending.reload = 0;
            do_reload(opts);
            shm_zone_gc(); /* zones no generation uses any more */
        }
        if (pending.fast)
            break;
        if (pending.graceful) {
            if (!shutdown_deadline) {
                sy_quit = 1;
                stop_accepting();
                sy_log(LOG_LVL_NOTICE, "gracefully shutting down");
                /* HTTP requests in flight finish. Tunnels run on until
                 * worker_shutdown_timeout; without one they end at once with
                 * 1001 "going away", so clients reconnect to the new instance
                 * instead of hanging on (nginx would wait for them forever). */
                uint64_t t = rt_current->gen->main.worker_shutdown_timeout;
                if (t == CONF_UNSET_U64) {
                    tunnel_shutdown_all();
                    tunnels_told = 1;
                }
                shutdown_deadline = loop_now() + (t == CONF_UNSET_U64 ? UINT64_MAX / 4 : t);
            }
            unsigned left = h1_shutdown_idle();
            left += h2_shutdown_idle();
            if (left == 0 && tunnel_count == 0 && subrequest_background_count() == 0)
                break; /* background cache updates finish too, as nginx's */
            if (loop_now() >= shutdown_deadline) {
                if (tunnels_told || tunnel_count == 0)
                    break; /* what is left is cut */
                /* The deadline: 1001 to every client and a clean close
                 * upstream, with the tunnels' usual grace for the handshake. */
                sy_log(LOG_LVL_NOTICE, "worker_shutdown_timeout reached, closing %u tunnels",
                       tunnel_count);
                tunnel_shutdown_all();
                tunnels_told = 1;
                shutdown_deadline = loop_now() + TUNNEL_CLOSE_GRACE_MS;
            }
        }
    }
    timer_cancel(&trim_timer);
    timer_cancel(&cache_timer);
    sy_log(LOG_LVL_NOTICE, "exiting");
    /* Release everything so leak checkers see a clean exit. */
    sy_quit = 1;
    h1_shutdown_idle();
    subrequest_background_cancel_all();
    h1_close_all();
    h2_close_all();
    tunnel_close_all();
    upconn_pool_drain();
    upstream_loads_free();
    proxy_cache_release();
    loop_run_once(0); /* run deferred frees */
    worker_close_listeners();
    close(sh.h.fd);
    if (ch.h.fd >= 0)
        close(ch.h.fd);
    rt_release(rt_current);
    rt_current = NULL;
    loop_destroy();
    buf_pool_drain();
    arena_cache_release();
    router_thread_cleanup();
    return 0;
}
