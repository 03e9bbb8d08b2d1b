/*
 * directives.h - internal interface of the configuration loader: the state
 * shared by directives.c (the directive table, setters, http finalisation),
 * merge.c (create/merge of per-level confs) and gen.c (gen_load). Nothing
 * outside src/conf includes this; the public result is conf.h's generation.
 */
#ifndef SY_CONF_DIRECTIVES_H
#define SY_CONF_DIRECTIVES_H

#include <stdarg.h>
#include <stddef.h>

#include "conf/conf.h"
#include "conf/parse.h"

/* Contexts a directive may appear in (nginx's NGX_*_CONF bits). */
#define CTX_MAIN 0x001u
#define CTX_EVENTS 0x002u
#define CTX_HTTP 0x004u
#define CTX_SERVER 0x008u
#define CTX_LOCATION 0x010u
#define CTX_LIF 0x020u /* `if` inside a location */
#define CTX_SIF 0x040u /* `if` at server level */
#define CTX_UPSTREAM 0x080u
#define CTX_LMT 0x100u /* limit_except { } (src/conf/access.c) */

struct srv_build;
struct loc_build;
struct ups_build;
struct http_build;

/*
 * Loader state while walking the tree. `node` is the directive being handled
 * (its file:line go into messages); the level pointers say where values go.
 */
struct conf_parser {
    struct generation *g;
    struct arena *a;              /* &g->arena */
    const char *conf_prefix;      /* directory of the main config file, ends in '/' */
    const struct conf_node *node; /* directive being handled */
    char *err; /* the errors, one per line */
    size_t errlen;
    unsigned nerrors; /* errors reported so far */
    int fatal;        /* out of memory: stop the walk at once */
    char *warn;
    size_t warnlen;

    int events_seen;
    int http_seen;

    struct http_build *hb;  /* inside http{} (and after) */
    struct srv_build *sb;   /* inside server{} */
    struct loc_build *lb;   /* inside location{} (innermost) */
    struct ups_build *ub;   /* inside upstream{} */
    struct loc_conf *lc;    /* conf receiving LVL_LOC directives at this level */
    struct ssl_conf *ssl;   /* conf receiving ssl_* (http or server level) */
    struct rw_op **rw_tail; /* where the next rewrite op (return/set/if/rewrite/break) goes */
    int if_lc_used;         /* a non-rewrite directive was set inside this `if` */
    const struct conf_node *block_first; /* first directive of the block being run (for
                                            "is duplicate" of directives kept nowhere) */

    struct access_log *default_log; /* logs/access.log combined, created on first need */

    /* directives of absent upstream modules seen (absent_modules.c), per module */
    struct absent_use {
        const char *label;
        const struct conf_node *first;
        unsigned count;
    } absent[6];
};

/* Marker returned by setters that already wrote the whole message. */
extern const char conf_error_done[];
#define CONF_ERROR conf_error_done

/* "msg in FILE:LINE" (or " in command line") for the current node; returns CONF_ERROR. */
const char *conf_err(struct conf_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Same, located at file:line (no location when file is NULL); returns -1. */
int conf_err_at(struct conf_parser *p, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Append a warning line (nginx "[warn]" text without the level). */
void conf_warn(struct conf_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, located at the directive being handled (" in FILE:LINE"). */
void conf_warn_node(struct conf_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The directive being handled appeared earlier in the same block (for the
 * "is duplicate" of directives whose value is kept nowhere). */
int conf_repeated_in_block(const struct conf_parser *p);
/* Compile a PCRE2 regex owned by the generation (freed with it); NULL after
 * writing nginx's "pcre2_compile() failed" message. */
void *conf_regex_compile(struct conf_parser *p, const char *pattern, int caseless);

/*
 * Build the generation from the trees: `gtree` (the -g text, may be NULL)
 * then `tree` (the main file), at main level. Returns 0 or -1 with p->err set.
 */
int conf_build(struct conf_parser *p, const struct conf_node *gtree, const struct conf_node *tree);

/*
 * The directive table, for documentation and tests (docs/directives.md is
 * checked against it). A name has one entry per kind of block it serves
 * ("server" in http and in upstream, "keepalive_timeout" ...).
 */
#define CONF_ARGS_MANY 0xffu
struct conf_directive_info {
    const char *name;
    unsigned ctx;      /* CTX_* where it may appear */
    unsigned min_args; /* arguments accepted ... */
    unsigned max_args; /* ... CONF_ARGS_MANY: no upper bound */
    int block;         /* takes a { } block */
};
/* Entry `i` into *out and 1; 0 when i is past the end. */
int conf_directive_at(unsigned i, struct conf_directive_info *out);

/* Run the directives of a block (`n`: its first child) in context `ctx`
 * (CTX_*), for a module's block directive (limit_except). 0 or -1. */
int conf_run_block(struct conf_parser *p, const struct conf_node *n, unsigned ctx);

/* ---- merge.c ---- */

/* A loc_conf with every field unset (CONF_UNSET / NULL). */
struct loc_conf *loc_conf_create(struct arena *a);

/*
 * Fill the unset fields of `c` from `prev` (NULL: nginx's defaults), with
 * nginx's inheritance (lists replace, never append). `loc` is the location
 * owning `c` (NULL for http/server level); `noname` for the conf of an `if`
 * block, which also inherits proxy_pass and alias. Returns 0 or -1.
 */
int loc_conf_merge(struct conf_parser *p, struct loc_conf *c, const struct loc_conf *prev,
                   const struct location *loc, int noname);

void ssl_conf_init(struct ssl_conf *s);
void ssl_conf_merge(struct ssl_conf *c, const struct ssl_conf *prev);

/* Join a relative path to g->prefix (or return it as is). Arena-owned. */
const char *conf_full_path(struct conf_parser *p, const char *path);

#endif
