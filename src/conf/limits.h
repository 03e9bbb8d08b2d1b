/*
 * limits.h - the limit_req / limit_conn directives (ngx_http_limit_req_module,
 * ngx_http_limit_conn_module): setters referenced from the directive table
 * in directives.c, and the end-of-http{} check. Internal to src/conf.
 */
#ifndef SY_CONF_LIMITS_H
#define SY_CONF_LIMITS_H

#include "conf/directives.h"

struct directive;

/* limit_req_zone key zone=name:size rate=Nr/s|Nr/m */
const char *limits_set_req_zone(struct conf_parser *p, const struct directive *d, void *conf);
/* limit_conn_zone key zone=name:size */
const char *limits_set_conn_zone(struct conf_parser *p, const struct directive *d, void *conf);
/* limit_req zone=name [burst=n] [nodelay | delay=n]  (conf: the level's loc_conf) */
const char *limits_set_req(struct conf_parser *p, const struct directive *d, void *conf);
/* limit_conn zone number */
const char *limits_set_conn(struct conf_parser *p, const struct directive *d, void *conf);
/* limit_req_status / limit_conn_status code (400..599) */
const char *limits_set_status(struct conf_parser *p, const struct directive *d, void *conf);

/*
 * End of http{}: every zone named by limit_req / limit_conn must have been
 * declared; numbers the zones. 0, or -1 with the error set (at the first
 * reference of the unknown zone).
 */
int limits_finish(struct conf_parser *p);

#endif
