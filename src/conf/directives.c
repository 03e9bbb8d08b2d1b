/*
 * directives.c - the core directive table, the generic setters, and the checks that
 * turn the generic tree (parse.h) into a typed generation (conf.h).
 *
 * Shape (nginx's ngx_command_t, STYLE 3.5): each entry names a directive, the
 * contexts it may appear in, its argument count, a setter and the struct the
 * setter writes (`level`) with a field offset for the generic setters. The
 * dispatcher (run_directive) reports unknown/misplaced directives, block
 * mismatches and argument counts with nginx's wording; a setter returns NULL,
 * a short phrase that becomes `"name" directive <phrase> in file:line`, or
 * CONF_ERROR after writing a full message itself.
 *
 * Block directives (events, http, server, location, if, upstream, map,
 * types) save the level pointers of struct conf_parser, walk their children
 * and restore them. Everything that needs the whole http{} block -- upstream
 * resolution, merging (merge.c), listen/server_name tables, the unknown
 * variable check, access-log files -- happens in http_finish(), in nginx's
 * order, so errors come out as nginx would report them.
 *
 * Memory: everything lives in the generation's arena. PCRE2 codes are
 * recorded in g->regexes right after they are compiled, so gen_free() frees
 * them whatever happens later.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "conf/access.h"
#include "conf/directives.h"
#include "conf/directive_table.h"
#include "conf/snapshot.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <pcre2.h>
#include <pwd.h>
#include <sys/un.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/absent_modules.h"
#include "conf/http2.h"
#include "conf/cache.h"
#include "conf/limits.h"
#include "conf/modules.h"

const char conf_error_done[] = "";

/* ------------------------------------------------------------ the table */

/* ------------------------------------------------------ build structures */

struct loc_build {
    struct location loc;
    struct loc_build **kids;
    unsigned nkids;
};

struct sn_extra {
    const char *written; /* as written (lower-cased), for messages */
    int invalid;         /* not a valid wildcard (an error once names are hashed) */
    const char *file;
    unsigned line;
};

struct srv_build {
    struct server_conf *sc;
    struct ssl_conf *ssl;
    struct loc_build **locs;
    unsigned nlocs;
    struct loc_build **named;
    unsigned nnamed;
    struct server_name *names;
    unsigned nnames;
    struct sn_extra *sn;
    unsigned nsn;
    unsigned nlisten; /* listen directives seen */
};

struct ups_build {
    struct upstream_conf *uc;
    struct upstream_peer *peers;
    unsigned npeers;
    int balancer_set;
};

struct lbuild {
    struct listen_conf *l;
    int opts_set; /* some listen gave socket options for this address */
};

struct pending_pass {
    struct proxy_pass *pp;
    struct str host; /* as written ("[::1]" keeps its brackets) */
    unsigned port;
    int no_port;
    struct str unix_path; /* proxy_pass http://unix:PATH[:URI]: the socket path */
};

/* A *_temp_path as nginx records it (ngx_path_t): for the "different levels" check. */
struct temp_path {
    const char *name; /* full path, without a trailing '/' */
    unsigned level[3];
    const char *file;
    unsigned line;
};

struct http_build {
    const struct conf_node *node; /* the http block */
    struct http_conf *hc;
    struct ssl_conf *ssl;
    struct srv_build **servers;
    unsigned nservers;
    struct lbuild *listens;
    unsigned nlistens;
    struct ups_build **ups;
    unsigned nups;
    struct pending_pass *passes;
    unsigned npasses;
    struct upstream_conf **implicit;
    unsigned nimplicit;
    struct temp_path *temp_paths;
    unsigned ntemp_paths;
};

/* Push a zeroed element onto an arena array whose capacity is implicit:
 * 4, then doubled whenever the count reaches a power of two. */
static void *arr_push(struct arena *a, void **arr, unsigned *n, size_t sz)
{
    unsigned cnt = *n;
    if (cnt == 0 || (cnt >= 4 && (cnt & (cnt - 1)) == 0)) {
        unsigned cap = cnt == 0 ? 4 : cnt * 2;
        void *na = arena_alloc(a, (size_t)cap * sz);
        if (!na)
            return NULL;
        if (cnt)
            memcpy(na, *arr, (size_t)cnt * sz);
        *arr = na;
    }
    void *e = (char *)*arr + (size_t)cnt * sz;
    memset(e, 0, sz);
    (*n)++;
    return e;
}

#define PUSH(p, arr, n)                                                                            \
    ({                                                                                             \
        void *arr_v_ = (void *)(arr);                                                              \
        void *e_ = arr_push((p)->a, &arr_v_, &(n), sizeof(*(arr)));                                \
        (arr) = arr_v_;                                                                            \
        (__typeof__(&(arr)[0]))e_;                                                                 \
    })

#define OOM(p) ((p)->fatal = 1, conf_err((p), "out of memory"))

/* ---------------------------------------------------------- messages */

/*
 * The line nginx names for a directive: that of the ';' or '{' ending it
 * (nginx runs the handler when that token is read), so a directive written
 * over several lines is reported at its last one. Structures that remember
 * "where" (servers, locations, listen, proxy_pass, rewrite ops) record this
 * line too, as nginx records cf->conf_file->line at handler time.
 */
static unsigned node_line(const struct conf_node *n)
{
    return n->end_line ? n->end_line : n->line;
}

static size_t append_location(char *buf, size_t len, size_t used, const char *file, unsigned line)
{
    if (!file || used >= len)
        return used;
    int n;
    if (strcmp(file, "command line") == 0)
        n = snprintf(buf + used, len - used, " in command line");
    else
        n = snprintf(buf + used, len - used, " in %s:%u", file, line);
    return n < 0 ? used : used + (size_t)n;
}

/*
 * Errors accumulate, one per line: the walk goes on after a failed directive
 * (run_block), so that `-t` lists every problem of a configuration at once.
 * A message that no longer fits is dropped whole; the count still grows.
 */
static int verr_at(struct conf_parser *p, const char *file, unsigned line, const char *fmt,
                   va_list ap)
{
    p->nerrors++;
    if (!p->err || p->errlen == 0)
        return -1;
    size_t start = p->nerrors > 1 ? strlen(p->err) : 0;
    if (start > 0) {
        if (start + 2 >= p->errlen)
            return -1;
        p->err[start++] = '\n';
    }
    int n = vsnprintf(p->err + start, p->errlen - start, fmt, ap);
    size_t used = start + (n < 0 ? 0 : (size_t)n);
    if (used >= p->errlen) {
        p->err[start ? start - 1 : 0] = '\0'; /* truncated: drop it whole */
        return -1;
    }
    append_location(p->err, p->errlen, used, file, line);
    return -1;
}

const char *conf_err(struct conf_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr_at(p, p->node ? p->node->file : NULL, p->node ? node_line(p->node) : 0, fmt, ap);
    va_end(ap);
    return CONF_ERROR;
}

int conf_err_at(struct conf_parser *p, const char *file, unsigned line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr_at(p, file, line, fmt, ap);
    va_end(ap);
    return -1;
}

static void vwarn(struct conf_parser *p, const char *file, unsigned line, const char *fmt,
                  va_list ap)
{
    if (!p->warn || p->warnlen == 0)
        return;
    size_t used = strlen(p->warn);
    if (used + 1 >= p->warnlen)
        return;
    int n = vsnprintf(p->warn + used, p->warnlen - used, fmt, ap);
    if (n < 0)
        return;
    used += (size_t)n;
    if (used >= p->warnlen) {
        p->warn[p->warnlen - 1] = '\0';
        return;
    }
    used = append_location(p->warn, p->warnlen, used, file, line);
    if (used + 1 < p->warnlen) {
        p->warn[used] = '\n';
        p->warn[used + 1] = '\0';
    }
}

void conf_warn(struct conf_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vwarn(p, NULL, 0, fmt, ap);
    va_end(ap);
}

/* A warning located at the current directive (nginx ngx_conf_log_error(WARN)). */
__attribute__((format(printf, 2, 3))) static void conf_warn_here(struct conf_parser *p,
                                                                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vwarn(p, p->node->file, node_line(p->node), fmt, ap);
    va_end(ap);
}

void conf_warn_node(struct conf_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vwarn(p, p->node->file, node_line(p->node), fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------- helpers */

static struct str arg(const struct conf_parser *p, unsigned i)
{
    return str_from_cstr(p->node->args[i]);
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

const char *conf_full_path(struct conf_parser *p, const char *path)
{
    if (path[0] == '/')
        return arena_strdup(p->a, path);
    return arena_printf(p->a, "%s%s", p->g->prefix, path);
}

/* Relative to the configuration directory (certificates, nginx's conf prefix). */
static const char *conf_dir_path(struct conf_parser *p, const char *path)
{
    if (path[0] == '/' || path[0] == '$' || starts_with(path, "data:"))
        return arena_strdup(p->a, path);
    return arena_printf(p->a, "%s%s", p->conf_prefix, path);
}

/* Compile a template, reporting errors at the current directive. */
static int tmpl_at(struct conf_parser *p, struct tmpl *t, struct str text)
{
    const char *e = NULL;
    if (tmpl_compile(t, &p->g->vars, p->a, text, &e) != 0) {
        conf_err(p, "%s", e ? e : "invalid value");
        return -1;
    }
    return 0;
}

static struct tmpl *tmpl_new(struct conf_parser *p, struct str text)
{
    struct tmpl *t = arena_calloc(p->a, sizeof(*t));
    if (!t) {
        OOM(p);
        return NULL;
    }
    return tmpl_at(p, t, text) == 0 ? t : NULL;
}

struct tmpl *conf_tmpl(struct conf_parser *p, const char *text)
{
    return tmpl_new(p, str_from_cstr(text));
}

/* nginx ngx_atoi: digits only, no sign; -1 on error. */
static int64_t atoi_s(struct str s)
{
    uint64_t v;
    if (str_to_u64(s, INT64_MAX, &v) != 0)
        return -1;
    return (int64_t)v;
}

/* Record a compiled regex in the generation (freed by gen_free). */
static int regex_record(struct conf_parser *p, pcre2_code *re)
{
    struct generation *g = p->g;
    if (g->nregexes == g->cap_regexes) {
        unsigned cap = g->cap_regexes ? g->cap_regexes * 2 : 16;
        void **n = arena_alloc(p->a, cap * sizeof(*n));
        if (!n)
            return -1;
        if (g->nregexes)
            memcpy(n, g->regexes, g->nregexes * sizeof(*n));
        g->regexes = n;
        g->cap_regexes = cap;
    }
    g->regexes[g->nregexes++] = re;
    return 0;
}

/*
 * Compile `pattern` (NUL-terminated) with PCRE2, try JIT, record it for
 * gen_free and define its named captures as variables. NULL on error (the
 * message, nginx's "pcre2_compile() failed: ...", is written).
 */
static void *regex_compile(struct conf_parser *p, const char *pattern, int caseless)
{
    int ec;
    PCRE2_SIZE eo;
    size_t plen = strlen(pattern);
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pattern, plen, caseless ? PCRE2_CASELESS : 0, &ec, &eo, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", ec);
        if (eo >= plen)
            conf_err(p, "pcre2_compile() failed: %s in \"%s\"", (char *)msg, pattern);
        else
            conf_err(p, "pcre2_compile() failed: %s in \"%s\" at \"%s\"", (char *)msg, pattern,
                     pattern + eo);
        return NULL;
    }
    if (regex_record(p, re) != 0) {
        pcre2_code_free(re);
        OOM(p);
        return NULL;
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional speed-up */

    uint32_t count = 0, esize = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info(re, PCRE2_INFO_NAMECOUNT, &count);
    if (count) {
        pcre2_pattern_info(re, PCRE2_INFO_NAMEENTRYSIZE, &esize);
        pcre2_pattern_info(re, PCRE2_INFO_NAMETABLE, &table);
        for (uint32_t i = 0; i < count; i++) {
            const char *name = (const char *)(table + (size_t)i * esize + 2);
            const char *e = NULL;
            if (!var_define_named_capture(&p->g->vars, p->a, str_from_cstr(name), &e)) {
                conf_err(p, "%s", e ? e : "out of memory");
                return NULL;
            }
        }
    }
    return re;
}

void *conf_regex_compile(struct conf_parser *p, const char *pattern, int caseless)
{
    return regex_compile(p, pattern, caseless);
}

/* "127.0.0.1:80" / "[::1]:80" for an address. Arena-owned. */
static const char *sockaddr_text(struct conf_parser *p, const struct sockaddr_storage *ss)
{
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        return arena_printf(p->a, "[%s]:%u", host, ntohs(s6->sin6_port));
    }
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
    return arena_printf(p->a, "%s:%u", host, ntohs(s4->sin_port));
}

static socklen_t ss_len(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static int ss_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

/*
 * The upstream peer of the Unix socket at `path` (nginx's
 * ngx_parse_unix_domain_url): named "unix:PATH" as nginx names it in logs
 * and $upstream_addr; the path is used as written (not prefix-joined).
 * Returns NULL, or nginx's phrase for what is wrong with the path.
 */
static const char *unix_peer(struct conf_parser *p, struct str path, struct upstream_peer *peer)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)&peer->addr;
    if (!path.len)
        return "no path in the unix domain socket";
    if (path.len + 1 > sizeof(sun->sun_path))
        return "too long path in the unix domain socket";
    memset(&peer->addr, 0, sizeof(peer->addr));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path.p, path.len);
    peer->addrlen = sizeof(struct sockaddr_un);
    peer->name = arena_printf(p->a, "unix:%.*s", (int)path.len, path.p);
    return peer->name ? NULL : "out of memory";
}

/*
 * Resolve `host` (no brackets) to addresses with `port`, deduplicated, into
 * an arena array. Returns the count (> 0), or 0 when the host is not found.
 * -1 on allocation failure.
 */
static int resolve(struct conf_parser *p, const char *host, unsigned port,
                   struct sockaddr_storage **out)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char ports[8];
    snprintf(ports, sizeof(ports), "%u", port);
    if (getaddrinfo(host, ports, &hints, &res) != 0 || !res) {
        if (res)
            freeaddrinfo(res);
        return 0;
    }
    unsigned n = 0;
    struct sockaddr_storage *arr = NULL;
    int rc = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(struct sockaddr_storage))
            continue;
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        int dup = 0;
        for (unsigned i = 0; i < n && !dup; i++)
            dup = ss_equal(&arr[i], &ss);
        if (dup)
            continue;
        struct sockaddr_storage *e = PUSH(p, arr, n);
        if (!e) {
            rc = -1;
            break;
        }
        *e = ss;
    }
    freeaddrinfo(res);
    if (rc < 0)
        return -1;
    *out = arr;
    return (int)n;
}

/*
 * Split "host[:port][/uri]" (nginx ngx_parse_inet_url). `host` keeps IPv6
 * brackets. Returns NULL or an nginx error phrase ("invalid port", "no host",
 * "invalid host").
 */
struct url_parts {
    struct str host;
    unsigned port;
    int no_port;
    struct str uri; /* from the first '/' or '?', empty when none */
};

static const char *split_url(struct str u, int allow_uri, unsigned default_port,
                             struct url_parts *out)
{
    memset(out, 0, sizeof(*out));
    const char *s = u.p, *last = u.p + u.len;
    const char *uri = memchr(s, '/', u.len);
    const char *q = memchr(s, '?', u.len);
    if (q && (!uri || q < uri))
        uri = q;
    const char *host_end = last;
    if (s < last && s[0] == '[') {
        const char *rb = memchr(s, ']', u.len);
        if (!rb || (uri && uri < rb))
            return "invalid host";
        uri = NULL;
        const char *u2 = memchr(rb, '/', (size_t)(last - rb));
        const char *q2 = memchr(rb, '?', (size_t)(last - rb));
        if (q2 && (!u2 || q2 < u2))
            u2 = q2;
        uri = u2;
    }
    if (uri) {
        if (!allow_uri)
            return "invalid host";
        out->uri = (struct str){uri, (size_t)(last - uri)};
        host_end = uri;
        if (uri == s)
            return "no host";
    }
    const char *port = NULL;
    if (s < host_end && s[0] == '[') {
        const char *rb = memchr(s, ']', (size_t)(host_end - s));
        if (rb + 1 < host_end) {
            if (rb[1] != ':')
                return "invalid host";
            port = rb + 1;
        }
    } else {
        port = memchr(s, ':', (size_t)(host_end - s));
    }
    if (port) {
        struct str ps = {port + 1, (size_t)(host_end - port - 1)};
        uint64_t v;
        if (str_to_u64(ps, 65535, &v) != 0 || v < 1)
            return "invalid port";
        out->port = (unsigned)v;
        host_end = port;
    } else {
        out->port = default_port;
        out->no_port = 1;
    }
    out->host = (struct str){s, (size_t)(host_end - s)};
    if (out->host.len == 0)
        return "no host";
    if (out->host.p[0] == '[' && (out->host.len < 3 || out->host.p[out->host.len - 1] != ']'))
        return "invalid host";
    return NULL;
}

/* Host without IPv6 brackets, NUL-terminated in the arena. */
static char *host_cstr(struct conf_parser *p, struct str host)
{
    if (host.len >= 2 && host.p[0] == '[')
        return arena_strndup(p->a, host.p + 1, host.len - 2);
    return arena_strndup(p->a, host.p, host.len);
}

/* ------------------------------------------------------ generic setters */


const char *set_flag(struct conf_parser *p, const struct directive *d, void *conf)
{
    int *f = FIELD(conf, d, int);
    if (*f != CONF_UNSET)
        return "is duplicate";
    const char *v = p->node->args[0];
    if (strcasecmp(v, "on") == 0)
        *f = 1;
    else if (strcasecmp(v, "off") == 0)
        *f = 0;
    else
        return conf_err(p, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"",
                        v, d->name);
    return NULL;
}

const char *set_num(struct conf_parser *p, const struct directive *d, void *conf)
{
    int64_t *f = FIELD(conf, d, int64_t);
    if (*f != CONF_UNSET)
        return "is duplicate";
    int64_t v = atoi_s(arg(p, 0));
    if (v < 0)
        return "invalid number";
    *f = v;
    return NULL;
}

const char *set_uint(struct conf_parser *p, const struct directive *d, void *conf)
{
    unsigned *f = FIELD(conf, d, unsigned);
    if (*f != UINT_MAX)
        return "is duplicate";
    int64_t v = atoi_s(arg(p, 0));
    if (v < 0 || v >= UINT_MAX)
        return "invalid number";
    *f = (unsigned)v;
    return NULL;
}

const char *set_size(struct conf_parser *p, const struct directive *d, void *conf)
{
    uint64_t *f = FIELD(conf, d, uint64_t);
    if (*f != CONF_UNSET_U64)
        return "is duplicate";
    if (str_to_size(arg(p, 0), f) != 0) {
        *f = CONF_UNSET_U64;
        return "invalid value";
    }
    return NULL;
}

const char *set_msec(struct conf_parser *p, const struct directive *d, void *conf)
{
    uint64_t *f = FIELD(conf, d, uint64_t);
    if (*f != CONF_UNSET_U64)
        return "is duplicate";
    if (str_to_msec(arg(p, 0), f) != 0) {
        *f = CONF_UNSET_U64;
        return "invalid value";
    }
    return NULL;
}

/* const char * field, as written. */
const char *set_str(struct conf_parser *p, const struct directive *d, void *conf)
{
    const char **f = FIELD(conf, d, const char *);
    if (*f)
        return "is duplicate";
    *f = p->node->args[0];
    return NULL;
}

/* const char * field holding a path relative to the configuration directory. */
const char *set_conf_path(struct conf_parser *p, const struct directive *d, void *conf)
{
    const char **f = FIELD(conf, d, const char *);
    if (*f)
        return "is duplicate";
    *f = conf_dir_path(p, p->node->args[0]);
    return *f ? NULL : OOM(p);
}

/* struct str field. */
const char *set_slice(struct conf_parser *p, const struct directive *d, void *conf)
{
    struct str *f = FIELD(conf, d, struct str);
    if (f->p)
        return "is duplicate";
    *f = arg(p, 0);
    return NULL;
}

/* struct tmpl * field. */
const char *set_tmpl_ptr(struct conf_parser *p, const struct directive *d, void *conf)
{
    struct tmpl **f = FIELD(conf, d, struct tmpl *);
    if (*f)
        return "is duplicate";
    *f = tmpl_new(p, arg(p, 0));
    return *f ? NULL : CONF_ERROR;
}

/* int field set from a name table (nginx ngx_conf_set_enum_slot). */
const char *set_enum(struct conf_parser *p, const struct directive *d, void *conf)
{
    int *f = FIELD(conf, d, int);
    if (*f != CONF_UNSET)
        return "is duplicate";
    const char *v = p->node->args[0];
    for (const struct conf_enum *e = d->post; e->name; e++) {
        if (strcasecmp(v, e->name) == 0) {
            *f = (int)e->value;
            return NULL;
        }
    }
    return conf_err(p, "invalid value \"%s\"", v);
}

/* unsigned bit set, OR-ed over arguments (nginx ngx_conf_set_bitmask_slot). 0 = unset. */
const char *set_bitmask(struct conf_parser *p, const struct directive *d, void *conf)
{
    unsigned *f = FIELD(conf, d, unsigned);
    for (unsigned i = 0; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        const struct conf_enum *e;
        for (e = d->post; e->name; e++)
            if (strcasecmp(v, e->name) == 0)
                break;
        if (!e->name)
            return conf_err(p, "invalid value \"%s\"", v);
        if (*f & e->value)
            conf_warn_here(p, "duplicate value \"%s\"", v);
        *f |= e->value;
    }
    return NULL;
}

static const struct conf_enum on_off_build[] = {{"on", 1}, {"off", 0}, {"build", 2}, {NULL, 0}};
static const struct conf_enum http_versions[] = {{"1.0", 0}, {"1.1", 1}, {NULL, 0}};
/* limit_req_log_level / limit_conn_log_level */
static const struct conf_enum limit_log_levels[] = {{"info", LOG_LVL_INFO},
                                                    {"notice", LOG_LVL_NOTICE},
                                                    {"warn", LOG_LVL_WARN},
                                                    {"error", LOG_LVL_ERR},
                                                    {NULL, 0}};
static const struct conf_enum ims_values[] = {{"off", 0}, {"exact", 1}, {"before", 2}, {NULL, 0}};
static const struct conf_enum lingering_close_values[] = {{"off", LINGERING_CLOSE_OFF},
                                                          {"on", LINGERING_CLOSE_ON},
                                                          {"always", LINGERING_CLOSE_ALWAYS},
                                                          {NULL, 0}};
static const struct conf_enum next_upstream_values[] = {
    {"error", NEXT_UPSTREAM_ERROR},
    {"timeout", NEXT_UPSTREAM_TIMEOUT},
    {"invalid_header", NEXT_UPSTREAM_INVALID_HEADER},
    {"http_500", NEXT_UPSTREAM_HTTP_500},
    {"http_502", NEXT_UPSTREAM_HTTP_502},
    {"http_503", NEXT_UPSTREAM_HTTP_503},
    {"http_504", NEXT_UPSTREAM_HTTP_504},
    {"http_403", NEXT_UPSTREAM_HTTP_403},
    {"http_404", NEXT_UPSTREAM_HTTP_404},
    {"http_429", NEXT_UPSTREAM_HTTP_429},
    {"non_idempotent", NEXT_UPSTREAM_NON_IDEMPOTENT},
    {"off", NEXT_UPSTREAM_OFF},
    {NULL, 0},
};
static const struct conf_enum debug_points_values[] = {{"stop", 0}, {"abort", 1}, {NULL, 0}};
/* proxy_ignore_headers: nginx's names (ngx_http_upstream_ignore_headers_masks) */
static const struct conf_enum ignore_headers_values[] = {
    {"X-Accel-Redirect", PROXY_IGNORE_XA_REDIRECT},
    {"X-Accel-Expires", PROXY_IGNORE_XA_EXPIRES},
    {"X-Accel-Limit-Rate", PROXY_IGNORE_XA_LIMIT_RATE},
    {"X-Accel-Buffering", PROXY_IGNORE_XA_BUFFERING},
    {"X-Accel-Charset", PROXY_IGNORE_XA_CHARSET},
    {"Expires", PROXY_IGNORE_EXPIRES},
    {"Cache-Control", PROXY_IGNORE_CACHE_CONTROL},
    {"Set-Cookie", PROXY_IGNORE_SET_COOKIE},
    {"Vary", PROXY_IGNORE_VARY},
    {NULL, 0},
};

/* proxy_ignore_headers FIELD ...: the bits, marked as given at this level. */
static const char *set_ignore_headers(struct conf_parser *p, const struct directive *d, void *conf)
{
    unsigned *f = FIELD(conf, d, unsigned);
    if (*f & PROXY_IGNORE_SET)
        return "is duplicate";
    const char *rv = set_bitmask(p, d, conf);
    *f |= PROXY_IGNORE_SET;
    return rv;
}
static const struct conf_enum ssl_protocol_values[] = {
    {"SSLv2", SSL_PROTO_SSLv2},
    {"SSLv3", SSL_PROTO_SSLv3},
    {"TLSv1", SSL_PROTO_TLSv1},
    {"TLSv1.1", SSL_PROTO_TLSv1_1},
    {"TLSv1.2", SSL_PROTO_TLSv1_2},
    {"TLSv1.3", SSL_PROTO_TLSv1_3},
    {NULL, 0},
};

/* ------------------------------------------------------------ main level */

static const char *set_worker_processes(struct conf_parser *p, const struct directive *d,
                                        void *conf)
{
    (void)d;
    struct main_conf *m = conf;
    if (m->worker_processes != CONF_UNSET)
        return "is duplicate";
    if (strcmp(p->node->args[0], "auto") == 0) {
        m->worker_processes = 0;
        return NULL;
    }
    int64_t v = atoi_s(arg(p, 0));
    if (v < 0)
        return "invalid value";
    m->worker_processes = v;
    return NULL;
}

static const char *set_worker_connections(struct conf_parser *p, const struct directive *d,
                                          void *conf)
{
    (void)d;
    struct main_conf *m = conf;
    if (m->worker_connections != CONF_UNSET)
        return "is duplicate";
    int64_t v = atoi_s(arg(p, 0));
    if (v < 0)
        return conf_err(p, "invalid number \"%s\"", p->node->args[0]);
    m->worker_connections = v;
    return NULL;
}

static const char *set_cpu_affinity(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct main_conf *m = conf;
    if (m->worker_cpu_affinity_auto || m->nworker_cpu_masks)
        return "is duplicate";
    unsigned i = 0;
    if (strcmp(p->node->args[0], "auto") == 0) {
        if (p->node->nargs > 2)
            return conf_err(p, "invalid number of arguments in \"worker_cpu_affinity\" directive");
        m->worker_cpu_affinity_auto = 1;
        i = 1;
    }
    for (; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        size_t len = strlen(v);
        if (len > 64)
            return conf_err(p, "\"worker_cpu_affinity\" supports up to 64 CPUs only");
        uint64_t mask = 0;
        for (size_t k = 0; k < len; k++) {
            char c = v[len - 1 - k];
            if (c == '1')
                mask |= 1ULL << k;
            else if (c != '0')
                return conf_err(p, "invalid character \"%c\" in \"worker_cpu_affinity\"", c);
        }
        uint64_t *e = PUSH(p, m->worker_cpu_masks, m->nworker_cpu_masks);
        if (!e)
            return OOM(p);
        *e = mask;
    }
    return NULL;
}

static int parse_log_level(const char *s, enum log_level *out)
{
    static const char *const names[] = {"emerg", "alert",  "crit", "error",
                                        "warn",  "notice", "info", "debug"};
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

/* error_log FILE [LEVEL]: main level sets the error log; elsewhere checked only. */
static const char *set_error_log(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    const char *path = p->node->args[0];
    if (starts_with(path, "syslog:") || starts_with(path, "memory:"))
        return conf_err(p, "\"%.6s\" error logs are not supported", path);
    enum log_level lvl = LOG_LVL_ERR;
    if (p->node->nargs > 2)
        return conf_err(p, "invalid number of arguments in \"error_log\" directive");
    if (p->node->nargs == 2 && parse_log_level(p->node->args[1], &lvl) != 0)
        return conf_err(p, "invalid log level \"%s\"", p->node->args[1]);
    if (p->hb)
        return NULL; /* http/server/location: accepted, the main log is used */
    struct main_conf *m = &p->g->main;
    if (m->error_log_path)
        return NULL; /* nginx logs to every main error_log; we keep the first */
    m->error_log_path = strcmp(path, "stderr") == 0 ? "stderr" : conf_full_path(p, path);
    m->error_log_level = lvl;
    return m->error_log_path ? NULL : OOM(p);
}

static const char *set_pid(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct main_conf *m = conf;
    if (m->pid_path)
        return "is duplicate";
    m->pid_path = conf_full_path(p, p->node->args[0]);
    return m->pid_path ? NULL : OOM(p);
}

static const char *set_user(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct main_conf *m = conf;
    if (m->user)
        return "is duplicate";
    /* A worker replaying its master's snapshot runs as `user` already: the
     * master (root) checked this line. */
    if (geteuid() != 0 && !snap_replaying()) {
        conf_warn_here(p, "the \"user\" directive makes sense only if the master process runs "
                          "with super-user privileges, ignored");
        return NULL;
    }
    const char *user = p->node->args[0];
    const char *group = p->node->nargs == 2 ? p->node->args[1] : user;
    errno = 0;
    if (!getpwnam(user))
        return conf_err(p, "getpwnam(\"%s\") failed", user);
    errno = 0;
    if (!getgrnam(group))
        return conf_err(p, "getgrnam(\"%s\") failed", group);
    m->user = user;
    m->group = group;
    return NULL;
}

static const char *set_use(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    if (strcmp(p->node->args[0], "epoll") != 0)
        return conf_err(p, "invalid event type \"%s\"", p->node->args[0]);
    return NULL;
}

static int run_block(struct conf_parser *p, const struct conf_node *n, unsigned ctx);

static const char *set_events(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    if (p->events_seen)
        return "is duplicate";
    p->events_seen = 1;
    return run_block(p, p->node->children, CTX_EVENTS) == 0 ? NULL : CONF_ERROR;
}

/* ------------------------------------------------------------ http level */

static int http_finish(struct conf_parser *p);

static const char *set_http(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    if (p->http_seen)
        return "is duplicate";
    p->http_seen = 1;

    struct http_build *hb = arena_calloc(p->a, sizeof(*hb));
    struct http_conf *hc = arena_calloc(p->a, sizeof(*hc));
    struct ssl_conf *ssl = arena_calloc(p->a, sizeof(*ssl));
    struct log_format *combined = arena_calloc(p->a, sizeof(*combined));
    if (!hb || !hc || !ssl || !combined)
        return OOM(p);
    hb->hc = hc;
    hb->ssl = ssl;
    ssl_conf_init(ssl);
    hc->lc = loc_conf_create(p->a);
    if (!hc->lc)
        return OOM(p);
    p->g->http = hc;

    /* nginx's predefined format */
    combined->name = "combined";
    if (tmpl_at(p, &combined->tmpl,
                STR_LIT("$remote_addr - $remote_user [$time_local] \"$request\" $status "
                        "$body_bytes_sent \"$http_referer\" \"$http_user_agent\"")) != 0)
        return CONF_ERROR;
    struct log_format **lf = PUSH(p, hc->log_formats, hc->nlog_formats);
    if (!lf)
        return OOM(p);
    *lf = combined;

    p->hb = hb;
    p->lc = hc->lc;
    p->ssl = ssl;
    p->rw_tail = NULL;
    hb->node = p->node;
    if (run_block(p, p->node->children, CTX_HTTP) != 0)
        return CONF_ERROR;
    p->lc = NULL;
    p->ssl = NULL;
    int rc = http_finish(p);
    p->hb = NULL;
    return rc == 0 ? NULL : CONF_ERROR;
}

/* ----------------------------------------------------------------- listen */

struct listen_opt {
    int default_server, bind, set, ssl, http2, proxy_protocol, reuseport, deferred;
    int backlog, rcvbuf, sndbuf, so_keepalive, keepidle, keepintvl, keepcnt, ipv6only, fastopen;
};

/* Add server `sb` on address `ss` with options `o` (nginx ngx_http_add_addresses). */
static const char *add_listen(struct conf_parser *p, struct srv_build *sb,
                              const struct sockaddr_storage *ss, const struct listen_opt *o)
{
    struct http_build *hb = p->hb;
    struct lbuild *lb = NULL;
    for (unsigned i = 0; i < hb->nlistens; i++)
        if (ss_equal(&hb->listens[i].l->addr, ss))
            lb = &hb->listens[i];

    if (!lb) {
        lb = PUSH(p, hb->listens, hb->nlistens);
        struct listen_conf *l = arena_calloc(p->a, sizeof(*l));
        if (!lb || !l)
            return OOM(p);
        lb->l = l;
        l->addr = *ss;
        l->addrlen = ss_len(ss);
        l->text = sockaddr_text(p, ss);
        if (!l->text)
            return OOM(p);
        l->backlog = -1;
        l->rcvbuf = -1;
        l->sndbuf = -1;
        l->so_keepalive = -1;
        l->ipv6only = -1;
        l->fastopen = -1;
        l->file = p->node->file;
        l->line = node_line(p->node);
    }
    struct listen_conf *l = lb->l;
    for (unsigned i = 0; i < l->nservers; i++)
        if (l->servers[i] == sb->sc)
            return conf_err(p, "a duplicate listen %s", l->text);
    if (o->set) {
        if (lb->opts_set)
            return conf_err(p, "duplicate listen options for %s", l->text);
        lb->opts_set = 1;
        l->bind = o->bind;
        l->reuseport = o->reuseport;
        l->deferred = o->deferred;
        l->backlog = o->backlog;
        l->rcvbuf = o->rcvbuf;
        l->sndbuf = o->sndbuf;
        l->so_keepalive = o->so_keepalive;
        l->keepidle = o->keepidle;
        l->keepintvl = o->keepintvl;
        l->keepcnt = o->keepcnt;
        l->ipv6only = o->ipv6only;
        l->fastopen = o->fastopen;
    }
    if (o->default_server) {
        if (l->default_server_set)
            return conf_err(p, "a duplicate default server for %s", l->text);
        l->default_server_set = 1;
        l->default_server = sb->sc;
    }
    /* Protocol options, not socket options: nginx ORs them over every
     * listen of the address instead of calling a difference a duplicate. */
    l->ssl |= o->ssl;
    l->http2 |= o->http2;
    l->proxy_protocol |= o->proxy_protocol;
    const struct server_conf **e = PUSH(p, l->servers, l->nservers);
    if (!e)
        return OOM(p);
    *e = sb->sc;
    return NULL;
}

static int is_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* listen address forms: port | *:port | addr[:port] | [v6][:port] | host[:port] */
static const char *listen_addrs(struct conf_parser *p, const char *text,
                                struct sockaddr_storage **out, int *n)
{
    struct url_parts u;
    if (is_digits(text)) {
        int64_t port = atoi_s(str_from_cstr(text));
        if (port < 1 || port > 65535)
            return conf_err(p, "invalid port in \"%s\" of the \"listen\" directive", text);
        struct sockaddr_storage *ss = arena_calloc(p->a, sizeof(*ss));
        if (!ss)
            return OOM(p);
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        *out = ss;
        *n = 1;
        return NULL;
    }
    const char *e = split_url(str_from_cstr(text), 0, 80, &u);
    if (e)
        return conf_err(p, "%s in \"%s\" of the \"listen\" directive", e, text);
    char *host = host_cstr(p, u.host);
    if (!host)
        return OOM(p);
    struct sockaddr_storage *ss = arena_calloc(p->a, sizeof(*ss));
    if (!ss)
        return OOM(p);
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (strcmp(host, "*") == 0) {
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        s4->sin_port = htons((uint16_t)u.port);
    } else if (u.host.p[0] == '[') {
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return conf_err(p, "invalid IPv6 address in \"%s\" of the \"listen\" directive", text);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)u.port);
    } else if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)u.port);
    } else {
        int r = resolve(p, host, u.port, out);
        if (r < 0)
            return OOM(p);
        if (r == 0)
            return conf_err(p, "host not found in \"%s\" of the \"listen\" directive", text);
        *n = r;
        return NULL;
    }
    *out = ss;
    *n = 1;
    return NULL;
}

static const char *set_listen(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct srv_build *sb = conf;
    const char *text = p->node->args[0];
    if (starts_with(text, "unix:"))
        return conf_err(p,
                        "unix domain sockets are not supported in \"%s\" of the \"listen\" "
                        "directive",
                        text);
    struct sockaddr_storage *addrs = NULL;
    int naddrs = 0;
    const char *rv = listen_addrs(p, text, &addrs, &naddrs);
    if (rv)
        return rv;

    struct listen_opt o;
    memset(&o, 0, sizeof(o));
    o.backlog = -1;
    o.rcvbuf = -1;
    o.sndbuf = -1;
    o.so_keepalive = -1;
    o.ipv6only = -1;
    o.fastopen = -1;
    int quic = 0;
    for (unsigned i = 1; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        uint64_t sz;
        if (strcmp(v, "default_server") == 0 || strcmp(v, "default") == 0) {
            o.default_server = 1;
        } else if (strcmp(v, "bind") == 0) {
            o.set = o.bind = 1;
        } else if (starts_with(v, "backlog=")) {
            int64_t b = atoi_s(str_from_cstr(v + 8));
            if (b <= 0 || b > INT_MAX)
                return conf_err(p, "invalid backlog \"%s\"", v);
            o.backlog = (int)b;
            o.set = 1;
        } else if (starts_with(v, "rcvbuf=") || starts_with(v, "sndbuf=")) {
            if (str_to_size(str_from_cstr(v + 7), &sz) != 0 || sz > INT_MAX)
                return conf_err(p, "invalid %.6s \"%s\"", v, v + 7);
            if (v[0] == 'r')
                o.rcvbuf = (int)sz;
            else
                o.sndbuf = (int)sz;
            o.set = 1;
        } else if (strcmp(v, "deferred") == 0) {
            o.set = o.deferred = 1;
        } else if (strcmp(v, "reuseport") == 0) {
            o.set = o.bind = o.reuseport = 1;
        } else if (strcmp(v, "ssl") == 0) {
            o.ssl = 1;
        } else if (strcmp(v, "http2") == 0) {
            conf_warn_here(p, "the \"listen ... http2\" directive is deprecated, use the "
                              "\"http2\" directive instead");
            o.http2 = 1;
        } else if (strcmp(v, "proxy_protocol") == 0) {
            o.proxy_protocol = 1;
        } else if (strcmp(v, "quic") == 0) {
            quic = 1;
        } else if (starts_with(v, "ipv6only=o")) {
            if (strcmp(v + 10, "n") == 0)
                o.ipv6only = 1;
            else if (strcmp(v + 10, "ff") == 0)
                o.ipv6only = 0;
            else
                return conf_err(p, "invalid ipv6only flags \"%s\"", v + 9);
            o.set = o.bind = 1;
        } else if (starts_with(v, "so_keepalive=")) {
            const char *s = v + 13;
            if (strcmp(s, "on") == 0) {
                o.so_keepalive = 1;
            } else if (strcmp(s, "off") == 0) {
                o.so_keepalive = 0;
            } else {
                /* [keepidle]:[keepintvl]:[keepcnt] */
                int vals[3] = {0, 0, 0};
                const char *q = s;
                for (int k = 0; k < 3; k++) {
                    const char *end = strchr(q, ':');
                    size_t len = end ? (size_t)(end - q) : strlen(q);
                    if ((k < 2 && !end) || (k == 2 && end))
                        return conf_err(p, "invalid so_keepalive value: \"%s\"", v + 13);
                    if (len) {
                        uint64_t x;
                        struct str part = {q, len};
                        if (k < 2 ? str_to_msec(part, &x) != 0 : str_to_u64(part, INT_MAX, &x) != 0)
                            return conf_err(p, "invalid so_keepalive value: \"%s\"", v + 13);
                        vals[k] = (int)(k < 2 ? x / 1000 : x);
                        if (k < 2 && vals[k] == 0)
                            return conf_err(p, "invalid so_keepalive value: \"%s\"", v + 13);
                    }
                    q = end ? end + 1 : q + len;
                }
                if (!vals[0] && !vals[1] && !vals[2])
                    return conf_err(p, "invalid so_keepalive value: \"%s\"", v + 13);
                o.so_keepalive = 1;
                o.keepidle = vals[0];
                o.keepintvl = vals[1];
                o.keepcnt = vals[2];
            }
            o.set = o.bind = 1;
        } else if (starts_with(v, "fastopen=")) {
            int64_t f = atoi_s(str_from_cstr(v + 9));
            if (f < 0 || f > INT_MAX)
                return conf_err(p, "invalid fastopen \"%s\"", v);
            o.fastopen = (int)f;
            o.set = o.bind = 1;
        } else {
            return conf_err(p, "invalid parameter \"%s\"", v);
        }
    }
    sb->nlisten++;
    if (quic) {
        /* A UDP listener for HTTP/3: none is opened; the server still counts
         * as listening (no implicit port 80), its TCP listeners serve. */
        conf_warn_here(p, "the \"listen ... quic\" directive is ignored: HTTP/3 (QUIC) is not "
                          "built in, clients use HTTP/2 or HTTP/1.1");
        return NULL;
    }
    for (int i = 0; i < naddrs; i++)
        if ((rv = add_listen(p, sb, &addrs[i], &o)) != NULL)
            return rv;
    return NULL;
}

/* ------------------------------------------------------------ real IP */

/* set_real_ip_from address | CIDR | unix: | host name (every address it
 * resolves to, at load), as ngx_http_realip_from. */
static const char *set_real_ip_from(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    const char *v = p->node->args[0];
    struct realip_cidr c;
    memset(&c, 0, sizeof(c));
    c.family = AF_UNIX; /* "unix:" */
    int rc = strcmp(v, "unix:") == 0 ? 0 : realip_parse_cidr(v, &c);
    if (rc == 1)
        conf_warn_here(p, "low address bits of %s are meaningless", v);
    if (rc >= 0) {
        struct realip_cidr *e = PUSH(p, lc->real_ip_from, lc->nreal_ip_from);
        if (!e)
            return OOM(p);
        *e = c;
        return NULL;
    }
    /* Not an address: nginx resolves it as a host name (a bad CIDR such as
     * "10.0.0.0/33" ends up here too, and so is "host not found"). */
    struct sockaddr_storage *addrs = NULL;
    int n = resolve(p, v, 0, &addrs);
    if (n < 0)
        return OOM(p);
    if (n == 0)
        return conf_err(p, "host not found in set_real_ip_from \"%s\"", v);
    for (int i = 0; i < n; i++) {
        struct realip_cidr *e = PUSH(p, lc->real_ip_from, lc->nreal_ip_from);
        if (!e)
            return OOM(p);
        memset(e, 0, sizeof(*e));
        e->family = (uint8_t)addrs[i].ss_family;
        if (e->family == AF_INET)
            memcpy(e->addr, &((struct sockaddr_in *)&addrs[i])->sin_addr, 4);
        else
            memcpy(e->addr, &((struct sockaddr_in6 *)&addrs[i])->sin6_addr, 16);
        memset(e->mask, 0xff, e->family == AF_INET ? 4 : 16);
    }
    return NULL;
}

/* real_ip_header X-Real-IP | X-Forwarded-For | proxy_protocol | any other
 * header name (nginx compares the three keywords case-sensitively). */
static const char *set_real_ip_header(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    if (lc->real_ip_header != CONF_UNSET)
        return "is duplicate";
    const char *v = p->node->args[0];
    if (strcmp(v, "X-Real-IP") == 0) {
        lc->real_ip_header = REALIP_HDR_X_REAL_IP;
    } else if (strcmp(v, "X-Forwarded-For") == 0) {
        lc->real_ip_header = REALIP_HDR_X_FORWARDED_FOR;
    } else if (strcmp(v, "proxy_protocol") == 0) {
        lc->real_ip_header = REALIP_HDR_PROXY_PROTOCOL;
    } else {
        lc->real_ip_header = REALIP_HDR_OTHER;
        lc->real_ip_header_name = str_from_cstr(v);
    }
    return NULL;
}

/* ------------------------------------------------------------ server_name */

/* nginx ngx_hash_add_key(NGX_HASH_WILDCARD_KEY) validity: at most one '*',
 * no "..", and a '*' only as "*." at the start or ".*" at the end. */
static int wildcard_valid(const char *s)
{
    size_t len = strlen(s);
    int stars = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '*' && ++stars > 1)
            return 0;
        if (s[i] == '.' && s[i + 1] == '.')
            return 0;
    }
    if (len > 1 && s[0] == '.')
        return stars == 0;
    if (len > 2 && s[0] == '*' && s[1] == '.')
        return 1;
    if (len > 2 && s[len - 2] == '.' && s[len - 1] == '*')
        return 1;
    return stars == 0;
}

/* Classify a (lower-cased, valid) name as exact / head / tail wildcard. */
static void classify_name(const char *s, enum server_name_kind *kind, struct str *name,
                          int *dot_form)
{
    size_t len = strlen(s);
    *dot_form = 0;
    if (len > 1 && s[0] == '.') {
        *kind = SN_WILD_HEAD;
        *name = (struct str){s + 1, len - 1};
        *dot_form = 1;
    } else if (len > 2 && s[0] == '*' && s[1] == '.') {
        *kind = SN_WILD_HEAD;
        *name = (struct str){s + 2, len - 2};
    } else if (len > 2 && s[len - 2] == '.' && s[len - 1] == '*') {
        *kind = SN_WILD_TAIL;
        *name = (struct str){s, len - 1};
    } else {
        *kind = SN_EXACT;
        *name = (struct str){s, len};
    }
}

static const char *set_server_name(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct srv_build *sb = conf;
    for (unsigned i = 0; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        size_t len = strlen(v);
        if ((v[0] == '*' && (len < 3 || v[1] != '.')) || (v[0] == '.' && len < 2))
            return conf_err(p, "server name \"%s\" is invalid", v);
        if (strchr(v, '/'))
            conf_warn_here(p, "server name \"%s\" has suspicious symbols", v);

        struct server_name *sn = PUSH(p, sb->names, sb->nnames);
        struct sn_extra *x = PUSH(p, sb->sn, sb->nsn);
        if (!sn || !x)
            return OOM(p);
        x->file = p->node->file;
        x->line = node_line(p->node);
        if (v[0] == '~') {
            if (len == 1)
                return conf_err(p, "empty regex in server name \"%s\"", v);
            sn->kind = SN_REGEX;
            sn->name = (struct str){v + 1, len - 1};
            sn->re = regex_compile(p, v + 1, 1);
            if (!sn->re)
                return CONF_ERROR;
            x->written = v;
            continue;
        }
        char *low;
        if (strcasecmp(v, "$hostname") == 0) {
            char host[256];
            if (gethostname(host, sizeof(host)) != 0)
                return conf_err(p, "gethostname() failed");
            host[sizeof(host) - 1] = '\0';
            low = arena_strdup(p->a, host);
        } else {
            low = arena_strdup(p->a, v);
        }
        if (!low)
            return OOM(p);
        for (char *c = low; *c; c++)
            *c = (char)sy_tolower((unsigned char)*c);
        x->written = low;
        if (!wildcard_valid(low)) {
            x->invalid = 1;
            sn->kind = SN_EXACT;
            sn->name = str_from_cstr(low);
            continue;
        }
        classify_name(low, &sn->kind, &sn->name, &sn->dot_form);
    }
    return NULL;
}

/* ------------------------------------------------------------ server */

static const char *set_server(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    struct http_build *hb = p->hb;
    struct srv_build *sb = arena_calloc(p->a, sizeof(*sb));
    struct server_conf *sc = arena_calloc(p->a, sizeof(*sc));
    struct ssl_conf *ssl = arena_calloc(p->a, sizeof(*ssl));
    struct srv_build **slot = PUSH(p, hb->servers, hb->nservers);
    if (!sb || !sc || !ssl || !slot)
        return OOM(p);
    *slot = sb;
    sb->sc = sc;
    sb->ssl = ssl;
    ssl_conf_init(ssl);
    sc->ssl = ssl;
    sc->file = p->node->file;
    sc->line = node_line(p->node);
    sc->lc = loc_conf_create(p->a);
    if (!sc->lc)
        return OOM(p);

    const struct conf_node *self = p->node;
    p->sb = sb;
    p->lc = sc->lc;
    p->ssl = ssl;
    p->rw_tail = &sc->lc->rewrite;
    if (run_block(p, self->children, CTX_SERVER) != 0)
        return CONF_ERROR;
    p->node = self;

    if (sb->nlisten == 0) {
        /* nginx: *:80 as root, *:8000 otherwise */
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        s4->sin_port = htons(geteuid() == 0 ? 80 : 8000);
        struct listen_opt o;
        memset(&o, 0, sizeof(o));
        o.backlog = o.rcvbuf = o.sndbuf = o.so_keepalive = o.ipv6only = o.fastopen = -1;
        const char *rv = add_listen(p, sb, &ss, &o);
        if (rv)
            return rv;
    }
    if (sb->nnames == 0) {
        struct server_name *sn = PUSH(p, sb->names, sb->nnames);
        struct sn_extra *x = PUSH(p, sb->sn, sb->nsn);
        if (!sn || !x)
            return OOM(p);
        sn->kind = SN_EXACT;
        sn->name = STR_LIT("");
        x->written = "";
    }
    sc->names = sb->names;
    sc->nnames = sb->nnames;

    p->sb = NULL;
    p->lc = hb->hc->lc;
    p->ssl = hb->ssl;
    p->rw_tail = NULL;
    return NULL;
}

/* ------------------------------------------------------------ location */

/* Turn build nodes into the final arrays (children recursively). */
static int flatten_locations(struct conf_parser *p, struct loc_build **bs, unsigned n,
                             struct location **out, unsigned *nout)
{
    *out = NULL;
    *nout = n;
    if (n == 0)
        return 0;
    struct location *arr = arena_calloc(p->a, n * sizeof(*arr));
    if (!arr)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        arr[i] = bs[i]->loc;
        if (flatten_locations(p, bs[i]->kids, bs[i]->nkids, &arr[i].children, &arr[i].nchildren) !=
            0)
            return -1;
    }
    *out = arr;
    return 0;
}

/* nginx "duplicate location": same name among siblings, both exact or both prefix. */
static int check_duplicate_locations(struct conf_parser *p, struct loc_build **bs, unsigned n)
{
    for (unsigned i = 1; i < n; i++) {
        const struct location *b = &bs[i]->loc;
        if (b->match == LOC_REGEX || b->match == LOC_REGEX_ICASE || b->match == LOC_NAMED)
            continue;
        for (unsigned j = 0; j < i; j++) {
            const struct location *a = &bs[j]->loc;
            if (a->match == LOC_REGEX || a->match == LOC_REGEX_ICASE || a->match == LOC_NAMED)
                continue;
            if ((a->match == LOC_EXACT) != (b->match == LOC_EXACT))
                continue;
            if (str_eq(a->pattern, b->pattern))
                return conf_err_at(p, b->file, b->line, "duplicate location \"%.*s\"",
                                   (int)b->pattern.len, b->pattern.p);
        }
    }
    for (unsigned i = 0; i < n; i++)
        if (check_duplicate_locations(p, bs[i]->kids, bs[i]->nkids) != 0)
            return -1;
    return 0;
}

static const char *loc_display(struct conf_parser *p, const struct location *l)
{
    if (l->match == LOC_NAMED)
        return arena_printf(p->a, "@%.*s", (int)l->pattern.len, l->pattern.p);
    return arena_strndup(p->a, l->pattern.p, l->pattern.len);
}

static const char *set_location(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    const struct conf_node *self = p->node;
    struct loc_build *lb = arena_calloc(p->a, sizeof(*lb));
    if (!lb)
        return OOM(p);
    struct location *loc = &lb->loc;
    loc->file = self->file;
    loc->line = node_line(self);
    loc->lc = loc_conf_create(p->a);
    if (!loc->lc)
        return OOM(p);

    const char *name;
    if (self->nargs == 2) {
        const char *mod = self->args[0];
        name = self->args[1];
        if (strcmp(mod, "=") == 0)
            loc->match = LOC_EXACT;
        else if (strcmp(mod, "^~") == 0)
            loc->match = LOC_PREFIX_NOREGEX;
        else if (strcmp(mod, "~") == 0)
            loc->match = LOC_REGEX;
        else if (strcmp(mod, "~*") == 0)
            loc->match = LOC_REGEX_ICASE;
        else
            return conf_err(p, "invalid location modifier \"%s\"", mod);
    } else {
        name = self->args[0];
        if (name[0] == '=') {
            loc->match = LOC_EXACT;
            name++;
        } else if (name[0] == '~') {
            name++;
            loc->match = LOC_REGEX;
            if (name[0] == '*') {
                loc->match = LOC_REGEX_ICASE;
                name++;
            }
        } else if (name[0] == '@') {
            loc->match = LOC_NAMED;
            name++;
        } else {
            loc->match = LOC_PREFIX;
        }
    }
    loc->pattern = str_from_cstr(name);
    if (loc->match == LOC_REGEX || loc->match == LOC_REGEX_ICASE) {
        loc->re = regex_compile(p, name, loc->match == LOC_REGEX_ICASE);
        if (!loc->re)
            return CONF_ERROR;
    }

    struct loc_build *parent = p->lb;
    if (parent) {
        const struct location *pl = &parent->loc;
        const char *me = loc_display(p, loc), *pn = loc_display(p, pl);
        if (!me || !pn)
            return OOM(p);
        if (pl->match == LOC_EXACT)
            return conf_err(p, "location \"%s\" cannot be inside the exact location \"%s\"", me,
                            pn);
        if (pl->match == LOC_NAMED)
            return conf_err(p, "location \"%s\" cannot be inside the named location \"%s\"", me,
                            pn);
        if (loc->match == LOC_NAMED)
            return conf_err(p, "named location \"%s\" can be on the server level only", me);
        if (loc->match != LOC_REGEX && loc->match != LOC_REGEX_ICASE &&
            (loc->pattern.len < pl->pattern.len ||
             memcmp(loc->pattern.p, pl->pattern.p, pl->pattern.len) != 0))
            return conf_err(p, "location \"%s\" is outside location \"%s\"", me, pn);
        struct loc_build **slot = PUSH(p, parent->kids, parent->nkids);
        if (!slot)
            return OOM(p);
        *slot = lb;
    } else if (loc->match == LOC_NAMED) {
        struct loc_build **slot = PUSH(p, p->sb->named, p->sb->nnamed);
        if (!slot)
            return OOM(p);
        *slot = lb;
    } else {
        struct loc_build **slot = PUSH(p, p->sb->locs, p->sb->nlocs);
        if (!slot)
            return OOM(p);
        *slot = lb;
    }

    struct loc_conf *saved_lc = p->lc;
    struct rw_op **saved_tail = p->rw_tail;
    p->lb = lb;
    p->lc = loc->lc;
    p->rw_tail = &loc->lc->rewrite;
    if (run_block(p, self->children, CTX_LOCATION) != 0)
        return CONF_ERROR;
    p->node = self;
    p->lb = parent;
    p->lc = saved_lc;
    p->rw_tail = saved_tail;
    return NULL;
}

/* ------------------------------------------------------------ rewrite ops */

static struct rw_op *rw_append(struct conf_parser *p, int type)
{
    struct rw_op *op = arena_calloc(p->a, sizeof(*op));
    if (!op)
        return NULL;
    op->type = type;
    op->file = p->node->file;
    op->line = node_line(p->node);
    *p->rw_tail = op;
    p->rw_tail = &op->next;
    return op;
}

static const char *set_return(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    const char *v = p->node->args[0];
    int code;
    struct str text;
    int has_text = 0;
    if (p->node->nargs == 1 &&
        (starts_with(v, "http://") || starts_with(v, "https://") || starts_with(v, "$scheme"))) {
        code = 302;
        text = arg(p, 0);
        has_text = 1;
    } else {
        int64_t n = atoi_s(arg(p, 0));
        if (n < 0 || n > 999)
            return conf_err(p, "invalid return code \"%s\"", v);
        code = (int)n;
        if (p->node->nargs == 2) {
            text = arg(p, 1);
            has_text = 1;
        }
    }
    struct tmpl *t = NULL;
    if (has_text && !(t = tmpl_new(p, text)))
        return CONF_ERROR;
    struct rw_op *op = rw_append(p, RW_RETURN);
    if (!op)
        return OOM(p);
    op->u.ret.code = code;
    op->u.ret.text = t;
    return NULL;
}

static const char *set_set(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    const char *name = p->node->args[0];
    if (name[0] != '$')
        return conf_err(p, "invalid variable name \"%s\"", name);
    const struct var_ref *v = var_define_set(&p->g->vars, p->a, str_from_cstr(name + 1));
    if (!v)
        return conf_err(p, "the duplicate \"%s\" variable", name + 1);
    struct rw_op *op = rw_append(p, RW_SET);
    if (!op)
        return OOM(p);
    op->u.set.var_index = v->id;
    return tmpl_at(p, &op->u.set.value, arg(p, 1)) == 0 ? NULL : CONF_ERROR;
}

/* rewrite REGEX REPLACEMENT [last|break|redirect|permanent] (nginx ngx_http_rewrite). */
static const char *set_rewrite(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    const struct conf_node *n = p->node;
    if (n->args[1][0] == '\0')
        return conf_err(p, "empty replacement");
    void *re = regex_compile(p, n->args[0], 0);
    if (!re)
        return CONF_ERROR;
    /* A replacement starting with http://, https:// or $scheme redirects (302)
     * with no flag; the runtime sees that from the replacement, the flag stays
     * NONE. */
    int flag = RW_FLAG_NONE;
    if (n->nargs == 3) {
        static const struct conf_enum flags[] = {
            {"last", RW_FLAG_LAST},
            {"break", RW_FLAG_BREAK},
            {"redirect", RW_FLAG_REDIRECT},
            {"permanent", RW_FLAG_PERMANENT},
            {NULL, 0},
        };
        const struct conf_enum *e = flags;
        while (e->name && strcmp(e->name, n->args[2]) != 0) /* case-sensitive, as nginx */
            e++;
        if (!e->name)
            return conf_err(p, "invalid parameter \"%s\"", n->args[2]);
        flag = (int)e->value;
    }
    struct rw_op *op = rw_append(p, RW_REWRITE);
    if (!op)
        return OOM(p);
    op->u.rewrite.re = re;
    op->u.rewrite.flag = flag;
    /* $1..$9 are the regex's captures (VAR_CAPTURE) */
    return tmpl_at(p, &op->u.rewrite.replacement, arg(p, 1)) == 0 ? NULL : CONF_ERROR;
}

static const char *set_break(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    return rw_append(p, RW_BREAK) ? NULL : OOM(p);
}

/* if (condition) { ... }: nginx ngx_http_rewrite_if_condition. */
static const char *set_if(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    const struct conf_node *self = p->node;
    unsigned n = self->nargs;
    struct str *w = arena_alloc(p->a, n * sizeof(*w));
    if (!w)
        return OOM(p);
    for (unsigned i = 0; i < n; i++)
        w[i] = str_from_cstr(self->args[i]);

    /* nginx's indices minus one: "(" may be its own word or start the first,
     * ")" may be its own word or end the last. */
    int cur, last = (int)n - 1;
    if (w[0].len < 1 || w[0].p[0] != '(')
        return conf_err(p, "invalid condition \"%s\"", self->args[0]);
    if (w[0].len == 1) {
        cur = 1;
    } else {
        cur = 0;
        w[0].p++;
        w[0].len--;
    }
    if (w[last].len < 1 || w[last].p[w[last].len - 1] != ')')
        return conf_err(p, "invalid condition \"%.*s\"", (int)w[last].len, w[last].p);
    if (w[last].len == 1)
        last--;
    else
        w[last].len--;
    if (cur >= (int)n)
        return conf_err(p, "invalid condition \"%s\"", self->args[0]);

    struct rw_op op;
    memset(&op, 0, sizeof(op));
    struct str c = w[cur];
    /* Strings compiled below must be NUL-terminated copies (w[] may be trimmed). */
    if (c.len > 1 && c.p[0] == '$') {
        if (cur != last && cur + 2 != last)
            return conf_err(p, "invalid condition \"%.*s\"", (int)c.len, c.p);
        if (tmpl_at(p, &op.u.cond.lhs, c) != 0)
            return CONF_ERROR;
        if (cur == last) {
            op.u.cond.op = RW_COND_TRUTHY;
        } else {
            struct str o = w[cur + 1];
            struct str r = w[last];
            if (str_eq(o, STR_LIT("=")) || str_eq(o, STR_LIT("!="))) {
                op.u.cond.op = o.len == 1 ? RW_COND_EQ : RW_COND_NE;
                if (tmpl_at(p, &op.u.cond.rhs, r) != 0)
                    return CONF_ERROR;
            } else if (str_eq(o, STR_LIT("~")) || str_eq(o, STR_LIT("~*")) ||
                       str_eq(o, STR_LIT("!~")) || str_eq(o, STR_LIT("!~*"))) {
                int neg = o.p[0] == '!';
                int icase = o.p[o.len - 1] == '*';
                op.u.cond.op = neg ? (icase ? RW_COND_NRE_I : RW_COND_NRE)
                                   : (icase ? RW_COND_RE_I : RW_COND_RE);
                char *re = arena_strndup(p->a, r.p, r.len);
                if (!re)
                    return OOM(p);
                op.u.cond.re = regex_compile(p, re, icase);
                if (!op.u.cond.re)
                    return CONF_ERROR;
                op.u.cond.rhs.raw = str_from_cstr(re);
                op.u.cond.rhs.constant = 1;
            } else {
                return conf_err(p, "unexpected \"%.*s\" in condition", (int)o.len, o.p);
            }
        }
    } else if ((c.len == 2 && c.p[0] == '-') || (c.len == 3 && c.p[0] == '!' && c.p[1] == '-')) {
        if (cur + 1 != last)
            return conf_err(p, "invalid condition \"%.*s\"", (int)c.len, c.p);
        int neg = c.p[0] == '!';
        switch (c.p[c.len - 1]) {
        case 'f':
            op.u.cond.op = neg ? RW_COND_NFILE : RW_COND_FILE;
            break;
        case 'd':
            op.u.cond.op = neg ? RW_COND_NDIR : RW_COND_DIR;
            break;
        case 'e':
            op.u.cond.op = neg ? RW_COND_NEXISTS : RW_COND_EXISTS;
            break;
        case 'x':
            op.u.cond.op = neg ? RW_COND_NEXEC : RW_COND_EXEC;
            break;
        default:
            return conf_err(p, "invalid condition \"%.*s\"", (int)c.len, c.p);
        }
        if (tmpl_at(p, &op.u.cond.lhs, w[last]) != 0)
            return CONF_ERROR;
    } else {
        return conf_err(p, "invalid condition \"%.*s\"", (int)c.len, c.p);
    }

    struct rw_op *nop = rw_append(p, RW_IF);
    if (!nop)
        return OOM(p);
    nop->u.cond = op.u.cond;

    int in_loc = p->lb != NULL;
    struct loc_conf *saved_lc = p->lc;
    struct rw_op **saved_tail = p->rw_tail;
    int saved_used = p->if_lc_used;
    struct loc_conf *lc = NULL;
    if (in_loc) {
        lc = loc_conf_create(p->a);
        if (!lc)
            return OOM(p);
    }
    p->lc = lc;
    p->if_lc_used = 0;
    p->rw_tail = &nop->u.cond.body;
    if (run_block(p, self->children, in_loc ? CTX_LIF : CTX_SIF) != 0)
        return CONF_ERROR;
    p->node = self;
    if (in_loc && p->if_lc_used)
        nop->u.cond.lc = lc;
    p->lc = saved_lc;
    p->rw_tail = saved_tail;
    p->if_lc_used = saved_used;
    return NULL;
}

/* ------------------------------------------------------------ content */

static const char *set_types(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    const struct conf_node *self = p->node;
    struct mime_types *mt = (struct mime_types *)lc->types;
    if (!mt) {
        mt = arena_calloc(p->a, sizeof(*mt));
        if (!mt)
            return OOM(p);
        lc->types = mt;
    }
    for (const struct conf_node *c = self->children; c; c = c->next) {
        p->node = c;
        if (c->is_block)
            return conf_err(p, "unexpected \"{\"");
        struct str type = str_from_cstr(c->name);
        for (unsigned i = 0; i < c->nargs; i++) {
            char *ext = arena_strdup(p->a, c->args[i]);
            if (!ext)
                return OOM(p);
            for (char *q = ext; *q; q++)
                *q = (char)sy_tolower((unsigned char)*q);
            struct str e = str_from_cstr(ext);
            struct mime_type *found = NULL;
            for (unsigned k = 0; k < mt->n && !found; k++)
                if (str_eq(mt->entries[k].ext, e))
                    found = &mt->entries[k];
            if (found) {
                conf_warn_here(p,
                               "duplicate extension \"%s\", content type: \"%s\", previous "
                               "content type: \"%.*s\"",
                               c->args[i], c->name, (int)found->type.len, found->type.p);
                found->type = type;
                continue;
            }
            struct mime_type *m = PUSH(p, mt->entries, mt->n);
            if (!m)
                return OOM(p);
            m->ext = e;
            m->type = type;
        }
    }
    p->node = self;
    /* insertion sort keeps it simple: a few hundred entries at most */
    for (unsigned i = 1; i < mt->n; i++) {
        struct mime_type t = mt->entries[i];
        unsigned j = i;
        while (j > 0 && mime_ext_cmp(mt->entries[j - 1].ext, t.ext) > 0) {
            mt->entries[j] = mt->entries[j - 1];
            j--;
        }
        mt->entries[j] = t;
    }
    return NULL;
}

static const struct log_format *find_log_format(struct conf_parser *p, const char *name)
{
    struct http_conf *hc = p->hb->hc;
    for (unsigned i = 0; i < hc->nlog_formats; i++)
        if (strcmp(hc->log_formats[i]->name, name) == 0)
            return hc->log_formats[i];
    return NULL;
}

static const char *set_log_format(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    const char *name = p->node->args[0];
    if (find_log_format(p, name))
        return conf_err(p, "duplicate \"log_format\" name \"%s\"", name);
    struct log_format *lf = arena_calloc(p->a, sizeof(*lf));
    if (!lf)
        return OOM(p);
    lf->name = name;
    unsigned i = 1;
    if (starts_with(p->node->args[1], "escape=")) {
        const char *e = p->node->args[1] + 7;
        if (strcmp(e, "json") == 0)
            lf->escape_json = 1;
        else if (strcmp(e, "none") == 0)
            lf->escape_none = 1;
        else if (strcmp(e, "default") != 0)
            return conf_err(p, "unknown log format escaping \"%s\"", e);
        i = 2;
    }
    size_t len = 0;
    for (unsigned k = i; k < p->node->nargs; k++)
        len += strlen(p->node->args[k]);
    char *s = arena_alloc(p->a, len + 1);
    if (!s)
        return OOM(p);
    size_t o = 0;
    for (unsigned k = i; k < p->node->nargs; k++) {
        size_t l = strlen(p->node->args[k]);
        memcpy(s + o, p->node->args[k], l);
        o += l;
    }
    s[o] = '\0';
    if (tmpl_at(p, &lf->tmpl, (struct str){s, o}) != 0)
        return CONF_ERROR;
    struct log_format **slot = PUSH(p, p->hb->hc->log_formats, p->hb->hc->nlog_formats);
    if (!slot)
        return OOM(p);
    *slot = lf;
    return NULL;
}

static const char *set_access_log(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    const char *path = p->node->args[0];
    if (strcmp(path, "off") == 0) {
        if (p->node->nargs > 1)
            return conf_err(p, "invalid parameter \"%s\"", p->node->args[1]);
        lc->access_log_off = 1;
        return NULL;
    }
    if (starts_with(path, "syslog:"))
        return conf_err(p, "syslog access logs are not supported");
    if (strchr(path, '$'))
        return conf_err(p, "variables in the \"access_log\" path are not supported");
    const char *fmt = p->node->nargs >= 2 ? p->node->args[1] : "combined";
    const struct log_format *lf = find_log_format(p, fmt);
    if (!lf)
        return conf_err(p, "unknown log format \"%s\"", fmt);

    struct tmpl *cond = NULL;
    int buffer = 0, flush = 0;
    for (unsigned i = 2; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        uint64_t x;
        if (starts_with(v, "buffer=")) {
            if (str_to_size(str_from_cstr(v + 7), &x) != 0)
                return conf_err(p, "invalid buffer size \"%s\"", v + 7);
            buffer = 1;
        } else if (starts_with(v, "flush=")) {
            if (str_to_msec(str_from_cstr(v + 6), &x) != 0)
                return conf_err(p, "invalid flush time \"%s\"", v + 6);
            flush = 1;
        } else if (strcmp(v, "gzip") == 0) {
            buffer = 1;
        } else if (starts_with(v, "gzip=")) {
            int64_t lvl = atoi_s(str_from_cstr(v + 5));
            if (lvl < 1 || lvl > 9)
                return conf_err(p, "invalid compression level \"%s\"", v + 5);
            buffer = 1;
        } else if (starts_with(v, "if=")) {
            if (!(cond = tmpl_new(p, str_from_cstr(v + 3))))
                return CONF_ERROR;
        } else {
            return conf_err(p, "invalid parameter \"%s\"", v);
        }
    }
    if (flush && !buffer)
        return conf_err(p, "no buffer is defined for access_log \"%s\"", path);

    struct access_log *al = PUSH(p, lc->access_logs, lc->naccess_logs);
    if (!al)
        return OOM(p);
    al->path = conf_full_path(p, path);
    if (!al->path)
        return OOM(p);
    al->format = lf;
    al->cond = cond;
    return NULL;
}

static const char *set_keepalive_timeout(struct conf_parser *p, const struct directive *d,
                                         void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    if (lc->keepalive_timeout != CONF_UNSET_U64)
        return "is duplicate";
    uint64_t v;
    if (str_to_msec(arg(p, 0), &v) != 0)
        return "invalid value";
    if (p->node->nargs == 2) {
        uint64_t h;
        if (str_to_msec(arg(p, 1), &h) != 0)
            return "invalid value";
        lc->keepalive_header_timeout = h / 1000 * 1000;
    }
    lc->keepalive_timeout = v;
    return NULL;
}

static const char *set_keepalive_disable(struct conf_parser *p, const struct directive *d,
                                         void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    if (lc->keepalive_disable_msie6 == CONF_UNSET) {
        lc->keepalive_disable_msie6 = 0;
        lc->keepalive_disable_safari = 0;
    }
    for (unsigned i = 0; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        if (strcmp(v, "none") == 0) {
        } else if (strcmp(v, "msie6") == 0) {
            lc->keepalive_disable_msie6 = 1;
        } else if (strcmp(v, "safari") == 0) {
            lc->keepalive_disable_safari = 1;
        } else {
            return conf_err(p, "invalid value \"%s\"", v);
        }
    }
    return NULL;
}

/* "N SIZE" pairs (nginx ngx_conf_set_bufs_slot). */
static const char *set_bufs(struct conf_parser *p, int64_t *num, uint64_t *size)
{
    if (*num != CONF_UNSET)
        return "is duplicate";
    int64_t n = atoi_s(arg(p, 0));
    uint64_t s;
    if (n <= 0 || str_to_size(arg(p, 1), &s) != 0 || s == 0)
        return "invalid value";
    *num = n;
    *size = s;
    return NULL;
}

static const char *set_large_header_buffers(struct conf_parser *p, const struct directive *d,
                                            void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    return set_bufs(p, &lc->large_client_header_buffers_num, &lc->large_client_header_buffers_size);
}

static const char *set_proxy_buffers(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    return set_bufs(p, &lc->proxy_buffers_num, &lc->proxy_buffers_size);
}

static const char *set_add_header(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    if (p->node->nargs == 3 && strcmp(p->node->args[2], "always") != 0)
        return conf_err(p, "invalid parameter \"%s\"", p->node->args[2]);
    struct add_header *h = PUSH(p, lc->add_headers, lc->nadd_headers);
    if (!h)
        return OOM(p);
    h->name = arg(p, 0);
    h->always = p->node->nargs == 3;
    return tmpl_at(p, &h->value, arg(p, 1)) == 0 ? NULL : CONF_ERROR;
}

static const char *set_error_page(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    unsigned n = p->node->nargs;
    unsigned i = n - 2;
    int override = -1;
    unsigned ncodes = n - 1;
    const char *o = p->node->args[i];
    if (o[0] == '=') {
        if (i == 0)
            return conf_err(p, "invalid value \"%s\"", o);
        if (o[1]) {
            int64_t v = atoi_s(str_from_cstr(o + 1));
            if (v < 0)
                return conf_err(p, "invalid value \"%s\"", o);
            override = (int)v;
        } else {
            override = 0;
        }
        ncodes = n - 2;
    }
    int *codes = arena_alloc(p->a, ncodes * sizeof(*codes));
    if (!codes)
        return OOM(p);
    for (unsigned k = 0; k < ncodes; k++) {
        const char *v = p->node->args[k];
        int64_t c = atoi_s(str_from_cstr(v));
        if (c < 0 || c == 499 || c > INT_MAX)
            return conf_err(p, "invalid value \"%s\"", v);
        if (c < 300 || c > 599)
            return conf_err(p, "value \"%s\" must be between 300 and 599", v);
        codes[k] = (int)c;
    }
    struct error_page *ep = PUSH(p, lc->error_pages, lc->nerror_pages);
    if (!ep)
        return OOM(p);
    ep->codes = codes;
    ep->ncodes = ncodes;
    ep->override = override;
    return tmpl_at(p, &ep->target, arg(p, n - 1)) == 0 ? NULL : CONF_ERROR;
}

static const char *set_root_alias(struct conf_parser *p, const struct directive *d, void *conf,
                                  int alias)
{
    struct loc_conf *lc = conf;
    if (lc->root || lc->alias) {
        if ((lc->alias != NULL) == alias)
            return "is duplicate";
        return conf_err(p, "\"%s\" directive is duplicate, \"%s\" directive was specified earlier",
                        d->name, lc->alias ? "alias" : "root");
    }
    if (alias && p->lb && p->lb->loc.match == LOC_NAMED)
        return conf_err(p, "the \"alias\" directive cannot be used inside the named location");
    const char *v = p->node->args[0];
    if (strstr(v, "$document_root") || strstr(v, "${document_root}"))
        return conf_err(p, "the $document_root variable cannot be used in the \"%s\" directive",
                        d->name);
    if (strstr(v, "$realpath_root") || strstr(v, "${realpath_root}"))
        return conf_err(p, "the $realpath_root variable cannot be used in the \"%s\" directive",
                        d->name);
    char *val = arena_strdup(p->a, v);
    if (!val)
        return OOM(p);
    size_t len = strlen(val);
    if (!alias && len > 0 && val[len - 1] == '/')
        val[len - 1] = '\0';
    /* "root /" is "" (nginx strips the slash and keeps it absolute) */
    const char *full = (v[0] == '$' || v[0] == '/') ? val : conf_full_path(p, val);
    if (!full)
        return OOM(p);
    struct tmpl *t = tmpl_new(p, str_from_cstr(full));
    if (!t)
        return CONF_ERROR;
    if (alias)
        lc->alias = t;
    else
        lc->root = t;
    return NULL;
}

static const char *set_root(struct conf_parser *p, const struct directive *d, void *conf)
{
    return set_root_alias(p, d, conf, 0);
}

static const char *set_alias(struct conf_parser *p, const struct directive *d, void *conf)
{
    return set_root_alias(p, d, conf, 1);
}

static const char *set_index(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    for (unsigned i = 0; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        if (v[0] == '/' && i != p->node->nargs - 1)
            conf_warn_here(p, "only the last index in \"index\" directive should be absolute");
        if (v[0] == '\0')
            return conf_err(p, "index \"%s\" in \"index\" directive is invalid", v);
        struct tmpl *t = PUSH(p, lc->index, lc->nindex);
        if (!t)
            return OOM(p);
        if (tmpl_at(p, t, str_from_cstr(v)) != 0)
            return CONF_ERROR;
    }
    return NULL;
}

static const char *set_try_files(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    if (lc->try_files)
        return "is duplicate";
    unsigned n = p->node->nargs;
    const char *last = p->node->args[n - 1];
    if (last[0] == '=') {
        int64_t code = atoi_s(str_from_cstr(last + 1));
        if (code < 0 || code > 999)
            return conf_err(p, "invalid code \"%s\"", last);
    }
    struct tmpl *t = arena_calloc(p->a, n * sizeof(*t));
    if (!t)
        return OOM(p);
    for (unsigned i = 0; i < n; i++)
        if (tmpl_at(p, &t[i], arg(p, i)) != 0)
            return CONF_ERROR;
    lc->try_files = t;
    lc->ntry_files = n;
    return NULL;
}

static const char *set_disable_symlinks(struct conf_parser *p, const struct directive *d,
                                        void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    if (lc->disable_symlinks != CONF_UNSET)
        return "is duplicate";
    int mode = CONF_UNSET;
    const char *from = NULL;
    for (unsigned i = 0; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        if (strcmp(v, "off") == 0)
            mode = 0;
        else if (strcmp(v, "on") == 0)
            mode = 1;
        else if (strcmp(v, "if_not_owner") == 0)
            mode = 2;
        else if (starts_with(v, "from="))
            from = v + 5;
        else
            return conf_err(p, "invalid parameter \"%s\"", v);
    }
    if (mode == CONF_UNSET)
        return conf_err(p, "\"%s\" must have \"off\", \"on\" or \"if_not_owner\" parameter",
                        d->name);
    if (from) {
        if (mode == 0)
            return conf_err(p, "\"from=\" cannot be used with \"off\" parameter");
        if (!(lc->disable_symlinks_from = tmpl_new(p, str_from_cstr(from))))
            return CONF_ERROR;
    }
    lc->disable_symlinks = mode;
    return NULL;
}

static const char *set_resolver(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    if (lc->resolvers)
        return "is duplicate";
    for (unsigned i = 0; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        if (starts_with(v, "valid=")) {
            if (str_to_msec(str_from_cstr(v + 6), &lc->resolver_valid) != 0)
                return conf_err(p, "invalid parameter: %s", v);
        } else if (starts_with(v, "ipv4=") || starts_with(v, "ipv6=")) {
            int on;
            if (strcmp(v + 5, "on") == 0)
                on = 1;
            else if (strcmp(v + 5, "off") == 0)
                on = 0;
            else
                return conf_err(p, "invalid parameter: %s", v);
            if (v[3] == '4')
                lc->resolver_ipv4 = on;
            else
                lc->resolver_ipv6 = on;
        } else if (starts_with(v, "status_zone=")) {
            /* accepted (statistics zone) */
        } else {
            struct url_parts u;
            const char *e = split_url(str_from_cstr(v), 0, 53, &u);
            if (e)
                return conf_err(p, "%s in resolver \"%s\"", e, v);
            struct str *s = PUSH(p, lc->resolvers, lc->nresolvers);
            if (!s)
                return OOM(p);
            *s = str_from_cstr(v);
        }
    }
    if (lc->resolver_ipv4 == 0 && lc->resolver_ipv6 == 0)
        return conf_err(p, "\"ipv4\" and \"ipv6\" cannot both be \"off\"");
    if (!lc->resolvers)
        return conf_err(p, "invalid number of arguments in \"resolver\" directive");
    return NULL;
}

static const char *set_internal(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)p;
    (void)d;
    struct loc_conf *lc = conf;
    if (lc->internal != CONF_UNSET)
        return "is duplicate";
    lc->internal = 1;
    return NULL;
}

/* ------------------------------------------------- accepted, kept nowhere */

/*
 * Directives of stock nginx configurations that change nothing Switchyard
 * does (hash table sizing, buffering details) are validated as nginx does and
 * dropped. Having no field to be "set", a second one in the same block is
 * found among the block's earlier directives: nginx's "is duplicate".
 */
static int given_before_in_block(const struct conf_parser *p)
{
    for (const struct conf_node *n = p->block_first; n && n != p->node; n = n->next)
        if (strcmp(n->name, p->node->name) == 0)
            return 1;
    return 0;
}

int conf_repeated_in_block(const struct conf_parser *p)
{
    return given_before_in_block(p);
}

/* on|off, ignored (nginx ngx_conf_set_flag_slot's checks). */
const char *set_ignored_flag(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)conf;
    if (given_before_in_block(p))
        return "is duplicate";
    const char *v = p->node->args[0];
    if (strcasecmp(v, "on") != 0 && strcasecmp(v, "off") != 0)
        return conf_err(p, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"",
                        v, d->name);
    return NULL;
}

/* a number, ignored (hash sizes). */
const char *set_ignored_num(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    if (given_before_in_block(p))
        return "is duplicate";
    return atoi_s(arg(p, 0)) < 0 ? "invalid number" : NULL;
}

/* a size, ignored (postpone_output). */
const char *set_ignored_size(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    if (given_before_in_block(p))
        return "is duplicate";
    uint64_t v;
    return str_to_size(arg(p, 0), &v) != 0 ? "invalid value" : NULL;
}

/* "N SIZE", ignored (output_buffers). */
const char *set_ignored_bufs(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    int64_t num = CONF_UNSET;
    uint64_t size;
    if (given_before_in_block(p))
        return "is duplicate";
    return set_bufs(p, &num, &size);
}

/* send_lowat / proxy_send_lowat SIZE: Linux has no SO_SNDLOWAT for TCP; nginx
 * warns the same there. */
static const char *set_send_lowat(struct conf_parser *p, const struct directive *d, void *conf)
{
    const char *rv = set_ignored_size(p, d, conf);
    if (!rv)
        conf_warn_here(p, "\"%s\" is not supported, ignored", d->name);
    return rv;
}

/* client_body_in_file_only off|on|clean: only "off" (bodies are streamed, never spooled). */
static const char *set_body_in_file_only(struct conf_parser *p, const struct directive *d,
                                         void *conf)
{
    (void)d;
    (void)conf;
    if (given_before_in_block(p))
        return "is duplicate";
    const char *v = p->node->args[0];
    if (strcasecmp(v, "off") == 0)
        return NULL;
    if (strcasecmp(v, "on") == 0 || strcasecmp(v, "clean") == 0)
        return "is not supported except \"off\"";
    return conf_err(p, "invalid value \"%s\"", v);
}

/*
 * open_file_cache / open_log_file_cache: accepted with no effect
 * (Switchyard keeps no descriptor cache); the parameters are nginx's, anything
 * else is nginx's `invalid "x" parameter "y"`.
 */
static const char *set_file_cache(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)conf;
    static const char *const file_params[] = {"max=", "inactive=", NULL};
    static const char *const log_params[] = {"max=", "inactive=", "min_uses=", "valid=", NULL};
    const char *const *params =
        strcmp(d->name, "open_log_file_cache") == 0 ? log_params : file_params;
    if (given_before_in_block(p))
        return "is duplicate";
    for (unsigned i = 0; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        if (strcmp(v, "off") == 0)
            continue;
        const char *const *k = params;
        while (*k && !starts_with(v, *k))
            k++;
        if (!*k)
            return conf_err(p, "invalid \"%s\" parameter \"%s\"", d->name, v);
    }
    /* A descriptor cache only saves open(2) calls: without one, a changed
     * file is seen at once. */
    return NULL;
}

/* Any argument, kept nowhere, no duplicate check (env: one per variable). */
const char *set_ignored_any(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)p;
    (void)d;
    (void)conf;
    return NULL;
}

/* A string, ignored (lock_file, working_directory): nginx's str slot checks. */
const char *set_ignored_str(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    return given_before_in_block(p) ? "is duplicate" : NULL;
}

/* A time, ignored (timer_resolution, accept_mutex_delay, auth_delay). */
const char *set_ignored_msec(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    if (given_before_in_block(p))
        return "is duplicate";
    uint64_t v;
    return str_to_msec(arg(p, 0), &v) != 0 ? "invalid value" : NULL;
}

/* One name of d->post, ignored (debug_points, satisfy). */
const char *set_ignored_enum(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)conf;
    if (given_before_in_block(p))
        return "is duplicate";
    const char *v = p->node->args[0];
    for (const struct conf_enum *e = d->post; e->name; e++)
        if (strcasecmp(v, e->name) == 0)
            return NULL;
    return conf_err(p, "invalid value \"%s\"", v);
}

/* Names of d->post, ignored (proxy_ignore_headers): nginx's bitmask checks. */
const char *set_ignored_bitmask(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)conf;
    unsigned seen = 0;
    for (unsigned i = 0; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        const struct conf_enum *e;
        for (e = d->post; e->name; e++)
            if (strcasecmp(v, e->name) == 0)
                break;
        if (!e->name)
            return conf_err(p, "invalid value \"%s\"", v);
        if (seen & e->value)
            conf_warn_here(p, "duplicate value \"%s\"", v);
        seen |= e->value;
    }
    return NULL;
}

/* on|off where only "off" is what Switchyard does (recursive_error_pages, proxy_force_ranges). */
const char *set_flag_off_only(struct conf_parser *p, const struct directive *d, void *conf)
{
    const char *rv = set_ignored_flag(p, d, conf);
    if (rv)
        return rv;
    return strcasecmp(p->node->args[0], "on") == 0 ? "is not supported except \"off\"" : NULL;
}

/* A directive nginx on Linux (or without --with-debug) also ignores with a warning. */
const char *set_warn_ignored(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)conf;
    conf_warn_here(p, "\"%s\" is not supported, ignored", d->name);
    return NULL;
}

/* ssl_engine: OpenSSL's default providers are used; said once, as a warning. */
static const char *set_ssl_engine(struct conf_parser *p, const struct directive *d, void *conf)
{
    const char *rv = set_ignored_str(p, d, conf);
    if (!rv)
        conf_warn_here(p, "\"ssl_engine\" is not supported, ignored: OpenSSL's default "
                          "implementation is used");
    return rv;
}

/* connection_pool_size / request_pool_size: nginx's bounds (64-bit build), then dropped. */
static const char *set_pool_size(struct conf_parser *p, const struct directive *d, void *conf)
{
    const char *rv = set_ignored_size(p, d, conf);
    if (rv)
        return rv;
    uint64_t v;
    str_to_size(arg(p, 0), &v);
    if (v < 112)
        return conf_err(p, "the pool size must be no less than 112");
    if (v % 16)
        return conf_err(p, "the pool size must be a multiple of 16");
    return NULL;
}

/* directio size | off, ignored. */
static const char *set_directio(struct conf_parser *p, const struct directive *d, void *conf)
{
    if (given_before_in_block(p))
        return "is duplicate";
    if (strcmp(p->node->args[0], "off") == 0)
        return NULL;
    return set_ignored_size(p, d, conf);
}

/* aio on | off | threads[=pool], ignored: static files are sent with sendfile(2). */
static const char *set_aio(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    if (given_before_in_block(p))
        return "is duplicate";
    const char *v = p->node->args[0];
    if (strcmp(v, "off") == 0 || strcmp(v, "on") == 0 || strcmp(v, "threads") == 0 ||
        (starts_with(v, "threads=") && v[8]))
        return NULL;
    return "invalid value";
}

/* thread_pool name threads=N [max_queue=N]: nginx's checks; no thread is started. */
static const char *set_thread_pool(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)conf;
    for (const struct conf_node *n = p->block_first; n && n != p->node; n = n->next)
        if (strcmp(n->name, "thread_pool") == 0 && n->nargs > 0 &&
            strcmp(n->args[0], p->node->args[0]) == 0)
            return conf_err(p, "duplicate thread pool \"%s\"", p->node->args[0]);
    int threads = 0;
    for (unsigned i = 1; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        if (starts_with(v, "threads=")) {
            if (atoi_s(str_from_cstr(v + 8)) <= 0)
                return conf_err(p, "invalid threads value \"%s\"", v);
            threads = 1;
        } else if (starts_with(v, "max_queue=")) {
            if (atoi_s(str_from_cstr(v + 10)) < 0)
                return conf_err(p, "invalid max_queue value \"%s\"", v);
        }
    }
    return threads ? NULL : conf_err(p, "\"%s\" must have \"threads\" parameter", d->name);
}

/* worker_priority [-+]N (nginx ngx_set_priority), applied by each worker. */
static const char *set_worker_priority(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct main_conf *m = conf;
    if (m->worker_priority != 0)
        return "is duplicate";
    const char *v = p->node->args[0];
    int minus = v[0] == '-';
    if (v[0] == '-' || v[0] == '+')
        v++;
    int64_t n = atoi_s(str_from_cstr(v));
    if (n < 0 || n > INT_MAX)
        return "invalid number";
    m->worker_priority = minus ? -(int)n : (int)n;
    return NULL;
}

/*
 * client_body_temp_path / proxy_temp_path / fastcgi_temp_path /
 * uwsgi_temp_path / scgi_temp_path: path [level1 [level2 [level3]]], checked
 * as nginx's ngx_conf_set_path_slot and ngx_add_path check them. Switchyard
 * streams bodies and never writes a temporary file, so the directory is
 * neither created nor used.
 */
static const char *set_temp_path(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    if (given_before_in_block(p))
        return "is duplicate";
    struct temp_path t;
    memset(&t, 0, sizeof(t));
    char *name = arena_strdup(p->a, p->node->args[0]);
    if (!name)
        return OOM(p);
    size_t len = strlen(name);
    if (len > 1 && name[len - 1] == '/')
        name[len - 1] = '\0';
    t.name = conf_full_path(p, name);
    if (!t.name)
        return OOM(p);
    unsigned total = 0;
    for (unsigned i = 1; i < p->node->nargs; i++) {
        int64_t level = atoi_s(arg(p, i));
        if (level <= 0 || level > 10)
            return "invalid value";
        t.level[i - 1] = (unsigned)level;
        total += (unsigned)level;
    }
    if (total > 10)
        return "invalid value";
    t.file = p->node->file;
    t.line = node_line(p->node);
    struct http_build *hb = p->hb;
    for (unsigned i = 0; i < hb->ntemp_paths; i++) {
        const struct temp_path *o = &hb->temp_paths[i];
        if (strcmp(o->name, t.name) != 0)
            continue;
        if (memcmp(o->level, t.level, sizeof(t.level)) != 0)
            return conf_err(p, "the same path name \"%s\" in %s:%u has the different levels than",
                            o->name, o->file, o->line);
        return NULL;
    }
    struct temp_path *e = PUSH(p, hb->temp_paths, hb->ntemp_paths);
    if (!e)
        return OOM(p);
    *e = t;
    return NULL;
}

/* ------------------------------------------------------------ proxy */

static const char *set_proxy_pass(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    if (lc->proxy_pass)
        return "is duplicate";
    struct proxy_pass *pp = arena_calloc(p->a, sizeof(*pp));
    if (!pp)
        return OOM(p);
    pp->file = p->node->file;
    pp->line = node_line(p->node);
    const char *url = p->node->args[0];
    lc->proxy_pass = pp;

    if (strchr(url, '$')) {
        if (!(pp->dynamic = tmpl_new(p, arg(p, 0))))
            return CONF_ERROR;
        if (!pp->dynamic->constant) {
            pp->https = strncasecmp(url, "https://", 8) == 0;
            return NULL;
        }
        pp->dynamic = NULL;
    }
    size_t add;
    unsigned port;
    if (strncasecmp(url, "http://", 7) == 0) {
        add = 7;
        port = 80;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        add = 8;
        port = 443;
        pp->https = 1;
    } else {
        return conf_err(p, "invalid URL prefix");
    }
    const char *rest = url + add;
    struct url_parts u;
    struct str unix_path = STR_NULL;
    if (starts_with(rest, "unix:")) {
        /* http://unix:/path[:/uri]: the URI after the first ':' of the path;
         * Host and $proxy_host are "localhost", $proxy_port empty (nginx) */
        const char *path = rest + 5, *colon = strchr(path, ':');
        unix_path = (struct str){path, colon ? (size_t)(colon - path) : strlen(path)};
        struct upstream_peer probe;
        const char *e = unix_peer(p, unix_path, &probe);
        if (e)
            return conf_err(p, "%s in upstream \"%s\"", e, rest);
        memset(&u, 0, sizeof(u));
        u.host = STR_LIT("localhost");
        u.no_port = 1;
        if (colon)
            u.uri = (struct str){colon + 1, strlen(colon + 1)};
    } else {
        const char *e = split_url(str_from_cstr(rest), 1, port, &u);
        if (e)
            return conf_err(p, "%s in upstream \"%s\"", e, rest);
    }

    /* regex or named location, or inside `if` (a conf other than the location's) */
    int restricted = !p->lb || p->lb->loc.match == LOC_NAMED || p->lb->loc.match == LOC_REGEX ||
                     p->lb->loc.match == LOC_REGEX_ICASE || lc != p->lb->loc.lc;
    if (restricted && u.uri.len)
        return conf_err(p, "\"proxy_pass\" cannot have URI part in location given by regular "
                           "expression, or inside named location, or inside \"if\" statement, "
                           "or inside \"limit_except\" block");
    pp->has_uri = u.uri.len > 0;
    pp->uri = u.uri;
    pp->url = (struct str){url, u.uri.len ? (size_t)(u.uri.p - url) : strlen(url)};
    if (unix_path.len) {
        pp->host = u.host;
        pp->port = STR_LIT("");
    } else if (u.no_port || u.port == port) {
        pp->host = u.host;
        pp->port = port == 80 ? STR_LIT("80") : STR_LIT("443");
    } else {
        const char *h = arena_printf(p->a, "%.*s:%u", (int)u.host.len, u.host.p, u.port);
        const char *ps = arena_printf(p->a, "%u", u.port);
        if (!h || !ps)
            return OOM(p);
        pp->host = str_from_cstr(h);
        pp->port = str_from_cstr(ps);
    }
    struct pending_pass *pend = PUSH(p, p->hb->passes, p->hb->npasses);
    if (!pend)
        return OOM(p);
    pend->pp = pp;
    pend->host = u.host;
    pend->port = u.port;
    pend->no_port = u.no_port;
    pend->unix_path = unix_path;
    return NULL;
}

static const char *set_header_tmpl(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    struct header_tmpl *h = PUSH(p, lc->proxy_set_headers, lc->nproxy_set_headers);
    if (!h)
        return OOM(p);
    h->name = arg(p, 0);
    return tmpl_at(p, &h->value, arg(p, 1)) == 0 ? NULL : CONF_ERROR;
}

/* proxy_hide_header / proxy_pass_header: lower-cased names, appended. */
static const char *set_header_name(struct conf_parser *p, const struct directive *d, void *conf)
{
    struct loc_conf *lc = conf;
    char *low = arena_strdup(p->a, p->node->args[0]);
    if (!low)
        return OOM(p);
    for (char *c = low; *c; c++)
        *c = (char)sy_tolower((unsigned char)*c);
    struct str *s = strcmp(d->name, "proxy_hide_header") == 0
                        ? PUSH(p, lc->proxy_hide_headers, lc->nproxy_hide_headers)
                        : PUSH(p, lc->proxy_pass_headers, lc->nproxy_pass_headers);
    if (!s)
        return OOM(p);
    *s = str_from_cstr(low);
    return NULL;
}

/* websocket_ping_interval: a time, or "off" (0). */
const char *set_msec_or_off(struct conf_parser *p, const struct directive *d, void *conf)
{
    uint64_t *f = FIELD(conf, d, uint64_t);
    if (*f != CONF_UNSET_U64)
        return "is duplicate";
    if (strcmp(p->node->args[0], "off") == 0) {
        *f = 0;
        return NULL;
    }
    if (str_to_msec(arg(p, 0), f) != 0 || *f == 0) {
        *f = CONF_UNSET_U64;
        return "invalid value";
    }
    return NULL;
}

/* websocket_upgrade_tokens TOKEN ...: Upgrade tokens besides websocket a location tunnels. */
static const char *set_upgrade_tokens(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    if (lc->nwebsocket_upgrade_tokens)
        return "is duplicate";
    for (unsigned i = 0; i < p->node->nargs; i++) {
        const char *tok = p->node->args[i];
        for (const char *c = tok; *c; c++)
            if ((unsigned char)*c <= 0x20 || *c == ',' || (unsigned char)*c >= 0x7f)
                return "invalid value";
        if (strcasecmp(tok, "h2c") == 0)
            return "invalid value \"h2c\": HTTP/2 cleartext upgrades are never forwarded";
        struct str *s = PUSH(p, lc->websocket_upgrade_tokens, lc->nwebsocket_upgrade_tokens);
        if (!s)
            return OOM(p);
        *s = str_from_cstr(tok);
    }
    return NULL;
}

/* An origin pattern: scheme://host[:port], host possibly "*.domain". */
static int origin_pattern_valid(const char *v)
{
    const char *h;
    if (strncasecmp(v, "https://", 8) == 0)
        h = v + 8;
    else if (strncasecmp(v, "http://", 7) == 0)
        h = v + 7;
    else
        return 0;
    if (h[0] == '*' && h[1] == '.')
        h += 2;
    const char *c = h;
    while (isalnum((unsigned char)*c) || *c == '-' || *c == '.')
        c++;
    if (c == h)
        return 0;
    if (*c == ':') {
        const char *d = ++c;
        while (isdigit((unsigned char)*c))
            c++;
        if (c == d || c - d > 5)
            return 0;
    }
    return *c == '\0';
}

/* websocket_max_message_size off | size */
static const char *set_ws_max_message(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    if (lc->websocket_max_message_size != CONF_UNSET_U64)
        return "is duplicate";
    if (strcmp(p->node->args[0], "off") == 0) {
        lc->websocket_max_message_size = 0;
        return NULL;
    }
    uint64_t v;
    if (str_to_size(arg(p, 0), &v) != 0 || v == 0)
        return "invalid value";
    lc->websocket_max_message_size = v;
    return NULL;
}

/* websocket_message_rate off | Nr/s | Nr/m [burst=number] */
static const char *set_ws_message_rate(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    if (lc->websocket_message_rate != CONF_UNSET_U64)
        return "is duplicate";
    const char *v = p->node->args[0];
    if (strcmp(v, "off") == 0) {
        if (p->node->nargs > 1)
            return conf_err(p, "invalid number of arguments in \"%s\" directive", p->node->name);
        lc->websocket_message_rate = 0;
        lc->websocket_message_burst = 0;
        return NULL;
    }
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || errno || n == 0 || n > 1000000 ||
        (strcmp(end, "r/s") != 0 && strcmp(end, "r/m") != 0))
        return conf_err(p, "invalid rate \"%s\"", v);
    /* milli-messages per second, as nginx stores limit_req rates */
    uint64_t rate = strcmp(end, "r/s") == 0 ? n * 1000 : n * 1000 / 60;
    if (rate == 0)
        rate = 1;
    uint64_t burst = (rate + 999) / 1000; /* default: one second's worth */
    for (unsigned i = 1; i < p->node->nargs; i++) {
        const char *a = p->node->args[i];
        if (strncmp(a, "burst=", 6) != 0)
            return conf_err(p, "invalid parameter \"%s\"", a);
        n = strtoull(a + 6, &end, 10);
        if (end == a + 6 || *end || n > 1000000)
            return conf_err(p, "invalid burst value \"%s\"", a);
        burst = n;
    }
    lc->websocket_message_rate = rate;
    lc->websocket_message_burst = burst;
    return NULL;
}

/* websocket_origins off | same-origin | null | scheme://host[:port] ... */
static const char *set_websocket_origins(struct conf_parser *p, const struct directive *d,
                                         void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    if (lc->nwebsocket_origins || lc->websocket_origins_off == 1)
        return "is duplicate";
    if (p->node->nargs == 1 && strcmp(p->node->args[0], "off") == 0) {
        lc->websocket_origins_off = 1;
        return NULL;
    }
    for (unsigned i = 0; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        if (strcmp(v, "same-origin") != 0 && strcmp(v, "null") != 0 && !origin_pattern_valid(v))
            return conf_err(p, "invalid origin \"%s\" in \"%s\" directive (expected "
                               "same-origin, null or scheme://host[:port], host may be *.domain)",
                            v, p->node->name);
        char *low = arena_strdup(p->a, v);
        struct str *s = PUSH(p, lc->websocket_origins, lc->nwebsocket_origins);
        if (!low || !s)
            return OOM(p);
        for (char *c = low; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        *s = str_from_cstr(low);
    }
    return NULL;
}

static const char *set_proxy_redirect(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    if (lc->proxy_redirect_off == 1)
        return "is duplicate"; /* nothing may follow "off" (nginx) */
    const char *v0 = p->node->args[0];
    if (p->node->nargs == 1) {
        if (strcmp(v0, "off") == 0 || strcmp(v0, "false") == 0) {
            if (lc->nproxy_redirects)
                return "is duplicate";
            lc->proxy_redirect_off = 1;
            return NULL;
        }
        if (strcmp(v0, "default") != 0)
            return conf_err(p, "invalid parameter \"%s\"", v0);
    }
    lc->proxy_redirect_off = 0;
    struct proxy_redirect pr;
    memset(&pr, 0, sizeof(pr));
    if (p->node->nargs == 1) {
        if (lc->proxy_pass && lc->proxy_pass->dynamic)
            return conf_err(p, "\"proxy_redirect default\" cannot be used with \"proxy_pass\" "
                               "directive with variables");
        if (!lc->proxy_pass)
            return conf_err(p, "\"proxy_redirect default\" should be placed after the "
                               "\"proxy_pass\" directive");
        const struct proxy_pass *pp = lc->proxy_pass;
        pr.is_default = 1;
        const char *from, *to;
        if (pp->has_uri) {
            from = arena_printf(p->a, "%.*s%.*s", (int)pp->url.len, pp->url.p, (int)pp->uri.len,
                                pp->uri.p);
            to = p->lb ? loc_display(p, &p->lb->loc) : "";
        } else {
            from = arena_printf(p->a, "%.*s/", (int)pp->url.len, pp->url.p);
            to = "/";
        }
        if (!from || !to)
            return OOM(p);
        pr.from.raw = str_from_cstr(from);
        pr.from.constant = 1;
        pr.to.raw = str_from_cstr(to);
        pr.to.constant = 1;
    } else {
        if (v0[0] == '~') {
            int icase = v0[1] == '*';
            pr.re = regex_compile(p, v0 + 1 + icase, icase);
            if (!pr.re)
                return CONF_ERROR;
            pr.from.raw = str_from_cstr(v0 + 1 + icase);
            pr.from.constant = 1;
        } else if (tmpl_at(p, &pr.from, arg(p, 0)) != 0) {
            return CONF_ERROR;
        }
        if (tmpl_at(p, &pr.to, arg(p, 1)) != 0)
            return CONF_ERROR;
    }
    struct proxy_redirect *e = PUSH(p, lc->proxy_redirects, lc->nproxy_redirects);
    if (!e)
        return OOM(p);
    *e = pr;
    return NULL;
}

/* ------------------------------------------------------------ ssl */

static const char *set_ssl_cert(struct conf_parser *p, const struct directive *d, void *conf)
{
    struct ssl_conf *s = conf;
    const char *path = conf_dir_path(p, p->node->args[0]);
    if (!path)
        return OOM(p);
    int is_cert = strcmp(d->name, "ssl_certificate") == 0;
    unsigned n = is_cert ? s->ncertificates : s->ncertificate_keys;
    struct conf_where *w = is_cert ? PUSH(p, s->certificate_at, n)
                                   : PUSH(p, s->certificate_key_at, n);
    const char **e = is_cert ? PUSH(p, s->certificates, s->ncertificates)
                             : PUSH(p, s->certificate_keys, s->ncertificate_keys);
    if (!e || !w)
        return OOM(p);
    *e = path;
    w->file = p->node->file;
    w->line = node_line(p->node);
    return NULL;
}

static const struct conf_enum ssl_verify_values[] = {
    {"off", SSL_VERIFY_CLIENT_OFF},
    {"on", SSL_VERIFY_CLIENT_ON},
    {"optional", SSL_VERIFY_CLIENT_OPTIONAL},
    {"optional_no_ca", SSL_VERIFY_CLIENT_OPTIONAL_NO_CA},
    {NULL, 0},
};

/* ssl_verify_client: nginx's enum, remembering where it was written. */
static const char *set_ssl_verify(struct conf_parser *p, const struct directive *d, void *conf)
{
    struct ssl_conf *s = conf;
    const char *err = set_enum(p, d, conf);
    if (!err) {
        s->verify_at.file = p->node->file;
        s->verify_at.line = node_line(p->node);
    }
    return err;
}

/* int field, a non-negative number (ssl_verify_depth). */
const char *set_int_num(struct conf_parser *p, const struct directive *d, void *conf)
{
    int *f = FIELD(conf, d, int);
    if (*f != CONF_UNSET)
        return "is duplicate";
    int64_t v = atoi_s(arg(p, 0));
    if (v < 0 || v > INT_MAX)
        return "invalid number";
    *f = (int)v;
    return NULL;
}

/* ssl_session_ticket_key file (repeatable: the first encrypts, all decrypt). */
static const char *set_ssl_ticket_key(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct ssl_conf *s = conf;
    const char *path = conf_dir_path(p, p->node->args[0]);
    unsigned n = s->nticket_keys;
    struct conf_where *w = PUSH(p, s->ticket_key_at, n);
    const char **e = PUSH(p, s->ticket_keys, s->nticket_keys);
    if (!path || !e || !w)
        return OOM(p);
    *e = path;
    w->file = p->node->file;
    w->line = node_line(p->node);
    return NULL;
}

/* ssl_password_file file (read when the keys are loaded). */
static const char *set_ssl_password_file(struct conf_parser *p, const struct directive *d,
                                         void *conf)
{
    (void)d;
    struct ssl_conf *s = conf;
    if (s->password_file)
        return "is duplicate";
    s->password_file = conf_dir_path(p, p->node->args[0]);
    if (!s->password_file)
        return OOM(p);
    s->password_file_at.file = p->node->file;
    s->password_file_at.line = node_line(p->node);
    return NULL;
}

/* proxy_ssl_conf_command name value (repeatable, in order). */
static const char *set_proxy_ssl_conf_command(struct conf_parser *p, const struct directive *d,
                                              void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    const char **name = PUSH(p, lc->proxy_ssl_conf_commands, lc->nproxy_ssl_conf_commands);
    if (!name)
        return OOM(p);
    const char **value = PUSH(p, lc->proxy_ssl_conf_commands, lc->nproxy_ssl_conf_commands);
    if (!value)
        return OOM(p);
    lc->proxy_ssl_conf_commands[lc->nproxy_ssl_conf_commands - 2] = p->node->args[0];
    *value = p->node->args[1];
    return NULL;
}

/* ssl_conf_command name value (repeatable; applied in order with SSL_CONF_cmd). */
static const char *set_ssl_conf_command(struct conf_parser *p, const struct directive *d,
                                        void *conf)
{
    (void)d;
    struct ssl_conf *s = conf;
    unsigned n = s->nconf_commands / 2;
    struct conf_where *w = PUSH(p, s->conf_command_at, n);
    const char **name = PUSH(p, s->conf_commands, s->nconf_commands);
    if (!w || !name)
        return OOM(p);
    const char **value = PUSH(p, s->conf_commands, s->nconf_commands);
    if (!value)
        return OOM(p);
    name = &s->conf_commands[s->nconf_commands - 2];
    *name = p->node->args[0];
    *value = p->node->args[1];
    w->file = p->node->file;
    w->line = node_line(p->node);
    return NULL;
}

static const char *set_ssl_session_cache(struct conf_parser *p, const struct directive *d,
                                         void *conf)
{
    (void)d;
    struct ssl_conf *s = conf;
    if (s->session_cache_off != CONF_UNSET)
        return "is duplicate";
    s->session_cache_off = 0;
    for (unsigned i = 0; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        if (strcmp(v, "off") == 0) {
            s->session_cache_off = 1;
        } else if (strcmp(v, "none") == 0) {
        } else if (strcmp(v, "builtin") == 0) {
            s->session_cache_builtin = 1;
        } else if (starts_with(v, "builtin:")) {
            int64_t n = atoi_s(str_from_cstr(v + 8));
            if (n < 0)
                return conf_err(p, "invalid session cache \"%s\"", v);
            s->session_cache_builtin = 1;
            s->session_cache_builtin_size = n;
        } else if (starts_with(v, "shared:")) {
            const char *name = v + 7;
            const char *colon = strchr(name, ':');
            uint64_t size;
            if (!colon || colon == name || str_to_size(str_from_cstr(colon + 1), &size) != 0)
                return conf_err(p, "invalid session cache \"%s\"", v);
            if (size < 8 * (uint64_t)sysconf(_SC_PAGESIZE))
                return conf_err(p, "session cache \"%s\" is too small", v);
            s->session_cache_shared_name = arena_strndup(p->a, name, (size_t)(colon - name));
            s->session_cache_shared_size = size;
        } else {
            return conf_err(p, "invalid session cache \"%s\"", v);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ upstream */

static const char *set_upstream(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    const struct conf_node *self = p->node;
    const char *name = self->args[0];
    struct http_build *hb = p->hb;
    for (unsigned i = 0; i < hb->nups; i++)
        if (strcasecmp(hb->ups[i]->uc->name, name) == 0)
            return conf_err(p, "duplicate upstream \"%s\"", name);
    struct ups_build *ub = arena_calloc(p->a, sizeof(*ub));
    struct upstream_conf *uc = arena_calloc(p->a, sizeof(*uc));
    struct ups_build **slot = PUSH(p, hb->ups, hb->nups);
    if (!ub || !uc || !slot)
        return OOM(p);
    *slot = ub;
    ub->uc = uc;
    uc->name = name;
    uc->file = self->file;
    uc->line = node_line(self);
    uc->keepalive = UINT_MAX;
    uc->keepalive_timeout = CONF_UNSET_U64;
    uc->keepalive_requests = UINT_MAX;
    uc->keepalive_time = CONF_UNSET_U64;

    p->ub = ub;
    if (run_block(p, self->children, CTX_UPSTREAM) != 0)
        return CONF_ERROR;
    p->ub = NULL;
    p->node = self;

    if (ub->npeers == 0) { /* checked after the block: nginx names the '}' line */
        conf_err_at(p, self->file, self->close_line ? self->close_line : node_line(self),
                    "no servers are inside upstream");
        return CONF_ERROR;
    }
    /* primaries first, then backups, each in config order */
    uc->peers = arena_alloc(p->a, ub->npeers * sizeof(*uc->peers));
    if (!uc->peers)
        return OOM(p);
    unsigned k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (unsigned i = 0; i < ub->npeers; i++)
            if (ub->peers[i].backup == pass)
                uc->peers[k++] = ub->peers[i];
    uc->npeers = ub->npeers;
    uc->nprimary = 0;
    while (uc->nprimary < uc->npeers && !uc->peers[uc->nprimary].backup)
        uc->nprimary++;
    if (uc->keepalive == UINT_MAX)
        uc->keepalive = 0;
    if (uc->keepalive_timeout == CONF_UNSET_U64)
        uc->keepalive_timeout = 60000;
    if (uc->keepalive_requests == UINT_MAX)
        uc->keepalive_requests = 1000;
    if (uc->keepalive_time == CONF_UNSET_U64)
        uc->keepalive_time = 3600000;
    return NULL;
}

static int resolve_server(struct conf_parser *p, const char *addr, struct sockaddr_storage **addrs);

static const char *set_ups_server(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct ups_build *ub = p->ub;
    const char *addr = p->node->args[0];
    unsigned weight = 1, max_fails = 1, max_conns = 0;
    uint64_t fail_timeout = 10000;
    int backup = 0, down = 0;
    for (unsigned i = 1; i < p->node->nargs; i++) {
        const char *v = p->node->args[i];
        int64_t n;
        if (starts_with(v, "weight=")) {
            n = atoi_s(str_from_cstr(v + 7));
            if (n <= 0 || n > INT_MAX)
                goto invalid;
            weight = (unsigned)n;
        } else if (starts_with(v, "max_fails=")) {
            n = atoi_s(str_from_cstr(v + 10));
            if (n < 0 || n > INT_MAX)
                goto invalid;
            max_fails = (unsigned)n;
        } else if (starts_with(v, "max_conns=")) {
            n = atoi_s(str_from_cstr(v + 10));
            if (n < 0 || n > INT_MAX)
                goto invalid;
            max_conns = (unsigned)n;
        } else if (starts_with(v, "fail_timeout=")) {
            if (str_to_msec(str_from_cstr(v + 13), &fail_timeout) != 0)
                goto invalid;
        } else if (strcmp(v, "backup") == 0) {
            enum upstream_balancer b = ((struct upstream_conf *)conf)->balancer;
            if (b == UPS_BALANCE_IP_HASH || b == UPS_BALANCE_HASH || b == UPS_BALANCE_RANDOM)
                return conf_err(p, "balancing method does not support parameter \"backup\"");
            backup = 1;
        } else if (strcmp(v, "down") == 0) {
            down = 1;
        } else {
            goto invalid;
        }
        continue;
    invalid:
        return conf_err(p, "invalid parameter \"%s\"", v);
    }
    struct sockaddr_storage *addrs = NULL;
    struct upstream_peer unix_one;
    int n;
    if (starts_with(addr, "unix:")) {
        const char *e = unix_peer(p, str_from_cstr(addr + 5), &unix_one);
        if (e)
            return conf_err(p, "%s in upstream \"%s\"", e, addr);
        addrs = &unix_one.addr;
        n = 1;
    } else if ((n = resolve_server(p, addr, &addrs)) <= 0) {
        return n < 0 ? CONF_ERROR : conf_err(p, "host not found in upstream \"%s\"", addr);
    }
    for (int i = 0; i < n; i++) {
        struct upstream_peer *peer = PUSH(p, ub->peers, ub->npeers);
        if (!peer)
            return OOM(p);
        if (addrs == &unix_one.addr) {
            *peer = unix_one;
        } else {
            peer->addr = addrs[i];
            peer->addrlen = ss_len(&addrs[i]);
            peer->name = sockaddr_text(p, &addrs[i]);
            if (!peer->name)
                return OOM(p);
        }
        peer->weight = weight;
        peer->max_fails = max_fails;
        peer->fail_timeout = fail_timeout;
        peer->backup = backup;
        peer->down = down;
        peer->max_conns = max_conns;
    }
    return NULL;
}

/* The addresses of `server host[:port]`; the count, 0 when the host is not
 * found, -1 after an error was reported. */
static int resolve_server(struct conf_parser *p, const char *addr, struct sockaddr_storage **addrs)
{
    struct url_parts u;
    const char *e = split_url(str_from_cstr(addr), 0, 80, &u);
    if (e) {
        conf_err(p, "%s in upstream \"%s\"", e, addr);
        return -1;
    }
    char *host = host_cstr(p, u.host);
    int n = host ? resolve(p, host, u.port, addrs) : -1;
    if (n < 0)
        OOM(p);
    return n;
}

static const char *set_ups_keepalive(struct conf_parser *p, const struct directive *d, void *conf)
{
    struct upstream_conf *uc = conf;
    if (uc->keepalive != UINT_MAX)
        return "is duplicate";
    int64_t n = atoi_s(arg(p, 0));
    if (n <= 0 || n >= UINT_MAX)
        return conf_err(p, "invalid value \"%s\" in \"%s\" directive", p->node->args[0], d->name);
    uc->keepalive = (unsigned)n;
    return NULL;
}

static const char *set_balancer(struct conf_parser *p, const struct directive *d, void *conf)
{
    struct upstream_conf *uc = conf;
    if (p->ub->balancer_set)
        conf_warn_here(p, "load balancing method redefined");
    p->ub->balancer_set = 1;
    uc->hash_key = NULL;
    uc->hash_consistent = 0;
    uc->random_two = 0;
    if (strcmp(d->name, "least_conn") == 0) {
        uc->balancer = UPS_BALANCE_LEAST_CONN;
    } else if (strcmp(d->name, "ip_hash") == 0) {
        uc->balancer = UPS_BALANCE_IP_HASH;
    } else if (strcmp(d->name, "hash") == 0) {
        uc->balancer = UPS_BALANCE_HASH;
        if (p->node->nargs == 2) {
            if (strcmp(p->node->args[1], "consistent") != 0)
                return conf_err(p, "invalid parameter \"%s\"", p->node->args[1]);
            uc->hash_consistent = 1;
        }
        if (!(uc->hash_key = tmpl_new(p, arg(p, 0))))
            return CONF_ERROR;
    } else {
        uc->balancer = UPS_BALANCE_RANDOM;
        if (p->node->nargs >= 1) {
            if (strcmp(p->node->args[0], "two") != 0)
                return conf_err(p, "invalid parameter \"%s\"", p->node->args[0]);
            uc->random_two = 1;
            if (p->node->nargs == 2 && strcmp(p->node->args[1], "least_conn") != 0)
                return conf_err(p, "invalid parameter \"%s\"", p->node->args[1]);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ map */

struct map_key_tmp {
    struct map_entry e;
    unsigned order;
    const char *written;
    const char *file;
    unsigned line;
};

static int map_tmp_cmp(const void *a, const void *b)
{
    const struct map_key_tmp *x = a, *y = b;
    int c = map_key_cmp(x->e.key, y->e.key);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Sort keys; report the first (in config order) duplicate as nginx would. */
static int map_finish_list(struct conf_parser *p, struct map_key_tmp *t, unsigned n,
                           struct map_entry **out, unsigned *nout)
{
    *out = NULL;
    *nout = n;
    if (n == 0)
        return 0;
    qsort(t, n, sizeof(*t), map_tmp_cmp);
    const struct map_key_tmp *bad = NULL;
    for (unsigned i = 1; i < n; i++)
        if (map_key_cmp(t[i - 1].e.key, t[i].e.key) == 0 && (!bad || t[i].order < bad->order))
            bad = &t[i];
    if (bad)
        return conf_err_at(p, bad->file, bad->line, "conflicting parameter \"%s\"", bad->written);
    struct map_entry *arr = arena_alloc(p->a, n * sizeof(*arr));
    if (!arr) {
        OOM(p);
        return -1;
    }
    for (unsigned i = 0; i < n; i++)
        arr[i] = t[i].e;
    *out = arr;
    return 0;
}

static const char *set_map(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    const struct conf_node *self = p->node;
    struct map_conf *m = arena_calloc(p->a, sizeof(*m));
    if (!m)
        return OOM(p);
    if (tmpl_at(p, &m->source, arg(p, 0)) != 0)
        return CONF_ERROR;
    const char *dst = self->args[1];
    if (dst[0] != '$')
        return conf_err(p, "invalid variable name \"%s\"", dst);
    const char *e = NULL;
    if (!var_define_map(&p->g->vars, p->a, str_from_cstr(dst + 1), m, &e))
        return conf_err(p, "%s", e ? e : "out of memory");

    struct map_key_tmp *ex = NULL, *wh = NULL, *wt = NULL;
    unsigned nex = 0, nwh = 0, nwt = 0, order = 0;
    int have_default = 0;
    for (const struct conf_node *c = self->children; c; c = c->next) {
        p->node = c;
        p->g->vars.cur_file = c->file;
        p->g->vars.cur_line = node_line(c);
        if (c->is_block)
            return conf_err(p, "unexpected \"{\"");
        if (c->nargs == 0 && strcmp(c->name, "hostnames") == 0) {
            m->hostnames = 1;
            continue;
        }
        if (c->nargs == 0 && strcmp(c->name, "volatile") == 0) {
            m->volatile_ = 1;
            continue;
        }
        if (c->nargs != 1)
            return conf_err(p, "invalid number of the map parameters");
        struct tmpl val;
        if (tmpl_at(p, &val, str_from_cstr(c->args[0])) != 0)
            return CONF_ERROR;
        const char *key = c->name;
        if (strcmp(key, "default") == 0) {
            if (have_default)
                return conf_err(p, "duplicate default map parameter");
            have_default = 1;
            m->deflt = val;
            continue;
        }
        if (key[0] == '~') {
            int icase = key[1] == '*';
            struct map_regex *r = PUSH(p, m->regex, m->nregex);
            if (!r)
                return OOM(p);
            r->re = regex_compile(p, key + 1 + icase, icase);
            if (!r->re)
                return CONF_ERROR;
            r->value = val;
            continue;
        }
        if (key[0] == '\\')
            key++;
        struct map_key_tmp *t;
        if (m->hostnames && (strchr(key, '*') || key[0] == '.')) {
            if (!wildcard_valid(key))
                return conf_err(p, "invalid hostname or wildcard \"%s\"", c->name);
            enum server_name_kind kind;
            struct str name;
            int dot;
            classify_name(key, &kind, &name, &dot);
            t = kind == SN_WILD_TAIL ? PUSH(p, wt, nwt) : PUSH(p, wh, nwh);
            if (!t)
                return OOM(p);
            t->e.key = name;
            t->e.value = val;
            t->order = order++;
            t->written = c->name;
            t->file = c->file;
            t->line = node_line(c);
            if (!dot)
                continue;
            /* ".example.com" also matches "example.com" itself */
            key = name.p;
        }
        t = PUSH(p, ex, nex);
        if (!t)
            return OOM(p);
        t->e.key = str_from_cstr(key);
        t->e.value = val;
        t->order = order++;
        t->written = c->name;
        t->file = c->file;
        t->line = node_line(c);
    }
    p->node = self;
    if (!have_default && tmpl_at(p, &m->deflt, STR_LIT("")) != 0)
        return CONF_ERROR;
    if (map_finish_list(p, ex, nex, &m->exact, &m->nexact) != 0 ||
        map_finish_list(p, wh, nwh, &m->wild_head, &m->nwild_head) != 0 ||
        map_finish_list(p, wt, nwt, &m->wild_tail, &m->nwild_tail) != 0)
        return CONF_ERROR;
    return NULL;
}

/* ------------------------------------------------------------ the table */

/*
 * load_module FILE: Switchyard has no dynamic modules; what it implements is
 * built in. Accepted with a warning (Debian's nginx.conf includes
 * the files of modules-enabled, which loads the packaged modules), so that a
 * configuration runs unless it uses a directive of such a module: that one
 * is then "unknown", as in an nginx built without the module.
 */
static const char *set_load_module(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    conf_warn_node(p, "\"load_module\" is ignored: Switchyard has no dynamic modules, what it "
                      "implements is built in (\"switchyard -V\" lists it); the directives of "
                      "\"%s\" are unknown",
                   p->node->args[0]);
    return NULL;
}

/*
 * ssl on|off (http, server): nginx 1.22's deprecated switch, with its
 * warning. The address whose default server has it on speaks TLS, as if its
 * listen had "ssl" (http_finish); such a server needs a certificate.
 */
static const char *set_ssl_enable(struct conf_parser *p, const struct directive *d, void *conf)
{
    struct ssl_conf *ssl = conf;
    if (ssl->enable != CONF_UNSET)
        return "is duplicate";
    const char *rv = set_flag(p, d, conf);
    if (rv)
        return rv;
    ssl->enable_at.file = p->node->file;
    ssl->enable_at.line = node_line(p->node);
    conf_warn_node(p, "the \"ssl\" directive is deprecated, use the \"listen ... ssl\" directive "
                      "instead");
    return NULL;
}

/* The core table: modules with a file of their own have their own table
 * (conf_module_tables in directive_table.h). */
const struct directive core_directives[] = {
    /* main */
    {"worker_processes", CTX_MAIN, ARGS(1, 1), set_worker_processes, LVL_MAIN, 0, NULL},
    {"worker_rlimit_nofile", CTX_MAIN, ARGS(1, 1), set_num, MAIN(worker_rlimit_nofile), NULL},
    {"worker_shutdown_timeout", CTX_MAIN, ARGS(1, 1), set_msec, MAIN(worker_shutdown_timeout),
     NULL},
    {"worker_cpu_affinity", CTX_MAIN, ARGS(1, MANY), set_cpu_affinity, LVL_MAIN, 0, NULL},
    {"error_log", CTX_MAIN | HSL, ARGS(1, MANY), set_error_log, LVL_NONE, 0, NULL},
    {"pid", CTX_MAIN, ARGS(1, 1), set_pid, LVL_MAIN, 0, NULL},
    {"daemon", CTX_MAIN, ARGS(1, 1), set_flag, MAIN(daemon), NULL},
    {"master_process", CTX_MAIN, ARGS(1, 1), set_flag, MAIN(master_process), NULL},
    {"user", CTX_MAIN, ARGS(1, 2), set_user, LVL_MAIN, 0, NULL},
    {"worker_priority", CTX_MAIN, ARGS(1, 1), set_worker_priority, LVL_MAIN, 0, NULL},
    {"worker_rlimit_core", CTX_MAIN, ARGS(1, 1), set_size, MAIN(worker_rlimit_core), NULL},
    {"events", CTX_MAIN, ARGS(0, 0) | D_BLOCK, set_events, LVL_NONE, 0, NULL},
    {"http", CTX_MAIN, ARGS(0, 0) | D_BLOCK, set_http, LVL_NONE, 0, NULL},

    /* events */
    {"worker_connections", CTX_EVENTS, ARGS(1, 1), set_worker_connections, LVL_MAIN, 0, NULL},
    {"use", CTX_EVENTS, ARGS(1, 1), set_use, LVL_NONE, 0, NULL},
    {"multi_accept", CTX_EVENTS, ARGS(1, 1), set_flag, MAIN(multi_accept), NULL},
    {"accept_mutex", CTX_EVENTS, ARGS(1, 1), set_flag, MAIN(accept_mutex), NULL},
    {"accept_mutex_delay", CTX_EVENTS, ARGS(1, 1), set_ignored_msec, LVL_NONE, 0, NULL},
    {"debug_connection", CTX_EVENTS, ARGS(1, 1), set_warn_ignored, LVL_NONE, 0, NULL},
    {"epoll_events", CTX_EVENTS, ARGS(1, 1), set_ignored_num, LVL_NONE, 0, NULL},
    {"worker_aio_requests", CTX_EVENTS, ARGS(1, 1), set_ignored_num, LVL_NONE, 0, NULL},

    /* http structure */
    {"server", CTX_HTTP, ARGS(0, 0) | D_BLOCK, set_server, LVL_NONE, 0, NULL},
    {"upstream", CTX_HTTP, ARGS(1, 1) | D_BLOCK, set_upstream, LVL_NONE, 0, NULL},
    {"map", CTX_HTTP, ARGS(2, 2) | D_BLOCK, set_map, LVL_NONE, 0, NULL},
    {"log_format", CTX_HTTP, ARGS(2, MANY), set_log_format, LVL_NONE, 0, NULL},
    {"listen", CTX_SERVER, ARGS(1, MANY), set_listen, LVL_SRV, 0, NULL},
    {"server_name", CTX_SERVER, ARGS(1, MANY), set_server_name, LVL_SRV, 0, NULL},
    {"location", CTX_SERVER | CTX_LOCATION, ARGS(1, 2) | D_BLOCK, set_location, LVL_NONE, 0, NULL},
    {"if", CTX_SERVER | CTX_LOCATION, ARGS(1, MANY) | D_BLOCK, set_if, LVL_NONE, 0, NULL},
    {"return", CTX_SERVER | CTX_SIF | CTX_LOCATION | CTX_LIF, ARGS(1, 2), set_return, LVL_NONE, 0,
     NULL},
    {"set", CTX_SERVER | CTX_SIF | CTX_LOCATION | CTX_LIF, ARGS(2, 2), set_set, LVL_NONE, 0, NULL},
    {"rewrite", CTX_SERVER | CTX_SIF | CTX_LOCATION | CTX_LIF, ARGS(2, 3), set_rewrite, LVL_NONE, 0,
     NULL},
    {"break", CTX_SERVER | CTX_SIF | CTX_LOCATION | CTX_LIF, ARGS(0, 0), set_break, LVL_NONE, 0,
     NULL},
    {"internal", CTX_LOCATION, ARGS(0, 0), set_internal, LVL_LOC, 0, NULL},

    /* client side */
    {"keepalive_timeout", HSL, ARGS(1, 2), set_keepalive_timeout, LVL_LOC, 0, NULL},
    {"keepalive_requests", HSL, ARGS(1, 1), set_num, LOC(keepalive_requests), NULL},
    {"keepalive_time", HSL, ARGS(1, 1), set_msec, LOC(keepalive_time), NULL},
    {"keepalive_disable", HSL, ARGS(1, 2), set_keepalive_disable, LVL_LOC, 0, NULL},
    {"client_max_body_size", HSL, ARGS(1, 1), set_size, LOC(client_max_body_size), NULL},
    {"client_header_timeout", HS, ARGS(1, 1), set_msec, LOC(client_header_timeout), NULL},
    {"client_body_timeout", HSL, ARGS(1, 1), set_msec, LOC(client_body_timeout), NULL},
    {"send_timeout", HSL, ARGS(1, 1), set_msec, LOC(send_timeout), NULL},
    {"client_body_buffer_size", HSL, ARGS(1, 1), set_size, LOC(client_body_buffer_size), NULL},
    {"client_header_buffer_size", HS, ARGS(1, 1), set_size, LOC(client_header_buffer_size), NULL},
    {"large_client_header_buffers", HS, ARGS(2, 2), set_large_header_buffers, LVL_LOC, 0, NULL},
    {"server_tokens", HSL, ARGS(1, 1), set_enum, LOC(server_tokens), on_off_build},
    {"sendfile", HSL | CTX_LIF, ARGS(1, 1), set_flag, LOC(sendfile), NULL},
    {"tcp_nopush", HSL, ARGS(1, 1), set_flag, LOC(tcp_nopush), NULL},
    {"tcp_nodelay", HSL, ARGS(1, 1), set_flag, LOC(tcp_nodelay), NULL},
    {"resolver", HSL, ARGS(1, MANY), set_resolver, LVL_LOC, 0, NULL},
    {"resolver_timeout", HSL, ARGS(1, 1), set_msec, LOC(resolver_timeout), NULL},
    {"underscores_in_headers", HS, ARGS(1, 1), set_flag, LOC(underscores_in_headers), NULL},
    {"ignore_invalid_headers", HS, ARGS(1, 1), set_flag, LOC(ignore_invalid_headers), NULL},
    {"merge_slashes", HS, ARGS(1, 1), set_flag, LOC(merge_slashes), NULL},
    {"absolute_redirect", HSL, ARGS(1, 1), set_flag, LOC(absolute_redirect), NULL},
    {"port_in_redirect", HSL, ARGS(1, 1), set_flag, LOC(port_in_redirect), NULL},
    {"server_name_in_redirect", HSL, ARGS(1, 1), set_flag, LOC(server_name_in_redirect), NULL},
    {"lingering_close", HSL, ARGS(1, 1), set_enum, LOC(lingering_close), lingering_close_values},
    {"lingering_time", HSL, ARGS(1, 1), set_msec, LOC(lingering_time), NULL},
    {"lingering_timeout", HSL, ARGS(1, 1), set_msec, LOC(lingering_timeout), NULL},
    {"chunked_transfer_encoding", HSL, ARGS(1, 1), set_flag, LOC(chunked_transfer_encoding), NULL},

    /* accepted for compatibility, no effect (docs/directives.md says why) */
    {"types_hash_max_size", HSL, ARGS(1, 1), set_ignored_num, LVL_NONE, 0, NULL},
    {"types_hash_bucket_size", HSL, ARGS(1, 1), set_ignored_num, LVL_NONE, 0, NULL},
    {"server_names_hash_max_size", CTX_HTTP, ARGS(1, 1), set_ignored_num, LVL_NONE, 0, NULL},
    {"server_names_hash_bucket_size", CTX_HTTP, ARGS(1, 1), set_ignored_num, LVL_NONE, 0, NULL},
    {"variables_hash_max_size", CTX_HTTP, ARGS(1, 1), set_ignored_num, LVL_NONE, 0, NULL},
    {"variables_hash_bucket_size", CTX_HTTP, ARGS(1, 1), set_ignored_num, LVL_NONE, 0, NULL},
    {"map_hash_max_size", CTX_HTTP, ARGS(1, 1), set_ignored_num, LVL_NONE, 0, NULL},
    {"map_hash_bucket_size", CTX_HTTP, ARGS(1, 1), set_ignored_num, LVL_NONE, 0, NULL},
    {"proxy_headers_hash_max_size", HSL, ARGS(1, 1), set_ignored_num, LVL_NONE, 0, NULL},
    {"proxy_headers_hash_bucket_size", HSL, ARGS(1, 1), set_ignored_num, LVL_NONE, 0, NULL},
    {"reset_timedout_connection", HSL, ARGS(1, 1), set_ignored_flag, LVL_NONE, 0, NULL},
    {"msie_padding", HSL, ARGS(1, 1), set_ignored_flag, LVL_NONE, 0, NULL},
    {"log_not_found", HSL, ARGS(1, 1), set_ignored_flag, LVL_NONE, 0, NULL},
    {"log_subrequest", HSL, ARGS(1, 1), set_ignored_flag, LVL_NONE, 0, NULL},
    {"client_body_in_single_buffer", HSL, ARGS(1, 1), set_ignored_flag, LVL_NONE, 0, NULL},
    {"client_body_in_file_only", HSL, ARGS(1, 1), set_body_in_file_only, LVL_NONE, 0, NULL},
    {"open_file_cache", HSL, ARGS(1, 2), set_file_cache, LVL_NONE, 0, NULL},
    {"open_log_file_cache", HSL, ARGS(1, 4), set_file_cache, LVL_NONE, 0, NULL},
    {"output_buffers", HSL, ARGS(2, 2), set_ignored_bufs, LVL_NONE, 0, NULL},
    {"postpone_output", HSL, ARGS(1, 1), set_ignored_size, LVL_NONE, 0, NULL},
    {"send_lowat", HSL, ARGS(1, 1), set_send_lowat, LVL_NONE, 0, NULL},
    {"connection_pool_size", HS, ARGS(1, 1), set_pool_size, LVL_NONE, 0, NULL},
    {"request_pool_size", HS, ARGS(1, 1), set_pool_size, LVL_NONE, 0, NULL},
    {"sendfile_max_chunk", HSL, ARGS(1, 1), set_ignored_size, LVL_NONE, 0, NULL},
    {"aio", HSL, ARGS(1, 1), set_aio, LVL_NONE, 0, NULL},
    {"aio_write", HSL, ARGS(1, 1), set_ignored_flag, LVL_NONE, 0, NULL},
    {"directio", HSL, ARGS(1, 1), set_directio, LVL_NONE, 0, NULL},
    {"directio_alignment", HSL, ARGS(1, 1), set_ignored_size, LVL_NONE, 0, NULL},
    {"read_ahead", HSL, ARGS(1, 1), set_ignored_size, LVL_NONE, 0, NULL},
    {"open_file_cache_errors", HSL, ARGS(1, 1), set_ignored_flag, LVL_NONE, 0, NULL},
    {"open_file_cache_events", HSL, ARGS(1, 1), set_ignored_flag, LVL_NONE, 0, NULL},
    {"open_file_cache_min_uses", HSL, ARGS(1, 1), set_ignored_num, LVL_NONE, 0, NULL},
    {"open_file_cache_valid", HSL, ARGS(1, 1), set_ignored_msec, LVL_NONE, 0, NULL},
    {"msie_refresh", HSL, ARGS(1, 1), set_ignored_flag, LVL_NONE, 0, NULL},
    {"max_ranges", HSL, ARGS(1, 1), set_num, LOC(max_ranges), NULL},
    {"recursive_error_pages", HSL, ARGS(1, 1), set_flag_off_only, LVL_NONE, 0, NULL},
    {"subrequest_output_buffer_size", HSL, ARGS(1, 1), set_ignored_size, LVL_NONE, 0, NULL},
    {"rewrite_log", CTX_HTTP | CTX_SERVER | CTX_SIF | CTX_LOCATION | CTX_LIF, ARGS(1, 1),
     set_ignored_flag, LVL_NONE, 0, NULL},
    {"uninitialized_variable_warn", CTX_HTTP | CTX_SERVER | CTX_SIF | CTX_LOCATION | CTX_LIF,
     ARGS(1, 1), set_ignored_flag, LVL_NONE, 0, NULL},
    {"proxy_ignore_headers", HSL, ARGS(1, MANY), set_ignore_headers, LOC(proxy_ignore_headers),
     ignore_headers_values},
    {"proxy_max_temp_file_size", HSL, ARGS(1, 1), set_ignored_size, LVL_NONE, 0, NULL},
    {"proxy_temp_file_write_size", HSL, ARGS(1, 1), set_ignored_size, LVL_NONE, 0, NULL},
    {"proxy_send_lowat", HSL, ARGS(1, 1), set_send_lowat, LVL_NONE, 0, NULL},
    {"proxy_force_ranges", HSL, ARGS(1, 1), set_flag_off_only, LVL_NONE, 0, NULL},
    /* temporary files: checked, never used (bodies are streamed) */
    {"client_body_temp_path", HSL, ARGS(1, 4), set_temp_path, LVL_NONE, 0, NULL},
    {"proxy_temp_path", HSL, ARGS(1, 4), set_temp_path, LVL_NONE, 0, NULL},
    {"fastcgi_temp_path", HSL, ARGS(1, 4), set_temp_path, LVL_NONE, 0, NULL},
    {"uwsgi_temp_path", HSL, ARGS(1, 4), set_temp_path, LVL_NONE, 0, NULL},
    {"scgi_temp_path", HSL, ARGS(1, 4), set_temp_path, LVL_NONE, 0, NULL},
    /* main and events level */
    {"env", CTX_MAIN, ARGS(1, 1), set_ignored_any, LVL_NONE, 0, NULL},
    {"load_module", CTX_MAIN, ARGS(1, 1), set_load_module, LVL_NONE, 0, NULL},
    {"lock_file", CTX_MAIN, ARGS(1, 1), set_ignored_str, LVL_NONE, 0, NULL},
    {"working_directory", CTX_MAIN, ARGS(1, 1), set_ignored_str, LVL_NONE, 0, NULL},
    {"pcre_jit", CTX_MAIN, ARGS(1, 1), set_ignored_flag, LVL_NONE, 0, NULL},
    {"thread_pool", CTX_MAIN, ARGS(2, 3), set_thread_pool, LVL_NONE, 0, NULL},
    {"timer_resolution", CTX_MAIN, ARGS(1, 1), set_ignored_msec, LVL_NONE, 0, NULL},
    {"debug_points", CTX_MAIN, ARGS(1, 1), set_ignored_enum, LVL_NONE, 0, debug_points_values},
    {"ssl_engine", CTX_MAIN, ARGS(1, 1), set_ssl_engine, LVL_NONE, 0, NULL},
    {"ssl_object_cache_inheritable", CTX_MAIN, ARGS(1, 1), set_ignored_flag, LVL_NONE, 0, NULL},

    /* content */
    {"default_type", HSL, ARGS(1, 1), set_slice, LOC(default_type), NULL},
    {"types", HSL, ARGS(0, 0) | D_BLOCK, set_types, LVL_LOC, 0, NULL},
    {"access_log", HSL | CTX_LIF | CTX_LMT, ARGS(1, MANY), set_access_log, LVL_LOC, 0, NULL},
    {"add_header", HSL | CTX_LIF, ARGS(2, 3), set_add_header, LVL_LOC, 0, NULL},
    {"error_page", HSL | CTX_LIF, ARGS(2, MANY), set_error_page, LVL_LOC, 0, NULL},
    {"root", HSL | CTX_LIF, ARGS(1, 1), set_root, LVL_LOC, 0, NULL},
    {"alias", CTX_LOCATION, ARGS(1, 1), set_alias, LVL_LOC, 0, NULL},
    {"index", HSL, ARGS(1, MANY), set_index, LVL_LOC, 0, NULL},
    {"try_files", CTX_SERVER | CTX_LOCATION, ARGS(2, MANY), set_try_files, LVL_LOC, 0, NULL},
    {"disable_symlinks", HSL, ARGS(1, 2), set_disable_symlinks, LVL_LOC, 0, NULL},
    {"etag", HSL, ARGS(1, 1), set_flag, LOC(etag), NULL},
    {"if_modified_since", HSL, ARGS(1, 1), set_enum, LOC(if_modified_since), ims_values},

    /* real client address (ngx_http_realip_module) */
    {"set_real_ip_from", HSL, ARGS(1, 1), set_real_ip_from, LVL_LOC, 0, NULL},
    {"real_ip_header", HSL, ARGS(1, 1), set_real_ip_header, LVL_LOC, 0, NULL},
    {"real_ip_recursive", HSL, ARGS(1, 1), set_flag, LOC(real_ip_recursive), NULL},

    /* proxy */
    {"proxy_pass", CTX_LOCATION | CTX_LIF | CTX_LMT, ARGS(1, 1), set_proxy_pass, LVL_LOC, 0, NULL},
    {"proxy_set_header", HSL, ARGS(2, 2), set_header_tmpl, LVL_LOC, 0, NULL},
    {"proxy_http_version", HSL, ARGS(1, 1), set_enum, LOC(proxy_http_version_minor), http_versions},
    {"proxy_connect_timeout", HSL, ARGS(1, 1), set_msec, LOC(proxy_connect_timeout), NULL},
    {"proxy_read_timeout", HSL, ARGS(1, 1), set_msec, LOC(proxy_read_timeout), NULL},
    {"proxy_send_timeout", HSL, ARGS(1, 1), set_msec, LOC(proxy_send_timeout), NULL},
    {"proxy_buffering", HSL, ARGS(1, 1), set_flag, LOC(proxy_buffering), NULL},
    {"proxy_request_buffering", HSL, ARGS(1, 1), set_flag, LOC(proxy_request_buffering), NULL},
    {"proxy_buffer_size", HSL, ARGS(1, 1), set_size, LOC(proxy_buffer_size), NULL},
    {"proxy_buffers", HSL, ARGS(2, 2), set_proxy_buffers, LVL_LOC, 0, NULL},
    {"proxy_busy_buffers_size", HSL, ARGS(1, 1), set_size, LOC(proxy_busy_buffers_size), NULL},
    {"proxy_redirect", HSL, ARGS(1, 2), set_proxy_redirect, LVL_LOC, 0, NULL},
    {"proxy_hide_header", HSL, ARGS(1, 1), set_header_name, LVL_LOC, 0, NULL},
    {"proxy_pass_header", HSL, ARGS(1, 1), set_header_name, LVL_LOC, 0, NULL},
    {"proxy_pass_request_headers", HSL, ARGS(1, 1), set_flag, LOC(proxy_pass_request_headers),
     NULL},
    {"proxy_pass_request_body", HSL, ARGS(1, 1), set_flag, LOC(proxy_pass_request_body), NULL},
    {"proxy_method", HSL, ARGS(1, 1), set_tmpl_ptr, LOC(proxy_method), NULL},
    {"proxy_set_body", HSL, ARGS(1, 1), set_tmpl_ptr, LOC(proxy_set_body), NULL},
    {"proxy_intercept_errors", HSL, ARGS(1, 1), set_flag, LOC(proxy_intercept_errors), NULL},
    {"proxy_next_upstream", HSL, ARGS(1, MANY), set_bitmask, LOC(proxy_next_upstream),
     next_upstream_values},
    {"proxy_next_upstream_tries", HSL, ARGS(1, 1), set_num, LOC(proxy_next_upstream_tries), NULL},
    {"proxy_next_upstream_timeout", HSL, ARGS(1, 1), set_msec, LOC(proxy_next_upstream_timeout),
     NULL},
    {"proxy_ignore_client_abort", HSL, ARGS(1, 1), set_flag, LOC(proxy_ignore_client_abort), NULL},
    {"proxy_socket_keepalive", HSL, ARGS(1, 1), set_flag, LOC(proxy_socket_keepalive), NULL},
    /* Switchyard's WebSocket directives (docs/websocket.md) */
    {"websocket_auto", HSL, ARGS(1, 1), set_flag, LOC(websocket_auto), NULL},
    {"websocket_idle_timeout", HSL, ARGS(1, 1), set_msec, LOC(websocket_idle_timeout), NULL},
    {"websocket_ping_interval", HSL, ARGS(1, 1), set_msec_or_off, LOC(websocket_ping_interval),
     NULL},
    {"websocket_ping_timeout", HSL, ARGS(1, 1), set_msec, LOC(websocket_ping_timeout), NULL},
    {"websocket_upgrade_tokens", HSL, ARGS(1, MANY), set_upgrade_tokens, LVL_LOC, 0, NULL},
    {"websocket_origins", HSL, ARGS(1, MANY), set_websocket_origins, LVL_LOC, 0, NULL},
    {"websocket_max_message_size", HSL, ARGS(1, 1), set_ws_max_message, LVL_LOC, 0, NULL},
    {"websocket_message_rate", HSL, ARGS(1, 2), set_ws_message_rate, LVL_LOC, 0, NULL},
    {"proxy_ssl_server_name", HSL, ARGS(1, 1), set_flag, LOC(proxy_ssl_server_name), NULL},
    {"proxy_ssl_name", HSL, ARGS(1, 1), set_tmpl_ptr, LOC(proxy_ssl_name), NULL},
    {"proxy_ssl_verify", HSL, ARGS(1, 1), set_flag, LOC(proxy_ssl_verify), NULL},
    {"proxy_ssl_trusted_certificate", HSL, ARGS(1, 1), set_conf_path,
     LOC(proxy_ssl_trusted_certificate), NULL},
    {"proxy_ssl_protocols", HSL, ARGS(1, MANY), set_bitmask, LOC(proxy_ssl_protocols),
     ssl_protocol_values},
    {"proxy_ssl_session_reuse", HSL, ARGS(1, 1), set_flag, LOC(proxy_ssl_session_reuse), NULL},
    {"proxy_ssl_certificate", HSL, ARGS(1, 1), set_conf_path, LOC(proxy_ssl_certificate), NULL},
    {"proxy_ssl_certificate_key", HSL, ARGS(1, 1), set_conf_path, LOC(proxy_ssl_certificate_key),
     NULL},
    {"proxy_ssl_password_file", HSL, ARGS(1, 1), set_conf_path, LOC(proxy_ssl_password_file),
     NULL},
    {"proxy_ssl_crl", HSL, ARGS(1, 1), set_conf_path, LOC(proxy_ssl_crl), NULL},
    {"proxy_ssl_ciphers", HSL, ARGS(1, 1), set_str, LOC(proxy_ssl_ciphers), NULL},
    {"proxy_ssl_verify_depth", HSL, ARGS(1, 1), set_int_num, LOC(proxy_ssl_verify_depth), NULL},
    {"proxy_ssl_conf_command", HSL, ARGS(2, 2), set_proxy_ssl_conf_command, LVL_LOC, 0, NULL},


    /* limit_req / limit_conn: setters in src/conf/limits.c */
    {"limit_req_zone", CTX_HTTP, ARGS(3, 3), limits_set_req_zone, LVL_NONE, 0, NULL},
    {"limit_req", HSL, ARGS(1, 3), limits_set_req, LVL_LOC, 0, NULL},
    {"limit_req_status", HSL, ARGS(1, 1), limits_set_status, LVL_LOC, 0, NULL},
    {"limit_req_log_level", HSL, ARGS(1, 1), set_enum, LOC(limit_req_log_level),
     limit_log_levels},
    {"limit_req_dry_run", HSL, ARGS(1, 1), set_flag, LOC(limit_req_dry_run), NULL},
    {"limit_conn_zone", CTX_HTTP, ARGS(2, 2), limits_set_conn_zone, LVL_NONE, 0, NULL},
    {"limit_conn", HSL, ARGS(2, 2), limits_set_conn, LVL_LOC, 0, NULL},
    {"limit_conn_status", HSL, ARGS(1, 1), limits_set_status, LVL_LOC, 0, NULL},
    {"limit_conn_log_level", HSL, ARGS(1, 1), set_enum, LOC(limit_conn_log_level),
     limit_log_levels},
    {"limit_conn_dry_run", HSL, ARGS(1, 1), set_flag, LOC(limit_conn_dry_run), NULL},

    /* ssl: TLS listeners, contexts built by src/tls/tls.c */
    {"ssl_certificate", HS, ARGS(1, 1), set_ssl_cert, LVL_SSL, 0, NULL},
    {"ssl_certificate_key", HS, ARGS(1, 1), set_ssl_cert, LVL_SSL, 0, NULL},
    {"ssl_protocols", HS, ARGS(1, MANY), set_bitmask, SSL(protocols), ssl_protocol_values},
    {"ssl_ciphers", HS, ARGS(1, 1), set_str, SSL(ciphers), NULL},
    {"ssl_prefer_server_ciphers", HS, ARGS(1, 1), set_flag, SSL(prefer_server_ciphers), NULL},
    {"ssl_session_cache", HS, ARGS(1, 2), set_ssl_session_cache, LVL_SSL, 0, NULL},
    {"ssl_session_timeout", HS, ARGS(1, 1), set_msec, SSL(session_timeout), NULL},
    {"ssl_session_tickets", HS, ARGS(1, 1), set_flag, SSL(session_tickets), NULL},
    {"ssl_dhparam", HS, ARGS(1, 1), set_conf_path, SSL(dhparam), NULL},
    {"ssl_stapling", HS, ARGS(1, 1), set_flag, SSL(stapling), NULL},
    {"ssl_stapling_verify", HS, ARGS(1, 1), set_flag, SSL(stapling_verify), NULL},
    /* OCSP stapling is not implemented (ssl_stapling warns): its sources too */
    {"ssl_stapling_file", HS, ARGS(1, 1), set_warn_ignored, LVL_NONE, 0, NULL},
    {"ssl_stapling_responder", HS, ARGS(1, 1), set_warn_ignored, LVL_NONE, 0, NULL},
    {"ssl_ecdh_curve", HS, ARGS(1, 1), set_str, SSL(ecdh_curve), NULL},
    {"ssl_trusted_certificate", HS, ARGS(1, 1), set_conf_path, SSL(trusted_certificate), NULL},
    {"ssl_verify_client", HS, ARGS(1, 1), set_ssl_verify, SSL(verify_client), ssl_verify_values},
    {"ssl_verify_depth", HS, ARGS(1, 1), set_int_num, SSL(verify_depth), NULL},
    {"ssl_client_certificate", HS, ARGS(1, 1), set_conf_path, SSL(client_certificate), NULL},
    {"ssl_crl", HS, ARGS(1, 1), set_conf_path, SSL(crl), NULL},
    {"ssl_reject_handshake", HS, ARGS(1, 1), set_flag, SSL(reject_handshake), NULL},
    {"ssl_session_ticket_key", HS, ARGS(1, 1), set_ssl_ticket_key, LVL_SSL, 0, NULL},
    {"ssl_password_file", HS, ARGS(1, 1), set_ssl_password_file, LVL_SSL, 0, NULL},
    {"ssl_buffer_size", HS, ARGS(1, 1), set_size, SSL(buffer_size), NULL},
    {"ssl_conf_command", HS, ARGS(2, 2), set_ssl_conf_command, LVL_SSL, 0, NULL},
    {"ssl", HS, ARGS(1, 1), set_ssl_enable, SSL(enable), NULL},
    {"ssl_early_data", HS, ARGS(1, 1), set_flag, SSL(early_data), NULL},

    /* upstream */
    {"server", CTX_UPSTREAM, ARGS(1, MANY), set_ups_server, LVL_UPS, 0, NULL},
    {"keepalive", CTX_UPSTREAM, ARGS(1, 1), set_ups_keepalive, LVL_UPS, 0, NULL},
    {"keepalive_timeout", CTX_UPSTREAM, ARGS(1, 1), set_msec, UPS(keepalive_timeout), NULL},
    {"keepalive_requests", CTX_UPSTREAM, ARGS(1, 1), set_uint, UPS(keepalive_requests), NULL},
    {"keepalive_time", CTX_UPSTREAM, ARGS(1, 1), set_msec, UPS(keepalive_time), NULL},
    {"least_conn", CTX_UPSTREAM, ARGS(0, 0), set_balancer, LVL_UPS, 0, NULL},
    {"ip_hash", CTX_UPSTREAM, ARGS(0, 0), set_balancer, LVL_UPS, 0, NULL},
    {"hash", CTX_UPSTREAM, ARGS(1, 2), set_balancer, LVL_UPS, 0, NULL},
    {"random", CTX_UPSTREAM, ARGS(0, 2), set_balancer, LVL_UPS, 0, NULL},

    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};

/* ------------------------------------------------------------ dispatch */

/*
 * A name the table does not have: an nginx directive Switchyard lacks is
 * explained (which module, what to do); anything else is nginx's
 * "unknown directive", as for a typo.
 */
static int unknown_directive(struct conf_parser *p, const struct conf_node *n, unsigned ctx)
{
    const char *file = n->file;
    unsigned line = node_line(n);
    int planned = 0;
    const struct conf_module *m = conf_module_lacking(n->name, &planned);
    if (m) {
        int rc = absent_module_directive(p, n, ctx, m->label);
        if (rc != 0)
            return rc > 0 ? 0 : -1;
    }
    if (m)
        return conf_err_at(p, file, line,
                           "nginx directive \"%s\" is not implemented yet (%s%s); remove it to "
                           "run this configuration",
                           n->name, m->label,
                           planned ? ", planned for a later compatibility release" : "");
    return conf_err_at(p, file, line, "unknown directive \"%s\"", n->name);
}

static int run_directive(struct conf_parser *p, const struct conf_node *n, unsigned ctx)
{
    p->node = n;
    p->g->vars.cur_file = n->file;
    p->g->vars.cur_line = node_line(n);

    const struct directive *d = NULL;
    int found = 0;
    for (const struct directive *const *t = conf_module_tables; *t && !d; t++)
        for (const struct directive *x = *t; x->name; x++) {
            if (strcmp(x->name, n->name) != 0)
                continue;
            found = 1;
            if (x->ctx & ctx) {
                d = x;
                break;
            }
        }
    if (!found)
        return unknown_directive(p, n, ctx);
    if (!d)
        return conf_err_at(p, n->file, node_line(n), "\"%s\" directive is not allowed here",
                           n->name);
    if (!(d->nargs & D_BLOCK) && n->is_block)
        return conf_err_at(p, n->file, node_line(n), "directive \"%s\" is not terminated by \";\"",
                           n->name);
    if ((d->nargs & D_BLOCK) && !n->is_block)
        return conf_err_at(p, n->file, node_line(n), "directive \"%s\" has no opening \"{\"",
                           n->name);
    if (n->nargs < ARGS_MIN(d->nargs) ||
        (ARGS_MAX(d->nargs) != MANY && n->nargs > ARGS_MAX(d->nargs)))
        return conf_err_at(p, n->file, node_line(n),
                           "invalid number of arguments in \"%s\" directive", n->name);

    void *conf = NULL;
    switch (d->level) {
    case LVL_NONE:
        break;
    case LVL_MAIN:
        conf = &p->g->main;
        break;
    case LVL_LOC:
        conf = p->lc;
        break;
    case LVL_SRV:
        conf = p->sb;
        break;
    case LVL_UPS:
        conf = p->ub ? p->ub->uc : NULL;
        break;
    case LVL_SSL:
        conf = p->ssl;
        break;
    }
    if (d->level != LVL_NONE && !conf)
        return conf_err_at(p, n->file, node_line(n), "\"%s\" directive is not allowed here",
                           n->name);
    if (ctx == CTX_LIF && d->level == LVL_LOC)
        p->if_lc_used = 1;

    const char *rv = d->set(p, d, conf);
    p->node = n;
    if (!rv)
        return 0;
    if (rv != CONF_ERROR)
        conf_err_at(p, n->file, node_line(n), "\"%s\" directive %s", n->name, rv);
    return -1;
}

/* Where a directive's setter may leave the walk when it fails half-way. */
struct walk_ctx {
    struct http_build *hb;
    struct srv_build *sb;
    struct loc_build *lb;
    struct ups_build *ub;
    struct loc_conf *lc;
    struct ssl_conf *ssl;
    struct rw_op **rw_tail;
    int if_lc_used;
};

/*
 * Run a block's directives. A failed one is reported and the walk goes on
 * with the next, in the block's own context, so that one run reports every
 * problem (nginx stops at the first); the block still fails. After
 * CONF_MAX_ERRORS the walk stops.
 */
#define CONF_MAX_ERRORS 100
static int run_block(struct conf_parser *p, const struct conf_node *n, unsigned ctx)
{
    const struct conf_node *saved = p->block_first;
    p->block_first = n;
    int failed = 0;
    for (; n; n = n->next) {
        struct walk_ctx w = {p->hb, p->sb, p->lb, p->ub, p->lc, p->ssl, p->rw_tail, p->if_lc_used};
        if (run_directive(p, n, ctx) == 0)
            continue;
        failed = 1;
        if (p->nerrors >= CONF_MAX_ERRORS || p->fatal)
            break;
        p->hb = w.hb;
        p->sb = w.sb;
        p->lb = w.lb;
        p->ub = w.ub;
        p->lc = w.lc;
        p->ssl = w.ssl;
        p->rw_tail = w.rw_tail;
        p->if_lc_used = w.if_lc_used;
    }
    p->block_first = saved;
    return failed ? -1 : 0;
}

int conf_run_block(struct conf_parser *p, const struct conf_node *n, unsigned ctx)
{
    return run_block(p, n, ctx);
}

int conf_directive_at(unsigned i, struct conf_directive_info *out)
{
    const struct directive *d = NULL;
    for (const struct directive *const *t = conf_module_tables; *t && !d; t++)
        for (const struct directive *x = *t; x->name; x++)
            if (i-- == 0) {
                d = x;
                break;
            }
    if (!d)
        return 0;
    out->name = d->name;
    out->ctx = d->ctx;
    out->min_args = ARGS_MIN(d->nargs);
    out->max_args = ARGS_MAX(d->nargs) == MANY ? CONF_ARGS_MANY : ARGS_MAX(d->nargs);
    out->block = (d->nargs & D_BLOCK) != 0;
    return 1;
}

/* ------------------------------------------------------------ http finish */

static struct upstream_conf *find_upstream(struct http_build *hb, struct str name)
{
    for (unsigned i = 0; i < hb->nups; i++) {
        struct upstream_conf *uc = hb->ups[i]->uc;
        if (strlen(uc->name) == name.len && strncasecmp(uc->name, name.p, name.len) == 0)
            return uc;
    }
    return NULL;
}

/* A new implicit group with default keep-alive settings, for proxy_pass at `pp`. */
static struct upstream_conf *implicit_group(struct conf_parser *p, const struct proxy_pass *pp,
                                           const char *name, unsigned npeers)
{
    struct http_build *hb = p->hb;
    struct upstream_conf *uc = arena_calloc(p->a, sizeof(*uc));
    struct upstream_conf **slot = PUSH(p, hb->implicit, hb->nimplicit);
    struct upstream_peer *peers = arena_calloc(p->a, (size_t)npeers * sizeof(*peers));
    if (!uc || !slot || !peers) {
        OOM(p);
        return NULL;
    }
    *slot = uc;
    uc->name = name;
    uc->implicit = 1;
    uc->file = pp->file;
    uc->line = pp->line;
    uc->keepalive_timeout = 60000;
    uc->keepalive_requests = 1000;
    uc->keepalive_time = 3600000;
    for (unsigned k = 0; k < npeers; k++) {
        peers[k].weight = 1;
        peers[k].max_fails = 1;
        peers[k].fail_timeout = 10000;
    }
    uc->peers = peers;
    uc->npeers = uc->nprimary = npeers;
    return uc;
}

/* The implicit group of `proxy_pass http://unix:PATH...`, named "unix:PATH"
 * (one per path, shared by every proxy_pass naming it). NULL after an error. */
static struct upstream_conf *unix_group(struct conf_parser *p, const struct pending_pass *pend)
{
    struct http_build *hb = p->hb;
    struct str path = pend->unix_path;
    for (unsigned k = 0; k < hb->nimplicit; k++) {
        const char *n = hb->implicit[k]->name;
        if (starts_with(n, "unix:") && strlen(n + 5) == path.len &&
            memcmp(n + 5, path.p, path.len) == 0)
            return hb->implicit[k];
    }
    const char *name = arena_printf(p->a, "unix:%.*s", (int)path.len, path.p);
    struct upstream_conf *uc = name ? implicit_group(p, pend->pp, name, 1) : NULL;
    if (!uc) {
        OOM(p);
        return NULL;
    }
    const char *e = unix_peer(p, path, &uc->peers[0]);
    if (e) {
        conf_err_at(p, pend->pp->file, pend->pp->line, "%s", e);
        return NULL;
    }
    return uc;
}

/* proxy_pass targets: upstream{} groups by name, else implicit groups (resolved now). */
static int resolve_passes(struct conf_parser *p)
{
    struct http_build *hb = p->hb;
    for (unsigned i = 0; i < hb->npasses; i++) {
        struct pending_pass *pend = &hb->passes[i];
        struct proxy_pass *pp = pend->pp;
        if (pend->unix_path.len) {
            if (!(pp->upstream = unix_group(p, pend)))
                return -1;
            continue;
        }
        struct upstream_conf *uc = find_upstream(hb, pend->host);
        if (uc) {
            if (!pend->no_port)
                return conf_err_at(p, pp->file, pp->line, "upstream \"%s\" may not have port %u",
                                   uc->name, pend->port);
            pp->upstream = uc; /* $proxy_host stays the name as written in proxy_pass */
            continue;
        }
        const char *key =
            arena_printf(p->a, "%.*s:%u", (int)pend->host.len, pend->host.p, pend->port);
        if (!key) {
            OOM(p);
            return -1;
        }
        for (unsigned k = 0; k < hb->nimplicit && !uc; k++)
            if (strcasecmp(hb->implicit[k]->name, key) == 0)
                uc = hb->implicit[k];
        if (!uc) {
            char *host = host_cstr(p, pend->host);
            struct sockaddr_storage *addrs = NULL;
            int n = host ? resolve(p, host, pend->port, &addrs) : -1;
            if (n < 0) {
                OOM(p);
                return -1;
            }
            if (n == 0)
                return conf_err_at(p, pp->file, pp->line, "host not found in upstream \"%.*s\"",
                                   (int)pend->host.len, pend->host.p);
            if (!(uc = implicit_group(p, pp, key, (unsigned)n)))
                return -1;
            for (int k = 0; k < n; k++) {
                struct upstream_peer *pe = &uc->peers[k];
                pe->addr = addrs[k];
                pe->addrlen = ss_len(&addrs[k]);
                pe->name = sockaddr_text(p, &addrs[k]);
                if (!pe->name) {
                    OOM(p);
                    return -1;
                }
            }
        }
        pp->upstream = uc;
    }

    struct http_conf *hc = hb->hc;
    hc->nupstreams = hb->nups + hb->nimplicit;
    hc->upstreams = arena_alloc(p->a, (hc->nupstreams + 1) * sizeof(*hc->upstreams));
    if (!hc->upstreams) {
        OOM(p);
        return -1;
    }
    unsigned k = 0;
    for (unsigned i = 0; i < hb->nups; i++)
        hc->upstreams[k++] = hb->ups[i]->uc;
    for (unsigned i = 0; i < hb->nimplicit; i++)
        hc->upstreams[k++] = hb->implicit[i];
    for (unsigned i = 0; i < k; i++)
        hc->upstreams[i]->index = i;
    return 0;
}

static int merge_ifs(struct conf_parser *p, const struct loc_conf *lc)
{
    for (const struct rw_op *op = lc->rewrite; op; op = op->next)
        if (op->type == RW_IF && op->u.cond.lc &&
            loc_conf_merge(p, op->u.cond.lc, lc, NULL, 1) != 0)
            return -1;
    return 0;
}

static int merge_locations(struct conf_parser *p, struct location *locs, unsigned n,
                           const struct loc_conf *parent)
{
    for (unsigned i = 0; i < n; i++) {
        struct location *l = &locs[i];
        if (loc_conf_merge(p, l->lc, parent, l, 0) != 0 || merge_ifs(p, l->lc) != 0)
            return -1;
        if (merge_locations(p, l->children, l->nchildren, l->lc) != 0)
            return -1;
    }
    return 0;
}

/* Register one level's access logs in g->log_paths (one fd per distinct path). */
static int register_logs(struct conf_parser *p, struct loc_conf *lc)
{
    struct generation *g = p->g;
    if (lc->access_log_off)
        return 0;
    for (unsigned i = 0; i < lc->naccess_logs; i++) {
        struct access_log *al = &lc->access_logs[i];
        unsigned k;
        for (k = 0; k < g->nlog_paths; k++)
            if (strcmp(g->log_paths[k], al->path) == 0)
                break;
        if (k == g->nlog_paths) {
            const char **slot = PUSH(p, g->log_paths, g->nlog_paths);
            if (!slot)
                return -1;
            *slot = al->path;
        }
        al->file_index = k;
    }
    for (const struct rw_op *op = lc->rewrite; op; op = op->next)
        if (op->type == RW_IF && op->u.cond.lc && register_logs(p, op->u.cond.lc) != 0)
            return -1;
    /* the conf of a limit_except block (conf/access.h) */
    if (lc->access && lc->access->lmt_lc && register_logs(p, lc->access->lmt_lc) != 0)
        return -1;
    return 0;
}

static int register_location_logs(struct conf_parser *p, struct location *locs, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (register_logs(p, locs[i].lc) != 0 ||
            register_location_logs(p, locs[i].children, locs[i].nchildren) != 0)
            return -1;
    return 0;
}

/* nginx ngx_http_server_names: only for addresses with more than one server. */
static int check_server_names(struct conf_parser *p, struct listen_conf *l)
{
    struct http_build *hb = p->hb;
    if (l->nservers < 2)
        return 0;
    struct seen {
        enum server_name_kind kind;
        struct str name;
    } *seen = NULL;
    unsigned nseen = 0;
    for (unsigned s = 0; s < l->nservers; s++) {
        const struct srv_build *sb = NULL;
        for (unsigned k = 0; k < hb->nservers && !sb; k++)
            if (hb->servers[k]->sc == l->servers[s])
                sb = hb->servers[k];
        for (unsigned i = 0; i < sb->nnames; i++) {
            const struct server_name *sn = &sb->names[i];
            if (sn->kind == SN_REGEX)
                continue;
            if (sb->sn[i].invalid)
                return conf_err_at(p, NULL, 0, "invalid server name or wildcard \"%s\" on %s",
                                   sb->sn[i].written, l->text);
            /* nginx keys: "*.x" and ".x" are the same wildcard key, and ".x"
             * also adds the exact key "x" */
            struct seen keys[2];
            unsigned nk = 0;
            keys[nk++] = (struct seen){sn->kind, sn->name};
            if (sn->dot_form)
                keys[nk++] = (struct seen){SN_EXACT, sn->name};
            int conflict = 0;
            for (unsigned k = 0; k < nk && !conflict; k++)
                for (unsigned j = 0; j < nseen && !conflict; j++)
                    conflict = seen[j].kind == keys[k].kind && str_eq(seen[j].name, keys[k].name);
            if (conflict) {
                conf_warn(p, "conflicting server name \"%s\" on %s, ignored", sb->sn[i].written,
                          l->text);
                continue;
            }
            for (unsigned k = 0; k < nk; k++) {
                struct seen *e = PUSH(p, seen, nseen);
                if (!e) {
                    OOM(p);
                    return -1;
                }
                *e = keys[k];
            }
        }
    }
    return 0;
}

/* nginx's ngx_http_ssl_merge_srv_conf: verifying client certificates needs CAs
 * (except optional_no_ca); checked for servers that do TLS. */
static int check_ssl_verify(struct conf_parser *p, const struct ssl_conf *s)
{
    if (!s->ncertificates && !s->reject_handshake)
        return 0;
    if (s->verify_client != SSL_VERIFY_CLIENT_OFF &&
        s->verify_client != SSL_VERIFY_CLIENT_OPTIONAL_NO_CA && !s->client_certificate &&
        !s->trusted_certificate)
        return conf_err_at(p, s->verify_at.file, s->verify_at.line,
                           "no ssl_client_certificate or ssl_trusted_certificate for "
                           "ssl_verify_client");
    return 0;
}

static int http_finish(struct conf_parser *p)
{
    struct http_build *hb = p->hb;
    struct http_conf *hc = hb->hc;

    /* 1. upstreams (nginx: upstream init_main_conf) */
    if (resolve_passes(p) != 0)
        return -1;

    /* 1b. every zone named by limit_req / limit_conn was declared */
    if (limits_finish(p) != 0)
        return -1;

    /* 1c. every cache named by proxy_cache was declared by proxy_cache_path */
    if (cache_finish(p, hb->node, hb->nservers) != 0)
        return -1;

    /* 2. merge every level (nginx: ngx_http_merge_servers) */
    if (loc_conf_merge(p, hc->lc, NULL, NULL, 0) != 0)
        return -1;
    ssl_conf_merge(hb->ssl, NULL);
    for (unsigned i = 0; i < hb->nservers; i++) {
        struct srv_build *sb = hb->servers[i];
        struct server_conf *sc = sb->sc;
        p->node = NULL;
        if (loc_conf_merge(p, sc->lc, hc->lc, NULL, 0) != 0 || merge_ifs(p, sc->lc) != 0)
            return -1;
        sc->http2 = sc->lc->http2;
        ssl_conf_merge(sb->ssl, hb->ssl);
        if (sb->ssl->ncertificates > sb->ssl->ncertificate_keys)
            return conf_err_at(p, sc->file, sc->line,
                               "no \"ssl_certificate_key\" is defined for certificate \"%s\"",
                               sb->ssl->certificates[sb->ssl->ncertificate_keys]);
        if (check_ssl_verify(p, sb->ssl) != 0)
            return -1;
        if (check_duplicate_locations(p, sb->locs, sb->nlocs) != 0)
            return -1;
        if (flatten_locations(p, sb->locs, sb->nlocs, &sc->locations, &sc->nlocations) != 0 ||
            flatten_locations(p, sb->named, sb->nnamed, &sc->named, &sc->nnamed) != 0) {
            OOM(p);
            return -1;
        }
        if (merge_locations(p, sc->locations, sc->nlocations, sc->lc) != 0 ||
            merge_locations(p, sc->named, sc->nnamed, sc->lc) != 0)
            return -1;
    }

    /* 3. listen ... ssl needs certificates (nginx: ssl postconfiguration);
     * `ssl on` in an address's default server makes the address TLS (nginx
     * <= 1.24 checked the default server's flag on each connection). */
    for (unsigned i = 0; i < hb->nservers; i++) {
        const struct ssl_conf *sc = hb->servers[i]->ssl;
        if (sc->enable == 1 && sc->ncertificates == 0 && !sc->reject_handshake)
            return conf_err_at(p, sc->enable_at.file, sc->enable_at.line,
                               "no \"ssl_certificate\" is defined for the \"ssl\" directive");
    }
    for (unsigned i = 0; i < hb->nlistens; i++) {
        struct listen_conf *l = hb->listens[i].l;
        const struct server_conf *def = l->default_server ? l->default_server
                                        : l->nservers        ? l->servers[0]
                                                             : NULL;
        if (def && def->ssl->enable == 1)
            l->ssl = 1;
        if (!l->ssl)
            continue;
        for (unsigned s = 0; s < l->nservers; s++)
            if (l->servers[s]->ssl->ncertificates == 0 && !l->servers[s]->ssl->reject_handshake)
                return conf_err_at(p, l->servers[s]->file, l->servers[s]->line,
                                   "no \"ssl_certificate\" is defined for the \"listen ... ssl\" "
                                   "directive");
    }

    /* 4. every variable must be known by now (nginx: ngx_http_variables_init_vars) */
    const struct var_ref *u = var_first_unresolved(&p->g->vars);
    if (u)
        return conf_err_at(p, u->file, u->line, "unknown \"%.*s\" variable", (int)u->full.len,
                           u->full.p);

    /* 5. listening addresses and server names (nginx: ngx_http_optimize_servers) */
    hc->nlistens = hb->nlistens;
    hc->listens = arena_alloc(p->a, (hb->nlistens + 1) * sizeof(*hc->listens));
    hc->nservers = hb->nservers;
    hc->servers = arena_alloc(p->a, (hb->nservers + 1) * sizeof(*hc->servers));
    if (!hc->listens || !hc->servers) {
        OOM(p);
        return -1;
    }
    for (unsigned i = 0; i < hb->nservers; i++)
        hc->servers[i] = hb->servers[i]->sc;
    for (unsigned i = 0; i < hb->nlistens; i++) {
        struct listen_conf *l = hb->listens[i].l;
        hc->listens[i] = l;
        l->index = i;
        if (!l->default_server)
            l->default_server = l->servers[0];
        if (l->backlog < 0)
            l->backlog = 511;
        if (l->ipv6only < 0)
            l->ipv6only = l->addr.ss_family == AF_INET6;
        if (check_server_names(p, l) != 0)
            return -1;
    }

    /* 6. access-log files actually used (http level alone is never used) */
    for (unsigned i = 0; i < hb->nservers; i++) {
        struct server_conf *sc = hb->servers[i]->sc;
        if (register_logs(p, sc->lc) != 0 ||
            register_location_logs(p, sc->locations, sc->nlocations) != 0 ||
            register_location_logs(p, sc->named, sc->nnamed) != 0) {
            OOM(p);
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ entry */

static void main_conf_unset(struct main_conf *m)
{
    memset(m, 0, sizeof(*m));
    m->worker_processes = CONF_UNSET;
    m->worker_connections = CONF_UNSET;
    m->worker_rlimit_nofile = CONF_UNSET;
    m->worker_shutdown_timeout = CONF_UNSET_U64;
    m->daemon = CONF_UNSET;
    m->master_process = CONF_UNSET;
    m->error_log_level = LOG_LVL_ERR;
    m->multi_accept = CONF_UNSET;
    m->accept_mutex = CONF_UNSET;
    m->worker_rlimit_core = CONF_UNSET_U64;
}

static int main_conf_finish(struct conf_parser *p)
{
    struct main_conf *m = &p->g->main;
    if (m->worker_processes == CONF_UNSET)
        m->worker_processes = 1;
    if (m->worker_connections == CONF_UNSET)
        m->worker_connections = 512;
    if (m->daemon == CONF_UNSET)
        m->daemon = 1;
    if (m->master_process == CONF_UNSET)
        m->master_process = 1;
    if (m->multi_accept == CONF_UNSET)
        m->multi_accept = 0;
    if (m->accept_mutex == CONF_UNSET)
        m->accept_mutex = 0;
    if (!m->pid_path && !(m->pid_path = conf_full_path(p, "logs/switchyard.pid")))
        return -1;
    if (!m->error_log_path) {
        m->error_log_path = conf_full_path(p, "logs/error.log");
        m->error_log_level = LOG_LVL_ERR;
        if (!m->error_log_path)
            return -1;
    }
    return 0;
}

int conf_build(struct conf_parser *p, const struct conf_node *gtree, const struct conf_node *tree)
{
    main_conf_unset(&p->g->main);
    p->g->vars.allow_forward = 1;
    int failed = run_block(p, gtree, CTX_MAIN) != 0 || run_block(p, tree, CTX_MAIN) != 0;
    absent_module_notes(p);
    if (failed)
        return -1;
    p->node = NULL;
    if (!p->events_seen)
        return conf_err_at(p, NULL, 0, "no \"events\" section in configuration");
    if (main_conf_finish(p) != 0) {
        OOM(p);
        return -1;
    }
    p->g->vars.allow_forward = 0;
    return 0;
}
