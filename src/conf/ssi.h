/*
 * ssi.h - configuration of server-side includes: nginx's
 * ngx_http_ssi_filter_module (ssi, ssi_types, ssi_silent_errors,
 * ssi_value_length, ssi_min_file_chunk, ssi_last_modified,
 * ssi_ignore_recycled_buffers). The directive table is in ssi.c; the filter
 * that uses these settings is src/http/ssi.c.
 *
 * The settings of one level live in `struct ssi_conf`, embedded in struct
 * loc_conf (`lc->ssi`), created unset by ssi_conf_init() and merged by
 * ssi_conf_merge() with nginx's defaults and inheritance (merge.c calls
 * both).
 */
#ifndef SY_CONF_SSI_H
#define SY_CONF_SSI_H

#include <stdint.h>

#include "conf/gzip.h"

struct ssi_conf {
    int enable;                         /* ssi: off */
    int silent_errors;                  /* off */
    int ignore_recycled_buffers;        /* off; accepted, no effect */
    int last_modified;                  /* off: Last-Modified and ETag removed */
    uint64_t min_file_chunk;            /* 1k; accepted, no effect (bodies are copied) */
    uint64_t value_len;                 /* ssi_value_length: 255 */
    const struct compress_types *types; /* NULL: text/html only */
};

/* Every field unset (called for each new level's loc_conf). */
void ssi_conf_init(struct ssi_conf *c);

/* Merge `c` from its parent `prev` (NULL at the top: nginx's defaults). */
void ssi_conf_merge(struct ssi_conf *c, const struct ssi_conf *prev);

#endif
