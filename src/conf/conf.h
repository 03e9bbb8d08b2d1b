/*
 * conf.h - the typed configuration: one immutable *generation* built from the
 * generic tree (parse.h) by directives.c, then shared read-only by every
 * request that starts while it is current (ARCHITECTURE decision 8).
 *
 * All memory of a generation lives in gen->arena and is freed in one call.
 * Values that may carry variables are compiled once into templates (vars.h).
 * Runtime state (open log fds, listening fds, upstream failure counters,
 * round-robin weights) is NOT here: it belongs to the worker, which indexes it
 * by the small integers these structs carry (`index` fields).
 */
#ifndef SY_CONF_CONF_H
#define SY_CONF_CONF_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/gzip.h"
#include "conf/autoindex.h"
#include "conf/charset.h"
#include "conf/headers_extra.h"
#include "conf/limit_rate.h"
#include "conf/sub.h"
#include "conf/proxy_socket.h"
#include "conf/secure_link.h"
#include "conf/ssi.h"
#include "conf/cache.h"
#include "conf/vars.h"
#include "core/arena.h"
#include "core/log.h"
#include "core/str.h"

#define CONF_UNSET      (-1)
#define CONF_UNSET_U64  UINT64_MAX
#define CONF_UNSET_PTR  ((void *)-1)

/* ------------------------------------------------------------------ logs */

/* enum log_level is core/log.h's */

struct log_format {
    const char *name;           /* "combined" is predefined */
    struct tmpl tmpl;           /* the whole line (a '\n' is appended at write) */
    int escape_json;            /* escape=json; default escape (nginx "default") otherwise */
    int escape_none;            /* escape=none */
};

struct access_log {
    const char *path;           /* absolute (prefix-joined) */
    const struct log_format *format;
    unsigned file_index;        /* index into gen->log_paths: one fd per distinct path */
    struct tmpl *cond;          /* if=...: skip when "" or "0"; NULL = always */
};

/* ------------------------------------------------------------- upstreams */

struct upstream_peer {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const char *name;           /* "127.0.0.1:9000" as printed in logs/$upstream_addr */
    unsigned weight;            /* default 1 */
    unsigned max_fails;         /* default 1; 0 = never mark failed */
    uint64_t fail_timeout;      /* ms, default 10s */
    int backup;
    int down;
    unsigned max_conns;         /* (added) max_conns=N; 0 = unlimited */
};

/* (added) Load-balancing method named in an upstream{} block. The runtime may
 * treat the ones it does not implement as round robin. */
enum upstream_balancer {
    UPS_BALANCE_ROUND_ROBIN = 0, /* default (weighted) */
    UPS_BALANCE_LEAST_CONN,      /* least_conn */
    UPS_BALANCE_IP_HASH,         /* ip_hash */
    UPS_BALANCE_HASH,            /* hash KEY [consistent] */
    UPS_BALANCE_RANDOM,          /* random [two [least_conn]] */
};

struct upstream_conf {
    const char *name;           /* group name, or "host:port" for an implicit group */
    int implicit;               /* created from a proxy_pass host, not an upstream{} block */
    struct upstream_peer *peers;/* primaries first, then backups */
    unsigned npeers;
    unsigned nprimary;          /* peers[0..nprimary) are primaries */
    unsigned keepalive;         /* idle connections cached per worker; 0 = none */
    uint64_t keepalive_timeout; /* ms, default 60s */
    unsigned keepalive_requests;/* default 1000 */
    uint64_t keepalive_time;    /* ms, default 1h */
    unsigned index;             /* 0..gen->nupstreams: worker runtime state slot */
    const char *file; unsigned line;
    /* added */
    enum upstream_balancer balancer;
    struct tmpl *hash_key;      /* UPS_BALANCE_HASH: the key template */
    int hash_consistent;        /* hash ... consistent */
    int random_two;             /* random two [least_conn] */
};

/* ------------------------------------------------------------------ maps */

struct map_entry {
    struct str key;             /* exact key (lower-cased when hostnames) */
    struct tmpl value;
};

struct map_regex {
    void *re;                   /* pcre2_code *, owned by the generation (freed by gen_free) */
    struct tmpl value;
};

struct map_conf {
    struct tmpl source;         /* the first argument, e.g. $http_upgrade */
    int hostnames;              /* `hostnames` given: *.x / x.* keys allowed */
    struct map_entry *exact;    /* sorted for bsearch (case-sensitive unless hostnames) */
    unsigned nexact;
    struct map_entry *wild_head;/* "*.example.com" / ".example.com" keys, stored as "example.com" */
    unsigned nwild_head;
    struct map_entry *wild_tail;/* "www.example.*" keys, stored as "www.example." */
    unsigned nwild_tail;
    struct map_regex *regex;    /* in config order */
    unsigned nregex;
    struct tmpl deflt;          /* default value ("" when none given) */
    int volatile_;              /* `volatile` given (accepted; we never cache anyway) */
};

/*
 * Order of map_conf.exact keys: ASCII case-insensitive bytewise comparison,
 * a shorter key first when one is a prefix of the other (<0, 0, >0 like
 * memcmp). The configuration loader sorts with this so map_find can bsearch.
 */
/* (conf/map.c) */
int map_key_cmp(struct str a, struct str b);

/* --------------------------------------------------------- rewrite ops */

enum rw_cond_op {
    RW_COND_TRUTHY,             /* if ($var): not "" and not "0" */
    RW_COND_EQ, RW_COND_NE,     /* = != */
    RW_COND_RE, RW_COND_RE_I,   /* ~ ~* */
    RW_COND_NRE, RW_COND_NRE_I, /* !~ !~* */
    RW_COND_FILE, RW_COND_NFILE,/* -f !-f */
    RW_COND_DIR, RW_COND_NDIR,  /* -d !-d */
    RW_COND_EXISTS, RW_COND_NEXISTS, /* -e !-e */
    RW_COND_EXEC, RW_COND_NEXEC,     /* (added) -x !-x: executable */
};

struct rw_op;

struct rw_return {
    int code;                   /* 444 = close without response */
    struct tmpl *text;          /* body text or redirect URL; NULL when none */
};

struct rw_op {
    enum { RW_RETURN, RW_IF, RW_SET, RW_REWRITE, RW_BREAK } type;
    union {
        struct rw_return ret;
        struct {
            enum rw_cond_op op;
            struct tmpl lhs;        /* variable (or path for -f etc.) */
            struct tmpl rhs;        /* for = and != */
            void *re;               /* pcre2_code * for regex ops */
            struct rw_op *body;     /* ops inside the if block */
            struct loc_conf *lc;    /* directives inside `if` other than rewrite ops
                                       (e.g. proxy_pass, add_header), merged from the
                                       enclosing location; NULL when none */
        } cond;
        struct {
            unsigned var_index;     /* user variable slot (VAR_SET) */
            struct tmpl value;
        } set;
        struct {
            void *re;               /* pcre2_code * matched against $uri */
            struct tmpl replacement;/* may use $1.. captures */
            enum {
                RW_FLAG_NONE = 0,   /* continue with the next rewrite op */
                RW_FLAG_LAST,       /* stop; search the location again with the new URI */
                RW_FLAG_BREAK,      /* stop; stay in this location with the new URI */
                RW_FLAG_REDIRECT,   /* 302 to the replacement */
                RW_FLAG_PERMANENT,  /* 301 to the replacement */
            } flag;
        } rewrite;
    } u;
    struct rw_op *next;
    const char *file; unsigned line;
};

/* ---------------------------------------------------------- error pages */

struct error_page {
    int *codes; unsigned ncodes;
    int override;               /* "=" alone (stored as 0): use the target's status; -1 none;
                                   else the code */
    struct tmpl target;         /* URI, @named location, or URL (redirect 302) */
};

/* ----------------------------------------------------------------- proxy */

#define NEXT_UPSTREAM_ERROR          0x001u
#define NEXT_UPSTREAM_TIMEOUT        0x002u
#define NEXT_UPSTREAM_INVALID_HEADER 0x004u
#define NEXT_UPSTREAM_HTTP_500       0x008u
#define NEXT_UPSTREAM_HTTP_502       0x010u
#define NEXT_UPSTREAM_HTTP_503       0x020u
#define NEXT_UPSTREAM_HTTP_504       0x040u
#define NEXT_UPSTREAM_HTTP_403       0x080u
#define NEXT_UPSTREAM_HTTP_404       0x100u
#define NEXT_UPSTREAM_HTTP_429       0x200u
#define NEXT_UPSTREAM_NON_IDEMPOTENT 0x400u
#define NEXT_UPSTREAM_OFF            0x800u

struct proxy_pass {
    int https;                  /* scheme is https */
    const struct upstream_conf *upstream; /* static target; NULL when `dynamic` */
    struct str uri;             /* URI part after host[:port]; valid when has_uri */
    int has_uri;
    struct tmpl *dynamic;       /* whole argument, when it contains variables */
    struct str host;            /* $proxy_host: "host" or "host:port" (port omitted when default) */
    struct str port;            /* $proxy_port, e.g. "80" */
    const char *file; unsigned line;
    struct str url;             /* (added) "http://host[:port]" as written, no URI (static only);
                                   `proxy_redirect default` replaces url+uri */
};

struct header_tmpl {
    struct str name;            /* as written */
    struct tmpl value;          /* "" after evaluation => header not sent */
};

struct add_header {
    struct str name;
    struct tmpl value;
    int always;
};

struct proxy_redirect {
    int is_default;             /* `proxy_redirect default` (expanded at merge) */
    struct tmpl from;           /* replaced prefix (or regex when re != NULL) */
    void *re;                   /* pcre2_code * for "~" / "~*" forms */
    struct tmpl to;
};

/* ------------------------------------------------------------ real IP */

/* A set_real_ip_from entry (ngx_cidr_t): an address with a prefix mask, or
 * "unix:" (family AF_UNIX, matches every Unix-socket peer). */
struct realip_cidr {
    uint8_t family;             /* AF_INET, AF_INET6 or AF_UNIX */
    uint8_t addr[16];           /* network order, already masked; IPv4 in the first 4 */
    uint8_t mask[16];
};

/*
 * Parse "addr[/bits]" (IPv4 or IPv6) into `out` (conf/cidr.c). Returns 0, 1 when the
 * address had bits set below the mask (they are cleared: nginx warns "low
 * address bits of ... are meaningless"), or -1 when it is not a CIDR.
 */
int realip_parse_cidr(const char *text, struct realip_cidr *out);

/* loc_conf.real_ip_header: where the client address comes from */
#define REALIP_HDR_X_REAL_IP       0 /* X-Real-IP (nginx's default) */
#define REALIP_HDR_X_FORWARDED_FOR 1 /* X-Forwarded-For, right to left */
#define REALIP_HDR_PROXY_PROTOCOL  2 /* the PROXY protocol header's source */
#define REALIP_HDR_OTHER           3 /* any other header, named in real_ip_header_name */

/* ---------------------------------------------------------------- limits */

/* Kinds of limit zones (the same values as core/shm_zone.h's enum). */
#define LIMIT_ZONE_REQ  1
#define LIMIT_ZONE_CONN 2

/* (added) One limit_req_zone / limit_conn_zone: the state lives in a shared
 * memory zone the runtime attaches (conf/runtime.c, core/shm_zone.c). */
struct limit_zone {
    const char *name;
    uint64_t size;              /* bytes; 0 while only referenced (not declared yet) */
    unsigned kind;              /* LIMIT_ZONE_* */
    struct tmpl key;            /* e.g. $binary_remote_addr; an empty value is not limited */
    uint64_t rate;              /* limit_req: milli-requests per second (1r/m = 16) */
    unsigned index;             /* slot in gen_rt.zones */
    const char *file; unsigned line; /* the declaration, or the first reference */
};

/* (added) limit_req zone=name [burst=n] [nodelay | delay=n] */
struct limit_req_rule {
    const struct limit_zone *zone;
    uint64_t burst;             /* milli-requests above the rate that are accepted */
    uint64_t delay;             /* milli-requests served at once; UINT64_MAX = nodelay */
};

/* (added) limit_conn zone number */
struct limit_conn_rule {
    const struct limit_zone *zone;
    unsigned conn;              /* requests in progress allowed per key */
};

/* ------------------------------------------------------- location conf */

/*
 * Per-level configuration, nginx's "loc conf": one at http level, one per
 * server (server-level directives), one per location. directives.c merges
 * every level from its parent after parsing, so at run time each location's
 * loc_conf is complete (no CONF_UNSET left).
 */
/* loc_conf.proxy_ignore_headers: upstream header fields not acted on (nginx's names) */
#define PROXY_IGNORE_XA_REDIRECT 0x001u
#define PROXY_IGNORE_XA_EXPIRES 0x002u
#define PROXY_IGNORE_XA_LIMIT_RATE 0x004u
#define PROXY_IGNORE_XA_BUFFERING 0x008u
#define PROXY_IGNORE_XA_CHARSET 0x010u
#define PROXY_IGNORE_EXPIRES 0x020u
#define PROXY_IGNORE_CACHE_CONTROL 0x040u
#define PROXY_IGNORE_SET_COOKIE 0x080u
#define PROXY_IGNORE_VARY 0x100u
#define PROXY_IGNORE_SET 0x8000u /* the directive was given at this level */

struct loc_conf {
    /* client side */
    uint64_t client_header_timeout;     /* ms, 60s */
    uint64_t client_body_timeout;       /* ms, 60s */
    uint64_t send_timeout;              /* ms, 60s */
    uint64_t keepalive_timeout;         /* ms, 75s; 0 disables keep-alive */
    uint64_t keepalive_header_timeout;  /* second keepalive_timeout arg -> "Keep-Alive: timeout=N"; UNSET none */
    uint64_t keepalive_time;            /* ms, 1h */
    int64_t keepalive_requests;         /* 1000 */
    int keepalive_disable_msie6;        /* keepalive_disable (accepted) */
    uint64_t client_max_body_size;      /* 1m; 0 = unlimited */
    uint64_t client_body_buffer_size;   /* 16k */
    uint64_t client_header_buffer_size; /* 1k */
    int64_t large_client_header_buffers_num;   /* 4 */
    uint64_t large_client_header_buffers_size; /* 8k */
    int server_tokens;                  /* on */
    int sendfile;                       /* off (nginx default); we always may use it */
    int tcp_nodelay;                    /* on */

    /* real client address (ngx_http_realip_module; http/realip.c) */
    struct realip_cidr *real_ip_from; unsigned nreal_ip_from; /* trusted peers; none: off */
    int real_ip_header;                 /* REALIP_HDR_*; X-Real-IP */
    struct str real_ip_header_name;     /* REALIP_HDR_OTHER: the header name as written */
    int real_ip_recursive;              /* off */

    /* content */
    struct str default_type;            /* "text/plain" */
    const struct mime_types *types;     /* shared; built-in table when no `types` */
    struct add_header *add_headers; unsigned nadd_headers;
    struct error_page *error_pages; unsigned nerror_pages;
    struct access_log *access_logs; unsigned naccess_logs; /* 0 with access_log_off */
    int access_log_off;

    /* static files */
    struct tmpl *root;                  /* "html" relative to prefix by default */
    struct tmpl *alias;                 /* NULL unless set at this location */
    struct tmpl *index; unsigned nindex;/* "index.html" */
    struct tmpl *try_files; unsigned ntry_files; /* last one is the fallback (URI, =code or @name) */
    int disable_symlinks;               /* off (nginx default) */
    int etag;                           /* on */
    int if_modified_since;              /* 0 off, 1 exact (default), 2 before */

    /* proxy */
    struct proxy_pass *proxy_pass;      /* NULL: not a proxy location */
    struct header_tmpl *proxy_set_headers; unsigned nproxy_set_headers; /* effective list after inheritance */
    int proxy_http_version_minor;       /* 0 (nginx default "1.0") or 1 */
    uint64_t proxy_connect_timeout;     /* ms, 60s */
    uint64_t proxy_read_timeout;        /* ms, 60s */
    uint64_t proxy_send_timeout;        /* ms, 60s */
    int proxy_read_timeout_explicit;    /* set in this location or an enclosing level explicitly */
    int proxy_send_timeout_explicit;
    int proxy_buffering;                /* on (we stream with bounded memory either way) */
    int proxy_request_buffering;        /* on */
    uint64_t proxy_buffer_size;         /* 4k|8k (page size); we use our own buffer */
    int64_t proxy_buffers_num; uint64_t proxy_buffers_size; /* 8 4k|8k */
    int proxy_redirect_off;
    struct proxy_redirect *proxy_redirects; unsigned nproxy_redirects; /* default: one is_default */
    struct str *proxy_hide_headers; unsigned nproxy_hide_headers;  /* user-given, lower-case */
    struct str *proxy_pass_headers; unsigned nproxy_pass_headers;  /* lower-case */
    int proxy_pass_request_headers;     /* on */
    int proxy_pass_request_body;        /* on */
    struct tmpl *proxy_method;          /* NULL = client's method */
    struct tmpl *proxy_set_body;        /* NULL = client's body */
    int proxy_intercept_errors;         /* off */
    unsigned proxy_ignore_headers;      /* PROXY_IGNORE_* bits | PROXY_IGNORE_SET once given */
    unsigned proxy_next_upstream;       /* NEXT_UPSTREAM_*; default ERROR|TIMEOUT */
    int64_t proxy_next_upstream_tries;  /* 0 = unlimited */
    uint64_t proxy_next_upstream_timeout; /* ms; 0 = unlimited */

    /* rewrite phase at this level (server or location), in config order */
    struct rw_op *rewrite;

    /* WebSocket and other upgrades (Switchyard's own directives, docs/websocket.md) */
    int websocket_auto;                 /* on: upgrade requests are proxied as upgrades */
    uint64_t websocket_idle_timeout;    /* ms, 1h: an idle tunnel is closed with 1001 */
    uint64_t websocket_ping_interval;   /* ms, 0 = off: keep-alive pings to both sides */
    uint64_t websocket_ping_timeout;    /* ms, 30s: a ping unanswered this long closes */
    uint64_t websocket_max_message_size; /* bytes, 0 = off: larger client messages close 1009 */
    uint64_t websocket_message_rate;    /* client messages per 1000 s (milli-r/s), 0 = off */
    uint64_t websocket_message_burst;   /* messages allowed above the rate */
    struct str *websocket_upgrade_tokens; unsigned nwebsocket_upgrade_tokens; /* extra tokens */
    /* websocket_origins: allowed Origin values of WebSocket upgrades, lower
     * case ("same-origin", "null", "https://x.org", "https://(star).x.org");
     * none = no check. websocket_origins_off: an explicit `off`. */
    struct str *websocket_origins; unsigned nwebsocket_origins;
    int websocket_origins_off;

    /* ---- added (recorded; defaults in comments, as nginx) ---- */
    int tcp_nopush;                     /* off */
    int64_t max_ranges;                 /* max_ranges: ranges served in one response;
                                           INT64_MAX (the default) = no limit, 0 = none */
    int keepalive_disable_safari;       /* off (keepalive_disable safari) */
    struct tmpl *disable_symlinks_from; /* disable_symlinks ... from=PART; NULL none */
    uint64_t proxy_busy_buffers_size;   /* 2 * proxy_buffer_size */
    int proxy_ignore_client_abort;      /* off */
    int proxy_ssl_server_name;          /* off */
    struct tmpl *proxy_ssl_name;        /* NULL = $proxy_host */
    int proxy_ssl_verify;               /* off */
    const char *proxy_ssl_trusted_certificate; /* NULL; conf-prefix-joined */
    unsigned proxy_ssl_protocols;       /* SSL_PROTO_*; TLSv1.2|TLSv1.3 */
    int proxy_ssl_session_reuse;        /* on */
    const char *proxy_ssl_certificate;  /* NULL; client certificate for upstreams */
    const char *proxy_ssl_certificate_key; /* NULL */
    const char *proxy_ssl_password_file; /* NULL */
    const char *proxy_ssl_crl;          /* NULL; checked with proxy_ssl_verify */
    const char *proxy_ssl_ciphers;      /* "DEFAULT" (TLS 1.2 and below) */
    int proxy_ssl_verify_depth;         /* 1 */
    const char **proxy_ssl_conf_commands; unsigned nproxy_ssl_conf_commands; /* name, value, ... */
    struct str *resolvers; unsigned nresolvers; /* resolver address[:port] words as given */
    uint64_t resolver_valid;            /* valid=TIME in ms; 0 = use the DNS TTL */
    int resolver_ipv4;                  /* on */
    int resolver_ipv6;                  /* on */
    uint64_t resolver_timeout;          /* ms, 30s */

    /* ---- added: request handling (http/server level only: the value of the
       server-level conf applies, set in http{} or server{}) ---- */
    int underscores_in_headers;         /* off: a header name with '_' is invalid */
    int ignore_invalid_headers;         /* on: invalid header names are dropped, not 400 */
    int merge_slashes;                  /* on: "//" in the URI path becomes "/" */
    /* ---- added: redirects made by Switchyard (http/server/location) ---- */
    int absolute_redirect;              /* on: Location is scheme://host[:port]/path */
    int port_in_redirect;               /* on: the port is in an absolute Location */
    int server_name_in_redirect;        /* off: host is the Host header, not server_name */
    /* ---- added: closing ---- */
    int lingering_close;                /* LINGERING_CLOSE_*; default ON */
    uint64_t lingering_time;            /* ms, 30s: longest time to drain the client */
    uint64_t lingering_timeout;         /* ms, 5s: longest wait for more client bytes */
    /* ---- added: compatibility (docs/directives.md) ---- */
    int chunked_transfer_encoding;      /* on; off: an HTTP/1.1 response of unknown length is
                                           close-delimited instead of chunked */
    int proxy_socket_keepalive;         /* off; on: SO_KEEPALIVE on upstream sockets */
    /* ---- added: limit_req / limit_conn (src/http/limit_req.c, limit_conn.c);
       NULL lists = no limit, which is all the request path checks ---- */
    struct limit_req_rule *limit_reqs; unsigned nlimit_reqs;
    struct limit_conn_rule *limit_conns; unsigned nlimit_conns;
    int limit_req_status;               /* 503 */
    int limit_conn_status;              /* 503 */
    int limit_req_log_level;            /* enum log_level, error (delays: one level lower) */
    int limit_conn_log_level;           /* error */
    int limit_req_dry_run;              /* off */
    int limit_conn_dry_run;             /* off */
    /* ---- added: location ---- */
    int internal;                       /* off; `internal`: only internal redirects
                                           (error_page, try_files, rewrite) reach this
                                           location, a direct request gets 404;
                                           inherited by nested locations (nginx) */
    /* ---- added: HTTP/2 (ngx_http_v2_module; src/conf/http2.c). nginx keeps
       these per server (chunk_size per location); merged down to every
       level, so an HTTP/2 session reads them from any lc ---- */
    int http2;                          /* `http2 on|off` (http, server); off. Whether a
                                           connection speaks h2: conf_http2_enabled() */
    uint64_t http2_max_concurrent_streams; /* 128 (SETTINGS_MAX_CONCURRENT_STREAMS) */
    uint64_t http2_body_preread_size;   /* 64k: per-stream window before the body is read;
                                           at most 2^31-1 */
    uint64_t http2_chunk_size;          /* 8k: largest DATA frame written; 1 .. 2^24-1
                                           (larger values are clamped, as nginx) */
    uint64_t http2_recv_buffer_size;    /* 256k; http level only in nginx, inherited here;
                                           more than 16 */
    /* ---- added: response compression (gzip, gzip_static, brotli; src/conf/gzip.c,
       src/http/compress.c) ---- */
    struct compress_conf compress;
    /* ---- added: response headers of their own modules (src/conf/headers_extra.c
       `expires`, ...); each module's init and merge are called by merge.c ---- */
    struct expires_conf expires;        /* expires (ngx_http_headers_module): off */
    struct charset_conf charset;        /* ngx_http_charset_module (src/conf/charset.c) */
    struct autoindex_conf autoindex;    /* ngx_http_autoindex_module (src/conf/autoindex.c) */
    struct limit_rate_conf limit_rate;  /* limit_rate, limit_rate_after (src/conf/limit_rate.c) */
    struct sub_conf sub;                /* sub_filter* (src/conf/sub.c) */
    struct proxy_socket_conf proxy_socket; /* proxy_bind, proxy_socket_* (conf/proxy_socket.c) */
    struct secure_link_conf secure_link; /* secure_link* (conf/secure_link.c) */
    struct cache_conf cache;            /* proxy_cache* (src/conf/cache.c) */
    /* ---- added: access control (allow/deny, auth_basic, auth_request,
       satisfy, limit_except; conf/access.h). NULL: no check at this level
       (a level that sets nothing shares its parent's) ---- */
    struct access_conf *access;
    /* ---- added: valid_referers (conf/referer.c, http/referer.c); NULL: none,
       a level without the directive inherits the list whole ---- */
    struct referer_conf *referer;
    /* ---- added: empty_gif (conf/empty_gif.c, http/empty_gif.c): this
       location's content handler, not inherited (nginx) ---- */
    int empty_gif;
    int stub_status;                    /* stub_status: this location's content handler
                                           (conf/stub_status.c), not inherited */
    int status_page;                    /* status_page: the live status page is this
                                           location's content (conf/status_page.c) */
    int metrics;                        /* metrics: the Prometheus page is this location's
                                           content (conf/metrics.c), not inherited */
    int metrics_sid;                    /* run time, per worker: this level's request series
                                           (http/metrics_http.c); 0 until the first request */
    /* ---- added: proxy_cookie_path/domain/flags (conf/proxy_cookie.c,
       proxy/cookie_rewrite.c); NULL: no rewriting ---- */
    struct proxy_cookie_conf *proxy_cookie;
    /* ---- added: server-side includes (src/conf/ssi.c, src/http/ssi.c) ---- */
    struct ssi_conf ssi;
};

/* loc_conf.lingering_close values */
#define LINGERING_CLOSE_OFF    0
#define LINGERING_CLOSE_ON     1
#define LINGERING_CLOSE_ALWAYS 2

/* --------------------------------------------------------------- locations */

enum loc_match {
    LOC_PREFIX,                 /* location /x */
    LOC_EXACT,                  /* location = /x */
    LOC_PREFIX_NOREGEX,         /* location ^~ /x */
    LOC_REGEX,                  /* location ~ re */
    LOC_REGEX_ICASE,            /* location ~* re */
    LOC_NAMED,                  /* location @name */
};

struct location {
    enum loc_match match;
    struct str pattern;         /* prefix/exact URI, regex source, or name without '@' */
    void *re;                   /* pcre2_code * for regex locations */
    struct loc_conf *lc;        /* merged, complete */
    struct location *children;  /* nested locations, array */
    unsigned nchildren;
    const char *file; unsigned line;
};

/* ----------------------------------------------------------------- servers */

enum server_name_kind {
    SN_EXACT,                   /* example.com (stored lower-case) */
    SN_WILD_HEAD,               /* *.example.com or .example.com -> "example.com" */
    SN_WILD_TAIL,               /* www.example.* -> "www.example." */
    SN_REGEX,                   /* ~regex */
};

struct server_name {
    enum server_name_kind kind;
    struct str name;
    void *re;                   /* pcre2_code * for SN_REGEX */
    int dot_form;               /* ".example.com" also matches "example.com" */
};

struct listen_conf;

/* (added) ssl_* directives of a server (merged from http). Recorded for TLS. */
#define SSL_PROTO_SSLv2   0x01u
#define SSL_PROTO_SSLv3   0x02u
#define SSL_PROTO_TLSv1   0x04u
#define SSL_PROTO_TLSv1_1 0x08u
#define SSL_PROTO_TLSv1_2 0x10u
#define SSL_PROTO_TLSv1_3 0x20u

/* Where a directive was written (for messages about its value). */
struct conf_where {
    const char *file;
    unsigned line;
};

struct ssl_conf {
    const char **certificates; unsigned ncertificates;     /* conf-prefix-joined unless "$..." */
    const char **certificate_keys; unsigned ncertificate_keys; /* same; "data:" kept as is */
    struct conf_where *certificate_at;     /* [ncertificates]: each ssl_certificate directive */
    struct conf_where *certificate_key_at; /* [ncertificate_keys] */
    unsigned protocols;         /* SSL_PROTO_*; default TLSv1.2|TLSv1.3 */
    const char *ciphers;        /* "HIGH:!aNULL:!MD5" */
    int prefer_server_ciphers;  /* off */
    int session_cache_off;      /* "off": no cache at all (nginx "none" keeps tickets/ids) */
    int session_cache_builtin;  /* builtin[:size] given */
    int64_t session_cache_builtin_size; /* sessions; -1 = OpenSSL default */
    const char *session_cache_shared_name; /* shared:NAME:SIZE, NULL none */
    uint64_t session_cache_shared_size; /* bytes */
    uint64_t session_timeout;   /* ms, 5m */
    int session_tickets;        /* on */
    const char *dhparam;        /* NULL */
    int stapling;               /* off (accepted; OCSP stapling is not implemented) */
    int stapling_verify;        /* off (likewise) */
    const char *ecdh_curve;     /* "auto" (OpenSSL's default groups) */
    const char *trusted_certificate; /* NULL; CAs for client certificates (not sent as names) */
    struct conf_where verify_at;  /* where ssl_verify_client was set (messages) */
    int verify_client;          /* SSL_VERIFY_CLIENT_*: off */
    int verify_depth;           /* 1 */
    const char *client_certificate; /* NULL; CAs for client certificates, names sent */
    const char *crl;            /* NULL; PEM CRLs checked for client certificates */
    int reject_handshake;       /* off */
    const char **ticket_keys; unsigned nticket_keys; /* ssl_session_ticket_key files; first encrypts */
    struct conf_where *ticket_key_at; /* [nticket_keys] */
    const char *password_file;  /* NULL; ssl_password_file */
    struct conf_where password_file_at;
    uint64_t buffer_size;       /* 16k: the most bytes per SSL_write (record size) */
    int enable;                 /* `ssl on;` (nginx <= 1.24, deprecated): the address of which
                                   this is the default server speaks TLS; off */
    struct conf_where enable_at; /* where `ssl on` was set (messages) */
    int early_data;             /* ssl_early_data: accept TLS 1.3 0-RTT data; off */
    const char **conf_commands; unsigned nconf_commands; /* name, value, name, value, ... */
    struct conf_where *conf_command_at; /* [nconf_commands / 2] */
};

/* ssl_verify_client values (nginx's numbering) */
#define SSL_VERIFY_CLIENT_OFF 0
#define SSL_VERIFY_CLIENT_ON 1
#define SSL_VERIFY_CLIENT_OPTIONAL 2
#define SSL_VERIFY_CLIENT_OPTIONAL_NO_CA 3

struct server_conf {
    struct server_name *names; unsigned nnames;
    struct loc_conf *lc;        /* server-level conf (merged from http) */
    struct location *locations; /* top-level locations, in config order */
    unsigned nlocations;
    struct location *named;     /* named (@) locations */
    unsigned nnamed;
    const char *file; unsigned line;
    const struct ssl_conf *ssl; /* (added) merged ssl_* settings; never NULL */
    int http2;                  /* (added) `http2 on` for this server (merged from http);
                                   lc->http2 copied after the merge */
};

struct listen_conf {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const char *text;           /* "127.0.0.1:8080" / "[::]:80" for logs and $server_addr */
    int default_server_set;     /* some server said default_server */
    int reuseport;
    int backlog;                /* default 511 */
    int ssl;
    int http2;                  /* `listen ... http2` (nginx <= 1.24 syntax, deprecated);
                                   like ssl, any listen on the address sets it */
    int proxy_protocol;         /* every connection starts with a PROXY protocol header
                                   (v1 or v2); like ssl, any listen on the address sets it */
    int ipv6only;               /* default on for [::] */
    const struct server_conf **servers; /* servers on this address, config order */
    unsigned nservers;
    const struct server_conf *default_server;
    unsigned index;             /* worker runtime slot (listening fd) */
    /* added: recorded listen parameters */
    int bind;                   /* `bind` given (a separate socket even under a wildcard) */
    int deferred;               /* TCP_DEFER_ACCEPT */
    int rcvbuf;                 /* SO_RCVBUF; -1 = leave */
    int sndbuf;                 /* SO_SNDBUF; -1 = leave */
    int so_keepalive;           /* -1 = leave, 0 off, 1 on */
    int keepidle, keepintvl, keepcnt; /* so_keepalive=idle:intvl:cnt (s); 0 = system */
    int fastopen;               /* fastopen=N; -1 = off */
    const char *file; unsigned line; /* the listen directive that created this address */
};

/*
 * Whether a connection accepted on `l` whose server is `srv` speaks HTTP/2
 * (nginx: `listen ... http2` or the server's `http2 on`). `srv` is the server
 * the connection was given: on TLS the one SNI chose, else the listen's
 * default server. Either may be NULL. 1 or 0.
 */
int conf_http2_enabled(const struct listen_conf *l, const struct server_conf *srv);

/* ---------------------------------------------------------- MIME types */

struct mime_type {
    struct str ext;             /* lower-case extension without dot */
    struct str type;
};

struct mime_types {
    struct mime_type *entries;  /* sorted by ext for bsearch */
    unsigned n;
};

/* Look up an extension (case-insensitive); NULL slice when unknown. */
struct str mime_types_find(const struct mime_types *t, struct str ext);

/* (Added) The built-in table (like nginx's mime.types), shared, never freed. */
const struct mime_types *mime_types_builtin(void);

/* (Added) Order of mime_types.entries: ASCII case-insensitive, shorter first. */
int mime_ext_cmp(struct str a, struct str b);

/* ------------------------------------------------------------ main / gen */

struct main_conf {
    int64_t worker_processes;   /* 1; 0 = auto (number of CPUs) */
    int64_t worker_connections; /* 512 */
    int64_t worker_rlimit_nofile; /* CONF_UNSET = leave */
    uint64_t worker_shutdown_timeout; /* ms; CONF_UNSET_U64 = none */
    int daemon;                 /* on */
    int master_process;         /* on */
    const char *pid_path;       /* "logs/switchyard.pid" prefix-joined */
    const char *error_log_path; /* "logs/error.log" prefix-joined, or "stderr" */
    enum log_level error_log_level; /* error */
    const char *user;           /* NULL = do not change */
    const char *group;
    /* added */
    int worker_cpu_affinity_auto;       /* worker_cpu_affinity auto [mask] */
    uint64_t *worker_cpu_masks; unsigned nworker_cpu_masks; /* bit i = CPU i; with auto: the
                                                               one limiting mask, if given */
    int multi_accept;                   /* off */
    int accept_mutex;                   /* off */
    int worker_priority;                /* 0 = leave; else setpriority() in each worker */
    uint64_t worker_rlimit_core;        /* CONF_UNSET_U64 = leave; else RLIMIT_CORE */
};

struct http_conf {
    struct server_conf **servers; unsigned nservers;
    struct listen_conf **listens; unsigned nlistens;
    struct upstream_conf **upstreams; unsigned nupstreams;
    struct log_format **log_formats; unsigned nlog_formats;
    struct loc_conf *lc;        /* http-level conf */
    struct limit_zone **limit_zones; unsigned nlimit_zones; /* (added) declaration order */
    struct cache_zone **cache_zones; unsigned ncache_zones; /* (added) proxy_cache_path, in
                                                               order (conf/cache.h) */
    struct charset_registry *charsets;  /* (added) charset names and charset_map pairs;
                                           NULL when no charset directive is used */
};

/* (added) One configuration file as read at load (for -T and for workers). */
struct conf_file {
    const char *path;
    struct str text;            /* the bytes as read */
};

struct tls_gen;

struct generation {
    struct arena arena;         /* owns everything below */
    unsigned refs;              /* requests (and the worker) holding this generation */
    uint64_t serial;            /* 1, 2, ... per reload */
    const char *prefix;         /* "-p" prefix, ending in '/' */
    const char *conf_path;      /* main config file */
    struct main_conf main;
    struct http_conf *http;     /* NULL when the config has no http{} */
    struct var_registry vars;   /* every variable name referenced, see vars.h */
    const char **log_paths;     /* distinct access-log paths */
    unsigned nlog_paths;
    void **regexes;             /* every pcre2_code * compiled, for gen_free */
    unsigned nregexes, cap_regexes;
    /* added: the configuration files read, in the order nginx -T prints them:
       every file opened (includes holding only comments too), once, in the
       order first opened (files included by -g first, then the main file and
       its includes); the bytes as the parser read them */
    struct conf_file *files; unsigned nfiles;
    struct tls_gen *tls;        /* (added) TLS contexts (tls/tls.c); NULL without any */
};

/*
 * What a higher layer adds to every generation: the TLS contexts (g->tls,
 * tls/tls.c), which conf may not include. `load` runs at the end of
 * gen_load() and returns 0, or -1 with a message in `err`; `free` runs first
 * in gen_free() (also after a failed `load`) and must accept what is there.
 */
struct gen_hooks {
    int (*load)(struct generation *g, char *err, size_t errlen, char *warn, size_t warnlen);
    void (*free)(struct generation *g);
};

/* Install the hooks (the pointer is kept; NULL removes them). proc/runtime.c
 * does it once at startup, before any gen_load(). */
void gen_set_hooks(const struct gen_hooks *hooks);

/*
 * Load and check a configuration: parse `conf_path` (plus `-g` text when not
 * NULL), build and merge every level, compile templates, regexes and maps,
 * resolve upstream addresses (getaddrinfo; at load time only), validate as
 * nginx does, then build the TLS contexts (certificates and keys are read
 * here: tls_gen_load, the gen_hooks' `load`). On success returns a
 * generation with refs = 1. On failure
 * returns NULL and writes "message in file:line" (nginx wording) to err.
 * Warnings (like nginx's "[warn]" lines at -t) are appended to `warn`
 * (newline-separated, may be NULL).
 */
struct generation *gen_load(const char *prefix, const char *conf_path, const char *g_directives,
                            char *err, size_t errlen, char *warn, size_t warnlen);

/*
 * gen_load() without the TLS step: the configuration is parsed, built and
 * checked, but certificate and key files are not read (unit tests of the
 * directives).
 */
struct generation *gen_parse(const char *prefix, const char *conf_path, const char *g_directives,
                             char *err, size_t errlen, char *warn, size_t warnlen);

/* Free a generation and everything it owns (pcre2 codes, TLS contexts). Accepts NULL. */
void gen_free(struct generation *g);

/* Write the configuration files, as read, to `fd` (nginx -T format). */
int gen_dump(const struct generation *g, int fd);

#endif
