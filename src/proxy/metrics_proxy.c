/*
 * metrics_proxy.c - upstream, tunnel and upgrade metrics (metrics_proxy.h).
 */
#include "proxy/metrics_proxy.h"

#include <string.h>

#include "core/loop.h"
#include "http/metrics_http.h"

/* Server i's series, cached in this worker's state of the generation. */
static int peer_series(const struct upstream_conf *u, struct upstream_rt *urt, int i)
{
    struct peer_rt *pr = &urt->peers[i];
    if (pr->metrics_sid)
        return pr->metrics_sid;
    char labels[METRICS_LABELS_MAX];
    size_t len = 0;
    const char *peer = u->peers[i].name ? u->peers[i].name : "";
    metrics_label_append(labels, sizeof(labels), &len, "upstream", u->name, strlen(u->name));
    metrics_label_append(labels, sizeof(labels), &len, "peer", peer, strlen(peer));
    int sid = metrics_series(MK_PEER, labels, len);
    pr->metrics_sid = sid ? sid : -1;
    return pr->metrics_sid;
}

void metrics_peer_try(struct upstream_try *t, const struct upstream_conf *u,
                      struct upstream_rt *urt, int i)
{
    if (t && metrics_me && urt && i >= 0)
        t->metrics_sid = peer_series(u, urt, i);
}

void metrics_peer_failed(const struct upstream_conf *u, struct upstream_rt *urt, int i)
{
    if (!metrics_me || !urt || i < 0)
        return;
    uint64_t *v = metrics_vals(peer_series(u, urt, i));
    if (!v)
        return;
    metrics_add(&v[MV_PEER_FAILS], 1);
    const struct upstream_peer *pe = &u->peers[i];
    /* upstream_peer_failed counts next; nginx ignores the only server's */
    if (u->npeers > 1 && pe->max_fails && urt->peers[i].fails + 1 >= pe->max_fails)
        metrics_set(&v[MV_PEER_DOWN_UNTIL], loop_now() + pe->fail_timeout);
}

int metrics_tunnel_series(const struct request *r, const struct upstream_conf *u)
{
    if (!metrics_me)
        return 0;
    char labels[METRICS_LABELS_MAX], loc[160];
    size_t len = 0;
    size_t ll = metrics_location_name(r, loc, sizeof(loc));
    metrics_label_append(labels, sizeof(labels), &len, "location", loc, ll);
    const char *un = u && u->name ? u->name : "";
    metrics_label_append(labels, sizeof(labels), &len, "upstream", un, strlen(un));
    return metrics_series(MK_TUNNEL, labels, len);
}

void metrics_tunnel_open(int sid)
{
    METRICS_FIXED_ADD(tunnels, 1);
    uint64_t *v = metrics_vals(sid);
    if (!v)
        return;
    metrics_add(&v[MV_TUN_LIVE], 1);
    metrics_add(&v[MV_TUN_OPENED], 1);
}

void metrics_tunnel_bytes(int sid, int from_client, uint64_t n)
{
    uint64_t *v = metrics_vals(sid);
    if (v)
        metrics_add(&v[from_client ? MV_TUN_BYTES_CLIENT : MV_TUN_BYTES_UPSTREAM], n);
}

static enum metrics_tunnel_reason tunnel_reason(const char *why)
{
    static const struct {
        const char *text;
        enum metrics_tunnel_reason r;
    } map[] = {
        {"client closed", MTR_CLIENT_CLOSED},
        {"upstream closed", MTR_UPSTREAM_CLOSED},
        {"client reset", MTR_CLIENT_RESET},
        {"upstream reset", MTR_UPSTREAM_RESET},
        {"idle timeout", MTR_IDLE_TIMEOUT},
        {"ping timeout", MTR_PING_TIMEOUT},
        {"shutdown", MTR_SHUTDOWN},
        {"exit", MTR_SHUTDOWN},
        {"out of memory", MTR_ERROR},
        {"linger timeout", MTR_OTHER},
        {"closed", MTR_OTHER},
    };
    if (!why)
        return MTR_OTHER;
    for (unsigned i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(why, map[i].text) == 0)
            return map[i].r;
    /* the rest are the WebSocket policies (message size, rate, protocol
     * errors): Switchyard closed the tunnel for what the client sent */
    return MTR_POLICY;
}

void metrics_tunnel_closed(int sid, const char *reason)
{
    METRICS_FIXED_ADD(tunnels, -1);
    uint64_t *v = metrics_vals(sid);
    if (!v)
        return;
    metrics_add(&v[MV_TUN_LIVE], (uint64_t)-1);
    metrics_add(&v[MV_TUN_CLOSE + tunnel_reason(reason)], 1);
}

void metrics_upgrade_refused(const struct request *r, int status, int why)
{
    if (!metrics_me)
        return;
    if (status)
        why = status == 426 ? MUR_VERSION : status == 403 ? MUR_ORIGIN : MUR_BAD_REQUEST;
    if (why < 0 || why >= MUR_COUNT)
        return;
    char labels[METRICS_LABELS_MAX], loc[160];
    size_t len = 0;
    size_t ll = metrics_location_name(r, loc, sizeof(loc));
    metrics_label_append(labels, sizeof(labels), &len, "location", loc, ll);
    uint64_t *v = metrics_vals(metrics_series(MK_UPGRADE, labels, len));
    if (v)
        metrics_add(&v[why], 1);
}
