/*
 * master.h - the master process: forks and supervises the workers, reloads
 * the configuration, never handles traffic.
 *
 *   SIGHUP   check the new configuration (recording the files it reads),
 *            open new listening sockets, hand both to every worker, which
 *            reloads in place; start or stop workers when worker_processes
 *            changed, replace them all when user/group changed
 *   SIGUSR1  reopen logs (the master creates the files), then the workers
 *   SIGQUIT  close the listening sockets, workers finish gracefully
 *   SIGTERM, SIGINT  fast stop
 *   SIGCHLD  a dead worker is logged and replaced
 */
#ifndef SY_PROC_MASTER_H
#define SY_PROC_MASTER_H

#include <signal.h>

#include "proc/runtime.h"
#include "proc/worker.h"

/* The signals that control a Switchyard process (blocked early, read by the
 * worker from a signalfd). */
void master_control_signals(sigset_t *set);

/* Run the master with configuration `rt` (listening sockets open) until it
 * stops; returns the exit code. */
int master_run(struct gen_rt *rt, const struct worker_opts *wo);

/* After master_run: the pid file was renamed NAME.oldbin by a binary
 * upgrade (SIGUSR2) whose new binary still runs (that file is ours). */
int master_pid_moved(void);

#endif
