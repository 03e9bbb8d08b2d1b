/*
 * gen.c - configuration generations: load (parse + build + check), free, and
 * the -T dump.
 *
 * gen_load() owns the order: the -g text is parsed and applied first, then
 * the main file, all into one arena that becomes the generation's; on any
 * error the half-built generation is freed with gen_free(), which releases
 * the PCRE2 codes recorded so far and then the arena, so error paths leak
 * nothing. The files read are kept (path + bytes) for gen_dump() (-T) and
 * for workers that may not be able to read them.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <errno.h>
#include <fcntl.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/directives.h"

/* Read a whole file into the arena (NUL-terminated). 0, or -1 on failure. */
static int slurp(struct arena *a, const char *path, struct str *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    char *buf = arena_alloc(a, size + 1);
    if (!buf) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *out = (struct str){buf, got};
    return 0;
}

static int add_file(struct generation *g, const char *path)
{
    for (unsigned i = 0; i < g->nfiles; i++)
        if (strcmp(g->files[i].path, path) == 0)
            return 0;
    if (g->nfiles == 0 || (g->nfiles >= 4 && (g->nfiles & (g->nfiles - 1)) == 0)) {
        unsigned cap = g->nfiles == 0 ? 4 : g->nfiles * 2;
        struct conf_file *n = arena_alloc(&g->arena, cap * sizeof(*n));
        if (!n)
            return -1;
        if (g->nfiles)
            memcpy(n, g->files, g->nfiles * sizeof(*n));
        g->files = n;
    }
    struct conf_file *f = &g->files[g->nfiles++];
    f->path = path;
    if (slurp(&g->arena, path, &f->text) != 0)
        f->text = STR_LIT("");
    return 0;
}

/* Files in the order their first directive appears (an include's place). */
static int collect_files(struct generation *g, const struct conf_node *n)
{
    for (; n; n = n->next) {
        if (n->file && strcmp(n->file, "command line") != 0 && add_file(g, n->file) != 0)
            return -1;
        if (n->children && collect_files(g, n->children) != 0)
            return -1;
    }
    return 0;
}

struct generation *gen_load(const char *prefix, const char *conf_path, const char *g_directives,
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

    int ok = 0;
    const struct conf_node *gtree = NULL;
    if (g_directives && g_directives[0]) {
        gtree = conf_parse_mem(g_directives, strlen(g_directives), "command line", p.conf_prefix,
                               CONF_PARSE_CMDLINE, &g->arena, &ok, err, errlen);
        if (!ok)
            goto fail;
    }
    const struct conf_node *tree = conf_parse_file(g->conf_path, NULL, &g->arena, &ok, err, errlen);
    if (!ok)
        goto fail;

    if (add_file(g, g->conf_path) != 0 || collect_files(g, gtree) != 0 ||
        collect_files(g, tree) != 0)
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

void gen_free(struct generation *g)
{
    if (!g)
        return;
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
