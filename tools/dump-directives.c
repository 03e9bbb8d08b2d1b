/*
 * dump-directives - print the directive table (every module's, as the
 * configuration parser sees it) as tab-separated lines:
 *
 *   name <TAB> contexts <TAB> min_args <TAB> max_args|many <TAB> block|-
 *
 * contexts in nginx's names, comma-separated, in table order; a name listed
 * by several tables appears once with the union of its contexts. Read by
 * tools/confman.py to generate switchyard.conf(5). Not part of the binary.
 */
#include <stdio.h>
#include <string.h>

#include "conf/directives.h"

static const struct {
    unsigned ctx;
    const char *name;
} ctx_names[] = {
    {CTX_MAIN, "main"},          {CTX_EVENTS, "events"},   {CTX_HTTP, "http"},
    {CTX_SERVER, "server"},      {CTX_LOCATION, "location"}, {CTX_SIF, "if in server"},
    {CTX_LIF, "if in location"}, {CTX_UPSTREAM, "upstream"}, {CTX_LMT, "limit_except"},
};

/* 1 when an entry before `i` has the same name (already printed). */
static int seen_before(unsigned i, const char *name)
{
    struct conf_directive_info o;
    for (unsigned k = 0; k < i && conf_directive_at(k, &o); k++)
        if (strcmp(o.name, name) == 0)
            return 1;
    return 0;
}

int main(void)
{
    struct conf_directive_info d, o;
    for (unsigned i = 0; conf_directive_at(i, &d); i++) {
        if (seen_before(i, d.name))
            continue;
        unsigned ctx = 0;
        for (unsigned k = 0; conf_directive_at(k, &o); k++)
            if (strcmp(o.name, d.name) == 0)
                ctx |= o.ctx;
        printf("%s\t", d.name);
        const char *sep = "";
        for (size_t c = 0; c < sizeof(ctx_names) / sizeof(ctx_names[0]); c++)
            if (ctx & ctx_names[c].ctx) {
                printf("%s%s", sep, ctx_names[c].name);
                sep = ",";
            }
        if (d.max_args == CONF_ARGS_MANY)
            printf("\t%u\tmany\t%s\n", d.min_args, d.block ? "block" : "-");
        else
            printf("\t%u\t%u\t%s\n", d.min_args, d.max_args, d.block ? "block" : "-");
    }
    return 0;
}
