/*
 * vars.h - variables and templates.
 *
 * At configuration load every string that may contain "$name" / "${name}" is
 * compiled once into a template: a list of literal slices and variable
 * references. At run time the HTTP layer evaluates templates with
 * tmpl_eval() (http/vars_eval.c), which asks var_value() for each variable.
 * Nothing here runs per request except evaluation.
 */
#ifndef SY_CONF_VARS_H
#define SY_CONF_VARS_H

#include <stdint.h>

#include "core/str.h"

struct arena;
struct map_conf;

enum var_kind {
    VAR_BUILTIN,        /* id = enum var_builtin */
    VAR_HTTP,           /* $http_NAME: request header; name = "name" lower-case with '_' */
    VAR_ARG,            /* $arg_NAME: query argument (case-sensitive name) */
    VAR_COOKIE,         /* $cookie_NAME */
    VAR_SENT_HTTP,      /* $sent_http_NAME: response header sent to the client */
    VAR_UPSTREAM_HTTP,  /* $upstream_http_NAME: response header from upstream */
    VAR_UPSTREAM_COOKIE,/* $upstream_cookie_NAME */
    VAR_UPSTREAM_TRAILER,/* $upstream_trailer_NAME: trailers are not kept, never found */
    VAR_SENT_TRAILER,   /* $sent_trailer_NAME: no add_trailer, never found */
    VAR_MAP,            /* defined by map{}; `map` points at it */
    VAR_SET,            /* user variable assigned by `set`; id = slot */
    VAR_CAPTURE,        /* $1..$9 from the last regex match; id = number */
    VAR_NAMED_CAPTURE,  /* (?<name>...) from a location/server_name/if regex; name */
    VAR_GEO,            /* defined by geo{}; `data` is its struct geo_conf (conf/geo.h) */
    VAR_SPLIT,          /* defined by split_clients{}; `data` is its struct split_clients_conf */
};

enum var_builtin {
    VB_HOST, VB_REMOTE_ADDR, VB_REMOTE_PORT, VB_SERVER_ADDR, VB_SERVER_PORT,
    VB_SERVER_NAME, VB_SERVER_PROTOCOL, VB_SCHEME, VB_HTTPS, VB_REQUEST_URI, VB_URI,
    VB_DOCUMENT_URI, VB_ARGS, VB_QUERY_STRING, VB_IS_ARGS, VB_REQUEST_METHOD,
    VB_REQUEST_LENGTH, VB_REQUEST, VB_CONTENT_LENGTH, VB_CONTENT_TYPE,
    VB_PROXY_ADD_X_FORWARDED_FOR, VB_PROXY_HOST, VB_PROXY_PORT, VB_STATUS,
    VB_BODY_BYTES_SENT, VB_BYTES_SENT, VB_REQUEST_TIME, VB_UPSTREAM_ADDR,
    VB_UPSTREAM_STATUS, VB_UPSTREAM_RESPONSE_TIME, VB_UPSTREAM_CONNECT_TIME,
    VB_UPSTREAM_HEADER_TIME, VB_UPSTREAM_RESPONSE_LENGTH, VB_TIME_LOCAL,
    VB_TIME_ISO8601, VB_MSEC, VB_CONNECTION, VB_CONNECTION_REQUESTS,
    VB_HTTP_USER_AGENT, VB_HTTP_REFERER, VB_REQUEST_BODY, VB_REMOTE_USER,
    VB_HOSTNAME, VB_PID, VB_NGINX_VERSION, VB_REQUEST_ID, VB_REALPATH_ROOT,
    VB_DOCUMENT_ROOT, VB_REQUEST_FILENAME, VB_BINARY_REMOTE_ADDR, VB_SENT_HTTP_CONTENT_TYPE_UNUSED,
    /* tunnel variables (WebSocket issue) */
    VB_TUNNEL_DURATION, VB_TUNNEL_BYTES_FROM_CLIENT, VB_TUNNEL_BYTES_FROM_UPSTREAM,
    VB_TUNNEL_CLOSE_REASON,
    /* TLS (later) */
    VB_SSL_PROTOCOL, VB_SSL_CIPHER, VB_SSL_SERVER_NAME,
    /* PROXY protocol (listen ... proxy_protocol) and the realip module */
    VB_PROXY_PROTOCOL_ADDR, VB_PROXY_PROTOCOL_PORT, VB_PROXY_PROTOCOL_SERVER_ADDR,
    VB_PROXY_PROTOCOL_SERVER_PORT, VB_REALIP_REMOTE_ADDR, VB_REALIP_REMOTE_PORT,
    /* limit_req / limit_conn results */
    VB_LIMIT_REQ_STATUS, VB_LIMIT_CONN_STATUS,
    /* issue 12: the rest of nginx's variables */
    VB_UPSTREAM_BYTES_RECEIVED, VB_UPSTREAM_BYTES_SENT, VB_UPSTREAM_CACHE_STATUS,
    VB_UPSTREAM_CACHE_LAST_MODIFIED, VB_UPSTREAM_CACHE_ETAG, VB_CONNECTION_TIME,
    VB_SSL_SESSION_REUSED, VB_SSL_EARLY_DATA, VB_SSL_CIPHERS, VB_SSL_CURVE, VB_SSL_CURVES,
    VB_SSL_SESSION_ID, VB_SSL_ALPN_PROTOCOL, VB_SSL_CLIENT_VERIFY, VB_SSL_CLIENT_CERT,
    VB_SSL_CLIENT_RAW_CERT, VB_SSL_CLIENT_ESCAPED_CERT, VB_SSL_CLIENT_S_DN, VB_SSL_CLIENT_I_DN,
    VB_SSL_CLIENT_S_DN_LEGACY, VB_SSL_CLIENT_I_DN_LEGACY, VB_SSL_CLIENT_SERIAL,
    VB_SSL_CLIENT_FINGERPRINT, VB_SSL_CLIENT_V_START, VB_SSL_CLIENT_V_END,
    VB_SSL_CLIENT_V_REMAIN, VB_PIPE, VB_REQUEST_COMPLETION, VB_REQUEST_BODY_FILE,
    VB_LIMIT_RATE, VB_TCPINFO_RTT, VB_TCPINFO_RTTVAR, VB_TCPINFO_SND_CWND,
    VB_TCPINFO_RCV_SPACE, VB_REQUEST_PORT, VB_IS_REQUEST_PORT, VB_HTTP2, VB_HTTP3,
    VB_SWITCHYARD_VERSION,
    /* compression (http/compress.c) */
    VB_GZIP_RATIO, VB_BROTLI_RATIO,
    VB_INVALID_REFERER,         /* ngx_http_referer_module (http/referer.c) */
    /* ngx_http_stub_status_module (http/stub_status.c) */
    VB_CONNECTIONS_ACTIVE, VB_CONNECTIONS_READING, VB_CONNECTIONS_WRITING,
    VB_CONNECTIONS_WAITING,
    VB_SECURE_LINK, VB_SECURE_LINK_EXPIRES, /* http/secure_link.c */
    VB__COUNT
};

struct var_ref {
    enum var_kind kind;
    unsigned id;                /* builtin id, set slot, or capture number */
    struct str name;            /* suffix after http_/arg_/..., or the variable name */
    const struct map_conf *map; /* VAR_MAP */
    const void *data;           /* VAR_GEO, VAR_SPLIT: the module's compiled block */
    /* Added by the loader (conf/vars.c): */
    struct str full;            /* the whole name after '$' (lower-case, except an arg_
                                   suffix), the registry's key */
    int unresolved;             /* load-time placeholder for a name not yet defined by
                                   map/set/a named capture; never left in a loaded
                                   generation (gen_load fails: unknown "x" variable) */
    const char *file;           /* where the variable was first referenced */
    unsigned line;
};

struct tmpl_seg {
    struct str lit;             /* literal bytes before the variable (may be empty) */
    const struct var_ref *var;  /* NULL for a trailing literal */
};

struct tmpl {
    struct tmpl_seg *segs;      /* NULL when the value is a constant */
    unsigned nsegs;
    struct str raw;             /* the source text; also the value when constant */
    int constant;               /* no variables: evaluation returns `raw` */
};

/*
 * Every distinct variable referenced by the configuration, created on first
 * reference. Map variables are registered when the map block is read; a
 * reference to an unknown plain name ("$foo" that is neither builtin, prefix
 * form, map, set nor capture) is a configuration error:
 *     unknown "foo" variable
 */
struct var_registry {
    struct var_ref **refs;
    unsigned nrefs, cap;
    unsigned nset_slots;        /* number of `set` variables */
    /* Added by the loader (conf/vars.c): */
    int allow_forward;          /* while loading: an unknown plain name becomes an
                                   `unresolved` placeholder instead of an error, so it
                                   may be defined later in the file (nginx checks at
                                   the end); see var_first_unresolved() */
    int limit_rate_assigned;    /* `set $limit_rate` appears in the configuration */
    const char *cur_file;       /* directive being loaded, recorded in new refs */
    unsigned cur_line;
};

/* Name of a builtin for docs and -T; NULL when out of range. */
const char *var_builtin_name(enum var_builtin id);

/*
 * Find or create the variable called `name` (without '$'). Returns NULL and
 * sets *err to a static phrase when unknown.
 */
const struct var_ref *var_lookup(struct var_registry *reg, struct arena *a, struct str name,
                                 const char **err);

/*
 * At run time (the registry is read-only then): the variable `name` as the
 * configuration knows it, or as its name alone means it (a builtin, a prefix
 * form such as $http_x, a capture) in `tmp`; NULL when the name means
 * nothing (nginx: not found). `a` holds the lower-cased name. (SSI.)
 */
const struct var_ref *var_find_runtime(const struct var_registry *reg, struct arena *a,
                                       struct str name, struct var_ref *tmp);

/* Register a variable defined by map{} (fails if already defined: "duplicate ..."). */
const struct var_ref *var_define_map(struct var_registry *reg, struct arena *a, struct str name,
                                     const struct map_conf *map, const char **err);

/*
 * Register a variable computed by a module's block (geo, split_clients):
 * `kind` is VAR_GEO or VAR_SPLIT and `data` its compiled block. The rules
 * are var_define_map()'s (a later definition takes the variable over).
 */
const struct var_ref *var_define_module(struct var_registry *reg, struct arena *a,
                                        struct str name, enum var_kind kind, const void *data,
                                        const char **err);

/*
 * Register (or find) a `set` variable and return its reference. Returns NULL
 * (added) when the name cannot be assigned -- a builtin, a map variable or a
 * capture; the loader reports nginx's `the duplicate "x" variable` -- or on
 * allocation failure. A prefix form ($http_x, $arg_x, ...) becomes the set
 * variable, as in nginx. The builtin nginx lets `set` change, $args, gives a
 * ref of its own (not registered: reading $args stays the builtin) whose id
 * is VAR_SET_BUILTIN | VB_ARGS: assigning it changes the request's arguments.
 */
#define VAR_SET_BUILTIN 0x80000000u
const struct var_ref *var_define_set(struct var_registry *reg, struct arena *a, struct str name);

/*
 * Register (or find) a named capture "(?<name>...)" of a regex compiled at
 * load. Fails with a phrase ("the duplicate \"x\" variable") when `name` is
 * a builtin or a map variable. (Added by conf/vars.c.)
 */
const struct var_ref *var_define_named_capture(struct var_registry *reg, struct arena *a,
                                               struct str name, const char **err);

/* First placeholder still `unresolved` (config order), or NULL. (Added.) */
const struct var_ref *var_first_unresolved(const struct var_registry *reg);

/*
 * Compile `text` into `out`. "$name", "${name}" and "$1".."$9" are variables;
 * a '$' followed by anything else is an error ("invalid variable name").
 * Returns 0, or -1 with *err set to a static phrase.
 */
int tmpl_compile(struct tmpl *out, struct var_registry *reg, struct arena *a, struct str text,
                 const char **err);

#endif
