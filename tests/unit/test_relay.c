/*
 * test_relay.c - chunked framing towards a receiver (proxy/relay.c): pieces,
 * partial writes, the last chunk, and a terminator carrying trailer fields.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/relay.h"

/* Write everything chunk_out_iov offers, `step` bytes at a time, into out. */
static size_t drain(struct chunk_out *co, const char *data, size_t avail, int fin, size_t step,
                    char *out, size_t *payload)
{
    size_t o = 0, taken = 0;
    for (int guard = 0; guard < 10000; guard++) {
        struct iovec iov[4];
        int n = chunk_out_iov(co, data + taken, avail - taken, fin, iov);
        if (n == 0)
            break;
        size_t want = step;
        size_t w = 0;
        for (int i = 0; i < n && want; i++) {
            size_t k = iov[i].iov_len < want ? iov[i].iov_len : want;
            memcpy(out + o, iov[i].iov_base, k);
            o += k;
            w += k;
            want -= k;
        }
        taken += chunk_out_advance(co, w);
        if (taken == avail && (!fin || co->done))
            break;
    }
    *payload = taken;
    return o;
}

static void test_chunk_pieces_and_last_chunk(void **state)
{
    (void)state;
    char out[256];
    size_t payload;
    struct chunk_out co = {0};
    size_t n = drain(&co, "hello", 5, 0, 1000, out, &payload);
    assert_int_equal(payload, 5);
    assert_int_equal(n, strlen("5\r\nhello\r\n"));
    assert_memory_equal(out, "5\r\nhello\r\n", n);
    /* The end with no more bytes: the last chunk alone. */
    n = drain(&co, NULL, 0, 1, 1000, out, &payload);
    assert_memory_equal(out, "0\r\n\r\n", n);
    assert_int_equal(n, 5);
    assert_true(co.done);
}

static void test_partial_writes_one_byte_at_a_time(void **state)
{
    (void)state;
    char out[256];
    size_t payload;
    struct chunk_out co = {0};
    size_t n = drain(&co, "abcdefghijklmnopq", 17, 1, 1, out, &payload);
    assert_int_equal(payload, 17);
    const char want[] = "11\r\nabcdefghijklmnopq\r\n0\r\n\r\n";
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, n);
    assert_true(co.done);
}

static void test_terminator_with_trailer_fields(void **state)
{
    (void)state;
    char out[256];
    size_t payload;
    struct chunk_out co = {0};
    static const char term[] = "0\r\nx-checksum: 42\r\n\r\n";
    co.term = term;
    co.term_len = sizeof(term) - 1;
    size_t n = drain(&co, "body", 4, 1, 3, out, &payload);
    const char want[] = "4\r\nbody\r\n0\r\nx-checksum: 42\r\n\r\n";
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, n);
    assert_true(co.done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_pieces_and_last_chunk),
        cmocka_unit_test(test_partial_writes_one_byte_at_a_time),
        cmocka_unit_test(test_terminator_with_trailer_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
