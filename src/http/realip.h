/*
 * realip.h - the real client address behind trusted proxies (nginx's
 * ngx_http_realip_module): set_real_ip_from, real_ip_header,
 * real_ip_recursive.
 *
 * When the connection's peer is trusted, the address named by the PROXY
 * protocol header, X-Real-IP, X-Forwarded-For or another header becomes the
 * request's client address: $remote_addr, $remote_port, the access log,
 * "client:" in error lines, $proxy_add_x_forwarded_for. The peer itself stays
 * available as $realip_remote_addr / $realip_remote_port. As in nginx the
 * change lasts for one request: the next request on a keep-alive connection
 * starts from the peer again.
 */
#ifndef SY_HTTP_REALIP_H
#define SY_HTTP_REALIP_H

#include "conf/conf.h"
#include "core/conn.h"
#include "core/str.h"

struct client_stream;

/*
 * Apply the realip settings of `lc` to the session's current request. Called
 * twice per request, as nginx runs its handler in two phases: with the
 * server's conf before the server's rewrite directives (POST_READ), and with
 * the location's conf before its handler (PREACCESS). Once an address was
 * set, later calls do nothing (internal redirects included).
 */
void realip_apply(struct client_stream *s, const struct loc_conf *lc);

/* The current request's client address: the real one once set, else the peer. */
const union conn_addr *realip_client(const struct client_stream *s);

/* ---- pure helpers (unit-tested) ---- */

/* realip_parse_cidr() is conf/conf.h's (set_real_ip_from parses at load). */

/* Is `a` inside one of `from[0..n)`? IPv4-mapped IPv6 addresses match IPv4 entries. */
int realip_trusted(const struct realip_cidr *from, unsigned n, const union conn_addr *a);

/*
 * Parse an address with an optional port as nginx's ngx_parse_addr_port:
 * "1.2.3.4", "1.2.3.4:80", "::1", "[::1]:80". Port 0 when absent. 0 or -1.
 */
int realip_parse_addr(struct str text, union conn_addr *out);

/* What realip_forwarded() found. */
enum realip_rc {
    REALIP_DECLINED = 0,    /* nothing usable: the address is unchanged */
    REALIP_OK,              /* the address was replaced; the list was used up */
    REALIP_DONE,            /* replaced, stopped at an untrusted or unparsable entry */
};

/*
 * Walk one header value (a comma/space separated list) from the right as
 * nginx does: while the current address `*addr` is trusted, take the next
 * element as the address; without `recursive` only the last element is
 * taken. Returns a realip_rc; *addr is replaced unless REALIP_DECLINED.
 */
enum realip_rc realip_forwarded(const struct realip_cidr *from, unsigned n, int recursive,
                                struct str value, union conn_addr *addr);

#endif
