/*
 * directive_table.h - how a module declares its directives (internal to
 * src/conf). directives.c has the core table; a module with a file of its
 * own (gzip.c, access.c, ...) defines `const struct directive X_directives[]`
 * ending in a NULL name, declares it below, and lists it in
 * conf_module_tables (directive_table.c). The dispatcher looks a name up in
 * the core table first, then in each module table in order.
 *
 * The generic setters below store into the field at `d->offset` of the
 * level's conf (LOC(field) for a loc_conf field, ...), with nginx's messages.
 */
#ifndef SY_CONF_DIRECTIVE_TABLE_H
#define SY_CONF_DIRECTIVE_TABLE_H

#include <stddef.h>

#include "conf/directives.h"

#define ARGS(lo, hi) ((unsigned)(lo) | ((unsigned)(hi) << 8))
#define ARGS_MIN(n) ((n)&0xffu)
#define ARGS_MAX(n) (((n) >> 8) & 0xffu)
#define MANY 0xffu
#define D_BLOCK 0x10000u

enum conf_level {
    LVL_NONE, /* the setter finds its target itself */
    LVL_MAIN, /* &g->main */
    LVL_LOC,  /* p->lc: http, server, location or `if` level */
    LVL_SRV,  /* p->sb */
    LVL_UPS,  /* p->ub->uc */
    LVL_SSL,  /* p->ssl */
};

struct directive;
typedef const char *conf_set_fn(struct conf_parser *p, const struct directive *d, void *conf);

struct directive {
    const char *name;
    unsigned ctx;   /* CTX_* where it may appear */
    unsigned nargs; /* ARGS(min, max) | D_BLOCK */
    conf_set_fn *set;
    enum conf_level level;
    size_t offset;    /* field for the generic setters */
    const void *post; /* value table for enum/bitmask setters */
};

/* Value tables for set_enum / set_bitmask (NULL name ends the table). */
struct conf_enum {
    const char *name;
    unsigned value;
};

#define HSL (CTX_HTTP | CTX_SERVER | CTX_LOCATION)
#define HS (CTX_HTTP | CTX_SERVER)
#define LOC(f) LVL_LOC, offsetof(struct loc_conf, f)
#define MAIN(f) LVL_MAIN, offsetof(struct main_conf, f)
#define UPS(f) LVL_UPS, offsetof(struct upstream_conf, f)
#define SSL(f) LVL_SSL, offsetof(struct ssl_conf, f)

/* The field a generic setter writes. */
#define FIELD(conf, d, type) ((type *)(void *)((char *)(conf) + (d)->offset))

/* ---- generic setters (directives.c), nginx's syntax and messages ---- */

conf_set_fn set_flag;            /* on|off -> int */
conf_set_fn set_num;             /* number -> long long */
conf_set_fn set_uint;            /* number -> unsigned */
conf_set_fn set_int_num;         /* number -> int */
conf_set_fn set_size;            /* size (k, m) -> long long */
conf_set_fn set_msec;            /* time -> long long ms */
conf_set_fn set_msec_or_off;     /* time|off -> long long ms (0 = off) */
conf_set_fn set_str;             /* string -> const char * */
conf_set_fn set_conf_path;       /* path relative to the prefix -> const char * */
conf_set_fn set_slice;           /* string -> struct str */
conf_set_fn set_tmpl_ptr;        /* string with variables -> struct tmpl * */
conf_set_fn set_enum;            /* one of d->post's names -> unsigned */
conf_set_fn set_bitmask;         /* several of d->post's names -> unsigned */
conf_set_fn set_ignored_flag;    /* checked like set_flag, no effect */
conf_set_fn set_ignored_num;     /* ... set_num */
conf_set_fn set_ignored_size;    /* ... set_size */
conf_set_fn set_ignored_bufs;    /* "NUMBER SIZE", no effect */
conf_set_fn set_ignored_any;     /* anything, no effect */
conf_set_fn set_ignored_str;     /* one string, no effect */
conf_set_fn set_ignored_msec;    /* ... set_msec */
conf_set_fn set_ignored_enum;    /* ... set_enum */
conf_set_fn set_ignored_bitmask; /* ... set_bitmask */
conf_set_fn set_flag_off_only;   /* "off" accepted; "on" refused with the reason */
conf_set_fn set_warn_ignored;    /* accepted with a warning that it has no effect */

/* A template (text with variables) compiled at the current directive,
 * errors reported there (NULL then). */
struct tmpl *conf_tmpl(struct conf_parser *p, const char *text);

/* conf_regex_compile(): see directives.h */

/* ---- module tables ---- */

extern const struct directive core_directives[];
extern const struct directive http2_directives[]; /* http2.c */
extern const struct directive gzip_directives[];  /* gzip.c */
extern const struct directive brotli_directives[]; /* gzip.c */
extern const struct directive headers_extra_directives[]; /* headers_extra.c: expires */
extern const struct directive charset_directives[];       /* charset.c */
extern const struct directive autoindex_directives[];     /* autoindex.c */
extern const struct directive access_directives[]; /* access.c */
extern const struct directive limit_rate_directives[]; /* limit_rate.c */
extern const struct directive sub_directives[];        /* sub.c */
extern const struct directive proxy_socket_directives[]; /* proxy_socket.c */
extern const struct directive stub_status_directives[];  /* stub_status.c */
extern const struct directive status_page_directives[];  /* status_page.c */
extern const struct directive metrics_directives[];      /* metrics.c */
extern const struct directive secure_link_directives[];  /* secure_link.c */
extern const struct directive geo_directives[];   /* geo.c */
extern const struct directive split_clients_directives[]; /* split_clients.c */
extern const struct directive referer_directives[]; /* referer.c */
extern const struct directive empty_gif_directives[]; /* empty_gif.c */
extern const struct directive upstream_zone_directives[]; /* upstream_zone.c */
extern const struct directive proxy_cookie_directives[]; /* proxy_cookie.c */
extern const struct directive ssi_directives[];    /* ssi.c */

/* gzip_types, brotli_types, ssi_types: MIME types into a
 * `const struct compress_types *` field (gzip.c). */
conf_set_fn compress_set_types;
extern const struct directive cache_directives[];  /* cache.c */

/* Every table, the core one first, NULL-terminated (directive_table.c). */
extern const struct directive *const conf_module_tables[];

#endif
