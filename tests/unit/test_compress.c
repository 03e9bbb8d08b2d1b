/*
 * test_compress.c - Accept-Encoding negotiation (RFC 9110 12.5.3 q-values)
 * and the MIME type lists of gzip_types / brotli_types (src/http/compress.c,
 * src/conf/gzip.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conf/gzip.h"
#include "http/compress.h"

#define BOTH ((1u << COMPRESS_GZIP) | (1u << COMPRESS_BR))
#define GZ_ONLY (1u << COMPRESS_GZIP)

static enum compress_coding pick(const char *ae, unsigned offer)
{
    return compress_accept(str_from_cstr(ae), offer, NULL);
}

static void test_accept_basic(void **state)
{
    (void)state;
    assert_int_equal(pick("gzip", BOTH), COMPRESS_GZIP);
    assert_int_equal(pick("br", BOTH), COMPRESS_BR);
    assert_int_equal(pick("gzip, br", BOTH), COMPRESS_BR); /* a tie: Brotli */
    assert_int_equal(pick("br", GZ_ONLY), COMPRESS_NONE);
    assert_int_equal(pick("", BOTH), COMPRESS_NONE);
    assert_int_equal(pick("identity", BOTH), COMPRESS_NONE);
    assert_int_equal(pick("deflate, compress", BOTH), COMPRESS_NONE);
    assert_int_equal(pick(" gzip ,deflate", BOTH), COMPRESS_GZIP);
    assert_int_equal(pick("GZip", BOTH), COMPRESS_GZIP);
    assert_int_equal(pick("x-gzip", BOTH), COMPRESS_GZIP);
    assert_int_equal(pick("gzipx, xbr", BOTH), COMPRESS_NONE);
}

static void test_accept_q_values(void **state)
{
    (void)state;
    assert_int_equal(pick("br;q=0.5, gzip;q=1", BOTH), COMPRESS_GZIP);
    assert_int_equal(pick("br;q=1, gzip;q=0.5", BOTH), COMPRESS_BR);
    assert_int_equal(pick("br;q=0, gzip;q=0.5", BOTH), COMPRESS_GZIP);
    assert_int_equal(pick("br;q=0, gzip;q=0", BOTH), COMPRESS_NONE);
    assert_int_equal(pick("gzip;q=0.000", BOTH), COMPRESS_NONE);
    assert_int_equal(pick("gzip;q=0.001", BOTH), COMPRESS_GZIP);
    assert_int_equal(pick("gzip; q=0.5", BOTH), COMPRESS_GZIP);
    assert_int_equal(pick("gzip;Q=1.0", BOTH), COMPRESS_GZIP);
    /* malformed: refused, as nginx refuses them */
    assert_int_equal(pick("gzip;q=2", BOTH), COMPRESS_NONE);
    assert_int_equal(pick("gzip;q=1.5", BOTH), COMPRESS_NONE);
    assert_int_equal(pick("gzip;q=0.0001", BOTH), COMPRESS_NONE);
    assert_int_equal(pick("gzip;q=abc", BOTH), COMPRESS_NONE);
    /* other parameters are ignored */
    assert_int_equal(pick("gzip;level=1;q=0.7", BOTH), COMPRESS_GZIP);
}

static void test_accept_star(void **state)
{
    (void)state;
    assert_int_equal(pick("*", BOTH), COMPRESS_BR);
    assert_int_equal(pick("*", GZ_ONLY), COMPRESS_GZIP);
    assert_int_equal(pick("*;q=0", BOTH), COMPRESS_NONE);
    assert_int_equal(pick("*;q=0, gzip", BOTH), COMPRESS_GZIP);
    assert_int_equal(pick("br;q=0, *", BOTH), COMPRESS_GZIP);
    assert_int_equal(pick("gzip;q=0.2, *;q=0.5", BOTH), COMPRESS_BR);
    int q[3];
    compress_accept(STR_LIT("gzip;q=0.25, *;q=0.5"), 0, q);
    assert_int_equal(q[COMPRESS_GZIP], 250);
    assert_int_equal(q[COMPRESS_BR], 500);
}

static void test_types(void **state)
{
    (void)state;
    struct str list[] = {STR_LIT("text/css"), STR_LIT("application/json")};
    struct compress_types t = {list, 2, 0};
    assert_true(compress_types_match(NULL, STR_LIT("text/html")));
    assert_true(compress_types_match(NULL, STR_LIT("TEXT/HTML; charset=utf-8")));
    assert_false(compress_types_match(NULL, STR_LIT("text/css")));
    assert_true(compress_types_match(&t, STR_LIT("text/css")));
    assert_true(compress_types_match(&t, STR_LIT("application/json;charset=utf-8")));
    assert_false(compress_types_match(&t, STR_LIT("application/jsonx")));
    assert_false(compress_types_match(&t, STR_LIT("")));
    struct compress_types any = {NULL, 0, 1};
    assert_true(compress_types_match(&any, STR_LIT("image/png")));
    assert_false(compress_types_match(&any, STR_NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_basic),
        cmocka_unit_test(test_accept_q_values),
        cmocka_unit_test(test_accept_star),
        cmocka_unit_test(test_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
