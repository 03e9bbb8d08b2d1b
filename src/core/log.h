/*
 * log.h - the error log (nginx format and levels) and cached time strings.
 *
 * Lines look like nginx's so existing tooling keeps working:
 *   2026/11/26 10:44:50 [warn] 4242#4242: *17 upstream timed out ..., client: ...
 * Before a configuration is loaded (and for -t) messages go to stderr as
 *   switchyard: [emerg] unknown directive "foo" in /etc/sy.conf:3
 */
#ifndef SY_CORE_LOG_H
#define SY_CORE_LOG_H

#include <sys/types.h>

#include <stdint.h>

enum log_level {
    LOG_LVL_EMERG = 0, LOG_LVL_ALERT, LOG_LVL_CRIT, LOG_LVL_ERR,
    LOG_LVL_WARN, LOG_LVL_NOTICE, LOG_LVL_INFO, LOG_LVL_DEBUG,
};

/* Open (or switch to) the error log at `path` ("stderr" allowed) with a level. 0 or -1. */
int log_open(const char *path, enum log_level level);

/*
 * Open (creating) a log file for appending. When an owner was set, a file is
 * handed to it: the master runs as root and creates log files that workers,
 * running as `user`, reopen after a reload or `reopen` (nginx does the same).
 */
int log_open_file(const char *path);
void log_set_owner(uid_t uid, gid_t gid);
/* Reopen the current error log file (SIGUSR1). */
void log_reopen(void);

/* A daemon's stderr goes to the error log (nginx does the same): stray
 * writes land there, and the terminal or pipe that started it is let go. */
void log_redirect_stderr(void);
/* Current threshold. */
enum log_level log_level_get(void);
/* Whether messages currently go to stderr (startup, -t). */
int log_to_stderr(void);

/* Write one line at `lvl` (dropped when above the threshold). */
void sy_log(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Startup message to stderr in "switchyard: [level] msg" form (and to the log when open). */
void sy_log_stderr(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Each line of `text` (the configuration loader's errors, one per line) as
 * its own message: to stderr in startup form when `to_stderr`, else sy_log. */
void sy_log_lines(enum log_level lvl, const char *text, int to_stderr);

const char *log_level_name(enum log_level lvl);

/* Time strings cached per second (wall clock of the loop). NUL-terminated, static. */
const char *time_http_date(void);  /* "Thu, 26 Nov 2026 10:44:50 GMT" */
const char *time_local(void);      /* "26/Nov/2026:10:44:50 +0000" */
const char *time_iso8601(void);    /* "2026-11-26T10:44:50+00:00" */
const char *time_errlog(void);     /* "2026/11/26 10:44:50" */
/* Format an arbitrary time as an HTTP date into out[30]. */
void time_format_http(int64_t t, char out[30]);
/* Parse an HTTP date (IMF-fixdate, RFC 850, asctime); -1 when invalid. */
int64_t time_parse_http(const char *s, size_t len);

#endif
