/*
 * map.c - the key order of map{} blocks (map_key_cmp, conf.h), shared by the
 * loader that sorts the keys and by http/router.c's lookup.
 */
#include "conf/conf.h"
#include "core/str.h"

int map_key_cmp(struct str a, struct str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    for (size_t i = 0; i < n; i++) {
        unsigned char ca = sy_tolower((unsigned char)a.p[i]);
        unsigned char cb = sy_tolower((unsigned char)b.p[i]);
        if (ca != cb)
            return ca < cb ? -1 : 1;
    }
    return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
}
