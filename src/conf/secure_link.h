/*
 * secure_link.h - configuration of nginx's ngx_http_secure_link_module:
 * `secure_link EXPR` + `secure_link_md5 EXPR` (a hash and an expiry in the
 * request, checked against an MD5 the server computes), or the older
 * `secure_link_secret WORD` (the URI carries the hash). The variables are
 * computed in src/http/secure_link.c. Embedded in loc_conf as
 * `lc->secure_link`, inherited as nginx does.
 */
#ifndef SY_CONF_SECURE_LINK_H
#define SY_CONF_SECURE_LINK_H

struct tmpl;

struct secure_link_conf {
    const struct tmpl *variable; /* secure_link: "hash[,expires]" */
    const struct tmpl *md5;      /* secure_link_md5: what is hashed */
    const char *secret;          /* secure_link_secret */
};

void secure_link_conf_merge(struct secure_link_conf *c, const struct secure_link_conf *prev);

#endif
