/*
 * cookie_rewrite.h - proxy_cookie_domain / proxy_cookie_path /
 * proxy_cookie_flags applied to a proxied response's Set-Cookie
 * (conf/proxy_cookie.h), nginx's ngx_http_proxy_rewrite_cookie().
 */
#ifndef SY_PROXY_COOKIE_REWRITE_H
#define SY_PROXY_COOKIE_REWRITE_H

#include "conf/proxy_cookie.h"
#include "core/str.h"

struct arena;
struct client_stream;

/* One "name[=value]" of a Set-Cookie value, spaces around both trimmed. */
struct cookie_attr {
    struct str key;   /* .p NULL: removed */
    struct str value; /* .p NULL: no '=' */
};

/* Flag bits (nginx's NGX_HTTP_PROXY_COOKIE_*). */
#define COOKIE_SECURE_ON 0x01u
#define COOKIE_SECURE_OFF 0x02u
#define COOKIE_HTTPONLY_ON 0x04u
#define COOKIE_HTTPONLY_OFF 0x08u
#define COOKIE_SAMESITE_STRICT 0x10u
#define COOKIE_SAMESITE_LAX 0x20u
#define COOKIE_SAMESITE_NONE 0x40u
#define COOKIE_SAMESITE_OFF 0x80u

/*
 * Split a Set-Cookie value at ';' into *out (arena, *n entries, room for 3
 * more that cookie_edit_flags may add). 0, or -1 on OOM.
 */
int cookie_parse(struct arena *a, struct str v, struct cookie_attr **out, unsigned *n);

/* The bits of one flag word ("secure", "samesite=lax", ... any case); 0 if unknown. */
unsigned cookie_flag_bits(struct str word);

/*
 * nginx's ngx_http_proxy_edit_cookie_flags(): existing Secure / HttpOnly /
 * SameSite attributes are kept, removed (no...) or set to the value asked;
 * the ones asked for and missing are appended (Secure, HttpOnly, SameSite).
 * attrs must have room for 3 more entries (cookie_parse leaves it).
 */
void cookie_edit_flags(struct cookie_attr *attrs, unsigned *n, unsigned flags);

/* The attributes joined with "; " (removed ones skipped). Arena; .p NULL on OOM. */
struct str cookie_join(struct arena *a, const struct cookie_attr *attrs, unsigned n);

/*
 * The Set-Cookie value `v` after `pc`'s rules for the request on `s`: `v`
 * itself when nothing applies (or the first pair has no '='), else the
 * rebuilt value. A regex rule's captures become the request's $1...
 */
struct str cookie_rewrite(struct client_stream *s, const struct proxy_cookie_conf *pc,
                          struct str v);

#endif
