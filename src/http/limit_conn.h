/*
 * limit_conn.h - limit_conn: how many requests per key are in progress at
 * once, counted in a shared zone (core/shm_zone.h) by every worker.
 *
 * A request that passes holds one count per rule (struct limit_conn_holds,
 * owned by the request) until it ends, whatever the way it ends: complete
 * response, error page, client gone, upstream failure, shutdown. An upgraded
 * connection (WebSocket) hands its holds to the tunnel, which keeps them
 * until it closes. A key whose count drops to 0 leaves the zone.
 */
#ifndef SY_HTTP_LIMIT_CONN_H
#define SY_HTTP_LIMIT_CONN_H

#include <stdint.h>

struct client_stream;
struct shm_zone;

/* The counts a request (or tunnel) holds. */
struct limit_conn_holds {
    unsigned n;
    struct {
        struct shm_zone *z;     /* one reference, so the zone outlives a reload dropping it */
        uint32_t id;            /* node id in the zone ... */
        uint32_t epoch;         /* ... valid while the zone was not wiped */
    } h[];
};

/*
 * Apply the location's limit_conn rules to the session's current request
 * (once: r->limit_conn_status is set). Returns 0 to go on (the counts taken
 * are in r->limit_conn), or the status to answer with.
 */
int limit_conn_check(struct client_stream *s);

/* Give every count back and free `h`. Accepts NULL. */
void limit_conn_release(struct limit_conn_holds *h);

#endif
