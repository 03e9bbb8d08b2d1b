/*
 * test_core.c - arena, buffer pool, number/size/time parsing, timers and the
 * posted queue of the event loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/str.h"

static void test_arena_alloc_reset(void **state)
{
    (void)state;
    struct arena a;
    arena_init(&a, 1024);
    char *p = arena_strdup(&a, "hello");
    assert_string_equal(p, "hello");
    assert_int_equal(((uintptr_t)arena_alloc(&a, 3)) % 16, 0);
    /* A large allocation gets its own block and stays usable. */
    char *big = arena_alloc(&a, 100000);
    assert_non_null(big);
    memset(big, 'x', 100000);
    char *after = arena_printf(&a, "%d-%s", 42, "z");
    assert_string_equal(after, "42-z");
    assert_true(a.total >= 100000);
    arena_reset(&a);
    assert_int_equal(a.total, 1024); /* one ordinary block kept for reuse */
    assert_non_null(arena_alloc(&a, 10));
    arena_destroy(&a);
    assert_int_equal(a.total, 0);
    arena_destroy(&a); /* idempotent */
}

static void test_buf_pool_counters(void **state)
{
    (void)state;
    struct buf_stats st0, st;
    buf_stats(&st0);
    struct buf *b1 = buf_get(), *b2 = buf_get();
    buf_stats(&st);
    assert_int_equal(st.in_use, st0.in_use + 2);
    memcpy(buf_tail(b1), "abcdef", 6);
    b1->last += 6;
    buf_consume(b1, 2);
    assert_int_equal(buf_len(b1), 4);
    buf_compact(b1);
    assert_int_equal(b1->pos, 0);
    assert_memory_equal(buf_head(b1), "cdef", 4);
    buf_consume(b1, 4);
    assert_int_equal(b1->pos, 0); /* empty buffers rewind */
    buf_put(b1);
    buf_put(b2);
    buf_put(NULL);
    buf_stats(&st);
    assert_int_equal(st.in_use, st0.in_use);
    assert_int_equal(st.pooled, st0.pooled + 2);
    /* Reuse comes from the pool, not malloc. */
    struct buf *b3 = buf_get();
    struct buf_stats st2;
    buf_stats(&st2);
    assert_int_equal(st2.allocs, st.allocs);
    buf_put(b3);
    buf_pool_drain();
    buf_stats(&st);
    assert_int_equal(st.pooled, 0);
}

static void test_sizes_and_times(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(str_to_size(STR_LIT("16k"), &v), 0);
    assert_int_equal(v, 16384);
    assert_int_equal(str_to_size(STR_LIT("1M"), &v), 0);
    assert_int_equal(v, 1048576);
    assert_int_equal(str_to_size(STR_LIT("10"), &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(str_to_size(STR_LIT("k"), &v), -1);
    assert_int_equal(str_to_size(STR_LIT("1x"), &v), -1);
    assert_int_equal(str_to_size(STR_LIT("99999999999999999999"), &v), -1);
    assert_int_equal(str_to_msec(STR_LIT("60"), &v), 0);
    assert_int_equal(v, 60000);
    assert_int_equal(str_to_msec(STR_LIT("500ms"), &v), 0);
    assert_int_equal(v, 500);
    assert_int_equal(str_to_msec(STR_LIT("1h 30m"), &v), 0);
    assert_int_equal(v, 5400000);
    assert_int_equal(str_to_msec(STR_LIT("2d"), &v), 0);
    assert_int_equal(v, 172800000);
    assert_int_equal(str_to_msec(STR_LIT("5x"), &v), -1);
    assert_int_equal(str_to_msec(STR_LIT(""), &v), -1);
    assert_int_equal(str_to_msec(STR_LIT("s"), &v), -1);
    assert_true(str_has_token(STR_LIT("keep-alive, Upgrade"), "upgrade"));
    assert_false(str_has_token(STR_LIT("keep-alive, Upgraded"), "upgrade"));
    assert_true(str_caseeq(STR_LIT("Content-Length"), STR_LIT("content-length")));
}

static void test_http_dates(void **state)
{
    (void)state;
    char out[30];
    time_format_http(784111777, out);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(time_parse_http(out, strlen(out)), 784111777);
    const char *rfc850 = "Sunday, 06-Nov-94 08:49:37 GMT";
    assert_int_equal(time_parse_http(rfc850, strlen(rfc850)), 784111777);
    const char *asc = "Sun Nov  6 08:49:37 1994";
    assert_int_equal(time_parse_http(asc, strlen(asc)), 784111777);
    assert_int_equal(time_parse_http("garbage", 7), -1);
}

static int fired[4];
static void on_timer(struct timer *t)
{
    fired[t->heap_idx == 0 ? 0 : 1]++;
}

static void test_timers(void **state)
{
    (void)state;
    assert_int_equal(loop_init(), 0);
    struct timer a = {.cb = on_timer}, b = {.cb = on_timer}, c = {.cb = on_timer};
    timer_set(&a, 10);
    timer_set(&b, 20);
    timer_set(&c, 5);
    timer_cancel(&c);
    assert_false(timer_armed(&c));
    /* Moving a deadline later is a plain store; the heap entry re-queues. */
    timer_set(&a, 40);
    uint64_t start = loop_now();
    memset(fired, 0, sizeof(fired));
    while (timer_armed(&a) || timer_armed(&b)) {
        loop_run_once(100);
        assert_true(loop_now() - start < 2000);
        if (!timer_armed(&b) && timer_armed(&a))
            assert_true(loop_now() - start < 40 + 5 || loop_now() - start >= 20);
    }
    assert_true(loop_now() - start >= 40);
    assert_int_equal(fired[0], 2);
    loop_destroy();
}

static int post_runs;
static struct posted p1, p2;
static void on_post(struct posted *p)
{
    post_runs++;
    if (p == &p1 && post_runs < 3)
        loop_post(&p1); /* re-posting runs next iteration, not in this one */
}

static void test_posted(void **state)
{
    (void)state;
    assert_int_equal(loop_init(), 0);
    p1.cb = p2.cb = on_post;
    post_runs = 0;
    loop_post(&p1);
    loop_post(&p1); /* no double queueing */
    loop_post(&p2);
    loop_unpost(&p2);
    loop_run_once(0);
    assert_int_equal(post_runs, 1);
    loop_run_once(0);
    assert_int_equal(post_runs, 2);
    loop_run_once(0);
    assert_int_equal(post_runs, 3);
    loop_run_once(0);
    assert_int_equal(post_runs, 3);
    loop_destroy();
}

/* A handler that unposts an entry later in the same batch (because it frees
 * its owner) must keep that entry from running; the rest of the batch runs. */
static struct posted q1, q2, q3;
static int q_ran[3];
static void on_q(struct posted *p)
{
    if (p == &q1) {
        q_ran[0]++;
        loop_unpost(&q2);
    } else if (p == &q2) {
        q_ran[1]++;
    } else {
        q_ran[2]++;
        loop_unpost(&q3); /* itself, while running: harmless */
    }
}

static void test_unpost_within_batch(void **state)
{
    (void)state;
    assert_int_equal(loop_init(), 0);
    q1.cb = q2.cb = q3.cb = on_q;
    memset(q_ran, 0, sizeof(q_ran));
    loop_post(&q1);
    loop_post(&q2);
    loop_post(&q3);
    loop_run_once(0);
    assert_int_equal(q_ran[0], 1);
    assert_int_equal(q_ran[1], 0);
    assert_int_equal(q_ran[2], 1);
    /* q2 can be posted again and then runs once. */
    loop_post(&q2);
    loop_run_once(0);
    assert_int_equal(q_ran[1], 1);
    /* The last entry of a batch unposted by the first. */
    memset(q_ran, 0, sizeof(q_ran));
    loop_post(&q1);
    loop_post(&q2);
    loop_run_once(0);
    assert_int_equal(q_ran[0], 1);
    assert_int_equal(q_ran[1], 0);
    loop_destroy();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_alloc_reset), cmocka_unit_test(test_buf_pool_counters),
        cmocka_unit_test(test_sizes_and_times),   cmocka_unit_test(test_http_dates),
        cmocka_unit_test(test_timers),            cmocka_unit_test(test_posted),
        cmocka_unit_test(test_unpost_within_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
