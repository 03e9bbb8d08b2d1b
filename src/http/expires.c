/*
 * expires.c - Expires and Cache-Control from the `expires` directive (see
 * expires.h), with nginx's values:
 *   epoch         Expires: Thu, 01 Jan 1970 00:00:01 GMT, Cache-Control: no-cache
 *   max           Expires: Thu, 31 Dec 2037 23:55:55 GMT, Cache-Control: max-age=315360000
 *   0             Expires: <now>, Cache-Control: max-age=0
 *   T             Expires: now + T, max-age=T
 *   modified T    Expires: Last-Modified + T, max-age the seconds from now to then
 *                 (from now when the response has no Last-Modified)
 *   @HH:MM        Expires: the next such local time of day, max-age until then
 * A negative time (or a max-age that came out negative) gives no-cache.
 */
#include "http/expires.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conf/headers_extra.h"
#include "core/log.h"
#include "core/loop.h"
#include "http/response.h"
#include "http/vars_eval.h"

/* nginx's ngx_next_time: the next `secs` after local midnight, after now. */
static int64_t next_time_of_day(int64_t now, int64_t secs)
{
    time_t t = (time_t)now;
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return -1;
    tm.tm_hour = (int)(secs / 3600);
    tm.tm_min = (int)(secs % 3600 / 60);
    tm.tm_sec = (int)(secs % 60);
    time_t next = mktime(&tm);
    if (next == (time_t)-1)
        return -1;
    if (next - t > 0)
        return next;
    tm.tm_mday++; /* mktime normalises the 32nd */
    next = mktime(&tm);
    return next == (time_t)-1 ? -1 : next;
}

/* Give header `name` the value `v`: the last occurrence (`last`) or the
 * first, whose later occurrences are then removed; appended when absent. */
static int set_header(struct request *r, const char *name, struct str v, int last)
{
    int found = -1;
    for (unsigned i = 0; i < r->nresp; i++) {
        if (!str_caseeq_cstr(r->resp[i].name, name))
            continue;
        if (found < 0 || last) {
            found = (int)i;
            continue;
        }
        /* a later duplicate of the header given the value: dropped */
        memmove(&r->resp[i], &r->resp[i + 1], (r->nresp - i - 1) * sizeof(r->resp[0]));
        r->nresp--;
        i--;
    }
    if (found >= 0) {
        r->resp[found].value = v;
        return 0;
    }
    return resp_add(r, str_from_cstr(name), v);
}

/* The response's Last-Modified as a time, -1 when it has none (nginx's
 * headers_out.last_modified_time: the file's mtime, an upstream's header). */
static int64_t last_modified(const struct request *r)
{
    struct str lm = resp_get(r, "last-modified");
    return lm.p ? time_parse_http(lm.p, lm.len) : -1;
}

int expires_apply(struct client_stream *s)
{
    struct request *r = &s->req;
    const struct expires_conf *c = &r->lc->expires;
    int mode = c->mode;
    int64_t t = c->time;
    if (c->value) {
        struct str v;
        if (tmpl_eval(s, c->value, &v) < 0)
            return -1;
        if (expires_parse(v, &mode, &t) || mode == EXPIRES_OFF)
            return 0;
    }
    struct str exp, cc;
    if (mode == EXPIRES_EPOCH) {
        exp = STR_LIT("Thu, 01 Jan 1970 00:00:01 GMT");
        cc = STR_LIT("no-cache");
    } else if (mode == EXPIRES_MAX) {
        exp = STR_LIT("Thu, 31 Dec 2037 23:55:55 GMT");
        cc = STR_LIT("max-age=315360000"); /* 10 years */
    } else if (t == 0 && mode != EXPIRES_DAILY) {
        exp = arena_str(&r->arena, str_from_cstr(time_http_date())); /* (a static buffer) */
        if (!exp.p)
            return -1;
        cc = STR_LIT("max-age=0");
    } else {
        int64_t now = (int64_t)(loop_wall_ms() / 1000), at, max_age;
        int64_t lm = mode == EXPIRES_MODIFIED ? last_modified(r) : -1;
        if (mode == EXPIRES_DAILY) {
            at = next_time_of_day(now, t);
            max_age = at - now;
        } else if (lm < 0) {
            at = now + t;
            max_age = t;
        } else {
            at = lm + t;
            max_age = at - now;
        }
        char *e = arena_alloc(&r->arena, 30), *m = arena_alloc(&r->arena, 32);
        if (!e || !m)
            return -1;
        time_format_http(at, e);
        exp = str_from_cstr(e);
        /* nginx tests the configured time, 0 for a value with variables */
        if (c->time < 0 || max_age < 0) {
            cc = STR_LIT("no-cache");
        } else {
            snprintf(m, 32, "max-age=%lld", (long long)max_age);
            cc = str_from_cstr(m);
        }
    }
    if (set_header(r, "Expires", exp, 1) < 0 || set_header(r, "Cache-Control", cc, 0) < 0)
        return -1;
    return 0;
}
