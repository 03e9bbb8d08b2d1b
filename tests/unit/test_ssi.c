/*
 * test_ssi.c - the SSI command parser (src/http/ssi.c): nginx's states,
 * its messages, and the same result whatever the pieces the body comes in
 * (every split point, and byte by byte).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/ssi.h"

/* What the parser made of a document: text as is, a command as
 * {name k="v" ...}, a malformed command as {ERR}, a log line as {LOG msg}. */
struct transcript {
    char s[8192];
    size_t n;
};

static void add(struct transcript *t, const char *p, size_t len)
{
    assert_true(t->n + len < sizeof(t->s));
    memcpy(t->s + t->n, p, len);
    t->n += len;
    t->s[t->n] = '\0';
}

static void adds(struct transcript *t, const char *s)
{
    add(t, s, strlen(s));
}

static void feed(struct ssi_parser *p, struct transcript *t, const char *in, size_t len)
{
    const char *pos = in, *end = in + len;
    for (;;) {
        struct str text;
        enum ssi_event ev = ssi_parse(p, &pos, end, &text);
        switch (ev) {
        case SSI_EV_MORE:
            assert_true(pos == end);
            return;
        case SSI_EV_TEXT:
            assert_true(text.len > 0);
            add(t, text.p, text.len);
            break;
        case SSI_EV_COMMAND: {
            adds(t, "{");
            adds(t, p->command);
            unsigned n = p->nparams < SSI_MAX_PARAMS ? p->nparams : SSI_MAX_PARAMS;
            for (unsigned i = 0; i < n; i++) {
                struct str v = ssi_param_value(p, i);
                adds(t, " ");
                adds(t, p->params[i].key);
                adds(t, "=\"");
                add(t, v.p, v.len);
                adds(t, "\"");
            }
            if (p->nparams > SSI_MAX_PARAMS)
                adds(t, " ...");
            adds(t, "}");
            break;
        }
        case SSI_EV_ERROR:
            adds(t, "{ERR}");
            break;
        case SSI_EV_LOG:
            adds(t, "{LOG ");
            adds(t, p->msg);
            adds(t, "}");
            break;
        }
    }
}

/* The transcript of `doc` fed in pieces cut at `cuts` (ascending, -1 ends). */
static void parse_cut(const char *doc, const size_t *cuts, size_t ncuts, size_t value_max,
                      struct transcript *t)
{
    struct ssi_parser p;
    ssi_parser_init(&p, value_max);
    memset(t, 0, sizeof(*t));
    size_t len = strlen(doc), from = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        feed(&p, t, doc + from, to - from);
        from = to;
    }
    ssi_parser_free(&p);
}

/* `doc` parses to `want` whole, cut at every point, and byte by byte. */
static void check(const char *doc, const char *want, size_t value_max)
{
    struct transcript t;
    parse_cut(doc, NULL, 0, value_max, &t);
    if (strcmp(t.s, want) != 0)
        fail_msg("whole:\n  doc:  %s\n  got:  %s\n  want: %s", doc, t.s, want);
    size_t len = strlen(doc);
    for (size_t k = 1; k < len; k++) {
        parse_cut(doc, &k, 1, value_max, &t);
        if (strcmp(t.s, want) != 0)
            fail_msg("cut at %zu:\n  doc:  %s\n  got:  %s\n  want: %s", k, doc, t.s, want);
        for (size_t k2 = k + 1; k2 < len && len < 80; k2++) {
            size_t two[2] = {k, k2};
            parse_cut(doc, two, 2, value_max, &t);
            if (strcmp(t.s, want) != 0)
                fail_msg("cut at %zu, %zu:\n  got:  %s\n  want: %s", k, k2, t.s, want);
        }
    }
    size_t every[4096];
    assert_true(len < 4096);
    for (size_t k = 1; k < len; k++)
        every[k - 1] = k;
    parse_cut(doc, every, len ? len - 1 : 0, value_max, &t);
    if (strcmp(t.s, want) != 0)
        fail_msg("byte by byte:\n  doc:  %s\n  got:  %s\n  want: %s", doc, t.s, want);
}

static void test_commands(void **state)
{
    (void)state;
    check("plain text, no commands", "plain text, no commands", 255);
    check("a<!--#include virtual=\"/config.js\" -->b", "a{include virtual=\"/config.js\"}b", 255);
    check("<!--#echo var='x' default=\"d\"-->", "{echo var=\"x\" default=\"d\"}", 255);
    check("<!--# \r\n\tendif\n-->", "{endif}", 255);
    check("<!--#set var = \"a\"\tvalue=\"1 2\"   -->", "{set var=\"a\" value=\"1 2\"}", 255);
    check("x<!--#a--><!--#b -->y", "x{a}{b}y", 255);
}

static void test_not_commands(void **state)
{
    (void)state;
    /* a prefix that does not become "<!--#" is text, byte for byte */
    check("<!-- a comment -->", "<!-- a comment -->", 255);
    check("a < b <! c <!- d <!-- e", "a < b <! c <!- d <!-- e", 255);
    check("<<!--#echo var=\"x\" -->", "<{echo var=\"x\"}", 255);
    check("<!<!--#x -->", "<!{x}", 255);
    check("<!-<!--#x -->", "<!-{x}", 255);
    check("<!--<!--#x -->", "<!--{x}", 255);
    check("<!--x<!--#y -->z", "<!--x{y}z", 255);
    /* held back at the end: dropped (nginx) */
    check("abc<!-", "abc", 255);
    check("abc<!--#echo var=\"x\"", "abc", 255);
}

static void test_escapes_in_values(void **state)
{
    (void)state;
    /* the backslash stays in the value (evaluation removes it), and the
     * byte after it never ends the value */
    check("<!--#set var=\"v\" value=\"a\\\"b\\\\c\" -->",
          "{set var=\"v\" value=\"a\\\"b\\\\c\"}", 255);
    check("<!--#set var='v' value='it\\'s' -->", "{set var=\"v\" value=\"it\\'s\"}", 255);
    check("<!--#set var=\"v\" value=\"-->\" -->", "{set var=\"v\" value=\"-->\"}", 255);
}

static void test_errors(void **state)
{
    (void)state;
    check("a<!--#echo var=\"x\"foo -->b",
          "a{LOG unexpected \"f\" symbol after \"x\" value of \"var\" parameter in \"echo\" SSI "
          "command}{ERR}b",
          255);
    check("<!--#echo var-->", "{LOG unexpected \"-\" symbol after \"var\" parameter in \"echo\" "
                              "SSI command}{ERR}",
          255);
    check("<!--#echo var x -->", "{LOG unexpected \"x\" symbol after \"var\" parameter in \"echo\" "
                                 "SSI command}{ERR}",
          255);
    check("<!--#echo var=x -->", "{LOG unexpected \"x\" symbol before value of \"var\" parameter "
                                 "in \"echo\" SSI command}{ERR}",
          255);
    check("<!--#echo -x->y", "{LOG unexpected \"x\" symbol in \"echo\" SSI command}", 255);
    check("<!--#echo -x-->y", "{LOG unexpected \"x\" symbol in \"echo\" SSI command}{ERR}y", 255);
    check("<!--#echo --x-->y", "{LOG unexpected \"x\" symbol in \"echo\" SSI command}{ERR}y", 255);
    /* an error ends at the first "-->" */
    check("<!--#e a=b - -- --->z-->!", "{LOG unexpected \"b\" symbol before value of \"a\" "
                                       "parameter in \"e\" SSI command}{ERR}!",
          255);
    check("<!--#abcdefghijklmnopqrstuvwxyz0123456789 -->ok",
          "{LOG the \"abcdefghijklmnopqrstuvwxyz012345" "6...\" SSI command is too long}{ERR}ok",
          255);
    check("<!--#e abcdefghijklmnopqrstuvwxyz0123456789=\"\" -->ok",
          "{LOG too long \"abcdefghijklmnopqrstuvwxyz012345" "6...\" parameter in \"e\" SSI "
          "command}{ERR}ok",
          255);
}

static void test_value_length(void **state)
{
    (void)state;
    check("<!--#set var=\"v\" value=\"12345\" -->", "{set var=\"v\" value=\"12345\"}", 5);
    check("<!--#set var=\"v\" value=\"123456\" -->",
          "{LOG too long \"12345" "6...\" value of \"value\" parameter in \"set\" SSI "
          "command}{ERR}",
          5);
}

static void test_many_params(void **state)
{
    (void)state;
    char doc[2048] = "<!--#x";
    char want[2048] = "{x";
    for (int i = 0; i < 20; i++) {
        char p[32];
        snprintf(p, sizeof(p), " p%d=\"%d\"", i, i);
        strcat(doc, p);
        if (i < SSI_MAX_PARAMS)
            strcat(want, p);
    }
    strcat(doc, " -->");
    strcat(want, " ...}");
    struct transcript t;
    parse_cut(doc, NULL, 0, 255, &t);
    assert_string_equal(t.s, want);
    /* and cut everywhere */
    check(doc, want, 255);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),         cmocka_unit_test(test_not_commands),
        cmocka_unit_test(test_escapes_in_values), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_value_length),     cmocka_unit_test(test_many_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
