/*
 * tunnel.h - the relay after a successful protocol switch (101): bytes both
 * ways between the client and the upstream until one side ends it.
 *
 * A tunnel relays between two ends (tunnel_end.h): socket ends made here
 * from the connections it is given, or a ready-made end (an HTTP/2 stream,
 * later). It owns both ends and nothing else of the request: it copies the
 * few settings it needs and references no configuration generation, so
 * reloads never touch it (decision 8). While idle it holds no buffer.
 */
#ifndef SY_PROXY_TUNNEL_H
#define SY_PROXY_TUNNEL_H

#include <stdint.h>

#include "core/buf.h"
#include "core/conn.h"
#include "http/vars_eval.h"

struct log_file;
struct tunnel_end;
struct limit_conn_holds;

/* An access-log line prepared at the switch; tunnel variables are filled in at the end. */
struct tunnel_log {
    struct log_file *lf;        /* one reference, owned */
    char *line;                 /* owned; contains marks (TUNNEL_MARK) where end values go */
    size_t len;
};

/* Where a tunnel's log line holds marks: TUNNEL_MARK, http/vars_eval.h. */

struct tunnel_params {
    struct conn *client;        /* copied into a socket end: the tunnel takes over the fd
                                   and transport (unused when client_end is set) */
    struct tunnel_end *client_end; /* or a ready-made client end (owned; NULL: use `client`) */
    struct conn *upstream;      /* copied into a socket end likewise */
    char *prefix_to_client;     /* owned: bytes sent to the client before anything relayed (the 101 head) */
    size_t prefix_len;
    struct buf *from_client;    /* bytes read from the client after the request head (owned, may be NULL) */
    struct buf *from_upstream;  /* bytes after the 101 head (owned, may be NULL) */
    int websocket;              /* follow WebSocket frames (pings, close frames) */
    uint64_t idle_timeout;      /* ms; 0 = none */
    uint64_t ping_interval;     /* ms; 0 = no pings */
    uint64_t ping_timeout;      /* ms */
    uint64_t max_message;       /* websocket_max_message_size for client messages; 0 = off */
    uint64_t message_rate;      /* client messages per 1000 s; 0 = off */
    uint64_t message_burst;
    uint64_t conn_id;           /* client connection number for log lines */
    char *log_ctx;              /* owned: ", client: ..., server: ..., request: ..." for error lines */
    struct tunnel_log *logs;    /* owned array */
    unsigned nlogs;
    struct limit_conn_holds *limit_conn; /* owned: the request's limit_conn counts, given
                                   back when the tunnel closes (NULL: none) */
    unsigned *peer_load;        /* the server's active-connection count (least_conn); the tunnel
                                   holds one until it closes (or NULL) */
    int live_slot;              /* its entry on the status page (status_tunnel_open(), owned:
                                   freed when the tunnel ends), or -1 */
    int metrics_sid;            /* its metrics series (proxy/metrics_proxy.h), 0 none */
};

/*
 * Start relaying. Takes ownership of everything in `tp` (also on failure,
 * when it closes both ends and returns -1). The caller must forget the
 * two connections without closing them.
 */
int tunnel_start(struct tunnel_params *tp);

/* Open tunnels of this worker. */
extern unsigned tunnel_count;

/*
 * Graceful shutdown: end every tunnel with a WebSocket close frame 1001
 * ("going away") to each side (plain byte tunnels are just closed).
 */
void tunnel_shutdown_all(void);

/* Close every tunnel at once (exit). */
void tunnel_close_all(void);

#endif
