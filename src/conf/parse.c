/*
 * parse.c - nginx configuration text -> generic block tree (see parse.h).
 *
 * Owns the grammar on top of lexer.c's tokens: which token may follow which,
 * blocks, `include` expansion (plain files and glob(3) patterns), the limits
 * below, and the exact wording of nginx's syntax errors. It knows no other
 * directive than `include`.
 *
 * Memory: every node, argument array, string and file name comes from the
 * caller's arena. Two things are malloc'd and freed before returning: the
 * bytes of the file being read (tokens are copied out of them) and the
 * scratch array that collects a directive's words until its ';' or '{'.
 * When the caller asks for the files read (conf_read_files, for -T), each
 * file's bytes are also copied into the arena once.
 *
 * Each file, and the top-level text, is parsed on its own, as nginx does: a
 * block cannot open in one file and close in another, and a stray '}' in an
 * included file is an error in that file. Nodes read from an included file
 * are appended to the including block in place of the include directive and
 * carry the included file's name and lines.
 */
#include "conf/parse.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/lexer.h"
#include "core/arena.h"
#include "conf/snapshot.h"

#define CONF_MAX_INCLUDE_DEPTH 32       /* include inside include ... */
#define CONF_MAX_BLOCK_DEPTH 128        /* { inside { ..., across includes */
#define CONF_MAX_FILES 65536            /* files read by one parse (glob fan-out) */
#define CONF_MAX_FILE_SIZE (256u << 20) /* bytes of one file */

/* One input being tokenized: a file or the top-level text. */
struct source {
    const char *name;     /* arena: file name for nodes and messages */
    struct conf_lexer lx; /* cursor over the input bytes */
    unsigned depth;       /* include depth, 0 for the top-level input */
    int cmdline;          /* the -g text itself: nginx's "parse_param" rules */
};

/* Where the next node goes: the tail link of a sibling list. */
struct node_list {
    struct conf_node **tail;
};

struct parser {
    struct arena *a;       /* borrowed: receives the whole tree */
    unsigned flags;        /* CONF_PARSE_* */
    const char *prefix;    /* arena: "" or a directory ending in '/' */
    unsigned block_depth;  /* blocks open right now */
    unsigned nfiles;       /* files read so far */
    char **words;          /* owned scratch: the current directive's words */
    unsigned char *quoted; /* owned scratch: quoted flag of each word */
    size_t nwords, cap;
    unsigned first_line;           /* line of words[0] */
    unsigned close_line;           /* line of the '}' that ended the last block body */
    struct conf_read_files *files; /* borrowed, may be NULL: files read (-T) */
    char *err;                     /* borrowed: caller's message buffer */
    size_t errlen;
};

static int parse_file(struct parser *ps, const char *path, const struct source *from,
                      unsigned from_line, unsigned depth, struct node_list *list);

/*
 * Write an error message followed by its location: " in FILE:LINE", or
 * " in command line" for -g text, or nothing when `src` is NULL (failure to
 * open the top-level file, as nginx prints it). Always returns -1.
 */
__attribute__((format(printf, 4, 5))) static int perr(struct parser *ps, const struct source *src,
                                                      unsigned line, const char *fmt, ...)
{
    if (!ps->err || ps->errlen == 0)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(ps->err, ps->errlen, fmt, ap);
    va_end(ap);
    size_t used = n < 0 ? 0 : (size_t)n;
    if (used >= ps->errlen)
        return -1;
    if (src && src->cmdline)
        snprintf(ps->err + used, ps->errlen - used, " in command line");
    else if (src)
        snprintf(ps->err + used, ps->errlen - used, " in %s:%u", src->name, line);
    return -1;
}

/* Copy one word token into the arena (escapes folded) and add it to scratch. */
static int push_word(struct parser *ps, const struct source *src, const struct conf_token *t)
{
    if (ps->nwords == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 16;
        char **w = realloc(ps->words, cap * sizeof(*w));
        if (!w)
            return perr(ps, src, t->line, "out of memory");
        ps->words = w;
        unsigned char *q = realloc(ps->quoted, cap);
        if (!q)
            return perr(ps, src, t->line, "out of memory");
        ps->quoted = q;
        ps->cap = cap;
    }
    char *s = arena_alloc(ps->a, t->len + 1);
    if (!s)
        return perr(ps, src, t->line, "out of memory");
    conf_lex_unescape(t->p, t->len, s);
    if (ps->nwords == 0)
        ps->first_line = t->line;
    ps->words[ps->nwords] = s;
    ps->quoted[ps->nwords] = t->quoted;
    ps->nwords++;
    return 0;
}

/*
 * Turn the collected words into a node appended to `list`, and empty the
 * scratch. args is NULL-terminated beyond nargs, and args/quoted are never
 * NULL, so consumers need no special case for "no arguments".
 */
static struct conf_node *emit_node(struct parser *ps, const struct source *src, int is_block,
                                   unsigned end_line, struct node_list *list)
{
    unsigned nargs = (unsigned)(ps->nwords - 1);
    struct conf_node *n = arena_calloc(ps->a, sizeof(*n));
    char **args = arena_alloc(ps->a, ((size_t)nargs + 1) * sizeof(*args));
    unsigned char *quoted = arena_calloc(ps->a, (size_t)nargs + 1);
    if (!n || !args || !quoted) {
        perr(ps, src, ps->first_line, "out of memory");
        return NULL;
    }
    memcpy(args, ps->words + 1, (size_t)nargs * sizeof(*args));
    args[nargs] = NULL;
    memcpy(quoted, ps->quoted + 1, nargs);
    n->name = ps->words[0];
    n->args = args;
    n->quoted = quoted;
    n->nargs = nargs;
    n->file = src->name;
    n->line = ps->first_line;
    n->end_line = end_line;
    n->is_block = is_block;
    *list->tail = n;
    list->tail = &n->next;
    ps->nwords = 0;
    return n;
}

/* Relative include paths start at the prefix directory (nginx's conf prefix). */
static char *full_path(struct parser *ps, const char *path)
{
    if (path[0] == '/' || ps->prefix[0] == '\0')
        return arena_strdup(ps->a, path);
    return arena_printf(ps->a, "%s%s", ps->prefix, path);
}

/*
 * Expand `include PATH;` whose words are in scratch; `line` is the line of
 * its ';' (where nginx reports include errors). Included nodes go to `list`.
 */
static int do_include(struct parser *ps, const struct source *src, unsigned line,
                      struct node_list *list)
{
    if (ps->nwords != 2)
        return perr(ps, src, line, "invalid number of arguments in \"include\" directive");
    const char *arg = ps->words[1];
    ps->nwords = 0;
    if (ps->flags & CONF_PARSE_NO_INCLUDE)
        return perr(ps, src, line, "\"include\" directive is not allowed here");
    if (src->depth >= CONF_MAX_INCLUDE_DEPTH)
        return perr(ps, src, line, "includes nested deeper than %d levels (include cycle?)",
                    CONF_MAX_INCLUDE_DEPTH);

    char *path = full_path(ps, arg);
    if (!path)
        return perr(ps, src, line, "out of memory");
    if (!strpbrk(path, "*?["))
        return parse_file(ps, path, src, line, src->depth + 1, list);

    /* A pattern: every match in glob(3)'s sorted order; no match is fine. */
    char **names = NULL;
    size_t n = 0;
    if (snap_glob(path, &names, &n) != 0) {
        int e = errno;
        if (e)
            return perr(ps, src, line, "glob() \"%s\" failed (%d: %s)", path, e, strerror(e));
        return perr(ps, src, line, "glob() \"%s\" failed", path);
    }
    int res = 0;
    for (size_t i = 0; i < n && res == 0; i++) {
        char *name = arena_strdup(ps->a, names[i]);
        if (!name)
            res = perr(ps, src, line, "out of memory");
        else
            res = parse_file(ps, name, src, line, src->depth + 1, list);
    }
    snap_glob_free(names, n);
    return res;
}

/*
 * Parse directives until the end of the input (in_block = 0) or the '}'
 * closing the current block (in_block = 1), appending nodes to `list`.
 * Returns 0, or -1 with the message written.
 */
static int parse_body(struct parser *ps, struct source *src, int in_block, struct node_list *list)
{
    struct conf_token t;

    for (;;) {
        switch (conf_lex_next(&src->lx, &t)) {
        case CONF_TOK_WORD:
            if (push_word(ps, src, &t) != 0)
                return -1;
            break;

        case CONF_TOK_SEMI:
            if (ps->nwords == 0)
                return perr(ps, src, t.line, "unexpected \";\"");
            if (strcmp(ps->words[0], "include") == 0) {
                if (do_include(ps, src, t.line, list) != 0)
                    return -1;
            } else if (!emit_node(ps, src, 0, t.line, list)) {
                return -1;
            }
            break;

        case CONF_TOK_LBRACE: {
            if (ps->nwords == 0)
                return perr(ps, src, t.line, "unexpected \"{\"");
            if (src->cmdline)
                return perr(ps, src, t.line, "block directives are not supported in -g option");
            if (strcmp(ps->words[0], "include") == 0)
                return perr(ps, src, t.line, "directive \"include\" is not terminated by \";\"");
            if (ps->block_depth >= CONF_MAX_BLOCK_DEPTH)
                return perr(ps, src, t.line, "blocks nested deeper than %d levels",
                            CONF_MAX_BLOCK_DEPTH);
            struct conf_node *n = emit_node(ps, src, 1, t.line, list);
            if (!n)
                return -1;
            struct node_list children = {&n->children};
            ps->block_depth++;
            if (parse_body(ps, src, 1, &children) != 0)
                return -1;
            ps->block_depth--;
            n->close_line = ps->close_line;
            break;
        }

        case CONF_TOK_RBRACE:
            /* nginx: a '}' after words, or with no block open in this file. */
            if (ps->nwords != 0 || !in_block)
                return perr(ps, src, t.line, "unexpected \"}\"");
            ps->close_line = t.line;
            return 0;

        case CONF_TOK_EOF:
            if (ps->nwords != 0 || t.partial) {
                if (src->cmdline)
                    return perr(ps, src, t.line, "unexpected end of parameter, expecting \";\"");
                return perr(ps, src, t.line, "unexpected end of file, expecting \";\" or \"}\"");
            }
            if (in_block)
                return perr(ps, src, t.line, "unexpected end of file, expecting \"}\"");
            return 0;

        case CONF_TOK_ERROR:
            return perr(ps, src, t.line, "%s", src->lx.msg);
        }
    }
}

/*
 * Read the whole file into a malloc'd buffer (*out, *outlen; caller frees),
 * through the snapshot layer (a reload in a worker reads the master's copy).
 * Like nginx, the size comes from fstat(), so FIFOs and devices read as empty
 * instead of blocking or never ending, and a directory fails in read().
 * Errors are located at the including directive (`from`), or unlocated for
 * the top-level file.
 */
static int read_file(struct parser *ps, const char *path, const struct source *from,
                     unsigned from_line, char **out, size_t *outlen)
{
    const char *what = "open()";
    if (snap_read_file(path, CONF_MAX_FILE_SIZE, out, outlen, &what) == 0)
        return 0;
    int e = errno;
    if (e == EFBIG)
        return perr(ps, from, from_line, "file \"%s\" is larger than %u MiB", path,
                    CONF_MAX_FILE_SIZE >> 20);
    return perr(ps, from, from_line, "%s \"%s\" failed (%d: %s)", what, path, e, strerror(e));
}

static unsigned path_hash(const char *s)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* Slot of `path` in the index (an empty slot when absent). index_cap > 0. */
static struct conf_read_file **index_slot(struct conf_read_files *fl, const char *path)
{
    unsigned mask = fl->index_cap - 1;
    for (unsigned i = path_hash(path) & mask;; i = (i + 1) & mask)
        if (!fl->index[i] || strcmp(fl->index[i]->path, path) == 0)
            return &fl->index[i];
}

/*
 * Append the file just read to ps->files unless it is there already (bytes
 * copied into the arena). The index is an open-addressing table kept at most
 * half full, rebuilt (in the arena) when it doubles.
 */
static int record_file(struct parser *ps, const char *path, const char *buf, size_t len)
{
    struct conf_read_files *fl = ps->files;
    if (fl->index_cap && *index_slot(fl, path))
        return 0;
    if ((fl->n + 1) * 2 > fl->index_cap) {
        unsigned cap = fl->index_cap ? fl->index_cap * 2 : 16;
        struct conf_read_file **idx = arena_calloc(ps->a, cap * sizeof(*idx));
        if (!idx)
            return -1;
        fl->index = idx;
        fl->index_cap = cap;
        for (struct conf_read_file *f = fl->head; f; f = f->next)
            *index_slot(fl, f->path) = f;
    }
    struct conf_read_file *f = arena_calloc(ps->a, sizeof(*f));
    char *text = arena_strndup(ps->a, buf, len);
    if (!f || !text)
        return -1;
    f->path = path;
    f->text = text;
    f->len = len;
    *index_slot(fl, path) = f;
    if (fl->tail)
        fl->tail->next = f;
    else
        fl->head = f;
    fl->tail = f;
    fl->n++;
    return 0;
}

/* Read and parse one file at include depth `depth`, appending its nodes to `list`. */
static int parse_file(struct parser *ps, const char *path, const struct source *from,
                      unsigned from_line, unsigned depth, struct node_list *list)
{
    if (ps->nfiles >= CONF_MAX_FILES)
        return perr(ps, from, from_line, "more than %d files included", CONF_MAX_FILES);
    ps->nfiles++;

    char *buf = NULL;
    size_t len = 0;
    if (read_file(ps, path, from, from_line, &buf, &len) != 0)
        return -1;
    if (ps->files && record_file(ps, path, buf, len) != 0) {
        free(buf);
        return perr(ps, from, from_line, "out of memory");
    }

    struct source src = {.name = path, .depth = depth, .cmdline = 0};
    conf_lex_init(&src.lx, buf, len);
    int rc = parse_body(ps, &src, 0, list);
    free(buf);
    return rc;
}

/*
 * Set up the parser: arena, flags, error buffer, and the prefix normalised to
 * "" or a directory ending in '/'. When `prefix` is NULL and `path` is given,
 * the prefix is the directory part of `path`.
 */
static int parser_init(struct parser *ps, struct arena *a, unsigned flags, const char *prefix,
                       const char *path, struct conf_read_files *files, char *err, size_t errlen)
{
    memset(ps, 0, sizeof(*ps));
    ps->a = a;
    ps->flags = flags;
    ps->files = files;
    ps->err = err;
    ps->errlen = errlen;
    if (err && errlen)
        err[0] = '\0';

    if (!prefix && path) {
        const char *slash = strrchr(path, '/');
        ps->prefix = arena_strndup(a, path, slash ? (size_t)(slash - path) + 1 : 0);
    } else if (prefix && prefix[0] && prefix[strlen(prefix) - 1] != '/') {
        ps->prefix = arena_printf(a, "%s/", prefix);
    } else {
        ps->prefix = arena_strdup(a, prefix ? prefix : "");
    }
    if (!ps->prefix)
        return perr(ps, NULL, 0, "out of memory");
    return 0;
}

/* Release the scratch and report the outcome through *ok. */
static struct conf_node *parser_finish(struct parser *ps, int rc, struct conf_node *head, int *ok)
{
    free(ps->words);
    free(ps->quoted);
    ps->words = NULL;
    ps->quoted = NULL;
    if (ok)
        *ok = rc == 0;
    return rc == 0 ? head : NULL;
}

struct conf_node *conf_parse_file_ex(const char *path, const char *prefix, struct arena *a,
                                     struct conf_read_files *files, int *ok, char *err,
                                     size_t errlen)
{
    struct parser ps;
    struct conf_node *head = NULL;
    struct node_list list = {&head};

    int rc = parser_init(&ps, a, 0, prefix, path, files, err, errlen);
    if (rc == 0) {
        char *name = arena_strdup(a, path);
        rc = name ? parse_file(&ps, name, NULL, 0, 0, &list) : perr(&ps, NULL, 0, "out of memory");
    }
    return parser_finish(&ps, rc, head, ok);
}

struct conf_node *conf_parse_file(const char *path, const char *prefix, struct arena *a, int *ok,
                                  char *err, size_t errlen)
{
    return conf_parse_file_ex(path, prefix, a, NULL, ok, err, errlen);
}

struct conf_node *conf_parse_mem_ex(const char *text, size_t len, const char *name,
                                    const char *prefix, unsigned flags, struct arena *a,
                                    struct conf_read_files *files, int *ok, char *err,
                                    size_t errlen)
{
    struct parser ps;
    struct conf_node *head = NULL;
    struct node_list list = {&head};

    int rc = parser_init(&ps, a, flags, prefix, NULL, files, err, errlen);
    if (rc == 0) {
        struct source src = {.depth = 0, .cmdline = (flags & CONF_PARSE_CMDLINE) != 0};
        src.name = arena_strdup(a, name ? name : "command line");
        if (!src.name) {
            rc = perr(&ps, NULL, 0, "out of memory");
        } else {
            conf_lex_init(&src.lx, text ? text : "", text ? len : 0);
            rc = parse_body(&ps, &src, 0, &list);
        }
    }
    return parser_finish(&ps, rc, head, ok);
}

struct conf_node *conf_parse_mem(const char *text, size_t len, const char *name, const char *prefix,
                                 unsigned flags, struct arena *a, int *ok, char *err, size_t errlen)
{
    return conf_parse_mem_ex(text, len, name, prefix, flags, a, NULL, ok, err, errlen);
}

struct conf_node *conf_parse_string(const char *text, const char *name, const char *prefix,
                                    struct arena *a, int *ok, char *err, size_t errlen)
{
    return conf_parse_mem(text, text ? strlen(text) : 0, name, prefix, 0, a, ok, err, errlen);
}
