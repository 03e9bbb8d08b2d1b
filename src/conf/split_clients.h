/*
 * split_clients.h - nginx's ngx_http_split_clients_module: `split_clients
 * "$string" $variable { 0.5% a; 2% b; * c; }`. The string's MurmurHash2
 * picks the part, so a client lands in the bucket nginx would put it in.
 */
#ifndef SY_CONF_SPLIT_CLIENTS_H
#define SY_CONF_SPLIT_CLIENTS_H

#include <stddef.h>
#include <stdint.h>

#include "conf/vars.h"
#include "core/str.h"

struct split_part {
    uint32_t upto;   /* the hash is below it; 0: this part takes the rest */
    struct str value;
};

struct split_clients_conf {
    struct tmpl source;
    struct split_part *parts;
    unsigned nparts;
};

/* nginx's ngx_murmur_hash2() of `len` bytes at `data`. */
uint32_t split_murmur_hash2(const unsigned char *data, size_t len);

/* The value for `hash`: the first part whose bound is above it, or the "*"
 * part; "" (found) when the percentages leave the hash outside every part. */
struct str split_clients_pick(const struct split_clients_conf *sc, uint32_t hash);

#endif
