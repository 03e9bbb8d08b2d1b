/*
 * log_file.c - shared access-log files (see log_file.h).
 */
#include "core/log_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

static struct log_file *log_files;

struct log_file *log_file_get(const char *path)
{
    for (struct log_file *lf = log_files; lf; lf = lf->next)
        if (strcmp(lf->path, path) == 0)
            return log_file_ref(lf);
    struct log_file *lf = calloc(1, sizeof(*lf));
    if (!lf)
        return NULL;
    lf->path = strdup(path);
    if (!lf->path) {
        free(lf);
        return NULL;
    }
    lf->fd = log_open_file(path);
    if (lf->fd < 0)
        sy_log(LOG_LVL_ALERT, "open() \"%s\" failed (%d: %s)", path, errno, strerror(errno));
    lf->refs = 1;
    lf->next = log_files;
    log_files = lf;
    return lf;
}

void log_file_put(struct log_file *lf)
{
    if (!lf || --lf->refs > 0)
        return;
    for (struct log_file **pp = &log_files; *pp; pp = &(*pp)->next)
        if (*pp == lf) {
            *pp = lf->next;
            break;
        }
    if (lf->fd >= 0)
        close(lf->fd);
    free(lf->path);
    free(lf);
}

void log_files_reopen(void)
{
    for (struct log_file *lf = log_files; lf; lf = lf->next) {
        int fd = log_open_file(lf->path);
        if (fd < 0)
            continue;
        if (lf->fd >= 0) {
            dup2(fd, lf->fd);
            close(fd);
        } else {
            lf->fd = fd;
        }
    }
}
