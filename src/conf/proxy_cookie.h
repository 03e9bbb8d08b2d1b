/*
 * proxy_cookie.h - proxy_cookie_domain, proxy_cookie_path and
 * proxy_cookie_flags (nginx's ngx_http_proxy_module), compiled per level;
 * proxy/cookie_rewrite.c applies them to the Set-Cookie of proxied responses.
 */
#ifndef SY_CONF_PROXY_COOKIE_H
#define SY_CONF_PROXY_COOKIE_H

#include "conf/vars.h"

enum cookie_rw_kind {
    COOKIE_RW_PREFIX, /* proxy_cookie_path: the value starts with `pattern` (case-sensitive) */
    COOKIE_RW_DOMAIN, /* proxy_cookie_domain: the value (less a leading '.') is `pattern`,
                         case-insensitively */
    COOKIE_RW_REGEX,  /* `~regex` (domain: always caseless; path: `~*` caseless): the
                         whole value is replaced, $1.. are the match's captures */
};

struct cookie_rw {
    enum cookie_rw_kind kind;
    struct tmpl pattern; /* PREFIX, DOMAIN */
    void *re;            /* REGEX: pcre2_code * */
    struct tmpl replacement;
};

/* proxy_cookie_flags NAME|~REGEX FLAG...: the first rule whose name matches
 * (case-insensitively, or the caseless regex) edits the cookie's flags. */
struct cookie_flags_rule {
    struct tmpl name;
    void *re;            /* NULL: compare `name` */
    struct tmpl *flags;  /* secure, nosecure, httponly, nohttponly, samesite=strict|lax|none,
                            nosamesite; evaluated per response, unknown ones ignored */
    unsigned nflags;
};

/* One list's state at a level (nginx's UNSET / NULL ("off") / array). */
enum cookie_list_state { COOKIE_LIST_UNSET, COOKIE_LIST_OFF, COOKIE_LIST_SET };

struct proxy_cookie_conf {
    enum cookie_list_state domains_state, paths_state, flags_state;
    struct cookie_rw *domains;
    unsigned ndomains;
    struct cookie_rw *paths;
    unsigned npaths;
    struct cookie_flags_rule *flags;
    unsigned nflags;
};

struct conf_parser;
struct loc_conf;

/*
 * Inherit the lists `c`'s level did not set from `prev` (merge.c); a level
 * without any proxy_cookie_* shares its parent's conf. 0, or -1 on OOM.
 */
int proxy_cookie_merge(struct conf_parser *p, struct loc_conf *c, const struct loc_conf *prev);

#endif
