/*
 * master.c - the master process (see master.h).
 *
 * The master keeps the current configuration (a gen_rt), the listening
 * sockets and a table of workers. Each worker has a slot (its index, for CPU
 * affinity) and a control channel; a worker being retired (fewer
 * worker_processes, or another user) leaves the table for the list of
 * draining workers, which are waited for but never replaced.
 */
#include "proc/master.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/snapshot.h"
#include "core/live.h"
#include "core/log.h"
#include "core/shm_zone.h"
#include "proc/sd_notify.h"
#include "proxy/cache_manager.h"
#include "core/metrics.h"

static volatile sig_atomic_t m_reload, m_reopen, m_quit, m_stop, m_child, m_alarm, m_upgrade,
    m_winch;

static void master_sig(int sig)
{
    switch (sig) {
    case SIGHUP: m_reload = 1; break;
    case SIGUSR1: m_reopen = 1; break;
    case SIGQUIT: m_quit = 1; break;
    case SIGTERM: case SIGINT: m_stop = 1; break;
    case SIGCHLD: m_child = 1; break;
    case SIGALRM: m_alarm = 1; break;
    case SIGUSR2: m_upgrade = 1; break;
    case SIGWINCH: m_winch = 1; break;
    default: break;
    }
}

/* The uid/gid of `user`/`group`. 0, or -1 (logged) when they do not exist. */
static int resolve_user(const struct main_conf *m, uid_t *uid, gid_t *gid)
{
    struct passwd *pw = getpwnam(m->user);
    if (!pw) {
        sy_log(LOG_LVL_EMERG, "getpwnam(\"%s\") failed", m->user);
        return -1;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    if (m->group) {
        struct group *gr = getgrnam(m->group);
        if (!gr) {
            sy_log(LOG_LVL_EMERG, "getgrnam(\"%s\") failed", m->group);
            return -1;
        }
        *gid = gr->gr_gid;
    }
    return 0;
}

/* Workers run as `user` when the master runs as root (see drop_privileges). */
static int switches_user(const struct main_conf *m)
{
    return m->user && geteuid() == 0;
}

/*
 * Workers run unprivileged: with `user` set and the master running as root,
 * switch to that user and group after the sockets are bound and the
 * configuration (keys included) was read. Returns 0 or -1 (logged).
 */
static int drop_privileges(const struct main_conf *m)
{
    if (!switches_user(m))
        return 0;
    uid_t uid;
    gid_t gid;
    if (resolve_user(m, &uid, &gid) < 0)
        return -1;
    if (setgid(gid) < 0 || initgroups(m->user, gid) < 0 || setuid(uid) < 0) {
        sy_log(LOG_LVL_EMERG, "switching to user \"%s\" failed (%d: %s)", m->user, errno,
               strerror(errno));
        return -1;
    }
    return 0;
}

/* Log files the master creates (reload, reopen) belong to the workers' user,
 * so that workers can reopen them. */
static void set_log_owner(const struct main_conf *m)
{
    uid_t uid;
    gid_t gid;
    if (switches_user(m) && resolve_user(m, &uid, &gid) == 0)
        log_set_owner(uid, gid);
    else
        log_set_owner((uid_t)-1, (gid_t)-1);
}

/*
 * worker_cpu_affinity, as nginx: explicit masks go to workers in order (the
 * last mask to any worker beyond them); `auto [mask]` binds worker i to the
 * i-th CPU (cycling) among those of the mask, or of all CPUs.
 */
static void bind_worker_cpu(const struct main_conf *m, long index)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (m->worker_cpu_affinity_auto) {
        uint64_t allowed = m->nworker_cpu_masks ? m->worker_cpu_masks[0] : ~0ULL;
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        if (ncpu <= 0)
            return;
        if (ncpu > 64)
            ncpu = 64;
        int cpus[64], n = 0;
        for (long c = 0; c < ncpu; c++)
            if (allowed & (1ULL << c))
                cpus[n++] = (int)c;
        if (n == 0)
            return;
        CPU_SET(cpus[index % n], &set);
    } else if (m->nworker_cpu_masks) {
        unsigned k = (unsigned long)index < m->nworker_cpu_masks ? (unsigned)index
                                                                  : m->nworker_cpu_masks - 1;
        for (int c = 0; c < 64; c++)
            if (m->worker_cpu_masks[k] & (1ULL << c))
                CPU_SET(c, &set);
    } else {
        return;
    }
    if (sched_setaffinity(0, sizeof(set), &set) < 0)
        sy_log(LOG_LVL_ALERT, "sched_setaffinity() failed (%d: %s)", errno, strerror(errno));
}

/* The signals that control the process (read by the worker from a signalfd). */
void master_control_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGQUIT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
}

/*
 * Fork a worker with a control channel: the master keeps *ctl (its end), the
 * worker reads reload orders and listening sockets from the other end.
 */
static pid_t spawn_worker(struct gen_rt *rt, const struct worker_opts *wo, long index, int *ctl)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        sy_log(LOG_LVL_ALERT, "socketpair() failed (%d: %s)", errno, strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid != 0) {
        close(sv[1]);
        if (pid < 0) {
            close(sv[0]);
            return -1;
        }
        *ctl = sv[0];
        return pid;
    }
    close(sv[0]);
    bind_worker_cpu(&rt->gen->main, index);
    if (drop_privileges(&rt->gen->main) < 0)
        _exit(2);
    struct worker_opts child = *wo;
    child.ctl_fd = sv[1];
    wo = &child;
    /* Control signals stay blocked: the worker reads them from its signalfd. */
    sigset_t sigs;
    master_control_signals(&sigs);
    sigprocmask(SIG_SETMASK, &sigs, NULL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGUSR1, SIG_DFL);
    signal(SIGQUIT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    /* exit(), not _exit(): LeakSanitizer checks a worker as it exits. */
    exit(worker_run(rt, wo));
}

struct kid {
    pid_t pid; /* 0: slot empty */
    int ctl;   /* our end of its control channel, -1 none */
};

/* The master's state. */
static struct {
    struct gen_rt *rt;
    const struct worker_opts *wo;
    struct kid *kids; /* slots 0 .. n-1 */
    long n, cap;
    pid_t *draining;  /* retired workers finishing their connections */
    unsigned ndraining, draining_cap;
    int stopping, fast;
    pid_t newbin;     /* the new binary started by SIGUSR2, while it runs */
    int pid_moved;    /* our pid file is NAME.oldbin */
    int noaccept;     /* SIGWINCH: no workers until SIGHUP */
} M;

static long configured_workers(const struct main_conf *m)
{
    long n = m->worker_processes;
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

static int grow_slots(long n)
{
    if (n <= M.cap)
        return 0;
    struct kid *k = realloc(M.kids, (size_t)n * sizeof(*k));
    if (!k)
        return -1;
    for (long i = M.cap; i < n; i++)
        k[i] = (struct kid){0, -1};
    M.kids = k;
    M.cap = n;
    return 0;
}

static void start_slot(long i)
{
    M.kids[i].pid = spawn_worker(M.rt, M.wo, i, &M.kids[i].ctl);
    if (M.kids[i].pid < 0) {
        sy_log(LOG_LVL_ALERT, "fork() failed (%d: %s)", errno, strerror(errno));
        M.kids[i].pid = 0;
    }
}

/* Move slot i's worker to the draining list and tell it to finish gracefully
 * (its tunnels get 1001 at once, or at worker_shutdown_timeout). */
static void retire_slot(long i)
{
    struct kid *k = &M.kids[i];
    if (k->ctl >= 0)
        close(k->ctl);
    k->ctl = -1;
    if (k->pid <= 0)
        return;
    if (M.ndraining == M.draining_cap) {
        unsigned cap = M.draining_cap ? M.draining_cap * 2 : 8;
        pid_t *d = realloc(M.draining, cap * sizeof(*d));
        if (d) {
            M.draining = d;
            M.draining_cap = cap;
        }
    }
    if (M.ndraining < M.draining_cap)
        M.draining[M.ndraining++] = k->pid;
    kill(k->pid, SIGQUIT);
    k->pid = 0;
}

static int same_user(const struct main_conf *a, const struct main_conf *b)
{
    const char *ua = a->user ? a->user : "", *ub = b->user ? b->user : "";
    const char *ga = a->group ? a->group : "", *gb = b->group ? b->group : "";
    return strcmp(ua, ub) == 0 && strcmp(ga, gb) == 0;
}

/* NAME.oldbin: the pid file of an instance that started a new binary. */
static void oldbin_path(char *out, size_t cap)
{
    snprintf(out, cap, "%s.oldbin", M.wo->pid_path);
}

/*
 * SIGUSR2, nginx's binary upgrade: the pid file becomes NAME.oldbin and the
 * program of argv[0] (the new binary installed at the same path) starts,
 * with the command line of this one and the listening sockets
 * (SWITCHYARD_LISTENERS="fd;fd;"), next to this instance: both serve until
 * this one is told to stop (WINCH: its workers finish; QUIT: it exits). A
 * new binary that fails to start gives the pid file back.
 */
static void upgrade(void)
{
    if (M.newbin > 0 || worker_old_binary_running()) {
        /* one upgrade at a time: the old or the new instance must go first */
        sy_log(LOG_LVL_CRIT, "the changing binary signal is ignored: you should shutdown or "
               "terminate before either old or new binary's process");
        return;
    }
    if (!M.wo->argv || !M.wo->argv[0] || !M.wo->pid_path)
        return;
    char old[4200];
    oldbin_path(old, sizeof(old));
    if (rename(M.wo->pid_path, old) < 0) {
        sy_log(LOG_LVL_ALERT, "rename() \"%s\" to \"%s\" failed (%d: %s), the binary upgrade "
               "is cancelled", M.wo->pid_path, old, errno, strerror(errno));
        return;
    }
    int fds[256];
    unsigned n = worker_listener_fds(fds, 256);
    static char env[256 * 12 + 32];
    size_t o = (size_t)snprintf(env, sizeof(env), "SWITCHYARD_LISTENERS=");
    for (unsigned i = 0; i < n && o < sizeof(env); i++)
        o += (size_t)snprintf(env + o, sizeof(env) - o, "%d;", fds[i]);
    pid_t pid = fork();
    if (pid < 0) {
        sy_log(LOG_LVL_ALERT, "fork() failed while executing new binary process \"%s\" "
               "(%d: %s)", M.wo->argv[0], errno, strerror(errno));
        rename(old, M.wo->pid_path);
        return;
    }
    if (pid == 0) {
        for (unsigned i = 0; i < n; i++)
            fcntl(fds[i], F_SETFD, 0); /* these, and only these, cross the exec */
        putenv(env);
        int sigs[] = {SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGQUIT, SIGTERM, SIGINT, SIGCHLD,
                      SIGALRM};
        for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
            signal(sigs[i], SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(M.wo->argv[0], M.wo->argv);
        sy_log(LOG_LVL_ALERT, "execve() failed while executing new binary process \"%s\" "
               "(%d: %s)", M.wo->argv[0], errno, strerror(errno));
        _exit(1);
    }
    M.newbin = pid;
    M.pid_moved = 1;
    sy_log(LOG_LVL_NOTICE, "start new binary process %d", (int)pid);
}

/* The new binary exited: this instance is the one again. */
static void newbin_exited(pid_t pid, int status)
{
    M.newbin = 0;
    if (WIFSIGNALED(status))
        sy_log(LOG_LVL_ALERT, "new binary process %d exited on signal %d", (int)pid,
               WTERMSIG(status));
    else
        sy_log(LOG_LVL_NOTICE, "new binary process %d exited with code %d", (int)pid,
               WEXITSTATUS(status));
    char old[4200];
    oldbin_path(old, sizeof(old));
    if (M.pid_moved && rename(old, M.wo->pid_path) == 0)
        M.pid_moved = 0;
}

int master_pid_moved(void)
{
    return M.pid_moved;
}

static void reap(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == M.newbin) {
            newbin_exited(pid, status);
            continue;
        }
        live_reap(pid); /* its tunnels leave the status page */
        for (unsigned j = 0; j < M.ndraining; j++)
            if (M.draining[j] == pid) {
                M.draining[j] = M.draining[--M.ndraining];
                sy_log(LOG_LVL_NOTICE, "retired worker process %d exited", (int)pid);
                break;
            }
        metrics_worker_exited((int)pid);
        for (long i = 0; i < M.n; i++) {
            struct kid *k = &M.kids[i];
            if (k->pid != pid)
                continue;
            k->pid = 0;
            if (k->ctl >= 0)
                close(k->ctl);
            k->ctl = -1;
            if (M.stopping)
                break;
            if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
                /* A worker that cannot start (user switch failed) would fail
                 * again: stop instead of respawning in a loop. */
                sy_log(LOG_LVL_EMERG, "worker process %d could not start, exiting", (int)pid);
                m_stop = 1;
                break;
            }
            if (WIFSIGNALED(status))
                sy_log(LOG_LVL_ALERT, "worker process %d exited on signal %d", (int)pid,
                       WTERMSIG(status));
            else
                sy_log(LOG_LVL_ALERT, "worker process %d exited with code %d", (int)pid,
                       WEXITSTATUS(status));
            /* The limit_conn counts of its requests would stay taken forever
             * (nginx leaks them): start the counts afresh instead, briefly
             * undercounting the other workers' requests in progress. */
            shm_zone_reset_kind(SHM_ZONE_LIMIT_CONN);
            start_slot(i);
            break;
        }
    }
}

/*
 * SIGHUP. The workers reload in place: same processes, tunnels untouched.
 * Only a change of user/group (a worker cannot regain root to switch) starts
 * a fresh set of workers and retires the old ones; a change of
 * worker_processes starts or retires the difference.
 */
/* The cache loader and manager's next run (SIGALRM), in `ms`. */
static void arm_cache_timer(unsigned ms)
{
    struct itimerval t = {{0, 0}, {ms / 1000, (long)(ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &t, NULL);
}

static void reload(void)
{
    char err[8192], warn[4096] = "";
    sy_log(LOG_LVL_NOTICE, "signal 1 (SIGHUP) received, reconfiguring");
    /* Every file the check reads is recorded: workers load these very bytes
     * (they may not be allowed to read the keys themselves). */
    snap_record_begin();
    const struct worker_opts *wo = M.wo;
    struct generation *g =
        gen_load(wo->prefix, wo->conf_path, wo->g_directives, err, sizeof(err), warn, sizeof(warn));
    if (!g) {
        snap_record_abort();
        sy_log_lines(LOG_LVL_EMERG, err, 0);
        sy_log(LOG_LVL_ALERT, "reload failed, still running with the previous configuration");
        live_reload(0, 0, err); /* the status page's reloads */
        metrics_reload(0);
        return;
    }
    int snap = snap_record_end();
    /* (warnings are logged by each worker as it loads the configuration) */
    long want = configured_workers(&g->main);
    if (worker_sync_listeners(g) < 0 || grow_slots(want) < 0) {
        gen_free(g);
        if (snap >= 0)
            close(snap);
        sy_log(LOG_LVL_ALERT, "reload failed, still running with the previous configuration");
        live_reload(0, 0, "the new listening sockets or workers could not be set up");
        metrics_reload(0);
        return;
    }
    if (snap < 0)
        sy_log(LOG_LVL_ALERT, "memfd_create() failed (%d: %s), workers read the configuration "
               "themselves", errno, strerror(errno));
    int new_user = !same_user(&M.rt->gen->main, &g->main);
    set_log_owner(&g->main);
    /* Workers started from now on fork with this configuration. */
    struct gen_rt *nrt = rt_create(g);
    if (!nrt) {
        if (snap >= 0)
            close(snap);
        sy_log(LOG_LVL_ALERT, "reload failed, still running with the previous configuration");
        live_reload(0, 0, "the new listening sockets or workers could not be set up");
        metrics_reload(0);
        return;
    }
    nrt->gen->serial = M.rt->gen->serial + 1;
    live_reload(1, nrt->gen->serial, NULL); /* the status page's reloads */
    rt_release(M.rt);
    M.rt = nrt;
    cache_loader_run(M.rt); /* new cache zones, before a worker uses them */
    if (M.rt->cache_zones)
        arm_cache_timer(CACHE_MANAGER_INTERVAL_MS);

    if (new_user) {
        sy_log(LOG_LVL_NOTICE, "user changed: starting %ld new worker processes, the old ones "
               "finish gracefully", want);
        for (long i = 0; i < M.n; i++)
            retire_slot(i);
    } else {
        for (long i = want; i < M.n; i++)
            retire_slot(i);
        /* The master opened the sockets of new `listen` lines (it may bind
         * privileged ports); each worker gets all of them with the order. */
        /* The shared zones (limit_req/limit_conn) go first: the worker maps
         * the new ones before it builds the new generation. */
        for (long i = 0; i < M.n && i < want; i++)
            if (M.kids[i].pid > 0 && (shm_zone_send(M.kids[i].ctl) < 0 ||
                                      worker_send_reload(M.kids[i].ctl, snap) < 0))
                sy_log(LOG_LVL_ALERT, "could not signal worker %d to reload (%d: %s)",
                       (int)M.kids[i].pid, errno, strerror(errno));
    }
    M.n = want;
    for (long i = 0; i < M.n; i++)
        if (M.kids[i].pid == 0)
            start_slot(i);
    if (snap >= 0)
        close(snap);
    metrics_reload(1);
}

static void signal_all(int sig)
{
    for (long i = 0; i < M.n; i++)
        if (M.kids[i].pid > 0)
            kill(M.kids[i].pid, sig);
    for (unsigned j = 0; j < M.ndraining; j++)
        kill(M.draining[j], sig);
}

int master_run(struct gen_rt *rt, const struct worker_opts *wo)
{
    memset(&M, 0, sizeof(M));
    M.rt = rt;
    M.wo = wo;
    set_log_owner(&rt->gen->main);
    if (grow_slots(configured_workers(&rt->gen->main)) < 0)
        return 1;
    M.n = configured_workers(&rt->gen->main);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = master_sig;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGHUP, SIGUSR1, SIGQUIT, SIGTERM, SIGINT, SIGCHLD, SIGALRM, SIGUSR2,
                  SIGWINCH};
    for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t block, all;
    sigemptyset(&block);
    for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaddset(&block, sigs[i]);
    sigprocmask(SIG_BLOCK, &block, NULL);
    sigemptyset(&all); /* sigsuspend() waits with every signal deliverable */
    /* the proxy cache's loader runs before any worker can fill the cache;
     * its manager on a timer (proxy/cache_manager.h) */
    cache_loader_run(M.rt);
    if (M.rt->cache_zones)
        arm_cache_timer(CACHE_MANAGER_INTERVAL_MS);
    for (long i = 0; i < M.n; i++)
        start_slot(i);
    /* systemd (proc/sd_notify.h): ready now, live counts on the same 1 s tick */
    if (sd_notify_enabled() && !M.rt->cache_zones)
        arm_cache_timer(CACHE_MANAGER_INTERVAL_MS);
    sd_notify_ready(M.n, M.rt->gen->serial);
    for (;;) {
        sigsuspend(&all);
        if (m_alarm) {
            m_alarm = 0;
            if (!M.stopping) {
                unsigned next = M.rt->cache_zones ? cache_manager_run(M.rt)
                                                  : CACHE_MANAGER_INTERVAL_MS;
                sd_notify_status(M.n, M.rt->gen->serial);
                if (M.rt->cache_zones || sd_notify_enabled())
                    arm_cache_timer(next);
            }
        }
        if (m_child) {
            m_child = 0;
            reap();
        }
        if (m_upgrade) {
            m_upgrade = 0;
            if (!M.stopping)
                upgrade();
        }
        if (m_winch) {
            m_winch = 0;
            if (!M.stopping && !M.noaccept) {
                /* nginx: the workers finish gracefully, none replace them */
                M.noaccept = 1;
                sy_log(LOG_LVL_NOTICE, "gracefully shutting down worker processes");
                for (long i = 0; i < M.n; i++)
                    retire_slot(i);
            }
        }
        if (m_reload && !M.stopping && M.noaccept) {
            /* after WINCH (an upgrade rolled back): workers again, same configuration */
            m_reload = 0;
            M.noaccept = 0;
            sy_log(LOG_LVL_NOTICE, "start worker processes");
            for (long i = 0; i < M.n; i++)
                start_slot(i);
        }
        if (m_reload && !M.stopping) {
            m_reload = 0;
            sd_notify_reloading();
            reload();
            sd_notify_ready(M.n, M.rt->gen->serial); /* also after a failed reload */
        }
        if (m_reopen) {
            m_reopen = 0;
            /* The master creates the new files (as root, owned by `user`);
             * the workers then reopen them. */
            sy_log(LOG_LVL_NOTICE, "signal 10 (SIGUSR1) received, reopening logs");
            log_reopen();
            log_files_reopen();
            signal_all(SIGUSR1);
        }
        if ((m_quit || m_stop) && !M.stopping) {
            M.stopping = 1;
            if (!M.newbin) /* else the new binary is the service now */
                sd_notify_stopping();
            worker_close_listeners(); /* refuse new connections from now on */
            if (!m_stop)
                signal_all(SIGQUIT);
        }
        if (m_stop && !M.fast) {
            M.fast = 1; /* also a stop after a quit: hurry the workers up */
            signal_all(SIGTERM);
        }
        if (M.stopping) {
            int alive = M.ndraining > 0;
            for (long i = 0; i < M.n; i++)
                if (M.kids[i].pid > 0)
                    alive = 1;
            if (!alive)
                break;
        }
    }
    for (long i = 0; i < M.cap; i++)
        if (M.kids[i].ctl >= 0)
            close(M.kids[i].ctl);
    free(M.kids);
    free(M.draining);
    worker_close_listeners();
    rt_release(M.rt);
    return 0;
}
