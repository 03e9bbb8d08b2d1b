/*
 * limit_rate.h - configuration of response rate limiting: nginx's
 * `limit_rate` and `limit_rate_after` (ngx_http_core_module, values with
 * variables as nginx >= 1.17). The filter that applies them is
 * src/http/limit_rate.c.
 *
 * The settings of one level live in `struct limit_rate_conf`, embedded in
 * struct loc_conf (`lc->limit_rate`), inherited as nginx does.
 */
#ifndef SY_CONF_LIMIT_RATE_H
#define SY_CONF_LIMIT_RATE_H

struct tmpl;

struct limit_rate_conf {
    const struct tmpl *rate;  /* limit_rate: bytes per second, 0 = none; NULL unset */
    const struct tmpl *after; /* limit_rate_after: bytes sent before the limit applies */
    int assignable;           /* `set $limit_rate` appears somewhere in the configuration:
                                 the filter must be ready even without limit_rate (an
                                 upstream's X-Accel-Limit-Rate installs it itself) */
};

void limit_rate_conf_init(struct limit_rate_conf *c);
/* Inherit from `prev` (NULL: nginx's defaults). `assigned`: the
 * configuration assigns $limit_rate somewhere. */
void limit_rate_conf_merge(struct limit_rate_conf *c, const struct limit_rate_conf *prev,
                           int assigned);

#endif
