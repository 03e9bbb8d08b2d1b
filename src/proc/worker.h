/*
 * worker.h - running the event loop of one worker process: listening
 * sockets, signals (through a signalfd in the loop), reload of the
 * configuration in place, graceful and fast shutdown.
 */
#ifndef SY_PROC_WORKER_H
#define SY_PROC_WORKER_H

#include "proc/runtime.h"

struct worker_opts {
    const char *prefix;
    const char *conf_path;
    const char *g_directives;   /* -g text or NULL */
    int ctl_fd;                 /* channel from the master; -1 with master_process off */
    char *const *argv;          /* the command line, for a binary upgrade (SIGUSR2) */
    const char *pid_path;       /* the pid file (renamed to .oldbin by an upgrade) */
};

/*
 * Open the listening sockets of `rt`'s configuration (before forking, so all
 * workers share them). Returns 0, or -1 after logging the failing address.
 */
int worker_open_listeners(struct gen_rt *rt);

/*
 * Run the worker loop until stopped. Takes ownership of `rt` (becomes
 * rt_current). Returns the process exit status.
 */
int worker_run(struct gen_rt *rt, const struct worker_opts *opts);

/* Started by an old binary's SIGUSR2 with its listening sockets
 * (SWITCHYARD_LISTENERS): then the process does not daemonize, as nginx. */
int worker_inherited(void);

/* ... and that old binary's master still runs (it is still our parent). */
int worker_old_binary_running(void);

/* The listening sockets' descriptors (up to `max`); their number. */
unsigned worker_listener_fds(int *fds, unsigned max);

/* Close the listening sockets in this process (e.g. in the master after forking). */
void worker_close_listeners(void);

/*
 * Master side of a reload: open the sockets for new `listen` addresses of
 * `gen` (the master may bind privileged ports), close the ones it dropped.
 * 0 or -1 (logged; the old set is kept as far as possible).
 */
int worker_sync_listeners(struct generation *gen);

/*
 * Master side: tell the worker at the other end of `ctl_fd` to reload, passing
 * every listening socket (SCM_RIGHTS) so it never binds one itself, and
 * `snap_fd` (snapshot.h; -1 for none): the configuration to load. 0 or -1.
 */
int worker_send_reload(int ctl_fd, int snap_fd);

#endif
