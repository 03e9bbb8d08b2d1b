/*
 * request.h - one HTTP request, whatever protocol carried it. A client
 * stream (stream.h) owns it; the request owns its arena and a reference to
 * the generation it started on. Variables, limits, the access log, static
 * files and the proxy handler read and fill it.
 */
#ifndef SY_HTTP_REQUEST_H
#define SY_HTTP_REQUEST_H

#include <stdint.h>
#include <sys/types.h>

#include "conf/conf.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/conn.h"
#include "core/loop.h"
#include "core/proxy_protocol.h"
#include "http/h1_parser.h"
#include "http/router.h"

struct proxy;
struct gen_rt;
struct limit_conn_holds;
struct auth_request_ctx;
struct listener;

#define H1_MAX_HEADERS 100


/* Response being assembled for the client (local responses and proxied heads alike). */
struct resp_header {
    struct str name, value;
};

/*
 * One attempt to get the response from an upstream server: what nginx keeps
 * per try for the $upstream_* variables (ngx_http_upstream_state_t). A try
 * with peer NULL separates two proxied passes of one request (an internal
 * redirect to another proxied location), written " : " in the lists.
 */
struct upstream_try {
    const char *peer;           /* "127.0.0.1:9000"; the group name when none was live */
    int status;                 /* response status, or 502/504 for a failure; 0 = none */
    uint64_t start_ms;          /* monotonic, when the try began */
    int64_t connect_ms;         /* -1 until connected (TLS handshake included) */
    int64_t header_ms;          /* -1 until the response head was parsed */
    int64_t response_ms;        /* -1 until the try ended */
    uint64_t bytes_sent;        /* to the upstream ($upstream_bytes_sent) */
    uint64_t bytes_received;    /* from the upstream, head included */
    uint64_t head_bytes;        /* of those, the response head(s) */
    int metrics_sid;            /* the peer's metrics series (proxy/metrics_proxy.h), 0 none */
};

struct request {
    struct arena arena;         /* everything below that is not in the session */
    struct gen_rt *rt;          /* generation reference held for the request's life */
    const struct listen_conf *listen;
    const struct server_conf *srv;
    const struct location *loc; /* NULL when no location matched */
    const struct loc_conf *lc;  /* effective conf (location, or server level) */

    /* request head, copied into the arena */
    struct str method;
    struct str request_uri;     /* raw request-target as received ($request_uri) */
    struct str request_line;    /* "GET / HTTP/1.1" ($request) */
    struct str uri;             /* normalised, decoded path ($uri) */
    struct str args;            /* query string without '?' ($args) */
    struct str host;            /* $host: Host/absolute-form host lower-cased, no port; else server_name */
    int minor;                  /* HTTP/1.minor */
    struct h1_header *headers;
    size_t nheaders;
    struct h1_info info;        /* framing derived from the headers */
    uint64_t head_len;          /* bytes of the request head */
    struct regex_caps caps;     /* captures of the last regex match */
    struct str *set_vals;       /* values of `set` variables [gen->vars.nset_slots] */

    /* body */
    int has_body;               /* Content-Length > 0 or chunked */
    uint64_t body_left;         /* Content-Length bytes not yet read from the client */
    struct h1_chunked chunked;  /* client chunked decoder state */
    int body_done;              /* the whole request body was read */
    uint64_t body_received;     /* decoded body bytes read so far */
    int expect_continue;        /* client sent Expect: 100-continue and no 100 sent yet */

    /* response */
    int status;                 /* $status */
    int keepalive;              /* connection stays open after this response */
    struct resp_header *resp;   /* headers sent to the client, for $sent_http_ */
    unsigned nresp, capresp;
    uint64_t bytes_sent;        /* $bytes_sent */
    uint64_t body_bytes_sent;   /* $body_bytes_sent */
    int head_sent;              /* response head queued/sent: no more error pages */
    int internal_redirects;     /* loop guard (nginx allows 10) */
    int uri_changed;            /* $uri differs from the request target (rewrite, redirects) */
    int uri_rewritten;          /* changed by `rewrite` in the current location */
    int log_marks;              /* evaluating a tunnel's log line: tunnel variables become marks */
    struct str request_body;    /* $request_body: set when the whole body was buffered */
    int pipelined;              /* $pipe: the head was already buffered when the previous
                                   request on the connection ended */
    int completed;              /* $request_completion: the response was sent in full */
    char *request_id;           /* $request_id, made on first use (32 hex digits) */
    int error_page_done;        /* error_page applied once (recursive_error_pages off) */
    int err_status_override;    /* status forced by error_page "=code" */
    int is_error_page;          /* serving an error page internally */
    int head_parsed;            /* a request head was accepted: its end is logged */
    int logged;                 /* the access log line was written (exactly once) */

    /* real IP (http/realip.c): once set, the request's client address
     * ($remote_addr, logs, X-Forwarded-For); the connection's peer stays
     * $realip_remote_addr. Reset with the request, as nginx restores it. */
    union conn_addr realip;
    int realip_set;

    /* timing */
    uint64_t start_wall_ms;     /* $msec at request start */
    uint64_t start_ms;          /* monotonic */

    /* upstream info for variables and logs */
    struct proxy *proxy;        /* set while proxying */
    struct str proxy_host;      /* $proxy_host / $proxy_port of the proxied request */
    struct str proxy_port;
    struct upstream_try *up_tries; /* every upstream attempt, in order ($upstream_*;
                                   see vars_eval.h); arena array */
    unsigned nup_tries, cap_up_tries;
    struct h1_header *up_headers; /* upstream response headers (arena copy) */
    size_t nup_headers;

    /* proxy cache (proxy/cache.c): $upstream_cache_status, CACHE_ST_*; 0 = not cached */
    uint8_t cache_status;
    uint8_t cache_background;   /* proxy_cache_background_update's request: it refreshes
                                   the entry (http/subrequest.h) */

    /* limit_req / limit_conn (http/limit_req.c, limit_conn.c) */
    uint8_t limit_req_status;   /* enum limit_status; 0 = not checked ($limit_req_status) */
    uint8_t limit_conn_status;  /* likewise, $limit_conn_status */
    uint8_t metrics_done;       /* counted in the metrics (http/metrics_http.c) */
    uint8_t auth_delayed;       /* a 401 waits out auth_delay (ops->hold), then is sent */
    struct limit_conn_holds *limit_conn; /* counts this request holds (owned): released
                                   when it ends, or handed to its tunnel */

    /* limit_rate (http/limit_rate.c): set by `set $limit_rate` or an upstream's
     * X-Accel-Limit-Rate, which win over the limit_rate directive */
    int64_t limit_rate;         /* bytes per second, 0 = none */
    int limit_rate_set;

    /* auth_request (http/auth_request.c): the running sub-request, in the arena */
    struct auth_request_ctx *auth_request;

    /* tunnel info for logging (WebSocket) */
    uint64_t tunnel_ms, tunnel_from_client, tunnel_from_upstream;
    const char *tunnel_close_reason;
};

/* request.cache_status values ($upstream_cache_status, nginx's words) */
enum cache_st {
    CACHE_ST_NONE = 0,
    CACHE_ST_MISS,
    CACHE_ST_BYPASS,
    CACHE_ST_EXPIRED,
    CACHE_ST_STALE,
    CACHE_ST_UPDATING,
    CACHE_ST_REVALIDATED,
    CACHE_ST_HIT,
};

#endif
