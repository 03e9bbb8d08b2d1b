/*
 * test_static.c - static file handler: root/alias mapping, index, try_files,
 * methods, errno mapping, symlink policy, MIME types, validators and ranges.
 *
 * A temporary tree is built once (mkdtemp); loc_conf/location structs are
 * built by hand with templates whose evaluation is done by a tiny callback
 * understanding constant text plus "$uri" and "$1".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/arena.h"
#include "http/static.h"

/*
 * mime_types_find() lives in src/conf/mime.c. When this test is built alone
 * (cc tests/unit/test_static.c src/http/static.c ...) this weak stand-in is
 * used; when linked with the real object the strong definition wins.
 */
__attribute__((weak)) struct str mime_types_find(const struct mime_types *t, struct str ext)
{
    for (unsigned i = 0; t && i < t->n; i++)
        if (str_caseeq(t->entries[i].ext, ext))
            return t->entries[i].type;
    return STR_NULL;
}

#define MTIME 1445412480L /* Wed, 21 Oct 2015 07:28:00 GMT = 0x56273e80 */
#define MTIME_HTTP "Wed, 21 Oct 2015 07:28:00 GMT"

static char tdir[64];    /* the temp tree */
static char html[128];   /* tdir/html */
static char datad[128];  /* tdir/data */
static char prefix[128]; /* tdir/ (for relative roots) */

/* ------------------------------------------------------------- templates */

struct tctx {
    struct str uri;  /* value of $uri */
    struct str cap1; /* value of $1 */
    struct arena *a;
    int fail; /* make evaluation fail */
};

/* Evaluate constant templates and "$uri"/"$1" references in raw text. */
static int test_eval(void *ctx, const struct tmpl *t, struct str *out)
{
    struct tctx *c = ctx;
    if (c->fail)
        return -1;
    if (t->constant) {
        *out = t->raw;
        return 0;
    }
    char buf[4096];
    size_t n = 0;
    for (size_t i = 0; i < t->raw.len;) {
        struct str rest = {t->raw.p + i, t->raw.len - i};
        struct str val = STR_NULL;
        size_t skip = 0;
        if (rest.len >= 4 && memcmp(rest.p, "$uri", 4) == 0) {
            val = c->uri;
            skip = 4;
        } else if (rest.len >= 2 && memcmp(rest.p, "$1", 2) == 0) {
            val = c->cap1;
            skip = 2;
        }
        if (skip) {
            assert_true(n + val.len < sizeof(buf));
            memcpy(buf + n, val.p, val.len);
            n += val.len;
            i += skip;
        } else {
            assert_true(n + 1 < sizeof(buf));
            buf[n++] = t->raw.p[i++];
        }
    }
    out->p = arena_strndup(c->a, buf, n);
    out->len = n;
    return out->p ? 0 : -1;
}

static struct tmpl mk_tmpl(const char *s)
{
    struct tmpl t;
    memset(&t, 0, sizeof(t));
    t.raw = str_from_cstr(s);
    t.constant = strchr(s, '$') == NULL;
    return t;
}

/* ---------------------------------------------------------- configuration */

static struct mime_type mime_entries[] = {
    {STR_LIT("css"), STR_LIT("text/css")},
    {STR_LIT("html"), STR_LIT("text/html")},
    {STR_LIT("png"), STR_LIT("image/png")},
    {STR_LIT("txt"), STR_LIT("text/plain")},
};
static struct mime_types mime = {mime_entries, 4};

/* The state of one test: configuration, request and result. */
static struct {
    struct loc_conf lc;
    struct location loc;
    struct tmpl root, alias;
    struct tmpl index[4];
    struct tmpl try_files[6];
    struct static_input in;
    struct static_result out;
    struct tctx ctx;
    struct arena arena;
    int nfd_before;
} T;

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void set_root(const char *root)
{
    T.root = mk_tmpl(root);
    T.lc.root = &T.root;
}

static void set_alias(enum loc_match match, const char *pattern, const char *alias)
{
    T.loc.match = match;
    T.loc.pattern = str_from_cstr(pattern);
    T.alias = mk_tmpl(alias);
    T.lc.alias = &T.alias;
}

/* set_index("a.html", "b.html", NULL) */
static void set_index(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    unsigned n = 0;
    for (const char *s = first; s; s = va_arg(ap, const char *))
        T.index[n++] = mk_tmpl(s);
    va_end(ap);
    T.lc.index = T.index;
    T.lc.nindex = n;
}

static void set_try_files(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    unsigned n = 0;
    for (const char *s = first; s; s = va_arg(ap, const char *))
        T.try_files[n++] = mk_tmpl(s);
    va_end(ap);
    T.lc.try_files = T.try_files;
    T.lc.ntry_files = n;
}

static int setup(void **state)
{
    (void)state;
    memset(&T, 0, sizeof(T));
    arena_init(&T.arena, 0);
    T.lc.default_type = STR_LIT("application/octet-stream");
    T.lc.types = &mime;
    T.lc.etag = 1;
    T.lc.if_modified_since = 1;
    T.lc.disable_symlinks = STATIC_SYMLINKS_OFF;
    set_root(html);
    set_index("index.html", NULL);
    T.loc.match = LOC_PREFIX;
    T.loc.pattern = STR_LIT("/");
    T.loc.lc = &T.lc;
    T.in.loc = &T.loc;
    T.in.lc = &T.lc;
    T.in.prefix = prefix;
    T.in.eval = test_eval;
    T.in.eval_ctx = &T.ctx;
    T.ctx.a = &T.arena;
    T.out.fd = -1;
    T.nfd_before = count_fds();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (T.out.fd >= 0)
        close(T.out.fd);
    T.out.fd = -1;
    arena_destroy(&T.arena);
    assert_int_equal(count_fds(), T.nfd_before); /* no descriptor leaked */
    return 0;
}

/* Run a request; headers are set in T.in before the call. */
static struct static_result *run(const char *method, const char *uri)
{
    if (T.out.fd >= 0)
        close(T.out.fd);
    T.in.method = str_from_cstr(method);
    T.in.uri = str_from_cstr(uri);
    T.ctx.uri = T.in.uri;
    assert_int_equal(static_handle(&T.in, &T.out, &T.arena), 0);
    if (T.out.action != STATIC_SEND)
        assert_int_equal(T.out.fd, -1);
    return &T.out;
}

static void assert_str(struct str s, const char *want)
{
    if (!want) {
        assert_int_equal(s.len, 0);
        return;
    }
    char *got = strndup(s.p ? s.p : "", s.len);
    assert_string_equal(got, want);
    free(got);
}

static void assert_status(const struct static_result *r, int status)
{
    assert_int_equal(r->action, STATIC_STATUS);
    assert_int_equal(r->status, status);
}

/* The sent bytes of a STATIC_SEND result equal `want`. */
static void assert_body(const struct static_result *r, const char *want, size_t len)
{
    assert_int_equal(r->action, STATIC_SEND);
    assert_true(r->fd >= 0);
    assert_int_equal(r->length, (off_t)len);
    char buf[512];
    assert_true(len <= sizeof(buf));
    ssize_t n = pread(r->fd, buf, len, r->offset);
    assert_int_equal(n, (ssize_t)len);
    assert_memory_equal(buf, want, len);
}

static void assert_internal(const struct static_result *r, const char *target)
{
    assert_int_equal(r->action, STATIC_INTERNAL);
    assert_str(r->target, target);
}

/* ------------------------------------------------------------ the tree */

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    struct timeval tv[2] = {{MTIME, 0}, {MTIME, 0}};
    assert_int_equal(utimes(p, tv), 0);
}

static void mk(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    assert_int_equal(mkdir(p, 0755), 0);
}

static unsigned char bin[100];

static int group_setup(void **state)
{
    (void)state;
    strcpy(tdir, "/tmp/sy_static_XXXXXX");
    if (!mkdtemp(tdir))
        return -1;
    snprintf(html, sizeof(html), "%s/html", tdir);
    snprintf(datad, sizeof(datad), "%s/data", tdir);
    snprintf(prefix, sizeof(prefix), "%s/", tdir);
    mk(tdir, "html");
    mk(tdir, "data");
    mk(tdir, "outside");
    for (int i = 0; i < 100; i++)
        bin[i] = (unsigned char)i;

    write_file(html, "index.html", "<h1>index</h1>\n", 15);
    write_file(html, "hello.txt", "hello world\n", 12);
    write_file(html, "file.bin", bin, sizeof(bin));
    write_file(html, "style.CSS", "a{}", 3);
    write_file(html, "noext", "x", 1);
    write_file(html, ".hidden", "h", 1);
    write_file(html, "empty.txt", "", 0);
    write_file(html, "about.html", "about", 5);
    write_file(html, "secret.txt", "secret", 6);
    mk(html, "dir");
    write_file(html, "dir/index.html", "dir index", 9);
    write_file(html, "dir/alt.html", "alt", 3);
    mk(html, "noindex");
    mk(html, "v1.2");
    write_file(html, "v1.2/README", "readme", 6);
    write_file(datad, "pic.png", "PNG", 3);
    mk(datad, "sub");
    write_file(datad, "sub/index.html", "sub index", 9);

    char p[512], q[512];
    snprintf(p, sizeof(p), "%s/outside", tdir);
    write_file(p, "secret.txt", "outside secret", 14);
    snprintf(p, sizeof(p), "%s/outside/secret.txt", tdir);
    snprintf(q, sizeof(q), "%s/link_out", html);
    assert_int_equal(symlink(p, q), 0);
    snprintf(p, sizeof(p), "%s/outside", tdir);
    snprintf(q, sizeof(q), "%s/linkdir", html);
    assert_int_equal(symlink(p, q), 0);
    snprintf(q, sizeof(q), "%s/link_in", html);
    assert_int_equal(symlink("hello.txt", q), 0);
    snprintf(q, sizeof(q), "%s/dangling", html);
    assert_int_equal(symlink("nowhere", q), 0);
    snprintf(q, sizeof(q), "%s/fifo", html);
    assert_int_equal(mkfifo(q, 0644), 0);
    snprintf(q, sizeof(q), "%s/secret.txt", html);
    assert_int_equal(chmod(q, 0), 0);
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------ basic GET */

static void test_get_file(void **state)
{
    (void)state;
    struct static_result *r = run("GET", "/hello.txt");
    assert_int_equal(r->status, 200);
    assert_body(r, "hello world\n", 12);
    assert_int_equal(r->offset, 0);
    assert_int_equal(r->file_size, 12);
    assert_str(r->content_type, "text/plain");
    assert_str(r->last_modified, MTIME_HTTP);
    assert_str(r->etag, "\"56273e80-c\"");
    assert_true(r->accept_ranges);
    assert_str(r->content_range, NULL);
    /* the descriptor is read-only and close-on-exec */
    int fl = fcntl(r->fd, F_GETFL);
    assert_int_equal(fl & O_ACCMODE, O_RDONLY);
    assert_true(fcntl(r->fd, F_GETFD) & FD_CLOEXEC);
}

static void test_head_file(void **state)
{
    (void)state;
    struct static_result *r = run("HEAD", "/file.bin");
    assert_int_equal(r->status, 200);
    assert_body(r, (const char *)bin, 100);
    assert_str(r->etag, "\"56273e80-64\"");
    assert_str(r->content_type, "application/octet-stream");
}

static void test_empty_file(void **state)
{
    (void)state;
    struct static_result *r = run("GET", "/empty.txt");
    assert_int_equal(r->status, 200);
    assert_body(r, "", 0);
    assert_str(r->etag, "\"56273e80-0\"");
}

/* ---------------------------------------------------------------- methods */

static void test_methods(void **state)
{
    (void)state;
    assert_status(run("POST", "/hello.txt"), 405);
    assert_status(run("POST", "/missing"), 404); /* nginx: 405 only for a found file */
    assert_int_equal(run("POST", "/dir")->action, STATIC_REDIRECT);
    assert_internal(run("POST", "/dir/"), "/dir/index.html");
    assert_status(run("PUT", "/hello.txt"), 405);
    assert_status(run("DELETE", "/missing"), 405);
    assert_status(run("OPTIONS", "/dir/"), 405);
    assert_status(run("get", "/hello.txt"), 405); /* methods are case-sensitive */
}

/* ----------------------------------------------------------- errno -> status */

static void test_not_found(void **state)
{
    (void)state;
    assert_status(run("GET", "/missing.txt"), 404);
    assert_status(run("GET", "/hello.txt/x"), 404); /* ENOTDIR */
    assert_status(run("GET", "/nodir/x.txt"), 404);
    char uri[400] = "/";
    memset(uri + 1, 'a', 300); /* ENAMETOOLONG */
    assert_status(run("GET", uri), 404);
    assert_status(run("GET", "/fifo"), 404); /* not a regular file */
    assert_status(run("GET", "/dangling"), 404);
}

static void test_forbidden_eacces(void **state)
{
    (void)state;
    struct static_result *r = run("GET", "/secret.txt");
    if (geteuid() == 0) { /* root reads mode 000 files: no EACCES to observe */
        assert_int_equal(r->status, 200);
        return;
    }
    assert_status(r, 403);
}

/* -------------------------------------------------------- directories/index */

static void test_dir_redirect(void **state)
{
    (void)state;
    struct static_result *r = run("GET", "/dir");
    assert_int_equal(r->action, STATIC_REDIRECT);
    assert_int_equal(r->status, 301);
    assert_str(r->location, "/dir/");
    r = run("HEAD", "/v1.2");
    assert_int_equal(r->action, STATIC_REDIRECT);
    assert_str(r->location, "/v1.2/");
}

static void test_index(void **state)
{
    (void)state;
    struct static_result *r = run("GET", "/");
    assert_internal(r, "/index.html");
    assert_int_equal(r->args_replace, 0); /* index keeps the request's args */
    assert_internal(run("GET", "/dir/"), "/dir/index.html");
    assert_internal(run("HEAD", "/dir/"), "/dir/index.html");
    assert_status(run("GET", "/noindex/"), 403); /* autoindex off */
    assert_status(run("GET", "/nodir/"), 404);
    assert_status(run("GET", "/hello.txt/"), 404); /* ENOTDIR */
}

static void test_index_order(void **state)
{
    (void)state;
    set_index("missing.html", "alt.html", "index.html", NULL);
    assert_internal(run("GET", "/dir/"), "/dir/alt.html");
    assert_internal(run("GET", "/"), "/index.html");
    /* an absolute index is a redirect without any test */
    set_index("missing.html", "/fallback.html", "index.html", NULL);
    assert_internal(run("GET", "/noindex/"), "/fallback.html");
    assert_internal(run("GET", "/dir/"), "/fallback.html");
    assert_status(run("GET", "/nodir/"), 404); /* missing dir stops before "/fallback.html" */
    set_index("index.html", "/fallback.html", NULL);
    assert_internal(run("GET", "/dir/"), "/dir/index.html");
    /* variables in index names */
    set_index("alt$1", NULL);
    T.ctx.cap1 = STR_LIT(".html");
    assert_internal(run("GET", "/dir/"), "/dir/alt.html");
    assert_status(run("GET", "/noindex/"), 403);
}

/* ------------------------------------------------------------ root / alias */

static void test_root_forms(void **state)
{
    (void)state;
    set_root("html"); /* relative: joined to the -p prefix */
    assert_body(run("GET", "/hello.txt"), "hello world\n", 12);
    char r2[200];
    snprintf(r2, sizeof(r2), "%s/", html); /* trailing slash */
    set_root(r2);
    assert_body(run("GET", "/hello.txt"), "hello world\n", 12);
    assert_int_equal(run("GET", "/dir")->action, STATIC_REDIRECT);
    assert_str(T.out.location, "/dir/");
    T.lc.root = NULL; /* nginx default "html" */
    assert_body(run("GET", "/about.html"), "about", 5);
    set_root("$uri"); /* variable root evaluating to an unknown dir */
    assert_status(run("GET", "/hello.txt"), 404);
}

static void test_alias_prefix(void **state)
{
    (void)state;
    char a[200];
    snprintf(a, sizeof(a), "%s/", datad);
    set_alias(LOC_PREFIX, "/i/", a);
    assert_body(run("GET", "/i/pic.png"), "PNG", 3);
    assert_str(T.out.content_type, "image/png");
    assert_internal(run("GET", "/i/sub/"), "/i/sub/index.html");
    assert_status(run("GET", "/i/"), 403); /* data/ has no index.html */
    assert_int_equal(run("GET", "/i/sub")->action, STATIC_REDIRECT);
    assert_str(T.out.location, "/i/sub/");
    assert_status(run("GET", "/i/missing.png"), 404);
    /* alias + missing prefix match: nginx's "URI was rewritten" -> 500 */
    assert_status(run("GET", "/other/pic.png"), 500);

    /* "location /j { alias <data>; }" without slashes: /j/pic.png -> data/pic.png */
    set_alias(LOC_PREFIX, "/j", datad);
    assert_body(run("GET", "/j/pic.png"), "PNG", 3);
    assert_int_equal(run("GET", "/j")->action, STATIC_REDIRECT);
    assert_str(T.out.location, "/j/");
    assert_internal(run("GET", "/j/sub/"), "/j/sub/index.html");

    /* exact location aliasing one file; the type comes from the URI */
    snprintf(a, sizeof(a), "%s/pic.png", datad);
    set_alias(LOC_EXACT, "/favicon.ico", a);
    assert_body(run("GET", "/favicon.ico"), "PNG", 3);
    assert_str(T.out.content_type, "application/octet-stream");
}

static void test_alias_index_missing(void **state)
{
    (void)state;
    char a[200];
    snprintf(a, sizeof(a), "%s/", datad);
    set_alias(LOC_PREFIX, "/i/", a);
    set_index("nothere.html", NULL);
    assert_status(run("GET", "/i/"), 403);
    assert_status(run("GET", "/i/nodir/"), 404);
}

static void test_alias_regex(void **state)
{
    (void)state;
    char a[200];
    snprintf(a, sizeof(a), "%s/$1", datad);
    set_alias(LOC_REGEX, "^/r/(.*)$", a);
    T.ctx.cap1 = STR_LIT("pic.png");
    assert_body(run("GET", "/r/pic.png"), "PNG", 3);
    T.ctx.cap1 = STR_LIT("sub");
    assert_int_equal(run("GET", "/r/sub")->action, STATIC_REDIRECT);
    assert_str(T.out.location, "/r/sub/");
    T.ctx.cap1 = STR_LIT("sub/");
    assert_internal(run("GET", "/r/sub/"), "/r/sub/index.html");
    /* a capture cannot climb out of the alias */
    T.ctx.cap1 = STR_LIT("../outside/secret.txt");
    assert_status(run("GET", "/r/x"), 404);
}

/* --------------------------------------------------------------- try_files */

static void test_try_files_spa(void **state)
{
    (void)state;
    set_try_files("$uri", "$uri/", "/index.html", NULL);
    assert_body(run("GET", "/hello.txt"), "hello world\n", 12);
    struct static_result *r = run("GET", "/app/route/42");
    assert_internal(r, "/index.html");
    assert_int_equal(r->args_replace, 1);
    assert_str(r->args, NULL);
    /* "$uri/" matched a directory: the URI is "/dir" -> 301, like nginx */
    r = run("GET", "/dir");
    assert_int_equal(r->action, STATIC_REDIRECT);
    assert_str(r->location, "/dir/");
    assert_internal(run("GET", "/dir/"), "/dir/index.html");
    assert_status(run("GET", "/noindex/"), 403);
    assert_internal(run("GET", "/"), "/index.html");
    /* try_files runs before the method check */
    assert_internal(run("DELETE", "/nope"), "/index.html");
    assert_status(run("DELETE", "/hello.txt"), 405);
    assert_status(run("POST", "/hello.txt"), 405);
}

static void test_try_files_extension(void **state)
{
    (void)state;
    set_try_files("$uri", "$uri.html", "=404", NULL);
    struct static_result *r = run("GET", "/about");
    assert_body(r, "about", 5);
    assert_str(r->content_type, "text/html"); /* type of the URI try_files chose */
    assert_status(run("GET", "/nothing"), 404);
    /* a directory does not satisfy a file element */
    assert_status(run("GET", "/dir"), 404);
}

static void test_try_files_fallbacks(void **state)
{
    (void)state;
    set_try_files("$uri", "@backend", NULL);
    struct static_result *r = run("GET", "/nope");
    assert_int_equal(r->action, STATIC_NAMED);
    assert_str(r->target, "backend");

    set_try_files("$uri", "/index.php?q=$uri&x=1", NULL);
    r = run("GET", "/nope");
    assert_internal(r, "/index.php");
    assert_str(r->args, "q=/nope&x=1");
    assert_int_equal(r->args_replace, 1);

    set_try_files("$uri", "=403", NULL);
    assert_status(run("GET", "/nope"), 403);
    set_try_files("=418", NULL); /* only a fallback */
    assert_status(run("GET", "/hello.txt"), 418);
    set_try_files("/missing1", "/missing2/", "/hello.txt", NULL);
    assert_internal(run("GET", "/x"), "/hello.txt"); /* last element is never tested */
}

static void test_try_files_constant_and_dir(void **state)
{
    (void)state;
    /* constant file element: served with that URI */
    set_try_files("/about.html", "=404", NULL);
    struct static_result *r = run("GET", "/whatever");
    assert_body(r, "about", 5);
    assert_str(r->content_type, "text/html");
    /* a file does not satisfy a directory element */
    set_try_files("$uri/", "=404", NULL);
    assert_status(run("GET", "/hello.txt"), 404);
    /* a directory element becomes the URI without its slash: nginx then
     * answers 301 to "/dir/" */
    set_try_files("/dir/", "=404", NULL);
    r = run("GET", "/zzz");
    assert_int_equal(r->action, STATIC_REDIRECT);
    assert_str(r->location, "/dir/");
}

static void test_try_files_alias(void **state)
{
    (void)state;
    char a[200];
    snprintf(a, sizeof(a), "%s/", datad);
    set_alias(LOC_PREFIX, "/i/", a);
    set_try_files("$uri", "$uri/", "=404", NULL);
    struct static_result *r = run("GET", "/i/pic.png");
    assert_body(r, "PNG", 3);
    assert_str(r->content_type, "image/png");
    assert_internal(run("GET", "/i/sub/"), "/i/sub/index.html");
    assert_int_equal(run("GET", "/i/sub")->action, STATIC_REDIRECT);
    assert_str(T.out.location, "/i/sub/");
    assert_status(run("GET", "/i/none"), 404);
}

static void test_try_files_unsafe(void **state)
{
    (void)state;
    set_try_files("$uri/../../outside/secret.txt", "=404", NULL);
    assert_status(run("GET", "/dir"), 404);
}

static void test_eval_failure(void **state)
{
    (void)state;
    set_try_files("$uri", "=404", NULL);
    T.ctx.fail = 1;
    assert_status(run("GET", "/hello.txt"), 500);
}

/* ------------------------------------------------------------------ safety */

static void test_traversal(void **state)
{
    (void)state;
    assert_status(run("GET", "/../outside/secret.txt"), 400);
    assert_status(run("GET", "/dir/../../outside/secret.txt"), 400);
    assert_status(run("GET", ".."), 400);
    assert_status(run("GET", ""), 400);
    /* "..." and "..x" are ordinary names */
    assert_status(run("GET", "/.../x"), 404);
    assert_status(run("GET", "/..x"), 404);

    static const char nul_uri[] = "/hello.txt\0.png";
    T.in.method = STR_LIT("GET");
    T.in.uri = (struct str){nul_uri, sizeof(nul_uri) - 1};
    T.ctx.uri = T.in.uri;
    assert_int_equal(static_handle(&T.in, &T.out, &T.arena), 0);
    assert_status(&T.out, 404);

    /* a variable root may not add ".." segments; the admin's own text may */
    set_root("$uri");
    T.ctx.uri = STR_LIT("/x/../..");
    T.in.method = STR_LIT("GET");
    T.in.uri = STR_LIT("/hello.txt");
    assert_int_equal(static_handle(&T.in, &T.out, &T.arena), 0);
    assert_status(&T.out, 404);
    char r2[200];
    snprintf(r2, sizeof(r2), "%s/../html", datad);
    set_root(r2);
    assert_body(run("GET", "/hello.txt"), "hello world\n", 12);
}

static void test_alias_off_by_slash(void **state)
{
    (void)state;
    /* "location /j { alias <data>/; }": nginx serves /j../outside/secret.txt */
    char a[200];
    snprintf(a, sizeof(a), "%s/", datad);
    set_alias(LOC_PREFIX, "/j", a);
    assert_status(run("GET", "/j../outside/secret.txt"), 404);
    assert_status(run("GET", "/j../outside/"), 404);
    assert_status(run("GET", "/j../outside"), 404);
    assert_body(run("GET", "/j/pic.png"), "PNG", 3);
    set_try_files("$uri", "=410", NULL);
    assert_status(run("GET", "/j../outside/secret.txt"), 410);
    assert_body(run("GET", "/j/pic.png"), "PNG", 3);
}

static void test_symlinks_off(void **state)
{
    (void)state;
    assert_body(run("GET", "/link_out"), "outside secret", 14);
    assert_body(run("GET", "/linkdir/secret.txt"), "outside secret", 14);
    assert_body(run("GET", "/link_in"), "hello world\n", 12);
}

static void test_symlinks_on(void **state)
{
    (void)state;
    T.lc.disable_symlinks = STATIC_SYMLINKS_ON;
    assert_body(run("GET", "/hello.txt"), "hello world\n", 12);
    assert_status(run("GET", "/link_out"), 403); /* ELOOP on the last component */
    assert_status(run("GET", "/link_in"), 403);
    assert_status(run("GET", "/linkdir/secret.txt"), 404); /* ENOTDIR on a dir component */
    assert_status(run("GET", "/linkdir"), 403);
    assert_status(run("GET", "/linkdir/"), 404); /* index through the link */
    assert_internal(run("GET", "/dir/"), "/dir/index.html");
    assert_int_equal(run("GET", "/dir")->action, STATIC_REDIRECT);
    set_try_files("$uri", "=404", NULL);
    assert_status(run("GET", "/link_out"), 404); /* try_files skips it */
    assert_body(run("GET", "/hello.txt"), "hello world\n", 12);
}

static void test_symlinks_if_not_owner(void **state)
{
    (void)state;
    T.lc.disable_symlinks = STATIC_SYMLINKS_IF_NOT_OWNER;
    /* same owner: allowed */
    assert_body(run("GET", "/link_in"), "hello world\n", 12);
    assert_body(run("GET", "/linkdir/secret.txt"), "outside secret", 14);
    if (geteuid() != 0)
        return; /* changing a link's owner needs root */
    char q[512];
    snprintf(q, sizeof(q), "%s/link_other", html);
    assert_int_equal(symlink("hello.txt", q), 0);
    assert_int_equal(lchown(q, 12345, (gid_t)-1), 0);
    assert_status(run("GET", "/link_other"), 403);
    T.lc.disable_symlinks = STATIC_SYMLINKS_OFF;
    assert_body(run("GET", "/link_other"), "hello world\n", 12);
    unlink(q);
}

/* ------------------------------------------------------------------- MIME */

static void test_mime(void **state)
{
    (void)state;
    assert_str(run("GET", "/style.CSS")->content_type, "text/css");
    assert_str(run("GET", "/index.html")->content_type, "text/html");
    assert_str(run("GET", "/noext")->content_type, "application/octet-stream");
    assert_str(run("GET", "/.hidden")->content_type, "application/octet-stream");
    assert_str(run("GET", "/v1.2/README")->content_type, "application/octet-stream");
    T.lc.types = NULL;
    assert_str(run("GET", "/index.html")->content_type, "application/octet-stream");
    T.lc.default_type = STR_NULL;
    assert_str(run("GET", "/index.html")->content_type, NULL);
}

/* ------------------------------------------------------------ conditionals */

#define ETAG_HELLO "\"56273e80-c\""

static void test_if_none_match(void **state)
{
    (void)state;
    T.in.if_none_match = STR_LIT(ETAG_HELLO);
    struct static_result *r = run("GET", "/hello.txt");
    assert_int_equal(r->action, STATIC_NOT_MODIFIED);
    assert_int_equal(r->status, 304);
    assert_str(r->etag, ETAG_HELLO);
    assert_str(r->last_modified, MTIME_HTTP);
    assert_str(r->content_type, NULL);
    assert_false(r->accept_ranges);
    T.in.if_none_match = STR_LIT("\"nope\", W/" ETAG_HELLO);
    assert_int_equal(run("HEAD", "/hello.txt")->status, 304);
    T.in.if_none_match = STR_LIT("\"a\" ,\t" ETAG_HELLO " , \"b\"");
    assert_int_equal(run("GET", "/hello.txt")->status, 304);
    T.in.if_none_match = STR_LIT("*");
    assert_int_equal(run("GET", "/hello.txt")->status, 304);
    T.in.if_none_match = STR_LIT("\"56273e80-d\"");
    assert_int_equal(run("GET", "/hello.txt")->status, 200);
    T.in.if_none_match = STR_LIT("\"56273e80-c");
    assert_int_equal(run("GET", "/hello.txt")->status, 200);
    T.lc.etag = 0;
    T.in.if_none_match = STR_LIT(ETAG_HELLO);
    r = run("GET", "/hello.txt");
    assert_int_equal(r->status, 200);
    assert_str(r->etag, NULL);
    T.in.if_none_match = STR_LIT("*");
    assert_int_equal(run("GET", "/hello.txt")->status, 304);
}

static void test_if_modified_since(void **state)
{
    (void)state;
    T.in.if_modified_since = STR_LIT(MTIME_HTTP);
    assert_int_equal(run("GET", "/hello.txt")->status, 304);
    T.in.if_modified_since = STR_LIT("Wednesday, 21-Oct-15 07:28:00 GMT");
    assert_int_equal(run("GET", "/hello.txt")->status, 304);
    T.in.if_modified_since = STR_LIT("Wed Oct 21 07:28:00 2015");
    assert_int_equal(run("GET", "/hello.txt")->status, 304);
    T.in.if_modified_since = STR_LIT("Wed, 21 Oct 2015 07:28:00 GMT; length=12");
    assert_int_equal(run("GET", "/hello.txt")->status, 304);
    T.in.if_modified_since = STR_LIT("Wed, 21 Oct 2015 07:28:01 GMT"); /* exact: later != */
    assert_int_equal(run("GET", "/hello.txt")->status, 200);
    T.in.if_modified_since = STR_LIT("Wed, 21 Oct 2015 07:27:59 GMT");
    assert_int_equal(run("GET", "/hello.txt")->status, 200);
    T.in.if_modified_since = STR_LIT("yesterday");
    assert_int_equal(run("GET", "/hello.txt")->status, 200);
    T.in.if_modified_since = STR_LIT("Wed, 31 Feb 2015 07:28:00 GMT");
    assert_int_equal(run("GET", "/hello.txt")->status, 200);

    T.lc.if_modified_since = 2; /* before */
    T.in.if_modified_since = STR_LIT("Wed, 21 Oct 2015 07:28:01 GMT");
    assert_int_equal(run("GET", "/hello.txt")->status, 304);
    T.in.if_modified_since = STR_LIT("Sat, 01 Jan 2050 00:00:00 GMT");
    assert_int_equal(run("GET", "/hello.txt")->status, 304);
    T.in.if_modified_since = STR_LIT("Wed, 21 Oct 2015 07:27:59 GMT");
    assert_int_equal(run("GET", "/hello.txt")->status, 200);
    T.in.if_modified_since = STR_LIT("garbage");
    assert_int_equal(run("GET", "/hello.txt")->status, 200);

    T.lc.if_modified_since = 0; /* off */
    T.in.if_modified_since = STR_LIT(MTIME_HTTP);
    assert_int_equal(run("GET", "/hello.txt")->status, 200);
}

static void test_inm_and_ims_together(void **state)
{
    (void)state;
    /* nginx needs both to agree (no RFC precedence of If-None-Match) */
    T.in.if_none_match = STR_LIT(ETAG_HELLO);
    T.in.if_modified_since = STR_LIT("Tue, 20 Oct 2015 07:28:00 GMT");
    assert_int_equal(run("GET", "/hello.txt")->status, 200);
    T.in.if_modified_since = STR_LIT(MTIME_HTTP);
    assert_int_equal(run("GET", "/hello.txt")->status, 304);
    T.in.if_none_match = STR_LIT("\"other\"");
    assert_int_equal(run("GET", "/hello.txt")->status, 200);
}

static void test_preconditions(void **state)
{
    (void)state;
    T.in.if_match = STR_LIT("\"other\"");
    assert_status(run("GET", "/hello.txt"), 412);
    assert_str(T.out.etag, NULL);
    T.in.if_match = STR_LIT("W/" ETAG_HELLO); /* strong comparison */
    assert_status(run("GET", "/hello.txt"), 412);
    T.in.if_match = STR_LIT("\"x\", " ETAG_HELLO);
    assert_int_equal(run("GET", "/hello.txt")->status, 200);
    T.in.if_match = STR_LIT("*");
    assert_int_equal(run("GET", "/hello.txt")->status, 200);
    T.lc.etag = 0;
    T.in.if_match = STR_LIT(ETAG_HELLO);
    assert_status(run("GET", "/hello.txt"), 412);
    T.lc.etag = 1;
    T.in.if_match = STR_NULL;

    T.in.if_unmodified_since = STR_LIT("Tue, 20 Oct 2015 07:28:00 GMT");
    assert_status(run("GET", "/hello.txt"), 412);
    T.in.if_unmodified_since = STR_LIT(MTIME_HTTP);
    assert_int_equal(run("GET", "/hello.txt")->status, 200);
    T.in.if_unmodified_since = STR_LIT("Thu, 22 Oct 2015 07:28:00 GMT");
    assert_int_equal(run("GET", "/hello.txt")->status, 200);
    T.in.if_unmodified_since = STR_LIT("not a date");
    assert_status(run("GET", "/hello.txt"), 412);
    /* 412 wins over 304 */
    T.in.if_none_match = STR_LIT(ETAG_HELLO);
    assert_status(run("GET", "/hello.txt"), 412);
}

/* ------------------------------------------------------------------ ranges */

static void assert_range(const char *range, off_t first, off_t last)
{
    T.in.range = str_from_cstr(range);
    struct static_result *r = run("GET", "/file.bin");
    assert_int_equal(r->action, STATIC_SEND);
    assert_int_equal(r->status, 206);
    assert_int_equal(r->offset, first);
    assert_int_equal(r->length, last - first + 1);
    assert_int_equal(r->file_size, 100);
    assert_false(r->accept_ranges);
    char cr[64];
    snprintf(cr, sizeof(cr), "bytes %lld-%lld/100", (long long)first, (long long)last);
    assert_str(r->content_range, cr);
    assert_body(r, (const char *)bin + first, (size_t)(last - first + 1));
}

static void assert_range_status(const char *range, int status)
{
    T.in.range = str_from_cstr(range);
    struct static_result *r = run("GET", "/file.bin");
    if (status == 416) {
        assert_status(r, 416);
        assert_str(r->content_range, "bytes */100");
        assert_false(r->accept_ranges);
        return;
    }
    assert_int_equal(r->action, STATIC_SEND);
    assert_int_equal(r->status, status);
    assert_int_equal(r->offset, 0);
    assert_int_equal(r->length, 100);
    assert_true(r->accept_ranges);
    assert_str(r->content_range, NULL);
}

static void test_range_single(void **state)
{
    (void)state;
    assert_range("bytes=0-9", 0, 9);
    assert_range("bytes=90-", 90, 99);
    assert_range("bytes=-10", 90, 99);
    assert_range("bytes=-1000", 0, 99);
    assert_range("bytes=95-200", 95, 99);
    assert_range("bytes=99-99", 99, 99);
    assert_range("bytes=0-", 0, 99);
    assert_range("BYTES=3-4", 3, 4);
    assert_range("bytes= 5 - 6", 5, 6);
    /* one satisfiable range among several: nginx sends it alone */
    assert_range("bytes=0-1,200-300", 0, 1);
}

static void test_range_unsatisfiable_and_ignored(void **state)
{
    (void)state;
    assert_range_status("bytes=100-", 416);
    assert_range_status("bytes=100-200", 416);
    assert_range_status("bytes=-0", 416);
    assert_range_status("bytes=abc", 416); /* nginx: syntax error is 416 */
    assert_range_status("bytes=5-1", 416);
    assert_range_status("bytes=0-1,", 416);
    assert_range_status("bytes=1-2x", 416);
    assert_range_status("bytes=99999999999999999999-", 416);
    assert_range_status("items=0-1", 200);     /* not bytes: ignored */
    assert_range_status("bytes=", 200);        /* shorter than "bytes=N" */
    assert_range_status("bytes=0-60,50-99", 200); /* more than the file: ignored */
    /* several ranges: a multipart/byteranges body (http/byteranges.c) */
    T.in.range = STR_LIT("bytes=0-1, 5-6");
    struct static_result *m = run("GET", "/file.bin");
    assert_int_equal(m->action, STATIC_SEND);
    assert_int_equal(m->status, 206);
    assert_int_equal(m->fd, -1);
    assert_non_null(m->body);
    assert_true(m->content_type.len > 30 &&
                memcmp(m->content_type.p, "multipart/byteranges; boundary=", 31) == 0);
    assert_non_null(memmem(m->body, m->body_len, "Content-Range: bytes 0-1/100\r\n", 30));
    assert_non_null(memmem(m->body, m->body_len, "Content-Range: bytes 5-6/100\r\n", 30));
    /* one satisfiable range of several: a single part */
    assert_range("bytes=5-6, 500-600", 5, 6);
    /* max_ranges */
    T.in.max_ranges = 1;
    assert_range_status("bytes=0-1,5-6", 200);
    T.in.max_ranges = 0;
    T.in.no_ranges = 1;
    T.in.range = STR_LIT("bytes=0-1");
    m = run("GET", "/file.bin");
    assert_int_equal(m->status, 200);
    assert_false(m->accept_ranges);
    T.in.no_ranges = 0;
    /* an empty file ignores "bytes=0-" */
    T.in.range = STR_LIT("bytes=0-");
    struct static_result *r = run("GET", "/empty.txt");
    assert_int_equal(r->status, 200);
    assert_true(r->accept_ranges);
    T.in.range = STR_LIT("bytes=1-");
    assert_status(run("GET", "/empty.txt"), 416);
    assert_str(T.out.content_range, "bytes */0");
}

static void test_range_if_range(void **state)
{
    (void)state;
    T.in.if_range = STR_LIT("\"56273e80-64\"");
    assert_range("bytes=10-19", 10, 19);
    T.in.if_range = STR_LIT(MTIME_HTTP);
    assert_range("bytes=10-19", 10, 19);
    T.in.if_range = STR_LIT("\"56273e80-65\"");
    assert_range_status("bytes=10-19", 200);
    T.in.if_range = STR_LIT("W/\"56273e80-64\"");
    assert_range_status("bytes=10-19", 200);
    T.in.if_range = STR_LIT("Thu, 22 Oct 2015 07:28:00 GMT");
    assert_range_status("bytes=10-19", 200);
    T.in.if_range = STR_LIT("junk");
    assert_range_status("bytes=10-19", 200);
    T.lc.etag = 0;
    T.in.if_range = STR_LIT("\"56273e80-64\"");
    assert_range_status("bytes=10-19", 200);
}

static void test_range_other_cases(void **state)
{
    (void)state;
    T.in.range = STR_LIT("bytes=0-3");
    struct static_result *r = run("HEAD", "/file.bin"); /* nginx answers HEAD with 206 too */
    assert_int_equal(r->status, 206);
    assert_int_equal(r->length, 4);
    /* conditionals come first */
    T.in.if_none_match = STR_LIT("\"56273e80-64\"");
    assert_int_equal(run("GET", "/file.bin")->status, 304);
    T.in.if_none_match = STR_NULL;
    T.in.if_match = STR_LIT("\"x\"");
    assert_status(run("GET", "/file.bin"), 412);
    T.in.if_match = STR_NULL;
    /* ranges apply to whichever file try_files chose */
    set_try_files("$uri", "/file.bin", NULL);
    T.in.range = STR_LIT("bytes=1-2");
    assert_internal(run("GET", "/zzz"), "/file.bin");
    assert_int_equal(run("GET", "/hello.txt")->status, 206);
    assert_body(&T.out, "el", 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T_(test_get_file),
        T_(test_head_file),
        T_(test_empty_file),
        T_(test_methods),
        T_(test_not_found),
        T_(test_forbidden_eacces),
        T_(test_dir_redirect),
        T_(test_index),
        T_(test_index_order),
        T_(test_root_forms),
        T_(test_alias_prefix),
        T_(test_alias_index_missing),
        T_(test_alias_regex),
        T_(test_try_files_spa),
        T_(test_try_files_extension),
        T_(test_try_files_fallbacks),
        T_(test_try_files_constant_and_dir),
        T_(test_try_files_alias),
        T_(test_try_files_unsafe),
        T_(test_eval_failure),
        T_(test_traversal),
        T_(test_alias_off_by_slash),
        T_(test_symlinks_off),
        T_(test_symlinks_on),
        T_(test_symlinks_if_not_owner),
        T_(test_mime),
        T_(test_if_none_match),
        T_(test_if_modified_since),
        T_(test_inm_and_ims_together),
        T_(test_preconditions),
        T_(test_range_single),
        T_(test_range_unsatisfiable_and_ignored),
        T_(test_range_if_range),
        T_(test_range_other_cases),
#undef T_
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
