/*
 * modules.h - which of nginx's modules Switchyard has, in one table.
 *
 * `switchyard -V` prints its configure arguments from this table (nginx's
 * form: `--without-X` for a module nginx builds by default that Switchyard
 * lacks, `--with-X` for one nginx builds only on request that Switchyard
 * has), and the configuration loader uses it to answer an nginx directive
 * Switchyard does not implement with what it is, instead of the
 * `unknown directive` of a typo. tests/unit/test_directives.c proves every
 * row against the directive table: a module claimed present has its probe
 * directive accepted, one claimed absent has it refused, and no directive
 * listed as lacking is in the directive table.
 */
#ifndef SY_CONF_MODULES_H
#define SY_CONF_MODULES_H

/* struct conf_module.flags */
#define CONF_MOD_NGINX_DEFAULT 0x1u /* nginx builds it unless configured --without-X */
#define CONF_MOD_BUILT 0x2u         /* Switchyard has it (its probe is accepted) */
#define CONF_MOD_INERT 0x4u         /* Switchyard lacks it, but accepts its directives with
                                       no effect and a -t warning (absent_modules.c) */

/* Where a module's probe directive goes in a test configuration. */
enum conf_probe_ctx {
    PROBE_MAIN,     /* top level, after `events {}` */
    PROBE_HTTP,     /* http { PROBE } */
    PROBE_LOCATION, /* http { server { location / { PROBE } } } */
    PROBE_UPSTREAM, /* http { upstream u { PROBE server 127.0.0.1:9; } } */
};

struct conf_module {
    const char *name;  /* nginx's configure name: "http_gzip_module", "http-cache", "stream" */
    const char *label; /* how messages name it: "ngx_http_gzip_module" */
    unsigned flags;    /* CONF_MOD_* */
    enum conf_probe_ctx probe_ctx;
    const char *probe;   /* one directive of the module, with its ';' or block */
    const char *lacking; /* nginx directives of the module Switchyard does not implement,
                            space-separated ("" = none) */
    const char *planned; /* the same, planned for a later compatibility release */
};

/* Row `i` of the table, NULL past the end. */
const struct conf_module *conf_module_at(unsigned i);

/*
 * The configure switch prefix `-V` prints for `m`: "--without-" (nginx has
 * it by default, Switchyard does not), "--with-" (nginx has it on request,
 * Switchyard has it), or NULL (nothing to say).
 */
const char *conf_module_switch(const struct conf_module *m);

/*
 * The module whose nginx directive `name` Switchyard does not implement, or
 * NULL when `name` is no such directive (a typo, or a directive Switchyard
 * has). *planned is set to 1 when it is planned for a later release.
 */
const struct conf_module *conf_module_lacking(const char *name, int *planned);

#endif
