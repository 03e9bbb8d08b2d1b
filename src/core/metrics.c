/*
 * metrics.c - the shared metrics area and its exposition (metrics.h).
 */
#include "core/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/stats.h"

enum { SERIES_FREE = 0, SERIES_CLAIMED, SERIES_READY };
enum { SLOT_UNUSED = 0, SLOT_ALIVE, SLOT_EXITED };

struct metrics_series {
    uint32_t state; /* SERIES_*: claimed by a CAS, ready once written */
    uint16_t kind;
    uint16_t len;
    uint32_t hash;
    char labels[METRICS_LABELS_MAX];
};

struct metrics_slot {
    uint32_t state; /* SLOT_* */
    int32_t pid;
    struct metrics_fixed fixed;
    uint64_t v[METRICS_SERIES][METRICS_VALS] __attribute__((aligned(64)));
} __attribute__((aligned(64)));

struct metrics_shm {
    uint64_t reloads_ok, reloads_failed;
    uint64_t series_dropped;
    uint32_t dropped_logged;
    uint32_t slots_hw; /* slots ever used: a scrape reads [0, slots_hw) */
    struct metrics_series series[METRICS_SERIES];
    struct metrics_slot slots[METRICS_SLOTS];
};

static struct metrics_shm *M;
struct metrics_slot *metrics_me;
struct metrics_fixed *metrics_fixed_me;

/* Histogram bounds, ms and as printed. */
static const uint64_t bound_ms[METRICS_NBUCKETS] = {5,   10,   25,   50,   100,  250,
                                                    500, 1000, 2500, 5000, 10000};
static const char *const bound_s[METRICS_NBUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"};

int metrics_init(void)
{
    if (M)
        return 0;
    void *p = mmap(NULL, sizeof(struct metrics_shm), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    M = p; /* zeroed by the kernel; pages are touched only as series are used */
    return 0;
}

void metrics_worker_attach(void)
{
    if (!M || metrics_me)
        return;
    /* A dead worker's slot first (its counters go on), then a fresh one. */
    static const uint32_t order[] = {SLOT_EXITED, SLOT_UNUSED};
    for (unsigned pass = 0; pass < 2; pass++)
        for (unsigned i = 0; i < METRICS_SLOTS; i++) {
            uint32_t st = order[pass];
            struct metrics_slot *s = &M->slots[i];
            if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != order[pass] ||
                !__atomic_compare_exchange_n(&s->state, &st, SLOT_ALIVE, 0, __ATOMIC_ACQ_REL,
                                             __ATOMIC_ACQUIRE))
                continue;
            __atomic_store_n(&s->pid, (int32_t)getpid(), __ATOMIC_RELEASE);
            uint32_t hw = __atomic_load_n(&M->slots_hw, __ATOMIC_ACQUIRE);
            while (hw < i + 1 && !__atomic_compare_exchange_n(&M->slots_hw, &hw, i + 1, 0,
                                                              __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                ;
            metrics_me = s;
            metrics_fixed_me = &s->fixed;
            return;
        }
    sy_log(LOG_LVL_WARN, "metrics: more than %d worker processes, this one is not counted",
           METRICS_SLOTS);
}

/* The values that describe the present, not the past: zeroed when the
 * worker that set them is gone. */
static void zero_gauges(struct metrics_slot *s)
{
    struct metrics_fixed *f = &s->fixed;
    metrics_set(&f->h2_conns, 0);
    metrics_set(&f->h2_streams, 0);
    metrics_set(&f->tunnels, 0);
    metrics_set(&f->gens_alive, 0);
    metrics_set(&f->buf_in_use, 0);
    metrics_set(&f->buf_pooled, 0);
    for (unsigned i = 1; i < METRICS_SERIES; i++) {
        uint32_t k = __atomic_load_n(&M->series[i].state, __ATOMIC_ACQUIRE) == SERIES_READY
                         ? M->series[i].kind
                         : MK_NONE;
        if (k == MK_TUNNEL)
            metrics_set(&s->v[i][MV_TUN_LIVE], 0);
        else if (k == MK_PEER)
            metrics_set(&s->v[i][MV_PEER_DOWN_UNTIL], 0);
    }
}

void metrics_worker_exited(int pid)
{
    if (!M)
        return;
    for (unsigned i = 0; i < METRICS_SLOTS; i++) {
        struct metrics_slot *s = &M->slots[i];
        if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != SLOT_ALIVE || s->pid != pid)
            continue;
        zero_gauges(s);
        __atomic_store_n(&s->pid, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&s->state, SLOT_EXITED, __ATOMIC_RELEASE);
        return;
    }
}

void metrics_reload(int ok)
{
    if (M)
        __atomic_fetch_add(ok ? &M->reloads_ok : &M->reloads_failed, 1, __ATOMIC_RELAXED);
}

static uint32_t hash_of(enum metrics_kind kind, const char *p, size_t n)
{
    uint32_t h = 2166136261u ^ (uint32_t)kind;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

static void note_dropped(void)
{
    __atomic_fetch_add(&M->series_dropped, 1, __ATOMIC_RELAXED);
    uint32_t no = 0;
    if (__atomic_compare_exchange_n(&M->dropped_logged, &no, 1, 0, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
        sy_log(LOG_LVL_WARN,
               "metrics: more than %d series, the others are not counted "
               "(switchyard_metrics_series_dropped_total)",
               METRICS_SERIES - 1);
}

int metrics_series(enum metrics_kind kind, const char *labels, size_t len)
{
    if (!M)
        return 0;
    if (len >= METRICS_LABELS_MAX)
        len = METRICS_LABELS_MAX - 1;
    uint32_t h = hash_of(kind, labels, len);
    /* open addressing over [1, METRICS_SERIES): 0 means "none" */
    unsigned n = METRICS_SERIES - 1;
    for (unsigned probe = 0; probe < n; probe++) {
        unsigned i = 1 + (h + probe) % n;
        struct metrics_series *e = &M->series[i];
        uint32_t st = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
        if (st == SERIES_FREE) {
            if (!__atomic_compare_exchange_n(&e->state, &st, SERIES_CLAIMED, 0, __ATOMIC_ACQ_REL,
                                             __ATOMIC_ACQUIRE)) {
                probe--; /* lost the race: look at this entry again */
                continue;
            }
            e->kind = (uint16_t)kind;
            e->len = (uint16_t)len;
            e->hash = h;
            memcpy(e->labels, labels, len);
            e->labels[len] = 0;
            __atomic_store_n(&e->state, SERIES_READY, __ATOMIC_RELEASE);
            return (int)i;
        }
        /* another process is writing this entry: a few stores, wait for them */
        for (int spin = 0; st == SERIES_CLAIMED && spin < 1000000; spin++)
            st = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
        if (st == SERIES_READY && e->hash == h && e->kind == kind && e->len == len &&
            memcmp(e->labels, labels, len) == 0)
            return (int)i;
    }
    note_dropped();
    return 0;
}

/* The length of the valid UTF-8 sequence at p (2..4), 0 when there is none. */
static size_t utf8_len(const char *p, size_t left)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t l = u[0] >= 0xF0 && u[0] <= 0xF4  ? 4
               : u[0] >= 0xE0 && u[0] < 0xF0 ? 3
               : u[0] >= 0xC2 && u[0] < 0xE0 ? 2
                                             : 0;
    if (!l || l > left)
        return 0;
    for (size_t k = 1; k < l; k++)
        if ((u[k] & 0xC0) != 0x80)
            return 0;
    /* overlong forms, surrogates and values past U+10FFFF */
    if ((u[0] == 0xE0 && u[1] < 0xA0) || (u[0] == 0xED && u[1] >= 0xA0) ||
        (u[0] == 0xF0 && u[1] < 0x90) || (u[0] == 0xF4 && u[1] >= 0x90))
        return 0;
    return l;
}

void metrics_label_append(char *buf, size_t cap, size_t *len, const char *name, const char *value,
                          size_t vlen)
{
    size_t n = *len, nl = strlen(name);
    /* room for `,name=""` and the NUL */
    if (n + nl + 5 >= cap)
        return;
    if (n)
        buf[n++] = ',';
    memcpy(buf + n, name, nl);
    n += nl;
    buf[n++] = '=';
    buf[n++] = '"';
    for (size_t i = 0; i < vlen && n + 3 < cap;) {
        unsigned char c = (unsigned char)value[i];
        if (c >= 0x80) {
            /* the exposition must be UTF-8: a sequence that is not (or does
             * not fit) becomes '?' */
            size_t l = utf8_len(value + i, vlen - i);
            if (l && n + l + 1 < cap) {
                memcpy(buf + n, value + i, l);
                n += l;
                i += l;
            } else {
                buf[n++] = '?';
                i++;
            }
            continue;
        }
        if (c == '\\' || c == '"' || c == '\n') {
            buf[n++] = '\\';
            c = c == '\n' ? 'n' : c;
        }
        buf[n++] = (char)c;
        i++;
    }
    buf[n++] = '"';
    buf[n] = 0;
    *len = n;
}

uint64_t *metrics_vals(int sid)
{
    if (!metrics_me || sid <= 0 || sid >= METRICS_SERIES)
        return NULL;
    return metrics_me->v[sid];
}

void metrics_observe(uint64_t *h, uint64_t ms)
{
    unsigned b = 0;
    while (b < METRICS_NBUCKETS && ms > bound_ms[b])
        b++;
    if (b < METRICS_NBUCKETS)
        metrics_add(&h[b], 1);
    metrics_add(&h[METRICS_NBUCKETS], ms);
    metrics_add(&h[METRICS_NBUCKETS + 1], 1);
}

void metrics_fixed_add(uint64_t *field, int64_t d)
{
    metrics_add(field, (uint64_t)d);
}

void metrics_tls_handshake(int ssl_version, int resumed)
{
    if (!metrics_fixed_me)
        return;
    /* SSL_version(): 0x0301 TLS 1.0 .. 0x0304 TLS 1.3 */
    int v = ssl_version >= 0x0301 && ssl_version <= 0x0304 ? ssl_version - 0x0301 : MTV_OTHER;
    metrics_add(&metrics_fixed_me->tls_handshakes[v][resumed ? 1 : 0], 1);
}

void metrics_tls_failed(enum metrics_tls_failure why)
{
    if (metrics_fixed_me && (unsigned)why < MTF_COUNT)
        metrics_add(&metrics_fixed_me->tls_failures[why], 1);
}

/* ------------------------------------------------------------ exposition */

struct out {
    char *p;
    size_t len, cap;
    int oom;
};

__attribute__((format(printf, 2, 3))) static void outf(struct out *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = o->cap - o->len;
        int n = o->oom ? 0 : vsnprintf(o->p + o->len, room, fmt, ap);
        va_end(ap);
        if (o->oom || n < 0)
            return;
        if ((size_t)n < room) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = (o->cap + (size_t)n + 1) * 2;
        char *q = realloc(o->p, cap);
        if (!q) {
            o->oom = 1;
            return;
        }
        o->p = q;
        o->cap = cap;
    }
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
    outf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static unsigned slots_used(void)
{
    unsigned n = __atomic_load_n(&M->slots_hw, __ATOMIC_ACQUIRE);
    return n > METRICS_SLOTS ? METRICS_SLOTS : n;
}

/* Sum of value j of series i over every slot. */
static uint64_t sum_val(unsigned i, unsigned j)
{
    uint64_t t = 0;
    for (unsigned s = 0; s < slots_used(); s++)
        t += __atomic_load_n(&M->slots[s].v[i][j], __ATOMIC_RELAXED);
    return t;
}

static uint64_t sum_fixed(size_t off)
{
    uint64_t t = 0;
    for (unsigned s = 0; s < slots_used(); s++)
        t += __atomic_load_n((const uint64_t *)((const char *)&M->slots[s].fixed + off),
                             __ATOMIC_RELAXED);
    return t;
}
#define SUM_FIXED(field) sum_fixed(offsetof(struct metrics_fixed, field))

static int series_ready(unsigned i, enum metrics_kind kind)
{
    return __atomic_load_n(&M->series[i].state, __ATOMIC_ACQUIRE) == SERIES_READY &&
           M->series[i].kind == kind;
}

/* A label string with `extra` (e.g. `code_class="2xx"`) added. */
static void labels_with(char *buf, size_t cap, const char *labels, const char *extra)
{
    snprintf(buf, cap, "%s%s%s", labels, *labels && *extra ? "," : "", extra);
}

static void print_histograms(struct out *o, enum metrics_kind kind, unsigned first,
                             const char *name, const char *help)
{
    family(o, name, "histogram", help);
    for (unsigned i = 1; i < METRICS_SERIES; i++) {
        if (!series_ready(i, kind))
            continue;
        const char *l = M->series[i].labels;
        uint64_t cum = 0;
        char le[METRICS_LABELS_MAX + 32];
        for (unsigned b = 0; b < METRICS_NBUCKETS; b++) {
            cum += sum_val(i, first + b);
            char e[24];
            snprintf(e, sizeof(e), "le=\"%s\"", bound_s[b]);
            labels_with(le, sizeof(le), l, e);
            outf(o, "%s_bucket{%s} %llu\n", name, le, (unsigned long long)cum);
        }
        uint64_t count = sum_val(i, first + METRICS_NBUCKETS + 1);
        labels_with(le, sizeof(le), l, "le=\"+Inf\"");
        outf(o, "%s_bucket{%s} %llu\n", name, le, (unsigned long long)count);
        uint64_t ms = sum_val(i, first + METRICS_NBUCKETS);
        outf(o, "%s_sum{%s} %llu.%03llu\n", name, l, (unsigned long long)(ms / 1000),
             (unsigned long long)(ms % 1000));
        outf(o, "%s_count{%s} %llu\n", name, l, (unsigned long long)count);
    }
}

/* One value of each series of `kind`, under `name`, with an extra label per
 * value index: values [first, first + n), extras[k] (NULL: that value is
 * not printed; "" no extra label). Values that are zero are printed only
 * when print_zero[k] (or print_zero NULL). */
static void print_values(struct out *o, enum metrics_kind kind, const char *name, unsigned first,
                         unsigned n, const char *const *extras, int always)
{
    for (unsigned i = 1; i < METRICS_SERIES; i++) {
        if (!series_ready(i, kind))
            continue;
        for (unsigned k = 0; k < n; k++) {
            if (!extras[k])
                continue;
            uint64_t v = sum_val(i, first + k);
            if (!v && !always)
                continue;
            char l[METRICS_LABELS_MAX + 64];
            labels_with(l, sizeof(l), M->series[i].labels, extras[k]);
            outf(o, "%s{%s} %lld\n", name, l, (long long)v);
        }
    }
}

static void render_http(struct out *o)
{
    static const char *const classes[] = {"code_class=\"1xx\"", "code_class=\"2xx\"",
                                          "code_class=\"3xx\"", "code_class=\"4xx\"",
                                          "code_class=\"5xx\"", "code_class=\"other\""};
    family(o, "switchyard_http_requests_total", "counter",
           "Requests ended, by server, location and status class.");
    print_values(o, MK_HTTP, "switchyard_http_requests_total", MV_HTTP_CLASS, 6, classes, 0);
    print_histograms(o, MK_HTTP, MV_HTTP_DUR, "switchyard_http_request_duration_seconds",
                     "Time from the first byte of a request to its end (ms resolution).");
}

static void render_upstream(struct out *o)
{
    print_histograms(o, MK_PEER, MV_PEER_CONNECT, "switchyard_upstream_connect_duration_seconds",
                     "Time to connect to an upstream server (TLS handshake included).");
    print_histograms(o, MK_PEER, MV_PEER_HEADER, "switchyard_upstream_header_duration_seconds",
                     "Time from the start of a try to the upstream's response head.");
    print_histograms(o, MK_PEER, MV_PEER_RESPONSE, "switchyard_upstream_response_duration_seconds",
                     "Time from the start of a try to the end of the upstream's response.");
    static const char *const none[] = {""};
    family(o, "switchyard_upstream_tries_total", "counter",
           "Tries of an upstream server (a request may try several).");
    print_values(o, MK_PEER, "switchyard_upstream_tries_total", MV_PEER_TRIES, 1, none, 1);
    family(o, "switchyard_upstream_peer_failures_total", "counter",
           "Failed tries counted against an upstream server (max_fails).");
    print_values(o, MK_PEER, "switchyard_upstream_peer_failures_total", MV_PEER_FAILS, 1, none, 1);
    family(o, "switchyard_upstream_peer_down", "gauge",
           "1 while some worker holds the server failed (max_fails within fail_timeout).");
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    for (unsigned i = 1; i < METRICS_SERIES; i++) {
        if (!series_ready(i, MK_PEER))
            continue;
        int down = 0;
        for (unsigned s = 0; s < slots_used(); s++)
            if (__atomic_load_n(&M->slots[s].v[i][MV_PEER_DOWN_UNTIL], __ATOMIC_RELAXED) > now)
                down = 1;
        outf(o, "switchyard_upstream_peer_down{%s} %d\n", M->series[i].labels, down);
    }
}

static void render_tunnels(struct out *o)
{
    static const char *const none[] = {""};
    family(o, "switchyard_tunnels_open", "gauge",
           "Tunnels (WebSocket and other upgrades) open, by location and upstream.");
    print_values(o, MK_TUNNEL, "switchyard_tunnels_open", MV_TUN_LIVE, 1, none, 1);
    family(o, "switchyard_tunnels_opened_total", "counter", "Tunnels opened.");
    print_values(o, MK_TUNNEL, "switchyard_tunnels_opened_total", MV_TUN_OPENED, 1, none, 1);
    static const char *const reasons[MTR_COUNT] = {
        "reason=\"client_closed\"",  "reason=\"upstream_closed\"", "reason=\"client_reset\"",
        "reason=\"upstream_reset\"", "reason=\"idle_timeout\"",    "reason=\"ping_timeout\"",
        "reason=\"shutdown\"",       "reason=\"policy\"",          "reason=\"error\"",
        "reason=\"other\""};
    family(o, "switchyard_tunnels_closed_total", "counter", "Tunnels closed, by reason.");
    print_values(o, MK_TUNNEL, "switchyard_tunnels_closed_total", MV_TUN_CLOSE, MTR_COUNT, reasons,
                 0);
    static const char *const dirs[] = {"direction=\"from_client\"", "direction=\"from_upstream\""};
    family(o, "switchyard_tunnel_bytes_total", "counter",
           "Bytes relayed by tunnels, by direction.");
    print_values(o, MK_TUNNEL, "switchyard_tunnel_bytes_total", MV_TUN_BYTES_CLIENT, 2, dirs, 1);
    static const char *const ureasons[MUR_COUNT] = {
        "reason=\"bad_request\"",      "reason=\"unsupported_version\"",
        "reason=\"origin\"",           "reason=\"upstream_declined\"",
        "reason=\"upstream_invalid\"", "reason=\"unknown_protocol\""};
    family(o, "switchyard_upgrades_refused_total", "counter",
           "WebSocket upgrades that did not become a tunnel, by reason.");
    print_values(o, MK_UPGRADE, "switchyard_upgrades_refused_total", 0, MUR_COUNT, ureasons, 0);
}

static void render_limits(struct out *o)
{
    static const char *const outcomes[] = {"outcome=\"passed\"", "outcome=\"delayed\"",
                                           "outcome=\"rejected\"", "outcome=\"delayed_dry_run\"",
                                           "outcome=\"rejected_dry_run\""};
    family(o, "switchyard_limit_req_requests_total", "counter",
           "Requests checked by limit_req, by zone and outcome.");
    print_values(o, MK_LIMIT_REQ, "switchyard_limit_req_requests_total", 0, 5, outcomes, 0);
    static const char *const coutcomes[] = {"outcome=\"passed\"", NULL, "outcome=\"rejected\"",
                                            NULL, "outcome=\"rejected_dry_run\""};
    family(o, "switchyard_limit_conn_requests_total", "counter",
           "Requests checked by limit_conn, by zone and outcome.");
    print_values(o, MK_LIMIT_CONN, "switchyard_limit_conn_requests_total", 0, 5, coutcomes, 0);
}

static void render_connections(struct out *o)
{
    int64_t active = stats_get(&sy_stats->active), reading = stats_get(&sy_stats->reading);
    int64_t writing = stats_get(&sy_stats->writing);
    int64_t tunnels = (int64_t)SUM_FIXED(tunnels);
    int64_t idle = active - reading - writing;
    int64_t busy = writing - tunnels;
    family(o, "switchyard_connections", "gauge",
           "Client connections by state (writing: a request in progress; tunnel: upgraded).");
    outf(o, "switchyard_connections{state=\"reading\"} %lld\n",
         (long long)(reading > 0 ? reading : 0));
    outf(o, "switchyard_connections{state=\"writing\"} %lld\n", (long long)(busy > 0 ? busy : 0));
    outf(o, "switchyard_connections{state=\"idle\"} %lld\n", (long long)(idle > 0 ? idle : 0));
    outf(o, "switchyard_connections{state=\"tunnel\"} %lld\n",
         (long long)(tunnels > 0 ? tunnels : 0));
    family(o, "switchyard_connections_accepted_total", "counter", "Client connections accepted.");
    outf(o, "switchyard_connections_accepted_total %llu\n",
         (unsigned long long)stats_getu(&sy_stats->accepts));
    family(o, "switchyard_http2_connections", "gauge", "HTTP/2 client connections open.");
    outf(o, "switchyard_http2_connections %lld\n", (long long)SUM_FIXED(h2_conns));
    family(o, "switchyard_http2_connections_total", "counter", "HTTP/2 client connections opened.");
    outf(o, "switchyard_http2_connections_total %llu\n",
         (unsigned long long)SUM_FIXED(h2_conns_total));
    family(o, "switchyard_http2_streams", "gauge", "HTTP/2 streams open.");
    outf(o, "switchyard_http2_streams %lld\n", (long long)SUM_FIXED(h2_streams));
    family(o, "switchyard_http2_streams_total", "counter", "HTTP/2 streams opened.");
    outf(o, "switchyard_http2_streams_total %llu\n",
         (unsigned long long)SUM_FIXED(h2_streams_total));
}

static void render_tls(struct out *o)
{
    static const char *const versions[MTV_COUNT] = {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3",
                                                    "other"};
    family(o, "switchyard_tls_handshakes_total", "counter",
           "Client TLS handshakes completed, by version and session resumption.");
    for (unsigned v = 0; v < MTV_COUNT; v++)
        for (unsigned r = 0; r < 2; r++)
            outf(o, "switchyard_tls_handshakes_total{version=\"%s\",resumed=\"%s\"} %llu\n",
                 versions[v], r ? "yes" : "no",
                 (unsigned long long)sum_fixed(offsetof(struct metrics_fixed, tls_handshakes) +
                                               (v * 2 + r) * sizeof(uint64_t)));
    static const char *const reasons[MTF_COUNT] = {
        "peer_closed", "rejected", "no_shared_cipher", "protocol_version", "http_request",
        "certificate", "other"};
    family(o, "switchyard_tls_handshake_failures_total", "counter",
           "Client TLS handshakes that failed, by reason.");
    for (unsigned r = 0; r < MTF_COUNT; r++)
        outf(o, "switchyard_tls_handshake_failures_total{reason=\"%s\"} %llu\n", reasons[r],
             (unsigned long long)sum_fixed(offsetof(struct metrics_fixed, tls_failures) +
                                           r * sizeof(uint64_t)));
}

/* Resident memory of process pid (bytes), 0 when unknown. */
static uint64_t rss_of(int pid)
{
    char path[64], line[128];
    snprintf(path, sizeof(path), "/proc/%d/statm", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    unsigned long long size = 0, rss = 0;
    int ok = fgets(line, sizeof(line), f) && sscanf(line, "%llu %llu", &size, &rss) == 2;
    fclose(f);
    return ok ? rss * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

static void render_workers(struct out *o)
{
    unsigned n = slots_used();
    family(o, "switchyard_config_generations", "gauge",
           "Configuration generations a worker holds (more than 1 while requests of an "
           "older one run).");
    for (unsigned s = 0; s < n; s++)
        if (__atomic_load_n(&M->slots[s].state, __ATOMIC_ACQUIRE) == SLOT_ALIVE)
            outf(o, "switchyard_config_generations{worker=\"%u\"} %llu\n", s,
                 (unsigned long long)__atomic_load_n(&M->slots[s].fixed.gens_alive,
                                                     __ATOMIC_RELAXED));
    family(o, "switchyard_config_reloads_total", "counter", "Reloads (SIGHUP), by outcome.");
    outf(o, "switchyard_config_reloads_total{outcome=\"ok\"} %llu\n",
         (unsigned long long)__atomic_load_n(&M->reloads_ok, __ATOMIC_RELAXED));
    outf(o, "switchyard_config_reloads_total{outcome=\"failed\"} %llu\n",
         (unsigned long long)__atomic_load_n(&M->reloads_failed, __ATOMIC_RELAXED));
    family(o, "switchyard_buffer_pool_buffers", "gauge",
           "I/O buffers of a worker's pool, in use or pooled (as of its last request).");
    for (unsigned s = 0; s < n; s++) {
        struct metrics_slot *sl = &M->slots[s];
        if (__atomic_load_n(&sl->state, __ATOMIC_ACQUIRE) != SLOT_ALIVE)
            continue;
        outf(o, "switchyard_buffer_pool_buffers{worker=\"%u\",state=\"in_use\"} %llu\n", s,
             (unsigned long long)__atomic_load_n(&sl->fixed.buf_in_use, __ATOMIC_RELAXED));
        outf(o, "switchyard_buffer_pool_buffers{worker=\"%u\",state=\"pooled\"} %llu\n", s,
             (unsigned long long)__atomic_load_n(&sl->fixed.buf_pooled, __ATOMIC_RELAXED));
    }
    family(o, "switchyard_worker_resident_memory_bytes", "gauge",
           "Resident memory of each worker process.");
    for (unsigned s = 0; s < n; s++) {
        struct metrics_slot *sl = &M->slots[s];
        int pid = __atomic_load_n(&sl->pid, __ATOMIC_ACQUIRE);
        if (__atomic_load_n(&sl->state, __ATOMIC_ACQUIRE) == SLOT_ALIVE && pid > 0)
            outf(o, "switchyard_worker_resident_memory_bytes{worker=\"%u\"} %llu\n", s,
                 (unsigned long long)rss_of(pid));
    }
    family(o, "switchyard_metrics_series_dropped_total", "counter",
           "Series not counted because the metrics table was full.");
    outf(o, "switchyard_metrics_series_dropped_total %llu\n",
         (unsigned long long)__atomic_load_n(&M->series_dropped, __ATOMIC_RELAXED));
}

long metrics_render(char **out)
{
    struct out o = {0};
    o.cap = 16384;
    o.p = malloc(o.cap);
    if (!o.p)
        return -1;
    o.p[0] = 0;
    if (M) {
        render_http(&o);
        render_upstream(&o);
        render_tunnels(&o);
        render_limits(&o);
        render_connections(&o);
        render_tls(&o);
        render_workers(&o);
    }
    if (o.oom) {
        free(o.p);
        return -1;
    }
    *out = o.p;
    return (long)o.len;
}
