/*
 * sd_notify.h - systemd's service notification protocol, spoken by the
 * master itself (no libsystemd): with NOTIFY_SOCKET set in the environment
 * (a path, or "@name" for an abstract socket), the master sends datagrams
 *
 *   READY=1, MAINPID=<pid>, STATUS=...   once the workers are started, and
 *                                        again when a reload is done
 *   RELOADING=1, MONOTONIC_USEC=<usec>   when a reload starts (the
 *                                        Type=notify-reload protocol)
 *   STOPPING=1                           on quit or stop
 *   STATUS=...                           live counts, when they change
 *                                        (checked once a second)
 *
 * Without NOTIFY_SOCKET every call does nothing; a send that fails is
 * ignored: notification never stops the proxy.
 */
#ifndef SY_PROC_SD_NOTIFY_H
#define SY_PROC_SD_NOTIFY_H

/* Read NOTIFY_SOCKET and open the socket (once, in the master, before it
 * forks). 1 when notifications are on, 0 otherwise. */
int sd_notify_init(void);

/* 1 when sd_notify_init() found a socket. */
int sd_notify_enabled(void);

/* Send `text` (newline-separated KEY=VALUE assignments) as one datagram.
 * 0, or -1 when off or the send failed. */
int sd_notify_send(const char *text);

/* READY=1 with MAINPID and the status line for `workers` running workers of
 * configuration `generation`. */
void sd_notify_ready(long workers, unsigned long generation);

/* RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC now). */
void sd_notify_reloading(void);

/* STOPPING=1. */
void sd_notify_stopping(void);

/* STATUS=... with the shared counters (core/stats.h), sent only when the
 * text differs from the last one sent: cheap enough for a 1 s timer. */
void sd_notify_status(long workers, unsigned long generation);

/* The status line (no "STATUS=") into buf: "N workers, configuration G;
 * connections: A active, R reading, W writing; requests: Q". */
void sd_notify_status_text(char *buf, unsigned long cap, long workers,
                           unsigned long generation);

#endif
