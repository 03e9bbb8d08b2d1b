/*
 * autoindex.c - directory listings in nginx's formats (see autoindex.h). The
 * layout below follows nginx's ngx_http_autoindex_module (1.22) exactly:
 *
 * html   <html>\r\n<head><title>Index of URI</title></head>\r\n<body>\r\n
 *        <h1>Index of URI</h1><hr><pre><a href="../">../</a>\r\n
 *        <a href="NAME[/]">NAME[/]</a>PAD DD-Mon-YYYY HH:MM SIZE\r\n ...
 *        </pre><hr></body>\r\n</html>\r\n
 *        names shown in 50 columns (longer ones cut to 47 and "..&gt;"),
 *        SIZE right-aligned in 19 columns (or 7, "%6d" with K/M/G, when
 *        autoindex_exact_size is off), "-" for directories; the date in GMT or
 *        (autoindex_localtime on) shifted by the current UTC offset.
 * json   [\r\n{ "name":"N", "type":"file", "mtime":"<HTTP date>", "size":S },...\r\n]
 * jsonp  the same as "/ * callback * /\r\nCB(...);" (callback from ?callback=)
 * xml    <?xml version="1.0"?>\r\n<list>\r\n<file mtime="Y-M-DTH:M:SZ" size="S">N</file>\r\n...</list>\r\n
 */
#include "http/autoindex.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "conf/autoindex.h"
#include "core/log.h"
#include "core/loop.h"
#include "http/charset.h"

#define NAME_LEN 50 /* nginx's NGX_HTTP_AUTOINDEX_NAME_LEN */

struct entry {
    struct str name;
    int dir, file;
    time_t mtime;
    off_t size;
};

/* A growing output buffer in the request arena. */
struct out {
    struct arena *a;
    char *p;
    size_t len, cap;
    int oom;
};

static char *room(struct out *o, size_t n)
{
    if (o->oom)
        return NULL;
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 4096;
        while (cap < o->len + n)
            cap *= 2;
        char *p = arena_alloc(o->a, cap);
        if (!p) {
            o->oom = 1;
            return NULL;
        }
        if (o->len)
            memcpy(p, o->p, o->len);
        o->p = p;
        o->cap = cap;
    }
    return o->p + o->len;
}

static void put(struct out *o, const char *s, size_t n)
{
    char *d = room(o, n);
    if (!d)
        return;
    memcpy(d, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        put(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* nginx's ngx_escape_html: < > & " */
static void put_html(struct out *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '<': puts_(o, "&lt;"); break;
        case '>': puts_(o, "&gt;"); break;
        case '&': puts_(o, "&amp;"); break;
        case '"': puts_(o, "&quot;"); break;
        default: put(o, s + i, 1);
        }
    }
}

static int needs_html_escape(struct str s)
{
    for (size_t i = 0; i < s.len; i++)
        if (s.p[i] == '<' || s.p[i] == '>' || s.p[i] == '&' || s.p[i] == '"')
            return 1;
    return 0;
}

/* nginx's NGX_ESCAPE_URI_COMPONENT: all but A-Z a-z 0-9 - . _ ~ as %XX. */
static void put_uri_component(struct out *o, struct str s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            put(o, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            put(o, e, 3);
        }
    }
}

/* nginx's ngx_escape_json */
static void put_json(struct out *o, struct str s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c > 0x1f) {
            if (c == '\\' || c == '"')
                put(o, "\\", 1);
            put(o, (const char *)&c, 1);
            continue;
        }
        switch (c) {
        case '\n': puts_(o, "\\n"); break;
        case '\r': puts_(o, "\\r"); break;
        case '\t': puts_(o, "\\t"); break;
        case '\b': puts_(o, "\\b"); break;
        case '\f': puts_(o, "\\f"); break;
        default: putf(o, "\\u00%c%c", '0' + (c >> 4), "0123456789ABCDEF"[c & 15]);
        }
    }
}

/* nginx's ngx_utf8_decode: the code point (advancing *p), > 0x10ffff when invalid. */
static uint32_t utf8_decode(const unsigned char **p, size_t n)
{
    uint32_t u = **p, valid;
    size_t len;
    if (u >= 0xf0) {
        u &= 0x07, valid = 0xffff, len = 3;
    } else if (u >= 0xe0) {
        u &= 0x0f, valid = 0x7ff, len = 2;
    } else if (u >= 0xc2) {
        u &= 0x1f, valid = 0x7f, len = 1;
    } else {
        (*p)++;
        return 0xffffffff;
    }
    if (n - 1 < len)
        return 0xfffffffe;
    (*p)++;
    while (len--) {
        uint32_t i = *(*p)++;
        if (i < 0x80)
            return 0xffffffff;
        u = (u << 6) | (i & 0x3f);
    }
    return u > valid ? u : 0xffffffff;
}

/* nginx's ngx_utf8_length: characters, or the byte count when not UTF-8. */
static size_t utf8_length(struct str s)
{
    const unsigned char *p = (const unsigned char *)s.p, *last = p + s.len;
    size_t len;
    for (len = 0; p < last; len++) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        if (utf8_decode(&p, (size_t)(last - p)) > 0x10ffff)
            return s.len;
    }
    return len;
}

/* Bytes of at most `n - 1` characters of `s` (nginx's ngx_utf8_cpystrn). */
static size_t utf8_prefix(struct str s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s.p, *last = p + s.len;
    while (n > 1 && p < last) {
        n--;
        if (*p < 0x80) {
            p++;
            continue;
        }
        const unsigned char *next = p;
        if (utf8_decode(&next, (size_t)(last - p)) > 0x10ffff)
            break;
        p = next;
    }
    return (size_t)(p - (const unsigned char *)s.p);
}

static int cmp_entries(const void *x, const void *y)
{
    const struct entry *a = x, *b = y;
    if (a->dir != b->dir)
        return a->dir ? -1 : 1;
    return strcmp(a->name.p, b->name.p);
}

/* The html line of one entry (see the top of the file). */
static void html_entry(struct out *o, const struct entry *e, int utf8,
                       const struct autoindex_conf *c, long gmtoff)
{
    puts_(o, "<a href=\"");
    put_uri_component(o, e->name);
    if (e->dir)
        put(o, "/", 1);
    puts_(o, "\">");
    size_t len = utf8 ? utf8_length(e->name) : e->name.len;
    int esc = needs_html_escape(e->name);
    size_t last; /* where "..&gt;" goes when the name is cut */
    if (e->name.len != len) {
        size_t n = utf8_prefix(e->name, len > NAME_LEN ? NAME_LEN - 3 + 1 : NAME_LEN + 1);
        if (esc)
            put_html(o, e->name.p, n);
        else
            put(o, e->name.p, n);
        last = o->len;
    } else if (esc) {
        put_html(o, e->name.p, len > NAME_LEN ? NAME_LEN - 3 : len);
        last = o->len;
    } else {
        put(o, e->name.p, len > NAME_LEN ? NAME_LEN : len);
        last = o->len - 3;
    }
    if (len > NAME_LEN) {
        if (!o->oom)
            o->len = last;
        puts_(o, "..&gt;</a>");
    } else {
        if (e->dir && len < NAME_LEN) {
            put(o, "/", 1);
            len++;
        }
        puts_(o, "</a>");
        for (; len < NAME_LEN; len++)
            put(o, " ", 1);
    }
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = e->mtime + (c->localtime ? gmtoff : 0);
    struct tm tm;
    gmtime_r(&t, &tm);
    putf(o, " %02d-%s-%d %02d:%02d ", tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
         tm.tm_hour, tm.tm_min);
    if (c->exact_size) {
        if (e->dir)
            puts_(o, "                  -");
        else
            putf(o, "%19lld", (long long)e->size);
    } else if (e->dir) {
        puts_(o, "      -");
    } else {
        long long length = e->size, size;
        char scale = 0;
        if (length > 1024 * 1024 * 1024 - 1) {
            size = length / (1024 * 1024 * 1024);
            size += length % (1024 * 1024 * 1024) > 1024 * 1024 * 1024 / 2 - 1;
            scale = 'G';
        } else if (length > 1024 * 1024 - 1) {
            size = length / (1024 * 1024);
            size += length % (1024 * 1024) > 1024 * 1024 / 2 - 1;
            scale = 'M';
        } else if (length > 9999) {
            size = length / 1024;
            size += length % 1024 > 511;
            scale = 'K';
        } else {
            size = length;
        }
        if (scale)
            putf(o, "%6lld%c", size, scale);
        else
            putf(o, " %6lld", size);
    }
    puts_(o, "\r\n");
}

static void page_html(struct out *o, struct client_stream *s, const struct entry *ents, size_t n,
                      int utf8)
{
    const struct request *r = &s->req;
    /* the UTC offset of now, as nginx's cached tp->gmtoff */
    time_t now = (time_t)(loop_wall_ms() / 1000);
    struct tm lt;
    long gmtoff = localtime_r(&now, &lt) ? lt.tm_gmtoff : 0;
    puts_(o, "<html>\r\n<head><title>Index of ");
    put_html(o, r->uri.p, r->uri.len);
    puts_(o, "</title></head>\r\n<body>\r\n<h1>Index of ");
    put_html(o, r->uri.p, r->uri.len);
    puts_(o, "</h1><hr><pre><a href=\"../\">../</a>\r\n");
    for (size_t i = 0; i < n; i++)
        html_entry(o, &ents[i], utf8, &r->lc->autoindex, gmtoff);
    puts_(o, "</pre><hr></body>\r\n</html>\r\n");
}

static const char *entry_type(const struct entry *e)
{
    return e->dir ? "directory" : e->file ? "file" : "other";
}

static void page_json(struct out *o, const struct entry *ents, size_t n, struct str callback)
{
    if (callback.len) {
        puts_(o, "/* callback */\r\n");
        put(o, callback.p, callback.len);
        put(o, "(", 1);
    }
    put(o, "[", 1);
    for (size_t i = 0; i < n; i++) {
        const struct entry *e = &ents[i];
        puts_(o, "\r\n{ \"name\":\"");
        put_json(o, e->name);
        putf(o, "\", \"type\":\"%s\", \"mtime\":\"", entry_type(e));
        char date[30];
        time_format_http((int64_t)e->mtime, date);
        puts_(o, date);
        if (e->file)
            putf(o, "\", \"size\":%lld", (long long)e->size);
        else
            put(o, "\"", 1);
        puts_(o, i + 1 < n ? " }," : " }");
    }
    puts_(o, "\r\n]");
    if (callback.len)
        puts_(o, ");");
}

static void page_xml(struct out *o, const struct entry *ents, size_t n)
{
    puts_(o, "<?xml version=\"1.0\"?>\r\n<list>\r\n");
    for (size_t i = 0; i < n; i++) {
        const struct entry *e = &ents[i];
        struct tm tm;
        gmtime_r(&e->mtime, &tm);
        putf(o, "<%s mtime=\"%4d-%02d-%02dT%02d:%02d:%02dZ\"", entry_type(e), tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (e->file)
            putf(o, " size=\"%lld\"", (long long)e->size);
        put(o, ">", 1);
        put_html(o, e->name.p, e->name.len);
        putf(o, "</%s>\r\n", entry_type(e));
    }
    puts_(o, "</list>\r\n");
}

/*
 * The jsonp callback (nginx's ngx_http_autoindex_jsonp_callback): the raw
 * value of the `callback` argument; 0, or -1 when it is longer than 128 or
 * has a character other than letters, digits, '_' and '.' (400).
 */
static int jsonp_callback(const struct request *r, struct str *cb)
{
    *cb = STR_NULL;
    struct str a = r->args;
    size_t i = 0;
    while (i < a.len) {
        size_t end = i;
        while (end < a.len && a.p[end] != '&')
            end++;
        if (end - i > 8 && strncasecmp(a.p + i, "callback", 8) == 0 && a.p[i + 8] == '=') {
            *cb = (struct str){a.p + i + 9, end - i - 9};
            break;
        }
        i = end + 1;
    }
    if (cb->len > 128)
        return -1;
    for (size_t k = 0; k < cb->len; k++) {
        unsigned char ch = (unsigned char)cb->p[k], c = ch | 0x20;
        if (!((c >= 'a' && c <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.'))
            return -1;
    }
    return 0;
}

static void log_dir_error(struct client_stream *s, const char *what, const char *path, int err,
                          enum log_level lvl)
{
    char ctx[1500];
    stream_log_ctx(s, ctx, sizeof(ctx));
    sy_log(lvl, "*%llu %s \"%s\" failed (%d: %s)%s", (unsigned long long)s->conn->id, what, path,
           err, strerror(err), ctx);
}

/* Read the entries of `d` into an arena array; -1 out of memory, -2 failed (logged). */
static int read_entries(struct client_stream *s, DIR *d, const char *path, struct entry **out,
                        size_t *nout)
{
    struct arena *a = &s->req.arena;
    struct entry *ents = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno) {
                log_dir_error(s, "readdir()", path, errno, LOG_LVL_CRIT);
                return -2;
            }
            break;
        }
        if (de->d_name[0] == '.')
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, 0) < 0) {
            int err = errno;
            if (err != ENOENT && err != ELOOP) {
                log_dir_error(s, "stat()", de->d_name, err, LOG_LVL_CRIT);
                if (err == EACCES)
                    continue;
                return -2;
            }
            if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                log_dir_error(s, "lstat()", de->d_name, errno, LOG_LVL_CRIT);
                return -2;
            }
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            struct entry *ne = arena_alloc(a, cap * sizeof(*ne));
            if (!ne)
                return -1;
            if (n)
                memcpy(ne, ents, n * sizeof(*ne));
            ents = ne;
        }
        char *name = arena_strdup(a, de->d_name);
        if (!name)
            return -1;
        ents[n++] = (struct entry){str_from_cstr(name), S_ISDIR(st.st_mode), S_ISREG(st.st_mode),
                                   st.st_mtime, st.st_size};
    }
    if (n > 1)
        qsort(ents, n, sizeof(*ents), cmp_entries);
    *out = ents;
    *nout = n;
    return 0;
}

int autoindex_build(struct client_stream *s, struct str dir, struct autoindex_page *page)
{
    struct request *r = &s->req;
    const struct autoindex_conf *c = &r->lc->autoindex;
    memset(page, 0, sizeof(*page));
    int format = c->format;
    struct str cb = STR_NULL;
    if (format == AUTOINDEX_JSONP) {
        if (jsonp_callback(r, &cb) < 0) {
            page->status = 400;
            return 0;
        }
        if (!cb.len)
            format = AUTOINDEX_JSON;
    }
    DIR *d = opendir(dir.p);
    if (!d) {
        int err = errno;
        int notfound = err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG;
        page->status = notfound ? 404 : err == EACCES ? 403 : 500;
        log_dir_error(s, "opendir()", dir.p, err,
                      notfound || err == EACCES ? LOG_LVL_ERR : LOG_LVL_CRIT);
        return 0;
    }
    struct entry *ents = NULL;
    size_t n = 0;
    int rc = read_entries(s, d, dir.p, &ents, &n);
    closedir(d);
    if (rc == -1)
        return -1;
    if (rc == -2) {
        page->status = 500;
        return 0;
    }
    struct out o = {&r->arena, NULL, 0, 0, 0};
    switch (format) {
    case AUTOINDEX_JSON:
    case AUTOINDEX_JSONP:
        page->content_type =
            format == AUTOINDEX_JSON ? STR_LIT("application/json") : STR_LIT("application/javascript");
        page_json(&o, ents, n, cb);
        break;
    case AUTOINDEX_XML:
        page->content_type = STR_LIT("text/xml; charset=utf-8");
        page_xml(&o, ents, n);
        break;
    default: {
        page->content_type = STR_LIT("text/html");
        struct str cs;
        if (charset_of_type(s, STR_LIT("text/html"), &cs) < 0)
            return -1;
        page_html(&o, s, ents, n, str_caseeq(cs, STR_LIT("utf-8")));
        break;
    }
    }
    if (o.oom)
        return -1;
    page->status = 200;
    page->body = (struct str){o.p ? o.p : "", o.len};
    return 0;
}
