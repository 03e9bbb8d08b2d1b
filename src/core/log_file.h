/*
 * log_file.h - open access-log files, shared by every generation (and
 * tunnel) that writes to the same path, so a reload reuses the fd and a
 * tunnel outliving its generation can still log its end. One list per
 * process; not thread-safe (one worker, one loop).
 */
#ifndef SY_CORE_LOG_FILE_H
#define SY_CORE_LOG_FILE_H

struct log_file {
    char *path;                 /* owned */
    int fd;                     /* -1 when the open failed */
    unsigned refs;
    struct log_file *next;
};

/* Find or open the log file at `path`, taking a reference. NULL on allocation failure. */
struct log_file *log_file_get(const char *path);
static inline struct log_file *log_file_ref(struct log_file *lf)
{
    lf->refs++;
    return lf;
}
/* Drop a reference; closes the fd at zero. Accepts NULL. */
void log_file_put(struct log_file *lf);
/* Reopen every open log file (SIGUSR1). */
void log_files_reopen(void);

#endif
