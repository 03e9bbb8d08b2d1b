/*
 * test_sub_filter.c - the matching step of sub_filter (src/http/sub_filter.c):
 * the result is the same however the body is cut into pieces, strings are
 * case-insensitive, once per string or everywhere, the longest string wins
 * at a position.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/sub_filter.h"

struct out {
    char buf[4096];
    size_t len;
};

static int emit(void *ctx, const char *p, size_t len)
{
    struct out *o = ctx;
    memcpy(o->buf + o->len, p, len);
    o->len += len;
    return 0;
}

/* Run the body cut at `cut` (0: whole), carrying what a piece leaves, as
 * the filter does. */
static void run(const char *body, size_t cut, const struct str *pat, const struct str *repl,
                unsigned n, int once, struct out *o)
{
    unsigned char done[8] = {0};
    char work[4096];
    size_t carry = 0, len = strlen(body);
    size_t pieces[2] = {cut ? cut : len, cut ? len - cut : 0};
    size_t off = 0;
    o->len = 0;
    for (int i = 0; i < 2; i++) {
        memcpy(work + carry, body + off, pieces[i]);
        off += pieces[i];
        size_t have = carry + pieces[i];
        int last = off == len && (i == 1 || !cut);
        size_t used = sub_scan(work, have, pat, repl, n, done, once, last, emit, o);
        assert_true(used != (size_t)-1);
        carry = have - used;
        memmove(work, work + used, carry);
        if (last)
            break;
    }
    assert_int_equal(carry, 0);
    o->buf[o->len] = '\0';
}

static void test_every_cut_gives_the_same(void **state)
{
    (void)state;
    const struct str pat[] = {STR_LIT("backend.local"), STR_LIT("<a ")};
    const struct str repl[] = {STR_LIT("example.com"), STR_LIT("<a class=x ")};
    const char *body = "<A href=http://BACKEND.local/a>x</a> http://backend.lo http://backend.local";
    const char *want = "<a class=x href=http://example.com/a>x</a> http://backend.lo "
                       "http://example.com";
    for (size_t cut = 0; cut < strlen(body); cut++) {
        struct out o;
        run(body, cut, pat, repl, 2, 0, &o);
        if (strcmp(o.buf, want) != 0)
            fail_msg("cut %zu: %s", cut, o.buf);
    }
}

static void test_once_per_string(void **state)
{
    (void)state;
    const struct str pat[] = {STR_LIT("a"), STR_LIT("b")};
    const struct str repl[] = {STR_LIT("1"), STR_LIT("2")};
    struct out o;
    run("abab", 0, pat, repl, 2, 1, &o);
    assert_string_equal(o.buf, "12ab");
    run("abab", 0, pat, repl, 2, 0, &o);
    assert_string_equal(o.buf, "1212");
}

static void test_longest_string_wins(void **state)
{
    (void)state;
    const struct str pat[] = {STR_LIT("foo"), STR_LIT("foobar")};
    const struct str repl[] = {STR_LIT("X"), STR_LIT("Y")};
    struct out o;
    run("foobar foo", 0, pat, repl, 2, 0, &o);
    assert_string_equal(o.buf, "Y X");
    for (size_t cut = 1; cut < 10; cut++) {
        run("foobar foo", cut, pat, repl, 2, 0, &o);
        assert_string_equal(o.buf, "Y X");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_cut_gives_the_same),
        cmocka_unit_test(test_once_per_string),
        cmocka_unit_test(test_longest_string_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
