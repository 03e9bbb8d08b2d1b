/*
 * test_cache_manager.c - proxy/cache_manager.c: the loader's iterations
 * (loader_files a time, resumed from call to call), indexing a zone again
 * after a process died holding its lock, and the manager's iterations
 * (manager_files a time, manager_sleep between them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/cache.h"
#include "conf/conf.h"
#include "conf/runtime.h"
#include "core/shm_zone.h"
#include "proxy/cache.h"
#include "proxy/cache_manager.h"

#define ENTRIES 5
#define BODY 1000

/* A complete entry file named by the MD5-like hex name `i`. */
static void write_entry(const char *dir, int i)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%032x", dir, i + 1);
    struct cache_file_hdr h;
    memset(&h, 0, sizeof(h));
    memcpy(h.magic, CACHE_MAGIC, 8);
    h.valid_sec = INT64_MAX / 2;
    h.body_len = BODY;
    h.status = 200;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    char body[BODY];
    memset(body, 'x', sizeof(body));
    assert_int_equal(fwrite(&h, sizeof(h), 1, f), 1);
    assert_int_equal(fwrite(body, sizeof(body), 1, f), 1);
    fclose(f);
}

struct fixture {
    char dir[256];
    struct cache_zone cz;
    struct cache_zone *czs[1];
    struct shm_zone *zones[1];
    struct http_conf hc;
    struct generation gen;
    struct gen_rt rt;
};

static struct fixture *setup(const char *name, unsigned loader_files)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/sy-cache-manager-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    for (int i = 0; i < ENTRIES; i++)
        write_entry(f->dir, i);
    f->cz.name = name;
    f->cz.path = f->dir;
    f->cz.max_size = UINT64_MAX;
    f->cz.inactive_ms = 3600 * 1000;
    f->cz.manager_files = 100;
    f->cz.manager_sleep_ms = 7;
    f->cz.manager_threshold_ms = 1000;
    f->cz.loader_files = loader_files;
    f->cz.loader_sleep_ms = 11;
    f->cz.loader_threshold_ms = 1000;
    f->czs[0] = &f->cz;
    f->zones[0] = shm_zone_attach(name, 256 * 1024, SHM_ZONE_CACHE, 1);
    assert_non_null(f->zones[0]);
    f->hc.cache_zones = f->czs;
    f->hc.ncache_zones = 1;
    f->gen.http = &f->hc;
    f->rt.gen = &f->gen;
    f->rt.cache_zones = f->zones;
    return f;
}

static void teardown(struct fixture *f)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    shm_zone_release(f->zones[0]);
    free(f);
}

/* Loader calls until its walk is over (bounded); the number of calls. */
static unsigned load_all(struct fixture *f)
{
    unsigned calls = 0;
    while (cache_manager_run(&f->rt) == f->cz.loader_sleep_ms) {
        calls++;
        assert_true(calls < 50);
    }
    return calls;
}

static void test_loader_iterations(void **state)
{
    (void)state;
    struct fixture *f = setup("cm1", 2);
    cache_loader_run(&f->rt); /* the first iteration: two entries */
    assert_int_equal(shm_zone_used(f->zones[0]), 2);
    load_all(f);
    assert_int_equal(shm_zone_used(f->zones[0]), ENTRIES);
    teardown(f);
}

static void test_wiped_zone_is_indexed_again(void **state)
{
    (void)state;
    struct fixture *f = setup("cm2", 100);
    cache_loader_run(&f->rt);
    assert_int_equal(shm_zone_used(f->zones[0]), ENTRIES);
    assert_int_equal(cache_manager_run(&f->rt), CACHE_MANAGER_INTERVAL_MS);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        shm_zone_lock(f->zones[0]);
        _exit(0); /* dies holding the lock */
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_int_equal(shm_zone_lock(f->zones[0]), 1); /* wiped */
    shm_zone_unlock(f->zones[0]);
    assert_int_equal(shm_zone_used(f->zones[0]), 0);
    cache_manager_run(&f->rt); /* notices the new epoch and walks again */
    assert_int_equal(shm_zone_used(f->zones[0]), ENTRIES);
    /* and the files stay: nothing removed by the second walk */
    teardown(f);
}

static void test_manager_iterations(void **state)
{
    (void)state;
    struct fixture *f = setup("cm3", 100);
    cache_loader_run(&f->rt);
    assert_int_equal(shm_zone_used(f->zones[0]), ENTRIES);
    f->cz.manager_files = 1;
    f->cz.max_size = 2 * (BODY + sizeof(struct cache_file_hdr)); /* two entries fit */
    /* one entry a call, manager_sleep between, until two are left */
    for (unsigned left = ENTRIES - 1; left >= 2; left--) {
        unsigned next = cache_manager_run(&f->rt);
        assert_int_equal(shm_zone_used(f->zones[0]), left);
        assert_int_equal(next, left > 2 ? f->cz.manager_sleep_ms : CACHE_MANAGER_INTERVAL_MS);
    }
    teardown(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loader_iterations),
        cmocka_unit_test(test_wiped_zone_is_indexed_again),
        cmocka_unit_test(test_manager_iterations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
