/*
 * test_metrics.c - the shared metrics area (core/metrics.c): series lookup
 * and label escaping, histograms, the exposition, slots that outlive their
 * worker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/metrics.h"

static int setup(void **state)
{
    (void)state;
    assert_int_equal(metrics_init(), 0);
    metrics_worker_attach();
    assert_non_null(metrics_me);
    return 0;
}

static char *render(void)
{
    char *out = NULL;
    long n = metrics_render(&out);
    assert_true(n > 0);
    assert_int_equal((long)strlen(out), n);
    return out;
}

static void test_labels_escaped(void **state)
{
    (void)state;
    char buf[METRICS_LABELS_MAX];
    size_t len = 0;
    metrics_label_append(buf, sizeof(buf), &len, "server", "a\"b\\c\nd", 7);
    metrics_label_append(buf, sizeof(buf), &len, "location", "/", 1);
    assert_string_equal(buf, "server=\"a\\\"b\\\\c\\nd\",location=\"/\"");
    assert_int_equal(len, strlen(buf));
    /* UTF-8 is kept, other bytes above 0x7f become '?' */
    len = 0;
    metrics_label_append(buf, sizeof(buf), &len, "l", "/caf\xc3\xa9/\xe9\xc3", 9);
    assert_string_equal(buf, "l=\"/caf\xc3\xa9/??\"");
    /* a long value is cut, the string stays well formed */
    char longv[1000];
    memset(longv, 'x', sizeof(longv));
    len = 0;
    metrics_label_append(buf, sizeof(buf), &len, "zone", longv, sizeof(longv));
    assert_true(len < sizeof(buf));
    assert_int_equal(buf[len - 1], '"');
}

static void test_series_found_again(void **state)
{
    (void)state;
    const char *l = "zone=\"one\"";
    int a = metrics_series(MK_LIMIT_REQ, l, strlen(l));
    assert_true(a > 0);
    assert_int_equal(metrics_series(MK_LIMIT_REQ, l, strlen(l)), a);
    /* same labels, another kind: another series */
    int b = metrics_series(MK_LIMIT_CONN, l, strlen(l));
    assert_true(b > 0 && b != a);
    metrics_add(&metrics_vals(a)[2], 3); /* rejected */
    char *out = render();
    assert_non_null(strstr(out, "switchyard_limit_req_requests_total{zone=\"one\","
                                "outcome=\"rejected\"} 3\n"));
    free(out);
}

static void test_histogram_cumulative(void **state)
{
    (void)state;
    const char *l = "server=\"h\",location=\"/h\"";
    int sid = metrics_series(MK_HTTP, l, strlen(l));
    uint64_t *v = metrics_vals(sid);
    assert_non_null(v);
    metrics_observe(&v[MV_HTTP_DUR], 3);     /* <= 0.005 */
    metrics_observe(&v[MV_HTTP_DUR], 10);    /* <= 0.01 (bounds are inclusive) */
    metrics_observe(&v[MV_HTTP_DUR], 60000); /* +Inf only */
    metrics_add(&v[MV_HTTP_CLASS + 1], 3);
    char *out = render();
    const char *h = "switchyard_http_request_duration_seconds";
    char line[256];
    snprintf(line, sizeof(line), "%s_bucket{%s,le=\"0.005\"} 1\n", h, l);
    assert_non_null(strstr(out, line));
    snprintf(line, sizeof(line), "%s_bucket{%s,le=\"0.01\"} 2\n", h, l);
    assert_non_null(strstr(out, line));
    snprintf(line, sizeof(line), "%s_bucket{%s,le=\"10\"} 2\n", h, l);
    assert_non_null(strstr(out, line));
    snprintf(line, sizeof(line), "%s_bucket{%s,le=\"+Inf\"} 3\n", h, l);
    assert_non_null(strstr(out, line));
    snprintf(line, sizeof(line), "%s_sum{%s} 60.013\n", h, l);
    assert_non_null(strstr(out, line));
    snprintf(line, sizeof(line), "%s_count{%s} 3\n", h, l);
    assert_non_null(strstr(out, line));
    snprintf(line, sizeof(line), "switchyard_http_requests_total{%s,code_class=\"2xx\"} 3\n", l);
    assert_non_null(strstr(out, line));
    free(out);
}

/* A worker that exits: its counters stay summed, its gauges go, and the
 * next worker takes its slot over. */
static void test_dead_worker_slot(void **state)
{
    (void)state;
    const char *l = "location=\"/t\",upstream=\"u\"";
    int sid = metrics_series(MK_TUNNEL, l, strlen(l));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        metrics_me = NULL;
        metrics_fixed_me = NULL;
        metrics_worker_attach();
        uint64_t *v = metrics_vals(sid);
        metrics_add(&v[MV_TUN_LIVE], 1);
        metrics_add(&v[MV_TUN_OPENED], 1);
        _exit(metrics_me ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char *out = render();
    assert_non_null(strstr(out, "switchyard_tunnels_open{location=\"/t\",upstream=\"u\"} 1\n"));
    free(out);
    metrics_worker_exited(pid);
    out = render();
    assert_non_null(strstr(out, "switchyard_tunnels_open{location=\"/t\",upstream=\"u\"} 0\n"));
    assert_non_null(
        strstr(out, "switchyard_tunnels_opened_total{location=\"/t\",upstream=\"u\"} 1\n"));
    free(out);
    /* the next worker continues the dead one's counters */
    pid = fork();
    if (pid == 0) {
        metrics_me = NULL;
        metrics_fixed_me = NULL;
        metrics_worker_attach();
        metrics_add(&metrics_vals(sid)[MV_TUN_OPENED], 1);
        _exit(metrics_vals(sid)[MV_TUN_OPENED] == 2 ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    out = render();
    assert_non_null(
        strstr(out, "switchyard_tunnels_opened_total{location=\"/t\",upstream=\"u\"} 2\n"));
    free(out);
}

static void test_table_full(void **state)
{
    (void)state;
    char l[64];
    int last = 1;
    for (int i = 0; i < METRICS_SERIES + 10 && last; i++) {
        int n = snprintf(l, sizeof(l), "zone=\"z%d\"", i);
        last = metrics_series(MK_LIMIT_CONN, l, (size_t)n);
    }
    assert_int_equal(last, 0);
    assert_null(metrics_vals(0));
    char *out = render();
    const char *p = strstr(out, "\nswitchyard_metrics_series_dropped_total ");
    assert_non_null(p);
    assert_true(atoi(p + strlen("\nswitchyard_metrics_series_dropped_total ")) >= 1);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels_escaped),       cmocka_unit_test(test_series_found_again),
        cmocka_unit_test(test_histogram_cumulative), cmocka_unit_test(test_dead_worker_slot),
        cmocka_unit_test(test_table_full),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
