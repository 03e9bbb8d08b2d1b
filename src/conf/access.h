/*
 * access.h - the configuration of access control (src/conf/access.c): the
 * directives of nginx's ngx_http_access_module (allow, deny),
 * ngx_http_auth_basic_module (auth_basic, auth_basic_user_file),
 * ngx_http_auth_request_module (auth_request, auth_request_set), and
 * core's satisfy and limit_except. The checks themselves run in
 * src/http/access.c (the access phase).
 *
 * One struct per level that sets any of these, reached from loc_conf.access;
 * a level that sets none shares its parent's (NULL everywhere: no access
 * phase at all). Merged with nginx's inheritance by access_conf_merge().
 */
#ifndef SY_CONF_ACCESS_H
#define SY_CONF_ACCESS_H

#include <stdint.h>

#include "conf/vars.h"
#include "core/str.h"

struct loc_conf;
struct conf_parser;

/* One allow/deny rule (nginx keeps IPv4, IPv6 and unix: rules in three
 * lists; the family tag does the same: a client is checked against the
 * rules of its family, in order). "all" is one rule of each family. */
struct access_rule {
    uint8_t family;             /* AF_INET, AF_INET6 or AF_UNIX */
    uint8_t deny;
    uint8_t addr[16];           /* network order, masked; IPv4 in the first 4 */
    uint8_t mask[16];
};

/* An htpasswd file read when the configuration was loaded. */
struct htpasswd_file {
    const char *path;           /* as opened (for log lines) */
    int err;                    /* errno of the failed read at load; 0 = read */
    struct str text;            /* the whole file (arena) */
};

/* auth_request_set $name value: evaluated in the sub-request. */
struct auth_request_var {
    const struct var_ref *var;  /* the `set`-style variable (id = slot, or builtin) */
    struct tmpl value;
};

/* limit_except method bits (nginx's ngx_http_method_names order) */
#define LMT_GET       0x0001u
#define LMT_HEAD      0x0002u
#define LMT_POST      0x0004u
#define LMT_PUT       0x0008u
#define LMT_DELETE    0x0010u
#define LMT_MKCOL     0x0020u
#define LMT_COPY      0x0040u
#define LMT_MOVE      0x0080u
#define LMT_OPTIONS   0x0100u
#define LMT_PROPFIND  0x0200u
#define LMT_PROPPATCH 0x0400u
#define LMT_LOCK      0x0800u
#define LMT_UNLOCK    0x1000u
#define LMT_PATCH     0x2000u

#define SATISFY_ALL 0
#define SATISFY_ANY 1

struct access_conf {
    int satisfy;                /* SATISFY_*; CONF_UNSET until merged (all) */
    uint64_t auth_delay;        /* ms a 401 waits (auth_delay); CONF_UNSET_U64 until
                                   merged (0) */

    struct access_rule *rules; unsigned nrules; /* none: inherited */

    /* auth_basic: `realm` NULL = never set; a realm that is "off" (written
       so, or once evaluated) is off, as nginx checks it per request;
       realm_set says this level wrote the directive */
    struct tmpl *realm; int realm_set;
    /* auth_basic_user_file: `file` when the name has no variables (read at
       load), `user_file` when it has (read per request, as nginx) */
    const struct htpasswd_file *file;
    struct tmpl *user_file;     /* NULL unless variables */
    int user_file_set;

    /* auth_request: uri.p NULL = unset, len 0 = off */
    struct str auth_request;
    struct auth_request_var *vars; unsigned nvars; int vars_set;

    /* limit_except: the methods listed (GET implies HEAD); the requests
       with any other method get `lmt_lc` (merged from this level) */
    unsigned lmt_methods;
    struct loc_conf *lmt_lc;    /* NULL: no limit_except here */
    const char *lmt_file; unsigned lmt_line;
};

/*
 * Merge a level's access conf: *c (possibly NULL: the level set nothing)
 * from `prev` (the parent's, merged, possibly NULL), with nginx's rules:
 * satisfy, auth_basic, auth_basic_user_file, auth_request inherit when
 * unset; allow/deny and auth_request_set lists replace. limit_except is not
 * inherited (it belongs to its location). Returns 0, -1 out of memory.
 * Called by loc_conf_merge (merge.c), before the limit_except conf of the
 * level is merged (access_conf_merge_lmt).
 */
int access_conf_merge(struct conf_parser *p, struct access_conf **c,
                      const struct access_conf *prev);

/* Merge the limit_except block's conf of `lc` (if any) from `lc` itself,
 * once lc is complete. 0 or -1. */
int access_conf_merge_lmt(struct conf_parser *p, struct loc_conf *lc);

/* The limit_except bit of a request method; 0 for a method nginx's
 * limit_except cannot list (those always get the inner block's rules). */
unsigned access_method_bit(struct str method);

#endif
