/*
 * geo_var.h - the value of a geo variable for a request (conf/geo.h holds
 * the compiled block and the pure lookups).
 */
#ifndef SY_HTTP_GEO_VAR_H
#define SY_HTTP_GEO_VAR_H

#include "conf/geo.h"
#include "core/str.h"

struct client_stream;

/*
 * The value of `g` for the request on `s`, as nginx's geo module: the
 * address is `$address` when given, else the client address (after realip);
 * with `proxy` entries a trusted address is replaced from X-Forwarded-For
 * (proxy_recursive: walked while trusted). An address that is missing or not
 * an IP address looks up 255.255.255.255 (CIDR form) or gets the default
 * (ranges form). IPv4-mapped IPv6 addresses are looked up as IPv4. Never
 * fails: the value is at least the default ("").
 */
struct str geo_var_value(struct client_stream *s, const struct geo_conf *g);

#endif
