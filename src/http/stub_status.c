/*
 * stub_status.c - the status page (stub_status.h).
 */
#include "http/stub_status.h"

#include "core/arena.h"
#include "core/stats.h"
#include "http/response.h"

int64_t stub_status_value(char which)
{
    int64_t active = stats_get(&sy_stats->active);
    int64_t reading = stats_get(&sy_stats->reading);
    int64_t writing = stats_get(&sy_stats->writing);
    int64_t v;
    switch (which) {
    case 'a':
        v = active;
        break;
    case 'r':
        v = reading;
        break;
    case 'w':
        v = writing;
        break;
    default:
        v = active - reading - writing;
        break;
    }
    return v > 0 ? v : 0;
}

int stub_status_prepare(struct client_stream *s, const char **body, size_t *len)
{
    struct request *r = &s->req;
    if (!str_eq(r->method, STR_LIT("GET")) && !str_eq(r->method, STR_LIT("HEAD")))
        return 405;
    /* nginx's layout, trailing spaces included */
    char *p = arena_printf(&r->arena,
                           "Active connections: %lld \n"
                           "server accepts handled requests\n"
                           " %llu %llu %llu \n"
                           "Reading: %lld Writing: %lld Waiting: %lld \n",
                           (long long)stub_status_value('a'),
                           (unsigned long long)stats_getu(&sy_stats->accepts),
                           (unsigned long long)stats_getu(&sy_stats->handled),
                           (unsigned long long)stats_getu(&sy_stats->requests),
                           (long long)stub_status_value('r'), (long long)stub_status_value('w'),
                           (long long)stub_status_value('W'));
    if (!p || resp_add(r, STR_LIT("Content-Type"), STR_LIT("text/plain")) < 0)
        return -1;
    r->status = 200;
    *body = p;
    *len = strlen(p);
    return 0;
}
