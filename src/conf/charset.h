/*
 * charset.h - the configuration of nginx's ngx_http_charset_module
 * (`charset`, `source_charset`, `override_charset`, `charset_types`,
 * `charset_map`): the per-location state (loc_conf.charset), the http-level
 * registry of charset names and maps (http_conf.charsets) and the table
 * (charset_directives). The response side is src/http/charset.c.
 *
 * Switchyard sets the Content-Type charset parameter as nginx does but does
 * not recode bodies: a location whose source_charset differs from its
 * charset is refused at load (nginx's "no charset_map" when there is no
 * map, Switchyard's "recoding ... is not supported" when there is one).
 * charset_map blocks are read and checked as nginx reads them.
 */
#ifndef SY_CONF_CHARSET_H
#define SY_CONF_CHARSET_H

#include "core/str.h"

struct tmpl;
struct conf_parser;

/* How `charset` / `source_charset` was given. */
enum charset_how {
    CHARSET_OFF = 0,  /* `charset off` (and the default of both) */
    CHARSET_NAME = 1, /* a charset name, as written */
    CHARSET_VAR = 2,  /* `$variable`: its value names the charset per response */
};

struct charset_value {
    int how;           /* enum charset_how; CONF_UNSET until given or merged */
    struct str name;   /* CHARSET_NAME */
    struct tmpl *var;  /* CHARSET_VAR */
};

struct charset_conf {
    struct charset_value charset;   /* charset: off */
    struct charset_value source;    /* source_charset: off */
    int override;                   /* override_charset: off (CONF_UNSET until merged) */
    const struct str *types;        /* charset_types, lower-cased, "text/html" first;
                                       NULL until given or merged */
    unsigned ntypes;
    int types_all;                  /* `charset_types *`: every type */
};

/* One charset_map block: charsets by their index in the registry. */
struct charset_map_pair {
    unsigned src, dst;
};

/* Every charset named in the configuration (nginx's main conf: a response's
 * charset is "known" when it is one of these) and the charset_map pairs. */
struct charset_registry {
    struct str *names;
    unsigned nnames, capnames;
    struct charset_map_pair *maps;
    unsigned nmaps, capmaps;
};

/* Unset, before the directives. */
void charset_conf_init(struct charset_conf *c);

/*
 * nginx's merge (the defaults for `prev` NULL), then its load-time check of
 * the merged location: a source_charset other than the charset needs a
 * charset_map between them, and Switchyard refuses the recoding even then.
 * 0, or -1 with the error reported.
 */
int charset_conf_merge(struct conf_parser *p, struct charset_conf *c,
                       const struct charset_conf *prev);

/* Is `name` a charset the configuration names (case-insensitive)? */
int charset_known(const struct charset_registry *reg, struct str name);

/* Is there a charset_map between the charsets `a` and `b`, either way? */
int charset_has_map(const struct charset_registry *reg, struct str a, struct str b);

#endif
