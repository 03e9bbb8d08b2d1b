/*
 * access_log.c - access-log lines (see access_log.h).
 */
#include "http/access_log.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "http/vars_eval.h"
#include "conf/runtime.h"

void access_log_write(struct client_stream *s)
{
    struct request *r = &s->req;
    const struct loc_conf *lc = r->lc;
    if (!lc || lc->access_log_off || !r->rt)
        return;
    for (unsigned i = 0; i < lc->naccess_logs; i++) {
        const struct access_log *al = &lc->access_logs[i];
        if (al->cond) {
            struct str v;
            if (tmpl_eval(s, al->cond, &v) < 0 || v.len == 0 || (v.len == 1 && v.p[0] == '0'))
                continue;
        }
        if (!r->rt->logs || al->file_index >= r->rt->gen->nlog_paths)
            continue;
        int fd = r->rt->logs[al->file_index]->fd;
        if (fd < 0)
            continue;
        enum tmpl_escape esc = al->format->escape_json   ? TMPL_ESC_JSON
                               : al->format->escape_none ? TMPL_ESC_NONE
                                                         : TMPL_ESC_LOG;
        struct str line;
        if (tmpl_eval_esc(s, &al->format->tmpl, esc, &line) < 0)
            continue;
        /* The template buffer has room for the NUL: replace it by '\n'. */
        char *p = (char *)line.p;
        if (line.p == al->format->tmpl.raw.p) {
            p = arena_alloc(&r->arena, line.len + 1);
            if (!p)
                continue;
            memcpy(p, line.p, line.len);
        }
        p[line.len] = '\n';
        ssize_t w = write(fd, p, line.len + 1);
        if (w < 0 && errno != EAGAIN) {
            static uint64_t last_warn;
            if (loop_now() - last_warn > 60000) {
                last_warn = loop_now();
                sy_log(LOG_LVL_ALERT, "write() to \"%s\" failed (%d: %s)",
                       r->rt->gen->log_paths[al->file_index], errno, strerror(errno));
            }
        }
    }
}
