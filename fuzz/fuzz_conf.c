/*
 * fuzz_conf.c - libFuzzer target for conf/lexer.c and conf/parse.c.
 *
 * Build (list only the lexer/parser sources, not the rest of src/conf):
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -D_GNU_SOURCE \
 *       fuzz/fuzz_conf.c src/conf/lexer.c src/conf/parse.c \
 *       src/core/arena.c src/core/str.c -o build/fuzz_conf
 *   build/fuzz_conf fuzz/corpus/conf            (fuzz)
 *   build/fuzz_conf -runs=0 fuzz/corpus/conf    (replay the corpus)
 *
 * Each input is used three ways:
 *   1. lexed directly: every token must lie inside the input and unescape
 *      to at most its raw length;
 *   2. parsed from memory as a file (any byte, NUL included) and, when that
 *      succeeds, printed back with every word quoted and parsed again: the
 *      two trees must be identical (names, args, blocks, order);
 *   3. parsed with the -g rules.
 * Includes are disabled (CONF_PARSE_NO_INCLUDE): a fuzzer that discovers an
 * include of an absolute glob would otherwise read the host's file system. The include
 * argument checks still run; include itself is covered by test_parse.c.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/lexer.h"
#include "conf/parse.h"
#include "core/arena.h"

/* A growable output buffer for re-printing trees; aborts on OOM (fuzzing only). */
struct out {
    char *p;
    size_t len, cap;
};

static void out_put(struct out *o, const char *s, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + n + 1)
            cap *= 2;
        o->p = realloc(o->p, cap);
        if (!o->p)
            abort();
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

/* Write `s` as a double-quoted word that unescapes back to exactly `s`. */
static void out_word(struct out *o, const char *s)
{
    out_put(o, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            out_put(o, "\\", 1);
        out_put(o, s, 1);
    }
    out_put(o, "\" ", 2);
}

static void print_tree(struct out *o, const struct conf_node *n)
{
    for (; n; n = n->next) {
        out_word(o, n->name);
        for (unsigned i = 0; i < n->nargs; i++)
            out_word(o, n->args[i]);
        if (n->is_block) {
            out_put(o, "{\n", 2);
            print_tree(o, n->children);
            out_put(o, "}\n", 2);
        } else {
            out_put(o, ";\n", 2);
        }
    }
}

/* Structural invariants every successful parse must satisfy. */
static void check_tree(const struct conf_node *n, unsigned depth)
{
    assert(depth <= 130);
    for (; n; n = n->next) {
        assert(n->name && n->args && n->quoted && n->file);
        assert(n->args[n->nargs] == NULL);
        assert(n->line >= 1);
        assert(n->is_block || n->children == NULL);
        for (unsigned i = 0; i < n->nargs; i++)
            assert(n->args[i] != NULL);
        check_tree(n->children, depth + 1);
    }
}

/* Same names, arguments, block structure and order (lines and quoting may differ). */
static int same_tree(const struct conf_node *a, const struct conf_node *b)
{
    for (; a && b; a = a->next, b = b->next) {
        if (strcmp(a->name, b->name) != 0 || a->nargs != b->nargs || a->is_block != b->is_block)
            return 0;
        for (unsigned i = 0; i < a->nargs; i++)
            if (strcmp(a->args[i], b->args[i]) != 0)
                return 0;
        if (!same_tree(a->children, b->children))
            return 0;
    }
    return a == NULL && b == NULL;
}

static void fuzz_lexer(const char *text, size_t size)
{
    struct conf_lexer lx;
    struct conf_token t;
    conf_lex_init(&lx, text, size);
    /* Every token consumes at least one byte, so size + 1 turns always suffice. */
    for (size_t turns = 0; turns <= size + 1; turns++) {
        enum conf_tok_type type = conf_lex_next(&lx, &t);
        if (type == CONF_TOK_EOF || type == CONF_TOK_ERROR)
            return;
        if (type == CONF_TOK_WORD) {
            assert(t.p >= text && t.p + t.len <= text + size);
            assert(t.len <= CONF_LEX_MAX_TOKEN);
            char *w = malloc(t.len + 1);
            if (!w)
                abort();
            size_t n = conf_lex_unescape(t.p, t.len, w);
            assert(n <= t.len && w[n] == '\0');
            free(w);
        }
    }
    assert(!"lexer did not reach EOF");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct arena a;
    char err[256];
    int ok = -1;

    fuzz_lexer(text, size);

    arena_init(&a, 0);
    struct conf_node *root = conf_parse_mem(text, size, "fuzz.conf", "/nonexistent/",
                                            CONF_PARSE_NO_INCLUDE, &a, &ok, err, sizeof(err));
    if (ok) {
        check_tree(root, 0);
        struct out o = {0};
        print_tree(&o, root);
        if (o.len) {
            int ok2 = -1;
            struct conf_node *again =
                conf_parse_mem(o.p, o.len, "again.conf", "/nonexistent/", CONF_PARSE_NO_INCLUDE, &a,
                               &ok2, err, sizeof(err));
            /* Re-printing can only fail when quoting pushed a word past the limit. */
            assert(ok2 == 1 || strstr(err, "too long parameter"));
            if (ok2 == 1)
                assert(same_tree(root, again));
        } else {
            assert(root == NULL);
        }
        free(o.p);
    } else {
        assert(ok == 0 && root == NULL);
        assert(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
        assert(strstr(err, " in fuzz.conf:") != NULL);
    }
    arena_destroy(&a);

    arena_init(&a, 0);
    ok = -1;
    root = conf_parse_mem(text, size, "command line", NULL,
                          CONF_PARSE_CMDLINE | CONF_PARSE_NO_INCLUDE, &a, &ok, err, sizeof(err));
    if (ok) {
        check_tree(root, 0);
        for (const struct conf_node *n = root; n; n = n->next)
            assert(!n->is_block);
    } else {
        assert(ok == 0 && root == NULL && strstr(err, " in command line") != NULL);
    }
    arena_destroy(&a);
    return 0;
}
