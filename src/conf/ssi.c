/*
 * ssi.c - the directives of server-side includes (see ssi.h), with nginx's
 * syntax, defaults and messages.
 */
#include "conf/ssi.h"
#include "conf/directive_table.h"

#include <string.h>

#define SC(f) LVL_LOC, offsetof(struct loc_conf, ssi.f)

void ssi_conf_init(struct ssi_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->enable = CONF_UNSET;
    c->silent_errors = CONF_UNSET;
    c->ignore_recycled_buffers = CONF_UNSET;
    c->last_modified = CONF_UNSET;
    c->min_file_chunk = CONF_UNSET_U64;
    c->value_len = CONF_UNSET_U64;
}

#define M_INT(f, def)                                                                              \
    do {                                                                                           \
        if (c->f == CONF_UNSET)                                                                    \
            c->f = prev ? prev->f : (def);                                                         \
    } while (0)
#define M_U64(f, def)                                                                              \
    do {                                                                                           \
        if (c->f == CONF_UNSET_U64)                                                                \
            c->f = prev ? prev->f : (def);                                                         \
    } while (0)

void ssi_conf_merge(struct ssi_conf *c, const struct ssi_conf *prev)
{
    M_INT(enable, 0);
    M_INT(silent_errors, 0);
    M_INT(ignore_recycled_buffers, 0);
    M_INT(last_modified, 0);
    M_U64(min_file_chunk, 1024);
    M_U64(value_len, 255);
    if (!c->types && prev)
        c->types = prev->types;
}

const struct directive ssi_directives[] = {
    {"ssi", HSL | CTX_LIF, ARGS(1, 1), set_flag, SC(enable), NULL},
    {"ssi_silent_errors", HSL, ARGS(1, 1), set_flag, SC(silent_errors), NULL},
    {"ssi_ignore_recycled_buffers", HSL, ARGS(1, 1), set_flag, SC(ignore_recycled_buffers), NULL},
    {"ssi_min_file_chunk", HSL, ARGS(1, 1), set_size, SC(min_file_chunk), NULL},
    {"ssi_value_length", HSL, ARGS(1, 1), set_size, SC(value_len), NULL},
    {"ssi_types", HSL, ARGS(1, MANY), compress_set_types, SC(types), NULL},
    {"ssi_last_modified", HSL, ARGS(1, 1), set_flag, SC(last_modified), NULL},
    {NULL, 0, 0, NULL, LVL_NONE, 0, NULL},
};
