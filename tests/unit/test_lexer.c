/*
 * test_lexer.c - token sequences of conf/lexer.c against nginx's rules.
 *
 * Most cases are a table: input text -> the tokens rendered as one string,
 *   [word]      a bare word (escapes folded)
 *   q[word]     a quoted word
 *   ; { }       the punctuation tokens
 *   EOF / EOF*  end of input (EOF* = inside an unterminated quote)
 *   !msg@line   an error with its message and line
 * so a failure prints the whole sequence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf/lexer.h"

/* Lex `len` bytes and render every token, up to and including EOF or an error. */
static char *render(const char *text, size_t len)
{
    static char out[8192];
    size_t o = 0;
    struct conf_lexer lx;
    struct conf_token t;

    out[0] = '\0';
    conf_lex_init(&lx, text, len);
    for (int guard = 0; guard < 1000; guard++) {
        enum conf_tok_type type = conf_lex_next(&lx, &t);
        char buf[1024];
        switch (type) {
        case CONF_TOK_WORD: {
            char *w = malloc(t.len + 1);
            assert_non_null(w);
            conf_lex_unescape(t.p, t.len, w);
            snprintf(buf, sizeof(buf), "%s[%s]", t.quoted ? "q" : "", w);
            free(w);
            break;
        }
        case CONF_TOK_EOF:
            snprintf(buf, sizeof(buf), "EOF%s", t.partial ? "*" : "");
            break;
        case CONF_TOK_ERROR:
            snprintf(buf, sizeof(buf), "!%s@%u", lx.msg, t.line);
            break;
        default:
            snprintf(buf, sizeof(buf), "%s", conf_tok_name(type));
            break;
        }
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s", o ? " " : "", buf);
        if (type == CONF_TOK_EOF || type == CONF_TOK_ERROR || o >= sizeof(out) - 1)
            break;
    }
    return out;
}

static char *render_str(const char *text)
{
    return render(text, strlen(text));
}

struct lex_case {
    const char *in;
    const char *want;
};

static const struct lex_case cases[] = {
    /* separators, punctuation */
    {"", "EOF"},
    {"  \t\r\n ", "EOF"},
    {"a b;", "[a] [b] ; EOF"},
    {"a\tb\r\nc;", "[a] [b] [c] ; EOF"},
    {"a{b;}", "[a] { [b] ; } EOF"},
    {"a {}", "[a] { } EOF"},
    {";;{}", "; ; { } EOF"},
    /* '}' and '#' inside a bare word are ordinary bytes (nginx) */
    {"a{b}", "[a] { [b}] EOF"},
    {"return 200 ok}", "[return] [200] [ok}] EOF"},
    {"a#b c;", "[a#b] [c] ; EOF"},
    /* comments only at the start of a token, up to the end of the line */
    {"# only a comment", "EOF"},
    {"#x\na; # y;\nb;", "[a] ; [b] ; EOF"},
    {"a #c\n b;", "[a] [b] ; EOF"},
    {"\"#not\" '#a comment';", "q[#not] q[#a comment] ; EOF"},
    /* quotes */
    {"a \"b c\" 'd e';", "[a] q[b c] q[d e] ; EOF"},
    {"\"\" '';", "q[] q[] ; EOF"},
    {"\"a'b\" 'a\"b';", "q[a'b] q[a\"b] ; EOF"},
    {"\"a;{}b\";", "q[a;{}b] ; EOF"},
    {"\"multi\nline\";", "q[multi\nline] ; EOF"},
    {"a\"b\"c;", "[a\"b\"c] ; EOF"},
    /* escapes, quoted and bare */
    {"\"a\\\"b\\\\c\\nd\\te\\rf\\xg\\'h\";", "q[a\"b\\c\nd\te\rf\\xg'h] ; EOF"},
    {"'it\\'s';", "q[it's] ; EOF"},
    {"a\\nb;", "[a\nb] ; EOF"},
    {"a\\ b;", "[a\\ b] ; EOF"},
    {"\\;;", "[\\;] ; EOF"},
    {"a\\{b;", "[a\\{b] ; EOF"},
    {"a\\\nb;", "[a\\\nb] ; EOF"},
    {"\\\"x;", "[\"x] ; EOF"},
    {"a\\", "[a\\] EOF"},
    {"a\\\\;", "[a\\] ; EOF"},
    /* what may follow a closing quote */
    {"\"a\"b", "!unexpected \"b\"@1"},
    {"\"a\"}", "!unexpected \"}\"@1"},
    {"\"a\"#c", "!unexpected \"#\"@1"},
    {"\"a\"\"b\"", "!unexpected \"\"\"@1"},
    {"'a'\n\"b\n\"x", "q[a] !unexpected \"x\"@3"},
    {"\"a\";", "q[a] ; EOF"},
    {"\"a\"{", "q[a] { EOF"},
    {"\"a\")", "q[a] [)] EOF"},
    {"\"a\"))x;", "q[a] [))x] ; EOF"},
    {"\"a\"\tb", "q[a] [b] EOF"},
    /* unterminated quotes */
    {"a \"bc", "[a] EOF*"},
    {"a 'bc\\'", "[a] EOF*"},
    {"\"a\\", "EOF*"},
    /* variables */
    {"${var}", "[${var}] EOF"},
    {"set $x ${a}b;", "[set] [$x] [${a}b] ; EOF"},
    {"a${b}c{", "[a${b}c] { EOF"},
    {"$a{", "[$a] { EOF"},
    {"${{x};", "[${{x}] ; EOF"},
    {"x$ {", "[x$] { EOF"},
    {"$", "[$] EOF"},
    {"${a b};", "[${a] [b}] ; EOF"},
    {"\"${a b}\";", "q[${a b}] ; EOF"},
    {"$\\{;", "[$\\{] ; EOF"},
    /* if (...) */
    {"if ($a = b) {", "[if] [($a] [=] [b)] { EOF"},
    {"if ($a = \"b c\") {", "[if] [($a] [=] q[b c] [)] { EOF"},
    {"if (-f $request_filename) { return 404; }",
     "[if] [(-f] [$request_filename)] { [return] [404] ; } EOF"},
    {"if ($http_x ~* \"^a{2}$\") {", "[if] [($http_x] [~*] q[^a{2}$] [)] { EOF"},
    /* other control bytes are word bytes */
    {"a\vb\fc;", "[a\vb\fc] ; EOF"},
};

static void test_table(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = render_str(cases[i].in);
        if (strcmp(got, cases[i].want) != 0) {
            print_error("case %zu: in=<%s>\n  want <%s>\n  got  <%s>\n", i, cases[i].in,
                        cases[i].want, got);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* Each token carries the line it starts on; newlines inside tokens count. */
static void test_lines(void **state)
{
    (void)state;
    const char *text = "a\n\nb \"c\nd\" e\\\nf;\n# x\n\n  }";
    struct conf_lexer lx;
    struct conf_token t;
    static const struct {
        enum conf_tok_type type;
        unsigned line;
    } want[] = {
        {CONF_TOK_WORD, 1}, {CONF_TOK_WORD, 3},   {CONF_TOK_WORD, 3}, {CONF_TOK_WORD, 4},
        {CONF_TOK_SEMI, 5}, {CONF_TOK_RBRACE, 8}, {CONF_TOK_EOF, 8},
    };
    conf_lex_init(&lx, text, strlen(text));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(conf_lex_next(&lx, &t), want[i].type);
        assert_int_equal(t.line, want[i].line);
    }
    /* EOF is sticky */
    assert_int_equal(conf_lex_next(&lx, &t), CONF_TOK_EOF);
    assert_int_equal(t.line, 8);
}

/* The EOF line counts every newline, as nginx's "unexpected end of file" does. */
static void test_eof_line(void **state)
{
    (void)state;
    struct conf_lexer lx;
    struct conf_token t;
    conf_lex_init(&lx, "a {\n\n", 5);
    while (conf_lex_next(&lx, &t) != CONF_TOK_EOF)
        ;
    assert_int_equal(t.line, 3);
    assert_int_equal(t.partial, 0);

    conf_lex_init(&lx, "\"a\nb", 4);
    assert_int_equal(conf_lex_next(&lx, &t), CONF_TOK_EOF);
    assert_int_equal(t.line, 2);
    assert_int_equal(t.partial, 1);
}

/* Raw token slices point into the input; quotes are stripped, escapes kept. */
static void test_raw_slices(void **state)
{
    (void)state;
    const char *text = "ab \"c\\\"d\" ;";
    struct conf_lexer lx;
    struct conf_token t;
    conf_lex_init(&lx, text, strlen(text));
    assert_int_equal(conf_lex_next(&lx, &t), CONF_TOK_WORD);
    assert_ptr_equal(t.p, text);
    assert_int_equal(t.len, 2);
    assert_int_equal(t.quoted, 0);
    assert_int_equal(conf_lex_next(&lx, &t), CONF_TOK_WORD);
    assert_ptr_equal(t.p, text + 4);
    assert_int_equal(t.len, 4);
    assert_memory_equal(t.p, "c\\\"d", 4);
    assert_int_equal(t.quoted, 1);
}

/* NUL bytes: an error in tokens and quotes, ignored inside comments. */
static void test_nul(void **state)
{
    (void)state;
    assert_string_equal(render("a\0b;", 4), "!unexpected NUL byte@1");
    assert_string_equal(render("\n\"a\0\";", 6), "!unexpected NUL byte@2");
    assert_string_equal(render("a\\\0;", 4), "!unexpected NUL byte@1");
    assert_string_equal(render("\"a\\\0\";", 6), "!unexpected NUL byte@1");
    assert_string_equal(render("\"a\"\0", 4), "!unexpected NUL byte@1");
    assert_string_equal(render("# \0 x\na;", 8), "[a] ; EOF");
}

/* Errors are sticky: the parser may call again and still sees an error. */
static void test_error_sticky(void **state)
{
    (void)state;
    struct conf_lexer lx;
    struct conf_token t;
    conf_lex_init(&lx, "\"a\"b c;", 7);
    assert_int_equal(conf_lex_next(&lx, &t), CONF_TOK_ERROR);
    assert_string_equal(lx.msg, "unexpected \"b\"");
    assert_int_equal(conf_lex_next(&lx, &t), CONF_TOK_ERROR);
}

/* The lexer never reads past `len`, even with a terminator right behind it. */
static void test_bounds(void **state)
{
    (void)state;
    /* Only the first 3 bytes are input: "a b" has no ';'. */
    assert_string_equal(render("a b;", 3), "[a] [b] EOF");
    assert_string_equal(render("\"ab\"", 3), "EOF*");
    assert_string_equal(render("a\\n", 2), "[a\\] EOF");
    assert_string_equal(render("#abc\nx;", 3), "EOF");
    /* Every prefix of a tricky input lexes without faults (ASan checks). */
    const char *tricky = "if ($a = \"b\\\"c\") { set ${x}y '\\\\'; } # end\n";
    size_t n = strlen(tricky);
    for (size_t i = 0; i <= n; i++) {
        char *copy = malloc(i ? i : 1);
        assert_non_null(copy);
        memcpy(copy, tricky, i);
        render(copy, i);
        free(copy);
    }
}

/* Words up to CONF_LEX_MAX_TOKEN bytes pass; one more byte is nginx's error. */
static void test_long_tokens(void **state)
{
    (void)state;
    size_t max = CONF_LEX_MAX_TOKEN;
    char *buf = malloc(max + 16);
    assert_non_null(buf);
    struct conf_lexer lx;
    struct conf_token t;

    /* bare word of exactly max bytes */
    memset(buf, 'x', max);
    buf[max] = ';';
    conf_lex_init(&lx, buf, max + 1);
    assert_int_equal(conf_lex_next(&lx, &t), CONF_TOK_WORD);
    assert_int_equal(t.len, max);
    assert_int_equal(conf_lex_next(&lx, &t), CONF_TOK_SEMI);

    /* one byte more, starting on line 2 */
    buf[0] = '\n';
    memset(buf + 1, 'y', max + 1);
    buf[max + 2] = ';';
    conf_lex_init(&lx, buf, max + 3);
    assert_int_equal(conf_lex_next(&lx, &t), CONF_TOK_ERROR);
    assert_string_equal(lx.msg, "too long parameter \"yyyyyyyyyy...\" started");
    assert_int_equal(t.line, 2);

    /* quoted: exactly max bytes inside the quotes, then one more */
    buf[0] = '"';
    memset(buf + 1, 'z', max);
    buf[max + 1] = '"';
    conf_lex_init(&lx, buf, max + 2);
    assert_int_equal(conf_lex_next(&lx, &t), CONF_TOK_WORD);
    assert_int_equal(t.len, max);
    buf[0] = '\'';
    buf[max + 1] = 'z';
    buf[max + 2] = '\'';
    conf_lex_init(&lx, buf, max + 3);
    assert_int_equal(conf_lex_next(&lx, &t), CONF_TOK_ERROR);
    assert_string_equal(lx.msg, "too long parameter, probably missing terminating \"'\" character");
    assert_int_equal(t.line, 1);
    free(buf);
}

static void test_unescape(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(conf_lex_unescape("a\\tb", 4, out), 3);
    assert_string_equal(out, "a\tb");
    /* a trailing backslash is kept and nothing past len is read */
    assert_int_equal(conf_lex_unescape("ab\\n", 3, out), 3);
    assert_string_equal(out, "ab\\");
    assert_int_equal(conf_lex_unescape("\\\\\\\\", 4, out), 2);
    assert_string_equal(out, "\\\\");
    assert_int_equal(conf_lex_unescape("\\$\\x", 4, out), 4);
    assert_string_equal(out, "\\$\\x");
    assert_int_equal(conf_lex_unescape("", 0, out), 0);
    assert_string_equal(out, "");
}

static void test_tok_names(void **state)
{
    (void)state;
    assert_string_equal(conf_tok_name(CONF_TOK_SEMI), ";");
    assert_string_equal(conf_tok_name(CONF_TOK_LBRACE), "{");
    assert_string_equal(conf_tok_name(CONF_TOK_RBRACE), "}");
    assert_string_equal(conf_tok_name(CONF_TOK_WORD), "word");
    assert_string_equal(conf_tok_name(CONF_TOK_EOF), "end of file");
    assert_string_equal(conf_tok_name(CONF_TOK_ERROR), "error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),    cmocka_unit_test(test_lines),
        cmocka_unit_test(test_eof_line), cmocka_unit_test(test_raw_slices),
        cmocka_unit_test(test_nul),      cmocka_unit_test(test_error_sticky),
        cmocka_unit_test(test_bounds),   cmocka_unit_test(test_long_tokens),
        cmocka_unit_test(test_unescape), cmocka_unit_test(test_tok_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
