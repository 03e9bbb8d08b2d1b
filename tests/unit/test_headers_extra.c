/*
 * test_headers_extra.c - the parser of `expires` values (conf/headers_extra.c),
 * nginx's ngx_http_parse_expires and ngx_parse_time in seconds: keywords,
 * signs, `@` times of day, unit order, and what is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conf/headers_extra.h"

/* Parse `v` starting from `mode`; the error (NULL on success). */
static const char *parse(const char *v, int *mode, int64_t *t)
{
    return expires_parse(str_from_cstr(v), mode, t);
}

static void expect_time(const char *v, int want_mode, int64_t want)
{
    int mode = EXPIRES_ACCESS;
    int64_t t = -12345;
    const char *e = parse(v, &mode, &t);
    if (e)
        fail_msg("\"%s\": %s", v, e);
    assert_int_equal(mode, want_mode);
    assert_int_equal(t, want);
}

static void expect_error(int mode, const char *v, const char *err)
{
    int64_t t = 0;
    const char *e = parse(v, &mode, &t);
    if (!e || strcmp(e, err) != 0)
        fail_msg("\"%s\": want \"%s\", got \"%s\"", v, err, e ? e : "(ok)");
}

static void test_times(void **state)
{
    (void)state;
    expect_time("0", EXPIRES_ACCESS, 0);
    expect_time("30", EXPIRES_ACCESS, 30);
    expect_time("30s", EXPIRES_ACCESS, 30);
    expect_time("1h", EXPIRES_ACCESS, 3600);
    expect_time("+1h 30m", EXPIRES_ACCESS, 5400);
    expect_time("1h30", EXPIRES_ACCESS, 3630);          /* a bare tail is seconds */
    expect_time("-1", EXPIRES_ACCESS, -1);
    expect_time("-1d", EXPIRES_ACCESS, -86400);
    expect_time("1y", EXPIRES_ACCESS, 365 * 86400);
    expect_time("1M", EXPIRES_ACCESS, 30 * 86400);
    expect_time("2w1d", EXPIRES_ACCESS, 15 * 86400);
    expect_time("@15h30m", EXPIRES_DAILY, 15 * 3600 + 30 * 60);
    expect_time("@24h", EXPIRES_DAILY, 86400);           /* nginx: "less than" is <= */
}

static void test_keywords(void **state)
{
    (void)state;
    int mode = EXPIRES_ACCESS;
    int64_t t = 7;
    assert_null(parse("epoch", &mode, &t));
    assert_int_equal(mode, EXPIRES_EPOCH);
    mode = EXPIRES_ACCESS;
    assert_null(parse("max", &mode, &t));
    assert_int_equal(mode, EXPIRES_MAX);
    mode = EXPIRES_ACCESS;
    assert_null(parse("off", &mode, &t));
    assert_int_equal(mode, EXPIRES_OFF);
    /* after `modified` only a time is a value */
    mode = EXPIRES_MODIFIED;
    assert_null(parse("+1d", &mode, &t));
    assert_int_equal(mode, EXPIRES_MODIFIED);
    assert_int_equal(t, 86400);
    expect_error(EXPIRES_MODIFIED, "epoch", "invalid value");
    expect_error(EXPIRES_MODIFIED, "@1h", "daily time cannot be used with \"modified\" parameter");
}

static void test_refused(void **state)
{
    (void)state;
    expect_error(EXPIRES_ACCESS, "", "invalid value");
    expect_error(EXPIRES_ACCESS, "-", "invalid value");
    expect_error(EXPIRES_ACCESS, "soon", "invalid value");
    expect_error(EXPIRES_ACCESS, "1ms", "invalid value");     /* no milliseconds in seconds */
    expect_error(EXPIRES_ACCESS, "1s1h", "invalid value");    /* units in decreasing order */
    expect_error(EXPIRES_ACCESS, "1h1h", "invalid value");    /* each once */
    expect_error(EXPIRES_ACCESS, "1 2 3", "invalid value");   /* a bare number, then a space */
    expect_error(EXPIRES_ACCESS, "99999999999999999999", "invalid value");
    expect_error(EXPIRES_ACCESS, "@25h", "daily time value must be less than 24 hours");
    expect_error(EXPIRES_ACCESS, "EPOCH", "invalid value");   /* keywords are lower case */
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_keywords),
        cmocka_unit_test(test_refused),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
