/*
 * test_parse.c - conf/parse.c: tree shape, lines and files, include + glob,
 * limits, and every syntax error with its exact nginx wording and location.
 *
 * Trees are compared through dump(), which renders a node list as
 *     name arg "quoted arg"; block { child; }
 * Include tests build files in a fresh mkdtemp() directory per test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/parse.h"
#include "core/arena.h"

/* Per-test state: an arena for the tree and a temp directory for files. */
struct fx {
    struct arena a;
    char dir[64];
    char err[512];
    int ok;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    arena_init(&f->a, 0);
    snprintf(f->dir, sizeof(f->dir), "/tmp/sy_test_parse.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    arena_destroy(&f->a);
    free(f);
    return 0;
}

/* Write `text` to DIR/rel (creating DIR/sub directories as needed). */
static void put(struct fx *f, const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
    for (char *s = path + strlen(f->dir) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        mkdir(path, 0755);
        *s = '/';
    }
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* DIR/rel in the arena. */
static char *at(struct fx *f, const char *rel)
{
    return arena_printf(&f->a, "%s/%s", f->dir, rel);
}

static void dump_list(const struct conf_node *n, char *out, size_t cap, size_t *o)
{
    for (; n; n = n->next) {
        *o += (size_t)snprintf(out + *o, cap - *o, "%s%s", *o ? " " : "", n->name);
        for (unsigned i = 0; i < n->nargs && *o < cap; i++)
            *o +=
                (size_t)snprintf(out + *o, cap - *o, n->quoted[i] ? " \"%s\"" : " %s", n->args[i]);
        if (*o >= cap)
            return;
        if (n->is_block) {
            *o += (size_t)snprintf(out + *o, cap - *o, " {");
            if (*o >= cap)
                return;
            dump_list(n->children, out, cap, o);
            if (*o >= cap)
                return;
            *o += (size_t)snprintf(out + *o, cap - *o, " }");
        } else {
            *o += (size_t)snprintf(out + *o, cap - *o, ";");
        }
        if (*o >= cap)
            return;
    }
}

static const char *dump(const struct conf_node *n)
{
    static char out[16384];
    size_t o = 0;
    out[0] = '\0';
    dump_list(n, out, sizeof(out), &o);
    return out;
}

/* Parse text named "t.conf" with prefix DIR; returns the tree. */
static struct conf_node *pstr(struct fx *f, const char *text)
{
    f->err[0] = '\0';
    return conf_parse_string(text, "t.conf", f->dir, &f->a, &f->ok, f->err, sizeof(f->err));
}

static struct conf_node *pfile(struct fx *f, const char *rel, const char *prefix)
{
    f->err[0] = '\0';
    return conf_parse_file(at(f, rel), prefix, &f->a, &f->ok, f->err, sizeof(f->err));
}

/* ---- tree shape ---------------------------------------------------------- */

static void test_tree_shape(void **state)
{
    struct fx *f = *state;
    const char *text = "user www-data;\n"
                       "events { worker_connections 1024; }\n"
                       "http {\n"
                       "    upstream app { server 127.0.0.1:8080 weight=2; server b:80; }\n"
                       "    server {\n"
                       "        listen 80;\n"
                       "        location / { proxy_pass http://app; }\n"
                       "        location = /x {}\n"
                       "    }\n"
                       "}\n";
    struct conf_node *root = pstr(f, text);
    assert_int_equal(f->ok, 1);
    assert_string_equal(f->err, "");
    assert_string_equal(dump(root),
                        "user www-data; events { worker_connections 1024; } http { upstream "
                        "app { server 127.0.0.1:8080 weight=2; server b:80; } server { listen "
                        "80; location / { proxy_pass http://app; } location = /x { } } }");

    /* walk it by hand: order, nargs, is_block, children */
    assert_string_equal(root->name, "user");
    assert_int_equal(root->is_block, 0);
    assert_null(root->children);
    struct conf_node *http = root->next->next;
    assert_string_equal(http->name, "http");
    assert_int_equal(http->nargs, 0);
    assert_int_equal(http->is_block, 1);
    assert_null(http->next);
    struct conf_node *server = http->children->next;
    assert_string_equal(server->name, "server");
    struct conf_node *loc2 = server->children->next->next;
    assert_string_equal(loc2->name, "location");
    assert_int_equal(loc2->nargs, 2);
    assert_string_equal(loc2->args[0], "=");
    assert_string_equal(loc2->args[1], "/x");
    assert_null(loc2->args[2]);
    assert_int_equal(loc2->is_block, 1);
    assert_null(loc2->children);
}

static void test_lines_and_file(void **state)
{
    struct fx *f = *state;
    const char *text = "# header\n"
                       "a 1;\n"
                       "\n"
                       "b {\n"
                       "  c\n"
                       "    \"x\n"
                       "y\"\n"
                       "    ;\n"
                       "  d; e;\n"
                       "}\n";
    struct conf_node *n = pstr(f, text);
    assert_int_equal(f->ok, 1);
    assert_string_equal(n->file, "t.conf");
    assert_int_equal(n->line, 2);
    struct conf_node *b = n->next;
    assert_int_equal(b->line, 4);
    struct conf_node *c = b->children;
    assert_string_equal(c->name, "c");
    assert_int_equal(c->line, 5); /* first token's line, not the ';' line */
    assert_string_equal(c->args[0], "x\ny");
    assert_int_equal(c->next->line, 9);
    assert_int_equal(c->next->next->line, 9);
    assert_string_equal(c->next->next->file, "t.conf");
}

/* end_line: the ';' or '{' ending a directive; close_line: a block's '}'. */
static void test_end_and_close_lines(void **state)
{
    struct fx *f = *state;
    const char *text = "a 1;\n"         /* 1 */
                       "b\n"            /* 2 */
                       "  x\n"          /* 3 */
                       "{\n"            /* 4 */
                       "  c \"q\n"      /* 5 */
                       "\"\n"           /* 6 */
                       "  ;\n"          /* 7 */
                       "  d {\n"        /* 8 */
                       "  } e { }\n"    /* 9 */
                       "\n"             /* 10 */
                       "}\n"            /* 11 */
                       "listen 80\n"    /* 12 */
                       "location / {\n" /* 13 */
                       "}\n";           /* 14 */
    struct conf_node *n = pstr(f, text);
    assert_int_equal(f->ok, 1);
    assert_int_equal(n->line, 1);
    assert_int_equal(n->end_line, 1);
    assert_int_equal(n->close_line, 0);
    struct conf_node *b = n->next;
    assert_int_equal(b->line, 2);
    assert_int_equal(b->end_line, 4);
    assert_int_equal(b->close_line, 11);
    struct conf_node *c = b->children;
    assert_int_equal(c->line, 5);
    assert_int_equal(c->end_line, 7);
    assert_int_equal(c->close_line, 0);
    struct conf_node *d = c->next;
    assert_int_equal(d->end_line, 8);
    assert_int_equal(d->close_line, 9);
    struct conf_node *e = d->next;
    assert_int_equal(e->line, 9);
    assert_int_equal(e->end_line, 9);
    assert_int_equal(e->close_line, 9);
    /* a missing ';': "listen 80 location /" is one block directive, ended on line 13 */
    struct conf_node *l = b->next;
    assert_string_equal(l->name, "listen");
    assert_int_equal(l->nargs, 3);
    assert_int_equal(l->line, 12);
    assert_int_equal(l->end_line, 13);
    assert_int_equal(l->close_line, 14);

    /* included nodes carry their own file's lines */
    put(f, "inc.conf", "\n\nx\n{\n}\n");
    n = pstr(f, "y {\n include inc.conf;\n}\n");
    assert_int_equal(f->ok, 1);
    assert_int_equal(n->close_line, 3);
    assert_int_equal(n->children->end_line, 4);
    assert_int_equal(n->children->close_line, 5);
}

static void test_quoted_flags(void **state)
{
    struct fx *f = *state;
    struct conf_node *n = pstr(f, "add_header X-A \"a b\" 'c' always \"\";\nflag;");
    assert_int_equal(f->ok, 1);
    assert_int_equal(n->nargs, 5);
    assert_string_equal(n->args[0], "X-A");
    assert_string_equal(n->args[1], "a b");
    assert_string_equal(n->args[2], "c");
    assert_string_equal(n->args[3], "always");
    assert_string_equal(n->args[4], "");
    assert_int_equal(n->quoted[0], 0);
    assert_int_equal(n->quoted[1], 1);
    assert_int_equal(n->quoted[2], 1);
    assert_int_equal(n->quoted[3], 0);
    assert_int_equal(n->quoted[4], 1);
    assert_null(n->args[5]);
    /* no arguments: args and quoted still valid, args[0] == NULL */
    struct conf_node *m = n->next;
    assert_int_equal(m->nargs, 0);
    assert_non_null(m->args);
    assert_null(m->args[0]);
    assert_non_null(m->quoted);
    /* a quoted name is unquoted like any word */
    n = pstr(f, "\"proxy_pass\" http://x;");
    assert_string_equal(n->name, "proxy_pass");
}

static void test_escapes_and_vars(void **state)
{
    struct fx *f = *state;
    struct conf_node *n = pstr(f, "set $a \"x\\\"y\\\\z\\n\";\n"
                                  "return 200 '${host}$uri\\t\\q';\n"
                                  "if ($http_x = \"a b\") { return 403; }\n"
                                  "if ($a = b) { }\n"
                                  "rewrite \"^/(.*)${x}{2}$\" /$1;\n");
    assert_int_equal(f->ok, 1);
    assert_string_equal(n->args[1], "x\"y\\z\n");
    n = n->next;
    assert_string_equal(n->args[1], "${host}$uri\t\\q");
    n = n->next;
    assert_string_equal(dump(n), "if ($http_x = \"a b\" ) { return 403; } if ($a = b) { } "
                                 "rewrite \"^/(.*)${x}{2}$\" /$1;");
    /* unquoted, the '{' of a quantifier opens a block, as in nginx */
    n = pstr(f, "rewrite ^/a{2}$ /b; }");
    assert_int_equal(f->ok, 1);
    assert_string_equal(dump(n), "rewrite ^/a { 2}$ /b; }");
}

static void test_empty_inputs(void **state)
{
    struct fx *f = *state;
    assert_null(pstr(f, ""));
    assert_int_equal(f->ok, 1);
    assert_null(pstr(f, "  # just a comment\n\n# another"));
    assert_int_equal(f->ok, 1);
    assert_string_equal(f->err, "");
    /* NULL text and NULL name are tolerated */
    assert_null(conf_parse_string(NULL, NULL, NULL, &f->a, &f->ok, f->err, sizeof(f->err)));
    assert_int_equal(f->ok, 1);
    struct conf_node *n = conf_parse_string("a;", NULL, NULL, &f->a, &f->ok, NULL, 0);
    assert_int_equal(f->ok, 1);
    assert_string_equal(n->file, "command line");
}

/* ---- errors ------------------------------------------------------------- */

struct err_case {
    const char *in;
    const char *want;
};

static const struct err_case err_cases[] = {
    {"}", "unexpected \"}\" in t.conf:1"},
    {"a;\n\n}", "unexpected \"}\" in t.conf:3"},
    {"a {}\n}\n", "unexpected \"}\" in t.conf:2"},
    {"a { b }", "unexpected \"}\" in t.conf:1"},
    {"a { b\n}", "unexpected \"}\" in t.conf:2"},
    {"a \"b\"}", "unexpected \"}\" in t.conf:1"},
    {"a {", "unexpected end of file, expecting \"}\" in t.conf:1"},
    {"http {\n", "unexpected end of file, expecting \"}\" in t.conf:2"},
    {"http {\n  server {\n  }\n\n", "unexpected end of file, expecting \"}\" in t.conf:5"},
    {"a b", "unexpected end of file, expecting \";\" or \"}\" in t.conf:1"},
    {"a b\n", "unexpected end of file, expecting \";\" or \"}\" in t.conf:2"},
    {"a { b c }", "unexpected \"}\" in t.conf:1"},
    {"a { b c", "unexpected end of file, expecting \";\" or \"}\" in t.conf:1"},
    {"a \"b", "unexpected end of file, expecting \";\" or \"}\" in t.conf:1"},
    {"a 'b\n\n", "unexpected end of file, expecting \";\" or \"}\" in t.conf:3"},
    {"a\\", "unexpected end of file, expecting \";\" or \"}\" in t.conf:1"},
    {";", "unexpected \";\" in t.conf:1"},
    {"a;\n;", "unexpected \";\" in t.conf:2"},
    {"a { ; }", "unexpected \";\" in t.conf:1"},
    {"{", "unexpected \"{\" in t.conf:1"},
    {"a {\n  { }\n}", "unexpected \"{\" in t.conf:2"},
    {"a \"b\"c;", "unexpected \"c\" in t.conf:1"},
    {"a\n\"b\"#;", "unexpected \"#\" in t.conf:2"},
    {"a 'b''c';", "unexpected \"'\" in t.conf:1"},
    {"include;", "invalid number of arguments in \"include\" directive in t.conf:1"},
    {"include a b;", "invalid number of arguments in \"include\" directive in t.conf:1"},
    {"include a\n  b\n;", "invalid number of arguments in \"include\" directive in t.conf:3"},
    {"include x {}", "directive \"include\" is not terminated by \";\" in t.conf:1"},
    {"include {", "directive \"include\" is not terminated by \";\" in t.conf:1"},
};

static void test_errors(void **state)
{
    struct fx *f = *state;
    int bad = 0;
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        f->ok = -1;
        struct conf_node *n = pstr(f, err_cases[i].in);
        if (n || f->ok != 0 || strcmp(f->err, err_cases[i].want) != 0) {
            print_error("case %zu: in=<%s>\n  want <%s>\n  got  <%s> ok=%d\n", i, err_cases[i].in,
                        err_cases[i].want, f->err, f->ok);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* The same errors when the text comes from a file, named by its path. */
static void test_errors_in_file(void **state)
{
    struct fx *f = *state;
    put(f, "bad.conf", "events {}\nhttp {\n  server {\n    listen 80\n  }\n}\n");
    assert_null(pfile(f, "bad.conf", NULL));
    assert_int_equal(f->ok, 0);
    char *want = arena_printf(&f->a, "unexpected \"}\" in %s/bad.conf:5", f->dir);
    assert_string_equal(f->err, want);
}

static void test_nul_byte(void **state)
{
    struct fx *f = *state;
    assert_null(
        conf_parse_mem("a;\nb\0c;", 7, "t.conf", NULL, 0, &f->a, &f->ok, f->err, sizeof(f->err)));
    assert_int_equal(f->ok, 0);
    assert_string_equal(f->err, "unexpected NUL byte in t.conf:2");
    /* conf_parse_mem reads exactly len bytes: here "a;" */
    struct conf_node *n =
        conf_parse_mem("a;b", 2, "t.conf", NULL, 0, &f->a, &f->ok, f->err, sizeof(f->err));
    assert_int_equal(f->ok, 1);
    assert_string_equal(dump(n), "a;");
}

static void test_cmdline(void **state)
{
    struct fx *f = *state;
    struct {
        const char *in;
        const char *want;
    } cases[] = {
        {"pid /x", "unexpected end of parameter, expecting \";\" in command line"},
        {"pid \"/x", "unexpected end of parameter, expecting \";\" in command line"},
        {"events {}", "block directives are not supported in -g option in command line"},
        {"}", "unexpected \"}\" in command line"},
        {"a; ;", "unexpected \";\" in command line"},
        {"a \"b\"c;", "unexpected \"c\" in command line"},
        {"include a b;", "invalid number of arguments in \"include\" directive in command line"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_null(conf_parse_mem(cases[i].in, strlen(cases[i].in), "command line", NULL,
                                   CONF_PARSE_CMDLINE, &f->a, &f->ok, f->err, sizeof(f->err)));
        assert_int_equal(f->ok, 0);
        assert_string_equal(f->err, cases[i].want);
    }
    const char *g = "pid /run/x.pid; worker_processes 2;";
    struct conf_node *n = conf_parse_mem(g, strlen(g), "command line", NULL, CONF_PARSE_CMDLINE,
                                         &f->a, &f->ok, f->err, sizeof(f->err));
    assert_int_equal(f->ok, 1);
    assert_string_equal(dump(n), "pid /run/x.pid; worker_processes 2;");
    assert_string_equal(n->file, "command line");

    /* a file included from -g is an ordinary file: blocks are fine there */
    put(f, "g.conf", "events { }\n");
    const char *gi = "include g.conf;";
    n = conf_parse_mem(gi, strlen(gi), "command line", f->dir, CONF_PARSE_CMDLINE, &f->a, &f->ok,
                       f->err, sizeof(f->err));
    assert_int_equal(f->ok, 1);
    assert_string_equal(dump(n), "events { }");
}

static void test_no_include_flag(void **state)
{
    struct fx *f = *state;
    put(f, "x.conf", "a;\n");
    const char *t = "a;\ninclude x.conf;";
    assert_null(conf_parse_mem(t, strlen(t), "t.conf", f->dir, CONF_PARSE_NO_INCLUDE, &f->a, &f->ok,
                               f->err, sizeof(f->err)));
    assert_string_equal(f->err, "\"include\" directive is not allowed here in t.conf:2");
    /* argument checks still come first */
    t = "include;";
    assert_null(conf_parse_mem(t, strlen(t), "t.conf", f->dir, CONF_PARSE_NO_INCLUDE, &f->a, &f->ok,
                               f->err, sizeof(f->err)));
    assert_string_equal(f->err, "invalid number of arguments in \"include\" directive in t.conf:1");
}

/* A short error buffer truncates but stays NUL-terminated; NULL is allowed. */
static void test_small_err_buffer(void **state)
{
    struct fx *f = *state;
    char small[12];
    memset(small, 'Z', sizeof(small));
    assert_null(conf_parse_string("}", "t.conf", NULL, &f->a, &f->ok, small, sizeof(small)));
    assert_int_equal(f->ok, 0);
    assert_string_equal(small, "unexpected ");
    char mid[20]; /* the location part is cut too */
    memset(mid, 'Z', sizeof(mid));
    assert_null(
        conf_parse_string("}", "a-rather-long-name.conf", NULL, &f->a, &f->ok, mid, sizeof(mid)));
    assert_string_equal(mid, "unexpected \"}\" in a");
    assert_null(conf_parse_string("}", "t.conf", NULL, &f->a, &f->ok, NULL, 0));
    assert_int_equal(f->ok, 0);
    assert_null(conf_parse_string("}", "t.conf", NULL, &f->a, NULL, small, 1));
    assert_string_equal(small, "");
}

/* ---- limits --------------------------------------------------------------- */

static char *nested(int depth)
{
    char *s = malloc((size_t)depth * 4 + 16);
    assert_non_null(s);
    size_t o = 0;
    for (int i = 0; i < depth; i++)
        o += (size_t)sprintf(s + o, "b{\n");
    o += (size_t)sprintf(s + o, "x;");
    for (int i = 0; i < depth; i++)
        s[o++] = '}';
    s[o] = '\0';
    return s;
}

static void test_block_depth(void **state)
{
    struct fx *f = *state;
    char *s = nested(128);
    struct conf_node *n = pstr(f, s);
    assert_int_equal(f->ok, 1);
    for (int i = 0; i < 128; i++)
        n = n->children;
    assert_string_equal(n->name, "x");
    free(s);
    s = nested(129);
    assert_null(pstr(f, s));
    assert_string_equal(f->err, "blocks nested deeper than 128 levels in t.conf:129");
    free(s);
}

/* Big input and a big token: no small fixed limits. */
static void test_large_input(void **state)
{
    struct fx *f = *state;
    size_t ndir = 200000, tok = 512 * 1024;
    size_t cap = ndir * 32 + tok + 64;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t o = 0;
    for (size_t i = 0; i < ndir; i++)
        o += (size_t)snprintf(s + o, cap - o, "directive_%zu arg%zu;\n", i, i);
    o += (size_t)snprintf(s + o, cap - o, "big \"");
    memset(s + o, 'v', tok);
    o += tok;
    o += (size_t)snprintf(s + o, cap - o, "\";\n");
    put(f, "big.conf", s);
    free(s);

    struct conf_node *n = pfile(f, "big.conf", NULL);
    assert_int_equal(f->ok, 1);
    size_t count = 0;
    struct conf_node *last = NULL;
    for (; n; n = n->next, count++)
        last = n;
    assert_int_equal(count, ndir + 1);
    assert_string_equal(last->name, "big");
    assert_int_equal(strlen(last->args[0]), tok);
    assert_int_equal(last->line, ndir + 1);
}

/* ---- include ---------------------------------------------------------------- */

static void test_include_glob_order_and_origin(void **state)
{
    struct fx *f = *state;
    put(f, "main.conf",
        "events { }\n"
        "http {\n"
        "    include conf.d/*.conf;\n"
        "    include extra.conf;\n"
        "    server_tokens off;\n"
        "}\n");
    put(f, "conf.d/b.conf", "server { listen 81; }\n");
    put(f, "conf.d/a.conf", "\n\nserver { listen 80; }\nmap_hash_bucket_size 64;\n");
    put(f, "conf.d/c.txt", "not included;\n");
    put(f, "extra.conf", "# extra\nupstream u { server x; }\n");

    struct conf_node *root = pfile(f, "main.conf", NULL);
    assert_int_equal(f->ok, 1);
    assert_string_equal(dump(root), "events { } http { server { listen 80; } "
                                    "map_hash_bucket_size 64; server { listen 81; } upstream u "
                                    "{ server x; } server_tokens off; }");

    struct conf_node *http = root->next;
    struct conf_node *s80 = http->children;
    assert_string_equal(s80->file, at(f, "conf.d/a.conf"));
    assert_int_equal(s80->line, 3);
    assert_string_equal(s80->children->file, at(f, "conf.d/a.conf"));
    assert_int_equal(s80->children->line, 3);
    assert_int_equal(s80->next->line, 4);
    struct conf_node *s81 = s80->next->next;
    assert_string_equal(s81->file, at(f, "conf.d/b.conf"));
    assert_int_equal(s81->line, 1);
    struct conf_node *ups = s81->next;
    assert_string_equal(ups->file, at(f, "extra.conf"));
    assert_int_equal(ups->line, 2);
    struct conf_node *tokens = ups->next;
    assert_string_equal(tokens->file, at(f, "main.conf"));
    assert_int_equal(tokens->line, 5);
    assert_null(tokens->next);
}

/* Relative paths start at the prefix, not at the including file's directory. */
static void test_include_relative_to_prefix(void **state)
{
    struct fx *f = *state;
    put(f, "conf/nginx.conf", "include sub/one.conf;\n");
    put(f, "conf/sub/one.conf", "include sub/two.conf;\n"); /* relative to conf/, too */
    put(f, "conf/sub/two.conf", "two;\n");
    put(f, "other/sub/one.conf", "other_one;\n");

    /* prefix NULL: the directory of the main file */
    struct conf_node *n = pfile(f, "conf/nginx.conf", NULL);
    assert_int_equal(f->ok, 1);
    assert_string_equal(dump(n), "two;");
    assert_string_equal(n->file, at(f, "conf/sub/two.conf"));

    /* an explicit prefix, with or without the trailing slash */
    n = pfile(f, "conf/nginx.conf", at(f, "other"));
    assert_int_equal(f->ok, 1);
    assert_string_equal(dump(n), "other_one;");
    n = pfile(f, "conf/nginx.conf", at(f, "other/"));
    assert_int_equal(f->ok, 1);
    assert_string_equal(dump(n), "other_one;");

    /* absolute paths ignore the prefix */
    char *text = arena_printf(&f->a, "include %s;", at(f, "conf/sub/two.conf"));
    n = conf_parse_string(text, "t.conf", "/nonexistent", &f->a, &f->ok, f->err, sizeof(f->err));
    assert_int_equal(f->ok, 1);
    assert_string_equal(dump(n), "two;");

    /* from a string, relative to the given prefix */
    n = conf_parse_string("x { include sub/two.conf; }", "t.conf", at(f, "conf"), &f->a, &f->ok,
                          f->err, sizeof(f->err));
    assert_int_equal(f->ok, 1);
    assert_string_equal(dump(n), "x { two; }");
}

static void test_include_missing_file(void **state)
{
    struct fx *f = *state;
    put(f, "main.conf", "events {}\nhttp {\n    include missing.conf;\n}\n");
    assert_null(pfile(f, "main.conf", NULL));
    assert_int_equal(f->ok, 0);
    char *want = arena_printf(&f->a, "open() \"%s\" failed (2: No such file or directory) in %s:3",
                              at(f, "missing.conf"), at(f, "main.conf"));
    assert_string_equal(f->err, want);

    /* the error line is that of the ';', as nginx reports it */
    put(f, "main2.conf", "include\n  missing.conf\n  ;\n");
    assert_null(pfile(f, "main2.conf", NULL));
    want = arena_printf(&f->a, "open() \"%s\" failed (2: No such file or directory) in %s:3",
                        at(f, "missing.conf"), at(f, "main2.conf"));
    assert_string_equal(f->err, want);

    /* the main file itself: no location */
    assert_null(pfile(f, "nope.conf", NULL));
    want = arena_printf(&f->a, "open() \"%s\" failed (2: No such file or directory)",
                        at(f, "nope.conf"));
    assert_string_equal(f->err, want);
}

static void test_include_glob_no_match(void **state)
{
    struct fx *f = *state;
    put(f, "main.conf",
        "http {\n include sites/*.conf;\n include none-[0-9].conf;\n "
        "include nodir/?;\n a;\n}\n");
    struct conf_node *n = pfile(f, "main.conf", NULL);
    assert_int_equal(f->ok, 1);
    assert_string_equal(dump(n), "http { a; }");
}

static void test_include_depth(void **state)
{
    struct fx *f = *state;
    /* a file that includes itself stops at the limit, with its own location */
    put(f, "self.conf", "a;\ninclude self.conf;\n");
    assert_null(pfile(f, "self.conf", NULL));
    assert_int_equal(f->ok, 0);
    char *want =
        arena_printf(&f->a, "includes nested deeper than 32 levels (include cycle?) in %s:2",
                     at(f, "self.conf"));
    assert_string_equal(f->err, want);

    /* a chain: inc0 (main) includes inc1 ... includes incN */
    char rel[32], text[64];
    for (int i = 0; i <= 33; i++) {
        snprintf(rel, sizeof(rel), "chain/inc%d.conf", i);
        snprintf(text, sizeof(text), "include chain/inc%d.conf;\n", i + 1);
        put(f, rel, text);
    }
    /* 32 nested includes are fine: inc32 is a leaf */
    put(f, "chain/inc32.conf", "leaf;\n");
    struct conf_node *n = pfile(f, "chain/inc0.conf", f->dir);
    assert_int_equal(f->ok, 1);
    assert_string_equal(dump(n), "leaf;");
    assert_string_equal(n->file, at(f, "chain/inc32.conf"));
    /* 33 are not: the error is at the include in inc32 */
    put(f, "chain/inc32.conf", "include chain/inc33.conf;\n");
    put(f, "chain/inc33.conf", "leaf;\n");
    assert_null(pfile(f, "chain/inc0.conf", f->dir));
    want = arena_printf(&f->a, "includes nested deeper than 32 levels (include cycle?) in %s:1",
                        at(f, "chain/inc32.conf"));
    assert_string_equal(f->err, want);
}

/* Errors inside an included file name that file and its line. */
static void test_include_errors_located(void **state)
{
    struct fx *f = *state;
    put(f, "main.conf", "http {\n  include inc.conf;\n}\n");

    /* a '}' cannot close the includer's block */
    put(f, "inc.conf", "a;\n}\n");
    assert_null(pfile(f, "main.conf", NULL));
    char *want = arena_printf(&f->a, "unexpected \"}\" in %s:2", at(f, "inc.conf"));
    assert_string_equal(f->err, want);

    /* a block left open at the end of the included file */
    put(f, "inc.conf", "server {\n  listen 80;\n");
    assert_null(pfile(f, "main.conf", NULL));
    want =
        arena_printf(&f->a, "unexpected end of file, expecting \"}\" in %s:3", at(f, "inc.conf"));
    assert_string_equal(f->err, want);

    /* an unterminated directive at its end */
    put(f, "inc.conf", "listen 80");
    assert_null(pfile(f, "main.conf", NULL));
    want = arena_printf(&f->a, "unexpected end of file, expecting \";\" or \"}\" in %s:1",
                        at(f, "inc.conf"));
    assert_string_equal(f->err, want);

    /* nested: the innermost file is named */
    put(f, "inc.conf", "include inner.conf;\n");
    put(f, "inner.conf", "\n\n\"a\"b;\n");
    assert_null(pfile(f, "main.conf", NULL));
    want = arena_printf(&f->a, "unexpected \"b\" in %s:3", at(f, "inner.conf"));
    assert_string_equal(f->err, want);

    /* parsing stops at the first error: a later error is not reported */
    put(f, "inc.conf", "include missing1.conf;\n");
    put(f, "main.conf", "http {\n  include inc.conf;\n}\n}\n");
    assert_null(pfile(f, "main.conf", NULL));
    want = arena_printf(&f->a, "open() \"%s\" failed (2: No such file or directory) in %s:1",
                        at(f, "missing1.conf"), at(f, "inc.conf"));
    assert_string_equal(f->err, want);
}

/* Including a directory fails when reading it; an empty file adds nothing. */
static void test_include_directory_and_empty(void **state)
{
    struct fx *f = *state;
    put(f, "d/x.conf", "x;\n");
    put(f, "empty.conf", "");
    put(f, "main.conf", "a;\ninclude empty.conf;\nb;\n");
    struct conf_node *n = pfile(f, "main.conf", NULL);
    assert_int_equal(f->ok, 1);
    assert_string_equal(dump(n), "a; b;");

    put(f, "main.conf", "include d;\n");
    assert_null(pfile(f, "main.conf", NULL));
    char *want = arena_printf(&f->a, "read() \"%s\" failed (21: Is a directory) in %s:1",
                              at(f, "d"), at(f, "main.conf"));
    assert_string_equal(f->err, want);

    /* devices and FIFOs read as empty (fstat size), never block */
    put(f, "main.conf", "include /dev/null;\ninclude /dev/zero;\nc;\n");
    n = pfile(f, "main.conf", NULL);
    assert_int_equal(f->ok, 1);
    assert_string_equal(dump(n), "c;");
}

/* An include directive itself never appears in the tree. */
static void test_include_spliced(void **state)
{
    struct fx *f = *state;
    put(f, "p.conf", "proxy_set_header Host $host;\nproxy_set_header X-Real-IP $remote_addr;\n");
    struct conf_node *n =
        conf_parse_string("location / {\n  include p.conf;\n  proxy_pass http://b;\n}\n"
                          "location /x { include p.conf; }",
                          "t.conf", f->dir, &f->a, &f->ok, f->err, sizeof(f->err));
    assert_int_equal(f->ok, 1);
    assert_string_equal(dump(n),
                        "location / { proxy_set_header Host $host; proxy_set_header X-Real-IP "
                        "$remote_addr; proxy_pass http://b; } location /x { proxy_set_header "
                        "Host $host; proxy_set_header X-Real-IP $remote_addr; }");
    assert_int_equal(n->children->next->line, 2);
    assert_int_equal(n->children->next->next->line, 3);
    assert_string_equal(n->children->next->next->file, "t.conf");
}

/* ---- files read (for -T) ---------------------------------------------- */

static void test_files_recorded(void **state)
{
    struct fx *f = *state;
    put(f, "main.conf",
        "events { }\n"
        "include empty.conf;\n"
        "http {\n"
        "    include conf.d/*.conf;\n"
        "    include conf.d/a.conf;\n"
        "    include none.d/*.conf;\n"
        "}\n");
    put(f, "empty.conf", "");
    put(f, "conf.d/b.conf", "# only a comment\n");
    put(f, "conf.d/a.conf", "server { listen 80; }\n");

    struct conf_read_files files;
    memset(&files, 0, sizeof(files));
    f->err[0] = '\0';
    struct conf_node *root =
        conf_parse_file_ex(at(f, "main.conf"), NULL, &f->a, &files, &f->ok, f->err, sizeof(f->err));
    assert_int_equal(f->ok, 1);
    assert_non_null(root);
    /* every file opened, once, in the order first opened */
    assert_int_equal(files.n, 4);
    const struct conf_read_file *r = files.head;
    assert_string_equal(r->path, at(f, "main.conf"));
    assert_int_equal(r->len, strlen(r->text));
    assert_true(strncmp(r->text, "events { }\n", 11) == 0);
    r = r->next;
    assert_string_equal(r->path, at(f, "empty.conf"));
    assert_int_equal(r->len, 0);
    assert_string_equal(r->text, "");
    r = r->next;
    assert_string_equal(r->path, at(f, "conf.d/a.conf"));
    assert_string_equal(r->text, "server { listen 80; }\n");
    r = r->next;
    assert_string_equal(r->path, at(f, "conf.d/b.conf"));
    assert_string_equal(r->text, "# only a comment\n");
    assert_null(r->next);
    assert_ptr_equal(files.tail, r);

    /* the same list across parses (-g text, then the main file): appended, not repeated */
    put(f, "g.conf", "worker_processes 2;\n");
    const char *g = "include g.conf; include empty.conf;";
    struct conf_read_files both;
    memset(&both, 0, sizeof(both));
    assert_non_null(conf_parse_mem_ex(g, strlen(g), "command line", f->dir, CONF_PARSE_CMDLINE,
                                      &f->a, &both, &f->ok, f->err, sizeof(f->err)));
    assert_int_equal(f->ok, 1);
    assert_int_equal(both.n, 2); /* the -g text itself is no file */
    assert_non_null(
        conf_parse_file_ex(at(f, "main.conf"), NULL, &f->a, &both, &f->ok, f->err, sizeof(f->err)));
    assert_int_equal(both.n, 5);
    assert_string_equal(both.head->path, at(f, "g.conf"));
    assert_string_equal(both.head->next->path, at(f, "empty.conf"));
    assert_string_equal(both.head->next->next->path, at(f, "main.conf"));

    /* a failing parse keeps what it read; the old API records nothing */
    put(f, "bad.conf", "events { }\ninclude conf.d/a.conf;\n}\n");
    struct conf_read_files bad;
    memset(&bad, 0, sizeof(bad));
    assert_null(
        conf_parse_file_ex(at(f, "bad.conf"), NULL, &f->a, &bad, &f->ok, f->err, sizeof(f->err)));
    assert_int_equal(f->ok, 0);
    assert_int_equal(bad.n, 2);
    assert_non_null(pfile(f, "main.conf", NULL));
}

/* Many distinct files (the de-duplication index grows) keep their order. */
static void test_files_recorded_many(void **state)
{
    struct fx *f = *state;
    char name[64];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "many/f%03d.conf", i);
        put(f, name, "x;\n");
    }
    put(f, "main.conf", "include many/*.conf;\ninclude many/*.conf;\n");
    struct conf_read_files files;
    memset(&files, 0, sizeof(files));
    assert_non_null(conf_parse_file_ex(at(f, "main.conf"), NULL, &f->a, &files, &f->ok, f->err,
                                       sizeof(f->err)));
    assert_int_equal(files.n, 301);
    const struct conf_read_file *r = files.head->next;
    for (int i = 0; i < 300; i++, r = r->next) {
        snprintf(name, sizeof(name), "many/f%03d.conf", i);
        assert_string_equal(r->path, at(f, name));
    }
    assert_null(r);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_tree_shape),
        T(test_lines_and_file),
        T(test_end_and_close_lines),
        T(test_quoted_flags),
        T(test_escapes_and_vars),
        T(test_empty_inputs),
        T(test_errors),
        T(test_errors_in_file),
        T(test_nul_byte),
        T(test_cmdline),
        T(test_no_include_flag),
        T(test_small_err_buffer),
        T(test_block_depth),
        T(test_large_input),
        T(test_include_glob_order_and_origin),
        T(test_include_relative_to_prefix),
        T(test_include_missing_file),
        T(test_include_glob_no_match),
        T(test_include_depth),
        T(test_include_errors_located),
        T(test_include_directory_and_empty),
        T(test_include_spliced),
        T(test_files_recorded),
        T(test_files_recorded_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
