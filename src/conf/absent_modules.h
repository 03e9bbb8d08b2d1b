/*
 * absent_modules.h - the directives of nginx's upstream modules Switchyard
 * does not have (FastCGI, uwsgi, SCGI, gRPC, memcached): tuning directives
 * accepted without effect (one `-t` warning per module), the handler refused
 * with what to do instead. Internal to src/conf.
 */
#ifndef SY_CONF_ABSENT_MODULES_H
#define SY_CONF_ABSENT_MODULES_H

#include "conf/directives.h"

/*
 * Directive `n` (in block kind `ctx`) belongs to module `label`, which
 * Switchyard lacks. Returns 1 when it is accepted (recorded for the notes),
 * -1 when it is an error (reported), 0 when the module is not one of these.
 */
int absent_module_directive(struct conf_parser *p, const struct conf_node *n, unsigned ctx,
                            const char *label);

/* One warning per such module used, at its first directive. */
void absent_module_notes(struct conf_parser *p);

#endif
