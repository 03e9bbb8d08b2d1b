/*
 * referer.h - nginx's ngx_http_referer_module: `valid_referers` (server,
 * location) compiled per level, read by http/referer.c for $invalid_referer.
 */
#ifndef SY_CONF_REFERER_H
#define SY_CONF_REFERER_H

#include "core/str.h"

enum referer_host_kind {
    REF_EXACT,     /* example.com (lower-case) */
    REF_WILD_HEAD, /* *.example.com -> "example.com"; dot_form for .example.com */
    REF_WILD_TAIL, /* www.example.* -> "www.example" */
};

struct referer_host {
    enum referer_host_kind kind;
    struct str host;
    int dot_form;   /* ".example.com": also example.com itself */
    struct str uri; /* "/path" prefix the referer must have; empty: any */
};

struct referer_conf {
    int none;         /* `none`: no Referer header is valid */
    int blocked;      /* `blocked`: a Referer without http:// or https:// is valid */
    int server_names; /* the server's names are valid hosts */
    struct referer_host *hosts;
    unsigned nhosts;
    void **regex;     /* `~regex` (caseless, pcre2_code *), matched after the scheme */
    unsigned nregex;
    int checked;      /* merge.c ran referer_conf_check() on it */
};

struct conf_parser;

/*
 * nginx's check when a level's list is final (merge.c): `none` or `blocked`
 * without any host is an error. 0, or -1 with the message written.
 */
int referer_conf_check(struct conf_parser *p, struct referer_conf *rc);

#endif
