/*
 * gzip.h - configuration of response compression: nginx's
 * ngx_http_gzip_module (gzip, gzip_types, gzip_min_length, ...), the gzip
 * directives of ngx_http_core_module (gzip_vary, gzip_http_version,
 * gzip_proxied, gzip_disable), ngx_http_gzip_static_module (gzip_static) and
 * the widely used ngx_brotli modules (brotli, brotli_types, brotli_static,
 * ...). The directive tables are in gzip.c; the filter that uses these
 * settings is src/http/compress.c.
 *
 * The settings of one level live in `struct compress_conf`, embedded as the
 * last field of struct loc_conf (`lc->compress`), created unset by
 * compress_conf_init() and merged by compress_conf_merge() with nginx's
 * defaults and inheritance (merge.c calls both).
 */
#ifndef SY_CONF_GZIP_H
#define SY_CONF_GZIP_H

#include <stdint.h>

#include "core/str.h"

/* gzip_static / brotli_static values */
#define COMPRESS_STATIC_OFF 0
#define COMPRESS_STATIC_ON 1
#define COMPRESS_STATIC_ALWAYS 2

/* gzip_proxied bits (nginx's NGX_HTTP_GZIP_PROXIED_*) */
#define GZIP_PROXIED_OFF 0x002u
#define GZIP_PROXIED_EXPIRED 0x004u
#define GZIP_PROXIED_NO_CACHE 0x008u
#define GZIP_PROXIED_NO_STORE 0x010u
#define GZIP_PROXIED_PRIVATE 0x020u
#define GZIP_PROXIED_NO_LM 0x040u
#define GZIP_PROXIED_NO_ETAG 0x080u
#define GZIP_PROXIED_AUTH 0x100u
#define GZIP_PROXIED_ANY 0x200u

/* A MIME type list (gzip_types, brotli_types): lower-case types, `any` for
 * "*". text/html always matches (nginx's ngx_http_html_default_types). */
struct compress_types {
    struct str *types;
    unsigned ntypes;
    int any;
};

struct compress_conf {
    /* ngx_http_gzip_module */
    int gzip;                           /* off */
    int gzip_level;                     /* 1 (1..9) */
    uint64_t gzip_min_length;           /* 20 */
    int gzip_wbits;                     /* 15 (gzip_window 32k); 9..15 */
    int gzip_memlevel;                  /* 8 (gzip_hash 64k); 1..9 */
    int gzip_bufs_num;                  /* 32 (gzip_buffers 32 4k) */
    uint64_t gzip_bufs_size;            /* 4k: the output buffer is num * size, at most 64k */
    int gzip_no_buffer;                 /* off; accepted, no effect (output is streamed) */
    uint64_t postpone_gzipping;         /* 0; accepted, no effect */
    const struct compress_types *gzip_types; /* NULL until merged: text/html only */
    /* ngx_http_core_module's gzip directives */
    int gzip_vary;                      /* off */
    int gzip_http_version;              /* 1 = 1.1 (0 = 1.0) */
    unsigned gzip_proxied;              /* 0 = unset; merged: GZIP_PROXIED_OFF */
    void **gzip_disable;                /* compiled regexes (pcre2_code), caseless */
    unsigned ngzip_disable;
    int gzip_disable_set;               /* gzip_disable given at this level */
    int gzip_disable_msie6;             /* "msie6" among gzip_disable's values */
    /* ngx_http_gzip_static_module */
    int gzip_static;                    /* COMPRESS_STATIC_*, off */
    /* ngx_brotli */
    int brotli;                         /* off */
    int brotli_level;                   /* 6 (0..11) */
    int brotli_lgwin;                   /* 19 (brotli_window 512k); 10..24 */
    uint64_t brotli_min_length;         /* 20 */
    const struct compress_types *brotli_types;
    int brotli_static;                  /* COMPRESS_STATIC_*, off */
};

/* Every field unset (called for each new level's loc_conf). */
void compress_conf_init(struct compress_conf *c);

/* Merge `c` from its parent `prev` (NULL at the top: nginx's defaults). */
void compress_conf_merge(struct compress_conf *c, const struct compress_conf *prev);

/* gzip_types / brotli_types / sub_filter_types MIME-TYPE ... (setter of
 * directive_table.h's kind, the field a `const struct compress_types *`):
 * repeated directives add up; "*" matches any type (nginx's
 * ngx_http_types_slot). */
struct conf_parser;
struct directive;
const char *compress_set_types(struct conf_parser *p, const struct directive *d, void *conf);

/* Does the content type `ct` (the header value; parameters after ';' are
 * ignored, case-insensitive) match `t`? text/html always does. */
int compress_types_match(const struct compress_types *t, struct str ct);

#endif
