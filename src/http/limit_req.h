/*
 * limit_req.h - limit_req: nginx's leaky bucket per key, kept in a shared
 * zone (core/shm_zone.h) so that every worker counts the same requests.
 *
 * Units are nginx's: rates in milli-requests per second, the bucket level
 * ("excess") in milli-requests. Per key, each request does
 *
 *     excess = max(0, excess - rate * elapsed_ms / 1000 + 1000)
 *
 * (a key's first request starts at 0). Above `burst` (x 1000) the request is
 * rejected and the bucket is left as it was; otherwise the bucket keeps the
 * new level and the request waits (excess - delay) * 1000 / rate ms, where
 * `delay` is 0 by default, `delay=N` x 1000, and infinite with `nodelay`.
 */
#ifndef SY_HTTP_LIMIT_REQ_H
#define SY_HTTP_LIMIT_REQ_H

#include <stdint.h>

struct client_stream;

/* $limit_req_status / $limit_conn_status values (0 = no limit applied). */
enum limit_status {
    LIMIT_PASSED = 1,
    LIMIT_DELAYED,
    LIMIT_REJECTED,
    LIMIT_DELAYED_DRY_RUN,
    LIMIT_REJECTED_DRY_RUN,
};

/* "PASSED", "DELAYED", ... for the variables; NULL for 0 or out of range. */
const char *limit_status_name(unsigned st);

/*
 * The bucket after one more request: `excess` drained for `elapsed_ms` at
 * `rate`, plus 1000, never below 0 (elapsed_ms as limit_req_elapsed gives it).
 */
int64_t limit_req_excess(int64_t excess, uint64_t rate, int64_t elapsed_ms);

/* Milliseconds from `last` to `now` on the monotonic clock, as nginx counts
 * them: a small step back (another worker's clock read later) is 0, a big
 * one is 1. */
int64_t limit_req_elapsed(uint64_t now, uint64_t last);

/* How long a request at `excess` waits: 0 when excess <= delay. */
uint64_t limit_req_delay_ms(int64_t excess, uint64_t delay, uint64_t rate);

struct shm_zone;
struct zone_key;
struct limit_req_rule;

/* What one rule's lookup found. */
enum limit_req_rc {
    LIMIT_REQ_AGAIN = 1, /* within the burst, nothing stored (not the last rule) */
    LIMIT_REQ_OK,        /* within the burst, the new level stored */
    LIMIT_REQ_BUSY,      /* over the burst: *excess is the level it would reach */
    LIMIT_REQ_ERROR,     /* the zone is full even after evicting its oldest key */
};

/*
 * One rule's lookup of key `k` at time `now` (ms, monotonic), with the
 * zone's lock held (nginx's ngx_http_limit_req_lookup): a new key starts at
 * level 0 (evicting idle keys, or if the zone is full its least recently
 * used one); an existing one moves as limit_req_excess says, stored only
 * with `account` and within the burst. Returns enum limit_req_rc.
 */
int limit_req_lookup(struct shm_zone *z, const struct limit_req_rule *rule,
                     const struct zone_key *k, uint64_t now, int account, int64_t *excess);

/*
 * Apply the location's limit_req rules to the session's current request
 * (once: r->limit_req_status is set). Returns 0 to go on -- then *delay_ms
 * is how long to hold the request first (0: none) -- or the status to answer
 * with (limit_req_status, or 500). Logs as nginx does.
 */
int limit_req_check(struct client_stream *s, uint64_t *delay_ms);

/* Log (error) that a key of `z` evaluated to more than `max` bytes and is not
 * limited: nginx's "the value of the ... key is more than N bytes". */
struct limit_zone;
struct str;
void limit_log_long_key(struct client_stream *s, const struct limit_zone *z, int max,
                        const struct str *key);

#endif
