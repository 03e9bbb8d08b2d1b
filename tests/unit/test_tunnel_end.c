/*
 * test_tunnel_end.c - the socket end of a tunnel (proxy/tunnel_end.h) over a
 * socketpair and the real event loop: readiness from epoll reaches the end's
 * bits, recv/writev/shutdown/close and splice eligibility.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/conn.h"
#include "core/loop.h"
#include "proxy/tunnel_end.h"

static void unused_on_io(struct handle *h, uint32_t events)
{
    (void)h;
    (void)events;
    fail_msg("the connection's own handler ran after the end took it over");
}

struct pair {
    int peer;                   /* the other socket, blocking reads in the test */
    struct tunnel_sock_end se;
};

/* A registered connection on sv[0], taken over by a socket end. */
static void pair_open(struct pair *p)
{
    int sv[2];
    assert_int_equal(loop_init(), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct conn c;
    conn_init(&c, sv[0], unused_on_io);
    assert_int_equal(loop_add(&c.h), 0);
    memset(&p->se, 0xa5, sizeof(p->se));
    assert_int_equal(tunnel_sock_end_init(&p->se, &c), 0);
    p->peer = sv[1];
}

static void pair_close(struct pair *p)
{
    p->se.end.ops->close(&p->se.end);
    close(p->peer);
    loop_destroy();
}

/* Run the loop until `bits` are ready on the end (bounded). */
static void wait_ready(struct tunnel_end *e, unsigned bits)
{
    for (int i = 0; i < 50 && (e->ready & bits) != bits; i++)
        loop_run_once(20);
    assert_int_equal(e->ready & bits, bits);
}

static void test_sock_end_read_and_wake(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p);
    struct tunnel_end *e = &p.se.end;
    assert_string_equal(e->ops->name, "socket");
    assert_null(e->tunnel);
    assert_true(e->ready & TUNNEL_END_W);
    char b[64];
    /* Nothing there: "again", and the read bit goes. */
    assert_int_equal(e->ops->recv(e, b, sizeof(b)), SY_AGAIN);
    assert_false(e->ready & TUNNEL_END_R);
    /* Bytes arrive: epoll -> the end's handler -> tunnel_end_ready -> the bit. */
    assert_int_equal(write(p.peer, "hello", 5), 5);
    wait_ready(e, TUNNEL_END_R);
    assert_int_equal(e->ops->recv(e, b, sizeof(b)), 5);
    assert_memory_equal(b, "hello", 5);
    /* A short read proved the socket drained: no wasted read. */
    assert_false(e->ready & TUNNEL_END_R);
    /* The peer's FIN is a 0. */
    shutdown(p.peer, SHUT_WR);
    wait_ready(e, TUNNEL_END_R);
    assert_int_equal(e->ops->recv(e, b, sizeof(b)), 0);
    pair_close(&p);
}

static void test_sock_end_write_shutdown_close(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p);
    struct tunnel_end *e = &p.se.end;
    int fd = p.se.c.h.fd;
    struct iovec iov[2] = {{.iov_base = "ab", .iov_len = 2}, {.iov_base = "cd", .iov_len = 2}};
    assert_int_equal(e->ops->writev(e, iov, 2), 4);
    char b[8];
    assert_int_equal(read(p.peer, b, sizeof(b)), 4);
    assert_memory_equal(b, "abcd", 4);
    /* A plain socket may take part in splice(2). */
    assert_int_equal(tunnel_end_splice_fd(e), fd);
    /* FIN after what was written. */
    e->ops->shutdown_wr(e);
    assert_int_equal(read(p.peer, b, sizeof(b)), 0);
    /* close: the fd is gone, the end reports nothing ready. */
    e->ops->close(e);
    assert_int_equal(e->ready, 0u);
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    close(p.peer);
    loop_destroy();
}

static void test_sock_end_write_full_then_writable(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p);
    struct tunnel_end *e = &p.se.end;
    static char chunk[65536];
    memset(chunk, 'x', sizeof(chunk));
    struct iovec iov = {.iov_base = chunk, .iov_len = sizeof(chunk)};
    ssize_t w = 0;
    for (int i = 0; i < 1000 && (w = e->ops->writev(e, &iov, 1)) > 0; i++)
        ;
    assert_int_equal(w, SY_AGAIN);
    assert_false(e->ready & TUNNEL_END_W);
    /* The peer drains: EPOLLOUT comes back as the write bit. */
    ssize_t r;
    while ((r = read(p.peer, chunk, sizeof(chunk))) > 0)
        ;
    wait_ready(e, TUNNEL_END_W);
    assert_true(e->ops->writev(e, &iov, 1) > 0);
    pair_close(&p);
}

static void test_sock_end_ready_without_tunnel(void **state)
{
    (void)state;
    /* Before a tunnel takes an end, a wake-up only records (no tunnel to run). */
    struct tunnel_end e = {.ops = &tunnel_sock_end_ops, .tunnel = NULL, .ready = 0};
    tunnel_end_ready(&e, TUNNEL_END_R);
    assert_int_equal(e.ready, TUNNEL_END_R);
    tunnel_end_ready_post(&e, TUNNEL_END_W);
    assert_int_equal(e.ready, TUNNEL_END_R | TUNNEL_END_W);
}

static void test_sock_end_init_unregistered(void **state)
{
    (void)state;
    assert_int_equal(loop_init(), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct conn c;
    conn_init(&c, sv[0], unused_on_io);
    struct tunnel_sock_end se;
    /* Not in epoll: nothing is taken, the caller still owns the fd. */
    assert_int_equal(tunnel_sock_end_init(&se, &c), -1);
    assert_int_equal(fcntl(sv[0], F_GETFD), 0);
    close(sv[0]);
    close(sv[1]);
    loop_destroy();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sock_end_read_and_wake),
        cmocka_unit_test(test_sock_end_write_shutdown_close),
        cmocka_unit_test(test_sock_end_write_full_then_writable),
        cmocka_unit_test(test_sock_end_ready_without_tunnel),
        cmocka_unit_test(test_sock_end_init_unregistered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
