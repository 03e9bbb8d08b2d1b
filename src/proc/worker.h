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

/* Close the listening sockets in this process (e.g. in the master after forking). */
void worker_close_listeners(void);

#endif
