/*
 * gen.c - configuration generations: load (parse + build + check), free, and
 * the -T dump.
 *
 * gen_parse() owns the order: the -g text is parsed and applied first, then
 * the main file, all into one arena that becomes the generation's; gen_load()
 * adds the TLS contexts on top (tls_gen_load, through the gen_hooks that
 * proc installs: conf may not include tls). On any
 * error the half-built generation is freed with gen_free(), which releases
 * the PCRE2 codes recorded so far and then the arena, so error paths leak
 * nothing. The files read are kept (path + bytes as the parser read them,
 * every file opened, in the order first opened) for gen_dump() (-T) and for
 * workers that may not be able to read them.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/directives.h"

static const struct gen_hooks *hooks;

void gen_set_hooks(const struct gen_hooks *h)
{
    hooks = h;
}

/* g->files from the parser's list: every file read, in the order first opened. */
static int keep_files(struct generation *g, const struct conf_read_files *fl)
{
    g->nfiles = 0;
    g->files = arena_alloc(&g->arena, (fl->n + 1) * sizeof(*g->files));
    if (!g->files)
        return -1;
    for (const struct conf_read_file *f = fl->head; f; f = f->next) {
        struct conf_file *cf = &g->files[g->nfiles++];
        cf->path = f->path;
        cf->text = (struct str){f->text, f->len};
    }
    return 0;
}

struct generation *gen_parse(const char *prefix, const char *conf_path, const char *g_directives,
                             char *err, size_t errlen, char *warn, size_t warnlen)
{
    char errbuf[512];
    if (!err || errlen == 0) {
        err = errbuf;
        errlen = sizeof(errbuf);
    }
    err[0] = '\0';
    if (warn && warnlen)
        warn[0] = '\0';

    struct generation *g = calloc(1, sizeof(*g));
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    arena_init(&g->arena, 64 * 1024);
    g->refs = 1;
    g->serial = 1;

    struct conf_parser p;
    memset(&p, 0, sizeof(p));
    p.g = g;
    p.a = &g->arena;
    p.err = err;
    p.errlen = errlen;
    p.warn = warn;
    p.warnlen = warnlen;

    /* prefix ends in '/'; the main file is relative to it when not absolute */
    if (!prefix || !prefix[0])
        prefix = "./";
    size_t plen = strlen(prefix);
    g->prefix = prefix[plen - 1] == '/' ? arena_strdup(&g->arena, prefix)
                                        : arena_printf(&g->arena, "%s/", prefix);
    if (!g->prefix || !conf_path)
        goto oom;
    g->conf_path = conf_path[0] == '/' ? arena_strdup(&g->arena, conf_path)
                                       : arena_printf(&g->arena, "%s%s", g->prefix, conf_path);
    if (!g->conf_path)
        goto oom;
    const char *slash = strrchr(g->conf_path, '/');
    p.conf_prefix = arena_strndup(&g->arena, g->conf_path, (size_t)(slash - g->conf_path) + 1);
    if (!p.conf_prefix)
        goto oom;

    /* files included by the -g text come first, as nginx reads them first */
    struct conf_read_files files;
    memset(&files, 0, sizeof(files));
    int ok = 0;
    const struct conf_node *gtree = NULL;
    if (g_directives && g_directives[0]) {
        gtree = conf_parse_mem_ex(g_directives, strlen(g_directives), "command line", p.conf_prefix,
                                  CONF_PARSE_CMDLINE, &g->arena, &files, &ok, err, errlen);
        if (!ok)
            goto fail;
    }
    const struct conf_node *tree =
        conf_parse_file_ex(g->conf_path, NULL, &g->arena, &files, &ok, err, errlen);
    if (!ok)
        goto fail;
    if (keep_files(g, &files) != 0)
        goto oom;

    if (conf_build(&p, gtree, tree) != 0)
        goto fail;
    return g;

oom:
    snprintf(err, errlen, "out of memory");
fail:
    if (!err[0])
        snprintf(err, errlen, "configuration failed");
    gen_free(g);
    return NULL;
}

struct generation *gen_load(const char *prefix, const char *conf_path, const char *g_directives,
                            char *err, size_t errlen, char *warn, size_t warnlen)
{
    char errbuf[512];
    if (!err || errlen == 0) {
        err = errbuf;
        errlen = sizeof(errbuf);
    }
    struct generation *g = gen_parse(prefix, conf_path, g_directives, err, errlen, warn, warnlen);
    if (g && hooks && hooks->load && hooks->load(g, err, errlen, warn, warnlen) != 0) {
        gen_free(g);
        return NULL;
    }
    return g;
}

void gen_free(struct generation *g)
{
    if (!g)
        return;
    if (hooks && hooks->free)
        hooks->free(g);
    for (unsigned i = 0; i < g->nregexes; i++)
        pcre2_code_free(g->regexes[i]);
    g->nregexes = 0;
    arena_destroy(&g->arena);
    free(g);
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int gen_dump(const struct generation *g, int fd)
{
    for (unsigned i = 0; i < g->nfiles; i++) {
        const struct conf_file *f = &g->files[i];
        if (write_all(fd, "# configuration file ", 21) != 0 ||
            write_all(fd, f->path, strlen(f->path)) != 0 || write_all(fd, ":\n", 2) != 0 ||
            write_all(fd, f->text.p, f->text.len) != 0 || write_all(fd, "\n", 1) != 0)
            return -1;
    }
    return 0;
}
