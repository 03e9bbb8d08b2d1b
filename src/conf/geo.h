/*
 * geo.h - the geo module (nginx's ngx_http_geo_module): `geo [$address]
 * $variable { ... }` blocks, compiled at load into a binary trie per address
 * family (CIDR form) or a table of ranges per /16 (`ranges` form), looked up
 * per request by http/geo_var.c.
 *
 * The lookups here are pure: geo_find_v4/v6 and geo_find_range take an
 * address and return the value nginx would, so they are unit-tested.
 */
#ifndef SY_CONF_GEO_H
#define SY_CONF_GEO_H

#include <stdint.h>

#include "conf/conf.h"
#include "conf/vars.h"
#include "core/str.h"

struct arena;

/* A node of a binary trie over address bits (most significant first). */
struct geo_node {
    struct geo_node *child[2];
    const struct str *value; /* NULL: no network ends here */
};

/* A range inside one /16 block of IPv4 addresses (the low 16 bits). */
struct geo_range16 {
    uint16_t start, end;
    const struct str *value;
};

struct geo_conf {
    struct tmpl source;       /* the address (`geo $address $var`) */
    int has_source;           /* 0: the client address ($remote_addr) */
    int ranges;               /* `ranges`: IPv4 start-end entries */
    /* CIDR form: both roots hold `default` (0.0.0.0/0 and ::/0) */
    struct geo_node *tree4, *tree6;
    /* ranges form: the ranges of block h are rng[first[h] .. first[h+1]) */
    uint32_t *first;          /* 65537 entries; NULL when there is no range */
    struct geo_range16 *rng;
    const struct str *deflt;  /* ranges form: `default` ("" when none) */
    /* `proxy` CIDRs: X-Forwarded-For is believed when the address is one */
    struct realip_cidr *proxies;
    unsigned nproxies;
    int proxy_recursive;
};

/*
 * Insert network `addr`/`bits` (`addr` in network order, 4 or 16 bytes for
 * `width` 32 or 128) with `value` into the trie at *root (created on
 * demand). Returns the value it replaced (NULL: new) in *old; -1 on OOM.
 */
int geo_trie_insert(struct arena *a, struct geo_node **root, const uint8_t *addr, unsigned bits,
                    const struct str *value, const struct str **old);

/* Remove the value of exactly `addr`/`bits`. 1 when there was one, else 0. */
int geo_trie_delete(struct geo_node *root, const uint8_t *addr, unsigned bits);

/* Longest-prefix match of `addr` (`width` bits). NULL when nothing matches. */
const struct str *geo_trie_find(const struct geo_node *root, const uint8_t *addr, unsigned width);

/* The value for IPv4 address `ip` (host order) in `g`'s ranges, or its default. */
const struct str *geo_find_range(const struct geo_conf *g, uint32_t ip);

#endif
