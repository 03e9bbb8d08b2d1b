/*
 * test_snapshot.c - conf/snapshot.c: what a load reads is recorded into a
 * sealed memfd, and a replay serves the very same bytes and glob results even
 * after the files changed or vanished on disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/snapshot.h"

static char dir[64];

static void put(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    char *out = NULL;
    size_t len = 0;
    const char *what = NULL;
    if (snap_read_file(path, 1 << 20, &out, &len, &what) != 0)
        return NULL;
    assert_int_equal(strlen(out), len);
    return out;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sy_test_snap.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_record_then_replay(void **state)
{
    (void)state;
    put("main.conf", "events {}\n");
    put("a.conf", "# a\n");
    put("b.conf", "# b\n");
    char pattern[128];
    snprintf(pattern, sizeof(pattern), "%s/*.conf", dir);

    snap_record_begin();
    char *m = read_text("main.conf");
    char *k = read_text("key.pem"); /* missing: not recorded, errno kept */
    assert_null(k);
    assert_int_equal(errno, ENOENT);
    char **names = NULL;
    size_t n = 0;
    assert_int_equal(snap_glob(pattern, &names, &n), 0);
    assert_int_equal(n, 3);
    snap_glob_free(names, n);
    int fd = snap_record_end();
    assert_true(fd >= 0);
    free(m);
    /* sealed: nobody can change it under a worker's mapping */
    assert_true(fcntl(fd, F_GET_SEALS) & F_SEAL_WRITE);

    /* the disk changes after the check */
    put("main.conf", "events { worker_connections 1; }\n");
    put("c.conf", "# c\n");
    char path[128];
    snprintf(path, sizeof(path), "%s/a.conf", dir);
    unlink(path);

    assert_int_equal(snap_replay_begin(fd), 0);
    m = read_text("main.conf");
    assert_string_equal(m, "events {}\n"); /* the checked bytes */
    free(m);
    assert_int_equal(snap_glob(pattern, &names, &n), 0);
    assert_int_equal(n, 3); /* a.conf b.conf main.conf, as recorded */
    assert_non_null(strstr(names[0], "/a.conf"));
    snap_glob_free(names, n);
    m = read_text("c.conf"); /* not in the snapshot: the disk */
    assert_string_equal(m, "# c\n");
    free(m);
    snap_replay_end();
    close(fd);

    /* outside a replay, the disk again */
    m = read_text("main.conf");
    assert_string_equal(m, "events { worker_connections 1; }\n");
    free(m);
}

static void test_limits_and_bad_snapshots(void **state)
{
    (void)state;
    put("big.conf", "0123456789");
    char path[128];
    snprintf(path, sizeof(path), "%s/big.conf", dir);
    char *out = NULL;
    size_t len;
    const char *what;
    assert_int_equal(snap_read_file(path, 4, &out, &len, &what), -1);
    assert_int_equal(errno, EFBIG);

    /* a file that is not a snapshot is refused */
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(snap_replay_begin(fd), -1);
    close(fd);

    /* an aborted recording produces nothing and leaks nothing */
    snap_record_begin();
    free(read_text("big.conf"));
    snap_record_abort();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_record_then_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_and_bad_snapshots, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
