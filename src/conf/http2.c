/*
 * http2.c - configuration of HTTP/2 (see http2.h): the directives of
 * ngx_http_v2_module and conf_http2_enabled() (conf.h).
 *
 * nginx keeps most of these in its server conf; here they are loc_conf
 * fields set at http or server level (the table's contexts keep them out of
 * location{}, except http2_chunk_size) and merged down, so the value a
 * location sees is its server's. Limits and messages are nginx's
 * (ngx_http_v2_module.c, 1.25.1+).
 */
#include "conf/http2.h"
#include "conf/directive_table.h"

#include <stdint.h>
#include <string.h>

/* nginx's limits (ngx_http_v2.h, ngx_palloc.h on a 64-bit build) */
#define H2_MAX_WINDOW ((UINT64_C(1) << 31) - 1)
#define H2_MAX_FRAME_SIZE ((UINT64_C(1) << 24) - 1)
#define H2_STATE_BUFFER_SIZE 16
#define H2_MIN_POOL_SIZE 112
#define H2_POOL_ALIGNMENT 16

int conf_http2_enabled(const struct listen_conf *l, const struct server_conf *srv)
{
    return (l && l->http2) || (srv && srv->http2 > 0);
}

/* A size argument into *f (nginx ngx_conf_set_size_slot). NULL or the error. */
static const char *size_arg(struct conf_parser *p, uint64_t *f)
{
    if (*f != CONF_UNSET_U64)
        return "is duplicate";
    if (str_to_size(str_from_cstr(p->node->args[0]), f) != 0) {
        *f = CONF_UNSET_U64;
        return "invalid value";
    }
    return NULL;
}

/* A number argument (nginx ngx_conf_set_num_slot). NULL or the error. */
static const char *num_arg(struct conf_parser *p, uint64_t *f)
{
    if (*f != CONF_UNSET_U64)
        return "is duplicate";
    if (str_to_u64(str_from_cstr(p->node->args[0]), INT64_MAX, f) != 0) {
        *f = CONF_UNSET_U64;
        return "invalid number";
    }
    return NULL;
}

const char *http2_set_max_streams(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    return num_arg(p, &lc->http2_max_concurrent_streams);
}

const char *http2_set_preread_size(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    const char *rv = size_arg(p, &lc->http2_body_preread_size);
    if (rv)
        return rv;
    if (lc->http2_body_preread_size > H2_MAX_WINDOW)
        return conf_err(p, "the maximum body preread buffer size is %llu",
                        (unsigned long long)H2_MAX_WINDOW);
    return NULL;
}

const char *http2_set_chunk_size(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    const char *rv = size_arg(p, &lc->http2_chunk_size);
    if (rv)
        return rv;
    if (lc->http2_chunk_size == 0)
        return conf_err(p, "the http2 chunk size cannot be zero");
    /* a DATA frame cannot be larger; nginx clamps silently */
    if (lc->http2_chunk_size > H2_MAX_FRAME_SIZE)
        lc->http2_chunk_size = H2_MAX_FRAME_SIZE;
    return NULL;
}

const char *http2_set_recv_buffer_size(struct conf_parser *p, const struct directive *d,
                                       void *conf)
{
    (void)d;
    struct loc_conf *lc = conf;
    const char *rv = size_arg(p, &lc->http2_recv_buffer_size);
    if (rv)
        return rv;
    /* nginx keeps a frame header's worth of state in the same buffer */
    if (lc->http2_recv_buffer_size <= H2_STATE_BUFFER_SIZE)
        return "value is too small";
    return NULL;
}

const char *http2_set_pool_size(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    if (conf_repeated_in_block(p))
        return "is duplicate";
    uint64_t v;
    if (str_to_size(str_from_cstr(p->node->args[0]), &v) != 0)
        return "invalid value";
    if (v < H2_MIN_POOL_SIZE)
        return conf_err(p, "the pool size must be no less than %d", H2_MIN_POOL_SIZE);
    if (v % H2_POOL_ALIGNMENT)
        return conf_err(p, "the pool size must be a multiple of %d", H2_POOL_ALIGNMENT);
    return NULL;
}

const char *http2_set_streams_index_size(struct conf_parser *p, const struct directive *d,
                                         void *conf)
{
    (void)d;
    (void)conf;
    if (conf_repeated_in_block(p))
        return "is duplicate";
    uint64_t v;
    if (str_to_u64(str_from_cstr(p->node->args[0]), INT64_MAX, &v) != 0)
        return "invalid number";
    if (v == 0 || (v & (v - 1)) != 0)
        return "must be a power of two";
    return NULL;
}

/* The obsolete directives nginx names a replacement for. */
static const struct {
    const char *name, *instead;
} replaced[] = {
    {"http2_recv_timeout", "client_header_timeout"},
    {"http2_idle_timeout", "keepalive_timeout"},
    {"http2_max_requests", "keepalive_requests"},
    {"http2_max_field_size", "large_client_header_buffers"},
    {"http2_max_header_size", "large_client_header_buffers"},
};

const char *http2_set_obsolete(struct conf_parser *p, const struct directive *d, void *conf)
{
    (void)d;
    (void)conf;
    const char *name = p->node->name;
    for (size_t i = 0; i < sizeof(replaced) / sizeof(replaced[0]); i++)
        if (strcmp(replaced[i].name, name) == 0) {
            conf_warn_node(p, "the \"%s\" directive is obsolete, use the \"%s\" directive instead",
                           name, replaced[i].instead);
            return NULL;
        }
    conf_warn_node(p, "the \"%s\" directive is obsolete, ignored", name);
    return NULL;
}

const struct directive http2_directives[] = {
    {"http2", HS, ARGS(1, 1), set_flag, LOC(http2), NULL},
    {"http2_max_concurrent_streams", HS, ARGS(1, 1), http2_set_max_streams, LVL_LOC, 0, NULL},
    {"http2_body_preread_size", HS, ARGS(1, 1), http2_set_preread_size, LVL_LOC, 0, NULL},
    {"http2_chunk_size", HSL, ARGS(1, 1), http2_set_chunk_size, LVL_LOC, 0, NULL},
    {"http2_recv_buffer_size", CTX_HTTP, ARGS(1, 1), http2_set_recv_buffer_size, LVL_LOC, 0,
     NULL},
    {"http2_pool_size", HS, ARGS(1, 1), http2_set_pool_size, LVL_LOC, 0, NULL},
    {"http2_streams_index_size", HS, ARGS(1, 1), http2_set_streams_index_size, LVL_LOC, 0, NULL},
    {"http2_idle_timeout", HS, ARGS(1, 1), http2_set_obsolete, LVL_NONE, 0, NULL},
    {"http2_max_requests", HS, ARGS(1, 1), http2_set_obsolete, LVL_NONE, 0, NULL},
    {"http2_recv_timeout", HS, ARGS(1, 1), http2_set_obsolete, LVL_NONE, 0, NULL},
    {"http2_max_field_size", HS, ARGS(1, 1), http2_set_obsolete, LVL_NONE, 0, NULL},
    {"http2_max_header_size", HS, ARGS(1, 1), http2_set_obsolete, LVL_NONE, 0, NULL},
    {"http2_max_concurrent_pushes", HS, ARGS(1, 1), http2_set_obsolete, LVL_NONE, 0, NULL},
    {"http2_push", HSL, ARGS(1, 1), http2_set_obsolete, LVL_NONE, 0, NULL},
    {"http2_push_preload", HSL, ARGS(1, 1), http2_set_obsolete, LVL_NONE, 0, NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
