/*
 * vars.c - the variable registry and template compiler (see vars.h).
 *
 * Owns the names: every "$name" the configuration mentions becomes exactly
 * one `struct var_ref` in the generation's registry, found by its full name
 * (`full`). Templates point at those refs, so a ref whose meaning is only
 * known later in the file (a `set` or `map` that comes after the first use,
 * as nginx allows) is created as an `unresolved` placeholder and filled in
 * place when the definition arrives; gen_load fails if one is left over.
 *
 * Lookups are linear scans: a configuration names a few hundred variables at
 * most, and all of this runs once per load, never per request.
 * Memory: everything comes from the caller's arena (the generation's).
 */
#include "conf/vars.h"

#include <string.h>

#include "core/arena.h"

/* Names of the builtins: the enum names, lower-case, without "VB_". */
static const char *const builtin_names[VB__COUNT] = {
    [VB_HOST] = "host",
    [VB_REMOTE_ADDR] = "remote_addr",
    [VB_REMOTE_PORT] = "remote_port",
    [VB_SERVER_ADDR] = "server_addr",
    [VB_SERVER_PORT] = "server_port",
    [VB_SERVER_NAME] = "server_name",
    [VB_SERVER_PROTOCOL] = "server_protocol",
    [VB_SCHEME] = "scheme",
    [VB_HTTPS] = "https",
    [VB_REQUEST_URI] = "request_uri",
    [VB_URI] = "uri",
    [VB_DOCUMENT_URI] = "document_uri",
    [VB_ARGS] = "args",
    [VB_QUERY_STRING] = "query_string",
    [VB_IS_ARGS] = "is_args",
    [VB_REQUEST_METHOD] = "request_method",
    [VB_REQUEST_LENGTH] = "request_length",
    [VB_REQUEST] = "request",
    [VB_CONTENT_LENGTH] = "content_length",
    [VB_CONTENT_TYPE] = "content_type",
    [VB_PROXY_ADD_X_FORWARDED_FOR] = "proxy_add_x_forwarded_for",
    [VB_PROXY_HOST] = "proxy_host",
    [VB_PROXY_PORT] = "proxy_port",
    [VB_STATUS] = "status",
    [VB_BODY_BYTES_SENT] = "body_bytes_sent",
    [VB_BYTES_SENT] = "bytes_sent",
    [VB_REQUEST_TIME] = "request_time",
    [VB_UPSTREAM_ADDR] = "upstream_addr",
    [VB_UPSTREAM_STATUS] = "upstream_status",
    [VB_UPSTREAM_RESPONSE_TIME] = "upstream_response_time",
    [VB_UPSTREAM_CONNECT_TIME] = "upstream_connect_time",
    [VB_UPSTREAM_HEADER_TIME] = "upstream_header_time",
    [VB_UPSTREAM_RESPONSE_LENGTH] = "upstream_response_length",
    [VB_TIME_LOCAL] = "time_local",
    [VB_TIME_ISO8601] = "time_iso8601",
    [VB_MSEC] = "msec",
    [VB_CONNECTION] = "connection",
    [VB_CONNECTION_REQUESTS] = "connection_requests",
    [VB_HTTP_USER_AGENT] = "http_user_agent",
    [VB_HTTP_REFERER] = "http_referer",
    [VB_REQUEST_BODY] = "request_body",
    [VB_REMOTE_USER] = "remote_user",
    [VB_HOSTNAME] = "hostname",
    [VB_PID] = "pid",
    [VB_NGINX_VERSION] = "nginx_version",
    [VB_REQUEST_ID] = "request_id",
    [VB_REALPATH_ROOT] = "realpath_root",
    [VB_DOCUMENT_ROOT] = "document_root",
    [VB_REQUEST_FILENAME] = "request_filename",
    [VB_BINARY_REMOTE_ADDR] = "binary_remote_addr",
    [VB_SENT_HTTP_CONTENT_TYPE_UNUSED] = NULL, /* not a variable: $sent_http_* covers it */
    [VB_TUNNEL_DURATION] = "tunnel_duration",
    [VB_TUNNEL_BYTES_FROM_CLIENT] = "tunnel_bytes_from_client",
    [VB_TUNNEL_BYTES_FROM_UPSTREAM] = "tunnel_bytes_from_upstream",
    [VB_TUNNEL_CLOSE_REASON] = "tunnel_close_reason",
    [VB_SSL_PROTOCOL] = "ssl_protocol",
    [VB_SSL_CIPHER] = "ssl_cipher",
    [VB_SSL_SERVER_NAME] = "ssl_server_name",
    [VB_PROXY_PROTOCOL_ADDR] = "proxy_protocol_addr",
    [VB_PROXY_PROTOCOL_PORT] = "proxy_protocol_port",
    [VB_PROXY_PROTOCOL_SERVER_ADDR] = "proxy_protocol_server_addr",
    [VB_PROXY_PROTOCOL_SERVER_PORT] = "proxy_protocol_server_port",
    [VB_REALIP_REMOTE_ADDR] = "realip_remote_addr",
    [VB_REALIP_REMOTE_PORT] = "realip_remote_port",
    [VB_LIMIT_REQ_STATUS] = "limit_req_status",
    [VB_LIMIT_CONN_STATUS] = "limit_conn_status",
    [VB_UPSTREAM_BYTES_RECEIVED] = "upstream_bytes_received",
    [VB_UPSTREAM_BYTES_SENT] = "upstream_bytes_sent",
    [VB_UPSTREAM_CACHE_STATUS] = "upstream_cache_status",
    [VB_UPSTREAM_CACHE_LAST_MODIFIED] = "upstream_cache_last_modified",
    [VB_UPSTREAM_CACHE_ETAG] = "upstream_cache_etag",
    [VB_CONNECTION_TIME] = "connection_time",
    [VB_SSL_SESSION_REUSED] = "ssl_session_reused",
    [VB_SSL_EARLY_DATA] = "ssl_early_data",
    [VB_SSL_CIPHERS] = "ssl_ciphers",
    [VB_SSL_CURVE] = "ssl_curve",
    [VB_SSL_CURVES] = "ssl_curves",
    [VB_SSL_SESSION_ID] = "ssl_session_id",
    [VB_SSL_ALPN_PROTOCOL] = "ssl_alpn_protocol",
    [VB_SSL_CLIENT_VERIFY] = "ssl_client_verify",
    [VB_SSL_CLIENT_CERT] = "ssl_client_cert",
    [VB_SSL_CLIENT_RAW_CERT] = "ssl_client_raw_cert",
    [VB_SSL_CLIENT_ESCAPED_CERT] = "ssl_client_escaped_cert",
    [VB_SSL_CLIENT_S_DN] = "ssl_client_s_dn",
    [VB_SSL_CLIENT_I_DN] = "ssl_client_i_dn",
    [VB_SSL_CLIENT_S_DN_LEGACY] = "ssl_client_s_dn_legacy",
    [VB_SSL_CLIENT_I_DN_LEGACY] = "ssl_client_i_dn_legacy",
    [VB_SSL_CLIENT_SERIAL] = "ssl_client_serial",
    [VB_SSL_CLIENT_FINGERPRINT] = "ssl_client_fingerprint",
    [VB_SSL_CLIENT_V_START] = "ssl_client_v_start",
    [VB_SSL_CLIENT_V_END] = "ssl_client_v_end",
    [VB_SSL_CLIENT_V_REMAIN] = "ssl_client_v_remain",
    [VB_PIPE] = "pipe",
    [VB_REQUEST_COMPLETION] = "request_completion",
    [VB_REQUEST_BODY_FILE] = "request_body_file",
    [VB_LIMIT_RATE] = "limit_rate",
    [VB_TCPINFO_RTT] = "tcpinfo_rtt",
    [VB_TCPINFO_RTTVAR] = "tcpinfo_rttvar",
    [VB_TCPINFO_SND_CWND] = "tcpinfo_snd_cwnd",
    [VB_TCPINFO_RCV_SPACE] = "tcpinfo_rcv_space",
    [VB_REQUEST_PORT] = "request_port",
    [VB_IS_REQUEST_PORT] = "is_request_port",
    [VB_HTTP2] = "http2",
    [VB_HTTP3] = "http3",
    [VB_SWITCHYARD_VERSION] = "switchyard_version",
    [VB_GZIP_RATIO] = "gzip_ratio",
    [VB_BROTLI_RATIO] = "brotli_ratio",
    [VB_INVALID_REFERER] = "invalid_referer",
    [VB_CONNECTIONS_ACTIVE] = "connections_active",
    [VB_CONNECTIONS_READING] = "connections_reading",
    [VB_CONNECTIONS_WRITING] = "connections_writing",
    [VB_CONNECTIONS_WAITING] = "connections_waiting",
    [VB_SECURE_LINK] = "secure_link",
    [VB_SECURE_LINK_EXPIRES] = "secure_link_expires",
};

/* Prefix families, longest-unique first ("sent_http_" is not "http_"). */
static const struct {
    const char *prefix;
    enum var_kind kind;
} prefixes[] = {
    {"http_", VAR_HTTP},
    {"arg_", VAR_ARG},
    {"cookie_", VAR_COOKIE},
    {"sent_http_", VAR_SENT_HTTP},
    {"upstream_http_", VAR_UPSTREAM_HTTP},
    {"upstream_cookie_", VAR_UPSTREAM_COOKIE},
    {"upstream_trailer_", VAR_UPSTREAM_TRAILER},
    {"sent_trailer_", VAR_SENT_TRAILER},
};

const char *var_builtin_name(enum var_builtin id)
{
    if ((unsigned)id >= VB__COUNT)
        return NULL;
    return builtin_names[id];
}

static int is_prefix_kind(enum var_kind k)
{
    return k == VAR_HTTP || k == VAR_ARG || k == VAR_COOKIE || k == VAR_SENT_HTTP ||
           k == VAR_UPSTREAM_HTTP || k == VAR_UPSTREAM_COOKIE || k == VAR_UPSTREAM_TRAILER ||
           k == VAR_SENT_TRAILER;
}

/*
 * The registry key for `name`: lower-cased (nginx variable names are
 * case-insensitive), except the suffix of $arg_NAME, which is matched
 * case-sensitively against the query string (vars.h). Arena-owned.
 */
static struct str full_name(struct arena *a, struct str name)
{
    char *s = arena_alloc(a, name.len + 1);
    if (!s)
        return STR_NULL;
    for (size_t i = 0; i < name.len; i++)
        s[i] = (char)sy_tolower((unsigned char)name.p[i]);
    s[name.len] = '\0';
    if (name.len > 4 && memcmp(s, "arg_", 4) == 0)
        memcpy(s + 4, name.p + 4, name.len - 4);
    return (struct str){s, name.len};
}

/* Existing ref whose key equals `full`, or NULL. */
static struct var_ref *find(const struct var_registry *reg, struct str full)
{
    for (unsigned i = 0; i < reg->nrefs; i++)
        if (str_eq(reg->refs[i]->full, full))
            return reg->refs[i];
    return NULL;
}

/* Append a fresh ref keyed by `full` (already arena-owned). */
static struct var_ref *add(struct var_registry *reg, struct arena *a, struct str full)
{
    if (reg->nrefs == reg->cap) {
        unsigned cap = reg->cap ? reg->cap * 2 : 32;
        struct var_ref **n = arena_alloc(a, cap * sizeof(*n));
        if (!n)
            return NULL;
        if (reg->nrefs)
            memcpy(n, reg->refs, reg->nrefs * sizeof(*n));
        reg->refs = n;
        reg->cap = cap;
    }
    struct var_ref *v = arena_calloc(a, sizeof(*v));
    if (!v)
        return NULL;
    v->full = full;
    v->name = full;
    v->file = reg->cur_file;
    v->line = reg->cur_line;
    reg->refs[reg->nrefs++] = v;
    return v;
}

/*
 * Fill `v` with the meaning `full` has by itself (builtin, capture, prefix
 * form). Returns 0, or -1 when the name means nothing on its own.
 */
static int classify(struct var_ref *v, struct str full)
{
    if (full.len == 1 && full.p[0] >= '1' && full.p[0] <= '9') {
        v->kind = VAR_CAPTURE;
        v->id = (unsigned)(full.p[0] - '0');
        v->name = full;
        return 0;
    }
    for (unsigned i = 0; i < VB__COUNT; i++) {
        if (builtin_names[i] && str_eq(full, str_from_cstr(builtin_names[i]))) {
            v->kind = VAR_BUILTIN;
            v->id = i;
            v->name = full;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t pl = strlen(prefixes[i].prefix);
        if (full.len >= pl && memcmp(full.p, prefixes[i].prefix, pl) == 0) {
            v->kind = prefixes[i].kind;
            v->id = 0;
            v->name = (struct str){full.p + pl, full.len - pl};
            return 0;
        }
    }
    return -1;
}

static const char *phrase(struct arena *a, const char *fmt, struct str name)
{
    const char *s = arena_printf(a, fmt, (int)name.len, name.p);
    return s ? s : "out of memory";
}

const struct var_ref *var_lookup(struct var_registry *reg, struct arena *a, struct str name,
                                 const char **err)
{
    struct str full = full_name(a, name);
    if (!full.p) {
        *err = "out of memory";
        return NULL;
    }
    struct var_ref *v = find(reg, full);
    if (v)
        return v;

    struct var_ref tmp = {0};
    if (classify(&tmp, full) != 0 && !reg->allow_forward) {
        *err = phrase(a, "unknown \"%.*s\" variable", name);
        return NULL;
    }
    v = add(reg, a, full);
    if (!v) {
        *err = "out of memory";
        return NULL;
    }
    if (classify(v, full) != 0) {
        /* Defined later by set/map/a named capture, or an error at the end. */
        v->kind = VAR_SET;
        v->unresolved = 1;
    }
    return v;
}

const struct var_ref *var_find_runtime(const struct var_registry *reg, struct arena *a,
                                       struct str name, struct var_ref *tmp)
{
    struct str full = full_name(a, name);
    if (!full.p)
        return NULL;
    struct var_ref *v = find(reg, full);
    if (v)
        return v->unresolved ? NULL : v;
    memset(tmp, 0, sizeof(*tmp));
    tmp->full = full;
    tmp->name = full;
    if (classify(tmp, full) != 0)
        return NULL;
    return tmp;
}

/* Find or create the ref for `name`, for a definition. NULL on OOM. */
static struct var_ref *define_slot(struct var_registry *reg, struct arena *a, struct str name,
                                   int *created)
{
    struct str full = full_name(a, name);
    if (!full.p)
        return NULL;
    struct var_ref *v = find(reg, full);
    *created = 0;
    if (!v) {
        v = add(reg, a, full);
        *created = 1;
    }
    return v;
}

/* A variable defined by a block (map, geo, split_clients) takes `name` over. */
static struct var_ref *define_computed(struct var_registry *reg, struct arena *a, struct str name,
                                       const char **err)
{
    int created;
    struct var_ref *v = define_slot(reg, a, name, &created);
    if (!v) {
        *err = "out of memory";
        return NULL;
    }
    /* nginx's map and set variables are "changeable": a later map of the
     * same name takes the variable over everywhere, references made before
     * it included (a site file redefining $connection_upgrade is common). */
    if (!created && !v->unresolved && !is_prefix_kind(v->kind) && v->kind != VAR_MAP &&
        v->kind != VAR_GEO && v->kind != VAR_SPLIT && v->kind != VAR_SET) {
        *err = phrase(a, "the duplicate \"%.*s\" variable", name);
        return NULL;
    }
    if (created) {
        struct var_ref tmp = {0};
        if (classify(&tmp, v->full) == 0 && !is_prefix_kind(tmp.kind)) {
            /* a builtin or a capture: nginx's non-changeable variables */
            v->kind = tmp.kind;
            v->id = tmp.id;
            *err = phrase(a, "the duplicate \"%.*s\" variable", name);
            return NULL;
        }
    }
    v->id = 0;
    v->name = v->full;
    v->map = NULL;
    v->data = NULL;
    v->unresolved = 0;
    return v;
}

const struct var_ref *var_define_map(struct var_registry *reg, struct arena *a, struct str name,
                                     const struct map_conf *map, const char **err)
{
    struct var_ref *v = define_computed(reg, a, name, err);
    if (!v)
        return NULL;
    v->kind = VAR_MAP;
    v->map = map;
    return v;
}

const struct var_ref *var_define_module(struct var_registry *reg, struct arena *a,
                                        struct str name, enum var_kind kind, const void *data,
                                        const char **err)
{
    struct var_ref *v = define_computed(reg, a, name, err);
    if (!v)
        return NULL;
    v->kind = kind;
    v->data = data;
    return v;
}

const struct var_ref *var_define_set(struct var_registry *reg, struct arena *a, struct str name)
{
    int is_rate = str_caseeq(name, STR_LIT("limit_rate"));
    if (str_caseeq(name, STR_LIT("args")) || is_rate) {
        /* nginx's changeable $args and $limit_rate: a setter ref outside the
         * registry */
        struct var_ref *v = arena_calloc(a, sizeof(*v));
        if (!v)
            return NULL;
        v->kind = VAR_SET;
        v->id = VAR_SET_BUILTIN | (is_rate ? VB_LIMIT_RATE : VB_ARGS);
        v->name = v->full = is_rate ? STR_LIT("limit_rate") : STR_LIT("args");
        reg->limit_rate_assigned |= is_rate;
        v->file = reg->cur_file;
        v->line = reg->cur_line;
        return v;
    }
    int created;
    struct var_ref *v = define_slot(reg, a, name, &created);
    if (!v)
        return NULL;
    if (!created && v->kind == VAR_SET && !v->unresolved)
        return v;
    if (!created && !v->unresolved && !is_prefix_kind(v->kind))
        return NULL; /* builtin, map, capture: not assignable */
    if (created) {
        struct var_ref tmp = {0};
        if (classify(&tmp, v->full) == 0 && !is_prefix_kind(tmp.kind)) {
            v->kind = tmp.kind;
            v->id = tmp.id;
            return NULL;
        }
    }
    v->kind = VAR_SET;
    v->id = reg->nset_slots++;
    v->name = v->full;
    v->unresolved = 0;
    return v;
}

const struct var_ref *var_define_named_capture(struct var_registry *reg, struct arena *a,
                                               struct str name, const char **err)
{
    int created;
    struct var_ref *v = define_slot(reg, a, name, &created);
    if (!v) {
        *err = "out of memory";
        return NULL;
    }
    if (!created && v->kind == VAR_NAMED_CAPTURE)
        return v;
    if (!created && !v->unresolved && !is_prefix_kind(v->kind)) {
        *err = phrase(a, "the duplicate \"%.*s\" variable", name);
        return NULL;
    }
    if (created) {
        struct var_ref tmp = {0};
        if (classify(&tmp, v->full) == 0 && !is_prefix_kind(tmp.kind)) {
            v->kind = tmp.kind;
            v->id = tmp.id;
            *err = phrase(a, "the duplicate \"%.*s\" variable", name);
            return NULL;
        }
    }
    /* PCRE2 looks the group up by its exact spelling. */
    struct str exact = arena_str(a, name);
    if (!exact.p) {
        *err = "out of memory";
        return NULL;
    }
    v->kind = VAR_NAMED_CAPTURE;
    v->id = 0;
    v->name = exact;
    v->unresolved = 0;
    return v;
}

const struct var_ref *var_first_unresolved(const struct var_registry *reg)
{
    for (unsigned i = 0; i < reg->nrefs; i++)
        if (reg->refs[i]->unresolved)
            return reg->refs[i];
    return NULL;
}

static int is_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

int tmpl_compile(struct tmpl *out, struct var_registry *reg, struct arena *a, struct str text,
                 const char **err)
{
    memset(out, 0, sizeof(*out));
    struct str raw = arena_str(a, text.p ? text : STR_LIT(""));
    if (!raw.p) {
        *err = "out of memory";
        return -1;
    }
    out->raw = raw;

    size_t ndollar = 0;
    for (size_t i = 0; i < raw.len; i++)
        ndollar += raw.p[i] == '$';
    if (ndollar == 0) {
        out->constant = 1;
        return 0;
    }

    struct tmpl_seg *segs = arena_calloc(a, (ndollar + 1) * sizeof(*segs));
    if (!segs) {
        *err = "out of memory";
        return -1;
    }
    const char *p = raw.p;
    size_t len = raw.len, i = 0, lit = 0;
    unsigned n = 0;
    while (i < len) {
        if (p[i] != '$') {
            i++;
            continue;
        }
        size_t dollar = i++;
        struct str name;
        if (i == len) {
            *err = "invalid variable name";
            return -1;
        }
        if (p[i] >= '1' && p[i] <= '9') {
            /* $1..$9: one digit, "$10" is $1 then "0" (nginx) */
            name = (struct str){p + i, 1};
            i++;
        } else {
            int bracket = 0;
            if (p[i] == '{') {
                bracket = 1;
                i++;
            }
            size_t start = i;
            while (i < len && is_name_char((unsigned char)p[i]))
                i++;
            name = (struct str){p + start, i - start};
            if (bracket) {
                if (i < len && p[i] == '}') {
                    i++;
                } else {
                    *err = phrase(a, "the closing bracket in \"%.*s\" variable is missing", name);
                    return -1;
                }
            }
            if (name.len == 0) {
                *err = "invalid variable name";
                return -1;
            }
        }
        const struct var_ref *v = var_lookup(reg, a, name, err);
        if (!v)
            return -1;
        segs[n].lit = (struct str){p + lit, dollar - lit};
        segs[n].var = v;
        n++;
        lit = i;
    }
    if (lit < len) {
        segs[n].lit = (struct str){p + lit, len - lit};
        segs[n].var = NULL;
        n++;
    }
    out->segs = segs;
    out->nsegs = n;
    out->constant = 0;
    return 0;
}
