/*
 * static.c - serving files from disk with nginx's behaviour (see static.h).
 *
 * One call of static_handle() plays nginx's precontent and content phases for
 * one location:
 *
 *   try_files (if any) --match--> uri := element --+
 *        |                                          v
 *        +--last element--> INTERNAL/NAMED/STATUS   content(uri)
 *                                                     |
 *      uri ends in '/' --> index: first existing name -> INTERNAL uri+name
 *                                 none (dir exists)   -> AUTOINDEX (autoindex on,
 *                                                        GET/HEAD), else 403; no dir -> 404
 *      otherwise       --> open: dir -> 301 uri/, file -> validators
 *                                 -> 412 / 304 / 206 / 416 / 200
 *
 * Mapping a URI to a path follows ngx_http_map_uri_to_path(): root + uri;
 * alias in a prefix location replaces the location's pattern; alias in a
 * regex location is the whole path. Relative roots are joined to the -p
 * prefix. nginx's exit points (errno -> status) are reproduced; see the
 * comments where behaviour deliberately differs: ".." segments and NUL are
 * refused (which also closes the alias "off-by-slash" hole), several ranges
 * get the whole file, and a try_files fallback under alias is used as
 * written.
 *
 * Nothing here owns memory beyond the request arena `a`, except the file
 * descriptor handed to the caller on STATIC_SEND.
 */
#include "http/static.h"

#include "http/byteranges.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"

#ifndef O_PATH
#define O_PATH O_RDONLY /* pre-2.6.39 kernels: search with a plain read-only open */
#endif

/* Internal step results. */
#define ST_NEXT 0   /* declined: continue with the next phase */
#define ST_DONE 1   /* `out` is filled in */
#define ST_ERR (-1) /* allocation failure */

enum st_method { M_GET, M_HEAD, M_POST, M_OTHER };

enum map_mode {
    MAP_ROOT,       /* path = root + uri */
    MAP_ALIAS,      /* prefix/exact location: path = alias + uri[pattern.len..] */
    MAP_ALIAS_FULL, /* regex location: path = alias (+ uri after a try_files file match) */
};

struct st_req {
    const struct static_input *in;
    const struct loc_conf *lc;
    struct arena *a;
    struct str uri; /* current URI: try_files may replace it */
    enum map_mode mode;
    struct str base;      /* evaluated root or alias, prefix-joined (arena) */
    unsigned base_dotdot; /* ".." segments the administrator wrote in `base` */
    size_t alias_len;     /* MAP_ALIAS: length of the location pattern */
    int add_uri_to_alias; /* MAP_ALIAS_FULL: append uri (try_files matched a file) */
    enum st_method method;
    int symlinks; /* STATIC_SYMLINKS_* */
};

/* ------------------------------------------------------------ small helpers */

static int has_nul(struct str s)
{
    return s.len && memchr(s.p, '\0', s.len) != NULL;
}

/* Number of ".." path segments (bounded by the ends or '/'). */
static unsigned count_dotdot(struct str s)
{
    unsigned n = 0;
    size_t i = 0;
    while (i < s.len) {
        size_t j = i;
        while (j < s.len && s.p[j] != '/')
            j++;
        if (j - i == 2 && s.p[i] == '.' && s.p[i + 1] == '.')
            n++;
        i = j + 1;
    }
    return n;
}

/* A value derived from the request may never carry NUL or climb with "..". */
static int unsafe_value(struct str s)
{
    return has_nul(s) || count_dotdot(s) > 0;
}

/*
 * Did joining request-derived text to the base create a ".." segment? This
 * closes nginx's "off-by-slash" hole: with `location /assets { alias
 * /data/; }`, nginx serves "/assets../etc/x" from "/data/../etc/x".
 */
static int path_escapes(const struct st_req *r, const char *path, size_t len)
{
    return count_dotdot((struct str){path, len}) > r->base_dotdot;
}

/* Concatenate three slices into a NUL-terminated arena string. */
static char *join3(struct arena *a, struct str x, struct str y, struct str z, size_t *len)
{
    size_t n = x.len + y.len + z.len;
    char *p = arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (x.len)
        memcpy(p, x.p, x.len);
    if (y.len)
        memcpy(p + x.len, y.p, y.len);
    if (z.len)
        memcpy(p + x.len + y.len, z.p, z.len);
    p[n] = '\0';
    if (len)
        *len = n;
    return p;
}

/* nginx's NGX_ESCAPE_URI set: controls, space, DEL, non-ASCII and
 * " # % < > ? \ ^ ` { | } */
static int esc_uri_byte(unsigned char c)
{
    return c <= 0x20 || c >= 0x7f || strchr("\"#%<>?\\^`{|}", c) != NULL;
}

char *static_dir_location(struct arena *a, struct str uri, size_t *len)
{
    char *p = arena_alloc(a, 3 * uri.len + 2);
    if (!p)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < uri.len; i++) {
        unsigned char c = (unsigned char)uri.p[i];
        if (esc_uri_byte(c)) {
            p[o++] = '%';
            p[o++] = "0123456789ABCDEF"[c >> 4];
            p[o++] = "0123456789ABCDEF"[c & 15];
        } else {
            p[o++] = (char)c;
        }
    }
    p[o++] = '/';
    p[o] = '\0';
    *len = o;
    return p;
}

static struct str str_slice(struct str s, size_t from)
{
    return from >= s.len ? (struct str){s.p ? s.p + s.len : NULL, 0}
                         : (struct str){s.p + from, s.len - from};
}

static int starts_with(struct str s, struct str prefix)
{
    return s.len >= prefix.len && (prefix.len == 0 || memcmp(s.p, prefix.p, prefix.len) == 0);
}

/* Evaluate a template through the session's callback (constant ones need none). */
static int eval_tmpl(const struct st_req *r, const struct tmpl *t, struct str *out)
{
    if (r->in->eval)
        return r->in->eval(r->in->eval_ctx, t, out);
    if (!t->constant)
        return -1;
    *out = t->raw;
    return 0;
}

static void set_status(struct static_result *out, int status)
{
    out->action = STATIC_STATUS;
    out->status = status;
}

/* set_status() for the step functions: the answer is decided. */
static int status_done(struct static_result *out, int status)
{
    set_status(out, status);
    return ST_DONE;
}

/* --------------------------------------------------- opening without symlinks */

/*
 * Open one path component `name` relative to `at`. With disable_symlinks on,
 * O_NOFOLLOW makes a symlink fail (ELOOP for the final component; for a
 * directory component opened with O_PATH|O_DIRECTORY it fails ENOTDIR, as in
 * nginx). With if_not_owner the link is followed, then its owner is compared
 * with the owner of what was opened; a difference fails with ELOOP.
 */
static int open_component(int at, const char *name, int flags, int symlinks)
{
    if (symlinks == STATIC_SYMLINKS_ON)
        return openat(at, name, flags | O_NOFOLLOW | O_CLOEXEC);

    int fd = openat(at, name, flags | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat link_st, file_st;
    int err = 0;
    if (fstatat(at, name, &link_st, AT_SYMLINK_NOFOLLOW) < 0 || fstat(fd, &file_st) < 0)
        err = errno;
    else if (link_st.st_uid != file_st.st_uid)
        err = ELOOP;
    if (err) {
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/*
 * Open `path` (NUL-terminated) with `flags`, honouring disable_symlinks.
 * `off` uses one open(2). Otherwise each component is opened relative to the
 * previous one from "/" (nginx's ngx_open_file_wrapper walk; openat2's
 * RESOLVE_NO_SYMLINKS would answer ELOOP for directory components where nginx
 * answers ENOTDIR, so the walk is used everywhere). Returns a descriptor or -1
 * with errno set.
 */
static int open_path(const char *path, int flags, int symlinks)
{
    if (symlinks == STATIC_SYMLINKS_OFF)
        return open(path, flags | O_CLOEXEC);

    int at = AT_FDCWD;
    const char *p = path;
    if (*p == '/') {
        at = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (at < 0)
            return -1;
        p++;
    }

    int fd, err;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (!slash)
            break;
        if (slash == p) {
            p++;
            continue;
        }
        size_t n = (size_t)(slash - p);
        char comp[NAME_MAX + 1];
        if (n > NAME_MAX) {
            err = ENAMETOOLONG;
            goto fail;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        fd = open_component(at, comp, O_PATH | O_DIRECTORY, symlinks);
        if (fd < 0) {
            err = errno;
            goto fail;
        }
        if (at != AT_FDCWD)
            close(at);
        at = fd;
        p = slash + 1;
    }

    if (*p == '\0') /* trailing slash (or "/"): reopen the directory itself */
        fd = openat(at, ".", flags | O_CLOEXEC);
    else
        fd = open_component(at, p, flags, symlinks);
    err = fd < 0 ? errno : 0;
    if (at != AT_FDCWD)
        close(at);
    errno = err;
    return fd;

fail:
    if (at != AT_FDCWD)
        close(at);
    errno = err;
    return -1;
}

/*
 * "Test only" lookup (try_files, index): stat(2) when symlinks are allowed,
 * otherwise open through the checked walk and fstat, like nginx.
 */
static int stat_path(const char *path, int symlinks, struct stat *st)
{
    if (symlinks == STATIC_SYMLINKS_OFF)
        return stat(path, st);
    int fd = open_path(path, O_RDONLY | O_NONBLOCK, symlinks);
    if (fd < 0)
        return -1;
    int rc = fstat(fd, st);
    int err = errno;
    close(fd);
    errno = err;
    return rc;
}

/* ------------------------------------------------------------- mapping */

/* Path for a URI (nginx ngx_http_map_uri_to_path) followed by `extra`. */
static char *map_uri(const struct st_req *r, struct str uri, struct str extra, size_t *len)
{
    struct str tail = uri;
    if (r->mode == MAP_ALIAS)
        tail = str_slice(uri, r->alias_len);
    else if (r->mode == MAP_ALIAS_FULL && !r->add_uri_to_alias)
        tail = STR_NULL;
    return join3(r->a, r->base, tail, extra, len);
}

/*
 * Evaluate root or alias and decide how URIs map to paths. Returns 0, a
 * status (500) to answer, or ST_ERR.
 */
static int setup_base(struct st_req *r)
{
    const struct loc_conf *lc = r->lc;
    const struct tmpl *t = lc->alias ? lc->alias : lc->root;
    struct str v;

    if (lc->alias) {
        const struct location *loc = r->in->loc;
        if (!loc || loc->match == LOC_NAMED)
            return 500;
        if (loc->match == LOC_REGEX || loc->match == LOC_REGEX_ICASE) {
            r->mode = MAP_ALIAS_FULL;
        } else {
            /* nginx refuses alias when the URI no longer starts with the
             * location ("alias cannot be used ... where URI was rewritten") */
            if (!starts_with(r->uri, loc->pattern))
                return 500;
            r->mode = MAP_ALIAS;
            r->alias_len = loc->pattern.len;
        }
    } else {
        r->mode = MAP_ROOT;
    }

    if (t) {
        if (eval_tmpl(r, t, &v) < 0)
            return 500;
    } else {
        v = STR_LIT("html"); /* nginx's default root */
    }
    /* A variable may not smuggle in NUL or extra ".." segments. The
     * administrator's own text (e.g. "root ../www") is allowed. */
    if (has_nul(v) || (t && !t->constant && count_dotdot(v) > count_dotdot(t->raw)))
        return 404;

    int relative = v.len == 0 || v.p[0] != '/';
    if (!lc->alias && v.len > 1 && v.p[v.len - 1] == '/')
        v.len--; /* "root /srv/" is "/srv"; alias keeps its slash */

    struct str prefix = STR_NULL;
    if (relative && r->in->prefix)
        prefix = str_from_cstr(r->in->prefix);
    size_t n;
    char *p = join3(r->a, prefix, v, STR_NULL, &n);
    if (!p)
        return ST_ERR;
    r->base = (struct str){p, n};
    r->base_dotdot = count_dotdot(r->base);
    return 0;
}

/* ------------------------------------------------------------ HTTP dates */

static const char wday_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") in the arena. */
static struct str http_date(struct arena *a, time_t t)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return STR_NULL;
    char *p =
        arena_printf(a, "%s, %02d %s %04d %02d:%02d:%02d GMT", wday_names[tm.tm_wday], tm.tm_mday,
                     month_names[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return p ? str_from_cstr(p) : STR_NULL;
}

/* Cursor helpers for the date parser: each returns 0 on mismatch. */
static int take_digits(const char **p, const char *e, unsigned n, int *out)
{
    int v = 0;
    for (unsigned i = 0; i < n; i++) {
        if (*p >= e || **p < '0' || **p > '9')
            return 0;
        v = v * 10 + (*(*p)++ - '0');
    }
    *out = v;
    return 1;
}

static int take_char(const char **p, const char *e, char c)
{
    if (*p >= e || **p != c)
        return 0;
    (*p)++;
    return 1;
}

static int take_month(const char **p, const char *e, int *mon)
{
    if (e - *p < 3)
        return 0;
    for (int i = 0; i < 12; i++) {
        if (memcmp(*p, month_names[i], 3) == 0) {
            *mon = i;
            *p += 3;
            return 1;
        }
    }
    return 0;
}

static int take_hms(const char **p, const char *e, struct tm *tm)
{
    return take_digits(p, e, 2, &tm->tm_hour) && take_char(p, e, ':') &&
           take_digits(p, e, 2, &tm->tm_min) && take_char(p, e, ':') &&
           take_digits(p, e, 2, &tm->tm_sec);
}

/*
 * Parse an HTTP date in any of the three forms RFC 9110 requires recipients
 * to accept: "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT"
 * and asctime "Sun Nov  6 08:49:37 1994". Like nginx, the weekday is not
 * checked and anything after the time/year is ignored. Returns the time, or
 * -1 when the value is not a date.
 */
static time_t parse_http_date(struct str s)
{
    const char *p = s.p, *e = s.p + s.len;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));

    while (p < e && *p != ',' && *p != ' ')
        p++;
    if (p == e)
        return -1;
    if (*p == ',') {
        p++;
        while (p < e && *p == ' ')
            p++;
        if (!take_digits(&p, e, 2, &tm.tm_mday))
            return -1;
        if (p < e && *p == ' ') { /* IMF-fixdate */
            p++;
            if (!take_month(&p, e, &tm.tm_mon) || !take_char(&p, e, ' ') ||
                !take_digits(&p, e, 4, &tm.tm_year))
                return -1;
        } else if (p < e && *p == '-') { /* RFC 850 */
            p++;
            if (!take_month(&p, e, &tm.tm_mon) || !take_char(&p, e, '-') ||
                !take_digits(&p, e, 2, &tm.tm_year))
                return -1;
            tm.tm_year += tm.tm_year < 70 ? 2000 : 1900;
        } else {
            return -1;
        }
        if (!take_char(&p, e, ' ') || !take_hms(&p, e, &tm))
            return -1;
    } else { /* asctime */
        p++;
        if (!take_month(&p, e, &tm.tm_mon) || !take_char(&p, e, ' '))
            return -1;
        if (p < e && *p == ' ')
            p++;
        if (!take_digits(&p, e, 1, &tm.tm_mday))
            return -1;
        int d2;
        if (p < e && *p != ' ') {
            if (!take_digits(&p, e, 1, &d2))
                return -1;
            tm.tm_mday = tm.tm_mday * 10 + d2;
        }
        if (!take_char(&p, e, ' ') || !take_hms(&p, e, &tm) || !take_char(&p, e, ' ') ||
            !take_digits(&p, e, 4, &tm.tm_year))
            return -1;
    }

    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = tm.tm_year;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59 || tm.tm_mday < 1 ||
        tm.tm_mday > mdays[tm.tm_mon] || (tm.tm_mon == 1 && tm.tm_mday == 29 && !leap))
        return -1;
    tm.tm_year -= 1900;
    return timegm(&tm);
}

/* ---------------------------------------------------------- validators */

/*
 * Is `etag` in the comma-separated entity-tag list? With `weak`, "W/" is
 * ignored on both sides (If-None-Match); without, tags compare byte for byte
 * (If-Match). Only a list that is exactly "*" matches anything.
 */
static int etag_list_match(struct str list, struct str etag, int weak)
{
    if (list.len == 1 && list.p[0] == '*')
        return 1;
    if (etag.len == 0)
        return 0;
    if (weak && etag.len > 2 && etag.p[0] == 'W' && etag.p[1] == '/')
        etag = str_slice(etag, 2);

    size_t i = 0;
    while (i < list.len) {
        while (i < list.len && (list.p[i] == ' ' || list.p[i] == '\t' || list.p[i] == ','))
            i++;
        size_t j = i;
        while (j < list.len && list.p[j] != ',')
            j++;
        struct str tok = {list.p + i, j - i};
        while (tok.len && (tok.p[tok.len - 1] == ' ' || tok.p[tok.len - 1] == '\t'))
            tok.len--;
        if (weak && tok.len > 2 && tok.p[0] == 'W' && tok.p[1] == '/')
            tok = str_slice(tok, 2);
        if (tok.len && str_eq(tok, etag))
            return 1;
        i = j;
    }
    return 0;
}

/*
 * nginx's not-modified filter, in its order: If-Unmodified-Since, If-Match
 * (412 on failure), then If-Modified-Since and If-None-Match. Note nginx does
 * NOT let If-None-Match override If-Modified-Since: when both are present,
 * both must say "not modified" for a 304. Returns 200, 304 or 412.
 */
static int check_conditions(const struct st_req *r, time_t mtime, struct str etag)
{
    const struct static_input *in = r->in;

    if (in->if_unmodified_since.len) {
        time_t t = parse_http_date(in->if_unmodified_since);
        if (t == (time_t)-1 || t < mtime) /* an unparsable date fails too */
            return 412;
    }
    if (in->if_match.len && !etag_list_match(in->if_match, etag, 0))
        return 412;

    if (!in->if_modified_since.len && !in->if_none_match.len)
        return 200;

    if (in->if_modified_since.len) {
        if (r->lc->if_modified_since == 0) /* if_modified_since off */
            return 200;
        time_t t = parse_http_date(in->if_modified_since);
        if (t != mtime) {
            /* exact: only equality means unmodified; before: t >= mtime */
            if (r->lc->if_modified_since != 2 || t == (time_t)-1 || t < mtime)
                return 200;
        }
    }
    if (in->if_none_match.len && !etag_list_match(in->if_none_match, etag, 1))
        return 200;
    return 304;
}

/* ------------------------------------------------------------------ ranges */

enum range_rc { RANGE_IGNORE, RANGE_ONE, RANGE_MULTI, RANGE_UNSATISFIABLE };

static int take_off(const char **p, const char *e, off_t *out)
{
    const off_t max = (off_t)INT64_MAX;
    off_t v = 0;
    if (*p >= e || **p < '0' || **p > '9')
        return 0;
    while (*p < e && **p >= '0' && **p <= '9') {
        int d = *(*p)++ - '0';
        if (v > (max - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

static void skip_sp(const char **p, const char *e)
{
    while (*p < e && **p == ' ')
        (*p)++;
}

/*
 * Parse "bytes=..." after the caller checked the prefix, with nginx's rules:
 * a syntax error or a set of ranges none of which starts inside the file is
 * 416; a range starting at 0 of an empty file makes nginx ignore the header;
 * ranges adding up to more than the file are ignored. One satisfiable range
 * is stored in [*first, *last] (inclusive).
 */
static enum range_rc parse_range(struct str v, off_t size, off_t *first, off_t *last)
{
    const char *p = v.p + 6, *e = v.p + v.len;
    unsigned count = 0;
    off_t total = 0;

    for (;;) {
        off_t start = 0, end = 0;
        int suffix = 0;

        skip_sp(&p, e);
        if (p < e && *p == '-') {
            suffix = 1;
            p++;
        } else {
            if (!take_off(&p, e, &start))
                return RANGE_UNSATISFIABLE;
            skip_sp(&p, e);
            if (!take_char(&p, e, '-'))
                return RANGE_UNSATISFIABLE;
            skip_sp(&p, e);
            if (p == e || *p == ',') {
                end = size; /* "a-": to the end (exclusive bound) */
                goto found;
            }
        }
        if (!take_off(&p, e, &end))
            return RANGE_UNSATISFIABLE;
        skip_sp(&p, e);
        if (p < e && *p != ',')
            return RANGE_UNSATISFIABLE;
        if (suffix) { /* "-n": the last n bytes */
            start = end < size ? size - end : 0;
            end = size - 1;
        }
        end = end >= size ? size : end + 1; /* to an exclusive bound */

    found:
        if (start < end) {
            if (count++ == 0) {
                *first = start;
                *last = end - 1;
            }
            if (total > (off_t)INT64_MAX - (end - start))
                return RANGE_UNSATISFIABLE;
            total += end - start;
        } else if (start == 0) {
            return RANGE_IGNORE;
        }
        if (p == e)
            break;
        p++; /* ',' */
    }

    if (count == 0)
        return RANGE_UNSATISFIABLE;
    if (total > size)
        return RANGE_IGNORE;
    return count == 1 ? RANGE_ONE : RANGE_MULTI;
}

/* ---------------------------------------------------------------- serving */

/* nginx's $exten: after the last '.' of the last segment, not a leading dot. */
static struct str uri_exten(struct str uri)
{
    for (size_t i = uri.len; i-- > 2;) {
        if (uri.p[i] == '.' && uri.p[i - 1] != '/')
            return (struct str){uri.p + i + 1, uri.len - i - 1};
        if (uri.p[i] == '/')
            break;
    }
    return STR_NULL;
}

static struct str content_type(const struct st_req *r)
{
    struct str ext = uri_exten(r->uri);
    if (ext.len && r->lc->types) {
        struct str t = mime_types_find(r->lc->types, ext);
        if (t.p && t.len)
            return t;
    }
    return r->lc->default_type;
}

/*
 * A regular file is open: compute validators, evaluate the conditional and
 * range headers and fill `out`. Takes ownership of `fd` (passed on to the
 * caller with STATIC_SEND, closed otherwise).
 */
static int serve_file(const struct st_req *r, int fd, const struct stat *st,
                      struct static_result *out)
{
    struct arena *a = r->a;
    time_t mtime = st->st_mtime;
    off_t size = st->st_size;

    out->file_size = size;
    out->last_modified = http_date(a, mtime);
    if (!out->last_modified.p)
        goto nomem;
    if (r->lc->etag) {
        char *e =
            arena_printf(a, "\"%llx-%llx\"", (unsigned long long)mtime, (unsigned long long)size);
        if (!e)
            goto nomem;
        out->etag = str_from_cstr(e);
    }

    int cond = check_conditions(r, mtime, out->etag);
    if (cond == 412) {
        close(fd);
        out->last_modified = out->etag = STR_NULL;
        set_status(out, 412);
        return ST_DONE;
    }
    if (cond == 304) {
        /* nginx keeps Last-Modified and ETag, drops type, length and
         * Accept-Ranges */
        close(fd);
        out->action = STATIC_NOT_MODIFIED;
        out->status = 304;
        return ST_DONE;
    }

    struct str ct = content_type(r);
    if (ct.len) {
        out->content_type = arena_str(a, ct);
        if (!out->content_type.p)
            goto nomem;
    }
    out->action = STATIC_SEND;
    out->status = 200;
    out->fd = fd;
    out->offset = 0;
    out->length = size;
    out->accept_ranges = 1;

    const struct static_input *in = r->in;
    if (in->no_ranges) { /* max_ranges 0: no ranges at all */
        out->accept_ranges = 0;
        return ST_DONE;
    }
    if (in->range.len < 7 || !str_caseeq((struct str){in->range.p, 6}, STR_LIT("bytes=")))
        return ST_DONE; /* not a byte range: ignored, like nginx */
    if (in->ranges_ok && !in->ranges_ok(in->eval_ctx, out->content_type)) {
        out->accept_ranges = 0;
        return ST_DONE;
    }

    if (in->if_range.len) {
        struct str ir = in->if_range;
        if (ir.len >= 2 && ir.p[ir.len - 1] == '"') {
            if (!out->etag.len || !str_eq(ir, out->etag))
                return ST_DONE; /* entity changed: whole file */
        } else if (parse_http_date(ir) != mtime) {
            return ST_DONE;
        }
    }

    off_t first = 0, last = 0;
    switch (parse_range(in->range, size, &first, &last)) {
    case RANGE_IGNORE:
        return ST_DONE;
    case RANGE_MULTI: {
        /* several ranges: nginx's multipart/byteranges body (http/byteranges.h) */
        struct byterange rg[BYTERANGES_MAX];
        unsigned n;
        enum byteranges_rc rc = byteranges_parse(in->range, (uint64_t)size, rg, &n,
                                                 in->max_ranges ? in->max_ranges : INT64_MAX);
        if (rc == BYTERANGES_IGNORE)
            return ST_DONE;
        if (rc == BYTERANGES_UNSATISFIABLE) {
            close(fd);
            out->fd = -1;
            out->offset = out->length = 0;
            out->accept_ranges = 0;
            out->content_type = out->last_modified = out->etag = STR_NULL;
            char *cr = arena_printf(a, "bytes */%lld", (long long)size);
            if (!cr)
                return ST_ERR;
            out->content_range = str_from_cstr(cr);
            set_status(out, 416);
            return ST_DONE;
        }
        if (n == 1) { /* one range left: a single part */
            char *cr = arena_printf(a, "bytes %llu-%llu/%lld", (unsigned long long)rg[0].from,
                                    (unsigned long long)rg[0].to, (long long)size);
            if (!cr)
                goto nomem;
            out->content_range = str_from_cstr(cr);
            out->status = 206;
            out->offset = (off_t)rg[0].from;
            out->length = (off_t)(rg[0].to - rg[0].from + 1);
            out->accept_ranges = 0;
            return ST_DONE;
        }
        char *body;
        size_t blen;
        struct str ctype;
        if (byteranges_multipart(a, fd, 0, (uint64_t)size, rg, n, out->content_type, &body,
                                 &blen, &ctype) < 0)
            return ST_DONE; /* too large, or unreadable: the whole file */
        close(fd);
        out->fd = -1;
        out->body = body;
        out->body_len = blen;
        out->content_type = ctype;
        out->status = 206;
        out->accept_ranges = 0;
        return ST_DONE;
    }
    case RANGE_UNSATISFIABLE: {
        close(fd);
        out->fd = -1;
        out->offset = out->length = 0;
        out->accept_ranges = 0;
        out->content_type = out->last_modified = out->etag = STR_NULL;
        char *cr = arena_printf(a, "bytes */%lld", (long long)size);
        if (!cr)
            return ST_ERR;
        out->content_range = str_from_cstr(cr);
        set_status(out, 416);
        return ST_DONE;
    }
    case RANGE_ONE: {
        char *cr = arena_printf(a, "bytes %lld-%lld/%lld", (long long)first, (long long)last,
                                (long long)size);
        if (!cr)
            goto nomem;
        out->content_range = str_from_cstr(cr);
        out->status = 206;
        out->offset = first;
        out->length = last - first + 1;
        out->accept_ranges = 0; /* nginx sends Accept-Ranges only with 200 */
        return ST_DONE;
    }
    }
    return ST_DONE;

nomem:
    close(fd);
    out->fd = -1;
    return ST_ERR;
}

/* errno of a failed open -> status, as ngx_http_static_handler maps it. */
static int open_errno_status(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
        return 404;
    case EACCES:
    case ELOOP:
    case EMLINK:
        return 403;
    default:
        return 500;
    }
}

/*
 * gzip_static / brotli_static (nginx's ngx_http_gzip_static_module, before
 * the static handler): the first variant that is a regular file is served
 * (ST_DONE); none: ST_NEXT, the file itself.
 */
static int static_variant(const struct st_req *r, struct static_result *out)
{
    if (r->method != M_GET && r->method != M_HEAD)
        return ST_NEXT;
    for (unsigned i = 0; i < r->in->nvariants; i++) {
        const struct static_variant *v = &r->in->variants[i];
        size_t len;
        const char *path = map_uri(r, r->uri, v->suffix, &len);
        if (!path)
            return ST_ERR;
        if (path_escapes(r, path, len))
            continue;
        int fd = open_path(path, O_RDONLY | O_NONBLOCK, r->symlinks);
        if (fd < 0)
            continue; /* nginx declines on every error */
        struct stat st;
        int regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
        if (!regular || v->probe_only) {
            out->variant_seen |= regular;
            close(fd);
            continue;
        }
        out->variant = v;
        return serve_file(r, fd, &st, out);
    }
    return ST_NEXT;
}

/* nginx's static handler for a URI not ending in '/'. */
static int static_file(const struct st_req *r, struct static_result *out)
{
    if (r->method == M_OTHER)
        return status_done(out, 405);
    if (r->in->nvariants) {
        int rc = static_variant(r, out);
        if (rc != ST_NEXT)
            return rc;
    }

    size_t len;
    const char *path = map_uri(r, r->uri, STR_NULL, &len);
    if (!path)
        return ST_ERR;
    if (path_escapes(r, path, len))
        return status_done(out, 404);
    int fd = open_path(path, O_RDONLY | O_NONBLOCK, r->symlinks);
    if (fd < 0)
        return status_done(out, open_errno_status(errno));

    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return status_done(out, 500);
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        /* the session adds scheme/host (absolute_redirect) and "?args" */
        size_t loclen;
        char *loc = static_dir_location(r->a, r->uri, &loclen);
        if (!loc)
            return ST_ERR;
        out->action = STATIC_REDIRECT;
        out->status = 301;
        out->location = (struct str){loc, loclen};
        return ST_DONE;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return status_done(out, 404);
    }
    if (r->method == M_POST) { /* nginx: 405 only once the file is found */
        close(fd);
        return status_done(out, 405);
    }
    return serve_file(r, fd, &st, out);
}

/*
 * Check that the directory being indexed exists (nginx's
 * ngx_http_index_test_dir): ST_NEXT when it does or cannot be searched but
 * was reachable, else a status in `out`.
 */
static int index_test_dir(const struct st_req *r, struct static_result *out)
{
    size_t len;
    char *dir = map_uri(r, r->uri, STR_NULL, &len);
    if (!dir)
        return ST_ERR;
    if (path_escapes(r, dir, len))
        return status_done(out, 404);
    if (len > 1 && dir[len - 1] == '/')
        dir[len - 1] = '\0';
    struct stat st;
    if (stat_path(dir, r->symlinks, &st) < 0) {
        switch (errno) {
        case ELOOP:
        case EMLINK:
            return status_done(out, 403);
        case ENOENT:
            return status_done(out, 404);
        case EACCES:
            return ST_NEXT;
        default:
            return status_done(out, 500);
        }
    }
    if (!S_ISDIR(st.st_mode))
        return status_done(out, 500);
    return ST_NEXT;
}

/* nginx's index module for a URI ending in '/'. ST_NEXT when no index exists. */
static int static_index(const struct st_req *r, struct static_result *out)
{
    const struct loc_conf *lc = r->lc;
    int dir_tested = 0;

    for (unsigned i = 0; i < lc->nindex; i++) {
        struct str name;
        if (eval_tmpl(r, &lc->index[i], &name) < 0)
            return status_done(out, 500);
        if (name.len == 0 || unsafe_value(name))
            continue;

        if (name.p[0] == '/') { /* absolute index: redirect without testing */
            out->action = STATIC_INTERNAL;
            out->target = arena_str(r->a, name);
            return out->target.p ? ST_DONE : ST_ERR;
        }

        size_t len;
        const char *path = map_uri(r, r->uri, name, &len);
        if (!path)
            return ST_ERR;
        if (path_escapes(r, path, len))
            return status_done(out, 404);
        struct stat st;
        if (stat_path(path, r->symlinks, &st) == 0) {
            size_t n;
            char *target = join3(r->a, r->uri, name, STR_NULL, &n);
            if (!target)
                return ST_ERR;
            out->action = STATIC_INTERNAL;
            out->target = (struct str){target, n};
            return ST_DONE;
        }

        int err = errno;
        switch (err) {
        case ELOOP:
        case EMLINK:
        case EACCES:
            return status_done(out, 403);
        case ENOTDIR:
        case ENAMETOOLONG:
            return status_done(out, 404);
        default:
            break;
        }
        if (!dir_tested) {
            int rc = index_test_dir(r, out);
            if (rc != ST_NEXT)
                return rc;
            dir_tested = 1;
        }
        if (err != ENOENT)
            return status_done(out, 500);
    }
    return ST_NEXT;
}

/* autoindex: the directory to list (nginx's path, without its trailing '/'). */
static int static_autoindex(const struct st_req *r, struct static_result *out)
{
    size_t len;
    char *dir = map_uri(r, r->uri, STR_NULL, &len);
    if (!dir)
        return ST_ERR;
    if (path_escapes(r, dir, len))
        return status_done(out, 404);
    if (len > 1 && dir[len - 1] == '/')
        dir[--len] = '\0';
    out->action = STATIC_AUTOINDEX;
    out->status = 200;
    out->dir = (struct str){dir, len};
    return ST_DONE;
}

/* nginx's content phase for the current URI. */
static int static_content(const struct st_req *r, struct static_result *out)
{
    if (r->uri.len && r->uri.p[r->uri.len - 1] == '/') {
        if (r->method != M_OTHER) {
            int rc = static_index(r, out);
            if (rc != ST_NEXT)
                return rc;
            if (r->lc->autoindex.enable && r->method != M_POST)
                return static_autoindex(r, out);
            /* no index file: nginx's "directory index ... is forbidden" */
            return status_done(out, 403);
        }
        return status_done(out, 405);
    }
    return static_file(r, out);
}

/*
 * Parse a try_files fallback "=code" (nginx accepts 0..999). Returns the code
 * or -1 when `v` is not of that form.
 */
static int fallback_code(struct str v)
{
    if (v.len < 2 || v.len > 4 || v.p[0] != '=')
        return -1;
    uint64_t code;
    if (str_to_u64(str_slice(v, 1), 999, &code) < 0)
        return -1;
    return (int)code;
}

/*
 * nginx's try_files: the first element naming an existing file (or, with a
 * trailing '/', directory) becomes the URI and processing continues in this
 * location (ST_NEXT); otherwise the last element is the fallback.
 */
static int static_try_files(struct st_req *r, struct static_result *out)
{
    const struct loc_conf *lc = r->lc;
    struct arena *a = r->a;

    for (unsigned i = 0; i < lc->ntry_files; i++) {
        const struct tmpl *t = &lc->try_files[i];
        int last = i + 1 == lc->ntry_files;
        struct str v;
        if (eval_tmpl(r, t, &v) < 0)
            return status_done(out, 500);

        if (last) {
            int code = fallback_code(v);
            if (code >= 0)
                return status_done(out, code);
            if (v.len && v.p[0] == '@') {
                out->action = STATIC_NAMED;
                out->target = arena_str(a, str_slice(v, 1));
                return out->target.p ? ST_DONE : ST_ERR;
            }
            /* Note: with alias nginx also strips the location prefix from the
             * fallback URI (a long-standing quirk that breaks the redirect);
             * we use the URI as written. */
            const char *q = v.len ? memchr(v.p, '?', v.len) : NULL;
            struct str uri = v, args = STR_NULL;
            if (q) {
                uri.len = (size_t)(q - v.p);
                args = (struct str){q + 1, v.len - uri.len - 1};
            }
            out->action = STATIC_INTERNAL;
            out->target = arena_str(a, uri);
            out->args = arena_str(a, args);
            out->args_replace = 1;
            return out->target.p && out->args.p ? ST_DONE : ST_ERR;
        }

        /* "$uri/" tests for a directory (the '/' is part of the config text) */
        int test_dir = t->raw.len && t->raw.p[t->raw.len - 1] == '/';
        if (test_dir && v.len && v.p[v.len - 1] == '/')
            v.len--;
        if (unsafe_value(v))
            continue;

        struct str name = v;
        if (r->mode == MAP_ALIAS) {
            struct str loc_prefix = {r->uri.p, r->alias_len};
            if (starts_with(name, loc_prefix))
                name = str_slice(name, r->alias_len);
        }
        size_t len;
        const char *path = join3(a, r->base, name, STR_NULL, &len);
        if (!path)
            return ST_ERR;
        if (path_escapes(r, path, len))
            continue;
        struct stat st;
        if (stat_path(path, r->symlinks, &st) < 0)
            continue; /* nginx goes on for every error */
        if ((S_ISDIR(st.st_mode) != 0) != test_dir)
            continue;

        /* Found: it becomes the URI for the rest of this location. */
        switch (r->mode) {
        case MAP_ROOT:
            r->uri = arena_str(a, v);
            break;
        case MAP_ALIAS_FULL:
            if (!test_dir) {
                r->uri = arena_str(a, v);
                r->add_uri_to_alias = 1;
            }
            break;
        case MAP_ALIAS: {
            size_t n;
            char *u = join3(a, (struct str){r->uri.p, r->alias_len}, name, STR_NULL, &n);
            r->uri = (struct str){u, n};
            break;
        }
        }
        if (!r->uri.p)
            return ST_ERR;
        if (r->uri.len == 0)
            r->uri = STR_LIT("/");
        return ST_NEXT;
    }
    return ST_NEXT; /* no elements */
}

static enum st_method parse_method(struct str m)
{
    if (str_eq(m, STR_LIT("GET")))
        return M_GET;
    if (str_eq(m, STR_LIT("HEAD")))
        return M_HEAD;
    if (str_eq(m, STR_LIT("POST")))
        return M_POST;
    return M_OTHER;
}

int static_handle(const struct static_input *in, struct static_result *out, struct arena *a)
{
    memset(out, 0, sizeof(*out));
    out->fd = -1;

    struct st_req r;
    memset(&r, 0, sizeof(r));
    r.in = in;
    r.lc = in->lc;
    r.a = a;
    r.uri = in->uri;
    r.method = parse_method(in->method);

    if (!r.lc) {
        set_status(out, 500);
        return 0;
    }
    r.symlinks = r.lc->disable_symlinks;

    /* The session hands us a normalised URI; refuse anything else. */
    if (r.uri.len == 0 || count_dotdot(r.uri) > 0) {
        set_status(out, 400);
        return 0;
    }
    if (has_nul(r.uri)) { /* nginx: no handler for a URI with a zero byte */
        set_status(out, 404);
        return 0;
    }

    int rc = setup_base(&r);
    if (rc == ST_ERR)
        return -1;
    if (rc) {
        set_status(out, rc);
        return 0;
    }

    if (r.lc->ntry_files) {
        rc = static_try_files(&r, out);
        if (rc == ST_ERR)
            return -1;
        if (rc == ST_DONE)
            return 0;
    }

    rc = static_content(&r, out);
    return rc == ST_ERR ? -1 : 0;
}
