/*
 * test_htpasswd.c - the password checks of auth_basic (http/htpasswd.c):
 * every hash format against hashes made by Debian's `htpasswd`
 * (apache2-utils) and `openssl passwd`, APR's MD5 against openssl's
 * -apr1, nginx's line scan, and base64 decoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/htpasswd.h"

static int check(const char *pw, const char *hash)
{
    return htpasswd_check(str_from_cstr(pw), str_from_cstr(hash));
}

/* Each format: the right password matches, a wrong one does not. */
static void test_formats(void **state)
{
    (void)state;
    static const struct {
        const char *hash, *pw;
    } cases[] = {
        /* htpasswd -B */
        {"$2y$05$mhN3PlheCspKOwNTWouWBukG4ufuggZDoji5J7p/GOxoKf3MFUWaW", "secret"},
        /* htpasswd -m */
        {"$apr1$e223kGrH$ynvNtAbbK1h7HQnhhIznv1", "m5"},
        /* htpasswd -s */
        {"{SHA}2PRZAyDhNDqRW2OUFwZQqPNdaSY=", "sha"},
        /* htpasswd -d */
        {"rHEWYq7QJ6q.Q", "des"},
        /* openssl passwd -6, -5, -1 */
        {"$6$UF/VIBqziPmNFYem$mFeO45eCe9L2N93k6H.ULeyRevSCH8slaAzQYLcQtR.71OqCaoPh6v/QHLrN."
         "0PI9ZKFcSjXsuBtsloiT9y7O/",
         "six"},
        {"$5$59iQJN71TVZvoAR5$Vj/nVp1DkQgHEbI89zEbDqXme/040QUCk4R/Kiq.xD1", "five"},
        {"$1$kYeeT9Vm$OymRjnhKL2v971kjXdwMY1", "one"},
        /* yescrypt (libxcrypt) */
        {"$y$j9T$abcdefghijklmnop$/rtfYWU9jqSUkiy/I3rCKtNY3ZQwqbLGBRmTcBDynJD", "yes"},
        /* SHA-1 of "ssha" + "salt1234", the salt appended */
        {"{SSHA}vQnIOk6zwc/Ru9sOJ2sEQjCu6cFzYWx0MTIzNA==", "ssha"},
        {"{PLAIN}plain", "plain"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (check(cases[i].pw, cases[i].hash) != 1)
            fail_msg("%s: the right password was refused", cases[i].hash);
        if (check("wrong", cases[i].hash) != 0)
            fail_msg("%s: a wrong password matched", cases[i].hash);
        if (check("", cases[i].hash) != 0)
            fail_msg("%s: the empty password matched", cases[i].hash);
    }
    /* a prefix of the password is not the password */
    assert_int_equal(check("plai", "{PLAIN}plain"), 0);
    assert_int_equal(check("plainx", "{PLAIN}plain"), 0);
}

static void test_apr1_vectors(void **state)
{
    (void)state;
    /* openssl passwd -apr1 -salt S PASSWORD */
    static const struct {
        const char *pw, *want;
    } v[] = {
        {"password", "$apr1$abcdefgh$FBwExRW4dCc8aL.OvjpIE1"},
        {"", "$apr1$xy$43..WIhbfuznGvwoCyUek/"},
        {"a much longer password than sixteen bytes", "$apr1$12345678$RkSsHiO1RUdjaoav57ZaW/"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char out[64];
        htpasswd_apr1(str_from_cstr(v[i].pw), str_from_cstr(v[i].want), out);
        assert_string_equal(out, v[i].want);
    }
}

/* A setting crypt(3) cannot use never matches (libxcrypt's failure token). */
static void test_bad_settings(void **state)
{
    (void)state;
    assert_int_equal(check("x", "$9$nonsense"), 0);
    assert_int_equal(check("x", "*0"), 0);
    assert_int_equal(check("x", "{SSHA}!!!"), 0);
    assert_int_equal(check("x", "{SHA}"), 0);
}

static void test_find(void **state)
{
    (void)state;
    const char *file = "# comment:xx\n"
                       "\r\n"
                       "al:short\n"
                       "alice:$1$a$b:extra field\n"
                       "bob:hash2\r\n"
                       "alice:second\n"
                       "carol:last";
    struct str t = str_from_cstr(file), h;
    assert_int_equal(htpasswd_find(t, STR_LIT("alice"), &h), 1);
    assert_true(str_eq(h, STR_LIT("$1$a$b")));
    assert_int_equal(htpasswd_find(t, STR_LIT("bob"), &h), 1);
    assert_true(str_eq(h, STR_LIT("hash2")));
    assert_int_equal(htpasswd_find(t, STR_LIT("carol"), &h), 1);
    assert_true(str_eq(h, STR_LIT("last")));
    assert_int_equal(htpasswd_find(t, STR_LIT("al"), &h), 1);
    assert_true(str_eq(h, STR_LIT("short")));
    assert_int_equal(htpasswd_find(t, STR_LIT("# comment"), &h), 0);
    assert_int_equal(htpasswd_find(t, STR_LIT("Alice"), &h), 0);
    assert_int_equal(htpasswd_find(t, STR_LIT("dave"), &h), 0);
    assert_int_equal(htpasswd_find(STR_LIT(""), STR_LIT("x"), &h), 0);
}

static void test_b64(void **state)
{
    (void)state;
    unsigned char out[32];
    assert_int_equal(htpasswd_b64_decode("YWxpY2U6c2VjcmV0", 16, out), 12);
    assert_memory_equal(out, "alice:secret", 12);
    /* padding optional, data ends at '=' */
    assert_int_equal(htpasswd_b64_decode("YQ==", 4, out), 1);
    assert_int_equal(htpasswd_b64_decode("YQ", 2, out), 1);
    assert_int_equal(out[0], 'a');
    assert_int_equal(htpasswd_b64_decode("Y", 1, out), -1);
    assert_int_equal(htpasswd_b64_decode("Y*==", 4, out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats),   cmocka_unit_test(test_apr1_vectors),
        cmocka_unit_test(test_bad_settings), cmocka_unit_test(test_find),
        cmocka_unit_test(test_b64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
