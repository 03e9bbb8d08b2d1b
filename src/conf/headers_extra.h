/*
 * headers_extra.h - the `expires` directive of nginx's
 * ngx_http_headers_module (add_header lives in the core table): its
 * per-location state (loc_conf.expires), the parser of its value, shared by
 * the directive and by the response step that evaluates a value with
 * variables (src/http/expires.c), and its table (headers_extra_directives).
 */
#ifndef SY_CONF_HEADERS_EXTRA_H
#define SY_CONF_HEADERS_EXTRA_H

#include <stdint.h>

#include "core/str.h"

struct tmpl;

/* What `expires` asks for (nginx's ngx_http_expires_t). */
enum expires_mode {
    EXPIRES_OFF = 0,  /* `off`, and the default: no header touched */
    EXPIRES_EPOCH,    /* `epoch`: Expires in 1970, Cache-Control: no-cache */
    EXPIRES_MAX,      /* `max`: Expires in 2037, max-age of 10 years */
    EXPIRES_ACCESS,   /* `[+-]time`: from the time of the response */
    EXPIRES_MODIFIED, /* `modified [+-]time`: from Last-Modified (else the response time) */
    EXPIRES_DAILY,    /* `@time`: the next such time of day (local time) */
};

struct expires_conf {
    int mode;           /* enum expires_mode; CONF_UNSET until merged */
    int64_t time;       /* seconds, negative in the past; DAILY: seconds after midnight */
    struct tmpl *value; /* a value with variables, parsed per response (mode is then
                           ACCESS, or MODIFIED with `modified`); NULL otherwise */
};

/* Unset (before the directive and the merge). */
void expires_conf_init(struct expires_conf *c);

/* nginx's inheritance: an unset level takes its parent's whole setting;
 * `prev` NULL (the http level) means `expires off`. */
void expires_conf_merge(struct expires_conf *c, const struct expires_conf *prev);

/*
 * Parse an expires value as nginx's ngx_http_parse_expires: with *mode
 * EXPIRES_MODIFIED only a time is accepted, otherwise also `epoch`, `max`
 * and `off` (which set *mode); `@time` sets EXPIRES_DAILY; a time is
 * nginx's seconds syntax (`30`, `1h 30m`, `1y`, `-1d`). Returns NULL, or
 * nginx's error phrase ("invalid value", "daily time value must be less
 * than 24 hours", "daily time cannot be used with \"modified\" parameter").
 */
const char *expires_parse(struct str v, int *mode, int64_t *time);

#endif
